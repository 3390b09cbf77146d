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
#include "server/alert_measure.h"
#include "server/api.h"
#include "server/db.h"

/* A rule is a few levels deep; anything deeper is no rule. */
#define RULE_DEPTH_MAX 8
#define RULE_ID_MAX 18

/* Columns of every statement answering rules: enum rule_col. */
#define RULE_COLUMNS "id, name, rule::text, to_json(created_at) #>> '{}'," \
	" to_json(updated_at) #>> '{}'"

enum rule_col { COL_ID, COL_NAME, COL_RULE, COL_CREATED, COL_UPDATED };

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
    " AND NOT EXISTS (SELECT 1 FROM alert_rules o WHERE o.site_id = $1"
    " AND o.name = $3 AND o.id <> $2) RETURNING " RULE_COLUMNS;
static const char delete_sql[] = "DELETE FROM alert_rules WHERE site_id = $1"
    " AND id = $2 RETURNING id";

/* What a call works on: the rule's id (from the path) and its text. */
struct rule_call {
	char id[RULE_ID_MAX + 1];	/* "" for the collection */
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

static json_t *
entry_json(const PGresult *res, int row, struct error *err)
{
	json_t *rule = json_loads(PQgetvalue(res, row, COL_RULE), 0, NULL);
	json_t *entry;

	if (rule == NULL) {
		error_set(err, ERR_INTERNAL, "a stored rule is not JSON");
		return NULL;
	}
	entry = json_pack("{s:I, s:s, s:s, s:s, s:o}",
	    "id", (json_int_t)atoll(PQgetvalue(res, row, COL_ID)),
	    "name", PQgetvalue(res, row, COL_NAME),
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
		call->answer = entry_json(res, 0, err);
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
		json_t *entry = entry_json(res, row, err);
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

static bool
replace_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct rule_call *rc = call->data;
	const char *params[] = { call->site_id, rc->id, rc->name, rc->text };
	PGresult *res = db_query(pg, update_sql, 4, params, err);

	if (res != NULL && PQntuples(res) == 0) {
		/* Either no such rule, or the name is another's. */
		PQclear(res);
		if (!answer_one(call, db_query(pg, get_sql, 2, params, err),
		    ERR_NOT_FOUND, "no such rule in this site", err)) {
			return false;
		}
		json_decref(call->answer);
		call->answer = NULL;
		error_set(err, ERR_RULE_EXISTS, "another rule of the site has "
		    "that name");
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
		error_set(err, ERR_NOT_FOUND, "no such rule in this site");
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

/* Measures the stored rule now and judges it; nothing is stored and
 * nobody is notified. */
static bool
evaluate_run(PGconn *pg, struct api_call *call, struct error *err)
{
	struct rule_call *rc = call->data;
	const char *params[] = { call->site_id, rc->id };
	struct alert_rule *rule = malloc(sizeof(*rule));
	struct alert_measurement *m = malloc(sizeof(*m));
	struct alert_decision d;
	json_t *entry = NULL, *evaluation;
	int64_t now = timeutil_now_us();
	bool ok = false;

	if (rule == NULL || m == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	if (!answer_one(call, db_query(pg, get_sql, 2, params, err),
	    ERR_NOT_FOUND, "no such rule in this site", err)) {
		goto done;
	}
	entry = call->answer;
	call->answer = NULL;
	/* Against the plan in force, which may have changed since. */
	if (!alert_rule_parse(json_object_get(entry, "rule"),
	    call->state->plan, call->state->cfg->min_volume, rule, err)) {
		goto done;
	}
	if (!api_snapshot_begin(pg, err) ||
	    !alert_measure(pg, call->site_id, rule, call->state->plan, now, m,
	    err)) {
		api_snapshot_end(pg);
		goto done;
	}
	api_snapshot_end(pg);
	alert_decide(rule, m->points, m->n, m->target, &d);
	evaluation = evaluation_json(rule, m, &d);
	call->answer = json_pack("{s:s, s:O, s:s, s:o, s:b, s:o}",
	    "site", call->site_id, "id", json_object_get(entry, "id"),
	    "name", rule->name, "evaluation", evaluation, "notified", 0,
	    "as_of", api_time_json(now));
	ok = call->answer != NULL;
	if (!ok) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
done:
	json_decref(entry);
	free(rule);
	free(m);
	return ok;
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
	if (call != NULL) {
		api_run(call, evaluate_run);
	}
}
