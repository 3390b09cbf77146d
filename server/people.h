/* people.h - the writer's people step: the person and the session of every
 * event of a batch, the sessions it starts or extends and the first times
 * it reaches, decided in C from what the people cache knows and, for the
 * rest, one lookup in the batch's transaction (migrations/0005).
 *
 * For a batch of items (in a writer thread, with its connection):
 *   b = people_batch_new(items, cache, timeout)
 *   if (people_batch_needs_lookup(b)):
 *       COPY people_incoming   <- people_batch_lookup_rows(b)
 *       SELECT ... FROM milepost_link_people()    -> people_batch_take_result
 *       SELECT ... FROM milepost_resolve_people() -> people_batch_take_result
 *   people_batch_decide(b)
 *   COPY events <- people_batch_events(b), sessions_incoming, milestones_incoming
 *   COMMIT, then people_batch_committed(b)
 *   people_batch_free(b)
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

struct writer_item;

/* What the people step needs of one event an item stores. The strings
 * are kept in the item (people_text) as offsets + 1, 0 meaning none. */
struct people_event {
	size_t row_end;		/* where its row ends in the item's events */
	int64_t ts_us;
	char event_id[UUID7_TEXT_LEN];
	size_t site_id, anonymous_id, user_id, session_id, source_key, name;
	bool milestone;		/* counts towards person_milestones */
};

/* Records ev of site_id, whose row item->events ends with now. False out
 * of memory. */
bool people_note_event(struct writer_item *item, const char *site_id,
    const struct event *ev, const struct enrichment *enr);

struct people_batch;

/* Plans the people step for the events of items (a list linked by next),
 * which must stay unchanged until people_batch_free. NULL out of memory. */
struct people_batch *people_batch_new(const struct writer_item *items,
    struct people_cache *cache, int64_t session_timeout_us);
void people_batch_free(struct people_batch *b);

/* True when some events' people or sessions are not in the cache. */
bool people_batch_needs_lookup(const struct people_batch *b);

/* people_incoming rows for the events the cache did not answer. */
const struct strbuf *people_batch_lookup_rows(const struct people_batch *b);

/* Takes a result of the lookup: the (linked, merged, refused) row of
 * milepost_link_people or the rows of milepost_resolve_people. False if
 * it does not fit the batch (a bug, or a schema not this binary's). */
bool people_batch_take_result(struct people_batch *b, const PGresult *res);

/* Links refused by milepost_link_people, for the log. */
long people_batch_refused(const struct people_batch *b);

/* Sessionises the batch and renders its rows. False out of memory. */
bool people_batch_decide(struct people_batch *b);

/* The batch's events rows, completed with COPY_ROW_EVENT_PEOPLE_COLUMNS;
 * sessions_incoming and milestones_incoming rows. */
const struct strbuf *people_batch_events(const struct people_batch *b);
const struct strbuf *people_batch_sessions(const struct people_batch *b);
const struct strbuf *people_batch_milestones(const struct people_batch *b);

/* Tells the cache what the committed batch stored. */
void people_batch_committed(struct people_batch *b);

#endif
