/* api_signals.c - GET /api/v1/signals: which small actions go with the big
 * one. For each milestone and secondary action, the conversion rate of the
 * people who did it against that of the people who did not, the lift, a
 * two-proportion z-test, and the time from the action to the conversion.
 *
 * Everyone active in [from, to) is in the population. A person who did
 * the action is measured from their first time doing it; one who did not,
 * from their first event: converted means the conversion event followed
 * within the window. The rates of those who did not are the population's
 * minus those of the ones who did, so the statement never pairs every
 * person with every action. */
#include "server/api_signals.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/funnel.h"
#include "common/plan.h"
#include "common/qsignals.h"
#include "common/stats.h"
#include "common/timeutil.h"
#include "server/api.h"
#include "server/db.h"
#include "server/pgarray.h"
#include "server/query_index.h"

#define DAY_US (86400 * TIMEUTIL_US_PER_SEC)
#define RANGE_DEFAULT_US (30 * DAY_US)
#define WINDOW_MAX_US (180 * DAY_US)
#define SIGNIFICANCE 0.05

struct signals_query {
	const char **names;		/* the actions, borrowed from the plan */
	size_t n_names;
	char conversion[EVENT_NAME_MAX + 1];
	int64_t from_us, to_us, window_us;
	char from[TIMEUTIL_RFC3339_LEN], to[TIMEUTIL_RFC3339_LEN];
	char window_text[API_WINDOW_TEXT], window_seconds[24];
	long min_volume;
	enum api_engine engine;
};

static void
signals_query_free(void *p)
{
	struct signals_query *q = p;

	if (q != NULL) {
		free(q->names);
		free(q);
	}
}

static bool
read_query(struct request *req, const struct app_state *state, void *data,
    struct error *err)
{
	struct signals_query *q = data;
	size_t n = plan_event_count(state->plan);

	q->min_volume = state->cfg->min_volume;
	if (!api_param_conversion(req, state->plan, q->conversion, err) ||
	    !api_param_range(req, RANGE_DEFAULT_US, &q->from_us, &q->to_us,
	    err) ||
	    !api_param_window(req, WINDOW_MAX_US, &q->window_us, q->window_text,
	    err) || !api_param_engine(req, &q->engine, err)) {
		return false;
	}
	snprintf(q->window_seconds, sizeof(q->window_seconds), "%lld",
	    (long long)(q->window_us / TIMEUTIL_US_PER_SEC));
	timeutil_format_rfc3339(q->from_us, q->from);
	timeutil_format_rfc3339(q->to_us, q->to);
	q->names = calloc(n > 0 ? n : 1, sizeof(*q->names));
	if (q->names == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const struct plan_event *def = plan_event_at(state->plan, i);
		const char *kind = plan_event_kind_name(def);
		if ((strcmp(kind, "milestone") == 0 ||
		    strcmp(kind, "secondary") == 0) &&
		    strcmp(plan_event_name(def), q->conversion) != 0) {
			q->names[q->n_names++] = plan_event_name(def);
		}
	}
	return true;
}

/* $1 site, $2 from, $3 to, $4 window in seconds, $5 the actions, $6 the
 * conversion. Rows: an action (NULL: the whole population), people,
 * those who converted (from the action, or for the population from their
 * first event), those of them who converted from their first event, and
 * the median seconds from the action to the conversion. */
static const char signals_sql[] =
    "WITH span AS (SELECT $4::bigint * interval '1 second' AS w),"
    " base AS (SELECT e.person, e.name, e.ts FROM events_people e"
    " CROSS JOIN span WHERE e.site_id = $1 AND e.ts >= $2 AND e.ts < $3::timestamptz + span.w"
    " AND NOT e.bot AND e.person_id IS NOT NULL),"
    " conv AS (SELECT person, ts FROM base WHERE name = $6),"
    " p0 AS (SELECT person, min(ts) AS first_seen FROM base WHERE ts < $3"
    " GROUP BY person),"
    " people AS (SELECT p.person, bool_or(c.ts IS NOT NULL) AS cf"
    " FROM p0 p CROSS JOIN span LEFT JOIN conv c ON c.person = p.person"
    " AND c.ts >= p.first_seen AND c.ts <= p.first_seen + span.w"
    " GROUP BY p.person),"
    " sig AS (SELECT person, name, min(ts) AS t FROM base WHERE ts < $3"
    " AND name = ANY ($5::text[]) GROUP BY person, name),"
    " did AS (SELECT s.name, s.person, s.t, min(c.ts) AS ct FROM sig s"
    " CROSS JOIN span LEFT JOIN conv c ON c.person = s.person"
    " AND c.ts >= s.t AND c.ts <= s.t + span.w GROUP BY 1, 2, 3)"
    " SELECT NULL, count(*), count(*) FILTER (WHERE cf),"
    " count(*) FILTER (WHERE cf), NULL::float8 FROM people"
    " UNION ALL SELECT d.name, count(*), count(d.ct),"
    " count(*) FILTER (WHERE pe.cf), percentile_cont(0.5) WITHIN GROUP"
    " (ORDER BY extract(epoch FROM d.ct - d.t)) FROM did d"
    " JOIN people pe ON pe.person = d.person GROUP BY d.name"
    " ORDER BY 1 NULLS FIRST";

static json_t *
rate_or_null(long x, long n)
{
	return n > 0 ? json_real((double)x / (double)n) : json_null();
}

static json_t *
signal_json(const struct signals_query *q, const struct plan *plan,
    const char *name, const struct signal_count *c, long total,
    long total_conv)
{
	long did = c->people, conv = c->converted;
	long without = total - did, conv_without = total_conv - c->converted_first;
	double z = 0, p = 1;
	bool tested = stats_two_proportions(conv, did, conv_without, without,
	    &z, &p);
	json_t *lift = json_null();

	if (did > 0 && without > 0 && conv_without > 0) {
		lift = json_real(((double)conv / (double)did) /
		    ((double)conv_without / (double)without));
	}
	return json_pack("{s:s, s:s, s:I, s:I, s:o, s:I, s:I, s:o, s:o, s:o,"
	    " s:o, s:b, s:o, s:b}",
	    "name", name,
	    "kind", plan_event_kind_name(plan_find_event(plan, name)),
	    "people", (json_int_t)did, "converted", (json_int_t)conv,
	    "rate", rate_or_null(conv, did),
	    "people_without", (json_int_t)without,
	    "converted_without", (json_int_t)conv_without,
	    "rate_without", rate_or_null(conv_without, without),
	    "lift", lift,
	    "z", tested ? json_real(z) : json_null(),
	    "p_value", tested ? json_real(p) : json_null(),
	    "significant", tested && p < SIGNIFICANCE,
	    "median_seconds_to_conversion", isnan(c->median_seconds) ?
	    json_null() : json_real(c->median_seconds),
	    "low_volume", did < q->min_volume || without < q->min_volume);
}

/* Significant signals first, each group by lift (highest first, none
 * last), then by name. */
static int
compare_signals(const void *pa, const void *pb)
{
	const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	bool sa = json_is_true(json_object_get(a, "significant"));
	bool sb = json_is_true(json_object_get(b, "significant"));
	const json_t *la = json_object_get(a, "lift");
	const json_t *lb = json_object_get(b, "lift");

	if (sa != sb) {
		return sa ? -1 : 1;
	}
	if (json_is_real(la) != json_is_real(lb)) {
		return json_is_real(la) ? -1 : 1;
	}
	if (json_is_real(la) && json_real_value(la) != json_real_value(lb)) {
		return json_real_value(la) > json_real_value(lb) ? -1 : 1;
	}
	return strcmp(json_string_value(json_object_get(a, "name")),
	    json_string_value(json_object_get(b, "name")));
}

/* The statement's counts, in the index's form. */
static bool
count_sql(PGconn *pg, const char *site, const struct signals_query *q,
    struct signals_counts *out, struct error *err)
{
	struct pgarray names;
	PGresult *res = NULL;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	pgarray_init(&names);
	for (size_t i = 0; i < q->n_names; i++) {
		pgarray_add_text(&names, q->names[i]);
	}
	const char *params[] = { site, q->from, q->to, q->window_seconds,
		pgarray_value(&names), q->conversion };
	out->actions = calloc(q->n_names + 1, sizeof(*out->actions));
	out->n_actions = q->n_names;
	if (params[4] == NULL || out->actions == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	if (api_snapshot_begin(pg, err)) {
		res = db_query(pg, signals_sql, 6, params, err);
	}
	api_snapshot_end(pg);
	if (res == NULL) {
		goto done;
	}
	if (PQntuples(res) < 1 || !PQgetisnull(res, 0, 0)) {
		error_set(err, ERR_INTERNAL, "the signals query answered no "
		    "population");
		goto done;
	}
	out->people = atol(PQgetvalue(res, 0, 1));
	out->converted = atol(PQgetvalue(res, 0, 2));
	for (size_t i = 0; i < q->n_names; i++) {
		struct signal_count *c = &out->actions[i];
		c->median_seconds = NAN;
		for (int r = 1; r < PQntuples(res); r++) {
			if (strcmp(PQgetvalue(res, r, 0), q->names[i]) != 0) {
				continue;
			}
			c->people = atol(PQgetvalue(res, r, 1));
			c->converted = atol(PQgetvalue(res, r, 2));
			c->converted_first = atol(PQgetvalue(res, r, 3));
			if (!PQgetisnull(res, r, 4)) {
				c->median_seconds = atof(PQgetvalue(res, r, 4));
			}
		}
	}
	ok = true;
done:
	if (!ok) {
		signals_counts_finish(out);
	}
	PQclear(res);
	pgarray_finish(&names);
	return ok;
}

static bool
signals_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct signals_query *q = call->data;
	struct query_index *qi = call->app->index;
	struct query_index_read r;
	struct signals_counts c = { 0 };
	json_t **list = NULL, *signals = json_array();
	int64_t as_of = timeutil_now_us();
	bool ok = false, from_index = false;

	list = calloc(q->n_names > 0 ? q->n_names : 1, sizeof(*list));
	if (list == NULL || signals == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	if (!api_engine_read(call, pg, q->engine, NULL, &r, err)) {
		goto done;
	}
	if (r.ix != NULL) {
		bool counted = qsignals_run(r.ix, q->names, q->n_names,
		    q->conversion, q->from_us, q->to_us, q->window_us, &c);
		from_index = true;
		as_of = r.as_of;
		query_index_release(qi, &r);
		if (!counted) {
			error_set(err, ERR_INTERNAL, "out of memory");
			goto done;
		}
	} else if (!count_sql(pg, call->site_id, q, &c, err)) {
		goto done;
	}
	query_index_count_answer(qi, from_index);
	for (size_t i = 0; i < q->n_names; i++) {
		list[i] = signal_json(q, call->state->plan, q->names[i],
		    &c.actions[i], c.people, c.converted);
		if (list[i] == NULL) {
			error_set(err, ERR_INTERNAL, "out of memory");
			goto done;
		}
	}
	qsort(list, q->n_names, sizeof(*list), compare_signals);
	for (size_t i = 0; i < q->n_names; i++) {
		json_array_append_new(signals, list[i]);
		list[i] = NULL;
	}
	call->answer = json_pack("{s:s, s:{s:o, s:o, s:s, s:s, s:I},"
	    " s:{s:I, s:I, s:o}, s:O, s:o, s:s}",
	    "site", call->site_id,
	    "query", "from", api_time_json(q->from_us),
	    "to", api_time_json(q->to_us), "window", q->window_text,
	    "conversion", q->conversion, "min_volume", (json_int_t)q->min_volume,
	    "population", "people", (json_int_t)c.people,
	    "converted", (json_int_t)c.converted,
	    "rate", rate_or_null(c.converted, c.people),
	    "signals", signals, "as_of", api_time_json(as_of),
	    "engine", from_index ? "index" : "sql");
	ok = call->answer != NULL;
	if (!ok) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
done:
	for (size_t i = 0; list != NULL && i < q->n_names; i++) {
		json_decref(list[i]);
	}
	free(list);
	json_decref(signals);
	signals_counts_finish(&c);
	return ok;
}

void
api_signals(struct request *req, struct app *app)
{
	api_query(req, app, sizeof(struct signals_query), signals_query_free,
	    read_query, signals_run);
}
