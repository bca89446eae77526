/* SPDX-License-Identifier: MIT */
/* wsbench: command line, the hold mode's memory measurement, and the report (one human line
 * and one JSON line per run). The connections themselves live in engine.c. */
#include "bench/wsbench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench/engine.h"
#include "bench/procmem.h"
#include "bench/spawn_probe.h"
#include "bench/switch_probe.h"
#include "bench/tls_engine.h"

#define WSD_UNUSED(x) (void)(x)

static const char usage[] =
    "usage: wsbench MODE [options]\n"
    "  wsbench echo  --url ws://127.0.0.1:8080/ -c 100 -p 16 -s 32 -d 10 [--binary]\n"
    "  wsbench conn  -c 64 -d 10          handshakes/s: open, upgrade, close, repeat\n"
    "  wsbench churn -c 32 -d 10 [-s 32]   open, upgrade, one echo, close, repeat\n"
    "  wsbench hold  -n 10000 [--pids PID,...] [-d 10] [--settle 3]\n"
    "  wsbench kill  -n 1000 --control SOCKET [--code 1008] [--settle 3] [--warm]\n"
    "                open n connections, then have wsd close them one at a time through its\n"
    "                control socket; latency: kill request -> close frame at the client;\n"
    "                --warm: each first echoes one message (-s bytes), as one in use has\n"
    "  wsbench spawn -c 1 -d 2             no server: empty clone3 + exit + reap per second\n"
    "  wsbench switch -c 1000 -d 2 [--threads]  no server: one byte passed around a ring of c\n"
    "                processes (or threads) over pipes; time per hop (a wakeup and a switch)\n"
    "options: --url URL (ws://IPv4|localhost:PORT/path), -c conns, -p messages in flight per\n"
    "  connection, -s payload bytes, -d seconds, --binary, -n connections to hold,\n"
    "  --pids server pids (their descendants are included), --label TEXT (copied to JSON),\n"
    "  --timeout seconds per handshake and close (10), --batch connects in flight (256),\n"
    "  --settle seconds after the last connection opened before hold measures memory or kill\n"
    "  starts killing (3), --control wsd's control socket\n"
    "  (default $WSD_CONTROL_SOCKET), --code close code kill asks for (1008)\n"
    "  --tls (or a wss:// URL): TLS with wolfSSL (conn and echo; no certificate check),\n"
    "  --tls-version 1.2|1.3, --epoll: ws:// through the TLS engine's loop (the baseline\n"
    "  for a wss:// / ws:// ratio)\n"
    "exit status: 0 clean run, 1 connection errors or server-initiated closes, 2 protocol\n"
    "  error or echo mismatch (the run stops at once), 64 bad usage\n";

static const char *mode_name[] = {
    [WSB_MODE_CONN] = "conn",
    [WSB_MODE_ECHO] = "echo",
    [WSB_MODE_HOLD] = "hold",
    [WSB_MODE_CHURN] = "churn",
    [WSB_MODE_KILL] = "kill",
    [WSB_MODE_SPAWN] = "spawn",
    [WSB_MODE_SWITCH] = "switch",
};
#define MODE_COUNT (sizeof(mode_name) / sizeof(mode_name[0]))

/* The hold measurement: taken before the first connection and after the settle time. */
struct hold_mem {
    struct wsb_meminfo before, after;
    int64_t pss_before, pss_after, pte_before, pte_after, self_before, self_after;
    int procs_before, procs_after;
    bool measured;
};

static struct hold_mem hold_mem;

static void bad_usage(const char *what, const char *value)
{
    fprintf(stderr, "wsbench: %s '%s'\n%s", what, value ? value : "", usage);
    exit(64);
}

static double parse_num(const char *opt, const char *s, double min, double max)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "wsbench: %s '%s': expected a number in [%g, %g]\n", opt, s, min, max);
        exit(64);
    }
    return v;
}

static void parse_url(struct wsb_config *cfg)
{
    const char *u = cfg->url, *slash, *colon;
    char host[256];
    unsigned long port = 80;
    size_t hl;

    if (strncmp(u, "wss://", 6) == 0) {
        cfg->tls = true;
        port = 443;
        u += 6;
    } else if (strncmp(u, "ws://", 5) == 0) {
        u += 5;
    } else {
        bad_usage("only ws:// and wss:// URLs are supported:", u);
    }
    slash = strchr(u, '/');
    if (!slash)
        slash = u + strlen(u);
    colon = memchr(u, ':', (size_t)(slash - u));
    hl = (size_t)((colon ? colon : slash) - u);
    if (hl == 0 || hl >= sizeof(host))
        bad_usage("bad host in URL", cfg->url);
    memcpy(host, u, hl);
    host[hl] = '\0';
    if (colon) {
        char *end;
        port = strtoul(colon + 1, &end, 10);
        if (end != slash || port == 0 || port > 65535)
            bad_usage("bad port in URL", cfg->url);
    }
    cfg->addr.sin_family = AF_INET;
    cfg->addr.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        cfg->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &cfg->addr.sin_addr) != 1)
        bad_usage("the host must be an IPv4 address or localhost:", host);
    snprintf(cfg->host, sizeof(cfg->host), "%s:%lu", host, port);
    snprintf(cfg->path, sizeof(cfg->path), "%s", *slash ? slash : "/");
}

static void parse_pids(struct wsb_config *cfg, const char *s)
{
    char *copy = strdup(s), *save = NULL, *tok;

    if (!copy)
        exit(1);
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (cfg->npids == WSB_MAX_PIDS)
            bad_usage("too many pids:", s);
        cfg->pids[cfg->npids++] = (pid_t)parse_num("--pids", tok, 1, 4194304);
    }
    free(copy);
}

static void parse_args(struct wsb_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },    { "binary", no_argument, NULL, 'b' },
        { "pids", required_argument, NULL, 'P' },   { "label", required_argument, NULL, 'l' },
        { "timeout", required_argument, NULL, 'T' }, { "batch", required_argument, NULL, 'B' },
        { "settle", required_argument, NULL, 'S' }, { "help", no_argument, NULL, 'h' },
        { "control", required_argument, NULL, 'C' }, { "code", required_argument, NULL, 'K' },
        { "tls", no_argument, NULL, 't' },          { "epoll", no_argument, NULL, 'e' },
        { "tls-version", required_argument, NULL, 'V' }, { "warm", no_argument, NULL, 'w' },
        { "threads", no_argument, NULL, 'H' },          { 0 },
    };
    int o;
    unsigned m;

    if (argc < 2)
        bad_usage("missing mode", "");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, stdout);
        exit(0);
    }
    for (m = 0; m < MODE_COUNT; m++)
        if (strcmp(argv[1], mode_name[m]) == 0)
            break;
    if (m == MODE_COUNT)
        bad_usage("unknown mode", argv[1]);
    *cfg = (struct wsb_config){
        .mode = (enum wsb_mode)m,
        .url = "ws://127.0.0.1:8080/",
        .label = "",
        .conns = m == WSB_MODE_CONN ? 64 : m == WSB_MODE_CHURN ? 32 : 1,
        .pipeline = 1,
        .size = 32,
        .duration_s = 10,
        .hold_n = 1000,
        .connect_batch = 256,
        .timeout_s = 10,
        .settle_s = 3,
        .control = getenv("WSD_CONTROL_SOCKET"),
        .kill_code = 1008, /* WSD_CLOSE_POLICY_VIOLATION, wsctl kill's default */
    };
    optind = 2;
    while ((o = getopt_long(argc, argv, "u:c:p:s:d:n:bh", opts, NULL)) != -1) {
        switch (o) {
        case 'u': cfg->url = optarg; break;
        case 'c': cfg->conns = (unsigned)parse_num("-c", optarg, 1, 19000); break;
        case 'p': cfg->pipeline = (unsigned)parse_num("-p", optarg, 1, 4096); break;
        case 's': cfg->size = (size_t)parse_num("-s", optarg, 0, 64 << 20); break;
        case 'd': cfg->duration_s = parse_num("-d", optarg, 0.1, 86400); break;
        case 'n': cfg->hold_n = (unsigned)parse_num("-n", optarg, 1, 19000); break;
        case 'b': cfg->binary = true; break;
        case 'P': parse_pids(cfg, optarg); break;
        case 'l': cfg->label = optarg; break;
        case 'T': cfg->timeout_s = parse_num("--timeout", optarg, 0.1, 600); break;
        case 'B': cfg->connect_batch = (unsigned)parse_num("--batch", optarg, 1, 19000); break;
        case 'S': cfg->settle_s = parse_num("--settle", optarg, 0, 600); break;
        case 'C': cfg->control = optarg; break;
        case 'K': cfg->kill_code = (uint16_t)parse_num("--code", optarg, 1000, 4999); break;
        case 't': cfg->tls = true; break;
        case 'e': cfg->epoll = true; break;
        case 'w': cfg->warm = true; break;
        case 'H': cfg->threads = true; break;
        case 'V':
            if (strcmp(optarg, "1.2") != 0 && strcmp(optarg, "1.3") != 0)
                bad_usage("--tls-version must be 1.2 or 1.3, not", optarg);
            cfg->tls_version = optarg[2] == '2' ? 12 : 13;
            break;
        case 'h': fputs(usage, stdout); exit(0);
        default: bad_usage("bad option", argv[optind - 1]);
        }
    }
    if (optind != argc)
        bad_usage("unexpected argument", argv[optind]);
    if (cfg->mode != WSB_MODE_ECHO)
        cfg->pipeline = 1;
    if (cfg->mode == WSB_MODE_KILL && (!cfg->control || !*cfg->control))
        bad_usage("kill needs wsd's control socket: --control PATH or $WSD_CONTROL_SOCKET", "");
    parse_url(cfg);
}

/* One connection per fd: up to 19,000 held connections need the soft limit at the hard one. */
static void raise_nofile(unsigned want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)want + 64) {
        fprintf(stderr, "wsbench: RLIMIT_NOFILE hard limit %llu is too small for %u connections\n",
                (unsigned long long)rl.rlim_max, want);
        exit(1);
    }
}

static void measure_mem(const struct wsb_config *cfg, struct wsb_meminfo *mi, int64_t *pss,
                        int64_t *pte, int64_t *self, int *procs)
{
    int r;

    *pss = *pte = 0;
    *procs = 0;
    if (cfg->npids) {
        r = wsb_tree_pss(cfg->pids, cfg->npids, pss, pte, procs);
        if (r < 0)
            fprintf(stderr, "wsbench: scanning /proc failed: %s, ignoring\n", strerror(-r));
    }
    *self = wsb_pss_kb(0);
    (void)wsb_meminfo_read(mi);
}

static void hold_hook(const struct wsb_config *cfg, struct wsb_result *res)
{
    WSD_UNUSED(res);
    measure_mem(cfg, &hold_mem.after, &hold_mem.pss_after, &hold_mem.pte_after,
                &hold_mem.self_after, &hold_mem.procs_after);
    hold_mem.measured = true;
}

static void fmt_ns(char *out, size_t cap, uint64_t ns)
{
    if (ns < 1000000)
        snprintf(out, cap, "%.1fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(out, cap, "%.2fms", (double)ns / 1e6);
    else
        snprintf(out, cap, "%.2fs", (double)ns / 1e9);
}

static void print_human(const struct wsb_config *cfg, const struct wsb_result *res)
{
    const struct wsb_hist *h = &res->lat;
    char p50[32], p99[32], p999[32], mx[32];
    double rate = (double)res->done / res->elapsed_s;

    fmt_ns(p50, sizeof(p50), wsb_hist_quantile(h, 0.5));
    fmt_ns(p99, sizeof(p99), wsb_hist_quantile(h, 0.99));
    fmt_ns(p999, sizeof(p999), wsb_hist_quantile(h, 0.999));
    fmt_ns(mx, sizeof(mx), h->count ? h->max : 0);
    printf("wsbench %s %s%s%s ", mode_name[cfg->mode], cfg->url, *cfg->label ? " " : "",
           cfg->label);
    switch (cfg->mode) {
    case WSB_MODE_ECHO:
        printf("c=%u p=%u s=%zu %s %.1fs: %.0f msg/s %.2f MB/s rtt p50 %s p99 %s p999 %s max %s",
               cfg->conns, cfg->pipeline, cfg->size, cfg->binary ? "binary" : "text",
               res->elapsed_s, rate, rate * (double)cfg->size / 1e6, p50, p99, p999, mx);
        break;
    case WSB_MODE_CONN:
    case WSB_MODE_CHURN:
        printf("c=%u %.1fs: %.0f %s/s %s p50 %s p99 %s p999 %s", cfg->conns, res->elapsed_s, rate,
               cfg->mode == WSB_MODE_CONN ? "handshakes" : "cycles",
               cfg->mode == WSB_MODE_CONN ? "handshake" : "cycle", p50, p99, p999);
        break;
    case WSB_MODE_KILL:
        printf("n=%u: %llu kills, close frame after p50 %s p99 %s max %s", cfg->hold_n,
               (unsigned long long)res->done, p50, p99, mx);
        if (res->unmapped)
            printf(", %llu connections not in wsd's list", (unsigned long long)res->unmapped);
        break;
    case WSB_MODE_SPAWN:
        printf("c=%u %.1fs: %.0f processes/s (empty clone3 + exit + reap) p50 %s p99 %s",
               cfg->conns, res->elapsed_s, rate, p50, p99);
        break;
    case WSB_MODE_SWITCH:
        printf("c=%u %s %.1fs: %.0f hops/s, %.2f us per hop (p50 %s p99 %s)", cfg->conns,
               cfg->threads ? "threads" : "processes", res->elapsed_s, rate,
               rate > 0 ? 1e6 / rate : 0, p50, p99);
        break;
    case WSB_MODE_HOLD:
        printf("n=%u: held %llu, opened in %.2fs", cfg->hold_n, (unsigned long long)res->done,
               res->open_s);
        if (hold_mem.measured && res->done) {
            double n = (double)res->done;
            printf(", server PSS %.1f kB/conn + page tables %.1f kB/conn (%d procs), "
                   "MemAvailable -%.1f kB/conn (-%.1f without wsbench's own PSS)",
                   (double)(hold_mem.pss_after - hold_mem.pss_before) / n,
                   (double)(hold_mem.pte_after - hold_mem.pte_before) / n, hold_mem.procs_after,
                   (double)(hold_mem.before.mem_available_kb - hold_mem.after.mem_available_kb) /
                       n,
                   (double)(hold_mem.before.mem_available_kb - hold_mem.after.mem_available_kb -
                            (hold_mem.self_after - hold_mem.self_before)) /
                       n);
        }
        break;
    }
    printf("; errors %llu server-closes %llu close-timeouts %llu\n",
           (unsigned long long)res->errors, (unsigned long long)res->server_closes,
           (unsigned long long)res->close_timeouts);
}

static void print_json_hold(const struct wsb_config *cfg, const struct wsb_result *res)
{
    const struct hold_mem *m = &hold_mem;
    double n = res->done ? (double)res->done : 1;
    int64_t kern_b = m->before.anon_pages_kb + m->before.page_tables_kb +
                     m->before.kernel_stack_kb + m->before.slab_kb;
    int64_t kern_a = m->after.anon_pages_kb + m->after.page_tables_kb + m->after.kernel_stack_kb +
                     m->after.slab_kb;
    int64_t avail = m->before.mem_available_kb - m->after.mem_available_kb;
    int64_t self = m->self_after - m->self_before;

    printf(",\"n\":%u,\"held\":%llu,\"open_s\":%.3f,\"measured\":%s,\"pids\":[", cfg->hold_n,
           (unsigned long long)res->done, res->open_s, m->measured ? "true" : "false");
    for (unsigned i = 0; i < cfg->npids; i++)
        printf("%s%d", i ? "," : "", (int)cfg->pids[i]);
    printf("],\"procs_before\":%d,\"procs_after\":%d,\"pss_kb_before\":%lld,\"pss_kb_after\":%lld,"
           "\"pss_per_conn_kb\":%.2f,\"pte_per_conn_kb\":%.2f,\"memavail_delta_kb\":%lld,\"memavail_per_conn_kb\":%.2f,"
           "\"self_pss_delta_kb\":%lld,\"system_per_conn_kb\":%.2f,"
           "\"anon_pt_stack_slab_per_conn_kb\":%.2f",
           m->procs_before, m->procs_after, (long long)m->pss_before, (long long)m->pss_after,
           (double)(m->pss_after - m->pss_before) / n, (double)(m->pte_after - m->pte_before) / n,
           (long long)avail, (double)avail / n,
           (long long)self, (double)(avail - self) / n, (double)(kern_a - kern_b - self) / n);
}

static void print_json(const struct wsb_config *cfg, const struct wsb_result *res)
{
    static const double qs[] = { 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
                                 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0 };
    const struct wsb_hist *h = &res->lat;
    double rate = (double)res->done / res->elapsed_s;

    printf("{\"tool\":\"wsbench\",\"mode\":\"%s\",\"label\":\"", mode_name[cfg->mode]);
    for (const char *p = cfg->label; *p; p++) /* labels are ours: escape just " and \ */
        printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
    printf("\",\"url\":\"%s\",\"c\":%u,\"p\":%u,\"s\":%zu,\"binary\":%s,\"d\":%.3f,"
           "\"elapsed_s\":%.3f,\"count\":%llu,\"rate\":%.1f,\"mb_per_s\":%.3f,\"opened\":%llu,"
           "\"errors\":%llu,\"server_closes\":%llu,\"close_timeouts\":%llu",
           cfg->url, cfg->conns, cfg->pipeline, cfg->size, cfg->binary ? "true" : "false",
           cfg->duration_s, res->elapsed_s, (unsigned long long)res->done,
           cfg->mode == WSB_MODE_HOLD ? 0 : rate,
           cfg->mode == WSB_MODE_ECHO ? rate * (double)cfg->size / 1e6 : 0,
           (unsigned long long)res->opened, (unsigned long long)res->errors,
           (unsigned long long)res->server_closes, (unsigned long long)res->close_timeouts);
    printf(",\"lat_us\":{\"count\":%llu,\"mean\":%.2f,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,"
           "\"p999\":%.2f,\"max\":%.2f},\"cdf_us\":[",
           (unsigned long long)h->count, h->count ? (double)h->sum / (double)h->count / 1e3 : 0,
           (double)wsb_hist_quantile(h, 0.5) / 1e3, (double)wsb_hist_quantile(h, 0.9) / 1e3,
           (double)wsb_hist_quantile(h, 0.99) / 1e3, (double)wsb_hist_quantile(h, 0.999) / 1e3,
           h->count ? (double)h->max / 1e3 : 0);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        printf("%s[%g,%.2f]", i ? "," : "", qs[i], (double)wsb_hist_quantile(h, qs[i]) / 1e3);
    printf("]");
    if (cfg->mode == WSB_MODE_HOLD)
        print_json_hold(cfg, res);
    if (cfg->mode == WSB_MODE_KILL)
        printf(",\"n\":%u,\"code\":%u,\"warm\":%s,\"unmapped\":%llu", cfg->hold_n,
               cfg->kill_code, cfg->warm ? "true" : "false", (unsigned long long)res->unmapped);
    if (cfg->mode == WSB_MODE_SWITCH)
        printf(",\"threads\":%s", cfg->threads ? "true" : "false");
    printf("}\n");
}

int main(int argc, char **argv)
{
    struct wsb_config cfg;
    struct wsb_result *res;
    int r;

    parse_args(&cfg, argc, argv);
    raise_nofile(cfg.mode == WSB_MODE_HOLD || cfg.mode == WSB_MODE_KILL ? cfg.hold_n : cfg.conns);
    res = calloc(1, sizeof(*res)); /* the histogram is 30 KB: keep it off the stack */
    if (!res)
        return 1;
    if (cfg.mode == WSB_MODE_HOLD)
        measure_mem(&cfg, &hold_mem.before, &hold_mem.pss_before, &hold_mem.pte_before,
                    &hold_mem.self_before, &hold_mem.procs_before);
    if ((cfg.tls || cfg.epoll) && cfg.mode != WSB_MODE_CONN && cfg.mode != WSB_MODE_ECHO)
        bad_usage("--tls and --epoll run conn and echo only, not", mode_name[cfg.mode]);
    if (cfg.mode == WSB_MODE_SPAWN)
        r = wsb_spawn_probe_run(&cfg, res);
    else if (cfg.mode == WSB_MODE_SWITCH)
        r = wsb_switch_probe_run(&cfg, res);
    else if (cfg.tls || cfg.epoll)
        r = wsb_tls_engine_run(&cfg, res);
    else
        r = wsb_engine_run(&cfg, res, cfg.mode == WSB_MODE_HOLD ? hold_hook : NULL);
    if (r < 0)
        return 1;
    print_human(&cfg, res);
    print_json(&cfg, res);
    fflush(stdout);
    if (res->errors || res->server_closes ||
        (cfg.mode == WSB_MODE_HOLD && res->done < cfg.hold_n) ||
        (cfg.mode == WSB_MODE_KILL && res->done < cfg.hold_n))
        r = 1;
    free(res);
    return r;
}
