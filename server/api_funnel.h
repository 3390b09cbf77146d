/* api_funnel.h - GET /api/v1/funnel (read key): people through the steps
 * of a funnel, with conversion rates, Wilson intervals, drop-offs and
 * times between steps. docs/api.md has the parameters and the answer. */
#ifndef MILEPOST_SERVER_API_FUNNEL_H
#define MILEPOST_SERVER_API_FUNNEL_H

#include "server/app.h"

struct request;

void api_funnel(struct request *req, struct app *app);

#endif
