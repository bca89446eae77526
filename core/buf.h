/* SPDX-License-Identifier: MIT */
/* A growable byte buffer with a consumed prefix: append at the end, consume from the front.
 * Owner: whoever embeds it. Appending may move the data: views into it are invalid afterwards. */
#ifndef WSD_CORE_BUF_H
#define WSD_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct wsd_buf {
    uint8_t *data;
    size_t start; /* consumed bytes at the front */
    size_t len;   /* bytes after start */
    size_t cap;
};

static inline const uint8_t *wsd_buf_head(const struct wsd_buf *b)
{
    return b->data + b->start;
}

/* Append n bytes. Returns 0 or -ENOMEM (the buffer is unchanged then). */
int wsd_buf_append(struct wsd_buf *b, const void *p, size_t n);

/* Append printf-formatted text (no NUL). Returns 0, or -ENOMEM / -EINVAL (the buffer is
 * unchanged then). */
int wsd_buf_printf(struct wsd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int wsd_buf_vprintf(struct wsd_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Drop n bytes from the front (n <= len). */
void wsd_buf_consume(struct wsd_buf *b, size_t n);

/* Empty the buffer; keep its memory unless it grew past keep bytes. */
void wsd_buf_reset(struct wsd_buf *b, size_t keep);

/* Release the memory; the buffer is empty and reusable afterwards. */
void wsd_buf_done(struct wsd_buf *b);

#endif
