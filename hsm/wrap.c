/* hsm/wrap.c -- wrapped backups: the SO's wrapping key, C_WrapKey of a
 * private key, C_UnwrapKey into another token (checked by one signature),
 * and the text form of a backup file. */
#include "hsm/hsm_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hsm/verify.h"

static const CK_MECHANISM wrap_mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};

/* The secret keys labelled label (at most 2 reported). */
static zd_err
wrapkeys_find(struct hsm *h, const char *label, CK_OBJECT_HANDLE found[2], size_t *n)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &cls, sizeof cls},
	        {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
	};
	zd_err e = hsm_objects_find(h, tmpl, 2, found, 2, n, "wrapping key by label");
	if (e == ZD_ELIMIT) {
		*n = 2;
		return ZD_OK;
	}
	return e;
}

zd_err
hsm_wrapkey_install(struct hsm *h, const char *label, const uint8_t *value)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_AES;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_HANDLE found[2], obj;
	size_t n = 0, label_len = label ? strlen(label) : 0;
	zd_err e;

	if (label_len == 0 || label_len > HSM_LABEL_MAX) {
		hsm_err_set(h->err, sizeof h->err, "wrapping key label must have 1..%d bytes",
		            HSM_LABEL_MAX);
		return ZD_EMALFORMED;
	}
	if (!hsm_connected_or_fail(h))
		return ZD_EHSM;
	if (!h->so) {
		hsm_err_set(h->err, sizeof h->err,
		            "installing a wrapping key needs the security officer's PIN");
		return ZD_EHSM;
	}
	if ((e = wrapkeys_find(h, label, found, &n)) != ZD_OK)
		return e;
	if (n > 0) {
		hsm_err_set(h->err, sizeof h->err, "token '%s' has a key labelled '%s' already",
		            h->token_label, label);
		return ZD_ELIMIT;
	}
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &cls, sizeof cls},
	        {CKA_KEY_TYPE, &type, sizeof type},
	        {CKA_TOKEN, &yes, sizeof yes},
	        {CKA_PRIVATE, &no, sizeof no}, /* the SO makes public objects only */
	        {CKA_SENSITIVE, &yes, sizeof yes},
	        {CKA_EXTRACTABLE, &no, sizeof no},
	        {CKA_TRUSTED, &yes, sizeof yes},
	        {CKA_WRAP, &yes, sizeof yes},
	        {CKA_UNWRAP, &yes, sizeof yes},
	        {CKA_ENCRYPT, &no, sizeof no},
	        {CKA_DECRYPT, &no, sizeof no},
	        {CKA_SIGN, &no, sizeof no},
	        {CKA_VERIFY, &no, sizeof no},
	        {CKA_DERIVE, &no, sizeof no},
	        {CKA_LABEL, (void *)label, (CK_ULONG)label_len},
	        {CKA_VALUE, (void *)value, HSM_WRAPKEY_BYTES},
	};
	CK_RV rv = h->f->C_CreateObject(h->ctl, tmpl, sizeof tmpl / sizeof tmpl[0], &obj);
	if (rv != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv,
		           "C_CreateObject (wrapping key '%s') on token '%s'", label,
		           h->token_label);
		return ZD_EHSM;
	}
	return ZD_OK;
}

/* The one usable wrapping key labelled label. */
static zd_err
wrapkey_get(struct hsm *h, const char *label, CK_OBJECT_HANDLE *out)
{
	CK_OBJECT_HANDLE found[2];
	size_t n = 0;
	CK_BBOOL b[3] = {0, 0, 0};
	zd_err e = wrapkeys_find(h, label, found, &n);
	if (e != ZD_OK)
		return e;
	if (n == 0) {
		hsm_err_set(
		        h->err, sizeof h->err,
		        "token '%s' has no wrapping key '%s' (install it with the SO PIN first)",
		        h->token_label, label);
		return ZD_ENOTFOUND;
	}
	if (n > 1) {
		hsm_err_set(h->err, sizeof h->err, "token '%s' has several keys labelled '%s'",
		            h->token_label, label);
		return ZD_EHSM;
	}
	CK_ATTRIBUTE a[] = {
	        {CKA_TRUSTED, &b[0], sizeof b[0]},
	        {CKA_WRAP, &b[1], sizeof b[1]},
	        {CKA_UNWRAP, &b[2], sizeof b[2]},
	};
	CK_RV rv = h->f->C_GetAttributeValue(h->ctl, found[0], a, 3);
	if (rv != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv, "C_GetAttributeValue (wrapping key '%s')",
		           label);
		return ZD_EHSM;
	}
	if (b[0] != CK_TRUE || b[1] != CK_TRUE || b[2] != CK_TRUE) {
		hsm_err_set(h->err, sizeof h->err,
		            "wrapping key '%s' on token '%s' is not trusted, or cannot wrap and "
		            "unwrap",
		            label, h->token_label);
		return ZD_EHSM;
	}
	*out = found[0];
	return ZD_OK;
}

zd_err
hsm_wrapkey_check(struct hsm *h, const char *label)
{
	CK_OBJECT_HANDLE wk;
	if (!hsm_connected_or_fail(h))
		return ZD_EHSM;
	return wrapkey_get(h, label, &wk);
}

zd_err
hsm_key_wrap(struct hsm_key *k, const char *wrap_label, struct hsm_wrapped *out)
{
	struct hsm *h = k->h;
	CK_OBJECT_HANDLE wk;
	zd_err e;

	if (zd_check_failed(h != NULL))
		return ZD_EBUG;
	if (!hsm_connected_or_fail(h))
		return ZD_EHSM;
	if (k->gen != h->gen) {
		hsm_err_set(h->err, sizeof h->err, "key '%s' is not loaded; cannot wrap it",
		            k->label);
		return ZD_EHSM;
	}
	if ((e = wrapkey_get(h, wrap_label, &wk)) != ZD_OK)
		return e;
	memset(out, 0, sizeof *out);
	CK_ULONG len = sizeof out->blob;
	CK_MECHANISM m = wrap_mech;
	CK_RV rv = h->f->C_WrapKey(h->ctl, &m, wk, k->priv, out->blob, &len);
	if (rv != CKR_OK || len > sizeof out->blob) {
		hsm_err_rv(h->err, sizeof h->err, rv,
		           "C_WrapKey (CKM_AES_KEY_WRAP_PAD, key '%s' with '%s') on token '%s'",
		           k->label, wrap_label, h->token_label);
		OPENSSL_cleanse(out, sizeof *out);
		return ZD_EHSM;
	}
	out->blob_len = len;
	memcpy(out->id, k->id, k->id_len);
	out->id_len = k->id_len;
	memcpy(out->label, k->label, sizeof out->label);
	out->alg = k->alg;
	memcpy(out->pubkey, k->pubkey, k->pubkey_len);
	out->pubkey_len = k->pubkey_len;
	return ZD_OK;
}

/* The public key object's algorithm-specific attributes from the DNSKEY
 * public key field: a[0..*n) point into pub or point[]. */
static zd_err
pub_attrs(uint8_t alg, const uint8_t *pub, size_t len, uint8_t point[67], CK_ATTRIBUTE a[2],
          CK_KEY_TYPE *type)
{
	if (hsm_pubkey_check(alg, pub, len) != ZD_OK)
		return ZD_EMALFORMED;
	switch (alg) {
	case HSM_ALG_ECDSAP256SHA256:
		/* DER OCTET STRING of the uncompressed point (PKCS#11 s2.3.3) */
		point[0] = 0x04;
		point[1] = 65;
		point[2] = 0x04;
		memcpy(point + 3, pub, 64);
		a[0] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)hsm_oid_p256, sizeof hsm_oid_p256};
		a[1] = (CK_ATTRIBUTE){CKA_EC_POINT, point, 67};
		*type = CKK_EC;
		return ZD_OK;
	case HSM_ALG_ED25519:
		point[0] = 0x04;
		point[1] = 32;
		memcpy(point + 2, pub, 32);
		a[0] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)hsm_oid_ed25519,
		                      sizeof hsm_oid_ed25519};
		a[1] = (CK_ATTRIBUTE){CKA_EC_POINT, point, 34};
		*type = CKK_EC_EDWARDS;
		return ZD_OK;
	default: { /* HSM_ALG_RSASHA256: hsm_pubkey_check() allows nothing else */
		const uint8_t *e, *n;
		size_t e_len, n_len;
		if (hsm_rsa_pubkey_split(pub, len, &e, &e_len, &n, &n_len) != ZD_OK)
			return ZD_EMALFORMED;
		a[0] = (CK_ATTRIBUTE){CKA_MODULUS, (void *)n, (CK_ULONG)n_len};
		a[1] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, (void *)e, (CK_ULONG)e_len};
		*type = CKK_RSA;
		return ZD_OK;
	}
	}
}

/* One signature by k, checked with OpenSSL against want[0..len). */
static zd_err
sign_check(struct hsm *h, struct hsm_key *k, const uint8_t *want, size_t len)
{
	static const uint8_t data[] = "zonedist backup check";
	uint8_t sig[HSM_SIG_MAX];
	size_t siglen = sizeof sig;
	struct hsm_session *s = NULL;
	char why[HSM_ERR_MAX] = "";
	zd_err e = hsm_session_open(h, &s, why, sizeof why);
	if (e == ZD_OK) {
		e = hsm_sign(s, k, data, sizeof data - 1, sig, &siglen);
		if (e != ZD_OK)
			snprintf(why, sizeof why, "%s", hsm_session_error_get(s));
		hsm_session_close(s);
	}
	if (e == ZD_OK &&
	    hsm_verify(k->alg, want, len, data, sizeof data - 1, sig, siglen) != ZD_OK)
		snprintf(why, sizeof why, "its signature does not verify with the public key");
	else if (e == ZD_OK)
		return ZD_OK;
	hsm_err_set(h->err, sizeof h->err, "unwrapped key '%s' on token '%s' does not sign: %s",
	            k->label, h->token_label, why);
	return ZD_EHSM;
}

zd_err
hsm_key_unwrap(struct hsm *h, const char *wrap_label, const struct hsm_wrapped *w,
               struct hsm_key **out, int *existed)
{
	CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY, pub_cls = CKO_PUBLIC_KEY;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_HANDLE wk, priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
	CK_ATTRIBUTE alg_attrs[2];
	CK_KEY_TYPE type;
	uint8_t point[67];
	struct hsm_key *k = NULL;
	zd_err e;

	*existed = 0;
	if (!hsm_connected_or_fail(h))
		return ZD_EHSM;
	size_t label_len = strnlen(w->label, sizeof w->label);
	if (w->id_len == 0 || w->id_len > HSM_ID_MAX || label_len == 0 ||
	    label_len > HSM_LABEL_MAX || w->blob_len == 0 || w->blob_len > sizeof w->blob ||
	    pub_attrs(w->alg, w->pubkey, w->pubkey_len, point, alg_attrs, &type) != ZD_OK) {
		hsm_err_set(h->err, sizeof h->err, "the backup does not hold a DNSSEC key of ours");
		return ZD_EMALFORMED;
	}
	if ((e = hsm_key_find(h, w->id, w->id_len, &k)) != ZD_OK)
		return e;
	if (k != NULL) {
		if (k->alg == w->alg && k->pubkey_len == w->pubkey_len &&
		    memcmp(k->pubkey, w->pubkey, w->pubkey_len) == 0) {
			*existed = 1;
			*out = k;
			return ZD_OK;
		}
		hsm_err_set(h->err, sizeof h->err,
		            "token '%s' has another key with the CKA_ID of '%s'; not restored",
		            h->token_label, w->label);
		hsm_key_free(k);
		return ZD_EHSM;
	}
	if ((e = wrapkey_get(h, wrap_label, &wk)) != ZD_OK)
		return e;
	CK_ATTRIBUTE priv_tmpl[] = {
	        {CKA_CLASS, &priv_cls, sizeof priv_cls},
	        {CKA_KEY_TYPE, &type, sizeof type},
	        {CKA_TOKEN, &yes, sizeof yes},
	        {CKA_PRIVATE, &yes, sizeof yes},
	        {CKA_SENSITIVE, &yes, sizeof yes},
	        {CKA_EXTRACTABLE, &yes, sizeof yes},
	        {CKA_WRAP_WITH_TRUSTED, &yes, sizeof yes},
	        {CKA_SIGN, &yes, sizeof yes},
	        {CKA_DECRYPT, &no, sizeof no},
	        {CKA_UNWRAP, &no, sizeof no},
	        {CKA_DERIVE, &no, sizeof no},
	        {CKA_ID, (void *)w->id, (CK_ULONG)w->id_len},
	        {CKA_LABEL, (void *)w->label, (CK_ULONG)label_len},
	};
	CK_ATTRIBUTE pub_tmpl[] = {
	        {CKA_CLASS, &pub_cls, sizeof pub_cls},
	        {CKA_KEY_TYPE, &type, sizeof type},
	        {CKA_TOKEN, &yes, sizeof yes},
	        {CKA_PRIVATE, &no, sizeof no},
	        {CKA_VERIFY, &yes, sizeof yes},
	        {CKA_ENCRYPT, &no, sizeof no},
	        {CKA_WRAP, &no, sizeof no},
	        {CKA_ID, (void *)w->id, (CK_ULONG)w->id_len},
	        {CKA_LABEL, (void *)w->label, (CK_ULONG)label_len},
	        alg_attrs[0],
	        alg_attrs[1],
	};
	CK_MECHANISM m = wrap_mech;
	CK_RV rv = h->f->C_UnwrapKey(h->ctl, &m, wk, (CK_BYTE_PTR)w->blob, (CK_ULONG)w->blob_len,
	                             priv_tmpl, sizeof priv_tmpl / sizeof priv_tmpl[0], &priv);
	if (rv != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv,
		           "C_UnwrapKey (CKM_AES_KEY_WRAP_PAD, key '%s' with '%s') on token '%s'",
		           w->label, wrap_label, h->token_label);
		return ZD_EHSM;
	}
	rv = h->f->C_CreateObject(h->ctl, pub_tmpl, sizeof pub_tmpl / sizeof pub_tmpl[0], &pub);
	if (rv != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv,
		           "C_CreateObject (public key of '%s') on token '%s'", w->label,
		           h->token_label);
		e = ZD_EHSM;
		goto fail;
	}
	if ((e = hsm_key_load(h, priv, &k)) != ZD_OK) {
		e = ZD_EHSM;
		goto fail;
	}
	if (k->alg != w->alg || k->pubkey_len != w->pubkey_len ||
	    memcmp(k->pubkey, w->pubkey, w->pubkey_len) != 0) {
		hsm_err_set(h->err, sizeof h->err,
		            "restored key '%s' on token '%s' reads back as another key", w->label,
		            h->token_label);
		e = ZD_EHSM;
		goto fail;
	}
	if ((e = sign_check(h, k, w->pubkey, w->pubkey_len)) != ZD_OK)
		goto fail;
	h->err[0] = '\0';
	*out = k;
	return ZD_OK;
fail:
	hsm_key_free(k);
	h->f->C_DestroyObject(h->ctl, priv);
	if (pub != CK_INVALID_HANDLE)
		h->f->C_DestroyObject(h->ctl, pub);
	return e;
}
