/* registry-adapter/adapter.h -- the registry database side of zonedist: LISTEN
 * for zonedist_change, take batches of outbox rows (zonedist.change) and read
 * the current records of the names they mark through zonedist.zone_rrs(), all
 * in one REPEATABLE READ transaction that the caller ends (DESIGN.md,
 * decisions 1, 2 and 9).  Registry rows that are no valid record go to
 * zonedist.rejected inside that transaction and the batch goes on.
 * Threads: one thread per struct ra (libpq connections are not shared); every
 * call may block on PostgreSQL, so never call it from the event loop.
 * Limits: RA_BATCH_CHANGES_MAX change rows per batch, RA_BATCH_ROWS_MAX
 * zone_rrs rows per batch, RA_FULL_CHANGES_MAX change rows covered by a full
 * load, RA_FETCH_MAX rows per ra_full_next(), RA_NAME_RRS_MAX records per
 * owner name; exceeding one is ZD_ELIMIT with the reason in ra_error_get().
 * One open batch per struct ra at a time. */
#ifndef RA_ADAPTER_H
#define RA_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>
#include <libpq-fe.h>

#include "common/zd_err.h"

#define RA_BATCH_CHANGES_MAX 1000000u           /* change rows per ra_batch_take() */
#define RA_BATCH_ROWS_MAX    1000000u           /* zone_rrs rows per ra_batch_take() */
#define RA_FULL_CHANGES_MAX  10000000u          /* change rows one full load covers */
#define RA_FETCH_MAX         1000000u           /* rows per ra_full_next() */
#define RA_NAME_RRS_MAX      65536u             /* records of one owner name */
#define RA_FULL_BYTES_MAX    ((size_t)64 << 30) /* bytes of records a full load holds */

#define RA_CHANNEL "zonedist_change" /* NOTIFY channel; payload = zone */

struct ra;       /* one connection to the registry database */
struct ra_batch; /* one open batch: a REPEATABLE READ transaction */

/* conninfo: a libpq connection string or URI (borrowed; copied).  Does not
 * connect.  On ZD_OK *out is new; the caller owns it (ra_free()). */
zd_err ra_new(const char *conninfo, struct ra **out);
/* Closes the connection.  Every batch of ra must be committed or aborted
 * first.  NULL does nothing. */
void ra_free(struct ra *ra);

/* Connect (if not connected; a broken connection is closed and replaced) and
 * LISTEN zonedist_change.  ZD_EDB with the reason in ra_error_get().  Never
 * blocks longer than the connect timeout: connect_timeout=5 unless conninfo
 * says otherwise.  ZD_EBUG while a batch is open. */
zd_err ra_connect(struct ra *ra);
int ra_is_connected(const struct ra *ra);
/* Why the last failed call on ra failed: libpq/SQL error text, with the
 * SQLSTATE when known; "" after ra_connect(), ra_wait(), ra_batch_take(),
 * ra_full_begin() or ra_batch_commit() succeeded.  Borrowed: valid until the
 * next call on ra. */
const char *ra_error_get(const struct ra *ra);

/* Wait up to timeout_ms for a NOTIFY on zonedist_change; *notified = 1 if
 * any arrived (all pending ones are consumed, also those that arrived during
 * a batch), else 0.  ZD_EDB if the connection broke (then ra_is_connected()
 * is 0) or is not there. */
zd_err ra_wait(struct ra *ra, uint32_t timeout_ms, int *notified);

/* Open a batch for zone (borrowed; normalized here): BEGIN ISOLATION LEVEL
 * REPEATABLE READ; take up to max_changes visible change rows of zone (ORDER
 * BY id, FOR UPDATE SKIP LOCKED, so a standby cannot take the same rows);
 * call zonedist.zone_rrs(zone, distinct names) once; parse every row with
 * ra_row_parse() and check each name's records with ra_rrs_check().  Rows
 * that fail go to zonedist.rejected (same transaction; txid: the first change
 * row of that name) and are logged; a name with a row that is no valid record
 * at all is not handed up (it keeps its published records: a typo must not
 * remove a delegation), while duplicates and TTL mismatches only drop the
 * offending row; so do rows for a name that was not asked
 * for ("not requested"), and change rows whose name does not parse, is the
 * apex or is outside the zone: those are consumed (deleted on commit) but
 * their name is not handed up.
 * On ZD_OK *out is an open batch the caller must end with ra_batch_commit()
 * or ra_batch_abort(), even when it holds 0 changes.  On failure nothing is
 * open (rolled back): ZD_EDB (reason in ra_error_get(); reconnect when
 * ra_is_connected() is 0), ZD_ELIMIT (max_changes > RA_BATCH_CHANGES_MAX, or
 * more than RA_BATCH_ROWS_MAX rows or RA_NAME_RRS_MAX records of one name:
 * take fewer changes), ZD_EMALFORMED (zone is no domain name), ZD_ENOMEM,
 * ZD_EBUG (a batch is already open). */
zd_err ra_batch_take(struct ra *ra, const char *zone, uint32_t max_changes, struct ra_batch **out);

size_t ra_batch_changes_get(const struct ra_batch *b); /* change rows taken */
/* Distinct owner names handed up, in canonical order (RFC 4034 s6.1). */
size_t ra_batch_names_get(const struct ra_batch *b);
/* Borrowed from b; NULL when i is out of range. */
const ldns_rdf *ra_batch_name_get(const struct ra_batch *b, size_t i);
/* Borrowed from b: the wanted records of that name in canonical form,
 * possibly empty (= the name has no records now); NULL when i is out of
 * range. */
const ldns_rr_list *ra_batch_name_rrs_get(const struct ra_batch *b, size_t i);
/* Borrowed from b; *n set to the count (0: the pointer may be NULL). */
const int64_t *ra_batch_change_ids_get(const struct ra_batch *b, size_t *n);
/* Distinct registry txids of the change rows, ascending.  Borrowed. */
const int64_t *ra_batch_txids_get(const struct ra_batch *b, size_t *n);
/* Rows sent to zonedist.rejected by this batch so far. */
size_t ra_batch_rejected_get(const struct ra_batch *b);
/* The batch's connection, for the journal insert inside the same
 * transaction.  Borrowed; do not end the transaction through it. */
PGconn *ra_batch_conn_get(struct ra_batch *b);

/* DELETE the consumed change rows (by id), COMMIT.  Takes *b (sets NULL)
 * also on failure; on failure the transaction is rolled back (when the
 * connection still allows it) and ZD_EDB returned; ZD_EBUG if fewer rows
 * were deleted than taken (rolled back too).  ZD_EDB from a connection that
 * broke after COMMIT was sent means the outcome is unknown: read the journal
 * after reconnecting. */
zd_err ra_batch_commit(struct ra_batch **b);
/* ROLLBACK; takes *b (sets NULL).  NULL or *b == NULL does nothing. */
void ra_batch_abort(struct ra_batch **b);

/* Full load of zone (borrowed; normalized here): BEGIN REPEATABLE READ; lock
 * and remember every change row of the zone visible now (the snapshot covers
 * them, so commit deletes them).  The batch then has no names
 * (ra_batch_names_get() is 0); read the records with ra_full_next() and end
 * it like any batch.  Errors as ra_batch_take() (ZD_ELIMIT: more than
 * RA_FULL_CHANGES_MAX change rows). */
zd_err ra_full_begin(struct ra *ra, const char *zone, struct ra_batch **out);
/* The zone's records, whole names at a time, about max (1..RA_FETCH_MAX)
 * records per call (one name may be more), appended to out (out owns them).
 * The first call reads all of zonedist.zone_rrs(zone, NULL) in one streamed
 * COPY, unsorted (the rows stream while the database still produces them;
 * no sort of the whole zone first), parsing each row as it comes and keeping
 * the records compactly by owner (owners.h: about the size of the zone's
 * wire form), and sorts the names here; then every call checks and hands up
 * the next names in canonical order (RFC 4034 s6.1; rejects
 * as in ra_batch_take(); "not requested" does not apply).  The memory is
 * freed once the last name is handed up.  *done = 1 when everything is in
 * out.  ZD_ELIMIT past RA_FULL_BYTES_MAX bytes of records or RA_NAME_RRS_MAX
 * records of one name.  On failure out is as it was, and the batch can only
 * be aborted. */
zd_err ra_full_next(struct ra_batch *b, size_t max, ldns_rr_list *out, int *done);
/* Where a full load's time went so far, in ms: until the first row came (the
 * database starts zone_rrs()), waiting for rows (the first included), and
 * parsing, grouping and checking the rows here. */
void ra_full_times_get(const struct ra_batch *b, uint64_t *first_ms, uint64_t *fetch_ms,
                       uint64_t *check_ms);

#endif
