/* server/zone.h -- one served zone at run time: its configuration, its store,
 * and the records its configuration owns (the SOA, apex NS and their
 * addresses, other apex records: the registry never provides those).
 * Threads: created at start-up; cfg/config_rrs read-only afterwards; the
 * store as store.h says; the counters are written by the batch thread and
 * read anywhere (atomics). */
#ifndef ZD_ZONE_H
#define ZD_ZONE_H

#include <ldns/ldns.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/zd_config.h"
#include "common/zd_err.h"
#include "server/store.h"

struct keyroll;

#define ZONE_LATENCY_BUCKETS 14
/* Upper bounds (ms) of the latency histogram's buckets; the last is +Inf. */
extern const uint64_t zone_latency_le_ms[ZONE_LATENCY_BUCKETS - 1];

struct zone {
	const struct zd_zone_config *cfg; /* borrowed from the config */
	struct store *store;              /* owned */
	ldns_rr_list *config_rrs;         /* owned; canonical; no SOA */
	_Atomic uint32_t serial;          /* published serial */
	_Atomic uint64_t versions_published;
	_Atomic uint64_t changes_consumed;
	_Atomic uint64_t last_batch_ms; /* wall clock of the last published version */
	struct signer *signer;          /* owned by zonedistd.c; NULL: published unsigned */
	_Atomic uint64_t sigs_last;     /* RRSIGs the last published version made */
	_Atomic uint64_t sigs_total;    /* RRSIGs made since the start */
	_Atomic uint64_t gate_failures; /* versions the validation gate refused */
	_Atomic uint64_t delegations;   /* NS RRsets below the apex in the published version */
	_Atomic int held;               /* the next version waits for an operator's release */
	_Atomic int op_held;            /* an operator's hold (zonedist.hold): nothing is taken */
	/* Commit-to-publish latency of each published version: from its oldest
	 * change row (or, with none, from the start of its batch) to publication. */
	_Atomic uint64_t last_latency_ms;
	_Atomic uint64_t latency_sum_ms;
	_Atomic uint64_t latency_buckets[ZONE_LATENCY_BUCKETS]; /* <= zone_latency_le_ms[i] */
	_Atomic uint64_t latency_count;
	/* Activation times (Unix seconds) of the signing keys, from zonedist.key
	 * (server/keystate.h); set at start-up, read-only afterwards. */
	uint64_t ksk_active_s, zsk_active_s;
	struct keyroll *roll; /* the ZSK rollover (server/keyroll.h); owned by zonedistd.c */
	struct kskb *kskb;    /* offline KSK: the signer's bundles (server/kskbundle.h); owned
	                         by zonedistd.c, replaced by the batch thread's ceremonies */
	uint64_t ttl_capped;  /* batch thread: TTLs lowered to max-ttl, not yet logged */
};

/* Count one published version's commit-to-publish latency. */
void zone_latency_observe(struct zone *z, uint64_t ms);

/* Parse the zone's configured records.  On ZD_OK *out is new (zone_free()).
 * On failure err says which record and why. */
zd_err zone_new(const struct zd_zone_config *cfg, struct zone **out, char *err, size_t errlen);
void zone_free(struct zone *z);

/* The SOA record of serial for this zone (new RR, caller owns it). */
zd_err zone_soa_make(const struct zone *z, uint32_t serial, ldns_rr **out);

/* 1 when owner has records in the configuration (apex or below). */
int zone_name_is_configured(const struct zone *z, const ldns_rdf *owner);

/* Append clones of the configuration's records at owner to out. */
zd_err zone_config_rrs_append(const struct zone *z, const ldns_rdf *owner, ldns_rr_list *out);

/* Types zonedist itself manages at a name: a registry's wanted set never
 * replaces them (SOA, DNSSEC records). */
int zone_type_is_managed(uint16_t type);

#endif
