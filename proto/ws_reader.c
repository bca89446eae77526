/* SPDX-License-Identifier: MIT */
/* The receiving state machine of RFC 6455 5.4-5.6: it parses frame headers (possibly split),
 * enforces masking, opcode, RSV, control frame, fragmentation and size rules, unmasks data in
 * place and validates text incrementally, and reports one event per call. */
#include "proto/ws_reader.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

#include "proto/close.h"
#include "proto/proto.h"
#include "proto/utf8.h"
#include "proto/ws_codes.h"

void wsd_ws_reader_init(struct wsd_ws_reader *r, uint64_t max_message, uint32_t max_fragments,
                        bool expect_masked, bool allow_rsv1)
{
    memset(r, 0, sizeof(*r));
    r->max_message = max_message;
    r->max_compressed = max_message;
    r->max_fragments = max_fragments;
    r->expect_masked = expect_masked;
    r->allow_rsv1 = allow_rsv1;
    r->_utf8 = WSD_UTF8_ACCEPT;
}

static int fail(struct wsd_ws_reader *r, uint16_t code)
{
    r->_state = WSD_WS_READ_FAILED;
    r->_error = code;
    return WSD_PROTO_ERR_CLOSE(code);
}

static bool is_control(uint8_t opcode)
{
    return opcode & 0x8; /* RFC 6455 5.5: opcodes with the high bit set */
}

/* The checks the stateless header parser leaves to us. Returns 0 or the close code to fail with. */
static uint16_t check_header(const struct wsd_ws_reader *r, const struct wsd_frame_header *h)
{
    bool cont = h->opcode == WSD_OP_CONTINUATION;
    uint64_t sofar, limit;
    uint32_t frames;

    /* RFC 6455 5.1: clients mask every frame, servers none */
    if (h->masked != r->expect_masked)
        return WSD_CLOSE_PROTOCOL_ERROR;
    /* RFC 6455 5.2: RSV bits need a negotiated extension; only permessage-deflate exists, and
     * RFC 7692 6 puts its RSV1 on the first frame of a data message only. */
    if (h->rsv & (WSD_FRAME_RSV2 | WSD_FRAME_RSV3))
        return WSD_CLOSE_PROTOCOL_ERROR;
    switch (h->opcode) {
    case WSD_OP_CONTINUATION:
        if (r->_msg_opcode == 0 || (h->rsv & WSD_FRAME_RSV1)) /* RFC 6455 5.4 */
            return WSD_CLOSE_PROTOCOL_ERROR;
        break;
    case WSD_OP_TEXT:
    case WSD_OP_BINARY:
        /* RFC 6455 5.4: a new message may not start inside a fragmented one */
        if (r->_msg_opcode != 0 || ((h->rsv & WSD_FRAME_RSV1) && !r->allow_rsv1))
            return WSD_CLOSE_PROTOCOL_ERROR;
        break;
    case WSD_OP_CLOSE:
    case WSD_OP_PING:
    case WSD_OP_PONG:
        /* RFC 6455 5.5: control frames are <= 125 bytes and never fragmented */
        if ((h->rsv & WSD_FRAME_RSV1) || !h->fin || h->len > WSD_CONTROL_PAYLOAD_MAX)
            return WSD_CLOSE_PROTOCOL_ERROR;
        return 0;
    default: /* RFC 6455 5.2: 0x3-0x7 and 0xB-0xF are reserved */
        return WSD_CLOSE_PROTOCOL_ERROR;
    }

    /* RFC 6455 7.4.1: 1009 for a message too big to process, refused before its payload */
    frames = cont ? r->_msg_frames : 0;
    sofar = cont ? r->_msg_len : 0;
    limit = (cont ? r->_msg_compressed : (h->rsv & WSD_FRAME_RSV1)) ? r->max_compressed
                                                                    : r->max_message;
    if (r->max_fragments != 0 && frames >= r->max_fragments)
        return WSD_CLOSE_MESSAGE_TOO_BIG;
    if (h->len > limit || h->len > limit - sofar)
        return WSD_CLOSE_MESSAGE_TOO_BIG;
    return 0;
}

static void start_frame(struct wsd_ws_reader *r, const struct wsd_frame_header *h)
{
    r->_hdr = *h;
    r->_frame_done = 0;
    r->_state = WSD_WS_READ_PAYLOAD;
    if (is_control(h->opcode)) {
        r->_ctrl_len = 0;
        return;
    }
    if (h->opcode != WSD_OP_CONTINUATION) {
        r->_msg_opcode = h->opcode;
        r->_msg_compressed = h->rsv & WSD_FRAME_RSV1;
        r->_msg_started = false;
        r->_msg_len = 0;
        r->_msg_frames = 0;
        r->_utf8 = WSD_UTF8_ACCEPT;
    }
    r->_msg_frames++;
    r->_msg_len += h->len;
}

/* Parse a header from p, or from _hbuf when an earlier call left part of one there.
 * Returns bytes consumed from p (all of them when the header is still incomplete). */
static int read_header(struct wsd_ws_reader *r, const uint8_t *p, size_t avail)
{
    struct wsd_frame_header h;
    size_t old = r->_hlen, take;
    uint16_t code;
    int n;

    if (old == 0) {
        /* Fast path: the header is usually whole in the caller's buffer; no copy. */
        n = wsd_frame_header_parse(p, avail, &h);
        take = avail;
        if (n == WSD_PROTO_NEED_MORE)
            memcpy(r->_hbuf, p, avail); /* avail < 14: NEED_MORE means a header is longer */
    } else {
        take = WSD_FRAME_HEADER_MAX - old < avail ? WSD_FRAME_HEADER_MAX - old : avail;
        memcpy(r->_hbuf + old, p, take);
        n = wsd_frame_header_parse(r->_hbuf, old + take, &h);
    }
    if (n == WSD_PROTO_NEED_MORE) {
        r->_hlen = old + take;
        return (int)take;
    }
    if (n < 0)
        return fail(r, (uint16_t)wsd_proto_error_code(n));
    r->_hlen = 0;
    code = check_header(r, &h);
    if (code != 0)
        return fail(r, code);
    start_frame(r, &h);
    return n - (int)old;
}

/* Control payloads may arrive split: collect them in _ctrl and report at frame end. */
static int read_control(struct wsd_ws_reader *r, const uint8_t *p, size_t n,
                        struct wsd_ws_event *ev)
{
    uint8_t *dst = r->_ctrl + r->_ctrl_len;
    const uint8_t *reason;
    size_t reason_len;
    uint16_t code;
    int e;

    memcpy(dst, p, n);
    if (r->_hdr.masked)
        wsd_frame_mask(dst, n, r->_hdr.mask, r->_frame_done);
    r->_ctrl_len += n;
    r->_frame_done += n;
    if (r->_frame_done < r->_hdr.len)
        return (int)n;

    r->_state = WSD_WS_READ_HEADER;
    ev->opcode = r->_hdr.opcode;
    ev->data = r->_ctrl;
    ev->len = r->_ctrl_len;
    if (r->_hdr.opcode == WSD_OP_PING) {
        ev->type = WSD_WS_EV_PING;
    } else if (r->_hdr.opcode == WSD_OP_PONG) {
        ev->type = WSD_WS_EV_PONG;
    } else {
        e = wsd_close_payload_parse(r->_ctrl, r->_ctrl_len, &code, &reason, &reason_len);
        if (e < 0)
            return fail(r, (uint16_t)wsd_proto_error_code(e));
        ev->type = WSD_WS_EV_CLOSE;
        ev->close_code = code;
        ev->data = reason;
        ev->len = reason_len;
        r->_state = WSD_WS_READ_CLOSED; /* RFC 6455 5.5.1: nothing follows a close */
    }
    return (int)n;
}

static bool checks_utf8(const struct wsd_ws_reader *r)
{
    /* RFC 6455 8.1 for text; RFC 7692: a compressed message is checked after inflating */
    return r->_msg_opcode == WSD_OP_TEXT && !r->_msg_compressed;
}

/* Data payload: unmask in place and report it as DATA; at the end of a FIN frame, report
 * MESSAGE_END on the following call. Returns bytes consumed (possibly 0). */
static int read_data(struct wsd_ws_reader *r, uint8_t *p, size_t n, struct wsd_ws_event *ev)
{
    bool frame_end = r->_frame_done + n == r->_hdr.len;

    /* A 0-length first frame still reports DATA, so the caller learns the message began. */
    if (n > 0 || (r->_hdr.len == 0 && !r->_msg_started)) {
        if (r->_hdr.masked)
            wsd_frame_mask(p, n, r->_hdr.mask, r->_frame_done);
        if (checks_utf8(r)) {
            /* Fail fast (RFC 6455 8.1), and never hand invalid text to the caller. */
            r->_utf8 = wsd_utf8_validate(r->_utf8, p, n);
            if (r->_utf8 == WSD_UTF8_REJECT ||
                (frame_end && r->_hdr.fin && r->_utf8 != WSD_UTF8_ACCEPT))
                return fail(r, WSD_CLOSE_INVALID_PAYLOAD);
        }
        ev->type = WSD_WS_EV_DATA;
        ev->opcode = r->_msg_opcode;
        ev->first = !r->_msg_started;
        ev->compressed = r->_msg_compressed;
        ev->data = p;
        ev->len = n;
        r->_msg_started = true;
        r->_frame_done += n;
        if (frame_end && !r->_hdr.fin)
            r->_state = WSD_WS_READ_HEADER;
        return (int)n;
    }
    if (!frame_end)
        return 0; /* need more payload */
    r->_state = WSD_WS_READ_HEADER;
    if (!r->_hdr.fin)
        return 0;
    /* An empty final frame can still leave a character incomplete. */
    if (checks_utf8(r) && r->_utf8 != WSD_UTF8_ACCEPT)
        return fail(r, WSD_CLOSE_INVALID_PAYLOAD);
    ev->type = WSD_WS_EV_MESSAGE_END;
    ev->opcode = r->_msg_opcode;
    ev->compressed = r->_msg_compressed;
    r->_msg_opcode = 0;
    r->_msg_started = false;
    return 0;
}

static int read_payload(struct wsd_ws_reader *r, uint8_t *p, size_t avail, struct wsd_ws_event *ev)
{
    uint64_t left = r->_hdr.len - r->_frame_done;
    size_t n = avail < left ? avail : (size_t)left;

    if (is_control(r->_hdr.opcode))
        return read_control(r, p, n, ev);
    return read_data(r, p, n, ev);
}

int wsd_ws_reader_feed(struct wsd_ws_reader *r, uint8_t *buf, size_t len,
                       struct wsd_ws_event *ret_ev)
{
    struct wsd_ws_event ev = {.type = WSD_WS_EV_NONE};
    size_t pos = 0;
    int n;

    if (len > INT_MAX)
        len = INT_MAX;
    for (;;) {
        switch (r->_state) {
        case WSD_WS_READ_HEADER:
            if (pos == len)
                goto done;
            n = read_header(r, buf + pos, len - pos);
            if (n < 0)
                return n;
            pos += (size_t)n;
            break;
        case WSD_WS_READ_PAYLOAD:
            n = read_payload(r, buf + pos, len - pos, &ev);
            if (n < 0)
                return n;
            pos += (size_t)n;
            if (ev.type != WSD_WS_EV_NONE)
                goto done;
            if (r->_state == WSD_WS_READ_PAYLOAD) {
                assert(pos == len); /* only waiting for payload stays in PAYLOAD silently */
                goto done;
            }
            break;
        case WSD_WS_READ_CLOSED:
            if (pos == len)
                goto done;
            return fail(r, WSD_CLOSE_PROTOCOL_ERROR);
        case WSD_WS_READ_FAILED:
        default:
            return WSD_PROTO_ERR_CLOSE(r->_error);
        }
    }
done:
    *ret_ev = ev;
    return (int)pos;
}
