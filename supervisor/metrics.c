/* SPDX-License-Identifier: MIT */
/* Counting for /metrics, and the Prometheus text exposition (format 0.0.4: HELP and TYPE lines,
 * counters ending in _total, times in seconds, sizes in bytes). */
#include "supervisor/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/live.h"
#include "core/shared.h"
#include "core/sys.h"
#include "supervisor/state.h"

/* Kill to exit: the graceful ladder takes well under a millisecond (PLATFORM.md); a stubborn
 * worker lasts WSD_KILL_GRACE_MS (3 s by default). */
static const double kill_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
/* clone3 of a worker: 0.5-1 ms here, more from a big supervisor. */
static const double spawn_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                      0.01,   0.025,   0.05,   0.1,   0.25};

void wsd_metrics_init(struct wsd_metrics *m)
{
    *m = (struct wsd_metrics){
        .kill_to_exit = {.bounds = kill_bounds, .n = sizeof(kill_bounds) / sizeof(double)},
        .spawn = {.bounds = spawn_bounds, .n = sizeof(spawn_bounds) / sizeof(double)},
    };
}

void wsd_histogram_observe(struct wsd_histogram *h, double seconds)
{
    size_t i = 0;
    while (i < h->n && seconds > h->bounds[i])
        i++;
    h->counts[i]++; /* i == n: only +Inf */
    h->count++;
    h->sum += seconds;
}

void wsd_metrics_closed(struct wsd_metrics *m, enum wsd_cause cause, uint16_t code)
{
    for (size_t i = 0; i < m->n_closed; i++)
        if (m->closed[i].cause == cause && m->closed[i].code == code) {
            m->closed[i].n++;
            return;
        }
    if (m->n_closed == WSD_CLOSED_SERIES) {
        m->closed_other[cause]++;
        return;
    }
    m->closed[m->n_closed++] = (struct wsd_closed_series){.cause = cause, .code = code, .n = 1};
}

static void fold_one(uint64_t *total, uint64_t *counted, uint64_t now)
{
    if (now > *counted) {
        *total += now - *counted;
        *counted = now;
    }
}

void wsd_metrics_fold(struct wsd_metrics *m, struct wsd_worker *w, const struct wsd_traffic *now)
{
    fold_one(&m->traffic.in_msgs, &w->counted.in_msgs, now->in_msgs);
    fold_one(&m->traffic.in_bytes, &w->counted.in_bytes, now->in_bytes);
    fold_one(&m->traffic.out_msgs, &w->counted.out_msgs, now->out_msgs);
    fold_one(&m->traffic.out_bytes, &w->counted.out_bytes, now->out_bytes);
}

/* ---- exposition */

static void family(struct wsd_buf *b, const char *name, const char *type, const char *help)
{
    wsd_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(struct wsd_buf *b, const char *name, const char *type, const char *help,
                   uint64_t v)
{
    family(b, name, type, help);
    wsd_buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

static void histogram(struct wsd_buf *b, const char *name, const char *help,
                      const struct wsd_histogram *h)
{
    family(b, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n; i++) {
        cum += h->counts[i];
        wsd_buf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, h->bounds[i], cum);
    }
    wsd_buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
    wsd_buf_printf(b, "%s_sum %.9g\n%s_count %" PRIu64 "\n", name, h->sum, name, h->count);
}

/* A closed connection's cause as a label: "normal" when nothing ended it but the peers. */
static const char *cause_label(enum wsd_cause c)
{
    return c == WSD_CAUSE_NONE ? "normal" : wsd_cause_name(c);
}

/* Bring open connections' traffic in: the workers publish it in their own memory. */
static void fold_live(struct supervisor *s)
{
    for (uint32_t i = 0; i < s->pool.cap && s->pool.busy > 0; i++) {
        struct wsd_worker *w = &s->pool.slots[i];
        struct wsd_conn_live l;
        if (w->state != WSD_WORKER_BUSY || wsd_worker_read_live(w, &l) < 0)
            continue;
        struct wsd_traffic t = {l.in_msgs, l.in_bytes, l.out_msgs, l.out_bytes};
        wsd_metrics_fold(&s->metrics, w, &t);
    }
}

void wsd_metrics_render(struct supervisor *s, struct wsd_buf *b)
{
    const struct wsd_shared *sh = s->shared;
    struct wsd_metrics *m = &s->metrics;
    fold_live(s);

    scalar(b, "wsd_connections_open", "gauge", "WebSocket connections open now.", s->pool.busy);
    scalar(b, "wsd_connections_accepted_total", "counter",
           "TCP connections accepted (before the handshake).", sh->accepted);
    scalar(b, "wsd_handshakes_total", "counter",
           "Upgrade requests validated and handed to a worker.", sh->handed_off);
    family(b, "wsd_handshake_failures_total", "counter",
           "Upgrade requests refused, by the HTTP status answered.");
    for (int i = 0; i < WSD_HS_FAIL_COUNT; i++)
        if (i != WSD_HS_FAIL_EOF)
            wsd_buf_printf(b, "wsd_handshake_failures_total{status=\"%s\"} %" PRIu64 "\n",
                           wsd_hs_fail_name((enum wsd_hs_fail)i),
                           sh->hs_fail[i] + s->totals.tls_refused[i]); /* + through TLS */
    scalar(b, "wsd_handshakes_abandoned_total", "counter",
           "Clients that left before sending a whole upgrade request.",
           sh->hs_fail[WSD_HS_FAIL_EOF]);
    scalar(b, "wsd_tls_handshake_failures_total", "counter",
           "wss:// connections whose TLS handshake failed or timed out.", s->totals.tls_failed);

    family(b, "wsd_connections_closed_total", "counter",
           "Connections ended, by cause (normal: the peers closed it) and close code.");
    for (size_t i = 0; i < m->n_closed; i++)
        wsd_buf_printf(b, "wsd_connections_closed_total{cause=\"%s\",code=\"%u\"} %" PRIu64 "\n",
                       cause_label((enum wsd_cause)m->closed[i].cause), m->closed[i].code,
                       m->closed[i].n);
    for (int c = 0; c < WSD_CAUSE_COUNT; c++)
        if (m->closed_other[c])
            wsd_buf_printf(
                b, "wsd_connections_closed_total{cause=\"%s\",code=\"other\"} %" PRIu64 "\n",
                cause_label((enum wsd_cause)c), m->closed_other[c]);

    family(b, "wsd_workers", "gauge", "Worker processes, by state.");
    wsd_buf_printf(b,
                   "wsd_workers{state=\"idle\"} %u\nwsd_workers{state=\"busy\"} %u\n"
                   "wsd_workers{state=\"exiting\"} %u\n",
                   s->pool.idle, s->pool.busy, s->pool.count[WSD_WORKER_EXITING]);
    scalar(b, "wsd_workers_spawned_total", "counter", "Worker processes started.",
           s->pool.spawned_total);

    family(b, "wsd_terminations_total", "counter",
           "Connections wsd set out to end (SIGTERM with a close code), by cause.");
    for (int c = WSD_CAUSE_OPERATOR; c < WSD_CAUSE_COUNT; c++)
        if (c != WSD_CAUSE_PROTOCOL && c != WSD_CAUSE_CRASH) /* never a termination */
            wsd_buf_printf(b, "wsd_terminations_total{cause=\"%s\"} %" PRIu64 "\n",
                           wsd_cause_name((enum wsd_cause)c), m->terminations[c]);
    scalar(b, "wsd_kill_escalations_total", "counter",
           "Terminations that needed SIGKILL after WSD_KILL_GRACE_MS.", s->totals.escalations);
    scalar(b, "wsd_heartbeat_terminations_total", "counter",
           "Connections ended by the heartbeat: a silent client or a stuck worker.",
           m->heartbeat_terminations);
    scalar(b, "wsd_protocol_violations_total", "counter",
           "Connections wsd closed with 1002, 1007 or 1009.", s->totals.violations);
    scalar(b, "wsd_strays_reaped_total", "counter",
           "Processes a worker left that no wsd process accounted for (an exec program's, "
           "after its worker was SIGKILLed; a compromised worker's), ended and reaped by the "
           "supervisor.", s->totals.strays_reaped);
    scalar(b, "wsd_abuse_bans_total", "counter", "Client IPs banned by the abuse detector.",
           s->totals.bans);

    scalar(b, "wsd_received_messages_total", "counter", "Whole messages received from clients.",
           m->traffic.in_msgs);
    scalar(b, "wsd_received_bytes_total", "counter", "Message payload bytes received from clients.",
           m->traffic.in_bytes);
    scalar(b, "wsd_sent_messages_total", "counter", "Whole messages sent to clients.",
           m->traffic.out_msgs);
    scalar(b, "wsd_sent_bytes_total", "counter", "Message payload bytes sent to clients.",
           m->traffic.out_bytes);

    histogram(b, "wsd_kill_to_exit_seconds",
              "From a termination's first signal to the end of the connection it named.",
              &m->kill_to_exit);
    histogram(b, "wsd_worker_spawn_seconds", "Time the supervisor spends in clone3() per worker.",
              &m->spawn);
}
