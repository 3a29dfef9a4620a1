/* hsm/verify.c -- DNSSEC signature verification over OpenSSL 3 (EVP). */
#include "hsm/verify.h"

#include "hsm/dnskey.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#define EC_P256_COORD 32 /* bytes per coordinate and per r, s */
#define ED25519_KEY   32 /* bytes */
#define ED25519_SIG   64 /* bytes */
#define RSA_EXP_MAX   8  /* bytes: larger public exponents are refused */
#define DER_SIG_MAX   80 /* bytes: DER of two 32-octet INTEGERs is at most 72 */
#define VERIFIER_KEYS 8  /* keys whose contexts one verifier keeps */

struct hsm_verify_key {
	uint64_t id; /* unique in the process: a verifier's cache key */
	uint8_t alg;
	size_t rsa_len; /* RSA: modulus bytes = signature bytes */
	EVP_PKEY *pkey; /* owned; EVP_PKEY_free */
};

/* One thread's contexts, initialised for verifying once per key and then
 * reused (EVP_PKEY_verify() may be called again with the same parameters):
 * setting one up costs several times what checking one signature does. */
struct hsm_verifier {
	struct {
		uint64_t id; /* 0: free */
		EVP_PKEY_CTX *ctx;
	} slot[VERIFIER_KEYS];
	size_t next; /* the slot a new key replaces */
};

static atomic_uint_fast64_t key_ids;

static EVP_PKEY *
pkey_fromdata(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (ctx == NULL)
		return NULL;
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/* The point must be on the curve: OpenSSL checks it in EVP_PKEY_public_check. */
static zd_err
key_ec(const uint8_t *pub, size_t len, EVP_PKEY **out)
{
	uint8_t point[1 + 2 * EC_P256_COORD];
	char group[] = "prime256v1";
	zd_err e = ZD_EMALFORMED;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *chk = NULL;

	if (len != 2 * EC_P256_COORD)
		return ZD_EMALFORMED;
	/* RFC 6605 s4: X | Y; OpenSSL wants the SEC 1 uncompressed form. */
	point[0] = 0x04;
	memcpy(point + 1, pub, len);
	OSSL_PARAM params[] = {
	        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
	        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
	        OSSL_PARAM_END,
	};
	pkey = pkey_fromdata("EC", params);
	if (pkey == NULL)
		goto out;
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (chk == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	if (EVP_PKEY_public_check(chk) != 1)
		goto out;
	*out = pkey;
	pkey = NULL;
	e = ZD_OK;
out:
	if (e != ZD_OK)
		ERR_clear_error();
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_free(pkey);
	return e;
}

static zd_err
key_ed25519(const uint8_t *pub, size_t len, EVP_PKEY **out)
{
	if (len != ED25519_KEY)
		return ZD_EMALFORMED;
	EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, len);
	if (pkey == NULL) {
		ERR_clear_error();
		return ZD_EMALFORMED;
	}
	*out = pkey;
	return ZD_OK;
}

/* RFC 3110 s2: exponent length (1 octet, or 0 and 2 octets), exponent, modulus. */
static zd_err
key_rsa(const uint8_t *pub, size_t len, EVP_PKEY **out, size_t *mod_len)
{
	zd_err e = ZD_EMALFORMED;
	size_t pos, e_len;
	BIGNUM *bn_e = NULL, *bn_n = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY *pkey = NULL;

	if (len < 1)
		return ZD_EMALFORMED;
	if (pub[0] != 0) {
		e_len = pub[0];
		pos = 1;
	} else {
		if (len < 3)
			return ZD_EMALFORMED;
		e_len = (size_t)pub[1] << 8 | pub[2];
		pos = 3;
	}
	if (e_len == 0 || e_len > RSA_EXP_MAX || len - pos <= e_len)
		return ZD_EMALFORMED;
	const uint8_t *n = pub + pos + e_len;
	size_t n_len = len - pos - e_len;
	if (n[0] == 0 || n_len * 8 > HSM_RSA_BITS_MAX || n_len * 8 < HSM_RSA_BITS_MIN)
		return ZD_EMALFORMED;

	bn_e = BN_bin2bn(pub + pos, (int)e_len, NULL);
	bn_n = BN_bin2bn(n, (int)n_len, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (bn_e == NULL || bn_n == NULL || bld == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	if (BN_is_zero(bn_e) || !BN_is_odd(bn_e) || BN_num_bits(bn_n) < HSM_RSA_BITS_MIN)
		goto out;
	if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	pkey = pkey_fromdata("RSA", params);
	if (pkey == NULL)
		goto out;
	*out = pkey;
	*mod_len = n_len;
	e = ZD_OK;
out:
	if (e != ZD_OK)
		ERR_clear_error();
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	return e;
}

zd_err
hsm_verify_key_new(uint8_t alg, const uint8_t *pub, size_t pub_len, struct hsm_verify_key **out)
{
	zd_err e;
	struct hsm_verify_key *vk = calloc(1, sizeof *vk);
	if (vk == NULL)
		return ZD_ENOMEM;
	vk->id = atomic_fetch_add(&key_ids, 1) + 1;
	vk->alg = alg;
	switch (alg) {
	case HSM_ALG_RSASHA256:
		e = key_rsa(pub, pub_len, &vk->pkey, &vk->rsa_len);
		break;
	case HSM_ALG_ECDSAP256SHA256:
		e = key_ec(pub, pub_len, &vk->pkey);
		break;
	case HSM_ALG_ED25519:
		e = key_ed25519(pub, pub_len, &vk->pkey);
		break;
	default:
		e = ZD_EMALFORMED;
		break;
	}
	if (e != ZD_OK) {
		free(vk);
		return e;
	}
	*out = vk;
	return ZD_OK;
}

void
hsm_verify_key_free(struct hsm_verify_key *vk)
{
	if (vk == NULL)
		return;
	EVP_PKEY_free(vk->pkey);
	free(vk);
}

/* RFC 6605 s4: r | s, 32 octets each; OpenSSL wants DER (SEQUENCE of two
 * INTEGERs), written to der (DER_SIG_MAX bytes). */
static zd_err
ecdsa_der(const uint8_t *sig, size_t sig_len, uint8_t *der, size_t *der_len)
{
	zd_err e = ZD_ENOMEM;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;

	if (sig_len != 2 * EC_P256_COORD)
		return ZD_EMALFORMED;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, EC_P256_COORD, NULL);
	s = BN_bin2bn(sig + EC_P256_COORD, EC_P256_COORD, NULL);
	if (es == NULL || r == NULL || s == NULL)
		goto out;
	if (ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL; /* es owns them now */
	if (i2d_ECDSA_SIG(es, NULL) > DER_SIG_MAX) {
		e = ZD_EBUG;
		goto out;
	}
	unsigned char *p = der;
	int n = i2d_ECDSA_SIG(es, &p);
	if (n <= 0)
		goto out;
	*der_len = (size_t)n;
	e = ZD_OK;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return e;
}

zd_err
hsm_verifier_new(struct hsm_verifier **out)
{
	*out = calloc(1, sizeof **out);
	return *out != NULL ? ZD_OK : ZD_ENOMEM;
}

void
hsm_verifier_free(struct hsm_verifier *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < VERIFIER_KEYS; i++)
		EVP_PKEY_CTX_free(v->slot[i].ctx);
	free(v);
}

/* A context of v's set up to verify vk's signatures over a SHA-256 digest
 * (RSA: PKCS #1 v1.5, RFC 5702 s3), or NULL (out of memory).  Without v a
 * new one the caller frees (*own set). */
static EVP_PKEY_CTX *
verify_ctx(struct hsm_verifier *v, const struct hsm_verify_key *vk, int *own)
{
	*own = 0;
	if (v != NULL)
		for (size_t i = 0; i < VERIFIER_KEYS; i++)
			if (v->slot[i].id == vk->id)
				return v->slot[i].ctx;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, vk->pkey, NULL);
	if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 ||
	    (vk->alg == HSM_ALG_RSASHA256 &&
	     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1) {
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	if (v == NULL) {
		*own = 1;
		return ctx;
	}
	size_t i = v->next;
	v->next = (i + 1) % VERIFIER_KEYS;
	EVP_PKEY_CTX_free(v->slot[i].ctx);
	v->slot[i].id = vk->id; /* the context holds its own reference to the key */
	v->slot[i].ctx = ctx;
	return ctx;
}

/* PureEdDSA signs the message itself: one-shot, no digest first. */
static zd_err
check_ed25519(const struct hsm_verify_key *vk, const uint8_t *data, size_t data_len,
              const uint8_t *sig, size_t sig_len)
{
	zd_err e = ZD_EMALFORMED;
	if (sig_len != ED25519_SIG)
		return ZD_EMALFORMED;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return ZD_ENOMEM;
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, vk->pkey) == 1 &&
	    EVP_DigestVerify(ctx, sig, sig_len, data, data_len) == 1)
		e = ZD_OK;
	EVP_MD_CTX_free(ctx);
	return e;
}

zd_err
hsm_verifier_check(struct hsm_verifier *v, const struct hsm_verify_key *vk, const uint8_t *data,
                   size_t data_len, const uint8_t *sig, size_t sig_len)
{
	zd_err e = ZD_EMALFORMED;
	uint8_t der[DER_SIG_MAX], digest[SHA256_DIGEST_LENGTH];
	const uint8_t *check = sig;
	size_t check_len = sig_len;

	switch (vk->alg) {
	case HSM_ALG_RSASHA256:
		if (sig_len != vk->rsa_len)
			return ZD_EMALFORMED;
		break;
	case HSM_ALG_ECDSAP256SHA256:
		if ((e = ecdsa_der(sig, sig_len, der, &check_len)) != ZD_OK)
			return e;
		check = der;
		break;
	case HSM_ALG_ED25519:
		e = check_ed25519(vk, data, data_len, sig, sig_len);
		goto out;
	default:
		return ZD_EMALFORMED;
	}
	int own;
	EVP_PKEY_CTX *ctx = verify_ctx(v, vk, &own);
	if (ctx == NULL)
		return ZD_ENOMEM;
	SHA256(data, data_len, digest);
	int r = EVP_PKEY_verify(ctx, check, check_len, digest, sizeof digest);
	e = r == 1 ? ZD_OK : ZD_EMALFORMED;
	if (own) {
		EVP_PKEY_CTX_free(ctx);
	} else if (r < 0) {
		/* not a mere mismatch: set the next one up anew */
		for (size_t i = 0; i < VERIFIER_KEYS; i++)
			if (v->slot[i].ctx == ctx) {
				EVP_PKEY_CTX_free(ctx);
				v->slot[i].ctx = NULL;
				v->slot[i].id = 0;
			}
	}
out:
	if (e != ZD_OK)
		ERR_clear_error(); /* this thread's queue: leave nothing for the next caller */
	return e;
}

zd_err
hsm_verify_key_check(const struct hsm_verify_key *vk, const uint8_t *data, size_t data_len,
                     const uint8_t *sig, size_t sig_len)
{
	return hsm_verifier_check(NULL, vk, data, data_len, sig, sig_len);
}

zd_err
hsm_verify(uint8_t alg, const uint8_t *pub, size_t pub_len, const uint8_t *data, size_t data_len,
           const uint8_t *sig, size_t sig_len)
{
	struct hsm_verify_key *vk = NULL;
	zd_err e = hsm_verify_key_new(alg, pub, pub_len, &vk);
	if (e != ZD_OK)
		return e;
	e = hsm_verify_key_check(vk, data, data_len, sig, sig_len);
	hsm_verify_key_free(vk);
	return e;
}
