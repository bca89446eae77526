/* SPDX-License-Identifier: MIT */
/* SIGUSR2, a zero-downtime upgrade as nginx does it: start the wsd binary now on disk with this
 * generation's listening sockets and control socket passed the way systemd passes them
 * (LISTEN_FDS, names ws, wss, wsd-control, wsd-metrics) plus a pipe (wsd-upgrade) on which the new
 * one says READY once its pool is warm. Then this generation stops accepting, lets its connections
 * run until they end or WSD_DRAIN_TIMEOUT_MS passes (then 1001), and exits. If the new one exits,
 * or is not ready within WSD_UPGRADE_TIMEOUT_MS (it is then killed), this one keeps serving. */
#include "supervisor/state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sys.h"
#include "supervisor/reap.h"

#define READY_WORD "READY=1\n"
#define MAX_PASSED 5

struct wsd_upgrade {
    char exe[PATH_MAX]; /* the path wsd was started from: whatever binary is there now runs */
    int pidfd;          /* the new generation, from clone3 to its exit or our exit */
    pid_t pid;
    int ready_r; /* read end of its wsd-upgrade pipe; -1 once read or closed */
    bool ready;  /* it said READY: this generation is draining */
    uint64_t deadline_ms;
};

/* What the child execs with: fds at 3.. and their names, built before clone3 so the child
 * only places them and execs. */
struct handover {
    const char *exe;
    int fds[MAX_PASSED];
    const char *names[MAX_PASSED];
    int n;
    bool watchdog;
};

void wsd_upgrade_init(struct supervisor *s)
{
    struct wsd_upgrade *u = calloc(1, sizeof(*u));
    if (!u)
        return; /* without it SIGUSR2 is refused; nothing else depends on it */
    u->pidfd = u->ready_r = -1;
    ssize_t n = readlink("/proc/self/exe", u->exe, sizeof(u->exe) - 1);
    if (n > 0) {
        u->exe[n] = '\0';
        /* replaced on disk while running: the kernel appends this to the old inode's name */
        size_t len = (size_t)n, tail = strlen(" (deleted)");
        if (len > tail && strcmp(u->exe + len - tail, " (deleted)") == 0)
            u->exe[len - tail] = '\0';
    }
    s->upgrade = u;
}

/* Child, between clone3 and exec: only async-signal-safe work. */
static void child_exec(void *arg)
{
    const struct handover *h = arg;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    int lifted[MAX_PASSED];
    for (int i = 0; i < h->n; i++)
        if ((lifted[i] = fcntl(h->fds[i], F_DUPFD_CLOEXEC, 3 + MAX_PASSED)) < 0)
            _exit(127);
    for (int i = 0; i < h->n; i++)
        if (dup2(lifted[i], 3 + i) < 0) /* dup2: the copy is not CLOEXEC, so it crosses exec */
            _exit(127);
    char num[16], pid[16], names[64] = "";
    snprintf(num, sizeof(num), "%d", h->n);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    for (int i = 0; i < h->n; i++) {
        strcat(names, i ? ":" : "");
        strcat(names, h->names[i]);
    }
    setenv("LISTEN_FDS", num, 1);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDNAMES", names, 1);
    if (h->watchdog) /* systemd's watchdog follows MAINPID; the new one must feed it */
        setenv("WATCHDOG_PID", pid, 1);
    char *argv[] = {(char *)h->exe, NULL};
    execv(h->exe, argv);
    dprintf(STDERR_FILENO, "wsd: execv() failed while upgrading to '%s': %s\n", h->exe,
            strerror(errno));
    _exit(127);
}

static void add(struct handover *h, int fd, const char *name)
{
    if (fd >= 0 && h->n < MAX_PASSED) {
        h->fds[h->n] = fd;
        h->names[h->n++] = name;
    }
}

void wsd_upgrade_start(struct supervisor *s)
{
    struct wsd_upgrade *u = s->upgrade;
    if (!u || !u->exe[0] || s->stopping || s->draining || u->pidfd >= 0) {
        wsd_log_warn(0, "SIGUSR2: %s, ignoring",
                     !u || !u->exe[0] ? "the path of the wsd binary is unknown"
                     : u->pidfd >= 0  ? "an upgrade is already under way"
                                      : "wsd is stopping");
        return;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        wsd_log_error(errno, "pipe2() failed while starting an upgrade, still serving");
        return;
    }
    struct handover h = {.exe = u->exe, .watchdog = s->notify.watchdog_ms > 0};
    add(&h, s->listen_fd, "ws");
    add(&h, s->tls_listen_fd, "wss");
    add(&h, wsd_control_listen_fd(s), "wsd-control");
    add(&h, s->metrics_child.listen_fd, "wsd-metrics");
    add(&h, p[1], "wsd-upgrade");
    int pidfd;
    pid_t pid = wsd_sys_clone3_pidfd(0, &pidfd);
    if (pid == 0)
        child_exec(&h);
    wsd_close(p[1]);
    if (pid < 0) {
        wsd_close(p[0]);
        wsd_log_error(pid, "clone3() failed while starting an upgrade, still serving");
        return;
    }
    u->pidfd = pidfd;
    u->pid = pid;
    u->ready_r = p[0];
    u->ready = false;
    u->deadline_ms = wsd_now_ms() + s->cfg->upgrade_timeout_ms;
    (void)wsd_supervisor_watch(s, pidfd, WSD_TAG_UPGRADE_CHILD, 0, EPOLLIN);
    (void)wsd_supervisor_watch(s, p[0], WSD_TAG_UPGRADE_READY, 0, EPOLLIN);
    wsd_log_notice("SIGUSR2: started new wsd pid=%d from %s; waiting up to %" PRIu64
                   " ms for it to be ready",
                   pid, u->exe, s->cfg->upgrade_timeout_ms);
}

/* The new generation is ready: it accepts now; this one stops accepting and drains. */
static void hand_over(struct supervisor *s)
{
    struct wsd_upgrade *u = s->upgrade;
    u->ready = true;
    s->draining = true;
    s->drain_deadline_ms = wsd_now_ms() + s->cfg->drain_timeout_ms;
    wsd_notify_mainpid(&s->notify, u->pid);
    struct wsd_acceptor_msg m = {.type = WSD_ACCEPTOR_MSG_QUIESCE};
    if (s->acceptor_pidfd >= 0 && send(s->ctl_s, &m, sizeof(m), MSG_DONTWAIT) != sizeof(m))
        (void)wsd_sys_pidfd_send_signal(s->acceptor_pidfd, SIGTERM, NULL);
    s->listen_fd = wsd_close(s->listen_fd);
    s->tls_listen_fd = wsd_close(s->tls_listen_fd);
    wsd_control_hand_over(s);
    wsd_metrics_child_stop(s, SIGTERM); /* the new generation serves metrics on the socket now */
    wsd_log_notice("upgrade: new wsd pid=%d is ready and accepting; this wsd (pid %d) stopped "
                   "accepting and drains %u connections for up to %" PRIu64 " ms",
                   u->pid, s->self, s->pool.busy, s->cfg->drain_timeout_ms);
}

static void close_ready_pipe(struct supervisor *s)
{
    struct wsd_upgrade *u = s->upgrade;
    (void)epoll_ctl(s->ep, EPOLL_CTL_DEL, u->ready_r, NULL);
    u->ready_r = wsd_close(u->ready_r);
}

static void handle_ready_pipe(struct supervisor *s)
{
    struct wsd_upgrade *u = s->upgrade;
    char buf[16];
    ssize_t n = read(u->ready_r, buf, sizeof(buf));
    if (n < 0 && errno == EAGAIN)
        return;
    close_ready_pipe(s);
    if (n == (ssize_t)strlen(READY_WORD) && memcmp(buf, READY_WORD, (size_t)n) == 0 && !s->stopping)
        hand_over(s);
    /* EOF without READY: it is exiting; its pidfd says how, and that is logged there. */
}

static void handle_child_exit(struct supervisor *s)
{
    struct wsd_upgrade *u = s->upgrade;
    siginfo_t si;
    if (wsd_reap(u->pidfd, &si) != 1)
        return;
    char how[96];
    wsd_reap_describe(&si, how, sizeof(how));
    if (u->ready)
        wsd_log_error(0,
                      "upgrade: new wsd pid=%d %s while this one drains; nothing accepts "
                      "connections now",
                      u->pid, how);
    else
        wsd_log_error(0,
                      "upgrade failed: new wsd pid=%d %s before it was ready; still serving "
                      "here",
                      u->pid, how);
    if (u->ready_r >= 0)
        close_ready_pipe(s);
    u->pidfd = wsd_close(u->pidfd);
}

void wsd_upgrade_handle(struct supervisor *s, enum wsd_tag tag)
{
    if (tag == WSD_TAG_UPGRADE_READY && s->upgrade->ready_r >= 0)
        handle_ready_pipe(s);
    else if (tag == WSD_TAG_UPGRADE_CHILD && s->upgrade->pidfd >= 0)
        handle_child_exit(s);
}

void wsd_upgrade_abort(struct supervisor *s)
{
    struct wsd_upgrade *u = s->upgrade;
    if (!u || u->pidfd < 0 || u->ready)
        return;
    /* Stopping before the new one took over: it must not outlive us holding our sockets. */
    wsd_log_notice("stopping: killing new wsd pid=%d, which was not ready yet", u->pid);
    if (u->ready_r >= 0)
        close_ready_pipe(s);
    (void)wsd_sys_pidfd_send_signal(u->pidfd, SIGKILL, NULL);
}

void wsd_upgrade_tick(struct supervisor *s, uint64_t now_ms)
{
    struct wsd_upgrade *u = s->upgrade;
    if (u && u->pidfd >= 0 && !u->ready && u->ready_r >= 0 && now_ms >= u->deadline_ms) {
        wsd_log_error(0,
                      "upgrade failed: new wsd pid=%d not ready after %" PRIu64 " ms; killing "
                      "it, still serving here",
                      u->pid, s->cfg->upgrade_timeout_ms);
        close_ready_pipe(s);
        (void)wsd_sys_pidfd_send_signal(u->pidfd, SIGKILL, NULL);
    }
    if (!s->draining || s->stopping)
        return;
    if (now_ms >= s->drain_deadline_ms) {
        wsd_supervisor_begin_stop(s, "upgrade: drain timeout");
        return;
    }
    /* Handshakes still in the queue need an idle worker; once none is left, idle ones go. */
    if (s->acceptor_pidfd < 0 && !wsd_supervisor_dispatch_pending())
        (void)wsd_terminate_idle(s);
}

bool wsd_upgrade_is_starting(const struct supervisor *s)
{
    const struct wsd_upgrade *u = s->upgrade;
    return u && u->pidfd >= 0 && !u->ready;
}

pid_t wsd_upgrade_child_pid(const struct supervisor *s)
{
    const struct wsd_upgrade *u = s->upgrade;
    return u && u->pidfd >= 0 ? u->pid : 0;
}

void wsd_upgrade_done(struct supervisor *s)
{
    struct wsd_upgrade *u = s->upgrade;
    if (!u)
        return;
    if (u->ready_r >= 0)
        close_ready_pipe(s);
    u->pidfd = wsd_close(u->pidfd); /* a new generation lives on: it is the service now */
    free(u);
    s->upgrade = NULL;
}

void wsd_upgrade_report_ready(struct supervisor *s)
{
    int fd = s->inherited.upgrade;
    if (fd < 0)
        return;
    if (write(fd, READY_WORD, strlen(READY_WORD)) != (ssize_t)strlen(READY_WORD))
        wsd_log_warn(errno, "write() failed while telling the previous wsd we are ready, "
                            "ignoring");
    s->inherited.upgrade = wsd_close(fd);
}
