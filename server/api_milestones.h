/* api_milestones.h - GET /api/v1/milestones (read key): each planned
 * event's people, events and micro-conversion rate per period, and its
 * plan target's attainment and pace. docs/api.md has the answer. */
#ifndef MILEPOST_SERVER_API_MILESTONES_H
#define MILEPOST_SERVER_API_MILESTONES_H

#include "server/app.h"

struct request;

void api_milestones(struct request *req, struct app *app);

#endif
