/* funnel.c - reading a funnel's steps. */
#include "common/funnel.h"

#include <stdio.h>
#include <string.h>

#include "common/plan.h"

/* Copies the span [s, s + len) into out (size bytes) if it fits and every
 * byte is in allowed (NULL: any but control characters). */
static bool
take(const char *s, size_t len, char *out, size_t size, const char *allowed)
{
	if (len == 0 || len >= size) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (allowed != NULL ? strchr(allowed, c) == NULL || c == '\0' :
		    c < 0x20 || c == 0x7f) {
			return false;
		}
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_"
#define KEY_CHARS NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

bool
funnel_step_event(const struct funnel_step *st, size_t i,
    char out[EVENT_NAME_MAX + 1])
{
	const char *p = st->name;

	for (; i > 0 && p != NULL; i--) {
		p = strchr(p, '|');
		p = p != NULL ? p + 1 : NULL;
	}
	if (p == NULL || *p == '\0') {
		return false;
	}
	return take(p, strcspn(p, "|"), out, EVENT_NAME_MAX + 1, NAME_CHARS);
}

size_t
funnel_plan_steps(const struct plan *plan, struct funnel_step *steps,
    size_t max)
{
	struct plan_funnel_step ps[FUNNEL_STEPS_MAX];
	size_t n = plan_funnel(plan, ps, FUNNEL_STEPS_MAX);

	for (size_t i = 0; i < n && i < max && i < FUNNEL_STEPS_MAX; i++) {
		struct funnel_step *st = &steps[i];
		size_t used = 0;
		memset(st, 0, sizeof(*st));
		snprintf(st->label, sizeof(st->label), "%s", ps[i].label);
		for (size_t k = 0; k < ps[i].n_events; k++) {
			int w = snprintf(st->name + used, sizeof(st->name) - used,
			    "%s%s", k > 0 ? "|" : "", ps[i].events[k]);
			used += w > 0 ? (size_t)w : 0;
		}
	}
	return n;
}

/* Each event of a set is an event name; at most FUNNEL_SET_MAX. */
static bool
set_valid(const char *s, size_t len)
{
	char one[EVENT_NAME_MAX + 1];
	size_t n = 0;

	for (const char *end = s + len; s <= end; n++) {
		const char *bar = memchr(s, '|', (size_t)(end - s));
		size_t part = bar != NULL ? (size_t)(bar - s) : (size_t)(end - s);
		if (n == FUNNEL_SET_MAX || !take(s, part, one, sizeof(one),
		    NAME_CHARS)) {
			return false;
		}
		s += part + 1;
	}
	return true;
}

bool
funnel_parse_steps(const char *text, struct funnel_step *steps, size_t *n,
    char *why, size_t why_size)
{
	const char *p = text;

	*n = 0;
	for (;;) {
		struct funnel_step *st = &steps[*n];
		size_t len = strcspn(p, "[,");

		if (*n == FUNNEL_STEPS_MAX) {
			snprintf(why, why_size, "steps takes at most %d events",
			    FUNNEL_STEPS_MAX);
			return false;
		}
		memset(st, 0, sizeof(*st));
		if (!set_valid(p, len) || !take(p, len, st->name,
		    sizeof(st->name), NAME_CHARS "|")) {
			snprintf(why, why_size, "step %zu must be an event name "
			    "(a-z, 0-9, _; at most %d bytes), or up to %d of them "
			    "joined by |", *n + 1, EVENT_NAME_MAX, FUNNEL_SET_MAX);
			return false;
		}
		p += len;
		if (*p == '[') {
			const char *eq = strchr(p, '='), *end = strchr(p, ']');
			if (eq == NULL || end == NULL || eq > end ||
			    !take(p + 1, (size_t)(eq - p - 1), st->key,
			    sizeof(st->key), KEY_CHARS) ||
			    !take(eq + 1, (size_t)(end - eq - 1), st->value,
			    sizeof(st->value), NULL)) {
				snprintf(why, why_size, "step %zu: a filter is "
				    "[property=value] (property: letters, digits, "
				    "_; value: 1 to %d bytes without ']')",
				    *n + 1, FUNNEL_VALUE_MAX);
				return false;
			}
			p = end + 1;
		}
		(*n)++;
		if (*p == '\0') {
			break;
		}
		if (*p != ',') {
			snprintf(why, why_size, "steps are separated by commas "
			    "(after step %zu)", *n);
			return false;
		}
		p++;
	}
	if (*n < FUNNEL_STEPS_MIN) {
		snprintf(why, why_size, "steps takes at least %d events",
		    FUNNEL_STEPS_MIN);
		return false;
	}
	return true;
}

bool
funnel_name_valid(const char *name)
{
	char out[EVENT_NAME_MAX + 1];

	return take(name, strlen(name), out, sizeof(out), NAME_CHARS);
}

static const char *const dim_names[FUNNEL_DIM_COUNT] = {
	[FUNNEL_DIM_NONE] = "",
	[FUNNEL_DIM_CHANNEL] = "channel",
	[FUNNEL_DIM_UTM_SOURCE] = "utm_source",
	[FUNNEL_DIM_UTM_MEDIUM] = "utm_medium",
	[FUNNEL_DIM_UTM_CAMPAIGN] = "utm_campaign",
	[FUNNEL_DIM_DEVICE] = "device",
	[FUNNEL_DIM_BROWSER] = "browser",
	[FUNNEL_DIM_LANDING_PATH] = "landing_path",
	[FUNNEL_DIM_PROP] = "prop:",
};

const char *
funnel_dim_name(enum funnel_dim dim)
{
	return (unsigned)dim < FUNNEL_DIM_COUNT ? dim_names[dim] : "";
}

bool
funnel_dim_parse(const char *text, size_t len, struct funnel_dim_ref *out)
{
	size_t plen = strlen(dim_names[FUNNEL_DIM_PROP]);

	memset(out, 0, sizeof(*out));
	if (len > plen && strncmp(text, dim_names[FUNNEL_DIM_PROP], plen) == 0) {
		out->dim = FUNNEL_DIM_PROP;
		return take(text + plen, len - plen, out->key, sizeof(out->key),
		    KEY_CHARS);
	}
	for (int i = FUNNEL_DIM_CHANNEL; i < FUNNEL_DIM_PROP; i++) {
		if (strlen(dim_names[i]) == len &&
		    strncmp(text, dim_names[i], len) == 0) {
			out->dim = (enum funnel_dim)i;
			return true;
		}
	}
	return false;
}
