/* routes.c - every endpoint of the daemon, in one table. */
#include "server/routes.h"

#include <string.h>

#include "server/api_funnel.h"
#include "server/api_health.h"
#include "server/api_metrics.h"
#include "server/api.h"
#include "server/api_alerts.h"
#include "server/api_attribution.h"
#include "server/api_milestones.h"
#include "server/api_people.h"
#include "server/api_plan.h"
#include "server/api_rejected.h"
#include "server/api_signals.h"
#include "server/cors.h"
#include "server/ingest.h"
#include "server/segment_settings.h"
#include "server/static_files.h"

/* Browser-facing routes (true) take CORS preflights (server/cors.h). */
static const struct route routes[] = {
	{ "POST", "/v1/events", ingest_native, true },
	/* Segment's HTTP API, and the short paths its browser library
	 * posts to (the type's first letter; b for batches). */
	{ "POST", "/v1/track", ingest_segment_track, true },
	{ "POST", "/v1/t", ingest_segment_track, true },
	{ "POST", "/v1/page", ingest_segment_page, true },
	{ "POST", "/v1/p", ingest_segment_page, true },
	{ "POST", "/v1/screen", ingest_segment_screen, true },
	{ "POST", "/v1/s", ingest_segment_screen, true },
	{ "POST", "/v1/identify", ingest_segment_identify, true },
	{ "POST", "/v1/i", ingest_segment_identify, true },
	{ "POST", "/v1/alias", ingest_segment_alias, true },
	{ "POST", "/v1/a", ingest_segment_alias, true },
	{ "POST", "/v1/group", ingest_segment_group, true },
	{ "POST", "/v1/g", ingest_segment_group, true },
	{ "POST", "/v1/batch", ingest_segment_batch, true },
	{ "POST", "/v1/b", ingest_segment_batch, true },
	{ "POST", "/v1/import", ingest_segment_batch, true },
	{ "GET", "/v1/projects/", segment_settings, true },
	{ "GET", "/js/", static_files_serve, false },
	/* The dashboard: its page at /, its scripts and styles beside. */
	{ "GET", "/", static_files_dashboard, false },
	{ "GET", "/dashboard/", static_files_dashboard, false },
	{ "GET", "/healthz", api_healthz, false },
	{ "GET", "/readyz", api_readyz, false },
	{ "GET", "/metrics", api_metrics, false },
	{ "GET", "/api/v1/plan", api_plan, false },
	{ "GET", "/api/v1/sites", api_sites, false },
	{ "GET", "/api/v1/funnel", api_funnel, false },
	{ "GET", "/api/v1/milestones", api_milestones, false },
	{ "GET", "/api/v1/attribution", api_attribution, false },
	{ "GET", "/api/v1/alerts", api_alerts_states, false },
	{ "GET", "/api/v1/alerts/events", api_alerts_events, false },
	{ "GET", "/api/v1/alerts/rules", api_alert_rules_list, false },
	{ "POST", "/api/v1/alerts/rules", api_alert_rules_create, false },
	{ "GET", "/api/v1/alerts/rules/", api_alert_rule_get, false },
	{ "PUT", "/api/v1/alerts/rules/", api_alert_rule_replace, false },
	{ "DELETE", "/api/v1/alerts/rules/", api_alert_rule_delete, false },
	{ "POST", "/api/v1/alerts/rules/", api_alert_rule_action, false },
	{ "GET", "/api/v1/rejected", api_rejected_list, false },
	{ "GET", "/api/v1/signals", api_signals, false },
	{ "POST", "/api/v1/rejected/replay", api_rejected_replay, false },
	{ "DELETE", "/api/v1/people/", api_people_erase, false },
};

/* The parameter of path under route r, "" for an exact match, NULL if r
 * does not match. "/" alone is exact: a prefix of every path, it would
 * take them all. */
static const char *
route_match(const struct route *r, const char *path)
{
	size_t n = strlen(r->path);

	if (n > 1 && r->path[n - 1] == '/') {
		return strncmp(r->path, path, n) == 0 && path[n] != '\0' ?
		    path + n : NULL;
	}
	return strcmp(r->path, path) == 0 ? "" : NULL;
}

static const struct route preflight = { "OPTIONS", "", cors_preflight,
	true };

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
		if (routes[i].browser && strcmp(method, "OPTIONS") == 0) {
			return &preflight;
		}
		/* libmicrohttpd sends a HEAD answer without its body. */
		if (strcmp(routes[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 &&
		    strcmp(routes[i].method, "GET") == 0)) {
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

size_t
routes_count(void)
{
	return sizeof(routes) / sizeof(routes[0]);
}

const struct route *
routes_at(size_t i)
{
	return &routes[i];
}
