/* Unit tests of hsm/pool.h: a throwaway SoftHSM token with an ECDSA, an
 * Ed25519 and an RSA key made in this process, then worker processes that
 * are this very program (main() hands over to hsm_pool_worker_main() when
 * the pool's argument is there).  Failure paths first: bad arguments, a
 * wrong PIN, a missing key, a refused job, a malformed frame, a worker that
 * stops answering, a worker killed mid-run, the token moved away; then
 * mixed jobs over two workers, every signature checked with OpenSSL through
 * hsm/verify.h, and an orderly close in which every worker exits 0 (under
 * ASan, a leak or error in a worker makes that status non-zero).
 * ZD_PKCS11_MODULE overrides the module path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/zd_err.h"
#include "common/zd_log.h"
#include "hsm/dnskey.h"
#include "hsm/hsm.h"
#include "hsm/pool.h"
#include "hsm/token_init.h"
#include "hsm/verify.h"

#define TOKEN      "zd-pool"
#define SO_PIN     "so-pin-1357"
#define USER_PIN   "user-pin-2468"
#define N_KEYS     3
#define TIMEOUT_MS 20000

/* SoftHSM 2.6.1 leaks a decoded ASN.1 object in every Ed25519 C_SignInit
 * (as in hsm_test.c): only leaks allocated inside the module are
 * suppressed.  The workers are this program, so this covers them too. */
const char *__lsan_default_suppressions(void);
const char *__asan_default_options(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:libsofthsm2.so\n";
}

const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

static char dir[PATH_MAX];      /* temporary; removed at the end */
static char pin_path[PATH_MAX]; /* USER_PIN and a newline */
static char bad_pin[PATH_MAX];  /* another PIN */
static char tokens[PATH_MAX];   /* SoftHSM's token directory */
static char self[PATH_MAX];     /* this program: the workers' executable */
static const char *module;
static struct hsm *h;                /* keys made here, then this side idles */
static struct hsm_key *keys[N_KEYS]; /* ECDSA, Ed25519, RSA-2048 */
static struct hsm_verify_key *vk[N_KEYS];
static struct hsm_pool_key pool_keys[N_KEYS];

/* ---- helpers ---- */

static void
file_write(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

static void
path_join(char *out, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	assert_true(n > 0 && n < PATH_MAX);
}

static int
contains(const char *haystack, const char *needle)
{
	return strstr(haystack, needle) != NULL;
}

/* No child process left, running or unreaped. */
static int
no_children(void)
{
	int st;
	return waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD;
}

static struct hsm_config
config(const char *pin_file)
{
	return (struct hsm_config){module, TOKEN, pin_file, NULL, 0};
}

static struct hsm_pool *
pool_up(unsigned procs)
{
	struct hsm_config cfg = config(pin_path);
	const char *argv[] = {self, NULL};
	struct hsm_pool *p = NULL;
	char err[1024] = "";
	zd_err e = hsm_pool_new(&cfg, argv, procs, pool_keys, N_KEYS, &p, err, sizeof err);
	if (e != ZD_OK)
		fprintf(stderr, "# pool: %s\n", err);
	assert_int_equal(e, ZD_OK);
	assert_non_null(p);
	assert_int_equal(hsm_pool_procs_get(p), procs);
	return p;
}

/* Close and insist every worker ended by itself with status 0. */
static void
pool_close_clean(struct hsm_pool *p)
{
	char err[512] = "";
	zd_err e = hsm_pool_close(p, err, sizeof err);
	if (e != ZD_OK)
		fprintf(stderr, "# close: %s\n", err);
	assert_int_equal(e, ZD_OK);
	assert_true(no_children());
}

/* Deterministic bytes that differ per job. */
static void
fill(uint8_t *data, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		data[i] = (uint8_t)(x >> 16);
	}
}

struct batch {
	size_t n;
	struct hsm_pool_job *jobs;
	uint8_t *data; /* n * 512 bytes */
	uint8_t *sigs; /* n * HSM_SIG_MAX bytes */
};

/* n jobs, data of 1..512 bytes, keys mixed in an irregular order. */
static void
batch_make(struct batch *b, size_t n, uint32_t seed, int key)
{
	b->n = n;
	b->jobs = calloc(n, sizeof *b->jobs);
	b->data = malloc(n * 512);
	b->sigs = malloc(n * HSM_SIG_MAX);
	assert_non_null(b->jobs);
	assert_non_null(b->data);
	assert_non_null(b->sigs);
	for (size_t i = 0; i < n; i++) {
		uint32_t r = (uint32_t)(i * 7919u + seed) % 1000u;
		b->jobs[i].data = b->data + i * 512;
		b->jobs[i].len = 1 + r % 512;
		b->jobs[i].key = key >= 0 ? (uint16_t)key : (uint16_t)((r / 7) % N_KEYS);
		b->jobs[i].sig = b->sigs + i * HSM_SIG_MAX;
		b->jobs[i].siglen = 0;
		fill(b->data + i * 512, b->jobs[i].len, (uint32_t)i + seed);
	}
}

static void
batch_free(struct batch *b)
{
	free(b->jobs);
	free(b->data);
	free(b->sigs);
}

/* Every signature verifies with the key's public data, and not for the
 * neighbouring job's data (the check can fail). */
static void
batch_verify(const struct batch *b, const struct hsm_pool *p)
{
	size_t per_key[N_KEYS] = {0};
	for (size_t i = 0; i < b->n; i++) {
		const struct hsm_pool_job *j = &b->jobs[i];
		assert_int_equal(j->siglen, hsm_key_siglen_get(keys[j->key]));
		assert_int_equal(j->siglen, hsm_pool_siglen_get(p, j->key));
		assert_int_equal(
		        hsm_verify_key_check(vk[j->key], j->data, j->len, j->sig, j->siglen),
		        ZD_OK);
		per_key[j->key]++;
		if (i > 0 && i < 50) {
			const struct hsm_pool_job *o = &b->jobs[i - 1];
			assert_int_not_equal(hsm_verify_key_check(vk[j->key], o->data, o->len,
			                                          j->sig, j->siglen),
			                     ZD_OK);
		}
	}
	if (b->n >= 100)
		for (int k = 0; k < N_KEYS; k++)
			assert_true(per_key[k] > 0);
}

static int
group_setup(void **state)
{
	char err[512];
	const char *tmp = getenv("TMPDIR");
	const struct hsm_keyspec specs[N_KEYS] = {
	        {HSM_ALG_ECDSAP256SHA256, 0, "pool-ecdsa", 0},
	        {HSM_ALG_ED25519, 0, "pool-ed25519", 0},
	        {HSM_ALG_RSASHA256, 2048, "pool-rsa2048", 0},
	};
	(void)state;
	module = getenv("ZD_PKCS11_MODULE") ? getenv("ZD_PKCS11_MODULE") : HSM_MODULE_DEFAULT;
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	snprintf(dir, sizeof dir, "%s/zd-pool-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	path_join(pin_path, "user.pin");
	path_join(bad_pin, "bad.pin");
	path_join(tokens, "tokens");
	file_write(pin_path, USER_PIN "\n");
	file_write(bad_pin, "not-the-pin\n");
	if (hsm_softhsm_setup(dir, err, sizeof err) != ZD_OK ||
	    hsm_token_init(module, TOKEN, SO_PIN, USER_PIN, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "# token setup failed: %s\n", err);
		return -1;
	}
	struct hsm_config cfg = config(pin_path);
	if (hsm_new(&cfg, &h) != ZD_OK || hsm_connect(h) != ZD_OK) {
		fprintf(stderr, "# connect: %s\n", h ? hsm_error_get(h) : "hsm_new");
		return -1;
	}
	for (int k = 0; k < N_KEYS; k++) {
		size_t len = 0;
		if (hsm_key_generate(h, &specs[k], &keys[k]) != ZD_OK) {
			fprintf(stderr, "# generate %s: %s\n", specs[k].label, hsm_error_get(h));
			return -1;
		}
		const uint8_t *pub = hsm_key_pubkey_get(keys[k], &len);
		if (hsm_verify_key_new(specs[k].alg, pub, len, &vk[k]) != ZD_OK)
			return -1;
		pool_keys[k].id = hsm_key_id_get(keys[k], &pool_keys[k].id_len);
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	for (int k = 0; k < N_KEYS; k++) {
		hsm_verify_key_free(vk[k]);
		hsm_key_free(keys[k]);
	}
	hsm_free(h);
	if (dir[0] != '\0')
		hsm_softhsm_remove(dir);
	return 0;
}

/* ---- failures at start ---- */

static void
new_refuses_bad_arguments_and_starts_nothing(void **state)
{
	struct hsm_config cfg = config(pin_path), nopin = config(NULL);
	const char *argv[] = {self, NULL}, *noexe[] = {NULL};
	struct hsm_pool *p = (struct hsm_pool *)&p; /* must stay untouched */
	struct hsm_pool *const sentinel = p;
	uint8_t long_id[HSM_ID_MAX + 1] = {0};
	struct hsm_pool_key bad_id[1] = {{long_id, sizeof long_id}};
	struct hsm_pool_key many[HSM_POOL_KEYS_MAX + 1];
	char err[512];
	(void)state;
	for (size_t i = 0; i < HSM_POOL_KEYS_MAX + 1; i++)
		many[i] = pool_keys[0];

	assert_int_equal(hsm_pool_new(&cfg, argv, 0, pool_keys, N_KEYS, &p, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_int_equal(hsm_pool_new(&cfg, argv, HSM_POOL_PROCS_MAX + 1, pool_keys, N_KEYS, &p,
	                              err, sizeof err),
	                 ZD_ELIMIT);
	assert_int_equal(
	        hsm_pool_new(&cfg, argv, 1, many, HSM_POOL_KEYS_MAX + 1, &p, err, sizeof err),
	        ZD_ELIMIT);
	assert_int_equal(hsm_pool_new(&cfg, argv, 1, pool_keys, 0, &p, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_int_equal(hsm_pool_new(&cfg, noexe, 1, pool_keys, N_KEYS, &p, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_int_equal(hsm_pool_new(&cfg, argv, 1, bad_id, 1, &p, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_true(contains(err, "CKA_ID"));
	assert_int_equal(hsm_pool_new(&nopin, argv, 1, pool_keys, N_KEYS, &p, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_true(contains(err, "pin"));
	assert_ptr_equal(p, sentinel);
	assert_true(no_children());
}

static void
missing_executable_fails_with_errno_text(void **state)
{
	struct hsm_config cfg = config(pin_path);
	const char *argv[] = {"/nonexistent/zd-worker", NULL};
	struct hsm_pool *p = NULL;
	char err[512] = "";
	(void)state;
	assert_int_equal(hsm_pool_new(&cfg, argv, 2, pool_keys, N_KEYS, &p, err, sizeof err),
	                 ZD_EIO);
	fprintf(stderr, "# no executable: %s\n", err);
	assert_true(contains(err, "No such file"));
	assert_null(p);
	assert_true(no_children());
}

static void
wrong_pin_fails_new_with_the_tokens_message(void **state)
{
	struct hsm_config cfg = config(bad_pin);
	const char *argv[] = {self, NULL};
	struct hsm_pool *p = NULL;
	char err[1024] = "";
	(void)state;
	assert_int_equal(hsm_pool_new(&cfg, argv, 2, pool_keys, N_KEYS, &p, err, sizeof err),
	                 ZD_EHSM);
	fprintf(stderr, "# wrong PIN: %s\n", err);
	assert_true(contains(err, "worker "));
	assert_true(contains(err, "C_Login"));
	assert_true(contains(err, "CKR_PIN_INCORRECT"));
	assert_false(contains(err, "not-the-pin"));
	assert_null(p);
	assert_true(no_children()); /* every worker started was reaped */
}

static void
missing_key_fails_new_and_names_it(void **state)
{
	struct hsm_config cfg = config(pin_path);
	const char *argv[] = {self, NULL};
	const uint8_t nobody[HSM_ID_LEN] = {0xde, 0xad, 0xbe, 0xef};
	struct hsm_pool_key ks[2] = {pool_keys[0], {nobody, sizeof nobody}};
	struct hsm_pool *p = NULL;
	char err[1024] = "";
	(void)state;
	assert_int_equal(hsm_pool_new(&cfg, argv, 1, ks, 2, &p, err, sizeof err), ZD_EHSM);
	fprintf(stderr, "# missing key: %s\n", err);
	assert_true(contains(err, "deadbeef000000000000000000000000"));
	assert_true(contains(err, "no key"));
	assert_null(p);
	assert_true(no_children());
}

/* ---- failures while signing ---- */

static void
refused_jobs_send_nothing_and_leave_the_pool_usable(void **state)
{
	uint8_t data[16] = "signing input", sig[2][HSM_SIG_MAX];
	static uint8_t big[HSM_POOL_DATA_MAX + 1];
	struct hsm_pool_job jobs[2] = {
	        {data, sizeof data, 0, sig[0], 0},
	        {data, sizeof data, N_KEYS, sig[1], 0}, /* no such key */
	};
	char err[512] = "";
	(void)state;
	struct hsm_pool *p = pool_up(1);
	assert_int_equal(hsm_pool_sign(p, jobs, 2, TIMEOUT_MS, err, sizeof err), ZD_EMALFORMED);
	assert_true(contains(err, "job 1"));
	assert_true(contains(err, "key index 3"));
	assert_int_equal(jobs[0].siglen, 0); /* nothing was sent */
	jobs[1] = (struct hsm_pool_job){big, sizeof big, 0, sig[1], 0};
	assert_int_equal(hsm_pool_sign(p, jobs, 2, TIMEOUT_MS, err, sizeof err), ZD_ELIMIT);
	assert_int_equal(jobs[0].siglen, 0);
	assert_int_equal(hsm_pool_sign(p, jobs, 1, 0, err, sizeof err), ZD_EMALFORMED);
	/* Still usable: the largest input goes through and verifies. */
	fill(big, HSM_POOL_DATA_MAX, 99);
	jobs[1].len = HSM_POOL_DATA_MAX;
	jobs[1].key = 2;
	assert_int_equal(hsm_pool_sign(p, jobs, 2, TIMEOUT_MS, err, sizeof err), ZD_OK);
	for (int i = 0; i < 2; i++)
		assert_int_equal(hsm_verify_key_check(vk[jobs[i].key], jobs[i].data, jobs[i].len,
		                                      jobs[i].sig, jobs[i].siglen),
		                 ZD_OK);
	assert_int_equal(hsm_pool_sign(p, jobs, 0, TIMEOUT_MS, err, sizeof err), ZD_OK);
	pool_close_clean(p);
}

/* The worker checks every frame's bounds itself: a key index it was not
 * given makes it exit 2 with a message on stderr (the parent's, captured
 * here), and the parent's next sign says the worker exited. */
static void
malformed_frame_makes_the_worker_exit_with_a_message(void **state)
{
	char log[PATH_MAX], err[512] = "", text[2048];
	uint8_t bad[12] = {0, 0, 0, 7, 0, 99, 0, 0, 0, 0, 0, 4};
	uint8_t data[8] = "abcdefg", sig[HSM_SIG_MAX];
	struct hsm_pool_job job = {data, sizeof data, 0, sig, 0};
	(void)state;
	path_join(log, "worker.stderr");

	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	struct hsm_pool *p = pool_up(1); /* the worker's stderr is the file */
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);

	assert_int_equal(hsm_pool_test_raw_send(p, 0, bad, sizeof bad), ZD_OK);
	uint64_t t0 = zd_now_ms();
	assert_int_equal(hsm_pool_sign(p, &job, 1, TIMEOUT_MS, err, sizeof err), ZD_EHSM);
	assert_true(zd_now_ms() - t0 < TIMEOUT_MS);
	fprintf(stderr, "# malformed frame: %s\n", err);
	assert_true(contains(err, "worker 0"));
	assert_true(contains(err, "exited"));
	assert_true(contains(err, "(status 2)"));
	FILE *fp = fopen(log, "r");
	assert_non_null(fp);
	size_t n = fread(text, 1, sizeof text - 1, fp);
	fclose(fp);
	text[n] = '\0';
	fprintf(stderr, "# worker said: %s", text);
	assert_true(contains(text, "malformed job frame"));
	assert_true(contains(text, "key 99 of 3"));
	/* The pool is spent now. */
	assert_int_equal(hsm_pool_sign(p, &job, 1, TIMEOUT_MS, err, sizeof err), ZD_EHSM);
	assert_true(contains(err, "make a new one"));
	assert_false(hsm_pool_lost(p));
	pool_close_clean(p); /* the dead worker was reaped by the sign */
}

/* A stopped worker never answers: the sign gives up after timeout_ms. */
static void
a_worker_that_stops_answering_times_out(void **state)
{
	struct batch b;
	char err[512] = "";
	(void)state;
	struct hsm_pool *p = pool_up(2);
	pid_t pid = hsm_pool_test_pid_get(p, 1);
	assert_true(pid > 0);
	assert_int_equal(hsm_pool_test_pid_get(p, 2), -1);
	batch_make(&b, 200, 5, 0);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	uint64_t t0 = zd_now_ms();
	assert_int_equal(hsm_pool_sign(p, b.jobs, b.n, 700, err, sizeof err), ZD_EHSM);
	uint64_t took = zd_now_ms() - t0;
	fprintf(stderr, "# stopped worker: %s (%llu ms)\n", err, (unsigned long long)took);
	assert_true(contains(err, "no answer"));
	assert_true(took >= 700 && took < 5000);
	assert_false(hsm_pool_lost(p));
	assert_int_equal(kill(pid, SIGCONT), 0);
	batch_free(&b);
	hsm_pool_free(p);
	assert_true(no_children());
}

struct killer {
	pid_t pid;
	unsigned after_ms;
};

static void *
killer_run(void *arg)
{
	struct killer *k = arg;
	struct timespec ts = {k->after_ms / 1000, (long)(k->after_ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	kill(k->pid, SIGKILL);
	return NULL;
}

static void
a_worker_killed_mid_run_fails_the_sign_without_a_hang(void **state)
{
	struct batch b;
	char err[512] = "";
	pthread_t tid;
	zd_err e = ZD_OK;
	unsigned rounds = 0;
	(void)state;
	struct hsm_pool *p = pool_up(2);
	struct killer k = {hsm_pool_test_pid_get(p, 1), 150};
	batch_make(&b, 2000, 11, -1);
	assert_int_equal(pthread_create(&tid, NULL, killer_run, &k), 0);
	/* Batch after batch until the kill lands (each takes a good part of a
	 * second with the RSA jobs, so it lands inside one). */
	uint64_t t0 = zd_now_ms();
	while (e == ZD_OK && zd_now_ms() - t0 < 60000) {
		e = hsm_pool_sign(p, b.jobs, b.n, TIMEOUT_MS, err, sizeof err);
		rounds++;
	}
	uint64_t took = zd_now_ms() - t0;
	assert_int_equal(pthread_join(tid, NULL), 0);
	fprintf(stderr, "# killed worker: %s (round %u, %llu ms)\n", err, rounds,
	        (unsigned long long)took);
	assert_int_equal(e, ZD_EHSM);
	assert_true(contains(err, "worker 1"));
	assert_true(contains(err, "(signal 9)"));
	assert_true(took < TIMEOUT_MS);
	assert_false(hsm_pool_lost(p));
	assert_int_equal(hsm_pool_sign(p, b.jobs, 1, TIMEOUT_MS, err, sizeof err), ZD_EHSM);
	batch_free(&b);
	pool_close_clean(p); /* worker 0 still exits 0 */
}

/* SoftHSM keeps objects in files: with the token directory gone, each
 * worker's look at the token object (before the first job of a batch it
 * signs with its session copy) fails, the worker says the token is lost,
 * and after the directory is back a new pool signs again. */
static void
token_moved_away_mid_run_fails_and_says_lost(void **state)
{
	struct batch b;
	char gone[PATH_MAX], err[1024] = "";
	(void)state;
	path_join(gone, "tokens.gone");
	struct hsm_pool *p = pool_up(2);
	batch_make(&b, 300, 17, -1);
	assert_int_equal(hsm_pool_sign(p, b.jobs, b.n, TIMEOUT_MS, err, sizeof err), ZD_OK);
	batch_verify(&b, p);

	assert_int_equal(rename(tokens, gone), 0);
	assert_int_equal(hsm_pool_sign(p, b.jobs, b.n, TIMEOUT_MS, err, sizeof err), ZD_EHSM);
	fprintf(stderr, "# token moved: %s\n", err);
	assert_true(contains(err, "worker "));
	assert_true(contains(err, "job "));
	/* the workers sign with session copies: the look at the token object
	 * that starts each batch fails */
	assert_true(contains(err, "C_GetAttributeValue (is the key there)"));
	assert_true(contains(err, "CKR_"));
	assert_true(hsm_pool_lost(p));
	hsm_pool_free(p);
	assert_true(no_children());

	assert_int_equal(rename(gone, tokens), 0);
	p = pool_up(2);
	assert_false(hsm_pool_lost(p));
	assert_int_equal(hsm_pool_sign(p, b.jobs, b.n, TIMEOUT_MS, err, sizeof err), ZD_OK);
	batch_verify(&b, p);
	batch_free(&b);
	pool_close_clean(p);
}

/* ---- signing ---- */

static void
mixed_jobs_over_two_workers_all_verify(void **state)
{
	struct batch b;
	char err[512] = "";
	(void)state;
	struct hsm_pool *p = pool_up(2);
	assert_int_equal(hsm_pool_siglen_get(p, 0), 64);
	assert_int_equal(hsm_pool_siglen_get(p, 1), 64);
	assert_int_equal(hsm_pool_siglen_get(p, 2), 256);
	assert_int_equal(hsm_pool_siglen_get(p, N_KEYS), 0);
	for (uint32_t round = 0; round < 2; round++) {
		batch_make(&b, 2000, 1000 + round, -1);
		zd_err e = hsm_pool_sign(p, b.jobs, b.n, TIMEOUT_MS, err, sizeof err);
		if (e != ZD_OK)
			fprintf(stderr, "# sign: %s\n", err);
		assert_int_equal(e, ZD_OK);
		batch_verify(&b, p);
		batch_free(&b);
	}
	/* A short batch, fewer jobs than workers. */
	batch_make(&b, 1, 3, 1);
	assert_int_equal(hsm_pool_sign(p, b.jobs, b.n, TIMEOUT_MS, err, sizeof err), ZD_OK);
	batch_verify(&b, p);
	batch_free(&b);
	pid_t pids[2] = {hsm_pool_test_pid_get(p, 0), hsm_pool_test_pid_get(p, 1)};
	uint64_t t0 = zd_now_ms();
	pool_close_clean(p); /* every worker exits 0 on its own once stdin closes */
	assert_true(zd_now_ms() - t0 < 1500);
	assert_int_equal(kill(pids[0], 0), -1);
	assert_int_equal(kill(pids[1], 0), -1);
}

int
main(int argc, char **argv)
{
	/* The pool's workers are this program. */
	if (hsm_pool_worker_is(argc, argv))
		return hsm_pool_worker_main(argc, argv);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(new_refuses_bad_arguments_and_starts_nothing),
	        cmocka_unit_test(missing_executable_fails_with_errno_text),
	        cmocka_unit_test(wrong_pin_fails_new_with_the_tokens_message),
	        cmocka_unit_test(missing_key_fails_new_and_names_it),
	        cmocka_unit_test(refused_jobs_send_nothing_and_leave_the_pool_usable),
	        cmocka_unit_test(malformed_frame_makes_the_worker_exit_with_a_message),
	        cmocka_unit_test(a_worker_that_stops_answering_times_out),
	        cmocka_unit_test(a_worker_killed_mid_run_fails_the_sign_without_a_hang),
	        cmocka_unit_test(token_moved_away_mid_run_fails_and_says_lost),
	        cmocka_unit_test(mixed_jobs_over_two_workers_all_verify),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
