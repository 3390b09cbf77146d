/* ingest.h - POST /v1/events: decode, check, queue for the writer, and
 * answer once the events are committed.
 *
 * decode (gzip, size, JSON) -> authenticate (write key) -> validate each
 * event -> render COPY rows -> writer_enqueue -> suspend -> answer 202
 * with what was accepted and why the rest was rejected. */
#ifndef MILEPOST_SERVER_INGEST_H
#define MILEPOST_SERVER_INGEST_H

#include "server/app.h"

struct request;

void ingest_native(struct request *req, struct app *app);

#endif
