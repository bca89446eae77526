/* SPDX-License-Identifier: MIT */
/* The data path of one connection: bytes from the socket (or TLS) through the RFC 6455 receive
 * rules (proto/ws_reader.c) and permessage-deflate to whole messages for the handler, and
 * frames back out. Output is written at once when the socket takes it and buffered only when
 * it does not; reading pauses while too much is buffered. conn_recv and
 * wsd_conn_io_send_raw are the one place that knows whether wolfSSL is in the way. */
#include "core/conn_io.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/live.h"
#include "core/sys.h"
#include "core/tls.h"
#include "proto/close.h"
#include "proto/frame.h"
#include "proto/proto.h"
#include "proto/utf8.h"
#include "proto/ws_codes.h"

/* RFC 7692 6: compression is chosen per message. Below this size deflate's block header and
 * the frame's RSV1 buy nothing, so short messages go out as they are. */
#define DEFLATE_MIN_LEN 64
/* A batch gathers (copies) frames up to this many bytes, then writes them with the frame that
 * would pass it: beyond this the copy would cost more than the syscall it saves. */
#define BATCH_MAX 16384
#define SEND_IOV_MAX 2 /* pieces of one frame: header and payload */

/* Transport: read from the socket (waiting for bytes if wait) or through TLS (never waits).
 * Returns > 0, 0 at the end of the stream (TCP FIN or close_notify), -EAGAIN when nothing is
 * there now, or -errno. */
static ssize_t conn_recv(struct wsd_conn *c, void *buf, size_t n, bool wait)
{
    if (c->tls) {
        ssize_t r = wsd_tls_read(c->tls, buf, n);
        return r == WSD_TLS_WANT_READ || r == WSD_TLS_WANT_WRITE ? -EAGAIN : r;
    }
    ssize_t r = recv(c->fd, buf, n, wait ? 0 : MSG_DONTWAIT);
    return r < 0 ? (errno == EINTR ? -EAGAIN : -errno) : r;
}

/* Transport: write. Returns bytes taken (> 0), -EAGAIN, or -errno. Through TLS a call after
 * -EAGAIN must offer at least the same bytes again (the out buffer's head does). */
ssize_t wsd_conn_io_send_raw(struct wsd_conn *c, const void *buf, size_t n)
{
    if (c->tls) {
        ssize_t r = wsd_tls_write(c->tls, buf, n);
        return r == WSD_TLS_WANT_READ || r == WSD_TLS_WANT_WRITE ? -EAGAIN : r;
    }
    ssize_t r = send(c->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    return r < 0 ? (errno == EINTR ? -EAGAIN : -errno) : r;
}

void wsd_conn_io_writable(struct wsd_conn *c);

void wsd_conn_io_update_epoll(struct wsd_conn *c)
{
    uint32_t want = EPOLLRDHUP;
    if (c->state != ST_DONE &&
        ((c->out.len < c->out_pause && !c->input_paused) || c->state >= ST_FINISHING))
        want |= EPOLLIN;
    if (c->out_blocked) /* not merely gathered by a batch: that is written when it ends */
        want |= EPOLLOUT;
    if (want == c->ep_events)
        return;
    struct epoll_event ev = {.events = want, .data.u32 = EV_SOCKET};
    (void)epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->ep_events = want;
}

static void arm_timer(struct wsd_conn *c, uint64_t ms)
{
    c->close_deadline_ms = wsd_now_ms() + ms;
}

void wsd_conn_io_abort(struct wsd_conn *c)
{
    if (!c->code_set) {
        c->res.close_code = WSD_CLOSE_ABNORMAL;
        c->res.closed_by = WSD_CLOSED_ABNORMAL;
        c->code_set = true;
    }
    c->state = ST_DONE;
}

/* Write what is gathered in out plus iov as the socket takes it now, in one sendmsg; buffer
 * the rest. Inside a batch (the frames answering one read, or a handler's batch) small frames
 * are only gathered, and written together when the batch ends or grows past BATCH_MAX: a
 * syscall and a TCP segment per batch, not per frame. TLS gathers every frame first, so a
 * frame becomes one record, not one per piece. */
int wsd_conn_io_send_iov(struct wsd_conn *c, struct iovec *iov, int n)
{
    size_t total = 0, sent = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    bool gather = c->tls || c->out_blocked || (c->batch && c->out.len + total < BATCH_MAX);
    if (!gather && c->state != ST_DONE) {
        struct iovec all[1 + SEND_IOV_MAX];
        int k = 0;
        if (c->out.len > 0)
            all[k++] = (struct iovec){(void *)wsd_buf_head(&c->out), c->out.len};
        for (int i = 0; i < n && i < SEND_IOV_MAX; i++)
            all[k++] = iov[i];
        struct msghdr mh = {.msg_iov = all, .msg_iovlen = (size_t)k};
        ssize_t w = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
            wsd_conn_io_abort(c);
            return -EPIPE;
        }
        sent = w > 0 ? (size_t)w : 0;
        size_t from_out = sent < c->out.len ? sent : c->out.len;
        wsd_buf_consume(&c->out, from_out);
        sent -= from_out;
        c->out_blocked = c->out.len > 0 || sent < total;
    }
    for (int i = 0; i < n && sent < total; i++) {
        size_t skip = sent > iov[i].iov_len ? iov[i].iov_len : sent;
        sent -= skip;
        if (wsd_buf_append(&c->out, (uint8_t *)iov[i].iov_base + skip, iov[i].iov_len - skip))
            return -ENOMEM;
    }
    if (c->tls && c->state != ST_DONE && !c->batch)
        wsd_conn_io_writable(c);
    wsd_conn_io_update_epoll(c);
    return 0;
}

static int send_frame_rsv(struct wsd_conn *c, uint8_t rsv, uint8_t opcode, const uint8_t *data,
                          size_t len)
{
    uint8_t hdr[WSD_FRAME_HEADER_MAX];
    size_t hlen = wsd_frame_header_write(hdr, true, rsv, opcode, len, NULL);
    struct iovec iov[2] = {{hdr, hlen}, {(void *)data, len}};
    return wsd_conn_io_send_iov(c, iov, 2);
}

int wsd_conn_io_send_frame(struct wsd_conn *c, uint8_t opcode, const uint8_t *data, size_t len)
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
        return wsd_conn_io_send_frame(c, opcode, data, len);
    /* RFC 7692 6.1: one frame, RSV1 set, the compressed bytes without the 4-byte tail */
    wsd_buf_reset(&c->zout, IN_BUF_SIZE);
    int r = wsd_deflate_compress(&c->deflate, data, len, append_zout, c);
    if (r < 0) {
        fail(c, WSD_CLOSE_INTERNAL_ERROR); /* the deflater is unusable now: out of memory */
        return -ENOMEM;
    }
    if (c->zout.len >= len && c->deflate.params.server_no_context_takeover)
        r = wsd_conn_io_send_frame(c, opcode, data, len); /* incompressible, and no context to keep */
    else
        r = send_frame_rsv(c, WSD_FRAME_RSV1, opcode, wsd_buf_head(&c->zout), c->zout.len);
    wsd_buf_reset(&c->zout, IN_BUF_SIZE);
    return r;
}

/* Send our close frame (once) and wait for the client's. */
void wsd_conn_io_start_close(struct wsd_conn *c, uint16_t code, const char *reason)
{
    if (c->state != ST_OPEN)
        return;
    uint8_t payload[WSD_CONTROL_PAYLOAD_MAX];
    size_t n = wsd_close_payload_write(payload, code, reason, strlen(reason));
    (void)wsd_conn_io_send_frame(c, WSD_OP_CLOSE, payload, n);
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
    wsd_conn_io_start_close(c, code, reason);
}

void wsd_conn_pause_input(struct wsd_conn *c, bool pause)
{
    c->input_paused = pause;
    wsd_conn_io_update_epoll(c);
}

void wsd_conn_batch(struct wsd_conn *c, bool on)
{
    c->batch = on;
    if (!on && c->out.len > 0 && c->state != ST_DONE) {
        wsd_conn_io_writable(c);
        wsd_conn_io_update_epoll(c);
    }
}

size_t wsd_conn_unsent(const struct wsd_conn *c)
{
    return c->out.len;
}

/* RFC 6455 7.1.7: fail the connection: our close frame with the code, then the TCP close. */
static void fail(struct wsd_conn *c, uint16_t code)
{
    wsd_conn_io_start_close(c, code, "");
    if (c->state != ST_DONE)
        c->state = ST_FINISHING;
}

static void handle_close_frame(struct wsd_conn *c, const struct wsd_ws_event *ev)
{
    if (c->state == ST_OPEN) {
        /* RFC 6455 5.5.1: echo the status code; a close without one gets an empty close. */
        uint8_t payload[WSD_CONTROL_PAYLOAD_MAX];
        size_t n = wsd_close_payload_write(payload, ev->close_code, "", 0);
        (void)wsd_conn_io_send_frame(c, WSD_OP_CLOSE, payload, n);
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

/* The first piece of a message stays where it was read (unmasked in place) until the next
 * event: MESSAGE_END hands it to the handler from there, the common case of a message whole
 * in one read, with no copy; a second piece, or the end of the read, copies it into msg. */
static int keep_held(struct wsd_conn *c)
{
    if (!c->held)
        return 0;
    int r = wsd_buf_append(&c->msg, c->held, c->held_len);
    c->held = NULL;
    return r;
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
        } else if (ev->first) {
            c->held = ev->data; /* maybe the whole message: wait for the next event */
            c->held_len = ev->len;
        } else if (keep_held(c) < 0 || wsd_buf_append(&c->msg, ev->data, ev->len) < 0) {
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
        const uint8_t *data = c->held ? c->held : wsd_buf_head(&c->msg);
        size_t len = c->held ? c->held_len : c->msg.len;
        c->held = NULL;
        wsd_live.in_msgs++;
        wsd_live.in_bytes += len;
        c->handler->on_message(c, c->msg_opcode, data, len, c->userdata);
        wsd_buf_reset(&c->msg, IN_BUF_SIZE);
        break;
    case WSD_WS_EV_PING:
        if (c->state == ST_OPEN)
            (void)wsd_conn_io_send_frame(c, WSD_OP_PONG, ev->data, ev->len);
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

static void process_frames(struct wsd_conn *c, uint8_t *buf, size_t n)
{
    size_t off = 0;
    while (c->state == ST_OPEN || c->state == ST_CLOSING) {
        struct wsd_ws_event ev = {0};
        int r = wsd_ws_reader_feed(&c->reader, buf + off, n - off, &ev);
        if (r < 0) {
            fail(c, (uint16_t)wsd_proto_error_code(r));
            break;
        }
        off += (size_t)r;
        if (ev.type == WSD_WS_EV_NONE)
            break;
        handle_event(c, &ev);
    }
    if (keep_held(c) < 0) /* buf is reused by the next read */
        fail(c, WSD_CLOSE_INTERNAL_ERROR);
}

/* Run the receive rules over n bytes at buf, answering every message in them in one batch. */
void wsd_conn_io_input(struct wsd_conn *c, uint8_t *buf, size_t n)
{
    bool was_batch = c->batch;
    c->batch = true;
    process_frames(c, buf, n);
    c->batch = was_batch;
    if (!was_batch && c->out.len > 0 && !c->out_blocked && c->state != ST_DONE)
        wsd_conn_io_writable(c);
    wsd_conn_io_update_epoll(c);
}

void wsd_conn_io_read(struct wsd_conn *c, uint8_t *in, bool wait)
{
    ssize_t n = conn_recv(c, in, READ_SIZE, wait);
    if (n < 0) {
        if (n != -EAGAIN)
            wsd_conn_io_abort(c);
        return;
    }
    if (n == 0) {
        wsd_conn_io_abort(c); /* keeps the code of a close handshake already under way */
        return;
    }
    wsd_live.last_rx_ms = wsd_live.loop_ms = wsd_tick_ms(); /* per wakeup: see wsd_tick_ms */
    c->last_read = (size_t)n;
    wsd_conn_io_input(c, in, (size_t)n);
}

void wsd_conn_io_writable(struct wsd_conn *c)
{
    while (c->out.len > 0) {
        ssize_t w = wsd_conn_io_send_raw(c, wsd_buf_head(&c->out), c->out.len);
        if (w < 0) {
            if (w != -EAGAIN)
                wsd_conn_io_abort(c);
            break;
        }
        wsd_buf_consume(&c->out, (size_t)w);
    }
    c->out_blocked = c->out.len > 0;
    if (c->out.len == 0)
        wsd_buf_reset(&c->out, IN_BUF_SIZE);
}
