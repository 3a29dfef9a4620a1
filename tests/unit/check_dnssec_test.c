/* tests/unit/check_dnssec_test.c -- integrity-check/dnssec.c: zones signed
 * here by ldns's own signer (software keys), loaded into a zoneset, then
 * broken one way at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "integrity-check/dnssec.h"

#define NOW        1800000000u /* 2027-01-15 */
#define INCEPTION  1700000000u
#define EXPIRATION 1900000000u

/* Secure and insecure delegations with glue, an empty non-terminal above
 * secure data (b.tld.), one above an insecure delegation only (y.tld.),
 * in-zone name server addresses and a wildcard below an ENT (w.tld.). */
static const char *const zone_text[] = {
        "tld. 3600 IN SOA ns1.tld. hostmaster.tld. 1 3600 900 604800 300",
        "tld. 3600 IN NS ns1.tld.",
        "ns1.tld. 3600 IN A 192.0.2.1",
        "ns1.tld. 3600 IN AAAA 2001:db8::1",
        "sec.tld. 3600 IN NS ns.sec.tld.",
        "sec.tld. 3600 IN DS 12345 13 2 "
        "3490A6806D47F17A34C29E2CE80E8A999FFBE4BE3490A6806D47F17A34C29E2C",
        "ns.sec.tld. 3600 IN A 192.0.2.2",
        "insec.tld. 3600 IN NS ns.insec.tld.",
        "insec.tld. 3600 IN NS ns1.tld.",
        "ns.insec.tld. 3600 IN A 192.0.2.3",
        "a.b.tld. 3600 IN A 192.0.2.4",
        "x.y.tld. 3600 IN NS ns1.tld.",
        "*.w.tld. 3600 IN TXT \"wild\"",
        NULL,
};

enum denial { NSEC, NSEC3, NSEC3_OPTOUT };

struct tz {
	ldns_rdf *apex;
	ldns_key *ksk, *zsk; /* owned by keys */
	ldns_key_list *keys;
	ldns_rr_list *rrs; /* the signed zone, owned */
};

static ldns_rr *
rr_new(const char *text)
{
	ldns_rr *rr = NULL;
	assert_int_equal(ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL), LDNS_STATUS_OK);
	return rr;
}

static ldns_key *
key_new(const struct tz *z, ldns_signing_algorithm alg, uint16_t flags, uint32_t inc, uint32_t exp)
{
	ldns_key *k = ldns_key_new_frm_algorithm(alg, alg == LDNS_SIGN_RSASHA256 ? 1024 : 256);
	assert_non_null(k);
	ldns_key_set_pubkey_owner(k, ldns_rdf_clone(z->apex));
	ldns_key_set_flags(k, flags);
	ldns_key_set_inception(k, inc);
	ldns_key_set_expiration(k, exp);
	ldns_rr *pub = ldns_key2rr(k);
	assert_non_null(pub);
	ldns_key_set_keytag(k, ldns_calc_keytag(pub));
	ldns_rr_free(pub);
	return k;
}

/* A list of only k, for ldns_sign_public(); tmp_list_free() leaves k alone. */
static ldns_key_list *
tmp_list(ldns_key *k)
{
	ldns_key_list *l = ldns_key_list_new();
	assert_non_null(l);
	assert_true(ldns_key_list_push_key(l, k));
	return l;
}

static void
tmp_list_free(ldns_key_list *l)
{
	ldns_key_list_set_key_count(l, 0);
	ldns_key_list_free(l);
}

static int
owner_is(const ldns_rr *rr, const char *name)
{
	ldns_rdf *d = ldns_dname_new_frm_str(name);
	int r = ldns_dname_compare(ldns_rr_owner(rr), d) == 0;
	ldns_rdf_deep_free(d);
	return r;
}

static int
covers(const ldns_rr *rr, ldns_rr_type t)
{
	return ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG &&
	       ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr)) == t;
}

/* Remove the type at owner and, with sigs, the RRSIGs covering it; the
 * count removed. */
static size_t
zone_drop(struct tz *z, const char *owner, ldns_rr_type type, int sigs)
{
	ldns_rr_list *keep = ldns_rr_list_new();
	size_t gone = 0;

	for (size_t i = 0; i < ldns_rr_list_rr_count(z->rrs); i++) {
		ldns_rr *rr = ldns_rr_list_rr(z->rrs, i);
		if (owner_is(rr, owner) &&
		    (ldns_rr_get_type(rr) == type || (sigs && covers(rr, type)))) {
			ldns_rr_free(rr);
			gone++;
		} else {
			ldns_rr_list_push_rr(keep, rr); /* keep owns rr now */
		}
	}
	ldns_rr_list_free(z->rrs);
	z->rrs = keep;
	return gone;
}

static ldns_rr *
zone_find(const struct tz *z, const char *owner, ldns_rr_type type, ldns_rr_type covered)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(z->rrs); i++) {
		ldns_rr *rr = ldns_rr_list_rr(z->rrs, i);
		if (owner_is(rr, owner) && ldns_rr_get_type(rr) == type &&
		    (type != LDNS_RR_TYPE_RRSIG || covers(rr, covered)))
			return rr;
	}
	return NULL;
}

/* The owner name of the NSEC3 of name, "<hash>.tld.". */
static char *
nsec3_owner(const struct tz *z, const char *name)
{
	ldns_rdf *n = ldns_dname_new_frm_str(name);
	ldns_rdf *h = ldns_nsec3_hash_name(n, 1, 0, 0, NULL);
	assert_non_null(h);
	assert_int_equal(ldns_dname_cat(h, z->apex), LDNS_STATUS_OK);
	char *s = ldns_rdf2str(h);
	ldns_rdf_deep_free(n);
	ldns_rdf_deep_free(h);
	return s;
}

/* Re-sign every NSEC3 with the ZSK, after the chain was edited. */
static void
nsec3_resign(struct tz *z)
{
	ldns_key_list *l = tmp_list(z->zsk);
	ldns_rr_list *n3 = ldns_rr_list_new(), *keep = ldns_rr_list_new();

	for (size_t i = 0; i < ldns_rr_list_rr_count(z->rrs); i++) {
		ldns_rr *rr = ldns_rr_list_rr(z->rrs, i);
		if (covers(rr, LDNS_RR_TYPE_NSEC3)) {
			ldns_rr_free(rr);
			continue;
		}
		ldns_rr_list_push_rr(keep, rr);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_NSEC3)
			ldns_rr_list_push_rr(n3, rr); /* borrowed; keep owns it */
	}
	ldns_rr_list_free(z->rrs);
	z->rrs = keep;
	for (size_t i = 0; i < ldns_rr_list_rr_count(n3); i++) {
		ldns_rr_list *one = ldns_rr_list_new();
		ldns_rr_list_push_rr(one, ldns_rr_list_rr(n3, i));
		ldns_rr_list *sigs = ldns_sign_public(one, l);
		assert_non_null(sigs);
		assert_true(ldns_rr_list_cat(z->rrs, sigs));
		ldns_rr_list_free(sigs); /* z->rrs owns its records now */
		ldns_rr_list_free(one);
	}
	ldns_rr_list_free(n3);
	tmp_list_free(l);
}

/* RFC 5155 s6 opt-out, which ldns's signer flags but does not do: drop the
 * NSEC3 of each name and link its predecessor past it. */
static void
nsec3_opt_out(struct tz *z, const char *const *names)
{
	for (size_t k = 0; names[k] != NULL; k++) {
		char *own = nsec3_owner(z, names[k]);
		ldns_rr *gone = zone_find(z, own, LDNS_RR_TYPE_NSEC3, 0);
		assert_non_null(gone);
		ldns_rdf *next = ldns_rdf_clone(ldns_nsec3_next_owner(gone));
		ldns_rdf *label = ldns_dname_label(ldns_rr_owner(gone), 0);
		assert_int_equal(zone_drop(z, own, LDNS_RR_TYPE_NSEC3, 1), 2);
		for (size_t i = 0; i < ldns_rr_list_rr_count(z->rrs); i++) {
			ldns_rr *rr = ldns_rr_list_rr(z->rrs, i);
			if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_NSEC3)
				continue;
			/* the next owner field holds the raw hash, the label its base32hex */
			const ldns_rdf *nx = ldns_nsec3_next_owner(rr);
			char *a = ldns_rdf2str(nx), *b = ldns_rdf2str(label);
			assert_non_null(a);
			assert_non_null(b);
			int pred = strncasecmp(a, b, strlen(a)) == 0;
			free(a);
			free(b);
			if (pred) {
				ldns_rdf *old = ldns_rr_set_rdf(rr, ldns_rdf_clone(next), 4);
				ldns_rdf_deep_free(old);
				break;
			}
		}
		ldns_rdf_deep_free(next);
		ldns_rdf_deep_free(label);
		free(own);
	}
	nsec3_resign(z);
}

static void
zone_collect(struct tz *z, ldns_dnssec_zone *dz)
{
	for (ldns_rbnode_t *n = ldns_rbtree_first(dz->names); n != LDNS_RBTREE_NULL;
	     n = ldns_rbtree_next(n)) {
		const ldns_dnssec_name *nm = n->data;
		for (const ldns_dnssec_rrsets *s = nm->rrsets; s != NULL; s = s->next) {
			for (const ldns_dnssec_rrs *r = s->rrs; r != NULL; r = r->next)
				ldns_rr_list_push_rr(z->rrs, ldns_rr_clone(r->rr));
			for (const ldns_dnssec_rrs *r = s->signatures; r != NULL; r = r->next)
				ldns_rr_list_push_rr(z->rrs, ldns_rr_clone(r->rr));
		}
		if (nm->nsec != NULL)
			ldns_rr_list_push_rr(z->rrs, ldns_rr_clone(nm->nsec));
		for (const ldns_dnssec_rrs *r = nm->nsec_signatures; r != NULL; r = r->next)
			ldns_rr_list_push_rr(z->rrs, ldns_rr_clone(r->rr));
	}
}

/* Sign zone_text (plus extra) with a KSK and a ZSK of alg. */
static void
tz_sign(struct tz *z, ldns_signing_algorithm alg, enum denial d, uint32_t inc, uint32_t exp,
        const char *const *extra)
{
	ldns_dnssec_zone *dz = ldns_dnssec_zone_new();
	ldns_rr_list *added = ldns_rr_list_new();

	memset(z, 0, sizeof *z);
	z->apex = ldns_dname_new_frm_str("tld.");
	z->keys = ldns_key_list_new();
	z->rrs = ldns_rr_list_new();
	z->ksk = key_new(z, alg, 257, inc, exp);
	z->zsk = key_new(z, alg, 256, inc, exp);
	ldns_key_list_push_key(z->keys, z->ksk);
	ldns_key_list_push_key(z->keys, z->zsk);
	for (size_t i = 0; zone_text[i] != NULL; i++)
		assert_int_equal(ldns_dnssec_zone_add_rr(dz, rr_new(zone_text[i])), LDNS_STATUS_OK);
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
		assert_int_equal(ldns_dnssec_zone_add_rr(dz, rr_new(extra[i])), LDNS_STATUS_OK);
	assert_int_equal(ldns_dnssec_zone_add_rr(dz, ldns_key2rr(z->ksk)), LDNS_STATUS_OK);
	assert_int_equal(ldns_dnssec_zone_add_rr(dz, ldns_key2rr(z->zsk)), LDNS_STATUS_OK);
	if (d == NSEC)
		assert_int_equal(ldns_dnssec_zone_sign(dz, added, z->keys,
		                                       ldns_dnssec_default_replace_signatures,
		                                       NULL),
		                 LDNS_STATUS_OK);
	else
		assert_int_equal(
		        ldns_dnssec_zone_sign_nsec3_flg(
		                dz, added, z->keys, ldns_dnssec_default_replace_signatures, NULL, 1,
		                d == NSEC3_OPTOUT ? LDNS_NSEC3_VARS_OPTOUT_MASK : 0, 0, 0, NULL, 0),
		        LDNS_STATUS_OK);
	zone_collect(z, dz);
	ldns_dnssec_zone_deep_free(dz); /* also the records in added */
	ldns_rr_list_free(added);
	if (d == NSEC3_OPTOUT) {
		static const char *const insecure[] = {"insec.tld.", "x.y.tld.", "y.tld.", NULL};
		nsec3_opt_out(z, insecure);
	}
}

static void
tz_clear(struct tz *z)
{
	ldns_rr_list_deep_free(z->rrs);
	ldns_key_list_free(z->keys);
	ldns_rdf_deep_free(z->apex);
}

static struct zoneset *
zs_load(const ldns_rr_list *rrs)
{
	struct zoneset *zs = NULL;
	ldns_rdf *apex = ldns_dname_new_frm_str("tld.");

	assert_int_equal(zoneset_new(apex, 64u << 20, &zs), ZD_OK);
	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++)
		assert_int_equal(zoneset_rr_add(zs, ldns_rr_list_rr(rrs, i)), ZD_OK);
	assert_int_equal(zoneset_finish(zs), ZD_OK);
	ldns_rdf_deep_free(apex);
	return zs;
}

static struct dnssec_check_opts
opts(void)
{
	return (struct dnssec_check_opts){.now = NOW,
	                                  .warn_seconds = 3600,
	                                  .parent_ds = NULL,
	                                  .max_problems = 100,
	                                  .threads = 2};
}

static void
check(const ldns_rr_list *rrs, const struct dnssec_check_opts *o, struct dnssec_report *r)
{
	struct zoneset *zs = zs_load(rrs);
	assert_int_equal(dnssec_zone_check(zs, o, r), ZD_OK);
	zoneset_free(zs);
}

static void
report_print(const struct dnssec_report *r)
{
	for (size_t i = 0; i < r->n_problems; i++)
		print_message("  %s %s %u: %s\n",
		              r->problems[i].severity == DNSSEC_CRITICAL ? "C" : "W",
		              r->problems[i].owner, r->problems[i].type, r->problems[i].what);
}

/* A described problem at owner of type whose text contains what. */
static int
has_problem(const struct dnssec_report *r, const char *owner, uint16_t type, const char *what)
{
	for (size_t i = 0; i < r->n_problems; i++)
		if (strcmp(r->problems[i].owner, owner) == 0 && r->problems[i].type == type &&
		    strstr(r->problems[i].what, what) != NULL)
			return 1;
	report_print(r);
	return 0;
}

static void
assert_clean(const struct dnssec_report *r)
{
	if (r->problems_total != 0)
		report_print(r);
	assert_int_equal(r->problems_total, 0);
	assert_int_equal(r->n_problems, 0);
	assert_int_equal(r->severity, DNSSEC_OK);
	assert_int_equal(r->is_signed, 1);
	assert_true(r->rrsigs > 0);
	assert_int_equal(r->rrsigs_valid, r->rrsigs);
	assert_int_equal(r->bogus + r->expired + r->expiring + r->unsigned_rrsets, 0);
	assert_int_equal(r->chain_errors + r->ds_errors + r->misplaced, 0);
	assert_int_equal(r->min_remaining, (int64_t)(EXPIRATION - NOW));
}

/* --- Broken input first --------------------------------------------- */

static ldns_rr *
raw_rr(const char *owner, ldns_rr_type type, const uint8_t *rd, size_t len)
{
	ldns_rr *rr = ldns_rr_new();
	ldns_rr_set_owner(rr, ldns_dname_new_frm_str(owner));
	ldns_rr_set_type(rr, type);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, 3600);
	if (len > 0)
		ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, len, rd));
	return rr;
}

static void
garbage_rrsig_and_key_rdata_does_not_crash(void **state)
{
	struct tz z;
	struct dnssec_report r;
	struct dnssec_check_opts o = opts();
	uint8_t hdr[18 + 5 + 64];
	/* RRSIG A 13 2 3600 exp inc tag tld. <64 octets> */
	static const uint8_t head[18] = {0,    1,    13,   2,    0,    0,    14,   16,   0x71,
	                                 0x3f, 0xb3, 0x00, 0x65, 0x53, 0xf1, 0x00, 0x12, 0x34};
	uint8_t junk[300];
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3, INCEPTION, EXPIRATION, NULL);
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	memcpy(hdr, head, sizeof head);
	memcpy(hdr + 18, "\x03tld\x00", 5);
	memset(hdr + 23, 0x5a, 64);
	size_t bad = 0;
	/* too short for the fixed part, a signer that is no name, no signature */
	ldns_rr_list_push_rr(z.rrs, raw_rr("ns1.tld.", LDNS_RR_TYPE_RRSIG, junk, 1)), bad++;
	ldns_rr_list_push_rr(z.rrs, raw_rr("ns1.tld.", LDNS_RR_TYPE_RRSIG, junk, 17)), bad++;
	ldns_rr_list_push_rr(z.rrs, raw_rr("ns1.tld.", LDNS_RR_TYPE_RRSIG, junk, 300)), bad++;
	ldns_rr_list_push_rr(z.rrs, raw_rr("ns1.tld.", LDNS_RR_TYPE_RRSIG, hdr, 23)), bad++;
	/* well formed, but a wrong signature, an unknown key tag, a short
	 * ECDSA signature, too many labels, a type that is not there */
	ldns_rr_list_push_rr(z.rrs, raw_rr("ns1.tld.", LDNS_RR_TYPE_RRSIG, hdr, sizeof hdr)), bad++;
	hdr[16] = ldns_key_keytag(z.zsk) >> 8;
	hdr[17] = ldns_key_keytag(z.zsk) & 0xff;
	ldns_rr_list_push_rr(z.rrs, raw_rr("ns1.tld.", LDNS_RR_TYPE_RRSIG, hdr, sizeof hdr)), bad++;
	ldns_rr_list_push_rr(z.rrs, raw_rr("ns1.tld.", LDNS_RR_TYPE_RRSIG, hdr, sizeof hdr - 7)),
	        bad++;
	hdr[3] = 9;
	ldns_rr_list_push_rr(z.rrs, raw_rr("ns1.tld.", LDNS_RR_TYPE_RRSIG, hdr, sizeof hdr)), bad++;
	hdr[3] = 2;
	hdr[1] = LDNS_RR_TYPE_MX;
	ldns_rr_list_push_rr(z.rrs, raw_rr("ns1.tld.", LDNS_RR_TYPE_RRSIG, hdr, sizeof hdr)), bad++;
	/* a key that does not parse, an NSEC3 that does not either */
	ldns_rr_list_push_rr(z.rrs, raw_rr("tld.", LDNS_RR_TYPE_DNSKEY, junk, 3));
	ldns_rr_list_push_rr(z.rrs, raw_rr("tld.", LDNS_RR_TYPE_DNSKEY,
	                                   (const uint8_t *)"\x01\x01\x03\x0d\x01\x02", 6));
	ldns_rr_list_push_rr(z.rrs, raw_rr("tld.", LDNS_RR_TYPE_DNSKEY,
	                                   (const uint8_t *)"\x01\x01\x03\x08\x00\x00", 6));
	ldns_rr_list_push_rr(z.rrs, raw_rr("vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv.tld.",
	                                   LDNS_RR_TYPE_NSEC3, junk, 4));

	o.max_problems = 1000;
	for (unsigned threads = 1; threads <= 3; threads++) {
		o.threads = threads;
		check(z.rrs, &o, &r);
		assert_int_equal(r.severity, DNSSEC_CRITICAL);
		/* and the DNSKEY RRset's own RRSIG, now that junk keys joined it */
		assert_int_equal(r.bogus, bad + 1);
		assert_int_equal(r.rrsigs, r.rrsigs_valid + bad + 1);
		assert_true(has_problem(&r, "tld.", LDNS_RR_TYPE_DNSKEY, "malformed"));
		assert_true(has_problem(&r, "ns1.tld.", LDNS_RR_TYPE_A, "has no zone DNSKEY"));
		assert_true(has_problem(&r, "ns1.tld.", LDNS_RR_TYPE_A, "wrong length"));
		assert_true(has_problem(&r, "ns1.tld.", LDNS_RR_TYPE_A, "labels field"));
		assert_true(has_problem(&r, "ns1.tld.", 0, "RRSIG rdata is malformed"));
		assert_true(r.chain_errors >= 1);
		assert_true(has_problem(&r, "ns1.tld.", LDNS_RR_TYPE_MX, "no such RRset"));
		assert_true(has_problem(&r, "ns1.tld.", LDNS_RR_TYPE_A, "does not verify"));
		assert_true(has_problem(&r, "tld.", LDNS_RR_TYPE_DNSKEY, "does not parse"));
		dnssec_report_clear(&r);
	}
	tz_clear(&z);
}

static void
unsigned_zone_is_ok_and_unsigned(void **state)
{
	ldns_rr_list *l = ldns_rr_list_new();
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	for (size_t i = 0; zone_text[i] != NULL; i++)
		ldns_rr_list_push_rr(l, rr_new(zone_text[i]));
	check(l, &o, &r);
	assert_int_equal(r.is_signed, 0);
	assert_int_equal(r.severity, DNSSEC_OK);
	assert_int_equal(r.problems_total, 0);
	assert_int_equal(r.rrsigs, 0);
	assert_int_equal(r.min_remaining, INT64_MAX);
	dnssec_report_clear(&r);

	/* nothing at all */
	ldns_rr_list *none = ldns_rr_list_new();
	check(none, &o, &r);
	assert_int_equal(r.is_signed, 0);
	assert_int_equal(r.problems_total, 0);
	dnssec_report_clear(&r);
	ldns_rr_list_free(none);

	/* the parent expects keys */
	ldns_rr_list *ds = ldns_rr_list_new();
	ldns_rr_list_push_rr(ds, rr_new("tld. 86400 IN DS 1 13 2 "
	                                "3490A6806D47F17A34C29E2CE80E8A999FFBE4BE3490A6806D47F17A34"
	                                "C29E2C"));
	o.parent_ds = ds;
	check(l, &o, &r);
	assert_int_equal(r.is_signed, 0);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.ds_errors, 1);
	assert_true(has_problem(&r, "tld.", LDNS_RR_TYPE_DS, "no DNSKEY"));
	dnssec_report_clear(&r);
	ldns_rr_list_deep_free(ds);
	ldns_rr_list_deep_free(l);
}

static void
unsigned_zone_with_leftover_rrsig_is_critical(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3, INCEPTION, EXPIRATION, NULL);
	zone_drop(&z, "tld.", LDNS_RR_TYPE_DNSKEY, 1);
	check(z.rrs, &o, &r);
	assert_int_equal(r.is_signed, 0);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_true(r.bogus > 0);
	assert_int_equal(r.bogus, r.rrsigs);
	assert_true(has_problem(&r, "tld.", LDNS_RR_TYPE_SOA, "no zone DNSKEY"));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
flipped_signature_byte_is_bogus_at_that_rrset(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r, r1;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, EXPIRATION, NULL);
	ldns_rr *sig = zone_find(&z, "a.b.tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_A);
	assert_non_null(sig);
	ldns_rdf_data(ldns_rr_rdf(sig, 8))[10] ^= 0x01;
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.bogus, 1);
	assert_int_equal(r.expired, 0);
	assert_int_equal(r.rrsigs_valid, r.rrsigs - 1);
	assert_int_equal(r.unsigned_rrsets, 1); /* its only signature */
	assert_int_equal(r.chain_errors, 0);
	assert_true(has_problem(&r, "a.b.tld.", LDNS_RR_TYPE_A, "does not verify"));
	assert_true(has_problem(&r, "a.b.tld.", LDNS_RR_TYPE_A, "no valid RRSIG of algorithm 13"));

	/* one thread finds the same, in the same order */
	o.threads = 1;
	check(z.rrs, &o, &r1);
	assert_int_equal(r1.n_problems, r.n_problems);
	for (size_t i = 0; i < r.n_problems; i++)
		assert_string_equal(r1.problems[i].what, r.problems[i].what);
	dnssec_report_clear(&r1);
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
expired_signatures_are_critical(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3, INCEPTION, NOW - 86400, NULL);
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_true(r.rrsigs > 0);
	assert_int_equal(r.expired, r.rrsigs);
	assert_int_equal(r.bogus, 0);
	assert_int_equal(r.rrsigs_valid, 0);
	assert_true(r.unsigned_rrsets > 0);
	assert_int_equal(r.min_remaining, -86400);
	assert_true(has_problem(&r, "tld.", LDNS_RR_TYPE_SOA, "expired 2027-01-14T08:00:00Z"));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
signatures_not_yet_valid_count_as_expired(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC, NOW + 3600, EXPIRATION, NULL);
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.expired, r.rrsigs);
	assert_true(has_problem(&r, "tld.", LDNS_RR_TYPE_SOA, "not valid before"));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
expiring_signatures_are_a_warning_only(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, NOW + 600, NULL);
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_WARNING);
	assert_int_equal(r.expiring, r.rrsigs);
	assert_int_equal(r.rrsigs_valid, r.rrsigs);
	assert_int_equal(r.bogus + r.expired + r.unsigned_rrsets + r.chain_errors, 0);
	assert_int_equal(r.min_remaining, 600);
	assert_true(has_problem(&r, "a.b.tld.", LDNS_RR_TYPE_A, "(in 600 s)"));
	dnssec_report_clear(&r);

	o.warn_seconds = 600; /* exactly 600 s left: not sooner */
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_OK);
	assert_int_equal(r.expiring, 0);
	dnssec_report_clear(&r);
	tz_clear(&z);
}

/* --- Correct zones --------------------------------------------------- */

static void
nsec3_opt_out_zone_is_ok(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, EXPIRATION, NULL);
	/* the insecure delegations really are opted out */
	char *own = nsec3_owner(&z, "insec.tld.");
	assert_null(zone_find(&z, own, LDNS_RR_TYPE_NSEC3, 0));
	free(own);
	for (unsigned t = 1; t <= 4; t++) {
		o.threads = t;
		check(z.rrs, &o, &r);
		assert_clean(&r);
		dnssec_report_clear(&r);
	}
	tz_clear(&z);
}

static void
nsec3_zone_without_opt_out_is_ok(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3, INCEPTION, EXPIRATION, NULL);
	check(z.rrs, &o, &r);
	assert_clean(&r);
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
nsec_zone_is_ok(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC, INCEPTION, EXPIRATION, NULL);
	assert_non_null(zone_find(&z, "insec.tld.", LDNS_RR_TYPE_NSEC, 0));
	check(z.rrs, &o, &r);
	assert_clean(&r);
	dnssec_report_clear(&r);
	tz_clear(&z);
}

/* A zone signed with alg is clean; one bit flipped in the signature of
 * (owner, covered) makes exactly that RRSIG bogus. */
static void
clean_then_one_flip_is_bogus(ldns_signing_algorithm alg, enum denial denial, const char *owner,
                             ldns_rr_type covered, size_t byte, uint8_t bit, const char *what)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;

	tz_sign(&z, alg, denial, INCEPTION, EXPIRATION, NULL);
	check(z.rrs, &o, &r);
	assert_clean(&r);
	dnssec_report_clear(&r);

	ldns_rr *sig = zone_find(&z, owner, LDNS_RR_TYPE_RRSIG, covered);
	assert_non_null(sig);
	ldns_rdf_data(ldns_rr_rdf(sig, 8))[byte] ^= bit;
	check(z.rrs, &o, &r);
	assert_int_equal(r.bogus, 1);
	assert_true(has_problem(&r, owner, covered, what));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
rsasha256_zone_is_ok_and_a_flip_is_bogus(void **state)
{
	(void)state;
	clean_then_one_flip_is_bogus(LDNS_SIGN_RSASHA256, NSEC3_OPTOUT, "sec.tld.", LDNS_RR_TYPE_DS,
	                             40, 0x80, "RRSIG 8/");
}

static void
ed25519_zone_is_ok_and_a_flip_is_bogus(void **state)
{
	(void)state;
	clean_then_one_flip_is_bogus(LDNS_SIGN_ED25519, NSEC, "ns1.tld.", LDNS_RR_TYPE_AAAA, 3,
	                             0x04, "RRSIG 15/");
}

/* --- Broken chains ----------------------------------------------------- */

static void
removed_nsec3_is_a_chain_error_at_the_name(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, EXPIRATION, NULL);
	char *own = nsec3_owner(&z, "a.b.tld.");
	assert_int_equal(zone_drop(&z, own, LDNS_RR_TYPE_NSEC3, 1), 2);
	free(own);
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_true(r.chain_errors >= 2); /* the name, and the ring around it */
	assert_int_equal(r.bogus + r.unsigned_rrsets, 0);
	assert_true(has_problem(&r, "a.b.tld.", LDNS_RR_TYPE_NSEC3, "no NSEC3 for this name"));
	dnssec_report_clear(&r);

	/* the ENT above secure data needs one as well */
	tz_clear(&z);
	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, EXPIRATION, NULL);
	own = nsec3_owner(&z, "b.tld.");
	assert_int_equal(zone_drop(&z, own, LDNS_RR_TYPE_NSEC3, 1), 2);
	free(own);
	check(z.rrs, &o, &r);
	assert_true(has_problem(&r, "b.tld.", LDNS_RR_TYPE_NSEC3, "no NSEC3 for this name"));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
wrong_next_hash_is_a_chain_error(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, EXPIRATION, NULL);
	char *own = nsec3_owner(&z, "ns1.tld.");
	ldns_rr *n3 = zone_find(&z, own, LDNS_RR_TYPE_NSEC3, 0);
	assert_non_null(n3);
	ldns_rdf_data(ldns_rr_rdf(n3, 4))[5] ^= 0x01;
	nsec3_resign(&z);
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.chain_errors, 1);
	assert_int_equal(r.bogus, 0);
	assert_true(has_problem(&r, own, LDNS_RR_TYPE_NSEC3, "next hashed owner"));
	free(own);
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
insecure_delegation_without_nsec3_needs_opt_out(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	static const char *const insec[] = {"insec.tld.", NULL};
	(void)state;

	/* ldns's chain without the opt-out flag, then insec.tld. opted out */
	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3, INCEPTION, EXPIRATION, NULL);
	nsec3_opt_out(&z, insec);
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.chain_errors, 1);
	assert_true(has_problem(&r, "insec.tld.", LDNS_RR_TYPE_NSEC3, "no opt-out flag"));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
orphan_nsec3_and_wrong_parameters_are_chain_errors(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, EXPIRATION, NULL);
	/* the NSEC3 of a name that is not in the zone */
	char *own = nsec3_owner(&z, "nothere.tld.");
	char text[256];
	snprintf(text, sizeof text, "%s 300 IN NSEC3 1 1 0 - 00000000000000000000000000000000 A",
	         own);
	ldns_rr_list_push_rr(z.rrs, rr_new(text));
	free(own);
	/* and one with a salt at a real name */
	own = nsec3_owner(&z, "ns1.tld.");
	ldns_rr *n3 = zone_find(&z, own, LDNS_RR_TYPE_NSEC3, 0);
	ldns_rdf *old = ldns_rr_set_rdf(
	        n3, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_NSEC3_SALT, 2, "\x01\xab"), 3);
	ldns_rdf_deep_free(old);
	nsec3_resign(&z);
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.bogus + r.unsigned_rrsets, 0);
	assert_true(has_problem(&r, own, LDNS_RR_TYPE_NSEC3, "differ from NSEC3PARAM"));
	int orphan = 0;
	for (size_t i = 0; i < r.n_problems; i++)
		orphan += strstr(r.problems[i].what, "hash of no name") != NULL;
	assert_int_equal(orphan, 1);
	free(own);
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
wrong_type_bitmap_and_unsigned_rrset_are_found(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, EXPIRATION, NULL);
	/* added after signing: neither signed nor in the bitmap */
	ldns_rr_list_push_rr(z.rrs, rr_new("a.b.tld. 3600 IN TXT \"late\""));
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.unsigned_rrsets, 1);
	assert_int_equal(r.chain_errors, 1);
	assert_true(has_problem(&r, "a.b.tld.", LDNS_RR_TYPE_TXT, "no RRSIG of algorithm 13"));
	assert_true(has_problem(&r, "a.b.tld.", LDNS_RR_TYPE_NSEC3,
	                        "{A RRSIG}, the name has "
	                        "{A TXT RRSIG}"));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
removed_rrsig_is_an_unsigned_rrset(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC, INCEPTION, EXPIRATION, NULL);
	ldns_rr *sig = zone_find(&z, "ns1.tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_A);
	assert_non_null(sig);
	size_t before = ldns_rr_list_rr_count(z.rrs);
	/* drop just that RRSIG */
	ldns_rr_list *keep = ldns_rr_list_new();
	for (size_t i = 0; i < before; i++) {
		ldns_rr *rr = ldns_rr_list_rr(z.rrs, i);
		if (rr == sig)
			ldns_rr_free(rr);
		else
			ldns_rr_list_push_rr(keep, rr);
	}
	ldns_rr_list_free(z.rrs);
	z.rrs = keep;
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.unsigned_rrsets, 1);
	assert_int_equal(r.bogus + r.expired + r.chain_errors, 0);
	assert_true(has_problem(&r, "ns1.tld.", LDNS_RR_TYPE_A, "no RRSIG of algorithm 13"));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

/* Sign the type at owner again with key alone, after it was edited. */
static void
rrset_resign(struct tz *z, const char *owner, ldns_rr_type type, ldns_key *key)
{
	ldns_key_list *l = tmp_list(key);
	ldns_rr_list *set = ldns_rr_list_new();

	ldns_key_set_use(key, true); /* ldns's zone signer may have left it off */

	for (size_t i = 0; i < ldns_rr_list_rr_count(z->rrs); i++) {
		ldns_rr *rr = ldns_rr_list_rr(z->rrs, i);
		if (owner_is(rr, owner) && ldns_rr_get_type(rr) == type)
			ldns_rr_list_push_rr(set, ldns_rr_clone(rr));
	}
	assert_true(ldns_rr_list_rr_count(set) > 0);
	zone_drop(z, owner, type, 1);
	ldns_rr_list *sigs = ldns_sign_public(set, l);
	assert_non_null(sigs);
	assert_int_equal(ldns_rr_list_rr_count(sigs), 1);
	ldns_rr_list_cat(z->rrs, set);
	ldns_rr_list_cat(z->rrs, sigs);
	ldns_rr_list_free(set); /* z->rrs owns the records now */
	ldns_rr_list_free(sigs);
	tmp_list_free(l);
}

static void
broken_nsec_chain_is_found(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC, INCEPTION, EXPIRATION, NULL);
	assert_int_equal(zone_drop(&z, "ns1.tld.", LDNS_RR_TYPE_NSEC, 1), 2);
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.chain_errors, 1);
	assert_true(has_problem(&r, "ns1.tld.", LDNS_RR_TYPE_NSEC, "no NSEC at this name"));
	dnssec_report_clear(&r);
	tz_clear(&z);

	/* insec.tld.'s NSEC skips ns1.tld. (glue below insec.tld. is no chain name) */
	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC, INCEPTION, EXPIRATION, NULL);
	ldns_rr *nsec = zone_find(&z, "insec.tld.", LDNS_RR_TYPE_NSEC, 0);
	assert_non_null(nsec);
	ldns_rdf_deep_free(ldns_rr_set_rdf(nsec, ldns_dname_new_frm_str("sec.tld."), 0));
	rrset_resign(&z, "insec.tld.", LDNS_RR_TYPE_NSEC, z.zsk);
	check(z.rrs, &o, &r);
	assert_int_equal(r.chain_errors, 1);
	assert_int_equal(r.bogus + r.unsigned_rrsets, 0);
	assert_true(has_problem(&r, "insec.tld.", LDNS_RR_TYPE_NSEC,
	                        "next name sec.tld., but the next name is ns1.tld."));
	dnssec_report_clear(&r);
	tz_clear(&z);

	/* the last one must point back to the apex */
	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC, INCEPTION, EXPIRATION, NULL);
	nsec = zone_find(&z, "x.y.tld.", LDNS_RR_TYPE_NSEC, 0);
	assert_non_null(nsec);
	ldns_rdf_deep_free(ldns_rr_set_rdf(nsec, ldns_dname_new_frm_str("a.b.tld."), 0));
	rrset_resign(&z, "x.y.tld.", LDNS_RR_TYPE_NSEC, z.zsk);
	check(z.rrs, &o, &r);
	assert_int_equal(r.chain_errors, 1);
	assert_true(has_problem(&r, "x.y.tld.", LDNS_RR_TYPE_NSEC, "not the apex"));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
occluded_data_at_a_delegation_is_neither_signed_nor_listed(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	/* A and TXT at a secure delegation point and AAAA glue below it: the
	 * parent side has only NS, DS and RRSIG there (RFC 5155 s7.1) */
	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3, INCEPTION, EXPIRATION, NULL);
	ldns_rr_list_push_rr(z.rrs, rr_new("sec.tld. 3600 IN A 192.0.2.9"));
	ldns_rr_list_push_rr(z.rrs, rr_new("sec.tld. 3600 IN TXT \"child data\""));
	ldns_rr_list_push_rr(z.rrs, rr_new("deep.ns.sec.tld. 3600 IN AAAA 2001:db8::9"));
	check(z.rrs, &o, &r);
	assert_clean(&r);
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
rrsig_by_a_key_without_the_zone_flag_is_bogus(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, EXPIRATION, NULL);
	/* RFC 4035 s5.3.1: the DNSKEY must have the zone flag.  ldns signs
	 * only with zone keys, so the key signs as one, with the tag of its
	 * published DNSKEY, whose flags are 0. */
	ldns_key *nz = key_new(&z, LDNS_SIGN_ECDSAP256SHA256, 0, INCEPTION, EXPIRATION);
	ldns_rr_list_push_rr(z.rrs, ldns_key2rr(nz));
	ldns_key_set_flags(nz, 256);
	rrset_resign(&z, "tld.", LDNS_RR_TYPE_DNSKEY, z.ksk);
	rrset_resign(&z, "ns1.tld.", LDNS_RR_TYPE_A, nz);
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.bogus, 1);
	assert_int_equal(r.unsigned_rrsets, 1);
	assert_true(has_problem(&r, "ns1.tld.", LDNS_RR_TYPE_A, "has no zone DNSKEY"));
	dnssec_report_clear(&r);
	ldns_key_deep_free(nz);
	tz_clear(&z);
}

static void
rrsig_labels_below_the_owner_verify_over_the_wildcard(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	ldns_rdf *x = ldns_dname_new_frm_str("x.w.tld.");
	(void)state;

	/* RFC 4035 s5.3.2: *.w.tld.'s TXT and RRSIG as expanded at x.w.tld. */
	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC, INCEPTION, EXPIRATION, NULL);
	ldns_rr *txt = ldns_rr_clone(zone_find(&z, "*.w.tld.", LDNS_RR_TYPE_TXT, 0));
	ldns_rr *sig =
	        ldns_rr_clone(zone_find(&z, "*.w.tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_TXT));
	ldns_rdf_deep_free(ldns_rr_owner(txt));
	ldns_rdf_deep_free(ldns_rr_owner(sig));
	ldns_rr_set_owner(txt, ldns_rdf_clone(x));
	ldns_rr_set_owner(sig, ldns_rdf_clone(x));
	ldns_rr_list_push_rr(z.rrs, txt);
	ldns_rr_list_push_rr(z.rrs, sig);
	check(z.rrs, &o, &r);
	assert_int_equal(r.bogus, 0);
	assert_int_equal(r.rrsigs_valid, r.rrsigs);
	assert_int_equal(r.unsigned_rrsets, 0);
	assert_true(r.chain_errors > 0); /* x.w.tld. is not in the NSEC chain */
	dnssec_report_clear(&r);

	/* the same signature claiming all three labels does not verify */
	sig = zone_find(&z, "x.w.tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_TXT);
	ldns_rdf_deep_free(ldns_rr_set_rdf(sig, ldns_native2rdf_int8(LDNS_RDF_TYPE_INT8, 3), 2));
	check(z.rrs, &o, &r);
	assert_int_equal(r.bogus, 1);
	assert_true(has_problem(&r, "x.w.tld.", LDNS_RR_TYPE_TXT, "does not verify"));
	dnssec_report_clear(&r);
	ldns_rdf_deep_free(x);
	tz_clear(&z);
}

static void
signed_zone_without_denial_records_is_critical(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	ldns_rr_list *keep = ldns_rr_list_new();
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC, INCEPTION, EXPIRATION, NULL);
	for (size_t i = 0; i < ldns_rr_list_rr_count(z.rrs); i++) {
		ldns_rr *rr = ldns_rr_list_rr(z.rrs, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_NSEC || covers(rr, LDNS_RR_TYPE_NSEC))
			ldns_rr_free(rr);
		else
			ldns_rr_list_push_rr(keep, rr);
	}
	ldns_rr_list_free(z.rrs);
	z.rrs = keep;
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.chain_errors, 1);
	assert_int_equal(r.bogus + r.unsigned_rrsets, 0);
	assert_true(has_problem(&r, "tld.", LDNS_RR_TYPE_NSEC, "without NSEC or NSEC3"));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
large_rrset_verifies(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	char text[128];
	(void)state;

	/* 2500 addresses at ns1.tld.: 57 KB of signed data.  Not more: past
	 * 64 KiB ldns 1.8.3's signer writes an rdlength at its offset modulo
	 * 65536 (and its verifier agrees), so its signature would not verify
	 * as RFC 4034 s3.1.8.1 says, which is how this checker verifies. */
	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, EXPIRATION, NULL);
	for (unsigned i = 0; i < 2500; i++) {
		snprintf(text, sizeof text, "ns1.tld. 3600 IN A 10.%u.%u.%u", i >> 16,
		         (i >> 8) & 255, i & 255);
		ldns_rr_list_push_rr(z.rrs, rr_new(text));
	}
	rrset_resign(&z, "ns1.tld.", LDNS_RR_TYPE_A, z.zsk);
	check(z.rrs, &o, &r);
	assert_clean(&r);
	dnssec_report_clear(&r);

	ldns_rr *a = zone_find(&z, "ns1.tld.", LDNS_RR_TYPE_A, 0);
	ldns_rdf_data(ldns_rr_rdf(a, 0))[3] ^= 0x80; /* 10.0.0.0 -> 10.0.0.128: a duplicate */
	ldns_rdf_data(ldns_rr_rdf(a, 0))[0] = 11;    /* 11.0.0.128: a new address */
	check(z.rrs, &o, &r);
	assert_int_equal(r.bogus, 1);
	assert_true(has_problem(&r, "ns1.tld.", LDNS_RR_TYPE_A, "does not verify"));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

static void
signed_glue_is_a_misplaced_warning(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, EXPIRATION, NULL);
	ldns_key_list *l = tmp_list(z.zsk);
	const char *const glue[] = {"ns.sec.tld.", "insec.tld."};
	const ldns_rr_type types[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_NS};
	for (size_t g = 0; g < 2; g++) {
		ldns_rr_list *set = ldns_rr_list_new();
		for (size_t i = 0; i < ldns_rr_list_rr_count(z.rrs); i++) {
			ldns_rr *rr = ldns_rr_list_rr(z.rrs, i);
			if (owner_is(rr, glue[g]) && ldns_rr_get_type(rr) == types[g])
				ldns_rr_list_push_rr(set, rr);
		}
		ldns_rr_list *sigs = ldns_sign_public(set, l);
		assert_int_equal(ldns_rr_list_rr_count(sigs), 1);
		ldns_rr_list_cat(z.rrs, sigs);
		ldns_rr_list_free(sigs);
		ldns_rr_list_free(set);
	}
	tmp_list_free(l);
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_WARNING);
	assert_int_equal(r.misplaced, 2);
	assert_int_equal(r.bogus + r.chain_errors + r.unsigned_rrsets, 0);
	assert_true(has_problem(&r, "ns.sec.tld.", LDNS_RR_TYPE_A, "must not be signed"));
	assert_true(has_problem(&r, "insec.tld.", LDNS_RR_TYPE_NS, "must not be signed"));
	dnssec_report_clear(&r);
	tz_clear(&z);
}

/* --- Parent DS ---------------------------------------------------------- */

static ldns_rr_list *
ds_of(ldns_key *k, ldns_hash h)
{
	ldns_rr *pub = ldns_key2rr(k);
	ldns_rr_list *l = ldns_rr_list_new();
	ldns_rr_list_push_rr(l, ldns_key_rr2ds(pub, h));
	ldns_rr_free(pub);
	return l;
}

static void
parent_ds_must_match_a_signing_ksk(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, EXPIRATION, NULL);
	ldns_rr_list *ds = ds_of(z.ksk, LDNS_SHA256);
	ldns_rr_list *ds1 = ds_of(z.ksk, LDNS_SHA1);
	ldns_rr_list_cat(ds, ds1);
	ldns_rr_list_free(ds1);
	o.parent_ds = ds;
	check(z.rrs, &o, &r);
	assert_clean(&r);
	dnssec_report_clear(&r);
	ldns_rr_list_deep_free(ds);

	/* another key's DS */
	ldns_key *other = key_new(&z, LDNS_SIGN_ECDSAP256SHA256, 257, INCEPTION, EXPIRATION);
	ds = ds_of(other, LDNS_SHA256);
	o.parent_ds = ds;
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.ds_errors, 1);
	assert_true(has_problem(&r, "tld.", LDNS_RR_TYPE_DS, "matches no DNSKEY"));
	dnssec_report_clear(&r);
	ldns_rr_list_deep_free(ds);
	ldns_key_deep_free(other);

	/* the ZSK's: in the zone, but it does not sign the DNSKEY RRset */
	ds = ds_of(z.zsk, LDNS_SHA256);
	o.parent_ds = ds;
	check(z.rrs, &o, &r);
	assert_int_equal(r.ds_errors, 1);
	assert_true(has_problem(&r, "tld.", LDNS_RR_TYPE_DS, "does not sign the DNSKEY RRset"));
	dnssec_report_clear(&r);

	/* the KSK's, with the DNSKEY RRset's signature broken */
	ldns_rr_list_deep_free(ds);
	ds = ds_of(z.ksk, LDNS_SHA256);
	o.parent_ds = ds;
	ldns_rr *sig = zone_find(&z, "tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_DNSKEY);
	ldns_rdf_data(ldns_rr_rdf(sig, 8))[0] ^= 0x01;
	check(z.rrs, &o, &r);
	assert_int_equal(r.ds_errors, 1);
	assert_int_equal(r.bogus, 1);
	dnssec_report_clear(&r);
	ldns_rr_list_deep_free(ds);
	tz_clear(&z);
}

/* --- The report ------------------------------------------------------- */

static void
max_problems_caps_the_list_not_the_count(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, NOW - 10, NULL);
	o.max_problems = 3;
	check(z.rrs, &o, &r);
	assert_int_equal(r.n_problems, 3);
	assert_true(r.problems_total > 10);
	assert_int_equal(r.problems_total, r.expired + r.unsigned_rrsets);
	for (size_t i = 0; i < r.n_problems; i++) {
		assert_int_equal(r.problems[i].severity, DNSSEC_CRITICAL);
		assert_non_null(r.problems[i].owner);
		assert_non_null(r.problems[i].what);
	}
	dnssec_report_clear(&r);
	assert_null(r.problems);
	assert_int_equal(r.n_problems, 0);

	o.max_problems = 0;
	check(z.rrs, &o, &r);
	assert_int_equal(r.n_problems, 0);
	assert_null(r.problems);
	assert_true(r.problems_total > 10);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	dnssec_report_clear(&r);
	dnssec_report_clear(&r); /* twice is fine */
	tz_clear(&z);
}

static void
critical_problems_come_before_warnings(void **state)
{
	struct tz z;
	struct dnssec_check_opts o = opts();
	struct dnssec_report r;
	(void)state;

	/* every signature expires soon (warnings), one is broken (critical) */
	tz_sign(&z, LDNS_SIGN_ECDSAP256SHA256, NSEC3_OPTOUT, INCEPTION, NOW + 60, NULL);
	ldns_rr *sig = zone_find(&z, "sec.tld.", LDNS_RR_TYPE_RRSIG, LDNS_RR_TYPE_DS);
	assert_non_null(sig);
	ldns_rdf_data(ldns_rr_rdf(sig, 8))[1] ^= 0x01;
	o.max_problems = 2;
	check(z.rrs, &o, &r);
	assert_int_equal(r.severity, DNSSEC_CRITICAL);
	assert_int_equal(r.n_problems, 2);
	assert_int_equal(r.problems[0].severity, DNSSEC_CRITICAL);
	assert_string_equal(r.problems[0].owner, "sec.tld.");
	assert_true(r.expiring > 2);
	dnssec_report_clear(&r);
	tz_clear(&z);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(garbage_rrsig_and_key_rdata_does_not_crash),
	        cmocka_unit_test(unsigned_zone_is_ok_and_unsigned),
	        cmocka_unit_test(unsigned_zone_with_leftover_rrsig_is_critical),
	        cmocka_unit_test(flipped_signature_byte_is_bogus_at_that_rrset),
	        cmocka_unit_test(expired_signatures_are_critical),
	        cmocka_unit_test(signatures_not_yet_valid_count_as_expired),
	        cmocka_unit_test(expiring_signatures_are_a_warning_only),
	        cmocka_unit_test(nsec3_opt_out_zone_is_ok),
	        cmocka_unit_test(nsec3_zone_without_opt_out_is_ok),
	        cmocka_unit_test(nsec_zone_is_ok),
	        cmocka_unit_test(rsasha256_zone_is_ok_and_a_flip_is_bogus),
	        cmocka_unit_test(ed25519_zone_is_ok_and_a_flip_is_bogus),
	        cmocka_unit_test(removed_nsec3_is_a_chain_error_at_the_name),
	        cmocka_unit_test(wrong_next_hash_is_a_chain_error),
	        cmocka_unit_test(insecure_delegation_without_nsec3_needs_opt_out),
	        cmocka_unit_test(orphan_nsec3_and_wrong_parameters_are_chain_errors),
	        cmocka_unit_test(wrong_type_bitmap_and_unsigned_rrset_are_found),
	        cmocka_unit_test(removed_rrsig_is_an_unsigned_rrset),
	        cmocka_unit_test(broken_nsec_chain_is_found),
	        cmocka_unit_test(occluded_data_at_a_delegation_is_neither_signed_nor_listed),
	        cmocka_unit_test(rrsig_by_a_key_without_the_zone_flag_is_bogus),
	        cmocka_unit_test(rrsig_labels_below_the_owner_verify_over_the_wildcard),
	        cmocka_unit_test(signed_zone_without_denial_records_is_critical),
	        cmocka_unit_test(large_rrset_verifies),
	        cmocka_unit_test(signed_glue_is_a_misplaced_warning),
	        cmocka_unit_test(parent_ds_must_match_a_signing_ksk),
	        cmocka_unit_test(max_problems_caps_the_list_not_the_count),
	        cmocka_unit_test(critical_problems_come_before_warnings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
