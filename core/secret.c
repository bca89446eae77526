/* SPDX-License-Identifier: MIT */
/* Hashing, comparing and wiping the admin token. */
#include "core/secret.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <stdlib.h>
#include <string.h>

extern char **environ;

void wsd_secret_hash(const char *s, size_t len, uint8_t out[WSD_SECRET_HASH_LEN])
{
    wc_Sha256 sha;
    /* The token's bytes pass through sha's block buffer: zero it, not just free it. */
    if (wc_InitSha256(&sha) != 0 || wc_Sha256Update(&sha, (const byte *)s, (word32)len) != 0 ||
        wc_Sha256Final(&sha, out) != 0)
        memset(out, 0, WSD_SECRET_HASH_LEN);
    wc_Sha256Free(&sha);
    explicit_bzero(&sha, sizeof(sha));
}

bool wsd_secret_matches(const char *s, size_t len, const uint8_t want[WSD_SECRET_HASH_LEN])
{
    uint8_t got[WSD_SECRET_HASH_LEN];
    wsd_secret_hash(s, len, got);
    uint8_t diff = 0;
    for (size_t i = 0; i < WSD_SECRET_HASH_LEN; i++)
        diff |= (uint8_t)(got[i] ^ want[i]);
    explicit_bzero(got, sizeof(got));
    return diff == 0;
}

bool wsd_secret_is_token(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len &&
           (strchr("-._~+/", s[i]) || (s[i] >= '0' && s[i] <= '9') ||
            (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')) &&
           s[i])
        i++;
    if (i == 0)
        return false;
    while (i < len && s[i] == '=')
        i++;
    return i == len;
}

void wsd_secret_wipe_env(void)
{
    size_t name_len = strlen(WSD_SECRET_ENV);
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, WSD_SECRET_ENV, name_len) == 0 && (*e)[name_len] == '=') {
            char *v = *e + name_len + 1;
            explicit_bzero(v, strlen(v));
        }
    (void)unsetenv(WSD_SECRET_ENV);
}
