/* hsm/dnskey.h -- DNSKEY RDATA and key tags from a public key, with no
 * PKCS#11 and no OpenSSL: the bytes zonedist publishes for a key.
 * Threads: any.  Limits: algorithms 8 (RSASHA256, modulus 1024..4096 bits),
 * 13 (ECDSAP256SHA256) and 15 (ED25519); RDATA <= HSM_DNSKEY_RDATA_MAX.
 * Standards: RFC 4034 s2.1 (RDATA) and App. B (key tag), RFC 3110 s2 (RSA
 * public key field), RFC 6605 s4 (ECDSA: X | Y), RFC 8080 s3 (Ed25519). */
#ifndef HSM_DNSKEY_H
#define HSM_DNSKEY_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_err.h"

#define HSM_ALG_RSASHA256       8
#define HSM_ALG_ECDSAP256SHA256 13
#define HSM_ALG_ED25519         15

#define HSM_DNSKEY_ZSK      256    /* flags: Zone Key */
#define HSM_DNSKEY_KSK      257    /* flags: Zone Key + Secure Entry Point */
#define HSM_DNSKEY_SEP      0x0001 /* flags: Secure Entry Point (RFC 4034 s2.1.1) */
#define HSM_DNSKEY_REVOKE   0x0080 /* flags: REVOKE (RFC 5011 s3) */
#define HSM_DNSKEY_PROTOCOL 3      /* RFC 4034 s2.1.2: MUST be 3 */

#define HSM_RSA_BITS_MIN 1024
#define HSM_RSA_BITS_MAX 4096
/* Public key field: RSA 4096 with a 255-byte exponent is the largest. */
#define HSM_PUBKEY_MAX       (3 + 255 + HSM_RSA_BITS_MAX / 8) /* bytes */
#define HSM_DNSKEY_RDATA_MAX (4 + HSM_PUBKEY_MAX)             /* bytes */

/* "ECDSAP256SHA256" etc.; NULL for an algorithm this module does not do. */
const char *hsm_alg_name(uint8_t alg);

/* RFC 3110 s2 public key field from big-endian exponent and modulus (leading
 * zero bytes are skipped).  ZD_EMALFORMED for a zero exponent or modulus, or
 * a modulus outside HSM_RSA_BITS_MIN..MAX; ZD_ELIMIT when cap is too small.
 * On ZD_OK out[0..*len) holds the field. */
zd_err hsm_rsa_pubkey_encode(const uint8_t *e, size_t e_len, const uint8_t *n, size_t n_len,
                             uint8_t *out, size_t cap, size_t *len);

/* The exponent e[0..*e_len) and modulus n[0..*n_len) of an RFC 3110 s2
 * public key field (pointers into pub).  ZD_EMALFORMED when the layout is
 * wrong or either has a leading zero octet; the modulus size is not checked. */
zd_err hsm_rsa_pubkey_split(const uint8_t *pub, size_t len, const uint8_t **e, size_t *e_len,
                            const uint8_t **n, size_t *n_len);

/* Check that pub is a well-formed public key field for alg: 64 bytes for 13,
 * 32 for 15, RFC 3110 layout and modulus size for 8.  ZD_EMALFORMED
 * otherwise (also for another algorithm). */
zd_err hsm_pubkey_check(uint8_t alg, const uint8_t *pub, size_t len);

/* DNSKEY RDATA: flags | protocol 3 | alg | pub.  pub is checked with
 * hsm_pubkey_check(); ZD_ELIMIT when cap is too small.  On ZD_OK
 * out[0..*len) holds the RDATA. */
zd_err hsm_dnskey_rdata(uint16_t flags, uint8_t alg, const uint8_t *pub, size_t pub_len,
                        uint8_t *out, size_t cap, size_t *len);

/* RFC 4034 App. B key tag of DNSKEY RDATA (any algorithm but 1). */
uint16_t hsm_keytag_get(const uint8_t *rdata, size_t len);

/* ZD_OK when tag is none of used[0..n); ZD_ELIMIT when it collides with one
 * (two keys with the same tag in a zone make validators try both; zonedist
 * refuses to publish or activate such a key). */
zd_err hsm_keytag_check(uint16_t tag, const uint16_t *used, size_t n);

#endif
