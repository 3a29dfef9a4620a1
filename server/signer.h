/* server/signer.h -- DNSSEC signing of a zone's versions (DESIGN.md decision
 * 5): the DNSKEY, NSEC3PARAM and CDS/CDNSKEY RRsets at the apex, the NSEC3
 * (or NSEC) chain, and RRSIGs, for what a version changed only.
 *
 * Signing reconciles: for every name the version touched (its changed
 * owners, their ancestors up to the apex, and the names below one whose
 * delegation appeared or went), it computes the DNSSEC records the name must
 * have and puts only what differs: a changed RRset gets a new RRSIG, a chain
 * record whose type bitmap or next field changed is rewritten and re-signed,
 * and nothing else is touched.  With NSEC3 opt-out an insecure delegation
 * has no NSEC3 record, so adding or removing one costs the SOA's signature
 * only.  A full signing (the first version, new keys) treats every name as
 * touched and rebuilds the chain in one ordered pass.
 *
 * Keys: one KSK (signs DNSKEY, CDS, CDNSKEY) and one signing ZSK (everything
 * else) per zone, found in the token by label ("<zone> KSK", "<zone> ZSK",
 * "<zone> ZSK <suffix>" and "<zone> KSK <suffix>" for rolled keys) or
 * generated there at the first start with tags that do not collide; during
 * a ZSK roll a second ZSK is published beside the signing one, during a KSK
 * roll a second KSK is published and signs the DNSKEY, CDS and CDNSKEY
 * RRsets too (double signature).
 *
 * Threads: the batch thread only (struct signer_token too), after start-up
 * on the main thread.  Limits: SIGNER_BELOW_MAX names looked at below an
 * empty non-terminal or a changed delegation.
 * Standards: RFC 4033-4035, RFC 5155 (NSEC3), RFC 9276 (parameters),
 * RFC 7344 (CDS/CDNSKEY), RFC 6840. */
#ifndef ZD_SIGNER_H
#define ZD_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_config.h"
#include "common/zd_err.h"
#include "server/store.h"

#define SIGNER_BELOW_MAX 1000000

struct signer_token; /* the PKCS#11 token, logged in, with the batch thread's session */
struct hsm_key;
struct hsm_session;
struct kskb;
struct signer; /* one zone's keys and policy */
enum signer_role { SIGNER_ZSK, SIGNER_KSK };

/* Load the module, log in, open the signing session.  On failure err says
 * why (module, token, PIN); the caller exits. */
zd_err signer_token_new(const struct zd_hsm_config *hc, struct signer_token **out, char *err,
                        size_t errlen);
void signer_token_free(struct signer_token *tk);
/* 1 while the token signs; 0 after it went away, until signer_token_check()
 * got it back. */
int signer_token_is_up(const struct signer_token *tk);
/* When the token is lost, try to reconnect (sessions closed, module
 * re-initialised, keys found again).  ZD_OK when the token is usable. */
zd_err signer_token_check(struct signer_token *tk, char *err, size_t errlen);
/* Reconnect now (the module re-initialised when nothing else in the
 * process uses it), so that a token connected since is seen: SoftHSM and
 * others list their tokens at C_Initialize.  The batch thread, not during
 * a full signing.  ZD_OK when the token is usable again. */
zd_err signer_token_rescan(struct signer_token *tk, char *err, size_t errlen);

/* The zone's keys: found in the token by label (of any algorithm: until
 * an algorithm rollover replaced them they may not be the policy's; one of
 * the policy's is preferred as the signing one until keyroll says which
 * signs), or generated in the policy's algorithm when there is none.
 * ZD_EHSM with err when the token refuses. */
zd_err signer_new(const struct zd_zone_config *zc, struct signer_token *tk, struct signer **out,
                  char *err, size_t errlen);
void signer_free(struct signer *sg);

struct signer_stats {
	size_t signatures;    /* RRSIGs made */
	size_t bundled;       /* RRSIGs taken from an offline KSK's bundles */
	size_t names;         /* names reconciled */
	size_t chain_changed; /* NSEC3/NSEC records added, removed or rewritten */
	uint64_t ms;          /* time spent */
	uint64_t pool_ms;     /* of ms: the signing processes had jobs (a full signing) */
	uint64_t wait_ms;     /* of ms: the batch thread waited for them */
	size_t gate_checked;  /* signatures the validation gate verified (batch.c) */
	uint64_t gate_ms;     /* time the gate took (batch.c) */
};

/* Sign the version t builds on top of the published one (the SOA is put
 * already).  full: every name, and the whole chain.  On failure the txn
 * holds part of the work; the caller aborts it.  err names the owner and the
 * step.  ZD_EHSM: the token failed (signer_token_is_up() says whether it
 * went away). */
zd_err signer_txn_sign(struct signer *sg, struct store *s, struct store_txn *t, int full,
                       struct signer_stats *st, char *err, size_t errlen);

/* 1 when the zone's published DNSKEY RRset is not the one these keys make:
 * the next version must be a full signing. */
int signer_keys_changed(struct signer *sg, struct store *s);

/* Signature refresh: look at up to max_names names of the published
 * version after the refresh cursor and remember those with a signature
 * whose remaining validity is below the policy's refresh period; the next
 * signer_txn_sign() re-signs them.  *due gets the number of names waiting. */
zd_err signer_refresh_collect(struct signer *sg, struct store *s, size_t max_names, size_t *due);
/* Names per refresh step so that the whole zone is looked at every
 * refresh/4 seconds with a step every interval_ms. */
size_t signer_refresh_step_names(const struct signer *sg, size_t zone_names, uint32_t interval_ms);

/* The zone's key tags (the signing ZSK's: it moves during a ZSK roll) and
 * algorithm, for the status and metrics; from any thread. */
void signer_keys_get(const struct signer *sg, uint16_t *ksk_tag, uint16_t *zsk_tag,
                     uint8_t *algorithm);

/* A new copy of the DNSKEY RR of the zone's key of role tagged tag in the
 * token (the caller frees it), or NULL. */
ldns_rr *signer_key_dnskey_get(struct signer *sg, enum signer_role role, uint16_t tag);

/* Rollovers (server/keyroll.c).  A zone's DNSKEY RRset holds the KSK and
 * the ZSK that sign, at most one other ZSK that signs nothing (the next,
 * pre-published, or the previous, retired, one) and at most one other KSK,
 * which signs the KSK's RRsets too (the next one, in a double-signature
 * roll). */
#define SIGNER_ZSKS_MAX 16 /* keys of one role of one zone in the token */
/* The tags of every key of role of the zone in the token, the first cap of
 * them; returns how many there are. */
size_t signer_key_tags_get(const struct signer *sg, enum signer_role role, uint16_t *tags,
                           size_t cap);
/* Sign with the ZSK tagged active, and publish the one tagged extra beside
 * it when has_extra.  ZD_ENOTFOUND when the token has no such key. */
zd_err signer_zsk_use(struct signer *sg, uint16_t active, int has_extra, uint16_t extra);
/* The KSK tagged active signs the DNSKEY, CDS and CDNSKEY RRsets; with
 * has_second the one tagged second is published and signs them too.  The
 * CDS/CDNSKEY RRsets describe second when cds_second, else active.
 * ZD_ENOTFOUND when the token has no such key. */
zd_err signer_ksk_use(struct signer *sg, uint16_t active, int has_second, uint16_t second,
                      int cds_second);
/* Unsigning (RFC 8078 s4): with on, the CDS and CDNSKEY RRsets are the
 * delete ones (CDS "0 0 0 00", CDNSKEY "0 3 0 AA==") whatever the KSKs. */
void signer_cds_delete_set(struct signer *sg, int on);
/* An algorithm rollover (RFC 6781 s4.1.4) at stage (keyroll.h; 0: none):
 * the KSK and ZSK tagged ksk and zsk, of another algorithm than the active
 * ones, sign every RRset beside them from 1, are published from 2, the
 * CDS/CDNSKEY describe the new KSK from 3, and at 5 the active keys are
 * no longer published but still sign.  ZD_ENOTFOUND when the token has no
 * such keys. */
zd_err signer_alg_use(struct signer *sg, int stage, uint16_t ksk, uint16_t zsk);
/* The algorithm of the zone's key of role tagged tag in the token, or -1. */
int signer_key_alg_get(struct signer *sg, enum signer_role role, uint16_t tag);
/* The DNSKEY RRs of keys that sign but are not published (an algorithm
 * rollover's at stage 1 and 5), for the validation gate; NULL without
 * (or out of memory).  The caller frees it. */
ldns_rr_list *signer_unpublished_keys_get(struct signer *sg);
/* 1 with *tag when a ZSK is published that does not sign. */
int signer_zsk_extra_get(const struct signer *sg, uint16_t *tag);
/* A new key of role in the token labelled "<zone> ZSK <suffix>" (KSK),
 * whose tag differs from every key of the zone (a KSK's revoked tag too)
 * and from avoid[0..n_avoid) (else another is generated).  *tag gets it; it
 * is not published until signer_zsk_use() (signer_ksk_use()) says so. */
zd_err signer_key_generate(struct signer *sg, enum signer_role role, const char *suffix,
                           const uint16_t *avoid, size_t n_avoid, uint16_t *tag, char *err,
                           size_t errlen);
/* Delete a key that is no longer published from the token. */
zd_err signer_key_destroy(struct signer *sg, enum signer_role role, uint16_t tag, char *err,
                          size_t errlen);

/* Offline KSK (dnssec keys offline-ksk, server/kskbundle.h): the KSKs are
 * public halves whose token is away, and the DNSKEY, CDS and CDNSKEY
 * RRsets take the RRSIGs a ceremony made.  Takes k (a public half, or a
 * key of the KSK token) as a KSK of the zone; the first one added signs.
 * ZD_ELIMIT when its tag is the ZSK's. */
zd_err signer_offline_ksk_add(struct signer *sg, struct hsm_key *k);
/* The bundles the KSK's RRSIGs come from (borrowed until replaced). */
void signer_offline_bundles_set(struct signer *sg, const struct kskb *b);
int signer_is_offline(const struct signer *sg);
/* The token sg signs with (borrowed). */
struct signer_token *signer_token_get(struct signer *sg);
/* 1 with *tag: the ZSK in the token, none of avoid[0..n_avoid), that a
 * pre-signed DNSKEY RRset valid at now adds to the published keys (a ZSK
 * roll's publish). */
int signer_offline_next_zsk(struct signer *sg, uint64_t now, const uint16_t *avoid, size_t n_avoid,
                            uint16_t *tag);
/* ZD_OK when the bundles hold an RRSIG valid now for each of the DNSKEY,
 * CDS and CDNSKEY RRsets the keys make now; else err says which lacks. */
zd_err signer_offline_check(struct signer *sg, char *err, size_t errlen);
/* The ceremony: the DNSKEY, CDS and CDNSKEY RRsets (sets[1], sets[2]:
 * NULL without dnssec cds) of the active KSK with the ZSKs tagged
 * zsks[0..n), and an RRSIG over one by key k through session s. */
zd_err signer_ksk_sets(struct signer *sg, const uint16_t *zsks, size_t n, ldns_rr_list *sets[3]);
zd_err signer_rrsig_make(struct signer *sg, struct hsm_session *s, const struct hsm_key *k,
                         ldns_rr_list *rrset, uint16_t type, uint32_t inception,
                         uint32_t expiration, ldns_rr **out, char *err, size_t errlen);

/* Test hook: the next n keys generated (ZSK or KSK) are taken to have the
 * signing ZSK's tag, so the collision check must refuse them (n <= 64). */
zd_err signer_test_zsk_collisions(struct signer *sg, unsigned n);

/* Test hook: the signature of the next RRset signed at owner (presentation
 * form) gets one byte flipped after the token made it, once. */
void signer_test_corrupt_set(struct signer *sg, const char *owner);

#endif
