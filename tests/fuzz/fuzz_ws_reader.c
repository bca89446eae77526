/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the frame decoder with UTF-8 and reassembly (proto/ws_reader.c), driven
 * as core/conn_io.c drives it: events until one ends the stream, messages reassembled, and
 * compressed messages inflated (proto/deflate.c) with the inflated text checked. The input
 * is fed whole and again in pieces the input chooses; both runs must end the same way, with
 * the same close code. */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/deflate.h"
#include "proto/proto.h"
#include "proto/utf8.h"
#include "proto/ws_codes.h"
#include "proto/ws_reader.h"

#define MAX_MESSAGE 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
    struct wsd_ws_reader reader;
    struct wsd_deflate deflate;
    uint8_t msg[MAX_MESSAGE];
    size_t msg_len;
    uint8_t opcode;
    uint32_t utf8;
    unsigned messages, controls;
    uint64_t digest; /* of every whole message, to compare the two runs */
};

static int sink(const uint8_t *d, size_t n, void *userdata)
{
    struct run *r = userdata;
    if (r->opcode == WSD_OP_TEXT) {
        r->utf8 = wsd_utf8_validate(r->utf8, d, n);
        if (r->utf8 == WSD_UTF8_REJECT)
            return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INVALID_PAYLOAD);
    }
    assert(r->msg_len + n <= MAX_MESSAGE);
    memcpy(r->msg + r->msg_len, d, n);
    r->msg_len += n;
    return 0;
}

/* Returns 0 when the input was consumed, or the close code the connection would fail with. */
static int on_event(struct run *r, const struct wsd_ws_event *ev)
{
    int e = 0;
    switch (ev->type) {
    case WSD_WS_EV_DATA:
        if (ev->first) {
            r->msg_len = 0;
            r->opcode = ev->opcode;
            r->utf8 = WSD_UTF8_ACCEPT;
        }
        if (ev->compressed)
            return wsd_deflate_inflate(&r->deflate, ev->data, ev->len, false, MAX_MESSAGE, sink, r);
        /* the reader already checked size and UTF-8 of uncompressed data */
        assert(r->msg_len + ev->len <= MAX_MESSAGE);
        memcpy(r->msg + r->msg_len, ev->data, ev->len);
        r->msg_len += ev->len;
        return 0;
    case WSD_WS_EV_MESSAGE_END:
        if (ev->compressed) {
            e = wsd_deflate_inflate(&r->deflate, NULL, 0, true, MAX_MESSAGE, sink, r);
            if (e == 0 && r->opcode == WSD_OP_TEXT && r->utf8 != WSD_UTF8_ACCEPT)
                e = WSD_PROTO_ERR_CLOSE(WSD_CLOSE_INVALID_PAYLOAD);
            if (e < 0)
                return e;
        } else if (r->opcode == WSD_OP_TEXT) {
            assert(wsd_utf8_validate(WSD_UTF8_ACCEPT, r->msg, r->msg_len) == WSD_UTF8_ACCEPT);
        }
        r->messages++;
        for (size_t i = 0; i < r->msg_len; i++)
            r->digest = r->digest * 131 + r->msg[i];
        r->digest = r->digest * 131 + r->opcode;
        return 0;
    case WSD_WS_EV_PING:
    case WSD_WS_EV_PONG:
    case WSD_WS_EV_CLOSE:
        assert(ev->len <= 125);
        r->controls++;
        return 0;
    case WSD_WS_EV_NONE:
        return 0;
    }
    return 0;
}

static int feed(struct run *r, uint8_t *buf, size_t len)
{
    size_t off = 0;
    for (;;) {
        struct wsd_ws_event ev = {0};
        int n = wsd_ws_reader_feed(&r->reader, buf + off, len - off, &ev);
        if (n < 0) {
            assert(wsd_proto_is_close_error(n));
            return n;
        }
        off += (size_t)n;
        assert(off <= len);
        if (ev.type == WSD_WS_EV_NONE) {
            assert(off == len);
            return 0;
        }
        int e = on_event(r, &ev);
        if (e < 0)
            return e;
    }
}

static int run_all(struct run *r, const uint8_t *cfg, const uint8_t *data, size_t size,
                   const uint8_t *cuts, size_t ncuts)
{
    struct wsd_deflate_params p = {
        .client_no_context_takeover = cfg[0] & 2,
    };
    memset(r, 0, sizeof(*r));
    wsd_ws_reader_init(&r->reader, MAX_MESSAGE, cfg[1] % 8 == 0 ? 0 : cfg[1] % 16, true,
                       cfg[0] & 1);
    /* as core/conn_io.c does: the wire size of a compressed message may exceed the limit a bit */
    r->reader.max_compressed = MAX_MESSAGE + MAX_MESSAGE / 8 + 1024;
    wsd_deflate_init(&r->deflate, &p);
    size_t pos = 0, c = 0;
    int res = 0;
    while (pos < size && res == 0) {
        size_t n = c < ncuts ? 1 + cuts[c++] % 64 : size - pos;
        if (n > size - pos)
            n = size - pos;
        /* an exact-size heap copy per piece: reads past it are caught */
        uint8_t *piece = malloc(n);
        memcpy(piece, data + pos, n);
        res = feed(r, piece, n);
        free(piece);
        pos += n;
    }
    wsd_deflate_done(&r->deflate);
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run whole, split;
    if (size < 4)
        return 0;
    const uint8_t *cfg = data;
    size_t ncuts = data[2] % 16;
    data += 3;
    size -= 3;
    if (ncuts > size)
        ncuts = size;
    const uint8_t *cuts = data;
    int a = run_all(&whole, cfg, data + ncuts, size - ncuts, NULL, 0);
    int b = run_all(&split, cfg, data + ncuts, size - ncuts, cuts, ncuts);
    assert(a == b);
    assert(whole.messages == split.messages && whole.controls == split.controls);
    assert(whole.digest == split.digest);
    return 0;
}
