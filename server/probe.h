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
 * limits.probe-timeout-ms.  The same thread asks a signed zone's parent
 * servers for its DS (probe_parent_get()). */
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

/* The parent's view of a signed zone (dnssec keys parent-servers): every
 * parent-poll-interval each parent server is asked for the zone's DS RRset
 * and it is compared with the zone's KSKs (RFC 4509 digests): the active
 * one, and during a KSK roll the next one, whose DS the roll awaits
 * (keyroll_parent_seen()). */
enum probe_parent_state {
	PROBE_PARENT_UNKNOWN,     /* not asked yet, or no parent servers configured */
	PROBE_PARENT_MATCH,       /* every server answering has a DS of a published KSK */
	PROBE_PARENT_NO_DS,       /* a server has no DS: validators see the zone insecure */
	PROBE_PARENT_MISMATCH,    /* a server's DS RRset matches no KSK: the zone is bogus */
	PROBE_PARENT_UNREACHABLE, /* no server answered */
};
const char *probe_parent_state_name(enum probe_parent_state s);
struct probe_parent {
	enum probe_parent_state state;
	uint16_t ksk_tag;
	uint16_t next_tag;        /* during a KSK roll, the KSK whose DS is awaited; else 0 */
	int next_seen;            /* every server answering has next_tag's DS */
	size_t servers, answered; /* configured; answered the last round */
	size_t ds_count;          /* DS records of the last answer looked at */
	uint64_t checked_ms, since_ms;
	char error[200]; /* which server said what, when not a match */
};
/* ZD_ENOTFOUND for an unsigned zone or one without parent servers. */
zd_err probe_parent_get(struct probe *p, size_t zi, struct probe_parent *out);

#endif
