/* api_metrics.h - GET /metrics: the daemon's counters in Prometheus text
 * format. */
#ifndef MILEPOST_SERVER_API_METRICS_H
#define MILEPOST_SERVER_API_METRICS_H

#include "server/app.h"

struct request;

void api_metrics(struct request *req, struct app *app);

#endif
