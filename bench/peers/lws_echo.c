/* SPDX-License-Identifier: MIT */
/* A libwebsockets echo server for the bench suite: every message comes back whole, with its
 * opcode, in order. Messages may be split across receive callbacks (large or fragmented), so
 * each session gathers one message, then queues it; the writeable callback sends the queue.
 * usage: lws_echo PORT (binds 127.0.0.1) */
#include <libwebsockets.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct msg {
    struct msg *next;
    size_t len;
    int binary;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then the payload */
};

struct session {
    struct msg *head, *tail; /* whole messages waiting to be written */
    unsigned char *rx;       /* the message being gathered */
    size_t rx_len, rx_cap;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int gather(struct session *s, const void *in, size_t len)
{
    if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 4096;
        unsigned char *p;

        while (cap < s->rx_len + len)
            cap *= 2;
        p = realloc(s->rx, cap);
        if (!p)
            return -1;
        s->rx = p;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct session *s = user;
    struct msg *m;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof(*s));
        break;
    case LWS_CALLBACK_RECEIVE:
        if (gather(s, in, len) < 0)
            return -1;
        if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
            break;
        m = malloc(sizeof(*m) + LWS_PRE + s->rx_len);
        if (!m)
            return -1;
        m->next = NULL;
        m->len = s->rx_len;
        m->binary = lws_frame_is_binary(wsi);
        memcpy(m->buf + LWS_PRE, s->rx, s->rx_len);
        s->rx_len = 0;
        if (s->tail)
            s->tail->next = m;
        else
            s->head = m;
        s->tail = m;
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        m = s->head;
        if (!m)
            break;
        /* lws_write buffers whatever the socket does not take, and calls back when drained. */
        if (lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) <
            (int)m->len)
            return -1;
        s->head = m->next;
        if (!s->head)
            s->tail = NULL;
        free(m);
        if (s->head)
            lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLOSED:
        while ((m = s->head)) {
            s->head = m->next;
            free(m);
        }
        s->tail = NULL;
        free(s->rx);
        s->rx = NULL;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    { "echo", callback, sizeof(struct session), 65536, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx;

    if (argc != 2) {
        fprintf(stderr, "usage: lws_echo PORT\n");
        return 64;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    memset(&info, 0, sizeof(info));
    info.port = atoi(argv[1]);
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.pt_serv_buf_size = 128 * 1024;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws_echo: lws_create_context() failed\n");
        return 1;
    }
    fprintf(stderr, "lws_echo: listening on ws://127.0.0.1:%d/\n", info.port);
    while (!stop && lws_service(ctx, 0) >= 0)
        ;
    lws_context_destroy(ctx);
    return 0;
}
