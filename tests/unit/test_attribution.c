/* The attribution models against credits worked out by hand (the working
 * is in the comments, in fractions), and properties on random paths:
 * every model's credits sum to the conversions and the revenue, and with
 * one touch per path every model gives the same answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/attribution.h"

#define CLOSE 1e-9
#define DAY (86400LL * 1000000)
#define T0 (1700000000LL * 1000000)

static const struct attr_params params_1d = {
	.half_life_us = DAY, .position_first = 0.4, .position_last = 0.4,
};

static void
assert_close(double got, double want, const char *what)
{
	if (fabs(got - want) > CLOSE * fmax(1, fabs(want))) {
		fail_msg("%s: %.12f, want %.12f", what, got, want);
	}
}

static void
assert_credit(const struct attribution *a, enum attr_model m, uint32_t v,
    double conversions, double revenue)
{
	double r, c = attr_credit(a, m, v, &r);
	char what[80];

	snprintf(what, sizeof(what), "%s, value %u, conversions",
	    attr_model_name(m), v);
	assert_close(c, conversions, what);
	snprintf(what, sizeof(what), "%s, value %u, revenue",
	    attr_model_name(m), v);
	assert_close(r, revenue, what);
}

static struct attr_touch
touch(int64_t ts, uint32_t value, bool direct)
{
	return (struct attr_touch){ .ts_us = ts, .value = value,
		.channel = (uint16_t)value, .direct = direct };
}

/* Values A 0, B 1, C 2, none 3. Converting paths (conversions at T0):
 *   A > B > conv (100)   A > conv (50)   B > C > conv (30)
 * and three people who did not convert: A > lost, B > lost, C > A > lost.
 * Transitions: start: A 3, B 2, C 1 (of 6); A: B 1, conv 1, lost 2 (of
 * 4); B: conv 1, C 1, lost 1 (of 3); C: conv 1, A 1 (of 2).
 * Conversion probability x from each state:
 *   xA = xB/4 + 1/4, xB = 1/3 + xC/3, xC = 1/2 + xA/2
 *   => xA = 9/23, xB = 13/23, xC = 16/23, P = (3xA + 2xB + xC)/6 = 1/2.
 * Removing A (xA = 0): xC = 1/2, xB = 1/2, P = 2/6 * 1/2 + 1/6 * 1/2 =
 *   1/4: effect 1/2. Removing B: xA = 1/4, xC = 5/8, P = 3/6 * 1/4 +
 *   1/6 * 5/8 = 11/48: effect 13/24. Removing C: xB = 1/3, xA = 1/3,
 *   P = 3/6 * 1/3 + 2/6 * 1/3 = 5/18: effect 4/9.
 * Sum 107/72, so of 3 conversions: A 108/107, B 117/107, C 96/107.
 * Revenue: a conversion from A is worth 50, from B 100, from C 30:
 *   yA = yB/4 + 50/4, yB = 100/3 + yC/3, yC = 30/2 + yA/2 => E = 30.
 *   Without A: yC = 15, yB = 115/3, E = 2/6 * 115/3 + 15/6 = 275/18:
 *   effect 53/108. Without B: yA = 25/2, yC = 85/4, E = 235/24: effect
 *   97/144. Without C: yB = 100/3, yA = 125/6, E = 775/36: effect
 *   61/216. Over 180: A 180 * 212/625, B 180 * 291/625, C 180 * 122/625.
 */
static void
test_markov_by_hand(void **state)
{
	struct attribution *a = attr_new(4, 3);
	struct attr_touch p1[] = { touch(T0 - 3 * DAY, 0, false),
		touch(T0 - DAY, 1, false) };
	struct attr_touch p2[] = { touch(T0, 0, false) };
	struct attr_touch p3[] = { touch(T0 - 2 * DAY, 1, false),
		touch(T0 - DAY, 2, false) };

	(void)state;
	assert_non_null(a);
	assert_true(attr_add_conversion(a, T0, 100, p1, 2));
	assert_true(attr_add_conversion(a, T0, 50, p2, 1));
	assert_true(attr_add_conversion(a, T0, 30, p3, 2));
	assert_true(attr_add_transitions(a, ATTR_START, 0, 1));
	assert_true(attr_add_transitions(a, 0, ATTR_LOST, 1));
	assert_true(attr_add_transitions(a, ATTR_START, 1, 1));
	assert_true(attr_add_transitions(a, 1, ATTR_LOST, 1));
	assert_true(attr_add_transitions(a, ATTR_START, 2, 1));
	assert_true(attr_add_transitions(a, 2, 0, 1));
	assert_true(attr_add_transitions(a, 0, ATTR_LOST, 1));
	assert_true(attr_compute(a, &params_1d, 1u << ATTR_DATA_DRIVEN));
	assert_close(attr_removal_effect(a, 0), 1.0 / 2, "effect of A");
	assert_close(attr_removal_effect(a, 1), 13.0 / 24, "effect of B");
	assert_close(attr_removal_effect(a, 2), 4.0 / 9, "effect of C");
	assert_close(attr_removal_effect(a, 3), 0, "effect of none");
	assert_credit(a, ATTR_DATA_DRIVEN, 0, 108.0 / 107, 180.0 * 212 / 625);
	assert_credit(a, ATTR_DATA_DRIVEN, 1, 117.0 / 107, 180.0 * 291 / 625);
	assert_credit(a, ATTR_DATA_DRIVEN, 2, 96.0 / 107, 180.0 * 122 / 625);
	assert_credit(a, ATTR_DATA_DRIVEN, 3, 0, 0);
	/* Rule-based models see only the converting paths. */
	assert_true(attr_compute(a, &params_1d, (1u << ATTR_DATA_DRIVEN) - 1));
	assert_credit(a, ATTR_FIRST_TOUCH, 0, 2, 150);
	assert_credit(a, ATTR_FIRST_TOUCH, 1, 1, 30);
	assert_credit(a, ATTR_LAST_TOUCH, 0, 1, 50);
	assert_credit(a, ATTR_LAST_TOUCH, 1, 1, 100);
	assert_credit(a, ATTR_LAST_TOUCH, 2, 1, 30);
	assert_credit(a, ATTR_LINEAR, 0, 1.5, 100);
	assert_credit(a, ATTR_LINEAR, 1, 1, 65);
	assert_credit(a, ATTR_LINEAR, 2, 0.5, 15);
	/* Half-life 1 day: A 3 days and B 1 day before weigh 1/8 and 1/2
	 * (0.2 and 0.8); B 2 days and C 1 day before, 1/4 and 1/2. */
	assert_credit(a, ATTR_TIME_DECAY, 0, 0.2 + 1, 20 + 50);
	assert_credit(a, ATTR_TIME_DECAY, 1, 0.8 + 1.0 / 3, 80 + 10);
	assert_credit(a, ATTR_TIME_DECAY, 2, 2.0 / 3, 20);
	attr_free(a);
}

/* Values A 0, B 1, Direct 2, none 3. At T0:
 *   conv 1 (100): A -4d, Direct -2d, B -1d, Direct -12h
 *   conv 2 (10):  Direct -1d
 *   conv 3 (0):   no touch, credited to none. */
static void
test_rules_by_hand(void **state)
{
	struct attribution *a = attr_new(4, 3);
	struct attr_touch p1[] = { touch(T0 - 4 * DAY, 0, false),
		touch(T0 - 2 * DAY, 2, true), touch(T0 - DAY, 1, false),
		touch(T0 - DAY / 2, 2, true) };
	struct attr_touch p2[] = { touch(T0 - DAY, 2, true) };
	/* Relative to the last touch: 2^-3.5, 2^-1.5, 2^-0.5, 1. */
	double w[] = { 0.08838834764831845, 0.35355339059327373,
		0.7071067811865476, 1 };
	double sum = w[0] + w[1] + w[2] + w[3];

	(void)state;
	assert_non_null(a);
	assert_true(attr_add_conversion(a, T0, 100, p1, 4));
	assert_true(attr_add_conversion(a, T0, 10, p2, 1));
	assert_true(attr_add_conversion(a, T0, 0, NULL, 0));
	assert_true(attr_compute(a, &params_1d, (1u << ATTR_MODEL_COUNT) - 1));
	assert_credit(a, ATTR_FIRST_TOUCH, 0, 1, 100);
	assert_credit(a, ATTR_FIRST_TOUCH, 2, 1, 10);
	assert_credit(a, ATTR_FIRST_TOUCH, 3, 1, 0);
	assert_credit(a, ATTR_LAST_TOUCH, 2, 2, 110);
	assert_credit(a, ATTR_LAST_TOUCH, 3, 1, 0);
	/* Direct earns only where nothing else touched. */
	assert_credit(a, ATTR_LAST_NON_DIRECT, 1, 1, 100);
	assert_credit(a, ATTR_LAST_NON_DIRECT, 2, 1, 10);
	assert_credit(a, ATTR_LAST_NON_DIRECT, 3, 1, 0);
	assert_credit(a, ATTR_LINEAR, 0, 0.25, 25);
	assert_credit(a, ATTR_LINEAR, 1, 0.25, 25);
	assert_credit(a, ATTR_LINEAR, 2, 1.5, 60);
	assert_credit(a, ATTR_TIME_DECAY, 0, w[0] / sum, 100 * w[0] / sum);
	assert_credit(a, ATTR_TIME_DECAY, 1, w[2] / sum, 100 * w[2] / sum);
	assert_credit(a, ATTR_TIME_DECAY, 2, (w[1] + w[3]) / sum + 1,
	    100 * (w[1] + w[3]) / sum + 10);
	/* 40/20/40 with four touches: 0.4, 0.1, 0.1, 0.4. */
	assert_credit(a, ATTR_POSITION_BASED, 0, 0.4, 40);
	assert_credit(a, ATTR_POSITION_BASED, 1, 0.1, 10);
	assert_credit(a, ATTR_POSITION_BASED, 2, 0.5 + 1, 50 + 10);
	assert_credit(a, ATTR_POSITION_BASED, 3, 1, 0);
	/* The conversion without a touch is a path (none) in the chain. */
	assert_true(attr_removal_effect(a, 3) > 0);
	attr_free(a);
}

/* Two touches share in proportion to the first and last weights: 60/20/20
 * gives 0.75 and 0.25. */
static void
test_position_two_touches(void **state)
{
	struct attribution *a = attr_new(3, 2);
	struct attr_touch p[] = { touch(T0 - DAY, 0, false),
		touch(T0, 1, false) };
	struct attr_params params = { .half_life_us = DAY,
		.position_first = 0.6, .position_last = 0.2 };

	(void)state;
	assert_non_null(a);
	assert_true(attr_add_conversion(a, T0, 8, p, 2));
	assert_true(attr_compute(a, &params, 1u << ATTR_POSITION_BASED));
	assert_credit(a, ATTR_POSITION_BASED, 0, 0.75, 6);
	assert_credit(a, ATTR_POSITION_BASED, 1, 0.25, 2);
	attr_free(a);
}

/* xorshift64: the random paths are the same on every run. */
static uint64_t
next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random data, n_values values (the last is none): conversions after 0
 * to max_touches touches, and for about half of them a person who did
 * not convert after 1 to 3 visits. With max_touches 1, every path, of
 * those who converted or not, has exactly one touch. */
static struct attribution *
random_attribution(uint64_t seed, uint32_t n_values, size_t max_touches,
    size_t n_convs, double *revenue)
{
	struct attribution *a = attr_new(n_values, n_values - 1);
	struct attr_touch t[16];

	*revenue = 0;
	for (size_t i = 0; a != NULL && i < n_convs; i++) {
		size_t n = max_touches == 1 ? 1 :
		    next_random(&seed) % (max_touches + 1);
		double rev = (double)(next_random(&seed) % 20000) / 100;
		int64_t ts = T0 - (int64_t)(n + 1) * DAY;

		for (size_t j = 0; j < n; j++) {
			uint32_t v = (uint32_t)(next_random(&seed) % (n_values - 1));
			ts += (int64_t)(next_random(&seed) % DAY);
			t[j] = touch(ts, v, v == 0);
		}
		assert_true(attr_add_conversion(a, T0, rev, t, n));
		*revenue += rev;
		if (next_random(&seed) % 2) {
			/* count people along the same path. */
			uint32_t from = ATTR_START;
			size_t steps = max_touches == 1 ? 1 :
			    1 + next_random(&seed) % 3;
			double count = 1 + (double)(next_random(&seed) % 5);
			for (size_t j = 0; j < steps; j++) {
				uint32_t to = (uint32_t)(next_random(&seed) %
				    (n_values - 1));
				assert_true(attr_add_transitions(a, from, to,
				    count));
				from = to;
			}
			assert_true(attr_add_transitions(a, from, ATTR_LOST,
			    count));
		}
	}
	return a;
}

static void
test_credits_sum(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		double revenue;
		uint32_t n_values = 2 + (uint32_t)(seed % 9);
		struct attribution *a = random_attribution(seed * 7919, n_values,
		    6, 200 + seed * 13, &revenue);

		assert_non_null(a);
		assert_true(attr_compute(a, &params_1d,
		    (1u << ATTR_MODEL_COUNT) - 1));
		for (int m = 0; m < ATTR_MODEL_COUNT; m++) {
			double conv = 0, rev = 0, r;
			for (uint32_t v = 0; v < n_values; v++) {
				conv += attr_credit(a, m, v, &r);
				rev += r;
				assert_true(attr_credit(a, m, v, &r) >= 0);
			}
			assert_close(conv, (double)(200 + seed * 13),
			    attr_model_name(m));
			assert_close(rev, revenue, attr_model_name(m));
		}
		attr_free(a);
	}
}

static void
test_single_touch_same_everywhere(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 10; seed++) {
		double revenue, r0, r;
		uint32_t n_values = 3 + (uint32_t)(seed % 5);
		struct attribution *a = random_attribution(seed * 104729,
		    n_values, 1, 150, &revenue);

		assert_non_null(a);
		assert_true(attr_compute(a, &params_1d,
		    (1u << ATTR_MODEL_COUNT) - 1));
		for (uint32_t v = 0; v < n_values; v++) {
			double c0 = attr_credit(a, ATTR_FIRST_TOUCH, v, &r0);
			for (int m = 1; m < ATTR_MODEL_COUNT; m++) {
				assert_close(attr_credit(a, m, v, &r), c0,
				    attr_model_name(m));
				assert_close(r, r0, attr_model_name(m));
			}
		}
		attr_free(a);
	}
}

/* Paths by channel: A>B twice, A once, none once; facts over them. */
static void
test_paths_and_facts(void **state)
{
	struct attribution *a = attr_new(3, 2);
	struct attr_touch ab[] = { touch(T0 - 2 * DAY, 0, false),
		touch(T0 - DAY, 1, false) };
	struct attr_touch only_a[] = { touch(T0 - 4 * DAY, 0, false) };
	struct attr_path top[3];
	struct attr_facts f;
	bool ok;

	(void)state;
	assert_non_null(a);
	assert_true(attr_add_conversion(a, T0, 1, only_a, 1));
	assert_true(attr_add_conversion(a, T0, 2, ab, 2));
	assert_true(attr_add_conversion(a, T0, 3, NULL, 0));
	assert_true(attr_add_conversion(a, T0, 4, ab, 2));
	assert_int_equal(attr_top_paths(a, top, 2, &ok), 2);
	assert_true(ok);
	assert_int_equal(top[0].n, 2);
	assert_int_equal(top[0].conversions, 2);
	assert_int_equal(top[0].touches[0].channel, 0);
	assert_int_equal(top[0].touches[1].channel, 1);
	/* One conversion each: no touch sorts before A. */
	assert_int_equal(top[1].n, 0);
	assert_int_equal(top[1].conversions, 1);
	attr_facts(a, &f);
	assert_int_equal(f.conversions, 4);
	assert_close(f.revenue, 10, "revenue");
	assert_close(f.touches_mean, 5.0 / 4, "touches mean");
	assert_close(f.touches_median, 1.5, "touches median");
	/* From the first touch: 4, 2 and 2 days. */
	assert_close(f.seconds_mean, 8.0 / 3 * 86400, "seconds mean");
	assert_close(f.seconds_median, 2 * 86400.0, "seconds median");
	attr_free(a);
}

/* The channel order of two paths (a prefix first), written plainly. */
static int
path_order(const struct attr_touch *a, size_t na, const struct attr_touch *b,
    size_t nb)
{
	for (size_t i = 0; i < na && i < nb; i++) {
		if (a[i].channel != b[i].channel) {
			return a[i].channel < b[i].channel ? -1 : 1;
		}
	}
	return na < nb ? -1 : na > nb;
}

/* Random paths of up to 20 touches (past the 15 that fit in one key) over
 * three channels, against counting every pair and picking the best by
 * hand: same paths, counts and order, ties included. */
static void
test_top_paths_against_counting(void **state)
{
	enum { CONVS = 400, LONGEST = 20, MAX = 12 };
	static struct attr_touch paths[CONVS][LONGEST];
	size_t len[CONVS], count[CONVS], best[MAX], n_best = 0;
	struct attribution *a = attr_new(4, 3);
	struct attr_path top[MAX];
	unsigned seed = 7;
	bool ok;

	(void)state;
	assert_non_null(a);
	for (size_t i = 0; i < CONVS; i++) {
		seed = seed * 1103515245u + 12345u;
		len[i] = (seed >> 16) % 4 == 0 ? 14 + (seed >> 8) % 7 :
		    (seed >> 8) % 4;
		for (size_t k = 0; k < len[i]; k++) {
			seed = seed * 1103515245u + 12345u;
			paths[i][k] = touch(T0 - (int64_t)(LONGEST - k) * DAY,
			    (seed >> 16) % (len[i] > 3 ? 1 : 3), false);
		}
		assert_true(attr_add_conversion(a, T0, 1, paths[i], len[i]));
	}
	for (size_t i = 0; i < CONVS; i++) {
		count[i] = 0;
		for (size_t j = 0; j < CONVS; j++) {
			count[i] += path_order(paths[i], len[i], paths[j],
			    len[j]) == 0;
		}
	}
	/* The best MAX distinct paths, each by its first conversion. */
	for (size_t i = 0; i < CONVS; i++) {
		bool first = true;
		for (size_t j = 0; j < i && first; j++) {
			first = path_order(paths[i], len[i], paths[j], len[j]) != 0;
		}
		if (!first) {
			continue;
		}
		size_t at = n_best < MAX ? n_best++ : MAX;
		for (; at > 0; at--) {
			size_t b = best[at - 1];
			if (count[b] > count[i] || (count[b] == count[i] &&
			    path_order(paths[b], len[b], paths[i], len[i]) < 0)) {
				break;
			}
			if (at < MAX) {
				best[at] = b;
			}
		}
		if (at < MAX) {
			best[at] = i;
		}
	}
	assert_int_equal(attr_top_paths(a, top, MAX, &ok), n_best);
	assert_true(ok);
	for (size_t r = 0; r < n_best; r++) {
		size_t b = best[r];
		assert_int_equal(top[r].conversions, count[b]);
		assert_int_equal(path_order(top[r].touches, top[r].n, paths[b],
		    len[b]), 0);
	}
	attr_free(a);
}

static void
test_names_and_bounds(void **state)
{
	struct attribution *a = attr_new(2, 1);
	struct attr_touch bad[] = { touch(T0, 2, false) };

	(void)state;
	assert_int_equal(attr_model_from_name("data_driven", 11),
	    ATTR_DATA_DRIVEN);
	assert_int_equal(attr_model_from_name("linear,", 6), ATTR_LINEAR);
	assert_int_equal(attr_model_from_name("linea", 5), -1);
	assert_string_equal(attr_model_name(ATTR_POSITION_BASED),
	    "position_based");
	assert_null(attr_new(2, 2));
	assert_non_null(a);
	assert_false(attr_add_conversion(a, T0, 0, bad, 1));
	assert_false(attr_add_transitions(a, 2, 0, 1));
	assert_false(attr_add_transitions(a, 0, ATTR_START, 1));
	assert_false(attr_add_transitions(a, ATTR_LOST, 0, 1));
	assert_false(attr_add_transitions(a, 0, 1, -1));
	/* Nothing added: every credit is 0. */
	assert_true(attr_compute(a, &params_1d, (1u << ATTR_MODEL_COUNT) - 1));
	assert_credit(a, ATTR_DATA_DRIVEN, 0, 0, 0);
	attr_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_markov_by_hand),
		cmocka_unit_test(test_rules_by_hand),
		cmocka_unit_test(test_position_two_touches),
		cmocka_unit_test(test_credits_sum),
		cmocka_unit_test(test_single_touch_same_everywhere),
		cmocka_unit_test(test_paths_and_facts),
		cmocka_unit_test(test_top_paths_against_counting),
		cmocka_unit_test(test_names_and_bounds),
	};

	return cmocka_run_group_tests_name("attribution", tests, NULL, NULL);
}
