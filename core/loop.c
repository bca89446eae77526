/* SPDX-License-Identifier: MIT */
/* The acceptor's io_uring loop: what it submits and what it does with each completion (a
 * connection's own handling is in acceptor_conn.c). A connection costs the loop a small struct
 * and only the bytes it has sent: reads go into a shared ring of provided buffers and are
 * copied out, so a slowloris client holds a few hundred bytes, never a worker process. */
#include "core/loop.h"

#include "core/acceptor.h"

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

static struct io_uring_sqe *get_sqe(struct acceptor *a)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
    while (!sqe) {
        (void)io_uring_submit(&a->ring);
        sqe = io_uring_get_sqe(&a->ring);
    }
    return sqe;
}

void acceptor_arm_tick(struct acceptor *a)
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
void acceptor_arm_read(struct acceptor *a, uint32_t slot)
{
    if (a->conns[slot].tls)
        arm_poll(a, slot);
    else
        arm_recv(a, slot);
}

/* The control socket is only polled here and read by hs_ctl_drain(): a message read by the ring
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
void acceptor_close_by_ring(struct acceptor *a, int fd)
{
    struct io_uring_sqe *sqe = get_sqe(a);
    io_uring_prep_close(sqe, fd);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, encode(OP_CLOSE, 0, 0));
}

/* Cancel the multishot accepts. A connection the kernel hands over before the cancel lands is
 * still served: once accepted it is ours, not the next generation's. */
void acceptor_quiesce(struct acceptor *a)
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

/* Quiescing, the multishot accept on listener `which` has ended. The kernel wakes only one of
 * the accepts waiting on a listening socket (io_uring's accept waits exclusively), so a
 * connection whose wakeup went to ours just before the cancel landed wakes no one else: the next
 * generation's acceptor would sleep while it waits in the backlog. Take whatever is queued now;
 * connections arriving after this wake the next generation. */
static void take_stragglers(struct acceptor *a, uint32_t which)
{
    int fd;
    while ((fd = accept4(listener_fd(a, which), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
        hs_conn_accepted(a, fd, which);
}

static void handle_accept(struct acceptor *a, struct io_uring_cqe *cqe, uint32_t which)
{
    bool ended = !(cqe->flags & IORING_CQE_F_MORE);
    if (ended)
        a->accept_armed[which] = false;
    if (cqe->res >= 0)
        hs_conn_accepted(a, cqe->res, which);
    else if (cqe->res == -EINVAL) {
        wsd_log_error(cqe->res, "multishot accept is not supported by this kernel");
        a->stop = true;
    } else if (cqe->res != -ECANCELED) {
        /* EMFILE and friends: the tick re-arms, so this does not spin. */
        wsd_log_warn(cqe->res, "accept() failed, retrying in %d ms", TICK_MS);
        acceptor_arm_tick(a);
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
            if (hs_conn_append(c, data, (uint32_t)res, limit) < 0)
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
        hs_conn_refuse(a, slot, WSD_HTTP_HEADERS_TOO_LARGE);
        arm_recv(a, slot);
        return;
    }
    if (res <= 0 || c->state == CONN_CLOSING) {
        if (res == 0 && c->state == CONN_READING)
            a->args->shared->hs_fail[WSD_HS_FAIL_EOF]++;
        hs_conn_free(a, slot);
        return;
    }
    if (c->state == CONN_LINGER || hs_conn_process(a, slot))
        arm_recv(a, slot);
}

/* wss://: bytes have arrived (or the socket was shut down): hand over the raw socket. */
static void handle_poll(struct acceptor *a, uint32_t slot)
{
    struct hs_conn *c = &a->conns[slot];
    if (c->state == CONN_READING) {
        int status = hs_conn_hand_off(a, slot, 0, NULL);
        if (status != 0) {
            a->args->shared->hs_fail[wsd_hs_fail_index(status)]++;
            wsd_log_info("refused a wss:// connection: status %d, closing", status);
        }
    }
    hs_conn_free(a, slot);
}

static void handle_tick(struct acceptor *a)
{
    a->tick_armed = false;
    uint64_t now = wsd_now_ms();
    while (a->pending.head != NO_CONN && a->conns[a->pending.head].deadline_ms <= now)
        hs_conn_refuse(a, a->pending.head, WSD_HTTP_REQUEST_TIMEOUT);
    while (a->linger.head != NO_CONN && a->conns[a->linger.head].deadline_ms <= now) {
        uint32_t slot = a->linger.head;
        struct hs_conn *c = &a->conns[slot];
        /* The recv in flight completes with 0 once the socket is shut down; free it then. */
        (void)shutdown(c->fd, SHUT_RDWR);
        hs_list_remove(a, &a->linger, slot);
        c->state = CONN_CLOSING;
    }
    if (!a->stop && !a->quiescing)
        arm_accepts(a);
    if (a->pending.head != NO_CONN || a->linger.head != NO_CONN)
        acceptor_arm_tick(a);
}

static void handle_ctl(struct acceptor *a)
{
    hs_ctl_drain(a);
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
        hs_ctl_apply(&a, &args->seed[i]);

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
