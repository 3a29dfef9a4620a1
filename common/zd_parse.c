#include "zd_parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

zd_err
zd_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return ZD_EMALFORMED;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return ZD_EMALFORMED;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return ZD_EMALFORMED;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return ZD_EMALFORMED;
	*out = v;
	return ZD_OK;
}

zd_err
zd_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	zd_err e = zd_parse_u64(s, min, max, &v);
	if (e == ZD_OK)
		*out = (uint32_t)v;
	return e;
}

zd_err
zd_parse_sockaddr(const char *s, uint16_t default_port, struct sockaddr_storage *out,
                  socklen_t *len_out)
{
	char host[64];
	const char *port_s = NULL;
	size_t hlen;
	uint32_t port = default_port;
	struct sockaddr_storage ss;

	if (s == NULL)
		return ZD_EMALFORMED;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL)
			return ZD_EMALFORMED;
		hlen = (size_t)(close - s - 1);
		if (hlen >= sizeof host)
			return ZD_EMALFORMED;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (close[1] == ':' || close[1] == '@' || close[1] == '#')
			port_s = close + 2;
		else if (close[1] != '\0')
			return ZD_EMALFORMED;
	} else {
		const char *sep = strpbrk(s, "@#");
		hlen = sep ? (size_t)(sep - s) : strlen(s);
		if (hlen >= sizeof host)
			return ZD_EMALFORMED;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		if (sep)
			port_s = sep + 1;
	}
	if (port_s && zd_parse_u32(port_s, 1, 65535, &port) != ZD_OK)
		return ZD_EMALFORMED;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*len_out = sizeof *v4;
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*len_out = sizeof *v6;
	} else {
		return ZD_EMALFORMED;
	}
	*out = ss;
	return ZD_OK;
}

zd_err
zd_parse_prefix(const char *s, struct zd_prefix *out)
{
	char host[64];
	const char *slash;
	size_t hlen;
	uint32_t bits;
	struct zd_prefix p;

	if (s == NULL)
		return ZD_EMALFORMED;
	slash = strchr(s, '/');
	hlen = slash ? (size_t)(slash - s) : strlen(s);
	if (hlen >= sizeof host)
		return ZD_EMALFORMED;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(&p, 0, sizeof p);
	if (inet_pton(AF_INET, host, p.addr) == 1)
		p.family = AF_INET;
	else if (inet_pton(AF_INET6, host, p.addr) == 1)
		p.family = AF_INET6;
	else
		return ZD_EMALFORMED;
	uint32_t maxbits = p.family == AF_INET ? 32 : 128;
	bits = maxbits;
	if (slash && zd_parse_u32(slash + 1, 0, maxbits, &bits) != ZD_OK)
		return ZD_EMALFORMED;
	p.len = (uint8_t)bits;
	*out = p;
	return ZD_OK;
}

int
zd_prefix_match(const struct zd_prefix *p, const struct sockaddr *sa)
{
	const uint8_t *a;
	uint8_t mapped[4];

	if (sa->sa_family == AF_INET && p->family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6 && p->family == AF_INET6) {
		a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	} else if (sa->sa_family == AF_INET6 && p->family == AF_INET &&
	           IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
		memcpy(mapped,
		       ((const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr) + 12, 4);
		a = mapped;
	} else {
		return 0;
	}
	unsigned full = p->len / 8, rest = p->len % 8;
	if (memcmp(a, p->addr, full) != 0)
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((a[full] & mask) != (p->addr[full] & mask))
			return 0;
	}
	return 1;
}

void
zd_sockaddr_str(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
		snprintf(out, outlen, "%s#%u", host, ntohs(v4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
		snprintf(out, outlen, "%s#%u", host, ntohs(v6->sin6_port));
	} else {
		snprintf(out, outlen, "?");
	}
}

zd_err
zd_token_read(const char *path, size_t min_len, char **out, char *why, size_t whylen)
{
	char buf[ZD_TOKEN_MAX + 2];
	FILE *f = fopen(path, "r");
	zd_err e = ZD_OK;

	*out = NULL;
	if (f == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return ZD_EIO;
	}
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		snprintf(why, whylen, "%s: cannot be read", path);
		return ZD_EIO;
	}
	buf[n] = '\0';
	char *s = buf, *end = buf + n;
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		end--;
	*end = '\0';
	size_t len = (size_t)(end - s);
	for (const char *p = s; e == ZD_OK && *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			e = ZD_EMALFORMED;
	if (e != ZD_OK || len < min_len || len > ZD_TOKEN_MAX) {
		snprintf(why, whylen,
		         "%s must hold one token of %zu to %d printable characters (no spaces)",
		         path, min_len, ZD_TOKEN_MAX);
		e = ZD_EMALFORMED;
	} else if ((*out = strdup(s)) == NULL) {
		e = ZD_ENOMEM;
	}
	explicit_bzero(buf, sizeof buf);
	return e;
}

static int
hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

zd_err
zd_hex_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *len)
{
	if (n == 0 || n % 2 != 0)
		return ZD_EMALFORMED;
	if (n / 2 > cap)
		return ZD_ELIMIT;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hex_nibble(s[i]), lo = hex_nibble(s[i + 1]);
		if (hi < 0 || lo < 0)
			return ZD_EMALFORMED;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return ZD_OK;
}

/* RFC 4343: DNS names compare with ASCII letters folded to lower case. */
static uint8_t
ascii_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

zd_err
zd_name_key(const uint8_t *wire, size_t wirelen, uint8_t *key, uint16_t *keylen)
{
	const uint8_t *labels[128];
	size_t n = 0, pos = 0, k = 0;

	while (pos < wirelen && wire[pos] != 0) {
		uint8_t ll = wire[pos];
		if (ll > 63 || pos + 1 + ll > wirelen || n == 128)
			return ZD_EMALFORMED;
		labels[n++] = wire + pos;
		pos += 1u + ll;
	}
	if (pos >= wirelen || pos + 1 > 255)
		return ZD_EMALFORMED;
	while (n-- > 0) {
		const uint8_t *l = labels[n];
		for (uint8_t i = 1; i <= l[0]; i++) {
			uint8_t c = ascii_lower(l[i]);
			if (c <= 1) {
				key[k++] = 1;
				key[k++] = (uint8_t)(c + 1);
			} else {
				key[k++] = c;
			}
		}
		key[k++] = 0;
	}
	*keylen = (uint16_t)k;
	return ZD_OK;
}

int
zd_name_is_below(const uint8_t *name, size_t len, const uint8_t *parent, size_t plen)
{
	size_t pos = 0;

	if (plen == 0 || len <= plen)
		return 0;
	/* the labels of name up to where parent's octets would start */
	while (pos < len - plen) {
		if (name[pos] == 0 || name[pos] > 63)
			return 0;
		pos += 1u + name[pos];
	}
	if (pos != len - plen)
		return 0; /* parent's octets do not start at a label */
	/* parent must itself be a name, ending at its root label */
	size_t q = 0;
	while (q < plen && parent[q] != 0) {
		if (parent[q] > 63 || q + 1 + parent[q] >= plen)
			return 0;
		q += 1u + parent[q];
	}
	if (q != plen - 1)
		return 0;
	for (size_t i = 0; i < plen; i++)
		if (ascii_lower(name[pos + i]) != ascii_lower(parent[i]))
			return 0;
	return 1;
}
