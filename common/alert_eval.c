/* alert_eval.c - a rule's verdict on its last period, and its state. */
#include "common/alert_eval.h"

#include <math.h>
#include <stdio.h>

#define PERCENT_EPSILON 1e-9

static const char *const state_names[ALERT_STATE_COUNT_] = {
	"ok", "firing", "resolved", "insufficient_data",
};

const char *
alert_state_name(enum alert_state s)
{
	return (unsigned)s < ALERT_STATE_COUNT_ ? state_names[s] : "";
}

const char *
alert_verdict_name(enum alert_verdict v)
{
	switch (v) {
	case ALERT_VERDICT_FIRING:
		return "firing";
	case ALERT_VERDICT_INSUFFICIENT_DATA:
		return "insufficient_data";
	default:
		return "ok";
	}
}

size_t
alert_points_needed(const struct alert_rule *rule)
{
	return rule->condition == ALERT_CONDITION_STALL ||
	    rule->condition == ALERT_CONDITION_ANOMALY ?
	    1 + (size_t)rule->trailing : 1;
}

static void
verdict(struct alert_decision *out, bool firing, double bound)
{
	out->verdict = firing ? ALERT_VERDICT_FIRING : ALERT_VERDICT_OK;
	out->bound = bound;
}

static void
threshold(const struct alert_rule *r, struct alert_decision *out)
{
	double v = out->value;

	if (r->has_below && v < r->below) {
		verdict(out, true, r->below);
		snprintf(out->why, sizeof(out->why), "%g is below %g", v,
		    r->below);
	} else if (r->has_above && v > r->above) {
		verdict(out, true, r->above);
		snprintf(out->why, sizeof(out->why), "%g is above %g", v,
		    r->above);
	} else {
		verdict(out, false, r->has_below ? r->below : r->above);
		snprintf(out->why, sizeof(out->why), "%g is within bounds", v);
	}
}

static double
trailing_mean(const struct alert_point *h, size_t n)
{
	double sum = 0;

	for (size_t i = 0; i < n; i++) {
		sum += h[i].value;
	}
	return n > 0 ? sum / (double)n : 0;
}

/* Mean and sample standard deviation of the history h[0..n). */
static void
mean_sigma(const struct alert_point *h, size_t n, double *mean,
    double *sigma)
{
	double sq = 0;

	*mean = trailing_mean(h, n);
	for (size_t i = 0; i < n; i++) {
		sq += (h[i].value - *mean) * (h[i].value - *mean);
	}
	*sigma = n > 1 ? sqrt(sq / (double)(n - 1)) : 0;
}

static void
stall(const struct alert_rule *r, const struct alert_point *h, size_t n,
    struct alert_decision *out)
{
	double mean, sigma;

	mean_sigma(h, n, &mean, &sigma);
	out->baseline = mean;
	verdict(out, out->value < mean * r->percent / 100,
	    mean * r->percent / 100);
	snprintf(out->why, sizeof(out->why), "%g is %s %g%% of the trailing "
	    "mean %g", out->value, out->verdict == ALERT_VERDICT_FIRING ?
	    "below" : "not below", r->percent, mean);
}

static void
anomaly(const struct alert_rule *r, const struct alert_point *h, size_t n,
    struct alert_decision *out)
{
	double mean, sigma, v = out->value;
	size_t above = 0, below = 0;

	mean_sigma(h, n, &mean, &sigma);
	out->baseline = mean;
	out->sigma = sigma;
	/* The run ends with the period judged. */
	for (size_t i = 0; i < (size_t)r->run; i++) {
		double x = i == 0 ? v : h[n - i].value;
		above += x > mean;
		below += x < mean;
	}
	if (fabs(v - mean) > r->k * sigma) {
		verdict(out, true, v > mean ? mean + r->k * sigma :
		    mean - r->k * sigma);
		snprintf(out->why, sizeof(out->why), "%g is outside the trailing "
		    "mean %g ± %g·%g", v, mean, r->k, sigma);
	} else if (above == (size_t)r->run || below == (size_t)r->run) {
		verdict(out, true, mean);
		snprintf(out->why, sizeof(out->why), "the last %ld values are "
		    "all %s the trailing mean %g", r->run, above > 0 ? "above" :
		    "below", mean);
	} else {
		verdict(out, false, v > mean ? mean + r->k * sigma :
		    mean - r->k * sigma);
		snprintf(out->why, sizeof(out->why), "%g is within the trailing "
		    "mean %g ± %g·%g", v, mean, r->k, sigma);
	}
}

static void
target_pace(const struct alert_rule *r, double target,
    struct alert_decision *out)
{
	double bound = target * (1 - r->percent / 100);
	double behind = target > 0 ? 100 * (target - out->value) / target : 0;

	out->baseline = target;
	/* "More than" with room for rounding: 0.09 is 10.000000000000009%
	 * behind 0.1 in binary floating point, and should not fire at 10. */
	verdict(out, behind > r->percent + PERCENT_EPSILON, bound);
	snprintf(out->why, sizeof(out->why), "%g is %s %g%% behind the target "
	    "%g", out->value, out->verdict == ALERT_VERDICT_FIRING ? "more than" :
	    "not more than", r->percent, target);
}

void
alert_decide(const struct alert_rule *rule, const struct alert_point *points,
    size_t n, double target, struct alert_decision *out)
{
	size_t need = alert_points_needed(rule);

	out->verdict = ALERT_VERDICT_INSUFFICIENT_DATA;
	out->value = n > 0 ? points[n - 1].value : NAN;
	out->bound = out->baseline = out->sigma = NAN;
	if (n < need) {
		snprintf(out->why, sizeof(out->why), "%zu of the %zu periods "
		    "needed have data", n, need);
		return;
	}
	if (rule->metric != ALERT_METRIC_COUNT &&
	    points[n - 1].volume < rule->min_volume) {
		snprintf(out->why, sizeof(out->why), "%ld is below the minimum "
		    "volume %ld", points[n - 1].volume, rule->min_volume);
		return;
	}
	double history = need > 1 ? trailing_mean(points + n - need,
	    need - 1) : 0;
	if (rule->metric == ALERT_METRIC_COUNT && need > 1 &&
	    history < (double)rule->min_volume) {
		snprintf(out->why, sizeof(out->why), "the trailing mean %g is "
		    "below the minimum volume %ld", history, rule->min_volume);
		return;
	}
	/* The history is the need - 1 periods before the last. */
	switch (rule->condition) {
	case ALERT_CONDITION_THRESHOLD:
		threshold(rule, out);
		break;
	case ALERT_CONDITION_STALL:
		stall(rule, points + n - need, need - 1, out);
		break;
	case ALERT_CONDITION_ANOMALY:
		anomaly(rule, points + n - need, need - 1, out);
		break;
	default:
		target_pace(rule, target, out);
	}
}

enum alert_state
alert_next_state(enum alert_state prev, enum alert_verdict v)
{
	switch (v) {
	case ALERT_VERDICT_FIRING:
		return ALERT_STATE_FIRING;
	case ALERT_VERDICT_INSUFFICIENT_DATA:
		return ALERT_STATE_INSUFFICIENT_DATA;
	default:
		return prev == ALERT_STATE_FIRING ? ALERT_STATE_RESOLVED :
		    ALERT_STATE_OK;
	}
}
