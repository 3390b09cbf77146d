/* http_stats.h - what the HTTP layer measures: requests answered by route
 * and status, and how long they took, for GET /metrics.
 *
 * A route is named by its path in the routes table (server/routes.h), so
 * that the number of series stays bounded whatever clients ask for:
 * "preflight" for CORS preflights, "other" for paths no route has (404)
 * or methods a path lacks (405). Recording is lock-free (atomic counters),
 * from libmicrohttpd's threads; rendering may run at the same time. */
#ifndef MILEPOST_SERVER_HTTP_STATS_H
#define MILEPOST_SERVER_HTTP_STATS_H

#include <stdint.h>

#include "common/strbuf.h"
#include "server/routes.h"

struct http_stats;

/* Empty counters for every route of the table; NULL when out of memory. */
struct http_stats *http_stats_new(void);
void http_stats_free(struct http_stats *s);	/* NULL is fine */

/* Counts one request of route (NULL: no route) answered with status
 * after elapsed_ns nanoseconds. */
void http_stats_record(struct http_stats *s, const struct route *route,
    unsigned status, int64_t elapsed_ns);

/* Appends milepost_http_requests_total and
 * milepost_http_request_duration_seconds in the text exposition format:
 * the series of the routes that have had requests. */
void http_stats_render(const struct http_stats *s, struct strbuf *out);

#endif
