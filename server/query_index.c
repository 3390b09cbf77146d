/* query_index.c - loading and catching up the query index
 * (query_index.h). docs/architecture.md ("Query index") states the
 * protocol and why it reads every committed row exactly once.
 *
 * The load is one REPEATABLE READ transaction: its snapshot, then every
 * visit, merge and event by binary COPY. A catch-up is another: its
 * snapshot, then the rows whose writing transaction (the xid column,
 * migrations/0015) is visible in it and was not in the previous one, and
 * the regions that index_changes says were deleted from, read again
 * whole. Rows are staged while PostgreSQL sends them and applied under
 * the write lock at the end, so a reader never sees half a catch-up. */
#include "server/query_index.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/api_attribution.h"
#include "server/db.h"
#include "server/pgarray.h"
#include "server/pgcopy.h"
#include "server/ticker.h"

/* A macro conversion's id, revenue and currency: what attribution reads
 * of its properties (api_attribution.c). */
#define EVENT_COLUMNS "site_id, person_id, ts, name, kind, session_id, " \
	"device, browser, CASE WHEN kind = 'macro' THEN event_id END, "    \
	"CASE WHEN kind = 'macro' THEN " ATTRIBUTION_REVENUE_SQL("props")    \
	" END, CASE WHEN kind = 'macro' THEN props->>'currency' END"
#define EVENT_FIELDS 11
#define VISIT_COLUMNS "site_id, session_id, person_id, started_at, last_at, " \
	"bot, channel, utm_source, utm_medium, utm_campaign, referrer_host, " \
	"landing_path"
/* The events the query API counts. */
#define COUNTED "NOT bot AND person_id IS NOT NULL"
/* The rows of table written by a transaction visible in this catch-up's
 * snapshot and not in the previous one's: at or past that one's xmax
 * ($1) and below this one's ($3), or among its running ids ($2).
 * Written as two index ranges rather than pg_visible_in_snapshot per row,
 * which casts each xid to xid8 through text (a third of the catch-up's
 * time in PostgreSQL) and reads every row since the previous snapshot's
 * xmin, read before or not. Both bounds are parameters, so that even a
 * generic plan expects few rows and keeps to the xid index. */
#define NEW_IN(table)                                                        \
	" (SELECT * FROM " table " WHERE xid >= $1::bigint AND"                 \
	" xid < $3::bigint UNION ALL SELECT * FROM " table                    \
	" WHERE xid = ANY ($2::bigint[]))"
/* Whether table has such rows before this statement's snapshot (which
 * bounds them from above): one probe of each range. */
#define ANY_NEW_IN(table)                                                    \
	" EXISTS (SELECT FROM " table " WHERE xid >= $1::bigint) OR"           \
	" EXISTS (SELECT FROM " table " WHERE xid = ANY ($2::bigint[]))"
#define COPY_OUT(select) "COPY (" select ") TO STDOUT (FORMAT binary)"

/* The load: everything, streamed. */
static const char load_visits_sql[] =
    COPY_OUT("SELECT " VISIT_COLUMNS " FROM sessions");
static const char load_merges_sql[] =
    COPY_OUT("SELECT site_id, from_person, into_person FROM person_merges");
static const char load_events_sql[] =
    COPY_OUT("SELECT " EVENT_COLUMNS " FROM events WHERE " COUNTED);

/* A catch-up: prepared statements with binary results, so that one that
 * finds nothing new costs a few index probes, not plans. */
struct statement {
	const char *name, *sql;
	int n_params;
};

/* One row per (change, person) and per (change, session), by change. */
static const struct statement new_changes = { "mp_ix_changes",
    "SELECT c.id, c.site_id, p.person, NULL::text, c.events_before,"
    " c.sessions_before FROM" NEW_IN("index_changes") " c"
    " LEFT JOIN LATERAL unnest(c.people) AS p(person) ON true"
    " UNION ALL SELECT c.id, c.site_id, NULL, v.session, NULL, NULL"
    " FROM" NEW_IN("index_changes") " c CROSS JOIN LATERAL"
    " unnest(c.sessions) AS v(session) ORDER BY 1", 3 };
/* Whether anything is new, in one statement: in autocommit it has one
 * snapshot, which pg_current_snapshot() answers and the EXISTS read, so
 * when nothing is new that snapshot is the next catch-up's previous one
 * and the catch-up costs one round trip. Any new events row counts, even
 * one the index leaves out: then the full catch-up finds nothing. */
static const struct statement anything_new = { "mp_ix_any",
    "SELECT pg_current_snapshot()::text," ANY_NEW_IN("events") " OR"
    ANY_NEW_IN("person_merges") " OR" ANY_NEW_IN("index_changes"), 2 };
static const struct statement new_merges = { "mp_ix_merges",
    "SELECT site_id, from_person, into_person FROM" NEW_IN("person_merges")
    " m", 3 };
static const struct statement new_events = { "mp_ix_events",
    "SELECT " EVENT_COLUMNS " FROM" NEW_IN("events") " e WHERE " COUNTED,
    3 };

/* A region's rows again: $1 its site ('': every site), $2 its people or
 * its time. */
#define IN_SITE "($1 = '' OR site_id = $1)"
static const struct statement region_people_events = { "mp_ix_rpe",
    "SELECT " EVENT_COLUMNS " FROM events WHERE " IN_SITE
    " AND person_id = ANY ($2::bigint[]) AND NOT bot", 2 };
static const struct statement region_visits = { "mp_ix_rv",
    "SELECT " VISIT_COLUMNS " FROM sessions WHERE " IN_SITE
    " AND session_id = ANY ($2::text[])", 2 };
static const struct statement region_events_before = { "mp_ix_reb",
    "SELECT " EVENT_COLUMNS " FROM events WHERE " IN_SITE " AND " COUNTED
    " AND ts < $2::timestamptz", 2 };
/* Visits whose last event is before a cutoff: the index reads back all
 * that started before it (qindex_forget_visits_started_before). */
static const struct statement region_visits_before = { "mp_ix_rvb",
    "SELECT " VISIT_COLUMNS " FROM sessions WHERE " IN_SITE
    " AND started_at < $2::timestamptz", 2 };

enum stream { S_EVENT, S_EVENT_AGAIN, S_VISIT, S_MERGE };
enum state { STATE_LOADING, STATE_READY, STATE_OFF };

/* What index_changes said was deleted from. */
struct region {
	char *site;			/* NULL: every site */
	int64_t *people;
	size_t n_people;
	char **sessions;
	size_t n_sessions;
	int64_t events_before;		/* INT64_MIN: none */
	int64_t visits_before;		/* INT64_MIN: none */
};

/* A result of a catch-up's statement, applied as stream s. */
struct staged {
	PGresult *res;
	enum stream stream;
};

struct staging {
	struct staged *results;
	size_t n;
	size_t rows;
	struct region *regions;
	size_t n_regions;
};

struct site_index {
	char *site;
	struct qindex *ix;
};

struct query_index {
	const struct config *cfg;
	struct ticker *ticker;
	PGconn *own;			/* the ticker's connection */
	_Atomic int state;
	pthread_rwlock_t lock;		/* the indexes */
	struct qindex_budget budget;
	struct site_index *sites;
	size_t n_sites;
	/* One catch-up at a time, under sync. */
	pthread_mutex_t sync;
	char *snapshot;			/* the last catch-up's */
	int64_t synced_mono_ns;		/* when it began */
	_Atomic int64_t as_of_us;	/* its wall-clock time */
	/* /metrics */
	_Atomic unsigned long long catchups, catchup_rows, catchup_us,
	    answers_index, answers_sql, turned_off;
	_Atomic int64_t load_ms;
	_Atomic size_t bytes, events, people, visits;
};

/* ------------------------------------------------------------- rows */

/* A field as a NUL-terminated string at *buf (advancing it); NULL for
 * SQL NULL. */
static const char *
field_text(const struct pgcopy_field *f, char **buf)
{
	char *s = *buf;

	if (f->data == NULL) {
		return NULL;
	}
	memcpy(s, f->data, f->len);
	s[f->len] = '\0';
	*buf += f->len + 1;
	return s;
}

/* The index of site, added if new; NULL when out of memory. */
static struct qindex *
site_index(struct query_index *qi, const struct pgcopy_field *f)
{
	struct site_index *grown;

	for (size_t i = 0; i < qi->n_sites; i++) {
		if (strlen(qi->sites[i].site) == f->len &&
		    memcmp(qi->sites[i].site, f->data, f->len) == 0) {
			return qi->sites[i].ix;
		}
	}
	grown = realloc(qi->sites, (qi->n_sites + 1) * sizeof(*grown));
	if (grown == NULL) {
		return NULL;
	}
	qi->sites = grown;
	grown[qi->n_sites].site = strndup(f->data, f->len);
	grown[qi->n_sites].ix = qindex_new(&qi->budget);
	if (grown[qi->n_sites].site == NULL || grown[qi->n_sites].ix == NULL) {
		free(grown[qi->n_sites].site);
		qindex_free(grown[qi->n_sites].ix);
		return NULL;
	}
	return grown[qi->n_sites++].ix;
}

/* Whether an event of person at ts in site is in one of the regions a
 * catch-up read again (so that it is not added twice). */
static bool
in_region(const struct staging *st, const struct pgcopy_field *site,
    int64_t person, int64_t ts)
{
	for (size_t i = 0; st != NULL && i < st->n_regions; i++) {
		const struct region *r = &st->regions[i];
		if (r->site != NULL && (strlen(r->site) != site->len ||
		    memcmp(r->site, site->data, site->len) != 0)) {
			continue;
		}
		if (ts < r->events_before) {
			return true;
		}
		for (size_t k = 0; k < r->n_people; k++) {
			if (r->people[k] == person) {
				return true;
			}
		}
	}
	return false;
}

/* Room for a row's strings: on the stack for the usual row, else on the
 * heap (buf->heap, which the caller frees). */
struct row_text {
	char stack[4096];
	char *heap;
};

static char *
row_text(struct row_text *t, const struct pgcopy_field *f, const int *cols,
    size_t n)
{
	size_t need = 0;

	for (size_t i = 0; i < n; i++) {
		need += f[cols[i]].len + 1;
	}
	t->heap = need > sizeof(t->stack) ? malloc(need) : NULL;
	return need > sizeof(t->stack) ? t->heap : t->stack;
}

/* Applies an events row (EVENT_COLUMNS); st: the catch-up's regions, for
 * rows that are new rather than read again. */
static enum qindex_status
apply_event(struct query_index *qi, const struct pgcopy_field *f,
    const struct staging *st)
{
	static const int texts[] = { 3, 4, 5, 6, 7, 10 };
	struct row_text text;
	struct qindex_event_row row;
	struct qindex *ix;
	enum qindex_status status;
	char *at;

	if (f[0].data == NULL || !pgcopy_fixed(&f[1], 8) ||
	    !pgcopy_fixed(&f[2], 8) || f[3].data == NULL) {
		return QINDEX_OK;	/* not an event the API counts */
	}
	row.person_id = pgcopy_int8(&f[1]);
	row.ts = pgcopy_time(&f[2]);
	if (in_region(st, &f[0], row.person_id, row.ts)) {
		return QINDEX_OK;
	}
	if ((at = row_text(&text, f, texts, 6)) == NULL ||
	    (ix = site_index(qi, &f[0])) == NULL) {
		free(text.heap);
		return QINDEX_FULL;
	}
	row.name = field_text(&f[3], &at);
	row.kind = field_text(&f[4], &at);
	row.session_id = field_text(&f[5], &at);
	row.device = field_text(&f[6], &at);
	row.browser = field_text(&f[7], &at);
	row.event_id = pgcopy_fixed(&f[8], 16) ? (const uint8_t *)f[8].data :
	    NULL;
	row.has_revenue = pgcopy_fixed(&f[9], 8);
	row.revenue = row.has_revenue ? pgcopy_float8(&f[9]) : 0;
	row.currency = field_text(&f[10], &at);
	status = qindex_add_event(ix, &row);
	free(text.heap);
	return status;
}

/* Applies a sessions row (VISIT_COLUMNS). */
static enum qindex_status
apply_visit(struct query_index *qi, const struct pgcopy_field *f)
{
	static const int texts[] = { 1, 6, 7, 8, 9, 10, 11 };
	struct row_text text;
	struct qindex_visit_row row;
	struct qindex *ix;
	enum qindex_status status;
	char *at;

	if (f[0].data == NULL || f[1].data == NULL || !pgcopy_fixed(&f[2], 8) ||
	    !pgcopy_fixed(&f[3], 8) || !pgcopy_fixed(&f[4], 8) ||
	    !pgcopy_fixed(&f[5], 1)) {
		return QINDEX_OK;
	}
	if ((at = row_text(&text, f, texts, 7)) == NULL ||
	    (ix = site_index(qi, &f[0])) == NULL) {
		free(text.heap);
		return QINDEX_FULL;
	}
	row.session_id = field_text(&f[1], &at);
	row.person_id = pgcopy_int8(&f[2]);
	row.started_at = pgcopy_time(&f[3]);
	row.last_at = pgcopy_time(&f[4]);
	row.bot = pgcopy_bool(&f[5]);
	for (int d = 0; d < QINDEX_VISIT_DIMS; d++) {
		row.dims[d] = field_text(&f[6 + d], &at);
	}
	status = qindex_add_visit(ix, &row);
	free(text.heap);
	return status;
}

static enum qindex_status
apply_merge(struct query_index *qi, const struct pgcopy_field *f)
{
	struct qindex *ix;

	if (f[0].data == NULL || !pgcopy_fixed(&f[1], 8) ||
	    !pgcopy_fixed(&f[2], 8)) {
		return QINDEX_OK;
	}
	if ((ix = site_index(qi, &f[0])) == NULL) {
		return QINDEX_FULL;
	}
	return qindex_merge(ix, pgcopy_int8(&f[1]), pgcopy_int8(&f[2]));
}

static enum qindex_status
apply_row(struct query_index *qi, enum stream s, const struct pgcopy_field *f,
    int n, const struct staging *st)
{
	static const int fields[] = { [S_EVENT] = EVENT_FIELDS,
		[S_EVENT_AGAIN] = EVENT_FIELDS,
		[S_VISIT] = 12, [S_MERGE] = 3 };

	if (n != fields[s]) {
		return QINDEX_OK;
	}
	switch (s) {
	case S_EVENT:
		return apply_event(qi, f, st);
	case S_EVENT_AGAIN:
		return apply_event(qi, f, NULL);
	case S_VISIT:
		return apply_visit(qi, f);
	case S_MERGE:
		return apply_merge(qi, f);
	}
	return QINDEX_OK;
}

/* ------------------------------------------------------- turning off */

static void
free_sites(struct query_index *qi)
{
	for (size_t i = 0; i < qi->n_sites; i++) {
		free(qi->sites[i].site);
		qindex_free(qi->sites[i].ix);
	}
	free(qi->sites);
	qi->sites = NULL;
	qi->n_sites = 0;
}

/* Past the cap (or a dictionary's size): off for good, memory returned;
 * the caller holds the write lock or is the loader. */
static void
turn_off(struct query_index *qi, enum qindex_status why)
{
	log_error("query index turned off: %s; PostgreSQL answers every "
	    "query from now on (docs/operations.md, \"Memory\")",
	    why == QINDEX_TOO_MANY ? "a site has more than 4096 event names, "
	    "or 65535 device and browser pairs" : why == QINDEX_OUT_OF_RANGE ?
	    "an event's time is outside 1970 .. 2112" : qi->budget.max > 0 &&
	    qi->budget.used + (qi->budget.max >> 4) >= qi->budget.max ?
	    "it would take more than query_index_max_bytes" :
	    "memory ran out");
	free_sites(qi);
	atomic_store(&qi->state, STATE_OFF);
	atomic_fetch_add(&qi->turned_off, 1);
}

/* Compacts what has many pending events (all: everything, and fits the
 * tables, after the load); publishes the sizes. */
static enum qindex_status
settle(struct query_index *qi, bool all)
{
	size_t events = 0, people = 0, visits = 0;

	for (size_t i = 0; i < qi->n_sites; i++) {
		struct qindex_stats s;
		qindex_stats(qi->sites[i].ix, &s);
		if (s.pending > 0 && (all || (s.pending > 65536 &&
		    s.pending > s.events / 8))) {
			enum qindex_status st = qindex_compact(qi->sites[i].ix);
			if (st != QINDEX_OK) {
				return st;
			}
			if (all) {
				qindex_fit(qi->sites[i].ix);
			}
		}
		events += s.events;
		people += s.people;
		visits += s.visits;
	}
	atomic_store(&qi->bytes, qi->budget.used);
	atomic_store(&qi->events, events);
	atomic_store(&qi->people, people);
	atomic_store(&qi->visits, visits);
	return QINDEX_OK;
}

/* ---------------------------------------------------------- reading */

/* Runs one COPY of the load, applying each row as stream s. */
static bool
copy_rows(struct query_index *qi, PGconn *pg, const char *sql,
    enum stream s, enum qindex_status *status, struct error *err)
{
	struct pgcopy c;

	if (!pgcopy_begin(&c, pg, sql, err)) {
		return false;
	}
	while (pgcopy_next(&c, err)) {
		*status = apply_row(qi, s, c.field, c.n_fields, NULL);
		if (*status != QINDEX_OK) {
			pgcopy_end(&c);
			return false;
		}
	}
	return err->code == ERR_NONE;
}

static const struct statement *const statements[] = {
	&anything_new, &new_changes, &new_merges, &new_events,
	&region_people_events, &region_visits, &region_events_before,
	&region_visits_before,
};

/* Prepares the catch-up's statements on a connection that does not have
 * them yet (a new one, or one reset since), outside any transaction. */
static bool
prepare(PGconn *pg, struct error *err)
{
	size_t n = sizeof(statements) / sizeof(statements[0]);
	const char *last = statements[n - 1]->name;
	/* Asked of the catalogue rather than described: describing a
	 * statement that is not there logs an error in PostgreSQL's log. */
	PGresult *res = PQexecParams(pg, "SELECT 1 FROM pg_prepared_statements "
	    "WHERE name = $1", 1, NULL, &last, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

	PQclear(res);
	for (size_t i = 0; !ok && i < n; i++) {
		res = PQprepare(pg, statements[i]->name, statements[i]->sql,
		    statements[i]->n_params, NULL);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		/* 42P05: prepared before the one described last. */
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    (state == NULL || strcmp(state, "42P05") != 0)) {
			db_error_from_conn(pg, res, err);
			PQclear(res);
			return false;
		}
		PQclear(res);
	}
	return true;
}

/* Runs st (prepared) with binary results; NULL with err set. */
static PGresult *
run(PGconn *pg, const struct statement *st, const char *const *params,
    struct error *err)
{
	PGresult *res = PQexecPrepared(pg, st->name, st->n_params, params, NULL,
	    NULL, 1);

	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		return res;
	}
	db_error_from_conn(pg, res, err);
	PQclear(res);
	return NULL;
}

/* Runs st and keeps its rows in out as stream s. */
static bool
stage(PGconn *pg, const struct statement *st, const char *const *params,
    enum stream s, struct staging *out, struct error *err)
{
	PGresult *res = run(pg, st, params, err);
	struct staged *grown;

	if (res == NULL) {
		return false;
	}
	grown = realloc(out->results, (out->n + 1) * sizeof(*grown));
	if (grown == NULL) {
		PQclear(res);
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	out->results = grown;
	out->results[out->n++] = (struct staged){ res, s };
	out->rows += (size_t)PQntuples(res);
	return true;
}

/* Row r of a binary result as fields. */
static int
result_fields(const PGresult *res, int r, struct pgcopy_field *f)
{
	int n = PQnfields(res) < PGCOPY_FIELDS_MAX ? PQnfields(res) :
	    PGCOPY_FIELDS_MAX;

	for (int i = 0; i < n; i++) {
		f[i] = PQgetisnull(res, r, i) ? (struct pgcopy_field){ NULL, 0 } :
		    (struct pgcopy_field){ PQgetvalue(res, r, i),
		    (size_t)PQgetlength(res, r, i) };
	}
	return n;
}

static void
staging_finish(struct staging *st)
{
	for (size_t i = 0; i < st->n; i++) {
		PQclear(st->results[i].res);
	}
	free(st->results);
	for (size_t i = 0; i < st->n_regions; i++) {
		free(st->regions[i].site);
		free(st->regions[i].people);
		for (size_t k = 0; k < st->regions[i].n_sessions; k++) {
			free(st->regions[i].sessions[k]);
		}
		free(st->regions[i].sessions);
	}
	free(st->regions);
	memset(st, 0, sizeof(*st));
}

/* The changes since the last catch-up, one row per (change, person). */
static bool
read_changes(PGconn *pg, const char *const *params, struct staging *st,
    struct error *err)
{
	PGresult *res = run(pg, &new_changes, params, err);
	struct pgcopy_field f[PGCOPY_FIELDS_MAX];
	int64_t last = INT64_MIN;

	for (int row = 0; res != NULL && row < PQntuples(res); row++) {
		struct region *r;
		if (result_fields(res, row, f) != 6 || !pgcopy_fixed(&f[0], 8)) {
			continue;
		}
		if (pgcopy_int8(&f[0]) != last) {
			struct region *grown = realloc(st->regions,
			    (st->n_regions + 1) * sizeof(*grown));
			if (grown == NULL) {
				goto nomem;
			}
			st->regions = grown;
			r = &grown[st->n_regions++];
			memset(r, 0, sizeof(*r));
			r->events_before = INT64_MIN;
			r->visits_before = INT64_MIN;
			if (f[1].data != NULL &&
			    (r->site = strndup(f[1].data, f[1].len)) == NULL) {
				goto nomem;
			}
			if (pgcopy_fixed(&f[4], 8)) {
				r->events_before = pgcopy_time(&f[4]);
			}
			if (pgcopy_fixed(&f[5], 8)) {
				r->visits_before = pgcopy_time(&f[5]);
			}
			last = pgcopy_int8(&f[0]);
		}
		r = &st->regions[st->n_regions - 1];
		if (pgcopy_fixed(&f[2], 8)) {
			int64_t *grown = realloc(r->people, (r->n_people + 1) *
			    sizeof(*grown));
			if (grown == NULL) {
				goto nomem;
			}
			r->people = grown;
			r->people[r->n_people++] = pgcopy_int8(&f[2]);
		}
		if (f[3].data != NULL) {
			char **grown = realloc(r->sessions, (r->n_sessions + 1) *
			    sizeof(*grown));
			if (grown == NULL) {
				goto nomem;
			}
			r->sessions = grown;
			if ((r->sessions[r->n_sessions] = strndup(f[3].data,
			    f[3].len)) == NULL) {
				goto nomem;
			}
			r->n_sessions++;
		}
	}
	if (res == NULL) {
		return false;
	}
	PQclear(res);
	return true;
nomem:
	PQclear(res);
	error_set(err, ERR_INTERNAL, "out of memory");
	return false;
}

/* Reads each region's rows again, as they are in this snapshot. */
static bool
read_regions(PGconn *pg, struct staging *st, struct error *err)
{
	for (size_t i = 0; i < st->n_regions; i++) {
		const struct region *r = &st->regions[i];
		struct pgarray people, sessions;
		char before[TIMEUTIL_RFC3339_LEN] = "";
		bool ok;

		pgarray_init(&people);
		pgarray_init(&sessions);
		for (size_t k = 0; k < r->n_people; k++) {
			pgarray_add_int(&people, r->people[k]);
		}
		for (size_t k = 0; k < r->n_sessions; k++) {
			pgarray_add_text(&sessions, r->sessions[k]);
		}
		if (r->events_before != INT64_MIN) {
			timeutil_format_rfc3339(r->events_before, before);
		} else if (r->visits_before != INT64_MIN) {
			timeutil_format_rfc3339(r->visits_before, before);
		}
		const char *site = r->site != NULL ? r->site : "";
		const char *who[] = { site, pgarray_value(&people) };
		const char *which[] = { site, pgarray_value(&sessions) };
		const char *when[] = { site, before };
		ok = who[1] != NULL && which[1] != NULL &&
		    (r->n_people == 0 || stage(pg, &region_people_events, who,
		    S_EVENT_AGAIN, st, err)) &&
		    (r->n_sessions == 0 || stage(pg, &region_visits, which,
		    S_VISIT, st, err)) &&
		    (r->events_before == INT64_MIN || stage(pg,
		    &region_events_before, when, S_EVENT_AGAIN, st, err)) &&
		    (r->visits_before == INT64_MIN || stage(pg,
		    &region_visits_before, when, S_VISIT, st, err));
		if (!ok && err->code == ERR_NONE) {
			error_set(err, ERR_INTERNAL, "out of memory");
		}
		pgarray_finish(&people);
		pgarray_finish(&sessions);
		if (!ok) {
			return false;
		}
	}
	return true;
}

/* Session ids of one site, to read again. */
struct site_sessions {
	char *site;
	struct pgarray ids;
	char *last;		/* the last added, to skip runs of it */
};

/* Adds session (of len bytes) of site to the lists. */
static bool
add_session(struct site_sessions **lists, size_t *n,
    const struct pgcopy_field *site, const char *session)
{
	struct site_sessions *l = NULL, *grown;

	for (size_t i = 0; i < *n && l == NULL; i++) {
		if (strlen((*lists)[i].site) == site->len &&
		    memcmp((*lists)[i].site, site->data, site->len) == 0) {
			l = &(*lists)[i];
		}
	}
	if (l == NULL) {
		if ((grown = realloc(*lists, (*n + 1) * sizeof(*grown))) == NULL) {
			return false;
		}
		*lists = grown;
		l = &grown[(*n)++];
		memset(l, 0, sizeof(*l));
		pgarray_init(&l->ids);
		if ((l->site = strndup(site->data, site->len)) == NULL) {
			return false;
		}
	}
	if (l->last != NULL && strcmp(l->last, session) == 0) {
		return true;
	}
	free(l->last);
	l->last = strdup(session);
	pgarray_add_text(&l->ids, session);
	return l->last != NULL;
}

/* The visits a catch-up reads again: those of its new events that the
 * index does not hold, or that began after one of those events. A visit
 * changes what the index reads of it (its start, its landing and source)
 * only when an event earlier than its start arrives (migrations/0005,
 * milepost_store_people), or when it is new; its person changes with a
 * merge, which the index resolves itself. */
static bool
stage_visits(struct query_index *qi, PGconn *pg, struct staging *st,
    struct error *err)
{
	struct site_sessions *lists = NULL;
	size_t n_lists = 0;
	bool ok = true;

	pthread_rwlock_rdlock(&qi->lock);
	for (size_t i = 0; ok && i < st->n; i++) {
		const PGresult *res = st->results[i].res;
		struct pgcopy_field f[PGCOPY_FIELDS_MAX];
		if (st->results[i].stream != S_EVENT &&
		    st->results[i].stream != S_EVENT_AGAIN) {
			continue;
		}
		for (int row = 0; ok && row < PQntuples(res); row++) {
			static const int texts[] = { 5 };
			const struct qindex *ix = NULL;
			struct row_text text;
			const char *session;
			int64_t started;
			char *at;
			if (result_fields(res, row, f) != EVENT_FIELDS ||
			    f[0].data == NULL || f[5].data == NULL ||
			    !pgcopy_fixed(&f[2], 8)) {
				continue;
			}
			if ((at = row_text(&text, f, texts, 1)) == NULL) {
				ok = false;
				break;
			}
			session = field_text(&f[5], &at);
			for (size_t k = 0; k < qi->n_sites && ix == NULL; k++) {
				if (strlen(qi->sites[k].site) == f[0].len &&
				    memcmp(qi->sites[k].site, f[0].data, f[0].len) == 0) {
					ix = qi->sites[k].ix;
				}
			}
			if (ix == NULL || !qindex_visit_started(ix, session, &started) ||
			    pgcopy_time(&f[2]) < started) {
				ok = add_session(&lists, &n_lists, &f[0], session);
			}
			free(text.heap);
		}
	}
	pthread_rwlock_unlock(&qi->lock);
	for (size_t i = 0; i < n_lists; i++) {
		const char *params[] = { lists[i].site,
			pgarray_value(&lists[i].ids) };
		ok = ok && params[1] != NULL && stage(pg, &region_visits, params,
		    S_VISIT, st, err);
		free(lists[i].site);
		free(lists[i].last);
		pgarray_finish(&lists[i].ids);
	}
	free(lists);
	if (!ok && err->code == ERR_NONE) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
	return ok;
}

/* The regions forgotten, then every staged row, in one go. */
static enum qindex_status
apply_staging(struct query_index *qi, const struct staging *st)
{
	for (size_t i = 0; i < st->n_regions; i++) {
		const struct region *r = &st->regions[i];
		for (size_t s = 0; s < qi->n_sites; s++) {
			struct qindex *ix = qi->sites[s].ix;
			if (r->site != NULL && strcmp(r->site, qi->sites[s].site) != 0) {
				continue;
			}
			qindex_forget_people(ix, r->people, r->n_people);
			qindex_forget_visits(ix, (const char *const *)r->sessions,
			    r->n_sessions);
			if (r->events_before != INT64_MIN) {
				qindex_forget_events_before(ix, r->events_before);
			}
			if (r->visits_before != INT64_MIN) {
				qindex_forget_visits_started_before(ix,
				    r->visits_before);
			}
		}
	}
	/* Merges and visits before events: the order does not matter to the
	 * result, only to how often an event finds its visit at once. */
	for (int s = S_MERGE; s >= S_EVENT; s--) {
		for (size_t i = 0; i < st->n; i++) {
			const PGresult *res = st->results[i].res;
			struct pgcopy_field f[PGCOPY_FIELDS_MAX];
			if (st->results[i].stream != (enum stream)s) {
				continue;
			}
			for (int row = 0; row < PQntuples(res); row++) {
				int n = result_fields(res, row, f);
				enum qindex_status status = apply_row(qi,
				    (enum stream)s, f, n, st);
				if (status != QINDEX_OK) {
					return status;
				}
			}
		}
	}
	return settle(qi, false);
}

/* Begins a read-only snapshot transaction and answers its snapshot
 * (owned). */
static char *
begin_snapshot(PGconn *pg, struct error *err)
{
	PGresult *res;
	char *snap;

	if (!db_exec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0,
	    NULL, err)) {
		return NULL;
	}
	/* Reads of new rows are small and their generic plans' estimates
	 * are not: no JIT compilation (tens of milliseconds) for them. */
	res = db_query(pg, "SELECT pg_current_snapshot()::text,"
	    " set_config('jit', 'off', true)", 0, NULL, err);
	snap = res != NULL ? strdup(PQgetvalue(res, 0, 0)) : NULL;
	PQclear(res);
	if (snap == NULL && err->code == ERR_NONE) {
		error_set(err, ERR_INTERNAL, "out of memory");
	}
	return snap;
}

/* Whether anything is new since prev (anything_new); when not, its
 * snapshot into *snap (the caller frees it). False with err set. */
static bool
check_new(PGconn *pg, const char *const *prev, bool *any, char **snap,
    struct error *err)
{
	PGresult *res = run(pg, &anything_new, prev, err);

	if (res == NULL) {
		return false;
	}
	*any = PQgetlength(res, 0, 1) != 1 || *PQgetvalue(res, 0, 1) != 0;
	*snap = *any ? NULL : strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!*any && *snap == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	return true;
}

/* A snapshot's text is "xmin:xmax:id,id..." (PostgreSQL wrote it, so it
 * has both colons and fits): its xmax, for NEW_IN's $1 or $3. */
static void
snapshot_xmax(const char *snap, char xmax[static 24])
{
	const char *from = snap + strcspn(snap, ":");

	from += *from == ':';
	snprintf(xmax, 24, "%.*s", (int)strcspn(from, ":"), from);
}

/* Its running ids as an array literal, for NEW_IN's $2 (owned; NULL when
 * out of memory). */
static char *
snapshot_running(const char *snap)
{
	const char *from = strrchr(snap, ':');
	size_t len;
	char *running;

	from = from != NULL ? from + 1 : "";
	len = strlen(from);
	if ((running = malloc(len + 3)) != NULL) {
		snprintf(running, len + 3, "{%s}", from);
	}
	return running;
}

/* Catches up through pg; the caller holds sync and the index is ready. */
static bool
catch_up(struct query_index *qi, PGconn *pg, struct error *err)
{
	int64_t began = timeutil_monotonic_ns(), as_of = timeutil_now_us();
	struct staging st = { 0 };
	enum qindex_status status = QINDEX_OK;
	char xmax[24], upto[24] = "";
	char *snap = NULL, *running = snapshot_running(qi->snapshot);
	const char *prev[] = { xmax, running, upto };
	bool ok, any = true;

	snapshot_xmax(qi->snapshot, xmax);
	if (running == NULL) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	if (!prepare(pg, err) || !check_new(pg, prev, &any, &snap, err)) {
		free(running);
		return false;
	}
	if (!any) {
		goto published;
	}
	if ((snap = begin_snapshot(pg, err)) != NULL) {
		snapshot_xmax(snap, upto);
	}
	ok = snap != NULL && read_changes(pg, prev, &st, err) &&
	    read_regions(pg, &st, err) &&
	    stage(pg, &new_merges, prev, S_MERGE, &st, err) &&
	    stage(pg, &new_events, prev, S_EVENT, &st, err) &&
	    stage_visits(qi, pg, &st, err) &&
	    db_exec(pg, "COMMIT", 0, NULL, err);

	if (!ok) {
		struct error ignored_err;
		db_exec(pg, "ROLLBACK", 0, NULL, &ignored_err);
		free(snap);
		free(running);
		staging_finish(&st);
		return false;
	}
	pthread_rwlock_wrlock(&qi->lock);
	if (atomic_load(&qi->state) == STATE_READY) {
		status = apply_staging(qi, &st);
		if (status != QINDEX_OK) {
			turn_off(qi, status);
		}
	}
	pthread_rwlock_unlock(&qi->lock);
published:
	free(qi->snapshot);
	qi->snapshot = snap;
	qi->synced_mono_ns = began;
	atomic_store(&qi->as_of_us, as_of);
	atomic_fetch_add(&qi->catchups, 1);
	atomic_fetch_add(&qi->catchup_rows, st.rows);
	atomic_fetch_add(&qi->catchup_us, (unsigned long long)
	    ((timeutil_monotonic_ns() - began) / 1000));
	staging_finish(&st);
	free(running);
	return true;
}

/* glibc's malloc raises its mmap threshold (up to 32 MiB) each time it
 * frees a mapped block, so the load's outgrown arrays and hash tables,
 * freed as they double, come back from the heap and leave holes there
 * that stay resident: 9 MB at 21.6 M events, 0.4 bytes an event. During
 * the load a fixed 1 MiB threshold maps them and gives them back; after
 * it, the threshold and the trim the dynamic rule ends at, so that a
 * query's scratch memory below 32 MiB is reused, not faulted in anew. */
static void
heap_for_load(bool loading)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, loading ? 1 << 20 : 32 << 20);
	mallopt(M_TRIM_THRESHOLD, loading ? 2 << 20 : 64 << 20);
#else
	(void)loading;
#endif
}

/* The first load, in the ticker's thread; nobody reads meanwhile. */
static bool
load(struct query_index *qi, PGconn *pg, struct error *err)
{
	int64_t began = timeutil_monotonic_ns(), as_of = timeutil_now_us();
	enum qindex_status status = QINDEX_OK;
	char *snap;
	bool ok;

	heap_for_load(true);
	snap = begin_snapshot(pg, err);
	ok = snap != NULL &&
	    copy_rows(qi, pg, load_visits_sql, S_VISIT, &status, err) &&
	    copy_rows(qi, pg, load_merges_sql, S_MERGE, &status, err) &&
	    copy_rows(qi, pg, load_events_sql, S_EVENT, &status, err) &&
	    db_exec(pg, "COMMIT", 0, NULL, err);
	if (ok) {
		status = settle(qi, true);
	}
	heap_for_load(false);
	if (!ok || status != QINDEX_OK) {
		struct error ignored;
		db_exec(pg, "ROLLBACK", 0, NULL, &ignored);
		free(snap);
		if (status != QINDEX_OK) {
			turn_off(qi, status);
			return true;	/* done: off */
		}
		free_sites(qi);
		return false;
	}
	pthread_mutex_lock(&qi->sync);
	qi->snapshot = snap;
	qi->synced_mono_ns = began;
	atomic_store(&qi->as_of_us, as_of);
	pthread_mutex_unlock(&qi->sync);
	atomic_store(&qi->load_ms, (timeutil_monotonic_ns() - began) / 1000000);
	atomic_store(&qi->state, STATE_READY);
	log_info("query index loaded: %zu events of %zu people in %lld ms, "
	    "%zu bytes", atomic_load(&qi->events), atomic_load(&qi->people),
	    (long long)atomic_load(&qi->load_ms), atomic_load(&qi->bytes));
	return true;
}

/* ------------------------------------------------------------ ticker */

static void
tick(struct ticker *t, void *ctx)
{
	struct query_index *qi = ctx;
	struct error err;

	(void)t;
	error_clear(&err);
	if (atomic_load(&qi->state) == STATE_OFF) {
		return;
	}
	if (qi->own != NULL && PQstatus(qi->own) != CONNECTION_OK) {
		PQfinish(qi->own);
		qi->own = NULL;
	}
	if (qi->own == NULL &&
	    (qi->own = db_connect(qi->cfg->database_url, &err)) == NULL) {
		return;		/* PostgreSQL is not there yet: next tick */
	}
	if (atomic_load(&qi->state) == STATE_LOADING) {
		if (!load(qi, qi->own, &err)) {
			log_warn("query index: loading failed (%s); trying again",
			    err.message);
		}
		return;
	}
	/* Keeps the lag short and the work off the requests' path. */
	pthread_mutex_lock(&qi->sync);
	if (!catch_up(qi, qi->own, &err)) {
		log_warn("query index: catching up failed (%s)", err.message);
	}
	pthread_mutex_unlock(&qi->sync);
}

static long
tick_interval_s(void *ctx)
{
	(void)ctx;
	return 1;
}

struct query_index *
query_index_new(const struct config *cfg)
{
	struct query_index *qi;
	pthread_rwlockattr_t attr;

	if (!cfg->query_index || (qi = calloc(1, sizeof(*qi))) == NULL) {
		return NULL;
	}
	qi->cfg = cfg;
	qi->budget.max = (size_t)cfg->query_index_max_bytes;
	atomic_init(&qi->state, STATE_LOADING);
	pthread_rwlockattr_init(&attr);
	/* A catch-up must not wait behind an endless run of readers. */
	pthread_rwlockattr_setkind_np(&attr,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&qi->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&qi->sync, NULL);
	return qi;
}

bool
query_index_start(struct query_index *qi)
{
	struct error err;

	if (qi == NULL) {
		return true;
	}
	qi->ticker = ticker_new(tick, tick_interval_s, qi, &err);
	return qi->ticker != NULL;
}

void
query_index_free(struct query_index *qi)
{
	if (qi == NULL) {
		return;
	}
	ticker_free(qi->ticker);
	if (qi->own != NULL) {
		PQfinish(qi->own);
	}
	free_sites(qi);
	free(qi->snapshot);
	pthread_rwlock_destroy(&qi->lock);
	pthread_mutex_destroy(&qi->sync);
	free(qi);
}

/* ----------------------------------------------------------- reading */

void
query_index_acquire(struct query_index *qi, PGconn *pg, const char *site,
    struct query_index_read *r)
{
	int64_t asked = timeutil_monotonic_ns();
	struct pgcopy_field name;
	struct error err;
	bool fresh = true;

	memset(r, 0, sizeof(*r));
	error_clear(&err);
	if (qi == NULL || atomic_load(&qi->state) != STATE_READY) {
		r->why_not = qi == NULL ? "the query index is off "
		    "(query_index false)" : atomic_load(&qi->state) == STATE_OFF ?
		    "the query index was turned off at its memory cap" :
		    "the query index is still loading";
		return;
	}
	/* A catch-up that began after this call was made covers it. */
	pthread_mutex_lock(&qi->sync);
	if (qi->synced_mono_ns < asked) {
		fresh = catch_up(qi, pg, &err);
	}
	pthread_mutex_unlock(&qi->sync);
	if (!fresh) {
		r->why_not = "the query index could not catch up";
		log_warn("query index: catching up failed (%s)", err.message);
		return;
	}
	pthread_rwlock_rdlock(&qi->lock);
	if (atomic_load(&qi->state) != STATE_READY) {
		pthread_rwlock_unlock(&qi->lock);
		r->why_not = "the query index was turned off at its memory cap";
		return;
	}
	name = (struct pgcopy_field){ site, strlen(site) };
	for (size_t i = 0; i < qi->n_sites; i++) {
		if (strcmp(qi->sites[i].site, site) == 0) {
			r->ix = qi->sites[i].ix;
		}
	}
	if (r->ix == NULL) {
		/* A site with nothing stored yet: an empty index, added under
		 * the write lock. */
		pthread_rwlock_unlock(&qi->lock);
		pthread_rwlock_wrlock(&qi->lock);
		r->ix = atomic_load(&qi->state) == STATE_READY ?
		    site_index(qi, &name) : NULL;
		pthread_rwlock_unlock(&qi->lock);
		if (r->ix == NULL) {
			r->why_not = "the query index is out of memory";
			return;
		}
		pthread_rwlock_rdlock(&qi->lock);
		if (atomic_load(&qi->state) != STATE_READY) {
			pthread_rwlock_unlock(&qi->lock);
			r->ix = NULL;
			r->why_not = "the query index was turned off at its "
			    "memory cap";
			return;
		}
	}
	r->as_of = atomic_load(&qi->as_of_us);
}

void
query_index_release(struct query_index *qi, struct query_index_read *r)
{
	if (r->ix != NULL) {
		pthread_rwlock_unlock(&qi->lock);
		r->ix = NULL;
	}
}

void
query_index_count_answer(struct query_index *qi, bool from_index)
{
	if (qi != NULL) {
		atomic_fetch_add(from_index ? &qi->answers_index :
		    &qi->answers_sql, 1);
	}
}

void
query_index_metrics(struct query_index *qi, struct strbuf *out)
{
	int state = qi == NULL ? STATE_OFF : atomic_load(&qi->state);
	int64_t as_of = qi == NULL ? 0 : atomic_load(&qi->as_of_us);

	strbuf_appendf(out, "# HELP milepost_query_index_state 1 when the "
	    "query index answers queries, 2 while it loads, 0 when off.\n"
	    "# TYPE milepost_query_index_state gauge\n"
	    "milepost_query_index_state %d\n",
	    state == STATE_READY ? 1 : state == STATE_LOADING ? 2 : 0);
	if (qi == NULL) {
		return;
	}
	strbuf_appendf(out,
	    "# HELP milepost_query_index_bytes Memory the query index holds.\n"
	    "# TYPE milepost_query_index_bytes gauge\n"
	    "milepost_query_index_bytes %zu\n"
	    "# HELP milepost_query_index_events Events in the query index.\n"
	    "# TYPE milepost_query_index_events gauge\n"
	    "milepost_query_index_events %zu\n"
	    "# HELP milepost_query_index_people Person slots in the query "
	    "index (merged ones included).\n"
	    "# TYPE milepost_query_index_people gauge\n"
	    "milepost_query_index_people %zu\n"
	    "# HELP milepost_query_index_visits Visits in the query index.\n"
	    "# TYPE milepost_query_index_visits gauge\n"
	    "milepost_query_index_visits %zu\n"
	    "# HELP milepost_query_index_load_seconds How long the first "
	    "load took.\n"
	    "# TYPE milepost_query_index_load_seconds gauge\n"
	    "milepost_query_index_load_seconds %.3f\n"
	    "# HELP milepost_query_index_lag_seconds Time since the last "
	    "catch-up's snapshot (queries catch up before answering).\n"
	    "# TYPE milepost_query_index_lag_seconds gauge\n"
	    "milepost_query_index_lag_seconds %.3f\n"
	    "# HELP milepost_query_index_catchups_total Catch-ups with "
	    "PostgreSQL.\n"
	    "# TYPE milepost_query_index_catchups_total counter\n"
	    "milepost_query_index_catchups_total %llu\n"
	    "# HELP milepost_query_index_catchup_rows_total Rows read by "
	    "catch-ups.\n"
	    "# TYPE milepost_query_index_catchup_rows_total counter\n"
	    "milepost_query_index_catchup_rows_total %llu\n"
	    "# HELP milepost_query_index_catchup_seconds_total Time spent "
	    "catching up.\n"
	    "# TYPE milepost_query_index_catchup_seconds_total counter\n"
	    "milepost_query_index_catchup_seconds_total %.6f\n"
	    "# HELP milepost_query_index_turned_off_total Times the index was "
	    "turned off at query_index_max_bytes.\n"
	    "# TYPE milepost_query_index_turned_off_total counter\n"
	    "milepost_query_index_turned_off_total %llu\n"
	    "# HELP milepost_query_answers_total Query API answers by the "
	    "engine that gave them.\n"
	    "# TYPE milepost_query_answers_total counter\n"
	    "milepost_query_answers_total{engine=\"index\"} %llu\n"
	    "milepost_query_answers_total{engine=\"sql\"} %llu\n",
	    atomic_load(&qi->bytes), atomic_load(&qi->events),
	    atomic_load(&qi->people), atomic_load(&qi->visits),
	    (double)atomic_load(&qi->load_ms) / 1000,
	    as_of == 0 ? 0.0 : (double)(timeutil_now_us() - as_of) / 1e6,
	    atomic_load(&qi->catchups), atomic_load(&qi->catchup_rows),
	    (double)atomic_load(&qi->catchup_us) / 1e6,
	    atomic_load(&qi->turned_off), atomic_load(&qi->answers_index),
	    atomic_load(&qi->answers_sql));
}
