/* SPDX-License-Identifier: MIT */
/* wsbench's client for wsd's control socket (the protocol wsctl speaks): list the open
 * connections (a blocking call) and ask for one to be closed (a request left in flight, its
 * answer polled for). One connection per request. */
#ifndef WSD_BENCH_CONTROL_H
#define WSD_BENCH_CONTROL_H

#include <stddef.h>
#include <stdint.h>

/* One open connection as wsd lists it: its id and the client's port. */
struct wsb_control_conn {
    uint64_t id;
    uint16_t peer_port;
};

/* A request in flight: its socket and the answer read so far. fd is -1 when there is none. */
struct wsb_control_req {
    int fd;
    char *buf;
    size_t len, cap;
};

/* Ask wsd at path for "list json" and fill ret[0..cap) with the connections it names.
 * Returns how many were found (at most cap), or -errno if the socket cannot be used, or
 * -EBADMSG if the answer is not a list. */
int wsb_control_list(const char *path, struct wsb_control_conn *ret, size_t cap);

/* Ask wsd at path to close connection id with code (force 0: the SIGTERM ladder): connect and
 * send the request, and return (0, or -errno if the socket cannot be used). The answer comes
 * while the client waits for the close frame: kill times what the client sees, and a reply
 * on the control socket that comes after the close frame must not hold up noticing it. */
int wsb_control_kill_start(struct wsb_control_req *q, const char *path, uint64_t id,
                           uint16_t code);

/* Read what has come of the kill's answer, without waiting: 0 while it is incomplete; once it
 * is, the request is over (q->fd is -1) and the result is 1 for "OK", -ENOENT if wsd does not
 * know the id, -EBADMSG for any other answer, or -errno. */
int wsb_control_kill_poll(struct wsb_control_req *q);

/* Drop a request (closing its socket, if any). */
void wsb_control_req_done(struct wsb_control_req *q);

#endif
