/* The query index (common/qindex.c) and its algorithms (qfunnel.c,
 * qmilestones.c, qsignals.c, qattribution.c) on fixtures small enough to
 * work out by hand; the differential test (tests/integration/
 * test_engines_agree.py) holds them to PostgreSQL on random data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/attribution.h"
#include "common/qattribution.h"
#include "common/qfunnel.h"
#include "common/qindex.h"
#include "common/qmilestones.h"
#include "common/qsignals.h"
#include "common/stats.h"
#include "common/timeutil.h"

#define S TIMEUTIL_US_PER_SEC
#define H (3600 * S)
#define DAY (24 * H)
/* 2026-11-02, a Monday, 00:00 UTC. */
#define T0 (INT64_C(1793577600) * S)

static struct qindex_budget budget;

static void
visit(struct qindex *ix, const char *id, int64_t person, int64_t start,
    const char *channel, const char *campaign)
{
	struct qindex_visit_row row = { id, person, start, start + H, false,
		{ channel, "news", "email", campaign, NULL, "/p/1" } };

	assert_int_equal(qindex_add_visit(ix, &row), QINDEX_OK);
}

static void
event(struct qindex *ix, int64_t person, int64_t ts, const char *name,
    const char *session)
{
	const char *kind = strcmp(name, "page_viewed") == 0 ? "page" :
	    strcmp(name, "purchase_completed") == 0 ? "macro" : "milestone";
	struct qindex_event_row row = { person, ts, name, kind, session,
		"desktop", "Chrome", NULL, strcmp(kind, "macro") == 0, 20.0, "EUR" };

	assert_int_equal(qindex_add_event(ix, &row), QINDEX_OK);
}

/* Person 1: pv, ca +1h, pc +2h. Person 2: pv, pc +1h, ca +2h (a
 * purchase between). Person 3: pv, ca exactly one day later. Person 4:
 * ca only. Person 5 (two ids, 5 and 6, merged): pv as 6, ca as 5. */
static struct qindex *
shop(void)
{
	struct qindex *ix = qindex_new(&budget);

	assert_non_null(ix);
	visit(ix, "s1", 1, T0, "Email", "nov");
	visit(ix, "s2", 2, T0, "Direct", NULL);
	visit(ix, "s3", 3, T0, "Email", "dec");
	visit(ix, "s4", 4, T0, "Direct", NULL);
	visit(ix, "s5", 5, T0, "Organic Search", NULL);
	event(ix, 1, T0, "product_viewed", "s1");
	event(ix, 1, T0 + H, "cart_added", "s1");
	event(ix, 1, T0 + 2 * H, "purchase_completed", "s1");
	event(ix, 2, T0, "product_viewed", "s2");
	event(ix, 2, T0 + H, "purchase_completed", "s2");
	event(ix, 2, T0 + 2 * H, "cart_added", "s2");
	event(ix, 3, T0, "product_viewed", "s3");
	event(ix, 3, T0 + DAY, "cart_added", "s3");
	event(ix, 4, T0, "cart_added", "s4");
	event(ix, 6, T0 + 10 * S, "product_viewed", "s5");
	event(ix, 5, T0 + 20 * S, "cart_added", "s5");
	assert_int_equal(qindex_merge(ix, 6, 5), QINDEX_OK);
	return ix;
}

static const struct funnel_step pv_ca_pc[] = {
	{ .name = "product_viewed" }, { .name = "cart_added" },
	{ .name = "purchase_completed" },
};

static void
funnel(const struct qindex *ix, struct qfunnel_spec *spec, long e0, long e1,
    long e2, struct funnel_counts *out)
{
	if (spec->steps == NULL) {
		spec->steps = pv_ca_pc;
		spec->n_steps = 3;
	}
	if (spec->window_us == 0) {
		spec->window_us = DAY;
	}
	spec->from_us = T0 - H;
	spec->to_us = T0 + H;
	spec->top = spec->top == 0 ? 10 : spec->top;
	assert_true(qfunnel_supported(spec));
	assert_true(qfunnel_run(ix, spec, out));
	if (out->overall.entered[0] != e0 || out->overall.entered[1] != e1 ||
	    out->overall.entered[2] != e2) {
		fail_msg("entered %ld %ld %ld, want %ld %ld %ld",
		    out->overall.entered[0], out->overall.entered[1],
		    out->overall.entered[2], e0, e1, e2);
	}
}

static void
test_funnel_orders(void **state)
{
	struct qindex *ix = shop();
	struct funnel_counts c;
	struct qfunnel_spec spec = { 0 };

	(void)state;
	/* Ordered: 1 (3 steps), 2 (ca after pc: 2), 3 (ca at the window's
	 * end: in), 5 (merged: 2); 4 never entered. */
	funnel(ix, &spec, 4, 4, 1, &c);
	/* Step 2 from step 1: 20 s, 1 h, 2 h, 1 day. */
	assert_true(c.overall.seconds[1][QFUNNEL_MEDIAN_PREV] == 5400);
	assert_true(fabs(c.overall.seconds[1][QFUNNEL_P90_PREV] -
	    (7200 + 0.7 * (86400 - 7200))) < 1e-9);
	assert_true(isnan(c.overall.seconds[0][QFUNNEL_MEDIAN_PREV]));
	funnel_counts_finish(&c);
	/* Strict: person 2's purchase breaks the order. */
	spec = (struct qfunnel_spec){ .order = QFUNNEL_STRICT };
	funnel(ix, &spec, 4, 3, 1, &c);
	funnel_counts_finish(&c);
	/* Any: 4 enters too (its cart_added); 2 does all three. */
	spec = (struct qfunnel_spec){ .order = QFUNNEL_ANY };
	funnel(ix, &spec, 5, 4, 2, &c);
	funnel_counts_finish(&c);
	/* A window one microsecond shorter loses person 3. */
	spec = (struct qfunnel_spec){ .window_us = DAY - 1 };
	funnel(ix, &spec, 4, 3, 1, &c);
	funnel_counts_finish(&c);
	qindex_free(ix);
}

static void
test_funnel_groups(void **state)
{
	struct qindex *ix = shop();
	struct funnel_counts c;
	struct qfunnel_spec spec = { .breakdown = { .dim = FUNNEL_DIM_CHANNEL },
		.top = 1 };
	struct funnel_step exclude = { .name = "purchase_completed" };

	(void)state;
	/* Email has 2 entrants (1, 3), the rest share (other). */
	funnel(ix, &spec, 4, 4, 1, &c);
	assert_int_equal(c.n_groups, 2);
	assert_string_equal(c.groups[0].value, "(other)");
	assert_int_equal(c.groups[0].entered[0], 2);
	assert_string_equal(c.groups[1].value, "Email");
	assert_int_equal(c.groups[1].entered[2], 1);
	funnel_counts_finish(&c);
	/* Campaigns: nov, dec, and (none) for the visits without one. */
	spec = (struct qfunnel_spec){ .breakdown = { .dim =
		FUNNEL_DIM_UTM_CAMPAIGN } };
	funnel(ix, &spec, 4, 4, 1, &c);
	assert_int_equal(c.n_groups, 3);
	assert_string_equal(c.groups[0].value, "(none)");
	assert_int_equal(c.groups[0].entered[0], 2);
	funnel_counts_finish(&c);
	/* Weekly cohorts: everyone entered in the week of Monday T0. */
	spec = (struct qfunnel_spec){ .cohort = QFUNNEL_WEEK };
	funnel(ix, &spec, 4, 4, 1, &c);
	assert_int_equal(c.n_groups, 1);
	assert_string_equal(c.groups[0].value, "2026-11-02");
	funnel_counts_finish(&c);
	/* A purchase between entry and the last step reached leaves 2 out
	 * (person 1's is the last step itself). */
	spec = (struct qfunnel_spec){ .exclude = &exclude, .n_exclude = 1 };
	funnel(ix, &spec, 3, 3, 1, &c);
	funnel_counts_finish(&c);
	/* A filter on a value nobody has matches nobody. */
	struct funnel_dim_ref nowhere = { .dim = FUNNEL_DIM_CHANNEL,
		.value = "Nowhere" };
	spec = (struct qfunnel_spec){ .filters = &nowhere, .n_filters = 1 };
	funnel(ix, &spec, 0, 0, 0, &c);
	funnel_counts_finish(&c);
	qindex_free(ix);
}

static void
test_changes(void **state)
{
	struct qindex *ix = shop();
	struct funnel_counts c;
	struct qfunnel_spec spec = { 0 };
	struct qindex_stats st;
	const int64_t gone[] = { 1 };
	size_t n;

	(void)state;
	/* Compaction changes nothing but where the events are. */
	qindex_stats(ix, &st);
	assert_int_equal(st.pending, 11);
	assert_int_equal(qindex_compact(ix), QINDEX_OK);
	qindex_stats(ix, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.events, 11);
	funnel(ix, &spec, 4, 4, 1, &c);
	funnel_counts_finish(&c);
	/* An erased person goes with their visit and conversion. */
	assert_int_equal(qindex_conversions(ix, &n) != NULL, true);
	assert_int_equal(n, 2);
	qindex_forget_people(ix, gone, 1);
	funnel(ix, &spec, 3, 3, 0, &c);
	funnel_counts_finish(&c);
	qindex_conversions(ix, &n);
	assert_int_equal(n, 1);
	/* Events before T0 + 1 s go: person 2, 3 and 4 lose their entry. */
	qindex_forget_events_before(ix, T0 + S);
	funnel(ix, &spec, 1, 1, 0, &c);
	funnel_counts_finish(&c);
	qindex_stats(ix, &st);
	assert_int_equal(st.events, 5);
	qindex_free(ix);
}

static void
test_sessions_across_people(void **state)
{
	struct qindex *ix = qindex_new(&budget);
	struct funnel_counts c;
	struct qfunnel_spec spec = { .sessions = true };

	(void)state;
	/* One shared device's visit holds two people's events. */
	visit(ix, "shared", 1, T0, "Direct", NULL);
	event(ix, 1, T0, "product_viewed", "shared");
	event(ix, 2, T0 + S, "cart_added", "shared");
	event(ix, 2, T0 + 2 * S, "purchase_completed", "other");
	funnel(ix, &spec, 1, 1, 0, &c);
	funnel_counts_finish(&c);
	spec = (struct qfunnel_spec){ 0 };
	funnel(ix, &spec, 1, 0, 0, &c);
	funnel_counts_finish(&c);
	qindex_free(ix);
}

/* An event keeps its own device when its visit's first event had
 * another (an alias), and when it has no visit; a visit's events stay
 * one unit whichever device each had. */
static void
test_event_links(void **state)
{
	struct qindex *ix = qindex_new(&budget);
	struct qindex_scan *scan;
	const struct qindex_event *ev;
	size_t n, units = 0;
	struct qindex_event_row row = { 1, T0, "product_viewed", "milestone",
		"s1", "desktop", "Chrome", NULL, false, 0, NULL };
	static const char *const want[] = { "desktop", "mobile", "tablet",
		"desktop" };

	(void)state;
	assert_int_equal(sizeof(struct qindex_event), 12);
	visit(ix, "s1", 1, T0, "Email", NULL);
	assert_int_equal(qindex_add_event(ix, &row), QINDEX_OK);
	row.ts += S, row.device = "mobile";
	assert_int_equal(qindex_add_event(ix, &row), QINDEX_OK);
	row.ts += S, row.device = "tablet", row.session_id = NULL;
	assert_int_equal(qindex_add_event(ix, &row), QINDEX_OK);
	row.ts += S, row.device = "desktop", row.session_id = "s1";
	assert_int_equal(qindex_add_event(ix, &row), QINDEX_OK);
	row.ts = -1;
	assert_int_equal(qindex_add_event(ix, &row), QINDEX_OUT_OF_RANGE);
	for (int pass = 0; pass < 2; pass++) {
		scan = qindex_scan_new(ix, false, T0, T0 + H);
		assert_non_null(scan);
		assert_true(qindex_scan_next(scan, &ev, &n));
		assert_int_equal(n, 4);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(qindex_event_ts(&ev[i]), T0 + (int64_t)i * S);
			assert_string_equal(qindex_string(ix, qindex_event_dim(ix,
			    &ev[i], QINDEX_DIM_DEVICE)), want[i]);
			if (i == 2) {
				assert_null(qindex_event_session(ix, &ev[i]));
			} else {
				assert_string_equal(qindex_event_session(ix, &ev[i]),
				    "s1");
				assert_string_equal(qindex_string(ix, qindex_event_dim(
				    ix, &ev[i], QINDEX_DIM_CHANNEL)), "Email");
			}
		}
		assert_false(qindex_scan_next(scan, &ev, &n));
		qindex_scan_free(scan);
		assert_int_equal(qindex_compact(ix), QINDEX_OK);
	}
	scan = qindex_scan_new(ix, true, T0, T0 + H);
	assert_non_null(scan);
	while (qindex_scan_next(scan, &ev, &n)) {
		assert_int_equal(n, 3);	/* the visit's, not the one without */
		units++;
	}
	assert_int_equal(units, 1);
	qindex_scan_free(scan);
	qindex_free(ix);
}

/* Enough people for two threads, each half different:
 * person i views; a third of them (i % 3 == 0) add to cart i minutes
 * later, so the medians come from both halves. */
static void
test_funnel_threads(void **state)
{
	struct qindex *ix = qindex_new(&budget);
	struct funnel_counts c;
	struct qfunnel_spec spec = { 0 };
	struct milestones_counts m;
	const char *names[] = { "cart_added", "product_viewed" };
	const long people = 90000;
	long carts = 0;
	char sid[32];

	(void)state;
	for (long i = 0; i < people; i++) {
		snprintf(sid, sizeof(sid), "s%ld", i);
		visit(ix, sid, i, T0, i < people / 2 ? "Email" : "Direct", NULL);
		event(ix, i, T0, "product_viewed", sid);
		if (i % 3 == 0) {
			event(ix, i, T0 + i * 60 * S, "cart_added", sid);
			carts++;
		}
	}
	assert_int_equal(qindex_compact(ix), QINDEX_OK);
	spec.window_us = 400 * DAY;
	funnel(ix, &spec, people, carts, 0, &c);
	/* Minutes 0, 3, ..., 89997: the median is minute 44998.5, the mean
	 * of minutes 44997 and 45000 at their 15000th and 15001st places. */
	assert_true(c.overall.seconds[1][QFUNNEL_MEDIAN_PREV] ==
	    (44997.0 + 45000.0) / 2 * 60);
	funnel_counts_finish(&c);
	spec = (struct qfunnel_spec){ .window_us = 400 * DAY,
		.breakdown = { .dim = FUNNEL_DIM_CHANNEL } };
	funnel(ix, &spec, people, carts, 0, &c);
	assert_int_equal(c.n_groups, 2);
	for (size_t g = 0; g < c.n_groups; g++) {
		assert_int_equal(c.groups[g].entered[0], people / 2);
	}
	funnel_counts_finish(&c);
	/* By day over the first two: everyone viewed on day 1, and the carts
	 * of minutes up to 1439 were on day 1 (480 of them: 0, 3, ..., 1437),
	 * the next 480 on day 2. */
	assert_true(milestones_counts_init(&m, QPERIOD_DAY, 2, T0, T0 + 2 * DAY,
	    T0 + 10 * DAY));
	assert_true(qmilestones_run(ix, names, T0, T0 + 2 * DAY, &m));
	assert_int_equal(m.people[0], 480);
	assert_int_equal(m.people[1], 480);
	assert_int_equal(m.events[2], people);
	assert_int_equal(m.people[3], 0);
	assert_int_equal(m.active[0], people);
	assert_int_equal(m.active[1], 480);
	milestones_counts_finish(&m);
	qindex_free(ix);
}

static void
test_budget(void **state)
{
	struct qindex_budget small = { 0, 4096 };
	struct qindex *ix = qindex_new(&small);
	enum qindex_status st = QINDEX_OK;
	char id[32];

	(void)state;
	assert_non_null(ix);
	for (int i = 0; i < 10000 && st == QINDEX_OK; i++) {
		snprintf(id, sizeof(id), "visit-%d", i);
		struct qindex_event_row row = { i, T0, "product_viewed",
			"milestone", id, NULL, NULL, NULL, false, 0, NULL };
		st = qindex_add_event(ix, &row);
	}
	assert_int_equal(st, QINDEX_FULL);
	assert_true(small.used <= small.max);
	qindex_free(ix);
	assert_int_equal(small.used, 0);
}

static int
compare_i64(const void *pa, const void *pb)
{
	int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;

	return (a > b) - (a < b);
}

static void
test_percentile(void **state)
{
	int64_t v[] = { 8 * S, 1 * S, 4 * S, 2 * S }, one[] = { 5 * S };
	int64_t a[64], sorted[64];
	unsigned seed = 7;

	(void)state;
	/* p·(n−1) = 1.5: halfway from 2 to 4; 2.7: 4 + 0.7 · 4. */
	assert_true(stats_percentile_cont_us(v, 4, 0.5) == 3.0);
	assert_true(fabs(stats_percentile_cont_us(v, 4, 0.9) - 6.8) < 1e-12);
	assert_true(stats_percentile_cont_us(one, 1, 0.9) == 5.0);
	/* The selection against a sort, on arrays with many equal values. */
	for (int trial = 0; trial < 500; trial++) {
		size_t n = 1 + (size_t)trial % 64;
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			a[i] = (int64_t)(seed >> 16) % 9 * S + (trial % 3 ? 0 : (int64_t)i);
			sorted[i] = a[i];
		}
		qsort(sorted, n, sizeof(*sorted), compare_i64);
		/* The median as attribution's facts had it: of the sorted
		 * values divided, the middle one or the two's mean. */
		int64_t copy[64];
		memcpy(copy, a, n * sizeof(*a));
		double mid = n % 2 ? (double)sorted[n / 2] / 1e6 :
		    ((double)sorted[n / 2 - 1] / 1e6 +
		    (double)sorted[n / 2] / 1e6) / 2;
		if (stats_median_scaled(copy, n, 1e6) != mid) {
			fail_msg("trial %d: median %.17g, want %.17g", trial,
			    stats_median_scaled(copy, n, 1e6), mid);
		}
		/* Both at once, the second selection over what the first left
		 * above it. */
		double both[2], pct[2] = { 0.5, 0.9 };
		memcpy(copy, a, n * sizeof(*a));
		stats_percentiles_cont_us(copy, n, pct, 2, both);
		for (int k = 0; k < 2; k++) {
			double p = pct[k], row = p * (double)(n - 1);
			double lo = (double)sorted[(size_t)floor(row)] / 1e6;
			double hi = (double)sorted[(size_t)ceil(row)] / 1e6;
			double want = ceil(row) > floor(row) ?
			    lo + (row - floor(row)) * (hi - lo) : lo;
			double got = stats_percentile_cont_us(a, n, p);
			if (got != want || both[k] != want) {
				fail_msg("trial %d, p %.1f: %.17g, want %.17g", trial, p,
				    got, want);
			}
		}
	}
}

static void
test_milestones(void **state)
{
	struct qindex *ix = shop();
	struct milestones_counts c;
	struct milestones_target t = { 0 };
	const char *names[] = { "cart_added", "product_viewed" };
	long people[2] = { 0 };

	(void)state;
	assert_int_equal(qperiod_start(QPERIOD_WEEK, T0 + 3 * DAY + 5), T0);
	assert_int_equal(qperiod_next(QPERIOD_DAY, T0), T0 + DAY);
	assert_true(milestones_counts_init(&c, QPERIOD_DAY, 2, T0, T0 + 2 * DAY,
	    T0 + DAY + H));
	assert_int_equal(c.n_periods, 2);
	assert_true(c.complete[0]);
	assert_false(c.complete[1]);	/* not over at now */
	assert_true(qmilestones_run(ix, names, T0, T0 + 2 * DAY, &c));
	/* Day 1: carts of 1, 2, 4, 5; views of 1, 2, 3, 5. Day 2: 3's cart. */
	assert_int_equal(c.people[0], 4);
	assert_int_equal(c.events[0], 4);
	assert_int_equal(c.people[2], 4);
	assert_int_equal(c.people[1], 1);
	assert_int_equal(c.active[0], 5);
	assert_int_equal(c.active[1], 1);
	milestones_counts_finish(&c);
	t.people = people;
	milestones_target_window(QPERIOD_DAY, T0 + DAY + H, T0 + 5 * DAY,
	    &t.start, &t.end);
	assert_int_equal(t.start, T0);
	assert_int_equal(t.end, T0 + DAY);
	assert_true(qmilestones_target(ix, names, 2, &t));
	assert_int_equal(t.active, 5);
	assert_int_equal(people[0], 4);
	qindex_free(ix);
}

static void
test_signals(void **state)
{
	struct qindex *ix = shop();
	struct signals_counts c;
	const char *actions[] = { "cart_added" };

	(void)state;
	assert_true(qsignals_run(ix, actions, 1, "purchase_completed", T0 - H,
	    T0 + 3 * H, DAY, &c));
	/* Everyone is active; 1 and 2 purchased within a day of their
	 * first event. Cart adders before to: 1, 2, 4, 5; only 1 purchased
	 * after the cart (2's cart came after its purchase), an hour on. */
	assert_int_equal(c.people, 5);
	assert_int_equal(c.converted, 2);
	assert_int_equal(c.actions[0].people, 4);
	assert_int_equal(c.actions[0].converted, 1);
	assert_int_equal(c.actions[0].converted_first, 2);
	assert_true(c.actions[0].median_seconds == 3600);
	signals_counts_finish(&c);
	qindex_free(ix);
}

static void
test_attribution_gather(void **state)
{
	struct qindex *ix = shop();
	struct attr_data d;
	struct qattr_spec spec = { "purchase_completed", T0, T0 + DAY, H,
		QATTR_DIM_SOURCE_MEDIUM, true };

	(void)state;
	assert_true(qattr_supported(ix, "purchase_completed", false));
	assert_false(qattr_supported(ix, "cart_added", false));
	assert_false(qattr_supported(ix, "purchase_completed", true));
	attr_data_init(&d);
	/* In attr_data_sort's order already, a person being their slot. */
	assert_true(qattr_gather(ix, &spec, &d));
	assert_int_equal(d.n_convs, 2);
	assert_true(d.convs[0].person < d.convs[1].person);
	assert_int_equal(qindex_person_id(ix, (uint32_t)d.convs[0].person), 1);
	assert_true(d.convs[0].revenue == 20.0);
	/* Each converter's one visit, as source / medium. */
	assert_int_equal(d.n_visits, 2);
	assert_true(d.visits[0].person == d.convs[0].person &&
	    d.visits[1].person == d.convs[1].person);
	assert_string_equal(d.names[d.visits[0].value], "news / email");
	/* The others' visits (3, 4, 5), one each: a path of one visit,
	 * three times. */
	assert_int_equal(d.n_steps, 1);
	assert_true(d.steps[0].from == ATTR_START && d.steps[0].last &&
	    d.steps[0].count == 3);
	attr_data_finish(&d);
	qindex_free(ix);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_funnel_orders),
		cmocka_unit_test(test_funnel_groups),
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_sessions_across_people),
		cmocka_unit_test(test_event_links),
		cmocka_unit_test(test_funnel_threads),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_percentile),
		cmocka_unit_test(test_milestones),
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_attribution_gather),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
