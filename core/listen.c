/* SPDX-License-Identifier: MIT */
/* Socket address parsing and the listening socket. Only numeric hosts: a server that resolves
 * names at startup depends on DNS for no gain. */
#include "core/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sys.h"

static int parse_port(const char *s, in_port_t *ret)
{
    if (*s < '0' || *s > '9' || strlen(s) > 5)
        return -EINVAL;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0' || v > 65535)
        return -EINVAL;
    *ret = htons((in_port_t)v);
    return 0;
}

int wsd_listen_parse_addr(const char *s, struct sockaddr_storage *ret)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return -EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(ret, 0, sizeof(*ret));

    in_port_t port;
    if (parse_port(colon + 1, &port) < 0)
        return -EINVAL;
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']')
            return -EINVAL;
        host[n - 1] = '\0';
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ret;
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return -EINVAL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = port;
        return sizeof(*a6);
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ret;
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return -EINVAL;
    a4->sin_family = AF_INET;
    a4->sin_port = port;
    return sizeof(*a4);
}

int wsd_listen_open(const char *addr, int backlog)
{
    struct sockaddr_storage ss;
    int len = wsd_listen_parse_addr(addr, &ss);
    if (len < 0)
        return len;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int one = 1, r;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
        goto fail;
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) < 0 || listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:
    r = -errno;
    wsd_close(fd);
    return r;
}

/* Decimal digits of v at out; returns the end. */
static char *put_decimal(char *out, unsigned v)
{
    char tmp[10];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        *out++ = tmp[--n];
    return out;
}

void wsd_addr_format(const struct sockaddr_storage *addr, char out[WSD_ADDR_STRLEN])
{
    if (addr->ss_family == AF_INET) {
        /* By hand, not inet_ntop + snprintf: a fresh worker formats its peer once, and each
         * libc function it runs for the first time is a code page it faults in. */
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;
        const uint8_t *b = (const uint8_t *)&a4->sin_addr;
        char *p = out;
        for (int i = 0; i < 4; i++) {
            p = put_decimal(p, b[i]);
            *p++ = i < 3 ? '.' : ':';
        }
        *put_decimal(p, ntohs(a4->sin_port)) = '\0';
    } else if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;
        char host[INET6_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
        snprintf(out, WSD_ADDR_STRLEN, "[%s]:%u", host, ntohs(a6->sin6_port));
    } else {
        snprintf(out, WSD_ADDR_STRLEN, "unknown");
    }
}
