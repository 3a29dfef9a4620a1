#include "server/batch.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/zd_clock.h"
#include "common/zd_log.h"
#include "registry-adapter/adapter.h"
#include "server/checkpoint.h"
#include "server/gate.h"
#include "server/journal.h"
#include "server/keyroll.h"
#include "server/kskbundle.h"
#include "server/loadpipe.h"
#include "server/serial.h"
#include "server/signer.h"

#define CHECKPOINT_CHUNK_BYTES ((size_t)8 << 20)
#define FULL_FETCH_ROWS        25000
#define FULL_READ_AHEAD        2 /* chunks the reader may be ahead */
#define BACKOFF_MIN_MS         100
#define BACKOFF_MAX_MS         30000
#define BACKOFF_HSM_MS         3000 /* retry pause while the token is away */
#define TOKEN_LOG_EVERY_MS     60000
#define DRAIN_ROUNDS_MAX       64 /* batches of one zone before the others get a turn */

struct batch {
	const struct zd_config *cfg;
	struct zone **zones;
	size_t n_zones;
	int *sync_config; /* per zone: compare the configured records on the next batch */
	batch_published_fn published;
	void *arg;
	struct ra *ra;
	struct ckpt *ckpt; /* borrowed; may be NULL */
	pthread_t thread;
	int running;
	_Atomic int stop;
	_Atomic int db_up;
	int *catch_up;                /* per zone: replay journal rows newer than the store first */
	int test_lose_commit_outcome; /* test hook (ZD_TEST_LOSE_COMMIT_OUTCOME): 1, 2 */
	uint32_t backoff_ms;          /* pause before reconnecting */
	uint32_t fail_backoff_ms;     /* pause before retrying a failed batch */
	struct signer_token *tk;      /* borrowed; NULL when no zone signs */
	_Atomic int hsm_down;         /* the token failed; logged once until it is back */
	_Atomic uint64_t hsm_down_ms; /* since when (monotonic) */
	uint64_t hsm_logged_ms;       /* last said so */
	int *force_full;              /* per zone: the next version is a full signing */
	int *unsign;                  /* per zone: the next version removes every DNSSEC record */
	uint64_t *refresh_ms;         /* per zone: last signature refresh step */
	uint64_t *refresh_clock;      /* per zone: the DNSSEC clock then (seconds) */
};

zd_err
batch_new(const struct zd_config *cfg, struct zone **zones, size_t n_zones,
          batch_published_fn published, void *arg, struct batch **out)
{
	struct batch *b = calloc(1, sizeof *b);
	if (b == NULL)
		return ZD_ENOMEM;
	b->sync_config = calloc(n_zones ? n_zones : 1, sizeof *b->sync_config);
	b->catch_up = calloc(n_zones ? n_zones : 1, sizeof *b->catch_up);
	b->force_full = calloc(n_zones ? n_zones : 1, sizeof *b->force_full);
	b->refresh_ms = calloc(n_zones ? n_zones : 1, sizeof *b->refresh_ms);
	b->refresh_clock = calloc(n_zones ? n_zones : 1, sizeof *b->refresh_clock);
	b->unsign = calloc(n_zones ? n_zones : 1, sizeof *b->unsign);
	if (b->sync_config == NULL || b->catch_up == NULL || b->force_full == NULL ||
	    b->refresh_ms == NULL || b->refresh_clock == NULL || b->unsign == NULL ||
	    ra_new(cfg->database, &b->ra) != ZD_OK) {
		free(b->sync_config);
		free(b->catch_up);
		free(b->force_full);
		free(b->refresh_ms);
		free(b->refresh_clock);
		free(b->unsign);
		free(b);
		return ZD_ENOMEM;
	}
	/* Test hook: lose the outcome of the first commit, or with "keyroll" of
	 * the first that makes a key-roll step (a test proves the journal then
	 * decides).  Never set in production configurations. */
	const char *lose = getenv("ZD_TEST_LOSE_COMMIT_OUTCOME");
	b->test_lose_commit_outcome = lose == NULL ? 0 : strcmp(lose, "keyroll") == 0 ? 2 : 1;
	b->cfg = cfg;
	b->zones = zones;
	b->n_zones = n_zones;
	b->published = published;
	b->arg = arg;
	b->backoff_ms = BACKOFF_MIN_MS;
	b->fail_backoff_ms = BACKOFF_MIN_MS;
	for (size_t i = 0; i < n_zones; i++)
		b->sync_config[i] = 1;
	*out = b;
	return ZD_OK;
}

void
batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	batch_stop(b);
	ra_free(b->ra);
	free(b->sync_config);
	free(b->catch_up);
	free(b->force_full);
	free(b->refresh_ms);
	free(b->refresh_clock);
	free(b->unsign);
	free(b);
}

void
batch_token_set(struct batch *b, struct signer_token *tk)
{
	b->tk = tk;
}

void
batch_checkpointer_set(struct batch *b, struct ckpt *k)
{
	b->ckpt = k;
}

int
batch_db_is_up(const struct batch *b)
{
	return atomic_load(&b->db_up);
}

int
batch_hsm_state(const struct batch *b, uint64_t *down_for_ms)
{
	*down_for_ms = 0;
	if (b->tk == NULL)
		return -1;
	if (!atomic_load(&b->hsm_down))
		return 1;
	uint64_t since = atomic_load(&b->hsm_down_ms), now = zd_now_ms();
	*down_for_ms = now > since ? now - since : 0;
	return 0;
}

/* A list that borrows its RRs: emptied, never deep-freed. */
static void
borrowed_list_free(ldns_rr_list *l)
{
	if (l != NULL) {
		ldns_rr_list_set_rr_count(l, 0);
		ldns_rr_list_free(l);
	}
}

static zd_err
borrow_all(ldns_rr_list *dst, const ldns_rr_list *src, const ldns_rdf *owner)
{
	for (size_t i = 0; src != NULL && i < ldns_rr_list_rr_count(src); i++) {
		ldns_rr *rr = ldns_rr_list_rr(src, i);
		if (owner != NULL && ldns_dname_compare(ldns_rr_owner(rr), owner) != 0)
			continue;
		if (!ldns_rr_list_push_rr(dst, rr)) /* borrowed: dst is never deep-freed */
			return ZD_ENOMEM;
	}
	return ZD_OK;
}

static zd_err
clone_all(ldns_rr_list *dst, const ldns_rr_list *src)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(src); i++) {
		ldns_rr *c = ldns_rr_clone(ldns_rr_list_rr(src, i));
		if (c == NULL || !ldns_rr_list_push_rr(dst, c)) { /* dst owns c */
			ldns_rr_free(c);
			return ZD_ENOMEM;
		}
	}
	return ZD_OK;
}

/* Owner names the configuration has records at, once each (few). */
static zd_err
config_names(const struct zone *z, ldns_rdf ***out, size_t *n_out)
{
	size_t n = ldns_rr_list_rr_count(z->config_rrs), k = 0;
	ldns_rdf **v = calloc(n ? n : 1, sizeof *v);
	if (v == NULL)
		return ZD_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ldns_rdf *o = ldns_rr_owner(ldns_rr_list_rr(z->config_rrs, i));
		size_t j;
		for (j = 0; j < k && ldns_dname_compare(v[j], o) != 0; j++)
			;
		if (j == k)
			v[k++] = o; /* borrowed from config_rrs */
	}
	*out = v;
	*n_out = k;
	return ZD_OK;
}

/* The zone is signed: it has keys and has not gone unsigned (dnssec
 * unsign, RFC 8078). */
static int
zone_signs(const struct zone *z)
{
	return z->signer != NULL && (z->roll == NULL || !keyroll_is_unsigned(z->roll));
}

/* The records of one name into the version.  In a signed zone a TTL above
 * dnssec max-ttl is lowered to it first (counted in z->ttl_capped): the
 * rollover timing (Iret) and the signature lifetime guard count on no
 * answer being cached longer. */
static zd_err
name_set(struct zone *z, struct store_txn *t, const ldns_rdf *owner, ldns_rr_list *l)
{
	if (zone_signs(z)) {
		uint32_t max = z->cfg->dnssec.max_ttl;
		for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
			ldns_rr *rr = ldns_rr_list_rr(l, i);
			if (ldns_rr_ttl(rr) > max) {
				ldns_rr_set_ttl(rr, max);
				z->ttl_capped++;
			}
		}
	}
	return store_txn_name_set(t, owner, l, zone_type_is_managed);
}

/* Say how many TTLs name_set() lowered since the last time. */
static void
ttl_capped_log(struct zone *z, uint32_t serial)
{
	if (z->ttl_capped == 0)
		return;
	zd_log(ZD_LOG_WARNING, "batch", z->cfg->name,
	       "%" PRIu64 " records had a TTL above dnssec max-ttl (%" PRIu32
	       " s) and are served with that TTL from serial %" PRIu32
	       " on (the key rollover timing assumes no larger TTL)",
	       z->ttl_capped, z->cfg->dnssec.max_ttl, serial);
	z->ttl_capped = 0;
}

static int
has_ns(const ldns_rr_list *l)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++)
		if (ldns_rr_get_type(ldns_rr_list_rr(l, i)) == LDNS_RR_TYPE_NS)
			return 1;
	return 0;
}

/* Make each configured name hold its configured records plus extra's records
 * at that name (registry rows for a configured name, e.g. a nic. host);
 * *n_deleg (NULL: not counted) counts those below the apex that have NS. */
static zd_err
config_names_set(struct zone *z, struct store_txn *t, const ldns_rr_list *extra, uint64_t *n_deleg)
{
	ldns_rdf **names = NULL;
	size_t n = 0;
	ldns_rr_list *l = NULL;
	zd_err e;

	if ((e = config_names(z, &names, &n)) != ZD_OK)
		return e;
	if ((l = ldns_rr_list_new()) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && e == ZD_OK; i++) {
		ldns_rr_list_set_rr_count(l, 0);
		if ((e = borrow_all(l, z->config_rrs, names[i])) == ZD_OK &&
		    (e = borrow_all(l, extra, names[i])) == ZD_OK)
			e = name_set(z, t, names[i], l);
		if (e == ZD_OK && n_deleg != NULL && has_ns(l) &&
		    ldns_dname_compare(names[i], store_apex_get(z->store)) != 0)
			(*n_deleg)++;
	}
out:
	borrowed_list_free(l);
	free(names);
	return e;
}

static zd_err
soa_put(struct zone *z, struct store_txn *t, uint32_t serial)
{
	ldns_rr *soa = NULL;
	ldns_rr_list *l = NULL;
	zd_err e;

	if ((e = zone_soa_make(z, serial, &soa)) != ZD_OK)
		return e;
	if ((l = ldns_rr_list_new()) == NULL || !ldns_rr_list_push_rr(l, soa)) { /* l owns soa */
		ldns_rr_free(soa);
		ldns_rr_list_free(l);
		return ZD_ENOMEM;
	}
	e = store_txn_rrset_put(t, ldns_rr_owner(soa), LDNS_RR_TYPE_SOA, 0, l);
	ldns_rr_list_deep_free(l);
	return e;
}

/* Keep limits.history_versions versions in memory (0: all).  Pruning only
 * once the history is a tenth over the limit makes it a batch job, not a
 * walk of the names at every version. */
static void
history_prune(const struct batch *b, struct zone *z)
{
	uint64_t keep = b->cfg->limits.history_versions;
	uint64_t pub = store_published_get(z->store), oldest = store_oldest_get(z->store);
	struct store_stats before, after;

	if (keep == 0 || oldest == 0 || pub - oldest < keep + keep / 10 + 1)
		return;
	uint64_t t0 = zd_now_ms();
	store_stats_get(z->store, &before);
	zd_err e = store_prune(z->store, pub - keep + 1);
	if (e != ZD_OK) {
		/* Memory stays in use; serving goes on, the next version retries. */
		zd_log(ZD_LOG_WARNING, "batch", z->cfg->name,
		       "pruning versions below %" PRIu64 " failed: %s", pub - keep + 1,
		       zd_strerror(e));
		return;
	}
	store_stats_get(z->store, &after);
	if (after.versions == before.versions)
		return; /* a running transfer pins the oldest; the next version retries */
	zd_log(ZD_LOG_INFO, "batch", z->cfg->name,
	       "pruned %" PRIu64 " versions (now %" PRIu64 "..%" PRIu64 "), freed %zu bytes, "
	       "%zu RRset versions, %zu names, in %" PRIu64 " ms",
	       before.versions - after.versions, store_oldest_get(z->store), pub,
	       before.bytes - after.bytes, before.rrsets_total - after.rrsets_total,
	       before.names - after.names, zd_now_ms() - t0);
}

/* ---- sanity limits (DESIGN.md decision 8) ---- */

struct sanity {
	struct zone *z;
	uint64_t old, v;
	size_t removed, added, apex;
	zd_err e;
};

static int
apex_type_exempt(uint16_t t)
{
	return zone_type_is_managed(t); /* SOA and what the signer keeps */
}

static int
rrset_present(struct store *s, uint64_t v, const ldns_rdf *owner, uint16_t type, zd_err *e)
{
	ldns_rr_list *l = NULL;
	if (v == 0)
		return 0;
	*e = store_rrset_find(s, v, owner, type, 0, &l);
	int n = l != NULL && ldns_rr_list_rr_count(l) > 0;
	ldns_rr_list_deep_free(l);
	return n;
}

static zd_err
sanity_change(void *arg, const ldns_rdf *owner, uint16_t type, uint16_t covered)
{
	struct sanity *c = arg;
	zd_err e = ZD_OK;
	(void)covered;
	if (ldns_dname_compare(owner, store_apex_get(c->z->store)) == 0) {
		c->apex += !apex_type_exempt(type);
		return ZD_OK;
	}
	if (type != LDNS_RR_TYPE_NS)
		return ZD_OK;
	int was = rrset_present(c->z->store, c->old, owner, type, &e);
	int is = e == ZD_OK ? rrset_present(c->z->store, c->v, owner, type, &e) : 0;
	c->removed += was && !is;
	c->added += !was && is;
	return e;
}

/* A version that removes too many delegations or touches the apex is held
 * until an operator releases it (zonedistd --release): ZD_ELIMIT, the rows
 * stay queued.  *added and *removed get the delegations the version adds
 * and removes. */
static zd_err
sanity_check(struct batch *b, size_t zi, struct ra_batch *rb, struct store_txn *t, size_t *added,
             size_t *removed)
{
	struct zone *z = b->zones[zi];
	const struct zd_limits *lim = &b->cfg->limits;
	struct sanity c = {
	        .z = z, .old = store_published_get(z->store), .v = store_txn_version_get(t)};
	uint64_t dels = atomic_load(&z->delegations);
	char err[512], by[256], why[256];
	zd_err e;

	if ((e = store_txn_changes_foreach(t, sanity_change, &c)) != ZD_OK)
		return e;
	*added = c.added;
	*removed = c.removed;
	why[0] = '\0';
	if (c.removed > lim->hold_removed_min &&
	    (uint64_t)c.removed * 100u > (uint64_t)lim->hold_removed_percent * dels)
		snprintf(why, sizeof why,
		         "it removes %zu of %" PRIu64 " delegations (limits: more than %" PRIu32
		         " and more than %" PRIu32 "%%)",
		         c.removed, dels, lim->hold_removed_min, lim->hold_removed_percent);
	else if (c.apex > lim->hold_apex_changes)
		snprintf(why, sizeof why, "it changes %zu RRsets at the apex (limit %" PRIu32 ")",
		         c.apex, lim->hold_apex_changes);
	if (why[0] == '\0') {
		atomic_store(&z->held, 0);
		return ZD_OK;
	}
	int found = 0;
	if ((e = journal_release_use(ra_batch_conn_get(rb), z->cfg->name, c.v, &found, by,
	                             sizeof by, err, sizeof err)) != ZD_OK) {
		zd_log(ZD_LOG_ERROR, "batch", z->cfg->name, "%s", err);
		return e;
	}
	if (found) {
		zd_log(ZD_LOG_NOTICE, "batch", z->cfg->name,
		       "version %" PRIu64 " was held because %s; released by %s", c.v, why, by);
		atomic_store(&z->held, 0);
		return ZD_OK;
	}
	if (!atomic_exchange(&z->held, 1))
		zd_log(ZD_LOG_ERROR, "batch", z->cfg->name,
		       "ALARM: version %" PRIu64 " held by the sanity limits, nothing published "
		       "(serial %" PRIu32 " keeps being served, changes stay queued): %s; "
		       "look at the queued changes, then release it with "
		       "`zonedistd --config FILE --release %s --by NAME`",
		       c.v, atomic_load(&z->serial), why, z->cfg->name);
	return ZD_ELIMIT;
}

/* ---- unsigning, chain parameters ---- */

static int
type_is_dnssec(uint16_t t)
{
	return t == LDNS_RR_TYPE_RRSIG || t == LDNS_RR_TYPE_NSEC || t == LDNS_RR_TYPE_NSEC3 ||
	       t == LDNS_RR_TYPE_NSEC3PARAM || t == LDNS_RR_TYPE_DNSKEY || t == LDNS_RR_TYPE_CDS ||
	       t == LDNS_RR_TYPE_CDNSKEY;
}

struct dnssec_rrsets {
	ldns_rr_list *rrs; /* one RR per RRset to delete (clones) */
	zd_err e;
};

static zd_err
dnssec_rr(void *arg, const ldns_rr *rr)
{
	struct dnssec_rrsets *c = arg;
	if (!type_is_dnssec((uint16_t)ldns_rr_get_type(rr)))
		return ZD_OK;
	ldns_rr *k = ldns_rr_clone(rr);
	if (k == NULL || !ldns_rr_list_push_rr(c->rrs, k)) { /* the list owns k */
		ldns_rr_free(k);
		return ZD_ENOMEM;
	}
	return ZD_OK;
}

/* Remove every DNSSEC record of the zone in t (`dnssec: off` with
 * force-unsign).  One version; the walk goes in chunks. */
static zd_err
unsign_all(struct zone *z, struct store_txn *t, size_t *removed)
{
	struct store_cursor cur = STORE_CURSOR_INIT;
	uint64_t v = store_txn_version_get(t);
	zd_err e = ZD_OK;

	*removed = 0;
	while (!cur.done && e == ZD_OK) {
		struct dnssec_rrsets c = {.rrs = ldns_rr_list_new()};
		if (c.rrs == NULL)
			return ZD_ENOMEM;
		e = store_walk(z->store, v, &cur, 4096, dnssec_rr, &c);
		for (size_t i = 0; e == ZD_OK && i < ldns_rr_list_rr_count(c.rrs); i++) {
			ldns_rr *rr = ldns_rr_list_rr(c.rrs, i);
			uint16_t type = (uint16_t)ldns_rr_get_type(rr), covered = 0;
			if (type == LDNS_RR_TYPE_RRSIG)
				covered = (uint16_t)ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr));
			size_t before = store_txn_changes_get(t);
			e = store_txn_rrset_put(t, ldns_rr_owner(rr), type, covered, NULL);
			*removed += store_txn_changes_get(t) - before;
		}
		ldns_rr_list_deep_free(c.rrs);
	}
	return e;
}

/* At start-up: a zone whose published version is signed but whose policy
 * is off must say force-unsign; a signed zone's chain parameters must be the
 * policy's.  1 in *unsign when the next version removes the DNSSEC records. */
static zd_err
dnssec_state_check(struct zone *z, int *unsign, char *err, size_t errlen)
{
	const struct zd_dnssec_config *p = &z->cfg->dnssec;
	uint64_t v = store_published_get(z->store);
	const ldns_rdf *apex = store_apex_get(z->store);
	ldns_rr_list *keys = NULL, *param = NULL;
	zd_err e;

	*unsign = 0;
	if ((e = store_rrset_find(z->store, v, apex, LDNS_RR_TYPE_DNSKEY, 0, &keys)) != ZD_OK ||
	    (e = store_rrset_find(z->store, v, apex, LDNS_RR_TYPE_NSEC3PARAM, 0, &param)) != ZD_OK)
		goto out;
	int is_signed = keys != NULL && ldns_rr_list_rr_count(keys) > 0;
	if (is_signed && !p->enabled) {
		if (!p->force_unsign) {
			snprintf(
			        err, errlen,
			        "zone %s is published signed and its policy says dnssec: off.  "
			        "Removing its DNSKEYs makes it bogus to validators for as long as "
			        "its parent holds a DS: have the DS removed at the parent and wait "
			        "for the DS TTL, then set `dnssec: {enabled: false, force-unsign: "
			        "true}` to unsign in one version",
			        z->cfg->name);
			e = ZD_EMALFORMED;
			goto out;
		}
		*unsign = 1;
		goto out;
	}
	if (!is_signed || !p->enabled)
		goto out;
	int want3 = p->denial == ZD_DENIAL_NSEC3;
	int have3 = param != NULL && ldns_rr_list_rr_count(param) > 0;
	int same = want3 == have3;
	if (same && have3) {
		const ldns_rr *rr = ldns_rr_list_rr(param, 0);
		const ldns_rdf *salt = ldns_rr_rd_count(rr) == 4 ? ldns_rr_rdf(rr, 3) : NULL;
		size_t sl = salt ? ldns_rdf_size(salt) : 0;
		same = ldns_rr_rd_count(rr) == 4 &&
		       ldns_rdf2native_int16(ldns_rr_rdf(rr, 2)) == p->nsec3_iterations &&
		       sl >= 1 && ldns_rdf_data(salt)[0] == p->nsec3_salt_len &&
		       memcmp(ldns_rdf_data(salt) + 1, p->nsec3_salt, p->nsec3_salt_len) == 0;
	}
	if (!same) {
		snprintf(err, errlen,
		         "zone %s is published with another denial chain (NSEC or NSEC3 "
		         "parameters) than its policy; changing the chain of a signed zone is not "
		         "done by zonedistd yet: restore the previous settings",
		         z->cfg->name);
		e = ZD_EMALFORMED;
	}
out:
	ldns_rr_list_deep_free(keys);
	ldns_rr_list_deep_free(param);
	return e;
}

/* NS RRsets below the apex in the published version (start-up). */
struct deleg_count {
	const ldns_rdf *apex, *last;
	uint64_t n;
};

static zd_err
deleg_rr(void *arg, const ldns_rr *rr)
{
	struct deleg_count *c = arg;
	if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_NS ||
	    ldns_dname_compare(ldns_rr_owner(rr), c->apex) == 0 ||
	    (c->last != NULL && ldns_dname_compare(ldns_rr_owner(rr), c->last) == 0))
		return ZD_OK;
	c->n++;
	ldns_rdf_deep_free((ldns_rdf *)c->last);
	c->last = ldns_rdf_clone(ldns_rr_owner(rr));
	return c->last ? ZD_OK : ZD_ENOMEM;
}

static zd_err
delegations_count(struct zone *z)
{
	struct store_cursor cur = STORE_CURSOR_INIT;
	struct deleg_count c = {.apex = store_apex_get(z->store)};
	zd_err e = ZD_OK;
	while (!cur.done && e == ZD_OK)
		e = store_walk(z->store, store_published_get(z->store), &cur, 65536, deleg_rr, &c);
	ldns_rdf_deep_free((ldns_rdf *)c.last);
	if (e == ZD_OK)
		atomic_store(&z->delegations, c.n);
	return e;
}

/* While the token is away: say so at once, then once a minute, with how long
 * the published signatures stay valid at least (the refresh walk keeps
 * every one above refresh - refresh/4 while signing works). */
static void
token_down_log(struct batch *b, struct zone *z, uint32_t serial, const char *err)
{
	uint64_t now = zd_now_ms();
	if (!b->hsm_down) {
		b->hsm_down = 1;
		b->hsm_down_ms = now;
	} else if (now - b->hsm_logged_ms < TOKEN_LOG_EVERY_MS) {
		return;
	}
	b->hsm_logged_ms = now;
	const struct zd_dnssec_config *p = &z->cfg->dnssec;
	int64_t left =
	        (int64_t)(p->refresh - p->refresh / 4) - (int64_t)((now - b->hsm_down_ms) / 1000);
	int64_t margin = left - (int64_t)z->cfg->soa_expire - (int64_t)p->max_ttl;
	zd_log(ZD_LOG_ERROR, "signer", z->cfg->name,
	       "%stoken unavailable for %" PRIu64 " s, publishing stopped (serial %" PRIu32
	       " keeps being served, changes stay queued); the published signatures stay valid for "
	       "at least %" PRId64 " s more%s: %s",
	       margin < (int64_t)(p->refresh / 4) ? "ALARM: " : "", (now - b->hsm_down_ms) / 1000,
	       serial, left > 0 ? left : 0,
	       margin < 0 ? " (less than SOA expire + max-ttl: secondaries may serve expired "
	                    "signatures before the zone expires)"
	                  : "",
	       err);
}

/* The ceremony of an offline KSK (server/kskbundle.h), on a connection of
 * its own: it commits its bundles whatever this batch does. */
static void
ceremony_run(struct batch *b, struct zone *z)
{
	char err[512];
	struct kskb *nb = NULL;
	zd_err e = ZD_EMALFORMED;
	if (!z->cfg->dnssec.keys.offline_ksk || z->signer == NULL) {
		snprintf(err, sizeof err, "the zone has no offline KSK (dnssec keys offline-ksk)");
	} else {
		PGconn *c = PQconnectdb(b->cfg->database);
		if (PQstatus(c) != CONNECTION_OK) {
			snprintf(err, sizeof err, "cannot connect to the database: %s",
			         PQerrorMessage(c));
			e = ZD_EDB;
		} else {
			e = keyroll_ceremony(z->roll, &b->cfg->hsm, zd_clock_s(), c, &nb, err,
			                     sizeof err);
		}
		PQfinish(c);
	}
	keyroll_ceremony_done(z->roll, e == ZD_OK ? NULL : err);
	if (e != ZD_OK) {
		zd_log(ZD_LOG_ERROR, "batch", z->cfg->name, "the KSK ceremony failed: %s", err);
		return;
	}
	signer_offline_bundles_set(z->signer, nb);
	kskb_free(z->kskb);
	z->kskb = nb;
	keyroll_offline_set(z->roll, nb);
}

/* Sign the version t builds (a zone without a signer: nothing to do), then
 * let the validation gate look at it.  On failure the version must not be
 * committed; the reason is logged here. */
static zd_err
version_sign(struct batch *b, size_t zi, struct store_txn *t, int full, struct signer_stats *st)
{
	struct zone *z = b->zones[zi];
	const char *zname = z->cfg->name;
	uint32_t serial = atomic_load(&z->serial);
	char err[768];
	zd_err e;

	memset(st, 0, sizeof *st);
	if (!zone_signs(z))
		return ZD_OK;
	if (!signer_token_is_up(b->tk)) {
		if ((e = signer_token_check(b->tk, err, sizeof err)) != ZD_OK) {
			token_down_log(b, z, serial, err);
			return ZD_EHSM;
		}
		zd_log(ZD_LOG_NOTICE, "signer", zname, "token available again, signing resumes");
		b->hsm_down = 0;
	}
	e = signer_txn_sign(z->signer, z->store, t, full, st, err, sizeof err);
	if (e != ZD_OK) {
		if (!signer_token_is_up(b->tk)) {
			zd_log(ZD_LOG_ERROR, "signer", zname,
			       "the token went away while signing: publishing stopped (serial "
			       "%" PRIu32
			       " keeps being served, changes stay queued), reconnecting: %s",
			       serial, err);
			if (!b->hsm_down) {
				b->hsm_down = 1;
				b->hsm_down_ms = b->hsm_logged_ms = zd_now_ms();
			}
		} else {
			zd_log(ZD_LOG_ERROR, "signer", zname,
			       "version %" PRIu64 " not signed, changes stay queued: %s",
			       store_txn_version_get(t), err);
		}
		return e;
	}
	/* The gate: an opinion that shares no code with the signer. */
	const struct zd_dnssec_config *p = &z->cfg->dnssec;
	struct gate_policy gp = {
	        .nsec3 = p->denial == ZD_DENIAL_NSEC3,
	        .opt_out = p->nsec3_opt_out,
	        .iterations = p->nsec3_iterations,
	        .salt = p->nsec3_salt,
	        .salt_len = p->nsec3_salt_len,
	        .now = (uint32_t)zd_clock_s(),
	        /* what the lifetime guard promises (zd_config.h) */
	        .min_remaining = z->cfg->soa_expire + p->max_ttl,
	};
	/* an algorithm rollover's keys that sign unpublished */
	ldns_rr_list *unpublished = signer_unpublished_keys_get(z->signer);
	gp.unpublished_keys = unpublished;
	size_t checked = 0;
	uint64_t g0 = zd_now_ms();
	e = full ? gate_zone_check(z->store, store_txn_version_get(t), &gp, &checked, err,
	                           sizeof err)
	         : gate_txn_check(z->store, t, &gp, &checked, err, sizeof err);
	ldns_rr_list_deep_free(unpublished);
	st->gate_ms = zd_now_ms() - g0;
	st->gate_checked = checked;
	if (e != ZD_OK) {
		atomic_fetch_add(&z->gate_failures, 1);
		zd_log(ZD_LOG_ERROR, "gate", zname,
		       "ALARM: version %" PRIu64
		       " refused by the validation gate, nothing published "
		       "(serial %" PRIu32 " keeps being served, changes stay queued): %s",
		       store_txn_version_get(t), serial, err);
		return e == ZD_EMALFORMED ? ZD_EBUG : e;
	}
	return ZD_OK;
}

/* The version in t is complete but for its SOA: number it, journal it in the
 * batch's transaction, commit, publish.  Takes *t and *rb. */
static zd_err
version_commit(struct batch *b, size_t zi, struct ra_batch **rb, struct store_txn **t, size_t names)
{
	struct zone *z = b->zones[zi];
	const char *zname = z->cfg->name;
	uint32_t prev = atomic_load(&z->serial);
	uint32_t serial = serial_next(z->cfg->serial_policy, prev, zd_wallclock_s());
	uint8_t *delta = NULL;
	size_t len = 0, n_ids = 0, n_tx = 0, changed = store_txn_changes_get(*t);
	uint64_t version = store_txn_version_get(*t), t0 = zd_now_ms();
	char err[512];
	zd_err e;

	struct signer_stats sst;
	int full = b->force_full[zi];
	size_t d_added = 0, d_removed = 0;
	if ((e = sanity_check(b, zi, *rb, *t, &d_added, &d_removed)) != ZD_OK)
		goto fail;
	if ((e = soa_put(z, *t, serial)) != ZD_OK)
		goto fail;
	if ((e = version_sign(b, zi, *t, full, &sst)) != ZD_OK)
		goto fail;
	changed = store_txn_changes_get(*t);
	if ((e = store_txn_delta_wire(*t, &delta, &len)) != ZD_OK)
		goto fail;
	const int64_t *ids = ra_batch_change_ids_get(*rb, &n_ids);
	const int64_t *txids = ra_batch_txids_get(*rb, &n_tx);
	size_t n_changes = ra_batch_changes_get(*rb);
	uint64_t first_change_ms = 0;
	e = journal_delta_append(ra_batch_conn_get(*rb), zname, version, serial, delta, len, ids,
	                         n_ids, txids, n_tx, z->signer ? zd_wallclock_ms() : 0,
	                         &first_change_ms, err, sizeof err);
	free(delta);
	if (e == ZD_OK && z->roll != NULL && keyroll_pending(z->roll))
		e = keyroll_record(z->roll, ra_batch_conn_get(*rb), err, sizeof err);
	if (e != ZD_OK) {
		zd_log(ZD_LOG_ERROR, "batch", zname,
		       "version %" PRIu64 " (serial %" PRIu32 ") not journalled, changes stay "
		       "queued: %s",
		       version, serial, err);
		goto fail;
	}
	if ((e = store_txn_prepare(*t)) != ZD_OK)
		goto fail;
	e = ra_batch_commit(rb);
	if (e == ZD_OK &&
	    (b->test_lose_commit_outcome == 1 ||
	     (b->test_lose_commit_outcome == 2 && z->roll != NULL && keyroll_pending(z->roll)))) {
		/* test hook: the commit went through, but we are told it failed,
		 * as when the connection breaks after COMMIT was sent */
		b->test_lose_commit_outcome = 0;
		e = ZD_EDB;
	}
	if (e != ZD_OK) {
		/* Maybe committed, maybe not: the next batch reads the journal
		 * in its snapshot first and replays this version if it is there. */
		zd_log(ZD_LOG_ERROR, "batch", zname,
		       "commit of version %" PRIu64 " (serial %" PRIu32 ") failed or its outcome "
		       "is unknown; the version is discarded here, and the journal decides: %s",
		       version, serial, ra_error_get(b->ra));
		store_txn_abort(t);
		b->catch_up[zi] = 1;
		return e;
	}
	/* Committed: from here nothing may fail (prepared). */
	uint64_t pub_ms = zd_wallclock_ms();
	store_txn_publish(t, serial, pub_ms);
	ttl_capped_log(z, serial);
	if (first_change_ms == 0 || first_change_ms > pub_ms) /* none, or clocks apart */
		first_change_ms = pub_ms - (zd_now_ms() - t0);
	zone_latency_observe(z, pub_ms - first_change_ms);
	atomic_store(&z->serial, serial);
	atomic_fetch_add(&z->versions_published, 1);
	atomic_fetch_add(&z->changes_consumed, n_changes);
	atomic_store(&z->last_batch_ms, zd_wallclock_ms());
	atomic_fetch_add(&z->delegations, d_added);
	atomic_fetch_sub(&z->delegations, d_removed);
	atomic_store(&z->sigs_last, sst.signatures);
	atomic_fetch_add(&z->sigs_total, sst.signatures);
	b->force_full[zi] = 0;
	if (z->roll != NULL)
		keyroll_done(z->roll);
	zd_log(ZD_LOG_INFO, "batch", zname,
	       "serial %" PRIu32 " published (version %" PRIu64 "): %zu change rows, %zu names, "
	       "%zu RRsets changed, %zu txids, %zu signatures%s (%zu names signed, %zu chain "
	       "records changed, %" PRIu64 " ms signing, %zu signatures checked in %" PRIu64
	       " ms), %" PRIu64 " ms",
	       serial, version, n_changes, names, changed, n_tx, sst.signatures,
	       full ? " (full signing)" : "", sst.names, sst.chain_changed, sst.ms,
	       sst.gate_checked, sst.gate_ms, zd_now_ms() - t0);
	if (b->published)
		b->published(b->arg, z);
	if (b->ckpt != NULL && version % b->cfg->limits.checkpoint_every == 0)
		ckpt_request(b->ckpt, zi, version);
	history_prune(b, z);
	return ZD_OK;
fail:
	store_txn_abort(t);
	ra_batch_abort(rb);
	return e;
}

/* Signature refresh: every poll interval, look at the next few names, as
 * many as the time passed asks (the poll interval, or more when the DNSSEC
 * clock moved further: a late poll, a simulated clock); 1 when some have
 * signatures to renew (the next version re-signs them). */
static int
refresh_due(struct batch *b, size_t zi)
{
	struct zone *z = b->zones[zi];
	uint64_t now = zd_now_ms();
	struct store_stats st;
	size_t due = 0;

	if (!zone_signs(z))
		return 0;
	if (now - b->refresh_ms[zi] >= b->cfg->limits.poll_interval_ms) {
		b->refresh_ms[zi] = now;
		uint64_t clock = zd_clock_s(), moved_ms = b->cfg->limits.poll_interval_ms;
		if (b->refresh_clock[zi] != 0 && clock > b->refresh_clock[zi] &&
		    (clock - b->refresh_clock[zi]) * 1000 > moved_ms)
			moved_ms = (clock - b->refresh_clock[zi]) * 1000;
		b->refresh_clock[zi] = clock;
		if (moved_ms > z->cfg->dnssec.refresh * 1000ull)
			moved_ms = z->cfg->dnssec.refresh * 1000ull; /* the whole zone, at most */
		if (moved_ms > UINT32_MAX)
			moved_ms = UINT32_MAX;
		store_stats_get(z->store, &st);
		size_t step = signer_refresh_step_names(z->signer, st.names, (uint32_t)moved_ms);
		if (signer_refresh_collect(z->signer, z->store, step, &due) != ZD_OK)
			return 0;
	} else if (signer_refresh_collect(z->signer, z->store, 0, &due) != ZD_OK) {
		return 0;
	}
	return due > 0;
}

/* One batch of zone zi.  *taken gets the number of change rows taken. */
static zd_err
batch_one(struct batch *b, size_t zi, size_t *taken)
{
	struct zone *z = b->zones[zi];
	const char *zname = z->cfg->name;
	struct ra_batch *rb = NULL;
	struct store_txn *t = NULL;
	ldns_rr_list *l = NULL, *extra = NULL;
	uint32_t max = b->cfg->limits.batch_max_changes;
	zd_err e;

	*taken = 0;
	z->ttl_capped = 0; /* a failed batch's are counted again when it is retried */
	if (atomic_load(&z->op_held))
		return ZD_OK; /* an operator's hold: the rows stay queued */
	/* read before the snapshot begins: it then sees what was asked */
	uint64_t roll_asked = z->roll != NULL ? keyroll_reload_asked(z->roll) : 0;
	if ((e = ra_batch_take(b->ra, zname, max, &rb)) != ZD_OK) {
		if (e != ZD_EDB)
			zd_log(ZD_LOG_ERROR, "batch", zname, "taking a batch failed: %s (%s)",
			       zd_strerror(e), ra_error_get(b->ra));
		return e;
	}
	*taken = ra_batch_changes_get(rb);
	if (b->catch_up[zi]) {
		/* In this batch's snapshot: a version committed without our
		 * knowing it is in the journal; replay it before building on. */
		char err[512];
		size_t applied = 0;
		e = journal_zone_catch_up(ra_batch_conn_get(rb), zname, z->store, &applied, err,
		                          sizeof err);
		if (e != ZD_OK) {
			zd_log(ZD_LOG_ERROR, "batch", zname, "reading the journal failed: %s", err);
			ra_batch_abort(&rb);
			return e;
		}
		b->catch_up[zi] = 0;
		if (applied > 0) {
			uint32_t serial = 0;
			store_serial_find(z->store, store_published_get(z->store), &serial);
			atomic_store(&z->serial, serial);
			zd_log(ZD_LOG_NOTICE, "batch", zname,
			       "%zu version(s) found committed in the journal and published: "
			       "serial %" PRIu32,
			       applied, serial);
			/* the keys of the journal's versions: read below */
			if (z->roll != NULL)
				roll_asked = keyroll_reload_ask(z->roll);
			if (b->published)
				b->published(b->arg, z);
		} else {
			zd_log(ZD_LOG_NOTICE, "batch", zname,
			       "the journal has no version beyond serial %" PRIu32
			       ": the commit did not "
			       "happen, its changes are still queued",
			       atomic_load(&z->serial));
		}
	}
	if (z->roll != NULL) {
		char err[512];
		if (keyroll_sync(z->roll, roll_asked, ra_batch_conn_get(rb), err, sizeof err) !=
		    ZD_OK) {
			zd_log(ZD_LOG_ERROR, "batch", zname,
			       "reading the key state failed, retried: %s", err);
			ra_batch_abort(&rb);
			return ZD_EDB;
		}
	}
	/* An offline KSK's ceremony an operator asked for (the KSK token is
	 * connected now): its bundles replace the signer's. */
	if (z->roll != NULL && keyroll_ceremony_take(z->roll))
		ceremony_run(b, z);
	/* A ZSK rollover step due on the DNSSEC clock goes out in this batch's
	 * version; one that cannot be made is retried (keyroll.c says why). */
	uint64_t clock_s = zd_clock_s();
	enum keyroll_step step =
	        z->roll != NULL && !b->unsign[zi] ? keyroll_due(z->roll, clock_s) : KEYROLL_NONE;
	if (step != KEYROLL_NONE) {
		char err[512];
		int full = 0;
		if (keyroll_begin(z->roll, step, clock_s, &full, err, sizeof err) != ZD_OK)
			step = KEYROLL_NONE;
		else if (full)
			b->force_full[zi] = 1;
	}
	int resign = refresh_due(b, zi) || (zone_signs(z) && b->force_full[zi]) || b->unsign[zi] ||
	             step != KEYROLL_NONE;
	if (*taken == 0 && !b->sync_config[zi] && !resign) {
		ra_batch_abort(&rb); /* nothing to consume */
		if (z->roll != NULL)
			keyroll_checked(z->roll, clock_s);
		return ZD_OK;
	}
	if ((e = store_txn_begin(z->store, &t)) != ZD_OK)
		goto fail;
	l = ldns_rr_list_new();
	extra = ldns_rr_list_new();
	if (l == NULL || extra == NULL) {
		e = ZD_ENOMEM;
		goto fail;
	}
	size_t names = ra_batch_names_get(rb);
	for (size_t i = 0; i < names; i++) {
		const ldns_rdf *owner = ra_batch_name_get(rb, i);
		const ldns_rr_list *rrs = ra_batch_name_rrs_get(rb, i);
		if (zone_name_is_configured(z, owner)) {
			/* merged with the configured records below */
			if ((e = borrow_all(extra, rrs, NULL)) != ZD_OK)
				goto fail;
			b->sync_config[zi] = 1;
			continue;
		}
		ldns_rr_list_set_rr_count(l, 0);
		if ((e = borrow_all(l, rrs, NULL)) != ZD_OK ||
		    (e = name_set(z, t, owner, l)) != ZD_OK)
			goto fail;
	}
	if (b->sync_config[zi] && (e = config_names_set(z, t, extra, NULL)) != ZD_OK)
		goto fail;
	if (b->unsign[zi] || step == KEYROLL_UNSIGN_REMOVE) {
		size_t removed = 0;
		if ((e = unsign_all(z, t, &removed)) != ZD_OK)
			goto fail;
		zd_log(ZD_LOG_NOTICE, "batch", zname,
		       "unsigning (%s): %zu DNSSEC RRsets removed in this version",
		       b->unsign[zi] ? "force-unsign" : "the parent's DS is gone", removed);
	}
	if (store_txn_changes_get(t) == 0 && !resign) {
		/* The names' records are what is published already: consume the
		 * rows, make no version. */
		store_txn_abort(&t);
		if ((e = ra_batch_commit(&rb)) != ZD_OK)
			zd_log(ZD_LOG_WARNING, "batch", zname, "commit failed: %s",
			       ra_error_get(b->ra));
		else if (*taken)
			zd_log(ZD_LOG_INFO, "batch", zname,
			       "%zu change rows consumed, no record changed", *taken);
		b->sync_config[zi] = e != ZD_OK;
		goto out;
	}
	e = version_commit(b, zi, &rb, &t, names);
	if (e == ZD_OK) {
		b->sync_config[zi] = 0;
		b->unsign[zi] = 0;
	}
	goto out;
fail:
	if (e != ZD_EDB)
		zd_log(ZD_LOG_ERROR, "batch", zname, "batch abandoned, changes stay queued: %s",
		       zd_strerror(e));
	store_txn_abort(&t);
	ra_batch_abort(&rb);
out:
	if (z->roll != NULL) {
		if (e != ZD_OK)
			keyroll_undo(z->roll); /* the step is due again at the next batch */
		else
			keyroll_checked(z->roll, clock_s);
	}
	borrowed_list_free(l);
	borrowed_list_free(extra);
	return e;
}

/* First start of a zone: the whole zone from the registry becomes version 1
 * and its checkpoint, in one snapshot that also consumes the queued rows. */
static zd_err
zone_init(struct batch *b, struct zone *z, char *err, size_t errlen)
{
	const char *zname = z->cfg->name;
	struct ra_batch *rb = NULL;
	struct store_txn *t = NULL;
	struct loadpipe *lp = NULL;
	ldns_rr_list *all = NULL, *group = NULL, *extra = NULL;
	uint64_t t0 = zd_now_ms(), put_ms = 0, n_deleg = 0;
	zd_err e;

	if ((e = ra_full_begin(b->ra, zname, &rb)) != ZD_OK) {
		snprintf(err, errlen, "zone %s: full load: %s", zname, ra_error_get(b->ra));
		return e;
	}
	group = ldns_rr_list_new();
	extra = ldns_rr_list_new();
	if (group == NULL || extra == NULL) {
		e = ZD_ENOMEM;
		goto fail;
	}
	if ((e = store_txn_begin(z->store, &t)) != ZD_OK)
		goto fail;
	/* The rows are fetched and checked on the reader's thread while this
	 * one puts the names it has into the store. */
	if ((e = loadpipe_start(b->ra, rb, FULL_FETCH_ROWS, FULL_READ_AHEAD, &lp)) != ZD_OK)
		goto fail;
	for (;;) {
		/* whole names in canonical order; the records are freed once put */
		if ((e = loadpipe_next(lp, &all)) != ZD_OK) {
			snprintf(err, errlen, "zone %s: full load: %s", zname, loadpipe_error(lp));
			goto fail;
		}
		if (all == NULL)
			break;
		uint64_t p0 = zd_now_ms();
		size_t n = ldns_rr_list_rr_count(all);
		for (size_t i = 0; i < n;) {
			ldns_rr *first = ldns_rr_list_rr(all, i);
			size_t j = i;
			ldns_rr_list_set_rr_count(group, 0);
			/* the adapter's names are canonical: equal names are equal bytes */
			while (j < n && ldns_rdf_compare(ldns_rr_owner(ldns_rr_list_rr(all, j)),
			                                 ldns_rr_owner(first)) == 0) {
				if (!ldns_rr_list_push_rr(group, ldns_rr_list_rr(all, j))) {
					e = ZD_ENOMEM;
					goto fail;
				}
				j++;
			}
			if (zone_name_is_configured(z, ldns_rr_owner(first))) {
				e = clone_all(extra, group);
			} else {
				/* below the apex (the apex is configured) */
				e = name_set(z, t, ldns_rr_owner(first), group);
				n_deleg += e == ZD_OK && has_ns(group);
			}
			if (e != ZD_OK)
				goto fail;
			i = j;
		}
		/* The store holds its own copies (extra its clones). */
		ldns_rr_list_set_rr_count(group, 0);
		loadpipe_done(lp, all);
		all = NULL;
		put_ms += zd_now_ms() - p0;
	}
	loadpipe_free(lp); /* the reader is done: rb is this thread's again */
	lp = NULL;
	uint64_t load_ms = zd_now_ms() - t0, first_ms, fetch_ms, check_ms;
	ra_full_times_get(rb, &first_ms, &fetch_ms, &check_ms);
	if ((e = config_names_set(z, t, extra, &n_deleg)) != ZD_OK)
		goto fail;
	uint32_t serial = serial_first(z->cfg->serial_policy, zd_wallclock_s());
	if ((e = soa_put(z, t, serial)) != ZD_OK)
		goto fail;
	struct signer_stats sst;
	size_t zi = 0;
	while (zi < b->n_zones && b->zones[zi] != z)
		zi++;
	if ((e = version_sign(b, zi, t, 1, &sst)) != ZD_OK) {
		snprintf(err, errlen, "zone %s: the first signing failed (see the log)", zname);
		goto fail;
	}
	if (z->signer != NULL)
		zd_log(ZD_LOG_NOTICE, "signer", zname,
		       "first version signed: %zu signatures, %zu names, %zu chain records, "
		       "%" PRIu64 " ms (signing processes busy %" PRIu64 " ms, waited for %" PRIu64
		       " ms); gate: %zu signatures checked, %" PRIu64 " ms",
		       sst.signatures, sst.names, sst.chain_changed, sst.ms, sst.pool_ms,
		       sst.wait_ms, sst.gate_checked, sst.gate_ms);
	/* Nothing serves yet: publish in memory first so the checkpoint can be
	 * read from the store; a failed commit fails the start-up. */
	if ((e = store_txn_publish(&t, serial, zd_wallclock_ms())) != ZD_OK)
		goto fail;
	ttl_capped_log(z, serial);
	uint64_t version = store_published_get(z->store), c0 = zd_now_ms();
	if ((e = journal_checkpoint_write(ra_batch_conn_get(rb), zname, z->store, version,
	                                  CHECKPOINT_CHUNK_BYTES, err, errlen)) != ZD_OK)
		goto fail;
	uint64_t ckpt_ms = zd_now_ms() - c0;
	size_t consumed = ra_batch_changes_get(rb);
	if ((e = ra_batch_commit(&rb)) != ZD_OK) {
		snprintf(err, errlen, "zone %s: committing the first version: %s", zname,
		         ra_error_get(b->ra));
		goto fail;
	}
	atomic_store(&z->serial, serial);
	atomic_store(&z->last_batch_ms, zd_wallclock_ms());
	atomic_store(&z->delegations, n_deleg); /* counted as they were put */
	struct store_stats st;
	store_stats_get(z->store, &st);
	zd_log(ZD_LOG_NOTICE, "batch", zname,
	       "first version loaded from the registry: serial %" PRIu32 ", %zu names, %zu "
	       "RRsets, %zu store bytes, %zu change rows consumed, %" PRIu64 " ms (reading "
	       "%" PRIu64 " ms: the query's first rows %" PRIu64 " ms, fetches %" PRIu64
	       " ms, row checks %" PRIu64 " ms, store %" PRIu64 " ms beside them; checkpoint "
	       "%" PRIu64 " ms)",
	       serial, st.names, st.rrsets_live, st.bytes, consumed, zd_now_ms() - t0, load_ms,
	       first_ms, fetch_ms, check_ms, put_ms, ckpt_ms);
	goto out;
fail:
	loadpipe_free(lp); /* before rb goes */
	lp = NULL;
	store_txn_abort(&t);
	ra_batch_abort(&rb);
out:
	borrowed_list_free(group);
	ldns_rr_list_deep_free(extra);
	ldns_rr_list_deep_free(all);
	return e;
}

zd_err
batch_load(struct batch *b, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(b->cfg->database);
	zd_err e = ZD_OK;

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to the database: %s", PQerrorMessage(c));
		PQfinish(c);
		return ZD_EDB;
	}
	if ((e = journal_schema_check(c, err, errlen)) != ZD_OK)
		goto out;
	if ((e = ra_connect(b->ra)) != ZD_OK) {
		snprintf(err, errlen, "cannot connect to the database: %s", ra_error_get(b->ra));
		goto out;
	}
	for (size_t i = 0; i < b->n_zones && e == ZD_OK; i++) {
		struct zone *z = b->zones[i];
		int found = 0;
		uint64_t t0 = zd_now_ms();
		if ((e = journal_zone_load_recent(c, z->cfg->name, z->store,
		                                  b->cfg->limits.history_versions, &found, err,
		                                  errlen)) != ZD_OK)
			break;
		if (!found) {
			e = zone_init(b, z, err, errlen);
			continue;
		}
		if ((e = delegations_count(z)) != ZD_OK) {
			snprintf(err, errlen, "zone %s: counting delegations: %s", z->cfg->name,
			         zd_strerror(e));
			break;
		}
		uint32_t serial = 0;
		store_serial_find(z->store, store_published_get(z->store), &serial);
		atomic_store(&z->serial, serial);
		if (zone_signs(z) && signer_keys_changed(z->signer, z->store)) {
			/* new keys, or a zone signed for the first time */
			b->force_full[i] = 1;
			zd_log(ZD_LOG_NOTICE, "signer", z->cfg->name,
			       "the published DNSKEY RRset is not the keys' one: the next version "
			       "is a full signing");
		}
		struct store_stats st;
		store_stats_get(z->store, &st);
		zd_log(ZD_LOG_NOTICE, "batch", z->cfg->name,
		       "loaded from the checkpoint of version %" PRIu64
		       " and the journal: serial %" PRIu32 ", versions %" PRIu64 "..%" PRIu64
		       ", %zu names, %zu store bytes, %" PRIu64 " ms",
		       store_oldest_get(z->store), serial, store_oldest_get(z->store),
		       store_published_get(z->store), st.names, st.bytes, zd_now_ms() - t0);
	}
	for (size_t i = 0; i < b->n_zones && e == ZD_OK; i++)
		e = dnssec_state_check(b->zones[i], &b->unsign[i], err, errlen);
	if (e == ZD_OK)
		atomic_store(&b->db_up, 1);
out:
	PQfinish(c);
	return e;
}

/* Sleep up to ms, waking early on stop. */
static void
nap(struct batch *b, uint32_t ms)
{
	while (ms > 0 && !atomic_load(&b->stop)) {
		uint32_t step = ms < 50 ? ms : 50;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void
db_down(struct batch *b, const char *why)
{
	if (atomic_exchange(&b->db_up, 0))
		zd_log(ZD_LOG_ERROR, "batch", NULL,
		       "database unreachable, publishing stopped (the last serials keep being "
		       "served): %s",
		       why);
}

static void *
loop(void *arg)
{
	struct batch *b = arg;

	while (!atomic_load(&b->stop)) {
		if (!ra_is_connected(b->ra)) {
			if (ra_connect(b->ra) != ZD_OK) {
				db_down(b, ra_error_get(b->ra));
				nap(b, b->backoff_ms);
				b->backoff_ms = b->backoff_ms * 2 > BACKOFF_MAX_MS
				                        ? BACKOFF_MAX_MS
				                        : b->backoff_ms * 2;
				continue;
			}
			if (!atomic_exchange(&b->db_up, 1))
				zd_log(ZD_LOG_NOTICE, "batch", NULL,
				       "database reachable again, publishing resumes");
			b->backoff_ms = BACKOFF_MIN_MS;
		}
		int broken = 0;
		for (size_t i = 0; i < b->n_zones && !broken && !atomic_load(&b->stop); i++) {
			/* Drain the zone's queue, a bounded number of batches. */
			for (int round = 0; round < DRAIN_ROUNDS_MAX; round++) {
				size_t taken = 0;
				zd_err e = batch_one(b, i, &taken);
				if (e == ZD_EDB || !ra_is_connected(b->ra)) {
					db_down(b, ra_error_get(b->ra));
					broken = 1;
					break;
				}
				if (e != ZD_OK) {
					/* A batch that keeps failing (a limit, a journal
					 * conflict) is retried with growing pauses, not
					 * in a loop that floods the log; a lost token is
					 * looked for again every few seconds. */
					nap(b, b->fail_backoff_ms);
					b->fail_backoff_ms = b->fail_backoff_ms * 2 > BACKOFF_MAX_MS
					                             ? BACKOFF_MAX_MS
					                             : b->fail_backoff_ms * 2;
					if (b->hsm_down && b->fail_backoff_ms > BACKOFF_HSM_MS)
						b->fail_backoff_ms = BACKOFF_HSM_MS;
					break;
				}
				b->fail_backoff_ms = BACKOFF_MIN_MS;
				/* A failed batch marked the database down; a good
				 * one over the same connection marks it up again. */
				if (!atomic_exchange(&b->db_up, 1))
					zd_log(ZD_LOG_NOTICE, "batch", NULL,
					       "database reachable again, publishing resumes");
				if (taken < b->cfg->limits.batch_max_changes)
					break;
			}
		}
		if (broken || atomic_load(&b->stop))
			continue;
		int notified = 0;
		uint32_t wait = b->cfg->limits.poll_interval_ms;
		if (wait > 200)
			wait = 200; /* stay responsive to stop; NOTIFY still wakes at once */
		for (uint32_t waited = 0; waited < b->cfg->limits.poll_interval_ms && !notified &&
		                          !atomic_load(&b->stop);
		     waited += wait) {
			if (ra_wait(b->ra, wait, &notified) != ZD_OK) {
				db_down(b, ra_error_get(b->ra));
				break;
			}
		}
	}
	return NULL;
}

zd_err
batch_start(struct batch *b)
{
	if (b->running)
		return ZD_OK;
	atomic_store(&b->stop, 0);
	if (pthread_create(&b->thread, NULL, loop, b) != 0)
		return ZD_ENOMEM;
	b->running = 1;
	pthread_setname_np(b->thread, "zd-batch"); /* top -H, perf */
	return ZD_OK;
}

void
batch_stop(struct batch *b)
{
	if (!b->running)
		return;
	atomic_store(&b->stop, 1);
	pthread_join(b->thread, NULL);
	b->running = 0;
}
