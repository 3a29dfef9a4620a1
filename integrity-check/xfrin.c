#include "integrity-check/xfrin.h"

#include <stdio.h>
#include <string.h>

#include "common/zd_log.h"

static zd_err
resolver_new(const struct xfrin_peer *p, ldns_resolver **out, char *why, size_t whylen)
{
	ldns_resolver *r = ldns_resolver_new();
	uint16_t port = 0;
	ldns_rdf *ns = NULL;
	struct timeval tv = {p->timeout_ms / 1000, (p->timeout_ms % 1000) * 1000};

	if (r == NULL)
		return ZD_ENOMEM;
	ns = ldns_sockaddr_storage2rdf(&p->addr, &port);
	if (ns == NULL || ldns_resolver_push_nameserver(r, ns) != LDNS_STATUS_OK) {
		snprintf(why, whylen, "the secondary's address is not IPv4 or IPv6");
		ldns_rdf_deep_free(ns);
		ldns_resolver_deep_free(r);
		return ZD_EMALFORMED;
	}
	ldns_rdf_deep_free(ns);
	ldns_resolver_set_port(r, port);
	ldns_resolver_set_timeout(r, tv);
	ldns_resolver_set_retry(r, 2);
	ldns_resolver_set_recursive(r, false);
	ldns_resolver_set_dnssec(r, false);
	ldns_resolver_set_edns_udp_size(r, 1232);
	if (p->key_name != NULL) {
		ldns_resolver_set_tsig_keyname(r, p->key_name);
		ldns_resolver_set_tsig_algorithm(r, p->key_alg ? p->key_alg : "hmac-sha256.");
		ldns_resolver_set_tsig_keydata(r, p->key_secret);
	}
	*out = r;
	return ZD_OK;
}

zd_err
xfrin_soa_serial(const struct xfrin_peer *p, const ldns_rdf *zone, uint32_t *serial, char *why,
                 size_t whylen)
{
	ldns_resolver *r = NULL;
	ldns_pkt *pkt = NULL;
	ldns_rr_list *soa = NULL;
	ldns_status st;
	zd_err e;

	if ((e = resolver_new(p, &r, why, whylen)) != ZD_OK)
		return e;
	st = ldns_resolver_send(&pkt, r, zone, LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, 0);
	if (st != LDNS_STATUS_OK || pkt == NULL) {
		snprintf(why, whylen, "no answer to a SOA query: %s", ldns_get_errorstr_by_id(st));
		e = ZD_EIO;
		goto out;
	}
	soa = ldns_pkt_rr_list_by_name_and_type(pkt, zone, LDNS_RR_TYPE_SOA, LDNS_SECTION_ANSWER);
	if (ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NOERROR || soa == NULL ||
	    ldns_rr_list_rr_count(soa) != 1 || ldns_rr_rd_count(ldns_rr_list_rr(soa, 0)) != 7) {
		ldns_lookup_table *rc =
		        ldns_lookup_by_id(ldns_rcodes, (int)ldns_pkt_get_rcode(pkt));
		snprintf(why, whylen, "the SOA query got %s and no SOA of the zone",
		         rc ? rc->name : "an unknown rcode");
		e = ZD_EMALFORMED;
		goto out;
	}
	*serial = ldns_rdf2native_int32(ldns_rr_rdf(ldns_rr_list_rr(soa, 0), 2));
	e = ZD_OK;
out:
	ldns_rr_list_deep_free(soa);
	ldns_pkt_free(pkt);
	ldns_resolver_deep_free(r);
	return e;
}

zd_err
xfrin_axfr(const struct xfrin_peer *p, const ldns_rdf *zone, struct zoneset **out, uint64_t *bytes,
           char *why, size_t whylen)
{
	ldns_resolver *r = NULL;
	struct zoneset *zs = NULL;
	const ldns_pkt *last = NULL;
	uint64_t start = zd_now_ms(), got = 0, n = 0;
	ldns_status st;
	zd_err e;

	if ((e = resolver_new(p, &r, why, whylen)) != ZD_OK)
		return e;
	if ((e = zoneset_new(zone, p->max_bytes, &zs)) != ZD_OK)
		goto out;
	st = ldns_axfr_start(r, zone, LDNS_RR_CLASS_IN);
	if (st != LDNS_STATUS_OK) {
		snprintf(why, whylen, "AXFR could not start: %s", ldns_get_errorstr_by_id(st));
		e = ZD_EIO;
		goto out;
	}
	for (;;) {
		ldns_rr *rr = ldns_axfr_next(r);
		const ldns_pkt *pkt = ldns_axfr_last_pkt(r);
		if (pkt != NULL && pkt != last) {
			got += ldns_pkt_size(pkt);
			last = pkt;
		}
		if (rr == NULL) {
			if (ldns_axfr_complete(r))
				break;
			ldns_lookup_table *rc =
			        pkt ? ldns_lookup_by_id(ldns_rcodes, (int)ldns_pkt_get_rcode(pkt))
			            : NULL;
			snprintf(why, whylen,
			         "AXFR ended after %llu records without its closing SOA%s%s",
			         (unsigned long long)n, rc && rc->id != 0 ? ": " : "",
			         rc && rc->id != 0 ? rc->name : "");
			e = n == 0 && rc && rc->id != 0 ? ZD_EMALFORMED : ZD_EIO;
			goto out;
		}
		e = zoneset_rr_add(zs, rr);
		ldns_rr_free(rr);
		n++;
		if (e == ZD_ELIMIT) {
			snprintf(why, whylen,
			         "the zone is larger than the transfer limit (%zu bytes)",
			         p->max_bytes);
			goto out;
		}
		if (e != ZD_OK) {
			snprintf(why, whylen, "record %llu of the AXFR: %s", (unsigned long long)n,
			         zd_strerror(e));
			goto out;
		}
		if (ldns_axfr_complete(r))
			break;
		if ((n & 1023) == 0 && zd_now_ms() - start > p->deadline_ms) {
			snprintf(why, whylen, "AXFR took longer than %u ms (%llu records read)",
			         p->deadline_ms, (unsigned long long)n);
			e = ZD_EIO;
			goto out;
		}
	}
	if ((e = zoneset_finish(zs)) != ZD_OK)
		goto out;
	*out = zs;
	*bytes = got;
	zs = NULL;
out:
	if (r != NULL && !ldns_axfr_complete(r))
		ldns_axfr_abort(r);
	zoneset_free(zs);
	ldns_resolver_deep_free(r);
	return e;
}
