/* SPDX-License-Identifier: MIT */
/* The worker's wss:// front: handshake, request, refusal through TLS (see tls_accept.h). */
#include "core/tls_accept.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/sys.h"
#include "core/tls.h"
#include "proto/handshake.h"
#include "proto/http_upgrade.h"
#include "proto/proto.h"
#include "proto/ws_codes.h"

#define LINGER_MS 500 /* after a refusal: let the response arrive before the TCP close */

/* Wait until the socket is ready for what wolfSSL asked (want is WSD_TLS_WANT_*), the signal
 * callback gives up, or the deadline passes. Returns 0, -ETIMEDOUT or -EINTR. */
static int wait_for(const struct wsd_tls_accept *a, int want, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = wsd_now_ms();
        if (now >= deadline_ms)
            return -ETIMEDOUT;
        struct pollfd p[2] = {
            {.fd = a->fd, .events = want == WSD_TLS_WANT_WRITE ? POLLOUT : POLLIN},
            {.fd = a->sig_fd, .events = POLLIN},
        };
        int n = poll(p, a->sig_fd >= 0 ? 2 : 1, (int)(deadline_ms - now));
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0 && (p[1].revents & POLLIN) && a->on_signal && a->on_signal(a->userdata))
            return -EINTR;
        if (n > 0 && p[0].revents)
            return 0;
    }
}

/* Write all of buf through TLS before the deadline. Returns 0 or -errno. */
static int write_all(const struct wsd_tls_accept *a, struct wsd_tls *t, const void *buf,
                     size_t len, uint64_t deadline_ms)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = wsd_tls_write(t, (const char *)buf + off, len - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w != WSD_TLS_WANT_READ && w != WSD_TLS_WANT_WRITE)
            return (int)w;
        int r = wait_for(a, (int)w, deadline_ms);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Answer a bad request with its status through TLS, then close_notify, then linger so the
 * answer is not destroyed by a reset for bytes the client is still sending. */
static void refuse(const struct wsd_tls_accept *a, struct wsd_tls *t, int status)
{
    char resp[512];
    size_t n = wsd_handshake_response_error(resp, sizeof(resp), status, 0);
    uint64_t until = wsd_now_ms() + LINGER_MS;
    (void)write_all(a, t, resp, n, until);
    wsd_tls_shutdown(t);
    (void)shutdown(a->fd, SHUT_WR);
    uint8_t drop[4096];
    while (wait_for(a, WSD_TLS_WANT_READ, until) == 0 &&
           recv(a->fd, drop, sizeof(drop), MSG_DONTWAIT) > 0)
        ;
    wsd_log_info("refused peer=%s status=%d tls=yes", a->peer, status);
}

static int handshake(const struct wsd_tls_accept *a, struct wsd_tls *t, int *ret_refused)
{
    char why[160] = "";
    for (;;) {
        int r = wsd_tls_handshake(t, why, sizeof(why));
        if (r == 0)
            return 0;
        if (r == WSD_TLS_WANT_READ || r == WSD_TLS_WANT_WRITE)
            r = wait_for(a, r, a->deadline_ms);
        if (r == -ETIMEDOUT)
            snprintf(why, sizeof(why), "timed out (WSD_HANDSHAKE_TIMEOUT_MS)");
        if (r == -EINTR)
            return r;
        if (r < 0) {
            *ret_refused = WSD_TLS_REFUSED_TLS;
            wsd_log_info("refused peer=%s tls handshake failed: %s", a->peer,
                         why[0] ? why : "connection closed");
            return r;
        }
    }
}

/* Read the upgrade request. Returns its length (> 0), or -errno with *ret_status set to the
 * HTTP status to answer (0: the client left, nothing to answer). */
static int read_request(const struct wsd_tls_accept *a, struct wsd_tls *t, uint32_t *ret_len,
                        int *ret_status)
{
    struct wsd_http_upgrade req = {0};
    size_t len = 0;
    *ret_status = 0;
    for (;;) {
        ssize_t n = wsd_tls_read(t, a->payload + len, a->cap - len);
        if (n == WSD_TLS_WANT_READ || n == WSD_TLS_WANT_WRITE) {
            int r = wait_for(a, (int)n, a->deadline_ms);
            if (r == -ETIMEDOUT)
                *ret_status = WSD_HTTP_REQUEST_TIMEOUT;
            if (r < 0)
                return r;
            continue;
        }
        if (n <= 0)
            return n == 0 ? -ECONNRESET : (int)n;
        len += (size_t)n;
        int r = wsd_http_upgrade_parse(&req, a->payload, len, a->max_header);
        if (r == WSD_PROTO_NEED_MORE)
            continue;
        if (r < 0) {
            *ret_status = wsd_proto_error_code(r);
            return -EBADMSG;
        }
        *ret_len = (uint32_t)len;
        return r;
    }
}

int wsd_tls_accept_run(const struct wsd_tls_accept *a, struct wsd_tls **ret,
                       uint32_t *ret_request, uint32_t *ret_extra, int *ret_refused)
{
    *ret_refused = WSD_TLS_REFUSED_NONE;
    struct wsd_tls *t = wsd_tls_new(a->ctx, a->fd);
    if (!t)
        return -ENOMEM;
    int r = handshake(a, t, ret_refused);
    if (r < 0)
        goto fail;
    int status;
    uint32_t len = 0;
    r = read_request(a, t, &len, &status);
    if (r < 0) {
        if (status != 0) {
            refuse(a, t, status);
            *ret_refused = status;
        }
        goto fail;
    }
    *ret_request = (uint32_t)r;
    *ret_extra = len - (uint32_t)r;
    *ret = t;
    return 0;
fail:
    wsd_tls_shutdown(t); /* every close ends with close_notify (once TLS is up) */
    wsd_tls_free(t);
    return r;
}
