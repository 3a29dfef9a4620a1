#include "server/keyroll.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_clock.h"
#include "common/zd_keyplan.h"
#include "common/zd_log.h"
#include "hsm/hsm.h"
#include "server/keybackup.h"
#include "server/kskbundle.h"
#include "server/keystate.h"

#define FAIL_LOG_EVERY_MS    60000
#define BUNDLE_WARN_EVERY_MS 3600000 /* the run-out warning, once an hour */

enum extra { EXTRA_NONE, EXTRA_NEXT, EXTRA_OLD };

/* Where the KSK roll is (the key plan's stages): the next KSK published
 * (it signs the DNSKEY RRset beside the active one), its CDS/CDNSKEY
 * published (DS submitted), its DS seen at the parent. */
#define KS_NONE      ZD_KSK_NONE
#define KS_PUBLISHED ZD_KSK_PUBLISHED
#define KS_READY     ZD_KSK_READY
#define KS_SEEN      ZD_KSK_SEEN

struct roll_state {
	uint16_t active;
	uint64_t active_at;
	enum extra extra;
	uint16_t extra_tag;
	uint64_t extra_at;
	uint64_t compromised_at; /* the active ZSK's, reported by an operator; 0: none */
	uint16_t ksk;            /* the active KSK */
	uint64_t ksk_at;         /* active since */
	enum zd_ksk_stage kstage;
	uint16_t ksk_next;
	uint64_t kstage_at;          /* when kstage began */
	uint64_t ksk_compromised_at; /* the active KSK's, reported by an operator; 0: none */
	int ustage;                  /* unsigning: 0 none, 1 delete CDS out, 2 DS gone, 3 done */
	uint64_t ustage_at;
	int astage;          /* algorithm rollover: 0 none, 1 signed, 2 published, 3 cds, 4 ds-seen,
	               5 old keys removed (keyroll.h) */
	uint16_t aksk, azsk; /* its new keys */
	uint64_t astage_at;
};

struct keyroll {
	const struct zd_zone_config *zc;
	struct signer *sg;
	uint8_t alg; /* the active keys' algorithm (the policy's once a rollover ended) */
	struct zd_key_intervals iv;
	pthread_mutex_t mu;    /* st, checked_at, steps: against keyroll_view_get() */
	struct roll_state st;  /* what is published (or pending) */
	struct roll_state was; /* before the pending step */
	uint16_t *tags;        /* every tag zonedist.key holds: never reused */
	size_t n_tags;
	int has_orphan; /* a ZSK in the token that no row knows: the next publish's */
	uint16_t orphan;
	int has_korphan; /* likewise a KSK */
	uint16_t korphan;
	ldns_rr *kdnskey[2];          /* under mu: the active KSK's DNSKEY, the next one's */
	_Atomic uint32_t parent_seen; /* 0x10000 | tag: the parent servers serve its DS */
	_Atomic int parent_gone;      /* unsigning: the parent servers serve no DS */
	enum keyroll_step pending;
	uint64_t pending_at;
	uint64_t checked_at, steps;
	uint64_t fail_logged_ms;
	_Atomic uint64_t reload_asked; /* by another thread: zonedist.key changed */
	uint64_t reload_done;
	/* offline KSK: the bundles' summary (under mu), and when their
	 * run-out warning was last logged */
	uint64_t b_made, b_until;
	size_t b_slots, b_keysets;
	uint64_t b_warned_ms;
	_Atomic uint64_t ceremony_asked; /* by the API: a ceremony, at the next batch */
	uint64_t c_done;                 /* under mu: ceremonies tried since the start */
	char c_err[256];                 /* under mu: why the last one failed; "": it did not */
};

const char *
keyroll_kstage_name(int kstage)
{
	switch (kstage) {
	case KS_PUBLISHED:
		return "published";
	case KS_READY:
		return "ready";
	case KS_SEEN:
		return "ds-seen";
	default:
		return "none";
	}
}

const char *
keyroll_ustage_name(int ustage)
{
	static const char *const names[] = {"none", "cds-delete", "ds-gone", "unsigned"};
	return ustage >= 0 && ustage <= 3 ? names[ustage] : "none";
}

const char *
keyroll_step_name(enum keyroll_step s)
{
	switch (s) {
	case KEYROLL_NONE:
		return "none";
	case KEYROLL_PUBLISH:
		return "publish";
	case KEYROLL_ACTIVATE:
		return "activate";
	case KEYROLL_REMOVE:
		return "remove";
	case KEYROLL_KSK_PUBLISH:
		return "ksk-publish";
	case KEYROLL_KSK_CDS:
		return "cds";
	case KEYROLL_KSK_DS_SEEN:
		return "ds-seen";
	case KEYROLL_KSK_SETTLE:
		return "ds-settled";
	case KEYROLL_UNSIGN_CDS_DELETE:
		return "cds-delete";
	case KEYROLL_UNSIGN_DS_GONE:
		return "ds-gone";
	case KEYROLL_UNSIGN_REMOVE:
		return "unsigned";
	case KEYROLL_ALG_SIGN:
		return "alg-sign";
	case KEYROLL_ALG_PUBLISH:
		return "alg-publish";
	case KEYROLL_ALG_CDS:
		return "alg-cds";
	case KEYROLL_ALG_DS_SEEN:
		return "alg-ds-seen";
	case KEYROLL_ALG_REMOVE:
		return "alg-remove";
	case KEYROLL_ALG_DONE:
		return "alg-done";
	}
	return "?";
}

static int
step_is_ksk(enum keyroll_step s)
{
	return s >= KEYROLL_KSK_PUBLISH && s <= KEYROLL_KSK_SETTLE;
}

static int
step_is_unsign(enum keyroll_step s)
{
	return s >= KEYROLL_UNSIGN_CDS_DELETE && s <= KEYROLL_UNSIGN_REMOVE;
}

static int
step_is_alg(enum keyroll_step s)
{
	return s >= KEYROLL_ALG_SIGN && s <= KEYROLL_ALG_DONE;
}

const char *
keyroll_astage_name(int astage)
{
	static const char *const names[] = {"none", "signed",  "published",
	                                    "cds",  "ds-seen", "removed"};
	return astage >= 0 && astage <= 5 ? names[astage] : "none";
}

/* The algorithm rollover's keys of st in the signer. */
static zd_err
alg_apply(struct keyroll *r, const struct roll_state *st)
{
	return signer_alg_use(r->sg, st->astage, st->aksk, st->azsk);
}

static void tag_add(struct keyroll *r, uint16_t tag);

/* The delete CDS/CDNSKEY are published from the first unsigning step until
 * the records go. */
static void
unsign_apply(struct keyroll *r, const struct roll_state *st)
{
	signer_cds_delete_set(r->sg, st->ustage == 1 || st->ustage == 2);
}

/* The KSKs of st in the signer. */
static zd_err
ksk_apply(struct keyroll *r, const struct roll_state *st)
{
	return signer_ksk_use(r->sg, st->ksk, st->kstage != KS_NONE, st->ksk_next,
	                      st->kstage >= KS_READY);
}

static void
state_set(struct keyroll *r, const struct roll_state *s)
{
	/* the KSKs' DNSKEY RRs for the probe thread, made here (the signer is
	 * the batch thread's) */
	ldns_rr *k0 = signer_key_dnskey_get(r->sg, SIGNER_KSK, s->ksk);
	ldns_rr *k1 = s->kstage != KS_NONE ? signer_key_dnskey_get(r->sg, SIGNER_KSK, s->ksk_next)
	              : s->astage >= 2     ? signer_key_dnskey_get(r->sg, SIGNER_KSK, s->aksk)
	                                   : NULL;
	pthread_mutex_lock(&r->mu);
	r->st = *s;
	ldns_rr *old0 = r->kdnskey[0], *old1 = r->kdnskey[1];
	r->kdnskey[0] = k0;
	r->kdnskey[1] = k1;
	pthread_mutex_unlock(&r->mu);
	ldns_rr_free(old0);
	ldns_rr_free(old1);
}

/* The token's other keys of role (not keep0, keep1): those the rows say
 * are removed go; one no row knows is kept for the next publish (a publish
 * that did not commit made it). */
static void
token_sweep(struct keyroll *r, enum signer_role role, const struct keystate_row *rows, size_t n,
            uint16_t keep0, int has_keep1, uint16_t keep1, int has_keep2, uint16_t keep2,
            int *has_orphan, uint16_t *orphan)
{
	const char *zname = r->zc->name, *rn = role == SIGNER_KSK ? "KSK" : "ZSK";
	uint16_t in_token[SIGNER_ZSKS_MAX];
	size_t nt = signer_key_tags_get(r->sg, role, in_token, SIGNER_ZSKS_MAX);
	if (nt > SIGNER_ZSKS_MAX)
		nt = SIGNER_ZSKS_MAX;
	*has_orphan = 0;
	for (size_t i = 0; i < nt; i++) {
		uint16_t t = in_token[i];
		if (t == keep0 || (has_keep1 && t == keep1) || (has_keep2 && t == keep2))
			continue;
		int known = 0;
		for (size_t j = 0; j < n; j++)
			known |= rows[j].tag ==
			         t; /* tags are never reused, whatever the algorithm */
		if (known) {
			char why[256];
			if (signer_key_destroy(r->sg, role, t, why, sizeof why) == ZD_OK)
				zd_log(ZD_LOG_NOTICE, "keyroll", zname,
				       "%s %u, removed from the zone, deleted from the token", rn,
				       t);
			else
				zd_log(ZD_LOG_WARNING, "keyroll", zname,
				       "%s %u was removed from the zone but stays in the token: %s",
				       rn, t, why);
		} else if (!*has_orphan) {
			*has_orphan = 1;
			*orphan = t;
			zd_log(ZD_LOG_NOTICE, "keyroll", zname,
			       "%s %u is in the token but not in zonedist.key: the next %s "
			       "rollover publishes it",
			       rn, t, rn);
		}
	}
}

/* The KSK rows into st: the active KSK, and the next one of a roll. */
static zd_err
ksk_rows(struct keyroll *r, const struct keystate_row *rows, size_t n, struct roll_state *st,
         char *err, size_t errlen)
{
	uint8_t alg = r->alg;
	const struct keystate_row *active = NULL, *next = NULL;
	for (size_t i = 0; i < n; i++) {
		if (rows[i].algorithm != alg)
			continue;
		if (rows[i].state == KEYSTATE_ACTIVE) {
			if (active != NULL) {
				snprintf(err, errlen,
				         "zonedist.key says two KSKs are active (tags %u and %u)",
				         active->tag, rows[i].tag);
				return ZD_EDB;
			}
			active = &rows[i];
		} else if (rows[i].state == KEYSTATE_PUBLISHED || rows[i].state == KEYSTATE_READY) {
			if (next != NULL) {
				snprintf(err, errlen,
				         "zonedist.key holds two KSKs beside the active one (tags "
				         "%u "
				         "and %u)",
				         next->tag, rows[i].tag);
				return ZD_EDB;
			}
			next = &rows[i];
		}
	}
	if (active == NULL && next != NULL) {
		snprintf(err, errlen, "zonedist.key has a published KSK (tag %u) but no active one",
		         next->tag);
		return ZD_EDB;
	}
	if (active == NULL)
		return ZD_OK; /* the first start: the signer's KSK, recorded after */
	st->ksk = active->tag;
	st->ksk_at = active->active;
	st->ksk_compromised_at = active->compromised;
	if (next != NULL) {
		st->ksk_next = next->tag;
		st->kstage = next->state == KEYSTATE_PUBLISHED ? KS_PUBLISHED
		             : next->ds_seen != 0              ? KS_SEEN
		                                               : KS_READY;
		st->kstage_at = st->kstage == KS_PUBLISHED ? next->published
		                : st->kstage == KS_READY   ? next->ready
		                                           : next->ds_seen;
	}
	if (ksk_apply(r, st) != ZD_OK) {
		snprintf(err, errlen,
		         "zonedist.key says KSK %u is active%s, but the token has no such %s key "
		         "labelled '%s KSK...'",
		         st->ksk, st->kstage != KS_NONE ? " and another is published" : "",
		         hsm_alg_name(alg), r->zc->name);
		return ZD_ENOTFOUND;
	}
	return ZD_OK;
}

/* No key of another algorithm than the active keys' (r->alg) is in the
 * zone's rows but removed ones: an algorithm rollover's new keys join
 * zonedist.key only when it ends. */
static zd_err
other_algorithm_check(const struct keyroll *r, const struct keystate_row *rows, size_t n,
                      const char *role, char *err, size_t errlen)
{
	static const char *const states[] = {
	        [KEYSTATE_PUBLISHED] = "published", [KEYSTATE_READY] = "ready",
	        [KEYSTATE_ACTIVE] = "active",       [KEYSTATE_RETIRED] = "retired",
	        [KEYSTATE_REMOVED] = "removed",     [KEYSTATE_OTHER] = "generated"};
	uint8_t alg = r->alg;
	for (size_t i = 0; i < n; i++) {
		if (rows[i].algorithm == alg || rows[i].state == KEYSTATE_REMOVED)
			continue;
		snprintf(err, errlen,
		         "zonedist.key says %s %u of the zone is %s and %s, beside active keys of "
		         "%s: a zone has keys of one algorithm but during an algorithm rollover "
		         "(zonedist.algroll); mark the stray row removed",
		         role, rows[i].tag, hsm_alg_name(rows[i].algorithm), states[rows[i].state],
		         hsm_alg_name(alg));
		return ZD_EHSM;
	}
	return ZD_OK;
}

/* The rows of zonedist.key, applied to the signer. */
static zd_err
load(struct keyroll *r, PGconn *c, char *err, size_t errlen)
{
	const char *zname = r->zc->name;
	struct keystate_row *rows = NULL, *krows = NULL;
	size_t n = 0, kn = 0;
	zd_err e;

	if ((e = keystate_load(c, zname, "ZSK", &rows, &n, err, errlen)) != ZD_OK)
		return e;
	if ((e = keystate_load(c, zname, "KSK", &krows, &kn, err, errlen)) != ZD_OK) {
		free(rows);
		return e;
	}
	/* the active keys' algorithm: the active ZSK's on record, else (the
	 * first start) the signer's */
	uint16_t t0, t1;
	signer_keys_get(r->sg, &t0, &t1, &r->alg);
	for (size_t i = 0; i < n; i++)
		if (rows[i].state == KEYSTATE_ACTIVE) {
			r->alg = rows[i].algorithm;
			break;
		}
	uint8_t alg = r->alg;
	uint16_t *tags = calloc(n + kn + 1, sizeof *tags);
	if (tags == NULL) {
		free(rows);
		free(krows);
		return ZD_ENOMEM;
	}
	const struct keystate_row *active = NULL, *extra = NULL;
	for (size_t i = 0; i < kn; i++)
		tags[n + i] = krows[i].tag;
	if ((e = other_algorithm_check(r, rows, n, "ZSK", err, errlen)) != ZD_OK ||
	    (e = other_algorithm_check(r, krows, kn, "KSK", err, errlen)) != ZD_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		tags[i] = rows[i].tag;
		if (rows[i].algorithm != alg)
			continue; /* another algorithm's: not this policy's roll */
		if (rows[i].state == KEYSTATE_ACTIVE) {
			if (active != NULL) {
				snprintf(err, errlen,
				         "zonedist.key says two ZSKs are active (tags %u and %u)",
				         active->tag, rows[i].tag);
				e = ZD_EDB;
				goto out;
			}
			active = &rows[i];
		} else if (rows[i].state == KEYSTATE_PUBLISHED ||
		           rows[i].state == KEYSTATE_RETIRED) {
			if (extra != NULL) {
				snprintf(err, errlen,
				         "zonedist.key holds two ZSKs beside the active one (tags "
				         "%u and %u)",
				         extra->tag, rows[i].tag);
				e = ZD_EDB;
				goto out;
			}
			extra = &rows[i];
		}
	}
	uint16_t cur_ksk, cur_zsk;
	uint8_t cur_alg;
	signer_keys_get(r->sg, &cur_ksk, &cur_zsk, &cur_alg);
	struct roll_state st = {.active = cur_zsk,
	                        .active_at = r->st.active_at,
	                        .ksk = cur_ksk,
	                        .ksk_at = r->st.ksk_at};
	if (active == NULL && extra != NULL) {
		snprintf(err, errlen, "zonedist.key has a %s ZSK (tag %u) but no active one",
		         extra->state == KEYSTATE_PUBLISHED ? "published" : "retired", extra->tag);
		e = ZD_EDB;
		goto out;
	}
	if (active != NULL) {
		st.active = active->tag;
		st.active_at = active->active;
		st.compromised_at = active->compromised;
		if (extra != NULL) {
			st.extra = extra->state == KEYSTATE_PUBLISHED ? EXTRA_NEXT : EXTRA_OLD;
			st.extra_tag = extra->tag;
			st.extra_at = st.extra == EXTRA_NEXT ? extra->published : extra->retired;
		}
		if (signer_zsk_use(r->sg, st.active, st.extra != EXTRA_NONE, st.extra_tag) !=
		    ZD_OK) {
			snprintf(err, errlen,
			         "zonedist.key says ZSK %u is active and %s, but the token has "
			         "no such %s key labelled '%s ZSK...'",
			         st.active,
			         st.extra == EXTRA_NONE ? "no other is published"
			                                : "another is published",
			         hsm_alg_name(alg), zname);
			e = ZD_ENOTFOUND;
			goto out;
		}
	}
	if ((e = ksk_rows(r, krows, kn, &st, err, errlen)) != ZD_OK)
		goto out;
	struct keystate_unsign u;
	if ((e = keystate_unsign_load(c, zname, &u, err, errlen)) != ZD_OK)
		goto out;
	if (u.present && !r->zc->dnssec.unsign) {
		/* called off: the zone is signed as before, its CDS/CDNSKEY the KSK's */
		if ((e = keystate_unsign_step(c, zname, 0, 0, NULL, err, errlen)) != ZD_OK)
			goto out;
		zd_log(ZD_LOG_WARNING, "keyroll", zname,
		       "the unsigning begun at %" PRIu64 " is called off (dnssec unsign is no "
		       "longer set): the zone is signed, its CDS/CDNSKEY describe the KSK again",
		       u.delete_published);
	} else if (u.present) {
		st.ustage = u.unsigned_at ? 3 : u.ds_gone ? 2 : 1;
		st.ustage_at = u.unsigned_at ? u.unsigned_at
		               : u.ds_gone   ? u.ds_gone
		                             : u.delete_published;
	}
	unsign_apply(r, &st);
	struct keystate_algroll ar;
	if ((e = keystate_algroll_load(c, zname, &ar, err, errlen)) != ZD_OK)
		goto out;
	if (ar.present && (ar.from != alg || ar.to != r->zc->dnssec.algorithm)) {
		snprintf(err, errlen,
		         "an algorithm rollover from %s to %s is in progress (zonedist.algroll), "
		         "but "
		         "the active keys are %s and the policy says %s: set dnssec algorithm back "
		         "to %s (a rollover is not called off half-way)",
		         hsm_alg_name(ar.from), hsm_alg_name(ar.to), hsm_alg_name(alg),
		         hsm_alg_name(r->zc->dnssec.algorithm), hsm_alg_name(ar.to));
		e = ZD_EHSM;
		goto out;
	}
	if (ar.present) {
		st.astage = ar.removed ? 5 : ar.ds_seen ? 4 : ar.cds ? 3 : ar.published ? 2 : 1;
		st.astage_at = ar.removed     ? ar.removed
		               : ar.ds_seen   ? ar.ds_seen
		               : ar.cds       ? ar.cds
		               : ar.published ? ar.published
		                              : ar.signed_at;
		st.aksk = ar.ksk;
		st.azsk = ar.zsk;
	}
	if (alg_apply(r, &st) != ZD_OK) {
		snprintf(err, errlen,
		         "zonedist.algroll says KSK %u and ZSK %u of %s sign beside the active "
		         "keys, "
		         "but the token has no such keys labelled '%s KSK...' and '%s ZSK...'",
		         st.aksk, st.azsk, hsm_alg_name(r->zc->dnssec.algorithm), zname, zname);
		e = ZD_ENOTFOUND;
		goto out;
	}
	token_sweep(r, SIGNER_ZSK, rows, n, st.active, st.extra != EXTRA_NONE, st.extra_tag,
	            st.astage > 0, st.azsk, &r->has_orphan, &r->orphan);
	token_sweep(r, SIGNER_KSK, krows, kn, st.ksk, st.kstage != KS_NONE, st.ksk_next,
	            st.astage > 0, st.aksk, &r->has_korphan, &r->korphan);
	free(r->tags);
	r->tags = tags;
	r->n_tags = n + kn;
	tags = NULL;
	state_set(r, &st);
	r->was = st;
out:
	free(tags);
	free(rows);
	free(krows);
	return e;
}

zd_err
keyroll_new(const struct zd_zone_config *zc, struct signer *sg, PGconn *c, struct keyroll **out,
            char *err, size_t errlen)
{
	struct keyroll *r = calloc(1, sizeof *r);
	if (r == NULL)
		return ZD_ENOMEM;
	r->zc = zc;
	r->sg = sg;
	zd_key_intervals_get(&zc->dnssec, &r->iv);
	pthread_mutex_init(&r->mu, NULL);
	zd_err e = load(r, c, err, errlen);
	if (e != ZD_OK) {
		keyroll_free(r);
		return e;
	}
	*out = r;
	return ZD_OK;
}

void
keyroll_free(struct keyroll *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->mu);
	ldns_rr_free(r->kdnskey[0]);
	ldns_rr_free(r->kdnskey[1]);
	free(r->tags);
	free(r);
}

void
keyroll_active_at_set(struct keyroll *r, uint64_t ksk_at, uint64_t zsk_at)
{
	pthread_mutex_lock(&r->mu);
	r->st.active_at = zsk_at;
	r->st.ksk_at = ksk_at;
	pthread_mutex_unlock(&r->mu);
	r->was.active_at = zsk_at;
	r->was.ksk_at = ksk_at;
}

/* The next step of st and its earliest time (RFC 7583 s3.2.1). */
static enum keyroll_step
next_step(const struct keyroll *r, const struct roll_state *st, uint64_t *at)
{
	uint64_t life = r->zc->dnssec.keys.zsk_lifetime;
	*at = 0;
	switch (st->extra) {
	case EXTRA_NONE:
		if (st->compromised_at != 0) {
			*at = st->compromised_at; /* replaced at once */
			return KEYROLL_PUBLISH;
		}
		if (life == 0 || st->active_at == 0)
			return KEYROLL_NONE; /* no automatic roll */
		*at = st->active_at + (life > r->iv.ipub ? life - r->iv.ipub : 0);
		return KEYROLL_PUBLISH;
	case EXTRA_NEXT: {
		uint64_t cached = st->extra_at + r->iv.ipub; /* in every cache */
		uint64_t lived = life && !st->compromised_at ? st->active_at + life : 0;
		*at = cached > lived ? cached : lived;
		return KEYROLL_ACTIVATE;
	}
	case EXTRA_OLD:
		*at = st->extra_at + r->iv.iret_z; /* its signatures gone from caches */
		return KEYROLL_REMOVE;
	}
	return KEYROLL_NONE;
}

/* The KSK roll's next step of st and its earliest time (RFC 7583 s3.3.2,
 * docs/KEYS.md); for ds-seen the time the parent is expected to have it. */
static enum keyroll_step
ksk_next_step(const struct keyroll *r, const struct roll_state *st, uint64_t *at)
{
	uint64_t life = r->zc->dnssec.keys.ksk_lifetime;
	*at = 0;
	switch (st->kstage) {
	case KS_NONE:
		if (st->ksk_compromised_at != 0) {
			*at = st->ksk_compromised_at; /* replaced at once */
			return KEYROLL_KSK_PUBLISH;
		}
		if (life == 0 || st->ksk_at == 0)
			return KEYROLL_NONE; /* no automatic roll */
		/* so that the roll completes when the lifetime ends */
		*at = st->ksk_at + (life > r->iv.ksk_roll ? life - r->iv.ksk_roll : 0);
		return KEYROLL_KSK_PUBLISH;
	case KS_PUBLISHED:
		*at = st->kstage_at + r->iv.ipub; /* the new DNSKEY in every cache */
		return KEYROLL_KSK_CDS;
	case KS_READY:
		*at = st->kstage_at + r->iv.dreg; /* expected; made when confirmed */
		return KEYROLL_KSK_DS_SEEN;
	case KS_SEEN:
		*at = st->kstage_at + r->iv.ipub_p; /* the old DS gone from every cache */
		return KEYROLL_KSK_SETTLE;
	}
	return KEYROLL_NONE;
}

/* The parent servers serve the DS of the KSK st waits for. */
static int
ds_confirmed(const struct keyroll *r, const struct roll_state *st)
{
	return st->kstage == KS_READY &&
	       atomic_load(&((struct keyroll *)r)->parent_seen) == (0x10000u | st->ksk_next);
}

/* The unsigning's next step of st and its earliest time (RFC 8078 s4,
 * RFC 6781 s4.2: the DS gone from every cache before the DNSKEYs go). */
static enum keyroll_step
unsign_next_step(const struct keyroll *r, const struct roll_state *st, uint64_t *at)
{
	*at = 0;
	if (!r->zc->dnssec.unsign)
		return KEYROLL_NONE;
	switch (st->ustage) {
	case 0:
		return KEYROLL_UNSIGN_CDS_DELETE; /* at once */
	case 1:
		return KEYROLL_UNSIGN_DS_GONE; /* when the parent servers confirm it */
	case 2:
		*at = st->ustage_at + r->iv.ipub_p; /* the DS gone from every cache */
		return KEYROLL_UNSIGN_REMOVE;
	default:
		return KEYROLL_NONE;
	}
}

/* An algorithm rollover is configured (the policy's algorithm is not the
 * active keys') or in progress. */
static int
alg_roll_on(const struct keyroll *r, const struct roll_state *st)
{
	/* an offline KSK's zone does not change algorithm (docs/KEYS.md) */
	return st->astage > 0 ||
	       (r->zc->dnssec.algorithm != r->alg && !r->zc->dnssec.keys.offline_ksk);
}

/* The algorithm rollover's next step of st and its earliest time (RFC
 * 6781 s4.1.4 with RFC 7583's intervals, docs/KEYS.md); for alg-ds-seen
 * the time the parent is expected to have the DS.  It begins once no ZSK
 * or KSK roll is half-way. */
static enum keyroll_step
alg_next_step(const struct keyroll *r, const struct roll_state *st, uint64_t *at)
{
	*at = 0;
	if (!alg_roll_on(r, st))
		return KEYROLL_NONE;
	switch (st->astage) {
	case 0:
		if (st->extra != EXTRA_NONE || st->kstage != KS_NONE)
			return KEYROLL_NONE; /* the roll in progress ends first */
		return KEYROLL_ALG_SIGN;     /* at once */
	case 1:
		*at = st->astage_at + r->iv.iret_z; /* the new signatures in every cache */
		return KEYROLL_ALG_PUBLISH;
	case 2:
		*at = st->astage_at + r->iv.ipub; /* the new DNSKEYs in every cache */
		return KEYROLL_ALG_CDS;
	case 3:
		*at = st->astage_at + r->iv.dreg; /* expected; made when confirmed */
		return KEYROLL_ALG_DS_SEEN;
	case 4:
		*at = st->astage_at + r->iv.ipub_p; /* the old DS gone from every cache */
		return KEYROLL_ALG_REMOVE;
	case 5:
		*at = st->astage_at + r->iv.ipub; /* the old DNSKEY RRset gone from every cache */
		return KEYROLL_ALG_DONE;
	}
	return KEYROLL_NONE;
}

enum keyroll_step
keyroll_due(const struct keyroll *r, uint64_t now)
{
	uint64_t at;
	if (r->pending != KEYROLL_NONE)
		return KEYROLL_NONE;
	if (r->zc->dnssec.unsign) {
		/* no rollover while the zone goes unsigned */
		enum keyroll_step u = unsign_next_step(r, &r->st, &at);
		if (u == KEYROLL_UNSIGN_DS_GONE)
			return atomic_load(&((struct keyroll *)r)->parent_gone) ? u : KEYROLL_NONE;
		return u != KEYROLL_NONE && now >= at ? u : KEYROLL_NONE;
	}
	enum keyroll_step s;
	if (alg_roll_on(r, &r->st)) {
		/* no new ZSK or KSK roll during an algorithm rollover; one half-way
		 * ends first */
		s = alg_next_step(r, &r->st, &at);
		if (s == KEYROLL_ALG_DS_SEEN)
			return atomic_load(&((struct keyroll *)r)->parent_seen) ==
			                       (0x10000u | r->st.aksk)
			               ? s
			               : KEYROLL_NONE;
		if (s != KEYROLL_NONE)
			return now >= at ? s : KEYROLL_NONE;
		if (r->st.extra == EXTRA_NONE && r->st.kstage == KS_NONE)
			return KEYROLL_NONE;
	}
	s = next_step(r, &r->st, &at);
	if (s != KEYROLL_NONE && now >= at && !(alg_roll_on(r, &r->st) && s == KEYROLL_PUBLISH))
		return s;
	if (r->zc->dnssec.keys.offline_ksk)
		return KEYROLL_NONE; /* an offline KSK is rolled by hand (docs/KEYS.md) */
	s = ksk_next_step(r, &r->st, &at);
	if (alg_roll_on(r, &r->st) && s == KEYROLL_KSK_PUBLISH)
		return KEYROLL_NONE;
	if (s == KEYROLL_KSK_DS_SEEN)
		return ds_confirmed(r, &r->st) ? s : KEYROLL_NONE;
	return s != KEYROLL_NONE && now >= at ? s : KEYROLL_NONE;
}

void
keyroll_parent_seen(struct keyroll *r, int seen, uint16_t tag)
{
	atomic_store(&r->parent_seen, seen ? 0x10000u | tag : 0);
}

void
keyroll_parent_gone(struct keyroll *r, int gone)
{
	atomic_store(&r->parent_gone, gone != 0);
}

int
keyroll_is_unsigned(const struct keyroll *r)
{
	return r->st.ustage == 3;
}

size_t
keyroll_ksk_dnskeys_get(const struct keyroll *r, ldns_rr **out, int *next)
{
	struct keyroll *m = (struct keyroll *)r; /* the mutex only */
	size_t n = 0;
	*next = 0;
	pthread_mutex_lock(&m->mu);
	for (int i = 0; i < 2; i++)
		if (r->kdnskey[i] != NULL && (out[n] = ldns_rr_clone(r->kdnskey[i])) != NULL)
			n++;
	*next = r->kdnskey[1] != NULL && (r->st.kstage == KS_READY || r->st.astage == 3) && n == 2;
	pthread_mutex_unlock(&m->mu);
	return n;
}

static void
fail_log(struct keyroll *r, enum keyroll_step s, const char *why)
{
	uint64_t now = zd_now_ms();
	if (r->fail_logged_ms != 0 && now - r->fail_logged_ms < FAIL_LOG_EVERY_MS)
		return;
	r->fail_logged_ms = now;
	zd_log(ZD_LOG_ERROR, "keyroll", r->zc->name,
	       "ALARM: the %s's %s step is due but cannot be made (retried at "
	       "every batch; the zone keeps being published with its current keys): %s",
	       step_is_unsign(s) ? "unsigning"
	       : step_is_alg(s)  ? "algorithm rollover"
	       : step_is_ksk(s)  ? "KSK rollover"
	                         : "ZSK rollover",
	       keyroll_step_name(s), why);
}

/* Before a new key is published: its backup (server/keybackup.c).  Without
 * require-backup a failed backup is logged and the key published anyway. */
static zd_err
backup_gate(struct keyroll *r, enum signer_role role, uint16_t tag, char *err, size_t errlen)
{
	char why[1024];
	zd_err e = keybackup_key(r->sg, role, tag, why, sizeof why);
	if (e == ZD_OK)
		return ZD_OK;
	const char *rn = role == SIGNER_KSK ? "KSK" : "ZSK";
	if (!r->zc->dnssec.keys.require_backup) {
		zd_log(ZD_LOG_ERROR, "keybackup", r->zc->name,
		       "ALARM: new %s %u has no backup (published anyway: require-backup is off): "
		       "%s",
		       rn, tag, why);
		return ZD_OK;
	}
	snprintf(err, errlen,
	         "require-backup: new %s %u is not published before it has a backup: %s", rn, tag,
	         why);
	return e;
}

/* The key of role in algorithm alg a step publishes: the one a try that
 * did not commit made (the token's unknown key: a held backup, a refused
 * version, a restart), else a new one (suffix prefix + now); it stays the
 * unknown key until the step commits.  Backed up first (backup_gate). */
static zd_err
step_key(struct keyroll *r, enum signer_role role, int alg, const char *prefix, uint64_t now,
         uint16_t *tag, char *err, size_t errlen)
{
	int *has = role == SIGNER_KSK ? &r->has_korphan : &r->has_orphan;
	uint16_t *orphan = role == SIGNER_KSK ? &r->korphan : &r->orphan;
	if (!*has || signer_key_alg_get(r->sg, role, *orphan) != alg) {
		char suffix[48];
		uint16_t t;
		snprintf(suffix, sizeof suffix, "%s%" PRIu64 "-%zu", prefix, now, r->n_tags);
		zd_err e = signer_key_generate(r->sg, role, suffix, r->tags, r->n_tags, &t, err,
		                               errlen);
		if (e != ZD_OK)
			return e;
		*has = 1;
		*orphan = t;
	}
	*tag = *orphan;
	return backup_gate(r, role, *tag, err, errlen);
}

zd_err
keyroll_begin(struct keyroll *r, enum keyroll_step s, uint64_t now, int *full, char *err,
              size_t errlen)
{
	struct roll_state st = r->st;
	zd_err e = ZD_OK;

	*full = 0;
	if (r->pending != KEYROLL_NONE) {
		snprintf(err, errlen, "a %s step is pending", keyroll_step_name(r->pending));
		return ZD_EBUG;
	}
	switch (s) {
	case KEYROLL_NONE:
		return ZD_OK;
	case KEYROLL_PUBLISH: {
		uint16_t tag;
		if (r->zc->dnssec.keys.offline_ksk) {
			/* the ZSK the ceremony pre-signed a DNSKEY RRset with */
			if (!signer_offline_next_zsk(r->sg, now, r->tags, r->n_tags, &tag)) {
				snprintf(err, errlen,
				         "offline KSK: no pre-signed DNSKEY RRset valid now adds a "
				         "ZSK: run the KSK ceremony (zonedistctl ksk-ceremony)");
				e = ZD_ENOTFOUND;
				break;
			}
		} else if ((e = step_key(r, SIGNER_ZSK, r->alg, "", now, &tag, err, errlen)) !=
		           ZD_OK) {
			break;
		}
		st.extra = EXTRA_NEXT;
		st.extra_tag = tag;
		st.extra_at = now;
		break;
	}
	case KEYROLL_ACTIVATE:
		st.active = r->st.extra_tag;
		st.active_at = now;
		st.compromised_at = 0;
		st.extra = EXTRA_OLD;
		st.extra_tag = r->st.active;
		st.extra_at = now;
		*full = 1; /* Dsgn = 0: the new ZSK signs everything in this version */
		break;
	case KEYROLL_REMOVE:
		st.extra = EXTRA_NONE;
		st.extra_tag = 0;
		st.extra_at = 0;
		break;
	case KEYROLL_KSK_PUBLISH: {
		uint16_t tag;
		if ((e = step_key(r, SIGNER_KSK, r->alg, "", now, &tag, err, errlen)) != ZD_OK)
			break;
		st.kstage = KS_PUBLISHED;
		st.ksk_next = tag;
		st.kstage_at = now;
		break;
	}
	case KEYROLL_KSK_CDS:
		st.kstage = KS_READY;
		st.kstage_at = now;
		break;
	case KEYROLL_KSK_DS_SEEN:
		st.kstage = KS_SEEN;
		st.kstage_at = now;
		break;
	case KEYROLL_KSK_SETTLE:
		st.ksk = r->st.ksk_next;
		st.ksk_at = now;
		st.kstage = KS_NONE;
		st.ksk_next = 0;
		st.kstage_at = 0;
		st.ksk_compromised_at = 0;
		break;
	case KEYROLL_UNSIGN_CDS_DELETE:
	case KEYROLL_UNSIGN_DS_GONE:
	case KEYROLL_UNSIGN_REMOVE:
		st.ustage = s == KEYROLL_UNSIGN_CDS_DELETE ? 1
		            : s == KEYROLL_UNSIGN_DS_GONE  ? 2
		                                           : 3;
		st.ustage_at = now;
		break;
	case KEYROLL_ALG_SIGN: {
		/* a KSK and a ZSK of the policy's algorithm, never a tag the zone had */
		uint16_t k = 0, z = 0;
		int want = r->zc->dnssec.algorithm;
		if ((e = step_key(r, SIGNER_KSK, want, "alg-", now, &k, err, errlen)) != ZD_OK ||
		    (e = step_key(r, SIGNER_ZSK, want, "alg-", now, &z, err, errlen)) != ZD_OK)
			break;
		st.astage = 1;
		st.aksk = k;
		st.azsk = z;
		st.astage_at = now;
		*full = 1; /* every RRset gets the new algorithm's signature in this version */
		break;
	}
	case KEYROLL_ALG_PUBLISH:
	case KEYROLL_ALG_CDS:
	case KEYROLL_ALG_DS_SEEN:
	case KEYROLL_ALG_REMOVE:
		st.astage = r->st.astage + 1;
		st.astage_at = now;
		break;
	case KEYROLL_ALG_DONE:
		st.active = r->st.azsk;
		st.active_at = now;
		st.ksk = r->st.aksk;
		st.ksk_at = now;
		st.compromised_at = st.ksk_compromised_at = 0;
		st.astage = 0;
		st.aksk = st.azsk = 0;
		st.astage_at = 0;
		*full = 1; /* the old algorithm's signatures go: the new keys sign alone */
		break;
	}
	if (e == ZD_OK && step_is_alg(s)) {
		if (s == KEYROLL_ALG_DONE) {
			(void)signer_alg_use(r->sg, 0, 0, 0);
			if ((e = signer_zsk_use(r->sg, st.active, 0, 0)) == ZD_OK)
				e = ksk_apply(r, &st);
			if (e != ZD_OK) {
				snprintf(err, errlen, "the token has no KSK %u or ZSK %u", st.ksk,
				         st.active);
				(void)signer_zsk_use(r->sg, r->st.active, 0, 0);
				(void)ksk_apply(r, &r->st);
			}
		} else if ((e = alg_apply(r, &st)) != ZD_OK) {
			snprintf(err, errlen, "the token has no KSK %u or ZSK %u", st.aksk,
			         st.azsk);
		}
		if (e != ZD_OK)
			(void)alg_apply(r, &r->st);
	}
	if (e == ZD_OK && step_is_unsign(s))
		unsign_apply(r, &st);
	if (e == ZD_OK && !step_is_ksk(s) && !step_is_unsign(s) && !step_is_alg(s) &&
	    (e = signer_zsk_use(r->sg, st.active, st.extra != EXTRA_NONE, st.extra_tag)) != ZD_OK)
		snprintf(err, errlen, "the token has no ZSK %u", st.extra_tag);
	else if (e == ZD_OK && !step_is_ksk(s) && !step_is_unsign(s) && !step_is_alg(s) &&
	         (e = signer_offline_check(r->sg, err, errlen)) != ZD_OK)
		/* an offline KSK: the DNSKEY RRset the step makes is not pre-signed */
		(void)signer_zsk_use(r->sg, r->st.active, r->st.extra != EXTRA_NONE,
		                     r->st.extra_tag);
	if (e == ZD_OK && step_is_ksk(s) && (e = ksk_apply(r, &st)) != ZD_OK)
		snprintf(err, errlen, "the token has no KSK %u",
		         st.ksk_next ? st.ksk_next : st.ksk);
	if (e != ZD_OK) {
		*full = 0;
		fail_log(r, s, err);
		return e;
	}
	r->was = r->st;
	state_set(r, &st);
	r->pending = s;
	r->pending_at = now;
	return ZD_OK;
}

int
keyroll_pending(const struct keyroll *r)
{
	return r->pending != KEYROLL_NONE;
}

zd_err
keyroll_record(struct keyroll *r, PGconn *c, char *err, size_t errlen)
{
	const char *zname = r->zc->name;
	uint8_t alg = r->alg;
	switch (r->pending) {
	case KEYROLL_NONE:
		return ZD_OK;
	case KEYROLL_PUBLISH:
		return keystate_zsk_publish(c, zname, alg, r->st.extra_tag, r->pending_at, err,
		                            errlen);
	case KEYROLL_ACTIVATE:
		return keystate_zsk_activate(c, zname, alg, r->st.active, r->was.active,
		                             r->pending_at, err, errlen);
	case KEYROLL_REMOVE:
		return keystate_zsk_remove(c, zname, alg, r->was.extra_tag, r->pending_at, err,
		                           errlen);
	case KEYROLL_KSK_PUBLISH:
		return keystate_ksk_publish(c, zname, alg, r->st.ksk_next, r->pending_at, err,
		                            errlen);
	case KEYROLL_KSK_CDS:
		return keystate_ksk_cds(c, zname, alg, r->st.ksk_next, r->pending_at, err, errlen);
	case KEYROLL_KSK_DS_SEEN:
		return keystate_ksk_ds_seen(c, zname, alg, r->st.ksk_next, r->pending_at, err,
		                            errlen);
	case KEYROLL_KSK_SETTLE:
		return keystate_ksk_settle(c, zname, alg, r->st.ksk, r->was.ksk, r->pending_at, err,
		                           errlen);
	case KEYROLL_UNSIGN_CDS_DELETE:
		return keystate_unsign_step(c, zname, 1, r->pending_at, NULL, err, errlen);
	case KEYROLL_UNSIGN_DS_GONE:
		return keystate_unsign_step(c, zname, 2, r->pending_at, "parent-servers", err,
		                            errlen);
	case KEYROLL_UNSIGN_REMOVE:
		return keystate_unsign_step(c, zname, 3, r->pending_at, NULL, err, errlen);
	case KEYROLL_ALG_SIGN:
	case KEYROLL_ALG_PUBLISH:
	case KEYROLL_ALG_CDS:
	case KEYROLL_ALG_DS_SEEN:
	case KEYROLL_ALG_REMOVE:
	case KEYROLL_ALG_DONE: {
		const struct roll_state *a = r->pending == KEYROLL_ALG_DONE ? &r->was : &r->st;
		struct keystate_algroll ar = {
		        .from = alg, .to = r->zc->dnssec.algorithm, .ksk = a->aksk, .zsk = a->azsk};
		int stage = r->pending == KEYROLL_ALG_DONE ? 6 : r->st.astage;
		return keystate_algroll_step(c, zname, &ar, stage, r->pending_at, "parent-servers",
		                             err, errlen);
	}
	}
	return ZD_EBUG;
}

/* A key that left the zone leaves the token too. */
static void
key_drop(struct keyroll *r, enum signer_role role, uint16_t tag)
{
	char why[256];
	if (signer_key_destroy(r->sg, role, tag, why, sizeof why) != ZD_OK)
		zd_log(ZD_LOG_WARNING, "keyroll", r->zc->name,
		       "%s %u left the zone but stays in the token (deleted at the next start): %s",
		       role == SIGNER_KSK ? "KSK" : "ZSK", tag, why);
}

/* A published key's tag, avoided by every key generated later. */
static void
tag_add(struct keyroll *r, uint16_t tag)
{
	uint16_t *v = realloc(r->tags, (r->n_tags + 1) * sizeof *v);
	if (v == NULL)
		return; /* only the token's tags are avoided then */
	v[r->n_tags] = tag;
	r->tags = v;
	r->n_tags++;
}

/* A roll's CDS/CDNSKEY now describe the new KSK tagged tag. */
static void
cds_log(const struct keyroll *r, const char *roll, uint16_t tag, const char *when)
{
	zd_log(ZD_LOG_NOTICE, "keyroll", r->zc->name,
	       "%s: the CDS/CDNSKEY RRsets now describe KSK %u: the parent may replace the DS "
	       "(%s; expected by %s)",
	       roll, tag,
	       r->zc->dnssec.keys.n_parent > 0
	               ? "its servers are polled for it"
	               : "confirm it with zonedistctl ds-seen once the parent serves it",
	       when);
}

void
keyroll_done(struct keyroll *r)
{
	const char *zname = r->zc->name;
	uint64_t at;
	enum keyroll_step s = r->pending;
	if (s == KEYROLL_NONE)
		return;
	if (s == KEYROLL_ALG_DONE)
		r->alg = r->zc->dnssec.algorithm;
	enum keyroll_step next = step_is_unsign(s) ? unsign_next_step(r, &r->st, &at)
	                         : step_is_alg(s)  ? alg_next_step(r, &r->st, &at)
	                         : step_is_ksk(s)  ? ksk_next_step(r, &r->st, &at)
	                                           : next_step(r, &r->st, &at);
	char when[64];
	zd_time_utc(at, 0, when, sizeof when);
	switch (s) {
	case KEYROLL_NONE:
		break;
	case KEYROLL_PUBLISH:
		tag_add(r, r->st.extra_tag);
		r->has_orphan = 0;
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "ZSK rollover: ZSK %u published beside ZSK %u; it signs from %s at the "
		       "earliest (Ipub = %" PRIu64 " s, zsk-lifetime)",
		       r->st.extra_tag, r->st.active, when, r->iv.ipub);
		break;
	case KEYROLL_ACTIVATE:
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "ZSK rollover: ZSK %u signs the zone, ZSK %u retired (still published "
		       "until %s: Iret = %" PRIu64 " s)",
		       r->st.active, r->st.extra_tag, when, r->iv.iret_z);
		break;
	case KEYROLL_REMOVE: {
		uint16_t old = r->was.extra_tag;
		key_drop(r, SIGNER_ZSK, old);
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "ZSK rollover done: ZSK %u removed from the zone and the token; next "
		       "rollover %s %s",
		       old, next == KEYROLL_NONE ? "not scheduled" : "publishes at",
		       next == KEYROLL_NONE ? "" : when);
		break;
	}
	case KEYROLL_KSK_PUBLISH:
		tag_add(r, r->st.ksk_next);
		r->has_korphan = 0;
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "KSK rollover: KSK %u published beside KSK %u, both sign the DNSKEY RRset; "
		       "its CDS/CDNSKEY from %s at the earliest (Ipub = %" PRIu64 " s)",
		       r->st.ksk_next, r->st.ksk, when, r->iv.ipub);
		break;
	case KEYROLL_KSK_CDS:
		cds_log(r, "KSK rollover", r->st.ksk_next, when);
		break;
	case KEYROLL_KSK_DS_SEEN:
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "KSK rollover: the parent serves the DS of KSK %u; KSK %u is removed "
		       "from %s (IpubP = %" PRIu64 " s)",
		       r->st.ksk_next, r->st.ksk, when, r->iv.ipub_p);
		break;
	case KEYROLL_UNSIGN_CDS_DELETE:
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "unsigning: the delete CDS/CDNSKEY are published (RFC 8078): the parent "
		       "may remove the DS; the zone stays signed until it is gone (%s)",
		       r->zc->dnssec.keys.n_parent > 0
		               ? "its servers are polled for it"
		               : "no parent-servers are configured to poll: see docs/KEYS.md");
		break;
	case KEYROLL_UNSIGN_DS_GONE:
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "unsigning: every parent server answers with no DS; the DNSSEC records go "
		       "at %s (IpubP = %" PRIu64 " s, the DS out of every cache)",
		       when, r->iv.ipub_p);
		break;
	case KEYROLL_UNSIGN_REMOVE:
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "unsigning done: the zone is served without DNSSEC records; set `dnssec: "
		       "off` (the keys stay in the token until you delete them)");
		break;
	case KEYROLL_ALG_SIGN:
		tag_add(r, r->st.aksk);
		tag_add(r, r->st.azsk);
		r->has_orphan = r->has_korphan = 0;
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "algorithm rollover %s to %s: KSK %u and ZSK %u sign every RRset beside "
		       "KSK %u and ZSK %u, unpublished; they are published from %s (Iret = %" PRIu64
		       " s: the new signatures in every cache)",
		       hsm_alg_name(r->alg), hsm_alg_name(r->zc->dnssec.algorithm), r->st.aksk,
		       r->st.azsk, r->st.ksk, r->st.active, when, r->iv.iret_z);
		break;
	case KEYROLL_ALG_PUBLISH:
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "algorithm rollover: KSK %u and ZSK %u published; the CDS/CDNSKEY describe "
		       "the new KSK from %s (Ipub = %" PRIu64 " s)",
		       r->st.aksk, r->st.azsk, when, r->iv.ipub);
		break;
	case KEYROLL_ALG_CDS:
		cds_log(r, "algorithm rollover", r->st.aksk, when);
		break;
	case KEYROLL_ALG_DS_SEEN:
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "algorithm rollover: the parent serves the DS of KSK %u; KSK %u and ZSK %u "
		       "leave the DNSKEY RRset at %s (IpubP = %" PRIu64 " s)",
		       r->st.aksk, r->st.ksk, r->st.active, when, r->iv.ipub_p);
		break;
	case KEYROLL_ALG_REMOVE:
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "algorithm rollover: KSK %u and ZSK %u left the DNSKEY RRset (they still "
		       "sign); their signatures go at %s (Ipub = %" PRIu64 " s)",
		       r->st.ksk, r->st.active, when, r->iv.ipub);
		break;
	case KEYROLL_ALG_DONE:
		key_drop(r, SIGNER_KSK, r->was.ksk);
		key_drop(r, SIGNER_ZSK, r->was.active);
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "algorithm rollover done: KSK %u and ZSK %u (%s) sign alone; KSK %u and "
		       "ZSK %u removed from the zone and the token",
		       r->st.ksk, r->st.active, hsm_alg_name(r->alg), r->was.ksk, r->was.active);
		break;
	case KEYROLL_KSK_SETTLE: {
		uint16_t old = r->was.ksk;
		key_drop(r, SIGNER_KSK, old);
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "KSK rollover done: KSK %u signs alone, KSK %u removed from the zone and "
		       "the token; next rollover %s %s",
		       r->st.ksk, old, next == KEYROLL_NONE ? "not scheduled" : "publishes at",
		       next == KEYROLL_NONE ? "" : when);
		break;
	}
	}
	pthread_mutex_lock(&r->mu);
	r->steps++;
	pthread_mutex_unlock(&r->mu);
	r->was = r->st;
	r->pending = KEYROLL_NONE;
	r->fail_logged_ms = 0;
}

void
keyroll_undo(struct keyroll *r)
{
	if (r->pending == KEYROLL_NONE)
		return;
	/* the keys of r->was are in the token: that is where they came from */
	(void)signer_zsk_use(r->sg, r->was.active, r->was.extra != EXTRA_NONE, r->was.extra_tag);
	(void)ksk_apply(r, &r->was);
	unsign_apply(r, &r->was);
	(void)alg_apply(r, &r->was);
	state_set(r, &r->was);
	r->pending = KEYROLL_NONE;
}

static zd_err
keyroll_reload(struct keyroll *r, PGconn *c, char *err, size_t errlen)
{
	keyroll_undo(r);
	return load(r, c, err, errlen);
}

uint64_t
keyroll_reload_ask(struct keyroll *r)
{
	return atomic_fetch_add(&r->reload_asked, 1) + 1;
}

uint64_t
keyroll_reload_asked(const struct keyroll *r)
{
	return atomic_load(&r->reload_asked);
}

zd_err
keyroll_sync(struct keyroll *r, uint64_t asked, PGconn *c, char *err, size_t errlen)
{
	if (asked == r->reload_done)
		return ZD_OK;
	uint64_t was = r->st.compromised_at, kwas = r->st.ksk_compromised_at;
	zd_err e = keyroll_reload(r, c, err, errlen);
	if (e != ZD_OK)
		return e;
	r->reload_done = asked;
	if (r->st.compromised_at != 0 && was == 0) {
		uint64_t at;
		char when[64];
		enum keyroll_step s = next_step(r, &r->st, &at);
		zd_time_utc(at, 0, when, sizeof when);
		zd_log(ZD_LOG_WARNING, "keyroll", r->zc->name,
		       "ZSK %u reported compromised: it is replaced as fast as caches allow; next "
		       "step %s at %s, then activation Ipub = %" PRIu64
		       " s after the new ZSK is published, removal Iret = %" PRIu64 " s after that",
		       r->st.active, keyroll_step_name(s), when, r->iv.ipub, r->iv.iret_z);
	}
	if (r->st.ksk_compromised_at != 0 && kwas == 0)
		zd_log(ZD_LOG_WARNING, "keyroll", r->zc->name,
		       "KSK %u reported compromised: %s; its CDS/CDNSKEY follow Ipub = %" PRIu64
		       " s later, and it leaves the zone IpubP = %" PRIu64
		       " s after the parent serves the new DS",
		       r->st.ksk,
		       r->st.kstage == KS_NONE ? "a new KSK is published at once"
		                               : "the KSK rollover in progress replaces it",
		       r->iv.ipub, r->iv.ipub_p);
	return ZD_OK;
}

void
keyroll_checked(struct keyroll *r, uint64_t now)
{
	pthread_mutex_lock(&r->mu);
	r->checked_at = now;
	uint64_t until = r->b_until;
	pthread_mutex_unlock(&r->mu);
	uint64_t warn = r->zc->dnssec.keys.bundle_warn, ms = zd_now_ms();
	if (!r->zc->dnssec.keys.offline_ksk || now + warn < until ||
	    (r->b_warned_ms != 0 && ms - r->b_warned_ms < BUNDLE_WARN_EVERY_MS))
		return;
	r->b_warned_ms = ms;
	char when[32];
	zd_time_utc(until, 0, when, sizeof when);
	if (now < until)
		zd_log(ZD_LOG_WARNING, "keyroll", r->zc->name,
		       "ALARM: offline KSK: the pre-signed DNSKEY, CDS and CDNSKEY signatures run "
		       "out at %s (in %" PRIu64 " h, bundle-warn %" PRIu32
		       " s): connect the KSK token and run the ceremony (zonedistctl "
		       "ksk-ceremony %s)",
		       when, (until - now) / 3600, r->zc->dnssec.keys.bundle_warn, r->zc->name);
	else
		zd_log(ZD_LOG_ERROR, "keyroll", r->zc->name,
		       "ALARM: offline KSK: the pre-signed bundles ran out at %s: no fresh "
		       "DNSKEY signature is made; the zone goes bogus when the last expires: "
		       "connect the KSK token and run the ceremony (zonedistctl ksk-ceremony %s)",
		       when, r->zc->name);
}

void
keyroll_offline_set(struct keyroll *r, const struct kskb *b)
{
	pthread_mutex_lock(&r->mu);
	r->b_made = kskb_made_get(b);
	r->b_until = kskb_until_get(b);
	r->b_slots = kskb_slots_get(b);
	r->b_keysets = kskb_keysets_get(b);
	pthread_mutex_unlock(&r->mu);
	r->b_warned_ms = 0;
}

zd_err
keyroll_ceremony(struct keyroll *r, const struct zd_hsm_config *hc, uint64_t now, PGconn *c,
                 struct kskb **out, char *err, size_t errlen)
{
	const struct roll_state *st = &r->st;
	struct kskb_roll roll = {.active = st->active,
	                         .active_at = st->active_at,
	                         .extra = (int)st->extra,
	                         .extra_tag = st->extra_tag,
	                         .extra_at = st->extra_at,
	                         .compromised = st->compromised_at,
	                         .avoid = r->tags,
	                         .n_avoid = r->n_tags};
	if (r->pending != KEYROLL_NONE) {
		snprintf(err, errlen, "a %s step is pending", keyroll_step_name(r->pending));
		return ZD_EBUG;
	}
	return kskb_ceremony(r->sg, r->zc, hc, &roll, now, c, out, err, errlen);
}

void
keyroll_ceremony_ask(struct keyroll *r)
{
	atomic_fetch_add(&r->ceremony_asked, 1);
}

int
keyroll_ceremony_take(struct keyroll *r)
{
	return atomic_exchange(&r->ceremony_asked, 0) != 0;
}

void
keyroll_ceremony_done(struct keyroll *r, const char *why)
{
	pthread_mutex_lock(&r->mu);
	r->c_done++;
	snprintf(r->c_err, sizeof r->c_err, "%s", why ? why : "");
	pthread_mutex_unlock(&r->mu);
}

void
keyroll_view_get(const struct keyroll *r, struct keyroll_view *out)
{
	struct keyroll *m = (struct keyroll *)r; /* the mutex only */
	pthread_mutex_lock(&m->mu);
	struct roll_state st = r->st;
	*out = (struct keyroll_view){
	        .active = st.active,
	        .active_at = st.active_at,
	        .extra = (int)st.extra,
	        .extra_tag = st.extra_tag,
	        .extra_at = st.extra_at,
	        .compromised_at = st.compromised_at,
	        .checked_at = r->checked_at,
	        .steps = r->steps,
	        .ksk = st.ksk,
	        .ksk_at = st.ksk_at,
	        .kstage = (int)st.kstage,
	        .ksk_next = st.ksk_next,
	        .kstage_at = st.kstage_at,
	        .ksk_compromised_at = st.ksk_compromised_at,
	        .offline = r->zc->dnssec.keys.offline_ksk,
	        .b_made = r->b_made,
	        .b_until = r->b_until,
	        .b_slots = r->b_slots,
	        .b_keysets = r->b_keysets,
	        .c_done = r->c_done,
	};
	snprintf(out->c_err, sizeof out->c_err, "%s", r->c_err);
	pthread_mutex_unlock(&m->mu);
	out->due = next_step(r, &st, &out->due_at);
	out->kdue = ksk_next_step(r, &st, &out->kdue_at);
	out->ustage = st.ustage;
	out->ustage_at = st.ustage_at;
	out->udue = unsign_next_step(r, &st, &out->udue_at);
	out->astage = st.astage;
	out->astage_at = st.astage_at;
	out->aksk = st.aksk;
	out->azsk = st.azsk;
	out->afrom = r->alg;
	out->ato = r->zc->dnssec.algorithm;
	out->adue = alg_next_step(r, &st, &out->adue_at);
	if (alg_roll_on(r, &st)) { /* no new rollover during an algorithm rollover */
		if (out->due == KEYROLL_PUBLISH)
			out->due = KEYROLL_NONE, out->due_at = 0;
		if (out->kdue == KEYROLL_KSK_PUBLISH)
			out->kdue = KEYROLL_NONE, out->kdue_at = 0;
	}
	if (out->offline) /* an offline KSK is not rolled automatically */
		out->kdue = KEYROLL_NONE, out->kdue_at = 0;
	if (r->zc->dnssec.unsign) { /* no rollover step while the zone goes unsigned */
		out->due = out->kdue = KEYROLL_NONE;
		out->due_at = out->kdue_at = 0;
	}
}
