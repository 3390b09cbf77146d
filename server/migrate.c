/* migrate.c - numbered SQL files, applied once each. */
#include "server/migrate.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "server/db.h"
#include "server/embedded.h"

/* An arbitrary constant shared by every Milepost process. */
#define MIGRATE_LOCK_KEY "7307191170713"

static int
version_of(const struct embedded_file *f)
{
	return atoi(f->name);
}

int
migrate_latest_version(void)
{
	if (migrations_embedded_count == 0) {
		return 0;
	}
	return version_of(&migrations_embedded[migrations_embedded_count - 1]);
}

/* Applies one file in its own transaction, or checks that the applied one
 * is unchanged. */
static bool
apply_one(PGconn *pg, const struct embedded_file *f, int *applied,
    struct error *err)
{
	char version[16];
	const char *params[3] = { version, f->name, (const char *)f->data };
	PGresult *res;
	bool done;

	snprintf(version, sizeof(version), "%d", version_of(f));
	res = db_query(pg, "SELECT checksum = md5($2::text) FROM "
	    "schema_migrations WHERE version = $1::int", 2,
	    (const char *const[]){ version, (const char *)f->data }, err);
	if (res == NULL) {
		return false;
	}
	done = PQntuples(res) == 1;
	if (done && PQgetvalue(res, 0, 0)[0] != 't') {
		PQclear(res);
		error_set(err, ERR_MIGRATION, "migration %s was changed after "
		    "it was applied; add a new migration instead", f->name);
		return false;
	}
	PQclear(res);
	if (done) {
		return true;
	}
	if (!db_exec(pg, "BEGIN", 0, NULL, err)) {
		return false;
	}
	if (!db_exec_script(pg, (const char *)f->data, err) ||
	    !db_exec(pg, "INSERT INTO schema_migrations (version, name, "
	    "checksum) VALUES ($1::int, $2, md5($3::text))", 3, params, err) ||
	    !db_exec(pg, "COMMIT", 0, NULL, err)) {
		struct error ignored;
		if (err != NULL && err->code == ERR_DATABASE) {
			char msg[sizeof(err->message)];
			snprintf(msg, sizeof(msg), "%s", err->message);
			error_set(err, ERR_MIGRATION, "%s: %s", f->name, msg);
		}
		db_exec(pg, "ROLLBACK", 0, NULL, &ignored);
		return false;
	}
	log_info("applied migration %s", f->name);
	(*applied)++;
	return true;
}

bool
migrate_apply(PGconn *pg, int *applied, struct error *err)
{
	const char *lock_key[] = { MIGRATE_LOCK_KEY };
	struct error ignored;
	int count = 0;
	bool ok = false;

	if (!db_exec(pg, "SELECT pg_advisory_lock($1::bigint)", 1, lock_key,
	    err)) {
		return false;
	}
	/* Created under the lock: CREATE TABLE IF NOT EXISTS races with
	 * itself otherwise. */
	if (!db_exec(pg, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "version integer PRIMARY KEY, name text NOT NULL, "
	    "checksum text NOT NULL, "
	    "applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL, err)) {
		goto done;
	}
	for (size_t i = 0; i < migrations_embedded_count; i++) {
		if (!apply_one(pg, &migrations_embedded[i], &count, err)) {
			goto done;
		}
	}
	ok = true;
done:
	db_exec(pg, "SELECT pg_advisory_unlock($1::bigint)", 1, lock_key,
	    &ignored);
	if (applied != NULL) {
		*applied = count;
	}
	return ok;
}

bool
migrate_current_version(PGconn *pg, int *version, struct error *err)
{
	PGresult *res;

	res = db_query(pg, "SELECT to_regclass('schema_migrations') IS NULL",
	    0, NULL, err);
	if (res == NULL) {
		return false;
	}
	if (PQgetvalue(res, 0, 0)[0] == 't') {
		PQclear(res);
		*version = 0;
		return true;
	}
	PQclear(res);
	res = db_query(pg, "SELECT coalesce(max(version), 0) FROM "
	    "schema_migrations", 0, NULL, err);
	if (res == NULL) {
		return false;
	}
	*version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}
