/* plan_framework.h - the Micro Conversion Framework of a loaded plan as
 * JSON, for people and dashboards to read: the macro conversion, the
 * phases in order with their milestones, the secondary actions, each with
 * its owner and target. It describes; it does not validate (plan.h does)
 * and knows nothing of HTTP. */
#ifndef MILEPOST_COMMON_PLAN_FRAMEWORK_H
#define MILEPOST_COMMON_PLAN_FRAMEWORK_H

#include <jansson.h>

#include "common/plan.h"

/* {"version", "name", "description", "macro_conversion", "phases",
 * "secondary_actions"} for plan (docs/api.md, GET /api/v1/plan). The
 * default plan gives version 0, no macro conversion and empty lists.
 * Returns a new reference, NULL when out of memory. */
json_t *plan_framework_json(const struct plan *plan);

#endif
