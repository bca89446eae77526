/* SPDX-License-Identifier: MIT */
/* The environment an exec program gets, as websocketd gives it (CGI/1.1 names, RFC 3875 4.1),
 * so existing scripts run unchanged. Header names and values become variables only when they
 * cannot smuggle in another variable. */
#ifndef WSD_CORE_EXEC_ENV_H
#define WSD_CORE_EXEC_ENV_H

#include <stdbool.h>
#include <stddef.h>

#define WSD_EXEC_ENV_MAX 256            /* variables */
#define WSD_EXEC_ENV_BYTES (160 * 1024) /* their text; a request is at most 64 KiB */

struct wsd_conn_request;

struct wsd_exec_env {
    char *vars[WSD_EXEC_ENV_MAX + 1]; /* NULL-terminated, for execve */
    size_t n;
    size_t used;
    char text[WSD_EXEC_ENV_BYTES];
};

/* Fill e for one connection: REMOTE_ADDR, REMOTE_HOST, REMOTE_PORT, SERVER_NAME, SERVER_PORT,
 * SERVER_PROTOCOL, SERVER_SOFTWARE, GATEWAY_INTERFACE, REQUEST_METHOD, REQUEST_URI,
 * SCRIPT_NAME, PATH_INFO, QUERY_STRING, HTTPS (on TLS), UNIQUE_ID, one HTTP_<NAME> per request
 * header (repeated headers joined with ", "), then passenv ("NAME=value" strings). A header is
 * left out when its name has anything but letters, digits and '-' (so '_' and '=' cannot alias
 * or inject a name), when its value has a control character, and for Proxy (httpoxy).
 * Returns 0, or -E2BIG when it does not fit (the caller refuses the connection). */
int wsd_exec_env_build(struct wsd_exec_env *e, const struct wsd_conn_request *req,
                       const char *script_name, const char *path_info,
                       char *const *passenv);

/* True if name is one the function above sets (a passed-through variable must not shadow it). */
bool wsd_exec_env_is_cgi_name(const char *name, size_t len);

#endif
