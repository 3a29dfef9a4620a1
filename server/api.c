#include "server/api.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/zd_clock.h"
#include "common/zd_log.h"
#include "common/zd_parse.h"
#include "common/zd_buf.h"
#include "common/zd_zonemd.h"
#include "hsm/dnskey.h"
#include "server/alarm.h"
#include "server/keyroll.h"
#include "server/batch.h"
#include "server/metrics.h"
#include "server/opdb.h"
#include "server/probe.h"
#include "server/signer.h"
#include "server/status_page.h"
#include "common/zd_keyplan.h"

#define DIGEST_CACHE    64  /* digests kept per zone */
#define NAMES_PER_TURN  512 /* names walked per loop turn */
#define TEXT_CHUNK      (256 * 1024)
#define API_WAITERS_MAX 16 /* clients sharing one digest computation */

struct digest_entry {
	uint64_t version; /* 0: empty */
	uint8_t digest[ZD_ZONEMD_LEN];
	uint64_t records;
};

struct zone_api {
	struct zone *z;
	struct digest_entry cache[DIGEST_CACHE];
	size_t next; /* round robin */
	/* Signature headroom: the earliest RRSIG expiration of a version, from
	 * a walk every HEADROOM_EVERY_MS (new signatures only expire later, so
	 * it stays a lower bound until the next walk). */
	int headroom_known;
	uint32_t min_expiration;   /* RRSIG expiration, seconds since the epoch */
	uint32_t headroom_serial;  /* of the version walked */
	uint64_t headroom_ms;      /* when that walk ended */
	uint64_t headroom_started; /* monotonic; 0 when no walk runs */
	uint64_t rrsigs;           /* RRSIGs in that version */
};

#define HEADROOM_EVERY_MS (5 * 60 * 1000)

enum job_kind { JOB_DIGEST, JOB_TEXT, JOB_HEADROOM };

struct job {
	struct api *a;
	struct zone_api *za;
	enum job_kind kind;
	struct evhttp_request *req; /* NULL once the client went away */
	struct evhttp_connection *evcon;
	/* JOB_DIGEST: further clients asking for the same version meanwhile */
	struct evhttp_request *more_req[API_WAITERS_MAX];
	struct evhttp_connection *more_evcon[API_WAITERS_MAX];
	size_t n_more;
	uint64_t version;
	uint32_t serial;
	struct store_cursor cur;
	struct event *ev;
	int started; /* JOB_TEXT: reply started */
	/* JOB_DIGEST: the digest and the current name's records */
	struct zd_zonemd *md;
	struct zd_crr_list name;
	ldns_rdf *owner; /* of the records in name */
	/* JOB_HEADROOM */
	uint32_t min_exp;
	uint64_t n_sigs;
	/* JOB_TEXT */
	struct evbuffer *out;
	ldns_buffer *lb;
	struct job *next;
};

/* A question answered by the database (opdb), waiting on its answer. */
enum dbq_kind {
	DBQ_TRACE,
	DBQ_HISTORY,
	DBQ_TRANSFERS,
	DBQ_REJECTED,
	DBQ_RETRY,
	DBQ_HOLD,
	DBQ_RELEASE,
	DBQ_COMPROMISED,
	DBQ_DS_SEEN,
	DBQ_DS_GONE,
};

struct dbq {
	struct api *a;
	struct zone_api *za;
	enum dbq_kind kind;
	struct evhttp_request *req; /* NULL once the client went away */
	struct evhttp_connection *evcon;
	char text[300];     /* DBQ_TRACE: the txid; DBQ_HISTORY: the name */
	char by[128];       /* DBQ_HOLD, DBQ_RELEASE */
	char why[256];      /* DBQ_HOLD, DBQ_COMPROMISED */
	uint16_t tag;       /* DBQ_COMPROMISED: the ZSK; DBQ_DS_SEEN: the KSK */
	uint64_t at;        /* DBQ_COMPROMISED, DBQ_DS_SEEN: reported at (DNSSEC clock) */
	uint64_t *versions; /* DBQ_HISTORY, newest first */
	size_t n_versions;
	int more;
	struct dbq *next;
};

struct api {
	struct event_base *base;
	const struct zd_config *cfg;
	struct opdb *opdb;
	const struct batch *batch; /* for the database and HSM state; may be NULL */
	struct probe *probe;       /* the secondaries' SOA; may be NULL */
	struct alarms *alarms;     /* may be NULL */
	struct event *alarm_ev;
	struct event *headroom_ev; /* the walk timer */
	char *token;               /* NULL: no call may change state */
	struct dbq *dbqs;
	struct zone_api *zones;
	size_t n_zones;
	struct evhttp *http;
	struct job *jobs;
	size_t n_jobs;
	struct evhttp_connection **conns;
	size_t n_conns;
	char **unix_paths; /* sockets we bound by path, to unlink */
	size_t n_unix;
	struct zd_ratelimit rl;
};

/* --- replies ---------------------------------------------------------- */

static void
reply_json(struct evhttp_request *req, int code, const char *reason, json_t *body)
{
	struct evbuffer *b = evbuffer_new();
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	if (b != NULL && text != NULL) {
		evbuffer_add(b, text, strlen(text));
		evbuffer_add(b, "\n", 1);
	}
	evhttp_send_reply(req, code, reason, b);
	free(text);
	if (b)
		evbuffer_free(b);
	json_decref(body);
}

static void
reply_error(struct evhttp_request *req, int code, const char *reason, const char *what)
{
	reply_json(req, code, reason, json_pack("{s:s}", "error", what));
}

/* --- connections ------------------------------------------------------ */

static void job_schedule(struct job *j);

static void
job_free(struct job *j)
{
	struct api *a = j->a;
	for (struct job **p = &a->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			a->n_jobs--;
			break;
		}
	if (j->ev)
		event_free(j->ev);
	if (j->kind == JOB_HEADROOM)
		j->za->headroom_started = 0;
	store_version_unpin(j->za->z->store, j->version);
	zd_zonemd_free(j->md);
	zd_crr_list_clear(&j->name);
	ldns_rdf_deep_free(j->owner);
	if (j->out)
		evbuffer_free(j->out);
	if (j->lb)
		ldns_buffer_free(j->lb);
	free(j);
}

static void
on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct api *a = arg;
	for (struct job *j = a->jobs; j; j = j->next) {
		if (j->evcon == evcon) {
			j->req = NULL; /* evhttp frees the request; the job ends next turn */
			job_schedule(j);
		}
		for (size_t k = 0; k < j->n_more; k++)
			if (j->more_evcon[k] == evcon)
				j->more_req[k] = NULL;
	}
	for (struct dbq *q = a->dbqs; q; q = q->next)
		if (q->evcon == evcon)
			q->req = NULL; /* answered into the void when the database replies */
	for (size_t i = 0; i < a->n_conns; i++)
		if (a->conns[i] == evcon) {
			a->conns[i] = a->conns[--a->n_conns];
			break;
		}
}

/* 1 when the request's connection may go on (counted, under the limit). */
static int
conn_admit(struct api *a, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon == NULL)
		return 0;
	for (size_t i = 0; i < a->n_conns; i++)
		if (a->conns[i] == evcon)
			return 1;
	if (a->n_conns >= a->cfg->api.max_connections)
		return 0;
	a->conns[a->n_conns++] = evcon;
	evhttp_connection_set_closecb(evcon, on_conn_close, a);
	return 1;
}

/* --- zones and serials -------------------------------------------------- */

static struct zone_api *
zone_find(struct api *a, const char *text)
{
	char *decoded = evhttp_uridecode(text, 0, NULL);
	char *name = decoded ? zd_name_normalize(decoded) : NULL;
	struct zone_api *found = NULL;

	for (size_t i = 0; name && i < a->n_zones; i++)
		if (strcmp(a->zones[i].z->cfg->name, name) == 0)
			found = &a->zones[i];
	free(name);
	free(decoded);
	return found;
}

/* Parse the query string into q, refusing parameters not in allowed
 * (NULL-terminated).  0 when answered with an error (q is then empty). */
static int
query_parse(struct evhttp_request *req, const char *query, const char *const *allowed,
            struct evkeyvalq *q)
{
	char why[128];

	q->tqh_first = NULL;
	q->tqh_last = &q->tqh_first;
	if (query != NULL && evhttp_parse_query_str(query, q) != 0) {
		evhttp_clear_headers(q);
		reply_error(req, 400, "Bad Request", "the query string does not parse");
		return 0;
	}
	for (struct evkeyval *kv = q->tqh_first; kv; kv = kv->next.tqe_next) {
		size_t i = 0;
		while (allowed[i] && strcmp(kv->key, allowed[i]) != 0)
			i++;
		if (allowed[i] == NULL) {
			snprintf(why, sizeof why, "unknown parameter '%.64s'", kv->key);
			evhttp_clear_headers(q);
			reply_error(req, 400, "Bad Request", why);
			return 0;
		}
	}
	return 1;
}

/* The kept version of serial text s (NULL: the published one).  0 when
 * answered with an error. */
static int
serial_lookup(struct evhttp_request *req, struct zone_api *za, const char *s, uint64_t *v,
              uint32_t *serial)
{
	struct store *st = za->z->store;
	char why[160];

	if (s == NULL) {
		*v = store_published_get(st);
		if (*v == 0 || store_serial_find(st, *v, serial) != ZD_OK) {
			reply_error(req, 404, "Not Found", "the zone has no published version yet");
			return 0;
		}
		return 1;
	}
	if (zd_parse_u32(s, 0, UINT32_MAX, serial) != ZD_OK) {
		reply_error(req, 400, "Bad Request", "serial must be a number 0..4294967295");
		return 0;
	}
	if (store_version_find(st, *serial, v) != ZD_OK) {
		snprintf(why, sizeof why,
		         "serial %u is not kept in memory (never published, or "
		         "older than the history kept)",
		         *serial);
		reply_json(req, 404, "Not Found",
		           json_pack("{s:s,s:I}", "error", why, "serial", (json_int_t)*serial));
		return 0;
	}
	return 1;
}

/* The version asked for (?serial=S, default the published one). */
static int
version_get(struct evhttp_request *req, struct zone_api *za, const char *query, uint64_t *v,
            uint32_t *serial)
{
	static const char *const allowed[] = {"serial", NULL};
	struct evkeyvalq q;

	if (!query_parse(req, query, allowed, &q))
		return 0;
	int ok = serial_lookup(req, za, evhttp_find_header(&q, "serial"), v, serial);
	evhttp_clear_headers(&q);
	return ok;
}

static json_t *
zone_json(struct zone_api *za)
{
	struct zone *z = za->z;
	struct store *st = z->store;
	uint64_t pub = store_published_get(st), oldest = store_oldest_get(st);
	uint32_t oldest_serial = 0;
	json_t *o;

	if (oldest && store_serial_find(st, oldest, &oldest_serial) != ZD_OK)
		oldest = 0;
	int is_signed = z->signer != NULL;
	if (is_signed && z->roll != NULL) { /* gone unsigned (dnssec unsign)? */
		struct keyroll_view rv;
		keyroll_view_get(z->roll, &rv);
		is_signed = rv.ustage != 3;
	}
	o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:b}", "zone", z->cfg->name, "serial",
	              (json_int_t)atomic_load(&z->serial), "versions_published",
	              (json_int_t)atomic_load(&z->versions_published), "last_publish_ms",
	              (json_int_t)atomic_load(&z->last_batch_ms), "delegations",
	              (json_int_t)atomic_load(&z->delegations), "versions_in_memory",
	              (json_int_t)(pub && oldest ? pub - oldest + 1 : 0), "signed", is_signed,
	              "held", atomic_load(&z->held) != 0);
	if (o && oldest)
		json_object_set_new(o, "oldest_serial_in_memory", json_integer(oldest_serial));
	return o;
}

/* --- the digest of a version ------------------------------------------ */

static struct digest_entry *
cache_find(struct zone_api *za, uint64_t v)
{
	for (size_t i = 0; i < DIGEST_CACHE; i++)
		if (za->cache[i].version == v)
			return &za->cache[i];
	return NULL;
}

static void
digest_reply(struct evhttp_request *req, struct zone_api *za, uint64_t v, uint32_t serial,
             const struct digest_entry *d)
{
	struct store *st = za->z->store;
	uint64_t pub = store_published_get(st), pub_ms = 0, next_ms = 0;
	uint32_t pub_serial = 0;
	char hex[2 * ZD_ZONEMD_LEN + 1];
	json_t *o;

	zd_hex_encode(d->digest, ZD_ZONEMD_LEN, hex);
	(void)store_serial_find(st, pub, &pub_serial);
	(void)store_version_time_find(st, v, &pub_ms);
	o = json_pack("{s:s,s:I,s:i,s:i,s:s,s:I,s:I,s:I,s:I}", "zone", za->z->cfg->name, "serial",
	              (json_int_t)serial, "scheme", ZD_ZONEMD_SIMPLE, "hash_algorithm",
	              ZD_ZONEMD_SHA384, "digest", hex, "records", (json_int_t)d->records,
	              "published_ms", (json_int_t)pub_ms, "latest_serial", (json_int_t)pub_serial,
	              "versions_after", (json_int_t)(pub > v ? pub - v : 0));
	/* When the next version replaced this one: a secondary still at this
	 * serial has been behind since then. */
	if (o && pub > v && store_version_time_find(st, v + 1, &next_ms) == ZD_OK)
		json_object_set_new(o, "superseded_ms", json_integer((json_int_t)next_ms));
	reply_json(req, 200, "OK", o);
}

/* store_walk hands out a name's records one by one, names in canonical
 * order: gather each name's, digest them when the next name starts. */
static zd_err
digest_rr(void *arg, const ldns_rr *rr)
{
	struct job *j = arg;
	const ldns_rdf *owner = ldns_rr_owner(rr);
	zd_err e;

	if (j->owner == NULL || ldns_dname_compare(j->owner, owner) != 0) {
		if ((e = zd_zonemd_list_add(j->md, &j->name)) != ZD_OK)
			return e;
		ldns_rdf_deep_free(j->owner);
		if ((j->owner = ldns_rdf_clone(owner)) == NULL)
			return ZD_ENOMEM;
	}
	return zd_crr_list_add(&j->name, rr);
}

static zd_err
text_rr(void *arg, const ldns_rr *rr)
{
	struct job *j = arg;
	ldns_buffer_clear(j->lb);
	if (ldns_rr2buffer_str(j->lb, rr) != LDNS_STATUS_OK || !ldns_buffer_status_ok(j->lb))
		return ZD_EMALFORMED;
	return evbuffer_add(j->out, ldns_buffer_begin(j->lb), ldns_buffer_position(j->lb)) == 0
	               ? ZD_OK
	               : ZD_ENOMEM;
}

static zd_err
headroom_rr(void *arg, const ldns_rr *rr)
{
	struct job *j = arg;
	if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_RRSIG || ldns_rr_rd_count(rr) < 9)
		return ZD_OK;
	uint32_t exp = ldns_rdf2native_int32(ldns_rr_rrsig_expiration(rr));
	if (j->n_sigs++ == 0 || exp < j->min_exp)
		j->min_exp = exp;
	return ZD_OK;
}

static void job_turn(evutil_socket_t fd, short what, void *arg);

static void
job_schedule(struct job *j)
{
	static const struct timeval zero = {0, 0};
	event_add(j->ev, &zero); /* a timer: the loop polls sockets in between */
}

static void
on_chunk_sent(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	job_schedule(arg);
}

static void
job_turn(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct store *st = j->za->z->store;
	const char *zn = j->za->z->cfg->name;
	zd_err e = ZD_OK;

	(void)fd;
	(void)what;
	if (j->req == NULL && j->kind == JOB_DIGEST) { /* promote a waiting client */
		for (size_t k = 0; k < j->n_more && j->req == NULL; k++)
			if (j->more_req[k] != NULL) {
				j->req = j->more_req[k];
				j->evcon = j->more_evcon[k];
				j->more_req[k] = NULL;
			}
	}
	if (j->kind == JOB_HEADROOM) {
		e = store_walk(st, j->version, &j->cur, NAMES_PER_TURN, headroom_rr, j);
		if (e == ZD_OK && !j->cur.done) {
			job_schedule(j);
			return;
		}
		struct zone_api *za = j->za;
		za->headroom_started = 0;
		if (e == ZD_OK) {
			za->headroom_known = j->n_sigs > 0;
			za->min_expiration = j->min_exp;
			za->headroom_serial = j->serial;
			za->headroom_ms = zd_wallclock_ms();
			za->rrsigs = j->n_sigs;
		} else {
			zd_log(ZD_LOG_WARNING, "api", zn,
			       "the signature headroom walk of serial %u failed: %s", j->serial,
			       zd_strerror(e));
		}
		job_free(j);
		return;
	}
	if (j->req == NULL) { /* the client went away */
		job_free(j);
		return;
	}
	if (j->kind == JOB_DIGEST) {
		e = store_walk(st, j->version, &j->cur, NAMES_PER_TURN, digest_rr, j);
		if (e == ZD_OK)
			e = zd_zonemd_list_add(j->md, &j->name);
		if (e == ZD_OK && !j->cur.done) {
			job_schedule(j);
			return;
		}
		struct digest_entry d = {.version = j->version};
		if (e == ZD_OK)
			e = zd_zonemd_final(j->md, d.digest);
		if (e != ZD_OK) {
			zd_log(ZD_LOG_ERROR, "api", zn, "digest of serial %u failed: %s", j->serial,
			       zd_strerror(e));
			reply_error(j->req, 500, "Internal Server Error",
			            "the digest failed (see log)");
			for (size_t k = 0; k < j->n_more; k++)
				if (j->more_req[k])
					reply_error(j->more_req[k], 500, "Internal Server Error",
					            "the digest failed (see log)");
		} else {
			d.records = zd_zonemd_count_get(j->md);
			struct zone_api *za = j->za;
			za->cache[za->next] = d;
			za->next = (za->next + 1) % DIGEST_CACHE;
			zd_log(ZD_LOG_INFO, "api", zn, "digest of serial %u: %llu records",
			       j->serial, (unsigned long long)d.records);
			digest_reply(j->req, za, j->version, j->serial, &d);
			for (size_t k = 0; k < j->n_more; k++)
				if (j->more_req[k])
					digest_reply(j->more_req[k], za, j->version, j->serial, &d);
		}
		job_free(j);
		return;
	}
	/* JOB_TEXT: one chunk per turn, the next once it was written. */
	if (!j->started) {
		evhttp_add_header(evhttp_request_get_output_headers(j->req), "Content-Type",
		                  "text/dns");
		evhttp_send_reply_start(j->req, 200, "OK");
		j->started = 1;
	}
	while (e == ZD_OK && !j->cur.done && evbuffer_get_length(j->out) < TEXT_CHUNK)
		e = store_walk(st, j->version, &j->cur, NAMES_PER_TURN, text_rr, j);
	if (e != ZD_OK) {
		/* Headers are gone: end the body short; the client sees no final
		 * SOA and a truncated chunked stream. */
		zd_log(ZD_LOG_ERROR, "api", zn, "zone text of serial %u failed: %s", j->serial,
		       zd_strerror(e));
		evhttp_send_reply_end(j->req);
		job_free(j);
		return;
	}
	if (evbuffer_get_length(j->out) > 0) {
		evhttp_send_reply_chunk_with_cb(j->req, j->out, on_chunk_sent, j);
		if (!j->cur.done)
			return; /* on_chunk_sent schedules the next turn */
	}
	evhttp_send_reply_end(j->req);
	job_free(j);
}

static void
job_start(struct api *a, struct evhttp_request *req, struct zone_api *za, enum job_kind kind,
          uint64_t v, uint32_t serial)
{
	struct job *j = NULL;

	for (j = a->jobs; kind == JOB_DIGEST && j; j = j->next)
		if (j->kind == JOB_DIGEST && j->za == za && j->version == v &&
		    j->n_more < API_WAITERS_MAX) {
			j->more_req[j->n_more] = req;
			j->more_evcon[j->n_more++] = evhttp_request_get_connection(req);
			return; /* answered when that computation ends */
		}
	if (kind == JOB_HEADROOM) {
		if (store_version_pin(za->z->store, v) != ZD_OK)
			return;
	} else if (a->n_jobs >= API_JOBS_MAX) {
		reply_error(req, 503, "Service Unavailable",
		            "too many digests or zone transfers running; try again");
		return;
	} else if (store_version_pin(za->z->store, v) != ZD_OK) {
		reply_error(req, 404, "Not Found", "that serial was just dropped from memory");
		return;
	}
	if ((j = calloc(1, sizeof *j)) == NULL)
		goto fail;
	*j = (struct job){.a = a,
	                  .za = za,
	                  .kind = kind,
	                  .req = req,
	                  .version = v,
	                  .serial = serial,
	                  .evcon = req ? evhttp_request_get_connection(req) : NULL};
	j->cur = (struct store_cursor)STORE_CURSOR_INIT;
	zd_crr_list_init(&j->name);
	j->ev = evtimer_new(a->base, job_turn, j);
	if (j->ev == NULL)
		goto fail_free;
	if (kind == JOB_DIGEST && zd_zonemd_new(store_apex_get(za->z->store), &j->md) != ZD_OK)
		goto fail_free;
	if (kind == JOB_TEXT &&
	    ((j->out = evbuffer_new()) == NULL || (j->lb = ldns_buffer_new(1024)) == NULL))
		goto fail_free;
	j->next = a->jobs;
	a->jobs = j;
	a->n_jobs++;
	if (kind == JOB_HEADROOM)
		za->headroom_started = zd_now_ms();
	job_schedule(j);
	return;
fail_free:
	job_free(j); /* not on the list yet; unpins v */
	if (req)
		reply_error(req, 500, "Internal Server Error", "out of memory");
	return;
fail:
	store_version_unpin(za->z->store, v);
	if (req)
		reply_error(req, 500, "Internal Server Error", "out of memory");
}

/* The headroom timer: walk each signed zone's published version whose last
 * walk is older than HEADROOM_EVERY_MS (or of another serial, at most once a
 * minute). */
static void
on_headroom_timer(evutil_socket_t fd, short what, void *arg)
{
	struct api *a = arg;
	uint64_t now = zd_wallclock_ms();
	(void)fd;
	(void)what;
	for (size_t i = 0; i < a->n_zones; i++) {
		struct zone_api *za = &a->zones[i];
		uint64_t v = store_published_get(za->z->store);
		uint32_t serial = 0;
		if (za->z->signer == NULL || za->headroom_started || v == 0 ||
		    store_serial_find(za->z->store, v, &serial) != ZD_OK)
			continue;
		uint64_t age = now - za->headroom_ms;
		if (za->headroom_ms != 0 && age < HEADROOM_EVERY_MS &&
		    (serial == za->headroom_serial || age < 60000))
			continue;
		job_start(a, NULL, za, JOB_HEADROOM, v, serial);
	}
}

void
api_batch_set(struct api *a, const struct batch *b, struct probe *p)
{
	a->batch = b;
	a->probe = p;
}

static json_t *status_json(struct api *a);

static void
on_alarm_timer(evutil_socket_t fd, short what, void *arg)
{
	struct api *a = arg;
	(void)fd;
	(void)what;
	json_t *st = status_json(a);
	if (st != NULL)
		alarms_evaluate(a->alarms, st, zd_wallclock_ms());
	json_decref(st);
}

zd_err
api_alarms_set(struct api *a, struct alarms *al)
{
	if (a == NULL) /* start-up failed before the API existed */
		return ZD_OK;
	a->alarms = al;
	if (al == NULL) {
		if (a->alarm_ev != NULL)
			event_del(a->alarm_ev);
		return ZD_OK;
	}
	uint32_t ms = a->cfg->alarms.interval_ms;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	if ((a->alarm_ev = event_new(a->base, -1, EV_PERSIST, on_alarm_timer, a)) == NULL ||
	    event_add(a->alarm_ev, &tv) != 0)
		return ZD_ENOMEM;
	return ZD_OK;
}

/* --- operator calls (docs/API.md "Operator calls") ------------------------ */

#define API_DIFF_MAX    100000 /* records in one diff answer; more: 413 */
#define API_HISTORY_MAX 1000   /* versions in one history answer */
#define API_LIST_MAX    10000  /* rows in one transfers/rejected answer */

/* A column that is a number, or JSON null. */
static json_t *
col_int(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return json_null();
	return json_integer((json_int_t)strtoll(PQgetvalue(r, row, col), NULL, 10));
}

static json_t *
col_text(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

/* ?limit=L (default def, at most API_LIST_MAX). 0 when answered. */
static int
limit_get(struct evhttp_request *req, const char *text, uint32_t def, uint32_t *out)
{
	*out = def;
	if (text != NULL && zd_parse_u32(text, 1, API_LIST_MAX, out) != ZD_OK) {
		reply_error(req, 400, "Bad Request", "limit must be a number 1..10000");
		return 0;
	}
	return 1;
}

/* --- diff: two kept versions, from the store -------------------------------- */

struct diff_out {
	json_t *removed, *added;
	ldns_buffer *lb;
};

static zd_err
diff_rr(json_t *arr, ldns_buffer *lb, const ldns_rr *rr)
{
	ldns_buffer_clear(lb);
	if (ldns_rr2buffer_str(lb, rr) != LDNS_STATUS_OK || !ldns_buffer_status_ok(lb))
		return ZD_EMALFORMED;
	size_t n = ldns_buffer_position(lb);
	const char *t = (const char *)ldns_buffer_begin(lb);
	while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == ' '))
		n--;
	return json_array_append_new(arr, json_stringn(t, n)) == 0 ? ZD_OK : ZD_ENOMEM;
}

static zd_err
diff_del(void *arg, const ldns_rr *rr)
{
	struct diff_out *d = arg;
	return diff_rr(d->removed, d->lb, rr);
}

static zd_err
diff_add(void *arg, const ldns_rr *rr)
{
	struct diff_out *d = arg;
	return diff_rr(d->added, d->lb, rr);
}

#define API_KEY_STEPS_MAX 1000 /* rollover steps in one keys answer */

/* GET .../keys[?days=N]: the signing keys on record and the rollover steps
 * of the next N days (default 365, at most 3650), docs/KEYS.md. */
static void
keys_answer(struct evhttp_request *req, struct zone_api *za, const char *query)
{
	static const char *const allowed[] = {"days", NULL};
	const struct zd_dnssec_config *d = &za->z->cfg->dnssec;
	struct evkeyvalq q;
	uint64_t days = 365;

	if (!query_parse(req, query, allowed, &q))
		return;
	const char *ds = evhttp_find_header(&q, "days");
	int ok = ds == NULL || zd_parse_u64(ds, 1, 3650, &days) == ZD_OK;
	evhttp_clear_headers(&q);
	if (!ok) {
		reply_error(req, 400, "Bad Request", "days must be a number from 1 to 3650");
		return;
	}
	if (za->z->signer == NULL) {
		reply_error(req, 409, "Conflict", "the zone is not signed");
		return;
	}
	uint16_t ksk, zsk;
	uint8_t alg;
	signer_keys_get(za->z->signer, &ksk, &zsk, &alg);
	struct keyroll_view rv = {.active = zsk,
	                          .active_at = za->z->zsk_active_s,
	                          .ksk = ksk,
	                          .ksk_at = za->z->ksk_active_s};
	if (za->z->roll != NULL)
		keyroll_view_get(za->z->roll, &rv); /* the batch thread moves the keys */
	zsk = rv.active;
	ksk = rv.ksk;
	uint64_t now = zd_clock_s();
	struct zd_key_step *v = calloc(API_KEY_STEPS_MAX, sizeof *v);
	struct zd_zsk_now zn = {
	        .active = rv.active_at,
	        .published = rv.extra == 1 ? rv.extra_at : 0,
	        .retired = rv.extra == 2 ? rv.extra_at : 0,
	        .compromised = rv.compromised_at,
	};
	struct zd_ksk_now kn = {.active = rv.ksk_at,
	                        .stage = (enum zd_ksk_stage)rv.kstage,
	                        .stage_at = rv.kstage_at,
	                        .compromised = rv.ksk_compromised_at};
	size_t n = v ? zd_key_plan_now(d, &zn, &kn, now, now + days * 86400, v, API_KEY_STEPS_MAX)
	             : SIZE_MAX;
	int alg_roll = rv.astage != 0 || rv.afrom != rv.ato;
	if ((d->unsign || alg_roll) && n != SIZE_MAX)
		n = 0; /* no rollover plan while the zone goes unsigned or changes algorithm:
		          the unsign and algorithm_roll objects say what comes */
	json_t *steps = json_array();
	if (n == SIZE_MAX || steps == NULL) {
		free(v);
		json_decref(steps);
		reply_error(req, 500, "Internal Server Error", "out of memory");
		return;
	}
	for (size_t i = 0; i < n && i < API_KEY_STEPS_MAX; i++)
		if (!(rv.offline && v[i].ksk)) /* an offline KSK is not rolled automatically */
			json_array_append_new(
			        steps,
			        json_pack("{s:I,s:s,s:i,s:s,s:s,s:s}", "at", (json_int_t)v[i].at,
			                  "role", v[i].ksk ? "KSK" : "ZSK", "generation",
			                  (int)v[i].gen, "event", zd_key_event_name(v[i].event),
			                  "formula", v[i].formula, "why", v[i].why));
	free(v);
	struct zd_key_intervals iv;
	zd_key_intervals_get(d, &iv);
	static const char *const extra_names[] = {NULL, "published", "retired"};
	json_t *roll = json_pack(
	        "{s:i,s:I,s:I,s:o,s:s,s:I,s:I,s:I}", "active", rv.active, "active_at",
	        (json_int_t)rv.active_at, "compromised_at", (json_int_t)rv.compromised_at, "other",
	        rv.extra == 0 ? json_null()
	                      : json_pack("{s:i,s:s,s:I}", "tag", rv.extra_tag, "state",
	                                  extra_names[rv.extra], "since", (json_int_t)rv.extra_at),
	        "next_step", keyroll_step_name(rv.due), "next_at", (json_int_t)rv.due_at,
	        "checked_at", (json_int_t)rv.checked_at, "steps", (json_int_t)rv.steps);
	json_t *kroll = json_pack(
	        "{s:i,s:I,s:I,s:o,s:s,s:I}", "active", ksk, "active_at", (json_int_t)rv.ksk_at,
	        "compromised_at", (json_int_t)rv.ksk_compromised_at, "other",
	        rv.kstage == 0 ? json_null()
	                       : json_pack("{s:i,s:s,s:I}", "tag", rv.ksk_next, "state",
	                                   keyroll_kstage_name(rv.kstage), "since",
	                                   (json_int_t)rv.kstage_at),
	        "next_step", keyroll_step_name(rv.kdue), "next_at", (json_int_t)rv.kdue_at);
	json_t *unsign = json_pack("{s:b,s:s,s:I,s:s,s:I}", "configured", d->unsign != 0, "stage",
	                           keyroll_ustage_name(rv.ustage), "since",
	                           (json_int_t)rv.ustage_at, "next_step",
	                           keyroll_step_name(rv.udue), "next_at", (json_int_t)rv.udue_at);
	json_t *aroll =
	        !alg_roll
	                ? json_null()
	                : json_pack("{s:i,s:i,s:s,s:I,s:o,s:o,s:s,s:I}", "from", (int)rv.afrom,
	                            "to", (int)rv.ato, "stage", keyroll_astage_name(rv.astage),
	                            "since", (json_int_t)rv.astage_at, "ksk",
	                            rv.astage ? json_integer(rv.aksk) : json_null(), "zsk",
	                            rv.astage ? json_integer(rv.azsk) : json_null(), "next_step",
	                            keyroll_step_name(rv.adue), "next_at", (json_int_t)rv.adue_at);
	uint64_t warn_at = rv.b_until > d->keys.bundle_warn ? rv.b_until - d->keys.bundle_warn : 0;
	json_t *offline =
	        !rv.offline ? json_null()
	                    : json_pack("{s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:o}", "made_at",
	                                (json_int_t)rv.b_made, "until", (json_int_t)rv.b_until,
	                                "warn_at", (json_int_t)warn_at, "running_out",
	                                rv.b_made == 0 || now >= warn_at, "slots",
	                                (json_int_t)rv.b_slots, "keysets", (json_int_t)rv.b_keysets,
	                                "ceremonies", (json_int_t)rv.c_done, "last_error",
	                                rv.c_err[0] ? json_string(rv.c_err) : json_null());
	reply_json(
	        req, 200, "OK",
	        json_pack("{s:s,s:I,s:i,s:[{s:s,s:i,s:I},{s:s,s:i,s:I}],s:o,s:o,s:o,s:o,s:o,s:{s:I,"
	                  "s:I,s:I,s:I,s:I,s:I,s:I},s:o,s:b}",
	                  "zone", za->z->cfg->name, "now", (json_int_t)now, "days", (int)days,
	                  "keys", "role", "KSK", "tag", ksk, "active", (json_int_t)rv.ksk_at,
	                  "role", "ZSK", "tag", zsk, "active", (json_int_t)rv.active_at, "zsk_roll",
	                  roll, "ksk_roll", kroll, "unsign", unsign, "algorithm_roll", aroll,
	                  "offline_ksk", offline, "intervals", "zsk_lifetime",
	                  (json_int_t)d->keys.zsk_lifetime, "ksk_lifetime",
	                  (json_int_t)d->keys.ksk_lifetime, "ipub", (json_int_t)iv.ipub, "iret",
	                  (json_int_t)iv.iret_z, "ipub_parent", (json_int_t)iv.ipub_p, "dreg",
	                  (json_int_t)iv.dreg, "algorithm", (json_int_t)alg, "steps", steps, "cut",
	                  n > API_KEY_STEPS_MAX));
}

static void
diff_answer(struct evhttp_request *req, struct zone_api *za, const char *query)
{
	static const char *const allowed[] = {"from", "to", NULL};
	struct evkeyvalq q;
	uint64_t vf, vt;
	uint32_t sf, stt;

	if (!query_parse(req, query, allowed, &q))
		return;
	const char *from = evhttp_find_header(&q, "from");
	if (from == NULL) {
		evhttp_clear_headers(&q);
		reply_error(req, 400, "Bad Request", "diff needs ?from=SERIAL (and &to=SERIAL)");
		return;
	}
	int ok = serial_lookup(req, za, from, &vf, &sf) &&
	         serial_lookup(req, za, evhttp_find_header(&q, "to"), &vt, &stt);
	evhttp_clear_headers(&q);
	if (!ok)
		return;
	struct diff_out d = {json_array(), json_array(), ldns_buffer_new(1024)};
	zd_err e = ZD_ENOMEM;
	if (vf > vt) {
		reply_error(req, 400, "Bad Request",
		            "from must have been published before to (serials are compared in the "
		            "order zonedist published them)");
		goto out;
	}
	if (d.removed && d.added && d.lb)
		e = vf == vt ? ZD_OK
		             : store_diff(za->z->store, vf, vt, API_DIFF_MAX, diff_del, diff_add,
		                          &d);
	if (e == ZD_ELIMIT) {
		reply_error(req, 413, "Payload Too Large",
		            "more than 100000 records differ: compare the two zones "
		            "(GET .../zone?serial=S) instead");
	} else if (e == ZD_ENOTFOUND) {
		reply_error(req, 404, "Not Found", "that serial was just dropped from memory");
	} else if (e != ZD_OK) {
		reply_error(req, 500, "Internal Server Error", "the difference failed (see log)");
	} else {
		reply_json(req, 200, "OK",
		           json_pack("{s:s,s:I,s:I,s:O,s:O}", "zone", za->z->cfg->name, "from",
		                     (json_int_t)sf, "to", (json_int_t)stt, "removed", d.removed,
		                     "added", d.added));
	}
out:
	json_decref(d.removed);
	json_decref(d.added);
	if (d.lb)
		ldns_buffer_free(d.lb);
}

/* --- questions for the database ------------------------------------------ */

static void dbq_done(void *arg, PGresult *res, const char *err);

static struct dbq *
dbq_new(struct api *a, struct evhttp_request *req, struct zone_api *za, enum dbq_kind kind)
{
	struct dbq *q = calloc(1, sizeof *q);
	if (q == NULL) {
		reply_error(req, 500, "Internal Server Error", "out of memory");
		return NULL;
	}
	q->a = a;
	q->za = za;
	q->kind = kind;
	q->req = req;
	q->evcon = evhttp_request_get_connection(req);
	return q;
}

static void
dbq_free(struct dbq *q)
{
	for (struct dbq **p = &q->a->dbqs; *p; p = &(*p)->next)
		if (*p == q) {
			*p = q->next;
			break;
		}
	free(q->versions);
	free(q);
}

/* Hand q to the database; on failure it is answered and freed. */
static void
dbq_ask(struct dbq *q, const char *sql, int n, const char *const *params)
{
	struct api *a = q->a;
	if (a->opdb == NULL) {
		reply_error(q->req, 503, "Service Unavailable", "no database connection here");
		dbq_free(q);
		return;
	}
	zd_err e = opdb_query(a->opdb, sql, n, params, dbq_done, q);
	if (e != ZD_OK) {
		reply_error(q->req, 503, "Service Unavailable",
		            e == ZD_ELIMIT ? "too many questions wait for the database; try again"
		                           : "out of memory");
		free(q->versions);
		free(q);
		return;
	}
	q->next = a->dbqs;
	a->dbqs = q;
}

static const char *const trace_sql =
        "WITH j AS (SELECT j.version, j.serial, "
        "floor(extract(epoch FROM coalesce(j.committed, j.created)) * 1000)::bigint AS c_ms, "
        "floor(extract(epoch FROM j.signed) * 1000)::bigint AS s_ms, "
        "(SELECT floor(extract(epoch FROM u.c) * 1000)::bigint FROM unnest(j.txids, "
        "j.txid_created) AS u(t, c) WHERE u.t = $2::bigint LIMIT 1) AS r_ms, "
        "(SELECT floor(extract(epoch FROM p.published) * 1000)::bigint FROM "
        "zonedist.publication p WHERE p.zone = j.zone AND p.version = j.version) AS p_ms, "
        "coalesce(j.committed, j.created) AS c_at "
        "FROM zonedist.journal j WHERE j.zone = $1 AND j.txids @> ARRAY[$2::bigint] "
        "ORDER BY j.version LIMIT 1) "
        "SELECT j.version, j.serial, j.r_ms, j.c_ms, j.s_ms, j.p_ms, "
        "floor(extract(epoch FROM t.at) * 1000)::bigint, t.secondary, t.tsig_key, t.kind, "
        "t.from_serial, t.to_serial, t.bytes, t.records, t.duration_ms "
        "FROM j LEFT JOIN LATERAL (SELECT DISTINCT ON (t.secondary, coalesce(t.tsig_key, '')) "
        "t.* FROM zonedist.transfer t WHERE t.zone = $1 AND t.result = 'ok' "
        "AND t.at >= j.c_at - interval '2 seconds' "
        /* to_serial >= serial, from_serial < serial (RFC 1982) */
        "AND ((t.to_serial - j.serial + 4294967296) % 4294967296) < 2147483648 "
        "AND (t.from_serial IS NULL OR ((j.serial - t.from_serial + 4294967296) % 4294967296) "
        "BETWEEN 1 AND 2147483647) "
        "ORDER BY t.secondary, coalesce(t.tsig_key, ''), t.at, t.id) t ON true "
        "ORDER BY t.at";

static void
trace_answer(struct dbq *q, PGresult *r)
{
	if (PQntuples(r) == 0) {
		reply_json(q->req, 404, "Not Found",
		           json_pack("{s:s,s:s}", "error",
		                     "no kept journal row carries that transaction (not consumed "
		                     "yet, or it changed nothing in this zone)",
		                     "txid", q->text));
		return;
	}
	json_t *transfers = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		if (PQgetisnull(r, i, 6))
			continue;
		json_array_append_new(transfers,
		                      json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:s}",
		                                "time_ms", col_int(r, i, 6), "secondary",
		                                col_text(r, i, 7), "key", col_text(r, i, 8), "kind",
		                                col_text(r, i, 9), "from_serial", col_int(r, i, 10),
		                                "to_serial", col_int(r, i, 11), "bytes",
		                                col_int(r, i, 12), "records", col_int(r, i, 13),
		                                "duration_ms", col_int(r, i, 14), "result", "ok"));
	}
	json_t *o = json_pack("{s:s,s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "zone", q->za->z->cfg->name,
	                      "txid", (json_int_t)strtoll(q->text, NULL, 10), "serial",
	                      col_int(r, 0, 1), "registry_ms", col_int(r, 0, 2), "committed_ms",
	                      col_int(r, 0, 3), "signed_ms", col_int(r, 0, 4), "published_ms",
	                      col_int(r, 0, 5), "transfers", transfers);
	/* a version kept in memory knows its publication time itself */
	uint64_t v = strtoull(PQgetvalue(r, 0, 0), NULL, 10), ms = 0;
	if (o && PQgetisnull(r, 0, 5) && store_version_time_find(q->za->z->store, v, &ms) == ZD_OK)
		json_object_set_new(o, "published_ms", json_integer((json_int_t)ms));
	reply_json(q->req, 200, "OK", o);
}

static void
history_answer(struct dbq *q, PGresult *r)
{
	struct store *st = q->za->z->store;
	json_t *changes = json_array();
	for (size_t i = 0; i < q->n_versions; i++) {
		uint64_t v = q->versions[i], ms = 0;
		uint32_t serial = 0;
		if (store_serial_find(st, v, &serial) != ZD_OK)
			continue; /* pruned meanwhile */
		(void)store_version_time_find(st, v, &ms);
		json_t *txids = json_array(), *reg = json_null();
		for (int k = 0; r && k < PQntuples(r); k++) {
			if (strtoull(PQgetvalue(r, k, 0), NULL, 10) != v)
				continue;
			json_decref(reg);
			reg = col_int(r, k, 2);
			json_t *arr = json_loads(PQgetvalue(r, k, 1), 0, NULL);
			if (json_is_array(arr))
				json_array_extend(txids, arr);
			json_decref(arr);
		}
		json_array_append_new(changes,
		                      json_pack("{s:I,s:I,s:o,s:o}", "serial", (json_int_t)serial,
		                                "published_ms", (json_int_t)ms, "txids", txids,
		                                "registry_ms", reg));
	}
	reply_json(q->req, 200, "OK",
	           json_pack("{s:s,s:s,s:o,s:b}", "zone", q->za->z->cfg->name, "name", q->text,
	                     "changes", changes, "truncated", q->more));
}

static void
list_answer(struct dbq *q, PGresult *r)
{
	json_t *arr = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		if (q->kind == DBQ_TRANSFERS)
			json_array_append_new(
			        arr, json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
			                       "time_ms", col_int(r, i, 0), "secondary",
			                       col_text(r, i, 1), "key", col_text(r, i, 2), "kind",
			                       col_text(r, i, 3), "from_serial", col_int(r, i, 4),
			                       "to_serial", col_int(r, i, 5), "bytes",
			                       col_int(r, i, 6), "records", col_int(r, i, 7),
			                       "duration_ms", col_int(r, i, 8), "result",
			                       col_text(r, i, 9), "reason", col_text(r, i, 10)));
		else
			json_array_append_new(
			        arr, json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "id", col_int(r, i, 0),
			                       "name", col_text(r, i, 1), "reason",
			                       col_text(r, i, 2), "row", col_text(r, i, 3), "txid",
			                       col_int(r, i, 4), "created_ms", col_int(r, i, 5)));
	}
	reply_json(q->req, 200, "OK",
	           json_pack("{s:s,s:o}", "zone", q->za->z->cfg->name,
	                     q->kind == DBQ_TRANSFERS ? "transfers" : "rejected", arr));
}

/* The replacement's schedule as the batch thread will run it
 * (server/keyroll.h): publish at once, or when a retired ZSK has gone;
 * activate Ipub later; remove the compromised ZSK Iret after that. */
static void
compromised_answer(struct dbq *q, PGresult *res)
{
	struct zone *z = q->za->z;
	const char *role = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
	if (strcmp(role, "ZSK") != 0 && strcmp(role, "KSK") != 0) {
		reply_error(
		        q->req, 409, "Conflict",
		        "that key is not the zone's active ZSK or KSK in zonedist.key, or it is "
		        "reported compromised already");
		return;
	}
	struct keyroll_view rv;
	struct zd_key_intervals iv;
	keyroll_view_get(z->roll, &rv);
	zd_key_intervals_get(&z->cfg->dnssec, &iv);
	if (role[0] == 'K') {
		/* a new KSK at once (unless a roll is in progress: it goes on), its
		 * CDS Ipub later, the old KSK out IpubP after the parent's DS */
		uint64_t publish = rv.kstage != 0 ? rv.kstage_at : q->at;
		uint64_t cds = rv.kstage >= 2 ? rv.kstage_at : publish + iv.ipub;
		if (cds < q->at)
			cds = q->at;
		uint64_t seen = rv.kstage == 3 ? rv.kstage_at : cds + iv.dreg;
		if (seen < q->at)
			seen = q->at;
		reply_json(q->req, 200, "OK",
		           json_pack("{s:s,s:s,s:i,s:I,s:s,s:I,s:I,s:I,s:I}", "zone", z->cfg->name,
		                     "role", "KSK", "tag", q->tag, "reported_at", (json_int_t)q->at,
		                     "by", q->by, "publish_at", (json_int_t)publish, "cds_at",
		                     (json_int_t)cds, "ds_expected_at", (json_int_t)seen,
		                     "settle_at", (json_int_t)(seen + iv.ipub_p)));
		return;
	}
	uint64_t publish = rv.extra == 1   ? rv.extra_at
	                   : rv.extra == 2 ? rv.extra_at + iv.iret_z
	                                   : q->at;
	if (publish < q->at && rv.extra != 1)
		publish = q->at;
	uint64_t activate = publish + iv.ipub;
	if (activate < q->at)
		activate = q->at;
	reply_json(q->req, 200, "OK",
	           json_pack("{s:s,s:s,s:i,s:I,s:s,s:I,s:I,s:I}", "zone", z->cfg->name, "role",
	                     "ZSK", "tag", q->tag, "reported_at", (json_int_t)q->at, "by", q->by,
	                     "publish_at", (json_int_t)publish, "activate_at", (json_int_t)activate,
	                     "remove_at", (json_int_t)(activate + iv.iret_z)));
}

/* When the DNSSEC records go, now that the parent serves no DS. */
static void
ds_gone_answer(struct dbq *q, PGresult *res)
{
	struct zone *z = q->za->z;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "1") != 0) {
		reply_error(q->req, 409, "Conflict",
		            "the zone is not waiting for its DS to go (dnssec unsign must be set, "
		            "its delete CDS/CDNSKEY published, and the DS not confirmed gone "
		            "already)");
		return;
	}
	struct zd_key_intervals iv;
	zd_key_intervals_get(&z->cfg->dnssec, &iv);
	reply_json(q->req, 200, "OK",
	           json_pack("{s:s,s:I,s:s,s:I}", "zone", z->cfg->name, "gone_at",
	                     (json_int_t)q->at, "by", q->by, "unsigned_at",
	                     (json_int_t)(q->at + iv.ipub_p)));
}

/* When the old KSK goes, now that the parent serves the new one's DS. */
static void
ds_seen_answer(struct dbq *q, PGresult *res)
{
	struct zone *z = q->za->z;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "1") != 0) {
		reply_error(q->req, 409, "Conflict",
		            "that KSK is not one whose DS the KSK rollover awaits (its CDS must be "
		            "published, and its DS not seen already)");
		return;
	}
	struct zd_key_intervals iv;
	zd_key_intervals_get(&z->cfg->dnssec, &iv);
	reply_json(q->req, 200, "OK",
	           json_pack("{s:s,s:i,s:I,s:s,s:I}", "zone", z->cfg->name, "tag", q->tag,
	                     "seen_at", (json_int_t)q->at, "by", q->by, "settle_at",
	                     (json_int_t)(q->at + iv.ipub_p)));
}

static void
dbq_done(void *arg, PGresult *res, const char *err)
{
	struct dbq *q = arg;
	struct api *a = q->a;
	size_t zi = (size_t)(q->za - a->zones);

	if (res != NULL && q->kind == DBQ_HOLD)
		opdb_hold_set(a->opdb, zi, 1, q->by, q->why);
	if (res != NULL && q->kind == DBQ_RELEASE)
		opdb_hold_set(a->opdb, zi, 0, NULL, NULL);
	if (res != NULL && q->kind == DBQ_COMPROMISED && PQntuples(res) == 1 &&
	    PQgetvalue(res, 0, 0)[0] != '\0') { /* the role of the key reported */
		/* committed: the next batch's snapshot sees it */
		keyroll_reload_ask(q->za->z->roll);
		zd_log(ZD_LOG_WARNING, "api", q->za->z->cfg->name,
		       "%s %u reported compromised by %s%s%s", PQgetvalue(res, 0, 0), q->tag, q->by,
		       q->why[0] ? ": " : "", q->why);
	}
	if (res != NULL && q->kind == DBQ_DS_GONE && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "1") == 0) {
		keyroll_reload_ask(q->za->z->roll);
		zd_log(ZD_LOG_NOTICE, "api", q->za->z->cfg->name,
		       "unsigning: the parent's DS confirmed gone by %s%s%s", q->by,
		       q->why[0] ? ": " : "", q->why);
	}
	if (res != NULL && q->kind == DBQ_DS_SEEN && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "1") == 0) {
		keyroll_reload_ask(q->za->z->roll);
		zd_log(ZD_LOG_NOTICE, "api", q->za->z->cfg->name,
		       "the parent's DS of KSK %u confirmed by %s%s%s", q->tag, q->by,
		       q->why[0] ? ": " : "", q->why);
	}
	if (res != NULL && (q->kind == DBQ_HOLD || q->kind == DBQ_RELEASE))
		zd_log(ZD_LOG_NOTICE, "api", q->za->z->cfg->name, "%s by %s%s%s",
		       q->kind == DBQ_HOLD ? "publication held" : "publication released", q->by,
		       q->why[0] ? ": " : "", q->why);
	if (q->req == NULL) {
		dbq_free(q);
		return;
	}
	if (res == NULL) {
		zd_log(ZD_LOG_WARNING, "api", q->za->z->cfg->name, "database question failed: %s",
		       err ? err : "?");
		reply_json(q->req, 503, "Service Unavailable",
		           json_pack("{s:s,s:s}", "error", "the database did not answer", "reason",
		                     err ? err : "?"));
		dbq_free(q);
		return;
	}
	switch (q->kind) {
	case DBQ_TRACE:
		trace_answer(q, res);
		break;
	case DBQ_HISTORY:
		history_answer(q, res);
		break;
	case DBQ_TRANSFERS:
	case DBQ_REJECTED:
		list_answer(q, res);
		break;
	case DBQ_RETRY:
		reply_json(q->req, 200, "OK",
		           json_pack("{s:s,s:o,s:o}", "zone", q->za->z->cfg->name, "retried",
		                     col_int(res, 0, 0), "names", col_int(res, 0, 1)));
		zd_log(ZD_LOG_NOTICE, "api", q->za->z->cfg->name,
		       "rejected rows retried by %s: %s rows, %s names", q->by,
		       PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
		break;
	case DBQ_HOLD:
		reply_json(q->req, 200, "OK",
		           json_pack("{s:s,s:b,s:s}", "zone", q->za->z->cfg->name, "held", 1,
		                     "held_by", q->by));
		break;
	case DBQ_RELEASE:
		reply_json(q->req, 200, "OK",
		           json_pack("{s:s,s:b,s:s}", "zone", q->za->z->cfg->name, "held", 0,
		                     "released_by", q->by));
		break;
	case DBQ_DS_SEEN:
		ds_seen_answer(q, res);
		break;
	case DBQ_DS_GONE:
		ds_gone_answer(q, res);
		break;
	case DBQ_COMPROMISED:
		compromised_answer(q, res);
		break;
	}
	dbq_free(q);
}

static void
trace_start(struct api *a, struct evhttp_request *req, struct zone_api *za, const char *query)
{
	static const char *const allowed[] = {"txid", NULL};
	struct evkeyvalq qs;
	uint64_t txid;

	if (!query_parse(req, query, allowed, &qs))
		return;
	const char *t = evhttp_find_header(&qs, "txid");
	if (t == NULL || zd_parse_u64(t, 1, INT64_MAX, &txid) != ZD_OK) {
		evhttp_clear_headers(&qs);
		reply_error(req, 400, "Bad Request",
		            "trace needs ?txid=N (a registry txid_current())");
		return;
	}
	evhttp_clear_headers(&qs);
	struct dbq *q = dbq_new(a, req, za, DBQ_TRACE);
	if (q == NULL)
		return;
	snprintf(q->text, sizeof q->text, "%" PRIu64, txid);
	const char *params[2] = {za->z->cfg->name, q->text};
	dbq_ask(q, trace_sql, 2, params);
}

static void
history_start(struct api *a, struct evhttp_request *req, struct zone_api *za, const char *query)
{
	static const char *const allowed[] = {"name", "limit", NULL};
	struct evkeyvalq qs;
	uint32_t limit;

	if (!query_parse(req, query, allowed, &qs))
		return;
	const char *name = evhttp_find_header(&qs, "name");
	ldns_rdf *owner = NULL;
	if (!limit_get(req, evhttp_find_header(&qs, "limit"), 100, &limit)) {
		evhttp_clear_headers(&qs);
		return;
	}
	if (limit > API_HISTORY_MAX)
		limit = API_HISTORY_MAX;
	char *norm = name ? zd_name_normalize(name) : NULL;
	if (norm == NULL || ldns_str2rdf_dname(&owner, norm) != LDNS_STATUS_OK ||
	    (!ldns_dname_is_subdomain(owner, store_apex_get(za->z->store)) &&
	     ldns_dname_compare(owner, store_apex_get(za->z->store)) != 0)) {
		evhttp_clear_headers(&qs);
		free(norm);
		ldns_rdf_deep_free(owner);
		reply_error(req, 400, "Bad Request",
		            "history needs ?name=OWNER, a name in the zone");
		return;
	}
	evhttp_clear_headers(&qs);
	ldns_dname2canonical(owner);
	struct dbq *q = dbq_new(a, req, za, DBQ_HISTORY);
	if (q == NULL || (q->versions = calloc(limit, sizeof *q->versions)) == NULL) {
		if (q)
			reply_error(req, 500, "Internal Server Error", "out of memory");
		free(q);
		free(norm);
		ldns_rdf_deep_free(owner);
		return;
	}
	snprintf(q->text, sizeof q->text, "%s", norm); /* <= 255 octets, escaped <= 4x: cut */
	zd_err e = store_name_history(za->z->store, owner, q->versions, limit, &q->n_versions,
	                              &q->more);
	free(norm);
	ldns_rdf_deep_free(owner);
	if (e != ZD_OK) {
		reply_error(req, 500, "Internal Server Error", "reading the history failed");
		free(q->versions);
		free(q);
		return;
	}
	/* the journal's txids of those versions */
	struct zd_buf lit;
	zd_buf_init(&lit, (size_t)1 << 20);
	if ((e = zd_buf_int_array(&lit, (const int64_t *)q->versions, q->n_versions)) != ZD_OK) {
		zd_buf_clear(&lit);
		reply_error(req, 500, "Internal Server Error", "out of memory");
		free(q->versions);
		free(q);
		return;
	}
	const char *params[2] = {za->z->cfg->name, (const char *)lit.data};
	dbq_ask(q,
	        "SELECT version, array_to_json(txids)::text, (SELECT floor(extract(epoch FROM "
	        "min(u)) * 1000)::bigint FROM unnest(txid_created) u) FROM zonedist.journal "
	        "WHERE zone = $1 AND version = ANY($2::bigint[])",
	        2, params);
	zd_buf_clear(&lit);
}

static void
list_start(struct api *a, struct evhttp_request *req, struct zone_api *za, const char *query,
           enum dbq_kind kind)
{
	static const char *const allowed[] = {"limit", NULL};
	struct evkeyvalq qs;
	uint32_t limit;
	char lb[16];

	if (!query_parse(req, query, allowed, &qs))
		return;
	int ok = limit_get(req, evhttp_find_header(&qs, "limit"), 100, &limit);
	evhttp_clear_headers(&qs);
	if (!ok)
		return;
	struct dbq *q = dbq_new(a, req, za, kind);
	if (q == NULL)
		return;
	snprintf(lb, sizeof lb, "%" PRIu32, limit);
	const char *params[2] = {za->z->cfg->name, lb};
	dbq_ask(q,
	        kind == DBQ_TRANSFERS
	                ? "SELECT floor(extract(epoch FROM at) * 1000)::bigint, secondary, "
	                  "tsig_key, kind, from_serial, to_serial, bytes, records, duration_ms, "
	                  "result, reason FROM zonedist.transfer WHERE zone = $1 ORDER BY at "
	                  "DESC, id DESC LIMIT $2::int"
	                : "SELECT id, name, reason, row_data, txid, floor(extract(epoch FROM "
	                  "created) * 1000)::bigint FROM zonedist.rejected WHERE zone = $1 "
	                  "ORDER BY id DESC LIMIT $2::int",
	        2, params);
}

/* --- state changes: the token, a JSON body ---------------------------------- */

/* 1 when the request carries the token; otherwise answered (401/403). */
static int
authorized(struct api *a, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	static const char bearer[] = "Bearer ";

	if (a->token == NULL) {
		reply_error(req, 403, "Forbidden",
		            "this zonedistd has no api token-file: no call may change state");
		return 0;
	}
	if (h == NULL || strncmp(h, bearer, sizeof bearer - 1) != 0 ||
	    strlen(h + sizeof bearer - 1) != strlen(a->token) ||
	    CRYPTO_memcmp(h + sizeof bearer - 1, a->token, strlen(a->token)) != 0) {
		uint32_t dropped;
		if (zd_ratelimit_ok(&a->rl, zd_now_ms(), &dropped))
			zd_log(ZD_LOG_WARNING, "api", NULL,
			       "a state change without the right token was refused");
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		                  "Bearer");
		reply_error(req, 401, "Unauthorized",
		            "a state change needs Authorization: Bearer TOKEN (api token-file)");
		return 0;
	}
	return 1;
}

/* The request's JSON object body ({} when empty).  NULL when answered. */
static json_t *
body_get(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = in ? evbuffer_get_length(in) : 0;
	json_error_t je;

	if (n == 0)
		return json_object();
	const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
	json_t *o = p ? json_loadb(p, n, JSON_REJECT_DUPLICATES, &je) : NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		reply_error(req, 400, "Bad Request", "the body must be a JSON object");
		return NULL;
	}
	return o;
}

/* A string member of at most cap - 1 bytes, no control characters; def
 * when absent.  0 when answered. */
static int
body_text(struct evhttp_request *req, json_t *o, const char *key, const char *def, char *out,
          size_t cap)
{
	json_t *v = json_object_get(o, key);
	char why[128];
	if (v == NULL) {
		if (def == NULL) {
			snprintf(why, sizeof why, "the body needs \"%s\"", key);
			reply_error(req, 400, "Bad Request", why);
			return 0;
		}
		snprintf(out, cap, "%s", def);
		return 1;
	}
	const char *t = json_string_value(v);
	size_t n = t ? json_string_length(v) : 0;
	int bad = t == NULL || n == 0 || n >= cap;
	for (size_t i = 0; !bad && i < n; i++)
		bad = (unsigned char)t[i] < 0x20 || t[i] == 0x7f;
	if (bad) {
		snprintf(why, sizeof why, "\"%s\" must be a string of 1..%zu printable bytes", key,
		         cap - 1);
		reply_error(req, 400, "Bad Request", why);
		return 0;
	}
	memcpy(out, t, n + 1);
	return 1;
}

/* POST .../keys/compromised {"tag", "by", "reason"}: the active ZSK is
 * compromised; it is replaced as fast as caches allow.  POST
 * .../keys/ds-seen {"tag", "by", "reason"}: the parent serves the DS of the
 * KSK the roll awaits. */
static void
key_report_start(struct api *a, struct evhttp_request *req, struct zone_api *za, enum dbq_kind kind)
{
	if (!authorized(a, req))
		return;
	if (za->z->roll == NULL) {
		reply_error(req, 409, "Conflict", "the zone is not signed");
		return;
	}
	json_t *body = body_get(req);
	if (body == NULL)
		return;
	struct dbq *q = dbq_new(a, req, za, kind);
	if (q == NULL) {
		json_decref(body);
		return;
	}
	json_t *tv = json_object_get(body, "tag"); /* ds-gone: the zone's DS, no tag */
	json_int_t tag_v = kind == DBQ_DS_GONE ? 0 : json_integer_value(tv);
	if ((kind != DBQ_DS_GONE && !json_is_integer(tv)) || tag_v < 0 || tag_v > 65535) {
		json_decref(body);
		free(q);
		reply_error(req, 400, "Bad Request", "\"tag\" must be the key tag (0..65535)");
		return;
	}
	if (!body_text(req, body, "by", NULL, q->by, sizeof q->by) ||
	    !body_text(req, body, "reason", "", q->why, sizeof q->why)) {
		json_decref(body);
		free(q);
		return;
	}
	q->tag = (uint16_t)tag_v;
	json_decref(body); /* tv with it */
	q->at = zd_clock_s();
	char tag[8], at[24];
	snprintf(tag, sizeof tag, "%u", q->tag);
	snprintf(at, sizeof at, "%" PRIu64, q->at);
	const char *params[5] = {za->z->cfg->name, tag, at, q->by, q->why};
	if (kind == DBQ_DS_GONE) {
		const char *p4[4] = {za->z->cfg->name, at, q->by, q->why};
		dbq_ask(q,
		        "WITH u AS (UPDATE zonedist.unsign SET ds_gone = to_timestamp($2), "
		        "ds_gone_by = $3 WHERE zone = $1 AND ds_gone IS NULL RETURNING 1), a AS "
		        "(INSERT INTO zonedist.audit (zone, action, by, detail) SELECT $1, "
		        "'ds-gone', $3, $4 WHERE EXISTS (SELECT 1 FROM u) RETURNING 1) SELECT "
		        "(SELECT count(*) FROM u)",
		        4, p4);
		return;
	}
	if (kind == DBQ_DS_SEEN) {
		dbq_ask(q,
		        "WITH k AS (UPDATE zonedist.key SET ds_seen = to_timestamp($3) WHERE zone "
		        "= $1 AND role = 'KSK' AND tag = $2::integer AND state = 'ready' AND "
		        "ds_seen IS NULL RETURNING 1), g AS (UPDATE zonedist.algroll SET ds_seen = "
		        "to_timestamp($3), ds_seen_by = $4 WHERE zone = $1 AND ksk = $2::integer "
		        "AND done IS NULL AND cds IS NOT NULL AND ds_seen IS NULL RETURNING 1), a "
		        "AS (INSERT INTO zonedist.audit (zone, action, by, detail) SELECT $1, "
		        "'ds-seen', $4, 'KSK ' || $2 || ': ' || $5 WHERE EXISTS (SELECT 1 FROM k) "
		        "OR EXISTS (SELECT 1 FROM g) RETURNING 1) SELECT (SELECT count(*) FROM k) "
		        "+ "
		        "(SELECT count(*) FROM g)",
		        5, params);
		return;
	}
	dbq_ask(q,
	        "WITH k AS (UPDATE zonedist.key SET compromised = to_timestamp($3) WHERE zone = "
	        "$1 AND role IN ('ZSK', 'KSK') AND tag = $2::integer AND state = 'active' AND "
	        "compromised IS NULL RETURNING role), a AS (INSERT INTO zonedist.audit (zone, "
	        "action, by, detail) SELECT $1, lower(k.role) || '-compromised', $4, k.role || "
	        "' ' || $2 || ': ' || $5 FROM k RETURNING 1) SELECT coalesce((SELECT min(role) "
	        "FROM k), '')",
	        5, params);
}

static void
change_start(struct api *a, struct evhttp_request *req, struct zone_api *za, enum dbq_kind kind)
{
	if (!authorized(a, req))
		return;
	json_t *body = body_get(req);
	if (body == NULL)
		return;
	struct dbq *q = dbq_new(a, req, za, kind);
	if (q == NULL) {
		json_decref(body);
		return;
	}
	const char *zn = za->z->cfg->name;
	if (!body_text(req, body, "by", kind == DBQ_RETRY ? "api" : NULL, q->by, sizeof q->by) ||
	    !body_text(req, body, "reason", "", q->why, sizeof q->why)) {
		json_decref(body);
		free(q);
		return;
	}
	if (kind == DBQ_HOLD) {
		const char *params[3] = {zn, q->by, q->why};
		dbq_ask(q,
		        "WITH h AS (INSERT INTO zonedist.hold (zone, held_by, reason) VALUES ($1, "
		        "$2, "
		        "$3) ON CONFLICT (zone) DO UPDATE SET held_by = EXCLUDED.held_by, reason = "
		        "EXCLUDED.reason, held_at = now() RETURNING 1), a AS (INSERT INTO "
		        "zonedist.audit (zone, action, by, detail) VALUES ($1, 'hold', $2, $3) "
		        "RETURNING 1) SELECT (SELECT count(*) FROM h), (SELECT count(*) FROM a)",
		        3, params);
	} else if (kind == DBQ_RELEASE) {
		/* an operator hold goes; a version held by the sanity limits gets
		 * its release (used by the next batch, zonedist.release) */
		const char *params[3] = {zn, q->by, atomic_load(&za->z->held) ? "1" : "0"};
		dbq_ask(q,
		        "WITH h AS (DELETE FROM zonedist.hold WHERE zone = $1 RETURNING 1), r AS "
		        "(INSERT INTO zonedist.release (zone, released_by) SELECT $1, $2 WHERE "
		        "$3 = '1' RETURNING 1), a AS (INSERT INTO zonedist.audit (zone, action, "
		        "by) "
		        "VALUES ($1, 'release', $2) RETURNING 1) SELECT (SELECT count(*) FROM h), "
		        "(SELECT count(*) FROM r), (SELECT count(*) FROM a)",
		        3, params);
	} else {
		json_t *ids = json_object_get(body, "ids");
		struct zd_buf lit;
		zd_err e = ZD_OK;
		zd_buf_init(&lit, (size_t)1 << 20);
		int64_t idv[API_LIST_MAX];
		size_t n_ids = 0;
		if (ids != NULL) {
			size_t i;
			json_t *v;
			if (!json_is_array(ids) || json_array_size(ids) > API_LIST_MAX)
				e = ZD_EMALFORMED;
			json_array_foreach(ids, i, v)
			{
				if (e == ZD_OK && !json_is_integer(v))
					e = ZD_EMALFORMED;
				if (e == ZD_OK)
					idv[n_ids++] = (int64_t)json_integer_value(v);
			}
			if (e == ZD_OK)
				e = zd_buf_int_array(&lit, idv, n_ids);
		}
		if (e != ZD_OK) {
			zd_buf_clear(&lit);
			json_decref(body);
			free(q);
			reply_error(req, 400, "Bad Request",
			            "\"ids\" must be an array of at most 10000 row ids");
			return;
		}
		const char *params[3] = {zn, ids ? (const char *)lit.data : NULL, q->by};
		/* Each row's name is marked changed again (a new outbox row), and
		 * the row goes, in one transaction: the next batch reads the
		 * registry's data anew. */
		dbq_ask(q,
		        "WITH d AS (DELETE FROM zonedist.rejected WHERE zone = $1 AND name <> '' "
		        "AND "
		        "($2::bigint[] IS NULL OR id = ANY($2::bigint[])) RETURNING name), n AS "
		        "(SELECT DISTINCT name FROM d), t AS (SELECT zonedist.touch_many($1, "
		        "(SELECT array_agg(name) FROM n))), a AS (INSERT INTO zonedist.audit "
		        "(zone, "
		        "action, by, detail) SELECT $1, 'retry', $3, count(*)::text || ' rows' "
		        "FROM d "
		        "RETURNING 1) SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM n), "
		        "(SELECT count(*) FROM t), (SELECT count(*) FROM a)",
		        3, params);
		zd_buf_clear(&lit);
	}
	json_decref(body);
}

/* --- status ------------------------------------------------------------------- */

static json_t *
probe_json(struct api *a, size_t zi, const struct opdb_secondary *s)
{
	struct probe_state ps;
	struct store *st = a->zones[zi].z->store;
	uint64_t v = 0, pub = store_published_get(st);
	if (s->notify_index < 0 || probe_get(a->probe, zi, (size_t)s->notify_index, &ps) != ZD_OK ||
	    !ps.known)
		return json_null();
	/* versions behind, when the serial it serves is kept */
	json_t *lag = ps.has_serial && store_version_find(st, ps.serial, &v) == ZD_OK && v <= pub
	                      ? json_integer((json_int_t)(pub - v))
	                      : json_null();
	return json_pack("{s:b,s:o,s:o,s:I,s:I,s:i,s:o}", "reachable", ps.reachable, "serial",
	                 ps.has_serial ? json_integer(ps.serial) : json_null(), "lag", lag,
	                 "checked_ms", (json_int_t)ps.checked_ms, "since_ms",
	                 (json_int_t)ps.since_ms, "failures", (int)ps.failures, "error",
	                 ps.error[0] ? json_string(ps.error) : json_null());
}

static json_t *
secondary_json(const struct opdb_secondary *s, uint64_t pub, struct store *st)
{
	json_t *o = json_pack("{s:s,s:o,s:b}", "address", s->address, "key",
	                      s->key[0] ? json_string(s->key) : json_null(), "notify", s->notify);
	if (o == NULL)
		return NULL;
	if (s->transferred) {
		uint64_t v = 0;
		json_object_set_new(o, "last_serial", json_integer(s->last_serial));
		json_object_set_new(o, "last_transfer_ms",
		                    json_integer((json_int_t)s->last_transfer_ms));
		json_object_set_new(o, "last_kind", json_string(s->last_kind));
		json_object_set_new(o, "lag",
		                    store_version_find(st, s->last_serial, &v) == ZD_OK && pub >= v
		                            ? json_integer((json_int_t)(pub - v))
		                            : json_null());
	} else {
		json_object_set_new(o, "last_serial", json_null());
		json_object_set_new(o, "lag", json_null());
	}
	json_object_set_new(o, "check",
	                    s->checked
	                            ? json_pack("{s:s,s:i,s:o,s:I,s:s}", "state", s->check_state,
	                                        "severity", s->check_severity, "serial",
	                                        s->check_has_serial ? json_integer(s->check_serial)
	                                                            : json_null(),
	                                        "checked_ms", (json_int_t)s->checked_ms, "message",
	                                        s->check_message)
	                            : json_null());
	return o;
}

/* Seconds the published signatures stay valid beyond SOA expire + the
 * largest TTL (what the lifetime guard promises); null until walked. */
static int64_t
headroom_s(const struct zone_api *za)
{
	const struct zd_zone_config *zc = za->z->cfg;
	return (int64_t)za->min_expiration - (int64_t)(zd_wallclock_ms() / 1000) -
	       (int64_t)zc->soa_expire - (int64_t)zc->dnssec.max_ttl;
}

static json_t *
headroom_json(const struct zone_api *za)
{
	if (za->z->signer == NULL || !za->headroom_known)
		return json_null();
	return json_pack("{s:I,s:I,s:I,s:I,s:I}", "seconds", (json_int_t)headroom_s(za),
	                 "min_expiration", (json_int_t)za->min_expiration, "serial",
	                 (json_int_t)za->headroom_serial, "walked_ms", (json_int_t)za->headroom_ms,
	                 "rrsigs", (json_int_t)za->rrsigs);
}

static json_t *
zone_status_json(struct api *a, struct zone_api *za)
{
	struct zone *z = za->z;
	json_t *o = zone_json(za);
	struct opdb_zone_status os = {.pending_changes = -1, .rejected = -1};
	struct opdb_secondary *secs = calloc(OPDB_SECONDARIES_MAX, sizeof *secs);
	size_t n = 0;
	uint64_t pub = store_published_get(z->store), pub_ms = 0;

	if (o == NULL || secs == NULL) {
		free(secs);
		return o;
	}
	if (a->opdb)
		opdb_zone_status_get(a->opdb, (size_t)(za - a->zones), &os, secs,
		                     OPDB_SECONDARIES_MAX, &n);
	(void)store_version_time_find(z->store, pub, &pub_ms);
	json_object_set_new(o, "published_ms", json_integer((json_int_t)pub_ms));
	json_object_set_new(o, "last_latency_ms",
	                    atomic_load(&z->latency_count)
	                            ? json_integer((json_int_t)atomic_load(&z->last_latency_ms))
	                            : json_null());
	json_object_set_new(o, "pending_changes",
	                    os.pending_changes >= 0 ? json_integer(os.pending_changes)
	                                            : json_null());
	json_object_set_new(o, "rejected",
	                    os.rejected >= 0 ? json_integer(os.rejected) : json_null());
	json_object_set_new(o, "held",
	                    os.held                 ? json_string("operator")
	                    : atomic_load(&z->held) ? json_string("sanity")
	                                            : json_false());
	json_object_set_new(o, "held_by", os.held ? json_string(os.held_by) : json_null());
	json_object_set_new(o, "held_reason",
	                    os.held                 ? json_string(os.held_reason)
	                    : atomic_load(&z->held) ? json_string("held by the sanity limits "
	                                                          "(see the log)")
	                                            : json_null());
	json_object_set_new(o, "gate_failures",
	                    json_integer((json_int_t)atomic_load(&z->gate_failures)));
	json_object_set_new(o, "signatures_last",
	                    json_integer((json_int_t)atomic_load(&z->sigs_last)));
	/* signing: keys, the token, the signature headroom */
	uint64_t down_for = 0;
	int hsm = a->batch ? batch_hsm_state(a->batch, &down_for) : -1;
	if (z->signer == NULL)
		hsm = -1;
	json_object_set_new(o, "hsm",
	                    hsm < 0 ? json_pack("{s:s}", "state", "none")
	                    : hsm   ? json_pack("{s:s}", "state", "ok")
	                            : json_pack("{s:s,s:I}", "state", "down", "down_for_ms",
	                                        (json_int_t)down_for));
	if (z->signer != NULL) {
		uint16_t ksk, zsk;
		uint8_t alg;
		signer_keys_get(z->signer, &ksk, &zsk, &alg);
		json_t *k = json_pack("{s:i,s:i,s:i}", "algorithm", alg, "ksk_tag", ksk, "zsk_tag",
		                      zsk);
		if (k != NULL && z->roll != NULL) {
			/* the ZSK rollover, on the DNSSEC clock */
			struct keyroll_view rv;
			keyroll_view_get(z->roll, &rv);
			json_object_set_new(k, "clock", json_integer((json_int_t)zd_clock_s()));
			if (rv.extra != 0)
				json_object_set_new(
				        k, "zsk_other",
				        json_pack("{s:i,s:s}", "tag", rv.extra_tag, "state",
				                  rv.extra == 1 ? "published" : "retired"));
			if (rv.due != KEYROLL_NONE)
				json_object_set_new(k, "zsk_next",
				                    json_pack("{s:s,s:I}", "step",
				                              keyroll_step_name(rv.due), "at",
				                              (json_int_t)rv.due_at));
			if (rv.kstage != 0) /* and the KSK rollover */
				json_object_set_new(k, "ksk_other",
				                    json_pack("{s:i,s:s}", "tag", rv.ksk_next,
				                              "state",
				                              keyroll_kstage_name(rv.kstage)));
			if (rv.kdue != KEYROLL_NONE)
				json_object_set_new(k, "ksk_next",
				                    json_pack("{s:s,s:I}", "step",
				                              keyroll_step_name(rv.kdue), "at",
				                              (json_int_t)rv.kdue_at));
			if (rv.astage != 0 || rv.afrom != rv.ato) /* changing algorithm */
				json_object_set_new(k, "algorithm_roll",
				                    json_pack("{s:s,s:s,s:s,s:I}", "stage",
				                              keyroll_astage_name(rv.astage), "to",
				                              hsm_alg_name(rv.ato), "next_step",
				                              keyroll_step_name(rv.adue), "at",
				                              (json_int_t)rv.adue_at));
			if (rv.offline) { /* an offline KSK: its bundles' end */
				uint64_t now_s = zd_clock_s(), w = z->cfg->dnssec.keys.bundle_warn;
				json_object_set_new(
				        k, "offline_ksk",
				        json_pack("{s:I,s:I,s:b,s:b}", "until",
				                  (json_int_t)rv.b_until, "warn_at",
				                  (json_int_t)(rv.b_until > w ? rv.b_until - w : 0),
				                  "running_out", now_s + w >= rv.b_until, "ran_out",
				                  now_s >= rv.b_until));
			}
			if (rv.ustage != 0) /* going unsigned (dnssec unsign) */
				json_object_set_new(k, "unsign",
				                    json_pack("{s:s,s:s,s:I}", "stage",
				                              keyroll_ustage_name(rv.ustage),
				                              "next_step",
				                              keyroll_step_name(rv.udue), "at",
				                              (json_int_t)rv.udue_at));
		}
		json_object_set_new(o, "keys", k);
	}
	struct probe_parent pp;
	if (probe_parent_get(a->probe, (size_t)(za - a->zones), &pp) == ZD_OK)
		json_object_set_new(o, "parent_ds",
		                    json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:s}", "state",
		                              probe_parent_state_name(pp.state), "ksk_tag",
		                              pp.ksk_tag, "servers", (json_int_t)pp.servers,
		                              "answered", (json_int_t)pp.answered, "ds_records",
		                              (json_int_t)pp.ds_count, "checked_ms",
		                              (json_int_t)pp.checked_ms, "since_ms",
		                              (json_int_t)pp.since_ms, "error", pp.error));
	json_object_set_new(o, "signature_headroom", headroom_json(za));
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *so = secondary_json(&secs[i], pub, z->store);
		if (so)
			json_object_set_new(so, "probe",
			                    probe_json(a, (size_t)(za - a->zones), &secs[i]));
		json_array_append_new(arr, so);
	}
	json_object_set_new(o, "secondaries", arr);
	free(secs);
	return o;
}

static void
metrics_answer(struct api *a, struct evhttp_request *req)
{
	struct metrics_zone *mz = calloc(a->n_zones ? a->n_zones : 1, sizeof *mz);
	struct opdb_secondary *secs =
	        calloc((a->n_zones ? a->n_zones : 1) * OPDB_SECONDARIES_MAX, sizeof *secs);
	struct evbuffer *b = evbuffer_new();
	struct metrics_global g = {.journal_bytes = -1, .checkpoint_bytes = -1, .hsm_state = -1};
	uint64_t down_for;

	if (mz == NULL || secs == NULL || b == NULL) {
		reply_error(req, 500, "Internal Server Error", "out of memory");
		goto out;
	}
	g.db_up = a->batch ? batch_db_is_up(a->batch) : 0;
	if (a->batch)
		g.hsm_state = batch_hsm_state(a->batch, &down_for);
	if (a->opdb)
		opdb_sizes_get(a->opdb, &g.journal_bytes, &g.checkpoint_bytes);
	for (size_t i = 0; i < a->n_zones; i++) {
		struct zone_api *za = &a->zones[i];
		struct metrics_zone *m = &mz[i];
		m->z = za->z;
		m->os.pending_changes = m->os.rejected = -1;
		m->secs = secs + i * OPDB_SECONDARIES_MAX;
		if (a->opdb)
			opdb_zone_status_get(a->opdb, i, &m->os, secs + i * OPDB_SECONDARIES_MAX,
			                     OPDB_SECONDARIES_MAX, &m->n_secs);
		size_t np = za->z->cfg->n_notify;
		struct probe_state *ps = np ? calloc(np, sizeof *ps) : NULL;
		for (size_t k = 0; ps && k < np; k++)
			(void)probe_get(a->probe, i, k, &ps[k]);
		m->probes = ps;
		m->n_probes = ps ? np : 0;
		m->parent_known = probe_parent_get(a->probe, i, &m->parent) == ZD_OK;
		m->headroom_known = za->z->signer != NULL && za->headroom_known;
		if (m->headroom_known) {
			m->headroom_s = headroom_s(za);
			m->min_validity_s =
			        (int64_t)za->min_expiration - (int64_t)(zd_wallclock_ms() / 1000);
		}
	}
	if (metrics_render(b, &g, mz, a->n_zones) != ZD_OK) {
		reply_error(req, 500, "Internal Server Error", "out of memory");
		goto out;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	evhttp_send_reply(req, 200, "OK", b);
out:
	if (b)
		evbuffer_free(b);
	for (size_t i = 0; mz && i < a->n_zones; i++)
		free((void *)mz[i].probes);
	free(secs);
	free(mz);
}

static json_t *
status_json(struct api *a)
{
	json_t *zones = json_array();
	for (size_t i = 0; zones && i < a->n_zones; i++)
		json_array_append_new(zones, zone_status_json(a, &a->zones[i]));
	struct timeval tv;
	evutil_gettimeofday(&tv, NULL);
	return json_pack("{s:I,s:{s:b,s:b},s:o}", "time_ms",
	                 (json_int_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, "database", "up",
	                 a->batch ? batch_db_is_up(a->batch) : 0, "operator_up",
	                 a->opdb ? opdb_db_is_up(a->opdb) : 0, "zones", zones);
}

static void
status_answer(struct api *a, struct evhttp_request *req)
{
	reply_json(req, 200, "OK", status_json(a));
}

static void
status_page_answer(struct api *a, struct evhttp_request *req)
{
	json_t *st = status_json(a);
	struct evbuffer *b = evbuffer_new();
	if (st == NULL || b == NULL || status_page_render(st, &a->cfg->alarms, b) != ZD_OK) {
		reply_error(req, 500, "Internal Server Error", "out of memory");
	} else {
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);
		evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
		evhttp_add_header(h, "Cache-Control", "no-store");
		evhttp_add_header(h, "Content-Security-Policy",
		                  "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
		evhttp_send_reply(req, 200, "OK", b);
	}
	if (b)
		evbuffer_free(b);
	json_decref(st);
}

/* POST /api/v1/zones/Z/keys/ceremony: the batch thread makes an offline
 * KSK's ceremony at its next turn; GET .../keys says when it is done
 * (offline_ksk.ceremonies counts up, last_error says why it failed). */
static void
ceremony_ask(struct api *a, struct evhttp_request *req, struct zone_api *za)
{
	if (!authorized(a, req))
		return;
	if (za->z->roll == NULL || !za->z->cfg->dnssec.keys.offline_ksk) {
		reply_error(req, 409, "Conflict",
		            "the zone has no offline KSK (dnssec keys offline-ksk)");
		return;
	}
	struct keyroll_view rv;
	keyroll_view_get(za->z->roll, &rv);
	keyroll_ceremony_ask(za->z->roll);
	zd_log(ZD_LOG_NOTICE, "api", za->z->cfg->name,
	       "a KSK ceremony was asked for: made at the next batch, with the KSK token");
	reply_json(req, 202, "Accepted",
	           json_pack("{s:s,s:b,s:I}", "zone", za->z->cfg->name, "asked", 1, "ceremonies",
	                     (json_int_t)rv.c_done));
}

/* --- routing ---------------------------------------------------------- */

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct api *a = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	static const char prefix[] = "/api/v1/zones";
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char seg[3][300];
	size_t n_seg = 0;

	if (!conn_admit(a, req)) {
		uint32_t dropped;
		if (zd_ratelimit_ok(&a->rl, zd_now_ms(), &dropped))
			zd_log(ZD_LOG_WARNING, "api", NULL,
			       "api: %u connections open, refusing more (max-connections)",
			       a->cfg->api.max_connections);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		reply_error(req, 503, "Service Unavailable", "too many connections");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, POST");
		reply_error(req, 405, "Method Not Allowed", "only GET and POST are served here");
		return;
	}
	int is_status = path != NULL && strcmp(path, "/api/v1/status") == 0;
	int is_metrics = path != NULL && strcmp(path, "/metrics") == 0;
	int is_page = path != NULL && (strcmp(path, "/") == 0 || strcmp(path, "/status.html") == 0);
	if (is_status || is_metrics || is_page) {
		if (cmd != EVHTTP_REQ_GET) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
			reply_error(req, 405, "Method Not Allowed",
			            "this resource is read with GET");
			return;
		}
		if (is_status)
			status_answer(a, req);
		else if (is_page)
			status_page_answer(a, req);
		else
			metrics_answer(a, req);
		return;
	}
	if (path == NULL || strncmp(path, prefix, sizeof prefix - 1) != 0 ||
	    (path[sizeof prefix - 1] != '\0' && path[sizeof prefix - 1] != '/')) {
		reply_error(req, 404, "Not Found", "no such resource (see docs/API.md)");
		return;
	}
	/* The segments after /api/v1/zones: ZONE and an optional resource. */
	for (const char *p = path + sizeof prefix - 1; *p;) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (n_seg == 3 || len >= sizeof seg[0]) {
			reply_error(req, 404, "Not Found", "no such resource (see docs/API.md)");
			return;
		}
		memcpy(seg[n_seg], p, len);
		seg[n_seg++][len] = '\0';
		p += len;
	}
	struct zone_api *za = n_seg > 0 ? zone_find(a, seg[0]) : NULL;
	if (n_seg > 0 && za == NULL) {
		reply_error(req, 404, "Not Found", "no such zone");
		return;
	}
	const char *res = n_seg >= 2 ? seg[1] : "";
	int post = n_seg == 2 && (strcmp(res, "hold") == 0 || strcmp(res, "release") == 0);
	post = post || (n_seg == 3 && strcmp(res, "rejected") == 0 && strcmp(seg[2], "retry") == 0);
	post = post || (n_seg == 3 && strcmp(res, "keys") == 0 &&
	                (strcmp(seg[2], "compromised") == 0 || strcmp(seg[2], "ds-seen") == 0 ||
	                 strcmp(seg[2], "ds-gone") == 0 || strcmp(seg[2], "ceremony") == 0));
	if (n_seg == 3 && !post) {
		reply_error(req, 404, "Not Found", "no such resource (see docs/API.md)");
		return;
	}
	if (post != (cmd == EVHTTP_REQ_POST)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
		                  post ? "POST" : "GET");
		reply_error(req, 405, "Method Not Allowed",
		            post ? "a state change is a POST" : "this resource is read with GET");
		return;
	}
	if (n_seg == 0) {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < a->n_zones; i++)
			json_array_append_new(arr, zone_json(&a->zones[i]));
		reply_json(req, 200, "OK", json_pack("{s:o}", "zones", arr));
		return;
	}
	if (n_seg == 1) {
		reply_json(req, 200, "OK", zone_json(za));
		return;
	}
	if (post && strcmp(res, "keys") == 0 && strcmp(seg[2], "ceremony") == 0) {
		ceremony_ask(a, req, za);
		return;
	}
	if (post && strcmp(res, "keys") == 0) {
		key_report_start(a, req, za,
		                 strcmp(seg[2], "ds-seen") == 0   ? DBQ_DS_SEEN
		                 : strcmp(seg[2], "ds-gone") == 0 ? DBQ_DS_GONE
		                                                  : DBQ_COMPROMISED);
		return;
	}
	if (post) {
		change_start(a, req, za,
		             strcmp(res, "hold") == 0      ? DBQ_HOLD
		             : strcmp(res, "release") == 0 ? DBQ_RELEASE
		                                           : DBQ_RETRY);
		return;
	}
	if (strcmp(res, "diff") == 0) {
		diff_answer(req, za, query);
		return;
	}
	if (strcmp(res, "trace") == 0) {
		trace_start(a, req, za, query);
		return;
	}
	if (strcmp(res, "history") == 0) {
		history_start(a, req, za, query);
		return;
	}
	if (strcmp(res, "keys") == 0) {
		keys_answer(req, za, query);
		return;
	}
	if (strcmp(res, "transfers") == 0 || strcmp(res, "rejected") == 0) {
		list_start(a, req, za, query, res[0] == 't' ? DBQ_TRANSFERS : DBQ_REJECTED);
		return;
	}
	int digest = strcmp(res, "digest") == 0, text = strcmp(res, "zone") == 0;
	uint64_t v;
	uint32_t serial;
	if (!digest && !text) {
		reply_error(req, 404, "Not Found", "no such resource (see docs/API.md)");
		return;
	}
	if (!version_get(req, za, query, &v, &serial))
		return;
	struct digest_entry *d = digest ? cache_find(za, v) : NULL;
	if (d != NULL)
		digest_reply(req, za, v, serial, d);
	else
		job_start(a, req, za, digest ? JOB_DIGEST : JOB_TEXT, v, serial);
}

/* --- listening -------------------------------------------------------- */

static int
listen_unix(struct api *a, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat sb;
	int fd;

	if (strlen(path) >= sizeof sun.sun_path)
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode))
		unlink(path); /* a stale socket of an earlier run */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || chmod(path, 0660) != 0 ||
	    listen(fd, 128) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	char **p = realloc(a->unix_paths, (a->n_unix + 1) * sizeof *p);
	if (p == NULL) {
		close(fd);
		return -1;
	}
	a->unix_paths = p;
	if ((p[a->n_unix] = strdup(path)) == NULL) {
		close(fd);
		return -1;
	}
	a->n_unix++;
	return fd;
}

static int
listen_tcp(const char *text)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	if (zd_parse_sockaddr(text, 8053, &ss, &sl) != ZD_OK) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

zd_err
api_listen(struct api *a)
{
	for (size_t i = 0; i < a->cfg->api.n_listen; i++) {
		const char *l = a->cfg->api.listen[i];
		int fd = strncmp(l, "unix:", 5) == 0 ? listen_unix(a, l + 5) : listen_tcp(l);
		if (fd < 0 || evhttp_accept_socket_with_handle(a->http, fd) == NULL) {
			zd_log(ZD_LOG_ERROR, "api", NULL, "cannot listen on %s: %s", l,
			       fd < 0 ? strerror(errno) : "evhttp refused the socket");
			if (fd >= 0)
				close(fd);
			return ZD_EIO;
		}
		zd_log(ZD_LOG_NOTICE, "api", NULL, "API listening on %s", l);
	}
	return ZD_OK;
}

zd_err
api_new(struct event_base *base, const struct zd_config *cfg, struct zone **zones, size_t n_zones,
        struct opdb *opdb, struct api **out)
{
	struct api *a = calloc(1, sizeof *a);
	struct timeval tv;

	if (a == NULL)
		return ZD_ENOMEM;
	a->base = base;
	a->cfg = cfg;
	a->opdb = opdb;
	if (cfg->api.token_file != NULL) {
		char why[512];
		if (zd_token_read(cfg->api.token_file, 16, &a->token, why, sizeof why) != ZD_OK) {
			zd_log(ZD_LOG_ERROR, "api", NULL, "api token-file %s", why);
			api_free(a);
			return ZD_EIO;
		}
	}
	a->zones = calloc(n_zones ? n_zones : 1, sizeof *a->zones);
	a->conns =
	        calloc(cfg->api.max_connections ? cfg->api.max_connections : 1, sizeof *a->conns);
	a->http = evhttp_new(base);
	if (a->zones == NULL || a->conns == NULL || a->http == NULL) {
		api_free(a);
		return ZD_ENOMEM;
	}
	for (size_t i = 0; i < n_zones; i++)
		a->zones[i].z = zones[i];
	a->n_zones = n_zones;
	zd_ratelimit_init(&a->rl, 10000, 5);
	evhttp_set_max_headers_size(a->http, cfg->api.max_request_bytes);
	evhttp_set_max_body_size(a->http, cfg->api.max_request_bytes);
	tv.tv_sec = cfg->api.timeout_ms / 1000;
	tv.tv_usec = (cfg->api.timeout_ms % 1000) * 1000;
	evhttp_set_timeout_tv(a->http, &tv);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(a->http, on_request, a);
	struct timeval every = {.tv_sec = 5, .tv_usec = 0};
	if ((a->headroom_ev = event_new(base, -1, EV_PERSIST, on_headroom_timer, a)) == NULL ||
	    event_add(a->headroom_ev, &every) != 0) {
		api_free(a);
		return ZD_ENOMEM;
	}
	*out = a;
	return ZD_OK;
}

void
api_free(struct api *a)
{
	if (a == NULL)
		return;
	if (a->headroom_ev)
		event_free(a->headroom_ev);
	if (a->alarm_ev)
		event_free(a->alarm_ev);
	while (a->jobs)
		job_free(a->jobs);
	if (a->http)
		evhttp_free(a->http);
	for (size_t i = 0; i < a->n_unix; i++) {
		unlink(a->unix_paths[i]);
		free(a->unix_paths[i]);
	}
	free(a->unix_paths);
	while (a->dbqs) /* opdb_free() answered them all before */
		dbq_free(a->dbqs);
	if (a->token) {
		OPENSSL_cleanse(a->token, strlen(a->token));
		free(a->token);
	}
	free(a->conns);
	free(a->zones);
	free(a);
}
