/* SPDX-License-Identifier: MIT */
/* One wsbench connection's life once its socket exists: the upgrade request, masked frames
 * out, every echoed byte checked against what was sent (a mismatch ends the process with
 * status 2), pongs, and the close handshake both ways. */
#include "bench/engine_conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/control.h"
#include "bench/upgrade.h"
#include "proto/frame.h"
#include "proto/proto.h"
#include "proto/ws_codes.h"

/* Append one masked frame (RFC 6455 5.3: every client frame is masked) to the output. */
static void queue_frame(struct engine *e, struct conn *c, uint8_t opcode, const uint8_t *data,
                        size_t len)
{
    uint64_t r = next_rand(e);
    uint8_t mask[4], *p;
    size_t h;

    if (c->olen + WSD_FRAME_HEADER_MAX + len > c->ocap)
        wsb_die("output buffer of connection %u is full (%zu queued): server not reading?", c->slot,
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

void wsb_send_message(struct engine *e, struct conn *c)
{
    const struct wsb_config *cfg = e->cfg;

    c->tx_time[c->tx_seq % cfg->pipeline] = wsd_now_ns();
    queue_frame(e, c, cfg->binary ? WSD_OP_BINARY : WSD_OP_TEXT, message_bytes(e, c, c->tx_seq),
                cfg->size);
    c->tx_seq++;
}

void wsb_start_close(struct engine *e, struct conn *c)
{
    uint8_t payload[2] = { WSD_CLOSE_NORMAL >> 8, WSD_CLOSE_NORMAL & 0xFF };

    queue_frame(e, c, WSD_OP_CLOSE, payload, sizeof(payload));
    c->st = ST_CLOSE_SENT;
    c->deadline = wsd_now_ns() + (uint64_t)(e->cfg->timeout_s * 1e9);
    wsb_post_send(e, c);
}

/* Give up on a connection: shut the socket so in-flight operations complete, then release. */
void wsb_conn_abort(struct engine *e, struct conn *c)
{
    if (c->st == ST_CONNECTING || c->st == ST_HANDSHAKE)
        e->connecting--;
    c->st = ST_ABORTING;
    if (c->inflight) {
        /* A pending connect ignores shutdown(): cancel everything on the fd. The cancel's own
         * completion is not counted in inflight and is ignored (OP_CANCEL). */
        struct io_uring_sqe *sqe = wsb_get_sqe(e);
        io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, (uint64_t)c->slot << 8 | OP_CANCEL);
        /* Submit now, while the fd is still this connection's: once its operations complete
         * the fd is closed and its number may be reused by the slot's next socket. */
        (void)io_uring_submit(&e->ring);
        (void)shutdown(c->fd, SHUT_RDWR);
    } else {
        wsb_conn_release(e, c);
    }
}

void wsb_conn_error(struct engine *e, struct conn *c, const char *fmt, ...)
{
    va_list ap;

    if (e->res->errors++ < 10) {
        fprintf(stderr, "wsbench: connection %u: ", c->slot);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    wsb_conn_abort(e, c);
}

int wsb_conn_start(struct engine *e, struct conn *c)
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
        wsb_die("upgrade request does not fit");
    c->fd = fd;
    c->olen = n;
    c->rlen = 0;
    c->tx_seq = c->rx_seq = 0;
    c->rx_off = 0;
    c->st = ST_CONNECTING;
    c->t_start = wsd_now_ns();
    c->deadline = c->t_start + (uint64_t)(e->cfg->timeout_s * 1e9);
    wsd_ws_reader_init(&c->rd, (uint64_t)1 << 40, 0, false, false);
    sqe = wsb_get_sqe(e);
    io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&e->cfg->addr, sizeof(e->cfg->addr));
    io_uring_sqe_set_data64(sqe, (uint64_t)c->slot << 8 | OP_CONNECT);
    c->inflight++;
    e->connecting++;
    e->live++;
    return 0;
}

void wsb_conn_release(struct engine *e, struct conn *c)
{
    (void)close(c->fd);
    c->fd = -1;
    c->st = ST_FREE;
    c->send_busy = c->recv_busy = false;
    c->olen = c->osending = 0;
    e->live--;
    /* conn and churn: the slot immediately carries the next connection */
    if (e->phase == PH_RUN && (e->cfg->mode == WSB_MODE_CONN || e->cfg->mode == WSB_MODE_CHURN)) {
        int r = wsb_conn_start(e, c);
        if (r < 0)
            wsb_die("socket() failed while starting a connection: %s", strerror(-r));
    }
    /* echo and hold: a failed connect frees a place in the opening batch */
    wsb_maybe_start_more(e);
}

/* The whole cycle ended cleanly: close frames both ways and the server ended TCP. */
void wsb_conn_done(struct engine *e, struct conn *c)
{
    uint64_t t = wsd_now_ns();

    if ((e->cfg->mode == WSB_MODE_CONN || e->cfg->mode == WSB_MODE_CHURN) && e->phase == PH_RUN &&
        t <= e->t_end) {
        e->res->done++;
        if (e->cfg->mode == WSB_MODE_CHURN)
            wsb_hist_record(&e->res->lat, t - c->t_start);
    }
    wsb_conn_abort(e, c); /* releases now, or once our last send completes */
}

void wsb_on_open(struct engine *e, struct conn *c)
{
    uint64_t t = wsd_now_ns();

    e->connecting--;
    e->res->opened++;
    c->st = ST_OPEN;
    switch (e->cfg->mode) {
    case WSB_MODE_CONN:
        if (t <= e->t_end)
            wsb_hist_record(&e->res->lat, t - c->t_start);
        wsb_start_close(e, c);
        break;
    case WSB_MODE_CHURN:
        wsb_send_message(e, c);
        wsb_post_send(e, c);
        break;
    case WSB_MODE_ECHO:
        if (e->phase == PH_RUN) { /* opened late (a slow connect): join the run now */
            for (unsigned i = 0; i < e->cfg->pipeline; i++)
                wsb_send_message(e, c);
            wsb_post_send(e, c);
        } else if (e->phase == PH_STOP) {
            wsb_start_close(e, c);
        }
        break;
    case WSB_MODE_KILL:
        if (e->cfg->warm && e->phase != PH_STOP) { /* its echo comes back during the settle */
            wsb_send_message(e, c);
            wsb_post_send(e, c);
        }
        /* fall through */
    case WSB_MODE_HOLD:
        if (e->phase == PH_STOP)
            wsb_start_close(e, c);
        break;
    case WSB_MODE_SPAWN:
    case WSB_MODE_SWITCH:
        break; /* probes: no connections */
    }
    wsb_maybe_start_more(e);
}

static void on_message_end(struct engine *e, struct conn *c)
{
    const struct wsb_config *cfg = e->cfg;
    uint64_t t = wsd_now_ns();

    if (c->rx_off != cfg->size)
        wsb_die("connection %u: echo of message %llu has %zu bytes, sent %zu", c->slot,
            (unsigned long long)c->rx_seq, c->rx_off, cfg->size);
    if (cfg->mode == WSB_MODE_ECHO && e->phase == PH_RUN && t <= e->t_end) {
        wsb_hist_record(&e->res->lat, t - c->tx_time[c->rx_seq % cfg->pipeline]);
        e->res->done++;
    }
    c->rx_seq++;
    c->rx_off = 0;
    if (cfg->mode == WSB_MODE_CHURN) {
        if (c->st == ST_OPEN)
            wsb_start_close(e, c);
    } else if (cfg->mode == WSB_MODE_ECHO) {
        if (e->phase == PH_RUN) {
            wsb_send_message(e, c); /* sent with the others this receive refills (feed_frames) */
        } else if (c->rx_seq == c->tx_seq && c->st == ST_OPEN) {
            wsb_start_close(e, c);
        }
    }
}

static void on_data(struct engine *e, struct conn *c, const struct wsd_ws_event *ev)
{
    const struct wsb_config *cfg = e->cfg;
    const uint8_t *want;

    if (ev->first) {
        if (c->rx_seq >= c->tx_seq)
            wsb_die("connection %u: server sent a message nobody asked for (%zu bytes)", c->slot,
                ev->len);
        if (ev->opcode != (cfg->binary ? WSD_OP_BINARY : WSD_OP_TEXT))
            wsb_die("connection %u: echo of message %llu has opcode %u, sent %u", c->slot,
                (unsigned long long)c->rx_seq, ev->opcode,
                cfg->binary ? WSD_OP_BINARY : WSD_OP_TEXT);
    }
    if (c->rx_off + ev->len > cfg->size)
        wsb_die("connection %u: echo of message %llu is longer than the %zu bytes sent", c->slot,
            (unsigned long long)c->rx_seq, cfg->size);
    want = message_bytes(e, c, c->rx_seq) + c->rx_off;
    if (memcmp(ev->data, want, ev->len) != 0) {
        size_t i = 0;
        while (ev->data[i] == want[i])
            i++;
        wsb_die("connection %u: echo of message %llu differs at byte %zu: got 0x%02x, sent 0x%02x",
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
        wsb_hist_record(&e->res->lat, wsd_now_ns() - e->t_kill);
        e->res->done++;
        e->kill_target = NULL;
        if (ev->close_code != e->cfg->kill_code)
            wsb_die("connection %u: killed with code %u, but the close frame says %u", c->slot,
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
    c->deadline = wsd_now_ns() + (uint64_t)(e->cfg->timeout_s * 1e9);
    wsb_post_send(e, c);
}

/* Everything one receive brought: the replacement messages and pongs it queues go out
 * together, in one send, once all of it is read (a send per message would cost this client,
 * not the server, most of its time). */
void wsb_feed_frames(struct engine *e, struct conn *c, uint8_t *buf, size_t len)
{
    struct wsd_ws_event ev;
    size_t pos = 0;
    int r;

    /* Call again while events come, even with nothing left: the event that ends a message
     * (MESSAGE_END) is reported by the call after the one that consumed its last byte. */
    for (;;) {
        if (c->st == ST_CLOSE_RECEIVED && pos < len)
            wsb_die("connection %u: %zu bytes after the server's close frame", c->slot, len - pos);
        r = wsd_ws_reader_feed(&c->rd, buf + pos, len - pos, &ev);
        if (r < 0)
            wsb_die("connection %u: protocol error from the server (close code %d)", c->slot,
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
    wsb_post_send(e, c);
}
