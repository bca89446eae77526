/* SPDX-License-Identifier: MIT */
/* The receiving side of a WebSocket connection (RFC 6455 5.4-5.6): frames in, events out.
 * Checks masking, opcodes, RSV bits, control frame rules, fragmentation order, UTF-8 of text
 * messages and close reasons across fragments, and the message size and fragment count limits.
 * Incremental: bytes may arrive split anywhere; no allocation, no I/O, no logging. */
#ifndef WSD_PROTO_WS_READER_H
#define WSD_PROTO_WS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

enum wsd_ws_event_type {
    WSD_WS_EV_NONE = 0,    /* all input consumed, nothing to report yet */
    WSD_WS_EV_DATA,        /* a piece of the current message's payload: data/len */
    WSD_WS_EV_MESSAGE_END, /* the current message is complete (FIN frame ended) */
    WSD_WS_EV_PING,        /* a whole ping: data/len is its payload (<= 125 bytes) */
    WSD_WS_EV_PONG,        /* a whole pong: data/len is its payload */
    WSD_WS_EV_CLOSE,       /* a valid close: close_code (1005 if none), data/len = reason */
};

struct wsd_ws_event {
    enum wsd_ws_event_type type;
    uint8_t opcode;   /* WSD_OP_TEXT or WSD_OP_BINARY for DATA and MESSAGE_END */
    bool first;       /* DATA: the first piece of a new message */
    bool compressed;  /* DATA/MESSAGE_END: the message's first frame had RSV1 (RFC 7692) */
    uint16_t close_code;
    const uint8_t *data; /* view: into the caller's buffer (DATA, unmasked in place) or into the
                            reader (PING/PONG/CLOSE); valid until the next feed call */
    size_t len;
};

enum wsd_ws_reader_state {
    WSD_WS_READ_HEADER = 0, /* zero state is the start state */
    WSD_WS_READ_PAYLOAD,
    WSD_WS_READ_CLOSED, /* a close frame was received: nothing more is accepted */
    WSD_WS_READ_FAILED, /* an error was returned: the reader is dead */
};

struct wsd_ws_reader {
    /* Configuration: set before the first feed (wsd_ws_reader_init). */
    uint64_t max_message;   /* payload bytes per message, summed over fragments (1009 past it) */
    uint64_t max_compressed; /* the same for a compressed (RSV1) message's wire bytes; init sets
                                it to max_message. The inflated size is the caller's to limit. */
    uint32_t max_fragments; /* frames per message (1009 past it); 0 = no limit */
    bool expect_masked;     /* server side: client frames must be masked (1002 otherwise) */
    bool allow_rsv1;        /* permessage-deflate negotiated: RSV1 allowed on a first frame */

    /* Private state. */
    enum wsd_ws_reader_state _state;
    uint8_t _hbuf[WSD_FRAME_HEADER_MAX];
    size_t _hlen;
    struct wsd_frame_header _hdr;
    uint64_t _frame_done;  /* payload bytes of the current frame already consumed */
    uint8_t _msg_opcode;   /* opcode of the message in progress, 0 when none */
    bool _msg_compressed;
    bool _msg_started;     /* a DATA event with first=true was emitted for this message */
    uint64_t _msg_len;
    uint32_t _msg_frames;
    uint32_t _utf8;
    uint8_t _ctrl[WSD_CONTROL_PAYLOAD_MAX];
    size_t _ctrl_len;
    uint16_t _error;       /* FAILED: the close code returned again on every later call */
};

void wsd_ws_reader_init(struct wsd_ws_reader *r, uint64_t max_message, uint32_t max_fragments,
                        bool expect_masked, bool allow_rsv1);

/* Consume bytes from buf and report at most one event in *ret_ev. buf is written: payload is
 * unmasked in place, and DATA events point into it.
 * Returns bytes consumed (0..len), with ret_ev->type WSD_WS_EV_NONE when everything was
 * consumed without completing an event; call again with the rest (buf + consumed) while it
 * returns events. Returns WSD_PROTO_ERR_CLOSE(code) on a violation, with code 1002 (protocol),
 * 1007 (invalid UTF-8) or 1009 (too big); the reader then stays failed.
 * A zero-length message yields one DATA event with len 0 and first=true, then MESSAGE_END.
 * For compressed messages UTF-8 is not checked (the inflated text must be).
 * At most INT_MAX bytes are looked at per call (the return is an int): a larger len is
 * treated as INT_MAX, so call again with the rest. */
int wsd_ws_reader_feed(struct wsd_ws_reader *r, uint8_t *buf, size_t len,
                       struct wsd_ws_event *ret_ev);

#endif
