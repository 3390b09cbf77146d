/* Alert rules read against the example plan: the valid ones come back
 * with every default written out, the invalid ones fail with the right
 * code and a message naming the field (tests/unit/data/alert_rules.json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alert_rule.h"
#include "tests/unit/cases.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static json_t *data;
static const char *plan_path;
static struct plan *plan;

static void
test_valid_case(void **state)
{
	static const char *const keys[] = { "case", "rule", "want" };
	const json_t *c = *state;
	struct alert_rule rule;
	struct error err = { 0 };
	json_t *got;
	char *text;

	cases_check_keys(c, keys, N_OF(keys));
	if (!alert_rule_parse(json_object_get(c, "rule"), plan, 100, &rule,
	    &err)) {
		fail_msg("%s: refused: %s %s", cases_name(c),
		    error_code_name(err.code), err.message);
	}
	got = alert_rule_json(&rule);
	assert_non_null(got);
	if (!json_equal(got, json_object_get(c, "want"))) {
		text = json_dumps(got, JSON_SORT_KEYS);
		fail_msg("%s: got %s", cases_name(c), text);
	}
	/* What it writes reads back the same. */
	assert_true(alert_rule_parse(got, plan, 7, &rule, &err));
	json_t *again = alert_rule_json(&rule);
	assert_true(json_equal(got, again));
	json_decref(again);
	json_decref(got);
}

static void
test_invalid_case(void **state)
{
	static const char *const keys[] = { "case", "rule", "code", "says" };
	const json_t *c = *state;
	const char *code = json_string_value(json_object_get(c, "code"));
	const char *says = json_string_value(json_object_get(c, "says"));
	struct alert_rule rule;
	struct error err = { 0 };

	cases_check_keys(c, keys, N_OF(keys));
	if (alert_rule_parse(json_object_get(c, "rule"), plan, 100, &rule,
	    &err)) {
		fail_msg("%s: accepted", cases_name(c));
	}
	if (strcmp(error_code_name(err.code), code) != 0 ||
	    strstr(err.message, says) == NULL) {
		fail_msg("%s: %s \"%s\", want %s saying \"%s\"", cases_name(c),
		    error_code_name(err.code), err.message, code, says);
	}
}

/* Without a plan of events, every event is unknown, and so is the plan's
 * funnel. */
static void
test_default_plan(void **state)
{
	struct plan *none = plan_new_default();
	json_t *rule = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:f}}", "name",
	    "x", "owner", "o", "metric", "type", "funnel_completion",
	    "condition", "kind", "threshold", "below", 0.5);
	struct alert_rule r;
	struct error err = { 0 };

	(void)state;
	assert_non_null(none);
	assert_false(alert_rule_parse(rule, none, 100, &r, &err));
	assert_string_equal(error_code_name(err.code), "invalid_rule");
	assert_non_null(strstr(err.message, "no funnel"));
	json_decref(rule);
	plan_free(none);
}

static int
setup(void **state)
{
	struct plan_problems probs;

	(void)state;
	plan_problems_init(&probs);
	plan = plan_load_file(plan_path, &probs);
	plan_problems_finish(&probs);
	return plan != NULL ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static const struct cases_section sections[] = {
		{ "valid", "valid", test_valid_case },
		{ "invalid", "invalid", test_invalid_case },
	};
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_default_plan),
	};
	int status;

	if (argc != 3) {
		fprintf(stderr, "usage: %s alert_rules.json plan.json\n", argv[0]);
		return 2;
	}
	plan_path = argv[2];
	status = cases_run("alert_rule", argv[1], &data, sections,
	    N_OF(sections), fixed, N_OF(fixed), setup);
	plan_free(plan);
	return status;
}
