#include "server/status_page.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/zd_config.h"

/* Publication latency thresholds (docs/API.md, "Status page"). */
#define LATENCY_GREEN_MS  5000
#define LATENCY_YELLOW_MS 30000

#define TEXT 512

struct page {
	struct evbuffer *b;
	int err; /* an append failed: the page is incomplete */
};

__attribute__((format(printf, 2, 3))) static void
put(struct page *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (evbuffer_add_vprintf(p->b, fmt, ap) < 0)
		p->err = 1;
	va_end(ap);
}

/* Text escaped for HTML content and attribute values. */
static void
esc(struct page *p, const char *s)
{
	for (; s && *s; s++) {
		const char *e = NULL;
		switch (*s) {
		case '&':
			e = "&amp;";
			break;
		case '<':
			e = "&lt;";
			break;
		case '>':
			e = "&gt;";
			break;
		case '"':
			e = "&quot;";
			break;
		case '\'':
			e = "&#39;";
			break;
		}
		if ((e ? evbuffer_add(p->b, e, strlen(e)) : evbuffer_add(p->b, s, 1)) != 0)
			p->err = 1;
	}
}

/* --- reading the status document, trusting no shape ---------------------- */

static const char *
str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* 1 and *v when o[k] is an integer */
static int
num(const json_t *o, const char *k, json_int_t *v)
{
	const json_t *x = json_object_get(o, k);
	if (!json_is_integer(x))
		return 0;
	*v = json_integer_value(x);
	return 1;
}

/* "3d 4h", "12 min", "5 s" */
static void
duration(json_int_t s, char *out, size_t cap)
{
	const char *sign = s < 0 ? "-" : "";
	if (s < 0)
		s = -s;
	if (s >= 86400)
		snprintf(out, cap, "%s%" JSON_INTEGER_FORMAT "d %" JSON_INTEGER_FORMAT "h", sign,
		         s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, cap, "%s%" JSON_INTEGER_FORMAT "h %" JSON_INTEGER_FORMAT " min", sign,
		         s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, cap, "%s%" JSON_INTEGER_FORMAT " min", sign, s / 60);
	else
		snprintf(out, cap, "%s%" JSON_INTEGER_FORMAT " s", sign, s);
}

/* --- bars ------------------------------------------------------------------ */

struct bar {
	const char *color; /* green, yellow, red, grey */
	char label[TEXT];  /* shown */
	char why[TEXT];    /* title= */
};

__attribute__((format(printf, 3, 4))) static void
set(struct bar *x, const char *color, const char *label_fmt, ...)
{
	va_list ap;
	x->color = color;
	va_start(ap, label_fmt);
	vsnprintf(x->label, sizeof x->label, label_fmt, ap);
	va_end(ap);
}

static void
bar_out(struct page *p, const char *kind, const char *secondary, const struct bar *x)
{
	put(p, "<span class=\"bar %s\" data-bar=\"%s\"", x->color, kind);
	if (secondary) {
		put(p, " data-secondary=\"");
		esc(p, secondary);
		put(p, "\"");
	}
	put(p, " title=\"");
	esc(p, x->why);
	put(p, "\"><b>%s</b> ", kind);
	esc(p, x->label);
	put(p, "</span>");
}

static void
latency_bar(const json_t *z, struct bar *x)
{
	json_int_t ms = 0, pending = 0;
	const char *held = str(z, "held");
	int has_pending = num(z, "pending_changes", &pending);
	if (strcmp(held, "sanity") == 0) {
		set(x, "red", "held by the sanity limits");
		snprintf(x->why, sizeof x->why,
		         "nothing is published: %s; release with zonedistctl release ZONE",
		         str(z, "held_reason"));
	} else if (strcmp(held, "operator") == 0) {
		set(x, "yellow", "held by %s", str(z, "held_by"));
		snprintf(x->why, sizeof x->why, "held by an operator (%s): %s", str(z, "held_by"),
		         str(z, "held_reason"));
	} else if (!num(z, "last_latency_ms", &ms)) {
		set(x, "grey", "no change published yet");
		snprintf(x->why, sizeof x->why,
		         "no registry change has been published since start");
	} else {
		set(x,
		    ms <= LATENCY_GREEN_MS    ? "green"
		    : ms <= LATENCY_YELLOW_MS ? "yellow"
		                              : "red",
		    "%" JSON_INTEGER_FORMAT " ms", ms);
		snprintf(
		        x->why, sizeof x->why,
		        "registry commit to published serial of the last batch (green up to %d ms, "
		        "yellow up to %d ms)",
		        LATENCY_GREEN_MS, LATENCY_YELLOW_MS);
	}
	if (has_pending && pending > 0) {
		size_t n = strlen(x->label);
		snprintf(x->label + n, sizeof x->label - n, ", %" JSON_INTEGER_FORMAT " pending",
		         pending);
	}
}

static void
signatures_bar(const json_t *z, const struct zd_alarm_config *th, struct bar *x)
{
	const json_t *hr = json_object_get(z, "signature_headroom");
	json_int_t s = 0, gate = 0;
	char d[64];
	if (!json_is_true(json_object_get(z, "signed"))) {
		set(x, "grey", "unsigned");
		snprintf(x->why, sizeof x->why, "the zone is not signed");
		return;
	}
	if (!num(hr, "seconds", &s)) {
		set(x, "grey", "not measured yet");
		snprintf(x->why, sizeof x->why,
		         "the published signatures have not been walked yet");
		return;
	}
	duration(s, d, sizeof d);
	set(x,
	    s <= 0                                 ? "red"
	    : s < (json_int_t)th->headroom_seconds ? "yellow"
	                                           : "green",
	    "headroom %s", d);
	snprintf(x->why, sizeof x->why,
	         "the earliest RRSIG expires %s after SOA expire + max TTL (yellow below %" PRIu32
	         " s, red at 0: secondaries could serve expired signatures)",
	         d, th->headroom_seconds);
	if (num(z, "gate_failures", &gate) && gate > 0) {
		size_t n = strlen(x->label);
		snprintf(x->label + n, sizeof x->label - n,
		         ", %" JSON_INTEGER_FORMAT " gate failures", gate);
	}
}

/* The parent's DS as zonedistd's probe found it (docs/KEYS.md): a DS of no
 * key makes the zone bogus (red), none makes it insecure (yellow). */
static void
parent_ds_mark(const json_t *z, struct bar *x)
{
	const json_t *pd = json_object_get(z, "parent_ds");
	const char *st = json_string_value(json_object_get(pd, "state"));
	const char *err = json_string_value(json_object_get(pd, "error"));
	if (st == NULL || strcmp(st, "match") == 0)
		return;
	int bad = strcmp(st, "mismatch") == 0, none = strcmp(st, "no-ds") == 0;
	if (!bad && !none && strcmp(st, "unreachable") != 0)
		return;
	if (none && json_object_get(json_object_get(z, "keys"), "unsign") != NULL)
		return; /* going unsigned: the DS is meant to go (the keys bar says so) */
	size_t n = strlen(x->label);
	snprintf(x->label + n, sizeof x->label - n, ", parent DS: %s", st);
	x->color = bad ? "red" : "yellow";
	snprintf(x->why, sizeof x->why, "%s%s",
	         bad    ? "the parent's DS RRset has no DS of the KSK: validators find the zone "
	                  "bogus: "
	         : none ? "the parent has no DS: validators take the zone as insecure: "
	                : "no parent server answered the DS query: ",
	         err ? err : "");
}

/* A rollover step this long past due was not made at the batches since. */
#define ZSK_STEP_OVERDUE_S 3600

static void
keys_bar(const json_t *z, struct bar *x)
{
	const json_t *k = json_object_get(z, "keys");
	json_int_t alg = 0, ksk = 0, zsk = 0;
	if (!json_is_true(json_object_get(z, "signed"))) {
		set(x, "grey", "no keys");
		snprintf(x->why, sizeof x->why, "the zone is not signed");
	} else if (!num(k, "algorithm", &alg) || !num(k, "ksk_tag", &ksk) ||
	           !num(k, "zsk_tag", &zsk)) {
		set(x, "grey", "unknown");
		snprintf(x->why, sizeof x->why, "the signer did not report its keys");
	} else {
		const json_t *other = json_object_get(k, "zsk_other");
		const json_t *next = json_object_get(k, "zsk_next");
		json_int_t otag = 0, at = 0, now = 0;
		const char *ostate = json_string_value(json_object_get(other, "state"));
		const char *step = json_string_value(json_object_get(next, "step"));
		int rolling = num(other, "tag", &otag) && ostate != NULL;
		set(x, "green",
		    "alg %" JSON_INTEGER_FORMAT ", KSK %" JSON_INTEGER_FORMAT
		    ", ZSK %" JSON_INTEGER_FORMAT,
		    alg, ksk, zsk);
		if (rolling) {
			size_t n = strlen(x->label);
			snprintf(x->label + n, sizeof x->label - n,
			         " (ZSK %" JSON_INTEGER_FORMAT " %s)", otag, ostate);
		}
		const json_t *kother = json_object_get(k, "ksk_other");
		const char *kstate = json_string_value(json_object_get(kother, "state"));
		json_int_t ktag = 0;
		if (num(kother, "tag", &ktag) && kstate != NULL) {
			size_t n = strlen(x->label);
			snprintf(x->label + n, sizeof x->label - n,
			         " (KSK %" JSON_INTEGER_FORMAT " %s)", ktag, kstate);
		}
		if (step != NULL && num(next, "at", &at) && num(k, "clock", &now)) {
			char d[64];
			duration(at > now ? at - now : now - at, d, sizeof d);
			if (now > at + ZSK_STEP_OVERDUE_S) {
				x->color = "yellow";
				snprintf(
				        x->why, sizeof x->why,
				        "the ZSK rollover's %s step is overdue by %s: it cannot be "
				        "made (the log says why)",
				        step, d);
			} else {
				snprintf(x->why, sizeof x->why,
				         "%s; ZSK rollover: next step %s %s %s",
				         rolling ? "ZSK rollover in progress" : "active keys", step,
				         at > now ? "in" : "due since", d);
			}
		} else {
			snprintf(x->why, sizeof x->why, "active keys; no rollover scheduled");
		}
		const json_t *knext = json_object_get(k, "ksk_next");
		const char *kstep = json_string_value(json_object_get(knext, "step"));
		json_int_t kat = 0;
		if (kstate != NULL && kstep != NULL && num(knext, "at", &kat) &&
		    num(k, "clock", &now)) {
			char d[64];
			size_t n = strlen(x->why);
			duration(kat > now ? kat - now : now - kat, d, sizeof d);
			snprintf(x->why + n, sizeof x->why - n,
			         "; KSK rollover: next step %s %s %s%s", kstep,
			         kat > now ? "in" : "due since", d,
			         strcmp(kstep, "ds-seen") == 0 ? " (waits for the parent's DS)"
			                                       : "");
		}
		const json_t *un = json_object_get(k, "unsign");
		const char *ustage = json_string_value(json_object_get(un, "stage"));
		json_int_t uat = 0;
		if (ustage != NULL) {
			size_t n = strlen(x->label);
			snprintf(x->label + n, sizeof x->label - n, " (unsigning: %s)", ustage);
			n = strlen(x->why);
			if (strcmp(ustage, "cds-delete") == 0) {
				snprintf(x->why + n, sizeof x->why - n,
				         "; unsigning: the delete CDS/CDNSKEY are published, the "
				         "zone "
				         "stays signed until the parent's DS is gone");
			} else if (num(un, "at", &uat) && num(k, "clock", &now)) {
				char d[64];
				duration(uat > now ? uat - now : now - uat, d, sizeof d);
				snprintf(x->why + n, sizeof x->why - n,
				         "; unsigning: the parent's DS is gone, the DNSSEC records "
				         "go "
				         "%s %s",
				         uat > now ? "in" : "due since", d);
			}
		}
		const json_t *ar = json_object_get(k, "algorithm_roll");
		const char *astage = json_string_value(json_object_get(ar, "stage"));
		const char *astep = json_string_value(json_object_get(ar, "next_step"));
		const char *ato = json_string_value(json_object_get(ar, "to"));
		json_int_t aat = 0;
		if (astage != NULL && astep != NULL && ato != NULL) {
			size_t n = strlen(x->label);
			snprintf(x->label + n, sizeof x->label - n,
			         " (algorithm rollover to %s: %s)", ato, astage);
			n = strlen(x->why);
			if (num(ar, "at", &aat) && num(k, "clock", &now)) {
				char d[64];
				duration(aat > now ? aat - now : now - aat, d, sizeof d);
				snprintf(x->why + n, sizeof x->why - n,
				         "; algorithm rollover: next step %s %s %s%s", astep,
				         aat > now ? "in" : "due since", d,
				         strcmp(astep, "alg-ds-seen") == 0
				                 ? " (waits for the parent's DS)"
				                 : "");
			}
		}
		const json_t *ok = json_object_get(k, "offline_ksk");
		json_int_t until = 0;
		if (num(ok, "until", &until) && num(k, "clock", &now)) {
			char d[64];
			size_t n = strlen(x->label);
			snprintf(x->label + n, sizeof x->label - n, " (offline KSK)");
			duration(until > now ? until - now : now - until, d, sizeof d);
			n = strlen(x->why);
			snprintf(x->why + n, sizeof x->why - n,
			         "; offline KSK: the pre-signed bundles %s %s%s",
			         until > now ? "run out in" : "ran out", d,
			         until > now ? "" : " ago: run the KSK ceremony");
			if (json_is_true(json_object_get(ok, "running_out")))
				x->color = json_is_true(json_object_get(ok, "ran_out")) ? "red"
				                                                        : "yellow";
		}
		parent_ds_mark(z, x);
	}
}

static void
hsm_bar(const json_t *z, struct bar *x)
{
	const json_t *h = json_object_get(z, "hsm");
	const char *state = str(h, "state");
	json_int_t ms = 0;
	char d[64];
	if (strcmp(state, "ok") == 0) {
		set(x, "green", "token ok");
		snprintf(x->why, sizeof x->why, "the PKCS#11 token signs");
	} else if (strcmp(state, "down") == 0) {
		duration(num(h, "down_for_ms", &ms) ? ms / 1000 : 0, d, sizeof d);
		set(x, "red", "token down for %s", d);
		snprintf(x->why, sizeof x->why,
		         "nothing new is signed or published; the last serial keeps being served");
	} else {
		set(x, "grey", "no token");
		snprintf(x->why, sizeof x->why, "the zone is not signed");
	}
}

static void
database_bar(const json_t *status, struct bar *x)
{
	const json_t *db = json_object_get(status, "database");
	if (!json_is_true(json_object_get(db, "up"))) {
		set(x, "red", "registry database down");
		snprintf(x->why, sizeof x->why,
		         "zonedistd cannot reach PostgreSQL: nothing new is published");
	} else if (!json_is_true(json_object_get(db, "operator_up"))) {
		set(x, "yellow", "operator connection down");
		snprintf(x->why, sizeof x->why,
		         "changes flow, but the transfer log, history and holds are unavailable");
	} else {
		set(x, "green", "up");
		snprintf(x->why, sizeof x->why, "both connections to PostgreSQL are up");
	}
}

static void
secondary_bar(const json_t *s, const struct zd_alarm_config *th, struct bar *x)
{
	const json_t *probe = json_object_get(s, "probe");
	const json_t *check = json_object_get(s, "check");
	json_int_t serial = 0, lag = 0, sev = 0, since = 0, now = 0;
	int has_serial = num(probe, "serial", &serial) || num(s, "last_serial", &serial);
	int has_lag = num(probe, "lag", &lag) || num(s, "lag", &lag);
	int has_check = num(check, "severity", &sev);
	char d[64], serial_txt[32] = "?", lag_txt[32] = "?";

	if (has_serial)
		snprintf(serial_txt, sizeof serial_txt, "%" JSON_INTEGER_FORMAT, serial);
	if (has_lag)
		snprintf(lag_txt, sizeof lag_txt, "%" JSON_INTEGER_FORMAT, lag);
	if (json_is_false(json_object_get(probe, "reachable"))) {
		num(probe, "since_ms", &since);
		num(probe, "checked_ms", &now);
		duration(since && now >= since ? (now - since) / 1000 : 0, d, sizeof d);
		set(x, "red", "unreachable for %s", d);
		snprintf(x->why, sizeof x->why, "no answer to the SOA query: %s",
		         str(probe, "error"));
		return;
	}
	if (has_check && sev >= 2) {
		set(x, "red", "serial %s, check %s", serial_txt, str(check, "state"));
		snprintf(x->why, sizeof x->why, "integrity check critical: %s",
		         str(check, "message"));
		return;
	}
	if (!has_serial && !has_check) {
		set(x, "grey", "no data yet");
		snprintf(x->why, sizeof x->why, "not probed, transferred or checked yet");
		return;
	}
	if (has_serial && !has_lag) {
		set(x, "yellow", "serial %s, not a kept serial", serial_txt);
		snprintf(x->why, sizeof x->why, "it serves a serial that zonedistd does not keep");
		return;
	}
	const char *color = "green";
	if (has_lag && lag > (json_int_t)th->lag_versions)
		color = "yellow";
	if (has_check && sev == 1)
		color = "yellow";
	set(x, color, "serial %s, lag %s%s%s", serial_txt, lag_txt, has_check ? ", check " : "",
	    has_check ? str(check, "state") : "");
	snprintf(x->why, sizeof x->why,
	         "lag in versions behind the published serial (yellow above %" PRIu32 ")%s%s",
	         th->lag_versions, has_check ? "; last check: " : "",
	         has_check ? str(check, "message") : "");
}

static const char style[] =
        "<style>"
        "body{font-family:sans-serif;margin:1em;color:#222}"
        "table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}"
        ".bar{display:inline-block;margin:2px;padding:3px 8px;border-radius:3px;"
        "white-space:nowrap}"
        ".green{background:#2e9e44;color:#fff}.yellow{background:#e6b800;color:#222}"
        ".red{background:#c62828;color:#fff}.grey{background:#9e9e9e;color:#fff}"
        "</style>";

zd_err
status_page_render(const json_t *status, const struct zd_alarm_config *th, struct evbuffer *out)
{
	struct page p = {.b = out};
	json_int_t now_ms = 0;
	char when[64] = "unknown";
	if (num(status, "time_ms", &now_ms)) {
		time_t t = (time_t)(now_ms / 1000);
		struct tm tm;
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
	}
	put(&p,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<meta http-equiv=\"refresh\" content=\"5\">"
	    "<title>zonedist status</title>%s</head><body>\n"
	    "<h1>zonedist</h1><p id=\"time\">as of %s; reloads every 5 s</p>\n"
	    "<table id=\"zones\"><tr><th>zone</th><th>serial</th><th>latency</th>"
	    "<th>signatures</th><th>keys</th><th>HSM</th><th>database</th>"
	    "<th>secondaries</th></tr>\n",
	    style, when);
	struct bar db;
	database_bar(status, &db);
	size_t i, k;
	const json_t *z, *s;
	json_array_foreach(json_object_get(status, "zones"), i, z)
	{
		struct bar x;
		json_int_t serial = 0;
		put(&p, "<tr class=\"zone\" data-zone=\"");
		esc(&p, str(z, "zone"));
		put(&p, "\"><td class=\"name\">");
		esc(&p, str(z, "zone"));
		if (num(z, "serial", &serial))
			put(&p, "</td><td class=\"serial\">%" JSON_INTEGER_FORMAT "</td><td>",
			    serial);
		else
			put(&p, "</td><td class=\"serial\">-</td><td>");
		latency_bar(z, &x);
		bar_out(&p, "latency", NULL, &x);
		put(&p, "</td><td>");
		signatures_bar(z, th, &x);
		bar_out(&p, "signatures", NULL, &x);
		put(&p, "</td><td>");
		keys_bar(z, &x);
		bar_out(&p, "keys", NULL, &x);
		put(&p, "</td><td>");
		hsm_bar(z, &x);
		bar_out(&p, "hsm", NULL, &x);
		put(&p, "</td><td>");
		bar_out(&p, "database", NULL, &db);
		put(&p, "</td><td>");
		json_array_foreach(json_object_get(z, "secondaries"), k, s)
		{
			const char *addr = str(s, "address");
			secondary_bar(s, th, &x);
			put(&p, "<div>");
			esc(&p, addr);
			put(&p, " ");
			bar_out(&p, "secondary", addr, &x);
			put(&p, "</div>");
		}
		put(&p, "</td></tr>\n");
	}
	put(&p, "</table></body></html>\n");
	return p.err ? ZD_ENOMEM : ZD_OK;
}
