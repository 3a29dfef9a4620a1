/* integrity-check/dnssec.h -- zonedist-check's DNSSEC opinion on the zone a
 * secondary serves: every RRSIG verifies with the zone's own DNSKEYs (ldns +
 * OpenSSL, public keys only) and is not about to expire, the NSEC3 (or
 * NSEC) chain is complete and consistent, and the DNSKEY set matches the DS
 * records the parent is configured to hold.  It shares no code with
 * zonedistd's signer or gate (DESIGN.md: an independent opinion).
 *
 * Threads: any; the zoneset is only read, by up to opts->threads threads
 * (at most 64).  Limits: at most max_problems problems of each severity are
 * kept while checking, and max_problems are described, critical ones first
 * (all are counted); class IN only (records of other classes are reported
 * and ignored); at most 2^32 - 1 records; NSEC3 chains with more than 500
 * iterations are reported, not checked (RFC 9276 s3.2); at most 16 DNSKEYs
 * with one key tag and algorithm are tried per RRSIG; an algorithm ldns
 * cannot verify (RSAMD5, DSA, GOST, private) is reported once and its
 * signatures are not checked.  Memory beyond the zoneset: about 20 bytes
 * per RRset that is or must be signed, and in NSEC3 zones 28 bytes per
 * original name (delegations included) and 24 per NSEC3 record.
 * Standards: RFC 4034/4035 (signatures, NSEC, what is signed), RFC 5155
 * (NSEC3, opt-out, empty non-terminals), RFC 6840 s5.11 (every algorithm of
 * the DNSKEY set), RFC 4509 / RFC 4034 s5 (DS digests). */
#ifndef ZD_CHECK_DNSSEC_H
#define ZD_CHECK_DNSSEC_H

#include <ldns/ldns.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zd_err.h"
#include "integrity-check/zoneset.h"

enum dnssec_severity {
	DNSSEC_OK = 0,
	DNSSEC_WARNING = 1,  /* e.g. a signature expires within warn_seconds */
	DNSSEC_CRITICAL = 2, /* bogus or expired signature, broken chain, DS mismatch */
};

struct dnssec_check_opts {
	uint32_t now;                  /* validation time, seconds since the epoch */
	uint32_t warn_seconds;         /* signature expiring sooner: warning */
	const ldns_rr_list *parent_ds; /* borrowed; NULL or empty: no DS check */
	size_t max_problems;           /* problems described in the report */
	unsigned threads;              /* signature verification threads; 0 = 1 */
};

struct dnssec_problem {
	enum dnssec_severity severity;
	char *owner; /* presentation form, owned */
	uint16_t type;
	char *what; /* one line, owned, e.g. "RRSIG 13/12345 does not verify" */
};

struct dnssec_report {
	int is_signed;                   /* the apex has a DNSKEY RRset */
	enum dnssec_severity severity;   /* the worst problem */
	uint64_t rrsigs;                 /* RRSIG records looked at (misplaced ones included) */
	uint64_t rrsigs_valid;           /* that verified and are within their validity */
	uint64_t bogus;                  /* do not verify, or no matching DNSKEY */
	uint64_t expired;                /* outside inception..expiration at now */
	uint64_t expiring;               /* valid, but expire within warn_seconds */
	uint64_t unsigned_rrsets;        /* authoritative RRsets lacking a valid signature of some
	                            * zone-key algorithm (one whose only signature is bogus
	                            * or expired counts here too) */
	uint64_t chain_errors;           /* NSEC3/NSEC records missing, extra or inconsistent */
	uint64_t ds_errors;              /* parent DS without a matching, signing DNSKEY */
	uint64_t misplaced;              /* RRSIGs over data that must not be signed (NS at a
	                            * delegation, glue, occluded names): a warning, as
	                            * validators never use them (RFC 4035 s2.2) */
	int64_t min_remaining;           /* seconds until the soonest expiration of any RRSIG with
	                            * readable times (negative: expired); INT64_MAX: none */
	struct dnssec_problem *problems; /* owned; critical first, each in the order found */
	size_t n_problems;               /* described */
	uint64_t problems_total;         /* found */
};

/* Check zs (finished).  On ZD_OK *out is filled (dnssec_report_clear()
 * frees it), whatever it found: findings are in the report, not the return
 * code; ZD_ENOMEM, ZD_ELIMIT (more than 2^32 - 1 records) or ZD_EBUG leave
 * *out untouched.  An unsigned zone (no apex DNSKEY) has is_signed = 0 and
 * no problems, unless parent_ds is given (critical: the parent expects
 * keys) or RRSIGs are left in it (each is bogus: no DNSKEY). */
zd_err dnssec_zone_check(const struct zoneset *zs, const struct dnssec_check_opts *o,
                         struct dnssec_report *out);
/* Frees what r owns and zeroes it; a zeroed report is fine. */
void dnssec_report_clear(struct dnssec_report *r);

#endif
