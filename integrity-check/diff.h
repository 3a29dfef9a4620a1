/* integrity-check/diff.h -- the records by which what a secondary serves
 * differs from the version zonedistd published, grouped by RRset.
 * Threads: any.  Limits: at most max_rrsets RRsets and max_records records
 * per RRset are described; every difference is counted. */
#ifndef ZD_DIFF_H
#define ZD_DIFF_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_err.h"
#include "integrity-check/zoneset.h"

struct diff_rrset {
	char *owner; /* presentation form, owned */
	uint16_t type;
	uint16_t covered; /* RRSIG: the type it covers */
	char **missing;   /* records (presentation form) zonedistd has and the secondary lacks */
	size_t n_missing;
	char **extra; /* records the secondary has and zonedistd does not */
	size_t n_extra;
	uint64_t missing_total, extra_total;
};

struct diff {
	struct diff_rrset *rrsets;
	size_t n_rrsets;       /* described */
	uint64_t rrsets_total; /* that differ */
	uint64_t missing_total, extra_total;
};

/* want: zonedistd's version; got: the secondary's.  A record present in
 * both with another TTL counts as missing (zonedistd's TTL) and extra.
 * On ZD_OK *out is filled (diff_clear()). */
zd_err diff_zonesets(const struct zoneset *want, const struct zoneset *got, size_t max_rrsets,
                     size_t max_records, struct diff *out);
void diff_clear(struct diff *d);

#endif
