/* Browser origins (wildcards included) and Segment messages read as native
 * events: what each call becomes, and message ids that map to one event id
 * however often they are sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "common/event.h"
#include "common/origin.h"
#include "common/segment.h"
#include "common/uuid7.h"

static void
test_origin_patterns(void **state)
{
	char why[160];
	static const char *const good[] = {
		"https://shop.example", "http://localhost:8080",
		"https://*.shop.example", "http://127.0.0.1:3000",
		"https://[::1]:8443", "HTTPS://Shop.Example",
	};
	static const char *const bad[] = {
		"shop.example", "https://shop.example/", "https://shop.example/x",
		"ftp://shop.example", "https://", "https://*", "https://a.*.b",
		"https://shop.example:", "https://shop.example:123456",
		"https://.shop.example", "https://shop example", "*",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_true(origin_pattern_is_valid(good[i], why, sizeof(why)));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (origin_pattern_is_valid(bad[i], why, sizeof(why))) {
			fail_msg("accepted %s", bad[i]);
		}
		assert_true(why[0] != '\0');
	}
}

static void
test_origin_matching(void **state)
{
	static const struct {
		const char *pattern, *origin;
		bool match;
	} rows[] = {
		{ "https://shop.example", "https://shop.example", true },
		{ "https://shop.example", "https://SHOP.example", true },
		{ "https://shop.example", "http://shop.example", false },
		{ "https://shop.example", "https://shop.example:8443", false },
		{ "https://shop.example", "https://www.shop.example", false },
		{ "https://shop.example", "https://shop.example.evil", false },
		{ "https://*.shop.example", "https://www.shop.example", true },
		{ "https://*.shop.example", "https://a.b.shop.example", true },
		{ "https://*.shop.example", "https://shop.example", false },
		{ "https://*.shop.example", "https://evilshop.example", false },
		{ "https://*.shop.example", "https://.shop.example", false },
		{ "https://*.shop.example", "http://www.shop.example", false },
		{ "https://*.shop.example", "https://x/.shop.example", false },
		{ "https://*.shop.example:8443", "https://a.shop.example:8443",
		  true },
		{ "https://*.shop.example:8443", "https://a.shop.example", false },
		{ "http://localhost:8080", "http://localhost:8080", true },
		{ "https://shop.example", "null", false },
		{ "https://shop.example", "", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (origin_matches(rows[i].pattern, rows[i].origin) !=
		    rows[i].match) {
			fail_msg("%s against %s: expected %s", rows[i].origin,
			    rows[i].pattern, rows[i].match ? "match" : "none");
		}
	}
}

static json_t *
load(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);

	if (v == NULL) {
		fail_msg("bad test JSON: %s", jerr.text);
	}
	return v;
}

/* msg of call, translated with defaults d, equals the native text want. */
static void
expect_native(enum segment_call call, const char *msg,
    const struct segment_defaults *d, const char *want)
{
	json_t *m = load(msg), *w = load(want);
	json_t *got = segment_to_native(m, call, d);

	if (!json_equal(got, w)) {
		char *g = json_dumps(got, JSON_SORT_KEYS);
		fail_msg("%s\n  gave %s\n  want %s", msg, g, want);
	}
	json_decref(got);
	json_decref(w);
	json_decref(m);
}

static const struct segment_defaults no_defaults = {
	.page_event = "page_viewed",
};

static void
test_track(void **state)
{
	(void)state;
	expect_native(SEGMENT_TRACK,
	    "{\"type\":\"track\",\"event\":\"cart_added\","
	    "\"messageId\":\"0190b8a1-1d2c-7e3f-8a4b-5c6d7e8f9a0b\","
	    "\"anonymousId\":\"a1\",\"userId\":\"u1\","
	    "\"properties\":{\"qty\":2},\"timestamp\":\"2026-11-23T08:00:00Z\","
	    "\"sentAt\":\"2026-11-23T08:00:01Z\",\"integrations\":{\"All\":true},"
	    "\"writeKey\":\"wk\",\"context\":{\"ip\":\"1.2.3.4\",\"page\":"
	    "{\"url\":\"https://shop.example/p?utm_source=x\",\"referrer\":"
	    "\"https://google.com/\"}}}", &no_defaults,
	    "{\"event_id\":\"0190b8a1-1d2c-7e3f-8a4b-5c6d7e8f9a0b\","
	    "\"name\":\"cart_added\",\"anonymous_id\":\"a1\",\"user_id\":\"u1\","
	    "\"props\":{\"qty\":2},\"ts\":\"2026-11-23T08:00:00Z\","
	    "\"sent_at\":\"2026-11-23T08:00:01Z\","
	    "\"url\":\"https://shop.example/p?utm_source=x\","
	    "\"referrer\":\"https://google.com/\",\"context\":{"
	    "\"page\":{\"url\":\"https://shop.example/p?"
	    "utm_source=x\",\"referrer\":\"https://google.com/\"}}}");
	/* originalTimestamp is the client's time, timestamp Segment's. */
	expect_native(SEGMENT_TRACK, "{\"event\":\"a_b\",\"timestamp\":"
	    "\"2026-01-01T00:00:00Z\",\"originalTimestamp\":"
	    "\"2026-01-02T00:00:00Z\"}", &no_defaults,
	    "{\"name\":\"a_b\",\"ts\":\"2026-01-02T00:00:00Z\"}");
}

static void
test_page_and_screen(void **state)
{
	static const char msg[] = "{\"name\":\"Product\",\"properties\":{"
	    "\"url\":\"https://shop.example/p\",\"path\":\"/p\",\"title\":\"P\","
	    "\"search\":\"\",\"referrer\":\"https://blog.example/\","
	    "\"page_type\":\"product\"},\"context\":{\"page\":{\"url\":"
	    "\"https://shop.example/other\"}}}";
	static const char want[] = "{\"name\":\"page_viewed\",\"url\":"
	    "\"https://shop.example/p\",\"referrer\":\"https://blog.example/\","
	    "\"props\":{\"title\":\"P\",\"page_type\":\"product\"},"
	    "\"context\":{\"page\":{"
	    "\"url\":\"https://shop.example/other\"}}}";
	struct segment_defaults planless = { 0 };

	struct segment_defaults named = { .page_event = "page_viewed",
		.page_name = true };

	(void)state;
	/* The plan's page event rejects a name property: it is not kept. */
	expect_native(SEGMENT_PAGE, msg, &no_defaults, want);
	expect_native(SEGMENT_SCREEN, msg, &no_defaults, want);
	/* It takes one: the call's name is the page's. */
	expect_native(SEGMENT_PAGE, msg, &named, "{\"name\":\"page_viewed\","
	    "\"url\":\"https://shop.example/p\",\"referrer\":"
	    "\"https://blog.example/\",\"props\":{\"title\":\"P\","
	    "\"page_type\":\"product\",\"name\":\"Product\"},"
	    "\"context\":{\"page\":{\"url\":\"https://shop.example/other\"}}}");
	expect_native(SEGMENT_SCREEN, "{\"name\":\"Home\"}", &named,
	    "{\"name\":\"page_viewed\",\"props\":{\"name\":\"Home\"}}");
	/* Without a page event in the plan, the conventional name. */
	expect_native(SEGMENT_PAGE, "{}", &planless,
	    "{\"name\":\"page_viewed\"}");
}

static void
test_identify_alias_group(void **state)
{
	(void)state;
	expect_native(SEGMENT_IDENTIFY, "{\"userId\":\"u1\",\"anonymousId\":"
	    "\"a1\",\"traits\":{\"email\":\"x@example.com\"}}", &no_defaults,
	    "{\"type\":\"identify\",\"user_id\":\"u1\",\"anonymous_id\":\"a1\"}");
	expect_native(SEGMENT_ALIAS, "{\"userId\":\"u1\",\"previousId\":\"a9\","
	    "\"anonymousId\":\"a1\"}", &no_defaults,
	    "{\"type\":\"identify\",\"user_id\":\"u1\",\"anonymous_id\":\"a9\"}");
	/* null is what Segment's libraries send for an id not set. */
	expect_native(SEGMENT_IDENTIFY, "{\"userId\":\"u1\",\"anonymousId\":"
	    "null,\"timestamp\":null}", &no_defaults,
	    "{\"type\":\"identify\",\"user_id\":\"u1\"}");
	expect_native(SEGMENT_TRACK, "{\"event\":\"a_b\",\"userId\":null,"
	    "\"properties\":null,\"context\":null}", &no_defaults,
	    "{\"name\":\"a_b\"}");
	expect_native(SEGMENT_GROUP, "{\"groupId\":\"g\",\"userId\":\"u1\"}",
	    &no_defaults, "{\"type\":\"group\",\"user_id\":\"u1\"}");
	expect_native(SEGMENT_CALLS_, "{\"type\":\"merge\"}", &no_defaults,
	    "{\"type\":\"merge\"}");
	expect_native(SEGMENT_CALLS_, "{}", &no_defaults, "{\"type\":null}");
}

/* A batch context is shared by its messages, never copied into each: a
 * 512 KB body whose context had 45,000 keys took gigabytes when every
 * message got a merged copy. */
static void
test_batch_context_is_shared(void **state)
{
	json_t *ctx = load("{\"consent\":{\"categoryPreferences\":{"
	    "\"analytics\":true}},\"userAgent\":\"UA\",\"traits\":{\"a\":1},"
	    "\"k1\":1,\"k2\":2,\"k3\":3}");
	struct segment_defaults d = { .page_event = "page_viewed",
		.context = ctx };
	json_t *m = load("{\"type\":\"track\",\"event\":\"a_b\","
	    "\"context\":{\"campaign\":{\"source\":\"x\"},\"k4\":4}}");
	json_t *got = segment_to_native(m, SEGMENT_TRACK, &d);
	json_t *gctx = json_object_get(got, "context");

	(void)state;
	assert_non_null(gctx);
	/* The keys the collector reads, nothing else. */
	assert_int_equal(json_object_size(gctx), 3);
	assert_ptr_equal(json_object_get(gctx, "consent"),
	    json_object_get(ctx, "consent"));
	assert_ptr_equal(json_object_get(gctx, "userAgent"),
	    json_object_get(ctx, "userAgent"));
	assert_ptr_equal(json_object_get(gctx, "campaign"),
	    json_object_get(json_object_get(m, "context"), "campaign"));
	json_decref(got);
	json_decref(m);
	json_decref(ctx);
}

static void
test_batch_defaults(void **state)
{
	json_t *ctx = load("{\"locale\":\"de\",\"page\":{\"url\":\"https://a\"}}");
	json_t *sent = json_string("2026-11-23T08:00:01Z");
	struct segment_defaults d = { .page_event = "page_viewed",
		.context = ctx, .sent_at = sent };

	(void)state;
	/* The message's own context keys and sentAt win. */
	expect_native(SEGMENT_TRACK, "{\"event\":\"a_b\",\"context\":{\"page\":"
	    "{\"url\":\"https://b\"}}}", &d, "{\"name\":\"a_b\",\"sent_at\":"
	    "\"2026-11-23T08:00:01Z\",\"url\":\"https://b\",\"context\":{"
	    "\"page\":{\"url\":\"https://b\"}}}");
	expect_native(SEGMENT_TRACK, "{\"event\":\"a_b\",\"sentAt\":\"x\"}", &d,
	    "{\"name\":\"a_b\",\"sent_at\":\"x\",\"url\":\"https://a\","
	    "\"context\":{\"page\":{\"url\":\"https://a\"}}}");
	json_decref(ctx);
	json_decref(sent);
}

static void
test_message_ids(void **state)
{
	json_t *a = load("{\"event\":\"a_b\",\"messageId\":"
	    "\"ajs-next-1700000000000-abc\"}");
	json_t *b = load("{\"event\":\"a_b\",\"messageId\":"
	    "\"ajs-next-1700000000000-abd\"}");
	json_t *na = segment_to_native(a, SEGMENT_TRACK, &no_defaults);
	json_t *na2 = segment_to_native(a, SEGMENT_TRACK, &no_defaults);
	json_t *nb = segment_to_native(b, SEGMENT_TRACK, &no_defaults);
	const char *ida = json_string_value(json_object_get(na, "event_id"));
	struct event ev;
	struct event_problems probs;

	(void)state;
	assert_non_null(ida);
	assert_true(uuid7_is_valid_text(ida));
	assert_int_equal(ida[14], '8');		/* version 8 */
	assert_true(strchr("89ab", ida[19]) != NULL);	/* RFC variant */
	assert_string_equal(ida, json_string_value(json_object_get(na2,
	    "event_id")));
	assert_string_not_equal(ida, json_string_value(json_object_get(nb,
	    "event_id")));
	/* The native parser takes it as the event's id. */
	assert_true(event_parse_native(na, 0, &ev, &probs));
	assert_string_equal(ev.event_id, ida);
	assert_false(ev.event_id_generated);
	json_decref(na);
	json_decref(na2);
	json_decref(nb);
	json_decref(a);
	json_decref(b);
}

static void
test_group_is_refused_with_a_code(void **state)
{
	json_t *m = load("{\"groupId\":\"g\",\"userId\":\"u1\"}");
	json_t *n = segment_to_native(m, SEGMENT_GROUP, &no_defaults);
	struct event ev;
	struct event_problems probs;

	(void)state;
	assert_false(event_parse_native(n, 0, &ev, &probs));
	assert_int_equal(probs.n, 1);
	assert_int_equal(probs.items[0].code, ERR_UNSUPPORTED_CALL);
	assert_string_equal(probs.items[0].path, "$.type");
	json_decref(n);
	json_decref(m);
}

static void
test_call_names(void **state)
{
	static const char *const names[] = { "track", "page", "screen",
		"identify", "alias", "group" };
	enum segment_call c;

	(void)state;
	for (int i = 0; i < SEGMENT_CALLS_; i++) {
		assert_true(segment_call_of_type(names[i], &c));
		assert_int_equal(c, i);
	}
	assert_false(segment_call_of_type("Track", &c));
	assert_false(segment_call_of_type(NULL, &c));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_origin_patterns),
		cmocka_unit_test(test_origin_matching),
		cmocka_unit_test(test_track),
		cmocka_unit_test(test_page_and_screen),
		cmocka_unit_test(test_identify_alias_group),
		cmocka_unit_test(test_batch_defaults),
		cmocka_unit_test(test_batch_context_is_shared),
		cmocka_unit_test(test_message_ids),
		cmocka_unit_test(test_group_is_refused_with_a_code),
		cmocka_unit_test(test_call_names),
	};

	if (sodium_init() < 0) {
		return 1;
	}
	return cmocka_run_group_tests_name("segment", tests, NULL, NULL);
}
