/* SPDX-License-Identifier: MIT */
/* The control-socket requests wsbench kill needs: connect, send one line, read to EOF. */
#include "bench/control.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/sys.h"

#define SPIN_LIMIT_NS (10ull * 1000 * 1000 * 1000)

/* Send req and read the whole answer (wsd closes after it) into a malloc'd, NUL-terminated
 * *ret. With spin, the answer is polled for instead of slept on (see wsb_control_kill).
 * Returns its length or -errno. */
static ssize_t request(const char *path, const char *req, bool spin, char **ret)
{
    uint64_t give_up = wsd_now_ns() + SPIN_LIMIT_NS;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = 0, cap = 4096;
    char *buf;
    int fd, r = 0;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        r = -errno;
        goto out;
    }
    for (;;) {
        ssize_t n;

        if (cap - len < 2048) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                r = -ENOMEM;
                goto out;
            }
            buf = bigger;
            cap *= 2;
        }
        n = recv(fd, buf + len, cap - len - 1, spin ? MSG_DONTWAIT : 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && spin && wsd_now_ns() < give_up)
            continue;
        if (n < 0) {
            r = -errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
out:
    close(fd);
    if (r < 0) {
        free(buf);
        return r;
    }
    buf[len] = '\0';
    *ret = buf;
    return (ssize_t)len;
}

int wsb_control_list(const char *path, struct wsb_control_conn *ret, size_t cap)
{
    const char *p;
    char *answer;
    size_t n = 0;
    ssize_t len = request(path, "list json\n", false, &answer);

    if (len < 0)
        return (int)len;
    if (strncmp(answer, "OK\n[", 4) != 0) { /* "OK", then the JSON array */
        free(answer);
        return -EBADMSG;
    }
    /* Each entry is {"id":N,"pid":N,"peer":"ADDR:PORT",...}: the port follows the last ':'. */
    for (p = answer; n < cap && (p = strstr(p, "{\"id\":")); p++) {
        const char *peer = strstr(p, "\"peer\":\""), *end, *colon = NULL;
        uint64_t id = strtoull(p + 6, NULL, 10);
        unsigned long port;

        if (!peer)
            break;
        peer += 8;
        end = strchr(peer, '"');
        for (const char *q = peer; end && q < end; q++)
            if (*q == ':')
                colon = q;
        if (!colon)
            continue;
        port = strtoul(colon + 1, NULL, 10);
        if (port == 0 || port > 65535)
            continue;
        ret[n++] = (struct wsb_control_conn){ .id = id, .peer_port = (uint16_t)port };
    }
    free(answer);
    return (int)n;
}

int wsb_control_kill(const char *path, uint64_t id, uint16_t code)
{
    char req[64], *answer;
    ssize_t len;
    int r;

    snprintf(req, sizeof(req), "kill %" PRIu64 " %u 0 \n", id, (unsigned)code);
    len = request(path, req, true, &answer);
    if (len < 0)
        return (int)len;
    r = strncmp(answer, "OK\n", 3) == 0                     ? 0
        : strstr(answer, "no such connection") != NULL ? -ENOENT
                                                         : -EBADMSG;
    free(answer);
    return r;
}
