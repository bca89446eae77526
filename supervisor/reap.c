/* SPDX-License-Identifier: MIT */
/* waitid(P_PIDFD) and the exit description every log line uses. */
#include "supervisor/reap.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "core/sys.h"

int wsd_reap(int pidfd, siginfo_t *ret)
{
    int r = wsd_sys_waitid_pidfd(pidfd, ret, WNOHANG);
    if (r < 0)
        return r;
    return ret->si_pid != 0;
}

bool wsd_reap_is_signaled(const siginfo_t *si)
{
    return si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED;
}

void wsd_reap_describe(const siginfo_t *si, char *out, size_t cap)
{
    if (wsd_reap_is_signaled(si))
        snprintf(out, cap, "killed by signal %d (SIG%s)%s", si->si_status,
                 sigabbrev_np(si->si_status) ? sigabbrev_np(si->si_status) : "?",
                 si->si_code == CLD_DUMPED ? ", core dumped" : "");
    else
        snprintf(out, cap, "exited with status %d", si->si_status);
}
