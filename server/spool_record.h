/* spool_record.h - one acknowledged request's rows (a writer_item) as a
 * record of the on-disk spool (server/spool.h), and back.
 *
 * A record is a 12-byte header (magic "MPS2", payload length, CRC-32 of the
 * payload, host byte order: a spool is read where it was written) and the
 * payload: the item's counts, its COPY row buffers, the people step's
 * facts of each event and its months. Records of the previous version
 * ("MPS1", without claims) are still read. Nothing in an item holds a raw
 * client address, so neither does a record.
 *
 * The encoder lists every event id of the item in its event_ids rows, the
 * ids made here too, so that a record replayed after it was already stored
 * (a crash between the commit and the file's removal) is skipped by the
 * writer's dedup instead of stored twice. */
#ifndef MILEPOST_SERVER_SPOOL_RECORD_H
#define MILEPOST_SERVER_SPOOL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "server/writer.h"

#define SPOOL_RECORD_HEADER 12

/* Appends item as one record to out (check strbuf_failed), with
 * received_us as the received_at of the event_ids rows it adds. An item
 * with rows of an admin replay (item->replayed) is not spooled. */
void spool_record_encode(struct strbuf *out, const struct writer_item *item,
    int64_t received_us);

enum spool_record_result {
	SPOOL_RECORD_OK,
	SPOOL_RECORD_END,	/* no bytes left */
	SPOOL_RECORD_TORN,	/* a record cut short: a write never finished */
	SPOOL_RECORD_CORRUPT,	/* bytes that are no record of this binary */
	SPOOL_RECORD_NOMEM,
};

/* Decodes the record at the start of data[0..len) into item (initialised
 * with writer_item_init, which the caller finishes whatever the result),
 * and its size into *used. Everything is checked: offsets, lengths and
 * counts must fit, so a damaged file cannot make the writer read out of
 * bounds. */
enum spool_record_result spool_record_decode(const void *data, size_t len,
    struct writer_item *item, size_t *used);

#endif
