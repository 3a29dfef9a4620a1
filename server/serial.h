/* server/serial.h -- SOA serial policy and RFC 1982 serial arithmetic.
 * Threads: any (pure functions).  Standards: RFC 1982, RFC 1912 s2.2
 * (date-counter YYYYMMDDnn). */
#ifndef ZD_SERIAL_H
#define ZD_SERIAL_H

#include <stdint.h>

#include "common/zd_config.h"

/* RFC 1982 s3.2: 1 when a < b (undefined pairs, 2^31 apart, compare as not less). */
int serial_lt(uint32_t a, uint32_t b);

/* The serial after prev under a policy, at wall-clock time now_s (seconds
 * since the epoch, UTC).  Always serial_lt(prev, result): a serial never goes
 * backwards, and a policy whose clock value is not ahead of prev yields
 * prev + 1 (RFC 1982 addition). */
uint32_t serial_next(enum zd_serial_policy p, uint32_t prev, uint64_t now_s);

/* The first serial of a new zone under a policy. */
uint32_t serial_first(enum zd_serial_policy p, uint64_t now_s);

#endif
