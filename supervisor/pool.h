/* SPDX-License-Identifier: MIT */
/* The worker table: one slot per live worker process, found by slot index (reports, epoll)
 * and known by its pidfd. Owner: the supervisor. */
#ifndef WSD_SUPERVISOR_POOL_H
#define WSD_SUPERVISOR_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum wsd_worker_state {
    WSD_WORKER_FREE = 0, /* slot unused */
    WSD_WORKER_IDLE,     /* spawned, waiting on the dispatch queue */
    WSD_WORKER_BUSY,     /* serving conn_id */
};

struct wsd_worker {
    enum wsd_worker_state state;
    int pidfd;
    pid_t pid; /* for logs only */
    uint64_t cookie;
    uint64_t conn_id;
    uint64_t spawned_ms;
    uint32_t next_free;
};

struct wsd_pool {
    struct wsd_worker *slots;
    uint32_t cap;
    uint32_t free_head;
    uint32_t idle, busy;
    uint64_t spawned_total;
};

/* Make room for cap workers. Returns 0 or -ENOMEM. */
int wsd_pool_init(struct wsd_pool *p, uint32_t cap);
void wsd_pool_done(struct wsd_pool *p);

/* Take a free slot (state still FREE), or NULL when all cap are in use. */
struct wsd_worker *wsd_pool_slot_take(struct wsd_pool *p);

/* Return a slot whose process has been reaped; its pidfd must already be closed. */
void wsd_pool_slot_release(struct wsd_pool *p, struct wsd_worker *w);

/* Move a worker between IDLE and BUSY (or to FREE via release), keeping the counts. */
void wsd_pool_set_state(struct wsd_pool *p, struct wsd_worker *w, enum wsd_worker_state s);

static inline uint32_t wsd_pool_index(const struct wsd_pool *p, const struct wsd_worker *w)
{
    return (uint32_t)(w - p->slots);
}

static inline uint32_t wsd_pool_live(const struct wsd_pool *p)
{
    return p->idle + p->busy;
}

#endif
