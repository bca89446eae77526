/* SPDX-License-Identifier: MIT */
/* Incremental UTF-8 validation: a byte-class DFA written from RFC 3629 section 4 (table 4,
 * "UTF8-octets"), with two fast paths at a character boundary: ASCII 16 bytes at a time, and
 * whole multi-byte characters checked at once. */
#include "proto/utf8.h"

#include <string.h>

/* States 0 and 1 are the public WSD_UTF8_ACCEPT / WSD_UTF8_REJECT; the others are "inside a
 * character" and name what the next byte must be. */
enum {
    S_ACC = WSD_UTF8_ACCEPT,
    S_REJ = WSD_UTF8_REJECT,
    S_T1, /* one more tail byte 80-BF */
    S_T2, /* two more tail bytes */
    S_T3, /* three more tail bytes */
    S_E0, /* after E0: A0-BF, then one tail (no overlongs) */
    S_ED, /* after ED: 80-9F, then one tail (no surrogates D800-DFFF) */
    S_F0, /* after F0: 90-BF, then two tails (no overlongs) */
    S_F4, /* after F4: 80-8F, then two tails (nothing above U+10FFFF) */
    S_COUNT,
};

/* Byte classes: every byte value that RFC 3629 table 4 treats differently. */
enum {
    C_ASC, /* 00-7F */
    C_T80, /* 80-8F: tail */
    C_T90, /* 90-9F: tail */
    C_TA0, /* A0-BF: tail */
    C_BAD, /* C0-C1 (always overlong), F5-FF (above U+10FFFF) */
    C_L2,  /* C2-DF */
    C_E0,  /* E0 */
    C_L3,  /* E1-EC, EE-EF */
    C_ED,  /* ED */
    C_F0,  /* F0 */
    C_L4,  /* F1-F3 */
    C_F4,  /* F4 */
};

static const uint8_t byte_class[256] = {
    [0x00 ... 0x7F] = C_ASC, [0x80 ... 0x8F] = C_T80, [0x90 ... 0x9F] = C_T90,
    [0xA0 ... 0xBF] = C_TA0, [0xC0 ... 0xC1] = C_BAD, [0xC2 ... 0xDF] = C_L2,
    [0xE0] = C_E0,           [0xE1 ... 0xEC] = C_L3,  [0xED] = C_ED,
    [0xEE ... 0xEF] = C_L3,  [0xF0] = C_F0,           [0xF1 ... 0xF3] = C_L4,
    [0xF4] = C_F4,           [0xF5 ... 0xFF] = C_BAD,
};

/* next_state[state][class]: one row per state, one column per byte class, padded to 16 so the
 * index is a shift. R (reject) is every byte table 4 does not allow at that point. */
/* clang-format off */
#define R S_REJ
static const uint8_t next_state[S_COUNT][16] = {
    /*          ASC    T80    T90    TA0    BAD  L2    E0    L3    ED    F0    L4    F4 */
    [S_ACC] = { S_ACC, R,     R,     R,     R,   S_T1, S_E0, S_T2, S_ED, S_F0, S_T3, S_F4 },
    [S_REJ] = { R,     R,     R,     R,     R,   R,    R,    R,    R,    R,    R,    R    },
    [S_T1]  = { R,     S_ACC, S_ACC, S_ACC, R,   R,    R,    R,    R,    R,    R,    R    },
    [S_T2]  = { R,     S_T1,  S_T1,  S_T1,  R,   R,    R,    R,    R,    R,    R,    R    },
    [S_T3]  = { R,     S_T2,  S_T2,  S_T2,  R,   R,    R,    R,    R,    R,    R,    R    },
    [S_E0]  = { R,     R,     R,     S_T1,  R,   R,    R,    R,    R,    R,    R,    R    },
    [S_ED]  = { R,     S_T1,  S_T1,  R,     R,   R,    R,    R,    R,    R,    R,    R    },
    [S_F0]  = { R,     R,     S_T2,  S_T2,  R,   R,    R,    R,    R,    R,    R,    R    },
    [S_F4]  = { R,     S_T2,  R,     R,     R,   R,    R,    R,    R,    R,    R,    R    },
};
#undef R
/* clang-format on */

/* Whole-character fast path: the length and second-byte range of each lead class, from the
 * same table 4 rows; bytes three and four are always tails. len 0: not a lead. */
static const struct {
    uint8_t len, lo, hi;
} lead_info[16] = {
    [C_L2] = {2, 0x80, 0xBF}, [C_E0] = {3, 0xA0, 0xBF}, [C_L3] = {3, 0x80, 0xBF},
    [C_ED] = {3, 0x80, 0x9F}, [C_F0] = {4, 0x90, 0xBF}, [C_L4] = {4, 0x80, 0xBF},
    [C_F4] = {4, 0x80, 0x8F},
};

/* Length of the valid character at p (>= 4 bytes readable), or 0 if it is invalid. The length
 * comes from the lead byte by arithmetic, so the next position waits on one load only; the DFA
 * instead chains a table load per byte. */
static size_t char_len(const uint8_t *p)
{
    uint8_t b = p[0];
    size_t len = 2 + (b >= 0xE0) + (b >= 0xF0); /* what the lead claims; checked next */
    uint8_t cls = byte_class[b];

    if (lead_info[cls].len != len || p[1] < lead_info[cls].lo || p[1] > lead_info[cls].hi)
        return 0;
    if (len >= 3 && (p[2] & 0xC0) != 0x80)
        return 0;
    if (len == 4 && (p[3] & 0xC0) != 0x80)
        return 0;
    return len;
}

#define HIGH_BITS 0x8080808080808080ULL

/* Skip ASCII bytes; returns the first non-ASCII byte or end. Reads only within [p, end). */
static const uint8_t *skip_ascii(const uint8_t *p, const uint8_t *end)
{
    uint64_t a, b;

    while (end - p >= 16) {
        memcpy(&a, p, 8); /* memcpy: p has no alignment; compiles to one load */
        memcpy(&b, p + 8, 8);
        if ((a | b) & HIGH_BITS)
            break;
        p += 16;
    }
    while (end - p >= 8) {
        memcpy(&a, p, 8);
        if (a & HIGH_BITS)
            break;
        p += 8;
    }
    while (p < end && *p < 0x80)
        p++;
    return p;
}

uint32_t wsd_utf8_validate(uint32_t state, const uint8_t *buf, size_t len)
{
    const uint8_t *p = buf, *end = buf + len;

    if (state >= S_COUNT) /* not a state we ever returned */
        return WSD_UTF8_REJECT;
    while (p < end) {
        if (state == S_ACC && *p < 0x80) {
            p = skip_ascii(p, end);
            continue;
        }
        if (state == S_ACC && end - p >= 4) {
            size_t n = char_len(p);

            if (n == 0)
                return WSD_UTF8_REJECT;
            p += n;
            continue;
        }
        /* Inside a character, or near the end: one byte at a time through the DFA. */
        state = next_state[state][byte_class[*p++]];
        if (state == S_REJ) /* sticky: no need to look further */
            return WSD_UTF8_REJECT;
    }
    return state;
}
