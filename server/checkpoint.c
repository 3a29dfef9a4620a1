#include "server/checkpoint.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/zd_log.h"
#include "server/journal.h"

#define CHUNK_BYTES ((size_t)8 << 20)

struct ckpt {
	const char *conninfo;
	struct zone **zones;
	size_t n_zones;
	uint64_t *wanted; /* per zone: version asked for, 0 = none; under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running;
	int stop; /* under mu */
	_Atomic uint64_t written;
	PGconn *conn; /* checkpoint thread only */
};

zd_err
ckpt_new(const char *conninfo, struct zone **zones, size_t n_zones, struct ckpt **out)
{
	struct ckpt *k = calloc(1, sizeof *k);
	if (k == NULL)
		return ZD_ENOMEM;
	k->wanted = calloc(n_zones ? n_zones : 1, sizeof *k->wanted);
	if (k->wanted == NULL) {
		free(k);
		return ZD_ENOMEM;
	}
	k->conninfo = conninfo;
	k->zones = zones;
	k->n_zones = n_zones;
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	*out = k;
	return ZD_OK;
}

void
ckpt_free(struct ckpt *k)
{
	if (k == NULL)
		return;
	ckpt_stop(k);
	PQfinish(k->conn);
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	free(k->wanted);
	free(k);
}

void
ckpt_request(struct ckpt *k, size_t zone_index, uint64_t version)
{
	if (k == NULL || zone_index >= k->n_zones)
		return;
	pthread_mutex_lock(&k->mu);
	if (version > k->wanted[zone_index])
		k->wanted[zone_index] = version;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

uint64_t
ckpt_written_get(struct ckpt *k)
{
	return atomic_load(&k->written);
}

static zd_err
exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	zd_err e = PQresultStatus(r) == PGRES_COMMAND_OK ? ZD_OK : ZD_EDB;
	PQclear(r);
	return e;
}

static void
write_one(struct ckpt *k, struct zone *z, uint64_t version)
{
	char err[512] = "";
	uint64_t t0 = zd_now_ms();
	uint32_t serial = 0;
	zd_err e;

	if (k->conn == NULL || PQstatus(k->conn) != CONNECTION_OK) {
		PQfinish(k->conn);
		k->conn = PQconnectdb(k->conninfo);
		if (PQstatus(k->conn) != CONNECTION_OK) {
			zd_log(ZD_LOG_WARNING, "checkpoint", z->cfg->name,
			       "checkpoint of version %" PRIu64 " not written: cannot connect: %s",
			       version, PQerrorMessage(k->conn));
			return;
		}
	}
	/* The walk takes many steps while the batch thread publishes and
	 * prunes: keep the version until the checkpoint is written. */
	if (store_version_pin(z->store, version) != ZD_OK) {
		zd_log(ZD_LOG_WARNING, "checkpoint", z->cfg->name,
		       "checkpoint of version %" PRIu64 " not written: no longer in memory",
		       version);
		return;
	}
	store_serial_find(z->store, version, &serial);
	if ((e = exec(k->conn, "BEGIN")) == ZD_OK) {
		e = journal_checkpoint_write(k->conn, z->cfg->name, z->store, version, CHUNK_BYTES,
		                             err, sizeof err);
		if (e == ZD_OK && (e = exec(k->conn, "COMMIT")) != ZD_OK)
			snprintf(err, sizeof err, "COMMIT: %s", PQerrorMessage(k->conn));
		if (e != ZD_OK)
			PQclear(PQexec(k->conn, "ROLLBACK"));
	} else {
		snprintf(err, sizeof err, "BEGIN: %s", PQerrorMessage(k->conn));
	}
	store_version_unpin(z->store, version);
	if (e != ZD_OK) {
		zd_log(ZD_LOG_WARNING, "checkpoint", z->cfg->name,
		       "checkpoint of version %" PRIu64 " (serial %" PRIu32 ") not written: %s",
		       version, serial, err);
		return;
	}
	atomic_fetch_add(&k->written, 1);
	zd_log(ZD_LOG_NOTICE, "checkpoint", z->cfg->name,
	       "checkpoint of version %" PRIu64 " (serial %" PRIu32 ") written in %" PRIu64 " ms",
	       version, serial, zd_now_ms() - t0);
}

static void *
loop(void *arg)
{
	struct ckpt *k = arg;

	pthread_mutex_lock(&k->mu);
	while (!k->stop) {
		size_t zi = k->n_zones;
		for (size_t i = 0; i < k->n_zones && zi == k->n_zones; i++)
			if (k->wanted[i] != 0)
				zi = i;
		if (zi == k->n_zones) {
			pthread_cond_wait(&k->cv, &k->mu);
			continue;
		}
		uint64_t version = k->wanted[zi];
		k->wanted[zi] = 0;
		pthread_mutex_unlock(&k->mu);
		write_one(k, k->zones[zi], version);
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

zd_err
ckpt_start(struct ckpt *k)
{
	if (k->running)
		return ZD_OK;
	k->stop = 0;
	if (pthread_create(&k->thread, NULL, loop, k) != 0)
		return ZD_ENOMEM;
	k->running = 1;
	pthread_setname_np(k->thread, "zd-checkpoint"); /* top -H, perf */
	return ZD_OK;
}

void
ckpt_stop(struct ckpt *k)
{
	if (!k->running)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = 1;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	k->running = 0;
}
