/* SPDX-License-Identifier: MIT */
/* The exec handler's startup: WSD_EXEC split and resolved, WSD_EXEC_DIR and WSD_USER checked,
 * WSD_EXEC_PASSENV taken from wsd's environment, all once in the supervisor; every worker
 * inherits the result. */
#ifndef WSD_CORE_EXEC_SETUP_H
#define WSD_CORE_EXEC_SETUP_H

#include <limits.h>
#include <stdio.h>

#include "core/exec_proc.h"

#define WSD_EXEC_ARGV_MAX 64
#define WSD_EXEC_PASSENV_MAX 32

struct wsd_config;

struct wsd_exec_setup {
    const struct wsd_config *cfg;
    char argv_text[4096];
    char *argv[WSD_EXEC_ARGV_MAX + 1];
    char path[PATH_MAX];                          /* WSD_EXEC's program */
    char *passenv[WSD_EXEC_PASSENV_MAX + 1];      /* "NAME=value", NULL-terminated */
    struct wsd_exec_spawn spawn;                  /* all but path, argv and envp */
};

/* Written by wsd_exec_setup_prepare() at startup, read-only afterwards. */
extern struct wsd_exec_setup wsd_exec_setup;

/* At startup, before any worker: check the exec settings (the program or directory, the user,
 * WSD_EXEC_PASSENV) and keep what every worker needs, resolved once. On a bad setting write
 * one line to err and return -EINVAL. Does nothing for other handlers, except refusing exec
 * settings they would ignore. */
int wsd_exec_setup_prepare(const struct wsd_config *cfg, FILE *err);

#endif
