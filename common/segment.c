/* segment.c - messages of Segment's HTTP tracking API read as native
 * events. */
#include "common/segment.h"

#include <string.h>

#include "common/uuid7.h"

/* What page and screen calls become when the plan has no page event: the
 * plan then judges it as any unknown event. */
#define DEFAULT_PAGE_EVENT "page_viewed"

static const char *const type_names[SEGMENT_CALLS_] = {
	[SEGMENT_TRACK] = "track", [SEGMENT_PAGE] = "page",
	[SEGMENT_SCREEN] = "screen", [SEGMENT_IDENTIFY] = "identify",
	[SEGMENT_ALIAS] = "alias", [SEGMENT_GROUP] = "group",
};

/* Properties of a page call that say where the page is: the native url
 * and referrer carry that, and a plan should not have to list them. (The
 * title stays: it says what the page is, and plans list it.) */
static const char *const page_address_keys[] = {
	"url", "referrer", "path", "search",
};

bool
segment_call_of_type(const char *type, enum segment_call *out)
{
	for (int i = 0; type != NULL && i < SEGMENT_CALLS_; i++) {
		if (strcmp(type, type_names[i]) == 0) {
			*out = (enum segment_call)i;
			return true;
		}
	}
	return false;
}

/* Sets key of o to v (borrowed) unless v is NULL or JSON null: Segment's
 * libraries send null for what is not set (a visitor's userId). */
static bool
set_borrowed(json_t *o, const char *key, json_t *v)
{
	return v == NULL || json_is_null(v) || json_object_set(o, key, v) == 0;
}

/* Sets key of o to v (a new reference, taken) unless v is NULL. */
static bool
set_taken(json_t *o, const char *key, json_t *v)
{
	return v == NULL || json_object_set_new(o, key, v) == 0;
}

/* The event id of a messageId: itself when it is a UUID, else the id its
 * text always maps to. Anything else is passed on for the parser to
 * refuse. New reference, or NULL (absent, or out of memory). */
static json_t *
event_id_of(json_t *message_id)
{
	char id[UUID7_TEXT_LEN];

	if (!json_is_string(message_id) ||
	    json_string_length(message_id) == 0 ||
	    uuid7_is_valid_text(json_string_value(message_id))) {
		return json_incref(message_id);
	}
	if (!uuid7_from_name(json_string_value(message_id),
	    json_string_length(message_id), id)) {
		return NULL;
	}
	return json_string(id);
}

/* The keys of a context that the collector reads (docs/api.md,
 * "Segment-compatible API"); the rest is never stored. */
static const char *const context_keys[] = {
	"consent", "campaign", "milepost", "userAgent", "page",
};

/* The context the native event carries: the read keys of the message's
 * context, else of the batch's. The values are shared, never copied: a
 * batch context of any size costs each message a handful of references,
 * not a copy (a merged copy per message let a 512 KB body take gigabytes).
 * A context that is not an object is passed on for the parser to refuse.
 * New reference, or NULL (none, or out of memory). */
static json_t *
context_of(json_t *own, json_t *batch)
{
	json_t *ctx, *v;

	if (own != NULL && !json_is_object(own)) {
		return json_incref(own);
	}
	if (own == NULL && batch != NULL && !json_is_object(batch)) {
		return json_incref(batch);
	}
	if (own == NULL && batch == NULL) {
		return NULL;
	}
	ctx = json_object();
	for (size_t i = 0; ctx != NULL && i < sizeof(context_keys) /
	    sizeof(context_keys[0]); i++) {
		v = json_object_get(own, context_keys[i]);
		v = v != NULL ? v : json_object_get(batch, context_keys[i]);
		if (v != NULL && json_object_set(ctx, context_keys[i], v) != 0) {
			json_decref(ctx);
			ctx = NULL;
		}
	}
	return ctx;
}

/* A page call's properties without the page's address, and, when name
 * is set, with the call's name as their "name". New reference, NULL when
 * there are none (or out of memory). */
static json_t *
page_props(json_t *msg, json_t *props, bool name)
{
	json_t *kept, *call_name = name ? json_object_get(msg, "name") : NULL;

	if (props != NULL && !json_is_object(props)) {
		return json_incref(props);
	}
	if (props == NULL && call_name == NULL) {
		return NULL;
	}
	kept = props != NULL ? json_copy(props) : json_object();
	for (size_t i = 0; kept != NULL && i < sizeof(page_address_keys) /
	    sizeof(page_address_keys[0]); i++) {
		json_object_del(kept, page_address_keys[i]);
	}
	if (kept != NULL && call_name != NULL &&
	    json_object_set(kept, "name", call_name) != 0) {
		json_decref(kept);
		return NULL;
	}
	return kept;
}

/* A page call's own url or referrer property, else its context's. */
static json_t *
page_field(json_t *props, json_t *page, const char *key)
{
	json_t *v = json_object_get(props, key);

	return v != NULL ? v : json_object_get(page, key);
}

json_t *
segment_to_native(json_t *msg, enum segment_call call,
    const struct segment_defaults *d)
{
	json_t *n, *ctx, *page, *props, *ts, *sent_at;
	bool is_page = call == SEGMENT_PAGE || call == SEGMENT_SCREEN;
	bool ok;

	if (!json_is_object(msg)) {
		return json_incref(msg);
	}
	n = json_object();
	ctx = context_of(json_object_get(msg, "context"), d->context);
	page = json_object_get(ctx, "page");
	props = json_object_get(msg, "properties");
	ts = json_object_get(msg, "originalTimestamp");
	ts = ts != NULL ? ts : json_object_get(msg, "timestamp");
	sent_at = json_object_get(msg, "sentAt");
	sent_at = sent_at != NULL ? sent_at : d->sent_at;
	ok = n != NULL &&
	    set_taken(n, "event_id", event_id_of(json_object_get(msg,
	    "messageId"))) &&
	    set_borrowed(n, "ts", ts) &&
	    set_borrowed(n, "sent_at", sent_at) &&
	    set_borrowed(n, "user_id", json_object_get(msg, "userId")) &&
	    set_borrowed(n, "anonymous_id", json_object_get(msg,
	    call == SEGMENT_ALIAS ? "previousId" : "anonymousId")) &&
	    set_borrowed(n, "url", is_page ? page_field(props, page, "url") :
	    json_object_get(page, "url")) &&
	    set_borrowed(n, "referrer", is_page ? page_field(props, page,
	    "referrer") : json_object_get(page, "referrer")) &&
	    set_borrowed(n, "context", ctx);
	switch (call) {
	case SEGMENT_TRACK:
		ok = ok && set_borrowed(n, "name", json_object_get(msg,
		    "event")) && set_borrowed(n, "props", props);
		break;
	case SEGMENT_PAGE:
	case SEGMENT_SCREEN:
		ok = ok && set_taken(n, "name", json_string(d->page_event !=
		    NULL ? d->page_event : DEFAULT_PAGE_EVENT)) &&
		    set_taken(n, "props", page_props(msg, props,
		    d->page_name));
		break;
	case SEGMENT_IDENTIFY:
	case SEGMENT_ALIAS:
		/* Traits are a profile, which belongs in the CRM. */
		ok = ok && set_taken(n, "type", json_string("identify"));
		break;
	case SEGMENT_GROUP:
		ok = ok && set_taken(n, "type", json_string("group"));
		break;
	case SEGMENT_CALLS_:
		/* An unknown or missing type, for the parser to name. */
		ok = ok && set_taken(n, "type", json_object_get(msg, "type") !=
		    NULL ? json_incref(json_object_get(msg, "type")) :
		    json_null());
		break;
	}
	json_decref(ctx);
	if (!ok) {
		json_decref(n);
		return NULL;
	}
	return n;
}
