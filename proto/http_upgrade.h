/* SPDX-License-Identifier: MIT */
/* The HTTP/1.1 upgrade request (RFC 6455 4.1-4.2.1, RFC 9110/9112): incremental, zero-copy.
 * The caller accumulates the bytes; each call scans only the new ones for the end of the header
 * block, then parses the whole request once. No allocation, no I/O. */
#ifndef WSD_PROTO_HTTP_UPGRADE_H
#define WSD_PROTO_HTTP_UPGRADE_H

#include <stddef.h>
#include <stdint.h>

#define WSD_HTTP_MAX_HEADERS 64

struct wsd_http_view {
    const char *ptr; /* into the caller's buffer; NULL when absent */
    size_t len;
};

struct wsd_http_header {
    struct wsd_http_view name;
    struct wsd_http_view value; /* optional whitespace trimmed */
};

struct wsd_http_upgrade {
    /* Results: views into the caller's buffer, valid while it is unchanged. */
    struct wsd_http_view method;
    struct wsd_http_view target;     /* request-target as sent, e.g. "/chat?x=1" */
    struct wsd_http_view host;
    struct wsd_http_view key;        /* Sec-WebSocket-Key, validated: base64 of 16 bytes */
    struct wsd_http_view origin;     /* Origin, if any */
    struct wsd_http_view protocols;  /* Sec-WebSocket-Protocol, if any (first occurrence) */
    struct wsd_http_view extensions; /* Sec-WebSocket-Extensions, if any (first occurrence) */
    struct wsd_http_header headers[WSD_HTTP_MAX_HEADERS];
    size_t num_headers;

    /* Private: how far the search for the blank line got, so bytes are scanned once. */
    size_t _scanned;
};

/* buf holds all len bytes received so far (the same prefix on every call; start with a zeroed
 * struct). Returns:
 *  - the request size (> 0, up to and including the blank line) when it is a valid upgrade
 *    request; bytes after it belong to the WebSocket stream;
 *  - WSD_PROTO_NEED_MORE when the header block is not complete yet and len <= max_bytes;
 *  - WSD_PROTO_ERR_HTTP(431) when no end was found within max_bytes, or over
 *    WSD_HTTP_MAX_HEADERS header lines;
 *  - WSD_PROTO_ERR_HTTP(400) for a malformed request line or header (bare CR or LF, obsolete
 *    line folding, bad token, no HTTP/1.1), a missing or duplicate Host, a Connection without
 *    the "upgrade" token, a missing, duplicate or invalid Sec-WebSocket-Key;
 *  - WSD_PROTO_ERR_HTTP(405) for any method but GET;
 *  - WSD_PROTO_ERR_HTTP(426) for no "websocket" token in Upgrade, or a
 *    Sec-WebSocket-Version that is missing or not 13. */
int wsd_http_upgrade_parse(struct wsd_http_upgrade *req, const uint8_t *buf, size_t len,
                           size_t max_bytes);

/* Any HTTP/1.1 request head, with the same strictness (the metrics listener uses it): returns
 * the head's size, WSD_PROTO_NEED_MORE, or WSD_PROTO_ERR_HTTP(431 or 400: malformed, or a
 * missing or duplicate Host). method, target, host, origin and headers are filled; the
 * upgrade-only fields stay empty. */
int wsd_http_request_parse(struct wsd_http_upgrade *req, const uint8_t *buf, size_t len,
                           size_t max_bytes);

/* Case-insensitive lookup of a header's first occurrence; NULL view when absent. */
struct wsd_http_view wsd_http_upgrade_header(const struct wsd_http_upgrade *req,
                                             const char *name);

#endif
