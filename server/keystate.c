#include "server/keystate.h"

#include <inttypes.h>
#include <stdio.h>

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
