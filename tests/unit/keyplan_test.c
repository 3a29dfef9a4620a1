/* Unit tests of common/zd_keyplan: the RFC 7583 schedule, each time checked
 * against the formula written out here from the policy's numbers, and the
 * policy's dnssec: keys: parsing and its refusal of lifetimes too short for
 * a roll. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_config.h"
#include "common/zd_keyplan.h"

#define DAY  86400u
#define HOUR 3600u
#define T0   1800000000u /* the current keys' activation */

/* dnskey-ttl 1h, max-ttl 2d, Dprp 1h, DprpP 2h, TTLds 1d, Dreg 3d,
 * safeties 1h; ZSK 30 days, KSK 365 days. */
static struct zd_dnssec_config
policy(void)
{
	struct zd_dnssec_config d = {.enabled = 1, .dnskey_ttl = HOUR, .max_ttl = 2 * DAY};
	d.keys = (struct zd_key_policy){.zsk_lifetime = 30 * DAY,
	                                .ksk_lifetime = 365 * DAY,
	                                .propagation_delay = HOUR,
	                                .parent_propagation_delay = 2 * HOUR,
	                                .ds_ttl = DAY,
	                                .registration_delay = 3 * DAY,
	                                .publish_safety = HOUR,
	                                .retire_safety = HOUR};
	return d;
}

static const struct zd_key_step *
find(const struct zd_key_step *v, size_t n, int ksk, int gen, enum zd_key_event ev)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].ksk == ksk && v[i].gen == gen && v[i].event == ev)
			return &v[i];
	return NULL;
}

static void
zsk_prepublication_follows_rfc7583(void **state)
{
	(void)state;
	struct zd_dnssec_config d = policy();
	struct zd_key_step v[64];
	size_t n = zd_key_plan(&d, T0, T0, T0, T0 + 95 * DAY, v, 64);
	uint64_t ipub = HOUR + HOUR + HOUR;        /* Dprp + TTLkey + safety */
	uint64_t iret = 0 + HOUR + 2 * DAY + HOUR; /* Dsgn + Dprp + TTLsig + safety */
	for (int g = 1; g <= 3; g++) {
		uint64_t act = T0 + (uint64_t)g * 30 * DAY;
		const struct zd_key_step *p = find(v, n, 0, g, ZD_KEY_PUBLISH);
		const struct zd_key_step *a = find(v, n, 0, g, ZD_KEY_ACTIVATE);
		const struct zd_key_step *r = find(v, n, 0, g - 1, ZD_KEY_REMOVE);
		assert_non_null(p);
		assert_non_null(a);
		assert_non_null(r);
		assert_int_equal(p->at, act - ipub);
		assert_int_equal(a->at, act);
		assert_int_equal(r->at, act + iret);
		assert_true(p->why[0] != '\0' && p->formula[0] != '\0');
	}
	/* no KSK step in the first 95 days; nothing of generation 4 (day 120) */
	for (size_t i = 0; i < n; i++) {
		assert_false(v[i].ksk);
		assert_true(v[i].gen <= 3);
		if (i > 0)
			assert_true(v[i - 1].at <= v[i].at);
	}
	assert_int_equal(n, 9);
}

/* The roll in progress, as server/keyroll.c runs it: a late publish moves
 * the activation and every later roll; a retired key leaves Iret after its
 * retirement; a compromised one is replaced without waiting its lifetime. */
static void
zsk_plan_follows_the_roll_in_progress(void **state)
{
	(void)state;
	struct zd_dnssec_config d = policy();
	d.keys.ksk_lifetime = 0;
	uint64_t ipub = 3 * HOUR, iret = 2 * DAY + 2 * HOUR, life = 30 * DAY;
	struct zd_key_step v[32];
	struct zd_ksk_now k0 = {.active = T0};
	/* published 2 days late: activation at Tpub + Ipub, not Tact + L */
	uint64_t late = T0 + life - ipub + 2 * DAY;
	struct zd_zsk_now z = {.active = T0, .published = late};
	size_t n = zd_key_plan_now(&d, &z, &k0, late, late + 70 * DAY, v, 32);
	assert_true(n > 0 && n <= 32);
	const struct zd_key_step *a = find(v, n, 0, 1, ZD_KEY_ACTIVATE);
	assert_non_null(a);
	assert_int_equal(a->at, late + ipub);
	assert_non_null(find(v, n, 0, 0, ZD_KEY_REMOVE));
	assert_int_equal(find(v, n, 0, 0, ZD_KEY_REMOVE)->at, late + ipub + iret);
	assert_null(find(v, n, 0, 1, ZD_KEY_PUBLISH)); /* done */
	assert_non_null(find(v, n, 0, 2, ZD_KEY_ACTIVATE));
	assert_int_equal(find(v, n, 0, 2, ZD_KEY_ACTIVATE)->at, late + ipub + life);
	/* on time: activation at Tact + L */
	z.published = T0 + life - ipub;
	n = zd_key_plan_now(&d, &z, &k0, z.published, z.published + DAY, v, 32);
	assert_int_equal(find(v, n, 0, 1, ZD_KEY_ACTIVATE)->at, T0 + life);
	/* the previous key retired at T0: it leaves at T0 + Iret */
	struct zd_zsk_now r = {.active = T0, .retired = T0};
	n = zd_key_plan_now(&d, &r, &k0, T0, T0 + 40 * DAY, v, 32);
	assert_non_null(find(v, n, 0, -1, ZD_KEY_REMOVE));
	assert_int_equal(find(v, n, 0, -1, ZD_KEY_REMOVE)->at, T0 + iret);
	assert_int_equal(find(v, n, 0, 1, ZD_KEY_ACTIVATE)->at, T0 + life);
	/* compromised at C, 5 days in: publish at C, sign at C + Ipub */
	uint64_t c = T0 + 5 * DAY;
	struct zd_zsk_now k = {.active = T0, .compromised = c};
	n = zd_key_plan_now(&d, &k, &k0, c, c + 40 * DAY, v, 32);
	assert_int_equal(find(v, n, 0, 1, ZD_KEY_PUBLISH)->at, c);
	assert_int_equal(find(v, n, 0, 1, ZD_KEY_ACTIVATE)->at, c + ipub);
	assert_int_equal(find(v, n, 0, 0, ZD_KEY_REMOVE)->at, c + ipub + iret);
	assert_int_equal(find(v, n, 0, 2, ZD_KEY_ACTIVATE)->at, c + ipub + life);
	/* and while a retired ZSK is still there, the replacement waits for it */
	k.retired = T0;
	n = zd_key_plan_now(&d, &k, &k0, c - 4 * DAY, c + 40 * DAY, v, 32);
	uint64_t pub = T0 + iret > c ? T0 + iret : c;
	assert_int_equal(find(v, n, 0, 1, ZD_KEY_PUBLISH)->at, pub);
	for (size_t i = 1; i < n; i++)
		assert_true(v[i - 1].at <= v[i].at);
}

static void
ksk_double_signature_waits_for_ipub_dreg_and_the_ds_ttl(void **state)
{
	(void)state;
	struct zd_dnssec_config d = policy();
	d.keys.zsk_lifetime = 0; /* unlimited: no ZSK step */
	struct zd_key_step v[16];
	size_t n = zd_key_plan(&d, T0, T0, T0, T0 + 400 * DAY, v, 16);
	uint64_t done = T0 + 365 * DAY;
	uint64_t ipub = 3 * HOUR, ipubp = 2 * HOUR + DAY + HOUR, dreg = 3 * DAY;
	assert_int_equal(n, 4);
	assert_int_equal(find(v, n, 1, 1, ZD_KEY_PUBLISH)->at, done - ipub - dreg - ipubp);
	assert_int_equal(find(v, n, 1, 1, ZD_KEY_CDS)->at, done - dreg - ipubp);
	assert_int_equal(find(v, n, 1, 1, ZD_KEY_DS_SEEN)->at, done - ipubp);
	assert_int_equal(find(v, n, 1, 1, ZD_KEY_DS_SETTLED)->at, done);
	assert_int_equal(v[0].event, ZD_KEY_PUBLISH);
	assert_int_equal(v[3].event, ZD_KEY_DS_SETTLED);
}

/* A KSK roll in progress: each stage's remaining steps from the time on
 * record, a DS awaited past Dreg shown as due now, and the next roll's
 * lifetime counted from the expected settling. */
static void
ksk_plan_follows_the_roll_in_progress(void **state)
{
	(void)state;
	struct zd_dnssec_config d = policy();
	d.keys.zsk_lifetime = 0;
	uint64_t ipub = 3 * HOUR, dreg = 3 * DAY, ipubp = 2 * HOUR + DAY + HOUR;
	uint64_t life = 365 * DAY, pub = T0 + 300 * DAY;
	struct zd_zsk_now z = {.active = T0};
	struct zd_ksk_now k = {.active = T0, .stage = ZD_KSK_PUBLISHED, .stage_at = pub};
	struct zd_key_step v[32];
	size_t n = zd_key_plan_now(&d, &z, &k, pub, pub + 400 * DAY, v, 32);
	assert_null(find(v, n, 1, 1, ZD_KEY_PUBLISH)); /* made */
	assert_int_equal(find(v, n, 1, 1, ZD_KEY_CDS)->at, pub + ipub);
	assert_int_equal(find(v, n, 1, 1, ZD_KEY_DS_SEEN)->at, pub + ipub + dreg);
	uint64_t done = pub + ipub + dreg + ipubp;
	assert_int_equal(find(v, n, 1, 1, ZD_KEY_DS_SETTLED)->at, done);
	assert_int_equal(find(v, n, 1, 2, ZD_KEY_DS_SETTLED)->at, done + life);
	/* the CDS out at C, the DS awaited 5 days later: due now, then IpubP */
	uint64_t c = pub + ipub, now = c + 5 * DAY;
	k.stage = ZD_KSK_READY;
	k.stage_at = c;
	n = zd_key_plan_now(&d, &z, &k, now, now + 30 * DAY, v, 32);
	assert_null(find(v, n, 1, 1, ZD_KEY_CDS));
	assert_int_equal(find(v, n, 1, 1, ZD_KEY_DS_SEEN)->at, now);
	assert_int_equal(find(v, n, 1, 1, ZD_KEY_DS_SETTLED)->at, now + ipubp);
	/* seen at S: the old KSK goes at S + IpubP */
	k.stage = ZD_KSK_SEEN;
	k.stage_at = now;
	n = zd_key_plan_now(&d, &z, &k, now, now + 30 * DAY, v, 32);
	assert_null(find(v, n, 1, 1, ZD_KEY_DS_SEEN));
	assert_int_equal(find(v, n, 1, 1, ZD_KEY_DS_SETTLED)->at, now + ipubp);
	assert_int_equal(n, 1);
}

static void
window_and_cap_are_honoured(void **state)
{
	(void)state;
	struct zd_dnssec_config d = policy();
	struct zd_key_step v[4];
	/* ten years later: only the steps of the window, starting at the right
	 * generation */
	uint64_t from = T0 + 3650ull * DAY;
	size_t n = zd_key_plan(&d, T0, T0, from, from + 31 * DAY, v, 4);
	assert_true(n >= 3 && n <= 5);
	for (size_t i = 0; i < (n < 4 ? n : 4); i++) {
		assert_true(v[i].at >= from && v[i].at < from + 31 * DAY);
		if (!v[i].ksk && v[i].event == ZD_KEY_ACTIVATE)
			assert_int_equal((v[i].at - T0) % (30 * DAY), 0);
	}
	/* a long window is cut at cap + 1 per role */
	n = zd_key_plan(&d, T0, T0, T0, T0 + 3650ull * DAY, v, 4);
	assert_true(n > 4);
	assert_int_equal(v[0].at, T0 + 30 * DAY - 3 * HOUR);
}

static void
config_parses_the_key_policy_and_refuses_short_lifetimes(void **state)
{
	(void)state;
	static const char head[] = "database: x\nhsm: {token-label: zonedist, pin-env: ZD_PIN}\n"
	                           "zones:\n  - name: tld.\n"
	                           "    soa: {mname: a.tld., rname: h.tld., refresh: 7200}\n";
	char text[1024], err[512];
	struct zd_config *c = NULL;
	snprintf(text, sizeof text, "%s%s", head,
	         "    dnssec: {keys: {zsk-lifetime: 60d, ksk-lifetime: unlimited, ds-ttl: 2h,"
	         " registration-delay: 1d}}\n");
	assert_int_equal(zd_config_parse(text, strlen(text), &c, err, sizeof err), ZD_OK);
	const struct zd_key_policy *k = &c->zones[0].dnssec.keys;
	assert_int_equal(k->zsk_lifetime, 60 * DAY);
	assert_int_equal(k->ksk_lifetime, 0);
	assert_int_equal(k->ds_ttl, 2 * HOUR);
	assert_int_equal(k->propagation_delay, 7200); /* default: soa refresh */
	assert_int_equal(k->publish_safety, HOUR);
	zd_config_free(c);
	c = NULL;

	snprintf(text, sizeof text, "%s%s", head, "    dnssec: {keys: {zsk-lifetime: 1d}}\n");
	assert_int_equal(zd_config_parse(text, strlen(text), &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "zsk-lifetime must be at least Ipub + Iret"));
	snprintf(text, sizeof text, "%s%s", head,
	         "    dnssec: {keys: {ksk-lifetime: 2d, registration-delay: 3d}}\n");
	assert_int_equal(zd_config_parse(text, strlen(text), &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "ksk-lifetime must be at least"));
	snprintf(text, sizeof text, "%s%s", head, "    dnssec: {keys: {zsk-lifetim: 30d}}\n");
	assert_int_equal(zd_config_parse(text, strlen(text), &c, err, sizeof err), ZD_EMALFORMED);
	assert_non_null(strstr(err, "unknown dnssec keys setting 'zsk-lifetim'"));
	assert_null(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(zsk_prepublication_follows_rfc7583),
	        cmocka_unit_test(zsk_plan_follows_the_roll_in_progress),
	        cmocka_unit_test(ksk_double_signature_waits_for_ipub_dreg_and_the_ds_ttl),
	        cmocka_unit_test(ksk_plan_follows_the_roll_in_progress),
	        cmocka_unit_test(window_and_cap_are_honoured),
	        cmocka_unit_test(config_parses_the_key_policy_and_refuses_short_lifetimes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
