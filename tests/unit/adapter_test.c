/* Unit tests of registry-adapter/: validation of zone_rrs rows (row.c), the
 * per-owner checks, and the adapter's behaviour without a database.  Failure
 * paths first; the libpq paths against a real PostgreSQL are system tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "common/zd_err.h"
#include "common/zd_log.h"
#include "registry-adapter/adapter.h"
#include "registry-adapter/owners.h"
#include "registry-adapter/row.h"

static ldns_rdf *zone_tld;

static int
setup(void **state)
{
	(void)state;
	zd_log_level_set(ZD_LOG_ERROR);
	return ldns_str2rdf_dname(&zone_tld, "tld.") == LDNS_STATUS_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	ldns_rdf_deep_free(zone_tld);
	return 0;
}

/* Expect a reject; returns the reason (static) and checks *out stayed. */
static const char *
rejected(const char *owner, const char *type, const char *ttl, const char *rdata)
{
	ldns_rr *sentinel = (ldns_rr *)(uintptr_t)0x1;
	ldns_rr *rr = sentinel;
	const char *reason = NULL;
	zd_err e = ra_row_parse(zone_tld, owner, type, ttl, rdata, &rr, &reason);

	if (e != ZD_EMALFORMED)
		fail_msg("%s %s %s \"%s\": expected ZD_EMALFORMED, got %s", owner ? owner : "NULL",
		         type ? type : "NULL", ttl ? ttl : "NULL", rdata ? rdata : "NULL",
		         zd_strerror(e));
	assert_ptr_equal(rr, sentinel); /* out-param untouched on failure */
	assert_non_null(reason);
	return reason;
}

static void
assert_rejected(const char *owner, const char *type, const char *ttl, const char *rdata,
                const char *want)
{
	const char *reason = rejected(owner, type, ttl, rdata);
	if (want != NULL && strcmp(reason, want) != 0)
		fail_msg("%s %s %s \"%s\": reason \"%s\", want \"%s\"", owner ? owner : "NULL",
		         type ? type : "NULL", ttl ? ttl : "NULL", rdata ? rdata : "NULL", reason,
		         want);
}

/* Expect a record; returns its presentation form (caller frees). */
static char *
accepted(const char *owner, const char *type, const char *ttl, const char *rdata)
{
	ldns_rr *rr = NULL;
	const char *reason = NULL;
	zd_err e = ra_row_parse(zone_tld, owner, type, ttl, rdata, &rr, &reason);
	char *s;

	if (e != ZD_OK)
		fail_msg("%s %s %s \"%s\": expected ZD_OK, got %s (%s)", owner, type, ttl, rdata,
		         zd_strerror(e), reason ? reason : "-");
	assert_int_equal(ldns_rr_get_class(rr), LDNS_RR_CLASS_IN);
	s = ldns_rr2str(rr);
	ldns_rr_free(rr);
	assert_non_null(s);
	s[strcspn(s, "\n")] = '\0';
	return s;
}

static void
assert_accepted(const char *owner, const char *type, const char *ttl, const char *rdata,
                const char *want)
{
	char *s = accepted(owner, type, ttl, rdata);
	if (want != NULL && strcmp(s, want) != 0)
		fail_msg("got \"%s\", want \"%s\"", s, want);
	free(s);
}

/* ---- ra_row_parse: failures -------------------------------------------- */

static void
row_parse_refuses_null_arguments_as_bug(void **state)
{
	ldns_rr *rr = NULL;
	const char *reason = NULL;
	(void)state;
	assert_int_equal(ra_row_parse(NULL, "a.tld.", "A", "1", "192.0.2.1", &rr, &reason),
	                 ZD_EBUG);
	assert_int_equal(ra_row_parse(zone_tld, "a.tld.", "A", "1", "192.0.2.1", NULL, &reason),
	                 ZD_EBUG);
	assert_int_equal(ra_row_parse(zone_tld, "a.tld.", "A", "1", "192.0.2.1", &rr, NULL),
	                 ZD_EBUG);
	assert_null(rr);
}

static void
row_parse_rejects_sql_null_fields(void **state)
{
	(void)state;
	assert_rejected(NULL, "A", "300", "192.0.2.1", "owner is missing (NULL)");
	assert_rejected("a.tld.", NULL, "300", "192.0.2.1", "type is missing (NULL)");
	assert_rejected("a.tld.", "A", NULL, "192.0.2.1", "ttl is missing (NULL)");
	assert_rejected("a.tld.", "A", "300", NULL, "rdata is missing (NULL)");
}

static void
row_parse_rejects_owner_outside_the_zone(void **state)
{
	(void)state;
	assert_rejected("a.example.", "A", "300", "192.0.2.1", "owner is outside the zone");
	assert_rejected("a.eviltld.", "A", "300", "192.0.2.1", "owner is outside the zone");
	assert_rejected("tld.example.", "A", "300", "192.0.2.1", "owner is outside the zone");
	assert_rejected(".", "A", "300", "192.0.2.1", "owner is outside the zone");
}

static void
row_parse_rejects_the_apex(void **state)
{
	const char *want = "owner is the apex (apex records are zonedist's configuration)";
	(void)state;
	assert_rejected("tld.", "NS", "300", "ns1.example.net.", want);
	assert_rejected("TLD.", "A", "300", "192.0.2.1", want);
	assert_rejected("tld.", "SOA", "300", "a. b. 1 2 3 4 5", want);
}

static void
row_parse_rejects_relative_and_malformed_owners(void **state)
{
	(void)state;
	assert_rejected("a.tld", "A", "300", "192.0.2.1", "name is not absolute (no trailing dot)");
	assert_rejected("@", "A", "300", "192.0.2.1", "name is not absolute (no trailing dot)");
	assert_rejected("a.tld\\.", "A", "300", "192.0.2.1",
	                "name is not absolute (no trailing dot)");
	assert_rejected("", "A", "300", "192.0.2.1", "owner is empty");
	assert_rejected("a..tld.", "A", "300", "192.0.2.1", "name has an empty label");
	assert_rejected("a b.tld.", "A", "300", "192.0.2.1",
	                "owner has a space, control or non-ASCII byte");
	assert_rejected("\xc3\xa9.tld.", "A", "300", "192.0.2.1",
	                "owner has a space, control or non-ASCII byte");
	assert_rejected("a.tld.\n", "A", "300", "192.0.2.1", NULL);
	assert_rejected("a.tld.\nb.tld. 300 IN A 192.0.2.2", "A", "300", "192.0.2.1", NULL);
}

static void
row_parse_rejects_owner_label_longer_than_63(void **state)
{
	char owner[128];
	(void)state;
	memset(owner, 'a', 64);
	snprintf(owner + 64, sizeof owner - 64, ".tld.");
	assert_rejected(owner, "A", "300", "192.0.2.1", "label longer than 63 octets");
	snprintf(owner + 63, sizeof owner - 63, ".tld."); /* 63: fine */
	assert_accepted(owner, "A", "300", "192.0.2.1", NULL);
}

static void
row_parse_rejects_owner_longer_than_255(void **state)
{
	char owner[RA_ROW_OWNER_MAX + 64];
	size_t n = 0;
	(void)state;
	for (int i = 0; i < 4; i++) { /* 4 * 64 + 4 ("tld.") = 260 octets */
		memset(owner + n, 'a', 63);
		n += 63;
		owner[n++] = '.';
	}
	snprintf(owner + n, sizeof owner - n, "tld.");
	assert_rejected(owner, "A", "300", "192.0.2.1", "name longer than 255 octets");
	memset(owner, 'a', sizeof owner - 1); /* over the text limit */
	owner[sizeof owner - 1] = '\0';
	assert_rejected(owner, "A", "300", "192.0.2.1", "name longer than 255 octets");
}

static void
row_parse_rejects_unknown_types(void **state)
{
	(void)state;
	assert_rejected("a.tld.", "FOO", "300", "192.0.2.1", "unknown type");
	assert_rejected("a.tld.", "", "300", "192.0.2.1", "unknown type");
	assert_rejected("a.tld.", "TYPE1", "300", "192.0.2.1", "unknown type");
	assert_rejected("a.tld.", "TYPE99999", "300", "\\# 0", "unknown type");
	assert_rejected("a.tld.", "TYPE65000", "300", "\\# 0", "unknown type");
	assert_rejected("a.tld.", "A A", "300", "192.0.2.1", "unknown type");
	assert_rejected("a.tld.", "A;", "300", "192.0.2.1", "unknown type");
	assert_rejected("a.tld.", "IN", "300", "192.0.2.1", "unknown type");
	assert_rejected("a.tld.", "AAAAAAAAAAAAAAAAAAAAAAAAA", "300", "192.0.2.1", "unknown type");
	assert_rejected("a.tld.", "A\t", "300", "192.0.2.1", NULL);
}

static void
row_parse_rejects_types_zonedist_manages(void **state)
{
	(void)state;
	assert_rejected("a.tld.", "SOA", "300", "a.tld. b.tld. 1 2 3 4 5",
	                "type SOA is managed by zonedist");
	assert_rejected("a.tld.", "RRSIG", "300",
	                "A 8 2 300 20300101000000 20200101000000 1 tld. AAAA",
	                "type RRSIG is managed by zonedist");
	assert_rejected("a.tld.", "NSEC", "300", "b.tld. A", "type NSEC is managed by zonedist");
	assert_rejected("a.tld.", "nsec3", "300", "1 0 0 - AAAA A",
	                "type NSEC3 is managed by zonedist");
	assert_rejected("a.tld.", "NSEC3PARAM", "300", "1 0 0 -",
	                "type NSEC3PARAM is managed by zonedist");
	assert_rejected("a.tld.", "DNSKEY", "300",
	                "257 3 8 AwEAAQ==", "type DNSKEY is managed by zonedist");
	assert_rejected("a.tld.", "CDS", "300", "1 8 2 abcd", "type CDS is managed by zonedist");
	assert_rejected("a.tld.", "CDNSKEY", "300",
	                "257 3 8 AwEAAQ==", "type CDNSKEY is managed by zonedist");
	assert_rejected("a.tld.", "ZONEMD", "300", "1 1 1 abcd",
	                "type ZONEMD is managed by zonedist");
}

static void
row_parse_rejects_meta_and_query_types(void **state)
{
	(void)state;
	assert_rejected("a.tld.", "ANY", "300", "192.0.2.1", "type is a meta or query type");
	assert_rejected("a.tld.", "AXFR", "300", "192.0.2.1", "type is a meta or query type");
	assert_rejected("a.tld.", "IXFR", "300", "192.0.2.1", "type is a meta or query type");
	assert_rejected("a.tld.", "OPT", "300", "\\# 0", "type is a meta or query type");
	assert_rejected("a.tld.", "TSIG", "300", "\\# 0", "type is a meta or query type");
	assert_rejected("a.tld.", "IPSECKEY", "300",
	                "10 1 2 192.0.2.1 AQNRU3mG7TVTO2BkR47usntb102u==",
	                "type IPSECKEY is not supported");
}

static void
row_parse_rejects_ttl_out_of_range_or_garbage(void **state)
{
	static const char *const bad[] = {
	        "-1",   "2147483648", "4294967295", "4294967296", "99999999999999999999999",
	        "",     "abc",        " 300",       "300 ",       "+5",
	        "0x10", "3e2",        "300s",       "1h",         "３００",
	};
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_rejected("a.tld.", "A", bad[i], "192.0.2.1", NULL);
	assert_rejected("a.tld.", "A", "-1", "192.0.2.1", "ttl out of range");
	assert_rejected("a.tld.", "A", "2147483648", "192.0.2.1", "ttl out of range");
}

static void
row_parse_rejects_a_with_trailing_text_or_bad_address(void **state)
{
	(void)state;
	assert_rejected("a.tld.", "A", "300", "192.0.2.1 extra", "rdata has trailing text");
	assert_rejected("a.tld.", "A", "300", "300.1.1.1", "rdata does not parse");
	assert_rejected("a.tld.", "A", "300", "1.2.3", "rdata does not parse");
	assert_rejected("a.tld.", "A", "300", "01.2.3.4", "rdata does not parse");
	assert_rejected("a.tld.", "A", "300", "", NULL);
	assert_rejected("a.tld.", "A", "300", "   ", NULL);
	assert_rejected("a.tld.", "A", "300", "\"192.0.2.1\"", NULL);
	assert_rejected("a.tld.", "A", "300", "192.0.2.1 ; comment",
	                "rdata has parentheses or a comment");
	assert_rejected("a.tld.", "A", "300", "192.0.2.1;", "rdata has parentheses or a comment");
	assert_rejected("a.tld.", "A", "300", "( 192.0.2.1 )",
	                "rdata has parentheses or a comment");
	assert_rejected("a.tld.", "A", "300", "192.0.2.1\n",
	                "field has a newline or another control character");
	assert_rejected("a.tld.", "A", "300", "192.0.2.1\r", NULL);
	assert_rejected("a.tld.", "A", "300", "192.0.2.1\nb.tld. 300 IN A 192.0.2.2", NULL);
}

static void
row_parse_rejects_aaaa_garbage(void **state)
{
	(void)state;
	assert_rejected("a.tld.", "AAAA", "300", "zzzz", "rdata does not parse");
	assert_rejected("a.tld.", "AAAA", "300", "2001:db8:::1", "rdata does not parse");
	assert_rejected("a.tld.", "AAAA", "300", "2001:db8::1 x", "rdata has trailing text");
	assert_rejected("a.tld.", "AAAA", "300", "192.0.2.1", "rdata does not parse");
}

static void
row_parse_rejects_bad_names_in_rdata(void **state)
{
	char rdata[400];
	(void)state;
	memset(rdata, 'a', 64);
	snprintf(rdata + 64, sizeof rdata - 64, ".example.net.");
	assert_rejected("a.tld.", "NS", "300", rdata, "label longer than 63 octets");
	for (int i = 0; i < 5; i++) {
		memset(rdata + i * 64, 'b', 63);
		rdata[i * 64 + 63] = '.';
	}
	rdata[5 * 64] = '\0';
	assert_rejected("a.tld.", "NS", "300", rdata, "name longer than 255 octets");
	assert_rejected("a.tld.", "NS", "300", "ns1", "name is not absolute (no trailing dot)");
	assert_rejected("a.tld.", "NS", "300", "@", "name is not absolute (no trailing dot)");
	assert_rejected("a.tld.", "NS", "300", "\"ns1.example.net.\"", "rdata has a quoted name");
	assert_rejected("a.tld.", "NS", "300", "ns1..example.net.", "name has an empty label");
	assert_rejected("a.tld.", "NS", "300", "ns1.example.net. ns2.example.net.",
	                "rdata has trailing text");
	assert_rejected("a.tld.", "CNAME", "300", "b.tld",
	                "name is not absolute (no trailing dot)");
	assert_rejected("a.tld.", "MX", "300", "10 mx", "name is not absolute (no trailing dot)");
	assert_rejected("a.tld.", "SRV", "300", "1 2 3 target",
	                "name is not absolute (no trailing dot)");
}

static void
row_parse_rejects_numbers_that_ldns_would_wrap(void **state)
{
	const char *want = "rdata number out of range or not a number";
	(void)state;
	assert_rejected("a.tld.", "MX", "300", "65536 mx.example.", want);
	assert_rejected("a.tld.", "MX", "300", "-1 mx.example.", want);
	assert_rejected("a.tld.", "MX", "300", "0x10 mx.example.", want);
	assert_rejected("a.tld.", "MX", "300", "\"10\" mx.example.", want);
	assert_rejected("a.tld.", "SRV", "300", "1 2 70000 x.example.", want);
	assert_rejected("a.tld.", "DS", "300", "70000 8 2 abcd", want);
	assert_rejected("a.tld.", "DS", "300", "1 256 2 abcd", want);
	assert_rejected("a.tld.", "DS", "300", "1 -8 2 abcd", want);
	assert_rejected("a.tld.", "DS", "300", "1 8 300 abcd", want);
	assert_rejected("a.tld.", "CAA", "300", "256 issue \"ca.example\"", want);
	assert_rejected("a.tld.", "TLSA", "300", "256 1 1 abcd", want);
	assert_rejected("a.tld.", "MX", "300", "99999999999999999999999 mx.example.", want);
	assert_rejected("a.tld.", "CERT", "300", "0 1 8 AAAA", want);
	assert_rejected("a.tld.", "CERT", "300", "0", want);
}

static void
row_parse_rejects_bad_hex_fields(void **state)
{
	(void)state;
	assert_rejected("a.tld.", "DS", "300", "1 8 2 abc",
	                "rdata has an odd number of hex digits");
	assert_rejected("a.tld.", "DS", "300", "1 8 2 ab c",
	                "rdata has an odd number of hex digits");
	assert_rejected("a.tld.", "DS", "300", "1 8 2 abcg",
	                "rdata has a non-hex digit in a hex field");
	assert_rejected("a.tld.", "DS", "300", "1 8 2 \\# 2 abcd",
	                "rdata has a non-hex digit in a hex field");
	assert_rejected("a.tld.", "DS", "300", "1 8 2 \"abcd\"", "rdata does not parse");
	assert_rejected("a.tld.", "DS", "300", "1 8 2", NULL);
	assert_rejected("a.tld.", "TLSA", "300", "3 1 1 abc",
	                "rdata has an odd number of hex digits");
	assert_rejected("a.tld.", "SSHFP", "300", "1 1 abc",
	                "rdata has an odd number of hex digits");
}

static void
row_parse_rejects_bad_generic_rdata(void **state)
{
	(void)state;
	assert_rejected("a.tld.", "A", "300", "\\# 4 c000020",
	                "rdata has an odd number of hex digits");
	assert_rejected("a.tld.", "A", "300", "\\# 3 c0000201",
	                "rdata length does not match its \\# length");
	assert_rejected("a.tld.", "A", "300", "\\# x c0000201", "rdata does not parse");
	assert_rejected("a.tld.", "A", "300", "\\# 70000", "rdata does not parse");
	assert_rejected("a.tld.", "A", "300", "\\#", "rdata does not parse");
	assert_rejected("a.tld.", "A", "300", "\\# 4 c0000201 ff",
	                "rdata length does not match its \\# length");
}

static void
row_parse_rejects_broken_quoting(void **state)
{
	(void)state;
	assert_rejected("a.tld.", "TXT", "300", "\"abc", "rdata has an unterminated quote");
	assert_rejected("a.tld.", "TXT", "300", "\"abc\\\"", "rdata has an unterminated quote");
	assert_rejected("a.tld.", "TXT", "300", "\"a\"b",
	                "rdata has text right after a closing quote");
	assert_rejected("a.tld.", "TXT", "300", "a\"b\"", "rdata has a quote inside a word");
	assert_rejected("a.tld.", "TXT", "300", "abc\\", "rdata ends in a backslash");
	assert_rejected("a.tld.", "TXT", "300", "( abc", "rdata has parentheses or a comment");
	assert_rejected("a.tld.", "TXT", "300", "abc )", "rdata has parentheses or a comment");
	assert_rejected("a.tld.", "TXT", "300", "\"a\nb\"",
	                "field has a newline or another control character");
}

static void
row_parse_rejects_oversized_rdata(void **state)
{
	char *big = malloc(RA_ROW_RDATA_MAX + 2);
	char *txt;
	size_t n = 0;
	(void)state;
	assert_non_null(big);
	memset(big, 'a', RA_ROW_RDATA_MAX + 1);
	big[RA_ROW_RDATA_MAX + 1] = '\0';
	assert_rejected("a.tld.", "TXT", "300", big, "rdata text too long");
	free(big);
	/* ldns would silently cut this at about 65535 characters; rejected first. */
	txt = malloc(300 * 253 + 1);
	assert_non_null(txt);
	for (int i = 0; i < 300; i++) {
		txt[n++] = '"';
		memset(txt + n, 'x', 250);
		n += 250;
		txt[n++] = '"';
		txt[n++] = ' ';
	}
	txt[n] = '\0';
	assert_rejected("a.tld.", "TXT", "300", txt, "rdata text too long");
	/* an RFC 3597 length beyond 65535 octets: */
	assert_rejected("a.tld.", "TXT", "300", "\\# 70000 00", "rdata does not parse");
	free(txt);
	assert_rejected("a.tld.", "A", "300000000000000000000", "192.0.2.1", "ttl out of range");
}

/* ---- ra_row_parse: success --------------------------------------------- */

static void
row_parse_builds_canonical_records(void **state)
{
	(void)state;
	assert_accepted("WWW.Example.TLD.", "a", "300", "192.0.2.1",
	                "www.example.tld.\t300\tIN\tA\t192.0.2.1");
	assert_accepted("example.tld.", "NS", "86400", "NS1.Example.NET.",
	                "example.tld.\t86400\tIN\tNS\tns1.example.net.");
	assert_accepted("example.tld.", "AAAA", "0", "2001:DB8::1",
	                "example.tld.\t0\tIN\tAAAA\t2001:db8::1");
	assert_accepted("example.tld.", "A", "2147483647", "\t192.0.2.1\t",
	                "example.tld.\t2147483647\tIN\tA\t192.0.2.1");
	assert_accepted("example.tld.", "DS", "3600", "12345 8 2 AB CD",
	                "example.tld.\t3600\tIN\tDS\t12345 8 2 abcd");
	assert_accepted("example.tld.", "DS", "3600", "12345 RSASHA256 2 abcd",
	                "example.tld.\t3600\tIN\tDS\t12345 8 2 abcd");
	assert_accepted("example.tld.", "MX", "300", "0 .", "example.tld.\t300\tIN\tMX\t0 .");
	assert_accepted("example.tld.", "TXT", "300", "\"hello; (world)\" two",
	                "example.tld.\t300\tIN\tTXT\t\"hello; (world)\" \"two\"");
	assert_accepted("example.tld.", "TXT", "300", "\"caf\xc3\xa9\"", NULL);
	assert_accepted("example.tld.", "A", "300", "\\# 4 c0 000201",
	                "example.tld.\t300\tIN\tA\t192.0.2.1");
	assert_accepted("*.example.tld.", "A", "300", "192.0.2.1", NULL);
	assert_accepted("example.tld.", "CAA", "300", "0 issue \"ca.example\"", NULL);
	assert_accepted("example.tld.", "SRV", "300", "1 2 65535 target.example.", NULL);
	assert_accepted("example.tld.", "TLSA", "300", "3 1 1 abcd", NULL);
	assert_accepted("a\\.b.tld.", "A", "300", "192.0.2.1", NULL);
	assert_accepted("a\\065.tld.", "A", "300", "192.0.2.1", NULL);
	/* Built field by field (one token per field) and by ldns' whole-line
	 * parser (a field in several tokens, an escape): the same records. */
	assert_accepted("example.tld.", "DS", "3600", "60000 ECDSAP256SHA256 2 ABCDEF01",
	                "example.tld.\t3600\tIN\tDS\t60000 13 2 abcdef01");
	assert_accepted("example.tld.", "DS", "3600", "60000 13 2 AB CDEF01",
	                "example.tld.\t3600\tIN\tDS\t60000 13 2 abcdef01");
	assert_accepted("example.tld.", "MX", "300", "10 Mail.Example.",
	                "example.tld.\t300\tIN\tMX\t10 mail.example.");
	assert_accepted("_x._tcp.example.tld.", "SRV", "300", "1 2 443 Srv.Example.",
	                "_x._tcp.example.tld.\t300\tIN\tSRV\t1 2 443 srv.example.");
	assert_accepted("example.tld.", "NS", "86400", "NS\\046x.Example.",
	                "example.tld.\t86400\tIN\tNS\tns\\.x.example.");
}

static void
owner_parse_accepts_below_apex_only(void **state)
{
	ldns_rdf *d = NULL;
	const char *reason = NULL;
	char *s;
	(void)state;
	assert_int_equal(ra_owner_parse(zone_tld, "tld.", &d, &reason), ZD_EMALFORMED);
	assert_null(d);
	assert_int_equal(ra_owner_parse(zone_tld, NULL, &d, &reason), ZD_EMALFORMED);
	assert_int_equal(ra_owner_parse(NULL, "a.tld.", &d, &reason), ZD_EBUG);
	assert_int_equal(ra_owner_parse(zone_tld, "Sub.A.TLD.", &d, &reason), ZD_OK);
	s = ldns_rdf2str(d);
	assert_string_equal(s, "sub.a.tld.");
	free(s);
	ldns_rdf_deep_free(d);
}

/* ---- ra_rrs_check ------------------------------------------------------ */

static ldns_rr_list *
list_of(const char *const *rows, size_t n)
{
	ldns_rr_list *l = ldns_rr_list_new();
	assert_non_null(l);
	for (size_t i = 0; i < n; i++) {
		/* rows: "owner ttl type rdata" */
		char owner[256], ttl[32], type[32];
		const char *p = rows[i], *q;
		char *dst[3] = {owner, ttl, type};
		ldns_rr *rr = NULL;
		const char *reason = NULL;
		for (int f = 0; f < 3; f++) {
			q = strchr(p, ' ');
			assert_non_null(q);
			memcpy(dst[f], p, (size_t)(q - p));
			dst[f][q - p] = '\0';
			p = q + 1;
		}
		if (ra_row_parse(zone_tld, owner, type, ttl, p, &rr, &reason) != ZD_OK)
			fail_msg("test row \"%s\": %s", rows[i], reason);
		assert_true(ldns_rr_list_push_rr(l, rr));
	}
	return l;
}

static char *
list_str(const ldns_rr_list *l)
{
	char *s = ldns_rr_list2str(l);
	assert_non_null(s);
	return s;
}

static void
rrs_check_refuses_mixed_owners_and_leaves_the_list(void **state)
{
	static const char *const rows[] = {"a.tld. 300 A 192.0.2.1", "b.tld. 300 A 192.0.2.1"};
	ldns_rr_list *l = list_of(rows, 2);
	struct ra_reject *rej = (struct ra_reject *)(uintptr_t)0x1;
	size_t n = 77;
	(void)state;
	assert_int_equal(ra_rrs_check(l, &rej, &n), ZD_EBUG);
	assert_int_equal(ldns_rr_list_rr_count(l), 2);
	assert_ptr_equal(rej, (struct ra_reject *)(uintptr_t)0x1);
	assert_int_equal(n, 77);
	assert_int_equal(ra_rrs_check(NULL, &rej, &n), ZD_EBUG);
	assert_int_equal(ra_rrs_check(l, NULL, &n), ZD_EBUG);
	ldns_rr_list_deep_free(l);
}

static void
rrs_check_rejects_second_copy_as_duplicate(void **state)
{
	static const char *const rows[] = {
	        "a.tld. 300 NS ns1.example.net.",
	        "a.tld. 300 NS NS1.EXAMPLE.NET.", /* the same once canonical */
	        "a.tld. 300 NS ns2.example.net.",
	        "a.tld. 300 NS ns1.example.net.",
	};
	ldns_rr_list *l = list_of(rows, 4);
	struct ra_reject *rej = NULL;
	size_t n = 0;
	(void)state;
	assert_int_equal(ra_rrs_check(l, &rej, &n), ZD_OK);
	assert_int_equal(n, 2);
	assert_string_equal(rej[0].reason, "duplicate");
	assert_string_equal(rej[1].reason, "duplicate");
	assert_int_equal(ldns_rr_list_rr_count(l), 2);
	ra_rejects_free(rej, n);
	ldns_rr_list_deep_free(l);
}

static void
rrs_check_keeps_the_smallest_ttl_whatever_the_order(void **state)
{
	static const char *const fwd[] = {
	        "a.tld. 600 A 192.0.2.1", "a.tld. 300 A 192.0.2.2", "a.tld. 300 A 192.0.2.3",
	        "a.tld. 900 AAAA 2001:db8::1", /* another RRset: its own TTL */
	};
	static const char *const rev[] = {
	        "a.tld. 900 AAAA 2001:db8::1",
	        "a.tld. 300 A 192.0.2.3",
	        "a.tld. 300 A 192.0.2.2",
	        "a.tld. 600 A 192.0.2.1",
	};
	char *out[2];
	(void)state;
	for (int k = 0; k < 2; k++) {
		ldns_rr_list *l = list_of(k ? rev : fwd, 4);
		struct ra_reject *rej = NULL;
		size_t n = 0;
		assert_int_equal(ra_rrs_check(l, &rej, &n), ZD_OK);
		assert_int_equal(n, 1);
		assert_string_equal(rej[0].reason, "TTL differs within the RRset");
		assert_int_equal(ldns_rr_ttl(rej[0].rr), 600);
		assert_int_equal(ldns_rr_list_rr_count(l), 3);
		out[k] = list_str(l);
		ra_rejects_free(rej, n);
		ldns_rr_list_deep_free(l);
	}
	assert_string_equal(out[0], out[1]); /* same result in canonical order */
	free(out[0]);
	free(out[1]);
}

static void
rrs_check_rejects_cname_next_to_other_data(void **state)
{
	static const char *const rows[] = {
	        "a.tld. 300 CNAME b.example.",
	        "a.tld. 300 A 192.0.2.1",
	        "a.tld. 300 CNAME c.example.",
	};
	ldns_rr_list *l = list_of(rows, 3);
	struct ra_reject *rej = NULL;
	size_t n = 0;
	(void)state;
	assert_int_equal(ra_rrs_check(l, &rej, &n), ZD_OK);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(rej[i].reason, "CNAME and other data at one name");
		assert_int_equal(ldns_rr_get_type(rej[i].rr), LDNS_RR_TYPE_CNAME);
	}
	assert_int_equal(ldns_rr_list_rr_count(l), 1);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(l, 0)), LDNS_RR_TYPE_A);
	ra_rejects_free(rej, n);
	ldns_rr_list_deep_free(l);
}

static void
rrs_check_rejects_ds_without_ns(void **state)
{
	static const char *const lone[] = {
	        "a.tld. 3600 DS 1 13 2 "
	        "AABBCCDDAABBCCDDAABBCCDDAABBCCDDAABBCCDDAABBCCDDAABBCCDDAABBCCDD",
	        "a.tld. 300 TXT \"x\"",
	};
	static const char *const delegated[] = {
	        "a.tld. 3600 DS 1 13 2 "
	        "AABBCCDDAABBCCDDAABBCCDDAABBCCDDAABBCCDDAABBCCDDAABBCCDDAABBCCDD",
	        "a.tld. 86400 NS ns.example.",
	};
	ldns_rr_list *l = list_of(lone, 2);
	struct ra_reject *rej = NULL;
	size_t n = 0;
	(void)state;
	assert_int_equal(ra_rrs_check(l, &rej, &n), ZD_OK);
	assert_int_equal(n, 1);
	assert_string_equal(rej[0].reason, "DS without NS at the name");
	assert_int_equal(ldns_rr_get_type(rej[0].rr), LDNS_RR_TYPE_DS);
	assert_int_equal(ldns_rr_list_rr_count(l), 1);
	ra_rejects_free(rej, n);
	ldns_rr_list_deep_free(l);
	l = list_of(delegated, 2);
	assert_int_equal(ra_rrs_check(l, &rej, &n), ZD_OK);
	assert_int_equal(n, 0);
	assert_int_equal(ldns_rr_list_rr_count(l), 2);
	ldns_rr_list_deep_free(l);
}

static void
rrs_check_keeps_one_cname_and_one_dname(void **state)
{
	static const char *const rows[] = {
	        "a.tld. 300 CNAME c.example.",
	        "a.tld. 300 CNAME b.example.",
	};
	static const char *const drows[] = {
	        "a.tld. 300 DNAME c.example.",
	        "a.tld. 300 DNAME b.example.",
	        "a.tld. 300 NS ns.example.",
	};
	ldns_rr_list *l = list_of(rows, 2);
	struct ra_reject *rej = NULL;
	size_t n = 0;
	char *s;
	(void)state;
	assert_int_equal(ra_rrs_check(l, &rej, &n), ZD_OK);
	assert_int_equal(n, 1);
	assert_string_equal(rej[0].reason, "more than one CNAME at a name");
	assert_int_equal(ldns_rr_list_rr_count(l), 1);
	s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(l, 0), 0));
	assert_string_equal(s, "b.example."); /* canonical order decides, not row order */
	free(s);
	ra_rejects_free(rej, n);
	ldns_rr_list_deep_free(l);

	l = list_of(drows, 3);
	assert_int_equal(ra_rrs_check(l, &rej, &n), ZD_OK);
	assert_int_equal(n, 1);
	assert_string_equal(rej[0].reason, "more than one DNAME at a name");
	assert_int_equal(ldns_rr_list_rr_count(l), 2);
	ra_rejects_free(rej, n);
	ldns_rr_list_deep_free(l);
}

static void
rrs_check_accepts_a_clean_delegation_in_canonical_order(void **state)
{
	static const char *const rows[] = {
	        "a.tld. 3600 DS 12345 8 2 abcd",
	        "a.tld. 86400 NS ns2.example.net.",
	        "a.tld. 86400 NS ns1.example.net.",
	};
	ldns_rr_list *l = list_of(rows, 3);
	struct ra_reject *rej = (struct ra_reject *)(uintptr_t)0x1;
	size_t n = 5;
	(void)state;
	assert_int_equal(ra_rrs_check(l, &rej, &n), ZD_OK);
	assert_null(rej);
	assert_int_equal(n, 0);
	assert_int_equal(ldns_rr_list_rr_count(l), 3);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(l, 0)), LDNS_RR_TYPE_NS);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(l, 2)), LDNS_RR_TYPE_DS);
	ldns_rr_list_deep_free(l);

	l = ldns_rr_list_new();
	rej = (struct ra_reject *)(uintptr_t)0x1;
	assert_int_equal(ra_rrs_check(l, &rej, &n), ZD_OK); /* empty: the name is gone */
	assert_null(rej);
	assert_int_equal(n, 0);
	ldns_rr_list_free(l);
	ra_rejects_free(NULL, 0);
}

/* ---- never crashes ----------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 32);
}

static void
mutate(char *s, size_t cap)
{
	static const char specials[] = "\"\\();. \t#@*-0123456789abcdefxyzAZ\x80\xff\x01\n";
	size_t len = strlen(s);
	int n = 1 + (int)(rnd() % 4);

	for (int k = 0; k < n; k++) {
		size_t pos = len ? rnd() % (len + 1) : 0;
		char c = specials[rnd() % (sizeof specials - 1)];
		switch (rnd() % 5) {
		case 0: /* replace */
			if (pos < len)
				s[pos] = c;
			break;
		case 1: /* insert */
			if (len + 1 < cap) {
				memmove(s + pos + 1, s + pos, len - pos + 1);
				s[pos] = c;
				len++;
			}
			break;
		case 2: /* delete */
			if (pos < len) {
				memmove(s + pos, s + pos + 1, len - pos);
				len--;
			}
			break;
		case 3: /* duplicate a run */
			if (pos < len) {
				size_t run = 1 + rnd() % 80;
				if (run > len - pos)
					run = len - pos;
				if (len + run < cap) {
					memmove(s + pos + run, s + pos, len - pos + 1);
					len += run;
				}
			}
			break;
		default: /* truncate */
			s[pos] = '\0';
			len = pos;
			break;
		}
	}
}

static void
row_parse_never_crashes_on_mutated_rows(void **state)
{
	static const char *const seeds[][4] = {
	        {"a.tld.", "A", "300", "192.0.2.1"},
	        {"a.b.tld.", "AAAA", "0", "2001:db8::1"},
	        {"x.tld.", "NS", "86400", "ns1.example.net."},
	        {"x.tld.", "DS", "3600", "12345 8 2 0123456789abcdef0123456789abcdef"},
	        {"x.tld.", "TXT", "60", "\"a b\" c \"d\\\"e\" \\065"},
	        {"x.tld.", "MX", "60", "10 mx.example."},
	        {"x.tld.", "SRV", "60", "1 2 3 t.example."},
	        {"x.tld.", "CAA", "60", "0 issue \"ca.example\""},
	        {"x.tld.", "TLSA", "60", "3 1 1 abcd"},
	        {"x.tld.", "A", "60", "\\# 4 c0000201"},
	        {"x.tld.", "LOC", "60", "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"},
	        {"x.tld.", "NAPTR", "60", "100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:a@b!\" ."},
	        {"x.tld.", "SSHFP", "60", "1 1 abcd"},
	        {"x.tld.", "HINFO", "60", "\"cpu\" \"os\""},
	        {"x.tld.", "APL", "60", "1:192.0.2.0/24 !2:2001:db8::/32"},
	        {"x.tld.", "WKS", "60", "192.0.2.1 tcp 25 80"},
	        {"x.tld.", "IPSECKEY", "60",
	         "10 1 2 192.0.2.1 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ=="},
	        {"x.tld.", "SVCB", "60", "1 . alpn=h2 port=443"},
	        {"x.tld.", "HTTPS", "60", "1 . alpn=\"h2,h3\" ipv4hint=192.0.2.1"},
	        {"x.tld.", "CERT", "60",
	         "PKIX 1 RSASHA256 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ=="},
	        {"x.tld.", "NSAP", "60", "0x47000580005a0000000001e133ffffff00016100"},
	        {"x.tld.", "EUI48", "60", "00-00-5e-00-53-2a"},
	        {"x.tld.", "URI", "60", "10 1 \"https://example/\""},
	        {"x.tld.", "AMTRELAY", "60", "10 0 1 203.0.113.15"},
	        {"x.tld.", "HIP", "60",
	         "2 200100107B1A74DF365639CC39F1D578 "
	         "AwEAAbdxyhNuSutc5EMzxTs9LBPCIkOFH8cIvM4p9+LrV4e19WzK00+"
	         "CI6zBCQTdtWsuxKbWIy87UOoJTwkUs7lBu+Upr1gsNrut79ryra+"
	         "bSRGQb1slImA8YVJyuIDsj7kwzG7jnERNqnWxZ48AWkskmdHaVDP4BcelrTI3rMXdXF5D "
	         "rvs.example."},
	        {"x.tld.", "DHCID", "60", "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="},
	        {"x.tld.", "OPENPGPKEY", "60", "AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ=="},
	        {"x.tld.", "CSYNC", "60", "66 3 A NS AAAA"},
	};
	enum { ITER = 40000, CAP = 512 };
	(void)state;
	for (int it = 0; it < ITER; it++) {
		const char *const *seed = seeds[rnd() % (sizeof seeds / sizeof seeds[0])];
		char f[4][CAP];
		ldns_rr *rr = NULL;
		const char *reason = NULL;
		zd_err e;

		for (int k = 0; k < 4; k++) {
			snprintf(f[k], CAP, "%s", seed[k]);
			if (rnd() % 3 == 0 || k == 3)
				mutate(f[k], CAP);
		}
		e = ra_row_parse(zone_tld, f[0], f[1], f[2], f[3], &rr, &reason);
		assert_true(e == ZD_OK || e == ZD_EMALFORMED);
		if (e == ZD_OK) {
			/* Whatever came out is a record ldns can print and check. */
			ldns_rr_list *l = ldns_rr_list_new();
			struct ra_reject *rej = NULL;
			size_t n = 0;
			char *s = ldns_rr2str(rr);
			assert_non_null(s);
			free(s);
			assert_true(ldns_rr_list_push_rr(l, rr));
			assert_int_equal(ra_rrs_check(l, &rej, &n), ZD_OK);
			ra_rejects_free(rej, n);
			ldns_rr_list_deep_free(l);
		} else {
			assert_non_null(reason);
			assert_null(rr);
		}
	}
}

/* ---- adapter without a database ----------------------------------------- */

static void
adapter_reports_unreachable_database_as_edb(void **state)
{
	struct ra *ra = NULL;
	struct ra_batch *b = (struct ra_batch *)(uintptr_t)0x1;
	int notified = 7;
	(void)state;
	assert_int_equal(ra_new(NULL, &ra), ZD_EBUG);
	assert_int_equal(
	        ra_new("host=/nonexistent/zonedist port=1 dbname=x connect_timeout=2", &ra), ZD_OK);
	assert_false(ra_is_connected(ra));
	assert_int_equal(ra_connect(ra), ZD_EDB);
	assert_false(ra_is_connected(ra));
	assert_true(strncmp(ra_error_get(ra), "connect: ", 9) == 0);
	assert_true(strlen(ra_error_get(ra)) > 9);
	assert_null(strchr(ra_error_get(ra), '\n'));
	assert_int_equal(ra_wait(ra, 10, &notified), ZD_EDB);
	assert_int_equal(notified, 7);
	assert_int_equal(ra_batch_take(ra, "tld.", 100, &b), ZD_EDB);
	assert_ptr_equal(b, (struct ra_batch *)(uintptr_t)0x1);
	assert_int_equal(ra_full_begin(ra, "tld.", &b), ZD_EDB);
	assert_ptr_equal(b, (struct ra_batch *)(uintptr_t)0x1);
	assert_int_equal(ra_batch_take(ra, "tld.", RA_BATCH_CHANGES_MAX + 1, &b), ZD_ELIMIT);
	assert_int_equal(ra_full_next(NULL, 10, NULL, &notified), ZD_EBUG);
	b = NULL;
	ra_batch_abort(&b);
	ra_batch_abort(NULL);
	assert_int_equal(ra_batch_commit(&b), ZD_EBUG);
	assert_int_equal(ra_batch_changes_get(NULL), 0);
	assert_null(ra_batch_name_get(NULL, 0));
	ra_free(ra);
	ra_free(NULL);
}

/* ---- owners.c: records grouped by owner ---------------------------------- */

static ldns_rr *
rr_of(const char *text)
{
	ldns_rr *rr = NULL;
	assert_int_equal(ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL), LDNS_STATUS_OK);
	ldns_rr2canonical(rr);
	return rr;
}

static void
owners_group_interleaved_rows_by_name_and_sort_the_names(void **state)
{
	static const char *rows[] = {
	        "a.tld. 3600 IN NS ns1.example.",
	        "b.tld. 3600 IN NS ns1.b.tld.",
	        "a.tld. 3600 IN NS ns2.example.",
	        "ns1.b.tld. 60 IN A 192.0.2.1",
	        "a.tld. 300 IN DS 12345 13 2 "
	        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	        "ns1.b.tld. 60 IN AAAA 2001:db8::1",
	        "b.tld. 3600 IN NS ns2.b.tld.",
	        "c.tld. 60 IN TXT \"one\" \"two\"",
	        "c.tld. 60 IN MX 10 mail.example.",
	};
	/* name index of each row, in order of first appearance */
	static const size_t name_of[] = {0, 1, 0, 2, 0, 2, 1, 3, 3};
	struct ra_owners *o = NULL;
	ldns_rr *in[9];
	(void)state;

	assert_int_equal(ra_owners_new(1 << 20, &o), ZD_OK);
	for (size_t i = 0; i < 9; i++) {
		in[i] = rr_of(rows[i]);
		assert_int_equal(ra_owners_add(o, in[i]), ZD_OK);
	}
	assert_int_equal(ra_owners_names(o), 4);
	for (size_t n = 0; n < 4; n++) {
		ldns_rr_list *l = ldns_rr_list_new();
		size_t k = 0;
		assert_int_equal(ra_owners_get(o, n, l), ZD_OK);
		assert_int_equal(ldns_rr_list_rr_count(l), ra_owners_count(o, n));
		for (size_t i = 0; i < 9; i++) {
			if (name_of[i] != n)
				continue;
			ldns_rr *got = ldns_rr_list_rr(l, k++);
			/* owner, class, type, TTL and rdata all come back */
			assert_int_equal(ldns_rr_compare(got, in[i]), 0);
			assert_int_equal(ldns_rr_ttl(got), ldns_rr_ttl(in[i]));
		}
		assert_int_equal(k, ldns_rr_list_rr_count(l));
		ldns_rr_list_deep_free(l);
	}
	assert_int_equal(ra_owners_count(o, 4), 0);
	ldns_rr_list *l = ldns_rr_list_new();
	assert_int_equal(ra_owners_get(o, 4, l), ZD_EBUG);
	assert_int_equal(ldns_rr_list_rr_count(l), 0);
	/* sorted: a, b, ns1.b below b, c; taking each gives its records, all of
	 * them from one chunk */
	static const char *sorted[] = {"a.tld.", "b.tld.", "ns1.b.tld.", "c.tld."};
	static const size_t counts[] = {3, 2, 2, 2};
	assert_int_equal(ra_owners_sort(o), ZD_OK);
	for (size_t n = 0; n < 4; n++) {
		ldns_rdf *want = NULL;
		assert_int_equal(ldns_str2rdf_dname(&want, sorted[n]), LDNS_STATUS_OK);
		assert_int_equal(ra_owners_take(o, n, l), ZD_OK);
		assert_int_equal(ldns_rr_list_rr_count(l), counts[n]);
		for (size_t k = 0; k < counts[n]; k++)
			assert_int_equal(
			        ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(l, k)), want), 0);
		ldns_rdf_deep_free(want);
		for (size_t k = 0; k < counts[n]; k++)
			ldns_rr_free(ldns_rr_list_rr(l, k));
		ldns_rr_list_set_rr_count(l, 0);
	}
	assert_int_equal(ra_owners_bytes(o) < (1u << 20), 1); /* the one chunk is gone */
	ldns_rr_list_free(l);
	for (size_t i = 0; i < 9; i++)
		ldns_rr_free(in[i]);
	ra_owners_free(o);
}

static void
owners_sort_names_canonically_and_give_memory_back_as_they_are_taken(void **state)
{
	enum { NAMES = 60000 }; /* about 3 MiB a pass: several chunks each */
	struct ra_owners *o = NULL;
	char text[128];
	(void)state;

	assert_int_equal(ra_owners_new((size_t)1 << 30, &o), ZD_OK);
	/* two passes, so each name's records lie in chunks far apart; the
	 * names come in reverse, and in canonical order "d000000" first */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = NAMES - 1; i >= 0; i--) {
			snprintf(text, sizeof text, "d%06d.tld. 3600 IN NS ns%d.example%d.example.",
			         i, pass, i);
			ldns_rr *rr = rr_of(text);
			assert_int_equal(ra_owners_add(o, rr), ZD_OK);
			ldns_rr_free(rr);
		}
	}
	ldns_rr *glue = rr_of("ns1.d000005.tld. 60 IN A 192.0.2.1"); /* sorts after d000005 */
	assert_int_equal(ra_owners_add(o, glue), ZD_OK);
	assert_int_equal(ra_owners_names(o), NAMES + 1);
	ldns_rr_list *l = ldns_rr_list_new();
	assert_int_equal(ra_owners_take(o, 0, l), ZD_EBUG); /* not sorted yet */
	assert_int_equal(ra_owners_sort(o), ZD_OK);
	assert_int_equal(ra_owners_add(o, glue), ZD_EBUG); /* no adding after it */
	assert_int_equal(ra_owners_sort(o), ZD_EBUG);
	size_t before = ra_owners_bytes(o);
	size_t half = 0;
	ldns_rdf *prev = NULL;
	for (int i = 0; i <= NAMES; i++) {
		assert_int_equal(ra_owners_take(o, (size_t)i, l), ZD_OK);
		ldns_rdf *owner = ldns_rdf_clone(ldns_rr_owner(ldns_rr_list_rr(l, 0)));
		if (prev != NULL)
			assert_true(ldns_dname_compare(prev, owner) < 0);
		ldns_rdf_deep_free(prev);
		prev = owner;
		if (i == 6) {
			assert_int_equal(ldns_rr_compare(ldns_rr_list_rr(l, 0), glue), 0);
		} else {
			int d = i < 6 ? i : i - 1;
			assert_int_equal(ldns_rr_list_rr_count(l), 2);
			for (int pass = 0; pass < 2; pass++) {
				snprintf(text, sizeof text,
				         "d%06d.tld. 3600 IN NS ns%d.example%d.example.", d, pass,
				         d);
				ldns_rr *want = rr_of(text);
				assert_int_equal(
				        ldns_rr_compare(ldns_rr_list_rr(l, (size_t)pass), want), 0);
				ldns_rr_free(want);
			}
		}
		ldns_rr_list_deep_free(l);
		l = ldns_rr_list_new();
		if (i == NAMES / 2) {
			/* the chunks of both passes that only hold names taken are gone */
			half = ra_owners_bytes(o);
			assert_true(half < before);
		}
	}
	ldns_rdf_deep_free(prev);
	assert_true(ra_owners_bytes(o) < half);
	assert_int_equal(ra_owners_take(o, 3, l), ZD_EBUG); /* taken already */
	assert_int_equal(ra_owners_get(o, 3, l), ZD_EBUG);
	assert_int_equal(ldns_rr_list_rr_count(l), 0);
	ldns_rr_list_free(l);
	ldns_rr_free(glue);
	ra_owners_free(o);
}

/* Names alike in their first octets after the zone (one radix head): the
 * runs of equal heads are ordered by the rest of the name. */
static void
owners_sort_names_alike_in_their_first_octets(void **state)
{
	enum { NAMES = 500 };
	struct ra_owners *o = NULL;
	char text[160];
	(void)state;

	assert_int_equal(ra_owners_new(1 << 24, &o), ZD_OK);
	for (int k = 0; k < NAMES; k++) {
		int i = (k * 7919) % NAMES; /* a fixed shuffle */
		/* five first letters: the octets after the zone differ there, and
		 * the next eight are alike within a letter */
		char c = (char)('a' + i % 5);
		if (i % 3 == 0)
			snprintf(text, sizeof text,
			         "sub%d.%c-longlonglong-%d.tld. 60 IN A 192.0.2.1", i, c, i);
		else
			snprintf(text, sizeof text, "%c-longlonglong-%d.tld. 60 IN A 192.0.2.1", c,
			         i);
		ldns_rr *rr = rr_of(text);
		assert_int_equal(ra_owners_add(o, rr), ZD_OK);
		ldns_rr_free(rr);
	}
	assert_int_equal(ra_owners_sort(o), ZD_OK);
	ldns_rr_list *l = ldns_rr_list_new();
	ldns_rdf *prev = NULL;
	for (size_t i = 0; i < ra_owners_names(o); i++) {
		assert_int_equal(ra_owners_take(o, i, l), ZD_OK);
		ldns_rdf *owner = ldns_rdf_clone(ldns_rr_owner(ldns_rr_list_rr(l, 0)));
		if (prev != NULL)
			assert_true(ldns_dname_compare(prev, owner) < 0);
		ldns_rdf_deep_free(prev);
		prev = owner;
		ldns_rr_free(ldns_rr_list_rr(l, 0));
		ldns_rr_list_set_rr_count(l, 0);
	}
	assert_int_equal(ra_owners_names(o), NAMES);
	ldns_rdf_deep_free(prev);
	ldns_rr_list_free(l);
	ra_owners_free(o);
}

static void
owners_refuse_past_their_cap_and_keep_what_they_had(void **state)
{
	struct ra_owners *o = NULL;
	ldns_rr *small = rr_of("a.tld. 60 IN A 192.0.2.1");
	ldns_rr *big = rr_of("b.tld. 60 IN TXT \"0123456789012345678901234567890123456789\"");
	(void)state;

	assert_int_equal(ra_owners_new(40, &o), ZD_OK);
	assert_int_equal(ra_owners_add(o, small), ZD_OK); /* 7 + 18 + 4 bytes */
	assert_int_equal(ra_owners_add(o, big), ZD_ELIMIT);
	assert_int_equal(ra_owners_names(o), 1);
	assert_int_equal(ra_owners_add(o, small), ZD_ELIMIT); /* 29 + 22 > 40 */
	assert_int_equal(ra_owners_count(o, 0), 1);
	assert_int_equal(ra_owners_add(NULL, small), ZD_EBUG);
	assert_int_equal(ra_owners_new(0, &o), ZD_EBUG);
	ra_owners_free(o);
	ldns_rr_free(small);
	ldns_rr_free(big);
}

/* ---- row.c: the COPY binary stream ----------------------------------------- */

static void
put_u16(uint8_t *p, size_t *n, uint16_t v)
{
	p[(*n)++] = (uint8_t)(v >> 8);
	p[(*n)++] = (uint8_t)v;
}

static void
put_u32(uint8_t *p, size_t *n, uint32_t v)
{
	put_u16(p, n, (uint16_t)(v >> 16));
	put_u16(p, n, (uint16_t)v);
}

static void
put_field(uint8_t *p, size_t *n, const char *s)
{
	if (s == NULL) {
		put_u32(p, n, 0xffffffffu);
		return;
	}
	put_u32(p, n, (uint32_t)strlen(s));
	memcpy(p + *n, s, strlen(s));
	*n += strlen(s);
}

/* header (with a 3-octet extension), two rows (one with a NULL), trailer */
static size_t
copy_stream(uint8_t *p)
{
	static const uint8_t sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
	size_t n = 0;
	memcpy(p, sig, 11);
	n = 11;
	put_u32(p, &n, 0x0000ffffu); /* only non-critical flags */
	put_u32(p, &n, 3);
	memcpy(p + n, "ext", 3);
	n += 3;
	put_u16(p, &n, 4);
	put_field(p, &n, "a.tld.");
	put_field(p, &n, "NS");
	put_field(p, &n, "3600");
	put_field(p, &n, "ns.example.");
	put_u16(p, &n, 4);
	put_field(p, &n, "b.tld.");
	put_field(p, &n, "A");
	put_field(p, &n, NULL);
	put_field(p, &n, "");
	put_u16(p, &n, 0xffff);
	return n;
}

static void
copy_stream_parses_whole_and_says_more_at_every_cut(void **state)
{
	uint8_t s[256];
	size_t n = copy_stream(s);
	(void)state;

	/* whole: header, row, row, end */
	for (size_t cut = 0; cut <= n; cut++) {
		/* the stream given in two parts cut anywhere: the same items */
		size_t pos = 0, avail = cut, rows = 0;
		int header = 0, end = 0;
		while (!end) {
			struct ra_copy_field f[4];
			enum ra_copy_kind kind;
			size_t used;
			assert_int_equal(
			        ra_copy_next(s + pos, avail - pos, header, 4, f, &used, &kind),
			        ZD_OK);
			if (kind == RA_COPY_MORE) {
				assert_int_equal(used, 0);
				assert_true(avail < n); /* only ever for a partial item */
				avail = n;
				continue;
			}
			pos += used;
			if (kind == RA_COPY_HEADER) {
				assert_false(header);
				header = 1;
			} else if (kind == RA_COPY_ROW) {
				assert_true(header);
				if (rows++ == 0) {
					assert_int_equal(f[0].len, 6);
					assert_memory_equal(f[0].p, "a.tld.", 6);
					assert_memory_equal(f[3].p, "ns.example.", 11);
				} else {
					assert_null(f[2].p);
					assert_non_null(f[3].p);
					assert_int_equal(f[3].len, 0);
				}
			} else {
				end = 1;
			}
		}
		assert_int_equal(rows, 2);
		assert_int_equal(pos, n);
	}
}

static void
copy_stream_refuses_what_is_not_ours(void **state)
{
	uint8_t s[256], bad[256];
	size_t n = copy_stream(s), used;
	struct ra_copy_field f[4];
	enum ra_copy_kind kind;
	(void)state;

	memcpy(bad, s, n);
	bad[1] = 'X'; /* signature, also seen in a short prefix */
	assert_int_equal(ra_copy_next(bad, n, 0, 4, f, &used, &kind), ZD_EMALFORMED);
	assert_int_equal(ra_copy_next(bad, 3, 0, 4, f, &used, &kind), ZD_EMALFORMED);
	memcpy(bad, s, n);
	bad[11] = 0x01; /* a critical flag */
	assert_int_equal(ra_copy_next(bad, n, 0, 4, f, &used, &kind), ZD_EMALFORMED);
	/* a row of three fields where four are expected */
	assert_int_equal(ra_copy_next(s, n, 0, 3, f, &used, &kind), ZD_OK);
	assert_int_equal(kind, RA_COPY_HEADER);
	assert_int_equal(ra_copy_next(s + used, n - used, 1, 3, f, &used, &kind), ZD_EMALFORMED);
	/* a field length below -1 or above the limit */
	uint8_t row[16];
	size_t k = 0;
	put_u16(row, &k, 1);
	put_u32(row, &k, 0xfffffffeu);
	assert_int_equal(ra_copy_next(row, k, 1, 1, f, &used, &kind), ZD_EMALFORMED);
	k = 0;
	put_u16(row, &k, 1);
	put_u32(row, &k, RA_COPY_FIELD_MAX + 1);
	assert_int_equal(ra_copy_next(row, k, 1, 1, f, &used, &kind), ZD_EMALFORMED);
	assert_int_equal(ra_copy_next(NULL, 0, 1, 1, f, &used, &kind), ZD_EBUG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(row_parse_refuses_null_arguments_as_bug),
	        cmocka_unit_test(row_parse_rejects_sql_null_fields),
	        cmocka_unit_test(row_parse_rejects_owner_outside_the_zone),
	        cmocka_unit_test(row_parse_rejects_the_apex),
	        cmocka_unit_test(row_parse_rejects_relative_and_malformed_owners),
	        cmocka_unit_test(row_parse_rejects_owner_label_longer_than_63),
	        cmocka_unit_test(row_parse_rejects_owner_longer_than_255),
	        cmocka_unit_test(row_parse_rejects_unknown_types),
	        cmocka_unit_test(row_parse_rejects_types_zonedist_manages),
	        cmocka_unit_test(row_parse_rejects_meta_and_query_types),
	        cmocka_unit_test(row_parse_rejects_ttl_out_of_range_or_garbage),
	        cmocka_unit_test(row_parse_rejects_a_with_trailing_text_or_bad_address),
	        cmocka_unit_test(row_parse_rejects_aaaa_garbage),
	        cmocka_unit_test(row_parse_rejects_bad_names_in_rdata),
	        cmocka_unit_test(row_parse_rejects_numbers_that_ldns_would_wrap),
	        cmocka_unit_test(row_parse_rejects_bad_hex_fields),
	        cmocka_unit_test(row_parse_rejects_bad_generic_rdata),
	        cmocka_unit_test(row_parse_rejects_broken_quoting),
	        cmocka_unit_test(row_parse_rejects_oversized_rdata),
	        cmocka_unit_test(rrs_check_refuses_mixed_owners_and_leaves_the_list),
	        cmocka_unit_test(rrs_check_rejects_second_copy_as_duplicate),
	        cmocka_unit_test(rrs_check_keeps_the_smallest_ttl_whatever_the_order),
	        cmocka_unit_test(rrs_check_rejects_cname_next_to_other_data),
	        cmocka_unit_test(rrs_check_rejects_ds_without_ns),
	        cmocka_unit_test(rrs_check_keeps_one_cname_and_one_dname),
	        cmocka_unit_test(row_parse_never_crashes_on_mutated_rows),
	        cmocka_unit_test(adapter_reports_unreachable_database_as_edb),
	        cmocka_unit_test(row_parse_builds_canonical_records),
	        cmocka_unit_test(owner_parse_accepts_below_apex_only),
	        cmocka_unit_test(rrs_check_accepts_a_clean_delegation_in_canonical_order),
	        cmocka_unit_test(owners_group_interleaved_rows_by_name_and_sort_the_names),
	        cmocka_unit_test(
	                owners_sort_names_canonically_and_give_memory_back_as_they_are_taken),
	        cmocka_unit_test(owners_sort_names_alike_in_their_first_octets),
	        cmocka_unit_test(owners_refuse_past_their_cap_and_keep_what_they_had),
	        cmocka_unit_test(copy_stream_parses_whole_and_says_more_at_every_cut),
	        cmocka_unit_test(copy_stream_refuses_what_is_not_ours),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
