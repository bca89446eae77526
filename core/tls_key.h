/* SPDX-License-Identifier: MIT */
/* The TLS private key as wolfCrypt objects: load it from PEM, sign with it the three ways TLS
 * asks (ECDSA, RSA PKCS#1 v1.5, RSA-PSS), and check it against a certificate by signing and
 * verifying with the certificate's public key. Debian's wolfSSL_CTX_check_private_key accepts
 * any key of the right type, so it cannot tell a mismatched pair. */
#ifndef WSD_CORE_TLS_KEY_H
#define WSD_CORE_TLS_KEY_H

#include <stddef.h>
#include <stdint.h>

enum wsd_tls_sign_alg {
    WSD_TLS_SIGN_ECDSA = 1,  /* in: the hash; out: DER signature */
    WSD_TLS_SIGN_RSA_PKCS1,  /* in: the DigestInfo to pad and sign */
    WSD_TLS_SIGN_RSA_PSS,    /* in: the hash; with hash type and MGF */
};

#define WSD_TLS_SIG_MAX 1024 /* RSA-8192 */

struct wsd_tls_key;    /* a private key */
struct wsd_tls_pubkey; /* a certificate's public key */

/* Load a PEM private key (PKCS#8 or traditional, EC or RSA). Returns 0, or -errno with one
 * reason naming the file in why. */
int wsd_tls_key_load(const char *key_file, struct wsd_tls_key **ret, char *why, size_t cap);

/* Wipe and release; returns NULL. */
struct wsd_tls_key *wsd_tls_key_free(struct wsd_tls_key *k);

/* Sign in[0..in_len) as alg. hash and mgf are wolfCrypt's (RSA-PSS only). *out_len holds out's
 * size and gets the signature's. Returns 0 or a negative wolfCrypt/errno code. */
int wsd_tls_key_sign(struct wsd_tls_key *k, enum wsd_tls_sign_alg alg, int hash, int mgf,
                     const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len);

/* The public key of the first certificate in a PEM file. Returns 0 or -EINVAL. */
int wsd_tls_pubkey_load(const char *cert_file, struct wsd_tls_pubkey **ret);
struct wsd_tls_pubkey *wsd_tls_pubkey_free(struct wsd_tls_pubkey *p);

/* "ec" with the curve's key size in bytes, or "rsa" with the modulus size in bytes. */
int wsd_tls_pubkey_kind(const struct wsd_tls_pubkey *p, int *ret_size);

/* Verify an RSA signature in place (PKCS#1 v1.5, or PSS when pss with hash, mgf): *ret_out
 * points at the recovered data inside sig. Returns its length or a negative code. */
int wsd_tls_pubkey_rsa_verify(struct wsd_tls_pubkey *p, uint8_t *sig, size_t sig_len,
                              uint8_t **ret_out, int pss, int hash, int mgf);

/* Does the key belong to the certificate? Signs a random hash and verifies it. Returns 0, or
 * -EINVAL with "KEY: does not match the certificate in CERT" in why. */
int wsd_tls_key_check(struct wsd_tls_key *k, const char *key_file, const char *cert_file,
                      char *why, size_t cap);

/* DER of a new throwaway private key of the same kind and size as p: the worker's stand-in,
 * which wolfSSL needs loaded while every signature really comes from the keyholder. Returns
 * its length or a negative code. */
int wsd_tls_standin_der(const struct wsd_tls_pubkey *p, uint8_t *out, size_t cap);

/* The signing protocol between workers and the keyholder. A worker makes a socketpair per
 * request, writes the request into one end, passes the other end over the shared channel
 * (SCM_RIGHTS) and reads the answer from its end: answers cannot reach the wrong worker, and
 * a worker that never asks properly cannot stall the keyholder (the request is already queued
 * when the fd arrives). */

/* Worker side: sign through the keyholder behind chan_fd, waiting at most timeout_ms. Same
 * results as wsd_tls_key_sign; -ETIMEDOUT, -EPIPE (keyholder gone) or -EPROTO besides. */
int wsd_tls_key_remote_sign(int chan_fd, int timeout_ms, enum wsd_tls_sign_alg alg, int hash,
                            int mgf, const uint8_t *in, size_t in_len, uint8_t *out,
                            size_t *out_len);

/* Keyholder side: wait for one request on chan_fd and answer it. Returns 0 (answered or a
 * malformed request dropped), -EPIPE when every worker end is closed (time to leave), or
 * -errno. */
int wsd_tls_key_serve_one(struct wsd_tls_key *k, int chan_fd);

#endif
