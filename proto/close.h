/* SPDX-License-Identifier: MIT */
/* Close frame payloads (RFC 6455 5.5.1, 7.4): which codes may be received and sent, and the
 * payload layout (2-byte code + UTF-8 reason, 125 bytes at most). */
#ifndef WSD_PROTO_CLOSE_H
#define WSD_PROTO_CLOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSD_CLOSE_REASON_MAX 123 /* 125 - 2 bytes of code */

/* A code a peer may put on the wire: 1000-1003, 1007-1011, 3000-4999. */
bool wsd_close_code_is_valid(uint16_t code);

/* Parse a received close payload. Returns 0 and sets *ret_code (WSD_CLOSE_NO_STATUS when the
 * payload is empty) and the reason view (into payload); WSD_PROTO_ERR_CLOSE(1002) for a 1-byte
 * payload or an invalid code; WSD_PROTO_ERR_CLOSE(1007) for a reason that is not UTF-8. */
int wsd_close_payload_parse(const uint8_t *payload, size_t len, uint16_t *ret_code,
                            const uint8_t **ret_reason, size_t *ret_reason_len);

/* Write code + reason (truncated to WSD_CLOSE_REASON_MAX bytes, never inside a UTF-8
 * character) into out. code WSD_CLOSE_NO_STATUS writes an empty payload. Returns the size. */
size_t wsd_close_payload_write(uint8_t out[125], uint16_t code, const char *reason,
                               size_t reason_len);

#endif
