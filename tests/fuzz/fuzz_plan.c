/* libFuzzer target: a hostile tracking plan, then a hostile event checked
 * and redacted against it when the plan loads, and the plan's framework
 * map (GET /api/v1/plan) built. The input is two JSON
 * documents separated by a NUL byte (the second may be absent). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/event.h"
#include "common/plan.h"
#include "common/plan_framework.h"
#include "common/privacy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char hash_key[] = "fuzz-hash-key-0123456789abcdef";

static void
check_event(const struct plan *plan, const char *text, size_t len)
{
	json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	struct event_problems probs, errs, warns;
	const struct plan_event *def;
	json_t *redacted, *done = json_array();
	struct event ev;

	if (v != NULL && event_parse_native(v, INT64_C(1795000000000000), &ev,
	    &probs)) {
		plan_check_event(plan, &ev, NULL, &def, &errs, &warns);
		redacted = plan_redact_props(def, ev.props, false, hash_key,
		    sizeof(hash_key) - 1, NULL, done);
		json_decref(redacted);
	}
	json_decref(done);
	json_decref(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	size_t plan_len = nul != NULL ? (size_t)(nul - text) : size;
	struct plan_problems probs;
	struct plan *plan;
	json_t *doc;

	privacy_init(NULL);
	doc = json_loadb(text, plan_len, JSON_REJECT_DUPLICATES, NULL);
	if (doc == NULL) {
		return 0;
	}
	plan_problems_init(&probs);
	plan = plan_load_json(doc, &probs);
	/* A refused plan always says why. */
	if (plan == NULL && probs.n == 0) {
		__builtin_trap();
	}
	if (plan != NULL && nul != NULL) {
		check_event(plan, nul + 1, size - plan_len - 1);
	}
	if (plan != NULL) {
		json_decref(plan_framework_json(plan));
	}
	plan_free(plan);
	plan_problems_finish(&probs);
	json_decref(doc);
	return 0;
}
