/* cors.h - which browser origins may post events and read the answers.
 *
 * A request with no Origin header is not a browser's cross-origin request
 * (a server, or a same-origin page) and passes. One with an Origin must
 * match the site's allowed_origins (common/origin.h); then the answer
 * carries CORS headers echoing it. A preflight names no site (it has no
 * body and carries no key's value), so it is answered for an origin that
 * some active site allows; the request that follows is checked against
 * its own site. No credentials are ever allowed. */
#ifndef MILEPOST_SERVER_CORS_H
#define MILEPOST_SERVER_CORS_H

#include <stdbool.h>

#include "common/config.h"
#include "common/error.h"
#include "server/app.h"

struct request;

/* Handler for OPTIONS on the browser-facing routes: 204 with the CORS
 * preflight headers, or 403 origin_not_allowed. */
void cors_preflight(struct request *req, struct app *app);

/* Whether req may act for site: true (with CORS headers on its answer
 * when it came with an Origin) or false with origin_not_allowed in err. */
bool cors_admit(struct request *req, const struct config_site *site,
    struct error *err);

#endif
