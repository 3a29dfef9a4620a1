/* server/alarm.h -- notifications of state changes (docs/ALARMS.md): every
 * alarms.interval-ms the API's status document is looked at for conditions
 * an operator must hear of (database or HSM lost, a version held by the
 * sanity limits, signature headroom low, rejected rows, a secondary
 * unreachable, lagging or diverged); a condition that appears is sent once
 * as "firing", and once as "resolved" when it goes.  Sent by e-mail (SMTP,
 * libcurl) and as a JSON webhook (HTTP POST), each notification saying what
 * happened and what to do.
 *
 * De-duplicated by condition key (one firing until resolved); rate-limited
 * to alarms.max-per-hour notifications (more are dropped, logged and
 * counted).  Delivery runs on a thread of its own: up to 3 attempts per
 * destination, alarms.timeout-ms each; the queue holds ALARM_QUEUE_MAX.
 * Threads: alarms_evaluate() on the loop's thread; the rest anywhere. */
#ifndef ZD_ALARM_H
#define ZD_ALARM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zd_config.h"
#include "common/zd_err.h"

#define ALARM_QUEUE_MAX  1000
#define ALARM_ACTIVE_MAX 4096

struct alarms;

/* NULL in *out when the configuration has neither smtp nor webhook.
 * ZD_EIO (err says why) when the webhook token-file cannot be read. */
zd_err alarms_new(const struct zd_config *cfg, struct alarms **out, char *err, size_t errlen);
zd_err alarms_start(struct alarms *al);
/* Stops the delivery thread after the queue is sent (at most a few
 * seconds); alarms_free(NULL) does nothing. */
void alarms_free(struct alarms *al);

/* Compare status (GET /api/v1/status, borrowed) with the conditions active
 * so far; queue what fired and what resolved. */
void alarms_evaluate(struct alarms *al, const json_t *status, uint64_t now_ms);

struct alarm_stats {
	uint64_t fired, resolved; /* notifications queued */
	uint64_t sent, failed;    /* deliveries (per destination) */
	uint64_t dropped;         /* over max-per-hour or the queue */
	size_t active;            /* conditions active now */
};
void alarms_stats_get(struct alarms *al, struct alarm_stats *out);

#endif
