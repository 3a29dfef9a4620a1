/* tests/fuzz/tsig_fuzz.c -- libFuzzer target for server/tsig: the input is a
 * whole DNS message.  tsig_rr_parse() finds its TSIG RR; tsig_verify() then
 * checks it as a request, as the first answer to a request of ours and as a
 * later message of a TCP chain, with each configured key (k1. hmac-sha256,
 * k2. hmac-sha512) at a fixed time.  A request that verifies is answered:
 * the answer is signed with tsig_sign() and must verify on the client side;
 * one that does not gets tsig_error_append().  Must never crash or leak.
 * Seeds in corpus/tsig_fuzz are signed at FUZZ_NOW_S, so the MAC checks are
 * reached; a seed signed at another time covers BADTIME. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_buf.h"
#include "common/zd_config.h"
#include "server/tsig.h"
#include "tests/fuzz/fuzz_log.h"

#define FUZZ_NOW_S 1767225600u /* 2026-01-01T00:00:00Z */
#define MSG_CAP    65535u      /* bytes; a DNS message over TCP */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct zd_tsig_key key_cfgs[] = {
        {"k1.", "hmac-sha256.", "c2VjcmV0LWtleS1vbmUtZm9yLXRoZS10ZXN0cy0xMjM0NTY="},
        {"k2.", "hmac-sha512.", "dGhpcmQta2V5LXNoYTUxMi1mb3ItdGVzdHMtYWJjZGVmZ2g="},
};
#define N_KEYS (sizeof key_cfgs / sizeof key_cfgs[0])

static void
fail(const char *what)
{
	fprintf(stderr, "tsig_fuzz: %s\n", what);
	abort();
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The message without its TSIG RR, as a server builds its answer on it:
 * QR set, ARCOUNT one less.  0 when it exceeds a DNS message. */
static int
answer_build(struct zd_buf *b, const uint8_t *data, const struct tsig_rr *t)
{
	zd_buf_reset(b);
	if (zd_buf_append(b, data, t->off) != ZD_OK)
		return 0;
	b->data[2] |= 0x80;
	uint16_t ar = get16(b->data + 10);
	if (ar == 0)
		fail("tsig_rr_parse found a TSIG RR in a message with ARCOUNT 0");
	ar--;
	b->data[10] = (uint8_t)(ar >> 8);
	b->data[11] = (uint8_t)ar;
	return 1;
}

/* As the server: verify the request, sign the answer or append the error;
 * then, as the client that sent it, verify our answer. */
static void
request_check(const struct tsig_key *k, const uint8_t *data, size_t size, const struct tsig_rr *t,
              struct zd_buf *b)
{
	struct tsig_ctx srv, cli;
	struct tsig_rr at;
	uint16_t err = 0xFFFF, cerr = 0xFFFF;

	tsig_ctx_init(&srv, k);
	if (tsig_verify(&srv, data, size, t, FUZZ_NOW_S, &err) != ZD_OK)
		return; /* FORMERR: a MAC longer than the algorithm's */
	if (!answer_build(b, data, t))
		return;
	if (err != TSIG_NOERROR && err != TSIG_BADTIME) {
		if (tsig_error_append(b, t, err, FUZZ_NOW_S) == ZD_OK &&
		    tsig_rr_parse(b->data, b->len, &at) != ZD_OK)
			fail("an appended TSIG error RR does not parse");
		return;
	}
	if (tsig_sign(&srv, b, FUZZ_NOW_S) != ZD_OK)
		return; /* ZD_ELIMIT: no room, the server answers without */
	if (tsig_rr_parse(b->data, b->len, &at) != ZD_OK)
		fail("our signed answer does not parse");
	/* The client signed the request: it chains to the request's MAC. */
	tsig_ctx_init(&cli, k);
	memcpy(cli.prior_mac, t->mac, t->mac_len);
	cli.prior_mac_len = t->mac_len;
	cli.have_prior = 1;
	cli.n_signed = 1;
	if (tsig_verify(&cli, b->data, b->len, &at, FUZZ_NOW_S, &cerr) != ZD_OK)
		fail("our signed answer is malformed");
	if (err == TSIG_NOERROR && cerr != TSIG_NOERROR) {
		fprintf(stderr, "tsig_fuzz: our answer to a good request fails with %u\n", cerr);
		abort();
	}
	if (err != TSIG_NOERROR)
		return;
	/* The next message of a TCP chain: timers only, chained to the last. */
	if (!answer_build(b, data, t) || tsig_sign(&srv, b, FUZZ_NOW_S + 1) != ZD_OK)
		return;
	if (tsig_rr_parse(b->data, b->len, &at) != ZD_OK)
		fail("our second signed answer does not parse");
	if (tsig_verify(&cli, b->data, b->len, &at, FUZZ_NOW_S, &cerr) != ZD_OK ||
	    cerr != TSIG_NOERROR)
		fail("the second message of our chain does not verify");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tsig_key *keys[N_KEYS];
	static struct zd_buf b;
	static const uint8_t our_mac[TSIG_MAC_MAX] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct tsig_rr t;
	struct tsig_ctx c;
	uint16_t err;

	if (keys[0] == NULL) {
		fuzz_log_init(ZD_LOG_DEBUG);
		for (size_t i = 0; i < N_KEYS; i++)
			if (tsig_key_new(&key_cfgs[i], &keys[i]) != ZD_OK)
				fail("a configured key does not load");
		zd_buf_init(&b, MSG_CAP);
	}
	if (tsig_rr_parse(data, size, &t) != ZD_OK) {
		fuzz_log_check();
		return 0;
	}
	if (t.off < 12 || t.off > size || t.name_len == 0 || t.name_len > TSIG_NAME_MAX ||
	    t.alg_len == 0 || t.alg_len > TSIG_NAME_MAX ||
	    (t.mac_len > 0 && (t.mac < data || t.mac + t.mac_len > data + size)) ||
	    (t.other_len > 0 && (t.other < data || t.other + t.other_len > data + size)))
		fail("tsig_rr_parse returned a TSIG RR outside the message");
	for (size_t i = 0; i < N_KEYS; i++) {
		request_check(keys[i], data, size, &t, &b);
		/* The first answer to a request we signed with this key. */
		tsig_ctx_init(&c, keys[i]);
		memcpy(c.prior_mac, our_mac, sizeof our_mac);
		c.prior_mac_len = sizeof our_mac;
		c.have_prior = 1;
		c.n_signed = 1;
		(void)tsig_verify(&c, data, size, &t, FUZZ_NOW_S, &err);
		/* A later message of a transfer: timers only. */
		c.n_verified = 1;
		(void)tsig_verify(&c, data, size, &t, FUZZ_NOW_S, &err);
	}
	fuzz_log_check();
	return 0;
}
