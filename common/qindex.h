/* qindex.h - the query index: one site's events, in memory, ordered by
 * person and time, with the visits they belong to and the links between
 * people, so that a funnel is a loop over each person's events instead
 * of a statement over the whole range (docs/architecture.md, "Query
 * index").
 *
 * It holds what the query API counts: events that are not bots' and have
 * a person (person_id set: consented, stitched), each as its time, its
 * name and kind, its device and browser, and its visit; visits with where
 * they came from; and person merges. People are the index's own slots:
 * a person merged into another is a member of that person, whose events
 * are read together, as events_people resolves them.
 *
 * Changes arrive in any order (qindex_add_event, _add_session, _merge,
 * _forget_*) and are visible at once; new events sit in a side list until
 * qindex_compact folds them in. Not thread-safe: the caller locks (many
 * readers or one writer). No I/O. */
#ifndef MILEPOST_COMMON_QINDEX_H
#define MILEPOST_COMMON_QINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qindex;

/* One event as the algorithms read it, in 12 bytes: its time and its
 * (name, kind) id in one word, whose order is the time's, and a link to
 * its visit and its (device, browser) pair (read through qindex_event_dim
 * and qindex_event_session). Times are microseconds since the Unix epoch,
 * from 1970 to 2112 (52 bits; ingest keeps them after 2000). */
#define QINDEX_NAME_BITS 12
#define QINDEX_NAMES_MAX (1u << QINDEX_NAME_BITS)
struct __attribute__((packed, aligned(4))) qindex_event {
	uint64_t key;		/* time << QINDEX_NAME_BITS | name id */
	uint32_t link;
};

static inline int64_t
qindex_event_ts(const struct qindex_event *ev)
{
	return (int64_t)(ev->key >> QINDEX_NAME_BITS);
}

/* The qindex_name_* id. */
static inline uint16_t
qindex_event_name(const struct qindex_event *ev)
{
	return (uint16_t)(ev->key & (QINDEX_NAMES_MAX - 1));
}

/* What a visit or an event's device can be broken down by. */
enum qindex_dim {
	QINDEX_DIM_CHANNEL,
	QINDEX_DIM_UTM_SOURCE,
	QINDEX_DIM_UTM_MEDIUM,
	QINDEX_DIM_UTM_CAMPAIGN,
	QINDEX_DIM_REFERRER_HOST,
	QINDEX_DIM_LANDING_PATH,
	QINDEX_DIM_DEVICE,	/* the event's, not the visit's */
	QINDEX_DIM_BROWSER,	/* the event's */
	QINDEX_DIM_COUNT
};
#define QINDEX_VISIT_DIMS QINDEX_DIM_DEVICE	/* the visit's come first */

/* Event kinds the strict funnel order stops at (plan kinds). */
enum qindex_kind {
	QINDEX_KIND_OTHER,	/* page, identify, unknown */
	QINDEX_KIND_PLANNED,	/* milestone, macro, secondary */
};

/* A visit as stored (a sessions row). Strings may be NULL. */
struct qindex_visit_row {
	const char *session_id;
	int64_t person_id;
	int64_t started_at, last_at;	/* microseconds */
	bool bot;
	const char *dims[QINDEX_VISIT_DIMS];	/* enum qindex_dim order */
};

/* An event as stored (an events row): bot events and events with no
 * person are the caller's to leave out. A macro conversion (kind
 * "macro") also brings what attribution reads of it. */
struct qindex_event_row {
	int64_t person_id;
	int64_t ts;
	const char *name;
	const char *kind;		/* may be NULL */
	const char *session_id;		/* may be NULL */
	const char *device, *browser;	/* may be NULL */
	const uint8_t *event_id;	/* 16 bytes; macro events only */
	bool has_revenue;		/* props revenue, else value, a number */
	double revenue;
	const char *currency;		/* props currency as text; may be NULL */
};

/* A macro conversion as attribution reads it. */
struct qindex_conversion {
	int64_t ts;
	double revenue;			/* 0 when it had none */
	uint32_t person;		/* slot, as stored (not resolved) */
	uint32_t currency;		/* string id; 0: none */
	uint16_t name;
	uint8_t event_id[16];
};

/* A visit as attribution reads it (qindex_visit). */
struct qindex_visit_info {
	bool stored;			/* false: no sessions row (any more) */
	bool bot;
	int64_t started_at;
	uint32_t person;		/* slot of the stored person_id */
	uint32_t dims[QINDEX_VISIT_DIMS];	/* string ids */
	const char *session_id;
};

enum qindex_status {
	QINDEX_OK,
	QINDEX_FULL,		/* past the byte limit, or out of memory */
	QINDEX_TOO_MANY,	/* a dictionary (names, devices) is full */
	QINDEX_OUT_OF_RANGE,	/* an event's time is not in 1970 .. 2112 */
};

/* Memory that several indexes (one per site) share: none grows once
 * used would pass max (0: no limit). The caller serialises changes to
 * all the indexes sharing one. */
struct qindex_budget {
	size_t used, max;
};

/* A new, empty index drawing on budget, which must outlive it. NULL when
 * out of memory. */
struct qindex *qindex_new(struct qindex_budget *budget);
void qindex_free(struct qindex *ix);

enum qindex_status qindex_add_visit(struct qindex *ix,
    const struct qindex_visit_row *row);
enum qindex_status qindex_add_event(struct qindex *ix,
    const struct qindex_event_row *row);
/* from_person's events and visits are into_person's from now on (and so
 * are those of the people merged into from_person). */
enum qindex_status qindex_merge(struct qindex *ix, int64_t from_person,
    int64_t into_person);

/* Forgets the events of these person ids (as stored: not through
 * merges). */
void qindex_forget_people(struct qindex *ix, const int64_t *people,
    size_t n);
/* Forgets the visits of these session ids. */
void qindex_forget_visits(struct qindex *ix, const char *const *ids,
    size_t n);
/* Forgets the events before ts (microseconds). */
void qindex_forget_events_before(struct qindex *ix, int64_t ts);
/* Forgets the visits that started before ts. Retention deletes the
 * visits whose last event is before its cutoff, which the index does not
 * hold: every such visit started before it too, so the caller forgets
 * this larger region and reads it back (started_at < ts) whole. */
void qindex_forget_visits_started_before(struct qindex *ix, int64_t ts);

/* Folds the new events in (sorts them into their people's runs) and
 * drops what was forgotten. Worth it when qindex_pending is large. */
enum qindex_status qindex_compact(struct qindex *ix);
/* Shrinks the tables of people and session ids to three quarters full.
 * Once, after the load: under ingest the next new id doubles a fitted
 * table again, so fitting at every compaction would rehash it twice. */
void qindex_fit(struct qindex *ix);

struct qindex_stats {
	size_t events;		/* held (pending ones included) */
	size_t pending;		/* added since the last compaction */
	size_t people;		/* person slots (merged ones included) */
	size_t visits;
	size_t bytes;		/* allocated by the index */
};
void qindex_stats(const struct qindex *ix, struct qindex_stats *out);

/* ---------------------------------------------------------- reading */

/* Names: the id of each (name, kind) the index holds. */
size_t qindex_name_count(const struct qindex *ix);
const char *qindex_name_text(const struct qindex *ix, uint16_t id);
enum qindex_kind qindex_name_kind(const struct qindex *ix, uint16_t id);
/* Whether the id's events are macro conversions, whose
 * qindex_conversions records the index keeps. */
bool qindex_name_macro(const struct qindex *ix, uint16_t id);

/* People by slot (0 .. qindex_stats' people): the stored person id, and
 * the slot it is resolved to through merges. */
int64_t qindex_person_id(const struct qindex *ix, uint32_t slot);
uint32_t qindex_person_root(const struct qindex *ix, uint32_t slot);

/* Visits by slot (0 .. qindex_stats' visits). */
void qindex_visit(const struct qindex *ix, uint32_t v,
    struct qindex_visit_info *out);

/* Whether the index holds a stored visit of session_id, and its start. */
bool qindex_visit_started(const struct qindex *ix, const char *session_id,
    int64_t *started_at);

/* The macro conversions held, in no set order. */
const struct qindex_conversion *qindex_conversions(const struct qindex *ix,
    size_t *n);

/* A dimension of an event: its visit's (NULL when it has none, or the
 * visit is not stored) or its own device and browser. Returns a string id
 * (0: NULL), the same for the same text across dimensions. */
uint32_t qindex_event_dim(const struct qindex *ix,
    const struct qindex_event *ev, enum qindex_dim dim);
const char *qindex_string(const struct qindex *ix, uint32_t id);
/* The session id of an event's visit; NULL when it has none. */
const char *qindex_event_session(const struct qindex *ix,
    const struct qindex_event *ev);
/* The string id of text, 0 if the index holds no such string (no event
 * or visit has it, so a filter on it matches nothing). */
uint32_t qindex_string_find(const struct qindex *ix, const char *text);

/* Walks the units a query counts: people (through merges), or with
 * sessions visits, each as its events in time order with lo <= ts < hi.
 * Units with no event in the range are skipped. The events stay valid
 * until the next call; the scan holds no lock of its own. */
struct qindex_scan;
struct qindex_scan *qindex_scan_new(const struct qindex *ix, bool sessions,
    int64_t lo, int64_t hi);
bool qindex_scan_next(struct qindex_scan *s, const struct qindex_event **ev,
    size_t *n);
/* Runs part over the people with events in [lo, hi): once over all of
 * them with ctx[0], or, when there are many, in two threads: ctx[0] over
 * the first half of the person slots on this one, ctx[1] over the second
 * on another (*halves true: the caller then adds the second's results to
 * the first's). The caller holds the index still meanwhile. False when a
 * part answered false or a scan ran out of memory. */
typedef bool (*qindex_part_fn)(void *ctx, struct qindex_scan *scan);
bool qindex_scan_people(const struct qindex *ix, int64_t lo, int64_t hi,
    qindex_part_fn part, void *const ctx[2], bool *halves);
/* At most how many more units s gives (its person slots left, or every
 * visit): room reserved once for a row per unit never grows by copying. */
size_t qindex_scan_units_max(const struct qindex_scan *s);
/* After qindex_scan_next answered false: whether it ran out of memory
 * rather than units. */
bool qindex_scan_failed(const struct qindex_scan *s);
void qindex_scan_free(struct qindex_scan *s);

#endif
