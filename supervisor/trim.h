/* SPDX-License-Identifier: MIT */
/* What the worker template drops from itself before it clones workers. Every worker is a
 * copy of the template and lives for one connection, so whatever the copy carries is paid per
 * connection: a fork's and an exit's cost grows with the mappings and page tables copied and
 * torn down, and each page a new process touches first is a page fault (about 10 us on this
 * paravirtualised machine). */
#ifndef WSD_SUPERVISOR_TRIM_H
#define WSD_SUPERVISOR_TRIM_H

/* Unmap the shared libraries only the supervisor calls (libsystemd for sd_notify and socket
 * activation, libseccomp for compiling the filter, and what they pull in: about 40 of a
 * worker's 70 mappings). Nothing may call into them afterwards (the template and its workers
 * never do), nor walk the loaded objects' program headers (dl_iterate_phdr callbacks such as
 * libgcc's unwinder): ld.so still lists these, with headers that are gone. Returns how many
 * libraries were unmapped. */
int wsd_trim_supervisor_libs(void);

/* Unregister glibc's restartable-sequences area, which clones inherit: the kernel writes it
 * on a new process's first return to user space (and the template's after each fork), a
 * copy-on-write fault each time. Nothing in wsd uses rseq; sched_getcpu() falls back to the
 * system call. */
void wsd_trim_rseq(void);

#endif
