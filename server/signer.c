/* server/signer.c -- keys, reconciliation of each touched name, RRSIGs
 * (see signer.h).  The NSEC3/NSEC chain is in nsec3.c. */
#include "server/signer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/zd_clock.h"
#include "common/zd_buf.h"
#include "common/zd_log.h"
#include "common/zd_parse.h"
#include "hsm/hsm.h"
#include "hsm/pool.h"
#include "server/kskbundle.h"
#include "server/signer_priv.h"

#define KEYGEN_TRIES    16
#define PENDING_MAX     100000 /* names waiting for a refresh */
#define TYPES_MAX       256    /* types at one name we reconcile */
#define KEY_LABEL_MAX   300
#define POOL_TIMEOUT_MS 60000 /* no signature from any worker for this long: failure */
#define POOL_MIN_JOBS   2048  /* a full signing with fewer signatures needs no pool */

/* ---- the token ---------------------------------------------------------- */

zd_err
signer_token_new(const struct zd_hsm_config *hc, struct signer_token **out, char *err,
                 size_t errlen)
{
	struct hsm_config c = {
	        .module_path = hc->module,
	        .token_label = hc->token_label,
	        .pin_file = hc->pin_file,
	        .pin_env = hc->pin_env,
	};
	struct signer_token *tk = calloc(1, sizeof *tk);
	zd_err e;

	if (tk == NULL)
		return ZD_ENOMEM;
	if ((e = hsm_new(&c, &tk->h)) != ZD_OK) {
		snprintf(err, errlen, "hsm: %s", zd_strerror(e));
		free(tk);
		return e;
	}
	if ((e = hsm_connect(tk->h)) != ZD_OK) {
		snprintf(err, errlen, "hsm: %s", hsm_error_get(tk->h));
		goto fail;
	}
	if ((e = hsm_session_open(tk->h, &tk->sess, err, errlen)) != ZD_OK)
		goto fail;
	tk->up = 1;
	tk->hc = hc;
	*out = tk;
	return ZD_OK;
fail:
	hsm_free(tk->h);
	free(tk);
	return e;
}

void
signer_token_free(struct signer_token *tk)
{
	if (tk == NULL)
		return;
	hsm_session_close(tk->sess);
	/* keys are the signers' and must be gone: signer_free() first */
	hsm_free(tk->h);
	free(tk);
}

int
signer_token_is_up(const struct signer_token *tk)
{
	return tk->up;
}

zd_err
signer_token_check(struct signer_token *tk, char *err, size_t errlen)
{
	zd_err e;

	if (tk->up)
		return ZD_OK;
	hsm_session_close(tk->sess);
	tk->sess = NULL;
	if ((e = hsm_reconnect(tk->h)) != ZD_OK) {
		snprintf(err, errlen, "%s", hsm_error_get(tk->h));
		return e;
	}
	if ((e = hsm_session_open(tk->h, &tk->sess, err, errlen)) != ZD_OK)
		return e;
	tk->up = 1;
	return ZD_OK;
}

zd_err
signer_token_rescan(struct signer_token *tk, char *err, size_t errlen)
{
	tk->up = 0;
	return signer_token_check(tk, err, errlen);
}

static zd_err
token_sign(struct signer_token *tk, const struct hsm_key *k, const uint8_t *data, size_t len,
           uint8_t *sig, size_t *siglen, char *err, size_t errlen)
{
	if (!tk->up) {
		snprintf(err, errlen, "the token is not available");
		return ZD_EHSM;
	}
	zd_err e = hsm_sign(tk->sess, k, data, len, sig, siglen);
	if (e != ZD_OK) {
		snprintf(err, errlen, "%s", hsm_session_error_get(tk->sess));
		if (hsm_session_lost(tk->sess))
			tk->up = 0;
	}
	return e;
}

/* ---- records ------------------------------------------------------------ */

ldns_rr *
signer_rr_make(const ldns_rdf *owner, uint16_t type, uint32_t ttl, const uint8_t *rdata, size_t len)
{
	uint8_t *wire = NULL;
	ldns_rr *rr = NULL;
	ldns_rdf *o = NULL;
	size_t pos = 0;

	if (len > 65535 || (wire = malloc(len + 2)) == NULL)
		return NULL;
	wire[0] = (uint8_t)(len >> 8);
	wire[1] = (uint8_t)len;
	memcpy(wire + 2, rdata, len);
	if ((rr = ldns_rr_new()) == NULL || (o = ldns_rdf_clone(owner)) == NULL)
		goto fail;
	ldns_rr_set_owner(rr, o);
	ldns_rr_set_type(rr, (ldns_rr_type)type);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, ttl);
	if (ldns_wire2rdf(rr, wire, len + 2, &pos) != LDNS_STATUS_OK)
		goto fail;
	free(wire);
	return rr;
fail:
	free(wire);
	ldns_rr_free(rr);
	return NULL;
}

zd_err
signer_rrset_put1(struct work *w, const ldns_rdf *owner, uint16_t type, uint16_t covered,
                  ldns_rr *rr)
{
	ldns_rr_list *l = ldns_rr_list_new();
	zd_err e;

	if (l == NULL || (rr != NULL && !ldns_rr_list_push_rr(l, rr))) {
		ldns_rr_list_free(l);
		ldns_rr_free(rr);
		return ZD_ENOMEM;
	}
	e = store_txn_rrset_put(w->t, owner, type, covered, l); /* the list owns rr */
	ldns_rr_list_deep_free(l);
	return e;
}

/* The RRs at owner as of the txn's version, cloned. */
static zd_err
collect(void *arg, const ldns_rr *rr)
{
	ldns_rr *c = ldns_rr_clone(rr);
	if (c == NULL || !ldns_rr_list_push_rr(arg, c)) { /* the list owns c */
		ldns_rr_free(c);
		return ZD_ENOMEM;
	}
	return ZD_OK;
}

zd_err
signer_name_rrs(struct work *w, uint64_t v, const ldns_rdf *owner, ldns_rr_list **out)
{
	ldns_rr_list *l = ldns_rr_list_new();
	zd_err e;
	if (l == NULL)
		return ZD_ENOMEM;
	if ((e = store_name_rrs(w->s, v, owner, collect, l)) != ZD_OK) {
		ldns_rr_list_deep_free(l);
		return e;
	}
	*out = l;
	return ZD_OK;
}

/* ---- name vectors --------------------------------------------------------- */

zd_err
namevec_push(struct namevec *nv, ldns_rdf *name)
{
	if (name == NULL)
		return ZD_ENOMEM;
	if (nv->n == nv->cap) {
		size_t ncap = nv->cap ? nv->cap * 2 : 64;
		ldns_rdf **p = realloc(nv->v, ncap * sizeof *p);
		if (p == NULL) {
			ldns_rdf_deep_free(name);
			return ZD_ENOMEM;
		}
		nv->v = p;
		nv->cap = ncap;
	}
	nv->v[nv->n++] = name;
	return ZD_OK;
}

static int
rdf_ptr_cmp(const void *a, const void *b)
{
	return ldns_dname_compare(*(ldns_rdf *const *)a, *(ldns_rdf *const *)b);
}

void
namevec_sort_unique(struct namevec *nv)
{
	size_t w = 0;
	qsort(nv->v, nv->n, sizeof *nv->v, rdf_ptr_cmp);
	for (size_t i = 0; i < nv->n; i++) {
		if (w > 0 && ldns_dname_compare(nv->v[w - 1], nv->v[i]) == 0)
			ldns_rdf_deep_free(nv->v[i]);
		else
			nv->v[w++] = nv->v[i];
	}
	nv->n = w;
}

void
namevec_clear(struct namevec *nv)
{
	for (size_t i = 0; i < nv->n; i++)
		ldns_rdf_deep_free(nv->v[i]);
	free(nv->v);
	memset(nv, 0, sizeof *nv);
}

/* ---- keys ------------------------------------------------------------------ */

static zd_err
dnskey_rr(const struct signer *sg, const struct hsm_key *k, uint16_t flags, ldns_rr **out)
{
	uint8_t rd[HSM_DNSKEY_RDATA_MAX];
	size_t len = 0;
	zd_err e = hsm_key_dnskey_rdata(k, flags, rd, sizeof rd, &len);
	if (e != ZD_OK)
		return e;
	*out = signer_rr_make(sg->apex, LDNS_RR_TYPE_DNSKEY, sg->p->dnskey_ttl, rd, len);
	return *out ? ZD_OK : ZD_ENOMEM;
}

/* The key labelled label, or a new one. */
static zd_err
key_get(struct signer *sg, const char *label, uint16_t flags, const uint16_t *used, size_t n_used,
        struct hsm_key **out, char *err, size_t errlen)
{
	struct hsm *h = sg->tk->h;
	struct hsm_key **keys = NULL, *found = NULL;
	size_t n = 0;
	zd_err e;

	if ((e = hsm_key_list(h, label, &keys, &n)) != ZD_OK) {
		snprintf(err, errlen, "listing keys '%s': %s", label, hsm_error_get(h));
		return e;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(hsm_key_label_get(keys[i]), label) != 0)
			continue;
		if (found != NULL) {
			snprintf(err, errlen,
			         "two key pairs in the token are labelled '%s'; remove one", label);
			hsm_key_list_free(keys, n);
			return ZD_EHSM;
		}
		found = keys[i];
	}
	if (found != NULL) {
		/* keep found, free the others */
		for (size_t i = 0; i < n; i++)
			if (keys[i] != found)
				hsm_key_free(keys[i]);
		free(keys);
		if (hsm_key_alg_get(found) != sg->p->algorithm) {
			snprintf(err, errlen,
			         "key '%s' in the token is %s, the policy says %s: an algorithm "
			         "rollover is not done by changing the configuration",
			         label, hsm_alg_name(hsm_key_alg_get(found)),
			         hsm_alg_name(sg->p->algorithm));
			hsm_key_free(found);
			return ZD_EHSM;
		}
		*out = found;
		return ZD_OK;
	}
	hsm_key_list_free(keys, n);
	struct hsm_keyspec spec = {
	        .alg = sg->p->algorithm,
	        .bits = flags == HSM_DNSKEY_KSK ? sg->p->ksk_bits : sg->p->zsk_bits,
	        .label = label,
	        .wrappable = sg->tk->hc->backup != NULL, /* server/keybackup.c */
	};
	if ((e = hsm_key_generate_unique(h, &spec, flags, used, n_used, KEYGEN_TRIES, out)) !=
	    ZD_OK) {
		snprintf(err, errlen, "generating key '%s': %s", label, hsm_error_get(h));
		return e;
	}
	char id[2 * HSM_ID_MAX + 1];
	hsm_key_id_str(*out, id, sizeof id);
	zd_log(ZD_LOG_NOTICE, "signer", sg->zc->name,
	       "generated %s key '%s' in the token: %s, key tag %u, CKA_ID %s",
	       flags == HSM_DNSKEY_KSK ? "KSK" : "ZSK", label, hsm_alg_name(sg->p->algorithm),
	       hsm_key_tag_get(*out, flags), id);
	return ZD_OK;
}

static const char *
role_name(enum signer_role role)
{
	return role == SIGNER_KSK ? "KSK" : "ZSK";
}

static uint16_t
role_flags(enum signer_role role)
{
	return role == SIGNER_KSK ? HSM_DNSKEY_KSK : HSM_DNSKEY_ZSK;
}

/* A key of the zone in role: labelled "<zone> ZSK" (or KSK), or
 * "<zone> ZSK <suffix>" for the ones a rollover generated. */
static int
label_is(const struct signer *sg, enum signer_role role, const char *label)
{
	size_t n = strlen(sg->zc->name);
	return strncmp(label, sg->zc->name, n) == 0 && label[n] == ' ' &&
	       strncmp(label + n + 1, role_name(role), 3) == 0 &&
	       (label[n + 4] == '\0' || label[n + 4] == ' ');
}

static struct hsm_key ***
role_keys(struct signer *sg, enum signer_role role, size_t **n)
{
	*n = role == SIGNER_KSK ? &sg->n_ksks : &sg->n_zsks;
	return role == SIGNER_KSK ? &sg->ksks : &sg->zsks;
}

/* Every key of the zone in role in the token, or a new one at the first
 * start (its tag none of used).  The one labelled "<zone> ZSK" (KSK), else
 * the first, signs until signer_zsk_use() (signer_ksk_use()) says which
 * one does; it is *cur. */
static zd_err
keys_load(struct signer *sg, enum signer_role role, const uint16_t *used, size_t n_used,
          struct hsm_key **cur, char *err, size_t errlen)
{
	struct hsm *h = sg->tk->h;
	struct hsm_key **keys = NULL;
	size_t n = 0, kept = 0;
	char label[KEY_LABEL_MAX];
	zd_err e;

	snprintf(label, sizeof label, "%s %s", sg->zc->name, role_name(role));
	if ((e = hsm_key_list(h, label, &keys, &n)) != ZD_OK) {
		snprintf(err, errlen, "listing keys '%s': %s", label, hsm_error_get(h));
		return e;
	}
	for (size_t i = 0; i < n; i++) {
		/* every algorithm's: the zone's keys may be of another algorithm
		 * than the policy's until an algorithm rollover replaced them */
		if (!label_is(sg, role, hsm_key_label_get(keys[i]))) {
			hsm_key_free(keys[i]);
			continue;
		}
		keys[kept++] = keys[i];
	}
	if (kept == 0) {
		free(keys); /* every key in it was freed above */
		keys = calloc(1, sizeof *keys);
		if (keys == NULL)
			return ZD_ENOMEM;
		if ((e = key_get(sg, label, role_flags(role), used, n_used, &keys[0], err,
		                 errlen)) != ZD_OK) {
			free(keys);
			return e;
		}
		kept = 1;
	}
	size_t *np;
	*role_keys(sg, role, &np) = keys;
	*np = kept;
	/* the plain label's in the policy's algorithm, else any in it, else
	 * the plain label's, else the first */
	int best = -1;
	for (size_t i = 0; i < kept; i++) {
		int score = (hsm_key_alg_get(keys[i]) == sg->p->algorithm) * 2 +
		            (strcmp(hsm_key_label_get(keys[i]), label) == 0);
		if (score > best) {
			best = score;
			*cur = keys[i];
		}
	}
	return ZD_OK;
}

static struct hsm_key *
key_find(struct signer *sg, enum signer_role role, uint16_t tag)
{
	size_t *n;
	struct hsm_key **v = *role_keys(sg, role, &n);
	for (size_t i = 0; i < *n; i++)
		if (hsm_key_tag_get(v[i], role_flags(role)) == tag)
			return v[i];
	return NULL;
}

struct hsm_key *
signer_key_find(struct signer *sg, enum signer_role role, uint16_t tag)
{
	return key_find(sg, role, tag);
}

int
signer_key_alg_get(struct signer *sg, enum signer_role role, uint16_t tag)
{
	const struct hsm_key *k = key_find(sg, role, tag);
	return k != NULL ? hsm_key_alg_get(k) : -1;
}

size_t
signer_key_tags_get(const struct signer *sg, enum signer_role role, uint16_t *tags, size_t cap)
{
	size_t *n;
	struct hsm_key **v = *role_keys((struct signer *)sg, role, &n); /* read only */
	for (size_t i = 0; i < *n && i < cap; i++)
		tags[i] = hsm_key_tag_get(v[i], role_flags(role));
	return *n;
}

static void
tags_seen_set(struct signer *sg)
{
	atomic_store(&sg->tags_seen, (uint32_t)sg->ksk_tag << 16 | sg->zsk_tag);
	atomic_store(&sg->alg_seen, hsm_key_alg_get(sg->zsk));
}

zd_err
signer_zsk_use(struct signer *sg, uint16_t active, int has_extra, uint16_t extra)
{
	struct hsm_key *a = key_find(sg, SIGNER_ZSK, active),
	               *x = has_extra ? key_find(sg, SIGNER_ZSK, extra) : NULL;
	if (a == NULL || (has_extra && (x == NULL || x == a)))
		return ZD_ENOTFOUND;
	sg->zsk = a;
	sg->zsk_tag = active;
	tags_seen_set(sg);
	sg->extra = x;
	sg->extra_tag = has_extra ? extra : 0;
	return ZD_OK;
}

zd_err
signer_ksk_use(struct signer *sg, uint16_t active, int has_second, uint16_t second, int cds_second)
{
	struct hsm_key *a = key_find(sg, SIGNER_KSK, active),
	               *x = has_second ? key_find(sg, SIGNER_KSK, second) : NULL;
	if (a == NULL || (has_second && (x == NULL || x == a)) || (cds_second && !has_second))
		return ZD_ENOTFOUND;
	sg->ksk = a;
	sg->ksk_tag = active;
	tags_seen_set(sg);
	sg->ksk2 = x;
	sg->ksk2_tag = has_second ? second : 0;
	sg->cds = cds_second ? x : a;
	return ZD_OK;
}

zd_err
signer_alg_use(struct signer *sg, int stage, uint16_t ksk, uint16_t zsk)
{
	struct hsm_key *k = stage ? key_find(sg, SIGNER_KSK, ksk) : NULL,
	               *z = stage ? key_find(sg, SIGNER_ZSK, zsk) : NULL;
	if (stage < 0 || stage > 5 ||
	    (stage > 0 && (k == NULL || z == NULL || k == sg->ksk || z == sg->zsk ||
	                   hsm_key_alg_get(k) != hsm_key_alg_get(z) ||
	                   hsm_key_alg_get(k) == hsm_key_alg_get(sg->ksk))))
		return ZD_ENOTFOUND;
	sg->astage = stage;
	sg->aksk = k;
	sg->azsk = z;
	sg->aksk_tag = stage ? ksk : 0;
	sg->azsk_tag = stage ? zsk : 0;
	return ZD_OK;
}

ldns_rr_list *
signer_unpublished_keys_get(struct signer *sg)
{
	if (sg->astage != 1 && sg->astage != 5)
		return NULL;
	const struct hsm_key *k = sg->astage == 1 ? sg->aksk : sg->ksk,
	                     *z = sg->astage == 1 ? sg->azsk : sg->zsk;
	ldns_rr_list *l = ldns_rr_list_new();
	ldns_rr *kr = NULL, *zr = NULL;
	if (l == NULL || dnskey_rr(sg, k, HSM_DNSKEY_KSK, &kr) != ZD_OK ||
	    dnskey_rr(sg, z, HSM_DNSKEY_ZSK, &zr) != ZD_OK || !ldns_rr_list_push_rr(l, kr)) {
		ldns_rr_free(kr);
		ldns_rr_free(zr);
		ldns_rr_list_free(l);
		return NULL;
	}
	if (!ldns_rr_list_push_rr(l, zr)) { /* the list owns kr, and zr once pushed */
		ldns_rr_free(zr);
		ldns_rr_list_deep_free(l);
		return NULL;
	}
	return l;
}

void
signer_cds_delete_set(struct signer *sg, int on)
{
	sg->cds_delete = on != 0;
}

int
signer_zsk_extra_get(const struct signer *sg, uint16_t *tag)
{
	if (sg->extra == NULL)
		return 0;
	*tag = sg->extra_tag;
	return 1;
}

zd_err
signer_key_generate(struct signer *sg, enum signer_role role, const char *suffix,
                    const uint16_t *avoid, size_t n_avoid, uint16_t *tag, char *err, size_t errlen)
{
	char label[KEY_LABEL_MAX];
	struct hsm_key *k = NULL;
	size_t *n;
	struct hsm_key ***vp = role_keys(sg, role, &n);
	zd_err e;

	if (*n >= SIGNER_ZSKS_MAX) {
		snprintf(err, errlen,
		         "the token holds %zu %ss of the zone already (at most %d); remove "
		         "unused ones",
		         *n, role_name(role), SIGNER_ZSKS_MAX);
		return ZD_ELIMIT;
	}
	/* no tag of any key of the zone, the KSKs' revoked tags included, nor
	 * one the caller names (keys the zone had) */
	uint16_t *used = calloc(2 * sg->n_ksks + sg->n_zsks + n_avoid + 1, sizeof *used);
	if (used == NULL)
		return ZD_ENOMEM;
	size_t n_used = 0;
	for (size_t i = 0; i < sg->n_zsks; i++)
		used[n_used++] = hsm_key_tag_get(sg->zsks[i], HSM_DNSKEY_ZSK);
	for (size_t i = 0; i < sg->n_ksks; i++) {
		used[n_used++] = hsm_key_tag_get(sg->ksks[i], HSM_DNSKEY_KSK);
		used[n_used++] = hsm_key_tag_get(sg->ksks[i], HSM_DNSKEY_KSK | HSM_DNSKEY_REVOKE);
	}
	for (size_t i = 0; i < n_avoid; i++)
		used[n_used++] = avoid[i];
	struct hsm_key **v = realloc(*vp, (*n + 1) * sizeof *v);
	if (v == NULL) {
		free(used);
		return ZD_ENOMEM;
	}
	*vp = v;
	snprintf(label, sizeof label, "%s %s %s", sg->zc->name, role_name(role), suffix);
	e = key_get(sg, label, role_flags(role), used, n_used, &k, err, errlen);
	free(used);
	if (e != ZD_OK)
		return e;
	v[(*n)++] = k;
	*tag = hsm_key_tag_get(k, role_flags(role));
	return ZD_OK;
}

zd_err
signer_test_zsk_collisions(struct signer *sg, unsigned n)
{
	uint16_t tags[64];
	if (n > 64)
		return ZD_ELIMIT;
	for (unsigned i = 0; i < n; i++)
		tags[i] = sg->zsk_tag;
	return hsm_test_keytag_override(sg->tk->h, tags, n);
}

zd_err
signer_key_destroy(struct signer *sg, enum signer_role role, uint16_t tag, char *err, size_t errlen)
{
	size_t *n;
	struct hsm_key **v = *role_keys(sg, role, &n);
	for (size_t i = 0; i < *n; i++) {
		struct hsm_key *k = v[i];
		if (hsm_key_tag_get(k, role_flags(role)) != tag)
			continue;
		if (k == sg->zsk || k == sg->extra || k == sg->ksk || k == sg->ksk2 ||
		    k == sg->aksk || k == sg->azsk) {
			snprintf(err, errlen, "%s %u is still in the DNSKEY RRset", role_name(role),
			         tag);
			return ZD_EBUG;
		}
		char label[KEY_LABEL_MAX];
		snprintf(label, sizeof label, "%s", hsm_key_label_get(k));
		if (hsm_key_destroy(&k) != ZD_OK) {
			snprintf(err, errlen, "deleting key '%s' from the token: %s", label,
			         hsm_error_get(sg->tk->h));
			return ZD_EHSM;
		}
		v[i] = v[--*n];
		return ZD_OK;
	}
	return ZD_ENOTFOUND;
}

zd_err
signer_new(const struct zd_zone_config *zc, struct signer_token *tk, struct signer **out, char *err,
           size_t errlen)
{
	struct signer *sg = calloc(1, sizeof *sg);
	zd_err e;

	if (sg == NULL)
		return ZD_ENOMEM;
	sg->zc = zc;
	sg->p = &zc->dnssec;
	sg->tk = tk;
	sg->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)sg;
	if (ldns_str2rdf_dname(&sg->apex, zc->name) != LDNS_STATUS_OK) {
		free(sg);
		return ZD_EMALFORMED;
	}
	ldns_dname2canonical(sg->apex);
	if ((e = keys_load(sg, SIGNER_ZSK, NULL, 0, &sg->zsk, err, errlen)) != ZD_OK)
		goto fail;
	sg->zsk_tag = hsm_key_tag_get(sg->zsk, HSM_DNSKEY_ZSK);
	if ((sg->offline = zc->dnssec.keys.offline_ksk) != 0) {
		/* the KSK is in the ksk-token: signer_offline_ksk_add() */
		tags_seen_set(sg);
		*out = sg;
		return ZD_OK;
	}
	/* the KSK's tag, revoked or not, must differ from the ZSK's */
	uint16_t used[SIGNER_ZSKS_MAX];
	size_t n_used = signer_key_tags_get(sg, SIGNER_ZSK, used, SIGNER_ZSKS_MAX);
	if ((e = keys_load(sg, SIGNER_KSK, used,
	                   n_used < SIGNER_ZSKS_MAX ? n_used : SIGNER_ZSKS_MAX, &sg->ksk, err,
	                   errlen)) != ZD_OK)
		goto fail;
	sg->ksk_tag = hsm_key_tag_get(sg->ksk, HSM_DNSKEY_KSK);
	sg->cds = sg->ksk;
	tags_seen_set(sg);
	if (sg->ksk_tag == sg->zsk_tag) {
		snprintf(err, errlen,
		         "the KSK and the ZSK in the token have the same key tag %u; remove one",
		         sg->ksk_tag);
		e = ZD_EHSM;
		goto fail;
	}
	*out = sg;
	return ZD_OK;
fail:
	signer_free(sg);
	return e;
}

void
signer_free(struct signer *sg)
{
	if (sg == NULL)
		return;
	/* the pool lives only during a full signing */
	hsm_key_list_free(sg->ksks, sg->n_ksks);
	hsm_key_list_free(sg->zsks, sg->n_zsks);
	ldns_rdf_deep_free(sg->apex);
	namevec_clear(&sg->pending);
	free(sg->corrupt_owner);
	free(sg);
}

void
signer_test_corrupt_set(struct signer *sg, const char *owner)
{
	free(sg->corrupt_owner);
	sg->corrupt_owner = NULL;
	if (owner != NULL && ldns_str2rdf_dname(&sg->corrupt_owner, owner) == LDNS_STATUS_OK)
		ldns_dname2canonical(sg->corrupt_owner);
}

/* The CDS and CDNSKEY RRsets (sets[1], sets[2]) describing the KSK of. */
static zd_err
cds_sets(const struct signer *sg, const ldns_rr *of, ldns_rr_list *sets[3])
{
	ldns_rr *ds = ldns_key_rr2ds(of, LDNS_SHA256), *cdnskey = ldns_rr_clone(of);
	if (ds == NULL || cdnskey == NULL || (sets[1] = ldns_rr_list_new()) == NULL ||
	    (sets[2] = ldns_rr_list_new()) == NULL) {
		ldns_rr_free(ds);
		ldns_rr_free(cdnskey);
		return ZD_ENOMEM; /* the caller frees sets */
	}
	ldns_rr_set_type(ds, LDNS_RR_TYPE_CDS);
	ldns_rr_set_ttl(ds, sg->p->dnskey_ttl);
	ldns_rr_set_type(cdnskey, LDNS_RR_TYPE_CDNSKEY);
	ldns_rr_list_push_rr(sets[1], ds);      /* the list owns ds */
	ldns_rr_list_push_rr(sets[2], cdnskey); /* the list owns cdnskey */
	return ZD_OK;
}

/* The apex records the keys and the policy make: DNSKEY, CDS, CDNSKEY,
 * NSEC3PARAM (each a list the caller frees; NULL when the policy has none). */
static zd_err
apex_sets(struct signer *sg, ldns_rr_list *sets[4])
{
	static const uint16_t types[4] = {LDNS_RR_TYPE_DNSKEY, LDNS_RR_TYPE_CDS,
	                                  LDNS_RR_TYPE_CDNSKEY, LDNS_RR_TYPE_NSEC3PARAM};
	ldns_rr *ksk = NULL, *zsk = NULL, *cds = NULL;
	zd_err e;

	(void)types;
	for (int i = 0; i < 4; i++)
		sets[i] = NULL;
	if ((e = dnskey_rr(sg, sg->ksk, HSM_DNSKEY_KSK, &ksk)) != ZD_OK)
		return e;
	if ((e = dnskey_rr(sg, sg->zsk, HSM_DNSKEY_ZSK, &zsk)) != ZD_OK) {
		ldns_rr_free(ksk);
		return e;
	}
	e = ZD_ENOMEM;
	if ((sets[0] = ldns_rr_list_new()) == NULL)
		goto fail;
	if (sg->ksk2 != NULL) {
		ldns_rr *k2 = NULL;
		if ((e = dnskey_rr(sg, sg->ksk2, HSM_DNSKEY_KSK, &k2)) != ZD_OK)
			goto fail;
		e = ZD_ENOMEM;
		if (!ldns_rr_list_push_rr(sets[0], k2)) { /* the list owns k2 */
			ldns_rr_free(k2);
			goto fail;
		}
		if (sg->cds == sg->ksk2 && (cds = ldns_rr_clone(k2)) == NULL)
			goto fail;
	}
	if (sg->astage >= 2) { /* an algorithm rollover's new keys */
		ldns_rr *ak = NULL, *az = NULL;
		if ((e = dnskey_rr(sg, sg->aksk, HSM_DNSKEY_KSK, &ak)) != ZD_OK)
			goto fail;
		if ((e = dnskey_rr(sg, sg->azsk, HSM_DNSKEY_ZSK, &az)) != ZD_OK) {
			ldns_rr_free(ak);
			goto fail;
		}
		e = ZD_ENOMEM;
		if (sg->astage >= 3 && cds == NULL && (cds = ldns_rr_clone(ak)) == NULL) {
			ldns_rr_free(ak);
			ldns_rr_free(az);
			goto fail;
		}
		if (!ldns_rr_list_push_rr(sets[0], ak)) { /* the list owns ak */
			ldns_rr_free(ak);
			ldns_rr_free(az);
			goto fail;
		}
		if (!ldns_rr_list_push_rr(sets[0], az)) { /* and az */
			ldns_rr_free(az);
			goto fail;
		}
	}
	if (sg->cds_delete) {
		/* RFC 8078 s4: digest type 0 with one zero octet; algorithm 0 with
		 * one zero octet of key */
		static const uint8_t cds0[] = {0, 0, 0, 0, 0}, cdnskey0[] = {0, 0, 3, 0, 0};
		ldns_rr *d = signer_rr_make(sg->apex, LDNS_RR_TYPE_CDS, sg->p->dnskey_ttl, cds0,
		                            sizeof cds0);
		ldns_rr *k = signer_rr_make(sg->apex, LDNS_RR_TYPE_CDNSKEY, sg->p->dnskey_ttl,
		                            cdnskey0, sizeof cdnskey0);
		if (d == NULL || k == NULL || (sets[1] = ldns_rr_list_new()) == NULL ||
		    (sets[2] = ldns_rr_list_new()) == NULL) {
			ldns_rr_free(d);
			ldns_rr_free(k);
			goto fail;
		}
		ldns_rr_list_push_rr(sets[1], d); /* the list owns d */
		ldns_rr_list_push_rr(sets[2], k); /* the list owns k */
	} else if (sg->p->cds || cds != NULL) {   /* a KSK roll publishes the next KSK's */
		if (cds_sets(sg, cds != NULL ? cds : ksk, sets) != ZD_OK)
			goto fail;
	}
	ldns_rr_free(cds);
	cds = NULL;
	if (sg->astage == 5) { /* the old algorithm's keys left the RRset */
		ldns_rr_free(ksk);
		ldns_rr_free(zsk);
		ksk = zsk = NULL;
	}
	if (ksk != NULL && !ldns_rr_list_push_rr(sets[0], ksk)) /* the list owns ksk */
		goto fail;
	ksk = NULL;
	if (zsk != NULL && !ldns_rr_list_push_rr(sets[0], zsk)) /* the list owns zsk */
		goto fail;
	zsk = NULL;
	if (sg->extra != NULL) {
		if ((e = dnskey_rr(sg, sg->extra, HSM_DNSKEY_ZSK, &zsk)) != ZD_OK)
			goto fail;
		e = ZD_ENOMEM;
		if (!ldns_rr_list_push_rr(sets[0], zsk)) /* the list owns zsk */
			goto fail;
		zsk = NULL;
	}
	if (sg->p->denial == ZD_DENIAL_NSEC3) {
		uint8_t rd[5 + ZD_NSEC3_SALT_MAX];
		rd[0] = 1; /* SHA-1 */
		rd[1] = 0; /* flags: 0 in NSEC3PARAM (RFC 5155 s4.1.2) */
		rd[2] = (uint8_t)(sg->p->nsec3_iterations >> 8);
		rd[3] = (uint8_t)sg->p->nsec3_iterations;
		rd[4] = sg->p->nsec3_salt_len;
		memcpy(rd + 5, sg->p->nsec3_salt, sg->p->nsec3_salt_len);
		ldns_rr *pr = signer_rr_make(sg->apex, LDNS_RR_TYPE_NSEC3PARAM, 0, rd,
		                             5u + sg->p->nsec3_salt_len);
		if (pr == NULL || (sets[3] = ldns_rr_list_new()) == NULL ||
		    !ldns_rr_list_push_rr(sets[3], pr)) { /* the list owns pr */
			ldns_rr_free(pr);
			goto fail;
		}
	}
	return ZD_OK;
fail:
	ldns_rr_free(ksk);
	ldns_rr_free(zsk);
	ldns_rr_free(cds);
	for (int i = 0; i < 4; i++) {
		ldns_rr_list_deep_free(sets[i]);
		sets[i] = NULL;
	}
	return e;
}

static const uint16_t apex_types[4] = {LDNS_RR_TYPE_DNSKEY, LDNS_RR_TYPE_CDS, LDNS_RR_TYPE_CDNSKEY,
                                       LDNS_RR_TYPE_NSEC3PARAM};

int
signer_keys_changed(struct signer *sg, struct store *s)
{
	ldns_rr_list *sets[4], *pub = NULL;
	int changed = 1;
	if (apex_sets(sg, sets) != ZD_OK)
		return 1;
	if (store_rrset_find(s, store_published_get(s), sg->apex, LDNS_RR_TYPE_DNSKEY, 0, &pub) ==
	            ZD_OK &&
	    pub != NULL) {
		ldns_rr_list_sort(pub);
		ldns_rr_list_sort(sets[0]);
		changed = ldns_rr_list_compare(pub, sets[0]) != 0;
	}
	ldns_rr_list_deep_free(pub);
	for (int i = 0; i < 4; i++)
		ldns_rr_list_deep_free(sets[i]);
	return changed;
}

/* ---- RRSIGs -------------------------------------------------------------- */

static uint32_t
now_s(void)
{
	return (uint32_t)zd_clock_s();
}

static int
type_is_ksk_signed(uint16_t type)
{
	return type == LDNS_RR_TYPE_DNSKEY || type == LDNS_RR_TYPE_CDS ||
	       type == LDNS_RR_TYPE_CDNSKEY;
}

void
signer_signing_keys(const struct signer *sg, uint16_t type, struct signing_keys *out)
{
	out->n = 0;
	if (type_is_ksk_signed(type)) {
		out->k[out->n] = sg->ksk;
		out->tag[out->n++] = sg->ksk_tag;
		if (sg->ksk2 != NULL) {
			out->k[out->n] = sg->ksk2;
			out->tag[out->n++] = sg->ksk2_tag;
		}
		if (sg->astage > 0) {
			out->k[out->n] = sg->aksk;
			out->tag[out->n++] = sg->aksk_tag;
		}
	} else {
		out->k[out->n] = sg->zsk;
		out->tag[out->n++] = sg->zsk_tag;
		if (sg->astage > 0) {
			out->k[out->n] = sg->azsk;
			out->tag[out->n++] = sg->azsk_tag;
		}
	}
}

/* An RRSIG that needs no renewal: by one of the keys that sign this type
 * now (ks), in that key's algorithm, for this TTL, and valid for longer
 * than the refresh period; the index of the key in ks, or -1. */
static int
rrsig_ok(const struct work *w, const struct signing_keys *ks, const ldns_rr *sig, uint32_t ttl)
{
	if (ldns_rr_rd_count(sig) < 9)
		return -1;
	uint16_t tag = ldns_rdf2native_int16(ldns_rr_rrsig_keytag(sig));
	uint8_t alg = ldns_rdf2native_int8(ldns_rr_rrsig_algorithm(sig));
	uint32_t exp = ldns_rdf2native_int32(ldns_rr_rrsig_expiration(sig));
	uint32_t orig = ldns_rdf2native_int32(ldns_rr_rrsig_origttl(sig));
	if (orig != ttl || (int32_t)(exp - w->now) <= (int32_t)w->sg->p->refresh)
		return -1;
	for (size_t i = 0; i < ks->n; i++)
		if (ks->tag[i] == tag && hsm_key_alg_get(ks->k[i]) == alg)
			return (int)i;
	return -1;
}

int
signer_rrsigs_ok(const struct work *w, const ldns_rr_list *all, uint16_t type, uint32_t ttl)
{
	struct signing_keys ks;
	unsigned seen = 0;
	size_t have = 0;
	signer_signing_keys(w->sg, type, &ks);
	for (size_t k = 0; all && k < ldns_rr_list_rr_count(all); k++) {
		const ldns_rr *rr = ldns_rr_list_rr(all, k);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_RRSIG ||
		    ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr)) != type)
			continue;
		int i = rrsig_ok(w, &ks, rr, ttl);
		if (i < 0 || (seen & (1u << i)))
			return 0; /* to be renewed, or twice by one key */
		seen |= 1u << i;
		have++;
	}
	return have == ks.n;
}

zd_err
signer_job_push(struct work *w, const ldns_rdf *owner, uint16_t type)
{
	/* one job per signing key, in a row (two KSKs during a KSK roll) */
	struct signing_keys ks;
	signer_signing_keys(w->sg, type, &ks);
	for (size_t i = 0; i < ks.n; i++) {
		if (w->n_jobs == w->cap_jobs) {
			size_t ncap = w->cap_jobs ? w->cap_jobs * 2 : 256;
			struct job *p = realloc(w->jobs, ncap * sizeof *p);
			if (p == NULL)
				return ZD_ENOMEM;
			w->jobs = p;
			w->cap_jobs = ncap;
		}
		ldns_rdf *o = ldns_rdf_clone(owner);
		if (o == NULL)
			return ZD_ENOMEM;
		w->jobs[w->n_jobs++] = (struct job){.owner = o, .type = type, .idx = (int)i};
	}
	return ZD_OK;
}

static uint32_t
jitter(struct signer *sg)
{
	if (sg->p->jitter == 0)
		return 0;
	/* xorshift64: spread, not secrecy */
	sg->rng ^= sg->rng << 13;
	sg->rng ^= sg->rng >> 7;
	sg->rng ^= sg->rng << 17;
	return (uint32_t)(sg->rng % ((uint64_t)sg->p->jitter + 1));
}

/* RRSIG RDATA up to the signature (RFC 4034 s3.1) for rrset. */
static size_t
rrsig_head(const struct signer *sg, const ldns_rr_list *rrset, uint16_t type, uint8_t alg,
           uint16_t tag, uint32_t inception, uint32_t expiration, uint8_t *out)
{
	const ldns_rr *first = ldns_rr_list_rr(rrset, 0);
	const ldns_rdf *owner = ldns_rr_owner(first);
	uint8_t labels = ldns_dname_label_count(owner);
	uint32_t ttl = ldns_rr_ttl(first);
	size_t n = 0;

	if (ldns_dname_is_wildcard(owner))
		labels--;
	out[n++] = (uint8_t)(type >> 8);
	out[n++] = (uint8_t)type;
	out[n++] = alg;
	out[n++] = labels;
	for (int i = 3; i >= 0; i--)
		out[n++] = (uint8_t)(ttl >> (8 * i));
	for (int i = 3; i >= 0; i--)
		out[n++] = (uint8_t)(expiration >> (8 * i));
	for (int i = 3; i >= 0; i--)
		out[n++] = (uint8_t)(inception >> (8 * i));
	out[n++] = (uint8_t)(tag >> 8);
	out[n++] = (uint8_t)tag;
	memcpy(out + n, ldns_rdf_data(sg->apex), ldns_rdf_size(sg->apex));
	return n + ldns_rdf_size(sg->apex);
}

/* The signing input of rrset (RFC 4034 s3.1.8.1: RRSIG RDATA without the
 * signature, then the RRset in canonical form and order; rrset is made
 * canonical and sorted) in buf, from its start; *head_len gets the RDATA's
 * length. */
static zd_err
input_wire(const struct signer *sg, ldns_rr_list *rrset, uint16_t type, uint8_t alg, uint16_t tag,
           uint32_t inception, uint32_t expiration, ldns_buffer *buf, size_t *head_len)
{
	uint8_t head[18 + 256];
	zd_err e = ZD_OK;
	*head_len = rrsig_head(sg, rrset, type, alg, tag, inception, expiration, head);
	/* One input per scratch buffer: ldns keeps buffer positions of RDLENGTH
	 * fields in 16 bits, so it never writes past 64 KiB here. */
	ldns_buffer_clear(buf);
	ldns_buffer_write(buf, head, *head_len);
	for (size_t k = 0; k < ldns_rr_list_rr_count(rrset); k++)
		ldns_rr2canonical(ldns_rr_list_rr(rrset, k));
	ldns_rr_list_sort(rrset);
	for (size_t k = 0; k < ldns_rr_list_rr_count(rrset) && e == ZD_OK; k++)
		if (ldns_rr2buffer_wire_canonical(buf, ldns_rr_list_rr(rrset, k),
		                                  LDNS_SECTION_ANY) != LDNS_STATUS_OK)
			e = ZD_ENOMEM;
	if (e == ZD_OK && ldns_buffer_status(buf) != LDNS_STATUS_OK)
		e = ZD_ENOMEM;
	return e;
}

zd_err
signer_rrsig_make(struct signer *sg, struct hsm_session *s, const struct hsm_key *k,
                  ldns_rr_list *rrset, uint16_t type, uint32_t inception, uint32_t expiration,
                  ldns_rr **out, char *err, size_t errlen)
{
	uint8_t rd[18 + 256 + HSM_SIG_MAX];
	size_t head_len = 0, siglen = HSM_SIG_MAX;
	ldns_buffer *buf = ldns_buffer_new(4096);
	zd_err e = buf ? ZD_OK : ZD_ENOMEM;
	*out = NULL;
	if (e == ZD_OK)
		e = input_wire(sg, rrset, type, hsm_key_alg_get(k),
		               hsm_key_tag_get(k, HSM_DNSKEY_KSK), inception, expiration, buf,
		               &head_len);
	if (e == ZD_OK) {
		memcpy(rd, ldns_buffer_begin(buf), head_len);
		if ((e = hsm_sign(s, k, ldns_buffer_begin(buf), ldns_buffer_position(buf),
		                  rd + head_len, &siglen)) != ZD_OK)
			snprintf(err, errlen, "signing the %s RRset: %s",
			         type == LDNS_RR_TYPE_DNSKEY ? "DNSKEY" : "CDS/CDNSKEY",
			         hsm_session_error_get(s));
	}
	if (e == ZD_OK && (*out = signer_rr_make(sg->apex, LDNS_RR_TYPE_RRSIG,
	                                         ldns_rr_ttl(ldns_rr_list_rr(rrset, 0)), rd,
	                                         head_len + siglen)) == NULL)
		e = ZD_ENOMEM;
	ldns_buffer_free(buf);
	return e;
}

zd_err
signer_offline_ksk_add(struct signer *sg, struct hsm_key *k)
{
	size_t *n;
	struct hsm_key ***v = role_keys(sg, SIGNER_KSK, &n);
	uint16_t tag = hsm_key_tag_get(k, HSM_DNSKEY_KSK);
	if (key_find(sg, SIGNER_KSK, tag) != NULL) {
		hsm_key_free(k); /* known already */
		return ZD_OK;
	}
	if (tag == sg->zsk_tag || *n >= SIGNER_ZSKS_MAX) {
		hsm_key_free(k);
		return ZD_ELIMIT;
	}
	struct hsm_key **p = realloc(*v, (*n + 1) * sizeof *p);
	if (p == NULL) {
		hsm_key_free(k);
		return ZD_ENOMEM;
	}
	p[(*n)++] = k;
	*v = p;
	if (sg->ksk == NULL) {
		sg->ksk = sg->cds = k;
		sg->ksk_tag = tag;
		tags_seen_set(sg);
	}
	return ZD_OK;
}

void
signer_offline_bundles_set(struct signer *sg, const struct kskb *b)
{
	sg->bundles = b;
}

int
signer_offline_next_zsk(struct signer *sg, uint64_t now, const uint16_t *avoid, size_t n_avoid,
                        uint16_t *tag)
{
	uint16_t cur[3] = {sg->ksk_tag, sg->zsk_tag, sg->extra_tag};
	return sg->offline &&
	       kskb_next_zsk(sg->bundles, (uint32_t)now, cur, sg->extra != NULL ? 3 : 2, avoid,
	                     n_avoid, tag) &&
	       key_find(sg, SIGNER_ZSK, *tag) != NULL;
}

int
signer_is_offline(const struct signer *sg)
{
	return sg->offline;
}

struct signer_token *
signer_token_get(struct signer *sg)
{
	return sg->tk;
}

zd_err
signer_ksk_sets(struct signer *sg, const uint16_t *zsks, size_t n, ldns_rr_list *sets[3])
{
	ldns_rr *rr = NULL;
	zd_err e = ZD_ENOMEM;
	sets[0] = sets[1] = sets[2] = NULL;
	if (sg->ksk == NULL)
		return ZD_ENOTFOUND;
	if ((sets[0] = ldns_rr_list_new()) == NULL)
		goto fail;
	for (size_t i = 0; i <= n; i++) {
		const struct hsm_key *k = i == 0 ? sg->ksk : key_find(sg, SIGNER_ZSK, zsks[i - 1]);
		if (k == NULL) {
			e = ZD_ENOTFOUND;
			goto fail;
		}
		if ((e = dnskey_rr(sg, k, i == 0 ? HSM_DNSKEY_KSK : HSM_DNSKEY_ZSK, &rr)) != ZD_OK)
			goto fail;
		e = ZD_ENOMEM;
		if (!ldns_rr_list_push_rr(sets[0], rr)) /* the list owns rr */
			goto fail;
		rr = NULL;
	}
	if (sg->p->cds && (e = cds_sets(sg, ldns_rr_list_rr(sets[0], 0), sets)) != ZD_OK)
		goto fail;
	return ZD_OK;
fail:
	ldns_rr_free(rr);
	for (int i = 0; i < 3; i++) {
		ldns_rr_list_deep_free(sets[i]);
		sets[i] = NULL;
	}
	return e;
}

zd_err
signer_offline_check(struct signer *sg, char *err, size_t errlen)
{
	ldns_rr_list *sets[4];
	zd_err e;
	if (!sg->offline)
		return ZD_OK;
	if ((e = apex_sets(sg, sets)) != ZD_OK) {
		snprintf(err, errlen, "the DNSKEY RRset does not build: %s", zd_strerror(e));
		return e;
	}
	uint32_t now = now_s();
	for (int i = 0; i < 3 && e == ZD_OK; i++) {
		if (sets[i] == NULL)
			continue;
		for (size_t k = 0; k < ldns_rr_list_rr_count(sets[i]); k++)
			ldns_rr2canonical(ldns_rr_list_rr(sets[i], k));
		ldns_rr_list_sort(sets[i]);
		if (sg->bundles == NULL ||
		    kskb_rrsig_find(sg->bundles, apex_types[i], sets[i], now) == NULL) {
			snprintf(err, errlen,
			         "offline KSK: no pre-signed RRSIG is valid now for the %s RRset "
			         "this step makes: run the KSK ceremony (zonedistctl ksk-ceremony)",
			         i == 0   ? "DNSKEY"
			         : i == 1 ? "CDS"
			                  : "CDNSKEY");
			e = ZD_ENOTFOUND;
		}
	}
	for (int i = 0; i < 4; i++)
		ldns_rr_list_deep_free(sets[i]);
	return e;
}

/* One queued job's signing input and what its RRSIG needs. */
struct prepared {
	size_t off, len; /* of the input in the flush buffer */
	size_t head_len; /* RRSIG RDATA before the signature: the input's start */
	uint32_t ttl;    /* of the RRset */
	int ksk;         /* signed by a KSK */
	int idx;         /* by the job's signing key of this index (the first in the pool) */
	const struct hsm_key *key;
	int skip;               /* the RRset went away since it was queued */
	const ldns_rr *bundled; /* offline KSK: the pre-signed RRSIG (the bundles'), not signed */
	uint8_t sig[HSM_SIG_MAX];
	size_t siglen;
};

/* The signing input of job j (RFC 4034 s3.1.8.1: RRSIG RDATA without the
 * signature, then the RRset in canonical form and order) appended to buf. */
static zd_err
input_build(struct work *w, const struct job *j, ldns_buffer *buf, struct zd_buf *all,
            struct prepared *pr)
{
	struct signer *sg = w->sg;
	ldns_rr_list *rrset = NULL;
	zd_err e;

	memset(pr, 0, sizeof *pr);
	if ((e = store_rrset_find(w->s, w->v, j->owner, j->type, 0, &rrset)) != ZD_OK)
		return e;
	if (rrset == NULL || ldns_rr_list_rr_count(rrset) == 0) {
		ldns_rr_list_deep_free(rrset);
		pr->skip = 1; /* gone since it was queued */
		return ZD_OK;
	}
	struct signing_keys ks;
	signer_signing_keys(sg, j->type, &ks);
	if ((size_t)j->idx >= ks.n) { /* the keys changed since it was queued */
		ldns_rr_list_deep_free(rrset);
		return ZD_EBUG;
	}
	pr->ksk = type_is_ksk_signed(j->type);
	pr->idx = j->idx;
	pr->key = ks.k[j->idx];
	pr->ttl = ldns_rr_ttl(ldns_rr_list_rr(rrset, 0));
	if (pr->ksk && sg->offline) {
		/* the KSK is away: the RRSIG the ceremony made for this RRset */
		for (size_t k = 0; k < ldns_rr_list_rr_count(rrset); k++)
			ldns_rr2canonical(ldns_rr_list_rr(rrset, k));
		ldns_rr_list_sort(rrset);
		pr->bundled =
		        sg->bundles ? kskb_rrsig_find(sg->bundles, j->type, rrset, w->now) : NULL;
		ldns_rr_list_deep_free(rrset);
		if (pr->bundled == NULL) {
			char until[32];
			zd_time_utc(sg->bundles ? kskb_until_get(sg->bundles) : 0, 0, until,
			            sizeof until);
			snprintf(w->err, w->errlen,
			         "offline KSK: no pre-signed RRSIG for this %s RRset is valid now "
			         "(the bundles run until %s): connect the KSK token and run the "
			         "ceremony (zonedistctl ksk-ceremony)",
			         j->type == LDNS_RR_TYPE_DNSKEY ? "DNSKEY"
			         : j->type == LDNS_RR_TYPE_CDS  ? "CDS"
			                                        : "CDNSKEY",
			         sg->bundles ? until : "nowhere");
			return ZD_ENOTFOUND;
		}
		return ZD_OK;
	}
	uint32_t inception = w->now - sg->p->inception_offset;
	uint32_t expiration = w->now + sg->p->validity - jitter(sg);
	e = input_wire(sg, rrset, j->type, hsm_key_alg_get(pr->key), ks.tag[j->idx], inception,
	               expiration, buf, &pr->head_len);
	ldns_rr_list_deep_free(rrset);
	if (e == ZD_OK && ldns_buffer_position(buf) > HSM_POOL_DATA_MAX)
		e = ZD_ELIMIT;
	pr->off = all->len;
	pr->len = ldns_buffer_position(buf);
	if (e == ZD_OK)
		e = zd_buf_append(all, ldns_buffer_begin(buf), pr->len);
	return e;
}

/* Offline KSK: the pre-signed RRSIG over j's RRset, unless the version
 * has that one already (a refresh with no fresher bundle changes nothing). */
static zd_err
bundled_put(struct work *w, const struct job *j, const ldns_rr *sig)
{
	ldns_rr_list *cur = NULL;
	zd_err e = store_rrset_find(w->s, w->v, j->owner, LDNS_RR_TYPE_RRSIG, j->type, &cur);
	if (e != ZD_OK)
		return e;
	int same = cur != NULL && ldns_rr_list_rr_count(cur) == 1 &&
	           ldns_rr_compare(ldns_rr_list_rr(cur, 0), sig) == 0 &&
	           ldns_rr_ttl(ldns_rr_list_rr(cur, 0)) == ldns_rr_ttl(sig);
	ldns_rr_list_deep_free(cur);
	if (same)
		return ZD_OK;
	ldns_rr_list *l = ldns_rr_list_new();
	ldns_rr *rr = ldns_rr_clone(sig);
	if (l == NULL || rr == NULL || !ldns_rr_list_push_rr(l, rr)) {
		ldns_rr_free(rr);
		ldns_rr_list_free(l);
		return ZD_ENOMEM;
	}
	e = store_txn_rrset_put(w->t, j->owner, LDNS_RR_TYPE_RRSIG, j->type, l);
	ldns_rr_list_deep_free(l);
	if (e == ZD_OK)
		w->st->bundled++;
	return e;
}

/* One flush's jobs, from their inputs to their RRSIGs in the txn. */
struct signing {
	struct job *jobs; /* owned, with their owners */
	size_t n;
	struct zd_buf all;       /* the signing inputs, one after the other */
	struct prepared *pr;     /* [n] */
	struct hsm_pool_job *pj; /* the pool's share of the jobs */
	size_t n_pj;
	struct hsm_pool *pool; /* the signer's, or NULL */
	pthread_t th;          /* signing pj, for signer_jobs_flush_async() */
	zd_err e;              /* of hsm_pool_sign() on th */
	uint64_t pool_ms;      /* hsm_pool_sign() took */
	char err[HSM_POOL_ERR_MAX];
};

static void
signing_free(struct signing *sn)
{
	if (sn == NULL)
		return;
	for (size_t i = 0; i < sn->n; i++)
		ldns_rdf_deep_free(sn->jobs[i].owner);
	free(sn->jobs);
	free(sn->pr);
	free(sn->pj);
	zd_buf_clear(&sn->all);
	free(sn);
}

/* The job whose input is pr signs in the pool: by the first key of its
 * RRset (the others, during a roll, are not in the pool), not pre-signed;
 * none without a pool. */
static int
by_pool(const struct signing *sn, const struct prepared *pr)
{
	return sn->pool != NULL && !pr->skip && pr->idx == 0 && pr->bundled == NULL;
}

/* The queued jobs, taken from w, with their inputs built: on ZD_OK *out
 * is new (signing_free()); w's queue is empty afterwards either way. */
static zd_err
signing_prepare(struct work *w, struct signing **out)
{
	struct signer *sg = w->sg;
	struct signing *sn = calloc(1, sizeof *sn);
	ldns_buffer *buf = NULL;
	zd_err e = ZD_OK;

	*out = NULL;
	if (sn == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	zd_buf_init(&sn->all, SIZE_MAX);
	sn->pool = sg->pool;
	sn->jobs = w->jobs;
	sn->n = w->n_jobs;
	w->jobs = NULL;
	w->n_jobs = w->cap_jobs = 0;
	if ((buf = ldns_buffer_new(4096)) == NULL ||
	    (sn->pr = malloc(sn->n * sizeof *sn->pr)) == NULL ||
	    (sn->pool != NULL && (sn->pj = calloc(sn->n, sizeof *sn->pj)) == NULL)) {
		e = ZD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < sn->n && e == ZD_OK; i++)
		if ((e = input_build(w, &sn->jobs[i], buf, &sn->all, &sn->pr[i])) == ZD_ENOTFOUND &&
		    sg->offline) {
			e = ZD_EHSM; /* no pre-signed RRSIG; w->err says so */
		} else if (e != ZD_OK) {
			char *o = ldns_rdf2str(sn->jobs[i].owner);
			snprintf(w->err, w->errlen, "the signing input of %s type %u: %s",
			         o ? o : "?", sn->jobs[i].type, zd_strerror(e));
			free(o);
		}
	for (size_t i = 0; i < sn->n && e == ZD_OK; i++)
		if (by_pool(sn, &sn->pr[i]))
			sn->pj[sn->n_pj++] =
			        (struct hsm_pool_job){.data = sn->all.data + sn->pr[i].off,
			                              .len = sn->pr[i].len,
			                              .key = sn->pr[i].ksk ? 1 : 0,
			                              .sig = sn->pr[i].sig};
out:
	ldns_buffer_free(buf);
	if (e == ZD_OK)
		*out = sn;
	else
		signing_free(sn);
	return e;
}

/* The pool's share (the inputs are not touched meanwhile). */
static zd_err
signing_pool(struct signing *sn)
{
	if (sn->n_pj == 0)
		return ZD_OK;
	uint64_t t0 = zd_now_ms();
	zd_err e =
	        hsm_pool_sign(sn->pool, sn->pj, sn->n_pj, POOL_TIMEOUT_MS, sn->err, sizeof sn->err);
	sn->pool_ms = zd_now_ms() - t0;
	return e;
}

/* The pool is this thread's until it is joined (inflight_end()). */
static void *
signing_main(void *arg)
{
	struct signing *sn = arg;
	sn->e = signing_pool(sn);
	return NULL;
}

/* After the pool's share (e its result): the rest signed with the batch
 * thread's session, then every RRSIG RRset put in the txn. */
static zd_err
signing_finish(struct work *w, struct signing *sn, zd_err e)
{
	struct signer *sg = w->sg;
	const uint8_t *base = sn->all.data;
	struct prepared *pr = sn->pr;
	uint8_t rd[18 + 256 + HSM_SIG_MAX];

	if (e != ZD_OK) {
		snprintf(w->err, w->errlen, "%s", sn->err);
		if (sn->pool != NULL && hsm_pool_lost(sn->pool))
			sg->tk->up = 0; /* the batch thread's session goes the same way */
		return e;
	}
	for (size_t i = 0, k = 0; i < sn->n; i++)
		if (by_pool(sn, &pr[i]))
			pr[i].siglen = sn->pj[k++].siglen;
	for (size_t i = 0; i < sn->n && e == ZD_OK; i++) {
		if (pr[i].skip || pr[i].bundled != NULL || by_pool(sn, &pr[i]))
			continue;
		pr[i].siglen = sizeof pr[i].sig;
		e = token_sign(sg->tk, pr[i].key, base + pr[i].off, pr[i].len, pr[i].sig,
		               &pr[i].siglen, w->err, w->errlen);
		if (e != ZD_OK) {
			char *o = ldns_rdf2str(sn->jobs[i].owner);
			size_t l = strlen(w->err);
			snprintf(w->err + l, w->errlen > l ? w->errlen - l : 0, " (signing %s %u)",
			         o ? o : "?", sn->jobs[i].type);
			free(o);
		}
	}
	for (size_t i = 0; i < sn->n && e == ZD_OK;) {
		const struct job *j = &sn->jobs[i];
		/* the jobs of one RRset, one per signing key, are in a row: their
		 * RRSIGs make one RRSIG RRset */
		size_t end = i + 1;
		while (end < sn->n && sn->jobs[end].idx > 0 && sn->jobs[end].type == j->type &&
		       ldns_dname_compare(sn->jobs[end].owner, j->owner) == 0)
			end++;
		if (pr[i].skip) {
			i = end;
			continue;
		}
		if (pr[i].bundled != NULL) {
			e = bundled_put(w, j, pr[i].bundled);
			i = end;
			continue;
		}
		if (sg->corrupt_owner != NULL &&
		    ldns_dname_compare(sg->corrupt_owner, j->owner) == 0) {
			/* test hook: a bad signature the gate must catch */
			pr[i].sig[pr[i].siglen / 2] ^= 0x01;
			ldns_rdf_deep_free(sg->corrupt_owner);
			sg->corrupt_owner = NULL;
			zd_log(ZD_LOG_WARNING, "signer", sg->zc->name,
			       "test hook: corrupted the signature of an RRset at this name");
		}
		ldns_rr_list *l = ldns_rr_list_new();
		if (l == NULL) {
			e = ZD_ENOMEM;
			break;
		}
		for (size_t k = i; k < end && e == ZD_OK; k++) {
			const struct prepared *q = &pr[k];
			memcpy(rd, base + q->off, q->head_len);
			memcpy(rd + q->head_len, q->sig, q->siglen);
			ldns_rr *rr = signer_rr_make(j->owner, LDNS_RR_TYPE_RRSIG, q->ttl, rd,
			                             q->head_len + q->siglen);
			if (rr == NULL) {
				char *o = ldns_rdf2str(j->owner);
				snprintf(w->err, w->errlen,
				         "the RRSIG over %s type %u does not build (%zu bytes of "
				         "signature)",
				         o ? o : "?", j->type, q->siglen);
				free(o);
				e = ZD_ENOMEM;
			} else if (!ldns_rr_list_push_rr(l, rr)) { /* the list owns rr */
				ldns_rr_free(rr);
				e = ZD_ENOMEM;
			}
		}
		if (e == ZD_OK)
			e = store_txn_rrset_put(w->t, j->owner, LDNS_RR_TYPE_RRSIG, j->type, l);
		ldns_rr_list_deep_free(l);
		if (e == ZD_OK)
			w->st->signatures += end - i;
		i = end;
	}
	return e;
}

/* The flush still signing in the pool, if any: wait for it and put its
 * RRSIGs (report) or throw them away (!report, after a failure). */
static zd_err
inflight_end(struct work *w, int report)
{
	struct signing *sn = w->inflight;
	zd_err e = ZD_OK;

	if (sn == NULL)
		return ZD_OK;
	w->inflight = NULL;
	uint64_t t0 = zd_now_ms();
	pthread_join(sn->th, NULL);
	w->st->wait_ms += zd_now_ms() - t0;
	w->st->pool_ms += sn->pool_ms;
	if (report)
		e = signing_finish(w, sn, sn->e);
	signing_free(sn);
	return e;
}

/* sn signed on this thread, which waits for all of it, and its RRSIGs put. */
static zd_err
signing_here(struct work *w, struct signing *sn)
{
	zd_err e = signing_pool(sn);
	w->st->wait_ms += sn->pool_ms;
	w->st->pool_ms += sn->pool_ms;
	return signing_finish(w, sn, e);
}

void
signer_jobs_abandon(struct work *w)
{
	(void)inflight_end(w, 0);
}

/* Sign the queued jobs: build each input, sign them all, put the RRSIGs;
 * the flush signing in the pool before (signer_jobs_flush_async()) is put
 * first. */
zd_err
signer_jobs_flush(struct work *w)
{
	struct signing *sn = NULL;
	zd_err e;

	if ((e = inflight_end(w, 1)) != ZD_OK || w->n_jobs == 0)
		return e;
	if ((e = signing_prepare(w, &sn)) != ZD_OK)
		return e;
	e = signing_here(w, sn);
	signing_free(sn);
	return e;
}

/* As signer_jobs_flush(), but with a pool the queued jobs are left
 * signing in it on a thread of their own while the caller goes on (the
 * batch thread builds the next inputs while the pool signs these): their
 * RRSIGs are put at the next flush, before that flush's own. Jobs read
 * the records they sign when they are flushed, so what the caller puts
 * meanwhile is seen by later jobs only; and the RRSIGs of one RRset are
 * put in the order of their flushes, the last one last. */
zd_err
signer_jobs_flush_async(struct work *w)
{
	struct signing *sn = NULL;
	zd_err e;

	if (w->sg->pool == NULL || w->n_jobs == 0)
		return signer_jobs_flush(w);
	if ((e = signing_prepare(w, &sn)) != ZD_OK)
		return e;
	if ((e = inflight_end(w, 1)) != ZD_OK) {
		signing_free(sn);
		return e;
	}
	if (pthread_create(&sn->th, NULL, signing_main, sn) != 0) {
		e = signing_here(w, sn);
		signing_free(sn);
		return e;
	}
	w->inflight = sn;
	return ZD_OK;
}

/* ---- names ------------------------------------------------------------------ */

int
signer_type_is_dnssec(uint16_t type)
{
	return type == LDNS_RR_TYPE_RRSIG || type == LDNS_RR_TYPE_NSEC ||
	       type == LDNS_RR_TYPE_NSEC3;
}

static int
has_type(const uint16_t *types, size_t n, uint16_t type)
{
	for (size_t i = 0; i < n; i++)
		if (types[i] == type)
			return 1;
	return 0;
}

/* 1 when a name strictly between name and the apex is a delegation (or
 * DNAME) as of v: name is glue or below a cut, nothing there is signed. */
zd_err
signer_occluded(struct work *w, uint64_t v, const ldns_rdf *name, int *out)
{
	uint8_t apex_labels = ldns_dname_label_count(w->sg->apex);
	ldns_rdf *a = ldns_dname_left_chop(name);
	uint16_t types[TYPES_MAX];
	size_t n;
	zd_err e = ZD_OK;

	*out = 0;
	while (a != NULL && ldns_dname_label_count(a) > apex_labels) {
		if ((e = store_name_types(w->s, v, a, types, TYPES_MAX, &n)) != ZD_OK)
			break;
		if (has_type(types, n, LDNS_RR_TYPE_NS) || has_type(types, n, LDNS_RR_TYPE_DNAME)) {
			*out = 1;
			break;
		}
		ldns_rdf *up = ldns_dname_left_chop(a);
		ldns_rdf_deep_free(a);
		a = up;
	}
	ldns_rdf_deep_free(a);
	return e;
}

int
signer_changed(const struct work *w, const ldns_rdf *owner, uint16_t type)
{
	if (w->full)
		return 1;
	size_t lo = 0, hi = w->n_chg;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = ldns_dname_compare(w->chg[mid].owner, owner);
		if (c == 0)
			c = w->chg[mid].type < type ? -1 : w->chg[mid].type > type;
		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Reconcile one name's RRSIGs, then its chain record. */
static zd_err
name_reconcile(struct work *w, const ldns_rdf *name)
{
	ldns_rr_list *all = NULL;
	uint16_t present[TYPES_MAX], types[TYPES_MAX];
	size_t n_present = 0, n_types = 0;
	int apex = ldns_dname_compare(name, w->sg->apex) == 0, occluded = 0;
	zd_err e;

	if ((e = store_name_types(w->s, w->v, name, present, TYPES_MAX, &n_present)) != ZD_OK)
		return e;
	if (!apex && has_type(present, n_present, LDNS_RR_TYPE_NSEC3))
		return ZD_OK; /* a chain record's owner: nsec3.c keeps those */
	for (size_t i = 0; i < n_present; i++)
		if (!signer_type_is_dnssec(present[i]))
			types[n_types++] = present[i];
	/* The records themselves only where signatures are there to judge. */
	if (has_type(present, n_present, LDNS_RR_TYPE_RRSIG) &&
	    (e = signer_name_rrs(w, w->v, name, &all)) != ZD_OK)
		return e;
	size_t n = all ? ldns_rr_list_rr_count(all) : 0;
	if (!apex && (e = signer_occluded(w, w->v, name, &occluded)) != ZD_OK)
		goto out;
	int deleg = !apex && has_type(types, n_types, LDNS_RR_TYPE_NS);
	struct name_state ns = {
	        .name = name,
	        .apex = apex,
	        .occluded = occluded,
	        .deleg = deleg,
	        .has_ds = has_type(types, n_types, LDNS_RR_TYPE_DS),
	        .types = types,
	        .n_types = n_types,
	};
	/* RRSIGs of the data: new for a changed RRset or one whose signature
	 * is old or by another key; none where nothing may be signed. */
	for (size_t i = 0; i < n_types; i++) {
		uint16_t t = types[i];
		int must = !occluded && (!deleg || t == LDNS_RR_TYPE_DS);
		if (!must)
			continue;
		ns.any_signed = 1;
		const ldns_rr *first = NULL;
		for (size_t k = 0; k < n && first == NULL; k++) {
			const ldns_rr *rr = ldns_rr_list_rr(all, k);
			if ((uint16_t)ldns_rr_get_type(rr) == t)
				first = rr;
		}
		if (signer_changed(w, name, t) || first == NULL ||
		    !signer_rrsigs_ok(w, all, t, ldns_rr_ttl(first)))
			if ((e = signer_job_push(w, name, t)) != ZD_OK)
				goto out;
	}
	for (size_t k = 0; k < n; k++) {
		const ldns_rr *rr = ldns_rr_list_rr(all, k);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_RRSIG)
			continue;
		uint16_t c = (uint16_t)ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr));
		if (c == LDNS_RR_TYPE_NSEC || c == LDNS_RR_TYPE_NSEC3)
			continue; /* the chain's */
		int must = has_type(types, n_types, c) && !occluded &&
		           (!deleg || c == LDNS_RR_TYPE_DS);
		if (!must && (e = signer_rrset_put1(w, name, LDNS_RR_TYPE_RRSIG, c, NULL)) != ZD_OK)
			goto out;
	}
	e = signer_chain_name(w, &ns);
out:
	ldns_rr_list_deep_free(all);
	return e;
}

/* ---- driving ------------------------------------------------------------- */

static zd_err
chg_collect(void *arg, const ldns_rdf *owner, uint16_t type, uint16_t covered)
{
	struct work *w = arg;
	(void)covered;
	if (w->n_chg == w->cap_chg) {
		size_t ncap = w->cap_chg ? w->cap_chg * 2 : 64;
		struct chg *p = realloc(w->chg, ncap * sizeof *p);
		if (p == NULL)
			return ZD_ENOMEM;
		w->chg = p;
		w->cap_chg = ncap;
	}
	ldns_rdf *o = ldns_rdf_clone(owner);
	if (o == NULL)
		return ZD_ENOMEM;
	w->chg[w->n_chg++] = (struct chg){.owner = o, .type = type};
	return ZD_OK;
}

static int
chg_cmp(const void *a, const void *b)
{
	const struct chg *x = a, *y = b;
	int c = ldns_dname_compare(x->owner, y->owner);
	return c != 0 ? c : (x->type < y->type ? -1 : x->type > y->type);
}

/* The name and its ancestors below the apex. */
static zd_err
push_with_ancestors(struct work *w, struct namevec *nv, const ldns_rdf *name)
{
	uint8_t apex_labels = ldns_dname_label_count(w->sg->apex);
	ldns_rdf *a = ldns_rdf_clone(name);
	zd_err e = ZD_OK;

	if (!ldns_dname_is_subdomain(name, w->sg->apex) &&
	    ldns_dname_compare(name, w->sg->apex) != 0) {
		ldns_rdf_deep_free(a);
		return ZD_OK;
	}
	while (a != NULL && e == ZD_OK && ldns_dname_label_count(a) > apex_labels) {
		ldns_rdf *up = ldns_dname_left_chop(a);
		e = namevec_push(nv, a);
		a = up;
	}
	ldns_rdf_deep_free(a);
	return e;
}

static zd_err
below_collect(void *arg, const ldns_rdf *name)
{
	return namevec_push(arg, ldns_rdf_clone(name));
}

/* Names the txn touched: changed owners, their ancestors, the names below
 * a changed NS RRset (their occlusion changed), and refresh-due names. */
static zd_err
affected_names(struct work *w, struct namevec *nv)
{
	zd_err e = ZD_OK;
	if ((e = namevec_push(nv, ldns_rdf_clone(w->sg->apex))) != ZD_OK)
		return e;
	for (size_t i = 0; i < w->n_chg && e == ZD_OK; i++) {
		const struct chg *c = &w->chg[i];
		if (c->type == LDNS_RR_TYPE_RRSIG || c->type == LDNS_RR_TYPE_NSEC3)
			continue;
		if ((e = push_with_ancestors(w, nv, c->owner)) != ZD_OK)
			break;
		if (c->type == LDNS_RR_TYPE_NS && ldns_dname_compare(c->owner, w->sg->apex) != 0) {
			e = store_below_walk(w->s, w->v, c->owner, SIGNER_BELOW_MAX, below_collect,
			                     nv);
			if (e == ZD_OK && w->old != 0)
				e = store_below_walk(w->s, w->old, c->owner, SIGNER_BELOW_MAX,
				                     below_collect, nv);
		}
	}
	for (size_t i = 0; i < w->sg->pending.n && e == ZD_OK; i++) {
		/* refresh: a chain owner goes to the chain's own check */
		const ldns_rdf *p = w->sg->pending.v[i];
		e = namevec_push(nv, ldns_rdf_clone(p));
		if (e == ZD_OK)
			e = namevec_push(&w->chain_dirty, ldns_rdf_clone(p));
	}
	if (e == ZD_OK)
		namevec_sort_unique(nv);
	return e;
}

static zd_err
apex_put(struct work *w)
{
	ldns_rr_list *sets[4];
	zd_err e = apex_sets(w->sg, sets);
	for (int i = 0; i < 4 && e == ZD_OK; i++)
		e = store_txn_rrset_put(w->t, w->sg->apex, apex_types[i], 0, sets[i]);
	for (int i = 0; i < 4; i++)
		ldns_rr_list_deep_free(sets[i]);
	return e;
}

/* Names of the zone in chunks, for a full signing. */
static zd_err
walk_names(void *arg, const ldns_rdf *name)
{
	return namevec_push(arg, ldns_rdf_clone(name));
}

/* Worker processes for a full signing (SoftHSM signs in one thread per
 * process): hsm.sign-processes of them, or one per core.  Without them the
 * batch thread signs alone. */
static void
pool_start(struct signer *sg, size_t names)
{
	const struct zd_hsm_config *hc = sg->tk->hc;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned procs =
	        hc->sign_processes ? hc->sign_processes : (unsigned)(cores > 0 ? cores : 1);
	char err[1024];

	if (procs < 2 || names < POOL_MIN_JOBS)
		return;
	if (procs > HSM_POOL_PROCS_MAX)
		procs = HSM_POOL_PROCS_MAX;
	struct hsm_config c = {
	        .module_path = hc->module,
	        .token_label = hc->token_label,
	        .pin_file = hc->pin_file,
	        .pin_env = hc->pin_env,
	};
	struct hsm_pool_key keys[2];
	keys[0].id = hsm_key_id_get(sg->zsk, &keys[0].id_len);
	keys[1].id = hsm_key_id_get(sg->ksk, &keys[1].id_len);
	size_t n_keys = sg->offline ? 1 : 2; /* an offline KSK is not in the token */
	const char *const argv[] = {"/proc/self/exe", NULL};
	uint64_t t0 = zd_now_ms();
	if (hsm_pool_new(&c, argv, procs, keys, n_keys, &sg->pool, err, sizeof err) != ZD_OK) {
		sg->pool = NULL;
		zd_log(ZD_LOG_WARNING, "signer", sg->zc->name,
		       "no signing processes (%s); the full signing runs in one", err);
		return;
	}
	zd_log(ZD_LOG_INFO, "signer", sg->zc->name,
	       "%u signing processes started in %" PRIu64 " ms", procs, zd_now_ms() - t0);
}

static void
pool_stop(struct signer *sg)
{
	char err[1024];
	if (sg->pool != NULL && hsm_pool_close(sg->pool, err, sizeof err) != ZD_OK)
		zd_log(ZD_LOG_WARNING, "signer", sg->zc->name, "signing processes: %s", err);
	sg->pool = NULL;
}

#define FULL_CHUNK_NAMES 4096
#define JOBS_FLUSH       4096
#define PATH_NAMES_MAX   128 /* names on one path below the apex: one per label */

/* The names a full signing reconciled on the way from the apex down to
 * the last one (the apex not among them).  The walk is in canonical order,
 * where a name's ancestors come before it and its descendants right after
 * it: an ancestor not on the path when a name comes holds nothing (an
 * empty non-terminal), and is reconciled then, once. */
struct path {
	ldns_rdf *v[PATH_NAMES_MAX]; /* owned; each below the one before */
	size_t n;
};

static void
path_clear(struct path *p)
{
	while (p->n > 0)
		ldns_rdf_deep_free(p->v[--p->n]);
}

/* name (taken) strictly below the top of the path, or the apex: reconcile
 * it and put it on the path. */
static zd_err
path_reconcile(struct work *w, struct path *p, ldns_rdf *name)
{
	zd_err e;
	if (p->n == PATH_NAMES_MAX) {
		ldns_rdf_deep_free(name);
		return ZD_EBUG; /* a name has at most 127 labels */
	}
	p->v[p->n++] = name;
	e = name_reconcile(w, name);
	w->st->names++;
	if (e == ZD_OK && w->n_jobs >= JOBS_FLUSH)
		e = signer_jobs_flush_async(w);
	return e;
}

static int
rdf_below(const ldns_rdf *name, const ldns_rdf *parent)
{
	return zd_name_is_below(ldns_rdf_data(name), ldns_rdf_size(name), ldns_rdf_data(parent),
	                        ldns_rdf_size(parent));
}

/* One name of the walk (taken), with the empty non-terminals above it. */
static zd_err
full_name(struct work *w, struct path *p, ldns_rdf *name)
{
	const ldns_rdf *apex = w->sg->apex;
	if (!rdf_below(name, apex)) {
		ldns_rdf_deep_free(name); /* the apex goes last; nothing else is here */
		return ZD_OK;
	}
	while (p->n > 0 && !rdf_below(name, p->v[p->n - 1]))
		ldns_rdf_deep_free(p->v[--p->n]);
	uint8_t top = ldns_dname_label_count(p->n > 0 ? p->v[p->n - 1] : apex);
	uint8_t labels = ldns_dname_label_count(name);
	ldns_rdf *ent[PATH_NAMES_MAX];
	size_t n_ent = 0;
	zd_err e = ZD_OK;
	if (labels > top + 1) { /* the names between: nearest the apex last */
		ldns_rdf *a = ldns_dname_left_chop(name);
		while (a != NULL && ldns_dname_label_count(a) > top && n_ent < PATH_NAMES_MAX) {
			ent[n_ent++] = a;
			a = ldns_dname_left_chop(a);
		}
		if (a == NULL || ldns_dname_label_count(a) != top)
			e = ZD_ENOMEM;
		ldns_rdf_deep_free(a);
	}
	while (n_ent > 0 && e == ZD_OK)
		e = path_reconcile(w, p, ent[--n_ent]);
	while (n_ent > 0)
		ldns_rdf_deep_free(ent[--n_ent]);
	if (e != ZD_OK) {
		ldns_rdf_deep_free(name);
		return e;
	}
	return path_reconcile(w, p, name);
}

static zd_err
sign_full(struct work *w)
{
	struct store_cursor cur = STORE_CURSOR_INIT;
	struct namevec chunk = {0};
	struct path path = {0};
	zd_err e = ZD_OK;

	while (!cur.done && e == ZD_OK) {
		if ((e = store_names_walk(w->s, w->v, &cur, FULL_CHUNK_NAMES, walk_names,
		                          &chunk)) != ZD_OK)
			break;
		size_t i = 0;
		for (; i < chunk.n && e == ZD_OK; i++)
			e = full_name(w, &path, chunk.v[i]);
		for (; i < chunk.n; i++)
			ldns_rdf_deep_free(chunk.v[i]);
		chunk.n = 0; /* the path or full_name() took them */
	}
	path_clear(&path);
	/* the apex, last: its bitmap includes what the walk put there */
	if (e == ZD_OK)
		e = name_reconcile(w, w->sg->apex);
	if (e == ZD_OK)
		e = signer_jobs_flush(w);
	if (e == ZD_OK)
		e = signer_chain_full(w);
	if (e == ZD_OK)
		e = signer_jobs_flush(w);
	else
		signer_jobs_abandon(w); /* no flush signs on past here: the pool stops next */
	namevec_clear(&chunk);
	return e;
}

static zd_err
sign_incremental(struct work *w)
{
	struct namevec names = {0};
	zd_err e;

	if ((e = affected_names(w, &names)) != ZD_OK)
		goto out;
	for (size_t i = 0; i < names.n && e == ZD_OK; i++) {
		e = name_reconcile(w, names.v[i]);
		w->st->names++;
	}
	if (e == ZD_OK)
		e = signer_chain_incremental(w);
	if (e == ZD_OK)
		e = signer_jobs_flush(w);
out:
	namevec_clear(&names);
	return e;
}

zd_err
signer_txn_sign(struct signer *sg, struct store *s, struct store_txn *t, int full,
                struct signer_stats *st, char *err, size_t errlen)
{
	struct work w = {
	        .sg = sg,
	        .s = s,
	        .t = t,
	        .v = store_txn_version_get(t),
	        .old = store_published_get(s),
	        .now = now_s(),
	        .full = full,
	        .st = st,
	        .err = err,
	        .errlen = errlen,
	};
	uint64_t t0 = zd_now_ms();
	zd_err e;

	memset(st, 0, sizeof *st);
	if (errlen)
		err[0] = '\0';
	if ((e = apex_put(&w)) != ZD_OK)
		goto out;
	if (!full) {
		if ((e = store_txn_changes_foreach(t, chg_collect, &w)) != ZD_OK)
			goto out;
		qsort(w.chg, w.n_chg, sizeof *w.chg, chg_cmp);
	}
	if (full) {
		struct store_stats ss;
		store_stats_get(s, &ss);
		pool_start(sg, ss.names);
		e = sign_full(&w);
		pool_stop(sg);
	} else {
		e = sign_incremental(&w);
	}
	if (e == ZD_OK)
		namevec_clear(&sg->pending); /* re-signed */
out:
	if (e != ZD_OK && err[0] == '\0')
		snprintf(err, errlen, "%s", zd_strerror(e));
	for (size_t i = 0; i < w.n_chg; i++)
		ldns_rdf_deep_free(w.chg[i].owner);
	free(w.chg);
	for (size_t i = 0; i < w.n_jobs; i++)
		ldns_rdf_deep_free(w.jobs[i].owner);
	free(w.jobs);
	namevec_clear(&w.chain_touched);
	namevec_clear(&w.chain_removed);
	namevec_clear(&w.chain_dirty);
	st->ms = zd_now_ms() - t0;
	return e;
}

/* ---- refresh ------------------------------------------------------------ */

struct refresh_ctx {
	struct signer *sg;
	struct store *s;
	uint64_t v;
	uint32_t now;
	ldns_rdf *last;
	zd_err e;
};

/* An offline KSK's RRSIG expiring at exp over the apex RRset of type: 1
 * when the bundles have a fresher one for it (else renewing changes
 * nothing, and the refresh leaves it). */
static int
bundle_fresher(const struct refresh_ctx *c, uint16_t type, uint32_t exp)
{
	ldns_rr_list *set = NULL;
	if (store_rrset_find(c->s, c->v, c->sg->apex, type, 0, &set) != ZD_OK || set == NULL)
		return 0;
	for (size_t k = 0; k < ldns_rr_list_rr_count(set); k++)
		ldns_rr2canonical(ldns_rr_list_rr(set, k));
	ldns_rr_list_sort(set);
	const ldns_rr *best = kskb_rrsig_find(c->sg->bundles, type, set, c->now);
	ldns_rr_list_deep_free(set);
	return best != NULL &&
	       (int32_t)(ldns_rdf2native_int32(ldns_rr_rrsig_expiration(best)) - exp) > 0;
}

static zd_err
refresh_rr(void *arg, const ldns_rr *rr)
{
	struct refresh_ctx *c = arg;
	if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_RRSIG || ldns_rr_rd_count(rr) < 9)
		return ZD_OK;
	uint32_t exp = ldns_rdf2native_int32(ldns_rr_rrsig_expiration(rr));
	if ((int32_t)(exp - c->now) > (int32_t)c->sg->p->refresh)
		return ZD_OK;
	if (c->last != NULL && ldns_dname_compare(c->last, ldns_rr_owner(rr)) == 0)
		return ZD_OK;
	uint16_t covered = ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr));
	if (c->sg->offline && type_is_ksk_signed(covered) &&
	    ldns_dname_compare(ldns_rr_owner(rr), c->sg->apex) == 0 &&
	    !bundle_fresher(c, covered, exp))
		return ZD_OK;
	if (c->sg->pending.n >= PENDING_MAX)
		return ZD_OK;
	ldns_rdf *o = ldns_rdf_clone(ldns_rr_owner(rr));
	zd_err e = namevec_push(&c->sg->pending, o);
	if (e == ZD_OK)
		c->last = o;
	return e;
}

zd_err
signer_refresh_collect(struct signer *sg, struct store *s, size_t max_names, size_t *due)
{
	uint64_t v = store_published_get(s);
	struct refresh_ctx c = {.sg = sg, .s = s, .v = v, .now = now_s()};
	zd_err e = ZD_OK;

	if (v != 0 && sg->pending.n < PENDING_MAX) {
		if (sg->refresh_cur.done)
			sg->refresh_cur = (struct store_cursor)STORE_CURSOR_INIT;
		e = store_walk(s, v, &sg->refresh_cur, max_names, refresh_rr, &c);
		if (e == ZD_ENOTFOUND) { /* version pruned meanwhile: start over */
			sg->refresh_cur = (struct store_cursor)STORE_CURSOR_INIT;
			e = ZD_OK;
		}
	}
	*due = sg->pending.n;
	return e;
}

size_t
signer_refresh_step_names(const struct signer *sg, size_t zone_names, uint32_t interval_ms)
{
	uint64_t cycle_ms = (uint64_t)sg->p->refresh * 1000u / 4u;
	if (cycle_ms == 0)
		cycle_ms = 1;
	uint64_t n = (uint64_t)zone_names * interval_ms / cycle_ms + 1;
	return n < 16 ? 16 : (size_t)n;
}

ldns_rr *
signer_key_dnskey_get(struct signer *sg, enum signer_role role, uint16_t tag)
{
	ldns_rr *rr = NULL;
	const struct hsm_key *k = key_find(sg, role, tag);
	return k != NULL && dnskey_rr(sg, k, role_flags(role), &rr) == ZD_OK ? rr : NULL;
}

void
signer_keys_get(const struct signer *sg, uint16_t *ksk_tag, uint16_t *zsk_tag, uint8_t *algorithm)
{
	uint32_t t = atomic_load(&sg->tags_seen);
	*ksk_tag = (uint16_t)(t >> 16);
	*zsk_tag = (uint16_t)t;
	*algorithm = (uint8_t)atomic_load(&sg->alg_seen);
}
