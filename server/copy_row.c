/* copy_row.c - COPY text format rows. */
#include "server/copy_row.h"

#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"

/* COPY text escaping: backslash, and the delimiter and line characters. */
static void
field_text(struct strbuf *out, const char *s)
{
	const char *run = s;

	if (s == NULL) {
		strbuf_append(out, "\\N", 2);
		return;
	}
	for (; *s != '\0'; s++) {
		const char *esc;
		switch (*s) {
		case '\\': esc = "\\\\"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		default: continue;
		}
		strbuf_append(out, run, (size_t)(s - run));
		strbuf_append(out, esc, 2);
		run = s + 1;
	}
	strbuf_append(out, run, (size_t)(s - run));
}

static void
field_time(struct strbuf *out, int64_t us)
{
	char text[TIMEUTIL_RFC3339_LEN];

	timeutil_format_rfc3339(us, text);
	strbuf_append(out, text, TIMEUTIL_RFC3339_LEN - 1);
}

static void
field_json(struct strbuf *out, const json_t *v, const char *if_null)
{
	char *text;

	if (v == NULL) {
		strbuf_append_str(out, if_null);
		return;
	}
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (text == NULL) {
		out->failed = true;
		return;
	}
	field_text(out, text);
	free(text);
}

/* The key both events and event_ids rows start with. */
static void
fields_key(struct strbuf *out, const char *site_id, const struct event *ev)
{
	field_text(out, site_id);
	strbuf_append_char(out, '\t');
	strbuf_append_str(out, ev->event_id);
	strbuf_append_char(out, '\t');
}

void
copy_row_event(struct strbuf *out, const char *site_id,
    const struct event *ev)
{
	fields_key(out, site_id, ev);
	field_text(out, ev->name);
	strbuf_append_char(out, '\t');
	field_time(out, ev->ts_us);
	strbuf_append_char(out, '\t');
	field_time(out, ev->received_us);
	strbuf_append_char(out, '\t');
	if (ev->has_sent_at) {
		field_time(out, ev->sent_at_us);
	} else {
		strbuf_append(out, "\\N", 2);
	}
	const char *const texts[] = { ev->anonymous_id, ev->user_id,
		ev->session_id, ev->url, ev->referrer };
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		strbuf_append_char(out, '\t');
		field_text(out, texts[i]);
	}
	strbuf_append_char(out, '\t');
	field_json(out, ev->props, "{}");
	strbuf_append_char(out, '\t');
	field_json(out, ev->consent, "{}");
	strbuf_append_char(out, '\n');
}

void
copy_row_event_id(struct strbuf *out, const char *site_id,
    const struct event *ev)
{
	fields_key(out, site_id, ev);
	field_time(out, ev->received_us);
	strbuf_append_char(out, '\n');
}

json_t *
copy_row_problems_json(const struct event_problems *probs)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < probs->n; i++) {
		const struct event_problem *p = &probs->items[i];
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s}",
		    "code", error_code_name(p->code), "path", p->path,
		    "message", p->message));
	}
	return arr;
}

void
copy_row_rejected(struct strbuf *out, const char *site_id,
    int64_t received_us, const char *request_id, size_t index,
    const json_t *payload, const struct event_problems *probs)
{
	json_t *errors = copy_row_problems_json(probs);

	field_text(out, site_id);
	strbuf_append_char(out, '\t');
	field_time(out, received_us);
	strbuf_append_char(out, '\t');
	field_text(out, request_id);
	strbuf_appendf(out, "\t%zu\t", index);
	field_json(out, payload, "null");
	strbuf_append_char(out, '\t');
	if (errors == NULL) {
		out->failed = true;
	} else {
		field_json(out, errors, "[]");
	}
	strbuf_append_char(out, '\n');
	json_decref(errors);
}
