/* SPDX-License-Identifier: MIT */
/* Worker slots on a free list, with idle/busy counts kept in step with each state change. */
#include "supervisor/pool.h"

#include <errno.h>
#include <stdlib.h>

#define NO_SLOT UINT32_MAX

int wsd_pool_init(struct wsd_pool *p, uint32_t cap)
{
    *p = (struct wsd_pool){.cap = cap, .free_head = 0};
    p->slots = calloc(cap, sizeof(*p->slots));
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
    free(p->slots);
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
    if (w->state == WSD_WORKER_IDLE)
        p->idle--;
    else if (w->state == WSD_WORKER_BUSY)
        p->busy--;
    if (s == WSD_WORKER_IDLE)
        p->idle++;
    else if (s == WSD_WORKER_BUSY)
        p->busy++;
    w->state = s;
}

void wsd_pool_slot_release(struct wsd_pool *p, struct wsd_worker *w)
{
    wsd_pool_set_state(p, w, WSD_WORKER_FREE);
    *w = (struct wsd_worker){.pidfd = -1, .next_free = p->free_head};
    p->free_head = wsd_pool_index(p, w);
}
