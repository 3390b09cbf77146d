/* api_people.c - erasure. The person is the one the given id belongs to in
 * identities, with the people merged into it (person_merges) and every id
 * it is known by; everything stored under those people or ids, and the
 * sessions and milestones they resolve to, goes in one transaction, and an
 * audit row records who asked, when and how much went, but not the ids.
 * Every statement finds its rows by index (migrations/0011), so that an
 * erasure costs the person's rows, not the site's. */
#include "server/api_people.h"

#include <stdlib.h>
#include <string.h>

#include "common/event.h"
#include "common/log.h"
#include "server/api.h"
#include "server/db.h"
#include "server/writer.h"

/* What one erasure removes: PostgreSQL array literals, owned. */
struct scope {
	char *ids;	/* text[]: the given id and its people's ids */
	char *people;	/* bigint[]: its people, and those merged into them */
	int n_ids;
	bool device_only;	/* see device_scope_sql */
};

/* The people of the id ($2) as anonymous or user id, then the people
 * merged into them (their events keep the old person_id) and the ids they
 * are known by (a merge moved the merged people's ids over). The id
 * itself is always in: it may be only on rejected events. */
static const char scope_sql[] =
    "WITH p AS (SELECT DISTINCT person_id FROM identities"
    " WHERE site_id = $1 AND kind IN ('anonymous', 'user') AND id = $2),"
    " people AS (SELECT person_id FROM p UNION"
    " SELECT from_person FROM person_merges WHERE site_id = $1"
    " AND into_person IN (SELECT person_id FROM p)),"
    " ids AS (SELECT $2::text AS id UNION"
    " SELECT i.id FROM identities i WHERE i.site_id = $1"
    " AND i.person_id IN (SELECT person_id FROM p))"
    " SELECT (SELECT COALESCE(array_agg(person_id), '{}') FROM people)::text,"
    " (SELECT array_agg(id) FROM ids)::text, (SELECT count(*) FROM ids)";

/* An unverified device whose person a verified user id owns: it claimed
 * that user (or was linked before the user verified), and erasing the
 * whole person would erase the verified owner (migrations/0012). Then
 * the scope is the device alone, within that person. */
static const char device_scope_sql[] =
    "SELECT ARRAY[a.person_id]::text, ARRAY[a.id]::text, 1"
    " FROM identities a WHERE a.site_id = $1 AND a.kind = 'anonymous'"
    " AND a.id = $2 AND NOT a.verified AND EXISTS (SELECT 1"
    " FROM identities u WHERE u.site_id = $1 AND u.kind = 'user'"
    " AND u.verified AND u.person_id = a.person_id)";

struct erase_sql {
	const char *sql;
	int n_params;	/* 2: site and people; 3: and the ids */
};

/* Tells the query index (migrations/0015) whose events the statement's
 * gone rows were, in the same transaction as the delete. */
#define LOG_GONE_PEOPLE                                                      \
	" logged AS (INSERT INTO index_changes (site_id, people)"            \
	" SELECT $1, array_agg(DISTINCT person_id) FROM gone"               \
	" HAVING count(*) > 0)"

/* Deletes the events that where ($1: site, $2: people, $3: ids) picks
 * and answers how many. Their event_ids rows stay (a retry must not bring
 * an erased event back) but lose the claim: a hash of the person's ids. */
#define ERASE_EVENTS(where)                                                  \
	"WITH gone AS (DELETE FROM events WHERE site_id = $1 AND " where     \
	" RETURNING event_id, person_id), forgotten AS (UPDATE event_ids x"   \
	" SET fingerprint = NULL FROM gone g WHERE x.site_id = $1"            \
	" AND x.event_id = g.event_id AND x.fingerprint IS NOT NULL),"        \
	LOG_GONE_PEOPLE " SELECT count(*) FROM gone"

/* Deletes the visits that where picks, and tells the query index which
 * they were. */
#define ERASE_SESSIONS(where)                                                \
	"WITH gone AS (DELETE FROM sessions WHERE site_id = $1 AND " where   \
	" RETURNING session_id), logged AS (INSERT INTO index_changes"        \
	" (site_id, sessions) SELECT $1, array_agg(session_id) FROM gone"     \
	" HAVING count(*) > 0) SELECT count(*) FROM gone"

/* What goes for a person ($2: its people, $3: its ids): its events, and
 * those that carry one of the ids without being theirs (a device's
 * events under another user's person, whose link to it was refused:
 * events_device_of_user); then what ingest derived about it. */
static const struct erase_sql erase_person[] = {
	{ ERASE_EVENTS("(person_id = ANY($2::bigint[])"
	  " OR (user_id IS NOT NULL AND anonymous_id = ANY($3::text[])))"), 3 },
	{ ERASE_SESSIONS("(person_id = ANY($2::bigint[])"
	  " OR anonymous_id = ANY($3::text[]))"), 3 },
	{ "DELETE FROM person_milestones WHERE site_id = $1"
	  " AND person_id = ANY($2::bigint[])", 2 },
	{ "DELETE FROM person_merges WHERE site_id = $1"
	  " AND (from_person = ANY($2::bigint[])"
	  " OR into_person = ANY($2::bigint[]))", 2 },
	{ "DELETE FROM identities WHERE site_id = $1 AND (person_id = "
	  "ANY($2::bigint[]) OR (kind IN ('anonymous', 'user')"
	  " AND id = ANY($3::text[])))", 3 },
};

/* What goes for a device alone (device_scope_sql): the same, kept to the
 * device's id. The person's first times stay: the owner's events may
 * have made them too. */
static const struct erase_sql erase_device[] = {
	{ ERASE_EVENTS("anonymous_id = ANY($3::text[])"
	  " AND (person_id = ANY($2::bigint[]) OR user_id IS NOT NULL)"), 3 },
	{ ERASE_SESSIONS("person_id = ANY($2::bigint[])"
	  " AND anonymous_id = ANY($3::text[])"), 3 },
	{ "DELETE FROM identities WHERE site_id = $1 AND person_id = "
	  "ANY($2::bigint[]) AND kind = 'anonymous' AND id = ANY($3::text[])",
	  3 },
};

/* The expression is rejected_events_ids' (migrations/0011). */
static const char delete_rejected_sql[] =
    "DELETE FROM rejected_events WHERE site_id = $1"
    " AND ARRAY[payload->>'anonymous_id', payload->>'user_id',"
    " derived_anonymous_id] && $2::text[]";

static const char audit_sql[] =
    "INSERT INTO erasure_audit (requested_by, request_id, site_id, counts)"
    " VALUES ($1, $2, $3, $4::jsonb)"
    " RETURNING id, to_json(requested_at) #>> '{}'";

/* Runs a DELETE, or an ERASE_EVENTS statement (which answers its count),
 * and tells how many rows went. */
static bool
count_deleted(PGconn *pg, const char *sql, int n_params,
    const char *const *params, long *n, struct error *err)
{
	PGresult *res = db_query(pg, sql, n_params, params, err);

	if (res == NULL) {
		return false;
	}
	*n = atol(PQresultStatus(res) == PGRES_TUPLES_OK ?
	    PQgetvalue(res, 0, 0) : PQcmdTuples(res));
	PQclear(res);
	return true;
}

static void
scope_finish(struct scope *scope)
{
	free(scope->ids);
	free(scope->people);
}

/* Fills scope with what erasing id in site removes. The one place that
 * decides how far an erasure reaches. */
static bool
scope_resolve(PGconn *pg, const char *site, const char *id,
    struct scope *scope, struct error *err)
{
	const char *params[] = { site, id };
	PGresult *res = db_query(pg, device_scope_sql, 2, params, err);

	if (res == NULL) {
		return false;
	}
	scope->device_only = PQntuples(res) == 1;
	if (!scope->device_only) {
		PQclear(res);
		res = db_query(pg, scope_sql, 2, params, err);
		if (res == NULL) {
			return false;
		}
	}
	scope->people = strdup(PQgetvalue(res, 0, 0));
	scope->ids = strdup(PQgetvalue(res, 0, 1));
	scope->n_ids = atoi(PQgetvalue(res, 0, 2));
	PQclear(res);
	if (scope->people == NULL || scope->ids == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	return true;
}

static bool
erase_in_transaction(PGconn *pg, struct api_call *call, struct error *err)
{
	struct scope scope = { 0 };
	long n_events = 0, n_rejected = 0;
	json_t *counts = NULL;
	char *counts_text = NULL;
	PGresult *res;
	bool ok = false;

	if (!scope_resolve(pg, call->site_id, call->data, &scope, err)) {
		goto done;
	}
	const struct erase_sql *steps = scope.device_only ? erase_device :
	    erase_person;
	size_t n_steps = scope.device_only ?
	    sizeof(erase_device) / sizeof(erase_device[0]) :
	    sizeof(erase_person) / sizeof(erase_person[0]);
	const char *params[] = { call->site_id, scope.people, scope.ids };
	const char *rejected_params[] = { call->site_id, scope.ids };

	/* Events first, so that their count is the first step's. */
	if (!count_deleted(pg, steps[0].sql, steps[0].n_params, params,
	    &n_events, err) || !count_deleted(pg, delete_rejected_sql, 2,
	    rejected_params, &n_rejected, err)) {
		goto done;
	}
	for (size_t i = 1; i < n_steps; i++) {
		if (!db_exec(pg, steps[i].sql, steps[i].n_params, params,
		    err)) {
			goto done;
		}
	}
	counts = json_pack("{s:i, s:I, s:I}", "linked_ids", scope.n_ids,
	    "events", (json_int_t)n_events, "rejected_events",
	    (json_int_t)n_rejected);
	counts_text = counts != NULL ? json_dumps(counts, JSON_COMPACT) : NULL;
	if (counts_text == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	const char *audit[] = { call->key->name, http_request_id(call->req),
		call->site_id, counts_text };
	res = db_query(pg, audit_sql, 4, audit, err);
	if (res == NULL) {
		goto done;
	}
	call->answer = json_pack("{s:s, s:s, s:s, s:O, s:I, s:s}", "site",
	    call->site_id, "scope", scope.device_only ? "id" : "person",
	    "scope_reason", scope.device_only ?
	    "the id's own link is unverified and the person it is in is a "
	    "verified user's: only the id's own data was erased" :
	    "the id and every id linked with it", "erased", counts, "audit_id",
	    (json_int_t)atoll(PQgetvalue(res, 0, 0)), "erased_at",
	    PQgetvalue(res, 0, 1));
	PQclear(res);
	ok = call->answer != NULL;
done:
	json_decref(counts);
	free(counts_text);
	scope_finish(&scope);
	return ok;
}

static bool
erase_run(PGconn *pg, struct api_call *call, struct error *err)
{
	if (!db_exec(pg, "BEGIN", 0, NULL, err)) {
		return false;
	}
	if (!erase_in_transaction(pg, call, err) ||
	    !db_exec(pg, "COMMIT", 0, NULL, err)) {
		json_decref(call->answer);
		call->answer = NULL;
		return false;	/* the pool rolls back */
	}
	/* The erased ids must not come back as the people they were. */
	writer_forget_people(call->app->writer);
	log_at(LVL_INFO, http_request_id(call->req), "erasure in site %s by "
	    "'%s' done", call->site_id, call->key->name);
	return true;
}

void
api_people_erase(struct request *req, struct app *app)
{
	const char *person = http_request_path_param(req);
	struct api_call *call;
	struct error err = { 0 };

	if (person == NULL) {
		error_set(&err, ERR_INVALID_PARAMETER, "give the anonymous or "
		    "user id to erase as /api/v1/people/{id} (at most %d "
		    "bytes)", EVENT_ID_MAX);
		http_respond_error(req, &err);
		return;
	}
	if (!api_text_valid(person, EVENT_ID_MAX, "the id", &err)) {
		http_respond_error(req, &err);
		return;
	}
	call = api_begin(req, app, API_ADMIN);
	if (call == NULL) {
		return;
	}
	call->data = (void *)person;	/* lives as long as the request */
	api_run(call, erase_run);
}
