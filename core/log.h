/* SPDX-License-Identifier: MIT */
/* Logging to stderr, one line per event: "TIME NAME[PID]: LEVEL: message[: strerror]". The
 * error is passed in (0 = none), never read from errno later. */
#ifndef WSD_CORE_LOG_H
#define WSD_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wsd_log_level {
    WSD_LOG_ERROR = 0,
    WSD_LOG_WARN,
    WSD_LOG_NOTICE,
    WSD_LOG_INFO,
    WSD_LOG_DEBUG,
};

enum wsd_log_format {
    WSD_LOG_TEXT = 0, /* TIME NAME[PID]: LEVEL: message */
    WSD_LOG_JSON,     /* {"ts":…,"level":…,"proc":…,"proc_pid":…,"msg":… | "event":…, fields} */
};

/* One field of a structured event: a string (NULL prints as empty) or an unsigned number. */
struct wsd_log_field {
    const char *key;
    const char *str; /* used when is_num is false */
    uint64_t num;
    bool is_num;
};

#define WSD_LOG_STR(k, v) ((struct wsd_log_field){.key = (k), .str = (v)})
#define WSD_LOG_NUM(k, v) ((struct wsd_log_field){.key = (k), .num = (v), .is_num = true})

/* Set the threshold and the process name shown in each line (e.g. "wsd-worker"). */
void wsd_log_setup(enum wsd_log_level level, const char *name);

/* Text or JSON lines (WSD_LOG_FORMAT); set once before the first fork, children inherit it. */
void wsd_log_set_format(enum wsd_log_format format);

/* One structured event (a connection's close, a termination): the same fields either way.
 * Text: "EVENT key=value ...", a value quoted ("…", with JSON's escapes) when it is
 * empty or holds a space, '"', '\\' or a control character. JSON: "event" and each field
 * as a member, numbers as numbers. */
void wsd_log_event(enum wsd_log_level level, const char *event, const struct wsd_log_field *f,
                   size_t n);

/* True if a line at level would be written: skip gathering its fields otherwise. */
bool wsd_log_enabled(enum wsd_log_level level);

/* The name of a level, as WSD_LOG_LEVEL spells it. */
const char *wsd_log_level_name(enum wsd_log_level level);

/* err is a positive or negative errno value, or 0. */
void wsd_log(enum wsd_log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define wsd_log_error(err, ...) wsd_log(WSD_LOG_ERROR, (err), __VA_ARGS__)
#define wsd_log_warn(err, ...) wsd_log(WSD_LOG_WARN, (err), __VA_ARGS__)
#define wsd_log_notice(...) wsd_log(WSD_LOG_NOTICE, 0, __VA_ARGS__)
#define wsd_log_info(...) wsd_log(WSD_LOG_INFO, 0, __VA_ARGS__)
#define wsd_log_debug(...) wsd_log(WSD_LOG_DEBUG, 0, __VA_ARGS__)

#endif
