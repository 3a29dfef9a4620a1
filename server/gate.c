/* server/gate.c -- the DNSSEC validation gate (see gate.h).
 *
 * Independent of the signer on purpose: it reads only the store, rebuilds
 * every signing input with ldns, verifies with hsm/verify.h (OpenSSL) and
 * derives what must be signed and denied from the zone's contents, not from
 * anything the signer recorded.  Every check that fails says where, in one
 * line, and stops: the caller keeps the last good version published. */
#include "server/gate.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "hsm/verify.h"

#define HASH_LEN      20  /* NSEC3 SHA-1 (RFC 5155 s11) */
#define HASH_B32_LEN  32  /* base32hex characters of a hash */
#define ZONE_KEYS_MAX 64  /* zone keys in one DNSKEY RRset */
#define WALK_CHUNK    64  /* names per step of a zone walk */
#define DEPTH_MAX     128 /* labels of a name */
#define KEY_ZONE      0x0100
#define NSEC3_OPTOUT  0x01

struct gkey {
	uint16_t tag;
	uint8_t alg;
	struct hsm_verify_key *vk;
};

struct vpool;

struct gate {
	struct store *s;
	const struct gate_policy *p;
	uint64_t v;    /* version under test */
	uint64_t from; /* version before it; 0: every signature counts as new */
	const ldns_rdf *apex;
	struct gkey keys[ZONE_KEYS_MAX];
	size_t n_keys;
	uint8_t algs[ZONE_KEYS_MAX]; /* distinct algorithms of the zone keys */
	size_t n_algs;
	uint32_t denial_ttl; /* RFC 9077: min(SOA TTL, SOA minimum) */
	size_t n_checked;
	char *why;
	size_t whylen;
	ldns_buffer *buf;  /* signing input, reused */
	ldns_rdf *maxname; /* sorts after every owner of the zone but pathological ones */
	/* txn mode: hash owners the changed names need, NSEC3 owners added */
	ldns_rr_list *expect, *added; /* owner-only RRs; deep-freed */
	struct vpool *vp;             /* zone mode: the verifying threads, or NULL */
	struct hsm_verifier *ver;     /* this thread's verifying contexts, or NULL */
	ldns_rr_list *set, *sigs;     /* name_check's RRset and its RRSIGs (borrowed RRs) */
};

/* What one name holds. */
struct ninfo {
	uint16_t types[GATE_TYPES_MAX]; /* ascending, each once, RRSIG included */
	size_t n_types;
	int apex, data, ns, ds, soa, nsec, nsec3, nsec3param;
};

/* --- reporting -------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static zd_err
fail(struct gate *g, const ldns_rdf *owner, uint16_t type, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (g->why == NULL || g->whylen == 0)
		return ZD_EMALFORMED;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char *o = owner ? ldns_rdf2str(owner) : NULL;
	char *t = type ? ldns_rr_type2str((ldns_rr_type)type) : NULL;
	snprintf(g->why, g->whylen, "%s%s%s: %s", o ? o : "?", t ? " " : "", t ? t : "", msg);
	free(o);
	free(t);
	return ZD_EMALFORMED;
}

/* The store or memory failed, not the zone: pass the code on, say where. */
static zd_err
serr(struct gate *g, zd_err e, const ldns_rdf *owner, const char *what)
{
	if (g->why != NULL && g->whylen > 0) {
		char *o = owner ? ldns_rdf2str(owner) : NULL;
		snprintf(g->why, g->whylen, "%s: %s: %s", o ? o : "?", what, zd_strerror(e));
		free(o);
	}
	return e;
}

/* Presentation form of a hash, for messages. */
static void
hash_str(const uint8_t *h, size_t len, char *out, size_t cap)
{
	if (ldns_b32_ntop_extended_hex(h, len, out, cap) < 0)
		snprintf(out, cap, "?");
}

/* --- small helpers ---------------------------------------------------- */

/* Every RR at owner as of g->v, as a new list the caller deep-frees. */
static zd_err
name_rrs(struct gate *g, const ldns_rdf *owner, ldns_rr_list **out)
{
	ldns_rr_list *l = ldns_rr_list_new();
	if (l == NULL)
		return serr(g, ZD_ENOMEM, owner, "reading the name");
	zd_err e = store_name_rrs_take(g->s, g->v, owner, store_rr_list_take, l);
	if (e != ZD_OK) {
		ldns_rr_list_deep_free(l);
		return serr(g, e, owner, "reading the name");
	}
	*out = l;
	return ZD_OK;
}

static zd_err
rrset_get(struct gate *g, uint64_t v, const ldns_rdf *owner, uint16_t type, uint16_t covered,
          ldns_rr_list **out)
{
	zd_err e = store_rrset_find(g->s, v, owner, type, covered, out);
	return e == ZD_OK ? ZD_OK : serr(g, e, owner, "reading an RRset");
}

static uint16_t
covered_get(const ldns_rr *sig)
{
	const ldns_rdf *c = ldns_rr_rd_count(sig) > 0 ? ldns_rr_rdf(sig, 0) : NULL;
	return c != NULL && ldns_rdf_size(c) == 2 ? ldns_rdf2native_int16(c) : 0;
}

static int
types_has(const struct ninfo *ni, uint16_t type)
{
	for (size_t i = 0; i < ni->n_types; i++)
		if (ni->types[i] == type)
			return 1;
	return 0;
}

static int
type_add(struct ninfo *ni, uint16_t type)
{
	size_t i = 0;
	while (i < ni->n_types && ni->types[i] < type)
		i++;
	if (i < ni->n_types && ni->types[i] == type)
		return 0;
	if (ni->n_types == GATE_TYPES_MAX)
		return -1;
	memmove(ni->types + i + 1, ni->types + i, (ni->n_types - i) * sizeof ni->types[0]);
	ni->types[i] = type;
	ni->n_types++;
	return 0;
}

/* Flags from ni->types. */
static void
ninfo_flags(struct gate *g, const ldns_rdf *owner, struct ninfo *ni)
{
	ni->apex = ldns_dname_compare(owner, g->apex) == 0;
	ni->data = ni->ns = ni->ds = ni->soa = ni->nsec = ni->nsec3 = ni->nsec3param = 0;
	for (size_t i = 0; i < ni->n_types; i++) {
		switch (ni->types[i]) {
		case LDNS_RR_TYPE_RRSIG:
			continue;
		case LDNS_RR_TYPE_NSEC:
			ni->nsec = 1;
			continue;
		case LDNS_RR_TYPE_NSEC3:
			ni->nsec3 = 1;
			continue;
		case LDNS_RR_TYPE_NS:
			ni->ns = 1;
			break;
		case LDNS_RR_TYPE_DS:
			ni->ds = 1;
			break;
		case LDNS_RR_TYPE_SOA:
			ni->soa = 1;
			break;
		case LDNS_RR_TYPE_NSEC3PARAM:
			ni->nsec3param = 1;
			break;
		default:
			break;
		}
		ni->data = 1;
	}
}

static zd_err
ninfo_from_rrs(struct gate *g, const ldns_rdf *owner, const ldns_rr_list *rrs, struct ninfo *ni)
{
	ni->n_types = 0;
	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++)
		if (type_add(ni, ldns_rr_get_type(ldns_rr_list_rr(rrs, i))) != 0)
			return fail(g, owner, 0, "more than %d RR types", GATE_TYPES_MAX);
	ninfo_flags(g, owner, ni);
	return ZD_OK;
}

static zd_err
ninfo_from_store(struct gate *g, const ldns_rdf *owner, struct ninfo *ni)
{
	zd_err e = store_name_types(g->s, g->v, owner, ni->types, GATE_TYPES_MAX, &ni->n_types);
	if (e == ZD_ELIMIT)
		return fail(g, owner, 0, "more than %d RR types", GATE_TYPES_MAX);
	if (e != ZD_OK)
		return serr(g, e, owner, "reading the types");
	ninfo_flags(g, owner, ni);
	return ZD_OK;
}

/* A delegation without DS: RFC 5155 s6 lets opt-out skip it. */
static int
insecure_delegation(const struct ninfo *ni)
{
	return !ni->apex && ni->ns && !ni->ds;
}

/* The name needs an NSEC3 of its own because of its own data (empty
 * non-terminals are decided by their descendants). */
static int
nsec3_needed_self(const struct gate *g, const struct ninfo *ni, int occluded)
{
	if (occluded)
		return 0;
	if (ni->apex)
		return 1;
	return ni->data && !(g->p->opt_out && insecure_delegation(ni));
}

/* Some ancestor of name strictly below the apex holds NS (RFC 4035 s2.2:
 * data below a zone cut is not authoritative and is not signed). */
static zd_err
occluded_find(struct gate *g, const ldns_rdf *name, int *occ)
{
	ldns_rdf *a = ldns_dname_left_chop(name);
	size_t apex_labels = ldns_dname_label_count(g->apex);
	zd_err e = ZD_OK;
	int found = 0;
	struct ninfo ni;

	while (a != NULL && ldns_dname_label_count(a) > apex_labels && !found) {
		if ((e = ninfo_from_store(g, a, &ni)) != ZD_OK)
			goto out;
		found = ni.ns;
		ldns_rdf *up = ldns_dname_left_chop(a);
		ldns_rdf_deep_free(a);
		a = up;
	}
	if (a == NULL && !found) {
		e = serr(g, ZD_ENOMEM, name, "walking up");
		goto out;
	}
	*occ = found;
out:
	ldns_rdf_deep_free(a);
	return e;
}

/* RFC 5155 base32hex owner label -> hash; -1 when it is none. */
static int
label_hash(const ldns_rdf *owner, uint8_t out[HASH_LEN])
{
	const uint8_t *d = ldns_rdf_data(owner);
	if (ldns_rdf_size(owner) < 1 + HASH_B32_LEN || d[0] != HASH_B32_LEN)
		return -1;
	uint64_t acc = 0;
	int bits = 0;
	size_t n = 0;
	for (size_t i = 1; i <= HASH_B32_LEN; i++) {
		uint8_t c = d[i], val;
		if (c >= '0' && c <= '9')
			val = (uint8_t)(c - '0');
		else if (c >= 'a' && c <= 'v')
			val = (uint8_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'V')
			val = (uint8_t)(c - 'A' + 10);
		else
			return -1;
		acc = acc << 5 | val;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return n == HASH_LEN ? 0 : -1;
}

/* The NSEC3 owner of name: base32hex(hash).apex (RFC 5155 s7.1). */
static zd_err
hash_owner(struct gate *g, const ldns_rdf *name, ldns_rdf **out)
{
	static const uint8_t nosalt[1];
	ldns_rdf *c = ldns_rdf_clone(name);
	ldns_rdf *h = NULL, *o = NULL;

	if (c != NULL) {
		ldns_dname2canonical(c);
		h = ldns_nsec3_hash_name(c, LDNS_SHA1, g->p->iterations, g->p->salt_len,
		                         g->p->salt_len ? g->p->salt : nosalt);
	}
	if (h != NULL)
		o = ldns_dname_cat_clone(h, g->apex);
	ldns_rdf_deep_free(c);
	ldns_rdf_deep_free(h);
	if (o == NULL)
		return serr(g, ZD_ENOMEM, name, "hashing");
	*out = o;
	return ZD_OK;
}

/* Decode an NSEC/NSEC3 type bitmap (RFC 4034 s4.1.2); -1 when malformed. */
static int
bitmap_types(const ldns_rdf *bm, uint16_t *types, size_t cap, size_t *n_out)
{
	const uint8_t *d = bm ? ldns_rdf_data(bm) : NULL;
	size_t size = bm ? ldns_rdf_size(bm) : 0, pos = 0, n = 0;
	int last = -1;

	while (pos < size) {
		if (size - pos < 2)
			return -1;
		uint8_t win = d[pos], len = d[pos + 1];
		if ((int)win <= last || len < 1 || len > 32 || size - pos - 2 < len ||
		    d[pos + 1 + len] == 0)
			return -1;
		for (unsigned i = 0; i < len; i++)
			for (unsigned b = 0; b < 8; b++)
				if (d[pos + 2 + i] & (0x80u >> b)) {
					if (n == cap)
						return -1;
					types[n++] = (uint16_t)(win * 256u + i * 8u + b);
				}
		last = win;
		pos += 2u + len;
	}
	*n_out = n;
	return 0;
}

/* The bitmap lists exactly want[0..n_want) minus skip. */
static zd_err
bitmap_check(struct gate *g, const ldns_rdf *owner, uint16_t type, const ldns_rdf *bm,
             const uint16_t *want, size_t n_want, uint16_t skip)
{
	uint16_t have[GATE_TYPES_MAX];
	size_t n_have, i = 0, j = 0;

	if (bitmap_types(bm, have, GATE_TYPES_MAX, &n_have) != 0)
		return fail(g, owner, type, "type bitmap malformed");
	for (;;) {
		while (i < n_want && want[i] == skip)
			i++;
		if (i == n_want && j == n_have)
			return ZD_OK;
		if (j == n_have || (i < n_want && want[i] < have[j])) {
			char *t = ldns_rr_type2str((ldns_rr_type)want[i]);
			zd_err e = fail(g, owner, type, "type bitmap lacks %s", t ? t : "?");
			free(t);
			return e;
		}
		if (i == n_want || have[j] < want[i]) {
			char *t = ldns_rr_type2str((ldns_rr_type)have[j]);
			zd_err e = fail(g, owner, type,
			                "type bitmap has %s, which the name has not", t ? t : "?");
			free(t);
			return e;
		}
		i++;
		j++;
	}
}

/* --- signatures -------------------------------------------------------- */

/* RFC 4034 s3.1.8.1: RRSIG RDATA without the signature, signer's name in
 * canonical form, then the RRset in canonical form and order with the
 * original TTL.  The owner stays as it is: labels was checked to be the
 * owner's own count, so no wildcard expansion is involved. */
static zd_err
sig_input(struct gate *g, const ldns_rr *sig, const ldns_rr_list *rrset, uint32_t orig_ttl)
{
	ldns_buffer *b = g->buf;
	size_t n = ldns_rr_list_rr_count(rrset);

	ldns_buffer_clear(b);
	/* The RRSIG rdata but the signature (the caller saw 9 fields), the
	 * signer's name in canonical form. */
	for (size_t i = 0; i < 7; i++)
		(void)ldns_rdf2buffer_wire(b, ldns_rr_rdf(sig, i));
	(void)ldns_rdf2buffer_wire_canonical(b, ldns_rr_rdf(sig, 7));
	if (n == 1 && ldns_rr_ttl(ldns_rr_list_rr(rrset, 0)) == orig_ttl) {
		/* one record: nothing to sort, written in canonical form as it is */
		(void)ldns_rr2buffer_wire_canonical(b, ldns_rr_list_rr(rrset, 0),
		                                    LDNS_SECTION_ANSWER);
		return ldns_buffer_status_ok(b) ? ZD_OK : ZD_ENOMEM;
	}
	ldns_rr_list *c = ldns_rr_list_clone(rrset);
	if (c == NULL)
		return ZD_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ldns_rr *r = ldns_rr_list_rr(c, i);
		ldns_rr_set_ttl(r, orig_ttl);
		ldns_rr2canonical(r);
	}
	ldns_rr_list_sort(c);
	zd_err e = ldns_rr_list2buffer_wire(b, c) == LDNS_STATUS_OK && ldns_buffer_status_ok(b)
	                   ? ZD_OK
	                   : ZD_ENOMEM;
	ldns_rr_list_deep_free(c);
	return e;
}

/* RFC 1982: a is before or equal to b. */
static int
serial_le(uint32_t a, uint32_t b)
{
	return (int32_t)(b - a) >= 0;
}

/* --- verifying threads (zone mode) -------------------------------------
 *
 * A whole zone's check spends most of its time in the signature
 * verifications; in zone mode they go to one thread per core while the
 * walk goes on.  A job holds copies of what it needs (signing input,
 * signature, owner), so the walk's records may go; the zone keys are read
 * only until the threads are joined.  The first signature that does not
 * verify stops the walk at its next signature and is the gate's reason. */

#define VPOOL_THREADS_MAX 8
#define VPOOL_QUEUE       512 /* jobs waiting, bounded: the walk waits when full */
#define VPOOL_TAKE        16  /* jobs a thread takes at once */
#define VPOOL_SPENT       (VPOOL_QUEUE + VPOOL_THREADS_MAX * VPOOL_TAKE) /* jobs in flight */

struct vjob {
	uint8_t *mem; /* data, then sig, then owner (wire); one allocation */
	size_t cap;   /* bytes of mem */
	size_t data_len, sig_len, owner_len;
	uint16_t type, tag;
	uint8_t alg;
};

struct vpool {
	pthread_mutex_t mu;
	pthread_cond_t work, room;
	struct vjob q[VPOOL_QUEUE];
	size_t head, n;
	size_t idle;          /* threads waiting for work */
	int stop;             /* no more jobs: the threads end once the queue is empty */
	const struct gate *g; /* its keys */
	pthread_t th[VPOOL_THREADS_MAX];
	size_t n_threads;
	size_t checked;  /* verified */
	int failed;      /* the first failure, kept below; later jobs are dropped */
	zd_err fail_e;   /* ZD_EMALFORMED: does not verify; else the error */
	struct vjob bad; /* its job (mem kept for the owner) */
	/* Buffers of verified jobs, for the walk to fill again: every job's
	 * memory is allocated and freed on the walk's thread, and after the
	 * first few hundred jobs not at all. */
	struct vjob spent[VPOOL_SPENT];
	size_t n_spent;
	struct vjob spare; /* the walk's next buffer (mem may be NULL) */
};

/* Some zone key with this tag and algorithm verifies sig over data: ZD_OK;
 * ZD_ENOMEM; else ZD_EMALFORMED.  Reads only g's keys (so the pool's
 * threads may call it). */
static zd_err
keys_verify(const struct gate *g, struct hsm_verifier *v, uint16_t tag, uint8_t alg,
            const uint8_t *data, size_t data_len, const uint8_t *sig, size_t sig_len)
{
	zd_err r = ZD_EMALFORMED;
	for (size_t i = 0; i < g->n_keys; i++) {
		if (g->keys[i].tag != tag || g->keys[i].alg != alg)
			continue;
		zd_err e = hsm_verifier_check(v, g->keys[i].vk, data, data_len, sig, sig_len);
		if (e == ZD_OK)
			return ZD_OK;
		if (e == ZD_ENOMEM)
			r = e;
	}
	return r;
}

static int
key_known(const struct gate *g, uint16_t tag, uint8_t alg)
{
	for (size_t i = 0; i < g->n_keys; i++)
		if (g->keys[i].tag == tag && g->keys[i].alg == alg)
			return 1;
	return 0;
}

/* A verified job's buffer back to the walk (under vp->mu).  There are never
 * more buffers than jobs in flight; the check only keeps that a fact. */
static void
vpool_spend(struct vpool *vp, struct vjob *j)
{
	if (j->mem == NULL)
		return;
	if (vp->n_spent < VPOOL_SPENT)
		vp->spent[vp->n_spent++] = *j;
	else
		free(j->mem);
	j->mem = NULL;
}

/* A thread takes up to VPOOL_TAKE jobs per hold of the lock and reports
 * them in one more. */
static void *
vpool_main(void *arg)
{
	struct vpool *vp = arg;
	struct hsm_verifier *v = NULL;
	struct vjob take[VPOOL_TAKE];
	zd_err res[VPOOL_TAKE];
	size_t n = 0;

	(void)hsm_verifier_new(&v); /* without one, each check sets its context up */
	pthread_mutex_lock(&vp->mu);
	for (;;) {
		/* the verdicts of the last jobs taken */
		for (size_t i = 0; i < n; i++) {
			if (res[i] == ZD_OK) {
				vp->checked++;
			} else if (!vp->failed) {
				vp->failed = 1;
				vp->fail_e = res[i];
				vp->bad = take[i];
				take[i].mem = NULL; /* kept for the reason */
			}
			vpool_spend(vp, &take[i]);
		}
		vp->idle++;
		while (vp->n == 0 && !vp->stop)
			pthread_cond_wait(&vp->work, &vp->mu);
		vp->idle--;
		if (vp->n == 0)
			break; /* stopped and drained */
		int skip = vp->failed;
		for (n = 0; n < VPOOL_TAKE && vp->n > 0; n++) {
			take[n] = vp->q[vp->head];
			vp->head = (vp->head + 1) % VPOOL_QUEUE;
			vp->n--;
		}
		pthread_cond_signal(&vp->room);
		pthread_mutex_unlock(&vp->mu);
		for (size_t i = 0; i < n; i++)
			res[i] =
			        skip ? ZD_OK
			             : keys_verify(vp->g, v, take[i].tag, take[i].alg, take[i].mem,
			                           take[i].data_len, take[i].mem + take[i].data_len,
			                           take[i].sig_len);
		pthread_mutex_lock(&vp->mu);
		if (skip) { /* dropped, not counted: the gate failed already */
			for (size_t i = 0; i < n; i++)
				vpool_spend(vp, &take[i]);
			n = 0;
		}
	}
	pthread_mutex_unlock(&vp->mu);
	hsm_verifier_free(v);
	return NULL;
}

static void
vpool_free(struct vpool *vp)
{
	free(vp->bad.mem);
	free(vp->spare.mem);
	for (size_t i = 0; i < vp->n_spent; i++)
		free(vp->spent[i].mem);
	pthread_cond_destroy(&vp->room);
	pthread_cond_destroy(&vp->work);
	pthread_mutex_destroy(&vp->mu);
	free(vp);
}

/* Threads for g when the machine has more than one core; none is not an
 * error (the checks are then made in the walk). */
static void
vpool_start(struct gate *g)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cores < 2)
		return;
	struct vpool *vp = calloc(1, sizeof *vp);
	if (vp == NULL)
		return;
	pthread_mutex_init(&vp->mu, NULL);
	pthread_cond_init(&vp->work, NULL);
	pthread_cond_init(&vp->room, NULL);
	vp->g = g;
	size_t want = cores > VPOOL_THREADS_MAX ? VPOOL_THREADS_MAX : (size_t)cores;
	for (size_t i = 0; i < want; i++) {
		if (pthread_create(&vp->th[i], NULL, vpool_main, vp) != 0)
			break;
		pthread_setname_np(vp->th[i], "zd-verify");
		vp->n_threads++;
	}
	if (vp->n_threads == 0) {
		vpool_free(vp);
		return;
	}
	g->vp = vp;
}

/* The pool's first failure as the gate's reason. */
static zd_err
vpool_reason(struct gate *g)
{
	struct vpool *vp = g->vp;
	const struct vjob *b = &vp->bad;
	ldns_rdf *owner = NULL;

	if (b->mem != NULL)
		owner = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, b->owner_len,
		                              b->mem + b->data_len + b->sig_len);
	zd_err e = vp->fail_e != ZD_EMALFORMED
	                   ? serr(g, vp->fail_e, owner, "verifying")
	                   : fail(g, owner, b->type, "RRSIG %u/%u does not verify", b->alg, b->tag);
	ldns_rdf_deep_free(owner);
	return e;
}

/* Hand one verification to the pool (waits while the queue is full).
 * ZD_OK, or the reason of a failure found meanwhile. */
static zd_err
vpool_submit(struct gate *g, const ldns_rdf *owner, uint16_t type, uint8_t alg, uint16_t tag,
             const uint8_t *data, size_t data_len, const uint8_t *sig, size_t sig_len)
{
	struct vpool *vp = g->vp;
	struct vjob j = vp->spare; /* only this thread touches the spare */
	size_t need = data_len + sig_len + ldns_rdf_size(owner);

	if (j.cap < need) {
		uint8_t *m = realloc(j.mem, need);
		if (m == NULL)
			return serr(g, ZD_ENOMEM, owner, "verifying");
		j.mem = m;
		j.cap = need;
	}
	vp->spare = (struct vjob){0};
	j.data_len = data_len;
	j.sig_len = sig_len;
	j.owner_len = ldns_rdf_size(owner);
	j.type = type;
	j.tag = tag;
	j.alg = alg;
	memcpy(j.mem, data, data_len);
	memcpy(j.mem + data_len, sig, sig_len);
	memcpy(j.mem + data_len + sig_len, ldns_rdf_data(owner), j.owner_len);
	pthread_mutex_lock(&vp->mu);
	while (vp->n == VPOOL_QUEUE && !vp->failed)
		pthread_cond_wait(&vp->room, &vp->mu);
	int failed = vp->failed;
	if (!failed) {
		vp->q[(vp->head + vp->n) % VPOOL_QUEUE] = j;
		vp->n++;
		if (vp->idle > 0)
			pthread_cond_signal(&vp->work);
		if (vp->n_spent > 0)
			vp->spare = vp->spent[--vp->n_spent];
	}
	pthread_mutex_unlock(&vp->mu);
	if (failed) {
		free(j.mem);
		return vpool_reason(g);
	}
	return ZD_OK;
}

/* Wait for every job, end the threads; the count of signatures verified
 * goes to the gate.  ZD_OK, or the reason of the first failure (when
 * report is set). */
static zd_err
vpool_end(struct gate *g, int report)
{
	struct vpool *vp = g->vp;
	zd_err e = ZD_OK;

	if (vp == NULL)
		return ZD_OK;
	pthread_mutex_lock(&vp->mu);
	vp->stop = 1;
	pthread_cond_broadcast(&vp->work);
	pthread_mutex_unlock(&vp->mu);
	for (size_t i = 0; i < vp->n_threads; i++)
		pthread_join(vp->th[i], NULL);
	g->n_checked += vp->checked;
	if (vp->failed && report)
		e = vpool_reason(g);
	vpool_free(vp);
	g->vp = NULL;
	return e;
}

/* One RRSIG over rrset (owner, type, ttl).  is_new: not in the version
 * before, so it must last min_remaining more seconds. */
static zd_err
sig_check(struct gate *g, const ldns_rdf *owner, uint16_t type, const ldns_rr_list *rrset,
          const ldns_rr *sig, int is_new, uint8_t *alg_out)
{
	uint32_t ttl = ldns_rr_ttl(ldns_rr_list_rr(rrset, 0));
	const struct gate_policy *p = g->p;

	if (ldns_rr_rd_count(sig) != 9)
		return fail(g, owner, type, "RRSIG malformed");
	uint8_t alg = ldns_rdf2native_int8(ldns_rr_rrsig_algorithm(sig));
	uint8_t labels = ldns_rdf2native_int8(ldns_rr_rrsig_labels(sig));
	uint32_t orig_ttl = ldns_rdf2native_int32(ldns_rr_rrsig_origttl(sig));
	uint32_t expire = ldns_rdf2native_int32(ldns_rr_rrsig_expiration(sig));
	uint32_t incept = ldns_rdf2native_int32(ldns_rr_rrsig_inception(sig));
	uint16_t tag = ldns_rdf2native_int16(ldns_rr_rrsig_keytag(sig));
	const ldns_rdf *signer = ldns_rr_rrsig_signame(sig);
	const ldns_rdf *sigdata = ldns_rr_rrsig_sig(sig);
	uint8_t want_labels = ldns_dname_label_count(owner);

	if (ldns_dname_is_wildcard(owner))
		want_labels--; /* RFC 4034 s3.1.3 */
	if (ldns_rdf_get_type(signer) != LDNS_RDF_TYPE_DNAME ||
	    ldns_dname_compare(signer, g->apex) != 0)
		return fail(g, owner, type, "RRSIG %u/%u: signer is not the apex", alg, tag);
	if (labels != want_labels)
		return fail(g, owner, type, "RRSIG %u/%u: labels %u, expected %u", alg, tag, labels,
		            want_labels);
	if (orig_ttl != ttl)
		return fail(g, owner, type, "RRSIG %u/%u: original TTL %u, RRset TTL %u", alg, tag,
		            orig_ttl, ttl);
	if (ldns_rr_ttl(sig) != ttl) /* RFC 4034 s3 */
		return fail(g, owner, type, "RRSIG %u/%u: TTL %u, RRset TTL %u", alg, tag,
		            ldns_rr_ttl(sig), ttl);
	if (!serial_le(incept, p->now))
		return fail(g, owner, type, "RRSIG %u/%u: not valid before %u (now %u)", alg, tag,
		            incept, p->now);
	if (serial_le(expire, p->now))
		return fail(g, owner, type, "RRSIG %u/%u: expired at %u (now %u)", alg, tag, expire,
		            p->now);
	if (is_new && expire - p->now < p->min_remaining)
		return fail(g, owner, type, "RRSIG %u/%u: new signature expires in %u s (< %u s)",
		            alg, tag, expire - p->now, p->min_remaining);

	zd_err e = sig_input(g, sig, rrset, orig_ttl);
	if (e != ZD_OK)
		return serr(g, e, owner, "building the signing input");
	if (!key_known(g, tag, alg))
		return fail(g, owner, type,
		            "RRSIG %u/%u: no zone key with this tag in the DNSKEY RRset", alg, tag);
	const uint8_t *data = ldns_buffer_begin(g->buf);
	size_t data_len = ldns_buffer_position(g->buf);
	*alg_out = alg;
	if (g->vp != NULL) /* verified by the pool; a failure comes back later */
		return vpool_submit(g, owner, type, alg, tag, data, data_len,
		                    ldns_rdf_data(sigdata), ldns_rdf_size(sigdata));
	e = keys_verify(g, g->ver, tag, alg, data, data_len, ldns_rdf_data(sigdata),
	                ldns_rdf_size(sigdata));
	if (e == ZD_OK) {
		g->n_checked++;
		return ZD_OK;
	}
	if (e == ZD_ENOMEM)
		return serr(g, e, owner, "verifying");
	return fail(g, owner, type, "RRSIG %u/%u does not verify", alg, tag);
}

/* sig appears in old (the same signature bytes). */
static int
sig_in(const ldns_rr *sig, const ldns_rr_list *old)
{
	for (size_t i = 0; old != NULL && i < ldns_rr_list_rr_count(old); i++) {
		const ldns_rr *o = ldns_rr_list_rr(old, i);
		if (ldns_rr_rd_count(o) == 9 &&
		    ldns_rdf_compare(ldns_rr_rrsig_sig(o), ldns_rr_rrsig_sig(sig)) == 0)
			return 1;
	}
	return 0;
}

/* Every RRSIG of the RRset verifies, and every algorithm of the zone keys
 * has one (RFC 6840 s5.11; for DNSKEY any zone key of that algorithm will
 * do, KSK or ZSK). */
static zd_err
rrset_verify(struct gate *g, const ldns_rdf *owner, uint16_t type, const ldns_rr_list *rrset,
             const ldns_rr_list *sigs)
{
	int seen[ZONE_KEYS_MAX] = {0};
	ldns_rr_list *old = NULL;
	zd_err e = ZD_OK;

	if (ldns_rr_list_rr_count(sigs) == 0)
		return fail(g, owner, type, "no RRSIG");
	if (g->from != 0 && (e = rrset_get(g, g->from, owner, LDNS_RR_TYPE_RRSIG, type, &old)))
		return e;
	for (size_t i = 0; i < ldns_rr_list_rr_count(sigs) && e == ZD_OK; i++) {
		const ldns_rr *sig = ldns_rr_list_rr(sigs, i);
		uint8_t alg = 0;
		e = sig_check(g, owner, type, rrset, sig, g->from == 0 || !sig_in(sig, old), &alg);
		for (size_t a = 0; e == ZD_OK && a < g->n_algs; a++)
			if (g->algs[a] == alg)
				seen[a] = 1;
	}
	for (size_t a = 0; e == ZD_OK && a < g->n_algs; a++)
		if (!seen[a])
			e = fail(g, owner, type, "no RRSIG of algorithm %u", g->algs[a]);
	ldns_rr_list_deep_free(old);
	return e;
}

/* The DNSKEY RR k among the keys signatures are verified with, when it is
 * a zone key; its algorithm among those every RRset needs.  what: "" or
 * "unpublished " for the reasons. */
static zd_err
key_load(struct gate *g, const ldns_rr *k, const char *what)
{
	if (ldns_rr_get_type(k) != LDNS_RR_TYPE_DNSKEY || ldns_rr_rd_count(k) != 4)
		return fail(g, g->apex, LDNS_RR_TYPE_DNSKEY, "%sDNSKEY malformed", what);
	uint16_t flags = ldns_rdf2native_int16(ldns_rr_rdf(k, 0));
	uint8_t proto = ldns_rdf2native_int8(ldns_rr_rdf(k, 1));
	uint8_t alg = ldns_rdf2native_int8(ldns_rr_rdf(k, 2));
	const ldns_rdf *pub = ldns_rr_rdf(k, 3);
	uint16_t tag = ldns_calc_keytag(k);
	if (!(flags & KEY_ZONE))
		return ZD_OK; /* RFC 4034 s2.1.1: not a zone key, signs nothing */
	if (proto != 3)
		return fail(g, g->apex, LDNS_RR_TYPE_DNSKEY, "%skey %u/%u: protocol %u", what, alg,
		            tag, proto);
	if (g->n_keys == ZONE_KEYS_MAX)
		return fail(g, g->apex, LDNS_RR_TYPE_DNSKEY, "more than %d zone keys",
		            ZONE_KEYS_MAX);
	struct hsm_verify_key *vk = NULL;
	zd_err e = hsm_verify_key_new(alg, ldns_rdf_data(pub), ldns_rdf_size(pub), &vk);
	if (e == ZD_EMALFORMED)
		return fail(g, g->apex, LDNS_RR_TYPE_DNSKEY,
		            "%skey %u/%u: public key unusable for verification", what, alg, tag);
	if (e != ZD_OK)
		return serr(g, e, g->apex, "loading a DNSKEY");
	g->keys[g->n_keys++] = (struct gkey){.tag = tag, .alg = alg, .vk = vk};
	size_t a = 0;
	while (a < g->n_algs && g->algs[a] != alg)
		a++;
	if (a == g->n_algs)
		g->algs[g->n_algs++] = alg;
	return ZD_OK;
}

/* The zone keys of the DNSKEY RRset at g->v and the policy's unpublished
 * ones, and the denial TTL. */
static zd_err
keys_load(struct gate *g)
{
	ldns_rr_list *l = NULL;
	zd_err e;

	if ((e = rrset_get(g, g->v, g->apex, LDNS_RR_TYPE_SOA, 0, &l)) != ZD_OK)
		return e;
	if (l == NULL || ldns_rr_list_rr_count(l) != 1 ||
	    ldns_rr_rd_count(ldns_rr_list_rr(l, 0)) != 7) {
		ldns_rr_list_deep_free(l);
		return fail(g, g->apex, LDNS_RR_TYPE_SOA, "no SOA, or not exactly one");
	}
	const ldns_rr *soa = ldns_rr_list_rr(l, 0);
	uint32_t minimum = ldns_rdf2native_int32(ldns_rr_rdf(soa, 6));
	g->denial_ttl = ldns_rr_ttl(soa) < minimum ? ldns_rr_ttl(soa) : minimum;
	ldns_rr_list_deep_free(l);
	l = NULL;

	if ((e = rrset_get(g, g->v, g->apex, LDNS_RR_TYPE_DNSKEY, 0, &l)) != ZD_OK)
		return e;
	if (l == NULL)
		return fail(g, g->apex, LDNS_RR_TYPE_DNSKEY, "no DNSKEY RRset");
	for (size_t i = 0; i < ldns_rr_list_rr_count(l) && e == ZD_OK; i++)
		e = key_load(g, ldns_rr_list_rr(l, i), "");
	ldns_rr_list_deep_free(l);
	if (e == ZD_OK && g->n_keys == 0)
		e = fail(g, g->apex, LDNS_RR_TYPE_DNSKEY, "no zone key");
	const ldns_rr_list *u = g->p->unpublished_keys;
	for (size_t i = 0; u != NULL && i < ldns_rr_list_rr_count(u) && e == ZD_OK; i++)
		e = key_load(g, ldns_rr_list_rr(u, i), "unpublished ");
	return e;
}

/* --- NSEC3 records --------------------------------------------------- */

/* Fields of the one NSEC3 at owner: a hash label right below the apex,
 * the policy's parameters and flags, the denial TTL. */
static zd_err
nsec3_fields_check(struct gate *g, const ldns_rdf *owner, const ldns_rr *rr)
{
	const struct gate_policy *p = g->p;
	uint8_t h[HASH_LEN];
	ldns_rdf *parent = ldns_dname_left_chop(owner);
	int below_apex = parent != NULL && ldns_dname_compare(parent, g->apex) == 0;

	ldns_rdf_deep_free(parent);
	if (!below_apex || label_hash(owner, h) != 0)
		return fail(g, owner, LDNS_RR_TYPE_NSEC3,
		            "owner is no hash label right below the apex");
	if (ldns_rr_rd_count(rr) < 5)
		return fail(g, owner, LDNS_RR_TYPE_NSEC3, "NSEC3 malformed");
	const ldns_rdf *salt = ldns_rr_rdf(rr, 3), *next = ldns_rr_rdf(rr, 4);
	uint8_t alg = ldns_rdf2native_int8(ldns_rr_rdf(rr, 0));
	uint8_t flags = ldns_rdf2native_int8(ldns_rr_rdf(rr, 1));
	uint16_t iter = ldns_rdf2native_int16(ldns_rr_rdf(rr, 2));
	if (alg != LDNS_SHA1)
		return fail(g, owner, LDNS_RR_TYPE_NSEC3, "hash algorithm %u", alg);
	if (flags != (p->opt_out ? NSEC3_OPTOUT : 0))
		return fail(g, owner, LDNS_RR_TYPE_NSEC3, "flags %u, expected %u%s", flags,
		            p->opt_out ? NSEC3_OPTOUT : 0, p->opt_out ? " (opt-out)" : "");
	if (iter != p->iterations)
		return fail(g, owner, LDNS_RR_TYPE_NSEC3, "iterations %u, expected %u", iter,
		            p->iterations);
	if (ldns_rdf_size(salt) != 1u + p->salt_len || ldns_rdf_data(salt)[0] != p->salt_len ||
	    (p->salt_len && memcmp(ldns_rdf_data(salt) + 1, p->salt, p->salt_len) != 0))
		return fail(g, owner, LDNS_RR_TYPE_NSEC3, "salt differs from the policy");
	if (ldns_rdf_size(next) != 1 + HASH_LEN || ldns_rdf_data(next)[0] != HASH_LEN)
		return fail(g, owner, LDNS_RR_TYPE_NSEC3, "next hashed owner malformed");
	if (ldns_rr_ttl(rr) != g->denial_ttl)
		return fail(g, owner, LDNS_RR_TYPE_NSEC3, "TTL %u, expected %u", ldns_rr_ttl(rr),
		            g->denial_ttl);
	return ZD_OK;
}

/* The one NSEC3 RR at owner (a new list in *out), or NULL in *out. */
static zd_err
nsec3_get(struct gate *g, const ldns_rdf *owner, ldns_rr_list **out)
{
	ldns_rr_list *l = NULL;
	zd_err e = rrset_get(g, g->v, owner, LDNS_RR_TYPE_NSEC3, 0, &l);
	if (e != ZD_OK)
		return e;
	if (l != NULL && ldns_rr_list_rr_count(l) != 1) {
		ldns_rr_list_deep_free(l);
		return fail(g, owner, LDNS_RR_TYPE_NSEC3, "more than one NSEC3 record");
	}
	*out = l;
	return ZD_OK;
}

/* name (with ni's types; an empty non-terminal has none) has its NSEC3 with
 * the right fields and bitmap.  On ZD_OK *owner_out is the hash owner. */
static zd_err
nsec3_record_check(struct gate *g, const ldns_rdf *name, const struct ninfo *ni,
                   ldns_rdf **owner_out)
{
	ldns_rdf *owner = NULL;
	ldns_rr_list *l = NULL;
	zd_err e;

	if ((e = hash_owner(g, name, &owner)) != ZD_OK)
		return e;
	if ((e = nsec3_get(g, owner, &l)) != ZD_OK)
		goto out;
	if (l == NULL) {
		char *o = ldns_rdf2str(owner);
		e = fail(g, name, LDNS_RR_TYPE_NSEC3, "no NSEC3 (expected at %s)", o ? o : "?");
		free(o);
		goto out;
	}
	const ldns_rr *rr = ldns_rr_list_rr(l, 0);
	if ((e = nsec3_fields_check(g, owner, rr)) != ZD_OK)
		goto out;
	e = bitmap_check(g, name, LDNS_RR_TYPE_NSEC3,
	                 ldns_rr_rd_count(rr) > 5 ? ldns_rr_rdf(rr, 5) : NULL, ni->types,
	                 ni->n_types, LDNS_RR_TYPE_NSEC3);
	if (e == ZD_OK) {
		*owner_out = owner;
		owner = NULL;
	}
out:
	ldns_rdf_deep_free(owner);
	ldns_rr_list_deep_free(l);
	return e;
}

static zd_err
nsec3param_check(struct gate *g, const ldns_rr_list *rrs)
{
	const struct gate_policy *p = g->p;
	const ldns_rr *param = NULL;
	size_t n = 0;

	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++)
		if (ldns_rr_get_type(ldns_rr_list_rr(rrs, i)) == LDNS_RR_TYPE_NSEC3PARAM) {
			param = ldns_rr_list_rr(rrs, i);
			n++;
		}
	if (n != 1 || ldns_rr_rd_count(param) != 4)
		return fail(g, g->apex, LDNS_RR_TYPE_NSEC3PARAM,
		            "%zu NSEC3PARAM records, expected 1", n);
	const ldns_rdf *salt = ldns_rr_rdf(param, 3);
	if (ldns_rdf2native_int8(ldns_rr_rdf(param, 0)) != LDNS_SHA1 ||
	    ldns_rdf2native_int8(ldns_rr_rdf(param, 1)) != 0 ||
	    ldns_rdf2native_int16(ldns_rr_rdf(param, 2)) != p->iterations ||
	    ldns_rdf_size(salt) != 1u + p->salt_len ||
	    (p->salt_len && memcmp(ldns_rdf_data(salt) + 1, p->salt, p->salt_len) != 0))
		return fail(g, g->apex, LDNS_RR_TYPE_NSEC3PARAM,
		            "parameters differ from the policy");
	return ZD_OK;
}

/* --- one name ------------------------------------------------------- */

/* name_check() with the types in ni already: rrs holds the name's records,
 * or none at all when ni says there is no RRSIG (nothing is verified then,
 * and what must be signed fails for want of a signature). */
static zd_err
name_check_types(struct gate *g, const ldns_rdf *owner, const ldns_rr_list *rrs, int occluded,
                 struct ninfo *ni)
{
	ldns_rr_list *set, *sigs;
	zd_err e = ZD_OK;

	if (ni->n_types == 0)
		return ZD_OK;
	if (!ni->apex && !ldns_dname_is_subdomain(owner, g->apex))
		return fail(g, owner, 0, "outside the zone");
	if (ni->soa && !ni->apex)
		return fail(g, owner, LDNS_RR_TYPE_SOA, "SOA below the apex");
	if (ni->apex && ni->ds)
		return fail(g, owner, LDNS_RR_TYPE_DS, "DS at the apex");
	if (!g->p->nsec3 && (ni->nsec3 || ni->nsec3param))
		return fail(g, owner, ni->nsec3 ? LDNS_RR_TYPE_NSEC3 : LDNS_RR_TYPE_NSEC3PARAM,
		            "NSEC3 data in an NSEC zone");
	if (g->p->nsec3 && ni->nsec)
		return fail(g, owner, LDNS_RR_TYPE_NSEC, "NSEC in an NSEC3 zone");
	if (ni->nsec3param && !ni->apex)
		return fail(g, owner, LDNS_RR_TYPE_NSEC3PARAM, "NSEC3PARAM below the apex");
	if (g->p->nsec3 && ni->apex && (e = nsec3param_check(g, rrs)) != ZD_OK)
		return e;
	int delegation = !ni->apex && ni->ns;

	/* Every RRSIG covers an RRset that is there. */
	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++) {
		const ldns_rr *r = ldns_rr_list_rr(rrs, i);
		uint16_t c = covered_get(r);
		if (ldns_rr_get_type(r) == LDNS_RR_TYPE_RRSIG &&
		    (c == LDNS_RR_TYPE_RRSIG || !types_has(ni, c)))
			return fail(g, owner, c, "RRSIG without the RRset it covers");
	}
	/* borrowed pointers in lists of the gate's, emptied for each type */
	set = g->set;
	sigs = g->sigs;
	for (size_t t = 0; t < ni->n_types && e == ZD_OK; t++) {
		uint16_t type = ni->types[t];
		if (type == LDNS_RR_TYPE_RRSIG)
			continue;
		ldns_rr_list_set_rr_count(set, 0);
		ldns_rr_list_set_rr_count(sigs, 0);
		for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++) {
			ldns_rr *r = ldns_rr_list_rr(rrs, i);
			ldns_rr_type rt = ldns_rr_get_type(r);
			int ok = 1;
			if (rt == type)
				ok = ldns_rr_list_push_rr(set, r);
			else if (rt == LDNS_RR_TYPE_RRSIG && covered_get(r) == type)
				ok = ldns_rr_list_push_rr(sigs, r);
			if (!ok) {
				e = serr(g, ZD_ENOMEM, owner, "grouping");
				break;
			}
		}
		/* RFC 4035 s2.2: at a delegation only DS and NSEC are signed;
		 * occluded data (glue) never. */
		int must = !occluded &&
		           (!delegation || type == LDNS_RR_TYPE_DS || type == LDNS_RR_TYPE_NSEC);
		if (e != ZD_OK)
			;
		else if (must)
			e = rrset_verify(g, owner, type, set, sigs);
		else if (ldns_rr_list_rr_count(sigs) > 0)
			e = fail(g, owner, type, "RRSIG on %s",
			         occluded ? "occluded data (glue)"
			                  : "unsigned data at a delegation");
		if (e == ZD_OK && type == LDNS_RR_TYPE_NSEC3 && !occluded) {
			if (ldns_rr_list_rr_count(set) != 1)
				e = fail(g, owner, type, "more than one NSEC3 record");
			else
				e = nsec3_fields_check(g, owner, ldns_rr_list_rr(set, 0));
		}
	}
	ldns_rr_list_set_rr_count(set, 0);
	ldns_rr_list_set_rr_count(sigs, 0);
	return e;
}

/* Signatures and coverage of every RRset at owner; the shape of its own
 * NSEC3 (for a hash owner) or NSEC3PARAM (apex).  Fills *ni. */
static zd_err
name_check(struct gate *g, const ldns_rdf *owner, const ldns_rr_list *rrs, int occluded,
           struct ninfo *ni)
{
	zd_err e;

	if ((e = ninfo_from_rrs(g, owner, rrs, ni)) != ZD_OK)
		return e;
	return name_check_types(g, owner, rrs, occluded, ni);
}

/* --- neighbours (txn mode) ------------------------------------------- */

/* The NSEC3 owner after (dir > 0) or before (dir < 0) x, around the ring. */
static zd_err
nsec3_neighbor(struct gate *g, const ldns_rdf *x, int dir, ldns_rdf **out)
{
	zd_err e = store_name_neighbor(g->s, g->v, x, dir, LDNS_RR_TYPE_NSEC3, out);
	if (e == ZD_ENOTFOUND)
		e = store_name_neighbor(g->s, g->v, dir > 0 ? g->apex : g->maxname, dir,
		                        LDNS_RR_TYPE_NSEC3, out);
	if (e == ZD_ENOTFOUND)
		return fail(g, g->apex, LDNS_RR_TYPE_NSEC3, "no NSEC3 chain");
	return e == ZD_OK ? ZD_OK : serr(g, e, x, "finding the NSEC3 neighbour");
}

/* The NSEC3 at o points at the next NSEC3 owner in hash order. */
static zd_err
nsec3_link_check(struct gate *g, const ldns_rdf *o)
{
	ldns_rr_list *l = NULL;
	ldns_rdf *q = NULL;
	uint8_t h[HASH_LEN];
	zd_err e;

	if ((e = nsec3_get(g, o, &l)) != ZD_OK)
		return e;
	if (l == NULL) {
		e = serr(g, ZD_EBUG, o, "NSEC3 owner without NSEC3");
		goto out;
	}
	const ldns_rr *rr = ldns_rr_list_rr(l, 0);
	if ((e = nsec3_fields_check(g, o, rr)) != ZD_OK)
		goto out;
	if ((e = nsec3_neighbor(g, o, 1, &q)) != ZD_OK)
		goto out;
	if (label_hash(q, h) != 0) {
		e = fail(g, q, LDNS_RR_TYPE_NSEC3, "owner is no hash label right below the apex");
		goto out;
	}
	const uint8_t *next = ldns_rdf_data(ldns_rr_rdf(rr, 4)) + 1;
	if (memcmp(next, h, HASH_LEN) != 0) {
		char a[64], b[64];
		hash_str(next, HASH_LEN, a, sizeof a);
		hash_str(h, HASH_LEN, b, sizeof b);
		e = fail(g, o, LDNS_RR_TYPE_NSEC3, "next hashed owner %s, but the next owner is %s",
		         a, b);
	}
out:
	ldns_rr_list_deep_free(l);
	ldns_rdf_deep_free(q);
	return e;
}

/* Does name need an NSEC (it is not occluded and has data)? */
static zd_err
nsec_needed(struct gate *g, const ldns_rdf *name, int *needed)
{
	struct ninfo ni;
	int occ = 0;
	zd_err e = ninfo_from_store(g, name, &ni);
	if (e == ZD_OK && ni.data && !ni.apex)
		e = occluded_find(g, name, &occ);
	if (e == ZD_OK)
		*needed = ni.data && !occ;
	return e;
}

/* The next (dir > 0) or previous name that needs an NSEC, around the
 * canonical ring whose first name is the apex. */
static zd_err
nsec_neighbor(struct gate *g, const ldns_rdf *x, int dir, ldns_rdf **out)
{
	ldns_rdf *cur = ldns_rdf_clone(x), *n = NULL;
	int wrapped = 0;
	zd_err e = ZD_OK;

	for (size_t visits = 0; cur != NULL; visits++) {
		if (visits == GATE_VISITS_MAX) {
			e = fail(g, x, LDNS_RR_TYPE_NSEC,
			         "more than %u names to the next NSEC owner", GATE_VISITS_MAX);
			break;
		}
		e = store_name_neighbor(g->s, g->v, cur, dir, 0, &n);
		if (e == ZD_ENOTFOUND && dir > 0) {
			*out = ldns_rdf_clone(g->apex);
			e = *out ? ZD_OK : serr(g, ZD_ENOMEM, x, "copying");
			break;
		}
		if (e == ZD_ENOTFOUND && !wrapped) {
			wrapped = 1;
			ldns_rdf_deep_free(cur);
			cur = ldns_rdf_clone(g->maxname);
			continue;
		}
		if (e != ZD_OK) {
			e = serr(g, e, cur, "finding the NSEC neighbour");
			break;
		}
		int needed = 0;
		if ((e = nsec_needed(g, n, &needed)) != ZD_OK)
			break;
		if (needed) {
			*out = n;
			n = NULL;
			break;
		}
		ldns_rdf_deep_free(cur);
		cur = n;
		n = NULL;
	}
	if (cur == NULL && e == ZD_OK)
		e = serr(g, ZD_ENOMEM, x, "walking");
	ldns_rdf_deep_free(cur);
	ldns_rdf_deep_free(n);
	return e;
}

/* The NSEC at p (a name that needs one) points at the next name that
 * needs one. */
static zd_err
nsec_link_check(struct gate *g, const ldns_rdf *p)
{
	ldns_rr_list *l = NULL;
	ldns_rdf *q = NULL;
	zd_err e;

	if ((e = rrset_get(g, g->v, p, LDNS_RR_TYPE_NSEC, 0, &l)) != ZD_OK)
		return e;
	if (l == NULL || ldns_rr_list_rr_count(l) != 1 ||
	    ldns_rr_rd_count(ldns_rr_list_rr(l, 0)) < 1) {
		e = fail(g, p, LDNS_RR_TYPE_NSEC, "no NSEC, or not exactly one");
		goto out;
	}
	if ((e = nsec_neighbor(g, p, 1, &q)) != ZD_OK)
		goto out;
	if (ldns_dname_compare(ldns_rr_rdf(ldns_rr_list_rr(l, 0), 0), q) != 0) {
		char *a = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(l, 0), 0));
		char *b = ldns_rdf2str(q);
		e = fail(g, p, LDNS_RR_TYPE_NSEC, "next name %s, expected %s", a ? a : "?",
		         b ? b : "?");
		free(a);
		free(b);
	}
out:
	ldns_rr_list_deep_free(l);
	ldns_rdf_deep_free(q);
	return e;
}

/* The NSEC of a name that needs one: one record, TTL, bitmap = the types
 * at the name (RFC 4034 s4.1.2, NSEC and RRSIG included). */
static zd_err
nsec_record_check(struct gate *g, const ldns_rdf *owner, const ldns_rr_list *rrs,
                  const struct ninfo *ni, const ldns_rdf **next_out)
{
	const ldns_rr *nsec = NULL;
	size_t n = 0;

	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++)
		if (ldns_rr_get_type(ldns_rr_list_rr(rrs, i)) == LDNS_RR_TYPE_NSEC) {
			nsec = ldns_rr_list_rr(rrs, i);
			n++;
		}
	if (n == 0)
		return fail(g, owner, LDNS_RR_TYPE_NSEC, "no NSEC");
	if (n != 1 || ldns_rr_rd_count(nsec) != 2)
		return fail(g, owner, LDNS_RR_TYPE_NSEC, "more than one NSEC, or malformed");
	if (ldns_rr_ttl(nsec) != g->denial_ttl)
		return fail(g, owner, LDNS_RR_TYPE_NSEC, "TTL %u, expected %u", ldns_rr_ttl(nsec),
		            g->denial_ttl);
	zd_err e = bitmap_check(g, owner, LDNS_RR_TYPE_NSEC, ldns_rr_rdf(nsec, 1), ni->types,
	                        ni->n_types, 0);
	if (e == ZD_OK)
		*next_out = ldns_rr_rdf(nsec, 0);
	return e;
}

/* --- txn mode ------------------------------------------------------- */

static zd_err
owner_push(ldns_rr_list *l, const ldns_rdf *owner)
{
	ldns_rr *r = ldns_rr_new();
	ldns_rdf *o = r ? ldns_rdf_clone(owner) : NULL;
	if (o == NULL) {
		ldns_rr_free(r);
		return ZD_ENOMEM;
	}
	ldns_rr_set_owner(r, o);
	if (!ldns_rr_list_push_rr(l, r)) { /* l owns r now; deep-freed */
		ldns_rr_free(r);
		return ZD_ENOMEM;
	}
	return ZD_OK;
}

static int
owner_in(const ldns_rr_list *l, const ldns_rdf *owner)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++)
		if (ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(l, i)), owner) == 0)
			return 1;
	return 0;
}

/* An empty non-terminal needs an NSEC3 when a descendant needs one of its
 * own (RFC 5155 s7.1; with opt-out, insecure delegations do not count). */
static zd_err
ent_needed(struct gate *g, const ldns_rdf *name, int *needed)
{
	ldns_rdf *cur = ldns_rdf_clone(name), *n = NULL, *cut = NULL;
	struct ninfo ni;
	zd_err e = ZD_OK;
	int found = 0;

	for (size_t visits = 0; cur != NULL && !found; visits++) {
		if (visits == GATE_VISITS_MAX) {
			e = fail(g, name, 0, "more than %u names below an empty non-terminal",
			         GATE_VISITS_MAX);
			break;
		}
		e = store_name_neighbor(g->s, g->v, cur, 1, 0, &n);
		if (e == ZD_ENOTFOUND) {
			e = ZD_OK;
			break;
		}
		if (e != ZD_OK) {
			e = serr(g, e, cur, "walking below");
			break;
		}
		if (!ldns_dname_is_subdomain(n, name))
			break;
		ldns_rdf_deep_free(cur);
		cur = n;
		n = NULL;
		if (cut != NULL && ldns_dname_is_subdomain(cur, cut))
			continue; /* occluded */
		if ((e = ninfo_from_store(g, cur, &ni)) != ZD_OK)
			break;
		found = nsec3_needed_self(g, &ni, 0);
		if (ni.ns) {
			ldns_rdf_deep_free(cut);
			if ((cut = ldns_rdf_clone(cur)) == NULL)
				e = serr(g, ZD_ENOMEM, cur, "copying");
		}
	}
	if (cur == NULL && e == ZD_OK)
		e = serr(g, ZD_ENOMEM, name, "walking below");
	if (e == ZD_OK)
		*needed = found;
	ldns_rdf_deep_free(cur);
	ldns_rdf_deep_free(n);
	ldns_rdf_deep_free(cut);
	return e;
}

/* The NSEC3 side of zone name x as of g->v: its own record when it needs
 * one, else none and an NSEC3 whose span covers its hash (with opt-out
 * set when x is an insecure delegation); the links around either. */
static zd_err
nsec3_name_check(struct gate *g, const ldns_rdf *x)
{
	struct ninfo ni;
	ldns_rdf *h = NULL, *prev = NULL;
	ldns_rr_list *l = NULL;
	int occ = 0, needed = 0;
	zd_err e;

	if ((e = ninfo_from_store(g, x, &ni)) != ZD_OK)
		return e;
	if (ni.nsec3 && !ni.data)
		return ZD_OK; /* a hash owner, checked as such */
	if (!ni.apex && (e = occluded_find(g, x, &occ)) != ZD_OK)
		return e;
	if (occ)
		return ZD_OK;
	needed = nsec3_needed_self(g, &ni, 0);
	if (!needed && !ni.data && (e = ent_needed(g, x, &needed)) != ZD_OK)
		return e;
	if (needed) {
		if ((e = nsec3_record_check(g, x, &ni, &h)) != ZD_OK)
			goto out;
		if ((e = owner_push(g->expect, h)) != ZD_OK) {
			e = serr(g, e, x, "remembering");
			goto out;
		}
		if ((e = nsec3_link_check(g, h)) != ZD_OK)
			goto out;
	} else {
		if ((e = hash_owner(g, x, &h)) != ZD_OK)
			goto out;
		if ((e = nsec3_get(g, h, &l)) != ZD_OK)
			goto out;
		if (l != NULL) {
			e = fail(g, x, insecure_delegation(&ni) ? LDNS_RR_TYPE_NS : 0,
			         "has an NSEC3 but needs none%s",
			         insecure_delegation(&ni) ? " (insecure delegation, opt-out)" : "");
			goto out;
		}
	}
	/* The record before h in hash order links over (or to) h. */
	if ((e = nsec3_neighbor(g, h, -1, &prev)) != ZD_OK)
		goto out;
	if ((e = nsec3_link_check(g, prev)) != ZD_OK) {
		if (!needed && ni.data && g->why != NULL && g->whylen > 0) {
			char inner[200];
			snprintf(inner, sizeof inner, "%s", g->why);
			e = fail(g, x, insecure_delegation(&ni) ? LDNS_RR_TYPE_NS : 0,
			         "not covered by an NSEC3 span: %s", inner);
		}
		goto out;
	}
out:
	ldns_rdf_deep_free(h);
	ldns_rdf_deep_free(prev);
	ldns_rr_list_deep_free(l);
	return e;
}

static zd_err
nsec_name_check(struct gate *g, const ldns_rdf *x, const ldns_rr_list *rrs, const struct ninfo *ni,
                int occ)
{
	const ldns_rdf *next = NULL;
	ldns_rdf *prev = NULL;
	zd_err e;

	if (!occ && ni->data) {
		if ((e = nsec_record_check(g, x, rrs, ni, &next)) != ZD_OK)
			return e;
		if ((e = nsec_link_check(g, x)) != ZD_OK)
			return e;
	} else if (ni->nsec) {
		return fail(g, x, LDNS_RR_TYPE_NSEC, "NSEC at a name that needs none");
	}
	if ((e = nsec_neighbor(g, x, -1, &prev)) != ZD_OK)
		return e;
	e = nsec_link_check(g, prev);
	ldns_rdf_deep_free(prev);
	return e;
}

struct chg {
	ldns_rdf *owner;
	int nsec3; /* the NSEC3 RRset changed */
	int ns;    /* the NS RRset changed */
};

struct chgs {
	struct chg *v;
	size_t n, cap;
};

static zd_err
chg_push(struct chgs *c, const ldns_rdf *owner, int nsec3, int ns)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct chg *v = realloc(c->v, cap * sizeof *v);
		if (v == NULL)
			return ZD_ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	ldns_rdf *o = ldns_rdf_clone(owner);
	if (o == NULL)
		return ZD_ENOMEM;
	c->v[c->n++] = (struct chg){.owner = o, .nsec3 = nsec3, .ns = ns};
	return ZD_OK;
}

static zd_err
chg_add(void *arg, const ldns_rdf *owner, uint16_t type, uint16_t covered)
{
	(void)covered;
	return chg_push(arg, owner, type == LDNS_RR_TYPE_NSEC3, type == LDNS_RR_TYPE_NS);
}

static zd_err
below_add(void *arg, const ldns_rdf *name)
{
	return chg_push(arg, name, 0, 0);
}

static int
chg_cmp(const void *a, const void *b)
{
	return ldns_dname_compare(((const struct chg *)a)->owner, ((const struct chg *)b)->owner);
}

/* Sort by name and fold duplicates (their flags or'ed). */
static void
chgs_fold(struct chgs *c)
{
	size_t w = 0;
	if (c->n > 1)
		qsort(c->v, c->n, sizeof *c->v, chg_cmp);
	for (size_t i = 0; i < c->n; i++) {
		if (w > 0 && ldns_dname_compare(c->v[w - 1].owner, c->v[i].owner) == 0) {
			c->v[w - 1].nsec3 |= c->v[i].nsec3;
			c->v[w - 1].ns |= c->v[i].ns;
			ldns_rdf_deep_free(c->v[i].owner);
			continue;
		}
		c->v[w++] = c->v[i];
	}
	c->n = w;
}

static void
chgs_clear(struct chgs *c)
{
	for (size_t i = 0; i < c->n; i++)
		ldns_rdf_deep_free(c->v[i].owner);
	free(c->v);
}

/* One changed owner name: its RRsets, its own NSEC3 ring position when it
 * is a hash owner, its denial record, and (NSEC3) its ancestors'. */
static zd_err
txn_name_check(struct gate *g, const struct chg *c, int pass, ldns_rr_list *done)
{
	ldns_rr_list *rrs = NULL, *old = NULL;
	ldns_rdf *a = NULL, *prev = NULL;
	struct ninfo ni;
	int occ = 0;
	zd_err e;

	if ((e = name_rrs(g, c->owner, &rrs)) != ZD_OK)
		return e;
	/* Names of the zone first, hash owners after: a failure then names
	 * the delegation whose denial is wrong, not an opaque hash. */
	if ((e = ninfo_from_rrs(g, c->owner, rrs, &ni)) != ZD_OK)
		goto out;
	int hash_owner_only = g->p->nsec3 && (c->nsec3 || ni.nsec3) && !ni.data;
	if (hash_owner_only != (pass == 1))
		goto out;
	if (ldns_dname_compare(c->owner, g->apex) != 0 &&
	    (e = occluded_find(g, c->owner, &occ)) != ZD_OK)
		goto out;
	if ((e = name_check(g, c->owner, rrs, occ, &ni)) != ZD_OK)
		goto out;
	if (!g->p->nsec3) {
		e = nsec_name_check(g, c->owner, rrs, &ni, occ);
		goto out;
	}
	if (c->nsec3 || ni.nsec3) {
		if (ni.nsec3) {
			if ((e = nsec3_link_check(g, c->owner)) != ZD_OK)
				goto out;
			if ((e = rrset_get(g, g->from, c->owner, LDNS_RR_TYPE_NSEC3, 0, &old)))
				goto out;
			if (old == NULL && (e = owner_push(g->added, c->owner)) != ZD_OK) {
				e = serr(g, e, c->owner, "remembering");
				goto out;
			}
		}
		if ((e = nsec3_neighbor(g, c->owner, -1, &prev)) != ZD_OK)
			goto out;
		if ((e = nsec3_link_check(g, prev)) != ZD_OK)
			goto out;
		if (!ni.data && (ni.nsec3 || c->nsec3))
			goto out; /* a hash owner, not a name of the zone */
	}
	if ((e = nsec3_name_check(g, c->owner)) != ZD_OK)
		goto out;
	/* Ancestors up to the apex: an empty non-terminal may have gained or
	 * lost its need for an NSEC3. */
	size_t apex_labels = ldns_dname_label_count(g->apex);
	a = ldns_dname_left_chop(c->owner);
	while (a != NULL && ldns_dname_label_count(a) > apex_labels) {
		if (!owner_in(done, a)) {
			if ((e = owner_push(done, a)) != ZD_OK) {
				e = serr(g, e, a, "remembering");
				goto out;
			}
			if ((e = nsec3_name_check(g, a)) != ZD_OK)
				goto out;
		}
		ldns_rdf *up = ldns_dname_left_chop(a);
		ldns_rdf_deep_free(a);
		a = up;
	}
	if (a == NULL && ldns_dname_label_count(c->owner) > apex_labels)
		e = serr(g, ZD_ENOMEM, c->owner, "walking up");
out:
	ldns_rr_list_deep_free(rrs);
	ldns_rr_list_deep_free(old);
	ldns_rdf_deep_free(a);
	ldns_rdf_deep_free(prev);
	return e;
}

/* --- set-up ------------------------------------------------------------ */

static zd_err
gate_init(struct gate *g, struct store *s, uint64_t v, uint64_t from, const struct gate_policy *p,
          char *why, size_t whylen)
{
	memset(g, 0, sizeof *g);
	g->s = s;
	g->p = p;
	g->v = v;
	g->from = from;
	g->apex = store_apex_get(s);
	g->why = why;
	g->whylen = whylen;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	g->buf = ldns_buffer_new(4096);
	g->expect = ldns_rr_list_new();
	g->added = ldns_rr_list_new();
	/* A label of 0xff octets right below the apex sorts after every
	 * name whose first label below the apex is shorter or smaller. */
	uint8_t wire[256];
	size_t apex_len = ldns_rdf_size(g->apex);
	size_t lab = apex_len + 2 <= 255 ? 255 - apex_len - 1 : 0;
	if (lab > 63)
		lab = 63;
	if (lab > 0) {
		wire[0] = (uint8_t)lab;
		memset(wire + 1, 0xff, lab);
		memcpy(wire + 1 + lab, ldns_rdf_data(g->apex), apex_len);
		g->maxname = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, 1 + lab + apex_len, wire);
	} else {
		g->maxname = ldns_rdf_clone(g->apex);
	}
	g->set = ldns_rr_list_new();
	g->sigs = ldns_rr_list_new();
	if (g->buf == NULL || g->expect == NULL || g->added == NULL || g->maxname == NULL ||
	    g->set == NULL || g->sigs == NULL || hsm_verifier_new(&g->ver) != ZD_OK)
		return serr(g, ZD_ENOMEM, g->apex, "setting up");
	return ZD_OK;
}

static void
gate_clear(struct gate *g, size_t *n_checked)
{
	vpool_end(g, 0); /* before the keys go */
	for (size_t i = 0; i < g->n_keys; i++)
		hsm_verify_key_free(g->keys[i].vk);
	hsm_verifier_free(g->ver);
	ldns_rr_list_free(g->set); /* borrowed RRs */
	ldns_rr_list_free(g->sigs);
	ldns_buffer_free(g->buf);
	ldns_rdf_deep_free(g->maxname);
	ldns_rr_list_deep_free(g->expect);
	ldns_rr_list_deep_free(g->added);
	if (n_checked != NULL)
		*n_checked = g->n_checked;
}

zd_err
gate_txn_check(struct store *s, struct store_txn *t, const struct gate_policy *p, size_t *n_checked,
               char *why, size_t whylen)
{
	uint64_t to = store_txn_version_get(t), from = store_published_get(s);
	struct chgs c = {0};
	ldns_rr_list *done = NULL;
	struct gate g;
	zd_err e;

	if (from == 0)
		return gate_zone_check(s, to, p, n_checked, why, whylen);
	if ((e = gate_init(&g, s, to, from, p, why, whylen)) != ZD_OK)
		goto out;
	if ((e = keys_load(&g)) != ZD_OK)
		goto out;
	if ((done = ldns_rr_list_new()) == NULL) {
		e = serr(&g, ZD_ENOMEM, g.apex, "setting up");
		goto out;
	}
	if ((e = store_txn_changes_foreach(t, chg_add, &c)) != ZD_OK) {
		e = serr(&g, e, g.apex, "listing the changes");
		goto out;
	}
	/* A zone cut added or removed changes what is authoritative below. */
	size_t n_direct = c.n;
	for (size_t i = 0; i < n_direct; i++) {
		if (!c.v[i].ns)
			continue;
		e = store_below_walk(s, to, c.v[i].owner, GATE_VISITS_MAX, below_add, &c);
		if (e == ZD_ELIMIT)
			e = fail(&g, c.v[i].owner, LDNS_RR_TYPE_NS, "more than %u names below",
			         GATE_VISITS_MAX);
		else if (e != ZD_OK)
			e = serr(&g, e, c.v[i].owner, "walking below");
		if (e != ZD_OK)
			goto out;
	}
	chgs_fold(&c);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < c.n; i++)
			if ((e = txn_name_check(&g, &c.v[i], pass, done)) != ZD_OK)
				goto out;
	/* Every NSEC3 added belongs to a name that needs it. */
	for (size_t i = 0; i < ldns_rr_list_rr_count(g.added); i++) {
		const ldns_rdf *o = ldns_rr_owner(ldns_rr_list_rr(g.added, i));
		if (!owner_in(g.expect, o)) {
			e = fail(&g, o, LDNS_RR_TYPE_NSEC3, "added NSEC3 matches no changed name");
			goto out;
		}
	}
out:
	ldns_rr_list_deep_free(done);
	chgs_clear(&c);
	gate_clear(&g, n_checked);
	return e;
}

/* --- zone mode ------------------------------------------------------ */

struct zstate {
	ldns_rdf *cut;  /* last delegation; names below it are occluded */
	ldns_rdf *last; /* last NSEC or NSEC3 owner seen */
	ldns_rdf *next; /* NSEC: next name of the last NSEC */
	uint8_t first_hash[HASH_LEN], next_hash[HASH_LEN];
	size_t n_ring;             /* NSEC3 owners */
	size_t n_needed;           /* names that need an NSEC3 */
	ldns_rdf *ents[DEPTH_MAX]; /* empty non-terminals above the last counted name */
	size_t n_ents;
	int started;
};

static void
zstate_clear(struct zstate *z)
{
	ldns_rdf_deep_free(z->cut);
	ldns_rdf_deep_free(z->last);
	ldns_rdf_deep_free(z->next);
	for (size_t i = 0; i < z->n_ents; i++)
		ldns_rdf_deep_free(z->ents[i]);
}

static int
ent_seen(const struct zstate *z, const ldns_rdf *a)
{
	for (size_t i = 0; i < z->n_ents; i++)
		if (ldns_dname_compare(z->ents[i], a) == 0)
			return 1;
	return 0;
}

/* owner needs its own NSEC3: the empty non-terminals above it do too.
 * All names below an ancestor follow it in canonical order, so an ancestor
 * counted before is among those of the last counted name. */
static zd_err
zone_ents(struct gate *g, struct zstate *z, const ldns_rdf *owner)
{
	ldns_rdf *anc[DEPTH_MAX];
	size_t n = 0, apex_labels = ldns_dname_label_count(g->apex);
	ldns_rdf *ents[DEPTH_MAX];
	size_t n_ents = 0;
	zd_err e = ZD_OK;

	ldns_rdf *a = ldns_dname_left_chop(owner);
	while (a != NULL && ldns_dname_label_count(a) > apex_labels && n < DEPTH_MAX) {
		anc[n++] = a;
		a = ldns_dname_left_chop(a);
	}
	ldns_rdf_deep_free(a);
	for (size_t i = n; i-- > 0 && e == ZD_OK;) {
		struct ninfo ni;
		ldns_rdf *h = NULL;
		if (ent_seen(z, anc[i])) {
			ents[n_ents++] = anc[i];
			anc[i] = NULL;
			continue;
		}
		if ((e = ninfo_from_store(g, anc[i], &ni)) != ZD_OK)
			break;
		if (ni.data)
			continue;
		if ((e = nsec3_record_check(g, anc[i], &ni, &h)) != ZD_OK)
			break;
		ldns_rdf_deep_free(h);
		z->n_needed++;
		ents[n_ents++] = anc[i];
		anc[i] = NULL;
	}
	for (size_t i = 0; i < n; i++)
		ldns_rdf_deep_free(anc[i]);
	for (size_t i = 0; i < z->n_ents; i++)
		ldns_rdf_deep_free(z->ents[i]);
	memcpy(z->ents, ents, n_ents * sizeof ents[0]);
	z->n_ents = n_ents;
	return e;
}

/* One name of the walk, in canonical order. */
static zd_err
zone_name(struct gate *g, struct zstate *z, const ldns_rdf *owner, const ldns_rr_list *rrs,
          const struct ninfo *types)
{
	struct ninfo ni;
	int occ;
	zd_err e;

	if (!z->started) {
		z->started = 1;
		if (ldns_dname_compare(owner, g->apex) != 0)
			return fail(g, owner, 0, "first name of the zone is not the apex");
	}
	occ = z->cut != NULL && ldns_dname_is_subdomain(owner, z->cut);
	if (types != NULL)
		ni = *types;
	if ((e = types != NULL ? name_check_types(g, owner, rrs, occ, &ni)
	                       : name_check(g, owner, rrs, occ, &ni)) != ZD_OK)
		return e;
	if (!occ && !ni.apex && ni.ns) {
		ldns_rdf_deep_free(z->cut);
		if ((z->cut = ldns_rdf_clone(owner)) == NULL)
			return serr(g, ZD_ENOMEM, owner, "copying");
	}
	if (!g->p->nsec3) {
		const ldns_rdf *next = NULL;
		if (occ || !ni.data) {
			if (ni.nsec)
				return fail(g, owner, LDNS_RR_TYPE_NSEC,
				            "NSEC at a name that needs none");
			return ZD_OK;
		}
		if ((e = nsec_record_check(g, owner, rrs, &ni, &next)) != ZD_OK)
			return e;
		if (z->next != NULL && ldns_dname_compare(z->next, owner) != 0) {
			char *a = ldns_rdf2str(z->next), *b = ldns_rdf2str(owner);
			e = fail(g, z->last, LDNS_RR_TYPE_NSEC, "next name %s, expected %s",
			         a ? a : "?", b ? b : "?");
			free(a);
			free(b);
			return e;
		}
		ldns_rdf_deep_free(z->next);
		ldns_rdf_deep_free(z->last);
		z->next = ldns_rdf_clone(next);
		z->last = ldns_rdf_clone(owner);
		if (z->next == NULL || z->last == NULL)
			return serr(g, ZD_ENOMEM, owner, "copying");
		return ZD_OK;
	}
	if (ni.nsec3 && !occ) {
		/* Hash owners come in hash order: base32hex keeps it. */
		const ldns_rr *rr = NULL;
		uint8_t h[HASH_LEN];
		for (size_t i = 0; i < ldns_rr_list_rr_count(rrs) && rr == NULL; i++)
			if (ldns_rr_get_type(ldns_rr_list_rr(rrs, i)) == LDNS_RR_TYPE_NSEC3)
				rr = ldns_rr_list_rr(rrs, i);
		if (label_hash(owner, h) != 0) /* name_check saw to it */
			return serr(g, ZD_EBUG, owner, "hash owner");
		if (z->n_ring == 0) {
			memcpy(z->first_hash, h, HASH_LEN);
		} else if (memcmp(z->next_hash, h, HASH_LEN) != 0) {
			char a[64], b[64];
			hash_str(z->next_hash, HASH_LEN, a, sizeof a);
			hash_str(h, HASH_LEN, b, sizeof b);
			return fail(g, z->last, LDNS_RR_TYPE_NSEC3,
			            "next hashed owner %s, but the next owner is %s", a, b);
		}
		memcpy(z->next_hash, ldns_rdf_data(ldns_rr_rdf(rr, 4)) + 1, HASH_LEN);
		z->n_ring++;
		ldns_rdf_deep_free(z->last);
		if ((z->last = ldns_rdf_clone(owner)) == NULL)
			return serr(g, ZD_ENOMEM, owner, "copying");
	}
	if (nsec3_needed_self(g, &ni, occ)) {
		ldns_rdf *h = NULL;
		if ((e = nsec3_record_check(g, owner, &ni, &h)) != ZD_OK)
			return e;
		ldns_rdf_deep_free(h);
		z->n_needed++;
		if (!ni.apex && (e = zone_ents(g, z, owner)) != ZD_OK)
			return e;
	}
	return ZD_OK;
}

static zd_err
zone_end(struct gate *g, struct zstate *z)
{
	if (!z->started)
		return fail(g, g->apex, 0, "empty zone");
	if (!g->p->nsec3) {
		if (z->next == NULL)
			return fail(g, g->apex, LDNS_RR_TYPE_NSEC, "no NSEC chain");
		if (ldns_dname_compare(z->next, g->apex) != 0) {
			char *a = ldns_rdf2str(z->next);
			zd_err e = fail(g, z->last, LDNS_RR_TYPE_NSEC,
			                "next name %s, expected the apex (last NSEC)", a ? a : "?");
			free(a);
			return e;
		}
		return ZD_OK;
	}
	if (z->n_ring == 0)
		return fail(g, g->apex, LDNS_RR_TYPE_NSEC3, "no NSEC3 chain");
	if (memcmp(z->next_hash, z->first_hash, HASH_LEN) != 0) {
		char a[64], b[64];
		hash_str(z->next_hash, HASH_LEN, a, sizeof a);
		hash_str(z->first_hash, HASH_LEN, b, sizeof b);
		return fail(g, z->last, LDNS_RR_TYPE_NSEC3,
		            "next hashed owner %s, but the ring starts at %s", a, b);
	}
	/* Each name that needs one has its own (checked by lookup); as many
	 * owners as such names leaves no NSEC3 for anything else. */
	if (z->n_ring != z->n_needed)
		return fail(g, g->apex, LDNS_RR_TYPE_NSEC3,
		            "%zu NSEC3 records for %zu names that need one", z->n_ring,
		            z->n_needed);
	return ZD_OK;
}

/* One step of the zone walk: names and their types, copied out of the
 * store's read lock. */
struct wname {
	ldns_rdf *name;
	uint16_t types[GATE_TYPES_MAX];
	size_t n_types;
	int over; /* more types than GATE_TYPES_MAX */
};

struct wchunk {
	struct wname v[WALK_CHUNK];
	size_t n;
};

static zd_err
wchunk_add(void *arg, const ldns_rdf *name, const uint16_t *types, size_t n_types)
{
	struct wchunk *c = arg;
	if (c->n == WALK_CHUNK)
		return ZD_EBUG; /* the walk asked for no more */
	struct wname *w = &c->v[c->n];
	if ((w->name = ldns_rdf_clone(name)) == NULL)
		return ZD_ENOMEM;
	w->over = n_types > GATE_TYPES_MAX;
	w->n_types = w->over ? 0 : n_types;
	memcpy(w->types, types, w->n_types * sizeof *types);
	c->n++;
	return ZD_OK;
}

static void
wchunk_clear(struct wchunk *c)
{
	for (size_t i = 0; c != NULL && i < c->n; i++)
		ldns_rdf_deep_free(c->v[i].name);
	if (c != NULL)
		c->n = 0;
}

zd_err
gate_zone_check(struct store *s, uint64_t v, const struct gate_policy *p, size_t *n_checked,
                char *why, size_t whylen)
{
	struct store_cursor cur = STORE_CURSOR_INIT;
	struct zstate z = {0};
	ldns_rr_list *none = NULL;
	struct wchunk *wc = NULL;
	struct gate g;
	zd_err e;

	if ((e = gate_init(&g, s, v, 0, p, why, whylen)) != ZD_OK)
		goto out;
	if ((e = keys_load(&g)) != ZD_OK)
		goto out;
	if ((none = ldns_rr_list_new()) == NULL || (wc = calloc(1, sizeof *wc)) == NULL) {
		e = serr(&g, ZD_ENOMEM, g.apex, "walking");
		goto out;
	}
	vpool_start(&g);
	while (!cur.done) {
		wchunk_clear(wc);
		/* Outside the walk's read lock from here: the checks read the
		 * store themselves. */
		if ((e = store_names_types_walk(s, v, &cur, WALK_CHUNK, wchunk_add, wc)) != ZD_OK) {
			e = serr(&g, e, g.apex, "walking");
			goto out;
		}
		for (size_t i = 0; i < wc->n; i++) {
			const struct wname *w = &wc->v[i];
			if (w->over) {
				e = fail(&g, w->name, 0, "more than %d RR types", GATE_TYPES_MAX);
				goto out;
			}
			/* Records only where there are signatures to verify (and at
			 * the apex); elsewhere the types say all the checks need. */
			struct ninfo ni = {.n_types = w->n_types};
			memcpy(ni.types, w->types, w->n_types * sizeof *w->types);
			ninfo_flags(&g, w->name, &ni);
			ldns_rr_list *rrs = NULL;
			if (ni.apex || types_has(&ni, LDNS_RR_TYPE_RRSIG)) {
				if ((e = name_rrs(&g, w->name, &rrs)) != ZD_OK)
					goto out;
				e = zone_name(&g, &z, w->name, rrs, NULL);
				ldns_rr_list_deep_free(rrs);
			} else {
				e = zone_name(&g, &z, w->name, none, &ni);
			}
			if (e != ZD_OK)
				goto out;
		}
	}
	/* every signature's verdict first: a bad one is the reason even when
	 * the end of the walk finds something else */
	if ((e = vpool_end(&g, 1)) == ZD_OK)
		e = zone_end(&g, &z);
out:
	ldns_rr_list_free(none);
	wchunk_clear(wc);
	free(wc);
	zstate_clear(&z);
	gate_clear(&g, n_checked);
	return e;
}
