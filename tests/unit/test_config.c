/* SPDX-License-Identifier: MIT */
/* Proves WSD_ENV_FILE parsing (comments, blank lines, quotes, CRLF, surrounding blanks; the file
 * wins over the environment; unknown names, lines without '=', WSD_ENV_FILE inside the file and
 * bad values are one-line errors) and wsd_config_reload (run-time values applied, restart-only
 * values reported and kept, a bad file changes nothing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>

#include "core/config.h"

static char path[64]; /* this process's own file, made new by setup() */

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/wsd-test-config-%d", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    close(fd);
    for (size_t i = 0; i < wsd_config_count(); i++)
        unsetenv(wsd_config_name(i));
    setenv("WSD_ENV_FILE", path, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

/* Load and return the error line ("" on success). */
static int load(struct wsd_config *cfg, char *err, size_t cap)
{
    FILE *f = fmemopen(err, cap, "w");
    assert_non_null(f);
    int r = wsd_config_load(cfg, f);
    fclose(f);
    return r;
}

static void test_config_load_env_file_syntax(void **state)
{
    (void)state;
    struct wsd_config cfg;
    char err[1024] = "";
    setenv("WSD_POOL_MIN", "9", 1);
    setenv("WSD_KILL_GRACE_MS", "77", 1);
    write_file("# a comment\r\n\n   WSD_POOL_MIN=2  \r\nWSD_MAX_MESSAGE=\"4000\"\n"
               "WSD_LOG_LEVEL='notice'\n\t# indented comment\nWSD_CONTROL_SOCKET=/x/y.sock");
    assert_int_equal(load(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.pool_min, 2);       /* the file wins over the environment */
    assert_int_equal(cfg.kill_grace_ms, 77); /* the environment, where the file is silent */
    assert_int_equal(cfg.max_message, 4000); /* quotes stripped */
    assert_int_equal(cfg.log_level, 2);      /* notice */
    assert_string_equal(cfg.control_socket, "/x/y.sock"); /* last line without a newline */
    unsetenv("WSD_POOL_MIN");
    unsetenv("WSD_KILL_GRACE_MS");
}

/* The current file is refused with exactly one line naming w1 and w2. */
static void expect_refused(const char *w1, const char *w2)
{
    struct wsd_config cfg;
    char err[1024] = "";
    assert_int_equal(load(&cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, w1));
    assert_non_null(strstr(err, w2));
    size_t lines = 0;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 1);
    assert_int_equal(err[strlen(err) - 1], '\n');
}

static void expect_error(const char *text, const char *w1, const char *w2)
{
    write_file(text);
    expect_refused(w1, w2);
}

static void test_config_load_env_file_errors(void **state)
{
    (void)state;
    expect_error("WSD_POOL_MIN=2\nWSD_NOPE=1\n", "line 2", "WSD_NOPE");
    expect_error("WSD_POOL_MIN\n", "line 1", "WSD_POOL_MIN");
    expect_error("WSD_ENV_FILE=/etc/other\n", "line 1", "WSD_ENV_FILE");
    expect_error("export WSD_POOL_MIN=2\n", "line 1", "export");
    expect_error("WSD_POOL_MIN=\n", "WSD_POOL_MIN", "expected an integer");
    expect_error("WSD_DEFLATE=maybe\n", "WSD_DEFLATE=\"maybe\"", "one of: off on");
    unlink(path);
    expect_refused("WSD_ENV_FILE", "No such file");
}

struct seen {
    char names[512];
    int applied, kept;
};

static void record(const char *name, const char *was, const char *now, bool applied, void *ud)
{
    struct seen *s = ud;
    char one[128];
    snprintf(one, sizeof(one), "%s:%s>%s ", name, was, now);
    strncat(s->names, one, sizeof(s->names) - strlen(s->names) - 1);
    if (applied)
        s->applied++;
    else
        s->kept++;
}

static void test_config_reload_applies_runtime_only(void **state)
{
    (void)state;
    struct wsd_config cur, next;
    char err[1024] = "", why[768] = "";
    write_file("WSD_MAX_MESSAGE=1000\nWSD_MAX_CONNS=100\n");
    assert_int_equal(load(&cur, err, sizeof(err)), 0);
    write_file("WSD_MAX_MESSAGE=2000\nWSD_MAX_CONNS=200\nWSD_LISTEN=127.0.0.1:9\n");
    struct seen s = {0};
    assert_int_equal(wsd_config_reload(&cur, &next, record, &s, why, sizeof(why)), 0);
    assert_int_equal(next.max_message, 2000);     /* run time */
    assert_int_equal(next.max_conns, 100);        /* restart: kept */
    assert_string_equal(next.listen, cur.listen); /* restart: kept */
    assert_int_equal(s.applied, 1);
    assert_int_equal(s.kept, 2);
    assert_non_null(strstr(s.names, "WSD_MAX_MESSAGE:1000>2000 "));
    assert_non_null(strstr(s.names, "WSD_MAX_CONNS:100>200 "));

    write_file("WSD_MAX_MESSAGE=3000\nWSD_KILL_GRACE_MS=abc\n");
    memset(&s, 0, sizeof(s));
    struct wsd_config untouched = next;
    assert_int_equal(wsd_config_reload(&untouched, &next, record, &s, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "WSD_KILL_GRACE_MS=\"abc\""));
    assert_int_equal(s.applied + s.kept, 0); /* nothing reported, nothing applied */
    assert_int_equal(next.max_message, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_load_env_file_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_load_env_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_reload_applies_runtime_only, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
