/* SPDX-License-Identifier: MIT */
/* RFC 6455 5.2 frame headers (parse and write) and the 5.3 masking XOR, done 32 bytes at a time
 * because every byte a client sends passes through it. */
#include "proto/frame.h"

#include <string.h>

#include "proto/proto.h"
#include "proto/ws_codes.h"

static uint64_t load_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void store_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        p[i - 1] = (uint8_t)v;
        v >>= 8;
    }
}

int wsd_frame_header_parse(const uint8_t *buf, size_t len, struct wsd_frame_header *ret)
{
    struct wsd_frame_header h;
    size_t ext, need;
    uint8_t len7;

    if (len < 2)
        return WSD_PROTO_NEED_MORE;
    len7 = buf[1] & 0x7F;
    ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (len < 2 + ext) /* check the length as soon as it is here, before the mask */
        return WSD_PROTO_NEED_MORE;

    h.fin = buf[0] & 0x80;
    h.rsv = (buf[0] >> 4) & 0x7;
    h.opcode = buf[0] & 0xF;
    h.masked = buf[1] & 0x80;
    h.len = ext ? load_be(buf + 2, ext) : len7;
    /* RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length", and the
     * most significant bit of the 64-bit length MUST be 0. */
    if (ext == 2 && h.len < 126)
        return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_PROTOCOL_ERROR);
    if (ext == 8 && (h.len <= 0xFFFF || h.len >> 63))
        return WSD_PROTO_ERR_CLOSE(WSD_CLOSE_PROTOCOL_ERROR);

    need = 2 + ext + (h.masked ? 4 : 0);
    if (len < need)
        return WSD_PROTO_NEED_MORE;
    if (h.masked)
        memcpy(h.mask, buf + 2 + ext, 4);
    else
        memset(h.mask, 0, 4);
    *ret = h;
    return (int)need;
}

size_t wsd_frame_header_write(uint8_t out[WSD_FRAME_HEADER_MAX], bool fin, uint8_t rsv,
                              uint8_t opcode, uint64_t len, const uint8_t *mask)
{
    size_t n = 2;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv & 0x7) << 4 | (opcode & 0xF));
    out[1] = mask ? 0x80 : 0;
    if (len < 126) {
        out[1] |= (uint8_t)len;
    } else if (len <= 0xFFFF) {
        out[1] |= 126;
        store_be(out + 2, len, 2);
        n += 2;
    } else {
        out[1] |= 127;
        store_be(out + 2, len, 8);
        n += 8;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

/* GCC/Clang vector extension: 16 bytes per XOR with no intrinsics or alignment demands (the
 * loads and stores go through memcpy, so data may sit anywhere). */
typedef uint8_t mask_vec __attribute__((vector_size(16)));

void wsd_frame_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
    uint8_t key[16];
    mask_vec k, a, b;
    size_t i = 0;

    /* Rotate the mask so that key[j % 4] applies to data[j]; 16 and 32 are multiples of 4, so
     * the same key fits every block. */
    for (size_t j = 0; j < sizeof(key); j++)
        key[j] = mask[(offset + j) & 3];
    memcpy(&k, key, sizeof(k));

    for (; len - i >= 32; i += 32) {
        memcpy(&a, data + i, 16);
        memcpy(&b, data + i + 16, 16);
        a ^= k;
        b ^= k;
        memcpy(data + i, &a, 16);
        memcpy(data + i + 16, &b, 16);
    }
    if (len - i >= 16) {
        memcpy(&a, data + i, 16);
        a ^= k;
        memcpy(data + i, &a, 16);
        i += 16;
    }
    for (; i < len; i++)
        data[i] ^= key[i & 3];
}
