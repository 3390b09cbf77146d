/* people.h - the writer's people step: the person and the session of every
 * event of a batch, the sessions it starts or extends and the first times
 * it reaches, decided in C from what the people cache knows and, for the
 * rest, one lookup in the batch's transaction (migrations/0005).
 *
 * For a batch of items (in a writer thread, with its connection):
 *   b = people_batch_new(items, cache, timeout, stored ids if dedup)
 *   BEGIN
 *   if (people_batch_needs_lookup(b)):       people_batch_lookup_params
 *       SELECT ... FROM milepost_link_people($1..$7)    -> take_result
 *       SELECT ... FROM milepost_resolve_people($1..$7) -> take_result
 *   people_batch_decide(b)
 *   COPY events <- people_batch_events(b)
 *   if (people_batch_needs_store(b)):        people_batch_store_params
 *       SELECT milepost_store_people($1..$32)
 *   COMMIT (with the store, in one round trip), then
 *   people_batch_committed(b)
 *   people_batch_free(b)
 * Rows travel as parameters, one array per column, so that no statement
 * depends on the batch's size or on a staging table.
 * docs/architecture.md ("People, sessions and milestones") has the rules. */
#ifndef MILEPOST_SERVER_PEOPLE_H
#define MILEPOST_SERVER_PEOPLE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/enrich.h"
#include "common/event.h"
#include "common/strbuf.h"
#include "common/uuid7.h"
#include "server/people_cache.h"
#include "server/pgarray.h"

struct writer_item;

/* What the people step needs of one event an item stores. The strings
 * are kept in the item (people_text) as offsets + 1, 0 meaning none. */
struct people_event {
	size_t row_end;		/* where its row ends in the item's events */
	int64_t ts_us;
	char event_id[UUID7_TEXT_LEN];
	size_t site_id, anonymous_id, user_id, session_id, source_key, name;
	/* What a session it lands takes: url and enrich_texts. */
	size_t url, landing[ENRICH_TEXTS];
	bool bot;
	bool milestone;		/* counts towards person_milestones */
	bool id_given;		/* the client's id, not one made here */
	enum event_trust trust;	/* of its user id */
	/* What dedup needs to keep a conflicting repeat of a client's id
	 * aside as rejected: the event's claim (event.h, none for ids made
	 * here), and where it came from: request id, index in the request. */
	size_t claim, request_id;
	size_t index;
};

/* Records ev of site_id, event index of request request_id, whose row
 * item->events ends with now. False out of memory. */
bool people_note_event(struct writer_item *item, const char *site_id,
    const char *request_id, size_t index, const struct event *ev,
    const struct enrichment *enr);

struct people_batch;

/* With dedup (a retry after some of the batch's event ids proved
 * stored): the site_id and event_id of every event of items, as arrays
 * in cols[0] and cols[1], for asking event_ids which are stored already.
 * False out of memory. */
bool people_event_ids(const struct writer_item *items,
    struct pgarray cols[2]);

/* Plans the people step for the events of items (a list linked by next),
 * which must stay unchanged until people_batch_free. stored, if not NULL,
 * holds rows (site_id, event_id) of events already stored: dedup drops
 * them, and every repeat of an id earlier in the batch, so the people
 * step leaves them out (an event erased since must not bring its ids or
 * its session back). NULL out of memory. */
struct people_batch *people_batch_new(const struct writer_item *items,
    struct people_cache *cache, int64_t session_timeout_us,
    const PGresult *stored);
void people_batch_free(struct people_batch *b);

/* True when some events' people or sessions are not in the cache. */
bool people_batch_needs_lookup(const struct people_batch *b);

/* The lookup's parameters, for the events the cache did not answer:
 * arrays of n (the event's number in the batch), site_id, anonymous_id,
 * user_id, session_id, ts, trust (migrations/0012). The values stay b's,
 * valid until it is freed. False out of memory. */
#define PEOPLE_LOOKUP_PARAMS 7
bool people_batch_lookup_params(struct people_batch *b,
    const char *values[PEOPLE_LOOKUP_PARAMS]);

/* Takes a result of the lookup: the (linked, merged, refused) row of
 * milepost_link_people or the rows of milepost_resolve_people. False if
 * it does not fit the batch (a bug, or a schema not this binary's). */
bool people_batch_take_result(struct people_batch *b, const PGresult *res);

/* Links refused by milepost_link_people, for the log. */
long people_batch_refused(const struct people_batch *b);

/* Sessionises the batch and renders its rows. False out of memory. */
bool people_batch_decide(struct people_batch *b);

/* The batch's events rows, completed with COPY_ROW_EVENT_PEOPLE_COLUMNS
 * and, with dedup, COPY_ROW_EVENT_DEDUP_COLUMNS, batch_n being the
 * event's number in the batch (items in order, then their events). */
const struct strbuf *people_batch_events(const struct people_batch *b);

/* True when the batch touched a session or may have reached a first
 * time: then milepost_store_people takes the store's parameters, arrays
 * of, one element per session the batch extends, its site_id,
 * session_id, last_at and events (PEOPLE_STORE_EXTEND_PARAMS); per
 * session it starts, or gives an earlier start, its site_id,
 * session_id, person_id, anonymous_id, client_given, started_at,
 * last_at, events, landing url, the enrich_texts columns, bot and
 * source_key (PEOPLE_STORE_LAND_PARAMS); per possible first time, its
 * site_id, person_id, name, first_at, first_event_id, first_session_id.
 * One row per session, in no particular order. Owned by b; false out of
 * memory. */
#define PEOPLE_STORE_EXTEND_PARAMS 4
#define PEOPLE_STORE_LAND_PARAMS (11 + ENRICH_TEXTS)
#define PEOPLE_STORE_MILESTONE_PARAMS 6
#define PEOPLE_STORE_PARAMS (PEOPLE_STORE_EXTEND_PARAMS + \
	PEOPLE_STORE_LAND_PARAMS + PEOPLE_STORE_MILESTONE_PARAMS)
bool people_batch_needs_store(const struct people_batch *b);
bool people_batch_store_params(struct people_batch *b,
    const char *values[PEOPLE_STORE_PARAMS]);

/* Tells the cache what the committed batch stored. */
void people_batch_committed(struct people_batch *b);

#endif
