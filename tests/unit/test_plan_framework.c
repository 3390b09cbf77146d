/* The framework map of a plan (common/plan_framework.h): the default plan
 * gives an empty map; a small plan gives its phases and milestones in
 * order, the macro conversion, the secondary actions by name (pages left
 * out), owners and targets as written; the example plan (argv[1]) gives
 * every phase and milestone it lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/plan.h"
#include "common/plan_framework.h"

static const char *example_plan_path;

static const char small_plan[] =
	"{\"version\": 3, \"name\": \"Small\", "
	"\"macro_conversion\": \"order_paid\", "
	"\"phases\": ["
	" {\"name\": \"look\", \"description\": \"First.\", "
	"  \"milestones\": [\"item_viewed\"]},"
	" {\"name\": \"buy\", "
	"  \"milestones\": [\"cart_added\", \"order_paid\"]}],"
	"\"events\": {"
	" \"page_viewed\": {\"kind\": \"page\"},"
	" \"item_viewed\": {\"kind\": \"milestone\", "
	"  \"owner\": \"a@x.example\", \"target\": "
	"  {\"baseline\": 0.4, \"target\": 0.5, \"period\": \"week\"}},"
	" \"cart_added\": {\"kind\": \"milestone\", "
	"  \"description\": \"Put in.\"},"
	" \"order_paid\": {\"kind\": \"macro\", "
	"  \"owner\": \"b@x.example\"},"
	" \"wish_added\": {\"kind\": \"secondary\", "
	"  \"owner\": \"c@x.example\"},"
	" \"app_shared\": {\"kind\": \"secondary\"}}}";

static struct plan *
load(const char *text)
{
	struct plan_problems probs;
	json_error_t jerr;
	json_t *doc = json_loads(text, 0, &jerr);
	struct plan *plan;

	assert_non_null(doc);
	plan_problems_init(&probs);
	plan = plan_load_json(doc, &probs);
	json_decref(doc);
	assert_int_equal(probs.n, 0);
	plan_problems_finish(&probs);
	assert_non_null(plan);
	return plan;
}

static const char *
text_at(const json_t *v, const char *key)
{
	return json_string_value(json_object_get(v, key));
}

static void
test_default_plan(void **state)
{
	struct plan *plan = plan_new_default();
	json_t *map;

	(void)state;
	assert_non_null(plan);
	map = plan_framework_json(plan);
	assert_non_null(map);
	assert_int_equal(json_integer_value(json_object_get(map, "version")),
	    0);
	assert_true(json_is_null(json_object_get(map, "macro_conversion")));
	assert_int_equal(json_array_size(json_object_get(map, "phases")), 0);
	assert_int_equal(json_array_size(json_object_get(map,
	    "secondary_actions")), 0);
	json_decref(map);
	plan_free(plan);
}

static void
test_small_plan(void **state)
{
	struct plan *plan = load(small_plan);
	json_t *map = plan_framework_json(plan);
	const json_t *phases, *ms, *macro, *sec, *t;

	(void)state;
	assert_non_null(map);
	assert_int_equal(json_integer_value(json_object_get(map, "version")),
	    3);
	assert_string_equal(text_at(map, "name"), "Small");
	assert_true(json_is_null(json_object_get(map, "description")));
	macro = json_object_get(map, "macro_conversion");
	assert_string_equal(text_at(macro, "name"), "order_paid");
	assert_string_equal(text_at(macro, "kind"), "macro");
	assert_string_equal(text_at(macro, "owner"), "b@x.example");

	phases = json_object_get(map, "phases");
	assert_int_equal(json_array_size(phases), 2);
	assert_string_equal(text_at(json_array_get(phases, 0), "name"),
	    "look");
	assert_string_equal(text_at(json_array_get(phases, 0), "description"),
	    "First.");
	ms = json_object_get(json_array_get(phases, 1), "milestones");
	assert_int_equal(json_array_size(ms), 2);
	assert_string_equal(text_at(json_array_get(ms, 0), "name"),
	    "cart_added");
	assert_string_equal(text_at(json_array_get(ms, 0), "description"),
	    "Put in.");
	assert_null(text_at(json_array_get(ms, 0), "owner"));
	assert_true(json_is_null(json_object_get(json_array_get(ms, 0),
	    "target")));
	assert_string_equal(text_at(json_array_get(ms, 1), "name"),
	    "order_paid");

	t = json_object_get(json_array_get(json_object_get(
	    json_array_get(phases, 0), "milestones"), 0), "target");
	assert_true(json_is_object(t));
	assert_true(json_number_value(json_object_get(t, "target")) == 0.5);
	assert_string_equal(text_at(t, "period"), "week");

	/* By name, pages left out. */
	sec = json_object_get(map, "secondary_actions");
	assert_int_equal(json_array_size(sec), 2);
	assert_string_equal(text_at(json_array_get(sec, 0), "name"),
	    "app_shared");
	assert_string_equal(text_at(json_array_get(sec, 1), "name"),
	    "wish_added");
	assert_string_equal(text_at(json_array_get(sec, 1), "owner"),
	    "c@x.example");
	json_decref(map);
	plan_free(plan);
}

static void
test_example_plan(void **state)
{
	struct plan_problems probs;
	struct plan *plan;
	const json_t *doc_phases, *phases, *p;
	json_t *map;
	size_t i;

	(void)state;
	if (example_plan_path == NULL) {
		skip();
	}
	plan_problems_init(&probs);
	plan = plan_load_file(example_plan_path, &probs);
	plan_problems_finish(&probs);
	assert_non_null(plan);
	map = plan_framework_json(plan);
	assert_non_null(map);
	doc_phases = json_object_get(plan_document(plan), "phases");
	phases = json_object_get(map, "phases");
	assert_int_equal(json_array_size(phases), plan_phase_count(plan));
	json_array_foreach(phases, i, p) {
		const json_t *want = json_object_get(json_array_get(doc_phases,
		    i), "milestones");
		const json_t *got = json_object_get(p, "milestones");
		assert_int_equal(json_array_size(got), json_array_size(want));
		for (size_t j = 0; j < json_array_size(got); j++) {
			assert_string_equal(text_at(json_array_get(got, j),
			    "name"), json_string_value(json_array_get(want,
			    j)));
		}
	}
	assert_true(json_array_size(json_object_get(map,
	    "secondary_actions")) > 0);
	json_decref(map);
	plan_free(plan);
}

int
main(int argc, char **argv)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_plan),
		cmocka_unit_test(test_small_plan),
		cmocka_unit_test(test_example_plan),
	};

	example_plan_path = argc > 1 ? argv[1] : NULL;
	return cmocka_run_group_tests_name("plan_framework", tests, NULL,
	    NULL);
}
