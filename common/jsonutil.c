/* jsonutil.c - helpers over jansson values. */
#include "common/jsonutil.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The longest string so far, against its limit. */
struct strings {
	size_t longest, limit;
};

static void
note_string(struct strings *st, size_t n)
{
	st->longest = n > st->longest ? n : st->longest;
}

static size_t
extent(const json_t *v, size_t limit, struct strings *st)
{
	size_t deepest = 0, d, i;
	const char *k;
	json_t *child;

	if (json_is_string(v)) {
		note_string(st, json_string_length(v));
	}
	if (!json_is_object(v) && !json_is_array(v)) {
		return 0;
	}
	if (limit == 0) {
		return 1;
	}
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, child) {
			note_string(st, strlen(k));
			d = extent(child, limit - 1, st);
			deepest = d > deepest ? d : deepest;
			if (deepest >= limit || st->longest > st->limit) {
				break;
			}
		}
	} else {
		json_array_foreach(v, i, child) {
			d = extent(child, limit - 1, st);
			deepest = d > deepest ? d : deepest;
			if (deepest >= limit || st->longest > st->limit) {
				break;
			}
		}
	}
	return deepest + 1;
}

size_t
jsonutil_depth(const json_t *v, size_t limit)
{
	struct strings st = { .limit = SIZE_MAX };

	return extent(v, limit, &st);
}

size_t
jsonutil_extent(const json_t *v, size_t depth_limit, size_t string_limit,
    size_t *longest)
{
	struct strings st = { .limit = string_limit };
	size_t depth = extent(v, depth_limit, &st);

	*longest = st.longest;
	return depth;
}

size_t
jsonutil_count_values(const char *text, size_t len, size_t limit)
{
	/* A scalar starts where a value may start: after an opening bracket,
	 * a comma, a colon or at the start. Strings are values unless a colon
	 * follows them (keys), so each colon takes one back. */
	size_t n = 0, colons = 0;
	bool in_string = false, may_start = true;

	for (size_t i = 0; i < len && n - colons <= limit; i++) {
		char c = text[i];

		if (in_string) {
			if (c == '\\') {
				i++;
			} else if (c == '"') {
				in_string = false;
			}
			continue;
		}
		switch (c) {
		case '"':
			in_string = true;
			n++;
			may_start = false;
			break;
		case '{':
		case '[':
			n++;
			may_start = true;
			break;
		case ',':
			may_start = true;
			break;
		case ':':
			colons++;
			may_start = true;
			break;
		case ' ':
		case '\t':
		case '\n':
		case '\r':
			break;
		default:
			/* }, ] and the rest of a scalar start nothing. */
			n += may_start && c != '}' && c != ']';
			may_start = false;
			break;
		}
	}
	return n < colons ? 0 : n - colons > limit ? limit + 1 : n - colons;
}
