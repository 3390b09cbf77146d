/* api_health.h - liveness and readiness for load balancers and
 * orchestrators. Neither needs a key. */
#ifndef MILEPOST_SERVER_API_HEALTH_H
#define MILEPOST_SERVER_API_HEALTH_H

#include "server/app.h"

struct request;

/* 200 while the process serves. */
void api_healthz(struct request *req, struct app *app);
/* 200 when a writer is connected to a current schema, else 503. */
void api_readyz(struct request *req, struct app *app);

#endif
