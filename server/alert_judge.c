/* alert_judge.c - one rule judged in one transaction.
 *
 * Several daemons may share a database: the rule's row is locked with
 * SKIP LOCKED, so while one judges it the others pass it by (ALERT_BUSY).
 * One that took its snapshot just before the other committed would find
 * the state row changed under it, and REPEATABLE READ fails its update
 * rather than storing the same transition twice. */
#include "server/alert_judge.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonutil.h"
#include "common/strbuf.h"
#include "common/timeutil.h"
#include "common/urltext.h"
#include "server/api.h"
#include "server/db.h"
#include "server/pgarray.h"

static const char lock_sql[] = "SELECT rule::text,"
    " (extract(epoch FROM updated_at) * 1000000)::bigint FROM alert_rules"
    " WHERE site_id = $1 AND id = $2 FOR UPDATE SKIP LOCKED";
static const char exists_sql[] = "SELECT 1 FROM alert_rules"
    " WHERE site_id = $1 AND id = $2";
static const char state_sql[] = "SELECT state,"
    " (extract(epoch FROM period_start) * 1000000)::bigint,"
    " (extract(epoch FROM judged_at) * 1000000)::bigint"
    " FROM alert_states WHERE site_id = $1 AND rule_id = $2";
/* $1 site, $2 rule, $3 state, $4 period start, $5 value, $6 bound,
 * $7 baseline, $8 now. */
static const char store_sql[] = "INSERT INTO alert_states (site_id, rule_id,"
    " state, since, period_start, value, bound, baseline, judged_at)"
    " VALUES ($1, $2, $3, $8, $4, $5, $6, $7, $8)"
    " ON CONFLICT (site_id, rule_id) DO UPDATE SET state = EXCLUDED.state,"
    " since = CASE WHEN alert_states.state = EXCLUDED.state"
    " THEN alert_states.since ELSE EXCLUDED.since END,"
    " period_start = EXCLUDED.period_start, value = EXCLUDED.value,"
    " bound = EXCLUDED.bound, baseline = EXCLUDED.baseline,"
    " judged_at = EXCLUDED.judged_at";
/* $1 site, $2 rule, $3 name, $4 from, $5 to, $6 period start, $7 end,
 * $8 value, $9 bound, $10 baseline, $11 why, $12 now. */
static const char event_sql[] = "INSERT INTO alert_events (site_id, rule_id,"
    " rule_name, from_state, to_state, period_start, period_end, value,"
    " bound, baseline, why, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
    " $10, $11, $12) RETURNING id";

/* One delivery per webhook of the rule: $1 site, $2 event, $3 URLs,
 * $4 payload. */
static const char deliveries_sql[] = "INSERT INTO alert_deliveries"
    " (site_id, event_id, url, payload) SELECT $1, $2, u, $4::jsonb"
    " FROM unnest($3::text[]) AS u";

static enum alert_state
state_of(const char *name)
{
	for (int s = 0; s < ALERT_STATE_COUNT_; s++) {
		if (strcmp(alert_state_name((enum alert_state)s), name) == 0) {
			return (enum alert_state)s;
		}
	}
	return ALERT_STATE_OK;
}

/* A number parameter: NULL for NaN. */
static const char *
number(char *buf, size_t size, double v)
{
	if (!isfinite(v)) {
		return NULL;
	}
	snprintf(buf, size, "%.17g", v);
	return buf;
}

/* The rule, locked for this transaction: false with outcome BUSY when
 * another holds it, or err ERR_NOT_FOUND when there is none. */
static bool
lock_rule(PGconn *pg, const char *const *params, json_t **doc,
    int64_t *updated, struct alert_judgement *out, struct error *err)
{
	PGresult *res = db_query(pg, lock_sql, 2, params, err);

	if (res == NULL) {
		return false;
	}
	if (PQntuples(res) == 1) {
		*updated = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		*doc = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
		PQclear(res);
		if (*doc == NULL) {
			error_set(err, ERR_INTERNAL, "a stored rule is not JSON");
		}
		return *doc != NULL;
	}
	PQclear(res);
	res = db_query(pg, exists_sql, 2, params, err);
	if (res != NULL && PQntuples(res) == 0) {
		error_set(err, ERR_NOT_FOUND, "no such rule in this site");
	} else if (res != NULL) {
		out->outcome = ALERT_BUSY;
	}
	PQclear(res);
	return false;
}

/* The state stored, the last period judged and when (INT64_MIN:
 * never). */
static bool
read_state(PGconn *pg, const char *const *params, enum alert_state *state,
    int64_t *period, int64_t *when, struct error *err)
{
	PGresult *res = db_query(pg, state_sql, 2, params, err);

	*state = ALERT_STATE_OK;
	*period = *when = INT64_MIN;
	if (res == NULL) {
		return false;
	}
	if (PQntuples(res) == 1) {
		*state = state_of(PQgetvalue(res, 0, 0));
		if (!PQgetisnull(res, 0, 1)) {
			*period = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		}
		*when = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	}
	PQclear(res);
	return true;
}

/* The query of the API that shows what the rule measured: the funnel
 * for rates, the milestones otherwise. */
static void
query_link(struct strbuf *sb, const char *site, const struct alert_rule *r,
    const char *start, const char *end)
{
	bool funnel = r->metric != ALERT_METRIC_COUNT &&
	    r->condition != ALERT_CONDITION_TARGET_PACE;

	strbuf_append_str(sb, funnel ? "/api/v1/funnel?site=" :
	    "/api/v1/milestones?site=");
	urltext_append_escaped(sb, site);
	strbuf_append_str(sb, funnel ? "&steps=" : "&names=");
	for (size_t i = 0; i < r->n_events; i++) {
		strbuf_append_str(sb, i > 0 ? "," : "");
		urltext_append_escaped(sb, r->events[i]);
	}
	if (r->condition == ALERT_CONDITION_TARGET_PACE) {
		return;
	}
	strbuf_append_str(sb, "&from=");
	urltext_append_escaped(sb, start);
	strbuf_append_str(sb, "&to=");
	urltext_append_escaped(sb, end);
	if (!funnel) {
		/* Milestones count by day at the finest. */
		strbuf_appendf(sb, "&interval=%s", r->period == ALERT_PERIOD_WEEK ?
		    "week" : "day");
		return;
	}
	strbuf_appendf(sb, "&window=%s", r->window_text);
	for (size_t i = 0; i < r->n_filters; i++) {
		strbuf_append_str(sb, i > 0 ? "," : "&filter=");
		urltext_append_escaped(sb, funnel_dim_name(r->filters[i].dim));
		urltext_append_escaped(sb, r->filters[i].key);
		strbuf_append_str(sb, "%3D");
		urltext_append_escaped(sb, r->filters[i].value);
	}
}

/* What a webhook receives for a transition (docs/alerts.md): the facts,
 * links to reproduce them, and a Slack-compatible text. */
static char *
payload_text(const char *site, const struct alert_judgement *j,
    const char *start, const char *end, const char *now)
{
	struct strbuf link, text;
	bool target = j->rule.condition == ALERT_CONDITION_TARGET_PACE;
	json_t *doc, *rule = alert_rule_json(&j->rule);
	char evaluate[96], *out = NULL;

	strbuf_init(&link);
	strbuf_init(&text);
	query_link(&link, site, &j->rule, start, end);
	strbuf_appendf(&text, "[%s] %s (%s): %s", alert_state_name(j->to),
	    j->rule.name, site, j->d.why);
	if (!target) {
		strbuf_appendf(&text, ", period %s to %s", start, end);
	}
	strbuf_appendf(&text, ". Owner: %s.", j->rule.owner);
	snprintf(evaluate, sizeof(evaluate), "/api/v1/alerts/rules/%lld/"
	    "evaluate?site=", j->id);
	if (rule != NULL && !strbuf_failed(&link) && !strbuf_failed(&text)) {
		/* Each receiver's URL is its own secret: none is told the
		 * others'. */
		json_object_del(rule, "notify");
		json_object_set_new(rule, "id", json_integer(j->id));
		doc = json_pack("{s:s, s:O, s:s, s:s, s:o, s:o, s:o, s:o, s:s,"
		    " s:I, s:s, s:s, s:s+, s:s}",
		    "site", site, "rule", rule, "state", alert_state_name(j->to),
		    "previous_state", alert_state_name(j->from),
		    "value", api_number_json(j->d.value),
		    "bound", api_number_json(j->d.bound),
		    "baseline", api_number_json(j->d.baseline),
		    "period", target ? json_null() :
		    json_pack("{s:s, s:s}", "start", start, "end", end),
		    "why", j->d.why, "event_id", (json_int_t)j->event_id,
		    "at", now, "query", link.data, "evaluate", evaluate, site,
		    "text", text.data);
		out = doc != NULL ? jsonutil_dumps(doc, JSON_COMPACT) : NULL;
		json_decref(doc);
	}
	json_decref(rule);
	strbuf_finish(&link);
	strbuf_finish(&text);
	return out;
}

/* Queues the rule's webhooks for the transition just stored; none for
 * the quiet step from resolved back to ok. */
static bool
queue_deliveries(PGconn *pg, const char *site, struct alert_judgement *j,
    const char *start, const char *end, const char *now, struct error *err)
{
	struct pgarray urls;
	char event[24], *payload;
	bool ok;

	if (j->rule.n_notify == 0 ||
	    (j->from == ALERT_STATE_RESOLVED && j->to == ALERT_STATE_OK)) {
		return true;
	}
	pgarray_init(&urls);
	for (size_t i = 0; i < j->rule.n_notify; i++) {
		pgarray_add_text(&urls, j->rule.notify[i]);
	}
	snprintf(event, sizeof(event), "%lld", j->event_id);
	payload = payload_text(site, j, start, end, now);
	const char *params[] = { site, event, pgarray_value(&urls), payload };
	if (params[2] == NULL || payload == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		ok = false;
	} else {
		ok = db_exec(pg, deliveries_sql, 4, params, err);
	}
	j->notified = ok;
	free(payload);
	pgarray_finish(&urls);
	return ok;
}

static bool
store(PGconn *pg, const char *site, const char *id, int64_t now_us,
    struct alert_judgement *out, struct error *err)
{
	char start[TIMEUTIL_RFC3339_LEN], end[TIMEUTIL_RFC3339_LEN];
	char now[TIMEUTIL_RFC3339_LEN], v[32], b[32], base[32];
	const struct alert_measurement *m = &out->m;
	bool target = out->rule.condition == ALERT_CONDITION_TARGET_PACE;
	PGresult *res;

	timeutil_format_rfc3339(m->starts[m->n - 1], start);
	timeutil_format_rfc3339(m->starts[m->n - 1] + m->period_us, end);
	timeutil_format_rfc3339(now_us, now);
	const char *sp[] = { site, id, alert_state_name(out->to), start,
		number(v, sizeof(v), out->d.value),
		number(b, sizeof(b), out->d.bound),
		number(base, sizeof(base), out->d.baseline), now };
	if (!db_exec(pg, store_sql, 8, sp, err)) {
		return false;
	}
	if (out->to == out->from) {
		return true;
	}
	const char *ep[] = { site, id, out->rule.name,
		alert_state_name(out->from), alert_state_name(out->to),
		target ? NULL : start, target ? NULL : end, sp[4], sp[5], sp[6],
		out->d.why, now };
	res = db_query(pg, event_sql, 12, ep, err);
	if (res == NULL) {
		return false;
	}
	out->event_id = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return queue_deliveries(pg, site, out, start, end, now, err);
}

bool
alert_judge(PGconn *pg, struct query_index *qi, const struct app_state *state,
    const char *site, const char *id, int64_t now_us, bool record, bool again,
    struct alert_judgement *out, struct error *err)
{
	const char *params[] = { site, id };
	struct query_index_read r;
	struct error ignored;
	json_t *doc = NULL;
	int64_t judged, judged_at, updated = 0;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	out->id = atoll(id);
	/* Measured as the endpoints the alert links to count: through the
	 * index when it can, caught up before the transaction begins. */
	query_index_acquire(qi, pg, site, &r);
	if (!api_snapshot_begin_writable(pg, err)) {
		query_index_release(qi, &r);
		return false;
	}
	if (!lock_rule(pg, params, &doc, &updated, out, err)) {
		ok = out->outcome == ALERT_BUSY;
		goto done;
	}
	/* Against the plan in force, which may have changed since. */
	if (!alert_rule_parse(doc, state->plan, state->cfg->min_volume,
	    &out->rule, err) ||
	    !read_state(pg, params, &out->from, &judged, &judged_at, err)) {
		goto done;
	}
	/* A rule changed since its last judgement is judged again. */
	if (!again && judged == alert_last_period_start(&out->rule, now_us) &&
	    updated <= judged_at) {
		out->outcome = ALERT_ALREADY;
		out->to = out->from;
		ok = true;
		goto done;
	}
	if (!alert_measure(pg, &r, site, &out->rule, state->plan, now_us,
	    &out->m, err)) {
		goto done;
	}
	alert_decide(&out->rule, out->m.points, out->m.n, out->m.target,
	    &out->d);
	out->to = alert_next_state(out->from, out->d.verdict);
	out->outcome = ALERT_JUDGED;
	ok = !record || store(pg, site, id, now_us, out, err);
	out->recorded = ok && record;
	if (ok) {
		ok = db_exec(pg, "COMMIT", 0, NULL, err);
		out->recorded = out->recorded && ok;
	}
done:
	if (!ok) {
		db_exec(pg, "ROLLBACK", 0, NULL, &ignored);
	}
	api_snapshot_end(pg);
	query_index_release(qi, &r);
	json_decref(doc);
	return ok;
}
