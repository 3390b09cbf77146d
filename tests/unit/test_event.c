/* Native event parsing and validation, driven by data/events.jsonl: each
 * line has an input, the error code expected (null when valid) and its
 * JSON path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/event.h"
#include "common/timeutil.h"

static const char *cases_path;

/* Inputs too long to write in the data file are spelled @URL4097@. */
static void
expand_placeholders(json_t *input)
{
	json_t *url = json_object_get(input, "url");

	if (json_is_string(url) && strcmp(json_string_value(url),
	    "@URL4097@") == 0) {
		char *big = malloc(EVENT_URL_MAX + 2);
		assert_non_null(big);
		memset(big, 'x', EVENT_URL_MAX + 1);
		big[EVENT_URL_MAX + 1] = '\0';
		json_object_set_new(input, "url", json_string(big));
		free(big);
	}
}

static void
test_cases(void **state)
{
	int64_t now = timeutil_now_us();
	json_error_t jerr;
	char line[16384];
	int n = 0;
	FILE *f = fopen(cases_path, "r");

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		struct event_problems probs;
		struct event ev;
		json_t *c = json_loads(line, 0, &jerr);
		if (c == NULL) {
			fail_msg("bad case line: %s", jerr.text);
		}
		const char *name = json_string_value(json_object_get(c, "case"));
		json_t *input = json_object_get(c, "input");
		json_t *code = json_object_get(c, "code");
		json_t *path = json_object_get(c, "path");
		expand_placeholders(input);
		bool ok = event_parse_native(input, now, &ev, &probs);
		if (json_is_null(code)) {
			if (!ok) {
				fail_msg("%s: expected valid, got %s at %s", name,
				    error_code_name(probs.items[0].code),
				    probs.items[0].path);
			}
			assert_int_equal(strlen(ev.event_id), 36);
		} else {
			bool found = false;
			if (ok) {
				fail_msg("%s: expected %s, got valid", name,
				    json_string_value(code));
			}
			for (size_t i = 0; i < probs.n; i++) {
				found = found || (strcmp(error_code_name(
				    probs.items[i].code), json_string_value(code))
				    == 0 && strcmp(probs.items[i].path,
				    json_string_value(path)) == 0);
			}
			if (!found) {
				fail_msg("%s: expected %s at %s, got %s at %s",
				    name, json_string_value(code),
				    json_string_value(path),
				    error_code_name(probs.items[0].code),
				    probs.items[0].path);
			}
		}
		json_decref(c);
		n++;
	}
	fclose(f);
	assert_true(n >= 30);
}

static void
test_fields_are_read(void **state)
{
	struct event_problems probs;
	struct event ev;
	json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:i}}",
	    "event_id", "0190B3C4-1234-7ABC-8DEF-0123456789AB",
	    "name", "cart_added", "ts", "2025-06-01T12:00:00.5+02:00",
	    "user_id", "u1", "url", "", "props", "qty", 2);

	(void)state;
	assert_true(event_parse_native(v, timeutil_now_us(), &ev, &probs));
	assert_string_equal(ev.event_id,
	    "0190b3c4-1234-7abc-8def-0123456789ab");
	assert_false(ev.event_id_generated);
	assert_string_equal(ev.name, "cart_added");
	assert_string_equal(ev.user_id, "u1");
	assert_null(ev.anonymous_id);
	assert_null(ev.url);		/* empty counts as absent */
	assert_false(ev.has_sent_at);
	char text[TIMEUTIL_RFC3339_LEN];
	timeutil_format_rfc3339(ev.ts_us, text);
	assert_string_equal(text, "2025-06-01T10:00:00.500000Z");
	assert_int_equal(json_integer_value(json_object_get(ev.props, "qty")),
	    2);
	json_decref(v);
}

/* Segment's context.consent.categoryPreferences is the consent when the
 * event has no consent of its own; consent wins when both are sent. */
static void
test_segment_consent(void **state)
{
	struct event_problems probs;
	struct event ev;
	json_t *seg = json_pack("{s:s, s:s, s:{s:{s:{s:b}}}}", "name",
	    "cart_added", "anonymous_id", "a", "context", "consent",
	    "categoryPreferences", "marketing", 1);
	json_t *both = json_deep_copy(seg);

	(void)state;
	json_object_set_new(both, "consent", json_pack("{s:b}", "marketing",
	    0));
	assert_true(event_parse_native(seg, timeutil_now_us(), &ev, &probs));
	assert_true(json_is_true(json_object_get(ev.consent, "marketing")));
	assert_true(event_parse_native(both, timeutil_now_us(), &ev, &probs));
	assert_true(json_is_false(json_object_get(ev.consent, "marketing")));
	json_decref(seg);
	json_decref(both);
}

static void
test_generated_ids_are_v7_and_distinct(void **state)
{
	struct event_problems probs;
	struct event a, b;
	json_t *v = json_pack("{s:s, s:s}", "name", "x", "anonymous_id", "a");

	(void)state;
	assert_true(event_parse_native(v, timeutil_now_us(), &a, &probs));
	assert_true(event_parse_native(v, timeutil_now_us(), &b, &probs));
	assert_true(a.event_id_generated);
	assert_int_equal(a.event_id[14], '7');
	assert_true(strchr("89ab", a.event_id[19]) != NULL);
	assert_string_not_equal(a.event_id, b.event_id);
	json_decref(v);
}

static void
test_every_problem_is_reported(void **state)
{
	struct event_problems probs;
	struct event ev;
	json_t *v = json_pack("{s:i, s:i, s:s, s:b}", "name", 7,
	    "props", 3, "ts", "never", "anonymous_id", 1);

	(void)state;
	assert_false(event_parse_native(v, timeutil_now_us(), &ev, &probs));
	/* name, props, ts and anonymous_id */
	assert_int_equal(probs.n, 4);
	json_decref(v);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_fields_are_read),
		cmocka_unit_test(test_segment_consent),
		cmocka_unit_test(test_generated_ids_are_v7_and_distinct),
		cmocka_unit_test(test_every_problem_is_reported),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s events.jsonl\n", argv[0]);
		return 2;
	}
	cases_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
