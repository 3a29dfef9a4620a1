/* server/batch.h -- the batch thread: turns committed registry changes into
 * published versions, exactly once (DESIGN.md decision 1).
 *
 * Per batch, in one REPEATABLE READ transaction opened by the adapter: take
 * the visible outbox rows, read their names' records, build the next version
 * in the store, give it its SOA, (sign it: DNSSEC signing slots in here),
 * INSERT the journal row, DELETE the consumed rows, COMMIT.  Only then is the
 * version published and the server told.  A failure anywhere before the
 * commit aborts the version and leaves the rows queued.
 * Threads: batch_load runs on the caller's thread at start-up; the loop runs
 * on its own thread and never touches the event loop except through the
 * published() callback, which must be thread-safe. */
#ifndef ZD_BATCH_H
#define ZD_BATCH_H

#include <stddef.h>

#include "common/zd_config.h"
#include "common/zd_err.h"
#include "server/zone.h"

struct batch;

typedef void (*batch_published_fn)(void *arg, struct zone *z);

/* zones borrowed for the batch's life. */
zd_err batch_new(const struct zd_config *cfg, struct zone **zones, size_t n_zones,
                 batch_published_fn published, void *arg, struct batch **out);
void batch_free(struct batch *b);

/* Start-up: connect, check the schema, and bring every zone to its newest
 * version: load its checkpoint and replay its journal, or, for a zone seen
 * for the first time, read the whole zone from the registry and write the
 * first checkpoint.  On failure err says what; the caller exits. */
zd_err batch_load(struct batch *b, char *err, size_t errlen);

/* Ask k (borrowed) for a checkpoint every limits.checkpoint_every versions.
 * Before batch_start(). */
struct ckpt;
void batch_checkpointer_set(struct batch *b, struct ckpt *k);

/* The token the zones' signers use (borrowed); before batch_load(). */
struct signer_token;
void batch_token_set(struct batch *b, struct signer_token *tk);

/* Run the loop on a new thread / stop it and wait for it. */
zd_err batch_start(struct batch *b);
void batch_stop(struct batch *b);

/* 1 while the database answers (for the status). */
int batch_db_is_up(const struct batch *b);
/* The token as the batch thread last met it: 1 signing, 0 lost (for
 * *down_for_ms), -1 no token (no zone signs).  Any thread. */
int batch_hsm_state(const struct batch *b, uint64_t *down_for_ms);

#endif
