/* SPDX-License-Identifier: MIT */
/* A worker: idle in epoll on the shared dispatch queue (EPOLLEXCLUSIVE, so one handoff wakes
 * one worker) and a signalfd; then one connection at a time, WSD_WORKER_REUSE of them; then
 * exit. SIGTERM while idle is a plain exit, unless it names a connection this worker already
 * finished (a kill that crossed the connection's end): that one is ignored. */
#include "supervisor/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/config.h"
#include "core/conn.h"
#include "core/echo.h"
#include "core/exec.h"
#include "core/handoff.h"
#include "core/live.h"
#include "core/log.h"
#include "core/shared.h"
#include "core/sys.h"
#include "core/tls_accept.h"
#include "supervisor/exit.h"
#include "supervisor/probe.h"
#include "supervisor/report.h"
#include "supervisor/sandbox.h"
#include "supervisor/spawn.h"

#define PAYLOAD_SLACK 8192 /* bytes after the request that the acceptor may have read */

/* The dispatch queue's tag in the worker's set, while it waits idle. */
#define EV_QUEUE WSD_CONN_LOOP_OWNER_TAG

struct worker {
    const struct wsd_worker_args *args;
    int sig_fd;
    struct wsd_conn_loop loop; /* one epoll set for waiting and serving */
};

static void report(const struct worker *w, struct wsd_report *r)
{
    r->slot = w->args->slot;
    r->cookie = w->args->cookie;
    int e = wsd_report_send(WSD_FD_REPORT, r);
    if (e < 0)
        wsd_log_warn(e, "send() failed while reporting conn=%" PRIu64 ", ignoring", r->conn_id);
}

static void on_verdict(uint64_t conn_id, enum wsd_verdict v, void *userdata)
{
    struct wsd_report r = {.type = WSD_REPORT_VERDICT, .conn_id = conn_id, .verdict = (uint8_t)v};
    report(userdata, &r);
}

/* True if the signal asks this idle worker to leave (not a stale per-connection kill). */
static bool idle_signal_means_exit(int sig_fd)
{
    struct signalfd_siginfo si;
    bool leave = false;
    while (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        if (si.ssi_code != SI_QUEUE || wsd_kill_value_conn(si.ssi_ptr) == 0 ||
            wsd_kill_value_conn(si.ssi_ptr) == WSD_KILL_IDLE_ONLY)
            leave = true;
    return leave;
}

static int wait_for_connection(const struct worker *w, struct wsd_handoff *h, uint8_t *payload,
                               size_t cap, int *ret_fd)
{
    for (;;) {
        struct epoll_event ev[2];
        int n = epoll_wait(w->loop.ep, ev, 2, -1);
        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < n; i++)
            if (ev[i].data.u32 == WSD_CONN_LOOP_SIGNAL && idle_signal_means_exit(w->sig_fd))
                return -EINTR;
        int r = wsd_handoff_recv(WSD_FD_DISPATCH, h, payload, cap, ret_fd);
        if (r == -EAGAIN) /* another worker was faster, or only a signal woke us */
            continue;
        if (r == -EBADMSG) {
            wsd_log_warn(r, "malformed handoff, ignoring");
            continue;
        }
        return r;
    }
}

/* The path comes from where the acceptor found it in the request: no second parse here. */
static void report_busy(const struct worker *w, const struct wsd_handoff *h,
                        const uint8_t *payload)
{
    struct wsd_report r = {.type = WSD_REPORT_BUSY, .conn_id = h->conn_id, .peer = h->peer};
    if (h->target_off <= h->request_len && h->target_len <= h->request_len - h->target_off) {
        size_t n = h->target_len < sizeof(r.path) - 1 ? h->target_len : sizeof(r.path) - 1;
        memcpy(r.path, payload + h->target_off, n);
    }
    report(w, &r);
}

/* Tests only: a message "spin" makes the worker stop making progress for good. */
static void stubborn_on_message(struct wsd_conn *c, uint8_t opcode, const uint8_t *data,
                                size_t len, void *userdata)
{
    if (len == 4 && memcmp(data, "spin", 4) == 0)
        for (;;)
            __asm__ volatile("" ::: "memory");
    wsd_echo_on_message(c, opcode, data, len, userdata);
}

static const struct wsd_conn_handler stubborn_handler = {.on_message = stubborn_on_message};

static const struct wsd_conn_handler *handler_of(const struct wsd_config *cfg)
{
    switch ((enum wsd_handler)cfg->handler) {
    case WSD_HANDLER_EXEC:
        return &wsd_exec_handler;
    case WSD_HANDLER_TEST_STUBBORN:
        return &stubborn_handler;
    case WSD_HANDLER_TEST_PROBE:
        return &wsd_probe_handler;
    case WSD_HANDLER_ECHO:
        break;
    }
    return &wsd_echo_handler;
}

/* wss://: the path is known only once the request was read through TLS. */
static void on_open(uint64_t conn_id, const char *path, void *userdata)
{
    struct wsd_report r = {.type = WSD_REPORT_OPEN, .conn_id = conn_id};
    strncpy(r.path, path, sizeof(r.path) - 1);
    report(userdata, &r);
}

static int serve(struct worker *w, int fd, struct wsd_handoff *h, uint8_t *payload, size_t cap,
                 bool last)
{
    const struct wsd_config *cfg = w->args->cfg;
    report_busy(w, h, payload);
    bool stubborn = cfg->handler == WSD_HANDLER_TEST_STUBBORN;
    struct wsd_conn_params p = {
        .cfg = cfg,
        .fd = fd,
        .sig_fd = w->sig_fd,
        .loop = &w->loop,
        .handoff = h,
        .payload = payload,
        .payload_cap = cap,
        .on_open = (h->flags & WSD_HANDOFF_TLS) ? on_open : NULL,
        .handler = handler_of(cfg),
        .on_verdict = on_verdict,
        .userdata = w,
        .ignore_term = stubborn,
        .last = last,
        .tls = w->args->tls,
    };
    struct wsd_conn_result res;
    int r = wsd_conn_serve(&p, &res);
    if (cfg->handler == WSD_HANDLER_EXEC)
        wsd_exec_finish(); /* the program's tree is gone before the connection counts as ended */
    if (res.refused != WSD_TLS_REFUSED_NONE) {
        struct wsd_report refused = {.type = WSD_REPORT_REFUSED, .conn_id = h->conn_id,
                                     .status = (uint16_t)res.refused};
        report(w, &refused);
    }
    struct wsd_report done = {
        .type = WSD_REPORT_DONE,
        .conn_id = h->conn_id,
        .close_code = res.close_code,
        .closed_by = (uint8_t)res.closed_by,
        .in_msgs = res.in_msgs,
        .in_bytes = res.in_bytes,
        .out_msgs = res.out_msgs,
        .out_bytes = res.out_bytes,
    };
    report(w, &done);
    if (r == 0 && res.leave)
        r = 1; /* told to leave: no further connections */
    return r;
}

/* Listen on the queue only while idle: a busy worker must not be woken for handoffs. A set
 * that a handler made foreign is replaced first. */
static int watch_queue(struct worker *w, bool on)
{
    int r = on ? wsd_conn_loop_ready(&w->loop, w->sig_fd) : 0;
    if (r < 0)
        return r;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = EV_QUEUE};
    if (epoll_ctl(w->loop.ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, WSD_FD_DISPATCH, &ev) < 0)
        return -errno;
    return 0;
}

int wsd_worker_prepare(struct wsd_worker_prep *ret, const struct wsd_config *cfg)
{
    sigemptyset(&ret->term_mask);
    sigaddset(&ret->term_mask, SIGTERM);
    ret->payload_cap = cfg->max_header_bytes + PAYLOAD_SLACK;
    ret->payload = malloc(ret->payload_cap);
    return ret->payload ? 0 : -ENOMEM;
}

void wsd_worker_main(void *args)
{
    struct worker w = {.args = args, .sig_fd = -1, .loop = WSD_CONN_LOOP_INIT};
    const struct wsd_config *cfg = w.args->cfg;
    wsd_spawn_clone_init("wsd-worker", w.args->supervisor_pid);
    wsd_log_setup((enum wsd_log_level)cfg->log_level, "wsd-worker");
    w.sig_fd = signalfd(-1, &w.args->prep->term_mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (w.sig_fd < 0)
        _exit(WSD_EXIT_FAILURE);
    if (cfg->handler == WSD_HANDLER_EXEC &&
        wsd_exec_worker_init(wsd_sandbox_program_ruleset(cfg)) < 0)
        _exit(WSD_EXIT_FAILURE);

    uint8_t *payload = w.args->prep->payload;
    size_t cap = w.args->prep->payload_cap;
    for (uint64_t served = 0; served < cfg->worker_reuse; served++) {
        struct wsd_handoff h;
        int fd = -1;
        if (watch_queue(&w, true) < 0)
            _exit(WSD_EXIT_FAILURE);
        int r = wait_for_connection(&w, &h, payload, cap, &fd);
        if (r == -EINTR || r == -EPIPE) /* told to leave, or wsd itself is gone */
            _exit(WSD_EXIT_OK);
        if (r < 0) {
            wsd_log_error(r, "recvmsg() failed while waiting for a connection");
            _exit(WSD_EXIT_FAILURE);
        }
        (void)watch_queue(&w, false);
        r = serve(&w, fd, &h, payload, cap, served + 1 == cfg->worker_reuse);
        if (r != 0)
            _exit(r < 0 ? WSD_EXIT_FAILURE : WSD_EXIT_OK);
    }
    _exit(WSD_EXIT_OK);
}
