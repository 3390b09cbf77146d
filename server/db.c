/* db.c - libpq helpers. */
#include "server/db.h"

#include <string.h>

#include "common/log.h"

void
db_error_from_conn(PGconn *pg, const PGresult *res, struct error *err)
{
	const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
	size_t n;

	if (msg == NULL || msg[0] == '\0') {
		msg = PQerrorMessage(pg);
	}
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
		n--;
	}
	error_set(err, PQstatus(pg) == CONNECTION_OK ? ERR_DATABASE :
	    ERR_DATABASE_UNAVAILABLE, "%.*s", (int)n, msg);
}

/* PostgreSQL's notices ("relation already exists, skipping") go to the
 * log as debug lines rather than raw text on stderr. */
static void
on_notice(void *arg, const char *message)
{
	size_t n = strlen(message);

	(void)arg;
	while (n > 0 && message[n - 1] == '\n') {
		n--;
	}
	log_debug("postgres: %.*s", (int)n, message);
}

PGconn *
db_connect(const char *url, struct error *err)
{
	/* Later keywords win over what the URL says, so the defaults come
	 * first and the URL (expanded from dbname) last. */
	static const char *const keys[] = { "connect_timeout",
		"application_name", "client_encoding", "dbname", NULL };
	const char *values[] = { "5", "milepost", "UTF8", url, NULL };
	PGconn *pg;

	pg = PQconnectdbParams(keys, values, 1);
	if (pg == NULL) {
		error_set(err, ERR_DATABASE_UNAVAILABLE, "out of memory");
		return NULL;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		db_error_from_conn(pg, NULL, err);
		PQfinish(pg);
		return NULL;
	}
	PQsetNoticeProcessor(pg, on_notice, NULL);
	return pg;
}

PGresult *
db_query(PGconn *pg, const char *sql, int n_params,
    const char *const *params, struct error *err)
{
	PGresult *res = PQexecParams(pg, sql, n_params, NULL, params, NULL,
	    NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		return res;
	}
	db_error_from_conn(pg, res, err);
	PQclear(res);
	return NULL;
}

bool
db_exec(PGconn *pg, const char *sql, int n_params,
    const char *const *params, struct error *err)
{
	PGresult *res = db_query(pg, sql, n_params, params, err);

	PQclear(res);
	return res != NULL;
}

bool
db_exec_script(PGconn *pg, const char *sql, struct error *err)
{
	PGresult *res = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok) {
		db_error_from_conn(pg, res, err);
	}
	PQclear(res);
	return ok;
}
