/* copy_row.h - renders events and rejected events as rows of PostgreSQL's
 * COPY text format, in the request thread, so that the writer thread only
 * concatenates bytes. The column lists here are the ones writer.c names in
 * its COPY statements. */
#ifndef MILEPOST_SERVER_COPY_ROW_H
#define MILEPOST_SERVER_COPY_ROW_H

#include <jansson.h>
#include <stdint.h>

#include "common/enrich.h"
#include "common/event.h"
#include "common/strbuf.h"

#define COPY_ROW_EVENT_COLUMNS                                               \
	"site_id, event_id, name, ts, received_at, sent_at, anonymous_id, "  \
	"user_id, url, referrer, props, consent, plan_version, "             \
	"event_version, kind, phase, consented, referrer_host, utm_source, "  \
	"utm_medium, utm_campaign, utm_term, utm_content, click_id_kind, "    \
	"channel, device, browser, os, bot, ts_adjusted"

#define COPY_ROW_EVENT_ID_COLUMNS \
	"site_id, event_id, received_at, fingerprint"

#define COPY_ROW_REJECTED_COLUMNS                                            \
	"site_id, received_at, request_id, event_index, payload, errors, "   \
	"event_name, error_codes, quarantined, derived_anonymous_id, "       \
	"consent_overrides, redacted"

#define COPY_ROW_REPLAYED_COLUMNS "site_id, rejected_id, event_id"

/* What a duplicate_conflict says after "event_id <id> ", in the answer
 * (ingest) and in its rejected row (the writer's SQL: so no quote). */
#define COPY_ROW_CONFLICT_MESSAGE "is stored for another event (another " \
	"name or person): kept aside as rejected; a replay stores it under " \
	"a new id"

/* The columns the writer completes each events row with (server/people.h):
 * the event's session and person, known only when its batch is written. */
#define COPY_ROW_EVENT_PEOPLE_COLUMNS "session_id, person_id"

/* With dedup, what the writer needs of each staged event besides its
 * row: its place in the batch, its claim, and where it came from. */
#define COPY_ROW_EVENT_DEDUP_COLUMNS \
	"batch_n, claim, request_id, event_index"

/* Appends one events row, the event and what ingest learnt of it, without
 * its COPY_ROW_EVENT_PEOPLE_COLUMNS and without its newline. */
void copy_row_event(struct strbuf *out, const char *site_id,
    const struct event *ev, const struct enrichment *enr);

/* A text field, escaped; NULL: \N. */
void copy_row_text(struct strbuf *out, const char *s);

/* A time (microseconds since the epoch) as RFC 3339. */
void copy_row_time(struct strbuf *out, int64_t us);

/* Appends the event_ids row of the same event: its claim is the
 * fingerprint a repeat of the id is compared with. */
void copy_row_event_id(struct strbuf *out, const char *site_id,
    const struct event *ev);

/* One rejected_events row. */
struct rejected_row {
	const char *site_id;
	int64_t received_us;
	const char *request_id;
	size_t index;			/* in the request's batch */
	const json_t *payload;		/* the event as sent, PII removed */
	const struct event_problems *probs;	/* the reasons */
	const char *event_name;		/* NULL if it has none */
	bool quarantined;
	const char *derived_anonymous_id;	/* or NULL */
	const json_t *consent_overrides;	/* object or NULL */
	const json_t *redacted;		/* array of property names or NULL */
};

void copy_row_rejected(struct strbuf *out, const struct rejected_row *r);

/* Appends the row that marks rejected event id of site_id replayed as
 * event_id (NULL: handled without storing, e.g. dropped for consent). */
void copy_row_replayed(struct strbuf *out, const char *site_id,
    const char *rejected_id, const char *event_id);

/* The reasons as a JSON array of {code, path, message}; new reference. */
json_t *copy_row_problems_json(const struct event_problems *probs);

#endif
