/* SPDX-License-Identifier: MIT */
/* The supervisor's start, before its loop runs: the fixed fd slots workers inherit, its event
 * sources, the listeners (bound here or passed in), its tables and the control socket. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/config.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/shared.h"
#include "core/sys.h"
#include "supervisor/pool.h"
#include "supervisor/rt_guard.h"
#include "supervisor/spawn.h"
#include "supervisor/state.h"

#define LISTEN_BACKLOG 4096
#define RESERVED_FDS 64 /* the supervisor's own fds besides one pidfd per worker */

/* Fail startup when one pidfd per allowed connection cannot fit in RLIMIT_NOFILE. */
int wsd_supervisor_check_fd_limit(const struct wsd_config *cfg)
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
    long tick_ms = WSD_SUPERVISOR_TICK_MS;
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
    s->report_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (s->sig_fd < 0 || s->ep < 0 || s->tick_fd < 0 || s->report_timer_fd < 0)
        return -errno;
    struct itimerspec its = {
        .it_value = {.tv_nsec = tick_ms * 1000000L},
        .it_interval = {.tv_nsec = tick_ms * 1000000L},
    };
    if (timerfd_settime(s->tick_fd, 0, &its, NULL) < 0)
        return -errno;
    int r = wsd_supervisor_watch(s, s->sig_fd, WSD_TAG_SIGNAL, 0, EPOLLIN);
    if (r == 0)
        r = wsd_supervisor_watch(s, s->report_r, WSD_TAG_REPORT, 0, EPOLLIN | EPOLLONESHOT);
    if (r == 0)
        r = wsd_supervisor_watch(s, s->report_timer_fd, WSD_TAG_REPORT_TIMER, 0, EPOLLIN);
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

int wsd_supervisor_setup(struct supervisor *s)
{
    /* A worker that dies abruptly leaves its exec program's descendants here (strays.c). */
    int r = wsd_sys_child_subreaper();
    if (r < 0)
        wsd_log_warn(r, "prctl(PR_SET_CHILD_SUBREAPER) failed: what an exec program leaves "
                        "behind when its worker is SIGKILLed goes to init");
    /* Terminations, heartbeat verdicts and escalations are the supervisor's to deliver: at
     * SCHED_FIFO it is the next task its CPU runs once one is asked for, not after the
     * workers' load or a terminated worker's teardown (BENCH.md: kill p99); a kernel without
     * kernel-mode preemption still finishes the running task's stretch first. Its own work is
     * light; what it starts runs at the default policy. */
    if (s->cfg->supervisor_fifo && (r = wsd_sys_sched_fifo_alone()) < 0)
        wsd_log_warn(r, "sched_setscheduler(SCHED_FIFO) failed: the supervisor keeps the default "
                        "policy (WSD_SUPERVISOR_SCHED=other asks for that without trying)");
    else if (s->cfg->supervisor_fifo && (r = wsd_rt_guard_arm()) < 0)
        wsd_log_warn(r, "setting RLIMIT_RTTIME failed: nothing brings a supervisor stuck at "
                        "SCHED_FIFO back to the default policy");
    r = setup_channels(s);
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
