/* api_rejected.h - the events that failed validation: GET /api/v1/rejected
 * lists them (read key), POST /api/v1/rejected/replay runs them through
 * the current plan again and stores those that now pass (admin key). */
#ifndef MILEPOST_SERVER_API_REJECTED_H
#define MILEPOST_SERVER_API_REJECTED_H

#include "server/app.h"

struct request;

void api_rejected_list(struct request *req, struct app *app);
void api_rejected_replay(struct request *req, struct app *app);

#endif
