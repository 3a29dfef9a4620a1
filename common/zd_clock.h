/* common/zd_clock.h -- zonedist's DNSSEC time source: the clock that
 * signature inception and expiration, the validation gate, signature
 * refresh and the key rollover schedule read (docs/KEYS.md).
 *
 * It is the system's real time, unless the environment names a clock file
 * (ZD_TEST_CLOCK_FILE, for tests: "no sleeping for real days"): then the
 * time is the Unix seconds written in that file, read at every call, and
 * moved only by whoever writes it.  zonedistd logs a warning when it runs
 * on a simulated clock.  Serials, logs, TSIG and latencies always use the
 * real clock.
 * Threads: any.  Limits: the file's first 31 bytes. */
#ifndef ZD_CLOCK_H
#define ZD_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Seconds since the epoch on the DNSSEC clock.  A clock file that cannot
 * be read or parsed gives the last value read from it (real time before
 * the first). */
uint64_t zd_clock_s(void);
/* The clock file, or NULL on the real clock. */
const char *zd_clock_file_get(void);

/* Unix seconds s in UTC, as 2026-12-04T13:58:00 (iso) or as
 * 2026-12-04 13:58:00Z; 0 when it does not fit in len. */
size_t zd_time_utc(uint64_t s, int iso, char *buf, size_t len);

#endif
