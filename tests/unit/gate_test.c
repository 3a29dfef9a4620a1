/* Unit tests of server/gate, the DNSSEC validation gate.  The signed zones
 * are made here with ldns and software keys, not with the project's signer:
 * a small test signer below (NSEC3 with and without opt-out, NSEC), and
 * ldns's own zone signer for one more opinion.  Each zone is loaded into a
 * store as version 1; changes go on top as a txn holding only the RRsets
 * that differ.  Failure paths first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/gate.h"
#include "server/store.h"

#define APEX    "tld."
#define N_DELEG 50

static uint32_t now_s;

/* --- names and records ---------------------------------------------- */

static ldns_rdf *
dname(const char *text)
{
	ldns_rdf *d = NULL;
	assert_int_equal(ldns_str2rdf_dname(&d, text), LDNS_STATUS_OK);
	ldns_dname2canonical(d);
	return d;
}

static ldns_rr *
rr(const char *text)
{
	ldns_rr *r = NULL;
	assert_int_equal(ldns_rr_new_frm_str(&r, text, 3600, NULL, NULL), LDNS_STATUS_OK);
	ldns_rr2canonical(r);
	return r;
}

static void
push(ldns_rr_list *l, ldns_rr *r)
{
	assert_true(ldns_rr_list_push_rr(l, r)); /* l owns r now */
}

static uint16_t
covered_of(const ldns_rr *r)
{
	return ldns_rr_get_type(r) == LDNS_RR_TYPE_RRSIG
	               ? ldns_rdf2native_int16(ldns_rr_rrsig_typecovered(r))
	               : 0;
}

static int
same_set(const ldns_rr *r, const ldns_rdf *owner, uint16_t type, uint16_t covered)
{
	return ldns_dname_compare(ldns_rr_owner(r), owner) == 0 && ldns_rr_get_type(r) == type &&
	       covered_of(r) == covered;
}

/* --- keys ------------------------------------------------------------ */

struct keys {
	ldns_key *k[4];
	size_t n;
	ldns_key_list *ksk, *zsk; /* borrowed keys; emptied before free */
	ldns_rr_list *dnskeys;
	size_t published; /* the first this many of dnskeys are in the zone; 0: all */
};

static void
key_add(struct keys *ks, ldns_signing_algorithm alg, uint16_t bits, uint16_t flags)
{
	ldns_key *k = ldns_key_new_frm_algorithm(alg, bits);
	assert_non_null(k);
	ldns_key_set_flags(k, flags);
	ldns_key_set_pubkey_owner(k, dname(APEX)); /* k owns it */
	ldns_key_set_inception(k, now_s - 3600);
	ldns_key_set_expiration(k, now_s + 30 * 86400);
	ldns_rr *r = ldns_key2rr(k);
	assert_non_null(r);
	ldns_rr_set_ttl(r, 3600);
	ldns_key_set_keytag(k, ldns_calc_keytag(r));
	push(ks->dnskeys, r);
	ks->k[ks->n++] = k;
	assert_true(ldns_key_list_push_key(flags & LDNS_KEY_SEP_KEY ? ks->ksk : ks->zsk, k));
}

/* One KSK and one ZSK per algorithm. */
static void
keys_make(struct keys *ks, ldns_signing_algorithm a1, ldns_signing_algorithm a2)
{
	memset(ks, 0, sizeof *ks);
	ks->ksk = ldns_key_list_new();
	ks->zsk = ldns_key_list_new();
	ks->dnskeys = ldns_rr_list_new();
	ldns_signing_algorithm algs[2] = {a1, a2};
	for (int i = 0; i < 2 && algs[i] != 0; i++) {
		uint16_t bits = algs[i] == LDNS_SIGN_RSASHA256 ? 1024 : 256;
		key_add(ks, algs[i], bits, 257);
		key_add(ks, algs[i], bits, 256);
	}
}

static void
keys_free(struct keys *ks)
{
	/* The lists borrow the keys: empty them (ldns_key_list_pop_key
	 * frees the array it later frees again when it empties it). */
	ldns_key_list_set_key_count(ks->ksk, 0);
	ldns_key_list_set_key_count(ks->zsk, 0);
	ldns_key_list_free(ks->ksk);
	ldns_key_list_free(ks->zsk);
	for (size_t i = 0; i < ks->n; i++)
		ldns_key_deep_free(ks->k[i]);
	ldns_rr_list_deep_free(ks->dnskeys);
}

/* --- the unsigned zone ------------------------------------------------ */

/* A TLD: apex with its name servers under the empty non-terminal nic.tld,
 * N_DELEG delegations (every third with DS, every fifth with glue), one
 * insecure delegation under the empty non-terminal sub.tld, a wildcard. */
static ldns_rr_list *
zone_base(void)
{
	ldns_rr_list *l = ldns_rr_list_new();
	char text[300];

	push(l, rr("tld. 3600 IN SOA ns1.nic.tld. hostmaster.nic.tld. 1 3600 900 604800 600"));
	push(l, rr("tld. 3600 IN NS ns1.nic.tld."));
	push(l, rr("tld. 3600 IN NS ns2.nic.tld."));
	push(l, rr("ns1.nic.tld. 3600 IN A 192.0.2.1"));
	push(l, rr("ns2.nic.tld. 3600 IN A 192.0.2.2"));
	push(l, rr("ns2.nic.tld. 3600 IN AAAA 2001:db8::2"));
	push(l, rr("x.sub.tld. 3600 IN NS ns.ext.net."));
	push(l, rr("*.w.tld. 3600 IN TXT \"wild\""));
	for (int i = 0; i < N_DELEG; i++) {
		if (i % 5 == 0) {
			snprintf(text, sizeof text, "d%02d.tld. 3600 IN NS ns1.d%02d.tld.", i, i);
			push(l, rr(text));
			snprintf(text, sizeof text, "ns1.d%02d.tld. 3600 IN A 198.51.100.%d", i, i);
			push(l, rr(text));
		}
		snprintf(text, sizeof text, "d%02d.tld. 3600 IN NS ns.ext.net.", i);
		push(l, rr(text));
		if (i % 3 == 0) {
			snprintf(text, sizeof text,
			         "d%02d.tld. 3600 IN DS %d 13 2 "
			         "%064d",
			         i, 1000 + i, i);
			push(l, rr(text));
		}
	}
	return l;
}

/* --- a test signer ------------------------------------------------------ */

struct zopt {
	int nsec3, opt_out;
	uint16_t iterations;
	const char *salt_hex; /* "-" for none */
	uint8_t salt[8];
	uint8_t salt_len;
};

static const struct zopt OPT_OUT = {1, 1, 0, "-", {0}, 0};
static const struct zopt NO_OPT_OUT = {1, 0, 5, "aabbccdd", {0xaa, 0xbb, 0xcc, 0xdd}, 4};
static const struct zopt USE_NSEC = {0, 0, 0, "-", {0}, 0};

struct tname {
	ldns_rdf *name; /* owned */
	uint16_t types[32];
	size_t n_types;
	int data, occluded, deleg, ds, apex, needs;
	char hash[64];
};

static int
tname_cmp(const void *a, const void *b)
{
	return ldns_dname_compare(((const struct tname *)a)->name, ((const struct tname *)b)->name);
}

static int
tname_find(struct tname *v, size_t n, const ldns_rdf *name)
{
	for (size_t i = 0; i < n; i++)
		if (ldns_dname_compare(v[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void
types_text(const struct tname *t, int with_rrsig, int with_nsec, char *out, size_t cap)
{
	out[0] = '\0';
	for (size_t i = 0; i < t->n_types; i++) {
		char *s = ldns_rr_type2str((ldns_rr_type)t->types[i]);
		strncat(out, " ", cap - strlen(out) - 1);
		strncat(out, s, cap - strlen(out) - 1);
		free(s);
	}
	if (with_nsec)
		strncat(out, " NSEC", cap - strlen(out) - 1);
	if (with_rrsig)
		strncat(out, " RRSIG", cap - strlen(out) - 1);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
hash_label(const ldns_rdf *name, const struct zopt *o, char *out, size_t cap)
{
	ldns_rdf *h = ldns_nsec3_hash_name(name, 1, o->iterations, o->salt_len, o->salt);
	char *s = ldns_rdf2str(h);
	snprintf(out, cap, "%s", s);
	out[strlen(out) - 1] = '\0'; /* the root dot */
	free(s);
	ldns_rdf_deep_free(h);
}

/* Whether the RRset (type) at name t must be signed (RFC 4035 s2.2). */
static int
must_sign(const struct tname *t, uint16_t type)
{
	if (t->occluded)
		return 0;
	if (t->deleg)
		return type == LDNS_RR_TYPE_DS || type == LDNS_RR_TYPE_NSEC;
	return 1;
}

/* Sign the RRset (owner, type) of l with ks (DNSKEY: the KSKs) and push
 * the signatures. */
static void
sign_set(ldns_rr_list *l, struct keys *ks, const ldns_rdf *owner, uint16_t type)
{
	ldns_rr_list *set = ldns_rr_list_new();
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++)
		if (same_set(ldns_rr_list_rr(l, i), owner, type, 0))
			assert_true(
			        ldns_rr_list_push_rr(set, ldns_rr_list_rr(l, i))); /* borrowed */
	assert_true(ldns_rr_list_rr_count(set) > 0);
	ldns_rr_list *sigs = ldns_sign_public(set, type == LDNS_RR_TYPE_DNSKEY ? ks->ksk : ks->zsk);
	assert_non_null(sigs);
	assert_true(ldns_rr_list_rr_count(sigs) > 0);
	for (size_t i = 0; i < ldns_rr_list_rr_count(sigs); i++)
		push(l, ldns_rr_list_rr(sigs, i));
	ldns_rr_list_free(sigs); /* the RRs moved to l */
	ldns_rr_list_free(set);
}

/* The zone of unsigned RRs u (borrowed), signed: DNSKEYs, NSEC3PARAM,
 * the denial chain and RRSIGs.  A new list the caller deep-frees. */
static ldns_rr_list *
zone_sign(const ldns_rr_list *u, struct keys *ks, const struct zopt *o)
{
	ldns_rr_list *l = ldns_rr_list_clone(u);
	ldns_rdf *apex = dname(APEX);
	char text[1024], types[512];

	ldns_rr_list *dk = ldns_rr_list_clone(ks->dnskeys);
	for (size_t i = 0; i < ldns_rr_list_rr_count(dk); i++) {
		if (ks->published == 0 || i < ks->published)
			push(l, ldns_rr_list_rr(dk, i));
		else
			ldns_rr_free(ldns_rr_list_rr(dk, i));
	}
	ldns_rr_list_free(dk);
	if (o->nsec3) {
		snprintf(text, sizeof text, "tld. 3600 IN NSEC3PARAM 1 0 %u %s", o->iterations,
		         o->salt_hex);
		push(l, rr(text));
	}

	/* names, canonical order, with empty non-terminals */
	size_t cap = 4 * ldns_rr_list_rr_count(l) + 8, n = 0;
	struct tname *v = calloc(cap, sizeof *v);
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		const ldns_rr *r = ldns_rr_list_rr(l, i);
		int k = tname_find(v, n, ldns_rr_owner(r));
		if (k < 0) {
			k = (int)n++;
			v[k].name = ldns_rdf_clone(ldns_rr_owner(r));
		}
		struct tname *t = &v[k];
		uint16_t ty = ldns_rr_get_type(r);
		size_t j = 0;
		while (j < t->n_types && t->types[j] < ty)
			j++;
		if (j == t->n_types || t->types[j] != ty) {
			memmove(t->types + j + 1, t->types + j, (t->n_types - j) * 2);
			t->types[j] = ty;
			t->n_types++;
		}
		t->data = 1;
	}
	size_t n_data = n;
	for (size_t i = 0; i < n_data; i++) {
		ldns_rdf *a = ldns_dname_left_chop(v[i].name);
		while (a != NULL && ldns_dname_is_subdomain(a, apex)) {
			if (tname_find(v, n, a) < 0) {
				v[n++].name = a;
				a = ldns_dname_left_chop(a);
				continue;
			}
			ldns_rdf *up = ldns_dname_left_chop(a);
			ldns_rdf_deep_free(a);
			a = up;
		}
		ldns_rdf_deep_free(a);
	}
	qsort(v, n, sizeof *v, tname_cmp);
	const ldns_rdf *cut = NULL;
	for (size_t i = 0; i < n; i++) {
		struct tname *t = &v[i];
		t->apex = ldns_dname_compare(t->name, apex) == 0;
		t->occluded = cut != NULL && ldns_dname_is_subdomain(t->name, cut);
		for (size_t j = 0; j < t->n_types; j++) {
			t->deleg |= !t->apex && t->types[j] == LDNS_RR_TYPE_NS;
			t->ds |= t->types[j] == LDNS_RR_TYPE_DS;
		}
		if (t->deleg && !t->occluded)
			cut = t->name;
	}

	if (!o->nsec3) {
		size_t first = n, prev = n;
		for (size_t i = 0; i < n; i++) {
			if (!v[i].data || v[i].occluded)
				continue;
			if (prev < n) {
				char *nx = ldns_rdf2str(v[i].name),
				     *ow = ldns_rdf2str(v[prev].name);
				types_text(&v[prev], 1, 1, types, sizeof types);
				snprintf(text, sizeof text, "%s 600 IN NSEC %s%s", ow, nx, types);
				push(l, rr(text));
				free(nx);
				free(ow);
			} else {
				first = i;
			}
			prev = i;
		}
		char *nx = ldns_rdf2str(v[first].name), *ow = ldns_rdf2str(v[prev].name);
		types_text(&v[prev], 1, 1, types, sizeof types);
		snprintf(text, sizeof text, "%s 600 IN NSEC %s%s", ow, nx, types);
		push(l, rr(text));
		free(nx);
		free(ow);
	} else {
		/* RFC 5155 s7.1: names with data, minus insecure delegations
		 * under opt-out, plus the empty non-terminals above them. */
		for (size_t i = 0; i < n; i++) {
			struct tname *t = &v[i];
			if (!t->data || t->occluded)
				continue;
			if (!t->apex && o->opt_out && t->deleg && !t->ds)
				continue;
			t->needs = 1;
			ldns_rdf *a = ldns_dname_left_chop(t->name);
			while (a != NULL && ldns_dname_is_subdomain(a, apex)) {
				int k = tname_find(v, n, a);
				if (!v[k].data)
					v[k].needs = 1;
				ldns_rdf *up = ldns_dname_left_chop(a);
				ldns_rdf_deep_free(a);
				a = up;
			}
			ldns_rdf_deep_free(a);
		}
		char **labels = calloc(n, sizeof *labels);
		size_t nl = 0;
		for (size_t i = 0; i < n; i++)
			if (v[i].needs) {
				hash_label(v[i].name, o, v[i].hash, sizeof v[i].hash);
				labels[nl++] = v[i].hash;
			}
		qsort(labels, nl, sizeof *labels, str_cmp);
		for (size_t i = 0; i < n; i++) {
			if (!v[i].needs)
				continue;
			size_t k = 0;
			while (strcmp(labels[k], v[i].hash) != 0)
				k++;
			int sig = v[i].data && (!v[i].deleg || v[i].ds);
			types_text(&v[i], sig, 0, types, sizeof types);
			snprintf(text, sizeof text, "%s.tld. 600 IN NSEC3 1 %d %u %s %s%s",
			         v[i].hash, o->opt_out, o->iterations, o->salt_hex,
			         labels[(k + 1) % nl], types);
			push(l, rr(text));
		}
		free(labels);
	}

	/* RRSIGs: every RRset that must be signed; NSEC3 owners are
	 * authoritative names of their own. */
	size_t count = ldns_rr_list_rr_count(l);
	for (size_t i = 0; i < count; i++) {
		const ldns_rr *r = ldns_rr_list_rr(l, i);
		uint16_t ty = ldns_rr_get_type(r);
		int first = 1;
		for (size_t j = 0; j < i && first; j++)
			if (same_set(ldns_rr_list_rr(l, j), ldns_rr_owner(r), ty, 0))
				first = 0;
		if (!first)
			continue;
		int k = tname_find(v, n, ldns_rr_owner(r));
		if (k < 0 || must_sign(&v[k], ty))
			sign_set(l, ks, ldns_rr_owner(r), ty);
	}
	for (size_t i = 0; i < n; i++)
		ldns_rdf_deep_free(v[i].name);
	free(v);
	ldns_rdf_deep_free(apex);
	return l;
}

/* --- editing a signed zone -------------------------------------------- */

/* Remove the RRs of (owner, type, covered); returns how many. */
static size_t
drop(ldns_rr_list **lp, const char *owner, uint16_t type, uint16_t covered)
{
	ldns_rdf *o = dname(owner);
	ldns_rr_list *keep = ldns_rr_list_new();
	size_t n = 0;
	for (size_t i = 0; i < ldns_rr_list_rr_count(*lp); i++) {
		ldns_rr *r = ldns_rr_list_rr(*lp, i);
		if (same_set(r, o, type, covered)) {
			ldns_rr_free(r);
			n++;
		} else {
			push(keep, r);
		}
	}
	ldns_rr_list_free(*lp);
	*lp = keep;
	ldns_rdf_deep_free(o);
	return n;
}

/* The first RR of (owner, type, covered). */
static ldns_rr *
find(ldns_rr_list *l, const char *owner, uint16_t type, uint16_t covered)
{
	ldns_rdf *o = dname(owner);
	ldns_rr *found = NULL;
	for (size_t i = 0; i < ldns_rr_list_rr_count(l) && found == NULL; i++)
		if (same_set(ldns_rr_list_rr(l, i), o, type, covered))
			found = ldns_rr_list_rr(l, i);
	ldns_rdf_deep_free(o);
	assert_non_null(found);
	return found;
}

/* Replace the signatures of (owner, type) by fresh ones. */
static void
resign(ldns_rr_list **lp, struct keys *ks, const char *owner, uint16_t type)
{
	drop(lp, owner, LDNS_RR_TYPE_RRSIG, type);
	ldns_rdf *o = dname(owner);
	sign_set(*lp, ks, o, type);
	ldns_rdf_deep_free(o);
}

static void
add_text(ldns_rr_list *l, const char *text)
{
	push(l, rr(text));
}

/* The presentation form of name's NSEC3 owner under o. */
static void
hash_owner_text(const char *name, const struct zopt *o, char *out, size_t cap)
{
	char h[64];
	ldns_rdf *d = dname(name);
	hash_label(d, o, h, sizeof h);
	snprintf(out, cap, "%s.tld.", h);
	ldns_rdf_deep_free(d);
}

/* Remove the NSEC3 at owner h and its signature, and close the ring over
 * it: its predecessor takes its next hashed owner and is re-signed. */
static void
nsec3_unlink(ldns_rr_list **lp, struct keys *ks, const char *h)
{
	ldns_rr *gone = find(*lp, h, LDNS_RR_TYPE_NSEC3, 0);
	ldns_rdf *label = ldns_dname_label(ldns_rr_owner(gone), 0);
	uint8_t raw[20];
	assert_int_equal(ldns_b32_pton_extended_hex((const char *)ldns_rdf_data(label) + 1, 32, raw,
	                                            sizeof raw),
	                 20);
	ldns_rdf_deep_free(label);
	ldns_rr *pred = NULL;
	for (size_t i = 0; i < ldns_rr_list_rr_count(*lp) && pred == NULL; i++) {
		ldns_rr *r = ldns_rr_list_rr(*lp, i);
		if (ldns_rr_get_type(r) == LDNS_RR_TYPE_NSEC3 &&
		    memcmp(ldns_rdf_data(ldns_rr_rdf(r, 4)) + 1, raw, 20) == 0)
			pred = r;
	}
	assert_non_null(pred);
	ldns_rdf_deep_free(ldns_rr_set_rdf(pred, ldns_rdf_clone(ldns_rr_rdf(gone, 4)), 4));
	char *ps = ldns_rdf2str(ldns_rr_owner(pred));
	resign(lp, ks, ps, LDNS_RR_TYPE_NSEC3);
	free(ps);
	assert_int_equal(drop(lp, h, LDNS_RR_TYPE_NSEC3, 0), 1);
	assert_int_equal(drop(lp, h, LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_NSEC3), 1);
}

/* --- into the store ----------------------------------------------------- */

struct grp {
	ldns_rdf *owner;
	uint16_t type, covered;
	ldns_rr_list *rrs; /* borrowed RRs */
	char *text;        /* sorted presentation, to compare */
};

static size_t
groups(const ldns_rr_list *l, struct grp **out)
{
	size_t n = 0, cnt = ldns_rr_list_rr_count(l);
	struct grp *g = calloc(cnt + 1, sizeof *g);
	for (size_t i = 0; i < cnt; i++) {
		ldns_rr *r = ldns_rr_list_rr(l, i);
		size_t k = 0;
		while (k < n && !same_set(r, g[k].owner, g[k].type, g[k].covered))
			k++;
		if (k == n) {
			k = n++;
			g[k].owner = ldns_rdf_clone(ldns_rr_owner(r));
			g[k].type = ldns_rr_get_type(r);
			g[k].covered = covered_of(r);
			g[k].rrs = ldns_rr_list_new();
		}
		assert_true(ldns_rr_list_push_rr(g[k].rrs, r)); /* borrowed */
	}
	for (size_t k = 0; k < n; k++) {
		size_t m = ldns_rr_list_rr_count(g[k].rrs), len = 1;
		char **s = calloc(m, sizeof *s);
		for (size_t i = 0; i < m; i++) {
			s[i] = ldns_rr2str(ldns_rr_list_rr(g[k].rrs, i));
			len += strlen(s[i]);
		}
		qsort(s, m, sizeof *s, str_cmp);
		g[k].text = calloc(1, len);
		for (size_t i = 0; i < m; i++) {
			strcat(g[k].text, s[i]);
			free(s[i]);
		}
		free(s);
	}
	*out = g;
	return n;
}

static void
groups_free(struct grp *g, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		ldns_rdf_deep_free(g[k].owner);
		ldns_rr_list_free(g[k].rrs);
		free(g[k].text);
	}
	free(g);
}

static struct grp *
grp_find(struct grp *g, size_t n, const ldns_rdf *owner, uint16_t type, uint16_t covered)
{
	for (size_t k = 0; k < n; k++)
		if (ldns_dname_compare(g[k].owner, owner) == 0 && g[k].type == type &&
		    g[k].covered == covered)
			return &g[k];
	return NULL;
}

/* Put into t what changes zone a into zone b: each RRset that differs, and
 * the signatures of a covered RRset that differs (or that a lacks); the
 * signatures of unchanged RRsets stay those of a. */
static void
delta_put(struct store_txn *t, const ldns_rr_list *a, const ldns_rr_list *b)
{
	struct grp *ga, *gb;
	size_t na = groups(a, &ga), nb = groups(b, &gb);
	for (size_t k = 0; k < nb; k++) {
		struct grp *x = &gb[k];
		struct grp *old = grp_find(ga, na, x->owner, x->type, x->covered);
		int put = old == NULL || strcmp(old->text, x->text) != 0;
		if (x->type == LDNS_RR_TYPE_RRSIG && old != NULL) {
			struct grp *ca = grp_find(ga, na, x->owner, x->covered, 0);
			struct grp *cb = grp_find(gb, nb, x->owner, x->covered, 0);
			put = ca == NULL || cb == NULL || strcmp(ca->text, cb->text) != 0;
		}
		if (put)
			assert_int_equal(
			        store_txn_rrset_put(t, x->owner, x->type, x->covered, x->rrs),
			        ZD_OK);
	}
	for (size_t k = 0; k < na; k++)
		if (grp_find(gb, nb, ga[k].owner, ga[k].type, ga[k].covered) == NULL)
			assert_int_equal(store_txn_rrset_put(t, ga[k].owner, ga[k].type,
			                                     ga[k].covered, NULL),
			                 ZD_OK);
	groups_free(ga, na);
	groups_free(gb, nb);
}

/* A store with zone z published as version 1. */
static struct store *
store_with(const ldns_rr_list *z)
{
	struct store *s = NULL;
	struct store_txn *t = NULL;
	ldns_rr_list *empty = ldns_rr_list_new();
	assert_int_equal(store_new(APEX, &s), ZD_OK);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	delta_put(t, empty, z);
	assert_int_equal(store_txn_publish(&t, 1, 0), ZD_OK);
	ldns_rr_list_free(empty);
	return s;
}

static size_t
rrsig_count(const ldns_rr_list *l)
{
	size_t n = 0;
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++)
		n += ldns_rr_get_type(ldns_rr_list_rr(l, i)) == LDNS_RR_TYPE_RRSIG;
	return n;
}

static struct gate_policy
policy(const struct zopt *o)
{
	struct gate_policy p = {
	        .nsec3 = o->nsec3,
	        .opt_out = o->opt_out,
	        .iterations = o->iterations,
	        .salt = o->salt,
	        .salt_len = o->salt_len,
	        .now = now_s,
	        .min_remaining = 7 * 86400,
	};
	return p;
}

/* --- fixtures ------------------------------------------------------------ */

struct fx {
	struct keys ks;
	struct zopt o;
	ldns_rr_list *base; /* unsigned */
	ldns_rr_list *z1;   /* signed version 1 */
	struct store *s;
	ldns_rr_list *z2;                /* the changed zone the test builds */
	const ldns_rr_list *unpublished; /* the gate policy's (borrowed), or NULL */
	char why[512];
	size_t n;
};

static void
fx_setup(struct fx *f, const struct zopt *o, ldns_signing_algorithm a1, ldns_signing_algorithm a2)
{
	memset(f, 0, sizeof *f);
	f->o = *o;
	keys_make(&f->ks, a1, a2);
	f->base = zone_base();
	f->z1 = zone_sign(f->base, &f->ks, o);
	f->s = store_with(f->z1);
}

static void
fx_teardown(struct fx *f)
{
	store_free(f->s);
	ldns_rr_list_deep_free(f->base);
	ldns_rr_list_deep_free(f->z1);
	ldns_rr_list_deep_free(f->z2);
	keys_free(&f->ks);
}

/* Sign base + extra records as z2 (not yet in the store). */
static void
fx_change(struct fx *f, const char *const *add, size_t n_add)
{
	ldns_rr_list *u = ldns_rr_list_clone(f->base);
	/* as the signer does: every change bumps the serial */
	assert_int_equal(drop(&u, APEX, LDNS_RR_TYPE_SOA, 0), 1);
	add_text(u, "tld. 3600 IN SOA ns1.nic.tld. hostmaster.nic.tld. 2 3600 900 604800 600");
	for (size_t i = 0; i < n_add; i++)
		add_text(u, add[i]);
	ldns_rr_list_deep_free(f->z2);
	f->z2 = zone_sign(u, &f->ks, &f->o);
	ldns_rr_list_deep_free(u);
}

/* Put z2 as a txn on top of version 1 and run the gate on it. */
static zd_err
fx_txn_check(struct fx *f)
{
	struct store_txn *t = NULL;
	struct gate_policy p = policy(&f->o);
	assert_int_equal(store_txn_begin(f->s, &t), ZD_OK);
	delta_put(t, f->z1, f->z2);
	f->n = 0;
	zd_err e = gate_txn_check(f->s, t, &p, &f->n, f->why, sizeof f->why);
	store_txn_abort(&t);
	return e;
}

static const char *const ADD_SECURE[] = {
        "new.tld. 3600 IN NS ns.ext.net.",
        "new.tld. 3600 IN DS 4242 13 2 "
        "0000000000000000000000000000000000000000000000000000000000004242",
};
static const char *const ADD_INSECURE[] = {"ins.tld. 3600 IN NS ns.ext.net."};

#define expect_fail(f, e, name, text)                                                              \
	do {                                                                                       \
		assert_int_equal((e), ZD_EMALFORMED);                                              \
		if (strstr((f)->why, (name)) == NULL || strstr((f)->why, (text)) == NULL)          \
			fail_msg("why: %s (wanted %s ... %s)", (f)->why, (name), (text));          \
	} while (0)

/* --- failure paths: txn --------------------------------------------------- */

static void
txn_rejects_flipped_signature_byte(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, ADD_SECURE, 2);
	ldns_rdf *sig =
	        ldns_rr_rrsig_sig(find(f.z2, "new.tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_DS));
	ldns_rdf_data(sig)[5] ^= 0x01;
	expect_fail(&f, fx_txn_check(&f), "new.tld. DS", "does not verify");
	fx_teardown(&f);
}

static void
txn_rejects_expired_signature(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, ADD_SECURE, 2);
	/* Signed by keys whose validity ended an hour ago. */
	for (size_t i = 0; i < f.ks.n; i++) {
		ldns_key_set_inception(f.ks.k[i], now_s - 86400);
		ldns_key_set_expiration(f.ks.k[i], now_s - 3600);
	}
	resign(&f.z2, &f.ks, "new.tld.", LDNS_RR_TYPE_DS);
	expect_fail(&f, fx_txn_check(&f), "new.tld. DS", "expired");
	fx_teardown(&f);
}

static void
txn_rejects_signature_too_close_to_expiry(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, ADD_SECURE, 2);
	for (size_t i = 0; i < f.ks.n; i++)
		ldns_key_set_expiration(f.ks.k[i], now_s + 86400); /* < 7 days */
	resign(&f.z2, &f.ks, "new.tld.", LDNS_RR_TYPE_DS);
	expect_fail(&f, fx_txn_check(&f), "new.tld. DS", "new signature expires");
	fx_teardown(&f);
}

static void
txn_rejects_unknown_key_tag(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, ADD_SECURE, 2);
	ldns_rr *sig = find(f.z2, "new.tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_DS);
	uint16_t tag = ldns_rdf2native_int16(ldns_rr_rrsig_keytag(sig));
	ldns_rdf *nt = ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, (uint16_t)(tag + 1));
	ldns_rdf_deep_free(ldns_rr_set_rdf(sig, nt, 6)); /* sig owns nt */
	expect_fail(&f, fx_txn_check(&f), "new.tld. DS", "no zone key with this tag");
	fx_teardown(&f);
}

static void
txn_rejects_changed_ds_without_rrsig(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	/* d03's DS gets a second record; its signatures go missing. */
	const char *add[] = {"d03.tld. 3600 IN DS 7 13 2 "
	                     "1111111111111111111111111111111111111111111111111111111111111111"};
	fx_change(&f, add, 1);
	assert_true(drop(&f.z2, "d03.tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_DS) > 0);
	expect_fail(&f, fx_txn_check(&f), "d03.tld. DS", "no RRSIG");
	fx_teardown(&f);
}

static void
txn_rejects_rrsig_on_glue(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, NULL, 0);
	ldns_rdf *o = dname("ns1.d05.tld.");
	sign_set(f.z2, &f.ks, o, LDNS_RR_TYPE_A);
	ldns_rdf_deep_free(o);
	expect_fail(&f, fx_txn_check(&f), "ns1.d05.tld. A", "occluded");
	fx_teardown(&f);
}

static void
txn_rejects_rrsig_on_delegation_ns(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, NULL, 0);
	ldns_rdf *o = dname("d07.tld.");
	sign_set(f.z2, &f.ks, o, LDNS_RR_TYPE_NS);
	ldns_rdf_deep_free(o);
	expect_fail(&f, fx_txn_check(&f), "d07.tld. NS", "unsigned data at a delegation");
	fx_teardown(&f);
}

static void
txn_rejects_missing_nsec3(void **state)
{
	struct fx f;
	char h[128];
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, ADD_SECURE, 2);
	hash_owner_text("new.tld.", &f.o, h, sizeof h);
	assert_int_equal(drop(&f.z2, h, LDNS_RR_TYPE_NSEC3, 0), 1);
	drop(&f.z2, h, LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_NSEC3);
	expect_fail(&f, fx_txn_check(&f), "new.tld. NSEC3", "no NSEC3");
	fx_teardown(&f);
}

/* Set the next hashed owner of the NSEC3 at owner to that of other. */
static void
nsec3_next_set(ldns_rr *n3, const ldns_rr *other)
{
	ldns_rdf *c = ldns_rdf_clone(ldns_rr_rdf(other, 4));
	ldns_rdf_deep_free(ldns_rr_set_rdf(n3, c, 4)); /* n3 owns c */
}

static void
txn_rejects_wrong_next_hash(void **state)
{
	struct fx f;
	char h[128];
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, ADD_SECURE, 2);
	hash_owner_text("new.tld.", &f.o, h, sizeof h);
	/* new.tld's NSEC3 skips its successor: it points where the
	 * successor points (correctly re-signed). */
	ldns_rr *n3 = find(f.z2, h, LDNS_RR_TYPE_NSEC3, 0);
	char nx[64], succ[128];
	ldns_b32_ntop_extended_hex(ldns_rdf_data(ldns_rr_rdf(n3, 4)) + 1, 20, nx, sizeof nx);
	snprintf(succ, sizeof succ, "%s.tld.", nx);
	nsec3_next_set(n3, find(f.z2, succ, LDNS_RR_TYPE_NSEC3, 0));
	resign(&f.z2, &f.ks, h, LDNS_RR_TYPE_NSEC3);
	expect_fail(&f, fx_txn_check(&f), h, "next hashed owner");
	fx_teardown(&f);
}

static void
txn_rejects_wrong_bitmap(void **state)
{
	struct fx f;
	char h[128], text[300];
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, ADD_SECURE, 2);
	hash_owner_text("new.tld.", &f.o, h, sizeof h);
	ldns_rr *n3 = find(f.z2, h, LDNS_RR_TYPE_NSEC3, 0);
	char nx[64];
	ldns_b32_ntop_extended_hex(ldns_rdf_data(ldns_rr_rdf(n3, 4)) + 1, 20, nx, sizeof nx);
	drop(&f.z2, h, LDNS_RR_TYPE_NSEC3, 0);
	snprintf(text, sizeof text, "%s 600 IN NSEC3 1 1 0 - %s NS RRSIG", h, nx); /* no DS */
	add_text(f.z2, text);
	resign(&f.z2, &f.ks, h, LDNS_RR_TYPE_NSEC3);
	expect_fail(&f, fx_txn_check(&f), "new.tld. NSEC3", "lacks DS");
	fx_teardown(&f);
}

static void
txn_rejects_insecure_delegation_not_covered_by_opt_out(void **state)
{
	struct fx f;
	char h[128], prev[128];
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, ADD_INSECURE, 1);
	/* The NSEC3 whose span holds ins.tld's hash loses its opt-out flag. */
	hash_owner_text("ins.tld.", &f.o, h, sizeof h);
	ldns_rdf *ho = dname(h);
	ldns_rr *cover = NULL;
	for (size_t i = 0; i < ldns_rr_list_rr_count(f.z2); i++) {
		ldns_rr *r = ldns_rr_list_rr(f.z2, i);
		if (ldns_rr_get_type(r) != LDNS_RR_TYPE_NSEC3)
			continue;
		if (ldns_dname_compare(ldns_rr_owner(r), ho) < 0 &&
		    (cover == NULL ||
		     ldns_dname_compare(ldns_rr_owner(r), ldns_rr_owner(cover)) > 0))
			cover = r;
	}
	assert_non_null(cover); /* (the hash of ins.tld is not the smallest) */
	ldns_rdf_deep_free(ho);
	ldns_rdf_deep_free(ldns_rr_set_rdf(cover, ldns_native2rdf_int8(LDNS_RDF_TYPE_INT8, 0), 1));
	char *ps = ldns_rdf2str(ldns_rr_owner(cover));
	snprintf(prev, sizeof prev, "%s", ps);
	free(ps);
	resign(&f.z2, &f.ks, prev, LDNS_RR_TYPE_NSEC3);
	expect_fail(&f, fx_txn_check(&f), "ins.tld. NS", "not covered");
	fx_teardown(&f);
}

static void
txn_rejects_insecure_delegation_without_nsec3_when_no_opt_out(void **state)
{
	struct fx f;
	char h[128];
	(void)state;
	fx_setup(&f, &NO_OPT_OUT, LDNS_SIGN_ED25519, 0);
	fx_change(&f, ADD_INSECURE, 1);
	hash_owner_text("ins.tld.", &f.o, h, sizeof h);
	/* drop its NSEC3, keep the rest as signed: the ring now has a gap */
	assert_int_equal(drop(&f.z2, h, LDNS_RR_TYPE_NSEC3, 0), 1);
	drop(&f.z2, h, LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_NSEC3);
	expect_fail(&f, fx_txn_check(&f), "ins.tld. NSEC3", "no NSEC3");
	fx_teardown(&f);
}

static void
txn_rejects_stale_nsec3_of_removed_delegation(void **state)
{
	struct fx f;
	char h[128];
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	/* d03 (secure) goes away, but its NSEC3 stays. */
	ldns_rr_list *u = ldns_rr_list_clone(f.base);
	drop(&u, "d03.tld.", LDNS_RR_TYPE_NS, 0);
	drop(&u, "d03.tld.", LDNS_RR_TYPE_DS, 0);
	f.z2 = zone_sign(u, &f.ks, &f.o);
	ldns_rr_list_deep_free(u);
	hash_owner_text("d03.tld.", &f.o, h, sizeof h);
	struct store_txn *t = NULL;
	struct gate_policy p = policy(&f.o);
	assert_int_equal(store_txn_begin(f.s, &t), ZD_OK);
	delta_put(t, f.z1, f.z2);
	/* put the old NSEC3 and its signature back */
	ldns_rdf *ho = dname(h);
	ldns_rr_list *n3 = ldns_rr_list_new(), *sg = ldns_rr_list_new();
	assert_true(ldns_rr_list_push_rr(n3, find(f.z1, h, LDNS_RR_TYPE_NSEC3, 0)));
	assert_true(
	        ldns_rr_list_push_rr(sg, find(f.z1, h, LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_NSEC3)));
	assert_int_equal(store_txn_rrset_put(t, ho, LDNS_RR_TYPE_NSEC3, 0, n3), ZD_OK);
	assert_int_equal(store_txn_rrset_put(t, ho, LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_NSEC3, sg),
	                 ZD_OK);
	zd_err e = gate_txn_check(f.s, t, &p, &f.n, f.why, sizeof f.why);
	store_txn_abort(&t);
	ldns_rr_list_free(n3);
	ldns_rr_list_free(sg);
	ldns_rdf_deep_free(ho);
	expect_fail(&f, e, "d03.tld.", "has an NSEC3 but needs none");
	fx_teardown(&f);
}

static void
txn_rejects_missing_algorithm(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, LDNS_SIGN_RSASHA256);
	fx_change(&f, ADD_SECURE, 2);
	/* new.tld's DS keeps its ECDSA signature only */
	ldns_rr_list *keep = ldns_rr_list_new();
	ldns_rdf *o = dname("new.tld.");
	size_t dropped = 0;
	for (size_t i = 0; i < ldns_rr_list_rr_count(f.z2); i++) {
		ldns_rr *r = ldns_rr_list_rr(f.z2, i);
		if (same_set(r, o, LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_DS) &&
		    ldns_rdf2native_int8(ldns_rr_rrsig_algorithm(r)) == LDNS_RSASHA256) {
			ldns_rr_free(r);
			dropped++;
		} else {
			push(keep, r);
		}
	}
	assert_int_equal(dropped, 1);
	ldns_rr_list_free(f.z2);
	f.z2 = keep;
	ldns_rdf_deep_free(o);
	expect_fail(&f, fx_txn_check(&f), "new.tld. DS", "no RRSIG of algorithm 8");
	fx_teardown(&f);
}

/* --- failure paths: whole zone ---------------------------------------- */

/* z (taken) without the RRSIGs of algorithm alg over the RRset (owner,
 * covered). */
static ldns_rr_list *
without_sig(ldns_rr_list *z, const char *owner, uint16_t covered, uint8_t alg)
{
	ldns_rr_list *keep = ldns_rr_list_new();
	ldns_rdf *o = dname(owner);
	for (size_t i = 0; i < ldns_rr_list_rr_count(z); i++) {
		ldns_rr *r = ldns_rr_list_rr(z, i);
		if (same_set(r, o, LDNS_RR_TYPE_RRSIG, covered) &&
		    ldns_rdf2native_int8(ldns_rr_rrsig_algorithm(r)) == alg)
			ldns_rr_free(r);
		else
			push(keep, r);
	}
	ldns_rr_list_free(z);
	ldns_rdf_deep_free(o);
	return keep;
}

static zd_err
zone_check_of(struct fx *f, const ldns_rr_list *z)
{
	struct store *s = store_with(z);
	struct gate_policy p = policy(&f->o);
	p.unpublished_keys = f->unpublished;
	f->n = 0;
	zd_err e = gate_zone_check(s, 1, &p, &f->n, f->why, sizeof f->why);
	store_free(s);
	return e;
}

static void
zone_rejects_missing_algorithm(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &NO_OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, LDNS_SIGN_RSASHA256);
	ldns_rr_list *keep = without_sig(ldns_rr_list_clone(f.z1), "d09.tld.", LDNS_RR_TYPE_DS,
	                                 LDNS_ECDSAP256SHA256);
	expect_fail(&f, zone_check_of(&f, keep), "d09.tld. DS", "no RRSIG of algorithm 13");
	ldns_rr_list_deep_free(keep);
	fx_teardown(&f);
}

/* Zone mode verifies in threads of its own: a flipped byte is still
 * named, and with every signature broken the walk stops at the first the
 * threads report (no job left behind: ASan's leak check). */
static void
zone_rejects_flipped_signature_bytes(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	ldns_rr_list *z = ldns_rr_list_clone(f.z1);
	ldns_rdf *sig = ldns_rr_rrsig_sig(find(z, "d09.tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_DS));
	ldns_rdf_data(sig)[5] ^= 0x01;
	expect_fail(&f, zone_check_of(&f, z), "d09.tld. DS", "does not verify");
	for (size_t i = 0; i < ldns_rr_list_rr_count(z); i++) {
		ldns_rr *r = ldns_rr_list_rr(z, i);
		if (ldns_rr_get_type(r) == LDNS_RR_TYPE_RRSIG)
			ldns_rdf_data(ldns_rr_rrsig_sig(r))[7] ^= 0x80;
	}
	expect_fail(&f, zone_check_of(&f, z), "tld.", "does not verify");
	assert_int_equal(f.n, 0); /* none verified */
	ldns_rr_list_deep_free(z);
	fx_teardown(&f);
}

/* The whole-zone walk reads the records only of names with signatures
 * (and the apex); names without are judged by their types.  A DS, an
 * NSEC3 or a name's data (in-zone, not at a delegation) whose RRSIGs are
 * gone fails for want of one; a signature on glue or on a delegation's NS
 * fails too. */
static void
zone_rejects_what_must_be_signed_and_is_not(void **state)
{
	struct fx f;
	char h[128];
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	ldns_rr_list *z = ldns_rr_list_clone(f.z1);
	assert_true(drop(&z, "d09.tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_DS) > 0);
	expect_fail(&f, zone_check_of(&f, z), "d09.tld. DS", "no RRSIG");
	ldns_rr_list_deep_free(z);

	z = ldns_rr_list_clone(f.z1);
	hash_owner_text("d09.tld.", &f.o, h, sizeof h);
	assert_true(drop(&z, h, LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_NSEC3) > 0);
	expect_fail(&f, zone_check_of(&f, z), h, "no RRSIG");
	ldns_rr_list_deep_free(z);

	z = ldns_rr_list_clone(f.z1);
	assert_true(drop(&z, "ns1.nic.tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_A) > 0);
	expect_fail(&f, zone_check_of(&f, z), "ns1.nic.tld. A", "no RRSIG");
	ldns_rr_list_deep_free(z);

	z = ldns_rr_list_clone(f.z1);
	ldns_rdf *o = dname("ns1.d05.tld.");
	sign_set(z, &f.ks, o, LDNS_RR_TYPE_A);
	ldns_rdf_deep_free(o);
	expect_fail(&f, zone_check_of(&f, z), "ns1.d05.tld. A", "occluded");
	ldns_rr_list_deep_free(z);

	z = ldns_rr_list_clone(f.z1);
	o = dname("d04.tld."); /* insecure: NS only */
	sign_set(z, &f.ks, o, LDNS_RR_TYPE_NS);
	ldns_rdf_deep_free(o);
	expect_fail(&f, zone_check_of(&f, z), "d04.tld. NS", "unsigned data at a delegation");
	ldns_rr_list_deep_free(z);
	fx_teardown(&f);
}

static void
zone_rejects_broken_ring(void **state)
{
	struct fx f;
	char h[128];
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	ldns_rr_list *z = ldns_rr_list_clone(f.z1);
	hash_owner_text("d06.tld.", &f.o, h, sizeof h);
	ldns_rr *n3 = find(z, h, LDNS_RR_TYPE_NSEC3, 0);
	/* points at itself */
	uint8_t raw[20];
	assert_int_equal(ldns_b32_pton_extended_hex(h, 32, raw, sizeof raw), 20);
	uint8_t field[21] = {20};
	memcpy(field + 1, raw, 20);
	ldns_rdf_deep_free(ldns_rr_set_rdf(
	        n3, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_NSEC3_NEXT_OWNER, sizeof field, field), 4));
	resign(&z, &f.ks, h, LDNS_RR_TYPE_NSEC3);
	expect_fail(&f, zone_check_of(&f, z), h, "next hashed owner");
	ldns_rr_list_deep_free(z);
	fx_teardown(&f);
}

static void
zone_rejects_missing_ent_nsec3(void **state)
{
	struct fx f;
	char h[128];
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	ldns_rr_list *z = ldns_rr_list_clone(f.z1);
	hash_owner_text("nic.tld.", &f.o, h, sizeof h);
	nsec3_unlink(&z, &f.ks, h); /* the ring stays closed */
	expect_fail(&f, zone_check_of(&f, z), "nic.tld. NSEC3", "no NSEC3");
	ldns_rr_list_deep_free(z);
	fx_teardown(&f);
}

static void
zone_rejects_extra_nsec3_for_opt_out_delegation(void **state)
{
	struct fx f;
	(void)state;
	/* The same zone signed without opt-out has an NSEC3 for every
	 * delegation: under an opt-out policy that is one too many. */
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	struct zopt o = OPT_OUT;
	o.opt_out = 0;
	ldns_rr_list *z = zone_sign(f.base, &f.ks, &o);
	/* flags must still say opt-out for the policy: set and re-sign */
	for (size_t i = 0; i < ldns_rr_list_rr_count(z); i++) {
		ldns_rr *r = ldns_rr_list_rr(z, i);
		if (ldns_rr_get_type(r) == LDNS_RR_TYPE_NSEC3)
			ldns_rdf_deep_free(
			        ldns_rr_set_rdf(r, ldns_native2rdf_int8(LDNS_RDF_TYPE_INT8, 1), 1));
	}
	for (size_t i = 0; i < ldns_rr_list_rr_count(z); i++) {
		ldns_rr *r = ldns_rr_list_rr(z, i);
		if (ldns_rr_get_type(r) == LDNS_RR_TYPE_NSEC3) {
			char *os = ldns_rdf2str(ldns_rr_owner(r));
			resign(&z, &f.ks, os, LDNS_RR_TYPE_NSEC3);
			free(os);
		}
	}
	zd_err e = zone_check_of(&f, z);
	assert_int_equal(e, ZD_EMALFORMED);
	if (strstr(f.why, "NSEC3 records for") == NULL)
		fail_msg("why: %s", f.why);
	ldns_rr_list_deep_free(z);
	fx_teardown(&f);
}

/* RFC 6781 s4.1.4: every RRset signed with both algorithms while only the
 * first one's keys are published.  The second's signatures verify only
 * with its keys given as unpublished, and then they are required. */
static void
zone_checks_the_unpublished_keys_of_an_algorithm_roll(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &NO_OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, LDNS_SIGN_RSASHA256);
	f.ks.published = 2; /* the ECDSA KSK and ZSK */
	ldns_rr_list *z = zone_sign(f.base, &f.ks, &f.o);
	size_t dnskeys = 0;
	for (size_t i = 0; i < ldns_rr_list_rr_count(z); i++)
		dnskeys += ldns_rr_get_type(ldns_rr_list_rr(z, i)) == LDNS_RR_TYPE_DNSKEY;
	assert_int_equal(dnskeys, 2);
	expect_fail(&f, zone_check_of(&f, z), "RRSIG 8/",
	            "no zone key with this tag in the DNSKEY RRset");

	ldns_rr_list *rsa = ldns_rr_list_new();
	for (size_t i = 2; i < 4; i++)
		push(rsa, ldns_rr_clone(ldns_rr_list_rr(f.ks.dnskeys, i)));
	f.unpublished = rsa;
	zd_err e = zone_check_of(&f, z);
	if (e != ZD_OK)
		fail_msg("why: %s", f.why);
	assert_int_equal(f.n, rrsig_count(z)); /* the RSA signatures verified too */

	/* one RRset without its RSA signature */
	ldns_rr_list *keep = without_sig(z, "d09.tld.", LDNS_RR_TYPE_DS, LDNS_RSASHA256);
	expect_fail(&f, zone_check_of(&f, keep), "d09.tld. DS", "no RRSIG of algorithm 8");

	/* an unpublished key that is not a DNSKEY */
	ldns_rr_list *bad = ldns_rr_list_new();
	push(bad, rr("tld. 3600 IN TXT \"not a key\""));
	f.unpublished = bad;
	expect_fail(&f, zone_check_of(&f, keep), "tld. DNSKEY", "unpublished DNSKEY malformed");
	ldns_rr_list_deep_free(bad);
	ldns_rr_list_deep_free(keep);
	ldns_rr_list_deep_free(rsa);
	fx_teardown(&f);
}

static void
zone_rejects_unsigned_dnskey_algorithm(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &USE_NSEC, LDNS_SIGN_RSASHA256, LDNS_SIGN_ECDSAP256SHA256);
	ldns_rr_list *keep =
	        without_sig(ldns_rr_list_clone(f.z1), APEX, LDNS_RR_TYPE_DNSKEY, LDNS_RSASHA256);
	expect_fail(&f, zone_check_of(&f, keep), "tld. DNSKEY", "no RRSIG of algorithm 8");
	ldns_rr_list_deep_free(keep);
	fx_teardown(&f);
}

static void
zone_rejects_wrong_nsec_next(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &USE_NSEC, LDNS_SIGN_RSASHA256, 0);
	ldns_rr_list *z = ldns_rr_list_clone(f.z1);
	ldns_rr *nsec = find(z, "d10.tld.", LDNS_RR_TYPE_NSEC, 0);
	ldns_rdf_deep_free(ldns_rr_set_rdf(nsec, dname("d12.tld."), 0)); /* skips d11 */
	resign(&z, &f.ks, "d10.tld.", LDNS_RR_TYPE_NSEC);
	expect_fail(&f, zone_check_of(&f, z), "d10.tld. NSEC", "next name d12.tld.");
	ldns_rr_list_deep_free(z);
	fx_teardown(&f);
}

/* --- success paths ------------------------------------------------------ */

static void
zone_accepts_nsec3_opt_out(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	zd_err e = zone_check_of(&f, f.z1);
	if (e != ZD_OK)
		fail_msg("%s", f.why);
	assert_int_equal(f.n, rrsig_count(f.z1)); /* every signature verified */
	fx_teardown(&f);
}

static void
zone_accepts_nsec3_without_opt_out_and_salt(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &NO_OPT_OUT, LDNS_SIGN_ED25519, 0);
	zd_err e = zone_check_of(&f, f.z1);
	if (e != ZD_OK)
		fail_msg("%s", f.why);
	assert_int_equal(f.n, rrsig_count(f.z1));
	fx_teardown(&f);
}

static void
zone_accepts_nsec_two_algorithms(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &USE_NSEC, LDNS_SIGN_RSASHA256, LDNS_SIGN_ECDSAP256SHA256);
	zd_err e = zone_check_of(&f, f.z1);
	if (e != ZD_OK)
		fail_msg("%s", f.why);
	assert_int_equal(f.n, rrsig_count(f.z1));
	fx_teardown(&f);
}

/* ldns's own signer, a second opinion on what a good NSEC zone is. */
static void
zone_accepts_ldns_signed_nsec_zone(void **state)
{
	struct keys ks;
	char why[512];
	size_t n = 0;
	(void)state;
	keys_make(&ks, LDNS_SIGN_ECDSAP256SHA256, 0);
	ldns_rr_list *base = zone_base();
	ldns_dnssec_zone *dz = ldns_dnssec_zone_new();
	for (size_t i = 0; i < ldns_rr_list_rr_count(base); i++)
		assert_int_equal(
		        ldns_dnssec_zone_add_rr(dz, ldns_rr_clone(ldns_rr_list_rr(base, i))),
		        LDNS_STATUS_OK);
	for (size_t i = 0; i < ldns_rr_list_rr_count(ks.dnskeys); i++)
		assert_int_equal(
		        ldns_dnssec_zone_add_rr(dz, ldns_rr_clone(ldns_rr_list_rr(ks.dnskeys, i))),
		        LDNS_STATUS_OK);
	ldns_key_list *all = ldns_key_list_new();
	for (size_t i = 0; i < ks.n; i++)
		ldns_key_list_push_key(all, ks.k[i]);
	ldns_rr_list *added = ldns_rr_list_new();
	assert_int_equal(
	        ldns_dnssec_zone_sign(dz, added, all, ldns_dnssec_default_replace_signatures, NULL),
	        LDNS_STATUS_OK);
	/* out of ldns's structure through its zone file form */
	char *text = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&text, &len);
	ldns_dnssec_zone_print(mf, dz);
	fclose(mf);
	FILE *rf = fmemopen(text, len, "r");
	ldns_zone *zf = NULL;
	ldns_rdf *origin = dname(APEX);
	assert_int_equal(ldns_zone_new_frm_fp(&zf, rf, origin, 3600, LDNS_RR_CLASS_IN),
	                 LDNS_STATUS_OK);
	fclose(rf);
	ldns_rr_list *z = ldns_rr_list_clone(ldns_zone_rrs(zf));
	push(z, ldns_rr_clone(ldns_zone_soa(zf)));
	assert_true(rrsig_count(z) > 50);

	struct store *s = store_with(z);
	struct gate_policy p = policy(&USE_NSEC);
	p.min_remaining = 86400;
	zd_err e = gate_zone_check(s, 1, &p, &n, why, sizeof why);
	if (e != ZD_OK)
		fail_msg("%s", why);
	assert_int_equal(n, rrsig_count(z));

	store_free(s);
	ldns_rr_list_deep_free(z);
	ldns_zone_deep_free(zf);
	ldns_rdf_deep_free(origin);
	free(text);
	ldns_rr_list_free(added);            /* its RRs belong to dz */
	ldns_key_list_set_key_count(all, 0); /* borrowed keys */
	ldns_key_list_free(all);
	ldns_dnssec_zone_deep_free(dz);
	ldns_rr_list_deep_free(base);
	keys_free(&ks);
}

static void
txn_accepts_added_secure_delegation(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, ADD_SECURE, 2);
	zd_err e = fx_txn_check(&f);
	if (e != ZD_OK)
		fail_msg("%s", f.why);
	/* what changed, not the zone: DS + its NSEC3 + the NSEC3 before it,
	 * and the apex RRsets */
	assert_true(f.n >= 3);
	assert_true(f.n < rrsig_count(f.z1) / 4);
	fx_teardown(&f);
}

static void
txn_accepts_added_insecure_delegation_under_opt_out(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, ADD_INSECURE, 1);
	zd_err e = fx_txn_check(&f);
	if (e != ZD_OK)
		fail_msg("%s", f.why);
	fx_teardown(&f);
}

static void
txn_accepts_secure_delegation_below_empty_non_terminal(void **state)
{
	struct fx f;
	(void)state;
	/* sub.tld held only an insecure delegation: with opt-out it had no
	 * NSEC3; a secure delegation below it gives it one. */
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	const char *add[] = {"y.sub.tld. 3600 IN NS ns.ext.net.",
	                     "y.sub.tld. 3600 IN DS 9 13 2 "
	                     "9999999999999999999999999999999999999999999999999999999999999999"};
	fx_change(&f, add, 2);
	zd_err e = fx_txn_check(&f);
	if (e != ZD_OK)
		fail_msg("%s", f.why);
	/* and without the ENT's new NSEC3 it fails on sub.tld */
	char h[128];
	hash_owner_text("sub.tld.", &f.o, h, sizeof h);
	assert_int_equal(drop(&f.z2, h, LDNS_RR_TYPE_NSEC3, 0), 1);
	drop(&f.z2, h, LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_NSEC3);
	expect_fail(&f, fx_txn_check(&f), "sub.tld. NSEC3", "no NSEC3");
	fx_teardown(&f);
}

static void
txn_accepts_removed_delegations(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &NO_OPT_OUT, LDNS_SIGN_ED25519, 0);
	ldns_rr_list *u = ldns_rr_list_clone(f.base);
	drop(&u, "d03.tld.", LDNS_RR_TYPE_NS, 0);
	drop(&u, "d03.tld.", LDNS_RR_TYPE_DS, 0);
	drop(&u, "d05.tld.", LDNS_RR_TYPE_NS, 0);
	drop(&u, "ns1.d05.tld.", LDNS_RR_TYPE_A, 0);
	f.z2 = zone_sign(u, &f.ks, &f.o);
	ldns_rr_list_deep_free(u);
	zd_err e = fx_txn_check(&f);
	if (e != ZD_OK)
		fail_msg("%s", f.why);
	fx_teardown(&f);
}

static void
txn_accepts_nsec_changes(void **state)
{
	struct fx f;
	(void)state;
	fx_setup(&f, &USE_NSEC, LDNS_SIGN_RSASHA256, LDNS_SIGN_ECDSAP256SHA256);
	const char *add[] = {ADD_SECURE[0], ADD_SECURE[1], ADD_INSECURE[0]};
	fx_change(&f, add, 3);
	zd_err e = fx_txn_check(&f);
	if (e != ZD_OK)
		fail_msg("%s", f.why);
	/* a stale next name on the predecessor is caught */
	ldns_rr *nsec = find(f.z2, "ins.tld.", LDNS_RR_TYPE_NSEC, 0);
	ldns_rdf_deep_free(ldns_rr_set_rdf(nsec, dname("ns1.nic.tld."), 0)); /* skips new.tld */
	resign(&f.z2, &f.ks, "ins.tld.", LDNS_RR_TYPE_NSEC);
	expect_fail(&f, fx_txn_check(&f), "ins.tld. NSEC", "next name");
	fx_teardown(&f);
}

/* Names in the rdata upper-cased after signing, in the store as they are. */
static void
upper_rdata_names(ldns_rr_list *z, uint16_t type)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(z); i++) {
		ldns_rr *r = ldns_rr_list_rr(z, i);
		if (ldns_rr_get_type(r) != type)
			continue;
		for (size_t k = 0; k < ldns_rr_rd_count(r); k++) {
			ldns_rdf *d = ldns_rr_rdf(r, k);
			if (ldns_rdf_get_type(d) != LDNS_RDF_TYPE_DNAME)
				continue;
			uint8_t *b = ldns_rdf_data(d);
			for (size_t j = 0; j < ldns_rdf_size(d); j++) /* length octets are < 64 */
				if (b[j] >= 'a' && b[j] <= 'z')
					b[j] = (uint8_t)(b[j] - 'a' + 'A');
		}
	}
}

/* RFC 4034 s6.2: signing inputs hold the names in the rdata of NS, MX,
 * CNAME and the others in lower case, whatever the case of the records the
 * store holds; for a one-record RRset (written directly) and a larger one
 * (copied, lowered, sorted) alike, in a txn and a whole-zone check.  A
 * changed letter (not its case) still fails. */
static void
txn_and_zone_accept_upper_case_names_in_signed_rdata(void **state)
{
	static const char *const add[] = {
	        "tld. 3600 IN MX 10 mail.tld.",
	        "tld. 3600 IN MX 20 mx2.ext.net.",
	        "www.tld. 3600 IN CNAME target.ext.net.",
	};
	struct fx f;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	fx_change(&f, add, 3);
	upper_rdata_names(f.z2, LDNS_RR_TYPE_MX);
	upper_rdata_names(f.z2, LDNS_RR_TYPE_CNAME);
	ldns_rr *cname = find(f.z2, "www.tld.", LDNS_RR_TYPE_CNAME, 0);
	assert_memory_equal(ldns_rdf_data(ldns_rr_rdf(cname, 0)), "\6TARGET", 7);
	zd_err e = fx_txn_check(&f);
	if (e != ZD_OK)
		fail_msg("%s", f.why);
	e = zone_check_of(&f, f.z2);
	if (e != ZD_OK)
		fail_msg("%s", f.why);
	assert_int_equal(f.n, rrsig_count(f.z2));
	ldns_rdf_data(ldns_rr_rdf(cname, 0))[2] = 'B'; /* TBRGET */
	expect_fail(&f, fx_txn_check(&f), "www.tld. CNAME", "does not verify");
	ldns_rr *mx = find(f.z2, "tld.", LDNS_RR_TYPE_MX, 0);
	ldns_rdf_data(ldns_rr_rdf(cname, 0))[2] = 'A';
	ldns_rdf_data(ldns_rr_rdf(mx, 1))[1] ^= 0x01; /* a letter of one target */
	expect_fail(&f, fx_txn_check(&f), "tld. MX", "does not verify");
	fx_teardown(&f);
}

static void
txn_accepts_first_version_as_whole_zone(void **state)
{
	struct fx f;
	struct store *s = NULL;
	struct store_txn *t = NULL;
	(void)state;
	fx_setup(&f, &OPT_OUT, LDNS_SIGN_ECDSAP256SHA256, 0);
	ldns_rr_list *empty = ldns_rr_list_new();
	struct gate_policy p = policy(&f.o);
	assert_int_equal(store_new(APEX, &s), ZD_OK);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	delta_put(t, empty, f.z1);
	zd_err e = gate_txn_check(s, t, &p, &f.n, f.why, sizeof f.why);
	if (e != ZD_OK)
		fail_msg("%s", f.why);
	assert_int_equal(f.n, rrsig_count(f.z1));
	store_txn_abort(&t);
	store_free(s);
	ldns_rr_list_free(empty);
	fx_teardown(&f);
}

int
main(void)
{
	now_s = (uint32_t)time(NULL);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(txn_rejects_flipped_signature_byte),
	        cmocka_unit_test(txn_rejects_expired_signature),
	        cmocka_unit_test(txn_rejects_signature_too_close_to_expiry),
	        cmocka_unit_test(txn_rejects_unknown_key_tag),
	        cmocka_unit_test(txn_rejects_changed_ds_without_rrsig),
	        cmocka_unit_test(txn_rejects_rrsig_on_glue),
	        cmocka_unit_test(txn_rejects_rrsig_on_delegation_ns),
	        cmocka_unit_test(txn_rejects_missing_nsec3),
	        cmocka_unit_test(txn_rejects_wrong_next_hash),
	        cmocka_unit_test(txn_rejects_wrong_bitmap),
	        cmocka_unit_test(txn_rejects_insecure_delegation_not_covered_by_opt_out),
	        cmocka_unit_test(txn_rejects_insecure_delegation_without_nsec3_when_no_opt_out),
	        cmocka_unit_test(txn_rejects_stale_nsec3_of_removed_delegation),
	        cmocka_unit_test(txn_rejects_missing_algorithm),
	        cmocka_unit_test(zone_rejects_missing_algorithm),
	        cmocka_unit_test(zone_rejects_flipped_signature_bytes),
	        cmocka_unit_test(zone_rejects_what_must_be_signed_and_is_not),
	        cmocka_unit_test(zone_rejects_broken_ring),
	        cmocka_unit_test(zone_rejects_missing_ent_nsec3),
	        cmocka_unit_test(zone_rejects_extra_nsec3_for_opt_out_delegation),
	        cmocka_unit_test(zone_rejects_unsigned_dnskey_algorithm),
	        cmocka_unit_test(zone_checks_the_unpublished_keys_of_an_algorithm_roll),
	        cmocka_unit_test(zone_rejects_wrong_nsec_next),
	        cmocka_unit_test(zone_accepts_nsec3_opt_out),
	        cmocka_unit_test(zone_accepts_nsec3_without_opt_out_and_salt),
	        cmocka_unit_test(zone_accepts_nsec_two_algorithms),
	        cmocka_unit_test(zone_accepts_ldns_signed_nsec_zone),
	        cmocka_unit_test(txn_accepts_added_secure_delegation),
	        cmocka_unit_test(txn_accepts_added_insecure_delegation_under_opt_out),
	        cmocka_unit_test(txn_accepts_secure_delegation_below_empty_non_terminal),
	        cmocka_unit_test(txn_accepts_removed_delegations),
	        cmocka_unit_test(txn_accepts_nsec_changes),
	        cmocka_unit_test(txn_accepts_first_version_as_whole_zone),
	        cmocka_unit_test(txn_and_zone_accept_upper_case_names_in_signed_rdata),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
