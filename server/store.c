/* server/store.c -- the multi-versioned zone store (see store.h).
 *
 * Layout: a red-black tree (ldns_rbtree) of owner names keyed by a canonical
 * sort key; each name holds one chain per (type, covered) of RRset versions,
 * newest first, each live in [from, to).  Chains never overlap in time, so the
 * RRset of a type at version v is the first chain entry with from <= v, if its
 * to > v.  Rdata is kept in wire form, sorted in canonical order.
 *
 * Locking: the writer (one txn at a time) mutates the tree and the chains only
 * under the write lock; readers take the read lock per call.  Entries a txn
 * adds carry from = published + 1, which no reader asks for until publish. */
#include "server/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_buf.h"
#include "common/zd_log.h"
#include "common/zd_parse.h"

#define KEY_MAX      ZD_NAME_KEY_MAX /* canonical key of a <= 255 octet name */
#define RRSET_MAX_RR 65535u
#define RDATA_MAX    (16u << 20)
#define PRUNE_STEP   1024u      /* names per write-lock hold while pruning */
#define PINS_MAX     (1u << 20) /* distinct pinned versions */

/* One RRset as it was during [from, to). */
struct rrver {
	struct rrver *older;     /* same (type, covered), older version */
	struct rrver *next_type; /* meaningful on chain heads only */
	uint64_t from, to;
	uint16_t type, covered;
	uint32_t ttl;
	uint32_t count; /* records */
	uint32_t len;   /* bytes of data[] */
	uint8_t data[]; /* count x (u16 rdlength, rdata), canonical order, no duplicates */
};

/* An owner name.  kb[] holds the key blob: u16 length (host order, memcpy'd)
 * then the key bytes; node.key points at kb. */
struct sname {
	ldns_rbnode_t node;
	struct rrver *heads; /* one chain head per (type, covered) */
	uint8_t kb[];
};

struct version_info {
	uint32_t serial;
	uint64_t published_ms;
	struct sname **changed; /* names this version changed; NULL for the base */
	uint32_t n_changed;
};

struct change {
	struct sname *name;  /* NULL once undone within the txn */
	struct rrver *added; /* new chain head, or NULL for a delete */
	struct rrver *ended; /* previous live version, or NULL */
	int created_head;    /* added started a new chain */
};

struct store_txn {
	struct store *s;
	uint64_t version;
	int prepared;
	struct sname **changed; /* names changed, once each; set by prepare */
	size_t n_changed;
	struct change *changes;
	size_t n_changes, cap_changes;
	size_t live_changes;
	ldns_buffer *scratch; /* rdata_pack()'s, kept for the txn's life */
	ldns_rr_list *group;  /* store_txn_name_set()'s, borrows RRs; count 0 between calls */
};

struct pin {
	uint64_t version;
	uint32_t count;
};

struct store {
	pthread_rwlock_t lock;
	/* Pins of versions read over several calls.  pin_mu is taken after the
	 * rwlock, never before it.  prune_floor: versions below it are gone or
	 * being pruned, so they cannot be pinned any more. */
	pthread_mutex_t pin_mu;
	struct pin *pins;
	size_t n_pins, cap_pins;
	uint64_t prune_floor;
	ldns_rbtree_t tree;
	ldns_rdf *apex;
	_Atomic uint64_t published;
	uint64_t base; /* version of versions[0] */
	struct version_info *versions;
	size_t n_versions, cap_versions;
	struct store_txn *txn;
	_Atomic uint64_t txn_version; /* version the open txn builds; 0 when none */
	/* statistics; writer only, read under the lock */
	size_t names, rrsets_live, rrsets_total, bytes;
};

/* --- keys ------------------------------------------------------------ */

static zd_err
key_from_rdf(const ldns_rdf *name, uint8_t *key, uint16_t *keylen)
{
	if (name == NULL || ldns_rdf_get_type(name) != LDNS_RDF_TYPE_DNAME)
		return ZD_EMALFORMED;
	return zd_name_key(ldns_rdf_data(name), ldns_rdf_size(name), key, keylen);
}

/* Wire form (lower case) of a key; out has room for 256 octets. */
static size_t
key_to_wire(const uint8_t *key, uint16_t keylen, uint8_t *out)
{
	uint8_t labels[128][64];
	uint8_t lens[128];
	size_t n = 0, pos = 0, w = 0;

	while (pos < keylen && n < 128) {
		uint8_t len = 0;
		while (pos < keylen && key[pos] != 0) {
			uint8_t c = key[pos++];
			if (c == 1 && pos < keylen)
				c = (uint8_t)(key[pos++] - 1);
			if (len < 63)
				labels[n][len++] = c;
		}
		pos++; /* the 0x00 terminator */
		lens[n++] = len;
	}
	while (n-- > 0) {
		out[w++] = lens[n];
		memcpy(out + w, labels[n], lens[n]);
		w += lens[n];
	}
	out[w++] = 0;
	return w;
}

static uint16_t
kb_len(const uint8_t *kb)
{
	uint16_t l;
	memcpy(&l, kb, sizeof l);
	return l;
}

static int
kb_cmp(const void *a, const void *b)
{
	uint16_t la = kb_len(a), lb = kb_len(b);
	int c = memcmp((const uint8_t *)a + 2, (const uint8_t *)b + 2, la < lb ? la : lb);
	if (c != 0)
		return c;
	return la < lb ? -1 : la > lb;
}

static void
kb_make(uint8_t *kb, const uint8_t *key, uint16_t keylen)
{
	memcpy(kb, &keylen, sizeof keylen);
	memcpy(kb + 2, key, keylen);
}

static ldns_rdf *
name_rdf(const struct sname *n)
{
	uint8_t wire[256];
	size_t len = key_to_wire(n->kb + 2, kb_len(n->kb), wire);
	return ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, len, wire);
}

/* --- rdata sets ------------------------------------------------------ */

struct rd {
	const uint8_t *p; /* rdata */
	uint16_t len;
};

static int
rd_cmp(const void *a, const void *b)
{
	const struct rd *x = a, *y = b;
	int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
	if (c != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* Next record of an rrver's data; *pos advances. */
static struct rd
rrver_rd(const struct rrver *r, size_t *pos)
{
	struct rd d;
	uint16_t l = (uint16_t)(r->data[*pos] << 8 | r->data[*pos + 1]);
	d.p = r->data + *pos + 2;
	d.len = l;
	*pos += 2u + l;
	return d;
}

/* Same records and TTL. */
static int
rrver_same(const struct rrver *a, uint32_t ttl, const uint8_t *data, uint32_t len, uint32_t count)
{
	return a != NULL && a->ttl == ttl && a->count == count && a->len == len &&
	       memcmp(a->data, data, len) == 0;
}

/* --- lookups ----------------------------------------------------------- */

static struct sname *
name_find(struct store *s, const uint8_t *key, uint16_t keylen)
{
	uint8_t kb[2 + KEY_MAX];
	kb_make(kb, key, keylen);
	ldns_rbnode_t *n = ldns_rbtree_search(&s->tree, kb);
	return n ? (struct sname *)n : NULL;
}

/* The chain head of (type, covered) at n, or NULL. */
static struct rrver *
chain_find(const struct sname *n, uint16_t type, uint16_t covered)
{
	for (struct rrver *h = n->heads; h != NULL; h = h->next_type)
		if (h->type == type && h->covered == covered)
			return h;
	return NULL;
}

/* The version of a chain visible at v, or NULL. */
static const struct rrver *
chain_at(const struct rrver *h, uint64_t v)
{
	while (h != NULL && h->from > v)
		h = h->older;
	return h != NULL && h->to > v ? h : NULL;
}

static const struct version_info *
vinfo(const struct store *s, uint64_t v)
{
	if (v < s->base || v - s->base >= s->n_versions)
		return NULL;
	return &s->versions[v - s->base];
}

/* v may be read: a kept, published version, or the version the open txn
 * builds (only the writer asks for that one).  Under the read lock. */
static int
readable(const struct store *s, uint64_t v)
{
	if (v != 0 && v == atomic_load(&s->txn_version))
		return 1;
	return v != 0 && v <= store_published_get(s) && vinfo(s, v) != NULL;
}

/* --- life cycle --------------------------------------------------------- */

zd_err
store_new(const char *zone, struct store **out)
{
	struct store *s = calloc(1, sizeof *s);
	pthread_rwlockattr_t attr;

	if (s == NULL)
		return ZD_ENOMEM;
	if (ldns_str2rdf_dname(&s->apex, zone) != LDNS_STATUS_OK) {
		free(s);
		return ZD_EMALFORMED;
	}
	ldns_dname2canonical(s->apex);
	ldns_rbtree_init(&s->tree, kb_cmp);
	pthread_rwlockattr_init(&attr);
	/* A stream of AXFR readers must not starve the batch thread. */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&s->pin_mu, NULL);
	*out = s;
	return ZD_OK;
}

static void
free_name(ldns_rbnode_t *node, void *arg)
{
	struct sname *n = (struct sname *)node;
	(void)arg;
	for (struct rrver *h = n->heads; h != NULL;) {
		struct rrver *next_type = h->next_type;
		for (struct rrver *r = h; r != NULL;) {
			struct rrver *older = r->older;
			free(r);
			r = older;
		}
		h = next_type;
	}
	free(n);
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	if (s->txn != NULL) {
		struct store_txn *t = s->txn;
		store_txn_abort(&t);
	}
	ldns_traverse_postorder(&s->tree, free_name, NULL);
	for (size_t i = 0; i < s->n_versions; i++)
		free(s->versions[i].changed);
	free(s->versions);
	ldns_rdf_deep_free(s->apex);
	free(s->pins);
	pthread_mutex_destroy(&s->pin_mu);
	pthread_rwlock_destroy(&s->lock);
	free(s);
}

zd_err
store_base_set(struct store *s, uint64_t first_version)
{
	if (zd_check_failed(s->n_versions == 0 && s->txn == NULL && first_version > 0))
		return ZD_EBUG;
	atomic_store(&s->published, first_version - 1);
	return ZD_OK;
}

const ldns_rdf *
store_apex_get(const struct store *s)
{
	return s->apex;
}

uint64_t
store_published_get(const struct store *s)
{
	return atomic_load(&s->published);
}

uint64_t
store_oldest_get(const struct store *s)
{
	return s->n_versions ? s->base : 0;
}

/* A copy of a kept, published version's info, under the read lock. */
static zd_err
vinfo_copy(const struct store *s, uint64_t version, struct version_info *out)
{
	zd_err e = ZD_ENOTFOUND;
	pthread_rwlock_rdlock((pthread_rwlock_t *)&s->lock);
	const struct version_info *vi = vinfo(s, version);
	if (vi != NULL && version <= store_published_get(s)) {
		*out = *vi;
		e = ZD_OK;
	}
	pthread_rwlock_unlock((pthread_rwlock_t *)&s->lock);
	return e;
}

zd_err
store_serial_find(const struct store *s, uint64_t version, uint32_t *serial_out)
{
	struct version_info vi;
	zd_err e = vinfo_copy(s, version, &vi);
	if (e == ZD_OK)
		*serial_out = vi.serial;
	return e;
}

zd_err
store_version_time_find(const struct store *s, uint64_t version, uint64_t *published_ms_out)
{
	struct version_info vi;
	zd_err e = vinfo_copy(s, version, &vi);
	if (e == ZD_OK)
		*published_ms_out = vi.published_ms;
	return e;
}

zd_err
store_version_find(const struct store *s, uint32_t serial, uint64_t *version_out)
{
	zd_err e = ZD_ENOTFOUND;
	pthread_rwlock_rdlock((pthread_rwlock_t *)&s->lock);
	uint64_t pub = store_published_get(s);
	for (size_t i = s->n_versions; i-- > 0;) {
		uint64_t v = s->base + i;
		if (v <= pub && s->versions[i].serial == serial) {
			*version_out = v;
			e = ZD_OK;
			break;
		}
	}
	pthread_rwlock_unlock((pthread_rwlock_t *)&s->lock);
	return e;
}

/* --- reading ------------------------------------------------------------ */

/* Append one RR in uncompressed wire form: owner (wire, olen octets), type,
 * class, ttl, rdata; item is an rrver record (u16 rdlength, rdata). */
static zd_err
wire_rr_owner(struct zd_buf *b, const uint8_t *owner, size_t olen, const struct rrver *r,
              const uint8_t *item)
{
	uint16_t rdlen = (uint16_t)(item[0] << 8 | item[1]);
	zd_err e;

	if ((e = zd_buf_append(b, owner, olen)) != ZD_OK ||
	    (e = zd_buf_append_u16(b, r->type)) != ZD_OK ||
	    (e = zd_buf_append_u16(b, LDNS_RR_CLASS_IN)) != ZD_OK ||
	    (e = zd_buf_append_u32(b, r->ttl)) != ZD_OK ||
	    (e = zd_buf_append(b, item, 2u + rdlen)) != ZD_OK)
		return e;
	return ZD_OK;
}

static zd_err
wire_rr(struct zd_buf *b, const struct sname *n, const struct rrver *r, const uint8_t *item)
{
	uint8_t owner[256];
	size_t olen = key_to_wire(n->kb + 2, kb_len(n->kb), owner);
	return wire_rr_owner(b, owner, olen, r, item);
}

/* Where built RRs go: lent to fn for the call, or given to take; or
 * (emit_name() only) the records as they are kept, appended to wire. */
struct emit {
	store_rr_fn fn;
	store_rr_take_fn take;
	struct zd_buf *wire;
	void *arg;
};

/* Build the RRs of one rrver and hand them to em. */
static zd_err
emit_rrver(const ldns_rdf *owner, const struct rrver *r, const struct emit *em, const uint8_t *skip,
           uint32_t skip_len, uint32_t skip_ttl)
{
	size_t pos = 0;
	zd_err e = ZD_OK;

	/* When skip (another rrver's data with the same TTL) is given, emit only
	 * the records that are not in it: the difference of two versions. */
	for (uint32_t i = 0; i < r->count && e == ZD_OK; i++) {
		size_t start = pos;
		struct rd d = rrver_rd(r, &pos);
		if (skip != NULL && skip_ttl == r->ttl) {
			int found = 0;
			for (size_t q = 0; q < skip_len;) {
				uint16_t l = (uint16_t)(skip[q] << 8 | skip[q + 1]);
				if (l == d.len && memcmp(skip + q + 2, d.p, l) == 0) {
					found = 1;
					break;
				}
				q += 2u + l;
			}
			if (found)
				continue;
		}
		ldns_rr *rr = ldns_rr_new();
		if (rr == NULL)
			return ZD_ENOMEM;
		ldns_rdf *o = ldns_rdf_clone(owner);
		if (o == NULL) {
			ldns_rr_free(rr);
			return ZD_ENOMEM;
		}
		ldns_rr_set_owner(rr, o);
		ldns_rr_set_type(rr, (ldns_rr_type)r->type);
		ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
		ldns_rr_set_ttl(rr, r->ttl);
		size_t p = start;
		if (ldns_wire2rdf(rr, r->data, r->len, &p) != LDNS_STATUS_OK) {
			/* stored by us from valid RRs: cannot happen */
			ldns_rr_free(rr);
			zd_check_failed(0);
			return ZD_EBUG;
		}
		if (em->take != NULL) {
			e = em->take(em->arg, rr); /* em->take owns rr now */
		} else {
			e = em->fn(em->arg, rr);
			ldns_rr_free(rr);
		}
	}
	return e;
}

/* Emit every RRset of n visible at v; SOA first. */
static zd_err
emit_name(const struct sname *n, uint64_t v, const struct emit *em)
{
	ldns_rdf *owner = NULL;
	uint8_t wire[256];
	size_t wire_len = 0;
	zd_err e = ZD_OK;

	for (int pass = 0; pass < 2 && e == ZD_OK; pass++) {
		for (const struct rrver *h = n->heads; h != NULL && e == ZD_OK; h = h->next_type) {
			const struct rrver *r = chain_at(h, v);
			if (r == NULL || (pass == 0) != (r->type == LDNS_RR_TYPE_SOA))
				continue;
			if (em->wire != NULL) {
				if (wire_len == 0)
					wire_len = key_to_wire(n->kb + 2, kb_len(n->kb), wire);
				size_t pos = 0;
				for (uint32_t i = 0; i < r->count && e == ZD_OK; i++) {
					const uint8_t *item = r->data + pos;
					(void)rrver_rd(r, &pos);
					e = wire_rr_owner(em->wire, wire, wire_len, r, item);
				}
				continue;
			}
			if (owner == NULL && (owner = name_rdf(n)) == NULL)
				return ZD_ENOMEM;
			e = emit_rrver(owner, r, em, NULL, 0, 0);
		}
	}
	ldns_rdf_deep_free(owner);
	return e;
}

static zd_err
walk(struct store *s, uint64_t version, struct store_cursor *c, size_t max_names,
     const struct emit *em)
{
	zd_err e = ZD_OK;
	ldns_rbnode_t *node;
	size_t done = 0;

	if (c->done)
		return ZD_OK;
	pthread_rwlock_rdlock(&s->lock);
	if (!readable(s, version)) {
		e = ZD_ENOTFOUND;
		goto out;
	}
	if (!c->started) {
		node = ldns_rbtree_first(&s->tree);
	} else {
		uint8_t kb[2 + KEY_MAX];
		kb_make(kb, c->key, c->keylen);
		/* The last name emitted is never removed while a reader could
		 * hold its key, but find the next one even if it were. */
		if (ldns_rbtree_find_less_equal(&s->tree, kb, &node))
			node = ldns_rbtree_next(node);
		else if (node == NULL)
			node = ldns_rbtree_first(&s->tree);
		else
			node = ldns_rbtree_next(node);
	}
	for (; node != LDNS_RBTREE_NULL && done < max_names; node = ldns_rbtree_next(node)) {
		struct sname *n = (struct sname *)node;
		if ((e = emit_name(n, version, em)) != ZD_OK)
			goto out;
		c->keylen = kb_len(n->kb);
		memcpy(c->key, n->kb + 2, c->keylen);
		c->started = 1;
		done++;
	}
	if (node == LDNS_RBTREE_NULL)
		c->done = 1;
out:
	pthread_rwlock_unlock(&s->lock);
	return e;
}

zd_err
store_walk(struct store *s, uint64_t version, struct store_cursor *c, size_t max_names,
           store_rr_fn fn, void *arg)
{
	struct emit em = {.fn = fn, .arg = arg};
	return walk(s, version, c, max_names, &em);
}

zd_err
store_walk_wire(struct store *s, uint64_t version, struct store_cursor *c, size_t max_names,
                struct zd_buf *out)
{
	struct emit em = {.wire = out};
	return walk(s, version, c, max_names, &em);
}

static int name_live(const struct sname *n, uint64_t v, uint16_t type);

/* The types of n's RRsets live at v into types[] (ascending, RRSIG once);
 * ZD_ELIMIT past cap. */
static zd_err
types_at(const struct sname *sn, uint64_t v, uint16_t *types, size_t cap, size_t *n_out)
{
	size_t n = 0;
	for (const struct rrver *h = sn->heads; h != NULL; h = h->next_type) {
		if (chain_at(h, v) == NULL)
			continue;
		size_t i = 0;
		while (i < n && types[i] < h->type)
			i++;
		if (i < n && types[i] == h->type)
			continue; /* RRSIG: once */
		if (n == cap)
			return ZD_ELIMIT;
		memmove(types + i + 1, types + i, (n - i) * sizeof *types);
		types[i] = h->type;
		n++;
	}
	*n_out = n;
	return ZD_OK;
}

static zd_err
names_walk(struct store *s, uint64_t version, struct store_cursor *c, size_t max_names,
           store_name_fn fn, store_name_types_fn tfn, void *arg)
{
	uint16_t types[STORE_NAME_TYPES_MAX];
	zd_err e = ZD_OK;
	ldns_rbnode_t *node;
	size_t done = 0;

	if (c->done)
		return ZD_OK;
	pthread_rwlock_rdlock(&s->lock);
	if (!readable(s, version)) {
		e = ZD_ENOTFOUND;
		goto out;
	}
	if (!c->started) {
		node = ldns_rbtree_first(&s->tree);
	} else {
		uint8_t kb[2 + KEY_MAX];
		kb_make(kb, c->key, c->keylen);
		if (ldns_rbtree_find_less_equal(&s->tree, kb, &node) || node != NULL)
			node = ldns_rbtree_next(node);
		else
			node = ldns_rbtree_first(&s->tree);
	}
	for (; node != LDNS_RBTREE_NULL && done < max_names; node = ldns_rbtree_next(node)) {
		struct sname *n = (struct sname *)node;
		c->keylen = kb_len(n->kb);
		memcpy(c->key, n->kb + 2, c->keylen);
		c->started = 1;
		if (!name_live(n, version, 0))
			continue;
		size_t n_types = 0;
		if (tfn != NULL &&
		    (e = types_at(n, version, types, STORE_NAME_TYPES_MAX, &n_types)) != ZD_OK)
			goto out;
		ldns_rdf *name = name_rdf(n);
		if (name == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		e = tfn != NULL ? tfn(arg, name, types, n_types) : fn(arg, name);
		ldns_rdf_deep_free(name);
		if (e != ZD_OK)
			goto out;
		done++;
	}
	if (node == LDNS_RBTREE_NULL)
		c->done = 1;
out:
	pthread_rwlock_unlock(&s->lock);
	return e;
}

zd_err
store_names_walk(struct store *s, uint64_t version, struct store_cursor *c, size_t max_names,
                 store_name_fn fn, void *arg)
{
	return names_walk(s, version, c, max_names, fn, NULL, arg);
}

zd_err
store_names_types_walk(struct store *s, uint64_t version, struct store_cursor *c, size_t max_names,
                       store_name_types_fn fn, void *arg)
{
	return names_walk(s, version, c, max_names, NULL, fn, arg);
}

zd_err
store_rr_list_take(void *arg, ldns_rr *rr)
{
	if (!ldns_rr_list_push_rr(arg, rr)) {
		ldns_rr_free(rr);
		return ZD_ENOMEM;
	}
	return ZD_OK;
}

static const struct emit *
collect_into(struct emit *em, ldns_rr_list *l)
{
	*em = (struct emit){.take = store_rr_list_take, .arg = l};
	return em;
}

/* The read lock, taken, and owner's node at a readable version (NULL when
 * owner has none).  On ZD_OK the caller unlocks; on failure nothing is held. */
static zd_err
read_name(struct store *s, uint64_t version, const ldns_rdf *owner, struct sname **n)
{
	uint8_t key[KEY_MAX];
	uint16_t keylen;
	zd_err e;

	if ((e = key_from_rdf(owner, key, &keylen)) != ZD_OK)
		return e;
	pthread_rwlock_rdlock(&s->lock);
	if (!readable(s, version)) {
		pthread_rwlock_unlock(&s->lock);
		return ZD_ENOTFOUND;
	}
	*n = name_find(s, key, keylen);
	return ZD_OK;
}

zd_err
store_rrset_find(struct store *s, uint64_t version, const ldns_rdf *owner, uint16_t type,
                 uint16_t covered, ldns_rr_list **out)
{
	ldns_rr_list *l = NULL;
	struct sname *n = NULL;
	zd_err e;

	if ((e = read_name(s, version, owner, &n)) != ZD_OK)
		return e;
	const struct rrver *r = n ? chain_at(chain_find(n, type, covered), version) : NULL;
	if (r != NULL) {
		if ((l = ldns_rr_list_new()) == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		ldns_rdf *o = name_rdf(n);
		struct emit em;
		e = o ? emit_rrver(o, r, collect_into(&em, l), NULL, 0, 0) : ZD_ENOMEM;
		ldns_rdf_deep_free(o);
		if (e != ZD_OK)
			goto out;
	}
	*out = l;
	l = NULL;
out:
	pthread_rwlock_unlock(&s->lock);
	ldns_rr_list_deep_free(l);
	return e;
}

static zd_err
name_rrs(struct store *s, uint64_t version, const ldns_rdf *owner, const struct emit *em)
{
	struct sname *n = NULL;
	zd_err e;

	if ((e = read_name(s, version, owner, &n)) != ZD_OK)
		return e;
	if (n != NULL)
		e = emit_name(n, version, em);
	pthread_rwlock_unlock(&s->lock);
	return e;
}

zd_err
store_name_rrs(struct store *s, uint64_t version, const ldns_rdf *owner, store_rr_fn fn, void *arg)
{
	struct emit em = {.fn = fn, .arg = arg};
	return name_rrs(s, version, owner, &em);
}

zd_err
store_name_rrs_take(struct store *s, uint64_t version, const ldns_rdf *owner, store_rr_take_fn fn,
                    void *arg)
{
	struct emit em = {.take = fn, .arg = arg};
	return name_rrs(s, version, owner, &em);
}

static int
u64_desc(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
	return a < b ? 1 : a > b ? -1 : 0;
}

/* Insert v into the descending, distinct set vs[0..*n) of at most cap. */
static void
history_add(uint64_t *vs, size_t cap, size_t *n, int *more, uint64_t v)
{
	for (size_t i = 0; i < *n; i++)
		if (vs[i] == v)
			return;
	if (*n < cap) {
		vs[(*n)++] = v;
		qsort(vs, *n, sizeof *vs, u64_desc);
		return;
	}
	*more = 1;
	if (cap > 0 && v > vs[cap - 1]) {
		vs[cap - 1] = v;
		qsort(vs, cap, sizeof *vs, u64_desc);
	}
}

zd_err
store_name_history(struct store *s, const ldns_rdf *owner, uint64_t *versions, size_t cap,
                   size_t *n_out, int *more)
{
	uint8_t key[KEY_MAX];
	uint16_t keylen;
	size_t n = 0;
	zd_err e;

	*n_out = 0;
	*more = 0;
	if ((e = key_from_rdf(owner, key, &keylen)) != ZD_OK)
		return e;
	pthread_rwlock_rdlock(&s->lock);
	uint64_t oldest = s->n_versions ? s->base : 0, pub = store_published_get(s);
	const struct sname *sn = oldest ? name_find(s, key, keylen) : NULL;
	for (const struct rrver *h = sn ? sn->heads : NULL; h != NULL; h = h->next_type)
		for (const struct rrver *r = h; r != NULL; r = r->older) {
			if (r->from > oldest && r->from <= pub)
				history_add(versions, cap, &n, more, r->from);
			if (r->to != STORE_LIVE && r->to > oldest && r->to <= pub)
				history_add(versions, cap, &n, more, r->to);
		}
	pthread_rwlock_unlock(&s->lock);
	*n_out = n;
	return ZD_OK;
}

zd_err
store_name_types(struct store *s, uint64_t version, const ldns_rdf *owner, uint16_t *types,
                 size_t cap, size_t *n_out)
{
	struct sname *sn = NULL;
	size_t n = 0;
	zd_err e;

	if ((e = read_name(s, version, owner, &sn)) != ZD_OK)
		return e;
	if (sn != NULL)
		e = types_at(sn, version, types, cap, &n);
	if (e == ZD_OK)
		*n_out = n;
	pthread_rwlock_unlock(&s->lock);
	return e;
}

/* n holds a live RRset of type (0: any) at v. */
static int
name_live(const struct sname *n, uint64_t v, uint16_t type)
{
	for (const struct rrver *h = n->heads; h != NULL; h = h->next_type)
		if ((type == 0 || h->type == type) && chain_at(h, v) != NULL)
			return 1;
	return 0;
}

zd_err
store_name_neighbor(struct store *s, uint64_t version, const ldns_rdf *owner, int dir,
                    uint16_t type, ldns_rdf **out)
{
	uint8_t key[KEY_MAX], kb[2 + KEY_MAX];
	uint16_t keylen = 0;
	ldns_rbnode_t *node = NULL;
	zd_err e = ZD_OK;

	if (owner != NULL && (e = key_from_rdf(owner, key, &keylen)) != ZD_OK)
		return e;
	pthread_rwlock_rdlock(&s->lock);
	if (!readable(s, version)) {
		e = ZD_ENOTFOUND;
		goto out;
	}
	if (owner == NULL) {
		node = dir > 0 ? ldns_rbtree_first(&s->tree) : ldns_rbtree_last(&s->tree);
	} else {
		kb_make(kb, key, keylen);
		int exact = ldns_rbtree_find_less_equal(&s->tree, kb, &node);
		if (dir > 0)
			node = node == NULL ? ldns_rbtree_first(&s->tree) : ldns_rbtree_next(node);
		else if (exact)
			node = ldns_rbtree_previous(node);
		else if (node == NULL)
			node = LDNS_RBTREE_NULL;
	}
	while (node != LDNS_RBTREE_NULL && !name_live((struct sname *)node, version, type))
		node = dir > 0 ? ldns_rbtree_next(node) : ldns_rbtree_previous(node);
	if (node == LDNS_RBTREE_NULL) {
		e = ZD_ENOTFOUND;
		goto out;
	}
	if ((*out = name_rdf((struct sname *)node)) == NULL)
		e = ZD_ENOMEM;
out:
	pthread_rwlock_unlock(&s->lock);
	return e;
}

zd_err
store_below_walk(struct store *s, uint64_t version, const ldns_rdf *owner, size_t max_visits,
                 store_name_fn fn, void *arg)
{
	uint8_t key[KEY_MAX], kb[2 + KEY_MAX];
	uint16_t keylen;
	ldns_rbnode_t *node = NULL;
	size_t visits = 0;
	zd_err e;

	if ((e = key_from_rdf(owner, key, &keylen)) != ZD_OK)
		return e;
	kb_make(kb, key, keylen);
	pthread_rwlock_rdlock(&s->lock);
	if (!readable(s, version)) {
		e = ZD_ENOTFOUND;
		goto out;
	}
	ldns_rbtree_find_less_equal(&s->tree, kb, &node);
	node = node == NULL ? ldns_rbtree_first(&s->tree) : ldns_rbtree_next(node);
	/* The names below owner follow it: their keys extend owner's key. */
	for (; node != LDNS_RBTREE_NULL; node = ldns_rbtree_next(node)) {
		struct sname *n = (struct sname *)node;
		if (kb_len(n->kb) <= keylen || memcmp(n->kb + 2, key, keylen) != 0)
			break;
		if (++visits > max_visits) {
			e = ZD_ELIMIT;
			goto out;
		}
		if (!name_live(n, version, 0))
			continue;
		ldns_rdf *name = name_rdf(n);
		if (name == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		e = fn(arg, name);
		ldns_rdf_deep_free(name);
		if (e != ZD_OK)
			goto out;
	}
out:
	pthread_rwlock_unlock(&s->lock);
	return e;
}

static int
sname_ptr_cmp(const void *a, const void *b)
{
	const struct sname *x = *(struct sname *const *)a, *y = *(struct sname *const *)b;
	return kb_cmp(x->kb, y->kb);
}

/* Records of a (from-version, to-version) pair of one chain that differ. */
static zd_err
diff_chain(const ldns_rdf *owner, const struct rrver *a, const struct rrver *b, size_t *budget,
           store_rr_fn del_fn, store_rr_fn add_fn, void *arg)
{
	zd_err e = ZD_OK;
	if (a == b)
		return ZD_OK;
	size_t cost = (a ? a->count : 0) + (b ? b->count : 0);
	if (cost > *budget)
		return ZD_ELIMIT;
	*budget -= cost;
	struct emit del = {.fn = del_fn, .arg = arg}, add = {.fn = add_fn, .arg = arg};
	if (a != NULL)
		e = emit_rrver(owner, a, &del, b ? b->data : NULL, b ? b->len : 0, b ? b->ttl : 0);
	if (e == ZD_OK && b != NULL)
		e = emit_rrver(owner, b, &add, a ? a->data : NULL, a ? a->len : 0, a ? a->ttl : 0);
	return e;
}

zd_err
store_diff(struct store *s, uint64_t from, uint64_t to, size_t max_rrs, store_rr_fn del_fn,
           store_rr_fn add_fn, void *arg)
{
	struct sname **names = NULL;
	size_t n = 0, cap = 0;
	zd_err e = ZD_OK;
	size_t budget = max_rrs;
	ldns_rdf *owner = NULL;

	pthread_rwlock_rdlock(&s->lock);
	if (from >= to || to > store_published_get(s) || vinfo(s, from) == NULL ||
	    vinfo(s, to) == NULL) {
		e = ZD_ENOTFOUND;
		goto out;
	}
	for (uint64_t v = from + 1; v <= to; v++) {
		const struct version_info *vi = vinfo(s, v);
		if (zd_check_failed(vi != NULL && vi->changed != NULL)) {
			e = ZD_EBUG;
			goto out;
		}
		if (n + vi->n_changed > max_rrs + 1) {
			e = ZD_ELIMIT; /* more names changed than records allowed */
			goto out;
		}
		if (n + vi->n_changed > cap) {
			size_t ncap = (n + vi->n_changed) * 2;
			struct sname **p = realloc(names, ncap * sizeof *p);
			if (p == NULL) {
				e = ZD_ENOMEM;
				goto out;
			}
			names = p;
			cap = ncap;
		}
		memcpy(names + n, vi->changed, vi->n_changed * sizeof *names);
		n += vi->n_changed;
	}
	qsort(names, n, sizeof *names, sname_ptr_cmp);
	/* SOA first, as a difference sequence wants it (the apex sorts first
	 * in canonical order, and its SOA is emitted first below). */
	for (size_t i = 0; i < n && e == ZD_OK; i++) {
		if (i > 0 && names[i] == names[i - 1])
			continue;
		if ((owner = name_rdf(names[i])) == NULL) {
			e = ZD_ENOMEM;
			break;
		}
		for (int pass = 0; pass < 2 && e == ZD_OK; pass++)
			for (const struct rrver *h = names[i]->heads; h != NULL && e == ZD_OK;
			     h = h->next_type) {
				if ((pass == 0) != (h->type == LDNS_RR_TYPE_SOA))
					continue;
				e = diff_chain(owner, chain_at(h, from), chain_at(h, to), &budget,
				               del_fn, add_fn, arg);
			}
		ldns_rdf_deep_free(owner);
		owner = NULL;
	}
out:
	pthread_rwlock_unlock(&s->lock);
	free(names);
	return e;
}

/* --- writing ------------------------------------------------------------ */

zd_err
store_txn_begin(struct store *s, struct store_txn **out)
{
	struct store_txn *t;

	if (zd_check_failed(s->txn == NULL))
		return ZD_EBUG;
	if ((t = calloc(1, sizeof *t)) == NULL)
		return ZD_ENOMEM;
	t->s = s;
	t->version = store_published_get(s) + 1;
	s->txn = t;
	atomic_store(&s->txn_version, t->version);
	*out = t;
	return ZD_OK;
}

uint64_t
store_txn_version_get(const struct store_txn *t)
{
	return t->version;
}

size_t
store_txn_changes_get(const struct store_txn *t)
{
	return t->live_changes;
}

zd_err
store_txn_changes_foreach(struct store_txn *t, store_change_fn fn, void *arg)
{
	zd_err e = ZD_OK;
	for (size_t i = 0; i < t->n_changes && e == ZD_OK; i++) {
		const struct change *c = &t->changes[i];
		if (c->name == NULL)
			continue;
		const struct rrver *r = c->added ? c->added : c->ended;
		ldns_rdf *owner = name_rdf(c->name);
		if (owner == NULL)
			return ZD_ENOMEM;
		e = fn(arg, owner, r->type, r->covered);
		ldns_rdf_deep_free(owner);
	}
	return e;
}

/* A new name, known not to be in the tree yet. */
static struct sname *
name_add(struct store *s, const uint8_t *key, uint16_t keylen)
{
	struct sname *n = calloc(1, sizeof *n + 2u + keylen);
	if (n == NULL)
		return NULL;
	kb_make(n->kb, key, keylen);
	n->node.key = n->kb;
	pthread_rwlock_wrlock(&s->lock);
	ldns_rbtree_insert(&s->tree, &n->node);
	s->names++;
	s->bytes += sizeof *n + 2u + keylen;
	pthread_rwlock_unlock(&s->lock);
	return n;
}

/* Sorted, de-duplicated rdata of rrs as (u16 len, bytes) items.  scratch:
 * the txn's buffer (t->scratch), made on first use. */
static zd_err
rdata_pack(const ldns_rr_list *rrs, ldns_buffer **scratch, uint8_t **data, uint32_t *len,
           uint32_t *count)
{
	size_t n = rrs ? ldns_rr_list_rr_count(rrs) : 0;
	struct rd *v = NULL;
	ldns_buffer *b;
	uint8_t *out = NULL;
	size_t total = 0, w = 0;
	uint32_t k = 0;
	zd_err e = ZD_OK;

	if (n > RRSET_MAX_RR)
		return ZD_ELIMIT;
	if (n == 0) {
		*data = NULL;
		*len = 0;
		*count = 0;
		return ZD_OK;
	}
	if (*scratch == NULL && (*scratch = ldns_buffer_new(4096)) == NULL)
		return ZD_ENOMEM;
	b = *scratch;
	ldns_buffer_clear(b);
	if (n == 1) { /* most RRsets: no sorting, one allocation */
		if (ldns_rr_rdata2buffer_wire(b, ldns_rr_list_rr(rrs, 0)) != LDNS_STATUS_OK ||
		    ldns_buffer_position(b) > 65535)
			return ZD_EMALFORMED;
		size_t l = ldns_buffer_position(b);
		if ((out = malloc(2 + l)) == NULL)
			return ZD_ENOMEM;
		out[0] = (uint8_t)(l >> 8);
		out[1] = (uint8_t)l;
		memcpy(out + 2, ldns_buffer_begin(b), l);
		*data = out;
		*len = (uint32_t)(2 + l);
		*count = 1;
		return ZD_OK;
	}
	v = calloc(n, sizeof *v);
	if (v == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	/* Serialise every rdata into one buffer, remembering the offsets. */
	size_t *off = calloc(n, sizeof *off);
	if (off == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		off[i] = ldns_buffer_position(b);
		if (ldns_rr_rdata2buffer_wire(b, ldns_rr_list_rr(rrs, i)) != LDNS_STATUS_OK ||
		    ldns_buffer_position(b) - off[i] > 65535) {
			free(off);
			e = ZD_EMALFORMED;
			goto out;
		}
	}
	if (ldns_buffer_position(b) > RDATA_MAX) {
		free(off);
		e = ZD_ELIMIT;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t end = i + 1 < n ? off[i + 1] : ldns_buffer_position(b);
		v[i].p = ldns_buffer_at(b, off[i]);
		v[i].len = (uint16_t)(end - off[i]);
	}
	free(off);
	qsort(v, n, sizeof *v, rd_cmp);
	for (size_t i = 0; i < n; i++)
		total += 2u + v[i].len;
	if ((out = malloc(total)) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && rd_cmp(&v[i], &v[i - 1]) == 0)
			continue; /* a duplicate RR is one RR (RFC 2181 s5) */
		out[w++] = (uint8_t)(v[i].len >> 8);
		out[w++] = (uint8_t)v[i].len;
		memcpy(out + w, v[i].p, v[i].len);
		w += v[i].len;
		k++;
	}
	*data = out;
	*len = (uint32_t)w;
	*count = k;
	out = NULL;
out:
	free(out);
	free(v);
	return e;
}

static zd_err
txn_change_push(struct store_txn *t, struct change c)
{
	if (t->n_changes == t->cap_changes) {
		size_t ncap = t->cap_changes ? t->cap_changes * 2 : 64;
		struct change *p = realloc(t->changes, ncap * sizeof *p);
		if (p == NULL)
			return ZD_ENOMEM;
		t->changes = p;
		t->cap_changes = ncap;
	}
	t->changes[t->n_changes++] = c;
	t->live_changes++;
	return ZD_OK;
}

/* Undo one change (under the write lock). */
static void
change_undo(struct store *s, struct change *c)
{
	struct sname *n = c->name;
	if (c->added != NULL) {
		/* c->added is the chain head; put its older entry back. */
		struct rrver **pp = &n->heads;
		while (*pp != NULL && *pp != c->added)
			pp = &(*pp)->next_type;
		if (*pp == c->added) {
			if (c->added->older != NULL) {
				c->added->older->next_type = c->added->next_type;
				*pp = c->added->older;
			} else {
				*pp = c->added->next_type;
			}
		}
		s->bytes -= sizeof *c->added + c->added->len;
		s->rrsets_total--;
		s->rrsets_live--;
		free(c->added);
	}
	if (c->ended != NULL) {
		c->ended->to = STORE_LIVE;
		s->rrsets_live++;
	}
	c->name = NULL;
}

/* Put the packed RRset (count 0: delete it) at the name n. */
static zd_err
rrset_put_at(struct store_txn *t, struct sname *n, uint16_t type, uint16_t covered, uint32_t ttl,
             uint8_t *data, uint32_t len, uint32_t count)
{
	struct store *s = t->s;
	struct rrver *h, *r = NULL;
	struct change c = {0};

	h = chain_find(n, type, covered);
	/* A second put of the same RRset in this txn that fits where the first
	 * one is: only this txn sees h, so it is rewritten in place and its
	 * change stays as it is (finding that change is a walk back over the
	 * txn's changes: a full signing rewrites every NSEC3 record once its
	 * next owner is known, with millions of changes in the txn).  Not when
	 * the RRset goes back to what is published: the change goes then. */
	if (h != NULL && h->from == t->version && count > 0 && len <= h->len &&
	    !(h->older != NULL && h->older->to == t->version &&
	      rrver_same(h->older, ttl, data, len, count))) {
		if (rrver_same(h, ttl, data, len, count))
			return ZD_OK;
		pthread_rwlock_wrlock(&s->lock);
		s->bytes -= h->len - len;
		h->ttl = ttl;
		h->count = count;
		h->len = len;
		memcpy(h->data, data, len);
		pthread_rwlock_unlock(&s->lock);
		return ZD_OK;
	}
	/* Else a second put undoes the first, so a change records the
	 * published state against the final one. */
	if (h != NULL && h->from == t->version) {
		for (size_t i = t->n_changes; i-- > 0;)
			if (t->changes[i].name == n && t->changes[i].added == h) {
				pthread_rwlock_wrlock(&s->lock);
				change_undo(s, &t->changes[i]);
				pthread_rwlock_unlock(&s->lock);
				t->live_changes--;
				break;
			}
		h = chain_find(n, type, covered);
	} else if (h != NULL && h->to == t->version) {
		/* deleted earlier in this txn: undo that delete first */
		for (size_t i = t->n_changes; i-- > 0;)
			if (t->changes[i].name == n && t->changes[i].ended == h &&
			    t->changes[i].added == NULL) {
				pthread_rwlock_wrlock(&s->lock);
				change_undo(s, &t->changes[i]);
				pthread_rwlock_unlock(&s->lock);
				t->live_changes--;
				break;
			}
	}
	struct rrver *live = (h != NULL && h->to == STORE_LIVE) ? h : NULL;
	if (count == 0 && live == NULL)
		return ZD_OK; /* nothing to delete */
	if (count > 0 && rrver_same(live, ttl, data, len, count))
		return ZD_OK; /* unchanged */
	if (count > 0) {
		r = malloc(sizeof *r + len);
		if (r == NULL)
			return ZD_ENOMEM;
		memset(r, 0, sizeof *r);
		r->from = t->version;
		r->to = STORE_LIVE;
		r->type = type;
		r->covered = covered;
		r->ttl = ttl;
		r->count = count;
		r->len = len;
		memcpy(r->data, data, len);
	}
	c.name = n;
	c.added = r;
	c.ended = live;
	if (txn_change_push(t, c) != ZD_OK) {
		free(r);
		return ZD_ENOMEM;
	}
	pthread_rwlock_wrlock(&s->lock);
	if (live != NULL) {
		live->to = t->version;
		s->rrsets_live--;
	}
	if (r != NULL) {
		if (h != NULL) {
			/* r becomes the chain head in h's place */
			struct rrver **pp = &n->heads;
			while (*pp != h)
				pp = &(*pp)->next_type;
			r->next_type = h->next_type;
			r->older = h;
			*pp = r;
		} else {
			r->next_type = n->heads;
			n->heads = r;
		}
		s->rrsets_live++;
		s->rrsets_total++;
		s->bytes += sizeof *r + len;
	}
	pthread_rwlock_unlock(&s->lock);
	return ZD_OK;
}

static uint16_t
rr_covered(const ldns_rr *rr)
{
	if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_RRSIG)
		return 0;
	ldns_rdf *f = ldns_rr_rrsig_typecovered(rr);
	return f ? (uint16_t)ldns_rdf2rr_type(f) : 0;
}

/* The RRset rrs (NULL or empty: delete it; TTL of the first record) at the
 * name *n, which is NULL when the name is not in the tree: then it is made
 * when rrs has records, and *n set. */
static zd_err
rrset_put_rrs(struct store_txn *t, struct sname **n, const uint8_t *key, uint16_t keylen,
              uint16_t type, uint16_t covered, const ldns_rr_list *rrs)
{
	uint8_t *data = NULL;
	uint32_t len = 0, count = 0, ttl = 0;
	zd_err e;

	if (rrs != NULL && ldns_rr_list_rr_count(rrs) > 0)
		ttl = ldns_rr_ttl(ldns_rr_list_rr(rrs, 0));
	if ((e = rdata_pack(rrs, &t->scratch, &data, &len, &count)) != ZD_OK)
		return e;
	if (*n == NULL && count > 0 && (*n = name_add(t->s, key, keylen)) == NULL)
		e = ZD_ENOMEM;
	else if (*n != NULL) /* else deleting what was never there */
		e = rrset_put_at(t, *n, type, covered, ttl, data, len, count);
	free(data);
	return e;
}

zd_err
store_txn_rrset_put(struct store_txn *t, const ldns_rdf *owner, uint16_t type, uint16_t covered,
                    const ldns_rr_list *rrs)
{
	uint8_t key[KEY_MAX];
	uint16_t keylen;
	zd_err e;

	if ((e = key_from_rdf(owner, key, &keylen)) != ZD_OK)
		return e;
	struct sname *n = name_find(t->s, key, keylen);
	return rrset_put_rrs(t, &n, key, keylen, type, covered, rrs);
}

static int
rr_type_cmp(const void *a, const void *b)
{
	const ldns_rr *x = *(ldns_rr *const *)a, *y = *(ldns_rr *const *)b;
	uint32_t kx = (uint32_t)ldns_rr_get_type(x) << 16 | rr_covered(x);
	uint32_t ky = (uint32_t)ldns_rr_get_type(y) << 16 | rr_covered(y);
	return kx < ky ? -1 : kx > ky;
}

zd_err
store_txn_name_set(struct store_txn *t, const ldns_rdf *owner, const ldns_rr_list *rrs,
                   int (*keep)(uint16_t type))
{
	enum { SMALL = 16 }; /* records of most names: no allocation */
	uint8_t key[KEY_MAX];
	uint16_t keylen;
	size_t n = rrs ? ldns_rr_list_rr_count(rrs) : 0;
	ldns_rr *v_small[SMALL], **v = v_small;
	uint32_t wanted_small[SMALL], *wanted = wanted_small; /* (type << 16 | covered) put */
	size_t n_wanted = 0;
	zd_err e;

	if ((e = key_from_rdf(owner, key, &keylen)) != ZD_OK)
		return e;
	/* One lookup for the whole name (a first load puts a million of them). */
	struct sname *nm = name_find(t->s, key, keylen);
	if (n > SMALL) {
		v = malloc(n * sizeof *v);
		wanted = malloc(n * sizeof *wanted);
		if (v == NULL || wanted == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
	}
	if (n > 0 && t->group == NULL && (t->group = ldns_rr_list_new()) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = ldns_rr_list_rr(rrs, i);
	if (n > 1)
		qsort(v, n, sizeof *v, rr_type_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		uint16_t type = (uint16_t)ldns_rr_get_type(v[i]), cov = rr_covered(v[i]);
		ldns_rr_list_set_rr_count(t->group, 0);
		while (j < n && rr_type_cmp(&v[i], &v[j]) == 0) {
			/* the group borrows the RRs: reset to count 0, never deep-freed */
			if (!ldns_rr_list_push_rr(t->group, v[j])) {
				e = ZD_ENOMEM;
				goto out;
			}
			j++;
		}
		if ((e = rrset_put_rrs(t, &nm, key, keylen, type, cov, t->group)) != ZD_OK)
			goto out;
		wanted[n_wanted++] = (uint32_t)type << 16 | cov;
		i = j;
	}
	/* Delete the live RRsets the name no longer has. */
	if (nm != NULL) {
		for (struct rrver *h = nm->heads; h != NULL; h = h->next_type) {
			if (h->to != STORE_LIVE || (keep != NULL && keep(h->type)))
				continue;
			uint32_t k = (uint32_t)h->type << 16 | h->covered;
			int found = 0;
			for (size_t i = 0; i < n_wanted && !found; i++)
				found = wanted[i] == k;
			if (found)
				continue;
			if ((e = rrset_put_at(t, nm, h->type, h->covered, 0, NULL, 0, 0)) != ZD_OK)
				goto out;
		}
	}
out:
	if (t->group != NULL)
		ldns_rr_list_set_rr_count(t->group, 0);
	if (v != v_small)
		free(v);
	if (wanted != wanted_small)
		free(wanted);
	return e;
}

/* --- deltas ---------------------------------------------------------------- */

/* Records of a that are not in b (all of a when the TTL differs). */
static zd_err
wire_minus(struct zd_buf *out, const struct sname *n, const struct rrver *a, const struct rrver *b,
           int want_soa, size_t *count)
{
	size_t pos = 0;
	zd_err e;

	if (a == NULL || (a->type == LDNS_RR_TYPE_SOA) != want_soa)
		return ZD_OK;
	for (uint32_t i = 0; i < a->count; i++) {
		const uint8_t *item = a->data + pos;
		struct rd d = rrver_rd(a, &pos);
		if (b != NULL && b->ttl == a->ttl) {
			size_t q = 0;
			int found = 0;
			for (uint32_t j = 0; j < b->count && !found; j++) {
				struct rd x = rrver_rd(b, &q);
				found = rd_cmp(&d, &x) == 0;
			}
			if (found)
				continue;
		}
		if ((e = wire_rr(out, n, a, item)) != ZD_OK)
			return e;
		(*count)++;
	}
	return ZD_OK;
}

zd_err
store_txn_delta_wire(struct store_txn *t, uint8_t **wire, size_t *len)
{
	struct zd_buf b;
	zd_err e = ZD_OK;
	size_t count = 0, soas = 0;

	zd_buf_init(&b, (size_t)1 << 34); /* bytes; the caller caps the batch */
	/* old SOA, deletions, new SOA, additions */
	for (int part = 0; part < 4 && e == ZD_OK; part++) {
		for (size_t i = 0; i < t->n_changes && e == ZD_OK; i++) {
			struct change *c = &t->changes[i];
			if (c->name == NULL)
				continue;
			const struct rrver *from = c->ended, *to = c->added;
			size_t before = count;
			if (part == 0)
				e = wire_minus(&b, c->name, from, NULL, 1, &count);
			else if (part == 1)
				e = wire_minus(&b, c->name, from, to, 0, &count);
			else if (part == 2)
				e = wire_minus(&b, c->name, to, NULL, 1, &count);
			else
				e = wire_minus(&b, c->name, to, from, 0, &count);
			if ((part == 0 || part == 2) && count > before)
				soas++;
		}
	}
	/* Every version changes its SOA: one (the first version) or two. */
	if (e == ZD_OK && zd_check_failed(soas >= 1 && soas <= 2))
		e = ZD_EBUG;
	if (e != ZD_OK) {
		zd_buf_clear(&b);
		return e;
	}
	*wire = b.data;
	*len = b.len;
	return ZD_OK;
}

struct pending {
	uint8_t key[KEY_MAX];
	uint16_t keylen;
	ldns_rr *rr;
	int add; /* 1 add, 0 delete */
};

static int
pending_cmp(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->keylen < y->keylen ? x->keylen : y->keylen);
	if (c != 0)
		return c;
	if (x->keylen != y->keylen)
		return x->keylen < y->keylen ? -1 : 1;
	return rr_type_cmp(&x->rr, &y->rr);
}

zd_err
store_txn_delta_apply(struct store_txn *t, const uint8_t *wire, size_t len)
{
	struct pending *p = NULL;
	size_t n = 0, cap = 0, pos = 0;
	int soas = 0;
	ldns_rr *rr = NULL;
	ldns_rr_list *cur = NULL;
	zd_err e = ZD_OK;

	while (pos < len) {
		if (ldns_wire2rr(&rr, wire, len, &pos, LDNS_SECTION_ANSWER) != LDNS_STATUS_OK) {
			e = ZD_EMALFORMED;
			goto out;
		}
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA)
			soas++;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct pending *q = realloc(p, ncap * sizeof *q);
			if (q == NULL) {
				e = ZD_ENOMEM;
				goto out;
			}
			p = q;
			cap = ncap;
		}
		if ((e = key_from_rdf(ldns_rr_owner(rr), p[n].key, &p[n].keylen)) != ZD_OK)
			goto out;
		p[n].rr = rr;
		p[n].add = soas; /* fixed below once the SOA count is known */
		rr = NULL;
		n++;
	}
	/* One SOA: a whole zone, for an empty store only (the first version or
	 * a checkpoint); on a store with versions it would leave two SOAs. */
	if (soas == 0 || soas > 2 || (soas == 1 && t->s->n_versions > 0)) {
		e = ZD_EMALFORMED;
		goto out;
	}
	/* One SOA: everything is added (a zone from nothing, or a checkpoint).
	 * Two: before the second SOA delete, from it on add. */
	for (size_t i = 0; i < n; i++)
		p[i].add = soas == 1 ? 1 : p[i].add == 2;
	qsort(p, n, sizeof *p, pending_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && pending_cmp(&p[i], &p[j]) == 0)
			j++;
		ldns_rr *first = p[i].rr;
		uint16_t type = (uint16_t)ldns_rr_get_type(first), cov = rr_covered(first);
		/* Current content of this RRset as the txn sees it. */
		cur = ldns_rr_list_new();
		if (cur == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		struct sname *nm = name_find(t->s, p[i].key, p[i].keylen);
		struct rrver *h = nm ? chain_find(nm, type, cov) : NULL;
		if (h != NULL && h->to == STORE_LIVE) {
			ldns_rdf *o = name_rdf(nm);
			struct emit em;
			e = o ? emit_rrver(o, h, collect_into(&em, cur), NULL, 0, 0) : ZD_ENOMEM;
			ldns_rdf_deep_free(o);
			if (e != ZD_OK)
				goto out;
		}
		for (size_t k = i; k < j; k++) {
			if (p[k].add)
				continue;
			size_t m = ldns_rr_list_rr_count(cur), f;
			for (f = 0; f < m; f++)
				if (ldns_rr_compare(ldns_rr_list_rr(cur, f), p[k].rr) == 0 &&
				    ldns_rr_ttl(ldns_rr_list_rr(cur, f)) == ldns_rr_ttl(p[k].rr))
					break;
			if (f == m) {
				e = ZD_EMALFORMED; /* deleting a record that is not there */
				goto out;
			}
			ldns_rr_free(ldns_rr_list_rr(cur, f));
			ldns_rr_list_set_rr(cur, ldns_rr_list_rr(cur, m - 1), f);
			ldns_rr_list_set_rr_count(cur, m - 1);
		}
		/* Additions: cur may still hold records of the old TTL that were
		 * not deleted; the added records' TTL wins (RFC 2181 s5.2). */
		for (size_t k = i; k < j; k++) {
			if (!p[k].add)
				continue;
			ldns_rr *c = ldns_rr_clone(p[k].rr);
			if (c == NULL || !ldns_rr_list_push_rr(cur, c)) { /* cur owns c */
				ldns_rr_free(c);
				e = ZD_ENOMEM;
				goto out;
			}
		}
		size_t m = ldns_rr_list_rr_count(cur);
		if (m > 0) {
			uint32_t ttl = ldns_rr_ttl(ldns_rr_list_rr(cur, m - 1));
			for (size_t k = 0; k < m; k++)
				ldns_rr_set_ttl(ldns_rr_list_rr(cur, k), ttl);
		}
		if ((e = store_txn_rrset_put(t, ldns_rr_owner(first), type, cov, cur)) != ZD_OK)
			goto out;
		ldns_rr_list_deep_free(cur);
		cur = NULL;
		i = j;
	}
out:
	ldns_rr_list_deep_free(cur);
	ldns_rr_free(rr);
	for (size_t i = 0; i < n; i++)
		ldns_rr_free(p[i].rr);
	free(p);
	return e;
}

zd_err
store_txn_prepare(struct store_txn *t)
{
	struct store *s = t->s;
	size_t n = 0;

	if (t->prepared)
		return ZD_OK;
	if (s->n_versions == s->cap_versions) {
		size_t ncap = s->cap_versions ? s->cap_versions * 2 : 64;
		struct version_info *p = malloc(ncap * sizeof *p), *old;
		if (p == NULL)
			return ZD_ENOMEM;
		/* Not realloc: readers index the old array under the read lock
		 * until the swap, so it is freed only after it. */
		pthread_rwlock_wrlock(&s->lock);
		if (s->n_versions)
			memcpy(p, s->versions, s->n_versions * sizeof *p);
		old = s->versions;
		s->versions = p;
		pthread_rwlock_unlock(&s->lock);
		free(old);
		s->cap_versions = ncap;
	}
	if (s->n_versions > 0) {
		/* The names this version changed, once each: IXFR and diff cost
		 * follows them, not the zone size.  The first kept version needs
		 * none (nothing is diffed against an older one). */
		struct sname **changed =
		        malloc((t->n_changes ? t->n_changes : 1) * sizeof *changed);
		if (changed == NULL)
			return ZD_ENOMEM;
		for (size_t i = 0; i < t->n_changes; i++)
			if (t->changes[i].name != NULL)
				changed[n++] = t->changes[i].name;
		qsort(changed, n, sizeof *changed, sname_ptr_cmp);
		size_t w = 0;
		for (size_t i = 0; i < n; i++)
			if (w == 0 || changed[w - 1] != changed[i])
				changed[w++] = changed[i];
		free(t->changed);
		t->changed = changed;
		t->n_changed = w;
	}
	t->prepared = 1;
	return ZD_OK;
}

zd_err
store_txn_publish(struct store_txn **tp, uint32_t serial, uint64_t published_ms)
{
	struct store_txn *t = *tp;
	struct store *s = t->s;
	zd_err e;

	if ((e = store_txn_prepare(t)) != ZD_OK) {
		store_txn_abort(tp);
		return e;
	}
	*tp = NULL;
	if (s->n_versions == 0)
		s->base = t->version;
	pthread_rwlock_wrlock(&s->lock);
	s->versions[s->n_versions++] = (struct version_info){
	        .serial = serial,
	        .published_ms = published_ms,
	        .changed = t->changed,
	        .n_changed = (uint32_t)t->n_changed,
	};
	s->bytes += t->n_changed * sizeof *t->changed + sizeof(struct version_info);
	atomic_store(&s->published, t->version);
	atomic_store(&s->txn_version, 0);
	pthread_rwlock_unlock(&s->lock);
	s->txn = NULL;
	free(t->changes);
	if (t->scratch != NULL)
		ldns_buffer_free(t->scratch);
	ldns_rr_list_free(t->group);
	free(t);
	return ZD_OK;
}

void
store_txn_abort(struct store_txn **tp)
{
	struct store_txn *t = *tp;
	if (t == NULL)
		return;
	struct store *s = t->s;
	pthread_rwlock_wrlock(&s->lock);
	for (size_t i = t->n_changes; i-- > 0;)
		if (t->changes[i].name != NULL)
			change_undo(s, &t->changes[i]);
	atomic_store(&s->txn_version, 0);
	pthread_rwlock_unlock(&s->lock);
	s->txn = NULL;
	free(t->changed);
	free(t->changes);
	if (t->scratch != NULL)
		ldns_buffer_free(t->scratch);
	ldns_rr_list_free(t->group);
	free(t);
	*tp = NULL;
}

/* --- history ---------------------------------------------------------- */

zd_err
store_version_pin(struct store *s, uint64_t v)
{
	zd_err e = ZD_OK;

	/* The read lock keeps the version table still while it is checked;
	 * prune_floor (under pin_mu) closes the gap to a prune that has not
	 * dropped the version yet but has decided to. */
	pthread_rwlock_rdlock(&s->lock);
	pthread_mutex_lock(&s->pin_mu);
	if (v == 0 || v > store_published_get(s) || vinfo(s, v) == NULL || v < s->prune_floor) {
		e = ZD_ENOTFOUND;
		goto out;
	}
	for (size_t i = 0; i < s->n_pins; i++)
		if (s->pins[i].version == v) {
			s->pins[i].count++;
			goto out;
		}
	if (s->n_pins == s->cap_pins) {
		size_t ncap = s->cap_pins ? s->cap_pins * 2 : 16;
		struct pin *p;
		if (ncap > PINS_MAX) {
			e = ZD_ELIMIT;
			goto out;
		}
		if ((p = realloc(s->pins, ncap * sizeof *p)) == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		s->pins = p;
		s->cap_pins = ncap;
	}
	s->pins[s->n_pins++] = (struct pin){.version = v, .count = 1};
out:
	pthread_mutex_unlock(&s->pin_mu);
	pthread_rwlock_unlock(&s->lock);
	return e;
}

void
store_version_unpin(struct store *s, uint64_t v)
{
	pthread_mutex_lock(&s->pin_mu);
	size_t i;
	for (i = 0; i < s->n_pins && s->pins[i].version != v; i++)
		;
	/* Unpinning what was never pinned is a caller's bug; the pins stay. */
	if (!zd_check_failed(i < s->n_pins) && --s->pins[i].count == 0)
		s->pins[i] = s->pins[--s->n_pins];
	pthread_mutex_unlock(&s->pin_mu);
}

/* Free the entries of n's chains that no version >= keep_from sees, and the
 * chains left empty.  Under the write lock: a reader's chain_at() may step
 * onto the first entry older than the one it sees.  Returns 1 when n holds
 * no RRset version any more. */
static int
prune_name(struct store *s, struct sname *n, uint64_t keep_from)
{
	struct rrver **hp = &n->heads;

	while (*hp != NULL) {
		struct rrver *h = *hp, **rp = hp, *r;
		/* Chains are newest first and never overlap in time: past the
		 * first entry that ended by keep_from, every entry did. */
		while (*rp != NULL && (*rp)->to > keep_from)
			rp = &(*rp)->older;
		r = *rp;
		if (r == h) {
			/* the whole chain: unlink it from the name */
			*hp = h->next_type;
		} else {
			*rp = NULL;
			hp = &h->next_type;
		}
		while (r != NULL) {
			struct rrver *older = r->older;
			s->bytes -= sizeof *r + r->len;
			s->rrsets_total--;
			free(r);
			r = older;
		}
	}
	return n->heads == NULL;
}

zd_err
store_prune(struct store *s, uint64_t keep_from)
{
	if (zd_check_failed(s->txn == NULL))
		return ZD_EBUG;
	uint64_t pub = store_published_get(s);
	if (keep_from > pub)
		keep_from = pub; /* the published version always stays */
	/* Never above a version a transfer or a checkpoint still reads; from
	 * here on no version below keep_from can be pinned. */
	pthread_mutex_lock(&s->pin_mu);
	for (size_t i = 0; i < s->n_pins; i++)
		if (s->pins[i].version < keep_from)
			keep_from = s->pins[i].version;
	if (keep_from > s->prune_floor)
		s->prune_floor = keep_from;
	pthread_mutex_unlock(&s->pin_mu);
	if (s->n_versions == 0 || keep_from <= s->base)
		return ZD_OK;

	/* First the versions, so that no reader asks for a dropped one while
	 * the chains below are cut. */
	size_t drop = (size_t)(keep_from - s->base);
	struct sname **base_changed = NULL;
	pthread_rwlock_wrlock(&s->lock);
	for (size_t i = 0; i < drop; i++) {
		free(s->versions[i].changed);
		s->bytes -= s->versions[i].n_changed * sizeof(struct sname *) +
		            sizeof(struct version_info);
	}
	memmove(s->versions, s->versions + drop, (s->n_versions - drop) * sizeof *s->versions);
	s->n_versions -= drop;
	s->base = keep_from;
	/* Nothing is diffed against a version older than the base, so its
	 * list of changed names is not needed; the names it points to may be
	 * freed below. */
	base_changed = s->versions[0].changed;
	s->bytes -= s->versions[0].n_changed * sizeof(struct sname *);
	s->versions[0].changed = NULL;
	s->versions[0].n_changed = 0;
	pthread_rwlock_unlock(&s->lock);
	free(base_changed);

	/* Then the names, a step at a time so readers are not held up for the
	 * whole tree.  Only this thread changes the tree, so a node pointer
	 * stays valid across the unlocked gaps; a walk resumes after a removed
	 * name by key (store_walk). */
	ldns_rbnode_t *node = ldns_rbtree_first(&s->tree);
	while (node != LDNS_RBTREE_NULL) {
		pthread_rwlock_wrlock(&s->lock);
		for (size_t k = 0; k < PRUNE_STEP && node != LDNS_RBTREE_NULL; k++) {
			struct sname *n = (struct sname *)node;
			node = ldns_rbtree_next(node);
			if (!prune_name(s, n, keep_from))
				continue;
			/* Kept versions' changed lists cannot name n: a name
			 * changed at v > keep_from has an entry with to > v. */
			ldns_rbtree_delete(&s->tree, n->kb);
			s->names--;
			s->bytes -= sizeof *n + 2u + kb_len(n->kb);
			free(n);
		}
		pthread_rwlock_unlock(&s->lock);
	}
	return ZD_OK;
}

void
store_stats_get(struct store *s, struct store_stats *out)
{
	pthread_rwlock_rdlock(&s->lock);
	out->names = s->names;
	out->rrsets_live = s->rrsets_live;
	out->rrsets_total = s->rrsets_total;
	out->bytes = s->bytes;
	out->versions = s->n_versions;
	pthread_rwlock_unlock(&s->lock);
}
