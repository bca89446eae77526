/* SPDX-License-Identifier: MIT */
/* RFC 6455 numbers, named once: opcodes (5.2), close codes (7.4.1) and the HTTP statuses the
 * upgrade handshake can answer with. No bare 1002 or 0x8 anywhere else. */
#ifndef WSD_PROTO_WS_CODES_H
#define WSD_PROTO_WS_CODES_H

enum wsd_opcode {
    WSD_OP_CONTINUATION = 0x0,
    WSD_OP_TEXT = 0x1,
    WSD_OP_BINARY = 0x2,
    WSD_OP_CLOSE = 0x8,
    WSD_OP_PING = 0x9,
    WSD_OP_PONG = 0xA,
};

enum wsd_close_code {
    WSD_CLOSE_NORMAL = 1000,
    WSD_CLOSE_GOING_AWAY = 1001,
    WSD_CLOSE_PROTOCOL_ERROR = 1002,
    WSD_CLOSE_UNSUPPORTED_DATA = 1003,
    WSD_CLOSE_NO_STATUS = 1005,   /* never on the wire: "close frame had no code" */
    WSD_CLOSE_ABNORMAL = 1006,    /* never on the wire: "TCP ended without close frame" */
    WSD_CLOSE_INVALID_PAYLOAD = 1007,
    WSD_CLOSE_POLICY_VIOLATION = 1008,
    WSD_CLOSE_MESSAGE_TOO_BIG = 1009,
    WSD_CLOSE_MANDATORY_EXTENSION = 1010,
    WSD_CLOSE_INTERNAL_ERROR = 1011,
};

enum wsd_http_status {
    WSD_HTTP_SWITCHING_PROTOCOLS = 101,
    WSD_HTTP_BAD_REQUEST = 400,
    WSD_HTTP_FORBIDDEN = 403,
    WSD_HTTP_NOT_FOUND = 404,
    WSD_HTTP_METHOD_NOT_ALLOWED = 405,
    WSD_HTTP_REQUEST_TIMEOUT = 408,
    WSD_HTTP_UPGRADE_REQUIRED = 426,
    WSD_HTTP_TOO_MANY_REQUESTS = 429,
    WSD_HTTP_HEADERS_TOO_LARGE = 431,
    WSD_HTTP_SERVICE_UNAVAILABLE = 503,
};

#endif
