/* SPDX-License-Identifier: MIT */
/* Worker slots on a free list, with idle/busy counts kept in step with each state change. */
#include "supervisor/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "core/live.h"
#include "core/sys.h"

#define NO_SLOT UINT32_MAX

int wsd_pool_init(struct wsd_pool *p, uint32_t cap)
{
    *p = (struct wsd_pool){.cap = cap, .free_head = 0};
    /* Up to 19,000 slots, all touched below: kept out of every forked worker. */
    p->slots = wsd_sys_alloc_unforked(cap * sizeof(*p->slots));
    if (!p->slots)
        return -ENOMEM;
    for (uint32_t i = 0; i < cap; i++) {
        p->slots[i].pidfd = -1;
        p->slots[i].next_free = i + 1 < cap ? i + 1 : NO_SLOT;
    }
    return 0;
}

void wsd_pool_done(struct wsd_pool *p)
{
    wsd_sys_free_unforked(p->slots, p->cap * sizeof(*p->slots));
    p->slots = NULL;
}

struct wsd_worker *wsd_pool_slot_take(struct wsd_pool *p)
{
    if (p->free_head == NO_SLOT)
        return NULL;
    struct wsd_worker *w = &p->slots[p->free_head];
    p->free_head = w->next_free;
    return w;
}

void wsd_pool_set_state(struct wsd_pool *p, struct wsd_worker *w, enum wsd_worker_state s)
{
    p->count[w->state]--;
    p->count[s]++;
    w->state = s;
    p->idle = p->count[WSD_WORKER_IDLE];
    p->busy = p->count[WSD_WORKER_BUSY];
}

struct wsd_worker *wsd_pool_find_conn(struct wsd_pool *p, uint64_t conn_id)
{
    for (uint32_t i = 0; i < p->cap; i++)
        if (p->slots[i].state == WSD_WORKER_BUSY && p->slots[i].conn_id == conn_id)
            return &p->slots[i];
    return NULL;
}

int wsd_worker_read_live(const struct wsd_worker *w, struct wsd_conn_live *ret)
{
    /* Same binary, forked without exec: the worker's wsd_live is at our wsd_live's address. */
    struct iovec local = {ret, sizeof(*ret)}, remote = {&wsd_live, sizeof(wsd_live)};
    ssize_t n = process_vm_readv(w->pid, &local, 1, &remote, 1, 0);
    if (n < 0)
        return -errno;
    if ((size_t)n != sizeof(*ret) || ret->magic != WSD_LIVE_MAGIC || ret->conn_id != w->conn_id)
        return -EBADMSG;
    return 0;
}

int wsd_worker_write_mailbox(const struct wsd_worker *w, const struct wsd_kill_mailbox *m)
{
    struct iovec local = {(void *)m, sizeof(*m)};
    struct iovec remote = {&wsd_kill_mailbox, sizeof(wsd_kill_mailbox)};
    return process_vm_writev(w->pid, &local, 1, &remote, 1, 0) == (ssize_t)sizeof(*m) ? 0
                                                                                       : -errno;
}

void wsd_pool_slot_release(struct wsd_pool *p, struct wsd_worker *w)
{
    if (w->state != WSD_WORKER_FREE)
        wsd_pool_set_state(p, w, WSD_WORKER_FREE);
    *w = (struct wsd_worker){.pidfd = -1, .next_free = p->free_head};
    p->free_head = wsd_pool_index(p, w);
}
