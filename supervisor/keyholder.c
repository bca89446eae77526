/* SPDX-License-Identifier: MIT */
/* wsd-keyholder (see keyholder.h). */
#include "supervisor/keyholder.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/sys.h"
#include "core/tls_key.h"
#include "supervisor/exit.h"
#include "supervisor/spawn.h"

#define CHAN 3

void wsd_keyholder_main(void *arg)
{
    const struct wsd_keyholder_args *a = arg;
    /* Not dumpable: no core file, and /proc/PID/mem and ptrace need CAP_SYS_PTRACE. */
    (void)prctl(PR_SET_DUMPABLE, 0);
    wsd_spawn_child_init("wsd-keyholder", a->supervisor_pid, 0);
    wsd_log_setup((enum wsd_log_level)a->cfg->log_level, "wsd-keyholder");
    if (a->unmap)
        (void)munmap(a->unmap, a->unmap_len);
    /* Only the channel stays: no listener, no pidfd, nothing else of the supervisor's. */
    if (dup3(a->chan, CHAN, O_CLOEXEC) < 0 || wsd_sys_close_range(CHAN + 1, 0) < 0)
        _exit(WSD_EXIT_FAILURE);

    struct wsd_keyholder_verdict v = {0};
    struct wsd_tls_key *k = NULL;
    v.status = wsd_tls_key_load(a->cfg->tls_key, &k, v.why, sizeof(v.why));
    if (v.status == 0)
        v.status = wsd_tls_key_check(k, a->cfg->tls_key, a->cfg->tls_cert, v.why, sizeof(v.why));
    if (send(CHAN, &v, sizeof(v), MSG_NOSIGNAL) != (ssize_t)sizeof(v) || v.status < 0) {
        wsd_tls_key_free(k);
        _exit(v.status < 0 ? WSD_EXIT_OK : WSD_EXIT_FAILURE); /* the supervisor logs why */
    }
    int r;
    while ((r = wsd_tls_key_serve_one(k, CHAN)) == 0)
        ;
    wsd_tls_key_free(k);
    if (r != -EPIPE) {
        wsd_log_error(r, "recvmsg() failed while waiting for signing requests");
        _exit(WSD_EXIT_FAILURE);
    }
    _exit(WSD_EXIT_OK); /* every worker of this generation is gone */
}
