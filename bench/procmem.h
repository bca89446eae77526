/* SPDX-License-Identifier: MIT */
/* Memory of a server under test, for `wsbench hold`: the PSS of a process tree (from
 * /proc/PID/smaps_rollup) and the system-wide /proc/meminfo counters that hold the kernel's
 * share (socket buffers, page tables, kernel stacks, slab). */
#ifndef WSD_BENCH_PROCMEM_H
#define WSD_BENCH_PROCMEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct wsb_meminfo {
    int64_t mem_available_kb;
    int64_t anon_pages_kb;
    int64_t page_tables_kb;
    int64_t kernel_stack_kb;
    int64_t slab_kb;
};

/* Read /proc/meminfo. Returns 0, or -errno if it cannot be read. */
int wsb_meminfo_read(struct wsb_meminfo *ret);

/* Sum Pss and the page tables (VmPTE: kernel memory, one per process, that PSS leaves out) over
 * every root in roots[0..n) and all their descendants (found by scanning /proc/[0-9]*\/stat for
 * parent pids). Processes that vanish meanwhile are skipped. Returns 0 and fills *ret_pss_kb,
 * *ret_pte_kb and *ret_procs, or -errno if /proc cannot be scanned. */
int wsb_tree_pss(const pid_t *roots, size_t n, int64_t *ret_pss_kb, int64_t *ret_pte_kb,
                 int *ret_procs);

/* Pss of one process (pid 0 = this one) in kB, or -errno. */
int64_t wsb_pss_kb(pid_t pid);

/* VmPTE (its page tables) of one process in kB, or -errno. */
int64_t wsb_pte_kb(pid_t pid);

#endif
