/* api_funnel.c - GET /api/v1/funnel: how many people (or sessions) went
 * through each step, within the conversion window, overall and per
 * breakdown value or cohort.
 *
 * The counting is one SQL statement, built for the number of steps and
 * the options asked for (every value is a parameter); the rates,
 * intervals and flags are worked out here. docs/api.md defines what is
 * counted. */
#include "server/api_funnel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/funnel.h"
#include "common/plan.h"
#include "common/qfunnel.h"
#include "common/stats.h"
#include "common/strbuf.h"
#include "common/timeutil.h"
#include "server/api.h"
#include "server/db.h"
#include "server/pgarray.h"
#include "server/query_index.h"

#define DAY_US (86400 * TIMEUTIL_US_PER_SEC)
#define WINDOW_MAX_US (180 * DAY_US)
#define RANGE_DEFAULT_US (30 * DAY_US)
#define EXCLUDE_MAX 5
#define FILTERS_MAX FUNNEL_FILTERS_MAX
#define TOP_DEFAULT 10
#define TOP_MAX 50
/* $1..$9 are fixed (build_sql). Each filter adds its value, and its
 * property's name for prop:KEY; a prop:KEY breakdown adds its name. */
#define FIXED_PARAMS 10
#define PARAMS_MAX (FIXED_PARAMS + 2 * FILTERS_MAX + 1)

enum funnel_order { ORDER_ORDERED, ORDER_STRICT, ORDER_ANY };
static const char *const order_names[] = { "ordered", "strict", "any" };

/* Each dimension over the entry (x) and its session (ss). */
static const char *const dim_columns[FUNNEL_DIM_COUNT] = {
	[FUNNEL_DIM_CHANNEL] = "ss.channel",
	[FUNNEL_DIM_UTM_SOURCE] = "ss.utm_source",
	[FUNNEL_DIM_UTM_MEDIUM] = "ss.utm_medium",
	[FUNNEL_DIM_UTM_CAMPAIGN] = "ss.utm_campaign",
	[FUNNEL_DIM_DEVICE] = "x.device",
	[FUNNEL_DIM_BROWSER] = "x.browser",
	[FUNNEL_DIM_LANDING_PATH] = "ss.landing_path",
	[FUNNEL_DIM_PROP] = "x.props->>",
};

struct funnel_query {
	struct funnel_step steps[FUNNEL_STEPS_MAX];
	size_t n_steps;
	bool plan_steps;		/* steps came from the plan */
	struct funnel_step exclude[2 * EXCLUDE_MAX];
	size_t n_exclude;
	enum funnel_order order;
	bool sessions;			/* unit=sessions */
	int64_t from_us, to_us, window_us;
	char window_text[API_WINDOW_TEXT];	/* as asked, e.g. "30d" */
	char window_seconds[24];
	struct funnel_dim_ref breakdown;	/* FUNNEL_DIM_NONE: none */
	const char *cohort;		/* "week", "month" or NULL */
	long top;
	char top_text[24];
	struct funnel_dim_ref filters[FILTERS_MAX];
	size_t n_filters;
	long min_volume;
	enum api_engine engine;
	/* Parameters from $10 on, in the order build_sql numbers them. */
	const char *extra[PARAMS_MAX - FIXED_PARAMS];
	size_t n_extra;
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

/* ---------------------------------------------------------- parameters */

/* filter=dim=value,dim=value: ANDed, on the entry. */
static bool
read_filters(struct request *req, struct funnel_query *q, struct error *err)
{
	const char *p = http_request_query(req, "filter");

	while (p != NULL && *p != '\0') {
		struct funnel_dim_ref *f = &q->filters[q->n_filters];
		size_t len = strcspn(p, ","), name = strcspn(p, "=,");
		if (q->n_filters == FILTERS_MAX || name == len ||
		    !funnel_dim_parse(p, name, f) || len - name - 1 == 0 ||
		    len - name - 1 > FUNNEL_VALUE_MAX) {
			error_set(err, ERR_INVALID_PARAMETER, "filter is 1 to %d "
			    "comma-separated dimension=value pairs; a dimension "
			    "is " FUNNEL_DIM_CHOICES, FILTERS_MAX);
			return false;
		}
		memcpy(f->value, p + name + 1, len - name - 1);
		q->n_filters++;
		p += len + (p[len] == ',');
	}
	return true;
}

/* The steps: the parameter, else the plan's funnel. */
static bool
read_steps(struct request *req, const struct plan *plan,
    struct funnel_query *q, struct error *err)
{
	const char *v = http_request_query(req, "steps");
	char why[200], one[EVENT_NAME_MAX + 1];
	size_t n;

	if (v != NULL && v[0] != '\0') {
		if (!funnel_parse_steps(v, q->steps, &q->n_steps, why,
		    sizeof(why))) {
			error_set(err, ERR_INVALID_PARAMETER, "%s", why);
			return false;
		}
		for (size_t i = 0; i < q->n_steps; i++) {
			for (size_t k = 0; funnel_step_event(&q->steps[i], k,
			    one); k++) {
				if (!api_event_known(plan, one, "steps", err)) {
					return false;
				}
			}
		}
		return true;
	}
	n = funnel_plan_steps(plan, q->steps, FUNNEL_STEPS_MAX);
	if (n < FUNNEL_STEPS_MIN || n > FUNNEL_STEPS_MAX) {
		error_set(err, ERR_INVALID_PARAMETER, "the plan's funnel has %zu "
		    "step(s); name %d to %d in steps", n, FUNNEL_STEPS_MIN,
		    FUNNEL_STEPS_MAX);
		return false;
	}
	q->n_steps = n;
	q->plan_steps = true;
	return true;
}

static bool
read_exclude(struct request *req, const struct plan *plan,
    struct funnel_query *q, struct error *err)
{
	const char *v = http_request_query(req, "exclude");
	char list[2 * EXCLUDE_MAX * (EVENT_NAME_MAX + 2)], why[200];

	if (v == NULL || v[0] == '\0') {
		return true;
	}
	/* The steps' syntax, given twice so that one name makes the two-step
	 * minimum; filters and sets make no sense here (list each name). */
	if (snprintf(list, sizeof(list), "%s,%s", v, v) >= (int)sizeof(list) ||
	    !funnel_parse_steps(list, q->exclude, &q->n_exclude, why,
	    sizeof(why)) || q->n_exclude > 2 * EXCLUDE_MAX ||
	    strpbrk(v, "[|") != NULL) {
		error_set(err, ERR_INVALID_PARAMETER, "exclude must be 1 to %d "
		    "event names, comma-separated", EXCLUDE_MAX);
		return false;
	}
	q->n_exclude /= 2;
	for (size_t i = 0; i < q->n_exclude; i++) {
		if (!api_event_known(plan, q->exclude[i].name, "exclude", err)) {
			return false;
		}
	}
	return true;
}

static bool
read_grouping(struct request *req, struct funnel_query *q, struct error *err)
{
	static const char *const cohorts[] = { NULL, "week", "month" };
	const char *b = http_request_query(req, "breakdown");
	int cohort;

	q->top = TOP_DEFAULT;
	if (!api_param_choice(req, "cohort", cohorts, 3, 0, &cohort, err) ||
	    !api_param_int(req, "top", 1, TOP_MAX, &q->top, err)) {
		return false;
	}
	q->cohort = cohorts[cohort];
	if (b != NULL && b[0] != '\0' && !funnel_dim_parse(b, strlen(b),
	    &q->breakdown)) {
		error_set(err, ERR_INVALID_PARAMETER, "breakdown must be "
		    FUNNEL_DIM_CHOICES);
		return false;
	}
	if (q->cohort != NULL && q->breakdown.dim != FUNNEL_DIM_NONE) {
		error_set(err, ERR_INVALID_PARAMETER, "breakdown and cohort "
		    "cannot be combined: ask for one, then filter");
		return false;
	}
	snprintf(q->top_text, sizeof(q->top_text), "%ld", q->top);
	return true;
}

static bool
read_params(struct request *req, const struct app_state *state,
    struct funnel_query *q, struct error *err)
{
	static const char *const units[] = { "people", "sessions" };
	int order, unit;

	q->min_volume = state->cfg->min_volume;
	if (!read_steps(req, state->plan, q, err) ||
	    !read_exclude(req, state->plan, q, err) || !read_filters(req, q, err) ||
	    !read_grouping(req, q, err) ||
	    !api_param_choice(req, "order", order_names, 3, ORDER_ORDERED, &order,
	    err) ||
	    !api_param_choice(req, "unit", units, 2, 0, &unit, err) ||
	    !api_param_range(req, RANGE_DEFAULT_US, &q->from_us, &q->to_us,
	    err) ||
	    !api_param_window(req, WINDOW_MAX_US, &q->window_us, q->window_text,
	    err) || !api_param_engine(req, &q->engine, err)) {
		return false;
	}
	q->order = (enum funnel_order)order;
	q->sessions = unit == 1;
	snprintf(q->window_seconds, sizeof(q->window_seconds), "%lld",
	    (long long)(q->window_us / TIMEUTIL_US_PER_SEC));
	return true;
}

/* ----------------------------------------------------------------- SQL */

/* The next extra parameter's number, for value. */
static size_t
param_add(struct funnel_query *q, const char *value)
{
	/* Never more than PARAMS_MAX: read_filters and read_grouping bound
	 * what can ask for one (test_funnel asks for the most). */
	q->extra[q->n_extra++] = value;
	return FIXED_PARAMS + q->n_extra;
}

/* A dimension's SQL over the entry (x) and its session (ss). */
static void
dim_sql(struct funnel_query *q, const struct funnel_dim_ref *d)
{
	strbuf_append_str(&q->sql, dim_columns[d->dim]);
	if (d->dim == FUNNEL_DIM_PROP) {
		strbuf_appendf(&q->sql, "$%zu", param_add(q, d->key));
	}
}

/* Per person (or session): t1..tn, when each step was reached (NULL:
 * not), and g, the group (breakdown value or cohort). */
static void
sql_steps(struct funnel_query *q)
{
	struct strbuf *sb = &q->sql;
	size_t n = q->n_steps;

	if (q->order == ORDER_ANY) {
		/* Reaching step k is doing k of the steps, any of them, in
		 * the window from the first. */
		strbuf_append_str(sb, ", fa AS (SELECT e1.person, e1.g, ev.idx,"
		    " min(ev.ts) AS t FROM e1 CROSS JOIN span JOIN ev"
		    " ON ev.person = e1.person AND ev.ts >= e1.t1"
		    " AND ev.ts <= e1.t1 + span.w GROUP BY 1, 2, 3),"
		    " fr AS (SELECT person, g, t, row_number() OVER"
		    " (PARTITION BY person ORDER BY t, idx) AS k FROM fa),"
		    " s AS (SELECT person, g");
		for (size_t k = 1; k <= n; k++) {
			strbuf_appendf(sb, ", max(t) FILTER (WHERE k = %zu)"
			    " AS t%zu", k, k);
		}
		strbuf_append_str(sb, " FROM fr GROUP BY person, g)");
		return;
	}
	strbuf_append_str(sb, ", s1 AS (SELECT person, g, t1 FROM e1)");
	for (size_t k = 2; k <= n; k++) {
		strbuf_appendf(sb, ", s%zu AS (SELECT s.person, s.g", k);
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
		strbuf_append_str(sb, " GROUP BY s.person, s.g");
		for (size_t j = 1; j < k; j++) {
			strbuf_appendf(sb, ", s.t%zu", j);
		}
		strbuf_append_char(sb, ')');
	}
	strbuf_appendf(sb, ", s AS (SELECT * FROM s%zu)", n);
}

/* Parameters: $1 site, $2 step events, $3 filter keys, $4 filter values,
 * $5 from, $6 to, $7 window in seconds, $8 excluded names, $9 how many
 * breakdown values (NULL: all), $10 the step of each of $2, then the
 * extra ones. One row per group
 * (overall first: is_total true) and step: the group, the step's number,
 * how many reached it, and the median and 90th percentile of seconds from
 * the step before and from the first. */
static void
build_sql(struct funnel_query *q)
{
	struct strbuf *sb = &q->sql;
	size_t n = q->n_steps;
	bool grouped = q->breakdown.dim != FUNNEL_DIM_NONE || q->cohort != NULL;

	strbuf_appendf(sb,
	    "WITH st AS (SELECT * FROM unnest($2::text[], $3::text[],"
	    " $4::text[], $10::int[]) AS s(name, key, val, idx)),"
	    " span AS (SELECT $5::timestamptz AS lo, $6::timestamptz"
	    " + $7::bigint * interval '1 second' AS hi,"
	    " $7::bigint * interval '1 second' AS w),"
	    " seen AS (SELECT %s AS person, e.ts, e.name, e.props, e.kind,"
	    " e.session_id, e.device, e.browser FROM events_people e"
	    " CROSS JOIN span WHERE e.site_id = $1 AND e.ts >= span.lo AND e.ts < span.hi"
	    " AND NOT e.bot AND e.person_id IS NOT NULL%s%s),",
	    q->sessions ? "e.session_id" : "e.person",
	    q->sessions ? " AND e.session_id IS NOT NULL" : "",
	    q->order == ORDER_STRICT ? "" :
	    " AND (e.name = ANY ($2::text[]) OR e.name = ANY ($8::text[]))");
	strbuf_append_str(sb,
	    " ev AS (SELECT seen.person, seen.ts, st.idx FROM seen JOIN st"
	    " ON st.name = seen.name AND (st.key IS NULL"
	    " OR seen.props->>st.key = st.val)),");
	/* The entry: the first event of step 1 (any: of any step) before to;
	 * what it is broken down and filtered by. Of events at the same
	 * time, the one of the first visit, device and browser in byte order
	 * (the query index chooses so too). */
	strbuf_appendf(sb,
	    " entry AS (SELECT DISTINCT ON (seen.person) seen.* FROM seen"
	    " JOIN st ON st.name = seen.name AND (st.key IS NULL"
	    " OR seen.props->>st.key = st.val)%s WHERE seen.ts < $6"
	    " ORDER BY seen.person, seen.ts, seen.session_id COLLATE \"C\","
	    " seen.device COLLATE \"C\", seen.browser COLLATE \"C\"),"
	    " e1 AS (SELECT x.person, x.ts AS t1, ",
	    q->order == ORDER_ANY ? "" : " AND st.idx = 1");
	if (q->cohort != NULL) {
		strbuf_appendf(sb, "to_char(date_trunc('%s', x.ts AT TIME ZONE"
		    " 'UTC'), 'YYYY-MM-DD')", q->cohort);
	} else if (q->breakdown.dim != FUNNEL_DIM_NONE) {
		dim_sql(q, &q->breakdown);
	} else {
		strbuf_append_str(sb, "NULL::text");
	}
	strbuf_append_str(sb, " AS g FROM entry x LEFT JOIN sessions ss"
	    " ON ss.site_id = $1 AND ss.session_id = x.session_id WHERE true");
	for (size_t i = 0; i < q->n_filters; i++) {
		strbuf_append_str(sb, " AND ");
		dim_sql(q, &q->filters[i]);
		strbuf_appendf(sb, " = $%zu", param_add(q, q->filters[i].value));
	}
	strbuf_append_char(sb, ')');
	sql_steps(q);
	/* Left out: an excluded event between entry and the last step
	 * reached. */
	strbuf_append_str(sb, ", f0 AS (SELECT * FROM s WHERE NOT EXISTS"
	    " (SELECT 1 FROM seen x WHERE x.person = s.person"
	    " AND x.name = ANY ($8::text[]) AND x.ts > s.t1 AND x.ts < COALESCE(");
	for (size_t k = n; k >= 1; k--) {
		strbuf_appendf(sb, "s.t%zu%s", k, k > 1 ? ", " : ")))");
	}
	/* The top values by entrants keep their name (ties in byte order,
	 * whatever the database's collation: the query index orders them
	 * so); the rest is (other), no value (none). */
	strbuf_append_str(sb, ", top AS (SELECT g FROM f0 WHERE g IS NOT NULL"
	    " GROUP BY g ORDER BY count(*) DESC, g COLLATE \"C\" LIMIT $9::bigint),"
	    " f AS (SELECT f0.*, CASE WHEN g IS NULL THEN '(none)'"
	    " WHEN g IN (SELECT g FROM top) THEN g ELSE '(other)' END"
	    " COLLATE \"C\" AS grp"
	    " FROM f0)");
	for (size_t k = 1; k <= n; k++) {
		strbuf_append_str(sb, k > 1 ? " UNION ALL " : " ");
		strbuf_appendf(sb, "SELECT %s, %zu, count(t%zu)", grouped ?
		    "GROUPING(grp) = 1, grp" : "true, NULL::text", k, k);
		for (int from_first = 0; from_first < 2; from_first++) {
			for (int p90 = 0; p90 < 2; p90++) {
				if (k == 1) {
					strbuf_append_str(sb, ", NULL::float8");
					continue;
				}
				strbuf_appendf(sb, ", percentile_cont(%s) WITHIN GROUP"
				    " (ORDER BY extract(epoch FROM t%zu - t%zu))",
				    p90 ? "0.9" : "0.5", k, from_first ? (size_t)1 :
				    k - 1);
			}
		}
		/* The grand total row comes even when nobody entered. */
		strbuf_append_str(sb, grouped ?
		    " FROM f GROUP BY GROUPING SETS ((), (grp))" : " FROM f");
	}
	strbuf_append_str(sb, " ORDER BY 1 DESC, 2, 3");
}

/* -------------------------------------------------------------- answer */

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
seconds_json(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

/* Columns of the statement's rows. */
enum { COL_TOTAL, COL_GROUP, COL_STEP, COL_ENTERED, COL_SECONDS };

/* The events that reach step st. */
static json_t *
step_events_json(const struct funnel_step *st)
{
	json_t *events = json_array();
	char one[EVENT_NAME_MAX + 1];

	for (size_t k = 0; events != NULL && funnel_step_event(st, k, one);
	    k++) {
		json_array_append_new(events, json_string(one));
	}
	return events;
}

/* The steps of group g. */
static json_t *
steps_json(const struct funnel_query *q, const struct funnel_group *g)
{
	json_t *steps = json_array();
	long first = g->entered[0], prev = first;

	for (size_t i = 0; steps != NULL && i < q->n_steps; i++) {
		const struct funnel_step *st = &q->steps[i];
		long entered = g->entered[i];
		long next = i + 1 < q->n_steps ? g->entered[i + 1] : entered;
		const double *sec = g->seconds[i];
		json_array_append_new(steps, json_pack("{s:s, s:o, s:o, s:I, s:o,"
		    " s:o, s:I, s:{s:o, s:o}, s:{s:o, s:o}}",
		    "name", st->label[0] != '\0' ? st->label : st->name,
		    "events", step_events_json(st),
		    "filter", st->key[0] != '\0' ?
		    json_pack("{s:s, s:s}", "property", st->key, "value",
		    st->value) : json_null(),
		    "entered", (json_int_t)entered,
		    "conversion_from_previous", i == 0 ? json_null() :
		    rate_json(entered, prev),
		    "conversion_from_first", i == 0 ? json_null() :
		    rate_json(entered, first),
		    "drop_off", (json_int_t)(entered - next),
		    "seconds_from_previous",
		    "median", seconds_json(sec[QFUNNEL_MEDIAN_PREV]),
		    "p90", seconds_json(sec[QFUNNEL_P90_PREV]),
		    "seconds_from_first",
		    "median", seconds_json(sec[QFUNNEL_MEDIAN_FIRST]),
		    "p90", seconds_json(sec[QFUNNEL_P90_FIRST])));
		prev = entered;
	}
	return steps;
}

/* The n rows of one group from row on into g. */
static void
group_from_rows(const PGresult *res, int row, size_t n,
    struct funnel_group *g)
{
	for (size_t k = 0; k < n; k++) {
		int r = row + (int)k;
		g->entered[k] = atol(PQgetvalue(res, r, COL_ENTERED));
		for (int c = 0; c < QFUNNEL_SECONDS; c++) {
			g->seconds[k][c] = PQgetisnull(res, r, COL_SECONDS + c) ?
			    NAN : atof(PQgetvalue(res, r, COL_SECONDS + c));
		}
	}
}

/* The statement's rows as counts, the index's form. */
static bool
counts_from_result(const struct funnel_query *q, const PGresult *res,
    struct funnel_counts *out, struct error *err)
{
	int rows = PQntuples(res), n = (int)q->n_steps;

	memset(out, 0, sizeof(*out));
	if (rows == 0 || rows % n != 0 || PQnfields(res) != COL_SECONDS + 4 ||
	    PQgetvalue(res, 0, COL_TOTAL)[0] != 't') {
		error_set(err, ERR_INTERNAL, "the funnel query answered %d rows",
		    rows);
		return false;
	}
	group_from_rows(res, 0, q->n_steps, &out->overall);
	out->groups = calloc((size_t)(rows / n), sizeof(*out->groups));
	if (out->groups == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	for (int r = n; r < rows; r += n) {
		struct funnel_group *g = &out->groups[out->n_groups];
		if ((g->value = strdup(PQgetvalue(res, r, COL_GROUP))) == NULL) {
			error_set(err, ERR_INTERNAL, "out of memory");
			funnel_counts_finish(out);
			return false;
		}
		out->n_groups++;
		group_from_rows(res, r, q->n_steps, g);
	}
	return true;
}

static const char *
dim_name(const struct funnel_dim_ref *d, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s", funnel_dim_name(d->dim), d->key);
	return buf;
}

static json_t *
query_json(const struct funnel_query *q)
{
	json_t *exclude = json_array(), *filters = json_object();
	char name[FUNNEL_KEY_MAX + 8];

	for (size_t i = 0; exclude != NULL && i < q->n_exclude; i++) {
		json_array_append_new(exclude, json_string(q->exclude[i].name));
	}
	for (size_t i = 0; filters != NULL && i < q->n_filters; i++) {
		json_object_set_new(filters, dim_name(&q->filters[i], name,
		    sizeof(name)), json_string(q->filters[i].value));
	}
	return json_pack("{s:o, s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s,"
	    " s:I}",
	    "from", api_time_json(q->from_us), "to", api_time_json(q->to_us),
	    "window", q->window_text, "order", order_names[q->order],
	    "unit", q->sessions ? "sessions" : "people", "exclude", exclude,
	    "filter", filters,
	    "breakdown", q->breakdown.dim != FUNNEL_DIM_NONE ?
	    json_string(dim_name(&q->breakdown, name, sizeof(name))) :
	    json_null(),
	    "cohort", q->cohort != NULL ? json_string(q->cohort) : json_null(),
	    "steps_from", q->plan_steps ? "plan" : "request",
	    "min_volume", (json_int_t)q->min_volume);
}

static json_int_t
group_entrants(const json_t *group)
{
	return json_integer_value(json_object_get(json_array_get(
	    json_object_get(group, "steps"), 0), "entered"));
}

/* Breakdown values by entrants, then by name; (other) and (none) last. */
static int
compare_groups(const void *pa, const void *pb)
{
	const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	const char *va = json_string_value(json_object_get(a, "value"));
	const char *vb = json_string_value(json_object_get(b, "value"));
	bool special_a = va[0] == '(', special_b = vb[0] == '(';
	json_int_t ea = group_entrants(a), eb = group_entrants(b);

	if (special_a != special_b) {
		return special_a ? 1 : -1;
	}
	if (ea != eb) {
		return ea > eb ? -1 : 1;
	}
	return strcmp(va, vb);
}

/* Sorts the breakdown values of groups (cohorts come in time order
 * already). */
static void
sort_groups(json_t *groups)
{
	size_t n = json_array_size(groups);
	json_t **sorted = n > 0 ? malloc(n * sizeof(*sorted)) : NULL;

	if (sorted == NULL) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		sorted[i] = json_incref(json_array_get(groups, i));
	}
	qsort(sorted, n, sizeof(*sorted), compare_groups);
	json_array_clear(groups);
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(groups, sorted[i]);
	}
	free(sorted);
}

static bool
answer(struct api_call *call, const struct funnel_counts *c, int64_t as_of,
    bool from_index, struct error *err)
{
	struct funnel_query *q = call->data;
	bool grouped = q->breakdown.dim != FUNNEL_DIM_NONE || q->cohort != NULL;
	json_t *groups = grouped ? json_array() : json_null();

	for (size_t i = 0; grouped && i < c->n_groups; i++) {
		const struct funnel_group *g = &c->groups[i];
		json_array_append_new(groups, json_pack("{s:s, s:b, s:o}",
		    "value", g->value, "low_volume", g->entered[0] < q->min_volume,
		    "steps", steps_json(q, g)));
	}
	if (q->breakdown.dim != FUNNEL_DIM_NONE) {
		sort_groups(groups);
	}
	call->answer = json_pack("{s:s, s:o, s:b, s:o, s:o, s:o, s:s}",
	    "site", call->site_id, "query", query_json(q),
	    "low_volume", c->overall.entered[0] < q->min_volume,
	    "steps", steps_json(q, &c->overall), "groups", groups,
	    "as_of", api_time_json(as_of), "engine", from_index ? "index" : "sql");
	if (call->answer == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	return true;
}

/* q as the index's funnel. */
static void
index_spec(const struct funnel_query *q, struct qfunnel_spec *spec)
{
	static const enum qfunnel_order orders[] = {
		[ORDER_ORDERED] = QFUNNEL_ORDERED, [ORDER_STRICT] = QFUNNEL_STRICT,
		[ORDER_ANY] = QFUNNEL_ANY,
	};

	*spec = (struct qfunnel_spec){
		.steps = q->steps, .n_steps = q->n_steps,
		.exclude = q->exclude, .n_exclude = q->n_exclude,
		.order = orders[q->order], .sessions = q->sessions,
		.from_us = q->from_us, .to_us = q->to_us,
		.window_us = q->window_us, .breakdown = q->breakdown,
		.cohort = q->cohort == NULL ? QFUNNEL_NO_COHORT :
		    strcmp(q->cohort, "week") == 0 ? QFUNNEL_WEEK : QFUNNEL_MONTH,
		.top = q->top, .filters = q->filters, .n_filters = q->n_filters,
	};
}

/* Runs q's statement (build_sql) for site in the caller's transaction;
 * the result, or NULL with err set. */
static PGresult *
funnel_statement(PGconn *pg, const char *site, struct funnel_query *q,
    struct error *err)
{
	struct pgarray cols[5];
	char from[TIMEUTIL_RFC3339_LEN], to[TIMEUTIL_RFC3339_LEN];
	const char *params[PARAMS_MAX];
	PGresult *res = NULL;

	char one[EVENT_NAME_MAX + 1], idx[24];

	for (int i = 0; i < 5; i++) {
		pgarray_init(&cols[i]);
	}
	/* A row per event of each step, numbered by its step: any event of
	 * a set reaches it. */
	for (size_t i = 0; i < q->n_steps; i++) {
		bool filtered = q->steps[i].key[0] != '\0';
		snprintf(idx, sizeof(idx), "%zu", i + 1);
		for (size_t k = 0; funnel_step_event(&q->steps[i], k, one); k++) {
			pgarray_add_text(&cols[0], one);
			pgarray_add_text(&cols[1], filtered ? q->steps[i].key :
			    NULL);
			pgarray_add_text(&cols[2], filtered ? q->steps[i].value :
			    NULL);
			pgarray_add_text(&cols[4], idx);
		}
	}
	for (size_t i = 0; i < q->n_exclude; i++) {
		pgarray_add_text(&cols[3], q->exclude[i].name);
	}
	timeutil_format_rfc3339(q->from_us, from);
	timeutil_format_rfc3339(q->to_us, to);
	params[0] = site;
	params[1] = pgarray_value(&cols[0]);
	params[2] = pgarray_value(&cols[1]);
	params[3] = pgarray_value(&cols[2]);
	params[4] = from;
	params[5] = to;
	params[6] = q->window_seconds;
	params[7] = pgarray_value(&cols[3]);
	params[8] = q->cohort == NULL ? q->top_text : NULL;
	params[9] = pgarray_value(&cols[4]);
	for (size_t i = 0; i < q->n_extra; i++) {
		params[FIXED_PARAMS + i] = q->extra[i];
	}
	if (params[1] == NULL || params[2] == NULL || params[3] == NULL ||
	    params[7] == NULL || params[9] == NULL || strbuf_failed(&q->sql)) {
		error_set(err, ERR_INTERNAL, "out of memory");
	} else {
		res = db_query(pg, q->sql.data, (int)(FIXED_PARAMS + q->n_extra),
		    params, err);
	}
	for (int i = 0; i < 5; i++) {
		pgarray_finish(&cols[i]);
	}
	return res;
}

/* The counts of q from the index r holds, or from PostgreSQL (as_of: the
 * time the answer is as of); false with err set. */
static bool
funnel_counts(PGconn *pg, const char *site, struct funnel_query *q,
    const struct query_index_read *r, struct funnel_counts *out,
    int64_t *as_of, struct error *err)
{
	struct qfunnel_spec spec;
	PGresult *res;
	bool ok;

	index_spec(q, &spec);
	if (r->ix != NULL && qfunnel_supported(&spec)) {
		*as_of = r->as_of;
		if (!qfunnel_run(r->ix, &spec, out)) {
			error_set(err, ERR_INTERNAL, "out of memory");
			return false;
		}
		return true;
	}
	/* The statement sees every event committed before it started. */
	*as_of = timeutil_now_us();
	res = funnel_statement(pg, site, q, err);
	ok = res != NULL && counts_from_result(q, res, out, err);
	PQclear(res);
	return ok;
}

static bool
funnel_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct funnel_query *q = call->data;
	struct query_index *qi = call->app->index;
	struct query_index_read r;
	struct funnel_counts counts = { 0 };
	struct qfunnel_spec spec;
	int64_t as_of = 0;
	bool ok, from_index;

	index_spec(q, &spec);
	if (!api_engine_read(call, pg, q->engine, qfunnel_supported(&spec) ?
	    NULL : "the query index does not hold event properties", &r, err)) {
		return false;
	}
	from_index = r.ix != NULL;
	if (from_index) {
		ok = funnel_counts(pg, call->site_id, q, &r, &counts, &as_of, err);
		query_index_release(qi, &r);
	} else {
		ok = api_snapshot_begin(pg, err) && funnel_counts(pg,
		    call->site_id, q, &r, &counts, &as_of, err);
		api_snapshot_end(pg);
	}
	ok = ok && answer(call, &counts, as_of, from_index, err);
	query_index_count_answer(qi, from_index);
	funnel_counts_finish(&counts);
	return ok;
}

bool
funnel_count(PGconn *pg, const struct query_index_read *r, const char *site,
    const struct funnel_spec *spec, long *entered, struct error *err)
{
	struct funnel_query *q = calloc(1, sizeof(*q));
	struct funnel_counts counts = { 0 };
	int64_t as_of;
	bool ok;

	if (q == NULL || spec->n_steps < 1 || spec->n_steps > FUNNEL_STEPS_MAX ||
	    spec->n_filters > FILTERS_MAX) {
		error_set(err, ERR_INTERNAL, q == NULL ? "out of memory" :
		    "a funnel of %zu steps and %zu filters", spec->n_steps,
		    spec->n_filters);
		free(q);
		return false;
	}
	strbuf_init(&q->sql);
	memcpy(q->steps, spec->steps, spec->n_steps * sizeof(*q->steps));
	q->n_steps = spec->n_steps;
	if (spec->n_filters > 0) {
		memcpy(q->filters, spec->filters, spec->n_filters *
		    sizeof(*q->filters));
	}
	q->n_filters = spec->n_filters;
	q->order = ORDER_ORDERED;
	q->from_us = spec->from_us;
	q->to_us = spec->to_us;
	q->window_us = spec->window_us;
	snprintf(q->window_seconds, sizeof(q->window_seconds), "%lld",
	    (long long)(q->window_us / TIMEUTIL_US_PER_SEC));
	q->top = TOP_DEFAULT;
	snprintf(q->top_text, sizeof(q->top_text), "%ld", q->top);
	build_sql(q);
	ok = funnel_counts(pg, site, q, r, &counts, &as_of, err);
	for (size_t k = 0; ok && k < q->n_steps; k++) {
		entered[k] = counts.overall.entered[k];
	}
	funnel_counts_finish(&counts);
	funnel_query_free(q);
	return ok;
}

static bool
read_query(struct request *req, const struct app_state *state, void *data,
    struct error *err)
{
	struct funnel_query *q = data;

	strbuf_init(&q->sql);
	if (!read_params(req, state, q, err)) {
		return false;
	}
	build_sql(q);
	return true;
}

void
api_funnel(struct request *req, struct app *app)
{
	api_query(req, app, sizeof(struct funnel_query), funnel_query_free,
	    read_query, funnel_run);
}
