/* api_plan.h - GET /api/v1/plan (read key): the tracking plan in force as
 * a framework map (common/plan_framework.h), so that a dashboard can draw
 * the phases, milestones and targets with nothing but the API. Answered
 * from memory; no database. docs/api.md has the answer. */
#ifndef MILEPOST_SERVER_API_PLAN_H
#define MILEPOST_SERVER_API_PLAN_H

#include "server/app.h"

struct request;

void api_plan(struct request *req, struct app *app);

#endif
