/* SPDX-License-Identifier: MIT */
/* The heap and the template's stack next to the libraries (see layout.h). */
#include "supervisor/layout.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/prctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <ucontext.h>
#include <unistd.h>

#include "supervisor/exit.h"

/* The deepest a worker goes is a TLS handshake in wolfSSL: tens of kB. Only the pages used
 * cost memory; the rest is address space. */
#define STACK_SIZE (1u << 20)

extern char **environ;

void wsd_layout_heap_near_libs(void)
{
    if (WSD_ASAN_BUILD)
        return; /* ASan's allocator does not use brk */
    /* glibc's malloc grows the main arena with brk while brk succeeds; when it fails, malloc
     * maps 1 MB blocks instead (glibc's "MORECORE failure" fallback) and keeps doing so. The
     * kernel refuses to move the break into an existing mapping, so one page there is
     * enough. If the page cannot be placed, the heap stays where it was: only the layout
     * differs. */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    void *brk_now = sbrk(0);
    if (brk_now == (void *)-1)
        return;
    uintptr_t at = ((uintptr_t)brk_now + page - 1) & ~(page - 1);
    (void)mmap((void *)at, page, PROT_NONE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
}

/* The kernel's view of this process's layout (proc(5), /proc/PID/stat fields 26-28 and
 * 45-51), which PR_SET_MM_MAP takes whole. */
static int read_mm_map(struct prctl_mm_map *m)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold anything but this */
    if (!p)
        return -EINVAL;
    uint64_t v[52] = {0};
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok && field < 51; tok = strtok(NULL, " "))
        v[++field] = strtoull(tok, NULL, 10);
    if (field < 51)
        return -EINVAL;
    *m = (struct prctl_mm_map){
        .start_code = v[26], .end_code = v[27], .start_stack = v[28],
        .start_data = v[45], .end_data = v[46], .start_brk = v[47], .brk = (uintptr_t)sbrk(0),
        .arg_start = v[48], .arg_end = v[49], .env_start = v[50], .env_end = v[51],
        .exe_fd = (uint32_t)-1,
    };
    return 0;
}

static int find_stack(uintptr_t *lo, uintptr_t *hi)
{
    char line[512];
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -errno;
    int r = -ENOENT;
    while (r < 0 && fgets(line, sizeof(line), f))
        if (strstr(line, "[stack]") && sscanf(line, "%" SCNxPTR "-%" SCNxPTR, lo, hi) == 2)
            r = 0;
    fclose(f);
    return r;
}

/* environ's array and strings still lie on the old stack (unsetenv edits in place). */
static int copy_environ(void)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **copy = calloc(n + 1, sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(copy[i] = strdup(environ[i])))
            return -ENOMEM; /* the copies made so far stay: the template is short of memory */
    environ = copy;
    return 0;
}

static struct {
    void (*fn)(void *);
    void *arg;
    uintptr_t old_lo, old_hi;
} moving; /* makecontext passes only ints: the first frame on the new stack finds it here */

static void on_new_stack(void)
{
    (void)munmap((void *)moving.old_lo, moving.old_hi - moving.old_lo);
    moving.fn(moving.arg);
    _exit(WSD_EXIT_FAILURE);
}

int wsd_layout_move_stack(void (*fn)(void *), void *arg)
{
    if (WSD_ASAN_BUILD)
        return -ENOTSUP; /* ASan tracks the thread's one stack */
    struct prctl_mm_map m;
    uintptr_t lo, hi;
    int r = read_mm_map(&m);
    if (r == 0)
        r = find_stack(&lo, &hi);
    if (r < 0)
        return r;
    if (m.arg_start < lo || m.arg_end > hi || m.arg_end <= m.arg_start)
        return -EINVAL;
    size_t args_len = m.arg_end - m.arg_start;
    char *args = malloc(args_len);
    if (!args)
        return -ENOMEM;
    memcpy(args, (void *)(uintptr_t)m.arg_start, args_len);
    args[args_len - 1] = '\0';
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *stack = mmap(NULL, STACK_SIZE + page, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ucontext_t uc;
    if (stack == MAP_FAILED || getcontext(&uc) < 0)
        r = -errno;
    else
        r = copy_environ();
    if (r < 0) {
        if (stack != MAP_FAILED)
            (void)munmap(stack, STACK_SIZE + page);
        free(args);
        return r;
    }
    (void)mprotect(stack, page, PROT_NONE); /* an overflow faults instead of writing below */
    /* ps and /proc/PID/cmdline read the arguments where the kernel says they are; the
     * environment area becomes empty (a worker's /proc/PID/environ shows nothing). */
    m.arg_start = (uintptr_t)args;
    m.arg_end = (uintptr_t)args + args_len;
    m.env_start = m.env_end = m.arg_end;
    m.start_stack = (uintptr_t)stack + STACK_SIZE; /* in its top page: maps says [stack] */
    if (prctl(PR_SET_MM, PR_SET_MM_MAP, &m, sizeof(m), 0) < 0) {
        r = -errno;
        (void)munmap(stack, STACK_SIZE + page);
        free(args);
        return r;
    }
    program_invocation_name = args;
    char *slash = strrchr(args, '/');
    program_invocation_short_name = slash ? slash + 1 : args;

    moving.fn = fn;
    moving.arg = arg;
    moving.old_lo = lo;
    moving.old_hi = hi;
    uc.uc_stack = (stack_t){.ss_sp = stack + page, .ss_size = STACK_SIZE};
    uc.uc_link = NULL;
    makecontext(&uc, on_new_stack, 0);
    (void)setcontext(&uc);
    return -errno;
}
