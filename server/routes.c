/* routes.c - every endpoint of the daemon, in one table. */
#include "server/routes.h"

#include <string.h>

#include "server/api_health.h"
#include "server/api_metrics.h"
#include "server/api_people.h"
#include "server/api_rejected.h"
#include "server/ingest.h"

static const struct route routes[] = {
	{ "POST", "/v1/events", ingest_native },
	{ "GET", "/healthz", api_healthz },
	{ "GET", "/readyz", api_readyz },
	{ "GET", "/metrics", api_metrics },
	{ "GET", "/api/v1/rejected", api_rejected_list },
	{ "POST", "/api/v1/rejected/replay", api_rejected_replay },
	{ "DELETE", "/api/v1/people/", api_people_erase },
};

/* The parameter of path under route r, "" for an exact match, NULL if r
 * does not match. */
static const char *
route_match(const struct route *r, const char *path)
{
	size_t n = strlen(r->path);

	if (n > 0 && r->path[n - 1] == '/') {
		return strncmp(r->path, path, n) == 0 && path[n] != '\0' ?
		    path + n : NULL;
	}
	return strcmp(r->path, path) == 0 ? "" : NULL;
}

const struct route *
routes_find(const char *method, const char *path, char *allow,
    size_t allow_size, const char **param)
{
	allow[0] = '\0';
	*param = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const char *rest = route_match(&routes[i], path);
		if (rest == NULL) {
			continue;
		}
		if (strcmp(routes[i].method, method) == 0) {
			*param = rest[0] != '\0' ? rest : NULL;
			return &routes[i];
		}
		if (allow[0] != '\0') {
			strncat(allow, ", ", allow_size - strlen(allow) - 1);
		}
		strncat(allow, routes[i].method, allow_size - strlen(allow) - 1);
	}
	return NULL;
}
