/* SPDX-License-Identifier: MIT */
/* sd_notify() messages, through libsystemd. The environment is left in place (unset_environment
 * 0): a new generation started on SIGUSR2 needs NOTIFY_SOCKET too. */
#include "supervisor/notify.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "core/sys.h"

void wsd_notify_init(struct wsd_notify *n)
{
    *n = (struct wsd_notify){0};
    uint64_t usec = 0;
    /* WATCHDOG_PID, when set, must be this process: a stale one means the watchdog is not ours */
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
        n->watchdog_ms = usec / 2000 > 0 ? usec / 2000 : 1;
}

static void format_status(char *out, size_t cap, uint32_t open, uint32_t idle)
{
    snprintf(out, cap, "STATUS=%u connections open, %u idle workers", open, idle);
}

void wsd_notify_ready(struct wsd_notify *n, uint32_t open, uint32_t idle, bool announce)
{
    n->ready = true;
    if (!announce)
        return; /* the first wsd_notify_status() sends the status */
    format_status(n->status, sizeof(n->status), open, idle);
    (void)sd_notifyf(0, "READY=1\n%s", n->status);
}

void wsd_notify_status(struct wsd_notify *n, uint32_t open, uint32_t idle)
{
    char now[sizeof(n->status)];
    format_status(now, sizeof(now), open, idle);
    if (!n->ready || n->handed_over || strcmp(now, n->status) == 0)
        return;
    memcpy(n->status, now, sizeof(now));
    (void)sd_notify(0, n->status);
}

void wsd_notify_watchdog(struct wsd_notify *n, uint64_t now_ms)
{
    if (n->watchdog_ms == 0 || n->handed_over || now_ms - n->last_watchdog_ms < n->watchdog_ms)
        return;
    n->last_watchdog_ms = now_ms;
    (void)sd_notify(0, "WATCHDOG=1");
}

void wsd_notify_reloading(struct wsd_notify *n)
{
    if (!n->handed_over)
        (void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, wsd_now_ns() / 1000);
}

void wsd_notify_reloaded(struct wsd_notify *n)
{
    if (!n->handed_over)
        (void)sd_notify(0, "READY=1");
}

void wsd_notify_stopping(struct wsd_notify *n)
{
    if (!n->handed_over)
        (void)sd_notify(0, "STOPPING=1");
}

void wsd_notify_mainpid(struct wsd_notify *n, pid_t pid)
{
    (void)sd_notifyf(0, "MAINPID=%d", (int)pid);
    n->handed_over = true;
}
