/* server/api.h -- zonedistd's operator HTTP API (libevent evhttp), JSON
 * answers from the versions the store keeps (docs/API.md):
 *
 *   GET /api/v1/zones                         every zone: published serial, ...
 *   GET /api/v1/zones/ZONE                    one zone
 *   GET /api/v1/zones/ZONE/digest[?serial=S]  the ZONEMD digest (RFC 8976,
 *        SIMPLE, SHA-384) of serial S (default: the published one), and
 *        how many versions were published after it; computed once per
 *        version and cached
 *   GET /api/v1/zones/ZONE/zone[?serial=S]    the whole zone at S as a
 *        master file, streamed (text/dns)
 *
 * ZONE is the zone's name with or without the trailing dot.  Errors are
 * JSON {"error": "..."} with 400 (malformed), 404 (unknown zone or serial
 * not kept in memory), 405 (method), 503 (too busy).
 *
 * Threads: everything runs on the thread of the event base given to
 * api_new(); the store is read as store.h allows (versions pinned while a
 * walk spans several loop turns, which are spread over the loop so
 * transfers keep being served).  Limits: cfg->api.max_connections (more get
 * 503 and are closed), max_request_bytes per request, timeout_ms per
 * request, API_JOBS_MAX digests or zone streams at once (more get 503).
 * Standards: RFC 9110/9112 via evhttp, RFC 8976. */
#ifndef ZD_API_H
#define ZD_API_H

#include <stddef.h>

#include "common/zd_config.h"
#include "common/zd_err.h"
#include "server/zone.h"

#define API_JOBS_MAX 16

struct event_base;
struct api;

/* base, cfg and zones borrowed for the API's life.  On ZD_OK *out is new
 * (api_free()). */
struct opdb;
/* opdb (may be NULL: no database questions) answers trace, history,
 * transfers, rejected rows and state changes; opdb_free() must come before
 * api_free().  ZD_EIO when cfg->api.token_file cannot be read or holds no
 * token (logged). */
zd_err api_new(struct event_base *base, const struct zd_config *cfg, struct zone **zones,
               size_t n_zones, struct opdb *opdb, struct api **out);
/* The batch whose database and HSM state the status shows, and the probe
 * of the secondaries (both borrowed; either may be NULL). */
struct batch;
struct probe;
void api_batch_set(struct api *a, const struct batch *b, struct probe *p);

/* Evaluate the alarms (borrowed; NULL: none) on the status every
 * cfg->alarms.interval_ms. */
struct alarms;
zd_err api_alarms_set(struct api *a, struct alarms *al);

/* Closes every listener and connection; api_free(NULL) does nothing. */
void api_free(struct api *a);

/* Listen on every cfg->api.listen entry.  ZD_EIO (with a log line naming
 * the address and why) when one cannot be bound. */
zd_err api_listen(struct api *a);

#endif
