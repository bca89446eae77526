/* SPDX-License-Identifier: MIT */
/* The HTTP/1.1 upgrade request (RFC 6455 4.1-4.2.1, RFC 9110, RFC 9112): find the end of the
 * header block scanning each byte once, then parse and check the whole request in one pass.
 * Strict: malformed input is refused with a status, never repaired. */
#include "proto/http_upgrade.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "proto/proto.h"
#include "proto/ws_codes.h"

#define ERR_400 WSD_PROTO_ERR_HTTP(WSD_HTTP_BAD_REQUEST)

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
 * "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 9110 5.5: field-vchar = VCHAR / obs-text, plus SP / HTAB inside a value */
static bool is_field_char(uint8_t c)
{
    return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7F);
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static bool view_eq(struct wsd_http_view v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.ptr, s, v.len) == 0;
}

static bool view_eq_nocase(struct wsd_http_view v, const char *s)
{
    return v.len == strlen(s) && strncasecmp(v.ptr, s, v.len) == 0;
}

/* Look at the new bytes [_scanned, lim) for the blank line. Every LF must follow a CR
 * (RFC 9112 2.2: no bare LF), so the block ends at the first LF whose CR follows another LF.
 * Returns the block size, 0 when not found yet, or 400. */
static int find_end(struct wsd_http_upgrade *req, const uint8_t *buf, size_t lim)
{
    size_t i = req->_scanned <= lim ? req->_scanned : 0;
    const uint8_t *nl;

    while (i < lim) {
        nl = memchr(buf + i, '\n', lim - i);
        if (nl == NULL)
            break;
        i = (size_t)(nl - buf);
        if (i == 0 || buf[i - 1] != '\r')
            return ERR_400;
        /* buf[i - 2] == '\n' had its own CR checked, so this is CRLF CRLF */
        if (i >= 3 && buf[i - 2] == '\n')
            return (int)(i + 1);
        i++;
    }
    req->_scanned = lim;
    return 0;
}

/* One line of [p, end) ending in CRLF: returns its end (the CR), or NULL for a bare LF. The
 * caller rejects a bare CR: CR is no valid character of any line. */
static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));

    if (nl == NULL || nl == p || nl[-1] != '\r')
        return NULL;
    return nl - 1;
}

/* RFC 9112 3: request-line = method SP request-target SP HTTP-version; only HTTP/1.1 can
 * upgrade (RFC 6455 4.1). Returns the start of the next line, or NULL when malformed. */
static const char *parse_request_line(struct wsd_http_upgrade *req, const char *p, const char *end)
{
    const char *eol = line_end(p, end), *s;

    if (eol == NULL)
        return NULL;
    for (s = p; s < eol && is_tchar((uint8_t)*s); s++)
        ;
    if (s == p || s == eol || *s != ' ')
        return NULL;
    req->method = (struct wsd_http_view){p, (size_t)(s - p)};
    p = ++s;
    /* RFC 9112 3.2: the target is printable ASCII; its grammar is the application's */
    for (; s < eol && *s >= 0x21 && *s <= 0x7E; s++)
        ;
    if (s == p || s == eol || *s != ' ')
        return NULL;
    req->target = (struct wsd_http_view){p, (size_t)(s - p)};
    s++;
    if (eol - s != 8 || memcmp(s, "HTTP/1.1", 8) != 0)
        return NULL;
    return eol + 2;
}

/* RFC 9112 5: field-line = field-name ":" OWS field-value OWS. Returns the start of the next
 * line, or NULL when malformed (including obs-fold and space before the colon). */
static const char *parse_header(struct wsd_http_header *h, const char *p, const char *end)
{
    const char *eol = line_end(p, end), *s, *v, *last;

    if (eol == NULL)
        return NULL;
    for (s = p; s < eol && is_tchar((uint8_t)*s); s++)
        ;
    /* An empty name also catches a leading SP/HTAB: RFC 9112 5.2 obs-fold is refused. */
    if (s == p || s == eol || *s != ':')
        return NULL;
    h->name = (struct wsd_http_view){p, (size_t)(s - p)};
    for (v = s + 1; v < eol && is_ows((uint8_t)*v); v++)
        ;
    last = v;
    for (s = v; s < eol; s++) {
        if (!is_field_char((uint8_t)*s))
            return NULL;
        if (!is_ows((uint8_t)*s))
            last = s + 1;
    }
    h->value = (struct wsd_http_view){v, (size_t)(last - v)};
    return eol + 2;
}

/* Parse the request line and header lines of a complete block [p, end), which ends in the
 * blank line's CRLF. */
static int parse_block(struct wsd_http_upgrade *req, const char *p, const char *end)
{
    p = parse_request_line(req, p, end);
    if (p == NULL)
        return ERR_400;
    while (!(end - p == 2 && p[0] == '\r')) {
        if (req->num_headers == WSD_HTTP_MAX_HEADERS)
            return WSD_PROTO_ERR_HTTP(WSD_HTTP_HEADERS_TOO_LARGE);
        p = parse_header(&req->headers[req->num_headers], p, end);
        if (p == NULL)
            return ERR_400;
        req->num_headers++;
    }
    return 0;
}

/* How many headers are called name; the first one's value goes to *ret_first. */
static size_t find_headers(const struct wsd_http_upgrade *req, const char *name,
                           struct wsd_http_view *ret_first)
{
    size_t count = 0;

    for (size_t i = 0; i < req->num_headers; i++) {
        if (!view_eq_nocase(req->headers[i].name, name))
            continue;
        if (count++ == 0)
            *ret_first = req->headers[i].value;
    }
    return count;
}

/* Whether the comma-separated list v (RFC 9110 5.6.1) has token, case-insensitively. */
static bool list_has_token(struct wsd_http_view v, const char *token)
{
    const char *p = v.ptr, *end = v.ptr + v.len, *comma, *a, *b;

    while (p < end) {
        comma = memchr(p, ',', (size_t)(end - p));
        b = comma ? comma : end;
        for (a = p; a < b && is_ows((uint8_t)*a); a++)
            ;
        while (b > a && is_ows((uint8_t)b[-1]))
            b--;
        if (view_eq_nocase((struct wsd_http_view){a, (size_t)(b - a)}, token))
            return true;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return false;
}

/* RFC 9110 7.6.1: a list header may be split over several lines; any of them may carry it. */
static bool headers_have_token(const struct wsd_http_upgrade *req, const char *name,
                               const char *token)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        if (view_eq_nocase(req->headers[i].name, name) &&
            list_has_token(req->headers[i].value, token))
            return true;
    }
    return false;
}

static int base64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* RFC 6455 4.1: the key is the base64 (RFC 4648 4) of 16 bytes: 22 characters and "==". */
static bool is_valid_key(struct wsd_http_view key)
{
    if (key.len != 24 || key.ptr[22] != '=' || key.ptr[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        if (base64_value((uint8_t)key.ptr[i]) < 0)
            return false;
    }
    return true;
}

/* RFC 6455 4.2.1 on a well-formed request, in the order of the statuses' precedence. */
static int check_upgrade(struct wsd_http_upgrade *req)
{
    struct wsd_http_view version = {NULL, 0};

    if (!view_eq(req->method, "GET")) /* methods are case-sensitive: RFC 9110 9.1 */
        return WSD_PROTO_ERR_HTTP(WSD_HTTP_METHOD_NOT_ALLOWED);
    if (find_headers(req, "Host", &req->host) != 1) /* RFC 9112 3.2 */
        return ERR_400;
    if (!headers_have_token(req, "Upgrade", "websocket"))
        return WSD_PROTO_ERR_HTTP(WSD_HTTP_UPGRADE_REQUIRED);
    if (!headers_have_token(req, "Connection", "upgrade"))
        return ERR_400;
    /* RFC 6455 4.4: a version we do not speak gets 426 with the one we do */
    if (find_headers(req, "Sec-WebSocket-Version", &version) != 1 || !view_eq(version, "13"))
        return WSD_PROTO_ERR_HTTP(WSD_HTTP_UPGRADE_REQUIRED);
    if (find_headers(req, "Sec-WebSocket-Key", &req->key) != 1 || !is_valid_key(req->key))
        return ERR_400;
    (void)find_headers(req, "Origin", &req->origin);
    (void)find_headers(req, "Sec-WebSocket-Protocol", &req->protocols);
    (void)find_headers(req, "Sec-WebSocket-Extensions", &req->extensions);
    return 0;
}

/* Find the end of the head and parse it: the block size, NEED_MORE, or an error. */
static int parse_head(struct wsd_http_upgrade *req, const uint8_t *buf, size_t len,
                      size_t max_bytes)
{
    size_t lim = len < max_bytes ? len : max_bytes;
    size_t scanned;
    int end, r;

    if (lim > INT_MAX) /* the size is returned as an int */
        lim = INT_MAX;
    end = find_end(req, buf, lim);
    if (end < 0)
        return end;
    if (end == 0)
        return len > lim ? WSD_PROTO_ERR_HTTP(WSD_HTTP_HEADERS_TOO_LARGE) : WSD_PROTO_NEED_MORE;

    /* Start the results from scratch; only the scan position is kept. */
    scanned = req->_scanned;
    memset(req, 0, sizeof(*req));
    req->_scanned = scanned;
    r = parse_block(req, (const char *)buf, (const char *)buf + end);
    return r < 0 ? r : end;
}

int wsd_http_upgrade_parse(struct wsd_http_upgrade *req, const uint8_t *buf, size_t len,
                           size_t max_bytes)
{
    int end = parse_head(req, buf, len, max_bytes);
    if (end < 0)
        return end;
    int r = check_upgrade(req);
    return r < 0 ? r : end;
}

int wsd_http_request_parse(struct wsd_http_upgrade *req, const uint8_t *buf, size_t len,
                           size_t max_bytes)
{
    int end = parse_head(req, buf, len, max_bytes);
    if (end < 0)
        return end;
    if (find_headers(req, "Host", &req->host) != 1) /* RFC 9112 3.2 */
        return ERR_400;
    (void)find_headers(req, "Origin", &req->origin);
    return end;
}

struct wsd_http_view wsd_http_upgrade_header(const struct wsd_http_upgrade *req, const char *name)
{
    struct wsd_http_view v = {NULL, 0};

    (void)find_headers(req, name, &v);
    return v;
}
