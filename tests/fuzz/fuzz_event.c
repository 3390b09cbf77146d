/* libFuzzer target: hostile native events through their reading and the
 * tracking plan's check (the example plan, or MILEPOST_FUZZ_PLAN), the
 * path every event of POST /v1/events takes before it is stored. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/event.h"
#include "common/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct plan *plan;

static const struct plan *
the_plan(void)
{
	const char *path = getenv("MILEPOST_FUZZ_PLAN");
	struct plan_problems probs;

	if (plan == NULL) {
		plan_problems_init(&probs);
		plan = plan_load_file(path != NULL ? path : "config/plan.json",
		    &probs);
		plan_problems_finish(&probs);
		if (plan == NULL) {
			plan = plan_new_default();
		}
	}
	return plan;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v = json_loadb((const char *)data, size,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	const struct plan_event *def;
	struct event_problems probs, warnings;
	struct event ev;

	if (v == NULL) {
		return 0;
	}
	if (event_parse_native(v, 1700000000000000, &ev, &probs)) {
		(void)plan_check_event(the_plan(), &ev, NULL, &def, &probs,
		    &warnings);
	}
	json_decref(v);
	return 0;
}
