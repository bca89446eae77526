/* SPDX-License-Identifier: MIT */
/* permessage-deflate (RFC 7692): the offer scanner and response writer, and zlib raw
 * inflate/deflate with a decompressed-size limit, the 4-byte tail and context takeover. */
#include "proto/deflate.h"

#include <stdio.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/ws_codes.h"

#define CHUNK 16384
#define ZLIB_MAX_AVAIL (1u << 30) /* avail_in is a uInt: feed larger inputs in pieces */
#define WINDOW_BITS_MAX 15        /* RFC 7692 7.1.2: 8-15; zlib's MAX_WBITS */
#define WINDOW_BITS_MIN 8

static const uint8_t deflate_tail[4] = {0x00, 0x00, 0xff, 0xff}; /* RFC 7692 7.2.1/7.2.2 */

/* ---- Offer scanning (RFC 6455 9.1, RFC 9110 5.6) ---- */

struct scan {
    const char *p, *end; /* invariant: p within [start, end] */
};

static bool is_tchar(char ch)
{
    /* RFC 9110 5.6.2 tchar */
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return true;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static void skip_ows(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t'))
        s->p++;
}

/* A token at s->p: returns its length (0 if none) and sets *ret. */
static size_t take_token(struct scan *s, const char **ret)
{
    const char *start = s->p;
    while (s->p < s->end && is_tchar(*s->p))
        s->p++;
    *ret = start;
    return (size_t)(s->p - start);
}

/* A parameter value: a token or a quoted-string (RFC 7692 7.1: compared after unescaping),
 * copied into out. Returns its length; a value longer than cap - 1 is cut (it is invalid
 * anyway); -1 on a syntax error. */
static int take_value(struct scan *s, char *out, size_t cap)
{
    size_t n = 0;
    if (s->p < s->end && *s->p == '"') {
        s->p++;
        for (;;) {
            if (s->p == s->end)
                return -1; /* unterminated */
            char ch = *s->p++;
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (s->p == s->end)
                    return -1;
                ch = *s->p++;
            }
            if (n + 1 < cap)
                out[n] = ch;
            n++;
        }
    } else {
        const char *tok;
        n = take_token(s, &tok);
        if (n == 0)
            return -1;
        memcpy(out, tok, n + 1 < cap ? n : cap - 1);
    }
    if (n + 1 >= cap) {
        out[cap - 1] = '\0';
        return (int)cap - 1;
    }
    out[n] = '\0';
    return (int)n;
}

static bool token_is(const char *tok, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(tok, name, len) == 0;
}

/* RFC 7692 7.1.2.1/7.1.2.2: a decimal 8-15 without leading zeros. Returns it, or 0. */
static uint8_t parse_window_bits(const char *v)
{
    if (v[0] >= '8' && v[0] <= '9' && v[1] == '\0')
        return (uint8_t)(v[0] - '0');
    if (v[0] == '1' && v[1] >= '0' && v[1] <= '5' && v[2] == '\0')
        return (uint8_t)(10 + v[1] - '0');
    return 0;
}

enum param_id { P_SNCT, P_CNCT, P_SMWB, P_CMWB, P_COUNT };

static const char *const param_names[P_COUNT] = {
    "server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits",
    "client_max_window_bits"};

/* Apply one parameter to p. Returns false when it makes the offer unacceptable. */
static bool apply_param(struct wsd_deflate_params *p, bool seen[P_COUNT], const char *name,
                        size_t name_len, const char *value)
{
    int id = -1;
    for (int i = 0; i < P_COUNT; i++)
        if (token_is(name, name_len, param_names[i]))
            id = i;
    if (id < 0 || seen[id]) /* RFC 7692 7.1: unknown or repeated parameter: decline */
        return false;
    seen[id] = true;
    switch (id) {
    case P_SNCT: /* RFC 7692 7.1.1.1: no value */
        p->server_no_context_takeover = true;
        return value == NULL;
    case P_CNCT: /* RFC 7692 7.1.1.2: no value */
        p->client_no_context_takeover = true;
        return value == NULL;
    case P_SMWB: /* RFC 7692 7.1.2.1: a value is required */
        if (value == NULL)
            return false;
        p->server_max_window_bits = parse_window_bits(value);
        /* zlib's raw deflate refuses an 8-bit window, and a 9-bit one would break the
         * client's 256-byte window: decline rather than send what it cannot inflate. */
        return p->server_max_window_bits > WINDOW_BITS_MIN;
    case P_CMWB: /* RFC 7692 7.1.2.2: the value is optional; we may leave it unanswered */
        return value == NULL || parse_window_bits(value) != 0;
    }
    return false;
}

/* Parse one extension at s (its name and parameters, up to the next ',' or the end).
 * Returns 1 for an acceptable permessage-deflate offer (*ret filled), 0 for another extension
 * or an offer to decline, -1 on a syntax error. */
static int parse_extension(struct scan *s, struct wsd_deflate_params *ret)
{
    struct wsd_deflate_params p = {0};
    bool seen[P_COUNT] = {false};
    const char *name;
    size_t name_len = take_token(s, &name);
    if (name_len == 0)
        return -1;
    bool ok = token_is(name, name_len, "permessage-deflate");
    for (;;) {
        skip_ows(s);
        if (s->p == s->end || *s->p == ',')
            break;
        if (*s->p != ';')
            return -1;
        s->p++;
        skip_ows(s);
        const char *pname;
        size_t pname_len = take_token(s, &pname);
        if (pname_len == 0)
            return -1;
        skip_ows(s);
        char value[8];
        bool has_value = s->p < s->end && *s->p == '=';
        if (has_value) {
            s->p++;
            skip_ows(s);
            if (take_value(s, value, sizeof(value)) < 0)
                return -1;
        }
        if (ok)
            ok = apply_param(&p, seen, pname, pname_len, has_value ? value : NULL);
    }
    if (!ok)
        return 0;
    *ret = p;
    return 1;
}

int wsd_deflate_negotiate(const char *value, size_t len, struct wsd_deflate_params *ret_params)
{
    struct scan s = {value, value + len};
    for (;;) {
        /* RFC 9110 5.6.1: empty list elements are allowed and ignored */
        skip_ows(&s);
        if (s.p == s.end)
            return 0;
        if (*s.p == ',') {
            s.p++;
            continue;
        }
        int r = parse_extension(&s, ret_params);
        if (r != 0)
            return r > 0 ? 1 : 0;
    }
}

size_t wsd_deflate_response_write(const struct wsd_deflate_params *params, char *out, size_t cap)
{
    int n = snprintf(out, cap, "permessage-deflate%s%s",
                     params->server_no_context_takeover ? "; server_no_context_takeover" : "",
                     params->client_no_context_takeover ? "; client_no_context_takeover" : "");
    if (n >= 0 && (size_t)n < cap && params->server_max_window_bits != 0)
        n += snprintf(out + n, cap - (size_t)n, "; server_max_window_bits=%u",
                      params->server_max_window_bits);
    return n >= 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* ---- The codec ---- */

void wsd_deflate_init(struct wsd_deflate *d, const struct wsd_deflate_params *params)
{
    memset(d, 0, sizeof(*d));
    d->params = *params;
}

void wsd_deflate_done(struct wsd_deflate *d)
{
    if (d->_in_ready)
        (void)inflateEnd(&d->_in);
    if (d->_out_ready)
        (void)deflateEnd(&d->_out);
    d->_in_ready = d->_out_ready = false;
}

static int zlib_error(int zr)
{
    return WSD_PROTO_ERR_CLOSE(zr == Z_MEM_ERROR ? WSD_CLOSE_INTERNAL_ERROR
                                                 : WSD_CLOSE_INVALID_PAYLOAD);
}

static int inflate_start(struct wsd_deflate *d)
{
    /* Always the largest window, whatever client_max_window_bits says: it inflates any
     * window a client uses. With the agreed window instead, a client that breaks the
     * agreement would be refused or not depending on how its bytes were split: zlib checks a
     * distance against the window plus the output of the current inflate() call. */
    if (inflateInit2(&d->_in, -WINDOW_BITS_MAX) != Z_OK) /* negative: raw, no zlib header */
        return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INTERNAL_ERROR);
    d->_in_ready = true;
    return 0;
}

/* Pass the produced bytes that fit in room to sink, then refuse the rest (RFC 6455 7.4.1:
 * too big to process). */
static int take_output(struct wsd_deflate *d, const uint8_t *out, size_t produced,
                       uint64_t room, wsd_deflate_sink_cb sink, void *userdata)
{
    size_t fits = produced < room ? produced : (size_t)room;
    if (fits > 0) {
        int r = sink(out, fits, userdata);
        if (r < 0)
            return r;
    }
    d->_inflated += fits;
    return fits < produced ? WSD_PROTO_ERR_CLOSE(WSD_CLOSE_MESSAGE_TOO_BIG) : 0;
}

/* Run the inflater over in. Bytes after a final (BFINAL) block are ignored: RFC 7692 7.2.3.4
 * has the sender follow one with an empty block header so the appended tail still parses. */
static int inflate_run(struct wsd_deflate *d, const uint8_t *in, size_t len, uint64_t limit,
                       wsd_deflate_sink_cb sink, void *userdata)
{
    uint8_t chunk[CHUNK];
    z_stream *z = &d->_in;
    while (len > 0 && !d->_in_ended) {
        size_t piece = len < ZLIB_MAX_AVAIL ? len : ZLIB_MAX_AVAIL;
        z->next_in = (Bytef *)(uintptr_t)in;
        z->avail_in = (uInt)piece;
        do {
            /* Never produce more than one byte past the limit: the bomb costs no more. */
            uint64_t room = limit - d->_inflated; /* _inflated <= limit here */
            z->next_out = chunk;
            z->avail_out = room < CHUNK ? (uInt)room + 1 : CHUNK;
            uInt before = z->avail_out;
            int zr = inflate(z, Z_SYNC_FLUSH);
            /* Report the first problem in the order of the inflated bytes, so that the result
             * does not depend on how the input was split: given more input, zlib reads on
             * past a full output buffer (block headers need no output room) and may find
             * corrupt data behind the byte that already broke the limit; and the sink may
             * refuse a byte before the limit in a chunk that ends past it. */
            int r = take_output(d, chunk, before - z->avail_out, room, sink, userdata);
            if (r < 0)
                return r;
            if (zr == Z_STREAM_END)
                d->_in_ended = true;
            else if (zr != Z_OK && zr != Z_BUF_ERROR)
                return zlib_error(zr);
            if (zr == Z_BUF_ERROR || d->_in_ended)
                break; /* no progress possible, or the stream is over */
        } while (z->avail_in > 0 || z->avail_out == 0);
        in += piece;
        len -= piece;
    }
    return 0;
}

/* The message is over: reset the context if agreed, or after a final block (keeping the
 * window as a dictionary then, when the context is taken over). */
static int inflate_end_message(struct wsd_deflate *d)
{
    z_stream *z = &d->_in;
    int zr = Z_OK;
    if (d->params.client_no_context_takeover) {
        zr = inflateReset(z);
    } else if (d->_in_ended) {
        uint8_t window[1u << WINDOW_BITS_MAX];
        uInt n = sizeof(window);
        zr = inflateGetDictionary(z, window, &n);
        if (zr == Z_OK)
            zr = inflateReset(z);
        if (zr == Z_OK && n > 0)
            zr = inflateSetDictionary(z, window, n);
    }
    d->_in_ended = false;
    d->_inflated = 0;
    return zr == Z_OK ? 0 : WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INTERNAL_ERROR);
}

int wsd_deflate_inflate(struct wsd_deflate *d, const uint8_t *in, size_t len, bool last,
                        uint64_t limit, wsd_deflate_sink_cb sink, void *userdata)
{
    int r = d->_in_ready ? 0 : inflate_start(d);
    if (r == 0)
        r = inflate_run(d, in, len, limit, sink, userdata);
    if (r == 0 && last)
        r = inflate_run(d, deflate_tail, sizeof(deflate_tail), limit, sink, userdata);
    if (r == 0 && last)
        r = inflate_end_message(d);
    return r;
}

static int deflate_start(struct wsd_deflate *d)
{
    int bits =
        d->params.server_max_window_bits ? d->params.server_max_window_bits : WINDOW_BITS_MAX;
    /* memLevel 8 is zlib's default: 2^(bits+2) + 2^(8+9) bytes, allocated on first use. */
    if (deflateInit2(&d->_out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INTERNAL_ERROR);
    d->_out_ready = true;
    return 0;
}

int wsd_deflate_compress(struct wsd_deflate *d, const uint8_t *in, size_t len,
                         wsd_deflate_sink_cb sink, void *userdata)
{
    /* Output goes to chunk; its last 4 bytes are held back between rounds, since the output
     * ends with the tail that RFC 7692 7.2.1 removes. */
    uint8_t chunk[CHUNK];
    size_t held = 0;
    z_stream *z = &d->_out;
    int r;
    if (len == 0) {
        /* RFC 7692 7.2.3.6: an empty stored block, which zlib would not repeat after a flush */
        static const uint8_t empty[1] = {0x00};
        return sink(empty, sizeof(empty), userdata);
    }
    r = d->_out_ready ? 0 : deflate_start(d);
    if (r < 0)
        return r;
    do {
        size_t piece = len < ZLIB_MAX_AVAIL ? len : ZLIB_MAX_AVAIL;
        z->next_in = (Bytef *)(uintptr_t)in;
        z->avail_in = (uInt)piece;
        in += piece;
        len -= piece;
        do {
            z->next_out = chunk + held;
            z->avail_out = (uInt)(CHUNK - held);
            int zr = deflate(z, len > 0 ? Z_NO_FLUSH : Z_SYNC_FLUSH);
            if (zr != Z_OK && zr != Z_BUF_ERROR)
                return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INTERNAL_ERROR);
            size_t have = CHUNK - z->avail_out;
            if (have > sizeof(deflate_tail)) {
                size_t emit = have - sizeof(deflate_tail);
                r = sink(chunk, emit, userdata);
                if (r < 0)
                    return r;
                memmove(chunk, chunk + emit, sizeof(deflate_tail));
                have = sizeof(deflate_tail);
            }
            held = have;
        } while (z->avail_out == 0 || z->avail_in > 0);
    } while (len > 0);
    /* Z_SYNC_FLUSH always ends with an empty stored block: 0x00 0x00 0xff 0xff. */
    if (held != sizeof(deflate_tail) || memcmp(chunk, deflate_tail, held) != 0)
        return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INTERNAL_ERROR);
    if (d->params.server_no_context_takeover && deflateReset(z) != Z_OK)
        return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INTERNAL_ERROR);
    return 0;
}
