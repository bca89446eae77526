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

/* Connect to wsd's control socket at path and send req; the answer is read by read_answer. */
static int request_start(struct wsb_control_req *q, const char *path, const char *req)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    *q = (struct wsb_control_req){ .fd = -1 };
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    q->cap = 4096;
    q->buf = malloc(q->cap);
    if (!q->buf)
        return -ENOMEM;
    errno = 0;
    q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        send(q->fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        int r = errno ? -errno : -EIO; /* a short send sets no errno */
        wsb_control_req_done(q);
        return r;
    }
    return 0;
}

/* Read what has come of the answer (wsd closes after it); with wait, block until it is whole.
 * Returns 1 once it is (NUL-terminated in q->buf), 0 while more is to come, or -errno. */
static int read_answer(struct wsb_control_req *q, bool wait)
{
    for (;;) {
        ssize_t n;

        if (q->cap - q->len < 2048) {
            char *bigger = realloc(q->buf, q->cap * 2);
            if (!bigger)
                return -ENOMEM;
            q->buf = bigger;
            q->cap *= 2;
        }
        n = recv(q->fd, q->buf + q->len, q->cap - q->len - 1, wait ? 0 : MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && !wait)
            return 0;
        if (n < 0)
            return -errno;
        if (n == 0) {
            q->buf[q->len] = '\0';
            return 1;
        }
        q->len += (size_t)n;
    }
}

void wsb_control_req_done(struct wsb_control_req *q)
{
    if (q->fd >= 0)
        close(q->fd);
    free(q->buf);
    *q = (struct wsb_control_req){ .fd = -1 };
}

int wsb_control_list(const char *path, struct wsb_control_conn *ret, size_t cap)
{
    struct wsb_control_req req;
    const char *p, *answer;
    size_t n = 0;
    int r = request_start(&req, path, "list json\n");

    if (r == 0)
        r = read_answer(&req, true);
    if (r < 0 || strncmp(req.buf, "OK\n[", 4) != 0) { /* "OK", then the JSON array */
        wsb_control_req_done(&req);
        return r < 0 ? r : -EBADMSG;
    }
    answer = req.buf;
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
    wsb_control_req_done(&req);
    return (int)n;
}

int wsb_control_kill_start(struct wsb_control_req *q, const char *path, uint64_t id,
                           uint16_t code)
{
    char req[64];

    snprintf(req, sizeof(req), "kill %" PRIu64 " %u 0 \n", id, (unsigned)code);
    return request_start(q, path, req);
}

int wsb_control_kill_poll(struct wsb_control_req *q)
{
    int r = read_answer(q, false);

    if (r == 0)
        return 0;
    if (r > 0)
        r = strncmp(q->buf, "OK\n", 3) == 0                  ? 1
            : strstr(q->buf, "no such connection") != NULL ? -ENOENT
                                                            : -EBADMSG;
    wsb_control_req_done(q);
    return r;
}
