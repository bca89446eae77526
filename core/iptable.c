/* SPDX-License-Identifier: MIT */
/* Chained hash of IPs over a fixed entry array: no allocation after init, so a flood of
 * distinct addresses fills it (and is refused) instead of growing memory. */
#include "core/iptable.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/sys.h"

#define NONE UINT32_MAX

struct wsd_ip wsd_ip_from_sockaddr(const struct sockaddr_storage *ss)
{
    struct wsd_ip ip = {0};
    if (ss->ss_family == AF_INET6) {
        memcpy(ip.b, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    } else if (ss->ss_family == AF_INET) {
        ip.b[10] = ip.b[11] = 0xff;
        memcpy(ip.b + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    }
    return ip;
}

static bool is_v4_mapped(const struct wsd_ip *ip)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(ip->b, prefix, sizeof(prefix)) == 0;
}

void wsd_ip_format(const struct wsd_ip *ip, char out[46])
{
    if (is_v4_mapped(ip))
        inet_ntop(AF_INET, ip->b + 12, out, 46);
    else
        inet_ntop(AF_INET6, ip->b, out, 46);
}

int wsd_ip_parse(const char *s, struct wsd_ip *ret)
{
    struct wsd_ip ip = {0};
    if (inet_pton(AF_INET, s, ip.b + 12) == 1) {
        ip.b[10] = ip.b[11] = 0xff;
    } else if (inet_pton(AF_INET6, s, ip.b) != 1) {
        return -EINVAL;
    }
    *ret = ip;
    return 0;
}

bool wsd_ip_equal(const struct wsd_ip *a, const struct wsd_ip *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

static uint32_t hash_ip(const struct wsd_ip *ip, uint32_t mask)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ ip->b[i]) * 1099511628211ull;
    return (uint32_t)(h ^ (h >> 32)) & mask;
}

int wsd_iptable_init(struct wsd_iptable *t, uint32_t cap)
{
    uint32_t nb = 64;
    while (nb < cap)
        nb *= 2;
    *t = (struct wsd_iptable){.nbuckets = nb, .cap = cap, .free_head = 0};
    /* The supervisor's table is megabytes, all touched below: kept out of every forked worker. */
    t->buckets = wsd_sys_alloc_unforked(nb * sizeof(*t->buckets));
    t->entries = wsd_sys_alloc_unforked(cap * sizeof(*t->entries));
    if (!t->buckets || !t->entries) {
        wsd_iptable_done(t);
        return -ENOMEM;
    }
    memset(t->buckets, 0xff, nb * sizeof(*t->buckets));
    for (uint32_t i = 0; i < cap; i++)
        t->entries[i].next = i + 1 < cap ? i + 1 : NONE;
    return 0;
}

void wsd_iptable_done(struct wsd_iptable *t)
{
    wsd_sys_free_unforked(t->buckets, t->nbuckets * sizeof(*t->buckets));
    wsd_sys_free_unforked(t->entries, t->cap * sizeof(*t->entries));
    *t = (struct wsd_iptable){0};
}

struct wsd_ip_entry *wsd_iptable_get(struct wsd_iptable *t, const struct wsd_ip *ip)
{
    for (uint32_t i = t->buckets[hash_ip(ip, t->nbuckets - 1)]; i != NONE; i = t->entries[i].next)
        if (wsd_ip_equal(&t->entries[i].ip, ip))
            return &t->entries[i];
    return NULL;
}

struct wsd_ip_entry *wsd_iptable_put(struct wsd_iptable *t, const struct wsd_ip *ip)
{
    struct wsd_ip_entry *e = wsd_iptable_get(t, ip);
    if (e || t->free_head == NONE)
        return e;
    uint32_t i = t->free_head, b = hash_ip(ip, t->nbuckets - 1);
    e = &t->entries[i];
    t->free_head = e->next;
    *e = (struct wsd_ip_entry){.ip = *ip, .next = t->buckets[b]};
    t->buckets[b] = i;
    t->used++;
    return e;
}

void wsd_iptable_drop(struct wsd_iptable *t, const struct wsd_ip *ip)
{
    uint32_t *link = &t->buckets[hash_ip(ip, t->nbuckets - 1)];
    while (*link != NONE) {
        struct wsd_ip_entry *e = &t->entries[*link];
        if (wsd_ip_equal(&e->ip, ip)) {
            uint32_t i = *link;
            *link = e->next;
            e->next = t->free_head;
            t->free_head = i;
            t->used--;
            return;
        }
        link = &e->next;
    }
}
