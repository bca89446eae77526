/* SPDX-License-Identifier: MIT */
/* The wss:// front of a connection, in the worker that owns it: the TLS handshake, then the
 * upgrade request read through TLS, both under the one WSD_HANDSHAKE_TIMEOUT_MS deadline that
 * started at accept(). A bad request is answered with its HTTP status through TLS, then
 * close_notify; a failed TLS handshake just gets wolfSSL's alert and the TCP close. */
#ifndef WSD_CORE_TLS_ACCEPT_H
#define WSD_CORE_TLS_ACCEPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wsd_tls;
struct wsd_tls_ctx;

/* The signalfd became readable: return true to give the connection up. */
typedef bool (*wsd_tls_accept_signal_cb)(void *userdata);

struct wsd_tls_accept {
    struct wsd_tls_ctx *ctx;
    int fd;           /* the client's socket (not owned) */
    int sig_fd;       /* watched while waiting, or -1 */
    uint64_t deadline_ms;    /* CLOCK_MONOTONIC; accept() + WSD_HANDSHAKE_TIMEOUT_MS */
    uint64_t max_header;     /* WSD_MAX_HEADER_BYTES */
    uint8_t *payload;        /* receives the request, then any bytes that followed it */
    size_t cap;              /* payload's size; more than max_header */
    const char *peer;        /* for log lines */
    wsd_tls_accept_signal_cb on_signal;
    void *userdata;
};

/* Refusal kinds reported in *ret_refused. */
#define WSD_TLS_REFUSED_NONE (-1)
#define WSD_TLS_REFUSED_TLS 0 /* the TLS handshake failed or timed out: no HTTP was possible */

/* Run the front. On success returns 0 with *ret (the session, caller's to free), *ret_request
 * (bytes of the request, first in payload) and *ret_extra (bytes after it). Otherwise returns a
 * negative errno with the session already closed (close_notify sent where TLS was up) and one
 * log line written; *ret_refused is WSD_TLS_REFUSED_TLS, the HTTP status sent, or
 * WSD_TLS_REFUSED_NONE when the client simply left or a signal ended it. */
int wsd_tls_accept_run(const struct wsd_tls_accept *a, struct wsd_tls **ret,
                       uint32_t *ret_request, uint32_t *ret_extra, int *ret_refused);

#endif
