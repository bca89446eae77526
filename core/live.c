/* SPDX-License-Identifier: MIT */
/* The worker's published connection state and kill mailbox (see live.h). */
#include "core/live.h"

struct wsd_conn_live wsd_live = {.magic = WSD_LIVE_MAGIC};
struct wsd_kill_mailbox wsd_kill_mailbox;
