/* SPDX-License-Identifier: MIT */
/* Proves wsd_addr_format, the peer text of every log line and of the exec handler's
 * REMOTE_ADDR: IPv4 as a.b.c.d:port at the edges of each field (formatted by hand), IPv6 in
 * brackets, and an unknown family. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/listen.h"

static void format_v4(const char *ip, uint16_t port, const char *want)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &a4->sin_addr), 1);
    char out[WSD_ADDR_STRLEN];
    memset(out, 'x', sizeof(out));
    wsd_addr_format(&ss, out);
    assert_string_equal(out, want);
}

static void test_addr_v4(void **state)
{
    (void)state;
    format_v4("127.0.0.1", 8080, "127.0.0.1:8080");
    format_v4("0.0.0.0", 0, "0.0.0.0:0");
    format_v4("255.255.255.255", 65535, "255.255.255.255:65535");
    format_v4("10.9.100.1", 10, "10.9.100.1:10");
}

static void test_addr_v6_and_unknown(void **state)
{
    (void)state;
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(443);
    assert_int_equal(inet_pton(AF_INET6, "::1", &a6->sin6_addr), 1);
    char out[WSD_ADDR_STRLEN];
    wsd_addr_format(&ss, out);
    assert_string_equal(out, "[::1]:443");
    ss.ss_family = AF_UNIX;
    wsd_addr_format(&ss, out);
    assert_string_equal(out, "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_v4),
        cmocka_unit_test(test_addr_v6_and_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
