/* ticker.h - a thread that calls a function at once and then every few
 * seconds until stopped: the alert evaluator's sweeps and the webhook
 * deliveries. */
#ifndef MILEPOST_SERVER_TICKER_H
#define MILEPOST_SERVER_TICKER_H

#include <stdbool.h>

#include "common/error.h"

struct ticker;

/* Starts the thread: tick(t, ctx), then again interval_s(ctx) seconds
 * after each one ends (asked each time, so that a reload can change it).
 * tick gets the ticker itself, which may run before ticker_new returns.
 * NULL with err set when the thread cannot start. */
struct ticker *ticker_new(void (*tick)(struct ticker *t, void *ctx),
    long (*interval_s)(void *ctx), void *ctx, struct error *err);

/* True once ticker_free has begun, for a long tick to end early. */
bool ticker_stopping(struct ticker *t);

/* Stops the thread after the tick in progress, and frees t. NULL is
 * fine. */
void ticker_free(struct ticker *t);

#endif
