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
#include "server/keystate.h"

#define FAIL_LOG_EVERY_MS 60000

enum extra { EXTRA_NONE, EXTRA_NEXT, EXTRA_OLD };

struct roll_state {
	uint16_t active;
	uint64_t active_at;
	enum extra extra;
	uint16_t extra_tag;
	uint64_t extra_at;
	uint64_t compromised_at; /* the active ZSK's, reported by an operator; 0: none */
};

struct keyroll {
	const struct zd_zone_config *zc;
	struct signer *sg;
	struct zd_key_intervals iv;
	pthread_mutex_t mu;    /* st, checked_at, steps: against keyroll_view_get() */
	struct roll_state st;  /* what is published (or pending) */
	struct roll_state was; /* before the pending step */
	uint16_t *tags;        /* every ZSK tag zonedist.key holds: never reused */
	size_t n_tags;
	int has_orphan; /* a ZSK in the token that no row knows: the next publish's */
	uint16_t orphan;
	enum keyroll_step pending;
	uint64_t pending_at;
	uint64_t checked_at, steps;
	uint64_t fail_logged_ms;
	_Atomic uint64_t reload_asked; /* by another thread: zonedist.key changed */
	uint64_t reload_done;
};

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
	}
	return "?";
}

static void
state_set(struct keyroll *r, const struct roll_state *s)
{
	pthread_mutex_lock(&r->mu);
	r->st = *s;
	pthread_mutex_unlock(&r->mu);
}

/* The rows of zonedist.key, applied to the signer. */
static zd_err
load(struct keyroll *r, PGconn *c, char *err, size_t errlen)
{
	const char *zname = r->zc->name;
	uint8_t alg = r->zc->dnssec.algorithm;
	struct keystate_row *rows = NULL;
	size_t n = 0;
	zd_err e;

	if ((e = keystate_zsk_load(c, zname, &rows, &n, err, errlen)) != ZD_OK)
		return e;
	uint16_t *tags = calloc(n + 1, sizeof *tags);
	if (tags == NULL) {
		free(rows);
		return ZD_ENOMEM;
	}
	const struct keystate_row *active = NULL, *extra = NULL;
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
				         "%u "
				         "and %u)",
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
	struct roll_state st = {.active = cur_zsk, .active_at = r->st.active_at};
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
	/* The token's other ZSKs: removed ones go, one unknown one is kept for
	 * the next publish (a publish that did not commit made it). */
	uint16_t in_token[SIGNER_ZSKS_MAX];
	size_t nt = signer_zsk_tags_get(r->sg, in_token, SIGNER_ZSKS_MAX);
	if (nt > SIGNER_ZSKS_MAX)
		nt = SIGNER_ZSKS_MAX;
	r->has_orphan = 0;
	for (size_t i = 0; i < nt; i++) {
		uint16_t t = in_token[i];
		if (t == st.active || (st.extra != EXTRA_NONE && t == st.extra_tag))
			continue;
		int known = 0;
		for (size_t j = 0; j < n; j++)
			known |= rows[j].tag == t && rows[j].algorithm == alg;
		if (known) {
			char why[256];
			if (signer_zsk_destroy(r->sg, t, why, sizeof why) == ZD_OK)
				zd_log(ZD_LOG_NOTICE, "keyroll", zname,
				       "ZSK %u, removed from the zone, deleted from the token", t);
			else
				zd_log(ZD_LOG_WARNING, "keyroll", zname,
				       "ZSK %u was removed from the zone but stays in the token: "
				       "%s",
				       t, why);
		} else if (!r->has_orphan) {
			r->has_orphan = 1;
			r->orphan = t;
			zd_log(ZD_LOG_NOTICE, "keyroll", zname,
			       "ZSK %u is in the token but not in zonedist.key: the next ZSK "
			       "rollover publishes it",
			       t);
		}
	}
	free(r->tags);
	r->tags = tags;
	r->n_tags = n;
	tags = NULL;
	state_set(r, &st);
	r->was = st;
out:
	free(tags);
	free(rows);
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
	free(r->tags);
	free(r);
}

void
keyroll_active_at_set(struct keyroll *r, uint64_t at)
{
	pthread_mutex_lock(&r->mu);
	r->st.active_at = at;
	pthread_mutex_unlock(&r->mu);
	r->was.active_at = at;
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

enum keyroll_step
keyroll_due(const struct keyroll *r, uint64_t now)
{
	uint64_t at;
	if (r->pending != KEYROLL_NONE)
		return KEYROLL_NONE;
	enum keyroll_step s = next_step(r, &r->st, &at);
	return s != KEYROLL_NONE && now >= at ? s : KEYROLL_NONE;
}

static void
fail_log(struct keyroll *r, enum keyroll_step s, const char *why)
{
	uint64_t now = zd_now_ms();
	if (r->fail_logged_ms != 0 && now - r->fail_logged_ms < FAIL_LOG_EVERY_MS)
		return;
	r->fail_logged_ms = now;
	zd_log(ZD_LOG_ERROR, "keyroll", r->zc->name,
	       "ALARM: the ZSK rollover's %s step is due but cannot be made (retried at "
	       "every batch; the zone keeps being published with its current keys): %s",
	       keyroll_step_name(s), why);
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
		if (r->has_orphan) {
			tag = r->orphan;
		} else {
			char suffix[48];
			snprintf(suffix, sizeof suffix, "%" PRIu64 "-%zu", now, r->n_tags);
			if ((e = signer_zsk_generate(r->sg, suffix, r->tags, r->n_tags, &tag, err,
			                             errlen)) != ZD_OK)
				break;
			/* until its publish commits, it is the token's unknown key */
			r->has_orphan = 1;
			r->orphan = tag;
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
	}
	if (e == ZD_OK &&
	    (e = signer_zsk_use(r->sg, st.active, st.extra != EXTRA_NONE, st.extra_tag)) != ZD_OK)
		snprintf(err, errlen, "the token has no ZSK %u", st.extra_tag);
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
	uint8_t alg = r->zc->dnssec.algorithm;
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
	}
	return ZD_EBUG;
}

void
keyroll_done(struct keyroll *r)
{
	const char *zname = r->zc->name;
	uint64_t at;
	enum keyroll_step s = r->pending;
	if (s == KEYROLL_NONE)
		return;
	enum keyroll_step next = next_step(r, &r->st, &at);
	char when[64];
	zd_time_utc(at, 0, when, sizeof when);
	switch (s) {
	case KEYROLL_NONE:
		break;
	case KEYROLL_PUBLISH: {
		uint16_t *v = realloc(r->tags, (r->n_tags + 1) * sizeof *v);
		if (v != NULL) { /* else only the token's tags are avoided */
			v[r->n_tags] = r->st.extra_tag;
			r->tags = v;
			r->n_tags++;
		}
		r->has_orphan = 0;
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "ZSK rollover: ZSK %u published beside ZSK %u; it signs from %s at the "
		       "earliest (Ipub = %" PRIu64 " s, zsk-lifetime)",
		       r->st.extra_tag, r->st.active, when, r->iv.ipub);
		break;
	}
	case KEYROLL_ACTIVATE:
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "ZSK rollover: ZSK %u signs the zone, ZSK %u retired (still published "
		       "until %s: Iret = %" PRIu64 " s)",
		       r->st.active, r->st.extra_tag, when, r->iv.iret_z);
		break;
	case KEYROLL_REMOVE: {
		char why[256];
		uint16_t old = r->was.extra_tag;
		if (signer_zsk_destroy(r->sg, old, why, sizeof why) != ZD_OK)
			zd_log(ZD_LOG_WARNING, "keyroll", zname,
			       "ZSK %u left the zone but stays in the token (deleted at the next "
			       "start): %s",
			       old, why);
		zd_log(ZD_LOG_NOTICE, "keyroll", zname,
		       "ZSK rollover done: ZSK %u removed from the zone and the token; next "
		       "rollover %s %s",
		       old, next == KEYROLL_NONE ? "not scheduled" : "publishes at",
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
	uint64_t was = r->st.compromised_at;
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
	return ZD_OK;
}

void
keyroll_checked(struct keyroll *r, uint64_t now)
{
	pthread_mutex_lock(&r->mu);
	r->checked_at = now;
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
	};
	pthread_mutex_unlock(&m->mu);
	out->due = next_step(r, &st, &out->due_at);
}
