/* bench/hsm_rate.c -- how many signatures per second a PKCS#11 token makes
 * through hsm_sign() (C_SignInit + C_Sign; for ECDSA also SHA-256 of a
 * 100-byte input in OpenSSL, well under 1% of a signature), with 1 thread
 * and with more, each thread on its own session and the same key; with
 * --pool, also through hsm_pool_sign() (hsm/pool.h) with N worker processes
 * (this program again), in batches of POOL_BATCH jobs, as the signer uses
 * it.  Prints one JSON object on stdout; errors go to stderr with exit
 * status 1.
 *
 *   hsm_rate [--module PATH] [--token LABEL (--pin-file PATH | --pin-env VAR)]
 *            [--alg ecdsa|ed25519|rsa2048|rsa4096] [--seconds N] [--threads 1,2,...]
 *            [--keys shared|per-thread] [--object token|copy] [--pool 1,2,...]
 *
 * Without --token it makes a throwaway SoftHSM token in a temporary
 * directory (SOFTHSM2_CONF points there) and removes it at the end.  With
 * --token it generates temporary keys "hsm_rate-<pid>" in that token and
 * destroys them at the end.  --threads defaults to "1,<online CPUs>".
 * --keys per-thread gives each thread its own key (default: all share one).
 * --object copy makes the threads sign with an in-token session copy of the
 * key (hsm_key_session_copy(), as the signing processes do) instead of the
 * token object itself (the default).
 * --pool runs after the thread runs, all workers on the first key; the
 * pool's start (every worker logging in) is timed apart, not in the rate.
 * Limits: up to 256 threads per run, 16 runs, 3600 seconds per run,
 * HSM_POOL_PROCS_MAX processes per pool run. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/zd_log.h"
#include "common/zd_parse.h"
#include "hsm/hsm.h"
#include "hsm/pool.h"
#include "hsm/token_init.h"

#define THREADS_MAX  256
#define RUNS_MAX     16
#define POOL_BATCH   1000  /* jobs per hsm_pool_sign() */
#define POOL_DATA    100   /* bytes of each job's input, as for the threads */
#define POOL_WAIT_MS 30000 /* ms without an answer before a pool run fails */

struct worker {
	struct hsm *h;
	const struct hsm_key *k;
	pthread_barrier_t *start;
	uint64_t stop_ms; /* CLOCK_MONOTONIC */
	uint64_t done;    /* signatures made */
	uint64_t busy_ms; /* from the barrier to the last signature */
	int failed;
	char err[512];
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct hsm_session *s = NULL;
	uint8_t data[100], sig[HSM_SIG_MAX];

	if (hsm_session_open(w->h, &s, w->err, sizeof w->err) != ZD_OK)
		w->failed = 1;
	pthread_barrier_wait(w->start);
	if (w->failed)
		return NULL;
	uint64_t t0 = zd_now_ms();
	memset(data, 0x5a, sizeof data);
	while (zd_now_ms() < w->stop_ms) {
		size_t siglen = sizeof sig;
		memcpy(data, &w->done, sizeof w->done);
		if (hsm_sign(s, w->k, data, sizeof data, sig, &siglen) != ZD_OK) {
			snprintf(w->err, sizeof w->err, "%s", hsm_session_error_get(s));
			w->failed = 1;
			break;
		}
		w->done++;
	}
	w->busy_ms = zd_now_ms() - t0;
	hsm_session_close(s);
	return NULL;
}

/* One run with n threads for seconds; on success *total and *elapsed_ms. */
static int
run(struct hsm *h, struct hsm_key *const *keys, int per_thread, unsigned n, unsigned seconds,
    uint64_t *total, uint64_t *elapsed_ms)
{
	struct worker w[THREADS_MAX];
	pthread_t tid[THREADS_MAX];
	pthread_barrier_t start;
	int ok = 1;

	if (pthread_barrier_init(&start, NULL, n + 1) != 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct worker){.h = h, .k = keys[per_thread ? i : 0], .start = &start};
		if (pthread_create(&tid[i], NULL, worker_run, &w[i]) != 0) {
			/* The others wait at the barrier for it: nothing to salvage. */
			fprintf(stderr, "hsm_rate: cannot start thread %u\n", i);
			exit(1);
		}
	}
	/* Every session is open when the barrier falls: the clock starts now. */
	uint64_t stop = zd_now_ms() + (uint64_t)seconds * 1000;
	for (unsigned i = 0; i < n; i++)
		w[i].stop_ms = stop; /* published to the workers by the barrier */
	pthread_barrier_wait(&start);
	uint64_t sum = 0, longest = 0;
	for (unsigned i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		if (w[i].failed) {
			fprintf(stderr, "hsm_rate: thread %u: %s\n", i, w[i].err);
			ok = 0;
		}
		sum += w[i].done;
		if (w[i].busy_ms > longest)
			longest = w[i].busy_ms;
	}
	pthread_barrier_destroy(&start);
	if (ok) {
		*total = sum;
		*elapsed_ms = longest ? longest : 1;
	}
	return ok;
}

/* One pool run: procs workers, batches until seconds pass.  On success
 * *total, *elapsed_ms and *start_ms (the pool's start, apart). */
static int
pool_run(const struct hsm_config *cfg, const struct hsm_key *k, unsigned procs, unsigned seconds,
         uint64_t *total, uint64_t *elapsed_ms, uint64_t *start_ms)
{
	static uint8_t data[POOL_BATCH][POOL_DATA], sigs[POOL_BATCH][HSM_SIG_MAX];
	static struct hsm_pool_job jobs[POOL_BATCH];
	char self[PATH_MAX], err[1024];
	struct hsm_pool *p = NULL;
	struct hsm_pool_key key;
	uint64_t done = 0;
	int ok = 0;

	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		perror("hsm_rate: readlink /proc/self/exe");
		return 0;
	}
	self[n] = '\0';
	const char *argv[] = {self, NULL};
	key.id = hsm_key_id_get(k, &key.id_len);
	uint64_t t0 = zd_now_ms();
	if (hsm_pool_new(cfg, argv, procs, &key, 1, &p, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "hsm_rate: pool of %u: %s\n", procs, err);
		return 0;
	}
	uint64_t t1 = zd_now_ms(), stop = t1 + (uint64_t)seconds * 1000;
	memset(data, 0x5a, sizeof data);
	while (zd_now_ms() < stop) {
		for (size_t i = 0; i < POOL_BATCH; i++) {
			uint64_t seq = done + i; /* a different message per job */
			memcpy(data[i], &seq, sizeof seq);
			jobs[i] = (struct hsm_pool_job){data[i], POOL_DATA, 0, sigs[i], 0};
		}
		if (hsm_pool_sign(p, jobs, POOL_BATCH, POOL_WAIT_MS, err, sizeof err) != ZD_OK) {
			fprintf(stderr, "hsm_rate: pool of %u: %s\n", procs, err);
			goto out;
		}
		done += POOL_BATCH;
	}
	*elapsed_ms = zd_now_ms() - t1;
	*start_ms = t1 - t0;
	*total = done;
	ok = 1;
out:
	if (hsm_pool_close(p, err, sizeof err) != ZD_OK && ok) {
		fprintf(stderr, "hsm_rate: pool of %u: %s\n", procs, err);
		ok = 0;
	}
	return ok;
}

/* JSON string body: quotes, backslashes and control bytes escaped. */
static void
json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void
usage(void)
{
	fprintf(stderr, "usage: hsm_rate [--module PATH] [--token LABEL (--pin-file PATH | "
	                "--pin-env VAR)]\n"
	                "                [--alg ecdsa|ed25519|rsa2048|rsa4096] [--seconds N] "
	                "[--threads 1,2,...]\n"
	                "                [--keys shared|per-thread] [--object token|copy] "
	                "[--pool 1,2,...]\n");
}

/* "1,2,4" -> counts[], each 1..max; 0 on a bad list. */
static int
counts_parse(const char *s, unsigned max, unsigned *counts, unsigned *n)
{
	char buf[256];
	unsigned m = 0;
	if (strlen(s) >= sizeof buf)
		return 0;
	memcpy(buf, s, strlen(s) + 1);
	char *p = buf;
	for (;;) {
		char *comma = strchr(p, ',');
		uint32_t v;
		if (comma != NULL)
			*comma = '\0';
		if (m == RUNS_MAX || zd_parse_u32(p, 1, max, &v) != ZD_OK)
			return 0;
		counts[m++] = v;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*n = m;
	return 1;
}

int
main(int argc, char **argv)
{
	/* --pool's workers are this program. */
	if (hsm_pool_worker_is(argc, argv))
		return hsm_pool_worker_main(argc, argv);

	const char *module = NULL, *token = NULL, *pin_file = NULL, *pin_env = NULL;
	const char *alg_name = "ecdsa";
	uint32_t seconds = 5;
	unsigned counts[RUNS_MAX], nruns = 0, pools[RUNS_MAX], npools = 0;
	char dir[PATH_MAX] = "", err[512], label[64];
	struct hsm *h = NULL;
	struct hsm_key *keys[THREADS_MAX] = {NULL};
	unsigned nkeys = 1, max_threads = 0;
	int per_thread = 0, copy = 0;
	int status = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			usage();
			return 1;
		}
		i++;
		if (strcmp(a, "--module") == 0)
			module = v;
		else if (strcmp(a, "--token") == 0)
			token = v;
		else if (strcmp(a, "--pin-file") == 0)
			pin_file = v;
		else if (strcmp(a, "--pin-env") == 0)
			pin_env = v;
		else if (strcmp(a, "--alg") == 0)
			alg_name = v;
		else if (strcmp(a, "--keys") == 0 &&
		         (strcmp(v, "shared") == 0 || strcmp(v, "per-thread") == 0))
			per_thread = strcmp(v, "per-thread") == 0;
		else if (strcmp(a, "--object") == 0 &&
		         (strcmp(v, "token") == 0 || strcmp(v, "copy") == 0))
			copy = strcmp(v, "copy") == 0;
		else if (strcmp(a, "--seconds") == 0 && zd_parse_u32(v, 1, 3600, &seconds) == ZD_OK)
			continue;
		else if (strcmp(a, "--threads") == 0 &&
		         counts_parse(v, THREADS_MAX, counts, &nruns))
			continue;
		else if (strcmp(a, "--pool") == 0 &&
		         counts_parse(v, HSM_POOL_PROCS_MAX, pools, &npools))
			continue;
		else {
			usage();
			return 1;
		}
	}
	struct hsm_keyspec spec = {HSM_ALG_ECDSAP256SHA256, 0, label, 0};
	if (strcmp(alg_name, "ed25519") == 0)
		spec.alg = HSM_ALG_ED25519;
	else if (strcmp(alg_name, "rsa2048") == 0)
		spec = (struct hsm_keyspec){HSM_ALG_RSASHA256, 2048, label, 0};
	else if (strcmp(alg_name, "rsa4096") == 0)
		spec = (struct hsm_keyspec){HSM_ALG_RSASHA256, 4096, label, 0};
	else if (strcmp(alg_name, "ecdsa") != 0) {
		usage();
		return 1;
	}
	if (nruns == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		counts[nruns++] = 1;
		if (cpus > 1)
			counts[nruns++] = cpus > THREADS_MAX ? THREADS_MAX : (unsigned)cpus;
	}
	for (unsigned r = 0; r < nruns; r++)
		if (counts[r] > max_threads)
			max_threads = counts[r];
	if (per_thread)
		nkeys = max_threads;
	if (module == NULL)
		module = HSM_MODULE_DEFAULT;
	snprintf(label, sizeof label, "hsm_rate-%ld", (long)getpid());

	if (token == NULL) {
		const char *tmp = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/hsm_rate-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (mkdtemp(dir) == NULL) {
			perror("hsm_rate: mkdtemp");
			dir[0] = '\0';
			goto out;
		}
		token = "hsm_rate";
		pin_env = "ZD_HSM_RATE_PIN";
		pin_file = NULL;
		setenv(pin_env, "hsm-rate-user", 1); /* a throwaway token */
		if (hsm_softhsm_setup(dir, err, sizeof err) != ZD_OK ||
		    hsm_token_init(module, token, "hsm-rate-so", "hsm-rate-user", err,
		                   sizeof err) != ZD_OK) {
			fprintf(stderr, "hsm_rate: temporary token: %s\n", err);
			goto out;
		}
	}
	struct hsm_config cfg = {module, token, pin_file, pin_env, 0};
	if (hsm_new(&cfg, &h) != ZD_OK) {
		fprintf(stderr,
		        "hsm_rate: give --token with exactly one of --pin-file, --pin-env\n");
		goto out;
	}
	if (hsm_connect(h) != ZD_OK) {
		fprintf(stderr, "hsm_rate: %s\n", hsm_error_get(h));
		goto out;
	}
	for (unsigned i = 0; i < nkeys; i++) {
		if (hsm_key_generate(h, &spec, &keys[i]) != ZD_OK) {
			fprintf(stderr, "hsm_rate: %s\n", hsm_error_get(h));
			goto out;
		}
		if (copy && hsm_key_session_copy(keys[i]) != ZD_OK) {
			fprintf(stderr, "hsm_rate: %s\n", hsm_error_get(h));
			goto out;
		}
	}

	printf("{\"module\": ");
	json_str(module);
	printf(", \"token\": ");
	json_str(token);
	printf(", \"temporary_token\": %s, \"algorithm\": \"%s\", \"seconds\": %u, "
	       "\"online_cpus\": %ld, \"keys\": \"%s\", \"object\": \"%s\", \"runs\": [",
	       dir[0] ? "true" : "false", hsm_alg_name(spec.alg), seconds,
	       sysconf(_SC_NPROCESSORS_ONLN), per_thread ? "per-thread" : "shared",
	       copy ? "session copy" : "token object");
	for (unsigned r = 0; r < nruns; r++) {
		uint64_t total = 0, ms = 0;
		if (!run(h, keys, per_thread, counts[r], seconds, &total, &ms))
			goto out;
		double rate = (double)total * 1000.0 / (double)ms;
		printf("%s{\"threads\": %u, \"signatures\": %llu, \"elapsed_ms\": %llu, "
		       "\"per_second\": %.1f, \"per_second_per_thread\": %.1f}",
		       r ? ", " : "", counts[r], (unsigned long long)total, (unsigned long long)ms,
		       rate, rate / counts[r]);
		fflush(stdout);
	}
	printf("], \"pool_batch\": %d, \"pool_runs\": [", POOL_BATCH);
	for (unsigned r = 0; r < npools; r++) {
		uint64_t total = 0, ms = 0, start_ms = 0;
		if (!pool_run(&cfg, keys[0], pools[r], seconds, &total, &ms, &start_ms))
			goto out;
		double rate = (double)total * 1000.0 / (double)(ms ? ms : 1);
		printf("%s{\"processes\": %u, \"start_ms\": %llu, \"signatures\": %llu, "
		       "\"elapsed_ms\": %llu, \"per_second\": %.1f, "
		       "\"per_second_per_process\": %.1f}",
		       r ? ", " : "", pools[r], (unsigned long long)start_ms,
		       (unsigned long long)total, (unsigned long long)ms, rate, rate / pools[r]);
		fflush(stdout);
	}
	printf("]}\n");
	status = 0;
out:
	for (unsigned i = 0; i < nkeys; i++) {
		if (keys[i] != NULL && hsm_key_destroy(&keys[i]) != ZD_OK) {
			fprintf(stderr, "hsm_rate: could not delete key %s: %s\n", label,
			        hsm_error_get(h));
			hsm_key_free(keys[i]);
		}
	}
	hsm_free(h);
	if (dir[0] != '\0')
		hsm_softhsm_remove(dir);
	return status;
}
