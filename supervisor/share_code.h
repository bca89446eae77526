/* SPDX-License-Identifier: MIT */
/* What the worker template does so that its clones start with its page-table entries for code
 * and read-only data. A fork copies page-table entries only for the mappings that hold an
 * anonymous page (the kernel's vma_needs_copy()); for the program's and the libraries' code
 * and constants, which hold none, it copies nothing, so each page of them a new worker runs or
 * reads is a page fault of its own: 24 of a worker's 32, at several microseconds each on this
 * paravirtualised machine. With the template's entries inherited, 15 faults are left (copy-on-
 * write of the stack, data and heap, and code the template itself never ran). */
#ifndef WSD_SUPERVISOR_SHARE_CODE_H
#define WSD_SUPERVISOR_SHARE_CODE_H

/* For the worker template, before its sandbox (this writes /proc/self/mem): give every
 * read-only segment of every loaded object one anonymous page, a private copy of its first
 * page with the same bytes, written through /proc/self/mem (the kernel's forced
 * copy-on-write, as a debugger's breakpoint does), so the mapping never becomes writable.
 * From then on a clone inherits the template's entries for the whole mapping. Where
 * /proc/self/mem cannot be written, nothing changes but the faults. */
void wsd_share_code_with_clones(void);

#endif
