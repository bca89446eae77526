/* SPDX-License-Identifier: MIT */
/* SCM_RIGHTS transfer of a connection, header + payload in one SEQPACKET message. */
#include "core/handoff.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "core/sys.h"

int wsd_handoff_send(int chan_fd, int conn_fd, const struct wsd_handoff *h, const uint8_t *payload)
{
    struct iovec iov[2] = {
        {.iov_base = (void *)h, .iov_len = sizeof(*h)},
        {.iov_base = (void *)payload, .iov_len = (size_t)h->request_len + h->extra_len},
    };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control = {0};
    struct msghdr msg = {
        .msg_iov = iov,
        .msg_iovlen = 2,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &conn_fd, sizeof(int));
    if (sendmsg(chan_fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return 0;
}

int wsd_handoff_recv(int chan_fd, struct wsd_handoff *ret, uint8_t *payload, size_t cap,
                     int *ret_fd)
{
    struct iovec iov[2] = {
        {.iov_base = ret, .iov_len = sizeof(*ret)},
        {.iov_base = payload, .iov_len = cap},
    };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {
        .msg_iov = iov,
        .msg_iovlen = 2,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    ssize_t n = recvmsg(chan_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (n == 0 && !(msg.msg_flags & MSG_CTRUNC) && CMSG_FIRSTHDR(&msg) == NULL)
        return -EPIPE; /* every sender is gone (wsd died): not a message, and never one again */

    int fd = -1;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
        cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    if (fd < 0 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(*ret) ||
        (size_t)n - sizeof(*ret) != (size_t)ret->request_len + ret->extra_len) {
        wsd_close(fd);
        return -EBADMSG;
    }
    *ret_fd = fd;
    return 0;
}
