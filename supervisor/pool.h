/* SPDX-License-Identifier: MIT */
/* The worker table: one slot per live worker process, found by slot index (reports, epoll)
 * and known by its pidfd. Owner: the supervisor. */
#ifndef WSD_SUPERVISOR_POOL_H
#define WSD_SUPERVISOR_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "supervisor/report.h"

struct wsd_conn_live;
struct wsd_kill_mailbox;

enum wsd_worker_state {
    WSD_WORKER_FREE = 0, /* slot unused */
    WSD_WORKER_IDLE,     /* spawned, waiting on the dispatch queue */
    WSD_WORKER_BUSY,     /* serving conn_id */
    WSD_WORKER_EXITING,  /* served its last connection; waiting to be reaped */
    WSD_WORKER_STATES,
};

/* Why a connection was ended by wsd (or by a crash). */
enum wsd_cause {
    WSD_CAUSE_NONE = 0,
    WSD_CAUSE_OPERATOR,
    WSD_CAUSE_HEARTBEAT,
    WSD_CAUSE_PROTOCOL,
    WSD_CAUSE_ABUSE,
    WSD_CAUSE_SHUTDOWN,
    WSD_CAUSE_CRASH,
    WSD_CAUSE_COUNT,
};

/* Messages and bytes each way: a worker's count for its connection, as reported. */
struct wsd_traffic {
    uint64_t in_msgs, in_bytes, out_msgs, out_bytes;
};

enum { WSD_SIG_SENT_TERM = 1, WSD_SIG_SENT_CONT = 2, WSD_SIG_SENT_KILL = 4 };

struct wsd_worker {
    enum wsd_worker_state state;
    int pidfd;
    pid_t pid; /* for logs only */
    uint64_t cookie;
    uint64_t spawned_ms;
    uint32_t served;
    uint32_t next_free;
    uint32_t tls_gen; /* the certificate generation it was spawned with (SIGHUP bumps it) */
    /* The connection being served (BUSY). */
    uint64_t conn_id;
    uint64_t conn_start_ms;
    struct sockaddr_storage peer;
    char path[WSD_REPORT_PATH_MAX];
    struct wsd_traffic counted; /* already added to the metrics' totals */
    /* A termination under way: first cause wins; escalation deadline for SIGKILL. */
    enum wsd_cause cause;
    uint16_t kill_code;
    uint8_t signals; /* WSD_SIG_SENT_* */
    bool escalated;
    uint64_t kill_deadline_ms;
    uint64_t kill_ns; /* when the termination began (kill-to-exit latency) */
};

struct wsd_pool {
    struct wsd_worker *slots;
    uint32_t cap;
    uint32_t free_head;
    uint32_t count[WSD_WORKER_STATES]; /* workers in each state; [FREE] unused */
    uint32_t idle, busy;               /* = count[IDLE], count[BUSY], for brevity */
    uint64_t spawned_total;
};

/* Make room for cap workers. Returns 0 or -ENOMEM. The slots are not inherited by child
 * processes (wsd_sys_alloc_unforked): only the supervisor reads them. */
int wsd_pool_init(struct wsd_pool *p, uint32_t cap);
void wsd_pool_done(struct wsd_pool *p);

/* Take a free slot (state still FREE), or NULL when all cap are in use. */
struct wsd_worker *wsd_pool_slot_take(struct wsd_pool *p);

/* Return a slot whose process has been reaped; its pidfd must already be closed. */
void wsd_pool_slot_release(struct wsd_pool *p, struct wsd_worker *w);

/* Move a worker between states (to FREE only via release), keeping the counts. */
void wsd_pool_set_state(struct wsd_pool *p, struct wsd_worker *w, enum wsd_worker_state s);

/* The busy worker serving conn_id, or NULL. */
struct wsd_worker *wsd_pool_find_conn(struct wsd_pool *p, uint64_t conn_id);

/* Read the worker's published connection state (process_vm_readv; the caller holds its
 * unreaped pidfd, so the pid is still this worker's). Returns 0, or -errno / -EBADMSG if what
 * was read does not belong to the connection the slot serves. */
int wsd_worker_read_live(const struct wsd_worker *w, struct wsd_conn_live *ret);

/* Write the kill mailbox into the worker (process_vm_writev). Returns 0 or -errno. */
int wsd_worker_write_mailbox(const struct wsd_worker *w, const struct wsd_kill_mailbox *m);

static inline uint32_t wsd_pool_index(const struct wsd_pool *p, const struct wsd_worker *w)
{
    return (uint32_t)(w - p->slots);
}

/* Workers alive in any state. */
static inline uint32_t wsd_pool_live(const struct wsd_pool *p)
{
    return p->count[WSD_WORKER_IDLE] + p->count[WSD_WORKER_BUSY] + p->count[WSD_WORKER_EXITING];
}

#endif
