/* SPDX-License-Identifier: MIT */
/* SIGHUP: read the environment and WSD_ENV_FILE again, apply what can change at run time (to
 * connections that start from now on: idle workers are recycled), log every change, and name
 * the settings that need a restart. A file that does not parse, or a bad value, is refused
 * with one line and nothing changes. */
#include "supervisor/state.h"

#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"

struct changes {
    unsigned applied, kept;
};

static void log_change(const char *name, const char *was, const char *now, bool applied,
                       void *userdata)
{
    struct changes *c = userdata;
    if (applied) {
        c->applied++;
        wsd_log_notice("SIGHUP: %s changed from \"%s\" to \"%s\"", name, was, now);
    } else {
        c->kept++;
        wsd_log_warn(0,
                     "SIGHUP: %s changed from \"%s\" to \"%s\", which needs a restart (or a "
                     "SIGUSR2 upgrade); keeping \"%s\"",
                     name, was, now, was);
    }
}

void wsd_reload(struct supervisor *s)
{
    wsd_notify_reloading(&s->notify);
    struct wsd_config next;
    struct changes c = {0};
    char why[768];
    if (wsd_config_reload(s->cfg, &next, log_change, &c, why, sizeof(why)) < 0) {
        wsd_log_error(0, "SIGHUP: refused: %s; keeping the old configuration", why);
        wsd_notify_reloaded(&s->notify);
        return;
    }
    struct wsd_config old = s->config;
    s->config = next;
    wsd_log_setup((enum wsd_log_level)s->cfg->log_level, "wsd");
    if (wsd_certs_reload(s) < 0) {
        /* the old certificate stays in use: so do the paths it was loaded from */
        memcpy(s->config.tls_cert, old.tls_cert, sizeof(old.tls_cert));
        memcpy(s->config.tls_key, old.tls_key, sizeof(old.tls_key));
        s->config.tls_min_version = old.tls_min_version;
    }
    /* Idle workers were forked with the old values: new connections get new workers. */
    uint32_t recycled = c.applied ? wsd_terminate_idle(s) : 0;
    wsd_log_notice("SIGHUP: configuration reloaded: %u changed, %u need a restart; %u idle "
                   "workers recycled",
                   c.applied, c.kept, recycled);
    wsd_notify_reloaded(&s->notify);
}
