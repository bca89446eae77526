/* SPDX-License-Identifier: MIT */
/* Capabilities through the raw capget/capset system calls (libcap would add a library for
 * two calls). */
#include "supervisor/caps.h"

#include <errno.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int wsd_caps_limit(uint64_t keep)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &h, d) < 0)
        return -errno;
    uint64_t permitted = (uint64_t)d[1].permitted << 32 | d[0].permitted;
    uint64_t effective = (uint64_t)d[1].effective << 32 | d[0].effective;
    if (permitted == 0)
        return 0; /* nothing to drop, and no CAP_SETPCAP to drop the bounding set with */
    /* The bounding set first: dropping from it needs CAP_SETPCAP, still held here by root. A
     * user given a few capabilities (systemd's AmbientCapabilities=) has no CAP_SETPCAP, and
     * no bounding set to worry about: it limits only what an exec can grant, and these
     * processes exec nothing but programs, under no_new_privs. */
    for (int cap = 0; cap < 64 && (effective >> CAP_SETPCAP & 1); cap++) {
        if (keep >> cap & 1)
            continue;
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
            break; /* past the last capability this kernel knows */
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            return -errno;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -errno;
    permitted &= keep;
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
        d[i].permitted = d[i].effective = (uint32_t)(permitted >> (32 * i));
        d[i].inheritable = 0;
    }
    return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}
