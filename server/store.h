/* server/store.h -- one zone's multi-versioned contents, in canonical DNS order.
 *
 * Every RRset version carries the internal version range [from, to) in which
 * it was live, so the whole zone at any kept version, and the difference
 * between any two kept versions, come from the same structure.  Internal
 * versions are 64-bit counters starting at 1; serials are kept beside them.
 *
 * Threads: one writer (the batch thread) builds version published+1 in a
 * store_txn; any number of readers (the transfer server) read versions
 * <= store_published_get(); the writer may also read the version its open
 * txn builds (store_txn_version_get()) with every reading function.  Readers hold the store's read lock only for the
 * duration of one call, so a long AXFR never stalls the writer.
 * Limits: names <= 255 octets; an RRset <= 65535 records and 16 MiB of rdata.
 * Standards: RFC 4034 s6 (canonical order and form), RFC 1995 (differences). */
#ifndef ZD_STORE_H
#define ZD_STORE_H

#include <ldns/ldns.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zd_err.h"

struct zd_buf;

#define STORE_LIVE UINT64_MAX

struct store;
struct store_txn;

/* Zone apex as a presentation-form name.  On ZD_OK *out is a new store the
 * caller owns (store_free()). */
zd_err store_new(const char *zone, struct store **out);
void store_free(struct store *s);

/* On an empty store only: the first txn builds first_version (a checkpoint
 * of that version is being loaded).  ZD_EBUG on a store that has versions. */
zd_err store_base_set(struct store *s, uint64_t first_version);

/* Borrowed: the apex, valid for the store's life. */
const ldns_rdf *store_apex_get(const struct store *s);
/* Newest version visible to readers; 0 before the first publish. */
uint64_t store_published_get(const struct store *s);
/* Oldest version still held in memory (0 when empty). */
uint64_t store_oldest_get(const struct store *s);

/* Serial of a kept version. */
zd_err store_serial_find(const struct store *s, uint64_t version, uint32_t *serial_out);
/* Wall-clock publish time (ms since the epoch) of a kept version. */
zd_err store_version_time_find(const struct store *s, uint64_t version, uint64_t *published_ms_out);
/* Newest kept version whose serial is serial (serials are unique within the
 * kept history except across 2^32 wraps; the newest wins). */
zd_err store_version_find(const struct store *s, uint32_t serial, uint64_t *version_out);

/* --- Reading -------------------------------------------------------- */

/* Called once per RR; rr is borrowed for the call only.  Returning anything
 * but ZD_OK stops the walk and is passed back. */
typedef zd_err (*store_rr_fn)(void *arg, const ldns_rr *rr);
/* Called once per RR, which it owns from then on (also when it fails). */
typedef zd_err (*store_rr_take_fn)(void *arg, ldns_rr *rr);
/* A store_rr_take_fn: rr into the ldns_rr_list arg, which owns it then
 * (ldns_rr_list_deep_free); ZD_ENOMEM (rr freed). */
zd_err store_rr_list_take(void *arg, ldns_rr *rr);

/* Position of a chunked walk; zero it (STORE_CURSOR_INIT) to start. */
struct store_cursor {
	uint8_t key[512]; /* canonical key of the last name emitted */
	uint16_t keylen;
	int started;
	int done;
};
#define STORE_CURSOR_INIT                                                                          \
	{                                                                                          \
		.keylen = 0, .started = 0, .done = 0                                               \
	}

/* Emit the records of up to max_names owner names of the zone at version,
 * in canonical order, after the cursor's position; sets c->done at the end.
 * The apex SOA comes first (it is the first name).  ZD_ENOTFOUND if version
 * is not kept. */
zd_err store_walk(struct store *s, uint64_t version, struct store_cursor *c, size_t max_names,
                  store_rr_fn fn, void *arg);
/* store_walk() in wire form, no ldns_rr built: the same records in the same
 * order appended to out, each as ldns_rr2wire() gives store_walk()'s
 * (owner uncompressed, class IN).  ZD_ELIMIT when out is full (it may then
 * end in part of a record). */
zd_err store_walk_wire(struct store *s, uint64_t version, struct store_cursor *c, size_t max_names,
                       struct zd_buf *out);

/* The RRset (type, covered; covered = 0 unless type is RRSIG) at owner as of
 * version, as a new list the caller owns (ldns_rr_list_deep_free); NULL in
 * *out when there is none. */
zd_err store_rrset_find(struct store *s, uint64_t version, const ldns_rdf *owner, uint16_t type,
                        uint16_t covered, ldns_rr_list **out);

/* Every RR at owner as of version (RRSIGs included, SOA first), like
 * store_walk for one name; no call when owner holds nothing.  fn runs under
 * the store's read lock: it must not write to the store. */
zd_err store_name_rrs(struct store *s, uint64_t version, const ldns_rdf *owner, store_rr_fn fn,
                      void *arg);
/* store_name_rrs(), each RR given to fn rather than lent: for a caller
 * that keeps them, a copy fewer. */
zd_err store_name_rrs_take(struct store *s, uint64_t version, const ldns_rdf *owner,
                           store_rr_take_fn fn, void *arg);

/* The types of the RRsets live at owner as of version, ascending, each once
 * (RRSIG once whatever it covers); *n = 0 when none.  ZD_ELIMIT when more
 * than cap (65536 always suffices). */
zd_err store_name_types(struct store *s, uint64_t version, const ldns_rdf *owner, uint16_t *types,
                        size_t cap, size_t *n);

/* The nearest owner name strictly after (dir > 0) or before (dir < 0) owner
 * in canonical order that holds a live RRset of type (0: of any type) as of
 * version; owner itself need not exist, and NULL means from the start
 * (dir > 0: the first such name) or from the end (dir < 0: the last).  ZD_ENOTFOUND when there is none
 * (no wrap-around).  On ZD_OK *out is a new name the caller frees
 * (ldns_rdf_deep_free).  Cost: the names skipped. */
zd_err store_name_neighbor(struct store *s, uint64_t version, const ldns_rdf *owner, int dir,
                           uint16_t type, ldns_rdf **out);

/* The kept versions (after the oldest kept one, up to the published one) in
 * which any RRset at owner changed (appeared, went, or got other records),
 * newest first, at most cap of them in versions[]; *n gets how many.
 * *more = 1 when there were more than cap (the oldest are left out). */
zd_err store_name_history(struct store *s, const ldns_rdf *owner, uint64_t *versions, size_t cap,
                          size_t *n, int *more);

/* Like store_walk, but fn gets each owner name holding a live RRset (no
 * records): up to max_names names after the cursor.  fn runs under the read
 * lock (no writes). */
typedef zd_err (*store_name_fn)(void *arg, const ldns_rdf *name);
zd_err store_names_walk(struct store *s, uint64_t version, struct store_cursor *c, size_t max_names,
                        store_name_fn fn, void *arg);
/* store_names_walk(), fn also getting the name's types as
 * store_name_types() gives them (ascending, RRSIG once; borrowed for the
 * call).  ZD_ELIMIT at a name of more than STORE_NAME_TYPES_MAX types. */
#define STORE_NAME_TYPES_MAX 1024
typedef zd_err (*store_name_types_fn)(void *arg, const ldns_rdf *name, const uint16_t *types,
                                      size_t n_types);
zd_err store_names_types_walk(struct store *s, uint64_t version, struct store_cursor *c,
                              size_t max_names, store_name_types_fn fn, void *arg);

/* Calls fn for each name strictly below owner that holds any live RRset as
 * of version, in canonical order; a return other than ZD_OK stops the walk
 * and is passed back.  ZD_ELIMIT after max_visits names (live or not) were
 * looked at.  fn runs under the read lock (no writes). */
zd_err store_below_walk(struct store *s, uint64_t version, const ldns_rdf *owner, size_t max_visits,
                        store_name_fn fn, void *arg);

/* Differences from version `from` to version `to` (from < to, both kept),
 * condensed: each RR that is in `from` and not in `to` goes to del_fn, each
 * RR in `to` and not in `from` to add_fn, SOA included.  Cost follows the
 * names changed in between, not the zone size.  At most max_rrs records in
 * all (ZD_ELIMIT beyond, so the caller can answer with a full zone). */
zd_err store_diff(struct store *s, uint64_t from, uint64_t to, size_t max_rrs, store_rr_fn del_fn,
                  store_rr_fn add_fn, void *arg);

/* --- Writing (the batch thread only) -------------------------------- */

/* Start building version published+1.  One txn at a time. */
zd_err store_txn_begin(struct store *s, struct store_txn **out);
/* The version this txn builds. */
uint64_t store_txn_version_get(const struct store_txn *t);

/* Replace the RRset (type, covered) at owner by rrs (borrowed; all of the
 * same owner/type/class; duplicates folded; the TTL of the first RR is kept).
 * An empty or NULL list deletes the RRset.  Names are stored in canonical
 * (lower-case) form.  A put that changes nothing records nothing. */
zd_err store_txn_rrset_put(struct store_txn *t, const ldns_rdf *owner, uint16_t type,
                           uint16_t covered, const ldns_rr_list *rrs);

/* Make owner hold exactly `rrs` (borrowed, any types) for every RRset type
 * except those for which keep(type) returns 1 (e.g. the signer's RRSIG and
 * NSEC3).  keep may be NULL. */
zd_err store_txn_name_set(struct store_txn *t, const ldns_rdf *owner, const ldns_rr_list *rrs,
                          int (*keep)(uint16_t type));

/* Each (owner, type, covered) this txn changed and did not undo, in the
 * order of the changes (the same RRset may come more than once). */
typedef zd_err (*store_change_fn)(void *arg, const ldns_rdf *owner, uint16_t type,
                                  uint16_t covered);
zd_err store_txn_changes_foreach(struct store_txn *t, store_change_fn fn, void *arg);

/* Number of RRsets this txn changed so far. */
size_t store_txn_changes_get(const struct store_txn *t);

/* The txn's changes as an RFC 1995 difference sequence in uncompressed wire
 * form: old SOA, deleted RRs, new SOA, added RRs (for the first version, no
 * old SOA: only the new SOA and the added RRs).  The txn must have put a new
 * SOA.  On ZD_OK, *wire (of *len bytes) is new memory the caller frees. */
zd_err store_txn_delta_wire(struct store_txn *t, uint8_t **wire, size_t *len);

/* Apply a difference sequence (from store_txn_delta_wire) to this txn:
 * all or nothing as far as the published state goes (on failure abort the
 * txn).  ZD_EMALFORMED when the bytes do not parse or a deleted RR is absent. */
zd_err store_txn_delta_apply(struct store_txn *t, const uint8_t *wire, size_t len);

/* Allocate everything publish needs, so that a txn prepared before the
 * database commit cannot fail to publish after it. */
zd_err store_txn_prepare(struct store_txn *t);

/* Publish: the txn's version becomes visible with this serial and publish
 * time.  Takes *t and sets it to NULL.  Cannot fail after store_txn_prepare();
 * otherwise a failure aborts the txn. */
zd_err store_txn_publish(struct store_txn **t, uint32_t serial, uint64_t published_ms);
/* Discard: every change is undone, the store is as before begin.  Takes *t. */
void store_txn_abort(struct store_txn **t);

/* --- History -------------------------------------------------------- */

/* A reader that reads version v over several calls (a transfer, a checkpoint)
 * pins it first, so store_prune() never drops it meanwhile.  Any thread;
 * pins count.  ZD_ENOTFOUND when v is not kept (any more). */
zd_err store_version_pin(struct store *s, uint64_t v);
/* Undo one store_version_pin(s, v) that returned ZD_OK. */
void store_version_unpin(struct store *s, uint64_t v);

/* The batch thread only, between txns: forget the versions below keep_from
 * (lowered to the oldest pinned version, and never above the published one).
 * Afterwards they are ZD_ENOTFOUND to every reader, and RRset versions and
 * names visible at none of the kept versions are freed.  Readers keep
 * running: the write lock is taken in short steps.  ZD_EBUG with a txn
 * open. */
zd_err store_prune(struct store *s, uint64_t keep_from);

/* --- Memory ---------------------------------------------------------- */

struct store_stats {
	size_t names;
	size_t rrsets_live;
	size_t rrsets_total; /* including history */
	size_t bytes;        /* allocated by the store */
	uint64_t versions;
};
void store_stats_get(struct store *s, struct store_stats *out);

#endif
