/* SPDX-License-Identifier: MIT */
/* The server's opening handshake texts (RFC 6455 4.2.2): Sec-WebSocket-Accept through wolfCrypt's
 * SHA-1 and Base64, the 101 response, and the error responses that refuse an upgrade. */
#include "proto/handshake.h"

/* wolfSSL: options.h must come before any other wolfSSL header, or the struct layouts the
 * library was built with may not match ours. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/sha.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/ws_codes.h"

/* RFC 6455 1.3 */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int wsd_handshake_accept(const char *key, size_t key_len, char ret_accept[WSD_ACCEPT_LEN + 1])
{
    byte digest[WC_SHA_DIGEST_SIZE];
    byte out[WSD_ACCEPT_LEN + 1];
    word32 out_len = sizeof(out);
    wc_Sha sha;
    int r;

    if (key_len > UINT32_MAX)
        return -EINVAL;
    r = wc_InitSha(&sha);
    if (r != 0)
        return -EINVAL;
    /* Hash key and GUID in two updates, so no concatenation buffer is needed. */
    r = wc_ShaUpdate(&sha, (const byte *)key, (word32)key_len);
    if (r == 0)
        r = wc_ShaUpdate(&sha, (const byte *)ws_guid, sizeof(ws_guid) - 1);
    if (r == 0)
        r = wc_ShaFinal(&sha, digest);
    wc_ShaFree(&sha);
    if (r != 0)
        return -EINVAL;
    r = Base64_Encode_NoNl(digest, sizeof(digest), out, &out_len);
    if (r != 0 || out_len != WSD_ACCEPT_LEN)
        return -EINVAL;
    memcpy(ret_accept, out, WSD_ACCEPT_LEN);
    ret_accept[WSD_ACCEPT_LEN] = '\0';
    return 0;
}

/* A header value we put on the wire must not end the header early (response splitting). */
static bool is_safe_value(const char *s)
{
    return s == NULL || strpbrk(s, "\r\n") == NULL;
}

/* snprintf's result as our "length, or 0 if it does not fit". */
static size_t fitted(int n, size_t cap)
{
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t wsd_handshake_response_101(char *out, size_t cap, const char *accept, const char *extensions,
                                  const char *protocol)
{
    int n;

    if (!is_safe_value(accept) || !is_safe_value(extensions) || !is_safe_value(protocol))
        return 0;
    n = snprintf(out, cap,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n"
                 "%s%s%s"
                 "%s%s%s"
                 "\r\n",
                 accept, extensions ? "Sec-WebSocket-Extensions: " : "",
                 extensions ? extensions : "", extensions ? "\r\n" : "",
                 protocol ? "Sec-WebSocket-Protocol: " : "", protocol ? protocol : "",
                 protocol ? "\r\n" : "");
    return fitted(n, cap);
}

/* RFC 9110 15 reason phrases; NULL for a status we never send. */
static const char *reason_phrase(int status)
{
    switch (status) {
    case WSD_HTTP_BAD_REQUEST:
        return "Bad Request";
    case WSD_HTTP_FORBIDDEN:
        return "Forbidden";
    case WSD_HTTP_NOT_FOUND:
        return "Not Found";
    case WSD_HTTP_METHOD_NOT_ALLOWED:
        return "Method Not Allowed";
    case WSD_HTTP_REQUEST_TIMEOUT:
        return "Request Timeout";
    case WSD_HTTP_UPGRADE_REQUIRED:
        return "Upgrade Required";
    case WSD_HTTP_TOO_MANY_REQUESTS:
        return "Too Many Requests";
    case WSD_HTTP_HEADERS_TOO_LARGE:
        return "Request Header Fields Too Large"; /* RFC 6585 5 */
    case WSD_HTTP_SERVICE_UNAVAILABLE:
        return "Service Unavailable";
    default:
        return NULL;
    }
}

/* The headers a status needs beyond the common ones, each line ending in CRLF. */
static void extra_headers(char *out, size_t cap, int status, unsigned retry_after_s)
{
    out[0] = '\0';
    if (status == WSD_HTTP_UPGRADE_REQUIRED) /* RFC 9110 15.5.22, RFC 6455 4.4 */
        (void)snprintf(out, cap, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    else if (status == WSD_HTTP_METHOD_NOT_ALLOWED) /* RFC 9110 15.5.6 */
        (void)snprintf(out, cap, "Allow: GET\r\n");
    else if ((status == WSD_HTTP_SERVICE_UNAVAILABLE || status == WSD_HTTP_TOO_MANY_REQUESTS) &&
             retry_after_s > 0) /* RFC 9110 10.2.3 */
        (void)snprintf(out, cap, "Retry-After: %u\r\n", retry_after_s);
}

size_t wsd_handshake_response_error(char *out, size_t cap, int status, unsigned retry_after_s)
{
    const char *phrase = reason_phrase(status);
    char body[64], extra[80];
    int body_len, n;

    if (phrase == NULL)
        return 0;
    body_len = snprintf(body, sizeof(body), "%d %s\n", status, phrase);
    extra_headers(extra, sizeof(extra), status, retry_after_s);
    /* RFC 9110 7.8: whoever sends Upgrade lists it in Connection too; "close" stays first. */
    n = snprintf(out, cap,
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: text/plain\r\n"
                 "Content-Length: %d\r\n"
                 "Connection: close%s\r\n"
                 "%s"
                 "\r\n"
                 "%s",
                 status, phrase, body_len, status == WSD_HTTP_UPGRADE_REQUIRED ? ", Upgrade" : "",
                 extra, body);
    return fitted(n, cap);
}
