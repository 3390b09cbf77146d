/* libFuzzer target: hostile Segment messages through their reading as
 * native events (every call type, with and without batch defaults), and
 * hostile origins and allowed_origins patterns through their checks. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/event.h"
#include "common/jsonutil.h"
#include "common/origin.h"
#include "common/segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Values as the parser made them, keys not counted. */
static size_t
parsed_values(json_t *v)
{
	size_t n = 1, i;
	const char *k;
	json_t *child;

	if (json_is_object(v)) {
		json_object_foreach(v, k, child) {
			n += parsed_values(child);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child) {
			n += parsed_values(child);
		}
	}
	return n;
}

static void
origins(const char *text)
{
	char why[160];
	const char *nl = strchr(text, '\n');
	char pattern[ORIGIN_MAX + 1];
	size_t n = nl != NULL ? (size_t)(nl - text) : strlen(text);

	if (n > ORIGIN_MAX) {
		n = ORIGIN_MAX;
	}
	memcpy(pattern, text, n);
	pattern[n] = '\0';
	/* A valid pattern without a wildcard is an origin it matches. */
	if (origin_pattern_is_valid(pattern, why, sizeof(why)) &&
	    strchr(pattern, '*') == NULL && !origin_matches(pattern, pattern)) {
		__builtin_trap();
	}
	(void)origin_matches(pattern, nl != NULL ? nl + 1 : "");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	json_t *msg, *ctx;
	json_error_t jerr;

	if (text == NULL) {
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	origins(text);
	msg = json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
	ctx = json_is_object(msg) ? json_object_get(msg, "context") : NULL;
	/* The count that bounds a body before it is parsed is exact. */
	if (msg != NULL && jsonutil_count_values(text, size, SIZE_MAX - 1) !=
	    parsed_values(msg)) {
		__builtin_trap();
	}
	for (int call = 0; msg != NULL && call <= SEGMENT_CALLS_; call++) {
		struct segment_defaults d = { .page_event = "page_viewed",
			.context = call % 2 ? ctx : NULL,
			.sent_at = call % 3 ? json_object_get(msg, "sentAt") : NULL };
		json_t *n = segment_to_native(msg, (enum segment_call)call, &d);
		struct event ev;
		struct event_problems probs;
		if (n == NULL) {
			continue;	/* out of memory */
		}
		if (json_is_object(msg) != json_is_object(n)) {
			__builtin_trap();
		}
		/* A native context holds the few keys read, shared with the
		 * message's or the batch's context: a copy of all of it per
		 * message made a 512 KB batch take gigabytes. */
		if (json_object_size(json_object_get(n, "context")) > 5) {
			__builtin_trap();
		}
		(void)event_parse_native(n, 1700000000000000, &ev, &probs);
		json_decref(n);
	}
	json_decref(msg);
	free(text);
	return 0;
}
