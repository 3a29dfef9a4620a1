/* registry-adapter/owners.h -- the records of a full load, grouped by owner
 * name as they arrive in any order, and kept compact until they are handed
 * up name by name: each owner's wire form once, each record as type, class,
 * TTL and wire rdata (about 40 bytes for an NS record, against about 200 for
 * an ldns_rr).  The full load reads zone_rrs() unsorted so that PostgreSQL
 * need not sort the whole zone before its first row, and this is where the
 * rows of one owner come together again.
 * Owners are compared byte for byte: give canonical (lower-case) RRs, as
 * ra_row_parse() makes them.
 * Threads: one owner.  Limits: at most cap bytes of records and names
 * (ZD_ELIMIT), at most UINT32_MAX names and records per name. */
#ifndef RA_OWNERS_H
#define RA_OWNERS_H

#include <stddef.h>

#include <ldns/ldns.h>

#include "common/zd_err.h"

struct ra_owners;

/* ZD_ENOMEM, or ZD_EBUG on a NULL out or cap 0. */
zd_err ra_owners_new(size_t cap, struct ra_owners **out);
void ra_owners_free(struct ra_owners *o); /* NULL does nothing */

/* Keep a copy of rr (borrowed) under its owner.  On failure nothing was
 * added: ZD_ELIMIT (cap, or UINT32_MAX), ZD_ENOMEM, ZD_EMALFORMED (rdata
 * longer than 65535 octets), ZD_EBUG (NULL, or after ra_owners_sort()). */
zd_err ra_owners_add(struct ra_owners *o, const ldns_rr *rr);

/* Owner names so far; name i is the i-th distinct owner added (until
 * ra_owners_sort()). */
size_t ra_owners_names(const struct ra_owners *o);
/* Records kept under name i (0 when i is out of range). */
size_t ra_owners_count(const struct ra_owners *o, size_t i);
/* Append the records of name i to out, as new RRs in the order they were
 * added (out owns them).  On failure (ZD_ENOMEM; ZD_EBUG for i out of range,
 * a name taken, or NULL) out is as it was. */
zd_err ra_owners_get(const struct ra_owners *o, size_t i, ldns_rr_list *out);
/* Order the names by the canonical sort key (RFC 4034 s6.1, zd_name_key()):
 * from now on name i is the i-th in that order, and ra_owners_add() is
 * ZD_EBUG.  Keeps a table of 4 bytes per name, and needs about 30 more
 * bytes per name while it runs.  ZD_ENOMEM (nothing changed), ZD_EBUG. */
zd_err ra_owners_sort(struct ra_owners *o);
/* ra_owners_get() once per name, after ra_owners_sort(): the memory used
 * only by names already taken goes back to the system, so the arena shrinks
 * as the names are handed up.  Taking a name twice is ZD_EBUG. */
zd_err ra_owners_take(struct ra_owners *o, size_t i, ldns_rr_list *out);
/* Bytes held now: the chunks still mapped and the tables. */
size_t ra_owners_bytes(const struct ra_owners *o);

#endif
