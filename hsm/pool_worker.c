/* hsm/pool_worker.c -- the worker side of hsm/pool.h: log in, find the keys,
 * then read jobs from stdin and write signatures to stdout until stdin
 * closes.  Frames: hsm/pool_priv.h.  One thread; the only process-wide
 * change is SIGPIPE ignored (the worker owns its process: main() handed
 * over), so a parent gone away is a write error, not a silent death. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/zd_parse.h"
#include "hsm/pool.h"
#include "hsm/pool_priv.h"

#define EXIT_DONE      0
#define EXIT_STARTUP   1
#define EXIT_MALFORMED 2
#define EXIT_IO        3

#define OUT_BUF 16384 /* bytes of answers gathered before a write */

struct worker {
	struct hsm *h;
	struct hsm_key *keys[HSM_POOL_KEYS_MAX];
	size_t n_keys;
	struct hsm_session *s;
	uint8_t in[POOL_JOB_BUF]; /* jobs read, in[in_off..in_len) not yet taken */
	size_t in_off, in_len;
	uint8_t out[OUT_BUF]; /* answers not yet written */
	size_t out_len;
	int parent_gone; /* stdout gave EPIPE */
};

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* 0, or -1 when stdout broke.  EPIPE is the parent closing its end, done
 * with us (hsm_pool_free() after a failure): no message then. */
static int
out_flush(struct worker *w)
{
	if (w->out_len > 0 && write_all(STDOUT_FILENO, w->out, w->out_len) != 0) {
		if (errno == EPIPE)
			w->parent_gone = 1;
		else
			fprintf(stderr, "hsm pool worker %ld: writing to the parent: %s\n",
			        (long)getpid(), strerror(errno));
		return -1;
	}
	w->out_len = 0;
	return 0;
}

/* Queue one answer; len <= POOL_ANS_MAX (callers cut texts to it). */
static int
answer(struct worker *w, uint8_t type, uint32_t seq, const void *payload, size_t len)
{
	_Static_assert(POOL_ANS_HDR + POOL_ANS_MAX <= OUT_BUF, "an answer fits the buffer");
	if (len > POOL_ANS_MAX)
		len = POOL_ANS_MAX;
	if (w->out_len + POOL_ANS_HDR + len > sizeof w->out && out_flush(w) != 0)
		return -1;
	uint8_t *p = w->out + w->out_len;
	p[0] = type;
	p[1] = 0;
	pool_put16(p + 2, (uint16_t)len);
	pool_put32(p + 4, seq);
	if (len > 0)
		memcpy(p + POOL_ANS_HDR, payload, len);
	w->out_len += POOL_ANS_HDR + len;
	return 0;
}

/* Lower or upper hex, even length, 1..HSM_ID_MAX bytes. */
static int
hex_decode(const char *s, uint8_t *out, size_t *len)
{
	return zd_hex_decode(s, strlen(s), out, HSM_ID_MAX, len) == ZD_OK ? 0 : -1;
}

/* Startup failures go to the parent, which names the worker. */
static int
startup_failed(struct worker *w, const char *what, const char *why)
{
	char text[HSM_POOL_ERR_MAX];
	int n = snprintf(text, sizeof text, "%s: %s", what, why);
	size_t len = n < 0 ? 0 : (size_t)n >= sizeof text ? sizeof text - 1 : (size_t)n;
	if (answer(w, POOL_ERR, 0, text, len) == 0)
		out_flush(w);
	return EXIT_STARTUP;
}

/* hsm_new + hsm_connect, every key by CKA_ID (a session copy of each where
 * the module makes one), one session; then POOL_READY. */
static int
startup(struct worker *w, char **args, int nargs)
{
	const char *pin = args[2];
	struct hsm_config cfg = {args[0], args[1], NULL, NULL, 0};
	uint8_t ready[3 * HSM_POOL_KEYS_MAX];
	char err[HSM_POOL_ERR_MAX];

	if (strncmp(pin, "file:", 5) == 0)
		cfg.pin_file = pin + 5;
	else if (strncmp(pin, "env:", 4) == 0)
		cfg.pin_env = pin + 4;
	if (hsm_new(&cfg, &w->h) != ZD_OK)
		return startup_failed(w, "configuration", "bad module, token label or PIN source");
	if (hsm_connect(w->h) != ZD_OK)
		return startup_failed(w, "log in", hsm_error_get(w->h));
	for (int i = 3; i < nargs; i++) {
		uint8_t id[HSM_ID_MAX];
		size_t id_len = 0;
		struct hsm_key *k = NULL;
		if (hex_decode(args[i], id, &id_len) != 0)
			return startup_failed(w, args[i], "not a key id in hex");
		if (hsm_key_find(w->h, id, id_len, &k) != ZD_OK)
			return startup_failed(w, args[i], hsm_error_get(w->h));
		if (k == NULL)
			return startup_failed(w, args[i], "no key with this CKA_ID in the token");
		/* Sign with a session copy where the module allows one (else with
		 * the token object, as before): SoftHSM then does not read and
		 * lock the key's file at every signature. */
		(void)hsm_key_session_copy(k);
		w->keys[w->n_keys] = k;
		ready[3 * w->n_keys] = hsm_key_alg_get(k);
		pool_put16(ready + 3 * w->n_keys + 1, (uint16_t)hsm_key_siglen_get(k));
		w->n_keys++;
	}
	if (hsm_session_open(w->h, &w->s, err, sizeof err) != ZD_OK)
		return startup_failed(w, "session", err);
	if (answer(w, POOL_READY, 0, ready, 3 * w->n_keys) != 0 || out_flush(w) != 0)
		return EXIT_IO;
	return EXIT_DONE;
}

/* Take every whole job in w->in; 0, or an exit status. */
static int
jobs_take(struct worker *w)
{
	uint8_t sig[HSM_SIG_MAX];
	_Static_assert(HSM_SIG_MAX <= POOL_ANS_MAX, "a signature fits an answer");

	while (w->in_len - w->in_off >= POOL_JOB_HDR) {
		const uint8_t *p = w->in + w->in_off;
		uint32_t seq = pool_get32(p), len = pool_get32(p + 8);
		uint16_t key = pool_get16(p + 4), zero = pool_get16(p + 6);
		/* Bounds before waiting for the data: a bad length never makes
		 * the worker read or wait for more than a job can hold. */
		if (zero != 0 || key >= w->n_keys || len > HSM_POOL_DATA_MAX) {
			fprintf(stderr,
			        "hsm pool worker %ld: malformed job frame (seq %u, key %u of %zu, "
			        "%u bytes, reserved %u)\n",
			        (long)getpid(), seq, key, w->n_keys, len, zero);
			return EXIT_MALFORMED;
		}
		if (w->in_len - w->in_off < POOL_JOB_HDR + (size_t)len)
			break;
		size_t siglen = sizeof sig;
		zd_err e = hsm_sign(w->s, w->keys[key], p + POOL_JOB_HDR, len, sig, &siglen);
		int r;
		if (e == ZD_OK) {
			r = answer(w, POOL_SIG, seq, sig, siglen);
		} else {
			const char *why = hsm_session_error_get(w->s);
			r = answer(w, hsm_session_lost(w->s) ? POOL_LOST : POOL_ERR, seq, why,
			           strlen(why));
		}
		if (r != 0)
			return EXIT_IO;
		w->in_off += POOL_JOB_HDR + len;
	}
	return 0;
}

static int
serve(struct worker *w)
{
	for (;;) {
		int r = jobs_take(w);
		if (r != 0)
			return r;
		/* Nothing whole left: answer what is done before blocking. */
		if (out_flush(w) != 0)
			return EXIT_IO;
		memmove(w->in, w->in + w->in_off, w->in_len - w->in_off);
		w->in_len -= w->in_off;
		w->in_off = 0;
		ssize_t got = read(STDIN_FILENO, w->in + w->in_len, sizeof w->in - w->in_len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			fprintf(stderr, "hsm pool worker %ld: reading jobs: %s\n", (long)getpid(),
			        strerror(errno));
			return EXIT_IO;
		}
		if (got == 0) {
			if (w->in_len == 0)
				return EXIT_DONE;
			fprintf(stderr, "hsm pool worker %ld: stdin closed inside a job frame\n",
			        (long)getpid());
			return EXIT_MALFORMED;
		}
		/* New work after a pause: the first signature of it looks that
		 * the token is still there (signing with session copies). */
		if (w->in_len == 0)
			hsm_session_recheck(w->s);
		w->in_len += (size_t)got;
	}
}

int
hsm_pool_worker_is(int argc, char *const *argv)
{
	for (int i = 1; i < argc; i++)
		if (argv[i] != NULL && strcmp(argv[i], HSM_POOL_WORKER_ARG) == 0)
			return 1;
	return 0;
}

int
hsm_pool_worker_main(int argc, char **argv)
{
	int at = 1, status;
	struct worker *w = NULL;

	while (at < argc && strcmp(argv[at], HSM_POOL_WORKER_ARG) != 0)
		at++;
	char **args = argv + at + 1;
	int nargs = argc - at - 1;
	/* module, token label, PIN source, then 1..HSM_POOL_KEYS_MAX key ids */
	if (at >= argc || nargs < 4 || nargs - 3 > HSM_POOL_KEYS_MAX) {
		fprintf(stderr,
		        "hsm pool worker: usage: ... %s MODULE TOKEN file:PATH|env:NAME "
		        "KEYID...\n",
		        HSM_POOL_WORKER_ARG);
		return EXIT_STARTUP;
	}
	signal(SIGPIPE, SIG_IGN);
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		fprintf(stderr, "hsm pool worker: out of memory\n");
		return EXIT_STARTUP;
	}
	status = startup(w, args, nargs);
	if (status == EXIT_DONE)
		status = serve(w);
	if (status == EXIT_IO && w->parent_gone)
		status = EXIT_DONE;
	hsm_session_close(w->s);
	for (size_t i = 0; i < w->n_keys; i++)
		hsm_key_free(w->keys[i]);
	hsm_free(w->h);
	free(w);
	return status;
}
