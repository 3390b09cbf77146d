/* The tracking plan: what check-plan reports, what ingest decides for an
 * event, and how PII is redacted. Driven by data/plans.json (argv[1]; its
 * "about" says how a case is written), one cmocka test per case so that
 * the TAP output names the row that failed. argv[2], when given, is the
 * example plan config/plan.json, which must lint clean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cases.h"

#include "common/error.h"
#include "common/event.h"
#include "common/plan.h"
#include "common/privacy.h"
#include "common/timeutil.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define DEFAULT_RECEIVED "2026-11-23T10:00:00Z"

static json_t *data;			/* the whole data file */
static const char *example_plan_path;	/* argv[2] or NULL */

/* --- helpers ------------------------------------------------------------ */

/* What went wrong in one case, reported once its resources are freed. */
struct report {
	char text[8192];
};

static void report_add(struct report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
report_add(struct report *r, const char *fmt, ...)
{
	size_t len = strlen(r->text);
	va_list ap;

	if (len + 2 >= sizeof(r->text)) {
		return;
	}
	if (len > 0) {
		r->text[len++] = '\n';
		r->text[len] = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(r->text + len, sizeof(r->text) - len, fmt, ap);
	va_end(ap);
}

/* RFC 7396: target with patch applied, as a new value. */
static json_t *
merge_patch(const json_t *target, const json_t *patch)
{
	const char *k;
	json_t *out, *v;

	if (!json_is_object(patch)) {
		return json_deep_copy(patch);
	}
	out = json_is_object(target) ? json_deep_copy(target) : json_object();
	assert_non_null(out);
	json_object_foreach((json_t *)patch, k, v) {
		if (json_is_null(v)) {
			json_object_del(out, k);
		} else {
			json_object_set_new(out, k,
			    merge_patch(json_object_get(out, k), v));
		}
	}
	return out;
}

/* The plan document of case c: its "plan", or its base (dflt unless named)
 * patched. NULL for the base "default", which is plan_new_default(). */
static json_t *
case_plan_doc(const json_t *c, const char *dflt)
{
	const json_t *literal = json_object_get(c, "plan");
	const json_t *patch = json_object_get(c, "patch");
	const char *base = json_string_value(json_object_get(c, "base"));
	const json_t *base_doc;

	if (literal != NULL) {
		if (patch != NULL || base != NULL) {
			fail_msg("%s: \"plan\" goes without base and patch",
			    cases_name(c));
		}
		return json_deep_copy(literal);
	}
	base = base != NULL ? base : dflt;
	if (strcmp(base, "default") == 0) {
		if (patch != NULL) {
			fail_msg("%s: the default plan takes no patch",
			    cases_name(c));
		}
		return NULL;
	}
	base_doc = json_object_get(json_object_get(data, "bases"), base);
	if (base_doc == NULL) {
		fail_msg("%s: no base '%s'", cases_name(c), base);
	}
	return patch != NULL ? merge_patch(base_doc, patch) :
	    json_deep_copy(base_doc);
}

/* Loads the plan of case c, which must be clean. */
static struct plan *
case_plan(const json_t *c, const char *dflt)
{
	struct plan_problems probs;
	json_t *doc = case_plan_doc(c, dflt);
	struct plan *plan;

	if (doc == NULL) {
		plan = plan_new_default();
		assert_non_null(plan);
		return plan;
	}
	plan_problems_init(&probs);
	plan = plan_load_json(doc, &probs);
	json_decref(doc);
	if (plan == NULL) {
		fail_msg("%s: the case's plan does not load: %s: %s (and %zu "
		    "more)", cases_name(c), probs.n > 0 ? probs.items[0].path :
		    "?", probs.n > 0 ? probs.items[0].message : "?",
		    probs.n > 0 ? probs.n - 1 : 0);
	}
	plan_problems_finish(&probs);
	return plan;
}

static void
text_of_plan_problems(struct report *r, const struct plan_problems *probs)
{
	for (size_t i = 0; i < probs->n; i++) {
		report_add(r, "  reported %s: %s", probs->items[i].path,
		    probs->items[i].message);
	}
}

/* Reports into r every difference between the lint problems reported and
 * the expected [path, substring] pairs (an exact multiset). */
static void
compare_plan_problems(struct report *r, const struct plan_problems *probs,
    const json_t *expected)
{
	bool used[PLAN_MAX_PROBLEMS] = { false };
	size_t i, j;
	json_t *e;
	bool bad = false;

	json_array_foreach((json_t *)expected, i, e) {
		const char *path = json_string_value(json_array_get(e, 0));
		const char *sub = json_string_value(json_array_get(e, 1));
		if (json_array_size(e) != 2 || path == NULL || sub == NULL) {
			fail_msg("bad expected problem at index %zu", i);
		}
		for (j = 0; j < probs->n; j++) {
			if (!used[j] &&
			    strcmp(probs->items[j].path, path) == 0 &&
			    strstr(probs->items[j].message, sub) != NULL) {
				used[j] = true;
				break;
			}
		}
		if (j == probs->n) {
			report_add(r, "missing problem %s: ...%s...", path,
			    sub);
			bad = true;
		}
	}
	for (j = 0; j < probs->n; j++) {
		if (!used[j]) {
			report_add(r, "unexpected problem %s: %s",
			    probs->items[j].path, probs->items[j].message);
			bad = true;
		}
	}
	if (probs->dropped != 0) {
		report_add(r, "%zu problems dropped", probs->dropped);
		bad = true;
	}
	if (bad) {
		text_of_plan_problems(r, probs);
	}
}

/* The same for event problems against [code, path] pairs. */
static void
compare_event_problems(struct report *r, const char *what,
    const struct event_problems *probs, const json_t *expected)
{
	bool used[EVENT_MAX_PROBLEMS] = { false };
	size_t i, j;
	json_t *e;
	bool bad = false;

	json_array_foreach((json_t *)expected, i, e) {
		const char *code = json_string_value(json_array_get(e, 0));
		const char *path = json_string_value(json_array_get(e, 1));
		if (json_array_size(e) != 2 || code == NULL || path == NULL) {
			fail_msg("bad expected %s at index %zu", what, i);
		}
		for (j = 0; j < probs->n; j++) {
			if (!used[j] && strcmp(error_code_name(
			    probs->items[j].code), code) == 0 &&
			    strcmp(probs->items[j].path, path) == 0) {
				used[j] = true;
				break;
			}
		}
		if (j == probs->n) {
			report_add(r, "missing %s %s at %s", what, code, path);
			bad = true;
		}
	}
	for (j = 0; j < probs->n; j++) {
		if (!used[j]) {
			report_add(r, "unexpected %s %s at %s (%s)", what,
			    error_code_name(probs->items[j].code),
			    probs->items[j].path, probs->items[j].message);
			bad = true;
		}
	}
	if (bad) {
		for (j = 0; j < probs->n; j++) {
			report_add(r, "  %s: %s at %s: %s", what,
			    error_code_name(probs->items[j].code),
			    probs->items[j].path, probs->items[j].message);
		}
	}
}

/* Compares a string the plan hands out with the expected JSON string or
 * null. */
static void
compare_nullable(struct report *r, const char *what, const char *actual,
    const json_t *expected)
{
	const char *want = json_string_value(expected);

	if (!json_is_string(expected) && !json_is_null(expected)) {
		fail_msg("%s: expected value must be a string or null", what);
	}
	if (want == NULL ? actual != NULL : actual == NULL ||
	    strcmp(actual, want) != 0) {
		report_add(r, "%s: expected %s, got %s", what,
		    want != NULL ? want : "null",
		    actual != NULL ? actual : "null");
	}
}

/* Checks what the "expect" object of a lint case says about plan. */
static void
compare_plan_facts(struct report *r, const struct plan *plan,
    const json_t *expect)
{
	static const char *const keys[] = { "version", "events", "phases",
		"needs_hash_key", "defs" };
	const json_t *v;
	const char *k, *name;
	json_t *facts;

	json_object_foreach((json_t *)expect, k, v) {
		size_t i;
		for (i = 0; i < N_OF(keys) && strcmp(k, keys[i]) != 0; i++) {
		}
		if (i == N_OF(keys)) {
			fail_msg("unknown key '%s' in expect", k);
		}
	}
	if ((v = json_object_get(expect, "version")) != NULL &&
	    plan_version(plan) != json_integer_value(v)) {
		report_add(r, "plan_version: expected %lld, got %ld",
		    (long long)json_integer_value(v), plan_version(plan));
	}
	if ((v = json_object_get(expect, "events")) != NULL &&
	    plan_event_count(plan) != (size_t)json_integer_value(v)) {
		report_add(r, "plan_event_count: expected %lld, got %zu",
		    (long long)json_integer_value(v), plan_event_count(plan));
	}
	if ((v = json_object_get(expect, "phases")) != NULL &&
	    plan_phase_count(plan) != (size_t)json_integer_value(v)) {
		report_add(r, "plan_phase_count: expected %lld, got %zu",
		    (long long)json_integer_value(v), plan_phase_count(plan));
	}
	if ((v = json_object_get(expect, "needs_hash_key")) != NULL &&
	    plan_needs_hash_key(plan) != json_is_true(v)) {
		report_add(r, "plan_needs_hash_key: expected %s",
		    json_is_true(v) ? "true" : "false");
	}
	json_object_foreach(json_object_get(expect, "defs"), name, facts) {
		const struct plan_event *def = plan_find_event(plan, name);
		char what[128];
		if (json_is_null(facts)) {
			if (def != NULL) {
				report_add(r, "plan_find_event(%s): expected "
				    "NULL", name);
			}
			continue;
		}
		if (def == NULL) {
			report_add(r, "plan_find_event(%s): NULL", name);
			continue;
		}
		snprintf(what, sizeof(what), "%s kind", name);
		compare_nullable(r, what, plan_event_kind_name(def),
		    json_object_get(facts, "kind"));
		snprintf(what, sizeof(what), "%s phase", name);
		compare_nullable(r, what, plan_event_phase(def),
		    json_object_get(facts, "phase"));
		snprintf(what, sizeof(what), "%s consent", name);
		compare_nullable(r, what, plan_event_consent(def),
		    json_object_get(facts, "consent"));
	}
}

static char *
write_temp(const char *text)
{
	char *path = strdup("/tmp/milepost-test-plan-XXXXXX");
	FILE *f;
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static const json_t *
base_doc(const char *name)
{
	const json_t *doc = json_object_get(json_object_get(data, "bases"),
	    name);

	assert_non_null(doc);
	return doc;
}

static void
hash_hex(const char *key, const void *bytes, size_t len,
    char out[PRIVACY_HEX_LEN])
{
	privacy_keyed_hash_hex(key, strlen(key), bytes, len, out);
}

static const char *
hash_key(void)
{
	const char *key = json_string_value(json_object_get(data,
	    "hash_key"));

	assert_non_null(key);
	return key;
}

/* --- lint cases ----------------------------------------------------------- */

static void
test_lint_case(void **state)
{
	static const char *const keys[] = { "case", "base", "patch", "plan",
		"problems", "expect" };
	const json_t *c = *state;
	const json_t *expected = json_object_get(c, "problems");
	const json_t *expect = json_object_get(c, "expect");
	struct plan_problems probs;
	struct report r = { "" };
	struct plan *plan, *quiet;
	json_t *doc;

	cases_check_keys(c, keys, N_OF(keys));
	if (!json_is_array(expected)) {
		fail_msg("%s: \"problems\" must be an array", cases_name(c));
	}
	doc = case_plan_doc(c, "small");
	assert_non_null(doc);
	plan_problems_init(&probs);
	plan = plan_load_json(doc, &probs);
	compare_plan_problems(&r, &probs, expected);
	if ((plan == NULL) != (json_array_size(expected) > 0)) {
		report_add(&r, "plan_load_json returned %s",
		    plan == NULL ? "NULL" : "a plan");
	}
	if (plan != NULL && expect != NULL) {
		compare_plan_facts(&r, plan, expect);
	} else if (expect != NULL) {
		report_add(&r, "no plan to check \"expect\" against");
	}
	/* Without a problem list the verdict is the same. */
	quiet = plan_load_json(doc, NULL);
	if ((quiet == NULL) != (plan == NULL)) {
		report_add(&r, "plan_load_json(doc, NULL) disagrees");
	}
	plan_free(quiet);
	plan_free(plan);
	plan_problems_finish(&probs);
	json_decref(doc);
	if (r.text[0] != '\0') {
		fail_msg("%s:\n%s", cases_name(c), r.text);
	}
}

/* --- validation cases ----------------------------------------------------- */

static enum plan_verdict
verdict_of(const json_t *c)
{
	const char *v = json_string_value(json_object_get(c, "verdict"));

	if (v != NULL && strcmp(v, "pass") == 0) {
		return PLAN_PASS;
	}
	if (v != NULL && strcmp(v, "reject") == 0) {
		return PLAN_REJECT;
	}
	if (v != NULL && strcmp(v, "quarantine") == 0) {
		return PLAN_QUARANTINE;
	}
	fail_msg("%s: \"verdict\" must be pass, reject or quarantine",
	    cases_name(c));
	return PLAN_PASS;
}

static const char *
verdict_name(enum plan_verdict v)
{
	switch (v) {
	case PLAN_PASS:
		return "pass";
	case PLAN_REJECT:
		return "reject";
	case PLAN_QUARANTINE:
		return "quarantine";
	}
	return "(invalid verdict)";
}

static void
test_validate_case(void **state)
{
	static const char *const keys[] = { "case", "base", "patch", "plan",
		"event", "received", "verdict", "errors", "warnings", "kind",
		"phase" };
	const json_t *c = *state;
	const char *received = json_string_value(json_object_get(c,
	    "received"));
	json_t *none = json_array(), *event, *v;
	struct event_problems parse_probs, errs, warns;
	/* Not NULL, so that a check leaving it unset shows. */
	const struct plan_event *def = (const void *)&def;
	enum plan_verdict want, got;
	struct report r = { "" };
	struct plan *plan;
	struct event ev;
	int64_t at;

	cases_check_keys(c, keys, N_OF(keys));
	want = verdict_of(c);
	if (!timeutil_parse_rfc3339(received != NULL ? received :
	    DEFAULT_RECEIVED, &at)) {
		fail_msg("%s: bad \"received\"", cases_name(c));
	}
	event = json_deep_copy(json_object_get(c, "event"));
	if (!event_parse_native(event, at, &ev, &parse_probs)) {
		fail_msg("%s: the event does not parse: %s at %s",
		    cases_name(c), error_code_name(parse_probs.items[0].code),
		    parse_probs.items[0].path);
	}
	plan = case_plan(c, "shop");
	/* Stale contents must not leak into the answer. */
	errs.n = warns.n = 5;
	got = plan_check_event(plan, &ev, NULL, &def, &errs, &warns);
	if (got != want) {
		report_add(&r, "verdict: expected %s, got %s",
		    verdict_name(want), verdict_name(got));
	}
	v = json_object_get(c, "errors");
	compare_event_problems(&r, "error", &errs, v != NULL ? v : none);
	v = json_object_get(c, "warnings");
	compare_event_problems(&r, "warning", &warns, v != NULL ? v : none);
	if ((v = json_object_get(c, "kind")) != NULL) {
		compare_nullable(&r, "kind", def != NULL ?
		    plan_event_kind_name(def) : NULL, v);
	}
	if ((v = json_object_get(c, "phase")) != NULL) {
		compare_nullable(&r, "phase", def != NULL ?
		    plan_event_phase(def) : NULL, v);
	}
	if (def != NULL && def != plan_find_event(plan, ev.name)) {
		report_add(&r, "def is not plan_find_event(plan, name)");
	}
	plan_free(plan);
	json_decref(event);
	json_decref(none);
	if (r.text[0] != '\0') {
		fail_msg("%s:\n%s", cases_name(c), r.text);
	}
}

/* --- redaction cases ------------------------------------------------------ */

/* expect with every {"$hash": TEXT} replaced by the keyed hash of TEXT. */
static json_t *
expand_hashes(const json_t *expect)
{
	json_t *out = json_deep_copy(expect), *v, *text;
	char hex[PRIVACY_HEX_LEN];
	const char *k;

	json_object_foreach(out, k, v) {
		text = json_object_get(v, "$hash");
		if (json_is_object(v) && json_object_size(v) == 1 &&
		    json_is_string(text)) {
			hash_hex(hash_key(), json_string_value(text),
			    json_string_length(text), hex);
			json_object_set_new(out, k, json_string(hex));
		}
	}
	return out;
}

static bool
names_equal_as_sets(const json_t *a, const json_t *b)
{
	size_t i;
	json_t *v;

	if (json_array_size(a) != json_array_size(b)) {
		return false;
	}
	json_array_foreach((json_t *)a, i, v) {
		size_t j;
		json_t *w;
		bool found = false;
		json_array_foreach((json_t *)b, j, w) {
			found = found || json_equal(v, w);
		}
		if (!found) {
			return false;
		}
	}
	return true;
}

static void
test_redact_case(void **state)
{
	static const char *const keys[] = { "case", "base", "patch", "plan",
		"event", "props", "drop_pii", "skip", "expect", "same",
		"done" };
	const json_t *c = *state;
	const char *name = json_string_value(json_object_get(c, "event"));
	const json_t *skip = json_object_get(c, "skip");
	const json_t *want_done = json_object_get(c, "done");
	bool same = json_is_true(json_object_get(c, "same"));
	json_t *props, *orig, *done, *out, *expect = NULL;
	const struct plan_event *def;
	struct report r = { "" };
	struct plan *plan;
	size_t refs;
	char *text;

	cases_check_keys(c, keys, N_OF(keys));
	if (name == NULL || !json_is_object(json_object_get(c, "props")) ||
	    !json_is_array(want_done) || same ==
	    (json_object_get(c, "expect") != NULL)) {
		fail_msg("%s: needs event, props, done, and one of same and "
		    "expect", cases_name(c));
	}
	plan = case_plan(c, "shop");
	def = plan_find_event(plan, name);
	props = json_deep_copy(json_object_get(c, "props"));
	orig = json_deep_copy(props);
	done = json_array();
	refs = props->refcount;
	out = plan_redact_props(def, props,
	    json_is_true(json_object_get(c, "drop_pii")), hash_key(),
	    strlen(hash_key()), skip, done);
	assert_non_null(out);
	if (same) {
		if (out != props) {
			text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
			report_add(&r, "expected the same object, got a copy: "
			    "%s", text);
			free(text);
		} else if (props->refcount != refs + 1) {
			report_add(&r, "refcount %zu, expected %zu",
			    props->refcount, refs + 1);
		}
	} else {
		expect = expand_hashes(json_object_get(c, "expect"));
		if (out == props) {
			report_add(&r, "expected a modified copy, got props "
			    "itself");
		}
		if (!json_equal(out, expect)) {
			char *want = json_dumps(expect, JSON_COMPACT |
			    JSON_SORT_KEYS);
			text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
			report_add(&r, "expected %s\n     got %s", want, text);
			free(want);
			free(text);
		}
	}
	if (!json_equal(props, orig)) {
		report_add(&r, "props passed in was modified");
	}
	if (!names_equal_as_sets(done, want_done)) {
		text = json_dumps(done, JSON_COMPACT);
		report_add(&r, "done: got %s", text);
		free(text);
	}
	json_decref(out);
	json_decref(expect);
	json_decref(props);
	json_decref(orig);
	json_decref(done);
	plan_free(plan);
	if (r.text[0] != '\0') {
		fail_msg("%s:\n%s", cases_name(c), r.text);
	}
}

/* --- fixed tests ---------------------------------------------------------- */

static void
test_default_plan(void **state)
{
	struct plan *plan = plan_new_default();

	(void)state;
	assert_non_null(plan);
	assert_int_equal(plan_version(plan), 0);
	assert_int_equal(plan_event_count(plan), 0);
	assert_int_equal(plan_phase_count(plan), 0);
	assert_false(plan_needs_hash_key(plan));
	assert_null(plan_document(plan));
	assert_null(plan_find_event(plan, "cart_added"));
	plan_free(plan);
	plan_free(NULL);
}

static void
test_load_json_keeps_a_reference(void **state)
{
	json_t *doc = json_deep_copy(base_doc("small"));
	struct plan_problems probs;
	const struct plan_event *def;
	struct plan *plan;

	(void)state;
	plan_problems_init(&probs);
	plan = plan_load_json(doc, &probs);
	assert_non_null(plan);
	assert_int_equal(probs.n, 0);
	assert_int_equal(doc->refcount, 2);
	assert_ptr_equal(plan_document(plan), doc);
	json_decref(doc);
	/* Strings handed out live as long as the plan. */
	def = plan_find_event(plan, "cart_added");
	assert_non_null(def);
	assert_string_equal(plan_event_kind_name(def), "milestone");
	assert_string_equal(plan_event_phase(def), "consider");
	assert_string_equal(plan_event_consent(def), "analytics");
	plan_free(plan);
	plan_problems_finish(&probs);
}

static void
test_failed_load_releases_the_document(void **state)
{
	json_t *doc = json_deep_copy(base_doc("small"));
	struct plan_problems probs;

	(void)state;
	json_object_set_new(doc, "version", json_integer(0));
	plan_problems_init(&probs);
	assert_null(plan_load_json(doc, &probs));
	assert_int_equal(probs.n, 1);
	assert_int_equal(doc->refcount, 1);
	plan_problems_finish(&probs);
	assert_null(probs.items);
	assert_int_equal(probs.n, 0);
	plan_problems_finish(&probs);		/* twice is fine */
	json_decref(doc);
}

static void
test_problems_are_capped(void **state)
{
	json_t *doc = json_deep_copy(base_doc("small"));
	struct plan_problems probs;
	char key[32];

	(void)state;
	for (int i = 0; i < PLAN_MAX_PROBLEMS + 50; i++) {
		snprintf(key, sizeof(key), "unknown_%03d", i);
		json_object_set_new(doc, key, json_true());
	}
	plan_problems_init(&probs);
	assert_null(plan_load_json(doc, &probs));
	assert_int_equal(probs.n, PLAN_MAX_PROBLEMS);
	assert_int_equal(probs.dropped, 50);
	for (size_t i = 0; i < probs.n; i++) {
		assert_memory_equal(probs.items[i].path, "$.unknown_", 10);
	}
	plan_problems_finish(&probs);
	json_decref(doc);
}

/* Loads path; expects NULL and exactly one problem, at "$", whose message
 * contains what. */
static void
expect_file_problem(const char *path, const char *what)
{
	struct plan_problems probs;

	plan_problems_init(&probs);
	assert_null(plan_load_file(path, &probs));
	assert_int_equal(probs.n, 1);
	assert_int_equal(probs.dropped, 0);
	assert_string_equal(probs.items[0].path, "$");
	if (strstr(probs.items[0].message, what) == NULL) {
		fail_msg("message '%s' lacks '%s'", probs.items[0].message,
		    what);
	}
	plan_problems_finish(&probs);
}

static void
test_load_file_missing(void **state)
{
	(void)state;
	expect_file_problem("/nonexistent-milepost-dir/plan.json",
	    "/nonexistent-milepost-dir/plan.json");
}

static void
test_load_file_bad_json(void **state)
{
	char *path = write_temp("{\"version\": 1, \"events\": {");

	(void)state;
	expect_file_problem(path, path);
	unlink(path);
	free(path);
}

static void
test_load_file_duplicate_keys(void **state)
{
	char *path = write_temp("{\"version\": 1, \"version\": 2}");

	(void)state;
	expect_file_problem(path, "duplicate");
	unlink(path);
	free(path);
}

static void
test_load_file_valid(void **state)
{
	char *text = json_dumps(base_doc("small"), JSON_INDENT(2));
	char *path = write_temp(text);
	struct plan_problems probs;
	struct plan *plan;

	(void)state;
	plan_problems_init(&probs);
	plan = plan_load_file(path, &probs);
	assert_non_null(plan);
	assert_int_equal(probs.n, 0);
	assert_int_equal(plan_version(plan), 3);
	assert_non_null(plan_document(plan));
	assert_true(json_equal((json_t *)plan_document(plan),
	    (json_t *)base_doc("small")));
	plan_free(plan);
	plan_problems_finish(&probs);
	unlink(path);
	free(path);
	free(text);
}

static bool
doc_has_pii_hash(const json_t *doc)
{
	const json_t *ev, *prop;
	const char *k, *p;

	json_object_foreach(json_object_get(doc, "events"), k, ev) {
		json_object_foreach(json_object_get(ev, "properties"), p,
		    prop) {
			const char *pii = json_string_value(json_object_get(
			    prop, "pii"));
			if (pii != NULL && strcmp(pii, "hash") == 0) {
				return true;
			}
		}
	}
	return false;
}

static void
test_example_plan_is_clean(void **state)
{
	struct plan_problems probs;
	struct report r = { "" };
	const char *name;
	json_error_t jerr;
	struct plan *plan;
	json_t *doc, *def;

	(void)state;
	if (example_plan_path == NULL) {
		skip();
	}
	plan_problems_init(&probs);
	plan = plan_load_file(example_plan_path, &probs);
	if (plan == NULL) {
		text_of_plan_problems(&r, &probs);
		fail_msg("%s has problems:\n%s", example_plan_path, r.text);
	}
	doc = json_load_file(example_plan_path, 0, &jerr);
	assert_non_null(doc);
	assert_int_equal(plan_version(plan),
	    json_integer_value(json_object_get(doc, "version")));
	assert_int_equal(plan_event_count(plan),
	    json_object_size(json_object_get(doc, "events")));
	assert_int_equal(plan_phase_count(plan),
	    json_array_size(json_object_get(doc, "phases")));
	assert_int_equal(plan_needs_hash_key(plan), doc_has_pii_hash(doc));
	json_object_foreach(json_object_get(doc, "events"), name, def) {
		const struct plan_event *d = plan_find_event(plan, name);
		assert_non_null(d);
		assert_string_equal(plan_event_kind_name(d),
		    json_string_value(json_object_get(def, "kind")));
	}
	json_decref(doc);
	plan_free(plan);
	plan_problems_finish(&probs);
}

/* The example of docs/plan.md, "Validation at ingest", against the
 * example plan. */
static void
test_example_plan_docs_example(void **state)
{
	json_t *ev_json = json_loads("{\"name\": \"cart_added\", "
	    "\"anonymous_id\": \"a1\", \"consent\": {\"analytics\": true}, "
	    "\"props\": {\"product_id\": \"P-1001\", \"quantity\": 0, "
	    "\"currency\": \"eur\"}}", 0, NULL);
	json_t *want = json_loads("[[\"out_of_range\", \"$.props.quantity\"],"
	    " [\"not_in_enum\", \"$.props.currency\"]]", 0, NULL);
	json_t *none = json_array();
	struct event_problems probs, errs, warns;
	const struct plan_event *def;
	struct report r = { "" };
	struct plan *plan;
	struct event ev;

	(void)state;
	if (example_plan_path == NULL) {
		json_decref(ev_json);
		json_decref(want);
		json_decref(none);
		skip();
	}
	plan = plan_load_file(example_plan_path, NULL);
	assert_non_null(plan);
	assert_true(event_parse_native(ev_json, timeutil_now_us(), &ev,
	    &probs));
	assert_int_equal(plan_check_event(plan, &ev, NULL, &def, &errs, &warns),
	    PLAN_REJECT);
	compare_event_problems(&r, "error", &errs, want);
	compare_event_problems(&r, "warning", &warns, none);
	assert_non_null(def);
	assert_string_equal(plan_event_kind_name(def), "milestone");
	plan_free(plan);
	json_decref(ev_json);
	json_decref(want);
	json_decref(none);
	if (r.text[0] != '\0') {
		fail_msg("%s", r.text);
	}
}

/* The plan's funnel is its phases up to the macro conversion's, the
 * macro taken out of its phase, then the macro; retain comes after. */
static void
test_example_plan_funnel_is_its_phases(void **state)
{
	static const char *const want[][5] = {
		{ "discover", "search_performed", "product_viewed", NULL },
		{ "consider", "cart_added", "cart_viewed", NULL },
		{ "decide", "checkout_started", "shipping_added", "payment_added",
		  NULL },
		{ "purchase_completed", "purchase_completed", NULL },
	};
	struct plan_funnel_step steps[10];
	struct plan *plan;
	size_t n;

	(void)state;
	if (example_plan_path == NULL) {
		skip();
	}
	plan = plan_load_file(example_plan_path, NULL);
	assert_non_null(plan);
	n = plan_funnel(plan, steps, 10);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		assert_string_equal(steps[i].label, want[i][0]);
		for (; want[i][k + 1] != NULL; k++) {
			assert_true(k < steps[i].n_events);
			assert_string_equal(steps[i].events[k], want[i][k + 1]);
		}
		assert_int_equal(steps[i].n_events, k);
	}
	/* Fewer slots than steps: the count still says how many. */
	assert_int_equal(plan_funnel(plan, steps, 2), 4);
	plan_free(plan);
	/* The default plan has no phases: no funnel. */
	plan = plan_new_default();
	assert_int_equal(plan_funnel(plan, steps, 10), 0);
	plan_free(plan);
}

/* A replayed event's redacted properties hold hashes: only their presence
 * is checked, not the pattern the value sent had to match. */
static void
test_redacted_properties_are_not_rechecked(void **state)
{
	static const char doc_text[] = "{\"version\": 1, \"macro_conversion\":"
	    " \"signup_completed\", \"phases\": [{\"name\": \"join\","
	    " \"milestones\": [\"signup_completed\"]}], \"events\": {"
	    "\"signup_completed\": {\"kind\": \"macro\", \"properties\": {"
	    "\"email\": {\"type\": \"string\", \"pattern\": \"@\","
	    " \"required\": true, \"pii\": \"hash\"}}}}}";
	json_t *doc = json_loads(doc_text, 0, NULL);
	json_t *ev_json = json_pack("{s:s, s:{s:s}}", "name",
	    "signup_completed", "props", "email", "5d41402abc4b2a76");
	json_t *redacted = json_pack("[s]", "email");
	json_t *absent = json_pack("{s:s}", "name", "signup_completed");
	struct event_problems probs, errs, warns;
	const struct plan_event *def;
	struct plan *plan;
	struct event ev;

	(void)state;
	plan = plan_load_json(doc, NULL);
	assert_non_null(plan);
	assert_true(event_parse_native(ev_json, timeutil_now_us(), &ev,
	    &probs));
	assert_int_equal(plan_check_event(plan, &ev, NULL, &def, &errs,
	    &warns), PLAN_REJECT);
	assert_int_equal(errs.items[0].code, ERR_PATTERN_MISMATCH);
	assert_int_equal(plan_check_event(plan, &ev, redacted, &def, &errs,
	    &warns), PLAN_PASS);
	/* Presence still counts. */
	assert_true(event_parse_native(absent, timeutil_now_us(), &ev,
	    &probs));
	assert_int_equal(plan_check_event(plan, &ev, redacted, &def, &errs,
	    &warns), PLAN_REJECT);
	assert_int_equal(errs.items[0].code, ERR_MISSING_PROPERTY);
	plan_free(plan);
	json_decref(doc);
	json_decref(ev_json);
	json_decref(redacted);
	json_decref(absent);
}

/* "All errors of an event are reported (up to 16)". */
static void
test_event_problems_are_capped(void **state)
{
	json_t *ev_json = json_pack("{s:s, s:{s:s, s:i}}", "name",
	    "purchase_completed", "props", "order_id", "A-1", "revenue", 1);
	struct event_problems probs, errs, warns;
	const struct plan_event *def;
	struct plan *plan;
	struct event ev;
	char key[16];

	(void)state;
	for (int i = 0; i < EVENT_MAX_PROBLEMS + 4; i++) {
		snprintf(key, sizeof(key), "extra_%02d", i);
		json_object_set_new(json_object_get(ev_json, "props"), key,
		    json_integer(i));
	}
	plan = plan_load_json((json_t *)base_doc("shop"), NULL);
	assert_non_null(plan);
	assert_true(event_parse_native(ev_json, timeutil_now_us(), &ev,
	    &probs));
	assert_int_equal(plan_check_event(plan, &ev, NULL, &def, &errs, &warns),
	    PLAN_REJECT);
	assert_int_equal(errs.n, EVENT_MAX_PROBLEMS);
	assert_int_equal(warns.n, 0);
	for (size_t i = 0; i < errs.n; i++) {
		assert_int_equal(errs.items[i].code, ERR_UNEXPECTED_PROPERTY);
	}
	plan_free(plan);
	json_decref(ev_json);
}

static void
test_redact_null_props(void **state)
{
	struct plan *plan;

	(void)state;
	plan = plan_load_json((json_t *)base_doc("shop"), NULL);
	assert_non_null(plan);
	assert_null(plan_redact_props(plan_find_event(plan,
	    "newsletter_subscribed"), NULL, false, hash_key(),
	    strlen(hash_key()), NULL, NULL));
	assert_null(plan_redact_props(NULL, NULL, true, NULL, 0, NULL,
	    NULL));
	plan_free(plan);
}

static void
test_redact_without_def(void **state)
{
	json_t *props = json_pack("{s:s}", "email", "alice@example.com");
	json_t *done = json_array();
	json_t *out;

	(void)state;
	out = plan_redact_props(NULL, props, true, NULL, 0, NULL, done);
	assert_ptr_equal(out, props);
	assert_int_equal(props->refcount, 2);
	assert_int_equal(json_array_size(done), 0);
	json_decref(out);
	json_decref(props);
	json_decref(done);
}

/* Hashes email of newsletter_subscribed under key. */
static void
redacted_email(const struct plan *plan, const char *key, const char *value,
    const char *source, char out[PRIVACY_HEX_LEN])
{
	json_t *props = json_pack("{s:s}", "email", value);
	json_t *red;

	if (source != NULL) {
		json_object_set_new(props, "source", json_string(source));
	}
	/* done may be NULL. */
	red = plan_redact_props(plan_find_event(plan,
	    "newsletter_subscribed"), props, false, key, strlen(key), NULL,
	    NULL);
	assert_non_null(red);
	assert_true(json_is_string(json_object_get(red, "email")));
	snprintf(out, PRIVACY_HEX_LEN, "%s", json_string_value(
	    json_object_get(red, "email")));
	json_decref(red);
	json_decref(props);
}

static void
test_redact_hash_is_keyed_and_stable(void **state)
{
	static const char other_key[] = "another-key-of-32-bytes-00000000";
	char a[PRIVACY_HEX_LEN], b[PRIVACY_HEX_LEN], c[PRIVACY_HEX_LEN];
	char d[PRIVACY_HEX_LEN], want[PRIVACY_HEX_LEN];
	struct plan *plan;

	(void)state;
	plan = plan_load_json((json_t *)base_doc("shop"), NULL);
	assert_non_null(plan);
	redacted_email(plan, hash_key(), "alice@example.com", NULL, a);
	redacted_email(plan, hash_key(), "alice@example.com", "footer", b);
	redacted_email(plan, other_key, "alice@example.com", NULL, c);
	redacted_email(plan, hash_key(), "alice@example.con", NULL, d);
	assert_int_equal(strlen(a), 64);
	for (size_t i = 0; i < 64; i++) {
		assert_non_null(strchr("0123456789abcdef", a[i]));
	}
	hash_hex(hash_key(), "alice@example.com", 17, want);
	assert_string_equal(a, want);
	assert_string_equal(a, b);		/* equal inputs, equal hashes */
	assert_string_not_equal(a, c);		/* another key */
	assert_string_not_equal(a, d);		/* another value */
	plan_free(plan);
}

/* --- main ----------------------------------------------------------------- */

static int
group_setup(void **state)
{
	struct error err;

	(void)state;		/* a group state would hide the cases' ones */
	return privacy_init(&err) ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static const struct cases_section sections[] = {
		{ "lint", "lint", test_lint_case },
		{ "validate", "validate", test_validate_case },
		{ "redact", "redact", test_redact_case },
	};
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_default_plan),
		cmocka_unit_test(test_example_plan_funnel_is_its_phases),
		cmocka_unit_test(test_load_json_keeps_a_reference),
		cmocka_unit_test(test_failed_load_releases_the_document),
		cmocka_unit_test(test_problems_are_capped),
		cmocka_unit_test(test_load_file_missing),
		cmocka_unit_test(test_load_file_bad_json),
		cmocka_unit_test(test_load_file_duplicate_keys),
		cmocka_unit_test(test_load_file_valid),
		cmocka_unit_test(test_example_plan_is_clean),
		cmocka_unit_test(test_example_plan_docs_example),
		cmocka_unit_test(test_redacted_properties_are_not_rechecked),
		cmocka_unit_test(test_event_problems_are_capped),
		cmocka_unit_test(test_redact_null_props),
		cmocka_unit_test(test_redact_without_def),
		cmocka_unit_test(test_redact_hash_is_keyed_and_stable),
	};

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: %s plans.json [config/plan.json]\n",
		    argv[0]);
		return 2;
	}
	example_plan_path = argc == 3 ? argv[2] : NULL;
	return cases_run("plan", argv[1], &data, sections, N_OF(sections),
	    fixed, N_OF(fixed), group_setup);
}
