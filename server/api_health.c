/* api_health.c - /healthz and /readyz. */
#include "server/api_health.h"

#include "server/http.h"

void
api_healthz(struct request *req, struct app *app)
{
	(void)app;
	http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

void
api_readyz(struct request *req, struct app *app)
{
	struct error err;

	if (writer_is_ready(app->writer)) {
		http_respond_json(req, 200, json_pack("{s:s}", "status",
		    "ready"));
		return;
	}
	error_set(&err, ERR_NOT_READY, "no connection to a PostgreSQL "
	    "database with the current schema");
	http_respond_error(req, &err);
}
