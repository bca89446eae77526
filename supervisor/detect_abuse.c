/* SPDX-License-Identifier: MIT */
/* The abuse detector: protocol violations and refused handshakes per client IP in a fixed
 * window. Past WSD_ABUSE_LIMIT it decides "ban"; the supervisor then ends every connection from
 * that IP (1008) and the acceptor answers its handshakes with 429 for WSD_ABUSE_BAN_MS. */
#include "supervisor/state.h"

#include <inttypes.h>

#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sys.h"
#include "proto/ws_codes.h"

static void ban(struct supervisor *s, const struct wsd_ip *ip, uint64_t until_ms)
{
    char addr[46];
    wsd_ip_format(ip, addr);
    s->totals.bans++;
    /* The acceptor first: once a client sees its 1008, its next handshake must meet the ban. */
    struct wsd_acceptor_msg m = {.type = WSD_ACCEPTOR_MSG_BAN, .ip = *ip, .until_ms = until_ms};
    wsd_acceptor_tell(s, &m);
    uint32_t ended = 0;
    for (uint32_t i = 0; i < s->pool.cap; i++) {
        struct wsd_worker *w = &s->pool.slots[i];
        struct wsd_ip wip = wsd_ip_from_sockaddr(&w->peer);
        if (w->state == WSD_WORKER_BUSY && wsd_ip_equal(&wip, ip) &&
            wsd_terminate(s, w, WSD_CAUSE_ABUSE, WSD_CLOSE_POLICY_VIOLATION, "abuse", false) == 0)
            ended++;
    }
    wsd_log_notice("abuse: banning %s for %" PRIu64 " ms after %" PRIu64
                   " violations, ending its %u connections",
                   addr, s->cfg->abuse_ban_ms, s->cfg->abuse_limit, ended);
}

void wsd_abuse_record(struct supervisor *s, const struct wsd_ip *ip)
{
    if (s->cfg->abuse_limit == 0)
        return;
    uint64_t now = wsd_now_ms();
    struct wsd_ip_entry *e = wsd_iptable_get(&s->abuse, ip);
    if (!e) {
        /* Make room by forgetting IPs whose window and ban are over. */
        if (s->abuse.used == s->abuse.cap)
            for (uint32_t i = 0; i < s->abuse.cap; i++) {
                struct wsd_ip_entry *x = &s->abuse.entries[i];
                if (x->since_ms + s->cfg->abuse_window_ms <= now && x->until_ms <= now)
                    wsd_iptable_drop(&s->abuse, &x->ip);
            }
        e = wsd_iptable_put(&s->abuse, ip);
        if (!e)
            return;
    }
    if (e->until_ms > now)
        return; /* already banned */
    if (e->since_ms + s->cfg->abuse_window_ms <= now) {
        e->since_ms = now;
        e->count = 0;
    }
    if (++e->count >= s->cfg->abuse_limit) {
        e->until_ms = now + s->cfg->abuse_ban_ms;
        e->count = 0;
        ban(s, ip, e->until_ms);
    }
}
