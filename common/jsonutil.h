/* jsonutil.h - small helpers over jansson values. */
#ifndef MILEPOST_COMMON_JSONUTIL_H
#define MILEPOST_COMMON_JSONUTIL_H

#include <jansson.h>
#include <stddef.h>

/* Nesting depth: 0 for a scalar, 1 for an empty or flat container, one
 * more per level. Stops counting at limit + 1 so that hostile input costs
 * no more than needed. */
size_t jsonutil_depth(const json_t *v, size_t limit);

/* In one walk, v's depth (as jsonutil_depth, with depth_limit) and the
 * byte length of its longest string, object keys included, into
 * *longest. Like the depth, the walk stops once the longest passes
 * string_limit. */
size_t jsonutil_extent(const json_t *v, size_t depth_limit,
    size_t string_limit, size_t *longest);

/* The number of JSON values (objects, arrays, strings that are not keys,
 * numbers, true, false, null) in the JSON text of len bytes, counted
 * without parsing, so that a body of many tiny values is refused before
 * the parser allocates a node for each. Counting stops once it passes
 * limit (the result is then limit + 1). Exact for valid JSON; for other
 * text any count, which the parser then refuses anyway. */
size_t jsonutil_count_values(const char *text, size_t len, size_t limit);

/* v as JSON text (json_dumps with flags), each real number written as
 * the shortest text that reads back as the same double (0.022, not
 * 0.021999999999999999), keeping a ".0" or an exponent so that it still
 * reads as a real. The caller frees the text; NULL out of memory. */
char *jsonutil_dumps(const json_t *v, size_t flags);

#endif
