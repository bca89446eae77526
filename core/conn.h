/* SPDX-License-Identifier: MIT */
/* One upgraded WebSocket connection, served by the worker that owns it: sends the 101, runs
 * the RFC 6455 receive rules, hands whole messages to a handler, answers pings and closes, and
 * ends the connection on a close handshake, a violation, a signal or a dead peer. */
#ifndef WSD_CORE_CONN_H
#define WSD_CORE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wsd_config;
struct wsd_conn;
struct wsd_tls_ctx;
struct wsd_handoff;

struct wsd_http_upgrade;

/* What a handler sees of the upgrade request (views valid during on_request only). */
struct wsd_conn_request {
    const struct wsd_http_upgrade *http;
    const struct wsd_handoff *handoff; /* peer, connection id, flags (WSD_HANDOFF_TLS) */
    int fd;                            /* the socket, for getsockname() */
};

/* What a worker does with a connection: echo and exec are two of these. Every hook but
 * on_message may be NULL; userdata is wsd_conn_params.userdata. */
struct wsd_conn_handler {
    /* Before the 101: 0 accepts, an HTTP status (e.g. 404) refuses the upgrade with it. */
    int (*on_request)(struct wsd_conn *c, const struct wsd_conn_request *req, void *userdata);
    /* After the 101 is queued: start whatever serves the connection. */
    void (*on_open)(struct wsd_conn *c, void *userdata);
    /* A whole message arrived: opcode is WSD_OP_TEXT or WSD_OP_BINARY; data is valid during
     * the call only. */
    void (*on_message)(struct wsd_conn *c, uint8_t opcode, const uint8_t *data, size_t len,
                       void *userdata);
    /* An fd watched with wsd_conn_watch() is ready (events as epoll reports them). */
    void (*on_fd)(struct wsd_conn *c, uint32_t tag, uint32_t events, void *userdata);
    /* Once per loop iteration, before waiting: returns how long the wait may last in ms, or -1
     * for no limit (a handler's own deadlines, e.g. resuming paused input). */
    int (*on_loop)(struct wsd_conn *c, void *userdata);
    /* Once, when the connection stops being open (a close frame either way, a violation, a
     * signal, the peer gone): no more messages will be delivered or accepted. */
    void (*on_end)(struct wsd_conn *c, void *userdata);
};

/* A detector in the worker reached a verdict about connection conn_id; the supervisor acts. */
enum wsd_verdict {
    WSD_VERDICT_HEARTBEAT = 1, /* nothing from the client for ping interval + timeout */
};
typedef void (*wsd_conn_verdict_cb)(uint64_t conn_id, enum wsd_verdict v, void *userdata);

/* The connection is upgraded (101 queued); path is its request target. */
typedef void (*wsd_conn_open_cb)(uint64_t conn_id, const char *path, void *userdata);

/* A worker's one epoll set, for waiting idle and for serving, kept from one connection to the
 * next (WSD_WORKER_REUSE): it always watches the signalfd (tag WSD_CONN_LOOP_SIGNAL), the socket
 * while serving, and whatever its owner adds between connections (tags from
 * WSD_CONN_LOOP_OWNER_TAG up, removed before it serves). So a connection costs one epoll_ctl
 * for its socket instead of a set and its registrations. Owner: the worker. */
struct wsd_conn_loop {
    int ep;        /* -1 until opened */
    bool foreign;  /* a handler watched fds of its own in it: close it, open a new one */
};

#define WSD_CONN_LOOP_INIT {.ep = -1}
enum { WSD_CONN_LOOP_SIGNAL = 2, WSD_CONN_LOOP_OWNER_TAG = 8 };

/* Have the set ready to wait in: a foreign one closed, a closed one made, watching sig_fd.
 * 0 or -errno. */
int wsd_conn_loop_ready(struct wsd_conn_loop *l, int sig_fd);

/* Close the set (the worker is leaving, or it is foreign). */
void wsd_conn_loop_done(struct wsd_conn_loop *l);

struct wsd_conn_params {
    const struct wsd_config *cfg;
    int fd;     /* the upgraded socket; wsd_conn_serve closes it */
    int sig_fd; /* signalfd for SIGTERM: a graceful close with 1001 */
    struct wsd_conn_loop *loop; /* the worker's; the same one for every connection */
    const struct wsd_handoff *handoff;
    uint8_t *payload; /* the request, then bytes that followed it (read and written) */
    size_t payload_cap; /* its size: a wss:// request is read into it through TLS */
    const struct wsd_conn_handler *handler;
    wsd_conn_verdict_cb on_verdict;
    wsd_conn_open_cb on_open; /* may be NULL */
    void *userdata;
    bool ignore_term; /* tests only: never read the signalfd (exercises SIGKILL escalation) */
    bool last; /* the worker exits after this connection (see yield_when_sent in conn.c) */
    struct wsd_tls_ctx *tls; /* for a WSD_HANDOFF_TLS connection: the TLS front runs first */
};

enum wsd_closed_by {
    WSD_CLOSED_BY_CLIENT = 0, /* the client sent the first close frame */
    WSD_CLOSED_BY_SERVER,     /* wsd sent the first close frame (violation, signal) */
    WSD_CLOSED_ABNORMAL,      /* the TCP connection ended without a close handshake */
};

struct wsd_conn_result {
    uint64_t in_msgs, in_bytes, out_msgs, out_bytes;
    uint16_t close_code; /* the first close code sent or received; 1006 if none */
    enum wsd_closed_by closed_by;
    bool leave; /* a termination named no connection: the worker should exit, not reuse */
    int refused; /* wss:// ended before the upgrade: WSD_TLS_REFUSED_* (core/tls_accept.h) or
                  * the HTTP status sent through TLS */
};

/* Serve the connection until it ends; logs one line when it opens and one when it closes.
 * Publishes its state in wsd_live (core/live.h) as it goes.
 * SIGTERM (read from sig_fd) closes gracefully: with si_value from wsd_kill_value() it closes
 * with that code (and the mailbox's reason) if it names this connection, and is ignored if it
 * names another; a plain SIGTERM closes with 1001.
 * Returns 0, or -errno if it could not even start (fd closed either way). */
int wsd_conn_serve(const struct wsd_conn_params *p, struct wsd_conn_result *ret);

/* Queue a whole message (one frame) to the client. Returns 0, -EPIPE once the connection is
 * closing, or -ENOMEM. */
int wsd_conn_send(struct wsd_conn *c, uint8_t opcode, const uint8_t *data, size_t len);

/* Start the close handshake with code and reason (<= 123 bytes of UTF-8), as wsd's side. No
 * effect once the connection is closing. */
void wsd_conn_close(struct wsd_conn *c, uint16_t code, const char *reason);

/* Watch fd for events (EPOLLIN, EPOLLOUT; level-triggered) and call on_fd with tag (< 1000)
 * when it is ready; calling again changes the events, 0 stops watching for now. Returns 0 or
 * -errno. The fd stays the caller's; call wsd_conn_unwatch() before closing it. */
int wsd_conn_watch(struct wsd_conn *c, int fd, uint32_t tag, uint32_t events);
void wsd_conn_unwatch(struct wsd_conn *c, int fd);

/* Stop (true) or resume (false) reading from the client: backpressure from a handler. */
void wsd_conn_pause_input(struct wsd_conn *c, bool pause);

/* Batch output (true): messages sent meanwhile are only queued, then written together when it
 * is turned off, in as few segments as the socket allows (many short messages at once). */
void wsd_conn_batch(struct wsd_conn *c, bool on);

/* Bytes queued for the client that the socket has not taken yet. */
size_t wsd_conn_unsent(const struct wsd_conn *c);

#endif
