#include "integrity-check/zoneset.h"

#include <stdlib.h>
#include <string.h>

zd_err
zoneset_new(const ldns_rdf *apex, size_t max_bytes, struct zoneset **out)
{
	struct zoneset *zs = calloc(1, sizeof *zs);

	if (zs == NULL || (zs->apex = ldns_rdf_clone(apex)) == NULL) {
		free(zs);
		return ZD_ENOMEM;
	}
	ldns_dname2canonical(zs->apex);
	zd_buf_init(&zs->bytes, max_bytes);
	*out = zs;
	return ZD_OK;
}

void
zoneset_free(struct zoneset *zs)
{
	if (zs == NULL)
		return;
	ldns_rdf_deep_free(zs->apex);
	zd_buf_clear(&zs->bytes);
	free(zs->rrs);
	free(zs);
}

zd_err
zoneset_rr_add(struct zoneset *zs, const ldns_rr *rr)
{
	uint16_t olen;
	size_t at = zs->bytes.len;
	zd_err e;

	if (zd_check_failed(!zs->finished))
		return ZD_EBUG;
	if (zs->n == zs->alloc) {
		size_t na = zs->alloc ? zs->alloc * 2 : 1024;
		struct zd_crr *p = realloc(zs->rrs, na * sizeof *p);
		if (p == NULL)
			return ZD_ENOMEM;
		zs->rrs = p;
		zs->alloc = na;
	}
	if ((e = zd_crr_append(rr, &zs->bytes, &olen)) != ZD_OK)
		return e;
	/* Until finish, wire holds the offset: the buffer may still move. */
	zs->rrs[zs->n++] = (struct zd_crr){(const uint8_t *)(uintptr_t)at,
	                                   (uint32_t)(zs->bytes.len - at), olen};
	return ZD_OK;
}

zd_err
zoneset_finish(struct zoneset *zs)
{
	if (zd_check_failed(!zs->finished))
		return ZD_EBUG;
	for (size_t i = 0; i < zs->n; i++)
		zs->rrs[i].wire = zs->bytes.data + (uintptr_t)zs->rrs[i].wire;
	zd_crr_sort(zs->rrs, zs->n, &zs->n);
	zs->finished = 1;
	return ZD_OK;
}

size_t
zoneset_owner_lower_bound(const struct zoneset *zs, const ldns_rdf *owner)
{
	size_t lo = 0, hi = zs->n;
	struct zd_crr key = {ldns_rdf_data(owner), 0, (uint16_t)ldns_rdf_size(owner)};

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (zd_crr_owner_cmp(&zs->rrs[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

ldns_rr *
zoneset_rr_to_ldns(const struct zd_crr *r)
{
	ldns_rr *rr = NULL;
	size_t pos = 0;

	if (ldns_wire2rr(&rr, r->wire, r->len, &pos, LDNS_SECTION_ANSWER) != LDNS_STATUS_OK)
		return NULL;
	return rr;
}

zd_err
zoneset_digest(const struct zoneset *zs, uint8_t out[ZD_ZONEMD_LEN])
{
	struct zd_zonemd *z = NULL;
	zd_err e;

	if (zd_check_failed(zs->finished))
		return ZD_EBUG;
	if ((e = zd_zonemd_new(zs->apex, &z)) != ZD_OK)
		return e;
	for (size_t i = 0; i < zs->n && e == ZD_OK; i++)
		e = zd_zonemd_add(z, &zs->rrs[i]);
	if (e == ZD_OK)
		e = zd_zonemd_final(z, out);
	zd_zonemd_free(z);
	return e;
}

zd_err
zoneset_serial_get(const struct zoneset *zs, uint32_t *out)
{
	size_t i = zoneset_owner_lower_bound(zs, zs->apex);

	for (; i < zs->n; i++) {
		const struct zd_crr *r = &zs->rrs[i];
		if (r->owner_len != ldns_rdf_size(zs->apex) ||
		    memcmp(r->wire, ldns_rdf_data(zs->apex), r->owner_len) != 0)
			break;
		if (zd_crr_type_get(r) != LDNS_RR_TYPE_SOA)
			continue;
		uint16_t len;
		const uint8_t *rd = zd_crr_rdata_get(r, &len);
		if (len < 20)
			return ZD_EMALFORMED;
		const uint8_t *p = rd + len - 20;
		*out = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
		       p[3];
		return ZD_OK;
	}
	return ZD_ENOTFOUND;
}
