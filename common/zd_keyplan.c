#include "common/zd_keyplan.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
zd_key_intervals_get(const struct zd_dnssec_config *d, struct zd_key_intervals *out)
{
	const struct zd_key_policy *k = &d->keys;
	out->ipub = (uint64_t)k->propagation_delay + d->dnskey_ttl + k->publish_safety;
	out->iret_z = (uint64_t)k->propagation_delay + d->max_ttl + k->retire_safety;
	out->ipub_p = (uint64_t)k->parent_propagation_delay + k->ds_ttl + k->retire_safety;
	out->dreg = k->registration_delay;
	out->ksk_roll = out->ipub + out->dreg + out->ipub_p;
}

const char *
zd_key_policy_problem(const struct zd_dnssec_config *d)
{
	struct zd_key_intervals iv;
	zd_key_intervals_get(d, &iv);
	if (d->keys.zsk_lifetime != 0 && d->keys.zsk_lifetime < iv.ipub + iv.iret_z)
		return "zsk-lifetime must be at least Ipub + Iret = (propagation-delay + "
		       "dnskey-ttl "
		       "+ publish-safety) + (propagation-delay + max-ttl + retire-safety)";
	if (d->keys.ksk_lifetime != 0 && d->keys.ksk_lifetime < iv.ksk_roll)
		return "ksk-lifetime must be at least Ipub + Dreg + IpubP = (propagation-delay + "
		       "dnskey-ttl + publish-safety) + registration-delay + "
		       "(parent-propagation-delay "
		       "+ ds-ttl + retire-safety)";
	return NULL;
}

const char *
zd_key_event_name(enum zd_key_event e)
{
	switch (e) {
	case ZD_KEY_PUBLISH:
		return "publish";
	case ZD_KEY_ACTIVATE:
		return "activate";
	case ZD_KEY_REMOVE:
		return "remove";
	case ZD_KEY_CDS:
		return "cds";
	case ZD_KEY_DS_SEEN:
		return "ds-seen";
	case ZD_KEY_DS_SETTLED:
		return "ds-settled";
	}
	return "?";
}

struct steps {
	struct zd_key_step *v;
	size_t n, cap;
	uint64_t from, until;
	size_t role_n, limit; /* steps of the role being generated; it stops past limit */
	int oom;
};

__attribute__((format(printf, 6, 7))) static struct zd_key_step *
emit(struct steps *s, uint64_t at, int ksk, int gen, enum zd_key_event ev, const char *formula_fmt,
     ...)
{
	if (at < s->from || at >= s->until)
		return NULL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct zd_key_step *v = realloc(s->v, cap * sizeof *v);
		if (v == NULL) {
			s->oom = 1;
			return NULL;
		}
		s->v = v;
		s->cap = cap;
	}
	struct zd_key_step *x = &s->v[s->n++];
	s->role_n++;
	memset(x, 0, sizeof *x);
	x->at = at;
	x->ksk = ksk;
	x->gen = gen;
	x->event = ev;
	va_list ap;
	va_start(ap, formula_fmt);
	vsnprintf(x->formula, sizeof x->formula, formula_fmt, ap);
	va_end(ap);
	return x;
}

static void
why(struct zd_key_step *x, const char *text)
{
	if (x != NULL)
		snprintf(x->why, sizeof x->why, "%s", text);
}

/* The first generation whose roll can still have a step at or after from. */
static uint64_t
first_gen(uint64_t active, uint64_t life, uint64_t span, uint64_t from)
{
	if (from <= active + span)
		return 1;
	uint64_t n = (from - active - span) / life;
	return n > 1 ? n : 1;
}

/* The intervals written out with their terms, for the formulas. */
struct terms {
	char ipub[96], iret[96], ipubp[112];
};

static void
terms_get(const struct zd_dnssec_config *d, const struct zd_key_intervals *iv, struct terms *t)
{
	snprintf(t->ipub, sizeof t->ipub, "Ipub %" PRIu64 " s (Dprp %u + TTLkey %u + safety %u)",
	         iv->ipub, d->keys.propagation_delay, d->dnskey_ttl, d->keys.publish_safety);
	snprintf(t->iret, sizeof t->iret,
	         "Iret %" PRIu64 " s (Dsgn 0 + Dprp %u + TTLsig %u + safety %u)", iv->iret_z,
	         d->keys.propagation_delay, d->max_ttl, d->keys.retire_safety);
	snprintf(t->ipubp, sizeof t->ipubp, "IpubP %" PRIu64 " s (DprpP %u + TTLds %u + safety %u)",
	         iv->ipub_p, d->keys.parent_propagation_delay, d->keys.ds_ttl,
	         d->keys.retire_safety);
}

/* The rolls after the key active since active, numbered from offset + 1. */
static void
zsk_steps(const struct zd_dnssec_config *d, const struct zd_key_intervals *iv,
          const struct terms *t, uint64_t active, struct steps *s, int offset)
{
	uint64_t life = d->keys.zsk_lifetime;
	const char *ipub = t->ipub, *iret = t->iret;
	if (life == 0)
		return;
	for (uint64_t n = first_gen(active, life, iv->iret_z, s->from);; n++) {
		uint64_t act = active + n * life;
		if (act - iv->ipub >= s->until || s->oom || s->role_n > s->limit)
			break;
		int g = (int)n + offset;
		why(emit(s, act - iv->ipub, 0, g, ZD_KEY_PUBLISH, "Tact - %s", ipub),
		    "the new DNSKEY must reach every secondary and outlive the cached DNSKEY RRset "
		    "before anything is signed with it");
		why(emit(s, act, 0, g, ZD_KEY_ACTIVATE, "Tact(prev) + Lzsk %" PRIu64 " s", life),
		    "the lifetime of the previous ZSK; the old ZSK retires (stops signing) now and "
		    "the zone is re-signed with the new one");
		why(emit(s, act + iv->iret_z, 0, g - 1, ZD_KEY_REMOVE, "Tret + %s", iret),
		    "signatures made by the old ZSK stay in caches for up to TTLsig after every "
		    "secondary has the new ones");
	}
}

static void
ksk_steps(const struct zd_dnssec_config *d, const struct zd_key_intervals *iv,
          const struct terms *t, uint64_t active, struct steps *s, int offset)
{
	uint64_t life = d->keys.ksk_lifetime;
	const char *ipub = t->ipub, *ipubp = t->ipubp;
	if (life == 0)
		return;
	for (uint64_t n = first_gen(active, life, 0, s->from);; n++) {
		uint64_t done = active + n * life, pub = done - iv->ksk_roll;
		if (pub >= s->until || s->oom || s->role_n > s->limit)
			break;
		int g = (int)n + offset;
		why(emit(s, pub, 1, g, ZD_KEY_PUBLISH,
		         "Tdone - (Ipub + Dreg + IpubP) = Tdone - %" PRIu64 " s", iv->ksk_roll),
		    "scheduled so the roll completes when the current KSK's lifetime ends; the "
		    "DNSKEY RRset is signed by both KSKs from now on");
		why(emit(s, pub + iv->ipub, 1, g, ZD_KEY_CDS, "Tpub + %s", ipub),
		    "a DS must not reach the parent before the new DNSKEY is in every cache");
		why(emit(s, pub + iv->ipub + iv->dreg, 1, g, ZD_KEY_DS_SEEN,
		         "Tcds + Dreg %" PRIu64 " s (expected; waits for the confirmation)",
		         iv->dreg),
		    "the parent's registration delay: the roll waits until the DS is confirmed at "
		    "the parent");
		why(emit(s, done, 1, g, ZD_KEY_DS_SETTLED, "Tds-seen + %s", ipubp),
		    "resolvers may hold the old DS for up to TTLds after the parent replaced it; "
		    "then the old KSK is removed");
	}
}

static int
step_cmp(const void *a, const void *b)
{
	const struct zd_key_step *x = a, *y = b;
	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	if (x->ksk != y->ksk)
		return x->ksk - y->ksk;
	return (int)x->event - (int)y->event;
}

size_t
zd_key_plan(const struct zd_dnssec_config *d, uint64_t zsk_active, uint64_t ksk_active,
            uint64_t from, uint64_t until, struct zd_key_step *out, size_t cap)
{
	struct zd_zsk_now z = {.active = zsk_active};
	struct zd_ksk_now k = {.active = ksk_active};
	return zd_key_plan_now(d, &z, &k, from, until, out, cap);
}

/* The roll in progress: its own steps, and the activation time the later
 * rolls count from (Tact(1) - Lzsk: the plain schedule's base). */
static uint64_t
zsk_now_steps(const struct zd_dnssec_config *d, const struct zd_key_intervals *iv,
              const struct terms *t, const struct zd_zsk_now *z, struct steps *s)
{
	uint64_t life = d->keys.zsk_lifetime, act1 = 0;
	if (z->retired != 0)
		why(emit(s, z->retired + iv->iret_z, 0, -1, ZD_KEY_REMOVE, "Tret (on record) + %s",
		         t->iret),
		    "signatures made by the retired ZSK stay in caches for up to TTLsig after "
		    "every "
		    "secondary has the new ones");
	if (z->published != 0) {
		act1 = z->published + iv->ipub;
		if (z->compromised == 0 && life != 0 && z->active + life > act1)
			act1 = z->active + life;
		why(emit(s, act1, 0, 1, ZD_KEY_ACTIVATE,
		         z->compromised ? "Tpub (on record) + %s"
		                        : "max(Tpub (on record) + %s, "
		                          "Tact + Lzsk)",
		         t->ipub),
		    "the published ZSK must be in every cache before it signs, and the signing one "
		    "lives its lifetime unless it is compromised");
	} else if (z->compromised != 0) {
		uint64_t pub = z->retired ? z->retired + iv->iret_z : z->compromised;
		if (pub < z->compromised)
			pub = z->compromised;
		act1 = pub + iv->ipub;
		why(emit(s, pub, 0, 1, ZD_KEY_PUBLISH, "the report (or the retired ZSK's removal)"),
		    "the compromised ZSK is replaced at once; only two ZSKs are published at a "
		    "time");
		why(emit(s, act1, 0, 1, ZD_KEY_ACTIVATE, "Tpub + %s", t->ipub),
		    "the new ZSK must be in every cache before it signs");
	}
	if (act1 == 0)
		return z->active; /* nothing in progress beyond a removal */
	if (act1 < s->from)       /* due: the batch makes it at its next look */
		act1 = s->from;
	why(emit(s, act1 + iv->iret_z, 0, 0, ZD_KEY_REMOVE, "Tact(1) + %s", t->iret),
	    "signatures made by the old ZSK stay in caches for up to TTLsig after every "
	    "secondary has the new ones");
	/* the later rolls: generation n of the plain schedule is n - 1 after it */
	return life != 0 && act1 >= life ? act1 : 0;
}

/* The KSK roll in progress: its remaining steps, and the time the next
 * KSK's lifetime counts from (its expected Tds-settled).  A step already
 * due (the parent's DS awaited past Dreg) is shown at from: it happens at
 * the next look. */
static uint64_t
ksk_now_steps(const struct zd_key_intervals *iv, const struct terms *t, const struct zd_ksk_now *k,
              struct steps *s)
{
	uint64_t cds = 0, seen = 0, pub = k->stage_at;
	if (k->stage == ZD_KSK_NONE && k->compromised != 0) {
		pub = k->compromised < s->from ? s->from : k->compromised;
		why(emit(s, pub, 1, 1, ZD_KEY_PUBLISH, "the report"),
		    "the compromised KSK is replaced at once; the DNSKEY RRset is signed by both "
		    "KSKs from now on");
	}
	switch (k->compromised != 0 && k->stage == ZD_KSK_NONE ? ZD_KSK_PUBLISHED : k->stage) {
	case ZD_KSK_PUBLISHED:
		cds = pub + iv->ipub;
		if (cds < s->from)
			cds = s->from;
		why(emit(s, cds, 1, 1, ZD_KEY_CDS, "Tpub (on record) + %s", t->ipub),
		    "a DS must not reach the parent before the new DNSKEY is in every cache");
		seen = cds + iv->dreg;
		break;
	case ZD_KSK_READY:
		seen = k->stage_at + iv->dreg;
		break;
	case ZD_KSK_SEEN:
		seen = k->stage_at;
		break;
	default:
		return k->active;
	}
	if (k->stage != ZD_KSK_SEEN) {
		if (seen < s->from)
			seen = s->from;
		why(emit(s, seen, 1, 1, ZD_KEY_DS_SEEN,
		         "Tcds + Dreg %" PRIu64 " s (expected; waits for the confirmation)",
		         iv->dreg),
		    "the parent's registration delay: the roll waits until the DS is confirmed at "
		    "the parent");
	}
	uint64_t done = seen + iv->ipub_p;
	if (done < s->from)
		done = s->from;
	why(emit(s, done, 1, 1, ZD_KEY_DS_SETTLED,
	         k->stage == ZD_KSK_SEEN ? "Tds-seen (on record) + %s" : "Tds-seen + %s", t->ipubp),
	    "resolvers may hold the old DS for up to TTLds after the parent replaced it; then "
	    "the old KSK is removed");
	return done;
}

size_t
zd_key_plan_now(const struct zd_dnssec_config *d, const struct zd_zsk_now *zsk,
                const struct zd_ksk_now *ksk, uint64_t from, uint64_t until,
                struct zd_key_step *out, size_t cap)
{
	struct zd_key_intervals iv;
	struct steps s = {.from = from, .until = until, .limit = cap};
	struct terms t;
	zd_key_intervals_get(d, &iv);
	terms_get(d, &iv, &t);
	uint64_t base = zsk_now_steps(d, &iv, &t, zsk, &s);
	if (base == zsk->active) {
		zsk_steps(d, &iv, &t, zsk->active, &s, 0);
	} else if (base != 0) {
		/* generation 1 is in progress: the plain rolls start from its activation */
		zsk_steps(d, &iv, &t, base, &s, 1);
	}
	s.role_n = 0;
	uint64_t kbase = ksk_now_steps(&iv, &t, ksk, &s);
	ksk_steps(d, &iv, &t, kbase, &s, kbase != ksk->active);
	size_t n = s.oom ? SIZE_MAX : s.n;
	if (s.n > 1)
		qsort(s.v, s.n, sizeof *s.v, step_cmp);
	if (out != NULL && s.n > 0 && !s.oom)
		memcpy(out, s.v, (s.n < cap ? s.n : cap) * sizeof *out);
	free(s.v);
	return n;
}
