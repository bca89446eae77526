/* SPDX-License-Identifier: MIT */
/* Incremental UTF-8 validation (RFC 3629): a DFA whose state survives across fragments, so a
 * text message split anywhere validates the same as whole. */
#ifndef WSD_PROTO_UTF8_H
#define WSD_PROTO_UTF8_H

#include <stddef.h>
#include <stdint.h>

enum {
    WSD_UTF8_ACCEPT = 0, /* at a character boundary: the text so far is valid and complete */
    WSD_UTF8_REJECT = 1, /* invalid; sticky: feeding more bytes never leaves this state */
};

/* Feed len bytes to a validator in state (start with WSD_UTF8_ACCEPT). Returns the new state:
 * WSD_UTF8_REJECT as soon as any byte makes the text invalid (overlongs, surrogates, > U+10FFFF,
 * bad continuation), WSD_UTF8_ACCEPT at a boundary, any other value inside a character. */
uint32_t wsd_utf8_validate(uint32_t state, const uint8_t *buf, size_t len);

#endif
