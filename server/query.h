/* query.h - a small pool of threads, each with its own PostgreSQL
 * connection, for the query and admin API.
 *
 * Request threads must never wait on the database: a handler suspends its
 * request, submits a job, and the job's done callback (on the pool
 * thread) resumes the request. Connections are opened on first use and
 * reopened after a failure; every statement runs under a timeout so that
 * a slow query cannot hold a thread forever. */
#ifndef MILEPOST_SERVER_QUERY_H
#define MILEPOST_SERVER_QUERY_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/config.h"
#include "common/error.h"

struct query_job {
	/* Runs on a pool thread with a live connection; returns false with
	 * err set on failure. */
	bool (*run)(PGconn *pg, struct query_job *job, struct error *err);
	/* Called exactly once after run (or instead of it when the database
	 * is unreachable or the pool stops), on a pool thread. */
	void (*done)(struct query_job *job);
	/* Set before done: whether run succeeded, and why not. */
	bool ok;
	struct error err;
	/* The pool's own. */
	struct query_job *next;
};

struct query_pool;

/* Starts cfg->query_threads threads; cfg is borrowed and must outlive the
 * pool. */
struct query_pool *query_pool_new(const struct config *cfg,
    struct error *err);

/* Queues job. False (done not called) when the pool is stopping. */
bool query_pool_submit(struct query_pool *pool, struct query_job *job,
    struct error *err);

/* Completes queued jobs with ERR_SHUTTING_DOWN, waits for running ones,
 * and frees the pool. NULL is fine. */
void query_pool_free(struct query_pool *pool);

#endif
