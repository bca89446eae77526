/* SPDX-License-Identifier: MIT */
/* Starting and ending an exec connection's program. Its pid is never signalled by number:
 * the program through the pidfd taken before it could be reaped, its group through the same
 * pidfd (PIDFD_SIGNAL_PROCESS_GROUP), adopted orphans through pidfds opened while they are
 * still unreaped children of this worker. The program stays unreaped until its tree is gone,
 * so its pid (= its group's id) cannot be reused meanwhile. */
#include "core/exec_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/sys.h"

static void set_limit(int resource, uint64_t v)
{
    if (v == 0)
        return;
    struct rlimit rl = {.rlim_cur = v, .rlim_max = v};
    if (setrlimit(resource, &rl) < 0)
        _exit(126);
}

/* In the vfork()ed child: only system calls and _exit, nothing that touches the worker's
 * memory (it is shared until execve). */
static void child(const struct wsd_exec_spawn *sp, int in_r, int out_w, int err_w, pid_t worker)
{
    if (setsid() < 0) /* its own session and group: the tree ends as a whole */
        _exit(126);
    if (sp->isolate_fd >= 0 && syscall(SYS_landlock_restrict_self, sp->isolate_fd, 0) < 0)
        _exit(126);
    if (dup2(in_r, 0) < 0 || dup2(out_w, 1) < 0)
        _exit(126);
    if (sp->stderr_mode == WSD_EXEC_STDERR_LOG && dup2(err_w, 2) < 0)
        _exit(126);
    if (sp->stderr_mode == WSD_EXEC_STDERR_NULL) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(126);
    }
    (void)wsd_sys_close_range(3, 0);
    set_limit(RLIMIT_AS, sp->rlimit_as);
    set_limit(RLIMIT_NOFILE, sp->rlimit_nofile);
    set_limit(RLIMIT_NPROC, sp->rlimit_nproc);
    set_limit(RLIMIT_CPU, sp->rlimit_cpu);
    if (sp->set_ids && (setgroups(0, NULL) < 0 || setresgid(sp->gid, sp->gid, sp->gid) < 0 ||
                        setresuid(sp->uid, sp->uid, sp->uid) < 0))
        _exit(126);
    /* After the uid change, which clears it: the program dies with its worker. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != worker)
        _exit(126);
    /* The worker blocks every signal, ignores SIGPIPE and may catch SIGTERM and SIGALRM
     * (core/wake.c); a program starts with none of that. Handlers first: once the mask opens
     * they would run here, in memory shared with the worker. */
    static const int reset[] = {SIGPIPE, SIGTERM, SIGALRM};
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
        (void)sigaction(reset[i], &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    execve(sp->path, sp->argv, sp->envp);
    _exit(127);
}

/* vfork in a function of its own: the caller's locals are not live across it. */
static pid_t start_child(const struct wsd_exec_spawn *sp, int in_r, int out_w, int err_w)
{
    pid_t worker = getpid();
    /* vfork: no copy of the worker's page tables, the cheapest way to a fresh process. */
    pid_t pid = vfork();
    if (pid == 0)
        child(sp, in_r, out_w, err_w, worker);
    return pid < 0 ? -errno : pid;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

int wsd_exec_proc_start(const struct wsd_exec_spawn *sp, struct wsd_exec_proc *ret)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, r = 0;
    *ret = (struct wsd_exec_proc){.pidfd = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1};
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
        (sp->stderr_mode == WSD_EXEC_STDERR_LOG && pipe2(err, O_CLOEXEC) < 0)) {
        r = -errno;
        goto out;
    }
    pid_t pid = start_child(sp, in[0], out[1], err[1]);
    if (pid < 0) {
        r = pid;
        goto out;
    }
    int pidfd = wsd_sys_pidfd_open(pid); /* our unreaped child: the pid is still its */
    if (pidfd < 0) {
        r = pidfd;
        (void)kill(pid, SIGKILL); /* the one pid signal: an unreaped child cannot be reused */
        siginfo_t si;
        (void)waitid(P_PID, (id_t)pid, &si, WEXITED);
        goto out;
    }
    *ret = (struct wsd_exec_proc){
        .pid = pid, .pidfd = pidfd, .in_fd = in[1], .out_fd = out[0], .err_fd = err[0]};
    in[1] = out[0] = err[0] = -1;
    (void)set_nonblock(ret->in_fd);
    (void)set_nonblock(ret->out_fd);
    if (ret->err_fd >= 0)
        (void)set_nonblock(ret->err_fd);
out:
    for (int i = 0; i < 2; i++) {
        wsd_close(in[i]);
        wsd_close(out[i]);
        wsd_close(err[i]);
    }
    return r;
}

bool wsd_exec_proc_poll_exit(struct wsd_exec_proc *p)
{
    if (!p->exited && p->pidfd >= 0 &&
        wsd_sys_waitid_pidfd(p->pidfd, &p->status, WNOHANG | WNOWAIT) == 0 &&
        p->status.si_pid != 0)
        p->exited = true;
    return p->exited;
}

/* Signal one adopted child and its own group (it may have called setsid()). */
static void signal_adopted(pid_t pid, int sig)
{
    int fd = wsd_sys_pidfd_open(pid);
    if (fd < 0)
        return;
    (void)wsd_sys_pidfd_send_signal(fd, sig, NULL);
    (void)wsd_sys_pidfd_signal_group(fd, sig);
    wsd_close(fd);
}

struct tree_walk {
    struct wsd_exec_proc *p;
    int sig;
    int left; /* processes still to wait for */
};

static void signal_child(pid_t pid, void *arg)
{
    struct tree_walk *t = arg;
    struct wsd_exec_proc *p = t->p;
    if (pid == p->pid) {
        if (!wsd_exec_proc_poll_exit(p))
            t->left++;
        return;
    }
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG) == 0 && si.si_pid == pid)
        return; /* an adopted orphan that had exited: reaped now */
    t->left++;
    if (t->sig == SIGTERM) {
        for (unsigned i = 0; i < p->n_termed; i++)
            if (p->termed[i] == pid)
                return;
        if (p->n_termed < sizeof(p->termed) / sizeof(p->termed[0]))
            p->termed[p->n_termed++] = pid;
    }
    if (t->sig != 0)
        signal_adopted(pid, t->sig);
}

int wsd_exec_proc_signal_tree(struct wsd_exec_proc *p, int sig)
{
    if (p->pidfd >= 0 && sig != 0)
        (void)wsd_sys_pidfd_signal_group(p->pidfd, sig);
    struct tree_walk t = {.p = p, .sig = sig};
    if (wsd_sys_each_child(signal_child, &t) < 0)
        return p->pidfd >= 0 && !wsd_exec_proc_poll_exit(p) ? 1 : 0;
    return t.left;
}

void wsd_exec_proc_reap(struct wsd_exec_proc *p)
{
    siginfo_t si;
    if (p->pidfd >= 0 && wsd_exec_proc_poll_exit(p) &&
        wsd_sys_waitid_pidfd(p->pidfd, &si, WNOHANG) == 0)
        p->pidfd = wsd_close(p->pidfd);
}

void wsd_exec_proc_done(struct wsd_exec_proc *p)
{
    p->in_fd = wsd_close(p->in_fd);
    p->out_fd = wsd_close(p->out_fd);
    p->err_fd = wsd_close(p->err_fd);
    if (p->pidfd >= 0) {
        if (!wsd_exec_proc_poll_exit(p))
            (void)wsd_sys_pidfd_send_signal(p->pidfd, SIGKILL, NULL);
        siginfo_t si;
        (void)wsd_sys_waitid_pidfd(p->pidfd, &si, 0);
        p->pidfd = wsd_close(p->pidfd);
    }
}
