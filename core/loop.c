/* SPDX-License-Identifier: MIT */
/* The acceptor's io_uring loop. A connection costs the loop a small struct and only the bytes
 * it has sent: reads go into a shared ring of provided buffers and are copied out, so a
 * slowloris client holds a few hundred bytes, never a worker process. */
#include "core/loop.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/handoff.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/shared.h"
#include "core/sys.h"
#include "proto/handshake.h"
#include "proto/http_upgrade.h"
#include "proto/proto.h"
#include "proto/ws_codes.h"

#define RING_ENTRIES 1024
#define BUF_GROUP 1
#define BUF_COUNT 256 /* power of two (buffer ring rule) */
#define BUF_SIZE 4096
#define TICK_MS 100
#define CTL_BATCH 32 /* supervisor messages taken by one recvmmsg */
#define LINGER_MS 2000 /* after an error response, read and drop what the client still sends */
#define NO_CONN UINT32_MAX

enum op {
    OP_ACCEPT = 1, /* slot 0: ws://, slot 1: wss:// */
    OP_RECV,
    OP_POLL, /* wss://: wait for the ClientHello to start arriving */
    OP_CTL,  /* the supervisor's control socket became readable */
    OP_SIGNAL,
    OP_TICK,
    OP_CANCEL, /* its own completion carries nothing */
    OP_CLOSE,  /* nor does a close's (and only a failed one posts any) */
};

/* user_data: op in the top 8 bits, connection generation in the next 24, slot in the low 32. */
static uint64_t encode(enum op op, uint32_t gen, uint32_t slot)
{
    return (uint64_t)op << 56 | (uint64_t)(gen & 0xffffff) << 32 | slot;
}

enum conn_state {
    CONN_FREE = 0,
    CONN_READING,  /* reading the upgrade request, handshake deadline running */
    CONN_LINGER,   /* error response sent, draining until EOF or the linger deadline */
    CONN_CLOSING,  /* shut down, waiting for the in-flight recv to come back */
};

/* A connection in handshake. Owner: the acceptor's slot table. */
struct hs_conn {
    int fd;
    uint32_t gen;
    enum conn_state state;
    uint32_t prev, next; /* on the pending or the linger list, ordered by deadline */
    uint64_t deadline_ms;
    uint64_t accepted_ns;
    size_t scanned;      /* wsd_http_upgrade._scanned between reads */
    struct sockaddr_storage peer; /* as accept() saw it: the worker gets it with the socket */
    struct wsd_ip ip;
    bool tls;            /* the worker will run TLS: nothing is read here */
    uint8_t *buf;        /* bytes received so far; NULL until the first */
    uint32_t len, cap;
};

struct conn_list {
    uint32_t head, tail;
};

struct acceptor {
    const struct wsd_acceptor_args *args;
    const struct wsd_config *cfg;
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    uint8_t *bufs;
    struct hs_conn *conns;
    uint32_t nconns;
    uint32_t free_head; /* free slots chained through .next */
    struct conn_list pending, linger;
    bool tick_armed;
    bool accept_armed[2]; /* [0] ws://, [1] wss:// */
    bool stop;
    bool quiescing; /* accepting no more: exit once no handshake is left */
    uint64_t live;
    struct __kernel_timespec tick_ts;
    struct wsd_iptable per_ip; /* count: live connections; until_ms: end of a ban */
    struct signalfd_siginfo sig;
    int sig_fd;
};

static struct io_uring_sqe *get_sqe(struct acceptor *a)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
    while (!sqe) {
        (void)io_uring_submit(&a->ring);
        sqe = io_uring_get_sqe(&a->ring);
    }
    return sqe;
}

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

static void list_remove(struct acceptor *a, struct conn_list *l, uint32_t slot)
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

static void arm_tick(struct acceptor *a)
{
    if (a->tick_armed)
        return;
    a->tick_ts = (struct __kernel_timespec){.tv_nsec = TICK_MS * 1000000L};
    struct io_uring_sqe *sqe = get_sqe(a);
    io_uring_prep_timeout(sqe, &a->tick_ts, 0, 0);
    io_uring_sqe_set_data64(sqe, encode(OP_TICK, 0, 0));
    a->tick_armed = true;
}

static int listener_fd(const struct acceptor *a, uint32_t which)
{
    return which == 0 ? a->args->listen_fd : a->args->tls_listen_fd;
}

/* (Re-)arm multishot accept on every listener that has none in flight. */
static void arm_accepts(struct acceptor *a)
{
    for (uint32_t i = 0; i < 2; i++) {
        if (a->accept_armed[i] || listener_fd(a, i) < 0)
            continue;
        struct io_uring_sqe *sqe = get_sqe(a);
        io_uring_prep_multishot_accept(sqe, listener_fd(a, i), NULL, NULL,
                                       SOCK_CLOEXEC | SOCK_NONBLOCK);
        io_uring_sqe_set_data64(sqe, encode(OP_ACCEPT, 0, i));
        a->accept_armed[i] = true;
    }
}

static void arm_poll(struct acceptor *a, uint32_t slot)
{
    struct hs_conn *c = &a->conns[slot];
    struct io_uring_sqe *sqe = get_sqe(a);
    io_uring_prep_poll_add(sqe, c->fd, POLLIN);
    io_uring_sqe_set_data64(sqe, encode(OP_POLL, c->gen, slot));
}


static void arm_recv(struct acceptor *a, uint32_t slot)
{
    struct hs_conn *c = &a->conns[slot];
    struct io_uring_sqe *sqe = get_sqe(a);
    io_uring_prep_recv(sqe, c->fd, NULL, BUF_SIZE, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUF_GROUP;
    io_uring_sqe_set_data64(sqe, encode(OP_RECV, c->gen, slot));
}

/* The next read of a connection: its request bytes, or (wss://) just their arrival. */
static void arm_read(struct acceptor *a, uint32_t slot)
{
    if (a->conns[slot].tls)
        arm_poll(a, slot);
    else
        arm_recv(a, slot);
}

/* The control socket is only polled here and read by ctl_drain(): a message read by the ring
 * could sit unseen in the completion queue behind a handoff it must come before. */
static void arm_ctl(struct acceptor *a)
{
    struct io_uring_sqe *sqe = get_sqe(a);
    io_uring_prep_poll_add(sqe, a->args->ctl_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, encode(OP_CTL, 0, 0));
}

static void arm_signal(struct acceptor *a)
{
    struct io_uring_sqe *sqe = get_sqe(a);
    io_uring_prep_read(sqe, a->sig_fd, &a->sig, sizeof(a->sig), 0);
    io_uring_sqe_set_data64(sqe, encode(OP_SIGNAL, 0, 0));
}

/* Close fd with the next submission rather than a syscall of its own: one per connection.
 * Until then the number stays taken, so no new socket can be mistaken for it. */
static void close_by_ring(struct acceptor *a, int fd)
{
    struct io_uring_sqe *sqe = get_sqe(a);
    io_uring_prep_close(sqe, fd);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, encode(OP_CLOSE, 0, 0));
}

static void conn_free(struct acceptor *a, uint32_t slot)
{
    struct hs_conn *c = &a->conns[slot];
    struct conn_list *l = list_of(a, c);
    if (l)
        list_remove(a, l, slot);
    if (c->fd >= 0)
        close_by_ring(a, c->fd);
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
static void conn_refuse(struct acceptor *a, uint32_t slot, int status)
{
    struct hs_conn *c = &a->conns[slot];
    if (c->tls) {
        /* No HTTP answer is possible before TLS: just close. The read in flight comes back
         * once the socket is shut down, and frees the slot. */
        a->args->shared->hs_fail[wsd_hs_fail_index(status)]++;
        list_remove(a, list_of(a, c), slot);
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

    list_remove(a, list_of(a, c), slot);
    c->state = CONN_LINGER;
    c->deadline_ms = wsd_now_ms() + LINGER_MS;
    list_push(a, &a->linger, slot);
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

/* Cancel the multishot accepts. A connection the kernel hands over before the cancel lands is
 * still served: once accepted it is ours, not the next generation's. */
static void quiesce(struct acceptor *a)
{
    a->quiescing = true;
    for (uint32_t i = 0; i < 2; i++) {
        if (!a->accept_armed[i])
            continue;
        struct io_uring_sqe *sqe = get_sqe(a);
        io_uring_prep_cancel64(sqe, encode(OP_ACCEPT, 0, i), 0);
        io_uring_sqe_set_data64(sqe, encode(OP_CANCEL, 0, 0));
    }
}

static bool quiesced(const struct acceptor *a)
{
    return a->quiescing && !a->accept_armed[0] && !a->accept_armed[1] &&
           a->pending.head == NO_CONN && a->linger.head == NO_CONN;
}

/* Apply one message from the supervisor (or from the start seed). */
static void ctl_apply(struct acceptor *a, const struct wsd_acceptor_msg *m)
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
        quiesce(a);
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
static void ctl_drain(struct acceptor *a)
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
                ctl_apply(a, &m[i]);
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
static int conn_hand_off(struct acceptor *a, uint32_t slot, size_t request_len,
                         const struct wsd_http_view *target)
{
    struct hs_conn *c = &a->conns[slot];
    ctl_drain(a);
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

static int conn_append(struct hs_conn *c, const uint8_t *data, uint32_t n, uint32_t limit)
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
static bool conn_process(struct acceptor *a, uint32_t slot)
{
    struct hs_conn *c = &a->conns[slot];
    struct wsd_http_upgrade req = {._scanned = c->scanned};
    int r = wsd_http_upgrade_parse(&req, c->buf, c->len, a->cfg->max_header_bytes);
    c->scanned = req._scanned;
    if (r == WSD_PROTO_NEED_MORE)
        return true;
    if (r < 0) {
        conn_refuse(a, slot, wsd_proto_error_code(r));
        return true;
    }
    int status = conn_hand_off(a, slot, (size_t)r, &req.target);
    if (status != 0) {
        conn_refuse(a, slot, status);
        return true;
    }
    conn_free(a, slot);
    return false;
}

/* A connection accepted on listener `which`: start reading its request. */
static void conn_accepted(struct acceptor *a, int fd, uint32_t which)
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
        conn_refuse(a, slot, WSD_HTTP_TOO_MANY_REQUESTS);
    arm_read(a, slot);
    arm_tick(a);
}

/* Quiescing, the multishot accept on listener `which` has ended. The kernel wakes only one of
 * the accepts waiting on a listening socket (io_uring's accept waits exclusively), so a
 * connection whose wakeup went to ours just before the cancel landed wakes no one else: the next
 * generation's acceptor would sleep while it waits in the backlog. Take whatever is queued now;
 * connections arriving after this wake the next generation. */
static void take_stragglers(struct acceptor *a, uint32_t which)
{
    int fd;
    while ((fd = accept4(listener_fd(a, which), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
        conn_accepted(a, fd, which);
}

static void handle_accept(struct acceptor *a, struct io_uring_cqe *cqe, uint32_t which)
{
    bool ended = !(cqe->flags & IORING_CQE_F_MORE);
    if (ended)
        a->accept_armed[which] = false;
    if (cqe->res >= 0)
        conn_accepted(a, cqe->res, which);
    else if (cqe->res == -EINVAL) {
        wsd_log_error(cqe->res, "multishot accept is not supported by this kernel");
        a->stop = true;
    } else if (cqe->res != -ECANCELED) {
        /* EMFILE and friends: the tick re-arms, so this does not spin. */
        wsd_log_warn(cqe->res, "accept() failed, retrying in %d ms", TICK_MS);
        arm_tick(a);
    }
    if (ended && a->quiescing)
        take_stragglers(a, which);
}

static void handle_recv(struct acceptor *a, struct io_uring_cqe *cqe, uint32_t slot)
{
    struct hs_conn *c = &a->conns[slot];
    int res = cqe->res;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        uint8_t *data = a->bufs + (size_t)bid * BUF_SIZE;
        if (res > 0 && c->state == CONN_READING) {
            uint32_t limit = (uint32_t)a->cfg->max_header_bytes + BUF_SIZE;
            if (conn_append(c, data, (uint32_t)res, limit) < 0)
                res = -ENOBUFS - 1000; /* over any legal request: refuse below */
        }
        io_uring_buf_ring_add(a->br, data, BUF_SIZE, bid, io_uring_buf_ring_mask(BUF_COUNT), 0);
        io_uring_buf_ring_advance(a->br, 1);
    }
    if (res == -ENOBUFS) { /* every provided buffer was busy: try again */
        arm_recv(a, slot);
        return;
    }
    if (res == -ENOBUFS - 1000) {
        conn_refuse(a, slot, WSD_HTTP_HEADERS_TOO_LARGE);
        arm_recv(a, slot);
        return;
    }
    if (res <= 0 || c->state == CONN_CLOSING) {
        if (res == 0 && c->state == CONN_READING)
            a->args->shared->hs_fail[WSD_HS_FAIL_EOF]++;
        conn_free(a, slot);
        return;
    }
    if (c->state == CONN_LINGER || conn_process(a, slot))
        arm_recv(a, slot);
}

/* wss://: bytes have arrived (or the socket was shut down): hand over the raw socket. */
static void handle_poll(struct acceptor *a, uint32_t slot)
{
    struct hs_conn *c = &a->conns[slot];
    if (c->state == CONN_READING) {
        int status = conn_hand_off(a, slot, 0, NULL);
        if (status != 0) {
            a->args->shared->hs_fail[wsd_hs_fail_index(status)]++;
            wsd_log_info("refused a wss:// connection: status %d, closing", status);
        }
    }
    conn_free(a, slot);
}

static void handle_tick(struct acceptor *a)
{
    a->tick_armed = false;
    uint64_t now = wsd_now_ms();
    while (a->pending.head != NO_CONN && a->conns[a->pending.head].deadline_ms <= now)
        conn_refuse(a, a->pending.head, WSD_HTTP_REQUEST_TIMEOUT);
    while (a->linger.head != NO_CONN && a->conns[a->linger.head].deadline_ms <= now) {
        uint32_t slot = a->linger.head;
        struct hs_conn *c = &a->conns[slot];
        /* The recv in flight completes with 0 once the socket is shut down; free it then. */
        (void)shutdown(c->fd, SHUT_RDWR);
        list_remove(a, &a->linger, slot);
        c->state = CONN_CLOSING;
    }
    if (!a->stop && !a->quiescing)
        arm_accepts(a);
    if (a->pending.head != NO_CONN || a->linger.head != NO_CONN)
        arm_tick(a);
}

static void handle_ctl(struct acceptor *a)
{
    ctl_drain(a);
    if (!a->stop)
        arm_ctl(a);
}

static void handle_cqe(struct acceptor *a, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    enum op op = (enum op)(ud >> 56);
    uint32_t gen = (uint32_t)(ud >> 32) & 0xffffff, slot = (uint32_t)ud;
    switch (op) {
    case OP_ACCEPT:
        handle_accept(a, cqe, slot);
        break;
    case OP_POLL:
        if (slot < a->nconns && (a->conns[slot].gen & 0xffffff) == gen)
            handle_poll(a, slot);
        break;
    case OP_RECV:
        if (slot < a->nconns && (a->conns[slot].gen & 0xffffff) == gen)
            handle_recv(a, cqe, slot);
        break;
    case OP_CTL:
        handle_ctl(a);
        break;
    case OP_SIGNAL:
        a->stop = true;
        break;
    case OP_TICK:
        handle_tick(a);
        break;
    case OP_CANCEL:
    case OP_CLOSE:
        break;
    }
}

static int setup_ring(struct acceptor *a)
{
    struct io_uring_params p = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    };
    int r = io_uring_queue_init_params(RING_ENTRIES, &a->ring, &p);
    if (r == -EINVAL) { /* older kernel: the plain ring works the same, a little slower */
        memset(&p, 0, sizeof(p));
        r = io_uring_queue_init_params(RING_ENTRIES, &a->ring, &p);
    }
    if (r < 0) {
        wsd_log_error(r, "io_uring_queue_init() failed while starting the acceptor");
        return r;
    }
    size_t ring_size = BUF_COUNT * sizeof(struct io_uring_buf);
    a->br = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    a->bufs = malloc((size_t)BUF_COUNT * BUF_SIZE);
    if (a->br == MAP_FAILED || !a->bufs)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)a->br,
        .ring_entries = BUF_COUNT,
        .bgid = BUF_GROUP,
    };
    r = io_uring_register_buf_ring(&a->ring, &reg, 0);
    if (r < 0) {
        wsd_log_error(r, "io_uring_register_buf_ring() failed while starting the acceptor");
        return r;
    }
    io_uring_buf_ring_init(a->br);
    for (int i = 0; i < BUF_COUNT; i++)
        io_uring_buf_ring_add(a->br, a->bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (uint16_t)i,
                              io_uring_buf_ring_mask(BUF_COUNT), i);
    io_uring_buf_ring_advance(a->br, BUF_COUNT);
    return 0;
}

static int setup_conns(struct acceptor *a)
{
    /* One slot per fd the process may hold: accept() fails before the table runs out. */
    long open_max = sysconf(_SC_OPEN_MAX);
    a->nconns = open_max > 0 && open_max < 1048576 ? (uint32_t)open_max : 65536;
    a->conns = calloc(a->nconns, sizeof(*a->conns));
    if (!a->conns)
        return -ENOMEM;
    for (uint32_t i = 0; i < a->nconns; i++) {
        a->conns[i].fd = -1;
        a->conns[i].next = i + 1 < a->nconns ? i + 1 : NO_CONN;
    }
    a->free_head = 0;
    a->pending = a->linger = (struct conn_list){NO_CONN, NO_CONN};
    return wsd_iptable_init(&a->per_ip, a->nconns);
}

int wsd_acceptor_run(const struct wsd_acceptor_args *args)
{
    struct acceptor a = {.args = args, .cfg = args->cfg, .sig_fd = -1};
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    a.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (a.sig_fd < 0) {
        wsd_log_error(errno, "signalfd() failed while starting the acceptor");
        return -errno;
    }
    int r = setup_conns(&a);
    if (r == 0)
        r = setup_ring(&a);
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < args->nseed; i++)
        ctl_apply(&a, &args->seed[i]);

    arm_accepts(&a);
    arm_ctl(&a);
    arm_signal(&a);
    while (!a.stop && !quiesced(&a)) {
        r = io_uring_submit_and_wait(&a.ring, 1);
        if (r < 0 && r != -EINTR) {
            wsd_log_error(r, "io_uring_submit_and_wait() failed in the acceptor loop");
            return r;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&a.ring, head, cqe) {
            handle_cqe(&a, cqe);
            seen++;
        }
        io_uring_cq_advance(&a.ring, seen);
    }
    /* Exiting closes every handshake socket and the ring; the listening socket stays open in
     * the supervisor, so clients queue in the backlog for the next acceptor. */
    return 0;
}
