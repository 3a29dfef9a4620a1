/* Unit tests of common/: errors, bounded buffers and readers, checked parsing,
 * configuration, rate limits.  Failure paths first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_buf.h"
#include "common/zd_config.h"
#include "common/zd_err.h"
#include "common/zd_log.h"
#include "common/zd_parse.h"

static void
strerror_covers_every_code(void **state)
{
	(void)state;
	for (int e = 0; e < ZD_ERR_COUNT; e++) {
		const char *m = zd_strerror((zd_err)e);
		assert_non_null(m);
		assert_string_not_equal(m, "unknown error");
		for (int f = 0; f < e; f++)
			assert_string_not_equal(m, zd_strerror((zd_err)f));
	}
	assert_string_equal(zd_strerror(ZD_ERR_COUNT), "unknown error");
	assert_string_equal(zd_strerror((zd_err)-1), "unknown error");
}

static void
buf_refuses_to_grow_past_cap_and_stays_unchanged(void **state)
{
	struct zd_buf b;
	(void)state;
	zd_buf_init(&b, 10);
	assert_int_equal(zd_buf_append(&b, "12345678", 8), ZD_OK);
	assert_int_equal(zd_buf_append(&b, "abc", 3), ZD_ELIMIT);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.data, "12345678", 8);
	assert_int_equal(zd_buf_append_u16(&b, 0x0102), ZD_OK);
	assert_int_equal(b.data[8], 1);
	assert_int_equal(b.data[9], 2);
	assert_int_equal(zd_buf_append_u8(&b, 0), ZD_ELIMIT);
	assert_int_equal(zd_buf_append(&b, NULL, SIZE_MAX), ZD_ELIMIT);
	zd_buf_clear(&b);
}

static void
buf_printf_counts_without_nul(void **state)
{
	struct zd_buf b;
	(void)state;
	zd_buf_init(&b, 64);
	assert_int_equal(zd_buf_printf(&b, "%s-%d", "x", 42), ZD_OK);
	assert_int_equal(b.len, 4);
	assert_string_equal((char *)b.data, "x-42");
	zd_buf_reset(&b);
	assert_int_equal(zd_buf_printf(&b, "%0100d", 1), ZD_ELIMIT);
	zd_buf_clear(&b);
}

static void
reader_never_reads_past_end(void **state)
{
	const uint8_t bytes[] = {1, 2, 3, 4, 5, 6, 7};
	struct zd_rd r;
	uint64_t v64;
	uint32_t v32;
	uint16_t v16;
	const uint8_t *p;
	(void)state;
	zd_rd_init(&r, bytes, sizeof bytes);
	assert_int_equal(zd_rd_u64(&r, &v64), ZD_EMALFORMED);
	assert_int_equal(r.pos, 0); /* a failed read does not move */
	assert_int_equal(zd_rd_u32(&r, &v32), ZD_OK);
	assert_int_equal(v32, 0x01020304);
	assert_int_equal(zd_rd_u32(&r, &v32), ZD_EMALFORMED);
	assert_int_equal(zd_rd_bytes(&r, 4, &p), ZD_EMALFORMED);
	assert_int_equal(zd_rd_u16(&r, &v16), ZD_OK);
	assert_int_equal(v16, 0x0506);
	assert_int_equal(zd_rd_left(&r), 1);
}

static void
parse_u64_rejects_junk_overflow_and_range(void **state)
{
	uint64_t v = 7;
	uint32_t w = 7;
	(void)state;
	assert_int_equal(zd_parse_u64("", 0, 10, &v), ZD_EMALFORMED);
	assert_int_equal(zd_parse_u64("12a", 0, 100, &v), ZD_EMALFORMED);
	assert_int_equal(zd_parse_u64("-1", 0, 100, &v), ZD_EMALFORMED);
	assert_int_equal(zd_parse_u64(" 1", 0, 100, &v), ZD_EMALFORMED);
	assert_int_equal(zd_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), ZD_EMALFORMED);
	assert_int_equal(zd_parse_u64("11", 0, 10, &v), ZD_EMALFORMED);
	assert_int_equal(v, 7); /* untouched on failure */
	assert_int_equal(zd_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), ZD_OK);
	assert_true(v == UINT64_MAX);
	assert_int_equal(zd_parse_u32("4294967296", 0, UINT32_MAX, &w), ZD_EMALFORMED);
	assert_int_equal(w, 7);
	assert_int_equal(zd_parse_u32("4294967295", 0, UINT32_MAX, &w), ZD_OK);
	assert_true(w == UINT32_MAX);
}

static void
sockaddr_parses_v4_v6_and_ports(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64];
	(void)state;
	assert_int_equal(zd_parse_sockaddr("127.0.0.1@99999", 53, &ss, &len), ZD_EMALFORMED);
	assert_int_equal(zd_parse_sockaddr("localhost", 53, &ss, &len), ZD_EMALFORMED);
	assert_int_equal(zd_parse_sockaddr("[::1", 53, &ss, &len), ZD_EMALFORMED);
	assert_int_equal(zd_parse_sockaddr("127.0.0.1@5300", 53, &ss, &len), ZD_OK);
	zd_sockaddr_str((struct sockaddr *)&ss, text, sizeof text);
	assert_string_equal(text, "127.0.0.1#5300");
	assert_int_equal(zd_parse_sockaddr("::1#5301", 53, &ss, &len), ZD_OK);
	zd_sockaddr_str((struct sockaddr *)&ss, text, sizeof text);
	assert_string_equal(text, "::1#5301");
	assert_int_equal(zd_parse_sockaddr("[2001:db8::1]:53", 1, &ss, &len), ZD_OK);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(zd_parse_sockaddr("192.0.2.1", 53, &ss, &len), ZD_OK);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 53);
}

static void
prefix_matches_only_inside(void **state)
{
	struct zd_prefix p;
	struct sockaddr_storage ss;
	socklen_t len;
	(void)state;
	assert_int_equal(zd_parse_prefix("10.0.0.0/33", &p), ZD_EMALFORMED);
	assert_int_equal(zd_parse_prefix("10.0.0.0/x", &p), ZD_EMALFORMED);
	assert_int_equal(zd_parse_prefix("10.1.0.0/15", &p), ZD_OK);
	zd_parse_sockaddr("10.0.255.1", 53, &ss, &len);
	assert_true(zd_prefix_match(&p, (struct sockaddr *)&ss));
	zd_parse_sockaddr("10.2.0.1", 53, &ss, &len);
	assert_false(zd_prefix_match(&p, (struct sockaddr *)&ss));
	zd_parse_sockaddr("::ffff:10.1.2.3", 53, &ss, &len);
	assert_true(zd_prefix_match(&p, (struct sockaddr *)&ss));
	zd_parse_sockaddr("2001:db8::1", 53, &ss, &len);
	assert_false(zd_prefix_match(&p, (struct sockaddr *)&ss));
	assert_int_equal(zd_parse_prefix("2001:db8::/32", &p), ZD_OK);
	assert_true(zd_prefix_match(&p, (struct sockaddr *)&ss));
	assert_int_equal(zd_parse_prefix("0.0.0.0/0", &p), ZD_OK);
	zd_parse_sockaddr("203.0.113.9", 53, &ss, &len);
	assert_true(zd_prefix_match(&p, (struct sockaddr *)&ss));
}

static zd_err
parse(const char *text, struct zd_config **c, char *err, size_t errlen)
{
	return zd_config_parse(text, strlen(text), c, err, errlen);
}

static void
config_rejects_unknown_keys_bad_values_and_dangling_refs(void **state)
{
	struct zd_config *c = NULL;
	char err[256];
	(void)state;
	assert_int_equal(parse("databse: x\n", &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "line 1"));
	assert_non_null(strstr(err, "databse"));
	assert_null(c);
	assert_int_equal(parse("database: x\nlimits: {max-transfers: 0}\n", &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "max-transfers"));
	assert_int_equal(parse("zones: [{name: tld.}]\n", &c, err, sizeof err), ZD_EMALFORMED);
	assert_int_equal(parse("database: x\nzones: [{name: tld., soa: {mname: a., rname: b.},"
	                       " notify: [{address: 127.0.0.1@53, key: nokey}]}]\n",
	                       &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "unknown key nokey"));
	assert_int_equal(parse("database: [\n", &c, err, sizeof err), ZD_EMALFORMED);
	assert_int_equal(parse("database: x\nlisten: [\"nothost@53\"]\n", &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_int_equal(parse("database: x\nzones:\n - {name: A., soa: {mname: a., rname: b.}}\n"
	                       " - {name: a, soa: {mname: a., rname: b.}}\n",
	                       &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "twice"));
	assert_null(c);
	/* a key given twice in one mapping is refused, lists too (before, a
	 * second list was appended to storage sized for the first) */
	assert_int_equal(parse("database: x\nlisten: [\"127.0.0.1@53\"]\n"
	                       "listen: [\"127.0.0.1@54\"]\n",
	                       &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "'listen' is given twice"));
	assert_int_equal(parse("database: x\ndatabase: y\n", &c, err, sizeof err), ZD_EMALFORMED);
	assert_int_equal(parse("database: x\nzones:\n - {name: a., soa: {mname: a., rname: b.},"
	                       " apex: [\"a. 1 IN NS b.\"], apex: [\"a. 1 IN NS c.\"]}\n",
	                       &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_null(c);
}

static void
config_parses_a_full_file(void **state)
{
	struct zd_config *c = NULL;
	char err[256];
	const char *text =
	        "database: \"host=/tmp dbname=registry\"\n"
	        "listen: [\"127.0.0.1@5300\", \"::1@5300\"]\n"
	        "log-level: debug\n"
	        "limits: {max-transfers: 3, batch-max-changes: 500, history-versions: 7}\n"
	        "tsig-keys:\n"
	        "  - {name: Xfr-Key, algorithm: hmac-sha256, secret: \"c2VjcmV0\"}\n"
	        "zones:\n"
	        "  - name: TLD\n"
	        "    serial-policy: unixtime\n"
	        "    soa: {mname: a.nic.tld., rname: hostmaster.nic.tld., expire: 600}\n"
	        "    apex: [\"tld. 86400 IN NS a.nic.tld.\"]\n"
	        "    notify: [{address: \"127.0.0.1@5301\", key: xfr-key}]\n"
	        "    allow-transfer: [{prefix: 127.0.0.0/8}]\n";
	(void)state;
	assert_int_equal(parse(text, &c, err, sizeof err), ZD_OK);
	assert_string_equal(c->database, "host=/tmp dbname=registry");
	assert_int_equal(c->n_listen, 2);
	assert_int_equal(c->log_level, ZD_LOG_DEBUG);
	assert_int_equal(c->limits.max_transfers, 3);
	assert_int_equal(c->limits.batch_max_changes, 500);
	assert_int_equal(c->limits.max_tcp_clients, 256); /* default kept */
	assert_int_equal(c->limits.history_versions, 7);
	const struct zd_zone_config *z = zd_config_zone_find(c, "tld.");
	assert_non_null(z);
	assert_int_equal(z->serial_policy, ZD_SERIAL_UNIXTIME);
	assert_int_equal(z->soa_expire, 600);
	assert_int_equal(z->soa_retry, 600);
	assert_int_equal(z->n_apex, 1);
	assert_int_equal(z->n_notify, 1);
	assert_string_equal(z->notify[0].key, "xfr-key.");
	assert_non_null(zd_config_key_find(c, "xfr-key."));
	assert_string_equal(zd_config_key_find(c, "xfr-key.")->algorithm, "hmac-sha256.");
	assert_int_equal(z->n_acl, 1);
	assert_null(z->acl[0].key);
	zd_config_free(c);
}

#define HSM_OK "hsm: {token-label: zonedist, pin-env: ZD_PIN}\n"
#define SOA    "    soa: {mname: a.tld., rname: h.tld.}\n"

/* "database: x", then top (e.g. an hsm: section), then one zone tld. whose
 * mapping continues with body (lines indented by four spaces). */
static zd_err
parse_zone(const char *top, const char *body, struct zd_config **c, char *err, size_t errlen)
{
	char text[8192];
	int n = snprintf(text, sizeof text, "database: x\n%szones:\n  - name: tld.\n%s", top, body);
	assert_true(n > 0 && (size_t)n < sizeof text);
	return parse(text, c, err, errlen);
}

static void
config_dnssec_rejects_bad_algorithm_and_bits_for_non_rsa(void **state)
{
	static const char *const bad[] = {
	        SOA "    dnssec: {algorithm: rsasha1}\n", SOA "    dnssec: {algorithm: 5}\n",
	        SOA "    dnssec: {algorithm: 14}\n",      SOA "    dnssec: {algorithm: \"\"}\n",
	        SOA "    dnssec: {algorithm: [13]}\n",
	};
	struct zd_config *c = NULL;
	char err[256];
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(parse_zone(HSM_OK, bad[i], &c, err, sizeof err), ZD_EMALFORMED);
		assert_non_null(strstr(err, "line 6: dnssec algorithm must be"));
		assert_null(c);
	}
	/* bits are RSA's only; the algorithm may come after them in the map */
	assert_int_equal(
	        parse_zone(HSM_OK, SOA "    dnssec: {ksk-bits: 2048}\n", &c, err, sizeof err),
	        ZD_EMALFORMED);
	assert_non_null(strstr(err, "ksk-bits is for RSA keys only"));
	assert_non_null(strstr(err, "algorithm 13"));
	assert_int_equal(parse_zone(HSM_OK,
	                            SOA "    dnssec:\n      zsk-bits: 2048\n"
	                                "      algorithm: ed25519\n",
	                            &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "line 7: dnssec zsk-bits is for RSA keys only"));
	assert_non_null(strstr(err, "algorithm 15"));
	assert_int_equal(parse_zone(HSM_OK, SOA "    dnssec: {algorithm: 8, ksk-bits: 1024}\n", &c,
	                            err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "ksk-bits must be a whole number from 2048 to 4096"));
	assert_int_equal(parse_zone(HSM_OK, SOA "    dnssec: {algorithm: 8, zsk-bits: 4097}\n", &c,
	                            err, sizeof err),
	                 ZD_EMALFORMED);
	assert_null(c);
}

static void
config_dnssec_rejects_bad_salt_values_and_keys(void **state)
{
	char salt[2 * 256 + 1];
	char body[1024];
	struct zd_config *c = NULL;
	char err[256];
	static const char *const bad[] = {
	        SOA "    dnssec: {nsec3-salt: abc}\n",       /* odd number of digits */
	        SOA "    dnssec: {nsec3-salt: zz}\n",        /* not hex */
	        SOA "    dnssec: {nsec3-salt: \"0x12\"}\n",  /* no prefix */
	        SOA "    dnssec: {nsec3-salt: \"ab cd\"}\n", /* no spaces */
	        SOA "    dnssec: {nsec3-salt: \"--\"}\n",    /* only "-" alone means empty */
	        SOA "    dnssec: {nsec3-iterations: 501}\n", /* RFC 9276 wants 0 anyway */
	        SOA "    dnssec: {nsec3-iterations: -1}\n",
	        SOA "    dnssec: {denial: nsec5}\n",
	        SOA "    dnssec: {nsec3-opt-out: maybe}\n",
	        SOA "    dnssec: {cds: 1}\n",
	        SOA "    dnssec: {enabled: \"\"}\n",
	        SOA "    dnssec: {sign: yes}\n",         /* unknown key */
	        SOA "    dnssec: {cds: yes, cds: no}\n", /* key given twice */
	        SOA "    dnssec: maybe\n",
	        SOA "    dnssec:\n",
	        SOA "    dnssec: [on]\n",
	        /* force-unsign is for a zone being unsigned */
	        SOA "    dnssec: {force-unsign: true}\n",
	        /* unsign is for a zone that is signed until its DS is gone */
	        SOA "    dnssec: {unsign: true, enabled: false}\n",
	        SOA "    dnssec: {unsign: 2}\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(parse_zone(HSM_OK, bad[i], &c, err, sizeof err), ZD_EMALFORMED);
		assert_non_null(strstr(err, "line 6"));
		assert_null(c);
	}
	assert_int_equal(
	        parse_zone(HSM_OK, SOA "    dnssec: on\n    dnssec: off\n", &c, err, sizeof err),
	        ZD_EMALFORMED);
	assert_non_null(strstr(err, "line 7: zone: 'dnssec' is given twice"));
	assert_int_equal(parse_zone(HSM_OK, bad[0], &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "nsec3-salt must be"));
	assert_int_equal(parse_zone(HSM_OK, bad[11], &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "unknown dnssec setting 'sign'"));
	assert_int_equal(parse_zone(HSM_OK, bad[12], &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "'cds' is given twice"));
	assert_int_equal(parse_zone(HSM_OK, bad[16], &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "force-unsign needs enabled: false"));
	assert_int_equal(parse_zone(HSM_OK, bad[17], &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "dnssec unsign needs the zone signed"));

	/* 255 bytes of salt is the most RFC 5155 allows; 256 is refused */
	for (size_t i = 0; i < 2 * 256; i++)
		salt[i] = "0123456789abcdef"[i % 16];
	salt[2 * 256] = '\0';
	snprintf(body, sizeof body, SOA "    dnssec: {nsec3-salt: %s}\n", salt);
	assert_int_equal(parse_zone(HSM_OK, body, &c, err, sizeof err), ZD_EMALFORMED);
	assert_null(c);
	salt[2 * 255] = '\0';
	snprintf(body, sizeof body, SOA "    dnssec: {nsec3-salt: %s}\n", salt);
	assert_int_equal(parse_zone(HSM_OK, body, &c, err, sizeof err), ZD_OK);
	assert_int_equal(c->zones[0].dnssec.nsec3_salt_len, 255);
	assert_int_equal(c->zones[0].dnssec.nsec3_salt[0], 0x01);
	assert_int_equal(c->zones[0].dnssec.nsec3_salt[7], 0xef);
	assert_int_equal(c->zones[0].dnssec.nsec3_salt[254], 0xcd);
	zd_config_free(c);
}

static void
config_dnssec_durations_take_suffixes_and_refuse_junk(void **state)
{
	static const char *const bad[] = {
	        "1y",         "d",
	        "-1d",        "1.5d",
	        "1 d",        "1dd",
	        "1D",         "1e3",
	        "0x10",       "\"\"",
	        "4294967296", "24856d", /* > 2^31 - 1 seconds (RFC 2181 s8) */
	        "2147483648", "99999999999999999999999w",
	        "[1]",
	};
	static const struct {
		const char *text;
		uint32_t seconds;
	} good[] = {
	        {"45s", 45},
	        {"90m", 5400},
	        {"7h", 25200},
	        {"30d", 2592000},
	        {"2w", 1209600},
	        {"0", 0},
	        {"0d", 0},
	        {"3600", 3600},
	        {"24855d", 2147472000u},
	        {"2147483647", 2147483647u},
	        {"2147483647s", 2147483647u},
	};
	char body[512];
	struct zd_config *c = NULL;
	char err[256];
	(void)state;
	/* enabled: false keeps the values but skips the lifetime guard */
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(body, sizeof body, SOA "    dnssec: {enabled: false, jitter: %s}\n",
		         bad[i]);
		assert_int_equal(parse_zone("", body, &c, err, sizeof err), ZD_EMALFORMED);
		assert_non_null(strstr(err, "line 5: dnssec jitter must be a duration"));
		assert_null(c);
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		snprintf(body, sizeof body, SOA "    dnssec: {enabled: false, jitter: %s}\n",
		         good[i].text);
		assert_int_equal(parse_zone("", body, &c, err, sizeof err), ZD_OK);
		assert_int_equal(c->zones[0].dnssec.jitter, good[i].seconds);
		assert_false(c->zones[0].dnssec.enabled);
		zd_config_free(c);
		c = NULL;
	}
	/* validity and refresh must be at least a second */
	assert_int_equal(parse_zone("", SOA "    dnssec: {enabled: no, signature-validity: 0}\n",
	                            &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "signature-validity must be a duration from 1"));
	assert_int_equal(
	        parse_zone("", SOA "    dnssec: {enabled: no, refresh: 0s}\n", &c, err, sizeof err),
	        ZD_EMALFORMED);
	assert_null(c);
}

static void
config_dnssec_guard_refuses_signatures_that_outlive_nothing(void **state)
{
	struct zd_config *c = NULL;
	char err[256];
	(void)state;
	/* defaults: refresh 24d keeps 18d; soa expire 17d + max-ttl 2d = 19d */
	assert_int_equal(parse_zone(HSM_OK,
	                            "    dnssec: on\n"
	                            "    soa: {mname: a.tld., rname: h.tld., expire: 17d}\n",
	                            &c, err, sizeof err),
	                 ZD_EMALFORMED);
	/* expire is a plain number in soa: */
	assert_non_null(strstr(err, "soa expire must be"));
	assert_int_equal(parse_zone(HSM_OK,
	                            "    dnssec: on\n"
	                            "    soa: {mname: a.tld., rname: h.tld., expire: 1468800}\n",
	                            &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err,
	                       "line 5: zone tld.: dnssec refresh - refresh/4 = 1555200 s "
	                       "must be >= soa expire + max-ttl = 1468800 + 172800 = 1641600"));
	assert_non_null(strstr(err, "raise refresh"));
	/* 18d = 16d + 2d is just enough */
	assert_int_equal(parse_zone(HSM_OK,
	                            "    dnssec: on\n"
	                            "    soa: {mname: a.tld., rname: h.tld., expire: 1382400}\n",
	                            &c, err, sizeof err),
	                 ZD_OK);
	zd_config_free(c);
	c = NULL;
	/* one second more max-ttl tips it over */
	assert_int_equal(parse_zone(HSM_OK,
	                            "    dnssec: {max-ttl: 172801}\n"
	                            "    soa: {mname: a.tld., rname: h.tld., expire: 1382400}\n",
	                            &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "zone tld.: dnssec refresh"));
	/* a new signature must not be due for refresh at once */
	assert_int_equal(parse_zone(HSM_OK,
	                            SOA "    dnssec: {signature-validity: 26d, jitter: 2d}\n", &c,
	                            err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "zone tld.: dnssec signature-validity - jitter = 2073600 s "
	                            "must be > refresh = 2073600 s"));
	assert_int_equal(parse_zone(HSM_OK,
	                            "    soa: {mname: a.tld., rname: h.tld., expire: 3600}\n"
	                            "    dnssec: {signature-validity: 1d, jitter: 2d, "
	                            "refresh: 20h, max-ttl: 1h}\n",
	                            &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "signature-validity - jitter = -86400 s"));
	assert_int_equal(parse_zone(HSM_OK, SOA "    dnssec: {inception-offset: 30d}\n", &c, err,
	                            sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "zone tld.: dnssec inception-offset = 2592000 s must be < "
	                            "signature-validity = 2592000 s"));
	/* every TTL that gets signed stays within max-ttl */
	assert_int_equal(
	        parse_zone(HSM_OK, SOA "    dnssec: {dnskey-ttl: 3d}\n", &c, err, sizeof err),
	        ZD_EMALFORMED);
	assert_non_null(strstr(err, "dnskey-ttl 259200, denial-ttl 3600 and soa ttl 3600 must "
	                            "each be <= max-ttl 172800"));
	assert_int_equal(
	        parse_zone(HSM_OK, SOA "    dnssec: {denial-ttl: 172801}\n", &c, err, sizeof err),
	        ZD_EMALFORMED);
	assert_non_null(strstr(err, "zone tld.: dnssec dnskey-ttl"));
	assert_int_equal(parse_zone(HSM_OK,
	                            "    soa: {mname: a.tld., rname: h.tld., ttl: 172801}\n"
	                            "    dnssec: {dnskey-ttl: 60, denial-ttl: 60}\n",
	                            &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "soa ttl 172801"));
	assert_null(c);
	/* a zone that does not sign is not held to it */
	assert_int_equal(parse_zone("",
	                            "    dnssec: {enabled: false, dnskey-ttl: 3d}\n"
	                            "    soa: {mname: a.tld., rname: h.tld., expire: 8640000}\n",
	                            &c, err, sizeof err),
	                 ZD_OK);
	assert_int_equal(c->zones[0].dnssec.dnskey_ttl, 259200);
	zd_config_free(c);
}

static void
config_dnssec_guard_accepts_a_short_lived_test_policy(void **state)
{
	struct zd_config *c = NULL;
	char err[256];
	(void)state;
	/* 1800 - 450 = 1350 >= 600 + 600; 3600 - 60 > 1800; 60 < 3600 */
	assert_int_equal(parse_zone(HSM_OK,
	                            "    dnssec:\n"
	                            "      signature-validity: 1h\n"
	                            "      refresh: 1800\n"
	                            "      jitter: 1m\n"
	                            "      inception-offset: 60\n"
	                            "      max-ttl: 600\n"
	                            "    soa: {mname: a.tld., rname: h.tld., ttl: 600, "
	                            "expire: 600, minimum: 60}\n",
	                            &c, err, sizeof err),
	                 ZD_OK);
	const struct zd_dnssec_config *d = &c->zones[0].dnssec;
	assert_true(d->enabled);
	assert_int_equal(d->validity, 3600);
	assert_int_equal(d->refresh, 1800);
	assert_int_equal(d->jitter, 60);
	assert_int_equal(d->inception_offset, 60);
	assert_int_equal(d->max_ttl, 600);
	assert_int_equal(d->dnskey_ttl, 600);
	assert_int_equal(d->denial_ttl, 60);
	zd_config_free(c);
	c = NULL;
	/* the same with the default inception-offset (1h) is refused */
	assert_int_equal(parse_zone(HSM_OK,
	                            "    dnssec: {signature-validity: 1h, refresh: 1800, jitter: "
	                            "60, max-ttl: 600}\n"
	                            "    soa: {mname: a.tld., rname: h.tld., ttl: 600, "
	                            "expire: 600, minimum: 60}\n",
	                            &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "inception-offset = 3600 s"));
	assert_null(c);
}

static void
config_hsm_is_required_and_checked(void **state)
{
	static const char *const bad[] = {
	        "hsm: {pin-env: ZD_PIN}\n",                                 /* no token-label */
	        "hsm: {token-label: t}\n",                                  /* no PIN source */
	        "hsm: {token-label: t, pin-env: ZD_PIN, pin-file: /pin}\n", /* both */
	        "hsm: {token-label: \"\", pin-env: ZD_PIN}\n",
	        "hsm: {token-label: 123456789012345678901234567890123, pin-env: P}\n",
	        "hsm: {token-label: t, pin-env: \"ZD-PIN\"}\n",
	        "hsm: {token-label: t, pin-env: 1PIN}\n",
	        "hsm: {token-label: t, pin-file: \"\"}\n",
	        "hsm: {token-label: t, pin-env: P, sign-processes: 65}\n",
	        "hsm: {token-label: t, pin-env: P, module: \"\"}\n",
	        "hsm: {token-label: t, pin-env: P, slot: 0}\n",
	        "hsm: {token-label: t, pin-env: P, pin-env: Q}\n",
	        "hsm: on\n",
	        "hsm:\n",
	};
	struct zd_config *c = NULL;
	char err[256];
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(parse_zone(bad[i], SOA, &c, err, sizeof err), ZD_EMALFORMED);
		assert_non_null(strstr(err, "line 2"));
		assert_null(c);
	}
	assert_int_equal(parse_zone(bad[0], SOA, &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "hsm needs a token-label"));
	assert_int_equal(parse_zone(bad[1], SOA, &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "exactly one of pin-file and pin-env"));
	assert_int_equal(parse_zone(bad[2], SOA, &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "exactly one of pin-file and pin-env"));
	assert_int_equal(parse_zone(bad[10], SOA, &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "unknown hsm setting 'slot'"));

	/* a zone that signs needs the token; hsm: may come after the zones */
	assert_int_equal(parse_zone("", SOA "    dnssec: on\n", &c, err, sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "line 5: zone tld. signs but there is no hsm:"));
	assert_null(c);
	assert_int_equal(parse_zone("", SOA "    dnssec: {enabled: false}\n", &c, err, sizeof err),
	                 ZD_OK);
	assert_false(c->has_hsm);
	zd_config_free(c);
	c = NULL;
	assert_int_equal(parse_zone("",
	                            SOA "    dnssec: yes\n"
	                                "hsm:\n  token-label: zonedist\n  pin-file: /etc/pin\n"
	                                "  module: /usr/lib/softhsm/libsofthsm2.so\n"
	                                "  sign-processes: 64\n",
	                            &c, err, sizeof err),
	                 ZD_OK);
	assert_true(c->has_hsm);
	assert_string_equal(c->hsm.token_label, "zonedist");
	assert_string_equal(c->hsm.pin_file, "/etc/pin");
	assert_null(c->hsm.pin_env);
	assert_string_equal(c->hsm.module, "/usr/lib/softhsm/libsofthsm2.so");
	assert_int_equal(c->hsm.sign_processes, 64);
	zd_config_free(c);
	c = NULL;
	/* 32 bytes of label fit; module and sign-processes have defaults */
	assert_int_equal(parse_zone("hsm: {token-label: 12345678901234567890123456789012, "
	                            "pin-env: _ZD_PIN2}\n",
	                            SOA, &c, err, sizeof err),
	                 ZD_OK);
	assert_true(c->has_hsm);
	assert_null(c->hsm.module);
	assert_null(c->hsm.pin_file);
	assert_string_equal(c->hsm.pin_env, "_ZD_PIN2");
	assert_int_equal(c->hsm.sign_processes, 0);
	zd_config_free(c);
}

static void
config_hsm_backup_and_require_backup(void **state)
{
	static const char *const bad[] = {
	        "hsm: {token-label: t, pin-env: P, backup: {pin-env: P}}\n",
	        "hsm: {token-label: t, pin-env: P, backup: {token-label: b}}\n",
	        "hsm: {token-label: t, pin-env: P, backup: {token-label: b, pin-env: P, "
	        "sign-processes: 2}}\n",
	        "hsm: {token-label: t, pin-env: P, backup: {token-label: b, pin-env: P, dir: "
	        "rel}}\n",
	        "hsm: {token-label: t, pin-env: P, backup: {token-label: b, pin-env: P, "
	        "wrap-key: \"\"}}\n",
	        "hsm: {token-label: t, pin-env: P, backup: {token-label: b, pin-env: P, "
	        "backup: {token-label: c, pin-env: P}}}\n",
	        "hsm: {token-label: t, pin-env: P, wrap-key: w}\n",
	        "hsm: {token-label: t, pin-env: P, dir: /d}\n",
	};
	static const char *const why[] = {
	        "hsm backup needs a token-label",
	        "hsm backup needs exactly one of",
	        "unknown hsm backup setting 'sign-processes'",
	        "dir must be an absolute path",
	        "wrap-key must be a key label",
	        "unknown hsm backup setting 'backup'",
	        "unknown hsm setting 'wrap-key'",
	        "unknown hsm setting 'dir'",
	};
	struct zd_config *c = NULL;
	char err[256];
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(parse_zone(bad[i], SOA, &c, err, sizeof err), ZD_EMALFORMED);
		if (strstr(err, why[i]) == NULL)
			fail_msg("%zu: %s", i, err);
		assert_null(c);
	}
	/* require-backup needs the backup token */
	assert_int_equal(parse_zone("hsm: {token-label: t, pin-env: P}\n",
	                            SOA "    dnssec: {keys: {require-backup: true}}\n", &c, err,
	                            sizeof err),
	                 ZD_EMALFORMED);
	assert_non_null(strstr(err, "zone tld. has require-backup but the hsm: section has no "
	                            "backup: token"));
	assert_int_equal(parse_zone("hsm: {token-label: t, pin-env: P, backup: {token-label: b, "
	                            "pin-file: /b.pin, module: /m.so, dir: /var/zd}}\n",
	                            SOA "    dnssec: {keys: {require-backup: true}}\n", &c, err,
	                            sizeof err),
	                 ZD_OK);
	assert_non_null(c->hsm.backup);
	assert_string_equal(c->hsm.backup->token_label, "b");
	assert_string_equal(c->hsm.backup->pin_file, "/b.pin");
	assert_string_equal(c->hsm.backup->module, "/m.so");
	assert_string_equal(c->hsm.backup->dir, "/var/zd");
	assert_string_equal(c->hsm.backup->wrap_key, "zonedist-wrap");
	assert_null(c->hsm.wrap_key);
	assert_true(c->zones[0].dnssec.keys.require_backup);
	zd_config_free(c);
	c = NULL;
	assert_int_equal(parse_zone("hsm: {token-label: t, pin-env: P, backup: {token-label: b, "
	                            "pin-env: Q, wrap-key: twin}}\n",
	                            SOA "    dnssec: on\n", &c, err, sizeof err),
	                 ZD_OK);
	assert_string_equal(c->hsm.backup->wrap_key, "twin");
	assert_null(c->hsm.backup->dir);
	assert_false(c->zones[0].dnssec.keys.require_backup);
	zd_config_free(c);
}

static void
config_offline_ksk_needs_its_token(void **state)
{
	static const char *const bad[][2] = {
	        {"hsm: {token-label: t, pin-env: P}\n",
	         SOA "    dnssec: {keys: {offline-ksk: true}}\n"},
	        {"hsm: {token-label: t, pin-env: P, ksk-token: {pin-env: P}}\n",
	         SOA "    dnssec: on\n"},
	        {"hsm: {token-label: t, pin-env: P, ksk-token: {token-label: k}}\n",
	         SOA "    dnssec: on\n"},
	        {"hsm: {token-label: t, pin-env: P, ksk-token: {token-label: k, pin-env: P, "
	         "wrap-key: w}}\n",
	         SOA "    dnssec: on\n"},
	        {"hsm: {token-label: t, pin-env: P, ksk-token: {token-label: k, pin-env: P, "
	         "ksk-token: {token-label: j, pin-env: P}}}\n",
	         SOA "    dnssec: on\n"},
	        {"hsm: {token-label: t, pin-env: P, ksk-token: {token-label: k, pin-env: P}}\n",
	         SOA "    dnssec: {keys: {offline-ksk: true, bundle-period: 30d, bundle-warn: "
	             "30d}}\n"},
	        {"hsm: {token-label: t, pin-env: P, ksk-token: {token-label: k, pin-env: P}}\n",
	         SOA "    dnssec: {unsign: true, keys: {offline-ksk: true}}\n"},
	        {"hsm: {token-label: t, pin-env: P, ksk-token: {token-label: k, pin-env: P}}\n",
	         SOA "    dnssec: {keys: {offline-ksk: true, bundle-period: 1h}}\n"},
	};
	static const char *const why[] = {
	        "zone tld. has offline-ksk but the hsm: section has no ksk-token:",
	        "hsm ksk-token needs a token-label",
	        "hsm ksk-token needs exactly one of pin-file and pin-env",
	        "unknown hsm ksk-token setting 'wrap-key'",
	        "unknown hsm ksk-token setting 'ksk-token'",
	        "bundle-warn = 2592000 s must be < bundle-period",
	        "unsigning needs the KSK to sign the delete CDS",
	        "bundle-period",
	};
	struct zd_config *c = NULL;
	char err[256];
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(parse_zone(bad[i][0], bad[i][1], &c, err, sizeof err),
		                 ZD_EMALFORMED);
		if (strstr(err, why[i]) == NULL)
			fail_msg("%zu: %s", i, err);
		assert_null(c);
	}
	assert_int_equal(parse_zone("hsm: {token-label: t, pin-env: P, ksk-token: {token-label: k, "
	                            "pin-file: /k.pin, module: /m.so}, backup: {token-label: b, "
	                            "pin-env: Q}}\n",
	                            SOA
	                            "    dnssec: {keys: {offline-ksk: true, bundle-period: 60d, "
	                            "bundle-warn: 7d}}\n",
	                            &c, err, sizeof err),
	                 ZD_OK);
	assert_non_null(c->hsm.ksk_token);
	assert_string_equal(c->hsm.ksk_token->token_label, "k");
	assert_string_equal(c->hsm.ksk_token->pin_file, "/k.pin");
	assert_string_equal(c->hsm.ksk_token->module, "/m.so");
	assert_string_equal(c->hsm.backup->token_label, "b");
	assert_true(c->zones[0].dnssec.keys.offline_ksk);
	assert_int_equal(c->zones[0].dnssec.keys.bundle_period, 60 * 86400);
	assert_int_equal(c->zones[0].dnssec.keys.bundle_warn, 7 * 86400);
	zd_config_free(c);
	c = NULL;
	/* defaults */
	assert_int_equal(parse_zone("hsm: {token-label: t, pin-env: P, ksk-token: {token-label: k, "
	                            "pin-env: P}}\n",
	                            SOA "    dnssec: {keys: {offline-ksk: true}}\n", &c, err,
	                            sizeof err),
	                 ZD_OK);
	assert_int_equal(c->zones[0].dnssec.keys.bundle_period, 90 * 86400);
	assert_int_equal(c->zones[0].dnssec.keys.bundle_warn, 14 * 86400);
	assert_null(c->hsm.backup);
	zd_config_free(c);
}

static void
config_dnssec_defaults_for_absent_off_and_on(void **state)
{
	static const char *const bodies[] = {
	        /* dnssec: before soa: the TTL defaults still come from the SOA */
	        "    dnssec: on\n"
	        "    soa: {mname: a.tld., rname: h.tld., ttl: 7200, minimum: 900}\n",
	        "    dnssec: {}\n"
	        "    soa: {mname: a.tld., rname: h.tld., ttl: 7200, minimum: 900}\n",
	        "    dnssec: {enabled: true}\n"
	        "    soa: {mname: a.tld., rname: h.tld., ttl: 7200, minimum: 900}\n",
	        "    soa: {mname: a.tld., rname: h.tld., ttl: 7200, minimum: 900}\n",
	        "    dnssec: off\n"
	        "    soa: {mname: a.tld., rname: h.tld., ttl: 7200, minimum: 900}\n",
	        "    dnssec: {enabled: False}\n"
	        "    soa: {mname: a.tld., rname: h.tld., ttl: 7200, minimum: 900}\n",
	};
	struct zd_config *c = NULL;
	char err[256];
	(void)state;
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		assert_int_equal(parse_zone(HSM_OK, bodies[i], &c, err, sizeof err), ZD_OK);
		const struct zd_dnssec_config *d = &c->zones[0].dnssec;
		assert_int_equal(d->enabled, i < 3);
		assert_int_equal(d->force_unsign, 0);
		assert_int_equal(d->algorithm, 13);
		assert_int_equal(d->ksk_bits, 0);
		assert_int_equal(d->zsk_bits, 0);
		assert_int_equal(d->denial, ZD_DENIAL_NSEC3);
		assert_int_equal(d->nsec3_opt_out, 1);
		assert_int_equal(d->nsec3_iterations, 0);
		assert_int_equal(d->nsec3_salt_len, 0);
		assert_int_equal(d->validity, 30 * 86400);
		assert_int_equal(d->refresh, 24 * 86400);
		assert_int_equal(d->jitter, 2 * 86400);
		assert_int_equal(d->inception_offset, 3600);
		assert_int_equal(d->dnskey_ttl, 7200);
		assert_int_equal(d->denial_ttl, 900); /* RFC 9077: min(ttl, minimum) */
		assert_int_equal(d->max_ttl, 172800);
		assert_int_equal(d->cds, 0);
		zd_config_free(c);
		c = NULL;
	}
	/* the other way round: ttl is the smaller one */
	assert_int_equal(parse_zone(HSM_OK,
	                            "    soa: {mname: a.tld., rname: h.tld., ttl: 300, "
	                            "minimum: 86400}\n    dnssec: on\n",
	                            &c, err, sizeof err),
	                 ZD_OK);
	assert_int_equal(c->zones[0].dnssec.dnskey_ttl, 300);
	assert_int_equal(c->zones[0].dnssec.denial_ttl, 300);
	zd_config_free(c);
	c = NULL;
	/* RSA gets 2048-bit keys unless told otherwise */
	assert_int_equal(
	        parse_zone(HSM_OK, SOA "    dnssec: {algorithm: RSASHA256}\n", &c, err, sizeof err),
	        ZD_OK);
	assert_int_equal(c->zones[0].dnssec.algorithm, 8);
	assert_int_equal(c->zones[0].dnssec.ksk_bits, 2048);
	assert_int_equal(c->zones[0].dnssec.zsk_bits, 2048);
	zd_config_free(c);
}

static void
config_dnssec_parses_each_setting(void **state)
{
	struct zd_config *c = NULL;
	char err[256];
	(void)state;
	assert_int_equal(parse_zone(HSM_OK,
	                            "    dnssec:\n"
	                            "      enabled: yes\n"
	                            "      algorithm: rsasha256\n"
	                            "      ksk-bits: 4096\n"
	                            "      zsk-bits: 3072\n"
	                            "      denial: NSEC\n"
	                            "      nsec3-opt-out: no\n"
	                            "      nsec3-iterations: 500\n"
	                            "      nsec3-salt: \"DeadBEEF\"\n"
	                            "      signature-validity: 3w\n"
	                            "      refresh: 10d\n"
	                            "      jitter: 12h\n"
	                            "      inception-offset: 90m\n"
	                            "      dnskey-ttl: 1d\n"
	                            "      denial-ttl: 600s\n"
	                            "      max-ttl: 1d\n"
	                            "      cds: on\n"
	                            "      force-unsign: off\n"
	                            "    soa: {mname: a.tld., rname: h.tld., expire: 5d}\n",
	                            &c, err, sizeof err),
	                 ZD_EMALFORMED); /* soa takes plain seconds */
	assert_non_null(strstr(err, "line 23: soa expire"));
	assert_int_equal(parse_zone(HSM_OK,
	                            "    dnssec:\n"
	                            "      enabled: yes\n"
	                            "      algorithm: rsasha256\n"
	                            "      ksk-bits: 4096\n"
	                            "      zsk-bits: 3072\n"
	                            "      denial: NSEC\n"
	                            "      nsec3-opt-out: no\n"
	                            "      nsec3-iterations: 500\n"
	                            "      nsec3-salt: \"DeadBEEF\"\n"
	                            "      signature-validity: 3w\n"
	                            "      refresh: 10d\n"
	                            "      jitter: 12h\n"
	                            "      inception-offset: 90m\n"
	                            "      dnskey-ttl: 1d\n"
	                            "      denial-ttl: 600s\n"
	                            "      max-ttl: 1d\n"
	                            "      cds: on\n"
	                            "      force-unsign: off\n"
	                            "    soa: {mname: a.tld., rname: h.tld., expire: 432000}\n",
	                            &c, err, sizeof err),
	                 ZD_OK);
	const struct zd_dnssec_config *d = &c->zones[0].dnssec;
	const uint8_t salt[] = {0xde, 0xad, 0xbe, 0xef};
	assert_true(d->enabled);
	assert_int_equal(d->algorithm, 8);
	assert_int_equal(d->ksk_bits, 4096);
	assert_int_equal(d->zsk_bits, 3072);
	assert_int_equal(d->denial, ZD_DENIAL_NSEC);
	assert_int_equal(d->nsec3_opt_out, 0);
	assert_int_equal(d->nsec3_iterations, 500);
	assert_int_equal(d->nsec3_salt_len, 4);
	assert_memory_equal(d->nsec3_salt, salt, 4);
	assert_int_equal(d->validity, 21 * 86400);
	assert_int_equal(d->refresh, 10 * 86400);
	assert_int_equal(d->jitter, 12 * 3600);
	assert_int_equal(d->inception_offset, 5400);
	assert_int_equal(d->dnskey_ttl, 86400);
	assert_int_equal(d->denial_ttl, 600);
	assert_int_equal(d->max_ttl, 86400);
	assert_int_equal(d->cds, 1);
	assert_int_equal(d->force_unsign, 0);
	zd_config_free(c);
	c = NULL;
	/* algorithm numbers, other names; "-" and "" are the empty salt */
	static const struct {
		const char *text;
		uint8_t alg;
	} algs[] = {{"8", 8}, {"13", 13}, {"15", 15}, {"Ed25519", 15}, {"ECDSAP256SHA256", 13}};
	char body[256];
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
		snprintf(body, sizeof body,
		         SOA "    dnssec: {algorithm: %s, nsec3-salt: \"%s\", denial: nsec3}\n",
		         algs[i].text, i % 2 ? "-" : "");
		assert_int_equal(parse_zone(HSM_OK, body, &c, err, sizeof err), ZD_OK);
		assert_int_equal(c->zones[0].dnssec.algorithm, algs[i].alg);
		assert_int_equal(c->zones[0].dnssec.nsec3_salt_len, 0);
		assert_int_equal(c->zones[0].dnssec.denial, ZD_DENIAL_NSEC3);
		zd_config_free(c);
		c = NULL;
	}
	/* force-unsign with a map that says enabled: false */
	assert_int_equal(parse_zone("", SOA "    dnssec: {force-unsign: TRUE, enabled: off}\n", &c,
	                            err, sizeof err),
	                 ZD_OK);
	assert_false(c->zones[0].dnssec.enabled);
	assert_true(c->zones[0].dnssec.force_unsign);
	assert_false(c->zones[0].dnssec.unsign);
	zd_config_free(c);
	c = NULL;
	assert_int_equal(
	        parse_zone("", SOA "    dnssec: {unsign: yes}\n" HSM_OK, &c, err, sizeof err),
	        ZD_OK);
	assert_true(c->zones[0].dnssec.enabled);
	assert_true(c->zones[0].dnssec.unsign);
	zd_config_free(c);
}

static void
name_normalize_lowercases_and_adds_one_dot(void **state)
{
	char *s;
	(void)state;
	assert_null(zd_name_normalize("   "));
	s = zd_name_normalize(" Example.TLD ");
	assert_string_equal(s, "example.tld.");
	free(s);
	s = zd_name_normalize("a.b..");
	assert_string_equal(s, "a.b.");
	free(s);
	s = zd_name_normalize(".");
	assert_string_equal(s, ".");
	free(s);
}

static void
ratelimit_drops_past_burst_and_reports_count(void **state)
{
	struct zd_ratelimit rl;
	uint32_t sup = 99;
	(void)state;
	zd_ratelimit_init(&rl, 1000, 2);
	assert_true(zd_ratelimit_ok(&rl, 5000, &sup));
	assert_int_equal(sup, 0);
	assert_true(zd_ratelimit_ok(&rl, 5001, &sup));
	assert_false(zd_ratelimit_ok(&rl, 5002, &sup));
	assert_false(zd_ratelimit_ok(&rl, 5003, &sup));
	assert_true(zd_ratelimit_ok(&rl, 6001, &sup));
	assert_int_equal(sup, 2);
}

static void
check_failed_is_false_for_true_conditions(void **state)
{
	(void)state;
	zd_log_level_set(ZD_LOG_ERROR);
	assert_false(zd_check_failed(1 + 1 == 2));
	assert_true(zd_check_failed(1 + 1 == 3));
}

/* Wire names written out: "\x03www\x03tld\x00" and so on. */
static int
below(const char *name, size_t len, const char *parent, size_t plen)
{
	return zd_name_is_below((const uint8_t *)name, len, (const uint8_t *)parent, plen);
}

static void
name_is_below_needs_whole_labels_and_ignores_case(void **state)
{
	(void)state;
	assert_int_equal(below("\3www\3tld", 9, "\3tld", 5), 1);
	assert_int_equal(below("\3www\3TLD", 9, "\3tld", 5), 1);
	assert_int_equal(below("\1a\3www\3tld", 11, "\3WwW\3tld", 9), 1);
	assert_int_equal(below("\3tld", 5, "", 1), 1);      /* the root is above all */
	assert_int_equal(below("\3tld", 5, "\3tld", 5), 0); /* not strictly */
	assert_int_equal(below("\3tld", 5, "\3www\3tld", 9), 0);
	/* the same octets, but not at a label: "xtld." is not below "tld." */
	assert_int_equal(below("\4xtld", 6, "\3tld", 5), 0);
	assert_int_equal(below("\3www\3xld", 9, "\3tld", 5), 0);
	/* no names: a label past the end, a length over 63, no root label */
	assert_int_equal(below("\7www\3tld", 9, "\3tld", 5), 0);
	assert_int_equal(below("\100www\3tld", 9, "\3tld", 5), 0);
	assert_int_equal(below("\3www\3tld", 9, "\3tl", 4), 0);
	assert_int_equal(below("\3www\3tld", 9, "", 0), 0);
	assert_int_equal(below("\3www\0\3tld", 10, "\3tld", 5), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(strerror_covers_every_code),
	        cmocka_unit_test(name_is_below_needs_whole_labels_and_ignores_case),
	        cmocka_unit_test(buf_refuses_to_grow_past_cap_and_stays_unchanged),
	        cmocka_unit_test(buf_printf_counts_without_nul),
	        cmocka_unit_test(reader_never_reads_past_end),
	        cmocka_unit_test(parse_u64_rejects_junk_overflow_and_range),
	        cmocka_unit_test(sockaddr_parses_v4_v6_and_ports),
	        cmocka_unit_test(prefix_matches_only_inside),
	        cmocka_unit_test(config_rejects_unknown_keys_bad_values_and_dangling_refs),
	        cmocka_unit_test(config_parses_a_full_file),
	        cmocka_unit_test(config_dnssec_rejects_bad_algorithm_and_bits_for_non_rsa),
	        cmocka_unit_test(config_dnssec_rejects_bad_salt_values_and_keys),
	        cmocka_unit_test(config_dnssec_durations_take_suffixes_and_refuse_junk),
	        cmocka_unit_test(config_dnssec_guard_refuses_signatures_that_outlive_nothing),
	        cmocka_unit_test(config_dnssec_guard_accepts_a_short_lived_test_policy),
	        cmocka_unit_test(config_hsm_is_required_and_checked),
	        cmocka_unit_test(config_hsm_backup_and_require_backup),
	        cmocka_unit_test(config_offline_ksk_needs_its_token),
	        cmocka_unit_test(config_dnssec_defaults_for_absent_off_and_on),
	        cmocka_unit_test(config_dnssec_parses_each_setting),
	        cmocka_unit_test(name_normalize_lowercases_and_adds_one_dot),
	        cmocka_unit_test(ratelimit_drops_past_burst_and_reports_count),
	        cmocka_unit_test(check_failed_is_false_for_true_conditions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
