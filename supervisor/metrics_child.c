/* SPDX-License-Identifier: MIT */
/* The supervisor's side of the wsd-metrics process: the listener stays open here (a restart
 * loses no queued scrape), the process is started with one end of a fresh socketpair, and
 * restarted when it dies, at most once a second. The supervisor answers it through the control
 * code (control.c), never reading its HTTP. */
#include "supervisor/state.h"

#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/sys.h"
#include "supervisor/exit.h"
#include "supervisor/metrics_http.h"
#include "supervisor/reap.h"
#include "supervisor/spawn.h"

#define METRICS_RESTART_MS 1000

int wsd_metrics_child_open(struct supervisor *s)
{
    struct wsd_metrics_child *m = &s->metrics_child;
    m->listen_fd = m->pidfd = -1;
    /* SIGUSR2: the previous generation's listener, so scrapes never meet a closed port */
    int fd = s->inherited.metrics;
    s->inherited.metrics = -1;
    if (fd < 0 && !s->cfg->metrics_listen[0])
        return 0;
    if (fd < 0)
        fd = wsd_listen_open(s->cfg->metrics_listen, 64);
    if (fd < 0) {
        wsd_log_error(fd, "bind() failed while listening on WSD_METRICS_LISTEN '%s'",
                      s->cfg->metrics_listen);
        return fd;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char addr[WSD_ADDR_STRLEN];
    (void)getsockname(fd, (struct sockaddr *)&ss, &sl);
    wsd_addr_format(&ss, addr);
    wsd_log_notice("metrics on http://%s/metrics, dashboard on http://%s/ (%s)", addr, addr,
                   s->cfg->admin_token_set ? "WSD_ADMIN_TOKEN set: it may end connections"
                                           : "read-only: no WSD_ADMIN_TOKEN");
    m->listen_fd = fd;
    return 0;
}

void wsd_metrics_child_start(struct supervisor *s)
{
    struct wsd_metrics_child *m = &s->metrics_child;
    if (m->listen_fd < 0 || m->pidfd >= 0 || s->stopping)
        return;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        wsd_log_error(errno, "socketpair() failed while starting wsd-metrics, retrying");
        m->restart_at_ms = wsd_now_ms() + METRICS_RESTART_MS;
        return;
    }
    struct wsd_metrics_http_args args = {
        .cfg = s->cfg,
        .supervisor_pid = s->self,
        .listen_fd = m->listen_fd,
        .chan_fd = sv[1],
    };
    int pidfd;
    pid_t pid = wsd_spawn_process(wsd_metrics_http_main, &args, &pidfd);
    wsd_close(sv[1]);
    if (pid < 0 || wsd_control_adopt(s, sv[0]) < 0) {
        wsd_log_error(pid < 0 ? pid : 0, "starting wsd-metrics failed, retrying");
        if (pid >= 0) {
            (void)wsd_sys_pidfd_send_signal(pidfd, SIGKILL, NULL);
            m->pidfd = pidfd; /* reaped through the usual exit path */
            m->pid = pid;
            (void)wsd_supervisor_watch(s, pidfd, WSD_TAG_METRICS, 0, EPOLLIN);
        } else {
            wsd_close(sv[0]);
        }
        m->restart_at_ms = wsd_now_ms() + METRICS_RESTART_MS;
        return;
    }
    m->pidfd = pidfd;
    m->pid = pid;
    m->started_ms = wsd_now_ms();
    m->restart_at_ms = 0;
    (void)wsd_supervisor_watch(s, pidfd, WSD_TAG_METRICS, 0, EPOLLIN);
}

void wsd_metrics_child_exited(struct supervisor *s)
{
    struct wsd_metrics_child *m = &s->metrics_child;
    siginfo_t si;
    if (m->pidfd < 0 || wsd_reap(m->pidfd, &si) != 1)
        return;
    m->pidfd = wsd_close(m->pidfd);
    if (s->stopping)
        return;
    char how[96];
    wsd_reap_describe(&si, how, sizeof(how));
    uint64_t now = wsd_now_ms();
    bool crash_loop = now - m->started_ms < METRICS_RESTART_MS;
    wsd_log_warn(0, "wsd-metrics pid=%d %s, restarting%s", m->pid, how,
                 crash_loop ? " in a second" : "");
    m->restart_at_ms = crash_loop ? now + METRICS_RESTART_MS : now;
}

void wsd_metrics_child_tick(struct supervisor *s, uint64_t now_ms)
{
    struct wsd_metrics_child *m = &s->metrics_child;
    if (m->pidfd < 0 && m->restart_at_ms && now_ms >= m->restart_at_ms)
        wsd_metrics_child_start(s);
}

void wsd_metrics_child_stop(struct supervisor *s, int sig)
{
    struct wsd_metrics_child *m = &s->metrics_child;
    if (m->pidfd >= 0)
        (void)wsd_sys_pidfd_send_signal(m->pidfd, sig, NULL);
    if (sig == SIGTERM)
        m->listen_fd = wsd_close(m->listen_fd);
}
