/* plan_framework.c - the framework map of a plan, as JSON. Everything is
 * read from the plan's own document, which plan.c has already linted, so
 * the shapes here are known good: a missing key is simply absent. */
#include "common/plan_framework.h"

#include <string.h>

/* The plan's definition document of the event name, or NULL. */
static const json_t *
event_doc(const struct plan *plan, const char *name)
{
	return json_object_get(json_object_get(plan_document(plan), "events"),
	    name);
}

/* The target block, copied so that the answer owns it; null without. */
static json_t *
target_json(const json_t *doc)
{
	const json_t *t = json_object_get(doc, "target");

	return t != NULL ? json_deep_copy(t) : json_null();
}

/* One event as the map shows it. NULL when out of memory. */
static json_t *
event_json(const struct plan *plan, const char *name)
{
	const struct plan_event *def = plan_find_event(plan, name);
	const json_t *doc = event_doc(plan, name);

	return json_pack("{s:s, s:s?, s:s?, s:s?, s:o}",
	    "name", name,
	    "kind", def != NULL ? plan_event_kind_name(def) : NULL,
	    "description", json_string_value(json_object_get(doc,
	    "description")),
	    "owner", json_string_value(json_object_get(doc, "owner")),
	    "target", target_json(doc));
}

static json_t *
phase_json(const struct plan *plan, const json_t *phase)
{
	json_t *milestones = json_array();
	const json_t *m;
	size_t i;

	if (milestones == NULL) {
		return NULL;
	}
	json_array_foreach(json_object_get(phase, "milestones"), i, m) {
		if (json_array_append_new(milestones, event_json(plan,
		    json_string_value(m))) != 0) {
			json_decref(milestones);
			return NULL;
		}
	}
	return json_pack("{s:s?, s:s?, s:o}",
	    "name", json_string_value(json_object_get(phase, "name")),
	    "description", json_string_value(json_object_get(phase,
	    "description")),
	    "milestones", milestones);
}

static json_t *
phases_json(const struct plan *plan)
{
	json_t *list = json_array();
	const json_t *phase;
	size_t i;

	if (list == NULL) {
		return NULL;
	}
	json_array_foreach(json_object_get(plan_document(plan), "phases"), i,
	    phase) {
		if (json_array_append_new(list, phase_json(plan, phase)) != 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

/* Secondary actions, in name order (the plan keeps its events so). */
static json_t *
secondary_json(const struct plan *plan)
{
	json_t *list = json_array();
	const struct plan_event *def;

	if (list == NULL) {
		return NULL;
	}
	for (size_t i = 0; (def = plan_event_at(plan, i)) != NULL; i++) {
		if (strcmp(plan_event_kind_name(def), "secondary") != 0) {
			continue;
		}
		if (json_array_append_new(list, event_json(plan,
		    plan_event_name(def))) != 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

json_t *
plan_framework_json(const struct plan *plan)
{
	const json_t *doc = plan_document(plan);
	const char *macro = json_string_value(json_object_get(doc,
	    "macro_conversion"));

	/* json_pack steals the "o" values even when it fails, and fails on
	 * a NULL one, so an allocation failure anywhere gives NULL. */
	return json_pack("{s:I, s:s?, s:s?, s:o, s:o, s:o}",
	    "version", (json_int_t)plan_version(plan),
	    "name", json_string_value(json_object_get(doc, "name")),
	    "description", json_string_value(json_object_get(doc,
	    "description")),
	    "macro_conversion", macro != NULL ? event_json(plan, macro) :
	    json_null(),
	    "phases", phases_json(plan),
	    "secondary_actions", secondary_json(plan));
}
