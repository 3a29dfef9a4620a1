/* server/opdb.h -- the operator's side of the database: a thread with its
 * own PostgreSQL connection that answers the API's questions (trace,
 * rejected rows, holds) without blocking the event loop, writes the transfer
 * log and the publication times off the publishing path, and keeps a
 * snapshot of what the status shows (outbox depth, rejected rows, holds,
 * the newest integrity-check result per secondary).
 *
 * Threads: opdb_transfer(), the secondaries table and query callbacks run on
 * the event loop's thread; opdb_published() on any thread; the database work
 * on opdb's own thread.  Limits: OPDB_QUEUE_MAX pending log rows (more are
 * counted and dropped with a warning: the log is best effort, publishing is
 * not slowed by it), OPDB_QUERIES_MAX queued questions (more: ZD_ELIMIT),
 * OPDB_SECONDARIES_MAX secondaries remembered per zone.
 * Errors: a question whose database is down gets err "database unreachable"
 * and no result; log rows wait for the connection to come back. */
#ifndef ZD_OPDB_H
#define ZD_OPDB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zd_config.h"
#include "common/zd_err.h"
#include "server/xfr.h"
#include "server/zone.h"

#define OPDB_QUEUE_MAX       100000
#define OPDB_QUERIES_MAX     256
#define OPDB_SECONDARIES_MAX 256
#define OPDB_PARAMS_MAX      8

struct event_base;
struct opdb;

/* What the status shows of one secondary of a zone. */
struct opdb_secondary {
	char address[80]; /* IP address of transfers; for a NOTIFY target as configured */
	char key[256];    /* TSIG key name, "" for none */
	int notify;       /* a NOTIFY target of the zone's configuration */
	int notify_index; /* its index in the zone's notify list; -1 otherwise */
	int transferred;  /* last_* below are known */
	uint32_t last_serial;
	uint64_t last_transfer_ms;
	char last_kind[12];
	int checked; /* check_* below are known */
	char check_state[16];
	int check_severity;
	int check_has_serial;
	uint32_t check_serial;
	uint64_t checked_ms;
	char check_message[256];
};

/* Connect, read the holds (a held zone's z->op_held is set before the batch
 * thread starts) and the last transfer of each secondary.  On failure err
 * says why. */
zd_err opdb_new(const struct zd_config *cfg, struct zone **zones, size_t n_zones,
                struct event_base *base, struct opdb **out, char *err, size_t errlen);
zd_err opdb_start(struct opdb *o);
/* Stops the thread (log rows still queued are written first, for at most
 * a few seconds); every question not answered yet gets err "shutting down".
 * Call on the loop's thread. */
void opdb_free(struct opdb *o);

/* 1 while opdb's connection works. */
int opdb_db_is_up(const struct opdb *o);

/* An xfr observer (xfr_server_observer_set): queue the log row, update the
 * secondaries table. */
void opdb_transfer(void *arg, const struct xfr_report *r);
/* The zone published a version (any thread). */
void opdb_published(struct opdb *o, const struct zone *z, uint64_t version, uint32_t serial,
                    uint64_t published_ms);

/* The status snapshot of zone zi: counts (-1: not known yet or database
 * down), the operator hold (by/reason "" when none), and the secondaries
 * (up to cap; *n). */
struct opdb_zone_status {
	int64_t pending_changes;
	int64_t rejected;
	int held;
	char held_by[128];
	char held_reason[256];
	uint64_t dropped_log_rows;
	uint64_t transfers[4][3]; /* [enum xfr_kind][enum xfr_result] since the start */
};
void opdb_zone_status_get(struct opdb *o, size_t zi, struct opdb_zone_status *out,
                          struct opdb_secondary *secs, size_t cap, size_t *n);

/* Bytes the journal and the checkpoint tables take in the database (-1:
 * not known yet). */
void opdb_sizes_get(struct opdb *o, int64_t *journal, int64_t *checkpoint);

/* Ask the database (on opdb's thread).  sql has at most OPDB_PARAMS_MAX text
 * parameters (copied).  fn runs on the loop's thread with the result (NULL
 * and err set on failure; the result is freed after fn returns).  fn is
 * always called exactly once, also at opdb_free().  ZD_ELIMIT when too many
 * questions wait. */
typedef void (*opdb_result_fn)(void *arg, PGresult *res, const char *err);
zd_err opdb_query(struct opdb *o, const char *sql, int n_params, const char *const *params,
                  opdb_result_fn fn, void *arg);

/* Set or clear zone zi's operator hold in the database's snapshot after a
 * successful hold/release (the API calls it from its result callback). */
void opdb_hold_set(struct opdb *o, size_t zi, int held, const char *by, const char *reason);

#endif
