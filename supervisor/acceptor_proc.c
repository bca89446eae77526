/* SPDX-License-Identifier: MIT */
/* The acceptor process from the supervisor's side: its start (with the fds it needs at fixed
 * slots and a seed of the supervisor's view), and its end: restart, or stop when it cannot
 * accept at all. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sys.h"
#include "supervisor/exit.h"
#include "supervisor/pool.h"
#include "supervisor/reap.h"
#include "supervisor/spawn.h"
#include "supervisor/state.h"

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
    wsd_spawn_child_init("wsd-acceptor", s->self, 0);
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

void wsd_acceptor_start(struct supervisor *s)
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
        s->acceptor_restart_at_ms = wsd_now_ms() + WSD_ACCEPTOR_RESTART_MS;
        return;
    }
    s->acceptor_pidfd = pidfd;
    s->acceptor_pid = pid;
    s->acceptor_started_ms = wsd_now_ms();
    s->acceptor_restart_at_ms = 0;
    (void)wsd_supervisor_watch(s, pidfd, WSD_TAG_ACCEPTOR, 0, EPOLLIN);
}

void wsd_acceptor_exited(struct supervisor *s)
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
    bool crash_loop = now - s->acceptor_started_ms < WSD_ACCEPTOR_RESTART_MS;
    s->acceptor_restart_at_ms = crash_loop ? now + WSD_ACCEPTOR_RESTART_MS : now;
}
