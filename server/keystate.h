/* server/keystate.h -- a zone's key state in PostgreSQL (zonedist.key,
 * schema/migrations/0005_keys.sql; docs/KEYS.md): each key the zone signs
 * with is recorded the first time, so the rollover schedule's starting
 * times survive restarts.
 * Threads: the caller's (zonedistd's start-up).  Limits: two keys per call. */
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

#endif
