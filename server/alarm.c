#include "server/alarm.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/zd_log.h"
#include "common/zd_parse.h"

#define KEY_MAX      400
#define TEXT_MAX     600
#define ATTEMPTS     3
#define HOUR_MS      (3600u * 1000u)
#define EXIT_WAIT_MS 5000

/* A condition seen in one status document. */
struct cond {
	char key[KEY_MAX];
	const char *severity; /* "critical" or "warning" */
	char zone[300];
	char secondary[100];
	char summary[TEXT_MAX];
	char action[TEXT_MAX];
};

/* A condition that fired (or waits to: lag must last lag-seconds). */
struct active {
	struct cond c;
	uint64_t first_seen_ms;
	int fired;
	int seen; /* in this evaluation */
};

struct note {
	char *json;    /* the webhook body */
	char *subject; /* the mail */
	char *text;
	struct note *next;
};

struct alarms {
	const struct zd_config *cfg;
	char *webhook_token;
	char hostname[256];
	struct active *act;
	size_t n_act;
	uint64_t sent_ms[256]; /* ring of recent notification times (rate limit) */
	size_t sent_next;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running, stop, curl_ready;
	struct note *q, **q_tail;
	size_t n_q;
	struct alarm_stats st; /* under mu */
	struct zd_ratelimit rl;
};

/* --- conditions from the status document ------------------------------------ */

static const char *
str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static void
add(struct cond *cs, size_t *n, size_t cap, const char *severity, const char *zone,
    const char *secondary, const char *what, const char *summary, const char *action)
{
	if (*n >= cap)
		return;
	struct cond *c = &cs[(*n)++];
	memset(c, 0, sizeof *c);
	snprintf(c->key, sizeof c->key, "%s|%s|%s", zone ? zone : "", secondary ? secondary : "",
	         what);
	c->severity = severity;
	snprintf(c->zone, sizeof c->zone, "%s", zone ? zone : "");
	snprintf(c->secondary, sizeof c->secondary, "%s", secondary ? secondary : "");
	snprintf(c->summary, sizeof c->summary, "%s", summary);
	snprintf(c->action, sizeof c->action, "%s", action);
}

static size_t
conditions(const struct zd_alarm_config *ac, const json_t *status, struct cond *cs, size_t cap)
{
	size_t n = 0, i, k;
	char sum[TEXT_MAX];
	const json_t *z, *s;

	if (json_is_false(json_object_get(json_object_get(status, "database"), "up")))
		add(cs, &n, cap, "critical", NULL, NULL, "database",
		    "zonedistd cannot reach PostgreSQL: nothing new is published, the last serials "
		    "keep being served",
		    "check the database server and zonedistd's conninfo; publishing resumes on its "
		    "own when the database answers");
	json_array_foreach(json_object_get(status, "zones"), i, z)
	{
		const char *zn = str(z, "zone");
		const json_t *hsm = json_object_get(z, "hsm");
		if (strcmp(str(hsm, "state"), "down") == 0)
			add(cs, &n, cap, "critical", zn, NULL, "hsm",
			    "the PKCS#11 token is gone: nothing new is signed or published, the "
			    "last "
			    "serial keeps being served",
			    "bring the token back (module, slot, PIN); signing resumes on its own; "
			    "watch the signature headroom");
		if (strcmp(str(z, "held"), "sanity") == 0)
			add(cs, &n, cap, "critical", zn, NULL, "held",
			    "a version is held by the sanity limits (too many delegations removed "
			    "or "
			    "apex records changed); nothing is published",
			    "look at the queued changes (zonedistctl status, the log); if they are "
			    "right, release: zonedistctl release ZONE --by NAME");
		const json_t *hr = json_object_get(z, "signature_headroom");
		json_t *secs = json_object_get(hr, "seconds");
		if (json_is_integer(secs) &&
		    json_integer_value(secs) < (json_int_t)ac->headroom_seconds) {
			snprintf(sum, sizeof sum,
			         "signature headroom is %" JSON_INTEGER_FORMAT
			         " s (the earliest RRSIG expires less than SOA expire + max TTL + "
			         "%" PRIu32 " s from now)",
			         json_integer_value(secs), ac->headroom_seconds);
			add(cs, &n, cap, json_integer_value(secs) <= 0 ? "critical" : "warning", zn,
			    NULL, "headroom", sum,
			    "make sure signing works (HSM, database, no hold) so the refresh "
			    "renews "
			    "signatures; see docs/DNSSEC.md");
		}
		const json_t *ok = json_object_get(json_object_get(z, "keys"), "offline_ksk");
		if (json_is_true(json_object_get(ok, "running_out")))
			add(cs, &n, cap,
			    json_is_true(json_object_get(ok, "ran_out")) ? "critical" : "warning",
			    zn, NULL, "offline-ksk",
			    "the offline KSK's pre-signed DNSKEY, CDS and CDNSKEY signatures run "
			    "out "
			    "within bundle-warn (keys.offline_ksk.until): after that no fresh one "
			    "is "
			    "made and the zone goes bogus when the last expires",
			    "connect the KSK token and run the ceremony: zonedistctl ksk-ceremony "
			    "ZONE "
			    "(docs/KEYS.md \"Offline KSK\")");
		json_t *rej = json_object_get(z, "rejected");
		if (json_is_integer(rej) && json_integer_value(rej) > 0)
			add(cs, &n, cap, "warning", zn, NULL, "rejected",
			    "registry rows were rejected (zonedist.rejected): their names keep "
			    "their "
			    "published records",
			    "read them (zonedistctl rejected ZONE), fix the registry data, then "
			    "zonedistctl retry ZONE");
		json_array_foreach(json_object_get(z, "secondaries"), k, s)
		{
			const char *addr = str(s, "address");
			const json_t *probe = json_object_get(s, "probe");
			const json_t *check = json_object_get(s, "check");
			if (json_is_false(json_object_get(probe, "reachable"))) {
				snprintf(sum, sizeof sum,
				         "secondary %s does not answer the SOA query for %s: %s",
				         addr, zn, str(probe, "error"));
				add(cs, &n, cap, "critical", zn, addr, "unreachable", sum,
				    "check that the secondary runs and reaches zonedistd; it "
				    "catches up "
				    "by IXFR when back");
			}
			json_t *lag = json_object_get(s, "lag");
			if (!json_is_integer(lag))
				lag = json_object_get(probe, "lag");
			if (json_is_integer(lag) &&
			    json_integer_value(lag) > (json_int_t)ac->lag_versions) {
				snprintf(sum, sizeof sum,
				         "secondary %s is %" JSON_INTEGER_FORMAT
				         " versions behind for %s",
				         addr, json_integer_value(lag), zn);
				add(cs, &n, cap, "warning", zn, addr, "lagging", sum,
				    "check its transfers (zonedistctl transfers ZONE) and its log; "
				    "a "
				    "secondary that cannot take IXFR falls back to AXFR");
			}
			json_t *sev = json_object_get(check, "severity");
			if (json_is_integer(sev) && json_integer_value(sev) == 2) {
				snprintf(sum, sizeof sum,
				         "the integrity check of secondary %s for %s is critical "
				         "(%s): %s",
				         addr, zn, str(check, "state"), str(check, "message"));
				add(cs, &n, cap, "critical", zn, addr, "check", sum,
				    "run zonedist-check for the record-level report; a diverged "
				    "secondary needs a fresh AXFR (retransfer) and a look at who "
				    "changed it");
			}
		}
	}
	return n;
}

/* --- queueing -------------------------------------------------------------- */

static void
iso_time(uint64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* 1 when one more notification fits in the hour. */
static int
rate_ok(struct alarms *al, uint64_t now)
{
	size_t cap = sizeof al->sent_ms / sizeof al->sent_ms[0];
	uint32_t max =
	        al->cfg->alarms.max_per_hour < cap ? al->cfg->alarms.max_per_hour : (uint32_t)cap;
	size_t recent = 0;
	for (size_t i = 0; i < cap; i++)
		recent += al->sent_ms[i] != 0 && now - al->sent_ms[i] < HOUR_MS;
	if (recent >= max)
		return 0;
	al->sent_ms[al->sent_next] = now;
	al->sent_next = (al->sent_next + 1) % cap;
	return 1;
}

static void
notify(struct alarms *al, const struct active *a, int firing, uint64_t now)
{
	char when[32], since[32];
	iso_time(now, when, sizeof when);
	iso_time(a->first_seen_ms, since, sizeof since);
	const char *event = firing ? "firing" : "resolved";

	pthread_mutex_lock(&al->mu);
	if (firing)
		al->st.fired++;
	else
		al->st.resolved++;
	if (!rate_ok(al, now) || al->n_q >= ALARM_QUEUE_MAX) {
		al->st.dropped++;
		pthread_mutex_unlock(&al->mu);
		uint32_t suppressed;
		if (zd_ratelimit_ok(&al->rl, zd_now_ms(), &suppressed))
			zd_log(ZD_LOG_WARNING, "alarm", a->c.zone[0] ? a->c.zone : NULL,
			       "notification not sent (more than %" PRIu32
			       " per hour, or the queue is full): %s %s",
			       al->cfg->alarms.max_per_hour, event, a->c.summary);
		return;
	}
	pthread_mutex_unlock(&al->mu);

	json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o,s:s,s:s,s:I,s:I,s:s}", "event", event, "key",
	                      a->c.key, "severity", a->c.severity, "zone",
	                      a->c.zone[0] ? json_string(a->c.zone) : json_null(), "secondary",
	                      a->c.secondary[0] ? json_string(a->c.secondary) : json_null(),
	                      "summary", a->c.summary, "action", a->c.action, "since_ms",
	                      (json_int_t)a->first_seen_ms, "time_ms", (json_int_t)now, "host",
	                      al->hostname);
	struct note *nt = calloc(1, sizeof *nt);
	char subject[TEXT_MAX + 400], text[3 * TEXT_MAX + KEY_MAX];
	snprintf(subject, sizeof subject, "[zonedist %s] %s: %.500s", al->hostname,
	         firing ? (strcmp(a->c.severity, "critical") == 0 ? "CRITICAL" : "WARNING")
	                : "RESOLVED",
	         a->c.summary);
	snprintf(text, sizeof text,
	         "%s\r\n\r\nWhat happened: %s\r\nSince: %s\r\nNow: %s (%s)\r\n"
	         "What to do: %s\r\nCondition: %s\r\n",
	         firing ? "An alarm fired." : "This alarm is resolved.", a->c.summary, since, when,
	         event, firing ? a->c.action : "nothing more", a->c.key);
	if (nt == NULL || j == NULL || (nt->json = json_dumps(j, JSON_COMPACT)) == NULL ||
	    (nt->subject = strdup(subject)) == NULL || (nt->text = strdup(text)) == NULL) {
		if (nt) {
			free(nt->json);
			free(nt->subject);
			free(nt->text);
		}
		free(nt);
		json_decref(j);
		return;
	}
	json_decref(j);
	zd_log(firing ? ZD_LOG_WARNING : ZD_LOG_NOTICE, "alarm", a->c.zone[0] ? a->c.zone : NULL,
	       "%s%s: %s", firing ? "ALARM " : "", event, a->c.summary);
	pthread_mutex_lock(&al->mu);
	*al->q_tail = nt;
	al->q_tail = &nt->next;
	al->n_q++;
	pthread_cond_signal(&al->cv);
	pthread_mutex_unlock(&al->mu);
}

void
alarms_evaluate(struct alarms *al, const json_t *status, uint64_t now)
{
	struct cond *cs;
	size_t n;

	if (al == NULL || (cs = calloc(ALARM_ACTIVE_MAX, sizeof *cs)) == NULL)
		return;
	n = conditions(&al->cfg->alarms, status, cs, ALARM_ACTIVE_MAX);
	for (size_t i = 0; i < al->n_act; i++)
		al->act[i].seen = 0;
	for (size_t i = 0; i < n; i++) {
		struct active *a = NULL;
		for (size_t k = 0; k < al->n_act && a == NULL; k++)
			if (strcmp(al->act[k].c.key, cs[i].key) == 0)
				a = &al->act[k];
		if (a == NULL) {
			if (al->n_act == ALARM_ACTIVE_MAX)
				continue;
			a = &al->act[al->n_act++];
			memset(a, 0, sizeof *a);
			a->first_seen_ms = now;
		}
		a->c = cs[i]; /* the newest text */
		a->seen = 1;
		/* a secondary must stay behind or away a while before it counts */
		const char *what = strrchr(cs[i].key, '|') + 1;
		uint32_t wait = strcmp(what, "lagging") == 0       ? al->cfg->alarms.lag_seconds
		                : strcmp(what, "unreachable") == 0 ? al->cfg->alarms.down_seconds
		                                                   : 0;
		if (!a->fired && now - a->first_seen_ms >= (uint64_t)wait * 1000u) {
			a->fired = 1;
			notify(al, a, 1, now);
		}
	}
	for (size_t i = 0; i < al->n_act;) {
		if (al->act[i].seen) {
			i++;
			continue;
		}
		if (al->act[i].fired)
			notify(al, &al->act[i], 0, now);
		al->act[i] = al->act[--al->n_act];
	}
	pthread_mutex_lock(&al->mu);
	al->st.active = 0;
	for (size_t i = 0; i < al->n_act; i++)
		al->st.active += al->act[i].fired;
	pthread_mutex_unlock(&al->mu);
	free(cs);
}

/* --- delivery ------------------------------------------------------------------ */

struct upload {
	const char *data;
	size_t len, pos;
};

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *u = arg;
	size_t room = size * nitems, left = u->len - u->pos;
	size_t n = left < room ? left : room;
	memcpy(buf, u->data + u->pos, n);
	u->pos += n;
	return n;
}

static size_t
discard_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	(void)buf;
	(void)arg;
	return size * nitems;
}

static int
send_mail(struct alarms *al, const struct note *nt, char *why, size_t whylen)
{
	const struct zd_alarm_config *ac = &al->cfg->alarms;
	char date[64], hdr[400];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	size_t cap = strlen(nt->subject) + strlen(nt->text) + 4096;
	for (size_t i = 0; i < ac->n_smtp_to; i++)
		cap += strlen(ac->smtp_to[i]) + 4;
	char *msg = malloc(cap);
	if (msg == NULL) {
		snprintf(why, whylen, "out of memory");
		return 0;
	}
	size_t k =
	        (size_t)snprintf(msg, cap, "Date: %s\r\nFrom: <%s>\r\nTo: ", date, ac->smtp_from);
	for (size_t i = 0; i < ac->n_smtp_to; i++)
		k += (size_t)snprintf(msg + k, cap - k, "%s<%s>", i ? ", " : "", ac->smtp_to[i]);
	snprintf(hdr, sizeof hdr, "<%lld.%ld@%s>", (long long)t, (long)random(), al->hostname);
	k += (size_t)snprintf(msg + k, cap - k,
	                      "\r\nSubject: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n"
	                      "Content-Type: text/plain; charset=utf-8\r\n\r\n%s",
	                      nt->subject, hdr, nt->text);
	if (k >= cap)
		k = cap - 1;
	struct upload u = {msg, k, 0};
	CURL *c = curl_easy_init();
	struct curl_slist *rcpt = NULL;
	char from[300];
	int ok = 0;
	snprintf(from, sizeof from, "<%s>", ac->smtp_from);
	for (size_t i = 0; i < ac->n_smtp_to; i++) {
		char r[300];
		snprintf(r, sizeof r, "<%s>", ac->smtp_to[i]);
		rcpt = curl_slist_append(rcpt, r);
	}
	if (c != NULL && rcpt != NULL) {
		curl_easy_setopt(c, CURLOPT_URL, ac->smtp_url);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
		curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
		curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(c, CURLOPT_READDATA, &u);
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ac->timeout_ms);
		CURLcode rc = curl_easy_perform(c);
		ok = rc == CURLE_OK;
		if (!ok)
			snprintf(why, whylen, "%s", curl_easy_strerror(rc));
	} else {
		snprintf(why, whylen, "out of memory");
	}
	curl_slist_free_all(rcpt);
	if (c)
		curl_easy_cleanup(c);
	free(msg);
	return ok;
}

static int
send_webhook(struct alarms *al, const struct note *nt, char *why, size_t whylen)
{
	const struct zd_alarm_config *ac = &al->cfg->alarms;
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	int ok = 0;
	if (al->webhook_token != NULL && h != NULL) {
		size_t n = strlen(al->webhook_token) + 32;
		char *auth = malloc(n);
		if (auth) {
			snprintf(auth, n, "Authorization: Bearer %s", al->webhook_token);
			h = curl_slist_append(h, auth);
			free(auth);
		}
	}
	if (c != NULL && h != NULL) {
		long code = 0;
		curl_easy_setopt(c, CURLOPT_URL, ac->webhook_url);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, nt->json);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ac->timeout_ms);
		CURLcode rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		ok = rc == CURLE_OK && code >= 200 && code < 300;
		if (rc != CURLE_OK)
			snprintf(why, whylen, "%s", curl_easy_strerror(rc));
		else if (!ok)
			snprintf(why, whylen, "HTTP status %ld", code);
	} else {
		snprintf(why, whylen, "out of memory");
	}
	curl_slist_free_all(h);
	if (c)
		curl_easy_cleanup(c);
	return ok;
}

static void
deliver(struct alarms *al, const struct note *nt)
{
	for (int dest = 0; dest < 2; dest++) {
		if ((dest == 0 && al->cfg->alarms.smtp_url == NULL) ||
		    (dest == 1 && al->cfg->alarms.webhook_url == NULL))
			continue;
		char why[CURL_ERROR_SIZE + 64] = "";
		int ok = 0;
		for (int attempt = 0; attempt < ATTEMPTS && !ok; attempt++) {
			if (attempt > 0) {
				pthread_mutex_lock(&al->mu);
				int stop = al->stop;
				pthread_mutex_unlock(&al->mu);
				if (stop)
					break;
				sleep((unsigned)(attempt * 2));
			}
			ok = dest == 0 ? send_mail(al, nt, why, sizeof why)
			               : send_webhook(al, nt, why, sizeof why);
		}
		pthread_mutex_lock(&al->mu);
		if (ok)
			al->st.sent++;
		else
			al->st.failed++;
		pthread_mutex_unlock(&al->mu);
		if (!ok)
			zd_log(ZD_LOG_ERROR, "alarm", NULL,
			       "%s notification not delivered: %s (%s)",
			       dest == 0 ? "e-mail" : "webhook", why, nt->subject);
	}
}

static void
note_free(struct note *nt)
{
	free(nt->json);
	free(nt->subject);
	free(nt->text);
	free(nt);
}

static void *
loop(void *arg)
{
	struct alarms *al = arg;
	uint64_t stop_at = 0;
	pthread_mutex_lock(&al->mu);
	for (;;) {
		while (!al->stop && al->q == NULL)
			pthread_cond_wait(&al->cv, &al->mu);
		if (al->stop && stop_at == 0)
			stop_at = zd_now_ms();
		if (al->q == NULL || (stop_at && zd_now_ms() - stop_at > EXIT_WAIT_MS))
			break;
		struct note *nt = al->q;
		al->q = nt->next;
		if (al->q == NULL)
			al->q_tail = &al->q;
		al->n_q--;
		pthread_mutex_unlock(&al->mu);
		deliver(al, nt);
		note_free(nt);
		pthread_mutex_lock(&al->mu);
	}
	pthread_mutex_unlock(&al->mu);
	return NULL;
}

/* --- life cycle ------------------------------------------------------------------ */

zd_err
alarms_new(const struct zd_config *cfg, struct alarms **out, char *err, size_t errlen)
{
	*out = NULL;
	if (cfg->alarms.smtp_url == NULL && cfg->alarms.webhook_url == NULL)
		return ZD_OK;
	struct alarms *al = calloc(1, sizeof *al);
	if (al == NULL || (al->act = calloc(ALARM_ACTIVE_MAX, sizeof *al->act)) == NULL) {
		free(al);
		return ZD_ENOMEM;
	}
	al->cfg = cfg;
	al->q_tail = &al->q;
	pthread_mutex_init(&al->mu, NULL);
	pthread_cond_init(&al->cv, NULL);
	zd_ratelimit_init(&al->rl, 60000, 5);
	if (gethostname(al->hostname, sizeof al->hostname - 1) != 0)
		snprintf(al->hostname, sizeof al->hostname, "zonedistd");
	if (cfg->alarms.webhook_token_file != NULL) {
		char why[512];
		zd_err e = zd_token_read(cfg->alarms.webhook_token_file, 1, &al->webhook_token, why,
		                         sizeof why);
		if (e != ZD_OK) {
			snprintf(err, errlen, "alarms webhook token-file %s", why);
			alarms_free(al);
			return e;
		}
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "libcurl does not initialise");
		alarms_free(al);
		return ZD_EIO;
	}
	al->curl_ready = 1;
	*out = al;
	return ZD_OK;
}

zd_err
alarms_start(struct alarms *al)
{
	if (al == NULL)
		return ZD_OK;
	if (pthread_create(&al->thread, NULL, loop, al) != 0)
		return ZD_ENOMEM;
	al->running = 1;
	pthread_setname_np(al->thread, "zd-alarm"); /* top -H, perf */
	return ZD_OK;
}

void
alarms_free(struct alarms *al)
{
	if (al == NULL)
		return;
	if (al->running) {
		pthread_mutex_lock(&al->mu);
		al->stop = 1;
		pthread_cond_signal(&al->cv);
		pthread_mutex_unlock(&al->mu);
		pthread_join(al->thread, NULL);
	}
	if (al->curl_ready)
		curl_global_cleanup();
	while (al->q) {
		struct note *n = al->q->next;
		note_free(al->q);
		al->q = n;
	}
	free(al->webhook_token);
	free(al->act);
	pthread_mutex_destroy(&al->mu);
	pthread_cond_destroy(&al->cv);
	free(al);
}

void
alarms_stats_get(struct alarms *al, struct alarm_stats *out)
{
	memset(out, 0, sizeof *out);
	if (al == NULL)
		return;
	pthread_mutex_lock(&al->mu);
	*out = al->st;
	pthread_mutex_unlock(&al->mu);
}
