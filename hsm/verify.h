/* hsm/verify.h -- verify a DNSSEC signature with the public DNSKEY data and
 * OpenSSL only: the path independent of the token that checks the signer's
 * output (DESIGN.md decision 8).  It shares no code with the signing path
 * (hsm.c, key.c) and parses the DNSKEY public key field itself.
 * Threads: any; a struct hsm_verify_key is read-only after
 * hsm_verify_key_new() and may be used from several threads at once.
 * Limits: algorithms 8 (RSASHA256, modulus 1024..4096 bits, exponent <= 64
 * bits), 13 (ECDSAP256SHA256), 15 (ED25519).
 * Standards: RFC 3110 s2 (RSA key), RFC 5702 s3 (RSA/SHA-256 signature),
 * RFC 6605 s4 (ECDSA key and r | s signature), RFC 8080 s3-4 (Ed25519). */
#ifndef HSM_VERIFY_H
#define HSM_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_err.h"

struct hsm_verify_key;

/* pub: the DNSKEY public key field (borrowed; copied into an OpenSSL key).
 * ZD_EMALFORMED for an unknown algorithm or a key that is not valid for it
 * (wrong length, RSA layout, point not on the curve).  On ZD_OK *out is new;
 * the caller owns it (hsm_verify_key_free()). */
zd_err hsm_verify_key_new(uint8_t alg, const uint8_t *pub, size_t pub_len,
                          struct hsm_verify_key **out);
void hsm_verify_key_free(struct hsm_verify_key *vk);

/* ZD_OK only when sig is a valid signature of data (the RRSIG signing input,
 * RFC 4034 s3.1.8.1) by vk.  ZD_EMALFORMED when it is not: wrong length,
 * wrong bytes, other data.  ZD_ENOMEM when OpenSSL could not allocate.  Any
 * result but ZD_OK means "do not publish". */
zd_err hsm_verify_key_check(const struct hsm_verify_key *vk, const uint8_t *data, size_t data_len,
                            const uint8_t *sig, size_t sig_len);

/* One thread's reusable verifying contexts (for up to 8 keys at a time):
 * for many signatures on one thread, hsm_verifier_check() with one costs
 * less than hsm_verify_key_check().  A verifier is used by one thread at a
 * time; it keeps its own references to the keys it saw, so they may be
 * freed before it. */
struct hsm_verifier;
zd_err hsm_verifier_new(struct hsm_verifier **out);
void hsm_verifier_free(struct hsm_verifier *v);
/* hsm_verify_key_check() with v's contexts (NULL: none kept); the same
 * results. */
zd_err hsm_verifier_check(struct hsm_verifier *v, const struct hsm_verify_key *vk,
                          const uint8_t *data, size_t data_len, const uint8_t *sig, size_t sig_len);

/* One-shot: hsm_verify_key_new() + hsm_verify_key_check() + free, with the
 * same results.  Building the OpenSSL key costs more than checking one
 * signature: keep an hsm_verify_key for many signatures. */
zd_err hsm_verify(uint8_t alg, const uint8_t *pub, size_t pub_len, const uint8_t *data,
                  size_t data_len, const uint8_t *sig, size_t sig_len);

#endif
