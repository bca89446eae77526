/* SPDX-License-Identifier: MIT */
/* Shared by the parser tests: the ways one input is cut into pieces (whole, byte by byte, every
 * 2-way split), and a buffer that ends right before a PROT_NONE page so any read past the input
 * crashes. Header-only because the Makefile links each test_*.c alone with libwsd.a. */
#ifndef WSD_TESTS_UNIT_FEED_H
#define WSD_TESTS_UNIT_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Mode 0 feeds the input whole, mode 1 byte by byte, mode 1 + k splits it at k (0 < k < len). */
static inline size_t feed_mode_count(size_t len)
{
    return len < 2 ? 2 : len + 1;
}

static inline const char *feed_mode_name(size_t mode)
{
    return mode == 0 ? "whole" : mode == 1 ? "byte by byte" : "2-way split";
}

/* The end of the piece that starts at pos. A 0-byte input is one 0-byte piece. */
static inline size_t feed_piece_end(size_t len, size_t mode, size_t pos)
{
    if (mode == 0)
        return len;
    if (mode == 1)
        return pos < len ? pos + 1 : len;
    return pos < mode - 1 ? mode - 1 : len;
}

/* A writable area of cap bytes whose end touches a PROT_NONE page. */
struct feed_guard {
    uint8_t *map;
    size_t map_len;
    size_t cap;
};

static inline void feed_guard_init(struct feed_guard *g, size_t cap)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data = (cap + page - 1) / page * page;

    if (data == 0)
        data = page;
    g->map_len = data + page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED)
        abort();
    if (mprotect(g->map + data, page, PROT_NONE) != 0)
        abort();
    g->cap = data;
}

/* Copy len (<= cap) bytes so that they end right at the PROT_NONE page; returns the copy. */
static inline uint8_t *feed_guard_put(struct feed_guard *g, const void *src, size_t len)
{
    uint8_t *dst;

    if (len > g->cap)
        abort();
    dst = g->map + g->cap - len;
    if (len > 0)
        memcpy(dst, src, len);
    return dst;
}

static inline void feed_guard_done(struct feed_guard *g)
{
    if (g->map != NULL && g->map != MAP_FAILED)
        (void)munmap(g->map, g->map_len);
    g->map = NULL;
}

#endif
