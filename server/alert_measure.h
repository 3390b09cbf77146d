/* alert_measure.h - a rule's metric over its last complete periods,
 * counted by the funnel and milestones statements of the query API (an
 * alert never counts differently from the dashboards). */
#ifndef MILEPOST_SERVER_ALERT_MEASURE_H
#define MILEPOST_SERVER_ALERT_MEASURE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/alert_eval.h"
#include "common/alert_rule.h"
#include "common/error.h"
#include "common/plan.h"
#include "server/query_index.h"

/* What was measured: n periods oldest first, the last one judged. */
struct alert_measurement {
	struct alert_point points[1 + ALERT_TRAILING_MAX];
	int64_t starts[1 + ALERT_TRAILING_MAX];
	size_t n;
	int64_t period_us;
	double target;		/* target_pace: the plan's; else NaN */
};

/* The start of the last period of rule that is complete at now_us: over,
 * and for a rate, its conversion window over too. */
int64_t alert_last_period_start(const struct alert_rule *rule, int64_t now_us);

/* Measures rule's alert_points_needed periods of site, ending with the
 * last complete one: from the index r holds when it can answer, else in
 * the caller's transaction. */
bool alert_measure(PGconn *pg, const struct query_index_read *r,
    const char *site, const struct alert_rule *rule,
    const struct plan *plan, int64_t now_us, struct alert_measurement *out,
    struct error *err);

#endif
