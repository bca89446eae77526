/* SPDX-License-Identifier: MIT */
/* The exec handler (WSD_HANDLER=exec): each connection runs a program, websocketd-style. Its
 * stdout lines become text messages (or raw bytes binary messages, WSD_EXEC_BINARY=1), and each
 * message is written to its stdin followed by a newline. The program exiting closes the
 * connection (1000 for status 0, 1011 otherwise); the connection ending ends the program's
 * whole process tree. Both directions are bounded by WSD_EXEC_BUFFER. */
#ifndef WSD_CORE_EXEC_H
#define WSD_CORE_EXEC_H

/* The connection handler (core/conn.h). One connection at a time per worker. */
extern const struct wsd_conn_handler wsd_exec_handler;

/* In a worker, once before its first connection: adopt orphaned descendants, and keep
 * isolate_fd (a Landlock ruleset, or -1) for every program to enter. Returns 0 or -errno. */
int wsd_exec_worker_init(int isolate_fd);

/* After wsd_conn_serve() returns: end what is left of the program's tree (SIGTERM, SIGKILL
 * half a WSD_KILL_GRACE_MS later), reap all of it and release the connection's state. */
void wsd_exec_finish(void);

#endif
