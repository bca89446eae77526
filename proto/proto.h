/* SPDX-License-Identifier: MIT */
/* The one error convention of proto/: every parser returns bytes consumed (>= 0),
 * WSD_PROTO_NEED_MORE, or a negative error that says what goes on the wire: -(HTTP status) for
 * a refused handshake, -(close code) for a frame-level violation. The ranges never overlap. */
#ifndef WSD_PROTO_PROTO_H
#define WSD_PROTO_PROTO_H

#include <stdbool.h>

#define WSD_PROTO_NEED_MORE (-1)

#define WSD_PROTO_ERR_HTTP(status) (-(int)(status))
#define WSD_PROTO_ERR_CLOSE(code) (-(int)(code))

static inline bool wsd_proto_is_http_error(int r)
{
    return r <= -400 && r >= -599;
}

static inline bool wsd_proto_is_close_error(int r)
{
    return r <= -1000 && r >= -4999;
}

/* The HTTP status (400..599) or close code (1000..4999) an error carries. */
static inline int wsd_proto_error_code(int r)
{
    return -r;
}

#endif
