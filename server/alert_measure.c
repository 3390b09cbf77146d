/* alert_measure.c - a rule's metric per period, through the query API's
 * own statements: rates and people through funnel_count, events through
 * milestones_count, a target's pace through milestones_target_rate. */
#include "server/alert_measure.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "server/api_funnel.h"
#include "server/api_milestones.h"

#define HOUR_US (3600 * TIMEUTIL_US_PER_SEC)
#define DAY_US (24 * HOUR_US)
/* 1970-01-05, the first Monday after the epoch: weeks start on Mondays,
 * as PostgreSQL's date_trunc('week') has them. */
#define MONDAY_US (4 * DAY_US)

static const int64_t period_length[ALERT_PERIOD_COUNT_] = {
	HOUR_US, DAY_US, 7 * DAY_US,
};

/* The start of the period of length len (aligned at origin) holding t. */
static int64_t
floor_period(int64_t t, int64_t len, int64_t origin)
{
	int64_t k = (t - origin) / len;

	if ((t - origin) % len < 0) {
		k--;
	}
	return origin + k * len;
}

static bool
is_rate(const struct alert_rule *rule)
{
	return rule->metric != ALERT_METRIC_COUNT;
}

int64_t
alert_last_period_start(const struct alert_rule *rule, int64_t now_us)
{
	int64_t len = period_length[rule->period];
	int64_t wait = is_rate(rule) ? rule->window_us : 0;

	return floor_period(now_us - wait, len, rule->period ==
	    ALERT_PERIOD_WEEK ? MONDAY_US : 0) - len;
}

/* The rule's steps into spec: its own, else the plan's funnel. */
static void
spec_steps(const struct alert_rule *rule, const struct plan *plan,
    struct funnel_spec *spec)
{
	size_t n = rule->n_events;

	if (rule->metric == ALERT_METRIC_FUNNEL_COMPLETION && n == 0) {
		n = funnel_plan_steps(plan, spec->steps, FUNNEL_STEPS_MAX);
	} else {
		for (size_t i = 0; i < n && i < FUNNEL_STEPS_MAX; i++) {
			snprintf(spec->steps[i].name, sizeof(spec->steps[i].name),
			    "%s", rule->events[i]);
		}
	}
	spec->n_steps = n < FUNNEL_STEPS_MAX ? n : FUNNEL_STEPS_MAX;
}

/* Each period through the funnel: a rate is the last step's entrants
 * over the first's, a count of people the first's. */
static bool
measure_funnel(PGconn *pg, const struct query_index_read *r, const char *site,
    const struct alert_rule *rule,
    const struct plan *plan, struct alert_measurement *out,
    struct error *err)
{
	struct funnel_spec *spec = calloc(1, sizeof(*spec));
	long entered[FUNNEL_STEPS_MAX];
	bool ok = spec != NULL;

	if (!ok) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	spec_steps(rule, plan, spec);
	memcpy(spec->filters, rule->filters, rule->n_filters *
	    sizeof(*spec->filters));
	spec->n_filters = rule->n_filters;
	spec->window_us = rule->window_us;
	for (size_t i = 0; ok && i < out->n; i++) {
		spec->from_us = out->starts[i];
		spec->to_us = out->starts[i] + out->period_us;
		ok = funnel_count(pg, r, site, spec, entered, err);
		if (ok) {
			long first = entered[0], last = entered[spec->n_steps - 1];
			out->points[i] = (struct alert_point){
				!is_rate(rule) ? (double)first : first > 0 ?
				(double)last / (double)first : 0, first };
		}
	}
	free(spec);
	return ok;
}

/* A count of events, all periods in one statement; a period without any
 * counts 0. */
static bool
measure_events(PGconn *pg, const struct query_index_read *r, const char *site,
    const struct alert_rule *rule,
    struct alert_measurement *out, struct error *err)
{
	struct milestones_period got[1 + ALERT_TRAILING_MAX];
	size_t n_got;

	if (!milestones_count(pg, r, site, rule->events[0],
	    alert_period_name(rule->period), out->starts[0],
	    out->starts[out->n - 1] + out->period_us, got, out->n, &n_got,
	    err)) {
		return false;
	}
	for (size_t i = 0; i < out->n; i++) {
		out->points[i] = (struct alert_point){ 0, 0 };
		for (size_t j = 0; j < n_got; j++) {
			if (got[j].start_us == out->starts[i]) {
				out->points[i] = (struct alert_point){
					(double)got[j].events, got[j].events };
			}
		}
	}
	return true;
}

bool
alert_measure(PGconn *pg, const struct query_index_read *r, const char *site,
    const struct alert_rule *rule,
    const struct plan *plan, int64_t now_us, struct alert_measurement *out,
    struct error *err)
{
	int64_t last = alert_last_period_start(rule, now_us);
	const json_t *target;
	const char *period;
	double rate;
	long people;

	memset(out, 0, sizeof(*out));
	out->n = alert_points_needed(rule);
	out->period_us = period_length[rule->period];
	out->target = NAN;
	for (size_t i = 0; i < out->n; i++) {
		out->starts[i] = last - (int64_t)(out->n - 1 - i) * out->period_us;
	}
	if (rule->condition == ALERT_CONDITION_TARGET_PACE) {
		/* The rate over the target's own period, as the milestones
		 * endpoint reports it. */
		target = json_object_get(json_object_get(json_object_get(
		    plan_document(plan), "events"), rule->events[0]), "target");
		out->target = json_number_value(json_object_get(target,
		    "target"));
		period = json_string_value(json_object_get(target, "period"));
		if (!milestones_target_rate(pg, r, site, rule->events[0],
		    period != NULL ? period : alert_period_name(rule->period),
		    now_us, &rate, &people, err)) {
			return false;
		}
		out->points[0] = (struct alert_point){ rate, people };
		return true;
	}
	if (rule->metric == ALERT_METRIC_COUNT && !rule->people) {
		return measure_events(pg, r, site, rule, out, err);
	}
	return measure_funnel(pg, r, site, rule, plan, out, err);
}
