/* SPDX-License-Identifier: MIT */
/* The TLS certificate and key: read once by the supervisor (workers inherit the loaded context
 * when they are forked, and never open the key file), checked before use, and replaced on
 * SIGHUP without touching open connections. */
#include "supervisor/state.h"

#include <stdio.h>

#include "core/config.h"
#include "core/live.h"
#include "core/log.h"
#include "core/sys.h"
#include "core/tls.h"

static int load(const struct wsd_config *cfg, struct wsd_tls_ctx **ret, char *why, size_t cap)
{
    return wsd_tls_ctx_load(cfg->tls_cert, cfg->tls_key, cfg->tls_min_version == 1 ? 13 : 12,
                            ret, why, cap);
}

int wsd_certs_load(struct supervisor *s)
{
    const struct wsd_config *cfg = s->cfg;
    if (!cfg->tls_listen[0])
        return 0;
    if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
        fprintf(stderr, "wsd: invalid %s=\"\": expected a PEM file, since WSD_TLS_LISTEN is set\n",
                cfg->tls_cert[0] ? "WSD_TLS_KEY" : "WSD_TLS_CERT");
        return -1;
    }
    char why[512];
    if (load(cfg, &s->tls, why, sizeof(why)) < 0) {
        fprintf(stderr, "wsd: invalid WSD_TLS_CERT/WSD_TLS_KEY: %s\n", why);
        return -1;
    }
    return 0;
}

void wsd_certs_reload(struct supervisor *s)
{
    if (!s->tls) {
        wsd_log_notice("SIGHUP: no TLS listener, nothing to reload");
        return;
    }
    struct wsd_tls_ctx *fresh;
    char why[512];
    if (load(s->cfg, &fresh, why, sizeof(why)) < 0) {
        wsd_log_error(0, "SIGHUP: refused the new certificate: %s; keeping the old one", why);
        return;
    }
    /* Workers forked from now on get the new context; the old one lives on, copy-on-write, in
     * every worker that has it, and is freed here. */
    wsd_tls_ctx_free(s->tls);
    s->tls = fresh;
    char desc[256];
    wsd_tls_ctx_describe(s->tls, desc, sizeof(desc));
    /* Idle workers hold the old certificate: ask them (and only idle ones) to leave; the pool
     * refills with workers that have the new one. */
    siginfo_t info = {.si_signo = SIGTERM, .si_code = SI_QUEUE, .si_pid = s->self};
    info.si_value.sival_ptr = (void *)(uintptr_t)wsd_kill_value(WSD_KILL_IDLE_ONLY, 0);
    uint32_t recycled = 0;
    for (uint32_t i = 0; i < s->pool.cap; i++) {
        struct wsd_worker *w = &s->pool.slots[i];
        if (w->state == WSD_WORKER_IDLE &&
            wsd_sys_pidfd_send_signal(w->pidfd, SIGTERM, &info) == 0)
            recycled++;
    }
    wsd_log_notice("SIGHUP: new TLS certificate %s; recycling %u idle workers", desc, recycled);
}
