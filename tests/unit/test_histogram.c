/* Histograms: which bucket a value lands in (bounds are inclusive, as
 * Prometheus' le says), the exact text of a rendering (cumulative buckets,
 * +Inf equal to _count, decimal bounds and sums without rounding), labels,
 * and observations from several threads at once losing nothing. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/histogram.h"
#include "common/strbuf.h"

static const uint64_t small_bounds[] = { 1, 5, 10 };

static void
test_render_exact(void **state)
{
	static const uint64_t values[] = { 0, 1, 2, 5, 6, 11, 1000 };
	struct histogram h;
	struct strbuf sb;

	(void)state;
	histogram_init(&h, small_bounds, 3, 0);
	strbuf_init(&sb);
	histogram_render(&sb, &h, "t_events", "Events per batch.", NULL);
	assert_string_equal(sb.data, "# HELP t_events Events per batch.\n"
	    "# TYPE t_events histogram\n"
	    "t_events_bucket{le=\"1\"} 0\n"
	    "t_events_bucket{le=\"5\"} 0\n"
	    "t_events_bucket{le=\"10\"} 0\n"
	    "t_events_bucket{le=\"+Inf\"} 0\n"
	    "t_events_sum 0\n"
	    "t_events_count 0\n");
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		histogram_observe(&h, values[i]);
	}
	assert_int_equal(histogram_count(&h), 7);
	strbuf_reset(&sb);
	histogram_render(&sb, &h, "t_events", NULL, "site=\"a\"");
	assert_string_equal(sb.data,
	    "t_events_bucket{site=\"a\",le=\"1\"} 2\n"
	    "t_events_bucket{site=\"a\",le=\"5\"} 4\n"
	    "t_events_bucket{site=\"a\",le=\"10\"} 5\n"
	    "t_events_bucket{site=\"a\",le=\"+Inf\"} 7\n"
	    "t_events_sum{site=\"a\"} 1025\n"
	    "t_events_count{site=\"a\"} 7\n");
	assert_false(strbuf_failed(&sb));
	strbuf_finish(&sb);
}

static void
test_seconds(void **state)
{
	struct histogram h;
	struct strbuf sb;

	(void)state;
	histogram_init(&h, histogram_seconds_bounds,
	    histogram_seconds_n_bounds, HISTOGRAM_SECONDS_DECIMALS);
	histogram_observe(&h, 1000000);		/* 1 ms: on the bound */
	histogram_observe(&h, 1000001);		/* just above */
	histogram_observe(&h, 12000000000);	/* 12 s: past the last */
	strbuf_init(&sb);
	histogram_render(&sb, &h, "t_seconds", "Time.", "route=\"/x\"");
	assert_non_null(strstr(sb.data,
	    "t_seconds_bucket{route=\"/x\",le=\"0.001\"} 1\n"
	    "t_seconds_bucket{route=\"/x\",le=\"0.0025\"} 2\n"));
	assert_non_null(strstr(sb.data,
	    "t_seconds_bucket{route=\"/x\",le=\"2.5\"} 2\n"));
	assert_non_null(strstr(sb.data,
	    "t_seconds_bucket{route=\"/x\",le=\"10\"} 2\n"
	    "t_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"
	    "t_seconds_sum{route=\"/x\"} 12.002000001\n"
	    "t_seconds_count{route=\"/x\"} 3\n"));
	strbuf_finish(&sb);
}

#define THREADS 4
#define PER_THREAD 100000

static void *
observe_many(void *arg)
{
	struct histogram *h = arg;

	for (uint64_t i = 0; i < PER_THREAD; i++) {
		histogram_observe(h, i % 12);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct histogram h;
	pthread_t t[THREADS];
	struct strbuf sb;
	char want[160];
	uint64_t low = 0, sum = 0;

	(void)state;
	histogram_init(&h, small_bounds, 3, 0);
	for (size_t i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_create(&t[i], NULL, observe_many, &h),
		    0);
	}
	for (size_t i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
	}
	/* What the threads observed, counted plainly. */
	for (uint64_t i = 0; i < PER_THREAD; i++) {
		low += i % 12 <= 1 ? THREADS : 0;
		sum += i % 12 * THREADS;
	}
	assert_int_equal(histogram_count(&h), THREADS * PER_THREAD);
	strbuf_init(&sb);
	histogram_render(&sb, &h, "t", NULL, NULL);
	snprintf(want, sizeof(want), "t_bucket{le=\"1\"} %llu\n",
	    (unsigned long long)low);
	assert_non_null(strstr(sb.data, want));
	snprintf(want, sizeof(want), "t_bucket{le=\"+Inf\"} %d\nt_sum %llu\n"
	    "t_count %d\n", THREADS * PER_THREAD, (unsigned long long)sum,
	    THREADS * PER_THREAD);
	assert_non_null(strstr(sb.data, want));
	strbuf_finish(&sb);
}

static void
test_too_many_bounds(void **state)
{
	uint64_t bounds[HISTOGRAM_MAX_BOUNDS + 4];
	struct histogram h;

	(void)state;
	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		bounds[i] = i + 1;
	}
	histogram_init(&h, bounds, sizeof(bounds) / sizeof(bounds[0]), 0);
	assert_int_equal(h.n_bounds, HISTOGRAM_MAX_BOUNDS);
	histogram_observe(&h, HISTOGRAM_MAX_BOUNDS + 3);
	assert_int_equal(histogram_count(&h), 1);
	assert_int_equal(atomic_load(&h.buckets[HISTOGRAM_MAX_BOUNDS]), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_exact),
		cmocka_unit_test(test_seconds),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_too_many_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
