/* SPDX-License-Identifier: MIT */
/* A worker: idle in epoll on the shared dispatch queue (EPOLLEXCLUSIVE, so one handoff wakes
 * one worker) and a signalfd; then one connection; then exit. SIGTERM while idle is a plain
 * exit; while serving, a close with 1001. */
#include "supervisor/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/config.h"
#include "core/conn.h"
#include "core/echo.h"
#include "core/handoff.h"
#include "core/log.h"
#include "core/shared.h"
#include "core/sys.h"
#include "supervisor/exit.h"
#include "supervisor/report.h"
#include "supervisor/spawn.h"

#define PAYLOAD_SLACK 8192 /* bytes after the request that the acceptor may have read */

static int wait_for_connection(int ep, int sig_fd, struct wsd_handoff *h, uint8_t *payload,
                               size_t cap, int *ret_fd)
{
    for (;;) {
        struct epoll_event ev[2];
        int n = epoll_wait(ep, ev, 2, -1);
        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < n; i++)
            if (ev[i].data.fd == sig_fd)
                return -EINTR; /* asked to stop while idle */
        if (n <= 0)
            continue;
        int r = wsd_handoff_recv(WSD_FD_DISPATCH, h, payload, cap, ret_fd);
        if (r == -EAGAIN) /* another worker was faster */
            continue;
        if (r == -EBADMSG) {
            wsd_log_warn(r, "malformed handoff, ignoring");
            continue;
        }
        return r;
    }
}

static void serve(const struct wsd_worker_args *a, int sig_fd, int fd, struct wsd_handoff *h,
                  uint8_t *payload)
{
    struct wsd_report report = {
        .type = WSD_REPORT_BUSY, .slot = a->slot, .cookie = a->cookie, .conn_id = h->conn_id};
    int r = wsd_report_send(WSD_FD_REPORT, &report);
    if (r < 0)
        wsd_log_warn(r, "send() failed while reporting conn=%llu, ignoring",
                     (unsigned long long)h->conn_id);
    struct wsd_conn_params p = {
        .cfg = a->cfg,
        .fd = fd,
        .sig_fd = sig_fd,
        .handoff = h,
        .payload = payload,
        .on_message = wsd_echo_on_message,
    };
    struct wsd_conn_result res;
    r = wsd_conn_serve(&p, &res);
    _exit(r < 0 ? WSD_EXIT_FAILURE : WSD_EXIT_OK);
}

void wsd_worker_main(void *args)
{
    const struct wsd_worker_args *a = args;
    wsd_spawn_child_init("wsd-worker", a->supervisor_pid);
    wsd_log_setup((enum wsd_log_level)a->cfg->log_level, "wsd-worker");
    (void)munmap(a->shared, sizeof(*a->shared));

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    int sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = sig_fd};
    if (sig_fd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sig_fd, &ev) < 0)
        _exit(WSD_EXIT_FAILURE);
    ev = (struct epoll_event){.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = WSD_FD_DISPATCH};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, WSD_FD_DISPATCH, &ev) < 0)
        _exit(WSD_EXIT_FAILURE);

    size_t cap = a->cfg->max_header_bytes + PAYLOAD_SLACK;
    uint8_t *payload = malloc(cap);
    struct wsd_handoff h;
    int fd = -1;
    if (!payload)
        _exit(WSD_EXIT_FAILURE);
    int r = wait_for_connection(ep, sig_fd, &h, payload, cap, &fd);
    if (r == -EINTR)
        _exit(WSD_EXIT_OK);
    if (r < 0) {
        wsd_log_error(r, "recvmsg() failed while waiting for a connection");
        _exit(WSD_EXIT_FAILURE);
    }
    /* One connection per worker: leave the queue to the others. */
    wsd_close(ep);
    wsd_close(WSD_FD_DISPATCH);
    serve(a, sig_fd, fd, &h, payload);
}
