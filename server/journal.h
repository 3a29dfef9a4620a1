/* server/journal.h -- zonedist's state in PostgreSQL: the schema, the journal
 * of deltas (one row per version after the first), and checkpoints (a whole
 * version in chunks).  A restart loads a checkpoint and replays the journal.
 *
 * Threads: whoever owns the PGconn (the batch thread; a checkpoint writer on
 * its own connection).  Limits: a delta or a checkpoint chunk <= 512 MiB (a
 * bytea); load streams rows one at a time.  Errors: ZD_EDB with the server's
 * message and SQLSTATE in err.  Standards: RFC 1995 difference sequences. */
#ifndef ZD_JOURNAL_H
#define ZD_JOURNAL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zd_err.h"
#include "server/store.h"

/* The schema version this binary expects (the newest embedded migration). */
int journal_schema_version_get(void);

/* Apply every migration newer than the database's, each in its own
 * transaction, serialised by an advisory lock; running it again is harmless. */
zd_err journal_schema_install(PGconn *c, char *err, size_t errlen);

/* ZD_OK when the database's schema is the one this binary expects. */
zd_err journal_schema_check(PGconn *c, char *err, size_t errlen);

/* INSERT the journal row of one version, inside the caller's transaction
 * (before the change rows change_ids are deleted: each txid's first change
 * time is read from them).  signed_ms: wall clock when the version was
 * signed, 0 when unsigned.  *first_change_ms: when the oldest change row
 * of the version was written (0: none). */
zd_err journal_delta_append(PGconn *c, const char *zone, uint64_t version, uint32_t serial,
                            const uint8_t *delta, size_t len, const int64_t *change_ids,
                            size_t n_ids, const int64_t *txids, size_t n_txids, uint64_t signed_ms,
                            uint64_t *first_change_ms, char *err, size_t errlen);

/* Releases of held versions (schema 0002, zonedist.release).
 * journal_release_add: an operator's release of zone, by who (CLI).
 * journal_release_use: inside the batch's transaction, take the oldest
 * unused release of zone for version (locks it; marked used on commit);
 * *found = 0 when there is none. */
zd_err journal_release_add(PGconn *c, const char *zone, const char *by, char *err, size_t errlen);
zd_err journal_release_use(PGconn *c, const char *zone, uint64_t version, int *found, char *by,
                           size_t bylen, char *err, size_t errlen);

/* Write version (published in s) as a checkpoint of chunks of at most
 * chunk_bytes, inside the caller's transaction; marked complete last, so a
 * partial checkpoint is never loaded. */
zd_err journal_checkpoint_write(PGconn *c, const char *zone, struct store *s, uint64_t version,
                                size_t chunk_bytes, char *err, size_t errlen);

/* Fill an empty store: the oldest complete checkpoint, then every journal row
 * after it, in version order, each published with its serial and time.
 * *found = 0 (and the store untouched) when the zone has no checkpoint yet.
 * A row that does not follow (version gap, delta that does not apply, serial
 * mismatch) is ZD_EMALFORMED with the version named in err. */
zd_err journal_zone_load(PGconn *c, const char *zone, struct store *s, int *found, char *err,
                         size_t errlen);

/* As journal_zone_load(), but with history_versions > 0 start from the newest
 * complete checkpoint at or below (newest journal version - history_versions),
 * or the oldest checkpoint when none is that old: versions older than the
 * history kept in memory are not loaded.  history_versions = 0: exactly
 * journal_zone_load(). */
zd_err journal_zone_load_recent(PGconn *c, const char *zone, struct store *s,
                                uint64_t history_versions, int *found, char *err, size_t errlen);

/* The version that had serial (the newest such), from the journal and the
 * checkpoints.  ZD_ENOTFOUND when the zone never had it. */
zd_err journal_version_find(PGconn *c, const char *zone, uint32_t serial, uint64_t *version_out,
                            char *err, size_t errlen);

/* Fill an empty store up to version only: the newest complete checkpoint at
 * or below it, then the journal rows up to it.  Cost follows the distance to
 * that checkpoint, not the zone's whole history. */
zd_err journal_zone_load_upto(PGconn *c, const char *zone, struct store *s, uint64_t version,
                              int *found, char *err, size_t errlen);

/* Replay, into a store that already has versions, the journal rows newer than
 * its published version (a version another process or a commit whose outcome
 * was unknown put there), each published with its serial; *applied gets how
 * many.  Inside the caller's snapshot. */
zd_err journal_zone_catch_up(PGconn *c, const char *zone, struct store *s, size_t *applied,
                             char *err, size_t errlen);

#endif
