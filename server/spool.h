/* spool.h - the on-disk spool: requests whose events the database could
 * not take, kept so that they can be acknowledged all the same, and
 * stored when it is back (server/spool_replay.h).
 *
 * The spool is a directory of files named by a growing sequence number
 * (00000000000000000042.spool), each a run of records (spool_record.h).
 * Request threads append to the newest file; spool_append returns only
 * once the record is on disk (fdatasync), which is what lets the answer be
 * 2xx. Replay takes whole files, oldest first, after spool_oldest has
 * closed the file being appended to. A lock file keeps two daemons out of
 * one directory. Files that cannot be stored (PostgreSQL refuses their
 * rows, or they are damaged) are moved under failed/ for a person to look
 * at: never deleted. */
#ifndef MILEPOST_SERVER_SPOOL_H
#define MILEPOST_SERVER_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "server/writer.h"

struct spool;

struct spool_stats {
	uint64_t files;		/* in the directory, failed/ aside */
	uint64_t bytes;
	uint64_t max_bytes;
	uint64_t appended;	/* requests spooled since start */
	uint64_t refused_full;	/* requests refused: the spool was full */
};

/* Opens (creating it if needed) the spool in dir, at most max_bytes of
 * records, and counts what an earlier run left there. NULL with err set
 * when the directory cannot be used or another process holds it. */
struct spool *spool_open(const char *dir, int64_t max_bytes,
    struct error *err);

/* Writes item to disk, durably. False with ERR_SPOOL_FULL when it would
 * pass max_bytes, ERR_IO when the disk refused it (nothing of it is kept
 * then). Thread-safe. */
bool spool_append(struct spool *s, const struct writer_item *item,
    struct error *err);

/* Closes the file being appended to (the next append starts a new one)
 * and puts the path of the oldest file into path (cap bytes). False when
 * the spool is empty. */
bool spool_oldest(struct spool *s, char *path, size_t cap);

/* The file at path is stored: removes it (size bytes). */
void spool_remove(struct spool *s, const char *path, size_t size);

/* Keeps data (what could not be stored of the file at path) under
 * failed/ with the file's name and suffix, durably. False with err. */
bool spool_set_aside(struct spool *s, const char *path, const char *suffix,
    const void *data, size_t len, struct error *err);

void spool_stats(struct spool *s, struct spool_stats *out);

/* Appends the spool's gauges and counters to a Prometheus exposition. */
void spool_metrics(struct spool *s, struct strbuf *out);

/* Closes the spool; what it holds stays on disk for the next start. NULL
 * is fine. */
void spool_close(struct spool *s);

#endif
