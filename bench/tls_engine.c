/* SPDX-License-Identifier: MIT */
/* wsbench's wss:// engine: an epoll loop where each connection is a small state machine
 * (connect, TLS handshake with wolfSSL, upgrade, echo or close). The same loop runs plain
 * ws:// with --epoll, so that wss:// and ws:// are measured by the same client code and their
 * ratio is the server's TLS cost, not a difference between two clients. conn and echo only. */
#include "bench/tls_engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "core/sys.h"

#define MASK_KEY 0x5a3c96e1u

enum state { C_CONNECT, C_TLS, C_UPGRADE, C_OPEN, C_CLOSING };

struct tconn {
    int fd;
    WOLFSSL *ssl;
    enum state st;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_cap;
    size_t tls_pending; /* bytes offered to a wolfSSL_write that said WANT_WRITE */
    uint64_t t0;        /* connect (conn) */
    uint64_t *sent_ns;  /* echo: send time of each message in flight, a ring */
    unsigned head, inflight;
};

struct tengine {
    const struct wsb_config *cfg;
    struct wsb_result *res;
    WOLFSSL_CTX *ctx;
    int ep;
    struct tconn *c;
    uint8_t *msg; /* one masked frame, header included */
    size_t msg_len;
    uint64_t window_start, window_end;
    bool measuring;
};

static size_t frame_header(uint8_t *h, uint8_t opcode, size_t len)
{
    size_t n = 0;
    uint32_t key = MASK_KEY;
    h[n++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        h[n++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        h[n++] = 0x80 | 126;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[n++] = (uint8_t)(len >> (8 * i));
    }
    memcpy(h + n, &key, 4);
    return n + 4;
}

static void mask(uint8_t *p, size_t len)
{
    uint32_t key = MASK_KEY;
    const uint8_t *k = (const uint8_t *)&key;
    for (size_t i = 0; i < len; i++)
        p[i] ^= k[i & 3];
}

static int append(uint8_t **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n)
            c *= 2;
        uint8_t *p = realloc(*buf, c);
        if (!p)
            return -ENOMEM;
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    return 0;
}

static void watch(struct tengine *e, struct tconn *c, uint32_t ev)
{
    struct epoll_event x = {.events = ev, .data.ptr = c};
    if (epoll_ctl(e->ep, EPOLL_CTL_MOD, c->fd, &x) < 0)
        (void)epoll_ctl(e->ep, EPOLL_CTL_ADD, c->fd, &x);
}

static int conn_open(struct tengine *e, struct tconn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->in_len = c->out_len = c->tls_pending = 0;
    c->head = c->inflight = 0;
    c->t0 = wsd_now_ns();
    c->st = C_CONNECT;
    if (connect(c->fd, (const struct sockaddr *)&e->cfg->addr, sizeof(e->cfg->addr)) < 0 &&
        errno != EINPROGRESS)
        return -errno;
    if (e->ctx) {
        c->ssl = wolfSSL_new(e->ctx);
        if (!c->ssl || wolfSSL_set_fd(c->ssl, c->fd) != WOLFSSL_SUCCESS)
            return -ENOMEM;
        (void)wolfSSL_UseALPN(c->ssl, (char *)"http/1.1", 8, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
        /* What browsers send first: an X25519 key share (wolfSSL's default would be P-256,
         * several times dearer for the server here). */
        (void)wolfSSL_UseKeyShare(c->ssl, WOLFSSL_ECC_X25519);
    }
    watch(e, c, EPOLLOUT);
    return 0;
}

static void conn_close(struct tengine *e, struct tconn *c)
{
    (void)e;
    if (c->ssl) {
        wolfSSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* A failed connection counts as an error and is replaced (conn) or stays down (echo). */
static void conn_fail(struct tengine *e, struct tconn *c)
{
    e->res->errors++;
    conn_close(e, c);
    if (e->cfg->mode == WSB_MODE_CONN && wsd_now_ns() < e->window_end && conn_open(e, c) < 0)
        conn_close(e, c);
}

/* Write what is queued. Returns 0, or -1 after conn_fail. */
static int flush(struct tengine *e, struct tconn *c)
{
    size_t off = 0;
    while (off < c->out_len) {
        ssize_t w;
        if (c->ssl) {
            size_t n = c->out_len - off > 16384 ? 16384 : c->out_len - off;
            if (n < c->tls_pending)
                n = c->tls_pending; /* wolfSSL: offer at least the bytes of the retried call */
            int r = wolfSSL_write(c->ssl, c->out + off, (int)n);
            if (r <= 0) {
                int err = wolfSSL_get_error(c->ssl, r);
                if (err != WOLFSSL_ERROR_WANT_WRITE && err != WOLFSSL_ERROR_WANT_READ)
                    goto fail;
                c->tls_pending = n;
                break;
            }
            c->tls_pending = 0;
            w = r;
        } else {
            w = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EAGAIN)
                break;
            if (w < 0)
                goto fail;
        }
        off += (size_t)w;
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
    watch(e, c, EPOLLIN | (c->out_len ? EPOLLOUT : 0));
    return 0;
fail:
    conn_fail(e, c);
    return -1;
}

static void queue_upgrade(struct tengine *e, struct tconn *c)
{
    char req[700];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     e->cfg->path, e->cfg->host);
    (void)append(&c->out, &c->out_len, &c->out_cap, req, (size_t)n);
    c->st = C_UPGRADE;
}

static void send_message(struct tengine *e, struct tconn *c)
{
    (void)append(&c->out, &c->out_len, &c->out_cap, e->msg, e->msg_len);
    c->sent_ns[(c->head + c->inflight) % e->cfg->pipeline] = wsd_now_ns();
    c->inflight++;
}

static void queue_close(struct tengine *e, struct tconn *c)
{
    uint8_t f[16];
    size_t n = frame_header(f, 0x8, 2);
    f[n] = 0x03; /* 1000 */
    f[n + 1] = 0xe8;
    mask(f + n, 2);
    (void)append(&c->out, &c->out_len, &c->out_cap, f, n + 2);
    (void)e;
    c->st = C_CLOSING;
}

/* The 101 arrived: count the handshake and go on with the mode. */
static void on_upgraded(struct tengine *e, struct tconn *c)
{
    uint64_t t = wsd_now_ns();
    e->res->opened++;
    if (e->cfg->mode == WSB_MODE_CONN) {
        if (e->measuring)
            wsb_hist_record(&e->res->lat, t - c->t0);
        queue_close(e, c);
        return;
    }
    c->st = C_OPEN;
    for (unsigned i = 0; i < e->cfg->pipeline; i++)
        send_message(e, c);
}

/* One whole frame from the server at c->in, or 0 if more bytes are needed. */
static size_t frame_size(const uint8_t *p, size_t len, uint8_t *opcode, size_t *payload)
{
    if (len < 2)
        return 0;
    size_t h = 2, n = p[1] & 0x7f;
    if (n == 126) {
        if (len < 4)
            return 0;
        n = (size_t)p[2] << 8 | p[3];
        h = 4;
    } else if (n == 127) {
        if (len < 10)
            return 0;
        n = 0;
        for (int i = 2; i < 10; i++)
            n = n << 8 | p[i];
        h = 10;
    }
    if (len < h + n)
        return 0;
    *opcode = p[0] & 0x0f;
    *payload = n;
    return h + n;
}

/* Handle the whole frames read so far. Returns true if the connection ended here (and, in
 * conn mode, a new one was started in its place). */
static bool on_frames(struct tengine *e, struct tconn *c)
{
    size_t off = 0, fl, plen;
    uint8_t op;
    while ((fl = frame_size(c->in + off, c->in_len - off, &op, &plen)) > 0) {
        off += fl;
        if (op == 0x8) { /* close */
            if (c->st == C_OPEN)
                e->res->server_closes++;
            if (c->st == C_CLOSING && e->measuring)
                e->res->done++;
            conn_close(e, c);
            if (e->cfg->mode == WSB_MODE_CONN && wsd_now_ns() < e->window_end && conn_open(e, c) < 0)
                conn_fail(e, c);
            return true;
        }
        if (c->st != C_OPEN || (op != 0x1 && op != 0x2))
            continue;
        if (plen != e->cfg->size) {
            fprintf(stderr, "wsbench: echo of %zu bytes, sent %zu\n", plen, e->cfg->size);
            exit(2);
        }
        uint64_t t = wsd_now_ns();
        if (e->measuring) {
            e->res->done++;
            wsb_hist_record(&e->res->lat, t - c->sent_ns[c->head]);
        }
        c->head = (c->head + 1) % e->cfg->pipeline;
        c->inflight--;
        send_message(e, c);
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return false;
}

/* Read everything available. Returns 0, or -1 if the connection ended (handled). */
static int read_all(struct tengine *e, struct tconn *c)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t n;
        if (c->ssl) {
            int r = wolfSSL_read(c->ssl, buf, sizeof(buf));
            if (r <= 0) {
                int err = wolfSSL_get_error(c->ssl, r);
                if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
                    return 0;
                n = err == WOLFSSL_ERROR_ZERO_RETURN ? 0 : -1;
            } else {
                n = r;
            }
        } else {
            n = recv(c->fd, buf, sizeof(buf), 0);
            if (n < 0 && errno == EAGAIN)
                return 0;
        }
        if (n <= 0) {
            conn_fail(e, c);
            return -1;
        }
        (void)append(&c->in, &c->in_len, &c->in_cap, buf, (size_t)n);
        if (c->st == C_UPGRADE) {
            uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
            if (!end)
                continue;
            if (c->in_len < 12 || memcmp(c->in, "HTTP/1.1 101", 12) != 0) {
                conn_fail(e, c);
                return -1;
            }
            size_t hl = (size_t)(end + 4 - c->in);
            memmove(c->in, c->in + hl, c->in_len - hl);
            c->in_len -= hl;
            on_upgraded(e, c);
        }
        if (on_frames(e, c))
            return -1;
    }
}

static void drive(struct tengine *e, struct tconn *c, uint32_t events)
{
    if (c->st == C_CONNECT) {
        int err = 0;
        socklen_t sl = sizeof(err);
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err) {
            conn_fail(e, c);
            return;
        }
        if (c->ssl)
            c->st = C_TLS;
        else
            queue_upgrade(e, c);
    }
    if (c->st == C_TLS) {
        int r = wolfSSL_connect(c->ssl);
        if (r != WOLFSSL_SUCCESS) {
            int err = wolfSSL_get_error(c->ssl, r);
            if (err == WOLFSSL_ERROR_WANT_READ)
                watch(e, c, EPOLLIN);
            else if (err == WOLFSSL_ERROR_WANT_WRITE)
                watch(e, c, EPOLLOUT);
            else
                conn_fail(e, c);
            return;
        }
        queue_upgrade(e, c);
    }
    if (read_all(e, c) == 0)
        (void)flush(e, c);
}

static int setup(struct tengine *e)
{
    const struct wsb_config *cfg = e->cfg;
    if (cfg->tls) {
        wolfSSL_Init();
        WOLFSSL_METHOD *m = cfg->tls_version == 13   ? wolfTLSv1_3_client_method()
                            : cfg->tls_version == 12 ? wolfTLSv1_2_client_method()
                                                     : wolfSSLv23_client_method();
        e->ctx = wolfSSL_CTX_new(m);
        if (!e->ctx)
            return -ENOMEM;
        /* A benchmark of the server's cost: the client trusts whatever it is given. */
        wolfSSL_CTX_set_verify(e->ctx, WOLFSSL_VERIFY_NONE, NULL);
        (void)wolfSSL_CTX_UseSupportedCurve(e->ctx, WOLFSSL_ECC_X25519);
        (void)wolfSSL_CTX_UseSupportedCurve(e->ctx, WOLFSSL_ECC_SECP256R1);
    }
    e->ep = epoll_create1(EPOLL_CLOEXEC);
    e->c = calloc(cfg->conns, sizeof(*e->c));
    uint8_t h[16];
    size_t hl = frame_header(h, cfg->binary ? 0x2 : 0x1, cfg->size);
    e->msg_len = hl + cfg->size;
    e->msg = malloc(e->msg_len);
    if (e->ep < 0 || !e->c || !e->msg)
        return -ENOMEM;
    memcpy(e->msg, h, hl);
    memset(e->msg + hl, 'x', cfg->size);
    mask(e->msg + hl, cfg->size);
    for (unsigned i = 0; i < cfg->conns; i++) {
        e->c[i].fd = -1;
        e->c[i].sent_ns = calloc(cfg->pipeline ? cfg->pipeline : 1, sizeof(uint64_t));
        if (!e->c[i].sent_ns)
            return -ENOMEM;
    }
    return 0;
}

static void loop_until(struct tengine *e, uint64_t deadline, bool (*done)(struct tengine *))
{
    struct epoll_event ev[256];
    while (wsd_now_ns() < deadline && !(done && done(e))) {
        int n = epoll_wait(e->ep, ev, 256, 10);
        for (int i = 0; i < n; i++) {
            struct tconn *c = ev[i].data.ptr;
            if (c->fd >= 0)
                drive(e, c, ev[i].events);
        }
    }
}

static bool all_open(struct tengine *e)
{
    return e->res->opened + e->res->errors >= e->cfg->conns;
}

int wsb_tls_engine_run(const struct wsb_config *cfg, struct wsb_result *res)
{
    struct tengine e = {.cfg = cfg, .res = res, .ep = -1};
    wsb_hist_init(&res->lat);
    int r = setup(&e);
    if (r < 0) {
        fprintf(stderr, "wsbench: setting up the TLS engine failed: %s\n", strerror(-r));
        return r;
    }
    uint64_t start = wsd_now_ns();
    e.window_end = UINT64_MAX;
    for (unsigned i = 0; i < cfg->conns; i++)
        if (conn_open(&e, &e.c[i]) < 0)
            conn_fail(&e, &e.c[i]);
    if (cfg->mode == WSB_MODE_ECHO) {
        /* Open every connection first; measure only the steady state. */
        loop_until(&e, start + (uint64_t)(cfg->timeout_s * 1e9), all_open);
        res->open_s = (double)(wsd_now_ns() - start) / 1e9;
    }
    e.window_start = wsd_now_ns();
    e.window_end = e.window_start + (uint64_t)(cfg->duration_s * 1e9);
    e.measuring = true;
    loop_until(&e, e.window_end, NULL);
    e.measuring = false;
    res->elapsed_s = (double)(wsd_now_ns() - e.window_start) / 1e9;
    for (unsigned i = 0; i < cfg->conns; i++) {
        conn_close(&e, &e.c[i]);
        free(e.c[i].in);
        free(e.c[i].out);
        free(e.c[i].sent_ns);
    }
    free(e.c);
    free(e.msg);
    close(e.ep);
    if (e.ctx)
        wolfSSL_CTX_free(e.ctx);
    return 0;
}
