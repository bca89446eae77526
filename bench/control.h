/* SPDX-License-Identifier: MIT */
/* wsbench's client for wsd's control socket (the protocol wsctl speaks): list the open
 * connections and ask for one to be closed. Blocking calls, one connection per request. */
#ifndef WSD_BENCH_CONTROL_H
#define WSD_BENCH_CONTROL_H

#include <stddef.h>
#include <stdint.h>

/* One open connection as wsd lists it: its id and the client's port. */
struct wsb_control_conn {
    uint64_t id;
    uint16_t peer_port;
};

/* Ask wsd at path for "list json" and fill ret[0..cap) with the connections it names.
 * Returns how many were found (at most cap), or -errno if the socket cannot be used, or
 * -EBADMSG if the answer is not a list. */
int wsb_control_list(const char *path, struct wsb_control_conn *ret, size_t cap);

/* Ask wsd at path to close connection id with code (force 0: the SIGTERM ladder). Returns once
 * wsd has answered: 0 on "OK", -ENOENT if wsd does not know the id, -EBADMSG on any other
 * answer, -errno if the socket cannot be used. The answer is polled for, not slept on: what
 * kill times is wsd's latency, and an idle vCPU's wake-up on the client side (up to about a
 * millisecond on the paravirtualised machine this was measured on) is not part of it. */
int wsb_control_kill(const char *path, uint64_t id, uint16_t code);

#endif
