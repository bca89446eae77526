/* SPDX-License-Identifier: MIT */
/* The control socket wsctl talks to: a unix stream socket, mode 0600, callers checked with
 * SO_PEERCRED (wsd's uid or root). One request line in, "OK" or "ERR <why>" and a body out,
 * then close. Requests: list [json] | show ID [json] | kill ID CODE FORCE [REASON] |
 * killpeer IP CODE FORCE [REASON] | stats [json] | metrics | drain.
 * The wsd-metrics process is one more client, on a socketpair of its own (wsd_control_adopt):
 * it may only read (list, show, stats, metrics) and kill one connection at a time, and its
 * connection stays open, each answer ending with a NUL byte. */
#include "supervisor/state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/listen.h"
#include "core/live.h"
#include "core/log.h"
#include "core/shared.h"
#include "core/sys.h"
#include "proto/close.h"
#include "supervisor/metrics.h"
#include "proto/utf8.h"

#define CONTROL_CLIENTS 16
#define CONTROL_INTERNAL CONTROL_CLIENTS /* the wsd-metrics process's slot */
#define REQUEST_MAX 1024

struct control_client {
    int fd;
    size_t in_len;
    char in[REQUEST_MAX];
    struct wsd_buf out;
    bool answered;
    bool internal; /* the wsd-metrics process: restricted, persistent, NUL-terminated answers */
};

struct wsd_control {
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct control_client clients[CONTROL_CLIENTS + 1];
};

static void out_printf(struct wsd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(struct wsd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)wsd_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

/* Paths come from clients: print them as JSON-safe text (no quotes, backslashes, controls). */
static void sanitize(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 1 < cap; i++)
        out[j++] = (in[i] == '"' || in[i] == '\\' || (unsigned char)in[i] < 0x20) ? '?' : in[i];
    out[j] = '\0';
}

static void conn_entry(const struct wsd_worker *w, struct wsd_buf *b, bool json, bool detail)
{
    struct wsd_conn_live l = {0};
    bool have = wsd_worker_read_live(w, &l) == 0;
    uint64_t now = wsd_now_ms();
    char peer[WSD_ADDR_STRLEN], path[WSD_REPORT_PATH_MAX];
    wsd_addr_format(&w->peer, peer);
    sanitize(w->path, path, sizeof(path));
    const char *state = w->cause != WSD_CAUSE_NONE ? "killed"
                        : have && l.state == WSD_LIVE_CLOSING ? "closing"
                                                               : "open";
    uint64_t idle = have && l.last_rx_ms <= now ? now - l.last_rx_ms : 0;
    uint64_t pong_age = have && l.last_pong_ms && l.last_pong_ms <= now ? now - l.last_pong_ms : 0;
    if (json)
        out_printf(b,
                   "{\"id\":%" PRIu64 ",\"pid\":%d,\"peer\":\"%s\",\"path\":\"%s\",\"age_ms\":%" PRIu64
                   ",\"state\":\"%s\",\"in_msgs\":%" PRIu64 ",\"in_bytes\":%" PRIu64
                   ",\"out_msgs\":%" PRIu64 ",\"out_bytes\":%" PRIu64 ",\"idle_ms\":%" PRIu64
                   ",\"last_pong_ago_ms\":%" PRIu64 ",\"rtt_us\":%" PRIu64 "}",
                   w->conn_id, w->pid, peer, path, now - w->conn_start_ms, state, l.in_msgs,
                   l.in_bytes, l.out_msgs, l.out_bytes, idle, pong_age, l.rtt_us);
    else if (detail)
        out_printf(b,
                   "id: %" PRIu64 "\npid: %d\npeer: %s\npath: %s\nage_ms: %" PRIu64
                   "\nstate: %s\nin_msgs: %" PRIu64 "\nin_bytes: %" PRIu64 "\nout_msgs: %" PRIu64
                   "\nout_bytes: %" PRIu64 "\nidle_ms: %" PRIu64 "\nlast_pong_ago_ms: %" PRIu64
                   "\nrtt_us: %" PRIu64 "\n",
                   w->conn_id, w->pid, peer, path, now - w->conn_start_ms, state, l.in_msgs,
                   l.in_bytes, l.out_msgs, l.out_bytes, idle, pong_age, l.rtt_us);
    else
        out_printf(b, "%-8" PRIu64 " %-7d %-22s %-8s %8" PRIu64 " %8" PRIu64 " %10" PRIu64
                      " %8" PRIu64 " %10" PRIu64 " %8" PRIu64 " %s\n",
                   w->conn_id, w->pid, peer, state, (now - w->conn_start_ms) / 1000, l.in_msgs,
                   l.in_bytes, l.out_msgs, l.out_bytes, idle, path);
}

static void cmd_list(struct supervisor *s, struct wsd_buf *b, bool json)
{
    out_printf(b, "OK\n");
    if (json)
        out_printf(b, "[");
    else
        out_printf(b, "%-8s %-7s %-22s %-8s %8s %8s %10s %8s %10s %8s %s\n", "ID", "PID", "PEER",
                   "STATE", "AGE_S", "IN_MSGS", "IN_BYTES", "OUT_MSGS", "OUT_BYTES", "IDLE_MS",
                   "PATH");
    bool first = true;
    for (uint32_t i = 0; i < s->pool.cap; i++) {
        const struct wsd_worker *w = &s->pool.slots[i];
        if (w->state != WSD_WORKER_BUSY)
            continue;
        if (json && !first)
            out_printf(b, ",");
        conn_entry(w, b, json, false);
        first = false;
    }
    if (json)
        out_printf(b, "]\n");
}

static void cmd_stats(struct supervisor *s, struct wsd_buf *b, bool json)
{
    const struct wsd_shared *sh = s->shared;
    const struct wsd_totals *t = &s->totals;
    out_printf(b, "OK\n");
    out_printf(b,
               json ? "{\"accepted\":%" PRIu64 ",\"handed_off\":%" PRIu64 ",\"open\":%u"
                      ",\"closed\":%" PRIu64 ",\"workers_spawned\":%" PRIu64 ",\"workers_idle\":%u"
                      ",\"kills\":%" PRIu64 ",\"escalations\":%" PRIu64 ",\"violations\":%" PRIu64
                      ",\"bans\":%" PRIu64 ",\"strays_reaped\":%" PRIu64
                    : "accepted: %" PRIu64 "\nhanded_off: %" PRIu64 "\nopen: %u\nclosed: %" PRIu64
                      "\nworkers_spawned: %" PRIu64 "\nworkers_idle: %u\nkills: %" PRIu64
                      "\nescalations: %" PRIu64 "\nviolations: %" PRIu64 "\nbans: %" PRIu64
                      "\nstrays_reaped: %" PRIu64 "\n",
               sh->accepted, sh->handed_off, s->pool.busy, t->closed, s->pool.spawned_total,
               s->pool.idle, t->kills, t->escalations, t->violations, t->bans, t->strays_reaped);
    for (int c = 0; c < WSD_CAUSE_COUNT; c++)
        out_printf(b, json ? ",\"closed_%s\":%" PRIu64 : "closed_%s: %" PRIu64 "\n",
                   c == WSD_CAUSE_NONE ? "normally" : wsd_cause_name((enum wsd_cause)c),
                   t->closed_by_cause[c]);
    /* Refusals by the acceptor, plus those a worker answered through TLS (wss://). */
    for (int i = 0; i < WSD_HS_FAIL_COUNT; i++)
        out_printf(b, json ? ",\"handshake_failed_%s\":%" PRIu64 : "handshake_failed_%s: %" PRIu64 "\n",
                   wsd_hs_fail_name((enum wsd_hs_fail)i), sh->hs_fail[i] + t->tls_refused[i]);
    out_printf(b, json ? ",\"handshake_failed_tls\":%" PRIu64 : "handshake_failed_tls: %" PRIu64 "\n",
               t->tls_failed);
    if (json)
        out_printf(b, "}\n");
}

static bool parse_u64(const char *s, uint64_t *ret)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *ret = v;
    return true;
}

/* "CODE FORCE [REASON]" shared by kill and killpeer. Returns NULL or an error text. */
static const char *parse_kill_args(char *rest, uint16_t *code, bool *force, const char **reason)
{
    char *save = NULL;
    char *c = strtok_r(rest, " ", &save), *f = strtok_r(NULL, " ", &save);
    uint64_t v, fv;
    if (!parse_u64(c, &v) || !parse_u64(f, &fv) || fv > 1)
        return "usage: kill ID CODE FORCE [REASON]";
    if (v > 65535 || !wsd_close_code_is_valid((uint16_t)v))
        return "close code may not be sent: allowed are 1000-1003, 1007-1011 and 3000-4999";
    *reason = save ? save : "";
    size_t rlen = strlen(*reason);
    if (rlen > WSD_KILL_REASON_MAX)
        return "reason is longer than 123 bytes";
    if (wsd_utf8_validate(WSD_UTF8_ACCEPT, (const uint8_t *)*reason, rlen) != WSD_UTF8_ACCEPT)
        return "reason is not valid UTF-8";
    *code = (uint16_t)v;
    *force = fv == 1;
    return NULL;
}

static void cmd_kill(struct supervisor *s, struct wsd_buf *b, char *args, bool by_peer)
{
    char *save = NULL;
    char *target = strtok_r(args, " ", &save);
    uint16_t code;
    bool force;
    const char *reason;
    const char *err = target ? parse_kill_args(save, &code, &force, &reason) : "missing target";
    struct wsd_ip ip;
    uint64_t id = 0;
    if (!err && by_peer && wsd_ip_parse(target, &ip) < 0)
        err = "not an IP address";
    if (!err && !by_peer && !parse_u64(target, &id))
        err = "not a connection id";
    if (err) {
        out_printf(b, "ERR %s\n", err);
        return;
    }
    uint32_t n = 0;
    /* An id names one connection: stop there (the answer, and the worker's turn on the CPU,
     * wait for this loop). */
    for (uint32_t i = 0; i < s->pool.cap && (by_peer || n == 0); i++) {
        struct wsd_worker *w = &s->pool.slots[i];
        if (w->state != WSD_WORKER_BUSY || (!by_peer && w->conn_id != id))
            continue;
        struct wsd_ip wip = wsd_ip_from_sockaddr(&w->peer);
        if (by_peer && !wsd_ip_equal(&wip, &ip))
            continue;
        if (wsd_terminate(s, w, WSD_CAUSE_OPERATOR, code, reason, force) == 0)
            n++;
    }
    if (n == 0)
        out_printf(b, by_peer ? "ERR no connections from %s\n" : "ERR no such connection: %s\n",
                   target);
    else
        out_printf(b, "OK\n%s %u connection%s with %s\n", force ? "killed" : "closing", n,
                   n == 1 ? "" : "s", force ? "SIGKILL" : "SIGTERM");
}

/* What the wsd-metrics process may ask: it faces the network, so no drain, no killpeer. */
static bool internal_may(const char *cmd)
{
    static const char *const allowed[] = {"list", "show", "stats", "metrics", "kill"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (strcmp(cmd, allowed[i]) == 0)
            return true;
    return false;
}

static void execute(struct supervisor *s, char *line, struct wsd_buf *b, bool internal)
{
    char *save = NULL;
    char *cmd = strtok_r(line, " ", &save);
    char *arg = save;
    bool json = arg && strcmp(arg, "json") == 0;
    if (!cmd) {
        out_printf(b, "ERR empty request\n");
    } else if (internal && !internal_may(cmd)) {
        out_printf(b, "ERR not allowed from the metrics listener: '%s'\n", cmd);
    } else if (strcmp(cmd, "metrics") == 0) {
        out_printf(b, "OK\n");
        wsd_metrics_render(s, b);
    } else if (strcmp(cmd, "list") == 0) {
        cmd_list(s, b, json);
    } else if (strcmp(cmd, "show") == 0) {
        char *id_s = strtok_r(NULL, " ", &save);
        json = save && strcmp(save, "json") == 0;
        uint64_t id;
        struct wsd_worker *w = parse_u64(id_s, &id) ? wsd_pool_find_conn(&s->pool, id) : NULL;
        if (!w) {
            out_printf(b, "ERR no such connection: %s\n", id_s ? id_s : "");
            return;
        }
        out_printf(b, "OK\n");
        conn_entry(w, b, json, true);
        if (json)
            out_printf(b, "\n");
    } else if (strcmp(cmd, "kill") == 0 || strcmp(cmd, "killpeer") == 0) {
        cmd_kill(s, b, arg, strcmp(cmd, "killpeer") == 0);
    } else if (strcmp(cmd, "stats") == 0) {
        cmd_stats(s, b, json);
    } else if (strcmp(cmd, "drain") == 0) {
        out_printf(b, "OK\ndraining: %u connections get close 1001, then wsd exits\n",
                   s->pool.busy);
        wsd_supervisor_begin_stop(s, "wsctl drain");
    } else {
        out_printf(b, "ERR unknown request '%s'\n", cmd);
    }
}

static void client_close(struct control_client *c)
{
    c->fd = wsd_close(c->fd);
    wsd_buf_done(&c->out);
    c->in_len = 0;
    c->answered = false;
    c->internal = false;
}

static void client_flush(struct control_client *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, wsd_buf_head(&c->out), c->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            break;
        wsd_buf_consume(&c->out, (size_t)n);
    }
}

static bool peer_allowed(int fd, char *why, size_t cap)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        snprintf(why, cap, "ERR cannot identify the caller\n");
        return false;
    }
    if (cred.uid == 0 || cred.uid == geteuid())
        return true;
    snprintf(why, cap, "ERR permission denied: uid %u is neither wsd's (%u) nor root\n",
             (unsigned)cred.uid, (unsigned)geteuid());
    return false;
}

static void handle_client(struct supervisor *s, struct control_client *c);

static void handle_accept(struct supervisor *s)
{
    struct wsd_control *ctl = s->control;
    for (;;) {
        int fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        char why[128];
        int slot = -1;
        for (int i = 0; i < CONTROL_CLIENTS && slot < 0; i++)
            if (ctl->clients[i].fd < 0)
                slot = i;
        if (!peer_allowed(fd, why, sizeof(why)) ||
            (slot < 0 && snprintf(why, sizeof(why), "ERR busy: too many wsctl clients\n"))) {
            wsd_log_warn(0, "control: refused a client: %s", why + 4);
            (void)send(fd, why, strlen(why), MSG_DONTWAIT | MSG_NOSIGNAL);
            wsd_close(fd);
            continue;
        }
        ctl->clients[slot].fd = fd;
        if (wsd_supervisor_watch(s, fd, WSD_TAG_CONTROL_CLIENT, (uint32_t)slot,
                                 EPOLLIN | EPOLLOUT | EPOLLET) < 0)
            client_close(&ctl->clients[slot]);
        else /* a client writes its line right after connect: answer without another wait */
            handle_client(s, &ctl->clients[slot]);
    }
}

/* Read a request line, answer it, flush; a wsctl client is closed after its answer, the
 * internal one goes on with its next request. */
static void handle_client(struct supervisor *s, struct control_client *c)
{
    for (;;) {
        while (!c->answered) {
            ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len,
                             MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                client_close(c);
                return;
            }
            if (n < 0)
                return; /* EAGAIN: the rest of the line comes with the next event */
            c->in_len += (size_t)n;
            c->in[c->in_len] = '\0';
            char *nl = strchr(c->in, '\n');
            if (!nl && c->in_len == sizeof(c->in) - 1)
                nl = c->in + c->in_len; /* too long: answer what we have, it will be an error */
            if (!nl)
                continue;
            *nl = '\0';
            c->answered = true;
            execute(s, c->in, &c->out, c->internal);
            if (c->internal)
                (void)wsd_buf_append(&c->out, "", 1); /* the end of this answer */
            c->in_len = 0; /* one request at a time: nothing follows the line */
        }
        client_flush(c);
        if (c->out.len > 0)
            return; /* EPOLLOUT brings us back */
        if (!c->internal) {
            client_close(c);
            return;
        }
        c->answered = false;
    }
}

void wsd_control_handle(struct supervisor *s, enum wsd_tag tag, uint32_t slot, uint32_t events)
{
    (void)events;
    if (tag == WSD_TAG_CONTROL) {
        handle_accept(s);
        return;
    }
    struct control_client *c = slot <= CONTROL_INTERNAL ? &s->control->clients[slot] : NULL;
    if (!c || c->fd < 0)
        return;
    handle_client(s, c);
}

int wsd_control_adopt(struct supervisor *s, int fd)
{
    struct control_client *c = &s->control->clients[CONTROL_INTERNAL];
    if (c->fd >= 0)
        client_close(c); /* the previous wsd-metrics process's end */
    c->fd = fd;
    c->internal = true;
    int r = wsd_supervisor_watch(s, fd, WSD_TAG_CONTROL_CLIENT, CONTROL_INTERNAL,
                                 EPOLLIN | EPOLLOUT | EPOLLET);
    if (r < 0)
        client_close(c);
    return r;
}

/* Refuse to take over a socket another wsd still answers on; remove a stale one. */
static int claim_path(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    wsd_close(fd);
    if (r == 0)
        return -EADDRINUSE;
    (void)unlink(sa->sun_path);
    return 0;
}

/* The previous generation's listening socket (SIGUSR2): same path, no moment without one. */
static int adopt(struct supervisor *s, struct wsd_control *ctl)
{
    struct sockaddr_un sa;
    socklen_t sl = sizeof(sa);
    ctl->fd = s->inherited.control;
    s->inherited.control = -1;
    if (getsockname(ctl->fd, (struct sockaddr *)&sa, &sl) < 0 || sl <= sizeof(sa_family_t))
        return -errno;
    snprintf(ctl->path, sizeof(ctl->path), "%.*s", (int)(sl - sizeof(sa_family_t)), sa.sun_path);
    int r = wsd_supervisor_watch(s, ctl->fd, WSD_TAG_CONTROL, 0, EPOLLIN | EPOLLET);
    if (r == 0)
        wsd_log_notice("control socket %s (wsctl -s %s; taken over from the previous wsd)",
                       ctl->path, ctl->path);
    return r;
}

int wsd_control_open(struct supervisor *s, const char *listen_addr)
{
    struct wsd_control *ctl = calloc(1, sizeof(*ctl));
    if (!ctl)
        return -ENOMEM;
    s->control = ctl;
    ctl->fd = -1;
    for (int i = 0; i <= CONTROL_INTERNAL; i++)
        ctl->clients[i].fd = -1;
    if (s->inherited.control >= 0)
        return adopt(s, ctl);
    if (s->cfg->control_socket[0]) {
        snprintf(ctl->path, sizeof(ctl->path), "%s", s->cfg->control_socket);
    } else {
        const char *port = strrchr(listen_addr, ':');
        snprintf(ctl->path, sizeof(ctl->path), "%s/wsd-%s.sock", wsd_config_runtime_dir(),
                 port ? port + 1 : "0");
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ctl->path);
    int r = claim_path(&sa);
    if (r == 0) {
        ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        mode_t old = umask(0177); /* born 0600: no window where others may connect */
        if (ctl->fd < 0 || bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            listen(ctl->fd, 16) < 0)
            r = -errno;
        umask(old);
    }
    if (r == 0)
        r = wsd_supervisor_watch(s, ctl->fd, WSD_TAG_CONTROL, 0, EPOLLIN | EPOLLET);
    if (r < 0) {
        wsd_log_error(r, "bind() failed while opening the control socket '%s'", ctl->path);
        ctl->path[0] = '\0';
        return r;
    }
    wsd_log_notice("control socket %s (wsctl -s %s)", ctl->path, ctl->path);
    return 0;
}

int wsd_control_listen_fd(const struct supervisor *s)
{
    return s->control ? s->control->fd : -1;
}

void wsd_control_hand_over(struct supervisor *s)
{
    struct wsd_control *ctl = s->control;
    if (!ctl)
        return;
    /* The path now belongs to the new generation: close our listener, never unlink it. */
    ctl->fd = wsd_close(ctl->fd);
    ctl->path[0] = '\0';
}

void wsd_control_close(struct supervisor *s)
{
    struct wsd_control *ctl = s->control;
    if (!ctl)
        return;
    for (int i = 0; i <= CONTROL_INTERNAL; i++)
        if (ctl->clients[i].fd >= 0)
            client_close(&ctl->clients[i]);
    if (ctl->fd >= 0 && ctl->path[0])
        (void)unlink(ctl->path);
    wsd_close(ctl->fd);
    free(ctl);
    s->control = NULL;
}
