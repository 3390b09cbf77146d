/* routes.c - every endpoint of the daemon, in one table. */
#include "server/routes.h"

#include <string.h>

#include "server/api_health.h"
#include "server/ingest.h"

static const struct route routes[] = {
	{ "POST", "/v1/events", ingest_native },
	{ "GET", "/healthz", api_healthz },
	{ "GET", "/readyz", api_readyz },
};

const struct route *
routes_find(const char *method, const char *path, char *allow,
    size_t allow_size)
{
	allow[0] = '\0';
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].path, path) != 0) {
			continue;
		}
		if (strcmp(routes[i].method, method) == 0) {
			return &routes[i];
		}
		if (allow[0] != '\0') {
			strncat(allow, ", ", allow_size - strlen(allow) - 1);
		}
		strncat(allow, routes[i].method, allow_size - strlen(allow) - 1);
	}
	return NULL;
}
