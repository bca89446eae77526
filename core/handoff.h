/* SPDX-License-Identifier: MIT */
/* The message that moves a validated connection from the acceptor to a worker over the
 * dispatch socket (AF_UNIX SOCK_SEQPACKET, shared by all idle workers: each message goes to
 * exactly one). It carries the socket (SCM_RIGHTS), the connection id, the peer, the raw upgrade
 * request (the worker parses it again for its headers) and any bytes that followed it. */
#ifndef WSD_CORE_HANDOFF_H
#define WSD_CORE_HANDOFF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define WSD_HANDOFF_TLS 1u /* wss://: the worker runs the TLS handshake, then reads the request */

struct wsd_handoff {
    uint64_t conn_id;
    uint32_t flags;       /* WSD_HANDOFF_* */
    uint64_t accepted_ns; /* CLOCK_MONOTONIC time of accept() */
    struct sockaddr_storage peer;
    uint32_t request_len; /* bytes of the upgrade request, first in the payload */
    uint32_t extra_len;   /* bytes received after the request (pipelined frames) */
    uint32_t target_off;  /* the request-target within the request, as the acceptor parsed */
    uint32_t target_len;  /* it: the worker reports the path without parsing it again */
};

/* Send h, its payload (request_len + extra_len bytes) and conn_fd, without blocking.
 * Returns 0, -EAGAIN when the queue is full, or -errno. conn_fd stays the caller's. */
int wsd_handoff_send(int chan_fd, int conn_fd, const struct wsd_handoff *h, const uint8_t *payload);

/* Receive one handoff without blocking. payload must hold cap bytes. Returns 0 with *ret,
 * the payload and *ret_fd (CLOEXEC) filled; -EAGAIN when none is queued; -EBADMSG for a
 * malformed message (any fd it carried is closed); -EPIPE once every sender has closed its end;
 * or -errno. */
int wsd_handoff_recv(int chan_fd, struct wsd_handoff *ret, uint8_t *payload, size_t cap,
                     int *ret_fd);

#endif
