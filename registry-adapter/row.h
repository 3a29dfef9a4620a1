/* registry-adapter/row.h -- one zonedist.zone_rrs() row (owner, type, ttl,
 * rdata, all text) into one ldns_rr, and the checks that need every record of
 * one owner at once.  Pure: no I/O, no logging, no shared state.
 * Threads: any.
 * Limits: owner <= RA_ROW_OWNER_MAX bytes of text, type <= RA_ROW_TYPE_MAX,
 * ttl <= RA_ROW_TTL_MAX, rdata <= RA_ROW_RDATA_MAX; rdata <= 65535 octets of
 * wire form; TTL 0..2147483647.
 * Standards: RFC 1035 s5.1 (presentation form), RFC 2181 s5.2 (one TTL per
 * RRset) and s10.1 (one CNAME, no other data), RFC 3597 (\# form),
 * RFC 4034 s6.2 (canonical form) and s6.3 (canonical RR ordering),
 * RFC 6672 s2.4 (one DNAME per owner). */
#ifndef RA_ROW_H
#define RA_ROW_H

#include <stddef.h>

#include <ldns/ldns.h>

#include "common/zd_err.h"

#define RA_ROW_OWNER_MAX 1024 /* bytes: 255 octets, each up to 4 as \DDD */
#define RA_ROW_TYPE_MAX  16   /* bytes */
#define RA_ROW_TTL_MAX   16   /* bytes */
/* bytes: ldns silently drops rdata text past about 65535 characters, so stay
 * well below; no realistic registry record comes near. */
#define RA_ROW_RDATA_MAX 65000

/* Parse one zone_rrs row.  zone: the apex (borrowed).  owner, type, ttl,
 * rdata: the row's text (borrowed); NULL stands for SQL NULL and is rejected.
 * The owner must be an absolute name strictly below the apex; the type a
 * mnemonic ldns knows (no TYPEnnn), not one zonedist manages (SOA, RRSIG,
 * NSEC, NSEC3, NSEC3PARAM, DNSKEY, CDS, CDNSKEY, ZONEMD), not a meta or
 * query type, and not IPSECKEY (ldns' parser leaks on bad input); the class is always IN; rdata is presentation form on one line,
 * without parentheses or comments, every name in it absolute, every number in
 * range, and nothing left over.
 * On ZD_OK *out is a new RR in canonical form (owner and rdata names lower
 * case) the caller owns (ldns_rr_free()).  On ZD_EMALFORMED *reason is a static
 * string saying why.  ZD_ENOMEM when ldns could not allocate; ZD_EBUG on a NULL
 * zone, out or reason.  Never crashes or asserts on any bytes. */
zd_err ra_row_parse(const ldns_rdf *zone, const char *owner, const char *type, const char *ttl,
                    const char *rdata, ldns_rr **out, const char **reason);

/* An owner name of zone from text (borrowed): absolute, strictly below the
 * apex, limits and reasons as ra_row_parse().  On ZD_OK *out is a new
 * canonical (lower-case) name the caller owns (ldns_rdf_deep_free()); on
 * ZD_EMALFORMED *reason is a static string.  ZD_ENOMEM; ZD_EBUG on NULL
 * arguments. */
zd_err ra_owner_parse(const ldns_rdf *zone, const char *text, ldns_rdf **out, const char **reason);

/* A record ra_rrs_check() refused. */
struct ra_reject {
	ldns_rr *rr;        /* owned by the array: ra_rejects_free() */
	const char *reason; /* static */
};

/* Check the records of one owner together (rrs: canonical RRs, all with the
 * same owner, as ra_row_parse() makes them).  Records are ordered by type and
 * canonical rdata (RFC 4034 s6.3), and then:
 *  - in an RRset whose TTLs differ, the RRs whose TTL is not the smallest are
 *    rejected: "TTL differs within the RRset" (the smallest wins, whatever
 *    order the rows came in);
 *  - an RR equal in type and rdata to one kept before it: "duplicate";
 *  - a CNAME next to any other type: every CNAME is rejected ("CNAME and
 *    other data at one name"); a second CNAME: "more than one CNAME at a name";
 *  - a second DNAME: "more than one DNAME at a name".
 * On ZD_OK rrs holds the accepted RRs in that order, and *rejected is a new
 * array of *n_rejected entries (NULL when 0) the caller owns
 * (ra_rejects_free()); the rejected RRs moved there from rrs.  On failure
 * (ZD_ENOMEM; ZD_EBUG for mixed owners or NULL arguments) rrs is unchanged. */
zd_err ra_rrs_check(ldns_rr_list *rrs, struct ra_reject **rejected, size_t *n_rejected);

/* Frees the array and its RRs; NULL does nothing. */
void ra_rejects_free(struct ra_reject *r, size_t n);

#endif
