/* hsm/wrapped_text.c -- the text form of a backup file (hsm_wrapped_encode,
 * hsm_wrapped_decode); no PKCS#11 here, so the fuzz target links only this
 * and dnskey.c. */
#include <stdio.h>
#include <string.h>

#include "common/zd_parse.h"
#include "common/zd_zonemd.h"
#include "hsm/hsm.h"

static const char magic[] = "zonedist-wrapped-key 1";

static int
hex_put(char **p, char *end, const uint8_t *b, size_t n)
{
	if ((size_t)(end - *p) < 2 * n + 2)
		return 0;
	zd_hex_encode(b, n, *p); /* and a NUL, overwritten by the newline */
	*p += 2 * n;
	*(*p)++ = '\n';
	return 1;
}

static int
str_put(char **p, char *end, const char *s)
{
	size_t n = strlen(s);
	if ((size_t)(end - *p) < n + 1)
		return 0;
	memcpy(*p, s, n);
	*p += n;
	return 1;
}

zd_err
hsm_wrapped_encode(const struct hsm_wrapped *w, char *out, size_t cap, size_t *len)
{
	char *p = out, *end = out + cap, alg[32];
	if (strchr(w->label, '\n') != NULL)
		return ZD_EMALFORMED;
	snprintf(alg, sizeof alg, "algorithm %u\n", w->alg);
	int ok = str_put(&p, end, magic) && str_put(&p, end, "\nid ") &&
	         hex_put(&p, end, w->id, w->id_len) && str_put(&p, end, "label ") &&
	         str_put(&p, end, w->label) && str_put(&p, end, "\n") && str_put(&p, end, alg) &&
	         str_put(&p, end, "public-key ") && hex_put(&p, end, w->pubkey, w->pubkey_len) &&
	         str_put(&p, end, "wrapped ") && hex_put(&p, end, w->blob, w->blob_len);
	if (!ok)
		return ZD_ELIMIT;
	*len = (size_t)(p - out);
	return ZD_OK;
}

static int
hex_get(const char *s, size_t n, uint8_t *out, size_t cap, size_t *len)
{
	return zd_hex_decode(s, n, out, cap, len) == ZD_OK;
}

zd_err
hsm_wrapped_decode(const char *text, size_t len, struct hsm_wrapped *out, char *err, size_t errlen)
{
	enum { F_ID = 1, F_LABEL = 2, F_ALG = 4, F_PUB = 8, F_WRAPPED = 16, F_ALL = 31 };
	unsigned seen = 0, lineno = 0;
	size_t pos = 0;

	memset(out, 0, sizeof *out);
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		pos += n + (nl != NULL);
		lineno++;
		if (memchr(line, '\0', n) != NULL) {
			snprintf(err, errlen, "line %u: a NUL byte", lineno);
			return ZD_EMALFORMED;
		}
		if (lineno == 1) {
			if (n != sizeof magic - 1 || memcmp(line, magic, n) != 0) {
				snprintf(err, errlen, "line 1: not \"%s\"", magic);
				return ZD_EMALFORMED;
			}
			continue;
		}
		if (n == 0)
			continue;
		const char *sp = memchr(line, ' ', n);
		if (sp == NULL) {
			snprintf(err, errlen, "line %u: no value", lineno);
			return ZD_EMALFORMED;
		}
		size_t klen = (size_t)(sp - line);
		const char *v = sp + 1;
		size_t vlen = n - klen - 1;
		unsigned f = 0;
		int ok = 0;
		if (klen == 2 && memcmp(line, "id", 2) == 0) {
			f = F_ID;
			ok = hex_get(v, vlen, out->id, sizeof out->id, &out->id_len);
		} else if (klen == 5 && memcmp(line, "label", 5) == 0) {
			f = F_LABEL;
			ok = vlen > 0 && vlen <= HSM_LABEL_MAX;
			if (ok)
				memcpy(out->label, v, vlen);
		} else if (klen == 9 && memcmp(line, "algorithm", 9) == 0) {
			f = F_ALG;
			unsigned a = 0;
			ok = vlen > 0 && vlen <= 3;
			for (size_t i = 0; ok && i < vlen; i++) {
				ok = v[i] >= '0' && v[i] <= '9';
				a = a * 10 + (unsigned)(v[i] - '0');
			}
			ok = ok && hsm_alg_name((uint8_t)a) != NULL && a <= 255;
			out->alg = (uint8_t)a;
		} else if (klen == 10 && memcmp(line, "public-key", 10) == 0) {
			f = F_PUB;
			ok = hex_get(v, vlen, out->pubkey, sizeof out->pubkey, &out->pubkey_len);
		} else if (klen == 7 && memcmp(line, "wrapped", 7) == 0) {
			f = F_WRAPPED;
			ok = hex_get(v, vlen, out->blob, sizeof out->blob, &out->blob_len);
		} else {
			snprintf(err, errlen, "line %u: unknown field '%.*s'", lineno,
			         (int)(klen > 32 ? 32 : klen), line);
			return ZD_EMALFORMED;
		}
		if (!ok || (seen & f)) {
			snprintf(err, errlen, "line %u: field '%.*s' %s", lineno, (int)klen, line,
			         ok ? "given twice" : "has a bad value");
			return ZD_EMALFORMED;
		}
		seen |= f;
	}
	if (seen != F_ALL) {
		snprintf(err, errlen, "%s", lineno == 0 ? "empty" : "a field is missing");
		return ZD_EMALFORMED;
	}
	if (hsm_pubkey_check(out->alg, out->pubkey, out->pubkey_len) != ZD_OK) {
		snprintf(err, errlen, "the public key is not one of algorithm %u", out->alg);
		return ZD_EMALFORMED;
	}
	return ZD_OK;
}
