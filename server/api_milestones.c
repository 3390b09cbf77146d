/* api_milestones.c - GET /api/v1/milestones: for each planned event, people
 * and events per period, its micro-conversion rate (people who did it /
 * people with any event), and where the plan sets a target, how the last
 * complete target period compares with it.
 *
 * Two statements in one read-only snapshot: the counts per period, then
 * the counts of each target's last complete period. People are stitched,
 * bots left out, as in every query. */
#include "server/api_milestones.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/plan.h"
#include "common/qmilestones.h"
#include "common/timeutil.h"
#include "server/api.h"
#include "server/db.h"
#include "server/pgarray.h"
#include "server/query_index.h"

#define DAY_US (86400 * TIMEUTIL_US_PER_SEC)
#define RANGE_DEFAULT_US (30 * DAY_US)
#define PERIODS_MAX 400

static const char *const intervals[] = { "day", "week", "month" };
/* The longest each interval can be, to bound the number of periods. */
static const int64_t interval_us[] = { DAY_US, 7 * DAY_US, 28 * DAY_US };

struct milestones_query {
	const char **names;		/* borrowed from the plan */
	size_t n_names;
	int interval;
	int64_t from_us, to_us;
	char from[TIMEUTIL_RFC3339_LEN], to[TIMEUTIL_RFC3339_LEN];
	enum api_engine engine;
};

static void
milestones_query_free(void *p)
{
	struct milestones_query *q = p;

	if (q != NULL) {
		free(q->names);
		free(q);
	}
}

/* The plan's event document (for its target and owner). */
static const json_t *
event_doc(const struct plan *plan, const char *name)
{
	return json_object_get(json_object_get(plan_document(plan), "events"),
	    name);
}

static bool
listed(const struct milestones_query *q, const char *name)
{
	for (size_t i = 0; i < q->n_names; i++) {
		if (strcmp(q->names[i], name) == 0) {
			return true;
		}
	}
	return false;
}

/* The events asked for: names, else the plan's milestones in phase order
 * and then its other events by name. */
static bool
read_names(struct request *req, const struct plan *plan,
    struct milestones_query *q, struct error *err)
{
	const char *v = http_request_query(req, "names");
	size_t n = plan_event_count(plan), i, j;
	const json_t *phase, *m;

	q->names = calloc(n > 0 ? n : 1, sizeof(*q->names));
	if (q->names == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	while (v != NULL && *v != '\0') {
		size_t len = strcspn(v, ",");
		const struct plan_event *def = NULL;
		for (i = 0; def == NULL && i < n; i++) {
			const char *name = plan_event_name(plan_event_at(plan, i));
			if (strlen(name) == len && strncmp(name, v, len) == 0) {
				def = plan_event_at(plan, i);
			}
		}
		if (def == NULL) {
			error_set(err, ERR_QUERY_UNKNOWN_EVENT, "names: '%.*s' is "
			    "not an event of the plan", (int)(len > 64 ? 64 : len),
			    v);
			return false;
		}
		if (!listed(q, plan_event_name(def))) {
			q->names[q->n_names++] = plan_event_name(def);
		}
		v += len + (v[len] == ',');
	}
	if (q->n_names > 0) {
		return true;
	}
	json_array_foreach(json_object_get(plan_document(plan), "phases"), i,
	    phase) {
		json_array_foreach(json_object_get(phase, "milestones"), j, m) {
			if (!listed(q, json_string_value(m))) {
				q->names[q->n_names++] = json_string_value(m);
			}
		}
	}
	for (i = 0; i < n; i++) {
		const char *name = plan_event_name(plan_event_at(plan, i));
		if (!listed(q, name)) {
			q->names[q->n_names++] = name;
		}
	}
	if (q->n_names == 0) {
		error_set(err, ERR_INVALID_PARAMETER, "the plan has no events");
		return false;
	}
	return true;
}

static bool
read_query(struct request *req, const struct app_state *state,
    void *data, struct error *err)
{
	struct milestones_query *q = data;

	if (!api_param_choice(req, "interval", intervals, 3, 0, &q->interval,
	    err) || !read_names(req, state->plan, q, err) ||
	    !api_param_range(req, RANGE_DEFAULT_US, &q->from_us, &q->to_us,
	    err) || !api_param_engine(req, &q->engine, err)) {
		return false;
	}
	if ((q->to_us - q->from_us) / interval_us[q->interval] >= PERIODS_MAX) {
		error_set(err, ERR_INVALID_PARAMETER, "at most %d periods: take "
		    "a longer interval or a shorter range", PERIODS_MAX);
		return false;
	}
	timeutil_format_rfc3339(q->from_us, q->from);
	timeutil_format_rfc3339(q->to_us, q->to);
	return true;
}

/* $1 site, $2 from, $3 to, $4 interval, $5 names. Rows: kind ('p' a
 * period: whether it lies whole in the range and is over; 'a' people
 * with any event in a period; 'e' an event's people and events in a
 * period), name, period start (a date), people, events, and the period's
 * start in microseconds (for milestones_count's hours). $6: whether the
 * 'a' rows are wanted; without them only the named events are read
 * (through events_name), as an alert's count needs. */
static const char periods_sql[] =
    "WITH base AS (SELECT e.person, e.name,"
    " date_trunc($4, e.ts AT TIME ZONE 'UTC') AS period"
    " FROM events_people e WHERE e.site_id = $1"
    " AND e.ts >= $2 AND e.ts < $3 AND NOT e.bot"
    " AND e.person_id IS NOT NULL AND ($6 OR e.name = ANY ($5::text[])))"
    " SELECT 'p', NULL, to_char(p, 'YYYY-MM-DD'),"
    " (p >= $2::timestamptz AT TIME ZONE 'UTC'"
    " AND p + ('1 ' || $4)::interval <= LEAST($3::timestamptz, now())"
    " AT TIME ZONE 'UTC')::int, 0, NULL::bigint"
    " FROM generate_series(date_trunc($4, $2::timestamptz AT TIME ZONE"
    " 'UTC'), $3::timestamptz AT TIME ZONE 'UTC' - interval '1 microsecond',"
    " ('1 ' || $4)::interval) AS p"
    " UNION ALL SELECT 'a', NULL, to_char(period, 'YYYY-MM-DD'),"
    " count(DISTINCT person), count(*), NULL FROM base WHERE $6"
    " GROUP BY period"
    " UNION ALL SELECT 'e', name, to_char(period, 'YYYY-MM-DD'),"
    " count(DISTINCT person), count(*),"
    " (extract(epoch FROM period AT TIME ZONE 'UTC') * 1000000)::bigint"
    " FROM base WHERE name = ANY ($5::text[]) GROUP BY name, period"
    " ORDER BY 1, 2, 3";

/* $1 site, $2 the target periods ('day', 'week', 'month'), $3 to, $4
 * names. Each target period's last complete one before to (or now): rows
 * of the period, its start and end (dates), a name (NULL: everyone with
 * any event) and people. */
static const char targets_sql[] =
    "WITH w AS (SELECT tp, (date_trunc(tp, LEAST($3::timestamptz, now())"
    " AT TIME ZONE 'UTC') - ('1 ' || tp)::interval) AT TIME ZONE 'UTC' AS s,"
    " date_trunc(tp, LEAST($3::timestamptz, now()) AT TIME ZONE 'UTC')"
    " AT TIME ZONE 'UTC' AS e FROM unnest($2::text[]) AS tp),"
    " base AS (SELECT e.person, e.name, e.ts FROM events_people e"
    " WHERE e.site_id = $1 AND e.ts >= (SELECT min(s) FROM w)"
    " AND e.ts < (SELECT max(e) FROM w) AND NOT e.bot"
    " AND e.person_id IS NOT NULL)"
    " SELECT w.tp, to_char(w.s AT TIME ZONE 'UTC', 'YYYY-MM-DD'),"
    " to_char(w.e AT TIME ZONE 'UTC', 'YYYY-MM-DD'), NULL,"
    " count(DISTINCT b.person) FROM w LEFT JOIN base b ON b.ts >= w.s"
    " AND b.ts < w.e GROUP BY 1, 2, 3"
    " UNION ALL SELECT w.tp, to_char(w.s AT TIME ZONE 'UTC', 'YYYY-MM-DD'),"
    " to_char(w.e AT TIME ZONE 'UTC', 'YYYY-MM-DD'), b.name,"
    " count(DISTINCT b.person) FROM w JOIN base b ON b.ts >= w.s"
    " AND b.ts < w.e AND b.name = ANY ($4::text[]) GROUP BY 1, 2, 3, 4";

/* The period kinds a target may have, in intervals[] order. */
#define TARGET_PERIODS 3

/* What both engines count for an answer. */
struct milestones_answer {
	struct milestones_counts counts;
	struct milestones_target targets[TARGET_PERIODS];
	bool wanted[TARGET_PERIODS];		/* some event's target */
};

static void
answer_finish(struct milestones_answer *a)
{
	milestones_counts_finish(&a->counts);
	for (int k = 0; k < TARGET_PERIODS; k++) {
		free(a->targets[k].people);
	}
}

/* A date's start (YYYY-MM-DD, UTC) in microseconds. */
static int64_t
date_us(const char *date)
{
	char text[TIMEUTIL_RFC3339_LEN];
	int64_t us = 0;

	snprintf(text, sizeof(text), "%.10sT00:00:00Z", date);
	timeutil_parse_rfc3339(text, &us);
	return us;
}

static void
date_text(int64_t us, char out[TIMEUTIL_RFC3339_LEN])
{
	timeutil_format_rfc3339(us, out);
	out[10] = '\0';
}

static long
name_index(const struct milestones_query *q, const char *name)
{
	for (size_t i = 0; i < q->n_names; i++) {
		if (strcmp(q->names[i], name) == 0) {
			return (long)i;
		}
	}
	return -1;
}

/* The periods statement's rows into c: 'p' rows lay the periods out. */
static bool
counts_from_result(const struct milestones_query *q, const PGresult *res,
    struct milestones_counts *c)
{
	int rows = PQntuples(res);
	size_t n = 0;

	for (int r = 0; r < rows; r++) {
		n += PQgetvalue(res, r, 0)[0] == 'p';
	}
	if (!milestones_counts_alloc(c, n, q->n_names)) {
		return false;
	}
	n = 0;
	for (int r = 0; r < rows; r++) {
		if (PQgetvalue(res, r, 0)[0] == 'p') {
			c->start[n] = date_us(PQgetvalue(res, r, 2));
			c->complete[n++] = PQgetvalue(res, r, 3)[0] == '1';
		}
	}
	for (int r = 0; r < rows; r++) {
		char kind = PQgetvalue(res, r, 0)[0];
		long p = kind == 'p' ? -1 :
		    milestones_period_of(c, date_us(PQgetvalue(res, r, 2)));
		long i = kind == 'e' ? name_index(q, PQgetvalue(res, r, 1)) : -1;
		if (p < 0) {
			continue;
		}
		if (kind == 'a') {
			c->active[p] = atol(PQgetvalue(res, r, 3));
		} else if (i >= 0) {
			size_t cell = (size_t)i * c->n_periods + (size_t)p;
			c->people[cell] = atol(PQgetvalue(res, r, 3));
			c->events[cell] = atol(PQgetvalue(res, r, 4));
		}
	}
	return true;
}

/* The targets statement's rows into a. */
static void
targets_from_result(const struct milestones_query *q, const PGresult *res,
    struct milestones_answer *a)
{
	for (int r = 0; r < PQntuples(res); r++) {
		enum qperiod p;
		long i;
		if (!qperiod_parse(PQgetvalue(res, r, 0), &p) ||
		    p == QPERIOD_HOUR) {
			continue;
		}
		struct milestones_target *t = &a->targets[p - QPERIOD_DAY];
		if (PQgetisnull(res, r, 3)) {
			t->start = date_us(PQgetvalue(res, r, 1));
			t->end = date_us(PQgetvalue(res, r, 2));
			t->active = atol(PQgetvalue(res, r, 4));
		} else if ((i = name_index(q, PQgetvalue(res, r, 3))) >= 0) {
			t->people[i] = atol(PQgetvalue(res, r, 4));
		}
	}
}

static json_t *
rate_or_null(long x, long n)
{
	return n > 0 ? json_real((double)x / (double)n) : json_null();
}

/* The target block of name (the i-th): the plan's numbers, and the last
 * complete target period's rate against them. */
static json_t *
target_json(const json_t *doc, size_t i, const struct milestones_answer *a)
{
	const json_t *t = json_object_get(doc, "target");
	const char *tp = json_string_value(json_object_get(t, "period"));
	double baseline = json_number_value(json_object_get(t, "baseline"));
	double target = json_number_value(json_object_get(t, "target"));
	const char *owner = json_string_value(json_object_get(t, "owner"));
	char from[TIMEUTIL_RFC3339_LEN], to[TIMEUTIL_RFC3339_LEN];
	json_t *rate, *attainment = json_null(), *progress = json_null();
	const struct milestones_target *w;
	const char *pace = NULL;
	enum qperiod p;

	if (t == NULL || tp == NULL || !qperiod_parse(tp, &p) ||
	    p == QPERIOD_HOUR) {
		return json_null();
	}
	w = &a->targets[p - QPERIOD_DAY];
	rate = rate_or_null(w->people[i], w->active);
	if (w->active > 0) {
		double r = (double)w->people[i] / (double)w->active;
		attainment = json_real(target > 0 ? 100 * r / target : 0);
		progress = target != baseline ?
		    json_real(100 * (r - baseline) / (target - baseline)) :
		    json_null();
		pace = r >= target ? "on_track" : "behind";
	}
	date_text(w->start, from);
	date_text(w->end, to);
	return json_pack("{s:f, s:f, s:s, s:s?, s:{s:s, s:s}, s:I, s:I, s:o,"
	    " s:o, s:o, s:s?}",
	    "baseline", baseline, "target", target, "period", tp,
	    "owner", owner, "last_period", "from", from, "to", to,
	    "people", (json_int_t)w->people[i],
	    "active_people", (json_int_t)w->active,
	    "rate", rate, "attainment_pct", attainment,
	    "progress_pct", progress, "pace", pace);
}

static json_t *
milestone_json(const struct app_state *state, const struct milestones_query *q,
    size_t i, const struct milestones_answer *a)
{
	const char *name = q->names[i];
	const struct plan_event *def = plan_find_event(state->plan, name);
	const json_t *doc = event_doc(state->plan, name);
	const struct milestones_counts *c = &a->counts;
	json_t *periods = json_array();
	char start[TIMEUTIL_RFC3339_LEN];

	for (size_t p = 0; p < c->n_periods; p++) {
		size_t cell = i * c->n_periods + p;
		date_text(c->start[p], start);
		json_array_append_new(periods, json_pack("{s:s, s:I, s:I, s:o}",
		    "start", start, "people", (json_int_t)c->people[cell],
		    "events", (json_int_t)c->events[cell],
		    "rate", rate_or_null(c->people[cell], c->active[p])));
	}
	return json_pack("{s:s, s:s, s:s?, s:s?, s:o, s:o}",
	    "name", name, "kind", plan_event_kind_name(def),
	    "phase", plan_event_phase(def),
	    "owner", json_string_value(json_object_get(doc, "owner")),
	    "periods", periods,
	    "target", target_json(doc, i, a));
}

static json_t *
periods_json(const struct milestones_counts *c)
{
	json_t *periods = json_array();
	char start[TIMEUTIL_RFC3339_LEN];

	for (size_t p = 0; p < c->n_periods; p++) {
		date_text(c->start[p], start);
		json_array_append_new(periods, json_pack("{s:s, s:b, s:I}",
		    "start", start, "complete", c->complete[p],
		    "active_people", (json_int_t)c->active[p]));
	}
	return periods;
}

/* The target periods q's events have, into a->wanted. */
static void
wanted_targets(const struct app_state *state, const struct milestones_query *q,
    struct milestones_answer *a)
{
	for (size_t i = 0; i < q->n_names; i++) {
		const char *tp = json_string_value(json_object_get(
		    json_object_get(event_doc(state->plan, q->names[i]),
		    "target"), "period"));
		enum qperiod p;
		if (tp != NULL && qperiod_parse(tp, &p) && p != QPERIOD_HOUR) {
			a->wanted[p - QPERIOD_DAY] = true;
		}
	}
}

/* Both statements in one snapshot, as the answer's counts. */
static bool
count_sql(PGconn *pg, const char *site, const struct milestones_query *q,
    struct milestones_answer *a, struct error *err)
{
	struct pgarray names, tps;
	PGresult *res = NULL, *tres = NULL;
	bool ok = false;

	pgarray_init(&names);
	pgarray_init(&tps);
	for (size_t i = 0; i < q->n_names; i++) {
		pgarray_add_text(&names, q->names[i]);
	}
	for (int k = 0; k < TARGET_PERIODS; k++) {
		if (a->wanted[k]) {
			pgarray_add_text(&tps, intervals[k]);
		}
	}
	const char *p1[] = { site, q->from, q->to, intervals[q->interval],
		pgarray_value(&names), "true" };
	const char *p2[] = { site, pgarray_value(&tps), q->to,
		pgarray_value(&names) };
	if (p1[4] == NULL || p2[1] == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	/* One snapshot: a period's people and its target's agree. */
	if (!api_snapshot_begin(pg, err) ||
	    (res = db_query(pg, periods_sql, 6, p1, err)) == NULL ||
	    (tres = db_query(pg, targets_sql, 4, p2, err)) == NULL) {
		goto done;
	}
	if (!counts_from_result(q, res, &a->counts)) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	targets_from_result(q, tres, a);
	ok = true;
done:
	api_snapshot_end(pg);
	PQclear(res);
	PQclear(tres);
	pgarray_finish(&names);
	pgarray_finish(&tps);
	return ok;
}

/* The same counts from the index, as of now_us. */
static bool
count_index(const struct qindex *ix, const struct milestones_query *q,
    int64_t now_us, struct milestones_answer *a)
{
	if (!milestones_counts_init(&a->counts, (enum qperiod)(q->interval +
	    QPERIOD_DAY), q->n_names, q->from_us, q->to_us, now_us) ||
	    !qmilestones_run(ix, q->names, q->from_us, q->to_us, &a->counts)) {
		return false;
	}
	for (int k = 0; k < TARGET_PERIODS; k++) {
		struct milestones_target *t = &a->targets[k];
		enum qperiod p = (enum qperiod)(k + QPERIOD_DAY);
		if (a->wanted[k]) {
			milestones_target_window(p, q->to_us, now_us, &t->start,
			    &t->end);
			if (!milestones_target_from_counts(&a->counts,
			    (enum qperiod)(q->interval + QPERIOD_DAY), p, t) &&
			    !qmilestones_target(ix, q->names, q->n_names, t)) {
				return false;
			}
		}
	}
	return true;
}

static bool
milestones_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct milestones_query *q = call->data;
	struct query_index *qi = call->app->index;
	struct query_index_read r;
	struct milestones_answer a = { 0 };
	json_t *list = json_array();
	int64_t as_of = timeutil_now_us();
	bool ok = false, from_index = false;

	for (int k = 0; k < TARGET_PERIODS; k++) {
		a.targets[k].people = calloc(q->n_names + 1, sizeof(long));
		if (a.targets[k].people == NULL) {
			error_set(err, ERR_INTERNAL, "out of memory");
			goto done;
		}
	}
	wanted_targets(call->state, q, &a);
	if (!api_engine_read(call, pg, q->engine, NULL, &r, err)) {
		goto done;
	}
	if (r.ix != NULL) {
		from_index = true;
		as_of = r.as_of;
		ok = count_index(r.ix, q, as_of, &a);
		query_index_release(qi, &r);
		if (!ok) {
			error_set(err, ERR_INTERNAL, "out of memory");
			goto done;
		}
	} else if (!count_sql(pg, call->site_id, q, &a, err)) {
		goto done;
	}
	query_index_count_answer(qi, from_index);
	for (size_t i = 0; list != NULL && i < q->n_names; i++) {
		json_array_append_new(list, milestone_json(call->state, q, i, &a));
	}
	call->answer = json_pack("{s:s, s:{s:o, s:o, s:s}, s:o, s:O, s:o, s:s}",
	    "site", call->site_id,
	    "query", "from", api_time_json(q->from_us),
	    "to", api_time_json(q->to_us), "interval", intervals[q->interval],
	    "periods", periods_json(&a.counts), "milestones", list,
	    "as_of", api_time_json(as_of), "engine", from_index ? "index" : "sql");
	ok = call->answer != NULL;
	if (!ok) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
done:
	answer_finish(&a);
	json_decref(list);
	return ok;
}

bool
milestones_count(PGconn *pg, const struct query_index_read *r,
    const char *site, const char *name, const char *interval, int64_t from_us,
    int64_t to_us, struct milestones_period *out, size_t max, size_t *n,
    struct error *err)
{
	char from[TIMEUTIL_RFC3339_LEN], to[TIMEUTIL_RFC3339_LEN];
	struct milestones_counts c;
	struct pgarray names;
	PGresult *res = NULL;
	enum qperiod p;

	*n = 0;
	if (r->ix != NULL && qperiod_parse(interval, &p)) {
		if (!milestones_counts_init(&c, p, 1, from_us, to_us, r->as_of) ||
		    !qmilestones_run(r->ix, &name, from_us, to_us, &c)) {
			milestones_counts_finish(&c);
			error_set(err, ERR_INTERNAL, "out of memory");
			return false;
		}
		/* As the statement: the periods that had any. */
		for (size_t k = 0; k < c.n_periods && *n < max; k++) {
			if (c.events[k] > 0) {
				out[(*n)++] = (struct milestones_period){ c.start[k],
					c.people[k], c.events[k] };
			}
		}
		milestones_counts_finish(&c);
		return true;
	}
	pgarray_init(&names);
	pgarray_add_text(&names, name);
	timeutil_format_rfc3339(from_us, from);
	timeutil_format_rfc3339(to_us, to);
	const char *params[] = { site, from, to, interval,
		pgarray_value(&names), "false" };
	if (params[4] == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
	} else {
		res = db_query(pg, periods_sql, 6, params, err);
	}
	for (int row = 0; res != NULL && row < PQntuples(res) && *n < max;
	    row++) {
		if (PQgetvalue(res, row, 0)[0] == 'e') {
			out[(*n)++] = (struct milestones_period){
				strtoll(PQgetvalue(res, row, 5), NULL, 10),
				atol(PQgetvalue(res, row, 3)),
				atol(PQgetvalue(res, row, 4)) };
		}
	}
	pgarray_finish(&names);
	PQclear(res);
	return res != NULL;
}

bool
milestones_target_rate(PGconn *pg, const struct query_index_read *r,
    const char *site, const char *name, const char *period, int64_t to_us,
    double *rate, long *people, struct error *err)
{
	char to[TIMEUTIL_RFC3339_LEN];
	struct pgarray names, tps;
	PGresult *res = NULL;
	long reached = 0;
	enum qperiod p;

	*rate = 0;
	*people = 0;
	if (r->ix != NULL && qperiod_parse(period, &p)) {
		struct milestones_target t = { 0, 0, 0, &reached };
		milestones_target_window(p, to_us, r->as_of, &t.start, &t.end);
		if (!qmilestones_target(r->ix, &name, 1, &t)) {
			error_set(err, ERR_INTERNAL, "out of memory");
			return false;
		}
		*people = t.active;
		*rate = *people > 0 ? (double)reached / (double)*people : 0;
		return true;
	}
	pgarray_init(&names);
	pgarray_init(&tps);
	pgarray_add_text(&names, name);
	pgarray_add_text(&tps, period);
	timeutil_format_rfc3339(to_us, to);
	const char *params[] = { site, pgarray_value(&tps), to,
		pgarray_value(&names) };
	if (params[1] == NULL || params[3] == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
	} else {
		res = db_query(pg, targets_sql, 4, params, err);
	}
	/* Rows: everyone with any event (name NULL), and the event's. */
	for (int row = 0; res != NULL && row < PQntuples(res); row++) {
		if (PQgetisnull(res, row, 3)) {
			*people = atol(PQgetvalue(res, row, 4));
		} else {
			reached = atol(PQgetvalue(res, row, 4));
		}
	}
	*rate = *people > 0 ? (double)reached / (double)*people : 0;
	pgarray_finish(&names);
	pgarray_finish(&tps);
	PQclear(res);
	return res != NULL;
}

void
api_milestones(struct request *req, struct app *app)
{
	api_query(req, app, sizeof(struct milestones_query),
	    milestones_query_free, read_query, milestones_run);
}
