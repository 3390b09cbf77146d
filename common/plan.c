/* plan.c - loading, linting and enforcing the tracking plan.
 *
 * Loading is one pass that both lints and compiles: every check that
 * fails adds a problem with its JSON path and the walk goes on, so that
 * check-plan reports everything at once. A plan is only handed out when
 * no check failed, which lets the enforcing half trust it. */
#include "common/plan.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ere.h"
#include "common/privacy.h"
#include "common/timeutil.h"

enum prop_type {
	TYPE_STRING,
	TYPE_NUMBER,
	TYPE_INTEGER,
	TYPE_BOOLEAN,
	TYPE_DATETIME,
	TYPE_OBJECT,
	TYPE_ARRAY,
	TYPE_COUNT_
};

enum pii {
	PII_NONE,
	PII_HASH,
	PII_DROP,
};

enum unknown_events {
	UNKNOWN_REJECT,
	UNKNOWN_QUARANTINE,
	UNKNOWN_ACCEPT,
};

static const char *const type_names[] = {
	"string", "number", "integer", "boolean", "datetime", "object", "array",
};

static const char *const kind_names[] = {
	[PLAN_KIND_MACRO] = "macro", [PLAN_KIND_MILESTONE] = "milestone",
	[PLAN_KIND_SECONDARY] = "secondary", [PLAN_KIND_PAGE] = "page",
};

static const char *const unknown_names[] = { "reject", "quarantine",
	"accept" };
static const char *const pii_names[] = { "hash", "drop" };
static const char *const additional_names[] = { "allow", "reject" };
static const char *const period_names[] = { "day", "week", "month" };

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

struct plan_prop {
	const char *name;
	enum prop_type type;
	bool required;
	const json_t *enum_values;	/* NULL: any value */
	bool has_pattern;
	regex_t pattern;
	bool has_min, has_max;
	double min, max;
	long max_length;		/* 0: no limit */
	enum pii pii;
};

struct plan_event {
	const char *name;
	enum plan_kind kind;
	const char *phase;
	const char *consent;
	long version;
	long *accepts;
	size_t n_accepts;
	bool deprecated;
	int64_t sunset_us;
	const char *sunset;
	const char *replaced_by;
	struct plan_prop *props;
	size_t n_props;
	bool reject_additional;
	bool has_pii;
};

struct plan {
	json_t *doc;
	long version;
	regex_t event_re;
	bool has_event_re;
	regex_t prop_re;
	bool has_prop_re;
	enum unknown_events unknown;
	struct plan_event *events;	/* sorted by name */
	size_t n_events;
	size_t n_phases;
	bool needs_hash_key;
};

/* What the loader carries through the walk. */
struct loader {
	struct plan *plan;
	struct plan_problems *probs;
	size_t n_problems;
	const json_t *categories;	/* consent_categories, may be NULL */
	const json_t *phases;		/* validated phases array or NULL */
};

void
plan_problems_init(struct plan_problems *probs)
{
	memset(probs, 0, sizeof(*probs));
}

void
plan_problems_finish(struct plan_problems *probs)
{
	free(probs->items);
	plan_problems_init(probs);
}

static void problem(struct loader *ld, const char *path, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
problem(struct loader *ld, const char *path, const char *fmt, ...)
{
	struct plan_problems *probs = ld->probs;
	struct plan_problem *p;
	va_list ap;

	ld->n_problems++;
	if (probs == NULL) {
		return;
	}
	if (probs->items == NULL) {
		probs->items = calloc(PLAN_MAX_PROBLEMS, sizeof(*probs->items));
	}
	if (probs->items == NULL || probs->n == PLAN_MAX_PROBLEMS) {
		probs->dropped++;
		return;
	}
	p = &probs->items[probs->n++];
	snprintf(p->path, sizeof(p->path), "%s", path);
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof(p->message), fmt, ap);
	va_end(ap);
}

/* path + "." + key, or path + "[i]" when key is NULL. The paths of
 * absurdly long names are cut short; the messages name them anyway. */
static void
path_join(char *out, size_t size, const char *path, const char *key,
    size_t i)
{
	int n = key != NULL ? snprintf(out, size, "%s.%s", path, key) :
	    snprintf(out, size, "%s[%zu]", path, i);

	if (n < 0 || (size_t)n >= size) {
		memcpy(out + size - 4, "...", 4);
	}
}

#define PATH_MAX_LEN 160

/* True if the array names (may be NULL) holds the string name. */
static bool
name_listed(const json_t *names, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach((json_t *)names, i, v) {
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), name) == 0) {
			return true;
		}
	}
	return false;
}

/* Reports every key of obj that is not in allowed (typos, mostly). */
static void
check_keys(struct loader *ld, const json_t *obj, const char *path,
    const char *const *allowed, size_t n_allowed)
{
	char sub[PATH_MAX_LEN];
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)obj, k, v) {
		size_t i;
		for (i = 0; i < n_allowed && strcmp(k, allowed[i]) != 0; i++) {
		}
		if (i == n_allowed) {
			path_join(sub, sizeof(sub), path, k, 0);
			problem(ld, sub, "unknown key '%s'", k);
		}
	}
}

/* The index of the string v in names, or -1 (with a problem) if it is not
 * one of them. */
static int
one_of(struct loader *ld, const json_t *v, const char *path,
    const char *const *names, size_t n)
{
	char list[160] = "";

	for (size_t i = 0; json_is_string(v) && i < n; i++) {
		if (strcmp(json_string_value(v), names[i]) == 0) {
			return (int)i;
		}
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(list);
		snprintf(list + len, sizeof(list) - len, "%s%s",
		    i == 0 ? "" : "|", names[i]);
	}
	problem(ld, path, "must be one of %s", list);
	return -1;
}

/* The string member key of obj (NULL if absent, or with a problem if not
 * a non-empty string). */
static const char *
get_string(struct loader *ld, const json_t *obj, const char *path,
    const char *key, bool required)
{
	char sub[PATH_MAX_LEN];
	json_t *v = json_object_get(obj, key);

	path_join(sub, sizeof(sub), path, key, 0);
	if (v == NULL) {
		if (required) {
			problem(ld, sub, "is required");
		}
		return NULL;
	}
	if (!json_is_string(v) || json_string_length(v) == 0) {
		problem(ld, sub, "must be a non-empty string");
		return NULL;
	}
	return json_string_value(v);
}

/* The positive integer member key of obj, dflt when absent. */
static long
get_positive(struct loader *ld, const json_t *obj, const char *path,
    const char *key, bool required, long dflt)
{
	char sub[PATH_MAX_LEN];
	json_t *v = json_object_get(obj, key);

	path_join(sub, sizeof(sub), path, key, 0);
	if (v == NULL) {
		if (required) {
			problem(ld, sub, "is required");
		}
		return dflt;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > 1000000) {
		problem(ld, sub, "must be an integer from 1 to 1000000");
		return dflt;
	}
	return (long)json_integer_value(v);
}

static bool
compile_regex(struct loader *ld, const char *path, const char *src,
    regex_t *re)
{
	char msg[200];

	if (!ere_compile(re, src, 0, msg, sizeof(msg))) {
		problem(ld, path, "%s", msg);
		return false;
	}
	return true;
}

static bool
regex_matches(const regex_t *re, const char *s)
{
	return regexec(re, s, 0, NULL, 0) == 0;
}

/* An RFC 3339 full-date (YYYY-MM-DD) as the microsecond it starts. */
static bool
parse_date(const char *s, int64_t *us)
{
	char buf[32];

	if (strlen(s) != 10) {
		return false;
	}
	snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
	return timeutil_parse_rfc3339(buf, us);
}

static void
load_naming(struct loader *ld, const json_t *naming)
{
	static const char *const keys[] = { "events", "properties" };
	struct plan *plan = ld->plan;
	const char *src;

	if (naming != NULL && !json_is_object(naming)) {
		problem(ld, "$.naming", "must be an object");
		naming = NULL;
	}
	if (naming != NULL) {
		check_keys(ld, naming, "$.naming", keys, N_OF(keys));
	}
	src = naming != NULL ? get_string(ld, naming, "$.naming", "events",
	    false) : NULL;
	plan->has_event_re = compile_regex(ld, "$.naming.events",
	    src != NULL ? src : PLAN_DEFAULT_EVENT_NAMING, &plan->event_re);
	src = naming != NULL ? get_string(ld, naming, "$.naming",
	    "properties", false) : NULL;
	if (src != NULL) {
		plan->has_prop_re = compile_regex(ld, "$.naming.properties",
		    src, &plan->prop_re);
	}
}

/* Checks what an event and a property definition have in common: the
 * name follows the naming rule (NULL: none), and the definition is an
 * object with known keys. False when it is not an object. */
static bool
check_definition(struct loader *ld, const char *path, const char *name,
    const regex_t *rule, const char *what, const char *rule_key,
    const json_t *obj, const char *const *keys, size_t n_keys)
{
	if (rule != NULL && !regex_matches(rule, name)) {
		problem(ld, path, "%s name '%s' breaks the naming rule "
		    "$.naming.%s", what, name, rule_key);
	}
	if (!json_is_object(obj)) {
		problem(ld, path, "must be an object");
		return false;
	}
	check_keys(ld, obj, path, keys, n_keys);
	return true;
}

/* True if v is a valid value of type t. */
static bool
type_accepts(enum prop_type t, const json_t *v)
{
	int64_t us;
	double d;

	switch (t) {
	case TYPE_STRING:
		return json_is_string(v);
	case TYPE_NUMBER:
		return json_is_number(v);
	case TYPE_INTEGER:
		if (json_is_integer(v)) {
			return true;
		}
		/* JSON has one number type; 3.0 is an integer to most
		 * senders. */
		d = json_is_real(v) ? json_real_value(v) : NAN;
		return isfinite(d) && d == floor(d) && fabs(d) < 9.0e15;
	case TYPE_BOOLEAN:
		return json_is_boolean(v);
	case TYPE_DATETIME:
		return json_is_string(v) &&
		    timeutil_parse_rfc3339(json_string_value(v), &us);
	case TYPE_OBJECT:
		return json_is_object(v);
	case TYPE_ARRAY:
		return json_is_array(v);
	case TYPE_COUNT_:
		break;
	}
	return false;
}

static bool
get_number(struct loader *ld, const json_t *obj, const char *path,
    const char *key, double *out)
{
	char sub[PATH_MAX_LEN];
	json_t *v = json_object_get(obj, key);

	if (v == NULL) {
		return false;
	}
	path_join(sub, sizeof(sub), path, key, 0);
	if (!json_is_number(v)) {
		problem(ld, sub, "must be a number");
		return false;
	}
	*out = json_number_value(v);
	return true;
}

static void
load_prop_limits(struct loader *ld, const json_t *obj, const char *path,
    struct plan_prop *p)
{
	bool numeric = p->type == TYPE_NUMBER || p->type == TYPE_INTEGER;
	char sub[PATH_MAX_LEN];
	const char *pattern;
	json_t *v;

	p->has_min = get_number(ld, obj, path, "min", &p->min);
	p->has_max = get_number(ld, obj, path, "max", &p->max);
	if ((p->has_min || p->has_max) && !numeric) {
		path_join(sub, sizeof(sub), path, p->has_min ? "min" : "max",
		    0);
		problem(ld, sub, "applies to number and integer properties "
		    "only, not %s", type_names[p->type]);
	} else if (p->has_min && p->has_max && p->min > p->max) {
		path_join(sub, sizeof(sub), path, "min", 0);
		problem(ld, sub, "is greater than max");
	}
	pattern = get_string(ld, obj, path, "pattern", false);
	path_join(sub, sizeof(sub), path, "pattern", 0);
	if (pattern != NULL && p->type != TYPE_STRING) {
		problem(ld, sub, "applies to string properties only, not %s",
		    type_names[p->type]);
	} else if (pattern != NULL) {
		p->has_pattern = compile_regex(ld, sub, pattern, &p->pattern);
	}
	v = json_object_get(obj, "max_length");
	path_join(sub, sizeof(sub), path, "max_length", 0);
	if (v != NULL && p->type != TYPE_STRING && p->type != TYPE_ARRAY) {
		problem(ld, sub, "applies to string and array properties only, "
		    "not %s", type_names[p->type]);
	} else if (v != NULL) {
		p->max_length = get_positive(ld, obj, path, "max_length",
		    false, 0);
	}
}

static void
load_prop_enum(struct loader *ld, const json_t *obj, const char *path,
    struct plan_prop *p)
{
	const json_t *values = json_object_get(obj, "enum");
	char sub[PATH_MAX_LEN], item[PATH_MAX_LEN];
	size_t i;
	json_t *v;

	if (values == NULL) {
		return;
	}
	path_join(sub, sizeof(sub), path, "enum", 0);
	if (!json_is_array(values) || json_array_size(values) == 0) {
		problem(ld, sub, "must be a non-empty array");
		return;
	}
	json_array_foreach((json_t *)values, i, v) {
		if (!type_accepts(p->type, v)) {
			path_join(item, sizeof(item), sub, NULL, i);
			problem(ld, item, "is not a %s, the property's type",
			    type_names[p->type]);
		}
	}
	p->enum_values = values;
}

static void
load_prop(struct loader *ld, struct plan_event *def, const char *name,
    const json_t *obj, const char *path, struct plan_prop *p)
{
	static const char *const keys[] = { "type", "required", "enum",
		"pattern", "min", "max", "max_length", "pii", "description" };
	char sub[PATH_MAX_LEN];
	json_t *v;
	int t;

	p->name = name;
	if (!check_definition(ld, path, name, ld->plan->has_prop_re ?
	    &ld->plan->prop_re : NULL, "property", "properties", obj, keys,
	    N_OF(keys))) {
		return;
	}
	path_join(sub, sizeof(sub), path, "type", 0);
	v = json_object_get(obj, "type");
	if (v == NULL) {
		problem(ld, sub, "is required");
		return;
	}
	t = one_of(ld, v, sub, type_names, N_OF(type_names));
	if (t < 0) {
		return;
	}
	p->type = (enum prop_type)t;
	v = json_object_get(obj, "required");
	path_join(sub, sizeof(sub), path, "required", 0);
	if (v != NULL && !json_is_boolean(v)) {
		problem(ld, sub, "must be true or false");
	}
	p->required = json_is_true(v);
	(void)get_string(ld, obj, path, "description", false);
	v = json_object_get(obj, "pii");
	path_join(sub, sizeof(sub), path, "pii", 0);
	if (v != NULL) {
		int pii = one_of(ld, v, sub, pii_names, N_OF(pii_names));
		p->pii = pii < 0 ? PII_NONE : (enum pii)(pii + 1);
		def->has_pii = def->has_pii || p->pii != PII_NONE;
		ld->plan->needs_hash_key = ld->plan->needs_hash_key ||
		    p->pii == PII_HASH;
	}
	load_prop_enum(ld, obj, path, p);
	load_prop_limits(ld, obj, path, p);
}

static void
load_props(struct loader *ld, struct plan_event *def, const json_t *obj,
    const char *path)
{
	const json_t *props = json_object_get(obj, "properties");
	char sub[PATH_MAX_LEN], item[PATH_MAX_LEN];
	const char *k;
	json_t *v;

	path_join(sub, sizeof(sub), path, "properties", 0);
	if (props == NULL) {
		return;
	}
	if (!json_is_object(props)) {
		problem(ld, sub, "must be an object");
		return;
	}
	def->props = calloc(json_object_size(props) + 1, sizeof(*def->props));
	if (def->props == NULL) {
		problem(ld, sub, "out of memory");
		return;
	}
	json_object_foreach((json_t *)props, k, v) {
		path_join(item, sizeof(item), sub, k, 0);
		load_prop(ld, def, k, v, item, &def->props[def->n_props++]);
	}
}

static void
load_versions(struct loader *ld, struct plan_event *def, const json_t *obj,
    const char *path)
{
	const json_t *acc = json_object_get(obj, "accepts_versions");
	char sub[PATH_MAX_LEN], item[PATH_MAX_LEN];
	bool has_current = false;
	size_t i;
	json_t *v;

	def->version = get_positive(ld, obj, path, "version", false, 1);
	path_join(sub, sizeof(sub), path, "accepts_versions", 0);
	if (acc != NULL && (!json_is_array(acc) ||
	    json_array_size(acc) == 0)) {
		problem(ld, sub, "must be a non-empty array of versions");
		acc = NULL;
	}
	def->n_accepts = acc != NULL ? json_array_size(acc) : 1;
	def->accepts = calloc(def->n_accepts, sizeof(*def->accepts));
	if (def->accepts == NULL) {
		problem(ld, sub, "out of memory");
		return;
	}
	if (acc == NULL) {
		def->accepts[0] = def->version;
		return;
	}
	json_array_foreach((json_t *)acc, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 1000000) {
			path_join(item, sizeof(item), sub, NULL, i);
			problem(ld, item, "must be an integer from 1 to 1000000");
			continue;
		}
		def->accepts[i] = (long)json_integer_value(v);
		has_current = has_current || def->accepts[i] == def->version;
	}
	if (!has_current) {
		problem(ld, sub, "must include the current version %ld",
		    def->version);
	}
}

static void
load_deprecated(struct loader *ld, struct plan_event *def,
    const json_t *doc_events, const json_t *obj, const char *path)
{
	static const char *const keys[] = { "replaced_by", "sunset", "note" };
	const json_t *dep = json_object_get(obj, "deprecated");
	char sub[PATH_MAX_LEN], item[PATH_MAX_LEN];

	if (dep == NULL) {
		return;
	}
	path_join(sub, sizeof(sub), path, "deprecated", 0);
	if (!json_is_object(dep)) {
		problem(ld, sub, "must be an object with sunset and "
		    "replaced_by");
		return;
	}
	check_keys(ld, dep, sub, keys, N_OF(keys));
	def->deprecated = true;
	def->replaced_by = get_string(ld, dep, sub, "replaced_by", false);
	(void)get_string(ld, dep, sub, "note", false);
	path_join(item, sizeof(item), sub, "replaced_by", 0);
	if (def->replaced_by != NULL &&
	    (json_object_get(doc_events, def->replaced_by) == NULL ||
	    strcmp(def->replaced_by, def->name) == 0)) {
		problem(ld, item, "names no other event of the plan: '%s'",
		    def->replaced_by);
	}
	def->sunset = get_string(ld, dep, sub, "sunset", true);
	path_join(item, sizeof(item), sub, "sunset", 0);
	if (def->sunset != NULL && !parse_date(def->sunset, &def->sunset_us)) {
		problem(ld, item, "must be a date such as 2027-06-30, not "
		    "'%.40s'", def->sunset);
	}
}

static void
load_target(struct loader *ld, const json_t *obj, const char *path)
{
	static const char *const keys[] = { "baseline", "target", "period",
		"owner" };
	static const char *const rates[] = { "baseline", "target" };
	const json_t *t = json_object_get(obj, "target");
	char sub[PATH_MAX_LEN], item[PATH_MAX_LEN];
	json_t *v;

	if (t == NULL) {
		return;
	}
	path_join(sub, sizeof(sub), path, "target", 0);
	if (!json_is_object(t)) {
		problem(ld, sub, "must be an object");
		return;
	}
	check_keys(ld, t, sub, keys, N_OF(keys));
	for (size_t i = 0; i < N_OF(rates); i++) {
		v = json_object_get(t, rates[i]);
		path_join(item, sizeof(item), sub, rates[i], 0);
		if (v == NULL) {
			problem(ld, item, "is required");
		} else if (!json_is_number(v) || json_number_value(v) < 0 ||
		    json_number_value(v) > 1) {
			problem(ld, item, "must be a rate between 0 and 1");
		}
	}
	path_join(item, sizeof(item), sub, "period", 0);
	v = json_object_get(t, "period");
	if (v == NULL) {
		problem(ld, item, "is required");
	} else {
		(void)one_of(ld, v, item, period_names, N_OF(period_names));
	}
	(void)get_string(ld, t, sub, "owner", false);
}

/* The phase whose milestones list name, NULL if none does. */
static const char *
phase_listing(const json_t *phases, const char *name)
{
	size_t i, j;
	json_t *ph, *m;

	json_array_foreach((json_t *)phases, i, ph) {
		json_array_foreach(json_object_get(ph, "milestones"), j, m) {
			if (json_is_string(m) &&
			    strcmp(json_string_value(m), name) == 0) {
				return json_string_value(json_object_get(ph,
				    "name"));
			}
		}
	}
	return NULL;
}

static void
load_event_phase(struct loader *ld, struct plan_event *def,
    const json_t *obj, const char *path)
{
	const char *listed = ld->phases != NULL ?
	    phase_listing(ld->phases, def->name) : NULL;
	char sub[PATH_MAX_LEN];

	def->phase = get_string(ld, obj, path, "phase", false);
	path_join(sub, sizeof(sub), path, "phase", 0);
	if (def->kind == PLAN_KIND_SECONDARY && def->phase != NULL) {
		problem(ld, sub, "secondary actions belong to no phase");
	} else if (def->phase != NULL && ld->phases != NULL &&
	    (listed == NULL || strcmp(listed, def->phase) != 0)) {
		problem(ld, sub, "phase '%s' does not list this event in its "
		    "milestones", def->phase);
	}
	if (def->kind == PLAN_KIND_MILESTONE && listed == NULL &&
	    ld->phases != NULL) {
		problem(ld, path, "milestone '%s' is in no phase", def->name);
	}
	if (def->phase == NULL) {
		def->phase = listed;
	}
}

static void
load_event(struct loader *ld, const json_t *doc_events, const char *name,
    const json_t *obj, struct plan_event *def)
{
	static const char *const keys[] = { "kind", "phase", "description",
		"owner", "version", "accepts_versions", "deprecated", "consent",
		"properties", "additional_properties", "target" };
	char path[PATH_MAX_LEN], sub[PATH_MAX_LEN];
	json_t *v;
	int i;

	def->name = name;
	def->kind = PLAN_KIND_PAGE;	/* until the definition says */
	path_join(path, sizeof(path), "$.events", name, 0);
	if (!check_definition(ld, path, name, ld->plan->has_event_re ?
	    &ld->plan->event_re : NULL, "event", "events", obj, keys,
	    N_OF(keys))) {
		return;
	}
	path_join(sub, sizeof(sub), path, "kind", 0);
	v = json_object_get(obj, "kind");
	i = v == NULL ? -1 : one_of(ld, v, sub, kind_names, N_OF(kind_names));
	if (v == NULL) {
		problem(ld, sub, "is required");
	}
	def->kind = i < 0 ? PLAN_KIND_PAGE : (enum plan_kind)i;
	if (i >= 0) {
		load_event_phase(ld, def, obj, path);
	}
	(void)get_string(ld, obj, path, "description", false);
	(void)get_string(ld, obj, path, "owner", false);
	load_versions(ld, def, obj, path);
	load_deprecated(ld, def, doc_events, obj, path);
	def->consent = get_string(ld, obj, path, "consent", false);
	path_join(sub, sizeof(sub), path, "consent", 0);
	if (def->consent != NULL && ld->categories != NULL &&
	    !name_listed(ld->categories, def->consent)) {
		problem(ld, sub, "'%s' is not in $.consent_categories",
		    def->consent);
	}
	load_props(ld, def, obj, path);
	v = json_object_get(obj, "additional_properties");
	path_join(sub, sizeof(sub), path, "additional_properties", 0);
	def->reject_additional = v != NULL && one_of(ld, v, sub,
	    additional_names, N_OF(additional_names)) == 1;
	load_target(ld, obj, path);
}

static int
event_cmp(const void *a, const void *b)
{
	return strcmp(((const struct plan_event *)a)->name,
	    ((const struct plan_event *)b)->name);
}

static void
load_events(struct loader *ld, const json_t *doc_events,
    const char *macro)
{
	struct plan *plan = ld->plan;
	const char *name, *first_macro = NULL;
	char path[PATH_MAX_LEN];
	json_t *v;

	if (doc_events == NULL) {
		problem(ld, "$.events", "is required");
		return;
	}
	if (!json_is_object(doc_events) || json_object_size(doc_events) == 0) {
		problem(ld, "$.events", "must be an object with at least one "
		    "event");
		return;
	}
	plan->events = calloc(json_object_size(doc_events),
	    sizeof(*plan->events));
	if (plan->events == NULL) {
		problem(ld, "$.events", "out of memory");
		return;
	}
	json_object_foreach((json_t *)doc_events, name, v) {
		struct plan_event *def = &plan->events[plan->n_events++];
		load_event(ld, doc_events, name, v, def);
		if (!json_is_object(v) || def->kind != PLAN_KIND_MACRO ||
		    json_object_get(v, "kind") == NULL) {
			continue;
		}
		if (first_macro != NULL) {
			path_join(path, sizeof(path), "$.events", name, 0);
			problem(ld, path, "a second macro conversion (after "
			    "'%s'); a plan has exactly one", first_macro);
		}
		first_macro = first_macro != NULL ? first_macro : name;
	}
	qsort(plan->events, plan->n_events, sizeof(*plan->events), event_cmp);
	if (first_macro == NULL) {
		problem(ld, "$.events", "no event has kind macro; a plan has "
		    "exactly one");
	}
	if (macro != NULL && (first_macro == NULL ||
	    json_object_get(doc_events, macro) == NULL ||
	    plan_find_event(plan, macro)->kind != PLAN_KIND_MACRO)) {
		problem(ld, "$.macro_conversion", "'%s' is not an event of kind "
		    "macro", macro);
	}
}

static void
load_phase_milestones(struct loader *ld, const json_t *ms,
    const json_t *doc_events, const char *path, const json_t *phases,
    size_t phase_i)
{
	char item[PATH_MAX_LEN];
	size_t i, j, k;
	json_t *m, *other, *def;

	json_array_foreach((json_t *)ms, i, m) {
		path_join(item, sizeof(item), path, NULL, i);
		if (!json_is_string(m)) {
			problem(ld, item, "must be an event name");
			continue;
		}
		def = json_object_get(doc_events, json_string_value(m));
		if (def == NULL) {
			problem(ld, item, "names an unknown event '%s'",
			    json_string_value(m));
			continue;
		}
		const char *kind = json_string_value(json_object_get(def,
		    "kind"));
		if (kind != NULL && (strcmp(kind, "secondary") == 0 ||
		    strcmp(kind, "page") == 0)) {
			problem(ld, item, "'%s' is a %s event; phases list "
			    "milestones and the macro only",
			    json_string_value(m), kind);
		}
		if (kind != NULL && strcmp(kind, "macro") == 0 &&
		    i + 1 != json_array_size(ms)) {
			problem(ld, item, "the macro conversion '%s' can only "
			    "be the last step of its phase",
			    json_string_value(m));
		}
		/* Listed before, in this phase or an earlier one? */
		for (k = 0; k <= phase_i; k++) {
			const json_t *other_ms = json_object_get(
			    json_array_get(phases, k), "milestones");
			json_array_foreach((json_t *)other_ms, j, other) {
				if ((k < phase_i || j < i) &&
				    json_equal(other, m)) {
					problem(ld, item, "'%s' is listed "
					    "twice", json_string_value(m));
					k = phase_i;
					break;
				}
			}
		}
	}
}

/* Lower-case words of letters and digits joined by single underscores,
 * starting with a letter: "consideration", "post_purchase". */
static bool
is_snake_case(const char *s)
{
	if (*s < 'a' || *s > 'z') {
		return false;
	}
	for (; *s != '\0'; s++) {
		if (*s == '_' ? s[1] == '\0' || s[1] == '_' :
		    !((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9'))) {
			return false;
		}
	}
	return true;
}

static void
load_phases(struct loader *ld, const json_t *phases,
    const json_t *doc_events)
{
	static const char *const keys[] = { "name", "description",
		"milestones" };
	char path[PATH_MAX_LEN], sub[PATH_MAX_LEN];
	bool ok = true;
	size_t i, j;
	json_t *ph, *ms;

	if (phases == NULL) {
		problem(ld, "$.phases", "is required");
		return;
	}
	if (!json_is_array(phases) || json_array_size(phases) == 0) {
		problem(ld, "$.phases", "must be a non-empty array");
		return;
	}
	json_array_foreach((json_t *)phases, i, ph) {
		const char *name;
		path_join(path, sizeof(path), "$.phases", NULL, i);
		if (!json_is_object(ph)) {
			problem(ld, path, "must be an object");
			ok = false;
			continue;
		}
		check_keys(ld, ph, path, keys, N_OF(keys));
		name = get_string(ld, ph, path, "name", true);
		(void)get_string(ld, ph, path, "description", false);
		if (name != NULL && !is_snake_case(name)) {
			path_join(sub, sizeof(sub), path, "name", 0);
			problem(ld, sub, "phase names are snake_case, not "
			    "'%.64s'", name);
		}
		ok = ok && name != NULL;
		for (j = 0; name != NULL && j < i; j++) {
			const char *prev = json_string_value(json_object_get(
			    json_array_get(phases, j), "name"));
			if (prev != NULL && strcmp(prev, name) == 0) {
				path_join(sub, sizeof(sub), path, "name", 0);
				problem(ld, sub, "phase '%s' is named twice",
				    name);
			}
		}
		ms = json_object_get(ph, "milestones");
		path_join(sub, sizeof(sub), path, "milestones", 0);
		if (!json_is_array(ms)) {
			problem(ld, sub, "must be an array of event names");
			ok = false;
			continue;
		}
		if (json_is_object(doc_events)) {
			load_phase_milestones(ld, ms, doc_events, sub, phases,
			    i);
		}
	}
	/* Only a well-formed phase list can answer "which phase lists
	 * this event". */
	ld->phases = ok ? phases : NULL;
	ld->plan->n_phases = json_array_size(phases);
}

static void
load_categories(struct loader *ld, const json_t *cats)
{
	char item[PATH_MAX_LEN];
	bool ok = true;
	size_t i;
	json_t *v;

	if (cats == NULL) {
		return;
	}
	if (!json_is_array(cats)) {
		problem(ld, "$.consent_categories", "must be an array of "
		    "category names");
		return;
	}
	json_array_foreach((json_t *)cats, i, v) {
		path_join(item, sizeof(item), "$.consent_categories", NULL, i);
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > EVENT_CONSENT_KEY_MAX) {
			problem(ld, item, "must be a category name of 1 to %d "
			    "bytes", EVENT_CONSENT_KEY_MAX);
			ok = false;
		}
	}
	if (ok) {
		ld->categories = cats;
	}
}

struct plan *
plan_load_json(json_t *doc, struct plan_problems *probs)
{
	static const char *const keys[] = { "version", "name", "description",
		"naming", "macro_conversion", "consent_categories",
		"unknown_events", "phases", "events" };
	struct loader ld = { .probs = probs };
	const char *macro;
	json_t *v;

	ld.plan = calloc(1, sizeof(*ld.plan));
	if (ld.plan == NULL) {
		problem(&ld, "$", "out of memory");
		return NULL;
	}
	ld.plan->doc = json_incref(doc);
	if (!json_is_object(doc)) {
		problem(&ld, "$", "a plan must be a JSON object");
		goto fail;
	}
	check_keys(&ld, doc, "$", keys, N_OF(keys));
	ld.plan->version = get_positive(&ld, doc, "$", "version", true, 0);
	(void)get_string(&ld, doc, "$", "name", false);
	(void)get_string(&ld, doc, "$", "description", false);
	load_naming(&ld, json_object_get(doc, "naming"));
	v = json_object_get(doc, "unknown_events");
	if (v != NULL) {
		int u = one_of(&ld, v, "$.unknown_events", unknown_names,
		    N_OF(unknown_names));
		ld.plan->unknown = u < 0 ? UNKNOWN_REJECT :
		    (enum unknown_events)u;
	}
	load_categories(&ld, json_object_get(doc, "consent_categories"));
	macro = get_string(&ld, doc, "$", "macro_conversion", true);
	load_phases(&ld, json_object_get(doc, "phases"),
	    json_object_get(doc, "events"));
	load_events(&ld, json_object_get(doc, "events"), macro);
	if (ld.n_problems == 0) {
		return ld.plan;
	}
fail:
	plan_free(ld.plan);
	return NULL;
}

struct plan *
plan_load_file(const char *path, struct plan_problems *probs)
{
	struct loader ld = { .probs = probs };
	json_error_t jerr;
	struct plan *plan;
	json_t *doc;

	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL && jerr.line < 1) {
		problem(&ld, "$", "%s: %s", path, jerr.text);
		return NULL;
	}
	if (doc == NULL) {
		problem(&ld, "$", "%s: %s (line %d, column %d)", path,
		    jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	plan = plan_load_json(doc, probs);
	json_decref(doc);
	return plan;
}

struct plan *
plan_new_default(void)
{
	struct plan *plan = calloc(1, sizeof(*plan));

	if (plan == NULL) {
		return NULL;
	}
	plan->unknown = UNKNOWN_ACCEPT;
	if (regcomp(&plan->event_re, PLAN_DEFAULT_EVENT_NAMING,
	    REG_EXTENDED | REG_NOSUB) != 0) {
		free(plan);
		return NULL;
	}
	plan->has_event_re = true;
	return plan;
}

void
plan_free(struct plan *plan)
{
	if (plan == NULL) {
		return;
	}
	for (size_t i = 0; i < plan->n_events; i++) {
		struct plan_event *def = &plan->events[i];
		for (size_t j = 0; j < def->n_props; j++) {
			if (def->props[j].has_pattern) {
				regfree(&def->props[j].pattern);
			}
		}
		free(def->props);
		free(def->accepts);
	}
	free(plan->events);
	if (plan->has_event_re) {
		regfree(&plan->event_re);
	}
	if (plan->has_prop_re) {
		regfree(&plan->prop_re);
	}
	json_decref(plan->doc);
	free(plan);
}

long
plan_version(const struct plan *plan)
{
	return plan->version;
}

size_t
plan_event_count(const struct plan *plan)
{
	return plan->n_events;
}

size_t
plan_phase_count(const struct plan *plan)
{
	return plan->n_phases;
}

bool
plan_needs_hash_key(const struct plan *plan)
{
	return plan->needs_hash_key;
}

const json_t *
plan_document(const struct plan *plan)
{
	return plan->doc;
}

const struct plan_event *
plan_find_event(const struct plan *plan, const char *name)
{
	struct plan_event key = { .name = name };

	if (plan->n_events == 0) {
		return NULL;
	}
	return bsearch(&key, plan->events, plan->n_events,
	    sizeof(*plan->events), event_cmp);
}

size_t
plan_funnel(const struct plan *plan, struct plan_funnel_step *steps,
    size_t max)
{
	const json_t *phases = json_object_get(plan->doc, "phases");
	const char *macro = json_string_value(json_object_get(plan->doc,
	    "macro_conversion"));
	const json_t *phase, *m;
	size_t i, j, n = 0;

	if (macro == NULL) {
		return 0;
	}
	json_array_foreach((json_t *)phases, i, phase) {
		struct plan_funnel_step step = {
			.label = json_string_value(json_object_get(phase,
			    "name")),
		};
		bool last = false;
		json_array_foreach(json_object_get(phase, "milestones"), j, m) {
			const char *name = json_string_value(m);
			if (strcmp(name, macro) == 0) {
				last = true;
			} else if (step.n_events < PLAN_FUNNEL_SET_MAX) {
				step.events[step.n_events++] = name;
			}
		}
		if (step.n_events > 0) {
			if (n < max) {
				steps[n] = step;
			}
			n++;
		}
		if (last) {
			if (n < max) {
				steps[n] = (struct plan_funnel_step){
					.label = macro, .events = { macro },
					.n_events = 1 };
			}
			return n + 1;
		}
	}
	/* The macro conversion is in no phase: no funnel leads to it. */
	return 0;
}

const char *
plan_page_event(const struct plan *plan)
{
	for (size_t i = 0; i < plan->n_events; i++) {
		if (plan->events[i].kind == PLAN_KIND_PAGE) {
			return plan->events[i].name;
		}
	}
	return NULL;
}

const struct plan_event *
plan_event_at(const struct plan *plan, size_t i)
{
	return i < plan->n_events ? &plan->events[i] : NULL;
}

const char *
plan_event_name(const struct plan_event *def)
{
	return def->name;
}

const char *
plan_event_kind_name(const struct plan_event *def)
{
	return kind_names[def->kind];
}

const char *
plan_event_phase(const struct plan_event *def)
{
	return def->phase;
}

const char *
plan_event_consent(const struct plan_event *def)
{
	return def->consent;
}

long
plan_event_version(const struct plan_event *def)
{
	return def->version;
}

/* --- enforcing ---------------------------------------------------------- */


static const struct plan_prop *
prop_find(const struct plan_event *def, const char *name)
{
	for (size_t i = 0; def != NULL && i < def->n_props; i++) {
		if (strcmp(def->props[i].name, name) == 0) {
			return &def->props[i];
		}
	}
	return NULL;
}

bool
plan_stores_unknown_events(const struct plan *plan)
{
	return plan->unknown == UNKNOWN_ACCEPT;
}

bool
plan_event_takes_property(const struct plan_event *def, const char *name)
{
	return prop_find(def, name) != NULL || !def->reject_additional;
}

static bool
enum_contains(const json_t *values, const json_t *v)
{
	size_t i;
	json_t *e;

	json_array_foreach((json_t *)values, i, e) {
		if (json_equal(e, v) || (json_is_number(e) &&
		    json_is_number(v) &&
		    json_number_value(e) == json_number_value(v))) {
			return true;
		}
	}
	return false;
}

static void
check_prop_value(const struct plan_prop *p, const json_t *v,
    const char *path, struct event_problems *probs)
{
	size_t len;
	double d;

	if (!type_accepts(p->type, v)) {
		event_problem_add(probs, ERR_WRONG_TYPE, path, "must be %s %s",
		    p->type == TYPE_INTEGER || p->type == TYPE_ARRAY ||
		    p->type == TYPE_OBJECT ? "an" : "a", type_names[p->type]);
		return;
	}
	if (p->enum_values != NULL && !enum_contains(p->enum_values, v)) {
		event_problem_add(probs, ERR_NOT_IN_ENUM, path,
		    "is not one of the %zu values the plan allows",
		    json_array_size(p->enum_values));
	}
	if (p->has_pattern && !regex_matches(&p->pattern,
	    json_string_value(v))) {
		event_problem_add(probs, ERR_PATTERN_MISMATCH, path,
		    "does not match the plan's pattern");
	}
	if (json_is_number(v)) {
		d = json_number_value(v);
		if (p->has_min && d < p->min) {
			event_problem_add(probs, ERR_OUT_OF_RANGE, path,
			    "must be at least %g", p->min);
		} else if (p->has_max && d > p->max) {
			event_problem_add(probs, ERR_OUT_OF_RANGE, path,
			    "must be at most %g", p->max);
		}
	}
	len = json_is_string(v) ? json_string_length(v) :
	    json_is_array(v) ? json_array_size(v) : 0;
	if (p->max_length > 0 && len > (size_t)p->max_length) {
		event_problem_add(probs, ERR_TOO_LONG, path, "is longer than "
		    "%ld %s", p->max_length, json_is_string(v) ? "bytes" :
		    "elements");
	}
}

static void
check_props(const struct plan *plan, const struct plan_event *def,
    const json_t *props, const json_t *redacted,
    struct event_problems *probs)
{
	char path[96];
	const char *k;
	json_t *v;

	for (size_t i = 0; def != NULL && i < def->n_props; i++) {
		const struct plan_prop *p = &def->props[i];
		v = json_object_get(props, p->name);
		snprintf(path, sizeof(path), "$.props.%.80s", p->name);
		if (v == NULL || json_is_null(v)) {
			if (p->required) {
				event_problem_add(probs, ERR_MISSING_PROPERTY,
				    path, "is required by the plan");
			}
			continue;
		}
		if (!name_listed(redacted, p->name)) {
			check_prop_value(p, v, path, probs);
		}
	}
	/* Planned property names passed the naming rule when the plan
	 * loaded: only the others are matched, per event. */
	json_object_foreach((json_t *)props, k, v) {
		if (def != NULL && prop_find(def, k) != NULL) {
			continue;
		}
		snprintf(path, sizeof(path), "$.props.%.80s", k);
		if (plan->has_prop_re && !regex_matches(&plan->prop_re, k)) {
			event_problem_add(probs, ERR_NAME_FORMAT, path,
			    "property name breaks the plan's naming rule");
		}
		if (def != NULL && def->reject_additional) {
			event_problem_add(probs, ERR_UNEXPECTED_PROPERTY, path,
			    "is not a property of '%s' in the plan",
			    def->name);
		}
	}
}

static bool
version_accepted(const struct plan_event *def, long version)
{
	for (size_t i = 0; i < def->n_accepts; i++) {
		if (def->accepts[i] == version) {
			return true;
		}
	}
	return false;
}

/* Version and deprecation of a planned event. */
static void
check_lifecycle(const struct plan_event *def, const struct event *ev,
    struct event_problems *probs, struct event_problems *warnings)
{
	char replacement[96] = "";

	if (ev->version != 0 && !version_accepted(def, ev->version)) {
		event_problem_add(probs, ERR_UNSUPPORTED_VERSION, "$.version",
		    "version %lld of '%s' is not accepted (current: %ld)",
		    (long long)ev->version, def->name, def->version);
	}
	if (!def->deprecated) {
		return;
	}
	if (def->replaced_by != NULL) {
		snprintf(replacement, sizeof(replacement), "; use '%.64s'",
		    def->replaced_by);
	}
	if (ev->received_us >= def->sunset_us) {
		event_problem_add(probs, ERR_EVENT_SUNSET, "$.name",
		    "'%s' was retired on %s%s", def->name, def->sunset,
		    replacement);
	} else {
		event_problem_add(warnings, ERR_EVENT_DEPRECATED, "$.name",
		    "'%s' is deprecated and rejected from %s on%s",
		    def->name, def->sunset, replacement);
	}
}

enum plan_verdict
plan_check_event(const struct plan *plan, const struct event *ev,
    const json_t *redacted, const struct plan_event **def_out,
    struct event_problems *probs, struct event_problems *warnings)
{
	const struct plan_event *def = NULL;
	bool quarantine = false;

	probs->n = 0;
	warnings->n = 0;
	*def_out = NULL;
	def = plan_find_event(plan, ev->name);
	/* A planned name passed the naming rule when the plan loaded. */
	if (def == NULL && plan->has_event_re &&
	    !regex_matches(&plan->event_re, ev->name)) {
		event_problem_add(probs, ERR_NAME_FORMAT, "$.name",
		    "'%.64s' breaks the plan's naming rule", ev->name);
		return PLAN_REJECT;
	}
	if (def == NULL) {
		switch (plan->unknown) {
		case UNKNOWN_REJECT:
			event_problem_add(probs, ERR_UNKNOWN_EVENT, "$.name",
			    "'%.64s' is not in the tracking plan", ev->name);
			break;
		case UNKNOWN_QUARANTINE:
			event_problem_add(probs, ERR_UNKNOWN_EVENT, "$.name",
			    "'%.64s' is not in the tracking plan (kept for "
			    "replay)", ev->name);
			quarantine = true;
			break;
		case UNKNOWN_ACCEPT:
			/* Without a plan file, no event is planned: saying
			 * so on each would be noise. */
			if (plan->doc != NULL) {
				event_problem_add(warnings, ERR_UNKNOWN_EVENT,
				    "$.name", "'%.64s' is not in the tracking "
				    "plan", ev->name);
			}
			break;
		}
		if (probs->n > 0) {
			return quarantine ? PLAN_QUARANTINE : PLAN_REJECT;
		}
	} else {
		check_lifecycle(def, ev, probs, warnings);
	}
	check_props(plan, def, ev->props, redacted, probs);
	*def_out = def;
	return probs->n == 0 ? PLAN_PASS : PLAN_REJECT;
}

/* --- PII ---------------------------------------------------------------- */

static json_t *
hash_value(const json_t *v, const void *key, size_t key_len)
{
	char hex[PRIVACY_HEX_LEN];
	char *text = NULL;
	const char *data;

	if (json_is_string(v)) {
		data = json_string_value(v);
	} else {
		text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
		    JSON_SORT_KEYS);
		if (text == NULL) {
			return NULL;
		}
		data = text;
	}
	privacy_keyed_hash_hex(key, key_len, data, strlen(data), hex);
	free(text);
	return json_string(hex);
}

json_t *
plan_redact_props(const struct plan_event *def, json_t *props,
    bool drop_pii, const void *hash_key, size_t hash_key_len,
    const json_t *skip, json_t *done)
{
	json_t *out = NULL;

	if (def == NULL || !def->has_pii || props == NULL) {
		return json_incref(props);
	}
	for (size_t i = 0; i < def->n_props; i++) {
		const struct plan_prop *p = &def->props[i];
		json_t *v = json_object_get(props, p->name), *h = NULL;
		if (v == NULL || p->pii == PII_NONE ||
		    name_listed(skip, p->name)) {
			continue;
		}
		if (out == NULL && (out = json_copy(props)) == NULL) {
			return NULL;
		}
		if (!drop_pii && p->pii == PII_HASH && !json_is_null(v)) {
			h = hash_value(v, hash_key, hash_key_len);
			if (h == NULL) {
				goto fail;
			}
		}
		if ((h != NULL ? json_object_set_new(out, p->name, h) :
		    json_object_del(out, p->name)) != 0 || (done != NULL &&
		    json_array_append_new(done, json_string(p->name)) != 0)) {
			goto fail;
		}
	}
	return out != NULL ? out : json_incref(props);
fail:
	json_decref(out);
	return NULL;
}
