/* SPDX-License-Identifier: MIT */
/* Reaping a child by its pidfd and saying how it ended. */
#ifndef WSD_SUPERVISOR_REAP_H
#define WSD_SUPERVISOR_REAP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* waitid(P_PIDFD, WEXITED | WNOHANG). Returns 1 with *ret filled if the child was reaped, 0 if
 * it is still running, or -errno. */
int wsd_reap(int pidfd, siginfo_t *ret);

/* True if the child ended by a signal (killed or dumped) rather than by exit(). */
bool wsd_reap_is_signaled(const siginfo_t *si);

/* "exited with status 3" / "killed by signal 11 (SIGSEGV), core dumped" into out. */
void wsd_reap_describe(const siginfo_t *si, char *out, size_t cap);

#endif
