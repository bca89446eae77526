/* SPDX-License-Identifier: MIT */
/* The supervisor's epoll loop: signals, worker reports, pidfds, a tick for deadlines. Handlers
 * set state; the loop decides once per iteration what to spawn, and when everything is done. */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/config.h"
#include "core/exec_setup.h"
#include "core/handoff.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/shared.h"
#include "core/sys.h"
#include "core/tls.h"
#include "proto/handshake.h"
#include "proto/ws_codes.h"
#include "supervisor/exit.h"
#include "supervisor/pool.h"
#include "supervisor/reap.h"
#include "supervisor/report.h"
#include "supervisor/rt_guard.h"
#include "supervisor/spawn.h"
#include "supervisor/sandbox.h"
#include "supervisor/state.h"
#include "supervisor/template.h"
#include "supervisor/worker.h"


int wsd_supervisor_watch(struct supervisor *s, int fd, enum wsd_tag tag, uint32_t slot,
                         uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)tag << 32 | slot};
    return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

static int worker_spawn(struct supervisor *s)
{
    struct wsd_worker *w = wsd_pool_slot_take(&s->pool);
    if (!w)
        return -ENOSPC;
    uint32_t slot = wsd_pool_index(&s->pool, w);
    s->pool.spawned_total++;
    w->cookie = s->cookie_seed ^ (s->pool.spawned_total * 0x9e3779b97f4a7c15ull);
    int pidfd;
    uint64_t t0 = wsd_now_ns();
    pid_t pid = wsd_template_spawn(s, slot, w->cookie, &pidfd);
    wsd_histogram_observe(&s->metrics.spawn, (double)(wsd_now_ns() - t0) / 1e9);
    if (pid < 0) {
        wsd_pool_slot_release(&s->pool, w);
        return pid;
    }
    w->pidfd = pidfd;
    w->pid = pid;
    w->spawned_ms = wsd_now_ms();
    w->tls_gen = s->tls_gen;
    wsd_pool_set_state(&s->pool, w, WSD_WORKER_IDLE);
    int r = wsd_supervisor_watch(s, pidfd, WSD_TAG_WORKER, slot, EPOLLIN);
    if (r < 0)
        wsd_log_error(r, "epoll_ctl() failed while watching worker pid=%d", pid);
    return 0;
}

bool wsd_supervisor_dispatch_pending(void)
{
    struct pollfd p = {.fd = WSD_FD_DISPATCH, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

/* The dispatch queue wakes the supervisor only while no worker is idle: a handshake queued
 * then needs a spawn. With an idle worker there, that worker takes it, and a wakeup per handoff
 * would only cost the CPU the handshakes share. Adding it back reports a queue already holding
 * something (epoll polls the fd at insertion), so nothing queued meanwhile is missed. */
static void watch_dispatch(struct supervisor *s)
{
    bool want = s->pool.idle == 0;
    if (want == s->dispatch_watched)
        return;
    struct epoll_event e = {.events = EPOLLIN | EPOLLET,
                            .data.u64 = (uint64_t)WSD_TAG_DISPATCH << 32};
    if (epoll_ctl(s->ep, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, WSD_FD_DISPATCH, &e) == 0)
        s->dispatch_watched = want;
}

/* Keep WSD_POOL_MIN idle workers, and at least one while connections wait in the queue. One
 * spawn per turn of the loop (each waits for the template's clone), so a kill request or a
 * signal that arrives meanwhile waits for one spawn, not for a whole refill. Returns true if
 * more are due: the loop then only polls for events before the next. */
static bool pool_replenish(struct supervisor *s)
{
    if (s->stopping || wsd_now_ms() < s->spawn_blocked_until_ms)
        return false;
    /* Draining after an upgrade: no pool, only a worker for a handshake still queued. */
    uint64_t want = s->draining ? 0 : s->cfg->pool_min;
    if (s->pool.idle >= want && (s->pool.idle > 0 || !wsd_supervisor_dispatch_pending()))
        return false;
    int r = worker_spawn(s);
    if (r == -ENOSPC)
        return false;
    if (r < 0) {
        wsd_log_warn(r, "clone() failed while spawning a worker, retrying in %d ms", WSD_SUPERVISOR_TICK_MS);
        s->spawn_blocked_until_ms = wsd_now_ms() + WSD_SUPERVISOR_TICK_MS;
        return false;
    }
    return s->pool.idle < want;
}

/* wsctl's requests first: a kill's signal must not wait behind the reaping and the reports
 * of the workers that earlier ones ended. */
static bool is_control(uint64_t data)
{
    enum wsd_tag tag = (enum wsd_tag)(data >> 32);
    return tag == WSD_TAG_CONTROL || tag == WSD_TAG_CONTROL_CLIENT;
}

static void handle_report(struct supervisor *s, struct wsd_worker *w, const struct wsd_report *m)
{
    switch (m->type) {
    case WSD_REPORT_BUSY:
        if (w->state != WSD_WORKER_IDLE)
            return;
        wsd_pool_set_state(&s->pool, w, WSD_WORKER_BUSY);
        w->conn_id = m->conn_id;
        w->conn_start_ms = wsd_now_ms();
        w->peer = m->peer;
        memcpy(w->path, m->path, sizeof(w->path));
        w->path[sizeof(w->path) - 1] = '\0';
        w->counted = (struct wsd_traffic){0};
        w->served++;
        s->idle_failures = 0;
        break;
    case WSD_REPORT_OPEN:
        if (w->state == WSD_WORKER_BUSY && w->conn_id == m->conn_id) {
            memcpy(w->path, m->path, sizeof(w->path));
            w->path[sizeof(w->path) - 1] = '\0';
        }
        break;
    case WSD_REPORT_REFUSED:
        if (w->state != WSD_WORKER_BUSY || w->conn_id != m->conn_id)
            break;
        if (m->status == 0)
            s->totals.tls_failed++;
        else
            s->totals.tls_refused[wsd_hs_fail_index(m->status)]++;
        /* Like the acceptor's refusals: what the client did wrong counts against its IP. */
        struct wsd_ip ip = wsd_ip_from_sockaddr(&w->peer);
        wsd_abuse_record(s, &ip);
        break;
    case WSD_REPORT_DONE:
        if (w->state == WSD_WORKER_BUSY && w->conn_id == m->conn_id) {
            struct wsd_traffic t = {m->in_msgs, m->in_bytes, m->out_msgs, m->out_bytes};
            wsd_metrics_fold(&s->metrics, w, &t);
            wsd_conn_ended(s, w, m->close_code, m->closed_by, NULL);
            /* WSD_WORKER_REUSE: a worker that was busy across a certificate reload must not
             * serve another connection with the old certificate. */
            if (w->tls_gen != s->tls_gen)
                wsd_certs_retire(s, w);
        }
        break;
    case WSD_REPORT_VERDICT:
        if (w->state == WSD_WORKER_BUSY && w->conn_id == m->conn_id) {
            wsd_log_notice("heartbeat: conn=%" PRIu64 " pid=%d silent for %" PRIu64 " ms",
                           w->conn_id, w->pid, s->cfg->ping_interval_ms + s->cfg->ping_timeout_ms);
            (void)wsd_terminate(s, w, WSD_CAUSE_HEARTBEAT, WSD_CLOSE_GOING_AWAY, "", false);
        }
        break;
    }
}

/* Every queued report, a batch per call: a report is one per connection's start and end.
 * Returns how many were taken. */
static unsigned handle_reports(struct supervisor *s)
{
    struct wsd_report m[WSD_REPORT_BATCH];
    pid_t pid[WSD_REPORT_BATCH];
    unsigned taken = 0;
    int n;
    do {
        n = wsd_report_recv_many(s->report_r, m, pid, WSD_REPORT_BATCH);
        for (int i = 0; i < n; i++) {
            taken++;
            struct wsd_worker *w = m[i].slot < s->pool.cap ? &s->pool.slots[m[i].slot] : NULL;
            if (!pid[i])
                continue; /* not a whole report */
            if (!w || w->state == WSD_WORKER_FREE || w->pid != pid[i] ||
                w->cookie != m[i].cookie) {
                wsd_log_warn(0, "report from pid=%d does not match its worker slot, ignoring",
                             pid[i]);
                continue;
            }
            handle_report(s, w, &m[i]);
        }
    } while (n == WSD_REPORT_BATCH || n == -EINTR);
    return taken;
}

/* Reports wake the supervisor at most once per WSD_REPORT_COALESCE_US while they keep coming.
 * The supervisor runs at SCHED_FIFO: woken by every report, it would preempt the worker that
 * sent it, two context switches per report and four per connection, a quarter of the CPU a
 * short connection costs with WSD_WORKER_REUSE. So the report queue is watched one-shot: the
 * first report wakes the supervisor at once, and the queue is then read when the timer
 * fires, re-armed while reports keep coming, and watched again once a read finds it empty.
 * Whatever needs a report now reads the queue itself first: a worker's exit (handle_worker_exit)
 * and every wsctl request (a kill of a connection opened a moment ago). */
static void watch_reports(struct supervisor *s)
{
    struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT,
                            .data.u64 = (uint64_t)WSD_TAG_REPORT << 32};
    if (epoll_ctl(s->ep, EPOLL_CTL_MOD, s->report_r, &e) < 0)
        wsd_log_error(errno, "epoll_ctl() failed while watching worker reports");
}

static void arm_report_timer(struct supervisor *s)
{
    struct itimerspec its = {.it_value = {.tv_nsec = WSD_REPORT_COALESCE_US * 1000L}};
    if (timerfd_settime(s->report_timer_fd, 0, &its, NULL) < 0)
        watch_reports(s); /* cannot happen with these arguments; never leave the queue unwatched */
}

static void handle_report_timer(struct supervisor *s)
{
    uint64_t expirations;
    (void)!read(s->report_timer_fd, &expirations, sizeof(expirations));
    if (handle_reports(s) > 0)
        arm_report_timer(s);
    else
        watch_reports(s);
}

static void handle_worker_exit(struct supervisor *s, uint32_t slot)
{
    handle_reports(s); /* a DONE report may still be queued behind the exit */
    struct wsd_worker *w = &s->pool.slots[slot];
    siginfo_t si;
    if (w->state == WSD_WORKER_FREE || wsd_reap(w->pidfd, &si) != 1)
        return; /* a stale event for a reused slot, or not dead after all */

    bool abnormal = wsd_reap_is_signaled(&si) || si.si_status != WSD_EXIT_OK;
    if (w->state == WSD_WORKER_BUSY) {
        wsd_conn_ended(s, w, WSD_CLOSE_ABNORMAL, -1, &si);
    } else if (abnormal && !s->stopping && w->state == WSD_WORKER_IDLE) {
        char how[96];
        wsd_reap_describe(&si, how, sizeof(how));
        wsd_log_warn(0, "idle worker pid=%d %s", w->pid, how);
        /* Workers dying before taking work means spawning is futile for now: back off. */
        if (++s->idle_failures >= 5) {
            s->spawn_blocked_until_ms = wsd_now_ms() + WSD_ACCEPTOR_RESTART_MS;
            s->idle_failures = 0;
        }
    }
    w->pidfd = wsd_close(w->pidfd);
    wsd_pool_slot_release(&s->pool, w);
    if (wsd_reap_is_signaled(&si)) /* no chance to end its program's tree: what is left came here */
        s->strays_pending = true; /* swept at the next tick: one sweep for a burst of kills */
}

/* Shutdown: busy workers close with 1001 through the ladder; idle ones just leave. */
static void stop_all_workers(struct supervisor *s)
{
    for (uint32_t i = 0; i < s->pool.cap; i++) {
        struct wsd_worker *w = &s->pool.slots[i];
        if (w->state == WSD_WORKER_BUSY)
            (void)wsd_terminate(s, w, WSD_CAUSE_SHUTDOWN, WSD_CLOSE_GOING_AWAY, "", false);
        else if (w->state != WSD_WORKER_FREE)
            (void)wsd_sys_pidfd_send_signal(w->pidfd, SIGTERM, NULL);
    }
}

static void kill_all_workers(struct supervisor *s)
{
    for (uint32_t i = 0; i < s->pool.cap; i++) {
        struct wsd_worker *w = &s->pool.slots[i];
        if (w->state != WSD_WORKER_FREE)
            (void)wsd_sys_pidfd_send_signal(w->pidfd, SIGKILL, NULL);
    }
}

/* Answer connections still queued for a worker when wsd stops: 503, not a silent close. */
static void drain_dispatch(void)
{
    char resp[256];
    size_t n = wsd_handshake_response_error(resp, sizeof(resp), WSD_HTTP_SERVICE_UNAVAILABLE, 1);
    uint8_t payload[256];
    struct wsd_handoff h;
    int fd, r;
    while ((r = wsd_handoff_recv(WSD_FD_DISPATCH, &h, payload, sizeof(payload), &fd)) != -EAGAIN) {
        if (r == -EBADMSG)
            continue;
        if (r < 0)
            break;
        if (!(h.flags & WSD_HANDOFF_TLS)) /* a wss:// client would read it as a bad record */
            (void)send(fd, resp, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        wsd_close(fd);
    }
}

void wsd_supervisor_begin_stop(struct supervisor *s, const char *why)
{
    if (s->stopping)
        return;
    s->stopping = true;
    wsd_notify_stopping(&s->notify);
    wsd_upgrade_abort(s);
    s->stop_deadline_ms = wsd_now_ms() + s->cfg->shutdown_grace_ms;
    wsd_log_notice("%s: stopping; %u connections get close 1001, SIGKILL after %" PRIu64 " ms",
                   why, s->pool.busy, s->cfg->shutdown_grace_ms);
    if (s->acceptor_pidfd >= 0)
        (void)wsd_sys_pidfd_send_signal(s->acceptor_pidfd, SIGTERM, NULL);
    s->listen_fd = wsd_close(s->listen_fd);
    s->tls_listen_fd = wsd_close(s->tls_listen_fd);
    wsd_template_stop(s); /* it holds a keyholder's channel too */
    wsd_certs_stop(s); /* keyholders leave with their last worker */
    wsd_metrics_child_stop(s, SIGTERM);
    stop_all_workers(s);
}

static void handle_signal(struct supervisor *s)
{
    struct signalfd_siginfo si;
    while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
            wsd_supervisor_begin_stop(s, "SIGTERM");
            break;
        case SIGINT:
            wsd_supervisor_begin_stop(s, "SIGINT");
            break;
        case SIGUSR2:
            wsd_upgrade_start(s);
            break;
        case SIGHUP:
            wsd_reload(s);
            break;
        default:
            wsd_log_notice("signal %u has no action yet, ignoring", si.ssi_signo);
            break;
        }
    }
}

static void handle_tick(struct supervisor *s)
{
    uint64_t expirations;
    (void)!read(s->tick_fd, &expirations, sizeof(expirations));
    uint64_t now = wsd_now_ms();
    if (s->stopping && !s->killed && now >= s->stop_deadline_ms) {
        s->killed = true;
        wsd_log_warn(0, "%u workers still running after %" PRIu64 " ms, sending SIGKILL",
                     wsd_pool_live(&s->pool), s->cfg->shutdown_grace_ms);
        kill_all_workers(s);
        if (s->acceptor_pidfd >= 0)
            (void)wsd_sys_pidfd_send_signal(s->acceptor_pidfd, SIGKILL, NULL);
        wsd_metrics_child_stop(s, SIGKILL);
    }
    if (!s->stopping && s->acceptor_pidfd < 0 && s->acceptor_restart_at_ms &&
        now >= s->acceptor_restart_at_ms)
        wsd_acceptor_start(s);
    wsd_metrics_child_tick(s, now);
    wsd_terminate_escalate(s, now);
    wsd_notify_watchdog(&s->notify, now);
    wsd_upgrade_tick(s, now);
    if (!s->stopping)
        wsd_notify_status(&s->notify, s->pool.busy, s->pool.idle);
    if (wsd_rt_guard_tripped())
        wsd_log_error(0, "the supervisor ran %d ms at SCHED_FIFO without blocking (a bug: please "
                         "report it): it runs at the default policy from now on",
                      WSD_RT_GUARD_US / 1000);
    if (s->strays_pending || now - s->last_sweep_ms >= WSD_STRAYS_SWEEP_MS) {
        s->last_sweep_ms = now;
        wsd_strays_sweep(s);
    }
    if (now - s->last_scan_ms >= 1000) { /* the detectors' tick */
        s->last_scan_ms = now;
        wsd_heartbeat_scan(s, now);
    }
}

/* The acceptor reports each refused handshake, for the abuse detector. */
static void handle_acceptor_ctl(struct supervisor *s)
{
    struct wsd_acceptor_msg m;
    while (recv(s->ctl_s, &m, sizeof(m), MSG_DONTWAIT) == (ssize_t)sizeof(m))
        if (m.type == WSD_ACCEPTOR_MSG_REFUSED)
            wsd_abuse_record(s, &m.ip);
}

static void handle_event(struct supervisor *s, uint64_t data, uint32_t events)
{
    uint32_t slot = (uint32_t)data;
    enum wsd_tag tag = (enum wsd_tag)(data >> 32);
    switch (tag) {
    case WSD_TAG_SIGNAL:
        handle_signal(s);
        break;
    case WSD_TAG_REPORT:
        handle_reports(s);
        arm_report_timer(s);
        break;
    case WSD_TAG_REPORT_TIMER:
        handle_report_timer(s);
        break;
    case WSD_TAG_DISPATCH:
        break; /* woken so pool_replenish sees the queue */
    case WSD_TAG_TICK:
        handle_tick(s);
        break;
    case WSD_TAG_ACCEPTOR:
        wsd_acceptor_exited(s);
        break;
    case WSD_TAG_WORKER:
        handle_worker_exit(s, slot);
        break;
    case WSD_TAG_ACCEPTOR_CTL:
        handle_acceptor_ctl(s);
        break;
    case WSD_TAG_TEMPLATE:
        wsd_template_exited(s);
        break;
    case WSD_TAG_KEYHOLDER:
        wsd_certs_keyholder_exit(s, slot);
        break;
    case WSD_TAG_METRICS:
        wsd_metrics_child_exited(s);
        break;
    case WSD_TAG_CONTROL:
    case WSD_TAG_CONTROL_CLIENT:
        handle_reports(s); /* the connections as the workers last reported them */
        wsd_control_handle(s, tag, slot, events);
        break;
    case WSD_TAG_UPGRADE_CHILD:
    case WSD_TAG_UPGRADE_READY:
        wsd_upgrade_handle(s, tag);
        break;
    }
}

/* The pool is warm and the acceptor runs: tell the service manager. */
static void announce_ready(struct supervisor *s)
{
    wsd_notify_ready(&s->notify, s->pool.busy, s->pool.idle, s->inherited.upgrade < 0);
    wsd_log_info("ready: %u idle workers", s->pool.idle);
    wsd_upgrade_report_ready(s);
}

static bool finished(const struct supervisor *s)
{
    /* a new generation killed before it was ready is reaped here, not left to init */
    return s->stopping && s->acceptor_pidfd < 0 && s->metrics_child.pidfd < 0 &&
           wsd_pool_live(&s->pool) == 0 && !wsd_upgrade_is_starting(s) &&
           wsd_certs_keyholders_live(s) == 0;
}

int wsd_supervisor_run(const struct wsd_config *cfg)
{
    /* Static, not on this stack: the worker template leaves the stack it inherits
     * (layout.h) and keeps reading this. */
    static struct supervisor s;
    s = (struct supervisor){
        .config = *cfg,
        .self = getpid(),
        .ep = -1, .sig_fd = -1, .tick_fd = -1, .listen_fd = -1, .tls_listen_fd = -1,
        .dispatch_w = -1, .report_r = -1, .report_timer_fd = -1, .ctl_s = -1, .ctl_a = -1,
        .acceptor_pidfd = -1, .template_chan = -1, .template_pidfd = -1,
        .next_escalation_ms = UINT64_MAX,
        .inherited = {.ws = -1, .wss = -1, .control = -1, .upgrade = -1, .metrics = -1},
        .metrics_child = {.listen_fd = -1, .pidfd = -1},
    };
    s.cfg = &s.config;
    wsd_metrics_init(&s.metrics);
    sigset_t mask;
    sigfillset(&mask);
    sigdelset(&mask, SIGSEGV);
    sigdelset(&mask, SIGBUS);
    sigdelset(&mask, SIGFPE);
    sigdelset(&mask, SIGILL);
    sigdelset(&mask, SIGABRT);
    /* Every other signal is consumed through a signalfd (or not at all); workers inherit the
     * mask, so SIGTERM reaches them only through their own signalfd. */
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (wsd_supervisor_check_fd_limit(cfg) < 0 || wsd_activation_take(&s.inherited, stderr) < 0)
        return WSD_EXIT_CONFIG;
    wsd_notify_init(&s.notify);
    if (!wsd_activation_has_listeners(&s.inherited) && !cfg->listen[0] && !cfg->tls_listen[0]) {
        fprintf(stderr, "wsd: invalid WSD_LISTEN=\"\": expected an address, since WSD_TLS_LISTEN "
                        "is empty too\n");
        return WSD_EXIT_CONFIG;
    }
    if (wsd_certs_load(&s) < 0 || wsd_exec_setup_prepare(s.cfg, stderr) < 0)
        return WSD_EXIT_CONFIG;
    if (wsd_sandbox_prepare(cfg, stderr) < 0)
        return WSD_EXIT_FAILURE;
    wsd_upgrade_init(&s);
    int r = wsd_supervisor_setup(&s);
    if (r < 0) {
        wsd_metrics_child_stop(&s, SIGTERM);
        wsd_upgrade_done(&s);
        wsd_control_close(&s);
        wsd_pool_done(&s.pool);
        wsd_iptable_done(&s.abuse);
    }
    if (r < 0)
        s.tls = wsd_tls_ctx_free(s.tls);
    if (r < 0)
        return r == -EADDRINUSE || r == -EACCES || r == -EADDRNOTAVAIL ? WSD_EXIT_CONFIG
                                                                         : WSD_EXIT_FAILURE;
    r = wsd_certs_watch(&s);
    if (r < 0) {
        wsd_log_error(r, "epoll_ctl() failed while watching the keyholder");
        return WSD_EXIT_FAILURE;
    }
    wsd_acceptor_start(&s);
    /* The template now, not at the first spawn: its sandbox is checked before anything is
     * served (a failure stops wsd), and WSD_POOL_MIN=0 keeps no surprise for later. */
    r = wsd_template_start(&s);
    if (r < 0)
        wsd_log_error(r, "clone3() failed while starting the worker template, retrying");
    wsd_metrics_child_start(&s);
    bool spawn_more = pool_replenish(&s);
    watch_dispatch(&s);
    while (!finished(&s)) {
        wsd_acceptor_flush(&s);
        struct epoll_event evs[64];
        int n = epoll_wait(s.ep, evs, 64, spawn_more ? 0 : -1);
        if (n < 0 && errno != EINTR) {
            wsd_log_error(errno, "epoll_wait() failed in the supervisor loop");
            wsd_supervisor_begin_stop(&s, "error");
        }
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < n; i++)
                if (is_control(evs[i].data.u64) == (pass == 0))
                    handle_event(&s, evs[i].data.u64, evs[i].events);
        if (s.exit_status != WSD_EXIT_OK)
            wsd_supervisor_begin_stop(&s, "fatal error");
        if (s.stopping && s.acceptor_pidfd < 0)
            drain_dispatch();
        spawn_more = pool_replenish(&s);
        watch_dispatch(&s);
        if (s.draining && !s.stopping && s.acceptor_pidfd < 0 && s.pool.busy == 0 &&
            !wsd_supervisor_dispatch_pending())
            wsd_supervisor_begin_stop(&s, "upgrade: every connection ended");
        if (!s.notify.ready && !s.stopping && !s.draining && s.acceptor_pidfd >= 0 &&
            s.pool.idle >= s.cfg->pool_min)
            announce_ready(&s);
    }
    if (s.strays_pending) /* one last try: what is still alive goes to init */
        wsd_strays_sweep(&s);
    wsd_log_notice("stopped: %" PRIu64 " connections served, %" PRIu64 " workers spawned",
                   s.shared->handed_off, s.pool.spawned_total);
    wsd_control_close(&s);
    wsd_upgrade_done(&s);
    wsd_metrics_child_stop(&s, SIGTERM); /* closes the listener when wsd never got to stop */
    s.tls = wsd_tls_ctx_free(s.tls);
    wsd_pool_done(&s.pool);
    wsd_iptable_done(&s.abuse);
    return s.exit_status;
}
