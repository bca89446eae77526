/* SPDX-License-Identifier: MIT */
/* The workers' sandbox (WSD_SANDBOX): no_new_privs, Landlock and a seccomp filter, entered
 * once by the worker template (supervisor/template.c) and inherited by every worker it
 * creates, and by the programs those run. No worker ever loads a BPF program of its own. */
#ifndef WSD_SUPERVISOR_SANDBOX_H
#define WSD_SUPERVISOR_SANDBOX_H

#include <stdio.h>

struct wsd_config;

/* At startup, in the supervisor: compile the seccomp filter (libseccomp, once per wsd) into
 * a BPF program kept in memory. Returns 0, or -errno after one line to err. */
int wsd_sandbox_prepare(const struct wsd_config *cfg, FILE *err);

/* In the template, once: no_new_privs, then Landlock (what the handler needs, as far as this
 * kernel's Landlock ABI can say it), then the compiled filter. Logs what it applied. Returns
 * 0 or -errno (the template then exits and no worker is created unsandboxed). */
int wsd_sandbox_enter(const struct wsd_config *cfg);

/* In an exec worker, once: a Landlock ruleset that puts each program it starts in a domain of
 * its own, nested in the worker's. Programs then cannot ptrace one another, read one another's
 * memory or /proc/PID/environ (another client's headers), or signal one another, though they
 * all run as one user; the worker still signals its own. Returns the ruleset fd, or -1 when
 * the sandbox is off or Landlock is missing. */
int wsd_sandbox_program_ruleset(const struct wsd_config *cfg);

#endif
