/* The query API's statistics against values computed independently (the
 * reference figures below come from Python: the Wilson formula written
 * out, and the z-test's p-value from statistics.NormalDist's CDF rather
 * than erfc), durations, and funnel steps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/funnel.h"
#include "common/stats.h"
#include "common/timeutil.h"

#define CLOSE 1e-9

static void
test_wilson(void **state)
{
	static const struct {
		long x, n;
		double lo, hi;
	} rows[] = {
		{ 8, 10, 0.490162471537, 0.943317848546 },
		{ 0, 10, 0.0, 0.277532799863 },
		{ 10, 10, 0.722467200137, 1.0 },
		{ 1, 1, 0.206549314377, 1.0 },
		{ 250, 1000, 0.224153098984, 0.277760280259 },
		{ 37, 1234, 0.021830557376, 0.041054279988 },
	};
	double lo, hi;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_true(stats_wilson(rows[i].x, rows[i].n, STATS_Z95, &lo,
		    &hi));
		if (fabs(lo - rows[i].lo) > CLOSE || fabs(hi - rows[i].hi) > CLOSE) {
			fail_msg("%ld/%ld: [%.12f, %.12f], want [%.12f, %.12f]",
			    rows[i].x, rows[i].n, lo, hi, rows[i].lo, rows[i].hi);
		}
	}
	assert_false(stats_wilson(0, 0, STATS_Z95, &lo, &hi));
	assert_true(lo == 0 && hi == 0);
	assert_false(stats_wilson(3, 2, STATS_Z95, &lo, &hi));
	assert_false(stats_wilson(-1, 2, STATS_Z95, &lo, &hi));
}

static void
test_two_proportions(void **state)
{
	static const struct {
		long x1, n1, x2, n2;
		double z, p;
	} rows[] = {
		{ 30, 100, 20, 100, 1.632993161855, 0.10247043486 },
		{ 5, 40, 50, 2000, 3.866326061713, 0.000110487199105 },
		{ 120, 1000, 100, 1000, 1.429300849823, 0.152917781864 },
		{ 20, 100, 30, 100, -1.632993161855, 0.10247043486 },
	};
	double z, p;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_true(stats_two_proportions(rows[i].x1, rows[i].n1,
		    rows[i].x2, rows[i].n2, &z, &p));
		if (fabs(z - rows[i].z) > CLOSE ||
		    fabs(p - rows[i].p) > 1e-9 * (1 + rows[i].p)) {
			fail_msg("row %zu: z %.12f p %.12g", i, z, p);
		}
	}
	assert_false(stats_two_proportions(0, 10, 0, 20, &z, &p));
	assert_true(z == 0 && p == 1);
	assert_false(stats_two_proportions(1, 0, 1, 2, &z, &p));
	assert_false(stats_two_proportions(5, 5, 7, 7, &z, &p));
}

static void
test_durations(void **state)
{
	const int64_t day = 86400 * TIMEUTIL_US_PER_SEC;
	int64_t us = -1;

	(void)state;
	assert_true(timeutil_parse_duration("30d", 180 * day, &us));
	assert_true(us == 30 * day);
	assert_true(timeutil_parse_duration("12h", 180 * day, &us));
	assert_true(us == 12 * 3600 * TIMEUTIL_US_PER_SEC);
	assert_true(timeutil_parse_duration("180d", 180 * day, &us));
	assert_true(timeutil_parse_duration("4320h", 180 * day, &us));
	static const char *const bad[] = { "181d", "4321h", "0d", "d", "30",
		"30m", "30dd", "-1d", " 30d", "30d ", "1234567d", "", "3.5d" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		us = -1;
		if (timeutil_parse_duration(bad[i], 180 * day, &us)) {
			fail_msg("accepted '%s'", bad[i]);
		}
		assert_true(us == -1);
	}
}

static void
test_steps(void **state)
{
	struct funnel_step s[FUNNEL_STEPS_MAX];
	char why[200];
	size_t n;

	(void)state;
	assert_true(funnel_parse_steps("product_viewed,cart_added[category="
	    "shoes, boots],purchase_completed", s, &n, why, sizeof(why)));
	assert_int_equal(n, 3);
	assert_string_equal(s[0].name, "product_viewed");
	assert_string_equal(s[0].key, "");
	assert_string_equal(s[1].name, "cart_added");
	assert_string_equal(s[1].key, "category");
	assert_string_equal(s[1].value, "shoes, boots");
	assert_string_equal(s[2].name, "purchase_completed");
	assert_true(funnel_parse_steps("a_b,c_d,e_f,g_h,i_j,k_l,m_n,o_p,q_r,"
	    "s_t", s, &n, why, sizeof(why)));
	assert_int_equal(n, 10);
	static const char *const bad[] = {
		"a_b", "", ",", "a_b,", "a_b,,c_d", "A_b,c_d", "a_b,c d",
		"a_b[x=1,c_d", "a_b[=1],c_d", "a_b[x=],c_d", "a_b[x],c_d",
		"a_b[x=1]c_d", "a_b,c_d,e_f,g_h,i_j,k_l,m_n,o_p,q_r,s_t,u_v",
		"a_b[x-y=1],c_d", "a_b[x=\x01],c_d",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (funnel_parse_steps(bad[i], s, &n, why, sizeof(why))) {
			fail_msg("accepted '%s'", bad[i]);
		}
		assert_true(why[0] != '\0');
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wilson),
		cmocka_unit_test(test_two_proportions),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_steps),
	};

	return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
