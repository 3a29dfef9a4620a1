/* Unit tests of common/zd_zonemd (canonical records, the ZONEMD digest) and
 * integrity-check/zoneset.  The digest is checked against ldns's own ZONEMD
 * verifier (ldns_dnssec_zone_verify_zonemd), an implementation we share no
 * code with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_zonemd.h"
#include "integrity-check/diff.h"
#include "integrity-check/zoneset.h"

static const char *zone_text[] = {
        "tld. 3600 IN SOA ns1.tld. hostmaster.tld. 2024010101 1800 900 604800 300",
        "tld. 3600 IN NS ns1.tld.",
        "tld. 3600 IN NS NS2.Tld.",
        "ns1.tld. 3600 IN A 192.0.2.1",
        "ns2.tld. 3600 IN AAAA 2001:db8::2",
        "Example.tld. 86400 IN NS ns1.example.tld.",
        "example.tld. 86400 IN NS ns.other.net.",
        "ns1.example.tld. 86400 IN A 192.0.2.10",
        "ns1.example.tld. 86400 IN A 192.0.2.9",
        "a.b.c.tld. 86400 IN NS ns.other.net.",
        "a.b.c.tld. 86400 IN DS 12345 13 2 "
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "z.tld. 86400 IN TXT \"hello\" \"world\"",
        "\\000.tld. 86400 IN TXT \"binary label\"",
        "yljkjljk.a.tld. 86400 IN NS ns.other.net.",
};
#define N_ZONE (sizeof zone_text / sizeof zone_text[0])

static ldns_rr *
rr(const char *text)
{
	ldns_rr *r = NULL;
	assert_int_equal(ldns_rr_new_frm_str(&r, text, 3600, NULL, NULL), LDNS_STATUS_OK);
	return r;
}

static ldns_rdf *
apex(void)
{
	ldns_rdf *d = NULL;
	assert_int_equal(ldns_str2rdf_dname(&d, "tld."), LDNS_STATUS_OK);
	return d;
}

/* The digest of the records in order[] (indexes into texts), via a zoneset. */
static void
zoneset_digest_of(const char **texts, const size_t *order, size_t n, uint8_t out[ZD_ZONEMD_LEN])
{
	ldns_rdf *a = apex();
	struct zoneset *zs = NULL;
	assert_int_equal(zoneset_new(a, 1 << 20, &zs), ZD_OK);
	for (size_t i = 0; i < n; i++) {
		ldns_rr *r = rr(texts[order ? order[i] : i]);
		assert_int_equal(zoneset_rr_add(zs, r), ZD_OK);
		ldns_rr_free(r);
	}
	assert_int_equal(zoneset_finish(zs), ZD_OK);
	assert_int_equal(zoneset_digest(zs, out), ZD_OK);
	zoneset_free(zs);
	ldns_rdf_deep_free(a);
}

/* ldns's verdict on a ZONEMD carrying digest over the zone. */
static ldns_status
ldns_verdict(const char **texts, size_t n, const uint8_t digest[ZD_ZONEMD_LEN])
{
	char hex[2 * ZD_ZONEMD_LEN + 1], zmd[256];
	ldns_dnssec_zone *dz = ldns_dnssec_zone_new();
	ldns_status st;

	zd_hex_encode(digest, ZD_ZONEMD_LEN, hex);
	snprintf(zmd, sizeof zmd, "tld. 3600 IN ZONEMD 2024010101 1 1 %s", hex);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ldns_dnssec_zone_add_rr(dz, rr(texts[i])), LDNS_STATUS_OK);
	assert_int_equal(ldns_dnssec_zone_add_rr(dz, rr(zmd)), LDNS_STATUS_OK);
	st = ldns_dnssec_zone_verify_zonemd(dz);
	ldns_dnssec_zone_deep_free(dz);
	return st;
}

static void
digest_is_the_one_ldns_verifies(void **state)
{
	uint8_t d[ZD_ZONEMD_LEN];
	(void)state;
	zoneset_digest_of(zone_text, NULL, N_ZONE, d);
	assert_int_equal(ldns_verdict(zone_text, N_ZONE, d), LDNS_STATUS_OK);
	d[7] ^= 1;
	assert_int_not_equal(ldns_verdict(zone_text, N_ZONE, d), LDNS_STATUS_OK);
}

static void
digest_ignores_order_case_and_duplicates(void **state)
{
	uint8_t d1[ZD_ZONEMD_LEN], d2[ZD_ZONEMD_LEN];
	size_t order[N_ZONE + 2];
	(void)state;
	zoneset_digest_of(zone_text, NULL, N_ZONE, d1);
	for (size_t i = 0; i < N_ZONE; i++)
		order[i] = N_ZONE - 1 - i; /* reversed */
	order[N_ZONE] = 3;                 /* and two duplicates */
	order[N_ZONE + 1] = 7;
	zoneset_digest_of(zone_text, order, N_ZONE + 2, d2);
	assert_memory_equal(d1, d2, ZD_ZONEMD_LEN);

	const char *upper[N_ZONE];
	memcpy(upper, zone_text, sizeof upper);
	upper[3] = "NS1.TLD. 3600 IN A 192.0.2.1";
	zoneset_digest_of(upper, NULL, N_ZONE, d2);
	assert_memory_equal(d1, d2, ZD_ZONEMD_LEN);
}

static void
digest_changes_with_any_record(void **state)
{
	uint8_t d1[ZD_ZONEMD_LEN], d2[ZD_ZONEMD_LEN];
	const char *other[N_ZONE];
	(void)state;
	zoneset_digest_of(zone_text, NULL, N_ZONE, d1);
	const char *changes[] = {
	        "ns1.tld. 3601 IN A 192.0.2.1",  /* TTL */
	        "ns1.tld. 3600 IN A 192.0.2.2",  /* rdata */
	        "ns1x.tld. 3600 IN A 192.0.2.1", /* owner */
	};
	for (size_t c = 0; c < 3; c++) {
		memcpy(other, zone_text, sizeof other);
		other[3] = changes[c];
		zoneset_digest_of(other, NULL, N_ZONE, d2);
		assert_memory_not_equal(d1, d2, ZD_ZONEMD_LEN);
	}
	zoneset_digest_of(zone_text, NULL, N_ZONE - 1, d2); /* one record fewer */
	assert_memory_not_equal(d1, d2, ZD_ZONEMD_LEN);
}

/* The per-name path zonedistd takes gives the zoneset's digest, and an apex
 * ZONEMD (with its RRSIG) is left out as RFC 8976 says. */
static void
name_by_name_equals_zoneset_and_skips_apex_zonemd(void **state)
{
	uint8_t d1[ZD_ZONEMD_LEN], d2[ZD_ZONEMD_LEN];
	ldns_rdf *a = apex();
	struct zoneset *zs = NULL;
	struct zd_zonemd *z = NULL;
	(void)state;

	zoneset_digest_of(zone_text, NULL, N_ZONE, d1);
	/* Group the zoneset's sorted records by owner and feed them name by
	 * name, each name's records reversed, plus an apex ZONEMD. */
	assert_int_equal(zoneset_new(a, 1 << 20, &zs), ZD_OK);
	for (size_t i = 0; i < N_ZONE; i++) {
		ldns_rr *r = rr(zone_text[i]);
		assert_int_equal(zoneset_rr_add(zs, r), ZD_OK);
		ldns_rr_free(r);
	}
	assert_int_equal(zoneset_finish(zs), ZD_OK);
	assert_int_equal(zd_zonemd_new(a, &z), ZD_OK);
	ldns_rr *group[16];
	size_t ng = 0;
	for (size_t i = 0; i <= zs->n; i++) {
		if (i == zs->n || (ng > 0 && zd_crr_owner_cmp(&zs->rrs[i - 1], &zs->rrs[i]) != 0)) {
			for (size_t k = 0; k < ng / 2; k++) {
				ldns_rr *t = group[k];
				group[k] = group[ng - 1 - k];
				group[ng - 1 - k] = t;
			}
			if (ldns_dname_compare(ldns_rr_owner(group[0]), a) == 0)
				group[ng++] = rr("tld. 3600 IN ZONEMD 1 1 1 "
				                 "000000000000000000000000000000000000000000"
				                 "000000000000000000000000000000000000000000000"
				                 "000000000");
			assert_int_equal(zd_zonemd_name_add(z, (const ldns_rr *const *)group, ng),
			                 ZD_OK);
			for (size_t k = 0; k < ng; k++)
				ldns_rr_free(group[k]);
			ng = 0;
		}
		if (i < zs->n)
			group[ng++] = zoneset_rr_to_ldns(&zs->rrs[i]);
	}
	assert_int_equal(zd_zonemd_final(z, d2), ZD_OK);
	assert_memory_equal(d1, d2, ZD_ZONEMD_LEN);
	assert_int_equal(zd_zonemd_count_get(z), zs->n);
	zd_zonemd_free(z);
	zoneset_free(zs);
	ldns_rdf_deep_free(a);
}

static void
records_out_of_order_are_refused(void **state)
{
	ldns_rdf *a = apex();
	struct zd_zonemd *z = NULL;
	ldns_rr *r1 = rr("b.tld. 60 IN A 192.0.2.1"), *r2 = rr("a.tld. 60 IN A 192.0.2.1");
	(void)state;
	assert_int_equal(zd_zonemd_new(a, &z), ZD_OK);
	assert_int_equal(zd_zonemd_name_add(z, (const ldns_rr *const *)&r1, 1), ZD_OK);
	assert_int_equal(zd_zonemd_name_add(z, (const ldns_rr *const *)&r2, 1), ZD_EBUG);
	zd_zonemd_free(z);
	ldns_rr_free(r1);
	ldns_rr_free(r2);
	ldns_rdf_deep_free(a);
}

static void
canonical_order_is_rfc4034(void **state)
{
	/* RFC 4034 s6.1's example, in order. */
	const char *names[] = {"example.",         "a.example.",      "yljkjljk.a.example.",
	                       "Z.a.example.",     "zABC.a.EXAMPLE.", "z.example.",
	                       "\\001.z.example.", "*.z.example.",    "\\200.z.example."};
	struct zd_buf b;
	struct zd_crr c[9];
	size_t off[9], n;
	(void)state;
	zd_buf_init(&b, 1 << 16);
	for (size_t i = 0; i < 9; i++) {
		char t[128];
		snprintf(t, sizeof t, "%s 60 IN A 192.0.2.1", names[i]);
		ldns_rr *r = rr(t);
		off[i] = b.len;
		assert_int_equal(zd_crr_append(r, &b, &c[i].owner_len), ZD_OK);
		ldns_rr_free(r);
	}
	for (size_t i = 0; i < 9; i++) {
		c[i].wire = b.data + off[i];
		c[i].len = (uint32_t)((i + 1 < 9 ? off[i + 1] : b.len) - off[i]);
	}
	for (size_t i = 1; i < 9; i++)
		assert_true(zd_crr_cmp(&c[i - 1], &c[i]) < 0);
	struct zd_crr s[9] = {c[8], c[3], c[0], c[5], c[1], c[7], c[2], c[6], c[4]};
	zd_crr_sort(s, 9, &n);
	assert_int_equal(n, 9);
	for (size_t i = 0; i < 9; i++)
		assert_ptr_equal(s[i].wire, c[i].wire);
	zd_buf_clear(&b);
}

static void
malformed_canonical_records_are_refused(void **state)
{
	struct zd_crr c;
	const uint8_t ok[] = {3, 't', 'l', 'd', 0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};
	uint8_t bad[sizeof ok];
	(void)state;
	assert_int_equal(zd_crr_parse(ok, sizeof ok, &c), ZD_OK);
	assert_int_equal(c.owner_len, 5);
	assert_int_equal(zd_crr_type_get(&c), 1);
	assert_int_equal(zd_crr_ttl_get(&c), 60);
	for (size_t len = 0; len < sizeof ok; len++) /* every truncation */
		assert_int_equal(zd_crr_parse(ok, len, &c), ZD_EMALFORMED);
	memcpy(bad, ok, sizeof ok);
	bad[0] = 0xc0; /* a compression pointer */
	assert_int_equal(zd_crr_parse(bad, sizeof bad, &c), ZD_EMALFORMED);
	memcpy(bad, ok, sizeof ok);
	bad[14] = 5; /* rdlength beyond the end */
	assert_int_equal(zd_crr_parse(bad, sizeof bad, &c), ZD_EMALFORMED);
}

static void
zoneset_limit_and_serial(void **state)
{
	ldns_rdf *a = apex();
	struct zoneset *zs = NULL;
	uint32_t serial = 0;
	(void)state;
	assert_int_equal(zoneset_new(a, 200, &zs), ZD_OK);
	char big_text[300] = "z.tld. 60 IN TXT \""; /* a record over the 200-byte limit */
	size_t l = strlen(big_text);
	memset(big_text + l, 'x', 240);
	memcpy(big_text + l + 240, "\"", 2);
	ldns_rr *soa = rr(zone_text[0]), *big = rr(big_text);
	assert_int_equal(zoneset_rr_add(zs, soa), ZD_OK);
	assert_int_equal(zoneset_rr_add(zs, big), ZD_ELIMIT);
	assert_int_equal(zoneset_finish(zs), ZD_OK);
	assert_int_equal(zs->n, 1);
	assert_int_equal(zoneset_serial_get(zs, &serial), ZD_OK);
	assert_int_equal(serial, 2024010101u);
	ldns_rr_free(soa);
	ldns_rr_free(big);
	zoneset_free(zs);
	ldns_rdf_deep_free(a);
}

static struct zoneset *
zoneset_of(const char **texts, size_t n)
{
	ldns_rdf *a = apex();
	struct zoneset *zs = NULL;
	assert_int_equal(zoneset_new(a, 1 << 20, &zs), ZD_OK);
	for (size_t i = 0; i < n; i++) {
		ldns_rr *r = rr(texts[i]);
		assert_int_equal(zoneset_rr_add(zs, r), ZD_OK);
		ldns_rr_free(r);
	}
	assert_int_equal(zoneset_finish(zs), ZD_OK);
	ldns_rdf_deep_free(a);
	return zs;
}

static void
diff_groups_by_rrset_and_caps(void **state)
{
	const char *got_text[N_ZONE + 1];
	struct diff d;
	(void)state;
	memcpy(got_text, zone_text, sizeof zone_text);
	got_text[8] = "ns1.example.tld. 86400 IN A 192.0.2.99"; /* glue address changed */
	got_text[10] = "a.b.c.tld. 86400 IN NS ns2.other.net."; /* DS gone, NS added */
	got_text[3] = "ns1.tld. 60 IN A 192.0.2.1";             /* TTL changed */
	struct zoneset *want = zoneset_of(zone_text, N_ZONE), *got = zoneset_of(got_text, N_ZONE);

	assert_int_equal(diff_zonesets(want, want, 10, 10, &d), ZD_OK);
	assert_int_equal(d.rrsets_total, 0);
	diff_clear(&d);
	assert_int_equal(diff_zonesets(want, got, 10, 10, &d), ZD_OK);
	assert_int_equal(d.rrsets_total, 4); /* NS, DS at a.b.c; A at ns1.example; A at ns1 */
	assert_int_equal(d.missing_total, 3);
	assert_int_equal(d.extra_total, 3);
	size_t seen = 0;
	for (size_t i = 0; i < d.n_rrsets; i++) {
		const struct diff_rrset *r = &d.rrsets[i];
		if (strcmp(r->owner, "a.b.c.tld.") == 0 && r->type == LDNS_RR_TYPE_DS) {
			assert_int_equal(r->n_missing, 1);
			assert_int_equal(r->n_extra, 0);
			seen++;
		} else if (strcmp(r->owner, "a.b.c.tld.") == 0 && r->type == LDNS_RR_TYPE_NS) {
			assert_int_equal(r->n_extra, 1);
			assert_non_null(strstr(r->extra[0], "ns2.other.net."));
			seen++;
		} else if (strcmp(r->owner, "ns1.example.tld.") == 0) {
			assert_int_equal(r->n_missing, 1);
			assert_int_equal(r->n_extra, 1);
			assert_non_null(strstr(r->missing[0], "192.0.2.9"));
			seen++;
		} else if (strcmp(r->owner, "ns1.tld.") == 0) {
			assert_int_equal(r->n_missing, 1); /* TTL 3600 */
			assert_int_equal(r->n_extra, 1);   /* TTL 60 */
			seen++;
		}
	}
	assert_int_equal(seen, 4);
	diff_clear(&d);
	/* Caps: one RRset and no record described, everything counted. */
	assert_int_equal(diff_zonesets(want, got, 1, 0, &d), ZD_OK);
	assert_int_equal(d.n_rrsets, 1);
	assert_int_equal(d.rrsets_total, 4);
	assert_int_equal(d.rrsets[0].n_missing + d.rrsets[0].n_extra, 0);
	assert_true(d.rrsets[0].missing_total + d.rrsets[0].extra_total > 0);
	assert_int_equal(d.missing_total + d.extra_total, 6);
	diff_clear(&d);
	zoneset_free(want);
	zoneset_free(got);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(malformed_canonical_records_are_refused),
	        cmocka_unit_test(records_out_of_order_are_refused),
	        cmocka_unit_test(canonical_order_is_rfc4034),
	        cmocka_unit_test(digest_is_the_one_ldns_verifies),
	        cmocka_unit_test(digest_ignores_order_case_and_duplicates),
	        cmocka_unit_test(digest_changes_with_any_record),
	        cmocka_unit_test(name_by_name_equals_zoneset_and_skips_apex_zonemd),
	        cmocka_unit_test(zoneset_limit_and_serial),
	        cmocka_unit_test(diff_groups_by_rrset_and_caps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
