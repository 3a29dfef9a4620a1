#include "server/loadpipe.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOADPIPE_DEPTH_MAX 16
#define LOADPIPE_ERR_MAX   512

struct loadpipe {
	struct ra *ra;
	struct ra_batch *rb;
	size_t rows, depth;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	ldns_rr_list *q[LOADPIPE_DEPTH_MAX]; /* q[head .. head + n) mod depth */
	size_t head, n;
	/* Lists the caller is done with, freed on the reader's thread: freeing
	 * a million records on another thread than the one that allocated
	 * them costs glibc's malloc twice over (arena lock, fast bins
	 * consolidated on both sides). At most depth + 1 (the caller holds
	 * one, hands it back, then takes the next). */
	ldns_rr_list *done[LOADPIPE_DEPTH_MAX + 1];
	size_t n_done;
	int ended; /* the reader is done: every row read, or failed */
	int stop;  /* the caller wants no more */
	zd_err e;  /* the reader's failure */
	char err[LOADPIPE_ERR_MAX];
};

static void *
reader_main(void *arg)
{
	struct loadpipe *lp = arg;
	zd_err e = ZD_OK;
	int done = 0;

	while (!done) {
		ldns_rr_list *spent[LOADPIPE_DEPTH_MAX + 1];
		size_t n_spent;

		pthread_mutex_lock(&lp->mu);
		n_spent = lp->n_done;
		memcpy(spent, lp->done, n_spent * sizeof spent[0]);
		lp->n_done = 0;
		pthread_mutex_unlock(&lp->mu);
		for (size_t i = 0; i < n_spent; i++)
			ldns_rr_list_deep_free(spent[i]);

		ldns_rr_list *l = ldns_rr_list_new();
		if (l == NULL) {
			e = ZD_ENOMEM;
			snprintf(lp->err, sizeof lp->err, "out of memory");
			break;
		}
		e = ra_full_next(lp->rb, lp->rows, l, &done);
		if (e != ZD_OK) {
			ldns_rr_list_free(l); /* ra_full_next left it empty */
			pthread_mutex_lock(&lp->mu);
			snprintf(lp->err, sizeof lp->err, "%s", ra_error_get(lp->ra));
			pthread_mutex_unlock(&lp->mu);
			break;
		}
		pthread_mutex_lock(&lp->mu);
		while (lp->n == lp->depth && !lp->stop)
			pthread_cond_wait(&lp->cv, &lp->mu);
		if (lp->stop) {
			pthread_mutex_unlock(&lp->mu);
			ldns_rr_list_deep_free(l);
			break;
		}
		lp->q[(lp->head + lp->n) % lp->depth] = l;
		lp->n++;
		pthread_cond_broadcast(&lp->cv);
		pthread_mutex_unlock(&lp->mu);
	}
	pthread_mutex_lock(&lp->mu);
	lp->e = e;
	lp->ended = 1;
	pthread_cond_broadcast(&lp->cv);
	pthread_mutex_unlock(&lp->mu);
	return NULL;
}

zd_err
loadpipe_start(struct ra *ra, struct ra_batch *rb, size_t rows, size_t depth, struct loadpipe **out)
{
	if (ra == NULL || rb == NULL || out == NULL || rows == 0 || rows > RA_FETCH_MAX ||
	    depth == 0 || depth > LOADPIPE_DEPTH_MAX)
		return ZD_EBUG;
	struct loadpipe *lp = calloc(1, sizeof *lp);
	if (lp == NULL)
		return ZD_ENOMEM;
	lp->ra = ra;
	lp->rb = rb;
	lp->rows = rows;
	lp->depth = depth;
	if (pthread_mutex_init(&lp->mu, NULL) != 0) {
		free(lp);
		return ZD_ENOMEM;
	}
	if (pthread_cond_init(&lp->cv, NULL) != 0) {
		pthread_mutex_destroy(&lp->mu);
		free(lp);
		return ZD_ENOMEM;
	}
	if (pthread_create(&lp->thread, NULL, reader_main, lp) != 0) {
		pthread_cond_destroy(&lp->cv);
		pthread_mutex_destroy(&lp->mu);
		free(lp);
		return ZD_ENOMEM;
	}
	pthread_setname_np(lp->thread, "zd-load");
	*out = lp;
	return ZD_OK;
}

zd_err
loadpipe_next(struct loadpipe *lp, ldns_rr_list **out)
{
	zd_err e = ZD_OK;

	*out = NULL;
	pthread_mutex_lock(&lp->mu);
	while (lp->n == 0 && !lp->ended)
		pthread_cond_wait(&lp->cv, &lp->mu);
	if (lp->n > 0) {
		/* what was read before a failure is still good, in order */
		*out = lp->q[lp->head];
		lp->q[lp->head] = NULL;
		lp->head = (lp->head + 1) % lp->depth;
		lp->n--;
		pthread_cond_broadcast(&lp->cv);
	} else {
		e = lp->e;
	}
	pthread_mutex_unlock(&lp->mu);
	return e;
}

void
loadpipe_done(struct loadpipe *lp, ldns_rr_list *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&lp->mu);
	if (!lp->ended && lp->n_done < sizeof lp->done / sizeof lp->done[0]) {
		lp->done[lp->n_done++] = l;
		l = NULL;
	}
	pthread_mutex_unlock(&lp->mu);
	ldns_rr_list_deep_free(l); /* the reader has ended: freed here */
}

const char *
loadpipe_error(const struct loadpipe *lp)
{
	return lp->err;
}

void
loadpipe_free(struct loadpipe *lp)
{
	if (lp == NULL)
		return;
	pthread_mutex_lock(&lp->mu);
	lp->stop = 1;
	pthread_cond_broadcast(&lp->cv);
	pthread_mutex_unlock(&lp->mu);
	pthread_join(lp->thread, NULL);
	for (size_t i = 0; i < lp->n; i++)
		ldns_rr_list_deep_free(lp->q[(lp->head + i) % lp->depth]);
	for (size_t i = 0; i < lp->n_done; i++)
		ldns_rr_list_deep_free(lp->done[i]);
	pthread_cond_destroy(&lp->cv);
	pthread_mutex_destroy(&lp->mu);
	free(lp);
}
