/* SPDX-License-Identifier: MIT */
/* RFC 6455 5.2 frame headers: parse one, write one, and (un)mask payload in place. */
#ifndef WSD_PROTO_FRAME_H
#define WSD_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSD_FRAME_HEADER_MAX 14 /* 2 + 8 (64-bit length) + 4 (mask) */
#define WSD_CONTROL_PAYLOAD_MAX 125 /* RFC 6455 5.5 */

#define WSD_FRAME_RSV1 0x4
#define WSD_FRAME_RSV2 0x2
#define WSD_FRAME_RSV3 0x1

struct wsd_frame_header {
    bool fin;
    uint8_t rsv;    /* RSV1..3 as bits WSD_FRAME_RSV1|2|3 */
    uint8_t opcode; /* enum wsd_opcode, or a reserved value */
    bool masked;
    uint8_t mask[4];
    uint64_t len;
};

/* Parse one frame header from buf (len bytes available). Stateless: with too few bytes it
 * returns WSD_PROTO_NEED_MORE and the caller calls again with more (at most 14 bytes matter).
 * Returns the header size (2..14) and fills *ret, or WSD_PROTO_ERR_CLOSE(1002) for a
 * non-minimal length encoding or a 64-bit length with the top bit set (RFC 6455 5.2).
 * Opcode, RSV and masking policy are checked by the caller (wsd_ws_reader). */
int wsd_frame_header_parse(const uint8_t *buf, size_t len, struct wsd_frame_header *ret);

/* Write a frame header with the minimal length encoding into out. mask == NULL writes an
 * unmasked (server) header; otherwise MASK is set and the 4 mask bytes follow. Returns the size. */
size_t wsd_frame_header_write(uint8_t out[WSD_FRAME_HEADER_MAX], bool fin, uint8_t rsv,
                              uint8_t opcode, uint64_t len, const uint8_t *mask);

/* XOR data in place with mask, starting at mask position offset % 4 (RFC 6455 5.3), so a
 * payload unmasked in pieces gives the same bytes as unmasked whole. */
void wsd_frame_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

#endif
