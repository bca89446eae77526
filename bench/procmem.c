/* SPDX-License-Identifier: MIT */
/* /proc readers for the hold mode: meminfo counters and PSS summed over a process tree. */
#include "bench/procmem.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wsb_meminfo_read(struct wsb_meminfo *ret)
{
    struct wsb_meminfo m = { 0 };
    char line[256];
    long long v;
    FILE *f;

    f = fopen("/proc/meminfo", "re");
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemAvailable: %lld", &v) == 1)
            m.mem_available_kb = v;
        else if (sscanf(line, "AnonPages: %lld", &v) == 1)
            m.anon_pages_kb = v;
        else if (sscanf(line, "PageTables: %lld", &v) == 1)
            m.page_tables_kb = v;
        else if (sscanf(line, "KernelStack: %lld", &v) == 1)
            m.kernel_stack_kb = v;
        else if (sscanf(line, "Slab: %lld", &v) == 1)
            m.slab_kb = v;
    }
    fclose(f);
    *ret = m;
    return 0;
}

/* The value of the "KEY: N kB" line of a /proc file, or -errno. */
static int64_t read_kb_field(const char *path, const char *key)
{
    char line[256];
    size_t klen = strlen(key);
    int64_t v = -ENOENT;
    FILE *f;

    f = fopen(path, "re");
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtoll(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

int64_t wsb_pss_kb(pid_t pid)
{
    char path[64];

    if (pid == 0)
        snprintf(path, sizeof(path), "/proc/self/smaps_rollup");
    else
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    return read_kb_field(path, "Pss");
}

int64_t wsb_pte_kb(pid_t pid)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    return read_kb_field(path, "VmPTE");
}

/* Parent pid from /proc/PID/stat: the field after the state, which follows the last ')'
 * (the command name may itself hold ')' or spaces). Returns -1 if the process is gone. */
static pid_t read_ppid(pid_t pid)
{
    char path[64], buf[512], *p;
    int ppid;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
        return -1;
    return ppid;
}

struct proc_pair {
    pid_t pid;
    pid_t ppid;
};

int wsb_tree_pss(const pid_t *roots, size_t n, int64_t *ret_pss_kb, int64_t *ret_pte_kb,
                 int *ret_procs)
{
    struct proc_pair *all = NULL, *tmp;
    size_t nall = 0, cap = 0, ntree = 0;
    pid_t *tree = NULL;
    struct dirent *de;
    int64_t sum = 0, pte_sum = 0, pss, pte;
    int r = 0, procs = 0;
    DIR *d;

    d = opendir("/proc");
    if (!d)
        return -errno;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        pid_t ppid;

        if (*end || pid <= 0)
            continue;
        ppid = read_ppid((pid_t)pid);
        if (ppid < 0)
            continue;
        if (nall == cap) {
            cap = cap ? cap * 2 : 4096;
            tmp = realloc(all, cap * sizeof(*all));
            if (!tmp) {
                r = -ENOMEM;
                goto out;
            }
            all = tmp;
        }
        all[nall++] = (struct proc_pair){ .pid = (pid_t)pid, .ppid = ppid };
    }
    tree = malloc((nall + n) * sizeof(*tree));
    if (!tree) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        tree[ntree++] = roots[i];
    /* Breadth-first: every process whose parent is already in the tree joins it. A quadratic
     * scan over a sorted-by-pid list would be faster; 10,000 x 10,000 compares is still
     * well under a second, and this runs once per measurement. */
    for (size_t i = 0; i < ntree; i++)
        for (size_t j = 0; j < nall; j++)
            if (all[j].ppid == tree[i] && ntree < nall + n)
                tree[ntree++] = all[j].pid;
    for (size_t i = 0; i < ntree; i++) {
        pss = wsb_pss_kb(tree[i]);
        if (pss < 0)
            continue; /* exited meanwhile */
        pte = wsb_pte_kb(tree[i]);
        sum += pss;
        pte_sum += pte > 0 ? pte : 0;
        procs++;
    }
    *ret_pss_kb = sum;
    *ret_pte_kb = pte_sum;
    *ret_procs = procs;
out:
    closedir(d);
    free(all);
    free(tree);
    return r;
}
