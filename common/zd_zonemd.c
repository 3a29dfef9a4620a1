#include "zd_zonemd.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define FIXED 10 /* type, class, ttl, rdlength */

struct zd_zonemd {
	EVP_MD_CTX *md;
	ldns_rdf *apex;
	struct zd_buf prev; /* the last record added, to fold duplicates */
	struct zd_crr prev_rr;
	int have_prev;
	int final;
	uint64_t count;
};

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

zd_err
zd_crr_append(const ldns_rr *rr, struct zd_buf *b, uint16_t *owner_len)
{
	ldns_buffer *lb = ldns_buffer_new(512);
	zd_err e = ZD_EMALFORMED;

	if (lb == NULL)
		return ZD_ENOMEM;
	if (ldns_rr2buffer_wire_canonical(lb, rr, LDNS_SECTION_ANSWER) == LDNS_STATUS_OK &&
	    ldns_buffer_status_ok(lb)) {
		const uint8_t *w = ldns_buffer_begin(lb);
		size_t len = ldns_buffer_position(lb);
		struct zd_crr c;
		if ((e = zd_crr_parse(w, len, &c)) == ZD_OK &&
		    (e = zd_buf_append(b, w, len)) == ZD_OK)
			*owner_len = c.owner_len;
	}
	ldns_buffer_free(lb);
	return e;
}

zd_err
zd_crr_parse(const uint8_t *wire, size_t len, struct zd_crr *out)
{
	size_t pos = 0;

	if (len > UINT32_MAX)
		return ZD_EMALFORMED;
	for (;;) { /* uncompressed labels, at most 255 octets in all */
		if (pos >= len || pos >= 255)
			return ZD_EMALFORMED;
		uint8_t l = wire[pos];
		if (l > 63)
			return ZD_EMALFORMED;
		pos += 1u + l;
		if (l == 0)
			break;
	}
	if (pos > 255 || len - pos < FIXED || get16(wire + pos + 8) != len - pos - FIXED)
		return ZD_EMALFORMED;
	out->wire = wire;
	out->len = (uint32_t)len;
	out->owner_len = (uint16_t)pos;
	return ZD_OK;
}

uint16_t
zd_crr_type_get(const struct zd_crr *r)
{
	return get16(r->wire + r->owner_len);
}

uint16_t
zd_crr_class_get(const struct zd_crr *r)
{
	return get16(r->wire + r->owner_len + 2);
}

uint32_t
zd_crr_ttl_get(const struct zd_crr *r)
{
	const uint8_t *p = r->wire + r->owner_len + 4;
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

const uint8_t *
zd_crr_rdata_get(const struct zd_crr *r, uint16_t *len)
{
	*len = (uint16_t)(r->len - r->owner_len - FIXED);
	return r->wire + r->owner_len + FIXED;
}

uint16_t
zd_crr_covered_get(const struct zd_crr *r)
{
	uint16_t len;
	const uint8_t *rd = zd_crr_rdata_get(r, &len);
	return zd_crr_type_get(r) == LDNS_RR_TYPE_RRSIG && len >= 2 ? get16(rd) : 0;
}

int
zd_crr_owner_cmp(const struct zd_crr *a, const struct zd_crr *b)
{
	if (a->owner_len == b->owner_len && memcmp(a->wire, b->wire, a->owner_len) == 0)
		return 0;
	/* ldns compares label by label from the root (RFC 4034 s6.1); the
	 * rdf only borrows the bytes. */
	ldns_rdf ra, rb;
	memset(&ra, 0, sizeof ra);
	memset(&rb, 0, sizeof rb);
	ldns_rdf_set_type(&ra, LDNS_RDF_TYPE_DNAME);
	ldns_rdf_set_size(&ra, a->owner_len);
	ldns_rdf_set_data(&ra, (void *)a->wire);
	ldns_rdf_set_type(&rb, LDNS_RDF_TYPE_DNAME);
	ldns_rdf_set_size(&rb, b->owner_len);
	ldns_rdf_set_data(&rb, (void *)b->wire);
	return ldns_dname_compare(&ra, &rb);
}

int
zd_crr_cmp(const struct zd_crr *a, const struct zd_crr *b)
{
	int c = zd_crr_owner_cmp(a, b);
	if (c != 0)
		return c;
	uint16_t ca = zd_crr_class_get(a), cb = zd_crr_class_get(b);
	if (ca != cb)
		return ca < cb ? -1 : 1;
	uint16_t ta = zd_crr_type_get(a), tb = zd_crr_type_get(b);
	if (ta != tb)
		return ta < tb ? -1 : 1;
	uint16_t la, lb;
	const uint8_t *da = zd_crr_rdata_get(a, &la), *db = zd_crr_rdata_get(b, &lb);
	c = memcmp(da, db, la < lb ? la : lb);
	if (c != 0)
		return c;
	return la == lb ? 0 : (la < lb ? -1 : 1); /* a missing octet sorts first */
}

static int
crr_qsort_cmp(const void *a, const void *b)
{
	return zd_crr_cmp(a, b);
}

void
zd_crr_sort(struct zd_crr *rrs, size_t n, size_t *n_out)
{
	size_t w = 0;
	int owners_sorted = 1;

	/* Secondaries send their zone in canonical name order (NSD and BIND
	 * walk their name trees), though not each name's records in RFC 8976
	 * order: then only the records of each name need sorting.  Anything
	 * else gets a full sort. */
	for (size_t i = 1; i < n && owners_sorted; i++)
		owners_sorted = zd_crr_owner_cmp(&rrs[i - 1], &rrs[i]) <= 0;
	if (!owners_sorted) {
		qsort(rrs, n, sizeof *rrs, crr_qsort_cmp);
	} else {
		for (size_t i = 0; i < n;) {
			size_t j = i + 1, sorted = 1;
			for (; j < n && zd_crr_owner_cmp(&rrs[i], &rrs[j]) == 0; j++)
				sorted = sorted && zd_crr_cmp(&rrs[j - 1], &rrs[j]) <= 0;
			if (!sorted)
				qsort(rrs + i, j - i, sizeof *rrs, crr_qsort_cmp);
			i = j;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (w == 0 || zd_crr_cmp(&rrs[w - 1], &rrs[i]) != 0)
			rrs[w++] = rrs[i];
	*n_out = w;
}

zd_err
zd_zonemd_new(const ldns_rdf *apex, struct zd_zonemd **out)
{
	struct zd_zonemd *z = calloc(1, sizeof *z);

	if (z == NULL)
		return ZD_ENOMEM;
	zd_buf_init(&z->prev, 65535 + 512);
	z->md = EVP_MD_CTX_new();
	z->apex = ldns_rdf_clone(apex);
	if (z->md == NULL || z->apex == NULL || EVP_DigestInit_ex(z->md, EVP_sha384(), NULL) != 1) {
		zd_zonemd_free(z);
		return ZD_ENOMEM;
	}
	ldns_dname2canonical(z->apex);
	*out = z;
	return ZD_OK;
}

void
zd_zonemd_free(struct zd_zonemd *z)
{
	if (z == NULL)
		return;
	EVP_MD_CTX_free(z->md);
	ldns_rdf_deep_free(z->apex);
	zd_buf_clear(&z->prev);
	free(z);
}

static int
is_apex(const struct zd_zonemd *z, const struct zd_crr *r)
{
	return r->owner_len == ldns_rdf_size(z->apex) &&
	       memcmp(r->wire, ldns_rdf_data(z->apex), r->owner_len) == 0;
}

zd_err
zd_zonemd_add(struct zd_zonemd *z, const struct zd_crr *r)
{
	if (zd_check_failed(!z->final))
		return ZD_EBUG;
	if (z->have_prev) {
		int c = zd_crr_cmp(&z->prev_rr, r);
		if (c == 0)
			return ZD_OK;
		if (zd_check_failed(c < 0))
			return ZD_EBUG;
	}
	if (is_apex(z, r) && (zd_crr_type_get(r) == LDNS_RR_TYPE_ZONEMD ||
	                      zd_crr_covered_get(r) == LDNS_RR_TYPE_ZONEMD))
		return ZD_OK;
	zd_buf_reset(&z->prev);
	zd_err e = zd_buf_append(&z->prev, r->wire, r->len);
	if (e != ZD_OK)
		return e;
	z->prev_rr = (struct zd_crr){z->prev.data, r->len, r->owner_len};
	z->have_prev = 1;
	if (EVP_DigestUpdate(z->md, r->wire, r->len) != 1)
		return ZD_ENOMEM;
	z->count++;
	return ZD_OK;
}

void
zd_crr_list_init(struct zd_crr_list *l)
{
	memset(l, 0, sizeof *l);
	zd_buf_init(&l->bytes, SIZE_MAX / 2);
}

void
zd_crr_list_reset(struct zd_crr_list *l)
{
	zd_buf_reset(&l->bytes);
	l->n = 0;
}

void
zd_crr_list_clear(struct zd_crr_list *l)
{
	zd_buf_clear(&l->bytes);
	free(l->offs);
	free(l->olens);
	free(l->view);
	memset(l, 0, sizeof *l);
}

zd_err
zd_crr_list_add(struct zd_crr_list *l, const ldns_rr *rr)
{
	size_t at = l->bytes.len;
	uint16_t olen;
	zd_err e;

	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 16;
		size_t *o = realloc(l->offs, na * sizeof *o);
		if (o == NULL)
			return ZD_ENOMEM;
		l->offs = o;
		uint16_t *ol = realloc(l->olens, na * sizeof *ol);
		if (ol == NULL)
			return ZD_ENOMEM;
		l->olens = ol;
		struct zd_crr *v = realloc(l->view, na * sizeof *v);
		if (v == NULL)
			return ZD_ENOMEM;
		l->view = v;
		l->alloc = na;
	}
	if ((e = zd_crr_append(rr, &l->bytes, &olen)) != ZD_OK)
		return e;
	l->offs[l->n] = at;
	l->olens[l->n++] = olen;
	return ZD_OK;
}

zd_err
zd_zonemd_list_add(struct zd_zonemd *z, struct zd_crr_list *l)
{
	size_t kept = 0;
	zd_err e = ZD_OK;

	for (size_t i = 0; i < l->n; i++) /* the bytes no longer move */
		l->view[i] = (struct zd_crr){
		        l->bytes.data + l->offs[i],
		        (uint32_t)((i + 1 < l->n ? l->offs[i + 1] : l->bytes.len) - l->offs[i]),
		        l->olens[i]};
	zd_crr_sort(l->view, l->n, &kept);
	for (size_t i = 0; i < kept && e == ZD_OK; i++)
		e = zd_zonemd_add(z, &l->view[i]);
	zd_crr_list_reset(l);
	return e;
}

zd_err
zd_zonemd_name_add(struct zd_zonemd *z, const ldns_rr *const *rrs, size_t n)
{
	struct zd_crr_list l;
	zd_err e = ZD_OK;

	zd_crr_list_init(&l);
	for (size_t i = 0; i < n && e == ZD_OK; i++)
		e = zd_crr_list_add(&l, rrs[i]);
	if (e == ZD_OK)
		e = zd_zonemd_list_add(z, &l);
	zd_crr_list_clear(&l);
	return e;
}

zd_err
zd_zonemd_final(struct zd_zonemd *z, uint8_t out[ZD_ZONEMD_LEN])
{
	unsigned int len = 0;

	if (zd_check_failed(!z->final))
		return ZD_EBUG;
	z->final = 1;
	if (EVP_DigestFinal_ex(z->md, out, &len) != 1 || zd_check_failed(len == ZD_ZONEMD_LEN))
		return ZD_EBUG;
	return ZD_OK;
}

uint64_t
zd_zonemd_count_get(const struct zd_zonemd *z)
{
	return z->count;
}

void
zd_hex_encode(const uint8_t *p, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * len] = '\0';
}
