/* SPDX-License-Identifier: MIT */
/* Proves the structured log events: the text form is "EVENT key=value ..." with a value quoted
 * and escaped only when it holds a space, a quote, a backslash or a control character (so a
 * client's path cannot forge a field or a line); the JSON form carries the same fields, numbers
 * as numbers, strings escaped (RFC 8259 7), one object per line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"

/* Run one event with stderr sent to a temporary file; return what was written. */
static char *capture_event(enum wsd_log_format format, const struct wsd_log_field *f, size_t n)
{
    static char out[4096];
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    wsd_log_setup(WSD_LOG_INFO, "wsd-test");
    wsd_log_set_format(format);
    wsd_log_event(WSD_LOG_INFO, "close", f, n);
    wsd_log_set_format(WSD_LOG_TEXT);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    size_t len = fread(out, 1, sizeof(out) - 1, tmp);
    out[len] = '\0';
    fclose(tmp);
    return out;
}

static const struct wsd_log_field *fields(size_t *n)
{
    static struct wsd_log_field f[4];
    f[0] = WSD_LOG_NUM("conn", 7);
    f[1] = WSD_LOG_STR("path", "/a b\"c\\d\n code=1000");
    f[2] = WSD_LOG_STR("by", "client");
    f[3] = WSD_LOG_STR("empty", "");
    *n = 4;
    return f;
}

static void test_log_event_text_quotes_what_needs_it(void **state)
{
    (void)state;
    size_t n;
    const struct wsd_log_field *f = fields(&n);
    char *line = capture_event(WSD_LOG_TEXT, f, n);
    const char *msg = strstr(line, ": info: ");
    assert_non_null(msg);
    assert_string_equal(msg + 8,
                        "close conn=7 path=\"/a b\\\"c\\\\d\\u000a code=1000\" by=client empty=\"\"\n");
}

static void test_log_event_json_same_fields(void **state)
{
    (void)state;
    size_t n;
    const struct wsd_log_field *f = fields(&n);
    char *line = capture_event(WSD_LOG_JSON, f, n);
    assert_int_equal(line[0], '{');
    assert_non_null(strstr(line, "\"level\":\"info\",\"proc\":\"wsd-test\",\"proc_pid\":"));
    const char *ev = strstr(line, ",\"event\":");
    assert_non_null(ev);
    assert_string_equal(ev, ",\"event\":\"close\",\"conn\":7,\"path\":\"/a b\\\"c\\\\d\\u000a "
                            "code=1000\",\"by\":\"client\",\"empty\":\"\"}\n");
    assert_int_equal(strchr(line, '\n') - line, (long)strlen(line) - 1); /* one line */
}

static void test_log_json_message_is_escaped(void **state)
{
    (void)state;
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    wsd_log_set_format(WSD_LOG_JSON);
    wsd_log_notice("say \"%s\"", "hi");
    wsd_log_set_format(WSD_LOG_TEXT);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    char out[1024] = "";
    assert_true(fread(out, 1, sizeof(out) - 1, tmp) > 0);
    fclose(tmp);
    assert_non_null(strstr(out, ",\"msg\":\"say \\\"hi\\\"\"}\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_event_text_quotes_what_needs_it),
        cmocka_unit_test(test_log_event_json_same_fields),
        cmocka_unit_test(test_log_json_message_is_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
