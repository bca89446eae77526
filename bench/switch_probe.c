/* SPDX-License-Identifier: MIT */
/* The context-switch probe: one token passed around a ring of tasks over pipes. */
#include "bench/switch_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/sys.h"

struct ring {
    unsigned n;
    int (*pipes)[2]; /* task i reads pipes[i][0] and writes pipes[(i + 1) % n][1] */
    int max_fd;
};

/* One hop: wait for the token, pass it on. Ends at end of file (the ring taken down). */
static void pass_token(int in, int out)
{
    char token;
    while (read(in, &token, 1) == 1)
        if (write(out, &token, 1) != 1)
            break;
}

struct hop_task {
    int in, out;
};

static void *thread_main(void *arg)
{
    struct hop_task *t = arg;
    pass_token(t->in, t->out);
    return NULL;
}

/* A process keeps only its two ends, so that once node 0 has closed every write end it holds,
 * each read in turn sees end of file and the ring comes down. */
static void process_main(const struct ring *r, unsigned i)
{
    int in = fcntl(r->pipes[i][0], F_DUPFD_CLOEXEC, r->max_fd + 1);
    int out = fcntl(r->pipes[(i + 1) % r->n][1], F_DUPFD_CLOEXEC, r->max_fd + 1);
    if (in < 0 || out < 0)
        _exit(1);
    (void)close_range(3, (unsigned)r->max_fd, 0);
    pass_token(in, out);
    _exit(0);
}

int wsb_switch_probe_run(const struct wsb_config *cfg, struct wsb_result *res)
{
    struct ring r = {.n = cfg->conns < 2 ? 2 : cfg->conns};
    pid_t *pids = calloc(r.n, sizeof(*pids));
    pthread_t *threads = calloc(r.n, sizeof(*threads));
    struct hop_task *tasks = calloc(r.n, sizeof(*tasks));
    unsigned started = 1, made = 0;
    int err = 0;

    memset(res, 0, sizeof(*res));
    wsb_hist_init(&res->lat);
    r.pipes = calloc(r.n, sizeof(*r.pipes));
    if (!pids || !threads || !tasks || !r.pipes) {
        err = -ENOMEM;
        goto out;
    }
    for (; made < r.n; made++) {
        if (pipe2(r.pipes[made], O_CLOEXEC) < 0) {
            err = -errno;
            goto out;
        }
        for (int e = 0; e < 2; e++)
            if (r.pipes[made][e] > r.max_fd)
                r.max_fd = r.pipes[made][e];
    }
    for (; started < r.n; started++) {
        if (cfg->threads) {
            tasks[started] = (struct hop_task){r.pipes[started][0], r.pipes[(started + 1) % r.n][1]};
            err = -pthread_create(&threads[started], NULL, thread_main, &tasks[started]);
            if (err < 0)
                break;
            continue;
        }
        pids[started] = fork();
        if (pids[started] == 0)
            process_main(&r, started);
        if (pids[started] < 0) {
            err = -errno;
            break;
        }
    }
    if (err == 0) {
        /* Node 0 is this task: it times each lap of the token, n hops. */
        char token = 't';
        uint64_t t0 = wsd_now_ns(), t_end = t0 + (uint64_t)(cfg->duration_s * 1e9), t = t0;
        while (t < t_end && err == 0) {
            uint64_t lap0 = t;
            if (write(r.pipes[1][1], &token, 1) != 1 || read(r.pipes[0][0], &token, 1) != 1) {
                err = -EPIPE;
                break;
            }
            t = wsd_now_ns();
            res->done += r.n;
            wsb_hist_record(&res->lat, (t - lap0) / r.n);
        }
        res->elapsed_s = (double)(t - t0) / 1e9;
    }
out:
    if (err < 0)
        fprintf(stderr, "wsbench: switch probe failed: %s\n", strerror(-err));
    /* Every write end closed: each task's read (or write) fails in turn, and it ends. */
    for (unsigned i = 0; i < made; i++)
        wsd_close(r.pipes[i][1]);
    for (unsigned i = 1; i < started; i++) {
        if (cfg->threads)
            pthread_join(threads[i], NULL);
        else
            while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR) {
            }
    }
    for (unsigned i = 0; i < made; i++)
        wsd_close(r.pipes[i][0]);
    free(r.pipes);
    free(tasks);
    free(threads);
    free(pids);
    return err;
}
