/* SPDX-License-Identifier: MIT */
/* What the metrics listener answers. Reading is open to anyone who can reach the listener
 * (Prometheus needs no credentials; bind it to a private address). Ending a connection is the
 * one state-changing request: POST only, refused when it comes from another site (Origin,
 * Sec-Fetch-Site), and only with `Authorization: Bearer <WSD_ADMIN_TOKEN>`. No cookie is ever
 * read or set, so a page elsewhere cannot borrow an operator's session. */
#include "supervisor/metrics_http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/live.h"
#include "core/secret.h"
#include "proto/http_upgrade.h"

#define KILL_CODE_DEFAULT "1008"

static const char *status_text(int status)
{
    static const struct {
        int status;
        const char *text;
    } texts[] = {
        {200, "OK"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {413, "Content Too Large"},
        {431, "Request Header Fields Too Large"},
        {502, "Bad Gateway"},
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i].status == status)
            return texts[i].text;
    return "Error";
}

static void respond(struct wsd_buf *out, int status, const char *type, const char *extra,
                    const void *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\n%s\r\n",
                     status, status_text(status), type, len, extra ? extra : "");
    (void)wsd_buf_append(out, head, (size_t)n);
    (void)wsd_buf_append(out, body, len);
}

/* {"ok":false,"error":"why"}: why is wsd's own text or a control answer, escaped anyway. */
static void respond_json_result(struct wsd_buf *out, int status, const char *extra, bool ok,
                                const char *text)
{
    char body[512];
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"ok\":%s,\"%s\":\"", ok ? "true" : "false",
                                ok ? "message" : "error");
    for (const char *p = text; *p && n < sizeof(body) - 8; p++) {
        if (*p == '\n')
            continue;
        if (*p == '"' || *p == '\\')
            body[n++] = '\\';
        body[n++] = (unsigned char)*p < 0x20 ? '?' : *p;
    }
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\"}\n");
    respond(out, status, "application/json", extra, body, n);
}

void wsd_metrics_respond_error(struct wsd_buf *out, int status, const char *why)
{
    respond_json_result(out, status, NULL, false, why);
}

static bool view_is(struct wsd_http_view v, const char *s)
{
    return v.ptr && v.len == strlen(s) && memcmp(v.ptr, s, v.len) == 0;
}

/* Ask the supervisor; the answer without its "OK\n" goes to *body. Returns 0, or -EPROTO with
 * the "ERR ..." text in *body, or -errno. */
static int ask(int chan, const char *request, struct wsd_buf *body)
{
    int r = wsd_metrics_ask(chan, request, body);
    if (r < 0)
        return r;
    (void)wsd_buf_append(body, "", 1); /* a C string from here on */
    if (body->len >= 3 && memcmp(wsd_buf_head(body), "OK\n", 3) == 0) {
        wsd_buf_consume(body, 3);
        return 0;
    }
    return -EPROTO;
}

static void get_metrics(int chan, struct wsd_buf *out)
{
    struct wsd_buf m = {0};
    if (ask(chan, "metrics", &m) < 0)
        wsd_metrics_respond_error(out, 502, "the supervisor did not answer");
    else
        respond(out, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, wsd_buf_head(&m),
                m.len - 1);
    wsd_buf_done(&m);
}

/* One JSON document for the page: {"admin":…,"stats":{…},"connections":[…]}. */
static void get_state(const struct wsd_config *cfg, int chan, struct wsd_buf *out)
{
    struct wsd_buf stats = {0}, list = {0}, doc = {0};
    if (ask(chan, "stats json", &stats) < 0 || ask(chan, "list json", &list) < 0) {
        wsd_metrics_respond_error(out, 502, "the supervisor did not answer");
    } else {
        char head[64];
        int n = snprintf(head, sizeof(head),
                         "{\"admin\":%s,\"stats\":", cfg->admin_token_set ? "true" : "false");
        /* each answer is one JSON value, its newline and the NUL added by ask() */
        (void)wsd_buf_append(&doc, head, (size_t)n);
        (void)wsd_buf_append(&doc, wsd_buf_head(&stats), stats.len - 2);
        (void)wsd_buf_append(&doc, ",\"connections\":", 15);
        (void)wsd_buf_append(&doc, wsd_buf_head(&list), list.len - 2);
        (void)wsd_buf_append(&doc, "}\n", 2);
        respond(out, 200, "application/json", NULL, wsd_buf_head(&doc), doc.len);
    }
    wsd_buf_done(&stats);
    wsd_buf_done(&list);
    wsd_buf_done(&doc);
}

/* A request another site's page made: Sec-Fetch-Site (sent by every current browser) says so,
 * or an Origin that is not this listener's own. A request without either is not a browser's
 * cross-site one (curl, scripts): those still need the token. */
static const char *cross_site(const struct wsd_http_upgrade *req)
{
    struct wsd_http_view site = wsd_http_upgrade_header(req, "Sec-Fetch-Site");
    if (site.ptr && !view_is(site, "same-origin") && !view_is(site, "none"))
        return "cross-site request refused (Sec-Fetch-Site)";
    if (req->origin.ptr) {
        char self[160];
        int n = snprintf(self, sizeof(self), "http://%.*s", (int)req->host.len, req->host.ptr);
        if (n < 0 || (size_t)n != req->origin.len || memcmp(self, req->origin.ptr, (size_t)n) != 0)
            return "cross-site request refused (Origin does not match Host)";
    }
    return NULL;
}

/* RFC 6750 2.1: Authorization: Bearer b64token; the scheme is case-insensitive (RFC 9110
 * 11.1). */
static bool authorized(const struct wsd_config *cfg, const struct wsd_http_upgrade *req)
{
    struct wsd_http_view a = wsd_http_upgrade_header(req, "Authorization");
    if (!a.ptr || a.len < 8 || strncasecmp(a.ptr, "Bearer ", 7) != 0)
        return false;
    return wsd_secret_matches(a.ptr + 7, a.len - 7, cfg->admin_token_sha256);
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The value of key in an application/x-www-form-urlencoded body, decoded into out (cap
 * bytes with the NUL). Returns its length, -ENOENT, or -EINVAL (bad escape, a control
 * character, too long). */
static int form_value(const uint8_t *body, size_t len, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key), i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        if (end - i > klen && memcmp(body + i, key, klen) == 0 && body[i + klen] == '=') {
            size_t n = 0;
            for (size_t j = i + klen + 1; j < end; j++) {
                int c = body[j];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    if (j + 2 >= end)
                        return -EINVAL;
                    int h = hex((char)body[j + 1]), l = hex((char)body[j + 2]);
                    if (h < 0 || l < 0)
                        return -EINVAL;
                    c = h << 4 | l;
                    j += 2;
                }
                if (c < 0x20 || c == 0x7f || n + 1 >= cap)
                    return -EINVAL; /* a newline would end the control request early */
                out[n++] = (char)c;
            }
            out[n] = '\0';
            return (int)n;
        }
        i = end + 1;
    }
    return -ENOENT;
}

static bool all_digits(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static void post_kill(const struct wsd_config *cfg, int chan, const struct wsd_http_upgrade *req,
                      const uint8_t *body, size_t len, struct wsd_buf *out)
{
    const char *why = cross_site(req);
    if (why) {
        wsd_metrics_respond_error(out, 403, why);
        return;
    }
    if (!cfg->admin_token_set) {
        wsd_metrics_respond_error(out, 403, "read-only: WSD_ADMIN_TOKEN is not set");
        return;
    }
    if (!authorized(cfg, req)) {
        respond_json_result(out, 401, "WWW-Authenticate: Bearer realm=\"wsd\"\r\n", false,
                            "a valid 'Authorization: Bearer <WSD_ADMIN_TOKEN>' is required");
        return;
    }
    char id[24], code[8] = KILL_CODE_DEFAULT, reason[WSD_KILL_REASON_MAX + 1] = "";
    int ri = form_value(body, len, "id", id, sizeof(id));
    int rc = form_value(body, len, "code", code, sizeof(code));
    int rr = form_value(body, len, "reason", reason, sizeof(reason));
    if (ri < 0 || !all_digits(id, 15) || (rc != -ENOENT && (rc < 0 || !all_digits(code, 5))) ||
        (rr < 0 && rr != -ENOENT)) {
        wsd_metrics_respond_error(out, 400,
                                  "expected id=N, optional code=N and reason=TEXT "
                                  "(at most 123 bytes, no control characters)");
        return;
    }
    char line[256];
    snprintf(line, sizeof(line), "kill %s %s 0 %s", id, code, reason);
    struct wsd_buf a = {0};
    int r = ask(chan, line, &a);
    const char *text = a.len ? (const char *)wsd_buf_head(&a) : "";
    if (r == 0)
        respond_json_result(out, 200, NULL, true, text);
    else if (r == -EPROTO)
        respond_json_result(out, strstr(text, "no such connection") ? 404 : 400, NULL, false,
                            strncmp(text, "ERR ", 4) == 0 ? text + 4 : text);
    else
        wsd_metrics_respond_error(out, 502, "the supervisor did not answer");
    wsd_buf_done(&a);
}

/* The page's own script may only talk to this listener; nothing may frame it. */
#define PAGE_HEADERS                                                                               \
    "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "                    \
    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; "              \
    "form-action 'none'; frame-ancestors 'none'\r\n"                                               \
    "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"

void wsd_metrics_route(const struct wsd_config *cfg, int chan, const struct wsd_http_upgrade *req,
                       const uint8_t *body, size_t body_len, struct wsd_buf *out)
{
    struct wsd_http_view path = req->target;
    const char *q = memchr(path.ptr, '?', path.len);
    if (q)
        path.len = (size_t)(q - path.ptr);
    bool get = view_is(req->method, "GET"), post = view_is(req->method, "POST");
    if (view_is(path, "/api/kill")) {
        if (post)
            post_kill(cfg, chan, req, body, body_len, out);
        else
            respond_json_result(out, 405, "Allow: POST\r\n", false, "POST only");
        return;
    }
    bool known = view_is(path, "/") || view_is(path, "/metrics") || view_is(path, "/api/state");
    if (!known) {
        wsd_metrics_respond_error(out, 404, "no such page");
    } else if (!get) {
        respond_json_result(out, 405, "Allow: GET\r\n", false, "GET only");
    } else if (view_is(path, "/")) {
        respond(out, 200, "text/html; charset=utf-8", PAGE_HEADERS, wsd_dashboard_html,
                wsd_dashboard_html_len());
    } else if (view_is(path, "/metrics")) {
        get_metrics(chan, out);
    } else {
        get_state(cfg, chan, out);
    }
}
