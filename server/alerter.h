/* alerter.h - the evaluator: every alert_evaluation_interval_s, a job on
 * the query pool judges every stored rule whose last complete period is
 * not judged yet, and stores its state and transitions (alert_judge.c).
 * Several daemons on one database share the work rule by rule. */
#ifndef MILEPOST_SERVER_ALERTER_H
#define MILEPOST_SERVER_ALERTER_H

#include "common/error.h"
#include "server/app.h"

struct alerter;

/* Starts the evaluator's thread; app (with its query pool) must outlive
 * it. NULL with err set when the thread cannot start. */
struct alerter *alerter_new(struct app *app, struct error *err);

/* Stops the thread and waits for a sweep in progress; before the query
 * pool is freed. NULL is fine. */
void alerter_free(struct alerter *a);

#endif
