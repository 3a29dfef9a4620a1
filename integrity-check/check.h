/* integrity-check/check.h -- one integrity check of one secondary: its SOA
 * serial, its whole zone by AXFR, the digest of the same serial from
 * zonedistd's API, and, only when the digests differ, the whole version
 * from zonedistd for a record-level report; then the DNSSEC checks of what
 * the secondary serves (docs/INTEGRITY.md).
 *
 * Threads: any; opts and target are only read.  Limits: as xfrin.h and
 * api_client.h; max_rrsets/max_records bound the differences described.
 * Standards: RFC 5936, RFC 8976, RFC 4034/5155 (via dnssec.h). */
#ifndef ZD_CHECK_H
#define ZD_CHECK_H

#include <jansson.h>
#include <stdint.h>

#include "common/zd_err.h"
#include "integrity-check/api_client.h"
#include "integrity-check/dnssec.h"
#include "integrity-check/xfrin.h"

enum check_state {
	CHECK_IN_SYNC = 0, /* serves exactly the newest published serial */
	CHECK_LAGGING,     /* serves exactly an older published serial */
	CHECK_DIVERGED,    /* serves records no published serial had */
	CHECK_UNREACHABLE, /* no answer to SOA or AXFR */
	CHECK_ERROR,       /* refused, too large, or zonedistd could not be asked */
};

struct check_target {
	char name[128]; /* as given, for reports: "127.0.0.1@5300" */
	struct xfrin_peer peer;
};

struct check_opts {
	const char *zone;      /* presentation form, trailing dot */
	struct api_client api; /* zonedistd */
	size_t max_rrsets;     /* differing RRsets described (all are counted) */
	size_t max_records;    /* records described per RRset */
	uint32_t lag_warn_s;   /* behind longer than this: warning (0: never) */
	uint32_t lag_crit_s;   /* behind longer than this: critical (0: never) */
	int full;              /* also compare record by record when the digests match */
	struct dnssec_check_opts dnssec;
};

/* Names for reports and the check_result table. */
const char *check_state_name(enum check_state s);
const char *check_severity_name(int severity);

/* Check one secondary.  On ZD_OK *out is a new JSON report the caller owns
 * (json_decref()) whatever the verdict: "state", "severity" (0 ok,
 * 1 warning, 2 critical), "message", "serial", "latest_serial",
 * "versions_behind", "behind_seconds", "differences", "dnssec", timings.
 * Other codes only when memory ran out. */
zd_err check_secondary(const struct check_opts *o, const struct check_target *t, json_t **out);

#endif
