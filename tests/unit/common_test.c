/* Unit tests of common/: errors, bounded buffers and readers, checked parsing,
 * configuration, rate limits.  Failure paths first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(strerror_covers_every_code),
	        cmocka_unit_test(buf_refuses_to_grow_past_cap_and_stays_unchanged),
	        cmocka_unit_test(buf_printf_counts_without_nul),
	        cmocka_unit_test(reader_never_reads_past_end),
	        cmocka_unit_test(parse_u64_rejects_junk_overflow_and_range),
	        cmocka_unit_test(sockaddr_parses_v4_v6_and_ports),
	        cmocka_unit_test(prefix_matches_only_inside),
	        cmocka_unit_test(config_rejects_unknown_keys_bad_values_and_dangling_refs),
	        cmocka_unit_test(config_parses_a_full_file),
	        cmocka_unit_test(name_normalize_lowercases_and_adds_one_dot),
	        cmocka_unit_test(ratelimit_drops_past_burst_and_reports_count),
	        cmocka_unit_test(check_failed_is_false_for_true_conditions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
