/* SPDX-License-Identifier: MIT */
/* The client's side of the opening handshake (RFC 6455 4.1): write the upgrade request and
 * check the server's 101 response, including Sec-WebSocket-Accept. No I/O. */
#ifndef WSD_BENCH_UPGRADE_H
#define WSD_BENCH_UPGRADE_H

#include <stddef.h>
#include <stdint.h>

#define WSB_KEY_LEN 24 /* base64 of 16 random bytes (RFC 6455 4.1) */

/* Make a Sec-WebSocket-Key from 16 nonce bytes into ret_key (NUL-terminated). */
void wsb_upgrade_key(const uint8_t nonce[16], char ret_key[WSB_KEY_LEN + 1]);

/* Write a GET upgrade request for host (as "host:port") and path into out. Returns the length,
 * or 0 if it does not fit in cap. */
size_t wsb_upgrade_request(char *out, size_t cap, const char *host, const char *path,
                           const char *key);

/* Check the response in buf[0..len). Returns the length of the response head (the bytes after
 * it are WebSocket frames) when it is a valid 101 for key; 0 when the head is not complete yet
 * (call again with more bytes); -1 when it is invalid, with *ret_why naming the reason (a
 * static string). Extensions and subprotocols are refused: the request offers none. */
int wsb_upgrade_response_check(const char *buf, size_t len, const char *key, const char **ret_why);

#endif
