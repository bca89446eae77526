/* SPDX-License-Identifier: MIT */
/* The page the supervisor shares with the acceptor (MAP_SHARED, made before the first fork):
 * the connection-id counter, so ids are never reused across acceptor restarts, and the
 * acceptor's handshake counters. Only the acceptor writes it; workers unmap it at birth. */
#ifndef WSD_CORE_SHARED_H
#define WSD_CORE_SHARED_H

#include <stdint.h>

enum wsd_hs_fail {
    WSD_HS_FAIL_400 = 0,
    WSD_HS_FAIL_405,
    WSD_HS_FAIL_408,
    WSD_HS_FAIL_426,
    WSD_HS_FAIL_429,
    WSD_HS_FAIL_431,
    WSD_HS_FAIL_503,
    WSD_HS_FAIL_EOF, /* the client left before finishing its request */
    WSD_HS_FAIL_COUNT,
};

/* The counter for an HTTP status a handshake was refused with (400 for anything unlisted). */
static inline enum wsd_hs_fail wsd_hs_fail_index(int status)
{
    switch (status) {
    case 405:
        return WSD_HS_FAIL_405;
    case 408:
        return WSD_HS_FAIL_408;
    case 426:
        return WSD_HS_FAIL_426;
    case 429:
        return WSD_HS_FAIL_429;
    case 431:
        return WSD_HS_FAIL_431;
    case 503:
        return WSD_HS_FAIL_503;
    default:
        return WSD_HS_FAIL_400;
    }
}

/* The status a failure is answered with, as text ("eof": none, the client left). */
static inline const char *wsd_hs_fail_name(enum wsd_hs_fail f)
{
    static const char *const names[WSD_HS_FAIL_COUNT] = {
        [WSD_HS_FAIL_400] = "400", [WSD_HS_FAIL_405] = "405", [WSD_HS_FAIL_408] = "408",
        [WSD_HS_FAIL_426] = "426", [WSD_HS_FAIL_429] = "429", [WSD_HS_FAIL_431] = "431",
        [WSD_HS_FAIL_503] = "503", [WSD_HS_FAIL_EOF] = "eof"};
    return f < WSD_HS_FAIL_COUNT && names[f] ? names[f] : "?";
}

struct wsd_shared {
    uint64_t next_conn_id; /* the id the next handed-off connection gets; starts at 1 */
    uint64_t accepted;     /* TCP connections accepted */
    uint64_t handed_off;   /* upgrade requests validated and passed to a worker */
    uint64_t hs_fail[WSD_HS_FAIL_COUNT];
};

#endif
