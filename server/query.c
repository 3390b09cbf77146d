/* query.c - the query pool. */
#include "server/query.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"
#include "server/db.h"

/* Longest a query API statement may run: dashboards retry, a stuck
 * thread helps nobody. */
#define STATEMENT_TIMEOUT "30s"

struct query_pool {
	const struct config *cfg;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct query_job *head, *tail;	/* guarded by mu */
	bool stopping;			/* guarded by mu */
	pthread_t *threads;
	size_t n_threads;
};

static struct query_job *
next_job(struct query_pool *pool)
{
	struct query_job *job;

	pthread_mutex_lock(&pool->mu);
	while (pool->head == NULL && !pool->stopping) {
		pthread_cond_wait(&pool->cond, &pool->mu);
	}
	job = pool->head;
	if (job != NULL) {
		pool->head = job->next;
		if (pool->head == NULL) {
			pool->tail = NULL;
		}
	}
	pthread_mutex_unlock(&pool->mu);
	return job;
}

static PGconn *
connection(struct query_pool *pool, PGconn *pg, struct error *err)
{
	if (pg != NULL && PQstatus(pg) == CONNECTION_OK) {
		return pg;
	}
	PQfinish(pg);
	pg = db_connect(pool->cfg->database_url, err);
	if (pg != NULL && !db_exec(pg, "SET statement_timeout = '"
	    STATEMENT_TIMEOUT "'", 0, NULL, err)) {
		PQfinish(pg);
		pg = NULL;
	}
	return pg;
}

static void *
pool_main(void *arg)
{
	struct query_pool *pool = arg;
	struct query_job *job;
	PGconn *pg = NULL;

	while ((job = next_job(pool)) != NULL) {
		error_clear(&job->err);
		pg = connection(pool, pg, &job->err);
		job->ok = pg != NULL && job->run(pg, job, &job->err);
		if (pg != NULL && PQstatus(pg) == CONNECTION_OK &&
		    PQtransactionStatus(pg) != PQTRANS_IDLE) {
			struct error ignored;
			db_exec(pg, "ROLLBACK", 0, NULL, &ignored);
		}
		job->done(job);
	}
	PQfinish(pg);
	return NULL;
}

struct query_pool *
query_pool_new(const struct config *cfg, struct error *err)
{
	struct query_pool *pool = calloc(1, sizeof(*pool));

	if (pool == NULL || (pool->threads = calloc((size_t)cfg->query_threads,
	    sizeof(*pool->threads))) == NULL) {
		free(pool);
		error_set(err, ERR_NOMEM, "out of memory");
		return NULL;
	}
	pool->cfg = cfg;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->cond, NULL);
	for (long i = 0; i < cfg->query_threads; i++) {
		if (pthread_create(&pool->threads[i], NULL, pool_main,
		    pool) != 0) {
			error_set(err, ERR_INTERNAL, "cannot start a query "
			    "thread");
			query_pool_free(pool);
			return NULL;
		}
		pool->n_threads++;
	}
	return pool;
}

bool
query_pool_submit(struct query_pool *pool, struct query_job *job,
    struct error *err)
{
	bool queued;

	job->next = NULL;
	pthread_mutex_lock(&pool->mu);
	queued = !pool->stopping;
	if (queued) {
		if (pool->tail != NULL) {
			pool->tail->next = job;
		} else {
			pool->head = job;
		}
		pool->tail = job;
		pthread_cond_signal(&pool->cond);
	}
	pthread_mutex_unlock(&pool->mu);
	if (!queued) {
		error_set(err, ERR_SHUTTING_DOWN, "the collector is stopping");
	}
	return queued;
}

void
query_pool_free(struct query_pool *pool)
{
	struct query_job *pending, *next;

	if (pool == NULL) {
		return;
	}
	pthread_mutex_lock(&pool->mu);
	pool->stopping = true;
	pending = pool->head;
	pool->head = pool->tail = NULL;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->mu);
	for (; pending != NULL; pending = next) {
		next = pending->next;
		pending->ok = false;
		error_set(&pending->err, ERR_SHUTTING_DOWN, "the collector is "
		    "stopping");
		pending->done(pending);
	}
	for (size_t i = 0; i < pool->n_threads; i++) {
		pthread_join(pool->threads[i], NULL);
	}
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->mu);
	free(pool->threads);
	free(pool);
}
