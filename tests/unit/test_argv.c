/* SPDX-License-Identifier: MIT */
/* Proves WSD_EXEC's word splitting: blanks, both quote kinds, backslashes in and out of double
 * quotes, empty words, and the refusals (unterminated quote, trailing backslash, unquoted shell
 * operators, too many words, a buffer too small) with the offset they report. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/argv.h"

#define MAX_WORDS 8

struct split {
    int n;
    char buf[256];
    char *argv[MAX_WORDS + 1];
    size_t err_off;
};

/* r is filled in place: argv points into r->buf. */
static void split(struct split *r, const char *s)
{
    r->err_off = (size_t)-1;
    r->n = wsd_argv_split(s, r->buf, sizeof(r->buf), r->argv, MAX_WORDS, &r->err_off);
}

static void expect_words(const char *s, int n, const char *const *want)
{
    struct split r;
    split(&r, s);
    assert_int_equal(r.n, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(r.argv[i], want[i]);
    assert_null(r.argv[n]);
}

static void test_argv_split_words(void **state)
{
    (void)state;
    expect_words("", 0, NULL);
    expect_words(" \t\n ", 0, NULL);
    expect_words("/bin/cat", 1, (const char *const[]){"/bin/cat"});
    expect_words("  /usr/bin/python3  -u\tscript.py\n", 3,
                 (const char *const[]){"/usr/bin/python3", "-u", "script.py"});
    expect_words("a'b c'd \"e f\"", 2, (const char *const[]){"ab cd", "e f"});
    expect_words("'' \"\"", 2, (const char *const[]){"", ""});
    expect_words("'it''s' \"$x|y\" '\\n'", 3, (const char *const[]){"its", "$x|y", "\\n"});
    /* POSIX 2.2.3: in double quotes \ escapes only " \ $ ` and newline */
    expect_words("\"a\\\"b\\\\c\\d\\$\"", 1, (const char *const[]){"a\"b\\c\\d$"});
    expect_words("a\\ b c\\|d e\\\nf", 3, (const char *const[]){"a b", "c|d", "ef"});
    expect_words("\"line\\\njoined\"", 1, (const char *const[]){"linejoined"});
}

static void expect_refused(const char *s, int err, size_t off)
{
    struct split r;
    split(&r, s);
    assert_int_equal(r.n, err);
    if (err == -EINVAL)
        assert_int_equal(r.err_off, off);
}

static void test_argv_split_refusals(void **state)
{
    (void)state;
    expect_refused("cat 'open", -EINVAL, 4);
    expect_refused("cat \"open", -EINVAL, 4);
    expect_refused("cat \"a\\\"", -EINVAL, 4);
    expect_refused("cat \\", -EINVAL, 4);
    expect_refused("cat | grep x", -EINVAL, 4);
    expect_refused("cat;id", -EINVAL, 3);
    expect_refused("echo $HOME", -EINVAL, 5);
    expect_refused("echo `id`", -EINVAL, 5);
    expect_refused("a > b", -EINVAL, 2);
    expect_refused("a b c d e f g h i", -E2BIG, 0);
}

static void test_argv_split_buffer(void **state)
{
    char buf[6];
    char *argv[MAX_WORDS + 1];
    size_t off;
    (void)state;
    /* exactly strlen + 1 is always enough */
    assert_int_equal(wsd_argv_split("ab cd", buf, sizeof(buf), argv, MAX_WORDS, &off), 2);
    assert_string_equal(argv[1], "cd");
    assert_int_equal(wsd_argv_split("abc def", buf, sizeof(buf), argv, MAX_WORDS, &off),
                     -ENOBUFS);
    assert_int_equal(wsd_argv_split("'abcdefg'", buf, sizeof(buf), argv, MAX_WORDS, &off),
                     -ENOBUFS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_split_words),
        cmocka_unit_test(test_argv_split_refusals),
        cmocka_unit_test(test_argv_split_buffer),
    };
    return cmocka_run_group_tests_name("argv", tests, NULL, NULL);
}
