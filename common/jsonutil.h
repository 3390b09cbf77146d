/* jsonutil.h - small helpers over jansson values. */
#ifndef MILEPOST_COMMON_JSONUTIL_H
#define MILEPOST_COMMON_JSONUTIL_H

#include <jansson.h>
#include <stddef.h>

/* Nesting depth: 0 for a scalar, 1 for an empty or flat container, one
 * more per level. Stops counting at limit + 1 so that hostile input costs
 * no more than needed. */
size_t jsonutil_depth(const json_t *v, size_t limit);

/* The byte length of the longest string in v, object keys included. Walks
 * the whole value: check its depth first. */
size_t jsonutil_longest_string(const json_t *v);

#endif
