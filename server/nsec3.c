/* server/nsec3.c -- the signer's authenticated denial chain: NSEC3 (RFC
 * 5155, with or without opt-out) or NSEC (RFC 4034 s4).
 *
 * Each touched name gets the chain record it must have (or loses it); the
 * records are put with the next field they had (a new one points at
 * itself), and then every record added, rewritten or whose predecessor's
 * successor changed gets its next field from the store's canonical order:
 * store_name_neighbor() over the owners holding a chain record.  A full
 * signing walks the whole chain once in order instead. */
#include <string.h>

#include "server/signer_priv.h"

#define NSEC3_HASH_LEN 20 /* SHA-1 */
#define BITMAP_TYPES   258

static uint16_t
chain_type(const struct work *w)
{
	return w->sg->p->denial == ZD_DENIAL_NSEC3 ? LDNS_RR_TYPE_NSEC3 : LDNS_RR_TYPE_NSEC;
}

/* The hashed owner name of name (canonical), and the raw hash. */
static zd_err
hash_owner(const struct work *w, const ldns_rdf *name, ldns_rdf **out, uint8_t raw[NSEC3_HASH_LEN])
{
	const struct zd_dnssec_config *p = w->sg->p;
	ldns_rdf *label = ldns_nsec3_hash_name(name, 1, p->nsec3_iterations, p->nsec3_salt_len,
	                                       p->nsec3_salt);
	if (label == NULL)
		return ZD_ENOMEM;
	const uint8_t *d = ldns_rdf_data(label);
	if (ldns_rdf_size(label) < 2 ||
	    ldns_b32_pton_extended_hex((const char *)d + 1, d[0], raw, NSEC3_HASH_LEN) !=
	            NSEC3_HASH_LEN ||
	    ldns_dname_cat(label, w->sg->apex) != LDNS_STATUS_OK) {
		ldns_rdf_deep_free(label);
		return ZD_EBUG;
	}
	ldns_dname2canonical(label);
	*out = label;
	return ZD_OK;
}

/* The raw hash an NSEC3 owner name's first label spells. */
static zd_err
owner_hash(const ldns_rdf *owner, uint8_t raw[NSEC3_HASH_LEN])
{
	const uint8_t *d = ldns_rdf_data(owner);
	if (ldns_rdf_size(owner) < 2 ||
	    ldns_b32_pton_extended_hex((const char *)d + 1, d[0], raw, NSEC3_HASH_LEN) !=
	            NSEC3_HASH_LEN)
		return ZD_EMALFORMED;
	return ZD_OK;
}

/* The type bitmap of types[0..n) plus extra (0: none), sorted. */
static ldns_rdf *
bitmap_make(const uint16_t *types, size_t n, uint16_t extra1, uint16_t extra2, uint16_t chain)
{
	ldns_rr_type t[BITMAP_TYPES];
	size_t k = 0;
	for (size_t i = 0; i < n && k < BITMAP_TYPES - 2; i++)
		t[k++] = (ldns_rr_type)types[i];
	if (extra1)
		t[k++] = (ldns_rr_type)extra1;
	if (extra2)
		t[k++] = (ldns_rr_type)extra2;
	return ldns_dnssec_create_nsec_bitmap(t, k, (ldns_rr_type)chain);
}

static ldns_rr *
nsec3_make(const struct work *w, const ldns_rdf *owner, const uint8_t next[NSEC3_HASH_LEN],
           const ldns_rdf *bitmap)
{
	const struct zd_dnssec_config *p = w->sg->p;
	uint8_t rd[6 + ZD_NSEC3_SALT_MAX + NSEC3_HASH_LEN + 8192];
	size_t n = 0, bl = bitmap ? ldns_rdf_size(bitmap) : 0;

	if (bl > 8192)
		return NULL;
	rd[n++] = 1; /* SHA-1 */
	rd[n++] = p->nsec3_opt_out ? 1 : 0;
	rd[n++] = (uint8_t)(p->nsec3_iterations >> 8);
	rd[n++] = (uint8_t)p->nsec3_iterations;
	rd[n++] = p->nsec3_salt_len;
	memcpy(rd + n, p->nsec3_salt, p->nsec3_salt_len);
	n += p->nsec3_salt_len;
	rd[n++] = NSEC3_HASH_LEN;
	memcpy(rd + n, next, NSEC3_HASH_LEN);
	n += NSEC3_HASH_LEN;
	if (bl)
		memcpy(rd + n, ldns_rdf_data(bitmap), bl);
	return signer_rr_make(owner, LDNS_RR_TYPE_NSEC3, p->denial_ttl, rd, n + bl);
}

static ldns_rr *
nsec_make(const struct work *w, const ldns_rdf *owner, const ldns_rdf *next, const ldns_rdf *bitmap)
{
	uint8_t rd[256 + 8192];
	size_t n = ldns_rdf_size(next), bl = bitmap ? ldns_rdf_size(bitmap) : 0;
	if (n > 256 || bl > 8192)
		return NULL;
	memcpy(rd, ldns_rdf_data(next), n);
	if (bl)
		memcpy(rd + n, ldns_rdf_data(bitmap), bl);
	return signer_rr_make(owner, LDNS_RR_TYPE_NSEC, w->sg->p->denial_ttl, rd, n + bl);
}

/* The chain record at owner as of v (a clone), or NULL. */
static zd_err
chain_rr_get(const struct work *w, uint64_t v, const ldns_rdf *owner, ldns_rr **out)
{
	ldns_rr_list *l = NULL;
	*out = NULL;
	if (v == 0)
		return ZD_OK;
	zd_err e = store_rrset_find(w->s, v, owner, chain_type(w), 0, &l);
	if (e == ZD_OK && l != NULL && ldns_rr_list_rr_count(l) > 0)
		*out = ldns_rr_list_pop_rr(l);
	ldns_rr_list_deep_free(l);
	return e;
}

static int
rr_same(const ldns_rr *a, const ldns_rr *b)
{
	if (a == NULL || b == NULL || ldns_rr_ttl(a) != ldns_rr_ttl(b) ||
	    ldns_rr_rd_count(a) != ldns_rr_rd_count(b))
		return 0;
	for (size_t i = 0; i < ldns_rr_rd_count(a); i++)
		if (ldns_rdf_compare(ldns_rr_rdf(a, i), ldns_rr_rdf(b, i)) != 0)
			return 0;
	return 1;
}

/* The next field of an existing NSEC3 record. */
static int
nsec3_next_get(const ldns_rr *rr, uint8_t next[NSEC3_HASH_LEN])
{
	const ldns_rdf *f = ldns_rr_rd_count(rr) > 4 ? ldns_rr_rdf(rr, 4) : NULL;
	if (f == NULL)
		return 0;
	const uint8_t *d = ldns_rdf_data(f);
	size_t n = ldns_rdf_size(f);
	if (n == NSEC3_HASH_LEN + 1 && d[0] == NSEC3_HASH_LEN)
		memcpy(next, d + 1, NSEC3_HASH_LEN);
	else if (n == NSEC3_HASH_LEN)
		memcpy(next, d, NSEC3_HASH_LEN);
	else
		return 0;
	return 1;
}

static zd_err
below_collect(void *arg, const ldns_rdf *name)
{
	return namevec_push(arg, ldns_rdf_clone(name));
}

/* RFC 5155 s7.1: an empty non-terminal has an NSEC3 record unless every
 * name below it that needs one is an insecure delegation covered by
 * opt-out (or glue). */
static zd_err
ent_needed(struct work *w, const ldns_rdf *name, int *out)
{
	struct namevec below = {0};
	uint16_t types[BITMAP_TYPES];
	size_t n = 0;
	zd_err e;

	*out = 0;
	if ((e = store_below_walk(w->s, w->v, name, SIGNER_BELOW_MAX, below_collect, &below)) !=
	    ZD_OK)
		goto out;
	for (size_t i = 0; i < below.n && !*out; i++) {
		int data = 0, ns = 0, ds = 0, occluded = 0;
		if ((e = store_name_types(w->s, w->v, below.v[i], types, BITMAP_TYPES, &n)) !=
		    ZD_OK)
			goto out;
		for (size_t k = 0; k < n; k++) {
			data |= !signer_type_is_dnssec(types[k]);
			ns |= types[k] == LDNS_RR_TYPE_NS;
			ds |= types[k] == LDNS_RR_TYPE_DS;
		}
		if (!data)
			continue;
		if ((e = signer_occluded(w, w->v, below.v[i], &occluded)) != ZD_OK)
			goto out;
		if (!occluded && (!ns || ds || !w->sg->p->nsec3_opt_out))
			*out = 1;
	}
out:
	namevec_clear(&below);
	return e;
}

zd_err
signer_chain_name(struct work *w, const struct name_state *ns)
{
	const struct zd_dnssec_config *p = w->sg->p;
	int nsec3 = p->denial == ZD_DENIAL_NSEC3, need;
	uint16_t type = chain_type(w);
	ldns_rdf *owner = NULL, *bitmap = NULL;
	ldns_rr *old = NULL, *rr = NULL;
	uint8_t raw[NSEC3_HASH_LEN];
	zd_err e = ZD_OK;

	if (nsec3) {
		need = !ns->occluded && (ns->apex || (ns->n_types > 0 && !ns->deleg) ||
		                         (ns->deleg && (ns->has_ds || !p->nsec3_opt_out)));
		if (!need && !ns->occluded && ns->n_types == 0 &&
		    (e = ent_needed(w, ns->name, &need)) != ZD_OK)
			return e;
		if (!need && w->old == 0)
			return ZD_OK; /* the first version: no record to remove */
		if ((e = hash_owner(w, ns->name, &owner, raw)) != ZD_OK)
			return e;
	} else {
		need = !ns->occluded && ns->n_types > 0;
		if (!need && w->old == 0)
			return ZD_OK;
		if ((owner = ldns_rdf_clone(ns->name)) == NULL)
			return ZD_ENOMEM;
	}
	if ((e = chain_rr_get(w, w->v, owner, &old)) != ZD_OK)
		goto out;
	if (!need) {
		if (old == NULL)
			goto out;
		if ((e = signer_rrset_put1(w, owner, type, 0, NULL)) != ZD_OK ||
		    (e = signer_rrset_put1(w, owner, LDNS_RR_TYPE_RRSIG, type, NULL)) != ZD_OK)
			goto out;
		w->st->chain_changed++;
		if (!w->full)
			e = namevec_push(&w->chain_removed, ldns_rdf_clone(owner));
		goto out;
	}
	if (nsec3) {
		uint8_t next[NSEC3_HASH_LEN];
		if (old == NULL || !nsec3_next_get(old, next))
			memcpy(next, raw, NSEC3_HASH_LEN);
		bitmap = bitmap_make(ns->types, ns->n_types,
		                     ns->any_signed ? LDNS_RR_TYPE_RRSIG : 0, 0, type);
		rr = nsec3_make(w, owner, next, bitmap);
	} else {
		const ldns_rdf *next =
		        old != NULL && ldns_rr_rd_count(old) > 0 ? ldns_rr_rdf(old, 0) : ns->name;
		bitmap = bitmap_make(ns->types, ns->n_types, LDNS_RR_TYPE_NSEC, LDNS_RR_TYPE_RRSIG,
		                     type);
		rr = nsec_make(w, owner, next, bitmap);
	}
	if (rr == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	if (!rr_same(old, rr)) {
		e = signer_rrset_put1(w, owner, type, 0, rr);
		rr = NULL;
		if (e != ZD_OK)
			goto out;
		w->st->chain_changed++;
		if (!w->full &&
		    (e = namevec_push(&w->chain_touched, ldns_rdf_clone(owner))) != ZD_OK)
			goto out;
	}
	if (!w->full)
		e = namevec_push(&w->chain_dirty, ldns_rdf_clone(owner));
out:
	ldns_rr_free(rr);
	ldns_rr_free(old);
	ldns_rdf_deep_free(bitmap);
	ldns_rdf_deep_free(owner);
	return e;
}

/* The chain owner after (dir > 0) or before (dir < 0) owner, wrapping
 * around; NULL in *out when the chain is empty. */
static zd_err
chain_neighbor(struct work *w, const ldns_rdf *owner, int dir, ldns_rdf **out)
{
	zd_err e = store_name_neighbor(w->s, w->v, owner, dir, chain_type(w), out);
	if (e == ZD_ENOTFOUND)
		e = store_name_neighbor(w->s, w->v, NULL, dir, chain_type(w), out);
	if (e == ZD_ENOTFOUND) {
		*out = NULL;
		e = ZD_OK;
	}
	return e;
}

/* Point the record at owner to next (put only when that changes it). */
static zd_err
next_set(struct work *w, const ldns_rdf *owner, const ldns_rdf *next)
{
	ldns_rr *rr = NULL;
	ldns_rdf *f = NULL;
	zd_err e;

	if ((e = chain_rr_get(w, w->v, owner, &rr)) != ZD_OK || rr == NULL)
		return e;
	if (chain_type(w) == LDNS_RR_TYPE_NSEC3) {
		uint8_t d[1 + NSEC3_HASH_LEN], cur[NSEC3_HASH_LEN];
		d[0] = NSEC3_HASH_LEN;
		if ((e = owner_hash(next, d + 1)) != ZD_OK || !nsec3_next_get(rr, cur))
			goto out;
		if (memcmp(cur, d + 1, NSEC3_HASH_LEN) == 0)
			goto out;
		f = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_NSEC3_NEXT_OWNER, sizeof d, d);
		if (f == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		ldns_rdf_deep_free(ldns_rr_set_rdf(rr, f, 4));
	} else {
		if (ldns_rr_rd_count(rr) > 0 && ldns_dname_compare(ldns_rr_rdf(rr, 0), next) == 0 &&
		    ldns_rdf_compare(ldns_rr_rdf(rr, 0), next) == 0)
			goto out;
		if ((f = ldns_rdf_clone(next)) == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		ldns_rdf_deep_free(ldns_rr_set_rdf(rr, f, 0));
	}
	e = signer_rrset_put1(w, owner, chain_type(w), 0, rr);
	rr = NULL;
out:
	ldns_rr_free(rr);
	return e;
}

static zd_err
next_fix(struct work *w, const ldns_rdf *owner)
{
	ldns_rdf *next = NULL;
	zd_err e = chain_neighbor(w, owner, 1, &next);
	if (e == ZD_OK && next != NULL)
		e = next_set(w, owner, next);
	ldns_rdf_deep_free(next);
	return e;
}

zd_err
signer_chain_incremental(struct work *w)
{
	uint16_t type = chain_type(w);
	struct namevec *dirty = &w->chain_dirty;
	zd_err e = ZD_OK;

	for (size_t i = 0; i < w->chain_touched.n && e == ZD_OK; i++)
		e = next_fix(w, w->chain_touched.v[i]);
	/* the predecessor of every record added or removed points past it */
	for (int pass = 0; pass < 2 && e == ZD_OK; pass++) {
		struct namevec *nv = pass == 0 ? &w->chain_touched : &w->chain_removed;
		for (size_t i = 0; i < nv->n && e == ZD_OK; i++) {
			ldns_rdf *prev = NULL;
			if ((e = chain_neighbor(w, nv->v[i], -1, &prev)) != ZD_OK || prev == NULL)
				continue;
			if ((e = next_fix(w, prev)) == ZD_OK)
				e = namevec_push(dirty, prev);
			else
				ldns_rdf_deep_free(prev);
		}
	}
	if (e != ZD_OK)
		return e;
	namevec_sort_unique(dirty);
	for (size_t i = 0; i < dirty->n && e == ZD_OK; i++) {
		const ldns_rdf *x = dirty->v[i];
		ldns_rr *now = NULL, *was = NULL;
		ldns_rr_list *sig = NULL;
		if ((e = chain_rr_get(w, w->v, x, &now)) != ZD_OK || now == NULL)
			goto next;
		if ((e = chain_rr_get(w, w->old, x, &was)) != ZD_OK)
			goto next;
		if ((e = store_rrset_find(w->s, w->v, x, LDNS_RR_TYPE_RRSIG, type, &sig)) != ZD_OK)
			goto next;
		int same = rr_same(was, now);
		if (!same && was != NULL)
			w->st->chain_changed++;
		if (!same || !signer_rrsigs_ok(w, sig, type, ldns_rr_ttl(now)))
			e = signer_job_push(w, x, type);
	next:
		ldns_rr_free(now);
		ldns_rr_free(was);
		ldns_rr_list_deep_free(sig);
	}
	return e;
}

zd_err
signer_chain_full(struct work *w)
{
	uint16_t type = chain_type(w);
	ldns_rdf *first = NULL, *x = NULL;
	zd_err e;

	if ((e = store_name_neighbor(w->s, w->v, NULL, 1, type, &first)) != ZD_OK)
		return e == ZD_ENOTFOUND ? ZD_OK : e;
	if ((x = ldns_rdf_clone(first)) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	for (;;) {
		ldns_rdf *next = NULL;
		int wrapped = 0;
		e = store_name_neighbor(w->s, w->v, x, 1, type, &next);
		if (e == ZD_ENOTFOUND) {
			wrapped = 1;
			e = (next = ldns_rdf_clone(first)) ? ZD_OK : ZD_ENOMEM;
		}
		if (e == ZD_OK)
			e = next_set(w, x, next);
		if (e == ZD_OK)
			e = signer_job_push(w, x, type);
		if (e == ZD_OK && w->n_jobs >= 4096)
			e = signer_jobs_flush_async(w);
		ldns_rdf_deep_free(x);
		x = next;
		if (e != ZD_OK || wrapped)
			break;
	}
out:
	ldns_rdf_deep_free(x);
	ldns_rdf_deep_free(first);
	return e;
}
