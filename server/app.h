/* app.h - what request handlers share: the configuration and the writer.
 * Plain data, fixed once the daemon serves. */
#ifndef MILEPOST_SERVER_APP_H
#define MILEPOST_SERVER_APP_H

#include "common/config.h"
#include "server/writer.h"

struct app {
	const struct config *cfg;
	struct writer *writer;
};

#endif
