/* server/kskbundle.h -- the offline KSK (issue 7, docs/KEYS.md "Offline
 * KSK"): the KSK lives in a token of its own (hsm: ksk-token:) that is
 * connected only for a ceremony.  The ceremony pre-signs the DNSKEY, CDS
 * and CDNSKEY RRsets of every DNSKEY RRset the ZSK schedule of the coming
 * bundle-period makes (the ZSKs it needs are generated in the main token
 * now, unpublished), in slots of overlapping validity, as the root zone's
 * key signing requests do; zonedist then rolls ZSKs and refreshes
 * signatures with the KSK token away, taking each RRSIG over those RRsets
 * from the bundles.
 *
 * Slots: every step = (signature-validity - refresh) / 2 (at least an
 * hour) from the ceremony to its until (ceremony + bundle-period), a slot
 * with inception = its start - inception-offset and expiration = its start
 * + signature-validity, for every DNSKEY RRset the schedule has from its
 * planned start (a step is never earlier than planned, it may be later)
 * to until.  The freshest slot valid now is the one used, so a signature is
 * renewed (refresh) by the next slot long before it expires.
 *
 * Stored in zonedist.ksk_ceremony and zonedist.ksk_bundle (schema version
 * 9); a ceremony's bundles replace the previous ones in one transaction.
 * Threads: the batch thread (or start-up); the lookups from the signer.
 * Limits: KSKB_SLOTS_MAX slots, KSKB_KEYSETS_MAX DNSKEY RRsets, each row's
 * records at most KSKB_RECORDS_MAX bytes (checked when read). */
#ifndef ZD_KSKBUNDLE_H
#define ZD_KSKBUNDLE_H

#include <ldns/ldns.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zd_config.h"
#include "common/zd_err.h"
#include "server/signer.h"

#define KSKB_SLOTS_MAX   20000
#define KSKB_KEYSETS_MAX 64
#define KSKB_RECORDS_MAX 65536

struct kskb;

/* The zone's bundles from the database; *out NULL when it never had a
 * ceremony.  A row that does not parse (or is over the limits) fails the
 * load with err naming it. */
zd_err kskb_load(PGconn *c, const char *zone, struct kskb **out, char *err, size_t errlen);
void kskb_free(struct kskb *b);

/* The RRSIG over rrset (type DNSKEY, CDS or CDNSKEY; canonical and sorted)
 * of the freshest slot valid at now that pre-signed exactly this RRset
 * (owner, TTL and RDATA), or NULL (borrowed from b). */
const ldns_rr *kskb_rrsig_find(const struct kskb *b, uint16_t type, const ldns_rr_list *rrset,
                               uint32_t now);
/* A ZSK publish: 1 with *tag, the ZSK a slot valid at now adds to the
 * DNSKEY RRset made of the keys tagged cur[0..n), none of avoid[0..n_avoid)
 * (the keys the zone had); 0 with none. */
int kskb_next_zsk(const struct kskb *b, uint32_t now, const uint16_t *cur, size_t n,
                  const uint16_t *avoid, size_t n_avoid, uint16_t *tag);

uint64_t kskb_until_get(const struct kskb *b); /* fresh signatures until (0: NULL b) */
uint64_t kskb_made_get(const struct kskb *b);  /* the ceremony's time */
size_t kskb_slots_get(const struct kskb *b);
size_t kskb_keysets_get(const struct kskb *b);
/* The KSK's DNSKEY RR the ceremony signed with (borrowed). */
const ldns_rr *kskb_ksk_get(const struct kskb *b);

/* The ZSK roll as it stands, where the ceremony's schedule starts. */
struct kskb_roll {
	uint16_t active;       /* the signing ZSK */
	uint64_t active_at;    /* since */
	int extra;             /* 0 none; 1 the next ZSK published; 2 the old one retired */
	uint16_t extra_tag;    /* that ZSK */
	uint64_t extra_at;     /* published, or retired, at */
	uint64_t compromised;  /* the signing ZSK reported compromised at; 0: not */
	const uint16_t *avoid; /* tags the zone ever had: no new ZSK gets one */
	size_t n_avoid;
};

/* The KSK of the zone in the KSK token (labelled "<zone> KSK"), or a new one
 * there when it has none (its tag none of the ZSKs'), added to sg as a
 * public half (signer_offline_ksk_add()).  The token is let go before it
 * returns.  ZD_EHSM with err when the token cannot be reached. */
zd_err kskb_ksk_fetch(struct signer *sg, const struct zd_zone_config *zc,
                      const struct zd_hsm_config *hc, char *err, size_t errlen);

/* The ceremony at now, with the KSK token connected (hc->ksk_token; let go
 * before it returns): the ZSK schedule of [now, now + bundle-period) from
 * roll (common/zd_keyplan.h), its ZSKs (reused when the token holds
 * unpublished ones, else generated), every slot signed by the KSK whose
 * tag the signer's active KSK has, stored on c in one transaction.  *out
 * gets the new bundles (the caller frees the old ones once the signer has
 * these).  On failure nothing is stored and err says why. */
zd_err kskb_ceremony(struct signer *sg, const struct zd_zone_config *zc,
                     const struct zd_hsm_config *hc, const struct kskb_roll *roll, uint64_t now,
                     PGconn *c, struct kskb **out, char *err, size_t errlen);

#endif
