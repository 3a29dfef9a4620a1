/* hsm/pool.c -- the parent side of hsm/pool.h: start the workers, hand out
 * jobs over non-blocking pipes with poll(), collect signatures in order.
 * Frames: hsm/pool_priv.h.  Every fd is O_CLOEXEC except a worker's own
 * stdin and stdout, made by posix_spawn's dup2 (nothing of the module runs
 * between fork and exec). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/zd_log.h"
#include "hsm/pool.h"
#include "hsm/pool_priv.h"

extern char **environ;

#define READ_BUF     16384 /* bytes of answers read at once */
#define REAP_MS      2000  /* ms hsm_pool_free() waits before SIGKILL */
#define DIED_REAP_MS 1000  /* ms to wait for the status of a worker that closed its pipes */

_Static_assert(HSM_SIG_MAX <= POOL_ANS_MAX, "a signature fits an answer");
_Static_assert(3 * HSM_POOL_KEYS_MAX <= POOL_ANS_MAX, "a ready list fits an answer");
_Static_assert(POOL_ANS_HDR + POOL_ANS_MAX <= READ_BUF, "an answer fits the read buffer");
_Static_assert(HSM_POOL_DATA_MAX <= UINT32_MAX, "a job length fits its field");

struct pool_worker {
	pid_t pid;   /* -1 once reaped */
	int to_fd;   /* the worker's stdin (write end, non-blocking); -1 when closed */
	int from_fd; /* the worker's stdout (read end, non-blocking); -1 when closed */
	int ready;   /* POOL_READY seen */
	uint8_t rbuf[READ_BUF];
	size_t rlen;   /* rbuf[0..rlen) read, not yet taken */
	uint8_t *wbuf; /* POOL_JOB_BUF bytes: framed jobs, wbuf[woff..wlen) not yet written */
	size_t woff, wlen;
	/* Jobs in flight, oldest first: the worker answers in this order. */
	size_t fifo_job[HSM_POOL_WINDOW];
	uint32_t fifo_seq[HSM_POOL_WINDOW];
	unsigned head, inflight;
};

struct hsm_pool {
	unsigned procs;
	size_t n_keys;
	uint8_t alg[HSM_POOL_KEYS_MAX];
	size_t siglen[HSM_POOL_KEYS_MAX]; /* from the first ready worker; all must agree */
	int lost;                         /* a worker said POOL_LOST */
	int spent;                        /* a sign failed: no more jobs */
	uint32_t next_seq;
	struct pool_worker w[];
};

static void __attribute__((format(printf, 3, 4)))
err_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
fd_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Move *fd above 2, so that posix_spawn's dup2 onto 0 or 1 never meets
 * the same fd (dup2(fd, fd) would keep O_CLOEXEC on some libcs). */
static int
fd_above_stdio(int *fd)
{
	if (*fd > 2)
		return 0;
	int nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return -1;
	close(*fd);
	*fd = nfd;
	return 0;
}

static int
fd_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static zd_err
worker_spawn(struct pool_worker *w, char *const *args, char *err, size_t errlen)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, rc;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, pipe_only;
	zd_err e = ZD_EIO;

	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || fd_above_stdio(&in[0]) ||
	    fd_above_stdio(&in[1]) || fd_above_stdio(&out[0]) || fd_above_stdio(&out[1]) ||
	    fd_nonblock(in[1]) || fd_nonblock(out[0])) {
		err_set(err, errlen, "pipe for a worker: %s", strerror(errno));
		goto close;
	}
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
		err_set(err, errlen, "posix_spawn_file_actions_init: %s", strerror(rc));
		goto close;
	}
	if ((rc = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		err_set(err, errlen, "posix_spawnattr_init: %s", strerror(rc));
		goto close;
	}
	/* The worker starts with no signal blocked and SIGPIPE at its default,
	 * whatever the caller's thread had; it ignores SIGPIPE itself. */
	sigemptyset(&none);
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	if ((rc = posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO)) != 0 ||
	    (rc = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
	    (rc = posix_spawnattr_setsigdefault(&attr, &pipe_only)) != 0 ||
	    (rc = posix_spawnattr_setflags(&attr,
	                                   POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0 ||
	    (rc = posix_spawn(&w->pid, args[0], &fa, &attr, args, environ)) != 0) {
		w->pid = -1;
		err_set(err, errlen, "cannot start worker %s: %s", args[0], strerror(rc));
	} else {
		e = ZD_OK;
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
close:
	fd_close(&in[0]);
	fd_close(&out[1]);
	if (e == ZD_OK) {
		w->to_fd = in[1];
		w->from_fd = out[0];
	} else {
		fd_close(&in[1]);
		fd_close(&out[0]);
	}
	return e;
}

/* Wait until the deadline for w to exit; kill it after.  Returns its wait
 * status, or -1 when unknown (already reaped, SIGCHLD ignored). */
static int
worker_reap(struct pool_worker *w, uint64_t deadline_ms, int *killed)
{
	int status = 0;
	*killed = 0;
	if (w->pid < 0)
		return -1;
	for (;;) {
		pid_t r = waitpid(w->pid, &status, WNOHANG);
		if (r == w->pid)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			w->pid = -1;
			return -1;
		}
		if (zd_now_ms() >= deadline_ms) {
			kill(w->pid, SIGKILL);
			*killed = 1;
			while ((r = waitpid(w->pid, &status, 0)) < 0 && errno == EINTR)
				;
			if (r != w->pid) {
				w->pid = -1;
				return -1;
			}
			break;
		}
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
	w->pid = -1;
	return status;
}

/* w closed a pipe or broke one: close ours, get its status, say so. */
static void
worker_died(struct hsm_pool *p, unsigned i, const char *when, char *err, size_t errlen)
{
	struct pool_worker *w = &p->w[i];
	pid_t pid = w->pid;
	int killed = 0;

	fd_close(&w->to_fd);
	fd_close(&w->from_fd);
	int st = worker_reap(w, zd_now_ms() + DIED_REAP_MS, &killed);
	if (killed)
		err_set(err, errlen, "worker %u (pid %ld) closed its pipes %s and was killed", i,
		        (long)pid, when);
	else if (st < 0)
		err_set(err, errlen, "worker %u (pid %ld) exited %s (status unknown)", i, (long)pid,
		        when);
	else if (WIFSIGNALED(st))
		err_set(err, errlen, "worker %u (pid %ld) exited %s (signal %d)", i, (long)pid,
		        when, WTERMSIG(st));
	else
		err_set(err, errlen, "worker %u (pid %ld) exited %s (status %d)", i, (long)pid,
		        when, WEXITSTATUS(st));
}

/* Read what w has.  1: read something or nothing yet (EAGAIN), 0: EOF or
 * error (the worker is gone). */
static int
worker_read(struct pool_worker *w)
{
	for (;;) {
		if (w->rlen == sizeof w->rbuf)
			return 1; /* take answers first */
		ssize_t r = read(w->from_fd, w->rbuf + w->rlen, sizeof w->rbuf - w->rlen);
		if (r > 0) {
			w->rlen += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		return 0;
	}
}

/* The next whole answer in w->rbuf at *off.  1: one, 0: not whole yet,
 * -1: malformed. */
static int
answer_next(const struct pool_worker *w, size_t *off, uint8_t *type, uint32_t *seq,
            const uint8_t **payload, size_t *len)
{
	if (w->rlen - *off < POOL_ANS_HDR)
		return 0;
	const uint8_t *h = w->rbuf + *off;
	size_t n = pool_get16(h + 2);
	if (h[1] != 0 || n > POOL_ANS_MAX)
		return -1;
	if (w->rlen - *off < POOL_ANS_HDR + n)
		return 0;
	*type = h[0];
	*seq = pool_get32(h + 4);
	*payload = h + POOL_ANS_HDR;
	*len = n;
	*off += POOL_ANS_HDR + n;
	return 1;
}

static void
rbuf_consume(struct pool_worker *w, size_t off)
{
	memmove(w->rbuf, w->rbuf + off, w->rlen - off);
	w->rlen -= off;
}

/* A worker's text, which has no NUL, as a C string. */
static void
text_copy(char *out, size_t outlen, const uint8_t *p, size_t len)
{
	if (len >= outlen)
		len = outlen - 1;
	for (size_t i = 0; i < len; i++)
		out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	out[len] = '\0';
}

/* w's first answer: ready (its key list must match the pool's), or why not.
 * ZD_OK also when the answer is not whole yet (w->ready stays 0). */
static zd_err
ready_take(struct hsm_pool *p, unsigned i, char *err, size_t errlen)
{
	struct pool_worker *w = &p->w[i];
	size_t off = 0, len = 0;
	uint8_t type = 0;
	uint32_t seq = 0;
	const uint8_t *pl = NULL;
	char text[HSM_POOL_ERR_MAX + 1];

	int r = answer_next(w, &off, &type, &seq, &pl, &len);
	if (r == 0)
		return ZD_OK;
	if (r > 0 && type == POOL_ERR) {
		text_copy(text, sizeof text, pl, len);
		err_set(err, errlen, "worker %u (pid %ld): %s", i, (long)w->pid, text);
		return ZD_EHSM;
	}
	if (r < 0 || type != POOL_READY || len != 3 * p->n_keys || w->rlen != off) {
		err_set(err, errlen, "worker %u (pid %ld): malformed ready answer", i,
		        (long)w->pid);
		return ZD_EHSM;
	}
	for (size_t k = 0; k < p->n_keys; k++) {
		uint8_t alg = pl[3 * k];
		size_t siglen = pool_get16(pl + 3 * k + 1);
		if (siglen == 0 || siglen > HSM_SIG_MAX ||
		    (p->siglen[k] != 0 && (p->siglen[k] != siglen || p->alg[k] != alg))) {
			err_set(err, errlen,
			        "worker %u (pid %ld): key %zu has algorithm %u and %zu-byte "
			        "signatures, unlike the other workers'",
			        i, (long)w->pid, k, alg, siglen);
			return ZD_EHSM;
		}
		p->alg[k] = alg;
		p->siglen[k] = siglen;
	}
	rbuf_consume(w, off);
	w->ready = 1;
	return ZD_OK;
}

/* Wait up to HSM_POOL_START_MS for worker i's ready answer. */
static zd_err
ready_wait(struct hsm_pool *p, unsigned i, char *err, size_t errlen)
{
	struct pool_worker *w = &p->w[i];
	uint64_t deadline = zd_now_ms() + HSM_POOL_START_MS;

	while (!w->ready) {
		struct pollfd pfd = {.fd = w->from_fd, .events = POLLIN};
		uint64_t now = zd_now_ms();
		if (now >= deadline) {
			err_set(err, errlen, "worker %u (pid %ld) not ready after %d ms", i,
			        (long)w->pid, HSM_POOL_START_MS);
			return ZD_EHSM;
		}
		int r = poll(&pfd, 1, (int)(deadline - now));
		if (r < 0 && errno != EINTR) {
			err_set(err, errlen, "poll: %s", strerror(errno));
			return ZD_EIO;
		}
		if (r <= 0)
			continue;
		int alive = worker_read(w);
		zd_err e = ready_take(p, i, err, errlen);
		if (e != ZD_OK)
			return e;
		if (!alive && !w->ready) {
			worker_died(p, i, "before it was ready", err, errlen);
			return ZD_EHSM;
		}
	}
	return ZD_OK;
}

zd_err
hsm_pool_close(struct hsm_pool *p, char *err, size_t errlen)
{
	zd_err e = ZD_OK;
	if (p == NULL)
		return ZD_OK;
	/* Closing stdin tells each worker to exit; closing its stdout too
	 * frees one blocked on writing answers nobody will read. */
	for (unsigned i = 0; i < p->procs; i++) {
		fd_close(&p->w[i].to_fd);
		fd_close(&p->w[i].from_fd);
	}
	uint64_t deadline = zd_now_ms() + REAP_MS;
	for (unsigned i = 0; i < p->procs; i++) {
		pid_t pid = p->w[i].pid;
		int killed = 0, st = worker_reap(&p->w[i], deadline, &killed);
		free(p->w[i].wbuf);
		if (pid < 0 || e != ZD_OK)
			continue;
		e = ZD_EHSM;
		if (killed)
			err_set(err, errlen,
			        "worker %u (pid %ld) did not exit within %d ms; killed", i,
			        (long)pid, REAP_MS);
		else if (st < 0)
			err_set(err, errlen, "worker %u (pid %ld): exit status unknown", i,
			        (long)pid);
		else if (WIFSIGNALED(st))
			err_set(err, errlen, "worker %u (pid %ld) ended by signal %d", i, (long)pid,
			        WTERMSIG(st));
		else if (WEXITSTATUS(st) != 0)
			err_set(err, errlen, "worker %u (pid %ld) exited with status %d", i,
			        (long)pid, WEXITSTATUS(st));
		else
			e = ZD_OK;
	}
	free(p);
	return e;
}

void
hsm_pool_free(struct hsm_pool *p)
{
	hsm_pool_close(p, NULL, 0);
}

zd_err
hsm_pool_new(const struct hsm_config *hc, const char *const *argv, unsigned procs,
             const struct hsm_pool_key *keys, size_t n_keys, struct hsm_pool **out, char *err,
             size_t errlen)
{
	struct hsm_pool *p = NULL;
	struct hsm *check = NULL;
	char **args = NULL;
	char *pin = NULL, *hex = NULL;
	size_t nargv = 0;
	zd_err e;

	if (hc == NULL || argv == NULL || argv[0] == NULL || keys == NULL || n_keys == 0 ||
	    procs == 0 || out == NULL) {
		err_set(err, errlen, "a pool needs a configuration, argv[0], keys and workers");
		return ZD_EMALFORMED;
	}
	if (procs > HSM_POOL_PROCS_MAX || n_keys > HSM_POOL_KEYS_MAX) {
		err_set(err, errlen, "%u workers and %zu keys asked; at most %d and %d", procs,
		        n_keys, HSM_POOL_PROCS_MAX, HSM_POOL_KEYS_MAX);
		return ZD_ELIMIT;
	}
	for (size_t k = 0; k < n_keys; k++) {
		if (keys[k].id == NULL || keys[k].id_len == 0 || keys[k].id_len > HSM_ID_MAX) {
			err_set(err, errlen, "key %zu: CKA_ID of %zu bytes (1..%d)", k,
			        keys[k].id_len, HSM_ID_MAX);
			return ZD_EMALFORMED;
		}
	}
	/* hsm_new() checks the configuration as the workers will; it loads
	 * nothing. */
	if (hsm_new(hc, &check) != ZD_OK) {
		err_set(err, errlen,
		        "token configuration: needs a label and exactly one of "
		        "pin_file, pin_env");
		return ZD_EMALFORMED;
	}
	hsm_free(check);

	while (argv[nargv] != NULL)
		nargv++;
	e = ZD_ENOMEM;
	size_t pin_len = strlen(hc->pin_file ? hc->pin_file : hc->pin_env) + 6;
	args = calloc(nargv + 4 + n_keys + 1, sizeof *args);
	pin = malloc(pin_len);
	hex = malloc(n_keys * (2 * HSM_ID_MAX + 1));
	p = calloc(1, sizeof *p + procs * sizeof p->w[0]);
	if (args == NULL || pin == NULL || hex == NULL || p == NULL)
		goto fail;
	p->procs = procs;
	p->n_keys = n_keys;
	for (unsigned i = 0; i < procs; i++) {
		p->w[i].pid = -1;
		p->w[i].to_fd = p->w[i].from_fd = -1;
		if ((p->w[i].wbuf = malloc(POOL_JOB_BUF)) == NULL)
			goto fail;
	}
	snprintf(pin, pin_len, "%s%s",
	         hc->pin_file ? "file:" : "env:", hc->pin_file ? hc->pin_file : hc->pin_env);
	size_t a = 0;
	for (size_t i = 0; i < nargv; i++)
		args[a++] = (char *)argv[i]; /* posix_spawn's type; nothing writes them */
	args[a++] = (char *)HSM_POOL_WORKER_ARG;
	args[a++] = (char *)(hc->module_path ? hc->module_path : HSM_MODULE_DEFAULT);
	args[a++] = (char *)hc->token_label;
	args[a++] = pin;
	for (size_t k = 0; k < n_keys; k++) {
		char *h = hex + k * (2 * HSM_ID_MAX + 1);
		for (size_t b = 0; b < keys[k].id_len; b++)
			snprintf(h + 2 * b, 3, "%02x", keys[k].id[b]);
		args[a++] = h;
	}
	args[a] = NULL;

	/* One after the other: SoftHSM rewrites its token file at each login,
	 * and a process starting meanwhile may find the token unreadable
	 * ("no token labelled"; SoftHSMv2 issue 757).  Signing only reads. */
	for (unsigned i = 0; i < procs; i++) {
		if ((e = worker_spawn(&p->w[i], args, err, errlen)) != ZD_OK ||
		    (e = ready_wait(p, i, err, errlen)) != ZD_OK)
			goto fail;
	}
	*out = p;
	p = NULL;
fail:
	if (e == ZD_ENOMEM)
		err_set(err, errlen, "out of memory for a pool of %u workers", procs);
	hsm_pool_free(p);
	free(args);
	free(pin);
	free(hex);
	return e;
}

int
hsm_pool_lost(const struct hsm_pool *p)
{
	return p != NULL && p->lost;
}

unsigned
hsm_pool_procs_get(const struct hsm_pool *p)
{
	return p->procs;
}

size_t
hsm_pool_siglen_get(const struct hsm_pool *p, uint16_t key)
{
	return key < p->n_keys ? p->siglen[key] : 0;
}

/* Frame jobs into w's buffer while its window and buffer have room. */
static int
job_queue(struct hsm_pool *p, struct pool_worker *w, const struct hsm_pool_job *j, size_t idx)
{
	size_t need = POOL_JOB_HDR + j->len;
	if (w->inflight == HSM_POOL_WINDOW)
		return 0;
	if (w->woff == w->wlen)
		w->woff = w->wlen = 0;
	if (w->wlen + need > POOL_JOB_BUF) {
		if (w->woff == 0)
			return 0;
		memmove(w->wbuf, w->wbuf + w->woff, w->wlen - w->woff);
		w->wlen -= w->woff;
		w->woff = 0;
		if (w->wlen + need > POOL_JOB_BUF)
			return 0;
	}
	uint8_t *f = w->wbuf + w->wlen;
	uint32_t seq = p->next_seq++;
	pool_put32(f, seq);
	pool_put16(f + 4, j->key);
	pool_put16(f + 6, 0);
	pool_put32(f + 8, (uint32_t)j->len);
	if (j->len > 0)
		memcpy(f + POOL_JOB_HDR, j->data, j->len);
	w->wlen += need;
	unsigned slot = (w->head + w->inflight) % HSM_POOL_WINDOW;
	w->fifo_job[slot] = idx;
	w->fifo_seq[slot] = seq;
	w->inflight++;
	return 1;
}

/* Write what w has queued.  0: all or some (EAGAIN), -1: the pipe broke. */
static int
worker_write(struct pool_worker *w, int *epipe)
{
	while (w->woff < w->wlen) {
		ssize_t r = write(w->to_fd, w->wbuf + w->woff, w->wlen - w->woff);
		if (r > 0) {
			w->woff += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (r < 0 && errno == EPIPE)
			*epipe = 1;
		return -1;
	}
	return 0;
}

/* Take w's whole answers.  ZD_OK, or ZD_EHSM with err set. */
static zd_err
answers_take(struct hsm_pool *p, unsigned i, struct hsm_pool_job *jobs, size_t *done, char *err,
             size_t errlen)
{
	struct pool_worker *w = &p->w[i];
	size_t off = 0, len = 0;
	uint8_t type = 0;
	uint32_t seq = 0;
	const uint8_t *pl = NULL;
	char text[HSM_POOL_ERR_MAX + 1];
	int r;

	while ((r = answer_next(w, &off, &type, &seq, &pl, &len)) > 0) {
		if (w->inflight == 0 || w->fifo_seq[w->head] != seq) {
			err_set(err, errlen, "worker %u (pid %ld): answer %u out of order", i,
			        (long)w->pid, seq);
			return ZD_EHSM;
		}
		size_t jx = w->fifo_job[w->head];
		struct hsm_pool_job *j = &jobs[jx];
		if (type == POOL_ERR || type == POOL_LOST) {
			text_copy(text, sizeof text, pl, len);
			if (type == POOL_LOST)
				p->lost = 1;
			err_set(err, errlen, "worker %u (pid %ld): job %zu (key %u): %s", i,
			        (long)w->pid, jx, j->key, text);
			return ZD_EHSM;
		}
		if (type != POOL_SIG || len != p->siglen[j->key]) {
			err_set(err, errlen,
			        "worker %u (pid %ld): job %zu: malformed answer (type %u, %zu "
			        "bytes)",
			        i, (long)w->pid, jx, type, len);
			return ZD_EHSM;
		}
		memcpy(j->sig, pl, len);
		j->siglen = len;
		w->head = (w->head + 1) % HSM_POOL_WINDOW;
		w->inflight--;
		(*done)++;
	}
	if (r < 0) {
		err_set(err, errlen, "worker %u (pid %ld): malformed answer frame", i,
		        (long)w->pid);
		return ZD_EHSM;
	}
	rbuf_consume(w, off);
	return ZD_OK;
}

static zd_err
jobs_check(const struct hsm_pool *p, const struct hsm_pool_job *jobs, size_t n, char *err,
           size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].key >= p->n_keys) {
			err_set(err, errlen, "job %zu: key index %u, the pool has %zu keys", i,
			        jobs[i].key, p->n_keys);
			return ZD_EMALFORMED;
		}
		if (jobs[i].len > HSM_POOL_DATA_MAX) {
			err_set(err, errlen, "job %zu: %zu bytes to sign, at most %d", i,
			        jobs[i].len, HSM_POOL_DATA_MAX);
			return ZD_ELIMIT;
		}
		if ((jobs[i].data == NULL && jobs[i].len > 0) || jobs[i].sig == NULL) {
			err_set(err, errlen, "job %zu: no data or no signature buffer", i);
			return ZD_EMALFORMED;
		}
	}
	return ZD_OK;
}

/* The loop of hsm_pool_sign(); SIGPIPE is blocked around it. */
static zd_err
sign_loop(struct hsm_pool *p, struct hsm_pool_job *jobs, size_t n, unsigned timeout_ms, int *epipe,
          char *err, size_t errlen)
{
	struct pollfd pfd[2 * HSM_POOL_PROCS_MAX];
	unsigned idx[2 * HSM_POOL_PROCS_MAX];
	size_t next = 0, done = 0;
	uint64_t last = zd_now_ms();

	while (done < n) {
		/* One job per worker per round: a short batch still spreads. */
		for (int more = 1; more && next < n;) {
			more = 0;
			for (unsigned i = 0; i < p->procs && next < n; i++)
				if (job_queue(p, &p->w[i], &jobs[next], next)) {
					next++;
					more = 1;
				}
		}
		nfds_t nf = 0;
		for (unsigned i = 0; i < p->procs; i++) {
			struct pool_worker *w = &p->w[i];
			pfd[nf] = (struct pollfd){.fd = w->from_fd, .events = POLLIN};
			idx[nf++] = i;
			if (w->woff < w->wlen) {
				pfd[nf] = (struct pollfd){.fd = w->to_fd, .events = POLLOUT};
				idx[nf++] = i;
			}
		}
		uint64_t now = zd_now_ms();
		if (now - last >= timeout_ms) {
			err_set(err, errlen,
			        "no answer from any of %u workers for %u ms (%zu of %zu "
			        "jobs signed)",
			        p->procs, timeout_ms, done, n);
			return ZD_EHSM;
		}
		uint64_t left = timeout_ms - (now - last);
		int r = poll(pfd, nf, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno != EINTR) {
			err_set(err, errlen, "poll: %s", strerror(errno));
			return ZD_EIO;
		}
		for (nfds_t k = 0; r > 0 && k < nf; k++) {
			unsigned i = idx[k];
			struct pool_worker *w = &p->w[i];
			if (pfd[k].revents == 0)
				continue;
			if (pfd[k].fd == w->from_fd) {
				size_t before = done;
				int alive = worker_read(w);
				zd_err e = answers_take(p, i, jobs, &done, err, errlen);
				if (e != ZD_OK)
					return e;
				if (done != before)
					last = zd_now_ms();
				if (!alive) {
					worker_died(p, i, "while signing", err, errlen);
					return ZD_EHSM;
				}
			} else if (worker_write(w, epipe) != 0) {
				worker_died(p, i, "while signing", err, errlen);
				return ZD_EHSM;
			}
		}
	}
	return ZD_OK;
}

zd_err
hsm_pool_sign(struct hsm_pool *p, struct hsm_pool_job *jobs, size_t n, unsigned timeout_ms,
              char *err, size_t errlen)
{
	sigset_t pipe_only, old, pending;
	int was_pending, epipe = 0;
	zd_err e;

	if (p == NULL || (jobs == NULL && n > 0) || timeout_ms == 0) {
		err_set(err, errlen, "a sign needs a pool, jobs and a timeout");
		return ZD_EMALFORMED;
	}
	if (p->spent) {
		err_set(err, errlen, "the pool failed before; make a new one");
		return ZD_EHSM;
	}
	if ((e = jobs_check(p, jobs, n, err, errlen)) != ZD_OK || n == 0)
		return e;

	/* A write to a dead worker raises SIGPIPE at this thread: keep it
	 * blocked, and take the one we caused (not one pending before). */
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	e = sign_loop(p, jobs, n, timeout_ms, &epipe, err, errlen);
	if (epipe && !was_pending) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_only, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != ZD_OK)
		p->spent = 1;
	return e;
}

pid_t
hsm_pool_test_pid_get(const struct hsm_pool *p, unsigned i)
{
	return i < p->procs ? p->w[i].pid : -1;
}

zd_err
hsm_pool_test_raw_send(struct hsm_pool *p, unsigned i, const void *bytes, size_t len)
{
	const uint8_t *b = bytes;
	if (i >= p->procs || p->w[i].to_fd < 0)
		return ZD_EMALFORMED;
	while (len > 0) {
		struct pollfd pfd = {.fd = p->w[i].to_fd, .events = POLLOUT};
		ssize_t r = write(p->w[i].to_fd, b, len);
		if (r > 0) {
			b += r;
			len -= (size_t)r;
		} else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			poll(&pfd, 1, 1000);
		} else {
			return ZD_EIO;
		}
	}
	return ZD_OK;
}
