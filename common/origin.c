/* origin.c - browser origins a site accepts events from. */
#include "common/origin.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WILDCARD "*."

/* Length of the scheme and "://" of s (http or https only), 0 if none. */
static size_t
scheme_len(const char *s)
{
	if (strncasecmp(s, "https://", 8) == 0) {
		return 8;
	}
	return strncasecmp(s, "http://", 7) == 0 ? 7 : 0;
}

static bool
is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* True if [s, s + n) is a host (letters, digits, '-', '.', or an IPv6
 * literal in brackets) with an optional ":port". */
static bool
host_port_is_valid(const char *s, size_t n)
{
	size_t i = 0, port_digits = 0;

	if (n == 0) {
		return false;
	}
	if (s[0] == '[') {
		while (i < n && s[i] != ']') {
			i++;
		}
		if (i == n) {
			return false;
		}
		i++;
	} else {
		for (; i < n && s[i] != ':'; i++) {
			if (!is_host_char(s[i])) {
				return false;
			}
		}
		if (i == 0 || s[0] == '.' || s[i - 1] == '.') {
			return false;
		}
	}
	if (i == n) {
		return true;
	}
	if (s[i++] != ':') {
		return false;
	}
	for (; i < n; i++, port_digits++) {
		if (s[i] < '0' || s[i] > '9') {
			return false;
		}
	}
	return port_digits >= 1 && port_digits <= 5;
}

bool
origin_pattern_is_valid(const char *pattern, char *why, size_t why_size)
{
	size_t len = strlen(pattern), skip = scheme_len(pattern);
	const char *host = pattern + skip;

	if (len >= ORIGIN_MAX) {
		snprintf(why, why_size, "is longer than %d bytes",
		    ORIGIN_MAX - 1);
		return false;
	}
	if (skip == 0) {
		snprintf(why, why_size, "must start with https:// or http://");
		return false;
	}
	if (strncmp(host, WILDCARD, 2) == 0) {
		host += 2;
	}
	if (!host_port_is_valid(host, strlen(host))) {
		snprintf(why, why_size, "must be scheme://host[:port] with no "
		    "path (e.g. https://shop.example or "
		    "https://*.shop.example)");
		return false;
	}
	return true;
}

bool
origin_matches(const char *pattern, const char *origin)
{
	size_t skip = scheme_len(pattern), olen = strlen(origin), n;

	if (skip == 0 || olen >= ORIGIN_MAX || scheme_len(origin) != skip ||
	    strncasecmp(pattern, origin, skip) != 0) {
		return false;
	}
	pattern += skip;
	origin += skip;
	olen -= skip;
	if (strncmp(pattern, WILDCARD, 2) != 0) {
		return strcasecmp(pattern, origin) == 0;
	}
	/* "*.shop.example" needs at least one label before ".shop.example". */
	pattern += 1;
	n = strlen(pattern);
	if (olen <= n || origin[0] == '.' ||
	    strcasecmp(origin + olen - n, pattern) != 0) {
		return false;
	}
	for (size_t i = 0; i < olen - n; i++) {
		if (!is_host_char(origin[i])) {
			return false;
		}
	}
	return true;
}

bool
origin_allowed(char *const *patterns, size_t n, const char *origin)
{
	for (size_t i = 0; i < n; i++) {
		if (origin_matches(patterns[i], origin)) {
			return true;
		}
	}
	return false;
}
