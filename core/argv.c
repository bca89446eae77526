/* SPDX-License-Identifier: MIT */
/* Shell-like word splitting with no shell: POSIX 2.2 quoting rules, no expansion. */
#include "core/argv.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n';
}

/* POSIX 2.2: characters that are operators or expansions when unquoted. */
static bool is_shell_special(char ch)
{
    return ch != '\0' && strchr("|&;<>()$`", ch) != NULL;
}

/* POSIX 2.2.3: inside double quotes a backslash escapes only these. */
static bool escapable_in_dquotes(char ch)
{
    return ch == '"' || ch == '\\' || ch == '$' || ch == '`' || ch == '\n';
}

int wsd_argv_split(const char *s, char *buf, size_t cap, char **argv, size_t max_words,
                   size_t *ret_err_off)
{
    size_t n = 0, out = 0, i = 0;
    for (;;) {
        while (is_blank(s[i]))
            i++;
        if (s[i] == '\0')
            break;
        if (n == max_words)
            return -E2BIG;
        argv[n++] = buf + out;
        /* One word: until an unquoted blank or the end. */
        while (s[i] != '\0' && !is_blank(s[i])) {
            char ch = s[i];
            size_t start = i;
            if (out + 2 > cap)
                return -ENOBUFS;
            if (ch == '\'') {
                const char *end = strchr(s + i + 1, '\'');
                if (!end) {
                    *ret_err_off = start;
                    return -EINVAL;
                }
                size_t len = (size_t)(end - (s + i + 1));
                if (out + len + 1 > cap)
                    return -ENOBUFS;
                memcpy(buf + out, s + i + 1, len);
                out += len;
                i += len + 2;
            } else if (ch == '"') {
                for (i++; s[i] != '"'; i++) {
                    if (s[i] == '\0') {
                        *ret_err_off = start;
                        return -EINVAL;
                    }
                    if (s[i] == '\\' && escapable_in_dquotes(s[i + 1])) {
                        i++;
                        if (s[i] == '\n')
                            continue; /* line continuation */
                    }
                    if (out + 2 > cap)
                        return -ENOBUFS;
                    buf[out++] = s[i];
                }
                i++;
            } else if (ch == '\\') {
                if (s[i + 1] == '\0') {
                    *ret_err_off = i;
                    return -EINVAL;
                }
                if (s[i + 1] != '\n')
                    buf[out++] = s[i + 1];
                i += 2;
            } else if (is_shell_special(ch)) {
                *ret_err_off = i;
                return -EINVAL;
            } else {
                buf[out++] = ch;
                i++;
            }
        }
        buf[out++] = '\0';
    }
    argv[n] = NULL;
    return (int)n;
}
