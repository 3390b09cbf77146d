/* deliverer.c - claiming, POSTing and recording alert deliveries. */
#include "server/deliverer.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/db.h"
#include "server/ticker.h"
#include "server/webhook.h"

#define CLAIM_BATCH 10	/* as in claim_sql */
#define POLL_S 1
/* A retry never waits longer than this, whatever the doubling says. */
#define BACKOFF_MAX_S 3600

/* The due deliveries, leased for this attempt: another daemon passes them
 * by until the lease ($1 seconds) is over. */
static const char claim_sql[] = "UPDATE alert_deliveries d"
    " SET attempts = d.attempts + 1,"
    " next_at = now() + $1::bigint * interval '1 second'"
    " FROM (SELECT site_id, id FROM alert_deliveries"
    " WHERE status = 'pending' AND next_at <= now() ORDER BY next_at"
    " LIMIT 10 FOR UPDATE SKIP LOCKED) c"
    " WHERE d.site_id = c.site_id AND d.id = c.id"
    " RETURNING d.site_id, d.id, d.url, d.payload::text, d.attempts";

/* $1 site, $2 id, $3 status, $4 HTTP status, $5 error, $6 seconds to the
 * next attempt (pending only). */
static const char record_sql[] = "UPDATE alert_deliveries SET status = $3,"
    " last_status = $4, last_error = $5,"
    " delivered_at = CASE WHEN $3 = 'delivered' THEN now() END,"
    " next_at = CASE WHEN $3 = 'pending'"
    " THEN now() + $6::bigint * interval '1 second' ELSE next_at END"
    " WHERE site_id = $1 AND id = $2";

struct deliverer {
	struct app *app;
	struct ticker *ticker;
	PGconn *pg;		/* the thread's own; NULL until connected */
};

/* Seconds before attempt n + 1 after n failed: base, doubling. */
static long
backoff_s(long base, long attempts)
{
	long s = base;

	for (long i = 1; i < attempts && s < BACKOFF_MAX_S; i++) {
		s *= 2;
	}
	return s < BACKOFF_MAX_S ? s : BACKOFF_MAX_S;
}

static void
deliver_one(struct deliverer *d, const struct config *cfg,
    const PGresult *res, int row)
{
	const char *site = PQgetvalue(res, row, 0), *id = PQgetvalue(res, row, 1);
	const char *url = PQgetvalue(res, row, 2), *body = PQgetvalue(res, row, 3);
	long attempts = atol(PQgetvalue(res, row, 4));
	const struct webhook_options opt = {
		.secret = cfg->alert_webhook_secret,
		.timeout_s = cfg->alert_webhook_timeout_s,
		.allow_private = cfg->alert_webhook_allow_private,
		.proxy = cfg->alert_webhook_proxy,
	};
	struct webhook_result r;
	bool ok = webhook_post(url, body, strlen(body), &opt, &r);
	bool last = !ok && attempts >= cfg->alert_webhook_max_attempts;
	char http[16], wait[24];
	struct error err = { 0 };

	snprintf(http, sizeof(http), "%ld", r.status);
	snprintf(wait, sizeof(wait), "%ld", backoff_s(
	    cfg->alert_webhook_backoff_s, attempts));
	const char *params[] = { site, id, ok ? "delivered" : last ? "failed" :
		"pending", r.status > 0 ? http : NULL, ok ? NULL : r.error, wait };
	atomic_fetch_add(ok ? &d->app->counters.webhook_delivered :
	    &d->app->counters.webhook_attempts_failed, 1);
	if (last) {
		atomic_fetch_add(&d->app->counters.webhook_gave_up, 1);
	}
	/* The URL may carry a token: logs name the delivery, not the URL. */
	if (!ok) {
		log_warn("alert delivery %s of site %s, attempt %ld: %s%s", id,
		    site, attempts, r.error, last ? "; giving up" : "");
	}
	if (!db_exec(d->pg, record_sql, 6, params, &err)) {
		log_warn("alert delivery %s not recorded: %s", id, err.message);
	}
}

/* One round: claim the due deliveries and POST them (the rest of the
 * claim waits for its lease when t is stopping). */
static void
round_once(struct deliverer *d, struct ticker *t)
{
	struct app_state *state = app_state_get(d->app);
	const struct config *cfg = state->cfg;
	char lease[24];
	struct error err = { 0 };
	PGresult *res;

	if (d->pg == NULL || PQstatus(d->pg) != CONNECTION_OK) {
		if (d->pg != NULL) {
			PQfinish(d->pg);
		}
		d->pg = db_connect(cfg->database_url, &err);
	}
	if (d->pg != NULL) {
		/* Long enough for every POST of the batch. */
		snprintf(lease, sizeof(lease), "%ld", CLAIM_BATCH *
		    (cfg->alert_webhook_timeout_s + 1) + 10);
		const char *params[] = { lease };
		res = db_query(d->pg, claim_sql, 1, params, &err);
		for (int r = 0; res != NULL && r < PQntuples(res) &&
		    !ticker_stopping(t); r++) {
			deliver_one(d, cfg, res, r);
		}
		PQclear(res);
	}
	app_state_put(state);
}

static void
tick(struct ticker *t, void *ctx)
{
	round_once(ctx, t);
}

static long
interval_s(void *ctx)
{
	(void)ctx;
	return POLL_S;
}

struct deliverer *
deliverer_new(struct app *app, struct error *err)
{
	struct deliverer *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return NULL;
	}
	d->app = app;
	d->ticker = ticker_new(tick, interval_s, d, err);
	if (d->ticker == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

void
deliverer_free(struct deliverer *d)
{
	if (d == NULL) {
		return;
	}
	ticker_free(d->ticker);
	if (d->pg != NULL) {
		PQfinish(d->pg);
	}
	free(d);
}
