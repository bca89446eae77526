/* SPDX-License-Identifier: MIT */
/* A connection in the acceptor's hands: the request bytes as they arrive, the verdict on
 * them, and then a refusal (an HTTP error, then a linger) or the handoff to a worker. The
 * supervisor's notices (connections ended, bans, the quiesce) are applied before every
 * handoff, so admission always counts what the supervisor knows. */
#include "core/acceptor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/handoff.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/sys.h"
#include "proto/handshake.h"
#include "proto/proto.h"
#include "proto/ws_codes.h"

#define CTL_BATCH 32 /* supervisor messages taken by one recvmmsg */
#define LINGER_MS 2000 /* after an error response, read and drop what the client still sends */

static void list_push(struct acceptor *a, struct conn_list *l, uint32_t slot)
{
    struct hs_conn *c = &a->conns[slot];
    c->next = NO_CONN;
    c->prev = l->tail;
    if (l->tail != NO_CONN)
        a->conns[l->tail].next = slot;
    else
        l->head = slot;
    l->tail = slot;
}

void hs_list_remove(struct acceptor *a, struct conn_list *l, uint32_t slot)
{
    struct hs_conn *c = &a->conns[slot];
    if (c->prev != NO_CONN)
        a->conns[c->prev].next = c->next;
    else
        l->head = c->next;
    if (c->next != NO_CONN)
        a->conns[c->next].prev = c->prev;
    else
        l->tail = c->prev;
}

/* The list a connection's deadline is on; none once it is closing. */
static struct conn_list *list_of(struct acceptor *a, struct hs_conn *c)
{
    switch (c->state) {
    case CONN_READING:
        return &a->pending;
    case CONN_LINGER:
        return &a->linger;
    default:
        return NULL;
    }
}

void hs_conn_free(struct acceptor *a, uint32_t slot)
{
    struct hs_conn *c = &a->conns[slot];
    struct conn_list *l = list_of(a, c);
    if (l)
        hs_list_remove(a, l, slot);
    if (c->fd >= 0)
        acceptor_close_by_ring(a, c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    c->state = CONN_FREE;
    c->gen++;
    c->next = a->free_head;
    a->free_head = slot;
}

/* Answer with an HTTP error, half-close, and keep reading (dropping) until the client closes
 * or LINGER_MS passes, so our response is not destroyed by a RST for its unread bytes. The
 * caller keeps (or re-arms) a recv in flight. */
void hs_conn_refuse(struct acceptor *a, uint32_t slot, int status)
{
    struct hs_conn *c = &a->conns[slot];
    if (c->tls) {
        /* No HTTP answer is possible before TLS: just close. The read in flight comes back
         * once the socket is shut down, and frees the slot. */
        a->args->shared->hs_fail[wsd_hs_fail_index(status)]++;
        hs_list_remove(a, list_of(a, c), slot);
        c->state = CONN_CLOSING;
        (void)shutdown(c->fd, SHUT_RDWR);
        return;
    }
    char resp[512];
    size_t n = wsd_handshake_response_error(resp, sizeof(resp), status,
                                            status == WSD_HTTP_SERVICE_UNAVAILABLE ? 1 : 0);
    /* A fresh socket's send buffer always has room for a few hundred bytes. */
    (void)send(c->fd, resp, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)shutdown(c->fd, SHUT_WR);
    a->args->shared->hs_fail[wsd_hs_fail_index(status)]++;
    /* The abuse detector counts what the client did wrong, not what wsd could not give. */
    if (status != WSD_HTTP_SERVICE_UNAVAILABLE && status != WSD_HTTP_TOO_MANY_REQUESTS) {
        struct wsd_acceptor_msg m = {.type = WSD_ACCEPTOR_MSG_REFUSED, .status = (uint32_t)status,
                                     .ip = c->ip};
        (void)send(a->args->ctl_fd, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    char peer[46];
    wsd_ip_format(&c->ip, peer);
    wsd_log_info("refused peer=%s status=%d", peer, status);

    hs_list_remove(a, list_of(a, c), slot);
    c->state = CONN_LINGER;
    c->deadline_ms = wsd_now_ms() + LINGER_MS;
    list_push(a, &a->linger, slot);
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

/* Apply one message from the supervisor (or from the start seed). */
void hs_ctl_apply(struct acceptor *a, const struct wsd_acceptor_msg *m)
{
    struct wsd_ip_entry *e;
    switch (m->type) {
    case WSD_ACCEPTOR_MSG_CLOSED:
        a->live = a->live > 0 ? a->live - 1 : 0;
        e = wsd_iptable_get(&a->per_ip, &m->ip);
        if (e && e->count > 0)
            e->count--;
        if (e && e->count == 0 && e->until_ms <= wsd_now_ms())
            wsd_iptable_drop(&a->per_ip, &m->ip);
        break;
    case WSD_ACCEPTOR_MSG_BAN:
        e = wsd_iptable_put(&a->per_ip, &m->ip);
        if (e)
            e->until_ms = m->until_ms;
        break;
    case WSD_ACCEPTOR_MSG_QUIESCE:
        acceptor_quiesce(a);
        break;
    case WSD_ACCEPTOR_MSG_LIVE:
        a->live++;
        e = wsd_iptable_put(&a->per_ip, &m->ip);
        if (e)
            e->count++;
        break;
    default:
        break;
    }
}

/* Apply every message the supervisor has sent so far, a batch per call (one arrives per
 * connection ended). It sends a ban before it ends the IP's connections, so a client that saw
 * its 1008 finds the ban applied at its next handoff. */
void hs_ctl_drain(struct acceptor *a)
{
    struct wsd_acceptor_msg m[CTL_BATCH];
    struct iovec iov[CTL_BATCH];
    struct mmsghdr mh[CTL_BATCH];
    for (;;) {
        for (int i = 0; i < CTL_BATCH; i++) {
            iov[i] = (struct iovec){.iov_base = &m[i], .iov_len = sizeof(m[i])};
            mh[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
        }
        int n = recvmmsg(a->args->ctl_fd, mh, CTL_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            a->stop = true; /* the supervisor is gone: PDEATHSIG will follow, do not wait */
            return;
        }
        for (int i = 0; i < n; i++) {
            if (mh[i].msg_len == 0) { /* end of stream: as above (and it repeats to the end) */
                a->stop = true;
                return;
            }
            if (mh[i].msg_len == sizeof(m[i])) /* a message of another size is not ours */
                hs_ctl_apply(a, &m[i]);
        }
        if (n < CTL_BATCH)
            return;
    }
}

static bool ip_banned(const struct wsd_ip_entry *e, uint64_t now_ms)
{
    return e && e->until_ms > now_ms;
}

/* Give a validated connection to the worker pool; target is the request's (NULL for wss://,
 * read later through TLS). Returns 0, or an HTTP status to refuse. */
int hs_conn_hand_off(struct acceptor *a, uint32_t slot, size_t request_len,
                     const struct wsd_http_view *target)
{
    struct hs_conn *c = &a->conns[slot];
    hs_ctl_drain(a);
    if (a->live >= a->cfg->max_conns)
        return WSD_HTTP_SERVICE_UNAVAILABLE;
    struct wsd_ip_entry *e = wsd_iptable_put(&a->per_ip, &c->ip);
    if (!e || ip_banned(e, wsd_now_ms()) ||
        (a->cfg->max_conns_per_ip && e->count >= a->cfg->max_conns_per_ip))
        return WSD_HTTP_TOO_MANY_REQUESTS;

    struct wsd_handoff h = {
        .conn_id = a->args->shared->next_conn_id,
        .flags = c->tls ? WSD_HANDOFF_TLS : 0,
        .accepted_ns = c->accepted_ns,
        .peer = c->peer,
        .request_len = (uint32_t)request_len,
        .extra_len = c->len - (uint32_t)request_len,
        .target_off = target ? (uint32_t)((const uint8_t *)target->ptr - c->buf) : 0,
        .target_len = target ? (uint32_t)target->len : 0,
    };
    int r = wsd_handoff_send(a->args->dispatch_fd, c->fd, &h, c->buf);
    if (r == -EAGAIN)
        return WSD_HTTP_SERVICE_UNAVAILABLE; /* no worker has kept up: the queue is full */
    if (r < 0) {
        wsd_log_error(r, "sendmsg() failed while handing off a connection");
        return WSD_HTTP_SERVICE_UNAVAILABLE;
    }
    a->args->shared->next_conn_id++;
    a->args->shared->handed_off++;
    a->live++;
    e->count++;
    return 0;
}

int hs_conn_append(struct hs_conn *c, const uint8_t *data, uint32_t n, uint32_t limit)
{
    if (c->len + n > limit)
        return -ENOBUFS;
    if (c->len + n > c->cap) {
        uint32_t cap = c->cap ? c->cap : 512;
        while (cap < c->len + n)
            cap *= 2;
        uint8_t *p = realloc(c->buf, cap);
        if (!p)
            return -ENOMEM;
        c->buf = p;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    return 0;
}

/* Parse what has arrived. Returns true if the recv must be re-armed. */
bool hs_conn_process(struct acceptor *a, uint32_t slot)
{
    struct hs_conn *c = &a->conns[slot];
    struct wsd_http_upgrade req = {._scanned = c->scanned};
    int r = wsd_http_upgrade_parse(&req, c->buf, c->len, a->cfg->max_header_bytes);
    c->scanned = req._scanned;
    if (r == WSD_PROTO_NEED_MORE)
        return true;
    if (r < 0) {
        hs_conn_refuse(a, slot, wsd_proto_error_code(r));
        return true;
    }
    int status = hs_conn_hand_off(a, slot, (size_t)r, &req.target);
    if (status != 0) {
        hs_conn_refuse(a, slot, status);
        return true;
    }
    hs_conn_free(a, slot);
    return false;
}

/* A connection accepted on listener `which`: start reading its request. */
void hs_conn_accepted(struct acceptor *a, int fd, uint32_t which)
{
    a->args->shared->accepted++;
    if (a->free_head == NO_CONN) {
        wsd_close(fd);
        return;
    }
    struct sockaddr_storage peer = {0};
    socklen_t sl = sizeof(peer);
    if (getpeername(fd, (struct sockaddr *)&peer, &sl) < 0) {
        wsd_close(fd); /* the client already reset the connection */
        return;
    }
    uint32_t slot = a->free_head;
    struct hs_conn *c = &a->conns[slot];
    a->free_head = c->next;
    c->fd = fd;
    c->peer = peer;
    c->tls = which == 1;
    c->state = CONN_READING;
    c->scanned = 0;
    c->accepted_ns = wsd_now_ns();
    c->deadline_ms = c->accepted_ns / 1000000 + a->cfg->handshake_timeout_ms;
    c->ip = wsd_ip_from_sockaddr(&peer);
    list_push(a, &a->pending, slot);
    if (ip_banned(wsd_iptable_get(&a->per_ip, &c->ip), c->accepted_ns / 1000000)) /* no read */
        hs_conn_refuse(a, slot, WSD_HTTP_TOO_MANY_REQUESTS);
    acceptor_arm_read(a, slot);
    acceptor_arm_tick(a);
}
