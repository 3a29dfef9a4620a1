/* server/tsig.c -- TSIG over wire-form messages (see tsig.h). */
#include "server/tsig.h"

#include <ctype.h>
#include <ldns/ldns.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#define TYPE_TSIG   250
#define CLASS_ANY   255
#define HEADER_SIZE 12

struct tsig_key {
	char *name_text;             /* owned; "k1." */
	uint8_t name[TSIG_NAME_MAX]; /* wire form, lower case */
	size_t name_len;
	uint8_t alg[TSIG_NAME_MAX];
	size_t alg_len;
	const char *digest; /* OpenSSL digest name; static */
	size_t mac_len;     /* full MAC length of the algorithm */
	EVP_MAC *mac;       /* owned; EVP_MAC_free */
	uint8_t *secret;    /* owned; wiped on free */
	size_t secret_len;
};

static const struct {
	const char *name;
	const char *digest;
	size_t mac_len;
} algorithms[] = {
        {"hmac-sha1.", "SHA1", 20},
        {"hmac-sha256.", "SHA256", 32},
        {"hmac-sha384.", "SHA384", 48},
        {"hmac-sha512.", "SHA512", 64},
};

/* Presentation name -> lower-case wire form. */
static zd_err
name_to_wire(const char *text, uint8_t *out, size_t *len_out)
{
	ldns_rdf *r = NULL;
	if (ldns_str2rdf_dname(&r, text) != LDNS_STATUS_OK || r == NULL)
		return ZD_EMALFORMED;
	size_t n = ldns_rdf_size(r);
	if (n > TSIG_NAME_MAX) {
		ldns_rdf_deep_free(r);
		return ZD_EMALFORMED;
	}
	memcpy(out, ldns_rdf_data(r), n);
	ldns_rdf_deep_free(r);
	/* Label length octets are < 64, so tolower() leaves them alone. */
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)tolower(out[i]);
	*len_out = n;
	return ZD_OK;
}

zd_err
tsig_key_new(const struct zd_tsig_key *cfg, struct tsig_key **out)
{
	struct tsig_key *k = NULL;
	zd_err e = ZD_EMALFORMED;
	size_t i;

	if (cfg == NULL || cfg->name == NULL || cfg->secret == NULL)
		return ZD_EMALFORMED;
	const char *alg = cfg->algorithm ? cfg->algorithm : "hmac-sha256.";
	for (i = 0; i < sizeof algorithms / sizeof algorithms[0]; i++)
		if (strcasecmp(alg, algorithms[i].name) == 0)
			break;
	if (i == sizeof algorithms / sizeof algorithms[0])
		return ZD_EMALFORMED;
	if ((k = calloc(1, sizeof *k)) == NULL)
		return ZD_ENOMEM;
	k->digest = algorithms[i].digest;
	k->mac_len = algorithms[i].mac_len;
	if ((e = name_to_wire(cfg->name, k->name, &k->name_len)) != ZD_OK)
		goto out;
	if ((e = name_to_wire(algorithms[i].name, k->alg, &k->alg_len)) != ZD_OK)
		goto out;
	if ((k->name_text = strdup(cfg->name)) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	for (char *p = k->name_text; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	/* Base64 (RFC 4648) without whitespace, as BIND and NSD write it. */
	size_t slen = strlen(cfg->secret);
	if (slen == 0 || slen % 4 != 0 || slen > 4096) {
		e = ZD_EMALFORMED;
		goto out;
	}
	size_t pad = cfg->secret[slen - 1] == '=' ? (cfg->secret[slen - 2] == '=' ? 2 : 1) : 0;
	if ((k->secret = malloc(slen / 4 * 3)) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	k->secret_len = slen / 4 * 3; /* all of it is wiped on failure */
	int n = EVP_DecodeBlock(k->secret, (const unsigned char *)cfg->secret, (int)slen);
	if (n <= 0 || (size_t)n <= pad || memchr(cfg->secret, '=', slen - pad) != NULL) {
		e = ZD_EMALFORMED;
		goto out;
	}
	n -= (int)pad;
	k->secret_len = (size_t)n;
	if ((k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	*out = k;
	k = NULL;
	e = ZD_OK;
out:
	tsig_key_free(k);
	return e;
}

void
tsig_key_free(struct tsig_key *k)
{
	if (k == NULL)
		return;
	if (k->secret != NULL) {
		OPENSSL_cleanse(k->secret, k->secret_len);
		free(k->secret);
	}
	EVP_MAC_free(k->mac);
	free(k->name_text);
	free(k);
}

const char *
tsig_key_name_get(const struct tsig_key *k)
{
	return k->name_text;
}

size_t
tsig_space_get(const struct tsig_key *k)
{
	/* owner, type, class, ttl, rdlength; algorithm, time, fudge, MAC size,
	 * MAC, original id, error, other length, other (BADTIME: 6) */
	return k->name_len + 10 + k->alg_len + 6 + 2 + 2 + k->mac_len + 2 + 2 + 2 + 6;
}

int
tsig_key_is(const struct tsig_key *k, const uint8_t *name, size_t name_len)
{
	return name_len == k->name_len && memcmp(name, k->name, name_len) == 0;
}

/* --- parsing ------------------------------------------------------------- */

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

static void
put48(uint8_t *p, uint64_t v)
{
	for (int i = 5; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* Skip a possibly compressed name at *pos. */
static zd_err
name_skip(const uint8_t *w, size_t len, size_t *pos)
{
	size_t p = *pos;
	for (;;) {
		if (p >= len)
			return ZD_EMALFORMED;
		uint8_t b = w[p];
		if (b == 0) {
			*pos = p + 1;
			return ZD_OK;
		}
		if ((b & 0xC0) == 0xC0) {
			if (p + 2 > len)
				return ZD_EMALFORMED;
			*pos = p + 2;
			return ZD_OK;
		}
		if ((b & 0xC0) != 0)
			return ZD_EMALFORMED; /* extended label types (RFC 6891 s5) */
		p += 1u + b;
	}
}

/* Read a possibly compressed name at *pos into out (uncompressed, lower case). */
static zd_err
name_read(const uint8_t *w, size_t len, size_t *pos, uint8_t *out, size_t *out_len)
{
	size_t p = *pos, n = 0, end = 0;
	int jumped = 0, hops = 0;
	for (;;) {
		if (p >= len)
			return ZD_EMALFORMED;
		uint8_t b = w[p];
		if ((b & 0xC0) == 0xC0) {
			if (p + 2 > len || ++hops > 127)
				return ZD_EMALFORMED;
			size_t target = (size_t)get16(w + p) & 0x3FFF;
			if (target >= p)
				return ZD_EMALFORMED; /* only backwards: no loops */
			if (!jumped)
				end = p + 2;
			jumped = 1;
			p = target;
			continue;
		}
		if ((b & 0xC0) != 0 || p + 1u + b > len || n + 1u + b > TSIG_NAME_MAX)
			return ZD_EMALFORMED;
		out[n++] = b;
		for (size_t i = 0; i < b; i++)
			out[n++] = (uint8_t)tolower(w[p + 1 + i]);
		p += 1u + b;
		if (b == 0)
			break;
	}
	*out_len = n;
	*pos = jumped ? end : p;
	return ZD_OK;
}

zd_err
tsig_rr_parse(const uint8_t *wire, size_t len, struct tsig_rr *out)
{
	struct tsig_rr t;
	size_t pos = HEADER_SIZE;
	zd_err e;

	if (len < HEADER_SIZE)
		return ZD_EMALFORMED;
	uint16_t qd = get16(wire + 4), an = get16(wire + 6), ns = get16(wire + 8),
	         ar = get16(wire + 10);
	for (uint16_t i = 0; i < qd; i++) {
		if ((e = name_skip(wire, len, &pos)) != ZD_OK)
			return e;
		if (len - pos < 4)
			return ZD_EMALFORMED;
		pos += 4;
	}
	uint32_t total = (uint32_t)an + ns + ar;
	if (ar == 0)
		return ZD_ENOTFOUND;
	for (uint32_t i = 0; i < total; i++) {
		size_t start = pos;
		if ((e = name_skip(wire, len, &pos)) != ZD_OK)
			return e;
		if (len - pos < 10)
			return ZD_EMALFORMED;
		uint16_t type = get16(wire + pos);
		uint16_t rdlen = get16(wire + pos + 8);
		if (len - pos - 10 < rdlen)
			return ZD_EMALFORMED;
		pos += 10u + rdlen;
		if (i + 1 < total) {
			if (type == TYPE_TSIG)
				return ZD_EMALFORMED; /* RFC 8945 s5.2: TSIG must be last */
			continue;
		}
		if (type != TYPE_TSIG)
			return ZD_ENOTFOUND;
		if (pos != len)
			return ZD_EMALFORMED; /* bytes after the TSIG RR */
		/* Parse it. */
		memset(&t, 0, sizeof t);
		t.off = start;
		size_t p = start;
		if ((e = name_read(wire, len, &p, t.name, &t.name_len)) != ZD_OK)
			return e;
		if (get16(wire + p + 2) != CLASS_ANY || get16(wire + p + 4) != 0 ||
		    get16(wire + p + 6) != 0)
			return ZD_EMALFORMED; /* RFC 8945 s4.2: class ANY, TTL 0 */
		size_t rd = p + 10, rdend = rd + rdlen;
		if ((e = name_read(wire, rdend, &rd, t.alg, &t.alg_len)) != ZD_OK)
			return e;
		if (rdend - rd < 10)
			return ZD_EMALFORMED;
		t.time_signed = 0;
		for (int b = 0; b < 6; b++)
			t.time_signed = t.time_signed << 8 | wire[rd + b];
		t.fudge = get16(wire + rd + 6);
		t.mac_len = get16(wire + rd + 8);
		rd += 10;
		if (rdend - rd < (size_t)t.mac_len + 6)
			return ZD_EMALFORMED;
		t.mac = wire + rd;
		rd += t.mac_len;
		t.orig_id = get16(wire + rd);
		t.error = get16(wire + rd + 2);
		t.other_len = get16(wire + rd + 4);
		rd += 6;
		if (rdend - rd != t.other_len)
			return ZD_EMALFORMED;
		t.other = wire + rd;
		*out = t;
		return ZD_OK;
	}
	return ZD_ENOTFOUND;
}

/* --- MAC ----------------------------------------------------------------- */

struct part {
	const void *p;
	size_t n;
};

static zd_err
hmac(const struct tsig_key *k, const struct part *parts, size_t n_parts, uint8_t *out,
     size_t *out_len)
{
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(k->mac);
	OSSL_PARAM params[2];
	size_t len = 0;
	zd_err e = ZD_EBUG;

	if (ctx == NULL)
		return ZD_ENOMEM;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)k->digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, k->secret, k->secret_len, params))
		goto out;
	for (size_t i = 0; i < n_parts; i++)
		if (parts[i].n > 0 && !EVP_MAC_update(ctx, parts[i].p, parts[i].n))
			goto out;
	if (!EVP_MAC_final(ctx, out, &len, TSIG_MAC_MAX) || len != k->mac_len)
		goto out;
	*out_len = len;
	e = ZD_OK;
out:
	EVP_MAC_CTX_free(ctx);
	return e;
}

/* The TSIG variables of RFC 8945 s4.3.3, or the timers only (s5.3.1). */
struct vars {
	uint64_t time_signed;
	uint16_t fudge;
	uint16_t error;
	const uint8_t *other;
	uint16_t other_len;
};

/* MAC over [prior MAC] + message (header patched: id, arcount) + variables. */
static zd_err
digest(const struct tsig_key *k, const struct tsig_ctx *c, const uint8_t *msg, size_t msg_len,
       uint16_t id, uint16_t arcount, int timers_only, const struct vars *v, uint8_t *out,
       size_t *out_len)
{
	uint8_t prior_len[2], hdr[HEADER_SIZE];
	uint8_t head[2 + 4]; /* class, ttl */
	uint8_t tail[6 + 2 + 2 + 2];
	struct part parts[9];
	size_t n = 0;

	if (msg_len < HEADER_SIZE)
		return ZD_EBUG;
	if (c->have_prior) {
		put16(prior_len, c->prior_mac_len);
		parts[n++] = (struct part){prior_len, 2};
		parts[n++] = (struct part){c->prior_mac, c->prior_mac_len};
	}
	memcpy(hdr, msg, HEADER_SIZE);
	put16(hdr, id);
	put16(hdr + 10, arcount);
	parts[n++] = (struct part){hdr, HEADER_SIZE};
	parts[n++] = (struct part){msg + HEADER_SIZE, msg_len - HEADER_SIZE};
	put48(tail, v->time_signed);
	put16(tail + 6, v->fudge);
	if (timers_only) {
		parts[n++] = (struct part){tail, 8};
	} else {
		put16(head, CLASS_ANY);
		memset(head + 2, 0, 4);
		put16(tail + 8, v->error);
		put16(tail + 10, v->other_len);
		parts[n++] = (struct part){k->name, k->name_len};
		parts[n++] = (struct part){head, sizeof head};
		parts[n++] = (struct part){k->alg, k->alg_len};
		parts[n++] = (struct part){tail, sizeof tail};
		parts[n++] = (struct part){v->other, v->other_len};
	}
	return hmac(k, parts, n, out, out_len);
}

void
tsig_ctx_init(struct tsig_ctx *c, const struct tsig_key *k)
{
	memset(c, 0, sizeof *c);
	c->key = k;
}

zd_err
tsig_verify(struct tsig_ctx *c, const uint8_t *wire, size_t len, const struct tsig_rr *t,
            uint64_t now_s, uint16_t *error_out)
{
	const struct tsig_key *k = c->key;
	uint8_t mac[TSIG_MAC_MAX];
	size_t mac_len;
	zd_err e;

	if (t->off < HEADER_SIZE || t->off > len)
		return ZD_EBUG;
	if (!tsig_key_is(k, t->name, t->name_len) || t->alg_len != k->alg_len ||
	    memcmp(t->alg, k->alg, k->alg_len) != 0) {
		*error_out = TSIG_BADKEY;
		return ZD_OK;
	}
	if (t->error != TSIG_NOERROR && c->n_signed > 0) {
		*error_out = t->error; /* the peer refused our request */
		return ZD_OK;
	}
	if (t->mac_len > k->mac_len)
		return ZD_EMALFORMED;
	if (t->mac_len < k->mac_len) {
		*error_out = TSIG_BADSIG; /* truncated MACs are not accepted */
		return ZD_OK;
	}
	uint16_t arcount = get16(wire + 10);
	if (arcount == 0)
		return ZD_EBUG;
	struct vars v = {t->time_signed, t->fudge, t->error, t->other, t->other_len};
	/* A request, or the first answer to ours: all variables; later
	 * messages of a chain: timers only (RFC 8945 s5.3.1). */
	int timers_only = c->n_verified > 0;
	if ((e = digest(k, c, wire, t->off, t->orig_id, (uint16_t)(arcount - 1), timers_only, &v,
	                mac, &mac_len)) != ZD_OK)
		return e;
	if (CRYPTO_memcmp(mac, t->mac, mac_len) != 0) {
		*error_out = TSIG_BADSIG;
		return ZD_OK;
	}
	memcpy(c->prior_mac, t->mac, mac_len);
	c->prior_mac_len = (uint16_t)mac_len;
	c->have_prior = 1;
	c->n_verified++;
	c->req_time = t->time_signed;
	/* RFC 8945 s5.2.3: the time check comes after the MAC check. */
	uint64_t lo = t->time_signed > t->fudge ? t->time_signed - t->fudge : 0;
	if (now_s < lo || now_s > t->time_signed + t->fudge) {
		c->error = TSIG_BADTIME;
		*error_out = TSIG_BADTIME;
		return ZD_OK;
	}
	*error_out = TSIG_NOERROR;
	return ZD_OK;
}

/* Append a TSIG RR; the caller reserved room so this cannot fail midway. */
static void
rr_append(struct zd_buf *msg, const uint8_t *name, size_t name_len, const uint8_t *alg,
          size_t alg_len, const struct vars *v, const uint8_t *mac, uint16_t mac_len,
          uint16_t orig_id)
{
	uint8_t fixed[10], tail[16];
	size_t rdlen = alg_len + 10 + mac_len + 6 + v->other_len;

	put16(fixed, TYPE_TSIG);
	put16(fixed + 2, CLASS_ANY);
	memset(fixed + 4, 0, 4);
	put16(fixed + 8, (uint16_t)rdlen);
	(void)zd_buf_append(msg, name, name_len);
	(void)zd_buf_append(msg, fixed, sizeof fixed);
	(void)zd_buf_append(msg, alg, alg_len);
	put48(tail, v->time_signed);
	put16(tail + 6, v->fudge);
	put16(tail + 8, mac_len);
	(void)zd_buf_append(msg, tail, 10);
	(void)zd_buf_append(msg, mac, mac_len);
	put16(tail, orig_id);
	put16(tail + 2, v->error);
	put16(tail + 4, v->other_len);
	(void)zd_buf_append(msg, tail, 6);
	(void)zd_buf_append(msg, v->other, v->other_len);
	put16(msg->data + 10, (uint16_t)(get16(msg->data + 10) + 1));
}

zd_err
tsig_sign(struct tsig_ctx *c, struct zd_buf *msg, uint64_t now_s)
{
	const struct tsig_key *k = c->key;
	uint8_t mac[TSIG_MAC_MAX], other[6];
	size_t mac_len;
	zd_err e;

	if (msg->len < HEADER_SIZE)
		return ZD_EBUG;
	if (get16(msg->data + 10) == 0xFFFF)
		return ZD_ELIMIT;
	if (msg->len + tsig_space_get(k) > msg->cap)
		return ZD_ELIMIT;
	if ((e = zd_buf_reserve(msg, tsig_space_get(k))) != ZD_OK)
		return e;
	struct vars v = {now_s, TSIG_FUDGE_S, TSIG_NOERROR, NULL, 0};
	if (c->error == TSIG_BADTIME) {
		/* RFC 8945 s5.2.3: signed, the request's time, ours in Other Data. */
		v.time_signed = c->req_time;
		v.error = TSIG_BADTIME;
		put48(other, now_s);
		v.other = other;
		v.other_len = 6;
	}
	uint16_t id = get16(msg->data);
	int timers_only = c->n_signed > 0;
	if ((e = digest(k, c, msg->data, msg->len, id, get16(msg->data + 10), timers_only, &v, mac,
	                &mac_len)) != ZD_OK)
		return e;
	rr_append(msg, k->name, k->name_len, k->alg, k->alg_len, &v, mac, (uint16_t)mac_len, id);
	memcpy(c->prior_mac, mac, mac_len);
	c->prior_mac_len = (uint16_t)mac_len;
	c->have_prior = 1;
	c->n_signed++;
	return ZD_OK;
}

zd_err
tsig_error_append(struct zd_buf *msg, const struct tsig_rr *req, uint16_t error, uint64_t now_s)
{
	zd_err e;
	size_t need = req->name_len + 10 + req->alg_len + 16;

	if (msg->len < HEADER_SIZE)
		return ZD_EBUG;
	if (get16(msg->data + 10) == 0xFFFF || msg->len + need > msg->cap)
		return ZD_ELIMIT;
	if ((e = zd_buf_reserve(msg, need)) != ZD_OK)
		return e;
	struct vars v = {now_s, req->fudge, error, NULL, 0};
	rr_append(msg, req->name, req->name_len, req->alg, req->alg_len, &v, NULL, 0,
	          get16(msg->data));
	return ZD_OK;
}
