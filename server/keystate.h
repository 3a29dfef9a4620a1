/* server/keystate.h -- a zone's key state in PostgreSQL (zonedist.key,
 * schema/migrations/0005_keys.sql; docs/KEYS.md): each key the zone signs
 * with is recorded the first time, so the rollover schedule's starting
 * times survive restarts.
 * The ZSK rollover (server/keyroll.c) moves its keys through published,
 * active, retired and removed here, in the transaction of the version that
 * makes each step, so a restart resumes exactly where the journal is.
 * Threads: the caller's (start-up, the batch thread).  Limits:
 * KEYSTATE_ROWS_MAX rows per zone. */
#ifndef ZD_KEYSTATE_H
#define ZD_KEYSTATE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "common/zd_err.h"

/* Record the zone's active KSK and ZSK (tags, algorithm) as active since
 * now (Unix seconds) unless they are recorded already, and return the
 * activation times on record (*ksk_active, *zsk_active).  ZD_EDB with err
 * when the database refuses. */
zd_err keystate_record(PGconn *c, const char *zone, uint8_t algorithm, uint16_t ksk_tag,
                       uint16_t zsk_tag, uint64_t now, uint64_t *ksk_active, uint64_t *zsk_active,
                       char *err, size_t errlen);

/* One row of zonedist.key. */
enum keystate_state {
	KEYSTATE_PUBLISHED, /* in the DNSKEY RRset, signs nothing yet (a KSK: signs the
	                       DNSKEY RRset beside the active one) */
	KEYSTATE_READY,     /* a KSK whose CDS/CDNSKEY are published: DS submitted */
	KEYSTATE_ACTIVE,    /* signs the zone */
	KEYSTATE_RETIRED,   /* in the DNSKEY RRset, signs nothing any more */
	KEYSTATE_REMOVED,   /* gone from the DNSKEY RRset */
	KEYSTATE_OTHER,     /* generated or ready: not a state zonedistd leaves a ZSK in */
};
struct keystate_row {
	uint16_t tag;
	uint8_t algorithm;
	enum keystate_state state;
	uint64_t published, active, retired, removed; /* Unix seconds; 0: not yet */
	uint64_t compromised;                         /* an operator said so at; 0: never */
	uint64_t ready;                               /* a KSK's CDS published (DS submitted) */
	uint64_t ds_seen;                             /* a KSK's DS at the parent since */
};
#define KEYSTATE_ROWS_MAX 4096

/* The zone's rows of role ("ZSK", "KSK"), at most KEYSTATE_ROWS_MAX
 * (ZD_ELIMIT beyond).  On ZD_OK *rows is a new array of *n the caller
 * frees. */
zd_err keystate_load(PGconn *c, const char *zone, const char *role, struct keystate_row **rows,
                     size_t *n, char *err, size_t errlen);

/* The ZSK roll's steps, each one statement in the caller's transaction
 * (the one that journals the version making the step): tag published at
 * at; tag active and old retired at at; tag removed at at.  ZD_EDB with
 * err when the database refuses or the rows are not in the state the step
 * starts from. */
zd_err keystate_zsk_publish(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag,
                            uint64_t at, char *err, size_t errlen);
zd_err keystate_zsk_activate(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag,
                             uint16_t old, uint64_t at, char *err, size_t errlen);
zd_err keystate_zsk_remove(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag,
                           uint64_t at, char *err, size_t errlen);

/* The double-signature KSK roll's steps, likewise: tag published (it signs
 * the DNSKEY RRset beside the active KSK); its CDS/CDNSKEY published (ready,
 * DS submitted); its DS seen at the parent; tag active and old removed. */
zd_err keystate_ksk_publish(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag,
                            uint64_t at, char *err, size_t errlen);
zd_err keystate_ksk_cds(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag, uint64_t at,
                        char *err, size_t errlen);
zd_err keystate_ksk_ds_seen(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag,
                            uint64_t at, char *err, size_t errlen);
zd_err keystate_ksk_settle(PGconn *c, const char *zone, uint8_t algorithm, uint16_t tag,
                           uint16_t old, uint64_t at, char *err, size_t errlen);

/* Unsigning through CDS/CDNSKEY delete (RFC 8078 s4; zonedist.unsign).
 * Times are Unix seconds, 0 while the step has not happened. */
struct keystate_unsign {
	int present; /* the zone has a row: its unsigning began */
	uint64_t delete_published, ds_gone, unsigned_at;
};
zd_err keystate_unsign_load(PGconn *c, const char *zone, struct keystate_unsign *out, char *err,
                            size_t errlen);
/* stage 1: the delete CDS/CDNSKEY published at `at`; 2: the parent's DS
 * gone (by: who said so); 3: the zone unsigned; 0: forget the row (the
 * unsigning was called off).  Stages 1..3 must change exactly one row. */
zd_err keystate_unsign_step(PGconn *c, const char *zone, int stage, uint64_t at, const char *by,
                            char *err, size_t errlen);

/* The algorithm rollover (RFC 6781 s4.1.4; zonedist.algroll): the open
 * one, if any.  Times are Unix seconds, 0 while the step has not happened. */
struct keystate_algroll {
	int present;
	uint8_t from, to;   /* the algorithms */
	uint16_t ksk, zsk;  /* the new keys' tags */
	uint64_t signed_at; /* every RRset signed by both algorithms */
	uint64_t published, cds, ds_seen, removed;
};
zd_err keystate_algroll_load(PGconn *c, const char *zone, struct keystate_algroll *out, char *err,
                             size_t errlen);
/* Step stage of a's roll at `at`, one statement in the caller's
 * transaction: 1 begun (a's algorithms and tags recorded), 2 the new keys
 * published, 3 the CDS/CDNSKEY the new KSK's, 4 the new DS seen at the
 * parent (by: who said so), 5 the old keys out of the DNSKEY RRset, 6 done:
 * the old algorithm's rows in zonedist.key removed, the new keys' rows
 * active.  ZD_EDB with err when the rows are not in the state the step
 * starts from. */
zd_err keystate_algroll_step(PGconn *c, const char *zone, const struct keystate_algroll *a,
                             int stage, uint64_t at, const char *by, char *err, size_t errlen);

#endif
