/* server/vmemo.h -- signatures verified ahead of the validation gate, on CPU
 * time a full signing leaves idle.
 *
 * While a full signing runs, the token's workers keep the cores busy, but
 * not all of the time.  The signer offers each signature it makes, with the
 * exact signing input and the public key it signed with; threads at the
 * lowest priority (SCHED_IDLE: they run only on a core nothing else wants)
 * verify them with OpenSSL (hsm/verify.h) and remember every (key, input,
 * signature) triple that verified, by its SHA-256 digest.  The gate
 * (gate.h) then makes no OpenSSL call for a signature whose triple, which
 * it builds itself from the version under test and its own DNSKEYs, is
 * remembered: the memo answers what the same verification answered before.
 * Nothing the signer offers is trusted otherwise: a triple that differs
 * from what the gate reads (another key, other RRset bytes, a corrupted
 * signature) is a miss, and the gate verifies it in full.
 *
 * Threads: vmemo_offer() from one thread at a time while the memo runs;
 * vmemo_has() from any thread once vmemo_stop() returned.  Limits: offers
 * beyond VMEMO_QUEUE waiting, with an input over VMEMO_DATA_MAX bytes, a
 * signature over VMEMO_SIG_MAX bytes, a key beyond VMEMO_KEYS, or after
 * VMEMO_ENTRIES remembered are dropped (the gate verifies those itself).
 * Standards: RFC 4034 s3.1.8.1 (what a signature covers). */
#ifndef ZD_VMEMO_H
#define ZD_VMEMO_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_err.h"

#define VMEMO_QUEUE    1024      /* offers waiting */
#define VMEMO_DATA_MAX 1024      /* bytes of one signing input */
#define VMEMO_SIG_MAX  512       /* bytes of one signature (RSA 4096) */
#define VMEMO_KEYS     8         /* distinct public keys */
#define VMEMO_ENTRIES  (1 << 20) /* triples remembered: at most 32 MiB of digests */

struct vmemo;

struct vmemo_stats {
	size_t offered;  /* offers */
	size_t dropped;  /* offers not verified: queue full, too large, stopped first */
	size_t verified; /* remembered */
	size_t failed;   /* did not verify (the gate will say why) */
	size_t hits;     /* vmemo_has() answers of 1 */
};

/* Starts one verifying thread per core (none on one core: nothing is idle
 * then, and every offer is dropped).  On ZD_OK *out is new (vmemo_free()). */
zd_err vmemo_new(struct vmemo **out);
/* Stops the threads (waiting for the jobs they hold, not for the queue)
 * and makes the memo readable; again does nothing.  NULL does nothing. */
void vmemo_stop(struct vmemo *m);
/* Stops it first. */
void vmemo_free(struct vmemo *m);

/* Offer sig as a signature by the key (alg, pub) over data; never blocks,
 * copies what it keeps. */
void vmemo_offer(struct vmemo *m, uint8_t alg, const uint8_t *pub, size_t pub_len,
                 const uint8_t *data, size_t data_len, const uint8_t *sig, size_t sig_len);

/* 1 when that triple verified (after vmemo_stop(); 0 before, and for NULL). */
int vmemo_has(struct vmemo *m, uint8_t alg, const uint8_t *pub, size_t pub_len, const uint8_t *data,
              size_t data_len, const uint8_t *sig, size_t sig_len);

void vmemo_stats_get(struct vmemo *m, struct vmemo_stats *out);

#endif
