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

#include "common/timeutil.h"
#include "server/api.h"
#include "server/db.h"

static const char lock_sql[] = "SELECT rule::text FROM alert_rules"
    " WHERE site_id = $1 AND id = $2 FOR UPDATE SKIP LOCKED";
static const char exists_sql[] = "SELECT 1 FROM alert_rules"
    " WHERE site_id = $1 AND id = $2";
static const char state_sql[] = "SELECT state,"
    " (extract(epoch FROM period_start) * 1000000)::bigint"
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
    struct alert_judgement *out, struct error *err)
{
	PGresult *res = db_query(pg, lock_sql, 2, params, err);

	if (res == NULL) {
		return false;
	}
	if (PQntuples(res) == 1) {
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

/* The state stored, and the last period judged (INT64_MIN: none). */
static bool
read_state(PGconn *pg, const char *const *params, enum alert_state *state,
    int64_t *period, struct error *err)
{
	PGresult *res = db_query(pg, state_sql, 2, params, err);

	*state = ALERT_STATE_OK;
	*period = INT64_MIN;
	if (res == NULL) {
		return false;
	}
	if (PQntuples(res) == 1) {
		*state = state_of(PQgetvalue(res, 0, 0));
		if (!PQgetisnull(res, 0, 1)) {
			*period = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		}
	}
	PQclear(res);
	return true;
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
	return true;
}

bool
alert_judge(PGconn *pg, const struct app_state *state, const char *site,
    const char *id, int64_t now_us, bool record, bool again,
    struct alert_judgement *out, struct error *err)
{
	const char *params[] = { site, id };
	struct error ignored;
	json_t *doc = NULL;
	int64_t judged;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	out->id = atoll(id);
	if (!api_snapshot_begin_writable(pg, err)) {
		return false;
	}
	if (!lock_rule(pg, params, &doc, out, err)) {
		ok = out->outcome == ALERT_BUSY;
		goto done;
	}
	/* Against the plan in force, which may have changed since. */
	if (!alert_rule_parse(doc, state->plan, state->cfg->min_volume,
	    &out->rule, err) ||
	    !read_state(pg, params, &out->from, &judged, err)) {
		goto done;
	}
	if (!again && judged == alert_last_period_start(&out->rule, now_us)) {
		out->outcome = ALERT_ALREADY;
		out->to = out->from;
		ok = true;
		goto done;
	}
	if (!alert_measure(pg, site, &out->rule, state->plan, now_us, &out->m,
	    err)) {
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
	json_decref(doc);
	return ok;
}
