/* SPDX-License-Identifier: MIT */
/* stderr logging: the whole line is formatted first and written with one write(), so lines from
 * the supervisor, the acceptor and every worker never interleave. */
#include "core/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048
#define LINE_RESERVE 64 /* room kept for the strerror suffix and the closing of a JSON line */

static enum wsd_log_level log_threshold = WSD_LOG_INFO;
static enum wsd_log_format log_format = WSD_LOG_TEXT;
static const char *log_name = "wsd";

static const char *const level_names[] = {
    [WSD_LOG_ERROR] = "error", [WSD_LOG_WARN] = "warn", [WSD_LOG_NOTICE] = "notice",
    [WSD_LOG_INFO] = "info",   [WSD_LOG_DEBUG] = "debug",
};

/* A line under construction; appends stop quietly at the reserve. */
struct line {
    char buf[LINE_MAX_BYTES];
    size_t n;
};

static void put(struct line *l, const char *s, size_t len)
{
    size_t room = sizeof(l->buf) - LINE_RESERVE - l->n;
    if (l->n > sizeof(l->buf) - LINE_RESERVE)
        room = 0;
    if (len > room)
        len = room;
    memcpy(l->buf + l->n, s, len);
    l->n += len;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct line *l, const char *fmt, ...)
{
    char tmp[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (m > 0)
        put(l, tmp, (size_t)m < sizeof(tmp) ? (size_t)m : sizeof(tmp) - 1);
}

/* s as the inside of a JSON string (RFC 8259 7); also the quoted text form. */
static void put_escaped(struct line *l, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(l, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            putf(l, "\\u%04x", c);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
}

static bool needs_quotes(const char *s)
{
    if (!*s)
        return true;
    for (; *s; s++)
        if (*s == ' ' || *s == '"' || *s == '\\' || (unsigned char)*s < 0x20 ||
            *s == 0x7f)
            return true;
    return false;
}

static void put_prefix(struct line *l, enum wsd_log_level level)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    if (log_format == WSD_LOG_JSON)
        putf(l, "{\"ts\":\"%s.%03dZ\",\"level\":\"%s\",\"proc\":\"%s\",\"proc_pid\":%d,", ts,
             (int)(tv.tv_usec / 1000), level_names[level], log_name, (int)getpid());
    else
        putf(l, "%s.%03dZ %s[%d]: %s: ", ts, (int)(tv.tv_usec / 1000), log_name, (int)getpid(),
             level_names[level]);
}

static void finish(struct line *l)
{
    if (log_format == WSD_LOG_JSON) {
        memcpy(l->buf + l->n, "}", 1);
        l->n++;
    }
    l->buf[l->n++] = '\n';
    (void)!write(STDERR_FILENO, l->buf, l->n);
}

void wsd_log_setup(enum wsd_log_level level, const char *name)
{
    log_threshold = level;
    log_name = name;
}

void wsd_log_set_format(enum wsd_log_format format)
{
    log_format = format;
}

bool wsd_log_enabled(enum wsd_log_level level)
{
    return level <= log_threshold;
}

const char *wsd_log_level_name(enum wsd_log_level level)
{
    return level_names[level];
}

void wsd_log(enum wsd_log_level level, int err, const char *fmt, ...)
{
    if (level > log_threshold)
        return;
    char msg[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m < 0)
        msg[0] = '\0';
    struct line l = {.n = 0};
    put_prefix(&l, level);
    if (log_format == WSD_LOG_JSON) {
        puts_(&l, "\"msg\":\"");
        put_escaped(&l, msg);
        if (err != 0) {
            puts_(&l, ": ");
            put_escaped(&l, strerror(err < 0 ? -err : err));
        }
        puts_(&l, "\"");
    } else {
        puts_(&l, msg);
        if (err != 0)
            putf(&l, ": %s", strerror(err < 0 ? -err : err));
    }
    finish(&l);
}

void wsd_log_event(enum wsd_log_level level, const char *event, const struct wsd_log_field *f,
                   size_t n)
{
    if (level > log_threshold)
        return;
    struct line l = {.n = 0};
    put_prefix(&l, level);
    bool json = log_format == WSD_LOG_JSON;
    if (json)
        putf(&l, "\"event\":\"%s\"", event);
    else
        puts_(&l, event);
    for (size_t i = 0; i < n; i++) {
        const char *s = f[i].str ? f[i].str : "";
        putf(&l, json ? ",\"%s\":" : " %s=", f[i].key);
        if (f[i].is_num) {
            putf(&l, "%" PRIu64, f[i].num);
        } else if (json || needs_quotes(s)) {
            puts_(&l, "\"");
            put_escaped(&l, s);
            puts_(&l, "\"");
        } else {
            puts_(&l, s);
        }
    }
    finish(&l);
}
