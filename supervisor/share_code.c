/* SPDX-License-Identifier: MIT */
/* The template's code and constants mapped in its clones from the start (see share_code.h). */
#include "supervisor/share_code.h"

#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/sys.h"

struct walk {
    int mem_fd;
    uintptr_t page;
};

static int share_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct walk *wk = arg;
    /* The vDSO is the kernel's own mapping, not a file's: a forced write would fail. */
    if (info->dlpi_name && strstr(info->dlpi_name, "linux-vdso"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) || !(ph->p_flags & PF_R))
            continue;
        uintptr_t at = (info->dlpi_addr + ph->p_vaddr) & ~(wk->page - 1);
        unsigned char byte = *(const volatile unsigned char *)at;
        (void)!pwrite(wk->mem_fd, &byte, 1, (off_t)at); /* refused: the worker only faults more */
    }
    return 0;
}

void wsd_share_code_with_clones(void)
{
    struct walk wk = {.mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC),
                      .page = (uintptr_t)sysconf(_SC_PAGESIZE)};
    if (wk.mem_fd < 0)
        return;
    (void)dl_iterate_phdr(share_object, &wk);
    wsd_close(wk.mem_fd);
}
