/* server/checkpoint.h -- periodic checkpoints, written in the background.
 *
 * The batch thread asks for a checkpoint of a published version every
 * limits.checkpoint_every versions; a thread of its own, on its own database
 * connection, walks that version in the store (which stays readable while
 * newer versions are published) and writes it in chunks, in one transaction,
 * marked complete last.  Updates never wait for it.  Requests coalesce: when
 * one arrives while another zone's or an older one is pending, the newest per
 * zone wins.  A failure is logged and retried at the next request.
 * Threads: ckpt_request() from any thread; the rest from the owner. */
#ifndef ZD_CHECKPOINT_H
#define ZD_CHECKPOINT_H

#include <stdint.h>

#include "common/zd_err.h"
#include "server/zone.h"

struct ckpt;

/* conninfo and zones borrowed for the checkpointer's life. */
zd_err ckpt_new(const char *conninfo, struct zone **zones, size_t n_zones, struct ckpt **out);
void ckpt_free(struct ckpt *k); /* stops the thread first */
zd_err ckpt_start(struct ckpt *k);
void ckpt_stop(struct ckpt *k);
/* Ask for a checkpoint of version (published) of zones[zone_index]. */
void ckpt_request(struct ckpt *k, size_t zone_index, uint64_t version);
/* Checkpoints written since start (for tests and the status). */
uint64_t ckpt_written_get(struct ckpt *k);

#endif
