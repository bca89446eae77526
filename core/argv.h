/* SPDX-License-Identifier: MIT */
/* Split a command line into words the way a POSIX shell splits them, without running a shell:
 * quotes and backslashes group and escape, and nothing is expanded. Used for WSD_EXEC. */
#ifndef WSD_CORE_ARGV_H
#define WSD_CORE_ARGV_H

#include <stddef.h>

/* Split s into words:
 *  - blanks (space, tab, newline) separate words;
 *  - '...' keeps everything inside as it is;
 *  - "..." keeps everything inside, except that a backslash escapes ", \, $, ` and newline;
 *  - outside quotes a backslash escapes the next character (backslash-newline disappears);
 *  - an unquoted | & ; < > ( ) $ or ` is refused: it would mean something to a shell, and
 *    there is none here (quote it, or run sh -c explicitly).
 * The words are written NUL-terminated into buf (cap >= strlen(s) + 1 always suffices) and
 * pointed to by argv[0..n-1], with argv[n] = NULL (argv holds max_words + 1 pointers).
 * Returns n (0 for a blank line), or -EINVAL (unterminated quote, trailing backslash, a shell
 * operator: *ret_err_off is the offset of the offending character), -E2BIG (more than
 * max_words words) or -ENOBUFS (buf too small). */
int wsd_argv_split(const char *s, char *buf, size_t cap, char **argv, size_t max_words,
                   size_t *ret_err_off);

#endif
