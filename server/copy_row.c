/* copy_row.c - COPY text format rows. */
#include "server/copy_row.h"

#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"

/* COPY text escaping: backslash, and the delimiter and line characters. */
void
copy_row_text(struct strbuf *out, const char *s)
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

void
copy_row_time(struct strbuf *out, int64_t us)
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
	copy_row_text(out, text);
	free(text);
}

/* A tab, then n, or NULL when it is 0. */
static void
field_positive(struct strbuf *out, int64_t n)
{
	if (n > 0) {
		strbuf_appendf(out, "\t%lld", (long long)n);
	} else {
		strbuf_append_str(out, "\t\\N");
	}
}

/* The key both events and event_ids rows start with. */
static void
fields_key(struct strbuf *out, const char *site_id, const struct event *ev)
{
	copy_row_text(out, site_id);
	strbuf_append_char(out, '\t');
	strbuf_append_str(out, ev->event_id);
	strbuf_append_char(out, '\t');
}

/* A text field where "" stands for NULL. */
static void
field_optional(struct strbuf *out, const char *s)
{
	strbuf_append_char(out, '\t');
	copy_row_text(out, s[0] != '\0' ? s : NULL);
}

static void
fields_enrichment(struct strbuf *out, const struct enrichment *enr)
{
	const char *texts[ENRICH_TEXTS];

	enrich_texts(enr, texts);
	for (size_t i = 0; i < ENRICH_TEXTS; i++) {
		field_optional(out, texts[i]);
	}
	strbuf_append_str(out, enr->ua.bot ? "\tt" : "\tf");
	strbuf_append_str(out, enr->ts_adjusted ? "\tt" : "\tf");
}

void
copy_row_event(struct strbuf *out, const char *site_id,
    const struct event *ev, const struct enrichment *enr)
{
	fields_key(out, site_id, ev);
	copy_row_text(out, ev->name);
	strbuf_append_char(out, '\t');
	copy_row_time(out, ev->ts_us);
	strbuf_append_char(out, '\t');
	copy_row_time(out, ev->received_us);
	strbuf_append_char(out, '\t');
	if (ev->has_sent_at) {
		copy_row_time(out, ev->sent_at_us);
	} else {
		strbuf_append(out, "\\N", 2);
	}
	const char *const texts[] = { ev->anonymous_id, ev->user_id,
		ev->url, ev->referrer };
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		strbuf_append_char(out, '\t');
		copy_row_text(out, texts[i]);
	}
	strbuf_append_char(out, '\t');
	field_json(out, ev->props, "{}");
	strbuf_append_char(out, '\t');
	field_json(out, ev->consent, "{}");
	field_positive(out, ev->plan_version);
	field_positive(out, ev->version);
	strbuf_append_char(out, '\t');
	copy_row_text(out, ev->kind);
	strbuf_append_char(out, '\t');
	copy_row_text(out, ev->phase);
	strbuf_append_str(out, ev->consented ? "\tt" : "\tf");
	fields_enrichment(out, enr);
}

void
copy_row_event_id(struct strbuf *out, const char *site_id,
    const struct event *ev)
{
	fields_key(out, site_id, ev);
	copy_row_time(out, ev->received_us);
	strbuf_append_char(out, '\t');
	copy_row_text(out, ev->claim[0] != '\0' ? ev->claim : NULL);
	strbuf_append_char(out, '\n');
}

void
copy_row_replayed(struct strbuf *out, const char *site_id,
    const char *rejected_id, const char *event_id)
{
	copy_row_text(out, site_id);
	strbuf_append_char(out, '\t');
	copy_row_text(out, rejected_id);
	strbuf_append_char(out, '\t');
	copy_row_text(out, event_id);
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

/* A PostgreSQL array literal of the distinct codes, e.g.
 * {name_format,too_long}: wire names are snake_case, so nothing needs
 * quoting. */
static void
field_codes(struct strbuf *out, const struct event_problems *probs)
{
	const char *sep = "";

	strbuf_append_char(out, '{');
	for (size_t i = 0; i < probs->n; i++) {
		size_t j = 0;
		while (j < i && probs->items[j].code != probs->items[i].code) {
			j++;
		}
		if (j == i) {
			strbuf_appendf(out, "%s%s", sep,
			    error_code_name(probs->items[i].code));
			sep = ",";
		}
	}
	strbuf_append_char(out, '}');
}

/* A PostgreSQL array literal of arbitrary strings, each quoted. */
static void
field_text_array(struct strbuf *out, const json_t *arr)
{
	struct strbuf elem;
	size_t i;
	json_t *v;

	strbuf_init(&elem);
	strbuf_append_char(&elem, '{');
	json_array_foreach((json_t *)arr, i, v) {
		const char *s = json_string_value(v);
		strbuf_append_str(&elem, i == 0 ? "\"" : ",\"");
		for (; s != NULL && *s != '\0'; s++) {
			if (*s == '"' || *s == '\\') {
				strbuf_append_char(&elem, '\\');
			}
			strbuf_append_char(&elem, *s);
		}
		strbuf_append_char(&elem, '"');
	}
	strbuf_append_char(&elem, '}');
	if (strbuf_failed(&elem)) {
		out->failed = true;
	} else {
		copy_row_text(out, elem.data);
	}
	strbuf_finish(&elem);
}

void
copy_row_rejected(struct strbuf *out, const struct rejected_row *r)
{
	json_t *errors = copy_row_problems_json(r->probs);

	copy_row_text(out, r->site_id);
	strbuf_append_char(out, '\t');
	copy_row_time(out, r->received_us);
	strbuf_append_char(out, '\t');
	copy_row_text(out, r->request_id);
	strbuf_appendf(out, "\t%zu\t", r->index);
	field_json(out, r->payload, "null");
	strbuf_append_char(out, '\t');
	if (errors == NULL) {
		out->failed = true;
	} else {
		field_json(out, errors, "[]");
	}
	strbuf_append_char(out, '\t');
	copy_row_text(out, r->event_name);
	strbuf_append_char(out, '\t');
	field_codes(out, r->probs);
	strbuf_append_str(out, r->quarantined ? "\tt\t" : "\tf\t");
	copy_row_text(out, r->derived_anonymous_id);
	strbuf_append_char(out, '\t');
	field_json(out, r->consent_overrides, "{}");
	strbuf_append_char(out, '\t');
	field_text_array(out, r->redacted);
	strbuf_append_char(out, '\n');
	json_decref(errors);
}
