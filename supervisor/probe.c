/* SPDX-License-Identifier: MIT */
/* The test-probe handler: attempts from inside a real worker, so a test sees the sandbox as a
 * compromised worker would. Messages are "NAME" or "NAME ARG". */
#include "supervisor/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/conn.h"
#include "core/sys.h"
#include "proto/ws_codes.h"

/* 0 or -errno of one attempt. */
static int try_connect(int family, const char *arg)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int r;
    if (family == AF_INET) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(arg)),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    } else { /* an abstract unix socket: "\0" + arg */
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t n = strnlen(arg, sizeof(sa.sun_path) - 1);
        memcpy(sa.sun_path + 1, arg, n);
        r = connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n));
    }
    r = r < 0 ? -errno : 0;
    wsd_close(fd);
    return r;
}

static int try_socket(int family, int type, int protocol)
{
    int fd = socket(family, type | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return -errno;
    wsd_close(fd);
    return 0;
}

static int try_bind(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
    wsd_close(fd);
    return r;
}

/* A child created with clone flags; it exits at once and is reaped here. */
static int try_clone(unsigned long flags)
{
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    if (pid < 0)
        return -errno;
    siginfo_t si;
    (void)waitid(P_PID, (id_t)pid, &si, WEXITED);
    return 0;
}

/* A child that leaves the worker's process group and lives on: what a compromised worker could
 * leave behind. flags CLONE_PARENT: the supervisor's child at once (no exit signal, as a
 * hider would choose); 0: the worker's, adopted by the supervisor when the worker exits.
 * Returns its pid or -errno. */
static long try_escape(unsigned long flags)
{
    long pid = syscall(SYS_clone, flags ? flags : SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) {
        (void)setpgid(0, 0);
        for (;;)
            pause();
    }
    return pid < 0 ? -errno : pid;
}

static int try_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int r = fd < 0 ? -errno : 0;
    wsd_close(fd);
    return r;
}

static int run_probe(const char *name, const char *arg, char *out, size_t cap)
{
    if (strcmp(name, "nnp") == 0)
        return snprintf(out, cap, "nnp: %d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    if (strcmp(name, "seccomp") == 0)
        return snprintf(out, cap, "seccomp: %d", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
    if (strcmp(name, "escape-parent") == 0 || strcmp(name, "escape-group") == 0) {
        long pid = try_escape(name[7] == 'p' ? CLONE_PARENT : 0);
        return pid < 0 ? snprintf(out, cap, "%s: %s", name, strerrorname_np((int)-pid))
                       : snprintf(out, cap, "%s: pid %ld", name, pid);
    }
    int r;
    if (strcmp(name, "open") == 0)
        r = try_open(arg);
    else if (strcmp(name, "bind") == 0)
        r = try_bind();
    else if (strcmp(name, "connect") == 0)
        r = try_connect(AF_INET, arg);
    else if (strcmp(name, "abstract") == 0)
        r = try_connect(AF_UNIX, arg);
    else if (strcmp(name, "signal") == 0) /* the supervisor, outside the Landlock domain */
        r = kill(getppid(), 0) < 0 ? -errno : 0;
    else if (strcmp(name, "unshare") == 0)
        r = unshare(CLONE_NEWUTS) < 0 ? -errno : 0;
    else if (strcmp(name, "mount") == 0)
        r = mount("none", "/mnt", "tmpfs", 0, NULL) < 0 ? -errno : 0;
    else if (strcmp(name, "clone-newnet") == 0)
        r = try_clone(CLONE_NEWNET);
    else if (strcmp(name, "fork") == 0)
        r = try_clone(0);
    else if (strcmp(name, "packet") == 0) /* every connection's traffic on loopback */
        r = try_socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    else if (strcmp(name, "clone3") == 0)
        r = syscall(SYS_clone3, NULL, 0) < 0 ? -errno : 0;
    else if (strcmp(name, "keyctl") == 0)
        r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0) < 0 ? -errno : 0;
    else if (strcmp(name, "io_uring_setup") == 0) /* killed: no answer */
        r = syscall(SYS_io_uring_setup, 1, NULL) < 0 ? -errno : 0;
    else if (strcmp(name, "ptrace") == 0) /* killed: no answer */
        r = ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0 ? -errno : 0;
    else
        return snprintf(out, cap, "%s: unknown probe", name);
    return snprintf(out, cap, "%s: %s", name, r == 0 ? "ok" : strerrorname_np(-r));
}

static void on_message(struct wsd_conn *c, uint8_t opcode, const uint8_t *data, size_t len,
                       void *userdata)
{
    (void)userdata;
    char msg[256], out[300];
    if (opcode != WSD_OP_TEXT || len >= sizeof(msg))
        return;
    memcpy(msg, data, len);
    msg[len] = '\0';
    char *arg = strchr(msg, ' ');
    if (arg)
        *arg++ = '\0';
    int n = run_probe(msg, arg ? arg : "", out, sizeof(out));
    if (n > 0)
        (void)wsd_conn_send(c, WSD_OP_TEXT, (const uint8_t *)out, strlen(out));
}

const struct wsd_conn_handler wsd_probe_handler = {.on_message = on_message};
