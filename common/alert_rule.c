/* alert_rule.c - reading, checking and writing alert rules. */
#include "common/alert_rule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/timeutil.h"

#define DAY_US (86400 * TIMEUTIL_US_PER_SEC)
#define WINDOW_MAX_US (180 * DAY_US)
#define WINDOW_DEFAULT "1d"
#define MIN_VOLUME_MAX 1000000000L

static const char *const metric_names[ALERT_METRIC_COUNT_] = {
	"conversion_rate", "count", "funnel_completion",
};
static const char *const period_names[ALERT_PERIOD_COUNT_] = {
	"hour", "day", "week",
};
static const char *const condition_names[ALERT_CONDITION_COUNT_] = {
	"threshold", "stall", "anomaly", "target_pace",
};
static const char *const severity_names[ALERT_SEVERITY_COUNT_] = {
	"info", "warning", "critical",
};

const char *
alert_metric_name(enum alert_metric m)
{
	return (unsigned)m < ALERT_METRIC_COUNT_ ? metric_names[m] : "";
}

const char *
alert_period_name(enum alert_period p)
{
	return (unsigned)p < ALERT_PERIOD_COUNT_ ? period_names[p] : "";
}

const char *
alert_condition_name(enum alert_condition c)
{
	return (unsigned)c < ALERT_CONDITION_COUNT_ ? condition_names[c] : "";
}

const char *
alert_severity_name(enum alert_severity s)
{
	return (unsigned)s < ALERT_SEVERITY_COUNT_ ? severity_names[s] : "";
}

/* ------------------------------------------------------------ reading */

/* Every object of a rule names the fields it may have; anything else is
 * a mistake worth saying (a misspelt "bellow" must not pass silently). */
static bool
only_fields(const json_t *obj, const char *const *allowed, const char *path,
    struct error *err)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		bool known = false;
		for (size_t i = 0; allowed[i] != NULL; i++) {
			known = known || strcmp(allowed[i], key) == 0;
		}
		if (!known) {
			/* jansson keys are UTF-8; a long one is cut (and a
			 * character cut in two is written as U+FFFD). */
			char names[160] = "";
			size_t used = 0;
			for (size_t i = 0; allowed[i] != NULL &&
			    used < sizeof(names); i++) {
				int n = snprintf(names + used, sizeof(names) - used,
				    "%s%s", i > 0 ? ", " : "", allowed[i]);
				used += n > 0 ? (size_t)n : 0;
			}
			error_set(err, ERR_INVALID_RULE, "%s has no field "
			    "'%.64s' (its fields: %s)", path, key, names);
			return false;
		}
	}
	return true;
}

/* A string field: into out (size bytes) when present; false if it is
 * missing and required, not a string, empty, too long or holds control
 * characters. */
static bool
text_field(const json_t *obj, const char *key, const char *path,
    bool required, char *out, size_t size, struct error *err)
{
	const json_t *v = json_object_get(obj, key);
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);

	if (v == NULL && !required) {
		return true;
	}
	if (s == NULL || len == 0 || len >= size || strlen(s) != len) {
		error_set(err, ERR_INVALID_RULE, "%s.%s must be a string of 1 to "
		    "%zu bytes", path, key, size - 1);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			error_set(err, ERR_INVALID_RULE, "%s.%s holds a control "
			    "character", path, key);
			return false;
		}
	}
	memcpy(out, s, len + 1);
	return true;
}

/* One of names[0..n) by its text; d when absent. */
static bool
choice_field(const json_t *obj, const char *key, const char *path,
    const char *const *names, int n, int d, int *out, enum err_code code,
    struct error *err)
{
	const json_t *v = json_object_get(obj, key);
	const char *s = json_string_value(v);

	*out = d;
	if (v == NULL && d >= 0) {
		return true;
	}
	for (int i = 0; s != NULL && i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return true;
		}
	}
	error_set(err, code, "%s.%s must be one of %s%s%s%s%s%s%s", path, key,
	    names[0], n > 1 ? ", " : "", n > 1 ? names[1] : "",
	    n > 2 ? ", " : "", n > 2 ? names[2] : "", n > 3 ? ", " : "",
	    n > 3 ? names[3] : "");
	return false;
}

/* A number field within [lo, hi] (open ends where said), d when absent
 * and d is not NaN. */
static bool
number_field(const json_t *obj, const char *key, const char *path,
    double lo, bool lo_open, double hi, bool hi_open, double d, double *out,
    struct error *err)
{
	const json_t *v = json_object_get(obj, key);
	double x;

	if (v == NULL && !isnan(d)) {
		*out = d;
		return true;
	}
	x = json_number_value(v);
	if (!json_is_number(v) || !isfinite(x) || (lo_open ? x <= lo : x < lo) ||
	    (hi_open ? x >= hi : x > hi)) {
		error_set(err, ERR_INVALID_RULE, "%s.%s must be a number %s %g and "
		    "%s %g", path, key, lo_open ? "above" : "from", lo,
		    hi_open ? "below" : "to", hi);
		return false;
	}
	*out = x;
	return true;
}

static bool
integer_field(const json_t *obj, const char *key, const char *path, long lo,
    long hi, long d, long *out, struct error *err)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL) {
		*out = d;
		return true;
	}
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi) {
		error_set(err, ERR_INVALID_RULE, "%s.%s must be an integer from "
		    "%ld to %ld", path, key, lo, hi);
		return false;
	}
	*out = (long)json_integer_value(v);
	return true;
}

/* An event of the plan, into out. */
static bool
event_name(const json_t *v, const struct plan *plan, const char *path,
    char out[EVENT_NAME_MAX + 1], struct error *err)
{
	const char *s = json_string_value(v);

	if (s == NULL || !funnel_name_valid(s)) {
		error_set(err, ERR_INVALID_RULE, "%s must be an event name", path);
		return false;
	}
	if (plan_find_event(plan, s) == NULL) {
		error_set(err, ERR_RULE_UNKNOWN_EVENT, "%s: the tracking plan has "
		    "no event %s", path, s);
		return false;
	}
	snprintf(out, EVENT_NAME_MAX + 1, "%s", s);
	return true;
}

static bool
window_field(const json_t *metric, struct alert_rule *r, struct error *err)
{
	const json_t *v = json_object_get(metric, "window");
	const char *s = v != NULL ? json_string_value(v) : WINDOW_DEFAULT;

	if (s == NULL || strlen(s) >= sizeof(r->window_text) ||
	    !timeutil_parse_duration(s, WINDOW_MAX_US, &r->window_us)) {
		error_set(err, ERR_INVALID_RULE, "$.metric.window must be a number "
		    "of days or hours (1d, 12h), at most 180d");
		return false;
	}
	snprintf(r->window_text, sizeof(r->window_text), "%s", s);
	return true;
}

static bool
read_metric(const json_t *m, const struct plan *plan, struct alert_rule *r,
    struct error *err)
{
	static const char *const fields[] = { "type", "from", "to", "event",
		"unit", "steps", "window", NULL };
	static const char *const units[] = { "events", "people" };
	int type, unit;
	const json_t *steps;
	char path[48];

	if (!json_is_object(m)) {
		error_set(err, ERR_INVALID_RULE, "$.metric must be an object");
		return false;
	}
	if (!only_fields(m, fields, "$.metric", err) ||
	    !choice_field(m, "type", "$.metric", metric_names,
	    ALERT_METRIC_COUNT_, -1, &type, ERR_INVALID_RULE, err)) {
		return false;
	}
	r->metric = (enum alert_metric)type;
	switch (r->metric) {
	case ALERT_METRIC_CONVERSION_RATE:
		r->n_events = 2;
		return event_name(json_object_get(m, "from"), plan,
		    "$.metric.from", r->events[0], err) &&
		    event_name(json_object_get(m, "to"), plan, "$.metric.to",
		    r->events[1], err) && window_field(m, r, err);
	case ALERT_METRIC_COUNT:
		r->n_events = 1;
		if (!choice_field(m, "unit", "$.metric", units, 2, 0, &unit,
		    ERR_INVALID_RULE, err)) {
			return false;
		}
		r->people = unit == 1;
		return event_name(json_object_get(m, "event"), plan,
		    "$.metric.event", r->events[0], err);
	default:
		steps = json_object_get(m, "steps");	/* null: the plan's */
		if (steps != NULL && !json_is_null(steps) &&
		    (!json_is_array(steps) ||
		    json_array_size(steps) < FUNNEL_STEPS_MIN ||
		    json_array_size(steps) > FUNNEL_STEPS_MAX)) {
			error_set(err, ERR_INVALID_RULE, "$.metric.steps must be a "
			    "list of %d to %d events", FUNNEL_STEPS_MIN,
			    FUNNEL_STEPS_MAX);
			return false;
		}
		for (size_t i = 0; i < json_array_size(steps); i++) {
			snprintf(path, sizeof(path), "$.metric.steps[%zu]", i);
			if (!event_name(json_array_get(steps, i), plan, path,
			    r->events[i], err)) {
				return false;
			}
		}
		r->n_events = json_array_size(steps);
		if (r->n_events == 0) {
			/* The plan's funnel, which must be one. */
			struct plan_funnel_step plan_steps[FUNNEL_STEPS_MAX];
			size_t n = plan_funnel(plan, plan_steps,
			    FUNNEL_STEPS_MAX);
			if (n < FUNNEL_STEPS_MIN || n > FUNNEL_STEPS_MAX) {
				error_set(err, ERR_INVALID_RULE, "$.metric.steps: "
				    "the plan has no funnel of %d to %d steps; name "
				    "them", FUNNEL_STEPS_MIN, FUNNEL_STEPS_MAX);
				return false;
			}
		}
		return window_field(m, r, err);
	}
}

static bool
read_filter(const json_t *f, struct alert_rule *r, struct error *err)
{
	const char *key;
	json_t *v;

	if (f == NULL) {
		return true;
	}
	if (!json_is_object(f) || json_object_size(f) > ALERT_FILTERS_MAX) {
		error_set(err, ERR_INVALID_RULE, "$.filter must be an object of "
		    "at most %d dimension: value pairs", ALERT_FILTERS_MAX);
		return false;
	}
	json_object_foreach((json_t *)f, key, v) {
		struct funnel_dim_ref *d = &r->filters[r->n_filters];
		if (!funnel_dim_parse(key, strlen(key), d)) {
			error_set(err, ERR_INVALID_RULE, "$.filter: a dimension is "
			    FUNNEL_DIM_CHOICES);
			return false;
		}
		if (!text_field(f, key, "$.filter", true, d->value,
		    sizeof(d->value), err)) {
			return false;
		}
		r->n_filters++;
	}
	return true;
}

static bool
read_notify(const json_t *n, struct alert_rule *r, struct error *err)
{
	if (n == NULL) {
		return true;
	}
	if (!json_is_array(n) || json_array_size(n) > ALERT_NOTIFY_MAX) {
		error_set(err, ERR_INVALID_RULE, "$.notify must be a list of at "
		    "most %d webhook URLs", ALERT_NOTIFY_MAX);
		return false;
	}
	for (size_t i = 0; i < json_array_size(n); i++) {
		const char *s = json_string_value(json_array_get(n, i));
		size_t len = s != NULL ? strlen(s) : 0;

		if (s == NULL || len > ALERT_URL_MAX ||
		    (strncmp(s, "https://", 8) != 0 &&
		    strncmp(s, "http://", 7) != 0) ||
		    len <= (size_t)(s[4] == 's' ? 8 : 7) ||
		    strcspn(s, " \t\r\n\"<>\\^`{|}") != len) {
			error_set(err, ERR_INVALID_RULE, "$.notify[%zu] must be an "
			    "http or https URL of at most %d bytes", i,
			    ALERT_URL_MAX);
			return false;
		}
		for (size_t j = 0; j < len; j++) {
			if ((unsigned char)s[j] < 0x21 || (unsigned char)s[j] > 0x7e) {
				error_set(err, ERR_INVALID_RULE, "$.notify[%zu] must "
				    "be an http or https URL (ASCII, no spaces)", i);
				return false;
			}
		}
		memcpy(r->notify[r->n_notify++], s, len + 1);
	}
	return true;
}

/* A threshold that could never fire, or would always: rates live in
 * [0, 1], counts in [0, inf). */
static bool
check_bounds(struct alert_rule *r, struct error *err)
{
	bool rate = r->metric != ALERT_METRIC_COUNT;
	double top = rate ? 1 : INFINITY;

	if (!r->has_below && !r->has_above) {
		error_set(err, ERR_INVALID_RULE, "$.condition needs below, above "
		    "or both");
		return false;
	}
	if (r->has_below && r->below <= 0) {
		error_set(err, ERR_IMPOSSIBLE_BOUND, "$.condition.below: a %s is "
		    "never below %g, so the rule could never fire",
		    rate ? "rate" : "count", r->below);
		return false;
	}
	if (r->has_below && r->below > top) {
		error_set(err, ERR_IMPOSSIBLE_BOUND, "$.condition.below: a rate "
		    "is at most 1, so it is always below %g and the rule would "
		    "always fire (a rate of 30%% is 0.3)", r->below);
		return false;
	}
	if (r->has_above && r->above < 0) {
		error_set(err, ERR_IMPOSSIBLE_BOUND, "$.condition.above: a %s is "
		    "never below 0, so it is always above %g and the rule would "
		    "always fire", rate ? "rate" : "count", r->above);
		return false;
	}
	if (r->has_above && r->above >= top) {
		error_set(err, ERR_IMPOSSIBLE_BOUND, "$.condition.above: a rate "
		    "is at most 1, so it is never above %g and the rule could "
		    "never fire (a rate of 30%% is 0.3)", r->above);
		return false;
	}
	if (r->has_below && r->has_above && r->below > r->above) {
		error_set(err, ERR_IMPOSSIBLE_BOUND, "$.condition: below %g is "
		    "above above %g, so every value would fire", r->below,
		    r->above);
		return false;
	}
	return true;
}

static bool
read_condition(const json_t *c, const struct plan *plan,
    struct alert_rule *r, struct error *err)
{
	static const char *const fields[] = { "kind", "below", "above",
		"below_percent", "behind_percent", "trailing", "k", "run", NULL };
	const json_t *target;
	int kind;

	if (!json_is_object(c)) {
		error_set(err, ERR_INVALID_RULE, "$.condition must be an object");
		return false;
	}
	if (!only_fields(c, fields, "$.condition", err) ||
	    !choice_field(c, "kind", "$.condition", condition_names,
	    ALERT_CONDITION_COUNT_, -1, &kind, ERR_INVALID_RULE, err)) {
		return false;
	}
	r->condition = (enum alert_condition)kind;
	switch (r->condition) {
	case ALERT_CONDITION_THRESHOLD:
		r->has_below = json_object_get(c, "below") != NULL;
		r->has_above = json_object_get(c, "above") != NULL;
		return (!r->has_below || number_field(c, "below", "$.condition",
		    -INFINITY, true, INFINITY, true, NAN, &r->below, err)) &&
		    (!r->has_above || number_field(c, "above", "$.condition",
		    -INFINITY, true, INFINITY, true, NAN, &r->above, err)) &&
		    check_bounds(r, err);
	case ALERT_CONDITION_STALL:
		return number_field(c, "below_percent", "$.condition", 0, true,
		    100, true, NAN, &r->percent, err) &&
		    integer_field(c, "trailing", "$.condition", 2,
		    ALERT_TRAILING_MAX, 4, &r->trailing, err);
	case ALERT_CONDITION_ANOMALY:
		return integer_field(c, "trailing", "$.condition", 8,
		    ALERT_TRAILING_MAX, 20, &r->trailing, err) &&
		    number_field(c, "k", "$.condition", 0, true, 10, false, 3,
		    &r->k, err) &&
		    integer_field(c, "run", "$.condition", 2, r->trailing, 8,
		    &r->run, err);
	default:
		if (r->metric != ALERT_METRIC_COUNT) {
			error_set(err, ERR_INVALID_RULE, "$.condition: target_pace "
			    "follows a milestone: the metric must be the count of "
			    "an event with a target in the plan");
			return false;
		}
		if (r->n_filters > 0) {
			error_set(err, ERR_INVALID_RULE, "$.filter: target_pace "
			    "follows the plan's target, for everyone: no filter");
			return false;
		}
		target = json_object_get(json_object_get(json_object_get(
		    plan_document(plan), "events"), r->events[0]), "target");
		if (!json_is_number(json_object_get(target, "target"))) {
			error_set(err, ERR_INVALID_RULE, "$.condition: the plan "
			    "sets no target for %s", r->events[0]);
			return false;
		}
		return number_field(c, "behind_percent", "$.condition", 0, false,
		    100, true, NAN, &r->percent, err);
	}
}

bool
alert_rule_parse(const json_t *doc, const struct plan *plan, long min_volume,
    struct alert_rule *out, struct error *err)
{
	static const char *const fields[] = { "name", "owner", "metric",
		"filter", "period", "min_volume", "severity", "guardrail",
		"notify", "condition", NULL };
	const json_t *guardrail = json_object_get(doc, "guardrail");
	int period, severity;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(doc)) {
		error_set(err, ERR_INVALID_RULE, "a rule must be a JSON object");
		return false;
	}
	if (!only_fields(doc, fields, "$", err) ||
	    !text_field(doc, "name", "$", true, out->name, sizeof(out->name),
	    err) ||
	    !text_field(doc, "owner", "$", true, out->owner, sizeof(out->owner),
	    err) ||
	    !read_metric(json_object_get(doc, "metric"), plan, out, err) ||
	    !read_filter(json_object_get(doc, "filter"), out, err) ||
	    !choice_field(doc, "period", "$", period_names, ALERT_PERIOD_COUNT_,
	    ALERT_PERIOD_DAY, &period, ERR_INVALID_PERIOD, err) ||
	    /* It guards a rate's denominator; a count's collapse is what
	     * its rules are for (alert_eval.h). */
	    !integer_field(doc, "min_volume", "$", 0, MIN_VOLUME_MAX,
	    out->metric == ALERT_METRIC_COUNT ? 0 : min_volume,
	    &out->min_volume, err) ||
	    !choice_field(doc, "severity", "$", severity_names,
	    ALERT_SEVERITY_COUNT_, ALERT_SEVERITY_WARNING, &severity,
	    ERR_INVALID_RULE, err) ||
	    !read_notify(json_object_get(doc, "notify"), out, err)) {
		return false;
	}
	out->period = (enum alert_period)period;
	out->severity = (enum alert_severity)severity;
	/* Filters are on people: the funnel statement applies them, the
	 * milestones one (events, targets) has none. */
	if (out->n_filters > 0 && out->metric == ALERT_METRIC_COUNT &&
	    !out->people) {
		error_set(err, ERR_INVALID_RULE, "$.filter: a count of events "
		    "takes no filter; count people (\"unit\": \"people\")");
		return false;
	}
	if (guardrail != NULL && !json_is_boolean(guardrail)) {
		error_set(err, ERR_INVALID_RULE, "$.guardrail must be true or "
		    "false");
		return false;
	}
	out->guardrail = json_is_true(guardrail);
	return read_condition(json_object_get(doc, "condition"), plan, out, err);
}

/* ------------------------------------------------------------ writing */

static json_t *
metric_json(const struct alert_rule *r)
{
	json_t *m = json_pack("{s:s}", "type", metric_names[r->metric]);
	json_t *steps;

	switch (r->metric) {
	case ALERT_METRIC_CONVERSION_RATE:
		json_object_set_new(m, "from", json_string(r->events[0]));
		json_object_set_new(m, "to", json_string(r->events[1]));
		json_object_set_new(m, "window", json_string(r->window_text));
		break;
	case ALERT_METRIC_COUNT:
		json_object_set_new(m, "event", json_string(r->events[0]));
		json_object_set_new(m, "unit", json_string(r->people ? "people" :
		    "events"));
		break;
	default:
		steps = json_array();
		for (size_t i = 0; i < r->n_events; i++) {
			json_array_append_new(steps, json_string(r->events[i]));
		}
		/* No steps: the plan's funnel, whatever it is then. */
		if (r->n_events == 0) {
			json_decref(steps);
			steps = json_null();
		}
		json_object_set_new(m, "steps", steps);
		json_object_set_new(m, "window", json_string(r->window_text));
	}
	return m;
}

static json_t *
condition_json(const struct alert_rule *r)
{
	json_t *c = json_pack("{s:s}", "kind", condition_names[r->condition]);

	switch (r->condition) {
	case ALERT_CONDITION_THRESHOLD:
		if (r->has_below) {
			json_object_set_new(c, "below", json_real(r->below));
		}
		if (r->has_above) {
			json_object_set_new(c, "above", json_real(r->above));
		}
		break;
	case ALERT_CONDITION_STALL:
		json_object_set_new(c, "below_percent", json_real(r->percent));
		json_object_set_new(c, "trailing", json_integer(r->trailing));
		break;
	case ALERT_CONDITION_ANOMALY:
		json_object_set_new(c, "trailing", json_integer(r->trailing));
		json_object_set_new(c, "k", json_real(r->k));
		json_object_set_new(c, "run", json_integer(r->run));
		break;
	default:
		json_object_set_new(c, "behind_percent", json_real(r->percent));
	}
	return c;
}

json_t *
alert_rule_json(const struct alert_rule *r)
{
	json_t *filter = json_object(), *notify = json_array();
	char key[FUNNEL_KEY_MAX + 8];

	for (size_t i = 0; filter != NULL && i < r->n_filters; i++) {
		snprintf(key, sizeof(key), "%s%s",
		    funnel_dim_name(r->filters[i].dim), r->filters[i].key);
		json_object_set_new(filter, key, json_string(r->filters[i].value));
	}
	for (size_t i = 0; notify != NULL && i < r->n_notify; i++) {
		json_array_append_new(notify, json_string(r->notify[i]));
	}
	return json_pack("{s:s, s:s, s:o, s:o, s:s, s:I, s:s, s:b, s:o, s:o}",
	    "name", r->name, "owner", r->owner, "metric", metric_json(r),
	    "filter", filter, "period", period_names[r->period],
	    "min_volume", (json_int_t)r->min_volume,
	    "severity", severity_names[r->severity], "guardrail", r->guardrail,
	    "notify", notify, "condition", condition_json(r));
}

/* ------------------------------------------------------- configuration */

/* The site a configured rule names, checked against the sites. */
static bool
config_rule_site(const struct config *cfg, const json_t *v, size_t i,
    char out[64], struct error *err)
{
	const char *site = json_string_value(v);

	if (v == NULL && cfg->n_sites == 1) {
		site = cfg->sites[0].id;
	}
	for (size_t k = 0; site != NULL && k < cfg->n_sites; k++) {
		if (strcmp(cfg->sites[k].id, site) == 0) {
			snprintf(out, 64, "%s", site);
			return true;
		}
	}
	error_set(err, ERR_CONFIG, "alerts[%zu]: \"site\" must name a "
	    "configured site%s", i, cfg->n_sites == 1 ? "" :
	    " (needed with several sites)");
	return false;
}

bool
alert_rules_from_config(const struct config *cfg, const struct plan *plan,
    struct alert_config_rule **out, size_t *n, struct error *err)
{
	json_t *list = json_loads(cfg->alerts != NULL ? cfg->alerts : "[]",
	    JSON_REJECT_DUPLICATES, NULL);
	struct alert_config_rule *rules = NULL;
	struct error why = { 0 };
	bool ok = false;

	*out = NULL;
	*n = 0;
	if (!json_is_array(list)) {
		error_set(err, ERR_CONFIG, "alerts must be an array of rules");
		goto done;
	}
	rules = calloc(json_array_size(list) + 1, sizeof(*rules));
	if (rules == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *doc = json_deep_copy(json_array_get(list, i));
		bool fine = json_is_object(doc) &&
		    config_rule_site(cfg, json_object_get(doc, "site"), i,
		    rules[i].site, err);

		if (fine) {
			json_object_del(doc, "site");
			fine = alert_rule_parse(doc, plan, cfg->min_volume,
			    &rules[i].rule, &why);
			if (!fine) {
				error_set(err, ERR_CONFIG, "alerts[%zu]: %s: %s", i,
				    error_code_name(why.code), why.message);
			}
		} else if (!json_is_object(doc)) {
			error_set(err, ERR_CONFIG, "alerts[%zu] must be an object",
			    i);
		}
		json_decref(doc);
		for (size_t k = 0; fine && k < i; k++) {
			if (strcmp(rules[k].site, rules[i].site) == 0 &&
			    strcmp(rules[k].rule.name, rules[i].rule.name) == 0) {
				error_set(err, ERR_CONFIG, "alerts[%zu]: site %s "
				    "has another rule named %s", i, rules[i].site,
				    rules[i].rule.name);
				fine = false;
			}
		}
		if (!fine) {
			goto done;
		}
	}
	*n = json_array_size(list);
	*out = rules;
	rules = NULL;
	ok = true;
done:
	free(rules);
	json_decref(list);
	return ok;
}
