/* jsonutil.c - helpers over jansson values. */
#include "common/jsonutil.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"

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

/* The text of d with the fewest significant digits that reads back as
 * d (17 always do): positional from 1e-4 to 1e16, else with an exponent,
 * and with a ".0" when it would otherwise read as an integer. */
static void
append_shortest_real(struct strbuf *out, double d)
{
	char buf[48];
	int digits = 1, exp;

	for (; digits < 17; digits++) {
		snprintf(buf, sizeof(buf), "%.*e", digits - 1, d);
		if (strtod(buf, NULL) == d) {
			break;
		}
	}
	snprintf(buf, sizeof(buf), "%.*e", digits - 1, d);
	exp = atoi(strchr(buf, 'e') + 1);
	if (exp >= -4 && exp < 16) {
		snprintf(buf, sizeof(buf), "%.*f",
		    digits - 1 - exp > 0 ? digits - 1 - exp : 0, d);
	} else if (digits == 1) {
		/* "1e+300", as 1.e+300 would not be JSON. */
		snprintf(buf, sizeof(buf), "%.0e", d);
	}
	strbuf_append_str(out, buf);
	if (strpbrk(buf, ".e") == NULL) {
		strbuf_append_str(out, ".0");
	}
}

/* The next real number of jansson's text at or after *at, outside
 * strings: its start, and its length in *len; NULL if there is none.
 * *in_string carries the scan's state between calls. */
static const char *
next_real(const char *text, size_t *at, bool *in_string, size_t *len)
{
	for (size_t i = *at; text[i] != '\0';) {
		char c = text[i];
		if (*in_string || (c != '-' && (c < '0' || c > '9'))) {
			/* jansson escapes every quote inside a string. */
			if (*in_string && c == '\\' && text[i + 1] != '\0') {
				i += 2;
				continue;
			}
			*in_string = *in_string != (c == '"');
			i++;
			continue;
		}
		*len = strspn(text + i, "+-.0123456789eE");
		/* Within the number only: a scan to the text's end per
		 * integer would be quadratic. */
		if (memchr(text + i, '.', *len) != NULL ||
		    memchr(text + i, 'e', *len) != NULL ||
		    memchr(text + i, 'E', *len) != NULL) {
			*at = i;
			return text + i;
		}
		i += *len;
	}
	return NULL;
}

char *
jsonutil_dumps(const json_t *v, size_t flags)
{
	char *text = json_dumps(v, flags);
	struct strbuf out;
	bool in_string = false;
	size_t at = 0, done = 0, len;
	const char *real;

	/* Most answers (ingest's) hold no real: no copy for them. */
	if (text == NULL ||
	    (real = next_real(text, &at, &in_string, &len)) == NULL) {
		return text;
	}
	strbuf_init(&out);
	for (; real != NULL; real = next_real(text, &at, &in_string, &len)) {
		strbuf_append(&out, text + done, at - done);
		append_shortest_real(&out, strtod(real, NULL));
		at += len;
		done = at;
	}
	strbuf_append_str(&out, text + done);
	free(text);
	if (strbuf_failed(&out)) {
		strbuf_finish(&out);
		return NULL;
	}
	return out.data;	/* NUL-terminated, plain malloc'd memory */
}
