/* server/vmemo.c -- signatures verified ahead of the validation gate. */
#include "server/vmemo.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "hsm/verify.h"

#define VMEMO_THREADS_MAX 8
#define VMEMO_TAKE        8 /* jobs a thread takes at once */
#define DIGEST_LEN        SHA256_DIGEST_LENGTH

struct vkey {
	uint8_t alg;
	uint8_t *pub; /* owned */
	size_t pub_len;
	struct hsm_verify_key *vk;
};

struct vjob {
	uint8_t key; /* index into keys */
	uint16_t data_len, sig_len;
	uint8_t data[VMEMO_DATA_MAX];
	uint8_t sig[VMEMO_SIG_MAX];
};

struct digest {
	uint8_t b[DIGEST_LEN];
};

struct vmemo {
	pthread_mutex_t mu;
	pthread_cond_t work;
	struct vjob *q; /* [VMEMO_QUEUE] */
	size_t head, n;
	int stop;    /* the threads end (under mu) */
	int stopped; /* vmemo_stop() returned: d is sorted, read-only */
	pthread_t th[VMEMO_THREADS_MAX];
	size_t n_threads;
	struct vkey keys[VMEMO_KEYS]; /* added by the offering thread, read by all */
	size_t n_keys;                /* under mu */
	struct digest *d;             /* remembered, sorted once stopped */
	size_t n_d, cap_d;
	struct vmemo_stats st; /* under mu; hits atomically */
	EVP_MD *md;
};

/* SHA-256 over alg, the key, the input's length, the input and the
 * signature: the triple, unambiguously. */
static int
triple_digest(const EVP_MD *md, uint8_t alg, const uint8_t *pub, size_t pub_len,
              const uint8_t *data, size_t data_len, const uint8_t *sig, size_t sig_len,
              struct digest *out)
{
	uint8_t head[1 + 8 + 8] = {alg};
	for (int i = 0; i < 8; i++) {
		head[1 + i] = (uint8_t)((uint64_t)pub_len >> (8 * i));
		head[9 + i] = (uint8_t)((uint64_t)data_len >> (8 * i));
	}
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok = c != NULL && EVP_DigestInit_ex(c, md, NULL) == 1 &&
	         EVP_DigestUpdate(c, head, sizeof head) == 1 &&
	         EVP_DigestUpdate(c, pub, pub_len) == 1 &&
	         EVP_DigestUpdate(c, data, data_len) == 1 &&
	         EVP_DigestUpdate(c, sig, sig_len) == 1 &&
	         EVP_DigestFinal_ex(c, out->b, &len) == 1 && len == DIGEST_LEN;
	EVP_MD_CTX_free(c);
	return ok;
}

static int
digest_cmp(const void *a, const void *b)
{
	return memcmp(a, b, DIGEST_LEN);
}

/* Under mu: one verified triple remembered (dropped past the cap). */
static void
remember(struct vmemo *m, const struct digest *d)
{
	if (m->n_d == m->cap_d) {
		size_t cap = m->cap_d ? 2 * m->cap_d : 4096;
		if (cap > VMEMO_ENTRIES)
			cap = VMEMO_ENTRIES;
		struct digest *nd = cap > m->cap_d ? realloc(m->d, cap * sizeof *nd) : NULL;
		if (nd == NULL) {
			m->st.dropped++;
			return;
		}
		m->d = nd;
		m->cap_d = cap;
	}
	m->d[m->n_d++] = *d;
	m->st.verified++;
}

static void *
vmemo_main(void *arg)
{
	struct vmemo *m = arg;
	struct hsm_verifier *v = NULL;
	struct vjob *take = malloc(VMEMO_TAKE * sizeof *take);
	struct digest dg[VMEMO_TAKE];
	int ok[VMEMO_TAKE];
	struct sched_param sp = {0};

	/* only CPU time nothing else wants: the signing must not slow down */
	(void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	(void)hsm_verifier_new(&v); /* without one, each check sets its context up */
	pthread_mutex_lock(&m->mu);
	while (take != NULL) {
		while (m->n == 0 && !m->stop)
			pthread_cond_wait(&m->work, &m->mu);
		if (m->stop)
			break;
		size_t n = 0;
		for (; n < VMEMO_TAKE && m->n > 0; n++) {
			take[n] = m->q[m->head];
			m->head = (m->head + 1) % VMEMO_QUEUE;
			m->n--;
		}
		pthread_mutex_unlock(&m->mu);
		for (size_t i = 0; i < n; i++) {
			const struct vkey *k = &m->keys[take[i].key];
			ok[i] = hsm_verifier_check(v, k->vk, take[i].data, take[i].data_len,
			                           take[i].sig, take[i].sig_len) == ZD_OK &&
			        triple_digest(m->md, k->alg, k->pub, k->pub_len, take[i].data,
			                      take[i].data_len, take[i].sig, take[i].sig_len,
			                      &dg[i]);
		}
		pthread_mutex_lock(&m->mu);
		for (size_t i = 0; i < n; i++)
			if (ok[i])
				remember(m, &dg[i]);
			else
				m->st.failed++;
	}
	pthread_mutex_unlock(&m->mu);
	hsm_verifier_free(v);
	free(take);
	return NULL;
}

zd_err
vmemo_new(struct vmemo **out)
{
	struct vmemo *m = calloc(1, sizeof *m);
	if (m == NULL)
		return ZD_ENOMEM;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->work, NULL);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = cores < 2 ? 0 : cores > VMEMO_THREADS_MAX ? VMEMO_THREADS_MAX : (size_t)cores;
	if ((m->md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (want > 0 && (m->q = malloc(VMEMO_QUEUE * sizeof *m->q)) == NULL)) {
		vmemo_free(m);
		return ZD_ENOMEM;
	}
	for (size_t i = 0; i < want; i++) {
		if (pthread_create(&m->th[i], NULL, vmemo_main, m) != 0)
			break;
		pthread_setname_np(m->th[i], "zd-vmemo");
		m->n_threads++;
	}
	*out = m;
	return ZD_OK;
}

void
vmemo_stop(struct vmemo *m)
{
	if (m == NULL || m->stopped)
		return;
	pthread_mutex_lock(&m->mu);
	m->stop = 1;
	m->st.dropped += m->n;
	m->n = 0;
	pthread_cond_broadcast(&m->work);
	pthread_mutex_unlock(&m->mu);
	/* back to normal priority so that a busy machine does not hold them */
	struct sched_param sp = {0};
	for (size_t i = 0; i < m->n_threads; i++)
		(void)pthread_setschedparam(m->th[i], SCHED_OTHER, &sp);
	for (size_t i = 0; i < m->n_threads; i++)
		pthread_join(m->th[i], NULL);
	m->n_threads = 0;
	if (m->n_d > 1)
		qsort(m->d, m->n_d, sizeof *m->d, digest_cmp);
	m->stopped = 1;
}

void
vmemo_free(struct vmemo *m)
{
	if (m == NULL)
		return;
	vmemo_stop(m);
	for (size_t i = 0; i < m->n_keys; i++) {
		free(m->keys[i].pub);
		hsm_verify_key_free(m->keys[i].vk);
	}
	free(m->d);
	free(m->q);
	EVP_MD_free(m->md);
	pthread_cond_destroy(&m->work);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* The index of the key (alg, pub) in m->keys, added when new; -1 when
 * there is no room or it is no key of alg. */
static int
key_index(struct vmemo *m, uint8_t alg, const uint8_t *pub, size_t pub_len)
{
	for (size_t i = 0; i < m->n_keys; i++)
		if (m->keys[i].alg == alg && m->keys[i].pub_len == pub_len &&
		    memcmp(m->keys[i].pub, pub, pub_len) == 0)
			return (int)i;
	if (m->n_keys == VMEMO_KEYS)
		return -1;
	struct vkey k = {.alg = alg, .pub_len = pub_len};
	if ((k.pub = malloc(pub_len ? pub_len : 1)) == NULL ||
	    hsm_verify_key_new(alg, pub, pub_len, &k.vk) != ZD_OK) {
		free(k.pub);
		return -1;
	}
	memcpy(k.pub, pub, pub_len);
	/* the threads read keys[i] only for jobs queued after this, under mu */
	pthread_mutex_lock(&m->mu);
	m->keys[m->n_keys] = k;
	int i = (int)m->n_keys++;
	pthread_mutex_unlock(&m->mu);
	return i;
}

void
vmemo_offer(struct vmemo *m, uint8_t alg, const uint8_t *pub, size_t pub_len, const uint8_t *data,
            size_t data_len, const uint8_t *sig, size_t sig_len)
{
	if (m == NULL || m->stopped)
		return;
	int k = -1;
	if (m->n_threads > 0 && data_len <= VMEMO_DATA_MAX && sig_len <= VMEMO_SIG_MAX)
		k = key_index(m, alg, pub, pub_len);
	pthread_mutex_lock(&m->mu);
	m->st.offered++;
	if (k < 0 || m->n == VMEMO_QUEUE || m->stop) {
		m->st.dropped++;
		pthread_mutex_unlock(&m->mu);
		return;
	}
	struct vjob *j = &m->q[(m->head + m->n) % VMEMO_QUEUE];
	j->key = (uint8_t)k;
	j->data_len = (uint16_t)data_len;
	j->sig_len = (uint16_t)sig_len;
	memcpy(j->data, data, data_len);
	memcpy(j->sig, sig, sig_len);
	m->n++;
	pthread_cond_signal(&m->work);
	pthread_mutex_unlock(&m->mu);
}

int
vmemo_has(struct vmemo *m, uint8_t alg, const uint8_t *pub, size_t pub_len, const uint8_t *data,
          size_t data_len, const uint8_t *sig, size_t sig_len)
{
	struct digest d;
	if (m == NULL || !m->stopped || m->n_d == 0 ||
	    !triple_digest(m->md, alg, pub, pub_len, data, data_len, sig, sig_len, &d) ||
	    bsearch(&d, m->d, m->n_d, sizeof *m->d, digest_cmp) == NULL)
		return 0;
	__atomic_fetch_add(&m->st.hits, 1, __ATOMIC_RELAXED);
	return 1;
}

void
vmemo_stats_get(struct vmemo *m, struct vmemo_stats *out)
{
	memset(out, 0, sizeof *out);
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	*out = m->st;
	pthread_mutex_unlock(&m->mu);
	out->hits = __atomic_load_n(&m->st.hits, __ATOMIC_RELAXED);
}
