/* SPDX-License-Identifier: MIT */
/* The admin token (WSD_ADMIN_TOKEN): wsd keeps only its SHA-256, compares presented tokens by
 * hash in constant time, and wipes the token's text from a child's environment, so no worker,
 * acceptor or metrics process holds it. */
#ifndef WSD_CORE_SECRET_H
#define WSD_CORE_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSD_SECRET_HASH_LEN 32
#define WSD_SECRET_ENV "WSD_ADMIN_TOKEN"

/* SHA-256 of s[0..len), written to out; the hash state is zeroed afterwards. */
void wsd_secret_hash(const char *s, size_t len, uint8_t out[WSD_SECRET_HASH_LEN]);

/* Whether SHA-256(s) equals want, in time that does not depend on where they differ. */
bool wsd_secret_matches(const char *s, size_t len, const uint8_t want[WSD_SECRET_HASH_LEN]);

/* RFC 6750 2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=". */
bool wsd_secret_is_token(const char *s, size_t len);

/* In a new child: overwrite the value of WSD_ADMIN_TOKEN in this process's copy of the
 * environment block (what /proc/PID/environ shows) and drop it from environ. */
void wsd_secret_wipe_env(void);

#endif
