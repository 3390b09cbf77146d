/* segment.h - messages of Segment's HTTP tracking API read as native
 * events, so that the tracking plan, consent and people apply to them
 * exactly as to events sent to /v1/events.
 *
 * segment_to_native moves fields, it judges none: what is wrong with a
 * message shows when the native event is parsed, with paths into the
 * native form, which is also what rejected_events keeps (and replays).
 * docs/api.md ("Segment-compatible API") lists what is read and what is
 * ignored. No I/O. */
#ifndef MILEPOST_COMMON_SEGMENT_H
#define MILEPOST_COMMON_SEGMENT_H

#include <jansson.h>
#include <stdbool.h>

enum segment_call {
	SEGMENT_TRACK,
	SEGMENT_PAGE,
	SEGMENT_SCREEN,
	SEGMENT_IDENTIFY,
	SEGMENT_ALIAS,
	SEGMENT_GROUP,
	SEGMENT_CALLS_
};

/* The call type names ("track", "page", ...), false if none. */
bool segment_call_of_type(const char *type, enum segment_call *out);

/* What a batch says for all its messages, and what the plan names. */
struct segment_defaults {
	const char *page_event;	/* what page and screen calls become */
	bool page_name;		/* they keep their name as a property */
	json_t *context;	/* the batch's context, or NULL */
	json_t *sent_at;	/* the batch's sentAt, or NULL */
};

/* The native event for the message msg of call (a new reference), or NULL
 * out of memory. A msg that is not an object is returned as it is (with a
 * new reference), for the native parser to refuse. */
json_t *segment_to_native(json_t *msg, enum segment_call call,
    const struct segment_defaults *d);

#endif
