/* server/signer_priv.h -- what signer.c and nsec3.c share.  Not for other
 * modules. */
#ifndef ZD_SIGNER_PRIV_H
#define ZD_SIGNER_PRIV_H

#include <ldns/ldns.h>
#include <stdatomic.h>

#include "hsm/hsm.h"
#include "hsm/pool.h"
#include "server/signer.h"

struct signer_token {
	struct hsm *h;
	struct hsm_session *sess; /* the batch thread's */
	int up;
	const struct zd_hsm_config *hc; /* borrowed from the configuration */
};

/* Owned names. */
struct namevec {
	ldns_rdf **v;
	size_t n, cap;
};

struct signer {
	const struct zd_zone_config *zc;
	const struct zd_dnssec_config *p;
	struct signer_token *tk;
	struct hsm_key *ksk, *zsk; /* the signing ones: one of ksks, one of zsks */
	uint16_t ksk_tag, zsk_tag;
	struct hsm_key **zsks; /* every ZSK of the zone in the token (owned) */
	size_t n_zsks;
	struct hsm_key **ksks; /* every KSK of the zone in the token (owned) */
	size_t n_ksks;
	struct hsm_key *ksk2; /* a KSK of ksks published beside ksk that signs the DNSKEY,
	                         CDS and CDNSKEY RRsets too (double-signature roll), or NULL */
	uint16_t ksk2_tag;
	struct hsm_key *cds;   /* the KSK the CDS/CDNSKEY RRsets describe: ksk or ksk2 */
	int cds_delete;        /* the CDS/CDNSKEY RRsets are RFC 8078's delete ones */
	struct hsm_key *extra; /* a ZSK of zsks published beside zsk that signs nothing
	                              (the next, or the retired one), or NULL */
	uint16_t extra_tag;
	/* an algorithm rollover (RFC 6781 s4.1.4): the new algorithm's KSK and
	 * ZSK, and the stage (server/keyroll.h): 0 none; from 1 they sign
	 * beside ksk and zsk; from 2 they are published; from 3 the CDS/CDNSKEY
	 * describe aksk; at 5 ksk and zsk are no longer published (they still
	 * sign) */
	struct hsm_key *aksk, *azsk;
	uint16_t aksk_tag, azsk_tag;
	int astage;
	_Atomic uint32_t tags_seen; /* ksk_tag << 16 | zsk_tag, for other threads */
	_Atomic unsigned alg_seen;  /* zsk's algorithm, likewise */
	ldns_rdf *apex;             /* canonical */
	uint64_t rng;               /* jitter */
	struct namevec pending;     /* names whose signatures are due for refresh */
	struct store_cursor refresh_cur;
	ldns_rdf *corrupt_owner; /* test hook */
	struct hsm_pool *pool;   /* worker processes during a full signing, else NULL */
	/* dnssec keys offline-ksk: the KSKs are public halves (their token is
	 * away) and the DNSKEY, CDS and CDNSKEY RRsets take their RRSIGs from
	 * the pre-signed bundles (server/kskbundle.h; borrowed, NULL: none) */
	int offline;
	const struct kskb *bundles;
};

/* The zone's key of role tagged tag in the token, or NULL (borrowed). */
struct hsm_key *signer_key_find(struct signer *sg, enum signer_role role, uint16_t tag);

struct chg {
	ldns_rdf *owner;
	uint16_t type;
};

struct signing;

struct job {
	ldns_rdf *owner;
	uint16_t type;
	int idx; /* by the type's signing key of this index (signer_signing_keys());
	            the jobs of one RRset, one per key, are in a row */
};

/* One signer_txn_sign() call. */
struct work {
	struct signer *sg;
	struct store *s;
	struct store_txn *t;
	uint64_t v;   /* the txn's version */
	uint64_t old; /* the published version (0: none) */
	uint32_t now;
	int full;
	struct chg *chg; /* (owner, type) the txn changed before signing, sorted */
	size_t n_chg, cap_chg;
	struct job *jobs;
	size_t n_jobs, cap_jobs;
	struct signing *inflight;     /* a flush signing in the pool meanwhile, or NULL */
	struct namevec chain_touched; /* chain owners added or rewritten */
	struct namevec chain_removed; /* chain owners deleted */
	struct namevec chain_dirty;   /* chain owners whose RRSIG must be checked */
	struct signer_stats *st;
	char *err;
	size_t errlen;
};

/* What name_reconcile() learnt of a name, for its chain record. */
struct name_state {
	const ldns_rdf *name;
	int apex, occluded, deleg, has_ds;
	int any_signed;        /* some RRset here is signed */
	const uint16_t *types; /* data types (no RRSIG, NSEC, NSEC3) */
	size_t n_types;
};

ldns_rr *signer_rr_make(const ldns_rdf *owner, uint16_t type, uint32_t ttl, const uint8_t *rdata,
                        size_t len);
/* Put the RRset of one rr (taken; NULL deletes). */
zd_err signer_rrset_put1(struct work *w, const ldns_rdf *owner, uint16_t type, uint16_t covered,
                         ldns_rr *rr);
zd_err signer_name_rrs(struct work *w, uint64_t v, const ldns_rdf *owner, ldns_rr_list **out);
zd_err namevec_push(struct namevec *nv, ldns_rdf *name); /* takes name; NULL is ZD_ENOMEM */
void namevec_sort_unique(struct namevec *nv);
void namevec_clear(struct namevec *nv);
/* The keys that sign RRsets of type now, the one the pool holds first:
 * the ZSK; the KSK, and during a KSK roll the next one. */
#define SIGNING_KEYS_MAX 4
struct signing_keys {
	const struct hsm_key *k[SIGNING_KEYS_MAX];
	uint16_t tag[SIGNING_KEYS_MAX];
	size_t n;
};
void signer_signing_keys(const struct signer *sg, uint16_t type, struct signing_keys *out);
/* The RRSIGs over type among all (other RRs are skipped) need no renewal:
 * one by each signing key, in its algorithm, for this TTL, valid for
 * longer than the refresh period, and no other. */
int signer_rrsigs_ok(const struct work *w, const ldns_rr_list *all, uint16_t type, uint32_t ttl);
zd_err signer_job_push(struct work *w, const ldns_rdf *owner, uint16_t type);
/* Sign the queued jobs and put their RRSIGs (and those of a flush still
 * signing), before returning. */
zd_err signer_jobs_flush(struct work *w);
/* The same, but with a pool the jobs go on signing while the caller walks
 * on; their RRSIGs are put by the next flush.  A walk that stops on a
 * failure calls signer_jobs_abandon(), which waits for them and drops them. */
zd_err signer_jobs_flush_async(struct work *w);
void signer_jobs_abandon(struct work *w);
int signer_type_is_dnssec(uint16_t type);
zd_err signer_occluded(struct work *w, uint64_t v, const ldns_rdf *name, int *out);
int signer_changed(const struct work *w, const ldns_rdf *owner, uint16_t type);

/* nsec3.c */
zd_err signer_chain_name(struct work *w, const struct name_state *ns);
zd_err signer_chain_incremental(struct work *w);
zd_err signer_chain_full(struct work *w);

#endif
