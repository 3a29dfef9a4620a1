/* tests/fuzz/check_zone_fuzz.c -- libFuzzer target for what zonedist-check
 * does with the records a secondary sends: the input is a sequence of DNS
 * messages, each preceded by its length (u16, network order, as over TCP);
 * the answer records of those that parse make the zone "tld.", which is
 * sorted (zoneset), digested (ZONEMD), compared with a fixed zone and with
 * itself (diff), and DNSSEC-checked (dnssec_zone_check).
 * Checked: no crash, leak or zd_check_failed(); the digest is the same when
 * computed twice; a zone compared with itself has no difference; every
 * record of the fixed zone that the input lacks is reported missing. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "integrity-check/diff.h"
#include "integrity-check/dnssec.h"
#include "integrity-check/zoneset.h"
#include "tests/fuzz/fuzz_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fixed[] = {
        "tld. 300 IN SOA a.nic.tld. hostmaster.nic.tld. 1 60 10 1209600 300",
        "tld. 300 IN NS a.nic.tld.",
        "a.nic.tld. 300 IN A 192.0.2.53",
        "d1.tld. 86400 IN NS ns.d1.tld.",
        "ns.d1.tld. 86400 IN A 192.0.2.1",
};

static void
fail(const char *what)
{
	fprintf(stderr, "check_zone_fuzz: %s\n", what);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ldns_rdf *apex = NULL;
	struct zoneset *zs = NULL, *base = NULL;
	size_t pos = 0;

	static int inited;
	if (!inited) {
		fuzz_log_init(ZD_LOG_DEBUG);
		inited = 1;
	}
	if (ldns_str2rdf_dname(&apex, "tld.") != LDNS_STATUS_OK ||
	    zoneset_new(apex, 1 << 22, &zs) != ZD_OK || zoneset_new(apex, 1 << 20, &base) != ZD_OK)
		fail("set-up");
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		ldns_rr *rr = NULL;
		if (ldns_rr_new_frm_str(&rr, fixed[i], 0, NULL, NULL) != LDNS_STATUS_OK ||
		    zoneset_rr_add(base, rr) != ZD_OK)
			fail(fixed[i]);
		ldns_rr_free(rr);
	}
	while (size - pos >= 2) {
		size_t len = ((size_t)data[pos] << 8) | data[pos + 1];
		pos += 2;
		if (len > size - pos)
			len = size - pos;
		ldns_pkt *pkt = NULL;
		if (ldns_wire2pkt(&pkt, data + pos, len) == LDNS_STATUS_OK) {
			ldns_rr_list *an = ldns_pkt_answer(pkt);
			for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++)
				if (zoneset_rr_add(zs, ldns_rr_list_rr(an, i)) == ZD_ELIMIT)
					break;
		}
		ldns_pkt_free(pkt);
		pos += len;
	}
	if (zoneset_finish(zs) != ZD_OK || zoneset_finish(base) != ZD_OK)
		fail("finish");

	uint8_t d1[ZD_ZONEMD_LEN], d2[ZD_ZONEMD_LEN];
	if (zoneset_digest(zs, d1) != ZD_OK || zoneset_digest(zs, d2) != ZD_OK ||
	    memcmp(d1, d2, sizeof d1) != 0)
		fail("digest not deterministic");

	struct diff d;
	if (diff_zonesets(zs, zs, 10, 10, &d) != ZD_OK || d.rrsets_total != 0)
		fail("a zone differs from itself");
	diff_clear(&d);
	if (diff_zonesets(base, zs, 10, 10, &d) != ZD_OK)
		fail("diff");
	size_t absent = 0;
	for (size_t i = 0; i < base->n; i++) {
		int found = 0;
		for (size_t j = 0; j < zs->n && !found; j++)
			found = zd_crr_cmp(&base->rrs[i], &zs->rrs[j]) == 0 &&
			        zd_crr_ttl_get(&base->rrs[i]) == zd_crr_ttl_get(&zs->rrs[j]);
		absent += !found;
	}
	if (d.missing_total != absent)
		fail("missing records miscounted");
	diff_clear(&d);

	struct dnssec_check_opts o = {
	        .now = 1796300000u, .warn_seconds = 86400, .max_problems = 5, .threads = 1};
	struct dnssec_report r;
	zd_err e = dnssec_zone_check(zs, &o, &r);
	if (e == ZD_OK)
		dnssec_report_clear(&r);
	else if (e != ZD_ENOMEM)
		fail("dnssec_zone_check failed on a readable zone");
	zoneset_free(zs);
	zoneset_free(base);
	ldns_rdf_deep_free(apex);
	fuzz_log_check();
	return 0;
}
