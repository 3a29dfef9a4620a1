#include "server/opdb.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/zd_log.h"

#define STATUS_EVERY_MS    2000
#define RETENTION_EVERY_MS (3600 * 1000)
#define ROWS_PER_ROUND     1000
#define FLUSH_AT_EXIT_MS   3000
#define RETRY_MS           2000

/* A row of the transfer log or of zonedist.publication, as text params. */
enum row_kind { ROW_TRANSFER, ROW_PUBLICATION };
#define ROW_PARAMS 13

struct row {
	enum row_kind kind;
	char *p[ROW_PARAMS]; /* NULL: SQL NULL */
	struct row *next;
};

struct query {
	char *sql;
	char *params[OPDB_PARAMS_MAX];
	int n_params;
	opdb_result_fn fn;
	void *arg;
	PGresult *res;
	char err[512];
	struct query *next;
};

struct zone_state {
	struct opdb_zone_status st;  /* under mu */
	struct opdb_secondary *secs; /* loop thread, and check_* under mu */
	size_t n_secs;
};

struct opdb {
	const struct zd_config *cfg;
	struct zone **zones;
	size_t n_zones;
	struct zone_state *zs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running, stop; /* stop under mu */
	struct row *rows, **rows_tail;
	size_t n_rows;
	uint64_t dropped;
	struct query *queries, **queries_tail; /* waiting */
	size_t n_queries;
	struct query *done; /* answered, for the loop */
	struct event *done_ev;
	PGconn *conn; /* the thread's, after opdb_new */
	_Atomic int up;
	char *zones_literal; /* text[] literal of the zones' names */
	uint64_t status_ms, retention_ms, down_logged_ms;
	int64_t journal_bytes, checkpoint_bytes; /* under mu */
};

/* --- helpers -------------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static char *
u64_text(uint64_t v)
{
	char b[24];
	snprintf(b, sizeof b, "%" PRIu64, v);
	return strdup(b);
}

static void
row_free(struct row *r)
{
	for (int i = 0; i < ROW_PARAMS; i++)
		free(r->p[i]);
	free(r);
}

static void
query_free(struct query *q)
{
	free(q->sql);
	for (int i = 0; i < q->n_params; i++)
		free(q->params[i]);
	PQclear(q->res);
	free(q);
}

static void
copy_text(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static int
zone_index(const struct opdb *o, const char *zone)
{
	for (size_t i = 0; i < o->n_zones; i++)
		if (strcmp(o->zones[i]->cfg->name, zone) == 0)
			return (int)i;
	return -1;
}

static void
peer_address(const struct sockaddr *sa, char *out, size_t cap, int *port)
{
	*port = -1;
	out[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)cap);
		*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)cap);
		*port = ntohs(in6->sin6_port);
	}
}

/* The secondary (address, key) of zone zi, added when new (loop thread).
 * NULL when the table is full. */
static struct opdb_secondary *
secondary_get(struct opdb *o, size_t zi, const char *address, const char *key)
{
	struct zone_state *s = &o->zs[zi];
	for (size_t i = 0; i < s->n_secs; i++)
		if (strcmp(s->secs[i].address, address) == 0 &&
		    strcmp(s->secs[i].key, key ? key : "") == 0)
			return &s->secs[i];
	if (s->n_secs == OPDB_SECONDARIES_MAX)
		return NULL;
	struct opdb_secondary *n = &s->secs[s->n_secs];
	memset(n, 0, sizeof *n);
	n->notify_index = -1;
	copy_text(n->address, sizeof n->address, address);
	copy_text(n->key, sizeof n->key, key);
	pthread_mutex_lock(&o->mu);
	s->n_secs++;
	pthread_mutex_unlock(&o->mu);
	return n;
}

static const char *
kind_name(enum xfr_kind k)
{
	switch (k) {
	case XFR_AXFR:
		return "AXFR";
	case XFR_IXFR:
		return "IXFR";
	case XFR_IXFR_AXFR:
		return "IXFR-AXFR";
	case XFR_IXFR_UDP:
		return "IXFR-UDP";
	}
	return "AXFR";
}

static const char *
result_name(enum xfr_result r)
{
	return r == XFR_RESULT_OK ? "ok" : r == XFR_RESULT_REFUSED ? "refused" : "error";
}

static void
row_push(struct opdb *o, struct row *r)
{
	pthread_mutex_lock(&o->mu);
	if (o->n_rows >= OPDB_QUEUE_MAX) {
		if (o->dropped++ % 10000 == 0)
			zd_log(ZD_LOG_WARNING, "opdb", NULL,
			       "transfer/publication log: %d rows wait for the database; "
			       "dropping rows (%" PRIu64 " so far)",
			       OPDB_QUEUE_MAX, o->dropped);
		pthread_mutex_unlock(&o->mu);
		row_free(r);
		return;
	}
	r->next = NULL;
	*o->rows_tail = r;
	o->rows_tail = &r->next;
	o->n_rows++;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

/* --- the loop's side -------------------------------------------------------- */

void
opdb_transfer(void *arg, const struct xfr_report *r)
{
	struct opdb *o = arg;
	char addr[64];
	int port;
	int zi = zone_index(o, r->zone);
	uint64_t now = zd_wallclock_ms();

	peer_address(r->peer, addr, sizeof addr, &port);
	if (zi < 0)
		return; /* no zone of ours: nothing to trace */
	if ((unsigned)r->kind < 4 && (unsigned)r->result < 3)
		o->zs[zi].st.transfers[r->kind][r->result]++; /* loop thread: the only writer */
	if (r->result == XFR_RESULT_OK && r->kind != XFR_IXFR_UDP) {
		struct opdb_secondary *s = secondary_get(o, (size_t)zi, addr, r->key);
		if (s != NULL) {
			s->transferred = 1;
			s->last_serial = r->to_serial;
			s->last_transfer_ms = now;
			copy_text(s->last_kind, sizeof s->last_kind, kind_name(r->kind));
		}
	}
	struct row *row = calloc(1, sizeof *row);
	if (row == NULL)
		return;
	row->kind = ROW_TRANSFER;
	char portb[8];
	snprintf(portb, sizeof portb, "%d", port);
	row->p[0] = strdup(r->zone);
	row->p[1] = u64_text(now - (r->duration_ms < now ? r->duration_ms : 0));
	row->p[2] = strdup(addr);
	row->p[3] = port >= 0 ? strdup(portb) : NULL;
	row->p[4] = dup_or_null(r->key);
	row->p[5] = strdup(kind_name(r->kind));
	row->p[6] = r->has_from ? u64_text(r->from_serial) : NULL;
	row->p[7] = r->result == XFR_RESULT_OK || r->to_serial ? u64_text(r->to_serial) : NULL;
	row->p[8] = u64_text(r->bytes);
	row->p[9] = u64_text(r->records);
	row->p[10] = u64_text(r->duration_ms > INT32_MAX ? INT32_MAX : r->duration_ms);
	row->p[11] = strdup(result_name(r->result));
	row->p[12] = dup_or_null(r->reason);
	row_push(o, row);
}

void
opdb_published(struct opdb *o, const struct zone *z, uint64_t version, uint32_t serial,
               uint64_t published_ms)
{
	struct row *row = calloc(1, sizeof *row);
	if (row == NULL)
		return;
	row->kind = ROW_PUBLICATION;
	row->p[0] = strdup(z->cfg->name);
	row->p[1] = u64_text(version);
	row->p[2] = u64_text(serial);
	row->p[3] = u64_text(published_ms);
	row_push(o, row);
}

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct opdb *o = arg;
	(void)fd;
	(void)what;
	pthread_mutex_lock(&o->mu);
	struct query *q = o->done;
	o->done = NULL;
	pthread_mutex_unlock(&o->mu);
	/* answered newest first on the list: reverse for the order asked */
	struct query *rev = NULL;
	while (q) {
		struct query *n = q->next;
		q->next = rev;
		rev = q;
		q = n;
	}
	while (rev) {
		struct query *n = rev->next;
		rev->fn(rev->arg, rev->res, rev->res ? NULL : rev->err);
		query_free(rev);
		rev = n;
	}
}

zd_err
opdb_query(struct opdb *o, const char *sql, int n_params, const char *const *params,
           opdb_result_fn fn, void *arg)
{
	struct query *q;

	if (n_params < 0 || n_params > OPDB_PARAMS_MAX)
		return ZD_EBUG;
	if ((q = calloc(1, sizeof *q)) == NULL || (q->sql = strdup(sql)) == NULL) {
		free(q);
		return ZD_ENOMEM;
	}
	for (int i = 0; i < n_params; i++) {
		q->params[i] = dup_or_null(params[i]);
		q->n_params = i + 1;
		if (params[i] != NULL && q->params[i] == NULL) {
			query_free(q);
			return ZD_ENOMEM;
		}
	}
	q->fn = fn;
	q->arg = arg;
	pthread_mutex_lock(&o->mu);
	if (o->n_queries >= OPDB_QUERIES_MAX) {
		pthread_mutex_unlock(&o->mu);
		query_free(q);
		return ZD_ELIMIT;
	}
	*o->queries_tail = q;
	o->queries_tail = &q->next;
	o->n_queries++;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
	return ZD_OK;
}

void
opdb_zone_status_get(struct opdb *o, size_t zi, struct opdb_zone_status *out,
                     struct opdb_secondary *secs, size_t cap, size_t *n)
{
	struct zone_state *s = &o->zs[zi];
	pthread_mutex_lock(&o->mu);
	*out = s->st;
	out->dropped_log_rows = o->dropped;
	*n = s->n_secs < cap ? s->n_secs : cap;
	memcpy(secs, s->secs, *n * sizeof *secs);
	pthread_mutex_unlock(&o->mu);
}

void
opdb_sizes_get(struct opdb *o, int64_t *journal, int64_t *checkpoint)
{
	pthread_mutex_lock(&o->mu);
	*journal = o->journal_bytes;
	*checkpoint = o->checkpoint_bytes;
	pthread_mutex_unlock(&o->mu);
}

void
opdb_hold_set(struct opdb *o, size_t zi, int held, const char *by, const char *reason)
{
	struct zone_state *s = &o->zs[zi];
	pthread_mutex_lock(&o->mu);
	s->st.held = held;
	copy_text(s->st.held_by, sizeof s->st.held_by, held ? by : "");
	copy_text(s->st.held_reason, sizeof s->st.held_reason, held ? reason : "");
	atomic_store(&o->zones[zi]->op_held, held);
	pthread_mutex_unlock(&o->mu);
}

int
opdb_db_is_up(const struct opdb *o)
{
	return atomic_load(&o->up);
}

/* --- the thread's side ------------------------------------------------------ */

static int
connected(struct opdb *o)
{
	if (o->conn != NULL && PQstatus(o->conn) == CONNECTION_OK)
		return 1;
	if (o->conn != NULL)
		PQreset(o->conn);
	else
		o->conn = PQconnectdb(o->cfg->database);
	int ok = o->conn != NULL && PQstatus(o->conn) == CONNECTION_OK;
	if (ok && !atomic_exchange(&o->up, 1))
		zd_log(ZD_LOG_NOTICE, "opdb", NULL, "operator database connection up");
	if (!ok) {
		uint64_t now = zd_now_ms();
		if (atomic_exchange(&o->up, 0) || now - o->down_logged_ms > 60000) {
			zd_log(ZD_LOG_ERROR, "opdb", NULL,
			       "operator database connection down (transfer log waits, API "
			       "questions fail): %s",
			       o->conn ? PQerrorMessage(o->conn) : "out of memory");
			o->down_logged_ms = now;
		}
	}
	return ok;
}

static int
exec_ok(PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static void
answer(struct opdb *o, struct query *q)
{
	pthread_mutex_lock(&o->mu);
	q->next = o->done;
	o->done = q;
	pthread_mutex_unlock(&o->mu);
	event_active(o->done_ev, EV_READ, 0);
}

static void
query_run(struct opdb *o, struct query *q)
{
	if (!connected(o)) {
		snprintf(q->err, sizeof q->err, "database unreachable");
		answer(o, q);
		return;
	}
	PGresult *r = PQexecParams(o->conn, q->sql, q->n_params, NULL,
	                           (const char *const *)q->params, NULL, NULL, 0);
	if (exec_ok(r)) {
		q->res = r;
	} else {
		const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(o->conn);
		snprintf(q->err, sizeof q->err, "%s", m && *m ? m : "database error");
		size_t n = strlen(q->err);
		while (n > 0 && q->err[n - 1] == '\n')
			q->err[--n] = '\0';
		PQclear(r);
	}
	answer(o, q);
}

static const char *const transfer_sql =
        "INSERT INTO zonedist.transfer (zone, at, secondary, port, tsig_key, kind, "
        "from_serial, to_serial, bytes, records, duration_ms, result, reason) VALUES ($1, "
        "to_timestamp($2::double precision / 1000), $3, $4, $5, $6, $7, $8, $9, $10, $11, "
        "$12, $13)";
static const char *const publication_sql =
        "INSERT INTO zonedist.publication (zone, version, serial, published) VALUES ($1, $2, "
        "$3, to_timestamp($4::double precision / 1000)) ON CONFLICT (zone, version) DO UPDATE "
        "SET serial = EXCLUDED.serial, published = EXCLUDED.published";

/* Write up to ROWS_PER_ROUND queued rows in one transaction.  On failure
 * they stay queued (at the front). */
static void
rows_write(struct opdb *o)
{
	pthread_mutex_lock(&o->mu);
	struct row *batch = o->rows, *last = NULL;
	size_t n = 0;
	for (struct row *r = batch; r && n < ROWS_PER_ROUND; r = r->next) {
		last = r;
		n++;
	}
	if (n == 0) {
		pthread_mutex_unlock(&o->mu);
		return;
	}
	o->rows = last->next;
	if (o->rows == NULL)
		o->rows_tail = &o->rows;
	o->n_rows -= n;
	last->next = NULL;
	pthread_mutex_unlock(&o->mu);

	int ok = connected(o);
	if (ok) {
		PGresult *r = PQexec(o->conn, "BEGIN");
		ok = exec_ok(r);
		PQclear(r);
	}
	for (struct row *w = batch; ok && w; w = w->next) {
		PGresult *r = PQexecParams(o->conn,
		                           w->kind == ROW_TRANSFER ? transfer_sql : publication_sql,
		                           w->kind == ROW_TRANSFER ? 13 : 4, NULL,
		                           (const char *const *)w->p, NULL, NULL, 0);
		if (!exec_ok(r)) {
			zd_log(ZD_LOG_ERROR, "opdb", w->p[0], "writing the %s log failed: %s",
			       w->kind == ROW_TRANSFER ? "transfer" : "publication",
			       PQresultErrorMessage(r));
			ok = 0;
		}
		PQclear(r);
	}
	if (ok) {
		PGresult *r = PQexec(o->conn, "COMMIT");
		ok = exec_ok(r);
		PQclear(r);
	} else if (o->conn && PQstatus(o->conn) == CONNECTION_OK) {
		PQclear(PQexec(o->conn, "ROLLBACK"));
	}
	if (ok || (o->conn && PQstatus(o->conn) == CONNECTION_OK)) {
		/* written, or refused by the database (not retried: it would be
		 * refused again) */
		while (batch) {
			struct row *nx = batch->next;
			row_free(batch);
			batch = nx;
		}
		return;
	}
	/* the connection broke: put them back in front */
	pthread_mutex_lock(&o->mu);
	last->next = o->rows;
	if (o->rows == NULL)
		o->rows_tail = &last->next;
	o->rows = batch;
	o->n_rows += n;
	pthread_mutex_unlock(&o->mu);
}

static int64_t
value_i64(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? -1 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Outbox depth, rejected rows, holds, newest check results. */
static void
status_refresh(struct opdb *o)
{
	if (!connected(o)) {
		pthread_mutex_lock(&o->mu);
		for (size_t i = 0; i < o->n_zones; i++)
			o->zs[i].st.pending_changes = o->zs[i].st.rejected = -1;
		pthread_mutex_unlock(&o->mu);
		return;
	}
	const char *zp[1] = {o->zones_literal};
	PGresult *r = PQexecParams(
	        o->conn,
	        "SELECT z.zone, (SELECT count(*) FROM zonedist.change c WHERE c.zone = z.zone), "
	        "(SELECT count(*) FROM zonedist.rejected j WHERE j.zone = z.zone), h.held_by, "
	        "h.reason FROM unnest($1::text[]) AS z(zone) LEFT JOIN zonedist.hold h ON h.zone = "
	        "z.zone",
	        1, NULL, zp, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		pthread_mutex_lock(&o->mu);
		for (size_t i = 0; i < o->n_zones; i++) {
			o->zs[i].st.pending_changes = 0;
			o->zs[i].st.rejected = 0;
		}
		for (int k = 0; k < PQntuples(r); k++) {
			int zi = zone_index(o, PQgetvalue(r, k, 0));
			if (zi < 0)
				continue;
			struct opdb_zone_status *st = &o->zs[zi].st;
			st->pending_changes = value_i64(r, k, 1);
			st->rejected = value_i64(r, k, 2);
			int held = !PQgetisnull(r, k, 3);
			st->held = held;
			copy_text(st->held_by, sizeof st->held_by, held ? PQgetvalue(r, k, 3) : "");
			copy_text(st->held_reason, sizeof st->held_reason,
			          held ? PQgetvalue(r, k, 4) : "");
			atomic_store(&o->zones[zi]->op_held, held);
		}
		pthread_mutex_unlock(&o->mu);
	}
	PQclear(r);
	r = PQexec(o->conn, "SELECT pg_total_relation_size('zonedist.journal'), "
	                    "pg_total_relation_size('zonedist.checkpoint') + "
	                    "pg_total_relation_size('zonedist.checkpoint_chunk')");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		pthread_mutex_lock(&o->mu);
		o->journal_bytes = value_i64(r, 0, 0);
		o->checkpoint_bytes = value_i64(r, 0, 1);
		pthread_mutex_unlock(&o->mu);
	}
	PQclear(r);
	r = PQexec(o->conn,
	           "SELECT DISTINCT ON (zone, secondary) zone, secondary, state, severity, serial, "
	           "floor(extract(epoch FROM checked_at) * 1000)::bigint, message FROM "
	           "zonedist.check_result WHERE checked_at > now() - interval '7 days' ORDER BY "
	           "zone, secondary, checked_at DESC");
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		pthread_mutex_lock(&o->mu);
		for (int k = 0; k < PQntuples(r); k++) {
			int zi = zone_index(o, PQgetvalue(r, k, 0));
			if (zi < 0)
				continue;
			/* "ADDR@PORT" (a NOTIFY target, as configured) or "ADDR" */
			const char *addr = PQgetvalue(r, k, 1);
			struct zone_state *s = &o->zs[zi];
			for (size_t i = 0; i < s->n_secs; i++) {
				struct opdb_secondary *sec = &s->secs[i];
				if (strcmp(sec->address, addr) != 0)
					continue;
				uint64_t at_ms = (uint64_t)value_i64(r, k, 5);
				if (sec->checked && sec->checked_ms > at_ms)
					continue; /* another port of the same address, newer */
				sec->checked = 1;
				copy_text(sec->check_state, sizeof sec->check_state,
				          PQgetvalue(r, k, 2));
				sec->check_severity = (int)value_i64(r, k, 3);
				sec->check_has_serial = !PQgetisnull(r, k, 4);
				sec->check_serial = (uint32_t)value_i64(r, k, 4);
				sec->checked_ms = at_ms;
				copy_text(sec->check_message, sizeof sec->check_message,
				          PQgetvalue(r, k, 6));
			}
		}
		pthread_mutex_unlock(&o->mu);
	}
	PQclear(r);
}

static void
retention(struct opdb *o)
{
	char days[16];
	snprintf(days, sizeof days, "%" PRIu32, o->cfg->limits.transfer_log_days);
	const char *p[1] = {days};
	if (!connected(o))
		return;
	PGresult *r = PQexecParams(o->conn,
	                           "WITH t AS (DELETE FROM zonedist.transfer WHERE at < now() - "
	                           "make_interval(days => $1::int) RETURNING 1), "
	                           "p AS (DELETE FROM zonedist.publication WHERE published < now() "
	                           "- make_interval(days => $1::int) RETURNING 1) "
	                           "SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM p)",
	                           1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    (value_i64(r, 0, 0) > 0 || value_i64(r, 0, 1) > 0))
		zd_log(ZD_LOG_INFO, "opdb", NULL,
		       "transfer log retention (%s days): %s transfer and %s publication rows "
		       "deleted",
		       days, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
	else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		zd_log(ZD_LOG_ERROR, "opdb", NULL, "transfer log retention failed: %s",
		       PQresultErrorMessage(r));
	PQclear(r);
}

static void *
loop(void *arg)
{
	struct opdb *o = arg;
	uint64_t stop_at = 0;

	for (;;) {
		pthread_mutex_lock(&o->mu);
		while (!o->stop && o->queries == NULL && o->n_rows == 0 &&
		       zd_now_ms() - o->status_ms < STATUS_EVERY_MS) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 250 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&o->cv, &o->mu, &ts);
		}
		struct query *q = o->queries;
		if (q) {
			o->queries = q->next;
			if (o->queries == NULL)
				o->queries_tail = &o->queries;
			o->n_queries--;
		}
		int stopping = o->stop, rows = o->n_rows > 0;
		pthread_mutex_unlock(&o->mu);
		if (stopping) {
			if (stop_at == 0)
				stop_at = zd_now_ms();
			if (q) { /* not asked any more: answer at once */
				snprintf(q->err, sizeof q->err, "shutting down");
				answer(o, q);
				continue;
			}
			if (!rows || zd_now_ms() - stop_at > FLUSH_AT_EXIT_MS ||
			    (o->conn == NULL || PQstatus(o->conn) != CONNECTION_OK))
				break;
			rows_write(o);
			continue;
		}
		if (q) {
			query_run(o, q);
			continue;
		}
		if (rows && (atomic_load(&o->up) || zd_now_ms() - o->status_ms >= RETRY_MS))
			rows_write(o);
		uint64_t now = zd_now_ms();
		if (now - o->status_ms >= STATUS_EVERY_MS) {
			o->status_ms = now;
			status_refresh(o);
		}
		if (now - o->retention_ms >= RETENTION_EVERY_MS) {
			o->retention_ms = now;
			retention(o);
		}
		if (rows && !atomic_load(&o->up)) {
			struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};
			nanosleep(&ts, NULL); /* database down: do not spin on the queue */
		}
	}
	return NULL;
}

/* --- life cycle --------------------------------------------------------------- */

static zd_err
secondaries_load(struct opdb *o, char *err, size_t errlen)
{
	PGresult *r = PQexec(o->conn,
	                     "SELECT DISTINCT ON (zone, secondary, coalesce(tsig_key, '')) zone, "
	                     "secondary, tsig_key, to_serial, floor(extract(epoch FROM at) * "
	                     "1000)::bigint, kind FROM zonedist.transfer WHERE result = 'ok' AND "
	                     "kind <> 'IXFR-UDP' ORDER BY zone, secondary, coalesce(tsig_key, ''), "
	                     "at DESC");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading the transfer log: %s", PQresultErrorMessage(r));
		PQclear(r);
		return ZD_EDB;
	}
	for (int k = 0; k < PQntuples(r); k++) {
		int zi = zone_index(o, PQgetvalue(r, k, 0));
		if (zi < 0 || PQgetisnull(r, k, 3))
			continue;
		struct opdb_secondary *s =
		        secondary_get(o, (size_t)zi, PQgetvalue(r, k, 1),
		                      PQgetisnull(r, k, 2) ? NULL : PQgetvalue(r, k, 2));
		if (s == NULL)
			continue;
		s->transferred = 1;
		s->last_serial = (uint32_t)value_i64(r, k, 3);
		s->last_transfer_ms = (uint64_t)value_i64(r, k, 4);
		copy_text(s->last_kind, sizeof s->last_kind, PQgetvalue(r, k, 5));
	}
	PQclear(r);
	return ZD_OK;
}

zd_err
opdb_new(const struct zd_config *cfg, struct zone **zones, size_t n_zones, struct event_base *base,
         struct opdb **out, char *err, size_t errlen)
{
	struct opdb *o = calloc(1, sizeof *o);
	zd_err e = ZD_ENOMEM;

	if (o == NULL)
		return ZD_ENOMEM;
	o->cfg = cfg;
	o->zones = zones;
	o->n_zones = n_zones;
	o->rows_tail = &o->rows;
	o->queries_tail = &o->queries;
	o->journal_bytes = o->checkpoint_bytes = -1;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	o->zs = calloc(n_zones ? n_zones : 1, sizeof *o->zs);
	if (o->zs == NULL)
		goto fail;
	for (size_t i = 0; i < n_zones; i++) {
		o->zs[i].st.pending_changes = o->zs[i].st.rejected = -1;
		if ((o->zs[i].secs = calloc(OPDB_SECONDARIES_MAX, sizeof *o->zs[i].secs)) == NULL)
			goto fail;
		/* the configured NOTIFY targets are secondaries from the start,
		 * named as configured (several may share an address) */
		const struct zd_zone_config *zc = zones[i]->cfg;
		for (size_t k = 0; k < zc->n_notify; k++) {
			struct opdb_secondary *s =
			        secondary_get(o, i, zc->notify[k].text, zc->notify[k].key);
			if (s) {
				s->notify = 1;
				s->notify_index = (int)k;
			}
		}
	}
	if ((o->done_ev = event_new(base, -1, 0, on_done, o)) == NULL)
		goto fail;
	/* a text[] literal: each name quoted, '"' and '\\' escaped */
	size_t lit = 3;
	for (size_t i = 0; i < n_zones; i++)
		lit += 2 * strlen(zones[i]->cfg->name) + 3;
	if ((o->zones_literal = malloc(lit)) == NULL)
		goto fail;
	char *w = o->zones_literal;
	*w++ = '{';
	for (size_t i = 0; i < n_zones; i++) {
		if (i)
			*w++ = ',';
		*w++ = '"';
		for (const char *c = zones[i]->cfg->name; *c; c++) {
			if (*c == '"' || *c == '\\')
				*w++ = '\\';
			*w++ = *c;
		}
		*w++ = '"';
	}
	*w++ = '}';
	*w = '\0';
	o->conn = PQconnectdb(cfg->database);
	if (o->conn == NULL || PQstatus(o->conn) != CONNECTION_OK) {
		snprintf(err, errlen, "operator database connection: %s",
		         o->conn ? PQerrorMessage(o->conn) : "out of memory");
		e = ZD_EDB;
		goto fail;
	}
	atomic_store(&o->up, 1);
	if ((e = secondaries_load(o, err, errlen)) != ZD_OK)
		goto fail;
	status_refresh(o); /* the holds, before the batch thread starts */
	o->status_ms = o->retention_ms = zd_now_ms();
	o->retention_ms -= RETENTION_EVERY_MS; /* first pass soon after the start */
	*out = o;
	return ZD_OK;
fail:
	opdb_free(o);
	return e;
}

zd_err
opdb_start(struct opdb *o)
{
	if (pthread_create(&o->thread, NULL, loop, o) != 0)
		return ZD_ENOMEM;
	o->running = 1;
	pthread_setname_np(o->thread, "zd-opdb"); /* top -H, perf */
	return ZD_OK;
}

void
opdb_free(struct opdb *o)
{
	if (o == NULL)
		return;
	if (o->running) {
		pthread_mutex_lock(&o->mu);
		o->stop = 1;
		pthread_cond_signal(&o->cv);
		pthread_mutex_unlock(&o->mu);
		pthread_join(o->thread, NULL);
		o->running = 0;
	}
	/* questions never run, then the answers not delivered yet */
	for (struct query *q = o->queries, *n; q; q = n) {
		n = q->next;
		snprintf(q->err, sizeof q->err, "shutting down");
		q->next = o->done;
		o->done = q;
	}
	o->queries = NULL;
	if (o->done_ev) {
		on_done(-1, 0, o);
		event_free(o->done_ev);
	}
	for (struct row *r = o->rows, *n; r; r = n) {
		n = r->next;
		row_free(r);
	}
	for (size_t i = 0; o->zs && i < o->n_zones; i++)
		free(o->zs[i].secs);
	free(o->zs);
	free(o->zones_literal);
	PQfinish(o->conn);
	pthread_mutex_destroy(&o->mu);
	pthread_cond_destroy(&o->cv);
	free(o);
}
