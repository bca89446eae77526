/* SPDX-License-Identifier: MIT */
/* What a compromised worker (or exec program) is kept from. seccomp: io_uring (its operations
 * bypass seccomp), ptrace and process_vm_* (other processes' memory), bpf, kernel modules and
 * kexec kill the process with SIGSYS; mounts, namespaces, keyrings and the clock fail with
 * EPERM; clone3 fails with ENOSYS (its flags are out of the filter's sight, and libc falls
 * back to clone, whose flags are checked). Landlock: the filesystem is closed but for what the
 * handler needs (/dev/urandom for TLS; what programs need for exec), TCP bind is refused
 * (connect too, but for exec), and signals and abstract unix sockets cannot leave the domain. */
#include "supervisor/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/sys.h"

/* Landlock constants newer than Debian 12's <linux/landlock.h> (ABI 1-3): ABI 4 added TCP,
 * ABI 5 device ioctls, ABI 6 scoping. */
#define LL_ACCESS_FS_TRUNCATE (1ULL << 14)
#define LL_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#define LL_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LL_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)

struct ll_ruleset_attr { /* struct landlock_ruleset_attr as of ABI 6 */
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

static struct sock_fprog filter; /* compiled once by wsd_sandbox_prepare */

static const int kill_calls[] = {
    SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter),    SCMP_SYS(io_uring_register),
    SCMP_SYS(ptrace),         SCMP_SYS(process_vm_readv),  SCMP_SYS(process_vm_writev),
    SCMP_SYS(bpf),            SCMP_SYS(init_module),       SCMP_SYS(finit_module),
    SCMP_SYS(delete_module),  SCMP_SYS(kexec_load),        SCMP_SYS(kexec_file_load),
};

static const int eperm_calls[] = {
    SCMP_SYS(mount),        SCMP_SYS(umount2),       SCMP_SYS(pivot_root),
    SCMP_SYS(chroot),       SCMP_SYS(unshare),       SCMP_SYS(setns),
    SCMP_SYS(move_mount),   SCMP_SYS(open_tree),     SCMP_SYS(fsopen),
    SCMP_SYS(fsconfig),     SCMP_SYS(fsmount),       SCMP_SYS(fspick),
    SCMP_SYS(mount_setattr), SCMP_SYS(add_key),      SCMP_SYS(request_key),
    SCMP_SYS(keyctl),       SCMP_SYS(clock_settime), SCMP_SYS(clock_adjtime),
    SCMP_SYS(adjtimex),     SCMP_SYS(settimeofday),  SCMP_SYS(swapon),
    SCMP_SYS(swapoff),      SCMP_SYS(reboot),        SCMP_SYS(acct),
};

/* clone flags that create namespaces: refused (legacy clone passes flags in a register, so
 * the filter can see them). */
static const uint64_t clone_ns_flags[] = {
    CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
    CLONE_NEWCGROUP,
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int build_rules(scmp_filter_ctx ctx)
{
    int r = 0;
    for (size_t i = 0; r == 0 && i < COUNT(kill_calls); i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, kill_calls[i], 0);
    for (size_t i = 0; r == 0 && i < COUNT(eperm_calls); i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), eperm_calls[i], 0);
    for (size_t i = 0; r == 0 && i < COUNT(clone_ns_flags); i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags[i], clone_ns_flags[i]));
    if (r == 0)
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    return r;
}

/* libseccomp 2.5 exports only to an fd: through a memfd into memory, once. */
static int export_filter(scmp_filter_ctx ctx)
{
    int fd = memfd_create("wsd-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = seccomp_export_bpf(ctx, fd);
    struct stat st;
    if (r == 0 && fstat(fd, &st) < 0)
        r = -errno;
    if (r == 0 && (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) != 0))
        r = -EINVAL;
    struct sock_filter *prog = r == 0 ? malloc((size_t)st.st_size) : NULL;
    if (r == 0 && !prog)
        r = -ENOMEM;
    if (r == 0 && pread(fd, prog, (size_t)st.st_size, 0) != st.st_size)
        r = -EIO;
    wsd_close(fd);
    if (r < 0) {
        free(prog);
        return r;
    }
    filter.len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
    filter.filter = prog;
    return 0;
}

int wsd_sandbox_prepare(const struct wsd_config *cfg, FILE *err)
{
    if (!cfg->sandbox || !cfg->seccomp)
        return 0;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        fprintf(err, "wsd: seccomp_init() failed while building the worker filter\n");
        return -ENOMEM;
    }
    int r = build_rules(ctx);
    if (r == 0)
        r = export_filter(ctx);
    seccomp_release(ctx);
    if (r < 0)
        fprintf(err, "wsd: building the worker seccomp filter failed: %s (WSD_SECCOMP=off "
                     "runs without it)\n", strerror(-r));
    return r;
}

/* ---- Landlock */

static int add_path(int ruleset, const char *path, uint64_t access)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno; /* e.g. no /dev/shm here: nothing to allow */
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) /* files take file rights only */
        access &= LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                  LANDLOCK_ACCESS_FS_EXECUTE | LL_ACCESS_FS_TRUNCATE | LL_ACCESS_FS_IOCTL_DEV;
    struct landlock_path_beneath_attr pb = {.allowed_access = access, .parent_fd = fd};
    int r = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0
                ? -errno
                : 0;
    wsd_close(fd);
    return r;
}

/* The exec handler runs arbitrary programs: they may read and execute what their user may,
 * and write only in the temporary directories and /dev/null. */
static int allow_exec_paths(int ruleset, uint64_t fs)
{
    uint64_t read = fs & (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
                          LANDLOCK_ACCESS_FS_EXECUTE | LL_ACCESS_FS_IOCTL_DEV);
    int r = add_path(ruleset, "/", read);
    static const char *const writable[] = {"/tmp", "/var/tmp", "/dev/shm", "/dev/null"};
    for (size_t i = 0; r == 0 && i < COUNT(writable); i++)
        r = add_path(ruleset, writable[i], fs);
    return r;
}

static int enter_landlock(const struct wsd_config *cfg, int *ret_abi)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    *ret_abi = abi < 0 ? 0 : (int)abi;
    if (abi < 1)
        return 0; /* no Landlock on this kernel: logged by the caller */
    bool exec = cfg->handler == WSD_HANDLER_EXEC;
    struct ll_ruleset_attr attr = {.handled_access_fs = (1ULL << 13) - 1}; /* ABI 1 */
    size_t size = sizeof(attr.handled_access_fs);
    if (abi >= 2)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        attr.handled_access_fs |= LL_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        attr.handled_access_fs |= LL_ACCESS_FS_IOCTL_DEV;
    if (abi >= 4) {
        attr.handled_access_net = LL_ACCESS_NET_BIND_TCP | (exec ? 0 : LL_ACCESS_NET_CONNECT_TCP);
        size = offsetof(struct ll_ruleset_attr, scoped);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
        size = sizeof(attr);
    }
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0)
        return -errno;
    /* Other handlers read one file: wolfSSL seeds each TLS session's RNG from /dev/urandom. */
    int r = exec ? allow_exec_paths(ruleset, attr.handled_access_fs)
                 : add_path(ruleset, "/dev/urandom", LANDLOCK_ACCESS_FS_READ_FILE);
    if (r == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
        r = -errno;
    wsd_close(ruleset);
    return r;
}

int wsd_sandbox_program_ruleset(const struct wsd_config *cfg)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (!cfg->sandbox || abi < 1)
        return -1;
    /* A domain must handle something: making device nodes, which no program needs. Before
     * ABI 6 the nested domain still stops ptrace (and /proc/PID/mem, environ) across. */
    struct ll_ruleset_attr attr = {
        .handled_access_fs = LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_CHAR};
    size_t size = sizeof(attr.handled_access_fs);
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
        size = sizeof(attr);
    }
    int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0); /* CLOEXEC */
    return fd < 0 ? -1 : fd;
}

int wsd_sandbox_enter(const struct wsd_config *cfg)
{
    if (!cfg->sandbox)
        return 0;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    int abi;
    int r = enter_landlock(cfg, &abi);
    if (r < 0) {
        wsd_log_error(r, "landlock_restrict_self() failed while sandboxing the worker template");
        return r;
    }
    if (abi == 0)
        wsd_log_warn(0, "Landlock is not available on this kernel: workers get no filesystem "
                        "or network restriction, ignoring");
    if (cfg->seccomp && filter.filter &&
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter) < 0) {
        r = -errno;
        wsd_log_error(r, "seccomp() failed while loading the worker filter");
        return r;
    }
    wsd_log_debug("sandbox: no_new_privs, Landlock ABI %d, seccomp %s", abi,
                  cfg->seccomp ? "on" : "off");
    return 0;
}
