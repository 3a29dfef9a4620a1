/* server/loadpipe.h -- the reading half of a zone's first load on a thread
 * of its own: it fetches and checks the registry's rows (ra_full_next())
 * while the batch thread puts the names it already has into the store.
 * The two halves take about as long each, and they share nothing but the
 * lists handed over.
 *
 * The reader owns rb (and its connection) from loadpipe_start() until
 * loadpipe_free(); the caller touches neither in between.  At most depth
 * lists of up to rows records are read ahead, so the memory of a load
 * stays bounded whatever the zone's size. */
#ifndef ZD_LOADPIPE_H
#define ZD_LOADPIPE_H

#include <stddef.h>

#include <ldns/ldns.h>

#include "common/zd_err.h"
#include "registry-adapter/adapter.h"

struct loadpipe;

/* Start reading rb (opened by ra_full_begin() on ra) in chunks of rows
 * (1..RA_FETCH_MAX), up to depth (>= 1) chunks ahead.  ZD_ENOMEM or ZD_EBUG
 * (nothing started). */
zd_err loadpipe_start(struct ra *ra, struct ra_batch *rb, size_t rows, size_t depth,
                      struct loadpipe **out);
/* The next list of whole names in canonical order (the caller owns it and its
 * records), or *out = NULL once every row is read.  Waits for the reader.
 * On the reader's failure its error, with the message in loadpipe_error(),
 * and rb can only be aborted. */
zd_err loadpipe_next(struct loadpipe *lp, ldns_rr_list **out);
/* Hand back a list loadpipe_next() gave (NULL does nothing): the reader
 * frees it and its records on its own thread, where they were allocated.
 * After the reader ended the list is freed at once. */
void loadpipe_done(struct loadpipe *lp, ldns_rr_list *l);
const char *loadpipe_error(const struct loadpipe *lp);
/* Stop the reader if it still reads, wait for it, free what was read
 * ahead.  NULL does nothing.  rb is the caller's again afterwards. */
void loadpipe_free(struct loadpipe *lp);

#endif
