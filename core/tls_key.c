/* SPDX-License-Identifier: MIT */
/* Private-key operations with wolfCrypt (see tls_key.h). */
#include "core/tls_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stddef.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

#define PEM_MAX 65536

enum kind { KIND_EC = 1, KIND_RSA };

struct wsd_tls_key {
    enum kind kind;
    WC_RNG rng;
    ecc_key ecc;
    RsaKey rsa;
};

struct wsd_tls_pubkey {
    enum kind kind;
    ecc_key ecc;
    RsaKey rsa;
};

/* read(2), not stdio: no library buffer keeps a copy of the key text after we wipe ours. */
static int read_file(const char *path, uint8_t *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    return (int)n;
}

int wsd_tls_key_load(const char *key_file, struct wsd_tls_key **ret, char *why, size_t cap)
{
    uint8_t *pem = malloc(PEM_MAX), *der = malloc(PEM_MAX);
    struct wsd_tls_key *k = calloc(1, sizeof(*k));
    int r = -ENOMEM;
    if (!pem || !der || !k)
        goto out;
    r = read_file(key_file, pem, PEM_MAX);
    if (r < 0) {
        snprintf(why, cap, "%s: %s", key_file, strerror(-r));
        goto out;
    }
    int len = wc_KeyPemToDer(pem, r, der, PEM_MAX, NULL);
    r = -EINVAL;
    if (len <= 0) {
        snprintf(why, cap, "%s: not a PEM private key", key_file);
        goto out;
    }
    word32 off = 0;
    if (wc_GetPkcs8TraditionalOffset(der, &off, (word32)len) < 0)
        off = 0; /* not PKCS#8: a traditional EC or RSA key */
    word32 idx = off;
    if (wc_InitRng(&k->rng) != 0)
        goto out;
    if (wc_ecc_init(&k->ecc) == 0 && wc_EccPrivateKeyDecode(der, &idx, &k->ecc, (word32)len) == 0) {
        k->kind = KIND_EC;
    } else {
        idx = off;
        if (wc_InitRsaKey(&k->rsa, NULL) == 0 &&
            wc_RsaPrivateKeyDecode(der, &idx, &k->rsa, (word32)len) == 0) {
            k->kind = KIND_RSA;
            (void)wc_RsaSetRNG(&k->rsa, &k->rng);
        }
    }
    if (!k->kind) {
        snprintf(why, cap, "%s: not an EC or RSA private key", key_file);
        goto out;
    }
    *ret = k;
    k = NULL;
    r = 0;
out:
    if (pem)
        explicit_bzero(pem, PEM_MAX);
    if (der)
        explicit_bzero(der, PEM_MAX);
    free(pem);
    free(der);
    wsd_tls_key_free(k);
    return r;
}

struct wsd_tls_key *wsd_tls_key_free(struct wsd_tls_key *k)
{
    if (k) {
        if (k->kind == KIND_EC)
            wc_ecc_free(&k->ecc);
        if (k->kind == KIND_RSA)
            wc_FreeRsaKey(&k->rsa);
        wc_FreeRng(&k->rng);
        explicit_bzero(k, sizeof(*k));
        free(k);
    }
    return NULL;
}

int wsd_tls_key_sign(struct wsd_tls_key *k, enum wsd_tls_sign_alg alg, int hash, int mgf,
                     const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
    word32 n = (word32)*out_len;
    int r;
    if (alg == WSD_TLS_SIGN_ECDSA && k->kind == KIND_EC) {
        r = wc_ecc_sign_hash(in, (word32)in_len, out, &n, &k->rng, &k->ecc);
        r = r == 0 ? (int)n : r;
    } else if (alg == WSD_TLS_SIGN_RSA_PKCS1 && k->kind == KIND_RSA) {
        r = wc_RsaSSL_Sign(in, (word32)in_len, out, n, &k->rsa, &k->rng);
    } else if (alg == WSD_TLS_SIGN_RSA_PSS && k->kind == KIND_RSA) {
        r = wc_RsaPSS_Sign(in, (word32)in_len, out, n, (enum wc_HashType)hash, mgf, &k->rsa,
                           &k->rng);
    } else {
        return -EINVAL;
    }
    if (r < 0)
        return r;
    *out_len = (size_t)r;
    return 0;
}

int wsd_tls_pubkey_load(const char *cert_file, struct wsd_tls_pubkey **ret)
{
    WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_file(cert_file, WOLFSSL_FILETYPE_PEM);
    if (!x)
        return -EINVAL;
    uint8_t der[4096];
    int len = (int)sizeof(der);
    int r = wolfSSL_X509_get_pubkey_buffer(x, der, &len);
    wolfSSL_X509_free(x);
    if (r != WOLFSSL_SUCCESS)
        return -EINVAL;
    struct wsd_tls_pubkey *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    word32 idx = 0;
    if (wc_ecc_init(&p->ecc) == 0 && wc_EccPublicKeyDecode(der, &idx, &p->ecc, (word32)len) == 0) {
        p->kind = KIND_EC;
    } else {
        idx = 0;
        if (wc_InitRsaKey(&p->rsa, NULL) == 0 &&
            wc_RsaPublicKeyDecode(der, &idx, &p->rsa, (word32)len) == 0)
            p->kind = KIND_RSA;
    }
    if (!p->kind) {
        wsd_tls_pubkey_free(p);
        return -EINVAL;
    }
    *ret = p;
    return 0;
}

struct wsd_tls_pubkey *wsd_tls_pubkey_free(struct wsd_tls_pubkey *p)
{
    if (p) {
        if (p->kind == KIND_EC)
            wc_ecc_free(&p->ecc);
        if (p->kind == KIND_RSA)
            wc_FreeRsaKey(&p->rsa);
        free(p);
    }
    return NULL;
}

int wsd_tls_pubkey_kind(const struct wsd_tls_pubkey *p, int *ret_size)
{
    *ret_size = p->kind == KIND_EC ? wc_ecc_size((ecc_key *)&p->ecc)
                                   : wc_RsaEncryptSize(&p->rsa);
    return p->kind;
}

int wsd_tls_pubkey_rsa_verify(struct wsd_tls_pubkey *p, uint8_t *sig, size_t sig_len,
                              uint8_t **ret_out, int pss, int hash, int mgf)
{
    if (p->kind != KIND_RSA)
        return -EINVAL;
    if (pss)
        return wc_RsaPSS_VerifyInline(sig, (word32)sig_len, ret_out, (enum wc_HashType)hash, mgf,
                                      &p->rsa);
    return wc_RsaSSL_VerifyInline(sig, (word32)sig_len, ret_out, &p->rsa);
}

int wsd_tls_key_check(struct wsd_tls_key *k, const char *key_file, const char *cert_file,
                      char *why, size_t cap)
{
    struct wsd_tls_pubkey *p;
    if (wsd_tls_pubkey_load(cert_file, &p) < 0) {
        snprintf(why, cap, "%s: no usable public key in the certificate", cert_file);
        return -EINVAL;
    }
    uint8_t hash[32], sig[WSD_TLS_SIG_MAX];
    size_t sig_len = sizeof(sig);
    bool ok = getrandom(hash, sizeof(hash), 0) == (ssize_t)sizeof(hash);
    if (ok && p->kind == KIND_EC) {
        int verified = 0;
        ok = wsd_tls_key_sign(k, WSD_TLS_SIGN_ECDSA, 0, 0, hash, sizeof(hash), sig, &sig_len) == 0 &&
             wc_ecc_verify_hash(sig, (word32)sig_len, hash, sizeof(hash), &verified, &p->ecc) == 0 &&
             verified == 1;
    } else if (ok) {
        uint8_t *plain = NULL;
        ok = wsd_tls_key_sign(k, WSD_TLS_SIGN_RSA_PKCS1, 0, 0, hash, sizeof(hash), sig,
                              &sig_len) == 0 &&
             wsd_tls_pubkey_rsa_verify(p, sig, sig_len, &plain, 0, 0, 0) == (int)sizeof(hash) &&
             memcmp(plain, hash, sizeof(hash)) == 0;
    }
    wsd_tls_pubkey_free(p);
    if (!ok) {
        snprintf(why, cap, "%s: key does not match the certificate in %s", key_file, cert_file);
        return -EINVAL;
    }
    return 0;
}

int wsd_tls_standin_der(const struct wsd_tls_pubkey *p, uint8_t *out, size_t cap)
{
    WC_RNG rng;
    if (wc_InitRng(&rng) != 0)
        return -ENOMEM;
    int r;
    if (p->kind == KIND_EC) {
        ecc_key k;
        wc_ecc_init(&k);
        r = wc_ecc_make_key_ex(&rng, wc_ecc_size((ecc_key *)&p->ecc), &k,
                               wc_ecc_get_curve_id(p->ecc.idx));
        if (r == 0)
            r = wc_EccKeyToDer(&k, out, (word32)cap);
        wc_ecc_free(&k);
    } else {
        RsaKey k;
        wc_InitRsaKey(&k, NULL);
        r = wc_MakeRsaKey(&k, wc_RsaEncryptSize(&p->rsa) * 8, WC_RSA_EXPONENT, &rng);
        if (r == 0)
            r = wc_RsaKeyToDer(&k, out, (word32)cap);
        wc_FreeRsaKey(&k);
    }
    wc_FreeRng(&rng);
    return r;
}

struct sign_request {
    uint32_t alg; /* enum wsd_tls_sign_alg */
    int32_t hash, mgf;
    uint32_t len;
    uint8_t in[512]; /* a hash or a DigestInfo: far less */
};

struct sign_answer {
    int32_t status; /* 0 or a negative code */
    uint32_t len;
    uint8_t sig[WSD_TLS_SIG_MAX];
};

static int send_fd(int chan, int fd)
{
    char byte = 0;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(chan, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

int wsd_tls_key_remote_sign(int chan_fd, int timeout_ms, enum wsd_tls_sign_alg alg, int hash,
                            int mgf, const uint8_t *in, size_t in_len, uint8_t *out,
                            size_t *out_len)
{
    struct sign_request q = {.alg = (uint32_t)alg, .hash = hash, .mgf = mgf,
                             .len = (uint32_t)in_len};
    if (in_len > sizeof(q.in))
        return -EINVAL;
    memcpy(q.in, in, in_len);
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
        return -errno;
    int r = send(sp[0], &q, sizeof(q), MSG_NOSIGNAL) == (ssize_t)sizeof(q) ? 0 : -errno;
    if (r == 0)
        r = send_fd(chan_fd, sp[1]);
    close(sp[1]);
    struct sign_answer a;
    if (r == 0) {
        struct pollfd p = {.fd = sp[0], .events = POLLIN};
        int n = poll(&p, 1, timeout_ms);
        ssize_t got = n == 1 ? recv(sp[0], &a, sizeof(a), MSG_DONTWAIT) : -1;
        if (n == 0)
            r = -ETIMEDOUT;
        else if (got == 0)
            r = -EPIPE;
        else if (got < (ssize_t)offsetof(struct sign_answer, sig))
            r = -EPROTO;
        else if (a.status < 0)
            r = a.status;
        else if (a.len > *out_len || a.len > (size_t)got - offsetof(struct sign_answer, sig))
            r = -EPROTO;
    }
    close(sp[0]);
    if (r < 0)
        return r;
    memcpy(out, a.sig, a.len);
    *out_len = a.len;
    return 0;
}

int wsd_tls_key_serve_one(struct wsd_tls_key *k, int chan_fd)
{
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof(u.buf)};
    ssize_t n = recvmsg(chan_fd, &mh, MSG_CMSG_CLOEXEC);
    if (n == 0)
        return -EPIPE;
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    int fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int f;
            memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (fd < 0)
                fd = f;
            else
                close(f); /* one answer per message: extra fds are dropped */
        }
    }
    if (fd < 0)
        return 0;
    struct sign_request q;
    struct sign_answer a = {0};
    /* The request was queued before the fd was passed: if it is not there, drop it. */
    ssize_t got = recv(fd, &q, sizeof(q), MSG_DONTWAIT);
    if (got == (ssize_t)sizeof(q) && q.len <= sizeof(q.in)) {
        size_t len = sizeof(a.sig);
        a.status = wsd_tls_key_sign(k, (enum wsd_tls_sign_alg)q.alg, q.hash, q.mgf, q.in, q.len,
                                    a.sig, &len);
        a.len = a.status == 0 ? (uint32_t)len : 0;
        (void)send(fd, &a, offsetof(struct sign_answer, sig) + a.len,
                   MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    close(fd);
    return 0;
}
