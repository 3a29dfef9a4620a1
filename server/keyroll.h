/* server/keyroll.h -- the automatic key rollovers of a signed zone: RFC 7583
 * s3.2.1 pre-publication for the ZSK, s3.3.2 double signature for the KSK
 * (docs/KEYS.md).  The batch thread asks at every poll whether a step is due
 * on the DNSSEC clock (common/zd_clock.h):
 *
 *   publish   active_at + zsk-lifetime - Ipub: a new ZSK in the DNSKEY RRset
 *   activate  max(published + Ipub, active_at + zsk-lifetime): the new ZSK
 *             signs the whole zone (one full signing), the old one retires
 *             and stays published
 *   remove    retired + Iret: the old ZSK leaves the DNSKEY RRset and the
 *             token
 *
 * The KSK's, with Ipub, Dreg and IpubP of common/zd_keyplan.h:
 *
 *   ksk-publish  ksk_active_at + ksk-lifetime - (Ipub + Dreg + IpubP): a new
 *                KSK in the DNSKEY RRset, which both KSKs sign
 *   cds          published + Ipub: the CDS/CDNSKEY RRsets describe the new
 *                KSK (published during the roll whatever dnssec cds says);
 *                the parent may replace the DS
 *   ds-seen      when every parent server answering serves the new KSK's
 *                DS (keys parent-servers, polled by server/probe.c), or an
 *                operator says so (zonedistctl ds-seen)
 *   ds-settled   ds-seen + IpubP: the old KSK leaves the DNSKEY RRset and
 *                the token; the new one signs alone
 *
 * An active ZSK reported compromised (zonedist.key.compromised) is replaced
 * as fast as caches allow: publish at once (once a retired ZSK is gone),
 * activate at published + Ipub whatever the lifetime, remove at + Iret.
 *
 * Each step is made by an ordinary version: keyroll_begin() changes the
 * signer's keys, the version is signed and checked by the validation gate,
 * keyroll_record() writes the step to zonedist.key in the transaction that
 * journals the version, and keyroll_done() or keyroll_undo() follows the
 * commit's outcome.  A restart reads the state back from zonedist.key, so a
 * roll resumes where the journal is: no step is repeated or skipped.  A key
 * generated for a publish that never committed stays in the token and is
 * the one the next publish uses.
 *
 * Threads: start-up, then the batch thread; keyroll_view_get() from any.
 * Limits: KEYSTATE_ROWS_MAX rows, SIGNER_ZSKS_MAX ZSKs in the token. */
#ifndef ZD_KEYROLL_H
#define ZD_KEYROLL_H

#include <ldns/ldns.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "common/zd_config.h"
#include "common/zd_err.h"
#include "server/signer.h"

struct keyroll;

enum keyroll_step {
	KEYROLL_NONE,
	KEYROLL_PUBLISH,
	KEYROLL_ACTIVATE,
	KEYROLL_REMOVE,
	KEYROLL_KSK_PUBLISH,
	KEYROLL_KSK_CDS,
	KEYROLL_KSK_DS_SEEN,
	KEYROLL_KSK_SETTLE,
	/* unsigning (dnssec: unsign, RFC 8078 s4): the delete CDS/CDNSKEY out,
	 * the parent's DS gone, every DNSSEC record removed */
	KEYROLL_UNSIGN_CDS_DELETE,
	KEYROLL_UNSIGN_DS_GONE,
	KEYROLL_UNSIGN_REMOVE,
	/* the algorithm rollover (RFC 6781 s4.1.4), when dnssec algorithm is not
	 * the active keys': a KSK and a ZSK of the new algorithm sign every
	 * RRset, unpublished (at once, once no ZSK or KSK roll is half-way);
	 * they are published (+ Iret); the CDS/CDNSKEY describe the new KSK
	 * (+ Ipub); the parent serves its DS (polled, or zonedistctl ds-seen);
	 * the old keys leave the DNSKEY RRset (+ IpubP) and still sign; their
	 * signatures go, the old keys leave the token (+ Ipub) */
	KEYROLL_ALG_SIGN,
	KEYROLL_ALG_PUBLISH,
	KEYROLL_ALG_CDS,
	KEYROLL_ALG_DS_SEEN,
	KEYROLL_ALG_REMOVE,
	KEYROLL_ALG_DONE,
};

const char *keyroll_step_name(enum keyroll_step s);

/* The zone's ZSK state from zonedist.key, applied to sg: the active ZSK
 * signs, a published or retired one is published beside it.  Keys the rows
 * say are removed but the token still holds are deleted from it.  When no
 * row says which ZSK is active (the first start), sg keeps its own.
 * ZD_ENOTFOUND with err when a row names a key the token does not have. */
zd_err keyroll_new(const struct zd_zone_config *zc, struct signer *sg, PGconn *c,
                   struct keyroll **out, char *err, size_t errlen);
void keyroll_free(struct keyroll *r);

/* The active KSK's and ZSK's activation times on record
 * (keystate_record()), where the schedules start. */
void keyroll_active_at_set(struct keyroll *r, uint64_t ksk_at, uint64_t zsk_at);

/* The probe thread: whether every parent server that answered serves the
 * DS of the KSK tagged tag (the one keyroll_ksk_dnskeys_get() said is
 * awaited).  From any thread. */
void keyroll_parent_seen(struct keyroll *r, int seen, uint16_t tag);
/* Copies of the DNSKEY RRs of the published KSKs, the active one first
 * (out has room for 2; the caller frees them); returns how many.  *next
 * gets 1 when the second is the one whose DS the roll awaits.  From any
 * thread. */
size_t keyroll_ksk_dnskeys_get(const struct keyroll *r, ldns_rr **out, int *next);

/* The step due at now, or KEYROLL_NONE. */
enum keyroll_step keyroll_due(const struct keyroll *r, uint64_t now);

/* Make step s at now in the signer: publish generates (or reuses) the next
 * ZSK.  *full gets 1 when the version must be a full signing (activate).
 * On failure nothing changed and err says why. */
zd_err keyroll_begin(struct keyroll *r, enum keyroll_step s, uint64_t now, int *full, char *err,
                     size_t errlen);
/* 1 between keyroll_begin() and keyroll_done()/keyroll_undo(). */
int keyroll_pending(const struct keyroll *r);
/* Write the pending step to zonedist.key on c, in the caller's transaction. */
zd_err keyroll_record(struct keyroll *r, PGconn *c, char *err, size_t errlen);
/* The version with the pending step committed (a removed key is deleted
 * from the token here). */
void keyroll_done(struct keyroll *r);
/* It did not: the signer's keys are as before keyroll_begin(). */
void keyroll_undo(struct keyroll *r);
/* The zone's rows in zonedist.key changed without this roll's knowing:
 * another thread's commit (an operator reported the active ZSK
 * compromised) or a version the journal had that we did not know had
 * committed.  keyroll_reload_ask() after it; it returns the new count.  The
 * batch thread reads keyroll_reload_asked() before its snapshot begins
 * (or, for the journal's versions, takes ask's count in that snapshot),
 * then keyroll_sync() in it reloads when something was asked since the
 * last reload; one that fails is asked again by the next sync. */
uint64_t keyroll_reload_ask(struct keyroll *r);
uint64_t keyroll_reload_asked(const struct keyroll *r);
zd_err keyroll_sync(struct keyroll *r, uint64_t asked, PGconn *c, char *err, size_t errlen);

/* The batch thread looked at the DNSSEC clock's now and did what was due. */
void keyroll_checked(struct keyroll *r, uint64_t now);

/* Offline KSK (server/kskbundle.h).  The bundles the signer now has (for
 * the view and the run-out warning, logged by keyroll_checked() from
 * bundle-warn before their end, once an hour). */
struct kskb;
struct zd_hsm_config;
void keyroll_offline_set(struct keyroll *r, const struct kskb *b);
/* The ceremony at now (kskb_ceremony()) from the roll as it stands. */
zd_err keyroll_ceremony(struct keyroll *r, const struct zd_hsm_config *hc, uint64_t now, PGconn *c,
                        struct kskb **out, char *err, size_t errlen);
/* An operator asks for a ceremony (any thread); the batch thread takes
 * the ask (1 when there was one) and makes it. */
void keyroll_ceremony_ask(struct keyroll *r);
int keyroll_ceremony_take(struct keyroll *r);
/* One was made (why NULL) or failed (why says why). */
void keyroll_ceremony_done(struct keyroll *r, const char *why);

/* What the operator sees. */
struct keyroll_view {
	uint16_t active;
	uint64_t active_at;
	int extra; /* 0: none; 1: the next ZSK (published); 2: the old one (retired) */
	uint16_t extra_tag;
	uint64_t extra_at;       /* when it was published, or retired */
	uint64_t compromised_at; /* the active ZSK reported compromised at; 0: not */
	enum keyroll_step due;   /* the next step */
	uint64_t due_at;         /* its earliest time; 0 without one */
	uint64_t checked_at;     /* DNSSEC clock of the last look */
	uint64_t steps;          /* steps made since the start */
	uint16_t ksk;            /* the active KSK */
	uint64_t ksk_at;
	int kstage; /* 0: no KSK roll; 1: next KSK published; 2: its CDS published; 3: its DS
	               seen at the parent */
	uint16_t ksk_next;
	uint64_t kstage_at;          /* when the stage began */
	uint64_t ksk_compromised_at; /* the active KSK reported compromised at; 0: not */
	enum keyroll_step kdue;      /* the KSK roll's next step */
	uint64_t kdue_at;            /* its earliest (ds-seen: expected) time; 0 without one */
	int ustage;             /* unsigning: 0 none, 1 delete CDS out, 2 DS gone, 3 unsigned */
	uint64_t ustage_at;     /* when the stage began */
	enum keyroll_step udue; /* the unsigning's next step */
	uint64_t udue_at;       /* its earliest time (ds-gone: 0, it is awaited) */
	int astage;             /* algorithm rollover: 0 none, 1 signed, 2 published, 3 cds,
	                           4 ds-seen, 5 removed */
	uint64_t astage_at;     /* when the stage began */
	uint16_t aksk, azsk;    /* its new keys */
	uint8_t afrom, ato;     /* the active keys' algorithm, the policy's */
	enum keyroll_step adue; /* its next step (none when afrom == ato) */
	uint64_t adue_at;       /* its earliest (alg-ds-seen: expected) time */
	int offline;            /* dnssec keys offline-ksk (server/kskbundle.h) */
	uint64_t b_made;        /* the last ceremony's time; 0: none */
	uint64_t b_until;       /* its bundles give fresh signatures until */
	size_t b_slots, b_keysets;
	uint64_t c_done; /* ceremonies tried since the start (asked ones and the start's) */
	char c_err[256]; /* why the last failed; "" when it did not */
};
void keyroll_view_get(const struct keyroll *r, struct keyroll_view *out);

/* Unsigning: the parent servers all answer with no DS for the zone (the
 * probe thread, every poll). */
void keyroll_parent_gone(struct keyroll *r, int gone);
/* 1 once the unsigning removed the DNSSEC records (or is making the
 * version that does): the zone is served unsigned, nothing is signed. */
int keyroll_is_unsigned(const struct keyroll *r);

/* The name of a view's ustage: cds-delete, ds-gone, unsigned ("none"). */
const char *keyroll_ustage_name(int ustage);

/* The name of a view's astage: signed, published, cds, ds-seen, removed
 * ("none" for 0). */
const char *keyroll_astage_name(int astage);
/* The name of a view's kstage: published, ready, ds-seen ("none" for 0). */
const char *keyroll_kstage_name(int kstage);

#endif
