/* deliverer.h - the webhook deliveries of alert transitions
 * (alert_deliveries): a thread with its own connection claims the due ones
 * (several daemons share them: each claim is a lease), POSTs them with
 * webhook.c, and records each attempt; a failed one is retried after
 * alert_webhook_backoff_s, doubling, up to alert_webhook_max_attempts. */
#ifndef MILEPOST_SERVER_DELIVERER_H
#define MILEPOST_SERVER_DELIVERER_H

#include "common/error.h"
#include "server/app.h"

struct deliverer;

/* Starts the thread; app must outlive it. NULL with err set when it
 * cannot. */
struct deliverer *deliverer_new(struct app *app, struct error *err);

/* Stops the thread after the delivery in progress. NULL is fine. */
void deliverer_free(struct deliverer *d);

#endif
