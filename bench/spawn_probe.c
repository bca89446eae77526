/* SPDX-License-Identifier: MIT */
/* The process-creation probe: empty clone3 + exit + reap, timed per process. */
#include "bench/spawn_probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sys.h"

struct child {
    int pidfd;
    uint64_t t_start;
};

static int spawn_one(struct child *ch)
{
    int r;

    ch->t_start = wsd_now_ns();
    r = wsd_sys_clone3_pidfd(0, &ch->pidfd);
    if (r == 0)
        _exit(0);
    return r < 0 ? r : 0;
}

int wsb_spawn_probe_run(const struct wsb_config *cfg, struct wsb_result *res)
{
    struct child *kids = calloc(cfg->conns, sizeof(*kids));
    uint64_t t0, t_end, t;
    unsigned i = 0;
    int r = 0;

    memset(res, 0, sizeof(*res));
    wsb_hist_init(&res->lat);
    if (!kids)
        return -ENOMEM;
    for (unsigned k = 0; k < cfg->conns; k++)
        kids[k].pidfd = -1;
    t0 = wsd_now_ns();
    t_end = t0 + (uint64_t)(cfg->duration_s * 1e9);
    for (unsigned k = 0; k < cfg->conns && r == 0; k++)
        r = spawn_one(&kids[k]);
    /* Reap the oldest, start its successor in its place: cfg->conns stay in flight. */
    for (t = t0; r == 0 && kids[i].pidfd >= 0; i = (i + 1) % cfg->conns) {
        siginfo_t si;

        r = wsd_sys_waitid_pidfd(kids[i].pidfd, &si, 0);
        if (r < 0)
            break;
        t = wsd_now_ns();
        kids[i].pidfd = wsd_close(kids[i].pidfd);
        if (si.si_code != CLD_EXITED || si.si_status != 0) {
            fprintf(stderr, "wsbench: an empty child did not exit 0 (code %d status %d)\n",
                    si.si_code, si.si_status);
            r = -ECHILD;
            break;
        }
        res->done++;
        wsb_hist_record(&res->lat, t - kids[i].t_start);
        if (t < t_end)
            r = spawn_one(&kids[i]);
    }
    if (r < 0)
        fprintf(stderr, "wsbench: spawn probe failed: %s\n", strerror(-r));
    for (unsigned k = 0; k < cfg->conns; k++) { /* after a failure: reap what is left */
        siginfo_t si;
        if (kids[k].pidfd >= 0)
            (void)wsd_sys_waitid_pidfd(kids[k].pidfd, &si, 0);
        wsd_close(kids[k].pidfd);
    }
    res->elapsed_s = (double)(t - t0) / 1e9;
    free(kids);
    return r;
}
