/* server/gate.h -- the DNSSEC validation gate (DESIGN.md decision 8): an
 * opinion on the signer's output that shares no code with the signer.  It
 * runs after signing and before a version is journalled; nothing reaches a
 * secondary unless it passes.  Signatures are checked with the public DNSKEYs
 * of the version under test and OpenSSL (hsm/verify.h); names, wire form,
 * canonical order and NSEC3 hashes come from ldns.
 *
 * What is checked, per name (the names a txn changed, or every name):
 *  - every RRSIG: covered RRset present, signer = apex, labels, original TTL,
 *    RRSIG TTL, inception <= now < expiration (RFC 1982 arithmetic), a
 *    DNSKEY with that tag and algorithm and the zone-key flag (in the
 *    RRset, or one of the policy's unpublished keys), and the signature
 *    itself; a new signature must still be valid for
 *    min_remaining seconds;
 *  - coverage: an RRset that must be signed (all authoritative data; at a
 *    delegation only DS and NSEC; nothing occluded) has a valid signature of
 *    every algorithm of the zone keys (RFC 6840 s5.11); one that must not be
 *    signed (NS at a delegation, glue) has no RRSIG at all;
 *  - denial: the name's NSEC or NSEC3 (type bitmap, TTL = min(SOA TTL, SOA
 *    minimum), parameters, opt-out flag), the links into and out of it, the
 *    opt-out span over an insecure delegation, empty non-terminals, and the
 *    apex DNSKEY and NSEC3PARAM RRsets.
 *
 * Threads: the batch thread (the store's writer) only: gate_txn_check reads
 * the open txn's version.  Limits: a name with more than GATE_TYPES_MAX types
 * or a walk over more than GATE_VISITS_MAX names around one change fails
 * the check (ZD_ELIMIT).  NSEC3 hash algorithm 1 (SHA-1) only.
 * Standards: RFC 4034 (s3.1.8.1 signing input, s4 NSEC, s6 canonical
 * form), RFC 4035 s2 (what is signed), RFC 5155 (NSEC3, opt-out), RFC 6840
 * s5.11 (every algorithm), RFC 9077 (NSEC TTL), RFC 9276 (parameters). */
#ifndef ZD_GATE_H
#define ZD_GATE_H

#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

#include "common/zd_err.h"
#include "server/store.h"

#define GATE_TYPES_MAX  512        /* RR types at one name */
#define GATE_VISITS_MAX (1u << 20) /* names looked at to find one neighbour */

struct gate_policy {
	int nsec3;              /* 1: NSEC3 chain; 0: NSEC chain */
	int opt_out;            /* NSEC3 opt-out (RFC 5155 s6) */
	uint16_t iterations;    /* NSEC3 extra iterations */
	const uint8_t *salt;    /* borrowed; salt_len bytes */
	uint8_t salt_len;       /* bytes */
	uint32_t now;           /* seconds since the epoch */
	uint32_t min_remaining; /* seconds a new signature must still be valid */
	/* DNSKEY RRs of keys that sign but are not in the DNSKEY RRset (an
	 * algorithm rollover, RFC 6781 s4.1.4: the new algorithm signs before
	 * its keys are published, the old one after its keys left), or NULL
	 * (borrowed).  Their signatures verify with them, and every algorithm
	 * among them must sign as the published ones must. */
	const ldns_rr_list *unpublished_keys;
};

/* Check what the open txn t changed relative to the published version: the
 * RRsets at every owner name t changed (all of them, not only the changed
 * ones), the names below an owner whose NS RRset changed, the denial records
 * of these names and of their ancestors up to the apex, the NSEC3 ring
 * around every NSEC3 owner added or removed, and that every NSEC3 owner
 * added belongs to one of these names.  Before the first publish it checks
 * the whole zone (gate_zone_check).  ZD_EMALFORMED when a check fails: why
 * (whylen bytes, always terminated when whylen > 0) names the first failing
 * owner, type and reason on one line, e.g.
 * "example.tld. DS: RRSIG 13/12345 does not verify".  Another code when the
 * store could not be read (why says which).  *n_checked (may be NULL) is
 * set to the number of signatures verified, also on failure. */
zd_err gate_txn_check(struct store *s, struct store_txn *t, const struct gate_policy *p,
                      size_t *n_checked, char *why, size_t whylen);

/* The whole zone at version v (the first signed version, a full re-sign):
 * the same rules over every name, streamed with store_walk in chunks, so
 * memory does not grow with the zone; the NSEC3 ring is checked as one
 * closed ring in hash order whose owners are exactly the hashes of the
 * names that need one.  Results as gate_txn_check. */
zd_err gate_zone_check(struct store *s, uint64_t v, const struct gate_policy *p, size_t *n_checked,
                       char *why, size_t whylen);

#endif
