/* SPDX-License-Identifier: MIT */
/* What workers tell the supervisor, over one SOCK_SEQPACKET socket shared by all of them. The
 * kernel stamps each message with the sender's pid (SO_PASSCRED), and the supervisor accepts it
 * only if that pid and the cookie given at spawn both match the slot named: a worker cannot
 * speak for another. */
#ifndef WSD_SUPERVISOR_REPORT_H
#define WSD_SUPERVISOR_REPORT_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

enum wsd_report_type {
    WSD_REPORT_BUSY = 1, /* took connection conn_id: peer, path */
    WSD_REPORT_DONE,     /* conn_id ended: close_code, closed_by (enum wsd_closed_by) */
    WSD_REPORT_VERDICT,  /* a detector in the worker decided about conn_id: verdict */
    WSD_REPORT_REFUSED,  /* wss:// conn_id ended before the upgrade: status is the HTTP status
                          * answered through TLS, or 0 when the TLS handshake itself failed */
    WSD_REPORT_OPEN,     /* wss:// conn_id upgraded: path (read through TLS after BUSY) */
};

#define WSD_REPORT_PATH_MAX 128

struct wsd_report {
    uint32_t type;
    uint32_t slot;
    uint64_t cookie;
    uint64_t conn_id;
    struct sockaddr_storage peer;
    char path[WSD_REPORT_PATH_MAX]; /* NUL-terminated, truncated */
    uint16_t close_code;
    uint8_t closed_by;
    uint8_t verdict; /* enum wsd_verdict */
    uint16_t status; /* WSD_REPORT_REFUSED */
    /* DONE: the connection's messages and bytes each way (for the metrics' totals) */
    uint64_t in_msgs, in_bytes, out_msgs, out_bytes;
};

/* Send a report (blocking: the supervisor always drains). Returns 0 or -errno. */
int wsd_report_send(int fd, const struct wsd_report *r);

#define WSD_REPORT_BATCH 32 /* reports taken by one wsd_report_recv_many() at most */

/* Receive up to max (<= WSD_REPORT_BATCH) queued reports in one call, without blocking.
 * Returns how many arrived, with ret[i] and ret_pid[i] (the kernel-verified sender) filled; a
 * malformed one has ret_pid[i] == 0. Fewer than max means the queue is empty now. Returns
 * -EAGAIN when none is queued, or -errno. */
int wsd_report_recv_many(int fd, struct wsd_report *ret, pid_t *ret_pid, int max);

#endif
