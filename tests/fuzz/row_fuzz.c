/* tests/fuzz/row_fuzz.c -- libFuzzer target for ra_row_parse(): the input is
 * split at NUL bytes into owner, type, ttl and rdata (missing fields are SQL
 * NULL), parsed against the zone "tld.", and every record that comes out is
 * printed, compared with what ldns_rr_new_frm_str() makes of the same rdata
 * (ra_row_parse() builds the common records field by field: the two must
 * agree), and put through ra_rrs_check().  Must never crash, leak, assert or
 * reach a zd_check_failed().  Built by tests/fuzz/meson.build (-Dfuzz=true). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "registry-adapter/row.h"
#include "tests/fuzz/fuzz_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The record ldns_rr_new_frm_str() makes of rr's type and this rdata text
 * must have rr's rdata, field for field. */
static void
same_as_ldns(const ldns_rr *rr, const char *rdata)
{
	char *type = ldns_rr_type2str(ldns_rr_get_type(rr));
	size_t len = strlen(rdata) + 64;
	char *line = malloc(len);
	ldns_rr *want = NULL;

	if (type == NULL || line == NULL)
		abort();
	snprintf(line, len, ". 0 IN %s %s", type, rdata);
	if (ldns_rr_new_frm_str(&want, line, 0, NULL, NULL) != LDNS_STATUS_OK)
		abort(); /* ra_row_parse() took text ldns refuses */
	ldns_rr2canonical(want);
	if (ldns_rr_get_type(want) != ldns_rr_get_type(rr) ||
	    ldns_rr_rd_count(want) != ldns_rr_rd_count(rr))
		abort();
	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *a = ldns_rr_rdf(rr, i), *b = ldns_rr_rdf(want, i);
		if (ldns_rdf_get_type(a) != ldns_rdf_get_type(b) || ldns_rdf_compare(a, b) != 0)
			abort();
	}
	ldns_rr_free(want);
	free(line);
	free(type);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static ldns_rdf *zone;
	char *copy, *field[4] = {NULL, NULL, NULL, NULL};
	size_t start = 0;
	int nf = 0;
	ldns_rr *rr = NULL;
	const char *reason = NULL;

	if (zone == NULL) {
		fuzz_log_init(ZD_LOG_DEBUG);
		if (ldns_str2rdf_dname(&zone, "tld.") != LDNS_STATUS_OK)
			abort();
	}
	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (size_t i = 0; i <= size && nf < 4; i++) {
		if (copy[i] == '\0') {
			field[nf++] = copy + start;
			start = i + 1;
		}
	}
	if (ra_row_parse(zone, field[0], field[1], field[2], field[3], &rr, &reason) == ZD_OK) {
		ldns_rr_list *l = ldns_rr_list_new();
		struct ra_reject *rej = NULL;
		size_t n = 0;
		char *s = ldns_rr2str(rr);

		free(s);
		same_as_ldns(rr, field[3]);
		if (l != NULL && ldns_rr_list_push_rr(l, rr)) {
			ldns_rr *again = ldns_rr_clone(rr); /* a duplicate for the check */
			if (again != NULL && !ldns_rr_list_push_rr(l, again))
				ldns_rr_free(again);
			if (ra_rrs_check(l, &rej, &n) == ZD_OK)
				ra_rejects_free(rej, n);
			ldns_rr_list_deep_free(l);
		} else {
			ldns_rr_list_free(l);
			ldns_rr_free(rr);
		}
	}
	free(copy);
	fuzz_log_check();
	return 0;
}
