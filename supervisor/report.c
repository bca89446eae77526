/* SPDX-License-Identifier: MIT */
/* Worker reports with kernel-attested sender credentials. */
#include "supervisor/report.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

int wsd_report_send(int fd, const struct wsd_report *r)
{
    for (;;) {
        if (send(fd, r, sizeof(*r), MSG_NOSIGNAL) == (ssize_t)sizeof(*r))
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

int wsd_report_recv(int fd, struct wsd_report *ret, pid_t *ret_pid)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct iovec iov = {.iov_base = ret, .iov_len = sizeof(*ret)};
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (n != (ssize_t)sizeof(*ret) || (msg.msg_flags & MSG_TRUNC) || !cmsg ||
        cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_CREDENTIALS)
        return -EBADMSG;
    struct ucred cred;
    memcpy(&cred, CMSG_DATA(cmsg), sizeof(cred));
    *ret_pid = cred.pid;
    return 0;
}
