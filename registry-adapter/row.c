/* registry-adapter/row.c -- validation of registry rows (see row.h).
 *
 * ldns builds the record, but its text parser is lenient in ways a registry
 * must not get away with: numbers wrap (MX 65536 becomes 0), odd hex digits
 * are padded (DS "abc" becomes abc0), relative names are taken from the root,
 * a quoted name keeps its quotes, ';' starts a comment and parentheses group
 * lines.  So every field is checked here first and ldns only sees text that
 * already passed: the owner, TTL and type never reach ldns' RR parser at all,
 * and the rdata is tokenised strictly and its leading fixed fields checked
 * against the type's descriptor. */
#include "registry-adapter/row.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/zd_buf.h"
#include "common/zd_parse.h"

#define TTL_MAX 2147483647u /* RFC 2181 s8 */

static const char R_NAME_LABEL[] = "label longer than 63 octets";
static const char R_NAME_LONG[] = "name longer than 255 octets";
static const char R_RDATA[] = "rdata does not parse";

struct managed {
	uint16_t type;
	const char *reason;
};

/* Types zonedist makes itself: the apex SOA, the DNSSEC records it signs and
 * chains with, and the zone digest. */
static const struct managed managed_types[] = {
        {LDNS_RR_TYPE_SOA, "type SOA is managed by zonedist"},
        {LDNS_RR_TYPE_RRSIG, "type RRSIG is managed by zonedist"},
        {LDNS_RR_TYPE_NSEC, "type NSEC is managed by zonedist"},
        {LDNS_RR_TYPE_NSEC3, "type NSEC3 is managed by zonedist"},
        {LDNS_RR_TYPE_NSEC3PARAM, "type NSEC3PARAM is managed by zonedist"},
        {LDNS_RR_TYPE_DNSKEY, "type DNSKEY is managed by zonedist"},
        {LDNS_RR_TYPE_CDS, "type CDS is managed by zonedist"},
        {LDNS_RR_TYPE_CDNSKEY, "type CDNSKEY is managed by zonedist"},
        {LDNS_RR_TYPE_ZONEMD, "type ZONEMD is managed by zonedist"},
};

/* Pseudo and query types: never data in a zone (RFC 6895 s3.1). */
static int
type_is_meta(uint16_t t)
{
	return t == LDNS_RR_TYPE_OPT || t == LDNS_RR_TYPE_TSIG || t == LDNS_RR_TYPE_TKEY ||
	       t == LDNS_RR_TYPE_IXFR || t == LDNS_RR_TYPE_AXFR || t == LDNS_RR_TYPE_MAILA ||
	       t == LDNS_RR_TYPE_MAILB || t == LDNS_RR_TYPE_ANY || t == 0;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 1 when s holds a byte < 0x20 other than a tab, or DEL.  PostgreSQL text has
 * no NUL, and the C strings end at the first one anyway. */
static int
has_control(const char *s, int tab_ok)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p < 0x20 && !(tab_ok && *p == '\t')) || *p == 0x7f)
			return 1;
	}
	return 0;
}

static const char *
dname_status_reason(ldns_status st)
{
	switch (st) {
	case LDNS_STATUS_LABEL_OVERFLOW:
		return R_NAME_LABEL;
	case LDNS_STATUS_DOMAINNAME_OVERFLOW:
		return R_NAME_LONG;
	case LDNS_STATUS_EMPTY_LABEL:
		return "name has an empty label";
	default:
		return NULL;
	}
}

/* Parse a NUL-terminated absolute name.  On ZD_OK *out is new (caller owns). */
static zd_err
name_parse(const char *text, ldns_rdf **out, const char **reason)
{
	ldns_rdf *d = NULL;
	ldns_status st;

	if (!ldns_dname_str_absolute(text)) {
		*reason = "name is not absolute (no trailing dot)";
		return ZD_EMALFORMED;
	}
	st = ldns_str2rdf_dname(&d, text);
	if (st == LDNS_STATUS_MEM_ERR)
		return ZD_ENOMEM;
	if (st != LDNS_STATUS_OK || d == NULL) {
		const char *r = dname_status_reason(st);
		ldns_rdf_deep_free(d);
		*reason = r != NULL ? r : "name does not parse";
		return ZD_EMALFORMED;
	}
	*out = d;
	return ZD_OK;
}

/* ---- rdata tokens ------------------------------------------------------ */

struct tok {
	const char *p; /* into the rdata text; inside the quotes when quoted */
	size_t len;
	int quoted;
};

/* Next token of s from *pos.  Returns 1 with *t, 0 at the end, -1 with
 * *reason when the text is not one plain line of tokens: parentheses,
 * comments, a quote not closed or not alone, a dangling backslash. */
static int
tok_next(const char *s, size_t *pos, struct tok *t, const char **reason)
{
	size_t i = *pos, start;

	while (s[i] == ' ' || s[i] == '\t')
		i++;
	if (s[i] == '\0') {
		*pos = i;
		return 0;
	}
	if (s[i] == '"') {
		start = ++i;
		for (;;) {
			if (s[i] == '\0') {
				*reason = "rdata has an unterminated quote";
				return -1;
			}
			if (s[i] == '\\') {
				if (s[i + 1] == '\0') {
					*reason = "rdata has an unterminated quote";
					return -1;
				}
				i += 2;
				continue;
			}
			if (s[i] == '"')
				break;
			i++;
		}
		t->p = s + start;
		t->len = i - start;
		t->quoted = 1;
		i++; /* the closing quote */
		if (s[i] != '\0' && s[i] != ' ' && s[i] != '\t') {
			*reason = "rdata has text right after a closing quote";
			return -1;
		}
		*pos = i;
		return 1;
	}
	start = i;
	while (s[i] != '\0' && s[i] != ' ' && s[i] != '\t') {
		if (s[i] == '\\') {
			if (s[i + 1] == '\0') {
				*reason = "rdata ends in a backslash";
				return -1;
			}
			i += 2;
			continue;
		}
		if (s[i] == '(' || s[i] == ')' || s[i] == ';') {
			*reason = "rdata has parentheses or a comment";
			return -1;
		}
		if (s[i] == '"') {
			*reason = "rdata has a quote inside a word";
			return -1;
		}
		i++;
	}
	t->p = s + start;
	t->len = i - start;
	t->quoted = 0;
	*pos = i;
	return 1;
}

/* Unquoted decimal digits only, value <= max. */
static int
tok_uint(const struct tok *t, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (t->quoted || t->len == 0 || t->len > 20)
		return 0;
	for (size_t i = 0; i < t->len; i++) {
		if (!is_digit(t->p[i]))
			return 0;
		uint64_t d = (uint64_t)(t->p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	if (v > max)
		return 0;
	if (out != NULL)
		*out = v;
	return 1;
}

/* A number field that ldns also accepts as a mnemonic (RSASHA256, PKIX):
 * words are left to ldns, numbers must be in [min, max]. */
static int
tok_mnemonic_or_uint(const struct tok *t, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (!t->quoted && t->len > 0 && is_alpha(t->p[0]))
		return 1;
	return tok_uint(t, max, &v) && v >= min;
}

/* The rest of the rdata is one hex field (DS digest, TLSA data): unquoted hex
 * digits, an even number of them, split by white space at most. */
static const char *
hex_rest_check(const char *s, size_t pos, size_t want_digits, int exact)
{
	struct tok t;
	const char *reason = R_RDATA;
	size_t digits = 0;
	int r;

	while ((r = tok_next(s, &pos, &t, &reason)) == 1) {
		if (t.quoted)
			return R_RDATA;
		for (size_t i = 0; i < t.len; i++) {
			if (!is_hex(t.p[i]))
				return "rdata has a non-hex digit in a hex field";
		}
		digits += t.len;
	}
	if (r < 0)
		return reason;
	if (digits % 2 != 0)
		return "rdata has an odd number of hex digits";
	if (exact && digits != want_digits)
		return "rdata length does not match its \\# length";
	return NULL;
}

/* A dname field: unquoted, absolute, within the length limits. */
static const char *
tok_dname_check(const struct tok *t)
{
	char text[RA_ROW_OWNER_MAX + 1];
	ldns_rdf *d = NULL;
	const char *reason = NULL;
	zd_err e;

	if (t->quoted)
		return "rdata has a quoted name";
	if (t->len > RA_ROW_OWNER_MAX)
		return R_NAME_LONG;
	memcpy(text, t->p, t->len);
	text[t->len] = '\0';
	e = name_parse(text, &d, &reason);
	ldns_rdf_deep_free(d);
	if (e == ZD_OK)
		return NULL;
	if (e == ZD_EMALFORMED)
		return reason;
	return R_RDATA; /* out of memory here: ldns will fail the same way */
}

/* Check the rdata text of type t before ldns parses it; NULL when fine.
 * Fields are walked along the type's descriptor while each takes exactly one
 * token; the walk stops at the first field that may take several (strings,
 * base64, bitmaps, ...), which ldns parses strictly enough on its own, except
 * a trailing hex field, checked here. */
static const char *
rdata_check(const ldns_rr_descriptor *d, const char *s)
{
	struct tok t;
	const char *reason = R_RDATA;
	size_t pos = 0, field = 0;
	uint64_t n;
	int r;

	/* The whole line first: one plain line of tokens. */
	while ((r = tok_next(s, &pos, &t, &reason)) == 1)
		;
	if (r < 0)
		return reason;

	pos = 0;
	r = tok_next(s, &pos, &t, &reason);
	if (r == 1 && !t.quoted && t.len == 2 && t.p[0] == '\\' && t.p[1] == '#') {
		/* RFC 3597 s5: \# length hex */
		if (tok_next(s, &pos, &t, &reason) != 1 || !tok_uint(&t, 65535, &n))
			return R_RDATA;
		return hex_rest_check(s, pos, (size_t)n * 2, 1);
	}
	for (; r == 1; r = tok_next(s, &pos, &t, &reason), field++) {
		ldns_rdf_type ft;

		if (field >= d->_maximum && d->_variable == LDNS_RDF_TYPE_NONE)
			return "rdata has trailing text";
		ft = ldns_rr_descriptor_field_type(d, field);
		switch (ft) {
		case LDNS_RDF_TYPE_INT8:
			if (!tok_uint(&t, UINT8_MAX, NULL))
				return "rdata number out of range or not a number";
			break;
		case LDNS_RDF_TYPE_INT16:
			if (!tok_uint(&t, UINT16_MAX, NULL))
				return "rdata number out of range or not a number";
			break;
		case LDNS_RDF_TYPE_INT32:
			if (!tok_uint(&t, UINT32_MAX, NULL))
				return "rdata number out of range or not a number";
			break;
		case LDNS_RDF_TYPE_ALG:
		case LDNS_RDF_TYPE_CERTIFICATE_USAGE:
		case LDNS_RDF_TYPE_SELECTOR:
		case LDNS_RDF_TYPE_MATCHING_TYPE:
			if (!tok_mnemonic_or_uint(&t, 0, UINT8_MAX))
				return "rdata number out of range or not a number";
			break;
		case LDNS_RDF_TYPE_CERT_ALG:
			/* 0 is reserved (RFC 4398 s2.1), and ldns 1.8 leaks on it. */
			if (!tok_mnemonic_or_uint(&t, 1, UINT16_MAX))
				return "rdata number out of range or not a number";
			break;
		case LDNS_RDF_TYPE_DNAME: {
			const char *why = tok_dname_check(&t);
			if (why != NULL)
				return why;
			break;
		}
		case LDNS_RDF_TYPE_A:
		case LDNS_RDF_TYPE_AAAA:
		case LDNS_RDF_TYPE_TAG:
			if (t.quoted)
				return R_RDATA;
			break;
		case LDNS_RDF_TYPE_HEX:
			if (t.quoted)
				return R_RDATA;
			if (field + 1 == d->_maximum && d->_variable == LDNS_RDF_TYPE_NONE)
				return hex_rest_check(s, (size_t)(t.p - s), 0, 0);
			return NULL;
		default:
			return NULL;
		}
	}
	if (r < 0)
		return reason;
	return NULL;
}

/* ---- the common records, field by field ------------------------------- */

/* Field types a record is built from one token each by ldns' own field
 * parser (ldns_rdf_new_frm_str(), which ldns_rr_new_frm_str() calls too). */
static int
field_by_token(ldns_rdf_type ft)
{
	switch (ft) {
	case LDNS_RDF_TYPE_DNAME:
	case LDNS_RDF_TYPE_A:
	case LDNS_RDF_TYPE_AAAA:
	case LDNS_RDF_TYPE_INT8:
	case LDNS_RDF_TYPE_INT16:
	case LDNS_RDF_TYPE_INT32:
	case LDNS_RDF_TYPE_ALG:
	case LDNS_RDF_TYPE_HEX:
		return 1;
	default:
		return 0;
	}
}

/* The record of type d from rdata text s (checked by rdata_check()) when
 * every field of the type is one of field_by_token()'s, each given as one
 * unquoted token without a backslash (NS, A, AAAA, DS with its digest in one
 * piece, MX, SRV...); NULL for any other text, and then ldns_rr_new_frm_str()
 * parses it.  A first load reads millions of such rows, and
 * ldns_rr_new_frm_str() takes several 64 KB scratch buffers for each record
 * (every free of one consolidates the allocator's fast bins): this builds the
 * same record for a fraction of the cost (tests/fuzz/row_fuzz.c compares the
 * two). */
static ldns_rr *
rr_by_fields(const ldns_rr_descriptor *d, const char *s)
{
	char text[512];
	struct tok t;
	const char *reason = NULL;
	size_t pos = 0, field = 0;
	ldns_rr *rr;
	int r;

	if (d->_variable != LDNS_RDF_TYPE_NONE || d->_maximum == 0 || d->_minimum != d->_maximum)
		return NULL;
	if ((rr = ldns_rr_new()) == NULL)
		return NULL;
	ldns_rr_set_type(rr, d->_type);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	while ((r = tok_next(s, &pos, &t, &reason)) == 1) {
		ldns_rdf_type ft;
		ldns_rdf *f;

		if (field >= d->_maximum || t.quoted || t.len >= sizeof text ||
		    memchr(t.p, '\\', t.len) != NULL)
			goto slow;
		ft = ldns_rr_descriptor_field_type(d, field);
		/* ldns_rr_new_frm_str() reads a name starting with @ as the
		 * origin: left to it. */
		if (!field_by_token(ft) || (ft == LDNS_RDF_TYPE_DNAME && t.p[0] == '@'))
			goto slow;
		memcpy(text, t.p, t.len);
		text[t.len] = '\0';
		if ((f = ldns_rdf_new_frm_str(ft, text)) == NULL)
			goto slow;
		if (!ldns_rr_push_rdf(rr, f)) {
			ldns_rdf_deep_free(f);
			goto slow;
		}
		field++;
	}
	if (r == 0 && field == d->_maximum)
		return rr;
slow:
	ldns_rr_free(rr);
	return NULL;
}

/* ---- the row ------------------------------------------------------------ */

static const char *
type_check(const char *text, uint16_t *out)
{
	size_t len = strlen(text);
	ldns_rr_type t;
	const ldns_rr_descriptor *d;

	if (len == 0 || len > RA_ROW_TYPE_MAX)
		return "unknown type";
	for (size_t i = 0; i < len; i++) {
		if (!is_alpha(text[i]) && !is_digit(text[i]) && text[i] != '-')
			return "unknown type";
	}
	/* RFC 3597 TYPEnnn is not taken: ldns lets 99999 through as a type. */
	if (len > 4 && strncasecmp(text, "TYPE", 4) == 0 && is_digit(text[4]))
		return "unknown type";
	t = ldns_get_rr_type_by_name(text);
	if (t == 0 || (unsigned)t > UINT16_MAX)
		return "unknown type";
	if (type_is_meta((uint16_t)t))
		return "type is a meta or query type";
	d = ldns_rr_descript((uint16_t)t);
	if (d == NULL || d->_name == NULL || d->_type != t || strcasecmp(d->_name, text) != 0)
		return "unknown type";
	for (size_t i = 0; i < sizeof managed_types / sizeof managed_types[0]; i++) {
		if (managed_types[i].type == t)
			return managed_types[i].reason;
	}
	/* ldns 1.8's IPSECKEY parser leaks on every malformed gateway or key, and
	 * registries do not publish IPSECKEY below a TLD. */
	if (t == LDNS_RR_TYPE_IPSECKEY)
		return "type IPSECKEY is not supported";
	*out = (uint16_t)t;
	return NULL;
}

static const char *
owner_check(const ldns_rdf *zone, const char *text, ldns_rdf **out, zd_err *err)
{
	size_t len = strlen(text);
	ldns_rdf *d = NULL;
	const char *reason = NULL;

	*err = ZD_EMALFORMED;
	if (len == 0)
		return "owner is empty";
	if (len > RA_ROW_OWNER_MAX)
		return R_NAME_LONG;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c <= 0x20 || c >= 0x7f)
			return "owner has a space, control or non-ASCII byte";
	}
	*err = name_parse(text, &d, &reason);
	if (*err != ZD_OK)
		return *err == ZD_EMALFORMED ? reason : NULL;
	ldns_dname2canonical(d);
	if (ldns_dname_compare(d, zone) == 0)
		reason = "owner is the apex (apex records are zonedist's configuration)";
	else if (!ldns_dname_is_subdomain(d, zone))
		reason = "owner is outside the zone";
	if (reason != NULL) {
		ldns_rdf_deep_free(d);
		*err = ZD_EMALFORMED;
		return reason;
	}
	*out = d;
	return NULL;
}

zd_err
ra_owner_parse(const ldns_rdf *zone, const char *text, ldns_rdf **out, const char **reason)
{
	ldns_rdf *d = NULL;
	const char *why;
	zd_err e = ZD_EMALFORMED;

	if (zone == NULL || out == NULL || reason == NULL ||
	    ldns_rdf_get_type(zone) != LDNS_RDF_TYPE_DNAME)
		return ZD_EBUG;
	if (text == NULL) {
		*reason = "owner is missing (NULL)";
		return ZD_EMALFORMED;
	}
	why = owner_check(zone, text, &d, &e);
	if (e == ZD_OK)
		*out = d;
	else if (e == ZD_EMALFORMED)
		*reason = why;
	return e;
}

zd_err
ra_row_parse(const ldns_rdf *zone, const char *owner, const char *type, const char *ttl,
             const char *rdata, ldns_rr **out, const char **reason)
{
	ldns_rdf *owner_d = NULL;
	ldns_rr *rr = NULL;
	const ldns_rr_descriptor *d;
	struct zd_buf line;
	const char *why = NULL;
	uint16_t t = 0;
	uint32_t ttl_v = 0;
	size_t wire = 0;
	ldns_status st;
	zd_err e = ZD_EMALFORMED;

	zd_buf_init(&line, RA_ROW_RDATA_MAX + 64); /* bytes */
	if (zone == NULL || out == NULL || reason == NULL ||
	    ldns_rdf_get_type(zone) != LDNS_RDF_TYPE_DNAME) {
		e = ZD_EBUG;
		goto out;
	}
	if (owner == NULL || type == NULL || ttl == NULL || rdata == NULL) {
		why = owner == NULL  ? "owner is missing (NULL)"
		      : type == NULL ? "type is missing (NULL)"
		      : ttl == NULL  ? "ttl is missing (NULL)"
		                     : "rdata is missing (NULL)";
		goto out;
	}
	if (has_control(owner, 0) || has_control(type, 0) || has_control(ttl, 0) ||
	    has_control(rdata, 1)) {
		why = "field has a newline or another control character";
		goto out;
	}

	if ((why = owner_check(zone, owner, &owner_d, &e)) != NULL || e != ZD_OK)
		goto out;
	e = ZD_EMALFORMED;
	if ((why = type_check(type, &t)) != NULL)
		goto out;
	if (strlen(ttl) > RA_ROW_TTL_MAX || zd_parse_u32(ttl, 0, TTL_MAX, &ttl_v) != ZD_OK) {
		why = "ttl out of range";
		goto out;
	}
	if (strlen(rdata) > RA_ROW_RDATA_MAX) {
		why = "rdata text too long";
		goto out;
	}
	d = ldns_rr_descript(t);
	if ((why = rdata_check(d, rdata)) != NULL)
		goto out;

	/* Owner "." and TTL 0 stand in: the real ones were parsed above and
	 * replace them below.  The type is ldns' own mnemonic, and rdata_check()
	 * refused anything that could end the line or start a comment. */
	if ((rr = rr_by_fields(d, rdata)) != NULL)
		st = LDNS_STATUS_OK;
	else if ((e = zd_buf_printf(&line, ". 0 IN %s %s", d->_name, rdata)) != ZD_OK)
		goto out;
	else
		st = ldns_rr_new_frm_str(&rr, (const char *)line.data, 0, NULL, NULL);
	if (st == LDNS_STATUS_MEM_ERR) {
		e = ZD_ENOMEM;
		goto out;
	}
	e = ZD_EMALFORMED;
	if (st != LDNS_STATUS_OK || rr == NULL) {
		const char *r = dname_status_reason(st);
		why = r != NULL                                       ? r
		      : st == LDNS_STATUS_SYNTAX_SUPERFLUOUS_TEXT_ERR ? "rdata has trailing text"
		                                                      : R_RDATA;
		goto out;
	}
	if (ldns_rr_get_type(rr) != t || ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
		why = R_RDATA;
		goto out;
	}
	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++)
		wire += ldns_rdf_size(ldns_rr_rdf(rr, i));
	if (wire > UINT16_MAX) {
		why = "rdata longer than 65535 octets";
		goto out;
	}

	ldns_rdf_deep_free(ldns_rr_owner(rr));
	ldns_rr_set_owner(rr, owner_d); /* rr owns owner_d now; ldns_rr_free(rr) */
	owner_d = NULL;
	ldns_rr_set_ttl(rr, ttl_v);
	ldns_rr2canonical(rr);
	*out = rr;
	rr = NULL;
	e = ZD_OK;
out:
	if (e == ZD_EMALFORMED)
		*reason = why != NULL ? why : R_RDATA;
	ldns_rr_free(rr);
	ldns_rdf_deep_free(owner_d);
	zd_buf_clear(&line);
	return e;
}

/* ---- the records of one owner ------------------------------------------ */

struct entry {
	ldns_rr *rr;
	uint8_t *wire; /* rdata in canonical wire form; owned */
	size_t wire_len;
	size_t index; /* position in the input: the last tie-break */
	uint32_t ttl;
	uint16_t type;
	const char *reason; /* NULL: kept */
};

static int
wire_cmp(const struct entry *a, const struct entry *b)
{
	size_t n = a->wire_len < b->wire_len ? a->wire_len : b->wire_len;
	int c = n ? memcmp(a->wire, b->wire, n) : 0;

	if (c != 0)
		return c;
	return a->wire_len < b->wire_len ? -1 : a->wire_len > b->wire_len ? 1 : 0;
}

static int
entry_cmp(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;
	int c;

	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if ((c = wire_cmp(a, b)) != 0)
		return c;
	if (a->ttl != b->ttl)
		return a->ttl < b->ttl ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index ? 1 : 0;
}

static void
entries_free(struct entry *e, size_t n)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(e[i].wire);
	free(e);
}

static zd_err
entry_fill(struct entry *e, ldns_rr *rr, size_t index)
{
	size_t len = 0, off = 0;

	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++)
		len += ldns_rdf_size(ldns_rr_rdf(rr, i));
	e->rr = rr;
	e->index = index;
	e->ttl = ldns_rr_ttl(rr);
	e->type = (uint16_t)ldns_rr_get_type(rr);
	e->reason = NULL;
	e->wire_len = len;
	e->wire = malloc(len ? len : 1);
	if (e->wire == NULL)
		return ZD_ENOMEM;
	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *f = ldns_rr_rdf(rr, i);
		if (ldns_rdf_size(f) > 0)
			memcpy(e->wire + off, ldns_rdf_data(f), ldns_rdf_size(f));
		off += ldns_rdf_size(f);
	}
	return ZD_OK;
}

/* Marks TTL and duplicate rejects inside the RRset e[from, to). */
static void
rrset_check(struct entry *e, size_t from, size_t to)
{
	uint32_t min_ttl = e[from].ttl;
	const struct entry *last = NULL;

	for (size_t i = from; i < to; i++) {
		if (e[i].ttl < min_ttl)
			min_ttl = e[i].ttl;
	}
	for (size_t i = from; i < to; i++) {
		if (e[i].ttl != min_ttl) {
			e[i].reason = "TTL differs within the RRset";
			continue;
		}
		if (last != NULL && wire_cmp(last, &e[i]) == 0) {
			e[i].reason = "duplicate";
			continue;
		}
		last = &e[i];
	}
}

/* RFC 2181 s10.1 and RFC 6672 s2.4, over the kept entries. */
static void
singleton_check(struct entry *e, size_t n)
{
	size_t dnames = 0, others = 0;

	for (size_t i = 0; i < n; i++) {
		if (e[i].reason == NULL && e[i].type != LDNS_RR_TYPE_CNAME)
			others++;
	}
	for (size_t i = 0, seen = 0; i < n; i++) {
		if (e[i].reason != NULL || e[i].type != LDNS_RR_TYPE_CNAME)
			continue;
		if (others > 0)
			e[i].reason = "CNAME and other data at one name";
		else if (seen++ > 0)
			e[i].reason = "more than one CNAME at a name";
	}
	for (size_t i = 0; i < n; i++) {
		if (e[i].reason != NULL || e[i].type != LDNS_RR_TYPE_DNAME)
			continue;
		if (dnames++ > 0)
			e[i].reason = "more than one DNAME at a name";
	}
	/* RFC 4035 s2.4: a DS RRset sits at a delegation point only; without
	 * the NS set it would sign nothing and break the chain below. */
	size_t ns = 0;
	for (size_t i = 0; i < n; i++)
		ns += e[i].reason == NULL && e[i].type == LDNS_RR_TYPE_NS;
	for (size_t i = 0; i < n; i++)
		if (e[i].reason == NULL && e[i].type == LDNS_RR_TYPE_DS && ns == 0)
			e[i].reason = "DS without NS at the name";
}

zd_err
ra_rrs_check(ldns_rr_list *rrs, struct ra_reject **rejected, size_t *n_rejected)
{
	struct entry *e = NULL;
	struct ra_reject *rej = NULL;
	size_t n, n_rej = 0, k = 0;
	zd_err err = ZD_OK;

	if (rrs == NULL || rejected == NULL || n_rejected == NULL)
		return ZD_EBUG;
	n = ldns_rr_list_rr_count(rrs);
	if (n == 0) {
		*rejected = NULL;
		*n_rejected = 0;
		return ZD_OK;
	}
	for (size_t i = 1; i < n; i++) {
		if (zd_check_failed(ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(rrs, 0)),
		                                       ldns_rr_owner(ldns_rr_list_rr(rrs, i))) ==
		                    0))
			return ZD_EBUG;
	}
	e = calloc(n, sizeof *e);
	if (e == NULL)
		return ZD_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((err = entry_fill(&e[i], ldns_rr_list_rr(rrs, i), i)) != ZD_OK)
			goto out;
	}
	qsort(e, n, sizeof *e, entry_cmp);
	for (size_t from = 0, to; from < n; from = to) {
		for (to = from + 1; to < n && e[to].type == e[from].type; to++)
			;
		rrset_check(e, from, to);
	}
	singleton_check(e, n);

	for (size_t i = 0; i < n; i++)
		n_rej += e[i].reason != NULL;
	if (n_rej > 0) {
		rej = calloc(n_rej, sizeof *rej);
		if (rej == NULL) {
			err = ZD_ENOMEM;
			goto out;
		}
	}
	/* Nothing below can fail: the list only shrinks, so pushing back into
	 * its own storage never reallocates. */
	ldns_rr_list_set_rr_count(rrs, 0);
	for (size_t i = 0; i < n; i++) {
		if (e[i].reason != NULL) {
			rej[k].rr = e[i].rr;
			rej[k].reason = e[i].reason;
			k++;
		} else if (zd_check_failed(ldns_rr_list_push_rr(rrs, e[i].rr))) {
			ldns_rr_free(e[i].rr); /* cannot happen; lose the RR, not the memory */
		}
	}
	*rejected = rej;
	*n_rejected = n_rej;
	rej = NULL;
out:
	free(rej);
	entries_free(e, n);
	return err;
}

void
ra_rejects_free(struct ra_reject *r, size_t n)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		ldns_rr_free(r[i].rr);
	free(r);
}

/* ---- COPY binary ------------------------------------------------------- */

static const uint8_t copy_signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};

zd_err
ra_copy_next(const uint8_t *p, size_t n, int header_seen, size_t ncols, struct ra_copy_field *f,
             size_t *used, enum ra_copy_kind *kind)
{
	struct zd_rd r;
	uint16_t count;

	if (p == NULL || used == NULL || kind == NULL || (ncols > 0 && f == NULL))
		return ZD_EBUG;
	zd_rd_init(&r, p, n);
	*used = 0;
	*kind = RA_COPY_MORE;
	if (!header_seen) {
		const uint8_t *sig;
		uint32_t flags, ext;
		if (zd_rd_bytes(&r, sizeof copy_signature, &sig) != ZD_OK)
			return n > 0 && memcmp(p, copy_signature, n < 11 ? n : 11) != 0
			               ? ZD_EMALFORMED
			               : ZD_OK;
		if (memcmp(sig, copy_signature, sizeof copy_signature) != 0)
			return ZD_EMALFORMED;
		if (zd_rd_u32(&r, &flags) != ZD_OK || zd_rd_u32(&r, &ext) != ZD_OK)
			return ZD_OK;
		if ((flags & 0xffff0000u) != 0 || ext > RA_COPY_FIELD_MAX)
			return ZD_EMALFORMED;
		if (zd_rd_left(&r) < ext)
			return ZD_OK;
		*used = r.pos + ext;
		*kind = RA_COPY_HEADER;
		return ZD_OK;
	}
	if (zd_rd_u16(&r, &count) != ZD_OK)
		return ZD_OK;
	if (count == 0xffff) {
		*used = r.pos;
		*kind = RA_COPY_END;
		return ZD_OK;
	}
	if (count != ncols)
		return ZD_EMALFORMED;
	for (size_t i = 0; i < ncols; i++) {
		uint32_t len;
		if (zd_rd_u32(&r, &len) != ZD_OK)
			return ZD_OK;
		if (len == 0xffffffffu) {
			f[i].p = NULL;
			f[i].len = 0;
			continue;
		}
		if (len > RA_COPY_FIELD_MAX)
			return ZD_EMALFORMED;
		if (zd_rd_bytes(&r, len, &f[i].p) != ZD_OK)
			return ZD_OK;
		f[i].len = len;
	}
	*used = r.pos;
	*kind = RA_COPY_ROW;
	return ZD_OK;
}
