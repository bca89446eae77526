/* SPDX-License-Identifier: MIT */
/* Exit statuses of wsd and of its children, in one place. */
#ifndef WSD_SUPERVISOR_EXIT_H
#define WSD_SUPERVISOR_EXIT_H

enum wsd_exit {
    WSD_EXIT_OK = 0,      /* done: connection served, or asked to stop */
    WSD_EXIT_FAILURE = 1, /* this child failed; the supervisor replaces it */
    WSD_EXIT_CONFIG = 2,  /* wsd: bad configuration or environment at startup */
    WSD_EXIT_FATAL = 3,   /* a child found the host unusable (e.g. no io_uring): no respawn */
};

#endif
