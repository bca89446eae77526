/* SPDX-License-Identifier: MIT */
/* The program an exec connection runs, as a process tree the worker owns: started in its own
 * session with pipes for stdin/stdout/stderr, held by a pidfd, and ended as a whole (its
 * process group, plus every descendant that escaped the group and was adopted by the worker,
 * which is a child subreaper). Only the worker process that started it may use it. */
#ifndef WSD_CORE_EXEC_PROC_H
#define WSD_CORE_EXEC_PROC_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

enum wsd_exec_stderr {
    WSD_EXEC_STDERR_LOG = 0, /* a pipe to the worker, which logs each line */
    WSD_EXEC_STDERR_PASS,    /* wsd's own stderr */
    WSD_EXEC_STDERR_NULL,    /* /dev/null */
};

/* How to start the program; prepared once at startup and inherited by every worker. */
struct wsd_exec_spawn {
    const char *path; /* absolute */
    char *const *argv;
    char *const *envp;
    enum wsd_exec_stderr stderr_mode;
    bool set_ids; /* switch to uid/gid (and no supplementary groups) before exec */
    uid_t uid;
    gid_t gid;
    int isolate_fd; /* a Landlock ruleset each program enters (a domain of its own), or -1 */
    /* RLIMIT_AS, _NOFILE, _NPROC, _CPU; 0 = leave as inherited */
    uint64_t rlimit_as, rlimit_nofile, rlimit_nproc, rlimit_cpu;
};

struct wsd_exec_proc {
    pid_t pid;  /* for logs; also its process group and session id */
    int pidfd;  /* the program; reaped only when its whole tree is gone */
    int in_fd;  /* write end of its stdin */
    int out_fd; /* read end of its stdout */
    int err_fd; /* read end of its stderr (WSD_EXEC_STDERR_LOG), else -1 */
    bool exited;     /* the program (not necessarily its descendants) has exited */
    siginfo_t status; /* how, once exited */
    pid_t termed[64]; /* adopted orphans already sent SIGTERM (sent once each) */
    unsigned n_termed;
};

/* Start the program. The worker's ends of the pipes are CLOEXEC and non-blocking. Returns 0,
 * or -errno with nothing left behind. */
int wsd_exec_proc_start(const struct wsd_exec_spawn *sp, struct wsd_exec_proc *ret);

/* The program's pidfd became readable: record its exit status without reaping it (its pid
 * must stay its group's id while the group lives). Returns true once it has exited. */
bool wsd_exec_proc_poll_exit(struct wsd_exec_proc *p);

/* Send sig (0 = none) to the program's process group and to every child of this worker (each
 * one's own group too), through pidfds; SIGTERM reaches each adopted orphan only once. Reaps
 * children that have exited, except the program itself. Returns the number of processes
 * still to wait for (0 = the whole tree is gone). */
int wsd_exec_proc_signal_tree(struct wsd_exec_proc *p, int sig);

/* Reap the program once it has exited (call when the tree is gone); no-op otherwise. */
void wsd_exec_proc_reap(struct wsd_exec_proc *p);

/* Reap the program (after the tree is gone) and close every fd. Safe on a zeroed/closed one. */
void wsd_exec_proc_done(struct wsd_exec_proc *p);

#endif
