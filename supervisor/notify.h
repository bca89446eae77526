/* SPDX-License-Identifier: MIT */
/* Telling the service manager (systemd Type=notify) what wsd is doing: READY, STATUS, WATCHDOG,
 * RELOADING, STOPPING, MAINPID. Every call is a no-op when NOTIFY_SOCKET is unset, so wsd
 * started from a shell behaves exactly as without systemd. */
#ifndef WSD_SUPERVISOR_NOTIFY_H
#define WSD_SUPERVISOR_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct wsd_notify {
    uint64_t watchdog_ms; /* half of WATCHDOG_USEC; 0 = no watchdog */
    uint64_t last_watchdog_ms;
    bool ready;       /* READY=1 sent */
    char status[128]; /* the last STATUS= sent, to send only changes */
    bool handed_over; /* MAINPID= names the next generation: systemd ignores us now */
};

/* Read WATCHDOG_USEC/WATCHDOG_PID (through sd_watchdog_enabled). */
void wsd_notify_init(struct wsd_notify *n);

/* READY=1 with the first STATUS=. A generation started by SIGUSR2 passes announce false: the
 * service is up already, and systemd takes its messages only once the old generation has
 * handed MAINPID= over; it sends STATUS= from then on. */
void wsd_notify_ready(struct wsd_notify *n, uint32_t open, uint32_t idle, bool announce);

/* STATUS= with the open connections, sent only when it changed. */
void wsd_notify_status(struct wsd_notify *n, uint32_t open, uint32_t idle);

/* WATCHDOG=1 if the watchdog is on and half its interval has passed since the last one. */
void wsd_notify_watchdog(struct wsd_notify *n, uint64_t now_ms);

/* RELOADING=1 with MONOTONIC_USEC=now (systemd 253's Type=notify-reload protocol); call
 * wsd_notify_reloaded() when the reload is done. */
void wsd_notify_reloading(struct wsd_notify *n);
void wsd_notify_reloaded(struct wsd_notify *n);

/* STOPPING=1. */
void wsd_notify_stopping(struct wsd_notify *n);

/* MAINPID=pid: after a SIGUSR2 upgrade the new generation is the service's main process. Sends
 * nothing more afterwards (systemd takes messages from the main process only). */
void wsd_notify_mainpid(struct wsd_notify *n, pid_t pid);

#endif
