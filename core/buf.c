/* SPDX-License-Identifier: MIT */
/* Growable byte buffer. Compacts before growing, so a buffer drained from the front reuses its
 * memory instead of creeping upward. */
#include "core/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wsd_buf_append(struct wsd_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (b->start + b->len + n > b->cap) {
        if (b->start > 0) {
            memmove(b->data, b->data + b->start, b->len);
            b->start = 0;
        }
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap : 4096;
            while (cap < b->len + n)
                cap *= 2;
            uint8_t *d = realloc(b->data, cap);
            if (!d)
                return -ENOMEM;
            b->data = d;
            b->cap = cap;
        }
    }
    memcpy(b->data + b->start + b->len, p, n);
    b->len += n;
    return 0;
}

void wsd_buf_consume(struct wsd_buf *b, size_t n)
{
    b->start += n;
    b->len -= n;
    if (b->len == 0)
        b->start = 0;
}

void wsd_buf_reset(struct wsd_buf *b, size_t keep)
{
    b->start = b->len = 0;
    if (b->cap > keep)
        wsd_buf_done(b);
}

void wsd_buf_done(struct wsd_buf *b)
{
    free(b->data);
    *b = (struct wsd_buf){0};
}

int wsd_buf_vprintf(struct wsd_buf *b, const char *fmt, va_list ap)
{
    char line[512];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    int r = n < 0 ? -EINVAL : 0;
    if (r == 0 && (size_t)n < sizeof(line)) {
        r = wsd_buf_append(b, line, (size_t)n);
    } else if (r == 0) { /* longer than the stack line: format it once more, at its size */
        char *big = malloc((size_t)n + 1);
        r = big ? 0 : -ENOMEM;
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            r = wsd_buf_append(b, big, (size_t)n);
            free(big);
        }
    }
    va_end(again);
    return r;
}

int wsd_buf_printf(struct wsd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = wsd_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}
