/* SPDX-License-Identifier: MIT */
/* Checking and resolving the exec configuration once, with one line per refusal (exit 2). */
#include "core/exec_setup.h"

#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/argv.h"
#include "core/config.h"
#include "core/exec_env.h"

struct wsd_exec_setup wsd_exec_setup;

static int bad(FILE *err, const char *name, const char *value, const char *expected)
{
    fprintf(err, "wsd: invalid %s=\"%s\": expected %s\n", name, value, expected);
    return -EINVAL;
}

static int resolve_program(const struct wsd_config *cfg, FILE *err)
{
    const char *prog = wsd_exec_setup.argv[0];
    if (strchr(prog, '/')) {
        snprintf(wsd_exec_setup.path, sizeof(wsd_exec_setup.path), "%s", prog);
    } else {
        /* The same search a shell does, over wsd's own PATH. */
        const char *path = secure_getenv("PATH");
        wsd_exec_setup.path[0] = '\0';
        for (const char *p = path ? path : "/usr/bin:/bin"; *p && !wsd_exec_setup.path[0];) {
            size_t n = strcspn(p, ":");
            char cand[PATH_MAX];
            if (n > 0 && snprintf(cand, sizeof(cand), "%.*s/%s", (int)n, p, prog) <
                             (int)sizeof(cand) &&
                access(cand, X_OK) == 0)
                snprintf(wsd_exec_setup.path, sizeof(wsd_exec_setup.path), "%s", cand);
            p += n + (p[n] == ':');
        }
    }
    struct stat st;
    if (!wsd_exec_setup.path[0] || stat(wsd_exec_setup.path, &st) < 0 || !S_ISREG(st.st_mode) ||
        access(wsd_exec_setup.path, X_OK) < 0)
        return bad(err, "WSD_EXEC", cfg->exec, "an executable file as the first word");
    return 0;
}

static int prepare_argv(const struct wsd_config *cfg, FILE *err)
{
    size_t off = 0;
    int n = wsd_argv_split(cfg->exec, wsd_exec_setup.argv_text, sizeof(wsd_exec_setup.argv_text), wsd_exec_setup.argv,
                           WSD_EXEC_ARGV_MAX, &off);
    if (n == -EINVAL) {
        char why[160];
        snprintf(why, sizeof(why),
                 "words split like a shell splits them (byte %zu: unterminated quote, trailing "
                 "backslash, or a shell operator; no shell runs, so quote it)", off);
        return bad(err, "WSD_EXEC", cfg->exec, why);
    }
    if (n <= 0)
        return bad(err, "WSD_EXEC", cfg->exec, "a program and at most 64 arguments");
    return resolve_program(cfg, err);
}

static int prepare_user(const struct wsd_config *cfg, FILE *err)
{
    const char *name = cfg->user;
    if (!name[0]) {
        if (geteuid() != 0)
            return 0; /* programs run as wsd's own user */
        name = "nobody";
    }
    char *end;
    errno = 0;
    unsigned long id = strtoul(name, &end, 10);
    struct passwd *pw = *end == '\0' && errno == 0 ? getpwuid((uid_t)id) : getpwnam(name);
    if (!pw)
        return bad(err, "WSD_USER", name, "a user name or uid known to this system");
    if (geteuid() != 0 && pw->pw_uid != geteuid())
        return bad(err, "WSD_USER", name, "wsd's own user (switching users needs root)");
    wsd_exec_setup.spawn.set_ids = geteuid() == 0;
    wsd_exec_setup.spawn.uid = pw->pw_uid;
    wsd_exec_setup.spawn.gid = pw->pw_gid;
    return 0;
}

static int prepare_passenv(const struct wsd_config *cfg, FILE *err)
{
    size_t n = 0;
    for (const char *p = cfg->exec_passenv; *p;) {
        size_t len = strcspn(p, ", \t");
        if (len > 0) {
            char name[256];
            bool ok = len < sizeof(name);
            for (size_t i = 0; ok && i < len; i++)
                ok = p[i] == '_' || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') ||
                     (i > 0 && p[i] >= '0' && p[i] <= '9');
            if (!ok || wsd_exec_env_is_cgi_name(p, len) || n == WSD_EXEC_PASSENV_MAX)
                return bad(err, "WSD_EXEC_PASSENV", cfg->exec_passenv,
                           "at most 32 variable names, none of them a CGI or HTTP_ name");
            memcpy(name, p, len);
            name[len] = '\0';
            const char *v = secure_getenv(name);
            if (v && asprintf(&wsd_exec_setup.passenv[n], "%s=%s", name, v) > 0)
                n++;
        }
        p += len + (p[len] != '\0');
    }
    wsd_exec_setup.passenv[n] = NULL;
    return 0;
}

int wsd_exec_setup_prepare(const struct wsd_config *cfg, FILE *err)
{
    wsd_exec_setup.cfg = cfg;
    if (cfg->handler != WSD_HANDLER_EXEC) {
        if (cfg->exec[0] || cfg->exec_dir[0])
            return bad(err, "WSD_HANDLER", "echo",
                       "exec, since WSD_EXEC or WSD_EXEC_DIR is set");
        return 0;
    }
    if (!cfg->exec[0] == !cfg->exec_dir[0])
        return bad(err, cfg->exec[0] ? "WSD_EXEC_DIR" : "WSD_EXEC",
                   cfg->exec[0] ? cfg->exec_dir : "",
                   cfg->exec[0] ? "empty, since WSD_EXEC is set (one or the other)"
                                : "a program, since WSD_HANDLER=exec (or set WSD_EXEC_DIR)");
    struct stat st;
    if (cfg->exec_dir[0] && (cfg->exec_dir[0] != '/' || stat(cfg->exec_dir, &st) < 0 ||
                             !S_ISDIR(st.st_mode)))
        return bad(err, "WSD_EXEC_DIR", cfg->exec_dir, "an absolute path to a directory");
    int r = cfg->exec[0] ? prepare_argv(cfg, err) : 0;
    if (r == 0)
        r = prepare_user(cfg, err);
    if (r == 0)
        r = prepare_passenv(cfg, err);
    wsd_exec_setup.spawn.stderr_mode = (enum wsd_exec_stderr)cfg->exec_stderr;
    wsd_exec_setup.spawn.isolate_fd = -1;
    wsd_exec_setup.spawn.rlimit_as = cfg->exec_rlimit_as;
    wsd_exec_setup.spawn.rlimit_nofile = cfg->exec_rlimit_nofile;
    wsd_exec_setup.spawn.rlimit_nproc = cfg->exec_rlimit_nproc;
    wsd_exec_setup.spawn.rlimit_cpu = cfg->exec_rlimit_cpu;
    return r;
}

