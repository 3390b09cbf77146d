/* api_attribution.h - GET /api/v1/attribution (read key): the
 * conversions credited to each channel, campaign, source or landing page
 * by every attribution model side by side, and the paths that led there.
 * docs/api.md has the answer. */
#ifndef MILEPOST_SERVER_API_ATTRIBUTION_H
#define MILEPOST_SERVER_API_ATTRIBUTION_H

#include "server/app.h"

struct request;

void api_attribution(struct request *req, struct app *app);

/* A conversion's revenue from its properties (the SQL expression props):
 * revenue, else value, when a JSON number; NULL otherwise. The query
 * index reads it with the same expression. */
#define ATTRIBUTION_REVENUE_SQL(props)                                       \
	"CASE WHEN jsonb_typeof(" props "->'revenue') = 'number'"            \
	" THEN (" props "->>'revenue')::float8"                              \
	" WHEN jsonb_typeof(" props "->'value') = 'number'"                  \
	" THEN (" props "->>'value')::float8 END"

#endif
