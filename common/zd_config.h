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

#define ZD_PARENT_SERVERS_MAX 16

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

enum zd_denial {
	ZD_DENIAL_NSEC3 = 0,
	ZD_DENIAL_NSEC,
};

#define ZD_NSEC3_SALT_MAX 255 /* bytes (RFC 5155 s3.1.5) */

/* A zone's signing policy (the dnssec: setting; docs/CONFIG.md).  Times are
 * seconds.  zd_config_parse() refuses a policy whose signatures could expire
 * on a secondary that still serves the zone (the lifetime guard):
 * refresh - refresh / 4 must be at least soa expire + max_ttl, and
 * validity - jitter must exceed refresh. */
struct zd_dnssec_config {
	int enabled;               /* 0: `dnssec: off` (or the section absent) */
	int force_unsign;          /* unsign even while the parent may hold a DS */
	int unsign;                /* go unsigned through CDS/CDNSKEY delete (RFC 8078): the
	                              zone stays signed until the parent's DS is gone */
	uint8_t algorithm;         /* 8 RSASHA256, 13 ECDSAP256SHA256 (default), 15 ED25519 */
	uint16_t ksk_bits;         /* RSA modulus bits, 2048..4096 (default 2048); 0 otherwise */
	uint16_t zsk_bits;         /* likewise */
	enum zd_denial denial;     /* default NSEC3 */
	int nsec3_opt_out;         /* default 1 */
	uint16_t nsec3_iterations; /* default 0 (RFC 9276) */
	uint8_t nsec3_salt[ZD_NSEC3_SALT_MAX]; /* default empty */
	uint8_t nsec3_salt_len;
	uint32_t validity;         /* signature validity; default 30 days */
	uint32_t refresh;          /* re-sign when remaining validity < this; default 24 days */
	uint32_t jitter;           /* expiration spread; default 2 days */
	uint32_t inception_offset; /* inception = now - this; default 1 hour */
	uint32_t dnskey_ttl;       /* default: soa ttl */
	uint32_t denial_ttl;       /* NSEC3/NSEC/NSEC3PARAM TTL; default: min(soa ttl, minimum) */
	uint32_t max_ttl;          /* largest TTL a signed record may have; default 2 days */
	int cds;                   /* publish CDS + CDNSKEY of the KSK at the apex; default 0 */
	struct zd_key_policy {     /* the dnssec: keys: mapping (docs/KEYS.md) */
		uint32_t zsk_lifetime;      /* 0: unlimited (no automatic roll); default 30 days */
		uint32_t ksk_lifetime;      /* 0: unlimited; default 365 days */
		uint32_t propagation_delay; /* Dprp; default: soa refresh */
		uint32_t parent_propagation_delay; /* DprpP; default 1 hour */
		uint32_t ds_ttl;                   /* TTLds at the parent; default 1 day */
		uint32_t registration_delay;       /* Dreg expected for the plan; default 1 day */
		uint32_t publish_safety;           /* added to Ipub; default 1 hour */
		uint32_t retire_safety;            /* added to Iret; default 1 hour */
		/* The parent's name servers, asked for the zone's DS RRset every
		 * parent_poll_interval (seconds; default 1 hour) by
		 * server/probe.c; none: not asked. */
		struct zd_peer *parent;
		size_t n_parent;
		uint32_t parent_poll_interval;
		int require_backup; /* no key published before the backup token holds it */
		/* offline KSK (docs/KEYS.md "Offline KSK"): the KSK lives in the
		 * hsm: ksk-token:, connected only for a ceremony, which pre-signs
		 * the DNSKEY, CDS and CDNSKEY RRsets of every step of the ZSK
		 * schedule of the coming bundle_period; a warning from
		 * bundle_warn before they run out */
		int offline_ksk;
		uint32_t bundle_period; /* default 90 days */
		uint32_t bundle_warn;   /* default 14 days */
	} keys;
};

/* The PKCS#11 token holding every zone's keys (the hsm: section). */
struct zd_hsm_config {
	char *module;            /* module path; NULL: the SoftHSMv2 default */
	char *token_label;       /* required when any zone signs */
	char *pin_file;          /* exactly one of pin_file and pin_env */
	char *pin_env;           /* name of the environment variable */
	uint32_t sign_processes; /* signing processes for a full signing; 0: one per core */
	/* hsm: backup: -- the second token every key is backed up to, wrapped
	 * (docs/KEYS.md "Backups"), or NULL.  Its module, token_label and PIN
	 * are as above (module: the main token's when not given); wrap_key and
	 * dir are set in it only. */
	struct zd_hsm_config *backup;
	char *wrap_key; /* label of the wrapping key in both tokens; default "zonedist-wrap" */
	char *dir;      /* also write each key's backup file here; NULL: none */
	int is_backup;  /* this is the backup: mapping */
	/* hsm: ksk-token: -- the token of the offline KSKs (module, token_label
	 * and PIN as above), or NULL */
	struct zd_hsm_config *ksk_token;
	int is_ksk_token; /* this is the ksk-token: mapping */
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
	struct zd_dnssec_config dnssec;
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
	/* Sanity limits (DESIGN.md decision 8): a version is held for an
	 * operator's release when it removes more than hold_removed_min
	 * delegations and more than hold_removed_percent of them, or changes
	 * more than hold_apex_changes RRsets at the apex (SOA and DNSSEC records
	 * excepted). */
	uint32_t hold_removed_percent;
	uint32_t hold_removed_min;
	uint32_t hold_apex_changes;
	uint32_t transfer_log_days; /* transfer log (zonedist.transfer) retention; default 30 */
	uint32_t probe_interval_ms; /* SOA probe of each NOTIFY target; default 5000 */
	uint32_t probe_timeout_ms;  /* its answer waited for; default 1000 */
};

/* The operator HTTP API (the api: section; docs/API.md).  Entries of
 * listen are "addr@port" (TCP) or "unix:/path" (a unix socket). */
struct zd_api_config {
	char **listen;
	size_t n_listen;
	char *token_file;           /* token for calls that change state; NULL: none may */
	uint32_t max_connections;   /* open API connections; default 64 */
	uint32_t max_request_bytes; /* request headers + body; default 65536 */
	uint32_t timeout_ms;        /* a request that does not complete is closed; default 10000 */
};

/* Notifications of state changes (the alarms: section; docs/ALARMS.md). */
struct zd_alarm_config {
	char *smtp_url;  /* "smtp://host:port" (or smtps://); NULL: no e-mail */
	char *smtp_from; /* envelope and From: address */
	char **smtp_to;  /* recipients */
	size_t n_smtp_to;
	char *webhook_url;         /* http(s)://...; NULL: no webhook */
	char *webhook_token_file;  /* sent as Authorization: Bearer; NULL: none */
	uint32_t interval_ms;      /* evaluation period; default 2000 */
	uint32_t lag_versions;     /* a secondary more than this many versions behind ... */
	uint32_t lag_seconds;      /* ... for longer than this is lagging; defaults 10, 300 */
	uint32_t down_seconds;     /* unreachable for longer than this: alarm; default 10 */
	uint32_t headroom_seconds; /* signature headroom below this: alarm; default 3 days */
	uint32_t max_per_hour;     /* notifications sent per hour at most; default 60 */
	uint32_t timeout_ms;       /* per delivery attempt; default 10000 */
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
	int has_hsm; /* the hsm: section is present */
	struct zd_hsm_config hsm;
	struct zd_api_config api;
	struct zd_alarm_config alarms;
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
