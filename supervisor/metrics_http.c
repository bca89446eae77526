/* SPDX-License-Identifier: MIT */
/* The wsd-metrics process: one epoll loop over the listener, a signalfd and up to MAX_CLIENTS
 * HTTP clients. One request per connection ("Connection: close"); each client has a bounded
 * head (8 KiB), body (1 KiB) and time (10 s). Every request's bytes are wiped once answered: an
 * Authorization header carries the admin token. */
#include "supervisor/metrics_http.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/sys.h"
#include "proto/http_upgrade.h"
#include "proto/proto.h"
#include "supervisor/exit.h"
#include "supervisor/spawn.h"

#define MAX_CLIENTS 32
#define HEAD_MAX 8192
#define BODY_MAX 1024
#define CLIENT_TIMEOUT_MS 10000
#define LEAVE_MS 1000 /* at SIGTERM, requests in flight get this long to be answered */
#define ASK_TIMEOUT_MS 5000
#define FD_LISTEN 3
#define FD_CHAN 4
#define EV_LISTEN 0xfffffffeu
#define EV_SIGNAL 0xffffffffu

struct client {
    int fd;
    uint64_t deadline_ms;
    size_t len;
    size_t head_len, body_len; /* 0 until the head is complete */
    bool answering;
    struct wsd_http_upgrade req;
    struct wsd_buf out;
    uint8_t in[HEAD_MAX + BODY_MAX];
};

struct server {
    const struct wsd_config *cfg;
    int ep, sig_fd;
    struct client *clients;
    bool leaving; /* SIGTERM came: the listener is closed, the last answers go out */
};

int wsd_metrics_ask(int chan, const char *request, struct wsd_buf *answer)
{
    size_t n = strlen(request);
    char line[512];
    if (n + 1 > sizeof(line))
        return -EINVAL;
    memcpy(line, request, n);
    line[n++] = '\n';
    for (size_t off = 0; off < n;) {
        ssize_t w = send(chan, line + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno != EINTR)
            return -errno;
        off += w > 0 ? (size_t)w : 0;
    }
    uint64_t deadline = wsd_now_ms() + ASK_TIMEOUT_MS;
    for (;;) {
        char buf[16384];
        ssize_t r = recv(chan, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0)
            return -EPIPE;
        if (r > 0) {
            char *nul = memchr(buf, '\0', (size_t)r);
            size_t keep = nul ? (size_t)(nul - buf) : (size_t)r;
            if (wsd_buf_append(answer, buf, keep) < 0)
                return -ENOMEM;
            if (nul) /* one request at a time: nothing follows the NUL */
                return 0;
            continue;
        }
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        uint64_t now = wsd_now_ms();
        if (now >= deadline) {
            /* A late answer would be taken for the next request's: start over instead (the
             * supervisor starts a new wsd-metrics process). */
            wsd_log_error(ETIMEDOUT, "the supervisor did not answer '%s'", request);
            _exit(WSD_EXIT_FAILURE);
        }
        struct pollfd p = {.fd = chan, .events = POLLIN};
        (void)poll(&p, 1, (int)(deadline - now));
    }
}

static void client_close(struct server *sv, struct client *c)
{
    explicit_bzero(c->in, c->len);
    explicit_bzero(&c->req, sizeof(c->req));
    wsd_buf_done(&c->out);
    wsd_close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    (void)sv;
}

static void start_answer(struct server *sv, struct client *c)
{
    c->answering = true;
    /* The request (and any token in it) is no longer needed. */
    explicit_bzero(c->in, c->len);
    explicit_bzero(&c->req, sizeof(c->req));
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)(c - sv->clients)};
    (void)epoll_ctl(sv->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void answer_error(struct server *sv, struct client *c, int status, const char *why)
{
    wsd_metrics_respond_error(&c->out, status, why);
    start_answer(sv, c);
}

/* The head is complete: how long is the body? Returns false after answering an error. */
static bool body_length(struct server *sv, struct client *c)
{
    struct wsd_http_view cl = wsd_http_upgrade_header(&c->req, "Content-Length");
    if (wsd_http_upgrade_header(&c->req, "Transfer-Encoding").ptr) {
        answer_error(sv, c, 400, "chunked bodies are not accepted");
        return false;
    }
    size_t n = 0;
    for (size_t i = 0; cl.ptr && i < cl.len; i++) {
        if (cl.ptr[i] < '0' || cl.ptr[i] > '9' || n > BODY_MAX) {
            answer_error(sv, c, cl.ptr[i] < '0' || cl.ptr[i] > '9' ? 400 : 413,
                         "bad or too large Content-Length");
            return false;
        }
        n = n * 10 + (size_t)(cl.ptr[i] - '0');
    }
    if (n > BODY_MAX) {
        answer_error(sv, c, 413, "the body may be at most 1024 bytes");
        return false;
    }
    c->body_len = n;
    return true;
}

static void handle_readable(struct server *sv, struct client *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->len, sizeof(c->in) - c->len, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            client_close(sv, c);
            return;
        }
        if (n < 0)
            return;
        c->len += (size_t)n;
        if (c->head_len == 0) {
            int r = wsd_http_request_parse(&c->req, c->in, c->len, HEAD_MAX);
            if (r == WSD_PROTO_NEED_MORE)
                continue;
            if (r < 0) {
                int status = wsd_proto_error_code(r);
                answer_error(sv, c, status,
                             status == 431 ? "request head too large" : "malformed request");
                return;
            }
            c->head_len = (size_t)r;
            if (!body_length(sv, c))
                return;
        }
        if (c->len >= c->head_len + c->body_len) {
            wsd_metrics_route(sv->cfg, FD_CHAN, &c->req, c->in + c->head_len, c->body_len, &c->out);
            start_answer(sv, c);
            return;
        }
        if (c->len == sizeof(c->in)) {
            answer_error(sv, c, 413, "request too large");
            return;
        }
    }
}

static void handle_writable(struct server *sv, struct client *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, wsd_buf_head(&c->out), c->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0)
            break;
        wsd_buf_consume(&c->out, (size_t)n);
    }
    client_close(sv, c);
}

static void handle_accept(struct server *sv)
{
    for (;;) {
        int fd = accept4(FD_LISTEN, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct client *c = NULL;
        for (int i = 0; i < MAX_CLIENTS && !c; i++)
            if (sv->clients[i].fd < 0)
                c = &sv->clients[i];
        if (!c) { /* a dashboard or a scraper needs few connections: shed the rest */
            wsd_close(fd);
            continue;
        }
        c->fd = fd;
        c->len = c->head_len = c->body_len = 0;
        c->answering = false;
        memset(&c->req, 0, sizeof(c->req));
        c->deadline_ms = wsd_now_ms() + CLIENT_TIMEOUT_MS;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
                                 .data.u32 = (uint32_t)(c - sv->clients)};
        if (epoll_ctl(sv->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            client_close(sv, c);
    }
}

static void expire(struct server *sv)
{
    uint64_t now = wsd_now_ms();
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &sv->clients[i];
        if (c->fd < 0 || now < c->deadline_ms)
            continue;
        if (c->answering)
            client_close(sv, c); /* a client that does not read its answer */
        else
            answer_error(sv, c, 408, "the request took too long");
    }
}

/* SIGTERM (wsd stops, or an upgrade handed the listener to the next generation): accept no
 * more, but answer the requests already accepted, within LEAVE_MS; exiting at once would reset
 * them (their unread request makes the close a RST). */
static void stop_accepting(struct server *sv)
{
    struct signalfd_siginfo si;
    while (read(sv->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        ;
    if (sv->leaving)
        return;
    sv->leaving = true;
    wsd_close(FD_LISTEN); /* also leaves the epoll set */
    uint64_t last = wsd_now_ms() + LEAVE_MS;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (sv->clients[i].fd >= 0 && sv->clients[i].deadline_ms > last)
            sv->clients[i].deadline_ms = last;
}

static bool has_clients(const struct server *sv)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (sv->clients[i].fd >= 0)
            return true;
    return false;
}

/* Put the listener and the channel at FD_LISTEN and FD_CHAN, close everything else. */
static int take_fds(const struct wsd_metrics_http_args *a)
{
    int l = fcntl(a->listen_fd, F_DUPFD_CLOEXEC, 16), ch = fcntl(a->chan_fd, F_DUPFD_CLOEXEC, 16);
    if (l < 0 || ch < 0 || dup3(l, FD_LISTEN, O_CLOEXEC) < 0 || dup3(ch, FD_CHAN, O_CLOEXEC) < 0)
        return -errno;
    return wsd_sys_close_range(FD_CHAN + 1, 0);
}

static int setup(struct server *sv)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sv->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    sv->ep = epoll_create1(EPOLL_CLOEXEC);
    sv->clients = calloc(MAX_CLIENTS, sizeof(*sv->clients));
    if (sv->sig_fd < 0 || sv->ep < 0 || !sv->clients)
        return -ENOMEM;
    for (int i = 0; i < MAX_CLIENTS; i++)
        sv->clients[i].fd = -1;
    struct epoll_event l = {.events = EPOLLIN, .data.u32 = EV_LISTEN};
    struct epoll_event s = {.events = EPOLLIN, .data.u32 = EV_SIGNAL};
    if (epoll_ctl(sv->ep, EPOLL_CTL_ADD, FD_LISTEN, &l) < 0 ||
        epoll_ctl(sv->ep, EPOLL_CTL_ADD, sv->sig_fd, &s) < 0)
        return -errno;
    return 0;
}

void wsd_metrics_http_main(void *arg)
{
    const struct wsd_metrics_http_args *a = arg;
    wsd_spawn_child_init("wsd-metrics", a->supervisor_pid, 0);
    wsd_log_setup((enum wsd_log_level)a->cfg->log_level, "wsd-metrics");
    struct server sv = {.cfg = a->cfg, .ep = -1, .sig_fd = -1};
    int r = take_fds(a);
    if (r == 0)
        r = setup(&sv);
    if (r < 0) {
        wsd_log_error(r, "setting up the metrics listener failed");
        _exit(WSD_EXIT_FAILURE);
    }
    for (;;) {
        struct epoll_event evs[16];
        int n = epoll_wait(sv.ep, evs, 16, 1000);
        if (n < 0 && errno != EINTR)
            _exit(WSD_EXIT_FAILURE);
        for (int i = 0; i < n; i++) {
            uint32_t id = evs[i].data.u32;
            if (id == EV_SIGNAL) {
                stop_accepting(&sv);
                continue;
            }
            if (id == EV_LISTEN) {
                if (!sv.leaving)
                    handle_accept(&sv);
                continue;
            }
            struct client *c = &sv.clients[id];
            if (c->fd < 0)
                continue;
            if (c->answering)
                handle_writable(&sv, c);
            else
                handle_readable(&sv, c);
        }
        expire(&sv);
        if (sv.leaving && !has_clients(&sv))
            _exit(WSD_EXIT_OK);
    }
}
