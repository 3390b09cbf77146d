/* plan.h - the tracking plan: the Micro Conversion Framework as a file,
 * linted when it is loaded and enforced on every event.
 *
 * A loaded plan is immutable, so request threads share it without locks;
 * a reload builds a new one (see docs/plan.md for the format). Strings a
 * plan hands out live as long as the plan. */
#ifndef MILEPOST_COMMON_PLAN_H
#define MILEPOST_COMMON_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/event.h"

/* The default naming rule: snake_case object_action, e.g. cart_added. */
#define PLAN_DEFAULT_EVENT_NAMING "^[a-z][a-z0-9]*(_[a-z0-9]+)+$"

/* Lint findings are kept up to this many; a plan with more is hopeless
 * and the first ones say why. */
#define PLAN_MAX_PROBLEMS 200

struct plan_problem {
	char path[160];		/* JSON path, e.g. $.events.cart_added.kind */
	char message[240];
};

struct plan_problems {
	struct plan_problem *items;
	size_t n;
	size_t dropped;		/* found beyond PLAN_MAX_PROBLEMS */
};

void plan_problems_init(struct plan_problems *probs);
void plan_problems_finish(struct plan_problems *probs);

enum plan_kind {
	PLAN_KIND_MACRO,
	PLAN_KIND_MILESTONE,
	PLAN_KIND_SECONDARY,
	PLAN_KIND_PAGE,
};

enum plan_verdict {
	PLAN_PASS,		/* store it */
	PLAN_REJECT,		/* report the problems, keep it aside */
	PLAN_QUARANTINE,	/* keep it aside without failing the client */
};

struct plan;
struct plan_event;

/* Reads and lints the plan in the file at path. Returns it when it has no
 * problem; otherwise NULL, with every problem (an unreadable file or bad
 * JSON is one problem at "$") appended to probs. */
struct plan *plan_load_file(const char *path, struct plan_problems *probs);

/* The same for a JSON document, which the plan keeps a reference to. */
struct plan *plan_load_json(json_t *doc, struct plan_problems *probs);

/* The plan in force when none is configured: the default naming rule, no
 * events, unknown events accepted. NULL when out of memory. */
struct plan *plan_new_default(void);

void plan_free(struct plan *plan);	/* NULL is fine */

/* The plan's version; 0 for the default plan. */
long plan_version(const struct plan *plan);
size_t plan_event_count(const struct plan *plan);
size_t plan_phase_count(const struct plan *plan);
/* True if some property is marked pii: hash, which needs a key. */
bool plan_needs_hash_key(const struct plan *plan);
/* The document the plan was loaded from (borrowed); NULL for the default
 * plan. */
const json_t *plan_document(const struct plan *plan);

/* The definition of the event named name, NULL if the plan lacks it. */
const struct plan_event *plan_find_event(const struct plan *plan,
    const char *name);
/* One step of the plan's funnel: a phase, reached by any of its
 * milestones, or the macro conversion. Strings borrowed from the plan. */
#define PLAN_FUNNEL_SET_MAX 16
struct plan_funnel_step {
	const char *label;	/* the phase's name, or the macro's */
	const char *events[PLAN_FUNNEL_SET_MAX];
	size_t n_events;
};

/* The plan's funnel, the framework's own: one step per phase, in order,
 * up to the one holding the macro conversion (that phase's step without
 * it, and none if it holds nothing else), then the macro conversion.
 * A phase's first PLAN_FUNNEL_SET_MAX milestones count. Stores the first
 * max steps and returns how many there are (which may be more than max;
 * 0 for a plan without phases or macro conversion, such as the default
 * one). */
size_t plan_funnel(const struct plan *plan, struct plan_funnel_step *steps,
    size_t max);

/* The event page views are stored under when a sender does not name it
 * (Segment's page and screen calls): the plan's event of kind page, the
 * first by name if it has several; NULL if it has none. Borrowed. */
const char *plan_page_event(const struct plan *plan);
/* The plan's events in name order: i from 0 to plan_event_count - 1;
 * NULL past the end. */
const struct plan_event *plan_event_at(const struct plan *plan, size_t i);
const char *plan_event_name(const struct plan_event *def);
const char *plan_event_kind_name(const struct plan_event *def);
const char *plan_event_phase(const struct plan_event *def);   /* or NULL */
const char *plan_event_consent(const struct plan_event *def); /* or NULL */
long plan_event_version(const struct plan_event *def);	/* current */
/* True if the plan stores events it does not define (unknown_events:
 * accept, as the default plan does): any name may then have data. */
bool plan_stores_unknown_events(const struct plan *plan);
/* True if def may carry the property name: it declares it, or does not
 * reject properties it does not declare. */
bool plan_event_takes_property(const struct plan_event *def,
    const char *name);

/* Checks the structurally valid ev against the plan as of its received
 * time: naming, known event, version, deprecation, properties. Failures go
 * to probs, notes that do not stop the event (deprecated, unknown but
 * accepted) to warnings; both get the JSON path of the value concerned.
 * *def is set to the event's definition, NULL when it is not planned.
 * Properties named in the array redacted (may be NULL) hold a hash, not
 * the value sent: only their presence is checked. */
enum plan_verdict plan_check_event(const struct plan *plan,
    const struct event *ev, const json_t *redacted,
    const struct plan_event **def, struct event_problems *probs,
    struct event_problems *warnings);

/* The properties to store for an event of definition def (may be NULL):
 * `pii: drop` properties removed and `pii: hash` ones replaced by the
 * keyed hash (see privacy_keyed_hash_hex) of their value, or, with
 * drop_pii, every PII property removed. Names listed in the array skip
 * (may be NULL) were redacted before and are left alone; the names this
 * call redacts are appended to the array done (may be NULL). Returns a new
 * reference: props itself when nothing changes, a modified copy otherwise;
 * NULL when out of memory. */
json_t *plan_redact_props(const struct plan_event *def, json_t *props,
    bool drop_pii, const void *hash_key, size_t hash_key_len,
    const json_t *skip, json_t *done);

#endif
