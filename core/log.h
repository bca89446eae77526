/* SPDX-License-Identifier: MIT */
/* Logging to stderr, one line per event: "TIME NAME[PID]: LEVEL: message[: strerror]". The
 * error is passed in (0 = none), never read from errno later. */
#ifndef WSD_CORE_LOG_H
#define WSD_CORE_LOG_H

enum wsd_log_level {
    WSD_LOG_ERROR = 0,
    WSD_LOG_WARN,
    WSD_LOG_NOTICE,
    WSD_LOG_INFO,
    WSD_LOG_DEBUG,
};

/* Set the threshold and the process name shown in each line (e.g. "wsd-worker"). */
void wsd_log_setup(enum wsd_log_level level, const char *name);

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
