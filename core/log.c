/* SPDX-License-Identifier: MIT */
/* stderr logging: the whole line is formatted first and written with one write(), so lines from
 * the supervisor, the acceptor and every worker never interleave. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum wsd_log_level log_threshold = WSD_LOG_INFO;
static const char *log_name = "wsd";

static const char *const level_names[] = {
    [WSD_LOG_ERROR] = "error", [WSD_LOG_WARN] = "warn", [WSD_LOG_NOTICE] = "notice",
    [WSD_LOG_INFO] = "info",   [WSD_LOG_DEBUG] = "debug",
};

void wsd_log_setup(enum wsd_log_level level, const char *name)
{
    log_threshold = level;
    log_name = name;
}

const char *wsd_log_level_name(enum wsd_log_level level)
{
    return level_names[level];
}

void wsd_log(enum wsd_log_level level, int err, const char *fmt, ...)
{
    if (level > log_threshold)
        return;

    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03dZ %s[%d]: %s: ",
                          (int)(tv.tv_usec / 1000), log_name, (int)getpid(), level_names[level]);

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    n = m < 0 ? n : n + (size_t)m;
    if (n > sizeof(line) - 64)
        n = sizeof(line) - 64;
    if (err != 0)
        n += (size_t)snprintf(line + n, sizeof(line) - n, ": %s", strerror(err < 0 ? -err : err));
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
}
