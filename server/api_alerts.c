/* api_alerts.c - alert rules over the API: list and read them with a read
 * key, create, replace and delete them with an admin key. A rule is
 * checked against the plan in force (common/alert_rule.c) before it is
 * stored, and stored as alert_rule_json writes it. docs/alerts.md. */
#include "server/api_alerts.h"

#include <stdlib.h>
#include <string.h>

#include "common/alert_eval.h"
#include "common/alert_rule.h"
#include "common/jsonutil.h"
#include "common/timeutil.h"
#include "server/alert_judge.h"
#include "server/api.h"
#include "server/db.h"
#include "server/pgarray.h"

/* A rule is a few levels deep; anything deeper is no rule. */
#define RULE_DEPTH_MAX 8
#define RULE_ID_MAX 18

/* Columns of every statement answering rules: enum rule_col. */
#define RULE_COLUMNS "id, name, rule::text, to_json(created_at) #>> '{}'," \
	" to_json(updated_at) #>> '{}', source"

enum rule_col {
	COL_ID, COL_NAME, COL_RULE, COL_CREATED, COL_UPDATED, COL_SOURCE
};

static const char list_sql[] = "SELECT " RULE_COLUMNS " FROM alert_rules"
    " WHERE site_id = $1 ORDER BY id";
static const char get_sql[] = "SELECT " RULE_COLUMNS " FROM alert_rules"
    " WHERE site_id = $1 AND id = $2";
static const char insert_sql[] = "INSERT INTO alert_rules (site_id, name,"
    " rule) VALUES ($1, $2, $3::jsonb) ON CONFLICT (site_id, name)"
    " DO NOTHING RETURNING " RULE_COLUMNS;
/* Not onto the name of another rule of the site. */
static const char update_sql[] = "UPDATE alert_rules SET name = $3,"
    " rule = $4::jsonb, updated_at = now() WHERE site_id = $1 AND id = $2"
    " AND source = 'api' AND NOT EXISTS (SELECT 1 FROM alert_rules o WHERE o.site_id = $1"
    " AND o.name = $3 AND o.id <> $2) RETURNING " RULE_COLUMNS;
static const char delete_sql[] = "DELETE FROM alert_rules WHERE site_id = $1"
    " AND id = $2 AND source = 'api' RETURNING id";

/* What a call works on: the rule's id (from the path) and its text. */
struct rule_call {
	char id[RULE_ID_MAX + 1];	/* "" for the collection */
	bool notify;			/* evaluate: store and notify */
	char name[ALERT_NAME_MAX + 1];
	char *text;			/* the checked rule, as stored */
};

static void
rule_call_free(void *p)
{
	struct rule_call *rc = p;

	if (rc != NULL) {
		free(rc->text);
		free(rc);
	}
}

/* A webhook URL as a key of scope admin sees it; others see only its
 * scheme and host, since a webhook's path often is its secret (Slack's
 * are), and so is its user info (https://user:token@host/). New
 * reference. */
static json_t *
url_json(const char *url, bool admin)
{
	const char *scheme_end = strstr(url, "://");
	const char *host, *at;
	size_t authority;

	if (admin || scheme_end == NULL) {
		return json_string(admin ? url : "(hidden)");
	}
	host = scheme_end + 3;
	authority = strcspn(host, "/?#");
	/* The last '@' ends the user info: a password may hold one too. */
	for (at = host + authority; at > host && at[-1] != '@'; at--) {
	}
	return json_sprintf("%.*s%.*s/...", (int)(host - url), url,
	    (int)(host + authority - at), at);
}

static json_t *
entry_json(const PGresult *res, int row, bool admin, struct error *err)
{
	json_t *rule = json_loads(PQgetvalue(res, row, COL_RULE), 0, NULL);
	json_t *entry, *notify = json_object_get(rule, "notify"), *u;
	size_t i;

	if (rule == NULL) {
		error_set(err, ERR_INTERNAL, "a stored rule is not JSON");
		return NULL;
	}
	json_array_foreach(notify, i, u) {
		json_array_set_new(notify, i, url_json(json_string_value(u),
		    admin));
	}
	entry = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o}",
	    "id", (json_int_t)atoll(PQgetvalue(res, row, COL_ID)),
	    "name", PQgetvalue(res, row, COL_NAME),
	    "source", PQgetvalue(res, row, COL_SOURCE),
	    "created_at", PQgetvalue(res, row, COL_CREATED),
	    "updated_at", PQgetvalue(res, row, COL_UPDATED), "rule", rule);
	if (entry == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
	return entry;
}

/* The one rule a statement answered, as the call's answer; not_found
 * when it answered none. */
static bool
answer_one(struct api_call *call, PGresult *res, enum err_code none,
    const char *why, struct error *err)
{
	bool ok = false;

	if (res == NULL) {
		return false;
	}
	if (PQntuples(res) == 0) {
		error_set(err, none, "%s", why);
	} else {
		call->answer = entry_json(res, 0, call->key->admin, err);
		ok = call->answer != NULL;
	}
	PQclear(res);
	return ok;
}

static bool
list_run(PGconn *pg, struct api_call *call, struct error *err)
{
	const char *params[] = { call->site_id };
	PGresult *res = db_query(pg, list_sql, 1, params, err);
	json_t *rules = json_array();

	if (res == NULL) {
		json_decref(rules);
		return false;
	}
	for (int row = 0; rules != NULL && row < PQntuples(res); row++) {
		json_t *entry = entry_json(res, row, call->key->admin, err);
		if (entry == NULL) {
			json_decref(rules);
			PQclear(res);
			return false;
		}
		json_array_append_new(rules, entry);
	}
	PQclear(res);
	call->answer = json_pack("{s:s, s:o}", "site", call->site_id, "rules",
	    rules);
	return call->answer != NULL;
}

static bool
get_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct rule_call *rc = call->data;
	const char *params[] = { call->site_id, rc->id };

	return answer_one(call, db_query(pg, get_sql, 2, params, err),
	    ERR_NOT_FOUND, "no such rule in this site", err);
}

static bool
create_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct rule_call *rc = call->data;
	const char *params[] = { call->site_id, rc->name, rc->text };

	call->status = 201;
	return answer_one(call, db_query(pg, insert_sql, 3, params, err),
	    ERR_RULE_EXISTS, "the site has a rule of that name", err);
}

/* Why rule params[1] of site params[0] was not changed, when it was not
 * for being there and from the API: err set, true. Otherwise (it is there,
 * from the API) false, err untouched. */
static bool
unchangeable(PGconn *pg, const char *const *params, struct error *err)
{
	PGresult *res = db_query(pg, get_sql, 2, params, err);
	bool why = true;

	if (res == NULL) {
		return true;
	}
	if (PQntuples(res) == 0) {
		error_set(err, ERR_NOT_FOUND, "no such rule in this site");
	} else if (strcmp(PQgetvalue(res, 0, COL_SOURCE), "config") == 0) {
		error_set(err, ERR_RULE_FROM_CONFIG, "this rule is declared in "
		    "the configuration (alerts): change it there");
	} else {
		why = false;
	}
	PQclear(res);
	return why;
}

static bool
replace_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct rule_call *rc = call->data;
	const char *params[] = { call->site_id, rc->id, rc->name, rc->text };
	PGresult *res = db_query(pg, update_sql, 4, params, err);

	if (res != NULL && PQntuples(res) == 0) {
		/* No such rule, a configured one, or the name is another's. */
		PQclear(res);
		if (!unchangeable(pg, params, err)) {
			error_set(err, ERR_RULE_EXISTS, "another rule of the site "
			    "has that name");
		}
		return false;
	}
	return answer_one(call, res, ERR_NOT_FOUND, "no such rule", err);
}

static bool
delete_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct rule_call *rc = call->data;
	const char *params[] = { call->site_id, rc->id };
	PGresult *res = db_query(pg, delete_sql, 2, params, err);

	if (res == NULL) {
		return false;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		if (!unchangeable(pg, params, err)) {
			error_set(err, ERR_NOT_FOUND, "no such rule in this site");
		}
		return false;
	}
	PQclear(res);
	call->answer = json_pack("{s:s, s:I, s:b}", "site", call->site_id,
	    "id", (json_int_t)atoll(rc->id), "deleted", 1);
	return call->answer != NULL;
}

static json_t *
evaluation_json(const struct alert_rule *rule,
    const struct alert_measurement *m, const struct alert_decision *d)
{
	json_t *history = json_array();
	bool target = rule->condition == ALERT_CONDITION_TARGET_PACE;

	for (size_t i = 0; !target && i + 1 < m->n; i++) {
		json_array_append_new(history, json_pack("{s:o, s:f, s:I}",
		    "start", api_time_json(m->starts[i]), "value",
		    m->points[i].value, "volume",
		    (json_int_t)m->points[i].volume));
	}
	return json_pack("{s:{s:o, s:o}, s:o, s:I, s:o, s:o, s:o, s:s, s:s,"
	    " s:o}",
	    "period", "start", target ? json_null() :
	    api_time_json(m->starts[m->n - 1]),
	    "end", target ? json_null() :
	    api_time_json(m->starts[m->n - 1] + m->period_us),
	    "value", api_number_json(d->value),
	    "volume", (json_int_t)m->points[m->n - 1].volume,
	    "bound", api_number_json(d->bound),
	    "baseline", api_number_json(d->baseline),
	    "sigma", api_number_json(d->sigma),
	    "verdict", alert_verdict_name(d->verdict), "why", d->why,
	    "history", history);
}

/* Judges the stored rule now. With notify=true the state and any
 * transition are stored, as the evaluator would; otherwise nothing is. */
static bool
evaluate_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct rule_call *rc = call->data;
	struct alert_judgement *j = malloc(sizeof(*j));
	int64_t now = timeutil_now_us();
	bool ok = false;

	if (j == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	if (!alert_judge(pg, call->app->index, call->state, call->site_id,
	    rc->id, now,
	    rc->notify, true, j, err)) {
		goto done;
	}
	if (j->outcome == ALERT_BUSY) {
		error_set(err, ERR_RULE_BUSY, "another daemon is judging this "
		    "rule; ask again in a moment");
		goto done;
	}
	call->answer = json_pack("{s:s, s:I, s:s, s:o, s:{s:s, s:s}, s:b, s:o,"
	    " s:b, s:o}",
	    "site", call->site_id, "id", (json_int_t)j->id,
	    "name", j->rule.name, "evaluation", evaluation_json(&j->rule, &j->m,
	    &j->d), "state", "from", alert_state_name(j->from),
	    "to", alert_state_name(j->to), "recorded", j->recorded,
	    "event_id", j->event_id > 0 ? json_integer(j->event_id) :
	    json_null(), "notified", j->notified, "as_of", api_time_json(now));
	ok = call->answer != NULL;
	if (!ok) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
done:
	free(j);
	return ok;
}

/* ---------------------------------------------------- states, events */

static const char states_sql[] = "SELECT r.id, r.name, r.rule->>'owner',"
    " r.rule->>'severity', (r.rule->>'guardrail')::boolean,"
    " COALESCE(s.state, 'ok'), to_json(s.since) #>> '{}',"
    " to_json(s.period_start) #>> '{}', s.value, s.bound, s.baseline,"
    " to_json(s.judged_at) #>> '{}' FROM alert_rules r"
    " LEFT JOIN alert_states s ON s.site_id = r.site_id AND s.rule_id = r.id"
    " WHERE r.site_id = $1 ORDER BY r.id";

/* $1 site, $2 rule (NULL: all), $3 state reached (NULL: any), $4 from,
 * $5 to, $6 limit. Newest first. */
static const char events_sql[] = "SELECT id, rule_id, rule_name, from_state,"
    " to_state, to_json(period_start) #>> '{}', to_json(period_end) #>> '{}',"
    " value, bound, baseline, why, to_json(at) #>> '{}' FROM alert_events"
    " WHERE site_id = $1 AND ($2::bigint IS NULL OR rule_id = $2)"
    " AND ($3::text IS NULL OR to_state = $3) AND at >= $4 AND at < $5"
    " ORDER BY id DESC LIMIT $6";

#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_LIMIT_MAX 1000
#define DAY_US (86400 * TIMEUTIL_US_PER_SEC)

/* A cell as JSON: text, a number, or null. */
static json_t *
cell_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? json_null() :
	    json_string(PQgetvalue(res, row, col));
}

static json_t *
cell_number(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? json_null() :
	    api_number_json(strtod(PQgetvalue(res, row, col), NULL));
}

static bool
states_run(PGconn *pg, struct api_call *call, struct error *err)
{
	const char *params[] = { call->site_id };
	int64_t now = timeutil_now_us();
	PGresult *res = db_query(pg, states_sql, 1, params, err);
	json_t *list = json_array();

	for (int r = 0; res != NULL && list != NULL && r < PQntuples(res); r++) {
		json_array_append_new(list, json_pack("{s:I, s:s, s:s, s:s, s:b,"
		    " s:s, s:o, s:o, s:o, s:o, s:o, s:o}",
		    "id", (json_int_t)atoll(PQgetvalue(res, r, 0)),
		    "name", PQgetvalue(res, r, 1), "owner", PQgetvalue(res, r, 2),
		    "severity", PQgetvalue(res, r, 3),
		    "guardrail", PQgetvalue(res, r, 4)[0] == 't',
		    "state", PQgetvalue(res, r, 5), "since", cell_text(res, r, 6),
		    "period_start", cell_text(res, r, 7),
		    "value", cell_number(res, r, 8), "bound", cell_number(res, r, 9),
		    "baseline", cell_number(res, r, 10),
		    "judged_at", cell_text(res, r, 11)));
	}
	if (res != NULL) {
		call->answer = json_pack("{s:s, s:O, s:o}", "site", call->site_id,
		    "alerts", list, "as_of", api_time_json(now));
	}
	json_decref(list);
	PQclear(res);
	if (res != NULL && call->answer == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
	return call->answer != NULL;
}

struct events_query {
	const char *rule, *state;	/* NULL: any */
	char from[TIMEUTIL_RFC3339_LEN], to[TIMEUTIL_RFC3339_LEN];
	char limit[24];
};

static bool
events_read(struct request *req, const struct app_state *state, void *data,
    struct error *err)
{
	static const char *const states[ALERT_STATE_COUNT_ + 1] = { "ok",
		"firing", "resolved", "insufficient_data", NULL };
	struct events_query *q = data;
	int64_t from, to;
	long limit = EVENTS_LIMIT_DEFAULT;
	int which = -1;

	(void)state;
	q->rule = http_request_query(req, "rule");
	if (q->rule != NULL && (q->rule[0] == '\0' ||
	    strlen(q->rule) > RULE_ID_MAX ||
	    strspn(q->rule, "0123456789") != strlen(q->rule))) {
		error_set(err, ERR_INVALID_PARAMETER, "rule must be a rule's id");
		return false;
	}
	if (!api_param_choice(req, "state", states, ALERT_STATE_COUNT_, -1,
	    &which, err) ||
	    !api_param_range(req, 30 * DAY_US, &from, &to, err) ||
	    !api_param_int(req, "limit", 1, EVENTS_LIMIT_MAX, &limit, err)) {
		return false;
	}
	q->state = which >= 0 ? states[which] : NULL;
	timeutil_format_rfc3339(from, q->from);
	timeutil_format_rfc3339(to, q->to);
	snprintf(q->limit, sizeof(q->limit), "%ld", limit);
	return true;
}

/* The deliveries of the events listed ($2), to attach to them. */
static const char deliveries_sql[] = "SELECT event_id, url, status, attempts,"
    " last_status, last_error, to_json(delivered_at) #>> '{}'"
    " FROM alert_deliveries WHERE site_id = $1 AND event_id = ANY ($2::bigint[])"
    " ORDER BY event_id, id";

static bool
attach_deliveries(PGconn *pg, const char *site, json_t *events, bool admin,
    struct error *err)
{
	struct pgarray ids;
	PGresult *res = NULL;
	json_t *by_id = json_object(), *e;	/* id text -> its deliveries */
	size_t i;

	pgarray_init(&ids);
	json_array_foreach(events, i, e) {
		json_t *list = json_array();
		char key[24];

		pgarray_add_int(&ids, json_integer_value(json_object_get(e, "id")));
		snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(e, "id")));
		json_object_set(by_id, key, list);
		json_object_set_new(e, "deliveries", list);
	}
	const char *params[] = { site, pgarray_value(&ids) };
	if (params[1] == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
	} else {
		res = db_query(pg, deliveries_sql, 2, params, err);
	}
	for (int r = 0; res != NULL && r < PQntuples(res); r++) {
		json_array_append_new(json_object_get(by_id,
		    PQgetvalue(res, r, 0)), json_pack("{s:o, s:s, s:i, s:o, s:o, s:o}",
			    "url", url_json(PQgetvalue(res, r, 1), admin),
			    "status", PQgetvalue(res, r, 2),
			    "attempts", atoi(PQgetvalue(res, r, 3)),
			    "last_status", PQgetisnull(res, r, 4) ? json_null() :
			    json_integer(atoi(PQgetvalue(res, r, 4))),
			    "last_error", cell_text(res, r, 5),
			    "delivered_at", cell_text(res, r, 6)));
	}
	json_decref(by_id);
	pgarray_finish(&ids);
	PQclear(res);
	return res != NULL;
}

static bool
events_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct events_query *q = call->data;
	const char *params[] = { call->site_id, q->rule, q->state, q->from,
		q->to, q->limit };
	PGresult *res = db_query(pg, events_sql, 6, params, err);
	json_t *list = json_array();

	for (int r = 0; res != NULL && list != NULL && r < PQntuples(res); r++) {
		json_array_append_new(list, json_pack("{s:I, s:I, s:s, s:s, s:s,"
		    " s:o, s:o, s:o, s:o, s:o, s:s, s:s}",
		    "id", (json_int_t)atoll(PQgetvalue(res, r, 0)),
		    "rule_id", (json_int_t)atoll(PQgetvalue(res, r, 1)),
		    "rule_name", PQgetvalue(res, r, 2),
		    "from", PQgetvalue(res, r, 3), "to", PQgetvalue(res, r, 4),
		    "period_start", cell_text(res, r, 5),
		    "period_end", cell_text(res, r, 6),
		    "value", cell_number(res, r, 7), "bound", cell_number(res, r, 8),
		    "baseline", cell_number(res, r, 9), "why", PQgetvalue(res, r, 10),
		    "at", PQgetvalue(res, r, 11)));
	}
	if (res != NULL && list != NULL &&
	    attach_deliveries(pg, call->site_id, list, call->key->admin, err)) {
		call->answer = json_pack("{s:s, s:O}", "site", call->site_id,
		    "events", list);
	}
	json_decref(list);
	PQclear(res);
	if (call->answer == NULL && err->code == ERR_NONE) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
	return call->answer != NULL;
}

/* The body, checked as a rule against the plan in force, into rc. */
static bool
read_rule(struct api_call *call, struct rule_call *rc, struct error *err)
{
	size_t len;
	const char *body = http_request_body(call->req, &len);
	json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	struct alert_rule *rule = malloc(sizeof(*rule));
	json_t *canonical = NULL;
	bool ok = false;

	if (doc == NULL || jsonutil_depth(doc, RULE_DEPTH_MAX) > RULE_DEPTH_MAX) {
		error_set(err, ERR_MALFORMED_JSON, "the body must be a rule as "
		    "a JSON object (at most %d levels deep)", RULE_DEPTH_MAX);
		goto done;
	}
	if (rule == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	if (!alert_rule_parse(doc, call->state->plan,
	    call->state->cfg->min_volume, rule, err)) {
		goto done;
	}
	canonical = alert_rule_json(rule);
	rc->text = canonical != NULL ? json_dumps(canonical, JSON_COMPACT) :
	    NULL;
	if (rc->text == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	memcpy(rc->name, rule->name, sizeof(rc->name));
	ok = true;
done:
	json_decref(doc);
	json_decref(canonical);
	free(rule);
	return ok;
}

/* Begins a call on the rules with scope; for a body, reads the rule
 * first. NULL when the request has been answered. */
static struct api_call *
begin(struct request *req, struct app *app, enum api_scope scope,
    const char *id, bool body)
{
	struct api_call *call;
	struct rule_call *rc;
	struct error err = { 0 };

	if (id != NULL && (id[0] == '\0' || strlen(id) > RULE_ID_MAX ||
	    strspn(id, "0123456789") != strlen(id))) {
		error_set(&err, ERR_NOT_FOUND, "a rule is /api/v1/alerts/rules/"
		    "{id}, its number");
		http_respond_error(req, &err);
		return NULL;
	}
	call = api_begin(req, app, scope);
	if (call == NULL) {
		return NULL;
	}
	rc = calloc(1, sizeof(*rc));
	if (rc == NULL) {
		error_set(&err, ERR_INTERNAL, "out of memory");
		http_respond_error(req, &err);
		return NULL;
	}
	call->data = rc;
	call->data_free = rule_call_free;
	if (id != NULL) {
		memcpy(rc->id, id, strlen(id) + 1);
	}
	if (body && !read_rule(call, rc, &err)) {
		http_respond_error(req, &err);
		return NULL;
	}
	return call;
}

void
api_alert_rules_list(struct request *req, struct app *app)
{
	struct api_call *call = begin(req, app, API_READ, NULL, false);

	if (call != NULL) {
		api_run(call, list_run);
	}
}

void
api_alert_rules_create(struct request *req, struct app *app)
{
	struct api_call *call = begin(req, app, API_ADMIN, NULL, true);

	if (call != NULL) {
		api_run(call, create_run);
	}
}

void
api_alert_rule_get(struct request *req, struct app *app)
{
	struct api_call *call = begin(req, app, API_READ,
	    http_request_path_param(req), false);

	if (call != NULL) {
		api_run(call, get_run);
	}
}

void
api_alert_rule_replace(struct request *req, struct app *app)
{
	struct api_call *call = begin(req, app, API_ADMIN,
	    http_request_path_param(req), true);

	if (call != NULL) {
		api_run(call, replace_run);
	}
}

void
api_alert_rule_delete(struct request *req, struct app *app)
{
	struct api_call *call = begin(req, app, API_ADMIN,
	    http_request_path_param(req), false);

	if (call != NULL) {
		api_run(call, delete_run);
	}
}

/* POST /api/v1/alerts/rules/{id}/evaluate. */
void
api_alert_rule_action(struct request *req, struct app *app)
{
	static const char suffix[] = "/evaluate";
	const char *param = http_request_path_param(req);
	size_t len = param != NULL ? strlen(param) : 0;
	char id[RULE_ID_MAX + 1];
	const char *notify;
	struct api_call *call;
	struct error err = { 0 };

	if (len <= sizeof(suffix) - 1 || len - (sizeof(suffix) - 1) > RULE_ID_MAX ||
	    strcmp(param + len - (sizeof(suffix) - 1), suffix) != 0) {
		error_set(&err, ERR_NOT_FOUND, "the action on a rule is "
		    "/api/v1/alerts/rules/{id}/evaluate");
		http_respond_error(req, &err);
		return;
	}
	memcpy(id, param, len - (sizeof(suffix) - 1));
	id[len - (sizeof(suffix) - 1)] = '\0';
	call = begin(req, app, API_ADMIN, id, false);
	if (call == NULL) {
		return;
	}
	notify = http_request_query(req, "notify");
	if (notify != NULL && strcmp(notify, "true") != 0 &&
	    strcmp(notify, "false") != 0) {
		error_set(&err, ERR_INVALID_PARAMETER, "notify must be true or "
		    "false");
		http_respond_error(req, &err);
		return;
	}
	((struct rule_call *)call->data)->notify = notify != NULL &&
	    strcmp(notify, "true") == 0;
	api_run(call, evaluate_run);
}

void
api_alerts_states(struct request *req, struct app *app)
{
	struct api_call *call = api_begin(req, app, API_READ);

	if (call != NULL) {
		api_run(call, states_run);
	}
}

void
api_alerts_events(struct request *req, struct app *app)
{
	api_query(req, app, sizeof(struct events_query), free, events_read,
	    events_run);
}
