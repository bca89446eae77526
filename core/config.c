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
};

static const char *const log_levels[] = {"error", "warn", "notice", "info", "debug", NULL};
static const char *const handlers[] = {"echo", "test-stubborn", NULL};
static const char *const tls_versions[] = {"1.2", "1.3", NULL};
static const char *const on_off[] = {"off", "on", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

#define SECRET_MIN 16
#define SECRET_MAX 256

#define FIELD(f) offsetof(struct wsd_config, f)

static const struct config_var config_vars[] = {
    {"WSD_LISTEN", CONFIG_ADDR, "127.0.0.1:8080", 0, 0, NULL, FIELD(listen),
     "address to listen on: IPv4 host:port or [IPv6]:port; port 0 picks a free port"},
    {"WSD_TLS_LISTEN", CONFIG_ADDR, "", 0, 0, NULL, FIELD(tls_listen),
     "address for wss:// (TLS), next to or instead of WSD_LISTEN; empty = none"},
    {"WSD_TLS_CERT", CONFIG_FILE, "", 0, 0, NULL, FIELD(tls_cert),
     "PEM certificate (a chain may follow the leaf); required with WSD_TLS_LISTEN"},
    {"WSD_TLS_KEY", CONFIG_FILE, "", 0, 0, NULL, FIELD(tls_key),
     "PEM private key matching WSD_TLS_CERT; read once by the supervisor"},
    {"WSD_TLS_MIN_VERSION", CONFIG_ENUM, "1.2", 0, 0, tls_versions, FIELD(tls_min_version),
     "oldest TLS version accepted"},
    {"WSD_HANDLER", CONFIG_ENUM, "echo", 0, 0, handlers, FIELD(handler),
     "what a worker does with messages: echo sends each one back"},
    {"WSD_POOL_MIN", CONFIG_UINT, "4", 0, 1000, NULL, FIELD(pool_min),
     "idle worker processes kept ready"},
    {"WSD_MAX_CONNS", CONFIG_UINT, "10000", 1, 19000, NULL, FIELD(max_conns),
     "live connections; beyond it handshakes get 503"},
    {"WSD_MAX_MESSAGE", CONFIG_UINT, "1048576", 125, 1073741824, NULL, FIELD(max_message),
     "bytes in one message (all fragments); beyond it the connection closes with 1009"},
    {"WSD_MAX_FRAGMENTS", CONFIG_UINT, "65536", 1, 16777216, NULL, FIELD(max_fragments),
     "frames in one message; beyond it the connection closes with 1009"},
    {"WSD_DEFLATE", CONFIG_ENUM, "on", 0, 0, on_off, FIELD(deflate),
     "on: accept a permessage-deflate offer (RFC 7692); off: never compress"},
    {"WSD_MAX_HEADER_BYTES", CONFIG_UINT, "8192", 1024, 65536, NULL, FIELD(max_header_bytes),
     "bytes of the upgrade request; beyond it the answer is 431"},
    {"WSD_HANDSHAKE_TIMEOUT_MS", CONFIG_UINT, "10000", 100, 600000, NULL,
     FIELD(handshake_timeout_ms), "time for a client to send its whole upgrade request; then 408"},
    {"WSD_CLOSE_TIMEOUT_MS", CONFIG_UINT, "5000", 10, 600000, NULL, FIELD(close_timeout_ms),
     "after sending a close frame, how long to wait for the client's"},
    {"WSD_SHUTDOWN_GRACE_MS", CONFIG_UINT, "5000", 0, 600000, NULL, FIELD(shutdown_grace_ms),
     "on SIGTERM/SIGINT, how long workers may take to close before SIGKILL"},
    {"WSD_KILL_GRACE_MS", CONFIG_UINT, "3000", 0, 600000, NULL, FIELD(kill_grace_ms),
     "after SIGTERM to a worker, how long before SIGKILL"},
    {"WSD_PING_INTERVAL_MS", CONFIG_UINT, "30000", 0, 3600000, NULL, FIELD(ping_interval_ms),
     "ping each client this often; 0 turns the heartbeat off"},
    {"WSD_PING_TIMEOUT_MS", CONFIG_UINT, "10000", 10, 600000, NULL, FIELD(ping_timeout_ms),
     "a client silent for interval + timeout is closed with 1001"},
    {"WSD_WORKER_REUSE", CONFIG_UINT, "1", 1, 1000000, NULL, FIELD(worker_reuse),
     "connections one worker serves, one after another, before it exits"},
    {"WSD_MAX_CONNS_PER_IP", CONFIG_UINT, "1024", 0, 1000000, NULL, FIELD(max_conns_per_ip),
     "live connections from one IP; beyond it 429; 0 = no cap"},
    {"WSD_ABUSE_LIMIT", CONFIG_UINT, "50", 0, 1000000, NULL, FIELD(abuse_limit),
     "protocol violations + refused handshakes from one IP per window before a ban; 0 = off"},
    {"WSD_ABUSE_WINDOW_MS", CONFIG_UINT, "60000", 100, 86400000, NULL, FIELD(abuse_window_ms),
     "the window WSD_ABUSE_LIMIT counts in"},
    {"WSD_ABUSE_BAN_MS", CONFIG_UINT, "60000", 100, 86400000, NULL, FIELD(abuse_ban_ms),
     "how long a banned IP's handshakes get 429"},
    {"WSD_CONTROL_SOCKET", CONFIG_PATH, "", 0, 0, NULL, FIELD(control_socket),
     "wsctl's unix socket (mode 0600); empty = ${XDG_RUNTIME_DIR:-/run}/wsd-PORT.sock"},
    {"WSD_LOG_LEVEL", CONFIG_ENUM, "info", 0, 0, log_levels, FIELD(log_level),
     "error, warn, notice, info (one line per connection open and close) or debug"},
    {"WSD_LOG_FORMAT", CONFIG_ENUM, "text", 0, 0, log_formats, FIELD(log_format),
     "text: key=value lines; json: one JSON object per line, same fields"},
    {"WSD_METRICS_LISTEN", CONFIG_ADDR, "", 0, 0, NULL, FIELD(metrics_listen),
     "address for Prometheus /metrics and the live dashboard (HTTP); empty = none"},
    {"WSD_ADMIN_TOKEN", CONFIG_SECRET, "", SECRET_MIN, SECRET_MAX, NULL,
     FIELD(admin_token_sha256),
     "bearer token that lets the dashboard end connections; empty = the dashboard is read-only"},
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

int wsd_config_load(struct wsd_config *ret, FILE *err_out)
{
    struct wsd_config cfg = {0};
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        const struct config_var *v = &config_vars[i];
        const char *s = secure_getenv(v->name);
        bool from_env = s != NULL;
        if (!from_env)
            s = v->def;
        if (!parse_value(v, s, &cfg)) {
            char allowed[256];
            describe_allowed(v, allowed, sizeof(allowed));
            if (v->type == CONFIG_SECRET) /* a secret is never printed, even a wrong one */
                fprintf(err_out, "wsd: invalid %s (%zu bytes, value not shown): expected %s\n",
                        v->name, strlen(s), allowed);
            else
                fprintf(err_out, "wsd: invalid %s=\"%s\"%s: expected %s\n", v->name, s,
                        from_env ? "" : " (built-in default)", allowed);
            return -EINVAL;
        }
    }
    *ret = cfg;
    return 0;
}

const char *wsd_config_runtime_dir(void)
{
    const char *d = secure_getenv("XDG_RUNTIME_DIR");
    return d && d[0] == '/' ? d : "/run";
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
