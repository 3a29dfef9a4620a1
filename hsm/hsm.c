/* hsm/hsm.c -- connecting to the token (PIN, slot, login), reconnecting,
 * signing sessions and hsm_sign(). */
#include "hsm/hsm_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/zd_log.h"
#include "hsm/rv.h"

#define SLOTS_MAX 1024 /* slots we look at for a label */

static char *
dup_opt(const char *s, int *failed)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		*failed = 1;
	return d;
}

zd_err
hsm_new(const struct hsm_config *cfg, struct hsm **out)
{
	int failed = 0;
	if (cfg->token_label == NULL || cfg->token_label[0] == '\0' ||
	    strlen(cfg->token_label) > HSM_TOKEN_LABEL_MAX)
		return ZD_EMALFORMED;
	if ((cfg->pin_file == NULL) == (cfg->pin_env == NULL))
		return ZD_EMALFORMED;
	if ((cfg->pin_file != NULL && cfg->pin_file[0] == '\0') ||
	    (cfg->pin_env != NULL && cfg->pin_env[0] == '\0') ||
	    (cfg->module_path != NULL && cfg->module_path[0] == '\0'))
		return ZD_EMALFORMED;

	struct hsm *h = calloc(1, sizeof *h);
	if (h == NULL)
		return ZD_ENOMEM;
	h->module_path = dup_opt(cfg->module_path ? cfg->module_path : HSM_MODULE_DEFAULT, &failed);
	h->token_label = dup_opt(cfg->token_label, &failed);
	h->pin_file = dup_opt(cfg->pin_file, &failed);
	h->pin_env = dup_opt(cfg->pin_env, &failed);
	h->so = cfg->so_login != 0;
	if (failed || pthread_mutex_init(&h->lock, NULL) != 0) {
		free(h->module_path);
		free(h->token_label);
		free(h->pin_file);
		free(h->pin_env);
		free(h);
		return ZD_ENOMEM;
	}
	*out = h;
	return ZD_OK;
}

static void
ctl_close(struct hsm *h)
{
	/* Closing the last session of the application on the token also logs
	 * out (PKCS#11 v2.40 s5.6, C_CloseSession). */
	if (h->ctl != CK_INVALID_HANDLE)
		h->f->C_CloseSession(h->ctl);
	h->ctl = CK_INVALID_HANDLE;
}

void
hsm_free(struct hsm *h)
{
	if (h == NULL)
		return;
	zd_check_failed(h->sessions_open == 0);
	if (zd_check_failed(h->keys == NULL)) {
		/* Leaked keys stay allocated but can no longer reach h. */
		for (struct hsm_key *k = h->keys; k != NULL; k = k->next)
			k->h = NULL;
	}
	if (h->mod != NULL) {
		ctl_close(h);
		hsm_module_release(h->mod);
	}
	pthread_mutex_destroy(&h->lock);
	free(h->module_path);
	free(h->token_label);
	free(h->pin_file);
	free(h->pin_env);
	free(h);
}

const char *
hsm_error_get(const struct hsm *h)
{
	return h->err;
}

int
hsm_is_connected(const struct hsm *h)
{
	struct hsm *m = (struct hsm *)h; /* the lock is not part of h's value */
	pthread_mutex_lock(&m->lock);
	int c = m->connected;
	pthread_mutex_unlock(&m->lock);
	return c;
}

/* The PIN from the file or the variable, without trailing CR/LF.  On ZD_OK
 * pin[0..*len) holds it; the caller wipes pin[] (all of it) in every case. */
static zd_err
pin_read(struct hsm *h, uint8_t pin[HSM_PIN_MAX + 2], size_t *len)
{
	size_t n = 0;
	if (h->pin_env != NULL) {
		const char *v = getenv(h->pin_env);
		if (v == NULL) {
			hsm_err_set(h->err, sizeof h->err, "PIN variable %s is not set",
			            h->pin_env);
			return ZD_ENOTFOUND;
		}
		n = strlen(v);
		if (n > HSM_PIN_MAX) {
			hsm_err_set(h->err, sizeof h->err,
			            "PIN in variable %s is longer than %d bytes", h->pin_env,
			            HSM_PIN_MAX);
			return ZD_ELIMIT;
		}
		memcpy(pin, v, n);
	} else {
		int fd = open(h->pin_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			hsm_err_set(h->err, sizeof h->err, "cannot read PIN file %s: %s",
			            h->pin_file, strerror(errno));
			return ZD_EIO;
		}
		/* One byte more than a PIN and its CR LF may take tells "too long". */
		while (n < HSM_PIN_MAX + 2) {
			ssize_t r = read(fd, pin + n, HSM_PIN_MAX + 2 - n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				int saved = errno;
				close(fd);
				hsm_err_set(h->err, sizeof h->err, "cannot read PIN file %s: %s",
				            h->pin_file, strerror(saved));
				return ZD_EIO;
			}
			if (r == 0)
				break;
			n += (size_t)r;
		}
		uint8_t extra;
		ssize_t more = n == HSM_PIN_MAX + 2 ? read(fd, &extra, 1) : 0;
		close(fd);
		while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
			n--;
		if (more > 0 || n > HSM_PIN_MAX) {
			hsm_err_set(h->err, sizeof h->err, "PIN in file %s is longer than %d bytes",
			            h->pin_file, HSM_PIN_MAX);
			return ZD_ELIMIT;
		}
	}
	if (n == 0) {
		hsm_err_set(h->err, sizeof h->err, "PIN %s %s is empty",
		            h->pin_env ? "variable" : "file",
		            h->pin_env ? h->pin_env : h->pin_file);
		return ZD_EMALFORMED;
	}
	*len = n;
	return ZD_OK;
}

void
hsm_label_pad(const char *label, unsigned char out[32])
{
	size_t n = strlen(label);
	if (n > 32)
		n = 32;
	memset(out, ' ', 32);
	memcpy(out, label, n);
}

/* The 32-byte label without its padding, as a C string for messages. */
static void
label_str(const unsigned char label[32], char out[33])
{
	size_t n = 32;
	while (n > 0 && label[n - 1] == ' ')
		n--;
	memcpy(out, label, n);
	out[n] = '\0';
}

zd_err
hsm_slot_find(CK_FUNCTION_LIST_PTR f, const char *label, CK_SLOT_ID *out, char *err, size_t errlen)
{
	zd_err e = ZD_EHSM;
	CK_SLOT_ID *slots = NULL;
	CK_ULONG nslots = 0, matches = 0;
	CK_SLOT_ID found = 0;
	unsigned char want[32];
	char seen[256] = "";
	size_t seen_len = 0;
	CK_RV rv;

	hsm_label_pad(label, want);
	/* The list may change between the two calls: try again once. */
	for (int attempt = 0; attempt < 2; attempt++) {
		rv = f->C_GetSlotList(CK_TRUE, NULL, &nslots);
		if (rv != CKR_OK) {
			hsm_err_rv(err, errlen, rv, "C_GetSlotList");
			goto out;
		}
		if (nslots > SLOTS_MAX)
			nslots = SLOTS_MAX;
		free(slots);
		slots = calloc(nslots ? nslots : 1, sizeof *slots);
		if (slots == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		rv = f->C_GetSlotList(CK_TRUE, slots, &nslots);
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
	}
	if (rv != CKR_OK) {
		hsm_err_rv(err, errlen, rv, "C_GetSlotList");
		goto out;
	}
	for (CK_ULONG i = 0; i < nslots; i++) {
		CK_TOKEN_INFO ti;
		char name[33];
		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue; /* gone or unreadable: not the one we want */
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		label_str(ti.label, name);
		if (seen_len < sizeof seen) {
			int w = snprintf(seen + seen_len, sizeof seen - seen_len, "%s'%s'",
			                 seen_len ? ", " : "", name);
			if (w > 0)
				seen_len += (size_t)w;
		}
		if (memcmp(ti.label, want, sizeof want) == 0) {
			found = slots[i];
			matches++;
		}
	}
	if (matches == 0) {
		hsm_err_set(err, errlen, "no token labelled '%s' (tokens present: %s)", label,
		            seen_len ? seen : "none");
		goto out;
	}
	if (matches > 1) {
		hsm_err_set(err, errlen, "%lu tokens are labelled '%s'; labels must be unique",
		            matches, label);
		goto out;
	}
	*out = found;
	e = ZD_OK;
out:
	free(slots);
	return e;
}

static zd_err
connect_impl(struct hsm *h, int reconnect)
{
	uint8_t pin[HSM_PIN_MAX + 2];
	size_t pin_len = 0;
	zd_err e;
	int acquired = 0, reinitialized = 0;
	CK_RV rv;

	h->err[0] = '\0';
	pthread_mutex_lock(&h->lock);
	if (!reconnect && h->connected) {
		pthread_mutex_unlock(&h->lock);
		hsm_err_set(h->err, sizeof h->err, "already connected to token '%s'",
		            h->token_label);
		return ZD_EBUG;
	}
	if (h->sessions_open > 0) {
		unsigned n = h->sessions_open;
		pthread_mutex_unlock(&h->lock);
		hsm_err_set(h->err, sizeof h->err,
		            "%u signing sessions still open on token '%s': close them first", n,
		            h->token_label);
		return ZD_EBUG;
	}
	h->connected = 0; /* no new sessions until we are done */
	pthread_mutex_unlock(&h->lock);

	if ((e = pin_read(h, pin, &pin_len)) != ZD_OK)
		goto out;
	e = ZD_EHSM;
	if (h->mod != NULL) {
		ctl_close(h);
		char why[HSM_ERR_MAX];
		if (reconnect &&
		    hsm_module_reinit(h->mod, &reinitialized, why, sizeof why) != ZD_OK) {
			hsm_err_set(
			        h->err, sizeof h->err,
			        "re-initialising %s for token '%s' failed (token store gone?): %s",
			        h->module_path, h->token_label, why);
			goto out;
		}
	} else {
		if ((e = hsm_module_acquire(h->module_path, &h->mod, h->err, sizeof h->err)) !=
		    ZD_OK)
			goto out;
		e = ZD_EHSM;
		acquired = 1;
		h->f = hsm_module_functions(h->mod);
	}
	if ((e = hsm_slot_find(h->f, h->token_label, &h->slot, h->err, sizeof h->err)) != ZD_OK) {
		size_t n = strlen(h->err);
		if (reconnect && !reinitialized)
			hsm_err_set(h->err + n, sizeof h->err - n,
			            "; the module is shared in this process or was initialised "
			            "by another library, so it was not re-initialised");
		goto out;
	}
	e = ZD_EHSM;
	CK_TOKEN_INFO ti;
	if ((rv = h->f->C_GetTokenInfo(h->slot, &ti)) != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv, "C_GetTokenInfo of token '%s'",
		           h->token_label);
		goto out;
	}
	if (!(ti.flags & CKF_USER_PIN_INITIALIZED)) {
		hsm_err_set(h->err, sizeof h->err, "token '%s' has no user PIN (C_InitPIN first)",
		            h->token_label);
		goto out;
	}
	rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h->ctl);
	if (rv != CKR_OK) {
		h->ctl = CK_INVALID_HANDLE;
		hsm_err_rv(h->err, sizeof h->err, rv, "C_OpenSession on token '%s'",
		           h->token_label);
		goto out;
	}
	rv = h->f->C_Login(h->ctl, h->so ? CKU_SO : CKU_USER, pin, (CK_ULONG)pin_len);
	/* Already logged in: another struct hsm of this process on the same
	 * token did it (login state is per application and token). */
	if (rv != CKR_OK && (rv != CKR_USER_ALREADY_LOGGED_IN || h->so)) {
		hsm_err_rv(h->err, sizeof h->err, rv,
		           "C_Login%s to token '%s' with the PIN from %s %s",
		           h->so ? " as security officer" : "", h->token_label,
		           h->pin_env ? "variable" : "file", h->pin_env ? h->pin_env : h->pin_file);
		goto out;
	}
	h->gen++;
	pthread_mutex_lock(&h->lock);
	h->connected = 1;
	pthread_mutex_unlock(&h->lock);
	e = ZD_OK;

	/* Handles from before a re-initialisation are dead: find every key
	 * again.  A key that is gone stays unusable; the others work. */
	char first[HSM_ERR_MAX] = "";
	for (struct hsm_key *k = h->keys; k != NULL; k = k->next)
		if (k->gen != h->gen && hsm_key_reload(k) != ZD_OK && first[0] == '\0')
			memcpy(first, h->err, sizeof first);
	if (first[0] != '\0') {
		memcpy(h->err, first, sizeof h->err);
		e = ZD_EHSM;
	} else {
		h->err[0] = '\0';
	}
	OPENSSL_cleanse(pin, sizeof pin);
	return e;
out:
	OPENSSL_cleanse(pin, sizeof pin);
	if (h->mod != NULL)
		ctl_close(h);
	if (acquired && !reconnect) {
		/* A failed first connect leaves h as it was: no module. */
		hsm_module_release(h->mod);
		h->mod = NULL;
		h->f = NULL;
	}
	return e;
}

zd_err
hsm_connect(struct hsm *h)
{
	return connect_impl(h, 0);
}

zd_err
hsm_reconnect(struct hsm *h)
{
	return connect_impl(h, 1);
}

static int
mech_has(struct hsm *h, CK_MECHANISM_TYPE mech, CK_FLAGS need, const char *name, CK_ULONG bits)
{
	CK_MECHANISM_INFO mi;
	CK_RV rv = h->f->C_GetMechanismInfo(h->slot, mech, &mi);
	if (rv != CKR_OK) {
		hsm_err_rv(h->err, sizeof h->err, rv, "token '%s' lacks %s", h->token_label, name);
		return 0;
	}
	if ((mi.flags & need) != need) {
		hsm_err_set(h->err, sizeof h->err, "token '%s' has %s but not for %s",
		            h->token_label, name,
		            need == CKF_SIGN ? "signing" : "generating key pairs");
		return 0;
	}
	if (bits != 0 && (bits < mi.ulMinKeySize || bits > mi.ulMaxKeySize)) {
		hsm_err_set(h->err, sizeof h->err, "token '%s': %s takes %lu..%lu bits, not %lu",
		            h->token_label, name, mi.ulMinKeySize, mi.ulMaxKeySize, bits);
		return 0;
	}
	return 1;
}

zd_err
hsm_alg_check(struct hsm *h, uint8_t alg, uint16_t bits)
{
	h->err[0] = '\0';
	if (!hsm_is_connected(h)) {
		hsm_err_set(h->err, sizeof h->err, "not connected to token '%s'", h->token_label);
		return ZD_EHSM;
	}
	int ok;
	switch (alg) {
	case HSM_ALG_ECDSAP256SHA256:
		ok = mech_has(h, CKM_EC_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, "CKM_EC_KEY_PAIR_GEN",
		              0) &&
		     mech_has(h, CKM_ECDSA, CKF_SIGN, "CKM_ECDSA", 0);
		break;
	case HSM_ALG_ED25519:
		ok = mech_has(h, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR,
		              "CKM_EC_EDWARDS_KEY_PAIR_GEN", 0) &&
		     mech_has(h, CKM_EDDSA, CKF_SIGN, "CKM_EDDSA", 0);
		break;
	case HSM_ALG_RSASHA256:
		ok = mech_has(h, CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR,
		              "CKM_RSA_PKCS_KEY_PAIR_GEN", bits) &&
		     mech_has(h, CKM_SHA256_RSA_PKCS, CKF_SIGN, "CKM_SHA256_RSA_PKCS", 0);
		break;
	default:
		hsm_err_set(h->err, sizeof h->err, "DNSSEC algorithm %u is not supported", alg);
		return ZD_EMALFORMED;
	}
	return ok ? ZD_OK : ZD_EHSM;
}

/* ---- sessions ---- */

zd_err
hsm_session_open(struct hsm *h, struct hsm_session **out, char *err, size_t errlen)
{
	struct hsm_session *s = calloc(1, sizeof *s);
	if (s == NULL)
		return ZD_ENOMEM;
	pthread_mutex_lock(&h->lock);
	if (!h->connected) {
		pthread_mutex_unlock(&h->lock);
		hsm_err_set(err, errlen, "not connected to token '%s'", h->token_label);
		free(s);
		return ZD_EHSM;
	}
	h->sessions_open++;
	s->h = h;
	s->gen = h->gen;
	CK_SLOT_ID slot = h->slot;
	pthread_mutex_unlock(&h->lock);

	/* Read-only is enough to sign; the control session's login covers it. */
	CK_RV rv = h->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s->sh);
	if (rv != CKR_OK) {
		hsm_err_rv(err, errlen, rv, "C_OpenSession on token '%s'", h->token_label);
		pthread_mutex_lock(&h->lock);
		h->sessions_open--;
		pthread_mutex_unlock(&h->lock);
		free(s);
		return ZD_EHSM;
	}
	*out = s;
	return ZD_OK;
}

void
hsm_session_close(struct hsm_session *s)
{
	if (s == NULL)
		return;
	struct hsm *h = s->h;
	/* May fail when the token is gone; the session is dead either way. */
	h->f->C_CloseSession(s->sh);
	pthread_mutex_lock(&h->lock);
	if (!zd_check_failed(h->sessions_open > 0))
		h->sessions_open--;
	pthread_mutex_unlock(&h->lock);
	free(s);
}

void
hsm_session_recheck(struct hsm_session *s)
{
	if (s != NULL)
		s->checked_ms = 0;
}

const char *
hsm_session_error_get(const struct hsm_session *s)
{
	return s->err;
}

int
hsm_session_lost(const struct hsm_session *s)
{
	return s->lost;
}

/* Fill s->err for a failed call and find out whether the token is still
 * there: SoftHSM answers a vanished token directory with
 * CKR_OBJECT_HANDLE_INVALID on C_SignInit and CKR_GENERAL_ERROR on
 * C_GetTokenInfo. */
static zd_err
sign_fail(struct hsm_session *s, const struct hsm_key *k, const char *call, CK_RV rv)
{
	struct hsm *h = s->h;
	char id[2 * HSM_ID_MAX + 1];
	CK_TOKEN_INFO ti;

	hsm_key_id_str(k, id, sizeof id);
	hsm_err_rv(s->err, sizeof s->err, rv, "%s with key '%s' (id %s) on token '%s'", call,
	           k->label, id, h->token_label);
	s->lost = hsm_rv_is_lost(rv);
	CK_RV trv = h->f->C_GetTokenInfo(h->slot, &ti);
	if (trv != CKR_OK) {
		size_t n = strlen(s->err);
		hsm_err_rv(s->err + n, sizeof s->err - n, trv, "; token gone? C_GetTokenInfo");
		s->lost = 1;
	}
	return ZD_EHSM;
}

zd_err
hsm_sign(struct hsm_session *s, const struct hsm_key *k, const uint8_t *data, size_t len,
         uint8_t *sig, size_t *siglen)
{
	struct hsm *h = s->h;
	uint8_t digest[EVP_MAX_MD_SIZE];
	uint8_t out[HSM_SIG_MAX];
	const uint8_t *in = data;
	CK_ULONG in_len = (CK_ULONG)len;
	CK_ULONG out_len = sizeof out;
	CK_MECHANISM mech = {0, NULL, 0};
	CK_RV rv;

	s->err[0] = '\0';
	if (k->h != h || k->gen != s->gen) {
		char id[2 * HSM_ID_MAX + 1];
		hsm_key_id_str(k, id, sizeof id);
		hsm_err_set(s->err, sizeof s->err,
		            "key '%s' (id %s) is not loaded in this connection to token '%s' "
		            "(not found again after a reconnect, or session older than it)",
		            k->label, id, h->token_label);
		s->lost = 1;
		return ZD_EHSM;
	}
	if (*siglen < k->sig_len) {
		hsm_err_set(s->err, sizeof s->err, "signature buffer of %zu bytes, %zu needed",
		            *siglen, k->sig_len);
		return ZD_ELIMIT;
	}
	switch (k->alg) {
	case HSM_ALG_ECDSAP256SHA256: {
		/* SoftHSM has no CKM_ECDSA_SHA256: hash here, sign the digest. */
		unsigned int dlen = 0;
		if (EVP_Digest(data, len, digest, &dlen, EVP_sha256(), NULL) != 1) {
			hsm_err_set(s->err, sizeof s->err, "SHA-256 failed (OpenSSL)");
			return ZD_ENOMEM;
		}
		in = digest;
		in_len = dlen;
		mech.mechanism = CKM_ECDSA;
		break;
	}
	case HSM_ALG_RSASHA256:
		mech.mechanism = CKM_SHA256_RSA_PKCS;
		break;
	case HSM_ALG_ED25519:
		mech.mechanism = CKM_EDDSA; /* PureEdDSA: no parameters, the message itself */
		break;
	default:
		if (zd_check_failed(0))
			return ZD_EBUG;
	}
	CK_OBJECT_HANDLE key = k->priv;
	if (k->copy != 0) {
		/* The copy signs even with the token gone: look that it is there. */
		uint64_t now = zd_now_ms();
		if (s->checked_ms == 0 || now - s->checked_ms >= HSM_COPY_CHECK_MS) {
			CK_BBOOL b = CK_FALSE;
			CK_ATTRIBUTE a = {CKA_SIGN, &b, sizeof b};
			rv = h->f->C_GetAttributeValue(s->sh, k->priv, &a, 1);
			if (rv != CKR_OK)
				return sign_fail(s, k, "C_GetAttributeValue (is the key there)",
				                 rv);
			s->checked_ms = now;
		}
		key = k->copy;
	}
	rv = h->f->C_SignInit(s->sh, &mech, key);
	if (rv != CKR_OK)
		return sign_fail(s, k, "C_SignInit", rv);
	/* out holds any signature of ours, so CKR_BUFFER_TOO_SMALL (which would
	 * leave the operation active) cannot happen; any other failure ends it. */
	rv = h->f->C_Sign(s->sh, (CK_BYTE_PTR)in, in_len, out, &out_len);
	if (rv != CKR_OK)
		return sign_fail(s, k, "C_Sign", rv);
	if (out_len != k->sig_len) {
		hsm_err_set(s->err, sizeof s->err,
		            "C_Sign with key '%s' returned %lu bytes, %zu expected", k->label,
		            out_len, k->sig_len);
		return ZD_EHSM;
	}
	memcpy(sig, out, out_len);
	*siglen = out_len;
	return ZD_OK;
}

zd_err
hsm_test_keytag_override(struct hsm *h, const uint16_t *tags, size_t n)
{
	if (n > sizeof h->tag_override / sizeof h->tag_override[0])
		return ZD_ELIMIT;
	if (n > 0)
		memcpy(h->tag_override, tags, n * sizeof *tags);
	h->n_tag_override = n;
	return ZD_OK;
}
