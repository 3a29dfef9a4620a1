/* Unit tests of server/status_page: bar colours from the status document,
 * thresholds from the alarms configuration, escaping, and documents of any
 * shape (the renderer trusts none). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_config.h"
#include "server/status_page.h"

static const struct zd_alarm_config TH = {.lag_versions = 10, .headroom_seconds = 3600};

/* The page for the JSON text doc (NULL: a NULL document), NUL-terminated. */
static char *
render(const char *doc)
{
	json_t *st = doc ? json_loads(doc, 0, NULL) : NULL;
	if (doc)
		assert_non_null(st);
	struct evbuffer *b = evbuffer_new();
	assert_int_equal(status_page_render(st, &TH, b), ZD_OK);
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);
	assert_non_null(s);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	json_decref(st);
	return s;
}

/* The colour of the bar data-bar=kind (and data-secondary=sec when not
 * NULL) in page, or NULL when there is none. */
static const char *
colour(const char *page, const char *kind, const char *sec)
{
	static char out[16];
	char want[256];
	snprintf(want, sizeof want, "data-bar=\"%s\"", kind);
	for (const char *p = page; (p = strstr(p, "<span class=\"bar ")) != NULL; p++) {
		const char *end = strchr(p, '>');
		const char *k = strstr(p, want);
		if (k == NULL || k > end)
			continue;
		if (sec) {
			char ws[256];
			snprintf(ws, sizeof ws, "data-secondary=\"%s\"", sec);
			const char *s = strstr(p, ws);
			if (s == NULL || s > end)
				continue;
		}
		const char *c = p + strlen("<span class=\"bar ");
		size_t n = strcspn(c, "\"");
		snprintf(out, sizeof out, "%.*s", (int)n, c);
		return out;
	}
	return NULL;
}

struct want {
	const char *kind, *secondary, *colour;
};

/* Every bar of w (ended by a NULL kind) has its colour in page. */
static void
expect(const char *page, const struct want *w)
{
	for (; w->kind; w++) {
		const char *c = colour(page, w->kind, w->secondary);
		if (c == NULL || strcmp(c, w->colour) != 0)
			fail_msg("bar %s %s: %s, not %s", w->kind, w->secondary ? w->secondary : "",
			         c ? c : "missing", w->colour);
	}
}

static void
any_shape_gives_a_whole_page(void **state)
{
	(void)state;
	const char *docs[] = {
	        NULL,
	        "{}",
	        "[]",
	        "{\"zones\": 5}",
	        "{\"zones\": [1, \"x\", null]}",
	        "{\"zones\": [{\"zone\": 7, \"serial\": \"x\", \"secondaries\": {}}]}"};
	for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
		char *p = render(docs[i]);
		assert_non_null(strstr(p, "<!DOCTYPE html>"));
		assert_non_null(strstr(p, "</html>\n"));
		free(p);
	}
}

static void
healthy_signed_zone_is_green(void **state)
{
	(void)state;
	char *p =
	        render("{\"time_ms\": 1000000, \"database\": {\"up\": true, \"operator_up\": true},"
	               " \"zones\": [{\"zone\": \"tld.\", \"serial\": 7, \"signed\": true,"
	               " \"held\": false, \"last_latency_ms\": 40, \"pending_changes\": 0,"
	               " \"hsm\": {\"state\": \"ok\"}, \"keys\": {\"algorithm\": 13,"
	               " \"ksk_tag\": 1, \"zsk_tag\": 2}, \"signature_headroom\": {\"seconds\":"
	               " 86400}, \"secondaries\": [{\"address\": \"192.0.2.1@53\", \"lag\": 0,"
	               " \"last_serial\": 7, \"probe\": {\"reachable\": true, \"serial\": 7,"
	               " \"lag\": 0}}]}]}");
	expect(p, (const struct want[]){{"latency", NULL, "green"},
	                                {"signatures", NULL, "green"},
	                                {"keys", NULL, "green"},
	                                {"hsm", NULL, "green"},
	                                {"database", NULL, "green"},
	                                {"secondary", "192.0.2.1@53", "green"},
	                                {NULL, NULL, NULL}});
	assert_non_null(strstr(p, "data-zone=\"tld.\""));
	free(p);
}

#define ROLL_DOC(clock)                                                                            \
	"{\"zones\": [{\"zone\": \"tld.\", \"signed\": true, \"keys\": {\"algorithm\": 13,"        \
	" \"ksk_tag\": 1, \"zsk_tag\": 2, \"clock\": " clock ", \"zsk_other\": {\"tag\": 3,"       \
	" \"state\": \"published\"}, \"zsk_next\": {\"step\": \"activate\", \"at\": 100000}}}]}"

static void
zsk_rollover_shows_on_the_keys_bar(void **state)
{
	(void)state;
	char *p = render(ROLL_DOC("90000")); /* due in the future */
	expect(p, (const struct want[]){{"keys", NULL, "green"}, {NULL, NULL, NULL}});
	assert_non_null(strstr(p, "ZSK 3 published"));
	assert_non_null(strstr(p, "next step activate in"));
	free(p);
	p = render("{\"zones\": [{\"zone\": \"tld.\", \"signed\": true, \"keys\":"
	           " {\"algorithm\": 13, \"ksk_tag\": 1, \"zsk_tag\": 2}, \"parent_ds\":"
	           " {\"state\": \"mismatch\", \"error\": \"192.0.2.1: 1 DS records\"}}]}");
	expect(p, (const struct want[]){{"keys", NULL, "red"}, {NULL, NULL, NULL}});
	assert_non_null(strstr(p, "parent DS: mismatch"));
	free(p);
	p = render(ROLL_DOC("103601")); /* not made an hour after it was due */
	expect(p, (const struct want[]){{"keys", NULL, "yellow"}, {NULL, NULL, NULL}});
	assert_non_null(strstr(p, "activate step is overdue"));
	free(p);
}

static void
thresholds_and_failures_colour_the_bars(void **state)
{
	(void)state;
	char *p = render(
	        "{\"database\": {\"up\": true, \"operator_up\": false}, \"zones\": ["
	        " {\"zone\": \"a.\", \"signed\": true, \"held\": \"sanity\","
	        "  \"hsm\": {\"state\": \"down\", \"down_for_ms\": 5000},"
	        "  \"signature_headroom\": {\"seconds\": 100}, \"secondaries\": ["
	        "  {\"address\": \"s1\", \"probe\": {\"reachable\": false, \"error\": \"x\"}},"
	        "  {\"address\": \"s2\", \"probe\": {\"reachable\": true, \"serial\": 3,"
	        "   \"lag\": 11}},"
	        "  {\"address\": \"s3\", \"probe\": {\"reachable\": true, \"serial\": 3,"
	        "   \"lag\": 10}, \"check\": {\"severity\": 2, \"state\": \"diverged\"}},"
	        "  {\"address\": \"s4\", \"probe\": {\"reachable\": true, \"serial\": 3,"
	        "   \"lag\": null}},"
	        "  {\"address\": \"s5\", \"probe\": null, \"last_serial\": 3, \"lag\": 10},"
	        "  {\"address\": \"s6\"}]},"
	        " {\"zone\": \"b.\", \"signed\": true, \"held\": false,"
	        "  \"last_latency_ms\": 40000, \"signature_headroom\": {\"seconds\": -1}},"
	        " {\"zone\": \"c.\", \"signed\": false, \"held\": false,"
	        "  \"last_latency_ms\": 6000}]}");
	/* zone a: its bars come first in the page */
	expect(p, (const struct want[]){{"latency", NULL, "red"},
	                                {"signatures", NULL, "yellow"},
	                                {"hsm", NULL, "red"},
	                                {"keys", NULL, "grey"},
	                                {"database", NULL, "yellow"},
	                                {"secondary", "s1", "red"},
	                                {"secondary", "s2", "yellow"},
	                                {"secondary", "s3", "red"},
	                                {"secondary", "s4", "yellow"},
	                                {"secondary", "s5", "green"},
	                                {"secondary", "s6", "grey"},
	                                {NULL, NULL, NULL}});
	const char *b = strstr(p, "data-zone=\"b.\"");
	assert_non_null(b);
	assert_string_equal(colour(b, "latency", NULL), "red");
	assert_string_equal(colour(b, "signatures", NULL), "red");
	const char *c = strstr(p, "data-zone=\"c.\"");
	assert_non_null(c);
	assert_string_equal(colour(c, "latency", NULL), "yellow");
	assert_string_equal(colour(c, "signatures", NULL), "grey");
	assert_string_equal(colour(c, "hsm", NULL), "grey");
	free(p);
}

static void
every_string_is_escaped(void **state)
{
	(void)state;
	char *p = render("{\"database\": {\"up\": false}, \"zones\": [{\"zone\": \"<z>&\","
	                 " \"held\": \"operator\", \"held_by\": \"\\\"a'\", \"held_reason\":"
	                 " \"<script>x</script>\", \"secondaries\": [{\"address\": \"\\\"><i>\","
	                 " \"probe\": {\"reachable\": false, \"error\": \"<b>\"}}]}]}");
	assert_null(strstr(p, "<script>"));
	assert_null(strstr(p, "<z>"));
	assert_null(strstr(p, "<i>"));
	assert_null(strstr(p, "<b>\""));
	assert_non_null(strstr(p, "&lt;script&gt;x&lt;/script&gt;"));
	assert_non_null(strstr(p, "data-zone=\"&lt;z&gt;&amp;\""));
	assert_non_null(strstr(p, "&quot;a&#39;"));
	assert_non_null(strstr(p, "data-secondary=\"&quot;&gt;&lt;i&gt;\""));
	assert_string_equal(colour(p, "database", NULL), "red");
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(any_shape_gives_a_whole_page),
	        cmocka_unit_test(healthy_signed_zone_is_green),
	        cmocka_unit_test(thresholds_and_failures_colour_the_bars),
	        cmocka_unit_test(zsk_rollover_shows_on_the_keys_bar),
	        cmocka_unit_test(every_string_is_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
