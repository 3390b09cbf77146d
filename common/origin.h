/* origin.h - browser origins a site accepts events from.
 *
 * A site's allowed_origins are patterns: "https://shop.example" (exactly
 * that origin), or the scheme followed by "*.shop.example" (any subdomain
 * of it, at any depth, but not shop.example itself: list both when both
 * post). A port,
 * when the site has one, is part of the pattern. Scheme and host compare
 * without regard to case, as browsers lower-case them anyway. No I/O. */
#ifndef MILEPOST_COMMON_ORIGIN_H
#define MILEPOST_COMMON_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

/* Longest origin (or pattern) looked at; longer ones never match. */
#define ORIGIN_MAX 256

/* True if pattern is a valid allowed_origins entry; otherwise false with
 * the reason in why. */
bool origin_pattern_is_valid(const char *pattern, char *why,
    size_t why_size);

/* True if origin (an Origin header's value) matches pattern. The origin
 * "null" (sandboxed frames, file: pages) matches nothing. */
bool origin_matches(const char *pattern, const char *origin);

/* True if origin matches one of the n patterns. */
bool origin_allowed(char *const *patterns, size_t n, const char *origin);

#endif
