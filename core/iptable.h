/* SPDX-License-Identifier: MIT */
/* A small hash table keyed by client IP (IPv4 stored v4-mapped), with counters the caller
 * interprets: live connections and bans in the acceptor, violations per window in the abuse
 * detector. Entries whose counters are all zero are removed, so it holds only active IPs. */
#ifndef WSD_CORE_IPTABLE_H
#define WSD_CORE_IPTABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct wsd_ip {
    uint8_t b[16];
};

struct wsd_ip_entry {
    struct wsd_ip ip;
    uint64_t count;    /* caller's counter */
    uint64_t since_ms; /* caller's timestamp (e.g. window start) */
    uint64_t until_ms; /* caller's deadline (e.g. ban end) */
    uint32_t next;     /* private: chain */
};

struct wsd_iptable {
    uint32_t *buckets;
    uint32_t nbuckets; /* power of two */
    struct wsd_ip_entry *entries;
    uint32_t cap, used, free_head;
};

/* The IP of a socket address (v4 as ::ffff:a.b.c.d). */
struct wsd_ip wsd_ip_from_sockaddr(const struct sockaddr_storage *ss);

/* Format like inet_ntop (v4-mapped as plain IPv4). out must hold 46 bytes. */
void wsd_ip_format(const struct wsd_ip *ip, char out[46]);

/* Parse a numeric IPv4 or IPv6 address. Returns 0 or -EINVAL. */
int wsd_ip_parse(const char *s, struct wsd_ip *ret);

bool wsd_ip_equal(const struct wsd_ip *a, const struct wsd_ip *b);

/* Room for cap IPs. Returns 0 or -ENOMEM. The table's memory is not inherited by child
 * processes (wsd_sys_alloc_unforked): a child started after init must not use it. */
int wsd_iptable_init(struct wsd_iptable *t, uint32_t cap);
void wsd_iptable_done(struct wsd_iptable *t);

/* The entry for ip, or NULL. Pointers stay valid until the next put or drop. */
struct wsd_ip_entry *wsd_iptable_get(struct wsd_iptable *t, const struct wsd_ip *ip);

/* The entry for ip, created zeroed if absent; NULL when the table is full. */
struct wsd_ip_entry *wsd_iptable_put(struct wsd_iptable *t, const struct wsd_ip *ip);

/* Remove the entry for ip if present. */
void wsd_iptable_drop(struct wsd_iptable *t, const struct wsd_ip *ip);

#endif
