/* alerter.c - the evaluator thread and its sweeps. */
#include "server/alerter.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/alert_judge.h"
#include "server/db.h"
#include "server/query.h"
#include "server/ticker.h"

static const char rules_sql[] = "SELECT site_id, id FROM alert_rules"
    " ORDER BY site_id, id";

struct alerter {
	struct query_job job;	/* first: the job is the alerter */
	struct app *app;
	struct ticker *ticker;
	pthread_mutex_t lock;
	pthread_cond_t idle;	/* a sweep ended */
	bool sweeping;
};

/* Judges every rule once (those whose period is judged, or which another
 * daemon holds, pass). A rule that fails is logged; the others go on. */
static bool
sweep_run(PGconn *pg, struct query_job *job, struct error *err)
{
	struct alerter *a = (struct alerter *)job;
	struct app_state *state = app_state_get(a->app);
	PGresult *res = db_query(pg, rules_sql, 0, NULL, err);
	struct alert_judgement *j = malloc(sizeof(*j));

	atomic_fetch_add(&a->app->counters.alert_sweeps, 1);

	for (int r = 0; res != NULL && j != NULL && r < PQntuples(res); r++) {
		const char *site = PQgetvalue(res, r, 0), *id = PQgetvalue(res, r, 1);
		struct error e = { 0 };

		if (!alert_judge(pg, a->app->index, state, site, id,
		    timeutil_now_us(), true,
		    false, j, &e)) {
			log_warn("alert rule %s of site %s not judged: %s", id, site,
			    e.message);
			continue;
		}
		if (j->outcome == ALERT_JUDGED) {
			atomic_fetch_add(&a->app->counters.alert_judgements, 1);
		}
		if (j->outcome == ALERT_JUDGED && j->to != j->from) {
			atomic_fetch_add(&a->app->counters.alert_transitions, 1);
			log_info("alert rule %s of site %s (%s): %s -> %s: %s", id,
			    site, j->rule.name, alert_state_name(j->from),
			    alert_state_name(j->to), j->d.why);
		}
	}
	if (j == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
	free(j);
	PQclear(res);
	app_state_put(state);
	return res != NULL && j != NULL;
}

static void
sweep_done(struct query_job *job)
{
	struct alerter *a = (struct alerter *)job;

	if (!job->ok && job->err.code != ERR_SHUTTING_DOWN) {
		log_warn("alert sweep failed: %s", job->err.message);
	}
	pthread_mutex_lock(&a->lock);
	a->sweeping = false;
	pthread_cond_broadcast(&a->idle);
	pthread_mutex_unlock(&a->lock);
}

/* A sweep on the query pool, unless the last one still runs. */
static void
tick(struct ticker *t, void *ctx)
{
	struct alerter *a = ctx;
	struct error err = { 0 };

	(void)t;
	pthread_mutex_lock(&a->lock);
	if (a->sweeping) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	a->sweeping = true;
	memset(&a->job, 0, sizeof(a->job));
	a->job.run = sweep_run;
	a->job.done = sweep_done;
	pthread_mutex_unlock(&a->lock);
	if (!query_pool_submit(a->app->queries, &a->job, &err)) {
		pthread_mutex_lock(&a->lock);
		a->sweeping = false;
		pthread_mutex_unlock(&a->lock);
	}
}

static long
interval_s(void *ctx)
{
	struct alerter *a = ctx;

	return a->app->cfg->alert_evaluation_interval_s;
}

struct alerter *
alerter_new(struct app *app, struct error *err)
{
	struct alerter *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return NULL;
	}
	a->app = app;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->idle, NULL);
	a->ticker = ticker_new(tick, interval_s, a, err);
	if (a->ticker == NULL) {
		pthread_cond_destroy(&a->idle);
		pthread_mutex_destroy(&a->lock);
		free(a);
		return NULL;
	}
	return a;
}

void
alerter_free(struct alerter *a)
{
	if (a == NULL) {
		return;
	}
	ticker_free(a->ticker);
	/* A sweep on the pool still points at a. */
	pthread_mutex_lock(&a->lock);
	while (a->sweeping) {
		pthread_cond_wait(&a->idle, &a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	pthread_cond_destroy(&a->idle);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
