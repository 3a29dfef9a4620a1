#include "server/keystate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_parse.h"

static zd_err
record_one(PGconn *c, const char *zone, const char *role, uint8_t alg, uint16_t tag, uint64_t now,
           uint64_t *active, char *err, size_t errlen)
{
	char a[8], t[8], n[24];
	snprintf(a, sizeof a, "%u", alg);
	snprintf(t, sizeof t, "%u", tag);
	snprintf(n, sizeof n, "%" PRIu64, now);
	const char *p[] = {zone, role, a, t, n};
	/* one statement: insert when missing, then read what is on record */
	PGresult *r = PQexecParams(
	        c,
	        "WITH ins AS (INSERT INTO zonedist.key (zone, role, algorithm, tag, state, "
	        "generated, published, ready, active) VALUES ($1, $2, $3, $4, 'active', "
	        "to_timestamp($5), to_timestamp($5), to_timestamp($5), to_timestamp($5)) "
	        "ON CONFLICT DO NOTHING RETURNING active) "
	        "SELECT floor(extract(epoch FROM active))::bigint FROM ins UNION ALL "
	        "SELECT floor(extract(epoch FROM active))::bigint FROM zonedist.key WHERE zone = "
	        "$1 "
	        "AND role = $2 AND algorithm = $3 AND tag = $4",
	        5, NULL, p, NULL, NULL, 0);
	zd_err e = ZD_OK;
	uint64_t v = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "recording the %s (tag %u) in zonedist.key: %s", role, tag,
		         PQresultErrorMessage(r));
		e = ZD_EDB;
	} else if (PQntuples(r) < 1 || PQgetisnull(r, 0, 0) ||
	           zd_parse_u64(PQgetvalue(r, 0, 0), 0, UINT64_MAX, &v) != ZD_OK) {
		snprintf(err, errlen, "zonedist.key has no activation time for the %s (tag %u)",
		         role, tag);
		e = ZD_EDB;
	} else {
		*active = v;
	}
	PQclear(r);
	return e;
}

zd_err
keystate_record(PGconn *c, const char *zone, uint8_t algorithm, uint16_t ksk_tag, uint16_t zsk_tag,
                uint64_t now, uint64_t *ksk_active, uint64_t *zsk_active, char *err, size_t errlen)
{
	zd_err e = record_one(c, zone, "KSK", algorithm, ksk_tag, now, ksk_active, err, errlen);
	if (e == ZD_OK)
		e = record_one(c, zone, "ZSK", algorithm, zsk_tag, now, zsk_active, err, errlen);
	return e;
}

static enum keystate_state
state_parse(const char *s)
{
	if (strcmp(s, "published") == 0)
		return KEYSTATE_PUBLISHED;
	if (strcmp(s, "ready") == 0)
		return KEYSTATE_READY;
	if (strcmp(s, "active") == 0)
		return KEYSTATE_ACTIVE;
	if (strcmp(s, "retired") == 0)
		return KEYSTATE_RETIRED;
	if (strcmp(s, "removed") == 0)
		return KEYSTATE_REMOVED;
	return KEYSTATE_OTHER;
}

static uint64_t
time_get(PGresult *r, int row, int col)
{
	uint64_t v = 0;
	if (PQgetisnull(r, row, col) ||
	    zd_parse_u64(PQgetvalue(r, row, col), 0, UINT64_MAX, &v) != ZD_OK)
		return 0;
	return v;
}

zd_err
keystate_load(PGconn *c, const char *zone, const char *role, struct keystate_row **rows, size_t *n,
              char *err, size_t errlen)
{
	const char *p[] = {zone, role};
	PGresult *r = PQexecParams(
	        c,
	        "SELECT tag, algorithm, state, floor(extract(epoch FROM published))::bigint, "
	        "floor(extract(epoch FROM active))::bigint, "
	        "floor(extract(epoch FROM retired))::bigint, "
	        "floor(extract(epoch FROM removed))::bigint, "
	        "floor(extract(epoch FROM compromised))::bigint, "
	        "floor(extract(epoch FROM ready))::bigint, "
	        "floor(extract(epoch FROM ds_seen))::bigint FROM zonedist.key "
	        "WHERE zone = $1 AND role = $2 ORDER BY active NULLS LAST, tag LIMIT 4097",
	        2, NULL, p, NULL, NULL, 0);
	zd_err e = ZD_OK;
	struct keystate_row *v = NULL;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading the %ss in zonedist.key: %s", role,
		         PQresultErrorMessage(r));
		e = ZD_EDB;
		goto out;
	}
	int rn = PQntuples(r);
	if (rn > KEYSTATE_ROWS_MAX) {
		snprintf(err, errlen, "zonedist.key holds more than %d %ss of the zone",
		         KEYSTATE_ROWS_MAX, role);
		e = ZD_ELIMIT;
		goto out;
	}
	if ((v = calloc((size_t)rn + 1, sizeof *v)) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	for (int i = 0; i < rn; i++) {
		uint64_t tag = 0, alg = 0;
		if (zd_parse_u64(PQgetvalue(r, i, 0), 0, 65535, &tag) != ZD_OK ||
		    zd_parse_u64(PQgetvalue(r, i, 1), 0, 255, &alg) != ZD_OK) {
			snprintf(err, errlen, "zonedist.key: a %s row has a bad tag or algorithm",
			         role);
			e = ZD_EDB;
			goto out;
		}
		v[i].tag = (uint16_t)tag;
		v[i].algorithm = (uint8_t)alg;
		v[i].state = state_parse(PQgetvalue(r, i, 2));
		v[i].published = time_get(r, i, 3);
		v[i].active = time_get(r, i, 4);
		v[i].retired = time_get(r, i, 5);
		v[i].removed = time_get(r, i, 6);
		v[i].compromised = time_get(r, i, 7);
		v[i].ready = time_get(r, i, 8);
		v[i].ds_seen = time_get(r, i, 9);
	}
	*rows = v;
	*n = (size_t)rn;
	v = NULL;
out:
	free(v);
	PQclear(r);
	return e;
}

/* One step of a key: the statement, with $1 zone, $2 algorithm, $3 tag and
 * $4 the time, must change exactly one row. */
static zd_err
key_step(PGconn *c, const char *what, const char *sql, const char *zone, uint8_t algorithm,
         uint16_t tag, uint64_t at, char *err, size_t errlen)
{
	char a[8], t[8], n[24];
	snprintf(a, sizeof a, "%u", algorithm);
	snprintf(t, sizeof t, "%u", tag);
	snprintf(n, sizeof n, "%" PRIu64, at);
	const char *p[] = {zone, a, t, n};
	PGresult *r = PQexecParams(c, sql, 4, NULL, p, NULL, NULL, 0);
	zd_err e = ZD_OK;
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "%s %u in zonedist.key: %s", what, tag,
		         PQresultErrorMessage(r));
		e = ZD_EDB;
	} else if (strcmp(PQcmdTuples(r), "1") != 0) {
		snprintf(err, errlen,
		         "%s %u in zonedist.key: %s rows changed, 1 expected (the key is not in "
		         "the state this step starts from)",
		         what, tag, PQcmdTuples(r));
		e = ZD_EDB;
	}
	PQclear(r);
	return e;
}

zd_err
keystate_zsk_publish(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag, uint64_t at,
                     char *err, size_t errlen)
{
	return key_step(c, "publishing ZSK",
	                "INSERT INTO zonedist.key (zone, role, algorithm, tag, state, generated, "
	                "published) VALUES ($1, 'ZSK', $2, $3, 'published', to_timestamp($4), "
	                "to_timestamp($4))",
	                zone, algorithm, tag, at, err, errlen);
}

zd_err
keystate_zsk_activate(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag, uint16_t old,
                      uint64_t at, char *err, size_t errlen)
{
	zd_err e = key_step(c, "activating ZSK",
	                    "UPDATE zonedist.key SET state = 'active', ready = to_timestamp($4), "
	                    "active = to_timestamp($4) WHERE zone = $1 AND role = 'ZSK' AND "
	                    "algorithm = $2 AND tag = $3 AND state = 'published'",
	                    zone, algorithm, tag, at, err, errlen);
	if (e != ZD_OK)
		return e;
	return key_step(c, "retiring ZSK",
	                "UPDATE zonedist.key SET state = 'retired', retired = to_timestamp($4) "
	                "WHERE zone = $1 AND role = 'ZSK' AND algorithm = $2 AND tag = $3 AND "
	                "state = 'active'",
	                zone, algorithm, old, at, err, errlen);
}

zd_err
keystate_zsk_remove(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag, uint64_t at,
                    char *err, size_t errlen)
{
	return key_step(c, "removing ZSK",
	                "UPDATE zonedist.key SET state = 'removed', removed = to_timestamp($4) "
	                "WHERE zone = $1 AND role = 'ZSK' AND algorithm = $2 AND tag = $3 AND "
	                "state = 'retired'",
	                zone, algorithm, tag, at, err, errlen);
}

zd_err
keystate_ksk_publish(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag, uint64_t at,
                     char *err, size_t errlen)
{
	return key_step(c, "publishing KSK",
	                "INSERT INTO zonedist.key (zone, role, algorithm, tag, state, generated, "
	                "published) VALUES ($1, 'KSK', $2, $3, 'published', to_timestamp($4), "
	                "to_timestamp($4))",
	                zone, algorithm, tag, at, err, errlen);
}

zd_err
keystate_ksk_cds(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag, uint64_t at,
                 char *err, size_t errlen)
{
	return key_step(c, "publishing the CDS/CDNSKEY of KSK",
	                "UPDATE zonedist.key SET state = 'ready', ready = to_timestamp($4), "
	                "ds_submitted = to_timestamp($4) WHERE zone = $1 AND role = 'KSK' AND "
	                "algorithm = $2 AND tag = $3 AND state = 'published'",
	                zone, algorithm, tag, at, err, errlen);
}

zd_err
keystate_ksk_ds_seen(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag, uint64_t at,
                     char *err, size_t errlen)
{
	return key_step(c, "recording the parent's DS of KSK",
	                "UPDATE zonedist.key SET ds_seen = to_timestamp($4) WHERE zone = $1 AND "
	                "role = 'KSK' AND algorithm = $2 AND tag = $3 AND state = 'ready' AND "
	                "ds_seen IS NULL",
	                zone, algorithm, tag, at, err, errlen);
}

zd_err
keystate_ksk_settle(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag, uint16_t old,
                    uint64_t at, char *err, size_t errlen)
{
	zd_err e = key_step(c, "activating KSK",
	                    "UPDATE zonedist.key SET state = 'active', active = to_timestamp($4) "
	                    "WHERE zone = $1 AND role = 'KSK' AND algorithm = $2 AND tag = $3 AND "
	                    "state = 'ready' AND ds_seen IS NOT NULL",
	                    zone, algorithm, tag, at, err, errlen);
	if (e != ZD_OK)
		return e;
	return key_step(c, "removing KSK",
	                "UPDATE zonedist.key SET state = 'removed', retired = to_timestamp($4), "
	                "removed = to_timestamp($4), ds_withdrawn = to_timestamp($4) WHERE zone = "
	                "$1 AND role = 'KSK' AND algorithm = $2 AND tag = $3 AND state = 'active'",
	                zone, algorithm, old, at, err, errlen);
}

zd_err
keystate_unsign_load(PGconn *c, const char *zone, struct keystate_unsign *out, char *err,
                     size_t errlen)
{
	const char *p[] = {zone};
	PGresult *r = PQexecParams(c,
	                           "SELECT floor(extract(epoch FROM delete_published))::bigint, "
	                           "floor(extract(epoch FROM ds_gone))::bigint, "
	                           "floor(extract(epoch FROM unsigned_at))::bigint FROM "
	                           "zonedist.unsign WHERE zone = $1",
	                           1, NULL, p, NULL, NULL, 0);
	zd_err e = ZD_OK;
	memset(out, 0, sizeof *out);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading zonedist.unsign: %s", PQresultErrorMessage(r));
		e = ZD_EDB;
	} else if (PQntuples(r) == 1) {
		out->present = 1;
		out->delete_published = time_get(r, 0, 0);
		out->ds_gone = time_get(r, 0, 1);
		out->unsigned_at = time_get(r, 0, 2);
	}
	PQclear(r);
	return e;
}

zd_err
keystate_unsign_step(PGconn *c, const char *zone, int stage, uint64_t at, const char *by, char *err,
                     size_t errlen)
{
	static const char *const sql[] = {
	        "DELETE FROM zonedist.unsign WHERE zone = $1",
	        "INSERT INTO zonedist.unsign (zone, delete_published) VALUES ($1, "
	        "to_timestamp($2)) ON CONFLICT (zone) DO NOTHING",
	        "UPDATE zonedist.unsign SET ds_gone = to_timestamp($2), ds_gone_by = $3 WHERE "
	        "zone = $1 AND ds_gone IS NULL",
	        "UPDATE zonedist.unsign SET unsigned_at = to_timestamp($2) WHERE zone = $1 AND "
	        "ds_gone IS NOT NULL AND unsigned_at IS NULL",
	};
	static const char *const what[] = {"forgetting", "starting", "recording the DS gone for",
	                                   "recording the end of"};
	char t[24];
	if (stage < 0 || stage > 3)
		return ZD_EBUG;
	snprintf(t, sizeof t, "%" PRIu64, at);
	const char *p[] = {zone, t, by ? by : ""};
	static const int np_of[] = {1, 2, 3, 2};
	int np = np_of[stage];
	PGresult *r = PQexecParams(c, sql[stage], np, NULL, p, NULL, NULL, 0);
	zd_err e = ZD_OK;
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "%s the unsigning of %s in zonedist.unsign: %s", what[stage],
		         zone, PQresultErrorMessage(r));
		e = ZD_EDB;
	} else if (stage > 0 && strcmp(PQcmdTuples(r), "1") != 0) {
		snprintf(err, errlen,
		         "%s the unsigning of %s in zonedist.unsign: %s rows changed, 1 expected",
		         what[stage], zone, PQcmdTuples(r));
		e = ZD_EDB;
	}
	PQclear(r);
	return e;
}

zd_err
keystate_algroll_load(PGconn *c, const char *zone, struct keystate_algroll *out, char *err,
                      size_t errlen)
{
	const char *p[] = {zone};
	PGresult *r = PQexecParams(
	        c,
	        "SELECT from_alg, to_alg, ksk, zsk, floor(extract(epoch FROM signed))::bigint, "
	        "floor(extract(epoch FROM published))::bigint, floor(extract(epoch FROM "
	        "cds))::bigint, floor(extract(epoch FROM ds_seen))::bigint, floor(extract(epoch "
	        "FROM removed))::bigint FROM zonedist.algroll WHERE zone = $1 AND done IS NULL",
	        1, NULL, p, NULL, NULL, 0);
	zd_err e = ZD_OK;
	memset(out, 0, sizeof *out);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading zonedist.algroll: %s", PQresultErrorMessage(r));
		e = ZD_EDB;
	} else if (PQntuples(r) == 1) {
		uint64_t v[4];
		for (int i = 0; i < 4 && e == ZD_OK; i++)
			if (zd_parse_u64(PQgetvalue(r, 0, i), 0, 65535, &v[i]) != ZD_OK)
				e = ZD_EDB;
		if (e != ZD_OK || v[0] > 255 || v[1] > 255) {
			snprintf(err, errlen, "zonedist.algroll of %s: a malformed row", zone);
			e = ZD_EDB;
		} else {
			out->present = 1;
			out->from = (uint8_t)v[0];
			out->to = (uint8_t)v[1];
			out->ksk = (uint16_t)v[2];
			out->zsk = (uint16_t)v[3];
			out->signed_at = time_get(r, 0, 4);
			out->published = time_get(r, 0, 5);
			out->cds = time_get(r, 0, 6);
			out->ds_seen = time_get(r, 0, 7);
			out->removed = time_get(r, 0, 8);
		}
	}
	PQclear(r);
	return e;
}

zd_err
keystate_algroll_step(PGconn *c, const char *zone, const struct keystate_algroll *a, int stage,
                      uint64_t at, const char *by, char *err, size_t errlen)
{
	static const char *const sql[] = {
	        NULL,
	        "INSERT INTO zonedist.algroll (zone, from_alg, to_alg, ksk, zsk, signed) VALUES "
	        "($1, $3, $4, $5, $6, to_timestamp($2))",
	        "UPDATE zonedist.algroll SET published = to_timestamp($2) WHERE zone = $1 AND "
	        "done IS NULL AND published IS NULL",
	        "UPDATE zonedist.algroll SET cds = to_timestamp($2) WHERE zone = $1 AND done IS "
	        "NULL AND published IS NOT NULL AND cds IS NULL",
	        "UPDATE zonedist.algroll SET ds_seen = to_timestamp($2), ds_seen_by = $3 WHERE "
	        "zone = $1 AND done IS NULL AND cds IS NOT NULL AND ds_seen IS NULL",
	        "UPDATE zonedist.algroll SET removed = to_timestamp($2) WHERE zone = $1 AND done "
	        "IS NULL AND ds_seen IS NOT NULL AND removed IS NULL",
	        /* the end: the old algorithm's keys removed, the new ones active */
	        "WITH g AS (UPDATE zonedist.algroll SET done = to_timestamp($2) WHERE zone = $1 "
	        "AND done IS NULL AND removed IS NOT NULL AND ksk = $5 AND zsk = $6 RETURNING "
	        "published, cds, ds_seen), o AS (UPDATE zonedist.key SET state = 'removed', "
	        "retired = coalesce(retired, to_timestamp($2)), removed = to_timestamp($2) WHERE "
	        "zone = $1 AND algorithm = $3 AND state <> 'removed' AND EXISTS (SELECT 1 FROM "
	        "g)), n AS (INSERT INTO zonedist.key (zone, role, algorithm, tag, state, "
	        "generated, published, ready, active, ds_seen) SELECT $1, r.role, $4, r.tag, "
	        "'active', g.published, g.published, CASE WHEN r.role = 'KSK' THEN g.cds ELSE "
	        "g.published END, to_timestamp($2), CASE WHEN r.role = 'KSK' THEN g.ds_seen END "
	        "FROM g, (VALUES ('KSK', $5::integer), ('ZSK', $6::integer)) AS r(role, tag) "
	        "RETURNING 1) SELECT (SELECT count(*) FROM n)",
	};
	static const char *const what[] = {NULL,
	                                   "starting",
	                                   "recording the new keys' publication in",
	                                   "recording the new CDS in",
	                                   "recording the new DS at the parent in",
	                                   "recording the old keys' removal in",
	                                   "ending"};
	if (stage < 1 || stage > 6)
		return ZD_EBUG;
	char t[24], f[8], to[8], k[8], z[8];
	snprintf(t, sizeof t, "%" PRIu64, at);
	snprintf(f, sizeof f, "%u", a->from);
	snprintf(to, sizeof to, "%u", a->to);
	snprintf(k, sizeof k, "%u", a->ksk);
	snprintf(z, sizeof z, "%u", a->zsk);
	const char *p6[] = {zone, t, f, to, k, z}, *p3[] = {zone, t, by ? by : ""};
	const char *const *p = stage == 4 ? p3 : p6;
	static const int np_of[] = {0, 6, 2, 2, 3, 2, 6};
	PGresult *r = PQexecParams(c, sql[stage], np_of[stage], NULL, p, NULL, NULL, 0);
	zd_err e = ZD_OK;
	ExecStatusType want = stage == 6 ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
	const char *n =
	        stage == 6 && PQresultStatus(r) == want ? PQgetvalue(r, 0, 0) : PQcmdTuples(r);
	if (PQresultStatus(r) != want) {
		snprintf(err, errlen, "%s the algorithm rollover of %s (zonedist.algroll): %s",
		         what[stage], zone, PQresultErrorMessage(r));
		e = ZD_EDB;
	} else if (strcmp(n, stage == 6 ? "2" : "1") != 0) {
		snprintf(err, errlen,
		         "%s the algorithm rollover of %s (zonedist.algroll): %s rows changed, %s "
		         "expected",
		         what[stage], zone, n, stage == 6 ? "2" : "1");
		e = ZD_EDB;
	}
	PQclear(r);
	return e;
}
