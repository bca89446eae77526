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
#include "supervisor/template.h"

static int load(const struct wsd_config *cfg, struct wsd_tls_ctx **ret, char *why, size_t cap)
{
    return wsd_tls_ctx_load(cfg->tls_cert, cfg->tls_key, cfg->tls_min_version == 1 ? 13 : 12,
                            ret, why, cap);
}

int wsd_certs_load(struct supervisor *s)
{
    const struct wsd_config *cfg = s->cfg;
    /* Passed-in sockets replace WSD_TLS_LISTEN: then a "wss" one is what asks for TLS. */
    bool passed = wsd_activation_has_listeners(&s->inherited);
    if (passed ? s->inherited.wss < 0 : !cfg->tls_listen[0])
        return 0;
    if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
        fprintf(stderr, "wsd: invalid %s=\"\": expected a PEM file, since %s\n",
                cfg->tls_cert[0] ? "WSD_TLS_KEY" : "WSD_TLS_CERT",
                passed ? "a wss socket was passed in" : "WSD_TLS_LISTEN is set");
        return -1;
    }
    char why[512];
    if (load(cfg, &s->tls, why, sizeof(why)) < 0) {
        fprintf(stderr, "wsd: invalid WSD_TLS_CERT/WSD_TLS_KEY: %s\n", why);
        return -1;
    }
    /* The acceptor side and the certificate handling are in place; the worker's TLS session
     * (core/tls.c driven from core/conn.c) is not wired in yet. Refuse rather than hand
     * wss:// clients to workers that would speak plain text to them. FIXME: remove when
     * core/conn.c runs wsd_tls_handshake (issue 5). */
    fprintf(stderr, "wsd: invalid WSD_TLS_LISTEN=\"%s\": certificate %s checked, but wss:// is "
                    "not served yet; expected empty\n", cfg->tls_listen, cfg->tls_cert);
    s->tls = wsd_tls_ctx_free(s->tls);
    return -1;
}

int wsd_certs_reload(struct supervisor *s)
{
    if (!s->tls)
        return 0; /* no TLS listener */
    struct wsd_tls_ctx *fresh;
    char why[512];
    if (load(s->cfg, &fresh, why, sizeof(why)) < 0) {
        wsd_log_error(0, "SIGHUP: refused the new certificate: %s; keeping the old one", why);
        return -1;
    }
    /* Workers forked from now on get the new context; the old one lives on, copy-on-write, in
     * every worker that has it, and is freed here. */
    wsd_tls_ctx_free(s->tls);
    s->tls = fresh;
    wsd_template_stop(s); /* the next worker comes from a template with the new context */
    char desc[256];
    wsd_tls_ctx_describe(s->tls, desc, sizeof(desc));
    /* Idle workers hold the old certificate: ask them (and only idle ones) to leave; the pool
     * refills with workers that have the new one. */
    uint32_t recycled = wsd_terminate_idle(s);
    wsd_log_notice("SIGHUP: new TLS certificate %s; recycling %u idle workers", desc, recycled);
    return 0;
}
