/* SPDX-License-Identifier: MIT */
/* The worker template's two sides: its loop (one request, one clone, one pidfd back) and the
 * supervisor's synchronous request. */
#include "supervisor/template.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/shared.h"
#include "core/sys.h"
#include "core/wake.h"
#include "supervisor/caps.h"
#include "supervisor/exit.h"
#include "supervisor/layout.h"
#include "supervisor/reap.h"
#include "supervisor/sandbox.h"
#include "supervisor/share_code.h"
#include "supervisor/spawn.h"
#include "supervisor/state.h"
#include "supervisor/trim.h"
#include "supervisor/worker.h"

#define REPLY_TIMEOUT_MS 2000
/* The one clone a template makes. The seccomp filter allows clone with any flags but
 * namespace ones; CLONE_PARENT makes the worker the supervisor's child, and exit_signal comes
 * from the template's own (SIGCHLD). */
#define WORKER_CLONE_FLAGS (CLONE_PARENT | CLONE_PIDFD | SIGCHLD)

struct template_request {
    uint32_t slot;
    uint64_t cookie;
};

struct template_reply {
    uint32_t slot;
    int32_t pid; /* or -errno */
};

static void reply(uint32_t slot, long pid, int pidfd)
{
    struct template_reply rp = {.slot = slot, .pid = (int32_t)pid};
    struct iovec iov = {&rp, sizeof(rp)};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u = {0};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pidfd >= 0) {
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pidfd, sizeof(int));
    }
    (void)sendmsg(WSD_FD_TEMPLATE, &mh, MSG_NOSIGNAL);
}

static void template_run(void *arg)
{
    struct supervisor *s = arg;
    wsd_share_code_with_clones();
    if (wsd_sandbox_enter(s->cfg) < 0)
        _exit(WSD_EXIT_FATAL);
    (void)wsd_trim_supervisor_libs(); /* after the filter is loaded: libseccomp goes too */
    wsd_trim_rseq();
    struct wsd_worker_prep prep;
    if (wsd_worker_prepare(&prep, s->cfg) < 0)
        _exit(WSD_EXIT_FAILURE);
    /* Inherited by every worker: one sigaction pair here, not one per connection. Exec
     * programs' workers never wait in recv() (they watch pipes too). */
    if (s->cfg->handler != WSD_HANDLER_EXEC)
        (void)wsd_wake_install();
    for (;;) {
        struct template_request rq;
        ssize_t n = recv(WSD_FD_TEMPLATE, &rq, sizeof(rq), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(WSD_EXIT_OK); /* the supervisor retired this template, or is gone */
        if (n != (ssize_t)sizeof(rq))
            continue;
        int pidfd = -1;
        /* Legacy clone, fork-like (no CLONE_VM): the child has its own copy of this stack. */
        long pid = syscall(SYS_clone, WORKER_CLONE_FLAGS, 0, &pidfd, 0, 0);
        if (pid == 0) {
            (void)wsd_sys_close_range(WSD_FD_TEMPLATE, 0); /* a worker keeps only 3 and 4 */
            struct wsd_worker_args a = {
                .cfg = s->cfg,
                .prep = &prep,
                .supervisor_pid = s->self,
                .slot = rq.slot,
                .cookie = rq.cookie,
                .tls = s->tls,
            };
            wsd_worker_main(&a);
            _exit(WSD_EXIT_FAILURE);
        }
        reply(rq.slot, pid < 0 ? -errno : pid, pid > 0 ? pidfd : -1);
        /* close(), not wsd_close(): saving errno writes this thread's TLS page, which the
         * fork has just made copy-on-write, so one more page fault per worker. */
        if (pid > 0)
            (void)close(pidfd);
    }
}

static void template_main(void *arg)
{
    struct supervisor *s = arg;
    /* Copied, not shared, fd table (no CLONE_FILES: slot 5 changes right after the clone):
     * keep 0-5, drop the supervisor's pidfds and the rest. */
    (void)wsd_sys_close_range(WSD_FD_FIRST_PRIVATE, 0);
    wsd_spawn_child_init("wsd-template", s->self,
                         s->cfg->handler == WSD_HANDLER_EXEC ? WSD_CAPS_EXEC_WORKER : 0);
    wsd_log_setup((enum wsd_log_level)s->cfg->log_level, "wsd-template");
    (void)munmap(s->shared, sizeof(*s->shared));
    /* Every worker is a copy of this process: off the kernel's stack, up to 1 GB from
     * anything else, a worker needs two page tables fewer (layout.h). */
    int r = wsd_layout_move_stack(template_run, s);
    if (r != -ENOTSUP) /* a kernel without PR_SET_MM_MAP (CONFIG_CHECKPOINT_RESTORE) */
        wsd_log_warn(r, "moving the worker template's stack failed, keeping it");
    template_run(s);
}

int wsd_template_start(struct supervisor *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    /* The template's end goes to the fixed slot WSD_FD_TEMPLATE only while it is created; the
     * /dev/null parked there (spawn.h) goes back right after, so the slot names nothing else. */
    int parked = fcntl(WSD_FD_TEMPLATE, F_DUPFD_CLOEXEC, 16);
    if (parked < 0 || dup3(sv[1], WSD_FD_TEMPLATE, O_CLOEXEC) < 0) {
        int r = -errno;
        wsd_close(parked);
        wsd_close(sv[0]);
        wsd_close(sv[1]);
        return r;
    }
    wsd_close(sv[1]);
    int pidfd;
    pid_t pid = wsd_spawn_process(template_main, s, &pidfd);
    (void)dup3(parked, WSD_FD_TEMPLATE, O_CLOEXEC);
    wsd_close(parked);
    if (pid < 0) {
        wsd_close(sv[0]);
        return pid;
    }
    s->template_chan = sv[0];
    s->template_pidfd = pidfd;
    s->template_pid = pid;
    (void)wsd_supervisor_watch(s, pidfd, WSD_TAG_TEMPLATE, 0, EPOLLIN);
    return 0;
}

static int recv_reply(int chan, struct template_reply *rp, int *ret_fd, int timeout_ms)
{
    struct pollfd p = {.fd = chan, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    if (n == 0)
        return -ETIMEDOUT;
    if (n < 0)
        return -errno;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec iov = {rp, sizeof(*rp)};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t got = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (got <= 0)
        return got == 0 ? -EPIPE : -errno;
    *ret_fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
    if (got != (ssize_t)sizeof(*rp) || (rp->pid > 0) != (*ret_fd >= 0)) {
        *ret_fd = wsd_close(*ret_fd);
        return -EBADMSG;
    }
    return 0;
}

static void reap_and_log(struct supervisor *s, bool retiring)
{
    siginfo_t si;
    if (wsd_sys_waitid_pidfd(s->template_pidfd, &si, 0) == 0 && !retiring &&
        (wsd_reap_is_signaled(&si) || si.si_status != WSD_EXIT_OK)) {
        char how[96];
        wsd_reap_describe(&si, how, sizeof(how));
        bool fatal = !wsd_reap_is_signaled(&si) && si.si_status == WSD_EXIT_FATAL;
        wsd_log_error(0, "worker template pid=%d %s%s", s->template_pid, how,
                      fatal ? ": it could not enter the sandbox, stopping" : "");
        if (fatal)
            s->exit_status = WSD_EXIT_FAILURE;
    }
    s->template_pidfd = wsd_close(s->template_pidfd);
    s->template_chan = wsd_close(s->template_chan);
}

/* Make the template exit (SIGKILL if it has not within REPLY_TIMEOUT_MS); its channel stays
 * open here, so what it sent before is still read. */
static void end_template(struct supervisor *s)
{
    (void)shutdown(s->template_chan, SHUT_WR); /* its recv() sees EOF: it exits */
    struct pollfd p = {.fd = s->template_pidfd, .events = POLLIN};
    if (poll(&p, 1, REPLY_TIMEOUT_MS) != 1)
        (void)wsd_sys_pidfd_send_signal(s->template_pidfd, SIGKILL, NULL);
}

pid_t wsd_template_spawn(struct supervisor *s, uint32_t slot, uint64_t cookie, int *ret_pidfd)
{
    int r = s->template_chan < 0 ? wsd_template_start(s) : 0;
    if (r < 0)
        return r;
    struct template_request rq = {.slot = slot, .cookie = cookie};
    if (send(s->template_chan, &rq, sizeof(rq), MSG_NOSIGNAL) < 0)
        r = -errno;
    struct template_reply rp;
    int fd = -1;
    if (r == 0)
        r = recv_reply(s->template_chan, &rp, &fd, REPLY_TIMEOUT_MS);
    if (r < 0) {
        wsd_log_warn(r, "the worker template pid=%d did not answer, replacing it",
                     s->template_pid);
        end_template(s);
        /* A worker it cloned before it ended is already our child (CLONE_PARENT): its reply
         * is still queued, so it is kept, not left running where no pidfd of ours reaches. */
        if (r == -ETIMEDOUT)
            r = recv_reply(s->template_chan, &rp, &fd, 0);
        reap_and_log(s, true);
        if (r < 0)
            return r;
    }
    if (rp.pid < 0)
        return rp.pid; /* clone() failed in the template, e.g. -EAGAIN */
    *ret_pidfd = fd;
    return rp.pid;
}

void wsd_template_exited(struct supervisor *s)
{
    siginfo_t si;
    if (s->template_pidfd < 0 ||
        wsd_sys_waitid_pidfd(s->template_pidfd, &si, WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
        return;
    reap_and_log(s, false);
}

void wsd_template_stop(struct supervisor *s)
{
    if (s->template_pidfd < 0)
        return;
    end_template(s);
    reap_and_log(s, true);
}
