/* api_funnel.c - GET /api/v1/funnel: how many people went through each
 * step, in order, within the conversion window.
 *
 * A person enters at their first event of step 1 in [from, to); each later
 * step is their earliest event of it at or after the previous step and
 * within the window from entry (strict order: and no other planned action,
 * a milestone, macro or secondary event, in between). People are stitched (person_merges), bots left out. The
 * counting is one SQL statement built for the number of steps; the rates,
 * intervals and flags are worked out here. */
#include "server/api_funnel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/funnel.h"
#include "common/plan.h"
#include "common/stats.h"
#include "common/strbuf.h"
#include "common/timeutil.h"
#include "server/api.h"
#include "server/db.h"
#include "server/pgarray.h"

#define DAY_US (86400 * TIMEUTIL_US_PER_SEC)
#define WINDOW_MAX_US (180 * DAY_US)
#define RANGE_DEFAULT_US (30 * DAY_US)
#define EXCLUDE_MAX 10

enum funnel_order { ORDER_ORDERED, ORDER_STRICT };

static const char *const order_names[] = { "ordered", "strict" };

struct funnel_query {
	struct funnel_step steps[FUNNEL_STEPS_MAX];
	size_t n_steps;
	bool plan_steps;		/* steps came from the plan */
	struct funnel_step exclude[EXCLUDE_MAX];
	size_t n_exclude;
	enum funnel_order order;
	int64_t from_us, to_us, window_us;
	char window_text[16];		/* as asked, e.g. "30d" */
	char window_seconds[24];
	long min_volume;
	struct strbuf sql;
};

static void
funnel_query_free(void *p)
{
	struct funnel_query *q = p;

	if (q != NULL) {
		strbuf_finish(&q->sql);
		free(q);
	}
}

/* A time parameter: RFC 3339, or a date (YYYY-MM-DD) meaning its start
 * (end_of_day: the start of the next day, for an inclusive `to`). */
static bool
param_day_or_time(struct request *req, const char *name, bool end_of_day,
    int64_t *out, struct error *err)
{
	const char *v = http_request_query(req, name);
	char buf[32];

	if (v == NULL || v[0] == '\0') {
		return true;
	}
	if (strlen(v) == 10 && v[4] == '-' && v[7] == '-') {
		snprintf(buf, sizeof(buf), "%sT00:00:00Z", v);
		if (timeutil_parse_rfc3339(buf, out)) {
			*out += end_of_day ? DAY_US : 0;
			return true;
		}
	} else if (timeutil_parse_rfc3339(v, out)) {
		return true;
	}
	error_set(err, ERR_INVALID_PARAMETER, "%s must be a date (2026-11-23) "
	    "or an RFC 3339 date-time (2026-11-23T08:00:00Z)", name);
	return false;
}

/* The steps: the parameter, else the plan's funnel. */
static bool
read_steps(struct request *req, const struct plan *plan,
    struct funnel_query *q, struct error *err)
{
	const char *v = http_request_query(req, "steps");
	const char *names[FUNNEL_STEPS_MAX];
	char why[200];
	size_t n;

	if (v != NULL && v[0] != '\0') {
		if (!funnel_parse_steps(v, q->steps, &q->n_steps, why,
		    sizeof(why))) {
			error_set(err, ERR_INVALID_PARAMETER, "%s", why);
			return false;
		}
		return true;
	}
	n = plan_funnel(plan, names, FUNNEL_STEPS_MAX);
	if (n < FUNNEL_STEPS_MIN || n > FUNNEL_STEPS_MAX) {
		error_set(err, ERR_INVALID_PARAMETER, "the plan's funnel has %zu "
		    "step(s); name %d to %d in steps", n, FUNNEL_STEPS_MIN,
		    FUNNEL_STEPS_MAX);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		memset(&q->steps[i], 0, sizeof(q->steps[i]));
		snprintf(q->steps[i].name, sizeof(q->steps[i].name), "%s",
		    names[i]);
	}
	q->n_steps = n;
	q->plan_steps = true;
	return true;
}

static bool
read_exclude(struct request *req, struct funnel_query *q, struct error *err)
{
	const char *v = http_request_query(req, "exclude");
	char list[FUNNEL_STEPS_MAX * (EVENT_NAME_MAX + 2)], why[200];

	if (v == NULL || v[0] == '\0') {
		return true;
	}
	/* One list syntax for both: an exclusion is a step that disqualifies
	 * (a single one is padded so that the two-step minimum holds). */
	if (snprintf(list, sizeof(list), "%s,%s", v, v) >= (int)sizeof(list) ||
	    !funnel_parse_steps(list, q->exclude, &q->n_exclude, why,
	    sizeof(why)) || q->n_exclude / 2 > EXCLUDE_MAX / 2) {
		error_set(err, ERR_INVALID_PARAMETER, "exclude must be 1 to %d "
		    "event names, comma-separated", EXCLUDE_MAX / 2);
		return false;
	}
	q->n_exclude /= 2;
	return true;
}

static bool
read_query(struct request *req, const struct app_state *state,
    struct funnel_query *q, struct error *err)
{
	const char *order = http_request_query(req, "order");
	const char *window = http_request_query(req, "window");
	size_t i;

	q->to_us = timeutil_now_us();
	q->min_volume = state->cfg->min_volume;
	if (!read_steps(req, state->plan, q, err) ||
	    !read_exclude(req, q, err) ||
	    !param_day_or_time(req, "to", true, &q->to_us, err)) {
		return false;
	}
	q->from_us = q->to_us - RANGE_DEFAULT_US;
	if (!param_day_or_time(req, "from", false, &q->from_us, err)) {
		return false;
	}
	if (q->from_us >= q->to_us) {
		error_set(err, ERR_INVALID_PARAMETER, "from must be before to");
		return false;
	}
	if (window == NULL || window[0] == '\0') {
		window = "30d";
	}
	if (!timeutil_parse_duration(window, WINDOW_MAX_US, &q->window_us)) {
		error_set(err, ERR_INVALID_PARAMETER, "window must be a number of "
		    "days or hours (30d, 12h), at most 180d");
		return false;
	}
	snprintf(q->window_text, sizeof(q->window_text), "%s", window);
	snprintf(q->window_seconds, sizeof(q->window_seconds), "%lld",
	    (long long)(q->window_us / TIMEUTIL_US_PER_SEC));
	for (i = 0; order != NULL && order[0] != '\0' &&
	    i < sizeof(order_names) / sizeof(order_names[0]); i++) {
		if (strcmp(order, order_names[i]) == 0) {
			break;
		}
	}
	if (i == sizeof(order_names) / sizeof(order_names[0])) {
		error_set(err, ERR_INVALID_PARAMETER, "order must be ordered or "
		    "strict");
		return false;
	}
	q->order = order != NULL && order[0] != '\0' ?
	    (enum funnel_order)i : ORDER_ORDERED;
	return true;
}

/* The statement for n steps. Parameters: $1 site, $2 names, $3 filter
 * keys, $4 filter values, $5 from, $6 to, $7 window in seconds, $8
 * excluded names. One row per step: its number, people who reached it,
 * and the median and 90th percentile of seconds from the step before and
 * from the first. */
static void
build_sql(struct funnel_query *q)
{
	struct strbuf *sb = &q->sql;
	size_t n = q->n_steps;

	strbuf_append_str(sb,
	    "WITH st AS (SELECT * FROM unnest($2::text[], $3::text[],"
	    " $4::text[]) WITH ORDINALITY AS s(name, key, val, idx)),"
	    " span AS (SELECT $5::timestamptz AS lo, $6::timestamptz"
	    " + $7::bigint * interval '1 second' AS hi,"
	    " $7::bigint * interval '1 second' AS w),"
	    " seen AS (SELECT COALESCE(m.into_person, e.person_id) AS person,"
	    " e.ts, e.name, e.props, e.kind FROM events e CROSS JOIN span"
	    " LEFT JOIN person_merges m ON m.site_id = e.site_id"
	    " AND m.from_person = e.person_id"
	    " WHERE e.site_id = $1 AND e.ts >= span.lo AND e.ts < span.hi"
	    " AND NOT e.bot AND e.person_id IS NOT NULL),"
	    " ev AS (SELECT seen.person, seen.ts, st.idx FROM seen JOIN st"
	    " ON st.name = seen.name AND (st.key IS NULL"
	    " OR seen.props->>st.key = st.val)),"
	    " s1 AS (SELECT person, min(ts) AS t1 FROM ev WHERE idx = 1"
	    " AND ts < $6 GROUP BY person)");
	for (size_t k = 2; k <= n; k++) {
		strbuf_appendf(sb, ", s%zu AS (SELECT s.person", k);
		for (size_t j = 1; j < k; j++) {
			strbuf_appendf(sb, ", s.t%zu", j);
		}
		strbuf_appendf(sb, ", min(ev.ts) AS t%zu FROM s%zu s CROSS JOIN"
		    " span LEFT JOIN ev ON ev.person = s.person AND ev.idx = %zu"
		    " AND ev.ts >= s.t%zu AND ev.ts <= s.t1 + span.w", k, k - 1, k,
		    k - 1);
		if (q->order == ORDER_STRICT) {
			/* The step must be the next planned action: page views
			 * and identify calls come between any two. */
			strbuf_appendf(sb, " AND NOT EXISTS (SELECT 1 FROM seen p"
			    " WHERE p.person = s.person AND p.kind IN ('milestone',"
			    " 'macro', 'secondary') AND p.ts > s.t%zu"
			    " AND p.ts < ev.ts)", k - 1);
		}
		strbuf_append_str(sb, " GROUP BY s.person");
		for (size_t j = 1; j < k; j++) {
			strbuf_appendf(sb, ", s.t%zu", j);
		}
		strbuf_append_char(sb, ')');
	}
	/* Excluded: an excluded event between entry and the last step
	 * reached. */
	strbuf_appendf(sb, ", f AS (SELECT * FROM s%zu s WHERE NOT EXISTS"
	    " (SELECT 1 FROM seen x WHERE x.person = s.person"
	    " AND x.name = ANY ($8::text[]) AND x.ts > s.t1 AND x.ts < COALESCE(",
	    n);
	for (size_t k = n; k >= 1; k--) {
		strbuf_appendf(sb, "s.t%zu%s", k, k > 1 ? ", " : "))) ");
	}
	for (size_t k = 1; k <= n; k++) {
		if (k > 1) {
			strbuf_append_str(sb, " UNION ALL ");
		}
		if (k == 1) {
			strbuf_append_str(sb, "SELECT 1, count(t1), NULL::float8,"
			    " NULL::float8, NULL::float8, NULL::float8 FROM f");
			continue;
		}
		strbuf_appendf(sb, "SELECT %zu, count(t%zu)", k, k);
		for (int from_first = 0; from_first < 2; from_first++) {
			for (int p90 = 0; p90 < 2; p90++) {
				strbuf_appendf(sb, ", percentile_cont(%s) WITHIN GROUP"
				    " (ORDER BY extract(epoch FROM t%zu - t%zu))",
				    p90 ? "0.9" : "0.5", k, from_first ? (size_t)1 :
				    k - 1);
			}
		}
		strbuf_append_str(sb, " FROM f");
	}
	strbuf_append_str(sb, " ORDER BY 1");
}

/* The steps' names, filter keys and values as PostgreSQL arrays in
 * cols[0..2] (no filter: NULL key and value). */
static void
steps_arrays(struct pgarray cols[3], const struct funnel_step *steps,
    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool filtered = steps[i].key[0] != '\0';
		pgarray_add_text(&cols[0], steps[i].name);
		pgarray_add_text(&cols[1], filtered ? steps[i].key : NULL);
		pgarray_add_text(&cols[2], filtered ? steps[i].value : NULL);
	}
}

static json_t *
rate_json(long x, long n)
{
	double lo, hi;

	if (!stats_wilson(x, n, STATS_Z95, &lo, &hi)) {
		return json_null();
	}
	return json_pack("{s:f, s:f, s:f}", "rate", (double)x / (double)n,
	    "lo", lo, "hi", hi);
}

static json_t *
seconds_json(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? json_null() :
	    json_real(atof(PQgetvalue(res, row, col)));
}

static json_t *
step_json(const struct funnel_step *st, const PGresult *res, int row,
    long first, long prev, long next, bool last)
{
	long entered = atol(PQgetvalue(res, row, 1));
	json_t *filter = st->key[0] != '\0' ? json_pack("{s:s, s:s}",
	    "property", st->key, "value", st->value) : json_null();

	return json_pack("{s:s, s:o, s:I, s:o, s:o, s:I, s:{s:o, s:o},"
	    " s:{s:o, s:o}}",
	    "name", st->name, "filter", filter, "entered", (json_int_t)entered,
	    "conversion_from_previous", row == 0 ? json_null() :
	    rate_json(entered, prev),
	    "conversion_from_first", row == 0 ? json_null() :
	    rate_json(entered, first),
	    "drop_off", (json_int_t)(last ? 0 : entered - next),
	    "seconds_from_previous", "median", seconds_json(res, row, 2),
	    "p90", seconds_json(res, row, 3),
	    "seconds_from_first", "median", seconds_json(res, row, 4),
	    "p90", seconds_json(res, row, 5));
}

static json_t *
time_json(int64_t us)
{
	char text[TIMEUTIL_RFC3339_LEN];

	timeutil_format_rfc3339(us, text);
	return json_string(text);
}

static bool
funnel_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct funnel_query *q = call->data;
	struct pgarray cols[4];
	char from[TIMEUTIL_RFC3339_LEN], to[TIMEUTIL_RFC3339_LEN];
	const char *params[8];
	PGresult *res = NULL;
	json_t *steps = json_array(), *excluded = json_array();
	/* The statement sees every event committed before it started. */
	int64_t as_of = timeutil_now_us();
	long first, prev;
	bool ok = false;

	for (int i = 0; i < 4; i++) {
		pgarray_init(&cols[i]);
	}
	steps_arrays(cols, q->steps, q->n_steps);
	for (size_t i = 0; i < q->n_exclude; i++) {
		pgarray_add_text(&cols[3], q->exclude[i].name);
		json_array_append_new(excluded, json_string(q->exclude[i].name));
	}
	timeutil_format_rfc3339(q->from_us, from);
	timeutil_format_rfc3339(q->to_us, to);
	params[0] = call->site_id;
	params[1] = pgarray_value(&cols[0]);
	params[2] = pgarray_value(&cols[1]);
	params[3] = pgarray_value(&cols[2]);
	params[4] = from;
	params[5] = to;
	params[6] = q->window_seconds;
	params[7] = pgarray_value(&cols[3]);
	if (params[1] == NULL || params[2] == NULL || params[3] == NULL ||
	    params[7] == NULL || strbuf_failed(&q->sql) || steps == NULL ||
	    excluded == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	res = db_query(pg, q->sql.data, 8, params, err);
	if (res == NULL) {
		goto done;
	}
	if (PQntuples(res) != (int)q->n_steps || PQnfields(res) != 6) {
		error_set(err, ERR_INTERNAL, "the funnel query answered %d rows",
		    PQntuples(res));
		goto done;
	}
	first = prev = atol(PQgetvalue(res, 0, 1));
	for (int i = 0; i < (int)q->n_steps; i++) {
		bool last = i + 1 == (int)q->n_steps;
		long next = last ? 0 : atol(PQgetvalue(res, i + 1, 1));
		json_array_append_new(steps, step_json(&q->steps[i], res, i,
		    first, prev, next, last));
		prev = atol(PQgetvalue(res, i, 1));
	}
	call->answer = json_pack("{s:s, s:{s:o, s:o, s:s, s:s, s:O, s:s, s:I},"
	    " s:b, s:O, s:o}",
	    "site", call->site_id,
	    "query", "from", time_json(q->from_us), "to", time_json(q->to_us),
	    "window", q->window_text, "order", order_names[q->order],
	    "exclude", excluded, "steps_from", q->plan_steps ? "plan" :
	    "request", "min_volume", (json_int_t)q->min_volume,
	    "low_volume", first < q->min_volume, "steps", steps,
	    "as_of", time_json(as_of));
	ok = call->answer != NULL;
	if (!ok) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
done:
	json_decref(steps);
	json_decref(excluded);
	PQclear(res);
	for (int i = 0; i < 4; i++) {
		pgarray_finish(&cols[i]);
	}
	return ok;
}

void
api_funnel(struct request *req, struct app *app)
{
	struct api_call *call = api_begin(req, app, API_READ);
	struct funnel_query *q;
	struct error err = { 0 };

	if (call == NULL) {
		return;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		error_set(&err, ERR_INTERNAL, "out of memory");
		http_respond_error(req, &err);
		return;
	}
	strbuf_init(&q->sql);
	call->data = q;
	call->data_free = funnel_query_free;
	if (!read_query(req, call->state, q, &err)) {
		http_respond_error(req, &err);
		return;
	}
	build_sql(q);
	api_run(call, funnel_run);
}
