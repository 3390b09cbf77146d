/* api_funnel.h - GET /api/v1/funnel (read key): people through the steps
 * of a funnel, with conversion rates, Wilson intervals, drop-offs and
 * times between steps. docs/api.md has the parameters and the answer. */
#ifndef MILEPOST_SERVER_API_FUNNEL_H
#define MILEPOST_SERVER_API_FUNNEL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/funnel.h"
#include "server/app.h"
#include "server/query_index.h"

struct request;

void api_funnel(struct request *req, struct app *app);

/* A funnel as other parts of the daemon ask for it (alerts): steps in
 * order (1 is fine: who did it), people entering step 1 in
 * [from_us, to_us), each step within window_us of the entry, entries
 * matching every filter. */
struct funnel_spec {
	struct funnel_step steps[FUNNEL_STEPS_MAX];
	size_t n_steps;
	struct funnel_dim_ref filters[FUNNEL_FILTERS_MAX];
	size_t n_filters;
	int64_t from_us, to_us, window_us;
};

/* How many people reached each step (entered[0..n_steps)), counted as
 * GET /api/v1/funnel counts them: from the index r holds when it has one,
 * else by the endpoint's statement in the caller's transaction
 * (api_snapshot_begin). False with err set when the query fails. */
bool funnel_count(PGconn *pg, const struct query_index_read *r,
    const char *site, const struct funnel_spec *spec, long *entered,
    struct error *err);

#endif
