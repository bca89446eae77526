/* SPDX-License-Identifier: MIT */
/* Close frame payloads (RFC 6455 5.5.1, 7.4): the codes a peer may send, and the payload layout
 * of a 2-byte big-endian code followed by a UTF-8 reason. */
#include "proto/close.h"

#include <string.h>

#include "proto/frame.h"
#include "proto/proto.h"
#include "proto/utf8.h"
#include "proto/ws_codes.h"

bool wsd_close_code_is_valid(uint16_t code)
{
    /* RFC 6455 7.4.1/7.4.2: 1004 is reserved, 1005/1006/1015 must never be sent, 1012-2999 are
     * for future RFCs or IANA registration, 3000-4999 are libraries' and applications'. Newer
     * IANA entries (1012-1014) are refused too, as Autobahn 7.9.x expects. */
    if (code >= WSD_CLOSE_NORMAL && code <= WSD_CLOSE_UNSUPPORTED_DATA)
        return true;
    if (code >= WSD_CLOSE_INVALID_PAYLOAD && code <= WSD_CLOSE_INTERNAL_ERROR)
        return true;
    return code >= 3000 && code <= 4999;
}

int wsd_close_payload_parse(const uint8_t *payload, size_t len, uint16_t *ret_code,
                            const uint8_t **ret_reason, size_t *ret_reason_len)
{
    uint16_t code;

    if (len == 0) {
        *ret_code = WSD_CLOSE_NO_STATUS; /* RFC 6455 7.1.5 */
        *ret_reason = payload;
        *ret_reason_len = 0;
        return 0;
    }
    /* RFC 6455 5.5.1: a body starts with a 2-byte code; 5.5: control payloads <= 125 bytes */
    if (len < 2 || len > WSD_CONTROL_PAYLOAD_MAX)
        return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_PROTOCOL_ERROR);
    code = (uint16_t)(payload[0] << 8 | payload[1]);
    if (!wsd_close_code_is_valid(code))
        return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_PROTOCOL_ERROR);
    /* RFC 6455 5.5.1: the reason is UTF-8; 8.1: invalid UTF-8 fails the connection */
    if (wsd_utf8_validate(WSD_UTF8_ACCEPT, payload + 2, len - 2) != WSD_UTF8_ACCEPT)
        return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INVALID_PAYLOAD);
    *ret_code = code;
    *ret_reason = payload + 2;
    *ret_reason_len = len - 2;
    return 0;
}

size_t wsd_close_payload_write(uint8_t out[125], uint16_t code, const char *reason,
                               size_t reason_len)
{
    if (code == WSD_CLOSE_NO_STATUS) /* RFC 6455 7.4.1: never on the wire */
        return 0;
    if (reason_len > WSD_CLOSE_REASON_MAX) {
        reason_len = WSD_CLOSE_REASON_MAX;
        /* Back up to a character start so the truncated reason stays valid UTF-8. */
        while (reason_len > 0 && ((uint8_t)reason[reason_len] & 0xC0) == 0x80)
            reason_len--;
    }
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (reason_len > 0)
        memcpy(out + 2, reason, reason_len);
    return 2 + reason_len;
}
