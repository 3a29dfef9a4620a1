/* server/zonedistd.c -- the daemon: configuration, start-up, the event loop
 * (transfer server) and the batch thread, clean shutdown on SIGTERM/SIGINT.
 *
 *   zonedistd --config FILE            run
 *   zonedistd --config FILE --init-db  install or upgrade the zonedist schema
 *   zonedistd --config FILE --check    check the configuration and exit
 *   zonedistd --config FILE --dump ZONE [--serial S]
 *                                      print the zone at serial S (default:
 *                                      the newest) as a master file, rebuilt
 *                                      from the checkpoint and the journal
 *
 * Start-up errors (configuration, database, schema, bind) are said once on
 * stderr and end the process with status 1 (2 for usage).  After start-up
 * nothing exits: an unreachable database stops publishing, the last
 * published serials keep being served. */
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_clock.h"
#include "common/zd_config.h"
#include "common/zd_log.h"
#include "common/zd_parse.h"
#include "server/alarm.h"
#include "server/api.h"
#include "server/batch.h"
#include "server/checkpoint.h"
#include "server/journal.h"
#include "server/keyroll.h"
#include "server/kskbundle.h"
#include "server/keybackup.h"
#include "server/keystate.h"
#include "server/opdb.h"
#include "server/probe.h"
#include "hsm/pool.h"
#include "server/signer.h"
#include "server/xfr.h"
#include "server/zone.h"

struct daemon {
	struct zd_config *cfg;
	struct zone **zones;
	size_t n_zones;
	struct event_base *base;
	struct xfr_server *xfr;
	struct api *api;
	struct opdb *opdb;
	struct probe *probe;
	struct alarms *alarms;
	struct batch *batch;
	struct ckpt *ckpt;
	struct signer_token *token; /* NULL when no zone signs */
	struct event *sigterm, *sigint;
};

/* Under LeakSanitizer (the test build): SoftHSM 2.6.1 leaks a decoded ASN.1
 * object in every Ed25519 C_SignInit (opendnssec/SoftHSMv2 issue 863).
 * Only leaks allocated inside the module are ignored; ours are reported. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:libsofthsm2.so\n";
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: zonedistd --config FILE [--init-db | --check | --dump ZONE "
	           "[--serial S] | --release ZONE --by NAME\n"
	           "                 | --install-wrap-key TOKEN --so-pin-file FILE "
	           "--wrap-key-file FILE\n"
	           "                 | --restore-keys [BACKUP-FILE...]]\n");
}

static zd_err
print_rr(void *arg, const ldns_rr *rr)
{
	ldns_rr_print((FILE *)arg, rr);
	return ferror((FILE *)arg) ? ZD_EIO : ZD_OK;
}

/* The zone at a serial, from PostgreSQL alone (no running daemon needed). */
static int
dump_zone(const struct zd_config *cfg, const char *zone_arg, const char *serial_arg)
{
	char err[1024];
	char *zname = zd_name_normalize(zone_arg);
	const struct zd_zone_config *zc = zname ? zd_config_zone_find(cfg, zname) : NULL;
	struct store *s = NULL;
	PGconn *c = NULL;
	uint32_t serial = 0;
	uint64_t version = 0;
	int found = 0, rc = 1;

	if (zc == NULL) {
		fprintf(stderr, "zonedistd: zone %s is not configured\n", zone_arg);
		goto out;
	}
	if (serial_arg && zd_parse_u32(serial_arg, 0, UINT32_MAX, &serial) != ZD_OK) {
		fprintf(stderr, "zonedistd: --serial takes a number from 0 to 4294967295\n");
		goto out;
	}
	c = PQconnectdb(cfg->database);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "zonedistd: cannot connect to the database: %s", PQerrorMessage(c));
		goto out;
	}
	if (serial_arg) {
		zd_err e = journal_version_find(c, zc->name, serial, &version, err, sizeof err);
		if (e == ZD_ENOTFOUND) {
			fprintf(stderr, "zonedistd: zone %s never had serial %u\n", zc->name,
			        serial);
			goto out;
		}
		if (e != ZD_OK) {
			fprintf(stderr, "zonedistd: %s\n", err);
			goto out;
		}
	}
	/* The nearest checkpoint at or below the version, then the journal. */
	zd_err le = store_new(zc->name, &s);
	if (le == ZD_OK)
		le = version ? journal_zone_load_upto(c, zc->name, s, version, &found, err,
		                                      sizeof err)
		             : journal_zone_load(c, zc->name, s, &found, err, sizeof err);
	if (le != ZD_OK) {
		fprintf(stderr, "zonedistd: loading %s: %s\n", zc->name, err);
		goto out;
	}
	if (!found) {
		fprintf(stderr, "zonedistd: zone %s has no version yet\n", zc->name);
		goto out;
	}
	version = store_published_get(s);
	struct store_cursor cur = STORE_CURSOR_INIT;
	while (!cur.done)
		if (store_walk(s, version, &cur, 1024, print_rr, stdout) != ZD_OK) {
			fprintf(stderr, "zonedistd: writing the zone failed\n");
			goto out;
		}
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	store_free(s);
	PQfinish(c);
	free(zname);
	return rc;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	(void)what;
	zd_log(ZD_LOG_NOTICE, "main", NULL, "signal %d: shutting down", (int)sig);
	event_base_loopbreak(d->base);
}

/* Batch thread -> loop: thread-safe by xfr's contract. */
static void
on_published(void *arg, struct zone *z)
{
	struct daemon *d = arg;
	xfr_zone_published(d->xfr, z->cfg->name);
	uint64_t v = store_published_get(z->store), ms = 0;
	uint32_t serial = 0;
	if (d->opdb && store_serial_find(z->store, v, &serial) == ZD_OK &&
	    store_version_time_find(z->store, v, &ms) == ZD_OK)
		opdb_published(d->opdb, z, v, serial, ms);
}

static int
init_db(const struct zd_config *cfg)
{
	char err[1024];
	PGconn *c = PQconnectdb(cfg->database);
	int rc = 0;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "zonedistd: cannot connect to the database: %s", PQerrorMessage(c));
		PQfinish(c);
		return 1;
	}
	if (journal_schema_install(c, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "zonedistd: --init-db failed: %s\n", err);
		rc = 1;
	} else {
		printf("zonedist schema is at version %d\n", journal_schema_version_get());
	}
	PQfinish(c);
	return rc;
}

/* An offline KSK's zone, before its roll state is read: the KSK the last
 * ceremony signed with (a public half), or, before the first ceremony, the
 * KSK token's (found or generated there). */
static zd_err
offline_keys(struct daemon *d, struct zone *z, PGconn *c, char *err, size_t errlen)
{
	char why[400];
	zd_err e = kskb_load(c, z->cfg->name, &z->kskb, why, sizeof why);
	if (e != ZD_OK) {
		snprintf(err, errlen, "offline KSK: %s", why);
		return e;
	}
	const ldns_rr *k = kskb_ksk_get(z->kskb);
	if (k != NULL) {
		const ldns_rdf *pub = ldns_rr_dnskey_key(k);
		struct hsm_key *h = NULL;
		char label[300];
		snprintf(label, sizeof label, "%s KSK", z->cfg->name);
		e = pub ? hsm_key_public_new(ldns_rdf2native_int8(ldns_rr_dnskey_algorithm(k)),
		                             ldns_rdf_data(pub), ldns_rdf_size(pub), label, &h)
		        : ZD_EMALFORMED;
		if (e == ZD_OK)
			e = signer_offline_ksk_add(z->signer, h);
		if (e != ZD_OK)
			snprintf(err, errlen, "offline KSK: the KSK of the last ceremony: %s",
			         zd_strerror(e));
	} else if ((e = kskb_ksk_fetch(z->signer, z->cfg, &d->cfg->hsm, why, sizeof why)) !=
	           ZD_OK) {
		snprintf(err, errlen,
		         "offline KSK: no ceremony yet, and %s: connect the KSK token for the "
		         "first one",
		         why);
	}
	signer_offline_bundles_set(z->signer, z->kskb);
	return e;
}

/* An offline KSK's zone once its roll state is read: a ceremony when there
 * are no bundles yet or they end within bundle-warn and the KSK token is
 * connected.  Without bundles and without the token the zone cannot be
 * signed: the start is refused. */
static zd_err
offline_ceremony(struct daemon *d, struct zone *z, PGconn *c, char *err, size_t errlen)
{
	uint64_t now = zd_clock_s();
	if (z->kskb != NULL && now + z->cfg->dnssec.keys.bundle_warn < kskb_until_get(z->kskb)) {
		keyroll_offline_set(z->roll, z->kskb);
		return ZD_OK;
	}
	char why[400];
	struct kskb *nb = NULL;
	zd_err e = keyroll_ceremony(z->roll, &d->cfg->hsm, now, c, &nb, why, sizeof why);
	keyroll_ceremony_done(z->roll, e == ZD_OK ? NULL : why);
	if (e == ZD_OK) {
		signer_offline_bundles_set(z->signer, nb);
		kskb_free(z->kskb);
		z->kskb = nb;
	} else if (z->kskb == NULL) {
		snprintf(err, errlen, "offline KSK: the first ceremony failed: %s", why);
		return e;
	} else {
		zd_log(ZD_LOG_WARNING, "main", z->cfg->name,
		       "offline KSK: the bundles end soon and no ceremony was made: %s", why);
	}
	keyroll_offline_set(z->roll, z->kskb);
	return ZD_OK;
}

/* Each signed zone's keys in zonedist.key, and their activation times on
 * record (the start of the rollover schedule, docs/KEYS.md). */
static zd_err
keys_record(struct daemon *d, char *err, size_t errlen)
{
	char why[512];
	PGconn *c = PQconnectdb(d->cfg->database);
	zd_err e = ZD_OK;

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot record the key state: %s", PQerrorMessage(c));
		PQfinish(c);
		return ZD_EDB;
	}
	if ((e = journal_schema_check(c, why, sizeof why)) != ZD_OK)
		snprintf(err, errlen, "%s", why);
	for (size_t i = 0; e == ZD_OK && i < d->n_zones; i++) {
		struct zone *z = d->zones[i];
		uint16_t ksk, zsk;
		uint8_t alg;
		if (z->signer == NULL)
			continue;
		if (z->cfg->dnssec.keys.offline_ksk &&
		    (e = offline_keys(d, z, c, why, sizeof why)) != ZD_OK) {
			snprintf(err, errlen, "zone %s: %s", z->cfg->name, why);
			break;
		}
		/* the ZSK roll's state first: it says which ZSK is active */
		e = keyroll_new(z->cfg, z->signer, c, &z->roll, why, sizeof why);
		if (e == ZD_OK) {
			signer_keys_get(z->signer, &ksk, &zsk, &alg);
			e = keystate_record(c, z->cfg->name, alg, ksk, zsk, zd_clock_s(),
			                    &z->ksk_active_s, &z->zsk_active_s, why, sizeof why);
		}
		if (e != ZD_OK) {
			snprintf(err, errlen, "zone %s: %s", z->cfg->name, why);
			break;
		}
		keyroll_active_at_set(z->roll, z->ksk_active_s, z->zsk_active_s);
		if (z->cfg->dnssec.keys.offline_ksk &&
		    (e = offline_ceremony(d, z, c, why, sizeof why)) != ZD_OK) {
			snprintf(err, errlen, "zone %s: %s", z->cfg->name, why);
			break;
		}
	}
	PQfinish(c);
	return e;
}

/* The token and each signed zone's keys (found or generated). */
static zd_err
signers_start(struct daemon *d, char *err, size_t errlen)
{
	size_t n_signed = 0;
	zd_err e;

	for (size_t i = 0; i < d->n_zones; i++)
		n_signed += d->zones[i]->cfg->dnssec.enabled != 0;
	if (n_signed == 0)
		return ZD_OK;
	if ((e = signer_token_new(&d->cfg->hsm, &d->token, err, errlen)) != ZD_OK)
		return e;
	for (size_t i = 0; i < d->n_zones; i++) {
		struct zone *z = d->zones[i];
		if (!z->cfg->dnssec.enabled)
			continue;
		char why[512];
		if ((e = signer_new(z->cfg, d->token, &z->signer, why, sizeof why)) != ZD_OK) {
			snprintf(err, errlen, "zone %s: keys: %s", z->cfg->name, why);
			return e;
		}
		if ((e = keybackup_sweep(z->signer, err, errlen)) != ZD_OK)
			return e;
		const char *corrupt = getenv("ZD_TEST_CORRUPT_SIGNATURE");
		if (corrupt != NULL) /* test hook, never in production */
			signer_test_corrupt_set(z->signer, corrupt);
		const char *collide = getenv("ZD_TEST_ZSK_TAG_COLLISIONS");
		uint64_t nc = 0;
		if (collide != NULL && zd_parse_u64(collide, 0, 64, &nc) == ZD_OK) /* test hook */
			signer_test_zsk_collisions(z->signer, (unsigned)nc);
	}
	zd_log(ZD_LOG_NOTICE, "main", NULL, "token '%s' ready: %zu signed zones",
	       d->cfg->hsm.token_label, n_signed);
	return keys_record(d, err, errlen);
}

/* An operator's release of a version held by the sanity limits. */
static int
release_zone(const struct zd_config *cfg, const char *zone, const char *by)
{
	char err[1024], *name = zd_name_normalize(zone);
	PGconn *c = NULL;
	int rc = 1;

	if (name == NULL || zd_config_zone_find(cfg, name) == NULL) {
		fprintf(stderr, "zonedistd: zone %s is not in the configuration\n", zone);
		goto out;
	}
	if (by == NULL || *by == '\0' || strlen(by) > 200) {
		fprintf(stderr, "zonedistd: --release needs --by NAME (who releases, for the "
		                "record)\n");
		goto out;
	}
	c = PQconnectdb(cfg->database);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "zonedistd: cannot connect to the database: %s", PQerrorMessage(c));
		goto out;
	}
	if (journal_schema_check(c, err, sizeof err) != ZD_OK ||
	    journal_release_add(c, name, by, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "zonedistd: %s\n", err);
		goto out;
	}
	printf("released: the next held version of %s will be published (by %s)\n", name, by);
	rc = 0;
out:
	PQfinish(c);
	free(name);
	return rc;
}

static void
daemon_clear(struct daemon *d)
{
	if (d->batch)
		batch_stop(d->batch);
	batch_free(d->batch);
	ckpt_free(d->ckpt);
	probe_free(d->probe);
	api_alarms_set(d->api, NULL); /* no evaluation after the loop */
	alarms_free(d->alarms);
	opdb_free(d->opdb); /* answers its open questions through the API */
	api_free(d->api);
	xfr_server_free(d->xfr);
	if (d->sigterm)
		event_free(d->sigterm);
	if (d->sigint)
		event_free(d->sigint);
	if (d->base)
		event_base_free(d->base);
	for (size_t i = 0; i < d->n_zones; i++) {
		keyroll_free(d->zones[i]->roll);
		signer_free(d->zones[i]->signer);
		kskb_free(d->zones[i]->kskb);
		zone_free(d->zones[i]);
	}
	signer_token_free(d->token);
	free(d->zones);
	zd_config_free(d->cfg);
	libevent_global_shutdown();
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"init-db", no_argument, NULL, 'i'},
	        {"check", no_argument, NULL, 'k'},
	        {"dump", required_argument, NULL, 'd'},
	        {"serial", required_argument, NULL, 's'},
	        {"release", required_argument, NULL, 'r'},
	        {"by", required_argument, NULL, 'b'},
	        {"install-wrap-key", required_argument, NULL, 'W'},
	        {"so-pin-file", required_argument, NULL, 'S'},
	        {"wrap-key-file", required_argument, NULL, 'K'},
	        {"restore-keys", no_argument, NULL, 'R'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *config = NULL, *dump = NULL, *serial = NULL, *release = NULL, *by = NULL;
	const char *wrap_token = NULL, *so_pin_file = NULL, *wrap_key_file = NULL;
	int do_init = 0, do_check = 0, do_restore = 0, ch, rc = 1;
	struct daemon d = {0};
	char err[1024];

	/* A signing process of a full signing (hsm/pool.h), started by us. */
	if (hsm_pool_worker_is(argc, argv))
		return hsm_pool_worker_main(argc, argv);

	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'i':
			do_init = 1;
			break;
		case 'k':
			do_check = 1;
			break;
		case 'd':
			dump = optarg;
			break;
		case 's':
			serial = optarg;
			break;
		case 'r':
			release = optarg;
			break;
		case 'b':
			by = optarg;
			break;
		case 'W':
			wrap_token = optarg;
			break;
		case 'S':
			so_pin_file = optarg;
			break;
		case 'K':
			wrap_key_file = optarg;
			break;
		case 'R':
			do_restore = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (config == NULL || (optind != argc && !do_restore) ||
	    (wrap_token != NULL) != (so_pin_file != NULL && wrap_key_file != NULL)) {
		usage(stderr);
		return 2;
	}
	if (zd_config_load(config, &d.cfg, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "zonedistd: %s: %s\n", config, err);
		return 1;
	}
	zd_log_level_set((enum zd_log_level)d.cfg->log_level);
	if (wrap_token != NULL || do_restore) {
		/* SoftHSM reads SOFTHSM2_CONF; nothing else is started */
		rc = wrap_token ? keybackup_install_wrapkey(d.cfg, wrap_token, so_pin_file,
		                                            wrap_key_file)
		                : keybackup_restore(d.cfg, argv + optind, (size_t)(argc - optind));
		zd_config_free(d.cfg);
		return rc;
	}
	if (do_init || dump || release) {
		rc = do_init ? init_db(d.cfg)
		     : dump  ? dump_zone(d.cfg, dump, serial)
		             : release_zone(d.cfg, release, by);
		zd_config_free(d.cfg);
		return rc;
	}
	d.zones = calloc(d.cfg->n_zones ? d.cfg->n_zones : 1, sizeof *d.zones);
	if (d.zones == NULL)
		goto out;
	for (size_t i = 0; i < d.cfg->n_zones; i++) {
		if (zone_new(&d.cfg->zones[i], &d.zones[i], err, sizeof err) != ZD_OK) {
			fprintf(stderr, "zonedistd: %s: %s\n", config, err);
			goto out;
		}
		d.n_zones++;
	}
	if (do_check) {
		printf("%s: configuration is valid (%zu zones)\n", config, d.n_zones);
		rc = 0;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if (signers_start(&d, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "zonedistd: %s\n", err);
		zd_log(ZD_LOG_ERROR, "main", NULL, "start-up failed: %s", err);
		goto out;
	}
	if (evthread_use_pthreads() != 0 || (d.base = event_base_new()) == NULL) {
		fprintf(stderr, "zonedistd: cannot set up libevent\n");
		goto out;
	}
	if (xfr_server_new(d.base, d.cfg, &d.xfr) != ZD_OK) {
		fprintf(stderr, "zonedistd: cannot set up the transfer server (a TSIG secret that "
		                "is not base64?)\n");
		goto out;
	}
	if (batch_new(d.cfg, d.zones, d.n_zones, on_published, &d, &d.batch) != ZD_OK)
		goto out;
	batch_token_set(d.batch, d.token);
	zd_log(ZD_LOG_NOTICE, "main", NULL, "zonedistd starting: %zu zones", d.n_zones);
	if (zd_clock_file_get() != NULL) /* a test's clock, never in production */
		zd_log(ZD_LOG_WARNING, "main", NULL,
		       "the DNSSEC clock is simulated: signatures and key rollovers follow the "
		       "time in %s (ZD_TEST_CLOCK_FILE), now %" PRIu64,
		       zd_clock_file_get(), zd_clock_s());
	if (batch_load(d.batch, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "zonedistd: %s\n", err);
		zd_log(ZD_LOG_ERROR, "main", NULL, "start-up failed: %s", err);
		goto out;
	}
	for (size_t i = 0; i < d.n_zones; i++)
		if (xfr_server_zone_add(d.xfr, d.zones[i]->cfg, d.zones[i]->store) != ZD_OK)
			goto out;
	if (xfr_server_listen(d.xfr) != ZD_OK) {
		fprintf(stderr, "zonedistd: cannot listen (see the log)\n");
		goto out;
	}
	if (opdb_new(d.cfg, d.zones, d.n_zones, d.base, &d.opdb, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "zonedistd: %s\n", err);
		zd_log(ZD_LOG_ERROR, "main", NULL, "start-up failed: %s", err);
		goto out;
	}
	xfr_server_observer_set(d.xfr, opdb_transfer, d.opdb);
	if (api_new(d.base, d.cfg, d.zones, d.n_zones, d.opdb, &d.api) != ZD_OK ||
	    api_listen(d.api) != ZD_OK) {
		fprintf(stderr, "zonedistd: cannot start the HTTP API (see the log)\n");
		goto out;
	}
	if (probe_new(d.cfg, d.zones, d.n_zones, &d.probe) != ZD_OK ||
	    probe_start(d.probe) != ZD_OK)
		goto out;
	api_batch_set(d.api, d.batch, d.probe);
	if (alarms_new(d.cfg, &d.alarms, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "zonedistd: %s\n", err);
		zd_log(ZD_LOG_ERROR, "main", NULL, "start-up failed: %s", err);
		goto out;
	}
	if (alarms_start(d.alarms) != ZD_OK || api_alarms_set(d.api, d.alarms) != ZD_OK)
		goto out;
	d.sigterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
	d.sigint = evsignal_new(d.base, SIGINT, on_signal, &d);
	if (d.sigterm == NULL || d.sigint == NULL || event_add(d.sigterm, NULL) != 0 ||
	    event_add(d.sigint, NULL) != 0)
		goto out;
	if (ckpt_new(d.cfg->database, d.zones, d.n_zones, &d.ckpt) != ZD_OK ||
	    ckpt_start(d.ckpt) != ZD_OK)
		goto out;
	batch_checkpointer_set(d.batch, d.ckpt);
	if (opdb_start(d.opdb) != ZD_OK || batch_start(d.batch) != ZD_OK)
		goto out;
	for (size_t i = 0; i < d.n_zones; i++)
		xfr_zone_published(d.xfr, d.zones[i]->cfg->name); /* tell secondaries at once */
	zd_log(ZD_LOG_NOTICE, "main", NULL, "zonedistd ready");
	event_base_dispatch(d.base);
	rc = 0;
out:
	daemon_clear(&d);
	return rc;
}
