/* SPDX-License-Identifier: MIT */
/* Proves the admin token helpers: the hash is SHA-256 (FIPS 180-2 example), a presented token
 * matches only when equal, the RFC 6750 b64token syntax is enforced, and wiping the environment
 * leaves neither the variable nor its text in the environment block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/secret.h"

/* FIPS 180-2 appendix B.1: SHA-256("abc") */
static const uint8_t abc_sha256[WSD_SECRET_HASH_LEN] = {
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

static void test_secret_hash_fips_example(void **state)
{
    uint8_t out[WSD_SECRET_HASH_LEN];
    (void)state;
    wsd_secret_hash("abc", 3, out);
    assert_memory_equal(out, abc_sha256, sizeof(out));
}

static void test_secret_matches_only_equal(void **state)
{
    (void)state;
    assert_true(wsd_secret_matches("abc", 3, abc_sha256));
    assert_false(wsd_secret_matches("abd", 3, abc_sha256));
    assert_false(wsd_secret_matches("abcd", 4, abc_sha256));
    assert_false(wsd_secret_matches("", 0, abc_sha256));
}

static void test_secret_is_token_syntax(void **state)
{
    (void)state;
    assert_true(wsd_secret_is_token("abcXYZ019-._~+/", 15));
    assert_true(wsd_secret_is_token("abc==", 5));
    assert_false(wsd_secret_is_token("", 0));
    assert_false(wsd_secret_is_token("=abc", 4));
    assert_false(wsd_secret_is_token("ab=c", 4));
    assert_false(wsd_secret_is_token("ab c", 4));
    assert_false(wsd_secret_is_token("ab\"c", 4));
    assert_false(wsd_secret_is_token("ab\0c", 4));
}

static void test_secret_wipe_env(void **state)
{
    (void)state;
    static char entry[] = WSD_SECRET_ENV "=s3cr3t-token-for-the-test";
    assert_int_equal(putenv(entry), 0);
    wsd_secret_wipe_env();
    assert_null(getenv(WSD_SECRET_ENV));
    /* putenv put the string itself in environ: its bytes are what /proc/PID/environ shows */
    assert_null(memmem(entry, sizeof(entry), "s3cr3t", 6));
    assert_memory_equal(entry, WSD_SECRET_ENV "=", strlen(WSD_SECRET_ENV) + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_hash_fips_example),
        cmocka_unit_test(test_secret_matches_only_equal),
        cmocka_unit_test(test_secret_is_token_syntax),
        cmocka_unit_test(test_secret_wipe_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
