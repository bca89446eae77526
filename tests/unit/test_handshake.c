/* SPDX-License-Identifier: MIT */
/* Proves Sec-WebSocket-Accept against RFC 6455 1.3 and the response texts byte for byte: the
 * 101 with and without optional headers, each error status with the headers it needs, and
 * that nothing is written past cap (0 when it does not fit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/handshake.h"
#include "proto/ws_codes.h"

/* RFC 6455 1.3: "dGhlIHNhbXBsZSBub25jZQ==" gives "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" */
static void test_handshake_accept_rfc_example(void **state)
{
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    char accept[WSD_ACCEPT_LEN + 1];

    (void)state;
    memset(accept, 'x', sizeof(accept));
    assert_int_equal(wsd_handshake_accept(key, strlen(key), accept), 0);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* A second vector (the one Wikipedia's WebSocket article uses), checked with openssl sha1. */
static void test_handshake_accept_second_vector(void **state)
{
    char accept[WSD_ACCEPT_LEN + 1];

    (void)state;
    assert_int_equal(wsd_handshake_accept("x3JJHMbDL1EzLkh9GBhXDw==", 24, accept), 0);
    assert_string_equal(accept, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

/* Only key_len bytes count: the key is a view into the request, not a C string. */
static void test_handshake_accept_uses_key_len(void **state)
{
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: x";
    char accept[WSD_ACCEPT_LEN + 1], other[WSD_ACCEPT_LEN + 1];

    (void)state;
    assert_int_equal(wsd_handshake_accept(key, 24, accept), 0);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(wsd_handshake_accept(key, 23, other), 0);
    assert_string_not_equal(accept, other);
    assert_int_equal(strlen(other), WSD_ACCEPT_LEN);
}

/* Every cap below the size gives 0 and writes nothing past cap; size + 1 fits (the NUL). */
static void assert_fits_exactly(size_t (*write)(char *, size_t, const void *), const void *arg,
                                const char *want)
{
    char out[1024];
    size_t len = strlen(want);

    for (size_t cap = 0; cap <= len; cap++) {
        memset(out, '#', sizeof(out));
        assert_int_equal(write(out, cap, arg), 0);
        assert_int_equal(out[cap], '#');
    }
    memset(out, '#', sizeof(out));
    assert_int_equal(write(out, len + 1, arg), len);
    assert_string_equal(out, want);
}

struct r101 {
    const char *accept, *ext, *proto;
};

static size_t write_101(char *out, size_t cap, const void *arg)
{
    const struct r101 *a = arg;

    return wsd_handshake_response_101(out, cap, a->accept, a->ext, a->proto);
}

/* RFC 6455 4.2.2 (and the 1.3 example response) */
static void test_handshake_response_101_rfc_example(void **state)
{
    struct r101 a = {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", NULL, NULL};

    (void)state;
    assert_fits_exactly(write_101, &a,
                        "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                        "\r\n");
}

static void test_handshake_response_101_optional_headers(void **state)
{
    struct r101 both = {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "permessage-deflate", "chat"};
    struct r101 proto = {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", NULL, "chat"};

    (void)state;
    assert_fits_exactly(write_101, &both,
                        "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                        "Sec-WebSocket-Protocol: chat\r\n"
                        "\r\n");
    assert_fits_exactly(write_101, &proto,
                        "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                        "Sec-WebSocket-Protocol: chat\r\n"
                        "\r\n");
}

/* A value holding CR or LF would let its source write headers of its own. */
static void test_handshake_response_101_refuses_crlf(void **state)
{
    char out[512];

    (void)state;
    assert_int_equal(wsd_handshake_response_101(out, sizeof(out), "a", NULL, "chat\r\nX: y"), 0);
    assert_int_equal(wsd_handshake_response_101(out, sizeof(out), "a", "x\n", NULL), 0);
    assert_int_equal(wsd_handshake_response_101(out, sizeof(out), "a\r", NULL, NULL), 0);
}

struct rerr {
    int status;
    unsigned retry;
};

static size_t write_error(char *out, size_t cap, const void *arg)
{
    const struct rerr *a = arg;

    return wsd_handshake_response_error(out, cap, a->status, a->retry);
}

/* The expected text: common headers, then extra, then the body "<status> <phrase>\n". */
static void expect_error(int status, unsigned retry, const char *phrase, const char *conn,
                         const char *extra)
{
    struct rerr a = {status, retry};
    char body[64], want[512];
    int body_len = snprintf(body, sizeof(body), "%d %s\n", status, phrase);

    snprintf(want, sizeof(want),
             "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
             "Connection: %s\r\n%s\r\n%s",
             status, phrase, body_len, conn, extra, body);
    assert_fits_exactly(write_error, &a, want);
}

static void test_handshake_response_error_each_status(void **state)
{
    (void)state;
    expect_error(WSD_HTTP_BAD_REQUEST, 0, "Bad Request", "close", "");
    expect_error(WSD_HTTP_FORBIDDEN, 0, "Forbidden", "close", "");
    expect_error(WSD_HTTP_NOT_FOUND, 0, "Not Found", "close", "");
    expect_error(WSD_HTTP_METHOD_NOT_ALLOWED, 0, "Method Not Allowed", "close", "Allow: GET\r\n");
    expect_error(WSD_HTTP_REQUEST_TIMEOUT, 0, "Request Timeout", "close", "");
    /* RFC 9110 7.8: a sender of Upgrade lists "Upgrade" in Connection */
    expect_error(WSD_HTTP_UPGRADE_REQUIRED, 0, "Upgrade Required", "close, Upgrade",
                 "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    expect_error(WSD_HTTP_TOO_MANY_REQUESTS, 0, "Too Many Requests", "close", "");
    expect_error(WSD_HTTP_HEADERS_TOO_LARGE, 0, "Request Header Fields Too Large", "close", "");
    expect_error(WSD_HTTP_SERVICE_UNAVAILABLE, 0, "Service Unavailable", "close", "");
}

/* RFC 9110 10.2.3: Retry-After on 503 and 429 when given; never on other statuses. */
static void test_handshake_response_error_retry_after(void **state)
{
    (void)state;
    expect_error(WSD_HTTP_SERVICE_UNAVAILABLE, 5, "Service Unavailable", "close",
                 "Retry-After: 5\r\n");
    expect_error(WSD_HTTP_TOO_MANY_REQUESTS, 4294967295u, "Too Many Requests", "close",
                 "Retry-After: 4294967295\r\n");
    expect_error(WSD_HTTP_BAD_REQUEST, 5, "Bad Request", "close", "");
}

static void test_handshake_response_error_unknown_status(void **state)
{
    char out[512];

    (void)state;
    assert_int_equal(wsd_handshake_response_error(out, sizeof(out), 200, 0), 0);
    assert_int_equal(wsd_handshake_response_error(out, sizeof(out), 500, 0), 0);
    assert_int_equal(wsd_handshake_response_error(out, sizeof(out), -400, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_accept_rfc_example),
        cmocka_unit_test(test_handshake_accept_second_vector),
        cmocka_unit_test(test_handshake_accept_uses_key_len),
        cmocka_unit_test(test_handshake_response_101_rfc_example),
        cmocka_unit_test(test_handshake_response_101_optional_headers),
        cmocka_unit_test(test_handshake_response_101_refuses_crlf),
        cmocka_unit_test(test_handshake_response_error_each_status),
        cmocka_unit_test(test_handshake_response_error_retry_after),
        cmocka_unit_test(test_handshake_response_error_unknown_status),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
