/* SPDX-License-Identifier: MIT */
/* Socket activation: map each passed fd to its role by name, check its type, and lift it out of
 * the way of the fixed worker fds (3 and 4 are the dispatch queue and the report socket). */
#include "supervisor/activation.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "core/sys.h"

#define LIFT_ABOVE 16 /* setup_channels() moves its own fds down to 3 and 4 from up here */

struct role {
    const char *name;
    size_t offset;
    int (*is_right_kind)(int fd);
    const char *kind;
};

static int is_tcp_listener(int fd)
{
    return sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0);
}

static int is_unix_listener(int fd)
{
    return sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
}

static int is_fifo(int fd)
{
    return sd_is_fifo(fd, NULL);
}

static const struct role roles[] = {
    {"ws", offsetof(struct wsd_inherited, ws), is_tcp_listener, "a listening TCP socket"},
    {"wss", offsetof(struct wsd_inherited, wss), is_tcp_listener, "a listening TCP socket"},
    {"wsd-control", offsetof(struct wsd_inherited, control), is_unix_listener,
     "a listening unix stream socket"},
    {"wsd-upgrade", offsetof(struct wsd_inherited, upgrade), is_fifo, "a pipe"},
    {"wsd-metrics", offsetof(struct wsd_inherited, metrics), is_tcp_listener,
     "a listening TCP socket"},
};

#define ROLE_COUNT (sizeof(roles) / sizeof(roles[0]))

static const struct role *role_of(const char *name)
{
    for (size_t i = 0; i < ROLE_COUNT; i++)
        if (strcmp(roles[i].name, name) == 0)
            return &roles[i];
    return NULL;
}

/* The service manager's variables are outside the WSD_ table (core/config.c): they are read here
 * only to quote them in an error line. */
static const char *env_or_unset(const char *name)
{
    const char *v = secure_getenv(name);
    return v ? v : "(unset)";
}

static int take_one(struct wsd_inherited *ret, int fd, const char *name, FILE *err_out)
{
    const struct role *r = role_of(name);
    if (!r) {
        fprintf(err_out,
                "wsd: invalid LISTEN_FDNAMES: fd %d is named \"%s\": expected ws, wss, "
                "wsd-control, wsd-upgrade or wsd-metrics (FileDescriptorName= in the .socket "
                "unit)\n",
                fd, name);
        return -EINVAL;
    }
    int *slot = (int *)((char *)ret + r->offset);
    if (*slot >= 0) {
        fprintf(err_out,
                "wsd: invalid LISTEN_FDNAMES: \"%s\" names fds %d and %d: expected one "
                "socket per name\n",
                name, *slot, fd);
        return -EINVAL;
    }
    if (r->is_right_kind(fd) <= 0) {
        fprintf(err_out, "wsd: invalid LISTEN_FDS: fd %d (\"%s\") is not %s: expected %s\n", fd,
                name, r->kind, r->kind);
        return -EINVAL;
    }
    int lifted = fcntl(fd, F_DUPFD_CLOEXEC, LIFT_ABOVE);
    if (lifted < 0) {
        fprintf(err_out, "wsd: fcntl(F_DUPFD_CLOEXEC) failed while taking passed fd %d: %s\n", fd,
                strerror(errno));
        return -errno;
    }
    wsd_close(fd);
    int fl = fcntl(lifted, F_GETFL);
    if (fl >= 0)
        (void)fcntl(lifted, F_SETFL, fl | O_NONBLOCK);
    *slot = lifted;
    return 0;
}

int wsd_activation_take(struct wsd_inherited *ret, FILE *err_out)
{
    struct wsd_inherited in = {.ws = -1, .wss = -1, .control = -1, .upgrade = -1, .metrics = -1};
    char fds_value[64], names_value[256];
    snprintf(fds_value, sizeof(fds_value), "%s", env_or_unset("LISTEN_FDS"));
    snprintf(names_value, sizeof(names_value), "%s", env_or_unset("LISTEN_FDNAMES"));
    char **names = NULL;
    int n = sd_listen_fds_with_names(1, &names);
    if (n < 0) {
        fprintf(err_out,
                "wsd: invalid LISTEN_FDS=\"%s\" LISTEN_FDNAMES=\"%s\" (%s): expected N "
                "open fds from 3 on and N names\n",
                fds_value, names_value, strerror(-n));
        return -EINVAL;
    }
    int r = 0;
    for (int i = 0; i < n && r == 0; i++) {
        /* One unnamed socket (no FileDescriptorName=) is the plain listener. */
        const char *name = n == 1 && strcmp(names[i], "unknown") == 0 ? "ws" : names[i];
        r = take_one(&in, SD_LISTEN_FDS_START + i, name, err_out);
    }
    if (r == 0 && n > 0 && in.ws < 0 && in.wss < 0) {
        fprintf(err_out,
                "wsd: invalid LISTEN_FDNAMES=\"%s\": expected a ws or wss socket among "
                "them\n",
                names_value);
        r = -EINVAL;
    }
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    if (r < 0) {
        int *all[] = {&in.ws, &in.wss, &in.control, &in.upgrade, &in.metrics};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            *all[i] = wsd_close(*all[i]);
        return r;
    }
    *ret = in;
    return 0;
}

bool wsd_activation_has_listeners(const struct wsd_inherited *in)
{
    return in->ws >= 0 || in->wss >= 0;
}
