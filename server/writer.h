/* writer.h - batches accepted events from many requests and commits them
 * to PostgreSQL in one transaction per batch (group commit).
 *
 * Writer threads each own one connection; request threads only enqueue.
 * A batch closes at writer_batch_max_events events or when its oldest item
 * has waited writer_batch_max_wait_ms. A client-given event id already in
 * event_ids is not stored again, so a retried event is stored once; a
 * repeat that claims the id for another event (event_claim) is kept aside
 * as rejected instead, so that the loss is visible. Generated ids cannot
 * be retried and are not recorded there. Every item's
 * done callback runs exactly once, after its transaction committed or
 * failed.
 *
 * Each event's person and session are decided in the batch's transaction
 * (server/people.h), from the writer's people cache and, for what it does
 * not know, one lookup. Retries are rare, so a batch is then written
 * optimistically with plain COPYs (event_ids, then events); only when
 * event_ids reports a duplicate is it rolled back and written through the
 * staging table and a statement that skips the ids already stored. */
#ifndef MILEPOST_SERVER_WRITER_H
#define MILEPOST_SERVER_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/error.h"
#include "common/histogram.h"
#include "common/strbuf.h"
#include "server/people.h"

enum writer_status {
	WRITER_PENDING = 0,
	WRITER_COMMITTED,	/* durable in PostgreSQL */
	WRITER_UNAVAILABLE,	/* the database could not be reached */
	WRITER_SHUTTING_DOWN,	/* the daemon stopped before writing it */
	WRITER_FAILED,		/* PostgreSQL refused the rows */
};

/* One request's rows. The producer owns the item: it fills the buffers
 * (COPY rows, see copy_row.h), enqueues it, and must keep it alive until
 * done has been called; the writer only borrows it. */
struct writer_item {
	struct strbuf events;	/* events rows, see copy_row_event */
	/* What the writer needs to complete them (people_note_event). */
	struct people_event *people;
	size_t n_people, cap_people;
	struct strbuf people_text;
	struct strbuf event_ids; /* event_ids rows of the client-given ids */
	size_t n_events;
	struct strbuf rejected;
	size_t n_rejected;
	/* Rejected events this item resolves (replay): COPY rows of
	 * COPY_ROW_REPLAYED_COLUMNS, marked replayed in the same
	 * transaction that stores their events. */
	struct strbuf replayed;
	int32_t *months;	/* partitions the events fall in */
	size_t n_months;
	size_t cap_months;
	void (*done)(struct writer_item *item, void *arg);
	void *arg;
	/* Set by the writer before done is called. */
	enum writer_status status;
	/* With WRITER_COMMITTED: the events (their index in their request)
	 * kept aside as rejected with duplicate_conflict instead of stored,
	 * their client's id being stored for another event. */
	size_t *conflicts;
	size_t n_conflicts, cap_conflicts;
	/* The writer's own. */
	struct writer_item *next;
	int64_t enqueued_ms;
};

void writer_item_init(struct writer_item *item);
void writer_item_finish(struct writer_item *item);
/* Records that an event falls in month (timeutil_month_index). */
bool writer_item_add_month(struct writer_item *item, int32_t month);

struct writer;

/* Starts cfg->writer_threads threads; cfg is borrowed and must outlive the
 * writer. They connect in the background: writer_is_ready tells when. */
struct writer *writer_new(const struct config *cfg, struct error *err);

/* Queues item; its done callback will be called from a writer thread (or
 * from writer_free). Returns false, without calling done, when no writer
 * is connected (ERR_DATABASE_UNAVAILABLE) or the writer is stopping
 * (ERR_SHUTTING_DOWN). */
bool writer_enqueue(struct writer *w, struct writer_item *item,
    struct error *err);

/* True when at least one thread is connected to a database whose schema
 * is current. */
bool writer_is_ready(struct writer *w);

/* What the writer measured since it started, for GET /metrics. */
struct writer_metrics {
	bool ready;			/* as writer_is_ready */
	size_t queued_events;		/* enqueued, no thread took them yet */
	uint64_t deduplicated;		/* not stored: their id already was */
	uint64_t duplicate_conflicts;	/* kept aside: it was, for another */
	/* Borrowed, valid until writer_free: the events of each committed
	 * batch, and the time its transaction took (retries included). */
	const struct histogram *batch_events;
	const struct histogram *commit_seconds;
};

/* Fills out; takes the queue's lock for a moment. */
void writer_metrics_get(struct writer *w, struct writer_metrics *out);

/* Drops what the writer remembers of people (server/people_cache.h), after
 * something else changed them: an erasure. */
void writer_forget_people(struct writer *w);

/* Commits what is queued (if the database is there), completes every item,
 * stops the threads and frees w. NULL is fine. */
void writer_free(struct writer *w);

#endif
