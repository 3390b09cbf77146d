/* segment_settings.c - the settings document of Segment's browser
 * library. */
#include "server/segment_settings.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/auth.h"
#include "server/cors.h"
#include "server/http.h"

#define SETTINGS_SUFFIX "/settings"
#define HOST_MAX 255

/* The host (and port) the browser reached us at, which the library is to
 * post to; false if the Host header is absent or not a host. */
static bool
request_host(struct request *req, char out[HOST_MAX + 1])
{
	const char *h = http_request_header(req, "Host");
	size_t n;

	if (h == NULL || (n = strlen(h)) == 0 || n > HOST_MAX ||
	    strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-.:[]") != n) {
		return false;
	}
	memcpy(out, h, n + 1);
	return true;
}

void
segment_settings(struct request *req, struct app *app)
{
	const char *param = http_request_path_param(req);
	const char *proto = http_request_header(req, "X-Forwarded-Proto");
	struct app_state *state = app_state_get(app);
	const struct config_site *site = NULL;
	char key[256], host[HOST_MAX + 1], api_host[HOST_MAX + 8];
	struct error err = { 0 };
	size_t n = param != NULL ? strlen(param) : 0;
	size_t suffix = strlen(SETTINGS_SUFFIX);

	if (n <= suffix || n - suffix >= sizeof(key) ||
	    strcmp(param + n - suffix, SETTINGS_SUFFIX) != 0) {
		error_set(&err, ERR_NOT_FOUND, "use /v1/projects/{writeKey}"
		    "/settings");
		goto fail;
	}
	memcpy(key, param, n - suffix);
	key[n - suffix] = '\0';
	site = auth_find_site(state->cfg, key);
	if (site == NULL) {
		error_set(&err, ERR_INVALID_WRITE_KEY, "no active site has "
		    "this write key");
		goto fail;
	}
	if (!cors_admit(req, site, &err)) {
		goto fail;
	}
	if (!request_host(req, host)) {
		error_set(&err, ERR_INVALID_PARAMETER, "the Host header must "
		    "name this collector's host");
		goto fail;
	}
	snprintf(api_host, sizeof(api_host), "%s/v1", host);
	app_state_put(state);
	/* Metrics (sampleRate 0) and remote plugins would reach Segment's
	 * own hosts; the plan lets every call through, as the tracking
	 * plan here judges them. */
	http_respond_json(req, 200, json_pack("{s:{s:{s:s, s:s, s:s, s:b, "
	    "s:[], s:{}}}, s:{s:{s:{s:b}}, s:{s:{s:b}}, s:{s:{s:b}}}, "
	    "s:{}, s:b, s:{}, s:{}, s:{s:i, s:s}, s:b, s:[]}",
	    "integrations", "Segment.io", "apiKey", key, "apiHost", api_host,
	    "protocol", proto != NULL && strcmp(proto, "https") == 0 ?
	    "https" : "http", "addBundledMetadata", 0,
	    "unbundledIntegrations", "maybeBundledConfigIds",
	    "plan", "track", "__default", "enabled", 1,
	    "identify", "__default", "enabled", 1,
	    "group", "__default", "enabled", 1,
	    "edgeFunction", "analyticsNextEnabled", 1,
	    "middlewareSettings", "enabledMiddleware",
	    "metrics", "sampleRate", 0, "host", api_host,
	    "legacyVideoPluginsEnabled", 0, "remotePlugins"));
	return;
fail:
	app_state_put(state);
	http_respond_error(req, &err);
}
