#include "server/zone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
zone_type_is_managed(uint16_t type)
{
	switch (type) {
	case LDNS_RR_TYPE_SOA:
	case LDNS_RR_TYPE_RRSIG:
	case LDNS_RR_TYPE_NSEC:
	case LDNS_RR_TYPE_NSEC3:
	case LDNS_RR_TYPE_NSEC3PARAM:
	case LDNS_RR_TYPE_DNSKEY:
	case LDNS_RR_TYPE_CDS:
	case LDNS_RR_TYPE_CDNSKEY:
	case LDNS_RR_TYPE_ZONEMD:
		return 1;
	default:
		return 0;
	}
}

zd_err
zone_new(const struct zd_zone_config *cfg, struct zone **out, char *err, size_t errlen)
{
	struct zone *z = calloc(1, sizeof *z);
	ldns_rdf *apex = NULL;
	zd_err e = ZD_OK;

	if (z == NULL)
		return ZD_ENOMEM;
	z->cfg = cfg;
	if ((e = store_new(cfg->name, &z->store)) != ZD_OK) {
		snprintf(err, errlen, "zone %s: name does not parse", cfg->name);
		goto out;
	}
	apex = ldns_rdf_clone(store_apex_get(z->store));
	z->config_rrs = ldns_rr_list_new();
	if (apex == NULL || z->config_rrs == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cfg->n_apex; i++) {
		ldns_rr *rr = NULL;
		ldns_status st = ldns_rr_new_frm_str(&rr, cfg->apex[i], cfg->soa_ttl, apex, NULL);
		if (st != LDNS_STATUS_OK) {
			snprintf(err, errlen, "zone %s: apex record '%s': %s", cfg->name,
			         cfg->apex[i], ldns_get_errorstr_by_id(st));
			e = ZD_EMALFORMED;
			goto out;
		}
		ldns_rr2canonical(rr);
		const ldns_rdf *o = ldns_rr_owner(rr);
		if (!(ldns_dname_compare(o, apex) == 0 || ldns_dname_is_subdomain(o, apex)) ||
		    ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
		    zone_type_is_managed((uint16_t)ldns_rr_get_type(rr))) {
			snprintf(err, errlen,
			         "zone %s: apex record '%s' must be class IN, in the zone, and not "
			         "of a type zonedist manages (SOA comes from soa:)",
			         cfg->name, cfg->apex[i]);
			ldns_rr_free(rr);
			e = ZD_EMALFORMED;
			goto out;
		}
		if (!ldns_rr_list_push_rr(z->config_rrs, rr)) { /* the list owns rr */
			ldns_rr_free(rr);
			e = ZD_ENOMEM;
			goto out;
		}
	}
	int apex_ns = 0;
	for (size_t i = 0; i < ldns_rr_list_rr_count(z->config_rrs); i++) {
		ldns_rr *rr = ldns_rr_list_rr(z->config_rrs, i);
		apex_ns |= ldns_rr_get_type(rr) == LDNS_RR_TYPE_NS &&
		           ldns_dname_compare(ldns_rr_owner(rr), apex) == 0;
	}
	if (!apex_ns) {
		snprintf(err, errlen, "zone %s: apex: needs at least one NS record at %s",
		         cfg->name, cfg->name);
		e = ZD_EMALFORMED;
		goto out;
	}
	*out = z;
	z = NULL;
out:
	ldns_rdf_deep_free(apex);
	zone_free(z);
	return e;
}

void
zone_free(struct zone *z)
{
	if (z == NULL)
		return;
	store_free(z->store);
	ldns_rr_list_deep_free(z->config_rrs);
	free(z);
}

zd_err
zone_soa_make(const struct zone *z, uint32_t serial, ldns_rr **out)
{
	char text[1024];
	ldns_rr *rr = NULL;
	const struct zd_zone_config *c = z->cfg;
	int n = snprintf(text, sizeof text, "%s %u IN SOA %s %s %u %u %u %u %u", c->name,
	                 c->soa_ttl, c->soa_mname, c->soa_rname, serial, c->soa_refresh,
	                 c->soa_retry, c->soa_expire, c->soa_minimum);
	if (n < 0 || (size_t)n >= sizeof text)
		return ZD_ELIMIT;
	if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
		return ZD_EMALFORMED;
	ldns_rr2canonical(rr);
	*out = rr;
	return ZD_OK;
}

int
zone_name_is_configured(const struct zone *z, const ldns_rdf *owner)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(z->config_rrs); i++)
		if (ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(z->config_rrs, i)), owner) ==
		    0)
			return 1;
	return 0;
}

zd_err
zone_config_rrs_append(const struct zone *z, const ldns_rdf *owner, ldns_rr_list *out)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(z->config_rrs); i++) {
		ldns_rr *rr = ldns_rr_list_rr(z->config_rrs, i);
		if (ldns_dname_compare(ldns_rr_owner(rr), owner) != 0)
			continue;
		ldns_rr *c = ldns_rr_clone(rr);
		if (c == NULL || !ldns_rr_list_push_rr(out, c)) { /* out owns c */
			ldns_rr_free(c);
			return ZD_ENOMEM;
		}
	}
	return ZD_OK;
}

const uint64_t zone_latency_le_ms[ZONE_LATENCY_BUCKETS - 1] = {
        10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000};

void
zone_latency_observe(struct zone *z, uint64_t ms)
{
	size_t i = 0;
	while (i < ZONE_LATENCY_BUCKETS - 1 && ms > zone_latency_le_ms[i])
		i++;
	atomic_fetch_add(&z->latency_buckets[i], 1);
	atomic_fetch_add(&z->latency_sum_ms, ms);
	atomic_store(&z->last_latency_ms, ms);
	atomic_fetch_add(&z->latency_count, 1);
}
