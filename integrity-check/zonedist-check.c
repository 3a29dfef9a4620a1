/* integrity-check/zonedist-check.c -- prove that every secondary serves
 * exactly a serial zonedistd published (docs/INTEGRITY.md).
 *
 *   zonedist-check --zone ZONE [--config zonedistd.yaml] [--api URL]
 *                  [--secondary ADDR[@PORT][/KEYNAME]]... [options]
 *
 * One-shot: prints a report (human, or --json), exits 0 ok, 1 warning,
 * 2 critical (the worst secondary), 3 when it could not run (usage,
 * configuration), as monitoring systems expect.  --watch SECONDS repeats
 * the check until SIGTERM/SIGINT (or --rounds N), one report per round,
 * and stores every result in zonedist.check_result. */
#include <getopt.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/zd_config.h"
#include "common/zd_log.h"
#include "common/zd_parse.h"
#include "integrity-check/check.h"

#define TARGETS_MAX  256
#define EXIT_UNKNOWN 3

static volatile sig_atomic_t stopping;

struct run {
	struct check_opts opts;
	struct check_target targets[TARGETS_MAX];
	size_t n_targets;
	unsigned parallel;
	int json;
	int store;
	const char *database;
	uint32_t keep_days;
	ldns_rr_list *parent_ds;
	/* one round */
	json_t **results;
	size_t next;
	pthread_mutex_t lock;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: zonedist-check --zone ZONE [--config FILE] [--api http://HOST:PORT]\n"
	        "         [--secondary ADDR[@PORT][/TSIGKEY]]... [--tsig NAME:ALG:SECRET]...\n"
	        "         [--json] [--watch SECONDS [--rounds N]] [--store] [--database CONNINFO]\n"
	        "         [--keep-days N] [--parallel N] [--timeout MS] [--deadline MS]\n"
	        "         [--max-transfer-bytes N] [--max-differences N] [--lag-warn S]\n"
	        "         [--lag-crit S] [--expiry-warn S] [--parent-ds FILE] [--now EPOCH]\n"
	        "         [--threads N] [--full]\n"
	        "exit: 0 ok, 1 warning, 2 critical, 3 could not check\n");
}

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* ADDR[@PORT][/KEY] -> a target; TSIG secrets from cfg or --tsig keys. */
static int
target_add(struct run *r, const char *text, const char *key, const struct zd_config *cfg,
           const struct zd_tsig_key *extra, size_t n_extra)
{
	struct check_target *t;
	char addr[128];
	const char *slash = key ? NULL : strchr(text, '/');
	size_t al = slash ? (size_t)(slash - text) : strlen(text);

	if (r->n_targets == TARGETS_MAX) {
		fprintf(stderr, "zonedist-check: at most %d secondaries\n", TARGETS_MAX);
		return -1;
	}
	if (al >= sizeof addr) {
		fprintf(stderr, "zonedist-check: secondary '%s' is too long\n", text);
		return -1;
	}
	memcpy(addr, text, al);
	addr[al] = '\0';
	if (slash)
		key = slash + 1;
	t = &r->targets[r->n_targets];
	memset(t, 0, sizeof *t);
	if (zd_parse_sockaddr(addr, 53, &t->peer.addr, &t->peer.addrlen) != ZD_OK) {
		fprintf(stderr, "zonedist-check: secondary '%s' is not ADDR[@PORT]\n", addr);
		return -1;
	}
	snprintf(t->name, sizeof t->name, "%s", addr);
	if (key != NULL && *key) {
		char *kn = zd_name_normalize(key);
		const struct zd_tsig_key *k = NULL;
		for (size_t i = 0; kn && i < n_extra; i++)
			if (strcmp(extra[i].name, kn) == 0)
				k = &extra[i];
		if (k == NULL && cfg && kn)
			k = zd_config_key_find(cfg, kn);
		free(kn);
		if (k == NULL) {
			fprintf(stderr,
			        "zonedist-check: secondary %s: TSIG key '%s' is not known "
			        "(--tsig or the configuration's tsig-keys)\n",
			        addr, key);
			return -1;
		}
		t->peer.key_name = k->name;
		t->peer.key_alg = k->algorithm;
		t->peer.key_secret = k->secret;
	}
	r->n_targets++;
	return 0;
}

static ldns_rr_list *
parent_ds_load(const char *path)
{
	FILE *f = fopen(path, "r");
	ldns_zone *z = NULL;
	int line = 0;
	ldns_rr_list *out = NULL;

	if (f == NULL) {
		fprintf(stderr, "zonedist-check: --parent-ds %s: cannot open\n", path);
		return NULL;
	}
	/* A file of DS records (no SOA needed). */
	ldns_status st = ldns_zone_new_frm_fp_l(&z, f, NULL, 3600, LDNS_RR_CLASS_IN, &line);
	fclose(f);
	if (st != LDNS_STATUS_OK) {
		fprintf(stderr, "zonedist-check: --parent-ds %s line %d: %s\n", path, line,
		        ldns_get_errorstr_by_id(st));
		return NULL;
	}
	out = ldns_rr_list_new();
	for (size_t i = 0; out && i < ldns_rr_list_rr_count(ldns_zone_rrs(z)); i++) {
		ldns_rr *rr = ldns_rr_list_rr(ldns_zone_rrs(z), i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_DS)
			ldns_rr_list_push_rr(out, ldns_rr_clone(rr));
	}
	ldns_zone_deep_free(z);
	if (out && ldns_rr_list_rr_count(out) == 0) {
		fprintf(stderr, "zonedist-check: --parent-ds %s holds no DS record\n", path);
		ldns_rr_list_deep_free(out);
		return NULL;
	}
	return out;
}

static void *
worker(void *arg)
{
	struct run *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->lock);
		size_t i = r->next++;
		pthread_mutex_unlock(&r->lock);
		if (i >= r->n_targets)
			return NULL;
		json_t *rep = NULL;
		if (check_secondary(&r->opts, &r->targets[i], &rep) != ZD_OK) {
			rep = json_pack("{s:s,s:s,s:s,s:i,s:s}", "secondary", r->targets[i].name,
			                "zone", r->opts.zone, "state", "error", "severity", 2,
			                "message", "out of memory while checking");
		}
		r->results[i] = rep;
	}
}

static int
round_run(struct run *r)
{
	pthread_t th[64];
	unsigned n = r->parallel;
	int worst = 0;

	if (n > r->n_targets)
		n = (unsigned)r->n_targets;
	if (n > 64)
		n = 64;
	r->next = 0;
	memset(r->results, 0, r->n_targets * sizeof *r->results);
	unsigned started = 0;
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, worker, r) == 0)
			started++;
	if (started == 0)
		worker(r);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < r->n_targets; i++) {
		json_t *s = r->results[i] ? json_object_get(r->results[i], "severity") : NULL;
		int sev = s ? (int)json_integer_value(s) : 2;
		if (sev > worst)
			worst = sev;
	}
	return worst;
}

static void
print_human(const struct run *r)
{
	for (size_t i = 0; i < r->n_targets; i++) {
		json_t *rep = r->results[i];
		if (rep == NULL)
			continue;
		printf("%s %s: %s [%s] %s\n", r->opts.zone, r->targets[i].name,
		       json_string_value(json_object_get(rep, "state")),
		       check_severity_name(
		               (int)json_integer_value(json_object_get(rep, "severity"))),
		       json_string_value(json_object_get(rep, "message")));
		json_t *d = json_object_get(json_object_get(rep, "differences"), "rrsets");
		size_t k;
		json_t *set;
		json_array_foreach(d, k, set)
		{
			size_t m;
			json_t *rec;
			json_array_foreach(json_object_get(set, "missing"), m, rec)
			        printf("  missing: %s\n", json_string_value(rec));
			json_array_foreach(json_object_get(set, "extra"), m, rec)
			        printf("  extra:   %s\n", json_string_value(rec));
		}
		if (json_is_true(json_object_get(json_object_get(rep, "differences"), "truncated")))
			printf("  (more differences not listed: see --json)\n");
		json_t *probs = json_object_get(json_object_get(rep, "dnssec"), "problems");
		json_array_foreach(probs, k, set)
		        printf("  dnssec %s: %s %s: %s\n",
		               json_string_value(json_object_get(set, "severity")),
		               json_string_value(json_object_get(set, "owner")),
		               json_string_value(json_object_get(set, "type")),
		               json_string_value(json_object_get(set, "what")));
	}
	fflush(stdout);
}

static void
print_json(const struct run *r, int worst)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < r->n_targets; i++)
		if (r->results[i])
			json_array_append(arr, r->results[i]);
	json_t *doc = json_pack("{s:s,s:i,s:s,s:I,s:o}", "zone", r->opts.zone, "severity", worst,
	                        "status", check_severity_name(worst), "checked_at",
	                        (json_int_t)time(NULL), "secondaries", arr);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (text)
		printf("%s\n", text);
	free(text);
	json_decref(doc);
	fflush(stdout);
}

/* Store the round's results; a database that is away is said on stderr
 * and retried next round (the checks themselves go on). */
static void
store_results(const struct run *r, PGconn **pc)
{
	if (*pc == NULL || PQstatus(*pc) != CONNECTION_OK) {
		if (*pc)
			PQfinish(*pc);
		*pc = PQconnectdb(r->database);
		if (PQstatus(*pc) != CONNECTION_OK) {
			fprintf(stderr, "zonedist-check: cannot store results: %s",
			        PQerrorMessage(*pc));
			return;
		}
	}
	for (size_t i = 0; i < r->n_targets; i++) {
		json_t *rep = r->results[i];
		if (rep == NULL)
			continue;
		char *text = json_dumps(rep, JSON_COMPACT);
		char sev[8], serial[16], latest[16], behind[24], ms[24];
		json_t *js = json_object_get(rep, "serial"),
		       *jl = json_object_get(rep, "latest_serial");
		json_t *jb = json_object_get(rep, "versions_behind");
		snprintf(sev, sizeof sev, "%d",
		         (int)json_integer_value(json_object_get(rep, "severity")));
		snprintf(serial, sizeof serial, "%lld", (long long)json_integer_value(js));
		snprintf(latest, sizeof latest, "%lld", (long long)json_integer_value(jl));
		snprintf(behind, sizeof behind, "%lld", (long long)json_integer_value(jb));
		snprintf(ms, sizeof ms, "%lld",
		         (long long)json_integer_value(json_object_get(rep, "elapsed_ms")));
		const char *vals[10] = {r->opts.zone,
		                        r->targets[i].name,
		                        json_string_value(json_object_get(rep, "state")),
		                        sev,
		                        json_is_integer(js) ? serial : NULL,
		                        json_is_integer(jl) ? latest : NULL,
		                        json_is_integer(jb) ? behind
		                                            : (json_is_integer(jl) ? "0" : NULL),
		                        ms,
		                        json_string_value(json_object_get(rep, "message")),
		                        text};
		PGresult *res = PQexecParams(
		        *pc,
		        "INSERT INTO zonedist.check_result (zone, secondary, state, severity, "
		        "serial, "
		        "latest_serial, versions_behind, elapsed_ms, message, report) VALUES "
		        "($1, $2, $3, $4::smallint, $5::bigint, $6::bigint, $7::bigint, "
		        "$8::integer, "
		        "$9, $10::jsonb)",
		        10, NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			fprintf(stderr, "zonedist-check: storing the result of %s: %s",
			        r->targets[i].name, PQresultErrorMessage(res));
		PQclear(res);
		free(text);
	}
	if (r->keep_days > 0) {
		char days[16];
		snprintf(days, sizeof days, "%u", r->keep_days);
		const char *v[1] = {days};
		PGresult *res = PQexecParams(*pc,
		                             "DELETE FROM zonedist.check_result WHERE checked_at < "
		                             "now() - make_interval(days => $1::integer)",
		                             1, NULL, v, NULL, NULL, 0);
		PQclear(res);
	}
}

static int
num(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (zd_parse_u64(s, min, max, out) != ZD_OK) {
		fprintf(stderr, "zonedist-check: %s takes a number from %llu to %llu\n", opt,
		        (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
	        {"zone", required_argument, NULL, 'z'},
	        {"config", required_argument, NULL, 'c'},
	        {"api", required_argument, NULL, 'a'},
	        {"secondary", required_argument, NULL, 's'},
	        {"tsig", required_argument, NULL, 'K'},
	        {"json", no_argument, NULL, 'j'},
	        {"watch", required_argument, NULL, 'w'},
	        {"rounds", required_argument, NULL, 'R'},
	        {"store", no_argument, NULL, 'S'},
	        {"database", required_argument, NULL, 'D'},
	        {"keep-days", required_argument, NULL, 'k'},
	        {"parallel", required_argument, NULL, 'p'},
	        {"timeout", required_argument, NULL, 't'},
	        {"deadline", required_argument, NULL, 'd'},
	        {"max-transfer-bytes", required_argument, NULL, 'm'},
	        {"max-differences", required_argument, NULL, 'x'},
	        {"lag-warn", required_argument, NULL, 'W'},
	        {"lag-crit", required_argument, NULL, 'C'},
	        {"expiry-warn", required_argument, NULL, 'e'},
	        {"parent-ds", required_argument, NULL, 'P'},
	        {"now", required_argument, NULL, 'n'},
	        {"threads", required_argument, NULL, 'T'},
	        {"full", no_argument, NULL, 'F'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	static struct run r;
	struct zd_config *cfg = NULL;
	const char *zone_arg = NULL, *config = NULL, *api = NULL, *parent_ds = NULL;
	const char *secondaries[TARGETS_MAX];
	size_t n_sec = 0, n_tsig = 0;
	struct zd_tsig_key tsig[16];
	uint64_t watch = 0, rounds = 0, v, timeout = 5000, deadline = 600000,
	         max_bytes = (uint64_t)4 << 30, now = 0;
	char err[1024], *zone = NULL;
	int ch, rc = EXIT_UNKNOWN;
	PGconn *pc = NULL;

	memset(tsig, 0, sizeof tsig);
	r.parallel = 4;
	r.keep_days = 30;
	r.opts.max_rrsets = 100;
	r.opts.max_records = 20;
	r.opts.lag_warn_s = 300;
	r.opts.lag_crit_s = 3600;
	r.opts.dnssec.warn_seconds = 3 * 86400;
	r.opts.dnssec.max_problems = 50;
	r.opts.dnssec.threads = 2;
	pthread_mutex_init(&r.lock, NULL);
	while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (ch) {
		case 'z':
			zone_arg = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'a':
			api = optarg;
			break;
		case 's':
			if (n_sec == TARGETS_MAX) {
				fprintf(stderr, "zonedist-check: at most %d secondaries\n",
				        TARGETS_MAX);
				goto out;
			}
			secondaries[n_sec++] = optarg;
			break;
		case 'K': {
			/* NAME:ALG:SECRET */
			char *a = strchr(optarg, ':'), *b = a ? strchr(a + 1, ':') : NULL;
			if (a == NULL || b == NULL || n_tsig == 16) {
				fprintf(stderr,
				        "zonedist-check: --tsig takes NAME:ALGORITHM:SECRET\n");
				goto out;
			}
			*a = *b = '\0';
			tsig[n_tsig].name = zd_name_normalize(optarg);
			tsig[n_tsig].algorithm = zd_name_normalize(a + 1);
			tsig[n_tsig].secret = strdup(b + 1);
			n_tsig++;
			break;
		}
		case 'j':
			r.json = 1;
			break;
		case 'w':
			if (num("--watch", optarg, 1, 86400, &watch))
				goto out;
			break;
		case 'R':
			if (num("--rounds", optarg, 1, 100000000, &rounds))
				goto out;
			break;
		case 'S':
			r.store = 1;
			break;
		case 'D':
			r.database = optarg;
			break;
		case 'k':
			if (num("--keep-days", optarg, 0, 36500, &v))
				goto out;
			r.keep_days = (uint32_t)v;
			break;
		case 'p':
			if (num("--parallel", optarg, 1, 64, &v))
				goto out;
			r.parallel = (unsigned)v;
			break;
		case 't':
			if (num("--timeout", optarg, 100, 600000, &timeout))
				goto out;
			break;
		case 'd':
			if (num("--deadline", optarg, 1000, 86400000, &deadline))
				goto out;
			break;
		case 'm':
			if (num("--max-transfer-bytes", optarg, 1024, (uint64_t)64 << 30,
			        &max_bytes))
				goto out;
			break;
		case 'x':
			if (num("--max-differences", optarg, 1, 1000000, &v))
				goto out;
			r.opts.max_rrsets = v;
			break;
		case 'W':
			if (num("--lag-warn", optarg, 0, 100000000, &v))
				goto out;
			r.opts.lag_warn_s = (uint32_t)v;
			break;
		case 'C':
			if (num("--lag-crit", optarg, 0, 100000000, &v))
				goto out;
			r.opts.lag_crit_s = (uint32_t)v;
			break;
		case 'e':
			if (num("--expiry-warn", optarg, 0, 100000000, &v))
				goto out;
			r.opts.dnssec.warn_seconds = (uint32_t)v;
			break;
		case 'P':
			parent_ds = optarg;
			break;
		case 'n':
			if (num("--now", optarg, 1, UINT32_MAX, &now))
				goto out;
			break;
		case 'T':
			if (num("--threads", optarg, 1, 64, &v))
				goto out;
			r.opts.dnssec.threads = (unsigned)v;
			break;
		case 'F':
			r.opts.full = 1;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (zone_arg == NULL || optind != argc) {
		usage(stderr);
		goto out;
	}
	if ((zone = zd_name_normalize(zone_arg)) == NULL)
		goto out;
	r.opts.zone = zone;
	if (config && zd_config_load(config, &cfg, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "zonedist-check: %s: %s\n", config, err);
		goto out;
	}
	const struct zd_zone_config *zc = cfg ? zd_config_zone_find(cfg, zone) : NULL;
	if (cfg && zc == NULL) {
		fprintf(stderr, "zonedist-check: zone %s is not in %s\n", zone, config);
		goto out;
	}
	/* Secondaries: the command line's, else the zone's notify list. */
	for (size_t i = 0; i < n_sec; i++)
		if (target_add(&r, secondaries[i], NULL, cfg, tsig, n_tsig) != 0)
			goto out;
	for (size_t i = 0; n_sec == 0 && zc && i < zc->n_notify; i++)
		if (target_add(&r, zc->notify[i].text, zc->notify[i].key ? zc->notify[i].key : "",
		               cfg, tsig, n_tsig) != 0)
			goto out;
	if (r.n_targets == 0) {
		fprintf(stderr, "zonedist-check: no secondary to check (--secondary, or notify: "
		                "in the zone's configuration)\n");
		goto out;
	}
	for (size_t i = 0; i < r.n_targets; i++) {
		r.targets[i].peer.timeout_ms = (uint32_t)timeout;
		r.targets[i].peer.deadline_ms = (uint32_t)deadline;
		r.targets[i].peer.max_bytes = max_bytes;
	}
	/* zonedistd's API: --api, else the configuration's first TCP address. */
	for (size_t i = 0; api == NULL && cfg && i < cfg->api.n_listen; i++)
		if (strncmp(cfg->api.listen[i], "unix:", 5) != 0)
			api = cfg->api.listen[i];
	if (api == NULL) {
		fprintf(stderr,
		        "zonedist-check: where is zonedistd's API? (--api http://HOST:PORT, "
		        "or api: listen: in the configuration)\n");
		goto out;
	}
	r.opts.api.timeout_ms = (uint32_t)(timeout > 30000 ? timeout : 30000);
	r.opts.api.max_stream = max_bytes * 2;
	if (api_client_parse(api, &r.opts.api, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "zonedist-check: --api: %s\n", err);
		goto out;
	}
	if (parent_ds && (r.parent_ds = parent_ds_load(parent_ds)) == NULL)
		goto out;
	r.opts.dnssec.parent_ds = r.parent_ds;
	if (r.database == NULL && cfg)
		r.database = cfg->database;
	if (watch && r.database)
		r.store = 1;
	if (r.store && r.database == NULL) {
		fprintf(stderr, "zonedist-check: --store needs --database or --config\n");
		goto out;
	}
	if ((r.results = calloc(r.n_targets, sizeof *r.results)) == NULL)
		goto out;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	int worst_ever = 0;
	for (uint64_t round = 0; !stopping; round++) {
		uint64_t t0 = zd_now_ms();
		r.opts.dnssec.now = now ? (uint32_t)now : (uint32_t)time(NULL);
		int worst = round_run(&r);
		if (worst > worst_ever)
			worst_ever = worst;
		if (r.json)
			print_json(&r, worst);
		else
			print_human(&r);
		if (r.store)
			store_results(&r, &pc);
		for (size_t i = 0; i < r.n_targets; i++) {
			json_decref(r.results[i]);
			r.results[i] = NULL;
		}
		rc = watch ? worst_ever : worst;
		if (!watch || (rounds && round + 1 >= rounds))
			break;
		uint64_t spent = zd_now_ms() - t0;
		for (uint64_t left = watch * 1000 > spent ? watch * 1000 - spent : 0;
		     left > 0 && !stopping; left = left > 100 ? left - 100 : 0)
			usleep(100 * 1000);
	}
out:
	if (pc)
		PQfinish(pc);
	for (size_t i = 0; i < n_tsig; i++) {
		free(tsig[i].name);
		free(tsig[i].algorithm);
		free(tsig[i].secret);
	}
	ldns_rr_list_deep_free(r.parent_ds);
	free(r.results);
	free(zone);
	zd_config_free(cfg);
	return rc;
}
