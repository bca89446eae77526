/* SPDX-License-Identifier: MIT */
/* What the supervisor tells the acceptor over their control socket. A connection's end
 * (CLOSED) is one notice per connection, so those wait in a small queue and leave together in
 * one sendmmsg at the end of the loop's turn; any other notice (a ban, the quiesce) first sends
 * what waits, so the acceptor sees everything in the order it happened. */
#include "supervisor/state.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

/* Send n messages, blocking briefly on a full socket rather than lose one: a lost CLOSED
 * would count a connection as live for ever, a lost BAN would let the IP in. */
static void send_all(struct supervisor *s, const struct wsd_acceptor_msg *m, uint32_t n)
{
    struct mmsghdr mh[WSD_ACCEPTOR_QUEUE];
    struct iovec iov[WSD_ACCEPTOR_QUEUE];
    int tries = 0;
    while (n > 0) {
        uint32_t k = n < WSD_ACCEPTOR_QUEUE ? n : WSD_ACCEPTOR_QUEUE;
        for (uint32_t i = 0; i < k; i++) {
            iov[i] = (struct iovec){.iov_base = (void *)&m[i], .iov_len = sizeof(m[i])};
            mh[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
        }
        int r = sendmmsg(s->ctl_s, mh, k, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) {
            m += r;
            n -= (uint32_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || errno != EAGAIN || tries++ >= 1000)
            return;
        struct pollfd p = {.fd = s->ctl_s, .events = POLLOUT};
        (void)poll(&p, 1, 10);
    }
}

void wsd_acceptor_flush(struct supervisor *s)
{
    uint32_t n = s->acceptor_queued;
    s->acceptor_queued = 0;
    if (n > 0 && s->acceptor_pidfd >= 0)
        send_all(s, s->acceptor_queue, n);
}

void wsd_acceptor_tell(struct supervisor *s, const struct wsd_acceptor_msg *m)
{
    if (s->acceptor_pidfd < 0)
        return;
    if (m->type != WSD_ACCEPTOR_MSG_CLOSED) {
        wsd_acceptor_flush(s);
        send_all(s, m, 1);
        return;
    }
    if (s->acceptor_queued == WSD_ACCEPTOR_QUEUE)
        wsd_acceptor_flush(s);
    s->acceptor_queue[s->acceptor_queued++] = *m;
}
