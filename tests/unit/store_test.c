/* Unit tests of server/store: versions, walks, differences, deltas, aborts,
 * canonical order.  Failure paths first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_log.h"
#include "common/zd_buf.h"
#include "server/store.h"

/* --- helpers --------------------------------------------------------- */

static ldns_rr *
rr(const char *text)
{
	ldns_rr *r = NULL;
	assert_int_equal(ldns_rr_new_frm_str(&r, text, 3600, NULL, NULL), LDNS_STATUS_OK);
	ldns_rr2canonical(r);
	return r;
}

static ldns_rdf *
dname(const char *text)
{
	ldns_rdf *d = NULL;
	assert_int_equal(ldns_str2rdf_dname(&d, text), LDNS_STATUS_OK);
	return d;
}

/* Put the RRset of the given records (all the same owner/type). */
static void
put(struct store_txn *t, const char *const *texts, size_t n)
{
	ldns_rr_list *l = ldns_rr_list_new();
	for (size_t i = 0; i < n; i++)
		ldns_rr_list_push_rr(l, rr(texts[i])); /* l owns it */
	ldns_rr *first = ldns_rr_list_rr(l, 0);
	assert_int_equal(
	        store_txn_rrset_put(t, ldns_rr_owner(first), ldns_rr_get_type(first), 0, l), ZD_OK);
	ldns_rr_list_deep_free(l);
}

static void
put1(struct store_txn *t, const char *text)
{
	put(t, &text, 1);
}

static void
del(struct store_txn *t, const char *owner, ldns_rr_type type)
{
	ldns_rdf *o = dname(owner);
	assert_int_equal(store_txn_rrset_put(t, o, type, 0, NULL), ZD_OK);
	ldns_rdf_deep_free(o);
}

static void
soa(struct store_txn *t, uint32_t serial)
{
	char text[200];
	snprintf(text, sizeof text,
	         "tld. 3600 IN SOA ns.nic.tld. hm.nic.tld. %u 3600 600 86400 300", serial);
	put1(t, text);
}

/* Collected text of RRs, one per line, in emission order. */
struct text {
	char buf[1 << 16];
	size_t len;
	size_t count;
};

static zd_err
collect(void *arg, const ldns_rr *r)
{
	struct text *t = arg;
	char *s = ldns_rr2str(r);
	size_t n = strlen(s);
	assert_true(t->len + n < sizeof t->buf);
	memcpy(t->buf + t->len, s, n + 1);
	t->len += n;
	t->count++;
	free(s);
	return ZD_OK;
}

static zd_err
collect_owner(void *arg, const ldns_rr *r)
{
	ldns_rr_list *l = arg;
	ldns_rr_list_push_rr(l, ldns_rr_clone(r)); /* l owns the clone */
	return ZD_OK;
}

static void
walk_all(struct store *s, uint64_t v, struct text *out, size_t chunk)
{
	struct store_cursor c = STORE_CURSOR_INIT;
	memset(out, 0, sizeof *out);
	while (!c.done)
		assert_int_equal(store_walk(s, v, &c, chunk, collect, out), ZD_OK);
}

/* Version 1: SOA 1, apex NS, two delegations with glue. */
static struct store *
zone_v1(void)
{
	struct store *s = NULL;
	struct store_txn *t = NULL;
	assert_int_equal(store_new("tld.", &s), ZD_OK);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	assert_int_equal(store_txn_version_get(t), 1);
	soa(t, 1);
	put1(t, "tld. 86400 IN NS ns.nic.tld.");
	const char *ns_a[] = {"a.tld. 86400 IN NS ns2.a.tld.", "a.tld. 86400 IN NS ns1.a.tld."};
	put(t, ns_a, 2);
	put1(t, "ns1.a.tld. 86400 IN A 192.0.2.1");
	put1(t, "ns2.a.tld. 86400 IN A 192.0.2.2");
	put1(t, "b.tld. 86400 IN NS ns.example.net.");
	put1(t, "b.tld. 3600 IN DS 1 13 2 aabbccdd");
	assert_int_equal(store_txn_publish(&t, 1, 1000), ZD_OK);
	assert_null(t);
	return s;
}

/* --- tests ------------------------------------------------------------ */

/* A taker: text like collect(), then the RR is its own to free; fails
 * (ZD_ELIMIT) at its stop'th RR when stop is set. */
struct taken {
	struct text t;
	size_t stop;
};

static zd_err
take(void *arg, ldns_rr *r)
{
	struct taken *k = arg;
	zd_err e = k->stop != 0 && k->t.count + 1 == k->stop ? ZD_ELIMIT : collect(&k->t, r);
	ldns_rr_free(r);
	return e;
}

/* Concatenated wire forms: of lent RRs (ldns_rr2wire) or of kept records. */
struct wire {
	uint8_t buf[1 << 16];
	size_t len;
};

static zd_err
wire_of_rr(void *arg, const ldns_rr *r)
{
	struct wire *w = arg;
	uint8_t *d = NULL;
	size_t n = 0;
	assert_int_equal(ldns_rr2wire(&d, r, LDNS_SECTION_ANSWER, &n), LDNS_STATUS_OK);
	assert_true(w->len + n <= sizeof w->buf);
	memcpy(w->buf + w->len, d, n);
	w->len += n;
	free(d);
	return ZD_OK;
}

/* Names and types from store_names_types_walk(), one line per name. */
struct named {
	char buf[1 << 14];
	size_t len;
	size_t count;
	struct store *s;
	uint64_t v;
	struct taken *k; /* the records of each name, taken, appended here */
};

static zd_err
name_and_types(void *arg, const ldns_rdf *name, const uint16_t *types, size_t n_types)
{
	struct named *nm = arg;
	uint16_t want[16];
	size_t n_want = 0;
	/* the same types store_name_types() gives (the walk's lock is a read
	 * lock; this test has no writer) */
	assert_int_equal(store_name_types(nm->s, nm->v, name, want, 16, &n_want), ZD_OK);
	assert_int_equal(n_types, n_want);
	assert_memory_equal(types, want, n_types * sizeof *types);
	char *t = ldns_rdf2str(name);
	int w = snprintf(nm->buf + nm->len, sizeof nm->buf - nm->len, "%s %zu\n", t, n_types);
	free(t);
	assert_true(w > 0 && (size_t)w < sizeof nm->buf - nm->len);
	nm->len += (size_t)w;
	nm->count++;
	return ZD_OK;
}

static void
walks_of_types_taken_records_and_wire_match_a_lending_walk(void **state)
{
	struct store *s = zone_v1();
	struct text lent;
	static struct taken k;
	static struct named nm;
	(void)state;
	walk_all(s, 1, &lent, 100);
	assert_int_equal(lent.count, 8);
	/* Names with their types at every chunk size; each name's records
	 * taken one name at a time are the lending walk's, in order. */
	for (size_t chunk = 1; chunk <= 5; chunk += 4) {
		struct store_cursor c = STORE_CURSOR_INIT;
		memset(&nm, 0, sizeof nm);
		nm.s = s;
		nm.v = 1;
		while (!c.done)
			assert_int_equal(
			        store_names_types_walk(s, 1, &c, chunk, name_and_types, &nm),
			        ZD_OK);
		assert_int_equal(nm.count, 5);
		assert_string_equal(nm.buf, "tld. 2\na.tld. 1\nns1.a.tld. 1\nns2.a.tld. 1\n"
		                            "b.tld. 2\n");
	}
	memset(&k, 0, sizeof k);
	const char *owners[] = {"tld.", "a.tld.", "ns1.a.tld.", "ns2.a.tld.", "b.tld."};
	for (size_t i = 0; i < 5; i++) {
		ldns_rdf *o = dname(owners[i]);
		assert_int_equal(store_name_rrs_take(s, 1, o, take, &k), ZD_OK);
		ldns_rdf_deep_free(o);
	}
	assert_int_equal(k.t.count, lent.count);
	assert_string_equal(k.t.buf, lent.buf);
	/* A failing taker stops with its error (and owned what it got). */
	memset(&k, 0, sizeof k);
	k.stop = 2;
	ldns_rdf *deleg = dname("a.tld.");
	assert_int_equal(store_name_rrs_take(s, 1, deleg, take, &k), ZD_ELIMIT);
	assert_int_equal(k.t.count, 1);
	assert_int_equal(store_name_rrs_take(s, 9, deleg, take, &k), ZD_ENOTFOUND);
	ldns_rdf_deep_free(deleg);
	struct store_cursor c = STORE_CURSOR_INIT;
	assert_int_equal(store_names_types_walk(s, 9, &c, 10, name_and_types, &nm), ZD_ENOTFOUND);

	/* The wire walk: byte for byte the wire form of the lent RRs, in order,
	 * at every chunk size, on a version with changes since the first. */
	struct store_txn *t = NULL;
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	soa(t, 2);
	put1(t, "c.tld. 7200 IN NS ns.example.org.");
	put1(t, "b.tld. 3600 IN DS 2 13 2 eeff0011");
	assert_int_equal(store_txn_publish(&t, 2, 2000), ZD_OK);
	for (uint64_t v = 1; v <= 2; v++)
		for (size_t chunk = 1; chunk <= 7; chunk += 3) {
			static struct wire a;
			struct zd_buf b;
			struct store_cursor ca = STORE_CURSOR_INIT, cb = STORE_CURSOR_INIT;
			memset(&a, 0, sizeof a);
			zd_buf_init(&b, sizeof a.buf);
			while (!ca.done)
				assert_int_equal(store_walk(s, v, &ca, chunk, wire_of_rr, &a),
				                 ZD_OK);
			while (!cb.done)
				assert_int_equal(store_walk_wire(s, v, &cb, chunk, &b), ZD_OK);
			assert_true(a.len > 100);
			assert_int_equal(a.len, b.len);
			assert_memory_equal(a.buf, b.data, a.len);
			zd_buf_clear(&b);
		}
	struct store_cursor cw = STORE_CURSOR_INIT;
	struct zd_buf w;
	zd_buf_init(&w, 1024);
	assert_int_equal(store_walk_wire(s, 3, &cw, 10, &w), ZD_ENOTFOUND);
	zd_buf_clear(&w);
	store_free(s);
}

static void
reading_an_unknown_version_is_not_found(void **state)
{
	struct store *s = zone_v1();
	struct store_cursor c = STORE_CURSOR_INIT;
	struct text t;
	uint64_t v = 99;
	uint32_t serial = 7;
	(void)state;
	assert_int_equal(store_walk(s, 2, &c, 10, collect, &t), ZD_ENOTFOUND);
	assert_int_equal(store_walk(s, 0, &c, 10, collect, &t), ZD_ENOTFOUND);
	assert_int_equal(store_version_find(s, 42, &v), ZD_ENOTFOUND);
	assert_int_equal(v, 99);
	assert_int_equal(store_serial_find(s, 5, &serial), ZD_ENOTFOUND);
	assert_int_equal(serial, 7);
	assert_int_equal(store_diff(s, 1, 2, 100, collect, collect, &t), ZD_ENOTFOUND);
	store_free(s);
}

static void
delta_apply_rejects_garbage_and_absent_deletions(void **state)
{
	struct store *s = zone_v1();
	struct store_txn *t = NULL;
	const uint8_t junk[] = {3, 'a', 'b'};
	(void)state;
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	assert_int_equal(store_txn_delta_apply(t, junk, sizeof junk), ZD_EMALFORMED);
	store_txn_abort(&t);

	/* A delta that deletes a record the store does not have. */
	struct store *other = zone_v1();
	struct store_txn *t2 = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;
	assert_int_equal(store_txn_begin(other, &t2), ZD_OK);
	soa(t2, 2);
	del(t2, "b.tld.", LDNS_RR_TYPE_DS);
	assert_int_equal(store_txn_delta_wire(t2, &wire, &len), ZD_OK);
	store_txn_abort(&t2);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	del(t, "b.tld.", LDNS_RR_TYPE_DS);
	assert_int_equal(store_txn_delta_apply(t, wire, len), ZD_EMALFORMED);
	store_txn_abort(&t);
	free(wire);
	store_free(other);
	/* a whole zone (one SOA, all additions) applies to an empty store
	 * only: on one with versions it would leave two SOAs */
	struct store *empty = NULL;
	struct store_txn *t3 = NULL;
	assert_int_equal(store_new("tld.", &empty), ZD_OK);
	assert_int_equal(store_txn_begin(empty, &t3), ZD_OK);
	soa(t3, 7);
	put1(t3, "z.tld. 60 IN NS ns.example.");
	assert_int_equal(store_txn_delta_wire(t3, &wire, &len), ZD_OK);
	store_txn_abort(&t3);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	assert_int_equal(store_txn_delta_apply(t, wire, len), ZD_EMALFORMED);
	store_txn_abort(&t);
	assert_int_equal(store_txn_begin(empty, &t3), ZD_OK);
	assert_int_equal(store_txn_delta_apply(t3, wire, len), ZD_OK);
	store_txn_abort(&t3);
	free(wire);
	store_free(empty);
	store_free(s);
}

static void
delta_wire_refuses_a_version_without_a_new_soa(void **state)
{
	struct store *s = zone_v1();
	struct store_txn *t = NULL;
	uint8_t *wire = (uint8_t *)"x";
	size_t len = 5;
	(void)state;
	zd_log_level_set(ZD_LOG_ERROR + 0); /* the check logs; keep it quiet */
	zd_log_fd_set(-1);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	put1(t, "c.tld. 86400 IN NS ns.example.net.");
	assert_int_equal(store_txn_delta_wire(t, &wire, &len), ZD_EBUG);
	assert_int_equal(len, 5);
	zd_log_fd_set(2);
	store_txn_abort(&t);
	store_free(s);
}

static void
walk_yields_soa_first_then_canonical_order(void **state)
{
	struct store *s = zone_v1();
	struct text t;
	(void)state;
	walk_all(s, 1, &t, 1);
	assert_int_equal(t.count, 8);
	/* SOA first, then the apex NS, a.tld. before its glue, b.tld. last. */
	const char *p_soa = strstr(t.buf, "SOA"), *p_a = strstr(t.buf, "\na.tld.");
	const char *p_ns1 = strstr(t.buf, "ns1.a.tld.\t"), *p_b = strstr(t.buf, "\nb.tld.");
	assert_true(strncmp(t.buf, "tld.", 4) == 0 && p_soa < p_a);
	assert_non_null(p_a);
	assert_non_null(p_ns1);
	assert_non_null(p_b);
	assert_true(p_a < p_ns1 && p_ns1 < p_b);
	struct text big;
	walk_all(s, 1, &big, 1000);
	assert_string_equal(big.buf, t.buf); /* chunking does not change the result */
	store_free(s);
}

static void
canonical_order_matches_ldns_dname_compare(void **state)
{
	const char *names[] = {"tld.",       "z.tld.",     "a.tld.",    "A.b.tld.",   "b.tld.",
	                       "\\000.tld.", "\\001.tld.", "-.tld.",    "aa.tld.",    "a\\000.tld.",
	                       "ab.a.tld.",  "\\255.tld.", "zz.a.tld.", "\\001x.tld."};
	size_t n = sizeof names / sizeof names[0];
	struct store *s = NULL;
	struct store_txn *t = NULL;
	(void)state;
	assert_int_equal(store_new("tld.", &s), ZD_OK);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	soa(t, 1);
	for (size_t i = 1; i < n; i++) {
		char text[128];
		snprintf(text, sizeof text, "%s 60 IN TXT \"%zu\"", names[i], i);
		put1(t, text);
	}
	assert_int_equal(store_txn_publish(&t, 1, 0), ZD_OK);
	ldns_rr_list *got = ldns_rr_list_new();
	struct store_cursor c = STORE_CURSOR_INIT;
	while (!c.done)
		assert_int_equal(store_walk(s, 1, &c, 3, collect_owner, got), ZD_OK);
	assert_int_equal(ldns_rr_list_rr_count(got), n);
	for (size_t i = 1; i < n; i++) {
		const ldns_rdf *a = ldns_rr_owner(ldns_rr_list_rr(got, i - 1));
		const ldns_rdf *b = ldns_rr_owner(ldns_rr_list_rr(got, i));
		assert_true(ldns_dname_compare(a, b) < 0);
	}
	ldns_rr_list_deep_free(got);
	store_free(s);
}

static void
versions_keep_every_state(void **state)
{
	struct store *s = zone_v1();
	struct store_txn *t = NULL;
	struct text v1, v2, again;
	uint64_t v;
	(void)state;
	walk_all(s, 1, &v1, 100);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	soa(t, 2);
	const char *ns_a[] = {"a.tld. 86400 IN NS ns1.a.tld."};
	put(t, ns_a, 1);                               /* NS change */
	del(t, "ns2.a.tld.", LDNS_RR_TYPE_A);          /* glue gone */
	del(t, "b.tld.", LDNS_RR_TYPE_DS);             /* DS removed */
	put1(t, "c.tld. 86400 IN NS ns.example.net."); /* new delegation */
	assert_int_equal(store_txn_changes_get(t), 5);
	/* readers still see version 1 only */
	assert_int_equal(store_published_get(s), 1);
	walk_all(s, 1, &again, 100);
	assert_string_equal(again.buf, v1.buf);
	assert_int_equal(store_txn_publish(&t, 2, 2000), ZD_OK);
	assert_int_equal(store_published_get(s), 2);
	walk_all(s, 2, &v2, 100);
	assert_int_equal(v2.count, 6);
	assert_null(strstr(v2.buf, "ns2.a.tld.\t"));
	assert_null(strstr(v2.buf, "DS"));
	assert_non_null(strstr(v2.buf, "c.tld."));
	walk_all(s, 1, &again, 100);
	assert_string_equal(again.buf, v1.buf); /* version 1 unchanged */
	assert_int_equal(store_version_find(s, 2, &v), ZD_OK);
	assert_int_equal(v, 2);
	assert_int_equal(store_version_find(s, 1, &v), ZD_OK);
	assert_int_equal(v, 1);
	store_free(s);
}

static void
diff_lists_exactly_the_changed_records(void **state)
{
	struct store *s = zone_v1();
	struct store_txn *t = NULL;
	struct text dels, adds;
	(void)state;
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	soa(t, 2);
	const char *ns_a[] = {"a.tld. 86400 IN NS ns1.a.tld.", "a.tld. 86400 IN NS ns3.a.tld."};
	put(t, ns_a, 2);
	put1(t, "ns3.a.tld. 86400 IN A 192.0.2.3");
	assert_int_equal(store_txn_publish(&t, 2, 0), ZD_OK);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	soa(t, 3);
	del(t, "b.tld.", LDNS_RR_TYPE_DS);
	assert_int_equal(store_txn_publish(&t, 3, 0), ZD_OK);

	memset(&dels, 0, sizeof dels);
	assert_int_equal(store_diff(s, 1, 3, 100, collect, collect, &dels), ZD_OK);
	/* one sink for both: SOA 1 (del), SOA 3 (add), NS ns2 (del), ns3 (add), A ns3, DS */
	assert_int_equal(dels.count, 6);
	assert_non_null(strstr(dels.buf, " 1 3600 600"));
	assert_non_null(strstr(dels.buf, " 3 3600 600"));
	assert_null(strstr(dels.buf, " 2 3600 600")); /* condensed: no intermediate SOA */
	assert_non_null(strstr(dels.buf, "ns2.a.tld."));
	assert_non_null(strstr(dels.buf, "ns3.a.tld.\t86400\tIN\tA"));
	assert_null(strstr(dels.buf, "ns1.a.tld."));       /* unchanged record not listed */
	assert_int_equal(strncmp(dels.buf, "tld.", 4), 0); /* SOA first */
	/* a budget smaller than the difference is refused, not truncated */
	memset(&adds, 0, sizeof adds);
	assert_int_equal(store_diff(s, 1, 3, 3, collect, collect, &adds), ZD_ELIMIT);
	store_free(s);
}

static void
abort_restores_the_published_state(void **state)
{
	struct store *s = zone_v1();
	struct store_txn *t = NULL;
	struct text before, after;
	struct store_stats st0, st1;
	(void)state;
	walk_all(s, 1, &before, 100);
	store_stats_get(s, &st0);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	soa(t, 2);
	del(t, "b.tld.", LDNS_RR_TYPE_NS);
	put1(t, "d.tld. 60 IN NS ns.example.net.");
	const char *ns_a[] = {"a.tld. 86400 IN NS x.example."};
	put(t, ns_a, 1);
	put(t, ns_a, 1);
	store_txn_abort(&t);
	assert_null(t);
	walk_all(s, 1, &after, 100);
	assert_string_equal(after.buf, before.buf);
	store_stats_get(s, &st1);
	assert_int_equal(st1.rrsets_live, st0.rrsets_live);
	assert_int_equal(st1.rrsets_total, st0.rrsets_total);
	/* the next txn builds the same version number again */
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	assert_int_equal(store_txn_version_get(t), 2);
	store_txn_abort(&t);
	store_free(s);
}

static void
unchanged_and_repeated_puts_record_only_the_net_change(void **state)
{
	struct store *s = zone_v1();
	struct store_txn *t = NULL;
	(void)state;
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	const char *same[] = {"a.tld. 86400 IN NS ns1.a.tld.", "a.tld. 86400 IN NS ns2.a.tld.",
	                      "a.tld. 86400 IN NS NS2.a.tld."};
	put(t, same, 3); /* same set, another order, a duplicate */
	assert_int_equal(store_txn_changes_get(t), 0);
	put1(t, "b.tld. 86400 IN NS other.example.");
	put1(t, "b.tld. 86400 IN NS ns.example.net."); /* back to the published one */
	assert_int_equal(store_txn_changes_get(t), 0);
	del(t, "b.tld.", LDNS_RR_TYPE_DS);
	put1(t, "b.tld. 3600 IN DS 1 13 2 aabbccdd"); /* delete then restore */
	assert_int_equal(store_txn_changes_get(t), 0);
	del(t, "nothere.tld.", LDNS_RR_TYPE_NS);
	assert_int_equal(store_txn_changes_get(t), 0);
	put1(t, "b.tld. 300 IN DS 1 13 2 aabbccdd"); /* TTL change is a change */
	assert_int_equal(store_txn_changes_get(t), 1);
	store_txn_abort(&t);
	store_free(s);
}

/* A second put of an RRset the txn added fits in place: one change, the
 * last contents published, an abort restores the published state. */
static void
rewrites_in_one_txn_keep_one_change_and_the_last_contents(void **state)
{
	struct store *s = zone_v1();
	struct store_txn *t = NULL;
	struct text v2, v1;
	(void)state;
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	put1(t, "b.tld. 86400 IN NS xx.example.net.");
	put1(t, "b.tld. 86400 IN NS ns.example.net."); /* same length, back to published */
	assert_int_equal(store_txn_changes_get(t), 0);
	put1(t, "b.tld. 86400 IN NS xx.example.net.");
	put1(t, "b.tld. 300 IN NS yy.example.net."); /* in place: TTL and data */
	put1(t, "b.tld. 300 IN NS z.example.net.");  /* shorter: in place too */
	put1(t, "zz.tld. 86400 IN NS ns1.example.net.");
	put1(t, "zz.tld. 86400 IN NS ns2.example.net."); /* new RRset rewritten */
	assert_int_equal(store_txn_changes_get(t), 2);
	store_txn_abort(&t);
	walk_all(s, 1, &v1, 100);
	assert_non_null(strstr(v1.buf, "ns.example.net."));
	assert_null(strstr(v1.buf, "zz.tld."));
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	soa(t, 2);
	put1(t, "b.tld. 86400 IN NS xx.example.net.");
	put1(t, "b.tld. 300 IN NS z.example.net.");
	put1(t, "zz.tld. 86400 IN NS ns1.example.net.");
	put1(t, "zz.tld. 86400 IN NS ns2.example.net.");
	assert_int_equal(store_txn_changes_get(t), 3);
	assert_int_equal(store_txn_publish(&t, 2, 0), ZD_OK);
	walk_all(s, 2, &v2, 100);
	assert_non_null(strstr(v2.buf, "b.tld.\t300\tIN\tNS\tz.example.net."));
	assert_null(strstr(v2.buf, "xx.example.net."));
	assert_non_null(strstr(v2.buf, "ns2.example.net."));
	assert_null(strstr(v2.buf, "ns1.example.net."));
	walk_all(s, 1, &v1, 100);
	assert_non_null(strstr(v1.buf, "b.tld.\t86400\tIN\tNS\tns.example.net."));
	assert_null(strstr(v1.buf, "zz.tld."));
	store_free(s);
}

static void
name_set_replaces_all_but_kept_types(void **state)
{
	struct store *s = zone_v1();
	struct store_txn *t = NULL;
	struct text v2;
	(void)state;
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	soa(t, 2);
	ldns_rr_list *l = ldns_rr_list_new();
	ldns_rr_list_push_rr(l, rr("b.tld. 86400 IN NS ns9.example.net.")); /* l owns it */
	ldns_rdf *o = dname("b.tld.");
	/* keep nothing: DS goes, NS replaced */
	assert_int_equal(store_txn_name_set(t, o, l, NULL), ZD_OK);
	assert_int_equal(store_txn_changes_get(t), 3);
	assert_int_equal(store_txn_publish(&t, 2, 0), ZD_OK);
	walk_all(s, 2, &v2, 100);
	assert_null(strstr(v2.buf, "DS"));
	assert_non_null(strstr(v2.buf, "ns9.example.net."));
	/* an empty list removes the name entirely */
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	soa(t, 3);
	assert_int_equal(store_txn_name_set(t, o, NULL, NULL), ZD_OK);
	assert_int_equal(store_txn_publish(&t, 3, 0), ZD_OK);
	walk_all(s, 3, &v2, 100);
	assert_null(strstr(v2.buf, "b.tld."));
	ldns_rdf_deep_free(o);
	ldns_rr_list_deep_free(l);
	store_free(s);
}

static void
delta_replays_into_an_identical_store(void **state)
{
	struct store *a = NULL, *b = NULL;
	struct store_txn *t = NULL, *u = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;
	struct text ta, tb;
	(void)state;
	assert_int_equal(store_new("tld.", &a), ZD_OK);
	assert_int_equal(store_new("tld.", &b), ZD_OK);
	for (uint32_t serial = 1; serial <= 20; serial++) {
		char text[128];
		assert_int_equal(store_txn_begin(a, &t), ZD_OK);
		soa(t, serial);
		snprintf(text, sizeof text, "d%u.tld. 60 IN NS ns.example.", serial);
		put1(t, text);
		if (serial > 3) {
			snprintf(text, sizeof text, "d%u.tld.", serial - 3);
			del(t, text, LDNS_RR_TYPE_NS);
		}
		snprintf(text, sizeof text, "d%u.tld. 60 IN DS %u 8 2 00ff", serial % 3 + 1,
		         serial);
		put1(t, text);
		assert_int_equal(store_txn_delta_wire(t, &wire, &len), ZD_OK);
		assert_int_equal(store_txn_publish(&t, serial, 0), ZD_OK);
		assert_int_equal(store_txn_begin(b, &u), ZD_OK);
		assert_int_equal(store_txn_delta_apply(u, wire, len), ZD_OK);
		assert_int_equal(store_txn_publish(&u, serial, 0), ZD_OK);
		free(wire);
		walk_all(a, serial, &ta, 7);
		walk_all(b, serial, &tb, 5);
		assert_string_equal(ta.buf, tb.buf);
	}
	/* and every old version of the replica equals the original's */
	for (uint64_t v = 1; v <= 20; v++) {
		walk_all(a, v, &ta, 100);
		walk_all(b, v, &tb, 100);
		assert_string_equal(ta.buf, tb.buf);
	}
	store_free(a);
	store_free(b);
}

/* --- pruning ---------------------------------------------------------- */

/* Versions 1..10: each v >= 2 has serial v, adds d<v>.tld. (a name that then
 * lives one version only), deletes d<v-1>.tld. and changes b.tld.'s DS. */
static struct store *
zone_history(void)
{
	struct store *s = zone_v1();
	for (uint32_t v = 2; v <= 10; v++) {
		struct store_txn *t = NULL;
		char text[120];
		assert_int_equal(store_txn_begin(s, &t), ZD_OK);
		soa(t, v);
		snprintf(text, sizeof text, "d%u.tld. 86400 IN NS ns.example.net.", v);
		put1(t, text);
		if (v > 2) {
			snprintf(text, sizeof text, "d%u.tld.", v - 1);
			del(t, text, LDNS_RR_TYPE_NS);
		}
		snprintf(text, sizeof text, "b.tld. 3600 IN DS %u 13 2 aabbccdd", v);
		put1(t, text);
		assert_int_equal(store_txn_publish(&t, v, 1000 + v), ZD_OK);
	}
	return s;
}

static void
prune_refuses_while_a_txn_is_open(void **state)
{
	struct store *s = zone_history();
	struct store_txn *t = NULL;
	(void)state;
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	assert_int_equal(store_prune(s, 8), ZD_EBUG);
	store_txn_abort(&t);
	assert_int_equal(store_oldest_get(s), 1); /* nothing dropped */
	store_free(s);
}

static void
pruned_versions_are_not_found(void **state)
{
	struct store *s = zone_history();
	struct store_cursor c = STORE_CURSOR_INIT;
	struct text out;
	uint32_t serial = 0;
	uint64_t v = 0;
	(void)state;
	assert_int_equal(store_prune(s, 8), ZD_OK);
	assert_int_equal(store_oldest_get(s), 8);
	assert_int_equal(store_serial_find(s, 7, &serial), ZD_ENOTFOUND);
	assert_int_equal(serial, 0); /* out-param untouched on failure */
	assert_int_equal(store_version_find(s, 7, &v), ZD_ENOTFOUND);
	assert_int_equal(v, 0);
	memset(&out, 0, sizeof out);
	assert_int_equal(store_walk(s, 7, &c, 100, collect, &out), ZD_ENOTFOUND);
	assert_int_equal(out.count, 0);
	assert_int_equal(store_diff(s, 7, 10, 1000, collect, collect, &out), ZD_ENOTFOUND);
	assert_int_equal(store_version_pin(s, 7), ZD_ENOTFOUND);
	/* the oldest kept one is there, and is a base: nothing is diffed to it */
	assert_int_equal(store_serial_find(s, 8, &serial), ZD_OK);
	assert_int_equal(serial, 8);
	assert_int_equal(store_version_find(s, 8, &v), ZD_OK);
	assert_int_equal(v, 8);
	store_free(s);
}

static void
kept_versions_read_exactly_as_before_pruning(void **state)
{
	struct store *s = zone_history();
	static struct text before[3], after, d_before, d_after;
	struct store_stats st0, st1;
	(void)state;
	for (uint64_t v = 8; v <= 10; v++)
		walk_all(s, v, &before[v - 8], 3);
	memset(&d_before, 0, sizeof d_before);
	assert_int_equal(store_diff(s, 8, 10, 1000, collect, collect, &d_before), ZD_OK);
	store_stats_get(s, &st0);
	assert_int_equal(store_prune(s, 8), ZD_OK);
	store_stats_get(s, &st1);
	for (uint64_t v = 8; v <= 10; v++) {
		walk_all(s, v, &after, 3);
		assert_string_equal(after.buf, before[v - 8].buf);
	}
	memset(&d_after, 0, sizeof d_after);
	assert_int_equal(store_diff(s, 8, 10, 1000, collect, collect, &d_after), ZD_OK);
	assert_string_equal(d_after.buf, d_before.buf);
	/* memory: d2..d7 existed only in pruned versions; b.tld. keeps the DS
	 * versions of 8, 9 and 10 only */
	assert_int_equal(st0.versions, 10);
	assert_int_equal(st1.versions, 3);
	assert_int_equal(st0.names - st1.names, 6);
	assert_true(st1.rrsets_total < st0.rrsets_total);
	/* d2..d7 NS; DS and SOA of versions 1..7 */
	assert_int_equal(st0.rrsets_total - st1.rrsets_total, 6 + 7 + 7);
	assert_true(st1.bytes < st0.bytes);
	assert_int_equal(st1.rrsets_live, st0.rrsets_live);
	/* pruning again to the same or an older version changes nothing */
	assert_int_equal(store_prune(s, 5), ZD_OK);
	store_stats_get(s, &st0);
	assert_int_equal(st0.bytes, st1.bytes);
	/* publishing goes on after a prune, and diffs across it are right */
	struct store_txn *t = NULL;
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	assert_int_equal(store_txn_version_get(t), 11);
	soa(t, 11);
	assert_int_equal(store_txn_publish(&t, 11, 2000), ZD_OK);
	memset(&d_after, 0, sizeof d_after);
	assert_int_equal(store_diff(s, 9, 11, 1000, collect, collect, &d_after), ZD_OK);
	assert_int_equal(d_after.count, 2 + 4); /* SOAs, d9 -> d10, two DS */
	store_free(s);
}

static void
a_pinned_version_blocks_pruning_above_it(void **state)
{
	struct store *s = zone_history();
	static struct text before, after;
	uint32_t serial = 0;
	(void)state;
	walk_all(s, 5, &before, 100);
	assert_int_equal(store_version_pin(s, 5), ZD_OK);
	assert_int_equal(store_version_pin(s, 5), ZD_OK); /* pins count */
	assert_int_equal(store_prune(s, 8), ZD_OK);
	assert_int_equal(store_oldest_get(s), 5);
	assert_int_equal(store_serial_find(s, 4, &serial), ZD_ENOTFOUND);
	walk_all(s, 5, &after, 100);
	assert_string_equal(after.buf, before.buf);
	store_version_unpin(s, 5);
	assert_int_equal(store_prune(s, 8), ZD_OK);
	assert_int_equal(store_oldest_get(s), 5); /* one pin left */
	store_version_unpin(s, 5);
	assert_int_equal(store_prune(s, 8), ZD_OK);
	assert_int_equal(store_oldest_get(s), 8);
	/* never above the published version either */
	assert_int_equal(store_prune(s, 100), ZD_OK);
	assert_int_equal(store_oldest_get(s), 10);
	walk_all(s, 10, &after, 100);
	assert_true(after.count > 0);
	store_free(s);
}

static void
a_walk_continues_across_a_prune(void **state)
{
	struct store *s = zone_history();
	static struct text whole, part;
	struct store_cursor c = STORE_CURSOR_INIT;
	(void)state;
	walk_all(s, 10, &whole, 1);
	assert_int_equal(store_version_pin(s, 10), ZD_OK);
	memset(&part, 0, sizeof part);
	/* tld., a., ns1.a., ns2.a., b., d10., d2., d3.: the cursor is on a
	 * name the prune removes */
	for (int i = 0; i < 8; i++)
		assert_int_equal(store_walk(s, 10, &c, 1, collect, &part), ZD_OK);
	assert_int_equal(store_prune(s, 9), ZD_OK);
	while (!c.done)
		assert_int_equal(store_walk(s, 10, &c, 1, collect, &part), ZD_OK);
	assert_string_equal(part.buf, whole.buf);
	store_version_unpin(s, 10);
	store_free(s);
}

/* The signer's reading API: neighbours by type, names below a name, the
 * types at a name, and the txn's own version and changes. */
static zd_err
count_name(void *arg, const ldns_rdf *name)
{
	(void)name;
	(*(size_t *)arg)++;
	return ZD_OK;
}

struct change_seen {
	size_t n, ns_at_b;
};

static zd_err
change_seen(void *arg, const ldns_rdf *owner, uint16_t type, uint16_t covered)
{
	struct change_seen *c = arg;
	ldns_rdf *b = dname("b.tld.");
	c->n++;
	if (ldns_dname_compare(owner, b) == 0 && type == LDNS_RR_TYPE_NS && covered == 0)
		c->ns_at_b++;
	ldns_rdf_deep_free(b);
	return ZD_OK;
}

static void
neighbour(struct store *s, uint64_t v, const char *from, int dir, uint16_t type, const char *want)
{
	ldns_rdf *f = from ? dname(from) : NULL, *got = NULL;
	zd_err e = store_name_neighbor(s, v, f, dir, type, &got);
	if (want == NULL) {
		assert_int_equal(e, ZD_ENOTFOUND);
	} else {
		assert_int_equal(e, ZD_OK);
		ldns_rdf *w = dname(want);
		assert_int_equal(ldns_dname_compare(got, w), 0);
		ldns_rdf_deep_free(w);
	}
	ldns_rdf_deep_free(got);
	ldns_rdf_deep_free(f);
}

static void
the_signers_reading_api_sees_versions_and_the_open_txn(void **state)
{
	struct store *s = NULL;
	struct store_txn *t = NULL;
	uint16_t types[8];
	size_t n = 0;
	(void)state;
	assert_int_equal(store_new("tld.", &s), ZD_OK);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	soa(t, 1);
	put1(t, "a.tld. 3600 IN NS ns.a.tld.");
	put1(t, "ns.a.tld. 3600 IN A 192.0.2.1");
	put1(t, "b.tld. 3600 IN NS ns.x.example.");
	put1(t, "b.tld. 3600 IN DS 1 13 2 "
	        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	put1(t, "c.tld. 3600 IN NS ns.x.example.");
	/* the writer reads its own txn's version */
	neighbour(s, 1, "a.tld.", 1, LDNS_RR_TYPE_NS, "b.tld.");
	assert_int_equal(store_txn_publish(&t, 1, 0), ZD_OK);

	neighbour(s, 1, NULL, 1, 0, "tld.");
	neighbour(s, 1, NULL, -1, LDNS_RR_TYPE_NS, "c.tld.");
	neighbour(s, 1, "b.tld.", 1, LDNS_RR_TYPE_NS, "c.tld.");
	neighbour(s, 1, "b.tld.", -1, LDNS_RR_TYPE_NS, "a.tld.");
	neighbour(s, 1, "bb.tld.", -1, LDNS_RR_TYPE_DS, "b.tld."); /* from a name not there */
	neighbour(s, 1, "b.tld.", 1, LDNS_RR_TYPE_DS, NULL);
	neighbour(s, 1, "a.tld.", 1, 0, "ns.a.tld."); /* glue follows its parent */

	ldns_rdf *b = dname("b.tld."), *a = dname("a.tld."), *apex = dname("tld.");
	assert_int_equal(store_name_types(s, 1, b, types, 8, &n), ZD_OK);
	assert_int_equal(n, 2);
	assert_int_equal(types[0], LDNS_RR_TYPE_NS);
	assert_int_equal(types[1], LDNS_RR_TYPE_DS);
	assert_int_equal(store_name_types(s, 1, b, types, 1, &n), ZD_ELIMIT);
	size_t below = 0;
	assert_int_equal(store_below_walk(s, 1, a, 100, count_name, &below), ZD_OK);
	assert_int_equal(below, 1);
	below = 0;
	assert_int_equal(store_below_walk(s, 1, apex, 100, count_name, &below), ZD_OK);
	assert_int_equal(below, 4);
	below = 0;
	assert_int_equal(store_below_walk(s, 1, apex, 2, count_name, &below), ZD_ELIMIT);

	/* version 2: b loses its NS; the change is seen, the neighbours skip it */
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	soa(t, 2);
	del(t, "b.tld.", LDNS_RR_TYPE_NS);
	struct change_seen c = {0};
	assert_int_equal(store_txn_changes_foreach(t, change_seen, &c), ZD_OK);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ns_at_b, 1);
	neighbour(s, 2, "a.tld.", 1, LDNS_RR_TYPE_NS, "c.tld.");
	neighbour(s, 1, "a.tld.", 1, LDNS_RR_TYPE_NS, "b.tld."); /* the old version as it was */
	store_txn_abort(&t);
	/* after the abort the txn's version is not readable */
	neighbour(s, 2, "a.tld.", 1, LDNS_RR_TYPE_NS, NULL);
	ldns_rdf_deep_free(a);
	ldns_rdf_deep_free(b);
	ldns_rdf_deep_free(apex);
	store_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(reading_an_unknown_version_is_not_found),
	        cmocka_unit_test(walks_of_types_taken_records_and_wire_match_a_lending_walk),
	        cmocka_unit_test(the_signers_reading_api_sees_versions_and_the_open_txn),
	        cmocka_unit_test(delta_apply_rejects_garbage_and_absent_deletions),
	        cmocka_unit_test(delta_wire_refuses_a_version_without_a_new_soa),
	        cmocka_unit_test(walk_yields_soa_first_then_canonical_order),
	        cmocka_unit_test(canonical_order_matches_ldns_dname_compare),
	        cmocka_unit_test(versions_keep_every_state),
	        cmocka_unit_test(diff_lists_exactly_the_changed_records),
	        cmocka_unit_test(abort_restores_the_published_state),
	        cmocka_unit_test(unchanged_and_repeated_puts_record_only_the_net_change),
	        cmocka_unit_test(rewrites_in_one_txn_keep_one_change_and_the_last_contents),
	        cmocka_unit_test(name_set_replaces_all_but_kept_types),
	        cmocka_unit_test(delta_replays_into_an_identical_store),
	        cmocka_unit_test(prune_refuses_while_a_txn_is_open),
	        cmocka_unit_test(pruned_versions_are_not_found),
	        cmocka_unit_test(kept_versions_read_exactly_as_before_pruning),
	        cmocka_unit_test(a_pinned_version_blocks_pruning_above_it),
	        cmocka_unit_test(a_walk_continues_across_a_prune),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
