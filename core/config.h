/* SPDX-License-Identifier: MIT */
/* Every WSD_* variable, read once at startup from one table into a const struct wsd_config.
 * Nothing else in wsd calls getenv. */
#ifndef WSD_CORE_CONFIG_H
#define WSD_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/secret.h"

enum wsd_handler {
    WSD_HANDLER_ECHO = 0,
    WSD_HANDLER_TEST_STUBBORN, /* tests only: ignores SIGTERM, and spins on a "spin" message */
    WSD_HANDLER_EXEC,          /* runs WSD_EXEC (or a program from WSD_EXEC_DIR) per connection */
    WSD_HANDLER_TEST_PROBE,    /* tests only: tries what the sandbox forbids, from a worker */
};

struct wsd_config {
    char listen[128];           /* WSD_LISTEN, "host:port" or "[v6]:port"; "" = no plain ws:// */
    char tls_listen[128];       /* WSD_TLS_LISTEN; "" = no wss:// */
    char tls_cert[256];         /* PEM certificate chain */
    char tls_key[256];          /* PEM private key */
    uint64_t tls_min_version;   /* 0: TLS 1.2, 1: TLS 1.3 */
    uint64_t pool_min;          /* idle workers kept ready */
    uint64_t max_conns;         /* live WebSocket connections, then 503 */
    uint64_t max_message;       /* bytes per message, then 1009 */
    uint64_t max_fragments;     /* frames per message, then 1009 */
    uint64_t deflate;           /* 1: accept permessage-deflate offers; 0: never */
    uint64_t max_header_bytes;  /* upgrade request bytes, then 431 */
    uint64_t handshake_timeout_ms;
    uint64_t close_timeout_ms;  /* wait for the peer's close frame after ours */
    uint64_t shutdown_grace_ms; /* SIGTERM to workers, then SIGKILL after this */
    uint64_t kill_grace_ms;     /* a terminated worker still alive then gets SIGKILL */
    uint64_t ping_interval_ms;  /* 0 = no heartbeat */
    uint64_t ping_timeout_ms;
    uint64_t worker_reuse;      /* connections one worker serves before it exits */
    uint64_t abuse_limit;       /* violations + refused handshakes per IP per window; 0 = off */
    uint64_t abuse_window_ms;
    uint64_t abuse_ban_ms;
    uint64_t max_conns_per_ip;  /* 0 = no cap */
    char control_socket[108];   /* empty: ${XDG_RUNTIME_DIR:-/run}/wsd-PORT.sock */
    uint64_t drain_timeout_ms;  /* SIGUSR2: the old generation's connections may run this long */
    uint64_t upgrade_timeout_ms; /* SIGUSR2: the new generation must be ready within this */
    char env_file[256];         /* WSD_ENV_FILE: KEY=VALUE lines over the environment */
    uint64_t log_level;         /* enum wsd_log_level */
    uint64_t log_format;        /* enum wsd_log_format */
    char metrics_listen[128];   /* WSD_METRICS_LISTEN; "" = no metrics/dashboard listener */
    /* WSD_ADMIN_TOKEN: only its SHA-256 is kept (core/secret.h); all zero and admin_token_set
     * 0 when it is unset, and the dashboard is read-only. */
    uint8_t admin_token_sha256[WSD_SECRET_HASH_LEN];
    uint64_t admin_token_set;
    uint64_t handler;           /* enum wsd_handler */
    char exec[4096];            /* WSD_EXEC: program and arguments, split like a shell */
    char exec_dir[256];         /* WSD_EXEC_DIR: /name runs exec_dir/name */
    uint64_t exec_binary;       /* 1: raw bytes as binary messages; 0: text lines */
    uint64_t exec_stderr;       /* enum wsd_exec_stderr */
    char exec_passenv[1024];    /* names of wsd's variables a program gets */
    uint64_t exec_buffer;       /* bytes buffered each way before the other side pauses */
    char user[64];              /* WSD_USER: programs run as this user */
    uint64_t exec_rlimit_as, exec_rlimit_nofile, exec_rlimit_nproc, exec_rlimit_cpu;
    uint64_t sandbox;           /* 1: workers get no_new_privs, Landlock and seccomp */
    uint64_t supervisor_fifo;   /* 1: the supervisor runs at SCHED_FIFO 1, its children not */
    uint64_t seccomp;           /* 1: the seccomp filter (with sandbox on) */
};

/* Fill *ret from the environment. On a bad value, write one line naming the variable, the
 * value and what is allowed to err_out and return -EINVAL. */
int wsd_config_load(struct wsd_config *ret, FILE *err_out);

/* Called by wsd_config_reload for each variable whose value changed; applied is false for
 * the ones that need a restart (they keep the old value). */
typedef void (*wsd_config_change_cb)(const char *name, const char *was, const char *now,
                                     bool applied, void *userdata);

/* SIGHUP: read the environment and WSD_ENV_FILE again into *ret, a copy of *cur in which the
 * variables that can change at run time take their new values. Returns 0 after calling report
 * for every change, or -EINVAL with one line in why (no value is applied then). */
int wsd_config_reload(const struct wsd_config *cur, struct wsd_config *ret,
                      wsd_config_change_cb report, void *userdata, char *why, size_t why_cap);

/* True if SIGHUP applies the i-th variable (see wsd_config_name). */
bool wsd_config_is_runtime(size_t i);

/* Where per-user runtime files go: $XDG_RUNTIME_DIR, or /run. */
const char *wsd_config_runtime_dir(void);

/* Print every variable with its default, range and meaning (wsd --help). */
void wsd_config_print_help(FILE *out);

/* One variable's documentation, for the man page (wsd --help-man). */
struct wsd_config_doc {
    const char *name, *def, *help;
    bool runtime;       /* SIGHUP applies a new value */
    char allowed[256];  /* "an integer from 0 to 1000", "one of: on off", ... */
};

/* Fill *ret for the i-th variable. Returns 0, or -EINVAL past the end of the table. */
int wsd_config_describe(size_t i, struct wsd_config_doc *ret);

/* The number of variables in the table, and the i-th name (for tests and docs). */
size_t wsd_config_count(void);
const char *wsd_config_name(size_t i);

#endif
