/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the permessage-deflate codec. Arbitrary bytes are inflated as a series
 * of messages (split where the input says, some parameters chosen by the input) against a
 * small limit, which must hold; then the same bytes are compressed and inflated back, which
 * must round-trip exactly. */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/deflate.h"
#include "proto/proto.h"

#define LIMIT 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
    uint8_t *buf;
    size_t len, cap;
};

static int sink(const uint8_t *d, size_t n, void *userdata)
{
    struct out *o = userdata;
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2;
        o->buf = realloc(o->buf, o->cap);
        assert(o->buf != NULL);
    }
    memcpy(o->buf + o->len, d, n);
    o->len += n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t flags = data[0], cut = data[1];
    data += 2;
    size -= 2;
    struct wsd_deflate_params p = {
        .server_no_context_takeover = flags & 1,
        .client_no_context_takeover = flags & 2,
        .server_max_window_bits = (uint8_t)(flags & 4 ? 9 + (flags >> 3) % 7 : 0),
    };
    struct wsd_deflate dec, enc, back;
    struct out o = {0};

    /* 1: inflate the input as messages of (cut % 32 + 1) * 16 bytes, fed in 7-byte pieces. */
    wsd_deflate_init(&dec, &p);
    size_t msg = ((size_t)cut % 32 + 1) * 16, pos = 0;
    int r = 0;
    while (pos < size && r == 0) {
        size_t end = pos + msg < size ? pos + msg : size;
        o.len = 0;
        while (pos < end && r == 0) {
            size_t n = end - pos < 7 ? end - pos : 7;
            uint8_t *piece = malloc(n);
            memcpy(piece, data + pos, n);
            r = wsd_deflate_inflate(&dec, piece, n, false, LIMIT, sink, &o);
            free(piece);
            pos += n;
        }
        if (r == 0)
            r = wsd_deflate_inflate(&dec, NULL, 0, true, LIMIT, sink, &o);
        assert(o.len <= LIMIT + 1);
        assert(r == 0 || wsd_proto_is_close_error(r));
    }
    wsd_deflate_done(&dec);

    /* 2: compress the input as two messages and inflate them back, with mirrored parameters. */
    struct wsd_deflate_params mirror = {
        .client_no_context_takeover = p.server_no_context_takeover,
    };
    wsd_deflate_init(&enc, &p);
    wsd_deflate_init(&back, &mirror);
    size_t half = size / 2;
    const uint8_t *msgs[2] = {data, data + half};
    size_t lens[2] = {half, size - half};
    for (int i = 0; i < 2; i++) {
        struct out z = {0};
        assert(wsd_deflate_compress(&enc, msgs[i], lens[i], sink, &z) == 0);
        o.len = 0;
        assert(wsd_deflate_inflate(&back, z.buf, z.len, true, SIZE_MAX - 1, sink, &o) == 0);
        assert(o.len == lens[i]);
        assert(lens[i] == 0 || memcmp(o.buf, msgs[i], lens[i]) == 0);
        free(z.buf);
    }
    wsd_deflate_done(&enc);
    wsd_deflate_done(&back);
    free(o.buf);
    return 0;
}
