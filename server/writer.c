/* writer.c - group commit of events into PostgreSQL. */
#include "server/writer.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/event.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/copy_row.h"
#include "server/db.h"
#include "server/migrate.h"
#include "server/store.h"

/* An idle connection is checked this often, so that readiness follows the
 * database even without traffic. */
#define PING_INTERVAL_MS 1000
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 2000
#define MAINTENANCE_INTERVAL_MS (3600 * 1000)

/* Buckets of milepost_writer_batch_events, up to writer_batch_max_events'
 * largest value (one request's events may exceed it: a batch takes at
 * least one item). */
static const uint64_t batch_events_bounds[] = {
	1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000,
	50000, 100000,
};

/* Dedup, in three statements over the staged events (events_incoming:
 * the events rows and COPY_ROW_EVENT_DEDUP_COLUMNS).
 *
 * First the first event of each id in the batch claims the id in
 * event_ids, with its claim as the fingerprint; those whose claim
 * succeeded are kept. ORDER BY event_id makes concurrent writers take the
 * event_ids row locks in one order, so that two batches sharing retried
 * ids cannot deadlock. */
static const char claim_ids_sql[] =
    "WITH first AS ("
    " SELECT DISTINCT ON (site_id, event_id) batch_n, site_id, event_id,"
    " received_at, claim FROM events_incoming"
    " ORDER BY site_id, event_id, batch_n),"
    " fresh AS ("
    " INSERT INTO event_ids (" COPY_ROW_EVENT_ID_COLUMNS ")"
    " SELECT site_id, event_id, received_at, claim FROM first"
    " ORDER BY site_id, event_id"
    " ON CONFLICT DO NOTHING RETURNING site_id, event_id)"
    " UPDATE events_incoming i SET kept = true"
    " FROM first f JOIN fresh USING (site_id, event_id)"
    " WHERE i.batch_n = f.batch_n";

/* Then every other event whose claim differs from the one its id is
 * stored with (both known: ids recorded without one are not judged) is a
 * conflict: it goes to the rejected events, rebuilt from its row (the
 * row holds what the pipeline kept, so nothing it removed comes back),
 * without its id, so that a replay stores it under a new one. A statement
 * of its own, so that its snapshot holds the ids that concurrent writers
 * committed while claim_ids_sql waited on their rows. Answers the
 * conflicts' batch_n. */
#define CONFLICT_PAYLOAD_SQL \
    "(SELECT jsonb_object_agg(key, value)" \
    " FROM jsonb_each(jsonb_build_object(" \
    " 'type', CASE WHEN kind = '" EVENT_IDENTIFY_NAME "' THEN" \
    " '" EVENT_IDENTIFY_NAME "' END," \
    " 'name', CASE WHEN kind IS DISTINCT FROM '" EVENT_IDENTIFY_NAME "'" \
    " THEN name END," \
    " 'ts', ts, 'sent_at', sent_at, 'anonymous_id', anonymous_id," \
    " 'user_id', user_id, 'url', url, 'referrer', referrer," \
    " 'props', NULLIF(props, '{}'), 'consent', NULLIF(consent, '{}')," \
    " 'version', event_version," \
    " 'campaign', NULLIF(jsonb_strip_nulls(jsonb_build_object(" \
    " 'source', utm_source, 'medium', utm_medium, 'name', utm_campaign," \
    " 'term', utm_term, 'content', utm_content)), '{}')))" \
    " WHERE value <> 'null')"

static const char conflicts_sql[] =
    "WITH c AS ("
    " UPDATE events_incoming i SET conflict = true FROM event_ids x"
    " WHERE x.site_id = i.site_id AND x.event_id = i.event_id"
    " AND NOT i.kept AND i.claim <> x.fingerprint RETURNING i.*),"
    " r AS ("
    " INSERT INTO rejected_incoming (" COPY_ROW_REJECTED_COLUMNS ")"
    " SELECT site_id, received_at, request_id, event_index, "
    CONFLICT_PAYLOAD_SQL ","
    " jsonb_build_array(jsonb_build_object('code', 'duplicate_conflict',"
    " 'path', '$.event_id', 'message', 'event_id ' || event_id ||"
    " ' " COPY_ROW_CONFLICT_MESSAGE "')),"
    " name, '{duplicate_conflict}', false, NULL, '{}', '{}' FROM c)"
    " SELECT batch_n FROM c";

/* Last, what is kept is new. */
static const char insert_incoming_sql[] =
    "INSERT INTO events (" COPY_ROW_EVENT_COLUMNS ", "
    COPY_ROW_EVENT_PEOPLE_COLUMNS ") SELECT " COPY_ROW_EVENT_COLUMNS ", "
    COPY_ROW_EVENT_PEOPLE_COLUMNS " FROM events_incoming WHERE kept"
    /* An id resent after the dedup window forgot it, with its own ts. */
    " ON CONFLICT DO NOTHING";

/* The people step (server/people.h): the lookup's links, then each
 * looked-up event's person and the stored session its stream may
 * continue; after the events, the sessions and first times. Each takes
 * the batch's rows as arrays (migrations/0005_people_writer.sql), and is
 * prepared once per connection. */
enum people_stmt { PEOPLE_LINK, PEOPLE_RESOLVE, PEOPLE_STORE, PEOPLE_STMTS };

static const struct {
	const char *name, *sql;
	int n_params;
} people_stmts[PEOPLE_STMTS] = {
	[PEOPLE_LINK] = { "milepost_link",
	    "SELECT linked, merged, refused"
	    " FROM milepost_link_people($1, $2, $3, $4, $5, $6, $7)",
	    PEOPLE_LOOKUP_PARAMS },
	[PEOPLE_RESOLVE] = { "milepost_resolve",
	    "SELECT n, person_id, anon_person, session_id,"
	    " (extract(epoch FROM started_at) * 1000000)::int8,"
	    " (extract(epoch FROM last_at) * 1000000)::int8, source_key"
	    " FROM milepost_resolve_people($1, $2, $3, $4, $5, $6, $7)",
	    PEOPLE_LOOKUP_PARAMS },
	[PEOPLE_STORE] = { "milepost_store",
	    "SELECT milepost_store_people($1, $2, $3, $4, $5, $6, $7, $8,"
	    " $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,"
	    " $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)",
	    PEOPLE_STORE_PARAMS },
};
_Static_assert(PEOPLE_LOOKUP_PARAMS == 7, "people_stmts");
_Static_assert(PEOPLE_STORE_PARAMS == 32, "people_stmts");

/* With dedup, the events the people step leaves out. */
static const char stored_ids_sql[] =
    "SELECT x.site_id, x.event_id"
    " FROM unnest($1::text[], $2::uuid[]) AS u(site_id, event_id)"
    " JOIN event_ids x ON x.site_id = u.site_id AND x.event_id = u.event_id";

/* Rejected rows go through staging so that a spooled request replayed
 * after its commit adds none twice (migrations/0013_rejected_once.sql). */
static const char insert_rejected_sql[] =
    "INSERT INTO rejected_events (" COPY_ROW_REJECTED_COLUMNS ")"
    " SELECT " COPY_ROW_REJECTED_COLUMNS " FROM rejected_incoming"
    " ON CONFLICT (site_id, request_id, event_index, received_at)"
    " DO NOTHING";

/* A replayed event and the mark on its rejected row commit together, so
 * that a replay stores each event once even if it is interrupted. */
static const char mark_replayed_sql[] =
    "UPDATE rejected_events r"
    " SET replayed_at = now(), replayed_event_id = x.event_id"
    " FROM replayed_incoming x"
    " WHERE r.site_id = x.site_id AND r.id = x.rejected_id"
    " AND r.replayed_at IS NULL"
    /* Not if dedup kept its new copy aside as a conflict. */
    " AND NOT EXISTS (SELECT 1 FROM events_incoming i WHERE i.conflict"
    " AND i.site_id = x.site_id AND i.event_id = x.event_id)";

struct writer_conn {
	struct writer *w;
	size_t index;
	pthread_t thread;
	PGconn *pg;		/* NULL when disconnected; this thread's only */
	int32_t *known_months;	/* partitions known to exist */
	size_t n_known, cap_known;
	int64_t next_maintenance_ms;
};

struct writer {
	const struct config *cfg;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* Guarded by mu. */
	struct writer_item *head, *tail;
	size_t queued_events;
	size_t n_connected;
	bool stopping;
	/* Fixed after writer_new. */
	struct people_cache *people;	/* shared by the threads */
	struct writer_conn *conns;
	size_t n_conns;
	size_t n_started;
	/* Measured by the threads, read by writer_metrics_get. */
	atomic_ullong deduplicated;
	atomic_ullong duplicate_conflicts;
	struct histogram batch_events;
	struct histogram commit_seconds;
};

void
writer_item_init(struct writer_item *item)
{
	memset(item, 0, sizeof(*item));
	strbuf_init(&item->events);
	strbuf_init(&item->event_ids);
	strbuf_init(&item->rejected);
	strbuf_init(&item->replayed);
	strbuf_init(&item->people_text);
}

void
writer_item_finish(struct writer_item *item)
{
	strbuf_finish(&item->events);
	strbuf_finish(&item->event_ids);
	strbuf_finish(&item->rejected);
	strbuf_finish(&item->replayed);
	strbuf_finish(&item->people_text);
	free(item->people);
	item->people = NULL;
	item->n_people = item->cap_people = 0;
	free(item->months);
	item->months = NULL;
	item->n_months = item->cap_months = 0;
	free(item->conflicts);
	item->conflicts = NULL;
	item->n_conflicts = item->cap_conflicts = 0;
}

/* Adds m to the small set (*v, *n, *cap); false when out of memory. */
static bool
month_set_add(int32_t **v, size_t *n, size_t *cap, int32_t m)
{
	int32_t *grown;

	for (size_t i = 0; i < *n; i++) {
		if ((*v)[i] == m) {
			return true;
		}
	}
	if (*n == *cap) {
		size_t cap2 = *cap != 0 ? *cap * 2 : 4;
		grown = realloc(*v, cap2 * sizeof(**v));
		if (grown == NULL) {
			return false;
		}
		*v = grown;
		*cap = cap2;
	}
	(*v)[(*n)++] = m;
	return true;
}

bool
writer_item_add_month(struct writer_item *item, int32_t month)
{
	return month_set_add(&item->months, &item->n_months,
	    &item->cap_months, month);
}

static void
complete(struct writer_item *list, enum writer_status status)
{
	while (list != NULL) {
		struct writer_item *next = list->next;
		if (status != WRITER_PENDING) {
			list->status = status;
		}
		list->done(list, list->arg);
		list = next;
	}
}

/* Detaches the whole queue; call with mu held. */
static struct writer_item *
queue_take_all(struct writer *w)
{
	struct writer_item *all = w->head;

	w->head = w->tail = NULL;
	w->queued_events = 0;
	return all;
}

/* Detaches items up to the batch size (at least one); call with mu held. */
static struct writer_item *
queue_take_batch(struct writer *w)
{
	struct writer_item *first = w->head, *last = first;
	size_t events = first->n_events;

	while (last->next != NULL && events + last->next->n_events <=
	    (size_t)w->cfg->writer_batch_max_events) {
		last = last->next;
		events += last->n_events;
	}
	w->head = last->next;
	if (w->head == NULL) {
		w->tail = NULL;
	}
	last->next = NULL;
	w->queued_events -= events;
	return first;
}

static void
deadline_after_ms(struct timespec *ts, int64_t abs_ms)
{
	ts->tv_sec = abs_ms / 1000;
	ts->tv_nsec = (long)(abs_ms % 1000) * 1000000L;
}

/* Waits on the condition until the monotonic time abs_ms; mu held. */
static void
wait_until_ms(struct writer *w, int64_t abs_ms)
{
	struct timespec ts;

	deadline_after_ms(&ts, abs_ms);
	pthread_cond_timedwait(&w->cond, &w->mu, &ts);
}

static bool
conn_open(struct writer_conn *wc, struct error *err)
{
	const struct config *cfg = wc->w->cfg;
	char timeout_s[24], cap[24];
	const char *settings[] = { timeout_s, cap };
	int version = 0;
	PGconn *pg;

	pg = db_connect(cfg->database_url, err);
	if (pg == NULL) {
		return false;
	}
	if (!migrate_current_version(pg, &version, err)) {
		goto fail;
	}
	if (version < migrate_latest_version()) {
		error_set(err, ERR_DATABASE_UNAVAILABLE, "schema is at version "
		    "%d, this binary needs %d: run milepost migrate", version,
		    migrate_latest_version());
		goto fail;
	}
	/* What the people functions read from the connection's settings. */
	snprintf(timeout_s, sizeof(timeout_s), "%ld",
	    cfg->session_timeout_min * 60);
	snprintf(cap, sizeof(cap), "%ld", cfg->max_anonymous_ids_per_user);
	/* Session-local staging of a batch that needs dedup, of rejected
	 * rows and of a replay's marks. Rows vanish at each commit. */
	if (!db_exec(pg, "SELECT set_config('milepost.session_timeout_s', "
	    "$1, false), set_config('milepost.max_anonymous_ids', $2, false)",
	    2, settings, err) ||
	    !db_exec(pg, "CREATE TEMP TABLE events_incoming (LIKE events "
	    "INCLUDING DEFAULTS, batch_n int, claim bytea, request_id text, "
	    "event_index int, kept bool NOT NULL DEFAULT false, conflict "
	    "bool NOT NULL DEFAULT false) ON COMMIT DELETE ROWS", 0, NULL,
	    err) ||
	    !db_exec(pg, "CREATE TEMP TABLE rejected_incoming ON COMMIT "
	    "DELETE ROWS AS SELECT " COPY_ROW_REJECTED_COLUMNS " FROM "
	    "rejected_events WITH NO DATA", 0, NULL, err) ||
	    !db_exec(pg, "CREATE TEMP TABLE replayed_incoming (site_id text, "
	    "rejected_id bigint, event_id uuid) ON COMMIT DELETE ROWS", 0,
	    NULL, err)) {
		goto fail;
	}
	for (size_t i = 0; i < PEOPLE_STMTS; i++) {
		PGresult *res = PQprepare(pg, people_stmts[i].name,
		    people_stmts[i].sql, people_stmts[i].n_params, NULL);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok) {
			db_error_from_conn(pg, res, err);
		}
		PQclear(res);
		if (!ok) {
			goto fail;
		}
	}
	wc->pg = pg;
	wc->n_known = 0;
	return true;
fail:
	PQfinish(pg);
	return false;
}

/* Marks this connection lost; fails the queue when no writer is left. */
static void
conn_lost(struct writer_conn *wc)
{
	struct writer *w = wc->w;
	struct writer_item *orphans = NULL;

	PQfinish(wc->pg);
	wc->pg = NULL;
	pthread_mutex_lock(&w->mu);
	w->n_connected--;
	if (w->n_connected == 0) {
		orphans = queue_take_all(w);
	}
	pthread_mutex_unlock(&w->mu);
	complete(orphans, WRITER_UNAVAILABLE);
}

/* Which rows a COPY sends: the items' own, or the people step's events. */
enum rows {
	ROWS_EVENT_IDS,
	ROWS_REJECTED,
	ROWS_REPLAYED,
	ROWS_EVENTS,
};
#define MAX_COPIES 4

static const struct strbuf *
rows_of_item(const struct writer_item *it, enum rows rows)
{
	switch (rows) {
	case ROWS_EVENT_IDS: return &it->event_ids;
	case ROWS_REJECTED: return &it->rejected;
	default: return &it->replayed;
	}
}

static bool
copy_put(PGconn *pg, const struct strbuf *sb)
{
	return sb->len == 0 || PQputCopyData(pg, sb->data, (int)sb->len) == 1;
}

/* Streams the chosen rows into the COPY the server asked for, and ends
 * it. */
static bool
copy_send(PGconn *pg, const struct writer_item *items,
    const struct people_batch *b, enum rows rows)
{
	if (rows == ROWS_EVENTS) {
		if (!copy_put(pg, people_batch_events(b))) {
			return false;
		}
	} else {
		for (const struct writer_item *it = items; it != NULL;
		    it = it->next) {
			if (!copy_put(pg, rows_of_item(it, rows))) {
				return false;
			}
		}
	}
	return PQputCopyEnd(pg, NULL) == 1;
}

static bool
ensure_partitions(struct writer_conn *wc, struct writer_item *items,
    struct error *err)
{
	for (struct writer_item *it = items; it != NULL; it = it->next) {
		for (size_t i = 0; i < it->n_months; i++) {
			int32_t m = it->months[i];
			bool known = false;
			for (size_t j = 0; j < wc->n_known && !known; j++) {
				known = wc->known_months[j] == m;
			}
			if (known) {
				continue;
			}
			if (!store_ensure_partition(wc->pg, m, err)) {
				return false;
			}
			if (!month_set_add(&wc->known_months, &wc->n_known,
			    &wc->cap_known, m)) {
				error_set(err, ERR_NOMEM, "out of memory");
				return false;
			}
		}
	}
	return true;
}

/* A script of SQL statements, sent as one simple query so that it costs
 * one round trip plus the rows rather than one per statement: PostgreSQL
 * asks for each COPY's data in turn. Only constant SQL goes in; values
 * travel as COPY rows. */
struct script {
	struct strbuf sql;
	size_t n_stmts;
	enum rows copies[MAX_COPIES];	/* the rows each COPY takes, in order */
	size_t n_copies;
	/* With dedup: which statements (numbered from 1) insert the kept
	 * events and answer the conflicts; the events staged, and what those
	 * two statements counted. */
	size_t insert_stmt, conflicts_stmt;
	unsigned long long staged, inserted, conflicts;
};

/* Appends one statement. */
static void
script_add(struct script *sc, const char *sql)
{
	strbuf_append_str(&sc->sql, sql);
	strbuf_append_char(&sc->sql, ';');
	sc->n_stmts++;
}

/* Empties sc for the next round trip. */
static void
script_reset(struct script *sc)
{
	strbuf_reset(&sc->sql);
	sc->n_stmts = sc->n_copies = 0;
	sc->insert_stmt = sc->conflicts_stmt = 0;
}

static void
script_copy(struct script *sc, const char *sql, enum rows rows)
{
	script_add(sc, sql);
	sc->copies[sc->n_copies++] = rows;
}

/* The rest of the transaction for items, once their people are decided:
 * the event ids with a plain COPY and the events with another, or, with
 * dedup, through the staging table and the statements that keep the new
 * ids and set the conflicts aside; rejected and replayed rows; COMMIT,
 * unless the sessions and first times follow (store_and_commit). */
static void
transaction_script(const struct writer_item *items,
    const struct people_batch *b, bool dedup, bool began, struct script *sc)
{
	bool any_events = false, any_ids = false, any_rejected = false;
	bool any_replayed = false;

	for (const struct writer_item *it = items; it != NULL; it = it->next) {
		any_events = any_events || it->n_events > 0;
		any_ids = any_ids || it->event_ids.len > 0;
		any_rejected = any_rejected || it->n_rejected > 0;
		any_replayed = any_replayed || it->replayed.len > 0;
	}
	if (!began) {
		script_add(sc, "BEGIN");
	}
	if (any_events && dedup) {
		script_copy(sc, "COPY events_incoming (" COPY_ROW_EVENT_COLUMNS
		    ", " COPY_ROW_EVENT_PEOPLE_COLUMNS ", "
		    COPY_ROW_EVENT_DEDUP_COLUMNS ") FROM STDIN", ROWS_EVENTS);
		script_add(sc, claim_ids_sql);
		script_add(sc, conflicts_sql);
		sc->conflicts_stmt = sc->n_stmts;
		script_add(sc, insert_incoming_sql);
		sc->insert_stmt = sc->n_stmts;
	} else if (any_events) {
		if (any_ids) {
			script_copy(sc, "COPY event_ids ("
			    COPY_ROW_EVENT_ID_COLUMNS ") FROM STDIN",
			    ROWS_EVENT_IDS);
		}
		script_copy(sc, "COPY events (" COPY_ROW_EVENT_COLUMNS ", "
		    COPY_ROW_EVENT_PEOPLE_COLUMNS ") FROM STDIN", ROWS_EVENTS);
	}
	if (any_rejected) {
		script_copy(sc, "COPY rejected_incoming ("
		    COPY_ROW_REJECTED_COLUMNS ") FROM STDIN", ROWS_REJECTED);
	}
	/* Dedup's conflicts are rejected rows too. */
	if (any_rejected || (any_events && dedup)) {
		script_add(sc, insert_rejected_sql);
	}
	if (any_replayed) {
		script_copy(sc, "COPY replayed_incoming ("
		    COPY_ROW_REPLAYED_COLUMNS ") FROM STDIN", ROWS_REPLAYED);
		script_add(sc, mark_replayed_sql);
	}
	if (!people_batch_needs_store(b)) {
		script_add(sc, "COMMIT");
	}
}

/* Why a transaction failed, when trying again can help. */
enum write_failure {
	FAILURE_OTHER,
	FAILURE_DUPLICATE,	/* an event id was already stored */
	FAILURE_CONFLICT,	/* deadlock or serialization failure */
};

static enum write_failure
failure_of(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (state == NULL) {
		return FAILURE_OTHER;
	}
	if (strcmp(state, "23505") == 0) {
		return FAILURE_DUPLICATE;
	}
	return strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0 ?
	    FAILURE_CONFLICT : FAILURE_OTHER;
}

/* Counts the rows dedup compares: the events' COPY (the last COPY
 * started, copied) and the INSERT that keeps the new ones, statement
 * stmt of sc. */
static void
count_rows(struct script *sc, PGresult *res, size_t copied, size_t stmt)
{
	unsigned long long n = strtoull(PQcmdTuples(res), NULL, 10);

	if (strncmp(PQcmdStatus(res), "COPY ", 5) == 0 && copied > 0 &&
	    sc->copies[copied - 1] == ROWS_EVENTS) {
		sc->staged += n;
	} else if (stmt == sc->insert_stmt) {
		sc->inserted += n;
	}
}

/* Records on their items the conflicts dedup answered (rows of batch_n,
 * the events' numbers in the batch). */
static void
note_conflicts(struct writer_item *items, struct script *sc,
    const PGresult *res)
{
	for (int r = 0; r < PQntuples(res); r++) {
		size_t n = (size_t)strtoull(PQgetvalue(res, r, 0), NULL, 10);
		struct writer_item *it = items;
		while (it != NULL && n >= it->n_people) {
			n -= it->n_people;
			it = it->next;
		}
		if (it == NULL) {
			continue;
		}
		sc->conflicts++;
		if (it->n_conflicts == it->cap_conflicts) {
			size_t cap = it->cap_conflicts > 0 ?
			    it->cap_conflicts * 2 : 4;
			size_t *grown = realloc(it->conflicts,
			    cap * sizeof(*grown));
			if (grown == NULL) {
				/* Only the answer's detail is lost: the
				 * rejected row is written. */
				continue;
			}
			it->conflicts = grown;
			it->cap_conflicts = cap;
		}
		it->conflicts[it->n_conflicts++] = it->people[n].index;
	}
}

/* Reads every result of the command sent, also after an error, so that
 * the connection is idle again before the next one: feeds sc's COPYs
 * (sc NULL: the command has none) and, for the people lookup, hands its
 * rows to the people step. *failure says why it failed. */
static bool
take_results(struct writer_conn *wc, struct writer_item *items,
    struct people_batch *b, struct script *sc, bool lookup,
    enum write_failure *failure, struct error *err)
{
	size_t next = 0, n_copies = sc != NULL ? sc->n_copies : 0, stmt = 0;
	PGresult *res;
	bool ok = true;

	while ((res = PQgetResult(wc->pg)) != NULL) {
		switch (PQresultStatus(res)) {
		case PGRES_COPY_IN:
			if (!ok || next == n_copies ||
			    !copy_send(wc->pg, items, b, sc->copies[next])) {
				PQputCopyEnd(wc->pg, "copy abandoned");
			}
			next++;
			break;
		case PGRES_COMMAND_OK:
			stmt++;
			if (sc != NULL) {
				count_rows(sc, res, next, stmt);
			}
			break;
		case PGRES_TUPLES_OK:
			stmt++;
			if (sc != NULL && stmt == sc->conflicts_stmt) {
				note_conflicts(items, sc, res);
			}
			if (ok && lookup && !people_batch_take_result(b, res)) {
				error_set(err, ERR_INTERNAL, "unexpected answer "
				    "from the people lookup");
				ok = false;
			}
			break;
		default:
			if (ok) {
				*failure = failure_of(res);
				db_error_from_conn(wc->pg, res, err);
				ok = false;
			}
			break;
		}
		PQclear(res);
	}
	return ok;
}

/* Runs sc as one simple query, one round trip for all its statements. */
static bool
script_run(struct writer_conn *wc, struct writer_item *items,
    struct people_batch *b, struct script *sc,
    enum write_failure *failure, struct error *err)
{
	if (strbuf_failed(&sc->sql)) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	if (PQsendQuery(wc->pg, sc->sql.data) != 1) {
		db_error_from_conn(wc->pg, NULL, err);
		return false;
	}
	return take_results(wc, items, b, sc, false, failure, err);
}

/* Runs one statement of the people lookup with the lookup's parameters,
 * handing its rows to the people step. */
static bool
lookup_run(struct writer_conn *wc, struct people_batch *b,
    enum people_stmt stmt, const char *const *values,
    enum write_failure *failure, struct error *err)
{
	if (PQsendQueryPrepared(wc->pg, people_stmts[stmt].name,
	    people_stmts[stmt].n_params, values, NULL, NULL, 0) != 1) {
		db_error_from_conn(wc->pg, NULL, err);
		return false;
	}
	return take_results(wc, NULL, b, NULL, true, failure, err);
}

/* Stores the batch's sessions and first times and commits, in one round
 * trip (libpq's pipeline mode): the session rows it updates stay locked
 * until the commit, so no other writer should wait on a round trip. */
static bool
store_and_commit(struct writer_conn *wc, struct people_batch *b,
    enum write_failure *failure, struct error *err)
{
	const char *values[PEOPLE_STORE_PARAMS] = { 0 };
	PGconn *pg = wc->pg;
	bool ok;

	if (!people_batch_store_params(b, values)) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	if (PQenterPipelineMode(pg) != 1) {
		db_error_from_conn(pg, NULL, err);
		return false;
	}
	ok = PQsendQueryPrepared(pg, people_stmts[PEOPLE_STORE].name,
	    PEOPLE_STORE_PARAMS, values, NULL, NULL, 0) == 1 &&
	    PQsendQueryParams(pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1;
	if (!ok) {
		db_error_from_conn(pg, NULL, err);
	}
	/* Even after a failed send, so that what was queued is answered and
	 * the connection leaves pipeline mode idle. */
	if (PQpipelineSync(pg) != 1) {
		db_error_from_conn(pg, NULL, err);
		return false;
	}
	ok = ok && take_results(wc, NULL, b, NULL, false, failure, err) &&
	    take_results(wc, NULL, b, NULL, false, failure, err);
	/* Up to the sync point, the results not read above (NULL ends
	 * each statement's). */
	for (;;) {
		PGresult *res = PQgetResult(pg);
		if (res == NULL) {
			if (PQstatus(pg) != CONNECTION_OK) {
				return false;
			}
			continue;
		}
		bool synced = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
		PQclear(res);
		if (synced) {
			break;
		}
	}
	if (PQexitPipelineMode(pg) != 1) {
		db_error_from_conn(pg, NULL, err);
		return false;
	}
	return ok;
}

/* Refused links are worth an operator's attention: a shared device, or an
 * identity explosion the cap stopped. */
static void
note_links(const struct writer_conn *wc, const struct people_batch *b)
{
	long refused = people_batch_refused(b);

	if (refused > 0) {
		log_warn("writer %zu: %ld identity link(s) refused (the "
		    "anonymous id belongs to another user, or the user reached "
		    "max_anonymous_ids_per_user)", wc->index, refused);
	}
}

/* With dedup: which of the items' events are stored already (*out, rows
 * of site_id and event_id, for people_batch_new). */
static bool
stored_event_ids(struct writer_conn *wc, const struct writer_item *items,
    PGresult **out, struct error *err)
{
	struct pgarray cols[2];
	bool ok = false;

	pgarray_init(&cols[0]);
	pgarray_init(&cols[1]);
	if (!people_event_ids(items, cols)) {
		error_set(err, ERR_NOMEM, "out of memory");
		goto done;
	}
	const char *values[] = { pgarray_value(&cols[0]),
		pgarray_value(&cols[1]) };
	*out = db_query(wc->pg, stored_ids_sql, 2, values, err);
	ok = *out != NULL;
done:
	pgarray_finish(&cols[0]);
	pgarray_finish(&cols[1]);
	return ok;
}

/* Writes items in one transaction: first, when the people cache does not
 * know every event's person and session, the people lookup; then the
 * rest (transaction_script), and the sessions and first times. */
static bool
write_items(struct writer_conn *wc, struct writer_item *items, bool dedup,
    enum write_failure *failure, struct error *err)
{
	const struct config *cfg = wc->w->cfg;
	struct people_batch *b;
	struct script sc = { 0 };
	struct error ignored;
	const char *lookup[PEOPLE_LOOKUP_PARAMS] = { 0 };
	PGresult *stored = NULL;
	bool began = false, ok = false;

	*failure = FAILURE_OTHER;
	/* What an earlier attempt found did not commit. */
	for (struct writer_item *it = items; it != NULL; it = it->next) {
		it->n_conflicts = 0;
	}
	if (!ensure_partitions(wc, items, err)) {
		return false;
	}
	if (dedup && !stored_event_ids(wc, items, &stored, err)) {
		return false;
	}
	b = people_batch_new(items, wc->w->people,
	    (int64_t)cfg->session_timeout_min * 60 * 1000000, stored);
	PQclear(stored);
	if (b == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	strbuf_init(&sc.sql);
	if (people_batch_needs_lookup(b)) {
		if (!people_batch_lookup_params(b, lookup)) {
			error_set(err, ERR_NOMEM, "out of memory");
			goto done;
		}
		script_add(&sc, "BEGIN");
		began = true;
		if (!script_run(wc, items, b, &sc, failure, err) ||
		    !lookup_run(wc, b, PEOPLE_LINK, lookup, failure, err) ||
		    !lookup_run(wc, b, PEOPLE_RESOLVE, lookup, failure, err)) {
			goto done;
		}
		script_reset(&sc);
	}
	if (!people_batch_decide(b)) {
		error_set(err, ERR_NOMEM, "out of memory");
		goto done;
	}
	transaction_script(items, b, dedup, began, &sc);
	if (sc.sql.len > 0 && !script_run(wc, items, b, &sc, failure, err)) {
		goto done;
	}
	if (people_batch_needs_store(b) &&
	    !store_and_commit(wc, b, failure, err)) {
		goto done;
	}
	ok = true;
	note_links(wc, b);
	people_batch_committed(b);
	if (dedup && sc.staged > sc.inserted + sc.conflicts) {
		atomic_fetch_add(&wc->w->deduplicated,
		    sc.staged - sc.inserted - sc.conflicts);
	}
	atomic_fetch_add(&wc->w->duplicate_conflicts, sc.conflicts);
done:
	if (!ok && PQstatus(wc->pg) == CONNECTION_OK &&
	    PQtransactionStatus(wc->pg) != PQTRANS_IDLE) {
		db_exec(wc->pg, "ROLLBACK", 0, NULL, &ignored);
	}
	strbuf_finish(&sc.sql);
	people_batch_free(b);
	return ok;
}

/* Writes items, through dedup when an id was stored before, and once more
 * when another writer's transaction got in the way. */
static bool
write_with_retries(struct writer_conn *wc, struct writer_item *items,
    struct error *err)
{
	enum write_failure failure;
	bool dedup = false;

	for (int attempt = 0; attempt < 3; attempt++) {
		if (write_items(wc, items, dedup, &failure, err)) {
			return true;
		}
		if (PQstatus(wc->pg) != CONNECTION_OK ||
		    failure == FAILURE_OTHER ||
		    (failure == FAILURE_DUPLICATE && dedup)) {
			return false;
		}
		dedup = dedup || failure == FAILURE_DUPLICATE;
	}
	return false;
}

/* Measures a committed batch (before its items are completed: done may
 * free them). */
static void
note_commit(struct writer *w, const struct writer_item *batch,
    int64_t started_ns)
{
	uint64_t events = 0;

	for (const struct writer_item *it = batch; it != NULL; it = it->next) {
		events += it->n_events;
	}
	histogram_observe(&w->batch_events, events);
	histogram_observe(&w->commit_seconds,
	    (uint64_t)(timeutil_monotonic_ns() - started_ns));
}

/* Writes a batch and completes its items. When PostgreSQL refuses the
 * batch but keeps the connection, the items are retried one by one so that
 * one bad request cannot fail the others. */
static void
write_batch(struct writer_conn *wc, struct writer_item *batch)
{
	struct error err = { 0 };
	int64_t started_ns = timeutil_monotonic_ns();

	if (write_with_retries(wc, batch, &err)) {
		note_commit(wc->w, batch, started_ns);
		complete(batch, WRITER_COMMITTED);
		return;
	}
	if (PQstatus(wc->pg) != CONNECTION_OK) {
		log_warn("writer %zu lost the database: %s", wc->index,
		    err.message);
		conn_lost(wc);
		complete(batch, WRITER_UNAVAILABLE);
		return;
	}
	if (batch->next == NULL) {
		log_error("writer %zu: request refused by PostgreSQL: %s",
		    wc->index, err.message);
		complete(batch, WRITER_FAILED);
		return;
	}
	log_warn("writer %zu: batch failed (%s); retrying its requests one "
	    "by one", wc->index, err.message);
	while (batch != NULL) {
		struct writer_item *next = batch->next;
		batch->next = NULL;
		write_batch(wc, batch);
		batch = next;
		if (wc->pg == NULL) {
			complete(batch, WRITER_UNAVAILABLE);
			return;
		}
	}
}

/* Hourly upkeep, on the first writer only: partitions ahead, dedup window,
 * retention. */
static void
maintain(struct writer_conn *wc)
{
	const struct config *cfg = wc->w->cfg;
	struct store_retention kept;
	struct error err = { 0 };
	long deleted = 0;

	if (wc->index != 0 || timeutil_monotonic_ms() < wc->next_maintenance_ms) {
		return;
	}
	wc->next_maintenance_ms = timeutil_monotonic_ms() +
	    MAINTENANCE_INTERVAL_MS;
	if (!store_ensure_partitions_ahead(wc->pg, timeutil_now_us(),
	    cfg->partitions_ahead_months, &err) ||
	    !store_prune_event_ids(wc->pg, cfg->dedup_window_hours, &deleted,
	    &err) || !store_apply_retention(wc->pg, cfg, &kept, &err)) {
		log_warn("maintenance failed: %s", err.message);
		return;
	}
	/* Retention may have deleted sessions and first times it knows. */
	writer_forget_people(wc->w);
	log_info("maintenance: partitions ensured, %ld expired event id(s) "
	    "forgotten; retention dropped %ld partition(s), %ld event(s), "
	    "%ld rejected event(s), %ld alert transition(s)", deleted,
	    kept.dropped_partitions, kept.deleted_events,
	    kept.deleted_rejected, kept.deleted_alert_events);
}

/* Connects, with back-off; returns false when the writer is stopping. */
static bool
connect_loop(struct writer_conn *wc)
{
	struct writer *w = wc->w;
	int64_t backoff = RECONNECT_MIN_MS;
	struct error err = { 0 };
	bool warned = false;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		bool stopping = w->stopping;
		pthread_mutex_unlock(&w->mu);
		if (stopping) {
			return false;
		}
		if (conn_open(wc, &err)) {
			pthread_mutex_lock(&w->mu);
			w->n_connected++;
			pthread_mutex_unlock(&w->mu);
			log_info("writer %zu connected to PostgreSQL", wc->index);
			return true;
		}
		if (!warned) {
			log_warn("writer %zu: %s (retrying)", wc->index,
			    err.message);
			warned = true;
		}
		pthread_mutex_lock(&w->mu);
		if (!w->stopping) {
			wait_until_ms(w, timeutil_monotonic_ms() + backoff);
		}
		pthread_mutex_unlock(&w->mu);
		backoff = backoff * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS :
		    backoff * 2;
	}
}

static void
ping(struct writer_conn *wc)
{
	struct error err = { 0 };

	if (!db_exec(wc->pg, "SELECT 1", 0, NULL, &err) &&
	    PQstatus(wc->pg) != CONNECTION_OK) {
		log_warn("writer %zu lost the database: %s", wc->index,
		    err.message);
		conn_lost(wc);
	}
}

/* Takes the next batch, waiting for it to fill or age. Returns NULL after
 * PING_INTERVAL_MS of idleness, or when stopping with nothing queued. */
static struct writer_item *
next_batch(struct writer *w)
{
	int64_t idle_until = timeutil_monotonic_ms() + PING_INTERVAL_MS;
	struct writer_item *batch = NULL;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		int64_t now = timeutil_monotonic_ms();
		if (w->head == NULL) {
			if (w->stopping || now >= idle_until) {
				break;
			}
			wait_until_ms(w, idle_until);
			continue;
		}
		int64_t close_at = w->head->enqueued_ms +
		    w->cfg->writer_batch_max_wait_ms;
		if (w->stopping || now >= close_at || w->queued_events >=
		    (size_t)w->cfg->writer_batch_max_events) {
			batch = queue_take_batch(w);
			break;
		}
		wait_until_ms(w, close_at);
	}
	pthread_mutex_unlock(&w->mu);
	return batch;
}

static void *
writer_main(void *arg)
{
	struct writer_conn *wc = arg;
	struct writer *w = wc->w;

	for (;;) {
		struct writer_item *batch;

		if (wc->pg == NULL && !connect_loop(wc)) {
			break;
		}
		maintain(wc);
		batch = next_batch(w);
		if (batch != NULL) {
			write_batch(wc, batch);
			continue;
		}
		pthread_mutex_lock(&w->mu);
		bool done = w->stopping && w->head == NULL;
		pthread_mutex_unlock(&w->mu);
		if (done) {
			break;
		}
		ping(wc);
	}
	if (wc->pg != NULL) {
		conn_lost(wc);
	}
	return NULL;
}

struct writer *
writer_new(const struct config *cfg, struct error *err)
{
	struct writer *w = calloc(1, sizeof(*w));
	pthread_condattr_t attr;

	if (w == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return NULL;
	}
	w->cfg = cfg;
	atomic_init(&w->deduplicated, 0);
	atomic_init(&w->duplicate_conflicts, 0);
	histogram_init(&w->batch_events, batch_events_bounds,
	    sizeof(batch_events_bounds) / sizeof(batch_events_bounds[0]), 0);
	histogram_init(&w->commit_seconds, histogram_seconds_bounds,
	    histogram_seconds_n_bounds, HISTOGRAM_SECONDS_DECIMALS);
	pthread_mutex_init(&w->mu, NULL);
	w->people = people_cache_new();
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
	w->n_conns = (size_t)cfg->writer_threads;
	w->conns = calloc(w->n_conns, sizeof(*w->conns));
	if (w->conns == NULL || w->people == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < w->n_conns; i++) {
		struct writer_conn *wc = &w->conns[i];
		wc->w = w;
		wc->index = i;
		if (pthread_create(&wc->thread, NULL, writer_main, wc) != 0) {
			error_set(err, ERR_INTERNAL, "cannot start writer "
			    "thread: %s", strerror(errno));
			goto fail;
		}
		w->n_started++;
	}
	return w;
fail:
	writer_free(w);
	return NULL;
}

bool
writer_enqueue(struct writer *w, struct writer_item *item, struct error *err)
{
	bool ok = false;

	item->next = NULL;
	item->status = WRITER_PENDING;
	item->enqueued_ms = timeutil_monotonic_ms();
	pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		error_set(err, ERR_SHUTTING_DOWN, "the collector is stopping");
	} else if (w->n_connected == 0) {
		error_set(err, ERR_DATABASE_UNAVAILABLE,
		    "the database is unavailable; nothing was stored");
	} else {
		if (w->tail != NULL) {
			w->tail->next = item;
		} else {
			w->head = item;
		}
		w->tail = item;
		w->queued_events += item->n_events;
		/* One waiter is enough unless the batch is full. */
		pthread_cond_signal(&w->cond);
		ok = true;
	}
	pthread_mutex_unlock(&w->mu);
	return ok;
}

/* Call with mu held. */
static bool
is_ready(const struct writer *w)
{
	return w->n_connected > 0 && !w->stopping;
}

bool
writer_is_ready(struct writer *w)
{
	bool ready;

	pthread_mutex_lock(&w->mu);
	ready = is_ready(w);
	pthread_mutex_unlock(&w->mu);
	return ready;
}

void
writer_metrics_get(struct writer *w, struct writer_metrics *out)
{
	pthread_mutex_lock(&w->mu);
	out->ready = is_ready(w);
	out->queued_events = w->queued_events;
	pthread_mutex_unlock(&w->mu);
	out->deduplicated = atomic_load(&w->deduplicated);
	out->duplicate_conflicts = atomic_load(&w->duplicate_conflicts);
	out->batch_events = &w->batch_events;
	out->commit_seconds = &w->commit_seconds;
}

void
writer_free(struct writer *w)
{
	struct writer_item *left;

	if (w == NULL) {
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; i < w->n_started; i++) {
		pthread_join(w->conns[i].thread, NULL);
	}
	/* Threads drain the queue while connected; what is left had no
	 * connection to go to. */
	pthread_mutex_lock(&w->mu);
	left = queue_take_all(w);
	pthread_mutex_unlock(&w->mu);
	complete(left, WRITER_SHUTTING_DOWN);
	for (size_t i = 0; w->conns != NULL && i < w->n_conns; i++) {
		free(w->conns[i].known_months);
	}
	free(w->conns);
	people_cache_free(w->people);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void
writer_forget_people(struct writer *w)
{
	people_cache_clear(w->people);
}
