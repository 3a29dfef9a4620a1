/* server/tsig.h -- TSIG (RFC 8945) on DNS messages in wire form: verify a
 * request and sign its answer or the chain of messages of a zone transfer;
 * sign our own requests (NOTIFY) and verify their answers.
 *
 * Our own code over OpenSSL's HMAC rather than ldns_pkt_tsig_*(): ldns 1.8
 * cannot compute hmac-sha384, does not check Time Signed, and cannot put a
 * TSIG error (BADKEY, BADSIG, BADTIME) into an answer.  The unit tests check
 * this code against ldns for the other algorithms.
 *
 * Threads: any.  A tsig_key is read-only after tsig_key_new(); a tsig_ctx
 * belongs to one exchange (one request and its answers).
 * Limits: hmac-sha1, hmac-sha256, hmac-sha384, hmac-sha512; MACs must have
 * the algorithm's full length (truncated MACs are answered BADSIG: a
 * local policy RFC 8945 s5.2.2.1 allows); names <= 255 octets.
 * Standards: RFC 8945 (s4.3 digest, s5.2 server checks, s5.3.1 TCP chains). */
#ifndef ZD_TSIG_H
#define ZD_TSIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_buf.h"
#include "common/zd_config.h"
#include "common/zd_err.h"

#define TSIG_MAC_MAX  64  /* bytes; hmac-sha512 */
#define TSIG_NAME_MAX 255 /* octets of a wire-form name */
#define TSIG_FUDGE_S  300 /* seconds; RFC 8945 s10 recommends 300 */

/* TSIG RR error field values (RFC 8945 s3, IANA "DNS RCODEs"). */
#define TSIG_NOERROR 0
#define TSIG_BADSIG  16
#define TSIG_BADKEY  17
#define TSIG_BADTIME 18

struct tsig_key;

/* A key from the configuration: secret in base64, algorithm as
 * "hmac-sha256." and friends.  ZD_EMALFORMED for a bad secret, an unknown
 * algorithm or a bad name.  On ZD_OK *out is a new key the caller owns
 * (tsig_key_free(); the secret is wiped). */
zd_err tsig_key_new(const struct zd_tsig_key *cfg, struct tsig_key **out);
void tsig_key_free(struct tsig_key *k);
/* Borrowed, valid for the key's life: "k1." as configured (lower case). */
const char *tsig_key_name_get(const struct tsig_key *k);
/* Bytes a TSIG RR signed with k adds to a message. */
size_t tsig_space_get(const struct tsig_key *k);
/* 1 when the wire-form (lower-case) key name and algorithm are k's. */
int tsig_key_is(const struct tsig_key *k, const uint8_t *name, size_t name_len);

/* The TSIG RR that ends a message, as parsed by tsig_rr_parse().  Pointers
 * borrow the message bytes. */
struct tsig_rr {
	size_t off; /* the TSIG RR starts here: the message without it is [0, off) */
	uint8_t name[TSIG_NAME_MAX]; /* key name, wire form, lower case */
	size_t name_len;
	uint8_t alg[TSIG_NAME_MAX]; /* algorithm name, wire form, lower case */
	size_t alg_len;
	uint64_t time_signed; /* seconds since the epoch (48 bits) */
	uint16_t fudge;
	const uint8_t *mac;
	uint16_t mac_len;
	uint16_t orig_id;
	uint16_t error;
	const uint8_t *other;
	uint16_t other_len;
};

/* Find and parse the TSIG RR of a message (untrusted bytes).  ZD_ENOTFOUND
 * when the message carries none; ZD_EMALFORMED when a TSIG RR is not the last
 * record (RFC 8945 s5.2: FORMERR), or the message or the RR does not parse. */
zd_err tsig_rr_parse(const uint8_t *wire, size_t len, struct tsig_rr *out);

/* State of one signed exchange: the MAC to chain the next message to. */
struct tsig_ctx {
	const struct tsig_key *key; /* borrowed */
	uint8_t prior_mac[TSIG_MAC_MAX];
	uint16_t prior_mac_len;
	int have_prior;
	uint32_t n_signed;   /* messages signed in this exchange */
	uint32_t n_verified; /* messages verified in this exchange */
	uint64_t req_time;   /* Time Signed of the request, for a BADTIME answer */
	uint16_t error;      /* TSIG error the answers carry (0 or BADTIME) */
};

void tsig_ctx_init(struct tsig_ctx *c, const struct tsig_key *k);

/* Verify the next message of the exchange: a request (nothing signed yet),
 * the first answer to our signed request (its MAC chains to ours), or a
 * later message of a chain (TSIG timers only, RFC 8945 s5.3.1).  t comes
 * from tsig_rr_parse() on the same bytes.  Returns ZD_OK with *error_out:
 * TSIG_NOERROR (c now chains to this message's MAC), TSIG_BADKEY (name or
 * algorithm is not c's key), TSIG_BADSIG, TSIG_BADTIME (MAC good, time off
 * by more than the fudge: c is set up to sign the BADTIME answer), or the
 * peer's own non-zero error field.  ZD_EMALFORMED for a MAC longer than the
 * algorithm's (RFC 8945 s5.2.2.1: FORMERR). */
zd_err tsig_verify(struct tsig_ctx *c, const uint8_t *wire, size_t len, const struct tsig_rr *t,
                   uint64_t now_s, uint16_t *error_out);

/* Sign the complete message in msg (header counts final, no TSIG yet): the
 * first message with the request MAC and all TSIG variables, later ones
 * with the prior MAC and the timers only (RFC 8945 s5.3.1); a request when
 * nothing came before.  Appends the TSIG RR and counts it in ARCOUNT.  All
 * or nothing: on failure msg is unchanged (ZD_ELIMIT when it has no room). */
zd_err tsig_sign(struct tsig_ctx *c, struct zd_buf *msg, uint64_t now_s);

/* Append the unsigned TSIG RR of a BADKEY or BADSIG answer (RFC 8945
 * s5.3.2: MAC size 0), naming the request's key and algorithm. */
zd_err tsig_error_append(struct zd_buf *msg, const struct tsig_rr *req, uint16_t error,
                         uint64_t now_s);

#endif
