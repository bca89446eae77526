/* SPDX-License-Identifier: MIT */
/* The wsd-metrics process: plain HTTP on WSD_METRICS_LISTEN, for Prometheus (/metrics) and the
 * live dashboard (/, /api/state, POST /api/kill). It faces the network so the supervisor does
 * not have to: it parses every request itself and asks the supervisor only fixed control
 * requests over a socketpair (control.c: read-only ones, and kill of one connection). */
#ifndef WSD_SUPERVISOR_METRICS_HTTP_H
#define WSD_SUPERVISOR_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct wsd_config;
struct wsd_buf;
struct wsd_http_upgrade;

/* What the supervisor gives the process it spawns. */
struct wsd_metrics_http_args {
    const struct wsd_config *cfg;
    pid_t supervisor_pid;
    int listen_fd; /* the listener, kept open by the supervisor */
    int chan_fd;   /* this process's end of the control socketpair */
};

/* The process's main (spawn.h: never returns). */
void wsd_metrics_http_main(void *args);

/* Send one control request line to the supervisor and read its answer (up to the NUL that
 * ends it) into *answer. Returns 0, or -errno / -ETIMEDOUT. */
int wsd_metrics_ask(int chan_fd, const char *request, struct wsd_buf *answer);

/* metrics_routes.c: answer one whole request (head parsed into req, then body_len bytes of
 * body) with a whole HTTP/1.1 response appended to out ("Connection: close"). */
void wsd_metrics_route(const struct wsd_config *cfg, int chan_fd,
                       const struct wsd_http_upgrade *req, const uint8_t *body, size_t body_len,
                       struct wsd_buf *out);

/* An error response without asking anything (the server's own 400, 408, 413, 431). */
void wsd_metrics_respond_error(struct wsd_buf *out, int status, const char *why);

/* dashboard.c: the page, compiled into the binary. */
extern const char wsd_dashboard_html[];
size_t wsd_dashboard_html_len(void);

#endif
