/* libFuzzer target: spool files are read back after crashes and disk
 * damage, so any bytes must decode into a sound item or be refused; a
 * decoded item must encode into a record that decodes again to the same
 * counts and rows. The input is also tried with its header's length and
 * CRC made to fit, so that mutations reach the payload's checks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "server/spool_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_round_trip(const struct writer_item *item)
{
	struct writer_item back;
	struct strbuf rec;
	size_t used;

	strbuf_init(&rec);
	writer_item_init(&back);
	spool_record_encode(&rec, item, 0);
	if (!strbuf_failed(&rec) &&
	    (spool_record_decode(rec.data, rec.len, &back, &used) !=
	    SPOOL_RECORD_OK || used != rec.len ||
	    back.n_events != item->n_events ||
	    back.n_people != item->n_people ||
	    back.events.len != item->events.len ||
	    back.rejected.len != item->rejected.len ||
	    back.n_months != item->n_months)) {
		__builtin_trap();
	}
	writer_item_finish(&back);
	strbuf_finish(&rec);
}

static void
decode_all(const uint8_t *data, size_t size)
{
	size_t off = 0, used;

	while (off < size) {
		struct writer_item item;
		enum spool_record_result res;

		writer_item_init(&item);
		res = spool_record_decode(data + off, size - off, &item, &used);
		if (res == SPOOL_RECORD_OK) {
			if (used == 0 || used > size - off) {
				__builtin_trap();
			}
			check_round_trip(&item);
			off += used;
		}
		writer_item_finish(&item);
		if (res != SPOOL_RECORD_OK) {
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;
	uint32_t len, crc;

	decode_all(data, size);
	if (size < SPOOL_RECORD_HEADER || (fixed = malloc(size)) == NULL) {
		return 0;
	}
	/* Both versions a spool may hold. */
	for (const char *magic = "MPS1"; magic != NULL;
	    magic = magic[3] == '1' ? "MPS2" : NULL) {
		memcpy(fixed, data, size);
		memcpy(fixed, magic, 4);
		len = (uint32_t)(size - SPOOL_RECORD_HEADER);
		crc = (uint32_t)crc32(0L, fixed + SPOOL_RECORD_HEADER, len);
		memcpy(fixed + 4, &len, sizeof(len));
		memcpy(fixed + 8, &crc, sizeof(crc));
		decode_all(fixed, size);
	}
	free(fixed);
	return 0;
}
