/* common/zd_keyplan.h -- the key rollover schedule of a zone, computed from
 * its policy as RFC 7583 prescribes (docs/KEYS.md has the timelines and the
 * formulas): ZSK pre-publication (s3.2.1) and double-KSK with CDS/CDNSKEY
 * (s3.3.2, RFC 7344).  Every time is the earliest the RFC allows from the
 * TTLs, delays and safety margins in force, never a fixed sleep.
 *
 * Pure computation: no clock, no I/O; times are Unix seconds.
 * Threads: any.  Limits: the caller's step array. */
#ifndef ZD_KEYPLAN_H
#define ZD_KEYPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_config.h"

/* The intervals of RFC 7583, from a zone's policy (seconds). */
struct zd_key_intervals {
	uint64_t ipub;   /* Ipub = Dprp + TTLkey + publish-safety: a new DNSKEY in every cache */
	uint64_t iret_z; /* Iret = Dsgn + Dprp + TTLsig + retire-safety: the old ZSK's signatures
	                    gone from every cache (Dsgn = 0: the zone is re-signed in the version
	                    that activates the new ZSK) */
	uint64_t ipub_p; /* IpubP = DprpP + TTLds + retire-safety: the old DS gone from every cache
	                  */
	uint64_t dreg;   /* Dreg: CDS published to DS seen at the parent (expected) */
	uint64_t ksk_roll; /* publish of the new KSK to removal of the old: Ipub + Dreg + IpubP */
};

void zd_key_intervals_get(const struct zd_dnssec_config *d, struct zd_key_intervals *out);

/* NULL when the lifetimes leave room for the rolls; else why not (static
 * text with the rule): a ZSK must live at least Ipub + Iret, a KSK at least
 * Ipub + Dreg + IpubP, so that no more than two keys of a role overlap. */
const char *zd_key_policy_problem(const struct zd_dnssec_config *d);

enum zd_key_event {
	ZD_KEY_PUBLISH,    /* generated and put in the DNSKEY RRset */
	ZD_KEY_ACTIVATE,   /* ZSK: signs the zone (the old one stops: retired) */
	ZD_KEY_REMOVE,     /* taken out of the DNSKEY RRset */
	ZD_KEY_CDS,        /* KSK: its CDS/CDNSKEY replace the old's; DS submitted */
	ZD_KEY_DS_SEEN,    /* KSK: the parent serves its DS (expected; confirmed by operator) */
	ZD_KEY_DS_SETTLED, /* KSK: the old DS gone from caches: old KSK removed, new sole */
};

const char *zd_key_event_name(enum zd_key_event e);

struct zd_key_step {
	uint64_t at; /* earliest time, Unix seconds */
	int ksk;     /* 1: KSK roll, 0: ZSK roll */
	int gen;     /* the key it concerns: 0 the current key, 1 its successor, ...; -1 the
	            retired ZSK of a roll in progress */
	enum zd_key_event event;
	char formula[160]; /* how at is computed, with the values */
	char why[200];     /* why it cannot be earlier */
};

/* The steps of the rolls of both roles with from <= at < until, in time
 * order, starting from the current keys' activation times (zsk_active,
 * ksk_active; a KSK is active once its DS is at the parent and the previous
 * DS has left the caches).  The first cap steps go to out.  Returns the
 * number of steps found, each role stopping after cap + 1 of its own: more
 * than cap means the window was cut.  SIZE_MAX when memory ran out. */
size_t zd_key_plan(const struct zd_dnssec_config *d, uint64_t zsk_active, uint64_t ksk_active,
                   uint64_t from, uint64_t until, struct zd_key_step *out, size_t cap);

/* The ZSK roll as it stands (times on record, Unix seconds; 0: none). */
struct zd_zsk_now {
	uint64_t active;      /* the signing ZSK's activation */
	uint64_t published;   /* the next ZSK's publication, when one is published */
	uint64_t retired;     /* the previous ZSK's retirement, while it is still published */
	uint64_t compromised; /* the signing ZSK reported compromised */
};

/* As zd_key_plan(), from the roll in progress: a published ZSK signs at
 * max(published + Ipub, active + Lzsk) (published + Ipub when the signing
 * one is compromised), a retired one leaves at retired + Iret, a
 * compromised one is replaced at once (after the retired one left), and
 * the later rolls follow from those times, as server/keyroll.c runs them. */
/* The KSK roll as it stands: the active KSK's activation, and the stage
 * of the next KSK with the time it entered it. */
enum zd_ksk_stage { ZD_KSK_NONE, ZD_KSK_PUBLISHED, ZD_KSK_READY, ZD_KSK_SEEN };
struct zd_ksk_now {
	uint64_t active;
	enum zd_ksk_stage stage;
	uint64_t stage_at;
	uint64_t compromised; /* the active KSK reported compromised: replaced at once */
};

/* ... and the KSK roll in progress: CDS at Tpub + Ipub, DS seen expected
 * Dreg after that, settled IpubP after it is seen; the next roll counts its
 * lifetime from the settling. */
size_t zd_key_plan_now(const struct zd_dnssec_config *d, const struct zd_zsk_now *zsk,
                       const struct zd_ksk_now *ksk, uint64_t from, uint64_t until,
                       struct zd_key_step *out, size_t cap);

#endif
