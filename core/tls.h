/* SPDX-License-Identifier: MIT */
/* wss:// with wolfSSL. The kernel has no kTLS and Debian's wolfSSL cannot export a live
 * session, so TLS runs in the worker that owns the connection: the acceptor hands over the raw
 * socket, and the worker does the TLS handshake, then HTTP, then WebSocket, through this layer.
 * The context (certificate chain, no private key) is loaded by the supervisor and inherited
 * by the workers it forks; signatures are made by the keyholder (tls_key.h), the only process
 * that reads the key. */
#ifndef WSD_CORE_TLS_H
#define WSD_CORE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define WSD_TLS_WANT_READ (-11001)  /* call again when the socket is readable */
#define WSD_TLS_WANT_WRITE (-11002) /* call again when the socket is writable */

struct wsd_tls_ctx;
struct wsd_tls;

/* Load and check a certificate chain (PEM), whose signatures the keyholder behind keyholder_fd
 * makes. min_version is 12 or 13. On failure returns -errno / -EINVAL and writes one line
 * naming the file and the reason into why: unreadable, not PEM, expired or not yet valid. */
int wsd_tls_ctx_load(const char *cert_file, unsigned min_version, int keyholder_fd,
                     struct wsd_tls_ctx **ret, char *why, size_t cap);

/* Release a context; returns NULL. */
struct wsd_tls_ctx *wsd_tls_ctx_free(struct wsd_tls_ctx *ctx);

/* "subject=..., serial=..., not after ..." of the leaf certificate, for logs. */
void wsd_tls_ctx_describe(const struct wsd_tls_ctx *ctx, char *out, size_t cap);

/* A server session on a non-blocking socket fd (not owned). NULL on out-of-memory. */
struct wsd_tls *wsd_tls_new(struct wsd_tls_ctx *ctx, int fd);
struct wsd_tls *wsd_tls_free(struct wsd_tls *t);

/* Drive the handshake. Returns 0 when done, WSD_TLS_WANT_READ/WRITE, or -EPROTO (why holds
 * wolfSSL's reason: a plain-HTTP client, an old protocol version, garbage). */
int wsd_tls_handshake(struct wsd_tls *t, char *why, size_t cap);

/* Read decrypted bytes: > 0, 0 at the peer's close_notify or EOF, WSD_TLS_WANT_*, or -errno. */
ssize_t wsd_tls_read(struct wsd_tls *t, void *buf, size_t n);

/* Write: bytes taken (> 0), WSD_TLS_WANT_*, or -errno. After WANT_* call again with the same
 * bytes (wolfSSL keeps the record it has built). */
ssize_t wsd_tls_write(struct wsd_tls *t, const void *buf, size_t n);

/* Decrypted bytes buffered inside wolfSSL that epoll cannot see. */
bool wsd_tls_has_pending(struct wsd_tls *t);

/* Send close_notify (once), without waiting for the peer's. */
void wsd_tls_shutdown(struct wsd_tls *t);

/* The negotiated version ("TLSv1.3") and ALPN protocol (or ""), for logs. */
const char *wsd_tls_version(struct wsd_tls *t);

#endif
