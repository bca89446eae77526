/* SPDX-License-Identifier: MIT */
/* Proves the frame header parser and writer against the RFC 6455 5.7 examples and every length
 * boundary: minimal encodings only, no 64-bit length with the top bit set, NEED_MORE for every
 * short prefix, no read past the input; and that masking in pieces at any offset equals
 * masking whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/frame.h"
#include "proto/proto.h"
#include "proto/ws_codes.h"
#include "tests/unit/feed.h"

#define ERR_1002 WSD_PROTO_ERR_CLOSE(WSD_CLOSE_PROTOCOL_ERROR)

/* Parse hdr (n bytes, ending at a PROT_NONE page) and every prefix of it: each prefix shorter
 * than need gives NEED_MORE, the rest give want. Returns the header parsed from all n bytes. */
static struct wsd_frame_header parse_all_prefixes(const uint8_t *hdr, size_t n, int want,
                                                  size_t need)
{
    struct wsd_frame_header h, whole = {0};
    struct feed_guard g;

    feed_guard_init(&g, n);
    for (size_t len = 0; len <= n; len++) {
        const uint8_t *p = feed_guard_put(&g, hdr, len);
        int r = wsd_frame_header_parse(p, len, &h);

        assert_int_equal(r, len < need ? WSD_PROTO_NEED_MORE : want);
        if (len == n && r > 0)
            whole = h;
    }
    feed_guard_done(&g);
    return whole;
}

/* RFC 6455 5.7: "A single-frame unmasked text message" */
static void test_frame_header_parse_rfc_unmasked_text(void **state)
{
    static const uint8_t f[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    struct wsd_frame_header h;

    (void)state;
    h = parse_all_prefixes(f, 2, 2, 2);
    assert_true(h.fin);
    assert_int_equal(h.rsv, 0);
    assert_int_equal(h.opcode, WSD_OP_TEXT);
    assert_false(h.masked);
    assert_int_equal(h.len, 5);
    assert_memory_equal(f + 2, "Hello", 5);
}

/* RFC 6455 5.7: "A single-frame masked text message" */
static void test_frame_header_parse_rfc_masked_text(void **state)
{
    static const uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t mask[] = {0x37, 0xfa, 0x21, 0x3d};
    struct wsd_frame_header h;
    uint8_t payload[5];

    (void)state;
    h = parse_all_prefixes(f, 6, 6, 6);
    assert_true(h.fin);
    assert_int_equal(h.opcode, WSD_OP_TEXT);
    assert_true(h.masked);
    assert_memory_equal(h.mask, mask, 4);
    assert_int_equal(h.len, 5);
    memcpy(payload, f + 6, 5);
    wsd_frame_mask(payload, 5, h.mask, 0);
    assert_memory_equal(payload, "Hello", 5);
}

/* RFC 6455 5.7: "A fragmented unmasked text message" */
static void test_frame_header_parse_rfc_fragmented(void **state)
{
    static const uint8_t f1[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
    static const uint8_t f2[] = {0x80, 0x02, 0x6c, 0x6f};
    struct wsd_frame_header h;

    (void)state;
    h = parse_all_prefixes(f1, 2, 2, 2);
    assert_false(h.fin);
    assert_int_equal(h.opcode, WSD_OP_TEXT);
    assert_int_equal(h.len, 3);
    h = parse_all_prefixes(f2, 2, 2, 2);
    assert_true(h.fin);
    assert_int_equal(h.opcode, WSD_OP_CONTINUATION);
    assert_int_equal(h.len, 2);
}

/* RFC 6455 5.7: "Unmasked Ping request and masked Ping response" */
static void test_frame_header_parse_rfc_ping_pong(void **state)
{
    static const uint8_t ping[] = {0x89, 0x05};
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d};
    struct wsd_frame_header h;

    (void)state;
    h = parse_all_prefixes(ping, 2, 2, 2);
    assert_int_equal(h.opcode, WSD_OP_PING);
    assert_int_equal(h.len, 5);
    h = parse_all_prefixes(pong, 6, 6, 6);
    assert_int_equal(h.opcode, WSD_OP_PONG);
    assert_true(h.masked);
    assert_int_equal(h.len, 5);
}

/* RFC 6455 5.7: 256 bytes and 64KiB binary messages in a single unmasked frame */
static void test_frame_header_parse_rfc_binary_256_and_64k(void **state)
{
    static const uint8_t b256[] = {0x82, 0x7E, 0x01, 0x00};
    static const uint8_t b64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    struct wsd_frame_header h;

    (void)state;
    h = parse_all_prefixes(b256, 4, 4, 4);
    assert_int_equal(h.opcode, WSD_OP_BINARY);
    assert_int_equal(h.len, 256);
    h = parse_all_prefixes(b64k, 10, 10, 10);
    assert_int_equal(h.len, 65536);
}

/* RFC 6455 5.7: the writer reproduces the examples' headers byte for byte. */
static void test_frame_header_write_rfc_examples(void **state)
{
    static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d};
    static const uint8_t frag1[] = {0x01, 0x03}, frag2[] = {0x80, 0x02}, ping[] = {0x89, 0x05};
    static const uint8_t b256[] = {0x82, 0x7E, 0x01, 0x00};
    static const uint8_t b64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    uint8_t out[WSD_FRAME_HEADER_MAX];

    (void)state;
    assert_int_equal(wsd_frame_header_write(out, true, 0, WSD_OP_TEXT, 5, masked + 2), 6);
    assert_memory_equal(out, masked, 6);
    assert_int_equal(wsd_frame_header_write(out, false, 0, WSD_OP_TEXT, 3, NULL), 2);
    assert_memory_equal(out, frag1, 2);
    assert_int_equal(wsd_frame_header_write(out, true, 0, WSD_OP_CONTINUATION, 2, NULL), 2);
    assert_memory_equal(out, frag2, 2);
    assert_int_equal(wsd_frame_header_write(out, true, 0, WSD_OP_PING, 5, NULL), 2);
    assert_memory_equal(out, ping, 2);
    assert_int_equal(wsd_frame_header_write(out, true, 0, WSD_OP_BINARY, 256, NULL), 4);
    assert_memory_equal(out, b256, 4);
    assert_int_equal(wsd_frame_header_write(out, true, 0, WSD_OP_BINARY, 65536, NULL), 10);
    assert_memory_equal(out, b64k, 10);
}

/* Each boundary of the three encodings, through the writer and back. */
static void test_frame_header_write_length_boundaries(void **state)
{
    static const struct {
        uint64_t len;
        size_t size;
    } cases[] = {
        {0, 2},      {1, 2},           {125, 2},
        {126, 4},    {127, 4},         {65535, 4},
        {65536, 10}, {1ULL << 32, 10}, {0x7FFFFFFFFFFFFFFFULL, 10},
    };
    static const uint8_t mask[4] = {1, 2, 3, 4};
    uint8_t out[WSD_FRAME_HEADER_MAX];
    struct wsd_frame_header h;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = wsd_frame_header_write(out, true, 0, WSD_OP_BINARY, cases[i].len, NULL);

        assert_int_equal(n, cases[i].size);
        h = parse_all_prefixes(out, n, (int)n, n);
        assert_int_equal(h.len, cases[i].len);
        assert_false(h.masked);

        n = wsd_frame_header_write(out, false, WSD_FRAME_RSV1, WSD_OP_TEXT, cases[i].len, mask);
        assert_int_equal(n, cases[i].size + 4);
        h = parse_all_prefixes(out, n, (int)n, n);
        assert_int_equal(h.len, cases[i].len);
        assert_false(h.fin);
        assert_int_equal(h.rsv, WSD_FRAME_RSV1);
        assert_true(h.masked);
        assert_memory_equal(h.mask, mask, 4);
    }
}

/* RFC 6455 5.2: the minimal number of bytes MUST be used to encode the length. */
static void test_frame_header_parse_non_minimal(void **state)
{
    static const uint8_t l16_0[] = {0x82, 0x7E, 0x00, 0x00};
    static const uint8_t l16_125[] = {0x82, 0xFE, 0x00, 0x7D, 1, 2, 3, 4};
    static const uint8_t l64_125[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x7D};
    static const uint8_t l64_65535[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4};

    (void)state;
    /* The error comes as soon as the length is complete, before the mask. */
    (void)parse_all_prefixes(l16_0, sizeof(l16_0), ERR_1002, 4);
    (void)parse_all_prefixes(l16_125, sizeof(l16_125), ERR_1002, 4);
    (void)parse_all_prefixes(l64_125, sizeof(l64_125), ERR_1002, 10);
    (void)parse_all_prefixes(l64_65535, sizeof(l64_65535), ERR_1002, 10);
}

/* RFC 6455 5.2: "the most significant bit MUST be 0" */
static void test_frame_header_parse_top_bit(void **state)
{
    static const uint8_t top[] = {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t all[] = {0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    static const uint8_t max[] = {0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    struct wsd_frame_header h;

    (void)state;
    (void)parse_all_prefixes(top, sizeof(top), ERR_1002, 10);
    (void)parse_all_prefixes(all, sizeof(all), ERR_1002, 10);
    h = parse_all_prefixes(max, sizeof(max), 10, 10);
    assert_int_equal(h.len, 0x7FFFFFFFFFFFFFFFULL);
}

/* The parser reports opcodes and RSV bits raw; policy belongs to wsd_ws_reader. */
static void test_frame_header_parse_raw_bits(void **state)
{
    uint8_t f[2];
    struct wsd_frame_header h;

    (void)state;
    for (unsigned b0 = 0; b0 < 256; b0++) {
        f[0] = (uint8_t)b0;
        f[1] = 0x03;
        assert_int_equal(wsd_frame_header_parse(f, 2, &h), 2);
        assert_int_equal(h.fin, (b0 & 0x80) != 0);
        assert_int_equal(h.rsv, (b0 >> 4) & 7);
        assert_int_equal(h.opcode, b0 & 0xF);
        assert_int_equal(h.len, 3);
    }
}

static void test_frame_header_parse_untouched_on_need_more(void **state)
{
    static const uint8_t f[] = {0x81, 0x85, 0x37};
    struct wsd_frame_header h;

    (void)state;
    memset(&h, 0xAB, sizeof(h));
    assert_int_equal(wsd_frame_header_parse(f, sizeof(f), &h), WSD_PROTO_NEED_MORE);
    assert_int_equal(h.len, 0xABABABABABABABABULL); /* ret_ written only on success */
}

static void mask_reference(uint8_t *d, size_t len, const uint8_t mask[4], uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        d[i] ^= mask[(offset + i) % 4];
}

/* Every length up to a few vector blocks, every offset, every start alignment. */
static void test_frame_mask_matches_reference(void **state)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t a[160], b[160];

    (void)state;
    for (size_t len = 0; len <= 100; len++) {
        for (uint64_t off = 0; off < 8; off++) {
            for (size_t start = 0; start < 8; start++) {
                for (size_t i = 0; i < sizeof(a); i++)
                    a[i] = b[i] = (uint8_t)(i * 7 + len);
                wsd_frame_mask(a + start, len, mask, off);
                mask_reference(b + start, len, mask, off);
                assert_memory_equal(a, b, sizeof(a)); /* nothing outside touched */
            }
        }
    }
}

/* RFC 6455 5.3: unmasking in pieces, each at its running offset, equals unmasking whole. */
static void test_frame_mask_in_pieces(void **state)
{
    static const uint8_t mask[4] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t whole[257], pieces[257];
    size_t n = sizeof(whole);

    (void)state;
    for (size_t i = 0; i < n; i++)
        whole[i] = (uint8_t)(i ^ 0x5a);
    memcpy(pieces, whole, n);
    wsd_frame_mask(whole, n, mask, 0);
    for (size_t mode = 1; mode < feed_mode_count(n); mode++) {
        size_t pos = 0, end;
        uint8_t tmp[257];

        memcpy(tmp, pieces, n);
        do {
            end = feed_piece_end(n, mode, pos);
            wsd_frame_mask(tmp + pos, end - pos, mask, pos);
            pos = end;
        } while (pos < n);
        assert_memory_equal(tmp, whole, n);
    }
    /* Masking is its own inverse. */
    wsd_frame_mask(whole, n, mask, 0);
    assert_memory_equal(whole, pieces, n);
}

static void test_frame_mask_guard_page(void **state)
{
    static const uint8_t mask[4] = {1, 2, 3, 4};
    uint8_t src[70], ref[70];
    struct feed_guard g;

    (void)state;
    feed_guard_init(&g, sizeof(src));
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)i;
    for (size_t len = 0; len <= sizeof(src); len++) {
        uint8_t *p = feed_guard_put(&g, src, len);

        memcpy(ref, src, len);
        mask_reference(ref, len, mask, 3);
        wsd_frame_mask(p, len, mask, 3);
        assert_memory_equal(p, ref, len);
    }
    feed_guard_done(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_header_parse_rfc_unmasked_text),
        cmocka_unit_test(test_frame_header_parse_rfc_masked_text),
        cmocka_unit_test(test_frame_header_parse_rfc_fragmented),
        cmocka_unit_test(test_frame_header_parse_rfc_ping_pong),
        cmocka_unit_test(test_frame_header_parse_rfc_binary_256_and_64k),
        cmocka_unit_test(test_frame_header_write_rfc_examples),
        cmocka_unit_test(test_frame_header_write_length_boundaries),
        cmocka_unit_test(test_frame_header_parse_non_minimal),
        cmocka_unit_test(test_frame_header_parse_top_bit),
        cmocka_unit_test(test_frame_header_parse_raw_bits),
        cmocka_unit_test(test_frame_header_parse_untouched_on_need_more),
        cmocka_unit_test(test_frame_mask_matches_reference),
        cmocka_unit_test(test_frame_mask_in_pieces),
        cmocka_unit_test(test_frame_mask_guard_page),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
