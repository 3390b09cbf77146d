/* migrate.h - applies the migrations compiled into the binary, in order,
 * once each, under a PostgreSQL advisory lock so that several collectors
 * starting together do not race. Applied files are recorded with their
 * md5 in schema_migrations; an applied file that changed is an error. */
#ifndef MILEPOST_SERVER_MIGRATE_H
#define MILEPOST_SERVER_MIGRATE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/error.h"

/* The version of the newest migration in this binary. */
int migrate_latest_version(void);

/* Applies every pending migration; *applied (may be NULL) tells how many.
 * ERR_MIGRATION when a migration fails or was edited after it was applied,
 * ERR_DATABASE(_UNAVAILABLE) for connection trouble. */
bool migrate_apply(PGconn *pg, int *applied, struct error *err);

/* The highest applied version, 0 if none (or no schema_migrations yet). */
bool migrate_current_version(PGconn *pg, int *version, struct error *err);

#endif
