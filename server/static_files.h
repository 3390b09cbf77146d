/* static_files.h - files compiled into the binary: GET /js/{name} (the
 * snippet websites load, server/js/milepost.js minified at build time) and
 * the dashboard (server/dashboard/), served with an ETag and
 * Cache-Control, gzip-compressed when the client accepts it, 304 when its
 * copy is current. Each file's ETag and gzip form are made once, at the
 * first request. Nothing is read from disk: no path is ever opened. */
#ifndef MILEPOST_SERVER_STATIC_FILES_H
#define MILEPOST_SERVER_STATIC_FILES_H

#include "server/app.h"

struct request;

void static_files_serve(struct request *req, struct app *app);

/* GET / (index.html) and GET /dashboard/{name}: the dashboard's files
 * (server/dashboard/), served the same way with no-cache (they change
 * together) and a strict Content-Security-Policy. */
void static_files_dashboard(struct request *req, struct app *app);

#endif
