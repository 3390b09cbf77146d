/* segment_settings.h - GET /v1/projects/{writeKey}/settings: the settings
 * document Segment's browser library (@segment/analytics-next) loads from
 * its cdnURL before sending anything. Served here, it points the library
 * at this collector's host and turns off everything that would load or
 * send from elsewhere (destinations, remote plugins, metrics). */
#ifndef MILEPOST_SERVER_SEGMENT_SETTINGS_H
#define MILEPOST_SERVER_SEGMENT_SETTINGS_H

#include "server/app.h"

struct request;

void segment_settings(struct request *req, struct app *app);

#endif
