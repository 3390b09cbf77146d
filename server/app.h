/* app.h - what request handlers share.
 *
 * Two kinds of settings: app->cfg is the configuration the daemon started
 * with, for what cannot change while it runs (listen address, threads,
 * database, limits the HTTP layer enforces). The keys SIGHUP may change
 * (sites, API keys, the plan, consent and privacy settings) live in a
 * state: a handler takes the current one with app_state_get, uses it for
 * the whole request and drops it with app_state_put, so that a reload
 * never changes the rules under a request in flight. */
#ifndef MILEPOST_SERVER_APP_H
#define MILEPOST_SERVER_APP_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/channel.h"
#include "common/config.h"
#include "common/error.h"
#include "common/plan.h"
#include "server/visitor.h"
#include "server/writer.h"

struct query_index;
struct query_pool;
struct spool;
struct spool_replay;

struct app_state {
	atomic_long refs;
	struct config *cfg;	/* owned */
	struct plan *plan;	/* owned */
	struct channel_rules *channel_rules;	/* owned, may be NULL */
	bool consent_anonymous;	/* consent_mode is anonymous */
	bool drop_bots;		/* bot_handling is drop */
};

/* Counters since start; read by the metrics endpoint. */
/* As many as enum pipeline_result has (pipeline.c checks). */
#define APP_RESULTS 5

struct app_counters {
	atomic_ullong dropped_no_consent;
	atomic_ullong anonymised;
	atomic_ullong deprecated_accepted;
	atomic_ullong quarantined;
	atomic_ullong bots_dropped;
	atomic_ullong reloads;
	atomic_ullong reload_failures;
	/* Events by pipeline outcome (enum pipeline_result), and the
	 * problems of those rejected or quarantined by code. */
	atomic_ullong events[APP_RESULTS];
	atomic_ullong problems[ERR_COUNT_];
	atomic_ullong alert_sweeps;
	atomic_ullong alert_judgements;
	atomic_ullong alert_transitions;
	atomic_ullong webhook_delivered;
	atomic_ullong webhook_attempts_failed;
	atomic_ullong webhook_gave_up;
};

struct app {
	const struct config *cfg;	/* as started; see above */
	struct writer *writer;
	/* Both NULL without spool_dir. */
	struct spool *spool;
	struct spool_replay *spool_replay;
	struct query_pool *queries;
	struct query_index *index;	/* NULL: query_index off */
	struct visitor_salt *salt;
	struct app_counters counters;
	pthread_mutex_t lock;		/* guards state */
	struct app_state *state;
};

/* A state holding cfg, plan and rules, which it takes over (freed with it
 * even on failure). NULL when out of memory. */
struct app_state *app_state_new(struct config *cfg, struct plan *plan,
    struct channel_rules *rules);

/* The current state, with a reference the caller must put. */
struct app_state *app_state_get(struct app *app);
void app_state_put(struct app_state *state);	/* NULL is fine */

/* Makes state current; the previous one goes when its last user puts it.
 * Takes over the caller's reference. */
void app_state_swap(struct app *app, struct app_state *state);

#endif
