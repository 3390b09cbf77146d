/* event.c - native events: one table of fields, one check per kind. */
#include "common/event.h"

#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/jsonutil.h"
#include "common/timeutil.h"
#include "common/urltext.h"

#define CAMPAIGN_FIELD_MAX 255

enum field_kind {
	FIELD_EVENT_ID,
	FIELD_TYPE,
	FIELD_NAME,
	FIELD_IDENTITY,	/* a text id that must not be a placeholder */
	FIELD_USER_ID,	/* the same, and not empty either */
	FIELD_TEXT,
	FIELD_TS,
	FIELD_SENT_AT,
	FIELD_PROPS,
	FIELD_CONSENT,
	FIELD_VERSION,
	FIELD_CONTEXT,
	FIELD_CAMPAIGN,
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
	{ "type", FIELD_TYPE, 16, 0 },
	{ "name", FIELD_NAME, EVENT_NAME_MAX, 0 },
	{ "ts", FIELD_TS, 64, 0 },
	{ "sent_at", FIELD_SENT_AT, 64, 0 },
	{ "anonymous_id", FIELD_IDENTITY, EVENT_ID_MAX, AT(anonymous_id) },
	{ "user_id", FIELD_USER_ID, EVENT_ID_MAX, AT(user_id) },
	{ "user_hash", FIELD_TEXT, 128, AT(user_hash) },
	{ "session_id", FIELD_IDENTITY, EVENT_ID_MAX, AT(session_id) },
	{ "url", FIELD_TEXT, EVENT_URL_MAX, AT(url) },
	{ "referrer", FIELD_TEXT, EVENT_URL_MAX, AT(referrer) },
	{ "props", FIELD_PROPS, 0, 0 },
	{ "consent", FIELD_CONSENT, 0, 0 },
	{ "version", FIELD_VERSION, 0, 0 },
	{ "context", FIELD_CONTEXT, 0, 0 },
	{ "campaign", FIELD_CAMPAIGN, 0, 0 },
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

/* Compared without case, after trimming blanks. */
static const char *const placeholder_ids[] = {
	"", "null", "undefined", "0", "-1", "nil", "none", "nan", "false",
	"true", "anonymous", "guest", "unknown", "n/a", "[object object]",
	"00000000-0000-0000-0000-000000000000",
};

bool
event_id_is_placeholder(const char *id)
{
	char trimmed[40];
	size_t len;

	while (*id == ' ' || *id == '\t') {
		id++;
	}
	len = strlen(id);
	while (len > 0 && (id[len - 1] == ' ' || id[len - 1] == '\t')) {
		len--;
	}
	if (len >= sizeof(trimmed)) {
		return false;	/* longer than any placeholder */
	}
	memcpy(trimmed, id, len);
	trimmed[len] = '\0';
	for (size_t i = 0; i < sizeof(placeholder_ids) /
	    sizeof(placeholder_ids[0]); i++) {
		if (urltext_equal_ci(placeholder_ids[i], trimmed)) {
			return true;
		}
	}
	return false;
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
		    "2026-11-23T08:45:00Z, from 0001-01-01 to 9999-12-31 in "
		    "UTC", path + 2);
		return false;
	}
	return true;
}

/* Campaign fields given explicitly (native campaign, or Segment's
 * context.campaign): strings of the five known names. */
static bool
read_campaign(json_t *v, const char *base, struct event_problems *probs)
{
	static const char *const names[] = { "source", "medium", "name",
		"term", "content" };
	size_t n_before = probs->n;
	char path[96];
	const char *k;
	json_t *s;

	if (!json_is_object(v)) {
		event_problem_add(probs, ERR_WRONG_TYPE, base,
		    "campaign must be an object");
		return false;
	}
	json_object_foreach(v, k, s) {
		size_t i = 0;
		while (i < sizeof(names) / sizeof(names[0]) &&
		    strcmp(names[i], k) != 0) {
			i++;
		}
		snprintf(path, sizeof(path), "%s.%.40s", base, k);
		if (i == sizeof(names) / sizeof(names[0])) {
			event_problem_add(probs, ERR_UNKNOWN_FIELD, path,
			    "campaign fields are source, medium, name, term "
			    "and content");
		} else if (!json_is_string(s) && !json_is_null(s)) {
			event_problem_add(probs, ERR_WRONG_TYPE, path,
			    "campaign fields are strings");
		} else if (json_string_length(s) > CAMPAIGN_FIELD_MAX) {
			event_problem_add(probs, ERR_TOO_LONG, path,
			    "campaign fields are at most %d bytes",
			    CAMPAIGN_FIELD_MAX);
		}
	}
	return probs->n == n_before;
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
	if (json_object_get(v, "campaign") != NULL) {
		read_campaign(json_object_get(v, "campaign"),
		    "$.context.campaign", probs);
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
		ev->context = json_is_object(v) ? v : NULL;
		return;
	}
	if (f->kind == FIELD_CAMPAIGN) {
		ev->campaign = read_campaign(v, "$.campaign", probs) ? v : NULL;
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
	/* An empty anonymous or session id is just absent; an empty user
	 * id is a login that went wrong. */
	if ((f->kind == FIELD_IDENTITY && len > 0 &&
	    event_id_is_placeholder(s)) ||
	    (f->kind == FIELD_USER_ID && event_id_is_placeholder(s))) {
		event_problem_add(probs, ERR_PLACEHOLDER_ID, path,
		    "'%.32s' is a placeholder, not an id: leave %s out when "
		    "there is none", s, f->name);
		return;
	}
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
	case FIELD_TYPE:
		if (strcmp(s, "identify") == 0) {
			ev->type = EVENT_IDENTIFY;
		} else if (strcmp(s, "group") == 0) {
			/* Kept aside, so that it can be replayed if
			 * accounts ever come. */
			event_problem_add(probs, ERR_UNSUPPORTED_CALL, path,
			    "group calls are not supported: Milepost keeps "
			    "no groups or accounts");
		} else if (strcmp(s, "track") != 0) {
			event_problem_add(probs, ERR_WRONG_TYPE, path,
			    "type is track (the default) or identify");
		}
		break;
	case FIELD_NAME:
		/* Its form is the tracking plan's to judge. */
		ev->name = s;
		break;
	case FIELD_TS:
		/* Its range is judged once corrected for the sender's clock
		 * (enrich_clock). */
		parse_time(v, path, &ev->ts_us, probs);
		break;
	case FIELD_SENT_AT:
		ev->has_sent_at = parse_time(v, path, &ev->sent_at_us, probs);
		break;
	case FIELD_TEXT:
	case FIELD_IDENTITY:
	case FIELD_USER_ID:
		*(const char **)((char *)ev + f->offset) = s;
		break;
	case FIELD_PROPS:
	case FIELD_CONSENT:
	case FIELD_VERSION:
	case FIELD_CONTEXT:
	case FIELD_CAMPAIGN:
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

/* An identify call names the user; it is no action, and carries no
 * traits: a person's profile belongs in the CRM, not here. */
static void
check_identify(struct event *ev, struct event_problems *probs)
{
	if (ev->name != NULL && strcmp(ev->name, EVENT_IDENTIFY_NAME) != 0) {
		event_problem_add(probs, ERR_UNKNOWN_FIELD, "$.name",
		    "an identify call has no name");
	}
	ev->name = EVENT_IDENTIFY_NAME;
	if (ev->user_id == NULL && !has_problem_at(probs, "$.user_id")) {
		event_problem_add(probs, ERR_MISSING_FIELD, "$.user_id",
		    "an identify call needs the user_id it links to");
	}
	if (ev->props != NULL && json_object_size(ev->props) > 0) {
		event_problem_add(probs, ERR_UNKNOWN_FIELD, "$.props",
		    "an identify call carries no properties: Milepost keeps "
		    "no traits");
	}
}

/* Feeds one optional text to the hash, with its presence and length, so
 * that no two different tuples hash the same bytes. */
static void
claim_part(crypto_generichash_state *st, const char *s)
{
	unsigned char present = s != NULL;
	uint64_t len = s != NULL ? strlen(s) : 0;

	crypto_generichash_update(st, &present, 1);
	crypto_generichash_update(st, (const unsigned char *)&len,
	    sizeof(len));
	if (len > 0) {
		crypto_generichash_update(st, (const unsigned char *)s,
		    (unsigned long long)len);
	}
}

/* A retry repeats the event as it was sent; an order id reused for
 * another order, or an id another person's client claims, does not. So
 * the claim is what the client sent (before identity verification,
 * consent or a cookieless id change anything): its type, name, anonymous
 * id and user id. Hashed: event_ids keeps it for the dedup window, and
 * should not keep a copy of the ids. */
static void
event_claim(struct event *ev)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[EVENT_CLAIM_BYTES];
	unsigned char type = (unsigned char)ev->type;
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, sizeof(digest));
	crypto_generichash_update(&st, &type, 1);
	claim_part(&st, ev->name);
	claim_part(&st, ev->anonymous_id);
	claim_part(&st, ev->user_id);
	crypto_generichash_final(&st, digest, sizeof(digest));
	ev->claim[0] = '\\';
	ev->claim[1] = 'x';
	for (size_t i = 0; i < sizeof(digest); i++) {
		ev->claim[2 + 2 * i] = hex[digest[i] >> 4];
		ev->claim[3 + 2 * i] = hex[digest[i] & 15];
	}
	ev->claim[EVENT_CLAIM_LEN - 1] = '\0';
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
	if (ev->type == EVENT_IDENTIFY) {
		check_identify(ev, probs);
	} else if (ev->name == NULL && !has_problem_at(probs, "$.name") &&
	    !has_problem_at(probs, "$.type")) {
		event_problem_add(probs, ERR_MISSING_FIELD, "$.name",
		    "name is required");
	}
	/* The event's own consent and campaign win over the context's. */
	if (ev->consent == NULL) {
		ev->consent = event_segment_consent(ev->context);
	}
	if (ev->campaign == NULL && json_is_object(json_object_get(
	    ev->context, "campaign"))) {
		ev->campaign = json_object_get(ev->context, "campaign");
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
	} else {
		event_claim(ev);
	}
	return true;
}

const char *
event_user_hash(const struct event *ev)
{
	if (ev->user_hash != NULL) {
		return ev->user_hash;
	}
	return json_string_value(json_object_get(json_object_get(ev->context,
	    "milepost"), "user_hash"));
}
