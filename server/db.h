/* db.h - thin, parameterised access to PostgreSQL through libpq.
 *
 * Every query with a value in it goes through db_query's parameters; SQL
 * text is always a constant. Failures say whether the connection itself was
 * lost (ERR_DATABASE_UNAVAILABLE: retry later) or the statement failed
 * (ERR_DATABASE). The URL is never logged: it may hold a password. */
#ifndef MILEPOST_SERVER_DB_H
#define MILEPOST_SERVER_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/error.h"

/* Connects to url (libpq URI or key=value string). Returns NULL with err
 * set to ERR_DATABASE_UNAVAILABLE. Free with PQfinish. */
PGconn *db_connect(const char *url, struct error *err);

/* Runs sql with params in text format (NULL entries are SQL NULL). Returns
 * the result, which the caller clears with PQclear, or NULL with err set. */
PGresult *db_query(PGconn *pg, const char *sql, int n_params,
    const char *const *params, struct error *err);

/* db_query for statements whose result does not matter. */
bool db_exec(PGconn *pg, const char *sql, int n_params,
    const char *const *params, struct error *err);

/* Runs a script of several statements (no parameters), as migrations are. */
bool db_exec_script(PGconn *pg, const char *sql, struct error *err);

/* Turns the state of pg after a failed call into err. */
void db_error_from_conn(PGconn *pg, const PGresult *res, struct error *err);

#endif
