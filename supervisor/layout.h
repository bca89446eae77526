/* SPDX-License-Identifier: MIT */
/* Where the supervisor's memory lies, chosen so that each worker (a copy of the template, a
 * copy of the supervisor) needs few page-table pages. A process pays one 4 kB page table for
 * each 2 MB of address space it has touched, one more for each 1 GB and each 512 GB, and a
 * fork copies them all: on this machine they were 60 kB of a held connection's 160 kB. The
 * kernel scatters a process over four distant places (the program, the brk heap up to 1 GB
 * past it, the shared libraries, the stack near the top), and each costs its own tables. */
#ifndef WSD_SUPERVISOR_LAYOUT_H
#define WSD_SUPERVISOR_LAYOUT_H

/* The AddressSanitizer build keeps the kernel's layout and every library (here and in trim.c):
 * ASan tracks the thread's one stack, has its own allocator and reads every loaded object. */
#if defined(__SANITIZE_ADDRESS__)
#define WSD_ASAN_BUILD 1
#else
#define WSD_ASAN_BUILD 0
#endif

/* Run from main's .preinit_array, before any library's constructor can call malloc: block
 * the brk heap with an inaccessible page at the program break, so that glibc's malloc takes
 * its memory with mmap, next to the libraries, instead of from a heap up to 1 GB away. */
void wsd_layout_heap_near_libs(void);

/* For the worker template, before its sandbox (this reads /proc/self): move onto a new stack
 * next to the libraries, unmap the stack the kernel made (inherited from the supervisor), and
 * run fn(arg) there; fn must not return. The program's arguments (ps, /proc/PID/cmdline) and
 * the environment are copied first and the kernel told where the arguments now are
 * (PR_SET_MM_MAP, unprivileged). Nothing may point into the old stack afterwards: whatever
 * the template and its workers read must be static or on the heap. Returns only on failure
 * (-errno), still on the old stack, which is then a correct but costlier layout. */
int wsd_layout_move_stack(void (*fn)(void *), void *arg);

#endif
