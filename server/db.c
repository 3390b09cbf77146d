/* db.c - libpq helpers. */
#include "server/db.h"

#include <string.h>

#include "common/log.h"

/* The length of msg without what PostgreSQL quotes of the data: in
 * "invalid input syntax for type uuid: \"...\"" or "COPY events, line 3,
 * column user_id: \"...\"" the quoted part is a visitor's data, which
 * logs must not keep. */
static size_t
without_values(const char *msg)
{
	const char *q = strstr(msg, ": \"");
	size_t n = q != NULL ? (size_t)(q - msg) : strlen(msg);

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
		n--;
	}
	return n;
}

void
db_error_from_conn(PGconn *pg, const PGresult *res, struct error *err)
{
	const char *primary = res != NULL ? PQresultErrorField(res,
	    PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state, *context;
	enum err_code code = PQstatus(pg) == CONNECTION_OK ? ERR_DATABASE :
	    ERR_DATABASE_UNAVAILABLE;

	if (primary == NULL) {
		/* No result to read: the connection's own message (which
		 * holds no data of a row). */
		const char *msg = PQerrorMessage(pg);
		error_set(err, code, "%.*s", (int)without_values(msg), msg);
		return;
	}
	/* The primary message, its SQLSTATE and where in a COPY it failed;
	 * not the DETAIL ("Failing row contains (...)", "Key (...)=(...)")
	 * nor the quoted values, which are visitors' data. */
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	context = PQresultErrorField(res, PG_DIAG_CONTEXT);
	if (context != NULL && strncmp(context, "COPY ", 5) == 0) {
		error_set(err, code, "%.*s (SQLSTATE %s; %.*s)",
		    (int)without_values(primary), primary,
		    state != NULL ? state : "?", (int)without_values(context),
		    context);
	} else {
		error_set(err, code, "%.*s (SQLSTATE %s)",
		    (int)without_values(primary), primary,
		    state != NULL ? state : "?");
	}
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
