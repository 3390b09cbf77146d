/* api.c - authorisation and plumbing of the query and admin API. */
#include "server/api.h"
#include "server/query_index.h"

#include <ctype.h>
#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/funnel.h"
#include "common/log.h"
#include "common/plan.h"
#include "common/privacy.h"
#include "common/timeutil.h"
#include "common/utf8.h"
#include "server/auth.h"
#include "server/db.h"

#define API_NAME_MAX 64

static void
call_free(void *p)
{
	struct api_call *call = p;

	if (call->data_free != NULL) {
		call->data_free(call->data);
	}
	json_decref(call->answer);
	app_state_put(call->state);
	free(call);
}

/* The key presented as `Authorization: Bearer KEY`, or NULL. */
static const char *
bearer_of(struct request *req)
{
	const char *h = http_request_header(req, "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
		return NULL;
	}
	h += 7;
	while (*h == ' ') {
		h++;
	}
	return *h != '\0' ? h : NULL;
}

/* Every configured key is hashed and compared, so that the time taken
 * does not tell which key (or how much of one) was close. */
static const struct config_api_key *
key_find(const struct config *cfg, const char *presented)
{
	const struct config_api_key *found = NULL;

	for (size_t i = 0; i < cfg->n_api_keys; i++) {
		if (privacy_key_matches(presented,
		    cfg->api_keys[i].key_sha256)) {
			found = &cfg->api_keys[i];
		}
	}
	return found;
}

static bool
key_sees(const struct config_api_key *key, const char *site_id)
{
	for (size_t i = 0; i < key->n_sites; i++) {
		if (strcmp(key->sites[i], site_id) == 0) {
			return true;
		}
	}
	return key->n_sites == 0;
}

static const char *
site_of(struct request *req, const struct config *cfg,
    const struct config_api_key *key, struct error *err)
{
	const char *id = http_request_query(req, "site");

	if (id == NULL || id[0] == '\0') {
		if (key->n_sites == 1) {
			id = key->sites[0];
		} else if (cfg->n_sites == 1 && key_sees(key,
		    cfg->sites[0].id)) {
			id = cfg->sites[0].id;
		} else {
			error_set(err, ERR_INVALID_PARAMETER, "site is "
			    "required: this key sees several sites");
			return NULL;
		}
	}
	for (size_t i = 0; i < cfg->n_sites; i++) {
		if (strcmp(cfg->sites[i].id, id) != 0) {
			continue;
		}
		if (!key_sees(key, id)) {
			error_set(err, ERR_FORBIDDEN, "this key may not see "
			    "site '%.64s'", id);
			return NULL;
		}
		return cfg->sites[i].id;
	}
	error_set(err, ERR_NOT_FOUND, "no site '%.64s'", id);
	return NULL;
}

/* The key the request presents, if it has scope; else NULL with err. */
static const struct config_api_key *
key_of(struct request *req, const struct config *cfg, enum api_scope scope,
    struct error *err)
{
	const char *presented = bearer_of(req);
	const struct config_api_key *key;

	if (presented == NULL) {
		error_set(err, ERR_MISSING_API_KEY, "send an API key as "
		    "Authorization: Bearer KEY");
		return NULL;
	}
	key = key_find(cfg, presented);
	if (key == NULL && auth_find_site(cfg, presented) != NULL) {
		error_set(err, ERR_FORBIDDEN, "a site's write key can only "
		    "send events; use a read or admin key");
		return NULL;
	}
	if (key == NULL) {
		error_set(err, ERR_INVALID_API_KEY, "no API key matches");
		return NULL;
	}
	if (scope == API_ADMIN && !key->admin) {
		error_set(err, ERR_FORBIDDEN, "this endpoint needs an admin "
		    "key; '%s' is a read key", key->name);
		return NULL;
	}
	return key;
}

static void
refuse(struct request *req, struct app_state *state, struct error *err)
{
	if (err->code == ERR_FORBIDDEN || err->code == ERR_INVALID_API_KEY) {
		log_at(LVL_WARN, http_request_id(req), "API call refused: %s",
		    err->message);
	}
	app_state_put(state);
	http_respond_error(req, err);
}

void
api_sites(struct request *req, struct app *app)
{
	struct app_state *state = app_state_get(app);
	const struct config *cfg = state->cfg;
	const struct config_api_key *key;
	struct error err = { 0 };
	json_t *sites = json_array(), *body;

	if ((key = key_of(req, cfg, API_READ, &err)) == NULL) {
		json_decref(sites);
		refuse(req, state, &err);
		return;
	}
	/* The dashboard sends its site with every call; this one lists them
	 * all. */
	http_request_query_taken(req, "site");
	if (!api_params_known(req, &err)) {
		json_decref(sites);
		refuse(req, state, &err);
		return;
	}
	for (size_t i = 0; sites != NULL && i < cfg->n_sites; i++) {
		if (key_sees(key, cfg->sites[i].id) && json_array_append_new(
		    sites, json_pack("{s:s,s:s}", "id", cfg->sites[i].id,
		    "name", cfg->sites[i].name)) != 0) {
			json_decref(sites);
			sites = NULL;
		}
	}
	body = sites != NULL ? json_pack("{s:o}", "sites", sites) : NULL;
	app_state_put(state);
	if (body == NULL) {
		error_set(&err, ERR_INTERNAL, "out of memory");
		http_respond_error(req, &err);
		return;
	}
	http_respond_json(req, 200, body);
}

struct api_call *
api_begin(struct request *req, struct app *app, enum api_scope scope)
{
	struct app_state *state = app_state_get(app);
	const struct config_api_key *key;
	const char *site_id;
	struct api_call *call;
	struct error err = { 0 };

	key = key_of(req, state->cfg, scope, &err);
	site_id = key != NULL ? site_of(req, state->cfg, key, &err) : NULL;
	if (site_id == NULL) {
		goto fail;
	}
	call = calloc(1, sizeof(*call));
	if (call == NULL) {
		error_set(&err, ERR_INTERNAL, "out of memory");
		goto fail;
	}
	call->req = req;
	call->app = app;
	call->state = state;
	call->key = key;
	call->site_id = site_id;
	http_request_set_context(req, call, call_free);
	return call;
fail:
	refuse(req, state, &err);
	return NULL;
}

static bool
run_job(PGconn *pg, struct query_job *job, struct error *err)
{
	struct api_call *call = (struct api_call *)job;

	return call->run(pg, call, err);
}

static void
job_done(struct query_job *job)
{
	struct api_call *call = (struct api_call *)job;

	http_request_resume(call->req);
}

static void
on_resume(struct request *req)
{
	struct api_call *call = http_request_context(req);

	if (call->job.ok && call->answer != NULL) {
		http_respond_json(req, call->status != 0 ? call->status : 200,
		    call->answer);
		call->answer = NULL;
		return;
	}
	if (call->job.ok || call->job.err.code == ERR_NONE) {
		error_set(&call->job.err, ERR_INTERNAL, "the query gave no "
		    "answer");
	}
	if (call->job.err.code == ERR_DATABASE) {
		log_at(LVL_ERROR, http_request_id(req), "API query failed: %s",
		    call->job.err.message);
		error_set(&call->job.err, ERR_INTERNAL, "the query failed");
	}
	http_respond_error(req, &call->job.err);
}

bool
api_params_known(struct request *req, struct error *err)
{
	struct strbuf asked;
	const char *unknown;

	strbuf_init(&asked);
	unknown = http_request_query_unasked(req, &asked);
	if (unknown != NULL) {
		error_set(err, ERR_UNKNOWN_PARAMETER, "unknown parameter "
		    "'%.64s'; this endpoint takes %s", unknown,
		    asked.len > 0 ? asked.data : "none");
	}
	strbuf_finish(&asked);
	return unknown == NULL;
}

void
api_run(struct api_call *call,
    bool (*run)(PGconn *pg, struct api_call *call, struct error *err))
{
	struct error err = { 0 };

	if (!api_params_known(call->req, &err)) {
		http_respond_error(call->req, &err);
		return;
	}
	call->run = run;
	call->job.run = run_job;
	call->job.done = job_done;
	http_request_suspend(call->req, on_resume);
	if (!query_pool_submit(call->app->queries, &call->job, &err)) {
		call->job.ok = false;
		call->job.err = err;
		http_request_resume(call->req);
	}
}

bool
api_param_time(struct request *req, const char *name, const char **out,
    struct error *err)
{
	const char *v = http_request_query(req, name);
	int64_t us;

	if (v == NULL || v[0] == '\0') {
		return true;
	}
	if (!timeutil_parse_rfc3339(v, &us)) {
		error_set(err, ERR_INVALID_PARAMETER, "%s must be an RFC 3339 "
		    "date-time such as 2026-11-23T00:00:00Z", name);
		return false;
	}
	*out = v;
	return true;
}

bool
api_param_int(struct request *req, const char *name, long min, long max,
    long *out, struct error *err)
{
	const char *v = http_request_query(req, name);
	char *end;
	long n;

	if (v == NULL || v[0] == '\0') {
		return true;
	}
	errno = 0;
	n = strtol(v, &end, 10);
	/* Digits only: no blanks or '+', which strtol would take. */
	if (!(isdigit((unsigned char)v[0]) || (v[0] == '-' &&
	    isdigit((unsigned char)v[1]))) || *end != '\0' || errno != 0 ||
	    n < min || n > max) {
		error_set(err, ERR_INVALID_PARAMETER, "%s must be an integer "
		    "from %ld to %ld", name, min, max);
		return false;
	}
	*out = n;
	return true;
}

bool
api_param_name(struct request *req, const char *name, const char **out,
    struct error *err)
{
	const char *v = http_request_query(req, name);

	if (v == NULL || v[0] == '\0') {
		return true;
	}
	if (!api_text_valid(v, API_NAME_MAX, name, err)) {
		return false;
	}
	*out = v;
	return true;
}

bool
api_text_valid(const char *v, size_t max, const char *name,
    struct error *err)
{
	size_t len = strlen(v);

	if (len > max) {
		error_set(err, ERR_INVALID_PARAMETER, "%s is longer than %zu "
		    "bytes", name, max);
		return false;
	}
	/* PostgreSQL refuses a text parameter that is not UTF-8; that must
	 * be the client's 400, not our 500. */
	if (!utf8_is_text(v, len)) {
		error_set(err, ERR_INVALID_PARAMETER, "%s is not UTF-8 text",
		    name);
		return false;
	}
	return true;
}

json_t *
api_json_value(const PGresult *res, struct error *err)
{
	json_error_t jerr;
	json_t *v;

	if (PQntuples(res) < 1 || PQnfields(res) < 1 ||
	    PQgetisnull(res, 0, 0)) {
		error_set(err, ERR_DATABASE, "the query returned no row");
		return NULL;
	}
	v = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, &jerr);
	if (v == NULL) {
		error_set(err, ERR_DATABASE, "the query returned bad JSON: %s",
		    jerr.text);
	}
	return v;
}

bool
api_param_day_or_time(struct request *req, const char *name, bool end_of_day,
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
			*out += end_of_day ? 86400 * TIMEUTIL_US_PER_SEC : 0;
			return true;
		}
	} else if (timeutil_parse_rfc3339(v, out)) {
		return true;
	}
	error_set(err, ERR_INVALID_PARAMETER, "%s must be a date (2026-11-23) "
	    "or an RFC 3339 date-time (2026-11-23T08:00:00Z)", name);
	return false;
}

json_t *
api_time_json(int64_t us)
{
	char text[TIMEUTIL_RFC3339_LEN];

	timeutil_format_rfc3339(us, text);
	return json_string(text);
}

void
api_query(struct request *req, struct app *app, size_t size,
    void (*data_free)(void *data),
    bool (*read)(struct request *req, const struct app_state *state,
    void *data, struct error *err),
    bool (*run)(PGconn *pg, struct api_call *call, struct error *err))
{
	struct api_call *call = api_begin(req, app, API_READ);
	struct error err = { 0 };

	if (call == NULL) {
		return;
	}
	call->data = calloc(1, size);
	if (call->data == NULL) {
		error_set(&err, ERR_INTERNAL, "out of memory");
		http_respond_error(req, &err);
		return;
	}
	call->data_free = data_free;
	if (!read(req, call->state, call->data, &err)) {
		http_respond_error(req, &err);
		return;
	}
	api_run(call, run);
}

bool
api_param_choice(struct request *req, const char *name,
    const char *const *names, size_t n, int d, int *out, struct error *err)
{
	const char *v = http_request_query(req, name);
	struct strbuf choices;

	*out = d;
	if (v == NULL || v[0] == '\0') {
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (names[i] != NULL && strcmp(v, names[i]) == 0) {
			*out = (int)i;
			return true;
		}
	}
	strbuf_init(&choices);
	for (size_t i = 0; i < n; i++) {
		if (names[i] != NULL) {
			strbuf_append_str(&choices, choices.len > 0 ? ", " : "");
			strbuf_append_str(&choices, names[i]);
		}
	}
	error_set(err, ERR_INVALID_PARAMETER, "%s must be one of %s", name,
	    choices.data != NULL ? choices.data : "");
	strbuf_finish(&choices);
	return false;
}

bool
api_param_range(struct request *req, int64_t range_us, int64_t *from,
    int64_t *to, struct error *err)
{
	*to = timeutil_now_us();
	if (!api_param_day_or_time(req, "to", true, to, err)) {
		return false;
	}
	*from = *to - range_us;
	if (!api_param_day_or_time(req, "from", false, from, err)) {
		return false;
	}
	if (*from >= *to) {
		error_set(err, ERR_INVALID_PARAMETER, "from must be before to");
		return false;
	}
	return true;
}

bool
api_param_duration(struct request *req, const char *name, const char *dflt,
    int64_t max_us, int64_t *us, char text[API_WINDOW_TEXT],
    struct error *err)
{
	const char *v = http_request_query(req, name);

	if (v == NULL || v[0] == '\0') {
		v = dflt;
	}
	if (!timeutil_parse_duration(v, max_us, us)) {
		error_set(err, ERR_INVALID_PARAMETER, "%s must be a number of "
		    "days or hours (30d, 12h), at most %lldd", name,
		    (long long)(max_us / (86400 * TIMEUTIL_US_PER_SEC)));
		return false;
	}
	snprintf(text, API_WINDOW_TEXT, "%s", v);
	return true;
}

bool
api_param_window(struct request *req, int64_t max_us, int64_t *us,
    char text[API_WINDOW_TEXT], struct error *err)
{
	return api_param_duration(req, "window", API_WINDOW_DEFAULT, max_us,
	    us, text, err);
}

bool
api_event_known(const struct plan *plan, const char *name,
    const char *param, struct error *err)
{
	if (plan_find_event(plan, name) != NULL ||
	    plan_stores_unknown_events(plan)) {
		return true;
	}
	error_set(err, ERR_QUERY_UNKNOWN_EVENT, "%s: '%.64s' is not an event "
	    "of the plan (version %ld), and the plan stores no other events",
	    param, name, plan_version(plan));
	return false;
}

bool
api_param_conversion(struct request *req, const struct plan *plan,
    char out[EVENT_NAME_MAX + 1], struct error *err)
{
	const char *v = http_request_query(req, "conversion");
	const char *macro = json_string_value(json_object_get(
	    plan_document(plan), "macro_conversion"));

	if (v == NULL || v[0] == '\0') {
		if (macro == NULL) {
			error_set(err, ERR_INVALID_PARAMETER, "the plan has no "
			    "macro conversion: name the conversion event");
			return false;
		}
		v = macro;
	}
	if (!funnel_name_valid(v)) {
		error_set(err, ERR_INVALID_PARAMETER, "conversion must be an "
		    "event name");
		return false;
	}
	snprintf(out, EVENT_NAME_MAX + 1, "%s", v);
	return api_event_known(plan, out, "conversion", err);
}

static bool
snapshot_begin(PGconn *pg, const char *begin, struct error *err)
{
	/* One snapshot for every statement of the answer. The statements
	 * join large intermediate results whose sizes the planner cannot
	 * estimate (CTEs, unnest): a nested loop chosen on a bad estimate is
	 * quadratic, so hash and merge joins only; and no JIT, whose
	 * compilation the resulting costs would always trigger. */
	return db_exec(pg, begin, 0, NULL, err) &&
	    db_exec(pg, "SET LOCAL enable_nestloop = off", 0, NULL, err) &&
	    db_exec(pg, "SET LOCAL jit = off", 0, NULL, err);
}

bool
api_snapshot_begin(PGconn *pg, struct error *err)
{
	return snapshot_begin(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ "
	    "READ ONLY", err);
}

bool
api_snapshot_begin_writable(PGconn *pg, struct error *err)
{
	return snapshot_begin(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ", err);
}

void
api_snapshot_end(PGconn *pg)
{
	struct error ignored;

	if (PQtransactionStatus(pg) != PQTRANS_IDLE) {
		db_exec(pg, "COMMIT", 0, NULL, &ignored);
	}
}

json_t *
api_number_json(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

bool
api_param_engine(struct request *req, enum api_engine *out,
    struct error *err)
{
	static const char *const engines[] = { "auto", "index", "sql" };
	int engine;

	if (!api_param_choice(req, "engine", engines, 3, API_ENGINE_AUTO,
	    &engine, err)) {
		return false;
	}
	*out = (enum api_engine)engine;
	return true;
}

bool
api_engine_read(struct api_call *call, PGconn *pg, enum api_engine engine,
    const char *cannot, struct query_index_read *r, struct error *err)
{
	*r = (struct query_index_read){ NULL, 0, engine == API_ENGINE_SQL ?
		"engine=sql was asked for" : cannot };
	if (engine != API_ENGINE_SQL && cannot == NULL) {
		query_index_acquire(call->app->index, pg, call->site_id, r);
	}
	return r->ix != NULL || api_engine_fallback(engine, r->why_not, err);
}

bool
api_engine_fallback(enum api_engine asked, const char *why_not,
    struct error *err)
{
	if (asked == API_ENGINE_INDEX) {
		error_set(err, ERR_ENGINE_UNAVAILABLE, "engine=index: %s; ask "
		    "engine=auto or engine=sql", why_not);
		return false;
	}
	return true;
}
