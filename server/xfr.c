/* server/xfr.c -- SOA, AXFR and IXFR answers over UDP and TCP (see xfr.h).
 *
 * A query goes: header checks -> ldns_wire2pkt -> TSIG (RFC 8945 s5.2:
 * before anything else is looked at) -> opcode, question -> zone -> ACL ->
 * answer.  Immediate answers are built in x->msg and sent at once; a
 * transfer becomes a stream attached to its TCP connection, which emits one
 * message at a time from the bufferevent write callback so a slow reader
 * only ever has a few messages queued (the rest of the zone stays in the
 * store).  A stream is pinned to the version published when it began.
 *
 * Pipelined TCP queries are answered in order; while a stream runs, the
 * connection reads nothing more (responses are never interleaved). */
#include "server/xfr.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/zd_parse.h"
#include "server/serial.h"
#include "server/store.h"
#include "server/xfr_priv.h"

#define XFR_WALK_NAMES     128u         /* owner names per store_walk() call */
#define XFR_CHUNK_MAX      (64u << 20)  /* bytes of RRs one walk call may yield */
#define XFR_DIFF_MAX       (64u << 20)  /* bytes of deletions, and of additions */
#define XFR_DIFF_MAX_RRS   500000u      /* records of an IXFR difference */
#define XFR_TCP_IN_MAX     (2u * 65537) /* bytes read ahead per connection */
#define XFR_TCP_OUT_MAX    (256u << 10) /* bytes of queued answers before reading pauses */
#define XFR_UDP_BATCH      64           /* datagrams per read callback */
#define XFR_LISTEN_BACKLOG 128
#define XFR_RR_SCRATCH     (65535u + 255u + 10u)

#define TYPE_SOA  6
#define TYPE_OPT  41
#define TYPE_IXFR 251
#define TYPE_AXFR 252
#define CLASS_IN  1

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* --- logging -------------------------------------------------------------- */

void
xfr_log_limited(struct zd_ratelimit *rl, enum zd_log_level level, const char *zone, const char *fmt,
                ...)
{
	char line[1024];
	uint32_t suppressed = 0;
	va_list ap;

	if (level > zd_log_level_get())
		return;
	if (!zd_ratelimit_ok(rl, zd_now_ms(), &suppressed))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (suppressed > 0)
		zd_log(level, "xfr", zone, "%s (%u similar lines suppressed)", line, suppressed);
	else
		zd_log(level, "xfr", zone, "%s", line);
}

/* --- uncompressed wire RRs ------------------------------------------------ */

/* Length of an uncompressed name at p (no pointers), checked. */
static zd_err
name_len(const uint8_t *p, size_t n, size_t *len_out)
{
	size_t i = 0;
	for (;;) {
		if (i >= n || i >= 255)
			return ZD_EMALFORMED;
		uint8_t b = p[i];
		if (b == 0)
			break;
		if (b > 63)
			return ZD_EMALFORMED;
		i += 1u + b;
	}
	*len_out = i + 1;
	return ZD_OK;
}

zd_err
xfr_rr_wire_len(const uint8_t *p, size_t n, size_t *len_out)
{
	size_t nl;
	zd_err e;
	if ((e = name_len(p, n, &nl)) != ZD_OK)
		return e;
	if (n - nl < 10)
		return ZD_EMALFORMED;
	size_t rdlen = get16(p + nl + 8);
	if (n - nl - 10 < rdlen)
		return ZD_EMALFORMED;
	*len_out = nl + 10 + rdlen;
	return ZD_OK;
}

zd_err
xfr_rr_wire_append(struct zd_buf *b, const ldns_rr *rr)
{
	const ldns_rdf *owner = ldns_rr_owner(rr);
	uint8_t fixed[10];
	size_t rdlen = 0, start = b->len;
	zd_err e;

	if (owner == NULL || ldns_rdf_get_type(owner) != LDNS_RDF_TYPE_DNAME)
		return ZD_EMALFORMED;
	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++)
		rdlen += ldns_rdf_size(ldns_rr_rdf(rr, i));
	if (rdlen > 65535)
		return ZD_EMALFORMED;
	put16(fixed, (uint16_t)ldns_rr_get_type(rr));
	put16(fixed + 2, (uint16_t)ldns_rr_get_class(rr));
	uint32_t ttl = ldns_rr_ttl(rr);
	put16(fixed + 4, (uint16_t)(ttl >> 16));
	put16(fixed + 6, (uint16_t)ttl);
	put16(fixed + 8, (uint16_t)rdlen);
	if ((e = zd_buf_reserve(b, ldns_rdf_size(owner) + 10 + rdlen)) != ZD_OK)
		return e;
	/* Room is reserved: these appends cannot fail. */
	(void)zd_buf_append(b, ldns_rdf_data(owner), ldns_rdf_size(owner));
	(void)zd_buf_append(b, fixed, sizeof fixed);
	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++)
		(void)zd_buf_append(b, ldns_rdf_data(ldns_rr_rdf(rr, i)),
		                    ldns_rdf_size(ldns_rr_rdf(rr, i)));
	size_t check;
	if (xfr_rr_wire_len(b->data + start, b->len - start, &check) != ZD_OK ||
	    check != b->len - start) {
		b->len = start;
		return ZD_EMALFORMED;
	}
	return ZD_OK;
}

/* --- message writer ------------------------------------------------------- */

zd_err
xfr_msg_init(struct xfr_msg *m)
{
	memset(m, 0, sizeof *m);
	zd_buf_init(&m->b, XFR_MSG_MAX);
	zd_buf_init(&m->names, XFR_CMP_NAMES);
	m->slots = calloc(XFR_CMP_SLOTS, sizeof *m->slots);
	if (m->slots == NULL)
		return ZD_ENOMEM;
	if (zd_buf_reserve(&m->b, XFR_MSG_MAX) != ZD_OK ||
	    zd_buf_reserve(&m->names, XFR_CMP_NAMES) != ZD_OK) {
		xfr_msg_clear(m);
		return ZD_ENOMEM;
	}
	return ZD_OK;
}

void
xfr_msg_clear(struct xfr_msg *m)
{
	zd_buf_clear(&m->b);
	zd_buf_clear(&m->names);
	free(m->slots);
	m->slots = NULL;
}

void
xfr_msg_begin(struct xfr_msg *m, uint16_t id, uint16_t flags, size_t limit)
{
	uint8_t hdr[12] = {0};
	zd_buf_reset(&m->b);
	zd_buf_reset(&m->names);
	put16(hdr, id);
	put16(hdr + 2, flags);
	(void)zd_buf_append(&m->b, hdr, sizeof hdr); /* reserved in xfr_msg_init */
	memset(m->count, 0, sizeof m->count);
	m->section = XFR_SEC_QUESTION;
	m->full = 0;
	m->limit = limit < XFR_MSG_MAX ? limit : XFR_MSG_MAX;
	m->used = 0;
	if (++m->gen == 0) {
		memset(m->slots, 0, XFR_CMP_SLOTS * sizeof *m->slots);
		m->gen = 1;
	}
}

static uint32_t
fnv1a(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* Offset of an earlier copy of suffix s in the message; 0 when none. */
static uint16_t
cmp_find(const struct xfr_msg *m, const uint8_t *s, size_t n, uint32_t h)
{
	for (uint32_t i = h & (XFR_CMP_SLOTS - 1);; i = (i + 1) & (XFR_CMP_SLOTS - 1)) {
		const struct xfr_cmp_slot *sl = &m->slots[i];
		if (sl->gen != m->gen)
			return 0; /* the table is never full: an empty slot ends the probe */
		if (sl->hash == h && sl->len == n &&
		    memcmp(m->names.data + sl->name_off, s, n) == 0)
			return sl->msg_off;
	}
}

static void
cmp_add(struct xfr_msg *m, uint32_t name_off, size_t n, uint32_t h, size_t msg_off)
{
	if (msg_off > 0x3FFF || m->used >= XFR_CMP_SLOTS / 4 * 3)
		return; /* pointers reach 14 bits; keep the table sparse */
	for (uint32_t i = h & (XFR_CMP_SLOTS - 1);; i = (i + 1) & (XFR_CMP_SLOTS - 1)) {
		struct xfr_cmp_slot *sl = &m->slots[i];
		if (sl->gen == m->gen)
			continue;
		*sl = (struct xfr_cmp_slot){m->gen, h, name_off, (uint16_t)msg_off, (uint16_t)n};
		m->used++;
		return;
	}
}

/* Write an uncompressed name (checked by the caller) compressed against the
 * names already in the message, and remember its suffixes as targets. */
static zd_err
name_put(struct xfr_msg *m, const uint8_t *name, size_t len)
{
	size_t starts[128];
	uint32_t hashes[128];
	size_t nl = 0, k;
	uint16_t ptr = 0;
	zd_err e;

	for (size_t i = 0; name[i] != 0 && nl < 128; i += 1u + name[i])
		starts[nl++] = i;
	for (k = 0; k < nl; k++) {
		hashes[k] = fnv1a(name + starts[k], len - starts[k]);
		if ((ptr = cmp_find(m, name + starts[k], len - starts[k], hashes[k])) != 0)
			break;
	}
	size_t base = m->b.len;
	size_t prefix = k < nl ? starts[k] : len;
	if ((e = zd_buf_append(&m->b, name, prefix)) != ZD_OK)
		return e;
	if (k < nl) {
		uint8_t p[2];
		put16(p, (uint16_t)(0xC000u | ptr));
		if ((e = zd_buf_append(&m->b, p, 2)) != ZD_OK)
			return e;
	}
	if (k > 0 && base <= 0x3FFF && m->names.len + len <= m->names.cap) {
		uint32_t off = (uint32_t)m->names.len;
		(void)zd_buf_append(&m->names, name, len);
		for (size_t j = 0; j < k; j++)
			cmp_add(m, off + (uint32_t)starts[j], len - starts[j], hashes[j],
			        base + starts[j]);
	}
	return ZD_OK;
}

zd_err
xfr_msg_question_put(struct xfr_msg *m, const uint8_t *qname, size_t qname_len, uint16_t qtype,
                     uint16_t qclass)
{
	size_t nl, save = m->b.len;
	uint8_t t[4];
	zd_err e;

	if (m->section != XFR_SEC_QUESTION || m->count[0] == 0xFFFF)
		return ZD_EBUG;
	if (name_len(qname, qname_len, &nl) != ZD_OK || nl != qname_len)
		return ZD_EMALFORMED;
	put16(t, qtype);
	put16(t + 2, qclass);
	if ((e = name_put(m, qname, qname_len)) != ZD_OK ||
	    (e = zd_buf_append(&m->b, t, 4)) != ZD_OK || m->b.len > m->limit) {
		m->b.len = save;
		return e != ZD_OK ? e : ZD_ELIMIT;
	}
	m->count[0]++;
	return ZD_OK;
}

/* RDATA layout of the types whose names may be compressed (RFC 3597 s4). */
static int
rdata_shape(uint16_t type, size_t *pre, int *names, size_t *post)
{
	*pre = 0;
	*post = 0;
	switch (type) {
	case 2:  /* NS */
	case 3:  /* MD */
	case 4:  /* MF */
	case 5:  /* CNAME */
	case 7:  /* MB */
	case 8:  /* MG */
	case 9:  /* MR */
	case 12: /* PTR */
		*names = 1;
		return 1;
	case 15: /* MX */
		*pre = 2;
		*names = 1;
		return 1;
	case 6: /* SOA */
		*names = 2;
		*post = 20;
		return 1;
	case 14: /* MINFO */
		*names = 2;
		return 1;
	default:
		return 0;
	}
}

/* RDATA with its names compressed; 0 when it does not have the shape. */
static int
rdata_put_compressed(struct xfr_msg *m, uint16_t type, const uint8_t *rd, size_t rdlen, zd_err *e)
{
	size_t pre, post, pos, nl[2];
	int names;

	if (!rdata_shape(type, &pre, &names, &post) || rdlen < pre)
		return 0;
	pos = pre;
	for (int i = 0; i < names; i++) {
		if (name_len(rd + pos, rdlen - pos, &nl[i]) != ZD_OK)
			return 0;
		pos += nl[i];
	}
	if (rdlen - pos != post)
		return 0;
	if ((*e = zd_buf_append(&m->b, rd, pre)) != ZD_OK)
		return 1;
	pos = pre;
	for (int i = 0; i < names; i++) {
		if ((*e = name_put(m, rd + pos, nl[i])) != ZD_OK)
			return 1;
		pos += nl[i];
	}
	*e = zd_buf_append(&m->b, rd + pos, post);
	return 1;
}

zd_err
xfr_msg_rr_put(struct xfr_msg *m, enum xfr_section sec, const uint8_t *rr, size_t len)
{
	size_t nl, total, save = m->b.len;
	zd_err e = ZD_OK;

	if (sec < XFR_SEC_ANSWER || sec > XFR_SEC_ADDITIONAL || (int)sec < m->section)
		return ZD_EBUG;
	if (m->full || m->count[sec] == 0xFFFF)
		return ZD_ELIMIT;
	if ((e = xfr_rr_wire_len(rr, len, &total)) != ZD_OK || total != len ||
	    (e = name_len(rr, len, &nl)) != ZD_OK)
		return ZD_EMALFORMED;
	m->section = (int)sec;
	uint16_t type = get16(rr + nl);
	const uint8_t *rd = rr + nl + 10;
	size_t rdlen = len - nl - 10;
	if ((e = name_put(m, rr, nl)) != ZD_OK)
		goto out;
	size_t rdlen_at = m->b.len + 8;
	if ((e = zd_buf_append(&m->b, rr + nl, 10)) != ZD_OK)
		goto out;
	size_t rd_start = m->b.len;
	if (!rdata_put_compressed(m, type, rd, rdlen, &e))
		e = zd_buf_append(&m->b, rd, rdlen);
	if (e != ZD_OK)
		goto out;
	put16(m->b.data + rdlen_at, (uint16_t)(m->b.len - rd_start));
	if (m->b.len > m->limit)
		e = ZD_ELIMIT;
out:
	if (e != ZD_OK) {
		/* Suffixes remembered from the rolled-back bytes would point past
		 * the end: the message takes nothing more. */
		m->b.len = save;
		m->full = 1;
		return e == ZD_ENOMEM ? e : ZD_ELIMIT;
	}
	m->count[sec]++;
	return ZD_OK;
}

void
xfr_msg_finish(struct xfr_msg *m)
{
	for (int i = 0; i < 4; i++)
		put16(m->b.data + 4 + 2 * i, m->count[i]);
}

zd_err
xfr_msg_opt_put(struct xfr_msg *m, uint16_t udp_size, uint8_t ext_rcode, int dnssec_ok)
{
	uint8_t opt[XFR_OPT_SIZE] = {0};
	zd_err e;

	if (m->count[3] == 0xFFFF)
		return ZD_ELIMIT;
	put16(opt + 1, TYPE_OPT);
	put16(opt + 3, udp_size);
	opt[5] = ext_rcode; /* TTL: extended rcode, version 0, flags */
	if (dnssec_ok)
		opt[7] = 0x80; /* DO, echoed (RFC 3225 s3) */
	if ((e = zd_buf_append(&m->b, opt, sizeof opt)) != ZD_OK)
		return e;
	m->count[3]++;
	put16(m->b.data + 10, m->count[3]);
	return ZD_OK;
}

/* --- zones and keys ------------------------------------------------------- */

const struct tsig_key *
xfr_key_find(const struct xfr_server *x, const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < x->n_keys; i++)
		if (strcasecmp(tsig_key_name_get(x->keys[i]), name) == 0)
			return x->keys[i];
	return NULL;
}

static const struct tsig_key *
key_find_wire(const struct xfr_server *x, const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < x->n_keys; i++)
		if (tsig_key_is(x->keys[i], name, len))
			return x->keys[i];
	return NULL;
}

static int
name_eq_nocase(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++)
		if (tolower(a[i]) != tolower(b[i]))
			return 0;
	return 1;
}

static struct xfr_zone *
zone_find(const struct xfr_server *x, const uint8_t *qname, size_t len)
{
	for (size_t i = 0; i < x->n_zones; i++)
		if (name_eq_nocase(x->zones[i]->apex, x->zones[i]->apex_len, qname, len))
			return x->zones[i];
	return NULL;
}

/* --- connections and queries: types ---------------------------------------- */

enum step { STEP_SOA_CUR, STEP_SOA_OLD, STEP_WALK, STEP_DELS, STEP_ADDS };
static const uint8_t steps_axfr[] = {STEP_SOA_CUR, STEP_WALK, STEP_SOA_CUR};
static const uint8_t steps_ixfr[] = {STEP_SOA_CUR, STEP_SOA_OLD, STEP_DELS,
                                     STEP_SOA_CUR, STEP_ADDS,    STEP_SOA_CUR};
static const uint8_t steps_soa[] = {STEP_SOA_CUR};

/* One AXFR or IXFR answer being produced. */
struct xfr_stream {
	struct xfr_zone *z;
	enum xfr_kind kind;
	const char *note; /* why IXFR became AXFR-style, or "up to date" */
	uint64_t version; /* pinned: the published version when it began */
	uint32_t serial;
	uint32_t from_serial;
	int has_from;
	const uint8_t *steps;
	size_t n_steps, step, pos;
	struct zd_buf soa_cur, soa_old; /* one uncompressed RR each */
	struct zd_buf chunk;            /* RRs of the last store_walk() call */
	struct zd_buf dels, adds;       /* IXFR difference, uncompressed RRs */
	struct store_cursor cursor;
	int pinned; /* version is pinned in z's store until stream_free() */
	/* the query */
	uint16_t id, flags;
	uint8_t qname[255];
	size_t qname_len;
	uint16_t qtype, qclass;
	int edns;
	const struct tsig_key *key; /* borrowed; NULL: unsigned */
	struct tsig_ctx tctx;
	/* accounting */
	uint64_t bytes, records, start_ms;
	uint32_t messages;
};

struct xfr_conn {
	struct xfr_server *x;
	struct bufferevent *bev; /* owned; closes the socket */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char peer_str[XFR_ADDRSTR];
	struct xfr_stream *st; /* owned; the running transfer or NULL */
	struct event *idle_ev; /* owned; re-armed by each query answered and
	                        * each drained write, so trickled bytes do not
	                        * keep a connection alive */
	int eof;               /* the peer closed its side: close when done */
	int dead;              /* close at the end of the current callback */
	struct xfr_conn *prev, *next;
};

/* A received query and what its answer needs. */
struct query {
	struct xfr_server *x;
	const uint8_t *wire;
	size_t len;
	struct xfr_conn *c; /* TCP; NULL for UDP */
	int udp_fd;
	const struct sockaddr *peer;
	socklen_t peerlen;
	char peer_str[XFR_ADDRSTR];
	ldns_pkt *pkt; /* owned */
	uint16_t id, flags;
	int has_q;
	uint8_t qname[255];
	size_t qname_len;
	uint16_t qtype, qclass;
	int edns;
	uint16_t edns_size;
	int dnssec_ok; /* DO bit (RFC 3225): the SOA answer carries its RRSIGs */
	int has_tsig;
	struct tsig_rr tsig;
	uint16_t tsig_error;        /* BADKEY/BADSIG: answer with an unsigned error TSIG */
	const struct tsig_key *key; /* verified (or BADTIME): answers are signed */
	struct tsig_ctx tctx;
	struct xfr_zone *zone;
};

static const char *
qtype_str(uint16_t t)
{
	return t == TYPE_AXFR ? "AXFR" : t == TYPE_IXFR ? "IXFR" : "query";
}

static const char *
zone_label(const struct query *q)
{
	return q->zone ? q->zone->zc->name : NULL;
}

/* --- sending -------------------------------------------------------------- */

static size_t
udp_limit(const struct query *q)
{
	if (!q->edns)
		return XFR_UDP_MIN;
	size_t n = q->edns_size < XFR_UDP_MIN ? XFR_UDP_MIN : q->edns_size;
	return n < XFR_UDP_MAX ? n : XFR_UDP_MAX;
}

static size_t
answer_limit(const struct query *q)
{
	size_t lim = q->c ? XFR_MSG_MAX : udp_limit(q);
	if (q->edns)
		lim -= XFR_OPT_SIZE;
	if (q->key != NULL)
		lim -= tsig_space_get(q->key);
	else if (q->tsig_error != 0)
		lim -= q->tsig.name_len + q->tsig.alg_len + 26;
	return lim;
}

static void
send_msg(struct xfr_server *x, struct xfr_conn *c, int fd, const struct sockaddr *peer,
         socklen_t peerlen, const char *peer_str, const struct xfr_msg *m)
{
	if (c != NULL) {
		uint8_t len[2];
		put16(len, (uint16_t)m->b.len);
		struct evbuffer *out = bufferevent_get_output(c->bev);
		if (evbuffer_add(out, len, 2) != 0 || evbuffer_add(out, m->b.data, m->b.len) != 0)
			c->dead = 1;
		return;
	}
	if (sendto(fd, m->b.data, m->b.len, 0, peer, peerlen) < 0)
		xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, NULL, "UDP answer to %s not sent: %s",
		                peer_str, strerror(errno));
}

/* Counts, OPT, TSIG; then send. */
static void
answer_send(struct query *q, struct xfr_msg *m, uint8_t ext_rcode)
{
	struct xfr_server *x = q->x;
	zd_err e = ZD_OK;

	xfr_msg_finish(m);
	if (q->edns)
		e = xfr_msg_opt_put(m, XFR_UDP_MAX, ext_rcode, q->dnssec_ok);
	if (e == ZD_OK && q->key != NULL)
		e = tsig_sign(&q->tctx, &m->b, zd_wallclock_s());
	else if (e == ZD_OK && q->tsig_error != 0)
		e = tsig_error_append(&m->b, &q->tsig, q->tsig_error, zd_wallclock_s());
	if (e != ZD_OK) {
		xfr_log_limited(&x->rl_peer, ZD_LOG_WARNING, zone_label(q),
		                "answer to %s not sent: %s", q->peer_str, zd_strerror(e));
		return;
	}
	send_msg(x, q->c, q->udp_fd, q->peer, q->peerlen, q->peer_str, m);
}

static uint16_t
answer_flags(const struct query *q, uint16_t rcode)
{
	return (uint16_t)(DNS_QR | (q->flags & (0x7800u | DNS_RD)) | (rcode & 0xFu));
}

/* An answer with no records: errors, and TC over UDP. */
static void
answer_empty(struct query *q, uint16_t rcode, uint16_t extra_flags)
{
	struct xfr_msg *m = &q->x->msg;
	xfr_msg_begin(m, q->id, (uint16_t)(answer_flags(q, rcode) | extra_flags), answer_limit(q));
	if (q->has_q)
		(void)xfr_msg_question_put(m, q->qname, q->qname_len, q->qtype, q->qclass);
	answer_send(q, m, (uint8_t)(rcode >> 4));
}

/* --- reports -------------------------------------------------------------- */

static void
report(struct xfr_server *x, const struct query *q, const struct xfr_stream *st, enum xfr_kind kind,
       enum xfr_result result, const char *reason)
{
	if (x->observer == NULL)
		return;
	char zone[256];
	struct xfr_report r = {0};
	if (st != NULL) {
		r.zone = st->z->zc->name;
		r.key = st->key ? tsig_key_name_get(st->key) : NULL;
		r.has_from = st->has_from;
		r.from_serial = st->from_serial;
		r.to_serial = st->serial;
		r.bytes = st->bytes;
		r.messages = st->messages;
		r.records = st->records;
		r.duration_ms = zd_now_ms() - st->start_ms;
	} else {
		if (q->zone != NULL) {
			r.zone = q->zone->zc->name;
		} else {
			ldns_rdf *d = ldns_dname_new_frm_data((uint16_t)q->qname_len, q->qname);
			char *s = d ? ldns_rdf2str(d) : NULL;
			snprintf(zone, sizeof zone, "%s", s ? s : "?");
			free(s);
			ldns_rdf_deep_free(d);
			r.zone = zone;
		}
		r.key = q->key ? tsig_key_name_get(q->key) : NULL;
	}
	if (q != NULL) {
		r.peer = q->peer;
		r.peerlen = q->peerlen;
	}
	r.kind = kind;
	r.result = result;
	r.reason = reason;
	x->observer(x->observer_arg, &r);
}

static void
report_conn(struct xfr_conn *c, enum xfr_result result, const char *reason)
{
	struct xfr_stream *st = c->st;
	struct xfr_server *x = c->x;
	if (x->observer == NULL)
		return;
	struct xfr_report r = {
	        .zone = st->z->zc->name,
	        .peer = (const struct sockaddr *)&c->peer,
	        .peerlen = c->peerlen,
	        .key = st->key ? tsig_key_name_get(st->key) : NULL,
	        .kind = st->kind,
	        .has_from = st->has_from,
	        .from_serial = st->from_serial,
	        .to_serial = st->serial,
	        .bytes = st->bytes,
	        .messages = st->messages,
	        .records = st->records,
	        .duration_ms = zd_now_ms() - st->start_ms,
	        .result = result,
	        .reason = reason,
	};
	x->observer(x->observer_arg, &r);
}

/* --- streams -------------------------------------------------------------- */

static void
stream_free(struct xfr_stream *st)
{
	if (st == NULL)
		return;
	if (st->pinned)
		store_version_unpin(st->z->s, st->version);
	zd_buf_clear(&st->soa_cur);
	zd_buf_clear(&st->soa_old);
	zd_buf_clear(&st->chunk);
	zd_buf_clear(&st->dels);
	zd_buf_clear(&st->adds);
	free(st);
}

zd_err
xfr_zone_soa_load(struct xfr_zone *z, uint64_t v, struct zd_buf *b, uint32_t *serial_out)
{
	ldns_rdf *apex = ldns_dname_new_frm_data((uint16_t)z->apex_len, z->apex);
	ldns_rr_list *l = NULL;
	zd_err e;

	if (apex == NULL)
		return ZD_ENOMEM;
	e = store_rrset_find(z->s, v, apex, TYPE_SOA, 0, &l);
	ldns_rdf_deep_free(apex);
	if (e != ZD_OK)
		return e;
	if (l == NULL || ldns_rr_list_rr_count(l) != 1 ||
	    ldns_rr_rd_count(ldns_rr_list_rr(l, 0)) != 7) {
		ldns_rr_list_deep_free(l);
		zd_log(ZD_LOG_ERROR, "xfr", z->zc->name, "version %llu has no usable SOA",
		       (unsigned long long)v);
		return ZD_EBUG;
	}
	const ldns_rr *soa = ldns_rr_list_rr(l, 0);
	uint32_t serial = ldns_rdf2native_int32(ldns_rr_rdf(soa, 2));
	zd_buf_reset(b);
	e = xfr_rr_wire_append(b, soa);
	ldns_rr_list_deep_free(l);
	if (e == ZD_OK && serial_out != NULL)
		*serial_out = serial;
	return e;
}

static int
is_apex_soa(const struct xfr_zone *z, const ldns_rr *rr)
{
	const ldns_rdf *o = ldns_rr_owner(rr);
	return ldns_rr_get_type(rr) == TYPE_SOA &&
	       name_eq_nocase(ldns_rdf_data(o), ldns_rdf_size(o), z->apex, z->apex_len);
}

static zd_err
walk_rr(void *arg, const ldns_rr *rr)
{
	struct xfr_stream *st = arg;
	if (is_apex_soa(st->z, rr))
		return ZD_OK; /* framed by soa_cur instead */
	return xfr_rr_wire_append(&st->chunk, rr);
}

static zd_err
diff_del(void *arg, const ldns_rr *rr)
{
	struct xfr_stream *st = arg;
	return is_apex_soa(st->z, rr) ? ZD_OK : xfr_rr_wire_append(&st->dels, rr);
}

static zd_err
diff_add(void *arg, const ldns_rr *rr)
{
	struct xfr_stream *st = arg;
	return is_apex_soa(st->z, rr) ? ZD_OK : xfr_rr_wire_append(&st->adds, rr);
}

/* Next RR of the stream (borrowed until stream_consume()); *rr NULL at the end. */
static zd_err
stream_peek(struct xfr_stream *st, const uint8_t **rr, size_t *len)
{
	struct zd_buf *b;
	zd_err e;

	for (;;) {
		if (st->step >= st->n_steps) {
			*rr = NULL;
			return ZD_OK;
		}
		switch (st->steps[st->step]) {
		case STEP_SOA_CUR:
			*rr = st->soa_cur.data;
			*len = st->soa_cur.len;
			return ZD_OK;
		case STEP_SOA_OLD:
			*rr = st->soa_old.data;
			*len = st->soa_old.len;
			return ZD_OK;
		case STEP_WALK:
			if (st->pos < st->chunk.len)
				break;
			if (st->cursor.done) {
				st->step++;
				st->pos = 0;
				continue;
			}
			zd_buf_reset(&st->chunk);
			st->pos = 0;
			/* Holds the store's read lock for this chunk only. */
			if ((e = store_walk(st->z->s, st->version, &st->cursor, XFR_WALK_NAMES,
			                    walk_rr, st)) != ZD_OK)
				return e;
			continue;
		case STEP_DELS:
		case STEP_ADDS:
			b = st->steps[st->step] == STEP_DELS ? &st->dels : &st->adds;
			if (st->pos < b->len) {
				*rr = b->data + st->pos;
				return xfr_rr_wire_len(*rr, b->len - st->pos, len);
			}
			st->step++;
			st->pos = 0;
			continue;
		default:
			return ZD_EBUG;
		}
		*rr = st->chunk.data + st->pos;
		return xfr_rr_wire_len(*rr, st->chunk.len - st->pos, len);
	}
}

static void
stream_consume(struct xfr_stream *st, size_t len)
{
	uint8_t s = st->steps[st->step];
	if (s == STEP_SOA_CUR || s == STEP_SOA_OLD) {
		st->step++;
		st->pos = 0;
	} else {
		st->pos += len;
	}
}

/* Build the stream's next message in m, at most max bytes in all.  *done
 * is set when it holds the last record. */
static zd_err
stream_message(struct xfr_stream *st, struct xfr_msg *m, size_t max, int *done)
{
	size_t reserve = (st->edns ? XFR_OPT_SIZE : 0) + (st->key ? tsig_space_get(st->key) : 0);
	const uint8_t *rr;
	size_t len, n = 0;
	zd_err e;

	if (zd_check_failed(max > reserve + 12))
		return ZD_EBUG;
	xfr_msg_begin(m, st->id, (uint16_t)(DNS_QR | DNS_AA | (st->flags & (0x7800u | DNS_RD))),
	              max - reserve);
	/* RFC 5936 s2.2.1: the first message repeats the question; later
	 * ones may leave it out. */
	if (st->messages == 0 &&
	    (e = xfr_msg_question_put(m, st->qname, st->qname_len, st->qtype, st->qclass)) != ZD_OK)
		return e;
	*done = 0;
	for (;;) {
		if ((e = stream_peek(st, &rr, &len)) != ZD_OK)
			return e;
		if (rr == NULL) {
			*done = 1;
			break;
		}
		e = xfr_msg_rr_put(m, XFR_SEC_ANSWER, rr, len);
		if (e == ZD_ELIMIT && n > 0)
			break;
		if (e != ZD_OK)
			return e; /* ZD_ELIMIT: one record larger than a message */
		stream_consume(st, len);
		n++;
	}
	xfr_msg_finish(m);
	if (st->edns && (e = xfr_msg_opt_put(m, XFR_UDP_MAX, 0, 0)) != ZD_OK)
		return e;
	if (st->key && (e = tsig_sign(&st->tctx, &m->b, zd_wallclock_s())) != ZD_OK)
		return e;
	st->records += n;
	st->messages++;
	st->bytes += m->b.len;
	return ZD_OK;
}

static void
stream_log(struct xfr_server *x, const struct xfr_stream *st, const char *peer)
{
	char key[300] = "";
	if (st->key)
		snprintf(key, sizeof key, " key %s", tsig_key_name_get(st->key));
	const char *what = st->qtype == TYPE_AXFR ? "AXFR" : "IXFR";
	if (st->has_from)
		xfr_log_limited(&x->rl_xfr, ZD_LOG_INFO, st->z->zc->name,
		                "%s %u->%u to %s%s%s%s%s: %llu records, %u messages, %llu bytes",
		                what, st->from_serial, st->serial, peer, key, st->note ? " (" : "",
		                st->note ? st->note : "", st->note ? ")" : "",
		                (unsigned long long)st->records, st->messages,
		                (unsigned long long)st->bytes);
	else
		xfr_log_limited(&x->rl_xfr, ZD_LOG_INFO, st->z->zc->name,
		                "%s %u to %s%s: %llu records, %u messages, %llu bytes", what,
		                st->serial, peer, key, (unsigned long long)st->records,
		                st->messages, (unsigned long long)st->bytes);
}

/* --- connection plumbing -------------------------------------------------- */

static void conn_process(struct xfr_conn *c);

static void
conn_free(struct xfr_conn *c)
{
	struct xfr_server *x = c->x;
	if (c->st != NULL) {
		report_conn(c, XFR_RESULT_ERROR, "connection closed");
		xfr_log_limited(&x->rl_peer, ZD_LOG_WARNING, c->st->z->zc->name,
		                "%s %u to %s broken off after %u messages: connection closed",
		                c->st->qtype == TYPE_AXFR ? "AXFR" : "IXFR", c->st->serial,
		                c->peer_str, c->st->messages);
		stream_free(c->st);
		x->n_transfers--;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		x->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	x->n_conns--;
	if (c->idle_ev != NULL)
		event_free(c->idle_ev);
	bufferevent_free(c->bev);
	free(c);
}

static void
conn_idle_arm(struct xfr_conn *c)
{
	uint32_t ms = c->x->cfg->limits.tcp_idle_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(c->idle_ev, &tv);
}

static void
conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xfr_conn *c = arg;
	(void)fd;
	(void)what;
	xfr_log_limited(&c->x->rl_peer, ZD_LOG_INFO, c->st ? c->st->z->zc->name : NULL,
	                "TCP connection from %s closed: idle for %u ms", c->peer_str,
	                c->x->cfg->limits.tcp_idle_timeout_ms);
	conn_free(c);
}

static void
stream_end(struct xfr_conn *c)
{
	stream_free(c->st);
	c->st = NULL;
	c->x->n_transfers--;
}

/* Queue messages of the running transfer until a few are waiting. */
static void
conn_pump(struct xfr_conn *c)
{
	struct xfr_server *x = c->x;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t max = x->cfg->limits.max_message_bytes;
	if (max < XFR_UDP_MIN || max > XFR_MSG_MAX)
		max = XFR_MSG_MAX;

	while (c->st != NULL && !c->dead && evbuffer_get_length(out) < 2 * max) {
		struct xfr_stream *st = c->st;
		int done = 0;
		zd_err e = stream_message(st, &x->msg, max, &done);
		if (e != ZD_OK) {
			const char *why =
			        e == ZD_ENOTFOUND ? "version no longer kept" : zd_strerror(e);
			zd_log(ZD_LOG_ERROR, "xfr", st->z->zc->name,
			       "%s %u to %s broken off after %u messages: %s",
			       st->qtype == TYPE_AXFR ? "AXFR" : "IXFR", st->serial, c->peer_str,
			       st->messages, why);
			report_conn(c, XFR_RESULT_ERROR, why);
			if (st->messages == 0) {
				/* Nothing sent yet: a clean SERVFAIL is still possible. */
				struct xfr_msg *m = &x->msg;
				xfr_msg_begin(m, st->id,
				              (uint16_t)(DNS_QR | (st->flags & (0x7800u | DNS_RD)) |
				                         DNS_SERVFAIL),
				              XFR_MSG_MAX);
				(void)xfr_msg_question_put(m, st->qname, st->qname_len, st->qtype,
				                           st->qclass);
				xfr_msg_finish(m);
				if (!st->key ||
				    tsig_sign(&st->tctx, &m->b, zd_wallclock_s()) == ZD_OK)
					send_msg(x, c, -1, NULL, 0, c->peer_str, m);
				stream_end(c);
				continue;
			}
			stream_end(c);
			c->dead = 1; /* RFC 5936 s2.2: an error mid-stream ends the connection */
			return;
		}
		send_msg(x, c, -1, NULL, 0, c->peer_str, &x->msg);
		if (done) {
			stream_log(x, st, c->peer_str);
			report_conn(c, XFR_RESULT_OK, NULL);
			stream_end(c);
		}
	}
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct xfr_conn *c = arg;
	(void)bev;
	conn_process(c);
	if (c->dead)
		conn_free(c);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct xfr_conn *c = arg;
	conn_idle_arm(c); /* the output moves */
	if (c->st != NULL)
		conn_pump(c);
	if (c->st == NULL && !c->dead)
		conn_process(c);
	if (!c->dead && c->eof && c->st == NULL &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		c->dead = 1;
	if (c->dead)
		conn_free(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct xfr_conn *c = arg;
	if (what & BEV_EVENT_EOF) {
		/* Answer what is buffered, then close once the output is out. */
		c->eof = 1;
		if (c->st == NULL)
			conn_process(c);
		if (c->st == NULL && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			c->dead = 1;
	} else if (what & BEV_EVENT_TIMEOUT) {
		xfr_log_limited(&c->x->rl_peer, ZD_LOG_INFO, c->st ? c->st->z->zc->name : NULL,
		                "TCP connection from %s closed: nothing read from us for %u ms",
		                c->peer_str, c->x->cfg->limits.tcp_idle_timeout_ms);
		c->dead = 1;
	} else if (what & BEV_EVENT_ERROR) {
		c->dead = 1;
	}
	if (c->dead)
		conn_free(c);
}

static void query_handle(struct query *q);

/* Answer every complete query in the input, in order, while no transfer
 * runs and the output is not backed up. */
static void
conn_process(struct xfr_conn *c)
{
	struct xfr_server *x = c->x;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);

	while (c->st == NULL && !c->dead) {
		uint8_t hdr[2];
		if (evbuffer_get_length(out) > XFR_TCP_OUT_MAX)
			break; /* resumed from the write callback */
		size_t have = evbuffer_get_length(in);
		if (have < 2 || evbuffer_copyout(in, hdr, 2) != 2)
			break;
		size_t n = get16(hdr);
		if (have < 2 + n)
			break;
		uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)(2 + n));
		if (p == NULL) {
			c->dead = 1;
			break;
		}
		struct query q = {
		        .x = x,
		        .wire = p + 2,
		        .len = n,
		        .c = c,
		        .udp_fd = -1,
		        .peer = (const struct sockaddr *)&c->peer,
		        .peerlen = c->peerlen,
		};
		memcpy(q.peer_str, c->peer_str, sizeof q.peer_str);
		query_handle(&q);
		evbuffer_drain(in, 2 + n);
		if (n >= 12)
			conn_idle_arm(c); /* empty frames are no activity */
		if (c->st != NULL)
			conn_pump(c);
	}
	if (c->dead)
		return;
	/* Read on only when idle: a running transfer or a backed-up output
	 * pauses the pipeline; the write timeout then guards the connection. */
	if (c->st == NULL && !c->eof && evbuffer_get_length(out) <= XFR_TCP_OUT_MAX)
		bufferevent_enable(c->bev, EV_READ);
	else
		bufferevent_disable(c->bev, EV_READ);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct xfr_server *x = arg;
	struct xfr_conn *c = NULL;
	char peer[XFR_ADDRSTR];
	(void)l;

	zd_sockaddr_str(sa, peer, sizeof peer);
	if (x->n_conns >= x->cfg->limits.max_tcp_clients) {
		xfr_log_limited(&x->rl_peer, ZD_LOG_WARNING, NULL,
		                "TCP connection from %s closed: max-tcp-clients (%u) reached", peer,
		                x->cfg->limits.max_tcp_clients);
		evutil_closesocket(fd);
		return;
	}
	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (c->bev = bufferevent_socket_new(x->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (c->idle_ev = evtimer_new(x->base, conn_idle_cb, c)) == NULL) {
		xfr_log_limited(&x->rl_peer, ZD_LOG_WARNING, NULL,
		                "TCP connection from %s closed: out of memory", peer);
		if (c != NULL && c->bev != NULL)
			bufferevent_free(c->bev); /* closes fd */
		else
			evutil_closesocket(fd);
		free(c);
		return;
	}
	c->x = x;
	if (salen > 0 && (size_t)salen <= sizeof c->peer) {
		memcpy(&c->peer, sa, (size_t)salen);
		c->peerlen = (socklen_t)salen;
	}
	memcpy(c->peer_str, peer, sizeof c->peer_str);
	size_t max = x->cfg->limits.max_message_bytes;
	struct timeval idle = {x->cfg->limits.tcp_idle_timeout_ms / 1000,
	                       (x->cfg->limits.tcp_idle_timeout_ms % 1000) * 1000};
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, XFR_TCP_IN_MAX);
	bufferevent_setwatermark(c->bev, EV_WRITE, max, 0);
	bufferevent_set_timeouts(c->bev, NULL, &idle); /* a peer that stops reading */
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = x->conns;
	if (x->conns)
		x->conns->prev = c;
	x->conns = c;
	x->n_conns++;
	conn_idle_arm(c);
}

static void
relisten_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xfr_server *x = arg;
	(void)fd;
	(void)what;
	for (size_t i = 0; i < x->n_listeners; i++)
		evconnlistener_enable(x->listeners[i].tcp);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct xfr_server *x = arg;
	int err = EVUTIL_SOCKET_ERROR();
	xfr_log_limited(&x->rl_peer, ZD_LOG_WARNING, NULL, "accept failed: %s; pausing 100 ms",
	                evutil_socket_error_to_string(err));
	/* Out of descriptors: the pending connection would wake us at once
	 * again, so pause accepting briefly instead of spinning. */
	evconnlistener_disable(l);
	struct timeval tv = {0, 100000};
	event_add(x->relisten_ev, &tv);
}

/* --- queries -------------------------------------------------------------- */

static const char *
acl_check(const struct xfr_zone *z, const struct query *q)
{
	int addr_ok = 0;
	for (size_t i = 0; i < z->zc->n_acl; i++) {
		if (!zd_prefix_match(&z->zc->acl[i].prefix, q->peer))
			continue;
		addr_ok = 1;
		if (z->acl_keys[i] == NULL)
			return NULL;
		if (q->key != NULL && q->tctx.error == TSIG_NOERROR && q->key == z->acl_keys[i])
			return NULL;
	}
	return addr_ok ? (q->key ? "TSIG key not allowed" : "TSIG key required") : "not in ACL";
}

/* The RRSIGs over the SOA of version v, into the answer (b is scratch). */
static zd_err
soa_rrsigs_put(struct xfr_zone *z, uint64_t v, struct xfr_msg *m, struct zd_buf *b)
{
	ldns_rdf *apex = ldns_dname_new_frm_data((uint16_t)z->apex_len, z->apex);
	ldns_rr_list *l = NULL;
	zd_err e;

	if (apex == NULL)
		return ZD_ENOMEM;
	e = store_rrset_find(z->s, v, apex, LDNS_RR_TYPE_RRSIG, TYPE_SOA, &l);
	ldns_rdf_deep_free(apex);
	for (size_t i = 0; e == ZD_OK && l != NULL && i < ldns_rr_list_rr_count(l); i++) {
		zd_buf_reset(b);
		if ((e = xfr_rr_wire_append(b, ldns_rr_list_rr(l, i))) == ZD_OK)
			e = xfr_msg_rr_put(m, XFR_SEC_ANSWER, b->data, b->len);
	}
	ldns_rr_list_deep_free(l);
	return e;
}

static void
answer_soa(struct query *q)
{
	struct xfr_server *x = q->x;
	struct xfr_zone *z = q->zone;
	uint64_t v = store_published_get(z->s);
	zd_err e;

	if (v == 0 || (e = xfr_zone_soa_load(z, v, &x->rr, NULL)) != ZD_OK) {
		xfr_log_limited(&x->rl_peer, ZD_LOG_WARNING, z->zc->name,
		                "SOA query from %s: SERVFAIL (no version published)", q->peer_str);
		answer_empty(q, DNS_SERVFAIL, 0);
		return;
	}
	struct xfr_msg *m = &x->msg;
	xfr_msg_begin(m, q->id, (uint16_t)(answer_flags(q, DNS_NOERROR) | DNS_AA), answer_limit(q));
	e = xfr_msg_question_put(m, q->qname, q->qname_len, q->qtype, q->qclass);
	if (e == ZD_OK)
		e = xfr_msg_rr_put(m, XFR_SEC_ANSWER, x->rr.data, x->rr.len);
	if (e == ZD_OK && q->dnssec_ok)
		e = soa_rrsigs_put(z, v, m, &x->rr);
	if (e == ZD_ELIMIT) {
		answer_empty(q, DNS_NOERROR, DNS_AA | DNS_TC);
		return;
	}
	if (e != ZD_OK) {
		answer_empty(q, DNS_SERVFAIL, 0);
		return;
	}
	answer_send(q, m, 0);
}

static void
refuse(struct query *q, uint16_t rcode, enum xfr_kind kind, const char *why)
{
	struct xfr_server *x = q->x;
	char key[300] = "";
	if (q->key)
		snprintf(key, sizeof key, " key %s", tsig_key_name_get(q->key));
	xfr_log_limited(&x->rl_peer, ZD_LOG_WARNING, zone_label(q), "%s to %s%s refused (%s)",
	                qtype_str(q->qtype), q->peer_str, key, why);
	report(x, q, NULL, kind, XFR_RESULT_REFUSED, why);
	answer_empty(q, rcode, 0);
}

/* The client's serial from the SOA in the authority section (RFC 1995 s3). */
static int
ixfr_client_serial(const struct query *q, uint32_t *serial)
{
	const ldns_rr_list *auth = ldns_pkt_authority(q->pkt);
	for (size_t i = 0; auth != NULL && i < ldns_rr_list_rr_count(auth); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(auth, i);
		const ldns_rdf *o = ldns_rr_owner(rr);
		if (ldns_rr_get_type(rr) != TYPE_SOA || ldns_rr_rd_count(rr) != 7 ||
		    !name_eq_nocase(ldns_rdf_data(o), ldns_rdf_size(o), q->qname, q->qname_len))
			continue;
		const ldns_rdf *s = ldns_rr_rdf(rr, 2);
		if (s == NULL || ldns_rdf_size(s) != 4)
			return 0;
		*serial = ldns_rdf2native_int32(s);
		return 1;
	}
	return 0;
}

/* Decide what an IXFR gets; fills st's steps and buffers. */
static zd_err
ixfr_plan(struct xfr_stream *st, uint32_t client, size_t max_rrs)
{
	struct xfr_zone *z = st->z;
	uint64_t vold;
	zd_err e;

	st->has_from = 1;
	st->from_serial = client;
	if (client == st->serial) {
		st->steps = steps_soa;
		st->n_steps = 1;
		st->note = "up to date";
		return ZD_OK;
	}
	if (store_version_find(z->s, client, &vold) == ZD_OK && vold < st->version) {
		e = xfr_zone_soa_load(z, vold, &st->soa_old, NULL);
		if (e == ZD_OK)
			e = store_diff(z->s, vold, st->version, max_rrs, diff_del, diff_add, st);
		if (e == ZD_OK) {
			st->steps = steps_ixfr;
			st->n_steps = sizeof steps_ixfr;
			return ZD_OK;
		}
		zd_buf_clear(&st->dels);
		zd_buf_clear(&st->adds);
		if (e == ZD_ENOMEM || e == ZD_EBUG)
			return e;
		st->note = e == ZD_ELIMIT ? "difference too large, full zone"
		                          : "serial not kept, full zone";
	} else if (serial_lt(st->serial, client)) {
		/* RFC 1995 s2: a client as new as us or newer gets our SOA. */
		st->steps = steps_soa;
		st->n_steps = 1;
		st->note = "client serial is newer";
		return ZD_OK;
	} else {
		st->note = "serial not kept, full zone";
	}
	/* RFC 1995 s4: the whole zone, AXFR-style. */
	st->kind = XFR_IXFR_AXFR;
	st->steps = steps_axfr;
	st->n_steps = sizeof steps_axfr;
	return ZD_OK;
}

static struct xfr_stream *
stream_new(struct query *q, uint64_t version, uint32_t serial)
{
	struct xfr_stream *st = calloc(1, sizeof *st);
	if (st == NULL)
		return NULL;
	st->z = q->zone;
	st->version = version;
	/* A transfer reads its version over many calls: keep it from being
	 * pruned until the stream ends.  It was published a moment ago, so
	 * only a prune of the whole history in between could have dropped it. */
	if (store_version_pin(st->z->s, version) != ZD_OK) {
		free(st);
		return NULL;
	}
	st->pinned = 1;
	st->serial = serial;
	st->kind = q->qtype == TYPE_AXFR ? XFR_AXFR : XFR_IXFR;
	st->steps = steps_axfr;
	st->n_steps = sizeof steps_axfr;
	zd_buf_init(&st->soa_cur, XFR_RR_SCRATCH);
	zd_buf_init(&st->soa_old, XFR_RR_SCRATCH);
	zd_buf_init(&st->chunk, XFR_CHUNK_MAX);
	zd_buf_init(&st->dels, XFR_DIFF_MAX);
	zd_buf_init(&st->adds, XFR_DIFF_MAX);
	st->id = q->id;
	st->flags = q->flags;
	memcpy(st->qname, q->qname, q->qname_len);
	st->qname_len = q->qname_len;
	st->qtype = q->qtype;
	st->qclass = q->qclass;
	st->edns = q->edns;
	st->key = q->key;
	st->tctx = q->tctx;
	st->start_ms = zd_now_ms();
	return st;
}

/* IXFR over UDP: the whole answer in one message, or our SOA alone. */
static void
ixfr_udp(struct query *q, struct xfr_stream *st, uint32_t client)
{
	struct xfr_server *x = q->x;
	size_t max = udp_limit(q);
	int done = 0;
	zd_err e = ixfr_plan(st, client, max / 12);

	if (e == ZD_OK) {
		/* stream_message() signs: try on a copy of the TSIG state. */
		struct tsig_ctx saved = st->tctx;
		e = stream_message(st, &x->msg, max, &done);
		if (e == ZD_OK && !done) {
			st->tctx = saved;
			e = ZD_ELIMIT;
		}
		if (e == ZD_ELIMIT) {
			/* RFC 1995 s2: does not fit: the SOA alone; the client
			 * retries over TCP. */
			st->steps = steps_soa;
			st->n_steps = 1;
			st->step = 0;
			st->messages = 0;
			st->records = 0;
			st->bytes = 0;
			st->note = "too large for UDP, SOA only";
			e = stream_message(st, &x->msg, max, &done);
		}
	}
	st->kind = XFR_IXFR_UDP;
	if (e != ZD_OK) {
		xfr_log_limited(&x->rl_peer, ZD_LOG_WARNING, st->z->zc->name,
		                "IXFR (UDP) to %s: SERVFAIL (%s)", q->peer_str, zd_strerror(e));
		report(x, q, st, XFR_IXFR_UDP, XFR_RESULT_ERROR, zd_strerror(e));
		answer_empty(q, DNS_SERVFAIL, 0);
		return;
	}
	send_msg(x, NULL, q->udp_fd, q->peer, q->peerlen, q->peer_str, &x->msg);
	stream_log(x, st, q->peer_str);
	report(x, q, st, XFR_IXFR_UDP, XFR_RESULT_OK, NULL);
}

static void
transfer_begin(struct query *q)
{
	struct xfr_server *x = q->x;
	struct xfr_zone *z = q->zone;
	enum xfr_kind kind = q->qtype == TYPE_AXFR ? XFR_AXFR : q->c ? XFR_IXFR : XFR_IXFR_UDP;
	uint32_t client = 0, serial;
	const char *why;
	zd_err e;

	if (q->qtype == TYPE_AXFR && q->c == NULL) {
		/* RFC 5936 s4.2: AXFR is defined over TCP only. */
		xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, zone_label(q),
		                "AXFR over UDP from %s: FORMERR", q->peer_str);
		answer_empty(q, DNS_FORMERR, 0);
		return;
	}
	if (z == NULL) {
		refuse(q, q->key ? DNS_NOTAUTH : DNS_REFUSED, kind, "zone not served");
		return;
	}
	if (q->qtype == TYPE_IXFR && !ixfr_client_serial(q, &client)) {
		xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, z->zc->name,
		                "IXFR from %s without its SOA in authority: FORMERR", q->peer_str);
		answer_empty(q, DNS_FORMERR, 0);
		return;
	}
	if ((why = acl_check(z, q)) != NULL) {
		refuse(q, DNS_REFUSED, kind, why);
		return;
	}
	uint64_t v = store_published_get(z->s);
	if (v == 0) {
		refuse(q, DNS_SERVFAIL, kind, "no version published yet");
		return;
	}
	if (q->c != NULL && x->n_transfers >= x->cfg->limits.max_transfers) {
		char why_buf[64];
		snprintf(why_buf, sizeof why_buf, "max-transfers (%u) reached",
		         x->cfg->limits.max_transfers);
		refuse(q, DNS_SERVFAIL, kind, why_buf);
		return;
	}
	struct xfr_stream *st = stream_new(q, v, 0);
	if (st == NULL || (e = xfr_zone_soa_load(z, v, &st->soa_cur, &serial)) != ZD_OK) {
		stream_free(st);
		refuse(q, DNS_SERVFAIL, kind, "cannot read the published version");
		return;
	}
	st->serial = serial;
	if (q->c == NULL) {
		ixfr_udp(q, st, client);
		stream_free(st);
		return;
	}
	if (q->qtype == TYPE_IXFR && (e = ixfr_plan(st, client, XFR_DIFF_MAX_RRS)) != ZD_OK) {
		stream_free(st);
		refuse(q, DNS_SERVFAIL, kind, zd_strerror(e));
		return;
	}
	q->c->st = st;
	x->n_transfers++;
}

static void
query_handle(struct query *q)
{
	struct xfr_server *x = q->x;
	zd_err e;

	atomic_fetch_add_explicit(&x->n_queries, 1, memory_order_relaxed);
	if (q->c == NULL)
		zd_sockaddr_str(q->peer, q->peer_str, sizeof q->peer_str);
	if (q->len < 12) {
		atomic_fetch_add_explicit(&x->n_dropped, 1, memory_order_relaxed);
		xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, NULL,
		                "message of %zu bytes from %s dropped: shorter than a header",
		                q->len, q->peer_str);
		return;
	}
	q->id = get16(q->wire);
	q->flags = get16(q->wire + 2);
	if (q->flags & DNS_QR) {
		atomic_fetch_add_explicit(&x->n_dropped, 1, memory_order_relaxed);
		return; /* a response: never answer one (no loops) */
	}
	/* TSIG first: a message with more than one TSIG RR (any but the last)
	 * is FORMERR by RFC 8945 s5.2, and must not reach ldns_wire2pkt(),
	 * which leaks the TSIG RRs it replaces (ldns 1.8.3; found by fuzzing). */
	e = tsig_rr_parse(q->wire, q->len, &q->tsig);
	if (e != ZD_OK && e != ZD_ENOTFOUND) {
		xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, NULL,
		                "query from %s with a malformed TSIG: FORMERR", q->peer_str);
		answer_empty(q, DNS_FORMERR, 0);
		return;
	}
	if (ldns_wire2pkt(&q->pkt, q->wire, q->len) != LDNS_STATUS_OK) {
		q->pkt = NULL;
		xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, NULL, "malformed query from %s: FORMERR",
		                q->peer_str);
		answer_empty(q, DNS_FORMERR, 0);
		return;
	}
	if (ldns_pkt_qdcount(q->pkt) == 1 && ldns_pkt_question(q->pkt) != NULL &&
	    ldns_rr_list_rr_count(ldns_pkt_question(q->pkt)) == 1) {
		const ldns_rr *qr = ldns_rr_list_rr(ldns_pkt_question(q->pkt), 0);
		const ldns_rdf *o = ldns_rr_owner(qr);
		if (o != NULL && ldns_rdf_size(o) <= sizeof q->qname) {
			q->has_q = 1;
			memcpy(q->qname, ldns_rdf_data(o), ldns_rdf_size(o));
			q->qname_len = ldns_rdf_size(o);
			q->qtype = (uint16_t)ldns_rr_get_type(qr);
			q->qclass = (uint16_t)ldns_rr_get_class(qr);
		}
	}
	if (ldns_pkt_edns(q->pkt)) {
		q->edns = 1;
		q->edns_size = ldns_pkt_edns_udp_size(q->pkt);
		q->dnssec_ok = ldns_pkt_edns_do(q->pkt);
	}
	/* RFC 8945 s5.2: check the TSIG before anything else. */
	if (e == ZD_OK) {
		uint16_t terr = TSIG_BADKEY;
		const struct tsig_key *k = key_find_wire(x, q->tsig.name, q->tsig.name_len);
		q->has_tsig = 1;
		if (k != NULL) {
			tsig_ctx_init(&q->tctx, k);
			e = tsig_verify(&q->tctx, q->wire, q->len, &q->tsig, zd_wallclock_s(),
			                &terr);
			if (e != ZD_OK) {
				xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, NULL,
				                "query from %s with a malformed TSIG: FORMERR",
				                q->peer_str);
				answer_empty(q, DNS_FORMERR, 0);
				goto out;
			}
		}
		if (terr == TSIG_NOERROR || terr == TSIG_BADTIME)
			q->key = k; /* answers are signed */
		if (terr != TSIG_NOERROR) {
			const char *what = terr == TSIG_BADKEY    ? "key or algorithm unknown"
			                   : terr == TSIG_BADTIME ? "time outside the fudge"
			                                          : "MAC does not verify";
			q->tsig_error = terr == TSIG_BADTIME ? 0 : terr;
			if (q->has_q)
				q->zone = zone_find(x, q->qname, q->qname_len);
			xfr_log_limited(&x->rl_peer, ZD_LOG_WARNING, zone_label(q),
			                "%s from %s refused: NOTAUTH (TSIG %s)",
			                qtype_str(q->qtype), q->peer_str, what);
			if (q->has_q && (q->qtype == TYPE_AXFR || q->qtype == TYPE_IXFR))
				report(x, q, NULL,
				       q->qtype == TYPE_AXFR ? XFR_AXFR
				       : q->c                ? XFR_IXFR
				                             : XFR_IXFR_UDP,
				       XFR_RESULT_REFUSED, what);
			answer_empty(q, DNS_NOTAUTH, 0);
			goto out;
		}
	}
	if (DNS_OPCODE(q->flags) != DNS_OPCODE_QUERY) {
		xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, NULL, "opcode %u from %s: NOTIMP",
		                DNS_OPCODE(q->flags), q->peer_str);
		answer_empty(q, DNS_NOTIMP, 0);
		goto out;
	}
	if (!q->has_q) {
		xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, NULL,
		                "query from %s with %u questions: FORMERR", q->peer_str,
		                (unsigned)ldns_pkt_qdcount(q->pkt));
		answer_empty(q, DNS_FORMERR, 0);
		goto out;
	}
	if (q->edns && ldns_pkt_edns_version(q->pkt) != 0) {
		answer_empty(q, DNS_BADVERS, 0); /* RFC 6891 s6.1.3 */
		goto out;
	}
	q->zone = zone_find(x, q->qname, q->qname_len);
	if (q->qtype == TYPE_AXFR || q->qtype == TYPE_IXFR) {
		if (q->qclass != CLASS_IN) {
			refuse(q, DNS_REFUSED, q->qtype == TYPE_AXFR ? XFR_AXFR : XFR_IXFR,
			       "class not IN");
			goto out;
		}
		transfer_begin(q);
		goto out;
	}
	if (q->qtype == TYPE_SOA && q->qclass == CLASS_IN && q->zone != NULL) {
		answer_soa(q);
		goto out;
	}
	/* A hidden primary answers its secondaries' questions only. */
	answer_empty(q, q->zone == NULL && q->key ? DNS_NOTAUTH : DNS_REFUSED, 0);
out:
	ldns_pkt_free(q->pkt);
	q->pkt = NULL;
}

static void
udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xfr_server *x = arg;
	(void)what;
	for (int i = 0; i < XFR_UDP_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		ssize_t n = recvfrom(fd, x->udp_buf, XFR_MSG_MAX, 0, (struct sockaddr *)&ss, &sl);
		if (n < 0)
			return; /* EAGAIN, or an ICMP error reported late: nothing to do */
		struct query q = {
		        .x = x,
		        .wire = x->udp_buf,
		        .len = (size_t)n,
		        .udp_fd = fd,
		        .peer = (const struct sockaddr *)&ss,
		        .peerlen = sl,
		};
		query_handle(&q);
	}
}

/* --- server --------------------------------------------------------------- */

static void
pub_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xfr_server *x = arg;
	(void)fd;
	(void)what;
	for (size_t i = 0; i < x->n_zones; i++) {
		struct xfr_zone *z = x->zones[i];
		pthread_mutex_lock(&x->pub_lock);
		int pending = z->pub_pending;
		z->pub_pending = 0;
		pthread_mutex_unlock(&x->pub_lock);
		if (pending)
			notify_zone_published(z);
	}
}

zd_err
xfr_server_new(struct event_base *base, const struct zd_config *cfg, struct xfr_server **out)
{
	struct xfr_server *x = NULL;
	zd_err e = ZD_ENOMEM;

	if (base == NULL || cfg == NULL)
		return ZD_EBUG;
	/* libevent writes with writev(): a peer closing mid-transfer would
	 * raise SIGPIPE, whose default kills the process. */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_IGN;
		(void)sigaction(SIGPIPE, &sa, NULL);
	}
	if ((x = calloc(1, sizeof *x)) == NULL)
		return ZD_ENOMEM;
	x->base = base;
	x->cfg = cfg;
	x->notify_fd[0] = x->notify_fd[1] = -1;
	pthread_mutex_init(&x->pub_lock, NULL);
	zd_ratelimit_init(&x->rl_peer, 1000, 20);
	zd_ratelimit_init(&x->rl_xfr, 1000, 100);
	zd_buf_init(&x->rr, XFR_RR_SCRATCH);
	if ((e = xfr_msg_init(&x->msg)) != ZD_OK)
		goto out;
	e = ZD_ENOMEM;
	if ((x->udp_buf = malloc(XFR_MSG_MAX)) == NULL)
		goto out;
	if ((x->pub_ev = event_new(base, -1, 0, pub_cb, x)) == NULL ||
	    (x->relisten_ev = event_new(base, -1, 0, relisten_cb, x)) == NULL)
		goto out;
	if (cfg->n_keys > 0 && (x->keys = calloc(cfg->n_keys, sizeof *x->keys)) == NULL)
		goto out;
	for (size_t i = 0; i < cfg->n_keys; i++) {
		if ((e = tsig_key_new(&cfg->keys[i], &x->keys[i])) != ZD_OK) {
			zd_log(ZD_LOG_ERROR, "xfr", NULL, "TSIG key %s: %s", cfg->keys[i].name,
			       e == ZD_EMALFORMED ? "secret is not valid base64 or algorithm "
			                            "unknown"
			                          : zd_strerror(e));
			goto out;
		}
		x->n_keys++;
	}
	*out = x;
	x = NULL;
	e = ZD_OK;
out:
	xfr_server_free(x);
	return e;
}

static void
zone_free(struct xfr_zone *z)
{
	if (z == NULL)
		return;
	notify_zone_clear(z);
	free(z->acl_keys);
	free(z);
}

void
xfr_server_free(struct xfr_server *x)
{
	if (x == NULL)
		return;
	while (x->conns != NULL)
		conn_free(x->conns);
	for (size_t i = 0; i < x->n_listeners; i++) {
		struct xfr_listener *l = &x->listeners[i];
		if (l->udp_ev)
			event_free(l->udp_ev);
		if (l->udp_fd >= 0)
			close(l->udp_fd);
		if (l->tcp)
			evconnlistener_free(l->tcp);
	}
	free(x->listeners);
	notify_server_clear(x);
	for (size_t i = 0; i < x->n_zones; i++)
		zone_free(x->zones[i]);
	free(x->zones);
	for (size_t i = 0; i < x->n_keys; i++)
		tsig_key_free(x->keys[i]);
	free(x->keys);
	if (x->pub_ev)
		event_free(x->pub_ev);
	if (x->relisten_ev)
		event_free(x->relisten_ev);
	xfr_msg_clear(&x->msg);
	zd_buf_clear(&x->rr);
	free(x->udp_buf);
	pthread_mutex_destroy(&x->pub_lock);
	free(x);
}

zd_err
xfr_server_zone_add(struct xfr_server *x, const struct zd_zone_config *zc, struct store *s)
{
	struct xfr_zone *z = NULL;
	zd_err e = ZD_ENOMEM;

	if (zc == NULL || s == NULL)
		return ZD_EBUG;
	const ldns_rdf *apex = store_apex_get(s);
	if (apex == NULL || ldns_rdf_size(apex) > sizeof z->apex)
		return ZD_EBUG;
	if (zone_find(x, ldns_rdf_data(apex), ldns_rdf_size(apex)) != NULL)
		return ZD_ELIMIT;
	if ((z = calloc(1, sizeof *z)) == NULL)
		return ZD_ENOMEM;
	z->x = x;
	z->zc = zc;
	z->s = s;
	z->apex_len = ldns_rdf_size(apex);
	for (size_t i = 0; i < z->apex_len; i++)
		z->apex[i] = (uint8_t)tolower(ldns_rdf_data(apex)[i]);
	if ((z->acl_keys = calloc(zc->n_acl ? zc->n_acl : 1, sizeof *z->acl_keys)) == NULL)
		goto out;
	for (size_t i = 0; i < zc->n_acl; i++) {
		if (zc->acl[i].key == NULL)
			continue;
		if ((z->acl_keys[i] = xfr_key_find(x, zc->acl[i].key)) == NULL) {
			zd_log(ZD_LOG_ERROR, "xfr", zc->name,
			       "allow-transfer %s names unknown key %s", zc->acl[i].text,
			       zc->acl[i].key);
			e = ZD_EMALFORMED;
			goto out;
		}
	}
	if ((e = notify_zone_init(z)) != ZD_OK)
		goto out;
	struct xfr_zone **zs = realloc(x->zones, (x->n_zones + 1) * sizeof *zs);
	if (zs == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	x->zones = zs;
	x->zones[x->n_zones++] = z;
	z = NULL;
	e = ZD_OK;
out:
	zone_free(z);
	return e;
}

static int
socket_bound(int type, const struct sockaddr *sa, socklen_t salen, int *err)
{
	int one = 1;
	int fd = socket(sa->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (type == SOCK_STREAM)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, sa, salen) != 0 ||
	    (type == SOCK_STREAM && listen(fd, XFR_LISTEN_BACKLOG) != 0)) {
		*err = errno;
		close(fd);
		return -1;
	}
	return fd;
}

static uint16_t
sa_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

static void
sa_port_set(struct sockaddr *sa, uint16_t port)
{
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

zd_err
xfr_server_listen_addr(struct xfr_server *x, const struct sockaddr *sa, socklen_t salen,
                       uint16_t *port_out)
{
	struct sockaddr_storage ss;
	char text[XFR_ADDRSTR];
	int tcp = -1, udp = -1, err = 0;
	const char *proto = "tcp";

	if (sa == NULL || salen > sizeof ss ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return ZD_EBUG;
	memcpy(&ss, sa, salen);
	zd_sockaddr_str(sa, text, sizeof text);
	/* Port 0: take the kernel's TCP port and try the same for UDP. */
	for (int attempt = 0; attempt < 32; attempt++) {
		if (sa_port(sa) == 0)
			sa_port_set((struct sockaddr *)&ss, 0);
		proto = "tcp";
		if ((tcp = socket_bound(SOCK_STREAM, (struct sockaddr *)&ss, salen, &err)) < 0)
			break;
		socklen_t l = salen;
		if (getsockname(tcp, (struct sockaddr *)&ss, &l) != 0) {
			err = errno;
			close(tcp);
			tcp = -1;
			break;
		}
		proto = "udp";
		if ((udp = socket_bound(SOCK_DGRAM, (struct sockaddr *)&ss, salen, &err)) >= 0)
			break;
		close(tcp);
		tcp = -1;
		if (sa_port(sa) != 0 || err != EADDRINUSE)
			break;
	}
	if (tcp < 0 || udp < 0) {
		zd_log(ZD_LOG_ERROR, "xfr", NULL, "cannot listen on %s (%s): %s", text, proto,
		       strerror(err));
		return ZD_EIO;
	}
	struct xfr_listener *ls = realloc(x->listeners, (x->n_listeners + 1) * sizeof *ls);
	if (ls == NULL) {
		close(tcp);
		close(udp);
		return ZD_ENOMEM;
	}
	x->listeners = ls;
	struct xfr_listener *l = &x->listeners[x->n_listeners];
	memset(l, 0, sizeof *l);
	l->udp_fd = udp;
	memcpy(&l->addr, &ss, salen);
	l->addrlen = salen;
	l->udp_ev = event_new(x->base, udp, EV_READ | EV_PERSIST, udp_read_cb, x);
	l->tcp = evconnlistener_new(x->base, accept_cb, x, LEV_OPT_CLOSE_ON_FREE, 0, tcp);
	if (l->tcp == NULL)
		close(tcp);
	x->n_listeners++; /* from here xfr_server_free() releases it */
	if (l->udp_ev == NULL || l->tcp == NULL || event_add(l->udp_ev, NULL) != 0) {
		zd_log(ZD_LOG_ERROR, "xfr", NULL, "cannot listen on %s: event setup failed", text);
		return ZD_EIO;
	}
	evconnlistener_set_error_cb(l->tcp, accept_error_cb);
	zd_sockaddr_str((struct sockaddr *)&ss, text, sizeof text);
	zd_log(ZD_LOG_NOTICE, "xfr", NULL, "listening on %s (udp, tcp)", text);
	if (port_out != NULL)
		*port_out = sa_port((struct sockaddr *)&ss);
	return ZD_OK;
}

zd_err
xfr_server_listen(struct xfr_server *x)
{
	for (size_t i = 0; i < x->cfg->n_listen; i++) {
		struct sockaddr_storage ss;
		socklen_t sl;
		zd_err e;
		if (zd_parse_sockaddr(x->cfg->listen[i], 53, &ss, &sl) != ZD_OK) {
			zd_log(ZD_LOG_ERROR, "xfr", NULL, "cannot listen on %s: not an address",
			       x->cfg->listen[i]);
			return ZD_EIO;
		}
		if ((e = xfr_server_listen_addr(x, (struct sockaddr *)&ss, sl, NULL)) != ZD_OK)
			return e == ZD_ENOMEM ? e : ZD_EIO;
	}
	return ZD_OK;
}

void
xfr_zone_published(struct xfr_server *x, const char *zone)
{
	size_t n = zone ? strlen(zone) : 0;
	if (n > 0 && zone[n - 1] == '.')
		n--;
	for (size_t i = 0; i < x->n_zones; i++) {
		struct xfr_zone *z = x->zones[i];
		const char *name = z->zc->name;
		size_t m = strlen(name);
		if (m > 1 && name[m - 1] == '.')
			m--;
		if (m != n || strncasecmp(name, zone, n) != 0)
			continue;
		pthread_mutex_lock(&x->pub_lock);
		z->pub_pending = 1;
		pthread_mutex_unlock(&x->pub_lock);
		event_active(x->pub_ev, EV_TIMEOUT, 0); /* thread-safe: evthread is on */
		return;
	}
}

void
xfr_server_observer_set(struct xfr_server *x, xfr_observer_fn fn, void *arg)
{
	x->observer = fn;
	x->observer_arg = arg;
}

void
xfr_server_stats_get(const struct xfr_server *x, struct xfr_stats *out)
{
	struct xfr_server *w = (struct xfr_server *)x; /* atomics need non-const */
	memset(out, 0, sizeof *out);
	out->tcp_clients = x->n_conns;
	out->transfers = x->n_transfers;
	out->queries = atomic_load_explicit(&w->n_queries, memory_order_relaxed);
	out->dropped = atomic_load_explicit(&w->n_dropped, memory_order_relaxed);
	out->notify_sent = atomic_load_explicit(&w->n_notify_sent, memory_order_relaxed);
	out->notify_acked = atomic_load_explicit(&w->n_notify_acked, memory_order_relaxed);
	out->notify_failed = atomic_load_explicit(&w->n_notify_failed, memory_order_relaxed);
}
