/* server/journal.c -- schema, journal rows and checkpoints in PostgreSQL. */
#include "server/journal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_buf.h"
#include "common/zd_parse.h"
#include "common/zd_log.h"
#include "server/migrations.h"

#define DELTA_MAX_BYTES ((size_t)512 << 20)

/* Message of a failed result, with its SQLSTATE. */
static zd_err
db_fail(PGconn *c, const PGresult *r, const char *what, char *err, size_t errlen)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : NULL;
	if (msg == NULL || *msg == '\0')
		msg = PQerrorMessage(c);
	snprintf(err, errlen, "%s: %s%s%s", what, state ? state : "", state ? " " : "",
	         msg ? msg : "(no message)");
	/* libpq messages end in a newline; a log line should not */
	size_t n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
	return ZD_EDB;
}

static zd_err
exec_ok(PGconn *c, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	zd_err e = ZD_OK;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		e = db_fail(c, r, what, err, errlen);
	PQclear(r);
	return e;
}

static int64_t
be64(const char *p)
{
	const uint8_t *u = (const uint8_t *)p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | u[i];
	return (int64_t)v;
}

int
journal_schema_version_get(void)
{
	return zd_migrations_count ? zd_migrations[zd_migrations_count - 1].version : 0;
}

static zd_err
schema_version_read(PGconn *c, int *out, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, "SELECT coalesce(max(version), 0) FROM zonedist.schema_migration");
	zd_err e = ZD_OK;
	uint32_t v;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		e = db_fail(c, r, "reading the schema version", err, errlen);
	else if (zd_parse_u32(PQgetvalue(r, 0, 0), 0, 1000000, &v) != ZD_OK)
		e = ZD_EMALFORMED;
	else
		*out = (int)v;
	PQclear(r);
	return e;
}

zd_err
journal_schema_install(PGconn *c, char *err, size_t errlen)
{
	zd_err e;
	int have = 0;

	/* Two zonedistd --init-db at once must not both apply a migration. */
	if ((e = exec_ok(c, "SELECT pg_advisory_lock(hashtext('zonedist.schema'))",
	                 "locking the schema", err, errlen)) != ZD_OK)
		return e;
	e = exec_ok(c,
	            "CREATE SCHEMA IF NOT EXISTS zonedist;"
	            "CREATE TABLE IF NOT EXISTS zonedist.schema_migration ("
	            " version int PRIMARY KEY, name text NOT NULL,"
	            " applied timestamptz NOT NULL DEFAULT now())",
	            "creating zonedist.schema_migration", err, errlen);
	if (e == ZD_OK)
		e = schema_version_read(c, &have, err, errlen);
	if (e == ZD_OK && have > journal_schema_version_get()) {
		snprintf(err, errlen,
		         "the database's zonedist schema is version %d, newer than this "
		         "zonedistd's %d",
		         have, journal_schema_version_get());
		e = ZD_EDB;
	}
	for (size_t i = 0; e == ZD_OK && i < zd_migrations_count; i++) {
		const struct zd_migration *m = &zd_migrations[i];
		char what[160];
		if (m->version <= have)
			continue;
		snprintf(what, sizeof what, "migration %s", m->name);
		if ((e = exec_ok(c, "BEGIN", what, err, errlen)) != ZD_OK)
			break;
		e = exec_ok(c, m->sql, what, err, errlen);
		if (e == ZD_OK) {
			char version[16];
			const char *params[2] = {version, m->name};
			snprintf(version, sizeof version, "%d", m->version);
			PGresult *r =
			        PQexecParams(c,
			                     "INSERT INTO zonedist.schema_migration (version, "
			                     "name) VALUES ($1, $2)",
			                     2, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(r) != PGRES_COMMAND_OK)
				e = db_fail(c, r, what, err, errlen);
			PQclear(r);
		}
		if (e == ZD_OK)
			e = exec_ok(c, "COMMIT", what, err, errlen);
		if (e != ZD_OK) {
			PGresult *r = PQexec(c, "ROLLBACK");
			PQclear(r);
			break;
		}
		zd_log(ZD_LOG_NOTICE, "db", NULL, "applied schema migration %s", m->name);
	}
	PGresult *r = PQexec(c, "SELECT pg_advisory_unlock(hashtext('zonedist.schema'))");
	PQclear(r);
	return e;
}

zd_err
journal_schema_check(PGconn *c, char *err, size_t errlen)
{
	int have = 0;
	PGresult *r = PQexec(c, "SELECT to_regclass('zonedist.schema_migration') IS NOT NULL");
	zd_err e = ZD_OK;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		e = db_fail(c, r, "checking the schema", err, errlen);
		PQclear(r);
		return e;
	}
	int present = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!present) {
		snprintf(err, errlen,
		         "the zonedist schema is not installed (run zonedistd --init-db)");
		return ZD_EDB;
	}
	if ((e = schema_version_read(c, &have, err, errlen)) != ZD_OK)
		return e;
	if (have != journal_schema_version_get()) {
		snprintf(err, errlen,
		         "the database's zonedist schema is version %d, this zonedistd needs %d "
		         "(run zonedistd --init-db)",
		         have, journal_schema_version_get());
		return ZD_EDB;
	}
	return ZD_OK;
}

zd_err
journal_delta_append(PGconn *c, const char *zone, uint64_t version, uint32_t serial,
                     const uint8_t *delta, size_t len, const int64_t *change_ids, size_t n_ids,
                     const int64_t *txids, size_t n_txids, uint64_t signed_ms,
                     uint64_t *first_change_ms, char *err, size_t errlen)
{
	struct zd_buf ids, txs;
	char vbuf[24], sbuf[16], tbuf[24];
	zd_err e;

	if (len > DELTA_MAX_BYTES) {
		snprintf(err, errlen, "delta of version %" PRIu64 " is %zu bytes, over %zu",
		         version, len, DELTA_MAX_BYTES);
		return ZD_ELIMIT;
	}
	zd_buf_init(&ids, (size_t)64 << 20);
	zd_buf_init(&txs, (size_t)64 << 20);
	if ((e = zd_buf_int_array(&ids, change_ids, n_ids)) != ZD_OK ||
	    (e = zd_buf_int_array(&txs, txids, n_txids)) != ZD_OK)
		goto out;
	snprintf(vbuf, sizeof vbuf, "%" PRIu64, version);
	snprintf(sbuf, sizeof sbuf, "%" PRIu32, serial);
	snprintf(tbuf, sizeof tbuf, "%" PRIu64, signed_ms);
	const char *params[7] = {zone,
	                         vbuf,
	                         sbuf,
	                         (const char *)delta,
	                         (char *)ids.data,
	                         (char *)txs.data,
	                         signed_ms ? tbuf : NULL};
	int lens[7] = {0, 0, 0, (int)len, 0, 0, 0};
	int formats[7] = {0, 0, 0, 1, 0, 0, 0};
	/* txid_created: per txid (ascending, as txids), its first change row;
	 * the rows are still there, deleted later in this transaction. */
	PGresult *r = PQexecParams(
	        c,
	        "INSERT INTO zonedist.journal (zone, version, serial, delta, change_ids, txids, "
	        "txid_created, signed) VALUES ($1, $2, $3, $4, $5, $6, "
	        "(SELECT array_agg(m ORDER BY t) FROM (SELECT txid AS t, min(created) AS m "
	        "FROM zonedist.change WHERE id = ANY($5::bigint[]) GROUP BY txid) x), "
	        "to_timestamp($7::double precision / 1000)) RETURNING (SELECT "
	        "floor(extract(epoch FROM min(u)) * 1000)::bigint FROM unnest(txid_created) u)",
	        7, NULL, params, lens, formats, 0);
	*first_change_ms = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		e = db_fail(c, r, "inserting the journal row", err, errlen);
	else if (!PQgetisnull(r, 0, 0))
		*first_change_ms = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
out:
	zd_buf_clear(&ids);
	zd_buf_clear(&txs);
	return e;
}

zd_err
journal_release_add(PGconn *c, const char *zone, const char *by, char *err, size_t errlen)
{
	const char *params[2] = {zone, by};
	PGresult *r =
	        PQexecParams(c, "INSERT INTO zonedist.release (zone, released_by) VALUES ($1, $2)",
	                     2, NULL, params, NULL, NULL, 0);
	zd_err e = ZD_OK;
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		e = db_fail(c, r, "recording the release", err, errlen);
	PQclear(r);
	return e;
}

zd_err
journal_release_use(PGconn *c, const char *zone, uint64_t version, int *found, char *by,
                    size_t bylen, char *err, size_t errlen)
{
	char vbuf[24];
	snprintf(vbuf, sizeof vbuf, "%" PRIu64, version);
	const char *params[2] = {zone, vbuf};
	PGresult *r = PQexecParams(
	        c,
	        "UPDATE zonedist.release SET used_at = now(), used_version = $2 WHERE id = ("
	        "SELECT id FROM zonedist.release WHERE zone = $1 AND used_at IS NULL ORDER BY id "
	        "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING released_by",
	        2, NULL, params, NULL, NULL, 0);
	zd_err e = ZD_OK;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		e = db_fail(c, r, "looking for a release", err, errlen);
	} else {
		*found = PQntuples(r) > 0;
		if (*found)
			snprintf(by, bylen, "%s", PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return e;
}

/* Send one chunk's INSERT without waiting for it: the database stores it
 * while the next chunk is put together.  libpq has copied b when this
 * returns.  chunk_wait() reads the answer before anything else is sent. */
static zd_err
chunk_send(PGconn *c, const char *zone, const char *vbuf, int seq, const struct zd_buf *b,
           char *err, size_t errlen)
{
	char sbuf[16];
	snprintf(sbuf, sizeof sbuf, "%d", seq);
	const char *params[4] = {zone, vbuf, sbuf, (const char *)b->data};
	int lens[4] = {0, 0, 0, (int)b->len};
	int formats[4] = {0, 0, 0, 1};
	if (!PQsendQueryParams(c,
	                       "INSERT INTO zonedist.checkpoint_chunk (zone, version, seq, data) "
	                       "VALUES ($1, $2, $3, $4)",
	                       4, NULL, params, lens, formats, 0))
		return db_fail(c, NULL, "inserting a checkpoint chunk", err, errlen);
	return ZD_OK;
}

static zd_err
chunk_wait(PGconn *c, char *err, size_t errlen)
{
	PGresult *r;
	zd_err e = ZD_OK;
	while ((r = PQgetResult(c)) != NULL) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && e == ZD_OK)
			e = db_fail(c, r, "inserting a checkpoint chunk", err, errlen);
		PQclear(r);
	}
	return e;
}

zd_err
journal_checkpoint_write(PGconn *c, const char *zone, struct store *s, uint64_t version,
                         size_t chunk_bytes, char *err, size_t errlen)
{
	struct zd_buf buf;
	struct store_cursor cur = STORE_CURSOR_INIT;
	uint32_t serial;
	char vbuf[24], sbuf[16], nbuf[16];
	int seq = 0, in_flight = 0;
	zd_err e;
	PGresult *r;

	if ((e = store_serial_find(s, version, &serial)) != ZD_OK) {
		snprintf(err, errlen, "version %" PRIu64 " is not in memory", version);
		return e;
	}
	snprintf(vbuf, sizeof vbuf, "%" PRIu64, version);
	snprintf(sbuf, sizeof sbuf, "%" PRIu32, serial);
	const char *p3[3] = {zone, vbuf, sbuf};
	r = PQexecParams(c,
	                 "INSERT INTO zonedist.checkpoint (zone, version, serial) VALUES ($1, $2, "
	                 "$3)",
	                 3, NULL, p3, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		e = db_fail(c, r, "inserting the checkpoint", err, errlen);
		PQclear(r);
		return e;
	}
	PQclear(r);
	/* 2 x chunk_bytes: one name's records may overshoot a chunk. */
	zd_buf_init(&buf, chunk_bytes * 2 + (1u << 20));
	while (!cur.done) {
		/* Names in small steps: the store's read lock is held per step
		 * only, never across a database round trip. */
		e = store_walk_wire(s, version, &cur, 256, &buf);
		if (e == ZD_ELIMIT && buf.len > 0) {
			e = ZD_EBUG; /* one step of names did not fit twice a chunk */
			snprintf(err, errlen, "checkpoint chunk overflow");
		}
		if (e != ZD_OK)
			goto out;
		if (buf.len >= chunk_bytes || (cur.done && buf.len > 0)) {
			if (in_flight) {
				in_flight = 0;
				if ((e = chunk_wait(c, err, errlen)) != ZD_OK)
					goto out;
			}
			if ((e = chunk_send(c, zone, vbuf, seq++, &buf, err, errlen)) != ZD_OK)
				goto out;
			in_flight = 1;
			zd_buf_reset(&buf);
		}
	}
	in_flight = 0;
	if ((e = chunk_wait(c, err, errlen)) != ZD_OK)
		goto out;
	snprintf(nbuf, sizeof nbuf, "%d", seq);
	const char *p3b[3] = {zone, vbuf, nbuf};
	r = PQexecParams(c,
	                 "UPDATE zonedist.checkpoint SET chunks = $3, complete = true "
	                 "WHERE zone = $1 AND version = $2",
	                 3, NULL, p3b, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		e = db_fail(c, r, "completing the checkpoint", err, errlen);
	PQclear(r);
out:
	if (in_flight) { /* drain the answer; the first failure is the reason */
		char ignored[256];
		chunk_wait(c, ignored, sizeof ignored);
	}
	zd_buf_clear(&buf);
	return e;
}

/* Run a query in single-row mode; each row goes to fn.  Binary results. */
typedef zd_err (*row_fn)(void *arg, PGresult *row, char *err, size_t errlen);

static zd_err
stream_rows(PGconn *c, const char *sql, int n, const char *const *params, const char *what,
            row_fn fn, void *arg, char *err, size_t errlen)
{
	PGresult *r;
	zd_err e = ZD_OK;

	if (!PQsendQueryParams(c, sql, n, NULL, params, NULL, NULL, 1) || !PQsetSingleRowMode(c))
		return db_fail(c, NULL, what, err, errlen);
	while ((r = PQgetResult(c)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_SINGLE_TUPLE) {
			if (e == ZD_OK)
				e = fn(arg, r, err, errlen);
		} else if (st != PGRES_TUPLES_OK && e == ZD_OK) {
			e = db_fail(c, r, what, err, errlen);
		}
		PQclear(r); /* drain every result even after an error */
	}
	return e;
}

static zd_err
chunk_row(void *arg, PGresult *row, char *err, size_t errlen)
{
	struct zd_buf *b = arg;
	zd_err e = zd_buf_append(b, PQgetvalue(row, 0, 0), (size_t)PQgetlength(row, 0, 0));
	if (e != ZD_OK)
		snprintf(err, errlen, "checkpoint larger than %zu bytes", b->cap);
	return e;
}

struct replay {
	struct store *s;
	const char *zone;
};

static zd_err
journal_row(void *arg, PGresult *row, char *err, size_t errlen)
{
	struct replay *rp = arg;
	struct store_txn *t = NULL;
	int64_t version = be64(PQgetvalue(row, 0, 0));
	int64_t serial = be64(PQgetvalue(row, 0, 1));
	int64_t ms = be64(PQgetvalue(row, 0, 2));
	zd_err e;

	if (PQgetlength(row, 0, 0) != 8 || PQgetlength(row, 0, 1) != 8 ||
	    PQgetlength(row, 0, 2) != 8) {
		snprintf(err, errlen, "journal row with unexpected column sizes");
		return ZD_EMALFORMED;
	}
	if ((uint64_t)version != store_published_get(rp->s) + 1) {
		snprintf(err, errlen, "journal gap: version %" PRId64 " follows %" PRIu64, version,
		         store_published_get(rp->s));
		return ZD_EMALFORMED;
	}
	if ((e = store_txn_begin(rp->s, &t)) != ZD_OK)
		return e;
	e = store_txn_delta_apply(t, (const uint8_t *)PQgetvalue(row, 0, 3),
	                          (size_t)PQgetlength(row, 0, 3));
	if (e != ZD_OK) {
		snprintf(err, errlen, "journal version %" PRId64 " does not apply (%s)", version,
		         zd_strerror(e));
		store_txn_abort(&t);
		return e;
	}
	if ((e = store_txn_publish(&t, (uint32_t)serial, (uint64_t)ms)) != ZD_OK)
		return e;
	/* The delta's own SOA must carry the serial the row says. */
	ldns_rr_list *soa = NULL;
	e = store_rrset_find(rp->s, (uint64_t)version, store_apex_get(rp->s), LDNS_RR_TYPE_SOA, 0,
	                     &soa);
	if (e == ZD_OK &&
	    (soa == NULL || ldns_rr_list_rr_count(soa) != 1 ||
	     ldns_rdf2native_int32(ldns_rr_rdf(ldns_rr_list_rr(soa, 0), 2)) != (uint32_t)serial)) {
		snprintf(err, errlen, "journal version %" PRId64 " SOA serial is not %" PRId64,
		         version, serial);
		e = ZD_EMALFORMED;
	}
	ldns_rr_list_deep_free(soa);
	return e;
}

static zd_err zone_load(PGconn *c, const char *zone, struct store *s, uint64_t ck_below,
                        uint64_t upto, int *found, char *err, size_t errlen);

zd_err
journal_zone_load(PGconn *c, const char *zone, struct store *s, int *found, char *err,
                  size_t errlen)
{
	return zone_load(c, zone, s, 0, 0, found, err, errlen);
}

zd_err
journal_zone_load_recent(PGconn *c, const char *zone, struct store *s, uint64_t history_versions,
                         int *found, char *err, size_t errlen)
{
	uint64_t newest = 0;

	if (history_versions == 0)
		return zone_load(c, zone, s, 0, 0, found, err, errlen);
	const char *p[1] = {zone};
	PGresult *r = PQexecParams(c,
	                           "SELECT coalesce(max(version), 0) FROM zonedist.journal WHERE "
	                           "zone = $1",
	                           1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		zd_err e = db_fail(c, r, "finding the newest version", err, errlen);
		PQclear(r);
		return e;
	}
	if (zd_parse_u64(PQgetvalue(r, 0, 0), 0, INT64_MAX, &newest) != ZD_OK) {
		PQclear(r);
		snprintf(err, errlen, "journal version does not parse");
		return ZD_EMALFORMED;
	}
	PQclear(r);
	/* Replaying older versions would only build history that the first
	 * prune drops again; with no checkpoint that old, the oldest one. */
	if (newest <= history_versions)
		return zone_load(c, zone, s, 0, 0, found, err, errlen);
	return zone_load(c, zone, s, newest - history_versions, 0, found, err, errlen);
}

zd_err
journal_zone_load_upto(PGconn *c, const char *zone, struct store *s, uint64_t version, int *found,
                       char *err, size_t errlen)
{
	if (zd_check_failed(version > 0))
		return ZD_EBUG;
	return zone_load(c, zone, s, version, version, found, err, errlen);
}

zd_err
journal_version_find(PGconn *c, const char *zone, uint32_t serial, uint64_t *version_out, char *err,
                     size_t errlen)
{
	char sbuf[16];
	uint64_t v;
	zd_err e = ZD_ENOTFOUND;

	snprintf(sbuf, sizeof sbuf, "%" PRIu32, serial);
	const char *p[2] = {zone, sbuf};
	PGresult *r = PQexecParams(c,
	                           "SELECT max(version) FROM (SELECT version FROM zonedist.journal "
	                           "WHERE zone = $1 AND serial = $2 UNION ALL SELECT version FROM "
	                           "zonedist.checkpoint WHERE zone = $1 AND serial = $2 AND "
	                           "complete) v",
	                           2, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		e = db_fail(c, r, "finding the serial", err, errlen);
	else if (!PQgetisnull(r, 0, 0) &&
	         zd_parse_u64(PQgetvalue(r, 0, 0), 1, INT64_MAX, &v) == ZD_OK) {
		*version_out = v;
		e = ZD_OK;
	}
	PQclear(r);
	return e;
}

/* The newest complete checkpoint at or below below (newest = 1), or the
 * oldest (newest = 0).  *have = 0 when there is none. */
static zd_err
checkpoint_pick(PGconn *c, const char *zone, uint64_t below, int newest, uint64_t *version_out,
                uint32_t *serial_out, uint64_t *ms_out, int *have, char *err, size_t errlen)
{
	char bbuf[24];
	uint64_t version, ms;
	uint32_t serial;
	zd_err e = ZD_OK;

	snprintf(bbuf, sizeof bbuf, "%" PRIu64, below ? below : (uint64_t)INT64_MAX);
	const char *p[3] = {zone, bbuf, newest ? "-1" : "1"};
	PGresult *r = PQexecParams(c,
	                           "SELECT version, serial, (extract(epoch FROM created) * "
	                           "1000)::bigint FROM zonedist.checkpoint WHERE zone = $1 AND "
	                           "complete AND version <= $2 ORDER BY version * $3 LIMIT 1",
	                           3, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		e = db_fail(c, r, "finding the checkpoint", err, errlen);
	} else if (PQntuples(r) == 0) {
		*have = 0;
	} else if (zd_parse_u64(PQgetvalue(r, 0, 0), 1, INT64_MAX, &version) != ZD_OK ||
	           zd_parse_u32(PQgetvalue(r, 0, 1), 0, UINT32_MAX, &serial) != ZD_OK ||
	           zd_parse_u64(PQgetvalue(r, 0, 2), 0, INT64_MAX, &ms) != ZD_OK) {
		snprintf(err, errlen, "checkpoint row does not parse");
		e = ZD_EMALFORMED;
	} else {
		*version_out = version;
		*serial_out = serial;
		*ms_out = ms;
		*have = 1;
	}
	PQclear(r);
	return e;
}

/* ck_below = 0: the oldest checkpoint; otherwise the newest at or below
 * ck_below, or (upto = 0 only) the oldest when none is that old.  Then the
 * journal after it, up to upto (0: all of it). */
static zd_err
zone_load(PGconn *c, const char *zone, struct store *s, uint64_t ck_below, uint64_t upto,
          int *found, char *err, size_t errlen)
{
	struct zd_buf all;
	struct store_txn *t = NULL;
	zd_err e;
	char ubuf[24];
	int have = 0;

	if (zd_check_failed(store_published_get(s) == 0))
		return ZD_EBUG;
	snprintf(ubuf, sizeof ubuf, "%" PRIu64, upto ? upto : (uint64_t)INT64_MAX);
	char vbuf[24];
	uint64_t version = 0, ms = 0;
	uint32_t serial = 0;
	e = checkpoint_pick(c, zone, ck_below, ck_below != 0, &version, &serial, &ms, &have, err,
	                    errlen);
	if (e == ZD_OK && !have && ck_below != 0 && upto == 0)
		e = checkpoint_pick(c, zone, 0, 0, &version, &serial, &ms, &have, err, errlen);
	if (e != ZD_OK)
		return e;
	if (!have) {
		*found = 0;
		return ZD_OK;
	}
	snprintf(vbuf, sizeof vbuf, "%" PRIu64, version);
	const char *p2[2] = {zone, vbuf};
	zd_buf_init(&all, (size_t)16 << 30); /* bytes: a 10M-name zone fits */
	e = stream_rows(c,
	                "SELECT data FROM zonedist.checkpoint_chunk WHERE zone = $1 AND "
	                "version = $2 ORDER BY seq",
	                2, p2, "reading the checkpoint", chunk_row, &all, err, errlen);
	if (e != ZD_OK)
		goto out;
	if ((e = store_base_set(s, version)) != ZD_OK || (e = store_txn_begin(s, &t)) != ZD_OK)
		goto out;
	if ((e = store_txn_delta_apply(t, all.data, all.len)) != ZD_OK) {
		snprintf(err, errlen, "checkpoint of version %" PRIu64 " does not apply", version);
		store_txn_abort(&t);
		goto out;
	}
	if ((e = store_txn_publish(&t, serial, ms)) != ZD_OK)
		goto out;
	zd_buf_clear(&all);
	struct replay rp = {.s = s, .zone = zone};
	const char *p3[3] = {zone, vbuf, ubuf};
	e = stream_rows(c,
	                "SELECT version, serial, (extract(epoch FROM created) * 1000)::bigint, "
	                "delta FROM zonedist.journal WHERE zone = $1 AND version > $2 AND "
	                "version <= $3 "
	                "ORDER BY version",
	                3, p3, "reading the journal", journal_row, &rp, err, errlen);
	if (e == ZD_OK)
		*found = 1;
out:
	zd_buf_clear(&all);
	return e;
}

zd_err
journal_zone_catch_up(PGconn *c, const char *zone, struct store *s, size_t *applied, char *err,
                      size_t errlen)
{
	char vbuf[24];
	uint64_t before = store_published_get(s);
	struct replay rp = {.s = s, .zone = zone};
	zd_err e;

	if (zd_check_failed(before > 0))
		return ZD_EBUG;
	snprintf(vbuf, sizeof vbuf, "%" PRIu64, before);
	const char *p[2] = {zone, vbuf};
	e = stream_rows(c,
	                "SELECT version, serial, (extract(epoch FROM created) * 1000)::bigint, "
	                "delta FROM zonedist.journal WHERE zone = $1 AND version > $2 "
	                "ORDER BY version",
	                2, p, "reading the journal", journal_row, &rp, err, errlen);
	*applied = (size_t)(store_published_get(s) - before);
	return e;
}
