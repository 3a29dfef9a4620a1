#include "server/probe.h"

#include <inttypes.h>
#include <ldns/ldns.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/zd_log.h"
#include "server/keyroll.h"
#include "server/signer.h"

struct probe {
	const struct zd_config *cfg;
	struct zone **zones;
	size_t n_zones;
	struct probe_state **st;     /* [zone][notify target], under mu */
	struct probe_parent *parent; /* [zone], under mu */
	ldns_rr **ksk; /* [zone]: the KSK's DNSKEY at the start (the roll has the current ones),
	                  or NULL (unsigned) */
	uint64_t *parent_next_ms; /* [zone]: monotonic time of the next DS round */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running, stop;
};

/* One query for the zone's type over UDP: ZD_OK with the answer *out (its
 * id checked; the caller frees it), or a reason in why. */
static zd_err
query(const struct zd_zone_config *zc, ldns_rr_type type, const struct zd_peer *peer,
      uint32_t timeout_ms, ldns_pkt **out, char *why, size_t whylen)
{
	ldns_pkt *q = NULL, *a = NULL;
	ldns_buffer *qb = ldns_buffer_new(512);
	uint8_t *ans = NULL;
	size_t anslen = 0;
	zd_err e = ZD_EIO;

	if (qb == NULL ||
	    ldns_pkt_query_new_frm_str(&q, zc->name, type, LDNS_RR_CLASS_IN, 0) != LDNS_STATUS_OK) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	ldns_pkt_set_random_id(q);
	if (ldns_pkt2buffer_wire(qb, q) != LDNS_STATUS_OK) {
		snprintf(why, whylen, "cannot build the query");
		goto out;
	}
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	ldns_status s = ldns_udp_send(&ans, qb, &peer->addr, peer->addrlen, tv, &anslen);
	if (s != LDNS_STATUS_OK) {
		snprintf(why, whylen, "no answer: %s", ldns_get_errorstr_by_id(s));
		goto out;
	}
	if (ldns_wire2pkt(&a, ans, anslen) != LDNS_STATUS_OK) {
		snprintf(why, whylen, "the answer does not parse");
		goto out;
	}
	if (ldns_pkt_id(a) != ldns_pkt_id(q)) {
		snprintf(why, whylen, "the answer has another id");
		goto out;
	}
	if (ldns_pkt_tc(a)) {
		snprintf(why, whylen, "the answer is truncated");
		goto out;
	}
	*out = a;
	a = NULL;
	e = ZD_OK;
out:
	ldns_pkt_free(q);
	ldns_pkt_free(a);
	if (qb)
		ldns_buffer_free(qb);
	LDNS_FREE(ans);
	return e;
}

static void
rcode_why(const ldns_pkt *a, char *why, size_t whylen)
{
	ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, ldns_pkt_get_rcode(a));
	snprintf(why, whylen, "answered %s", rc ? rc->name : "an error");
}

/* One SOA query; ZD_OK with *serial, or a reason in why. */
static zd_err
ask(const struct zd_zone_config *zc, const struct zd_peer *peer, uint32_t timeout_ms,
    uint32_t *serial, char *why, size_t whylen)
{
	ldns_pkt *a = NULL;
	zd_err e = query(zc, LDNS_RR_TYPE_SOA, peer, timeout_ms, &a, why, whylen);
	if (e != ZD_OK)
		return e;
	e = ZD_EIO;
	if (ldns_pkt_get_rcode(a) != LDNS_RCODE_NOERROR) {
		rcode_why(a, why, whylen);
		goto out;
	}
	ldns_rr_list *an = ldns_pkt_answer(a);
	for (size_t i = 0; an && i < ldns_rr_list_rr_count(an); i++) {
		ldns_rr *rr = ldns_rr_list_rr(an, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && ldns_rr_rd_count(rr) >= 3) {
			*serial = ldns_rdf2native_int32(ldns_rr_rdf(rr, 2));
			e = ZD_OK;
		}
	}
	if (e == ZD_OK && !ldns_pkt_aa(a)) {
		snprintf(why, whylen, "the answer is not authoritative (zone not loaded?)");
		e = ZD_EIO;
	} else if (e != ZD_OK) {
		snprintf(why, whylen, "the answer has no SOA");
	}
out:
	ldns_pkt_free(a);
	return e;
}

const char *
probe_parent_state_name(enum probe_parent_state s)
{
	switch (s) {
	case PROBE_PARENT_UNKNOWN:
		return "unknown";
	case PROBE_PARENT_MATCH:
		return "match";
	case PROBE_PARENT_NO_DS:
		return "no-ds";
	case PROBE_PARENT_MISMATCH:
		return "mismatch";
	case PROBE_PARENT_UNREACHABLE:
		return "unreachable";
	}
	return "?";
}

/* One parent server's DS RRset for the zone against the KSKs ksk[0..n_ksk):
 * the state it says (UNREACHABLE: it did not answer usably), *n_ds the DS
 * records, bit i of *matched for a DS of ksk[i]. */
static enum probe_parent_state
parent_ask(const struct zd_zone_config *zc, ldns_rr *const *ksk, size_t n_ksk,
           const struct zd_peer *peer, uint32_t timeout_ms, size_t *n_ds, unsigned *matched,
           char *why, size_t whylen)
{
	ldns_pkt *a = NULL;
	enum probe_parent_state st = PROBE_PARENT_UNREACHABLE;
	*n_ds = 0;
	*matched = 0;
	if (query(zc, LDNS_RR_TYPE_DS, peer, timeout_ms, &a, why, whylen) != ZD_OK)
		return st;
	if (ldns_pkt_get_rcode(a) != LDNS_RCODE_NOERROR) {
		rcode_why(a, why, whylen);
		goto out;
	}
	if (!ldns_pkt_aa(a)) {
		snprintf(why, whylen, "the answer is not authoritative (not a parent server?)");
		goto out;
	}
	ldns_rdf *owner = ldns_dname_new_frm_str(zc->name);
	ldns_rr_list *an = ldns_pkt_answer(a);
	for (size_t i = 0; owner && an && i < ldns_rr_list_rr_count(an); i++) {
		ldns_rr *rr = ldns_rr_list_rr(an, i);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_DS ||
		    ldns_dname_compare(ldns_rr_owner(rr), owner) != 0)
			continue;
		(*n_ds)++;
		for (size_t k = 0; k < n_ksk; k++)
			if (ldns_rr_compare_ds(rr, ksk[k]))
				*matched |= 1u << k;
	}
	ldns_rdf_deep_free(owner);
	if (*n_ds == 0) {
		st = PROBE_PARENT_NO_DS;
		snprintf(why, whylen, "no DS RRset");
	} else if (*matched == 0) {
		st = PROBE_PARENT_MISMATCH;
		snprintf(why, whylen, "%zu DS records, none of the KSK (tag %u%s)", *n_ds,
		         n_ksk ? ldns_calc_keytag(ksk[0]) : 0, n_ksk > 1 ? " or the next" : "");
	} else {
		st = PROBE_PARENT_MATCH;
	}
out:
	ldns_pkt_free(a);
	return st;
}

/* Every parent server of zone zi; the worst answer is the zone's state. */
static void
parent_round(struct probe *p, size_t zi)
{
	const struct zd_zone_config *zc = p->zones[zi]->cfg;
	const struct zd_key_policy *kp = &zc->dnssec.keys;
	enum probe_parent_state st = PROBE_PARENT_UNREACHABLE;
	size_t answered = 0, n_ds = 0;
	char error[200] = "";
	/* the KSKs published now (during a roll, two); the start's otherwise */
	ldns_rr *keys[2] = {NULL, NULL};
	int next = 0;
	size_t n_keys = 0;
	struct keyroll *roll = p->zones[zi]->roll;
	if (roll != NULL)
		n_keys = keyroll_ksk_dnskeys_get(roll, keys, &next);
	if (n_keys == 0) {
		keys[0] = ldns_rr_clone(p->ksk[zi]);
		n_keys = keys[0] != NULL;
		next = 0;
	}
	unsigned all_next = next ? 1 : 0; /* every answer has the next KSK's DS */
	unsigned all_none = 1;            /* every answer has no DS (unsigning waits for it) */
	static const int rank[] = {
	        [PROBE_PARENT_UNKNOWN] = 0,  [PROBE_PARENT_UNREACHABLE] = 0,
	        [PROBE_PARENT_MATCH] = 1,    [PROBE_PARENT_NO_DS] = 2,
	        [PROBE_PARENT_MISMATCH] = 3,
	};

	for (size_t k = 0; k < kp->n_parent; k++) {
		char why[160] = "";
		size_t n = 0;
		unsigned matched = 0;
		enum probe_parent_state s =
		        parent_ask(zc, keys, n_keys, &kp->parent[k],
		                   p->cfg->limits.probe_timeout_ms, &n, &matched, why, sizeof why);
		if (s != PROBE_PARENT_UNREACHABLE) {
			answered++;
			if (!(matched & 2u))
				all_next = 0;
			if (s != PROBE_PARENT_NO_DS)
				all_none = 0;
			if (answered == 1 || rank[s] > rank[st]) {
				st = s;
				n_ds = n;
			}
		}
		if (s != PROBE_PARENT_MATCH && error[0] == '\0')
			snprintf(error, sizeof error, "%s: %s", kp->parent[k].text, why);
	}
	/* seen only when every server answered with it: one that did not
	 * answer may still serve the old DS alone */
	int seen = next && answered == kp->n_parent && answered > 0 && all_next;
	uint16_t next_tag = next ? ldns_calc_keytag(keys[1]) : 0;
	int gone = answered == kp->n_parent && answered > 0 && all_none;
	if (roll != NULL) {
		keyroll_parent_seen(roll, seen, next_tag);
		keyroll_parent_gone(roll, gone);
	}
	uint64_t now = zd_wallclock_ms();
	pthread_mutex_lock(&p->mu);
	struct probe_parent *pp = &p->parent[zi];
	enum probe_parent_state was = pp->state;
	int was_seen = pp->next_seen;
	pp->state = st;
	pp->ksk_tag = n_keys ? ldns_calc_keytag(keys[0]) : 0;
	pp->next_tag = next_tag;
	pp->next_seen = seen;
	pp->answered = answered;
	pp->ds_count = n_ds;
	pp->checked_ms = now;
	snprintf(pp->error, sizeof pp->error, "%s", error);
	if (was != st)
		pp->since_ms = now;
	pthread_mutex_unlock(&p->mu);
	if (was != st)
		zd_log(st == PROBE_PARENT_MATCH ? ZD_LOG_NOTICE : ZD_LOG_WARNING, "probe", zc->name,
		       "%sparent DS: %s (%zu of %zu parent servers answered)%s%s",
		       st == PROBE_PARENT_MISMATCH ? "ALARM: " : "", probe_parent_state_name(st),
		       answered, kp->n_parent, error[0] ? ": " : "", error);
	if (seen && !was_seen)
		zd_log(ZD_LOG_NOTICE, "probe", zc->name,
		       "parent DS: every parent server that answered (%zu of %zu) serves the DS of "
		       "the next KSK %u",
		       answered, kp->n_parent, next_tag);
	ldns_rr_free(keys[0]);
	ldns_rr_free(keys[1]);
}

static void
record(struct probe *p, size_t zi, size_t k, zd_err e, uint32_t serial, const char *why)
{
	const struct zd_zone_config *zc = p->zones[zi]->cfg;
	uint64_t now = zd_wallclock_ms();
	pthread_mutex_lock(&p->mu);
	struct probe_state *s = &p->st[zi][k];
	int was_known = s->known, was_up = s->reachable;
	s->checked_ms = now;
	if (e == ZD_OK) {
		s->known = 1;
		s->failures = 0;
		s->has_serial = 1;
		s->serial = serial;
		s->error[0] = '\0';
		s->reachable = 1;
	} else {
		s->failures++;
		snprintf(s->error, sizeof s->error, "%s", why);
		if (s->failures >= PROBE_FAILS_DOWN) {
			s->known = 1;
			s->reachable = 0;
		}
	}
	if (!s->known) { /* one miss at the start: not known yet */
		pthread_mutex_unlock(&p->mu);
		return;
	}
	int changed = !was_known || was_up != s->reachable;
	if (changed)
		s->since_ms = now;
	int up = s->reachable;
	pthread_mutex_unlock(&p->mu);
	if (changed && (was_known || !up))
		zd_log(up ? ZD_LOG_NOTICE : ZD_LOG_WARNING, "probe", zc->name,
		       "secondary %s %s%s%s", zc->notify[k].text,
		       up ? "answers again" : "does not answer the SOA query", up ? "" : ": ",
		       up ? "" : why);
}

static void *
loop(void *arg)
{
	struct probe *p = arg;
	const struct zd_limits *lim = &p->cfg->limits;

	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		pthread_mutex_unlock(&p->mu);
		for (size_t zi = 0; zi < p->n_zones; zi++) {
			const struct zd_zone_config *zc = p->zones[zi]->cfg;
			for (size_t k = 0; k < zc->n_notify; k++) {
				char why[160] = "";
				uint32_t serial = 0;
				zd_err e = ask(zc, &zc->notify[k], lim->probe_timeout_ms, &serial,
				               why, sizeof why);
				record(p, zi, k, e, serial, why);
			}
			uint64_t mono = zd_now_ms();
			if (p->ksk[zi] != NULL && zc->dnssec.keys.n_parent > 0 &&
			    mono >= p->parent_next_ms[zi]) {
				p->parent_next_ms[zi] =
				        mono +
				        (uint64_t)zc->dnssec.keys.parent_poll_interval * 1000;
				parent_round(p, zi);
			}
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += lim->probe_interval_ms / 1000;
		ts.tv_nsec += (long)(lim->probe_interval_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&p->mu);
		while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

zd_err
probe_new(const struct zd_config *cfg, struct zone **zones, size_t n_zones, struct probe **out)
{
	struct probe *p = calloc(1, sizeof *p);
	if (p == NULL)
		return ZD_ENOMEM;
	p->cfg = cfg;
	p->zones = zones;
	p->n_zones = n_zones;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->st = calloc(n_zones ? n_zones : 1, sizeof *p->st);
	p->parent = calloc(n_zones ? n_zones : 1, sizeof *p->parent);
	p->ksk = calloc(n_zones ? n_zones : 1, sizeof *p->ksk);
	p->parent_next_ms = calloc(n_zones ? n_zones : 1, sizeof *p->parent_next_ms);
	if (p->st == NULL || p->parent == NULL || p->ksk == NULL || p->parent_next_ms == NULL) {
		probe_free(p);
		return ZD_ENOMEM;
	}
	for (size_t i = 0; i < n_zones; i++) {
		size_t n = zones[i]->cfg->n_notify;
		if ((p->st[i] = calloc(n ? n : 1, sizeof **p->st)) == NULL) {
			probe_free(p);
			return ZD_ENOMEM;
		}
		if (zones[i]->signer == NULL || zones[i]->cfg->dnssec.keys.n_parent == 0)
			continue;
		/* the KSK is fixed while zonedistd runs: its DNSKEY once, here */
		uint16_t ksk, zsk;
		uint8_t alg;
		signer_keys_get(zones[i]->signer, &ksk, &zsk, &alg);
		if ((p->ksk[i] = signer_key_dnskey_get(zones[i]->signer, SIGNER_KSK, ksk)) ==
		    NULL) {
			probe_free(p);
			return ZD_ENOMEM;
		}
		p->parent[i].servers = zones[i]->cfg->dnssec.keys.n_parent;
		p->parent[i].ksk_tag = ldns_calc_keytag(p->ksk[i]);
	}
	*out = p;
	return ZD_OK;
}

zd_err
probe_start(struct probe *p)
{
	if (pthread_create(&p->thread, NULL, loop, p) != 0)
		return ZD_ENOMEM;
	p->running = 1;
	pthread_setname_np(p->thread, "zd-probe"); /* top -H, perf */
	return ZD_OK;
}

void
probe_free(struct probe *p)
{
	if (p == NULL)
		return;
	if (p->running) {
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	for (size_t i = 0; p->st && i < p->n_zones; i++)
		free(p->st[i]);
	for (size_t i = 0; p->ksk && i < p->n_zones; i++)
		ldns_rr_free(p->ksk[i]);
	free(p->st);
	free(p->parent);
	free(p->ksk);
	free(p->parent_next_ms);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

zd_err
probe_get(struct probe *p, size_t zi, size_t k, struct probe_state *out)
{
	if (p == NULL || zi >= p->n_zones || k >= p->zones[zi]->cfg->n_notify)
		return ZD_ENOTFOUND;
	pthread_mutex_lock(&p->mu);
	*out = p->st[zi][k];
	pthread_mutex_unlock(&p->mu);
	return ZD_OK;
}

zd_err
probe_parent_get(struct probe *p, size_t zi, struct probe_parent *out)
{
	if (p == NULL || zi >= p->n_zones || p->ksk[zi] == NULL)
		return ZD_ENOTFOUND;
	pthread_mutex_lock(&p->mu);
	*out = p->parent[zi];
	pthread_mutex_unlock(&p->mu);
	return ZD_OK;
}
