#include "server/api.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/zd_log.h"
#include "common/zd_parse.h"
#include "common/zd_zonemd.h"

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
};

enum job_kind { JOB_DIGEST, JOB_TEXT };

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
	/* JOB_TEXT */
	struct evbuffer *out;
	ldns_buffer *lb;
	struct job *next;
};

struct api {
	struct event_base *base;
	const struct zd_config *cfg;
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

/* The version asked for (?serial=S, default the published one). */
static int
version_get(struct evhttp_request *req, struct zone_api *za, const char *query, uint64_t *v,
            uint32_t *serial)
{
	struct evkeyvalq q;
	const char *s = NULL;
	struct store *st = za->z->store;
	char why[128];

	q.tqh_first = NULL;
	q.tqh_last = &q.tqh_first;
	if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
		reply_error(req, 400, "Bad Request", "the query string does not parse");
		return 0;
	}
	s = evhttp_find_header(&q, "serial");
	for (struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next)
		if (strcmp(kv->key, "serial") != 0) {
			snprintf(why, sizeof why, "unknown parameter '%.64s'", kv->key);
			reply_error(req, 400, "Bad Request", why);
			evhttp_clear_headers(&q);
			return 0;
		}
	if (s == NULL) {
		*v = store_published_get(st);
		if (*v == 0 || store_serial_find(st, *v, serial) != ZD_OK) {
			reply_error(req, 404, "Not Found", "the zone has no published version yet");
			evhttp_clear_headers(&q);
			return 0;
		}
	} else if (zd_parse_u32(s, 0, UINT32_MAX, serial) != ZD_OK) {
		reply_error(req, 400, "Bad Request", "serial must be a number 0..4294967295");
		evhttp_clear_headers(&q);
		return 0;
	} else if (store_version_find(st, *serial, v) != ZD_OK) {
		snprintf(why, sizeof why,
		         "serial %u is not kept in memory (never published, or "
		         "older than the history kept)",
		         *serial);
		reply_json(req, 404, "Not Found",
		           json_pack("{s:s,s:I}", "error", why, "serial", (json_int_t)*serial));
		evhttp_clear_headers(&q);
		return 0;
	}
	evhttp_clear_headers(&q);
	return 1;
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
	o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:b}", "zone", z->cfg->name, "serial",
	              (json_int_t)atomic_load(&z->serial), "versions_published",
	              (json_int_t)atomic_load(&z->versions_published), "last_publish_ms",
	              (json_int_t)atomic_load(&z->last_batch_ms), "delegations",
	              (json_int_t)atomic_load(&z->delegations), "versions_in_memory",
	              (json_int_t)(pub && oldest ? pub - oldest + 1 : 0), "signed",
	              z->signer != NULL, "held", atomic_load(&z->held) != 0);
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
	if (a->n_jobs >= API_JOBS_MAX) {
		reply_error(req, 503, "Service Unavailable",
		            "too many digests or zone transfers running; try again");
		return;
	}
	if (store_version_pin(za->z->store, v) != ZD_OK) {
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
	                  .evcon = evhttp_request_get_connection(req)};
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
	job_schedule(j);
	return;
fail_free:
	job_free(j); /* not on the list yet; unpins v */
	reply_error(req, 500, "Internal Server Error", "out of memory");
	return;
fail:
	store_version_unpin(za->z->store, v);
	reply_error(req, 500, "Internal Server Error", "out of memory");
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
	char seg[2][300];
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
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
		reply_error(req, 405, "Method Not Allowed", "only GET is served here");
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
		if (n_seg == 2 || len >= sizeof seg[0]) {
			reply_error(req, 404, "Not Found", "no such resource (see docs/API.md)");
			return;
		}
		memcpy(seg[n_seg], p, len);
		seg[n_seg++][len] = '\0';
		p += len;
	}
	if (n_seg == 0) {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < a->n_zones; i++)
			json_array_append_new(arr, zone_json(&a->zones[i]));
		reply_json(req, 200, "OK", json_pack("{s:o}", "zones", arr));
		return;
	}
	struct zone_api *za = zone_find(a, seg[0]);
	if (za == NULL) {
		reply_error(req, 404, "Not Found", "no such zone");
		return;
	}
	if (n_seg == 1) {
		reply_json(req, 200, "OK", zone_json(za));
		return;
	}
	int digest = strcmp(seg[1], "digest") == 0, text = strcmp(seg[1], "zone") == 0;
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
        struct api **out)
{
	struct api *a = calloc(1, sizeof *a);
	struct timeval tv;

	if (a == NULL)
		return ZD_ENOMEM;
	a->base = base;
	a->cfg = cfg;
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
	*out = a;
	return ZD_OK;
}

void
api_free(struct api *a)
{
	if (a == NULL)
		return;
	while (a->jobs)
		job_free(a->jobs);
	if (a->http)
		evhttp_free(a->http);
	for (size_t i = 0; i < a->n_unix; i++) {
		unlink(a->unix_paths[i]);
		free(a->unix_paths[i]);
	}
	free(a->unix_paths);
	free(a->conns);
	free(a->zones);
	free(a);
}
