/* SPDX-License-Identifier: MIT */
/* Proves permessage-deflate follows RFC 7692: offers are accepted or declined as 7.1 says (the
 * first acceptable of several, duplicate, unknown and out-of-range parameters declined), the
 * response names what was agreed, the 7.2.3 sample payloads inflate (whole and byte by byte),
 * context takeover is kept or reset as agreed, a zip bomb stops at the limit, and the reader
 * lets a compressed message's wire bytes exceed the message limit (the inflated size is what
 * counts: 1 MiB of random bytes deflates to a little more than 1 MiB). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/deflate.h"
#include "proto/frame.h"
#include "proto/proto.h"
#include "proto/utf8.h"
#include "proto/ws_codes.h"
#include "proto/ws_reader.h"

#define E1007 WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INVALID_PAYLOAD)
#define E1009 WSD_PROTO_ERR_CLOSE(WSD_CLOSE_MESSAGE_TOO_BIG)
#define LIMIT (1u << 20)

/* ---- negotiation ---- */

struct offer_case {
    const char *header;
    int accepted;
    struct wsd_deflate_params want;
    const char *response; /* NULL when declined */
};

static const struct offer_case offers[] = {
    {"permessage-deflate", 1, {0}, "permessage-deflate"},
    {"PerMessage-Deflate", 1, {0}, "permessage-deflate"},
    /* Chromium's offer */
    {"permessage-deflate; client_max_window_bits", 1, {0}, "permessage-deflate"},
    {"permessage-deflate;server_no_context_takeover",
     1,
     {.server_no_context_takeover = true},
     "permessage-deflate; server_no_context_takeover"},
    {"permessage-deflate; client_no_context_takeover",
     1,
     {.client_no_context_takeover = true},
     "permessage-deflate; client_no_context_takeover"},
    /* client_max_window_bits is accepted with or without a value, and never answered */
    {"permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
     1,
     {.server_max_window_bits = 10},
     "permessage-deflate; server_max_window_bits=10"},
    {"permessage-deflate; server_max_window_bits=\"9\"",
     1,
     {.server_max_window_bits = 9},
     "permessage-deflate; server_max_window_bits=9"},
    {"permessage-deflate ; client_max_window_bits = 8", 1, {0}, "permessage-deflate"},
    {"permessage-deflate; client_max_window_bits=\"15\"", 1, {0}, "permessage-deflate"},
    {"permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=15; client_max_window_bits=15",
     1,
     {true, true, 15},
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=15"},
    /* several offers: the first acceptable one wins */
    {"permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
     1,
     {0},
     "permessage-deflate"},
    {"x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover",
     1,
     {.server_no_context_takeover = true},
     "permessage-deflate; server_no_context_takeover"},
    {"permessage-deflate; foo=1, permessage-deflate; client_no_context_takeover",
     1,
     {.client_no_context_takeover = true},
     "permessage-deflate; client_no_context_takeover"},
    {", ,permessage-deflate", 1, {0}, "permessage-deflate"},
    /* declined */
    {"", 0, {0}, NULL},
    {"x-webkit-deflate-frame", 0, {0}, NULL},
    {"permessage-deflate; server_max_window_bits=8", 0, {0}, NULL},
    {"permessage-deflate; server_max_window_bits", 0, {0}, NULL},
    {"permessage-deflate; server_max_window_bits=16", 0, {0}, NULL},
    {"permessage-deflate; server_max_window_bits=7", 0, {0}, NULL},
    {"permessage-deflate; server_max_window_bits=010", 0, {0}, NULL},
    {"permessage-deflate; server_max_window_bits=1x", 0, {0}, NULL},
    {"permessage-deflate; client_max_window_bits=0", 0, {0}, NULL},
    {"permessage-deflate; client_max_window_bits=7", 0, {0}, NULL},
    {"permessage-deflate; client_max_window_bits=16", 0, {0}, NULL},
    {"permessage-deflate; client_max_window_bits=09", 0, {0}, NULL},
    {"permessage-deflate; client_max_window_bits=\"\"", 0, {0}, NULL},
    {"permessage-deflate; client_max_window_bits=123456789012", 0, {0}, NULL},
    {"permessage-deflate; server_no_context_takeover=1", 0, {0}, NULL},
    {"permessage-deflate; client_no_context_takeover=\"\"", 0, {0}, NULL},
    {"permessage-deflate; server_no_context_takeover; server_no_context_takeover", 0, {0}, NULL},
    {"permessage-deflate; client_max_window_bits; client_max_window_bits=10", 0, {0}, NULL},
    {"permessage-deflate; mux", 0, {0}, NULL},
    /* malformed lists */
    {"permessage-deflate;", 0, {0}, NULL},
    {"permessage-deflate; server_max_window_bits=\"10", 0, {0}, NULL},
    {"permessage-deflate; server_max_window_bits=", 0, {0}, NULL},
    {"permessage-deflate x", 0, {0}, NULL},
    {"=permessage-deflate", 0, {0}, NULL},
};

static void test_negotiate(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++) {
        const struct offer_case *c = &offers[i];
        struct wsd_deflate_params p = {.server_max_window_bits = 99};
        char resp[WSD_DEFLATE_RESPONSE_MAX];
        int r = wsd_deflate_negotiate(c->header, strlen(c->header), &p);
        if (r != c->accepted)
            fail_msg("offer '%s': got %d, want %d", c->header, r, c->accepted);
        if (!c->accepted)
            continue;
        assert_int_equal(p.server_no_context_takeover, c->want.server_no_context_takeover);
        assert_int_equal(p.client_no_context_takeover, c->want.client_no_context_takeover);
        assert_int_equal(p.server_max_window_bits, c->want.server_max_window_bits);
        if (wsd_deflate_response_write(&p, resp, sizeof(resp)) == 0 ||
            strcmp(resp, c->response) != 0)
            fail_msg("offer '%s': response '%s', want '%s'", c->header, resp, c->response);
        /* Accepting our own response must give the same parameters back (minus nothing). */
        struct wsd_deflate_params again;
        assert_int_equal(wsd_deflate_negotiate(resp, strlen(resp), &again), 1);
        assert_memory_equal(&again, &p, sizeof(p));
    }
}

static void test_response_too_small(void **state)
{
    (void)state;
    struct wsd_deflate_params p = {true, true, 15};
    char small[20];
    assert_int_equal(wsd_deflate_response_write(&p, small, sizeof(small)), 0);
}

/* ---- the codec ---- */

struct sink {
    uint8_t *data;
    size_t len, cap;
    int fail_with; /* nonzero: the sink returns this */
};

static int sink_append(const uint8_t *data, size_t n, void *userdata)
{
    struct sink *s = userdata;
    if (s->fail_with)
        return s->fail_with;
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->data = realloc(s->data, s->cap);
        assert_non_null(s->data);
    }
    memcpy(s->data + s->len, data, n);
    s->len += n;
    return 0;
}

static void sink_done(struct sink *s)
{
    free(s->data);
    *s = (struct sink){0};
}

/* Inflate one message given whole (byte_by_byte false) or one byte per call. */
static int inflate_msg(struct wsd_deflate *d, const uint8_t *in, size_t len, bool byte_by_byte,
                       uint64_t limit, struct sink *out)
{
    if (!byte_by_byte)
        return wsd_deflate_inflate(d, in, len, true, limit, sink_append, out);
    for (size_t i = 0; i < len; i++) {
        int r = wsd_deflate_inflate(d, in + i, 1, false, limit, sink_append, out);
        if (r < 0)
            return r;
    }
    return wsd_deflate_inflate(d, NULL, 0, true, limit, sink_append, out);
}

/* RFC 7692 7.2.3 samples, each "Hello". */
static const uint8_t hello_fixed[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
static const uint8_t hello_again[] = {0xf2, 0x00, 0x11, 0x00, 0x00}; /* 7.2.3.2, takeover */
static const uint8_t hello_stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                       0x65, 0x6c, 0x6c, 0x6f, 0x00}; /* 7.2.3.3 */
static const uint8_t hello_bfinal[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};

static void expect_hello(struct wsd_deflate *d, const uint8_t *in, size_t len, bool bbb)
{
    struct sink out = {0};
    assert_int_equal(inflate_msg(d, in, len, bbb, LIMIT, &out), 0);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "Hello", 5);
    sink_done(&out);
}

static void test_inflate_rfc_samples(void **state)
{
    (void)state;
    for (int bbb = 0; bbb < 2; bbb++) {
        struct wsd_deflate d;
        struct wsd_deflate_params p = {0};
        wsd_deflate_init(&d, &p);
        expect_hello(&d, hello_fixed, sizeof(hello_fixed), bbb);
        expect_hello(&d, hello_again, sizeof(hello_again), bbb); /* context kept */
        expect_hello(&d, hello_stored, sizeof(hello_stored), bbb);
        expect_hello(&d, hello_bfinal, sizeof(hello_bfinal), bbb);
        /* After a final block the window is kept as a dictionary. */
        expect_hello(&d, hello_again, sizeof(hello_again), bbb);
        wsd_deflate_done(&d);
        wsd_deflate_done(&d); /* twice is fine */
    }
}

static void test_inflate_no_context_takeover(void **state)
{
    (void)state;
    struct wsd_deflate d;
    struct wsd_deflate_params p = {.client_no_context_takeover = true};
    struct sink out = {0};
    wsd_deflate_init(&d, &p);
    expect_hello(&d, hello_fixed, sizeof(hello_fixed), false);
    /* A back-reference into the previous message has nothing to point to after the reset. */
    assert_int_equal(inflate_msg(&d, hello_again, sizeof(hello_again), false, LIMIT, &out), E1007);
    sink_done(&out);
    wsd_deflate_done(&d);
}

static void test_inflate_corrupt(void **state)
{
    (void)state;
    static const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff};
    for (int bbb = 0; bbb < 2; bbb++) {
        struct wsd_deflate d;
        struct wsd_deflate_params p = {0};
        struct sink out = {0};
        wsd_deflate_init(&d, &p);
        assert_int_equal(inflate_msg(&d, bad, sizeof(bad), bbb, LIMIT, &out), E1007);
        sink_done(&out);
        wsd_deflate_done(&d);
    }
}

static void test_inflate_sink_error(void **state)
{
    (void)state;
    struct wsd_deflate d;
    struct wsd_deflate_params p = {0};
    struct sink out = {.fail_with = E1007};
    wsd_deflate_init(&d, &p);
    assert_int_equal(inflate_msg(&d, hello_fixed, sizeof(hello_fixed), false, LIMIT, &out), E1007);
    wsd_deflate_done(&d);
}

static void compress_msg(struct wsd_deflate *d, const uint8_t *in, size_t len, struct sink *out)
{
    out->len = 0;
    assert_int_equal(wsd_deflate_compress(d, in, len, sink_append, out), 0);
}

/* A zip bomb: 64 MiB of zeros compress to ~64 KiB; inflating stops one byte past the limit. */
static void test_zip_bomb(void **state)
{
    (void)state;
    size_t big = 64u << 20;
    uint8_t *zeros = calloc(1, big);
    struct wsd_deflate enc, dec;
    struct wsd_deflate_params p = {0};
    struct sink z = {0}, out = {0};
    assert_non_null(zeros);
    wsd_deflate_init(&enc, &p);
    wsd_deflate_init(&dec, &p);
    compress_msg(&enc, zeros, big, &z);
    assert_true(z.len < big / 500);
    assert_int_equal(inflate_msg(&dec, z.data, z.len, false, LIMIT, &out), E1009);
    assert_true(out.len <= LIMIT + 1);
    sink_done(&out);
    wsd_deflate_done(&dec);
    /* Exactly at the limit is fine, one byte over is not. */
    for (int over = 0; over < 2; over++) {
        wsd_deflate_done(&enc); /* fresh contexts: the bomb is not in the window */
        wsd_deflate_init(&enc, &p);
        wsd_deflate_init(&dec, &p);
        compress_msg(&enc, zeros, LIMIT + (size_t)over, &z);
        assert_int_equal(inflate_msg(&dec, z.data, z.len, false, LIMIT, &out), over ? E1009 : 0);
        if (!over)
            assert_int_equal(out.len, LIMIT);
        sink_done(&out);
        wsd_deflate_done(&dec);
    }
    wsd_deflate_done(&enc);
    sink_done(&z);
    free(zeros);
}

static void fill_text(uint8_t *buf, size_t len, unsigned seed)
{
    static const char *const words[] = {"alpha ", "beta ", "gamma ", "delta ", "epsilon "};
    size_t n = 0;
    while (n < len) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % 5];
        for (size_t i = 0; w[i] && n < len; i++)
            buf[n++] = (uint8_t)w[i];
    }
}

/* Round trips through our own deflater, with every parameter combination. */
static void test_roundtrip(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 5, 100, 16383, 16384, 16385, 70000, 300000};
    static const uint8_t bits[] = {0, 9, 12, 15};
    uint8_t *msg = malloc(300000);
    assert_non_null(msg);
    for (int flags = 0; flags < 4; flags++)
        for (size_t b = 0; b < sizeof(bits); b++) {
            struct wsd_deflate_params p = {
                .server_no_context_takeover = flags & 1,
                .client_no_context_takeover = flags & 2,
                .server_max_window_bits = bits[b],
            };
            /* enc is the server's deflater; dec plays the client, set up with the server's
             * context takeover mirrored. */
            struct wsd_deflate enc, dec;
            struct wsd_deflate_params mirror = {
                .client_no_context_takeover = p.server_no_context_takeover,
            };
            struct sink z = {0}, out = {0};
            wsd_deflate_init(&enc, &p);
            wsd_deflate_init(&dec, &mirror);
            for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                fill_text(msg, sizes[i], (unsigned)i);
                compress_msg(&enc, msg, sizes[i], &z);
                out.len = 0;
                assert_int_equal(inflate_msg(&dec, z.data, z.len, sizes[i] < 200, LIMIT, &out), 0);
                assert_int_equal(out.len, sizes[i]);
                if (sizes[i] > 0)
                    assert_memory_equal(out.data, msg, sizes[i]);
            }
            sink_done(&z);
            sink_done(&out);
            wsd_deflate_done(&enc);
            wsd_deflate_done(&dec);
        }
    free(msg);
}

/* With takeover the second identical message is a back-reference; without it, it is not. */
static void test_compress_context(void **state)
{
    (void)state;
    uint8_t msg[1000];
    fill_text(msg, sizeof(msg), 7);
    for (int nct = 0; nct < 2; nct++) {
        struct wsd_deflate enc;
        struct wsd_deflate_params p = {.server_no_context_takeover = nct};
        struct sink z = {0};
        wsd_deflate_init(&enc, &p);
        compress_msg(&enc, msg, sizeof(msg), &z);
        size_t first = z.len;
        compress_msg(&enc, msg, sizeof(msg), &z);
        if (nct)
            assert_int_equal(z.len, first);
        else
            assert_true(z.len < 20 && z.len < first);
        /* "Hello" alone gives the RFC 7692 7.2.3.1 bytes when the context is fresh. */
        if (nct) {
            compress_msg(&enc, (const uint8_t *)"Hello", 5, &z);
            assert_int_equal(z.len, sizeof(hello_fixed));
            assert_memory_equal(z.data, hello_fixed, sizeof(hello_fixed));
        }
        sink_done(&z);
        wsd_deflate_done(&enc);
    }
}

/* A client that offered client_max_window_bits=9 but deflates with a 2^15 window (a
 * back-reference 1000 bytes back) is inflated the same way however its bytes are split. The
 * inflater used to take the client's 512-byte window (wsd echoed the value): a reference into
 * the output of the same inflate() call was accepted, one into an earlier call's output
 * refused, so whole delivery echoed and byte-by-byte delivery closed with 1007. */
static void test_inflate_window_wider_than_agreed(void **state)
{
    (void)state;
    static const char offer[] = "permessage-deflate; client_max_window_bits=9";
    uint8_t msg[2000];
    fill_text(msg, 1000, 3);
    memcpy(msg + 1000, msg, 1000);
    struct wsd_deflate enc, dec;
    struct wsd_deflate_params agreed, wide = {0};
    struct sink z = {0}, out = {0};
    assert_int_equal(wsd_deflate_negotiate(offer, strlen(offer), &agreed), 1);
    wsd_deflate_init(&enc, &wide);
    compress_msg(&enc, msg, sizeof(msg), &z);
    for (int bbb = 0; bbb < 2; bbb++) {
        wsd_deflate_init(&dec, &agreed);
        out.len = 0;
        assert_int_equal(inflate_msg(&dec, z.data, z.len, bbb, LIMIT, &out), 0);
        assert_int_equal(out.len, sizeof(msg));
        assert_memory_equal(out.data, msg, sizeof(msg));
        wsd_deflate_done(&dec);
    }
    sink_done(&z);
    sink_done(&out);
    wsd_deflate_done(&enc);
}

/* A sink that checks UTF-8 like core/conn_io.c's does for a text message. */
struct text_sink {
    uint32_t utf8;
    size_t len;
};

static int sink_text(const uint8_t *data, size_t n, void *userdata)
{
    struct text_sink *t = userdata;
    t->utf8 = wsd_utf8_validate(t->utf8, data, n);
    t->len += n;
    return t->utf8 == WSD_UTF8_REJECT ? E1007 : 0;
}

/* The first problem in the inflated bytes decides the close code, however the input is
 * split (found by fuzz_ws_reader: the same bytes ended with 1007 whole and 1009 split):
 * - limit + 1 bytes, then a block of the invalid type 3: 1009 (whole, zlib used to read on
 *   past the full output buffer to the bad block header and report it first);
 * - invalid UTF-8 before the limit in output that goes past it: 1007 (whole, the limit used
 *   to be checked before the sink saw the chunk). */
static void test_inflate_first_problem_wins(void **state)
{
    (void)state;
    static const uint8_t tail_then_bad_block[] = {0x00, 0x00, 0xff, 0xff, 0x06};
    const size_t limit = 4096;
    uint8_t text[5000];
    memset(text, 'a', sizeof(text));
    text[100] = 0xff;
    for (int which = 0; which < 2; which++) {
        struct wsd_deflate enc;
        struct wsd_deflate_params p = {0};
        struct sink z = {0};
        wsd_deflate_init(&enc, &p);
        if (which == 0) {
            uint8_t zeros[4097] = {0};
            compress_msg(&enc, zeros, sizeof(zeros), &z);
            assert_int_equal(sink_append(tail_then_bad_block, sizeof(tail_then_bad_block), &z), 0);
        } else {
            compress_msg(&enc, text, sizeof(text), &z);
        }
        for (int bbb = 0; bbb < 2; bbb++) {
            struct wsd_deflate dec;
            struct text_sink t = {.utf8 = WSD_UTF8_ACCEPT};
            int r = 0;
            wsd_deflate_init(&dec, &p);
            for (size_t i = 0; i < z.len && r == 0; i += bbb ? 1 : z.len)
                r = wsd_deflate_inflate(&dec, z.data + i, bbb ? 1 : z.len, false, limit,
                                        sink_text, &t);
            if (r != (which == 0 ? E1009 : E1007))
                fail_msg("case %d, %s: got %d", which, bbb ? "byte by byte" : "whole", r);
            assert_true(t.len <= limit);
            wsd_deflate_done(&dec);
        }
        sink_done(&z);
        wsd_deflate_done(&enc);
    }
}

/* Feed one masked (zero mask) frame with len zero bytes of payload, calling again while the
 * reader reports events; returns 0 or the reader's error. */
static int feed_frame(struct wsd_ws_reader *rd, bool rsv1, uint8_t opcode, bool fin, uint64_t len)
{
    static const uint8_t zero_mask[4] = {0};
    uint8_t *buf = calloc(1, WSD_FRAME_HEADER_MAX + (size_t)len);
    assert_non_null(buf);
    size_t off = 0;
    size_t total =
        wsd_frame_header_write(buf, fin, rsv1 ? WSD_FRAME_RSV1 : 0, opcode, len, zero_mask) +
        (size_t)len;
    struct wsd_ws_event ev;
    int e;
    do {
        e = wsd_ws_reader_feed(rd, buf + off, total - off, &ev);
        if (e >= 0)
            off += (size_t)e;
    } while (e >= 0 && (off < total || ev.type != WSD_WS_EV_NONE));
    free(buf);
    return e < 0 ? e : 0;
}

static void test_reader_compressed_limit(void **state)
{
    (void)state;
    struct wsd_ws_reader r;
    const uint64_t max = 1000;
    /* uncompressed: the message limit, as before */
    wsd_ws_reader_init(&r, max, 0, true, true);
    r.max_compressed = 1200;
    assert_int_equal(feed_frame(&r, false, WSD_OP_BINARY, true, 1001), E1009);
    /* compressed: up to max_compressed on the wire, summed over fragments */
    wsd_ws_reader_init(&r, max, 0, true, true);
    r.max_compressed = 1200;
    assert_int_equal(feed_frame(&r, true, WSD_OP_BINARY, true, 1200), 0);
    wsd_ws_reader_init(&r, max, 0, true, true);
    r.max_compressed = 1200;
    assert_int_equal(feed_frame(&r, true, WSD_OP_BINARY, false, 600), 0);
    assert_int_equal(feed_frame(&r, false, WSD_OP_CONTINUATION, true, 600), 0);
    wsd_ws_reader_init(&r, max, 0, true, true);
    r.max_compressed = 1200;
    assert_int_equal(feed_frame(&r, true, WSD_OP_BINARY, false, 600), 0);
    assert_int_equal(feed_frame(&r, false, WSD_OP_CONTINUATION, true, 601), E1009);
    /* by default the two limits are the same */
    wsd_ws_reader_init(&r, max, 0, true, true);
    assert_int_equal(r.max_compressed, max);
    assert_int_equal(feed_frame(&r, true, WSD_OP_BINARY, true, 1001), E1009);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiate),
        cmocka_unit_test(test_response_too_small),
        cmocka_unit_test(test_inflate_rfc_samples),
        cmocka_unit_test(test_inflate_no_context_takeover),
        cmocka_unit_test(test_inflate_corrupt),
        cmocka_unit_test(test_inflate_sink_error),
        cmocka_unit_test(test_zip_bomb),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_compress_context),
        cmocka_unit_test(test_inflate_window_wider_than_agreed),
        cmocka_unit_test(test_inflate_first_problem_wins),
        cmocka_unit_test(test_reader_compressed_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
