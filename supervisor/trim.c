/* SPDX-License-Identifier: MIT */
/* Trimming the worker template: the supervisor-only libraries, found with dl_iterate_phdr (no
 * file access: the template is already sandboxed) and unmapped span by span; glibc's rseq
 * registration. */
#include "supervisor/trim.h"

#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "supervisor/layout.h"

#define MAX_SPANS 16

/* By soname prefix: libsystemd and libseccomp, and the libraries Debian's libsystemd links
 * (its compression and crypto back ends, libcap). Any other library, including ones a
 * different build links dynamically (wolfSSL, zlib, liburing), is kept. */
static const char *const supervisor_only[] = {
    "libsystemd.so", "libseccomp.so", "libgcrypt.so", "libgpg-error.so",
    "liblzma.so",    "libzstd.so",    "liblz4.so",    "libcap.so",
};

struct span {
    uintptr_t start, end;
};

struct spans {
    struct span s[MAX_SPANS];
    int n;
};

static bool is_supervisor_only(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < sizeof(supervisor_only) / sizeof(supervisor_only[0]); i++)
        if (strncmp(base, supervisor_only[i], strlen(supervisor_only[i])) == 0)
            return true;
    return false;
}

/* From the lowest to the highest PT_LOAD: the gaps ld.so left between segments (PROT_NONE
 * mappings) go too. */
static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct spans *sp = arg;
    if (!info->dlpi_name || !is_supervisor_only(info->dlpi_name) || sp->n == MAX_SPANS)
        return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0, page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr, b = a + ph->p_memsz;
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    if (lo < hi)
        sp->s[sp->n++] = (struct span){lo & ~(page - 1), (hi + page - 1) & ~(page - 1)};
    return 0;
}

int wsd_trim_supervisor_libs(void)
{
    if (WSD_ASAN_BUILD)
        return 0; /* ASan walks the loaded objects to print a report: keep them readable */
    struct spans sp = {.n = 0};
    (void)dl_iterate_phdr(collect, &sp);
    int done = 0;
    for (int i = 0; i < sp.n; i++)
        if (munmap((void *)sp.s[i].start, sp.s[i].end - sp.s[i].start) == 0)
            done++;
    return done;
}

void wsd_trim_rseq(void)
{
    if (__rseq_size == 0)
        return; /* glibc did not register it (GLIBC_TUNABLES=glibc.pthread.rseq=0) */
    struct rseq *rs = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
    /* The length glibc registered: the whole area (32 bytes), not __rseq_size (the 20 bytes
     * of fields it knows). */
    if (syscall(SYS_rseq, rs, sizeof(*rs), RSEQ_FLAG_UNREGISTER, RSEQ_SIG) == 0)
        rs->cpu_id = RSEQ_CPU_ID_REGISTRATION_FAILED; /* what glibc's readers test for */
}
