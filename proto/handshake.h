/* SPDX-License-Identifier: MIT */
/* The server's side of the opening handshake (RFC 6455 4.2.2): Sec-WebSocket-Accept and the
 * response texts. SHA-1 and Base64 come from wolfCrypt, which wsd links for TLS anyway; this is
 * the one proto/ file with a dependency beyond libc. */
#ifndef WSD_PROTO_HANDSHAKE_H
#define WSD_PROTO_HANDSHAKE_H

#include <stddef.h>

#define WSD_ACCEPT_LEN 28 /* base64 of a 20-byte SHA-1 */

/* Compute Sec-WebSocket-Accept for key (key_len bytes, as received) into ret_accept
 * (NUL-terminated). Returns 0, or -EINVAL if wolfCrypt fails. */
int wsd_handshake_accept(const char *key, size_t key_len, char ret_accept[WSD_ACCEPT_LEN + 1]);

/* Write the 101 response into out (cap bytes, NUL-terminated). extensions and protocol may be
 * NULL (header omitted). Returns the length without the NUL, or 0 if it does not fit (cap must
 * exceed the length) or a value holds CR or LF (it would inject headers). */
size_t wsd_handshake_response_101(char *out, size_t cap, const char *accept,
                                  const char *extensions, const char *protocol);

/* Write an error response for status (400, 403, 404, 405, 408, 426, 429, 431, 503) with
 * "Connection: close", a short text body, and the headers the status needs: 426 carries
 * "Upgrade: websocket" and "Sec-WebSocket-Version: 13" (and "Connection: close, Upgrade", as
 * RFC 9110 7.8 asks of a sender of Upgrade), 405 "Allow: GET", 503 and 429
 * "Retry-After: retry_after_s" (when > 0). Returns the length (the text is NUL-terminated), or
 * 0 if it does not fit or status is not one of these. */
size_t wsd_handshake_response_error(char *out, size_t cap, int status, unsigned retry_after_s);

#endif
