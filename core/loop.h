/* SPDX-License-Identifier: MIT */
/* The acceptor: one io_uring loop that accepts, reads and validates upgrade requests, answers
 * refused ones, and hands valid ones to the worker pool. It runs in its own process so the
 * supervisor never parses a byte from the network. */
#ifndef WSD_CORE_LOOP_H
#define WSD_CORE_LOOP_H

#include <stdint.h>

struct wsd_config;
struct wsd_shared;

#include "core/iptable.h"

/* Messages between the supervisor and the acceptor on their control socket. */
enum wsd_acceptor_msg_type {
    WSD_ACCEPTOR_MSG_CLOSED = 1, /* to the acceptor: a connection from ip ended */
    WSD_ACCEPTOR_MSG_BAN,        /* to the acceptor: refuse ip with 429 until until_ms */
    WSD_ACCEPTOR_MSG_REFUSED,    /* to the supervisor: a handshake from ip got status */
    WSD_ACCEPTOR_MSG_QUIESCE,    /* to the acceptor: stop accepting, finish the handshakes under
                                  * way, then exit 0 (SIGUSR2: a new generation accepts now) */
    WSD_ACCEPTOR_MSG_LIVE,       /* in a start seed: a connection from ip is live */
};

struct wsd_acceptor_msg {
    uint32_t type;
    uint32_t status;
    struct wsd_ip ip;
    uint64_t until_ms;
};

struct wsd_acceptor_args {
    const struct wsd_config *cfg;
    int listen_fd;     /* ws://, or -1 */
    int tls_listen_fd; /* wss://, or -1 */
    int dispatch_fd; /* write end of the shared worker queue */
    int ctl_fd;      /* messages from the supervisor */
    struct wsd_shared *shared;
    /* The supervisor's view when this acceptor starts (a restart must not forget it): one LIVE
     * per connection handed off and not yet ended, one BAN per IP still banned. */
    const struct wsd_acceptor_msg *seed;
    uint32_t nseed;
};

/* Run until SIGTERM/SIGINT (read through a signalfd; the caller has them blocked). Returns an
 * exit status from supervisor/exit.h terms: 0 after a signal, non-zero on a fatal error. */
int wsd_acceptor_run(const struct wsd_acceptor_args *args);

#endif
