/* SPDX-License-Identifier: MIT */
/* wolfSSL behind the small interface of tls.h: context loading with the checks an operator
 * needs (readable, PEM, dates), a non-blocking server session, and the PK callbacks that send
 * every signature to the keyholder: wolfSSL holds only a stand-in key here. */
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
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/hash.h>

/* Modern suites only: TLS 1.3, then ECDHE with AEAD for 1.2 (no RC4, no CBC). ChaCha20 first:
 * Debian's wolfSSL has no AES-NI (PLATFORM.md), so AES-GCM runs in portable C here. */
static const char cipher_list[] =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

static const char alpn_http11[] = "http/1.1";

#define SIGN_TIMEOUT_MS 5000 /* the keyholder signs in microseconds to a few ms */

struct wsd_tls_ctx {
    WOLFSSL_CTX *ctx;
    int keyholder_fd;              /* the channel to the keyholder (not owned) */
    struct wsd_tls_pubkey *pubkey; /* the certificate's: checks RSA signatures */
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

static int sign_remote(WOLFSSL_CTX *unused, struct wsd_tls_ctx *t, enum wsd_tls_sign_alg alg,
                       int hash, int mgf, const unsigned char *in, unsigned int in_len,
                       unsigned char *out, word32 *out_len)
{
    (void)unused;
    size_t n = *out_len;
    int r = wsd_tls_key_remote_sign(t->keyholder_fd, SIGN_TIMEOUT_MS, alg, hash, mgf, in, in_len,
                                    out, &n);
    if (r < 0)
        return r < -1000 ? r : WOLFSSL_FATAL_ERROR; /* wolfCrypt codes pass through */
    *out_len = (word32)n;
    return 0;
}

static int ecc_sign(WOLFSSL *ssl, const unsigned char *in, unsigned int in_len,
                    unsigned char *out, word32 *out_len, const unsigned char *key_der,
                    unsigned int key_len, void *ctx)
{
    (void)ssl, (void)key_der, (void)key_len;
    return sign_remote(NULL, ctx, WSD_TLS_SIGN_ECDSA, 0, 0, in, in_len, out, out_len);
}

static int rsa_sign(WOLFSSL *ssl, const unsigned char *in, unsigned int in_len,
                    unsigned char *out, word32 *out_len, const unsigned char *key_der,
                    unsigned int key_len, void *ctx)
{
    (void)ssl, (void)key_der, (void)key_len;
    return sign_remote(NULL, ctx, WSD_TLS_SIGN_RSA_PKCS1, 0, 0, in, in_len, out, out_len);
}

/* The PSS callbacks get the hash as wolfSSL's OID sum (asn.h SHA256h...), while wolfCrypt's
 * PSS functions take enum wc_HashType. */
static int pss_hash(int oid_sum)
{
    switch (oid_sum) {
    case SHA256h:
        return WC_HASH_TYPE_SHA256;
    case SHA384h:
        return WC_HASH_TYPE_SHA384;
    case SHA512h:
        return WC_HASH_TYPE_SHA512;
    default:
        return WC_HASH_TYPE_NONE;
    }
}

static int rsa_pss_sign(WOLFSSL *ssl, const unsigned char *in, unsigned int in_len,
                        unsigned char *out, unsigned int *out_len, int hash, int mgf,
                        const unsigned char *key_der, unsigned int key_len, void *ctx)
{
    (void)ssl, (void)key_der, (void)key_len;
    return sign_remote(NULL, ctx, WSD_TLS_SIGN_RSA_PSS, pss_hash(hash), mgf, in, in_len, out,
                       out_len);
}

/* wolfSSL checks every RSA signature it made before sending it (a fault attack defence). Its
 * own check would use the stand-in key: check with the certificate's public key instead. */
static int rsa_sign_check(WOLFSSL *ssl, unsigned char *sig, unsigned int sig_len,
                          unsigned char **out, const unsigned char *key_der, unsigned int key_len,
                          void *ctx)
{
    (void)ssl, (void)key_der, (void)key_len;
    return wsd_tls_pubkey_rsa_verify(((struct wsd_tls_ctx *)ctx)->pubkey, sig, sig_len, out, 0,
                                     0, 0);
}

static int rsa_pss_sign_check(WOLFSSL *ssl, unsigned char *sig, unsigned int sig_len,
                              unsigned char **out, int hash, int mgf,
                              const unsigned char *key_der, unsigned int key_len, void *ctx)
{
    (void)ssl, (void)key_der, (void)key_len;
    return wsd_tls_pubkey_rsa_verify(((struct wsd_tls_ctx *)ctx)->pubkey, sig, sig_len, out, 1,
                                     pss_hash(hash), mgf);
}

/* wolfSSL wants a private key of the certificate's kind and size loaded (it picks cipher
 * suites and sizes buffers by it); a fresh throwaway one serves, and is wiped after loading. */
static int use_standin_key(struct wsd_tls_ctx *t, const char *cert_file, char *why, size_t cap)
{
    uint8_t der[4096];
    int n = wsd_tls_pubkey_load(cert_file, &t->pubkey);
    if (n == 0)
        n = wsd_tls_standin_der(t->pubkey, der, sizeof(der));
    if (n <= 0 || wolfSSL_CTX_use_PrivateKey_buffer(t->ctx, der, n, WOLFSSL_FILETYPE_ASN1) !=
                      WOLFSSL_SUCCESS) {
        snprintf(why, cap, "%s: the certificate's key is neither EC nor RSA", cert_file);
        return -EINVAL;
    }
    explicit_bzero(der, sizeof(der));
    wolfSSL_CTX_SetEccSignCb(t->ctx, ecc_sign);
    wolfSSL_CTX_SetEccSignCtx(t->ctx, t);
    wolfSSL_CTX_SetRsaSignCb(t->ctx, rsa_sign);
    wolfSSL_CTX_SetRsaSignCheckCb(t->ctx, rsa_sign_check);
    wolfSSL_CTX_SetRsaPssSignCb(t->ctx, rsa_pss_sign);
    wolfSSL_CTX_SetRsaPssSignCheckCb(t->ctx, rsa_pss_sign_check);
    return 0;
}

int wsd_tls_ctx_load(const char *cert_file, unsigned min_version, int keyholder_fd,
                     struct wsd_tls_ctx **ret, char *why, size_t cap)
{
    static bool initialised;
    if (!initialised) {
        wolfSSL_Init();
        initialised = true;
    }
    if (access(cert_file, R_OK) < 0) {
        int e = errno;
        snprintf(why, cap, "%s: %s", cert_file, strerror(e));
        return -e;
    }
    struct wsd_tls_ctx *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->keyholder_fd = keyholder_fd;
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
    r = use_standin_key(t, cert_file, why, cap);
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
        wsd_tls_pubkey_free(t->pubkey);
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
    wolfSSL_SetRsaSignCtx(t->ssl, ctx); /* the ECDSA context is set once on the WOLFSSL_CTX */
    wolfSSL_SetRsaPssSignCtx(t->ssl, ctx);
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
