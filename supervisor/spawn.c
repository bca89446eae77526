/* SPDX-License-Identifier: MIT */
/* clone3 with CLONE_PIDFD, and the child-side setup every wsd child shares. Workers come from
 * the worker template (template.c), which the supervisor starts with this. */
#include "supervisor/spawn.h"

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/secret.h"
#include "core/sys.h"
#include "supervisor/caps.h"
#include "supervisor/exit.h"
#include "supervisor/rt_guard.h"

pid_t wsd_spawn_process(wsd_child_main_cb child_main, void *arg, int *ret_pidfd)
{
    int r = wsd_sys_clone3_pidfd(0, ret_pidfd);
    if (r != 0)
        return r;
    child_main(arg);
    _exit(WSD_EXIT_FAILURE);
}

void wsd_spawn_child_init(const char *name, pid_t supervisor_pid, uint64_t keep_caps)
{
    /* The supervisor keeps WSD_ADMIN_TOKEN in its environment (an upgrade re-executes wsd with
     * it); no child needs it, and a child is what faces the network. */
    wsd_secret_wipe_env();
    /* Real-time priority is the supervisor's alone (WSD_SUPERVISOR_SCHED): nothing below it,
     * and no worker or program cloned from here, may take it up again (CAP_SYS_NICE goes
     * next). */
    struct rlimit none = {0, 0};
    (void)setrlimit(RLIMIT_RTPRIO, &none);
    wsd_rt_guard_child();
    int r = wsd_caps_limit(keep_caps);
    if (r < 0) {
        wsd_log_error(r, "%s: dropping capabilities failed", name);
        _exit(WSD_EXIT_FATAL);
    }
    wsd_spawn_clone_init(name, supervisor_pid);
}

void wsd_spawn_clone_init(const char *name, pid_t supervisor_pid)
{
    (void)prctl(PR_SET_NAME, name);
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* It died before PDEATHSIG was set. syscall(), not getppid(): a worker reaches this
     * through syscall() already, and each libc code page a fresh process runs first costs
     * a page fault. */
    if (syscall(SYS_getppid) != supervisor_pid)
        _exit(WSD_EXIT_FAILURE);
    (void)setpgid(0, 0);
}
