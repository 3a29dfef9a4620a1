/* server/xfr.h -- the DNS transfer server of a hidden primary: answers SOA
 * queries, AXFR (RFC 5936) and IXFR (RFC 1995) over TCP, IXFR over UDP,
 * protects transfers with ACLs and TSIG (RFC 8945), and sends NOTIFY
 * (RFC 1996) with retries when a zone publishes a new version.
 *
 * What it answers:
 *   SOA at a zone apex (class IN): the published SOA, AA set.
 *   AXFR over TCP: SOA, every record of the version published when the
 *     transfer began, SOA; over UDP: FORMERR (RFC 5936 s4.2 defines AXFR on
 *     TCP only; BIND answers the same).
 *   IXFR with the client's SOA in authority: one SOA when the client is up
 *     to date or newer (RFC 1995 s2); the condensed difference when its
 *     serial is kept; the whole zone AXFR-style otherwise or when the
 *     difference is too large (RFC 1995 s4).  Over UDP only when it fits
 *     one message, else the current SOA alone (RFC 1995 s2).
 *   Anything else for a zone (other types, names below the apex): REFUSED,
 *   since only secondaries are meant to ask this server.  Unknown zone:
 *   REFUSED, NOTAUTH when the query carried a valid TSIG.  Opcodes other
 *   than QUERY (NOTIFY and UPDATE included): NOTIMP.  Unparseable messages
 *   with a readable header: FORMERR; shorter than a header: dropped.
 *
 * Threads: everything runs on the thread of the event base given to
 * xfr_server_new(), except xfr_zone_published(), which any thread may call.
 * Limits: cfg->limits.max_tcp_clients connections (more are accepted and
 * closed at once), max_transfers concurrent AXFR/IXFR streams over TCP (more
 * get SERVFAIL), tcp_idle_timeout_ms without a complete query read or our
 * output moving closes a connection, max_message_bytes per TCP message;
 * UDP answers <= 512 bytes, or the client's EDNS size capped at 1232.
 * A transfer keeps at most ~3 messages queued per connection.
 * Standards: RFC 1034/1035, 1982, 1995, 1996, 5936, 6891 (OPT echo), 8945. */
#ifndef ZD_XFR_H
#define ZD_XFR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/zd_config.h"
#include "common/zd_err.h"

struct event_base;
struct store;
struct xfr_server;

/* base: the event loop's base; evthread_use_pthreads() must have been called
 * before it was created (xfr_zone_published() wakes it from other threads).
 * Sets SIGPIPE to ignored if it is at its default: a secondary closing its
 * connection mid-transfer must not kill the process.
 * cfg is borrowed for the server's life.  ZD_EMALFORMED when a TSIG key of
 * cfg does not decode.  On ZD_OK *out is a new server the caller owns
 * (xfr_server_free()). */
zd_err xfr_server_new(struct event_base *base, const struct zd_config *cfg,
                      struct xfr_server **out);
/* Closes every socket and connection.  Call on the loop's thread while no
 * other thread can call xfr_zone_published(); xfr_server_free(NULL) does
 * nothing. */
void xfr_server_free(struct xfr_server *x);

/* Serve zone zc from store s, both borrowed for the server's life (zc must
 * be one of cfg->zones).  Call before the loop runs.  ZD_ELIMIT when the
 * zone is already served. */
zd_err xfr_server_zone_add(struct xfr_server *x, const struct zd_zone_config *zc, struct store *s);

/* Bind UDP and TCP on every cfg->listen address.  ZD_EIO (with a log line
 * naming the address and the reason) when one cannot be bound; the ones
 * bound before stay open until xfr_server_free(). */
zd_err xfr_server_listen(struct xfr_server *x);
/* Bind UDP and TCP on one address.  Port 0 picks a port free for both;
 * *port_out (may be NULL) gets the port bound. */
zd_err xfr_server_listen_addr(struct xfr_server *x, const struct sockaddr *sa, socklen_t salen,
                              uint16_t *port_out);

/* Thread-safe.  Zone `zone` (presentation form) published a new version:
 * the loop sends NOTIFY with the published serial to the zone's notify peers
 * (TSIG-signed when the peer names a key), resending after
 * notify_timeout_ms, doubling, up to notify_retries times, until the peer
 * answers.  Every publish is sent at once, with a new id, also while a NOTIFY of an older serial is unanswered.
 * Unknown zones are ignored. */
void xfr_zone_published(struct xfr_server *x, const char *zone);

/* --- Transfer reports (for the transfer log) ------------------------------ */

enum xfr_kind {
	XFR_AXFR,      /* AXFR over TCP */
	XFR_IXFR,      /* IXFR answered with a difference (or one SOA: up to date) */
	XFR_IXFR_AXFR, /* IXFR answered with the whole zone */
	XFR_IXFR_UDP,  /* IXFR over UDP (difference, or the SOA alone) */
};

enum xfr_result {
	XFR_RESULT_OK,
	XFR_RESULT_REFUSED, /* ACL, TSIG, limits, unknown zone */
	XFR_RESULT_ERROR,   /* the transfer broke off (store, connection) */
};

struct xfr_report {
	const char *zone; /* "tld."; the query's name when no zone matched */
	const struct sockaddr *peer;
	socklen_t peerlen;
	const char *key; /* TSIG key name or NULL */
	enum xfr_kind kind;
	int has_from; /* IXFR: from_serial is the client's serial */
	uint32_t from_serial;
	uint32_t to_serial; /* serial served; 0 when refused early */
	uint64_t bytes;     /* DNS message bytes, without TCP framing */
	uint32_t messages;
	uint64_t records; /* RRs in answer sections */
	uint64_t duration_ms;
	enum xfr_result result;
	const char *reason; /* why refused or broken off; NULL when ok */
};

/* Called on the loop's thread after each AXFR/IXFR is fully queued, refused
 * or broken off.  r and its pointers are borrowed for the call only. */
typedef void (*xfr_observer_fn)(void *arg, const struct xfr_report *r);
void xfr_server_observer_set(struct xfr_server *x, xfr_observer_fn fn, void *arg);

/* Counters, for tests and the status page.  Loop thread only. */
struct xfr_stats {
	uint32_t tcp_clients;   /* open connections */
	uint32_t transfers;     /* running AXFR/IXFR streams */
	uint64_t queries;       /* messages received (UDP and TCP) */
	uint64_t dropped;       /* too short or unusable to answer */
	uint64_t notify_sent;   /* NOTIFY messages sent, retries included */
	uint64_t notify_acked;  /* answers matched to a NOTIFY */
	uint64_t notify_failed; /* NOTIFYs given up */
};
void xfr_server_stats_get(const struct xfr_server *x, struct xfr_stats *out);

#endif
