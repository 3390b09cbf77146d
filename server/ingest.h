/* ingest.h - POST /v1/events and the Segment-compatible endpoints:
 * decode, check, queue for the writer, and answer once the events are
 * committed.
 *
 * decode (gzip, size, JSON) -> authenticate (write key, origin) ->
 * validate each event -> render COPY rows -> writer_enqueue -> suspend ->
 * answer: 202 with what was accepted and why the rest was rejected, or
 * for Segment's clients 200 {"success": true}. Segment messages become
 * native events first (common/segment.h). */
#ifndef MILEPOST_SERVER_INGEST_H
#define MILEPOST_SERVER_INGEST_H

#include "server/app.h"

struct request;

void ingest_native(struct request *req, struct app *app);

/* POST /v1/batch and /v1/import (and /v1/b): messages of any type. */
void ingest_segment_batch(struct request *req, struct app *app);
/* POST /v1/track, /v1/page, ... (and /v1/t, /v1/p, ...): one message. */
void ingest_segment_track(struct request *req, struct app *app);
void ingest_segment_page(struct request *req, struct app *app);
void ingest_segment_screen(struct request *req, struct app *app);
void ingest_segment_identify(struct request *req, struct app *app);
void ingest_segment_alias(struct request *req, struct app *app);
void ingest_segment_group(struct request *req, struct app *app);

#endif
