#include "integrity-check/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/zd_log.h"
#include "integrity-check/diff.h"

const char *
check_state_name(enum check_state s)
{
	switch (s) {
	case CHECK_IN_SYNC:
		return "in_sync";
	case CHECK_LAGGING:
		return "lagging";
	case CHECK_DIVERGED:
		return "diverged";
	case CHECK_UNREACHABLE:
		return "unreachable";
	case CHECK_ERROR:
		return "error";
	}
	return "error";
}

const char *
check_severity_name(int severity)
{
	return severity == 0 ? "ok" : severity == 1 ? "warning" : "critical";
}

static uint64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- zonedistd's version, streamed as a master file ------------------ */

struct text_load {
	struct zoneset *zs;
	ldns_rdf *origin;
	uint64_t lines;
	char *why;
	size_t whylen;
};

static zd_err
text_line(void *arg, const char *line, size_t len)
{
	struct text_load *t = arg;
	ldns_rr *rr = NULL;
	ldns_status st;
	zd_err e;

	t->lines++;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	if (len == 0 || *line == ';')
		return ZD_OK;
	st = ldns_rr_new_frm_str(&rr, line, 0, t->origin, NULL);
	if (st != LDNS_STATUS_OK) {
		snprintf(t->why, t->whylen, "zonedistd's zone text, line %llu: %s",
		         (unsigned long long)t->lines, ldns_get_errorstr_by_id(st));
		return ZD_EMALFORMED;
	}
	e = zoneset_rr_add(t->zs, rr);
	ldns_rr_free(rr);
	if (e == ZD_ELIMIT)
		snprintf(t->why, t->whylen,
		         "zonedistd's version is larger than the transfer limit");
	return e;
}

static zd_err
version_fetch(const struct check_opts *o, const char *zone_esc, uint32_t serial,
              const ldns_rdf *apex, size_t max_bytes, struct zoneset **out, char *why,
              size_t whylen)
{
	char path[800];
	struct text_load t = {.why = why, .whylen = whylen};
	int status = 0;
	zd_err e;

	snprintf(path, sizeof path, "/api/v1/zones/%s/zone?serial=%u", zone_esc, serial);
	if ((e = zoneset_new(apex, max_bytes, &t.zs)) != ZD_OK)
		return e;
	t.origin = ldns_rdf_clone(apex);
	e = api_client_get_lines(&o->api, path, &status, text_line, &t, why, whylen);
	if (e == ZD_OK && status != 200) {
		snprintf(why, whylen, "zonedistd answered %d to %s", status, path);
		e = ZD_ENOTFOUND;
	}
	if (e == ZD_OK)
		e = zoneset_finish(t.zs);
	ldns_rdf_deep_free(t.origin);
	if (e != ZD_OK) {
		zoneset_free(t.zs);
		return e;
	}
	*out = t.zs;
	return ZD_OK;
}

/* --- report parts ------------------------------------------------------ */

static void
type_str(uint16_t type, char *out, size_t outlen)
{
	char *t = ldns_rr_type2str((ldns_rr_type)type);
	snprintf(out, outlen, "%s", t ? t : "?");
	free(t);
}

static json_t *
diff_json(const struct diff *d)
{
	json_t *sets = json_array();
	for (size_t i = 0; sets && i < d->n_rrsets; i++) {
		const struct diff_rrset *s = &d->rrsets[i];
		char tbuf[32];
		type_str(s->type, tbuf, sizeof tbuf);
		json_t *m = json_array(), *x = json_array();
		for (size_t k = 0; k < s->n_missing; k++)
			json_array_append_new(m, json_string(s->missing[k]));
		for (size_t k = 0; k < s->n_extra; k++)
			json_array_append_new(x, json_string(s->extra[k]));
		json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:I,s:I}", "owner", s->owner, "type", tbuf,
		                      "missing", m, "extra", x, "missing_total",
		                      (json_int_t)s->missing_total, "extra_total",
		                      (json_int_t)s->extra_total);
		if (o && s->covered) {
			type_str(s->covered, tbuf, sizeof tbuf);
			json_object_set_new(o, "covered", json_string(tbuf));
		}
		json_array_append_new(sets, o);
	}
	return json_pack("{s:I,s:I,s:I,s:b,s:o}", "rrsets_total", (json_int_t)d->rrsets_total,
	                 "missing_total", (json_int_t)d->missing_total, "extra_total",
	                 (json_int_t)d->extra_total, "truncated", d->rrsets_total > d->n_rrsets,
	                 "rrsets", sets);
}

static json_t *
dnssec_json(const struct dnssec_report *r)
{
	json_t *probs = json_array();
	for (size_t i = 0; probs && i < r->n_problems; i++) {
		const struct dnssec_problem *p = &r->problems[i];
		char tbuf[32];
		type_str(p->type, tbuf, sizeof tbuf);
		json_array_append_new(probs, json_pack("{s:s,s:s,s:s,s:s}", "severity",
		                                       check_severity_name(p->severity), "owner",
		                                       p->owner ? p->owner : "", "type", tbuf,
		                                       "what", p->what ? p->what : ""));
	}
	json_t *o = json_pack("{s:b,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "signed",
	                      r->is_signed, "severity", check_severity_name(r->severity), "rrsigs",
	                      (json_int_t)r->rrsigs, "rrsigs_valid", (json_int_t)r->rrsigs_valid,
	                      "bogus", (json_int_t)r->bogus, "expired", (json_int_t)r->expired,
	                      "expiring", (json_int_t)r->expiring, "unsigned_rrsets",
	                      (json_int_t)r->unsigned_rrsets, "chain_errors",
	                      (json_int_t)r->chain_errors, "ds_errors", (json_int_t)r->ds_errors,
	                      "problems_total", (json_int_t)r->problems_total, "problems", probs);
	if (o && r->min_remaining != INT64_MAX)
		json_object_set_new(o, "min_remaining_seconds", json_integer(r->min_remaining));
	return o;
}

static int
max_sev(int a, int b)
{
	return a > b ? a : b;
}

/* --- the check ----------------------------------------------------------- */

zd_err
check_secondary(const struct check_opts *o, const struct check_target *t, json_t **out)
{
	char why[1024] = "", msg[2048] = "", zone_esc[600], path[700], hex[2 * ZD_ZONEMD_LEN + 1];
	uint64_t t0 = zd_now_ms(), t_axfr = 0, t_digest = 0, bytes = 0;
	ldns_rdf *apex = NULL;
	struct zoneset *got = NULL, *want = NULL;
	uint8_t digest[ZD_ZONEMD_LEN];
	uint32_t soa_serial = 0, serial = 0;
	enum check_state state = CHECK_ERROR;
	int severity = 2, have_serial = 0, status = 0;
	json_t *r = json_object(), *zd = NULL;
	char *body = NULL;
	size_t blen = 0;
	zd_err e;

	if (r == NULL)
		return ZD_ENOMEM;
	json_object_set_new(r, "secondary", json_string(t->name));
	json_object_set_new(r, "zone", json_string(o->zone));
	if (ldns_str2rdf_dname(&apex, o->zone) != LDNS_STATUS_OK ||
	    api_client_escape(o->zone, zone_esc, sizeof zone_esc) != ZD_OK) {
		snprintf(msg, sizeof msg, "the zone name %s does not parse", o->zone);
		goto done;
	}
	ldns_dname2canonical(apex);

	/* 1. Is it there at all? */
	e = xfrin_soa_serial(&t->peer, apex, &soa_serial, why, sizeof why);
	if (e == ZD_EIO) {
		state = CHECK_UNREACHABLE;
		snprintf(msg, sizeof msg, "unreachable: %s", why);
		goto done;
	}
	if (e != ZD_OK) {
		snprintf(msg, sizeof msg, "does not serve the zone: %s", why);
		goto done;
	}
	json_object_set_new(r, "soa_serial", json_integer(soa_serial));

	/* 2. What it serves, and under which serial (the AXFR's own SOA: the
	 * secondary may have moved on since the SOA query). */
	/* A secondary that answered its SOA but drops a transfer may be busy:
	 * NSD ends the transfers in progress each time it reloads a new serial,
	 * and one that reloads after every transfer (xfrd-reload-timeout 0) in
	 * a zone that changes several times a second drops most of them. Try
	 * again, waiting longer each time (0.2, 0.5, 1, 2 s), before calling it
	 * unreachable. */
	static const useconds_t axfr_wait_us[] = {200000, 500000, 1000000, 2000000};
	int attempts = 0;
	for (;;) {
		e = xfrin_axfr(&t->peer, apex, &got, &bytes, why, sizeof why);
		if (e != ZD_EIO || attempts == (int)(sizeof axfr_wait_us / sizeof axfr_wait_us[0]))
			break;
		usleep(axfr_wait_us[attempts++]);
	}
	attempts++;
	json_object_set_new(r, "axfr_attempts", json_integer(attempts));
	t_axfr = zd_now_ms() - t0;
	if (e != ZD_OK) {
		state = e == ZD_EIO ? CHECK_UNREACHABLE : CHECK_ERROR;
		snprintf(msg, sizeof msg, "%s: %s (%d attempts)",
		         e == ZD_EIO ? "unreachable" : "the transfer failed", why, attempts);
		goto done;
	}
	if (zoneset_serial_get(got, &serial) != ZD_OK) {
		state = CHECK_DIVERGED;
		snprintf(msg, sizeof msg, "its AXFR has no SOA at the apex");
		goto done;
	}
	have_serial = 1;
	json_object_set_new(r, "records", json_integer((json_int_t)got->n));
	json_object_set_new(r, "transfer_bytes", json_integer((json_int_t)bytes));
	if ((e = zoneset_digest(got, digest)) != ZD_OK)
		goto oom;
	zd_hex_encode(digest, sizeof digest, hex);
	json_object_set_new(r, "digest", json_string(hex));

	/* 3. zonedistd's digest of the same serial. */
	snprintf(path, sizeof path, "/api/v1/zones/%s/digest?serial=%u", zone_esc, serial);
	uint64_t td = zd_now_ms();
	e = api_client_get(&o->api, path, &status, &body, &blen, why, sizeof why);
	t_digest = zd_now_ms() - td;
	if (e != ZD_OK) {
		severity = 1;
		snprintf(msg, sizeof msg, "cannot be judged: %s", why);
		goto dnssec;
	}
	json_error_t jerr;
	zd = json_loadb(body, blen, 0, &jerr);
	if (status == 404 && zd && json_object_get(zd, "serial")) {
		state = CHECK_DIVERGED;
		snprintf(msg, sizeof msg,
		         "diverged: serves serial %u, which zonedistd does not have (never "
		         "published, or older than the history it keeps in memory)",
		         serial);
		goto dnssec;
	}
	const char *zd_digest = zd ? json_string_value(json_object_get(zd, "digest")) : NULL;
	if (status != 200 || zd_digest == NULL) {
		severity = 1;
		snprintf(msg, sizeof msg, "cannot be judged: zonedistd answered %d to %s", status,
		         path);
		goto dnssec;
	}
	json_int_t latest = json_integer_value(json_object_get(zd, "latest_serial"));
	json_int_t behind = json_integer_value(json_object_get(zd, "versions_after"));
	json_int_t superseded = json_integer_value(json_object_get(zd, "superseded_ms"));
	json_object_set_new(r, "latest_serial", json_integer(latest));
	json_object_set_new(r, "zonedistd_digest", json_string(zd_digest));
	int digest_equal = strcmp(zd_digest, hex) == 0;
	json_object_set_new(r, "compared_by",
	                    json_string(digest_equal && !o->full ? "digest" : "records"));

	/* 4. Only a mismatch (or --full) pulls the whole version. */
	if (!digest_equal || o->full) {
		struct diff d;
		e = version_fetch(o, zone_esc, serial, apex, got->bytes.cap, &want, why,
		                  sizeof why);
		if (e == ZD_ENOMEM)
			goto oom;
		if (e != ZD_OK) {
			severity = 1;
			if (!digest_equal) {
				state = CHECK_DIVERGED;
				severity = 2;
			}
			snprintf(msg, sizeof msg,
			         "%sthe records of serial %u could not be read from "
			         "zonedistd: %s",
			         digest_equal ? "" : "digest differs; ", serial, why);
			goto dnssec;
		}
		if ((e = diff_zonesets(want, got, o->max_rrsets, o->max_records, &d)) != ZD_OK)
			goto oom;
		json_object_set_new(r, "differences", diff_json(&d));
		if (d.rrsets_total > 0) {
			state = CHECK_DIVERGED;
			snprintf(msg, sizeof msg,
			         "diverged at serial %u: %llu RRsets differ (%llu records missing, "
			         "%llu extra)",
			         serial, (unsigned long long)d.rrsets_total,
			         (unsigned long long)d.missing_total,
			         (unsigned long long)d.extra_total);
			diff_clear(&d);
			goto dnssec;
		}
		diff_clear(&d);
		if (!digest_equal) { /* cannot be: the digest covers exactly these records */
			state = CHECK_ERROR;
			snprintf(msg, sizeof msg,
			         "the digests differ but the records do not (a "
			         "digest bug): serial %u",
			         serial);
			goto dnssec;
		}
	}
	if (behind <= 0) {
		state = CHECK_IN_SYNC;
		severity = 0;
		snprintf(msg, sizeof msg, "in sync at serial %u", serial);
	} else {
		int64_t late_s =
		        superseded > 0 ? (int64_t)(wall_ms() - (uint64_t)superseded) / 1000 : 0;
		if (late_s < 0)
			late_s = 0;
		state = CHECK_LAGGING;
		severity = o->lag_crit_s && late_s > o->lag_crit_s   ? 2
		           : o->lag_warn_s && late_s > o->lag_warn_s ? 1
		                                                     : 0;
		json_object_set_new(r, "versions_behind", json_integer(behind));
		json_object_set_new(r, "behind_seconds", json_integer(late_s));
		snprintf(msg, sizeof msg,
		         "lagging but correct: serial %u, %lld versions behind %lld (behind for "
		         "%lld s)",
		         serial, (long long)behind, (long long)latest, (long long)late_s);
	}
dnssec:;
	/* 5. What the secondary serves must validate, whatever zonedistd says. */
	struct dnssec_report dr;
	e = dnssec_zone_check(got, &o->dnssec, &dr);
	if (e == ZD_ENOMEM)
		goto oom;
	if (e == ZD_OK) {
		json_object_set_new(r, "dnssec", dnssec_json(&dr));
		if (dr.severity > 0) {
			size_t l = strlen(msg);
			snprintf(msg + l, sizeof msg - l, "; DNSSEC %s: %llu problems%s%s",
			         check_severity_name((int)dr.severity),
			         (unsigned long long)dr.problems_total,
			         dr.n_problems ? ", first: " : "",
			         dr.n_problems ? dr.problems[0].what : "");
		}
		severity = max_sev(state == CHECK_DIVERGED ? 2 : severity, (int)dr.severity);
		dnssec_report_clear(&dr);
	} else {
		severity = 2;
		size_t l = strlen(msg);
		snprintf(msg + l, sizeof msg - l, "; the DNSSEC check failed: %s", zd_strerror(e));
	}
	goto finish;
done:
	if (state == CHECK_DIVERGED || state == CHECK_UNREACHABLE)
		severity = 2;
finish:
	if (state == CHECK_DIVERGED)
		severity = 2;
	json_object_set_new(r, "state", json_string(check_state_name(state)));
	json_object_set_new(r, "severity", json_integer(severity));
	json_object_set_new(r, "message", json_string(msg));
	json_object_set_new(r, "serial", have_serial ? json_integer(serial) : json_null());
	json_object_set_new(r, "elapsed_ms", json_integer((json_int_t)(zd_now_ms() - t0)));
	json_object_set_new(r, "axfr_ms", json_integer((json_int_t)t_axfr));
	json_object_set_new(r, "digest_ms", json_integer((json_int_t)t_digest));
	json_object_set_new(r, "checked_at_ms", json_integer((json_int_t)wall_ms()));
	json_decref(zd);
	free(body);
	zoneset_free(got);
	zoneset_free(want);
	ldns_rdf_deep_free(apex);
	*out = r;
	return ZD_OK;
oom:
	json_decref(zd);
	json_decref(r);
	free(body);
	zoneset_free(got);
	zoneset_free(want);
	ldns_rdf_deep_free(apex);
	return ZD_ENOMEM;
}
