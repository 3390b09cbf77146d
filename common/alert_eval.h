/* alert_eval.h - what a rule decides about its last complete period, given
 * the metric's values over that period and the ones before it, and how a
 * rule's state moves from one decision to the next. Pure functions: the
 * daemon measures, these judge (docs/alerts.md, "How a rule decides"). */
#ifndef MILEPOST_COMMON_ALERT_EVAL_H
#define MILEPOST_COMMON_ALERT_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/alert_rule.h"

/* One period's measurement. */
struct alert_point {
	double value;
	long volume;	/* the people (or events) the value rests on */
};

enum alert_verdict {
	ALERT_VERDICT_OK,
	ALERT_VERDICT_FIRING,
	ALERT_VERDICT_INSUFFICIENT_DATA,
};

struct alert_decision {
	enum alert_verdict verdict;
	double value;		/* the last period's */
	double bound;		/* what the value was held against */
	double baseline;	/* stall, anomaly: the trailing mean;
				 * target_pace: the target; else NaN */
	double sigma;		/* anomaly: the trailing standard deviation;
				 * else NaN */
	char why[200];		/* one sentence */
};

/* How many periods rule needs, the one judged last: 1 + trailing. */
size_t alert_points_needed(const struct alert_rule *rule);

/* Judges points[n - 1] (oldest first, the ones before it the trailing
 * history). target is the plan's target of a target_pace rule. Fewer
 * points than alert_points_needed is insufficient data; so is, for a
 * rate, a last period whose volume (the denominator) is below the rule's
 * min_volume. A count is its own volume, and its fall to 0 must fire: its
 * min_volume (0 unless the rule sets one) is the least trailing mean a
 * stall or anomaly needs. */
void alert_decide(const struct alert_rule *rule,
    const struct alert_point *points, size_t n, double target,
    struct alert_decision *out);

/* A rule's state, kept between evaluations. */
enum alert_state {
	ALERT_STATE_OK,
	ALERT_STATE_FIRING,
	ALERT_STATE_RESOLVED,
	ALERT_STATE_INSUFFICIENT_DATA,
	ALERT_STATE_COUNT_
};

/* The state after a verdict: firing while the verdict is; resolved on the
 * first ok after firing, ok after that; insufficient_data whenever the
 * data is. A change of state is a transition, notified once. */
enum alert_state alert_next_state(enum alert_state prev,
    enum alert_verdict verdict);

const char *alert_state_name(enum alert_state s);
const char *alert_verdict_name(enum alert_verdict v);

#endif
