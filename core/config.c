/* SPDX-License-Identifier: MIT */
/* The WSD_* table: name, type, default, range and help, in one place. Values are parsed as whole
 * strings with range checks; a bad one is reported once and startup stops (exit 2). */
#include "core/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/listen.h"

enum config_type {
    CONFIG_UINT,  /* decimal integer in [min, max] */
    CONFIG_ENUM,  /* one of the names in choices, stored as its index */
    CONFIG_ADDR,  /* host:port, checked by wsd_listen_parse_addr */
    CONFIG_PATH,  /* an absolute path that fits a unix socket address, or empty */
    CONFIG_FILE,  /* a file path (checked when it is used), or empty */
    CONFIG_TEXT,  /* any text shorter than max bytes (checked when it is used) */
    CONFIG_SECRET, /* the admin token: stored as its SHA-256, never echoed in an error */
};

struct config_var {
    const char *name;
    enum config_type type;
    const char *def;
    uint64_t min, max;
    const char *const *choices; /* CONFIG_ENUM: NULL-terminated */
    size_t offset;
    const char *help;
    bool runtime; /* SIGHUP applies a new value (to new connections); others need a restart */
};

static const char *const log_levels[] = {"error", "warn", "notice", "info", "debug", NULL};
static const char *const handlers[] = {"echo", "test-stubborn", "exec", "test-probe", NULL};
static const char *const exec_stderr_modes[] = {"log", "pass", "null", NULL};
static const char *const tls_versions[] = {"1.2", "1.3", NULL};
static const char *const on_off[] = {"off", "on", NULL};
static const char *const sched_policies[] = {"other", "fifo", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

#define SECRET_MIN 16
#define SECRET_MAX 256

#define FIELD(f) offsetof(struct wsd_config, f)
#define RUNTIME true /* SIGHUP applies it */
#define RESTART false /* SIGHUP logs that it needs a restart (or a SIGUSR2 upgrade) */

static const struct config_var config_vars[] = {
    {"WSD_LISTEN", CONFIG_ADDR, "127.0.0.1:8080", 0, 0, NULL, FIELD(listen),
     "address to listen on: IPv4 host:port or [IPv6]:port; port 0 picks a free port", RESTART},
    {"WSD_TLS_LISTEN", CONFIG_ADDR, "", 0, 0, NULL, FIELD(tls_listen),
     "address for wss:// (TLS), next to or instead of WSD_LISTEN; empty = none", RESTART},
    {"WSD_TLS_CERT", CONFIG_FILE, "", 0, 0, NULL, FIELD(tls_cert),
     "PEM certificate (a chain may follow the leaf); required with WSD_TLS_LISTEN", RUNTIME},
    {"WSD_TLS_KEY", CONFIG_FILE, "", 0, 0, NULL, FIELD(tls_key),
     "PEM private key matching WSD_TLS_CERT; read only by the wsd-keyholder process",
     RUNTIME},
    {"WSD_TLS_MIN_VERSION", CONFIG_ENUM, "1.2", 0, 0, tls_versions, FIELD(tls_min_version),
     "oldest TLS version accepted", RUNTIME},
    {"WSD_HANDLER", CONFIG_ENUM, "echo", 0, 0, handlers, FIELD(handler),
     "what a worker does with messages: echo sends each one back; exec runs a program",
     RESTART},
    {"WSD_EXEC", CONFIG_TEXT, "", 0, 4096, NULL, FIELD(exec),
     "exec: the program and its arguments, split like a shell splits words (no shell runs)",
     RESTART},
    {"WSD_EXEC_DIR", CONFIG_FILE, "", 0, 0, NULL, FIELD(exec_dir),
     "exec: a directory; /name runs its executable 'name' (404 if there is none)", RESTART},
    {"WSD_EXEC_BINARY", CONFIG_UINT, "0", 0, 1, NULL, FIELD(exec_binary),
     "exec: 0 = each line is a text message; 1 = raw bytes as binary messages", RESTART},
    {"WSD_EXEC_STDERR", CONFIG_ENUM, "log", 0, 0, exec_stderr_modes, FIELD(exec_stderr),
     "exec: the program's stderr goes to wsd's log, to wsd's stderr as is, or nowhere", RESTART},
    {"WSD_EXEC_PASSENV", CONFIG_TEXT, "PATH", 0, 1024, NULL, FIELD(exec_passenv),
     "exec: names of wsd's own variables the program also gets (comma or space separated)",
     RESTART},
    {"WSD_EXEC_BUFFER", CONFIG_UINT, "262144", 4096, 67108864, NULL, FIELD(exec_buffer),
     "exec: bytes buffered each way before the faster side is paused", RESTART},
    {"WSD_USER", CONFIG_TEXT, "", 0, 64, NULL, FIELD(user),
     "exec: the user programs run as; empty = nobody when wsd runs as root, else wsd's user",
     RESTART},
    {"WSD_EXEC_RLIMIT_AS", CONFIG_UINT, "4294967296", 0, 1ull << 44, NULL,
     FIELD(exec_rlimit_as), "exec: address space of each program in bytes; 0 = no limit", RESTART},
    {"WSD_EXEC_RLIMIT_NOFILE", CONFIG_UINT, "1024", 0, 20000, NULL, FIELD(exec_rlimit_nofile),
     "exec: open files of each program; 0 = as inherited", RESTART},
    {"WSD_EXEC_RLIMIT_NPROC", CONFIG_UINT, "0", 0, 4194304, NULL, FIELD(exec_rlimit_nproc),
     "exec: processes of the WSD_USER user, all connections together; 0 = no limit", RESTART},
    {"WSD_EXEC_RLIMIT_CPU", CONFIG_UINT, "0", 0, 31536000, NULL, FIELD(exec_rlimit_cpu),
     "exec: CPU seconds of each program (then SIGXCPU, SIGKILL); 0 = no limit", RESTART},
    {"WSD_SANDBOX", CONFIG_ENUM, "on", 0, 0, on_off, FIELD(sandbox),
     "workers get no_new_privs, Landlock and (WSD_SECCOMP) a seccomp filter", RESTART},
    {"WSD_SECCOMP", CONFIG_ENUM, "on", 0, 0, on_off, FIELD(seccomp),
     "with WSD_SANDBOX=on: the seccomp filter, loaded once and inherited by every worker", RESTART},
    {"WSD_SUPERVISOR_SCHED", CONFIG_ENUM, "fifo", 0, 0, sched_policies, FIELD(supervisor_fifo),
     "fifo: the supervisor runs at SCHED_FIFO 1 (its children do not), so that terminations "
     "go out ahead of the workers' load; other: the default time-sharing policy", RESTART},
    {"WSD_POOL_MIN", CONFIG_UINT, "4", 0, 1000, NULL, FIELD(pool_min),
     "idle worker processes kept ready", RUNTIME},
    {"WSD_MAX_CONNS", CONFIG_UINT, "10000", 1, 19000, NULL, FIELD(max_conns),
     "live connections; beyond it handshakes get 503", RESTART},
    {"WSD_MAX_MESSAGE", CONFIG_UINT, "1048576", 125, 1073741824, NULL, FIELD(max_message),
     "bytes in one message (all fragments); beyond it the connection closes with 1009", RUNTIME},
    {"WSD_MAX_FRAGMENTS", CONFIG_UINT, "65536", 1, 16777216, NULL, FIELD(max_fragments),
     "frames in one message; beyond it the connection closes with 1009", RUNTIME},
    {"WSD_DEFLATE", CONFIG_ENUM, "on", 0, 0, on_off, FIELD(deflate),
     "on: accept a permessage-deflate offer (RFC 7692); off: never compress", RUNTIME},
    {"WSD_MAX_HEADER_BYTES", CONFIG_UINT, "8192", 1024, 65536, NULL, FIELD(max_header_bytes),
     "bytes of the upgrade request; beyond it the answer is 431", RESTART},
    {"WSD_HANDSHAKE_TIMEOUT_MS", CONFIG_UINT, "10000", 100, 600000, NULL,
     FIELD(handshake_timeout_ms), "time for a client to send its whole upgrade request; then 408",
     RESTART},
    {"WSD_CLOSE_TIMEOUT_MS", CONFIG_UINT, "5000", 10, 600000, NULL, FIELD(close_timeout_ms),
     "after sending a close frame, how long to wait for the client's", RUNTIME},
    {"WSD_SHUTDOWN_GRACE_MS", CONFIG_UINT, "5000", 0, 600000, NULL, FIELD(shutdown_grace_ms),
     "on SIGTERM/SIGINT, how long workers may take to close before SIGKILL", RUNTIME},
    {"WSD_KILL_GRACE_MS", CONFIG_UINT, "3000", 0, 600000, NULL, FIELD(kill_grace_ms),
     "after SIGTERM to a worker, how long before SIGKILL", RUNTIME},
    {"WSD_PING_INTERVAL_MS", CONFIG_UINT, "30000", 0, 3600000, NULL, FIELD(ping_interval_ms),
     "ping each client this often; 0 turns the heartbeat off", RESTART},
    {"WSD_PING_TIMEOUT_MS", CONFIG_UINT, "10000", 10, 600000, NULL, FIELD(ping_timeout_ms),
     "a client silent for interval + timeout is closed with 1001", RESTART},
    {"WSD_WORKER_REUSE", CONFIG_UINT, "1", 1, 1000000, NULL, FIELD(worker_reuse),
     "connections one worker serves, one after another, before it exits", RUNTIME},
    {"WSD_MAX_CONNS_PER_IP", CONFIG_UINT, "1024", 0, 1000000, NULL, FIELD(max_conns_per_ip),
     "live connections from one IP; beyond it 429; 0 = no cap", RESTART},
    {"WSD_ABUSE_LIMIT", CONFIG_UINT, "50", 0, 1000000, NULL, FIELD(abuse_limit),
     "protocol violations + refused handshakes from one IP per window before a ban; 0 = off",
     RUNTIME},
    {"WSD_ABUSE_WINDOW_MS", CONFIG_UINT, "60000", 100, 86400000, NULL, FIELD(abuse_window_ms),
     "the window WSD_ABUSE_LIMIT counts in", RUNTIME},
    {"WSD_ABUSE_BAN_MS", CONFIG_UINT, "60000", 100, 86400000, NULL, FIELD(abuse_ban_ms),
     "how long a banned IP's handshakes get 429", RUNTIME},
    {"WSD_CONTROL_SOCKET", CONFIG_PATH, "", 0, 0, NULL, FIELD(control_socket),
     "wsctl's unix socket (mode 0600); empty = ${XDG_RUNTIME_DIR:-/run}/wsd-PORT.sock", RESTART},
    {"WSD_DRAIN_TIMEOUT_MS", CONFIG_UINT, "60000", 0, 86400000, NULL, FIELD(drain_timeout_ms),
     "after a SIGUSR2 upgrade, how long the old generation's connections may run before 1001",
     RUNTIME},
    {"WSD_UPGRADE_TIMEOUT_MS", CONFIG_UINT, "10000", 100, 600000, NULL,
     FIELD(upgrade_timeout_ms),
     "on SIGUSR2, how long the new generation may take to be ready before it is killed", RUNTIME},
    {"WSD_ENV_FILE", CONFIG_FILE, "", 0, 0, NULL, FIELD(env_file),
     "KEY=VALUE lines of WSD_ variables, read at startup and on SIGHUP; they override the "
     "environment", RESTART},
    {"WSD_LOG_LEVEL", CONFIG_ENUM, "info", 0, 0, log_levels, FIELD(log_level),
     "error, warn, notice, info (one line per connection open and close) or debug", RUNTIME},
    {"WSD_LOG_FORMAT", CONFIG_ENUM, "text", 0, 0, log_formats, FIELD(log_format),
     "text: key=value lines; json: one JSON object per line, same fields", RESTART},
    {"WSD_METRICS_LISTEN", CONFIG_ADDR, "", 0, 0, NULL, FIELD(metrics_listen),
     "address for Prometheus /metrics and the live dashboard (HTTP); empty = none", RESTART},
    {"WSD_ADMIN_TOKEN", CONFIG_SECRET, "", SECRET_MIN, SECRET_MAX, NULL,
     FIELD(admin_token_sha256),
     "bearer token that lets the dashboard end connections; empty = the dashboard is read-only",
     RESTART},
};

#define CONFIG_COUNT (sizeof(config_vars) / sizeof(config_vars[0]))

size_t wsd_config_count(void)
{
    return CONFIG_COUNT;
}

const char *wsd_config_name(size_t i)
{
    return i < CONFIG_COUNT ? config_vars[i].name : NULL;
}

static bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *ret = v;
    return true;
}

static bool parse_enum(const char *s, const char *const *choices, uint64_t *ret)
{
    for (uint64_t i = 0; choices[i]; i++)
        if (strcmp(s, choices[i]) == 0) {
            *ret = i;
            return true;
        }
    return false;
}

static void describe_allowed(const struct config_var *v, char *out, size_t cap)
{
    size_t n = 0;
    switch (v->type) {
    case CONFIG_UINT:
        snprintf(out, cap, "an integer from %" PRIu64 " to %" PRIu64, v->min, v->max);
        break;
    case CONFIG_ENUM:
        n = (size_t)snprintf(out, cap, "one of:");
        for (size_t i = 0; v->choices[i] && n < cap; i++)
            n += (size_t)snprintf(out + n, cap - n, " %s", v->choices[i]);
        break;
    case CONFIG_ADDR:
        snprintf(out, cap, "host:port with a numeric IPv4 host, or [IPv6]:port, port 0-65535, "
                           "or empty for none");
        break;
    case CONFIG_FILE:
        snprintf(out, cap, "a file path of at most 255 bytes, or empty");
        break;
    case CONFIG_PATH:
        snprintf(out, cap, "an absolute path of at most 107 bytes, or empty");
        break;
    case CONFIG_TEXT:
        snprintf(out, cap, "text of at most %" PRIu64 " bytes", v->max - 1);
        break;
    case CONFIG_SECRET:
        snprintf(out, cap, "empty, or %" PRIu64 " to %" PRIu64 " characters of A-Z a-z 0-9 "
                           "- . _ ~ + / (then = padding only)",
                 v->min, v->max);
        break;
    }
}

static bool parse_value(const struct config_var *v, const char *s, struct wsd_config *cfg)
{
    void *field = (char *)cfg + v->offset;
    switch (v->type) {
    case CONFIG_UINT:
        return parse_uint(s, v->min, v->max, field);
    case CONFIG_ENUM:
        return parse_enum(s, v->choices, field);
    case CONFIG_ADDR: {
        struct sockaddr_storage ss;
        if (strlen(s) >= sizeof(cfg->listen) || (*s && wsd_listen_parse_addr(s, &ss) < 0))
            return false;
        strcpy(field, s);
        return true;
    }
    case CONFIG_FILE:
        if (strlen(s) >= sizeof(cfg->tls_cert))
            return false;
        strcpy(field, s);
        return true;
    case CONFIG_PATH:
        if (strlen(s) >= sizeof(cfg->control_socket) || (*s != '\0' && *s != '/'))
            return false;
        strcpy(field, s);
        return true;
    case CONFIG_TEXT: /* max is the field's size */
        if (strlen(s) >= v->max)
            return false;
        strcpy(field, s);
        return true;
    case CONFIG_SECRET: {
        size_t n = strlen(s);
        if (n == 0)
            return true;
        if (n < v->min || n > v->max || !wsd_secret_is_token(s, n))
            return false;
        wsd_secret_hash(s, n, field);
        cfg->admin_token_set = 1;
        return true;
    }
    }
    return false;
}

#define ENV_FILE_MAX 65536

/* The value each variable takes: the environment's, or the built-in default. */
static void values_from_env(const char *values[CONFIG_COUNT], bool from_env[CONFIG_COUNT])
{
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        values[i] = secure_getenv(config_vars[i].name);
        from_env[i] = values[i] != NULL;
        if (!from_env[i])
            values[i] = config_vars[i].def;
    }
}

static const struct config_var *find_var(const char *name, size_t *ret_i)
{
    for (size_t i = 0; i < CONFIG_COUNT; i++)
        if (strcmp(config_vars[i].name, name) == 0) {
            *ret_i = i;
            return &config_vars[i];
        }
    return NULL;
}

/* Read WSD_ENV_FILE into buf (NUL-terminated) and point values[] at its KEY=VALUE lines, which
 * override the environment. Blank lines and # comments are skipped; a value may be quoted
 * with "" or ''. Returns 0, or -EINVAL with one line in why. */
static int values_from_file(const char *path, char *buf, size_t cap,
                            const char *values[CONFIG_COUNT], bool from_env[CONFIG_COUNT],
                            char *why, size_t why_cap)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, why_cap, "invalid WSD_ENV_FILE=\"%s\": %s: expected a readable file of "
                 "KEY=VALUE lines", path, strerror(errno));
        return -EINVAL;
    }
    size_t n = fread(buf, 1, cap - 1, f);
    bool too_big = n == cap - 1 && fgetc(f) != EOF;
    fclose(f);
    if (too_big) {
        snprintf(why, why_cap, "invalid WSD_ENV_FILE=\"%s\": over %zu bytes: expected a small "
                 "file of KEY=VALUE lines", path, cap - 1);
        return -EINVAL;
    }
    buf[n] = '\0';
    unsigned lineno = 0;
    for (char *line = buf, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        while (*line == ' ' || *line == '\t')
            line++, len--;
        if (len == 0 || *line == '#')
            continue;
        char *eq = strchr(line, '=');
        size_t i;
        const struct config_var *v = NULL;
        if (eq) {
            *eq = '\0';
            v = find_var(line, &i);
        }
        if (!v || v->offset == FIELD(env_file)) {
            snprintf(why, why_cap, "invalid WSD_ENV_FILE=\"%s\": line %u: \"%s\": expected "
                     "WSD_NAME=value with a variable from wsd --help (not WSD_ENV_FILE)", path,
                     lineno, line);
            return -EINVAL;
        }
        char *val = eq + 1;
        size_t vlen = strlen(val);
        if (vlen >= 2 && (val[0] == '"' || val[0] == '\'') && val[vlen - 1] == val[0]) {
            val[vlen - 1] = '\0';
            val++;
        }
        values[i] = val;
        from_env[i] = true;
    }
    return 0;
}

/* Parse every value into *ret. Returns 0, or -EINVAL with one line in why. */
static int load(struct wsd_config *ret, char *why, size_t why_cap)
{
    const char *values[CONFIG_COUNT];
    bool from_env[CONFIG_COUNT];
    values_from_env(values, from_env);
    static char file_buf[ENV_FILE_MAX + 1]; /* values[] point into it until load returns */
    size_t ef = 0; /* WSD_ENV_FILE is in the table: find_var sets it */
    find_var("WSD_ENV_FILE", &ef);
    int r = 0;
    if (values[ef][0])
        r = values_from_file(values[ef], file_buf, sizeof(file_buf), values, from_env, why,
                             why_cap);
    struct wsd_config cfg = {0};
    for (size_t i = 0; i < CONFIG_COUNT && r == 0; i++) {
        const struct config_var *v = &config_vars[i];
        if (!parse_value(v, values[i], &cfg)) {
            char allowed[256];
            describe_allowed(v, allowed, sizeof(allowed));
            if (v->type == CONFIG_SECRET) /* a secret is never printed, even a wrong one */
                snprintf(why, why_cap, "invalid %s (%zu bytes, value not shown): expected %s",
                         v->name, strlen(values[i]), allowed);
            else
                snprintf(why, why_cap, "invalid %s=\"%s\"%s: expected %s", v->name, values[i],
                         from_env[i] ? "" : " (built-in default)", allowed);
            r = -EINVAL;
        }
    }
    /* The file may hold WSD_ADMIN_TOKEN: no copy of its text stays in memory that every
     * worker forked later would inherit. */
    explicit_bzero(file_buf, sizeof(file_buf));
    if (r == 0)
        *ret = cfg;
    explicit_bzero(&cfg, sizeof(cfg));
    return r;
}

int wsd_config_load(struct wsd_config *ret, FILE *err_out)
{
    char why[768];
    int r = load(ret, why, sizeof(why));
    if (r < 0)
        fprintf(err_out, "wsd: %s\n", why);
    return r;
}

/* A field's value as text, for the reload log. */
static void format_value(const struct config_var *v, const struct wsd_config *cfg, char *out,
                         size_t cap)
{
    const void *field = (const char *)cfg + v->offset;
    switch (v->type) {
    case CONFIG_UINT:
        snprintf(out, cap, "%" PRIu64, *(const uint64_t *)field);
        break;
    case CONFIG_ENUM:
        snprintf(out, cap, "%s", v->choices[*(const uint64_t *)field]);
        break;
    case CONFIG_SECRET: /* never the token, nor its hash */
        snprintf(out, cap, "%s", cfg->admin_token_set ? "(set)" : "(empty)");
        break;
    default:
        snprintf(out, cap, "%s", (const char *)field);
        break;
    }
}

static size_t field_size(const struct config_var *v)
{
    switch (v->type) {
    case CONFIG_UINT:
    case CONFIG_ENUM:
        return sizeof(uint64_t);
    case CONFIG_ADDR:
        return sizeof(((struct wsd_config *)0)->listen);
    case CONFIG_PATH:
        return sizeof(((struct wsd_config *)0)->control_socket);
    case CONFIG_FILE:
        return sizeof(((struct wsd_config *)0)->tls_cert);
    case CONFIG_SECRET:
        return sizeof(((struct wsd_config *)0)->admin_token_sha256);
    case CONFIG_TEXT: /* max is the field's size */
        return v->max;
    }
    return 0;
}

int wsd_config_reload(const struct wsd_config *cur, struct wsd_config *ret,
                      wsd_config_change_cb report, void *userdata, char *why, size_t why_cap)
{
    struct wsd_config fresh, next = *cur;
    int r = load(&fresh, why, why_cap);
    if (r < 0)
        return r;
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        const struct config_var *v = &config_vars[i];
        char was[256], now[256];
        format_value(v, cur, was, sizeof(was));
        format_value(v, &fresh, now, sizeof(now));
        bool changed = strcmp(was, now) != 0;
        if (v->type == CONFIG_SECRET && !changed) { /* both set: compare what is kept */
            changed = memcmp((const char *)cur + v->offset, (const char *)&fresh + v->offset,
                             field_size(v)) != 0;
            snprintf(now, sizeof(now), "(another token)");
        }
        if (!changed)
            continue;
        if (v->runtime)
            memcpy((char *)&next + v->offset, (const char *)&fresh + v->offset, field_size(v));
        report(v->name, was, now, v->runtime, userdata);
    }
    *ret = next;
    explicit_bzero(&fresh, sizeof(fresh));
    return 0;
}

bool wsd_config_is_runtime(size_t i)
{
    return i < CONFIG_COUNT && config_vars[i].runtime;
}

const char *wsd_config_runtime_dir(void)
{
    const char *d = secure_getenv("XDG_RUNTIME_DIR");
    return d && d[0] == '/' ? d : "/run";
}

int wsd_config_describe(size_t i, struct wsd_config_doc *ret)
{
    if (i >= CONFIG_COUNT)
        return -EINVAL;
    const struct config_var *v = &config_vars[i];
    ret->name = v->name;
    ret->def = v->def;
    ret->help = v->help;
    ret->runtime = v->runtime;
    describe_allowed(v, ret->allowed, sizeof(ret->allowed));
    return 0;
}

void wsd_config_print_help(FILE *out)
{
    fprintf(out, "Environment variables (all optional):\n");
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        const struct config_var *v = &config_vars[i];
        char allowed[256];
        describe_allowed(v, allowed, sizeof(allowed));
        fprintf(out, "  %-26s %s\n  %-26s default %s; %s\n", v->name, v->help, "", v->def,
                allowed);
    }
}
