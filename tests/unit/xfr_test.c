/* Unit tests of server/xfr (SOA, AXFR, IXFR, ACL, limits), server/tsig and
 * NOTIFY out: a real server on 127.0.0.1 port 0, its event loop in a thread,
 * queried over real sockets with messages built and checked by ldns (an
 * independent TSIG implementation).  Failure paths first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/zd_config.h"
#include "common/zd_log.h"
#include "server/store.h"
#include "server/tsig.h"
#include "server/xfr.h"

#define N_NAMES 5000 /* delegations in tld.: several 64 KiB messages */
#define SERIAL1 2026010101u
#define SERIAL2 2026010102u
#define SERIAL3 2026010103u
#define SECRET1 "c2VjcmV0LWtleS1vbmUtZm9yLXRoZS10ZXN0cy0xMjM0NTY="
#define SECRET2 "YW5vdGhlci1zZWNyZXQta2V5LWZvci10aGUtdGVzdHMtOTg3Ng=="
#define SECRET3 "dGhpcmQta2V5LXNoYTUxMi1mb3ItdGVzdHMtYWJjZGVmZ2g="
#define WAIT_MS 3000

/* --- zone contents ---------------------------------------------------------- */

/* Records of name index idx of zone tld. at version k (1..3), presentation
 * form; returns how many.  0: apex, 1: ns.tld., 2..N_NAMES+1: dI.tld.,
 * then new1.tld. and new2.tld. */
static int
gen_name(int idx, int k, char out[4][256])
{
	static const uint32_t serials[] = {0, SERIAL1, SERIAL2, SERIAL3};
	int n = 0;
	if (idx == 0) {
		snprintf(out[n++], 256,
		         "tld. 3600 IN SOA ns.tld. hostmaster.tld. %u 3600 600 1209600 3600",
		         serials[k]);
		snprintf(out[n++], 256, "tld. 3600 IN NS ns.tld.");
		return n;
	}
	if (idx == 1) {
		snprintf(out[n++], 256, "ns.tld. 3600 IN A 192.0.2.1");
		return n;
	}
	if (idx == N_NAMES + 2) {
		if (k >= 2)
			snprintf(out[n++], 256, "new1.tld. 86400 IN NS ns.new1.example.");
		return n;
	}
	if (idx == N_NAMES + 3) {
		if (k >= 3)
			snprintf(out[n++], 256, "new2.tld. 86400 IN NS ns.new2.example.");
		return n;
	}
	int i = idx - 2;
	if ((i == 1 && k >= 2) || (i == 5 && k >= 3))
		return 0; /* removed */
	int ttl = i == 3 && k >= 2 ? 3600 : 86400;
	snprintf(out[n++], 256, "d%d.tld. %d IN NS ns1.d%d.tld.", i, ttl, i);
	snprintf(out[n++], 256, "d%d.tld. %d IN NS %s.example.net.", i, ttl,
	         i == 2 && k >= 2 ? "ns3" : "ns2");
	if (i == 4 && k >= 3)
		snprintf(out[n++], 256,
		         "d4.tld. 86400 IN DS 12345 13 2 "
		         "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF");
	return n;
}

#define N_IDX (N_NAMES + 4)

static ldns_rr *
rr_new(const char *text)
{
	ldns_rr *r = NULL;
	assert_int_equal(ldns_rr_new_frm_str(&r, text, 3600, NULL, NULL), LDNS_STATUS_OK);
	return r;
}

static ldns_rdf *
dname(const char *text)
{
	ldns_rdf *d = NULL;
	assert_int_equal(ldns_str2rdf_dname(&d, text), LDNS_STATUS_OK);
	return d;
}

static void
name_set(struct store_txn *t, const char *owner, char texts[][256], int n)
{
	ldns_rr_list *l = ldns_rr_list_new();
	for (int i = 0; i < n; i++)
		ldns_rr_list_push_rr(l, rr_new(texts[i])); /* l owns it */
	ldns_rdf *o = dname(owner);
	assert_int_equal(store_txn_name_set(t, o, l, NULL), ZD_OK);
	ldns_rdf_deep_free(o);
	ldns_rr_list_deep_free(l);
}

static void
idx_owner(int idx, char *out, size_t len)
{
	if (idx == 0)
		snprintf(out, len, "tld.");
	else if (idx == 1)
		snprintf(out, len, "ns.tld.");
	else if (idx == N_NAMES + 2)
		snprintf(out, len, "new1.tld.");
	else if (idx == N_NAMES + 3)
		snprintf(out, len, "new2.tld.");
	else
		snprintf(out, len, "d%d.tld.", idx - 2);
}

/* Versions 1..3 of tld.: each version sets the names whose records changed. */
static struct store *
tld_store_new(void)
{
	struct store *s = NULL;
	assert_int_equal(store_new("tld.", &s), ZD_OK);
	for (int k = 1; k <= 3; k++) {
		struct store_txn *t = NULL;
		assert_int_equal(store_txn_begin(s, &t), ZD_OK);
		for (int idx = 0; idx < N_IDX; idx++) {
			char now[4][256], before[4][256], owner[64];
			int n = gen_name(idx, k, now);
			int m = k > 1 ? gen_name(idx, k - 1, before) : 0;
			int same = k > 1 && n == m;
			for (int j = 0; same && j < n; j++)
				same = strcmp(now[j], before[j]) == 0;
			if (same || (k == 1 && n == 0))
				continue;
			idx_owner(idx, owner, sizeof owner);
			name_set(t, owner, now, n);
		}
		assert_int_equal(store_txn_publish(&t, SERIAL1 + (uint32_t)k - 1, 0), ZD_OK);
	}
	return s;
}

/* A small zone: apex SOA and NS, and a few delegations. */
static struct store *
small_store_new(const char *apex, uint32_t serial)
{
	struct store *s = NULL;
	struct store_txn *t = NULL;
	char texts[4][256], owner[64];
	assert_int_equal(store_new(apex, &s), ZD_OK);
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	snprintf(texts[0], 256, "%s 3600 IN SOA ns.%s hostmaster.%s %u 3600 600 1209600 3600", apex,
	         apex, apex, serial);
	snprintf(texts[1], 256, "%s 3600 IN NS ns.%s", apex, apex);
	name_set(t, apex, texts, 2);
	for (int i = 0; i < 20; i++) {
		snprintf(owner, sizeof owner, "x%d.%s", i, apex);
		snprintf(texts[0], 256, "%s 86400 IN NS ns.example.net.", owner);
		name_set(t, owner, texts, 1);
	}
	assert_int_equal(store_txn_publish(&t, serial, 0), ZD_OK);
	return s;
}

static void
small_store_publish(struct store *s, const char *apex, uint32_t serial)
{
	struct store_txn *t = NULL;
	char texts[2][256];
	assert_int_equal(store_txn_begin(s, &t), ZD_OK);
	snprintf(texts[0], 256, "%s 3600 IN SOA ns.%s hostmaster.%s %u 3600 600 1209600 3600", apex,
	         apex, apex, serial);
	snprintf(texts[1], 256, "%s 3600 IN NS ns.%s", apex, apex);
	name_set(t, apex, texts, 2);
	assert_int_equal(store_txn_publish(&t, serial, 0), ZD_OK);
}

/* Sorted presentation lines of RRs, for set comparisons. */
struct lines {
	char **v;
	size_t n;
};

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
lines_add_rr(struct lines *l, const ldns_rr *r)
{
	ldns_rr *c = ldns_rr_clone(r);
	ldns_rr2canonical(c);
	char *s = ldns_rr2str(c);
	ldns_rr_free(c);
	assert_non_null(s);
	l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n++] = s;
}

static void
lines_sort(struct lines *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof *l->v, str_cmp);
}

static void
lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Expected records of tld. at version k, without the SOA. */
static void
expected_zone(int k, struct lines *out)
{
	for (int idx = 0; idx < N_IDX; idx++) {
		char texts[4][256];
		int n = gen_name(idx, k, texts);
		for (int j = 0; j < n; j++) {
			ldns_rr *r = rr_new(texts[j]);
			if (ldns_rr_get_type(r) != LDNS_RR_TYPE_SOA)
				lines_add_rr(out, r);
			ldns_rr_free(r);
		}
	}
	lines_sort(out);
}

/* a minus b, both sorted. */
static void
lines_minus(const struct lines *a, const struct lines *b, struct lines *out)
{
	size_t j = 0;
	for (size_t i = 0; i < a->n; i++) {
		while (j < b->n && strcmp(b->v[j], a->v[i]) < 0)
			j++;
		if (j < b->n && strcmp(b->v[j], a->v[i]) == 0)
			continue;
		out->v = realloc(out->v, (out->n + 1) * sizeof *out->v);
		out->v[out->n++] = strdup(a->v[i]);
	}
}

static void
assert_lines_equal(const struct lines *a, const struct lines *b)
{
	if (a->n != b->n) {
		for (size_t i = 0; i < a->n && i < 10; i++)
			fprintf(stderr, "got:  %s", a->v[i]);
		for (size_t i = 0; i < b->n && i < 10; i++)
			fprintf(stderr, "want: %s", b->v[i]);
	}
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_string_equal(a->v[i], b->v[i]);
}

/* --- the server under test -------------------------------------------------- */

static struct store *g_tld; /* versions 1..3; read-only once built */

struct env {
	struct zd_config *cfg;
	struct store *signed_zone, *closed_zone, *small_zone;
	struct event_base *base;
	struct xfr_server *x;
	pthread_t thread;
	uint16_t port;
	/* observer */
	pthread_mutex_t lock;
	struct xfr_report last;
	char last_reason[128];
	int n_reports;
};

struct env_opts {
	uint32_t max_tcp_clients, idle_ms, max_transfers, notify_retries, notify_timeout_ms;
	uint32_t max_message_bytes; /* 0: the default (65535) */
	uint16_t notify_port;       /* 0: no notify peers */
	const char *notify_key;     /* NULL: unsigned */
};

static void *
loop_main(void *arg)
{
	struct env *e = arg;
	event_base_loop(e->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void
observe(void *arg, const struct xfr_report *r)
{
	struct env *e = arg;
	pthread_mutex_lock(&e->lock);
	e->last = *r;
	snprintf(e->last_reason, sizeof e->last_reason, "%s", r->reason ? r->reason : "");
	e->last.reason = NULL;
	e->last.zone = NULL;
	e->last.key = NULL;
	e->last.peer = NULL;
	e->n_reports++;
	pthread_mutex_unlock(&e->lock);
}

static void
env_start(struct env *e, const struct env_opts *o)
{
	char yaml[4096], notify[512] = "";
	char err[256];
	memset(e, 0, sizeof *e);
	pthread_mutex_init(&e->lock, NULL);
	if (o->notify_port != 0)
		snprintf(notify, sizeof notify,
		         "    notify:\n"
		         "      - address: 127.0.0.1@%u\n"
		         "%s%s%s",
		         o->notify_port, o->notify_key ? "        key: " : "",
		         o->notify_key ? o->notify_key : "", o->notify_key ? "\n" : "");
	snprintf(yaml, sizeof yaml,
	         "database: \"dbname=unused\"\n"
	         "limits:\n"
	         "  max-tcp-clients: %u\n"
	         "  tcp-idle-timeout-ms: %u\n"
	         "  max-transfers: %u\n"
	         "  notify-retries: %u\n"
	         "  notify-timeout-ms: %u\n"
	         "  max-message-bytes: %u\n"
	         "tsig-keys:\n"
	         "  - name: k1.\n"
	         "    secret: \"" SECRET1 "\"\n"
	         "  - name: k2.\n"
	         "    algorithm: hmac-sha384.\n"
	         "    secret: \"" SECRET2 "\"\n"
	         "  - name: k3.\n"
	         "    algorithm: hmac-sha512.\n"
	         "    secret: \"" SECRET3 "\"\n"
	         "zones:\n"
	         "  - name: tld.\n"
	         "    soa: {mname: ns.tld., rname: hostmaster.tld.}\n"
	         "    allow-transfer:\n"
	         "      - prefix: 127.0.0.1/32\n"
	         "  - name: signed.\n"
	         "    soa: {mname: ns.signed., rname: hostmaster.signed.}\n"
	         "    allow-transfer:\n"
	         "      - prefix: 127.0.0.0/8\n"
	         "        key: k1.\n"
	         "  - name: closed.\n"
	         "    soa: {mname: ns.closed., rname: hostmaster.closed.}\n"
	         "    allow-transfer:\n"
	         "      - prefix: 10.0.0.0/8\n"
	         "  - name: small.\n"
	         "    soa: {mname: ns.small., rname: hostmaster.small.}\n"
	         "    allow-transfer:\n"
	         "      - prefix: 127.0.0.1/32\n"
	         "%s",
	         o->max_tcp_clients ? o->max_tcp_clients : 50, o->idle_ms ? o->idle_ms : 10000,
	         o->max_transfers ? o->max_transfers : 8, o->notify_retries,
	         o->notify_timeout_ms ? o->notify_timeout_ms : 2000,
	         o->max_message_bytes ? o->max_message_bytes : 65535, notify);
	if (zd_config_parse(yaml, strlen(yaml), &e->cfg, err, sizeof err) != ZD_OK)
		fail_msg("config: %s", err);
	e->signed_zone = small_store_new("signed.", 7);
	e->closed_zone = small_store_new("closed.", 7);
	e->small_zone = small_store_new("small.", 100);
	assert_non_null(e->base = event_base_new());
	assert_int_equal(xfr_server_new(e->base, e->cfg, &e->x), ZD_OK);
	assert_int_equal(xfr_server_zone_add(e->x, zd_config_zone_find(e->cfg, "tld."), g_tld),
	                 ZD_OK);
	assert_int_equal(
	        xfr_server_zone_add(e->x, zd_config_zone_find(e->cfg, "signed."), e->signed_zone),
	        ZD_OK);
	assert_int_equal(
	        xfr_server_zone_add(e->x, zd_config_zone_find(e->cfg, "closed."), e->closed_zone),
	        ZD_OK);
	assert_int_equal(
	        xfr_server_zone_add(e->x, zd_config_zone_find(e->cfg, "small."), e->small_zone),
	        ZD_OK);
	xfr_server_observer_set(e->x, observe, e);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(
	        xfr_server_listen_addr(e->x, (struct sockaddr *)&sin, sizeof sin, &e->port), ZD_OK);
	assert_int_not_equal(e->port, 0);
	assert_int_equal(pthread_create(&e->thread, NULL, loop_main, e), 0);
}

static void
env_stop(struct env *e)
{
	event_base_loopexit(e->base, NULL);
	pthread_join(e->thread, NULL);
	xfr_server_free(e->x);
	event_base_free(e->base);
	store_free(e->signed_zone);
	store_free(e->closed_zone);
	store_free(e->small_zone);
	zd_config_free(e->cfg);
	pthread_mutex_destroy(&e->lock);
}

static struct xfr_stats
env_stats(struct env *e)
{
	struct xfr_stats st;
	xfr_server_stats_get(e->x, &st);
	return st;
}

/* --- a client --------------------------------------------------------------- */

static uint16_t next_id = 1000;

static ldns_pkt *
query_new(const char *qname, ldns_rr_type type)
{
	ldns_pkt *p = NULL;
	assert_int_equal(ldns_pkt_query_new_frm_str(&p, qname, type, LDNS_RR_CLASS_IN, 0),
	                 LDNS_STATUS_OK);
	ldns_pkt_set_id(p, next_id++);
	return p;
}

static ldns_pkt *
ixfr_query_new(const char *zone, uint32_t serial)
{
	char text[300];
	ldns_pkt *p = query_new(zone, LDNS_RR_TYPE_IXFR);
	snprintf(text, sizeof text, "%s 3600 IN SOA ns.%s hm.%s %u 1 1 1 1", zone, zone, zone,
	         serial);
	ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, rr_new(text)); /* p owns it */
	return p;
}

/* Sign with ldns; *mac_out gets a copy of the request MAC. */
static void
sign(ldns_pkt *p, const char *key, const char *secret, const char *alg, ldns_rdf **mac_out)
{
	assert_int_equal(ldns_pkt_tsig_sign(p, key, secret, 300, alg, NULL), LDNS_STATUS_OK);
	if (mac_out)
		*mac_out = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(p), 3));
}

static uint8_t *
wire_of(ldns_pkt *p, size_t *n)
{
	uint8_t *w = NULL;
	assert_int_equal(ldns_pkt2wire(&w, p, n), LDNS_STATUS_OK);
	return w;
}

static int
wait_readable(int fd, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	return poll(&pfd, 1, ms) == 1;
}

static int
tcp_connect(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	return fd;
}

static void
tcp_send_raw(int fd, const uint8_t *w, size_t n)
{
	uint8_t *buf = malloc(n + 2);
	buf[0] = (uint8_t)(n >> 8);
	buf[1] = (uint8_t)n;
	memcpy(buf + 2, w, n);
	assert_int_equal(send(fd, buf, n + 2, MSG_NOSIGNAL), (ssize_t)(n + 2));
	free(buf);
}

static void
tcp_send_pkt(int fd, ldns_pkt *p)
{
	size_t n;
	uint8_t *w = wire_of(p, &n);
	tcp_send_raw(fd, w, n);
	free(w);
}

/* Read exactly n bytes; 0 on EOF or timeout. */
static int
read_full(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		if (!wait_readable(fd, WAIT_MS))
			return 0;
		ssize_t r = recv(fd, buf + got, n - got, 0);
		if (r <= 0)
			return 0;
		got += (size_t)r;
	}
	return 1;
}

/* One framed message; NULL on EOF or timeout. */
static uint8_t *
tcp_recv(int fd, size_t *n)
{
	uint8_t len[2];
	if (!read_full(fd, len, 2))
		return NULL;
	*n = (size_t)(len[0] << 8 | len[1]);
	uint8_t *w = malloc(*n ? *n : 1);
	if (!read_full(fd, w, *n)) {
		free(w);
		return NULL;
	}
	return w;
}

/* 1 when the server closed the connection (EOF or reset) within ms. */
static int
closed_within(int fd, int ms)
{
	uint8_t b;
	if (!wait_readable(fd, ms))
		return 0;
	return recv(fd, &b, 1, 0) <= 0;
}

static int
udp_socket(uint16_t *port_out)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof sin;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	if (port_out)
		*port_out = ntohs(sin.sin_port);
	return fd;
}

/* Send raw bytes over UDP; the answer or NULL after ms. */
static uint8_t *
udp_exchange_raw(uint16_t port, const uint8_t *w, size_t n, int ms, size_t *out_n)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = udp_socket(NULL);
	assert_int_equal(sendto(fd, w, n, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)n);
	uint8_t *buf = NULL;
	if (wait_readable(fd, ms)) {
		buf = malloc(65535);
		ssize_t r = recv(fd, buf, 65535, 0);
		assert_true(r > 0);
		*out_n = (size_t)r;
	}
	close(fd);
	return buf;
}

static ldns_pkt *
udp_exchange(uint16_t port, ldns_pkt *q, uint8_t **wire_out, size_t *n_out)
{
	size_t n, an = 0;
	uint8_t *w = wire_of(q, &n);
	uint8_t *a = udp_exchange_raw(port, w, n, WAIT_MS, &an);
	free(w);
	assert_non_null(a);
	ldns_pkt *p = NULL;
	assert_int_equal(ldns_wire2pkt(&p, a, an), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_id(p), ldns_pkt_id(q));
	if (wire_out) {
		*wire_out = a;
		*n_out = an;
	} else {
		free(a);
	}
	return p;
}

static uint16_t
tsig_error_of(const ldns_pkt *p)
{
	const ldns_rr *t = ldns_pkt_tsig(p);
	assert_non_null(t);
	return ldns_rdf2native_int16(ldns_rr_rdf(t, 5));
}

/* A transfer as a client sees it. */
struct xfr_got {
	int rcode;
	int messages;
	int ixfr_style;   /* second record is a SOA */
	struct lines all; /* every record but SOAs */
	struct lines dels, adds;
	uint32_t soa_serials[8];
	int n_soa;
	int first_msg_has_question;
	uint16_t tsig_error;
};

static void
got_free(struct xfr_got *g)
{
	lines_free(&g->all);
	lines_free(&g->dels);
	lines_free(&g->adds);
}

/* Read one AXFR/IXFR answer.  With key, every message must verify as a
 * chain (RFC 8945 s5.3.1): the first with the request MAC, later ones with
 * the prior MAC over the timers only. */
static void
read_transfer(int fd, uint16_t id, const char *key, const char *secret, ldns_rdf *req_mac,
              struct xfr_got *g)
{
	ldns_rdf *prior = req_mac ? ldns_rdf_clone(req_mac) : NULL;
	int rr_index = 0;
	memset(g, 0, sizeof *g);
	for (;;) {
		size_t n;
		uint8_t *w = tcp_recv(fd, &n);
		assert_non_null(w);
		ldns_pkt *p = NULL;
		assert_int_equal(ldns_wire2pkt(&p, w, n), LDNS_STATUS_OK);
		assert_int_equal(ldns_pkt_id(p), id);
		assert_true(ldns_pkt_qr(p));
		if (g->messages == 0)
			g->first_msg_has_question = ldns_pkt_qdcount(p) == 1;
		g->messages++;
		if (key != NULL) {
			assert_non_null(ldns_pkt_tsig(p));
			assert_true(ldns_pkt_tsig_verify_next(p, w, n, key, secret, prior,
			                                      g->messages > 1));
			ldns_rdf_deep_free(prior);
			prior = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(p), 3));
		} else {
			assert_null(ldns_pkt_tsig(p));
		}
		g->rcode = ldns_pkt_get_rcode(p);
		if (g->rcode != 0) {
			if (ldns_pkt_tsig(p))
				g->tsig_error = tsig_error_of(p);
			ldns_pkt_free(p);
			free(w);
			break;
		}
		assert_true(ldns_pkt_aa(p));
		int end = 0;
		ldns_rr_list *an = ldns_pkt_answer(p);
		for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++, rr_index++) {
			const ldns_rr *r = ldns_rr_list_rr(an, i);
			assert_false(end); /* nothing after the last SOA */
			if (ldns_rr_get_type(r) == LDNS_RR_TYPE_SOA) {
				assert_true(g->n_soa < 8);
				g->soa_serials[g->n_soa++] =
				        ldns_rdf2native_int32(ldns_rr_rdf(r, 2));
				if (rr_index == 1)
					g->ixfr_style = 1;
				if ((!g->ixfr_style && g->n_soa == 2 && rr_index > 0) ||
				    (g->ixfr_style && g->n_soa == 4))
					end = 1;
				continue;
			}
			lines_add_rr(&g->all, r);
			if (g->ixfr_style)
				lines_add_rr(g->n_soa == 2 ? &g->dels : &g->adds, r);
		}
		int single_soa = rr_index == 1 && g->n_soa == 1;
		ldns_pkt_free(p);
		free(w);
		if (end || single_soa)
			break;
	}
	ldns_rdf_deep_free(prior);
	lines_sort(&g->all);
	lines_sort(&g->dels);
	lines_sort(&g->adds);
}

static void
tcp_transfer(uint16_t port, ldns_pkt *q, const char *key, const char *secret, const char *alg,
             struct xfr_got *g)
{
	ldns_rdf *mac = NULL;
	if (key)
		sign(q, key, secret, alg, &mac);
	int fd = tcp_connect(port);
	tcp_send_pkt(fd, q);
	read_transfer(fd, ldns_pkt_id(q), key, secret, mac, g);
	close(fd);
	ldns_rdf_deep_free(mac);
}

/* --- TSIG module ------------------------------------------------------------ */

static void
tsig_key_new_rejects_bad_secrets_and_algorithms(void **state)
{
	struct tsig_key *k = NULL;
	(void)state;
	struct zd_tsig_key bad_b64 = {"k.", "hmac-sha256.", "not base64!"};
	struct zd_tsig_key empty = {"k.", "hmac-sha256.", ""};
	struct zd_tsig_key bad_pad = {"k.", "hmac-sha256.", "QQ=Q"};
	struct zd_tsig_key bad_alg = {"k.", "hmac-md5.sig-alg.reg.int.", SECRET1};
	struct zd_tsig_key bad_name = {"a..b.", "hmac-sha256.", SECRET1};
	assert_int_equal(tsig_key_new(&bad_b64, &k), ZD_EMALFORMED);
	assert_int_equal(tsig_key_new(&empty, &k), ZD_EMALFORMED);
	assert_int_equal(tsig_key_new(&bad_pad, &k), ZD_EMALFORMED);
	assert_int_equal(tsig_key_new(&bad_alg, &k), ZD_EMALFORMED);
	assert_int_equal(tsig_key_new(&bad_name, &k), ZD_EMALFORMED);
	assert_null(k); /* untouched on failure */
	tsig_key_free(NULL);
}

static void
tsig_rr_parse_rejects_misplaced_and_truncated_tsig(void **state)
{
	struct tsig_rr t;
	size_t n;
	(void)state;
	assert_int_equal(tsig_rr_parse((const uint8_t *)"short", 5, &t), ZD_EMALFORMED);
	/* unsigned: not found */
	ldns_pkt *p = query_new("tld.", LDNS_RR_TYPE_SOA);
	uint8_t *w = wire_of(p, &n);
	assert_int_equal(tsig_rr_parse(w, n, &t), ZD_ENOTFOUND);
	free(w);
	/* signed, then cut short by a byte */
	sign(p, "k1.", SECRET1, "hmac-sha256.", NULL);
	w = wire_of(p, &n);
	assert_int_equal(tsig_rr_parse(w, n, &t), ZD_OK);
	assert_int_equal(t.mac_len, 32);
	assert_int_equal(tsig_rr_parse(w, n - 1, &t), ZD_EMALFORMED);
	/* a TSIG that is not the last record: append an A after it */
	uint8_t *w2 = malloc(n + 15);
	memcpy(w2, w, n);
	static const uint8_t a_rr[15] = {0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4};
	memcpy(w2 + n, a_rr, sizeof a_rr);
	w2[11]++; /* ARCOUNT */
	assert_int_equal(tsig_rr_parse(w2, n + 15, &t), ZD_EMALFORMED);
	free(w2);
	free(w);
	ldns_pkt_free(p);
}

/* Our signer against ldns's verifier, and ldns's signer against ours; and
 * hmac-sha384 (which ldns lacks) against ourselves. */
static void
tsig_interoperates_with_ldns_and_chains(void **state)
{
	struct tsig_key *k1 = NULL, *k2 = NULL;
	struct zd_tsig_key c1 = {"k1.", "hmac-sha256.", SECRET1};
	struct zd_tsig_key c2 = {"k2.", "hmac-sha384.", SECRET2};
	(void)state;
	assert_int_equal(tsig_key_new(&c1, &k1), ZD_OK);
	assert_int_equal(tsig_key_new(&c2, &k2), ZD_OK);
	assert_string_equal(tsig_key_name_get(k1), "k1.");

	/* ldns signs a request; we verify it and sign two answers. */
	ldns_rdf *mac = NULL;
	ldns_pkt *q = query_new("tld.", LDNS_RR_TYPE_AXFR);
	sign(q, "k1.", SECRET1, "hmac-sha256.", &mac);
	size_t n;
	uint8_t *w = wire_of(q, &n);
	struct tsig_rr t;
	struct tsig_ctx srv;
	uint16_t err = 99;
	assert_int_equal(tsig_rr_parse(w, n, &t), ZD_OK);
	tsig_ctx_init(&srv, k2);
	assert_int_equal(tsig_verify(&srv, w, n, &t, (uint64_t)time(NULL), &err), ZD_OK);
	assert_int_equal(err, TSIG_BADKEY); /* k2 is not the key that signed */
	tsig_ctx_init(&srv, k1);
	assert_int_equal(tsig_verify(&srv, w, n, &t, (uint64_t)time(NULL), &err), ZD_OK);
	assert_int_equal(err, TSIG_NOERROR);
	struct tsig_ctx late;
	tsig_ctx_init(&late, k1);
	assert_int_equal(tsig_verify(&late, w, n, &t, (uint64_t)time(NULL) + 10000, &err), ZD_OK);
	assert_int_equal(err, TSIG_BADTIME);
	tsig_ctx_init(&srv, k1);
	assert_int_equal(tsig_verify(&srv, w, n, &t, (uint64_t)time(NULL), &err), ZD_OK);
	w[n - 20] ^= 1; /* inside the MAC */
	assert_int_equal(tsig_rr_parse(w, n, &t), ZD_OK);
	struct tsig_ctx bad;
	tsig_ctx_init(&bad, k1);
	assert_int_equal(tsig_verify(&bad, w, n, &t, (uint64_t)time(NULL), &err), ZD_OK);
	assert_int_equal(err, TSIG_BADSIG);
	free(w);

	ldns_rdf *prior = ldns_rdf_clone(mac);
	for (int i = 0; i < 3; i++) {
		ldns_pkt *a = query_new("tld.", LDNS_RR_TYPE_AXFR);
		ldns_pkt_set_id(a, ldns_pkt_id(q));
		ldns_pkt_set_qr(a, 1);
		uint8_t *aw = wire_of(a, &n);
		struct zd_buf b;
		zd_buf_init(&b, 65535);
		assert_int_equal(zd_buf_append(&b, aw, n), ZD_OK);
		assert_int_equal(tsig_sign(&srv, &b, (uint64_t)time(NULL)), ZD_OK);
		ldns_pkt *got = NULL;
		assert_int_equal(ldns_wire2pkt(&got, b.data, b.len), LDNS_STATUS_OK);
		assert_true(ldns_pkt_tsig_verify_next(got, b.data, b.len, "k1.", SECRET1, prior,
		                                      i > 0));
		ldns_rdf_deep_free(prior);
		prior = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(got), 3));
		ldns_pkt_free(got);
		zd_buf_clear(&b);
		free(aw);
		ldns_pkt_free(a);
	}
	ldns_rdf_deep_free(prior);
	ldns_rdf_deep_free(mac);
	ldns_pkt_free(q);

	/* hmac-sha384, our own both ways: request, then a chained answer. */
	struct tsig_ctx cli, srv2;
	struct zd_buf b;
	zd_buf_init(&b, 65535);
	q = query_new("tld.", LDNS_RR_TYPE_SOA);
	w = wire_of(q, &n);
	assert_int_equal(zd_buf_append(&b, w, n), ZD_OK);
	free(w);
	tsig_ctx_init(&cli, k2);
	assert_int_equal(tsig_sign(&cli, &b, (uint64_t)time(NULL)), ZD_OK);
	assert_int_equal(tsig_rr_parse(b.data, b.len, &t), ZD_OK);
	assert_int_equal(t.mac_len, 48);
	tsig_ctx_init(&srv2, k2);
	assert_int_equal(tsig_verify(&srv2, b.data, b.len, &t, (uint64_t)time(NULL), &err), ZD_OK);
	assert_int_equal(err, TSIG_NOERROR);
	b.data[2] |= 0x80; /* now an answer */
	b.len = t.off;
	b.data[11]--;
	assert_int_equal(tsig_sign(&srv2, &b, (uint64_t)time(NULL)), ZD_OK);
	assert_int_equal(tsig_rr_parse(b.data, b.len, &t), ZD_OK);
	assert_int_equal(tsig_verify(&cli, b.data, b.len, &t, (uint64_t)time(NULL), &err), ZD_OK);
	assert_int_equal(err, TSIG_NOERROR);
	zd_buf_clear(&b);
	ldns_pkt_free(q);
	tsig_key_free(k1);
	tsig_key_free(k2);
}

static const struct env_opts defaults = {0};

/* --- start-up ---------------------------------------------------------------- */

static void
startup_errors_are_reported_and_leave_nothing_behind(void **state)
{
	struct env e;
	char err[256];
	(void)state;
	env_start(&e, &defaults);
	struct event_base *base = event_base_new();
	struct xfr_server *x = NULL;
	/* a secret that is no base64: the server refuses to start */
	static const char bad[] = "database: \"x\"\n"
	                          "tsig-keys:\n"
	                          "  - name: k1.\n"
	                          "    secret: \"%%%%\"\n";
	struct zd_config *cfg = NULL;
	assert_int_equal(zd_config_parse(bad, strlen(bad), &cfg, err, sizeof err), ZD_OK);
	assert_int_equal(xfr_server_new(base, cfg, &x), ZD_EMALFORMED);
	assert_null(x);
	zd_config_free(cfg);
	/* a port in use: ZD_EIO, port untouched */
	assert_int_equal(xfr_server_new(base, e.cfg, &x), ZD_OK);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(e.port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	uint16_t port = 7;
	assert_int_equal(xfr_server_listen_addr(x, (struct sockaddr *)&sin, sizeof sin, &port),
	                 ZD_EIO);
	assert_int_equal(port, 7);
	/* the same zone twice */
	const struct zd_zone_config *zc = zd_config_zone_find(e.cfg, "small.");
	assert_int_equal(xfr_server_zone_add(x, zc, e.small_zone), ZD_OK);
	assert_int_equal(xfr_server_zone_add(x, zc, e.small_zone), ZD_ELIMIT);
	xfr_server_free(x);
	xfr_server_free(NULL);
	event_base_free(base);
	env_stop(&e);
}

/* --- malformed input, refusals, limits -------------------------------------- */

static void
malformed_queries_get_formerr_or_are_dropped_and_serving_goes_on(void **state)
{
	struct env e;
	size_t an;
	(void)state;
	env_start(&e, &defaults);

	/* shorter than a header: dropped */
	uint8_t *a = udp_exchange_raw(e.port, (const uint8_t *)"\x12\x34\x00", 3, 300, &an);
	assert_null(a);
	/* a header promising a question that is not there: FORMERR */
	static const uint8_t trunc[12] = {0xab, 0xcd, 0x00, 0x00, 0x00, 0x01};
	assert_non_null(a = udp_exchange_raw(e.port, trunc, sizeof trunc, WAIT_MS, &an));
	assert_true(an >= 12);
	assert_int_equal(a[0], 0xab);
	assert_int_equal(a[1], 0xcd);
	assert_true(a[2] & 0x80);
	assert_int_equal(a[3] & 0x0f, LDNS_RCODE_FORMERR);
	free(a);
	/* three TSIG RRs (only the last may be one, RFC 8945 s5.2): FORMERR,
	 * and nothing leaks (ldns_wire2pkt() would; found by fuzzing) */
	static const char three_tsigs_hex[] = "12340000000100000000000303746c640000060001"
	                                      "016b0000fa00ff00000000001d0b686d61632d73686132353600"
	                                      "00006955b900012c0000123400000000"
	                                      "016b0000fa00ff00000000001d0b686d61632d73686132353600"
	                                      "00006955b900012c0000123400000000"
	                                      "016b0000fa00ff00000000001d0b686d61632d73686132353600"
	                                      "00006955b900012c0000123400000000";
	uint8_t three_tsigs[sizeof three_tsigs_hex / 2];
	for (size_t i = 0; i < sizeof three_tsigs; i++) {
		unsigned hi = (unsigned)ldns_hexdigit_to_int(three_tsigs_hex[2 * i]);
		unsigned lo = (unsigned)ldns_hexdigit_to_int(three_tsigs_hex[2 * i + 1]);
		three_tsigs[i] = (uint8_t)(hi << 4 | lo);
	}
	assert_non_null(
	        a = udp_exchange_raw(e.port, three_tsigs, sizeof three_tsigs, WAIT_MS, &an));
	assert_int_equal(a[3] & 0x0f, LDNS_RCODE_FORMERR);
	free(a);
	/* two questions: FORMERR */
	ldns_pkt *q = query_new("tld.", LDNS_RR_TYPE_SOA);
	ldns_rr *q2 = NULL;
	assert_int_equal(ldns_rr_new_question_frm_str(&q2, "tld. IN A", NULL, NULL),
	                 LDNS_STATUS_OK);
	ldns_pkt_push_rr(q, LDNS_SECTION_QUESTION, q2); /* q owns it */
	ldns_pkt *p = udp_exchange(e.port, q, NULL, NULL);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_FORMERR);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	/* zero questions: FORMERR */
	static const uint8_t noq[12] = {0x00, 0x07, 0x00, 0x00};
	assert_non_null(a = udp_exchange_raw(e.port, noq, sizeof noq, WAIT_MS, &an));
	assert_int_equal(a[3] & 0x0f, LDNS_RCODE_FORMERR);
	free(a);
	/* garbage after a valid header */
	uint8_t junk[200];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	junk[2] = 0; /* a query */
	a = udp_exchange_raw(e.port, junk, sizeof junk, 300, &an);
	if (a != NULL)
		assert_int_equal(a[3] & 0x0f, LDNS_RCODE_FORMERR);
	free(a);
	/* a response is never answered */
	static const uint8_t resp[12] = {0x00, 0x08, 0x80, 0x00};
	assert_null(udp_exchange_raw(e.port, resp, sizeof resp, 300, &an));

	/* TCP: a short frame is dropped, a broken one gets FORMERR, then a
	 * good query on the same connection is answered. */
	int fd = tcp_connect(e.port);
	tcp_send_raw(fd, (const uint8_t *)"\x01\x02", 2);
	tcp_send_raw(fd, trunc, sizeof trunc);
	size_t n;
	uint8_t *w = tcp_recv(fd, &n);
	assert_non_null(w);
	assert_int_equal(w[3] & 0x0f, LDNS_RCODE_FORMERR);
	free(w);
	q = query_new("tld.", LDNS_RR_TYPE_SOA);
	tcp_send_pkt(fd, q);
	assert_non_null(w = tcp_recv(fd, &n));
	assert_int_equal(ldns_wire2pkt(&p, w, n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	free(w);
	close(fd);
	assert_true(env_stats(&e).dropped >= 2);
	env_stop(&e);
}

static void
other_opcodes_types_and_zones_are_refused(void **state)
{
	struct env e;
	(void)state;
	env_start(&e, &defaults);
	/* NOTIFY in: NOTIMP */
	ldns_pkt *q = query_new("tld.", LDNS_RR_TYPE_SOA);
	ldns_pkt_set_opcode(q, LDNS_PACKET_NOTIFY);
	ldns_pkt *p = udp_exchange(e.port, q, NULL, NULL);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOTIMPL);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	/* another type at the apex, a name below it, a zone we do not serve */
	const char *names[] = {"tld.", "d7.tld.", "example."};
	ldns_rr_type types[] = {LDNS_RR_TYPE_NS, LDNS_RR_TYPE_SOA, LDNS_RR_TYPE_SOA};
	for (int i = 0; i < 3; i++) {
		q = query_new(names[i], types[i]);
		p = udp_exchange(e.port, q, NULL, NULL);
		assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
		ldns_pkt_free(p);
		ldns_pkt_free(q);
	}
	/* AXFR of an unknown zone; signed: NOTAUTH, and the answer is signed */
	struct xfr_got g;
	q = query_new("example.", LDNS_RR_TYPE_AXFR);
	tcp_transfer(e.port, q, NULL, NULL, NULL, &g);
	assert_int_equal(g.rcode, LDNS_RCODE_REFUSED);
	got_free(&g);
	ldns_pkt_free(q);
	q = query_new("example.", LDNS_RR_TYPE_AXFR);
	tcp_transfer(e.port, q, "k1.", SECRET1, "hmac-sha256.", &g);
	assert_int_equal(g.rcode, LDNS_RCODE_NOTAUTH);
	got_free(&g);
	ldns_pkt_free(q);
	/* AXFR over UDP: FORMERR (RFC 5936 s4.2) */
	q = query_new("tld.", LDNS_RR_TYPE_AXFR);
	p = udp_exchange(e.port, q, NULL, NULL);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_FORMERR);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	/* IXFR without the client's SOA: FORMERR */
	q = query_new("tld.", LDNS_RR_TYPE_IXFR);
	tcp_transfer(e.port, q, NULL, NULL, NULL, &g);
	assert_int_equal(g.rcode, LDNS_RCODE_FORMERR);
	got_free(&g);
	ldns_pkt_free(q);
	env_stop(&e);
}

static void
transfers_outside_the_acl_or_without_the_key_are_refused(void **state)
{
	struct env e;
	struct xfr_got g;
	(void)state;
	env_start(&e, &defaults);
	/* closed.: only 10/8 may transfer */
	ldns_pkt *q = query_new("closed.", LDNS_RR_TYPE_AXFR);
	tcp_transfer(e.port, q, NULL, NULL, NULL, &g);
	assert_int_equal(g.rcode, LDNS_RCODE_REFUSED);
	got_free(&g);
	ldns_pkt_free(q);
	pthread_mutex_lock(&e.lock);
	assert_int_equal(e.last.result, XFR_RESULT_REFUSED);
	assert_string_equal(e.last_reason, "not in ACL");
	pthread_mutex_unlock(&e.lock);
	/* signed.: needs k1; unsigned and with another (valid) key: REFUSED */
	q = ixfr_query_new("signed.", 1);
	tcp_transfer(e.port, q, NULL, NULL, NULL, &g);
	assert_int_equal(g.rcode, LDNS_RCODE_REFUSED);
	got_free(&g);
	ldns_pkt_free(q);
	q = query_new("signed.", LDNS_RR_TYPE_AXFR);
	tcp_transfer(e.port, q, "k3.", SECRET3, "hmac-sha512.", &g);
	assert_int_equal(g.rcode, LDNS_RCODE_REFUSED); /* and signed by k3 (checked) */
	got_free(&g);
	ldns_pkt_free(q);
	/* the SOA is not secret: answered without a key */
	q = query_new("signed.", LDNS_RR_TYPE_SOA);
	ldns_pkt *p = udp_exchange(e.port, q, NULL, NULL);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	env_stop(&e);
}

static void
bad_tsig_gets_notauth_with_the_tsig_error(void **state)
{
	struct env e;
	(void)state;
	env_start(&e, &defaults);
	/* right name, wrong secret: BADSIG, unsigned (MAC size 0) */
	ldns_pkt *q = query_new("signed.", LDNS_RR_TYPE_AXFR);
	sign(q, "k1.", SECRET2, "hmac-sha256.", NULL);
	int fd = tcp_connect(e.port);
	tcp_send_pkt(fd, q);
	size_t n;
	uint8_t *w = tcp_recv(fd, &n);
	assert_non_null(w);
	ldns_pkt *p = NULL;
	assert_int_equal(ldns_wire2pkt(&p, w, n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOTAUTH);
	assert_int_equal(tsig_error_of(p), TSIG_BADSIG);
	assert_int_equal(ldns_rdf_size(ldns_rr_rdf(ldns_pkt_tsig(p), 3)), 2); /* MAC size 0 */
	ldns_pkt_free(p);
	free(w);
	ldns_pkt_free(q);
	/* unknown key name: BADKEY (same connection keeps working) */
	q = query_new("signed.", LDNS_RR_TYPE_AXFR);
	sign(q, "nokey.", SECRET1, "hmac-sha256.", NULL);
	tcp_send_pkt(fd, q);
	assert_non_null(w = tcp_recv(fd, &n));
	assert_int_equal(ldns_wire2pkt(&p, w, n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOTAUTH);
	assert_int_equal(tsig_error_of(p), TSIG_BADKEY);
	ldns_pkt_free(p);
	free(w);
	ldns_pkt_free(q);
	/* right key, algorithm other than the key's: BADKEY */
	q = query_new("signed.", LDNS_RR_TYPE_SOA);
	sign(q, "k1.", SECRET1, "hmac-sha512.", NULL);
	p = udp_exchange(e.port, q, NULL, NULL);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOTAUTH);
	assert_int_equal(tsig_error_of(p), TSIG_BADKEY);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	/* signed 1000 s in the past: BADTIME, and that answer is signed */
	struct tsig_key *k1 = NULL;
	struct zd_tsig_key c1 = {"k1.", "hmac-sha256.", SECRET1};
	assert_int_equal(tsig_key_new(&c1, &k1), ZD_OK);
	q = query_new("signed.", LDNS_RR_TYPE_AXFR);
	w = wire_of(q, &n);
	struct zd_buf b;
	zd_buf_init(&b, 65535);
	assert_int_equal(zd_buf_append(&b, w, n), ZD_OK);
	free(w);
	struct tsig_ctx cli;
	tsig_ctx_init(&cli, k1);
	assert_int_equal(tsig_sign(&cli, &b, (uint64_t)time(NULL) - 1000), ZD_OK);
	tcp_send_raw(fd, b.data, b.len);
	assert_non_null(w = tcp_recv(fd, &n));
	assert_int_equal(ldns_wire2pkt(&p, w, n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOTAUTH);
	assert_int_equal(tsig_error_of(p), TSIG_BADTIME);
	struct tsig_rr t;
	uint16_t err;
	assert_int_equal(tsig_rr_parse(w, n, &t), ZD_OK);
	assert_int_equal(t.other_len, 6); /* the server's time */
	assert_int_equal(tsig_verify(&cli, w, n, &t, (uint64_t)time(NULL), &err), ZD_OK);
	assert_int_equal(err, TSIG_BADTIME); /* the peer's error, reported as such */
	ldns_pkt_free(p);
	free(w);
	zd_buf_clear(&b);
	ldns_pkt_free(q);
	tsig_key_free(k1);
	close(fd);
	env_stop(&e);
}

static void
connection_limit_holds_and_serving_goes_on(void **state)
{
	struct env e;
	struct env_opts o = {.max_tcp_clients = 3};
	int fds[8];
	(void)state;
	env_start(&e, &o);
	for (int i = 0; i < 8; i++) {
		fds[i] = tcp_connect(e.port);
		/* let the server accept in order */
		for (int t = 0;
		     t < 100 && env_stats(&e).tcp_clients < (uint32_t)(i < 3 ? i + 1 : 3); t++)
			usleep(2000);
	}
	assert_int_equal(env_stats(&e).tcp_clients, 3);
	for (int i = 0; i < 3; i++)
		assert_false(closed_within(fds[i], 100));
	for (int i = 3; i < 8; i++)
		assert_true(closed_within(fds[i], WAIT_MS));
	/* the first three still work */
	ldns_pkt *q = query_new("tld.", LDNS_RR_TYPE_SOA);
	tcp_send_pkt(fds[0], q);
	size_t n;
	uint8_t *w = tcp_recv(fds[0], &n);
	assert_non_null(w);
	free(w);
	ldns_pkt_free(q);
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	/* once they are gone, new ones are served */
	for (int t = 0; t < 500 && env_stats(&e).tcp_clients > 0; t++)
		usleep(2000);
	int fd = tcp_connect(e.port);
	q = query_new("tld.", LDNS_RR_TYPE_SOA);
	tcp_send_pkt(fd, q);
	assert_non_null(w = tcp_recv(fd, &n));
	free(w);
	ldns_pkt_free(q);
	close(fd);
	env_stop(&e);
}

static void
idle_connection_is_closed_after_the_timeout(void **state)
{
	struct env e;
	struct env_opts o = {.idle_ms = 200};
	(void)state;
	env_start(&e, &o);
	int fd = tcp_connect(e.port);
	/* a query keeps it open for a while ... */
	ldns_pkt *q = query_new("tld.", LDNS_RR_TYPE_SOA);
	tcp_send_pkt(fd, q);
	size_t n;
	uint8_t *w = tcp_recv(fd, &n);
	assert_non_null(w);
	free(w);
	ldns_pkt_free(q);
	/* ... then silence closes it */
	uint64_t t0 = zd_now_ms();
	assert_true(closed_within(fd, WAIT_MS));
	assert_true(zd_now_ms() - t0 >= 150);
	close(fd);
	/* bytes trickled in, never a whole query, do not keep it open */
	fd = tcp_connect(e.port);
	t0 = zd_now_ms();
	int closed = 0;
	assert_int_equal(send(fd, "\x00\x40", 2, MSG_NOSIGNAL), 2); /* a 64-byte frame */
	for (int i = 0; i < 40 && !closed; i++) {
		if (send(fd, "\x00", 1, MSG_NOSIGNAL) != 1)
			break;
		closed = closed_within(fd, 50);
	}
	assert_true(closed || closed_within(fd, WAIT_MS));
	assert_true(zd_now_ms() - t0 < 1000);
	close(fd);
	env_stop(&e);
}

static void
transfers_beyond_max_transfers_get_servfail(void **state)
{
	struct env e;
	struct xfr_got g;
	(void)state;
	env_start(&e, &defaults);
	/* No transfer slot at all: every AXFR/IXFR is turned away. */
	((struct zd_config *)e.cfg)->limits.max_transfers = 0;
	ldns_pkt *q = query_new("tld.", LDNS_RR_TYPE_AXFR);
	tcp_transfer(e.port, q, NULL, NULL, NULL, &g);
	assert_int_equal(g.rcode, LDNS_RCODE_SERVFAIL);
	got_free(&g);
	ldns_pkt_free(q);
	env_stop(&e);
}

/* --- answers ---------------------------------------------------------------- */

static void
soa_query_answers_the_published_serial(void **state)
{
	struct env e;
	(void)state;
	env_start(&e, &defaults);
	ldns_pkt *q = query_new("TLD.", LDNS_RR_TYPE_SOA); /* case does not matter */
	ldns_pkt *p = udp_exchange(e.port, q, NULL, NULL);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_true(ldns_pkt_aa(p));
	assert_int_equal(ldns_pkt_ancount(p), 1);
	const ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
	assert_int_equal(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
	assert_int_equal(ldns_rdf2native_int32(ldns_rr_rdf(soa, 2)), SERIAL3);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	/* signed SOA query: signed answer; with EDNS: OPT echoed */
	ldns_rdf *mac = NULL;
	q = query_new("tld.", LDNS_RR_TYPE_SOA);
	ldns_pkt_set_edns_udp_size(q, 1232);
	sign(q, "k3.", SECRET3, "hmac-sha512.", &mac);
	uint8_t *w;
	size_t n;
	p = udp_exchange(e.port, q, &w, &n);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_true(ldns_pkt_edns(p));
	assert_true(ldns_pkt_tsig_verify(p, w, n, "k3.", SECRET3, mac));
	free(w);
	ldns_rdf_deep_free(mac);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	env_stop(&e);
}

static void
axfr_returns_every_record_framed_by_soa(void **state)
{
	struct env e;
	struct xfr_got g;
	struct lines want = {0};
	(void)state;
	env_start(&e, &defaults);
	ldns_pkt *q = query_new("tld.", LDNS_RR_TYPE_AXFR);
	tcp_transfer(e.port, q, NULL, NULL, NULL, &g);
	assert_int_equal(g.rcode, 0);
	assert_false(g.ixfr_style);
	assert_true(g.first_msg_has_question);
	assert_true(g.messages > 2); /* several 64 KiB messages */
	assert_int_equal(g.n_soa, 2);
	assert_int_equal(g.soa_serials[0], SERIAL3);
	assert_int_equal(g.soa_serials[1], SERIAL3);
	expected_zone(3, &want);
	assert_lines_equal(&g.all, &want);
	lines_free(&want);
	got_free(&g);
	ldns_pkt_free(q);
	pthread_mutex_lock(&e.lock);
	assert_int_equal(e.last.kind, XFR_AXFR);
	assert_int_equal(e.last.result, XFR_RESULT_OK);
	assert_int_equal(e.last.to_serial, SERIAL3);
	assert_int_equal(e.last.messages, (uint32_t)g.messages);
	pthread_mutex_unlock(&e.lock);
	env_stop(&e);
}

static void
ixfr_from_each_kept_serial_returns_exactly_the_difference(void **state)
{
	struct env e;
	(void)state;
	env_start(&e, &defaults);
	struct lines cur = {0};
	expected_zone(3, &cur);
	for (int k = 1; k <= 2; k++) {
		struct xfr_got g;
		struct lines old = {0}, dels = {0}, adds = {0};
		ldns_pkt *q = ixfr_query_new("tld.", SERIAL1 + (uint32_t)k - 1);
		tcp_transfer(e.port, q, NULL, NULL, NULL, &g);
		assert_int_equal(g.rcode, 0);
		assert_true(g.ixfr_style);
		/* RFC 1995 s4: new SOA, old SOA, deletions, new SOA, additions, new SOA */
		assert_int_equal(g.n_soa, 4);
		assert_int_equal(g.soa_serials[0], SERIAL3);
		assert_int_equal(g.soa_serials[1], SERIAL1 + (uint32_t)k - 1);
		assert_int_equal(g.soa_serials[2], SERIAL3);
		assert_int_equal(g.soa_serials[3], SERIAL3);
		expected_zone(k, &old);
		lines_minus(&old, &cur, &dels);
		lines_minus(&cur, &old, &adds);
		assert_true(dels.n > 0 && adds.n > 0);
		assert_lines_equal(&g.dels, &dels);
		assert_lines_equal(&g.adds, &adds);
		lines_free(&old);
		lines_free(&dels);
		lines_free(&adds);
		got_free(&g);
		ldns_pkt_free(q);
	}
	lines_free(&cur);
	env_stop(&e);
}

static void
ixfr_from_an_unknown_serial_returns_the_whole_zone(void **state)
{
	struct env e;
	struct xfr_got g;
	struct lines want = {0};
	(void)state;
	env_start(&e, &defaults);
	ldns_pkt *q = ixfr_query_new("tld.", 12345);
	tcp_transfer(e.port, q, NULL, NULL, NULL, &g);
	assert_int_equal(g.rcode, 0);
	assert_false(g.ixfr_style);
	assert_int_equal(g.n_soa, 2);
	expected_zone(3, &want);
	assert_lines_equal(&g.all, &want);
	lines_free(&want);
	got_free(&g);
	ldns_pkt_free(q);
	pthread_mutex_lock(&e.lock);
	assert_int_equal(e.last.kind, XFR_IXFR_AXFR);
	assert_true(e.last.has_from);
	assert_int_equal(e.last.from_serial, 12345);
	pthread_mutex_unlock(&e.lock);
	env_stop(&e);
}

static void
ixfr_from_the_current_or_a_newer_serial_returns_one_soa(void **state)
{
	struct env e;
	(void)state;
	env_start(&e, &defaults);
	uint32_t serials[] = {SERIAL3, SERIAL3 + 5};
	for (int i = 0; i < 2; i++) {
		struct xfr_got g;
		ldns_pkt *q = ixfr_query_new("tld.", serials[i]);
		tcp_transfer(e.port, q, NULL, NULL, NULL, &g);
		assert_int_equal(g.rcode, 0);
		assert_int_equal(g.messages, 1);
		assert_int_equal(g.n_soa, 1);
		assert_int_equal(g.soa_serials[0], SERIAL3);
		assert_int_equal(g.all.n, 0);
		got_free(&g);
		ldns_pkt_free(q);
	}
	env_stop(&e);
}

static void
ixfr_over_udp_fits_or_returns_only_the_soa(void **state)
{
	struct env e;
	(void)state;
	env_start(&e, &defaults);
	/* the whole zone cannot fit: the SOA alone (RFC 1995 s2) */
	ldns_pkt *q = ixfr_query_new("tld.", 12345);
	ldns_pkt *p = udp_exchange(e.port, q, NULL, NULL);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(p), 0)),
	                 LDNS_RR_TYPE_SOA);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	/* v2 -> v3 fits in 1232 bytes: the difference itself */
	q = ixfr_query_new("tld.", SERIAL2);
	ldns_pkt_set_edns_udp_size(q, 1232);
	uint8_t *w;
	size_t n;
	p = udp_exchange(e.port, q, &w, &n);
	assert_true(n <= 1232);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_true(ldns_pkt_ancount(p) > 4);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(p), 1)),
	                 LDNS_RR_TYPE_SOA);
	free(w);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	/* v1 -> v3 fits in 512 bytes unsigned, but not with a hmac-sha512
	 * TSIG: then the SOA alone, signed */
	q = ixfr_query_new("tld.", SERIAL1);
	p = udp_exchange(e.port, q, &w, &n);
	assert_true(n <= 512);
	assert_int_equal(ldns_pkt_ancount(p), 17);
	free(w);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	ldns_rdf *mac = NULL;
	q = ixfr_query_new("tld.", SERIAL1);
	sign(q, "k3.", SECRET3, "hmac-sha512.", &mac);
	p = udp_exchange(e.port, q, &w, &n);
	assert_true(n <= 512);
	assert_int_equal(ldns_pkt_ancount(p), 1);
	assert_true(ldns_pkt_tsig_verify(p, w, n, "k3.", SECRET3, mac));
	ldns_rdf_deep_free(mac);
	free(w);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	env_stop(&e);
}

static void
signed_transfers_verify_in_every_message(void **state)
{
	struct env e;
	struct xfr_got g;
	struct lines want = {0};
	(void)state;
	env_start(&e, &defaults);
	/* AXFR of the big zone over hmac-sha256: many messages, a chain. */
	ldns_pkt *q = query_new("tld.", LDNS_RR_TYPE_AXFR);
	tcp_transfer(e.port, q, "k1.", SECRET1, "hmac-sha256.", &g);
	assert_int_equal(g.rcode, 0);
	assert_true(g.messages > 2);
	expected_zone(3, &want);
	assert_lines_equal(&g.all, &want);
	lines_free(&want);
	got_free(&g);
	ldns_pkt_free(q);
	/* IXFR over hmac-sha512 where the ACL requires k1: refused, signed */
	q = ixfr_query_new("tld.", SERIAL1);
	tcp_transfer(e.port, q, "k3.", SECRET3, "hmac-sha512.", &g);
	assert_int_equal(g.rcode, 0); /* tld.'s ACL names no key: allowed, signed */
	assert_true(g.ixfr_style);
	got_free(&g);
	ldns_pkt_free(q);
	/* signed.: the key it requires */
	q = query_new("signed.", LDNS_RR_TYPE_AXFR);
	tcp_transfer(e.port, q, "k1.", SECRET1, "hmac-sha256.", &g);
	assert_int_equal(g.rcode, 0);
	assert_int_equal(g.all.n, 21);
	got_free(&g);
	ldns_pkt_free(q);
	pthread_mutex_lock(&e.lock);
	assert_int_equal(e.last.result, XFR_RESULT_OK);
	pthread_mutex_unlock(&e.lock);
	env_stop(&e);
}

static void
pipelined_queries_on_one_connection_are_answered_in_order(void **state)
{
	struct env e;
	(void)state;
	env_start(&e, &defaults);
	ldns_pkt *qs[4] = {query_new("tld.", LDNS_RR_TYPE_SOA),
	                   query_new("small.", LDNS_RR_TYPE_AXFR),
	                   query_new("small.", LDNS_RR_TYPE_SOA), ixfr_query_new("tld.", SERIAL3)};
	/* all four in one write */
	uint8_t buf[4096];
	size_t len = 0;
	for (int i = 0; i < 4; i++) {
		size_t n;
		uint8_t *w = wire_of(qs[i], &n);
		buf[len] = (uint8_t)(n >> 8);
		buf[len + 1] = (uint8_t)n;
		memcpy(buf + len + 2, w, n);
		len += n + 2;
		free(w);
	}
	int fd = tcp_connect(e.port);
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
	for (int i = 0; i < 4; i++) {
		if (i == 1) {
			struct xfr_got g;
			read_transfer(fd, ldns_pkt_id(qs[i]), NULL, NULL, NULL, &g);
			assert_int_equal(g.all.n, 21);
			got_free(&g);
			continue;
		}
		size_t n;
		uint8_t *w = tcp_recv(fd, &n);
		assert_non_null(w);
		ldns_pkt *p = NULL;
		assert_int_equal(ldns_wire2pkt(&p, w, n), LDNS_STATUS_OK);
		assert_int_equal(ldns_pkt_id(p), ldns_pkt_id(qs[i]));
		assert_int_equal(ldns_pkt_ancount(p), 1);
		ldns_pkt_free(p);
		free(w);
	}
	close(fd);
	for (int i = 0; i < 4; i++)
		ldns_pkt_free(qs[i]);
	env_stop(&e);
}

/* Random bytes and bit-flipped real queries (plain, EDNS, TSIG, IXFR) over
 * UDP and TCP: answered or dropped, never a crash, and serving goes on. */
static void
random_and_mutated_queries_never_stop_the_server(void **state)
{
	struct env e;
	(void)state;
	env_start(&e, &defaults);
	srand(12345);
	uint8_t *seeds[4];
	size_t seed_len[4];
	ldns_pkt *q[4] = {query_new("tld.", LDNS_RR_TYPE_SOA), ixfr_query_new("tld.", SERIAL1),
	                  query_new("signed.", LDNS_RR_TYPE_AXFR),
	                  query_new("tld.", LDNS_RR_TYPE_SOA)};
	ldns_pkt_set_edns_udp_size(q[3], 4096);
	sign(q[2], "k1.", SECRET1, "hmac-sha256.", NULL);
	for (int i = 0; i < 4; i++)
		seeds[i] = wire_of(q[i], &seed_len[i]);
	int udp = udp_socket(NULL);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(e.port)};
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int tcp = tcp_connect(e.port);
	uint8_t buf[600];
	for (int i = 0; i < 3000; i++) {
		size_t n;
		if (i % 3 == 0) {
			n = (size_t)(rand() % (int)sizeof buf);
			for (size_t j = 0; j < n; j++)
				buf[j] = (uint8_t)rand();
		} else {
			int k = rand() % 4;
			n = seed_len[k];
			memcpy(buf, seeds[k], n);
			for (int f = 0; f < 1 + rand() % 4; f++)
				buf[(size_t)rand() % n] ^= (uint8_t)(1u << (rand() % 8));
			if (rand() % 4 == 0)
				n = (size_t)rand() % n; /* and truncated */
		}
		if (n > 2 && rand() % 2)
			buf[2] &= 0x7f; /* mostly queries, not responses */
		(void)sendto(udp, buf, n, 0, (struct sockaddr *)&to, sizeof to);
		if (i % 10 == 0) {
			uint8_t hdr[2] = {(uint8_t)(n >> 8), (uint8_t)n};
			if (send(tcp, hdr, 2, MSG_NOSIGNAL) != 2 ||
			    send(tcp, buf, n, MSG_NOSIGNAL) < 0) {
				close(tcp);
				tcp = tcp_connect(e.port);
			}
		}
		/* keep our socket buffers from filling up */
		while (wait_readable(udp, 0) && recv(udp, buf, sizeof buf, 0) > 0)
			;
		while (wait_readable(tcp, 0) && recv(tcp, buf, sizeof buf, 0) > 0)
			;
	}
	close(udp);
	close(tcp);
	for (int i = 0; i < 4; i++) {
		free(seeds[i]);
		ldns_pkt_free(q[i]);
	}
	/* still serving both ways (over UDP like a real client: the burst may
	 * still fill the server's socket buffer, so ask again on silence) */
	ldns_pkt *p = query_new("tld.", LDNS_RR_TYPE_SOA);
	size_t pn, an = 0;
	uint8_t *pw = wire_of(p, &pn), *aw = NULL;
	for (int i = 0; i < 20 && aw == NULL; i++)
		aw = udp_exchange_raw(e.port, pw, pn, 1000, &an);
	assert_non_null(aw);
	assert_true(an >= 12);
	assert_int_equal(aw[3] & 0x0f, LDNS_RCODE_NOERROR);
	free(aw);
	free(pw);
	ldns_pkt_free(p);
	struct xfr_got g;
	p = query_new("small.", LDNS_RR_TYPE_AXFR);
	tcp_transfer(e.port, p, NULL, NULL, NULL, &g);
	assert_int_equal(g.rcode, 0);
	assert_int_equal(g.all.n, 21);
	got_free(&g);
	ldns_pkt_free(p);
	env_stop(&e);
}

static void
a_client_leaving_mid_transfer_frees_the_stream(void **state)
{
	struct env e;
	(void)state;
	env_start(&e, &defaults);
	for (int i = 0; i < 5; i++) {
		int fd = tcp_connect(e.port);
		ldns_pkt *q = query_new("tld.", LDNS_RR_TYPE_AXFR);
		tcp_send_pkt(fd, q);
		size_t n;
		uint8_t *w = tcp_recv(fd, &n);
		assert_non_null(w);
		free(w);
		ldns_pkt_free(q);
		close(fd);
	}
	for (int t = 0; t < 500 && (env_stats(&e).transfers > 0 || env_stats(&e).tcp_clients > 0);
	     t++)
		usleep(2000);
	assert_int_equal(env_stats(&e).transfers, 0);
	assert_int_equal(env_stats(&e).tcp_clients, 0);
	struct xfr_got g;
	ldns_pkt *q = ixfr_query_new("tld.", SERIAL2);
	tcp_transfer(e.port, q, NULL, NULL, NULL, &g);
	assert_int_equal(g.rcode, 0);
	assert_int_equal(g.n_soa, 4);
	got_free(&g);
	ldns_pkt_free(q);
	env_stop(&e);
}

/* A transfer that began before a publish serves the version it began with. */
static void
a_transfer_stays_on_its_version_while_a_new_one_is_published(void **state)
{
	struct env e;
	struct xfr_got g;
	struct lines want = {0};
	(void)state;
	struct store *shared = g_tld;
	g_tld = tld_store_new(); /* this test publishes: its own copy */
	/* 512-byte messages: the stream is far longer than the server's queue
	 * and the socket buffers can hold while this client does not read, so
	 * it is still running when version 4 is published. */
	static const struct env_opts small_messages = {.max_message_bytes = 512};
	env_start(&e, &small_messages);
	/* a small receive window keeps the server from finishing at once */
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(e.port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = -1, mid = 0;
	ldns_pkt *q = NULL;
	/* The kernel may grow the server's send buffer until the whole stream
	 * fits and the transfer ends before this client reads a byte; then
	 * nothing spans the publish, so read it out and try again. */
	for (int attempt = 0; attempt < 5 && !mid; attempt++) {
		if (fd >= 0) {
			read_transfer(fd, ldns_pkt_id(q), NULL, NULL, NULL, &g);
			got_free(&g);
			close(fd);
			ldns_pkt_free(q);
		}
		fd = socket(AF_INET, SOCK_STREAM, 0);
		int small = 2048;
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
		assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
		q = query_new("tld.", LDNS_RR_TYPE_AXFR);
		tcp_send_pkt(fd, q);
		/* up to 10 s: on a loaded machine the server may take a while */
		for (int t = 0; t < 5000 && env_stats(&e).transfers == 0; t++)
			usleep(2000);
		mid = env_stats(&e).transfers == 1;
	}
	/* publish version 4 while the stream runs */
	struct store_txn *t = NULL;
	char texts[2][256];
	assert_int_equal(store_txn_begin(g_tld, &t), ZD_OK);
	snprintf(texts[0], 256, "tld. 3600 IN SOA ns.tld. hostmaster.tld. %u 3600 600 1209600 3600",
	         SERIAL3 + 1);
	snprintf(texts[1], 256, "tld. 3600 IN NS ns.tld.");
	name_set(t, "tld.", texts, 2);
	snprintf(texts[0], 256, "zzz.tld. 86400 IN NS ns.zzz.example.");
	name_set(t, "zzz.tld.", texts, 1);
	snprintf(texts[0], 256, "d0.tld. 86400 IN NS ns.d0.example.");
	name_set(t, "d0.tld.", texts, 1);
	assert_int_equal(store_txn_publish(&t, SERIAL3 + 1, 0), ZD_OK);
	mid = mid && env_stats(&e).transfers == 1; /* still running after the publish */
	read_transfer(fd, ldns_pkt_id(q), NULL, NULL, NULL, &g);
	close(fd);
	assert_true(mid); /* otherwise this test proved nothing */
	assert_int_equal(g.rcode, 0);
	assert_int_equal(g.soa_serials[0], SERIAL3);
	assert_int_equal(g.soa_serials[1], SERIAL3);
	expected_zone(3, &want);
	assert_lines_equal(&g.all, &want);
	lines_free(&want);
	got_free(&g);
	ldns_pkt_free(q);
	/* the next one sees version 4 */
	q = query_new("tld.", LDNS_RR_TYPE_SOA);
	ldns_pkt *p = udp_exchange(e.port, q, NULL, NULL);
	assert_int_equal(
	        ldns_rdf2native_int32(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 0), 2)),
	        SERIAL3 + 1);
	ldns_pkt_free(p);
	ldns_pkt_free(q);
	env_stop(&e);
	store_free(g_tld);
	g_tld = shared;
}

/* --- NOTIFY ----------------------------------------------------------------- */

/* Wait for a NOTIFY on fd; its packet (and wire) or NULL. */
static ldns_pkt *
notify_recv(int fd, int ms, struct sockaddr_in *from, uint8_t **wire, size_t *n)
{
	if (!wait_readable(fd, ms))
		return NULL;
	uint8_t *buf = malloc(65535);
	socklen_t fl = sizeof *from;
	ssize_t r = recvfrom(fd, buf, 65535, 0, (struct sockaddr *)from, &fl);
	assert_true(r > 0);
	ldns_pkt *p = NULL;
	assert_int_equal(ldns_wire2pkt(&p, buf, (size_t)r), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_get_opcode(p), LDNS_PACKET_NOTIFY);
	assert_false(ldns_pkt_qr(p));
	if (wire) {
		*wire = buf;
		*n = (size_t)r;
	} else {
		free(buf);
	}
	return p;
}

static uint32_t
notify_serial(const ldns_pkt *p)
{
	assert_int_equal(ldns_pkt_ancount(p), 1);
	const ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
	assert_int_equal(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
	return ldns_rdf2native_int32(ldns_rr_rdf(soa, 2));
}

static void
notify_answer(int fd, const ldns_pkt *n, const struct sockaddr_in *to, const char *key,
              const char *secret, ldns_rdf *mac)
{
	ldns_pkt *a = ldns_pkt_clone(n);
	ldns_pkt_set_qr(a, 1);
	ldns_rr_list_deep_free(ldns_pkt_answer(a));
	ldns_pkt_set_answer(a, ldns_rr_list_new());
	ldns_pkt_set_ancount(a, 0);
	ldns_rr_free(ldns_pkt_tsig(a));
	ldns_pkt_set_tsig(a, NULL);
	ldns_pkt_set_arcount(a, 0);
	if (key)
		assert_int_equal(ldns_pkt_tsig_sign(a, key, secret, 300, "hmac-sha256.", mac),
		                 LDNS_STATUS_OK);
	size_t len;
	uint8_t *w = wire_of(a, &len);
	assert_int_equal(sendto(fd, w, len, 0, (const struct sockaddr *)to, sizeof *to),
	                 (ssize_t)len);
	free(w);
	ldns_pkt_free(a);
}

static void
notify_is_retried_until_answered(void **state)
{
	struct env e;
	uint16_t port;
	struct sockaddr_in from;
	(void)state;
	int fd = udp_socket(&port);
	struct env_opts o = {.notify_port = port, .notify_retries = 5, .notify_timeout_ms = 100};
	env_start(&e, &o);
	xfr_zone_published(e.x, "small"); /* with or without the dot */
	ldns_pkt *n1 = notify_recv(fd, WAIT_MS, &from, NULL, NULL);
	assert_non_null(n1);
	assert_int_equal(notify_serial(n1), 100);
	assert_true(ldns_pkt_aa(n1));
	/* not answered: it comes again, same id */
	ldns_pkt *n2 = notify_recv(fd, WAIT_MS, &from, NULL, NULL);
	assert_non_null(n2);
	assert_int_equal(ldns_pkt_id(n2), ldns_pkt_id(n1));
	/* an answer from elsewhere (wrong id) does not stop it */
	ldns_pkt_set_id(n2, (uint16_t)(ldns_pkt_id(n2) + 1));
	notify_answer(fd, n2, &from, NULL, NULL, NULL);
	ldns_pkt *n3 = notify_recv(fd, WAIT_MS, &from, NULL, NULL);
	assert_non_null(n3);
	/* answered: no more */
	notify_answer(fd, n3, &from, NULL, NULL, NULL);
	ldns_pkt *n4 = notify_recv(fd, 600, &from, NULL, NULL);
	if (n4 != NULL) /* at most one resend was already on its way */
		ldns_pkt_free(n4);
	assert_null(notify_recv(fd, 800, &from, NULL, NULL));
	assert_int_equal(env_stats(&e).notify_acked, 1);
	assert_int_equal(env_stats(&e).notify_failed, 0);
	ldns_pkt_free(n1);
	ldns_pkt_free(n2);
	ldns_pkt_free(n3);

	/* a new version while none is outstanding: a new NOTIFY with its serial */
	small_store_publish(e.small_zone, "small.", 101);
	xfr_zone_published(e.x, "small.");
	ldns_pkt *n5 = notify_recv(fd, WAIT_MS, &from, NULL, NULL);
	assert_non_null(n5);
	assert_int_equal(notify_serial(n5), 101);
	notify_answer(fd, n5, &from, NULL, NULL, NULL);
	ldns_pkt_free(n5);
	env_stop(&e);
	close(fd);
}

static void
a_publish_is_notified_at_once_while_an_older_notify_is_unanswered(void **state)
{
	struct env e;
	uint16_t port;
	struct sockaddr_in from;
	(void)state;
	int fd = udp_socket(&port);
	/* a resend would come only after 5 s */
	struct env_opts o = {.notify_port = port, .notify_retries = 5, .notify_timeout_ms = 5000};
	env_start(&e, &o);
	xfr_zone_published(e.x, "small.");
	ldns_pkt *n1 = notify_recv(fd, WAIT_MS, &from, NULL, NULL);
	assert_non_null(n1);
	assert_int_equal(notify_serial(n1), 100);
	/* not answered (the secondary was down, say); a new version follows */
	small_store_publish(e.small_zone, "small.", 101);
	uint64_t t0 = zd_now_ms();
	xfr_zone_published(e.x, "small.");
	ldns_pkt *n2 = notify_recv(fd, 1000, &from, NULL, NULL);
	assert_non_null(n2); /* well before the 5 s resend */
	assert_true(zd_now_ms() - t0 < 1000);
	assert_int_equal(notify_serial(n2), 101);
	assert_int_not_equal(ldns_pkt_id(n2), ldns_pkt_id(n1));
	/* answering the new one ends it; the old one's answer matches nothing */
	notify_answer(fd, n2, &from, NULL, NULL, NULL);
	notify_answer(fd, n1, &from, NULL, NULL, NULL);
	assert_null(notify_recv(fd, 500, &from, NULL, NULL));
	assert_int_equal(env_stats(&e).notify_acked, 1);
	ldns_pkt_free(n1);
	ldns_pkt_free(n2);
	env_stop(&e);
	close(fd);
}

static void
notify_gives_up_after_the_retries(void **state)
{
	struct env e;
	uint16_t port;
	struct sockaddr_in from;
	(void)state;
	int fd = udp_socket(&port);
	struct env_opts o = {.notify_port = port, .notify_retries = 2, .notify_timeout_ms = 30};
	env_start(&e, &o);
	xfr_zone_published(e.x, "small.");
	xfr_zone_published(e.x, "nosuchzone."); /* ignored */
	int got = 0;
	ldns_pkt *p;
	while ((p = notify_recv(fd, 1000, &from, NULL, NULL)) != NULL) {
		got++;
		ldns_pkt_free(p);
	}
	assert_int_equal(got, 3); /* first send and two retries */
	for (int t = 0; t < 200 && env_stats(&e).notify_failed == 0; t++)
		usleep(5000);
	assert_int_equal(env_stats(&e).notify_failed, 1);
	assert_int_equal(env_stats(&e).notify_sent, 3);
	env_stop(&e);
	close(fd);
}

static void
signed_notify_verifies_and_a_signed_answer_stops_it(void **state)
{
	struct env e;
	uint16_t port;
	struct sockaddr_in from;
	uint8_t *w;
	size_t n;
	(void)state;
	int fd = udp_socket(&port);
	struct env_opts o = {.notify_port = port,
	                     .notify_retries = 3,
	                     .notify_timeout_ms = 200,
	                     .notify_key = "k1."};
	env_start(&e, &o);
	xfr_zone_published(e.x, "small.");
	ldns_pkt *p = notify_recv(fd, WAIT_MS, &from, &w, &n);
	assert_non_null(p);
	assert_non_null(ldns_pkt_tsig(p));
	assert_true(ldns_pkt_tsig_verify(p, w, n, "k1.", SECRET1, NULL));
	ldns_rdf *mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(p), 3));
	/* an unsigned NOERROR answer is ignored ... */
	notify_answer(fd, p, &from, NULL, NULL, NULL);
	ldns_pkt *again = notify_recv(fd, WAIT_MS, &from, NULL, NULL);
	assert_non_null(again);
	ldns_pkt_free(again);
	/* ... a signed one stops it */
	notify_answer(fd, p, &from, "k1.", SECRET1, mac);
	for (int t = 0; t < 200 && env_stats(&e).notify_acked == 0; t++)
		usleep(5000);
	assert_int_equal(env_stats(&e).notify_acked, 1);
	ldns_rdf_deep_free(mac);
	free(w);
	ldns_pkt_free(p);
	env_stop(&e);
	close(fd);
}

static int
group_setup(void **state)
{
	(void)state;
	zd_log_level_set(ZD_LOG_NOTICE);
	if (evthread_use_pthreads() != 0)
		return -1;
	g_tld = tld_store_new();
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	store_free(g_tld);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(tsig_key_new_rejects_bad_secrets_and_algorithms),
	        cmocka_unit_test(tsig_rr_parse_rejects_misplaced_and_truncated_tsig),
	        cmocka_unit_test(startup_errors_are_reported_and_leave_nothing_behind),
	        cmocka_unit_test(malformed_queries_get_formerr_or_are_dropped_and_serving_goes_on),
	        cmocka_unit_test(other_opcodes_types_and_zones_are_refused),
	        cmocka_unit_test(transfers_outside_the_acl_or_without_the_key_are_refused),
	        cmocka_unit_test(bad_tsig_gets_notauth_with_the_tsig_error),
	        cmocka_unit_test(connection_limit_holds_and_serving_goes_on),
	        cmocka_unit_test(idle_connection_is_closed_after_the_timeout),
	        cmocka_unit_test(transfers_beyond_max_transfers_get_servfail),
	        cmocka_unit_test(random_and_mutated_queries_never_stop_the_server),
	        cmocka_unit_test(a_client_leaving_mid_transfer_frees_the_stream),
	        cmocka_unit_test(a_publish_is_notified_at_once_while_an_older_notify_is_unanswered),
	        cmocka_unit_test(notify_gives_up_after_the_retries),
	        cmocka_unit_test(tsig_interoperates_with_ldns_and_chains),
	        cmocka_unit_test(soa_query_answers_the_published_serial),
	        cmocka_unit_test(axfr_returns_every_record_framed_by_soa),
	        cmocka_unit_test(ixfr_from_each_kept_serial_returns_exactly_the_difference),
	        cmocka_unit_test(ixfr_from_an_unknown_serial_returns_the_whole_zone),
	        cmocka_unit_test(ixfr_from_the_current_or_a_newer_serial_returns_one_soa),
	        cmocka_unit_test(ixfr_over_udp_fits_or_returns_only_the_soa),
	        cmocka_unit_test(signed_transfers_verify_in_every_message),
	        cmocka_unit_test(pipelined_queries_on_one_connection_are_answered_in_order),
	        cmocka_unit_test(a_transfer_stays_on_its_version_while_a_new_one_is_published),
	        cmocka_unit_test(notify_is_retried_until_answered),
	        cmocka_unit_test(signed_notify_verifies_and_a_signed_answer_stops_it),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
