/* hsm/verify.c -- DNSSEC signature verification over OpenSSL 3 (EVP). */
#include "hsm/verify.h"

#include "hsm/dnskey.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#define EC_P256_COORD 32 /* bytes per coordinate and per r, s */
#define ED25519_KEY   32 /* bytes */
#define ED25519_SIG   64 /* bytes */
#define RSA_EXP_MAX   8  /* bytes: larger public exponents are refused */

struct hsm_verify_key {
	uint8_t alg;
	size_t rsa_len; /* RSA: modulus bytes = signature bytes */
	EVP_PKEY *pkey; /* owned; EVP_PKEY_free */
};

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
 * INTEGERs).  On ZD_OK *der is an OPENSSL_malloc'ed buffer of *der_len bytes. */
static zd_err
ecdsa_der(const uint8_t *sig, size_t sig_len, uint8_t **der, size_t *der_len)
{
	zd_err e = ZD_ENOMEM;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *buf = NULL;

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
	int n = i2d_ECDSA_SIG(es, &buf);
	if (n <= 0)
		goto out;
	*der = buf;
	*der_len = (size_t)n;
	e = ZD_OK;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return e;
}

zd_err
hsm_verify_key_check(const struct hsm_verify_key *vk, const uint8_t *data, size_t data_len,
                     const uint8_t *sig, size_t sig_len)
{
	zd_err e = ZD_EMALFORMED;
	EVP_MD_CTX *ctx = NULL;
	uint8_t *der = NULL;
	const uint8_t *check = sig;
	size_t check_len = sig_len;
	const EVP_MD *md = EVP_sha256();

	switch (vk->alg) {
	case HSM_ALG_RSASHA256:
		if (sig_len != vk->rsa_len)
			return ZD_EMALFORMED;
		break;
	case HSM_ALG_ECDSAP256SHA256:
		e = ecdsa_der(sig, sig_len, &der, &check_len);
		if (e != ZD_OK)
			return e;
		check = der;
		e = ZD_EMALFORMED;
		break;
	case HSM_ALG_ED25519:
		if (sig_len != ED25519_SIG)
			return ZD_EMALFORMED;
		md = NULL; /* PureEdDSA: the message itself */
		break;
	default:
		return ZD_EMALFORMED;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	/* RSA: PKCS #1 v1.5 padding is the default (RFC 5702 s3). */
	if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, vk->pkey) != 1)
		goto out;
	if (EVP_DigestVerify(ctx, check, check_len, data, data_len) == 1)
		e = ZD_OK;
out:
	if (e != ZD_OK)
		ERR_clear_error(); /* this thread's queue: leave nothing for the next caller */
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return e;
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
