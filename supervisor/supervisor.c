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
#include "supervisor/spawn.h"
#include "supervisor/sandbox.h"
#include "supervisor/state.h"
#include "supervisor/template.h"
#include "supervisor/worker.h"

#define TICK_MS 250
#define LISTEN_BACKLOG 4096
#define RESERVED_FDS 64 /* the supervisor's own fds besides one pidfd per worker */
#define ACCEPTOR_RESTART_MS 1000 /* a crash-looping acceptor restarts at most this often */

int wsd_supervisor_watch(struct supervisor *s, int fd, enum wsd_tag tag, uint32_t slot,
                         uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)tag << 32 | slot};
    return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

/* What a new acceptor starts from: the supervisor and its view of live connections and bans. */
struct acceptor_start_args {
    struct supervisor *s;
    struct wsd_acceptor_msg *seed;
    uint32_t nseed;
};

/* The acceptor's copy of the fds it needs, at 3, 4, 5; everything else closed (the worker
 * pidfds above all: only the supervisor may signal workers). */
static void acceptor_main(void *arg)
{
    const struct acceptor_start_args *sa = arg;
    struct supervisor *s = sa->s;
    wsd_spawn_child_init("wsd-acceptor", s->self);
    wsd_log_setup((enum wsd_log_level)s->cfg->log_level, "wsd-acceptor");
    int from[4] = {s->listen_fd, s->dispatch_w, s->ctl_a, s->tls_listen_fd}, t[4];
    for (int i = 0; i < 4; i++)
        t[i] = from[i] < 0 ? -1 : dup(from[i]);
    for (int i = 0; i < 4; i++)
        if (from[i] >= 0 && (t[i] < 0 || (t[i] != 3 + i && dup3(t[i], 3 + i, O_CLOEXEC) < 0)))
            _exit(WSD_EXIT_FAILURE);
    for (int i = 0; i < 4; i++)
        if (from[i] < 0) /* no such listener: 3 + i is still whatever the supervisor had there */
            (void)close(3 + i);
    (void)wsd_sys_close_range(7, 0);
    struct wsd_acceptor_args a = {
        .cfg = s->cfg,
        .listen_fd = s->listen_fd < 0 ? -1 : 3,
        .dispatch_fd = 4,
        .ctl_fd = 5,
        .tls_listen_fd = s->tls_listen_fd < 0 ? -1 : 6,
        .shared = s->shared,
        .seed = sa->seed,
        .nseed = sa->nseed,
    };
    int r = wsd_acceptor_run(&a);
    _exit(r == 0 ? WSD_EXIT_OK : WSD_EXIT_FATAL);
}

/* The supervisor's view as messages: LIVE per busy worker, BAN per IP still banned. A restarted
 * acceptor that started empty would let a banned IP in and an IP at its cap open more. The
 * copy is the child's own (clone copies the heap), so the supervisor frees it after the clone. */
static uint32_t acceptor_seed(struct supervisor *s, struct wsd_acceptor_msg **ret)
{
    uint64_t now = wsd_now_ms();
    uint32_t n = 0, max = s->pool.busy + s->abuse.used;
    *ret = calloc((size_t)max + 1, sizeof(**ret));
    if (!*ret)
        return 0; /* the acceptor starts with empty tables, as it did before seeding */
    for (uint32_t i = 0; i < s->pool.cap && n < s->pool.busy; i++) {
        const struct wsd_worker *w = &s->pool.slots[i];
        if (w->state == WSD_WORKER_BUSY)
            (*ret)[n++] = (struct wsd_acceptor_msg){.type = WSD_ACCEPTOR_MSG_LIVE,
                                                    .ip = wsd_ip_from_sockaddr(&w->peer)};
    }
    for (uint32_t i = 0; i < s->abuse.cap && n < max; i++) {
        const struct wsd_ip_entry *e = &s->abuse.entries[i];
        if (e->until_ms > now && wsd_iptable_get(&s->abuse, &e->ip) == e)
            (*ret)[n++] = (struct wsd_acceptor_msg){
                .type = WSD_ACCEPTOR_MSG_BAN, .ip = e->ip, .until_ms = e->until_ms};
    }
    return n;
}

static void acceptor_start(struct supervisor *s)
{
    /* Notices queued for a dead acceptor are stale: the new one starts from the seed. */
    s->acceptor_queued = 0;
    struct wsd_acceptor_msg m;
    while (recv(s->ctl_a, &m, sizeof(m), MSG_DONTWAIT) > 0)
        ;
    while (recv(s->ctl_s, &m, sizeof(m), MSG_DONTWAIT) > 0)
        ;
    struct acceptor_start_args sa = {.s = s};
    sa.nseed = acceptor_seed(s, &sa.seed);
    int pidfd;
    pid_t pid = wsd_spawn_process(acceptor_main, &sa, &pidfd);
    free(sa.seed);
    if (pid < 0) {
        wsd_log_error(pid, "clone3() failed while starting the acceptor, retrying");
        s->acceptor_restart_at_ms = wsd_now_ms() + ACCEPTOR_RESTART_MS;
        return;
    }
    s->acceptor_pidfd = pidfd;
    s->acceptor_pid = pid;
    s->acceptor_started_ms = wsd_now_ms();
    s->acceptor_restart_at_ms = 0;
    (void)wsd_supervisor_watch(s, pidfd, WSD_TAG_ACCEPTOR, 0, EPOLLIN);
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
        wsd_log_warn(r, "clone() failed while spawning a worker, retrying in %d ms", TICK_MS);
        s->spawn_blocked_until_ms = wsd_now_ms() + TICK_MS;
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

/* Every queued report, a batch per call: a report is one per connection's start and end. */
static void handle_reports(struct supervisor *s)
{
    struct wsd_report m[WSD_REPORT_BATCH];
    pid_t pid[WSD_REPORT_BATCH];
    int n;
    do {
        n = wsd_report_recv_many(s->report_r, m, pid, WSD_REPORT_BATCH);
        for (int i = 0; i < n; i++) {
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
            s->spawn_blocked_until_ms = wsd_now_ms() + ACCEPTOR_RESTART_MS;
            s->idle_failures = 0;
        }
    }
    w->pidfd = wsd_close(w->pidfd);
    wsd_pool_slot_release(&s->pool, w);
}

static void handle_acceptor_exit(struct supervisor *s)
{
    siginfo_t si;
    if (s->acceptor_pidfd < 0 || wsd_reap(s->acceptor_pidfd, &si) != 1)
        return;
    s->acceptor_pidfd = wsd_close(s->acceptor_pidfd);
    if (s->stopping)
        return;
    if (s->draining) { /* it finished its handshakes: the new generation accepts now */
        wsd_log_info("upgrade: the acceptor finished its handshakes and left");
        return;
    }
    char how[96];
    wsd_reap_describe(&si, how, sizeof(how));
    if (!wsd_reap_is_signaled(&si) && si.si_status == WSD_EXIT_FATAL) {
        wsd_log_error(0, "acceptor pid=%d %s: cannot accept connections, stopping",
                      s->acceptor_pid, how);
        s->exit_status = WSD_EXIT_FAILURE;
        return;
    }
    wsd_log_warn(0, "acceptor pid=%d %s, restarting (the listening socket stayed open)",
                 s->acceptor_pid, how);
    uint64_t now = wsd_now_ms();
    bool crash_loop = now - s->acceptor_started_ms < ACCEPTOR_RESTART_MS;
    s->acceptor_restart_at_ms = crash_loop ? now + ACCEPTOR_RESTART_MS : now;
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
        acceptor_start(s);
    wsd_metrics_child_tick(s, now);
    wsd_terminate_escalate(s, now);
    wsd_notify_watchdog(&s->notify, now);
    wsd_upgrade_tick(s, now);
    if (!s->stopping)
        wsd_notify_status(&s->notify, s->pool.busy, s->pool.idle);
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
        break;
    case WSD_TAG_DISPATCH:
        break; /* woken so pool_replenish sees the queue */
    case WSD_TAG_TICK:
        handle_tick(s);
        break;
    case WSD_TAG_ACCEPTOR:
        handle_acceptor_exit(s);
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
        wsd_control_handle(s, tag, slot, events);
        break;
    case WSD_TAG_UPGRADE_CHILD:
    case WSD_TAG_UPGRADE_READY:
        wsd_upgrade_handle(s, tag);
        break;
    }
}

/* Fail startup when one pidfd per allowed connection cannot fit in RLIMIT_NOFILE. */
static int check_fd_limit(const struct wsd_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    rlim_t need = cfg->max_conns + cfg->pool_min + RESERVED_FDS;
    if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < need) {
        fprintf(stderr,
                "wsd: invalid WSD_MAX_CONNS=\"%" PRIu64 "\": needs %llu file descriptors with "
                "WSD_POOL_MIN=%" PRIu64 ", but RLIMIT_NOFILE allows %llu; expected at most %llu\n",
                cfg->max_conns, (unsigned long long)need, cfg->pool_min,
                (unsigned long long)rl.rlim_cur,
                (unsigned long long)(rl.rlim_cur - cfg->pool_min - RESERVED_FDS));
        return -EMFILE;
    }
    return 0;
}

/* Put fd at exactly target (CLOEXEC), closing the original. */
static int move_fd(int fd, int target)
{
    if (fd == target)
        return 0;
    int r = dup3(fd, target, O_CLOEXEC) < 0 ? -errno : 0;
    wsd_close(fd);
    return r;
}

/* The worker-visible fds at 3 and 4 (spawn.h), created before anything else is open. */
static int setup_channels(struct supervisor *s)
{
    int d[2], rp[2], c[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, d) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rp) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c) < 0)
        return -errno;
    /* Lift everything above the fixed slots first, so moving one never clobbers another. */
    int dr = fcntl(d[0], F_DUPFD_CLOEXEC, 16), rw = fcntl(rp[1], F_DUPFD_CLOEXEC, 16);
    wsd_close(d[0]);
    wsd_close(rp[1]);
    s->dispatch_w = fcntl(d[1], F_DUPFD_CLOEXEC, 16);
    s->report_r = fcntl(rp[0], F_DUPFD_CLOEXEC, 16);
    s->ctl_s = fcntl(c[0], F_DUPFD_CLOEXEC, 16);
    s->ctl_a = fcntl(c[1], F_DUPFD_CLOEXEC, 16);
    wsd_close(d[1]);
    wsd_close(rp[0]);
    wsd_close(c[0]);
    wsd_close(c[1]);
    if (dr < 0 || rw < 0 || s->dispatch_w < 0 || s->report_r < 0 || s->ctl_s < 0 || s->ctl_a < 0)
        return -EMFILE;
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int ph = nul < 0 ? -1 : fcntl(nul, F_DUPFD_CLOEXEC, 16);
    wsd_close(nul);
    if (ph < 0)
        return -EMFILE;
    int r = move_fd(dr, WSD_FD_DISPATCH);
    if (r == 0)
        r = move_fd(rw, WSD_FD_REPORT);
    if (r == 0 && !s->tls) /* with TLS the keyholder's channel is there already (certs.c) */
        r = move_fd(open("/dev/null", O_RDONLY | O_CLOEXEC), WSD_FD_KEYHOLDER);
    if (r == 0) /* the worker template's slot (template.c) */
        r = move_fd(ph, WSD_FD_TEMPLATE);
    if (r < 0)
        return r;
    /* A deep queue: a burst of handshakes waits here while workers are spawned. */
    int sndbuf = 4 << 20, one = 1;
    (void)setsockopt(s->dispatch_w, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    /* Connection-ended notices come in bursts under churn (WSD_WORKER_REUSE). */
    (void)setsockopt(s->ctl_s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    (void)setsockopt(s->ctl_a, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (setsockopt(s->report_r, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
        return -errno;
    return 0;
}

static int setup_events(struct supervisor *s)
{
    /* The watchdog is fed from the tick: tick at least twice per watchdog interval. */
    long tick_ms = TICK_MS;
    if (s->notify.watchdog_ms && s->notify.watchdog_ms < (uint64_t)tick_ms)
        tick_ms = (long)s->notify.watchdog_ms;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    s->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (s->sig_fd < 0 || s->ep < 0 || s->tick_fd < 0)
        return -errno;
    struct itimerspec its = {
        .it_value = {.tv_nsec = tick_ms * 1000000L},
        .it_interval = {.tv_nsec = tick_ms * 1000000L},
    };
    if (timerfd_settime(s->tick_fd, 0, &its, NULL) < 0)
        return -errno;
    int r = wsd_supervisor_watch(s, s->sig_fd, WSD_TAG_SIGNAL, 0, EPOLLIN);
    if (r == 0)
        r = wsd_supervisor_watch(s, s->report_r, WSD_TAG_REPORT, 0, EPOLLIN);
    if (r == 0)
        r = wsd_supervisor_watch(s, s->tick_fd, WSD_TAG_TICK, 0, EPOLLIN);
    if (r == 0)
        r = wsd_supervisor_watch(s, s->ctl_s, WSD_TAG_ACCEPTOR_CTL, 0, EPOLLIN);
    return r;
}

/* Log where a listening socket listens; the bound address is returned in ret_addr for the
 * default control socket name. */
static void announce_listener(struct supervisor *s, int fd, const char *scheme, const char *origin,
                              char ret_addr[WSD_ADDR_STRLEN])
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    (void)getsockname(fd, (struct sockaddr *)&ss, &sl);
    wsd_addr_format(&ss, ret_addr);
    wsd_log_notice("listening on %s://%s/ (pid %d; %s; stop with SIGTERM or Ctrl-C)", scheme,
                   ret_addr, s->self, origin);
}

/* Open one listener (an empty address means none). */
static int open_listener(struct supervisor *s, const char *addr, const char *scheme, int *ret_fd,
                         char ret_addr[WSD_ADDR_STRLEN])
{
    if (!*addr)
        return 0;
    int fd = wsd_listen_open(addr, LISTEN_BACKLOG);
    if (fd < 0) {
        wsd_log_error(fd, "bind() failed while listening on '%s'", addr);
        return fd;
    }
    announce_listener(s, fd, scheme, "bound here", ret_addr);
    *ret_fd = fd;
    return 0;
}

/* Accepted sockets inherit TCP_NODELAY from their listener, so no worker sets it per
 * connection. Workers write whole frames: Nagle would hold the tail of each one (a TLS record
 * larger than a segment, a close frame) for the client's delayed ACK, about 40 ms. */
static void listener_nodelay(int fd)
{
    int one = 1;
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        wsd_log_warn(errno, "setsockopt(TCP_NODELAY) failed on a listening socket, ignoring");
}

/* The listeners: those passed in (socket activation, or the previous generation on SIGUSR2)
 * replace WSD_LISTEN and WSD_TLS_LISTEN entirely; otherwise bind those. */
static int setup_listeners(struct supervisor *s, char addr[WSD_ADDR_STRLEN],
                           char tls_addr[WSD_ADDR_STRLEN])
{
    struct wsd_inherited *in = &s->inherited;
    if (!wsd_activation_has_listeners(in)) {
        int r = open_listener(s, s->cfg->listen, "ws", &s->listen_fd, addr);
        return r < 0 ? r : open_listener(s, s->cfg->tls_listen, "wss", &s->tls_listen_fd, tls_addr);
    }
    const char *origin = in->upgrade >= 0 ? "socket from the previous wsd" : "socket passed in";
    s->listen_fd = in->ws;
    s->tls_listen_fd = in->wss;
    in->ws = in->wss = -1;
    if (s->listen_fd >= 0)
        announce_listener(s, s->listen_fd, "ws", origin, addr);
    if (s->tls_listen_fd >= 0)
        announce_listener(s, s->tls_listen_fd, "wss", origin, tls_addr);
    return 0;
}

static int setup(struct supervisor *s)
{
    int r = setup_channels(s);
    if (r < 0) {
        wsd_log_error(r, "socketpair() failed while setting up the worker channels");
        return r;
    }
    r = setup_events(s);
    if (r < 0) {
        wsd_log_error(r, "setting up the supervisor's event loop failed");
        return r;
    }
    s->shared = mmap(NULL, sizeof(*s->shared), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s->shared == MAP_FAILED)
        return -ENOMEM;
    s->shared->next_conn_id = 1;
    if (getrandom(&s->cookie_seed, sizeof(s->cookie_seed), 0) != sizeof(s->cookie_seed))
        s->cookie_seed = wsd_now_ns();
    r = wsd_pool_init(&s->pool, (uint32_t)(s->cfg->max_conns + s->cfg->pool_min));
    if (r == 0)
        r = wsd_iptable_init(&s->abuse, 65536);
    if (r < 0)
        return r;
    char addr[WSD_ADDR_STRLEN] = "", tls_addr[WSD_ADDR_STRLEN] = "";
    r = setup_listeners(s, addr, tls_addr);
    listener_nodelay(s->listen_fd);
    listener_nodelay(s->tls_listen_fd);
    if (r == 0)
        r = wsd_metrics_child_open(s);
    if (r < 0)
        return r;
    return wsd_control_open(s, addr[0] ? addr : tls_addr);
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
    struct supervisor s = {
        .config = *cfg,
        .self = getpid(),
        .ep = -1, .sig_fd = -1, .tick_fd = -1, .listen_fd = -1, .tls_listen_fd = -1,
        .dispatch_w = -1, .report_r = -1, .ctl_s = -1, .ctl_a = -1,
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
    if (check_fd_limit(cfg) < 0 || wsd_activation_take(&s.inherited, stderr) < 0)
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
    int r = setup(&s);
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
    acceptor_start(&s);
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
