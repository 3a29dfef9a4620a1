/* server/metrics.h -- zonedistd's metrics in the Prometheus text exposition
 * format (version 0.0.4), served as GET /metrics by the API (docs/API.md
 * lists every metric).
 *
 * Threads: the API's (event loop) thread; reads the zones' atomics, the
 * stores' statistics and opdb's snapshot.  Limits: none beyond the zones and
 * secondaries opdb remembers (OPDB_SECONDARIES_MAX per zone). */
#ifndef ZD_METRICS_H
#define ZD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_err.h"
#include "server/opdb.h"
#include "server/probe.h"
#include "server/zone.h"

struct evbuffer;

/* What the API knows of one zone beyond struct zone. */
struct metrics_zone {
	struct zone *z;
	int headroom_known;
	int64_t headroom_s;     /* minimum RRSIG validity left beyond SOA expire + max TTL */
	int64_t min_validity_s; /* minimum RRSIG validity left */
	struct opdb_zone_status os;
	const struct opdb_secondary *secs;
	size_t n_secs;
	const struct probe_state *probes; /* per NOTIFY target (cfg->notify order) */
	size_t n_probes;
	int parent_known; /* parent servers configured: parent holds their DS check */
	struct probe_parent parent;
};

struct metrics_global {
	int db_up;                               /* the batch thread's connection */
	int hsm_state;                           /* 1 up, 0 down, -1 no token */
	int64_t journal_bytes, checkpoint_bytes; /* -1: unknown */
};

/* Append the exposition to out. */
zd_err metrics_render(struct evbuffer *out, const struct metrics_global *g,
                      const struct metrics_zone *zs, size_t n);

#endif
