/* integrity-check/xfrin.h -- what zonedist-check asks a secondary: its SOA
 * serial, and the whole zone by AXFR, with ldns's resolver (TSIG-signed
 * queries when a key is given).
 *
 * Threads: any; each call has its own resolver.  Limits: each read waits
 * at most timeout_ms, a whole transfer at most deadline_ms, and the zone
 * may hold at most max_bytes of canonical records (ZD_ELIMIT beyond: it is
 * not read further).  Standards: RFC 5936 (AXFR), RFC 8945 (TSIG). */
#ifndef ZD_XFRIN_H
#define ZD_XFRIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/zd_err.h"
#include "integrity-check/zoneset.h"

struct xfrin_peer {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const char *key_name;   /* TSIG key or NULL; borrowed */
	const char *key_alg;    /* "hmac-sha256." and friends */
	const char *key_secret; /* base64 */
	uint32_t timeout_ms;
	uint32_t deadline_ms;
	size_t max_bytes;
};

/* The serial of zone's SOA as the peer answers it (UDP, TCP on
 * truncation).  ZD_EIO when it does not answer in time (why says how),
 * ZD_EMALFORMED when it answers without a SOA (an rcode such as REFUSED). */
zd_err xfrin_soa_serial(const struct xfrin_peer *p, const ldns_rdf *zone, uint32_t *serial,
                        char *why, size_t whylen);

/* The whole zone by AXFR.  On ZD_OK *out is a new finished zoneset
 * (zoneset_free()) and *bytes the message bytes read.  ZD_EIO (no answer,
 * connection lost, timeout), ZD_EMALFORMED (refused, not a complete
 * transfer), ZD_ELIMIT (larger than max_bytes); why says which. */
zd_err xfrin_axfr(const struct xfrin_peer *p, const ldns_rdf *zone, struct zoneset **out,
                  uint64_t *bytes, char *why, size_t whylen);

#endif
