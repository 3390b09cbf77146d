/* jsonutil.c - helpers over jansson values. */
#include "common/jsonutil.h"

#include <string.h>

size_t
jsonutil_depth(const json_t *v, size_t limit)
{
	size_t deepest = 0, d, i;
	const char *k;
	json_t *child;

	if (!json_is_object(v) && !json_is_array(v)) {
		return 0;
	}
	if (limit == 0) {
		return 1;
	}
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, child) {
			d = jsonutil_depth(child, limit - 1);
			deepest = d > deepest ? d : deepest;
			if (deepest >= limit) {
				break;
			}
		}
	} else {
		json_array_foreach(v, i, child) {
			d = jsonutil_depth(child, limit - 1);
			deepest = d > deepest ? d : deepest;
			if (deepest >= limit) {
				break;
			}
		}
	}
	return deepest + 1;
}

size_t
jsonutil_longest_string(const json_t *v)
{
	size_t longest = 0, n, i;
	const char *k;
	json_t *child;

	if (json_is_string(v)) {
		return json_string_length(v);
	}
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, child) {
			n = strlen(k);
			longest = n > longest ? n : longest;
			n = jsonutil_longest_string(child);
			longest = n > longest ? n : longest;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child) {
			n = jsonutil_longest_string(child);
			longest = n > longest ? n : longest;
		}
	}
	return longest;
}
