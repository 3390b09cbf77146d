/* routes.h - the table of HTTP routes: method, path, handler. */
#ifndef MILEPOST_SERVER_ROUTES_H
#define MILEPOST_SERVER_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "server/app.h"

struct request;

struct route {
	const char *method;
	const char *path;	/* ending in '/': a prefix, the rest a parameter
				 * ("/" itself is exact) */
	void (*handle)(struct request *req, struct app *app);
	bool browser;		/* posted to by web pages: CORS applies */
};

/* The route for method and path, or NULL. allow receives the methods the
 * path has (comma-separated, for the Allow header): empty means no such
 * path. *param is set to the part of path after a prefix route's path (or
 * NULL for an exact route). */
const struct route *routes_find(const char *method, const char *path,
    char *allow, size_t allow_size, const char **param);

/* The table, for whoever counts by route (server/http_stats.h): its
 * routes_count() entries, each by index. routes_find returns them, or the
 * one route outside the table, which answers CORS preflights. */
size_t routes_count(void);
const struct route *routes_at(size_t i);

#endif
