/* spool_record.c - the spool's record format. */
#include "server/spool_record.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/enrich.h"
#include "server/copy_row.h"
#include "server/people.h"

/* Version 2 added each event's claim, request id and index (dedup's
 * conflicts) and the fingerprint column of the event_ids rows. A daemon
 * upgraded with a spool left replays version 1 records: their events'
 * ids are not judged (no claim), as ids stored before migration 0014. */
static const char record_magic[4] = { 'M', 'P', 'S', '2' };
static const char record_magic_v1[4] = { 'M', 'P', 'S', '1' };
#define MAGIC_PREFIX 3	/* "MPS", shared by every version */

/* No request comes near it (max_body_bytes is at most 64 MiB); a larger
 * length can only be damage. */
#define PAYLOAD_MAX ((uint64_t)1 << 31)

/* The text offsets of a people_event, in the order they are written;
 * version 1 has the first PEOPLE_TEXTS_V1. */
#define PEOPLE_TEXTS_V1 (7 + ENRICH_TEXTS)
#define PEOPLE_TEXTS (PEOPLE_TEXTS_V1 + 2)

static size_t *
people_texts(struct people_event *pe, size_t i)
{
	size_t *fixed[] = { &pe->site_id, &pe->anonymous_id, &pe->user_id,
		&pe->session_id, &pe->source_key, &pe->name, &pe->url };
	const size_t n_fixed = sizeof(fixed) / sizeof(fixed[0]);

	if (i >= PEOPLE_TEXTS_V1) {
		return i == PEOPLE_TEXTS_V1 ? &pe->claim : &pe->request_id;
	}
	return i < n_fixed ? fixed[i] : &pe->landing[i - n_fixed];
}

static void
put_u64(struct strbuf *out, uint64_t v)
{
	strbuf_append(out, &v, sizeof(v));
}

static void
put_blob(struct strbuf *out, const struct strbuf *sb)
{
	put_u64(out, sb->len);
	strbuf_append(out, sb->data, sb->len);
}

/* The item's event_ids rows and one for each event whose id was made
 * here. */
static void
all_event_ids(struct strbuf *out, const struct writer_item *item,
    int64_t received_us)
{
	strbuf_append(out, item->event_ids.data, item->event_ids.len);
	for (size_t i = 0; i < item->n_people; i++) {
		const struct people_event *pe = &item->people[i];
		if (pe->id_given) {
			continue;
		}
		copy_row_text(out, item->people_text.data + pe->site_id - 1);
		strbuf_append_char(out, '\t');
		copy_row_text(out, pe->event_id);
		strbuf_append_char(out, '\t');
		copy_row_time(out, received_us);
		/* No claim: a record replayed twice repeats itself. */
		strbuf_append_str(out, "\t\\N\n");
	}
}

static void
put_people(struct strbuf *out, const struct writer_item *item)
{
	put_u64(out, item->n_people);
	for (size_t i = 0; i < item->n_people; i++) {
		struct people_event pe = item->people[i];
		/* The trust rides in the bot byte's upper bits: records
		 * written before it existed read as unchecked. */
		uint8_t flags[3] = {
			(uint8_t)(pe.bot | (unsigned)pe.trust << 1),
			pe.milestone, pe.id_given };

		put_u64(out, pe.row_end);
		put_u64(out, (uint64_t)pe.ts_us);
		strbuf_append(out, pe.event_id, sizeof(pe.event_id));
		for (size_t t = 0; t < PEOPLE_TEXTS; t++) {
			put_u64(out, *people_texts(&pe, t));
		}
		put_u64(out, pe.index);
		strbuf_append(out, flags, sizeof(flags));
	}
}

void
spool_record_encode(struct strbuf *out, const struct writer_item *item,
    int64_t received_us)
{
	size_t start = out->len;
	struct strbuf ids;
	uint32_t len, crc;

	strbuf_init(&ids);
	all_event_ids(&ids, item, received_us);
	/* The header, completed once the payload's size is known. */
	strbuf_append(out, record_magic, sizeof(record_magic));
	strbuf_append(out, "\0\0\0\0\0\0\0\0", 8);
	put_u64(out, ENRICH_TEXTS);
	put_u64(out, item->n_events);
	put_u64(out, item->n_rejected);
	put_blob(out, &item->events);
	put_blob(out, &item->people_text);
	put_blob(out, &ids);
	put_blob(out, &item->rejected);
	put_people(out, item);
	put_u64(out, item->n_months);
	for (size_t i = 0; i < item->n_months; i++) {
		strbuf_append(out, &item->months[i], sizeof(item->months[i]));
	}
	if (ids.failed) {
		out->failed = true;
	}
	strbuf_finish(&ids);
	if (strbuf_failed(out) ||
	    out->len - start - SPOOL_RECORD_HEADER > PAYLOAD_MAX) {
		out->failed = true;
		return;
	}
	len = (uint32_t)(out->len - start - SPOOL_RECORD_HEADER);
	crc = (uint32_t)crc32(0L, (const Bytef *)out->data + start +
	    SPOOL_RECORD_HEADER, len);
	memcpy(out->data + start + 4, &len, sizeof(len));
	memcpy(out->data + start + 8, &crc, sizeof(crc));
}

/* ------------------------------------------------------------- decoding */

struct reader {
	const unsigned char *p;
	size_t left;
	bool bad;
};

static const void *
take(struct reader *r, size_t n)
{
	const void *at = r->p;

	if (r->bad || n > r->left) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return at;
}

static uint64_t
get_u64(struct reader *r)
{
	const void *at = take(r, sizeof(uint64_t));
	uint64_t v = 0;

	if (at != NULL) {
		memcpy(&v, at, sizeof(v));
	}
	return v;
}

/* A buffer of the item: a length and its bytes. False when it does not
 * fit or memory ran out (*nomem). */
static bool
get_blob(struct reader *r, struct strbuf *sb, bool *nomem)
{
	uint64_t n = get_u64(r);
	const void *at = n <= r->left ? take(r, (size_t)n) : NULL;

	if (at == NULL) {
		r->bad = true;
		return false;
	}
	strbuf_append(sb, at, (size_t)n);
	*nomem = strbuf_failed(sb);
	return !*nomem;
}

/* The event_ids rows; version 1's lack the fingerprint column, which
 * they get as NULL. */
static bool
get_event_ids(struct reader *r, struct strbuf *sb, bool v1, bool *nomem)
{
	struct strbuf old;
	size_t from = 0;

	if (!v1) {
		return get_blob(r, sb, nomem);
	}
	strbuf_init(&old);
	if (!get_blob(r, &old, nomem)) {
		strbuf_finish(&old);
		return false;
	}
	for (size_t i = 0; i < old.len; i++) {
		if (old.data[i] == '\n') {
			strbuf_append(sb, old.data + from, i - from);
			strbuf_append_str(sb, "\t\\N\n");
			from = i + 1;
		}
	}
	/* Rows end with a newline: anything after the last is damage. */
	bool whole = from == old.len;
	strbuf_finish(&old);
	*nomem = strbuf_failed(sb);
	return !*nomem && whole;
}

/* A text offset of people_text: 0 (none) or one past the start of a
 * string, which the buffer's final NUL ends. */
static bool
text_offset_ok(const struct strbuf *text, size_t off)
{
	return off == 0 || (off - 1 < text->len &&
	    text->data[text->len - 1] == '\0');
}

static bool
get_people(struct reader *r, struct writer_item *item, bool v1,
    bool *nomem)
{
	uint64_t n = get_u64(r);
	size_t prev_end = 0;
	size_t n_texts = v1 ? PEOPLE_TEXTS_V1 : PEOPLE_TEXTS;

	/* Each event takes well over 100 bytes: a count beyond what is left
	 * is damage, not a reason to allocate. */
	if (r->bad || n != item->n_events || n > r->left / 100) {
		return false;
	}
	item->people = n > 0 ? calloc((size_t)n, sizeof(*item->people)) : NULL;
	if (n > 0 && item->people == NULL) {
		*nomem = true;
		return false;
	}
	item->cap_people = (size_t)n;
	for (size_t i = 0; i < n; i++) {
		struct people_event *pe = &item->people[i];
		const unsigned char *flags;
		const void *id;

		pe->row_end = (size_t)get_u64(r);
		pe->ts_us = (int64_t)get_u64(r);
		id = take(r, sizeof(pe->event_id));
		for (size_t t = 0; t < n_texts; t++) {
			*people_texts(pe, t) = (size_t)get_u64(r);
			if (!text_offset_ok(&item->people_text,
			    *people_texts(pe, t))) {
				return false;
			}
		}
		/* Version 1 kept no index: the event's place among those
		 * stored stands in (without a claim it is never used). */
		pe->index = v1 ? i : (size_t)get_u64(r);
		flags = take(r, 3);
		/* It becomes rejected_events.event_index, an integer. */
		if (pe->index > INT32_MAX) {
			return false;
		}
		if (r->bad || pe->row_end < prev_end ||
		    pe->row_end > item->events.len || pe->site_id == 0 ||
		    memchr(id, '\0', sizeof(pe->event_id)) == NULL) {
			return false;
		}
		memcpy(pe->event_id, id, sizeof(pe->event_id));
		pe->bot = (flags[0] & 1) != 0;
		if ((flags[0] >> 1) > EVENT_TRUST_VERIFIED) {
			return false;
		}
		pe->trust = (enum event_trust)(flags[0] >> 1);
		pe->milestone = flags[1] != 0;
		pe->id_given = flags[2] != 0;
		prev_end = pe->row_end;
		item->n_people++;
	}
	return true;
}

static bool
get_months(struct reader *r, struct writer_item *item)
{
	uint64_t n = get_u64(r);

	if (r->bad || n > r->left / sizeof(int32_t)) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		int32_t m;
		memcpy(&m, take(r, sizeof(m)), sizeof(m));
		if (!writer_item_add_month(item, m)) {
			return false;
		}
	}
	return true;
}

enum spool_record_result
spool_record_decode(const void *data, size_t len, struct writer_item *item,
    size_t *used)
{
	const unsigned char *p = data;
	struct reader r;
	uint32_t plen, crc;
	bool nomem = false, v1;

	*used = 0;
	if (len == 0) {
		return SPOOL_RECORD_END;
	}
	if (len < SPOOL_RECORD_HEADER) {
		return memcmp(p, record_magic, len < MAGIC_PREFIX ? len :
		    MAGIC_PREFIX) == 0 ? SPOOL_RECORD_TORN :
		    SPOOL_RECORD_CORRUPT;
	}
	v1 = memcmp(p, record_magic_v1, sizeof(record_magic_v1)) == 0;
	if (!v1 && memcmp(p, record_magic, sizeof(record_magic)) != 0) {
		return SPOOL_RECORD_CORRUPT;
	}
	memcpy(&plen, p + 4, sizeof(plen));
	memcpy(&crc, p + 8, sizeof(crc));
	if (plen > PAYLOAD_MAX) {
		return SPOOL_RECORD_CORRUPT;
	}
	if (len - SPOOL_RECORD_HEADER < plen) {
		return SPOOL_RECORD_TORN;
	}
	if ((uint32_t)crc32(0L, p + SPOOL_RECORD_HEADER, plen) != crc) {
		return SPOOL_RECORD_CORRUPT;
	}
	r = (struct reader){ .p = p + SPOOL_RECORD_HEADER, .left = plen };
	if (get_u64(&r) != ENRICH_TEXTS) {
		return SPOOL_RECORD_CORRUPT;
	}
	item->n_events = (size_t)get_u64(&r);
	item->n_rejected = (size_t)get_u64(&r);
	if (!get_blob(&r, &item->events, &nomem) ||
	    !get_blob(&r, &item->people_text, &nomem) ||
	    !get_event_ids(&r, &item->event_ids, v1, &nomem) ||
	    !get_blob(&r, &item->rejected, &nomem) ||
	    !get_people(&r, item, v1, &nomem) || !get_months(&r, item) ||
	    r.left != 0) {
		return nomem ? SPOOL_RECORD_NOMEM : SPOOL_RECORD_CORRUPT;
	}
	*used = SPOOL_RECORD_HEADER + plen;
	return SPOOL_RECORD_OK;
}
