/* SPDX-License-Identifier: MIT */
/* The worker's side of one WebSocket connection: an epoll loop over the socket, a signalfd and
 * a timerfd. Whole messages go to the handler; output is written at once when the socket takes
 * it and buffered only when it does not, and reading pauses while too much is buffered.
 * A wss:// connection first runs its TLS front (core/tls_accept.c); after that every byte goes
 * through conn_recv/conn_send, the one place that knows whether wolfSSL is in the way. */
#include "core/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/handoff.h"
#include "core/listen.h"
#include "core/live.h"
#include "core/log.h"
#include "core/sys.h"
#include "core/tls.h"
#include "core/tls_accept.h"
#include "proto/close.h"
#include "proto/deflate.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/http_upgrade.h"
#include "proto/proto.h"
#include "proto/utf8.h"
#include "proto/ws_codes.h"
#include "proto/ws_reader.h"

#define IN_BUF_SIZE 65536
#define OUT_PAUSE_MIN (1u << 20) /* stop reading while this much (or 2 messages) is unsent */
#define LOG_PATH_MAX 256
/* RFC 7692 6: compression is chosen per message. Below this size deflate's block header and
 * the frame's RSV1 buy nothing, so short messages go out as they are. */
#define DEFLATE_MIN_LEN 64

enum conn_state {
    ST_OPEN,      /* messages flow both ways */
    ST_CLOSING,   /* our close frame is queued; frames are read until the client's close */
    ST_FINISHING, /* no more input is parsed; flush output, then half-close */
    ST_DRAIN,     /* half-closed: read and drop until the client closes or the timer fires */
    ST_DONE,
};

enum { EV_SOCKET = 1, EV_SIGNAL, EV_TIMER, EV_HEARTBEAT, EV_HANDLER = 16 /* + a handler's tag */ };

struct wsd_conn {
    const struct wsd_config *cfg;
    int fd, sig_fd, timer_fd, hb_fd, ep;
    uint64_t next_ping_ms;
    bool verdict_sent;
    wsd_conn_verdict_cb on_verdict;
    enum conn_state state;
    struct wsd_ws_reader reader;
    struct wsd_buf msg; /* the message being reassembled */
    uint8_t msg_opcode;
    bool pmd;                   /* permessage-deflate agreed */
    struct wsd_deflate deflate; /* its zlib state, allocated on first use */
    struct wsd_buf zout;        /* a compressed outgoing message */
    uint32_t msg_utf8;          /* UTF-8 state of an inflated text message */
    struct wsd_buf out;         /* bytes the socket has not taken yet */
    size_t out_pause;
    uint32_t ep_events; /* what fd is registered for */
    bool code_set;
    bool input_paused; /* the handler's backpressure */
    bool batch;        /* the handler is queueing several messages: write them at the end */
    bool end_told;     /* on_end has run */
    const struct wsd_conn_handler *handler;
    void *userdata;
    struct wsd_conn_result res;
    uint64_t id;
    uint64_t start_ms;
    char peer[WSD_ADDR_STRLEN];
    char path[LOG_PATH_MAX];
    struct wsd_tls *tls; /* wss://: the session every byte goes through; NULL for ws:// */
};

/* Transport: read from the socket or through TLS. Returns > 0, 0 at the end of the stream
 * (TCP FIN or close_notify), -EAGAIN when nothing is there now, or -errno. */
static ssize_t conn_recv(struct wsd_conn *c, void *buf, size_t n)
{
    if (c->tls) {
        ssize_t r = wsd_tls_read(c->tls, buf, n);
        return r == WSD_TLS_WANT_READ || r == WSD_TLS_WANT_WRITE ? -EAGAIN : r;
    }
    ssize_t r = recv(c->fd, buf, n, MSG_DONTWAIT);
    return r < 0 ? (errno == EINTR ? -EAGAIN : -errno) : r;
}

/* Transport: write. Returns bytes taken (> 0), -EAGAIN, or -errno. Through TLS a call after
 * -EAGAIN must offer at least the same bytes again (the out buffer's head does). */
static ssize_t conn_send(struct wsd_conn *c, const void *buf, size_t n)
{
    if (c->tls) {
        ssize_t r = wsd_tls_write(c->tls, buf, n);
        return r == WSD_TLS_WANT_READ || r == WSD_TLS_WANT_WRITE ? -EAGAIN : r;
    }
    ssize_t r = send(c->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    return r < 0 ? (errno == EINTR ? -EAGAIN : -errno) : r;
}

static void handle_writable(struct wsd_conn *c);

static void update_epoll(struct wsd_conn *c)
{
    uint32_t want = EPOLLRDHUP;
    if (c->state != ST_DONE &&
        ((c->out.len < c->out_pause && !c->input_paused) || c->state >= ST_FINISHING))
        want |= EPOLLIN;
    if (c->out.len > 0)
        want |= EPOLLOUT;
    if (want == c->ep_events)
        return;
    struct epoll_event ev = {.events = want, .data.u32 = EV_SOCKET};
    (void)epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->ep_events = want;
}

static void arm_timer(struct wsd_conn *c, uint64_t ms)
{
    struct itimerspec its = {
        .it_value = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L},
    };
    (void)timerfd_settime(c->timer_fd, 0, &its, NULL);
}

static void set_done_abnormal(struct wsd_conn *c)
{
    if (!c->code_set) {
        c->res.close_code = WSD_CLOSE_ABNORMAL;
        c->res.closed_by = WSD_CLOSED_ABNORMAL;
        c->code_set = true;
    }
    c->state = ST_DONE;
}

/* Write as much of iov as the socket takes now; buffer the rest. */
static int send_iov(struct wsd_conn *c, struct iovec *iov, int n)
{
    size_t total = 0, sent = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    /* Plain TCP writes the pieces straight from the caller's memory; TLS gathers them first,
     * so a frame becomes one record, not one per piece. A handler's batch is gathered too. */
    if (c->out.len == 0 && c->state != ST_DONE && !c->tls && !c->batch) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
            set_done_abnormal(c);
            return -EPIPE;
        }
        sent = w > 0 ? (size_t)w : 0;
    }
    for (int i = 0; i < n && sent < total; i++) {
        size_t skip = sent > iov[i].iov_len ? iov[i].iov_len : sent;
        sent -= skip;
        if (wsd_buf_append(&c->out, (uint8_t *)iov[i].iov_base + skip, iov[i].iov_len - skip))
            return -ENOMEM;
    }
    if (c->tls && c->state != ST_DONE && !c->batch)
        handle_writable(c);
    update_epoll(c);
    return 0;
}

static int send_frame_rsv(struct wsd_conn *c, uint8_t rsv, uint8_t opcode, const uint8_t *data,
                          size_t len)
{
    uint8_t hdr[WSD_FRAME_HEADER_MAX];
    size_t hlen = wsd_frame_header_write(hdr, true, rsv, opcode, len, NULL);
    struct iovec iov[2] = {{hdr, hlen}, {(void *)data, len}};
    return send_iov(c, iov, 2);
}

static int send_frame(struct wsd_conn *c, uint8_t opcode, const uint8_t *data, size_t len)
{
    return send_frame_rsv(c, 0, opcode, data, len);
}

static void fail(struct wsd_conn *c, uint16_t code);

static int append_zout(const uint8_t *data, size_t n, void *userdata)
{
    struct wsd_conn *c = userdata;
    return wsd_buf_append(&c->zout, data, n) < 0 ? WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INTERNAL_ERROR)
                                                 : 0;
}

int wsd_conn_send(struct wsd_conn *c, uint8_t opcode, const uint8_t *data, size_t len)
{
    if (c->state != ST_OPEN)
        return -EPIPE;
    wsd_live.out_msgs++;
    wsd_live.out_bytes += len;
    if (!c->pmd || len < DEFLATE_MIN_LEN)
        return send_frame(c, opcode, data, len);
    /* RFC 7692 6.1: one frame, RSV1 set, the compressed bytes without the 4-byte tail */
    wsd_buf_reset(&c->zout, IN_BUF_SIZE);
    int r = wsd_deflate_compress(&c->deflate, data, len, append_zout, c);
    if (r < 0) {
        fail(c, WSD_CLOSE_INTERNAL_ERROR); /* the deflater is unusable now: out of memory */
        return -ENOMEM;
    }
    if (c->zout.len >= len && c->deflate.params.server_no_context_takeover)
        r = send_frame(c, opcode, data, len); /* incompressible, and no context to keep */
    else
        r = send_frame_rsv(c, WSD_FRAME_RSV1, opcode, wsd_buf_head(&c->zout), c->zout.len);
    wsd_buf_reset(&c->zout, IN_BUF_SIZE);
    return r;
}

/* Send our close frame (once) and wait for the client's. */
static void start_close(struct wsd_conn *c, uint16_t code, const char *reason)
{
    if (c->state != ST_OPEN)
        return;
    uint8_t payload[WSD_CONTROL_PAYLOAD_MAX];
    size_t n = wsd_close_payload_write(payload, code, reason, strlen(reason));
    (void)send_frame(c, WSD_OP_CLOSE, payload, n);
    if (!c->code_set) {
        c->res.close_code = code;
        c->res.closed_by = WSD_CLOSED_BY_SERVER;
        c->code_set = true;
    }
    if (c->state != ST_DONE)
        c->state = ST_CLOSING;
    wsd_live.state = WSD_LIVE_CLOSING;
    arm_timer(c, c->cfg->close_timeout_ms);
}

void wsd_conn_close(struct wsd_conn *c, uint16_t code, const char *reason)
{
    start_close(c, code, reason);
}

int wsd_conn_watch(struct wsd_conn *c, int fd, uint32_t tag, uint32_t events)
{
    if (events == 0) {
        wsd_conn_unwatch(c, fd);
        return 0;
    }
    struct epoll_event ev = {.events = events, .data.u32 = EV_HANDLER + tag};
    if (epoll_ctl(c->ep, EPOLL_CTL_MOD, fd, &ev) == 0)
        return 0;
    if (errno == ENOENT && epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) == 0)
        return 0;
    return -errno;
}

void wsd_conn_unwatch(struct wsd_conn *c, int fd)
{
    (void)epoll_ctl(c->ep, EPOLL_CTL_DEL, fd, NULL);
}

void wsd_conn_pause_input(struct wsd_conn *c, bool pause)
{
    c->input_paused = pause;
    update_epoll(c);
}

void wsd_conn_batch(struct wsd_conn *c, bool on)
{
    c->batch = on;
    if (!on && c->out.len > 0 && c->state != ST_DONE) {
        handle_writable(c);
        update_epoll(c);
    }
}

size_t wsd_conn_unsent(const struct wsd_conn *c)
{
    return c->out.len;
}

/* RFC 6455 7.1.7: fail the connection: our close frame with the code, then the TCP close. */
static void fail(struct wsd_conn *c, uint16_t code)
{
    start_close(c, code, "");
    if (c->state != ST_DONE)
        c->state = ST_FINISHING;
}

static void handle_close_frame(struct wsd_conn *c, const struct wsd_ws_event *ev)
{
    if (c->state == ST_OPEN) {
        /* RFC 6455 5.5.1: echo the status code; a close without one gets an empty close. */
        uint8_t payload[WSD_CONTROL_PAYLOAD_MAX];
        size_t n = wsd_close_payload_write(payload, ev->close_code, "", 0);
        (void)send_frame(c, WSD_OP_CLOSE, payload, n);
        c->res.close_code = ev->close_code;
        c->res.closed_by = WSD_CLOSED_BY_CLIENT;
        c->code_set = true;
        arm_timer(c, c->cfg->close_timeout_ms);
    }
    if (c->state != ST_DONE)
        c->state = ST_FINISHING;
}

/* Inflated bytes: append to the message; text is checked here, since the reader cannot see
 * inside a compressed message (RFC 7692 6.2, RFC 6455 8.1). */
static int append_inflated(const uint8_t *data, size_t n, void *userdata)
{
    struct wsd_conn *c = userdata;
    if (c->msg_opcode == WSD_OP_TEXT) {
        c->msg_utf8 = wsd_utf8_validate(c->msg_utf8, data, n);
        if (c->msg_utf8 == WSD_UTF8_REJECT)
            return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INVALID_PAYLOAD);
    }
    return wsd_buf_append(&c->msg, data, n) < 0 ? WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INTERNAL_ERROR) : 0;
}

/* A piece of a compressed message, or (last) its end. Returns 0 or the close code to fail
 * with. Inflating stops at WSD_MAX_MESSAGE bytes: a zip bomb costs no more than that. */
static uint16_t inflate_piece(struct wsd_conn *c, const uint8_t *data, size_t len, bool last)
{
    if (c->state != ST_OPEN)
        return 0; /* closing: the message will never be delivered */
    int r =
        wsd_deflate_inflate(&c->deflate, data, len, last, c->cfg->max_message, append_inflated, c);
    if (r < 0)
        return (uint16_t)wsd_proto_error_code(r);
    if (last && c->msg_opcode == WSD_OP_TEXT && c->msg_utf8 != WSD_UTF8_ACCEPT)
        return WSD_CLOSE_INVALID_PAYLOAD; /* text ends inside a character */
    return 0;
}

static void handle_event(struct wsd_conn *c, const struct wsd_ws_event *ev)
{
    uint16_t code;
    switch (ev->type) {
    case WSD_WS_EV_DATA:
        if (ev->first) {
            wsd_buf_reset(&c->msg, c->cfg->max_message);
            c->msg_opcode = ev->opcode;
            c->msg_utf8 = WSD_UTF8_ACCEPT;
        }
        if (ev->compressed) {
            code = inflate_piece(c, ev->data, ev->len, false);
            if (code != 0)
                fail(c, code);
        } else if (wsd_buf_append(&c->msg, ev->data, ev->len) < 0) {
            fail(c, WSD_CLOSE_INTERNAL_ERROR);
        }
        break;
    case WSD_WS_EV_MESSAGE_END:
        if (c->state != ST_OPEN)
            break;
        code = ev->compressed ? inflate_piece(c, NULL, 0, true) : 0;
        if (code != 0) {
            fail(c, code);
            break;
        }
        wsd_live.in_msgs++;
        wsd_live.in_bytes += c->msg.len;
        c->handler->on_message(c, c->msg_opcode, wsd_buf_head(&c->msg), c->msg.len,
                               c->userdata);
        wsd_buf_reset(&c->msg, IN_BUF_SIZE);
        break;
    case WSD_WS_EV_PING:
        if (c->state == ST_OPEN)
            (void)send_frame(c, WSD_OP_PONG, ev->data, ev->len);
        break;
    case WSD_WS_EV_PONG: {
        /* Our pings carry their send time; an unsolicited pong is just traffic. */
        uint64_t sent_ns;
        if (ev->len == sizeof(sent_ns)) {
            memcpy(&sent_ns, ev->data, sizeof(sent_ns));
            uint64_t now = wsd_now_ns();
            if (sent_ns <= now && now - sent_ns < 3600ull * 1000000000ull) {
                wsd_live.rtt_us = (now - sent_ns) / 1000;
                wsd_live.last_pong_ms = now / 1000000;
            }
        }
        break;
    }
    case WSD_WS_EV_CLOSE:
        handle_close_frame(c, ev);
        break;
    case WSD_WS_EV_NONE:
        break;
    }
}

/* Run the receive rules over n bytes at buf. */
static void process_input(struct wsd_conn *c, uint8_t *buf, size_t n)
{
    size_t off = 0;
    while (c->state == ST_OPEN || c->state == ST_CLOSING) {
        struct wsd_ws_event ev = {0};
        int r = wsd_ws_reader_feed(&c->reader, buf + off, n - off, &ev);
        if (r < 0) {
            fail(c, (uint16_t)wsd_proto_error_code(r));
            return;
        }
        off += (size_t)r;
        if (ev.type == WSD_WS_EV_NONE)
            return;
        handle_event(c, &ev);
    }
}

static void handle_readable(struct wsd_conn *c, uint8_t *in)
{
    ssize_t n = conn_recv(c, in, IN_BUF_SIZE);
    if (n < 0) {
        if (n != -EAGAIN)
            set_done_abnormal(c);
        return;
    }
    if (n == 0) {
        set_done_abnormal(c); /* keeps the code of a close handshake already under way */
        return;
    }
    wsd_live.last_rx_ms = wsd_live.loop_ms = wsd_now_ms();
    process_input(c, in, (size_t)n);
}

static void handle_writable(struct wsd_conn *c)
{
    while (c->out.len > 0) {
        ssize_t w = conn_send(c, wsd_buf_head(&c->out), c->out.len);
        if (w < 0) {
            if (w != -EAGAIN)
                set_done_abnormal(c);
            break;
        }
        wsd_buf_consume(&c->out, (size_t)w);
    }
    if (c->out.len == 0)
        wsd_buf_reset(&c->out, IN_BUF_SIZE);
}

/* Read one termination from the signalfd. Returns false if there was none, or it names a
 * connection this worker served before (not ours); else true with the close code and reason
 * (buf holds it). */
static bool read_termination(struct wsd_conn *c, uint16_t *code, const char **reason,
                             char buf[WSD_KILL_REASON_MAX + 1])
{
    struct signalfd_siginfo si;
    if (read(c->sig_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return false;
    *code = WSD_CLOSE_GOING_AWAY;
    *reason = "";
    c->res.leave = si.ssi_code != SI_QUEUE || wsd_kill_value_conn(si.ssi_ptr) == 0;
    if (si.ssi_code == SI_QUEUE) {
        uint64_t id = wsd_kill_value_conn(si.ssi_ptr);
        if (id != 0 && id != c->id)
            return false; /* meant for a connection this worker served before: not ours */
        if (wsd_kill_value_code(si.ssi_ptr) != 0)
            *code = wsd_kill_value_code(si.ssi_ptr);
        const struct wsd_kill_mailbox *m = &wsd_kill_mailbox;
        if (id != 0 && m->conn_id == id && m->reason_len <= WSD_KILL_REASON_MAX) {
            memcpy(buf, m->reason, m->reason_len);
            buf[m->reason_len] = '\0';
            *reason = buf;
        }
    }
    return true;
}

static void handle_signal(struct wsd_conn *c)
{
    uint16_t code;
    const char *reason;
    char buf[WSD_KILL_REASON_MAX + 1];
    if (!read_termination(c, &code, &reason, buf))
        return;
    /* A plain SIGTERM (kill -TERM pid) closes whatever this worker serves: the one racy path,
     * kept for scripts; wsctl's signals name their connection. */
    if (c->state == ST_OPEN)
        start_close(c, code, reason);
    else
        c->state = ST_DONE; /* a second termination while closing: stop waiting */
}

/* One timer for both heartbeat duties: the next ping, and the moment the client has been
 * silent for interval + timeout (RFC 6455 5.5.2 ping, then our verdict). */
static void arm_heartbeat(struct wsd_conn *c)
{
    uint64_t interval = c->cfg->ping_interval_ms;
    if (interval == 0)
        return;
    uint64_t now = wsd_now_ms();
    uint64_t wake = c->next_ping_ms;
    uint64_t dead_at = wsd_live.last_rx_ms + interval + c->cfg->ping_timeout_ms;
    if (!c->verdict_sent && dead_at < wake)
        wake = dead_at;
    struct itimerspec its = {0};
    uint64_t ms = wake > now ? wake - now : 1;
    its.it_value.tv_sec = (time_t)(ms / 1000);
    its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
    (void)timerfd_settime(c->hb_fd, 0, &its, NULL);
}

static void handle_heartbeat(struct wsd_conn *c)
{
    uint64_t expirations;
    (void)!read(c->hb_fd, &expirations, sizeof(expirations));
    uint64_t now = wsd_now_ms();
    wsd_live.loop_ms = now;
    if (!c->verdict_sent &&
        now >= wsd_live.last_rx_ms + c->cfg->ping_interval_ms + c->cfg->ping_timeout_ms) {
        c->verdict_sent = true;
        if (c->on_verdict)
            c->on_verdict(c->id, WSD_VERDICT_HEARTBEAT, c->userdata);
    }
    if (now >= c->next_ping_ms) {
        if (c->state == ST_OPEN) {
            uint64_t sent_ns = wsd_now_ns();
            (void)send_frame(c, WSD_OP_PING, (const uint8_t *)&sent_ns, sizeof(sent_ns));
        }
        c->next_ping_ms = now + c->cfg->ping_interval_ms;
    }
    arm_heartbeat(c);
}

/* RFC 7692 5: the first acceptable offer, looking through every Sec-WebSocket-Extensions
 * header in order (RFC 9110 5.3: several are one comma-separated list). */
static void negotiate_deflate(struct wsd_conn *c, const struct wsd_http_upgrade *req,
                              char ext[WSD_DEFLATE_RESPONSE_MAX])
{
    struct wsd_deflate_params params;
    for (size_t i = 0; i < req->num_headers && !c->pmd; i++) {
        const struct wsd_http_header *h = &req->headers[i];
        if (h->name.len == strlen("Sec-WebSocket-Extensions") &&
            strncasecmp(h->name.ptr, "Sec-WebSocket-Extensions", h->name.len) == 0 &&
            wsd_deflate_negotiate(h->value.ptr, h->value.len, &params) == 1 &&
            wsd_deflate_response_write(&params, ext, WSD_DEFLATE_RESPONSE_MAX) > 0) {
            wsd_deflate_init(&c->deflate, &params);
            c->pmd = true;
            c->reader.allow_rsv1 = true; /* RFC 7692 6: RSV1 marks a compressed message */
            /* WSD_MAX_MESSAGE limits the inflated size (counted while inflating). On the wire
             * a compressed message can be bigger than that: incompressible data grows by up
             * to 1/8 in fixed-Huffman blocks, by 5 bytes per 64 KiB in stored ones. */
            c->reader.max_compressed = c->cfg->max_message + c->cfg->max_message / 8 + 1024;
        }
    }
}

/* The handler refused the upgrade: answer with the HTTP status and end (nothing was opened).
 * Returns 1, which wsd_conn_serve takes as "done, not an error". */
static int refuse(struct wsd_conn *c, int status)
{
    char resp[512];
    size_t n = wsd_handshake_response_error(resp, sizeof(resp), status, 0);
    if (n > 0)
        (void)conn_send(c, resp, n); /* through TLS on wss:// (close_notify follows at the end) */
    wsd_log_info("refused conn=%" PRIu64 " peer=%s path=%s status=%d", c->id, c->peer, c->path,
                 status);
    return 1;
}

/* Parse the handed-off request again for what the connection needs, and queue the 101. */
static int send_upgrade(struct wsd_conn *c, const struct wsd_conn_params *p, uint32_t n)
{
    struct wsd_http_upgrade req = {0};
    if (wsd_http_upgrade_parse(&req, p->payload, n, n) != (int)n)
        return -EBADMSG;
    size_t plen = req.target.len < LOG_PATH_MAX - 1 ? req.target.len : LOG_PATH_MAX - 1;
    memcpy(c->path, req.target.ptr, plen);
    c->path[plen] = '\0';
    if (c->handler->on_request) {
        struct wsd_conn_request r = {.http = &req, .handoff = p->handoff, .fd = c->fd};
        int status = c->handler->on_request(c, &r, c->userdata);
        if (status != 0)
            return refuse(c, status);
    }
    char accept[WSD_ACCEPT_LEN + 1];
    if (wsd_handshake_accept(req.key.ptr, req.key.len, accept) < 0)
        return -EINVAL;
    char ext[WSD_DEFLATE_RESPONSE_MAX] = "";
    if (c->cfg->deflate)
        negotiate_deflate(c, &req, ext);
    char resp[512];
    size_t len = wsd_handshake_response_101(resp, sizeof(resp), accept, c->pmd ? ext : NULL, NULL);
    if (len == 0)
        return -EINVAL;
    struct iovec iov = {resp, len};
    return send_iov(c, &iov, 1);
}

static int setup(struct wsd_conn *c, const struct wsd_conn_params *p)
{
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    c->hb_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (c->ep < 0 || c->timer_fd < 0 || c->hb_fd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = EV_SOCKET};
    c->ep_events = ev.events;
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        return -errno;
    ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = EV_SIGNAL};
    if (!p->ignore_term && epoll_ctl(c->ep, EPOLL_CTL_ADD, p->sig_fd, &ev) < 0)
        return -errno;
    ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = EV_TIMER};
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, c->timer_fd, &ev) < 0)
        return -errno;
    ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = EV_HEARTBEAT};
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, c->hb_fd, &ev) < 0)
        return -errno;
    return 0;
}

static void log_close(const struct wsd_conn *c)
{
    static const char *const by[] = {"client", "server", "abnormal"};
    const struct wsd_log_field f[] = {
        WSD_LOG_NUM("conn", c->id),
        WSD_LOG_NUM("pid", (uint64_t)getpid()),
        WSD_LOG_STR("peer", c->peer),
        WSD_LOG_STR("path", c->path),
        WSD_LOG_NUM("duration_ms", wsd_now_ms() - c->start_ms),
        WSD_LOG_NUM("in_msgs", wsd_live.in_msgs),
        WSD_LOG_NUM("in_bytes", wsd_live.in_bytes),
        WSD_LOG_NUM("out_msgs", wsd_live.out_msgs),
        WSD_LOG_NUM("out_bytes", wsd_live.out_bytes),
        WSD_LOG_NUM("code", c->res.close_code),
        WSD_LOG_STR("by", by[c->res.closed_by]),
    };
    wsd_log_event(WSD_LOG_INFO, "close", f, sizeof(f) / sizeof(f[0]));
}

static void run(struct wsd_conn *c, uint8_t *in)
{
    while (c->state != ST_DONE) {
        if (c->state == ST_FINISHING && c->out.len == 0) {
            if (c->tls)
                wsd_tls_shutdown(c->tls); /* close_notify after our last frame */
            (void)shutdown(c->fd, SHUT_WR);
            c->state = ST_DRAIN;
        }
        if (c->state != ST_OPEN && !c->end_told) {
            c->end_told = true;
            if (c->handler->on_end)
                c->handler->on_end(c, c->userdata);
        }
        int timeout = c->handler->on_loop ? c->handler->on_loop(c, c->userdata) : -1;
        update_epoll(c);
        /* wolfSSL may hold records it read but not yet handed out: epoll cannot see those. */
        bool pending = c->tls && (c->ep_events & EPOLLIN) && wsd_tls_has_pending(c->tls);
        struct epoll_event evs[8];
        int n = epoll_wait(c->ep, evs, 8, pending ? 0 : timeout);
        if (n == 0 && pending)
            handle_readable(c, in);
        for (int i = 0; i < n && c->state != ST_DONE; i++) {
            switch (evs[i].data.u32) {
            case EV_SOCKET:
                if (evs[i].events & EPOLLOUT)
                    handle_writable(c);
                if (c->input_paused && c->state == ST_OPEN &&
                    (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                    set_done_abnormal(c); /* gone while its handler could take no input */
                else if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                    handle_readable(c, in);
                break;
            case EV_SIGNAL:
                handle_signal(c);
                break;
            case EV_TIMER:
                c->state = ST_DONE; /* the client never finished the close handshake */
                break;
            case EV_HEARTBEAT:
                handle_heartbeat(c);
                break;
            default:
                c->handler->on_fd(c, evs[i].data.u32 - EV_HANDLER, evs[i].events, c->userdata);
                break;
            }
        }
    }
}

/* During the TLS front a termination naming this connection (or a plain SIGTERM) ends it;
 * one meant for an earlier connection, or for idle workers only, is dropped. */
static bool front_on_signal(void *userdata)
{
    struct wsd_conn *c = userdata;
    uint16_t code;
    const char *reason;
    char buf[WSD_KILL_REASON_MAX + 1];
    return read_termination(c, &code, &reason, buf);
}

/* wss://: TLS handshake and request through TLS. Returns 0 (c->tls set, the request in the
 * payload), -EPROTO when the connection ended there (logged, reported in c->res.refused),
 * or -errno. */
static int run_tls_front(struct wsd_conn *c, const struct wsd_conn_params *p, uint32_t *request,
                         uint32_t *extra)
{
    struct wsd_tls_accept a = {
        .ctx = p->tls,
        .fd = c->fd,
        .sig_fd = p->ignore_term ? -1 : p->sig_fd,
        .deadline_ms = p->handoff->accepted_ns / 1000000 + p->cfg->handshake_timeout_ms,
        .max_header = p->cfg->max_header_bytes,
        .payload = p->payload,
        .cap = p->payload_cap,
        .peer = c->peer,
        .on_signal = front_on_signal,
        .userdata = c,
    };
    if (!p->tls)
        return -EINVAL;
    int refused;
    int r = wsd_tls_accept_run(&a, &c->tls, request, extra, &refused);
    c->res.refused = refused;
    if (r == -ENOMEM)
        return r;
    return r < 0 ? -EPROTO : 0;
}

int wsd_conn_serve(const struct wsd_conn_params *p, struct wsd_conn_result *ret)
{
    static uint8_t in[IN_BUF_SIZE];
    *ret = (struct wsd_conn_result){.close_code = WSD_CLOSE_ABNORMAL,
                                    .refused = WSD_TLS_REFUSED_NONE};
    struct wsd_conn c = {
        .cfg = p->cfg,
        .fd = p->fd,
        .sig_fd = p->sig_fd,
        .timer_fd = -1,
        .hb_fd = -1,
        .ep = -1,
        .handler = p->handler,
        .on_verdict = p->on_verdict,
        .userdata = p->userdata,
        .id = p->handoff->conn_id,
        .start_ms = wsd_now_ms(),
        .res = {.close_code = WSD_CLOSE_ABNORMAL, .refused = WSD_TLS_REFUSED_NONE},
        .out_pause = p->cfg->max_message * 2 > OUT_PAUSE_MIN ? p->cfg->max_message * 2
                                                             : OUT_PAUSE_MIN,
    };
    wsd_addr_format(&p->handoff->peer, c.peer);
    /* Scrub what a previous connection of this worker left (WSD_WORKER_REUSE). */
    wsd_live = (struct wsd_conn_live){
        .magic = WSD_LIVE_MAGIC,
        .conn_id = c.id,
        .state = WSD_LIVE_OPEN,
        .last_rx_ms = c.start_ms,
        .loop_ms = c.start_ms,
    };
    c.next_ping_ms = c.start_ms + p->cfg->ping_interval_ms;
    wsd_ws_reader_init(&c.reader, p->cfg->max_message, (uint32_t)p->cfg->max_fragments, true,
                       false);
    /* TCP_NODELAY comes from the listening socket (supervisor.c): frames are written whole. */
    uint32_t request = p->handoff->request_len, extra = p->handoff->extra_len;
    int r = 0;
    if (p->handoff->flags & WSD_HANDOFF_TLS)
        r = run_tls_front(&c, p, &request, &extra);
    if (r == -EPROTO) {
        *ret = c.res; /* refused or left during the TLS front: already logged */
        r = 0;
        goto out;
    }
    if (r == 0)
        r = setup(&c, p);
    if (r == 0)
        r = send_upgrade(&c, p, request);
    if (r == 1) { /* refused by the handler, and logged */
        r = 0;
        goto out;
    }
    if (r < 0) {
        wsd_log_error(r, "setting up conn=%" PRIu64 " peer=%s failed", c.id, c.peer);
        goto out;
    }
    const struct wsd_log_field opened[] = {
        WSD_LOG_NUM("conn", c.id),
        WSD_LOG_NUM("pid", (uint64_t)getpid()),
        WSD_LOG_STR("peer", c.peer),
        WSD_LOG_STR("path", c.path),
        WSD_LOG_STR("tls", "yes"), /* last: left out for ws:// */
    };
    wsd_log_event(WSD_LOG_INFO, "open", opened,
                  sizeof(opened) / sizeof(opened[0]) - (c.tls ? 0 : 1));
    if (p->on_open)
        p->on_open(c.id, c.path, p->userdata);
    if (c.handler->on_open)
        c.handler->on_open(&c, c.userdata);
    if (extra > 0) /* a client may send its first frames with the request */
        process_input(&c, p->payload + request, extra);
    arm_heartbeat(&c);
    run(&c, in);
    if (!c.end_told && c.handler->on_end)
        c.handler->on_end(&c, c.userdata);
    log_close(&c);
    c.res.in_msgs = wsd_live.in_msgs;
    c.res.in_bytes = wsd_live.in_bytes;
    c.res.out_msgs = wsd_live.out_msgs;
    c.res.out_bytes = wsd_live.out_bytes;
    *ret = c.res;
out:
    wsd_live.state = WSD_LIVE_IDLE;
    wsd_live.conn_id = 0;
    if (c.tls) {
        wsd_tls_shutdown(c.tls); /* every close ends with close_notify (a no-op if sent) */
        c.tls = wsd_tls_free(c.tls);
    }
    wsd_close(c.fd);
    wsd_close(c.timer_fd);
    wsd_close(c.hb_fd);
    wsd_close(c.ep);
    wsd_buf_done(&c.msg);
    wsd_buf_done(&c.out);
    wsd_buf_done(&c.zout);
    wsd_deflate_done(&c.deflate);
    return r;
}
