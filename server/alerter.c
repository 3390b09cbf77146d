/* alerter.c - the evaluator thread and its sweeps. */
#include "server/alerter.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/alert_judge.h"
#include "server/db.h"
#include "server/query.h"

static const char rules_sql[] = "SELECT site_id, id FROM alert_rules"
    " ORDER BY site_id, id";

struct alerter {
	struct query_job job;	/* first: the job is the alerter */
	struct app *app;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* stop asked, or a sweep done */
	bool stop, sweeping;
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

	for (int r = 0; res != NULL && j != NULL && r < PQntuples(res); r++) {
		const char *site = PQgetvalue(res, r, 0), *id = PQgetvalue(res, r, 1);
		struct error e = { 0 };

		if (!alert_judge(pg, state, site, id, timeutil_now_us(), true,
		    false, j, &e)) {
			log_warn("alert rule %s of site %s not judged: %s", id, site,
			    e.message);
		} else if (j->outcome == ALERT_JUDGED && j->to != j->from) {
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
	pthread_cond_broadcast(&a->wake);
	pthread_mutex_unlock(&a->lock);
}

static void *
alerter_main(void *arg)
{
	struct alerter *a = arg;
	struct timespec until;
	struct error err = { 0 };

	pthread_mutex_lock(&a->lock);
	while (!a->stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += a->app->cfg->alert_evaluation_interval_s;
		while (!a->stop && pthread_cond_timedwait(&a->wake, &a->lock,
		    &until) == 0) {
			/* woken by a sweep ending, or to stop */
		}
		if (a->stop || a->sweeping) {
			continue;
		}
		a->sweeping = true;
		memset(&a->job, 0, sizeof(a->job));
		a->job.run = sweep_run;
		a->job.done = sweep_done;
		pthread_mutex_unlock(&a->lock);
		if (!query_pool_submit(a->app->queries, &a->job, &err)) {
			pthread_mutex_lock(&a->lock);
			a->sweeping = false;
			continue;
		}
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
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
	pthread_cond_init(&a->wake, NULL);
	if (pthread_create(&a->thread, NULL, alerter_main, a) != 0) {
		error_set(err, ERR_INTERNAL, "cannot start the alert evaluator");
		pthread_cond_destroy(&a->wake);
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
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_broadcast(&a->wake);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	/* A sweep on the pool still points at a. */
	pthread_mutex_lock(&a->lock);
	while (a->sweeping) {
		pthread_cond_wait(&a->wake, &a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
