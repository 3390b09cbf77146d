/* alert_rule.h - an alert rule: what to measure (a conversion rate, a
 * count, a funnel's completion), per which period, and when to call its
 * owners (a threshold, a stall, an anomaly, a target's pace). Read from
 * JSON, checked against the tracking plan, written back as JSON with
 * every default spelled out. docs/alerts.md defines every field. No I/O. */
#ifndef MILEPOST_COMMON_ALERT_RULE_H
#define MILEPOST_COMMON_ALERT_RULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/event.h"
#include "common/funnel.h"
#include "common/plan.h"

#define ALERT_NAME_MAX 100
#define ALERT_OWNER_MAX 200
#define ALERT_NOTIFY_MAX 5
#define ALERT_URL_MAX 2048
#define ALERT_FILTERS_MAX FUNNEL_FILTERS_MAX
#define ALERT_TRAILING_MAX 104

enum alert_metric {
	ALERT_METRIC_CONVERSION_RATE,	/* events[0] -> events[1] */
	ALERT_METRIC_COUNT,		/* events[0] */
	ALERT_METRIC_FUNNEL_COMPLETION,	/* events[] (none: the plan's funnel) */
	ALERT_METRIC_COUNT_
};

enum alert_period {
	ALERT_PERIOD_HOUR,
	ALERT_PERIOD_DAY,
	ALERT_PERIOD_WEEK,
	ALERT_PERIOD_COUNT_
};

enum alert_condition {
	ALERT_CONDITION_THRESHOLD,
	ALERT_CONDITION_STALL,
	ALERT_CONDITION_ANOMALY,
	ALERT_CONDITION_TARGET_PACE,
	ALERT_CONDITION_COUNT_
};

enum alert_severity {
	ALERT_SEVERITY_INFO,
	ALERT_SEVERITY_WARNING,
	ALERT_SEVERITY_CRITICAL,
	ALERT_SEVERITY_COUNT_
};

struct alert_rule {
	char name[ALERT_NAME_MAX + 1];
	char owner[ALERT_OWNER_MAX + 1];
	enum alert_metric metric;
	char events[FUNNEL_STEPS_MAX][EVENT_NAME_MAX + 1];
	size_t n_events;
	bool people;		/* count: distinct people, not events */
	int64_t window_us;	/* conversion_rate, funnel_completion */
	char window_text[16];
	struct funnel_dim_ref filters[ALERT_FILTERS_MAX];
	size_t n_filters;
	enum alert_period period;
	long min_volume;
	enum alert_severity severity;
	bool guardrail;
	char notify[ALERT_NOTIFY_MAX][ALERT_URL_MAX + 1];
	size_t n_notify;
	enum alert_condition condition;
	bool has_below, has_above;	/* threshold */
	double below, above;
	double percent;		/* stall: below_percent; target_pace:
				 * behind_percent */
	long trailing;		/* stall, anomaly: periods */
	double k;		/* anomaly: sigmas */
	long run;		/* anomaly: periods on one side */
};

/* Reads doc into *out and checks it against plan; min_volume is the
 * default of the rule's min_volume. False with err set when it is not a
 * valid rule: ERR_INVALID_RULE (shape, types, a bad period: the message
 * names the field), ERR_RULE_UNKNOWN_EVENT (an event the plan lacks) or
 * ERR_IMPOSSIBLE_BOUND (a condition that could never fire, or always). */
bool alert_rule_parse(const json_t *doc, const struct plan *plan,
    long min_volume, struct alert_rule *out, struct error *err);

/* The rule as JSON, defaults written out. New reference, NULL when out
 * of memory. */
json_t *alert_rule_json(const struct alert_rule *rule);

const char *alert_metric_name(enum alert_metric m);
const char *alert_period_name(enum alert_period p);
const char *alert_condition_name(enum alert_condition c);
const char *alert_severity_name(enum alert_severity s);

/* A rule of the configuration's "alerts": the rule and its site. */
struct alert_config_rule {
	char site[64];
	struct alert_rule rule;
};

/* Reads the configuration's alerts (cfg->alerts: a JSON array of rules,
 * each with a "site", which may be left out when cfg has one site), each
 * checked against plan, into *out (n of them, freed by the caller). False
 * with err (ERR_CONFIG, naming the rule) at the first invalid one. */
struct config;
bool alert_rules_from_config(const struct config *cfg,
    const struct plan *plan, struct alert_config_rule **out, size_t *n,
    struct error *err);

#endif
