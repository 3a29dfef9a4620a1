/* tests/fuzz/dns_query_fuzz.c -- libFuzzer target for the transfer server's
 * handling of one DNS message from a peer (server/xfr.c, query_handle() and
 * what it calls: ldns parsing, TSIG, ACLs, SOA, AXFR and IXFR answers).
 *
 * A real xfr_server is built once, on an event base run by this thread, with
 * two zones on 127.0.0.1 port 0: tld. (serials 1..3, open to 127.0.0.1) and
 * signed. (key k1. required).  Each input is sent as it is, over TCP (2-byte
 * length prefix; every TCP_EVERY-th input) and over UDP, each time followed
 * by an SOA query for tld. on the same path; the loop runs without blocking
 * until that SOA is answered, or the server closes the TCP connection (its
 * id is never the input's, so only the answer to it can match).  So
 * after every input the server must still answer, must have no transfer
 * running, and must not have reached a zd_check_failed().  A server that
 * stops answering for HANG_MS is reported as a crash of the input.
 *
 * Not covered: NOTIFY answers (notify.c; their TSIG is tsig_fuzz's), the
 * idle timeout, and peers other than 127.0.0.1. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <ldns/ldns.h>

#include "common/zd_config.h"
#include "server/store.h"
#include "server/xfr.h"
#include "tests/fuzz/fuzz_log.h"

#define TCP_EVERY   1      /* inputs; 1: every input also goes over TCP */
#define HANG_MS     5000   /* no SOA answer for this long: the server hangs */
#define UDP_MAX     65507u /* bytes; the largest IPv4 UDP payload */
#define TCP_IN_MAX  131072 /* bytes of answers buffered from the server */
#define SOA_SERIAL  3u     /* tld.'s published serial */
#define SYNC_Q_SIZE 21     /* header, "tld.", type, class */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config_yaml[] =
        "database: \"dbname=unused\"\n"
        "limits:\n"
        "  max-tcp-clients: 4\n"
        "  tcp-idle-timeout-ms: 3600000\n"
        "  max-transfers: 2\n"
        "  max-message-bytes: 1024\n"
        "tsig-keys:\n"
        "  - name: k1.\n"
        "    secret: \"c2VjcmV0LWtleS1vbmUtZm9yLXRoZS10ZXN0cy0xMjM0NTY=\"\n"
        "  - name: k2.\n"
        "    algorithm: hmac-sha512.\n"
        "    secret: \"dGhpcmQta2V5LXNoYTUxMi1mb3ItdGVzdHMtYWJjZGVmZ2g=\"\n"
        "zones:\n"
        "  - name: tld.\n"
        "    soa: {mname: ns.nic.tld., rname: hm.nic.tld.}\n"
        "    allow-transfer:\n"
        "      - prefix: 127.0.0.1/32\n"
        "  - name: signed.\n"
        "    soa: {mname: ns.signed., rname: hm.signed.}\n"
        "    allow-transfer:\n"
        "      - prefix: 127.0.0.0/8\n"
        "        key: k1.\n";

/* Built on the first input, kept for the process's life: reachable, so
 * LeakSanitizer does not count it. */
struct harness {
	struct zd_config *cfg;
	struct store *tld, *signed_zone;
	struct event_base *base;
	struct xfr_server *x;
	uint16_t port;
	int udp_fd;        /* connected to the server */
	int tcp_fd;        /* -1 until (re)connected */
	uint8_t *in;       /* TCP bytes read, not yet a whole message */
	size_t in_len;     /* bytes in `in` */
	uint16_t sync_id;  /* id of the last SOA query we sent */
	uint64_t n_inputs; /* inputs run */
	uint8_t udp_in[65536];
};

static void
setup_fail(const char *what)
{
	fprintf(stderr, "dns_query_fuzz: set-up failed: %s (%s)\n", what, strerror(errno));
	abort();
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* --- the zones ----------------------------------------------------------- */

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

static void
apex_set(struct store_txn *t, const char *apex, uint32_t serial)
{
	char soa[256], ns[256];
	const char *texts[2] = {soa, ns};
	snprintf(soa, sizeof soa, "%s 3600 IN SOA ns.nic.%s hm.nic.%s %u 3600 600 1209600 300",
	         apex, apex, apex, serial);
	snprintf(ns, sizeof ns, "%s 3600 IN NS ns.nic.%s", apex, apex);
	name_set(t, apex, texts, 2);
}

/* Serial 1: twelve delegations; 2: one removed, one changed; 3: one added
 * with DS.  Enough for several 1024-byte AXFR messages and real IXFRs. */
static struct store *
tld_new(void)
{
	static const char *const glue[] = {"ns.nic.tld. 3600 IN A 192.0.2.53",
	                                   "ns.nic.tld. 3600 IN AAAA 2001:db8::53"};
	struct store *s = NULL;
	struct store_txn *t = NULL;
	char owner[64], text[2][256];
	const char *texts[2] = {text[0], text[1]};

	if (store_new("tld.", &s) != ZD_OK || store_txn_begin(s, &t) != ZD_OK)
		setup_fail("store tld.");
	apex_set(t, "tld.", 1);
	name_set(t, "ns.nic.tld.", glue, 2);
	for (int i = 0; i < 12; i++) {
		snprintf(owner, sizeof owner, "d%d.tld.", i);
		snprintf(text[0], sizeof text[0], "%s 86400 IN NS ns1.example.net.", owner);
		snprintf(text[1], sizeof text[1], "%s 86400 IN NS ns2.example.org.", owner);
		name_set(t, owner, texts, 2);
	}
	if (store_txn_publish(&t, 1, 0) != ZD_OK || store_txn_begin(s, &t) != ZD_OK)
		setup_fail("publish tld. 1");
	apex_set(t, "tld.", 2);
	name_set(t, "d3.tld.", NULL, 0);
	snprintf(text[0], sizeof text[0], "d5.tld. 86400 IN NS ns3.example.net.");
	name_set(t, "d5.tld.", texts, 1);
	if (store_txn_publish(&t, 2, 0) != ZD_OK || store_txn_begin(s, &t) != ZD_OK)
		setup_fail("publish tld. 2");
	apex_set(t, "tld.", SOA_SERIAL);
	snprintf(text[0], sizeof text[0], "new.tld. 86400 IN NS ns.new.example.");
	snprintf(text[1], sizeof text[1],
	         "new.tld. 86400 IN DS 12345 13 2 "
	         "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF");
	name_set(t, "new.tld.", texts, 2);
	if (store_txn_publish(&t, SOA_SERIAL, 0) != ZD_OK)
		setup_fail("publish tld. 3");
	return s;
}

static struct store *
signed_new(void)
{
	struct store *s = NULL;
	struct store_txn *t = NULL;

	if (store_new("signed.", &s) != ZD_OK || store_txn_begin(s, &t) != ZD_OK)
		setup_fail("store signed.");
	apex_set(t, "signed.", 7);
	if (store_txn_publish(&t, 7, 0) != ZD_OK)
		setup_fail("publish signed.");
	return s;
}

/* --- the server and its client sockets ------------------------------------ */

static int
client_socket(int type, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* A loopback connect completes in the kernel, before the server's
	 * loop accepts it: blocking is safe here. */
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
		setup_fail("connect to the server");
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
		setup_fail("O_NONBLOCK");
	return fd;
}

static struct harness *
harness_new(void)
{
	struct harness *h = calloc(1, sizeof *h);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char err[256];

	if (h == NULL || (h->in = malloc(TCP_IN_MAX)) == NULL)
		setup_fail("memory");
	fuzz_log_init(ZD_LOG_DEBUG);
	if (zd_config_parse(config_yaml, sizeof config_yaml - 1, &h->cfg, err, sizeof err) !=
	    ZD_OK) {
		fprintf(stderr, "dns_query_fuzz: config: %s\n", err);
		abort();
	}
	h->tld = tld_new();
	h->signed_zone = signed_new();
	/* xfr.h: needed before the base is made (publishes wake it). */
	if (evthread_use_pthreads() != 0 || (h->base = event_base_new()) == NULL)
		setup_fail("event base");
	if (xfr_server_new(h->base, h->cfg, &h->x) != ZD_OK ||
	    xfr_server_zone_add(h->x, zd_config_zone_find(h->cfg, "tld."), h->tld) != ZD_OK ||
	    xfr_server_zone_add(h->x, zd_config_zone_find(h->cfg, "signed."), h->signed_zone) !=
	            ZD_OK)
		setup_fail("xfr server");
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (xfr_server_listen_addr(h->x, (struct sockaddr *)&sin, sizeof sin, &h->port) != ZD_OK)
		setup_fail("listen on 127.0.0.1");
	h->udp_fd = client_socket(SOCK_DGRAM, h->port);
	h->tcp_fd = -1;
	fuzz_log_check();
	return h;
}

/* --- one exchange ---------------------------------------------------------- */

/* The SOA query for tld. that follows each input on its path. */
static void
sync_query(uint8_t q[SYNC_Q_SIZE], uint16_t id)
{
	static const uint8_t rest[] = {0, 0,   0,   1,   0, 0, 0, 0, 0, 0, /* flags, counts */
	                               3, 't', 'l', 'd', 0, 0, 6, 0, 1};
	q[0] = (uint8_t)(id >> 8);
	q[1] = (uint8_t)id;
	memcpy(q + 2, rest, sizeof rest);
}

/* 1 when m is the answer to sync query id; a wrong answer to it is a crash:
 * it must be NOERROR, authoritative, with one record (the SOA). */
static int
sync_answer_is(const uint8_t *m, size_t len, uint16_t id, const char *path)
{
	static const uint8_t question[] = {3, 't', 'l', 'd', 0, 0, 6, 0, 1};
	if (len < 12 + sizeof question || get16(m) != id || !(m[2] & 0x80) || get16(m + 4) != 1 ||
	    memcmp(m + 12, question, sizeof question) != 0)
		return 0; /* an answer to the input, or an old one */
	uint16_t flags = get16(m + 2);
	if ((flags & 0x7800u) != 0 || (flags & 0x000Fu) != 0 || !(flags & 0x0400u) ||
	    get16(m + 6) != 1) {
		fprintf(stderr,
		        "dns_query_fuzz: SOA query over %s after the input answered with flags "
		        "0x%04x, %u answers\n",
		        path, flags, get16(m + 6));
		abort();
	}
	return 1;
}

static void
hang(const char *path)
{
	fprintf(stderr,
	        "dns_query_fuzz: no answer to the SOA query over %s after the input "
	        "for %u ms: the server hangs or lost its socket\n",
	        path, HANG_MS);
	abort();
}

/* The id of the next SOA query: never the input's own id, so that the
 * server's (correct) answer to an input that is an SOA query for tld. with,
 * say, another opcode is not taken for a wrong answer to ours. */
static uint16_t
sync_id_next(struct harness *h, const uint8_t *data, size_t size)
{
	h->sync_id++;
	if (size >= 2 && h->sync_id == get16(data))
		h->sync_id++;
	return h->sync_id;
}

static void
udp_exchange(struct harness *h, const uint8_t *data, size_t size)
{
	uint8_t q[SYNC_Q_SIZE];
	uint16_t id = sync_id_next(h, data, size);
	uint64_t deadline = mono_ms() + HANG_MS;

	sync_query(q, id);
	if (size <= UDP_MAX)
		(void)send(h->udp_fd, data, size, 0);
	if (send(h->udp_fd, q, sizeof q, 0) != (ssize_t)sizeof q)
		setup_fail("UDP send");
	for (;;) {
		ssize_t n;
		event_base_loop(h->base, EVLOOP_NONBLOCK);
		while ((n = recv(h->udp_fd, h->udp_in, sizeof h->udp_in, 0)) >= 0)
			if (sync_answer_is(h->udp_in, (size_t)n, id, "UDP"))
				return;
		if (mono_ms() > deadline)
			hang("UDP");
	}
}

static void
tcp_close(struct harness *h)
{
	close(h->tcp_fd);
	h->tcp_fd = -1;
	h->in_len = 0;
}

/* Take the whole messages out of h->in; 1 when one answered sync query id. */
static int
tcp_messages(struct harness *h, uint16_t id)
{
	size_t pos = 0;
	int found = 0;
	while (!found && h->in_len - pos >= 2 && h->in_len - pos >= 2u + get16(h->in + pos)) {
		size_t n = get16(h->in + pos);
		found = sync_answer_is(h->in + pos + 2, n, id, "TCP");
		pos += 2 + n;
	}
	memmove(h->in, h->in + pos, h->in_len - pos);
	h->in_len -= pos;
	return found;
}

static void
tcp_exchange(struct harness *h, const uint8_t *data, size_t size)
{
	static uint8_t out[2 + 65535 + 2 + SYNC_Q_SIZE];
	size_t out_len = 0, sent = 0;
	uint16_t id = sync_id_next(h, data, size);
	uint64_t deadline = mono_ms() + HANG_MS;

	if (size > 65535)
		return; /* no TCP framing for it */
	if (h->tcp_fd < 0)
		h->tcp_fd = client_socket(SOCK_STREAM, h->port);
	out[0] = (uint8_t)(size >> 8);
	out[1] = (uint8_t)size;
	if (size > 0)
		memcpy(out + 2, data, size);
	out_len = 2 + size;
	out[out_len++] = 0;
	out[out_len++] = SYNC_Q_SIZE;
	sync_query(out + out_len, id);
	out_len += SYNC_Q_SIZE;
	for (;;) {
		if (sent < out_len) {
			ssize_t r = send(h->tcp_fd, out + sent, out_len - sent, MSG_NOSIGNAL);
			if (r > 0)
				sent += (size_t)r;
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				goto closed;
		}
		event_base_loop(h->base, EVLOOP_NONBLOCK);
		for (;;) {
			if (h->in_len == TCP_IN_MAX) {
				fprintf(stderr, "dns_query_fuzz: a TCP message over %u bytes\n",
				        TCP_IN_MAX);
				abort(); /* a 2-byte length cannot say that much */
			}
			ssize_t r = recv(h->tcp_fd, h->in + h->in_len, TCP_IN_MAX - h->in_len, 0);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
				goto closed; /* the server may close: mid-stream errors */
			if (r < 0)
				break;
			h->in_len += (size_t)r;
			if (tcp_messages(h, id))
				return;
		}
		if (mono_ms() > deadline)
			hang("TCP");
	}
closed:
	tcp_close(h);
	/* Let the server see the close, so connections do not pile up. */
	event_base_loop(h->base, EVLOOP_NONBLOCK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct harness *h;
	struct xfr_stats st;

	if (h == NULL)
		h = harness_new();
	if (h->n_inputs++ % TCP_EVERY == 0)
		tcp_exchange(h, data, size);
	udp_exchange(h, data, size);
	xfr_server_stats_get(h->x, &st);
	if (st.transfers != 0 || st.tcp_clients > 1) {
		fprintf(stderr,
		        "dns_query_fuzz: after the input: %u transfers running, %u TCP clients\n",
		        st.transfers, st.tcp_clients);
		abort();
	}
	fuzz_log_check();
	return 0;
}
