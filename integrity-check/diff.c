#include "integrity-check/diff.h"

#include <stdlib.h>
#include <string.h>

static int
same_rrset(const struct zd_crr *a, const struct zd_crr *b)
{
	return zd_crr_owner_cmp(a, b) == 0 && zd_crr_type_get(a) == zd_crr_type_get(b) &&
	       zd_crr_covered_get(a) == zd_crr_covered_get(b);
}

/* A record ldns cannot read back (it came from a broken secondary) in the
 * generic form of RFC 3597: owner TTL CLASSn TYPEn \# len hex. */
static char *
rr_text_generic(const struct zd_crr *r)
{
	ldns_rdf owner;
	uint16_t len;
	const uint8_t *rd = zd_crr_rdata_get(r, &len);
	memset(&owner, 0, sizeof owner);
	ldns_rdf_set_type(&owner, LDNS_RDF_TYPE_DNAME);
	ldns_rdf_set_size(&owner, r->owner_len);
	ldns_rdf_set_data(&owner, (void *)r->wire);
	char *o = ldns_rdf2str(&owner);
	size_t n = (o ? strlen(o) : 1) + 64 + 2 * (size_t)len;
	char *t = malloc(n);
	if (t != NULL) {
		int w = snprintf(t, n, "%s\t%u\tCLASS%u\tTYPE%u\t\\# %u ", o ? o : "?",
		                 zd_crr_ttl_get(r), zd_crr_class_get(r), zd_crr_type_get(r), len);
		if (w > 0 && (size_t)w < n)
			zd_hex_encode(rd, len, t + w);
	}
	free(o);
	return t;
}

static char *
rr_text(const struct zd_crr *r)
{
	ldns_rr *rr = zoneset_rr_to_ldns(r);
	char *t = rr ? ldns_rr2str(rr) : NULL;
	ldns_rr_free(rr);
	if (t == NULL)
		return rr_text_generic(r);
	if (t != NULL) { /* one line, without the newline ldns ends it with */
		size_t n = strlen(t);
		while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r'))
			t[--n] = '\0';
	}
	return t;
}

/* Note record r (missing: 1, extra: 0) in the set for its RRset. */
static zd_err
note(struct diff *d, const struct zd_crr *r, int missing, const struct zd_crr **last,
     size_t max_rrsets, size_t max_records)
{
	struct diff_rrset *s = NULL;

	if (*last == NULL || !same_rrset(*last, r)) {
		d->rrsets_total++;
		*last = r;
		if (d->n_rrsets < max_rrsets) {
			struct diff_rrset *p = realloc(d->rrsets, (d->n_rrsets + 1) * sizeof *p);
			if (p == NULL)
				return ZD_ENOMEM;
			d->rrsets = p;
			s = &p[d->n_rrsets++];
			memset(s, 0, sizeof *s);
			ldns_rdf owner;
			memset(&owner, 0, sizeof owner);
			ldns_rdf_set_type(&owner, LDNS_RDF_TYPE_DNAME);
			ldns_rdf_set_size(&owner, r->owner_len);
			ldns_rdf_set_data(&owner, (void *)r->wire);
			s->owner = ldns_rdf2str(&owner);
			s->type = zd_crr_type_get(r);
			s->covered = zd_crr_covered_get(r);
			if (s->owner == NULL)
				return ZD_ENOMEM;
		}
	} else if (d->n_rrsets > 0 && d->rrsets_total == d->n_rrsets) {
		s = &d->rrsets[d->n_rrsets - 1];
	}
	if (missing)
		d->missing_total++;
	else
		d->extra_total++;
	if (s == NULL)
		return ZD_OK; /* beyond max_rrsets: counted only */
	uint64_t *total = missing ? &s->missing_total : &s->extra_total;
	char ***list = missing ? &s->missing : &s->extra;
	size_t *n = missing ? &s->n_missing : &s->n_extra;
	(*total)++;
	if (*n >= max_records)
		return ZD_OK;
	char **p = realloc(*list, (*n + 1) * sizeof *p);
	if (p == NULL)
		return ZD_ENOMEM;
	*list = p;
	if ((p[*n] = rr_text(r)) == NULL)
		return ZD_ENOMEM;
	(*n)++;
	return ZD_OK;
}

zd_err
diff_zonesets(const struct zoneset *want, const struct zoneset *got, size_t max_rrsets,
              size_t max_records, struct diff *out)
{
	struct diff d = {0};
	size_t i = 0, j = 0;
	const struct zd_crr *last = NULL;
	zd_err e = ZD_OK;

	while (e == ZD_OK && (i < want->n || j < got->n)) {
		int c = i == want->n  ? 1
		        : j == got->n ? -1
		                      : zd_crr_cmp(&want->rrs[i], &got->rrs[j]);
		if (c == 0 && zd_crr_ttl_get(&want->rrs[i]) == zd_crr_ttl_get(&got->rrs[j])) {
			i++;
			j++;
		} else if (c == 0) { /* another TTL */
			e = note(&d, &want->rrs[i++], 1, &last, max_rrsets, max_records);
			if (e == ZD_OK)
				e = note(&d, &got->rrs[j++], 0, &last, max_rrsets, max_records);
		} else if (c < 0) {
			e = note(&d, &want->rrs[i++], 1, &last, max_rrsets, max_records);
		} else {
			e = note(&d, &got->rrs[j++], 0, &last, max_rrsets, max_records);
		}
	}
	if (e != ZD_OK) {
		diff_clear(&d);
		return e;
	}
	*out = d;
	return ZD_OK;
}

void
diff_clear(struct diff *d)
{
	for (size_t i = 0; i < d->n_rrsets; i++) {
		struct diff_rrset *s = &d->rrsets[i];
		free(s->owner);
		for (size_t k = 0; k < s->n_missing; k++)
			free(s->missing[k]);
		for (size_t k = 0; k < s->n_extra; k++)
			free(s->extra[k]);
		free(s->missing);
		free(s->extra);
	}
	free(d->rrsets);
	memset(d, 0, sizeof *d);
}
