/* common/zd_log.h -- one log line per event: level, subsystem, zone, message.
 * Threads: any (each line is written with one write(2)).  Limits: a line is cut
 * at 2048 bytes.  Never log PINs, TSIG secrets or key material. */
#ifndef ZD_LOG_H
#define ZD_LOG_H

#include <stdint.h>

enum zd_log_level {
	ZD_LOG_ERROR = 0, /* an operator must act */
	ZD_LOG_WARNING,   /* degraded, still serving */
	ZD_LOG_NOTICE,    /* state change: serial published, key rolled */
	ZD_LOG_INFO,      /* per batch or transfer */
	ZD_LOG_DEBUG,     /* per record */
};

void zd_log_level_set(enum zd_log_level max);
enum zd_log_level zd_log_level_get(void);
/* "error", "warning", ... -> level; returns -1 for an unknown word. */
int zd_log_level_parse(const char *word);
/* Log to this file descriptor (default 2). */
void zd_log_fd_set(int fd);

void zd_log(enum zd_log_level level, const char *subsys, const char *zone, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Rate limit for messages a peer can trigger: at most burst lines per
 * interval_ms; zd_ratelimit_ok() says whether to log now and counts the
 * suppressed ones, which the next allowed line should report. */
struct zd_ratelimit {
	uint64_t window_start_ms;
	uint32_t interval_ms;
	uint32_t burst;
	uint32_t used;
	uint32_t suppressed;
};
void zd_ratelimit_init(struct zd_ratelimit *rl, uint32_t interval_ms, uint32_t burst);
/* Returns 1 to log now, 0 to drop; *suppressed_out gets how many were dropped
 * since the last allowed line (0 when none). */
int zd_ratelimit_ok(struct zd_ratelimit *rl, uint64_t now_ms, uint32_t *suppressed_out);

uint64_t zd_now_ms(void);       /* CLOCK_MONOTONIC in ms */
uint64_t zd_wallclock_s(void);  /* seconds since the epoch */
uint64_t zd_wallclock_ms(void); /* milliseconds since the epoch */

#endif
