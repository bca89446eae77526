/* SPDX-License-Identifier: MIT */
/* wsd-keyholder: the only process that reads WSD_TLS_KEY. It checks the key against the
 * certificate (sign, then verify), says so once on its channel, then signs for workers (see
 * core/tls_key.h for the protocol) until the last worker end of its channel is closed. It is
 * not dumpable, holds no other fd, and never touches a network byte. */
#ifndef WSD_SUPERVISOR_KEYHOLDER_H
#define WSD_SUPERVISOR_KEYHOLDER_H

#include <stdint.h>
#include <sys/types.h>

struct wsd_config;

/* The first message on the channel: status 0, or -errno with one line in why. */
struct wsd_keyholder_verdict {
    int32_t status;
    char why[480];
};

struct wsd_keyholder_args {
    const struct wsd_config *cfg;
    pid_t supervisor_pid;
    int chan; /* the keyholder's end of the channel; it becomes fd 3 */
    void *unmap;       /* the supervisor's shared page, if mapped: dropped at once */
    size_t unmap_len;
};

/* The child's main (wsd_spawn_process); never returns. */
void wsd_keyholder_main(void *args);

#endif
