/* app.c - the reloadable state. A mutex around a pointer swap and a
 * reference count: reloads are rare and requests only hold the lock for
 * an increment. */
#include "server/app.h"

#include <stdlib.h>
#include <string.h>

struct app_state *
app_state_new(struct config *cfg, struct plan *plan,
    struct channel_rules *rules)
{
	struct app_state *state = calloc(1, sizeof(*state));

	if (state == NULL) {
		config_free(cfg);
		plan_free(plan);
		channel_rules_free(rules);
		return NULL;
	}
	atomic_init(&state->refs, 1);
	state->cfg = cfg;
	state->plan = plan;
	state->channel_rules = rules;
	state->consent_anonymous = strcmp(cfg->consent_mode, "anonymous") == 0;
	state->drop_bots = strcmp(cfg->bot_handling, "drop") == 0;
	return state;
}

struct app_state *
app_state_get(struct app *app)
{
	struct app_state *state;

	pthread_mutex_lock(&app->lock);
	state = app->state;
	atomic_fetch_add(&state->refs, 1);
	pthread_mutex_unlock(&app->lock);
	return state;
}

void
app_state_put(struct app_state *state)
{
	if (state == NULL || atomic_fetch_sub(&state->refs, 1) != 1) {
		return;
	}
	config_free(state->cfg);
	plan_free(state->plan);
	channel_rules_free(state->channel_rules);
	free(state);
}

void
app_state_swap(struct app *app, struct app_state *state)
{
	struct app_state *old;

	pthread_mutex_lock(&app->lock);
	old = app->state;
	app->state = state;
	pthread_mutex_unlock(&app->lock);
	app_state_put(old);
}
