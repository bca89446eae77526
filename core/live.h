/* SPDX-License-Identifier: MIT */
/* What a worker publishes about its connection, in its own memory: the supervisor reads it with
 * process_vm_readv() (and writes the kill mailbox with process_vm_writev()) while it holds the
 * worker's unreaped pidfd, so the pid cannot have been reused. Nothing is shared writable
 * between workers, and whatever a worker writes here is only data the supervisor validates. */
#ifndef WSD_CORE_LIVE_H
#define WSD_CORE_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#define WSD_LIVE_MAGIC 0x7773646c69766531ull /* "wsdlive1" */

enum wsd_live_state {
    WSD_LIVE_IDLE = 0,
    WSD_LIVE_OPEN,
    WSD_LIVE_CLOSING,
};

struct wsd_conn_live {
    uint64_t magic;
    uint64_t conn_id; /* 0 while idle */
    uint32_t state;   /* enum wsd_live_state */
    uint64_t in_msgs, in_bytes, out_msgs, out_bytes;
    uint64_t last_rx_ms;   /* CLOCK_MONOTONIC ms of the last byte from the client */
    uint64_t last_pong_ms; /* 0 until a pong to our ping arrives */
    uint64_t rtt_us;       /* round trip of the last answered ping */
    uint64_t loop_ms;      /* the worker's own progress mark (heartbeat timer, I/O) */
};

#define WSD_KILL_REASON_MAX 123

/* Written by the supervisor before it signals; read by the worker when the signal names the
 * same connection. */
struct wsd_kill_mailbox {
    uint64_t conn_id;
    uint16_t code;
    uint8_t reason_len;
    char reason[WSD_KILL_REASON_MAX];
};

/* Each worker's own copies, at the same address in every process forked from wsd. */
extern struct wsd_conn_live wsd_live;
extern struct wsd_kill_mailbox wsd_kill_mailbox;

/* The si_value of a termination signal: which connection it is for (0 = whatever the worker
 * serves) and the close code to send (0 = 1001). Connection ids stay below 2^48. */
/* A connection id no connection has: "leave if you are idle" (busy workers ignore it). Used to
 * recycle the pool after a certificate reload. */
#define WSD_KILL_IDLE_ONLY 0xffffffffffffull

static inline uint64_t wsd_kill_value(uint64_t conn_id, uint16_t code)
{
    return (uint64_t)code << 48 | (conn_id & 0xffffffffffffull);
}

static inline uint64_t wsd_kill_value_conn(uint64_t v)
{
    return v & 0xffffffffffffull;
}

static inline uint16_t wsd_kill_value_code(uint64_t v)
{
    return (uint16_t)(v >> 48);
}

#endif
