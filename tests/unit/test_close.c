/* SPDX-License-Identifier: MIT */
/* Proves the close code table (RFC 6455 7.4, the Autobahn 7.7.x / 7.9.x lists) over all 65536
 * values, close payload parsing (empty, 1 byte, bad code, bad UTF-8 reason) and writing
 * (truncation never splits a UTF-8 character). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/close.h"
#include "proto/proto.h"
#include "proto/utf8.h"
#include "proto/ws_codes.h"

static void test_close_code_is_valid_autobahn_lists(void **state)
{
    /* Autobahn 7.7.x: sent by the peer, must be accepted */
    static const uint16_t ok[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                  1010, 1011, 3000, 3999, 4000, 4999};
    /* Autobahn 7.9.x: must fail the connection */
    static const uint16_t bad[] = {0,    999,  1004, 1005, 1006, 1012, 1013, 1014,
                                   1015, 1016, 1100, 2000, 2999, 5000, 65535};

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(wsd_close_code_is_valid(ok[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(wsd_close_code_is_valid(bad[i]));
}

static void test_close_code_is_valid_all_values(void **state)
{
    (void)state;
    for (uint32_t c = 0; c <= 0xFFFF; c++) {
        bool want =
            (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);

        assert_int_equal(wsd_close_code_is_valid((uint16_t)c), want);
    }
}

static int parse(const void *p, size_t len, uint16_t *code, const uint8_t **reason,
                 size_t *reason_len)
{
    return wsd_close_payload_parse(p, len, code, reason, reason_len);
}

/* RFC 6455 7.1.5: no code in the frame is reported as 1005. */
static void test_close_payload_parse_empty(void **state)
{
    const uint8_t *reason = NULL;
    size_t reason_len = 99;
    uint16_t code = 0;

    (void)state;
    assert_int_equal(parse("", 0, &code, &reason, &reason_len), 0);
    assert_int_equal(code, WSD_CLOSE_NO_STATUS);
    assert_int_equal(reason_len, 0);
}

static void test_close_payload_parse_code_and_reason(void **state)
{
    static const uint8_t p[] = {0x03, 0xE8, 'b', 'y', 'e', 0xC3, 0xA9};
    const uint8_t *reason;
    size_t reason_len;
    uint16_t code;

    (void)state;
    assert_int_equal(parse(p, sizeof(p), &code, &reason, &reason_len), 0);
    assert_int_equal(code, WSD_CLOSE_NORMAL);
    assert_ptr_equal(reason, p + 2);
    assert_int_equal(reason_len, 5);
    assert_int_equal(parse(p, 2, &code, &reason, &reason_len), 0);
    assert_int_equal(reason_len, 0);
}

/* RFC 6455 5.5.1: a body starts with a 2-byte code, so 1 byte is a protocol error. */
static void test_close_payload_parse_one_byte(void **state)
{
    const uint8_t *reason;
    size_t reason_len;
    uint16_t code = 7;

    (void)state;
    assert_int_equal(parse("\x03", 1, &code, &reason, &reason_len),
                     WSD_PROTO_ERR_CLOSE(WSD_CLOSE_PROTOCOL_ERROR));
    assert_int_equal(code, 7); /* ret_ written only on success */
}

static void test_close_payload_parse_invalid_code(void **state)
{
    static const uint16_t bad[] = {0, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000};
    const uint8_t *reason;
    size_t reason_len;
    uint16_t code;
    uint8_t p[2];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p[0] = (uint8_t)(bad[i] >> 8);
        p[1] = (uint8_t)bad[i];
        assert_int_equal(parse(p, 2, &code, &reason, &reason_len),
                         WSD_PROTO_ERR_CLOSE(WSD_CLOSE_PROTOCOL_ERROR));
    }
}

/* RFC 6455 8.1: an invalid or truncated UTF-8 reason fails with 1007. */
static void test_close_payload_parse_bad_reason(void **state)
{
    static const char *const bad[] = {
        "\x03\xe8\xff",
        "\x03\xe8ok\xc0\xaf",
        "\x03\xe8\xed\xa0\x80",
        "\x03\xe8\xf4\x90\x80\x80",
        "\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
        "edited",
        "\x03\xe8truncated\xe2\x82",
    };
    const uint8_t *reason;
    size_t reason_len;
    uint16_t code;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], strlen(bad[i]), &code, &reason, &reason_len),
                         WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INVALID_PAYLOAD));
}

/* RFC 6455 5.5: control payloads are at most 125 bytes. */
static void test_close_payload_parse_too_long(void **state)
{
    uint8_t p[126];
    const uint8_t *reason;
    size_t reason_len;
    uint16_t code;

    (void)state;
    memset(p, 'a', sizeof(p));
    p[0] = 0x03;
    p[1] = 0xE8;
    assert_int_equal(parse(p, 125, &code, &reason, &reason_len), 0);
    assert_int_equal(reason_len, WSD_CLOSE_REASON_MAX);
    assert_int_equal(parse(p, 126, &code, &reason, &reason_len),
                     WSD_PROTO_ERR_CLOSE(WSD_CLOSE_PROTOCOL_ERROR));
}

static void test_close_payload_write_round_trip(void **state)
{
    uint8_t out[125];
    const uint8_t *reason;
    size_t n, reason_len;
    uint16_t code;

    (void)state;
    n = wsd_close_payload_write(out, WSD_CLOSE_GOING_AWAY, "shutting down", 13);
    assert_int_equal(n, 15);
    assert_int_equal(out[0], 0x03);
    assert_int_equal(out[1], 0xE9);
    assert_int_equal(parse(out, n, &code, &reason, &reason_len), 0);
    assert_int_equal(code, WSD_CLOSE_GOING_AWAY);
    assert_memory_equal(reason, "shutting down", 13);
    assert_int_equal(wsd_close_payload_write(out, WSD_CLOSE_MESSAGE_TOO_BIG, NULL, 0), 2);
}

/* RFC 6455 7.4.1: 1005 is never sent, so "no status" is an empty payload. */
static void test_close_payload_write_no_status(void **state)
{
    uint8_t out[125];

    (void)state;
    assert_int_equal(wsd_close_payload_write(out, WSD_CLOSE_NO_STATUS, "x", 1), 0);
}

/* Truncation to 123 bytes backs up to a character start, for 1- to 4-byte characters at
 * every position across the cut. */
static void test_close_payload_write_truncates_on_char_boundary(void **state)
{
    static const char *const chars[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    char reason[200];
    uint8_t out[125];
    size_t n;

    (void)state;
    for (size_t c = 0; c < 4; c++) {
        size_t clen = strlen(chars[c]);

        for (size_t at = 118; at <= WSD_CLOSE_REASON_MAX; at++) {
            memset(reason, 'x', sizeof(reason));
            memcpy(reason + at, chars[c], clen);
            n = wsd_close_payload_write(out, WSD_CLOSE_NORMAL, reason, sizeof(reason));
            assert_true(n <= 125);
            assert_int_equal(n - 2, at + clen <= WSD_CLOSE_REASON_MAX ? WSD_CLOSE_REASON_MAX : at);
            assert_int_equal(wsd_utf8_validate(WSD_UTF8_ACCEPT, out + 2, n - 2), WSD_UTF8_ACCEPT);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_code_is_valid_autobahn_lists),
        cmocka_unit_test(test_close_code_is_valid_all_values),
        cmocka_unit_test(test_close_payload_parse_empty),
        cmocka_unit_test(test_close_payload_parse_code_and_reason),
        cmocka_unit_test(test_close_payload_parse_one_byte),
        cmocka_unit_test(test_close_payload_parse_invalid_code),
        cmocka_unit_test(test_close_payload_parse_bad_reason),
        cmocka_unit_test(test_close_payload_parse_too_long),
        cmocka_unit_test(test_close_payload_write_round_trip),
        cmocka_unit_test(test_close_payload_write_no_status),
        cmocka_unit_test(test_close_payload_write_truncates_on_char_boundary),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
