/* integrity-check/dnssec.c -- see dnssec.h.
 *
 * Three passes over the sorted zoneset; none allocates per record:
 * 1. walk (calling thread): owner names in canonical order, each name's
 *    records grouped by type.  Classifies authoritative data, delegation
 *    points and occluded names, queues one job per RRset that must be
 *    signed or carries signatures, checks the NSEC chain on the way, or
 *    collects the names (empty non-terminals included) and NSEC3 records
 *    of the NSEC3 chain.
 * 2. jobs (o->threads threads, one contiguous slice each, so problems stay
 *    in canonical order): every RRSIG verified with ldns against the apex
 *    DNSKEYs, then coverage per zone-key algorithm.  NSEC3 hashes of the
 *    collected names likewise.
 * 3. calling thread: NSEC3 ring and names matched against it (both sorted
 *    by hash), parent DS against the DNSKEYs.
 * Each thread has its own ldns buffers and OpenSSL keys; reports merge at
 * the end. */
#include "integrity-check/dnssec.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RRSIG_FIXED    18  /* RRSIG rdata before the signer's name */
#define NSEC3_SHA1     1   /* the one NSEC3 hash algorithm (RFC 5155 s11) */
#define HASH_LEN       20  /* its length */
#define HASH_B32       32  /* its base32hex label */
#define NSEC3_ITER_MAX 500 /* RFC 9276 s3.2: validators may give up above */
#define KEY_TRIES_MAX  16  /* DNSKEYs with one tag and algorithm tried per RRSIG */
#define THREADS_MAX    64
#define BITMAP_MAX     (256 * 34) /* every window, each 2 + 32 octets */
#define LABELS_MAX     128
#define KEY_ZONE       0x0100 /* RFC 4034 s2.1.1 */
#define KEY_SEP        0x0001
#define TEXT_MAX       200 /* type lists quoted in a problem */

enum denial { DENIAL_NONE, DENIAL_NSEC, DENIAL_NSEC3 };

/* What an NSEC3 chain must say about a name (RFC 5155 s7.1). */
enum kind {
	K_APEX,
	K_AUTH,    /* authoritative data */
	K_SDELEG,  /* delegation with DS */
	K_IDELEG,  /* delegation without DS: may be opted out */
	K_ENT_REQ, /* empty non-terminal above secure data */
	K_ENT_OPT, /* empty non-terminal above insecure delegations only */
};

struct algset {
	uint64_t w[4];
};

struct counts {
	uint64_t rrsigs, valid, bogus, expired, expiring, unsig, chain, ds, misplaced;
	int64_t min_remaining;
};

struct plist {
	struct dnssec_problem *v;
	size_t n, alloc;
};

/* Problems found by one thread or pass: each severity capped at cap. */
struct sink {
	size_t cap;
	struct plist lists[2]; /* critical, warning */
	uint64_t total;
	enum dnssec_severity worst;
	int enomem;
};

struct dkey {
	const uint8_t *rd; /* DNSKEY rdata, borrowed from the zoneset */
	uint16_t rdlen, flags, tag;
	uint8_t alg;
	uint8_t zone;    /* zone-key flag and protocol 3 */
	uint8_t checked; /* ldns verifies the algorithm and the key parses */
	size_t rr;       /* zoneset index */
};

/* One RRset to verify or to find signed. */
struct job {
	uint32_t first, n;  /* its records; n == 0: RRSIGs covering no RRset */
	uint32_t sig, nsig; /* the RRSIGs covering it, contiguous */
	uint16_t type;
	uint8_t auth; /* must be signed with every zone-key algorithm */
};

struct name_ent {
	uint8_t hash[HASH_LEN];
	uint32_t ref; /* zoneset index of the name's first record; ENT: offset in ent */
	uint8_t kind;
};

struct n3_ent {
	uint8_t hash[HASH_LEN]; /* decoded from the owner's first label */
	uint32_t rr;
};

struct ent_frame {
	uint32_t off; /* in check.ent */
	uint16_t len;
	uint8_t req;
};

struct bmap {
	uint8_t b[BITMAP_MAX];
	size_t len;
	int win;
	uint8_t bits[32];
	size_t nbits; /* octets of bits in use */
};

struct n3rd {
	uint8_t alg, flags, saltlen, hlen;
	uint16_t iter;
	const uint8_t *salt, *next, *bm;
	size_t bmlen;
};

struct check {
	const struct zoneset *zs;
	const struct dnssec_check_opts *o;
	uint32_t now;
	unsigned threads;
	const uint8_t *apex;
	size_t apex_len, apex_labels;
	int is_signed;

	struct dkey *keys; /* the apex DNSKEYs, sorted by tag, algorithm */
	size_t nkeys;
	uint8_t zone_algs[256]; /* RFC 6840 s5.11: every algorithm of the zone keys */
	size_t n_zone_algs;
	/* Per key: a valid RRSIG over the apex DNSKEY RRset.  Written only by
	 * the thread that has the apex DNSKEY job, read after the join. */
	uint8_t *signs_dnskey;

	struct job *jobs;
	size_t njobs, ajobs;

	enum denial denial;
	/* NSEC: the chain so far */
	int have_prev_nsec;
	const uint8_t *prev_nsec_owner, *prev_next;
	size_t prev_nsec_owner_len, prev_next_len;
	/* NSEC3 */
	size_t p_lo, p_hi; /* the apex NSEC3PARAM records */
	const uint8_t *salt;
	uint8_t saltlen;
	uint16_t iter;
	uint64_t other_chain; /* NSEC3 of another NSEC3PARAM: not checked */
	struct name_ent *names;
	size_t nnames, anames;
	struct n3_ent *n3s;
	size_t nn3, an3;
	uint8_t *ent; /* empty non-terminal names, wire, back to back */
	size_t ent_len, ent_alloc;
	struct ent_frame stack[LABELS_MAX];
	size_t depth;
	const uint8_t *prev; /* the previous original name (ENT detection) */
	size_t prev_len;

	const uint8_t *cut; /* the last delegation point */
	size_t cut_len;

	struct sink walk, post;
	struct counts cnt;
	struct bmap bm;
	zd_err err;
};

struct worker {
	const struct check *c;
	size_t lo, hi;       /* jobs, or names when hashing */
	EVP_PKEY **pkeys;    /* per key, built on first use; owned */
	uint8_t *pkey_state; /* 0 not tried, 1 built, 2 does not parse */
	ldns_buffer *data;   /* the signed data of one RRSIG */
	ldns_buffer *sig;    /* the signature as OpenSSL takes it */
	struct sink sink;
	struct counts cnt;
	zd_err err;
};

/* --- Small helpers -------------------------------------------------- */

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint8_t
lower(uint8_t ch)
{
	return ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch + 32) : ch;
}

static void
algset_add(struct algset *s, uint8_t a)
{
	s->w[a >> 6] |= (uint64_t)1 << (a & 63);
}

static int
algset_has(const struct algset *s, uint8_t a)
{
	return (s->w[a >> 6] >> (a & 63)) & 1;
}

static int
grow(void **p, size_t *alloc, size_t need, size_t size)
{
	if (need <= *alloc)
		return 0;
	size_t na = *alloc ? *alloc : 64;
	while (na < need)
		na *= 2;
	if (na > SIZE_MAX / size)
		return -1;
	void *q = realloc(*p, na * size);
	if (q == NULL)
		return -1;
	*p = q;
	*alloc = na;
	return 0;
}

/* Length of the uncompressed name at p within len octets; 0: none. */
static size_t
name_wire_len(const uint8_t *p, size_t len)
{
	size_t pos = 0;

	for (;;) {
		if (pos >= len || pos >= 255)
			return 0;
		uint8_t l = p[pos];
		if (l > 63)
			return 0;
		pos += 1u + l;
		if (l == 0)
			return pos;
	}
}

/* Label offsets of a well-formed name, leftmost first; the count, root
 * excluded. */
static size_t
name_labels(const uint8_t *p, size_t len, uint8_t off[LABELS_MAX])
{
	size_t n = 0, pos = 0;

	while (pos < len && p[pos] != 0 && n < LABELS_MAX) {
		off[n++] = (uint8_t)pos;
		pos += 1u + p[pos];
	}
	return n;
}

static size_t
name_label_count(const uint8_t *p, size_t len)
{
	uint8_t off[LABELS_MAX];
	return name_labels(p, len, off);
}

/* n is a at or below a; both canonical (lower case). */
static int
name_under(const uint8_t *n, size_t nlen, const uint8_t *a, size_t alen)
{
	size_t pos = 0;

	while (pos < nlen && nlen - pos > alen && n[pos] != 0)
		pos += 1u + n[pos];
	return pos <= nlen && nlen - pos == alen && memcmp(n + pos, a, alen) == 0;
}

/* Label lengths are below 'A', so octet-wise folding compares names. */
static int
name_eq_nocase(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++)
		if (lower(a[i]) != lower(b[i]))
			return 0;
	return 1;
}

/* Presentation form, malloc'd; NULL on allocation failure. */
static char *
name_str(const uint8_t *w, size_t len)
{
	ldns_rdf rdf; /* borrows w */

	memset(&rdf, 0, sizeof rdf);
	ldns_rdf_set_type(&rdf, LDNS_RDF_TYPE_DNAME);
	ldns_rdf_set_size(&rdf, len);
	ldns_rdf_set_data(&rdf, (void *)(uintptr_t)w);
	return ldns_rdf2str(&rdf);
}

static const char *
type_str(uint16_t t, char buf[16])
{
	const ldns_rr_descriptor *d = ldns_rr_descript(t);

	if (d != NULL && d->_type == t && d->_name != NULL)
		return d->_name;
	snprintf(buf, 16, "TYPE%u", (unsigned)t);
	return buf;
}

static void
time_str(uint32_t t, uint32_t now, char out[32])
{
	time_t abs = (time_t)((int64_t)now + (int32_t)(t - now)); /* RFC 1982 */
	struct tm tm;

	if (gmtime_r(&abs, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "%u", (unsigned)t);
}

static const char b32hex[] = "0123456789abcdefghijklmnopqrstuv";

static int
b32hex_val(uint8_t ch)
{
	ch = lower(ch);
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'v')
		return ch - 'a' + 10;
	return -1;
}

static int
b32hex_decode(const uint8_t *s, size_t n, uint8_t out[HASH_LEN])
{
	uint32_t acc = 0;
	size_t bits = 0, o = 0;

	if (n != HASH_B32)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b32hex_val(s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return 0;
}

/* Any length up to 255 octets: out holds 8 * len / 5 + 2. */
static void
b32hex_encode(const uint8_t *h, size_t len, char *out)
{
	uint32_t acc = 0;
	size_t bits = 0, o = 0;

	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | h[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = b32hex[(acc >> bits) & 31];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		out[o++] = b32hex[(acc << (5 - bits)) & 31];
	out[o] = '\0';
}

/* --- Problems -------------------------------------------------------- */

static void
sink_init(struct sink *s, size_t cap)
{
	memset(s, 0, sizeof *s);
	s->cap = cap;
}

static void
sink_clear(struct sink *s)
{
	for (int l = 0; l < 2; l++) {
		for (size_t i = 0; i < s->lists[l].n; i++) {
			free(s->lists[l].v[i].owner);
			free(s->lists[l].v[i].what);
		}
		free(s->lists[l].v);
	}
	memset(s, 0, sizeof *s);
}

/* Whether a problem of sev would be described (else only counted). */
static int
sink_wants(const struct sink *s, enum dnssec_severity sev)
{
	return s->lists[sev == DNSSEC_CRITICAL ? 0 : 1].n < s->cap;
}

static void sink_add(struct sink *s, enum dnssec_severity sev, const uint8_t *owner, size_t olen,
                     uint16_t type, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void
sink_add(struct sink *s, enum dnssec_severity sev, const uint8_t *owner, size_t olen, uint16_t type,
         const char *fmt, ...)
{
	struct plist *l = &s->lists[sev == DNSSEC_CRITICAL ? 0 : 1];
	char what[512];
	va_list ap;

	s->total++;
	if (sev > s->worst)
		s->worst = sev;
	if (l->n >= s->cap)
		return;
	if (grow((void **)&l->v, &l->alloc, l->n + 1, sizeof *l->v) != 0) {
		s->enomem = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	char *o = name_str(owner, olen), *w = strdup(what);
	if (o == NULL || w == NULL) {
		free(o);
		free(w);
		s->enomem = 1;
		return;
	}
	l->v[l->n++] = (struct dnssec_problem){sev, o, type, w};
}

/* --- Type bitmaps (RFC 4034 s4.1.2) ---------------------------------- */

static void
bmap_flush(struct bmap *m)
{
	if (m->nbits == 0)
		return;
	m->b[m->len++] = (uint8_t)m->win;
	m->b[m->len++] = (uint8_t)m->nbits;
	memcpy(m->b + m->len, m->bits, m->nbits);
	m->len += m->nbits;
	m->nbits = 0;
	memset(m->bits, 0, sizeof m->bits);
}

static void
bmap_reset(struct bmap *m)
{
	m->len = 0;
	m->win = -1;
	m->nbits = 0;
	memset(m->bits, 0, sizeof m->bits);
}

/* Types in ascending order. */
static void
bmap_add(struct bmap *m, uint16_t t)
{
	if ((int)(t >> 8) != m->win) {
		bmap_flush(m);
		m->win = t >> 8;
	}
	size_t octet = (t & 0xff) >> 3;
	m->bits[octet] |= (uint8_t)(0x80 >> (t & 7));
	if (octet + 1 > m->nbits)
		m->nbits = octet + 1;
}

/* The types of a bitmap as text, at most TEXT_MAX characters. */
static void
bitmap_text(const uint8_t *p, size_t len, char *out, size_t cap)
{
	size_t pos = 0, o = 0;
	int last = -1;

	out[0] = '\0';
	while (pos < len) {
		if (len - pos < 2 || (int)p[pos] <= last || p[pos + 1] == 0 || p[pos + 1] > 32 ||
		    len - pos - 2 < p[pos + 1]) {
			snprintf(out + o, cap - o, "%s(malformed)", o ? " " : "");
			return;
		}
		int win = p[pos];
		size_t n = p[pos + 1];
		for (size_t i = 0; i < n * 8; i++) {
			if (!(p[pos + 2 + i / 8] & (0x80 >> (i % 8))))
				continue;
			char buf[16];
			const char *s = type_str((uint16_t)(win * 256 + i), buf);
			int w = snprintf(out + o, cap - o, "%s%s", o ? " " : "", s);
			if (w < 0 || (size_t)w >= cap - o) {
				if (cap > 4)
					memcpy(out + cap - 4, "...", 4);
				return;
			}
			o += (size_t)w;
		}
		last = win;
		pos += 2 + n;
	}
}

/* The types of the name's records [b, e) that a denial record lists:
 * at a delegation only NS, DS, NSEC and RRSIG (the rest is occluded);
 * NSEC3 records belong to the hashed owner, not to the name. */
static void
expected_types(const struct zd_crr *rrs, size_t b, size_t e, int deleg, int drop_nsec3,
               struct bmap *m)
{
	int any = 0;
	uint16_t last = 0;

	bmap_reset(m);
	for (size_t i = b; i < e; i++) {
		if (zd_crr_class_get(&rrs[i]) != LDNS_RR_CLASS_IN)
			continue;
		uint16_t t = zd_crr_type_get(&rrs[i]);
		if (deleg && t != LDNS_RR_TYPE_NS && t != LDNS_RR_TYPE_DS &&
		    t != LDNS_RR_TYPE_NSEC && t != LDNS_RR_TYPE_RRSIG)
			continue;
		if (drop_nsec3 && t == LDNS_RR_TYPE_NSEC3)
			continue;
		if (any && t == last)
			continue;
		bmap_add(m, t);
		last = t;
		any = 1;
	}
	bmap_flush(m);
}

static void
bitmap_check(struct sink *s, struct counts *cnt, const struct bmap *want, const uint8_t *have,
             size_t hlen, const uint8_t *owner, size_t olen, uint16_t type, const char *what)
{
	char a[TEXT_MAX], b[TEXT_MAX];

	if (want->len == hlen && memcmp(want->b, have, hlen) == 0)
		return;
	cnt->chain++;
	if (!sink_wants(s, DNSSEC_CRITICAL)) {
		sink_add(s, DNSSEC_CRITICAL, owner, olen, type, "-");
		return;
	}
	bitmap_text(have, hlen, a, sizeof a);
	bitmap_text(want->b, want->len, b, sizeof b);
	sink_add(s, DNSSEC_CRITICAL, owner, olen, type,
	         "%s type bitmap lists {%s}, the name has {%s}", what, a, b);
}

/* --- Record parsing --------------------------------------------------- */

static uint16_t
covered_get(const struct zd_crr *r)
{
	uint16_t len;
	const uint8_t *rd = zd_crr_rdata_get(r, &len);
	return len >= 2 ? get16(rd) : 0;
}

/* RFC 5155 s3.2; 0 when malformed. */
static int
nsec3_parse(const uint8_t *rd, size_t len, struct n3rd *n)
{
	size_t pos;

	if (len < 6)
		return 0;
	n->alg = rd[0];
	n->flags = rd[1];
	n->iter = get16(rd + 2);
	n->saltlen = rd[4];
	pos = 5u + n->saltlen;
	if (pos + 1 > len)
		return 0;
	n->salt = rd + 5;
	n->hlen = rd[pos];
	if (n->hlen == 0 || pos + 1 + n->hlen > len)
		return 0;
	n->next = rd + pos + 1;
	n->bm = n->next + n->hlen;
	n->bmlen = len - pos - 1 - n->hlen;
	return 1;
}

/* NSEC3PARAM rdata (RFC 5155 s4.2) carries the same parameters as an NSEC3. */
static int
params_match(const struct n3rd *n, const uint8_t *prd, size_t plen)
{
	return plen >= 5 && plen == 5u + prd[4] && n->alg == prd[0] && n->iter == get16(prd + 2) &&
	       n->saltlen == prd[4] && memcmp(n->salt, prd + 5, n->saltlen) == 0;
}

/* --- Keys -------------------------------------------------------------- */

static int
alg_checked(uint8_t alg)
{
	switch (alg) {
	case LDNS_RSASHA1:
	case LDNS_RSASHA1_NSEC3:
	case LDNS_RSASHA256:
	case LDNS_RSASHA512:
	case LDNS_ECDSAP256SHA256:
	case LDNS_ECDSAP384SHA384:
#if LDNS_BUILD_CONFIG_USE_ED25519
	case LDNS_ED25519:
#endif
#if LDNS_BUILD_CONFIG_USE_ED448
	case LDNS_ED448:
#endif
		return 1;
	default:
		return 0;
	}
}

/* The digest for ldns_verify_rrsig_evp_raw() with a key built once; NULL:
 * ldns builds the key for every signature (EdDSA has no separate digest). */
static const EVP_MD *
alg_md(uint8_t alg)
{
	switch (alg) {
	case LDNS_RSASHA1:
	case LDNS_RSASHA1_NSEC3:
		return EVP_sha1();
	case LDNS_RSASHA256:
	case LDNS_ECDSAP256SHA256:
		return EVP_sha256();
	case LDNS_RSASHA512:
		return EVP_sha512();
	case LDNS_ECDSAP384SHA384:
		return EVP_sha384();
	default:
		return NULL;
	}
}

/* RFC 3110 s2: exponent length (1 or 3 octets), exponent, modulus. */
static EVP_PKEY *
rsa_pkey_new(const uint8_t *k, size_t len)
{
	size_t off, elen;
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;

	if (len < 1)
		return NULL;
	if (k[0] != 0) {
		elen = k[0];
		off = 1;
	} else {
		if (len < 3)
			return NULL;
		elen = get16(k + 1);
		off = 3;
	}
	if (elen == 0 || len <= off + elen)
		return NULL;
	if ((e = BN_bin2bn(k + off, (int)elen, NULL)) == NULL ||
	    (n = BN_bin2bn(k + off + elen, (int)(len - off - elen), NULL)) == NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pkey;
}

static EVP_PKEY *
pkey_new(uint8_t alg, const uint8_t *k, size_t len)
{
	EVP_PKEY *p = NULL;

	switch (alg) {
	case LDNS_RSASHA1:
	case LDNS_RSASHA1_NSEC3:
	case LDNS_RSASHA256:
	case LDNS_RSASHA512:
		p = rsa_pkey_new(k, len);
		break;
	case LDNS_ECDSAP256SHA256:
	case LDNS_ECDSAP384SHA384:
		p = ldns_ecdsa2pkey_raw(k, len, alg);
		break;
#if LDNS_BUILD_CONFIG_USE_ED25519
	case LDNS_ED25519:
		p = ldns_ed255192pkey_raw(k, len);
		break;
#endif
#if LDNS_BUILD_CONFIG_USE_ED448
	case LDNS_ED448:
		p = ldns_ed4482pkey_raw(k, len);
		break;
#endif
	default:
		break;
	}
	if (p == NULL)
		ERR_clear_error();
	return p;
}

static int
key_cmp(const void *a, const void *b)
{
	const struct dkey *x = a, *y = b;
	if (x->tag != y->tag)
		return x->tag < y->tag ? -1 : 1;
	if (x->alg != y->alg)
		return x->alg < y->alg ? -1 : 1;
	return x->rr < y->rr ? -1 : (x->rr > y->rr);
}

/* The keys with tag and alg: [*lo, *lo + return). */
static size_t
key_range(const struct check *c, uint16_t tag, uint8_t alg, size_t *lo)
{
	size_t a = 0, b = c->nkeys;

	while (a < b) {
		size_t m = a + (b - a) / 2;
		const struct dkey *k = &c->keys[m];
		if (k->tag < tag || (k->tag == tag && k->alg < alg))
			a = m + 1;
		else
			b = m;
	}
	*lo = a;
	while (b < c->nkeys && c->keys[b].tag == tag && c->keys[b].alg == alg)
		b++;
	return b - a;
}

/* --- Pass 2: signatures ---------------------------------------------- */

static void
bogus(struct worker *w, const struct zd_crr *sig, uint16_t type, uint8_t alg, uint16_t tag,
      const char *what)
{
	w->cnt.bogus++;
	sink_add(&w->sink, DNSSEC_CRITICAL, sig->wire, sig->owner_len, type, "RRSIG %u/%u %s", alg,
	         tag, what);
}

/* RFC 4034 s3.1.8.1: RRSIG rdata without the signature, then the RRset in
 * canonical form and order with the original TTL; RFC 4035 s5.3.2: a
 * wildcard's owner rebuilt from the labels field.  The zoneset already
 * holds canonical records in canonical order without duplicates. */
static zd_err
signed_data(struct worker *w, const struct job *j, const uint8_t *rd, size_t slen, size_t labels,
            size_t owner_labels)
{
	const struct zd_crr *rrs = w->c->zs->rrs;
	const uint8_t *own = rrs[j->first].wire;
	size_t olen = rrs[j->first].owner_len, need;
	uint8_t wild[256];
	uint32_t ottl = get32(rd + 4);

	if (labels < owner_labels) {
		uint8_t off[LABELS_MAX];
		size_t n = name_labels(own, olen, off);
		/* labels 0: the wildcard's parent is the root, whose label is last */
		size_t from = owner_labels - labels < n ? off[owner_labels - labels] : olen - 1;
		wild[0] = 1;
		wild[1] = '*';
		memcpy(wild + 2, own + from, olen - from);
		olen = 2 + olen - from;
		own = wild;
	}
	need = RRSIG_FIXED + slen;
	for (uint32_t k = j->first; k < j->first + j->n; k++)
		need += olen + (rrs[k].len - rrs[k].owner_len);
	ldns_buffer_clear(w->data);
	if (!ldns_buffer_reserve(w->data, need))
		return ZD_ENOMEM;
	ldns_buffer_write(w->data, rd, RRSIG_FIXED);
	for (size_t i = 0; i < slen; i++)
		ldns_buffer_write_u8(w->data, lower(rd[RRSIG_FIXED + i]));
	for (uint32_t k = j->first; k < j->first + j->n; k++) {
		const struct zd_crr *r = &rrs[k];
		ldns_buffer_write(w->data, own, olen);
		ldns_buffer_write(w->data, r->wire + r->owner_len, 4); /* type, class */
		ldns_buffer_write_u32(w->data, ottl);
		ldns_buffer_write(w->data, r->wire + r->owner_len + 8, r->len - r->owner_len - 8u);
	}
	return ZD_OK;
}

/* The signature in the form OpenSSL verifies: ECDSA r|s as DER.  1: the
 * signature cannot be one of alg. */
static int
sig_prepare(struct worker *w, uint8_t alg, const uint8_t *sig, size_t len, const uint8_t **out,
            size_t *outlen)
{
	if (alg == LDNS_ECDSAP256SHA256 || alg == LDNS_ECDSAP384SHA384) {
		ldns_rdf rdf; /* borrows sig */
		if (len != (alg == LDNS_ECDSAP256SHA256 ? 64u : 96u))
			return 1;
		memset(&rdf, 0, sizeof rdf);
		ldns_rdf_set_type(&rdf, LDNS_RDF_TYPE_B64);
		ldns_rdf_set_size(&rdf, len);
		ldns_rdf_set_data(&rdf, (void *)(uintptr_t)sig);
		ldns_buffer_clear(w->sig);
		if (ldns_convert_ecdsa_rrsig_rdf2asn1(w->sig, &rdf) != LDNS_STATUS_OK)
			return 1;
		*out = ldns_buffer_begin(w->sig);
		*outlen = ldns_buffer_position(w->sig);
		return 0;
	}
	*out = sig;
	*outlen = len;
	return 0;
}

static int
sig_verify(struct worker *w, size_t k, const uint8_t *sig, size_t len)
{
	const struct dkey *key = &w->c->keys[k];
	const EVP_MD *md = alg_md(key->alg);
	ldns_status st;

	if (md != NULL) {
		if (w->pkey_state[k] == 0) {
			w->pkeys[k] = pkey_new(key->alg, key->rd + 4, key->rdlen - 4u);
			w->pkey_state[k] = w->pkeys[k] ? 1 : 2;
		}
		if (w->pkeys[k] == NULL)
			return 0;
		st = ldns_verify_rrsig_evp_raw(sig, len, w->data, w->pkeys[k], md);
	} else {
		st = ldns_verify_rrsig_buffers_raw((unsigned char *)(uintptr_t)sig, len, w->data,
		                                   (unsigned char *)(uintptr_t)(key->rd + 4),
		                                   key->rdlen - 4u, key->alg);
	}
	if (st != LDNS_STATUS_OK)
		ERR_clear_error(); /* OpenSSL's queue is per thread; keep it empty */
	return st == LDNS_STATUS_OK;
}

static void
sig_run(struct worker *w, const struct job *j, uint32_t s, struct algset *valid,
        struct algset *seen, int dnskey_apex)
{
	const struct check *c = w->c;
	const struct zd_crr *r = &c->zs->rrs[s];
	uint16_t rdlen, type = j->type;
	const uint8_t *rd = zd_crr_rdata_get(r, &rdlen);
	const uint8_t *sig;
	size_t slen, siglen, lo, nk, owner_labels;
	char t1[32], t2[32], tb[16];

	w->cnt.rrsigs++;
	slen = rdlen > RRSIG_FIXED ? name_wire_len(rd + RRSIG_FIXED, rdlen - RRSIG_FIXED) : 0;
	if (slen == 0 || rdlen - RRSIG_FIXED - slen == 0) {
		w->cnt.bogus++;
		sink_add(&w->sink, DNSSEC_CRITICAL, r->wire, r->owner_len, type,
		         "RRSIG rdata is malformed (%u octets)", (unsigned)rdlen);
		return;
	}
	uint8_t alg = rd[2], labels = rd[3];
	uint32_t exp = get32(rd + 8), inc = get32(rd + 12);
	uint16_t tag = get16(rd + 16);
	int64_t remaining = (int32_t)(exp - c->now);
	sig = rd + RRSIG_FIXED + slen;
	siglen = rdlen - RRSIG_FIXED - slen;

	if (remaining < w->cnt.min_remaining)
		w->cnt.min_remaining = remaining;
	algset_add(seen, alg);
	if (j->n == 0) {
		w->cnt.bogus++;
		sink_add(&w->sink, DNSSEC_CRITICAL, r->wire, r->owner_len, type,
		         "RRSIG %u/%u covers %s, but there is no such RRset here", alg, tag,
		         type_str(type, tb));
		return;
	}
	if (!name_eq_nocase(rd + RRSIG_FIXED, slen, c->apex, c->apex_len)) {
		bogus(w, r, type, alg, tag, "is not signed by the zone apex");
		return;
	}
	owner_labels = name_label_count(r->wire, r->owner_len);
	if (labels > owner_labels) {
		bogus(w, r, type, alg, tag, "labels field exceeds the owner's label count");
		return;
	}
	nk = key_range(c, tag, alg, &lo);
	size_t zone_keys = 0;
	for (size_t k = lo; k < lo + nk; k++)
		zone_keys += c->keys[k].zone;
	if (zone_keys == 0) {
		bogus(w, r, type, alg, tag, "has no zone DNSKEY with its algorithm and key tag");
		return;
	}
	if (!alg_checked(alg)) {
		algset_add(valid, alg); /* cannot judge; said once at the apex */
		return;
	}
	if ((w->err = signed_data(w, j, rd, slen, labels, owner_labels)) != ZD_OK)
		return;
	const uint8_t *vsig;
	size_t vlen;
	if (sig_prepare(w, alg, sig, siglen, &vsig, &vlen) != 0) {
		bogus(w, r, type, alg, tag, "signature has the wrong length");
		return;
	}
	size_t good = SIZE_MAX, tries = 0;
	for (size_t k = lo; k < lo + nk && tries < KEY_TRIES_MAX && good == SIZE_MAX; k++) {
		if (!c->keys[k].zone)
			continue;
		tries++;
		if (sig_verify(w, k, vsig, vlen))
			good = k;
	}
	if (good == SIZE_MAX) {
		bogus(w, r, type, alg, tag, "does not verify");
		return;
	}
	/* Times as ldns checks them: RFC 1982 serial arithmetic. */
	int want = sink_wants(&w->sink, DNSSEC_CRITICAL);
	if ((int32_t)(exp - inc) < 0) {
		w->cnt.expired++;
		if (want) {
			time_str(inc, c->now, t1);
			time_str(exp, c->now, t2);
		}
		sink_add(&w->sink, DNSSEC_CRITICAL, r->wire, r->owner_len, type,
		         "RRSIG %u/%u expires (%s) before its inception (%s)", alg, tag,
		         want ? t2 : "", want ? t1 : "");
	} else if ((int32_t)(c->now - inc) < 0) {
		w->cnt.expired++;
		if (want)
			time_str(inc, c->now, t1);
		sink_add(&w->sink, DNSSEC_CRITICAL, r->wire, r->owner_len, type,
		         "RRSIG %u/%u not valid before %s", alg, tag, want ? t1 : "");
	} else if (remaining < 0) {
		w->cnt.expired++;
		if (want)
			time_str(exp, c->now, t1);
		sink_add(&w->sink, DNSSEC_CRITICAL, r->wire, r->owner_len, type,
		         "RRSIG %u/%u expired %s", alg, tag, want ? t1 : "");
	} else {
		w->cnt.valid++;
		algset_add(valid, alg);
		if (dnskey_apex)
			c->signs_dnskey[good] = 1; /* only this job writes it */
		if (remaining < (int64_t)c->o->warn_seconds) {
			w->cnt.expiring++;
			if (sink_wants(&w->sink, DNSSEC_WARNING))
				time_str(exp, c->now, t1);
			sink_add(&w->sink, DNSSEC_WARNING, r->wire, r->owner_len, type,
			         "RRSIG %u/%u expires %s (in %lld s)", alg, tag,
			         sink_wants(&w->sink, DNSSEC_WARNING) ? t1 : "",
			         (long long)remaining);
		}
	}
}

static void
job_run(struct worker *w, const struct job *j)
{
	const struct check *c = w->c;
	const struct zd_crr *rrs = c->zs->rrs;
	struct algset valid = {{0}}, seen = {{0}};
	char missing[256 * 4 + 1];
	size_t o = 0;
	int absent = 1;
	int dnskey_apex = j->n > 0 && j->type == LDNS_RR_TYPE_DNSKEY &&
	                  rrs[j->first].owner_len == c->apex_len;

	for (uint32_t s = j->sig; s < j->sig + j->nsig && w->err == ZD_OK; s++)
		sig_run(w, j, s, &valid, &seen, dnskey_apex);
	if (!j->auth || w->err != ZD_OK)
		return;
	/* RFC 4035 s2.2, RFC 6840 s5.11: a valid RRSIG of every algorithm. */
	for (size_t i = 0; i < c->n_zone_algs; i++) {
		uint8_t a = c->zone_algs[i];
		if (algset_has(&valid, a))
			continue;
		if (algset_has(&seen, a))
			absent = 0;
		o += (size_t)snprintf(missing + o, sizeof missing - o, "%s%u", o ? " " : "", a);
	}
	if (o == 0)
		return;
	w->cnt.unsig++;
	sink_add(&w->sink, DNSSEC_CRITICAL, rrs[j->first].wire, rrs[j->first].owner_len, j->type,
	         "%s of algorithm %s", absent ? "no RRSIG" : "no valid RRSIG", missing);
}

static void *
verify_main(void *arg)
{
	struct worker *w = arg;

	for (size_t i = w->lo; i < w->hi && w->err == ZD_OK; i++)
		job_run(w, &w->c->jobs[i]);
	if (w->err == ZD_OK && w->sink.enomem)
		w->err = ZD_ENOMEM;
	return NULL;
}

static void *
hash_main(void *arg)
{
	struct worker *w = arg;
	const struct check *c = w->c;

	for (size_t i = w->lo; i < w->hi; i++) {
		struct name_ent *ne = &c->names[i];
		ldns_rdf rdf; /* borrows the name */
		const uint8_t *p;
		size_t len;
		if (ne->kind == K_ENT_REQ || ne->kind == K_ENT_OPT) {
			p = c->ent + ne->ref;
			len = name_wire_len(p, c->ent_len - ne->ref);
		} else {
			p = c->zs->rrs[ne->ref].wire;
			len = c->zs->rrs[ne->ref].owner_len;
		}
		memset(&rdf, 0, sizeof rdf);
		ldns_rdf_set_type(&rdf, LDNS_RDF_TYPE_DNAME);
		ldns_rdf_set_size(&rdf, len);
		ldns_rdf_set_data(&rdf, (void *)(uintptr_t)p);
		ldns_rdf *h = ldns_nsec3_hash_name(&rdf, NSEC3_SHA1, c->iter, c->saltlen, c->salt);
		if (h == NULL) {
			w->err = ZD_ENOMEM;
			return NULL;
		}
		/* one label of base32hex text, then the root */
		int ok = ldns_rdf_size(h) >= 1 + HASH_B32 &&
		         b32hex_decode(ldns_rdf_data(h) + 1, ldns_rdf_data(h)[0], ne->hash) == 0;
		ldns_rdf_deep_free(h);
		if (zd_check_failed(ok)) {
			w->err = ZD_EBUG;
			return NULL;
		}
	}
	return NULL;
}

/* Part 0 in the calling thread; a part whose thread cannot start runs
 * there too, after the others. */
static void
run_parallel(void *(*fn)(void *), struct worker *ws, unsigned n)
{
	pthread_t tid[THREADS_MAX];
	int started[THREADS_MAX] = {0};

	for (unsigned i = 1; i < n; i++)
		started[i] = pthread_create(&tid[i], NULL, fn, &ws[i]) == 0;
	fn(&ws[0]);
	for (unsigned i = 1; i < n; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			fn(&ws[i]);
	}
}

/* --- Pass 1: the walk ---------------------------------------------- */

static void
job_push(struct check *c, size_t first, size_t n, size_t sig, size_t nsig, uint16_t type, int auth)
{
	if (c->err != ZD_OK)
		return;
	if (grow((void **)&c->jobs, &c->ajobs, c->njobs + 1, sizeof *c->jobs) != 0) {
		c->err = ZD_ENOMEM;
		return;
	}
	c->jobs[c->njobs++] = (struct job){(uint32_t)first, (uint32_t)n, (uint32_t)sig,
	                                   (uint32_t)nsig,  type,        (uint8_t)auth};
}

static void
misplaced(struct check *c, const uint8_t *owner, size_t olen, uint16_t type, size_t n,
          const char *what)
{
	char tb[16];

	c->cnt.rrsigs += n;
	c->cnt.misplaced += n;
	sink_add(&c->walk, DNSSEC_WARNING, owner, olen, type,
	         "%zu RRSIG(s) over %s %s, which must not be signed", n, what, type_str(type, tb));
}

/* RRSIGs [p, re) covering types below limit: no RRset of theirs here. */
static size_t
sigs_orphan(struct check *c, size_t p, size_t re, uint32_t limit, int occluded)
{
	const struct zd_crr *rrs = c->zs->rrs;

	while (p < re && covered_get(&rrs[p]) < limit) {
		uint16_t cov = covered_get(&rrs[p]);
		size_t q = p + 1;
		while (q < re && covered_get(&rrs[q]) == cov)
			q++;
		if (occluded || cov == LDNS_RR_TYPE_RRSIG)
			misplaced(c, rrs[p].wire, rrs[p].owner_len, cov, q - p,
			          occluded ? "occluded" : "the type");
		else
			job_push(c, p, 0, p, q - p, cov, 0);
		p = q;
	}
	return p;
}

static void
name_push(struct check *c, enum kind k, size_t ref)
{
	if (c->err != ZD_OK)
		return;
	if (grow((void **)&c->names, &c->anames, c->nnames + 1, sizeof *c->names) != 0) {
		c->err = ZD_ENOMEM;
		return;
	}
	struct name_ent *ne = &c->names[c->nnames++];
	memset(ne->hash, 0, sizeof ne->hash);
	ne->ref = (uint32_t)ref;
	ne->kind = (uint8_t)k;
}

/* RFC 5155 s7.1: the empty non-terminals between the apex and an original
 * name.  An ancestor of the name that no earlier name in canonical order
 * had is one (it would come first, and the names between it and this one
 * would be below it), and those are the ancestors not shared with the
 * previous original name.  One needs an NSEC3 if anything secure is below
 * it; the stack holds the open ones, ancestors of the current name. */
static void
ent_visit(struct check *c, const uint8_t *owner, size_t olen, int secure)
{
	uint8_t off[LABELS_MAX], poff[LABELS_MAX];
	size_t k, common = c->apex_labels;

	while (c->depth > 0) {
		struct ent_frame *f = &c->stack[c->depth - 1];
		if (name_under(owner, olen, c->ent + f->off, f->len))
			break;
		name_push(c, f->req ? K_ENT_REQ : K_ENT_OPT, f->off);
		c->depth--;
	}
	k = name_labels(owner, olen, off);
	if (c->prev != NULL) {
		size_t pk = name_labels(c->prev, c->prev_len, poff);
		while (common + 1 <= k && common + 1 <= pk) {
			size_t L = common + 1, a = off[k - L], b = poff[pk - L];
			if (olen - a != c->prev_len - b ||
			    memcmp(owner + a, c->prev + b, olen - a) != 0)
				break;
			common = L;
		}
	}
	for (size_t L = common + 1; L < k && c->err == ZD_OK; L++) {
		size_t from = off[k - L], len = olen - from;
		if (c->depth >= LABELS_MAX || c->ent_len > UINT32_MAX - len) {
			c->err = ZD_ELIMIT;
			return;
		}
		if (grow((void **)&c->ent, &c->ent_alloc, c->ent_len + len, 1) != 0) {
			c->err = ZD_ENOMEM;
			return;
		}
		memcpy(c->ent + c->ent_len, owner + from, len);
		c->stack[c->depth++] = (struct ent_frame){(uint32_t)c->ent_len, (uint16_t)len, 0};
		c->ent_len += len;
	}
	if (secure)
		for (size_t i = 0; i < c->depth; i++)
			c->stack[i].req = 1;
}

static void
chain_error(struct check *c, struct sink *s, const uint8_t *owner, size_t olen, uint16_t type,
            const char *what)
{
	c->cnt.chain++;
	sink_add(s, DNSSEC_CRITICAL, owner, olen, type, "%s", what);
}

static void
nsec3_collect(struct check *c, size_t i)
{
	const struct zd_crr *r = &c->zs->rrs[i];
	const struct zd_crr *rrs = c->zs->rrs;
	uint16_t len;
	const uint8_t *rd = zd_crr_rdata_get(r, &len);
	struct n3rd n;
	uint8_t h[HASH_LEN];

	if (!nsec3_parse(rd, len, &n)) {
		chain_error(c, &c->walk, r->wire, r->owner_len, LDNS_RR_TYPE_NSEC3,
		            "NSEC3 rdata is malformed");
		return;
	}
	uint16_t plen0;
	const uint8_t *p0 = zd_crr_rdata_get(&rrs[c->p_lo], &plen0);
	if (!params_match(&n, p0, plen0)) {
		for (size_t p = c->p_lo + 1; p < c->p_hi; p++) {
			uint16_t pl;
			const uint8_t *pr = zd_crr_rdata_get(&rrs[p], &pl);
			if (zd_crr_type_get(&rrs[p]) == LDNS_RR_TYPE_NSEC3PARAM &&
			    params_match(&n, pr, pl)) {
				c->other_chain++; /* another chain: not checked, said once */
				return;
			}
		}
		c->cnt.chain++;
		sink_add(&c->walk, DNSSEC_CRITICAL, r->wire, r->owner_len, LDNS_RR_TYPE_NSEC3,
		         "NSEC3 parameters %u %u (salt %u octets) differ from NSEC3PARAM's", n.alg,
		         n.iter, n.saltlen);
	}
	if (r->owner_len != 1u + HASH_B32 + c->apex_len || r->wire[0] != HASH_B32 ||
	    memcmp(r->wire + 1 + HASH_B32, c->apex, c->apex_len) != 0 ||
	    b32hex_decode(r->wire + 1, HASH_B32, h) != 0) {
		chain_error(c, &c->walk, r->wire, r->owner_len, LDNS_RR_TYPE_NSEC3,
		            "NSEC3 owner is not a base32hex SHA-1 hash right below the apex");
		return;
	}
	if (grow((void **)&c->n3s, &c->an3, c->nn3 + 1, sizeof *c->n3s) != 0) {
		c->err = ZD_ENOMEM;
		return;
	}
	memcpy(c->n3s[c->nn3].hash, h, HASH_LEN);
	c->n3s[c->nn3++].rr = (uint32_t)i;
}

struct name_info {
	int apex, occluded, deleg;
	int has_ds, has_nsec, has_nsec3, has_other;
};

static void
nsec_visit(struct check *c, size_t b, size_t e, const struct name_info *ni)
{
	const struct zd_crr *rrs = c->zs->rrs;
	const uint8_t *owner = rrs[b].wire;
	size_t olen = rrs[b].owner_len, f = e, count = 0;

	for (size_t i = b; i < e; i++)
		if (zd_crr_class_get(&rrs[i]) == LDNS_RR_CLASS_IN &&
		    zd_crr_type_get(&rrs[i]) == LDNS_RR_TYPE_NSEC && count++ == 0)
			f = i;
	if (ni->occluded) {
		if (count)
			chain_error(c, &c->walk, owner, olen, LDNS_RR_TYPE_NSEC,
			            "NSEC below a delegation point");
		return;
	}
	/* RFC 4034 s4.1.1: the next name in canonical order, the last one
	 * pointing back at the apex. */
	if (c->have_prev_nsec && !name_eq_nocase(c->prev_next, c->prev_next_len, owner, olen)) {
		c->cnt.chain++;
		if (sink_wants(&c->walk, DNSSEC_CRITICAL)) {
			char *a = name_str(c->prev_next, c->prev_next_len),
			     *z = name_str(owner, olen);
			sink_add(&c->walk, DNSSEC_CRITICAL, c->prev_nsec_owner,
			         c->prev_nsec_owner_len, LDNS_RR_TYPE_NSEC,
			         "NSEC next name %s, but the next name is %s", a ? a : "?",
			         z ? z : "?");
			free(a);
			free(z);
		} else {
			sink_add(&c->walk, DNSSEC_CRITICAL, owner, olen, LDNS_RR_TYPE_NSEC, "-");
		}
	}
	c->have_prev_nsec = 0;
	if (count == 0) {
		chain_error(c, &c->walk, owner, olen, LDNS_RR_TYPE_NSEC, "no NSEC at this name");
		return;
	}
	if (count > 1)
		chain_error(c, &c->walk, owner, olen, LDNS_RR_TYPE_NSEC,
		            "several NSEC records at this name");
	uint16_t len;
	const uint8_t *rd = zd_crr_rdata_get(&rrs[f], &len);
	size_t nlen = name_wire_len(rd, len);
	if (nlen == 0) {
		chain_error(c, &c->walk, owner, olen, LDNS_RR_TYPE_NSEC, "NSEC rdata is malformed");
		return;
	}
	expected_types(rrs, b, e, ni->deleg, 0, &c->bm);
	bitmap_check(&c->walk, &c->cnt, &c->bm, rd + nlen, len - nlen, owner, olen,
	             LDNS_RR_TYPE_NSEC, "NSEC");
	c->have_prev_nsec = 1;
	c->prev_nsec_owner = owner;
	c->prev_nsec_owner_len = olen;
	c->prev_next = rd;
	c->prev_next_len = nlen;
}

static void
nsec3_visit(struct check *c, size_t b, size_t e, const struct name_info *ni)
{
	const struct zd_crr *rrs = c->zs->rrs;
	const uint8_t *owner = rrs[b].wire;
	size_t olen = rrs[b].owner_len;

	if (ni->occluded) {
		if (ni->has_nsec3 || ni->has_nsec)
			chain_error(c, &c->walk, owner, olen,
			            ni->has_nsec3 ? LDNS_RR_TYPE_NSEC3 : LDNS_RR_TYPE_NSEC,
			            "NSEC3 or NSEC below a delegation point");
		return;
	}
	if (ni->has_nsec)
		chain_error(c, &c->walk, owner, olen, LDNS_RR_TYPE_NSEC, "NSEC in an NSEC3 zone");
	/* A name holding only NSEC3 (and its RRSIGs) is a hashed owner, not
	 * an original name. */
	if (!ni->apex && !ni->has_other && ni->has_nsec3) {
		for (size_t i = b; i < e && c->err == ZD_OK; i++)
			if (zd_crr_class_get(&rrs[i]) == LDNS_RR_CLASS_IN &&
			    zd_crr_type_get(&rrs[i]) == LDNS_RR_TYPE_NSEC3)
				nsec3_collect(c, i);
		return;
	}
	if (ni->has_nsec3)
		chain_error(c, &c->walk, owner, olen, LDNS_RR_TYPE_NSEC3,
		            "NSEC3 at a name that holds other data");
	enum kind k = ni->apex ? K_APEX : ni->deleg ? (ni->has_ds ? K_SDELEG : K_IDELEG) : K_AUTH;
	ent_visit(c, owner, olen, k != K_IDELEG);
	name_push(c, k, b);
	c->prev = owner;
	c->prev_len = olen;
}

static void
name_visit(struct check *c, size_t b, size_t e)
{
	const struct zd_crr *rrs = c->zs->rrs;
	const uint8_t *owner = rrs[b].wire;
	size_t olen = rrs[b].owner_len, rs = e, re = e, other_class = 0;
	struct name_info ni = {0};
	int has_ns = 0;

	if (!name_under(owner, olen, c->apex, c->apex_len)) {
		sink_add(&c->walk, DNSSEC_WARNING, owner, olen, zd_crr_type_get(&rrs[b]),
		         "%zu record(s) outside the zone, ignored", e - b);
		return;
	}
	ni.apex = olen == c->apex_len;
	ni.occluded = c->cut != NULL && name_under(owner, olen, c->cut, c->cut_len);
	for (size_t i = b; i < e; i++) {
		if (zd_crr_class_get(&rrs[i]) != LDNS_RR_CLASS_IN) {
			other_class++;
			continue;
		}
		switch (zd_crr_type_get(&rrs[i])) {
		case LDNS_RR_TYPE_RRSIG:
			if (rs == e)
				rs = i;
			re = i + 1;
			break;
		case LDNS_RR_TYPE_NSEC3:
			ni.has_nsec3 = 1;
			break;
		case LDNS_RR_TYPE_NS:
			has_ns = 1;
			ni.has_other = 1;
			break;
		case LDNS_RR_TYPE_DS:
			ni.has_ds = 1;
			ni.has_other = 1;
			break;
		case LDNS_RR_TYPE_NSEC:
			ni.has_nsec = 1;
			ni.has_other = 1;
			break;
		default:
			ni.has_other = 1;
			break;
		}
	}
	if (other_class)
		sink_add(&c->walk, DNSSEC_WARNING, owner, olen, 0,
		         "%zu record(s) of a class other than IN, ignored", other_class);
	/* RFC 4035 s2.2: at a delegation only DS and NSEC are authoritative;
	 * below it everything is occluded (glue). */
	ni.deleg = !ni.apex && !ni.occluded && has_ns;
	if (ni.deleg) {
		c->cut = owner;
		c->cut_len = olen;
	}

	size_t p = rs;
	for (size_t i = b; i < e && c->err == ZD_OK;) {
		if (zd_crr_class_get(&rrs[i]) != LDNS_RR_CLASS_IN) {
			i++;
			continue;
		}
		uint16_t t = zd_crr_type_get(&rrs[i]);
		size_t g = i + 1;
		while (g < e && zd_crr_class_get(&rrs[g]) == LDNS_RR_CLASS_IN &&
		       zd_crr_type_get(&rrs[g]) == t)
			g++;
		if (t != LDNS_RR_TYPE_RRSIG) {
			p = sigs_orphan(c, p, re, t, ni.occluded);
			size_t ps = p;
			while (p < re && covered_get(&rrs[p]) == t)
				p++;
			int auth = !ni.occluded &&
			           (!ni.deleg || t == LDNS_RR_TYPE_DS || t == LDNS_RR_TYPE_NSEC);
			if (auth)
				job_push(c, i, g - i, ps, p - ps, t, 1);
			else if (p > ps)
				misplaced(c, owner, olen, t, p - ps,
				          ni.occluded ? "occluded" : "the delegation's");
		}
		i = g;
	}
	sigs_orphan(c, p, re, 0x10000, ni.occluded);

	if (c->denial == DENIAL_NSEC)
		nsec_visit(c, b, e, &ni);
	else if (c->denial == DENIAL_NSEC3)
		nsec3_visit(c, b, e, &ni);
}

static void
walk(struct check *c)
{
	const struct zd_crr *rrs = c->zs->rrs;
	size_t n = c->zs->n;

	for (size_t i = 0; i < n && c->err == ZD_OK;) {
		size_t e = i + 1;
		while (e < n && rrs[e].owner_len == rrs[i].owner_len &&
		       memcmp(rrs[e].wire, rrs[i].wire, rrs[i].owner_len) == 0)
			e++;
		name_visit(c, i, e);
		i = e;
	}
	if (c->err != ZD_OK)
		return;
	while (c->depth > 0) {
		struct ent_frame *f = &c->stack[--c->depth];
		name_push(c, f->req ? K_ENT_REQ : K_ENT_OPT, f->off);
	}
	if (c->denial == DENIAL_NSEC && c->have_prev_nsec &&
	    !name_eq_nocase(c->prev_next, c->prev_next_len, c->apex, c->apex_len))
		chain_error(c, &c->walk, c->prev_nsec_owner, c->prev_nsec_owner_len,
		            LDNS_RR_TYPE_NSEC, "the last NSEC's next name is not the apex");
}

/* --- The apex ----------------------------------------------------------- */

static zd_err
apex_read(struct check *c)
{
	const struct zd_crr *rrs = c->zs->rrs;
	size_t n = c->zs->n, b = zoneset_owner_lower_bound(c->zs, c->zs->apex), e = b;
	size_t nsec = 0, nsec3 = 0, ndnskey = 0;

	while (e < n && rrs[e].owner_len == c->apex_len &&
	       memcmp(rrs[e].wire, c->apex, c->apex_len) == 0)
		e++;
	c->p_lo = c->p_hi = 0;
	for (size_t i = b; i < e; i++) {
		if (zd_crr_class_get(&rrs[i]) != LDNS_RR_CLASS_IN)
			continue;
		uint16_t t = zd_crr_type_get(&rrs[i]);
		if (t == LDNS_RR_TYPE_DNSKEY)
			ndnskey++;
		if (t == LDNS_RR_TYPE_NSEC3PARAM) {
			if (c->p_hi == 0)
				c->p_lo = i;
			c->p_hi = i + 1;
		}
	}
	if (ndnskey == 0)
		return ZD_OK;
	c->is_signed = 1;
	if ((c->keys = calloc(ndnskey, sizeof *c->keys)) == NULL ||
	    (c->signs_dnskey = calloc(ndnskey, 1)) == NULL)
		return ZD_ENOMEM;
	for (size_t i = b; i < e; i++) {
		if (zd_crr_class_get(&rrs[i]) != LDNS_RR_CLASS_IN ||
		    zd_crr_type_get(&rrs[i]) != LDNS_RR_TYPE_DNSKEY)
			continue;
		uint16_t len;
		const uint8_t *rd = zd_crr_rdata_get(&rrs[i], &len);
		if (len < 5) {
			sink_add(&c->walk, DNSSEC_CRITICAL, c->apex, c->apex_len,
			         LDNS_RR_TYPE_DNSKEY, "DNSKEY rdata is malformed (%u octets)", len);
			continue;
		}
		struct dkey *k = &c->keys[c->nkeys++];
		k->rd = rd;
		k->rdlen = len;
		k->flags = get16(rd);
		k->alg = rd[3];
		k->tag = ldns_calc_keytag_raw(rd, len);
		k->zone = (k->flags & KEY_ZONE) && rd[2] == 3;
		k->rr = i;
		if (!k->zone)
			continue;
		if (!alg_checked(k->alg)) {
			sink_add(&c->walk, DNSSEC_WARNING, c->apex, c->apex_len,
			         LDNS_RR_TYPE_DNSKEY,
			         "DNSKEY %u/%u: algorithm not supported here, its signatures are "
			         "not checked",
			         k->alg, k->tag);
		} else {
			EVP_PKEY *p = pkey_new(k->alg, rd + 4, len - 4u);
			if (p == NULL)
				sink_add(&c->walk, DNSSEC_CRITICAL, c->apex, c->apex_len,
				         LDNS_RR_TYPE_DNSKEY,
				         "DNSKEY %u/%u: public key does not parse", k->alg, k->tag);
			k->checked = p != NULL;
			EVP_PKEY_free(p);
		}
		int known = 0;
		for (size_t a = 0; a < c->n_zone_algs; a++)
			known |= c->zone_algs[a] == k->alg;
		if (!known)
			c->zone_algs[c->n_zone_algs++] = k->alg;
	}
	qsort(c->keys, c->nkeys, sizeof *c->keys, key_cmp);
	if (c->n_zone_algs == 0)
		sink_add(&c->walk, DNSSEC_CRITICAL, c->apex, c->apex_len, LDNS_RR_TYPE_DNSKEY,
		         "no DNSKEY with the zone-key flag and protocol 3");

	/* Which denial of existence the zone uses. */
	if (c->p_hi > 0) {
		uint16_t len;
		const uint8_t *rd = zd_crr_rdata_get(&rrs[c->p_lo], &len);
		if (c->p_hi - c->p_lo > 1)
			sink_add(&c->walk, DNSSEC_WARNING, c->apex, c->apex_len,
			         LDNS_RR_TYPE_NSEC3PARAM,
			         "%zu NSEC3PARAM records: only the first one's chain is checked",
			         c->p_hi - c->p_lo);
		if (len < 5 || len != 5u + rd[4]) {
			chain_error(c, &c->walk, c->apex, c->apex_len, LDNS_RR_TYPE_NSEC3PARAM,
			            "NSEC3PARAM rdata is malformed: NSEC3 chain not checked");
		} else if (rd[0] != NSEC3_SHA1) {
			c->cnt.chain++;
			sink_add(&c->walk, DNSSEC_CRITICAL, c->apex, c->apex_len,
			         LDNS_RR_TYPE_NSEC3PARAM,
			         "NSEC3 hash algorithm %u is unknown: chain not checked", rd[0]);
		} else if (get16(rd + 2) > NSEC3_ITER_MAX) {
			c->cnt.chain++;
			sink_add(&c->walk, DNSSEC_CRITICAL, c->apex, c->apex_len,
			         LDNS_RR_TYPE_NSEC3PARAM,
			         "%u NSEC3 iterations, above %u (RFC 9276 s3.2): chain not checked",
			         get16(rd + 2), NSEC3_ITER_MAX);
		} else {
			c->denial = DENIAL_NSEC3;
			c->iter = get16(rd + 2);
			c->saltlen = rd[4];
			c->salt = rd + 5;
		}
		return ZD_OK;
	}
	for (size_t i = 0; i < n; i++) {
		uint16_t t = zd_crr_type_get(&rrs[i]);
		nsec += t == LDNS_RR_TYPE_NSEC;
		nsec3 += t == LDNS_RR_TYPE_NSEC3;
	}
	if (nsec > 0)
		c->denial = DENIAL_NSEC;
	else
		chain_error(c, &c->walk, c->apex, c->apex_len,
		            nsec3 ? LDNS_RR_TYPE_NSEC3PARAM : LDNS_RR_TYPE_NSEC,
		            nsec3 ? "NSEC3 records, but no NSEC3PARAM at the apex"
		                  : "signed zone without NSEC or NSEC3 records");
	return ZD_OK;
}

/* --- Pass 3: the NSEC3 chain -------------------------------------------- */

static int
name_ent_cmp(const void *a, const void *b)
{
	return memcmp(((const struct name_ent *)a)->hash, ((const struct name_ent *)b)->hash,
	              HASH_LEN);
}

static int
n3_ent_cmp(const void *a, const void *b)
{
	const struct n3_ent *x = a, *y = b;
	int r = memcmp(x->hash, y->hash, HASH_LEN);
	return r ? r : (x->rr < y->rr ? -1 : (x->rr > y->rr));
}

static void
name_wire(const struct check *c, const struct name_ent *ne, const uint8_t **p, size_t *len)
{
	if (ne->kind == K_ENT_REQ || ne->kind == K_ENT_OPT) {
		*p = c->ent + ne->ref;
		*len = name_wire_len(*p, c->ent_len - ne->ref);
	} else {
		*p = c->zs->rrs[ne->ref].wire;
		*len = c->zs->rrs[ne->ref].owner_len;
	}
}

static void
n3_rd(const struct check *c, const struct n3_ent *x, struct n3rd *n)
{
	uint16_t len;
	const uint8_t *rd = zd_crr_rdata_get(&c->zs->rrs[x->rr], &len);
	memset(n, 0, sizeof *n);
	(void)nsec3_parse(rd, len, n); /* collected only when it parses */
}

static void
nsec3_ring(struct check *c)
{
	const struct zd_crr *rrs = c->zs->rrs;
	size_t m = c->nn3;
	char a[HASH_B32 + 1], b[2 * 255];

	for (size_t i = 0; i < m;) {
		size_t j = i + 1;
		while (j < m && memcmp(c->n3s[j].hash, c->n3s[i].hash, HASH_LEN) == 0)
			j++;
		const struct zd_crr *r = &rrs[c->n3s[i].rr];
		if (j - i > 1)
			chain_error(c, &c->post, r->wire, r->owner_len, LDNS_RR_TYPE_NSEC3,
			            "several NSEC3 records at this name");
		/* RFC 5155 s7.1: the next owner in hash order; the last points to
		 * the first. */
		const uint8_t *want = c->n3s[j % m].hash;
		for (size_t x = i; x < j; x++) {
			struct n3rd n;
			n3_rd(c, &c->n3s[x], &n);
			if (n.hlen == HASH_LEN && memcmp(n.next, want, HASH_LEN) == 0)
				continue;
			c->cnt.chain++;
			b32hex_encode(n.next, n.hlen, b);
			b32hex_encode(want, HASH_LEN, a);
			sink_add(&c->post, DNSSEC_CRITICAL, r->wire, r->owner_len,
			         LDNS_RR_TYPE_NSEC3,
			         "next hashed owner %s, but the next NSEC3 is %s", b, a);
		}
		i = j;
	}
}

static void
nsec3_missing(struct check *c, const struct name_ent *ne, size_t j)
{
	const uint8_t *p;
	size_t len, m = c->nn3;
	char h[HASH_B32 + 1];
	int required = ne->kind != K_IDELEG && ne->kind != K_ENT_OPT;

	name_wire(c, ne, &p, &len);
	b32hex_encode(ne->hash, HASH_LEN, h);
	if (required) {
		c->cnt.chain++;
		sink_add(&c->post, DNSSEC_CRITICAL, p, len, LDNS_RR_TYPE_NSEC3,
		         "no NSEC3 for this name (hash %s)", h);
		return;
	}
	/* RFC 5155 s6, s7.1: opted out, so the NSEC3 covering it says so. */
	if (m > 0) {
		struct n3rd n;
		n3_rd(c, &c->n3s[j == 0 ? m - 1 : j - 1], &n);
		if (n.flags & LDNS_NSEC3_VARS_OPTOUT_MASK)
			return;
	}
	c->cnt.chain++;
	sink_add(&c->post, DNSSEC_CRITICAL, p, len, LDNS_RR_TYPE_NSEC3,
	         "no NSEC3 for this %s (hash %s), and the covering NSEC3 has no opt-out flag",
	         ne->kind == K_IDELEG ? "insecure delegation" : "empty non-terminal", h);
}

static void
nsec3_match(struct check *c, const struct name_ent *ne, const struct n3_ent *x)
{
	const struct zd_crr *rrs = c->zs->rrs;
	const uint8_t *p;
	size_t len;
	struct n3rd n;

	name_wire(c, ne, &p, &len);
	n3_rd(c, x, &n);
	if (ne->kind == K_ENT_REQ || ne->kind == K_ENT_OPT) {
		bmap_reset(&c->bm);
	} else {
		size_t b = ne->ref, e = b + 1;
		while (e < c->zs->n && rrs[e].owner_len == rrs[b].owner_len &&
		       memcmp(rrs[e].wire, rrs[b].wire, rrs[b].owner_len) == 0)
			e++;
		expected_types(rrs, b, e, ne->kind == K_SDELEG || ne->kind == K_IDELEG, 1, &c->bm);
	}
	bitmap_check(&c->post, &c->cnt, &c->bm, n.bm, n.bmlen, p, len, LDNS_RR_TYPE_NSEC3, "NSEC3");
}

static zd_err
nsec3_finish(struct check *c, struct worker *ws, unsigned nt)
{
	const struct zd_crr *rrs = c->zs->rrs;
	size_t nn = c->nnames, m = c->nn3, i = 0, j = 0;
	int sorted = 1;

	if (nn < nt * 64u)
		nt = 1;
	for (unsigned t = 0; t < nt; t++) {
		ws[t].lo = nn * t / nt;
		ws[t].hi = nn * (t + 1) / nt;
	}
	run_parallel(hash_main, ws, nt);
	for (unsigned t = 0; t < nt; t++)
		if (ws[t].err != ZD_OK)
			return ws[t].err;
	qsort(c->names, nn, sizeof *c->names, name_ent_cmp);
	for (size_t x = 1; x < m && sorted; x++)
		sorted = n3_ent_cmp(&c->n3s[x - 1], &c->n3s[x]) < 0;
	if (!sorted)
		qsort(c->n3s, m, sizeof *c->n3s, n3_ent_cmp);

	nsec3_ring(c);
	while (i < nn || j < m) {
		int cmp = i == nn  ? 1
		          : j == m ? -1
		                   : memcmp(c->names[i].hash, c->n3s[j].hash, HASH_LEN);
		if (cmp < 0) {
			nsec3_missing(c, &c->names[i++], j);
		} else if (cmp > 0) {
			const struct zd_crr *r = &rrs[c->n3s[j++].rr];
			chain_error(c, &c->post, r->wire, r->owner_len, LDNS_RR_TYPE_NSEC3,
			            "NSEC3 is the hash of no name in the zone");
		} else {
			size_t k = j;
			for (; k < m && memcmp(c->n3s[k].hash, c->n3s[j].hash, HASH_LEN) == 0; k++)
				nsec3_match(c, &c->names[i], &c->n3s[k]);
			i++;
			j = k;
		}
	}
	if (c->other_chain > 0)
		sink_add(&c->post, DNSSEC_WARNING, c->apex, c->apex_len, LDNS_RR_TYPE_NSEC3,
		         "%llu NSEC3 records of another NSEC3PARAM not checked",
		         (unsigned long long)c->other_chain);
	return c->post.enomem ? ZD_ENOMEM : ZD_OK;
}

/* --- Parent DS (RFC 4034 s5, RFC 4509) ------------------------------- */

static void
ds_error(struct check *c, const ldns_rr *ds, const char *what, unsigned tag, unsigned alg,
         unsigned dt)
{
	const ldns_rdf *o = ldns_rr_owner(ds);

	c->cnt.ds++;
	sink_add(&c->post, DNSSEC_CRITICAL, ldns_rdf_data(o), ldns_rdf_size(o), LDNS_RR_TYPE_DS,
	         "DS %u %u %u: %s", tag, alg, dt, what);
}

static zd_err
ds_check(struct check *c)
{
	const ldns_rr_list *l = c->o->parent_ds;
	size_t nds = l ? ldns_rr_list_rr_count(l) : 0;

	if (nds == 0)
		return ZD_OK;
	if (!c->is_signed) {
		c->cnt.ds += nds;
		sink_add(&c->post, DNSSEC_CRITICAL, c->apex, c->apex_len, LDNS_RR_TYPE_DS,
		         "the parent has %zu DS record(s), but the zone has no DNSKEY RRset", nds);
		return ZD_OK;
	}
	for (size_t d = 0; d < nds; d++) {
		const ldns_rr *ds = ldns_rr_list_rr(l, d);
		const ldns_rdf *f0 = ldns_rr_rdf(ds, 0), *f1 = ldns_rr_rdf(ds, 1),
		               *f2 = ldns_rr_rdf(ds, 2), *f3 = ldns_rr_rdf(ds, 3);
		if (ldns_rr_get_type(ds) != LDNS_RR_TYPE_DS || ldns_rr_rd_count(ds) != 4 ||
		    ldns_rdf_size(f0) != 2 || ldns_rdf_size(f1) != 1 || ldns_rdf_size(f2) != 1) {
			ds_error(c, ds, "not a well-formed DS record", 0, 0, 0);
			continue;
		}
		uint16_t tag = get16(ldns_rdf_data(f0));
		uint8_t alg = ldns_rdf_data(f1)[0], dt = ldns_rdf_data(f2)[0];
		if (ldns_dname_compare(ldns_rr_owner(ds), c->zs->apex) != 0) {
			ds_error(c, ds, "owner is not the zone apex", tag, alg, dt);
			continue;
		}
		if (dt != LDNS_SHA1 && dt != LDNS_SHA256 && dt != LDNS_SHA384) {
			sink_add(&c->post, DNSSEC_WARNING, c->apex, c->apex_len, LDNS_RR_TYPE_DS,
			         "DS %u %u %u: digest type not supported here, not checked", tag,
			         alg, dt);
			continue;
		}
		size_t lo, nk = key_range(c, tag, alg, &lo), match = SIZE_MAX;
		for (size_t k = lo; k < lo + nk && match == SIZE_MAX; k++) {
			ldns_rr *key = zoneset_rr_to_ldns(&c->zs->rrs[c->keys[k].rr]);
			if (key == NULL)
				return ZD_ENOMEM;
			ldns_rr *calc = ldns_key_rr2ds(key, (ldns_hash)dt);
			ldns_rr_free(key);
			if (calc == NULL)
				return ZD_ENOMEM;
			const ldns_rdf *g = ldns_rr_rdf(calc, 3);
			if (g != NULL && ldns_rdf_size(g) == ldns_rdf_size(f3) &&
			    memcmp(ldns_rdf_data(g), ldns_rdf_data(f3), ldns_rdf_size(g)) == 0)
				match = k;
			ldns_rr_free(calc);
		}
		if (match == SIZE_MAX) {
			ds_error(c, ds, "matches no DNSKEY at the apex", tag, alg, dt);
		} else if (!c->keys[match].zone) {
			ds_error(c, ds, "its DNSKEY is not a zone key", tag, alg, dt);
		} else if (!c->signs_dnskey[match]) {
			ds_error(c, ds,
			         "its DNSKEY does not sign the DNSKEY RRset with a valid RRSIG",
			         tag, alg, dt);
		} else if (!(c->keys[match].flags & KEY_SEP)) {
			sink_add(&c->post, DNSSEC_WARNING, c->apex, c->apex_len, LDNS_RR_TYPE_DS,
			         "DS %u %u %u: its DNSKEY has no SEP flag", tag, alg, dt);
		}
	}
	return c->post.enomem ? ZD_ENOMEM : ZD_OK;
}

/* --- Driver -------------------------------------------------------------- */

static void
counts_add(struct counts *to, const struct counts *from)
{
	to->rrsigs += from->rrsigs;
	to->valid += from->valid;
	to->bogus += from->bogus;
	to->expired += from->expired;
	to->expiring += from->expiring;
	to->unsig += from->unsig;
	to->chain += from->chain;
	to->ds += from->ds;
	to->misplaced += from->misplaced;
	if (from->min_remaining < to->min_remaining)
		to->min_remaining = from->min_remaining;
}

static zd_err
workers_init(struct worker *ws, unsigned nt, const struct check *c)
{
	for (unsigned t = 0; t < nt; t++) {
		struct worker *w = &ws[t];
		w->c = c;
		sink_init(&w->sink, c->o->max_problems);
		w->cnt.min_remaining = INT64_MAX;
		if ((w->data = ldns_buffer_new(4096)) == NULL ||
		    (w->sig = ldns_buffer_new(256)) == NULL ||
		    (c->nkeys > 0 && ((w->pkeys = calloc(c->nkeys, sizeof *w->pkeys)) == NULL ||
		                      (w->pkey_state = calloc(c->nkeys, 1)) == NULL)))
			return ZD_ENOMEM;
	}
	return ZD_OK;
}

static void
workers_clear(struct worker *ws, unsigned nt, size_t nkeys)
{
	for (unsigned t = 0; t < nt; t++) {
		struct worker *w = &ws[t];
		for (size_t k = 0; w->pkeys != NULL && k < nkeys; k++)
			EVP_PKEY_free(w->pkeys[k]);
		free(w->pkeys);
		free(w->pkey_state);
		if (w->data)
			ldns_buffer_free(w->data);
		if (w->sig)
			ldns_buffer_free(w->sig);
		sink_clear(&w->sink);
	}
}

/* Slices of about equal signature counts, cut between jobs. */
static void
verify_split(struct worker *ws, unsigned nt, const struct check *c)
{
	uint64_t total = 0, acc = 0;
	size_t j = 0;

	for (size_t i = 0; i < c->njobs; i++)
		total += c->jobs[i].nsig + 1u;
	for (unsigned t = 0; t < nt; t++) {
		uint64_t until = total * (t + 1) / nt;
		ws[t].lo = j;
		while (j < c->njobs && (acc < until || t + 1 == nt))
			acc += c->jobs[j++].nsig + 1u;
		ws[t].hi = j;
	}
}

static zd_err
report_build(struct check *c, struct worker *ws, unsigned nt, struct dnssec_report *r)
{
	struct sink *order[THREADS_MAX + 2];
	size_t ns = 0, cap = c->o->max_problems, kept = 0;

	memset(r, 0, sizeof *r);
	order[ns++] = &c->walk;
	for (unsigned t = 0; t < nt; t++)
		order[ns++] = &ws[t].sink;
	order[ns++] = &c->post;
	for (size_t s = 0; s < ns; s++) {
		kept += order[s]->lists[0].n + order[s]->lists[1].n;
		r->problems_total += order[s]->total;
		if (order[s]->worst > r->severity)
			r->severity = order[s]->worst;
	}
	if (kept > cap)
		kept = cap;
	if (kept > 0 && (r->problems = calloc(kept, sizeof *r->problems)) == NULL)
		return ZD_ENOMEM;
	for (int l = 0; l < 2; l++)
		for (size_t s = 0; s < ns; s++) {
			struct plist *pl = &order[s]->lists[l];
			size_t w = 0;
			for (size_t i = 0; i < pl->n; i++) {
				if (r->n_problems < kept)
					r->problems[r->n_problems++] = pl->v[i]; /* moved */
				else
					pl->v[w++] = pl->v[i]; /* stays, freed with the sink */
			}
			pl->n = w;
		}
	for (unsigned t = 0; t < nt; t++)
		counts_add(&c->cnt, &ws[t].cnt);
	r->is_signed = c->is_signed;
	r->rrsigs = c->cnt.rrsigs;
	r->rrsigs_valid = c->cnt.valid;
	r->bogus = c->cnt.bogus;
	r->expired = c->cnt.expired;
	r->expiring = c->cnt.expiring;
	r->unsigned_rrsets = c->cnt.unsig;
	r->chain_errors = c->cnt.chain;
	r->ds_errors = c->cnt.ds;
	r->misplaced = c->cnt.misplaced;
	r->min_remaining = c->cnt.min_remaining;
	return ZD_OK;
}

zd_err
dnssec_zone_check(const struct zoneset *zs, const struct dnssec_check_opts *o,
                  struct dnssec_report *out)
{
	struct check *c = NULL;
	struct worker *ws = NULL;
	struct dnssec_report r;
	unsigned nt;
	zd_err e;

	if (zd_check_failed(zs != NULL && o != NULL && out != NULL && zs->finished))
		return ZD_EBUG;
	if (zs->n > UINT32_MAX)
		return ZD_ELIMIT;
	nt = o->threads == 0 ? 1 : o->threads > THREADS_MAX ? THREADS_MAX : o->threads;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return ZD_ENOMEM;
	c->zs = zs;
	c->o = o;
	c->now = o->now;
	c->apex = ldns_rdf_data(zs->apex);
	c->apex_len = ldns_rdf_size(zs->apex);
	c->apex_labels = name_label_count(c->apex, c->apex_len);
	c->cnt.min_remaining = INT64_MAX;
	sink_init(&c->walk, o->max_problems);
	sink_init(&c->post, o->max_problems);

	if ((e = apex_read(c)) != ZD_OK)
		goto out;
	walk(c);
	e = c->err != ZD_OK ? c->err : c->walk.enomem ? ZD_ENOMEM : ZD_OK;
	if (e != ZD_OK)
		goto out;
	if ((ws = calloc(nt, sizeof *ws)) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	if ((e = workers_init(ws, nt, c)) != ZD_OK)
		goto out;
	unsigned vt = c->njobs < nt * 16u ? 1 : nt;
	verify_split(ws, vt, c);
	run_parallel(verify_main, ws, vt);
	for (unsigned t = 0; t < vt; t++)
		if ((e = ws[t].err) != ZD_OK)
			goto out;
	if (c->denial == DENIAL_NSEC3 && (e = nsec3_finish(c, ws, nt)) != ZD_OK)
		goto out;
	if ((e = ds_check(c)) != ZD_OK)
		goto out;
	if ((e = report_build(c, ws, nt, &r)) != ZD_OK)
		goto out;
	*out = r;
out:
	if (ws != NULL)
		workers_clear(ws, nt, c->nkeys);
	free(ws);
	sink_clear(&c->walk);
	sink_clear(&c->post);
	free(c->keys);
	free(c->signs_dnskey);
	free(c->jobs);
	free(c->names);
	free(c->n3s);
	free(c->ent);
	free(c);
	return e;
}

void
dnssec_report_clear(struct dnssec_report *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_problems; i++) {
		free(r->problems[i].owner);
		free(r->problems[i].what);
	}
	free(r->problems);
	memset(r, 0, sizeof *r);
}
