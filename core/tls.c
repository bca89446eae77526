/* SPDX-License-Identifier: MIT */
/* wolfSSL behind the small interface of tls.h: context loading with the checks an operator
 * needs (readable, PEM, key matches, dates), and a non-blocking server session. */
#include "core/tls.h"
#include "core/tls_key.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/* Modern suites only: TLS 1.3, then ECDHE with AEAD for 1.2 (no RC4, no CBC). ChaCha20 first:
 * Debian's wolfSSL has no AES-NI (PLATFORM.md), so AES-GCM runs in portable C here. */
static const char cipher_list[] =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

static const char alpn_http11[] = "http/1.1";

struct wsd_tls_ctx {
    WOLFSSL_CTX *ctx;
    char describe[256];
};

struct wsd_tls {
    WOLFSSL *ssl;
    bool up;   /* handshake done */
    bool shut; /* close_notify sent */
};

static int check_dates(const char *cert_file, char *desc, size_t desc_cap, char *why,
                       size_t cap)
{
    WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_file(cert_file, WOLFSSL_FILETYPE_PEM);
    if (!x) {
        snprintf(why, cap, "%s: not a PEM certificate", cert_file);
        return -EINVAL;
    }
    int r = 0, days, secs;
    const WOLFSSL_ASN1_TIME *nb = wolfSSL_X509_get_notBefore(x);
    const WOLFSSL_ASN1_TIME *na = wolfSSL_X509_get_notAfter(x);
    /* diff(NULL = now, t): negative when t is in the past. */
    if (na && wolfSSL_ASN1_TIME_diff(&days, &secs, NULL, na) == WOLFSSL_SUCCESS &&
        (days < 0 || secs < 0)) {
        snprintf(why, cap, "%s: certificate expired", cert_file);
        r = -EINVAL;
    } else if (nb && wolfSSL_ASN1_TIME_diff(&days, &secs, NULL, nb) == WOLFSSL_SUCCESS &&
               (days > 0 || secs > 0)) {
        snprintf(why, cap, "%s: certificate not valid yet", cert_file);
        r = -EINVAL;
    }
    char subject[160] = "?", after[64] = "?";
    WOLFSSL_X509_NAME *name = wolfSSL_X509_get_subject_name(x);
    if (name)
        wolfSSL_X509_NAME_oneline(name, subject, sizeof(subject));
    if (na)
        wolfSSL_ASN1_TIME_to_string((WOLFSSL_ASN1_TIME *)na, after, sizeof(after));
    WOLFSSL_ASN1_INTEGER *serial = wolfSSL_X509_get_serialNumber(x);
    long sn = serial ? wolfSSL_ASN1_INTEGER_get(serial) : -1;
    snprintf(desc, desc_cap, "subject=%s serial=%ld notAfter=%s", subject, sn, after);
    wolfSSL_X509_free(x);
    return r;
}

int wsd_tls_ctx_load(const char *cert_file, const char *key_file, unsigned min_version,
                     struct wsd_tls_ctx **ret, char *why, size_t cap)
{
    static bool initialised;
    if (!initialised) {
        wolfSSL_Init();
        initialised = true;
    }
    if (access(cert_file, R_OK) < 0 || access(key_file, R_OK) < 0) {
        int e = errno;
        snprintf(why, cap, "%s: %s", access(cert_file, R_OK) < 0 ? cert_file : key_file,
                 strerror(e));
        return -e;
    }
    struct wsd_tls_ctx *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    int r = check_dates(cert_file, t->describe, sizeof(t->describe), why, cap);
    if (r < 0)
        goto fail;
    r = -EINVAL;
    t->ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    if (!t->ctx) {
        snprintf(why, cap, "wolfSSL_CTX_new() failed");
        goto fail;
    }
    if (wolfSSL_CTX_SetMinVersion(t->ctx, min_version == 13 ? WOLFSSL_TLSV1_3
                                                             : WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_cipher_list(t->ctx, cipher_list) != WOLFSSL_SUCCESS) {
        snprintf(why, cap, "cannot set the TLS version or cipher list");
        goto fail;
    }
    (void)wolfSSL_CTX_UseSupportedCurve(t->ctx, WOLFSSL_ECC_X25519);
    (void)wolfSSL_CTX_UseSupportedCurve(t->ctx, WOLFSSL_ECC_SECP256R1);
    /* No resumption: a ticket key or a session cache would be a secret shared by every worker
     * (and a cache in one worker is useless to the next connection's process anyway). */
    (void)wolfSSL_CTX_set_session_cache_mode(t->ctx, WOLFSSL_SESS_CACHE_OFF);
    (void)wolfSSL_CTX_NoTicketTLSv12(t->ctx);
    (void)wolfSSL_CTX_no_ticket_TLSv13(t->ctx);
    if (wolfSSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != WOLFSSL_SUCCESS) {
        snprintf(why, cap, "%s: not a usable PEM certificate chain", cert_file);
        goto fail;
    }
    if (wolfSSL_CTX_use_PrivateKey_file(t->ctx, key_file, WOLFSSL_FILETYPE_PEM) !=
        WOLFSSL_SUCCESS) {
        snprintf(why, cap, "%s: not a usable PEM private key", key_file);
        goto fail;
    }
    struct wsd_tls_key *k;
    r = wsd_tls_key_load(key_file, &k, why, cap);
    if (r == 0) {
        r = wsd_tls_key_check(k, key_file, cert_file, why, cap);
        wsd_tls_key_free(k);
    }
    if (r < 0)
        goto fail;
    *ret = t;
    return 0;
fail:
    wsd_tls_ctx_free(t);
    return r;
}

struct wsd_tls_ctx *wsd_tls_ctx_free(struct wsd_tls_ctx *t)
{
    if (t) {
        if (t->ctx)
            wolfSSL_CTX_free(t->ctx);
        free(t);
    }
    return NULL;
}

void wsd_tls_ctx_describe(const struct wsd_tls_ctx *t, char *out, size_t cap)
{
    snprintf(out, cap, "%s", t->describe);
}

struct wsd_tls *wsd_tls_new(struct wsd_tls_ctx *ctx, int fd)
{
    struct wsd_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ssl = wolfSSL_new(ctx->ctx);
    if (!t->ssl || wolfSSL_set_fd(t->ssl, fd) != WOLFSSL_SUCCESS)
        return wsd_tls_free(t);
    /* RFC 7301: offer http/1.1; a client asking for something else still gets served. */
    (void)wolfSSL_UseALPN(t->ssl, (char *)alpn_http11, sizeof(alpn_http11) - 1,
                          WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
    return t;
}

struct wsd_tls *wsd_tls_free(struct wsd_tls *t)
{
    if (t) {
        if (t->ssl)
            wolfSSL_free(t->ssl);
        free(t);
    }
    return NULL;
}

static int map_error(struct wsd_tls *t, int ret)
{
    int e = wolfSSL_get_error(t->ssl, ret);
    if (e == WOLFSSL_ERROR_WANT_READ)
        return WSD_TLS_WANT_READ;
    if (e == WOLFSSL_ERROR_WANT_WRITE)
        return WSD_TLS_WANT_WRITE;
    if (e == WOLFSSL_ERROR_ZERO_RETURN)
        return 0;
    if (e == SOCKET_PEER_CLOSED_E || e == SOCKET_ERROR_E)
        return -ECONNRESET;
    return -EPROTO;
}

int wsd_tls_handshake(struct wsd_tls *t, char *why, size_t cap)
{
    int ret = wolfSSL_accept(t->ssl);
    if (ret == WOLFSSL_SUCCESS) {
        t->up = true;
        return 0;
    }
    int r = map_error(t, ret);
    if (r == WSD_TLS_WANT_READ || r == WSD_TLS_WANT_WRITE)
        return r;
    int e = wolfSSL_get_error(t->ssl, ret);
    snprintf(why, cap, "%s (%d)", wolfSSL_ERR_reason_error_string((unsigned long)e), e);
    return -EPROTO;
}

ssize_t wsd_tls_read(struct wsd_tls *t, void *buf, size_t n)
{
    int ret = wolfSSL_read(t->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    return ret > 0 ? ret : map_error(t, ret);
}

ssize_t wsd_tls_write(struct wsd_tls *t, const void *buf, size_t n)
{
    int ret = wolfSSL_write(t->ssl, buf, n > 16384 ? 16384 : (int)n);
    if (ret > 0)
        return ret;
    int r = map_error(t, ret);
    return r == 0 ? -EPIPE : r;
}

bool wsd_tls_has_pending(struct wsd_tls *t)
{
    /* Decrypted bytes, or whole records read from the socket but not yet decrypted. */
    return wolfSSL_has_pending(t->ssl) != 0;
}

void wsd_tls_shutdown(struct wsd_tls *t)
{
    if (t->shut || !t->up) /* before the handshake, wolfSSL's alert was the last word */
        return;
    t->shut = true;
    (void)wolfSSL_shutdown(t->ssl);
}

const char *wsd_tls_version(struct wsd_tls *t)
{
    return wolfSSL_get_version(t->ssl);
}
