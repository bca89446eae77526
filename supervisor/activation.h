/* SPDX-License-Identifier: MIT */
/* Sockets handed to wsd at exec time the way systemd passes them (LISTEN_FDS, LISTEN_PID,
 * LISTEN_FDNAMES, read through libsystemd's sd_listen_fds_with_names): by a .socket unit, or by
 * the wsd generation that started this one on SIGUSR2. */
#ifndef WSD_SUPERVISOR_ACTIVATION_H
#define WSD_SUPERVISOR_ACTIVATION_H

#include <stdbool.h>
#include <stdio.h>

/* What was passed in, by FileDescriptorName=; -1 where nothing was. */
struct wsd_inherited {
    int ws;      /* "ws": a listening TCP socket for ws:// */
    int wss;     /* "wss": a listening TCP socket for wss:// */
    int control; /* "wsd-control": wsctl's listening unix socket (SIGUSR2 upgrade) */
    int upgrade; /* "wsd-upgrade": the pipe on which to tell the old generation we are ready */
    int metrics; /* "wsd-metrics": the WSD_METRICS_LISTEN socket (SIGUSR2 upgrade) */
};

/* Take every passed fd: check it is what its name says, move it above the fds wsd keeps at
 * fixed numbers (CLOEXEC, non-blocking) and unset LISTEN_* so children do not see them. A
 * passed fd that is not for this process (LISTEN_PID names another) is left alone, as systemd
 * specifies. Returns 0 with *ret filled (all -1 if nothing was passed), or -EINVAL after one line
 * on err_out naming the variable, the value and what is allowed. */
int wsd_activation_take(struct wsd_inherited *ret, FILE *err_out);

/* True if any listening socket was passed in. */
bool wsd_activation_has_listeners(const struct wsd_inherited *in);

#endif
