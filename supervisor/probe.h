/* SPDX-License-Identifier: MIT */
/* WSD_HANDLER=test-probe, for the tests only: each text message names something the sandbox
 * should forbid; the worker tries it and answers "NAME: ok", "NAME: <errno name>" or a value.
 * What the seccomp filter kills never answers: the supervisor logs the worker's SIGSYS. */
#ifndef WSD_SUPERVISOR_PROBE_H
#define WSD_SUPERVISOR_PROBE_H

extern const struct wsd_conn_handler wsd_probe_handler;

#endif
