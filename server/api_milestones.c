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
#include "common/timeutil.h"
#include "server/api.h"
#include "server/db.h"
#include "server/pgarray.h"

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
	    err)) {
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

/* The row of res whose column c0 is v0 and whose column c1 is v1 (NULL:
 * SQL NULL); -1 if none. */
static int
find_row(const PGresult *res, int c0, const char *v0, int c1,
    const char *v1)
{
	for (int r = 0; r < PQntuples(res); r++) {
		if (strcmp(PQgetvalue(res, r, c0), v0) != 0) {
			continue;
		}
		if (v1 == NULL ? PQgetisnull(res, r, c1) :
		    !PQgetisnull(res, r, c1) &&
		    strcmp(PQgetvalue(res, r, c1), v1) == 0) {
			return r;
		}
	}
	return -1;
}

/* The periods statement's rows laid out for lookups (indexes of rows of
 * res, -1 for none): each period's 'p' and 'a' rows, and each event's 'e'
 * row of each period, at [event * n_periods + period]. */
struct period_rows {
	int n_periods;
	int *period, *active, *event;
};

static void
period_rows_free(struct period_rows *pr)
{
	free(pr->period);
	free(pr->active);
	free(pr->event);
}

/* The period whose start is start: the 'p' rows come sorted by it. */
static int
period_index(const struct period_rows *pr, const PGresult *res,
    const char *start)
{
	int lo = 0, hi = pr->n_periods - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		int c = strcmp(PQgetvalue(res, pr->period[mid], 2), start);
		if (c == 0) {
			return mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return -1;
}

static bool
period_rows_build(struct period_rows *pr, const PGresult *res,
    const struct milestones_query *q)
{
	int rows = PQntuples(res), n = 0;

	for (int r = 0; r < rows; r++) {
		n += PQgetvalue(res, r, 0)[0] == 'p';
	}
	pr->n_periods = n;
	pr->period = calloc((size_t)n + 1, sizeof(int));
	pr->active = calloc((size_t)n + 1, sizeof(int));
	pr->event = calloc(q->n_names * (size_t)n + 1, sizeof(int));
	if (pr->period == NULL || pr->active == NULL || pr->event == NULL) {
		return false;
	}
	for (int i = 0; i < n; i++) {
		pr->active[i] = -1;
	}
	for (size_t i = 0; i < q->n_names * (size_t)n; i++) {
		pr->event[i] = -1;
	}
	n = 0;
	for (int r = 0; r < rows; r++) {
		if (PQgetvalue(res, r, 0)[0] == 'p') {
			pr->period[n++] = r;
		}
	}
	for (int r = 0; r < rows; r++) {
		char kind = PQgetvalue(res, r, 0)[0];
		int p = kind == 'p' ? -1 :
		    period_index(pr, res, PQgetvalue(res, r, 2));
		if (p < 0) {
			continue;
		}
		if (kind == 'a') {
			pr->active[p] = r;
			continue;
		}
		for (size_t i = 0; i < q->n_names; i++) {
			if (strcmp(q->names[i], PQgetvalue(res, r, 1)) == 0) {
				pr->event[i * (size_t)pr->n_periods + (size_t)p] = r;
			}
		}
	}
	return true;
}

static long
count_at(const PGresult *res, int row, int col)
{
	return row < 0 ? 0 : atol(PQgetvalue(res, row, col));
}

static json_t *
rate_or_null(long x, long n)
{
	return n > 0 ? json_real((double)x / (double)n) : json_null();
}

/* The target block of name: the plan's numbers, and the last complete
 * target period's rate against them. */
static json_t *
target_json(const json_t *doc, const char *name, const PGresult *tres)
{
	const json_t *t = json_object_get(doc, "target");
	const char *tp = json_string_value(json_object_get(t, "period"));
	double baseline = json_number_value(json_object_get(t, "baseline"));
	double target = json_number_value(json_object_get(t, "target"));
	const char *owner = json_string_value(json_object_get(t, "owner"));
	int all, mine;
	long active, people;
	json_t *rate, *attainment = json_null(), *progress = json_null();
	const char *pace = NULL;

	if (t == NULL || tp == NULL) {
		return json_null();
	}
	all = find_row(tres, 0, tp, 3, NULL);
	mine = find_row(tres, 0, tp, 3, name);
	active = count_at(tres, all, 4);
	people = count_at(tres, mine, 4);
	rate = rate_or_null(people, active);
	if (active > 0) {
		double r = (double)people / (double)active;
		attainment = json_real(target > 0 ? 100 * r / target : 0);
		progress = target != baseline ?
		    json_real(100 * (r - baseline) / (target - baseline)) :
		    json_null();
		pace = r >= target ? "on_track" : "behind";
	}
	return json_pack("{s:f, s:f, s:s, s:s?, s:{s:s?, s:s?}, s:I, s:I, s:o,"
	    " s:o, s:o, s:s?}",
	    "baseline", baseline, "target", target, "period", tp,
	    "owner", owner,
	    "last_period", "from", all >= 0 ? PQgetvalue(tres, all, 1) : NULL,
	    "to", all >= 0 ? PQgetvalue(tres, all, 2) : NULL,
	    "people", (json_int_t)people, "active_people", (json_int_t)active,
	    "rate", rate, "attainment_pct", attainment,
	    "progress_pct", progress, "pace", pace);
}

static json_t *
milestone_json(const struct app_state *state, const struct milestones_query *q,
    size_t i, const PGresult *res, const struct period_rows *pr,
    const PGresult *tres)
{
	const char *name = q->names[i];
	const struct plan_event *def = plan_find_event(state->plan, name);
	const json_t *doc = event_doc(state->plan, name);
	json_t *periods = json_array();

	for (int p = 0; p < pr->n_periods; p++) {
		int a = pr->active[p];
		int e = pr->event[i * (size_t)pr->n_periods + (size_t)p];
		json_array_append_new(periods, json_pack("{s:s, s:I, s:I, s:o}",
		    "start", PQgetvalue(res, pr->period[p], 2),
		    "people", (json_int_t)count_at(res, e, 3),
		    "events", (json_int_t)count_at(res, e, 4),
		    "rate", rate_or_null(count_at(res, e, 3),
		    count_at(res, a, 3))));
	}
	return json_pack("{s:s, s:s, s:s?, s:s?, s:o, s:o}",
	    "name", name, "kind", plan_event_kind_name(def),
	    "phase", plan_event_phase(def),
	    "owner", json_string_value(json_object_get(doc, "owner")),
	    "periods", periods,
	    "target", target_json(doc, name, tres));
}

static json_t *
periods_json(const PGresult *res, const struct period_rows *pr)
{
	json_t *periods = json_array();

	for (int p = 0; p < pr->n_periods; p++) {
		int r = pr->period[p];
		json_array_append_new(periods, json_pack("{s:s, s:b, s:I}",
		    "start", PQgetvalue(res, r, 2),
		    "complete", PQgetvalue(res, r, 3)[0] == '1',
		    "active_people", (json_int_t)count_at(res, pr->active[p], 3)));
	}
	return periods;
}

static bool
milestones_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct milestones_query *q = call->data;
	struct pgarray names, tps;
	PGresult *res = NULL, *tres = NULL;
	struct period_rows pr = { 0 };
	json_t *list = json_array();
	int64_t as_of = timeutil_now_us();
	bool seen[3] = { false };
	bool ok = false;

	pgarray_init(&names);
	pgarray_init(&tps);
	for (size_t i = 0; i < q->n_names; i++) {
		const char *tp = json_string_value(json_object_get(
		    json_object_get(event_doc(call->state->plan, q->names[i]),
		    "target"), "period"));
		pgarray_add_text(&names, q->names[i]);
		for (int k = 0; tp != NULL && k < 3; k++) {
			if (!seen[k] && strcmp(tp, intervals[k]) == 0) {
				seen[k] = true;
				pgarray_add_text(&tps, tp);
			}
		}
	}
	const char *p1[] = { call->site_id, q->from, q->to,
		intervals[q->interval], pgarray_value(&names), "true" };
	const char *p2[] = { call->site_id, pgarray_value(&tps), q->to,
		pgarray_value(&names) };
	if (p1[4] == NULL || p2[1] == NULL || list == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	/* One snapshot: a period's people and its target's agree. */
	if (!api_snapshot_begin(pg, err)) {
		goto done;
	}
	if ((res = db_query(pg, periods_sql, 6, p1, err)) == NULL ||
	    (tres = db_query(pg, targets_sql, 4, p2, err)) == NULL) {
		goto done;
	}
	if (!period_rows_build(&pr, res, q)) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < q->n_names; i++) {
		json_array_append_new(list, milestone_json(call->state, q, i,
		    res, &pr, tres));
	}
	call->answer = json_pack("{s:s, s:{s:o, s:o, s:s}, s:o, s:O, s:o}",
	    "site", call->site_id,
	    "query", "from", api_time_json(q->from_us),
	    "to", api_time_json(q->to_us), "interval", intervals[q->interval],
	    "periods", periods_json(res, &pr), "milestones", list,
	    "as_of", api_time_json(as_of));
	ok = call->answer != NULL;
	if (!ok) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
done:
	api_snapshot_end(pg);
	period_rows_free(&pr);
	json_decref(list);
	PQclear(res);
	PQclear(tres);
	pgarray_finish(&names);
	pgarray_finish(&tps);
	return ok;
}

bool
milestones_count(PGconn *pg, const char *site, const char *name,
    const char *interval, int64_t from_us, int64_t to_us,
    struct milestones_period *out, size_t max, size_t *n,
    struct error *err)
{
	char from[TIMEUTIL_RFC3339_LEN], to[TIMEUTIL_RFC3339_LEN];
	struct pgarray names;
	PGresult *res = NULL;

	*n = 0;
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
	for (int r = 0; res != NULL && r < PQntuples(res) && *n < max; r++) {
		if (PQgetvalue(res, r, 0)[0] == 'e') {
			out[(*n)++] = (struct milestones_period){
				strtoll(PQgetvalue(res, r, 5), NULL, 10),
				atol(PQgetvalue(res, r, 3)),
				atol(PQgetvalue(res, r, 4)) };
		}
	}
	pgarray_finish(&names);
	PQclear(res);
	return res != NULL;
}

bool
milestones_target_rate(PGconn *pg, const char *site, const char *name,
    const char *period, int64_t to_us, double *rate, long *people,
    struct error *err)
{
	char to[TIMEUTIL_RFC3339_LEN];
	struct pgarray names, tps;
	PGresult *res = NULL;
	long reached = 0;

	*rate = 0;
	*people = 0;
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
	for (int r = 0; res != NULL && r < PQntuples(res); r++) {
		if (PQgetisnull(res, r, 3)) {
			*people = atol(PQgetvalue(res, r, 4));
		} else {
			reached = atol(PQgetvalue(res, r, 4));
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
