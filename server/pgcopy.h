/* pgcopy.h - reads the rows of COPY (SELECT ...) TO STDOUT (FORMAT
 * binary), one at a time: how the query index loads millions of rows
 * without a result set in memory or text to parse (docs/architecture.md,
 * "Query index").
 *
 * Fields point into the row's buffer and are valid until the next call.
 * Binary values: bigint and timestamptz are 8 bytes big-endian (times in
 * microseconds since 2000-01-01), boolean one byte, text its bytes. */
#ifndef MILEPOST_SERVER_PGCOPY_H
#define MILEPOST_SERVER_PGCOPY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define PGCOPY_FIELDS_MAX 16

struct pgcopy_field {
	const char *data;	/* NULL: SQL NULL */
	size_t len;
};

struct pgcopy {
	PGconn *pg;
	char *row;		/* libpq's buffer of the current row */
	bool header_seen, done;
	struct pgcopy_field field[PGCOPY_FIELDS_MAX];
	int n_fields;
};

/* Starts sql (a COPY ... TO STDOUT (FORMAT binary); no parameters: put
 * values in with set_config and read them with current_setting). */
bool pgcopy_begin(struct pgcopy *c, PGconn *pg, const char *sql,
    struct error *err);

/* The next row into c->field (n_fields of them). False at the end, with
 * err clear, or on an error (err set); either way the COPY is over. */
bool pgcopy_next(struct pgcopy *c, struct error *err);

/* Ends a COPY early (reads and drops the rest). */
void pgcopy_end(struct pgcopy *c);

/* Decoders of binary fields, for fields of the right length (checked
 * by the caller with pgcopy_fixed). */
int64_t pgcopy_int8(const struct pgcopy_field *f);
/* A timestamptz as microseconds since the Unix epoch. */
int64_t pgcopy_time(const struct pgcopy_field *f);
bool pgcopy_bool(const struct pgcopy_field *f);
double pgcopy_float8(const struct pgcopy_field *f);
/* Whether the non-NULL field f has len bytes. */
bool pgcopy_fixed(const struct pgcopy_field *f, size_t len);

#endif
