/* api_attribution.c - GET /api/v1/attribution: which channels (or
 * campaigns, sources, landing pages) earn the conversions, by every
 * attribution model side by side on the same conversions.
 *
 * One statement reads the conversions with their touchpoints (the
 * converting person's visits within the lookback) and, for the
 * data-driven model, the transitions between the visits of the people who
 * did not convert; common/attribution.c shares the credit out. docs/api.md
 * defines the models and the answer. */
#include "server/api_attribution.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/attribution.h"
#include "common/channel.h"
#include "common/qattribution.h"
#include "common/strbuf.h"
#include "common/timeutil.h"
#include "server/api.h"
#include "server/db.h"
#include "server/pgarray.h"
#include "server/query_index.h"

#define DAY_US (86400 * TIMEUTIL_US_PER_SEC)
#define RANGE_DEFAULT_US (30 * DAY_US)
#define LOOKBACK_MAX_US (180 * DAY_US)
#define TOP_PATHS 20

static const char *const dim_names[QATTR_DIM_COUNT] = {
	"channel", "utm_source", "utm_medium", "utm_campaign", "source_medium",
	"landing_path",
};

/* Over the visit s; a visit that says nothing is "(none)". Source and
 * medium as GA spells them: the campaign's, else the referrer's
 * ("organic" for a search engine), else "(direct) / (none)". */
static const char *const dim_sql[QATTR_DIM_COUNT] = {
	"COALESCE(s.channel, '(none)')",
	"COALESCE(s.utm_source, '(none)')",
	"COALESCE(s.utm_medium, '(none)')",
	"COALESCE(s.utm_campaign, '(none)')",
	"COALESCE(s.utm_source, s.referrer_host, '(direct)') || ' / ' ||"
	" COALESCE(s.utm_medium, CASE WHEN s.channel = 'Organic Search'"
	" THEN 'organic' WHEN s.referrer_host IS NOT NULL THEN 'referral'"
	" ELSE '(none)' END)",
	"COALESCE(s.landing_path, '(none)')",
};

struct attribution_query {
	char conversion[EVENT_NAME_MAX + 1];
	int64_t from_us, to_us, lookback_us, half_life_us;
	int64_t channel_lookback_us[CHANNEL_COUNT_];	/* 0: the default */
	char lookback_text[API_WINDOW_TEXT], half_life_text[API_WINDOW_TEXT];
	char channel_lookback_text[CHANNEL_COUNT_][API_WINDOW_TEXT];
	char from[TIMEUTIL_RFC3339_LEN], to[TIMEUTIL_RFC3339_LEN];
	int dim;
	int first;			/* conversions=first */
	unsigned models;		/* bit per enum attr_model */
	enum attr_model order[ATTR_MODEL_COUNT];	/* as asked */
	size_t n_models;
	long position[3];		/* first, middle, last (percent) */
	enum api_engine engine;
};

/* What read_channel_lookback fills, through http_request_query_each. */
struct lookback_walk {
	struct request *req;
	struct attribution_query *q;
	struct error *err;
};

/* "Paid Search" is lookback.paid_search. */
static int
channel_of_key(const char *key)
{
	char want[64];

	for (int ch = 0; ch < CHANNEL_COUNT_; ch++) {
		size_t i = 0;
		for (const char *c = channel_name(ch); *c != '\0' &&
		    i + 1 < sizeof(want); c++) {
			want[i++] = *c == ' ' ? '_' : (char)tolower((unsigned char)*c);
		}
		want[i] = '\0';
		if (strcmp(want, key) == 0) {
			return ch;
		}
	}
	return -1;
}

static bool
read_channel_lookback(void *ctx, const char *name, const char *value)
{
	static const char prefix[] = "lookback.";
	struct lookback_walk *w = ctx;
	struct attribution_query *q = w->q;
	int ch;

	if (strncmp(name, prefix, sizeof(prefix) - 1) != 0) {
		return true;
	}
	/* The name is not echoed: it may be any bytes. */
	ch = channel_of_key(name + sizeof(prefix) - 1);
	if (ch < 0) {
		error_set(w->err, ERR_INVALID_PARAMETER, "a lookback.<channel> "
		    "parameter names no channel (lookback.paid_search, "
		    "lookback.email, ...)");
		return false;
	}
	if (!timeutil_parse_duration(value, LOOKBACK_MAX_US,
	    &q->channel_lookback_us[ch])) {
		error_set(w->err, ERR_INVALID_PARAMETER, "the lookback of %s must "
		    "be a number of days or hours (90d, 12h), at most 180d",
		    channel_name(ch));
		return false;
	}
	snprintf(q->channel_lookback_text[ch], API_WINDOW_TEXT, "%s", value);
	http_request_query_taken(w->req, name);
	return true;
}

static bool
read_models(struct request *req, struct attribution_query *q,
    struct error *err)
{
	const char *v = http_request_query(req, "models");

	if (v == NULL || v[0] == '\0' || strcmp(v, "all") == 0) {
		for (int m = 0; m < ATTR_MODEL_COUNT; m++) {
			q->order[q->n_models++] = m;
		}
		q->models = (1u << ATTR_MODEL_COUNT) - 1;
		return true;
	}
	for (const char *p = v;;) {
		size_t len = strcspn(p, ",");
		int m = attr_model_from_name(p, len);

		if (m < 0) {
			error_set(err, ERR_INVALID_PARAMETER, "models must be "
			    "all or a list of first_touch, last_touch, "
			    "last_non_direct, linear, time_decay, position_based, "
			    "data_driven");
			return false;
		}
		if ((q->models & (1u << m)) == 0) {
			q->models |= 1u << m;
			q->order[q->n_models++] = m;
		}
		if (p[len] == '\0') {
			return true;
		}
		p += len + 1;
	}
}

static bool
read_position(struct request *req, struct attribution_query *q,
    struct error *err)
{
	const char *v = http_request_query(req, "position");
	char end;

	q->position[0] = 40;
	q->position[1] = 20;
	q->position[2] = 40;
	if (v == NULL || v[0] == '\0') {
		return true;
	}
	/* At most "100,100,100": no number sscanf could overflow. */
	if (strlen(v) > 11 || sscanf(v, "%ld,%ld,%ld%c", &q->position[0],
	    &q->position[1], &q->position[2], &end) != 3 ||
	    q->position[0] < 0 || q->position[1] < 0 || q->position[2] < 0 ||
	    q->position[0] + q->position[1] + q->position[2] != 100 ||
	    q->position[0] + q->position[2] == 0) {
		error_set(err, ERR_INVALID_PARAMETER, "position must be the first, "
		    "middle and last touches' percentages, summing to 100, e.g. "
		    "40,20,40");
		return false;
	}
	return true;
}

static bool
read_query(struct request *req, const struct app_state *state, void *data,
    struct error *err)
{
	static const char *const conversions[] = { "all", "first" };
	struct attribution_query *q = data;
	struct lookback_walk walk = { req, q, err };

	if (!api_param_conversion(req, state->plan, q->conversion, err) ||
	    !api_param_range(req, RANGE_DEFAULT_US, &q->from_us, &q->to_us,
	    err) ||
	    !api_param_duration(req, "lookback", "30d", LOOKBACK_MAX_US,
	    &q->lookback_us, q->lookback_text, err) ||
	    !api_param_duration(req, "half_life", "7d", LOOKBACK_MAX_US,
	    &q->half_life_us, q->half_life_text, err) ||
	    !api_param_choice(req, "dimension", dim_names, QATTR_DIM_COUNT,
	    QATTR_DIM_CHANNEL, &q->dim, err) ||
	    !api_param_choice(req, "conversions", conversions, 2, 0, &q->first,
	    err) ||
	    !read_models(req, q, err) || !read_position(req, q, err) ||
	    !api_param_engine(req, &q->engine, err) ||
	    !http_request_query_each(req, read_channel_lookback, &walk)) {
		return false;
	}
	if (q->first && plan_find_event(state->plan, q->conversion) == NULL) {
		/* The first conversion of each person comes from
		 * person_milestones, which ingest keeps for planned events. */
		error_set(err, ERR_INVALID_PARAMETER, "conversions=first needs a "
		    "conversion event of the tracking plan");
		return false;
	}
	timeutil_format_rfc3339(q->from_us, q->from);
	timeutil_format_rfc3339(q->to_us, q->to);
	return true;
}

/* ------------------------------------------------------------ SQL */

/* Three statements in one snapshot. The join of conversions to visits
 * (each conversion's lookback, per channel) is done here, in C: asked of
 * PostgreSQL it was a nested loop of one index lookup per person, or a
 * hash of every visit. */

/* The conversions: $1 site, $2 conversion, $3 from, $4 to. Rows (enum
 * conv_col): kind 1, a conversion; kind 2, a person merged into a
 * converting one; kind 3 (conversions=first with data_driven), a person
 * who converted in the range, whether counted or not. */
static void
build_conversions_sql(const struct attribution_query *q, struct strbuf *sb)
{
	strbuf_append_str(sb,
	    "WITH conv0 AS (SELECT e.person, e.ts, e.event_id, e.props"
	    " FROM events_people e WHERE e.site_id = $1 AND e.name = $2"
	    " AND e.ts >= $3 AND e.ts < $4 AND NOT e.bot"
	    " AND e.person_id IS NOT NULL),");
	strbuf_append_str(sb, q->first ?
	    " conv AS (SELECT DISTINCT ON (c.person) c.* FROM conv0 c JOIN"
	    " (SELECT COALESCE(m.into_person, f.person_id) AS person,"
	    " min(f.first_at) AS first_at FROM person_milestones f"
	    " LEFT JOIN person_merges m ON m.site_id = f.site_id"
	    " AND m.from_person = f.person_id WHERE f.site_id = $1"
	    " AND f.name = $2 GROUP BY 1) f ON f.person = c.person"
	    " AND f.first_at = c.ts ORDER BY c.person, c.ts, c.event_id)" :
	    " conv AS (SELECT * FROM conv0)");
	strbuf_append_str(sb,
	    " SELECT 1, c.event_id::text,"
	    " (extract(epoch FROM c.ts) * 1000000)::bigint, c.person, "
	    ATTRIBUTION_REVENUE_SQL("c.props") ", c.props->>'currency',"
	    " NULL::bigint FROM conv c"
	    " UNION ALL SELECT 2, NULL, NULL, m.into_person, NULL, NULL,"
	    " m.from_person FROM person_merges m WHERE m.site_id = $1"
	    " AND m.into_person IN (SELECT person FROM conv)");
	if (q->first && (q->models & (1u << ATTR_DATA_DRIVEN))) {
		strbuf_append_str(sb, " UNION ALL SELECT DISTINCT 3, NULL::text,"
		    " NULL::bigint, person, NULL::float8, NULL::text, NULL::bigint"
		    " FROM conv0");
	}
}

enum conv_col {
	CONV_KIND, CONV_EVENT_ID, CONV_US, CONV_PERSON, CONV_REVENUE,
	CONV_CURRENCY, CONV_RAW,
};

/* The visits of the converting people: $1 site, $2 their ids (and those
 * merged into them), $3 from, $4 to, $5 the longest lookback in seconds.
 * The ids are a constant of the plan, which PostgreSQL looks up in a
 * hash table. Columns: enum visit_col. */
static void
build_visits_sql(const struct attribution_query *q, struct strbuf *sb)
{
	strbuf_appendf(sb,
	    "SELECT s.person_id, s.session_id,"
	    " (extract(epoch FROM s.started_at) * 1000000)::bigint, s.channel,"
	    " %s FROM sessions s WHERE s.site_id = $1 AND NOT s.bot"
	    " AND s.person_id = ANY ($2::bigint[])"
	    " AND s.started_at >= $3::timestamptz - $5::bigint * interval '1 second'"
	    " AND s.started_at <= $4", dim_sql[q->dim]);
}

enum visit_col {
	VISIT_PERSON, VISIT_SESSION, VISIT_US, VISIT_CHANNEL, VISIT_VALUE,
};

/* For the data-driven model, the transitions between the visits in the
 * range of everyone who did not convert in it: $1 site, $2 from, $3 to,
 * $4 the people who did (an anti-join on unnest, whose size the planner
 * knows: "<> ALL" was estimated at one row left, and counted by sorting).
 * Rows: to a value (v) from a value (prev; NULL: their first visit), last
 * true when nothing followed, how many. Visits starting at the same time
 * go by value in byte order, whatever the database's collation, as the
 * query index orders them. */
static void
build_transitions_sql(const struct attribution_query *q, struct strbuf *sb)
{
	strbuf_appendf(sb,
	    "SELECT prev, v, last, count(*) FROM (SELECT v,"
	    " lag(v) OVER w AS prev, lead(true) OVER w IS NULL AS last"
	    " FROM (SELECT COALESCE(m.into_person, s.person_id) AS person,"
	    " s.started_at, %s AS v FROM sessions s LEFT JOIN person_merges m"
	    " ON m.site_id = s.site_id AND m.from_person = s.person_id"
	    " WHERE s.site_id = $1 AND NOT s.bot AND s.started_at >= $2"
	    " AND s.started_at < $3) visit WHERE NOT EXISTS (SELECT 1"
	    " FROM unnest($4::bigint[]) c(person) WHERE c.person = visit.person)"
	    " WINDOW w AS (PARTITION BY person ORDER BY started_at, v COLLATE \"C\")) o"
	    " GROUP BY 1, 2, 3", dim_sql[q->dim]);
}

enum transition_col { TR_PREV, TR_VALUE, TR_LAST, TR_COUNT };

/* ------------------------------------------------------------ reading */

struct merge {
	int64_t raw, person;
};

/* What the statements answered, and what attribution reads of it. */
struct reading {
	PGresult *convs_res, *visits_res, *transitions_res;	/* owned */
	struct merge *merges;
	size_t n_merges;
	int64_t *converters;		/* kind 3 rows; NULL: the convs' */
	size_t n_converters;
	struct attr_data d;
	uint32_t none;			/* QATTR_NO_TOUCH's value */
	struct attribution *attr;
};

static void
reading_finish(struct reading *r)
{
	free(r->merges);
	free(r->converters);
	attr_data_finish(&r->d);
	attr_free(r->attr);
	PQclear(r->convs_res);
	PQclear(r->visits_res);
	PQclear(r->transitions_res);
}

static int64_t
cell_int(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int
compare_int64(const void *pa, const void *pb)
{
	int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;

	return a < b ? -1 : a > b;
}

static int
compare_merges(const void *pa, const void *pb)
{
	return compare_int64(&((const struct merge *)pa)->raw,
	    &((const struct merge *)pb)->raw);
}

static bool
read_conversions(struct reading *r)
{
	const PGresult *res = r->convs_res;
	size_t rows = (size_t)PQntuples(res);

	r->merges = malloc((rows > 0 ? rows : 1) * sizeof(*r->merges));
	r->converters = malloc((rows > 0 ? rows : 1) * sizeof(*r->converters));
	if (r->merges == NULL || r->converters == NULL) {
		return false;
	}
	for (int row = 0; row < (int)rows; row++) {
		int64_t person = cell_int(res, row, CONV_PERSON);
		struct attr_conv c = { person, 0, "", 0 };

		switch (cell_int(res, row, CONV_KIND)) {
		case 1:
			c.revenue = PQgetisnull(res, row, CONV_REVENUE) ? 0 :
			    strtod(PQgetvalue(res, row, CONV_REVENUE), NULL);
			c.revenue = isfinite(c.revenue) ? c.revenue : 0;
			c.ts_us = cell_int(res, row, CONV_US);
			snprintf(c.event_id, sizeof(c.event_id), "%s",
			    PQgetvalue(res, row, CONV_EVENT_ID));
			if (!attr_data_add_conv(&r->d, &c) ||
			    (!PQgetisnull(res, row, CONV_CURRENCY) &&
			    !attr_data_currency(&r->d, PQgetvalue(res, row,
			    CONV_CURRENCY)))) {
				return false;
			}
			break;
		case 2:
			r->merges[r->n_merges++] = (struct merge){
				cell_int(res, row, CONV_RAW), person };
			break;
		default:
			r->converters[r->n_converters++] = person;
		}
	}
	if (r->n_converters == 0) {
		for (size_t i = 0; i < r->d.n_convs; i++) {
			r->converters[r->n_converters++] = r->d.convs[i].person;
		}
	}
	qsort(r->merges, r->n_merges, sizeof(*r->merges), compare_merges);
	return true;
}

/* The ids whose visits count: the converting people and those merged
 * into them, each once, as a PostgreSQL array. */
static const char *
person_ids(const struct reading *r, struct pgarray *out)
{
	size_t n = r->d.n_convs + r->n_merges, k = 0;
	int64_t *ids = malloc((n > 0 ? n : 1) * sizeof(*ids));

	if (ids == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < r->d.n_convs; i++) {
		ids[k++] = r->d.convs[i].person;
	}
	for (size_t i = 0; i < r->n_merges; i++) {
		ids[k++] = r->merges[i].raw;
	}
	qsort(ids, k, sizeof(*ids), compare_int64);
	for (size_t i = 0; i < k; i++) {
		if (i == 0 || ids[i] != ids[i - 1]) {
			pgarray_add_int(out, ids[i]);
		}
	}
	free(ids);
	return pgarray_value(out);
}

static const char *
converter_ids(const struct reading *r, struct pgarray *out)
{
	for (size_t i = 0; i < r->n_converters; i++) {
		pgarray_add_int(out, r->converters[i]);
	}
	return pgarray_value(out);
}

/* The visits, as the person each belongs to now; then the transitions. */
static bool
read_visits(struct reading *r)
{
	const PGresult *vres = r->visits_res, *tres = r->transitions_res;

	for (int row = 0; row < PQntuples(vres); row++) {
		struct merge key = { cell_int(vres, row, VISIT_PERSON), 0 };
		const struct merge *m = bsearch(&key, r->merges, r->n_merges,
		    sizeof(*r->merges), compare_merges);
		struct attr_visit v = {
			m != NULL ? m->person : key.raw,
			cell_int(vres, row, VISIT_US),
			PQgetvalue(vres, row, VISIT_SESSION), 0,
			channel_from_name(PQgetvalue(vres, row, VISIT_CHANNEL)),
		};
		if (!attr_data_value(&r->d, PQgetvalue(vres, row, VISIT_VALUE),
		    &v.value) || !attr_data_add_visit(&r->d, &v)) {
			return false;
		}
	}
	for (int row = 0; tres != NULL && row < PQntuples(tres); row++) {
		struct attr_step st = { ATTR_START, 0,
			*PQgetvalue(tres, row, TR_LAST) == 't',
			(double)cell_int(tres, row, TR_COUNT) };
		if (!attr_data_value(&r->d, PQgetvalue(tres, row, TR_VALUE),
		    &st.to) || (!PQgetisnull(tres, row, TR_PREV) &&
		    !attr_data_value(&r->d, PQgetvalue(tres, row, TR_PREV),
		    &st.from)) || !attr_data_add_step(&r->d, &st)) {
			return false;
		}
	}
	return true;
}

static int64_t
lookback_of(const struct attribution_query *q, int channel)
{
	return channel >= 0 && q->channel_lookback_us[channel] > 0 ?
	    q->channel_lookback_us[channel] : q->lookback_us;
}

/* Each conversion with the visits of its person that started within the
 * lookback (of the visit's channel) before it. */
static bool
add_conversions(const struct attribution_query *q, struct reading *r)
{
	const struct attr_data *d = &r->d;
	struct attr_touch *touches = malloc((d->n_visits > 0 ? d->n_visits :
	    1) * sizeof(*touches));
	size_t v0 = 0;
	bool ok = touches != NULL;

	for (size_t i = 0; ok && i < d->n_convs; i++) {
		const struct attr_conv *c = &d->convs[i];
		size_t n = 0;

		while (v0 < d->n_visits && d->visits[v0].person < c->person) {
			v0++;
		}
		for (size_t j = v0; j < d->n_visits &&
		    d->visits[j].person == c->person &&
		    d->visits[j].ts_us <= c->ts_us; j++) {
			const struct attr_visit *v = &d->visits[j];

			if (v->ts_us >= c->ts_us - lookback_of(q, v->channel)) {
				touches[n++] = (struct attr_touch){
					.ts_us = v->ts_us,
					.value = v->value,
					.channel = (uint16_t)(v->channel >= 0 ?
					    v->channel : CHANNEL_UNASSIGNED),
					.direct = v->channel == CHANNEL_DIRECT,
				};
			}
		}
		ok = attr_add_conversion(r->attr, c->ts_us, c->revenue, touches,
		    n);
	}
	free(touches);
	return ok;
}

static bool
add_transitions(struct reading *r)
{
	for (size_t i = 0; i < r->d.n_steps; i++) {
		const struct attr_step *st = &r->d.steps[i];
		if (!attr_add_transitions(r->attr, st->from, st->to, st->count) ||
		    (st->last && !attr_add_transitions(r->attr, st->to, ATTR_LOST,
		    st->count))) {
			return false;
		}
	}
	return true;
}

static json_t *
value_json(const struct attribution_query *q, const struct reading *r,
    uint32_t v, bool *credited)
{
	json_t *o = json_pack("{s:s}", "value", r->d.names[v]);

	*credited = false;
	for (size_t i = 0; o != NULL && i < q->n_models; i++) {
		double revenue, conv = attr_credit(r->attr, q->order[i], v,
		    &revenue);
		json_t *m = json_pack("{s:f, s:f}", "conversions", conv,
		    "revenue", revenue);

		*credited = *credited || conv != 0;
		if (m != NULL && q->order[i] == ATTR_DATA_DRIVEN) {
			json_object_set_new(m, "removal_effect",
			    json_real(attr_removal_effect(r->attr, v)));
		}
		if (m == NULL ||
		    json_object_set_new(o, attr_model_name(q->order[i]), m) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* A value's row of the answer, sorted by the first model asked for: most
 * conversions first, then by name. */
struct ranked_value {
	double key;
	const char *name;
	json_t *row;
};

static int
compare_values(const void *pa, const void *pb)
{
	const struct ranked_value *a = pa, *b = pb;

	if (a->key != b->key) {
		return a->key > b->key ? -1 : 1;
	}
	return strcmp(a->name, b->name);
}

static json_t *
values_json(const struct attribution_query *q, const struct reading *r)
{
	struct ranked_value *list = calloc(r->d.n_values > 0 ? r->d.n_values :
	    1, sizeof(*list));
	json_t *out = json_array();
	size_t n = 0;

	if (list == NULL || out == NULL) {
		goto fail;
	}
	for (uint32_t v = 0; v < r->d.n_values; v++) {
		double revenue;
		bool credited;
		json_t *row = value_json(q, r, v, &credited);

		if (row == NULL) {
			goto fail;
		}
		if (!credited) {
			json_decref(row);
			continue;
		}
		list[n++] = (struct ranked_value){
			attr_credit(r->attr, q->order[0], v, &revenue),
			r->d.names[v], row };
	}
	qsort(list, n, sizeof(*list), compare_values);
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(out, list[i].row);
		list[i].row = NULL;
	}
	free(list);
	return out;
fail:
	for (size_t i = 0; list != NULL && i < n; i++) {
		json_decref(list[i].row);
	}
	free(list);
	json_decref(out);
	return NULL;
}

static json_t *
paths_json(const struct reading *r, const struct attr_facts *f)
{
	struct attr_path top[TOP_PATHS];
	struct strbuf text;
	bool ok;
	size_t n = attr_top_paths(r->attr, top, TOP_PATHS, &ok);
	json_t *list = json_array();

	strbuf_init(&text);
	for (size_t i = 0; ok && list != NULL && i < n; i++) {
		strbuf_reset(&text);
		strbuf_append_str(&text, top[i].n == 0 ? QATTR_NO_TOUCH : "");
		for (size_t j = 0; j < top[i].n; j++) {
			strbuf_appendf(&text, "%s%s", j > 0 ? " > " : "",
			    channel_name(top[i].touches[j].channel));
		}
		ok = !strbuf_failed(&text);
		json_array_append_new(list, json_pack("{s:s, s:I}", "path",
		    ok ? text.data : "", "conversions",
		    (json_int_t)top[i].conversions));
	}
	strbuf_finish(&text);
	if (!ok) {
		json_decref(list);
		return NULL;
	}
	return json_pack("{s:{s:o, s:o}, s:{s:o, s:o}, s:o}",
	    "touches", "mean", api_number_json(f->touches_mean),
	    "median", api_number_json(f->touches_median),
	    "seconds_to_conversion", "mean", api_number_json(f->seconds_mean),
	    "median", api_number_json(f->seconds_median),
	    "top", list);
}

static json_t *
query_json(const struct attribution_query *q)
{
	json_t *models = json_array(), *by_channel = json_object();

	for (size_t i = 0; i < q->n_models; i++) {
		json_array_append_new(models, json_string(attr_model_name(
		    q->order[i])));
	}
	for (int ch = 0; ch < CHANNEL_COUNT_; ch++) {
		if (q->channel_lookback_us[ch] > 0) {
			json_object_set_new(by_channel, channel_name(ch),
			    json_string(q->channel_lookback_text[ch]));
		}
	}
	return json_pack("{s:s, s:o, s:o, s:s, s:o, s:s, s:o, s:s, s:s,"
	    " s:[I, I, I]}",
	    "conversion", q->conversion,
	    "from", api_time_json(q->from_us), "to", api_time_json(q->to_us),
	    "lookback", q->lookback_text, "lookback_by_channel", by_channel,
	    "dimension", dim_names[q->dim], "models", models,
	    "conversions", q->first ? "first" : "all",
	    "half_life", q->half_life_text,
	    "position", (json_int_t)q->position[0], (json_int_t)q->position[1],
	    (json_int_t)q->position[2]);
}

static json_t *
revenue_json(const struct reading *r, double total)
{
	const char *currencies[QATTR_CURRENCIES_MAX];
	bool more;
	size_t n = attr_data_currencies(&r->d, currencies, &more);
	json_t *list = json_array();

	for (size_t i = 0; i < n; i++) {
		json_array_append_new(list, json_string(currencies[i]));
	}
	return json_pack("{s:f, s:o, s:o, s:b}", "total", total,
	    "currency", n == 1 && !more ? json_string(currencies[0]) :
	    json_null(), "currencies", list, "more_currencies", more);
}

/* The longest lookback of any channel. */
static int64_t
longest_lookback(const struct attribution_query *q)
{
	int64_t longest = q->lookback_us;

	for (int ch = 0; ch < CHANNEL_COUNT_; ch++) {
		longest = q->channel_lookback_us[ch] > longest ?
		    q->channel_lookback_us[ch] : longest;
	}
	return longest;
}

/* The three statements, in one snapshot; their results into r. */
static bool
read_data(PGconn *pg, const struct attribution_query *q, const char *site,
    struct reading *r, struct error *err)
{
	struct pgarray ids, converters;
	struct strbuf sql;
	char longest_s[24];
	bool ok = false;

	pgarray_init(&ids);
	pgarray_init(&converters);
	strbuf_init(&sql);
	snprintf(longest_s, sizeof(longest_s), "%lld",
	    (long long)(longest_lookback(q) / TIMEUTIL_US_PER_SEC));
	if (!api_snapshot_begin(pg, err)) {
		goto done;
	}
	build_conversions_sql(q, &sql);
	const char *conv_params[] = { site, q->conversion, q->from, q->to };
	if (strbuf_failed(&sql) || (r->convs_res = db_query(pg, sql.data, 4,
	    conv_params, err)) == NULL) {
		goto done;
	}
	if (!read_conversions(r)) {
		goto oom;
	}
	strbuf_reset(&sql);
	build_visits_sql(q, &sql);
	const char *visit_params[] = { site, person_ids(r, &ids), q->from,
		q->to, longest_s };
	if (strbuf_failed(&sql) || visit_params[1] == NULL) {
		goto oom;
	}
	if ((r->visits_res = db_query(pg, sql.data, 5, visit_params,
	    err)) == NULL) {
		goto done;
	}
	if (q->models & (1u << ATTR_DATA_DRIVEN)) {
		strbuf_reset(&sql);
		build_transitions_sql(q, &sql);
		const char *tr_params[] = { site, q->from, q->to,
			converter_ids(r, &converters) };
		if (strbuf_failed(&sql) || tr_params[3] == NULL) {
			goto oom;
		}
		if ((r->transitions_res = db_query(pg, sql.data, 4, tr_params,
		    err)) == NULL) {
			goto done;
		}
	}
	ok = true;
	goto done;
oom:
	error_set(err, ERR_INTERNAL, "out of memory");
done:
	api_snapshot_end(pg);
	strbuf_finish(&sql);
	pgarray_finish(&ids);
	pgarray_finish(&converters);
	return ok;
}

/* The data from the index r holds, if it can answer q; false with why
 * set when it cannot, with err set when it failed. */
static bool
read_index(const struct attribution_query *q,
    const struct query_index_read *r, struct reading *out, struct error *err)
{
	struct qattr_spec spec = { q->conversion, q->from_us, q->to_us,
		longest_lookback(q), (enum qattr_dim)q->dim,
		(q->models & (1u << ATTR_DATA_DRIVEN)) != 0 };

	if (!qattr_gather(r->ix, &spec, &out->d)) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	return true;
}

static bool
attribution_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct attribution_query *q = call->data;
	struct query_index *qi = call->app->index;
	struct query_index_read ir = { 0 };
	struct reading r = { 0 };
	struct attr_facts facts;
	int64_t as_of = timeutil_now_us();
	bool ok = false, from_index = false, read;

	attr_data_init(&r.d);
	if (!api_engine_read(call, pg, q->engine, q->first ? "the query index "
	    "does not hold the first times that conversions=first reads" : NULL,
	    &ir, err)) {
		goto done;
	}
	/* Which events are macro conversions is the index's to say. */
	if (ir.ix != NULL && !qattr_supported(ir.ix, q->conversion, q->first)) {
		query_index_release(qi, &ir);
		if (!api_engine_fallback(q->engine, "the query index does not "
		    "hold the properties of events other than macro conversions",
		    err)) {
			goto done;
		}
	}
	from_index = ir.ix != NULL;
	if (from_index) {
		as_of = ir.as_of;
		read = read_index(q, &ir, &r, err);
	} else {
		read = read_data(pg, q, call->site_id, &r, err) && read_visits(&r);
		if (!read && err->code == ERR_NONE) {
			error_set(err, ERR_INTERNAL, "out of memory");
		}
		if (read) {
			attr_data_sort(&r.d);
		}
	}
	if (!read) {
		goto done;
	}
	if (!attr_data_value(&r.d, QATTR_NO_TOUCH, &r.none) ||
	    (r.attr = attr_new(r.d.n_values, r.none)) == NULL ||
	    !add_conversions(q, &r) || !add_transitions(&r) ||
	    !attr_compute(r.attr, &(struct attr_params){
		.half_life_us = q->half_life_us,
		.position_first = (double)q->position[0] / 100,
		.position_last = (double)q->position[2] / 100,
	    }, q->models)) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	attr_facts(r.attr, &facts);
	call->answer = json_pack("{s:s, s:o, s:I, s:o, s:o, s:o, s:o, s:s}",
	    "site", call->site_id, "query", query_json(q),
	    "conversions", (json_int_t)facts.conversions,
	    "revenue", revenue_json(&r, facts.revenue),
	    "values", values_json(q, &r), "paths", paths_json(&r, &facts),
	    "as_of", api_time_json(as_of), "engine",
	    from_index ? "index" : "sql");
	ok = call->answer != NULL;
	if (!ok) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
done:
	query_index_release(qi, &ir);
	query_index_count_answer(qi, from_index);
	reading_finish(&r);
	return ok;
}

void
api_attribution(struct request *req, struct app *app)
{
	api_query(req, app, sizeof(struct attribution_query), free, read_query,
	    attribution_run);
}
