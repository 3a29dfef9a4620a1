#include "server/metrics.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/keyroll.h"
#include "server/signer.h"
#include "server/store.h"

#define ZL_MAX 2100 /* a 1020-byte presentation name, every byte escaped */

/* Label values escaped as the format wants: backslash, quote, newline. */
static void
label(char *out, size_t cap, const char *v)
{
	size_t k = 0;
	for (; *v && k + 3 < cap; v++) {
		if (*v == '\\' || *v == '"') {
			out[k++] = '\\';
			out[k++] = *v;
		} else if (*v == '\n') {
			out[k++] = '\\';
			out[k++] = 'n';
		} else {
			out[k++] = *v;
		}
	}
	out[k] = '\0';
}

__attribute__((format(printf, 2, 3))) static int
put(struct evbuffer *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = evbuffer_add_vprintf(b, fmt, ap);
	va_end(ap);
	return n < 0;
}

static void
head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One zone-labelled sample per zone: value(i). */
#define PER_ZONE(name, type, help, fmt, expr)                                                      \
	do {                                                                                       \
		head(out, name, type, help);                                                       \
		for (size_t i = 0; i < n; i++) {                                                   \
			const struct metrics_zone *m = &zs[i];                                     \
			(void)m;                                                                   \
			put(out, name "{zone=\"%s\"} " fmt "\n", zl[i], expr);                     \
		}                                                                                  \
	} while (0)

static const char *const kinds[4] = {"AXFR", "IXFR", "IXFR-AXFR", "IXFR-UDP"};
static const char *const results[3] = {"ok", "refused", "error"};

zd_err
metrics_render(struct evbuffer *out, const struct metrics_global *g, const struct metrics_zone *zs,
               size_t n)
{
	char(*zl)[ZL_MAX] = calloc(n ? n : 1, sizeof *zl);
	if (zl == NULL)
		return ZD_ENOMEM;
	for (size_t i = 0; i < n; i++)
		label(zl[i], sizeof zl[i], zs[i].z->cfg->name);

	head(out, "zonedist_database_up", "gauge",
	     "1 while the batch thread's PostgreSQL connection works");
	put(out, "zonedist_database_up %d\n", g->db_up ? 1 : 0);
	head(out, "zonedist_hsm_up", "gauge",
	     "1 while the PKCS#11 token signs, 0 after it went away, -1 without a token");
	put(out, "zonedist_hsm_up %d\n", g->hsm_state);
	head(out, "zonedist_journal_bytes", "gauge",
	     "bytes the journal takes in PostgreSQL (table, indexes, TOAST)");
	put(out, "zonedist_journal_bytes %" PRId64 "\n", g->journal_bytes);
	head(out, "zonedist_checkpoint_bytes", "gauge", "bytes the checkpoints take in PostgreSQL");
	put(out, "zonedist_checkpoint_bytes %" PRId64 "\n", g->checkpoint_bytes);

	/* commit-to-publish latency, a histogram per zone */
	head(out, "zonedist_publish_latency_seconds", "histogram",
	     "from a version's oldest registry change row to its publication");
	for (size_t i = 0; i < n; i++) {
		struct zone *z = zs[i].z;
		uint64_t cum = 0;
		for (size_t k = 0; k < ZONE_LATENCY_BUCKETS; k++) {
			cum += atomic_load(&z->latency_buckets[k]);
			if (k + 1 < ZONE_LATENCY_BUCKETS)
				put(out,
				    "zonedist_publish_latency_seconds_bucket{zone=\"%s\",le=\"%."
				    "3f\"} "
				    "%" PRIu64 "\n",
				    zl[i], (double)zone_latency_le_ms[k] / 1000.0, cum);
			else
				put(out,
				    "zonedist_publish_latency_seconds_bucket{zone=\"%s\",le=\"+"
				    "Inf\"} "
				    "%" PRIu64 "\n",
				    zl[i], cum);
		}
		put(out, "zonedist_publish_latency_seconds_sum{zone=\"%s\"} %.3f\n", zl[i],
		    (double)atomic_load(&z->latency_sum_ms) / 1000.0);
		put(out, "zonedist_publish_latency_seconds_count{zone=\"%s\"} %" PRIu64 "\n", zl[i],
		    cum);
	}
	PER_ZONE("zonedist_serial", "gauge", "the published serial", "%" PRIu32,
	         atomic_load(&m->z->serial));
	PER_ZONE("zonedist_versions_published_total", "counter",
	         "versions published since the start", "%" PRIu64,
	         atomic_load(&m->z->versions_published));
	PER_ZONE("zonedist_changes_consumed_total", "counter",
	         "registry change rows turned into versions since the start", "%" PRIu64,
	         atomic_load(&m->z->changes_consumed));
	PER_ZONE("zonedist_signatures_last_version", "gauge",
	         "RRSIGs the last published version made", "%" PRIu64,
	         atomic_load(&m->z->sigs_last));
	PER_ZONE("zonedist_signatures_total", "counter", "RRSIGs made since the start", "%" PRIu64,
	         atomic_load(&m->z->sigs_total));
	PER_ZONE("zonedist_gate_refusals_total", "counter", "versions the validation gate refused",
	         "%" PRIu64, atomic_load(&m->z->gate_failures));
	PER_ZONE("zonedist_queue_depth", "gauge",
	         "registry change rows waiting in zonedist.change (-1: unknown)", "%" PRId64,
	         m->os.pending_changes);
	PER_ZONE("zonedist_rejected_rows", "gauge", "rows in zonedist.rejected (-1: unknown)",
	         "%" PRId64, m->os.rejected);
	PER_ZONE("zonedist_held", "gauge",
	         "1 while publication is held (operator or sanity limits)", "%d",
	         m->os.held || atomic_load(&m->z->held) ? 1 : 0);
	PER_ZONE("zonedist_delegations", "gauge", "delegations in the published version",
	         "%" PRIu64, atomic_load(&m->z->delegations));

	head(out, "zonedist_store_bytes", "gauge", "memory the zone's store allocated");
	for (size_t i = 0; i < n; i++) {
		struct store_stats st;
		store_stats_get(zs[i].z->store, &st);
		put(out, "zonedist_store_bytes{zone=\"%s\"} %zu\n", zl[i], st.bytes);
	}
	head(out, "zonedist_versions_in_memory", "gauge", "versions the store keeps");
	for (size_t i = 0; i < n; i++) {
		struct store *s = zs[i].z->store;
		uint64_t pub = store_published_get(s), old = store_oldest_get(s);
		put(out, "zonedist_versions_in_memory{zone=\"%s\"} %" PRIu64 "\n", zl[i],
		    pub && old ? pub - old + 1 : 0);
	}

	head(out, "zonedist_signature_validity_min_seconds", "gauge",
	     "smallest remaining validity of a published RRSIG (signed zones, once walked)");
	for (size_t i = 0; i < n; i++)
		if (zs[i].headroom_known)
			put(out,
			    "zonedist_signature_validity_min_seconds{zone=\"%s\"} %" PRId64 "\n",
			    zl[i], zs[i].min_validity_s);
	head(out, "zonedist_signature_headroom_seconds", "gauge",
	     "smallest remaining RRSIG validity minus SOA expire and the largest TTL; "
	     "below 0 a secondary may serve expired signatures");
	for (size_t i = 0; i < n; i++)
		if (zs[i].headroom_known)
			put(out, "zonedist_signature_headroom_seconds{zone=\"%s\"} %" PRId64 "\n",
			    zl[i], zs[i].headroom_s);

	head(out, "zonedist_dnssec_key", "gauge",
	     "1 for each key in use: role, key tag, algorithm");
	for (size_t i = 0; i < n; i++) {
		if (zs[i].z->signer == NULL)
			continue;
		uint16_t ksk, zsk;
		uint8_t alg;
		signer_keys_get(zs[i].z->signer, &ksk, &zsk, &alg);
		put(out,
		    "zonedist_dnssec_key{zone=\"%s\",role=\"ksk\",tag=\"%u\",algorithm=\"%u\","
		    "state=\"active\"} 1\n",
		    zl[i], ksk, alg);
		put(out,
		    "zonedist_dnssec_key{zone=\"%s\",role=\"zsk\",tag=\"%u\",algorithm=\"%u\","
		    "state=\"active\"} 1\n",
		    zl[i], zsk, alg);
		struct keyroll_view rv;
		if (zs[i].z->roll != NULL) {
			keyroll_view_get(zs[i].z->roll, &rv);
			if (rv.extra != 0)
				put(out,
				    "zonedist_dnssec_key{zone=\"%s\",role=\"zsk\",tag=\"%u\","
				    "algorithm=\"%u\",state=\"%s\"} 1\n",
				    zl[i], rv.extra_tag, alg,
				    rv.extra == 1 ? "published" : "retired");
		}
	}

	head(out, "zonedist_parent_ds", "gauge",
	     "1 for the state of the zone's DS at its parent servers: match, no-ds, mismatch, "
	     "unreachable, unknown (docs/KEYS.md)");
	for (size_t i = 0; i < n; i++)
		if (zs[i].parent_known)
			put(out, "zonedist_parent_ds{zone=\"%s\",state=\"%s\"} 1\n", zl[i],
			    probe_parent_state_name(zs[i].parent.state));

	head(out, "zonedist_zsk_roll_next_step_timestamp_seconds", "gauge",
	     "when the ZSK rollover's next step is due (Unix seconds, DNSSEC clock), by step");
	for (size_t i = 0; i < n; i++) {
		struct keyroll_view rv;
		if (zs[i].z->roll == NULL)
			continue;
		keyroll_view_get(zs[i].z->roll, &rv);
		if (rv.due != KEYROLL_NONE)
			put(out,
			    "zonedist_zsk_roll_next_step_timestamp_seconds{zone=\"%s\",step=\"%s\"}"
			    " "
			    "%" PRIu64 "\n",
			    zl[i], keyroll_step_name(rv.due), rv.due_at);
	}
	head(out, "zonedist_ksk_roll_next_step_timestamp_seconds", "gauge",
	     "when the KSK rollover's next step is due (Unix seconds, DNSSEC clock; ds-seen: "
	     "expected, it waits for the parent's DS), by step");
	for (size_t i = 0; i < n; i++) {
		struct keyroll_view rv;
		if (zs[i].z->roll == NULL)
			continue;
		keyroll_view_get(zs[i].z->roll, &rv);
		if (rv.kdue != KEYROLL_NONE)
			put(out,
			    "zonedist_ksk_roll_next_step_timestamp_seconds{zone=\"%s\",step=\"%s\"}"
			    " "
			    "%" PRIu64 "\n",
			    zl[i], keyroll_step_name(rv.kdue), rv.kdue_at);
	}
	head(out, "zonedist_unsign_stage", "gauge",
	     "1 for the stage of a zone going unsigned (dnssec unsign, docs/KEYS.md): "
	     "cds-delete, ds-gone, unsigned");
	for (size_t i = 0; i < n; i++) {
		struct keyroll_view rv;
		if (zs[i].z->roll == NULL)
			continue;
		keyroll_view_get(zs[i].z->roll, &rv);
		if (rv.ustage != 0)
			put(out, "zonedist_unsign_stage{zone=\"%s\",stage=\"%s\"} 1\n", zl[i],
			    keyroll_ustage_name(rv.ustage));
	}
	head(out, "zonedist_algorithm_roll_stage", "gauge",
	     "1 for the stage of a zone's algorithm rollover (docs/KEYS.md): none (configured, "
	     "not begun), signed, published, cds, ds-seen, removed; to is the new algorithm");
	for (size_t i = 0; i < n; i++) {
		struct keyroll_view rv;
		if (zs[i].z->roll == NULL)
			continue;
		keyroll_view_get(zs[i].z->roll, &rv);
		if (rv.astage != 0 || rv.afrom != rv.ato)
			put(out,
			    "zonedist_algorithm_roll_stage{zone=\"%s\",stage=\"%s\",to=\"%u\"} 1\n",
			    zl[i], keyroll_astage_name(rv.astage), rv.ato);
	}
	head(out, "zonedist_offline_ksk_bundles_until_timestamp_seconds", "gauge",
	     "an offline KSK's pre-signed bundles give fresh DNSKEY, CDS and CDNSKEY signatures "
	     "until then (DNSSEC clock, Unix seconds; docs/KEYS.md \"Offline KSK\")");
	for (size_t i = 0; i < n; i++) {
		struct keyroll_view rv;
		if (zs[i].z->roll == NULL)
			continue;
		keyroll_view_get(zs[i].z->roll, &rv);
		if (rv.offline)
			put(out,
			    "zonedist_offline_ksk_bundles_until_timestamp_seconds{zone=\"%s\"} "
			    "%" PRIu64 "\n",
			    zl[i], rv.b_until);
	}
	head(out, "zonedist_zsk_roll_steps_total", "counter",
	     "ZSK rollover steps (publish, activate, remove) made since the start");
	for (size_t i = 0; i < n; i++) {
		struct keyroll_view rv;
		if (zs[i].z->roll == NULL)
			continue;
		keyroll_view_get(zs[i].z->roll, &rv);
		put(out, "zonedist_zsk_roll_steps_total{zone=\"%s\"} %" PRIu64 "\n", zl[i],
		    rv.steps);
	}

	head(out, "zonedist_transfers_total", "counter",
	     "AXFR/IXFR answered since the start, by kind and result");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 4; k++)
			for (int r = 0; r < 3; r++)
				put(out,
				    "zonedist_transfers_total{zone=\"%s\",kind=\"%s\",result=\"%"
				    "s\"} "
				    "%" PRIu64 "\n",
				    zl[i], kinds[k], results[r], zs[i].os.transfers[k][r]);

	head(out, "zonedist_secondary_serial", "gauge",
	     "serial of each secondary's last successful transfer");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < zs[i].n_secs; k++) {
			const struct opdb_secondary *s = &zs[i].secs[k];
			char a[140], key[600];
			if (!s->transferred)
				continue;
			label(a, sizeof a, s->address);
			label(key, sizeof key, s->key);
			put(out,
			    "zonedist_secondary_serial{zone=\"%s\",secondary=\"%s\",key=\"%s\"} "
			    "%" PRIu32 "\n",
			    zl[i], a, key, s->last_serial);
		}
	head(out, "zonedist_secondary_lag_versions", "gauge",
	     "versions published after each secondary's last transferred serial");
	for (size_t i = 0; i < n; i++) {
		struct store *st = zs[i].z->store;
		uint64_t pub = store_published_get(st);
		for (size_t k = 0; k < zs[i].n_secs; k++) {
			const struct opdb_secondary *s = &zs[i].secs[k];
			char a[140], key[600];
			uint64_t v;
			if (!s->transferred ||
			    store_version_find(st, s->last_serial, &v) != ZD_OK || v > pub)
				continue;
			label(a, sizeof a, s->address);
			label(key, sizeof key, s->key);
			put(out,
			    "zonedist_secondary_lag_versions{zone=\"%s\",secondary=\"%s\",key=\"%"
			    "s\"} "
			    "%" PRIu64 "\n",
			    zl[i], a, key, pub - v);
		}
	}
	head(out, "zonedist_secondary_up", "gauge",
	     "1 while a NOTIFY target answers the SOA probe, 0 when it does not");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < zs[i].n_probes; k++) {
			const struct probe_state *ps = &zs[i].probes[k];
			char a[200];
			if (!ps->known)
				continue;
			label(a, sizeof a, zs[i].z->cfg->notify[k].text);
			put(out, "zonedist_secondary_up{zone=\"%s\",secondary=\"%s\"} %d\n", zl[i],
			    a, ps->reachable ? 1 : 0);
		}
	head(out, "zonedist_secondary_probe_serial", "gauge",
	     "the serial each NOTIFY target answered the SOA probe with");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < zs[i].n_probes; k++) {
			const struct probe_state *ps = &zs[i].probes[k];
			char a[200];
			if (!ps->known || !ps->has_serial)
				continue;
			label(a, sizeof a, zs[i].z->cfg->notify[k].text);
			put(out,
			    "zonedist_secondary_probe_serial{zone=\"%s\",secondary=\"%s\"} %" PRIu32
			    "\n",
			    zl[i], a, ps->serial);
		}
	head(out, "zonedist_transfer_log_dropped_total", "counter",
	     "transfer/publication log rows dropped because the database was away too long");
	put(out, "zonedist_transfer_log_dropped_total %" PRIu64 "\n",
	    n ? zs[0].os.dropped_log_rows : 0);
	free(zl);
	return ZD_OK;
}
