/* server/kskbundle.c -- the offline KSK's pre-signed bundles and the
 * ceremony that makes them (kskbundle.h). */
#include "server/kskbundle.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_clock.h"
#include "common/zd_keyplan.h"
#include "common/zd_log.h"
#include "hsm/hsm.h"
#include "server/keybackup.h"

#define KSKB_TYPES 3 /* DNSKEY, CDS, CDNSKEY */
#define PLAN_STEPS 1024

static int tag_in(const uint16_t *v, size_t n, uint16_t t);

static const uint16_t kskb_types[KSKB_TYPES] = {LDNS_RR_TYPE_DNSKEY, LDNS_RR_TYPE_CDS,
                                                LDNS_RR_TYPE_CDNSKEY};

struct slot {
	uint32_t inception, expiration;
	ldns_rr_list *sets[KSKB_TYPES]; /* canonical, sorted; NULL: none */
	ldns_rr *sigs[KSKB_TYPES];
};

struct kskb {
	uint64_t made_at, until;
	size_t keysets;
	ldns_rr *ksk;
	struct slot *v;
	size_t n;
};

static int
type_index(uint16_t type)
{
	for (int i = 0; i < KSKB_TYPES; i++)
		if (kskb_types[i] == type)
			return i;
	return -1;
}

static void
slot_clear(struct slot *s)
{
	for (int i = 0; i < KSKB_TYPES; i++) {
		ldns_rr_list_deep_free(s->sets[i]);
		ldns_rr_free(s->sigs[i]);
	}
	memset(s, 0, sizeof *s);
}

void
kskb_free(struct kskb *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		slot_clear(&b->v[i]);
	free(b->v);
	ldns_rr_free(b->ksk);
	free(b);
}

uint64_t
kskb_until_get(const struct kskb *b)
{
	return b ? b->until : 0;
}

uint64_t
kskb_made_get(const struct kskb *b)
{
	return b ? b->made_at : 0;
}

size_t
kskb_slots_get(const struct kskb *b)
{
	return b ? b->n : 0;
}

size_t
kskb_keysets_get(const struct kskb *b)
{
	return b ? b->keysets : 0;
}

const ldns_rr *
kskb_ksk_get(const struct kskb *b)
{
	return b ? b->ksk : NULL;
}

static int
sets_equal(const ldns_rr_list *a, const ldns_rr_list *b)
{
	if (a == NULL || b == NULL || ldns_rr_list_rr_count(a) != ldns_rr_list_rr_count(b) ||
	    ldns_rr_list_rr_count(a) == 0)
		return 0;
	for (size_t i = 0; i < ldns_rr_list_rr_count(a); i++) {
		const ldns_rr *x = ldns_rr_list_rr(a, i), *y = ldns_rr_list_rr(b, i);
		if (ldns_rr_compare(x, y) != 0 || ldns_rr_ttl(x) != ldns_rr_ttl(y))
			return 0;
	}
	return 1;
}

static int
slot_valid(const struct slot *s, uint32_t now)
{
	return (int32_t)(now - s->inception) >= 0 && (int32_t)(s->expiration - now) > 0;
}

const ldns_rr *
kskb_rrsig_find(const struct kskb *b, uint16_t type, const ldns_rr_list *rrset, uint32_t now)
{
	int ti = type_index(type);
	const struct slot *best = NULL;
	if (b == NULL || ti < 0)
		return NULL;
	for (size_t i = 0; i < b->n; i++) {
		const struct slot *s = &b->v[i];
		if (!slot_valid(s, now) || s->sigs[ti] == NULL || !sets_equal(s->sets[ti], rrset))
			continue;
		if (best == NULL || (int32_t)(s->expiration - best->expiration) > 0)
			best = s;
	}
	return best ? best->sigs[ti] : NULL;
}

static uint16_t
rr_tag(const ldns_rr *rr)
{
	return ldns_calc_keytag(rr);
}

int
kskb_next_zsk(const struct kskb *b, uint32_t now, const uint16_t *cur, size_t n,
              const uint16_t *avoid, size_t n_avoid, uint16_t *tag)
{
	for (size_t i = 0; b != NULL && i < b->n; i++) {
		const struct slot *s = &b->v[i];
		const ldns_rr_list *l = s->sets[0];
		if (!slot_valid(s, now) || l == NULL || ldns_rr_list_rr_count(l) != n + 1)
			continue;
		size_t have = 0, extra = 0;
		uint16_t x = 0;
		for (size_t k = 0; k < ldns_rr_list_rr_count(l); k++) {
			const ldns_rr *rr = ldns_rr_list_rr(l, k);
			uint16_t t = rr_tag(rr);
			if (tag_in(cur, n, t)) {
				have++;
			} else if (ldns_rdf2native_int16(ldns_rr_dnskey_flags(rr)) == 256) {
				extra++;
				x = t;
			}
		}
		/* not a ZSK the zone had (a removed one): never again */
		if (have == n && extra == 1 && !tag_in(avoid, n_avoid, x)) {
			*tag = x;
			return 1;
		}
	}
	return 0;
}

/* ---- the database ------------------------------------------------------- */

/* One row's records into s; 0 when it does not parse. */
static int
slot_parse(struct slot *s, const char *text, const ldns_rdf *apex, char *err, size_t errlen)
{
	const char *p = text;
	while (*p) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char line[8192];
		if (len >= sizeof line) {
			snprintf(err, errlen, "a record of %zu bytes", len);
			return 0;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (end != NULL);
		if (len == 0)
			continue;
		ldns_rr *rr = NULL;
		if (ldns_rr_new_frm_str(&rr, line, 0, NULL, NULL) != LDNS_STATUS_OK || rr == NULL) {
			snprintf(err, errlen, "a record does not parse: %.80s", line);
			return 0;
		}
		ldns_rr2canonical(rr);
		int ti = ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG
		                 ? type_index(ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr)))
		                 : type_index(ldns_rr_get_type(rr));
		if (ti < 0 || ldns_dname_compare(ldns_rr_owner(rr), apex) != 0) {
			snprintf(err, errlen, "a record of another type or owner: %.80s", line);
			ldns_rr_free(rr);
			return 0;
		}
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG) {
			if (s->sigs[ti] != NULL) {
				snprintf(err, errlen, "two RRSIGs over one RRset");
				ldns_rr_free(rr);
				return 0;
			}
			s->sigs[ti] = rr;
			continue;
		}
		if ((s->sets[ti] == NULL && (s->sets[ti] = ldns_rr_list_new()) == NULL) ||
		    !ldns_rr_list_push_rr(s->sets[ti], rr)) {
			snprintf(err, errlen, "out of memory");
			ldns_rr_free(rr);
			return 0;
		}
	}
	for (int i = 0; i < KSKB_TYPES; i++) {
		if ((s->sets[i] == NULL) != (s->sigs[i] == NULL)) {
			snprintf(err, errlen, "an RRset without its RRSIG, or an RRSIG without it");
			return 0;
		}
		if (s->sets[i] != NULL)
			ldns_rr_list_sort(s->sets[i]);
	}
	if (s->sets[0] == NULL) {
		snprintf(err, errlen, "no DNSKEY RRset");
		return 0;
	}
	return 1;
}

static int64_t
col_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

zd_err
kskb_load(PGconn *c, const char *zone, struct kskb **out, char *err, size_t errlen)
{
	const char *params[1] = {zone};
	struct kskb *b = NULL;
	ldns_rdf *apex = NULL;
	zd_err e = ZD_EDB;

	*out = NULL;
	PGresult *r = PQexecParams(c,
	                           "SELECT extract(epoch FROM made_at)::bigint, "
	                           "extract(epoch FROM until_at)::bigint, ksk, keysets "
	                           "FROM zonedist.ksk_ceremony WHERE zone = $1",
	                           1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading zonedist.ksk_ceremony: %s", PQerrorMessage(c));
		goto out;
	}
	if (PQntuples(r) == 0) {
		e = ZD_OK; /* no ceremony yet */
		goto out;
	}
	e = ZD_EMALFORMED;
	if ((b = calloc(1, sizeof *b)) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	b->made_at = (uint64_t)col_i64(r, 0, 0);
	b->until = (uint64_t)col_i64(r, 0, 1);
	b->keysets = (size_t)col_i64(r, 0, 3);
	if (ldns_rr_new_frm_str(&b->ksk, PQgetvalue(r, 0, 2), 0, NULL, NULL) != LDNS_STATUS_OK ||
	    ldns_rr_get_type(b->ksk) != LDNS_RR_TYPE_DNSKEY) {
		snprintf(err, errlen, "zonedist.ksk_ceremony of %s: the KSK does not parse", zone);
		goto out;
	}
	if (ldns_str2rdf_dname(&apex, zone) != LDNS_STATUS_OK) {
		snprintf(err, errlen, "zone name %s", zone);
		goto out;
	}
	ldns_dname2canonical(apex);
	PQclear(r);
	r = PQexecParams(c,
	                 "SELECT id, inception, expiration, records FROM zonedist.ksk_bundle "
	                 "WHERE zone = $1 ORDER BY inception, id LIMIT " /* + 1: over */
	                 "20001",
	                 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading zonedist.ksk_bundle: %s", PQerrorMessage(c));
		e = ZD_EDB;
		goto out;
	}
	size_t n = (size_t)PQntuples(r);
	if (n > KSKB_SLOTS_MAX) {
		snprintf(err, errlen, "zonedist.ksk_bundle has more than %d slots for %s",
		         KSKB_SLOTS_MAX, zone);
		e = ZD_ELIMIT;
		goto out;
	}
	if ((b->v = calloc(n ? n : 1, sizeof *b->v)) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++, b->n++) {
		struct slot *s = &b->v[i];
		char why[256];
		int64_t inc = col_i64(r, (int)i, 1), exp = col_i64(r, (int)i, 2);
		if (inc < 0 || exp <= inc || exp > (int64_t)UINT32_MAX ||
		    PQgetlength(r, (int)i, 3) > KSKB_RECORDS_MAX ||
		    !slot_parse(s, PQgetvalue(r, (int)i, 3), apex, why, sizeof why)) {
			snprintf(err, errlen, "zonedist.ksk_bundle row %s of %s: %s",
			         PQgetvalue(r, (int)i, 0), zone,
			         inc < 0 || exp <= inc || exp > (int64_t)UINT32_MAX ? "bad times"
			         : PQgetlength(r, (int)i, 3) > KSKB_RECORDS_MAX     ? "too long"
			                                                            : why);
			b->n++;
			goto out;
		}
		s->inception = (uint32_t)inc;
		s->expiration = (uint32_t)exp;
	}
	*out = b;
	b = NULL;
	e = ZD_OK;
out:
	PQclear(r);
	ldns_rdf_deep_free(apex);
	kskb_free(b);
	return e;
}

/* ---- the ceremony --------------------------------------------------------- */

/* The KSK token, connected.  One the module did not list when it was
 * initialised (plugged in since) is looked for again after the main token
 * was reconnected, which re-initialises the module. */
static zd_err
ksk_token_open(struct signer *sg, const struct zd_hsm_config *hc, struct hsm **out, char *err,
               size_t errlen)
{
	char why[768], why2[256];
	if (hc->ksk_token == NULL) {
		snprintf(err, errlen, "the hsm: section has no ksk-token:");
		return ZD_EMALFORMED;
	}
	zd_err e = keybackup_token_open(hc->ksk_token, hc->module, NULL, out, why, sizeof why);
	if (e != ZD_OK && signer_token_rescan(signer_token_get(sg), why2, sizeof why2) == ZD_OK)
		e = keybackup_token_open(hc->ksk_token, hc->module, NULL, out, why, sizeof why);
	if (e != ZD_OK)
		snprintf(err, errlen, "the KSK token '%s': %s", hc->ksk_token->token_label, why);
	return e;
}

/* The zone's KSK in h with tag (any when tag < 0), or NULL; *listed gets
 * the token's keys of the zone (the caller frees them). */
static struct hsm_key *
ksk_find(struct hsm *h, const char *zone, int tag, struct hsm_key ***keys, size_t *n)
{
	char label[HSM_LABEL_MAX + 1];
	snprintf(label, sizeof label, "%s KSK", zone);
	*keys = NULL;
	*n = 0;
	if (hsm_key_list(h, label, keys, n) != ZD_OK)
		return NULL;
	size_t ll = strlen(label);
	for (size_t i = 0; i < *n; i++) {
		const char *l = hsm_key_label_get((*keys)[i]);
		if (strncmp(l, label, ll) != 0 || (l[ll] != '\0' && l[ll] != ' '))
			continue;
		if (tag < 0 || hsm_key_tag_get((*keys)[i], HSM_DNSKEY_KSK) == (uint16_t)tag)
			return (*keys)[i];
	}
	return NULL;
}

/* A public half of k for the signer (which takes it). */
static zd_err
public_add(struct signer *sg, const struct hsm_key *k)
{
	size_t len = 0;
	const uint8_t *pub = hsm_key_pubkey_get(k, &len);
	struct hsm_key *p = NULL;
	zd_err e = hsm_key_public_new(hsm_key_alg_get(k), pub, len, hsm_key_label_get(k), &p);
	return e == ZD_OK ? signer_offline_ksk_add(sg, p) : e;
}

zd_err
kskb_ksk_fetch(struct signer *sg, const struct zd_zone_config *zc, const struct zd_hsm_config *hc,
               char *err, size_t errlen)
{
	struct hsm *h = NULL;
	struct hsm_key **keys = NULL, *made = NULL;
	size_t n = 0;
	zd_err e = ksk_token_open(sg, hc, &h, err, errlen);
	if (e != ZD_OK)
		return e;
	struct hsm_key *k = ksk_find(h, zc->name, -1, &keys, &n);
	if (k == NULL) {
		uint16_t used[SIGNER_ZSKS_MAX];
		size_t n_used = signer_key_tags_get(sg, SIGNER_ZSK, used, SIGNER_ZSKS_MAX);
		char label[HSM_LABEL_MAX + 1];
		snprintf(label, sizeof label, "%s KSK", zc->name);
		struct hsm_keyspec spec = {
		        .alg = zc->dnssec.algorithm, .bits = zc->dnssec.ksk_bits, .label = label};
		if ((e = hsm_key_generate_unique(
		             h, &spec, HSM_DNSKEY_KSK, used,
		             n_used < SIGNER_ZSKS_MAX ? n_used : SIGNER_ZSKS_MAX, 64, &made)) !=
		    ZD_OK) {
			snprintf(err, errlen, "generating the KSK in the KSK token: %s",
			         hsm_error_get(h));
			goto out;
		}
		k = made;
		zd_log(ZD_LOG_NOTICE, "kskbundle", zc->name,
		       "generated KSK '%s' in the KSK token '%s': %s, key tag %u", label,
		       hc->ksk_token->token_label, hsm_alg_name(zc->dnssec.algorithm),
		       hsm_key_tag_get(k, HSM_DNSKEY_KSK));
	}
	if ((e = public_add(sg, k)) != ZD_OK)
		snprintf(err, errlen, "the KSK %u: %s", hsm_key_tag_get(k, HSM_DNSKEY_KSK),
		         zd_strerror(e));
out:
	hsm_key_free(made);
	hsm_key_list_free(keys, n);
	hsm_free(h);
	return e;
}

/* A DNSKEY RRset of the schedule: the ZSKs in it, from when. */
struct keyset {
	uint64_t from;
	uint16_t zsks[3];
	size_t n;
};

static void
keyset_del(struct keyset *k, uint16_t tag)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->zsks[i] == tag) {
			k->zsks[i] = k->zsks[--k->n];
			return;
		}
}

/* t is one of v[0..n) (hsm_keytag_check() refuses it). */
static int
tag_in(const uint16_t *v, size_t n, uint16_t t)
{
	return hsm_keytag_check(t, v, n) != ZD_OK;
}

zd_err
kskb_ceremony(struct signer *sg, const struct zd_zone_config *zc, const struct zd_hsm_config *hc,
              const struct kskb_roll *roll, uint64_t now, PGconn *c, struct kskb **out, char *err,
              size_t errlen)
{
	const struct zd_dnssec_config *d = &zc->dnssec;
	uint64_t until = now + d->keys.bundle_period;
	struct zd_key_step *steps = calloc(PLAN_STEPS, sizeof *steps);
	struct keyset sets[KSKB_KEYSETS_MAX];
	size_t n_sets = 0;
	uint16_t gen[KSKB_KEYSETS_MAX + 2] = {0}; /* gen[g] for g >= 1; 0: none yet */
	struct hsm *h = NULL;
	struct hsm_key **keys = NULL;
	size_t n_keys = 0;
	char *sql_records = NULL;
	zd_err e = ZD_OK;

	*out = NULL;
	if (steps == NULL)
		return ZD_ENOMEM;
	/* the KSK token, and the KSK the zone signs with: first, so that a
	 * ceremony without them changes nothing */
	if ((e = ksk_token_open(sg, hc, &h, err, errlen)) != ZD_OK)
		goto out;
	uint16_t ksk_tag = 0, zsk_tag = 0;
	uint8_t alg = 0;
	signer_keys_get(sg, &ksk_tag, &zsk_tag, &alg);
	const struct hsm_key *ksk = ksk_find(h, zc->name, ksk_tag, &keys, &n_keys);
	if (ksk == NULL) {
		snprintf(err, errlen, "the KSK token '%s' has no KSK %u of zone %s",
		         hc->ksk_token->token_label, ksk_tag, zc->name);
		e = ZD_ENOTFOUND;
		goto out;
	}
	/* the schedule: the DNSKEY RRsets it makes, with their planned starts */
	struct zd_zsk_now zn = {.active = roll->active_at,
	                        .published = roll->extra == 1 ? roll->extra_at : 0,
	                        .retired = roll->extra == 2 ? roll->extra_at : 0,
	                        .compromised = roll->compromised};
	struct zd_ksk_now kn = {0};
	size_t n_steps = zd_key_plan_now(d, &zn, &kn, now, until, steps, PLAN_STEPS);
	if (n_steps == SIZE_MAX) {
		e = ZD_ENOMEM;
		goto out;
	}
	if (n_steps > PLAN_STEPS)
		n_steps = PLAN_STEPS;
	sets[0].from = now;
	sets[0].n = 0;
	sets[0].zsks[sets[0].n++] = roll->active;
	if (roll->extra != 0)
		sets[0].zsks[sets[0].n++] = roll->extra_tag;
	n_sets = 1;
	if (roll->extra == 1)
		gen[1] = roll->extra_tag;
	/* unpublished ZSKs in the token (an earlier ceremony's), used first */
	uint16_t spare[SIGNER_ZSKS_MAX];
	size_t n_spare = 0, n_tok = signer_key_tags_get(sg, SIGNER_ZSK, spare, SIGNER_ZSKS_MAX);
	if (n_tok > SIGNER_ZSKS_MAX)
		n_tok = SIGNER_ZSKS_MAX;
	for (size_t i = 0; i < n_tok; i++)
		if (!tag_in(sets[0].zsks, sets[0].n, spare[i]))
			spare[n_spare++] = spare[i];
	for (size_t i = 0; i < n_steps; i++) {
		const struct zd_key_step *st = &steps[i];
		if (st->ksk || (st->event != ZD_KEY_PUBLISH && st->event != ZD_KEY_REMOVE))
			continue; /* an offline KSK is not rolled; activate keeps the RRset */
		if (st->gen > KSKB_KEYSETS_MAX || n_sets == KSKB_KEYSETS_MAX) {
			snprintf(err, errlen,
			         "the ZSK schedule of %u days has more than %d DNSKEY RRsets: "
			         "shorten bundle-period",
			         d->keys.bundle_period / 86400, KSKB_KEYSETS_MAX);
			e = ZD_ELIMIT;
			goto out;
		}
		uint16_t tag;
		if (st->gen == 0) {
			tag = roll->active;
		} else if (st->gen < 0) {
			tag = roll->extra_tag;
		} else if (gen[st->gen] != 0) {
			tag = gen[st->gen];
		} else if (n_spare > 0) {
			tag = gen[st->gen] = spare[--n_spare];
		} else {
			char suffix[48];
			snprintf(suffix, sizeof suffix, "pre-%010" PRIu64 "-%d", st->at, st->gen);
			if ((e = signer_key_generate(sg, SIGNER_ZSK, suffix, roll->avoid,
			                             roll->n_avoid, &tag, err, errlen)) != ZD_OK)
				goto out;
			gen[st->gen] = tag;
		}
		struct keyset *k = &sets[n_sets];
		*k = sets[n_sets - 1];
		k->from = st->at;
		if (st->event == ZD_KEY_PUBLISH) {
			if (k->n == 3 || tag_in(k->zsks, k->n, tag)) {
				snprintf(err, errlen, "the ZSK schedule publishes ZSK %u twice",
				         tag);
				e = ZD_EBUG;
				goto out;
			}
			k->zsks[k->n++] = tag;
		} else {
			keyset_del(k, tag);
		}
		n_sets++;
	}
	struct hsm_session *sess = NULL;
	if ((e = hsm_session_open(h, &sess, err, errlen)) != ZD_OK)
		goto out;
	/* the slots, signed, stored */
	uint64_t step = d->validity > d->refresh ? (d->validity - d->refresh) / 2 : 0;
	if (step < 3600)
		step = 3600;
	PGresult *r = PQexec(c, "BEGIN");
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	const char *zp[1] = {zc->name};
	if (ok) {
		r = PQexecParams(c, "DELETE FROM zonedist.ksk_ceremony WHERE zone = $1", 1, NULL,
		                 zp, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	ldns_rr_list *ks[3] = {NULL, NULL, NULL};
	char *ksk_text = NULL;
	size_t n_slots = 0;
	if (ok && (e = signer_ksk_sets(sg, NULL, 0, ks)) == ZD_OK) {
		ksk_text = ldns_rr2str(ldns_rr_list_rr(ks[0], 0));
		for (int i = 0; i < 3; i++)
			ldns_rr_list_deep_free(ks[i]);
	}
	if (ok && e == ZD_OK && ksk_text != NULL) {
		char made[32], till[32], nk[16];
		snprintf(made, sizeof made, "%" PRIu64, now);
		snprintf(till, sizeof till, "%" PRIu64, until);
		snprintf(nk, sizeof nk, "%zu", n_sets);
		char *nl = strchr(ksk_text, '\n');
		if (nl != NULL)
			*nl = '\0';
		const char *p[5] = {zc->name, made, till, ksk_text, nk};
		r = PQexecParams(
		        c,
		        "INSERT INTO zonedist.ksk_ceremony (zone, made_at, until_at, ksk, "
		        "slots, keysets) VALUES ($1, to_timestamp($2), to_timestamp($3), $4, "
		        "0, $5)",
		        5, NULL, p, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	for (uint64_t t = now; ok && e == ZD_OK && t <= until; t += step) {
		for (size_t si = 0; si < n_sets && ok && e == ZD_OK; si++) {
			if (sets[si].from >= t + step)
				continue; /* planned after this slot: the next ones cover it */
			ldns_rr_list *rs[3] = {NULL, NULL, NULL};
			size_t cap = 0, len = 0;
			free(sql_records);
			sql_records = NULL;
			uint32_t inc = (uint32_t)(t - d->inception_offset),
			         exp = (uint32_t)(t + d->validity);
			if ((e = signer_ksk_sets(sg, sets[si].zsks, sets[si].n, rs)) != ZD_OK) {
				snprintf(err, errlen, "the DNSKEY RRset of ZSKs %u %u: %s",
				         sets[si].zsks[0], sets[si].n > 1 ? sets[si].zsks[1] : 0,
				         zd_strerror(e));
				break;
			}
			for (int ti = 0; ti < 3 && e == ZD_OK; ti++) {
				if (rs[ti] == NULL)
					continue;
				ldns_rr *sig = NULL;
				e = signer_rrsig_make(sg, sess, ksk, rs[ti], kskb_types[ti], inc,
				                      exp, &sig, err, errlen);
				for (size_t k = 0; e == ZD_OK && k <= ldns_rr_list_rr_count(rs[ti]);
				     k++) {
					const ldns_rr *rr = k < ldns_rr_list_rr_count(rs[ti])
					                            ? ldns_rr_list_rr(rs[ti], k)
					                            : sig;
					char *txt = ldns_rr2str(rr);
					size_t tl = txt ? strlen(txt) : 0;
					if (txt == NULL ||
					    (len + tl + 2 > cap &&
					     (cap = (len + tl + 2) * 2,
					      !(sql_records = realloc(sql_records, cap))))) {
						free(txt);
						e = ZD_ENOMEM;
						break;
					}
					memcpy(sql_records + len, txt, tl);
					len += tl;
					if (tl == 0 || txt[tl - 1] != '\n')
						sql_records[len++] = '\n';
					sql_records[len] = '\0';
					free(txt);
				}
				ldns_rr_free(sig);
			}
			for (int ti = 0; ti < 3; ti++)
				ldns_rr_list_deep_free(rs[ti]);
			if (e != ZD_OK)
				break;
			char a[16], b[16];
			snprintf(a, sizeof a, "%" PRIu32, inc);
			snprintf(b, sizeof b, "%" PRIu32, exp);
			const char *p[4] = {zc->name, a, b, sql_records};
			r = PQexecParams(
			        c,
			        "INSERT INTO zonedist.ksk_bundle (zone, inception, expiration, "
			        "records) VALUES ($1, $2, $3, $4)",
			        4, NULL, p, NULL, NULL, 0);
			ok = PQresultStatus(r) == PGRES_COMMAND_OK;
			PQclear(r);
			if (++n_slots > KSKB_SLOTS_MAX) {
				snprintf(
				        err, errlen,
				        "more than %d slots: shorten bundle-period or lengthen the "
				        "signature validity",
				        KSKB_SLOTS_MAX);
				e = ZD_ELIMIT;
			}
		}
	}
	if (ok && e == ZD_OK) {
		char ns[16];
		snprintf(ns, sizeof ns, "%zu", n_slots);
		const char *p[2] = {zc->name, ns};
		r = PQexecParams(c, "UPDATE zonedist.ksk_ceremony SET slots = $2 WHERE zone = $1",
		                 2, NULL, p, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	if (!ok && e == ZD_OK) {
		snprintf(err, errlen, "storing the bundles: %s", PQerrorMessage(c));
		e = ZD_EDB;
	}
	r = PQexec(c, e == ZD_OK ? "COMMIT" : "ROLLBACK");
	if (e == ZD_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "storing the bundles: %s", PQerrorMessage(c));
		e = ZD_EDB;
	}
	PQclear(r);
	free(ksk_text);
	hsm_session_close(sess);
	if (e == ZD_OK && (e = kskb_load(c, zc->name, out, err, errlen)) == ZD_OK && *out == NULL) {
		snprintf(err, errlen, "the bundles stored are not found again");
		e = ZD_EBUG;
	}
	if (e == ZD_OK) {
		char till[32];
		zd_time_utc(until, 0, till, sizeof till);
		zd_log(ZD_LOG_NOTICE, "kskbundle", zc->name,
		       "KSK ceremony with KSK %u: %zu DNSKEY RRsets of the ZSK schedule pre-signed "
		       "in %zu slots, fresh signatures until %s; the KSK token '%s' may go",
		       ksk_tag, n_sets, n_slots, till, hc->ksk_token->token_label);
	}
out:
	free(sql_records);
	hsm_key_list_free(keys, n_keys);
	hsm_free(h);
	free(steps);
	return e;
}
