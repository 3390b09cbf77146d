/* event.c - native events: one table of fields, one check per kind. */
#include "common/event.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/jsonutil.h"
#include "common/timeutil.h"

/* 2000-01-01T00:00:00Z: older timestamps are clock errors, not history. */
#define TS_MIN_US (INT64_C(946684800) * TIMEUTIL_US_PER_SEC)
/* Clocks run ahead; a day ahead is a broken clock, not a skew. */
#define TS_MAX_AHEAD_US (INT64_C(86400) * TIMEUTIL_US_PER_SEC)

enum field_kind {
	FIELD_EVENT_ID,
	FIELD_NAME,
	FIELD_TEXT,
	FIELD_TS,
	FIELD_SENT_AT,
	FIELD_PROPS,
	FIELD_CONSENT,
	FIELD_VERSION,
	FIELD_CONTEXT,
};

struct field {
	const char *name;
	enum field_kind kind;
	size_t max_len;
	size_t offset;	/* of the const char * in struct event (FIELD_TEXT) */
};

#define AT(f) offsetof(struct event, f)

static const struct field fields[] = {
	{ "event_id", FIELD_EVENT_ID, EVENT_ID_MAX, 0 },
	{ "name", FIELD_NAME, EVENT_NAME_MAX, 0 },
	{ "ts", FIELD_TS, 64, 0 },
	{ "sent_at", FIELD_SENT_AT, 64, 0 },
	{ "anonymous_id", FIELD_TEXT, EVENT_ID_MAX, AT(anonymous_id) },
	{ "user_id", FIELD_TEXT, EVENT_ID_MAX, AT(user_id) },
	{ "session_id", FIELD_TEXT, EVENT_ID_MAX, AT(session_id) },
	{ "url", FIELD_TEXT, EVENT_URL_MAX, AT(url) },
	{ "referrer", FIELD_TEXT, EVENT_URL_MAX, AT(referrer) },
	{ "props", FIELD_PROPS, 0, 0 },
	{ "consent", FIELD_CONSENT, 0, 0 },
	{ "version", FIELD_VERSION, 0, 0 },
	{ "context", FIELD_CONTEXT, 0, 0 },
};

#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

void
event_problem_add(struct event_problems *probs, enum err_code code,
    const char *path, const char *fmt, ...)
{
	struct event_problem *p;
	va_list ap;

	if (probs->n >= EVENT_MAX_PROBLEMS) {
		return;
	}
	p = &probs->items[probs->n++];
	p->code = code;
	snprintf(p->path, sizeof(p->path), "%s", path);
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof(p->message), fmt, ap);
	va_end(ap);
}

static const struct field *
field_find(const char *name)
{
	for (size_t i = 0; i < N_FIELDS; i++) {
		if (strcmp(fields[i].name, name) == 0) {
			return &fields[i];
		}
	}
	return NULL;
}

json_t *
event_segment_consent(json_t *context)
{
	return json_object_get(json_object_get(context, "consent"),
	    "categoryPreferences");
}

static void
check_consent(json_t *v, const char *base, struct event_problems *probs)
{
	char path[96];
	const char *k;
	json_t *flag;

	json_object_foreach(v, k, flag) {
		snprintf(path, sizeof(path), "%s.%.40s", base, k);
		if (strlen(k) > EVENT_CONSENT_KEY_MAX) {
			event_problem_add(probs, ERR_TOO_LONG, base,
			    "consent category names are at most %d bytes",
			    EVENT_CONSENT_KEY_MAX);
		} else if (!json_is_boolean(flag)) {
			event_problem_add(probs, ERR_WRONG_TYPE, path,
			    "consent flags must be booleans");
		}
	}
}

static bool
parse_time(json_t *v, const char *path, int64_t *us,
    struct event_problems *probs)
{
	if (!timeutil_parse_rfc3339(json_string_value(v), us)) {
		event_problem_add(probs, ERR_INVALID_TIMESTAMP, path,
		    "%s must be an RFC 3339 date-time such as "
		    "2026-11-23T08:45:00Z", path + 2);
		return false;
	}
	return true;
}

/* The Segment-style context: only its consent is read (and checked); the
 * rest is the sender's business, within the depth limit. */
static void
read_context(json_t *v, struct event_problems *probs)
{
	static const char base[] = "$.context.consent.categoryPreferences";
	json_t *prefs = event_segment_consent(v);

	if (!json_is_object(v)) {
		event_problem_add(probs, ERR_WRONG_TYPE, "$.context",
		    "context must be an object");
	} else if (jsonutil_depth(v, EVENT_PROPS_DEPTH_MAX) >
	    EVENT_PROPS_DEPTH_MAX) {
		event_problem_add(probs, ERR_TOO_DEEP, "$.context",
		    "context nests more than %d levels",
		    EVENT_PROPS_DEPTH_MAX);
	} else if (prefs != NULL && !json_is_object(prefs)) {
		event_problem_add(probs, ERR_WRONG_TYPE, base,
		    "categoryPreferences must be an object");
	} else if (prefs != NULL) {
		check_consent(prefs, base, probs);
	}
}

/* Checks one present field and stores it into ev. */
static void
field_read(const struct field *f, json_t *v, struct event *ev,
    struct event_problems *probs)
{
	char path[96];
	const char *s;
	size_t len;

	snprintf(path, sizeof(path), "$.%s", f->name);
	if (f->kind == FIELD_VERSION) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > EVENT_VERSION_MAX) {
			event_problem_add(probs, ERR_WRONG_TYPE, path,
			    "version must be an integer from 1 to %d",
			    EVENT_VERSION_MAX);
		} else {
			ev->version = json_integer_value(v);
		}
		return;
	}
	if (f->kind == FIELD_CONTEXT) {
		read_context(v, probs);
		return;
	}
	if (f->kind == FIELD_PROPS || f->kind == FIELD_CONSENT) {
		if (!json_is_object(v)) {
			event_problem_add(probs, ERR_WRONG_TYPE, path,
			    "%s must be an object", f->name);
		} else if (f->kind == FIELD_CONSENT) {
			check_consent(v, "$.consent", probs);
			ev->consent = v;
		} else if (jsonutil_depth(v, EVENT_PROPS_DEPTH_MAX) >
		    EVENT_PROPS_DEPTH_MAX) {
			event_problem_add(probs, ERR_TOO_DEEP, path,
			    "props nest more than %d levels",
			    EVENT_PROPS_DEPTH_MAX);
		} else {
			ev->props = v;
		}
		return;
	}
	if (!json_is_string(v)) {
		event_problem_add(probs, ERR_WRONG_TYPE, path,
		    "%s must be a string", f->name);
		return;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if (len == 0) {
		return;		/* empty strings count as absent */
	}
	if (len > f->max_len) {
		event_problem_add(probs, ERR_TOO_LONG, path,
		    "%s is longer than %zu bytes", f->name, f->max_len);
		return;
	}
	switch (f->kind) {
	case FIELD_EVENT_ID:
		if (!uuid7_is_valid_text(s)) {
			event_problem_add(probs, ERR_INVALID_EVENT_ID, path,
			    "event_id must be a UUID");
			return;
		}
		for (size_t i = 0; i < UUID7_TEXT_LEN; i++) {
			char c = s[i];
			ev->event_id[i] = (char)(c >= 'A' && c <= 'F' ?
			    c - 'A' + 'a' : c);
		}
		break;
	case FIELD_NAME:
		/* Its form is the tracking plan's to judge. */
		ev->name = s;
		break;
	case FIELD_TS:
		if (parse_time(v, path, &ev->ts_us, probs) &&
		    (ev->ts_us < TS_MIN_US ||
		    ev->ts_us > ev->received_us + TS_MAX_AHEAD_US)) {
			event_problem_add(probs, ERR_TIMESTAMP_OUT_OF_RANGE,
			    path, "ts must lie between 2000-01-01 and 24 hours "
			    "after the time it is received");
		}
		break;
	case FIELD_SENT_AT:
		ev->has_sent_at = parse_time(v, path, &ev->sent_at_us, probs);
		break;
	case FIELD_TEXT:
		*(const char **)((char *)ev + f->offset) = s;
		break;
	case FIELD_PROPS:
	case FIELD_CONSENT:
	case FIELD_VERSION:
	case FIELD_CONTEXT:
		break;
	}
}

static bool
has_problem_at(const struct event_problems *probs, const char *path)
{
	for (size_t i = 0; i < probs->n; i++) {
		if (strcmp(probs->items[i].path, path) == 0) {
			return true;
		}
	}
	return false;
}

bool
event_parse_native(json_t *v, int64_t received_us, struct event *ev,
    struct event_problems *probs)
{
	const char *k;
	json_t *value;

	memset(ev, 0, sizeof(*ev));
	probs->n = 0;
	ev->received_us = received_us;
	ev->ts_us = received_us;
	if (!json_is_object(v)) {
		event_problem_add(probs, ERR_NOT_AN_OBJECT, "$",
		    "an event must be a JSON object");
		return false;
	}
	json_object_foreach(v, k, value) {
		const struct field *f = field_find(k);
		if (f == NULL) {
			char path[96];
			snprintf(path, sizeof(path), "$.%.64s", k);
			event_problem_add(probs, ERR_UNKNOWN_FIELD, path,
			    "unknown field '%.64s'", k);
			continue;
		}
		field_read(f, value, ev, probs);
	}
	if (ev->name == NULL && !has_problem_at(probs, "$.name")) {
		event_problem_add(probs, ERR_MISSING_FIELD, "$.name",
		    "name is required");
	}
	/* consent wins over the context's when both are sent. */
	if (ev->consent == NULL) {
		ev->consent = event_segment_consent(json_object_get(v, "context"));
	}
	if (probs->n > 0) {
		return false;
	}
	if (ev->event_id[0] == '\0') {
		if (!uuid7_generate(received_us / 1000, ev->event_id)) {
			event_problem_add(probs, ERR_INTERNAL, "$.event_id",
			    "no randomness available to generate an "
			    "event_id");
			return false;
		}
		ev->event_id_generated = true;
	}
	return true;
}
