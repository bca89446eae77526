/* SPDX-License-Identifier: MIT */
/* The built-in echo handler: every message goes back whole, with its type. */
#ifndef WSD_CORE_ECHO_H
#define WSD_CORE_ECHO_H

#include <stddef.h>
#include <stdint.h>

struct wsd_conn;

void wsd_echo_on_message(struct wsd_conn *c, uint8_t opcode, const uint8_t *data, size_t len,
                         void *userdata);

/* Echo as a connection handler: on_message only, so the connection loop stays as lean as it
 * was before handlers had other hooks. */
extern const struct wsd_conn_handler wsd_echo_handler;

#endif
