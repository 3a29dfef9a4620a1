/* hsm/pool.h -- sign in several worker processes at once.  SoftHSMv2
 * serialises signing inside one process whatever the number of threads or
 * sessions, so the full signing of a large zone (DESIGN.md decision 5: once,
 * on all cores) runs in a pool of worker processes, each with its own module
 * instance, login and session, all signing with the same keys found by
 * CKA_ID.  hsm/ knows keys and signatures, not zones: a job is bytes in,
 * signature out.
 *
 * Workers are the caller's own executable (argv), whose main() hands over to
 * hsm_pool_worker_main() when hsm_pool_worker_is() says so.  Each talks to
 * the parent over its stdin and stdout with length-prefixed binary frames
 * (pool.c describes them); stderr is the parent's, for fatal messages only.
 * A worker exits when its stdin closes, so the parent going away leaves no
 * orphans.  The PIN never goes through argv: the worker reads the same file
 * or inherited environment variable as hsm_connect().
 *
 * Threads: a pool belongs to one thread at a time; hsm_pool_sign() blocks
 * SIGPIPE in the calling thread while it runs (a write to a dead worker is
 * EPIPE, an error, and the signal it raised is consumed), so the process's
 * SIGPIPE disposition is never touched.  hsm_pool_new() and hsm_pool_free()
 * wait for child processes by pid only (a process-wide SIGCHLD = SIG_IGN
 * makes exit statuses unknown, nothing worse).
 *
 * Failures: after a failed hsm_pool_sign() (other than a refused argument)
 * the pool is spent: free it and make a new one, later when hsm_pool_lost()
 * says the token went away.
 *
 * Limits: 1..HSM_POOL_PROCS_MAX workers, 1..HSM_POOL_KEYS_MAX keys,
 * HSM_POOL_DATA_MAX bytes of signing input per job, HSM_POOL_WINDOW jobs in
 * flight per worker, HSM_POOL_START_MS for each worker to log in.
 * Standards: RFC 4034 s3.1.8.1 (what is signed), PKCS#11 v2.40 through
 * hsm/hsm.h. */
#ifndef HSM_POOL_H
#define HSM_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/zd_err.h"
#include "hsm/hsm.h"

#define HSM_POOL_PROCS_MAX  64                     /* worker processes */
#define HSM_POOL_KEYS_MAX   64                     /* keys one pool signs with */
#define HSM_POOL_DATA_MAX   65536                  /* bytes of one job's signing input */
#define HSM_POOL_WINDOW     64                     /* jobs in flight per worker */
#define HSM_POOL_START_MS   30000                  /* ms for one worker to say ready */
#define HSM_POOL_ERR_MAX    1024                   /* bytes of a worker's error text */
#define HSM_POOL_WORKER_ARG "--zd-hsm-pool-worker" /* appended before our arguments */

struct hsm_pool;

struct hsm_pool_key {
	const uint8_t *id; /* CKA_ID of a key pair; borrowed */
	size_t id_len;     /* 1..HSM_ID_MAX */
};

/* Start procs worker processes running argv (argv[0]: path of the
 * executable, NULL-terminated; borrowed).  The pool appends
 * HSM_POOL_WORKER_ARG, the module path, the token label, the PIN source
 * ("file:PATH" or "env:NAME") and the key ids in hex.  Each worker logs in
 * and finds keys[0..n_keys) once (borrowed).  Workers start one after the
 * other, each once the one before said ready (SoftHSM rewrites its token
 * file at every login, and a process starting meanwhile may not see the
 * token).  Returns when every worker said ready, or at the first failure, with err[0..errlen) naming the
 * worker and why (the token's message, e.g. C_Login and
 * CKR_PIN_INCORRECT, or how it exited); every worker started is then
 * stopped and reaped.
 *   ZD_EMALFORMED  hc as hsm_new() refuses it, no argv[0], no keys, a key
 *                  id of 0 or more than HSM_ID_MAX bytes, procs 0
 *   ZD_ELIMIT      procs or n_keys above the limits
 *   ZD_EIO         pipe or posix_spawn failed (errno text)
 *   ZD_EHSM        a worker failed to log in or find a key, exited, or
 *                  was not ready within HSM_POOL_START_MS of its start
 *   ZD_ENOMEM
 * On ZD_OK *out is new; the caller owns it (hsm_pool_free()). */
zd_err hsm_pool_new(const struct hsm_config *hc, const char *const *argv, unsigned procs,
                    const struct hsm_pool_key *keys, size_t n_keys, struct hsm_pool **out,
                    char *err, size_t errlen);
/* Close every worker's stdin, wait up to 2 s for them to exit, then kill
 * and reap the rest.  NULL does nothing. */
void hsm_pool_free(struct hsm_pool *p);
/* As hsm_pool_free(), and say how the workers ended: ZD_OK when each one
 * still running exited by itself with status 0; ZD_EHSM naming the first
 * that did not (status, signal, killed after the wait).  Workers that
 * hsm_pool_sign() found dead are not counted again.  p is freed in any
 * case; NULL is ZD_OK. */
zd_err hsm_pool_close(struct hsm_pool *p, char *err, size_t errlen);

struct hsm_pool_job {
	const uint8_t *data; /* the RRSIG signing input; borrowed */
	size_t len;          /* 0..HSM_POOL_DATA_MAX bytes */
	uint16_t key;        /* index into the keys given to hsm_pool_new() */
	uint8_t *sig;        /* room for HSM_SIG_MAX bytes; borrowed */
	size_t siglen;       /* out: bytes of sig written, on ZD_OK */
};

/* Sign every job of jobs[0..n), spread over the workers, many in flight at
 * once.  Returns when all are signed or at the first failure; a wait of
 * timeout_ms (> 0) with no answer from any worker is a failure too.
 *   ZD_EMALFORMED  a job's key index is out of range or data is NULL
 *                  (nothing sent; the pool stays usable)
 *   ZD_ELIMIT      a job's len is above HSM_POOL_DATA_MAX (nothing sent)
 *   ZD_EHSM        the token refused a job (err: "worker N: job J (key K):
 *                  " and the token's message; hsm_pool_lost() says whether
 *                  the token went away), a worker exited ("worker N (pid P)
 *                  exited (status S)" or "(signal S)"), answered nonsense,
 *                  no answer within timeout_ms, or the pool was spent
 *                  already
 * On failure some jobs' sig may have been written; no siglen is to be
 * trusted.  The jobs array is borrowed for the call. */
zd_err hsm_pool_sign(struct hsm_pool *p, struct hsm_pool_job *jobs, size_t n, unsigned timeout_ms,
                     char *err, size_t errlen);
/* 1 once a worker said its token, session or key went away
 * (hsm_session_lost() in the worker); it stays 1. */
int hsm_pool_lost(const struct hsm_pool *p);
unsigned hsm_pool_procs_get(const struct hsm_pool *p);
/* Bytes of signature the key at index key makes (as hsm_key_siglen_get(),
 * told by the workers); 0 for an index out of range. */
size_t hsm_pool_siglen_get(const struct hsm_pool *p, uint16_t key);

/* ---- the worker side ---- */

/* 1 when argv holds HSM_POOL_WORKER_ARG after argv[0]. */
int hsm_pool_worker_is(int argc, char *const *argv);
/* Run as a worker with the arguments after HSM_POOL_WORKER_ARG; call it
 * from main() and return what it returns, the exit status:
 *   0 stdin closed or stdout broken (the parent is done), 1 startup failed (told to the
 *   parent, or on stderr when the arguments are bad), 2 malformed frame
 *   (message on stderr), 3 stdin or stdout failed (message on stderr). */
int hsm_pool_worker_main(int argc, char **argv);

/* ---- test hooks ---- */

/* pid of worker i, -1 when i >= procs or the worker was reaped. */
pid_t hsm_pool_test_pid_get(const struct hsm_pool *p, unsigned i);
/* Write raw bytes to worker i's stdin (blocking), to test how it takes a
 * malformed frame; the worker must be alive (SIGPIPE is not blocked here).
 * ZD_EIO on a failed write, ZD_EMALFORMED for a bad i. */
zd_err hsm_pool_test_raw_send(struct hsm_pool *p, unsigned i, const void *bytes, size_t len);

#endif
