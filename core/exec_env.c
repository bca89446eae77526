/* SPDX-License-Identifier: MIT */
/* CGI-style variables for an exec program, built in one fixed arena per connection. */
#include "core/exec_env.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/conn.h"
#include "core/handoff.h"
#include "core/listen.h"
#include "proto/http_upgrade.h"

static const char *const cgi_names[] = {
    "REMOTE_ADDR",    "REMOTE_HOST",   "REMOTE_PORT",       "SERVER_NAME",
    "SERVER_PORT",    "SERVER_PROTOCOL", "SERVER_SOFTWARE", "GATEWAY_INTERFACE",
    "REQUEST_METHOD", "REQUEST_URI",   "SCRIPT_NAME",       "PATH_INFO",
    "QUERY_STRING",   "HTTPS",         "UNIQUE_ID",         NULL,
};

bool wsd_exec_env_is_cgi_name(const char *name, size_t len)
{
    if (len >= 5 && strncmp(name, "HTTP_", 5) == 0)
        return true;
    for (size_t i = 0; cgi_names[i]; i++)
        if (strlen(cgi_names[i]) == len && strncmp(cgi_names[i], name, len) == 0)
            return true;
    return false;
}

/* Append "NAME=" + the formatted value as one variable. Returns 0 or -E2BIG. */
__attribute__((format(printf, 3, 4))) static int add(struct wsd_exec_env *e, const char *name,
                                                    const char *fmt, ...)
{
    if (e->n == WSD_EXEC_ENV_MAX)
        return -E2BIG;
    char *start = e->text + e->used;
    size_t room = sizeof(e->text) - e->used;
    int a = snprintf(start, room, "%s=", name);
    if (a < 0 || (size_t)a >= room)
        return -E2BIG;
    va_list ap;
    va_start(ap, fmt);
    int b = vsnprintf(start + a, room - (size_t)a, fmt, ap);
    va_end(ap);
    if (b < 0 || (size_t)(a + b) >= room)
        return -E2BIG;
    e->used += (size_t)(a + b) + 1;
    e->vars[e->n++] = start;
    e->vars[e->n] = NULL;
    return 0;
}

static bool header_name_ok(const struct wsd_http_view *v)
{
    for (size_t i = 0; i < v->len; i++) {
        char ch = v->ptr[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
    }
    return v->len > 0 && !(v->len == 5 && strncasecmp(v->ptr, "Proxy", 5) == 0);
}

static bool header_value_ok(const struct wsd_http_view *v)
{
    for (size_t i = 0; i < v->len; i++) {
        unsigned char ch = (unsigned char)v->ptr[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) /* RFC 9110 5.5: no CTLs in a value */
            return false;
    }
    return true;
}

static bool same_name(const struct wsd_http_view *a, const struct wsd_http_view *b)
{
    return a->len == b->len && strncasecmp(a->ptr, b->ptr, a->len) == 0;
}

/* HTTP_<NAME>=value[, value of a repeated header...] for header i, unless an earlier header
 * of the same name already carried it. */
static int add_header(struct wsd_exec_env *e, const struct wsd_http_upgrade *http, size_t i)
{
    const struct wsd_http_header *h = &http->headers[i];
    if (!header_name_ok(&h->name) || !header_value_ok(&h->value))
        return 0;
    for (size_t j = 0; j < i; j++)
        if (same_name(&http->headers[j].name, &h->name) &&
            header_value_ok(&http->headers[j].value))
            return 0;
    char name[5 + 256];
    if (h->name.len > 255)
        return 0;
    memcpy(name, "HTTP_", 5);
    for (size_t k = 0; k < h->name.len; k++) {
        char ch = h->name.ptr[k];
        name[5 + k] = ch == '-' ? '_' : (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
    }
    name[5 + h->name.len] = '\0';
    int r = add(e, name, "%.*s", (int)h->value.len, h->value.ptr);
    for (size_t j = i + 1; r == 0 && j < http->num_headers; j++) {
        const struct wsd_http_header *o = &http->headers[j];
        if (!same_name(&o->name, &h->name) || !header_value_ok(&o->value))
            continue;
        /* RFC 9110 5.3: repeated field lines are one comma-separated list. Extend in place:
         * this variable is the last one written. */
        size_t room = sizeof(e->text) - e->used;
        if (o->value.len + 3 > room)
            return -E2BIG;
        char *at = e->text + e->used - 1; /* its NUL */
        memcpy(at, ", ", 2);
        memcpy(at + 2, o->value.ptr, o->value.len);
        at[2 + o->value.len] = '\0';
        e->used += o->value.len + 2;
    }
    return r;
}

/* The Host header without its port ("[::1]:8080" -> "::1"). */
static void server_name(const struct wsd_http_view *host, const char **ret, int *ret_len)
{
    const char *p = host->ptr ? host->ptr : "";
    size_t n = host->ptr ? host->len : 0;
    if (n > 0 && p[0] == '[') {
        const char *end = memchr(p, ']', n);
        *ret = p + 1;
        *ret_len = end ? (int)(end - p - 1) : (int)n - 1;
        return;
    }
    const char *colon = memchr(p, ':', n);
    *ret = p;
    *ret_len = colon ? (int)(colon - p) : (int)n;
}

/* "1.2.3.4:5" or "[::1]:5" -> address and port, as the connection logs format them. */
static void split_addr(const struct sockaddr_storage *ss, char addr[WSD_ADDR_STRLEN],
                       const char **ret_port)
{
    wsd_addr_format(ss, addr);
    char *colon = strrchr(addr, ':');
    *ret_port = "";
    if (!colon)
        return;
    *colon = '\0';
    *ret_port = colon + 1;
    if (addr[0] == '[') {
        size_t n = strlen(addr);
        memmove(addr, addr + 1, n);
        if (n >= 2 && addr[n - 2] == ']')
            addr[n - 2] = '\0';
    }
}

int wsd_exec_env_build(struct wsd_exec_env *e, const struct wsd_conn_request *req,
                       const char *script_name, const char *path_info, char *const *passenv)
{
    const struct wsd_http_upgrade *http = req->http;
    e->n = e->used = 0;
    e->vars[0] = NULL;
    char peer[WSD_ADDR_STRLEN], local[WSD_ADDR_STRLEN];
    const char *peer_port, *local_port, *sname;
    int sname_len;
    split_addr(&req->handoff->peer, peer, &peer_port);
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof(ss);
    (void)getsockname(req->fd, (struct sockaddr *)&ss, &sl);
    split_addr(&ss, local, &local_port);
    server_name(&http->host, &sname, &sname_len);
    const char *target = http->target.ptr;
    int tlen = (int)http->target.len;
    const char *q = memchr(target, '?', (size_t)tlen);
    int r = 0;
    r = r ? r : add(e, "GATEWAY_INTERFACE", "websocketd-CGI/0.1");
    r = r ? r : add(e, "SERVER_SOFTWARE", "wsd");
    r = r ? r : add(e, "SERVER_PROTOCOL", "HTTP/1.1");
    r = r ? r : add(e, "SERVER_NAME", "%.*s", sname_len, sname);
    r = r ? r : add(e, "SERVER_PORT", "%s", local_port);
    r = r ? r : add(e, "REMOTE_ADDR", "%s", peer);
    r = r ? r : add(e, "REMOTE_HOST", "%s", peer);
    r = r ? r : add(e, "REMOTE_PORT", "%s", peer_port);
    r = r ? r : add(e, "REQUEST_METHOD", "GET");
    r = r ? r : add(e, "REQUEST_URI", "%.*s", tlen, target);
    r = r ? r : add(e, "SCRIPT_NAME", "%s", script_name);
    r = r ? r : add(e, "PATH_INFO", "%s", path_info);
    r = r ? r : add(e, "QUERY_STRING", "%.*s", q ? (int)(target + tlen - q - 1) : 0, q ? q + 1 : "");
    r = r ? r : add(e, "UNIQUE_ID", "%" PRIu64, req->handoff->conn_id);
    if (r == 0 && (req->handoff->flags & WSD_HANDOFF_TLS))
        r = add(e, "HTTPS", "on");
    for (size_t i = 0; r == 0 && i < http->num_headers; i++)
        r = add_header(e, http, i);
    for (size_t i = 0; r == 0 && passenv && passenv[i]; i++) {
        if (e->n == WSD_EXEC_ENV_MAX)
            return -E2BIG;
        e->vars[e->n++] = passenv[i]; /* prepared at startup: lives as long as the process */
        e->vars[e->n] = NULL;
    }
    return r;
}
