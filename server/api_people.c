/* api_people.c - erasure. The person is the given id and every id seen
 * with it on one event (an anonymous id and the user id it logged in as),
 * followed transitively; everything stored under those ids, and the
 * people, sessions and milestones they resolve to, goes in one
 * transaction, and an audit row records who asked, when and how much
 * went, but not the ids. */
#include "server/api_people.h"

#include <stdlib.h>
#include <string.h>

#include "common/event.h"
#include "common/log.h"
#include "server/api.h"
#include "server/db.h"
#include "server/writer.h"

/* UNION (not UNION ALL) makes the walk stop once no new id turns up. */
static const char linked_ids_sql[] =
    "WITH RECURSIVE ids(id) AS ("
    " SELECT $2::text"
    " UNION"
    " SELECT v.id FROM ids JOIN events e ON e.site_id = $1"
    "  AND (e.anonymous_id = ids.id OR e.user_id = ids.id),"
    "  LATERAL (VALUES (e.anonymous_id), (e.user_id)) AS v(id)"
    " WHERE v.id IS NOT NULL)"
    " SELECT array_agg(id)::text, count(*) FROM ids";

static const char delete_events_sql[] =
    "DELETE FROM events WHERE site_id = $1"
    " AND (anonymous_id = ANY($2::text[]) OR user_id = ANY($2::text[])"
    " OR person_id = ANY($3::bigint[]))";

/* The people those ids belong to, and the people merged into them. */
static const char people_of_ids_sql[] =
    "WITH p AS (SELECT DISTINCT person_id FROM identities"
    " WHERE site_id = $1 AND kind IN ('anonymous', 'user')"
    " AND id = ANY($2::text[]))"
    " SELECT COALESCE(array_agg(x), '{}')::text FROM ("
    " SELECT person_id AS x FROM p UNION"
    " SELECT from_person FROM person_merges WHERE site_id = $1"
    " AND into_person IN (SELECT person_id FROM p)) people";

/* What ingest derived about the people ($2), besides their events; the
 * ids ($3) for the statements that take n_params 3. */
static const struct {
	const char *sql;
	int n_params;
} delete_people[] = {
	{ "DELETE FROM sessions WHERE site_id = $1 AND (person_id = "
	  "ANY($2::bigint[]) OR anonymous_id = ANY($3::text[]))", 3 },
	{ "DELETE FROM person_milestones WHERE site_id = $1"
	  " AND person_id = ANY($2::bigint[])", 2 },
	{ "DELETE FROM person_merges WHERE site_id = $1"
	  " AND (from_person = ANY($2::bigint[])"
	  " OR into_person = ANY($2::bigint[]))", 2 },
	{ "DELETE FROM identities WHERE site_id = $1 AND (person_id = "
	  "ANY($2::bigint[]) OR (kind IN ('anonymous', 'user')"
	  " AND id = ANY($3::text[])))", 3 },
};

static const char delete_rejected_sql[] =
    "DELETE FROM rejected_events WHERE site_id = $1"
    " AND (payload->>'anonymous_id' = ANY($2::text[])"
    " OR payload->>'user_id' = ANY($2::text[])"
    " OR derived_anonymous_id = ANY($2::text[]))";

static const char audit_sql[] =
    "INSERT INTO erasure_audit (requested_by, request_id, site_id, counts)"
    " VALUES ($1, $2, $3, $4::jsonb)"
    " RETURNING id, to_json(requested_at) #>> '{}'";

static bool
count_deleted(PGconn *pg, const char *sql, int n_params,
    const char *const *params, long *n, struct error *err)
{
	PGresult *res = db_query(pg, sql, n_params, params, err);

	if (res == NULL) {
		return false;
	}
	*n = atol(PQcmdTuples(res));
	PQclear(res);
	return true;
}

/* Whether the id to erase ($2) is an unverified device that claimed, or
 * was linked into, a user id whose link was verified: then its walk
 * would cross into a person it does not own (migrations/0012). */
static const char claims_verified_sql[] =
    "SELECT EXISTS (SELECT 1 FROM identities a"
    " JOIN identities u ON u.site_id = a.site_id AND u.kind = 'user'"
    "  AND u.verified"
    " WHERE a.site_id = $1 AND a.kind = 'anonymous' AND a.id = $2"
    "  AND NOT a.verified"
    "  AND (u.person_id = a.person_id OR u.id IN (SELECT e.user_id"
    "   FROM events e WHERE e.site_id = $1 AND e.anonymous_id = $2)))";

/* Erasing only the id: its events, sessions and identity, and the first
 * times of its person when nothing else is left of that person. */
static const char *const erase_id_sql[] = {
	"DELETE FROM sessions WHERE site_id = $1 AND anonymous_id = $2",
	"DELETE FROM person_milestones m WHERE site_id = $1 AND person_id ="
	" (SELECT person_id FROM identities WHERE site_id = $1"
	" AND kind = 'anonymous' AND id = $2) AND NOT EXISTS (SELECT 1"
	" FROM identities i WHERE i.site_id = $1 AND i.person_id ="
	" m.person_id AND NOT (i.kind = 'anonymous' AND i.id = $2))",
	"DELETE FROM identities WHERE site_id = $1 AND kind = 'anonymous'"
	" AND id = $2",
};

static const char delete_id_events_sql[] =
    "DELETE FROM events WHERE site_id = $1 AND anonymous_id = $2";

/* The scope of the erasure of call's id: "id" when only its own data
 * may go (see claims_verified_sql), else "person". NULL on failure. */
static const char *
erase_scope(PGconn *pg, struct api_call *call, struct error *err)
{
	const char *params[2] = { call->site_id, call->data };
	PGresult *res = db_query(pg, claims_verified_sql, 2, params, err);
	const char *scope;

	if (res == NULL) {
		return NULL;
	}
	scope = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? "id" : "person";
	PQclear(res);
	return scope;
}

/* The "id" scope: the id's own events, rejected events, sessions and
 * identity; the verified person it claimed keeps everything. */
static bool
erase_id_only(PGconn *pg, struct api_call *call, long *n_events,
    long *n_rejected, struct error *err)
{
	char ids[EVENT_ID_MAX * 2 + 8];
	const char *params[2] = { call->site_id, call->data };
	const char *rejected_params[2] = { call->site_id, ids };
	const char *id = call->data;
	size_t n = 0;

	/* A one-element text[] literal, quoted and escaped. */
	ids[n++] = '{';
	ids[n++] = '"';
	for (; *id != '\0' && n < sizeof(ids) - 4; id++) {
		if (*id == '"' || *id == '\\') {
			ids[n++] = '\\';
		}
		ids[n++] = *id;
	}
	ids[n++] = '"';
	ids[n++] = '}';
	ids[n] = '\0';
	if (!count_deleted(pg, delete_id_events_sql, 2, params, n_events,
	    err) || !count_deleted(pg, delete_rejected_sql, 2,
	    rejected_params, n_rejected, err)) {
		return false;
	}
	for (size_t i = 0; i < sizeof(erase_id_sql) / sizeof(erase_id_sql[0]);
	    i++) {
		if (!db_exec(pg, erase_id_sql[i], 2, params, err)) {
			return false;
		}
	}
	return true;
}

static bool
erase_in_transaction(PGconn *pg, struct api_call *call, struct error *err)
{
	const char *person = call->data;
	const char *params[3] = { call->site_id, person, NULL };
	long n_events = 0, n_rejected = 0;
	json_t *counts = NULL;
	char *counts_text = NULL, *ids = NULL, *people = NULL;
	PGresult *res;
	bool ok = false;
	int n_ids = 0;
	const char *scope = erase_scope(pg, call, err);

	if (scope == NULL) {
		return false;
	}
	if (strcmp(scope, "id") == 0) {
		n_ids = 1;
		if (!erase_id_only(pg, call, &n_events, &n_rejected, err)) {
			return false;
		}
		goto counted;
	}
	res = db_query(pg, linked_ids_sql, 2, params, err);
	if (res == NULL) {
		return false;
	}
	ids = strdup(PQgetvalue(res, 0, 0));
	n_ids = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (ids == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	params[1] = ids;
	res = db_query(pg, people_of_ids_sql, 2, params, err);
	if (res == NULL) {
		goto done;
	}
	people = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (people == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		goto done;
	}
	params[2] = people;
	if (!count_deleted(pg, delete_events_sql, 3, params, &n_events, err) ||
	    !count_deleted(pg, delete_rejected_sql, 2, params, &n_rejected,
	    err)) {
		goto done;
	}
	const char *people_params[] = { call->site_id, people, ids };
	for (size_t i = 0; i < sizeof(delete_people) /
	    sizeof(delete_people[0]); i++) {
		if (!db_exec(pg, delete_people[i].sql,
		    delete_people[i].n_params, people_params, err)) {
			goto done;
		}
	}
counted:
	counts = json_pack("{s:i, s:I, s:I}", "linked_ids", n_ids, "events",
	    (json_int_t)n_events, "rejected_events", (json_int_t)n_rejected);
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
	    call->site_id, "scope", scope, "scope_reason", scope[0] == 'i' ?
	    "the id's own link is unverified and the person it claimed is a "
	    "verified user's: only the id's own data was erased" :
	    "the id and every id linked with it", "erased", counts, "audit_id",
	    (json_int_t)atoll(PQgetvalue(res, 0, 0)), "erased_at",
	    PQgetvalue(res, 0, 1));
	PQclear(res);
	ok = call->answer != NULL;
done:
	json_decref(counts);
	free(counts_text);
	free(ids);
	free(people);
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
