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
