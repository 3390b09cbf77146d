/* api_health.c - /healthz and /readyz. */
#include "server/api_health.h"

#include "server/http.h"
#include "server/spool.h"

void
api_healthz(struct request *req, struct app *app)
{
	(void)app;
	http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

/* With a spool, the collector acknowledges events while the database is
 * away: it stays ready (a load balancer keeps sending it events) until
 * the spool may not take the largest request any more. */
void
api_readyz(struct request *req, struct app *app)
{
	bool db_up = writer_is_ready(app->writer);
	struct spool_stats st;
	struct error err;
	json_t *body;
	bool full;

	if (app->spool == NULL) {
		if (db_up) {
			http_respond_json(req, 200, json_pack("{s:s,s:s}",
			    "status", "ready", "database", "up"));
			return;
		}
		error_set(&err, ERR_NOT_READY, "no connection to a PostgreSQL "
		    "database with the current schema");
		http_respond_error(req, &err);
		return;
	}
	spool_stats(app->spool, &st);
	full = st.bytes + (uint64_t)app->cfg->max_body_bytes > st.max_bytes;
	if (!db_up && full) {
		error_set(&err, ERR_NOT_READY, "no connection to the database "
		    "and the spool is full (%llu of %llu bytes)",
		    (unsigned long long)st.bytes,
		    (unsigned long long)st.max_bytes);
		http_respond_error(req, &err);
		return;
	}
	body = json_pack("{s:s,s:s,s:{s:I,s:I,s:I,s:b}}", "status", "ready",
	    "database", db_up ? "up" : "down", "spool",
	    "files", (json_int_t)st.files, "bytes", (json_int_t)st.bytes,
	    "max_bytes", (json_int_t)st.max_bytes, "full", full);
	http_respond_json(req, 200, body);
}
