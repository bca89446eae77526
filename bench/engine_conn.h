/* SPDX-License-Identifier: MIT */
/* wsbench's engine state, shared by its two halves: engine.c (the io_uring loop, the phases,
 * timeouts and the kill mode) and ws_conn.c (one connection's life: its frames out, every echo
 * verified, the close handshake). Private to those two files. */
#ifndef WSB_ENGINE_CONN_H
#define WSB_ENGINE_CONN_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench/control.h"
#include "bench/engine.h"
#include "bench/upgrade.h"
#include "core/sys.h"
#include "proto/ws_reader.h"

enum op { OP_CANCEL = 0, OP_CONNECT, OP_SEND, OP_RECV };

enum state {
    ST_FREE = 0,
    ST_CONNECTING,
    ST_HANDSHAKE,      /* request queued, waiting for the 101 */
    ST_OPEN,
    ST_CLOSE_SENT,     /* our close frame is queued, waiting for the server's */
    ST_CLOSE_RECEIVED, /* close handshake done, waiting for the server to end TCP (RFC 6455 7.1.1) */
    ST_ABORTING,       /* shut down after an error: waiting for in-flight operations */
};

enum phase { PH_OPENING, PH_RUN, PH_STOP };

#define PATTERN_SLACK 251 /* a message starts at one of 251 offsets into the pattern */
#define CTRL_ROOM 4096    /* output room for pongs, the close frame and the handshake */

/* One connection. Owned by its slot in struct engine; a slot is reused only once no operation
 * of the previous connection is in flight (inflight == 0), so user_data needs no generation. */
struct conn {
    unsigned slot;
    int fd;
    enum state st;
    unsigned inflight;
    bool send_busy, recv_busy;
    uint8_t *obuf;             /* bytes queued for the server: [0, olen) */
    size_t ocap, olen, osending;
    uint8_t *rbuf;             /* receive buffer; holds the 101 head until it is complete */
    size_t rcap, rlen;
    struct wsd_ws_reader rd;
    char key[WSB_KEY_LEN + 1];
    uint64_t t_start;          /* connect submitted (ns) */
    uint64_t deadline;         /* handshake or close deadline (ns) */
    uint64_t tx_seq, rx_seq;   /* messages sent / fully echoed */
    size_t rx_off;             /* bytes of message rx_seq verified so far */
    uint64_t *tx_time;         /* send time of message seq at [seq % pipeline] */
    uint16_t lport;            /* kill: our port, how wsd's list names the connection */
    uint64_t wsd_id;           /* kill: wsd's connection id, 0 until the list named it */
};

struct engine {
    const struct wsb_config *cfg;
    struct wsb_result *res;
    struct io_uring ring;
    struct conn *conns;
    unsigned nconns;
    unsigned next_start;       /* opening phase: next slot to connect */
    unsigned connecting;       /* connects + handshakes in flight */
    unsigned live;             /* slots not ST_FREE */
    enum phase phase;
    uint64_t t0, t_run, t_end, t_hard;
    uint8_t *pattern;          /* size + PATTERN_SLACK bytes the messages are cut from */
    uint64_t rng;
    bool hooked;
    /* kill: one request at a time, in slot order, once settled and the ids are known */
    bool settled; /* --settle has passed since the last connection opened */
    bool ids_mapped;
    uint64_t next_list_at;     /* retry time while wsd's list lacks some connections */
    unsigned kill_next;        /* next slot to kill */
    struct conn *kill_target;  /* waiting for its close frame, or NULL */
    struct conn *kill_asked;   /* whose kill request is waiting for wsd's answer */
    struct wsb_control_req kill_req; /* that request (fd -1 once answered) */
    uint64_t t_kill;           /* when its kill was requested */
};

/* xorshift64*: masking keys only need to differ per frame here, not to resist an attacker. */
static inline uint64_t next_rand(struct engine *e)
{
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    return e->rng * 2685821657736338717ull;
}

/* engine.c */
void wsb_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
struct io_uring_sqe *wsb_get_sqe(struct engine *e);
void wsb_post_send(struct engine *e, struct conn *c);
/* Opening phase of echo and hold: keep up to connect_batch connects in flight. */
void wsb_maybe_start_more(struct engine *e);

/* ws_conn.c */
int wsb_conn_start(struct engine *e, struct conn *c);
void wsb_send_message(struct engine *e, struct conn *c);
void wsb_start_close(struct engine *e, struct conn *c);
void wsb_on_open(struct engine *e, struct conn *c);
void wsb_feed_frames(struct engine *e, struct conn *c, uint8_t *buf, size_t len);
void wsb_conn_abort(struct engine *e, struct conn *c);
void wsb_conn_error(struct engine *e, struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void wsb_conn_release(struct engine *e, struct conn *c);
void wsb_conn_done(struct engine *e, struct conn *c);

#endif
