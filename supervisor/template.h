/* SPDX-License-Identifier: MIT */
/* The worker template: a small process the supervisor starts, which enters the sandbox once
 * (no_new_privs, Landlock, seccomp) and then creates every worker on request with
 * clone(CLONE_PARENT | CLONE_PIDFD): each worker inherits the sandbox already in force, is the
 * supervisor's child (reaped with waitid(P_PIDFD) as before), and is held by the pidfd the
 * template passes back over SCM_RIGHTS. So no worker loads a BPF program of its own: at high
 * connection rates, one filter per new process deadlocked the kernel's BPF JIT allocator. */
#ifndef WSD_SUPERVISOR_TEMPLATE_H
#define WSD_SUPERVISOR_TEMPLATE_H

#include <stdint.h>
#include <sys/types.h>

struct supervisor;

/* Start the template (the supervisor holds its pidfd and channel). Returns 0 or -errno. */
int wsd_template_start(struct supervisor *s);

/* A new worker for slot with cookie, from the template (started first if there is none).
 * Returns the worker's pid with *ret_pidfd, or -errno (the template is then restarted on the
 * next call). */
pid_t wsd_template_spawn(struct supervisor *s, uint32_t slot, uint64_t cookie, int *ret_pidfd);

/* The template's pidfd became readable: reap it and log how it ended; a template that could
 * not enter the sandbox stops wsd (no worker may run unsandboxed by accident). */
void wsd_template_exited(struct supervisor *s);

/* Retire the template (bounded wait); the next spawn starts a fresh one, which sees the
 * supervisor's state as it is now (a reloaded certificate). */
void wsd_template_stop(struct supervisor *s);

#endif
