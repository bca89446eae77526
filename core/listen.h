/* SPDX-License-Identifier: MIT */
/* Listening sockets and socket addresses: parse "host:port" / "[v6]:port", bind, format. */
#ifndef WSD_CORE_LISTEN_H
#define WSD_CORE_LISTEN_H

#include <sys/socket.h>

#define WSD_ADDR_STRLEN 64 /* "[ffff:...:ffff]:65535" and a NUL fit */

/* Parse a numeric address with port. Returns the sockaddr length, or -EINVAL. */
int wsd_listen_parse_addr(const char *s, struct sockaddr_storage *ret);

/* Create a CLOEXEC, non-blocking listening TCP socket bound to addr. Returns the fd or -errno. */
int wsd_listen_open(const char *addr, int backlog);

/* Format addr as "1.2.3.4:80" or "[::1]:80" into out. */
void wsd_addr_format(const struct sockaddr_storage *addr, char out[WSD_ADDR_STRLEN]);

#endif
