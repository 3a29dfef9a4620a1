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
#include <stdint.h>

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

/* The binary form of COPY ... TO STDOUT (FORMAT binary), as PostgreSQL's
 * documentation of COPY gives it: an 11-octet signature, a 32-bit flags
 * field (bit 16: OIDs, refused; other bits of the critical upper half are
 * refused too), a header extension (skipped), then per tuple a 16-bit field
 * count followed by each field's 32-bit length (-1: NULL) and bytes, and a
 * count of -1 at the end.  All integers in network order.  Pure: any bytes,
 * never reads past p + n. */
#define RA_COPY_FIELD_MAX (16u << 20) /* bytes of one field */

struct ra_copy_field {
	const uint8_t *p; /* into the bytes given; NULL for SQL NULL */
	size_t len;
};

enum ra_copy_kind {
	RA_COPY_MORE,   /* the bytes end inside the next item: give more */
	RA_COPY_HEADER, /* the file header */
	RA_COPY_ROW,    /* one tuple of ncols fields in f[] */
	RA_COPY_END,    /* the trailer */
};

/* The next item of the stream in p[0..n): the header while !header_seen,
 * else a tuple or the trailer.  On ZD_OK *kind says which and *used how many
 * bytes it took (0 for RA_COPY_MORE).  ZD_EMALFORMED: no COPY binary
 * stream of ncols columns (bad signature or flags, a tuple with another
 * field count, a length below -1 or above RA_COPY_FIELD_MAX); ZD_EBUG on
 * NULL arguments. */
zd_err ra_copy_next(const uint8_t *p, size_t n, int header_seen, size_t ncols,
                    struct ra_copy_field *f, size_t *used, enum ra_copy_kind *kind);

#endif
