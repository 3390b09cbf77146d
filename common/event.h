/* event.h - the native event: reading one from JSON and checking its
 * structure (types, lengths, naming, timestamps).
 *
 * Checks against the tracking plan (naming included) come later in the
 * pipeline; this module only knows what every event must look like. An
 * event may carry no identity at all: ingest then derives a cookieless
 * one. No I/O. */
#ifndef MILEPOST_COMMON_EVENT_H
#define MILEPOST_COMMON_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/uuid7.h"

#define EVENT_NAME_MAX 64
#define EVENT_ID_MAX 256
#define EVENT_URL_MAX 4096
#define EVENT_PROPS_DEPTH_MAX 8
#define EVENT_CONSENT_KEY_MAX 64
#define EVENT_MAX_PROBLEMS 16
#define EVENT_VERSION_MAX 1000000
/* An event's claim (event_claim) as bytea hex input: "\\x" and 32 digits. */
#define EVENT_CLAIM_BYTES 16
#define EVENT_CLAIM_LEN (2 + 2 * EVENT_CLAIM_BYTES + 1)

/* What a native event is: an action (the default), or an identify call
 * that links its anonymous id to its user id and names no action. */
enum event_type {
	EVENT_TRACK = 0,
	EVENT_IDENTIFY,
};

/* What the people step may do with an event's user id: link it as today
 * (the site does not verify identities), link it unless another link to
 * it was verified, or link it as verified (a valid user_hash, or a
 * server key). */
enum event_trust {
	EVENT_TRUST_UNCHECKED = 0,
	EVENT_TRUST_UNVERIFIED,
	EVENT_TRUST_VERIFIED,
};

/* The name an identify call is stored under. */
#define EVENT_IDENTIFY_NAME "identify"

struct event_problem {
	enum err_code code;
	char path[96];
	char message[160];
};

/* What is wrong with one event; at most EVENT_MAX_PROBLEMS are kept. */
struct event_problems {
	struct event_problem items[EVENT_MAX_PROBLEMS];
	size_t n;
};

/* One event. Strings and JSON values are borrowed from the object it was
 * parsed from and live as long as that object; NULL means absent. */
struct event {
	char event_id[UUID7_TEXT_LEN];
	bool event_id_generated;	/* the client sent none */
	/* With a client's id: what the event claims under it, for telling a
	 * retry from another event reusing the id (event_claim); else "". */
	char claim[EVENT_CLAIM_LEN];
	enum event_type type;
	const char *name;
	int64_t version;		/* of the event's schema; 0: current */
	int64_t ts_us;
	int64_t received_us;
	bool has_sent_at;
	int64_t sent_at_us;
	const char *anonymous_id;
	const char *user_id;
	const char *user_hash;	/* identity verification's HMAC, hex */
	const char *session_id;
	const char *url;
	const char *referrer;
	json_t *props;
	/* consent, or else Segment's context.consent.categoryPreferences */
	json_t *consent;
	json_t *campaign;	/* campaign, or else context.campaign */
	json_t *context;	/* Segment's context, as sent */
	/* Set by the ingest pipeline from the plan and consent, for storing. */
	long plan_version;
	const char *kind;	/* NULL: not in the plan */
	const char *phase;
	bool consented;		/* false: stored anonymised */
	/* How far the user id may be trusted to link (docs/plan.md,
	 * "Identity verification"): set by the ingest pipeline. */
	enum event_trust trust;
};

/* True if id (a user, anonymous or session id as sent) is a value that
 * buggy clients send for "none": empty, "null", "undefined", "0", ...
 * (case and surrounding blanks ignored). Linking on one would make every
 * visitor one person. */
bool event_id_is_placeholder(const char *id);

/* Reads the native event v (any JSON value) received at received_us into
 * ev. Returns true if it is valid; otherwise false with every problem found
 * in probs (ev is then partly filled and must not be stored). Generates a
 * UUIDv7 event_id when none is given, and the claim of a given one. */
bool event_parse_native(json_t *v, int64_t received_us, struct event *ev,
    struct event_problems *probs);

/* Where Segment's clients put the visitor's consent (Consent Management:
 * context.consent.categoryPreferences), borrowed from context; NULL if
 * absent. */
json_t *event_segment_consent(json_t *context);

/* The identity verification hash of ev: its user_hash, else Segment's
 * context.milepost.user_hash (analytics.identify's options.context);
 * NULL if none, or not a string. Borrowed from ev. */
const char *event_user_hash(const struct event *ev);

/* Adds a problem (ignored past EVENT_MAX_PROBLEMS). */
void event_problem_add(struct event_problems *probs, enum err_code code,
    const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
