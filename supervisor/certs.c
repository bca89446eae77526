/* SPDX-License-Identifier: MIT */
/* The TLS certificate and its keyholder. The supervisor loads only the certificate chain
 * (workers inherit it when they are forked); the private key is read by wsd-keyholder alone,
 * which signs for the workers over the channel at fd WSD_FD_KEYHOLDER. On SIGHUP a new pair
 * (keyholder + certificate) replaces the old one without touching open connections: the old
 * keyholder keeps signing for the workers that have its channel, and leaves with the last. */
#include "supervisor/state.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/live.h"
#include "core/log.h"
#include "core/shared.h"
#include "core/sys.h"
#include "core/tls.h"
#include "supervisor/keyholder.h"
#include "supervisor/reap.h"
#include "supervisor/spawn.h"

#define VERDICT_TIMEOUT_MS 10000 /* an RSA-8192 check takes well under a second */

static unsigned min_version(const struct supervisor *s)
{
    return s->cfg->tls_min_version == 1 ? 13 : 12;
}

static int free_slot(const struct supervisor *s)
{
    for (int i = 0; i < WSD_KEYHOLDERS_MAX; i++)
        if (s->keyholders[i].pidfd < 0)
            return i;
    return -1;
}

/* End a keyholder that gave a bad verdict (or none) and reap it now: it has served nobody. */
static void discard(struct supervisor *s, int slot)
{
    struct wsd_keyholder *k = &s->keyholders[slot];
    siginfo_t si;
    (void)wsd_sys_pidfd_send_signal(k->pidfd, SIGKILL, NULL);
    for (int i = 0; i < 50 && wsd_reap(k->pidfd, &si) == 0; i++)
        (void)poll(&(struct pollfd){.fd = k->pidfd, .events = POLLIN}, 1, 100);
    k->pidfd = wsd_close(k->pidfd); /* closing also drops it from the epoll set */
}

/* Start a keyholder and wait for its verdict on the key. Returns the slot with the worker end
 * of its channel in *ret_chan (CLOEXEC, above the fixed fds), or -errno with the reason in why
 * (a keyholder that was started is already reaped). */
static int keyholder_start(struct supervisor *s, int *ret_chan, char *why, size_t cap)
{
    int slot = free_slot(s);
    if (slot < 0) {
        snprintf(why, cap, "%d keyholder generations still serve old connections",
                 WSD_KEYHOLDERS_MAX);
        return -EBUSY;
    }
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
        snprintf(why, cap, "socketpair() failed: %s", strerror(errno));
        return -errno;
    }
    /* Above the fixed slots, so that moving fds into 3, 4 and 5 never clobbers these. */
    int k = fcntl(sp[0], F_DUPFD_CLOEXEC, 16), w = fcntl(sp[1], F_DUPFD_CLOEXEC, 16);
    wsd_close(sp[0]);
    wsd_close(sp[1]);
    struct wsd_keyholder_args a = {.cfg = s->cfg, .supervisor_pid = s->self, .chan = k,
                                   .unmap = s->shared, .unmap_len = sizeof(*s->shared)};
    int pidfd = -1;
    pid_t pid = k < 0 || w < 0 ? -EMFILE : wsd_spawn_process(wsd_keyholder_main, &a, &pidfd);
    wsd_close(k);
    if (pid < 0) {
        snprintf(why, cap, "starting wsd-keyholder failed: %s", strerror(-pid));
        wsd_close(w);
        return pid;
    }
    /* At startup fds 3-5 are still free: keep the pidfd out of the fixed slots too. */
    int high = fcntl(pidfd, F_DUPFD_CLOEXEC, 16);
    if (high >= 0) {
        wsd_close(pidfd);
        pidfd = high;
    }
    s->keyholders[slot] = (struct wsd_keyholder){.pidfd = pidfd, .pid = pid};
    if (s->watching)
        (void)wsd_supervisor_watch(s, pidfd, WSD_TAG_KEYHOLDER, (uint32_t)slot, EPOLLIN);
    struct wsd_keyholder_verdict v;
    struct pollfd p = {.fd = w, .events = POLLIN};
    int n = poll(&p, 1, VERDICT_TIMEOUT_MS);
    ssize_t got = n == 1 ? recv(w, &v, sizeof(v), MSG_DONTWAIT) : -1;
    if (got != (ssize_t)sizeof(v) || v.status < 0) {
        if (got == (ssize_t)sizeof(v))
            snprintf(why, cap, "%.*s", (int)sizeof(v.why), v.why);
        else
            snprintf(why, cap, "wsd-keyholder pid=%d gave no verdict on %s", pid,
                     s->cfg->tls_key);
        discard(s, slot);
        wsd_close(w);
        return got == (ssize_t)sizeof(v) ? v.status : -EPROTO;
    }
    *ret_chan = w;
    return slot;
}

/* Put the new channel at WSD_FD_KEYHOLDER: workers spawned from now on sign through it. */
static int install(struct supervisor *s, int slot, int chan)
{
    int r = dup3(chan, WSD_FD_KEYHOLDER, O_CLOEXEC) < 0 ? -errno : 0;
    wsd_close(chan);
    if (r == 0)
        s->keyholder_current = slot;
    return r;
}

int wsd_certs_load(struct supervisor *s)
{
    const struct wsd_config *cfg = s->cfg;
    s->keyholder_current = -1;
    for (int i = 0; i < WSD_KEYHOLDERS_MAX; i++)
        s->keyholders[i].pidfd = -1;
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
    int chan = -1;
    int r = wsd_tls_ctx_load(cfg->tls_cert, min_version(s), WSD_FD_KEYHOLDER, &s->tls, why,
                             sizeof(why));
    int slot = r < 0 ? r : keyholder_start(s, &chan, why, sizeof(why));
    if (slot >= 0 && install(s, slot, chan) < 0)
        snprintf(why, sizeof(why), "dup3() failed while installing the keyholder channel");
    if (slot < 0 || s->keyholder_current < 0) {
        fprintf(stderr, "wsd: invalid WSD_TLS_CERT/WSD_TLS_KEY: %s\n", why);
        for (int i = 0; i < WSD_KEYHOLDERS_MAX; i++)
            if (s->keyholders[i].pidfd >= 0)
                discard(s, i);
        s->tls = wsd_tls_ctx_free(s->tls);
        return -1;
    }
    return 0;
}

int wsd_certs_watch(struct supervisor *s)
{
    s->watching = true;
    for (int i = 0; i < WSD_KEYHOLDERS_MAX; i++) {
        int r = s->keyholders[i].pidfd < 0 ? 0
                : wsd_supervisor_watch(s, s->keyholders[i].pidfd, WSD_TAG_KEYHOLDER,
                                       (uint32_t)i, EPOLLIN);
        if (r < 0)
            return r;
    }
    return 0;
}

void wsd_certs_retire(struct supervisor *s, struct wsd_worker *w)
{
    siginfo_t info = {.si_signo = SIGTERM, .si_code = SI_QUEUE, .si_pid = s->self};
    info.si_value.sival_ptr = (void *)(uintptr_t)wsd_kill_value(WSD_KILL_IDLE_ONLY, 0);
    (void)wsd_sys_pidfd_send_signal(w->pidfd, SIGTERM, &info);
}

/* Idle workers hold the old channel and certificate: ask them (and only idle ones) to leave;
 * the pool refills with workers that have the new pair. Busy ones are retired when their
 * connection ends (WSD_WORKER_REUSE). */
static uint32_t recycle_idle(struct supervisor *s)
{
    s->tls_gen++;
    uint32_t recycled = 0;
    for (uint32_t i = 0; i < s->pool.cap; i++) {
        struct wsd_worker *w = &s->pool.slots[i];
        if (w->state == WSD_WORKER_IDLE) {
            wsd_certs_retire(s, w);
            recycled++;
        }
    }
    return recycled;
}

int wsd_certs_reload(struct supervisor *s)
{
    if (!s->tls)
        return 0; /* no TLS listener */
    struct wsd_tls_ctx *fresh = NULL;
    char why[512];
    int chan = -1;
    int r = wsd_tls_ctx_load(s->cfg->tls_cert, min_version(s), WSD_FD_KEYHOLDER, &fresh, why,
                             sizeof(why));
    int slot = r < 0 ? r : keyholder_start(s, &chan, why, sizeof(why));
    if (slot >= 0 && install(s, slot, chan) < 0) {
        snprintf(why, sizeof(why), "dup3() failed while installing the keyholder channel");
        slot = -1;
    }
    if (slot < 0) {
        wsd_log_error(0, "SIGHUP: refused the new certificate: %s; keeping the old one", why);
        wsd_tls_ctx_free(fresh);
        return -1;
    }
    /* Workers forked from now on get the new context; the old one lives on, copy-on-write, in
     * every worker that has it, and is freed here. */
    wsd_tls_ctx_free(s->tls);
    s->tls = fresh;
    char desc[256];
    wsd_tls_ctx_describe(s->tls, desc, sizeof(desc));
    uint32_t recycled = recycle_idle(s);
    wsd_log_notice("SIGHUP: new TLS certificate %s, keyholder pid=%d; recycling %u idle workers",
                   desc, s->keyholders[slot].pid, recycled);
    return 0;
}

void wsd_certs_keyholder_exit(struct supervisor *s, uint32_t slot)
{
    if (slot >= WSD_KEYHOLDERS_MAX || s->keyholders[slot].pidfd < 0)
        return;
    pid_t pid = s->keyholders[slot].pid;
    bool current = (int)slot == s->keyholder_current;
    siginfo_t si;
    if (wsd_reap(s->keyholders[slot].pidfd, &si) != 1)
        return;
    s->keyholders[slot].pidfd = wsd_close(s->keyholders[slot].pidfd);
    if (!current) {
        wsd_log_info("keyholder pid=%d left with the last worker of its generation", pid);
        return;
    }
    s->keyholder_current = -1;
    if (s->stopping)
        return;
    char how[96], why[512];
    wsd_reap_describe(&si, how, sizeof(how));
    int chan = -1;
    int r = keyholder_start(s, &chan, why, sizeof(why));
    if (r >= 0 && install(s, r, chan) == 0) {
        wsd_log_warn(0, "keyholder pid=%d %s; started pid=%d, recycled %u idle workers", pid,
                     how, s->keyholders[r].pid, recycle_idle(s));
        return;
    }
    wsd_log_error(0, "keyholder pid=%d %s, and a new one failed: %s; wss:// handshakes fail "
                  "until a SIGHUP succeeds", pid, how, why);
}

void wsd_certs_stop(struct supervisor *s)
{
    if (s->tls)
        (void)close(WSD_FD_KEYHOLDER);
}

unsigned wsd_certs_keyholders_live(const struct supervisor *s)
{
    unsigned n = 0;
    for (int i = 0; i < WSD_KEYHOLDERS_MAX; i++)
        n += s->keyholders[i].pidfd >= 0;
    return n;
}
