/* SPDX-License-Identifier: MIT */
/* Strays: processes that outlived the worker whose connection they belonged to. The supervisor
 * is a child subreaper, so when a worker dies by SIGKILL or a crash, the descendants its exec
 * program started (the program itself dies with the worker, by PDEATHSIG) come to it instead
 * of to init. Each runs in a session of its own (programs start with setsid), which is how
 * they are told from wsd's own children: those all share the supervisor's session. A stray is
 * signalled through a pidfd opened while it is an unreaped child of ours (its pid cannot be
 * reused before we reap it), it and its process group with SIGKILL, and reaped on a later tick
 * once it has exited. A sweep asks every child for its session (one getsid each, tens of
 * thousands with that many workers), so it runs on the supervisor's tick, once for however
 * many workers died since the last. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sys.h"
#include "supervisor/state.h"

struct sweep {
    struct supervisor *s;
    pid_t sid;     /* the supervisor's session */
    unsigned left; /* strays still alive */
};

static void end_stray(pid_t pid, void *arg)
{
    struct sweep *sw = arg;
    pid_t sid = getsid(pid);
    if (sid < 0 || sid == sw->sid)
        return; /* one of wsd's own processes (or already gone) */
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG) == 0 && si.si_pid == pid) {
        wsd_log_notice("reaped pid=%d, left running by a worker that died", (int)pid);
        sw->s->totals.strays_reaped++;
        return;
    }
    sw->left++;
    int fd = wsd_sys_pidfd_open(pid);
    if (fd < 0)
        return;
    (void)wsd_sys_pidfd_send_signal(fd, SIGKILL, NULL);
    (void)wsd_sys_pidfd_signal_group(fd, SIGKILL); /* it may lead a group of its own */
    wsd_close(fd);
}

void wsd_strays_sweep(struct supervisor *s)
{
    struct sweep sw = {.s = s, .sid = getsid(0)};
    int r = wsd_sys_each_child(end_stray, &sw);
    if (r < 0)
        wsd_log_warn(r, "cannot list the supervisor's children to end strays");
    s->strays_pending = r == 0 && sw.left > 0;
}
