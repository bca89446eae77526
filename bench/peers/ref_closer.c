/* SPDX-License-Identifier: MIT */
/* ref_fork's exec'd child: a static binary without libc (built with -nostdlib -static), the
 * cheapest fresh process there is. The connection is fd 0. */
#include "ref_close.h"

#define REF_SYS_EXIT_GROUP 231

void _start(void)
{
    int r = ref_close_handshake(0);
    ref_sys(REF_SYS_EXIT_GROUP, r == 0 ? 0 : 1, 0, 0);
    for (;;)
        ;
}
