/* hsm/hsm.h -- DNSSEC keys in a PKCS#11 token: load the module, log in,
 * generate and find key pairs, produce their DNSKEY data, sign
 * (DESIGN.md decision 6).  hsm/ knows keys and signatures, not zones.
 *
 * The module is loaded by path with dlopen() and C_GetFunctionList(), never
 * linked; it is initialised once per process with CKF_OS_LOCKING_OK, shared
 * by every struct hsm that names the same file, finalised when the last one
 * lets go, and never unloaded.  Private keys are generated inside the token
 * and never read: CKA_SENSITIVE, not CKA_EXTRACTABLE, sign only.
 *
 * Threads: a struct hsm and its keys belong to one control thread (connect,
 * generate, find, list, destroy, free); the hsm_key_*_get() functions and
 * hsm_key_dnskey_rdata() only read and may run anywhere while the key
 * lives.  Signing threads each open their own
 * hsm_session (hsm_session_open() and hsm_session_close() may run in any
 * thread) and use it with any key of that hsm, concurrently with each other
 * and with the control thread.  Object handles are found once, when a key is
 * generated, found or listed, and cached in the struct hsm_key: the signing
 * path never calls C_FindObjects.
 *
 * Failures: every PKCS#11 failure is ZD_EHSM, with a message in
 * hsm_error_get() (control thread) or hsm_session_error_get() (signing
 * thread) that names the call, the CK_RV and what it concerns.  Nothing here
 * logs; the PIN is read when logging in, wiped after, and never in a message.
 * When the token goes away (hsm_session_lost() is 1 after a failed sign), the
 * caller closes every session and calls hsm_reconnect() until it succeeds.
 *
 * Limits: HSM_LABEL_MAX, HSM_TOKEN_LABEL_MAX, HSM_PIN_MAX, HSM_ID_MAX bytes;
 * HSM_KEYS_MAX keys per listing; algorithms of hsm/dnskey.h.
 * Standards: PKCS#11 v2.40 (base and current mechanisms), RFC 4034 s3.1.8.1
 * (what is signed), RFC 5702 s3, RFC 6605 s4, RFC 8080 s4 (signature forms). */
#ifndef HSM_HSM_H
#define HSM_HSM_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_err.h"
#include "hsm/dnskey.h"

#define HSM_TOKEN_LABEL_MAX 32                     /* bytes; CK_TOKEN_INFO.label */
#define HSM_LABEL_MAX       128                    /* bytes of a key's CKA_LABEL */
#define HSM_ID_MAX          64                     /* bytes of a key's CKA_ID (ours are 16) */
#define HSM_ID_LEN          16                     /* bytes of the random CKA_ID we give new keys */
#define HSM_PIN_MAX         256                    /* bytes of a PIN (file or environment) */
#define HSM_KEYS_MAX        4096                   /* keys one hsm_key_list() returns */
#define HSM_SIG_MAX         (HSM_RSA_BITS_MAX / 8) /* bytes of the largest signature */
#define HSM_MODULE_DEFAULT  "/usr/lib/softhsm/libsofthsm2.so"

struct hsm;         /* a module, a token in it, logged in */
struct hsm_session; /* one PKCS#11 session; one signing thread */
struct hsm_key;     /* one key pair in the token, handles cached */

/* Where the token is and where its PIN comes from.  Exactly one of pin_file
 * and pin_env is set.  Strings are borrowed by hsm_new() and copied. */
struct hsm_config {
	const char *module_path; /* NULL: HSM_MODULE_DEFAULT */
	const char *token_label; /* 1..HSM_TOKEN_LABEL_MAX bytes */
	const char *pin_file;    /* path of a file holding the user PIN (one trailing newline ok) */
	const char *pin_env;     /* name of an environment variable holding the user PIN */
	int so_login;            /* 1: the PIN is the SO PIN; log in as security officer
	                            (only for hsm_wrapkey_install()) */
};

/* Checks and copies cfg; loads nothing.  ZD_EMALFORMED for a missing or
 * too long label, or not exactly one PIN source.  On ZD_OK *out is new; the
 * caller owns it (hsm_free()). */
zd_err hsm_new(const struct hsm_config *cfg, struct hsm **out);
/* Closes the control session and lets go of the module.  Every session and
 * key of h must be closed and freed first.  NULL does nothing. */
void hsm_free(struct hsm *h);

/* Load the module, find the token by label, open the control session and
 * log in as user with the PIN (read now, wiped after).  On failure h stays
 * unconnected and the reason is in hsm_error_get():
 *   ZD_EIO        the PIN file cannot be read (errno text)
 *   ZD_EMALFORMED the PIN file or variable is empty
 *   ZD_ENOTFOUND  the PIN variable is not set
 *   ZD_ELIMIT     the PIN is longer than HSM_PIN_MAX
 *   ZD_EHSM       dlopen() failed (its message), the module has no
 *                 C_GetFunctionList or C_Initialize failed, no token or more
 *                 than one carries the label (the labels present are
 *                 listed), the user PIN is not initialised, C_Login failed
 *                 (CKR_PIN_INCORRECT: wrong PIN; CKR_PIN_LOCKED ...)
 *   ZD_EBUG       h is connected already.
 * When another struct hsm of this process is logged in to the same token,
 * C_Login answers CKR_USER_ALREADY_LOGGED_IN and this PIN is not checked. */
zd_err hsm_connect(struct hsm *h);
/* After the token went away (or any failure): close the control session,
 * re-initialise the module when h is its only user in this process
 * (SoftHSM sees a token come back only then), then as hsm_connect(), and
 * find the handles of every key of h again by CKA_ID.  Every session of h
 * must be closed (ZD_EBUG otherwise, nothing done).  ZD_EHSM also when a key
 * of h is no longer in the token or has another public key there (that key
 * stays unusable; h is connected).  Call it again later when it fails. */
zd_err hsm_reconnect(struct hsm *h);
int hsm_is_connected(const struct hsm *h);
/* Why the last failed call on h (or its keys) failed; "" after a success.
 * Borrowed: valid until the next call on h.  Control thread only. */
const char *hsm_error_get(const struct hsm *h);
/* ZD_OK when the token can generate and sign with alg (RSA: bits in the
 * token's key size range); ZD_EHSM naming the missing mechanism otherwise. */
zd_err hsm_alg_check(struct hsm *h, uint8_t alg, uint16_t bits);

/* ---- keys ---- */

struct hsm_keyspec {
	uint8_t alg;       /* HSM_ALG_RSASHA256, HSM_ALG_ECDSAP256SHA256, HSM_ALG_ED25519 */
	uint16_t bits;     /* RSA: 2048..4096; others: 0 */
	const char *label; /* CKA_LABEL of both objects, 1..HSM_LABEL_MAX bytes; borrowed */
	int wrappable;     /* 1: CKA_EXTRACTABLE with CKA_WRAP_WITH_TRUSTED, so a backup can
	                      wrap it with a wrapping key the SO installed (and no other) */
};

/* Generate a key pair in the token: private key CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN only; public key CKA_VERIFY
 * only; both with spec->label and a new random CKA_ID of HSM_ID_LEN bytes.
 * ZD_EMALFORMED for a bad spec; ZD_EHSM when the token refuses (the message
 * names the mechanism).  On ZD_OK *out is a new key the caller owns
 * (hsm_key_free()); on failure nothing is left in the token. */
zd_err hsm_key_generate(struct hsm *h, const struct hsm_keyspec *spec, struct hsm_key **out);
/* As hsm_key_generate(), but a key whose tag (with flags, see
 * hsm_key_tag_get()) is one of used[0..n_used) -- the tags already in the
 * zone -- is destroyed and generated again, up to max_tries keys in all.
 * For a KSK (flags with the SEP bit) the tag it will have once revoked
 * (RFC 5011 s5, REVOKE bit set) must not collide either.  ZD_ELIMIT when
 * every try collided (nothing left in the token; the message says so);
 * ZD_EHSM also when a colliding key cannot be destroyed (it may stay in the
 * token; the message names it); else as hsm_key_generate(). */
zd_err hsm_key_generate_unique(struct hsm *h, const struct hsm_keyspec *spec, uint16_t flags,
                               const uint16_t *used, size_t n_used, unsigned max_tries,
                               struct hsm_key **out);
/* The key pair whose private key has this CKA_ID, e.g. after a restart.
 * ZD_OK with *out = NULL when there is none.  ZD_EMALFORMED for an id_len
 * of 0 or above HSM_ID_MAX.  ZD_EHSM when there are two,
 * when the public key is missing, or the key is of a type this module does
 * not sign with.  On ZD_OK with a key, the caller owns it (hsm_key_free()). */
zd_err hsm_key_find(struct hsm *h, const uint8_t *id, size_t id_len, struct hsm_key **out);
/* Every usable key pair whose CKA_LABEL starts with label_prefix (NULL or
 * "": all), in the token's order.  Private keys without a public key or of
 * another type are left out.  ZD_ELIMIT beyond HSM_KEYS_MAX private keys in
 * the token.  On ZD_OK *keys is a new array of *n keys that the caller owns
 * (hsm_key_list_free(), also when *n is 0). */
zd_err hsm_key_list(struct hsm *h, const char *label_prefix, struct hsm_key ***keys, size_t *n);
void hsm_key_list_free(struct hsm_key **keys, size_t n);
/* A key known by its public half only (alg, the DNSKEY public key field
 * pub[0..len)), in no token: its tag, DNSKEY and algorithm are had, hsm_sign()
 * refuses it.  An offline KSK while its token is away.  ZD_EMALFORMED when
 * pub is not a public key of alg. */
zd_err hsm_key_public_new(uint8_t alg, const uint8_t *pub, size_t len, const char *label,
                          struct hsm_key **out);
/* Sign with an in-token session copy of k's private key from now on
 * (C_CopyObject with CKA_TOKEN false: the copy is as sensitive and as
 * unextractable as the key, lives in the token until h disconnects, and
 * spares SoftHSM reading the key's file at every signature).  hsm_sign()
 * then looks every HSM_COPY_CHECK_MS that the token object is still there,
 * so a token that goes away still stops the signing.  ZD_EHSM when the
 * module refuses the copy (message in hsm_error_get(); k signs as before).
 * Control thread, before any session signs with k. */
zd_err hsm_key_session_copy(struct hsm_key *k);
#define HSM_COPY_CHECK_MS 10
/* The next hsm_sign() on s with a session copy looks that the token is
 * there first, whenever the last look was (a signer calls it when new work
 * comes after a pause). */
void hsm_session_recheck(struct hsm_session *s);
/* Forget k (the token keeps the key).  NULL does nothing.  Control thread;
 * no session may be signing with k. */
void hsm_key_free(struct hsm_key *k);
/* Delete both objects of k from the token, then free k.  Takes *k and sets
 * *k = NULL on ZD_OK; on failure (ZD_EHSM) *k stays and may still be in
 * the token. */
zd_err hsm_key_destroy(struct hsm_key **k);

/* What the token says about the private key (C_GetAttributeValue). */
struct hsm_key_protection {
	int sensitive;         /* CKA_SENSITIVE */
	int extractable;       /* CKA_EXTRACTABLE */
	int always_sensitive;  /* CKA_ALWAYS_SENSITIVE: generated sensitive */
	int never_extractable; /* CKA_NEVER_EXTRACTABLE */
};
zd_err hsm_key_protection_get(struct hsm_key *k, struct hsm_key_protection *out);

/* Cached at load; cannot fail.  Pointers are borrowed for k's life. */
uint8_t hsm_key_alg_get(const struct hsm_key *k);
uint16_t hsm_key_bits_get(const struct hsm_key *k); /* RSA modulus; 256 for EC and Ed25519 */
const char *hsm_key_label_get(const struct hsm_key *k);
const uint8_t *hsm_key_id_get(const struct hsm_key *k, size_t *len);
/* Lower-case hex of CKA_ID for logs, cut to fit outlen (>= 1). */
void hsm_key_id_str(const struct hsm_key *k, char *out, size_t outlen);
/* The DNSKEY public key field (RFC 3110, 6605, 8080). */
const uint8_t *hsm_key_pubkey_get(const struct hsm_key *k, size_t *len);
size_t hsm_key_siglen_get(const struct hsm_key *k); /* bytes hsm_sign() writes */
/* DNSKEY RDATA of k with flags (HSM_DNSKEY_ZSK, HSM_DNSKEY_KSK, or with the
 * revoke bit); ZD_ELIMIT when cap is too small (HSM_DNSKEY_RDATA_MAX is
 * enough).  On ZD_OK out[0..*len) holds it. */
zd_err hsm_key_dnskey_rdata(const struct hsm_key *k, uint16_t flags, uint8_t *out, size_t cap,
                            size_t *len);
/* RFC 4034 App. B key tag of k's DNSKEY with flags. */
uint16_t hsm_key_tag_get(const struct hsm_key *k, uint16_t flags);

/* ---- signing ---- */

/* A new session on h's token for one signing thread; any thread may call
 * it.  ZD_EHSM when h is not connected (or is reconnecting) or
 * C_OpenSession fails, with the reason in err[0..errlen) (err may be NULL).
 * On ZD_OK *out is new; the caller owns it (hsm_session_close()). */
zd_err hsm_session_open(struct hsm *h, struct hsm_session **out, char *err, size_t errlen);
/* NULL does nothing.  Any thread; the session must be idle. */
void hsm_session_close(struct hsm_session *s);
/* Why the last failed call on s failed; "" after a success.  Borrowed. */
const char *hsm_session_error_get(const struct hsm_session *s);
/* 1 once a call on s failed because the token, the session or the key went
 * away (it stays 1): close every session of the hsm and hsm_reconnect(). */
int hsm_session_lost(const struct hsm_session *s);

/* Sign data, the RRSIG signing input (RFC 4034 s3.1.8.1), with k.  sig has
 * room for *siglen bytes (hsm_key_siglen_get(k) or more, else ZD_ELIMIT).
 * ECDSAP256SHA256: SHA-256 here, CKM_ECDSA in the token, r | s (64 bytes);
 * RSASHA256: CKM_SHA256_RSA_PKCS (modulus bytes); ED25519: CKM_EDDSA on the
 * data (64 bytes).  ZD_EHSM when the token fails (message in
 * hsm_session_error_get(), hsm_session_lost() says whether to reconnect), or
 * when k was not found again after the last hsm_reconnect().  On ZD_OK
 * sig[0..*siglen) holds the signature. */
zd_err hsm_sign(struct hsm_session *s, const struct hsm_key *k, const uint8_t *data, size_t len,
                uint8_t *sig, size_t *siglen);

/* ---- wrapped backups (PKCS#11 v2.40 s5.13, RFC 5649) ----
 *
 * A private key leaves a token only wrapped (CKM_AES_KEY_WRAP_PAD) with an
 * AES-256 wrapping key that lives in both tokens of a twin-HSM setup.  The
 * wrapping key is installed by the security officer (CKA_TRUSTED, which only
 * the SO may set, so a user who knows the PIN cannot make a wrapping key of
 * his own that keys generated with hsm_keyspec.wrappable accept); PKCS#11
 * lets the SO create public objects only, so it is a public, sensitive,
 * non-extractable object that can wrap and unwrap and do nothing else. */

#define HSM_WRAPKEY_BYTES 32   /* AES-256 */
#define HSM_WRAPPED_MAX   4096 /* bytes of one wrapped private key */

/* Install the wrapping key value[0..HSM_WRAPKEY_BYTES) labelled label in
 * h's token; h is connected with so_login.  ZD_EMALFORMED for a label of 0
 * or more than HSM_LABEL_MAX bytes; ZD_ELIMIT when the token has a secret
 * key with that label already (nothing changed); ZD_EHSM when the token
 * refuses (message in hsm_error_get()). */
zd_err hsm_wrapkey_install(struct hsm *h, const char *label, const uint8_t *value);
/* ZD_OK when h's token has exactly one wrapping key labelled label, trusted,
 * able to wrap and unwrap; ZD_ENOTFOUND when it has none; ZD_EHSM otherwise
 * (message in hsm_error_get()). */
zd_err hsm_wrapkey_check(struct hsm *h, const char *label);

/* One key pair as a backup holds it: the private key wrapped, and what the
 * public key object is made from again. */
struct hsm_wrapped {
	uint8_t id[HSM_ID_MAX];
	size_t id_len;
	char label[HSM_LABEL_MAX + 1];
	uint8_t alg;
	uint8_t pubkey[HSM_PUBKEY_MAX]; /* the DNSKEY public key field */
	size_t pubkey_len;
	uint8_t blob[HSM_WRAPPED_MAX]; /* C_WrapKey output */
	size_t blob_len;
};

/* Wrap k's private key with the wrapping key labelled wrap_label of k's
 * token.  ZD_ENOTFOUND when there is no such wrapping key; ZD_EHSM when the
 * token refuses (CKR_KEY_UNEXTRACTABLE: k was generated not wrappable;
 * CKR_KEY_NOT_WRAPPABLE: the wrapping key is not trusted).  On ZD_OK *out
 * holds the backup. */
zd_err hsm_key_wrap(struct hsm_key *k, const char *wrap_label, struct hsm_wrapped *out);
/* Make w's key pair in h's token: the private key unwrapped with h's
 * wrapping key labelled wrap_label (same CKA_ID and label; sensitive,
 * sign only, wrappable with a trusted key only), the public key created from
 * w->pubkey; then one signature by the new private key is checked against
 * w->pubkey with OpenSSL, so a backup that does not sign is never kept.
 * When h's token has a private key with w's CKA_ID already and its public
 * key is w's, that key is loaded and *existed is 1 (nothing made).
 * ZD_ENOTFOUND: no wrapping key; ZD_EMALFORMED: w does not hold a key of
 * ours (bad algorithm or public key); ZD_EHSM: the token refuses, or the
 * CKA_ID is taken by another key, or the check signature fails (nothing
 * left in the token).  On ZD_OK *out is a key the caller owns. */
zd_err hsm_key_unwrap(struct hsm *h, const char *wrap_label, const struct hsm_wrapped *w,
                      struct hsm_key **out, int *existed);

/* A backup file's text: "zonedist-wrapped-key 1", then "id", "label",
 * "algorithm", "public-key" and "wrapped" lines (hex; the label as is),
 * each once.  ZD_ELIMIT when cap is too small.  Decoding takes untrusted
 * bytes: ZD_EMALFORMED for anything but that form, with the reason in
 * err[0..errlen). */
zd_err hsm_wrapped_encode(const struct hsm_wrapped *w, char *out, size_t cap, size_t *len);
zd_err hsm_wrapped_decode(const char *text, size_t len, struct hsm_wrapped *out, char *err,
                          size_t errlen);
#define HSM_WRAPPED_TEXT_MAX                                                                       \
	(2 * (HSM_ID_MAX + HSM_PUBKEY_MAX + HSM_WRAPPED_MAX) + HSM_LABEL_MAX + 256)

/* ---- test hooks ---- */

/* The next n keys generated by hsm_key_generate_unique() on h are treated
 * as having the tags tags[0..n) (copied) for the collision check, so tests
 * can force collisions.  n = 0 clears.  ZD_ELIMIT when n > 64. */
zd_err hsm_test_keytag_override(struct hsm *h, const uint16_t *tags, size_t n);

#endif
