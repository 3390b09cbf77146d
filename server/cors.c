/* cors.c - which browser origins may post events and read the answers. */
#include "server/cors.h"

#include "common/origin.h"
#include "server/http.h"

void
cors_preflight(struct request *req, struct app *app)
{
	const char *origin = http_request_header(req, "Origin");
	struct app_state *state = app_state_get(app);
	const struct config *cfg = state->cfg;
	struct error err;
	bool allowed = false;

	for (size_t i = 0; origin != NULL && !allowed && i < cfg->n_sites;
	    i++) {
		allowed = origin_allowed(cfg->sites[i].allowed_origins,
		    cfg->sites[i].n_allowed_origins, origin);
	}
	app_state_put(state);
	if (!allowed) {
		error_set(&err, ERR_ORIGIN_NOT_ALLOWED, "no site allows the "
		    "origin %.100s", origin != NULL ? origin : "(none)");
		http_respond_error(req, &err);
		return;
	}
	http_request_allow_origin(req, true);
	http_respond_empty(req, 204);
}

bool
cors_admit(struct request *req, const struct config_site *site,
    struct error *err)
{
	const char *origin = http_request_header(req, "Origin");

	if (origin == NULL) {
		return true;
	}
	if (!origin_allowed(site->allowed_origins, site->n_allowed_origins,
	    origin)) {
		error_set(err, ERR_ORIGIN_NOT_ALLOWED, "site %s does not allow "
		    "the origin %.100s: add it to the site's allowed_origins",
		    site->id, origin);
		return false;
	}
	http_request_allow_origin(req, false);
	return true;
}
