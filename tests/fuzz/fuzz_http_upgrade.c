/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the upgrade request parser, fed whole and then as a growing prefix split
 * at a point the input chooses (both must agree), and every Sec-WebSocket-Extensions value it
 * finds through the permessage-deflate offer scanner and response writer. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/deflate.h"
#include "proto/http_upgrade.h"
#include "proto/proto.h"

#define MAX_BYTES 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct wsd_http_upgrade whole, split;
    if (size < 2)
        return 0;
    size_t cut = ((size_t)data[0] << 8 | data[1]) % size;
    data += 2;
    size -= 2;
    /* An exact-size heap copy, so ASan sees any read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);

    memset(&whole, 0, sizeof(whole));
    int r = wsd_http_upgrade_parse(&whole, buf, size, MAX_BYTES);
    memset(&split, 0, sizeof(split));
    int r1 = wsd_http_upgrade_parse(&split, buf, cut < size ? cut : size, MAX_BYTES);
    int r2 = r1 == WSD_PROTO_NEED_MORE ? wsd_http_upgrade_parse(&split, buf, size, MAX_BYTES) : r1;
    /* A result reached on a prefix stands; otherwise the split run must end like the whole. */
    if (r1 == WSD_PROTO_NEED_MORE)
        assert(r2 == r);
    assert(r == WSD_PROTO_NEED_MORE || r > 0 || wsd_proto_is_http_error(r));

    if (r > 0) {
        assert((size_t)r <= size);
        for (size_t i = 0; i < whole.num_headers; i++) {
            const struct wsd_http_header *h = &whole.headers[i];
            if (h->name.len != 24 || strncasecmp(h->name.ptr, "Sec-WebSocket-Extensions", 24))
                continue;
            struct wsd_deflate_params p;
            char resp[WSD_DEFLATE_RESPONSE_MAX];
            if (wsd_deflate_negotiate(h->value.ptr, h->value.len, &p) == 1) {
                size_t n = wsd_deflate_response_write(&p, resp, sizeof(resp));
                assert(n > 0);
                struct wsd_deflate_params again;
                assert(wsd_deflate_negotiate(resp, n, &again) == 1);
                assert(memcmp(&again, &p, sizeof(p)) == 0);
            }
        }
    }
    /* The offer scanner also gets the raw input as a header value. */
    struct wsd_deflate_params p;
    (void)wsd_deflate_negotiate((const char *)buf, size, &p);
    free(buf);
    return 0;
}
