/* hsm/key.c -- key pairs in the token: generate, find by CKA_ID, list,
 * destroy, and the DNSKEY public key field read from the public key object. */
#include "hsm/hsm_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/zd_log.h"

/* DER of the curve OIDs in CKA_EC_PARAMS (PKCS#11 v3.0 s2.3.3 for Ed25519
 * also allows the PrintableString "edwards25519"). */
const uint8_t hsm_oid_p256[10] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
const uint8_t hsm_oid_ed25519[5] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const uint8_t str_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
                                      'd',  's',  '2', '5', '5', '1', '9'};

#define ATTR_MAX 1024 /* bytes of one attribute we read (RSA modulus <= 512) */

static void
key_link(struct hsm *h, struct hsm_key *k)
{
	k->h = h;
	k->prev = NULL;
	k->next = h->keys;
	if (h->keys != NULL)
		h->keys->prev = k;
	h->keys = k;
}

static void
key_unlink(struct hsm_key *k)
{
	if (k->h == NULL)
		return;
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		k->h->keys = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	k->prev = k->next = NULL;
}

void
hsm_key_id_str(const struct hsm_key *k, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (outlen == 0)
		return;
	for (size_t i = 0; i < k->id_len && o + 2 < outlen; i++) {
		out[o++] = hex[k->id[i] >> 4];
		out[o++] = hex[k->id[i] & 15];
	}
	out[o] = '\0';
}

int
hsm_connected_or_fail(struct hsm *h)
{
	h->err[0] = '\0';
	if (hsm_is_connected(h))
		return 1;
	hsm_err_set(h->err, sizeof h->err, "not connected to token '%s'", h->token_label);
	return 0;
}

/* Read one attribute into buf[0..cap); on CKR_OK *len is its length. */
CK_RV
hsm_attr_get(struct hsm *h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, void *buf, size_t cap,
             size_t *len)
{
	CK_ATTRIBUTE a = {type, buf, (CK_ULONG)cap};
	CK_RV rv = h->f->C_GetAttributeValue(h->ctl, obj, &a, 1);
	if (rv == CKR_OK && a.ulValueLen > cap)
		return CKR_BUFFER_TOO_SMALL; /* a module that says OK and overflows */
	if (rv == CKR_OK)
		*len = a.ulValueLen;
	return rv;
}

/* Up to max handles of objects matching tmpl; ZD_ELIMIT when there are more. */
zd_err
hsm_objects_find(struct hsm *h, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl, CK_OBJECT_HANDLE *found,
                 size_t max, size_t *nfound, const char *what)
{
	size_t n = 0;
	CK_RV rv = h->f->C_FindObjectsInit(h->ctl, tmpl, ntmpl);
	if (rv != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv, "C_FindObjectsInit (%s) on token '%s'", what,
		           h->token_label);
		return ZD_EHSM;
	}
	zd_err e = ZD_OK;
	for (;;) {
		CK_OBJECT_HANDLE batch[64];
		CK_ULONG got = 0;
		rv = h->f->C_FindObjects(h->ctl, batch, 64, &got);
		if (rv != CKR_OK) {
			hsm_err_rv(h->err, sizeof h->err, rv, "C_FindObjects (%s) on token '%s'",
			           what, h->token_label);
			e = ZD_EHSM;
			break;
		}
		if (got == 0)
			break;
		if (got > max - n) {
			hsm_err_set(h->err, sizeof h->err,
			            "more than %zu objects (%s) on token '%s'", max, what,
			            h->token_label);
			e = ZD_ELIMIT;
			break;
		}
		memcpy(found + n, batch, got * sizeof *batch);
		n += got;
	}
	h->f->C_FindObjectsFinal(h->ctl);
	if (e == ZD_OK)
		*nfound = n;
	return e;
}

/* X | Y (P-256) or the 32-byte key (Ed25519) from CKA_EC_POINT: the DER
 * OCTET STRING PKCS#11 prescribes, or the raw point some modules return. */
static int
ec_point_parse(uint8_t alg, const uint8_t *p, size_t len, uint8_t *out, size_t *out_len)
{
	if (alg == HSM_ALG_ECDSAP256SHA256) {
		if (len == 67 && p[0] == 0x04 && p[1] == 65 && p[2] == 0x04)
			p += 3;
		else if (len == 65 && p[0] == 0x04)
			p += 1;
		else
			return 0;
		memcpy(out, p, 64); /* RFC 6605 s4: X | Y, no 0x04 prefix */
		*out_len = 64;
		return 1;
	}
	if (len == 34 && p[0] == 0x04 && p[1] == 32)
		p += 2;
	else if (len != 32)
		return 0;
	memcpy(out, p, 32); /* RFC 8080 s3 */
	*out_len = 32;
	return 1;
}

/* CKA_ID, CKA_LABEL and CKA_KEY_TYPE of the private key priv into k and
 * *type.  ZD_EMALFORMED when they do not fit; ZD_EHSM when the token fails. */
static zd_err
priv_read(struct hsm *h, CK_OBJECT_HANDLE priv, struct hsm_key *k, CK_KEY_TYPE *type)
{
	size_t len = 0;
	CK_RV rv;

	if ((rv = hsm_attr_get(h, priv, CKA_ID, k->id, sizeof k->id, &k->id_len)) != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv, "CKA_ID of a private key on token '%s'",
		           h->token_label);
		return rv == CKR_BUFFER_TOO_SMALL ? ZD_EMALFORMED : ZD_EHSM;
	}
	if ((rv = hsm_attr_get(h, priv, CKA_LABEL, k->label, HSM_LABEL_MAX, &len)) != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv, "CKA_LABEL of a private key on token '%s'",
		           h->token_label);
		return rv == CKR_BUFFER_TOO_SMALL ? ZD_EMALFORMED : ZD_EHSM;
	}
	k->label[len] = '\0';
	if ((rv = hsm_attr_get(h, priv, CKA_KEY_TYPE, type, sizeof *type, &len)) != CKR_OK ||
	    len != sizeof *type) {
		hsm_err_rv(h->err, sizeof h->err, rv, "CKA_KEY_TYPE of key '%s'", k->label);
		return ZD_EHSM;
	}
	return ZD_OK;
}

/* Algorithm, size and DNSKEY public key field of k from its public key
 * object pub.  ZD_EMALFORMED (message in h->err) when the pair is no DNSSEC
 * key we sign with; ZD_EHSM when the token fails. */
static zd_err
pub_read(struct hsm *h, CK_OBJECT_HANDLE pub, CK_KEY_TYPE type, struct hsm_key *k)
{
	uint8_t buf[ATTR_MAX], ebuf[ATTR_MAX];
	size_t len = 0, elen = 0;
	CK_RV rv;

	switch (type) {
	case CKK_EC:
	case CKK_EC_EDWARDS:
		rv = hsm_attr_get(h, pub, CKA_EC_PARAMS, buf, sizeof buf, &len);
		if (rv != CKR_OK) {
			hsm_err_rv(h->err, sizeof h->err, rv, "CKA_EC_PARAMS of key '%s'",
			           k->label);
			return ZD_EHSM;
		}
		if (type == CKK_EC && len == sizeof hsm_oid_p256 &&
		    !memcmp(buf, hsm_oid_p256, len)) {
			k->alg = HSM_ALG_ECDSAP256SHA256;
		} else if (type == CKK_EC_EDWARDS &&
		           ((len == sizeof hsm_oid_ed25519 && !memcmp(buf, hsm_oid_ed25519, len)) ||
		            (len == sizeof str_ed25519 && !memcmp(buf, str_ed25519, len)))) {
			k->alg = HSM_ALG_ED25519;
		} else {
			hsm_err_set(h->err, sizeof h->err,
			            "key '%s' is on a curve other than P-256 or Ed25519", k->label);
			return ZD_EMALFORMED;
		}
		rv = hsm_attr_get(h, pub, CKA_EC_POINT, buf, sizeof buf, &len);
		if (rv != CKR_OK) {
			hsm_err_rv(h->err, sizeof h->err, rv, "CKA_EC_POINT of key '%s'", k->label);
			return ZD_EHSM;
		}
		if (!ec_point_parse(k->alg, buf, len, k->pubkey, &k->pubkey_len)) {
			hsm_err_set(h->err, sizeof h->err,
			            "CKA_EC_POINT of key '%s' does not parse", k->label);
			return ZD_EMALFORMED;
		}
		k->bits = 256;
		k->sig_len = 64; /* RFC 6605 s4 r | s; RFC 8080 s4 R | S */
		return ZD_OK;
	case CKK_RSA: {
		rv = hsm_attr_get(h, pub, CKA_MODULUS, buf, sizeof buf, &len);
		if (rv == CKR_OK)
			rv = hsm_attr_get(h, pub, CKA_PUBLIC_EXPONENT, ebuf, sizeof ebuf, &elen);
		if (rv != CKR_OK) {
			hsm_err_rv(h->err, sizeof h->err, rv, "RSA public key of key '%s'",
			           k->label);
			return ZD_EHSM;
		}
		if (hsm_rsa_pubkey_encode(ebuf, elen, buf, len, k->pubkey, sizeof k->pubkey,
		                          &k->pubkey_len) != ZD_OK) {
			hsm_err_set(
			        h->err, sizeof h->err,
			        "RSA key '%s' has a modulus outside %d..%d bits or a bad exponent",
			        k->label, HSM_RSA_BITS_MIN, HSM_RSA_BITS_MAX);
			return ZD_EMALFORMED;
		}
		/* The encoder accepted it: the modulus has a non-zero byte. */
		const uint8_t *n = buf;
		size_t n_len = len;
		while (n[0] == 0) {
			n++;
			n_len--;
		}
		size_t bits = n_len * 8;
		for (uint8_t top = n[0]; !(top & 0x80); top <<= 1)
			bits--;
		k->alg = HSM_ALG_RSASHA256;
		k->bits = (uint16_t)bits;
		k->sig_len = n_len; /* PKCS #1 v1.5: as long as the modulus */
		return ZD_OK;
	}
	default:
		hsm_err_set(h->err, sizeof h->err, "key '%s' has key type 0x%lx, not RSA or EC",
		            k->label, type);
		return ZD_EMALFORMED;
	}
}

/* The one public key object with this CKA_ID.  ZD_EMALFORMED when there is
 * none or more than one. */
static zd_err
pub_find(struct hsm *h, const uint8_t *id, size_t id_len, const char *label, CK_OBJECT_HANDLE *out)
{
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &cls, sizeof cls},
	        {CKA_ID, (void *)id, (CK_ULONG)id_len},
	};
	CK_OBJECT_HANDLE found[2];
	size_t n = 0;
	zd_err e = hsm_objects_find(h, tmpl, 2, found, 2, &n, "public key by CKA_ID");
	if (e == ZD_ELIMIT || (e == ZD_OK && n != 1)) {
		hsm_err_set(h->err, sizeof h->err, "key '%s' has %s public key object", label,
		            e == ZD_OK && n == 0 ? "no" : "more than one");
		return ZD_EMALFORMED;
	}
	if (e != ZD_OK)
		return e;
	*out = found[0];
	return ZD_OK;
}

/* Everything about the pair whose private key is priv, into k (not linked).
 * ZD_EMALFORMED when it is no usable DNSSEC key pair. */
static zd_err
pair_read(struct hsm *h, CK_OBJECT_HANDLE priv, struct hsm_key *k)
{
	CK_KEY_TYPE type;
	zd_err e = priv_read(h, priv, k, &type);
	if (e != ZD_OK)
		return e;
	if ((e = pub_find(h, k->id, k->id_len, k->label, &k->pub)) != ZD_OK)
		return e;
	if ((e = pub_read(h, k->pub, type, k)) != ZD_OK)
		return e;
	k->priv = priv;
	return ZD_OK;
}

/* A new key, linked to h, for the private key priv. */
zd_err
hsm_key_load(struct hsm *h, CK_OBJECT_HANDLE priv, struct hsm_key **out)
{
	struct hsm_key *k = calloc(1, sizeof *k);
	if (k == NULL)
		return ZD_ENOMEM;
	zd_err e = pair_read(h, priv, k);
	if (e != ZD_OK) {
		free(k);
		return e;
	}
	k->gen = h->gen;
	key_link(h, k);
	*out = k;
	return ZD_OK;
}

/* Private keys with this CKA_ID (at most 2 reported). */
static zd_err
privs_by_id(struct hsm *h, const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE found[2], size_t *n)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &cls, sizeof cls},
	        {CKA_ID, (void *)id, (CK_ULONG)id_len},
	};
	zd_err e = hsm_objects_find(h, tmpl, 2, found, 2, n, "private key by CKA_ID");
	if (e == ZD_ELIMIT) {
		*n = 2;
		return ZD_OK;
	}
	return e;
}

zd_err
hsm_key_find(struct hsm *h, const uint8_t *id, size_t id_len, struct hsm_key **out)
{
	CK_OBJECT_HANDLE found[2];
	size_t n = 0;

	if (id_len == 0 || id_len > HSM_ID_MAX)
		return ZD_EMALFORMED;
	if (!hsm_connected_or_fail(h))
		return ZD_EHSM;
	zd_err e = privs_by_id(h, id, id_len, found, &n);
	if (e != ZD_OK)
		return e;
	if (n == 0) {
		*out = NULL;
		return ZD_OK;
	}
	if (n > 1) {
		hsm_err_set(h->err, sizeof h->err,
		            "several private keys on token '%s' share the CKA_ID asked for",
		            h->token_label);
		return ZD_EHSM;
	}
	e = hsm_key_load(h, found[0], out);
	return e == ZD_EMALFORMED ? ZD_EHSM : e;
}

zd_err
hsm_key_reload(struct hsm_key *k)
{
	struct hsm *h = k->h;
	struct hsm_key now;
	CK_OBJECT_HANDLE found[2];
	size_t n = 0;
	char id[2 * HSM_ID_MAX + 1];

	hsm_key_id_str(k, id, sizeof id);
	zd_err e = privs_by_id(h, k->id, k->id_len, found, &n);
	if (e != ZD_OK)
		return e;
	if (n != 1) {
		hsm_err_set(h->err, sizeof h->err, "key '%s' (id %s): %s private key on token '%s'",
		            k->label, id, n == 0 ? "no" : "more than one", h->token_label);
		return ZD_EHSM;
	}
	memset(&now, 0, sizeof now);
	if ((e = pair_read(h, found[0], &now)) != ZD_OK)
		return e == ZD_EMALFORMED ? ZD_EHSM : e;
	/* The same CKA_ID must still be the same key: never sign with another. */
	if (now.alg != k->alg || now.pubkey_len != k->pubkey_len ||
	    memcmp(now.pubkey, k->pubkey, k->pubkey_len) != 0) {
		hsm_err_set(h->err, sizeof h->err,
		            "key '%s' (id %s) on token '%s' is now another key; refusing it",
		            k->label, id, h->token_label);
		return ZD_EHSM;
	}
	k->priv = now.priv;
	k->pub = now.pub;
	k->copy = 0; /* gone with the old connection */
	k->gen = h->gen;
	return ZD_OK;
}

static int
has_prefix(const char *label, const char *prefix)
{
	return prefix == NULL || strncmp(label, prefix, strlen(prefix)) == 0;
}

void
hsm_key_list_free(struct hsm_key **keys, size_t n)
{
	if (keys == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		hsm_key_free(keys[i]);
	free(keys);
}

zd_err
hsm_key_list(struct hsm *h, const char *label_prefix, struct hsm_key ***keys, size_t *n)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &cls, sizeof cls},
	        {CKA_TOKEN, &yes, sizeof yes},
	};
	CK_OBJECT_HANDLE *privs = NULL;
	struct hsm_key **list = NULL;
	size_t nprivs = 0, nlist = 0;
	zd_err e;

	if (!hsm_connected_or_fail(h))
		return ZD_EHSM;
	privs = calloc(HSM_KEYS_MAX, sizeof *privs);
	list = calloc(HSM_KEYS_MAX, sizeof *list);
	if (privs == NULL || list == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	if ((e = hsm_objects_find(h, tmpl, 2, privs, HSM_KEYS_MAX, &nprivs, "private keys")) !=
	    ZD_OK)
		goto out;
	for (size_t i = 0; i < nprivs; i++) {
		char label[HSM_LABEL_MAX + 1];
		size_t len = 0;
		CK_RV rv = hsm_attr_get(h, privs[i], CKA_LABEL, label, HSM_LABEL_MAX, &len);
		if (rv == CKR_BUFFER_TOO_SMALL)
			continue; /* longer than any label of ours */
		if (rv != CKR_OK) {
			hsm_err_rv(h->err, sizeof h->err, rv,
			           "CKA_LABEL of a private key on token '%s'", h->token_label);
			e = ZD_EHSM;
			goto out;
		}
		label[len] = '\0';
		if (!has_prefix(label, label_prefix))
			continue;
		e = hsm_key_load(h, privs[i], &list[nlist]);
		if (e == ZD_EMALFORMED)
			continue; /* not a DNSSEC key pair we sign with */
		if (e != ZD_OK)
			goto out;
		nlist++;
	}
	h->err[0] = '\0';
	*keys = list;
	*n = nlist;
	list = NULL;
	nlist = 0;
	e = ZD_OK;
out:
	hsm_key_list_free(list, nlist);
	free(privs);
	return e;
}

void
hsm_key_free(struct hsm_key *k)
{
	if (k == NULL)
		return;
	key_unlink(k);
	free(k);
}

/* Delete an object; ZD_EHSM with the message in h->err. */
static zd_err
object_destroy(struct hsm *h, CK_OBJECT_HANDLE obj, const char *what, const char *label)
{
	CK_RV rv = h->f->C_DestroyObject(h->ctl, obj);
	if (rv == CKR_OK)
		return ZD_OK;
	hsm_err_rv(h->err, sizeof h->err, rv, "C_DestroyObject (%s of key '%s') on token '%s'",
	           what, label, h->token_label);
	return ZD_EHSM;
}

zd_err
hsm_key_destroy(struct hsm_key **kp)
{
	struct hsm_key *k = *kp;
	struct hsm *h = k->h;
	if (zd_check_failed(h != NULL))
		return ZD_EBUG;
	if (!hsm_connected_or_fail(h))
		return ZD_EHSM;
	if (k->gen != h->gen) {
		hsm_err_set(h->err, sizeof h->err, "key '%s' is not loaded; cannot destroy it",
		            k->label);
		return ZD_EHSM;
	}
	/* The private key first: a public key left alone is harmless, a private
	 * key without its public key would be invisible to hsm_key_list(). */
	zd_err e = object_destroy(h, k->priv, "private key", k->label);
	if (e != ZD_OK)
		return e;
	k->gen = 0; /* half gone: never sign with it again */
	if ((e = object_destroy(h, k->pub, "public key", k->label)) != ZD_OK)
		return e;
	hsm_key_free(k);
	*kp = NULL;
	return ZD_OK;
}

static zd_err
spec_check(struct hsm *h, const struct hsm_keyspec *spec)
{
	size_t label_len = spec->label ? strlen(spec->label) : 0;
	if (label_len == 0 || label_len > HSM_LABEL_MAX) {
		hsm_err_set(h->err, sizeof h->err, "key label must have 1..%d bytes",
		            HSM_LABEL_MAX);
		return ZD_EMALFORMED;
	}
	switch (spec->alg) {
	case HSM_ALG_RSASHA256:
		if (spec->bits < 2048 || spec->bits > HSM_RSA_BITS_MAX || spec->bits % 8 != 0) {
			hsm_err_set(h->err, sizeof h->err,
			            "RSA keys have 2048..%d bits (a multiple of 8), not %u",
			            HSM_RSA_BITS_MAX, spec->bits);
			return ZD_EMALFORMED;
		}
		return ZD_OK;
	case HSM_ALG_ECDSAP256SHA256:
	case HSM_ALG_ED25519:
		if (spec->bits != 0 && spec->bits != 256) {
			hsm_err_set(h->err, sizeof h->err, "%s keys have 256 bits, not %u",
			            hsm_alg_name(spec->alg), spec->bits);
			return ZD_EMALFORMED;
		}
		return ZD_OK;
	default:
		hsm_err_set(h->err, sizeof h->err, "DNSSEC algorithm %u is not supported",
		            spec->alg);
		return ZD_EMALFORMED;
	}
}

zd_err
hsm_key_generate(struct hsm *h, const struct hsm_keyspec *spec, struct hsm_key **out)
{
	static const uint8_t f4[] = {0x01, 0x00, 0x01}; /* e = 65537 */
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = spec->bits;
	uint8_t id[HSM_ID_LEN];
	CK_MECHANISM mech = {0, NULL, 0};
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	struct hsm_key *k = NULL;
	CK_KEY_TYPE type;
	zd_err e;

	if (!hsm_connected_or_fail(h))
		return ZD_EHSM;
	if ((e = spec_check(h, spec)) != ZD_OK)
		return e;
	if (RAND_bytes(id, sizeof id) != 1) {
		hsm_err_set(h->err, sizeof h->err, "no random bytes for a CKA_ID (OpenSSL)");
		return ZD_EBUG;
	}
	CK_ULONG label_len = (CK_ULONG)strlen(spec->label);
	/* The public key: verify only.  Its last two entries depend on alg. */
	CK_ATTRIBUTE pub_tmpl[] = {
	        {CKA_TOKEN, &yes, sizeof yes},
	        {CKA_PRIVATE, &no, sizeof no},
	        {CKA_VERIFY, &yes, sizeof yes},
	        {CKA_ENCRYPT, &no, sizeof no},
	        {CKA_WRAP, &no, sizeof no},
	        {CKA_ID, id, sizeof id},
	        {CKA_LABEL, (void *)spec->label, label_len},
	        {CKA_EC_PARAMS, NULL, 0},
	        {CKA_PUBLIC_EXPONENT, NULL, 0},
	};
	CK_ULONG npub = 7;
	/* The private key: made inside, sign only, never readable; wrappable
	 * only when asked, and then only with a key the SO marked trusted. */
	CK_BBOOL wrappable = spec->wrappable ? CK_TRUE : CK_FALSE;
	CK_ATTRIBUTE priv_tmpl[] = {
	        {CKA_TOKEN, &yes, sizeof yes},
	        {CKA_PRIVATE, &yes, sizeof yes},
	        {CKA_SENSITIVE, &yes, sizeof yes},
	        {CKA_EXTRACTABLE, &wrappable, sizeof wrappable},
	        {CKA_WRAP_WITH_TRUSTED, &yes, sizeof yes},
	        {CKA_SIGN, &yes, sizeof yes},
	        {CKA_DECRYPT, &no, sizeof no},
	        {CKA_UNWRAP, &no, sizeof no},
	        {CKA_DERIVE, &no, sizeof no},
	        {CKA_ID, id, sizeof id},
	        {CKA_LABEL, (void *)spec->label, label_len},
	};
	switch (spec->alg) {
	case HSM_ALG_ECDSAP256SHA256:
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		pub_tmpl[npub++] =
		        (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)hsm_oid_p256, sizeof hsm_oid_p256};
		type = CKK_EC;
		break;
	case HSM_ALG_ED25519:
		mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
		pub_tmpl[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)hsm_oid_ed25519,
		                                  sizeof hsm_oid_ed25519};
		type = CKK_EC_EDWARDS;
		break;
	default: /* HSM_ALG_RSASHA256; spec_check() allows nothing else */
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		pub_tmpl[npub++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof bits};
		pub_tmpl[npub++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, (void *)f4, sizeof f4};
		type = CKK_RSA;
		break;
	}
	CK_RV rv = h->f->C_GenerateKeyPair(h->ctl, &mech, pub_tmpl, npub, priv_tmpl,
	                                   sizeof priv_tmpl / sizeof priv_tmpl[0], &pub, &priv);
	if (rv != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv,
		           "C_GenerateKeyPair (%s %s) for key '%s' on token '%s'",
		           hsm_alg_name(spec->alg),
		           spec->alg == HSM_ALG_ED25519     ? "CKM_EC_EDWARDS_KEY_PAIR_GEN"
		           : spec->alg == HSM_ALG_RSASHA256 ? "CKM_RSA_PKCS_KEY_PAIR_GEN"
		                                            : "CKM_EC_KEY_PAIR_GEN",
		           spec->label, h->token_label);
		return ZD_EHSM;
	}
	if ((k = calloc(1, sizeof *k)) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	memcpy(k->id, id, sizeof id);
	k->id_len = sizeof id;
	memcpy(k->label, spec->label, label_len);
	k->label[label_len] = '\0';
	k->priv = priv;
	k->pub = pub;
	if ((e = pub_read(h, pub, type, k)) != ZD_OK) {
		e = ZD_EHSM;
		goto out;
	}
	if (k->alg != spec->alg || (spec->alg == HSM_ALG_RSASHA256 && k->bits != spec->bits)) {
		hsm_err_set(
		        h->err, sizeof h->err,
		        "token '%s' made a %s key of %u bits for '%s', not the %s key asked for",
		        h->token_label, hsm_alg_name(k->alg), k->bits, spec->label,
		        hsm_alg_name(spec->alg));
		e = ZD_EHSM;
		goto out;
	}
	k->gen = h->gen;
	key_link(h, k);
	*out = k;
	k = NULL;
	h->err[0] = '\0';
	e = ZD_OK;
out:
	if (e != ZD_OK) {
		/* Leave nothing behind; h->err keeps the first failure. */
		h->f->C_DestroyObject(h->ctl, priv);
		h->f->C_DestroyObject(h->ctl, pub);
	}
	free(k);
	return e;
}

zd_err
hsm_key_generate_unique(struct hsm *h, const struct hsm_keyspec *spec, uint16_t flags,
                        const uint16_t *used, size_t n_used, unsigned max_tries,
                        struct hsm_key **out)
{
	uint16_t last = 0;
	for (unsigned i = 0; i < max_tries; i++) {
		struct hsm_key *k = NULL;
		zd_err e = hsm_key_generate(h, spec, &k);
		if (e != ZD_OK)
			return e;
		uint16_t tag = hsm_key_tag_get(k, flags);
		if (h->n_tag_override > 0) {
			tag = h->tag_override[0];
			memmove(h->tag_override, h->tag_override + 1,
			        (h->n_tag_override - 1) * sizeof h->tag_override[0]);
			h->n_tag_override--;
		}
		/* RFC 5011 s5: revoking a KSK changes its tag; that one must not
		 * collide with a key of the zone either. */
		int revoked_ok = !(flags & HSM_DNSKEY_SEP) ||
		                 hsm_keytag_check(hsm_key_tag_get(k, flags | HSM_DNSKEY_REVOKE),
		                                  used, n_used) == ZD_OK;
		if (hsm_keytag_check(tag, used, n_used) == ZD_OK && revoked_ok) {
			*out = k;
			return ZD_OK;
		}
		last = tag;
		zd_log(ZD_LOG_WARNING, "hsm", NULL,
		       "new key '%s' has key tag %u%s, which a key of the zone has: destroyed, "
		       "generating another",
		       spec->label,
		       revoked_ok ? tag : hsm_key_tag_get(k, flags | HSM_DNSKEY_REVOKE),
		       revoked_ok ? "" : " once revoked");
		if ((e = hsm_key_destroy(&k)) != ZD_OK) {
			char why[HSM_ERR_MAX];
			memcpy(why, h->err, sizeof why);
			hsm_err_set(h->err, sizeof h->err,
			            "key tag %u of new key '%s' collides; destroying it failed: %s",
			            tag, spec->label, why);
			hsm_key_free(k);
			return e;
		}
	}
	hsm_err_set(h->err, sizeof h->err,
	            "key tag collided with the zone's keys %u times in a row (last %u); no key "
	            "made for '%s'",
	            max_tries, last, spec->label);
	return ZD_ELIMIT;
}

zd_err
hsm_key_protection_get(struct hsm_key *k, struct hsm_key_protection *out)
{
	struct hsm *h = k->h;
	CK_BBOOL b[4] = {0, 0, 0, 0};
	if (zd_check_failed(h != NULL))
		return ZD_EBUG;
	if (!hsm_connected_or_fail(h))
		return ZD_EHSM;
	CK_ATTRIBUTE a[] = {
	        {CKA_SENSITIVE, &b[0], sizeof b[0]},
	        {CKA_EXTRACTABLE, &b[1], sizeof b[1]},
	        {CKA_ALWAYS_SENSITIVE, &b[2], sizeof b[2]},
	        {CKA_NEVER_EXTRACTABLE, &b[3], sizeof b[3]},
	};
	CK_RV rv = h->f->C_GetAttributeValue(h->ctl, k->priv, a, 4);
	if (rv != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv,
		           "C_GetAttributeValue (protection of key '%s')", k->label);
		return ZD_EHSM;
	}
	out->sensitive = b[0] == CK_TRUE;
	out->extractable = b[1] == CK_TRUE;
	out->always_sensitive = b[2] == CK_TRUE;
	out->never_extractable = b[3] == CK_TRUE;
	return ZD_OK;
}

zd_err
hsm_key_session_copy(struct hsm_key *k)
{
	struct hsm *h = k->h;
	CK_BBOOL no = CK_FALSE, b[2] = {CK_FALSE, CK_TRUE};
	CK_ATTRIBUTE tmpl[] = {{CKA_TOKEN, &no, sizeof no}};
	CK_ATTRIBUTE a[] = {{CKA_SENSITIVE, &b[0], sizeof b[0]},
	                    {CKA_EXTRACTABLE, &b[1], sizeof b[1]}};
	CK_OBJECT_HANDLE copy = 0;

	if (zd_check_failed(h != NULL))
		return ZD_EBUG;
	if (!hsm_connected_or_fail(h))
		return ZD_EHSM;
	if (k->copy != 0 && k->gen == h->gen)
		return ZD_OK;
	k->copy = 0;
	CK_RV rv = h->f->C_CopyObject(h->ctl, k->priv, tmpl, 1, &copy);
	if (rv != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv, "C_CopyObject (session copy of key '%s')",
		           k->label);
		return ZD_EHSM;
	}
	/* A copy can only be made more protected; check that it is not less. */
	rv = h->f->C_GetAttributeValue(h->ctl, copy, a, 2);
	if (rv != CKR_OK || b[0] != CK_TRUE || b[1] != CK_FALSE) {
		if (rv != CKR_OK)
			hsm_err_rv(h->err, sizeof h->err, rv,
			           "C_GetAttributeValue (session copy of key '%s')", k->label);
		else
			hsm_err_set(h->err, sizeof h->err,
			            "the session copy of key '%s' is not sensitive and "
			            "unextractable; not using it",
			            k->label);
		h->f->C_DestroyObject(h->ctl, copy);
		return ZD_EHSM;
	}
	k->copy = copy;
	return ZD_OK;
}

uint8_t
hsm_key_alg_get(const struct hsm_key *k)
{
	return k->alg;
}

uint16_t
hsm_key_bits_get(const struct hsm_key *k)
{
	return k->bits;
}

const char *
hsm_key_label_get(const struct hsm_key *k)
{
	return k->label;
}

const uint8_t *
hsm_key_id_get(const struct hsm_key *k, size_t *len)
{
	*len = k->id_len;
	return k->id;
}

const uint8_t *
hsm_key_pubkey_get(const struct hsm_key *k, size_t *len)
{
	*len = k->pubkey_len;
	return k->pubkey;
}

size_t
hsm_key_siglen_get(const struct hsm_key *k)
{
	return k->sig_len;
}

zd_err
hsm_key_dnskey_rdata(const struct hsm_key *k, uint16_t flags, uint8_t *out, size_t cap, size_t *len)
{
	return hsm_dnskey_rdata(flags, k->alg, k->pubkey, k->pubkey_len, out, cap, len);
}

uint16_t
hsm_key_tag_get(const struct hsm_key *k, uint16_t flags)
{
	uint8_t rdata[HSM_DNSKEY_RDATA_MAX];
	size_t len = 0;
	/* k->pubkey was checked when the key was loaded: this cannot fail. */
	if (zd_check_failed(hsm_key_dnskey_rdata(k, flags, rdata, sizeof rdata, &len) == ZD_OK))
		return 0;
	return hsm_keytag_get(rdata, len);
}

zd_err
hsm_key_public_new(uint8_t alg, const uint8_t *pub, size_t len, const char *label,
                   struct hsm_key **out)
{
	const uint8_t *e, *n;
	size_t e_len, n_len;
	if (hsm_pubkey_check(alg, pub, len) != ZD_OK || label == NULL ||
	    strlen(label) > HSM_LABEL_MAX)
		return ZD_EMALFORMED;
	struct hsm_key *k = calloc(1, sizeof *k);
	if (k == NULL)
		return ZD_ENOMEM;
	k->alg = alg;
	memcpy(k->pubkey, pub, len);
	k->pubkey_len = len;
	snprintf(k->label, sizeof k->label, "%s", label);
	if (alg == HSM_ALG_RSASHA256) {
		if (hsm_rsa_pubkey_split(pub, len, &e, &e_len, &n, &n_len) != ZD_OK) {
			free(k);
			return ZD_EMALFORMED;
		}
		size_t bits = n_len * 8;
		for (uint8_t top = n[0]; !(top & 0x80); top <<= 1)
			bits--;
		k->bits = (uint16_t)bits;
		k->sig_len = n_len;
	} else {
		k->bits = 256;
		k->sig_len = 64;
	}
	*out = k;
	return ZD_OK;
}
