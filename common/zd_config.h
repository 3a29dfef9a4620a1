/* common/zd_config.h -- zonedistd's YAML configuration (docs/CONFIG.md).
 * Threads: parsed once at start-up, read-only afterwards.
 * Limits: file <= 1 MiB; unknown keys are errors (a typo must not be ignored). */
#ifndef ZD_CONFIG_H
#define ZD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "zd_err.h"
#include "zd_parse.h"

enum zd_serial_policy {
	ZD_SERIAL_INCREMENT = 0,
	ZD_SERIAL_UNIXTIME,
	ZD_SERIAL_DATECOUNTER,
};

struct zd_tsig_key {
	char *name;      /* DNS name, lower case, trailing dot */
	char *algorithm; /* "hmac-sha256." and friends, as ldns names them */
	char *secret;    /* base64; read from secret-file when given */
};

struct zd_peer {
	char *text; /* as written, for logs */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char *key; /* TSIG key name or NULL */
};

struct zd_acl_entry {
	char *text;
	struct zd_prefix prefix;
	char *key; /* TSIG key required from this prefix, or NULL */
};

struct zd_zone_config {
	char *name; /* lower case, trailing dot */
	enum zd_serial_policy serial_policy;
	char *soa_mname, *soa_rname;
	uint32_t soa_ttl, soa_refresh, soa_retry, soa_expire, soa_minimum;
	char **apex; /* other apex (and apex-owned) records, presentation form */
	size_t n_apex;
	struct zd_peer *notify;
	size_t n_notify;
	struct zd_acl_entry *acl; /* empty: nobody may transfer */
	size_t n_acl;
};

struct zd_limits {
	uint32_t max_transfers;       /* concurrent AXFR/IXFR streams */
	uint32_t max_tcp_clients;     /* open TCP connections */
	uint32_t tcp_idle_timeout_ms; /* idle TCP connection closed after */
	uint32_t batch_max_changes;   /* outbox rows taken per batch */
	uint32_t poll_interval_ms;    /* outbox polled even without NOTIFY */
	uint32_t notify_retries;      /* NOTIFY resends before giving up */
	uint32_t notify_timeout_ms;   /* wait for a NOTIFY answer */
	uint32_t checkpoint_every;    /* versions between checkpoints */
	uint32_t history_versions;    /* versions kept in memory at least; 0 = all */
	uint32_t max_message_bytes;   /* TCP transfer message size */
};

struct zd_config {
	char *database; /* libpq conninfo */
	char **listen;  /* "addr@port" */
	size_t n_listen;
	int log_level;
	struct zd_tsig_key *keys;
	size_t n_keys;
	struct zd_zone_config *zones;
	size_t n_zones;
	struct zd_limits limits;
};

/* Untrusted text in; on ZD_OK *out is a new config the caller owns
 * (zd_config_free()).  On failure err holds "line N: what is wrong". */
zd_err zd_config_parse(const char *text, size_t len, struct zd_config **out, char *err,
                       size_t errlen);
zd_err zd_config_load(const char *path, struct zd_config **out, char *err, size_t errlen);
void zd_config_free(struct zd_config *c);

/* Borrowed from c; NULL when absent. */
const struct zd_tsig_key *zd_config_key_find(const struct zd_config *c, const char *name);
const struct zd_zone_config *zd_config_zone_find(const struct zd_config *c, const char *name);

/* Lower-case, exactly one trailing dot; NULL on allocation failure or an empty
 * name.  Caller owns the result. */
char *zd_name_normalize(const char *name);

#endif
