/* funnel.c - reading a funnel's steps. */
#include "common/funnel.h"

#include <stdio.h>
#include <string.h>

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
		if (!take(p, len, st->name, sizeof(st->name), NAME_CHARS)) {
			snprintf(why, why_size, "step %zu must be an event name "
			    "(a-z, 0-9, _; at most %d bytes)", *n + 1,
			    EVENT_NAME_MAX);
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
