/* SPDX-License-Identifier: MIT */
/* The acceptor's state, shared by its two halves: loop.c (the io_uring loop: submissions and
 * completions) and acceptor_conn.c (a connection in handshake: its bytes, its refusal or its
 * handoff, and the supervisor's notices that decide admission). Private to those two files. */
#ifndef WSD_CORE_ACCEPTOR_H
#define WSD_CORE_ACCEPTOR_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "core/shared.h"
#include "proto/http_upgrade.h"

#define NO_CONN UINT32_MAX

enum conn_state {
    CONN_FREE = 0,
    CONN_READING,  /* reading the upgrade request, handshake deadline running */
    CONN_LINGER,   /* error response sent, draining until EOF or the linger deadline */
    CONN_CLOSING,  /* shut down, waiting for the in-flight recv to come back */
};

/* A connection in handshake. Owner: the acceptor's slot table. */
struct hs_conn {
    int fd;
    uint32_t gen;
    enum conn_state state;
    uint32_t prev, next; /* on the pending or the linger list, ordered by deadline */
    uint64_t deadline_ms;
    uint64_t accepted_ns;
    size_t scanned;      /* wsd_http_upgrade._scanned between reads */
    struct sockaddr_storage peer; /* as accept() saw it: the worker gets it with the socket */
    struct wsd_ip ip;
    bool tls;            /* the worker will run TLS: nothing is read here */
    uint8_t *buf;        /* bytes received so far; NULL until the first */
    uint32_t len, cap;
};

struct conn_list {
    uint32_t head, tail;
};

struct acceptor {
    const struct wsd_acceptor_args *args;
    const struct wsd_config *cfg;
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    uint8_t *bufs;
    struct hs_conn *conns;
    uint32_t nconns;
    uint32_t free_head; /* free slots chained through .next */
    struct conn_list pending, linger;
    bool tick_armed;
    bool accept_armed[2]; /* [0] ws://, [1] wss:// */
    bool stop;
    bool quiescing; /* accepting no more: exit once no handshake is left */
    uint64_t live;
    struct __kernel_timespec tick_ts;
    struct wsd_iptable per_ip; /* count: live connections; until_ms: end of a ban */
    struct signalfd_siginfo sig;
    int sig_fd;
};

/* loop.c */
void acceptor_arm_tick(struct acceptor *a);
void acceptor_arm_read(struct acceptor *a, uint32_t slot);
void acceptor_close_by_ring(struct acceptor *a, int fd);
void acceptor_quiesce(struct acceptor *a);

/* acceptor_conn.c */
void hs_list_remove(struct acceptor *a, struct conn_list *l, uint32_t slot);
void hs_conn_free(struct acceptor *a, uint32_t slot);
void hs_conn_refuse(struct acceptor *a, uint32_t slot, int status);
/* One notice from the supervisor (or from the start seed); all queued ones, a batch per call. */
void hs_ctl_apply(struct acceptor *a, const struct wsd_acceptor_msg *m);
void hs_ctl_drain(struct acceptor *a);
int hs_conn_hand_off(struct acceptor *a, uint32_t slot, size_t request_len,
                     const struct wsd_http_view *target);
int hs_conn_append(struct hs_conn *c, const uint8_t *data, uint32_t n, uint32_t limit);
bool hs_conn_process(struct acceptor *a, uint32_t slot);
void hs_conn_accepted(struct acceptor *a, int fd, uint32_t which);

#endif
