/* funnel.h - what a funnel query asks for, read from the API's text
 * parameters and from alert rules (the computation itself is SQL, in
 * server/api_funnel.c).
 *
 * Steps are a comma list of 2..FUNNEL_STEPS_MAX steps. A step is an event
 * name, or a set of up to FUNNEL_SET_MAX of them joined by '|' (any of
 * them reaches the step: search_performed|product_viewed), with at most
 * one property filter in brackets, for each event of the step:
 * cart_added[category=shoes]. A filter's value runs to the closing
 * bracket, so it may hold commas; it may not hold ']'. No I/O. */
#ifndef MILEPOST_COMMON_FUNNEL_H
#define MILEPOST_COMMON_FUNNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/event.h"

#define FUNNEL_STEPS_MIN 2
#define FUNNEL_STEPS_MAX 10
#define FUNNEL_FILTERS_MAX 5
#define FUNNEL_KEY_MAX 64
#define FUNNEL_VALUE_MAX 200
#define FUNNEL_SET_MAX 16
#define FUNNEL_SET_TEXT (FUNNEL_SET_MAX * (EVENT_NAME_MAX + 1))

struct funnel_step {
	char name[FUNNEL_SET_TEXT];		/* an event, or a|b|c */
	char label[EVENT_NAME_MAX + 1];		/* a phase's name, or "" */
	char key[FUNNEL_KEY_MAX + 1];		/* "" when no filter */
	char value[FUNNEL_VALUE_MAX + 1];	/* compared as text */
};

/* Reads text into steps[0..*n). False with a sentence in why (for the
 * API's invalid_parameter message) when it is not 2..FUNNEL_STEPS_MAX
 * well-formed steps. Names are checked for their characters only
 * (lower-case letters, digits, '_'); whether the plan knows them is the
 * caller's to judge. */
bool funnel_parse_steps(const char *text, struct funnel_step *steps,
    size_t *n, char *why, size_t why_size);

struct plan;

/* The plan's funnel (plan_funnel) as steps: sets labelled with their
 * phase. Returns how many steps there are, as plan_funnel. */
size_t funnel_plan_steps(const struct plan *plan, struct funnel_step *steps,
    size_t max);

/* The i-th event of st (from 0) into out; false past the last. */
bool funnel_step_event(const struct funnel_step *st, size_t i,
    char out[EVENT_NAME_MAX + 1]);

/* True if name has the characters and length of an event name. */
bool funnel_name_valid(const char *name);

/* What a funnel's entry can be broken down or filtered by: where its visit
 * came from, its device, or a property of the entry event. */
enum funnel_dim {
	FUNNEL_DIM_NONE,
	FUNNEL_DIM_CHANNEL,
	FUNNEL_DIM_UTM_SOURCE,
	FUNNEL_DIM_UTM_MEDIUM,
	FUNNEL_DIM_UTM_CAMPAIGN,
	FUNNEL_DIM_DEVICE,
	FUNNEL_DIM_BROWSER,
	FUNNEL_DIM_LANDING_PATH,
	FUNNEL_DIM_PROP,
	FUNNEL_DIM_COUNT
};

#define FUNNEL_DIM_CHOICES "channel, utm_source, utm_medium, utm_campaign, " \
	"device, browser, landing_path or prop:KEY"

struct funnel_dim_ref {
	enum funnel_dim dim;
	char key[FUNNEL_KEY_MAX + 1];		/* FUNNEL_DIM_PROP's property */
	char value[FUNNEL_VALUE_MAX + 1];	/* a filter's value */
};

/* The dimension named by text[0..len) ("channel", ..., "prop:KEY") into
 * out (value left empty); false if it names none. */
bool funnel_dim_parse(const char *text, size_t len, struct funnel_dim_ref *out);

/* The name of a dimension: "prop:" for FUNNEL_DIM_PROP, whose key follows. */
const char *funnel_dim_name(enum funnel_dim dim);

#endif
