/* integrity-check/zoneset.h -- a whole zone as zonedist-check holds it: each
 * record once, in canonical wire form, sorted in canonical order.  Compact
 * (a record costs its canonical wire bytes plus 16), so a 1M-delegation
 * signed zone fits in a few hundred MiB.
 *
 * Threads: one owner while filling; read-only (any thread) after
 * zoneset_finish().  Limits: max_bytes of canonical records in all
 * (ZD_ELIMIT beyond).  Standards: RFC 4034 s6 via common/zd_zonemd.h. */
#ifndef ZD_ZONESET_H
#define ZD_ZONESET_H

#include <ldns/ldns.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zd_buf.h"
#include "common/zd_err.h"
#include "common/zd_zonemd.h"

struct zoneset {
	ldns_rdf *apex;      /* owned, canonical */
	struct zd_buf bytes; /* every record's canonical wire, back to back */
	struct zd_crr *rrs;  /* after zoneset_finish(): sorted, no duplicates */
	size_t n;
	size_t alloc;
	int finished;
};

/* apex borrowed (copied).  On ZD_OK *out is new (zoneset_free()). */
zd_err zoneset_new(const ldns_rdf *apex, size_t max_bytes, struct zoneset **out);
void zoneset_free(struct zoneset *zs);

/* Add a record (borrowed; copied in canonical form).  Before
 * zoneset_finish() only.  ZD_ELIMIT past max_bytes. */
zd_err zoneset_rr_add(struct zoneset *zs, const ldns_rr *rr);

/* Sort, fold duplicates; the set is read-only afterwards. */
zd_err zoneset_finish(struct zoneset *zs);

/* Index of the first record at or after owner (canonical order), n when
 * none; owner borrowed. */
size_t zoneset_owner_lower_bound(const struct zoneset *zs, const ldns_rdf *owner);

/* A record as a new ldns_rr the caller frees (ldns_rr_free); NULL on
 * allocation failure. */
ldns_rr *zoneset_rr_to_ldns(const struct zd_crr *r);

/* The ZONEMD (SIMPLE, SHA-384) digest of the set. */
zd_err zoneset_digest(const struct zoneset *zs, uint8_t out[ZD_ZONEMD_LEN]);

/* The apex SOA's serial; ZD_ENOTFOUND without one. */
zd_err zoneset_serial_get(const struct zoneset *zs, uint32_t *out);

#endif
