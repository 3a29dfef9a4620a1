/* registry-adapter/owners.c -- records grouped by owner (see owners.h).
 *
 * Layout: an arena of 1 MiB chunks mapped from the system (a record never
 * spans two), addressed by 64-bit offsets.  A record is [u64 next][u16 type]
 * [u16 class][u32 ttl][u16 rdlength, network order][rdata], the fields
 * before rdlength in host order.  The first record of a name comes right
 * after the name, [wire owner][u8 length], so the name is found from that
 * record.  The records of a name are a list through next, oldest first.
 * Names are found through an open-addressing table of group indices, kept
 * at most half full.  Each chunk counts the names with bytes in it (a name's
 * records in one chunk are consecutive in its list, as chunks fill one after
 * the other) and is unmapped when the last of them is taken, so the arena
 * shrinks while the store it feeds grows.  ra_owners_sort() orders the
 * names by the canonical sort key (zd_name_key()). */
#include "registry-adapter/owners.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/zd_parse.h"

#define CHUNK       ((size_t)1 << 20)
#define REC_HEAD    18 /* next, type, class, ttl, rdlength */
#define NONE        UINT64_MAX
#define SLOTS_FIRST 1024u

struct group {
	uint64_t first, last; /* the oldest record (after the name), the newest */
	uint32_t count;
	uint32_t hash;
};

struct chunk {
	uint8_t *p;    /* NULL once every name with bytes here was taken */
	uint32_t refs; /* names with bytes here, not taken yet */
};

struct ra_owners {
	struct chunk *chunks;
	size_t n_chunks, cap_chunks;
	size_t pos; /* bytes used in the last chunk */
	size_t bytes, cap;
	struct group *groups;
	size_t n_groups, cap_groups;
	uint32_t *slots; /* 0 = free, else group index + 1 */
	size_t n_slots;  /* a power of two */
	ldns_buffer *rdata;
	uint32_t *order; /* after ra_owners_sort(): the groups in canonical order */
	size_t recent;   /* the group added to last */
};

static uint8_t *
at(const struct ra_owners *o, uint64_t off)
{
	return o->chunks[off / CHUNK].p + off % CHUNK;
}

/* The name of g, just before its first record. */
static const uint8_t *
group_name(const struct ra_owners *o, const struct group *g, size_t *len)
{
	const uint8_t *p = at(o, g->first);
	*len = p[-1];
	return p - 1 - *len;
}

static uint32_t
hash_of(const uint8_t *p, size_t n)
{
	uint64_t h = 14695981039346656037u; /* FNV-1a, 64 bits, folded */
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211u;
	}
	return (uint32_t)(h ^ (h >> 32));
}

/* g is the group of the name (wire form, len octets). */
static int
group_is(const struct ra_owners *o, const struct group *g, const uint8_t *name, size_t len)
{
	size_t gl;
	const uint8_t *gn = group_name(o, g, &gl);
	return gl == len && memcmp(gn, name, len) == 0;
}

/* Group of the i-th name. */
static struct group *
group_at(const struct ra_owners *o, size_t i)
{
	if (i >= o->n_groups)
		return NULL;
	return &o->groups[o->order != NULL ? o->order[i] : i];
}

zd_err
ra_owners_new(size_t cap, struct ra_owners **out)
{
	struct ra_owners *o;

	if (out == NULL || cap == 0)
		return ZD_EBUG;
	o = calloc(1, sizeof *o);
	if (o == NULL)
		return ZD_ENOMEM;
	o->cap = cap;
	o->slots = calloc(SLOTS_FIRST, sizeof *o->slots);
	o->rdata = ldns_buffer_new(512);
	if (o->slots == NULL || o->rdata == NULL) {
		ra_owners_free(o);
		return ZD_ENOMEM;
	}
	o->n_slots = SLOTS_FIRST;
	*out = o;
	return ZD_OK;
}

void
ra_owners_free(struct ra_owners *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->n_chunks; i++)
		if (o->chunks[i].p != NULL)
			munmap(o->chunks[i].p, CHUNK);
	free(o->chunks);
	free(o->groups);
	free(o->slots);
	free(o->order);
	if (o->rdata != NULL)
		ldns_buffer_free(o->rdata);
	free(o);
}

/* Room for one more group and its slot, before anything changes. */
static zd_err
groups_reserve(struct ra_owners *o)
{
	if (o->n_groups >= UINT32_MAX - 1)
		return ZD_ELIMIT;
	if (o->n_groups == o->cap_groups) {
		size_t c = o->cap_groups ? o->cap_groups * 2 : 1024;
		struct group *g = realloc(o->groups, c * sizeof *g);
		if (g == NULL)
			return ZD_ENOMEM;
		o->groups = g;
		o->cap_groups = c;
	}
	if ((o->n_groups + 1) * 2 > o->n_slots) {
		size_t n = o->n_slots * 2;
		uint32_t *s = calloc(n, sizeof *s);
		if (s == NULL)
			return ZD_ENOMEM;
		for (size_t i = 0; i < o->n_groups; i++) {
			size_t k = o->groups[i].hash & (n - 1);
			while (s[k] != 0)
				k = (k + 1) & (n - 1);
			s[k] = (uint32_t)(i + 1);
		}
		free(o->slots);
		o->slots = s;
		o->n_slots = n;
	}
	return ZD_OK;
}

/* n contiguous bytes (n <= CHUNK) at the returned offset. */
static zd_err
arena_reserve(struct ra_owners *o, size_t n)
{
	if (n > o->cap || o->bytes > o->cap - n)
		return ZD_ELIMIT;
	if (o->n_chunks > 0 && o->pos + n <= CHUNK)
		return ZD_OK;
	if (o->n_chunks == o->cap_chunks) {
		size_t c = o->cap_chunks ? o->cap_chunks * 2 : 64;
		struct chunk *p = realloc(o->chunks, c * sizeof *p);
		if (p == NULL)
			return ZD_ENOMEM;
		o->chunks = p;
		o->cap_chunks = c;
	}
	void *m = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return ZD_ENOMEM;
	o->chunks[o->n_chunks++] = (struct chunk){.p = m, .refs = 0};
	o->pos = 0;
	return ZD_OK;
}

static uint64_t
arena_take(struct ra_owners *o, size_t n)
{
	uint64_t off = (uint64_t)(o->n_chunks - 1) * CHUNK + o->pos;
	o->pos += n;
	o->bytes += n;
	return off;
}

zd_err
ra_owners_add(struct ra_owners *o, const ldns_rr *rr)
{
	const ldns_rdf *owner;
	const uint8_t *name;
	size_t len, rdlen, k;
	uint32_t h;
	struct group *g = NULL;
	zd_err e;

	if (o == NULL || rr == NULL || (owner = ldns_rr_owner(rr)) == NULL || o->order != NULL)
		return ZD_EBUG;
	name = ldns_rdf_data(owner);
	len = ldns_rdf_size(owner);
	if (len == 0 || len > LDNS_MAX_DOMAINLEN + 1)
		return ZD_EMALFORMED;
	ldns_buffer_clear(o->rdata);
	if (ldns_rr_rdata2buffer_wire(o->rdata, rr) != LDNS_STATUS_OK)
		return ZD_ENOMEM;
	rdlen = ldns_buffer_position(o->rdata);
	if (rdlen > UINT16_MAX)
		return ZD_EMALFORMED;

	/* the rows of one owner often come one after the other */
	if (o->n_groups > 0 && group_is(o, &o->groups[o->recent], name, len))
		g = &o->groups[o->recent];
	h = g == NULL ? hash_of(name, len) : 0; /* only a new group needs it */
	for (k = h & (o->n_slots - 1); g == NULL && o->slots[k] != 0;
	     k = (k + 1) & (o->n_slots - 1)) {
		struct group *c = &o->groups[o->slots[k] - 1];
		if (c->hash == h && group_is(o, c, name, len))
			g = c;
	}
	if (g != NULL && g->count == UINT32_MAX)
		return ZD_ELIMIT;
	if (g == NULL && (e = groups_reserve(o)) != ZD_OK)
		return e;
	if ((e = arena_reserve(o, (g == NULL ? 1 + len : 0) + REC_HEAD + rdlen)) != ZD_OK)
		return e;
	/* Nothing fails from here on. */
	if (g == NULL) {
		uint8_t *p = at(o, arena_take(o, len + 1));
		memcpy(p, name, len);
		p[len] = (uint8_t)len;
		/* the table may have grown: find the free slot again */
		for (k = h & (o->n_slots - 1); o->slots[k] != 0; k = (k + 1) & (o->n_slots - 1))
			;
		g = &o->groups[o->n_groups];
		*g = (struct group){.first = NONE, .last = NONE, .hash = h};
		o->slots[k] = (uint32_t)++o->n_groups;
	}
	if (g->last == NONE || g->last / CHUNK != o->n_chunks - 1)
		o->chunks[o->n_chunks - 1].refs++; /* g's first bytes in this chunk */
	uint64_t off = arena_take(o, REC_HEAD + rdlen), next = NONE;
	uint8_t *p = at(o, off);
	uint16_t type = (uint16_t)ldns_rr_get_type(rr), class = (uint16_t)ldns_rr_get_class(rr);
	uint32_t ttl = ldns_rr_ttl(rr);
	memcpy(p, &next, 8);
	memcpy(p + 8, &type, 2);
	memcpy(p + 10, &class, 2);
	memcpy(p + 12, &ttl, 4);
	p[16] = (uint8_t)(rdlen >> 8);
	p[17] = (uint8_t)rdlen;
	memcpy(p + REC_HEAD, ldns_buffer_begin(o->rdata), rdlen);
	if (g->last != NONE)
		memcpy(at(o, g->last), &off, 8);
	else
		g->first = off;
	g->last = off;
	o->recent = (size_t)(g - o->groups);
	g->count++;
	return ZD_OK;
}

size_t
ra_owners_names(const struct ra_owners *o)
{
	return o != NULL ? o->n_groups : 0;
}

size_t
ra_owners_count(const struct ra_owners *o, size_t i)
{
	const struct group *g = o != NULL ? group_at(o, i) : NULL;
	return g != NULL ? g->count : 0;
}

size_t
ra_owners_bytes(const struct ra_owners *o)
{
	if (o == NULL)
		return 0;
	size_t mapped = 0;
	for (size_t i = 0; i < o->n_chunks; i++)
		mapped += o->chunks[i].p != NULL ? CHUNK : 0;
	return mapped + o->cap_groups * sizeof *o->groups + o->n_slots * sizeof *o->slots;
}

struct skey {
	uint64_t head; /* the 8 key octets after the common prefix, big-endian */
	uint64_t off;  /* of the key in keys */
	uint32_t group;
	uint16_t len;
};

struct skey_ctx {
	const uint8_t *keys;
	size_t skip; /* octets every key shares */
};

static int
skey_cmp(const void *a, const void *b, void *arg)
{
	const struct skey *x = a, *y = b;
	const struct skey_ctx *k = arg;
	if (x->head != y->head)
		return x->head < y->head ? -1 : 1;
	size_t lx = x->len, ly = y->len, from = k->skip + 8;
	size_t n = (lx < ly ? lx : ly);
	int c = n > from ? memcmp(k->keys + x->off + from, k->keys + y->off + from, n - from) : 0;
	if (c != 0)
		return c;
	return lx < ly ? -1 : lx > ly;
}

/* Sort v by the 8-octet heads first, least significant octet first (a
 * radix sort: linear, where a comparison sort of a million names costs
 * more than half a second), then each run of equal heads by the rest of
 * its keys. */
static zd_err
skeys_sort(struct skey *v, size_t n, const uint8_t *keys, size_t skip)
{
	struct skey *tmp = malloc((n ? n : 1) * sizeof *tmp), *from = v, *to = tmp;
	struct skey_ctx ctx = {.keys = keys, .skip = skip};

	if (tmp == NULL)
		return ZD_ENOMEM;
	for (int shift = 0; shift < 64; shift += 8) {
		size_t count[256] = {0}, at = 0;
		for (size_t i = 0; i < n; i++)
			count[(from[i].head >> shift) & 0xff]++;
		if (n > 0 && count[(from[0].head >> shift) & 0xff] == n)
			continue; /* every head has the same octet here */
		for (size_t d = 0; d < 256; d++) {
			size_t c = count[d];
			count[d] = at;
			at += c;
		}
		for (size_t i = 0; i < n; i++)
			to[count[(from[i].head >> shift) & 0xff]++] = from[i];
		struct skey *t = from;
		from = to;
		to = t;
	}
	if (from != v)
		memcpy(v, from, n * sizeof *v);
	free(tmp);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && v[j].head == v[i].head)
			j++;
		if (j - i > 1)
			qsort_r(v + i, j - i, sizeof *v, skey_cmp, &ctx);
		i = j;
	}
	return ZD_OK;
}

zd_err
ra_owners_sort(struct ra_owners *o)
{
	size_t n, total = 0, skip = SIZE_MAX;
	struct skey *v = NULL;
	uint8_t *keys = NULL;
	zd_err e = ZD_OK;

	if (o == NULL || o->order != NULL)
		return ZD_EBUG;
	n = o->n_groups;
	v = malloc((n ? n : 1) * sizeof *v);
	keys = malloc((n ? n : 1) * 64);
	o->order = malloc((n ? n : 1) * sizeof *o->order);
	if (v == NULL || keys == NULL || o->order == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	size_t cap = (n ? n : 1) * 64;
	for (size_t i = 0; i < n; i++) {
		uint8_t key[ZD_NAME_KEY_MAX];
		uint16_t klen;
		size_t nlen;
		const uint8_t *name = group_name(o, &o->groups[i], &nlen);
		if (zd_name_key(name, nlen, key, &klen) != ZD_OK) {
			e = ZD_EBUG; /* it was a name when it came in */
			goto out;
		}
		if (total + klen > cap) {
			uint8_t *k = realloc(keys, cap * 2);
			if (k == NULL) {
				e = ZD_ENOMEM;
				goto out;
			}
			keys = k;
			cap *= 2;
		}
		memcpy(keys + total, key, klen);
		v[i] = (struct skey){.off = total, .group = (uint32_t)i, .len = klen};
		total += klen;
		/* the prefix every key shares (the zone's own labels) */
		size_t common = 0, lim = klen < v[0].len ? klen : v[0].len;
		while (common < lim && keys[v[0].off + common] == keys[total - klen + common])
			common++;
		skip = common < skip ? common : skip;
	}
	if (skip == SIZE_MAX)
		skip = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t h = 0;
		for (size_t k = 0; k < 8; k++)
			h = h << 8 | (skip + k < v[i].len ? keys[v[i].off + skip + k] : 0);
		v[i].head = h;
	}
	if ((e = skeys_sort(v, n, keys, skip)) != ZD_OK)
		goto out;
	for (size_t i = 0; i < n; i++)
		o->order[i] = v[i].group;
out:
	if (e != ZD_OK) {
		free(o->order);
		o->order = NULL;
	}
	free(v);
	free(keys);
	return e;
}

static void
chunk_unref(struct ra_owners *o, size_t c)
{
	if (--o->chunks[c].refs == 0) {
		munmap(o->chunks[c].p, CHUNK);
		o->chunks[c].p = NULL;
	}
}

zd_err
ra_owners_take(struct ra_owners *o, size_t i, ldns_rr_list *out)
{
	struct group *g;
	zd_err e;

	if (o == NULL || o->order == NULL || (g = group_at(o, i)) == NULL || g->first == NONE)
		return ZD_EBUG;
	if ((e = ra_owners_get(o, i, out)) != ZD_OK)
		return e;
	/* one reference per chunk the name's records pass through, dropped
	 * once the walk has left that chunk */
	for (uint64_t off = g->first; off != NONE;) {
		size_t c = off / CHUNK;
		uint64_t next;
		memcpy(&next, at(o, off), 8);
		if (next == NONE || next / CHUNK != c)
			chunk_unref(o, c);
		off = next;
	}
	g->first = g->last = NONE;
	g->count = 0;
	return ZD_OK;
}

zd_err
ra_owners_get(const struct ra_owners *o, size_t i, ldns_rr_list *out)
{
	size_t orig;
	zd_err e = ZD_OK;

	const struct group *g;
	if (o == NULL || out == NULL || (g = group_at(o, i)) == NULL || g->first == NONE)
		return ZD_EBUG;
	orig = ldns_rr_list_rr_count(out);
	size_t name_len;
	const uint8_t *name = group_name(o, g, &name_len);
	for (uint64_t off = g->first; off != NONE && e == ZD_OK;) {
		const uint8_t *p = at(o, off);
		uint16_t type, class;
		uint32_t ttl;
		size_t pos = 0, rdlen = (size_t)p[16] << 8 | p[17];
		ldns_rr *rr = ldns_rr_new();
		ldns_rdf *owner = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, name_len, name);
		memcpy(&type, p + 8, 2);
		memcpy(&class, p + 10, 2);
		memcpy(&ttl, p + 12, 4);
		if (rr == NULL || owner == NULL) {
			e = ZD_ENOMEM;
		} else {
			ldns_rr_set_owner(rr, owner);
			owner = NULL;
			ldns_rr_set_type(rr, (ldns_rr_type)type);
			ldns_rr_set_class(rr, (ldns_rr_class) class);
			ldns_rr_set_ttl(rr, ttl);
			/* the bytes are ldns' own wire form of this record: only
			 * running out of memory can fail here */
			if (ldns_wire2rdf(rr, p + 16, 2 + rdlen, &pos) != LDNS_STATUS_OK ||
			    !ldns_rr_list_push_rr(out, rr))
				e = ZD_ENOMEM;
			else
				rr = NULL;
		}
		ldns_rdf_deep_free(owner);
		ldns_rr_free(rr);
		memcpy(&off, p, 8);
	}
	if (e != ZD_OK) {
		for (size_t k = orig; k < ldns_rr_list_rr_count(out); k++)
			ldns_rr_free(ldns_rr_list_rr(out, k));
		ldns_rr_list_set_rr_count(out, orig);
	}
	return e;
}
