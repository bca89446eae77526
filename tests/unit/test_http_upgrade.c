/* SPDX-License-Identifier: MIT */
/* Proves the upgrade request parser accepts RFC 6455 4.1 requests (any header case, split
 * Connection lists, pipelined frames after the blank line) and refuses the rest with the right
 * status: 400 malformed, 405 method, 426 Upgrade/version, 431 size. Every request is fed whole,
 * byte by byte and split at every point, ending at a PROT_NONE page, with the same result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/http_upgrade.h"
#include "proto/proto.h"
#include "proto/ws_codes.h"
#include "tests/unit/feed.h"

#define MAX_BYTES 8192
#define E400 WSD_PROTO_ERR_HTTP(WSD_HTTP_BAD_REQUEST)
#define E405 WSD_PROTO_ERR_HTTP(WSD_HTTP_METHOD_NOT_ALLOWED)
#define E426 WSD_PROTO_ERR_HTTP(WSD_HTTP_UPGRADE_REQUIRED)
#define E431 WSD_PROTO_ERR_HTTP(WSD_HTTP_HEADERS_TOO_LARGE)

/* RFC 6455 1.2 / 4.1: the opening handshake example */
#define RFC_REQUEST                                                                                \
    "GET /chat HTTP/1.1\r\n"                                                                       \
    "Host: server.example.com\r\n"                                                                 \
    "Upgrade: websocket\r\n"                                                                       \
    "Connection: Upgrade\r\n"                                                                      \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                              \
    "Origin: http://example.com\r\n"                                                               \
    "Sec-WebSocket-Protocol: chat, superchat\r\n"                                                  \
    "Sec-WebSocket-Version: 13\r\n"                                                                \
    "\r\n"

/* The required headers, valid, for tests that break something else. */
#define GOOD_HEADERS                                                                               \
    "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"                                     \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

/* Parse in mode: call with a growing prefix of in, as a connection would, until a result. */
static int run(struct wsd_http_upgrade *req, const uint8_t *in, size_t len, size_t mode,
               size_t max_bytes)
{
    size_t pos = 0, end;
    int r;

    memset(req, 0, sizeof(*req));
    do {
        end = feed_piece_end(len, mode, pos);
        r = wsd_http_upgrade_parse(req, in, end, max_bytes);
        pos = end;
    } while (r == WSD_PROTO_NEED_MORE && pos < len);
    return r;
}

/* Two parses of the same buffer must give the same views. */
static void assert_same_views(const struct wsd_http_upgrade *a, const struct wsd_http_upgrade *b)
{
    const struct wsd_http_view *va[] = {&a->method, &a->target,    &a->host,      &a->key,
                                        &a->origin, &a->protocols, &a->extensions};
    const struct wsd_http_view *vb[] = {&b->method, &b->target,    &b->host,      &b->key,
                                        &b->origin, &b->protocols, &b->extensions};

    for (size_t i = 0; i < sizeof(va) / sizeof(va[0]); i++) {
        assert_ptr_equal(va[i]->ptr, vb[i]->ptr);
        assert_int_equal(va[i]->len, vb[i]->len);
    }
    assert_int_equal(a->num_headers, b->num_headers);
    for (size_t i = 0; i < a->num_headers; i++) {
        assert_ptr_equal(a->headers[i].name.ptr, b->headers[i].name.ptr);
        assert_int_equal(a->headers[i].value.len, b->headers[i].value.len);
    }
}

/* Parse in in every mode from a buffer ending at a PROT_NONE page; every mode must give want
 * and the same views. The whole-mode result is left in *ret, its views pointing into the guard
 * page, which stays mapped until the next check. */
static struct feed_guard guard;

static void check_max(const char *in, size_t len, size_t max_bytes, int want,
                      struct wsd_http_upgrade *ret)
{
    struct wsd_http_upgrade req;
    const uint8_t *p;

    feed_guard_done(&guard);
    feed_guard_init(&guard, len);
    p = feed_guard_put(&guard, in, len);
    for (size_t mode = 0; mode < feed_mode_count(len); mode++) {
        int r = run(&req, p, len, mode, max_bytes);

        if (r != want)
            fail_msg("%s (mode %zu): %d, want %d", feed_mode_name(mode), mode, r, want);
        if (mode == 0)
            *ret = req;
        else if (r > 0)
            assert_same_views(&req, ret);
    }
}

static void check(const char *in, int want, struct wsd_http_upgrade *ret)
{
    check_max(in, strlen(in), MAX_BYTES, want, ret);
}

static void check_status(const char *in, int want)
{
    struct wsd_http_upgrade req;

    check(in, want, &req);
}

static void assert_view(struct wsd_http_view v, const char *s)
{
    if (s == NULL) {
        assert_null(v.ptr);
        return;
    }
    assert_non_null(v.ptr);
    assert_int_equal(v.len, strlen(s));
    assert_memory_equal(v.ptr, s, v.len);
}

/* RFC 6455 4.1: the example request, and its views. */
static void test_http_upgrade_parse_rfc_example(void **state)
{
    struct wsd_http_upgrade req;

    (void)state;
    check(RFC_REQUEST, (int)strlen(RFC_REQUEST), &req);
    assert_view(req.method, "GET");
    assert_view(req.target, "/chat");
    assert_view(req.host, "server.example.com");
    assert_view(req.key, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_view(req.origin, "http://example.com");
    assert_view(req.protocols, "chat, superchat");
    assert_view(req.extensions, NULL);
    assert_int_equal(req.num_headers, 7);
    assert_view(req.headers[6].name, "Sec-WebSocket-Version");
    assert_view(req.headers[6].value, "13");
    assert_view(wsd_http_upgrade_header(&req, "sec-websocket-protocol"), "chat, superchat");
    assert_view(wsd_http_upgrade_header(&req, "ORIGIN"), "http://example.com");
    assert_view(wsd_http_upgrade_header(&req, "Cookie"), NULL);
    assert_view(wsd_http_upgrade_header(&req, "Origi"), NULL);
}

/* RFC 9110 5.1 / 5.6.1: names are case-insensitive, lists split anywhere, OWS is trimmed. */
static void test_http_upgrade_parse_case_and_lists(void **state)
{
    static const char in[] = "GET /a?b=c HTTP/1.1\r\n"
                             "host:example.org:8080\r\n"
                             "UPGRADE: h2c ,  WebSocket\t, x\r\n"
                             "connection: keep-alive, Upgrade \t,close\r\n"
                             "sec-websocket-key:\t dGhlIHNhbXBsZSBub25jZQ==  \r\n"
                             "SEC-WEBSOCKET-VERSION: 13\r\n"
                             "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                             "Sec-WebSocket-Extensions: x-other\r\n"
                             "X-Empty:\r\n"
                             "X-Obs-Text: caf\xc3\xa9\r\n"
                             "\r\n";
    struct wsd_http_upgrade req;

    (void)state;
    check(in, (int)strlen(in), &req);
    assert_view(req.target, "/a?b=c");
    assert_view(req.host, "example.org:8080");
    assert_view(req.key, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_view(req.extensions, "permessage-deflate");
    assert_view(wsd_http_upgrade_header(&req, "x-empty"), "");
    assert_view(wsd_http_upgrade_header(&req, "x-obs-text"), "caf\xc3\xa9");
}

/* RFC 9110 7.6.1: Connection may be split over several header lines. */
static void test_http_upgrade_parse_connection_over_lines(void **state)
{
    static const char split[] = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                                "Connection: keep-alive\r\nConnection: upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n\r\n";
    /* "upgrade" inside another token is not the token */
    static const char inside[] = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                                 "Connection: upgraded, no-upgrade\r\n"
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Sec-WebSocket-Version: 13\r\n\r\n";

    (void)state;
    check_status(split, (int)strlen(split));
    check_status(inside, E400);
}

/* Bytes after the blank line are the first frames: the size excludes them. */
static void test_http_upgrade_parse_pipelined_frames(void **state)
{
    static const char in[] = RFC_REQUEST "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    struct wsd_http_upgrade req;

    (void)state;
    check(in, (int)strlen(RFC_REQUEST), &req);
    /* Complete within max_bytes: fine even though more bytes than max_bytes arrived. */
    check_max(in, strlen(in), strlen(RFC_REQUEST), (int)strlen(RFC_REQUEST), &req);
}

/* RFC 9112 2.2 and 5.2: bare CR, bare LF and obs-fold are refused, never repaired. */
static void test_http_upgrade_parse_line_endings(void **state)
{
    (void)state;
    check_status("GET / HTTP/1.1\n" GOOD_HEADERS "\r\n", E400);
    check_status("GET / HTTP/1.1\r\nHost: h\n" GOOD_HEADERS "\r\n", E400);
    check_status("GET / HTTP/1.1\r\n" GOOD_HEADERS "\n\r\n", E400);
    check_status("GET / HTTP/1.1\r\n" GOOD_HEADERS "\n", E400);
    check_status("GET / HTTP/1.1\r\nX: a\rb\r\n" GOOD_HEADERS "\r\n", E400);
    check_status("GET / HTTP/1.1\r\nX\r: a\r\n" GOOD_HEADERS "\r\n", E400);
    check_status("GET / HTTP/1.1\r\r\n" GOOD_HEADERS "\r\n", E400);
    check_status("GET / HTTP/1.1\r\nX: a\r\n continued\r\n" GOOD_HEADERS "\r\n", E400);
    check_status("GET / HTTP/1.1\r\nX: a\r\n\tcontinued\r\n" GOOD_HEADERS "\r\n", E400);
    check_status("GET / HTTP/1.1\r\n Host: h\r\n" GOOD_HEADERS "\r\n", E400);
    check_status("\r\nGET / HTTP/1.1\r\n" GOOD_HEADERS "\r\n", E400);
    check_status("\r\n\r\n", E400);
}

/* RFC 9112 3: request-line = method SP request-target SP HTTP-version */
static void test_http_upgrade_parse_request_line(void **state)
{
    static const char *const bad[] = {
        "GET / HTTP/1.0",     "GET / HTTP/2",
        "GET / HTTP/1.1 ",    "GET / http/1.1",
        "GET /  HTTP/1.1",    "GET  / HTTP/1.1",
        "GET HTTP/1.1",       "GET /",
        " GET / HTTP/1.1",    "G(T / HTTP/1.1",
        "GET /\x7f HTTP/1.1", "GET /\xc3\xa9 HTTP/1.1",
        "GET\t/ HTTP/1.1",    "",
        "GET / HTTP/1.10",
    };
    char in[512];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(in, sizeof(in), "%s\r\n" GOOD_HEADERS "\r\n", bad[i]);
        check_status(in, E400);
    }
}

/* Request line, then the line under test, then the valid headers and the blank line. */
static size_t with_header_line(char *out, const char *line, size_t line_len)
{
    static const char head[] = "GET / HTTP/1.1\r\n", tail[] = "\r\n" GOOD_HEADERS "\r\n";
    size_t n = 0;

    memcpy(out + n, head, sizeof(head) - 1);
    n += sizeof(head) - 1;
    memcpy(out + n, line, line_len); /* memcpy: the line may hold a NUL */
    n += line_len;
    memcpy(out + n, tail, sizeof(tail) - 1);
    return n + sizeof(tail) - 1;
}

/* RFC 9110 5.1, 5.5: names are tokens right before the colon; values are visible chars. */
static void test_http_upgrade_parse_header_syntax(void **state)
{
    static const char *const bad[] = {
        "Host : h", "Host",     ": value", "Ho st: h", "Ho(st: h",
        "X: a\x01", "X: a\x7f", "X:\x1f",  "\tX: a",
    };
    static const char nul[] = "X: a\0b";
    struct wsd_http_upgrade req;
    char in[512];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_max(in, with_header_line(in, bad[i], strlen(bad[i])), MAX_BYTES, E400, &req);
    check_max(in, with_header_line(in, nul, sizeof(nul) - 1), MAX_BYTES, E400, &req);
}

/* RFC 9110 9.1: methods are case-sensitive; 405 only for a well-formed request. */
static void test_http_upgrade_parse_method(void **state)
{
    (void)state;
    check_status("POST / HTTP/1.1\r\n" GOOD_HEADERS "\r\n", E405);
    check_status("get / HTTP/1.1\r\n" GOOD_HEADERS "\r\n", E405);
    check_status("HEAD / HTTP/1.1\r\n\r\n", E405);
    check_status("POST / HTTP/1.0\r\n" GOOD_HEADERS "\r\n", E400);
    check_status("POST / HTTP/1.1\r\nBad Header: x\r\n\r\n", E400);
}

/* RFC 9112 3.2: exactly one Host. */
static void test_http_upgrade_parse_host(void **state)
{
#define UCKV                                                                                       \
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"                                                \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    (void)state;
    check_status("GET / HTTP/1.1\r\n" UCKV "\r\n", E400);
    check_status("GET / HTTP/1.1\r\nHost: a\r\n" UCKV "host: b\r\n\r\n", E400);
    /* Host is checked before everything but the method */
    check_status("GET / HTTP/1.1\r\nSec-WebSocket-Version: 1\r\n\r\n", E400);
#undef UCKV
}

/* RFC 6455 4.2.1: Upgrade must name websocket (else 426), Connection must name upgrade. */
static void test_http_upgrade_parse_upgrade_and_connection(void **state)
{
#define KV "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    (void)state;
    check_status("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n" KV "\r\n", E426);
    check_status("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n" KV "\r\n",
                 E426);
    check_status("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websockets\r\nConnection: Upgrade\r\n" KV
                 "\r\n",
                 E426);
    check_status("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n" KV "\r\n", E400);
    check_status(
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: close\r\n" KV "\r\n", E400);
    /* Upgrade is checked before Connection */
    check_status("GET / HTTP/1.1\r\nHost: h\r\n" KV "\r\n", E426);
#undef KV
}

/* RFC 6455 4.4: a version other than 13 gets 426 (with the version we speak). */
static void test_http_upgrade_parse_version(void **state)
{
#define UC                                                                                         \
    "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"                                     \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    (void)state;
    check_status("GET / HTTP/1.1\r\n" UC "\r\n", E426);
    check_status("GET / HTTP/1.1\r\n" UC "Sec-WebSocket-Version: 8\r\n\r\n", E426);
    check_status("GET / HTTP/1.1\r\n" UC "Sec-WebSocket-Version: 13, 8\r\n\r\n", E426);
    check_status("GET / HTTP/1.1\r\n" UC "Sec-WebSocket-Version: 130\r\n\r\n", E426);
    check_status("GET / HTTP/1.1\r\n" UC "Sec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 E426);
#undef UC
}

/* RFC 6455 4.1: the key is base64 of 16 bytes, sent once. */
static void test_http_upgrade_parse_key(void **state)
{
    static const char *const bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",
        "dGhlIHNhbXBsZSBub25jZQ===",
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25jZ===",
        "dGhlIHNhbXBsZSBub25jZA",
        "dGhlIHNhbXBsZSBub25j*Q==",
        "dGhlIHNhbXBsZSBub25jZQ=A",
        "dGhlIHNhbXBsZSBub25jZSBh",
        "dGhl IHNhbXBsZSBub25jZQ==",
        "ZGhlIHNhbXBsZSBub25j",     /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZQA=", /* 17 bytes */
    };
    char in[512];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(in, sizeof(in),
                 "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 bad[i]);
        check_status(in, E400);
    }
    check_status("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 E400);
    check_status("GET / HTTP/1.1\r\n" GOOD_HEADERS
                 "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
                 E400);
    snprintf(in, sizeof(in),
             "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: ab+/ef0123456789ABCDEA==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    check_status(in, (int)strlen(in));
}

/* WSD_HTTP_MAX_HEADERS lines are fine; one more is 431. */
static void test_http_upgrade_parse_too_many_headers(void **state)
{
    char in[4096];
    size_t n;

    (void)state;
    for (int extra = WSD_HTTP_MAX_HEADERS - 5; extra <= WSD_HTTP_MAX_HEADERS - 4; extra++) {
        n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\n" GOOD_HEADERS);
        for (int i = 0; i < extra; i++)
            n += (size_t)snprintf(in + n, sizeof(in) - n, "X-%d: %d\r\n", i, i);
        n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n");
        check_status(in, extra + 5 <= WSD_HTTP_MAX_HEADERS ? (int)n : E431);
    }
}

/* A header block that does not end within max_bytes is 431; until then, NEED_MORE. */
static void test_http_upgrade_parse_too_large(void **state)
{
    size_t len = MAX_BYTES + 200;
    char *in = malloc(len + 1);
    struct wsd_http_upgrade req;
    int n;

    (void)state;
    assert_non_null(in);
    n = snprintf(in, len + 1, "GET / HTTP/1.1\r\n" GOOD_HEADERS "X-Big: ");
    memset(in + n, 'a', len - (size_t)n);
    memcpy(in + len - 4, "\r\n\r\n", 4);
    in[len] = '\0';
    check(in, E431, &req);
    /* With enough room it is a valid request. */
    check_max(in, len, len, (int)len, &req);
    check_max(in, len, len - 1, E431, &req);
    /* Exactly max_bytes and incomplete: the answer is still "more". */
    memset(&req, 0, sizeof(req));
    assert_int_equal(wsd_http_upgrade_parse(&req, (const uint8_t *)in, MAX_BYTES, MAX_BYTES),
                     WSD_PROTO_NEED_MORE);
    assert_int_equal(wsd_http_upgrade_parse(&req, (const uint8_t *)in, MAX_BYTES, MAX_BYTES),
                     WSD_PROTO_NEED_MORE);
    assert_int_equal(wsd_http_upgrade_parse(&req, (const uint8_t *)in, MAX_BYTES + 1, MAX_BYTES),
                     E431);
    free(in);
}

/* Incomplete input asks for more, and scanning resumes where it stopped (a CRLF CRLF split
 * across calls in every way is covered by the modes of every other test). */
static void test_http_upgrade_parse_need_more(void **state)
{
    static const char in[] = RFC_REQUEST;
    struct wsd_http_upgrade req = {0};
    size_t len = strlen(in);

    (void)state;
    for (size_t i = 0; i < len; i++)
        assert_int_equal(wsd_http_upgrade_parse(&req, (const uint8_t *)in, i, MAX_BYTES),
                         WSD_PROTO_NEED_MORE);
    assert_int_equal(req._scanned, len - 1);
    assert_int_equal(wsd_http_upgrade_parse(&req, (const uint8_t *)in, len, MAX_BYTES), (int)len);
    /* Asked again with the same bytes, the answer does not change. */
    assert_int_equal(wsd_http_upgrade_parse(&req, (const uint8_t *)in, len, MAX_BYTES), (int)len);
}

/* The plain request parse (the metrics listener): any method, no upgrade headers needed, Host
 * still exactly once; byte by byte it asks for more until the blank line. */
static void test_http_upgrade_request_parse(void **state)
{
    static const char post[] = "POST /api/kill HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"
                               "Origin: http://127.0.0.1:9\r\nContent-Length: 4\r\n\r\nid=1";
    size_t head = strlen(post) - 4;
    struct wsd_http_upgrade req = {0};

    (void)state;
    for (size_t i = 0; i < head; i++)
        assert_int_equal(wsd_http_request_parse(&req, (const uint8_t *)post, i, MAX_BYTES),
                         WSD_PROTO_NEED_MORE);
    assert_int_equal(wsd_http_request_parse(&req, (const uint8_t *)post, strlen(post), MAX_BYTES),
                     (int)head);
    assert_view(req.method, "POST");
    assert_view(req.target, "/api/kill");
    assert_view(req.host, "127.0.0.1:9");
    assert_view(req.origin, "http://127.0.0.1:9");
    assert_view(wsd_http_upgrade_header(&req, "content-length"), "4");
    assert_null(req.key.ptr);

    static const char *const bad[] = {
        "GET /metrics HTTP/1.1\r\n\r\n",                          /* no Host */
        "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",    /* two */
        "GET /metrics HTTP/1.0\r\nHost: a\r\n\r\n",               /* not 1.1 */
        "GET /metrics HTTP/1.1\nHost: a\r\n\r\n",                  /* bare LF */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&req, 0, sizeof(req));
        assert_int_equal(wsd_http_request_parse(&req, (const uint8_t *)bad[i], strlen(bad[i]),
                                                MAX_BYTES),
                         E400);
    }
    memset(&req, 0, sizeof(req));
    assert_int_equal(wsd_http_request_parse(&req, (const uint8_t *)post, head - 1, 64), E431);
}

static int teardown(void **state)
{
    (void)state;
    feed_guard_done(&guard);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_upgrade_parse_rfc_example),
        cmocka_unit_test(test_http_upgrade_parse_case_and_lists),
        cmocka_unit_test(test_http_upgrade_parse_connection_over_lines),
        cmocka_unit_test(test_http_upgrade_parse_pipelined_frames),
        cmocka_unit_test(test_http_upgrade_parse_line_endings),
        cmocka_unit_test(test_http_upgrade_parse_request_line),
        cmocka_unit_test(test_http_upgrade_parse_header_syntax),
        cmocka_unit_test(test_http_upgrade_parse_method),
        cmocka_unit_test(test_http_upgrade_parse_host),
        cmocka_unit_test(test_http_upgrade_parse_upgrade_and_connection),
        cmocka_unit_test(test_http_upgrade_parse_version),
        cmocka_unit_test(test_http_upgrade_parse_key),
        cmocka_unit_test(test_http_upgrade_parse_too_many_headers),
        cmocka_unit_test(test_http_upgrade_parse_too_large),
        cmocka_unit_test(test_http_upgrade_parse_need_more),
        cmocka_unit_test(test_http_upgrade_request_parse),
    };

    return cmocka_run_group_tests(tests, NULL, teardown);
}
