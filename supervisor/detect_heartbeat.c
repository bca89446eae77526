/* SPDX-License-Identifier: MIT */
/* The stuck-worker half of the heartbeat detector. A worker's heartbeat timer marks its
 * progress (wsd_live.loop_ms) at least every ping interval; one that has not for interval +
 * timeout is stuck (a loop, a stop), and no report will ever come from it. The dead-peer half
 * runs in the worker, which sees the pongs, and reports a verdict (supervisor.c). */
#include "supervisor/state.h"

#include <inttypes.h>

#include "core/config.h"
#include "core/live.h"
#include "core/log.h"
#include "proto/ws_codes.h"

void wsd_heartbeat_scan(struct supervisor *s, uint64_t now_ms)
{
    uint64_t bound = s->cfg->ping_interval_ms + s->cfg->ping_timeout_ms;
    if (s->cfg->ping_interval_ms == 0 || s->pool.busy == 0)
        return;
    for (uint32_t i = 0; i < s->pool.cap; i++) {
        struct wsd_worker *w = &s->pool.slots[i];
        struct wsd_conn_live live;
        if (w->state != WSD_WORKER_BUSY || w->cause != WSD_CAUSE_NONE ||
            wsd_worker_read_live(w, &live) < 0)
            continue;
        if (live.loop_ms + bound < now_ms) {
            wsd_log_notice("heartbeat: conn=%" PRIu64 " pid=%d worker made no progress for %" PRIu64
                           " ms",
                           w->conn_id, w->pid, now_ms - live.loop_ms);
            (void)wsd_terminate(s, w, WSD_CAUSE_HEARTBEAT, WSD_CLOSE_GOING_AWAY, "", false);
        }
    }
}
