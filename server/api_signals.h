/* api_signals.h - GET /api/v1/signals (read key): each milestone and
 * secondary action against the conversion: rates with and without it,
 * lift, z-test, time to convert. docs/api.md has the answer. */
#ifndef MILEPOST_SERVER_API_SIGNALS_H
#define MILEPOST_SERVER_API_SIGNALS_H

#include "server/app.h"

struct request;

void api_signals(struct request *req, struct app *app);

#endif
