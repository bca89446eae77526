/* SPDX-License-Identifier: MIT */
/* Proves wsd_utf8_validate accepts exactly RFC 3629 UTF-8: boundary characters pass; overlongs,
 * surrogates, code points above U+10FFFF and stray tails are rejected; every 1- to 3-byte input
 * and every 4-byte lead agree with a reference decoder; and results do not depend on how the
 * input is split or where it sits (ASCII fast path next to a PROT_NONE page). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/utf8.h"
#include "tests/unit/feed.h"

enum ref_result { REF_VALID, REF_INVALID, REF_INCOMPLETE };

/* Reference: decode code points the slow, obvious way. A truncated last character is
 * "incomplete" if some tail bytes could still make it valid: the completions of its prefix
 * form the interval [lo, hi], which must meet the valid range minus the surrogates. */
static enum ref_result ref_check(const uint8_t *s, size_t n)
{
    size_t i = 0, need, k;
    uint32_t lo, hi, min;

    while (i < n) {
        uint8_t b = s[i++];

        if (b < 0x80)
            continue;
        if (b >= 0xC0 && b <= 0xDF)
            need = 1, lo = b & 0x1F, min = 0x80;
        else if (b >= 0xE0 && b <= 0xEF)
            need = 2, lo = b & 0x0F, min = 0x800;
        else if (b >= 0xF0 && b <= 0xF7)
            need = 3, lo = b & 0x07, min = 0x10000;
        else
            return REF_INVALID;
        for (k = 0; k < need && i < n; k++, i++) {
            if ((s[i] & 0xC0) != 0x80)
                return REF_INVALID;
            lo = lo << 6 | (s[i] & 0x3F);
        }
        hi = lo;
        for (size_t m = k; m < need; m++) {
            lo = lo << 6;
            hi = hi << 6 | 0x3F;
        }
        if (lo < min)
            lo = min;
        if (hi > 0x10FFFF)
            hi = 0x10FFFF;
        if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF))
            return REF_INVALID;
        if (k < need)
            return REF_INCOMPLETE;
    }
    return REF_VALID;
}

static enum ref_result classify(uint32_t state)
{
    return state == WSD_UTF8_ACCEPT   ? REF_VALID
           : state == WSD_UTF8_REJECT ? REF_INVALID
                                      : REF_INCOMPLETE;
}

/* Validate s in every feeding mode; all must end in the same state. Returns it. */
static uint32_t validate_all_ways(const uint8_t *s, size_t n)
{
    uint32_t whole = wsd_utf8_validate(WSD_UTF8_ACCEPT, s, n);

    for (size_t mode = 1; mode < feed_mode_count(n); mode++) {
        uint32_t st = WSD_UTF8_ACCEPT;
        size_t pos = 0, end;

        do {
            end = feed_piece_end(n, mode, pos);
            st = wsd_utf8_validate(st, s + pos, end - pos);
            pos = end;
        } while (pos < n);
        assert_int_equal(st, whole);
    }
    return whole;
}

static void expect_result(const char *s, enum ref_result want)
{
    size_t n = strlen(s);

    assert_int_equal(classify(validate_all_ways((const uint8_t *)s, n)), want);
    assert_int_equal(ref_check((const uint8_t *)s, n), want);
}

static void test_utf8_validate_valid(void **state)
{
    (void)state;
    expect_result("", REF_VALID);
    expect_result("Hello, world", REF_VALID);
    expect_result("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", REF_VALID); /* "kosme" */
    expect_result("\xc2\x80", REF_VALID);                                     /* U+0080 */
    expect_result("\xdf\xbf", REF_VALID);                                     /* U+07FF */
    expect_result("\xe0\xa0\x80", REF_VALID);                                 /* U+0800 */
    expect_result("\xed\x9f\xbf", REF_VALID);                                 /* U+D7FF */
    expect_result("\xee\x80\x80", REF_VALID);                                 /* U+E000 */
    expect_result("\xef\xbf\xbf", REF_VALID);                                 /* U+FFFF */
    expect_result("\xf0\x90\x80\x80", REF_VALID);                             /* U+10000 */
    expect_result("\xf4\x8f\xbf\xbf", REF_VALID);                             /* U+10FFFF */
    expect_result("abc\xf0\x9f\x98\x80xyz\xe2\x82\xac", REF_VALID);
}

static void test_utf8_validate_overlong(void **state)
{
    (void)state;
    expect_result("\xc0\x80", REF_INVALID);
    expect_result("\xc1\xbf", REF_INVALID);
    expect_result("\xe0\x80\x80", REF_INVALID);
    expect_result("\xe0\x9f\xbf", REF_INVALID);
    expect_result("\xf0\x80\x80\x80", REF_INVALID);
    expect_result("\xf0\x8f\xbf\xbf", REF_INVALID);
    expect_result("\xc0\xaf", REF_INVALID); /* the classic overlong "/" */
}

static void test_utf8_validate_surrogates(void **state)
{
    (void)state;
    expect_result("\xed\xa0\x80", REF_INVALID);             /* U+D800 */
    expect_result("\xed\xaf\xbf", REF_INVALID);             /* U+DBFF */
    expect_result("\xed\xb0\x80", REF_INVALID);             /* U+DC00 */
    expect_result("\xed\xbf\xbf", REF_INVALID);             /* U+DFFF */
    expect_result("\xed\xa0\x80\xed\xb0\x80", REF_INVALID); /* a CESU-8 pair */
}

static void test_utf8_validate_above_max(void **state)
{
    (void)state;
    expect_result("\xf4\x90\x80\x80", REF_INVALID); /* U+110000 */
    expect_result("\xf5\x80\x80\x80", REF_INVALID);
    expect_result("\xf7\xbf\xbf\xbf", REF_INVALID);
    expect_result("\xf8\x88\x80\x80\x80", REF_INVALID);
    expect_result("\xfe", REF_INVALID);
    expect_result("\xff", REF_INVALID);
}

static void test_utf8_validate_bad_tails(void **state)
{
    (void)state;
    expect_result("\x80", REF_INVALID);
    expect_result("\xbf", REF_INVALID);
    expect_result("a\x80z", REF_INVALID);
    expect_result("\xc2\x41", REF_INVALID);
    expect_result("\xe1\x80\x41", REF_INVALID);
    expect_result("\xf1\x80\x80\x41", REF_INVALID);
    expect_result("\xc2\xc2\x80", REF_INVALID);
}

static void test_utf8_validate_truncated(void **state)
{
    (void)state;
    expect_result("\xc2", REF_INCOMPLETE);
    expect_result("\xe0\xa0", REF_INCOMPLETE);
    expect_result("\xed", REF_INCOMPLETE);
    expect_result("\xf0\x90\x80", REF_INCOMPLETE);
    expect_result("\xf4\x8f", REF_INCOMPLETE);
    expect_result("abc\xe2\x82", REF_INCOMPLETE);
}

static void test_utf8_validate_reject_is_sticky(void **state)
{
    uint32_t st;

    (void)state;
    st = wsd_utf8_validate(WSD_UTF8_ACCEPT, (const uint8_t *)"\xff", 1);
    assert_int_equal(st, WSD_UTF8_REJECT);
    st = wsd_utf8_validate(st, (const uint8_t *)"plain ascii, long enough for words", 34);
    assert_int_equal(st, WSD_UTF8_REJECT);
    assert_int_equal(wsd_utf8_validate(WSD_UTF8_REJECT, NULL, 0), WSD_UTF8_REJECT);
    /* A state we never returned is refused, not used as a table index. */
    assert_int_equal(wsd_utf8_validate(1000, (const uint8_t *)"a", 1), WSD_UTF8_REJECT);
}

/* Every 1-, 2- and 3-byte input against the reference: alone (the DFA, near the end) and with
 * one byte after it (the whole-character fast path, which needs 4 readable bytes). */
static void test_utf8_validate_exhaustive_short(void **state)
{
    uint8_t s[4] = {0, 0, 0, 'a'};

    (void)state;
    for (uint32_t v = 0; v < 1u << 24; v++) {
        s[0] = (uint8_t)(v >> 16);
        s[1] = (uint8_t)(v >> 8);
        s[2] = (uint8_t)v;
        if (classify(wsd_utf8_validate(0, s, 4)) != ref_check(s, 4))
            fail_msg("mismatch at %02x %02x %02x 61", s[0], s[1], s[2]);
        if (v < 256)
            assert_int_equal(classify(wsd_utf8_validate(0, s + 2, 1)), ref_check(s + 2, 1));
        if (v < 65536)
            assert_int_equal(classify(wsd_utf8_validate(0, s + 1, 2)), ref_check(s + 1, 2));
        if (classify(wsd_utf8_validate(0, s, 3)) != ref_check(s, 3))
            fail_msg("mismatch at %02x %02x %02x", s[0], s[1], s[2]);
    }
}

/* Every 4-byte input whose lead byte is a 4-byte lead or nearby, with sampled last bytes. */
static void test_utf8_validate_exhaustive_four(void **state)
{
    static const uint8_t last[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0xBF, 0xC0, 0xFF};
    uint8_t s[4];

    (void)state;
    for (unsigned a = 0xEF; a <= 0xF8; a++) {
        for (unsigned b = 0; b < 256; b++) {
            for (unsigned c = 0; c < 256; c++) {
                for (size_t d = 0; d < sizeof(last); d++) {
                    s[0] = (uint8_t)a, s[1] = (uint8_t)b, s[2] = (uint8_t)c, s[3] = last[d];
                    if (classify(wsd_utf8_validate(0, s, 4)) != ref_check(s, 4))
                        fail_msg("mismatch at %02x %02x %02x %02x", a, b, c, last[d]);
                }
            }
        }
    }
}

/* The fast path must stop at the first non-ASCII byte wherever it is in a 16-byte block. */
static void test_utf8_validate_fast_path_positions(void **state)
{
    uint8_t s[80];

    (void)state;
    for (size_t len = 1; len <= sizeof(s); len++) {
        for (size_t bad = 0; bad < len; bad++) {
            memset(s, 'a', len);
            s[bad] = 0x80;
            assert_int_equal(wsd_utf8_validate(0, s, len), WSD_UTF8_REJECT);
            s[bad] = 0xC3; /* a lead as the last byte leaves the text incomplete */
            if (bad + 1 < len) {
                s[bad + 1] = 0xA9;
                assert_int_equal(wsd_utf8_validate(0, s, len), WSD_UTF8_ACCEPT);
            } else {
                assert_int_equal(classify(wsd_utf8_validate(0, s, len)), REF_INCOMPLETE);
            }
        }
    }
}

/* Input that ends right before a PROT_NONE page: no read may go past it. */
static void test_utf8_validate_guard_page(void **state)
{
    static const char text[] = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEF\xc3\xa9";
    struct feed_guard g;
    size_t n = sizeof(text) - 1;

    (void)state;
    feed_guard_init(&g, 4096);
    for (size_t len = 0; len <= n; len++) {
        /* Suffixes: only the 1-byte one, a lone tail, is invalid. */
        const uint8_t *p = feed_guard_put(&g, text + n - len, len);

        assert_int_equal(wsd_utf8_validate(0, p, len),
                         len == 1 ? WSD_UTF8_REJECT : WSD_UTF8_ACCEPT);
        /* Prefixes: only the one ending in the lead byte is incomplete. */
        p = feed_guard_put(&g, text, len);
        assert_int_equal(classify(wsd_utf8_validate(0, p, len)),
                         len == n - 1 ? REF_INCOMPLETE : REF_VALID);
    }
    feed_guard_done(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_validate_valid),
        cmocka_unit_test(test_utf8_validate_overlong),
        cmocka_unit_test(test_utf8_validate_surrogates),
        cmocka_unit_test(test_utf8_validate_above_max),
        cmocka_unit_test(test_utf8_validate_bad_tails),
        cmocka_unit_test(test_utf8_validate_truncated),
        cmocka_unit_test(test_utf8_validate_reject_is_sticky),
        cmocka_unit_test(test_utf8_validate_exhaustive_short),
        cmocka_unit_test(test_utf8_validate_exhaustive_four),
        cmocka_unit_test(test_utf8_validate_fast_path_positions),
        cmocka_unit_test(test_utf8_validate_guard_page),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
