/* SPDX-License-Identifier: MIT */
/* wsbench's connection engine: one io_uring ring, one slot per connection, each slot a small
 * state machine (connect -> upgrade -> open -> close handshake -> EOF) whose frames and checks
 * are in ws_conn.c. Every echoed byte is compared with what was sent; a mismatch or a protocol
 * error ends the process with status 2. The kill mode's control-socket half lives in
 * control.c. */
#include "bench/engine.h"

#include "bench/engine_conn.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/control.h"
#include "bench/upgrade.h"
#include "proto/frame.h"
#include "proto/proto.h"
#include "proto/ws_codes.h"
#include "proto/ws_reader.h"

void wsb_die(const char *fmt, ...)
{
    va_list ap;

    fputs("wsbench: FATAL: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

struct io_uring_sqe *wsb_get_sqe(struct engine *e)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);

    if (!sqe) { /* SQ full: hand what we have to the kernel and retry */
        (void)io_uring_submit(&e->ring);
        sqe = io_uring_get_sqe(&e->ring);
        if (!sqe)
            wsb_die("io_uring_get_sqe() failed twice");
    }
    return sqe;
}

void wsb_post_send(struct engine *e, struct conn *c)
{
    struct io_uring_sqe *sqe;

    if (c->send_busy || c->olen == 0 || c->st == ST_ABORTING || c->st == ST_CONNECTING)
        return;
    sqe = wsb_get_sqe(e);
    io_uring_prep_send(sqe, c->fd, c->obuf, c->olen, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, (uint64_t)c->slot << 8 | OP_SEND);
    c->osending = c->olen;
    c->send_busy = true;
    c->inflight++;
}

static void post_recv(struct engine *e, struct conn *c)
{
    struct io_uring_sqe *sqe;
    size_t off = c->st == ST_HANDSHAKE ? c->rlen : 0;

    if (c->recv_busy || c->st == ST_ABORTING)
        return;
    sqe = wsb_get_sqe(e);
    io_uring_prep_recv(sqe, c->fd, c->rbuf + off, c->rcap - off, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)c->slot << 8 | OP_RECV);
    c->recv_busy = true;
    c->inflight++;
}

void wsb_maybe_start_more(struct engine *e);

static void handle_connect(struct engine *e, struct conn *c, int res)
{
    if (c->st == ST_ABORTING)
        return;
    if (res < 0) {
        wsb_conn_error(e, c, "connect() failed: %s", strerror(-res));
        return;
    }
    if (e->cfg->mode == WSB_MODE_KILL) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        if (getsockname(c->fd, (struct sockaddr *)&sa, &sl) == 0)
            c->lport = ntohs(sa.sin_port);
    }
    c->st = ST_HANDSHAKE;
    wsb_post_send(e, c);
    post_recv(e, c);
}

static void handle_send(struct engine *e, struct conn *c, int res)
{
    c->send_busy = false;
    if (c->st == ST_ABORTING)
        return;
    if (res < 0) {
        wsb_conn_error(e, c, "send() failed: %s", strerror(-res));
        return;
    }
    /* Nothing is in flight now, so the unsent rest may move to the front. */
    memmove(c->obuf, c->obuf + res, c->olen - (size_t)res);
    c->olen -= (size_t)res;
    wsb_post_send(e, c);
}

static void handle_handshake_bytes(struct engine *e, struct conn *c, int res)
{
    const char *why = NULL;
    int r;

    c->rlen += (size_t)res;
    r = wsb_upgrade_response_check((const char *)c->rbuf, c->rlen, c->key, &why);
    if (r == 0 && c->rlen == c->rcap)
        r = -1, why = "response head too large";
    if (r < 0) {
        size_t n = strcspn((const char *)c->rbuf, "\r\n");
        wsb_conn_error(e, c, "handshake refused: %s: '%.*s'", why, (int)(n < 80 ? n : 80),
                   (const char *)c->rbuf);
        return;
    }
    if (r == 0)
        return;
    wsb_on_open(e, c);
    if (c->rlen > (size_t)r) /* frames right behind the 101 */
        wsb_feed_frames(e, c, c->rbuf + r, c->rlen - (size_t)r);
    c->rlen = 0;
}

static void handle_recv(struct engine *e, struct conn *c, int res)
{
    c->recv_busy = false;
    if (c->st == ST_ABORTING)
        return;
    if (res < 0) {
        wsb_conn_error(e, c, "recv() failed: %s", strerror(-res));
        return;
    }
    if (res == 0) {
        if (c->st == ST_CLOSE_RECEIVED)
            wsb_conn_done(e, c);
        else
            wsb_conn_error(e, c, "server ended TCP without a close handshake (state %d)", c->st);
        return;
    }
    if (c->st == ST_HANDSHAKE) {
        c->rbuf[c->rlen + (size_t)res < c->rcap ? c->rlen + (size_t)res : c->rcap - 1] = '\0';
        handle_handshake_bytes(e, c, res);
    } else {
        wsb_feed_frames(e, c, c->rbuf, (size_t)res);
    }
    if (c->st != ST_ABORTING && c->st != ST_FREE)
        post_recv(e, c);
}

static void handle_cqe(struct engine *e, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    struct conn *c = &e->conns[ud >> 8];

    if ((ud & 0xFF) == OP_CANCEL)
        return;
    c->inflight--;
    switch ((enum op)(ud & 0xFF)) {
    case OP_CANCEL:
        break;
    case OP_CONNECT:
        handle_connect(e, c, cqe->res);
        break;
    case OP_SEND:
        handle_send(e, c, cqe->res);
        break;
    case OP_RECV:
        handle_recv(e, c, cqe->res);
        break;
    }
    if (c->st == ST_ABORTING && c->inflight == 0)
        wsb_conn_release(e, c);
}

/* Opening phase of echo and hold: keep up to connect_batch connects in flight. */
void wsb_maybe_start_more(struct engine *e)
{
    while (e->phase == PH_OPENING && e->next_start < e->nconns &&
           e->connecting < e->cfg->connect_batch) {
        int r = wsb_conn_start(e, &e->conns[e->next_start]);
        if (r < 0)
            wsb_die("socket() failed while opening connection %u: %s", e->next_start, strerror(-r));
        e->next_start++;
    }
}

/* Timeouts: handshakes that never complete, servers that never answer a close or end TCP. */
static void sweep(struct engine *e, uint64_t t)
{
    for (unsigned i = 0; i < e->nconns; i++) {
        struct conn *c = &e->conns[i];

        if (c == e->kill_target && t >= e->t_kill + (uint64_t)(e->cfg->timeout_s * 1e9)) {
            e->kill_target = NULL;
            wsb_conn_error(e, c, "no close frame within %.1f s of the kill", e->cfg->timeout_s);
            continue;
        }
        if (c->st == ST_FREE || c->st == ST_ABORTING || c->st == ST_OPEN || t < c->deadline)
            continue;
        if (c->st == ST_CONNECTING || c->st == ST_HANDSHAKE) {
            wsb_conn_error(e, c, "no 101 within %.1f s", e->cfg->timeout_s);
        } else {
            if (e->res->close_timeouts++ < 10)
                fprintf(stderr, "wsbench: connection %u: close not finished within %.1f s (%s)\n",
                        c->slot, e->cfg->timeout_s,
                        c->st == ST_CLOSE_SENT ? "no close frame" : "TCP not ended");
            wsb_conn_abort(e, c);
        }
    }
}

/* kill: learn wsd's id for every open connection from its list, matched by our port. A
 * connection appears there once its worker's report reached the supervisor, which may be a
 * moment after our 101: ask again until all are named or the timeout has passed. */
static void map_ids(struct engine *e, uint64_t t)
{
    struct wsb_control_conn *list;
    uint32_t *slot_of_port;
    unsigned open = 0, mapped = 0;
    int n;

    if (t < e->next_list_at)
        return;
    list = calloc(e->nconns, sizeof(*list));
    slot_of_port = calloc(65536, sizeof(*slot_of_port));
    if (!list || !slot_of_port)
        wsb_die("out of memory while mapping connection ids");
    n = wsb_control_list(e->cfg->control, list, e->nconns);
    if (n < 0)
        wsb_die("control socket '%s': list failed: %s", e->cfg->control, strerror(-n));
    for (unsigned i = 0; i < e->nconns; i++)
        if (e->conns[i].st == ST_OPEN)
            slot_of_port[e->conns[i].lport] = i + 1;
    for (int k = 0; k < n; k++) {
        uint32_t s = slot_of_port[list[k].peer_port];
        if (s)
            e->conns[s - 1].wsd_id = list[k].id;
    }
    for (unsigned i = 0; i < e->nconns; i++) {
        open += e->conns[i].st == ST_OPEN;
        mapped += e->conns[i].st == ST_OPEN && e->conns[i].wsd_id != 0;
    }
    free(list);
    free(slot_of_port);
    if (mapped == open || t >= e->t_run + (uint64_t)(e->cfg->timeout_s * 1e9)) {
        e->res->unmapped = open - mapped;
        e->ids_mapped = true;
        e->t_run = wsd_now_ns(); /* the kills are what is timed */
    } else {
        e->next_list_at = t + 20 * 1000 * 1000;
    }
}

/* kill: with no kill outstanding, ask wsd to close the next open connection. Ends the run
 * once every connection has had its turn. */
static void kill_step(struct engine *e, uint64_t t)
{
    /* Opening N connections in a burst drains wsd's pool: its refill is not the kill latency
     * this mode measures, so the kills start --settle seconds later, as hold's measurement. */
    if (!e->settled) {
        if (t < e->t_run + (uint64_t)(e->cfg->settle_s * 1e9))
            return;
        e->settled = true;
        e->t_run = t; /* the id mapping's timeout counts from here */
    }
    if (!e->ids_mapped)
        map_ids(e, t);
    if (e->kill_req.fd >= 0) { /* the answer to the last kill, polled for as its close frame */
        int r = wsb_control_kill_poll(&e->kill_req);
        struct conn *c = e->kill_asked;

        if (r == 0 && t < e->t_kill + (uint64_t)(e->cfg->timeout_s * 1e9))
            return;
        if (r == 0) {
            wsb_control_req_done(&e->kill_req);
            r = -ETIMEDOUT;
        }
        if (r < 0 && e->kill_target == c) { /* no close frame will come */
            e->kill_target = NULL;
            if (r == -ETIMEDOUT)
                wsb_conn_error(e, c, "no answer to the kill of wsd conn=%llu and no close "
                               "frame within %.1f s", (unsigned long long)c->wsd_id,
                               e->cfg->timeout_s);
            else
                wsb_conn_error(e, c, "kill of wsd conn=%llu refused: %s",
                               (unsigned long long)c->wsd_id, strerror(-r));
        } else if (r < 0 && e->res->errors++ < 10) { /* closed, but wsd did not say OK */
            fprintf(stderr, "wsbench: connection %u: kill of wsd conn=%llu answered: %s\n",
                    c->slot, (unsigned long long)c->wsd_id, strerror(-r));
        }
    }
    if (!e->ids_mapped || e->kill_target)
        return;
    while (e->kill_next < e->nconns) {
        struct conn *c = &e->conns[e->kill_next++];
        int r;

        if (c->st != ST_OPEN || c->wsd_id == 0)
            continue;
        /* The previous victim's answer to its close frame is still queued in the ring: send
         * it now, as a real client would have, not after this kill's request has gone. */
        (void)io_uring_submit(&e->ring);
        e->kill_target = c;
        e->kill_asked = c;
        e->t_kill = wsd_now_ns();
        r = wsb_control_kill_start(&e->kill_req, e->cfg->control, c->wsd_id, e->cfg->kill_code);
        if (r < 0) {
            e->kill_target = NULL;
            wsb_conn_error(e, c, "kill of wsd conn=%llu: control socket: %s",
                           (unsigned long long)c->wsd_id, strerror(-r));
            continue;
        }
        return;
    }
    e->t_end = t; /* every connection had its turn: stop (closes what is left) */
}

static void enter_stop(struct engine *e, uint64_t t)
{
    e->phase = PH_STOP;
    e->res->elapsed_s = (double)(t - e->t_run) / 1e9;
    for (unsigned i = 0; i < e->nconns; i++) {
        struct conn *c = &e->conns[i];

        if (c->st == ST_OPEN && c->rx_seq == c->tx_seq) /* else: closed at its last echo */
            wsb_start_close(e, c);
    }
}

static void tick(struct engine *e, uint64_t t)
{
    const struct wsb_config *cfg = e->cfg;

    if (e->phase == PH_OPENING && e->next_start == e->nconns && e->connecting == 0) {
        e->res->open_s = (double)(t - e->t0) / 1e9;
        e->phase = PH_RUN;
        e->t_run = t;
        e->t_end = cfg->mode == WSB_MODE_KILL ? UINT64_MAX : t + (uint64_t)(cfg->duration_s * 1e9);
        if (cfg->mode == WSB_MODE_ECHO) {
            for (unsigned i = 0; i < e->nconns; i++) {
                struct conn *c = &e->conns[i];
                if (c->st != ST_OPEN)
                    continue;
                for (unsigned k = 0; k < cfg->pipeline; k++)
                    wsb_send_message(e, c);
                wsb_post_send(e, c);
            }
        }
    }
    if (e->phase == PH_RUN && cfg->mode == WSB_MODE_HOLD && !e->hooked &&
        t >= e->t_run + (uint64_t)(cfg->settle_s * 1e9)) {
        unsigned held = 0;
        for (unsigned i = 0; i < e->nconns; i++)
            held += e->conns[i].st == ST_OPEN;
        e->res->done = held;
        e->hooked = true;
        return; /* the caller runs the hook */
    }
    if (e->phase == PH_RUN && cfg->mode == WSB_MODE_KILL)
        kill_step(e, t);
    /* hold: -d shorter than --settle still measures, then stops */
    if (e->phase == PH_RUN && t >= e->t_end && (cfg->mode != WSB_MODE_HOLD || e->hooked)) {
        if (cfg->mode == WSB_MODE_HOLD) {
            unsigned held = 0;
            for (unsigned i = 0; i < e->nconns; i++)
                held += e->conns[i].st == ST_OPEN;
            if (held < e->res->done)
                e->res->done = held; /* connections lost while holding count against it */
        }
        enter_stop(e, t);
    }
}

static int engine_init(struct engine *e, const struct wsb_config *cfg, struct wsb_result *res)
{
    struct io_uring_params p = { 0 };
    size_t obytes, rbytes;
    uint64_t seed;
    int r;

    memset(e, 0, sizeof(*e));
    e->kill_req.fd = -1;
    e->cfg = cfg;
    e->res = res;
    e->nconns = cfg->mode == WSB_MODE_HOLD || cfg->mode == WSB_MODE_KILL ? cfg->hold_n : cfg->conns;
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        seed = (uint64_t)wsd_now_ns();
    e->rng = seed | 1;

    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = 65536;
    r = io_uring_queue_init_params(4096, &e->ring, &p);
    if (r == -EINVAL) { /* an older kernel without DEFER_TASKRUN */
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = 65536;
        r = io_uring_queue_init_params(4096, &e->ring, &p);
    }
    if (r < 0) {
        fprintf(stderr, "wsbench: io_uring_queue_init_params() failed: %s\n", strerror(-r));
        return r;
    }

    e->pattern = malloc(cfg->size + PATTERN_SLACK);
    e->conns = calloc(e->nconns, sizeof(*e->conns));
    if (!e->pattern || !e->conns)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->size + PATTERN_SLACK; i++) {
        static const char alnum[] =
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        uint64_t v = next_rand(e);
        /* text: printable ASCII without newlines (websocketd echoes per line); binary: any byte */
        e->pattern[i] = cfg->binary ? (uint8_t)(v >> 32) : (uint8_t)alnum[(v >> 32) % 62];
    }

    obytes = CTRL_ROOM;
    rbytes = 2048;
    if (cfg->mode == WSB_MODE_ECHO || cfg->mode == WSB_MODE_CHURN) {
        obytes += (size_t)cfg->pipeline * (cfg->size + WSD_FRAME_HEADER_MAX);
        rbytes = (size_t)cfg->pipeline * (cfg->size + WSD_FRAME_HEADER_MAX);
        rbytes = rbytes < 4096 ? 4096 : rbytes > 65536 ? 65536 : rbytes;
    }
    for (unsigned i = 0; i < e->nconns; i++) {
        struct conn *c = &e->conns[i];

        c->slot = i;
        c->fd = -1;
        c->ocap = obytes;
        c->rcap = rbytes;
        c->obuf = malloc(obytes);
        c->rbuf = malloc(rbytes);
        c->tx_time = calloc(cfg->pipeline, sizeof(*c->tx_time));
        if (!c->obuf || !c->rbuf || !c->tx_time)
            return -ENOMEM;
    }
    return 0;
}

static void engine_done(struct engine *e)
{
    wsb_control_req_done(&e->kill_req);
    for (unsigned i = 0; e->conns && i < e->nconns; i++) {
        struct conn *c = &e->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->obuf);
        free(c->rbuf);
        free(c->tx_time);
    }
    free(e->conns);
    free(e->pattern);
    if (e->ring.ring_fd > 0)
        io_uring_queue_exit(&e->ring);
}

int wsb_engine_run(const struct wsb_config *cfg, struct wsb_result *res, wsb_hold_cb hook)
{
    struct engine e;
    uint64_t t, last_sweep = 0;
    int r;

    memset(res, 0, sizeof(*res));
    wsb_hist_init(&res->lat);
    r = engine_init(&e, cfg, res);
    if (r < 0)
        goto out;

    e.t0 = wsd_now_ns();
    /* Opening may take as long as one timeout per batch; the run and the close add theirs. */
    e.t_hard = e.t0 + (uint64_t)((cfg->duration_s + cfg->settle_s + 3 * cfg->timeout_s +
                                  (double)e.nconns / 500.0) * 1e9);
    if (cfg->mode == WSB_MODE_KILL) /* kills one at a time: allow 50 ms each */
        e.t_hard += (uint64_t)e.nconns * 50 * 1000 * 1000;
    if (cfg->mode == WSB_MODE_CONN || cfg->mode == WSB_MODE_CHURN) {
        /* No opening phase: every slot starts now and restarts as it finishes. */
        e.phase = PH_RUN;
        e.t_run = e.t0;
        e.t_end = e.t0 + (uint64_t)(cfg->duration_s * 1e9);
        for (unsigned i = 0; i < e.nconns; i++) {
            r = wsb_conn_start(&e, &e.conns[i]);
            if (r < 0) {
                fprintf(stderr, "wsbench: socket() failed: %s\n", strerror(-r));
                goto out;
            }
        }
    } else {
        wsb_maybe_start_more(&e);
    }

    for (;;) {
        /* While a kill is outstanding, poll: a sleeping client's own wake-up (up to a
         * millisecond for an idle vCPU here) is not wsd's latency. */
        struct __kernel_timespec ts = { .tv_sec = 0,
                                        .tv_nsec = e.kill_target || e.kill_req.fd >= 0
                                                       ? 0 : 20 * 1000 * 1000 };
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;

        r = io_uring_submit_and_wait_timeout(&e.ring, &cqe, 1, &ts, NULL);
        if (r < 0 && r != -ETIME && r != -EINTR) {
            fprintf(stderr, "wsbench: io_uring_submit_and_wait_timeout() failed: %s\n",
                    strerror(-r));
            goto out;
        }
        io_uring_for_each_cqe(&e.ring, head, cqe) {
            handle_cqe(&e, cqe);
            n++;
        }
        io_uring_cq_advance(&e.ring, n);

        t = wsd_now_ns();
        tick(&e, t);
        if (e.hooked && hook) {
            hook(cfg, res);
            hook = NULL;
        }
        if (t - last_sweep > 50 * 1000 * 1000) {
            sweep(&e, t);
            last_sweep = t;
        }
        if (e.phase == PH_STOP && e.live == 0)
            break;
        if (t > e.t_hard) {
            fprintf(stderr, "wsbench: giving up: %u connections still open at the deadline\n",
                    e.live);
            res->close_timeouts += e.live;
            res->errors += e.live;
            break;
        }
    }
    if (res->elapsed_s == 0)
        res->elapsed_s = cfg->duration_s;
    r = 0;
out:
    engine_done(&e);
    return r;
}
