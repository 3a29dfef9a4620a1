/* server/probe.h -- what each secondary serves, asked by zonedistd itself:
 * every limits.probe-interval-ms a thread asks each zone's NOTIFY targets
 * for the zone's SOA over UDP (no TSIG: an SOA query needs none) and keeps
 * the answer, so the status, the metrics and the alarms know a secondary
 * that is down or stuck even when no transfer happens.
 *
 * A target is unreachable after PROBE_FAILS_DOWN failed probes in a row
 * (timeout, an answer that is not the zone's SOA with AA, a REFUSED), and
 * reachable again at the first good answer.  Threads: its own; the getter
 * from any thread.  Limits: one query in flight, timeout
 * limits.probe-timeout-ms. */
#ifndef ZD_PROBE_H
#define ZD_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_config.h"
#include "common/zd_err.h"
#include "server/zone.h"

#define PROBE_FAILS_DOWN 2

struct probe;

struct probe_state {
	int known;     /* answered once, or missed PROBE_FAILS_DOWN times */
	int reachable; /* as defined above */
	int has_serial;
	uint32_t serial;
	uint64_t checked_ms; /* wall clock of the last probe */
	uint64_t since_ms;   /* reachable/unreachable since */
	uint32_t failures;   /* in a row */
	char error[160];     /* why the last probe failed; "" after a good one */
};

zd_err probe_new(const struct zd_config *cfg, struct zone **zones, size_t n_zones,
                 struct probe **out);
zd_err probe_start(struct probe *p);
void probe_free(struct probe *p); /* stops the thread */

/* Zone zi's NOTIFY target k (its index in cfg->notify).  ZD_ENOTFOUND out
 * of range. */
zd_err probe_get(struct probe *p, size_t zi, size_t k, struct probe_state *out);

#endif
