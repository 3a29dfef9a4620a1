/* hsm/dnskey.c -- DNSKEY RDATA, RSA public key field, key tags. */
#include "hsm/dnskey.h"

#include <string.h>

const char *
hsm_alg_name(uint8_t alg)
{
	switch (alg) {
	case HSM_ALG_RSASHA256:
		return "RSASHA256";
	case HSM_ALG_ECDSAP256SHA256:
		return "ECDSAP256SHA256";
	case HSM_ALG_ED25519:
		return "ED25519";
	default:
		return NULL;
	}
}

static size_t
bits_of(const uint8_t *p, size_t len)
{
	/* p[0] != 0 */
	size_t bits = len * 8;
	for (uint8_t top = p[0]; !(top & 0x80); top <<= 1)
		bits--;
	return bits;
}

static void
skip_zeros(const uint8_t **p, size_t *len)
{
	while (*len > 0 && (*p)[0] == 0) {
		(*p)++;
		(*len)--;
	}
}

zd_err
hsm_rsa_pubkey_encode(const uint8_t *e, size_t e_len, const uint8_t *n, size_t n_len, uint8_t *out,
                      size_t cap, size_t *len)
{
	skip_zeros(&e, &e_len);
	skip_zeros(&n, &n_len);
	if (e_len == 0 || n_len == 0 || e_len > 0xffff)
		return ZD_EMALFORMED;
	size_t bits = bits_of(n, n_len);
	if (bits < HSM_RSA_BITS_MIN || bits > HSM_RSA_BITS_MAX)
		return ZD_EMALFORMED;
	/* RFC 3110 s2: one length byte, or zero and two length bytes. */
	size_t hdr = e_len <= 255 ? 1 : 3;
	if (cap < hdr + e_len + n_len)
		return ZD_ELIMIT;
	if (hdr == 1) {
		out[0] = (uint8_t)e_len;
	} else {
		out[0] = 0;
		out[1] = (uint8_t)(e_len >> 8);
		out[2] = (uint8_t)e_len;
	}
	memcpy(out + hdr, e, e_len);
	memcpy(out + hdr + e_len, n, n_len);
	*len = hdr + e_len + n_len;
	return ZD_OK;
}

zd_err
hsm_rsa_pubkey_split(const uint8_t *pub, size_t len, const uint8_t **e, size_t *e_len,
                     const uint8_t **n, size_t *n_len)
{
	size_t hdr;
	if (len < 1)
		return ZD_EMALFORMED;
	/* RFC 3110 s2: one length byte, or zero and two length bytes */
	if (pub[0] != 0) {
		hdr = 1;
		*e_len = pub[0];
	} else {
		if (len < 3)
			return ZD_EMALFORMED;
		hdr = 3;
		*e_len = (size_t)pub[1] << 8 | pub[2];
	}
	if (*e_len == 0 || len - hdr <= *e_len)
		return ZD_EMALFORMED;
	*e = pub + hdr;
	*n = pub + hdr + *e_len;
	*n_len = len - hdr - *e_len;
	/* no leading zero octets in the modulus or exponent */
	if ((*n)[0] == 0 || (*e)[0] == 0)
		return ZD_EMALFORMED;
	return ZD_OK;
}

zd_err
hsm_pubkey_check(uint8_t alg, const uint8_t *pub, size_t len)
{
	switch (alg) {
	case HSM_ALG_ECDSAP256SHA256:
		return len == 64 ? ZD_OK : ZD_EMALFORMED;
	case HSM_ALG_ED25519:
		return len == 32 ? ZD_OK : ZD_EMALFORMED;
	case HSM_ALG_RSASHA256: {
		const uint8_t *e, *n;
		size_t e_len, n_len;
		if (hsm_rsa_pubkey_split(pub, len, &e, &e_len, &n, &n_len) != ZD_OK)
			return ZD_EMALFORMED;
		size_t bits = bits_of(n, n_len);
		if (bits < HSM_RSA_BITS_MIN || bits > HSM_RSA_BITS_MAX)
			return ZD_EMALFORMED;
		return ZD_OK;
	}
	default:
		return ZD_EMALFORMED;
	}
}

zd_err
hsm_dnskey_rdata(uint16_t flags, uint8_t alg, const uint8_t *pub, size_t pub_len, uint8_t *out,
                 size_t cap, size_t *len)
{
	zd_err e = hsm_pubkey_check(alg, pub, pub_len);
	if (e != ZD_OK)
		return e;
	if (cap < 4 || cap - 4 < pub_len)
		return ZD_ELIMIT;
	out[0] = (uint8_t)(flags >> 8);
	out[1] = (uint8_t)flags;
	out[2] = HSM_DNSKEY_PROTOCOL;
	out[3] = alg;
	memcpy(out + 4, pub, pub_len);
	*len = 4 + pub_len;
	return ZD_OK;
}

uint16_t
hsm_keytag_get(const uint8_t *rdata, size_t len)
{
	/* RFC 4034 App. B: sum the RDATA as 16-bit big-endian words (odd
	 * octets high), fold the carry once, keep the low 16 bits. */
	uint32_t ac = 0;
	for (size_t i = 0; i < len; i++)
		ac += (i & 1) ? rdata[i] : (uint32_t)rdata[i] << 8;
	ac += (ac >> 16) & 0xffff;
	return (uint16_t)(ac & 0xffff);
}

zd_err
hsm_keytag_check(uint16_t tag, const uint16_t *used, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (used[i] == tag)
			return ZD_ELIMIT;
	return ZD_OK;
}
