/* SPDX-License-Identifier: MIT */
/* wsbench's connection engine: one io_uring ring, one slot per connection, each slot a small
 * state machine (connect -> upgrade -> open -> close handshake -> EOF). Every echoed byte is
 * compared with what was sent; a mismatch or a protocol error ends the process with status 2.
 * About 900 lines, over the 600 budget: the slot state machine and the loop that drives it share
 * struct conn and struct engine; splitting them would put both in a header for one caller.
 * The kill mode's control-socket half lives in control.c.
 * FIXME: split the frame/verification half into bench/conn.c before another mode is added. */
#include "bench/engine.h"

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

enum op { OP_CANCEL = 0, OP_CONNECT, OP_SEND, OP_RECV };

enum state {
    ST_FREE = 0,
    ST_CONNECTING,
    ST_HANDSHAKE,      /* request queued, waiting for the 101 */
    ST_OPEN,
    ST_CLOSE_SENT,     /* our close frame is queued, waiting for the server's */
    ST_CLOSE_RECEIVED, /* close handshake done, waiting for the server to end TCP (RFC 6455 7.1.1) */
    ST_ABORTING,       /* shut down after an error: waiting for in-flight operations */
};

enum phase { PH_OPENING, PH_RUN, PH_STOP };

#define PATTERN_SLACK 251 /* a message starts at one of 251 offsets into the pattern */
#define CTRL_ROOM 4096    /* output room for pongs, the close frame and the handshake */

/* One connection. Owned by its slot in struct engine; a slot is reused only once no operation
 * of the previous connection is in flight (inflight == 0), so user_data needs no generation. */
struct conn {
    unsigned slot;
    int fd;
    enum state st;
    unsigned inflight;
    bool send_busy, recv_busy;
    uint8_t *obuf;             /* bytes queued for the server: [0, olen) */
    size_t ocap, olen, osending;
    uint8_t *rbuf;             /* receive buffer; holds the 101 head until it is complete */
    size_t rcap, rlen;
    struct wsd_ws_reader rd;
    char key[WSB_KEY_LEN + 1];
    uint64_t t_start;          /* connect submitted (ns) */
    uint64_t deadline;         /* handshake or close deadline (ns) */
    uint64_t tx_seq, rx_seq;   /* messages sent / fully echoed */
    size_t rx_off;             /* bytes of message rx_seq verified so far */
    uint64_t *tx_time;         /* send time of message seq at [seq % pipeline] */
    uint16_t lport;            /* kill: our port, how wsd's list names the connection */
    uint64_t wsd_id;           /* kill: wsd's connection id, 0 until the list named it */
};

struct engine {
    const struct wsb_config *cfg;
    struct wsb_result *res;
    struct io_uring ring;
    struct conn *conns;
    unsigned nconns;
    unsigned next_start;       /* opening phase: next slot to connect */
    unsigned connecting;       /* connects + handshakes in flight */
    unsigned live;             /* slots not ST_FREE */
    enum phase phase;
    uint64_t t0, t_run, t_end, t_hard;
    uint8_t *pattern;          /* size + PATTERN_SLACK bytes the messages are cut from */
    uint64_t rng;
    bool hooked;
    /* kill: one request at a time, in slot order, once settled and the ids are known */
    bool settled; /* --settle has passed since the last connection opened */
    bool ids_mapped;
    uint64_t next_list_at;     /* retry time while wsd's list lacks some connections */
    unsigned kill_next;        /* next slot to kill */
    struct conn *kill_target;  /* waiting for its close frame, or NULL */
    uint64_t t_kill;           /* when its kill was requested */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: masking keys only need to differ per frame here, not to resist an attacker. */
static uint64_t next_rand(struct engine *e)
{
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    return e->rng * 2685821657736338717ull;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;

    fputs("wsbench: FATAL: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static struct io_uring_sqe *get_sqe(struct engine *e)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);

    if (!sqe) { /* SQ full: hand what we have to the kernel and retry */
        (void)io_uring_submit(&e->ring);
        sqe = io_uring_get_sqe(&e->ring);
        if (!sqe)
            die("io_uring_get_sqe() failed twice");
    }
    return sqe;
}

static void post_send(struct engine *e, struct conn *c)
{
    struct io_uring_sqe *sqe;

    if (c->send_busy || c->olen == 0 || c->st == ST_ABORTING || c->st == ST_CONNECTING)
        return;
    sqe = get_sqe(e);
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
    sqe = get_sqe(e);
    io_uring_prep_recv(sqe, c->fd, c->rbuf + off, c->rcap - off, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)c->slot << 8 | OP_RECV);
    c->recv_busy = true;
    c->inflight++;
}

/* Append one masked frame (RFC 6455 5.3: every client frame is masked) to the output. */
static void queue_frame(struct engine *e, struct conn *c, uint8_t opcode, const uint8_t *data,
                        size_t len)
{
    uint64_t r = next_rand(e);
    uint8_t mask[4], *p;
    size_t h;

    if (c->olen + WSD_FRAME_HEADER_MAX + len > c->ocap)
        die("output buffer of connection %u is full (%zu queued): server not reading?", c->slot,
            c->olen);
    memcpy(mask, &r, 4);
    p = c->obuf + c->olen;
    h = wsd_frame_header_write(p, true, 0, opcode, len, mask);
    memcpy(p + h, data, len);
    wsd_frame_mask(p + h, len, mask, 0);
    c->olen += h + len;
}

static const uint8_t *message_bytes(struct engine *e, struct conn *c, uint64_t seq)
{
    return e->pattern + (seq * 7 + c->slot * 13) % PATTERN_SLACK;
}

static void send_message(struct engine *e, struct conn *c)
{
    const struct wsb_config *cfg = e->cfg;

    c->tx_time[c->tx_seq % cfg->pipeline] = now_ns();
    queue_frame(e, c, cfg->binary ? WSD_OP_BINARY : WSD_OP_TEXT, message_bytes(e, c, c->tx_seq),
                cfg->size);
    c->tx_seq++;
}

static void start_close(struct engine *e, struct conn *c)
{
    uint8_t payload[2] = { WSD_CLOSE_NORMAL >> 8, WSD_CLOSE_NORMAL & 0xFF };

    queue_frame(e, c, WSD_OP_CLOSE, payload, sizeof(payload));
    c->st = ST_CLOSE_SENT;
    c->deadline = now_ns() + (uint64_t)(e->cfg->timeout_s * 1e9);
    post_send(e, c);
}

static void conn_release(struct engine *e, struct conn *c);

/* Give up on a connection: shut the socket so in-flight operations complete, then release. */
static void conn_abort(struct engine *e, struct conn *c)
{
    if (c->st == ST_CONNECTING || c->st == ST_HANDSHAKE)
        e->connecting--;
    c->st = ST_ABORTING;
    if (c->inflight) {
        /* A pending connect ignores shutdown(): cancel everything on the fd. The cancel's own
         * completion is not counted in inflight and is ignored (OP_CANCEL). */
        struct io_uring_sqe *sqe = get_sqe(e);
        io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, (uint64_t)c->slot << 8 | OP_CANCEL);
        /* Submit now, while the fd is still this connection's: once its operations complete
         * the fd is closed and its number may be reused by the slot's next socket. */
        (void)io_uring_submit(&e->ring);
        (void)shutdown(c->fd, SHUT_RDWR);
    } else {
        conn_release(e, c);
    }
}

static void conn_error(struct engine *e, struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_error(struct engine *e, struct conn *c, const char *fmt, ...)
{
    va_list ap;

    if (e->res->errors++ < 10) {
        fprintf(stderr, "wsbench: connection %u: ", c->slot);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    conn_abort(e, c);
}

static int conn_start(struct engine *e, struct conn *c)
{
    struct io_uring_sqe *sqe;
    uint8_t nonce[16];
    int fd, one = 1;
    size_t n;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = next_rand(e);
        memcpy(nonce + i, &r, 8);
    }
    wsb_upgrade_key(nonce, c->key);
    n = wsb_upgrade_request((char *)c->obuf, c->ocap, e->cfg->host, e->cfg->path, c->key);
    if (n == 0)
        die("upgrade request does not fit");
    c->fd = fd;
    c->olen = n;
    c->rlen = 0;
    c->tx_seq = c->rx_seq = 0;
    c->rx_off = 0;
    c->st = ST_CONNECTING;
    c->t_start = now_ns();
    c->deadline = c->t_start + (uint64_t)(e->cfg->timeout_s * 1e9);
    wsd_ws_reader_init(&c->rd, (uint64_t)1 << 40, 0, false, false);
    sqe = get_sqe(e);
    io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&e->cfg->addr, sizeof(e->cfg->addr));
    io_uring_sqe_set_data64(sqe, (uint64_t)c->slot << 8 | OP_CONNECT);
    c->inflight++;
    e->connecting++;
    e->live++;
    return 0;
}

static void maybe_start_more(struct engine *e);

static void conn_release(struct engine *e, struct conn *c)
{
    (void)close(c->fd);
    c->fd = -1;
    c->st = ST_FREE;
    c->send_busy = c->recv_busy = false;
    c->olen = c->osending = 0;
    e->live--;
    /* conn and churn: the slot immediately carries the next connection */
    if (e->phase == PH_RUN && (e->cfg->mode == WSB_MODE_CONN || e->cfg->mode == WSB_MODE_CHURN)) {
        int r = conn_start(e, c);
        if (r < 0)
            die("socket() failed while starting a connection: %s", strerror(-r));
    }
    /* echo and hold: a failed connect frees a place in the opening batch */
    maybe_start_more(e);
}

/* The whole cycle ended cleanly: close frames both ways and the server ended TCP. */
static void conn_done(struct engine *e, struct conn *c)
{
    uint64_t t = now_ns();

    if ((e->cfg->mode == WSB_MODE_CONN || e->cfg->mode == WSB_MODE_CHURN) && e->phase == PH_RUN &&
        t <= e->t_end) {
        e->res->done++;
        if (e->cfg->mode == WSB_MODE_CHURN)
            wsb_hist_record(&e->res->lat, t - c->t_start);
    }
    conn_abort(e, c); /* releases now, or once our last send completes */
}

static void on_open(struct engine *e, struct conn *c)
{
    uint64_t t = now_ns();

    e->connecting--;
    e->res->opened++;
    c->st = ST_OPEN;
    switch (e->cfg->mode) {
    case WSB_MODE_CONN:
        if (t <= e->t_end)
            wsb_hist_record(&e->res->lat, t - c->t_start);
        start_close(e, c);
        break;
    case WSB_MODE_CHURN:
        send_message(e, c);
        post_send(e, c);
        break;
    case WSB_MODE_ECHO:
        if (e->phase == PH_RUN) { /* opened late (a slow connect): join the run now */
            for (unsigned i = 0; i < e->cfg->pipeline; i++)
                send_message(e, c);
            post_send(e, c);
        } else if (e->phase == PH_STOP) {
            start_close(e, c);
        }
        break;
    case WSB_MODE_HOLD:
    case WSB_MODE_KILL:
        if (e->phase == PH_STOP)
            start_close(e, c);
        break;
    case WSB_MODE_SPAWN:
        break;
    }
    maybe_start_more(e);
}

static void on_message_end(struct engine *e, struct conn *c)
{
    const struct wsb_config *cfg = e->cfg;
    uint64_t t = now_ns();

    if (c->rx_off != cfg->size)
        die("connection %u: echo of message %llu has %zu bytes, sent %zu", c->slot,
            (unsigned long long)c->rx_seq, c->rx_off, cfg->size);
    if (cfg->mode == WSB_MODE_ECHO && e->phase == PH_RUN && t <= e->t_end) {
        wsb_hist_record(&e->res->lat, t - c->tx_time[c->rx_seq % cfg->pipeline]);
        e->res->done++;
    }
    c->rx_seq++;
    c->rx_off = 0;
    if (cfg->mode == WSB_MODE_CHURN) {
        if (c->st == ST_OPEN)
            start_close(e, c);
    } else if (cfg->mode == WSB_MODE_ECHO) {
        if (e->phase == PH_RUN) {
            send_message(e, c); /* sent with the others this receive refills (feed_frames) */
        } else if (c->rx_seq == c->tx_seq && c->st == ST_OPEN) {
            start_close(e, c);
        }
    }
}

static void on_data(struct engine *e, struct conn *c, const struct wsd_ws_event *ev)
{
    const struct wsb_config *cfg = e->cfg;
    const uint8_t *want;

    if (ev->first) {
        if (c->rx_seq >= c->tx_seq)
            die("connection %u: server sent a message nobody asked for (%zu bytes)", c->slot,
                ev->len);
        if (ev->opcode != (cfg->binary ? WSD_OP_BINARY : WSD_OP_TEXT))
            die("connection %u: echo of message %llu has opcode %u, sent %u", c->slot,
                (unsigned long long)c->rx_seq, ev->opcode,
                cfg->binary ? WSD_OP_BINARY : WSD_OP_TEXT);
    }
    if (c->rx_off + ev->len > cfg->size)
        die("connection %u: echo of message %llu is longer than the %zu bytes sent", c->slot,
            (unsigned long long)c->rx_seq, cfg->size);
    want = message_bytes(e, c, c->rx_seq) + c->rx_off;
    if (memcmp(ev->data, want, ev->len) != 0) {
        size_t i = 0;
        while (ev->data[i] == want[i])
            i++;
        die("connection %u: echo of message %llu differs at byte %zu: got 0x%02x, sent 0x%02x",
            c->slot, (unsigned long long)c->rx_seq, c->rx_off + i, ev->data[i], want[i]);
    }
    c->rx_off += ev->len;
}

static void on_close_frame(struct engine *e, struct conn *c, const struct wsd_ws_event *ev)
{
    uint8_t payload[2] = { (uint8_t)(ev->close_code >> 8), (uint8_t)ev->close_code };

    if (c->st == ST_CLOSE_SENT) {
        c->st = ST_CLOSE_RECEIVED;
        return;
    }
    if (c == e->kill_target) { /* the close we asked wsd for: time it, check it, answer it */
        wsb_hist_record(&e->res->lat, now_ns() - e->t_kill);
        e->res->done++;
        e->kill_target = NULL;
        if (ev->close_code != e->cfg->kill_code)
            die("connection %u: killed with code %u, but the close frame says %u", c->slot,
                e->cfg->kill_code, ev->close_code);
    } else if (e->res->server_closes++ < 10) {
        /* The server started the close: answer it (RFC 6455 5.5.1) and count it. */
        fprintf(stderr, "wsbench: connection %u: server closed with %u '%.*s'\n", c->slot,
                ev->close_code, (int)ev->len, (const char *)ev->data);
    }
    if (ev->close_code == WSD_CLOSE_NO_STATUS)
        queue_frame(e, c, WSD_OP_CLOSE, NULL, 0);
    else
        queue_frame(e, c, WSD_OP_CLOSE, payload, 2);
    c->st = ST_CLOSE_RECEIVED;
    c->deadline = now_ns() + (uint64_t)(e->cfg->timeout_s * 1e9);
    post_send(e, c);
}

/* Everything one receive brought: the replacement messages and pongs it queues go out
 * together, in one send, once all of it is read (a send per message would cost this client,
 * not the server, most of its time). */
static void feed_frames(struct engine *e, struct conn *c, uint8_t *buf, size_t len)
{
    struct wsd_ws_event ev;
    size_t pos = 0;
    int r;

    /* Call again while events come, even with nothing left: the event that ends a message
     * (MESSAGE_END) is reported by the call after the one that consumed its last byte. */
    for (;;) {
        if (c->st == ST_CLOSE_RECEIVED && pos < len)
            die("connection %u: %zu bytes after the server's close frame", c->slot, len - pos);
        r = wsd_ws_reader_feed(&c->rd, buf + pos, len - pos, &ev);
        if (r < 0)
            die("connection %u: protocol error from the server (close code %d)", c->slot,
                wsd_proto_error_code(r));
        pos += (size_t)r;
        if (ev.type == WSD_WS_EV_NONE)
            break;
        switch (ev.type) {
        case WSD_WS_EV_NONE:
            break;
        case WSD_WS_EV_DATA:
            on_data(e, c, &ev);
            break;
        case WSD_WS_EV_MESSAGE_END:
            on_message_end(e, c);
            break;
        case WSD_WS_EV_PING: /* RFC 6455 5.5.2: answer with a pong carrying the same data */
            queue_frame(e, c, WSD_OP_PONG, ev.data, ev.len);
            break;
        case WSD_WS_EV_PONG:
            break;
        case WSD_WS_EV_CLOSE:
            on_close_frame(e, c, &ev);
            break;
        }
    }
    post_send(e, c);
}

static void handle_connect(struct engine *e, struct conn *c, int res)
{
    if (c->st == ST_ABORTING)
        return;
    if (res < 0) {
        conn_error(e, c, "connect() failed: %s", strerror(-res));
        return;
    }
    if (e->cfg->mode == WSB_MODE_KILL) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        if (getsockname(c->fd, (struct sockaddr *)&sa, &sl) == 0)
            c->lport = ntohs(sa.sin_port);
    }
    c->st = ST_HANDSHAKE;
    post_send(e, c);
    post_recv(e, c);
}

static void handle_send(struct engine *e, struct conn *c, int res)
{
    c->send_busy = false;
    if (c->st == ST_ABORTING)
        return;
    if (res < 0) {
        conn_error(e, c, "send() failed: %s", strerror(-res));
        return;
    }
    /* Nothing is in flight now, so the unsent rest may move to the front. */
    memmove(c->obuf, c->obuf + res, c->olen - (size_t)res);
    c->olen -= (size_t)res;
    post_send(e, c);
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
        conn_error(e, c, "handshake refused: %s: '%.*s'", why, (int)(n < 80 ? n : 80),
                   (const char *)c->rbuf);
        return;
    }
    if (r == 0)
        return;
    on_open(e, c);
    if (c->rlen > (size_t)r) /* frames right behind the 101 */
        feed_frames(e, c, c->rbuf + r, c->rlen - (size_t)r);
    c->rlen = 0;
}

static void handle_recv(struct engine *e, struct conn *c, int res)
{
    c->recv_busy = false;
    if (c->st == ST_ABORTING)
        return;
    if (res < 0) {
        conn_error(e, c, "recv() failed: %s", strerror(-res));
        return;
    }
    if (res == 0) {
        if (c->st == ST_CLOSE_RECEIVED)
            conn_done(e, c);
        else
            conn_error(e, c, "server ended TCP without a close handshake (state %d)", c->st);
        return;
    }
    if (c->st == ST_HANDSHAKE) {
        c->rbuf[c->rlen + (size_t)res < c->rcap ? c->rlen + (size_t)res : c->rcap - 1] = '\0';
        handle_handshake_bytes(e, c, res);
    } else {
        feed_frames(e, c, c->rbuf, (size_t)res);
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
        conn_release(e, c);
}

/* Opening phase of echo and hold: keep up to connect_batch connects in flight. */
static void maybe_start_more(struct engine *e)
{
    while (e->phase == PH_OPENING && e->next_start < e->nconns &&
           e->connecting < e->cfg->connect_batch) {
        int r = conn_start(e, &e->conns[e->next_start]);
        if (r < 0)
            die("socket() failed while opening connection %u: %s", e->next_start, strerror(-r));
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
            conn_error(e, c, "no close frame within %.1f s of the kill", e->cfg->timeout_s);
            continue;
        }
        if (c->st == ST_FREE || c->st == ST_ABORTING || c->st == ST_OPEN || t < c->deadline)
            continue;
        if (c->st == ST_CONNECTING || c->st == ST_HANDSHAKE) {
            conn_error(e, c, "no 101 within %.1f s", e->cfg->timeout_s);
        } else {
            if (e->res->close_timeouts++ < 10)
                fprintf(stderr, "wsbench: connection %u: close not finished within %.1f s (%s)\n",
                        c->slot, e->cfg->timeout_s,
                        c->st == ST_CLOSE_SENT ? "no close frame" : "TCP not ended");
            conn_abort(e, c);
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
        die("out of memory while mapping connection ids");
    n = wsb_control_list(e->cfg->control, list, e->nconns);
    if (n < 0)
        die("control socket '%s': list failed: %s", e->cfg->control, strerror(-n));
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
        e->t_run = now_ns(); /* the kills are what is timed */
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
    if (!e->ids_mapped || e->kill_target)
        return;
    while (e->kill_next < e->nconns) {
        struct conn *c = &e->conns[e->kill_next++];
        int r;

        if (c->st != ST_OPEN || c->wsd_id == 0)
            continue;
        /* The previous victim's answer to its close frame is still queued in the ring: send
         * it now, as a real client would have, not after this kill's request has blocked us. */
        (void)io_uring_submit(&e->ring);
        e->kill_target = c;
        e->t_kill = now_ns();
        r = wsb_control_kill(e->cfg->control, c->wsd_id, e->cfg->kill_code);
        if (r < 0) {
            e->kill_target = NULL;
            conn_error(e, c, "kill of wsd conn=%llu refused: %s", (unsigned long long)c->wsd_id,
                       strerror(-r));
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
            start_close(e, c);
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
                    send_message(e, c);
                post_send(e, c);
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
    e->cfg = cfg;
    e->res = res;
    e->nconns = cfg->mode == WSB_MODE_HOLD || cfg->mode == WSB_MODE_KILL ? cfg->hold_n : cfg->conns;
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        seed = (uint64_t)now_ns();
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

    e.t0 = now_ns();
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
            r = conn_start(&e, &e.conns[i]);
            if (r < 0) {
                fprintf(stderr, "wsbench: socket() failed: %s\n", strerror(-r));
                goto out;
            }
        }
    } else {
        maybe_start_more(&e);
    }

    for (;;) {
        struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 20 * 1000 * 1000 };
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

        t = now_ns();
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
