/* tests/fuzz/copy_fuzz.c -- libFuzzer target for the full load without a
 * database: the input (after its first byte) is a COPY binary stream of four
 * text columns, read with ra_copy_next() in two parts cut where the first
 * byte says, the way full_read() gets it from libpq; each row goes through
 * ra_row_parse() into ra_owners, and every name's records must come back
 * from ra_owners_get() equal to what went in.  Must never crash, leak,
 * assert or reach a zd_check_failed().  Built by tests/fuzz/meson.build
 * (-Dfuzz=true). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "registry-adapter/owners.h"
#include "registry-adapter/row.h"
#include "tests/fuzz/fuzz_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ldns_rdf *zone;

/* One row's fields as C strings (NULL for SQL NULL; a NUL inside: skipped). */
static void
row(struct ra_owners *o, ldns_rr_list *kept, const struct ra_copy_field *f)
{
	char *s[4] = {0};
	const char *why = NULL;
	ldns_rr *rr = NULL;
	int ok = 1;

	for (int c = 0; c < 4; c++) {
		if (f[c].p == NULL)
			continue;
		if (memchr(f[c].p, '\0', f[c].len) != NULL ||
		    (s[c] = malloc(f[c].len + 1)) == NULL) {
			ok = 0;
			continue;
		}
		memcpy(s[c], f[c].p, f[c].len);
		s[c][f[c].len] = '\0';
	}
	if (ok && ra_row_parse(zone, s[0], s[1], s[2], s[3], &rr, &why) == ZD_OK) {
		if (ra_owners_add(o, rr) == ZD_OK) {
			if (!ldns_rr_list_push_rr(kept, rr))
				abort();
		} else {
			ldns_rr_free(rr);
		}
	}
	for (int c = 0; c < 4; c++)
		free(s[c]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ra_owners *o = NULL;
	ldns_rr_list *kept = ldns_rr_list_new();
	size_t cut, pos = 0, avail;
	int header = 0, end = 0;

	if (zone == NULL) {
		fuzz_log_init(ZD_LOG_DEBUG);
		if (ldns_str2rdf_dname(&zone, "tld.") != LDNS_STATUS_OK)
			abort();
	}
	if (size < 1 || kept == NULL || ra_owners_new(1 << 20, &o) != ZD_OK) {
		ldns_rr_list_free(kept);
		return 0;
	}
	cut = data[0] % size;
	data++;
	size--;
	avail = cut < size ? cut : size;
	while (!end) {
		struct ra_copy_field f[4];
		enum ra_copy_kind kind;
		size_t used;
		if (ra_copy_next(data + pos, avail - pos, header, 4, f, &used, &kind) != ZD_OK)
			break;
		if (kind == RA_COPY_MORE) {
			if (avail == size)
				break; /* the stream ends inside an item */
			avail = size;
			continue;
		}
		if (used == 0 || used > avail - pos)
			abort(); /* every item takes bytes, and only those given */
		pos += used;
		if (kind == RA_COPY_HEADER)
			header = 1;
		else if (kind == RA_COPY_END)
			end = 1;
		else
			row(o, kept, f);
	}
	/* every record kept comes back once, under its own name */
	size_t total = 0;
	for (size_t i = 0; i < ra_owners_names(o); i++) {
		ldns_rr_list *l = ldns_rr_list_new();
		if (l == NULL || ra_owners_get(o, i, l) != ZD_OK)
			abort();
		if (ldns_rr_list_rr_count(l) != ra_owners_count(o, i))
			abort();
		for (size_t k = 0; k < ldns_rr_list_rr_count(l); k++) {
			ldns_rr *got = ldns_rr_list_rr(l, k);
			if (ldns_dname_compare(ldns_rr_owner(got),
			                       ldns_rr_owner(ldns_rr_list_rr(l, 0))) != 0)
				abort();
			size_t found = 0;
			for (size_t j = 0; j < ldns_rr_list_rr_count(kept); j++)
				found += ldns_rr_compare(got, ldns_rr_list_rr(kept, j)) == 0 &&
				         ldns_rr_ttl(got) == ldns_rr_ttl(ldns_rr_list_rr(kept, j));
			if (found == 0)
				abort();
		}
		total += ldns_rr_list_rr_count(l);
		ldns_rr_list_deep_free(l);
	}
	if (total != ldns_rr_list_rr_count(kept))
		abort();
	ldns_rr_list_deep_free(kept);
	ra_owners_free(o);
	fuzz_log_check();
	return 0;
}
