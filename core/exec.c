/* SPDX-License-Identifier: MIT */
/* The exec handler: routing and environment before the 101, the program started after it,
 * a relay with backpressure each way while the connection is open, and the program's tree
 * ended (then reaped) once it is not. */
#include "core/exec.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/conn.h"
#include "core/exec_env.h"
#include "core/exec_proc.h"
#include "core/exec_setup.h"
#include "core/handoff.h"
#include "core/log.h"
#include "core/sys.h"
#include "proto/http_upgrade.h"
#include "proto/utf8.h"
#include "proto/ws_codes.h"

#define READ_CHUNK 65536
#define STDERR_LINE_MAX 1024
#define SWEEP_MS 10 /* how often an ending tree is checked */

enum { TAG_STDOUT = 1, TAG_STDIN, TAG_STDERR, TAG_EXIT };


/* The connection this worker serves now. */
static struct {
    struct wsd_conn *c;
    uint64_t conn_id;
    struct wsd_exec_proc proc;
    bool started, ending, killed, closing;
    bool tree_gone; /* ending, and nothing of the program is left */
    bool out_paused;
    bool in_watched; /* stdin is watched for EPOLLOUT: input is waiting for the pipe */
    uint64_t kill_at_ms;
    char script[PATH_MAX]; /* WSD_EXEC_DIR: the program this path runs */
    char *script_argv[2];
    struct wsd_buf line;    /* stdout bytes of a line not finished yet (text mode) */
    struct wsd_buf in;      /* bytes for stdin the pipe has not taken yet */
    struct wsd_buf errline; /* stderr bytes of a line not finished yet */
    struct wsd_exec_env env;
} x;

static uint8_t chunk[READ_CHUNK];

int wsd_exec_worker_init(int isolate_fd)
{
    wsd_exec_setup.spawn.isolate_fd = isolate_fd;
    return wsd_sys_child_subreaper();
}

/* ---- routing and the request */

/* Bytes of the request-target before its query. */
static size_t path_len(const struct wsd_http_view *t)
{
    const char *q = memchr(t->ptr, '?', t->len);
    return q ? (size_t)(q - t->ptr) : t->len;
}

/* WSD_EXEC_DIR: walk the path's segments from the directory (never following a symlink, never
 * a dot file, so never "..") until one names an executable regular file: that is the program,
 * and the rest of the path is PATH_INFO. Returns 0, or 404. */
static int route(const struct wsd_http_view *target, char *script_name, size_t cap,
                 const char **ret_path_info)
{
    size_t plen = path_len(target);
    if (plen == 0 || target->ptr[0] != '/' || plen >= cap)
        return 404;
    size_t dlen = strlen(wsd_exec_setup.cfg->exec_dir);
    if (dlen + plen >= sizeof(x.script))
        return 404;
    memcpy(x.script, wsd_exec_setup.cfg->exec_dir, dlen);
    size_t at = 0; /* in the path: the '/' before the next segment */
    while (at < plen) {
        size_t seg = at + 1, end = seg;
        while (end < plen && target->ptr[end] != '/')
            end++;
        if (end == seg || target->ptr[seg] == '.' || memchr(target->ptr + seg, '\0', end - seg))
            return 404;
        memcpy(x.script + dlen + at, target->ptr + at, end - at);
        x.script[dlen + end] = '\0';
        struct stat st;
        if (lstat(x.script, &st) < 0 || S_ISLNK(st.st_mode))
            return 404;
        if (S_ISREG(st.st_mode)) {
            if (!(st.st_mode & 0111))
                return 404;
            memcpy(script_name, target->ptr, end);
            script_name[end] = '\0';
            *ret_path_info = target->ptr + end; /* up to '?': the caller bounds it */
            return 0;
        }
        if (!S_ISDIR(st.st_mode))
            return 404;
        at = end;
    }
    return 404;
}

static int on_request(struct wsd_conn *c, const struct wsd_conn_request *req, void *userdata)
{
    (void)userdata;
    x.c = c;
    x.conn_id = req->handoff->conn_id;
    const struct wsd_http_view *t = &req->http->target;
    size_t plen = path_len(t);
    char script_name[1024], path_info[1024];
    if (plen >= sizeof(path_info))
        return 404;
    if (wsd_exec_setup.cfg->exec_dir[0]) {
        const char *pi;
        int status = route(t, script_name, sizeof(script_name), &pi);
        if (status != 0)
            return status;
        snprintf(path_info, sizeof(path_info), "%.*s", (int)(t->ptr + plen - pi), pi);
    } else {
        /* websocketd without --dir: the program serves every path */
        snprintf(script_name, sizeof(script_name), "/");
        snprintf(path_info, sizeof(path_info), "%.*s", (int)plen, t->ptr);
    }
    if (wsd_exec_env_build(&x.env, req, script_name, path_info, wsd_exec_setup.passenv) < 0)
        return 431; /* RFC 6585 5: the headers do not fit the program's environment */
    return 0;
}

/* ---- the relay */

static size_t buffer_bytes(void)
{
    return wsd_exec_setup.cfg->exec_buffer;
}

/* One stdout line (or, in binary mode, one read) as a message: text if it is UTF-8, binary
 * if not, since a text message must be (RFC 6455 8.1). */
static void send_output(const uint8_t *data, size_t len, bool line)
{
    if (line && len > 0 && data[len - 1] == '\r')
        len--; /* a CRLF line ends the same as an LF line */
    uint8_t op = WSD_OP_BINARY;
    if (!wsd_exec_setup.cfg->exec_binary && wsd_utf8_validate(WSD_UTF8_ACCEPT, data, len) == WSD_UTF8_ACCEPT)
        op = WSD_OP_TEXT;
    (void)wsd_conn_send(x.c, op, data, len);
}

static void split_lines(const uint8_t *data, size_t n)
{
    const uint8_t *nl;
    while ((nl = memchr(data, '\n', n)) != NULL) {
        size_t part = (size_t)(nl - data);
        if (x.line.len > 0) {
            if (wsd_buf_append(&x.line, data, part) == 0)
                send_output(wsd_buf_head(&x.line), x.line.len, true);
            wsd_buf_reset(&x.line, READ_CHUNK);
        } else {
            send_output(data, part, true);
        }
        data += part + 1;
        n -= part + 1;
    }
    if (n > 0 && wsd_buf_append(&x.line, data, n) < 0)
        wsd_buf_reset(&x.line, READ_CHUNK);
    if (x.line.len >= buffer_bytes()) { /* a line longer than the buffer goes in pieces */
        send_output(wsd_buf_head(&x.line), x.line.len, false);
        wsd_buf_reset(&x.line, READ_CHUNK);
    }
}

static void pause_output(bool pause)
{
    if (pause == x.out_paused || x.proc.out_fd < 0)
        return;
    x.out_paused = pause;
    (void)wsd_conn_watch(x.c, x.proc.out_fd, TAG_STDOUT, pause ? 0 : EPOLLIN);
}

static void close_fd_watched(int *fd)
{
    if (*fd < 0)
        return;
    wsd_conn_unwatch(x.c, *fd);
    *fd = wsd_close(*fd);
}

static void maybe_close_after_exit(void);

static void read_stdout(void)
{
    if (wsd_conn_unsent(x.c) >= buffer_bytes()) {
        pause_output(true); /* the client reads slower than the program writes */
        return;
    }
    ssize_t n = read(x.proc.out_fd, chunk, sizeof(chunk));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (x.line.len > 0)
            send_output(wsd_buf_head(&x.line), x.line.len, false);
        wsd_buf_reset(&x.line, READ_CHUNK);
        close_fd_watched(&x.proc.out_fd);
        maybe_close_after_exit();
        return;
    }
    if (wsd_exec_setup.cfg->exec_binary) {
        send_output(chunk, (size_t)n, false);
    } else {
        wsd_conn_batch(x.c, true); /* the lines of one read leave in one write */
        split_lines(chunk, (size_t)n);
        wsd_conn_batch(x.c, false);
    }
    if (x.proc.exited)
        maybe_close_after_exit();
}

static void log_stderr_line(const uint8_t *data, size_t len)
{
    wsd_log_info("stderr conn=%" PRIu64 " pid=%d: %.*s", x.conn_id, x.proc.pid, (int)len,
                 (const char *)data);
}

/* Returns the bytes read (0 at the end or when nothing is there now). */
static ssize_t read_stderr(void)
{
    ssize_t n = read(x.proc.err_fd, chunk, sizeof(chunk));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        if (x.errline.len > 0)
            log_stderr_line(wsd_buf_head(&x.errline), x.errline.len);
        wsd_buf_reset(&x.errline, STDERR_LINE_MAX);
        close_fd_watched(&x.proc.err_fd);
        return 0;
    }
    for (ssize_t i = 0; i < n; i++) {
        bool nl = chunk[i] == '\n';
        if (!nl)
            (void)wsd_buf_append(&x.errline, &chunk[i], 1);
        if (nl || x.errline.len >= STDERR_LINE_MAX) {
            log_stderr_line(wsd_buf_head(&x.errline), x.errline.len);
            wsd_buf_reset(&x.errline, STDERR_LINE_MAX);
        }
    }
    return n;
}

/* Write what the pipe takes; pause the client while a buffer's worth waits. */
static void flush_stdin(void)
{
    while (x.in.len > 0 && x.proc.in_fd >= 0) {
        ssize_t w = write(x.proc.in_fd, wsd_buf_head(&x.in), x.in.len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            break;
        if (w < 0) { /* EPIPE: the program closed its stdin; what it would not read is dropped */
            wsd_buf_reset(&x.in, 0);
            close_fd_watched(&x.proc.in_fd);
            x.in_watched = false;
            break;
        }
        wsd_buf_consume(&x.in, (size_t)w);
    }
    if (x.in.len == 0)
        wsd_buf_reset(&x.in, READ_CHUNK);
    bool want = x.in.len > 0 && x.proc.in_fd >= 0;
    if (want != x.in_watched) /* the common case, a pipe that took it all, costs no syscall */
        (void)wsd_conn_watch(x.c, x.proc.in_fd, TAG_STDIN, want ? EPOLLOUT : 0);
    x.in_watched = want;
    if (x.in.len >= buffer_bytes())
        wsd_conn_pause_input(x.c, true);
    else if (x.in.len < buffer_bytes() / 2)
        wsd_conn_pause_input(x.c, false);
}

/* Text mode: the message, then a newline. A message that itself holds newlines arrives as
 * several lines: the bytes pass unchanged, as websocketd passes them. */
static void on_message(struct wsd_conn *c, uint8_t opcode, const uint8_t *data, size_t len,
                       void *userdata)
{
    (void)c;
    (void)opcode;
    (void)userdata;
    if (x.proc.in_fd < 0)
        return; /* the program closed its stdin */
    if (wsd_buf_append(&x.in, data, len) < 0 ||
        (!wsd_exec_setup.cfg->exec_binary && wsd_buf_append(&x.in, "\n", 1) < 0)) {
        wsd_conn_close(x.c, WSD_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    /* Written once per loop iteration (on_loop): the messages of one read from the client
     * reach the program in one write, and it wakes once for them. */
    if (x.in.len >= buffer_bytes())
        flush_stdin();
}

/* ---- the program's life */

static void describe_exit(const siginfo_t *si, char *out, size_t cap)
{
    if (si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED)
        snprintf(out, cap, "killed by signal %d (SIG%s)", si->si_status,
                 sigabbrev_np(si->si_status) ? sigabbrev_np(si->si_status) : "?");
    else
        snprintf(out, cap, "exited with status %d", si->si_status);
}

/* The program has exited: once its output is all sent on (the pipe is empty, or closed), the
 * connection closes with 1000 for status 0 and 1011 otherwise. A descendant still holding the
 * pipe open does not keep the connection. */
static void maybe_close_after_exit(void)
{
    if (!x.proc.exited || x.closing)
        return;
    int pending = 0;
    if (x.proc.out_fd >= 0 && (x.out_paused || (ioctl(x.proc.out_fd, FIONREAD, &pending) == 0 &&
                                                pending > 0)))
        return;
    x.closing = true;
    char how[64];
    describe_exit(&x.proc.status, how, sizeof(how));
    bool ok = x.proc.status.si_code == CLD_EXITED && x.proc.status.si_status == 0;
    wsd_log_info("program conn=%" PRIu64 " pid=%d %s", x.conn_id, x.proc.pid, how);
    if (x.line.len > 0)
        send_output(wsd_buf_head(&x.line), x.line.len, false);
    wsd_buf_reset(&x.line, READ_CHUNK);
    wsd_conn_close(x.c, ok ? WSD_CLOSE_NORMAL : WSD_CLOSE_INTERNAL_ERROR, ok ? "" : how);
}

static void on_open(struct wsd_conn *c, void *userdata)
{
    (void)userdata;
    struct wsd_exec_spawn sp = wsd_exec_setup.spawn;
    sp.envp = x.env.vars;
    if (wsd_exec_setup.cfg->exec_dir[0]) {
        x.script_argv[0] = x.script;
        x.script_argv[1] = NULL;
        sp.path = x.script;
        sp.argv = x.script_argv;
    } else {
        sp.path = wsd_exec_setup.path;
        sp.argv = wsd_exec_setup.argv;
    }
    int r = wsd_exec_proc_start(&sp, &x.proc);
    if (r < 0) {
        wsd_log_error(r, "starting '%s' failed for conn=%" PRIu64, sp.path, x.conn_id);
        wsd_conn_close(c, WSD_CLOSE_INTERNAL_ERROR, "could not start the program");
        return;
    }
    x.started = true;
    wsd_log_info("program conn=%" PRIu64 " pid=%d started: %s", x.conn_id, x.proc.pid, sp.path);
    r = wsd_conn_watch(c, x.proc.out_fd, TAG_STDOUT, EPOLLIN);
    if (r == 0)
        r = wsd_conn_watch(c, x.proc.pidfd, TAG_EXIT, EPOLLIN);
    if (r == 0 && x.proc.err_fd >= 0)
        r = wsd_conn_watch(c, x.proc.err_fd, TAG_STDERR, EPOLLIN);
    if (r < 0)
        wsd_conn_close(c, WSD_CLOSE_INTERNAL_ERROR, "could not watch the program");
}

static void on_fd(struct wsd_conn *c, uint32_t tag, uint32_t events, void *userdata)
{
    (void)c;
    (void)events;
    (void)userdata;
    switch (tag) {
    case TAG_STDOUT:
        read_stdout();
        break;
    case TAG_STDIN:
        flush_stdin();
        break;
    case TAG_STDERR:
        (void)read_stderr();
        break;
    case TAG_EXIT:
        wsd_conn_unwatch(x.c, x.proc.pidfd);
        if (wsd_exec_proc_poll_exit(&x.proc))
            maybe_close_after_exit();
        break;
    }
}

/* The connection stopped being open: stdin closed (EOF), output no longer wanted, and the
 * whole tree asked to leave; SIGKILL follows half a WSD_KILL_GRACE_MS later, so the worker
 * is done before the supervisor's own grace for it runs out. */
static void begin_ending(void)
{
    if (x.ending || !x.started)
        return;
    x.ending = true;
    /* What it said before it went (bounded: a descendant may hold the pipe and keep writing). */
    for (int i = 0; i < 16 && x.proc.err_fd >= 0 && read_stderr() > 0; i++)
        ;
    close_fd_watched(&x.proc.in_fd);
    x.in_watched = false;
    close_fd_watched(&x.proc.out_fd);
    close_fd_watched(&x.proc.err_fd);
    wsd_conn_unwatch(x.c, x.proc.pidfd);
    x.kill_at_ms = wsd_now_ms() + wsd_exec_setup.cfg->kill_grace_ms / 2;
    (void)wsd_exec_proc_signal_tree(&x.proc, SIGTERM);
    (void)wsd_exec_proc_signal_tree(&x.proc, SIGCONT); /* a stopped program must act on it */
}

static void on_end(struct wsd_conn *c, void *userdata)
{
    (void)c;
    (void)userdata;
    begin_ending();
}

/* One sweep of an ending tree: TERM to newly adopted orphans, KILL to all after the deadline;
 * once nothing is left, the program is reaped at once (not when the client finally goes).
 * Returns the processes left. */
static int sweep(void)
{
    if (x.tree_gone)
        return 0;
    int sig = SIGTERM;
    if (wsd_now_ms() >= x.kill_at_ms) {
        if (!x.killed)
            wsd_log_notice("program conn=%" PRIu64 " pid=%d still running %" PRIu64
                           " ms after SIGTERM, sending SIGKILL to its tree",
                           x.conn_id, x.proc.pid, wsd_exec_setup.cfg->kill_grace_ms / 2);
        x.killed = true;
        sig = SIGKILL;
    }
    int left = wsd_exec_proc_signal_tree(&x.proc, sig);
    if (left == 0) {
        x.tree_gone = true;
        wsd_exec_proc_reap(&x.proc);
    }
    return left;
}

static int on_loop(struct wsd_conn *c, void *userdata)
{
    (void)c;
    (void)userdata;
    if (x.ending)
        return x.started && sweep() > 0 ? SWEEP_MS : -1;
    if (x.out_paused && wsd_conn_unsent(x.c) < buffer_bytes() / 2)
        pause_output(false);
    if (x.in.len > 0 && !x.in_watched)
        flush_stdin();
    return -1;
}

const struct wsd_conn_handler wsd_exec_handler = {
    .on_request = on_request,
    .on_open = on_open,
    .on_message = on_message,
    .on_fd = on_fd,
    .on_loop = on_loop,
    .on_end = on_end,
};

void wsd_exec_finish(void)
{
    if (x.started) {
        begin_ending();
        /* Bounded: SIGKILL at kill_at_ms, then a little time for the kernel to finish it. */
        uint64_t give_up = x.kill_at_ms + 2000;
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        while (sweep() > 0) {
            if (wsd_now_ms() >= give_up) {
                wsd_log_warn(0, "program conn=%" PRIu64 " pid=%d: its tree outlived SIGKILL, "
                                "leaving it",
                             x.conn_id, x.proc.pid);
                break;
            }
            struct timespec ts = {.tv_nsec = SWEEP_MS * 1000000L};
            (void)sigtimedwait(&chld, NULL, &ts);
        }
        if (!x.closing && wsd_exec_proc_poll_exit(&x.proc)) {
            char how[64];
            describe_exit(&x.proc.status, how, sizeof(how));
            wsd_log_info("program conn=%" PRIu64 " pid=%d %s", x.conn_id, x.proc.pid, how);
        }
    }
    if (x.started)
        wsd_exec_proc_done(&x.proc);
    wsd_buf_done(&x.line);
    wsd_buf_done(&x.in);
    wsd_buf_done(&x.errline);
    x.c = NULL;
    x.started = x.ending = x.killed = x.closing = x.out_paused = x.tree_gone = false;
    x.in_watched = false;
}
