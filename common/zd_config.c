#include "zd_config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "zd_keyplan.h"
#include "zd_log.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define SECRET_MAX_BYTES 4096

struct ctx {
	yaml_document_t *doc;
	char *err;
	size_t errlen;
	/* the first zone that signs and its dnssec: node, for "needs hsm:" */
	const char *signing_zone;
	const char *backup_zone; /* the first zone with require-backup */
	const yaml_node_t *backup_node;
	const char *offline_zone; /* the first zone with offline-ksk */
	const yaml_node_t *offline_node;
	const yaml_node_t *signing_node;
};

static zd_err fail(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static zd_err
fail(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;
	int k = 0;

	if (c->errlen == 0)
		return ZD_EMALFORMED;
	if (n != NULL)
		k = snprintf(c->err, c->errlen,
		             "line %lu: ", (unsigned long)n->start_mark.line + 1);
	if (k < 0 || (size_t)k >= c->errlen)
		k = 0;
	va_start(ap, fmt);
	vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
	va_end(ap);
	return ZD_EMALFORMED;
}

char *
zd_name_normalize(const char *name)
{
	size_t n = strlen(name);
	char *s;

	while (n > 0 && isspace((unsigned char)name[n - 1]))
		n--;
	while (n > 0 && isspace((unsigned char)*name)) {
		name++;
		n--;
	}
	while (n > 1 && name[n - 1] == '.' && name[n - 2] == '.')
		n--;
	if (n == 0)
		return NULL;
	s = malloc(n + 2);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		s[i] = (char)tolower((unsigned char)name[i]);
	if (s[n - 1] != '.')
		s[n++] = '.';
	s[n] = '\0';
	return s;
}

static const char *
scalar(const yaml_node_t *n)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

static zd_err
get_string(struct ctx *c, const yaml_node_t *n, const char *what, char **out)
{
	const char *s = scalar(n);
	char *d;

	if (s == NULL)
		return fail(c, n, "%s must be a string", what);
	d = strdup(s);
	if (d == NULL)
		return ZD_ENOMEM;
	free(*out);
	*out = d;
	return ZD_OK;
}

static zd_err
get_name(struct ctx *c, const yaml_node_t *n, const char *what, char **out)
{
	const char *s = scalar(n);
	char *d;

	if (s == NULL || *s == '\0')
		return fail(c, n, "%s must be a domain name", what);
	d = zd_name_normalize(s);
	if (d == NULL)
		return ZD_ENOMEM;
	free(*out);
	*out = d;
	return ZD_OK;
}

static zd_err
get_u32(struct ctx *c, const yaml_node_t *n, const char *what, uint32_t min, uint32_t max,
        uint32_t *out)
{
	const char *s = scalar(n);
	if (s == NULL || zd_parse_u32(s, min, max, out) != ZD_OK)
		return fail(c, n, "%s must be a whole number from %u to %u", what, min, max);
	return ZD_OK;
}

/* Iterate a mapping: calls each(key, value) and reports unknown keys. */
typedef zd_err (*pair_fn)(struct ctx *c, void *arg, const char *key, yaml_node_t *val);

static zd_err
walk_map(struct ctx *c, yaml_node_t *map, const char *what, pair_fn each, void *arg)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return fail(c, map, "%s must be a mapping", what);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *ks = scalar(k);
		zd_err e;
		if (ks == NULL)
			return fail(c, k, "%s: keys must be strings", what);
		/* A key given twice would silently override, or for lists
		 * append to storage sized for one (found by fuzzing): refuse. */
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			const char *qs = scalar(yaml_document_get_node(c->doc, q->key));
			if (qs != NULL && strcmp(qs, ks) == 0)
				return fail(c, k, "%s: '%s' is given twice", what, ks);
		}
		if ((e = each(c, arg, ks, v)) != ZD_OK)
			return e;
	}
	return ZD_OK;
}

static zd_err
seq_items(struct ctx *c, yaml_node_t *seq, const char *what, size_t max, yaml_node_t ***items,
          size_t *n)
{
	size_t count;
	yaml_node_t **v;

	if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
		return fail(c, seq, "%s must be a list", what);
	count = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (count > max)
		return fail(c, seq, "%s: at most %zu entries", what, max);
	v = calloc(count ? count : 1, sizeof *v);
	if (v == NULL)
		return ZD_ENOMEM;
	for (size_t i = 0; i < count; i++)
		v[i] = yaml_document_get_node(c->doc, seq->data.sequence.items.start[i]);
	*items = v;
	*n = count;
	return ZD_OK;
}

static zd_err
read_secret_file(struct ctx *c, const yaml_node_t *n, const char *path, char **out)
{
	char buf[SECRET_MAX_BYTES + 1];
	ssize_t r;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(c, n, "secret-file %s: %s", path, strerror(errno));
	while (len < SECRET_MAX_BYTES && (r = read(fd, buf + len, SECRET_MAX_BYTES - len)) > 0)
		len += (size_t)r;
	close(fd);
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		len--;
	buf[len] = '\0';
	if (len == 0)
		return fail(c, n, "secret-file %s is empty", path);
	char *d = strdup(buf);
	memset(buf, 0, sizeof buf);
	if (d == NULL)
		return ZD_ENOMEM;
	free(*out);
	*out = d;
	return ZD_OK;
}

static zd_err
key_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_tsig_key *key = arg;
	if (strcmp(k, "name") == 0)
		return get_name(c, v, "tsig key name", &key->name);
	if (strcmp(k, "algorithm") == 0) {
		zd_err e = get_name(c, v, "tsig algorithm", &key->algorithm);
		if (e == ZD_OK && strcmp(key->algorithm, "hmac-sha256.") != 0 &&
		    strcmp(key->algorithm, "hmac-sha384.") != 0 &&
		    strcmp(key->algorithm, "hmac-sha512.") != 0 &&
		    strcmp(key->algorithm, "hmac-sha1.") != 0)
			return fail(c, v, "tsig algorithm %s is not supported", key->algorithm);
		return e;
	}
	if (strcmp(k, "secret") == 0)
		return get_string(c, v, "tsig secret", &key->secret);
	if (strcmp(k, "secret-file") == 0) {
		const char *s = scalar(v);
		if (s == NULL)
			return fail(c, v, "secret-file must be a path");
		return read_secret_file(c, v, s, &key->secret);
	}
	return fail(c, v, "unknown tsig key setting '%s'", k);
}

static zd_err
peer_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_peer *p = arg;
	if (strcmp(k, "address") == 0) {
		const char *s = scalar(v);
		if (s == NULL || zd_parse_sockaddr(s, 53, &p->addr, &p->addrlen) != ZD_OK)
			return fail(c, v, "address must be an IP address with optional @port");
		return get_string(c, v, "address", &p->text);
	}
	if (strcmp(k, "key") == 0)
		return get_name(c, v, "key", &p->key);
	return fail(c, v, "unknown notify setting '%s'", k);
}

static zd_err
acl_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_acl_entry *a = arg;
	if (strcmp(k, "prefix") == 0) {
		const char *s = scalar(v);
		if (s == NULL || zd_parse_prefix(s, &a->prefix) != ZD_OK)
			return fail(c, v, "prefix must be an address/length");
		return get_string(c, v, "prefix", &a->text);
	}
	if (strcmp(k, "key") == 0)
		return get_name(c, v, "key", &a->key);
	return fail(c, v, "unknown allow-transfer setting '%s'", k);
}

static zd_err
soa_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_zone_config *z = arg;
	if (strcmp(k, "mname") == 0)
		return get_name(c, v, "soa mname", &z->soa_mname);
	if (strcmp(k, "rname") == 0)
		return get_name(c, v, "soa rname", &z->soa_rname);
	if (strcmp(k, "ttl") == 0)
		return get_u32(c, v, "soa ttl", 0, 2147483647u, &z->soa_ttl);
	if (strcmp(k, "refresh") == 0)
		return get_u32(c, v, "soa refresh", 1, 2147483647u, &z->soa_refresh);
	if (strcmp(k, "retry") == 0)
		return get_u32(c, v, "soa retry", 1, 2147483647u, &z->soa_retry);
	if (strcmp(k, "expire") == 0)
		return get_u32(c, v, "soa expire", 1, 2147483647u, &z->soa_expire);
	if (strcmp(k, "minimum") == 0)
		return get_u32(c, v, "soa minimum", 0, 2147483647u, &z->soa_minimum);
	return fail(c, v, "unknown soa setting '%s'", k);
}

/* YAML 1.1's words, so that `cds: no` means what a YAML reader expects.
 * 1 or 0, or -1 for anything else. */
static int
bool_word(const char *s)
{
	static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no",
	                                                                       "off"};

	for (size_t i = 0; s != NULL && i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

static zd_err
get_bool(struct ctx *c, const yaml_node_t *n, const char *what, int *out)
{
	int b = bool_word(scalar(n));

	if (b < 0)
		return fail(c, n, "%s must be true or false (or yes/no, on/off)", what);
	*out = b;
	return ZD_OK;
}

/* Seconds, or a number with one suffix s, m, h, d or w ("30d"); in [min, max]. */
static zd_err
get_duration(struct ctx *c, const yaml_node_t *n, const char *what, uint32_t min, uint32_t max,
             uint32_t *out)
{
	const char *s = scalar(n);
	char digits[24];
	uint64_t v, unit = 1;
	size_t len;

	if (s == NULL || (len = strlen(s)) == 0 || len >= sizeof digits)
		goto bad;
	switch (s[len - 1]) {
	case 's':
		unit = 1;
		len--;
		break;
	case 'm':
		unit = 60;
		len--;
		break;
	case 'h':
		unit = 3600;
		len--;
		break;
	case 'd':
		unit = 86400;
		len--;
		break;
	case 'w':
		unit = 604800;
		len--;
		break;
	default:
		break;
	}
	memcpy(digits, s, len);
	digits[len] = '\0';
	/* v <= 2^32 and unit <= 2^20: the product fits */
	if (zd_parse_u64(digits, 0, UINT32_MAX, &v) != ZD_OK || v * unit < min || v * unit > max)
		goto bad;
	*out = (uint32_t)(v * unit);
	return ZD_OK;
bad:
	return fail(c, n,
	            "%s must be a duration from %u to %u seconds (seconds, or a number with "
	            "s, m, h, d or w)",
	            what, min, max);
}

/* A name getenv() can find: a typo here would only show at the first login. */
static zd_err
get_env_name(struct ctx *c, const yaml_node_t *n, char **out)
{
	const char *s = scalar(n);

	if (s == NULL || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		goto bad;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			goto bad;
	return get_string(c, n, "hsm pin-env", out);
bad:
	return fail(c, n,
	            "hsm pin-env must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
}

static zd_err hsm_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v);

/* A second token's mapping under hsm: (what: "hsm backup", or "hsm
 * ksk-token" when ksk): its label and exactly one PIN source. */
static zd_err
token_sub(struct ctx *c, yaml_node_t *v, const char *what, int ksk, struct zd_hsm_config **slot)
{
	if (*slot != NULL)
		return fail(c, v, "%s is given twice", what);
	struct zd_hsm_config *b = *slot = calloc(1, sizeof **slot);
	if (b == NULL)
		return ZD_ENOMEM;
	b->is_backup = !ksk;
	b->is_ksk_token = ksk;
	zd_err e = walk_map(c, v, what, hsm_pair, b);
	if (e != ZD_OK)
		return e;
	if (b->token_label == NULL)
		return fail(c, v, "%s needs a token-label", what);
	if ((b->pin_file == NULL) == (b->pin_env == NULL))
		return fail(c, v, "%s needs exactly one of pin-file and pin-env", what);
	return ZD_OK;
}

static zd_err
hsm_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_hsm_config *h = arg;
	const char *s = scalar(v);

	if (strcmp(k, "module") == 0) {
		if (s == NULL || *s == '\0')
			return fail(c, v, "hsm module must be the path of a PKCS#11 module");
		return get_string(c, v, "hsm module", &h->module);
	}
	if (strcmp(k, "token-label") == 0) {
		/* PKCS#11 CK_TOKEN_INFO.label is 32 bytes, blank padded */
		if (s == NULL || *s == '\0' || strlen(s) > 32)
			return fail(c, v, "hsm token-label must be 1 to 32 bytes");
		return get_string(c, v, "hsm token-label", &h->token_label);
	}
	if (strcmp(k, "pin-file") == 0) {
		if (s == NULL || *s == '\0')
			return fail(c, v, "hsm pin-file must be a path");
		return get_string(c, v, "hsm pin-file", &h->pin_file);
	}
	if (strcmp(k, "pin-env") == 0)
		return get_env_name(c, v, &h->pin_env);
	if (strcmp(k, "ksk-token") == 0 && !h->is_backup && !h->is_ksk_token)
		return token_sub(c, v, "hsm ksk-token", 1, &h->ksk_token);
	if (h->is_ksk_token && strcmp(k, "module") != 0 && strcmp(k, "token-label") != 0 &&
	    strcmp(k, "pin-file") != 0 && strcmp(k, "pin-env") != 0)
		return fail(c, v, "unknown hsm ksk-token setting '%s'", k);
	if (strcmp(k, "sign-processes") == 0 && !h->is_backup)
		return get_u32(c, v, "hsm sign-processes", 0, 64, &h->sign_processes);
	if (strcmp(k, "backup") == 0 && !h->is_backup && !h->is_ksk_token) {
		zd_err e = token_sub(c, v, "hsm backup", 0, &h->backup);
		if (e == ZD_OK && h->backup->wrap_key == NULL &&
		    (h->backup->wrap_key = strdup("zonedist-wrap")) == NULL)
			return ZD_ENOMEM;
		return e;
	}
	if (strcmp(k, "wrap-key") == 0 && h->is_backup) {
		if (s == NULL || *s == '\0' || strlen(s) > 128)
			return fail(c, v,
			            "hsm backup wrap-key must be a key label of 1 to 128 bytes");
		return get_string(c, v, "hsm backup wrap-key", &h->wrap_key);
	}
	if (strcmp(k, "dir") == 0 && h->is_backup) {
		if (s == NULL || *s != '/')
			return fail(c, v, "hsm backup dir must be an absolute path");
		return get_string(c, v, "hsm backup dir", &h->dir);
	}
	return fail(c, v, "unknown %s setting '%s'", h->is_backup ? "hsm backup" : "hsm", k);
}

static zd_err
api_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_api_config *a = arg;
	const char *s = scalar(v);
	yaml_node_t **items = NULL;
	size_t n = 0;
	zd_err e = ZD_OK;

	if (strcmp(k, "listen") == 0) {
		if (a->listen != NULL)
			return fail(c, v, "api listen given twice");
		if ((e = seq_items(c, v, "api listen", 16, &items, &n)) != ZD_OK)
			return e;
		if ((a->listen = calloc(n ? n : 1, sizeof *a->listen)) == NULL) {
			free(items);
			return ZD_ENOMEM;
		}
		for (size_t i = 0; i < n && e == ZD_OK; i++) {
			struct sockaddr_storage ss;
			socklen_t sl;
			const char *t = scalar(items[i]);
			if (t != NULL && strncmp(t, "unix:/", 6) == 0 && strlen(t + 5) < 100)
				e = ZD_OK;
			else if (t == NULL || zd_parse_sockaddr(t, 8053, &ss, &sl) != ZD_OK)
				e = fail(c, items[i],
				         "api listen entries are addr@port or unix:/path "
				         "(a path under 100 bytes)");
			if (e == ZD_OK &&
			    (e = get_string(c, items[i], "api listen", &a->listen[i])) == ZD_OK)
				a->n_listen++;
		}
		free(items);
		return e;
	}
	if (strcmp(k, "token-file") == 0) {
		if (s == NULL || *s == '\0')
			return fail(c, v, "api token-file must be a path");
		return get_string(c, v, "api token-file", &a->token_file);
	}
	if (strcmp(k, "max-connections") == 0)
		return get_u32(c, v, "api max-connections", 1, 100000, &a->max_connections);
	if (strcmp(k, "max-request-bytes") == 0)
		return get_u32(c, v, "api max-request-bytes", 1024, 64u << 20,
		               &a->max_request_bytes);
	if (strcmp(k, "timeout-ms") == 0)
		return get_u32(c, v, "api timeout-ms", 100, 3600000, &a->timeout_ms);
	return fail(c, v, "unknown api setting '%s'", k);
}

static zd_err
alarm_smtp_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_alarm_config *a = arg;
	const char *s = scalar(v);
	yaml_node_t **items = NULL;
	size_t n = 0;
	zd_err e = ZD_OK;

	if (strcmp(k, "url") == 0) {
		if (s == NULL || (strncmp(s, "smtp://", 7) != 0 && strncmp(s, "smtps://", 8) != 0))
			return fail(c, v,
			            "alarms smtp url must be smtp://host[:port] or smtps://...");
		return get_string(c, v, "alarms smtp url", &a->smtp_url);
	}
	if (strcmp(k, "from") == 0) {
		if (s == NULL || strchr(s, '@') == NULL || strpbrk(s, "<>\r\n ") != NULL)
			return fail(c, v, "alarms smtp from must be an address (user@domain)");
		return get_string(c, v, "alarms smtp from", &a->smtp_from);
	}
	if (strcmp(k, "to") == 0) {
		if (a->smtp_to != NULL)
			return fail(c, v, "alarms smtp to given twice");
		if ((e = seq_items(c, v, "alarms smtp to", 64, &items, &n)) != ZD_OK)
			return e;
		if ((a->smtp_to = calloc(n ? n : 1, sizeof *a->smtp_to)) == NULL) {
			free(items);
			return ZD_ENOMEM;
		}
		for (size_t i = 0; i < n && e == ZD_OK; i++) {
			const char *t = scalar(items[i]);
			if (t == NULL || strchr(t, '@') == NULL || strpbrk(t, "<>\r\n ") != NULL)
				e = fail(c, items[i], "alarms smtp to entries are addresses");
			else if ((e = get_string(c, items[i], "alarms smtp to", &a->smtp_to[i])) ==
			         ZD_OK)
				a->n_smtp_to++;
		}
		free(items);
		return e;
	}
	return fail(c, v, "unknown alarms smtp setting '%s'", k);
}

static zd_err
alarm_webhook_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_alarm_config *a = arg;
	const char *s = scalar(v);

	if (strcmp(k, "url") == 0) {
		if (s == NULL || (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0))
			return fail(c, v, "alarms webhook url must be http:// or https://");
		return get_string(c, v, "alarms webhook url", &a->webhook_url);
	}
	if (strcmp(k, "token-file") == 0) {
		if (s == NULL || *s == '\0')
			return fail(c, v, "alarms webhook token-file must be a path");
		return get_string(c, v, "alarms webhook token-file", &a->webhook_token_file);
	}
	return fail(c, v, "unknown alarms webhook setting '%s'", k);
}

static zd_err
alarm_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_alarm_config *a = arg;

	if (strcmp(k, "smtp") == 0)
		return walk_map(c, v, "alarms smtp", alarm_smtp_pair, a);
	if (strcmp(k, "webhook") == 0)
		return walk_map(c, v, "alarms webhook", alarm_webhook_pair, a);
	if (strcmp(k, "interval-ms") == 0)
		return get_u32(c, v, "alarms interval-ms", 100, 3600000, &a->interval_ms);
	if (strcmp(k, "lag-versions") == 0)
		return get_u32(c, v, "alarms lag-versions", 0, 100000000, &a->lag_versions);
	if (strcmp(k, "lag-seconds") == 0)
		return get_u32(c, v, "alarms lag-seconds", 0, 86400 * 30, &a->lag_seconds);
	if (strcmp(k, "down-seconds") == 0)
		return get_u32(c, v, "alarms down-seconds", 0, 86400, &a->down_seconds);
	if (strcmp(k, "headroom-seconds") == 0)
		return get_u32(c, v, "alarms headroom-seconds", 0, 86400 * 365,
		               &a->headroom_seconds);
	if (strcmp(k, "max-per-hour") == 0)
		return get_u32(c, v, "alarms max-per-hour", 1, 100000, &a->max_per_hour);
	if (strcmp(k, "timeout-ms") == 0)
		return get_u32(c, v, "alarms timeout-ms", 100, 600000, &a->timeout_ms);
	return fail(c, v, "unknown alarms setting '%s'", k);
}

#define TTL_MAX   2147483647u /* RFC 2181 s8 */
#define TTL_UNSET UINT32_MAX  /* dnskey-ttl, denial-ttl: from the SOA once it is known */

static void
dnssec_defaults(struct zd_dnssec_config *d)
{
	*d = (struct zd_dnssec_config){
	        .enabled = 0,
	        .algorithm = 13,
	        .denial = ZD_DENIAL_NSEC3,
	        .nsec3_opt_out = 1,
	        .validity = 30 * 86400,
	        .refresh = 24 * 86400,
	        .jitter = 2 * 86400,
	        .inception_offset = 3600,
	        .dnskey_ttl = TTL_UNSET,
	        .denial_ttl = TTL_UNSET,
	        .max_ttl = 2 * 86400,
	        .keys = {.zsk_lifetime = 30 * 86400,
	                 .ksk_lifetime = 365 * 86400,
	                 .propagation_delay = TTL_UNSET,
	                 .parent_propagation_delay = 3600,
	                 .ds_ttl = 86400,
	                 .registration_delay = 86400,
	                 .publish_safety = 3600,
	                 .retire_safety = 3600,
	                 .parent_poll_interval = 3600,
	                 .bundle_period = 90 * 86400,
	                 .bundle_warn = 14 * 86400},
	};
}

/* A key lifetime: a duration, or "unlimited" (0: never rolled). */
static zd_err
get_lifetime(struct ctx *c, const yaml_node_t *n, const char *what, uint32_t *out)
{
	const char *s = scalar(n);
	if (s != NULL && strcmp(s, "unlimited") == 0) {
		*out = 0;
		return ZD_OK;
	}
	return get_duration(c, n, what, 3600, UINT32_MAX, out);
}

static zd_err
keys_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_key_policy *kp = arg;
	static const struct {
		const char *name;
		size_t off;
	} d[] = {
	        {"propagation-delay", offsetof(struct zd_key_policy, propagation_delay)},
	        {"parent-propagation-delay",
	         offsetof(struct zd_key_policy, parent_propagation_delay)},
	        {"ds-ttl", offsetof(struct zd_key_policy, ds_ttl)},
	        {"registration-delay", offsetof(struct zd_key_policy, registration_delay)},
	        {"publish-safety", offsetof(struct zd_key_policy, publish_safety)},
	        {"retire-safety", offsetof(struct zd_key_policy, retire_safety)},
	};
	char what[64];

	if (strcmp(k, "parent-servers") == 0) {
		yaml_node_t **items = NULL;
		size_t n = 0;
		zd_err e = seq_items(c, v, "dnssec keys parent-servers", ZD_PARENT_SERVERS_MAX,
		                     &items, &n);
		if (e != ZD_OK)
			return e;
		if (kp->parent != NULL) {
			free(items);
			return fail(c, v, "dnssec keys parent-servers is given twice");
		}
		kp->parent = calloc(n ? n : 1, sizeof *kp->parent);
		if (kp->parent == NULL) {
			free(items);
			return ZD_ENOMEM;
		}
		for (size_t i = 0; i < n && e == ZD_OK; i++) {
			struct zd_peer *p = &kp->parent[i];
			const char *a = scalar(items[i]);
			kp->n_parent++;
			if (a == NULL || zd_parse_sockaddr(a, 53, &p->addr, &p->addrlen) != ZD_OK)
				e = fail(c, items[i],
				         "a parent server must be an IP address with optional "
				         "@port");
			else
				e = get_string(c, items[i], "parent server", &p->text);
		}
		free(items);
		return e;
	}
	if (strcmp(k, "parent-poll-interval") == 0)
		return get_duration(c, v, "dnssec keys parent-poll-interval", 1, 86400,
		                    &kp->parent_poll_interval);
	if (strcmp(k, "require-backup") == 0)
		return get_bool(c, v, "dnssec keys require-backup", &kp->require_backup);
	if (strcmp(k, "offline-ksk") == 0)
		return get_bool(c, v, "dnssec keys offline-ksk", &kp->offline_ksk);
	if (strcmp(k, "bundle-period") == 0)
		return get_duration(c, v, "dnssec keys bundle-period", 86400, 400 * 86400,
		                    &kp->bundle_period);
	if (strcmp(k, "bundle-warn") == 0)
		return get_duration(c, v, "dnssec keys bundle-warn", 3600, 365 * 86400,
		                    &kp->bundle_warn);
	if (strcmp(k, "zsk-lifetime") == 0)
		return get_lifetime(c, v, "dnssec keys zsk-lifetime", &kp->zsk_lifetime);
	if (strcmp(k, "ksk-lifetime") == 0)
		return get_lifetime(c, v, "dnssec keys ksk-lifetime", &kp->ksk_lifetime);
	for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
		if (strcmp(k, d[i].name) == 0) {
			snprintf(what, sizeof what, "dnssec keys %s", d[i].name);
			return get_duration(c, v, what, 0, TTL_MAX,
			                    (uint32_t *)((char *)kp + d[i].off));
		}
	return fail(c, v, "unknown dnssec keys setting '%s'", k);
}

/* The dnssec: mapping of one zone; what depends on the order of keys is
 * checked after the walk. */
struct dnssec_walk {
	struct zd_dnssec_config *d;
	const yaml_node_t *ksk_bits, *zsk_bits, *force_unsign, *unsign;
};

static zd_err
get_algorithm(struct ctx *c, const yaml_node_t *n, uint8_t *out)
{
	static const struct {
		const char *name, *number;
		uint8_t alg;
	} t[] = {
	        {"rsasha256", "8", 8},
	        {"ecdsap256sha256", "13", 13},
	        {"ed25519", "15", 15},
	};
	const char *s = scalar(n);

	for (size_t i = 0; s != NULL && i < sizeof t / sizeof t[0]; i++)
		if (strcasecmp(s, t[i].name) == 0 || strcmp(s, t[i].number) == 0) {
			*out = t[i].alg;
			return ZD_OK;
		}
	return fail(c, n,
	            "dnssec algorithm must be ecdsap256sha256 (13), rsasha256 (8) or ed25519 (15)");
}

static zd_err
get_salt(struct ctx *c, const yaml_node_t *n, struct zd_dnssec_config *d)
{
	uint8_t salt[ZD_NSEC3_SALT_MAX];
	const char *s = scalar(n);
	size_t len;

	if (s == NULL)
		goto bad;
	if (strcmp(s, "-") == 0)
		s = ""; /* the presentation form of an empty salt (RFC 5155 s3.3) */
	len = strlen(s);
	if (len % 2 != 0 || len / 2 > ZD_NSEC3_SALT_MAX)
		goto bad;
	for (size_t i = 0; i < len; i += 2) {
		char hex[3] = {s[i], s[i + 1], '\0'};
		if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]))
			goto bad;
		salt[i / 2] = (uint8_t)strtoul(hex, NULL, 16);
	}
	memcpy(d->nsec3_salt, salt, len / 2);
	d->nsec3_salt_len = (uint8_t)(len / 2);
	return ZD_OK;
bad:
	return fail(c, n,
	            "dnssec nsec3-salt must be \"-\" (empty) or an even number of hex digits, "
	            "at most %u bytes",
	            ZD_NSEC3_SALT_MAX);
}

static zd_err
dnssec_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct dnssec_walk *w = arg;
	struct zd_dnssec_config *d = w->d;
	uint32_t u;
	zd_err e;

	if (strcmp(k, "enabled") == 0)
		return get_bool(c, v, "dnssec enabled", &d->enabled);
	if (strcmp(k, "force-unsign") == 0) {
		w->force_unsign = v;
		return get_bool(c, v, "dnssec force-unsign", &d->force_unsign);
	}
	if (strcmp(k, "unsign") == 0) {
		w->unsign = v;
		return get_bool(c, v, "dnssec unsign", &d->unsign);
	}
	if (strcmp(k, "algorithm") == 0)
		return get_algorithm(c, v, &d->algorithm);
	if (strcmp(k, "ksk-bits") == 0 || strcmp(k, "zsk-bits") == 0) {
		int ksk = k[0] == 'k';
		if ((e = get_u32(c, v, ksk ? "dnssec ksk-bits" : "dnssec zsk-bits", 2048, 4096,
		                 &u)) != ZD_OK)
			return e;
		*(ksk ? &d->ksk_bits : &d->zsk_bits) = (uint16_t)u;
		*(ksk ? &w->ksk_bits : &w->zsk_bits) = v;
		return ZD_OK;
	}
	if (strcmp(k, "denial") == 0) {
		const char *s = scalar(v);
		if (s && strcasecmp(s, "nsec3") == 0)
			d->denial = ZD_DENIAL_NSEC3;
		else if (s && strcasecmp(s, "nsec") == 0)
			d->denial = ZD_DENIAL_NSEC;
		else
			return fail(c, v, "dnssec denial must be nsec3 or nsec");
		return ZD_OK;
	}
	if (strcmp(k, "nsec3-opt-out") == 0)
		return get_bool(c, v, "dnssec nsec3-opt-out", &d->nsec3_opt_out);
	if (strcmp(k, "nsec3-iterations") == 0) {
		if ((e = get_u32(c, v, "dnssec nsec3-iterations", 0, 500, &u)) != ZD_OK)
			return e;
		d->nsec3_iterations = (uint16_t)u;
		return ZD_OK;
	}
	if (strcmp(k, "nsec3-salt") == 0)
		return get_salt(c, v, d);
	if (strcmp(k, "signature-validity") == 0)
		return get_duration(c, v, "dnssec signature-validity", 1, TTL_MAX, &d->validity);
	if (strcmp(k, "refresh") == 0)
		return get_duration(c, v, "dnssec refresh", 1, TTL_MAX, &d->refresh);
	if (strcmp(k, "jitter") == 0)
		return get_duration(c, v, "dnssec jitter", 0, TTL_MAX, &d->jitter);
	if (strcmp(k, "inception-offset") == 0)
		return get_duration(c, v, "dnssec inception-offset", 0, TTL_MAX,
		                    &d->inception_offset);
	if (strcmp(k, "dnskey-ttl") == 0)
		return get_duration(c, v, "dnssec dnskey-ttl", 0, TTL_MAX, &d->dnskey_ttl);
	if (strcmp(k, "denial-ttl") == 0)
		return get_duration(c, v, "dnssec denial-ttl", 0, TTL_MAX, &d->denial_ttl);
	if (strcmp(k, "max-ttl") == 0)
		return get_duration(c, v, "dnssec max-ttl", 0, TTL_MAX, &d->max_ttl);
	if (strcmp(k, "cds") == 0)
		return get_bool(c, v, "dnssec cds", &d->cds);
	if (strcmp(k, "keys") == 0)
		return walk_map(c, v, "dnssec keys", keys_pair, &d->keys);
	return fail(c, v, "unknown dnssec setting '%s'", k);
}

/* `dnssec: on`, `dnssec: off` or a mapping (which means on unless it says
 * enabled: false). */
static zd_err
dnssec_parse(struct ctx *c, yaml_node_t *v, struct zd_dnssec_config *d)
{
	struct dnssec_walk w = {.d = d};
	zd_err e;

	if (v != NULL && v->type == YAML_SCALAR_NODE) {
		int on = bool_word(scalar(v));
		if (on < 0)
			return fail(c, v, "dnssec must be on, off or a mapping of settings");
		d->enabled = on;
		return ZD_OK;
	}
	d->enabled = 1;
	if ((e = walk_map(c, v, "dnssec", dnssec_pair, &w)) != ZD_OK)
		return e;
	if (d->algorithm == 8) {
		if (d->ksk_bits == 0)
			d->ksk_bits = 2048;
		if (d->zsk_bits == 0)
			d->zsk_bits = 2048;
	} else if (w.ksk_bits != NULL || w.zsk_bits != NULL) {
		return fail(
		        c, w.ksk_bits ? w.ksk_bits : w.zsk_bits,
		        "dnssec %s is for RSA keys only (algorithm rsasha256), not algorithm %u",
		        w.ksk_bits ? "ksk-bits" : "zsk-bits", d->algorithm);
	}
	if (d->force_unsign && d->enabled)
		return fail(c, w.force_unsign,
		            "dnssec force-unsign needs enabled: false (it unsigns the zone)");
	if (d->unsign && !d->enabled)
		return fail(c, w.unsign,
		            "dnssec unsign needs the zone signed (enabled: true): the zone is "
		            "signed until the parent's DS is gone (RFC 8078)");
	return ZD_OK;
}

/* The value of key in mapping map, or NULL. */
static yaml_node_t *
map_find(struct ctx *c, yaml_node_t *map, const char *key)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		const char *ks = scalar(yaml_document_get_node(c->doc, p->key));
		if (ks != NULL && strcmp(ks, key) == 0)
			return yaml_document_get_node(c->doc, p->value);
	}
	return NULL;
}

/* After the whole zone mapping: the TTL defaults need the SOA, which may be
 * written after dnssec:.  Then the checks of a signing policy. */
static zd_err
dnssec_finish(struct ctx *c, struct zd_zone_config *z, const yaml_node_t *n)
{
	struct zd_dnssec_config *d = &z->dnssec;
	uint64_t keep, need;

	if (d->dnskey_ttl == TTL_UNSET)
		d->dnskey_ttl = z->soa_ttl;
	if (d->denial_ttl == TTL_UNSET) /* RFC 9077 s3 */
		d->denial_ttl = z->soa_ttl < z->soa_minimum ? z->soa_ttl : z->soa_minimum;
	if (d->keys.propagation_delay == TTL_UNSET) /* a secondary that missed NOTIFY polls */
		d->keys.propagation_delay = z->soa_refresh;
	if (!d->enabled)
		return ZD_OK;
	/* The lifetime guard (RFC 6781 s4.4.2; RFC 4641 s4.4.2): a secondary
	 * that loses contact serves the zone until soa expire, and a resolver
	 * keeps an answer max-ttl longer; the signatures it got must outlive
	 * both.  A signature is re-made when less than refresh is left, and
	 * refresh / 4 of that is kept as slack for a signer that is late. */
	keep = (uint64_t)d->refresh - d->refresh / 4;
	need = (uint64_t)z->soa_expire + d->max_ttl;
	if (keep < need)
		return fail(c, n,
		            "zone %s: dnssec refresh - refresh/4 = %llu s must be >= soa expire + "
		            "max-ttl = %u + %u = %llu s; raise refresh (and signature-validity) or "
		            "lower soa expire or max-ttl",
		            z->name, (unsigned long long)keep, z->soa_expire, d->max_ttl,
		            (unsigned long long)need);
	if ((uint64_t)d->validity <= (uint64_t)d->jitter + d->refresh)
		return fail(
		        c, n,
		        "zone %s: dnssec signature-validity - jitter = %lld s must be > refresh "
		        "= %u s (else signatures are re-made at once); raise signature-validity "
		        "or lower jitter or refresh",
		        z->name, (long long)d->validity - (long long)d->jitter, d->refresh);
	if (d->inception_offset >= d->validity)
		return fail(
		        c, n,
		        "zone %s: dnssec inception-offset = %u s must be < signature-validity = "
		        "%u s",
		        z->name, d->inception_offset, d->validity);
	if (d->dnskey_ttl > d->max_ttl || d->denial_ttl > d->max_ttl || z->soa_ttl > d->max_ttl)
		return fail(c, n,
		            "zone %s: dnssec dnskey-ttl %u, denial-ttl %u and soa ttl %u must each "
		            "be <= max-ttl %u",
		            z->name, d->dnskey_ttl, d->denial_ttl, z->soa_ttl, d->max_ttl);
	const char *kp = zd_key_policy_problem(d);
	if (kp != NULL)
		return fail(c, n, "zone %s: dnssec keys: %s", z->name, kp);
	if (c->signing_zone == NULL) {
		c->signing_zone = z->name;
		c->signing_node = n;
	}
	if (d->keys.offline_ksk) {
		if (d->keys.bundle_warn >= d->keys.bundle_period)
			return fail(
			        c, n,
			        "zone %s: dnssec keys bundle-warn = %u s must be < bundle-period "
			        "= %u s (else the warning is on from the ceremony)",
			        z->name, d->keys.bundle_warn, d->keys.bundle_period);
		if (d->unsign || d->force_unsign)
			return fail(c, n,
			            "zone %s: unsigning needs the KSK to sign the delete CDS: turn "
			            "dnssec keys offline-ksk off first",
			            z->name);
		if (c->offline_zone == NULL) {
			c->offline_zone = z->name;
			c->offline_node = n;
		}
	}
	if (d->keys.require_backup && c->backup_zone == NULL) {
		c->backup_zone = z->name;
		c->backup_node = n;
	}
	return ZD_OK;
}

static zd_err
zone_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_zone_config *z = arg;
	yaml_node_t **items = NULL;
	size_t n = 0;
	zd_err e = ZD_OK;

	if (strcmp(k, "name") == 0)
		return get_name(c, v, "zone name", &z->name);
	if (strcmp(k, "serial-policy") == 0) {
		const char *s = scalar(v);
		if (s && strcmp(s, "increment") == 0)
			z->serial_policy = ZD_SERIAL_INCREMENT;
		else if (s && strcmp(s, "unixtime") == 0)
			z->serial_policy = ZD_SERIAL_UNIXTIME;
		else if (s && strcmp(s, "date-counter") == 0)
			z->serial_policy = ZD_SERIAL_DATECOUNTER;
		else
			return fail(c, v,
			            "serial-policy must be increment, unixtime or date-counter");
		return ZD_OK;
	}
	if (strcmp(k, "soa") == 0)
		return walk_map(c, v, "soa", soa_pair, z);
	if (strcmp(k, "dnssec") == 0)
		return dnssec_parse(c, v, &z->dnssec);
	if (strcmp(k, "apex") == 0) {
		if ((e = seq_items(c, v, "apex", 10000, &items, &n)) != ZD_OK)
			return e;
		z->apex = calloc(n ? n : 1, sizeof *z->apex);
		if (z->apex == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n && e == ZD_OK; i++) {
			e = get_string(c, items[i], "apex record", &z->apex[i]);
			if (e == ZD_OK)
				z->n_apex++;
		}
		goto out;
	}
	if (strcmp(k, "notify") == 0) {
		if ((e = seq_items(c, v, "notify", 1000, &items, &n)) != ZD_OK)
			return e;
		z->notify = calloc(n ? n : 1, sizeof *z->notify);
		if (z->notify == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n && e == ZD_OK; i++) {
			z->n_notify++;
			e = walk_map(c, items[i], "notify entry", peer_pair, &z->notify[i]);
			if (e == ZD_OK && z->notify[i].text == NULL)
				e = fail(c, items[i], "notify entry needs an address");
		}
		goto out;
	}
	if (strcmp(k, "allow-transfer") == 0) {
		if ((e = seq_items(c, v, "allow-transfer", 1000, &items, &n)) != ZD_OK)
			return e;
		z->acl = calloc(n ? n : 1, sizeof *z->acl);
		if (z->acl == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n && e == ZD_OK; i++) {
			z->n_acl++;
			e = walk_map(c, items[i], "allow-transfer entry", acl_pair, &z->acl[i]);
			if (e == ZD_OK && z->acl[i].text == NULL)
				e = fail(c, items[i], "allow-transfer entry needs a prefix");
		}
		goto out;
	}
	return fail(c, v, "unknown zone setting '%s'", k);
out:
	free(items);
	return e;
}

static zd_err
limits_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_limits *l = arg;
	static const struct {
		const char *key;
		size_t off;
		uint32_t min, max;
	} t[] = {
	        {"max-transfers", offsetof(struct zd_limits, max_transfers), 1, 100000},
	        {"max-tcp-clients", offsetof(struct zd_limits, max_tcp_clients), 1, 100000},
	        {"tcp-idle-timeout-ms", offsetof(struct zd_limits, tcp_idle_timeout_ms), 100,
	         3600000},
	        {"batch-max-changes", offsetof(struct zd_limits, batch_max_changes), 1, 1000000},
	        {"poll-interval-ms", offsetof(struct zd_limits, poll_interval_ms), 10, 3600000},
	        {"notify-retries", offsetof(struct zd_limits, notify_retries), 0, 100},
	        {"notify-timeout-ms", offsetof(struct zd_limits, notify_timeout_ms), 10, 600000},
	        {"checkpoint-every", offsetof(struct zd_limits, checkpoint_every), 1, 100000000},
	        {"history-versions", offsetof(struct zd_limits, history_versions), 0, 100000000},
	        {"max-message-bytes", offsetof(struct zd_limits, max_message_bytes), 512, 65535},
	        {"hold-removed-percent", offsetof(struct zd_limits, hold_removed_percent), 0, 100},
	        {"hold-removed-min", offsetof(struct zd_limits, hold_removed_min), 0, 100000000},
	        {"hold-apex-changes", offsetof(struct zd_limits, hold_apex_changes), 0, 100000000},
	        {"transfer-log-days", offsetof(struct zd_limits, transfer_log_days), 1, 3650},
	        {"probe-interval-ms", offsetof(struct zd_limits, probe_interval_ms), 100, 3600000},
	        {"probe-timeout-ms", offsetof(struct zd_limits, probe_timeout_ms), 10, 60000},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strcmp(k, t[i].key) == 0)
			return get_u32(c, v, k, t[i].min, t[i].max,
			               (uint32_t *)(void *)((char *)l + t[i].off));
	return fail(c, v, "unknown limits setting '%s'", k);
}

static zd_err
top_pair(struct ctx *c, void *arg, const char *k, yaml_node_t *v)
{
	struct zd_config *cfg = arg;
	yaml_node_t **items = NULL;
	size_t n = 0;
	zd_err e = ZD_OK;

	if (strcmp(k, "database") == 0)
		return get_string(c, v, "database", &cfg->database);
	if (strcmp(k, "log-level") == 0) {
		const char *s = scalar(v);
		int lv = s ? zd_log_level_parse(s) : -1;
		if (lv < 0)
			return fail(c, v,
			            "log-level must be error, warning, notice, info or debug");
		cfg->log_level = lv;
		return ZD_OK;
	}
	if (strcmp(k, "limits") == 0)
		return walk_map(c, v, "limits", limits_pair, &cfg->limits);
	if (strcmp(k, "api") == 0)
		return walk_map(c, v, "api", api_pair, &cfg->api);
	if (strcmp(k, "alarms") == 0)
		return walk_map(c, v, "alarms", alarm_pair, &cfg->alarms);
	if (strcmp(k, "hsm") == 0) {
		struct zd_hsm_config *h = &cfg->hsm;
		if ((e = walk_map(c, v, "hsm", hsm_pair, h)) != ZD_OK)
			return e;
		if (h->token_label == NULL)
			return fail(c, v, "hsm needs a token-label");
		if ((h->pin_file == NULL) == (h->pin_env == NULL))
			return fail(c, v, "hsm needs exactly one of pin-file and pin-env");
		cfg->has_hsm = 1;
		return ZD_OK;
	}
	if (strcmp(k, "listen") == 0) {
		if ((e = seq_items(c, v, "listen", 64, &items, &n)) != ZD_OK)
			return e;
		cfg->listen = calloc(n ? n : 1, sizeof *cfg->listen);
		if (cfg->listen == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n && e == ZD_OK; i++) {
			struct sockaddr_storage ss;
			socklen_t sl;
			const char *s = scalar(items[i]);
			if (s == NULL || zd_parse_sockaddr(s, 53, &ss, &sl) != ZD_OK)
				e = fail(c, items[i], "listen entries are addr@port");
			else if ((e = get_string(c, items[i], "listen", &cfg->listen[i])) == ZD_OK)
				cfg->n_listen++;
		}
		goto out;
	}
	if (strcmp(k, "tsig-keys") == 0) {
		if ((e = seq_items(c, v, "tsig-keys", 1000, &items, &n)) != ZD_OK)
			return e;
		cfg->keys = calloc(n ? n : 1, sizeof *cfg->keys);
		if (cfg->keys == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n && e == ZD_OK; i++) {
			cfg->n_keys++;
			e = walk_map(c, items[i], "tsig key", key_pair, &cfg->keys[i]);
			if (e == ZD_OK &&
			    (cfg->keys[i].name == NULL || cfg->keys[i].secret == NULL))
				e = fail(c, items[i],
				         "tsig key needs a name and a secret or secret-file");
			if (e == ZD_OK && cfg->keys[i].algorithm == NULL &&
			    (cfg->keys[i].algorithm = strdup("hmac-sha256.")) == NULL)
				e = ZD_ENOMEM;
		}
		goto out;
	}
	if (strcmp(k, "zones") == 0) {
		if ((e = seq_items(c, v, "zones", 10000, &items, &n)) != ZD_OK)
			return e;
		cfg->zones = calloc(n ? n : 1, sizeof *cfg->zones);
		if (cfg->zones == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n && e == ZD_OK; i++) {
			struct zd_zone_config *z = &cfg->zones[i];
			cfg->n_zones++;
			z->soa_ttl = 3600;
			z->soa_refresh = 3600;
			z->soa_retry = 600;
			z->soa_expire = 1209600;
			z->soa_minimum = 3600;
			dnssec_defaults(&z->dnssec);
			e = walk_map(c, items[i], "zone", zone_pair, z);
			if (e == ZD_OK && z->name == NULL)
				e = fail(c, items[i], "zone needs a name");
			if (e == ZD_OK && (z->soa_mname == NULL || z->soa_rname == NULL))
				e = fail(c, items[i], "zone %s needs soa mname and rname", z->name);
			if (e == ZD_OK) {
				yaml_node_t *dn = map_find(c, items[i], "dnssec");
				e = dnssec_finish(c, z, dn ? dn : items[i]);
			}
		}
		goto out;
	}
	return fail(c, v, "unknown setting '%s'", k);
out:
	free(items);
	return e;
}

static zd_err
check_refs(struct ctx *c, struct zd_config *cfg)
{
	for (size_t i = 0; i < cfg->n_zones; i++) {
		struct zd_zone_config *z = &cfg->zones[i];
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->zones[j].name, z->name) == 0)
				return fail(c, NULL, "zone %s is configured twice", z->name);
		for (size_t j = 0; j < z->n_notify; j++)
			if (z->notify[j].key && !zd_config_key_find(cfg, z->notify[j].key))
				return fail(c, NULL, "zone %s: notify %s names unknown key %s",
				            z->name, z->notify[j].text, z->notify[j].key);
		for (size_t j = 0; j < z->n_acl; j++)
			if (z->acl[j].key && !zd_config_key_find(cfg, z->acl[j].key))
				return fail(c, NULL,
				            "zone %s: allow-transfer %s names unknown key %s",
				            z->name, z->acl[j].text, z->acl[j].key);
	}
	if (cfg->database == NULL)
		return fail(c, NULL, "database (a libpq conninfo) is required");
	if (cfg->alarms.smtp_url != NULL &&
	    (cfg->alarms.smtp_from == NULL || cfg->alarms.n_smtp_to == 0))
		return fail(c, NULL, "alarms smtp needs from and at least one to");
	/* The keys live in the token only: a signing zone without one cannot
	 * be served signed, and serving it unsigned would break validation. */
	if (c->signing_zone != NULL && !cfg->has_hsm)
		return fail(c, c->signing_node,
		            "zone %s signs but there is no hsm: section (the token with its keys)",
		            c->signing_zone);
	if (c->offline_zone != NULL && cfg->hsm.ksk_token == NULL)
		return fail(c, c->offline_node,
		            "zone %s has offline-ksk but the hsm: section has no ksk-token: (the "
		            "token its KSK lives in)",
		            c->offline_zone);
	if (c->backup_zone != NULL && cfg->hsm.backup == NULL)
		return fail(c, c->backup_node,
		            "zone %s has require-backup but the hsm: section has no backup: token",
		            c->backup_zone);
	return ZD_OK;
}

zd_err
zd_config_parse(const char *text, size_t len, struct zd_config **out, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct zd_config *cfg = NULL;
	struct ctx c = {.doc = &doc, .err = err, .errlen = errlen};
	zd_err e;

	if (errlen)
		err[0] = '\0';
	if (len > CONFIG_MAX_BYTES)
		return fail(&c, NULL, "configuration larger than %u bytes", CONFIG_MAX_BYTES);
	if (!yaml_parser_initialize(&parser))
		return ZD_ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "line %lu: %s", (unsigned long)parser.problem_mark.line + 1,
		         parser.problem ? parser.problem : "YAML syntax error");
		yaml_parser_delete(&parser);
		return ZD_EMALFORMED;
	}
	cfg = calloc(1, sizeof *cfg);
	if (cfg == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	cfg->log_level = ZD_LOG_INFO;
	cfg->limits = (struct zd_limits){
	        .max_transfers = 64,
	        .max_tcp_clients = 256,
	        .tcp_idle_timeout_ms = 10000,
	        .batch_max_changes = 10000,
	        .poll_interval_ms = 1000,
	        .notify_retries = 5,
	        .notify_timeout_ms = 2000,
	        .checkpoint_every = 10000,
	        .history_versions = 100000,
	        .max_message_bytes = 65535,
	        .hold_removed_percent = 5,
	        .hold_removed_min = 100,
	        .hold_apex_changes = 0,
	        .transfer_log_days = 30,
	        .probe_interval_ms = 5000,
	        .probe_timeout_ms = 1000,
	};
	cfg->api.max_connections = 64;
	cfg->api.max_request_bytes = 65536;
	cfg->api.timeout_ms = 10000;
	cfg->alarms.interval_ms = 2000;
	cfg->alarms.lag_versions = 10;
	cfg->alarms.lag_seconds = 300;
	cfg->alarms.down_seconds = 10;
	cfg->alarms.headroom_seconds = 3 * 86400;
	cfg->alarms.max_per_hour = 60;
	cfg->alarms.timeout_ms = 10000;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root == NULL) {
		e = fail(&c, NULL, "configuration is empty");
		goto out;
	}
	if ((e = walk_map(&c, root, "configuration", top_pair, cfg)) != ZD_OK)
		goto out;
	if ((e = check_refs(&c, cfg)) != ZD_OK)
		goto out;
	*out = cfg;
	cfg = NULL;
out:
	zd_config_free(cfg);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return e;
}

zd_err
zd_config_load(const char *path, struct zd_config **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0, r;
	zd_err e;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return ZD_EIO;
	}
	text = malloc(CONFIG_MAX_BYTES + 1);
	if (text == NULL) {
		fclose(f);
		return ZD_ENOMEM;
	}
	while (len <= CONFIG_MAX_BYTES &&
	       (r = fread(text + len, 1, CONFIG_MAX_BYTES + 1 - len, f)) > 0)
		len += r;
	fclose(f);
	e = zd_config_parse(text, len, out, err, errlen);
	free(text);
	return e;
}

void
zd_config_free(struct zd_config *c)
{
	if (c == NULL)
		return;
	free(c->database);
	for (size_t i = 0; i < c->api.n_listen; i++)
		free(c->api.listen[i]);
	free(c->api.listen);
	free(c->api.token_file);
	free(c->alarms.smtp_url);
	free(c->alarms.smtp_from);
	for (size_t i = 0; i < c->alarms.n_smtp_to; i++)
		free(c->alarms.smtp_to[i]);
	free(c->alarms.smtp_to);
	free(c->alarms.webhook_url);
	free(c->alarms.webhook_token_file);
	for (size_t i = 0; i < c->n_listen; i++)
		free(c->listen[i]);
	free(c->listen);
	for (size_t i = 0; i < c->n_keys; i++) {
		free(c->keys[i].name);
		free(c->keys[i].algorithm);
		if (c->keys[i].secret) {
			memset(c->keys[i].secret, 0, strlen(c->keys[i].secret));
			free(c->keys[i].secret);
		}
	}
	free(c->keys);
	for (size_t i = 0; i < c->n_zones; i++) {
		struct zd_zone_config *z = &c->zones[i];
		free(z->name);
		free(z->soa_mname);
		free(z->soa_rname);
		for (size_t j = 0; j < z->n_apex; j++)
			free(z->apex[j]);
		free(z->apex);
		for (size_t j = 0; j < z->n_notify; j++) {
			free(z->notify[j].text);
			free(z->notify[j].key);
		}
		free(z->notify);
		for (size_t j = 0; j < z->dnssec.keys.n_parent; j++)
			free(z->dnssec.keys.parent[j].text);
		free(z->dnssec.keys.parent);
		for (size_t j = 0; j < z->n_acl; j++) {
			free(z->acl[j].text);
			free(z->acl[j].key);
		}
		free(z->acl);
	}
	free(c->zones);
	for (struct zd_hsm_config *h = &c->hsm, *next; h != NULL; h = next) {
		next = h == &c->hsm && h->backup == NULL ? h->ksk_token : h->backup;
		if (h->is_backup)
			next = c->hsm.ksk_token;
		free(h->module);
		free(h->token_label);
		free(h->pin_file);
		free(h->pin_env);
		free(h->wrap_key);
		free(h->dir);
		if (h != &c->hsm)
			free(h);
	}
	free(c);
}

const struct zd_tsig_key *
zd_config_key_find(const struct zd_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_keys; i++)
		if (strcmp(c->keys[i].name, name) == 0)
			return &c->keys[i];
	return NULL;
}

const struct zd_zone_config *
zd_config_zone_find(const struct zd_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_zones; i++)
		if (strcmp(c->zones[i].name, name) == 0)
			return &c->zones[i];
	return NULL;
}
