/* SPDX-License-Identifier: MIT */
/* The inside of one connection, shared by its two halves: core/conn.c (set-up, the 101, the
 * event loop, heartbeat, signals, the end) and core/conn_io.c (the data path: bytes in, the
 * receive rules, messages to the handler, frames out). Nothing outside these two includes it. */
#ifndef WSD_CORE_CONN_IO_H
#define WSD_CORE_CONN_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "core/conn.h"
#include "core/listen.h"
#include "proto/deflate.h"
#include "proto/ws_reader.h"

#define IN_BUF_SIZE 65536 /* buffers that grew past this are freed when they empty */
/* One read takes up to this much: a few 64 KiB messages whole, handed to the handler from
 * where they were read. Its pages are touched only by connections that send that much. */
#define READ_SIZE (256 * 1024)
#define OUT_PAUSE_MIN (1u << 20) /* stop reading while this much (or 2 messages) is unsent */
#define LOG_PATH_MAX 256

enum conn_state {
    ST_OPEN,      /* messages flow both ways */
    ST_CLOSING,   /* our close frame is queued; frames are read until the client's close */
    ST_FINISHING, /* no more input is parsed; flush output, then half-close */
    ST_DRAIN,     /* half-closed: read and drop until the client closes or the timer fires */
    ST_DONE,
};

enum { EV_SOCKET = 1, EV_SIGNAL = WSD_CONN_LOOP_SIGNAL, EV_HANDLER = 16 /* + a handler's tag */ };

struct wsd_conn {
    const struct wsd_config *cfg;
    int fd, sig_fd, ep; /* ep is the worker's (struct wsd_conn_loop), kept across connections */
    struct wsd_conn_loop *loop;
    /* Deadlines in CLOCK_MONOTONIC ms, 0 = none: the loop's epoll_wait times out at the
     * earliest, so they cost no timerfd (and no syscall to arm). */
    uint64_t close_deadline_ms; /* our close frame or the client's: the handshake must end */
    uint64_t hb_wake_ms;        /* the next ping or heartbeat verdict is due */
    uint64_t next_ping_ms;
    bool verdict_sent;
    wsd_conn_verdict_cb on_verdict;
    enum conn_state state;
    struct wsd_ws_reader reader;
    struct wsd_buf msg; /* the message being reassembled */
    const uint8_t *held; /* its first piece, still in the read buffer (conn_io.c keep_held) */
    size_t held_len;
    uint8_t msg_opcode;
    bool pmd;                   /* permessage-deflate agreed */
    struct wsd_deflate deflate; /* its zlib state, allocated on first use */
    struct wsd_buf zout;        /* a compressed outgoing message */
    uint32_t msg_utf8;          /* UTF-8 state of an inflated text message */
    struct wsd_buf out;         /* bytes the socket has not taken yet, or a batch gathered */
    bool out_blocked;           /* the socket took less than offered: wait for EPOLLOUT */
    size_t out_pause;
    uint32_t ep_events; /* what fd is registered for */
    bool code_set;
    bool input_paused; /* the handler's backpressure */
    bool batch;        /* the handler is queueing several messages: write them at the end */
    bool end_told;     /* on_end has run */
    bool last;         /* the worker exits after this connection */
    /* A termination came and the worker will exit: once our close frame is out, what is left
     * (the client's close, the TCP close, the exit's teardown) is work nobody waits for, so
     * it runs at SCHED_IDLE and the next termination's request and close frame go first. */
    bool yield_when_sent;
    const struct wsd_conn_handler *handler;
    void *userdata;
    struct wsd_conn_result res;
    uint64_t id;
    uint64_t start_ms;
    char peer[WSD_ADDR_STRLEN];
    char path[LOG_PATH_MAX];
    struct wsd_tls *tls; /* wss://: the session every byte goes through; NULL for ws:// */
    size_t last_read;    /* bytes the last read returned */
};

/* Write n bytes through the transport (TLS or the socket) now. Returns bytes taken (> 0),
 * -EAGAIN, or -errno. Through TLS a call after -EAGAIN must offer at least the same bytes. */
ssize_t wsd_conn_io_send_raw(struct wsd_conn *c, const void *buf, size_t n);

/* Write iov (n <= 2 pieces) as the socket takes it (gathered first inside a batch); the rest
 * is buffered and written when the socket is writable. Returns 0, -EPIPE (the connection
 * died) or -ENOMEM. */
int wsd_conn_io_send_iov(struct wsd_conn *c, struct iovec *iov, int n);

/* Send one unfragmented frame. Same returns as wsd_conn_io_send_iov. */
int wsd_conn_io_send_frame(struct wsd_conn *c, uint8_t opcode, const uint8_t *data, size_t len);

/* Queue our close frame with code and reason (once) and wait for the client's. */
void wsd_conn_io_start_close(struct wsd_conn *c, uint16_t code, const char *reason);

/* The connection ended without a close handshake (keeps a close code already set). */
void wsd_conn_io_abort(struct wsd_conn *c);

/* Register the socket for what the connection wants now (input unless paused, output while
 * some is unsent); a no-op when that has not changed. */
void wsd_conn_io_update_epoll(struct wsd_conn *c);

/* Run the receive rules over n bytes at buf (bytes that came with the handoff). */
void wsd_conn_io_input(struct wsd_conn *c, uint8_t *buf, size_t n);

/* Read into in (READ_SIZE bytes) and process what came: the socket is readable, or (wait) the
 * worker blocks in recv() until it is (core/wake.h: a signal ends that wait early). */
void wsd_conn_io_read(struct wsd_conn *c, uint8_t *in, bool wait);

/* The socket is writable: write what is buffered. */
void wsd_conn_io_writable(struct wsd_conn *c);

#endif
