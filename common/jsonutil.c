/* jsonutil.c - helpers over jansson values. */
#include "common/jsonutil.h"

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
