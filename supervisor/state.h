/* SPDX-License-Identifier: MIT */
/* The supervisor's state, shared by its files: the loop (supervisor.c), the termination ladder
 * (terminate.c), the detectors (detect_*.c) and the control socket (control.c). One process,
 * one thread: nothing here is locked. */
#ifndef WSD_SUPERVISOR_STATE_H
#define WSD_SUPERVISOR_STATE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/iptable.h"
#include "core/loop.h"
#include "supervisor/activation.h"
#include "supervisor/notify.h"
#include "core/shared.h"
#include "supervisor/metrics.h"
#include "supervisor/pool.h"

struct wsd_shared;
struct wsd_control;
struct wsd_upgrade;
struct wsd_acceptor_msg;

enum wsd_tag {
    WSD_TAG_SIGNAL = 1,
    WSD_TAG_REPORT,       /* one-shot: re-armed by the report timer (supervisor.c) */
    WSD_TAG_REPORT_TIMER,
    WSD_TAG_DISPATCH,
    WSD_TAG_TICK,
    WSD_TAG_ACCEPTOR,
    WSD_TAG_WORKER,
    WSD_TAG_ACCEPTOR_CTL,
    WSD_TAG_CONTROL,        /* the control socket's listener */
    WSD_TAG_CONTROL_CLIENT, /* a wsctl connection; slot = client index */
    WSD_TAG_TEMPLATE,       /* the worker template's pidfd */
    WSD_TAG_UPGRADE_CHILD,  /* SIGUSR2: the new generation's pidfd */
    WSD_TAG_UPGRADE_READY,  /* SIGUSR2: the pipe on which it says it is ready */
    WSD_TAG_KEYHOLDER,      /* slot = index in keyholders[] */
    WSD_TAG_METRICS,        /* the wsd-metrics process's pidfd */
};

/* A keyholder generation: the current one, and older ones still serving their workers. */
#define WSD_KEYHOLDERS_MAX 16
#define WSD_ACCEPTOR_QUEUE 64 /* CLOSED notices sent together */
struct wsd_keyholder {
    int pidfd; /* -1: free slot */
    pid_t pid;
};

/* The wsd-metrics process (metrics_child.c); listen_fd < 0 without WSD_METRICS_LISTEN. */
struct wsd_metrics_child {
    int listen_fd, pidfd;
    pid_t pid;
    uint64_t started_ms, restart_at_ms;
};

struct wsd_totals {
    uint64_t kills;       /* terminations requested (any cause) */
    uint64_t escalations; /* SIGKILL after the grace */
    uint64_t closed;      /* connections ended */
    uint64_t closed_by_cause[WSD_CAUSE_COUNT];
    uint64_t violations;  /* connections ended by wsd for 1002/1007/1009 */
    uint64_t bans;
    uint64_t strays_reaped; /* children no wsd process accounted for (strays.c) */
    uint64_t tls_failed;                       /* wss:// TLS handshakes that failed */
    uint64_t tls_refused[WSD_HS_FAIL_COUNT];   /* bad requests answered through TLS */
};

struct supervisor {
    const struct wsd_config *cfg; /* = &config */
    struct wsd_config config;     /* changed only by SIGHUP (reload.c) */
    pid_t self;
    int ep, sig_fd, tick_fd, listen_fd, tls_listen_fd, dispatch_w, report_r, ctl_s, ctl_a;
    int report_timer_fd; /* paces the reading of report_r under load (supervisor.c) */
    struct wsd_tls_ctx *tls; /* NULL without WSD_TLS_LISTEN; replaced on SIGHUP */
    struct wsd_keyholder keyholders[WSD_KEYHOLDERS_MAX];
    int keyholder_current; /* index, or -1 */
    uint32_t tls_gen;      /* bumped by every certificate reload */
    bool watching;         /* the event loop exists: keyholder pidfds are watched in it */
    bool dispatch_watched; /* the dispatch queue is in the epoll set (only while none is idle) */
    struct wsd_shared *shared;
    struct wsd_pool pool;
    uint64_t cookie_seed;
    int acceptor_pidfd;
    pid_t acceptor_pid;
    int template_chan, template_pidfd; /* the worker template (template.c); -1 = none yet */
    pid_t template_pid;
    uint64_t acceptor_started_ms, acceptor_restart_at_ms;
    uint64_t spawn_blocked_until_ms;
    uint32_t idle_failures;
    bool stopping, killed;
    uint64_t stop_deadline_ms;
    uint64_t last_scan_ms, last_sweep_ms;
    /* A worker died by a signal, or a stray was signalled and is not reaped yet: the tick
     * sweeps (strays.c). */
    bool strays_pending;
    /* The earliest SIGKILL deadline a worker on the ladder may have (UINT64_MAX: none), so the
     * tick scans the worker table for escalation only when one may be due. */
    uint64_t next_escalation_ms;
    int exit_status;
    struct wsd_iptable abuse; /* count: events in the window since since_ms; until_ms: ban */
    struct wsd_control *control;
    struct wsd_totals totals;
    struct wsd_inherited inherited; /* sockets passed in at exec (systemd, or SIGUSR2) */
    struct wsd_notify notify;
    struct wsd_upgrade *upgrade; /* upgrade.c's state */
    bool draining;               /* a new generation took over: serve what is open, then exit */
    uint64_t drain_deadline_ms;
    struct wsd_metrics metrics;
    struct wsd_metrics_child metrics_child;
    /* CLOSED notices not sent to the acceptor yet (acceptor_tell.c) */
    struct wsd_acceptor_msg acceptor_queue[WSD_ACCEPTOR_QUEUE];
    uint32_t acceptor_queued;
};

int wsd_supervisor_watch(struct supervisor *s, int fd, enum wsd_tag tag, uint32_t slot,
                         uint32_t events);
/* setup.c: the supervisor's start. The tick paces deadlines, retries and the watchdog. */
#define WSD_SUPERVISOR_TICK_MS 250
#define WSD_REPORT_COALESCE_US 1000 /* supervisor.c: how long reports may wait under load */
int wsd_supervisor_check_fd_limit(const struct wsd_config *cfg);
int wsd_supervisor_setup(struct supervisor *s);
/* acceptor_proc.c: start the acceptor; reap it, and schedule its restart unless it cannot
 * accept at all. A crash-looping one restarts at most once per WSD_ACCEPTOR_RESTART_MS. */
#define WSD_ACCEPTOR_RESTART_MS 1000
void wsd_acceptor_start(struct supervisor *s);
void wsd_acceptor_exited(struct supervisor *s);
void wsd_supervisor_begin_stop(struct supervisor *s, const char *why);
/* Send m to the acceptor, if one runs (a restarted one starts from the supervisor's tables).
 * Blocks briefly on a full socket rather than lose it: a lost CLOSED would count a connection
 * as live for ever, a lost BAN would let the IP in. A CLOSED waits in a queue until
 * wsd_acceptor_flush(), which the loop calls at the end of each turn; any other message sends
 * the queue first. */
void wsd_acceptor_tell(struct supervisor *s, const struct wsd_acceptor_msg *m);
void wsd_acceptor_flush(struct supervisor *s);
/* True if a handshake waits in the dispatch queue for a worker. */
bool wsd_supervisor_dispatch_pending(void);

/* terminate.c: the one ladder. SIGTERM carrying (conn id, code) + SIGCONT, then SIGKILL after
 * WSD_KILL_GRACE_MS; force goes straight to SIGKILL. Returns 0, or -ESRCH if w serves no
 * connection. */
int wsd_terminate(struct supervisor *s, struct wsd_worker *w, enum wsd_cause cause,
                  uint16_t code, const char *reason, bool force);
/* SIGKILL every termination whose grace has passed. */
void wsd_terminate_escalate(struct supervisor *s, uint64_t now_ms);
/* A connection ended (DONE report, or its worker reaped while busy: si != NULL). Logs the
 * termination line if wsd ended it or it crashed, and tells the acceptor and the detectors. */
void wsd_conn_ended(struct supervisor *s, struct wsd_worker *w, uint16_t code, int closed_by,
                    const siginfo_t *si);
const char *wsd_cause_name(enum wsd_cause c);

/* strays.c: SIGKILL and reap the supervisor's children that no wsd process accounts for: what
 * an exec program started, adopted when its worker died abruptly, and what a compromised worker
 * started. Runs every WSD_STRAYS_SWEEP_MS, and at the next tick while strays_pending. The
 * kernel takes about 0.65 µs per child to list them (3.2 ms with 5,000 workers), time in which
 * the real-time supervisor answers nothing: hence not every second. */
#define WSD_STRAYS_SWEEP_MS 5000
void wsd_strays_sweep(struct supervisor *s);

/* detect_abuse.c: count a violation or refused handshake from ip; past the limit, ban it. */
void wsd_abuse_record(struct supervisor *s, const struct wsd_ip *ip);

/* detect_heartbeat.c: terminate busy workers that stopped making progress. */
void wsd_heartbeat_scan(struct supervisor *s, uint64_t now_ms);

/* certs.c: load the TLS certificate and start the keyholder at startup (exit 2 on a bad pair),
 * reload both on SIGHUP (a bad new pair is refused and the old one stays), and recycle the
 * idle pool so new connections get the new pair. */
int wsd_certs_load(struct supervisor *s);
int wsd_certs_reload(struct supervisor *s); /* 0, or -1 if a new certificate was refused */
/* Watch the keyholders' pidfds once the event loop exists. */
int wsd_certs_watch(struct supervisor *s);
/* A keyholder's pidfd is readable: reap it; restart the current one if it died. */
void wsd_certs_keyholder_exit(struct supervisor *s, uint32_t slot);
/* Ask a worker of an older certificate generation to leave once it is idle. */
void wsd_certs_retire(struct supervisor *s, struct wsd_worker *w);
/* At shutdown: drop the supervisor's channel end so keyholders leave with the last worker. */
void wsd_certs_stop(struct supervisor *s);
/* Keyholders still running. */
unsigned wsd_certs_keyholders_live(const struct supervisor *s);

/* reload.c: SIGHUP. */
void wsd_reload(struct supervisor *s);

/* metrics_child.c: open WSD_METRICS_LISTEN at startup (logging where; 0 or -errno), start
 * the wsd-metrics process, reap and restart it, and signal it when wsd stops (SIGTERM also
 * closes the listener). */
int wsd_metrics_child_open(struct supervisor *s);
void wsd_metrics_child_start(struct supervisor *s);
void wsd_metrics_child_exited(struct supervisor *s);
void wsd_metrics_child_tick(struct supervisor *s, uint64_t now_ms);
void wsd_metrics_child_stop(struct supervisor *s, int sig);

/* control.c: the wsctl socket. */
int wsd_control_open(struct supervisor *s, const char *listen_addr);
void wsd_control_handle(struct supervisor *s, enum wsd_tag tag, uint32_t slot, uint32_t events);
void wsd_control_close(struct supervisor *s);
/* The listening socket, to pass to a new generation on SIGUSR2 (-1 if none). */
int wsd_control_listen_fd(const struct supervisor *s);
/* Stop listening (the new generation took the socket) but leave its path alone; wsctl
 * requests already being answered finish. */
void wsd_control_hand_over(struct supervisor *s);

/* terminate.c: ask every idle worker to leave (busy ones ignore it). Returns how many were
 * asked. */
uint32_t wsd_terminate_idle(struct supervisor *s);

/* upgrade.c: SIGUSR2, zero-downtime upgrade (see upgrade.c). */
void wsd_upgrade_init(struct supervisor *s);
void wsd_upgrade_start(struct supervisor *s);
void wsd_upgrade_handle(struct supervisor *s, enum wsd_tag tag);
void wsd_upgrade_tick(struct supervisor *s, uint64_t now_ms);
/* Stopping: kill a new generation that is not ready yet. */
void wsd_upgrade_abort(struct supervisor *s);
/* True while a new generation runs that has not said READY (wsd waits to reap it). */
bool wsd_upgrade_is_starting(const struct supervisor *s);
/* The new generation's pid while it is our unreaped child, else 0. */
pid_t wsd_upgrade_child_pid(const struct supervisor *s);
void wsd_upgrade_done(struct supervisor *s);
/* In a new generation: tell the old one we are ready (no-op if not started by SIGUSR2). */
void wsd_upgrade_report_ready(struct supervisor *s);
/* Serve the wsd-metrics process on fd (one end of a stream socketpair; control.c owns it from
 * now on and closes it on EOF or when another is adopted). Returns 0 or -errno. */
int wsd_control_adopt(struct supervisor *s, int fd);

#endif
