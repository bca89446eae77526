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

/* The sender of one received message, or 0 if it is not a whole report with credentials. */
static pid_t sender_of(const struct mmsghdr *mh)
{
    const struct msghdr *msg = &mh->msg_hdr;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(msg);
    if (mh->msg_len != sizeof(struct wsd_report) || (msg->msg_flags & MSG_TRUNC) || !cmsg ||
        cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_CREDENTIALS)
        return 0;
    struct ucred cred;
    memcpy(&cred, CMSG_DATA(cmsg), sizeof(cred));
    return cred.pid;
}

int wsd_report_recv_many(int fd, struct wsd_report *ret, pid_t *ret_pid, int max)
{
    union control {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } control[WSD_REPORT_BATCH];
    struct iovec iov[WSD_REPORT_BATCH];
    struct mmsghdr mh[WSD_REPORT_BATCH];
    if (max > WSD_REPORT_BATCH)
        max = WSD_REPORT_BATCH;
    for (int i = 0; i < max; i++) {
        iov[i] = (struct iovec){.iov_base = &ret[i], .iov_len = sizeof(ret[i])};
        mh[i] = (struct mmsghdr){.msg_hdr = {
                                     .msg_iov = &iov[i],
                                     .msg_iovlen = 1,
                                     .msg_control = control[i].buf,
                                     .msg_controllen = sizeof(control[i].buf),
                                 }};
    }
    int n = recvmmsg(fd, mh, (unsigned)max, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    for (int i = 0; i < n; i++)
        ret_pid[i] = sender_of(&mh[i]);
    return n;
}
