/* SPDX-License-Identifier: MIT */
/* The supervisor: owns the listening socket, starts and restarts the acceptor, keeps the worker
 * pool warm, watches every child's pidfd, reaps, and ends children only through their pidfds. It
 * never parses bytes from the network. */
#ifndef WSD_SUPERVISOR_SUPERVISOR_H
#define WSD_SUPERVISOR_SUPERVISOR_H

struct wsd_config;

/* Run wsd until SIGTERM/SIGINT and a clean drain. Returns the process exit status
 * (enum wsd_exit). */
int wsd_supervisor_run(const struct wsd_config *cfg);

#endif
