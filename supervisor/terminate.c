/* SPDX-License-Identifier: MIT */
/* The termination ladder, for every cause: SIGTERM whose si_value names the connection and the
 * close code (so a worker that has moved on to another connection ignores it), SIGCONT so a
 * stopped worker still acts, SIGKILL after WSD_KILL_GRACE_MS. Every signal goes through the
 * worker's pidfd, held since clone3: a recycled pid can never be hit. */
#include "supervisor/state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/listen.h"
#include "core/live.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sys.h"
#include "proto/ws_codes.h"
#include "supervisor/reap.h"

static const char *const cause_names[WSD_CAUSE_COUNT] = {
    [WSD_CAUSE_NONE] = "none",         [WSD_CAUSE_OPERATOR] = "operator",
    [WSD_CAUSE_HEARTBEAT] = "heartbeat", [WSD_CAUSE_PROTOCOL] = "protocol",
    [WSD_CAUSE_ABUSE] = "abuse",       [WSD_CAUSE_SHUTDOWN] = "shutdown",
    [WSD_CAUSE_CRASH] = "crash",
};

const char *wsd_cause_name(enum wsd_cause c)
{
    return c < WSD_CAUSE_COUNT ? cause_names[c] : "?";
}

static int send_kill(struct wsd_worker *w)
{
    w->signals |= WSD_SIG_SENT_KILL;
    return wsd_sys_pidfd_send_signal(w->pidfd, SIGKILL, NULL);
}

int wsd_terminate(struct supervisor *s, struct wsd_worker *w, enum wsd_cause cause,
                  uint16_t code, const char *reason, bool force)
{
    if (w->state != WSD_WORKER_BUSY)
        return -ESRCH;
    bool first = w->cause == WSD_CAUSE_NONE;
    if (first) {
        w->cause = cause;
        w->kill_code = code;
        w->kill_ns = wsd_now_ns();
        s->totals.kills++;
        s->metrics.terminations[cause]++;
        if (cause == WSD_CAUSE_HEARTBEAT)
            s->metrics.heartbeat_terminations++;
    }
    if (force)
        return send_kill(w);
    if (!first && (w->signals & WSD_SIG_SENT_TERM))
        return 0; /* already on the ladder: the grace timer runs */

    size_t rlen = strlen(reason);
    if (rlen > 0) {
        struct wsd_kill_mailbox m = {.conn_id = w->conn_id, .code = code,
                                     .reason_len = (uint8_t)(rlen > WSD_KILL_REASON_MAX
                                                                 ? WSD_KILL_REASON_MAX
                                                                 : rlen)};
        memcpy(m.reason, reason, m.reason_len);
        int r = wsd_worker_write_mailbox(w, &m);
        if (r < 0)
            wsd_log_warn(r, "process_vm_writev() failed while giving conn=%" PRIu64
                            " its close reason, closing without one",
                         w->conn_id);
    }
    siginfo_t info = {
        .si_signo = SIGTERM,
        .si_code = SI_QUEUE,
        .si_pid = s->self,
        .si_uid = getuid(),
    };
    info.si_value.sival_ptr = (void *)(uintptr_t)wsd_kill_value(w->conn_id, code);
    int r = wsd_sys_pidfd_send_signal(w->pidfd, SIGTERM, &info);
    if (r < 0)
        return r;
    (void)wsd_sys_pidfd_send_signal(w->pidfd, SIGCONT, NULL);
    w->signals |= WSD_SIG_SENT_TERM | WSD_SIG_SENT_CONT;
    w->kill_deadline_ms = wsd_now_ms() + s->cfg->kill_grace_ms;
    if (w->kill_deadline_ms < s->next_escalation_ms)
        s->next_escalation_ms = w->kill_deadline_ms;
    return 0;
}

void wsd_terminate_escalate(struct supervisor *s, uint64_t now_ms)
{
    if (now_ms < s->next_escalation_ms)
        return;
    /* Workers that ended since are no longer due; the rest set the next deadline. */
    s->next_escalation_ms = UINT64_MAX;
    for (uint32_t i = 0; i < s->pool.cap; i++) {
        struct wsd_worker *w = &s->pool.slots[i];
        if (w->state != WSD_WORKER_BUSY || w->kill_deadline_ms == 0 ||
            (w->signals & WSD_SIG_SENT_KILL))
            continue;
        if (now_ms < w->kill_deadline_ms) {
            if (w->kill_deadline_ms < s->next_escalation_ms)
                s->next_escalation_ms = w->kill_deadline_ms;
            continue;
        }
        wsd_log_warn(0, "conn=%" PRIu64 " pid=%d still running %" PRIu64
                        " ms after SIGTERM, sending SIGKILL",
                     w->conn_id, w->pid, s->cfg->kill_grace_ms);
        w->escalated = true;
        s->totals.escalations++;
        (void)send_kill(w);
    }
}

static void describe_signals(uint8_t sent, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s%s%s", sent & WSD_SIG_SENT_TERM ? "TERM," : "",
             sent & WSD_SIG_SENT_CONT ? "CONT," : "", sent & WSD_SIG_SENT_KILL ? "KILL," : "",
             sent ? "" : "none");
    size_t n = strlen(out);
    if (n > 0 && out[n - 1] == ',')
        out[n - 1] = '\0';
}

static bool is_violation(uint16_t code)
{
    return code == WSD_CLOSE_PROTOCOL_ERROR || code == WSD_CLOSE_INVALID_PAYLOAD ||
           code == WSD_CLOSE_MESSAGE_TOO_BIG;
}

void wsd_conn_ended(struct supervisor *s, struct wsd_worker *w, uint16_t code, int closed_by,
                    const siginfo_t *si)
{
    struct wsd_ip ip = wsd_ip_from_sockaddr(&w->peer);
    /* RFC 6455 7.4: wsd closing with 1002/1007/1009 means the client broke the protocol. */
    if (closed_by == 1 /* WSD_CLOSED_BY_SERVER */ && is_violation(code) &&
        w->cause == WSD_CAUSE_NONE) {
        w->cause = WSD_CAUSE_PROTOCOL;
        w->kill_code = code;
        s->totals.violations++;
        wsd_abuse_record(s, &ip);
    }
    bool crashed = si && wsd_reap_is_signaled(si) && !(w->signals & WSD_SIG_SENT_KILL);
    if (si && (crashed || w->cause == WSD_CAUSE_NONE)) {
        w->cause = WSD_CAUSE_CRASH;
        w->kill_code = WSD_CLOSE_ABNORMAL;
    }
    /* A crash or a SIGKILL without SIGTERM first leaves no close frame: 1006. */
    bool no_frame = w->cause == WSD_CAUSE_CRASH ||
                    (w->signals & (WSD_SIG_SENT_KILL | WSD_SIG_SENT_TERM)) == WSD_SIG_SENT_KILL;
    if (w->cause != WSD_CAUSE_NONE)
        code = no_frame ? WSD_CLOSE_ABNORMAL : w->kill_code;
    wsd_metrics_closed(&s->metrics, w->cause, code);
    if (w->kill_ns)
        wsd_histogram_observe(&s->metrics.kill_to_exit, (double)(wsd_now_ns() - w->kill_ns) / 1e9);
    if (w->cause != WSD_CAUSE_NONE) {
        char sigs[32], how[96] = "", peer[WSD_ADDR_STRLEN];
        describe_signals(w->signals, sigs, sizeof(sigs));
        if (si)
            wsd_reap_describe(si, how, sizeof(how));
        wsd_addr_format(&w->peer, peer);
        const struct wsd_log_field f[] = {
            WSD_LOG_NUM("conn", w->conn_id),
            WSD_LOG_NUM("pid", (uint64_t)w->pid),
            WSD_LOG_STR("peer", peer),
            WSD_LOG_STR("cause", wsd_cause_name(w->cause)),
            WSD_LOG_NUM("code", code),
            WSD_LOG_STR("signals", sigs),
            WSD_LOG_STR("escalated", w->escalated ? "yes" : "no"),
            WSD_LOG_STR("worker_exit", si ? how : "-"),
        };
        wsd_log_event(WSD_LOG_NOTICE, "terminated", f, sizeof(f) / sizeof(f[0]));
    }
    s->totals.closed++;
    s->totals.closed_by_cause[w->cause]++;
    wsd_acceptor_tell(s, &(struct wsd_acceptor_msg){.type = WSD_ACCEPTOR_MSG_CLOSED, .ip = ip});
    /* Scrub the connection; the worker goes back to the queue unless it has served its share. */
    w->conn_id = 0;
    w->cause = WSD_CAUSE_NONE;
    w->kill_code = 0;
    w->signals = 0;
    w->escalated = false;
    w->kill_deadline_ms = 0;
    w->kill_ns = 0;
    bool reusable = !si && w->served < s->cfg->worker_reuse;
    wsd_pool_set_state(&s->pool, w, reusable ? WSD_WORKER_IDLE : WSD_WORKER_EXITING);
    if (reusable && s->stopping) /* back to idle while wsd stops: it must leave too */
        (void)wsd_sys_pidfd_send_signal(w->pidfd, SIGTERM, NULL);
}

uint32_t wsd_terminate_idle(struct supervisor *s)
{
    siginfo_t info = {.si_signo = SIGTERM, .si_code = SI_QUEUE, .si_pid = s->self};
    info.si_value.sival_ptr = (void *)(uintptr_t)wsd_kill_value(WSD_KILL_IDLE_ONLY, 0);
    uint32_t asked = 0;
    for (uint32_t i = 0; i < s->pool.cap; i++) {
        struct wsd_worker *w = &s->pool.slots[i];
        if (w->state == WSD_WORKER_IDLE &&
            wsd_sys_pidfd_send_signal(w->pidfd, SIGTERM, &info) == 0)
            asked++;
    }
    return asked;
}
