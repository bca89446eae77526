/* SPDX-License-Identifier: MIT */
/* Proves the receiving state machine follows RFC 6455 5.1-5.6, 7.4 and 8.1: masking, reserved
 * opcodes and RSV bits, control frame rules, fragmentation order, UTF-8 across fragments and in
 * close reasons, and the 1009 limits. Every input is fed whole, byte by byte and split at every
 * point, ending at a PROT_NONE page, and must give the same events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/frame.h"
#include "proto/proto.h"
#include "proto/ws_codes.h"
#include "proto/ws_reader.h"
#include "tests/unit/feed.h"

#define ERR(code) WSD_PROTO_ERR_CLOSE(code)
#define E1002 ERR(WSD_CLOSE_PROTOCOL_ERROR)
#define E1007 ERR(WSD_CLOSE_INVALID_PAYLOAD)
#define E1009 ERR(WSD_CLOSE_MESSAGE_TOO_BIG)
#define MAX_EVENTS 64

struct cfg {
    uint64_t max_message;
    uint32_t max_fragments;
    bool masked; /* expect_masked: true for a server reading client frames */
    bool rsv1;
};

static const struct cfg server = {.max_message = 1 << 20, .masked = true};
static const struct cfg client = {.max_message = 1 << 20, .masked = false};

/* Recorded events, with consecutive DATA pieces of one message merged, so that traces from
 * different feeding modes compare equal. */
struct rec {
    enum wsd_ws_event_type type;
    uint8_t opcode;
    bool first, compressed;
    uint16_t code;
    size_t off, len; /* into trace.data */
};

struct trace {
    int result; /* 0, or the error the reader returned */
    size_t n;
    struct rec ev[MAX_EVENTS];
    uint8_t *data;
    size_t data_len, data_cap;
};

static void trace_add(struct trace *t, enum wsd_ws_event_type type, uint8_t opcode, bool first,
                      bool compressed, uint16_t code, const void *data, size_t len)
{
    struct rec *last = t->n > 0 ? &t->ev[t->n - 1] : NULL;

    if (t->data_len + len > t->data_cap) {
        t->data_cap = (t->data_len + len) * 2;
        t->data = realloc(t->data, t->data_cap);
        assert_non_null(t->data);
    }
    if (len > 0)
        memcpy(t->data + t->data_len, data, len);
    t->data_len += len;
    if (type == WSD_WS_EV_DATA && !first && last && last->type == WSD_WS_EV_DATA) {
        last->len += len;
        return;
    }
    assert_true(t->n < MAX_EVENTS);
    t->ev[t->n++] = (struct rec){type, opcode, first, compressed, code, t->data_len - len, len};
}

static void trace_done(struct trace *t)
{
    free(t->data);
    memset(t, 0, sizeof(*t));
}

/* Expectation builders. */
static void want_data(struct trace *t, uint8_t op, const void *p, size_t len)
{
    trace_add(t, WSD_WS_EV_DATA, op, true, false, 0, p, len);
}

static void want_more(struct trace *t, uint8_t op, const void *p, size_t len)
{
    trace_add(t, WSD_WS_EV_DATA, op, false, false, 0, p, len);
}

static void want_end(struct trace *t, uint8_t op)
{
    trace_add(t, WSD_WS_EV_MESSAGE_END, op, false, false, 0, NULL, 0);
}

static void want_ctrl(struct trace *t, enum wsd_ws_event_type type, uint16_t code, const void *p,
                      size_t len)
{
    uint8_t op = type == WSD_WS_EV_PING   ? WSD_OP_PING
                 : type == WSD_WS_EV_PONG ? WSD_OP_PONG
                                          : WSD_OP_CLOSE;

    trace_add(t, type, op, false, false, code, p, len);
}

static void record(struct trace *t, const struct wsd_ws_event *ev)
{
    trace_add(t, ev->type, ev->opcode, ev->first, ev->compressed,
              ev->type == WSD_WS_EV_CLOSE ? ev->close_code : 0, ev->data, ev->len);
}

/* Feed buf in mode into a fresh reader. On error, the reader must stay failed. */
static void run(const struct cfg *c, uint8_t *buf, size_t len, size_t mode, struct trace *t)
{
    struct wsd_ws_reader r;
    struct wsd_ws_event ev;
    size_t pos = 0, end;
    int n;

    wsd_ws_reader_init(&r, c->max_message, c->max_fragments, c->masked, c->rsv1);
    do {
        end = feed_piece_end(len, mode, pos);
        for (;;) {
            n = wsd_ws_reader_feed(&r, buf + pos, end - pos, &ev);
            if (n < 0) {
                t->result = n;
                assert_int_equal(wsd_ws_reader_feed(&r, buf + pos, end - pos, &ev), n);
                assert_int_equal(wsd_ws_reader_feed(&r, buf + pos, 0, &ev), n);
                return;
            }
            assert_true((size_t)n <= end - pos);
            /* DATA is a view of the bytes just consumed, unmasked in place. */
            if (ev.type == WSD_WS_EV_DATA)
                assert_ptr_equal(ev.data + ev.len, buf + pos + (size_t)n);
            pos += (size_t)n;
            if (ev.type == WSD_WS_EV_NONE) {
                assert_int_equal(pos, end); /* NONE means everything was consumed */
                break;
            }
            record(t, &ev);
        }
    } while (pos < len);
    t->result = 0;
}

static bool rec_equal(const struct trace *a, const struct rec *x, const struct trace *b,
                      const struct rec *y)
{
    return x->type == y->type && x->opcode == y->opcode && x->first == y->first &&
           x->compressed == y->compressed && x->code == y->code && x->len == y->len &&
           (x->len == 0 || memcmp(a->data + x->off, b->data + y->off, x->len) == 0);
}

/* Successful runs must match exactly. A failed run's DATA depends on where the feeding stopped
 * (the reader never reports a piece holding invalid text), so only its other events and the
 * error must match. */
static void compare(const struct trace *got, const struct trace *want, size_t mode)
{
    size_t i = 0, j = 0;
    bool loose = want->result != 0;

    if (got->result != want->result)
        fail_msg("%s (mode %zu): result %d, want %d", feed_mode_name(mode), mode, got->result,
                 want->result);
    for (;;) {
        while (loose && i < got->n && got->ev[i].type == WSD_WS_EV_DATA)
            i++;
        while (loose && j < want->n && want->ev[j].type == WSD_WS_EV_DATA)
            j++;
        if (i == got->n || j == want->n)
            break;
        if (!rec_equal(got, &got->ev[i], want, &want->ev[j]))
            fail_msg("%s (mode %zu): event %zu differs (type %d len %zu, want type %d len %zu)",
                     feed_mode_name(mode), mode, i, got->ev[i].type, got->ev[i].len,
                     want->ev[j].type, want->ev[j].len);
        i++, j++;
    }
    if (i != got->n || j != want->n)
        fail_msg("%s (mode %zu): %zu events, want %zu", feed_mode_name(mode), mode, got->n,
                 want->n);
}

/* Feed in every mode and compare with want, which this frees. */
static void check(const struct cfg *c, const uint8_t *in, size_t len, struct trace *want)
{
    struct trace got = {0};
    struct feed_guard g;

    feed_guard_init(&g, len);
    for (size_t mode = 0; mode < feed_mode_count(len); mode++) {
        got.n = got.data_len = 0; /* keep the arena: the 64KiB case runs 65551 times */
        run(c, feed_guard_put(&g, in, len), len, mode, &got);
        compare(&got, want, mode);
    }
    trace_done(&got);
    feed_guard_done(&g);
    trace_done(want);
}

/* Input builder. */
struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static void put(struct bytes *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Append a frame; masked frames use a mask that differs per frame. */
static void put_frame(struct bytes *b, bool fin, uint8_t rsv, uint8_t op, const void *payload,
                      size_t n, bool masked)
{
    uint8_t hdr[WSD_FRAME_HEADER_MAX], mask[4] = {0x37, 0xfa, 0x21, (uint8_t)b->len};
    size_t h = wsd_frame_header_write(hdr, fin, rsv, op, n, masked ? mask : NULL);
    size_t at;

    put(b, hdr, h);
    at = b->len;
    if (n > 0)
        put(b, payload, n);
    if (masked)
        wsd_frame_mask(b->p + at, n, mask, 0);
}

/* Check b against want and free both. */
static void check_bytes(const struct cfg *c, struct bytes *b, struct trace *want)
{
    check(c, b->p, b->len, want);
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* A one-frame input for c (masked when c->masked) that must fail with err. */
static void check_frame_fails(const struct cfg *c, bool fin, uint8_t rsv, uint8_t op,
                              const void *payload, size_t n, int err)
{
    struct bytes b = {0};
    struct trace want = {.result = err};

    put_frame(&b, fin, rsv, op, payload, n, c->masked);
    check_bytes(c, &b, &want);
}

/* RFC 6455 5.7: "A single-frame unmasked text message" (a server's frame: client reader) */
static void test_ws_reader_feed_rfc_unmasked_text(void **state)
{
    static const uint8_t in[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    struct trace want = {0};

    (void)state;
    want_data(&want, WSD_OP_TEXT, "Hello", 5);
    want_end(&want, WSD_OP_TEXT);
    check(&client, in, sizeof(in), &want);
}

/* RFC 6455 5.7: "A single-frame masked text message" */
static void test_ws_reader_feed_rfc_masked_text(void **state)
{
    static const uint8_t in[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct trace want = {0};

    (void)state;
    want_data(&want, WSD_OP_TEXT, "Hello", 5);
    want_end(&want, WSD_OP_TEXT);
    check(&server, in, sizeof(in), &want);
}

/* RFC 6455 5.7: "A fragmented unmasked text message" */
static void test_ws_reader_feed_rfc_fragmented(void **state)
{
    static const uint8_t in[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
    struct trace want = {0};

    (void)state;
    want_data(&want, WSD_OP_TEXT, "Hel", 3);
    want_more(&want, WSD_OP_TEXT, "lo", 2);
    want_end(&want, WSD_OP_TEXT);
    check(&client, in, sizeof(in), &want);
}

/* RFC 6455 5.7: "Unmasked Ping request and masked Ping response" */
static void test_ws_reader_feed_rfc_ping_pong(void **state)
{
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct trace want = {0};

    (void)state;
    want_ctrl(&want, WSD_WS_EV_PING, 0, "Hello", 5);
    check(&client, ping, sizeof(ping), &want);
    want_ctrl(&want, WSD_WS_EV_PONG, 0, "Hello", 5);
    check(&server, pong, sizeof(pong), &want);
}

/* RFC 6455 5.7: "256 bytes binary message in a single unmasked frame" and "64KiB binary
 * message in a single unmasked frame" */
static void test_ws_reader_feed_rfc_binary_256_and_64k(void **state)
{
    static const uint8_t h256[] = {0x82, 0x7E, 0x01, 0x00};
    static const uint8_t h64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    uint8_t *payload = malloc(65536);
    struct bytes b = {0};
    struct trace want = {0};

    (void)state;
    assert_non_null(payload);
    for (size_t i = 0; i < 65536; i++)
        payload[i] = (uint8_t)(i * 31);
    put(&b, h256, sizeof(h256));
    put(&b, payload, 256);
    want_data(&want, WSD_OP_BINARY, payload, 256);
    want_end(&want, WSD_OP_BINARY);
    check_bytes(&client, &b, &want);

    put(&b, h64k, sizeof(h64k));
    put(&b, payload, 65536);
    want_data(&want, WSD_OP_BINARY, payload, 65536);
    want_end(&want, WSD_OP_BINARY);
    check_bytes(&client, &b, &want);
    free(payload);
}

/* Each length encoding boundary (RFC 6455 5.2), masked as a client sends it. */
static void test_ws_reader_feed_length_boundaries(void **state)
{
    static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536};
    uint8_t *payload = calloc(1, 65536);

    (void)state;
    assert_non_null(payload);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        struct bytes b = {0};
        struct trace want = {0};

        put_frame(&b, true, 0, WSD_OP_BINARY, payload, lens[i], true);
        want_data(&want, WSD_OP_BINARY, payload, lens[i]);
        want_end(&want, WSD_OP_BINARY);
        check_bytes(&server, &b, &want);
    }
    free(payload);
}

/* RFC 6455 5.2: non-minimal lengths and a 64-bit length with the top bit set. */
static void test_ws_reader_feed_bad_length_encoding(void **state)
{
    static const uint8_t l16[] = {0x82, 0xFE, 0x00, 0x7D, 1, 2, 3, 4};
    static const uint8_t l64[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4};
    static const uint8_t top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    struct trace want = {.result = E1002};

    (void)state;
    check(&server, l16, sizeof(l16), &want);
    want.result = E1002;
    check(&server, l64, sizeof(l64), &want);
    want.result = E1002;
    check(&server, top, sizeof(top), &want);
}

/* RFC 6455 5.1: a server fails an unmasked frame; a client fails a masked one. */
static void test_ws_reader_feed_masking(void **state)
{
    struct bytes b = {0};
    struct trace want = {.result = E1002};

    (void)state;
    put_frame(&b, true, 0, WSD_OP_TEXT, "hi", 2, false);
    check_bytes(&server, &b, &want);
    want.result = E1002;
    put_frame(&b, true, 0, WSD_OP_TEXT, "hi", 2, true);
    check_bytes(&client, &b, &want);
}

/* RFC 6455 5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved. */
static void test_ws_reader_feed_reserved_opcodes(void **state)
{
    static const uint8_t ops[] = {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF};

    (void)state;
    for (size_t i = 0; i < sizeof(ops); i++) {
        check_frame_fails(&server, true, 0, ops[i], "x", 1, E1002);
        check_frame_fails(&server, true, 0, ops[i], NULL, 0, E1002);
    }
}

/* RFC 6455 5.2 and RFC 7692 6: RSV bits. */
static void test_ws_reader_feed_rsv_bits(void **state)
{
    struct cfg deflate = server;
    struct bytes b = {0};
    struct trace want = {0};

    (void)state;
    deflate.rsv1 = true;
    check_frame_fails(&server, true, WSD_FRAME_RSV1, WSD_OP_TEXT, "x", 1, E1002);
    check_frame_fails(&deflate, true, WSD_FRAME_RSV2, WSD_OP_TEXT, "x", 1, E1002);
    check_frame_fails(&deflate, true, WSD_FRAME_RSV3, WSD_OP_BINARY, "x", 1, E1002);
    check_frame_fails(&deflate, true, WSD_FRAME_RSV1 | WSD_FRAME_RSV2, WSD_OP_TEXT, "x", 1, E1002);
    check_frame_fails(&deflate, true, WSD_FRAME_RSV1, WSD_OP_PING, "x", 1, E1002);
    check_frame_fails(&deflate, true, WSD_FRAME_RSV1, WSD_OP_CLOSE, NULL, 0, E1002);

    /* Compressed text: RSV1 on the first frame only, and no UTF-8 check (it is deflated). */
    put_frame(&b, false, WSD_FRAME_RSV1, WSD_OP_TEXT, "\xff\x00", 2, true);
    put_frame(&b, true, 0, WSD_OP_CONTINUATION, "\xfe", 1, true);
    trace_add(&want, WSD_WS_EV_DATA, WSD_OP_TEXT, true, true, 0, "\xff\x00\xfe", 3);
    trace_add(&want, WSD_WS_EV_MESSAGE_END, WSD_OP_TEXT, false, true, 0, NULL, 0);
    check_bytes(&deflate, &b, &want);

    want.result = E1002;
    put_frame(&b, false, WSD_FRAME_RSV1, WSD_OP_BINARY, "a", 1, true);
    put_frame(&b, true, WSD_FRAME_RSV1, WSD_OP_CONTINUATION, "b", 1, true);
    check_bytes(&deflate, &b, &want);
}

/* RFC 6455 5.5: control frames carry at most 125 bytes and are never fragmented. */
static void test_ws_reader_feed_control_rules(void **state)
{
    uint8_t p[126];
    struct bytes b = {0};
    struct trace want = {0};

    (void)state;
    memset(p, 'p', sizeof(p));
    p[0] = 0x03, p[1] = 0xE8; /* a valid close code, should the frame be a close */
    check_frame_fails(&server, true, 0, WSD_OP_PING, p, 126, E1002);
    check_frame_fails(&server, true, 0, WSD_OP_PONG, p, 126, E1002);
    check_frame_fails(&server, true, 0, WSD_OP_CLOSE, p, 126, E1002);
    check_frame_fails(&server, false, 0, WSD_OP_PING, p, 5, E1002);
    check_frame_fails(&server, false, 0, WSD_OP_PONG, NULL, 0, E1002);
    check_frame_fails(&server, false, 0, WSD_OP_CLOSE, p, 2, E1002);

    put_frame(&b, true, 0, WSD_OP_PING, p, 125, true);
    put_frame(&b, true, 0, WSD_OP_PING, NULL, 0, true);
    put_frame(&b, true, 0, WSD_OP_PONG, "unsolicited", 11, true);
    want_ctrl(&want, WSD_WS_EV_PING, 0, p, 125);
    want_ctrl(&want, WSD_WS_EV_PING, 0, NULL, 0);
    want_ctrl(&want, WSD_WS_EV_PONG, 0, "unsolicited", 11);
    check_bytes(&server, &b, &want);
}

/* RFC 6455 5.4: control frames may be injected in the middle of a fragmented message. */
static void test_ws_reader_feed_control_between_fragments(void **state)
{
    struct bytes b = {0};
    struct trace want = {0};

    (void)state;
    put_frame(&b, false, 0, WSD_OP_TEXT, "Hel", 3, true);
    put_frame(&b, true, 0, WSD_OP_PING, "p", 1, true);
    put_frame(&b, true, 0, WSD_OP_PONG, NULL, 0, true);
    put_frame(&b, true, 0, WSD_OP_CONTINUATION, "lo", 2, true);
    want_data(&want, WSD_OP_TEXT, "Hel", 3);
    want_ctrl(&want, WSD_WS_EV_PING, 0, "p", 1);
    want_ctrl(&want, WSD_WS_EV_PONG, 0, NULL, 0);
    want_more(&want, WSD_OP_TEXT, "lo", 2);
    want_end(&want, WSD_OP_TEXT);
    check_bytes(&server, &b, &want);
}

/* RFC 6455 5.4: continuation only inside a message; no new message inside one. */
static void test_ws_reader_feed_fragmentation_order(void **state)
{
    struct bytes b = {0};
    struct trace want = {.result = E1002};

    (void)state;
    check_frame_fails(&server, true, 0, WSD_OP_CONTINUATION, "x", 1, E1002);
    check_frame_fails(&server, false, 0, WSD_OP_CONTINUATION, NULL, 0, E1002);

    put_frame(&b, true, 0, WSD_OP_TEXT, "a", 1, true);
    put_frame(&b, true, 0, WSD_OP_CONTINUATION, "b", 1, true);
    want_data(&want, WSD_OP_TEXT, "a", 1);
    want_end(&want, WSD_OP_TEXT);
    check_bytes(&server, &b, &want);

    want.result = E1002;
    put_frame(&b, false, 0, WSD_OP_TEXT, "a", 1, true);
    put_frame(&b, true, 0, WSD_OP_TEXT, "b", 1, true);
    check_bytes(&server, &b, &want);

    want.result = E1002;
    put_frame(&b, false, 0, WSD_OP_BINARY, "a", 1, true);
    put_frame(&b, true, 0, WSD_OP_PING, NULL, 0, true);
    put_frame(&b, false, 0, WSD_OP_TEXT, "b", 1, true);
    want_ctrl(&want, WSD_WS_EV_PING, 0, NULL, 0);
    check_bytes(&server, &b, &want);
}

/* Empty frames: an empty message still reports a first DATA; empty fragments add nothing. */
static void test_ws_reader_feed_empty_frames(void **state)
{
    struct bytes b = {0};
    struct trace want = {0};

    (void)state;
    put_frame(&b, true, 0, WSD_OP_TEXT, NULL, 0, true);
    put_frame(&b, true, 0, WSD_OP_BINARY, NULL, 0, true);
    put_frame(&b, false, 0, WSD_OP_TEXT, NULL, 0, true);
    put_frame(&b, false, 0, WSD_OP_CONTINUATION, NULL, 0, true);
    put_frame(&b, false, 0, WSD_OP_CONTINUATION, "abc", 3, true);
    put_frame(&b, true, 0, WSD_OP_CONTINUATION, NULL, 0, true);
    want_data(&want, WSD_OP_TEXT, NULL, 0);
    want_end(&want, WSD_OP_TEXT);
    want_data(&want, WSD_OP_BINARY, NULL, 0);
    want_end(&want, WSD_OP_BINARY);
    want_data(&want, WSD_OP_TEXT, "abc", 3);
    want_end(&want, WSD_OP_TEXT);
    check_bytes(&server, &b, &want);
}

static void test_ws_reader_feed_several_messages(void **state)
{
    struct bytes b = {0};
    struct trace want = {0};

    (void)state;
    put_frame(&b, true, 0, WSD_OP_TEXT, "one", 3, true);
    put_frame(&b, false, 0, WSD_OP_BINARY, "\x00\x01", 2, true);
    put_frame(&b, true, 0, WSD_OP_CONTINUATION, "\x02", 1, true);
    put_frame(&b, true, 0, WSD_OP_PING, "?", 1, true);
    put_frame(&b, true, 0, WSD_OP_TEXT, "two", 3, true);
    want_data(&want, WSD_OP_TEXT, "one", 3);
    want_end(&want, WSD_OP_TEXT);
    want_data(&want, WSD_OP_BINARY, "\x00\x01\x02", 3);
    want_end(&want, WSD_OP_BINARY);
    want_ctrl(&want, WSD_WS_EV_PING, 0, "?", 1);
    want_data(&want, WSD_OP_TEXT, "two", 3);
    want_end(&want, WSD_OP_TEXT);
    check_bytes(&server, &b, &want);
}

/* RFC 6455 8.1: a character may be split across fragments. */
static void test_ws_reader_feed_utf8_valid_across_fragments(void **state)
{
    struct bytes b = {0};
    struct trace want = {0};

    (void)state;
    put_frame(&b, false, 0, WSD_OP_TEXT, "\xce\xba\xe1", 3, true);
    put_frame(&b, false, 0, WSD_OP_CONTINUATION, "\xbd", 1, true);
    put_frame(&b, true, 0, WSD_OP_CONTINUATION, "\xb9\xf0\x9f\x98\x80", 5, true);
    want_data(&want, WSD_OP_TEXT, "\xce\xba\xe1\xbd\xb9\xf0\x9f\x98\x80", 9);
    want_end(&want, WSD_OP_TEXT);
    check_bytes(&server, &b, &want);
}

/* RFC 6455 8.1: invalid text fails with 1007, in one frame or across fragments. */
static void test_ws_reader_feed_utf8_invalid(void **state)
{
    static const char *const bad[] = {
        "\xc0\xaf",         /* overlong */
        "\xe0\x80\x80",     /* overlong */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xed\xbf\xbf",     /* surrogate U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "ok\xff",           /* never valid */
        "\xe2\x82",         /* truncated at FIN */
    };
    struct bytes b = {0};
    struct trace want = {.result = E1007};
    struct wsd_ws_reader r;
    struct wsd_ws_event ev;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_frame_fails(&server, true, 0, WSD_OP_TEXT, bad[i], strlen(bad[i]), E1007);

    /* A truncated last character fails with the last byte: no DATA piece ends in it. */
    put_frame(&b, true, 0, WSD_OP_TEXT, "ok\xe2\x82", 4, true);
    wsd_ws_reader_init(&r, 100, 0, true, false);
    assert_int_equal(wsd_ws_reader_feed(&r, b.p, b.len, &ev), E1007);
    free(b.p);
    memset(&b, 0, sizeof(b));

    /* Invalid only once the fragments are joined: E0 then 80. */
    put_frame(&b, false, 0, WSD_OP_TEXT, "a\xe0", 2, true);
    put_frame(&b, true, 0, WSD_OP_CONTINUATION, "\x80\x80", 2, true);
    check_bytes(&server, &b, &want);

    /* Truncated, then an empty final frame. */
    want.result = E1007;
    put_frame(&b, false, 0, WSD_OP_TEXT, "\xf0\x9f", 2, true);
    put_frame(&b, true, 0, WSD_OP_CONTINUATION, NULL, 0, true);
    check_bytes(&server, &b, &want);

    /* Binary messages are not text. */
    want.result = 0;
    put_frame(&b, true, 0, WSD_OP_BINARY, "\xff\xfe", 2, true);
    want_data(&want, WSD_OP_BINARY, "\xff\xfe", 2);
    want_end(&want, WSD_OP_BINARY);
    check_bytes(&server, &b, &want);
}

/* Fail fast (Autobahn 6.4.x): 1007 comes at the bad byte, before the rest of the frame. */
static void test_ws_reader_feed_utf8_fails_fast(void **state)
{
    uint8_t payload[64];
    struct bytes b = {0};
    struct trace want = {.result = E1007};

    (void)state;
    memset(payload, 'a', sizeof(payload));
    payload[3] = 0xF5;
    put_frame(&b, true, 0, WSD_OP_TEXT, payload, sizeof(payload), true);
    b.len -= 50; /* the frame is cut short: the error must not wait for it */
    check_bytes(&server, &b, &want);
}

/* RFC 6455 5.5.1 and 7.4: close payloads. */
static void test_ws_reader_feed_close(void **state)
{
    static const char *const bad_codes[] = {"\x03\xe7", "\x03\xec", "\x03\xed", "\x03\xee",
                                            "\x03\xf7", "\x13\x88", "\x00\x00"};
    uint8_t reason[125];
    struct bytes b = {0};
    struct trace want = {0};

    (void)state;
    put_frame(&b, true, 0, WSD_OP_CLOSE, NULL, 0, true);
    want_ctrl(&want, WSD_WS_EV_CLOSE, WSD_CLOSE_NO_STATUS, NULL, 0);
    check_bytes(&server, &b, &want);

    put_frame(&b, true, 0, WSD_OP_CLOSE,
              "\x03\xe8"
              "bye",
              5, true);
    want_ctrl(&want, WSD_WS_EV_CLOSE, WSD_CLOSE_NORMAL, "bye", 3);
    check_bytes(&server, &b, &want);

    memset(reason, 'r', sizeof(reason));
    reason[0] = 0x0F, reason[1] = 0x9F; /* 3999 */
    put_frame(&b, true, 0, WSD_OP_CLOSE, reason, sizeof(reason), true);
    want_ctrl(&want, WSD_WS_EV_CLOSE, 3999, reason + 2, 123);
    check_bytes(&server, &b, &want);

    check_frame_fails(&server, true, 0, WSD_OP_CLOSE, "\x03", 1, E1002);
    for (size_t i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++)
        check_frame_fails(&server, true, 0, WSD_OP_CLOSE, bad_codes[i], 2, E1002);
    check_frame_fails(&server, true, 0, WSD_OP_CLOSE, "\x03\xe8\xed\xa0\x80", 5, E1007);
    check_frame_fails(&server, true, 0, WSD_OP_CLOSE, "\x03\xe8ok\xc3", 5, E1007);
}

/* RFC 6455 5.5.1: nothing may follow a close; with no more bytes the reader just waits. */
static void test_ws_reader_feed_after_close(void **state)
{
    struct bytes b = {0};
    struct trace want = {.result = E1002};
    struct wsd_ws_reader r;
    struct wsd_ws_event ev;
    uint8_t buf[8];
    size_t n;

    (void)state;
    put_frame(&b, true, 0, WSD_OP_CLOSE, "\x03\xe8", 2, true);
    n = b.len;
    memcpy(buf, b.p, n);
    put_frame(&b, true, 0, WSD_OP_TEXT, "late", 4, true);
    want_ctrl(&want, WSD_WS_EV_CLOSE, WSD_CLOSE_NORMAL, NULL, 0);
    check_bytes(&server, &b, &want);

    wsd_ws_reader_init(&r, 100, 0, true, false);
    assert_int_equal(wsd_ws_reader_feed(&r, buf, n, &ev), (int)n);
    assert_int_equal(ev.type, WSD_WS_EV_CLOSE);
    assert_int_equal(wsd_ws_reader_feed(&r, buf + n, 0, &ev), 0);
    assert_int_equal(ev.type, WSD_WS_EV_NONE);
}

/* After an error the reader keeps returning it, whatever comes next. */
static void test_ws_reader_feed_failed_is_sticky(void **state)
{
    uint8_t bad[] = {0x83, 0x80, 0, 0, 0, 0}; /* reserved opcode 0x3 */
    uint8_t good[] = {0x89, 0x80, 0, 0, 0, 0};
    struct wsd_ws_reader r;
    struct wsd_ws_event ev = {.type = WSD_WS_EV_PONG};

    (void)state;
    wsd_ws_reader_init(&r, 100, 0, true, false);
    assert_int_equal(wsd_ws_reader_feed(&r, bad, 0, &ev), 0);
    assert_int_equal(wsd_ws_reader_feed(&r, bad, sizeof(bad), &ev), E1002);
    assert_int_equal(wsd_ws_reader_feed(&r, good, sizeof(good), &ev), E1002);
    assert_int_equal(wsd_ws_reader_feed(&r, good, 0, &ev), E1002);
    assert_int_equal(ev.type, WSD_WS_EV_NONE); /* from the first call only */
}

/* RFC 6455 7.4.1 1009: max_message counts payload over fragments, checked at each header. */
static void test_ws_reader_feed_max_message(void **state)
{
    struct cfg c = server;
    struct bytes b = {0};
    struct trace want = {0};
    struct wsd_ws_reader r;
    struct wsd_ws_event ev;
    uint8_t hdr[WSD_FRAME_HEADER_MAX], mask[4] = {1, 2, 3, 4};
    size_t h;

    (void)state;
    c.max_message = 10;
    put_frame(&b, true, 0, WSD_OP_BINARY, "0123456789", 10, true);
    put_frame(&b, false, 0, WSD_OP_TEXT, "01234", 5, true);
    put_frame(&b, true, 0, WSD_OP_PING, "control frames do not count", 27, true);
    put_frame(&b, true, 0, WSD_OP_CONTINUATION, "56789", 5, true);
    want_data(&want, WSD_OP_BINARY, "0123456789", 10);
    want_end(&want, WSD_OP_BINARY);
    want_data(&want, WSD_OP_TEXT, "01234", 5);
    want_ctrl(&want, WSD_WS_EV_PING, 0, "control frames do not count", 27);
    want_more(&want, WSD_OP_TEXT, "56789", 5);
    want_end(&want, WSD_OP_TEXT);
    check_bytes(&c, &b, &want);

    check_frame_fails(&c, true, 0, WSD_OP_TEXT, "0123456789a", 11, E1009);
    want.result = E1009;
    put_frame(&b, false, 0, WSD_OP_TEXT, "01234", 5, true);
    put_frame(&b, true, 0, WSD_OP_CONTINUATION, "56789a", 6, true);
    check_bytes(&c, &b, &want);

    /* Refused from the header alone, before any payload byte is there. */
    h = wsd_frame_header_write(hdr, true, 0, WSD_OP_BINARY, 1ULL << 40, mask);
    wsd_ws_reader_init(&r, 1 << 20, 0, true, false);
    assert_int_equal(wsd_ws_reader_feed(&r, hdr, h, &ev), E1009);
}

/* A frame larger than any buffer streams through as DATA pieces. */
static void test_ws_reader_feed_huge_frame_streams(void **state)
{
    uint8_t buf[WSD_FRAME_HEADER_MAX + 3], mask[4] = {9, 8, 7, 6};
    struct wsd_ws_reader r;
    struct wsd_ws_event ev;
    size_t h;

    (void)state;
    h = wsd_frame_header_write(buf, true, 0, WSD_OP_BINARY, 1ULL << 62, mask);
    memcpy(buf + h, "abc", 3);
    wsd_frame_mask(buf + h, 3, mask, 0);
    wsd_ws_reader_init(&r, UINT64_MAX, 0, true, false);
    assert_int_equal(wsd_ws_reader_feed(&r, buf, h + 3, &ev), (int)(h + 3));
    assert_int_equal(ev.type, WSD_WS_EV_DATA);
    assert_true(ev.first);
    assert_int_equal(ev.len, 3);
    assert_memory_equal(ev.data, "abc", 3);
    assert_int_equal(wsd_ws_reader_feed(&r, buf, 0, &ev), 0);
    assert_int_equal(ev.type, WSD_WS_EV_NONE);
}

/* 1009 for the frame past max_fragments; 0 means no limit. */
static void test_ws_reader_feed_max_fragments(void **state)
{
    struct cfg c = server;
    struct bytes b = {0};
    struct trace want = {0};

    (void)state;
    c.max_fragments = 3;
    put_frame(&b, false, 0, WSD_OP_BINARY, "a", 1, true);
    put_frame(&b, false, 0, WSD_OP_CONTINUATION, "b", 1, true);
    put_frame(&b, true, 0, WSD_OP_CONTINUATION, "c", 1, true);
    put_frame(&b, true, 0, WSD_OP_BINARY, "d", 1, true);
    want_data(&want, WSD_OP_BINARY, "abc", 3);
    want_end(&want, WSD_OP_BINARY);
    want_data(&want, WSD_OP_BINARY, "d", 1);
    want_end(&want, WSD_OP_BINARY);
    check_bytes(&c, &b, &want);

    want.result = E1009;
    for (int i = 0; i < 4; i++)
        put_frame(&b, i == 3, 0, i ? WSD_OP_CONTINUATION : WSD_OP_TEXT, "x", 1, true);
    check_bytes(&c, &b, &want);

    c.max_fragments = 0;
    for (int i = 0; i < 100; i++) {
        put_frame(&b, i == 99, 0, i ? WSD_OP_CONTINUATION : WSD_OP_TEXT, "y", 1, true);
        trace_add(&want, WSD_WS_EV_DATA, WSD_OP_TEXT, i == 0, false, 0, "y", 1);
    }
    want_end(&want, WSD_OP_TEXT);
    check_bytes(&c, &b, &want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_reader_feed_rfc_unmasked_text),
        cmocka_unit_test(test_ws_reader_feed_rfc_masked_text),
        cmocka_unit_test(test_ws_reader_feed_rfc_fragmented),
        cmocka_unit_test(test_ws_reader_feed_rfc_ping_pong),
        cmocka_unit_test(test_ws_reader_feed_rfc_binary_256_and_64k),
        cmocka_unit_test(test_ws_reader_feed_length_boundaries),
        cmocka_unit_test(test_ws_reader_feed_bad_length_encoding),
        cmocka_unit_test(test_ws_reader_feed_masking),
        cmocka_unit_test(test_ws_reader_feed_reserved_opcodes),
        cmocka_unit_test(test_ws_reader_feed_rsv_bits),
        cmocka_unit_test(test_ws_reader_feed_control_rules),
        cmocka_unit_test(test_ws_reader_feed_control_between_fragments),
        cmocka_unit_test(test_ws_reader_feed_fragmentation_order),
        cmocka_unit_test(test_ws_reader_feed_empty_frames),
        cmocka_unit_test(test_ws_reader_feed_several_messages),
        cmocka_unit_test(test_ws_reader_feed_utf8_valid_across_fragments),
        cmocka_unit_test(test_ws_reader_feed_utf8_invalid),
        cmocka_unit_test(test_ws_reader_feed_utf8_fails_fast),
        cmocka_unit_test(test_ws_reader_feed_close),
        cmocka_unit_test(test_ws_reader_feed_after_close),
        cmocka_unit_test(test_ws_reader_feed_failed_is_sticky),
        cmocka_unit_test(test_ws_reader_feed_max_message),
        cmocka_unit_test(test_ws_reader_feed_huge_frame_streams),
        cmocka_unit_test(test_ws_reader_feed_max_fragments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
