#include "server/probe.h"

#include <inttypes.h>
#include <ldns/ldns.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/zd_log.h"

struct probe {
	const struct zd_config *cfg;
	struct zone **zones;
	size_t n_zones;
	struct probe_state **st; /* [zone][notify target], under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running, stop;
};

/* One SOA query; ZD_OK with *serial, or a reason in why. */
static zd_err
ask(const struct zd_zone_config *zc, const struct zd_peer *peer, uint32_t timeout_ms,
    uint32_t *serial, char *why, size_t whylen)
{
	ldns_pkt *q = NULL, *a = NULL;
	ldns_buffer *qb = ldns_buffer_new(512);
	uint8_t *ans = NULL;
	size_t anslen = 0;
	zd_err e = ZD_EIO;

	if (qb == NULL || ldns_pkt_query_new_frm_str(&q, zc->name, LDNS_RR_TYPE_SOA,
	                                             LDNS_RR_CLASS_IN, 0) != LDNS_STATUS_OK) {
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
	if (ldns_pkt_get_rcode(a) != LDNS_RCODE_NOERROR) {
		ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, ldns_pkt_get_rcode(a));
		snprintf(why, whylen, "answered %s", rc ? rc->name : "an error");
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
	ldns_pkt_free(q);
	ldns_pkt_free(a);
	if (qb)
		ldns_buffer_free(qb);
	LDNS_FREE(ans);
	return e;
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
	if (p->st == NULL) {
		probe_free(p);
		return ZD_ENOMEM;
	}
	for (size_t i = 0; i < n_zones; i++) {
		size_t n = zones[i]->cfg->n_notify;
		if ((p->st[i] = calloc(n ? n : 1, sizeof **p->st)) == NULL) {
			probe_free(p);
			return ZD_ENOMEM;
		}
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
	free(p->st);
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
