/* hsm/pool_priv.h -- the frames between hsm/pool.c (parent) and
 * hsm/pool_worker.c (worker); nothing else includes it.  Both ends are the
 * same build of the same executable, but every length read is still
 * checked against the limits here before anything is read or copied.
 *
 * Parent -> worker, on the worker's stdin, one per job:
 *   u32 seq | u16 key index | u16 0 | u32 len | data[len]
 *   key < the number of key ids the worker was given, len <= HSM_POOL_DATA_MAX.
 * Worker -> parent, on the worker's stdout:
 *   u8 type | u8 0 | u16 len | u32 seq | payload[len]
 *   POOL_READY  once, after login: per key, u8 DNSSEC algorithm and u16
 *               signature length (3 bytes each, in the order of the ids)
 *   POOL_SIG    the signature for job seq
 *   POOL_ERR    startup failed (seq 0), or job seq failed: the token's
 *               message, no NUL, up to HSM_POOL_ERR_MAX bytes
 *   POOL_LOST   as POOL_ERR, and hsm_session_lost() said the token went away
 * Integers are big-endian.  The worker answers jobs in the order they came. */
#ifndef HSM_POOL_PRIV_H
#define HSM_POOL_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "hsm/pool.h"

#define POOL_JOB_HDR 12 /* bytes */
#define POOL_ANS_HDR 8  /* bytes */

#define POOL_READY 'R'
#define POOL_SIG   'S'
#define POOL_ERR   'E'
#define POOL_LOST  'L'

/* Largest answer payload: an error text (a signature or a ready list is
 * shorter; checked at compile time in pool.c). */
#define POOL_ANS_MAX HSM_POOL_ERR_MAX

/* Room for two largest jobs: one being filled while one drains. */
#define POOL_JOB_BUF (2 * (POOL_JOB_HDR + HSM_POOL_DATA_MAX)) /* bytes */

static inline void
pool_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
pool_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint16_t
pool_get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t
pool_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
