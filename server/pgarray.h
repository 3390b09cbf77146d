/* pgarray.h - PostgreSQL array literals in text format, built one element
 * at a time: how the writer passes a batch's columns as the parameters of
 * one statement (unnest on the other side) instead of one row each. */
#ifndef MILEPOST_SERVER_PGARRAY_H
#define MILEPOST_SERVER_PGARRAY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/strbuf.h"

struct pgarray {
	struct strbuf text;	/* "{e1,e2" until pgarray_value closes it */
	bool closed;
};

void pgarray_init(struct pgarray *a);
void pgarray_finish(struct pgarray *a);
/* Empties a for reuse, keeping its memory. */
void pgarray_reset(struct pgarray *a);

/* Appends one element; s NULL appends SQL NULL. */
void pgarray_add_text(struct pgarray *a, const char *s);
void pgarray_add_int(struct pgarray *a, int64_t v);
void pgarray_add_bool(struct pgarray *a, bool v);
/* A timestamptz of microseconds since the epoch. */
void pgarray_add_time(struct pgarray *a, int64_t us);

/* The literal ("{}" when empty), valid until a is changed again; NULL
 * when memory ran out along the way. No element may be added after. */
const char *pgarray_value(struct pgarray *a);

#endif
