/* people_cache.h - what the writer recently stored or read about people:
 * the person of an id, the latest session of a device or client session,
 * and the first time a person reached an event. With it, a batch of
 * known visitors needs no lookup in PostgreSQL (server/people.c).
 *
 * A cache, never the truth: every entry expires PEOPLE_CACHE_TTL_MS after
 * the database last confirmed it (a lookup, or this writer's own write of
 * it), however often it is used in between, so that collectors sharing
 * one database see each other's links and sessions within that time; and
 * the whole cache is
 * dropped when people change under it (links merging two people, erasure,
 * retention). It holds at most PEOPLE_CACHE_MAX_ENTRIES entries; when
 * full it starts over. Thread-safe. */
#ifndef MILEPOST_SERVER_PEOPLE_CACHE_H
#define MILEPOST_SERVER_PEOPLE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PEOPLE_CACHE_TTL_MS 30000
#define PEOPLE_CACHE_MAX_ENTRIES 65536

/* What the cache knows under one key. Which fields mean something
 * depends on the key's kind (people.c builds the keys). */
struct people_fact {
	int64_t person;		/* an id's person */
	int64_t first_us;	/* a session's start; a milestone's first time */
	int64_t last_us;	/* a session's last event */
	char *session_id;	/* a stream's latest session */
	char *source_key;	/* its source (NULL: none) */
	/* When the database last confirmed it (timeutil_monotonic_ms);
	 * 0 in a put: now. */
	int64_t checked_ms;
};

struct people_cache;

struct people_cache *people_cache_new(void);
void people_cache_free(struct people_cache *c);

/* Copies the fact under key into *out (strings duplicated: the caller
 * frees them with people_fact_finish). False when unknown or expired, or
 * out of memory. */
bool people_cache_get(struct people_cache *c, const char *key, size_t len,
    struct people_fact *out);

/* Stores a copy of *fact under key, replacing what was there. Out of
 * memory only loses the entry. */
void people_cache_put(struct people_cache *c, const char *key, size_t len,
    const struct people_fact *fact);

/* Forgets everything. */
void people_cache_clear(struct people_cache *c);

void people_fact_finish(struct people_fact *f);

#endif
