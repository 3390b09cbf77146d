/* Verdicts of each condition on series worked out by hand, the minimum
 * volume, missing history, and the state machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "common/alert_eval.h"

#define CLOSE 1e-9

static struct alert_rule
rule_of(enum alert_condition c)
{
	struct alert_rule r;

	memset(&r, 0, sizeof(r));
	r.metric = ALERT_METRIC_CONVERSION_RATE;
	r.condition = c;
	r.min_volume = 10;
	return r;
}

static void
assert_decision(const struct alert_decision *d, enum alert_verdict v,
    double bound, double baseline)
{
	if (d->verdict != v) {
		fail_msg("verdict %s, want %s (%s)", alert_verdict_name(d->verdict),
		    alert_verdict_name(v), d->why);
	}
	if (!(isnan(bound) && isnan(d->bound)) && fabs(d->bound - bound) > CLOSE) {
		fail_msg("bound %.12g, want %.12g (%s)", d->bound, bound, d->why);
	}
	if (!(isnan(baseline) && isnan(d->baseline)) &&
	    fabs(d->baseline - baseline) > CLOSE) {
		fail_msg("baseline %.12g, want %.12g", d->baseline, baseline);
	}
}

static void
test_threshold(void **state)
{
	struct alert_rule r = rule_of(ALERT_CONDITION_THRESHOLD);
	struct alert_point p[] = { { 0.25, 100 } };
	struct alert_decision d;

	(void)state;
	r.has_below = true;
	r.below = 0.3;
	alert_decide(&r, p, 1, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_FIRING, 0.3, NAN);
	assert_true(d.value == 0.25);
	p[0].value = 0.3;	/* not below */
	alert_decide(&r, p, 1, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_OK, 0.3, NAN);
	r.has_above = true;
	r.above = 0.5;
	p[0].value = 0.51;
	alert_decide(&r, p, 1, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_FIRING, 0.5, NAN);
	/* Below the minimum volume: never firing. */
	p[0].volume = 9;
	alert_decide(&r, p, 1, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_INSUFFICIENT_DATA, NAN, NAN);
	alert_decide(&r, p, 0, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_INSUFFICIENT_DATA, NAN, NAN);
}

/* Trailing 4: 100, 80, 120, 100 -> mean 100; below 50%: the bound is 50. */
static void
test_stall(void **state)
{
	struct alert_rule r = rule_of(ALERT_CONDITION_STALL);
	struct alert_point p[] = { { 999, 50 }, { 100, 50 }, { 80, 50 },
		{ 120, 50 }, { 100, 50 }, { 49, 50 } };
	struct alert_decision d;

	(void)state;
	r.percent = 50;
	r.trailing = 4;
	assert_int_equal(alert_points_needed(&r), 5);
	/* The oldest point is beyond the trailing four: not counted. */
	alert_decide(&r, p, 6, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_FIRING, 50, 100);
	p[5].value = 50;
	alert_decide(&r, p, 6, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_OK, 50, 100);
	/* Four periods where five are needed. */
	alert_decide(&r, p + 2, 4, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_INSUFFICIENT_DATA, NAN, NAN);
}

/* A count is its own volume: a milestone that falls from 5 a day to 0
 * fires (it is what the rule is for), however small; its min_volume, when
 * a rule sets one, is the least trailing mean. */
static void
test_count_collapse_fires(void **state)
{
	struct alert_rule r = rule_of(ALERT_CONDITION_STALL);
	struct alert_point p[] = { { 5, 5 }, { 4, 4 }, { 6, 6 }, { 5, 5 },
		{ 0, 0 } };
	struct alert_decision d;

	(void)state;
	r.metric = ALERT_METRIC_COUNT;
	r.percent = 50;
	r.trailing = 4;
	r.min_volume = 0;
	alert_decide(&r, p, 5, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_FIRING, 2.5, 5);
	r.condition = ALERT_CONDITION_ANOMALY;
	r.k = 3;
	r.run = 3;	/* at most trailing: the rule parser's limit */
	alert_decide(&r, p, 5, NAN, &d);
	assert_int_equal(d.verdict, ALERT_VERDICT_FIRING);
	/* A rule that asks for a trailing mean of 10 says too little. */
	r.condition = ALERT_CONDITION_STALL;
	r.min_volume = 10;
	alert_decide(&r, p, 5, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_INSUFFICIENT_DATA, NAN, NAN);
	/* A threshold on a count is never short of volume. */
	r.condition = ALERT_CONDITION_THRESHOLD;
	r.has_below = true;
	r.below = 1;
	alert_decide(&r, p, 5, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_FIRING, 1, NAN);
}

/* Trailing 8: 10 12 8 10 12 8 10 10 -> mean 10, sample variance
 * (0+4+4+0+4+4+0+0)/7 = 16/7, sigma 1.511857892; k 3: bounds 10 ± 4.5356. */
static void
test_anomaly(void **state)
{
	struct alert_rule r = rule_of(ALERT_CONDITION_ANOMALY);
	struct alert_point p[] = { { 10, 20 }, { 12, 20 }, { 8, 20 },
		{ 10, 20 }, { 12, 20 }, { 8, 20 }, { 10, 20 }, { 10, 20 },
		{ 14.6, 20 } };
	double sigma = sqrt(16.0 / 7);
	struct alert_decision d;

	(void)state;
	r.trailing = 8;
	r.k = 3;
	r.run = 8;
	alert_decide(&r, p, 9, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_FIRING, 10 + 3 * sigma, 10);
	assert_true(fabs(d.sigma - sigma) < CLOSE);
	p[8].value = 14.5;	/* 10 + 4.5356 is above */
	alert_decide(&r, p, 9, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_OK, 10 + 3 * sigma, 10);
	p[8].value = 5.4;
	alert_decide(&r, p, 9, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_FIRING, 10 - 3 * sigma, 10);
}

/* A run: 8 values on one side of the mean, none outside 3 sigma.
 * Trailing 10: 1 1 1 and seven 2.5 (mean 2.05, sigma 0.7246); the last 7
 * of them and the judged 2.6 are above the mean. */
static void
test_anomaly_run(void **state)
{
	struct alert_rule r = rule_of(ALERT_CONDITION_ANOMALY);
	struct alert_point p[11];
	struct alert_decision d;

	(void)state;
	r.trailing = 10;
	r.k = 3;
	r.run = 8;
	for (int i = 0; i < 10; i++) {
		p[i] = (struct alert_point){ i < 3 ? 1 : 2.5, 50 };
	}
	/* mean (3 + 17.5) / 10 = 2.05; the last 7 (2.5) and the judged
	 * 2.6 are above it. */
	p[10] = (struct alert_point){ 2.6, 50 };
	alert_decide(&r, p, 11, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_FIRING, 2.05, 2.05);
	assert_non_null(strstr(d.why, "last 8 values"));
	/* The latest history below the mean (1.9 now) breaks the run; 2.6
	 * is within 1.9 ± 3 * 0.7746. */
	p[9].value = 1;
	alert_decide(&r, p, 11, NAN, &d);
	assert_decision(&d, ALERT_VERDICT_OK, 1.9 + 3 * sqrt(5.4 / 9), 1.9);
}

static void
test_target_pace(void **state)
{
	struct alert_rule r = rule_of(ALERT_CONDITION_TARGET_PACE);
	struct alert_point p[] = { { 0.089, 1000 } };
	struct alert_decision d;

	(void)state;
	r.metric = ALERT_METRIC_COUNT;
	r.percent = 10;
	/* Target 0.10, 10% behind: 0.09. */
	alert_decide(&r, p, 1, 0.10, &d);
	assert_decision(&d, ALERT_VERDICT_FIRING, 0.09, 0.10);
	p[0].value = 0.09;
	alert_decide(&r, p, 1, 0.10, &d);
	assert_decision(&d, ALERT_VERDICT_OK, 0.09, 0.10);
}

static void
test_states(void **state)
{
	(void)state;
	assert_int_equal(alert_next_state(ALERT_STATE_OK, ALERT_VERDICT_OK),
	    ALERT_STATE_OK);
	assert_int_equal(alert_next_state(ALERT_STATE_OK,
	    ALERT_VERDICT_FIRING), ALERT_STATE_FIRING);
	assert_int_equal(alert_next_state(ALERT_STATE_FIRING,
	    ALERT_VERDICT_FIRING), ALERT_STATE_FIRING);
	assert_int_equal(alert_next_state(ALERT_STATE_FIRING,
	    ALERT_VERDICT_OK), ALERT_STATE_RESOLVED);
	assert_int_equal(alert_next_state(ALERT_STATE_RESOLVED,
	    ALERT_VERDICT_OK), ALERT_STATE_OK);
	assert_int_equal(alert_next_state(ALERT_STATE_RESOLVED,
	    ALERT_VERDICT_FIRING), ALERT_STATE_FIRING);
	assert_int_equal(alert_next_state(ALERT_STATE_FIRING,
	    ALERT_VERDICT_INSUFFICIENT_DATA), ALERT_STATE_INSUFFICIENT_DATA);
	assert_int_equal(alert_next_state(ALERT_STATE_INSUFFICIENT_DATA,
	    ALERT_VERDICT_OK), ALERT_STATE_OK);
	assert_string_equal(alert_state_name(ALERT_STATE_INSUFFICIENT_DATA),
	    "insufficient_data");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_stall),
		cmocka_unit_test(test_count_collapse_fires),
		cmocka_unit_test(test_anomaly),
		cmocka_unit_test(test_anomaly_run),
		cmocka_unit_test(test_target_pace),
		cmocka_unit_test(test_states),
	};

	return cmocka_run_group_tests_name("alert_eval", tests, NULL, NULL);
}
