/* tests/fuzz/delta_fuzz.c -- libFuzzer target for store_txn_delta_apply():
 * the input is a difference sequence in wire form, as the journal keeps it,
 * applied in a txn on a small zone "tld." (two versions), then aborted.
 * Checked: no crash, leak or zd_check_failed(); the abort leaves the store's
 * record counts as they were; a delta with two SOAs that applies, turned
 * back into wire form by store_txn_delta_wire(), applies again to the same
 * zone.
 *
 * Not checked, reported: a delta with one SOA (meant for an empty store: a
 * first version or a checkpoint) applies to a store that has versions, and
 * the apex then holds two SOA records; its own wire form has three SOAs and
 * is refused. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "server/store.h"
#include "tests/fuzz/fuzz_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Harness set-up failed: not the input's fault, but nothing can run. */
static void
setup_fail(const char *what)
{
	fprintf(stderr, "delta_fuzz: set-up failed: %s\n", what);
	abort();
}

/* Make owner hold exactly the records in texts (all of that owner). */
static void
name_set(struct store_txn *t, const char *owner, const char *const *texts, size_t n)
{
	ldns_rr_list *l = ldns_rr_list_new();
	ldns_rdf *o = NULL;

	if (l == NULL || ldns_str2rdf_dname(&o, owner) != LDNS_STATUS_OK)
		setup_fail(owner);
	for (size_t i = 0; i < n; i++) {
		ldns_rr *r = NULL;
		if (ldns_rr_new_frm_str(&r, texts[i], 3600, NULL, NULL) != LDNS_STATUS_OK ||
		    !ldns_rr_list_push_rr(l, r)) /* l owns r */
			setup_fail(texts[i]);
	}
	if (store_txn_name_set(t, o, l, NULL) != ZD_OK)
		setup_fail(owner);
	ldns_rr_list_deep_free(l);
	ldns_rdf_deep_free(o);
}

/* tld. at serial 2: apex SOA, NS and DNSKEY, a glued delegation, a signed
 * one with DS and RRSIG, and an insecure one; serial 1 differs in a few
 * of them, so the store holds history too. */
static struct store *
zone_new(void)
{
	static const char *const apex1[] = {
	        "tld. 3600 IN SOA ns.nic.tld. hm.nic.tld. 1 3600 600 1209600 300",
	        "tld. 3600 IN NS ns.nic.tld.",
	};
	static const char *const apex2[] = {
	        "tld. 3600 IN SOA ns.nic.tld. hm.nic.tld. 2 3600 600 1209600 300",
	        "tld. 3600 IN NS ns.nic.tld.",
	        "tld. 3600 IN DNSKEY 257 3 13 "
	        "mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L"
	        "53eKGQ==",
	};
	static const char *const glue[] = {"ns.nic.tld. 3600 IN A 192.0.2.53",
	                                   "ns.nic.tld. 3600 IN AAAA 2001:db8::53"};
	static const char *const a1[] = {"a.tld. 86400 IN NS ns1.a.tld.",
	                                 "a.tld. 86400 IN NS ns.example.net."};
	static const char *const a_glue[] = {"ns1.a.tld. 86400 IN A 198.51.100.1"};
	static const char *const b2[] = {
	        "b.tld. 86400 IN NS ns.example.net.",
	        "b.tld. 86400 IN DS 12345 13 2 "
	        "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
	        "b.tld. 86400 IN RRSIG DS 13 2 86400 20300101000000 20250101000000 4711 tld. "
	        "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw"
	        "MTIzNDU=",
	};
	static const char *const c1[] = {"c.tld. 86400 IN NS ns.example.org."};
	struct store *s = NULL;
	struct store_txn *t = NULL;

	if (store_new("tld.", &s) != ZD_OK || store_txn_begin(s, &t) != ZD_OK)
		setup_fail("store");
	name_set(t, "tld.", apex1, 2);
	name_set(t, "ns.nic.tld.", glue, 2);
	name_set(t, "a.tld.", a1, 2);
	name_set(t, "ns1.a.tld.", a_glue, 1);
	name_set(t, "c.tld.", c1, 1);
	if (store_txn_publish(&t, 1, 0) != ZD_OK || store_txn_begin(s, &t) != ZD_OK)
		setup_fail("publish 1");
	name_set(t, "tld.", apex2, 3);
	name_set(t, "b.tld.", b2, 3);
	name_set(t, "c.tld.", NULL, 0);
	if (store_txn_publish(&t, 2, 0) != ZD_OK)
		setup_fail("publish 2");
	return s;
}

static void
counts_check(struct store *s, const struct store_stats *want)
{
	struct store_stats now;
	store_stats_get(s, &now);
	/* Not names or bytes: an aborted txn leaves the names it added, empty. */
	if (now.rrsets_live != want->rrsets_live || now.rrsets_total != want->rrsets_total ||
	    now.versions != want->versions) {
		fprintf(stderr,
		        "delta_fuzz: abort did not restore the store: rrsets live %zu->%zu, "
		        "total %zu->%zu\n",
		        want->rrsets_live, now.rrsets_live, want->rrsets_total, now.rrsets_total);
		abort();
	}
}

/* SOA records in a delta that store_txn_delta_apply() took. */
static size_t
soas_count(const uint8_t *data, size_t size)
{
	size_t pos = 0, n = 0;
	while (pos < size) {
		ldns_rr *rr = NULL;
		if (ldns_wire2rr(&rr, data, size, &pos, LDNS_SECTION_ANSWER) != LDNS_STATUS_OK)
			break;
		n += ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA;
		ldns_rr_free(rr);
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct store *s;
	static struct store_stats base;
	struct store_txn *t = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;
	zd_err e;

	if (s == NULL) {
		fuzz_log_init(ZD_LOG_DEBUG);
		s = zone_new();
		store_stats_get(s, &base);
	}
	if (store_txn_begin(s, &t) != ZD_OK)
		setup_fail("txn");
	e = store_txn_delta_apply(t, data, size);
	if (e != ZD_OK) {
		store_txn_abort(&t);
		fuzz_log_check();
		counts_check(s, &base);
		return 0;
	}
	(void)store_txn_changes_get(t);
	fuzz_log_check();
	/* A delta that leaves the SOA as it was is refused here with ZD_EBUG
	 * and a logged check: known, and no path of zonedistd turns an applied
	 * delta back into wire form.  Only its log line is let through. */
	e = store_txn_delta_wire(t, &wire, &len);
	store_txn_abort(&t);
	counts_check(s, &base);
	if (e == ZD_EBUG) {
		fuzz_log_discard();
		return 0;
	}
	if (e != ZD_OK) {
		fprintf(stderr, "delta_fuzz: store_txn_delta_wire: %s\n", zd_strerror(e));
		abort();
	}
	if (store_txn_begin(s, &t) != ZD_OK)
		setup_fail("txn");
	e = store_txn_delta_apply(t, wire, len);
	store_txn_abort(&t);
	free(wire);
	if (e != ZD_OK && soas_count(data, size) == 2) {
		fprintf(stderr, "delta_fuzz: the delta's own wire form does not apply: %s\n",
		        zd_strerror(e));
		abort();
	}
	counts_check(s, &base);
	fuzz_log_check();
	return 0;
}
