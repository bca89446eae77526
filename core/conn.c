/* SPDX-License-Identifier: MIT */
/* The worker's side of one WebSocket connection: its life cycle. Set-up, the 101 (after the
 * TLS front for wss://, core/tls_accept.c), the epoll loop over the socket and a signalfd
 * (timing out at the close and heartbeat deadlines), the heartbeat, terminations, and the
 * end. What flows once it is open (bytes, frames, messages) is core/conn_io.c's. */
#include "core/conn.h"


#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conn_io.h"
#include "core/config.h"
#include "core/handoff.h"
#include "core/listen.h"
#include "core/live.h"
#include "core/log.h"
#include "core/sys.h"
#include "core/tls.h"
#include "core/tls_accept.h"
#include "core/wake.h"
#include "proto/close.h"
#include "proto/deflate.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/http_upgrade.h"
#include "proto/proto.h"
#include "proto/utf8.h"
#include "proto/ws_codes.h"
#include "proto/ws_reader.h"

/* The blocking read's system call saved per wakeup counts when wakeups are many and each
 * brings little. Past this much per read the epoll wait served better (64 KiB echo, 5
 * alternating rounds: 7-9% more messages per second). */
#define BLOCKING_READ_MAX 16384

int wsd_conn_watch(struct wsd_conn *c, int fd, uint32_t tag, uint32_t events)
{
    if (events == 0) {
        wsd_conn_unwatch(c, fd);
        return 0;
    }
    struct epoll_event ev = {.events = events, .data.u32 = EV_HANDLER + tag};
    c->loop->foreign = true;
    if (epoll_ctl(c->ep, EPOLL_CTL_MOD, fd, &ev) == 0)
        return 0;
    if (errno == ENOENT && epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) == 0)
        return 0;
    return -errno;
}

void wsd_conn_unwatch(struct wsd_conn *c, int fd)
{
    (void)epoll_ctl(c->ep, EPOLL_CTL_DEL, fd, NULL);
}

/* Take one termination: caught by core/wake.c's handler while the worker waited in recv(),
 * else from the signalfd. Returns false if there was none, or it names a connection this
 * worker served before (not ours); else true with the close code and reason (buf holds it). */
static bool read_termination(struct wsd_conn *c, uint16_t *code, const char **reason,
                             char buf[WSD_KILL_REASON_MAX + 1])
{
    struct wsd_wake_term t;
    if (!wsd_wake_take_term(&t)) {
        struct signalfd_siginfo si;
        if (read(c->sig_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
            return false;
        t = (struct wsd_wake_term){.code = si.ssi_code, .value = si.ssi_ptr};
    }
    *code = WSD_CLOSE_GOING_AWAY;
    *reason = "";
    c->res.leave = t.code != SI_QUEUE || wsd_kill_value_conn(t.value) == 0;
    if (t.code == SI_QUEUE) {
        uint64_t id = wsd_kill_value_conn(t.value);
        if (id != 0 && id != c->id)
            return false; /* meant for a connection this worker served before: not ours */
        if (wsd_kill_value_code(t.value) != 0)
            *code = wsd_kill_value_code(t.value);
        const struct wsd_kill_mailbox *m = &wsd_kill_mailbox;
        if (id != 0 && m->conn_id == id && m->reason_len <= WSD_KILL_REASON_MAX) {
            memcpy(buf, m->reason, m->reason_len);
            buf[m->reason_len] = '\0';
            *reason = buf;
        }
    }
    return true;
}

static void handle_signal(struct wsd_conn *c)
{
    uint16_t code;
    const char *reason;
    char buf[WSD_KILL_REASON_MAX + 1];
    if (!read_termination(c, &code, &reason, buf))
        return;
    c->yield_when_sent = c->last || c->res.leave;
    /* A plain SIGTERM (kill -TERM pid) closes whatever this worker serves: the one racy path,
     * kept for scripts; wsctl's signals name their connection. */
    if (c->state == ST_OPEN)
        wsd_conn_io_start_close(c, code, reason);
    else
        c->state = ST_DONE; /* a second termination while closing: stop waiting */
}

/* One deadline for both heartbeat duties: the next ping, and the moment the client has been
 * silent for interval + timeout (RFC 6455 5.5.2 ping, then our verdict). */
static void arm_heartbeat(struct wsd_conn *c)
{
    uint64_t interval = c->cfg->ping_interval_ms;
    if (interval == 0)
        return;
    uint64_t wake = c->next_ping_ms;
    uint64_t dead_at = wsd_live.last_rx_ms + interval + c->cfg->ping_timeout_ms;
    if (!c->verdict_sent && dead_at < wake)
        wake = dead_at;
    c->hb_wake_ms = wake;
}

static void handle_heartbeat(struct wsd_conn *c, uint64_t now)
{
    wsd_live.loop_ms = now;
    if (!c->verdict_sent &&
        now >= wsd_live.last_rx_ms + c->cfg->ping_interval_ms + c->cfg->ping_timeout_ms) {
        c->verdict_sent = true;
        if (c->on_verdict)
            c->on_verdict(c->id, WSD_VERDICT_HEARTBEAT, c->userdata);
    }
    if (now >= c->next_ping_ms) {
        if (c->state == ST_OPEN) {
            uint64_t sent_ns = wsd_now_ns();
            (void)wsd_conn_io_send_frame(c, WSD_OP_PING, (const uint8_t *)&sent_ns, sizeof(sent_ns));
        }
        c->next_ping_ms = now + c->cfg->ping_interval_ms;
    }
    arm_heartbeat(c);
}

/* RFC 7692 5: the first acceptable offer, looking through every Sec-WebSocket-Extensions
 * header in order (RFC 9110 5.3: several are one comma-separated list). */
static void negotiate_deflate(struct wsd_conn *c, const struct wsd_http_upgrade *req,
                              char ext[WSD_DEFLATE_RESPONSE_MAX])
{
    struct wsd_deflate_params params;
    for (size_t i = 0; i < req->num_headers && !c->pmd; i++) {
        const struct wsd_http_header *h = &req->headers[i];
        if (h->name.len == strlen("Sec-WebSocket-Extensions") &&
            strncasecmp(h->name.ptr, "Sec-WebSocket-Extensions", h->name.len) == 0 &&
            wsd_deflate_negotiate(h->value.ptr, h->value.len, &params) == 1 &&
            wsd_deflate_response_write(&params, ext, WSD_DEFLATE_RESPONSE_MAX) > 0) {
            wsd_deflate_init(&c->deflate, &params);
            c->pmd = true;
            c->reader.allow_rsv1 = true; /* RFC 7692 6: RSV1 marks a compressed message */
            /* WSD_MAX_MESSAGE limits the inflated size (counted while inflating). On the wire
             * a compressed message can be bigger than that: incompressible data grows by up
             * to 1/8 in fixed-Huffman blocks, by 5 bytes per 64 KiB in stored ones. */
            c->reader.max_compressed = c->cfg->max_message + c->cfg->max_message / 8 + 1024;
        }
    }
}

/* The handler refused the upgrade: answer with the HTTP status and end (nothing was opened).
 * Returns 1, which wsd_conn_serve takes as "done, not an error". */
static int refuse(struct wsd_conn *c, int status)
{
    char resp[512];
    size_t n = wsd_handshake_response_error(resp, sizeof(resp), status, 0);
    if (n > 0)
        (void)wsd_conn_io_send_raw(c, resp, n); /* through TLS on wss:// (close_notify follows at the end) */
    wsd_log_info("refused conn=%" PRIu64 " peer=%s path=%s status=%d", c->id, c->peer, c->path,
                 status);
    return 1;
}

/* Parse the handed-off request again for what the connection needs, and queue the 101. */
static int send_upgrade(struct wsd_conn *c, const struct wsd_conn_params *p, uint32_t n)
{
    struct wsd_http_upgrade req = {0};
    if (wsd_http_upgrade_parse(&req, p->payload, n, n) != (int)n)
        return -EBADMSG;
    size_t plen = req.target.len < LOG_PATH_MAX - 1 ? req.target.len : LOG_PATH_MAX - 1;
    memcpy(c->path, req.target.ptr, plen);
    c->path[plen] = '\0';
    if (c->handler->on_request) {
        struct wsd_conn_request r = {.http = &req, .handoff = p->handoff, .fd = c->fd};
        int status = c->handler->on_request(c, &r, c->userdata);
        if (status != 0)
            return refuse(c, status);
    }
    char accept[WSD_ACCEPT_LEN + 1];
    if (wsd_handshake_accept(req.key.ptr, req.key.len, accept) < 0)
        return -EINVAL;
    char ext[WSD_DEFLATE_RESPONSE_MAX] = "";
    if (c->cfg->deflate)
        negotiate_deflate(c, &req, ext);
    char resp[512];
    size_t len = wsd_handshake_response_101(resp, sizeof(resp), accept, c->pmd ? ext : NULL, NULL);
    if (len == 0)
        return -EINVAL;
    struct iovec iov = {resp, len};
    return wsd_conn_io_send_iov(c, &iov, 1);
}

int wsd_conn_loop_ready(struct wsd_conn_loop *l, int sig_fd)
{
    if (l->foreign)
        wsd_conn_loop_done(l);
    if (l->ep >= 0)
        return 0;
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    if (l->ep < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = EV_SIGNAL};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, sig_fd, &ev) < 0) {
        int r = -errno;
        wsd_conn_loop_done(l);
        return r;
    }
    return 0;
}

void wsd_conn_loop_done(struct wsd_conn_loop *l)
{
    l->ep = wsd_close(l->ep);
    l->foreign = false;
}

/* The worker's set (made afresh if a handler left fds of its own in it), the socket added. The
 * socket leaves the set by itself when closed. */
static int setup(struct wsd_conn *c, const struct wsd_conn_params *p)
{
    struct wsd_conn_loop *l = p->loop;
    int r = wsd_conn_loop_ready(l, p->sig_fd);
    if (r < 0)
        return r;
    if (p->ignore_term) { /* this handler must not hear SIGTERM; the set is remade after it */
        (void)epoll_ctl(l->ep, EPOLL_CTL_DEL, p->sig_fd, NULL);
        l->foreign = true;
    }
    c->loop = l;
    c->ep = l->ep;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = EV_SOCKET};
    c->ep_events = ev.events;
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        return -errno;
    return 0;
}

static void log_open(const struct wsd_conn *c)
{
    if (!wsd_log_enabled(WSD_LOG_INFO))
        return;
    const struct wsd_log_field f[] = {
        WSD_LOG_NUM("conn", c->id),
        WSD_LOG_NUM("pid", (uint64_t)getpid()),
        WSD_LOG_STR("peer", c->peer),
        WSD_LOG_STR("path", c->path),
        WSD_LOG_STR("tls", "yes"), /* last: left out for ws:// */
    };
    wsd_log_event(WSD_LOG_INFO, "open", f, sizeof(f) / sizeof(f[0]) - (c->tls ? 0 : 1));
}

static void log_close(const struct wsd_conn *c)
{
    static const char *const by[] = {"client", "server", "abnormal"};
    if (!wsd_log_enabled(WSD_LOG_INFO))
        return; /* not even getpid() for a line nobody reads */
    const struct wsd_log_field f[] = {
        WSD_LOG_NUM("conn", c->id),
        WSD_LOG_NUM("pid", (uint64_t)getpid()),
        WSD_LOG_STR("peer", c->peer),
        WSD_LOG_STR("path", c->path),
        WSD_LOG_NUM("duration_ms", wsd_now_ms() - c->start_ms),
        WSD_LOG_NUM("in_msgs", wsd_live.in_msgs),
        WSD_LOG_NUM("in_bytes", wsd_live.in_bytes),
        WSD_LOG_NUM("out_msgs", wsd_live.out_msgs),
        WSD_LOG_NUM("out_bytes", wsd_live.out_bytes),
        WSD_LOG_NUM("code", c->res.close_code),
        WSD_LOG_STR("by", by[c->res.closed_by]),
    };
    wsd_log_event(WSD_LOG_INFO, "close", f, sizeof(f) / sizeof(f[0]));
}

static uint64_t next_deadline(const struct wsd_conn *c)
{
    uint64_t next = c->hb_wake_ms;
    if (c->close_deadline_ms && (!next || c->close_deadline_ms < next))
        next = c->close_deadline_ms;
    return next;
}

/* Whichever deadline has passed: the close handshake's ends the connection (returns false),
 * the heartbeat's runs it. Then *timeout (ms, -1 = none) shrinks to the next one. This runs
 * at every wakeup: the tick's clock serves while the next deadline is further off than its
 * lag, the precise one near it (wsd_tick_ms). */
static bool run_deadlines(struct wsd_conn *c, int *timeout)
{
    uint64_t next = next_deadline(c);
    if (!next)
        return true;
    uint64_t now = wsd_tick_ms();
    uint64_t slack = WSD_TICK_SLACK_MS;
    if (now + slack >= next) {
        now = wsd_now_ms();
        slack = 0;
    }
    if (c->close_deadline_ms && now >= c->close_deadline_ms) {
        c->state = ST_DONE; /* the client never finished the close handshake */
        return false;
    }
    if (c->hb_wake_ms && now >= c->hb_wake_ms) {
        handle_heartbeat(c, now);
        if (c->state == ST_DONE)
            return false; /* the ping could not be sent */
    }
    next = next_deadline(c);
    /* By the tick's clock, wake up to its lag early rather than late: near the deadline
     * the precise clock takes over. */
    uint64_t left = next > now + slack ? next - now - slack : 0;
    if (next && (*timeout < 0 || left < (uint64_t)*timeout))
        *timeout = (int)left;
    return true;
}

/* The client started the close handshake and our answer is out. If it sent nothing after its
 * close frame (RFC 6455 5.5.1: it must not), TCP can be closed now rather than after its FIN:
 * a wakeup less per connection. The FIN goes out at once (shutdown), not at the close() that
 * comes after the connection's bookkeeping: bytes the client sends meanwhile turn that close()
 * into a RST, and a RST that reaches the client before our FIN makes its next read fail
 * (ECONNRESET) where it should see the end of the stream; after the FIN a reader sees our
 * close frame, then EOF. Bytes already unread now would make even the shutdown's FIN follow a
 * RST at close(): with any, the half-close and the drain go on. Plain TCP only: TLS has
 * close_notify. */
static bool close_now(struct wsd_conn *c, uint8_t *in)
{
    if (c->tls || c->res.closed_by != WSD_CLOSED_BY_CLIENT)
        return false;
    if (recv(c->fd, in, READ_SIZE, MSG_DONTWAIT) > 0)
        return false;
    (void)shutdown(c->fd, SHUT_WR); /* nothing, EOF, or dead already */
    return true;
}

/* The blocking read (core/wake.h) serves while the connection waits for its client alone:
 * open, nothing unsent, input not paused, no fds or deadline of the handler's to watch too,
 * and plain TCP (wolfSSL's reads never wait). Otherwise the epoll loop. And only once a
 * message came: setting the blocking read up costs three system calls, more than it saves
 * a connection that opens and closes. */
static bool waits_for_client_only(const struct wsd_conn *c, bool handler_deadline)
{
    return c->state == ST_OPEN && !c->tls && !c->loop->foreign && !handler_deadline &&
           c->out.len == 0 && !c->input_paused && wsd_live.in_msgs > 0 &&
           c->last_read < BLOCKING_READ_MAX; /* (open: no close deadline yet) */
}

static void run(struct wsd_conn *c, uint8_t *in)
{
    while (c->state != ST_DONE) {
        if (c->yield_when_sent && c->out.len == 0) {
            c->yield_when_sent = false;
            (void)wsd_sys_sched_idle();
        }
        if (c->state == ST_FINISHING && c->out.len == 0 && close_now(c, in)) {
            c->state = ST_DONE;
            break;
        }
        if (c->state == ST_FINISHING && c->out.len == 0) {
            if (c->tls)
                wsd_tls_shutdown(c->tls); /* close_notify after our last frame */
            (void)shutdown(c->fd, SHUT_WR);
            c->state = ST_DRAIN;
        }
        if (c->state != ST_OPEN && !c->end_told) {
            c->end_told = true;
            if (c->handler->on_end)
                c->handler->on_end(c, c->userdata);
        }
        int timeout = c->handler->on_loop ? c->handler->on_loop(c, c->userdata) : -1;
        bool handler_deadline = timeout >= 0;
        if (!run_deadlines(c, &timeout))
            break;
        if (waits_for_client_only(c, handler_deadline) && wsd_wake_arm(c->fd, c->hb_wake_ms)) {
            wsd_conn_io_read(c, in, true);
            continue;
        }
        /* A SIGTERM caught during the recv() wait (or before this epoll wait) is taken here:
         * the signalfd will not show it. */
        if (wsd_wake_pause()) {
            handle_signal(c);
            continue;
        }
        wsd_conn_io_update_epoll(c);
        /* wolfSSL may hold records it read but not yet handed out: epoll cannot see those. */
        bool pending = c->tls && (c->ep_events & EPOLLIN) && wsd_tls_has_pending(c->tls);
        struct epoll_event evs[8];
        int n = epoll_wait(c->ep, evs, 8, pending ? 0 : timeout);
        if (n == 0 && pending)
            wsd_conn_io_read(c, in, false);
        for (int i = 0; i < n && c->state != ST_DONE; i++) {
            switch (evs[i].data.u32) {
            case EV_SOCKET:
                if (evs[i].events & EPOLLOUT)
                    wsd_conn_io_writable(c);
                if (c->input_paused && c->state == ST_OPEN &&
                    (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                    wsd_conn_io_abort(c); /* gone while its handler could take no input */
                else if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                    wsd_conn_io_read(c, in, false);
                break;
            case EV_SIGNAL:
                handle_signal(c);
                break;
            default:
                c->handler->on_fd(c, evs[i].data.u32 - EV_HANDLER, evs[i].events, c->userdata);
                break;
            }
        }
    }
}

/* During the TLS front a termination naming this connection (or a plain SIGTERM) ends it;
 * one meant for an earlier connection, or for idle workers only, is dropped. */
static bool front_on_signal(void *userdata)
{
    struct wsd_conn *c = userdata;
    uint16_t code;
    const char *reason;
    char buf[WSD_KILL_REASON_MAX + 1];
    return read_termination(c, &code, &reason, buf);
}

/* wss://: TLS handshake and request through TLS. Returns 0 (c->tls set, the request in the
 * payload), -EPROTO when the connection ended there (logged, reported in c->res.refused),
 * or -errno. */
static int run_tls_front(struct wsd_conn *c, const struct wsd_conn_params *p, uint32_t *request,
                         uint32_t *extra)
{
    struct wsd_tls_accept a = {
        .ctx = p->tls,
        .fd = c->fd,
        .sig_fd = p->ignore_term ? -1 : p->sig_fd,
        .deadline_ms = p->handoff->accepted_ns / 1000000 + p->cfg->handshake_timeout_ms,
        .max_header = p->cfg->max_header_bytes,
        .payload = p->payload,
        .cap = p->payload_cap,
        .peer = c->peer,
        .on_signal = front_on_signal,
        .userdata = c,
    };
    if (!p->tls)
        return -EINVAL;
    int refused;
    int r = wsd_tls_accept_run(&a, &c->tls, request, extra, &refused);
    c->res.refused = refused;
    if (r == -ENOMEM)
        return r;
    return r < 0 ? -EPROTO : 0;
}

int wsd_conn_serve(const struct wsd_conn_params *p, struct wsd_conn_result *ret)
{
    static uint8_t in[READ_SIZE];
    *ret = (struct wsd_conn_result){.close_code = WSD_CLOSE_ABNORMAL,
                                    .refused = WSD_TLS_REFUSED_NONE};
    struct wsd_conn c = {
        .cfg = p->cfg,
        .fd = p->fd,
        .sig_fd = p->sig_fd,
        .ep = -1,
        .handler = p->handler,
        .on_verdict = p->on_verdict,
        .userdata = p->userdata,
        .last = p->last,
        .id = p->handoff->conn_id,
        .start_ms = wsd_now_ms(),
        .res = {.close_code = WSD_CLOSE_ABNORMAL, .refused = WSD_TLS_REFUSED_NONE},
        .out_pause = p->cfg->max_message * 2 > OUT_PAUSE_MIN ? p->cfg->max_message * 2
                                                             : OUT_PAUSE_MIN,
    };
    wsd_addr_format(&p->handoff->peer, c.peer);
    /* Scrub what a previous connection of this worker left (WSD_WORKER_REUSE). */
    wsd_live = (struct wsd_conn_live){
        .magic = WSD_LIVE_MAGIC,
        .conn_id = c.id,
        .state = WSD_LIVE_OPEN,
        .last_rx_ms = c.start_ms,
        .loop_ms = c.start_ms,
    };
    c.next_ping_ms = c.start_ms + p->cfg->ping_interval_ms;
    wsd_ws_reader_init(&c.reader, p->cfg->max_message, (uint32_t)p->cfg->max_fragments, true,
                       false);
    /* TCP_NODELAY comes from the listening socket (supervisor.c): frames are written whole. */
    uint32_t request = p->handoff->request_len, extra = p->handoff->extra_len;
    int r = 0;
    if (p->handoff->flags & WSD_HANDOFF_TLS)
        r = run_tls_front(&c, p, &request, &extra);
    if (r == -EPROTO) {
        *ret = c.res; /* refused or left during the TLS front: already logged */
        r = 0;
        goto out;
    }
    if (r == 0)
        r = setup(&c, p);
    if (r == 0)
        r = send_upgrade(&c, p, request);
    if (r == 1) { /* refused by the handler, and logged */
        r = 0;
        goto out;
    }
    if (r < 0) {
        wsd_log_error(r, "setting up conn=%" PRIu64 " peer=%s failed", c.id, c.peer);
        goto out;
    }
    log_open(&c);
    if (p->on_open)
        p->on_open(c.id, c.path, p->userdata);
    if (c.handler->on_open)
        c.handler->on_open(&c, c.userdata);
    if (extra > 0) /* a client may send its first frames with the request */
        wsd_conn_io_input(&c, p->payload + request, extra);
    arm_heartbeat(&c);
    run(&c, in);
    if (!c.end_told && c.handler->on_end)
        c.handler->on_end(&c, c.userdata);
    log_close(&c);
    c.res.in_msgs = wsd_live.in_msgs;
    c.res.in_bytes = wsd_live.in_bytes;
    c.res.out_msgs = wsd_live.out_msgs;
    c.res.out_bytes = wsd_live.out_bytes;
    *ret = c.res;
out:
    wsd_wake_release(c.last);
    wsd_live.state = WSD_LIVE_IDLE;
    wsd_live.conn_id = 0;
    if (c.tls) {
        wsd_tls_shutdown(c.tls); /* every close ends with close_notify (a no-op if sent) */
        c.tls = wsd_tls_free(c.tls);
    }
    /* Out of the kept set before the close: the acceptor may not have closed its copy of the
     * socket yet, and a set keeps watching a socket until every copy is closed. (A last
     * connection's set goes with the worker.) */
    if (c.ep >= 0 && !c.last)
        (void)epoll_ctl(c.ep, EPOLL_CTL_DEL, c.fd, NULL);
    wsd_close(c.fd);
    wsd_buf_done(&c.msg);
    wsd_buf_done(&c.out);
    wsd_buf_done(&c.zout);
    wsd_deflate_done(&c.deflate);
    return r;
}
