/* SPDX-License-Identifier: MIT */
/* Opening handshake, client side: request text and the checks of RFC 6455 4.1 on the answer. */
#include "bench/upgrade.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proto/handshake.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void wsb_upgrade_key(const uint8_t nonce[16], char ret_key[WSB_KEY_LEN + 1])
{
    size_t o = 0;

    for (size_t i = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)nonce[i] << 16 | (uint32_t)nonce[i + 1] << 8 | nonce[i + 2];
        ret_key[o++] = b64[v >> 18 & 63];
        ret_key[o++] = b64[v >> 12 & 63];
        ret_key[o++] = b64[v >> 6 & 63];
        ret_key[o++] = b64[v & 63];
    }
    ret_key[o++] = b64[nonce[15] >> 2];
    ret_key[o++] = b64[(nonce[15] & 3) << 4];
    ret_key[o++] = '=';
    ret_key[o++] = '=';
    ret_key[o] = '\0';
}

size_t wsb_upgrade_request(char *out, size_t cap, const char *host, const char *path,
                           const char *key)
{
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     path, host, key);

    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* Does the comma-separated header value v (vlen bytes) hold token t, case-insensitively? */
static bool has_token(const char *v, size_t vlen, const char *t)
{
    size_t tl = strlen(t), i = 0;

    while (i < vlen) {
        size_t s, e;

        while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < vlen && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, t, tl) == 0)
            return true;
    }
    return false;
}

int wsb_upgrade_response_check(const char *buf, size_t len, const char *key, const char **ret_why)
{
    char accept[WSD_ACCEPT_LEN + 1];
    bool upgrade = false, connection = false, accepted = false;
    const char *end = memmem(buf, len, "\r\n\r\n", 4), *p, *eol;

    if (!end)
        return 0;
    /* RFC 6455 4.1: "If the status code received from the server is not 101, the client
     * handles the response per HTTP procedures" - for a benchmark, that is a failure. */
    if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0) {
        *ret_why = "status is not 101";
        return -1;
    }
    if (wsd_handshake_accept(key, strlen(key), accept) < 0) {
        *ret_why = "cannot compute Sec-WebSocket-Accept";
        return -1;
    }
    p = (const char *)memchr(buf, '\n', (size_t)(end - buf)) + 1;
    for (; p < end + 2; p = eol + 2) {
        const char *colon, *v;
        size_t vlen;

        eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon) {
            *ret_why = "header line without a colon";
            return -1;
        }
        v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        vlen = (size_t)(eol - v);
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
#define IS(name) ((size_t)(colon - p) == strlen(name) && strncasecmp(p, name, strlen(name)) == 0)
        if (IS("Upgrade"))
            upgrade = has_token(v, vlen, "websocket");
        else if (IS("Connection"))
            connection = has_token(v, vlen, "upgrade");
        else if (IS("Sec-WebSocket-Accept"))
            accepted = vlen == WSD_ACCEPT_LEN && memcmp(v, accept, WSD_ACCEPT_LEN) == 0;
        else if (IS("Sec-WebSocket-Extensions") || IS("Sec-WebSocket-Protocol")) {
            /* RFC 6455 4.1 items 5 and 6: not requested, so the connection MUST fail. */
            *ret_why = "extension or subprotocol that was not requested";
            return -1;
        }
#undef IS
    }
    if (!upgrade) {
        *ret_why = "no 'Upgrade: websocket'";
        return -1;
    }
    if (!connection) {
        *ret_why = "no 'Connection: Upgrade'";
        return -1;
    }
    if (!accepted) {
        *ret_why = "missing or wrong Sec-WebSocket-Accept";
        return -1;
    }
    return (int)(end + 4 - buf);
}
