/* ere.c - guarded regcomp. */
#include "common/ere.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* glibc's regcomp copies the tree for every quantifier stacked on another
 * (a*+++...) or for large bounds, until memory runs out: refuse those. An
 * ERE leaves stacked quantifiers undefined anyway. */
static const char *
regex_untamed(const char *src)
{
	bool in_bracket = false, after_quantifier = false;
	const char *first = NULL;	/* the bracket's first member */

	if (strlen(src) > ERE_MAX_LEN) {
		return "longer than 512 bytes";
	}
	for (const char *p = src; *p != '\0'; p++) {
		bool quantifier = false;
		if (in_bracket) {
			const char *close;
			/* [:class:], [.coll.] and [=equiv=] hold a ']' of
			 * their own; a ']' first in the bracket is a member. */
			if (*p == '[' && (p[1] == ':' || p[1] == '.' ||
			    p[1] == '=') && (close = strchr(p + 2, p[1])) !=
			    NULL && close[1] == ']') {
				p = close + 1;
			} else if (*p == ']' && p != first) {
				in_bracket = false;
			}
			continue;
		}
		if (*p == '\\' && p[1] != '\0') {
			p++;
		} else if (*p == '[') {
			in_bracket = true;
			first = p[1] == '^' ? p + 2 : p + 1;
		} else if (*p == '*' || *p == '+' || *p == '?') {
			quantifier = true;
		} else if (*p == '{') {
			char *end;
			long n = strtol(p + 1, &end, 10);
			if (n > ERE_MAX_BOUND || (*end == ',' &&
			    strtol(end + 1, &end, 10) > ERE_MAX_BOUND)) {
				return "a {m,n} bound is over 100";
			}
			if (*end == '}') {
				p = end;
			}
			quantifier = true;
		}
		if (quantifier && after_quantifier) {
			return "a quantifier follows another one";
		}
		after_quantifier = quantifier;
	}
	return NULL;
}

bool
ere_compile(regex_t *re, const char *src, int extra_flags, char *msg,
    size_t msg_size)
{
	const char *untamed = regex_untamed(src);
	char why[160];
	int rc;

	if (untamed != NULL) {
		snprintf(msg, msg_size, "regular expression refused: %s",
		    untamed);
		return false;
	}
	rc = regcomp(re, src, REG_EXTENDED | REG_NOSUB | extra_flags);
	if (rc != 0) {
		regerror(rc, re, why, sizeof(why));
		regfree(re);
		snprintf(msg, msg_size, "invalid regular expression: %s", why);
		return false;
	}
	return true;
}
