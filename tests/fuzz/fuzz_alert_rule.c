/* libFuzzer target: hostile alert rules through their check against the
 * example plan (or MILEPOST_FUZZ_PLAN); a rule accepted must be written
 * back as a rule that reads the same. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/alert_rule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct plan *plan;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = getenv("MILEPOST_FUZZ_PLAN");
	json_t *doc = json_loadb((const char *)data, size,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	struct alert_rule *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	struct plan_problems probs;
	struct error err = { 0 };
	json_t *once, *twice;

	if (plan == NULL) {
		plan_problems_init(&probs);
		plan = plan_load_file(path != NULL ? path : "config/plan.json",
		    &probs);
		plan_problems_finish(&probs);
	}
	if (doc != NULL && a != NULL && b != NULL && plan != NULL &&
	    alert_rule_parse(doc, plan, 100, a, &err)) {
		once = alert_rule_json(a);
		if (once == NULL || !alert_rule_parse(once, plan, 7, b, &err)) {
			__builtin_trap();
		}
		twice = alert_rule_json(b);
		if (!json_equal(once, twice)) {
			__builtin_trap();
		}
		json_decref(once);
		json_decref(twice);
	}
	json_decref(doc);
	free(a);
	free(b);
	return 0;
}
