/* server/xfr_priv.h -- internals of the transfer server, shared by xfr.c
 * (queries, AXFR, IXFR, the message writer) and notify.c (NOTIFY out).
 * Threads: the loop's thread only, except where a field says otherwise. */
#ifndef ZD_XFR_PRIV_H
#define ZD_XFR_PRIV_H

#include <ldns/ldns.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/zd_buf.h"
#include "common/zd_config.h"
#include "common/zd_log.h"
#include "server/tsig.h"
#include "server/xfr.h"

struct event;
struct event_base;
struct evconnlistener;
struct store;

#define XFR_MSG_MAX       65535u /* bytes; a DNS message */
#define XFR_UDP_MIN       512u   /* bytes; UDP answer without EDNS (RFC 1035 s4.2.1) */
#define XFR_UDP_MAX       1232u  /* bytes; our cap on EDNS sizes (no IP fragments) */
#define XFR_OPT_SIZE      11u    /* bytes; an OPT RR without options */
#define XFR_ADDRSTR       64u    /* "ffff:...#65535" */
#define XFR_CMP_SLOTS     8192u  /* compression table entries (power of 2) */
#define XFR_CMP_NAMES     65536u /* bytes of names the compression table refers to */
#define XFR_NOTIFY_MAX_MS 60000u /* cap on the NOTIFY resend interval */

/* DNS header bits and codes used here. */
#define DNS_QR            0x8000u
#define DNS_AA            0x0400u
#define DNS_TC            0x0200u
#define DNS_RD            0x0100u
#define DNS_OPCODE(f)     (((f) >> 11) & 0xFu)
#define DNS_OPCODE_QUERY  0u
#define DNS_OPCODE_NOTIFY 4u
#define DNS_NOERROR       0u
#define DNS_FORMERR       1u
#define DNS_SERVFAIL      2u
#define DNS_NOTIMP        4u
#define DNS_REFUSED       5u
#define DNS_NOTAUTH       9u
#define DNS_BADVERS       16u /* extended (RFC 6891 s9) */

enum xfr_section { XFR_SEC_QUESTION = 0, XFR_SEC_ANSWER, XFR_SEC_AUTHORITY, XFR_SEC_ADDITIONAL };

/* --- Message writer (xfr.c) ------------------------------------------------
 * Builds one DNS message from uncompressed wire RRs, compressing owner names
 * and the names inside the RDATA of the RFC 1035 types (RFC 3597 s4 forbids
 * it elsewhere).  Compression targets are kept in a hash table of name
 * suffixes, reset per message by bumping a generation. */
struct xfr_cmp_slot {
	uint32_t gen;
	uint32_t hash;
	uint32_t name_off; /* in names */
	uint16_t msg_off;
	uint16_t len;
};

struct xfr_msg {
	struct zd_buf b;            /* the message; cap XFR_MSG_MAX bytes */
	size_t limit;               /* bytes the sections may fill; room for OPT/TSIG stays free */
	uint16_t count[4];          /* per section */
	int section;                /* sections are written in order */
	int full;                   /* an RR did not fit: no more RRs go in */
	struct xfr_cmp_slot *slots; /* XFR_CMP_SLOTS; owned */
	uint32_t gen;
	uint32_t used;
	struct zd_buf names; /* cap XFR_CMP_NAMES bytes */
};

zd_err xfr_msg_init(struct xfr_msg *m);
void xfr_msg_clear(struct xfr_msg *m);
/* Start a message: header with id and flags, sections empty. */
void xfr_msg_begin(struct xfr_msg *m, uint16_t id, uint16_t flags, size_t limit);
zd_err xfr_msg_question_put(struct xfr_msg *m, const uint8_t *qname, size_t qname_len,
                            uint16_t qtype, uint16_t qclass);
/* One RR in uncompressed wire form.  ZD_ELIMIT when it does not fit under
 * the limit: the message is as before, and takes no more RRs. */
zd_err xfr_msg_rr_put(struct xfr_msg *m, enum xfr_section sec, const uint8_t *rr, size_t len);
/* Write the section counts into the header. */
void xfr_msg_finish(struct xfr_msg *m);
/* Append an OPT RR (after xfr_msg_finish(); counts it); beyond the limit. */
zd_err xfr_msg_opt_put(struct xfr_msg *m, uint16_t udp_size, uint8_t ext_rcode, int dnssec_ok);

/* Append rr in uncompressed wire form (owner, type, class, TTL, RDATA). */
zd_err xfr_rr_wire_append(struct zd_buf *b, const ldns_rr *rr);
/* Length of the uncompressed wire RR at p (checked against n). */
zd_err xfr_rr_wire_len(const uint8_t *p, size_t n, size_t *len_out);

/* --- Server ------------------------------------------------------------- */

struct notify_peer {
	struct xfr_zone *z;
	const struct zd_peer *peer; /* borrowed from cfg */
	const struct tsig_key *key; /* borrowed from the server; NULL: unsigned */
	struct event *timer;        /* owned */
	char addr[XFR_ADDRSTR];
	int active; /* a NOTIFY is outstanding */
	uint16_t id;
	uint32_t sent_serial; /* serial of the message in wire */
	uint32_t attempts;    /* sends in this episode */
	uint32_t wait_ms;     /* until the next resend */
	struct tsig_ctx tctx; /* chains the answer to what we sent */
	struct zd_buf wire;   /* the NOTIFY as sent; cap XFR_UDP_MIN bytes */
};

struct xfr_zone {
	struct xfr_server *x;
	const struct zd_zone_config *zc; /* borrowed */
	struct store *s;                 /* borrowed */
	uint8_t apex[255];               /* wire form, lower case */
	size_t apex_len;
	const struct tsig_key **acl_keys; /* owned array, parallel to zc->acl; NULL: none */
	struct notify_peer *peers;        /* owned, zc->n_notify of them */
	size_t n_peers;
	int pub_pending; /* a publish to announce; under x->pub_lock (any thread) */
};

struct xfr_listener {
	int udp_fd;
	struct event *udp_ev;       /* owned */
	struct evconnlistener *tcp; /* owned; closes its socket */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

struct xfr_conn;

struct xfr_server {
	struct event_base *base;     /* borrowed */
	const struct zd_config *cfg; /* borrowed */
	struct tsig_key **keys;      /* owned, parallel to cfg->keys */
	size_t n_keys;
	struct xfr_zone **zones; /* owned; fixed once the loop runs */
	size_t n_zones;
	struct xfr_listener *listeners; /* owned */
	size_t n_listeners;
	struct event *relisten_ev; /* re-enables accepting after EMFILE */
	struct xfr_conn *conns;    /* open TCP connections */
	_Atomic uint32_t n_conns;  /* atomic: xfr_server_stats_get() from any thread */
	_Atomic uint32_t n_transfers;
	struct xfr_msg msg; /* scratch for the message being built */
	struct zd_buf rr;   /* scratch for one RR; cap 65535 + 265 bytes */
	uint8_t *udp_buf;   /* XFR_MSG_MAX bytes */
	pthread_mutex_t pub_lock;
	struct event *pub_ev; /* activated by xfr_zone_published() */
	int notify_fd[2];     /* [0] IPv4, [1] IPv6; -1 until needed */
	struct event *notify_ev[2];
	xfr_observer_fn observer;
	void *observer_arg;
	struct zd_ratelimit rl_peer; /* what a peer can trigger: malformed, refused */
	struct zd_ratelimit rl_xfr;  /* transfer lines */
	/* counters: written on the loop, read from any thread */
	_Atomic uint64_t n_queries, n_dropped, n_notify_sent, n_notify_acked, n_notify_failed;
};

/* Key of cfg by name ("k1."), NULL when absent. */
const struct tsig_key *xfr_key_find(const struct xfr_server *x, const char *name);
/* The zone's SOA at version v as one uncompressed RR in b (reset first);
 * *serial_out (may be NULL) gets its serial. */
zd_err xfr_zone_soa_load(struct xfr_zone *z, uint64_t v, struct zd_buf *b, uint32_t *serial_out);
/* Log through a rate limit; the line says how many were suppressed. */
void xfr_log_limited(struct zd_ratelimit *rl, enum zd_log_level level, const char *zone,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* --- NOTIFY out (notify.c) ----------------------------------------------- */

/* Peers of z from its configuration.  On failure z has no peers. */
zd_err notify_zone_init(struct xfr_zone *z);
void notify_zone_clear(struct xfr_zone *z);
/* z published a new version: notify every peer (loop thread). */
void notify_zone_published(struct xfr_zone *z);
/* Close the NOTIFY sockets. */
void notify_server_clear(struct xfr_server *x);

#endif
