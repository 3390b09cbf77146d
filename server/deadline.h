/* deadline.h - a bound on the time a client takes to send a request.
 *
 * libmicrohttpd's connection timeout is an idle timeout: a client that
 * trickles a header byte every few seconds (slow loris) is never idle and
 * would hold its connection, and a slot of max_connections, forever. The
 * deadline tracks every connection from its opening (or from the end of
 * its previous request, with keep-alive) until its request is complete,
 * and a watcher thread, looking once a second, shuts down the socket of
 * one that takes longer than the timeout, which libmicrohttpd then closes.
 * A request being handled, suspended or answered is not bounded here (the
 * writer and the idle timeout bound those). */
#ifndef MILEPOST_SERVER_DEADLINE_H
#define MILEPOST_SERVER_DEADLINE_H

#include <microhttpd.h>
#include <stdbool.h>

#include "common/error.h"

struct deadline;

/* A deadline of timeout_s seconds; 0 tracks nothing and starts no thread.
 * NULL with err set when the thread cannot start. */
struct deadline *deadline_new(long timeout_s, struct error *err);

/* Stops the watcher. Call after MHD_stop_daemon. NULL is fine. */
void deadline_free(struct deadline *d);

/* MHD_OPTION_NOTIFY_CONNECTION callback, with d as its closure. */
void deadline_notify(void *cls, struct MHD_Connection *conn,
    void **socket_context, enum MHD_ConnectionNotificationCode code);

/* Connections shut down for taking too long, since start. */
unsigned long long deadline_cut_total(struct deadline *d);

/* The request on conn is complete (busy) and no longer bounded, or it was
 * answered (not busy) and the next request's time starts now. */
void deadline_set_busy(struct deadline *d, struct MHD_Connection *conn,
    bool busy);

#endif
