/* SPDX-License-Identifier: MIT */
/* Echo: the handler `make run` starts with, and the one the tests and benchmarks drive. */
#include "core/echo.h"

#include "core/conn.h"

void wsd_echo_on_message(struct wsd_conn *c, uint8_t opcode, const uint8_t *data, size_t len,
                         void *userdata)
{
    (void)userdata;
    (void)wsd_conn_send(c, opcode, data, len);
}

const struct wsd_conn_handler wsd_echo_handler = {.on_message = wsd_echo_on_message};
