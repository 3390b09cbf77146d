/* api.h - what every /api/v1 endpoint shares: the secret API key in
 * `Authorization: Bearer`, the site a call is about, query parameters, and
 * running its database work on the query pool while the request waits
 * suspended. */
#ifndef MILEPOST_SERVER_API_H
#define MILEPOST_SERVER_API_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/event.h"
#include "common/plan.h"
#include "server/app.h"
#include "server/http.h"
#include "server/query.h"

enum api_scope {
	API_READ,
	API_ADMIN,
};

/* One API call. Lives in the request's context until it completes. */
struct api_call {
	struct query_job job;
	struct request *req;
	struct app *app;
	struct app_state *state;		/* reference held */
	const struct config_api_key *key;	/* in state->cfg */
	const char *site_id;			/* in state->cfg */
	/* Set by the endpoint's run: the answer (status 200 unless set),
	 * or an error. */
	json_t *answer;
	unsigned status;
	bool (*run)(PGconn *pg, struct api_call *call, struct error *err);
	void *data;			/* the endpoint's, freed with data_free */
	void (*data_free)(void *data);
};

/* Checks the key (and that it has scope) and the site parameter (`site`,
 * optional when the key or the configuration has exactly one site). On
 * success returns the call, owned by the request; otherwise answers the
 * request (401, 403, 400, 404) and returns NULL. */
struct api_call *api_begin(struct request *req, struct app *app,
    enum api_scope scope);

/* Once a handler has read its parameters: false, with ERR_UNKNOWN_PARAMETER
 * naming it, when the request has one it did not read (windw=1h would
 * silently be the default window). api_run checks it. */
bool api_params_known(struct request *req, struct error *err);

/* GET /api/v1/sites: the sites the key may see, {"sites": [{id, name}]};
 * from the configuration, so no database work. */
void api_sites(struct request *req, struct app *app);

/* Suspends the request and runs call->run on the query pool; the request
 * is then answered 200 with call->answer, or with the error. */
void api_run(struct api_call *call,
    bool (*run)(PGconn *pg, struct api_call *call, struct error *err));

/* True if v is UTF-8 text of at most max bytes; else false, with an
 * invalid_parameter error naming name. */
bool api_text_valid(const char *v, size_t max, const char *name,
    struct error *err);

/* Query parameters, checked: each returns false with err set
 * (ERR_INVALID_PARAMETER naming the parameter) when it is present but
 * malformed; absent leaves *out as the caller set it. */
bool api_param_time(struct request *req, const char *name, const char **out,
    struct error *err);
/* One of the n words of names (NULL entries skipped) as its index in
 * *out, or d when the parameter is absent; false with err listing the
 * words. */
bool api_param_choice(struct request *req, const char *name,
    const char *const *names, size_t n, int d, int *out, struct error *err);

/* Which engine answers a query (engine=auto|index|sql): auto, the query
 * index when it can (loaded, and the query is one it holds the data
 * for), else PostgreSQL. */
enum api_engine { API_ENGINE_AUTO, API_ENGINE_INDEX, API_ENGINE_SQL };
bool api_param_engine(struct request *req, enum api_engine *out,
    struct error *err);

/* What an endpoint does when the index cannot answer a read (r->ix
 * NULL): false, with engine_unavailable, if the call asked for the index;
 * true if PostgreSQL is to answer. */
bool api_engine_fallback(enum api_engine asked, const char *why_not,
    struct error *err);

struct query_index_read;

/* The engine for a call that asked for engine: the query index (caught
 * up, held for reading in *r until query_index_release) unless it cannot
 * answer, or cannot (a sentence: the query needs what the index does not
 * hold; NULL if it can) says so; then r->ix is NULL and PostgreSQL
 * answers. False, with engine_unavailable, when engine=index was asked
 * for and the index cannot answer. */
bool api_engine_read(struct api_call *call, PGconn *pg,
    enum api_engine engine, const char *cannot, struct query_index_read *r,
    struct error *err);

/* A date (YYYY-MM-DD: its start in UTC, or with end_of_day the start of
 * the next day, for an inclusive end) or an RFC 3339 date-time, into *out
 * (microseconds). */
bool api_param_day_or_time(struct request *req, const char *name,
    bool end_of_day, int64_t *out, struct error *err);
/* from and to (as api_param_day_or_time), by default the range_us before
 * now; false unless from is before to. */
bool api_param_range(struct request *req, int64_t range_us, int64_t *from,
    int64_t *to, struct error *err);

/* window: a number of days or hours (timeutil_parse_duration) up to
 * max_us, API_WINDOW_DEFAULT when absent; into *us, and as asked into
 * text. */
#define API_WINDOW_DEFAULT "30d"
#define API_WINDOW_TEXT 16
bool api_param_window(struct request *req, int64_t max_us, int64_t *us,
    char text[API_WINDOW_TEXT], struct error *err);
/* The same for the duration parameter name, dflt when absent. */
bool api_param_duration(struct request *req, const char *name,
    const char *dflt, int64_t max_us, int64_t *us, char text[API_WINDOW_TEXT],
    struct error *err);
/* conversion: an event name, by default the plan's macro conversion. */
/* False, with ERR_QUERY_UNKNOWN_EVENT naming it and the parameter, when
 * name can have no data: the plan neither defines it nor stores events
 * it does not define. A typo must not answer zeros. */
bool api_event_known(const struct plan *plan, const char *name,
    const char *param, struct error *err);
bool api_param_conversion(struct request *req, const struct plan *plan,
    char out[EVENT_NAME_MAX + 1], struct error *err);
bool api_param_int(struct request *req, const char *name, long min,
    long max, long *out, struct error *err);
bool api_param_name(struct request *req, const char *name, const char **out,
    struct error *err);

/* A read endpoint in one call: checks the read key and site, allocates
 * the endpoint's zeroed state of size bytes (freed with data_free), lets
 * read fill it from the request's parameters (false: err is answered),
 * then runs run on the query pool as api_run does. */
void api_query(struct request *req, struct app *app, size_t size,
    void (*data_free)(void *data),
    bool (*read)(struct request *req, const struct app_state *state,
    void *data, struct error *err),
    bool (*run)(PGconn *pg, struct api_call *call, struct error *err));

/* Around the statements of a query answer: a read-only snapshot, with
 * the planner settings the analytics statements need (api.c says why).
 * End it whether the statements succeeded or not. */
bool api_snapshot_begin(PGconn *pg, struct error *err);
void api_snapshot_end(PGconn *pg);
/* The same, for statements that also write what they found (alerts):
 * commit with db_exec "COMMIT" before api_snapshot_end. */
bool api_snapshot_begin_writable(PGconn *pg, struct error *err);

/* An RFC 3339 JSON string of us, for answers. New reference. */
json_t *api_time_json(int64_t us);
/* v as a JSON number, or null when it is not finite (NaN: no value).
 * New reference. */
json_t *api_number_json(double v);

/* The first column of the first row of res parsed as JSON (PostgreSQL
 * builds the answers); NULL with err set if it is not. */
json_t *api_json_value(const PGresult *res, struct error *err);

#endif
