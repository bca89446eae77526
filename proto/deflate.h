/* SPDX-License-Identifier: MIT */
/* permessage-deflate (RFC 7692): choosing an offer from Sec-WebSocket-Extensions, writing the
 * response, and the per-connection inflater and deflater. Like proto/handshake.c leans on
 * wolfCrypt, this file leans on zlib, and zlib allocates its own state (lazily, on the first
 * message each way); nothing here does I/O or logs. */
#ifndef WSD_PROTO_DEFLATE_H
#define WSD_PROTO_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#define WSD_DEFLATE_RESPONSE_MAX 160 /* the longest response wsd_deflate_response_write makes */

/* What was agreed, as written in the response. client_max_window_bits is never written (RFC
 * 7692 7.1.2.2 lets the server leave it out): the inflater takes any window up to 2^15, so
 * wsd has no reason to limit the client's. */
struct wsd_deflate_params {
    bool server_no_context_takeover; /* we reset the deflater after each message */
    bool client_no_context_takeover; /* the client resets; we reset the inflater too */
    uint8_t server_max_window_bits;  /* 9-15: our deflater's window; 0 = not written, 15 */
};

/* Look through one Sec-WebSocket-Extensions value (value, len bytes: a comma-separated list
 * of extensions, each with ;-separated parameters, RFC 6455 9.1) for the first
 * permessage-deflate offer wsd can accept (RFC 7692 5, 7.1). An offer is declined, and the
 * next one considered, when a parameter is unknown, repeated, has a value it may not have or
 * lacks one it needs, or a window bits value is not 8-15 (RFC 7692 7.1). An offer asking for
 * server_max_window_bits=8 is declined too: zlib's raw deflate cannot use a 256-byte window,
 * and RFC 7692 7.1.2.1 forbids answering with a bigger one. client_max_window_bits, with or
 * without a value (8-15), is accepted and not answered.
 * Returns 1 and fills *ret_params for an accepted offer; 0 when none can be accepted or the
 * list is malformed before an acceptable offer (the connection then goes on uncompressed). */
int wsd_deflate_negotiate(const char *value, size_t len, struct wsd_deflate_params *ret_params);

/* Write the Sec-WebSocket-Extensions response value for params into out (cap bytes,
 * NUL-terminated). Returns the length without the NUL, or 0 if cap is too small. */
size_t wsd_deflate_response_write(const struct wsd_deflate_params *params, char *out, size_t cap);

/* Takes n inflated or deflated bytes (valid during the call). Returns 0, or a negative
 * WSD_PROTO_ERR_CLOSE() error that the codec call then returns unchanged. */
typedef int (*wsd_deflate_sink_cb)(const uint8_t *data, size_t n, void *userdata);

/* One connection's compression state. Owner: the connection that embeds it; release it with
 * wsd_deflate_done. */
struct wsd_deflate {
    struct wsd_deflate_params params;

    /* Private state. */
    z_stream _in, _out;
    bool _in_ready, _out_ready; /* zlib state allocated (on first use) */
    bool _in_ended;             /* the current message's stream had a final (BFINAL) block */
    uint64_t _inflated;         /* bytes inflated so far in the current message */
};

void wsd_deflate_init(struct wsd_deflate *d, const struct wsd_deflate_params *params);

/* Free the zlib state; d may be zeroed or never used. Safe to call twice. */
void wsd_deflate_done(struct wsd_deflate *d);

/* Inflate the next len bytes of a compressed message's payload (as they arrive, split
 * anywhere) and pass the output to sink in pieces. last = these are the message's final bytes:
 * the 0x00 0x00 0xff 0xff tail is appended (RFC 7692 7.2.2), and the context is reset when
 * client_no_context_takeover was agreed. The inflated size of the message is counted against
 * limit as it is produced, so at most limit + 1 bytes are ever inflated.
 * Bytes after a final (BFINAL) block are ignored until the message ends.
 * Returns 0; WSD_PROTO_ERR_CLOSE(1009) past limit; WSD_PROTO_ERR_CLOSE(1007) for data that is
 * not valid DEFLATE; WSD_PROTO_ERR_CLOSE(1011) when zlib has no memory; or the sink's error.
 * After an error the inflater must not be used again. */
int wsd_deflate_inflate(struct wsd_deflate *d, const uint8_t *in, size_t len, bool last,
                        uint64_t limit, wsd_deflate_sink_cb sink, void *userdata);

/* Compress one whole message (RFC 7692 7.2.1: deflate, Z_SYNC_FLUSH, without the final
 * 0x00 0x00 0xff 0xff) and pass it to sink in pieces; resets the context afterwards when
 * server_no_context_takeover was agreed. Returns 0, WSD_PROTO_ERR_CLOSE(1011) when zlib has
 * no memory or fails, or the sink's error (the deflater must not be used again then). */
int wsd_deflate_compress(struct wsd_deflate *d, const uint8_t *in, size_t len,
                         wsd_deflate_sink_cb sink, void *userdata);

#endif
