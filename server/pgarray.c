/* pgarray.c - PostgreSQL array literals in text format. */
#include "server/pgarray.h"

#include <inttypes.h>

#include "common/timeutil.h"

void
pgarray_init(struct pgarray *a)
{
	strbuf_init(&a->text);
	a->closed = false;
}

void
pgarray_finish(struct pgarray *a)
{
	strbuf_finish(&a->text);
}

void
pgarray_reset(struct pgarray *a)
{
	strbuf_reset(&a->text);
	a->closed = false;
}

/* Opens the literal or separates the element from the previous one. */
static void
next_element(struct pgarray *a)
{
	strbuf_append_char(&a->text, a->text.len == 0 ? '{' : ',');
}

void
pgarray_add_text(struct pgarray *a, const char *s)
{
	next_element(a);
	if (s == NULL) {
		strbuf_append_str(&a->text, "NULL");
		return;
	}
	/* Quoted, so that no content (braces, commas, spaces, the word
	 * NULL) is read as syntax; inside quotes only '"' and '\' are
	 * special. */
	strbuf_append_char(&a->text, '"');
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			strbuf_append_char(&a->text, '\\');
		}
		strbuf_append_char(&a->text, *p);
	}
	strbuf_append_char(&a->text, '"');
}

void
pgarray_add_int(struct pgarray *a, int64_t v)
{
	next_element(a);
	strbuf_appendf(&a->text, "%" PRId64, v);
}

void
pgarray_add_bool(struct pgarray *a, bool v)
{
	next_element(a);
	strbuf_append_char(&a->text, v ? 't' : 'f');
}

void
pgarray_add_time(struct pgarray *a, int64_t us)
{
	char text[TIMEUTIL_RFC3339_LEN];

	timeutil_format_rfc3339(us, text);
	next_element(a);
	strbuf_append(&a->text, text, TIMEUTIL_RFC3339_LEN - 1);
}

const char *
pgarray_value(struct pgarray *a)
{
	if (!a->closed) {
		if (a->text.len == 0) {
			strbuf_append_char(&a->text, '{');
		}
		strbuf_append_char(&a->text, '}');
		a->closed = true;
	}
	return strbuf_failed(&a->text) ? NULL : a->text.data;
}
