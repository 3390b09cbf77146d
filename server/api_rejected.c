/* api_rejected.c - listing and replaying rejected events. */
#include "server/api_rejected.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/api.h"
#include "server/copy_row.h"
#include "server/db.h"
#include "server/pipeline.h"
#include "server/writer.h"

#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX 1000
#define REPLAY_LIMIT_DEFAULT 1000
#define REPLAY_LIMIT_MAX 10000

/* The filters both endpoints take, as text parameters ($2..$6 of their
 * queries; NULL means no filter). */
struct filters {
	const char *code;
	const char *event;
	const char *since;
	const char *until;
	const char *replayed;	/* "true", "false" or NULL */
	long limit;
	long cursor;
	char limit_text[24];
	char cursor_text[24];
};

static bool
filters_read(struct request *req, struct filters *f, long limit_default,
    long limit_max, struct error *err)
{
	const char *replayed = http_request_query(req, "replayed");

	memset(f, 0, sizeof(*f));
	f->limit = limit_default;
	if (!api_param_name(req, "code", &f->code, err) ||
	    !api_param_name(req, "event", &f->event, err) ||
	    !api_param_time(req, "since", &f->since, err) ||
	    !api_param_time(req, "until", &f->until, err) ||
	    !api_param_int(req, "limit", 1, limit_max, &f->limit, err) ||
	    !api_param_int(req, "cursor", 1, INT64_MAX / 2, &f->cursor, err)) {
		return false;
	}
	if (replayed != NULL && strcmp(replayed, "true") != 0 &&
	    strcmp(replayed, "false") != 0) {
		error_set(err, ERR_INVALID_PARAMETER, "replayed must be true "
		    "or false");
		return false;
	}
	f->replayed = replayed;
	snprintf(f->limit_text, sizeof(f->limit_text), "%ld", f->limit);
	snprintf(f->cursor_text, sizeof(f->cursor_text), "%ld", f->cursor);
	return true;
}

#define FILTER_SQL                                                           \
	" site_id = $1"                                                      \
	" AND ($2::text IS NULL OR error_codes @> ARRAY[$2::text])"          \
	" AND ($3::text IS NULL OR event_name = $3)"                         \
	" AND ($4::timestamptz IS NULL OR received_at >= $4)"                \
	" AND ($5::timestamptz IS NULL OR received_at < $5)"                 \
	" AND ($6::boolean IS NULL OR (replayed_at IS NOT NULL) = $6)"

/* Newest first; the cursor is the id of the last item of the previous
 * page. The summary counts everything the filters match. */
static const char list_sql[] =
    "WITH matched AS (SELECT * FROM rejected_events WHERE" FILTER_SQL "),"
    " page AS (SELECT * FROM matched"
    "  WHERE ($8::bigint IS NULL OR id < $8) ORDER BY id DESC LIMIT $7)"
    " SELECT json_build_object("
    " 'site', $1::text,"
    " 'items', (SELECT coalesce(json_agg(json_build_object("
    "  'id', id, 'received_at', received_at, 'request_id', request_id,"
    "  'event_index', event_index, 'event_name', event_name,"
    "  'quarantined', quarantined, 'errors', errors, 'payload', payload,"
    "  'replayed_at', replayed_at, 'replayed_event_id', replayed_event_id)"
    "  ORDER BY id DESC), '[]') FROM page),"
    " 'next_cursor', (SELECT CASE WHEN count(*) = $7 THEN min(id)::text END"
    "  FROM page),"
    " 'summary', json_build_object("
    "  'total', (SELECT count(*) FROM matched),"
    "  'by_code', (SELECT coalesce(json_object_agg(code, n), '{}') FROM"
    "   (SELECT unnest(error_codes) AS code, count(*) AS n FROM matched"
    "    GROUP BY 1) c),"
    "  'by_event', (SELECT coalesce(json_object_agg(coalesce(event_name,"
    "   ''), n), '{}') FROM (SELECT event_name, count(*) AS n FROM matched"
    "   GROUP BY 1) e)))";

static bool
list_run(PGconn *pg, struct api_call *call, struct error *err)
{
	const struct filters *f = call->data;
	const char *params[] = { call->site_id, f->code, f->event, f->since,
		f->until, f->replayed, f->limit_text,
		f->cursor > 0 ? f->cursor_text : NULL };
	PGresult *res = db_query(pg, list_sql, 8, params, err);

	if (res == NULL) {
		return false;
	}
	call->answer = api_json_value(res, err);
	PQclear(res);
	return call->answer != NULL;
}

static struct filters *
filters_new(struct request *req, long limit_default, long limit_max)
{
	struct filters *f = malloc(sizeof(*f));
	struct error err = { 0 };

	if (f == NULL) {
		error_set(&err, ERR_INTERNAL, "out of memory");
	} else if (!filters_read(req, f, limit_default, limit_max, &err)) {
		free(f);
		f = NULL;
	}
	if (f == NULL) {
		http_respond_error(req, &err);
	}
	return f;
}

/* Authorises, reads the filters and runs run for either endpoint. */
static void
start(struct request *req, struct app *app, enum api_scope scope,
    long limit_default, long limit_max,
    bool (*run)(PGconn *pg, struct api_call *call, struct error *err))
{
	struct api_call *call = api_begin(req, app, scope);

	if (call == NULL || (call->data = filters_new(req, limit_default,
	    limit_max)) == NULL) {
		return;
	}
	call->data_free = free;
	api_run(call, run);
}

void
api_rejected_list(struct request *req, struct app *app)
{
	start(req, app, API_READ, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX,
	    list_run);
}

/* --- replay ------------------------------------------------------------- */

/* One replay at a time per site, across every collector: the rows it
 * picks stay unmarked until the writer commits. */
static const char lock_sql[] =
    "SELECT pg_try_advisory_lock(hashtext('milepost_replay'), hashtext($1))";
static const char unlock_sql[] =
    "SELECT pg_advisory_unlock(hashtext('milepost_replay'), hashtext($1))";

static const char pending_sql[] =
    "SELECT id, (extract(epoch FROM received_at) * 1000000)::bigint,"
    " request_id, payload::text, derived_anonymous_id,"
    " consent_overrides::text, to_json(redacted)::text, event_index"
    " FROM rejected_events WHERE" FILTER_SQL " AND replayed_at IS NULL"
    " AND ($8::bigint IS NULL OR id > $8) ORDER BY id LIMIT $7";

struct replay_counts {
	long examined;
	long last_id;
	long stored;
	long dropped;
	long still_rejected;
	json_t *by_code;
};

/* The writer's completion, waited for on the query thread. */
struct replay_wait {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool done;
};

static void
replay_written(struct writer_item *item, void *arg)
{
	struct replay_wait *w = arg;

	(void)item;
	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

static json_t *
parse_json_text(const char *text)
{
	return json_loads(text, JSON_DECODE_ANY, NULL);
}

/* Adds n events to code's count in by_code. */
static void
count_code(json_t *by_code, enum err_code code, long n)
{
	const char *name = error_code_name(code);
	json_t *c = json_object_get(by_code, name);

	json_object_set_new(by_code, name, json_integer((c != NULL ?
	    json_integer_value(c) : 0) + n));
}

/* Counts each code of errors once in by_code (events per code). */
static void
count_codes(json_t *by_code, const struct event_problems *errors)
{
	for (size_t j = 0; j < errors->n; j++) {
		size_t k = 0;
		while (k < j && errors->items[k].code != errors->items[j].code) {
			k++;
		}
		if (k == j) {
			count_code(by_code, errors->items[j].code, 1);
		}
	}
}

/* Runs row i of res through the pipeline; stores what now passes and
 * marks its row. */
/* The configured site of id, NULL if it is gone. Its identity
 * verification judges replayed user ids again: their hash was not kept,
 * so they link at most unverified. */
static const struct config_site *
site_of(const struct config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->n_sites; i++) {
		if (strcmp(cfg->sites[i].id, id) == 0) {
			return &cfg->sites[i];
		}
	}
	return NULL;
}

static bool
replay_row(struct api_call *call, const PGresult *res, int i,
    struct writer_item *item, struct replay_counts *n)
{
	const char *id = PQgetvalue(res, i, 0);
	json_t *payload = parse_json_text(PQgetvalue(res, i, 3));
	json_t *overrides = parse_json_text(PQgetvalue(res, i, 5));
	json_t *redacted = parse_json_text(PQgetvalue(res, i, 6));
	struct pipeline_context ctx = {
		.state = call->state,
		.counters = NULL,	/* counted when they first came */
		.site_id = call->site_id,
		.site = site_of(call->state->cfg, call->site_id),
		.request_id = PQgetvalue(res, i, 2),
		.received_us = atoll(PQgetvalue(res, i, 1)),
		.consent_overrides = json_object_size(overrides) > 0 ?
		    overrides : NULL,
		.derived_anonymous_id = PQgetisnull(res, i, 4) ? NULL :
		    PQgetvalue(res, i, 4),
		.redacted = redacted,
	};
	struct pipeline_outcome out;
	size_t kept = item->rejected.len;
	bool ok = false;

	/* The request's user agent was not kept: an unknown device. */
	useragent_parse(NULL, &ctx.ua);

	n->examined++;
	n->last_id = atol(id);
	/* Its own index: should dedup keep it aside again (its id now
	 * stored for another event), the row it would add is this one. */
	if (payload == NULL || !pipeline_run(&ctx, payload,
	    (size_t)atol(PQgetvalue(res, i, 7)), item, &out)) {
		goto done;
	}
	switch (out.result) {
	case PIPELINE_STORED:
	case PIPELINE_ANONYMISED:
		copy_row_replayed(&item->replayed, call->site_id, id,
		    out.event_id);
		n->stored++;
		break;
	case PIPELINE_DROPPED:
		copy_row_replayed(&item->replayed, call->site_id, id, NULL);
		n->dropped++;
		break;
	case PIPELINE_REJECTED:
	case PIPELINE_QUARANTINED:
		/* It stays where it is; the pipeline's new copy goes. */
		strbuf_truncate(&item->rejected, kept);
		item->n_rejected--;
		n->still_rejected++;
		count_codes(n->by_code, &out.errors);
		break;
	}
	ok = true;
done:
	json_decref(payload);
	json_decref(overrides);
	json_decref(redacted);
	return ok;
}

/* Hands item to the writer and waits for its commit. */
static bool
replay_write(struct api_call *call, struct writer_item *item,
    struct error *err)
{
	struct replay_wait w = { .done = false };
	bool ok;

	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cond, NULL);
	item->done = replay_written;
	item->arg = &w;
	ok = writer_enqueue(call->app->writer, item, err);
	pthread_mutex_lock(&w.mu);
	while (ok && !w.done) {
		pthread_cond_wait(&w.cond, &w.mu);
	}
	pthread_mutex_unlock(&w.mu);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.mu);
	if (ok && item->status != WRITER_COMMITTED) {
		error_set(err, ERR_DATABASE_UNAVAILABLE, "the replayed events "
		    "could not be stored; nothing was marked, retry");
		ok = false;
	}
	return ok;
}

static bool
replay_locked(PGconn *pg, struct api_call *call, struct replay_counts *n,
    struct error *err)
{
	const struct filters *f = call->data;
	const char *params[] = { call->site_id, f->code, f->event, f->since,
		f->until, NULL, f->limit_text,
		f->cursor > 0 ? f->cursor_text : NULL };
	struct writer_item item;
	PGresult *res;
	bool ok = true;

	res = db_query(pg, pending_sql, 8, params, err);
	if (res == NULL) {
		return false;
	}
	writer_item_init(&item);
	for (int i = 0; ok && i < PQntuples(res); i++) {
		ok = replay_row(call, res, i, &item, n);
	}
	PQclear(res);
	if (!ok || strbuf_failed(&item.events) ||
	    strbuf_failed(&item.replayed)) {
		error_set(err, ERR_INTERNAL, "out of memory");
		ok = false;
	} else if (item.replayed.len > 0) {
		ok = replay_write(call, &item, err);
	}
	/* Those dedup kept aside stay pending, unmarked. */
	if (ok && item.n_conflicts > 0) {
		count_code(n->by_code, ERR_DUPLICATE_CONFLICT,
		    (long)item.n_conflicts);
		n->stored -= (long)item.n_conflicts;
		n->still_rejected += (long)item.n_conflicts;
	}
	writer_item_finish(&item);
	return ok;
}

static long
replay_limit(const struct api_call *call)
{
	return ((const struct filters *)call->data)->limit;
}

static bool
replay_run(PGconn *pg, struct api_call *call, struct error *err)
{
	const char *params[] = { call->site_id };
	struct replay_counts n = { .by_code = json_object() };
	struct error ignored;
	PGresult *res;
	bool ok;

	res = db_query(pg, lock_sql, 1, params, err);
	if (res == NULL || n.by_code == NULL) {
		PQclear(res);
		json_decref(n.by_code);
		return false;
	}
	ok = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!ok) {
		error_set(err, ERR_REPLAY_IN_PROGRESS, "a replay of site '%s' "
		    "is running; try again when it is done", call->site_id);
		json_decref(n.by_code);
		return false;
	}
	ok = replay_locked(pg, call, &n, err);
	db_exec(pg, unlock_sql, 1, params, &ignored);
	if (ok) {
		/* Rows that still fail stay pending: the cursor lets the
		 * next call go on after them. */
		call->answer = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o, "
		    "s:o}", "site", call->site_id, "plan_version",
		    (json_int_t)plan_version(call->state->plan),
		    "examined", (json_int_t)n.examined,
		    "replayed", (json_int_t)n.stored,
		    "dropped", (json_int_t)n.dropped,
		    "still_rejected", (json_int_t)n.still_rejected,
		    "still_rejected_by_code", n.by_code, "next_cursor",
		    n.examined == replay_limit(call) && n.last_id > 0 ?
		    json_sprintf("%ld", n.last_id) : json_null());
		log_at(LVL_INFO, http_request_id(call->req), "replay of site "
		    "%s by '%s': %ld examined, %ld stored, %ld dropped, %ld "
		    "still rejected", call->site_id, call->key->name,
		    n.examined, n.stored, n.dropped, n.still_rejected);
		return call->answer != NULL;
	}
	json_decref(n.by_code);
	return false;
}

void
api_rejected_replay(struct request *req, struct app *app)
{
	struct error err = { 0 };

	if (http_request_query(req, "replayed") != NULL) {
		error_set(&err, ERR_INVALID_PARAMETER, "replay takes the events "
		    "not replayed yet; replayed is a filter of the listing only");
		http_respond_error(req, &err);
		return;
	}
	start(req, app, API_ADMIN, REPLAY_LIMIT_DEFAULT, REPLAY_LIMIT_MAX,
	    replay_run);
}
