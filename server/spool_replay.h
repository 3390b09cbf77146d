/* spool_replay.h - a thread that stores what the spool holds once the
 * database is back (and at start): whole files, oldest first, each record
 * queued to the writer like the request it was, the file removed once
 * every record of it is committed.
 *
 * Replay is idempotent: a record already stored (the daemon stopped
 * between a commit and the removal) is skipped by the writer's dedup, as
 * every event id of a record is in its event_ids rows. A record PostgreSQL
 * refuses, and bytes that are no record (damage), are set aside under the
 * spool's failed/ directory and logged; a torn record at a file's end was
 * never acknowledged (its fdatasync did not return) and is dropped with a
 * warning. */
#ifndef MILEPOST_SERVER_SPOOL_REPLAY_H
#define MILEPOST_SERVER_SPOOL_REPLAY_H

#include <stdatomic.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "server/spool.h"
#include "server/writer.h"

struct spool_replay;

/* Starts the thread; spool and writer are borrowed and must outlive it. */
struct spool_replay *spool_replay_new(struct spool *spool,
    struct writer *writer, struct error *err);

/* Appends the replay's counters to a Prometheus exposition. */
void spool_replay_metrics(struct spool_replay *r, struct strbuf *out);

/* Stops the thread after the records it has queued are complete. NULL is
 * fine. */
void spool_replay_free(struct spool_replay *r);

#endif
