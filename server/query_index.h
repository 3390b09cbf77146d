/* query_index.h - the query index in the daemon: loaded in the background
 * at start, caught up with PostgreSQL before each answer, turned off past
 * its memory cap (docs/architecture.md, "Query index").
 *
 * A read is: query_index_acquire (catches up with every transaction
 * committed before the call, from this daemon or any other writing to the
 * same database, then holds the index for reading), the computation over
 * the site's qindex, query_index_release. Readers run concurrently; a
 * catch-up applies its rows between them. When the index cannot answer
 * (loading, off, a catch-up failed) acquire says so and the caller asks
 * PostgreSQL, as before the index existed. */
#ifndef MILEPOST_SERVER_QUERY_INDEX_H
#define MILEPOST_SERVER_QUERY_INDEX_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/qindex.h"
#include "common/strbuf.h"

struct query_index;

/* An index for cfg (NULL when cfg turns it off, or out of memory); it
 * loads once started. */
struct query_index *query_index_new(const struct config *cfg);
/* Starts the loader, which also catches up every second. */
bool query_index_start(struct query_index *qi);
/* Stops the loader and frees everything (NULL is fine). */
void query_index_free(struct query_index *qi);

struct query_index_read {
	const struct qindex *ix;	/* NULL: ask PostgreSQL */
	int64_t as_of;			/* the catch-up's time (microseconds) */
	const char *why_not;		/* when ix is NULL: a sentence */
};

/* Catches up through pg (a connection in no transaction) and takes the
 * site's index for reading into *r; a read whose ix is NULL needs no
 * release. qi may be NULL (no index). */
void query_index_acquire(struct query_index *qi, PGconn *pg,
    const char *site, struct query_index_read *r);
void query_index_release(struct query_index *qi, struct query_index_read *r);

/* Counts an answer by the engine that gave it, for /metrics. */
void query_index_count_answer(struct query_index *qi, bool from_index);

/* The index's lines of /metrics (Prometheus text). */
void query_index_metrics(struct query_index *qi, struct strbuf *out);

#endif
