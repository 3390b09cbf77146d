/* counttab.h - how many times each 64-bit key was seen: the small
 * open-addressing table the query index's algorithms group with
 * (breakdown values, attribution's transitions). No I/O. */
#ifndef MILEPOST_COMMON_COUNTTAB_H
#define MILEPOST_COMMON_COUNTTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct counttab_entry {
	int64_t key;
	long count;
	size_t tag;		/* the caller's */
	bool used;
};

/* Zero-initialised is empty; slot[0..cap) holds the entries in use. */
struct counttab {
	struct counttab_entry *slot;
	size_t cap, n;
	size_t last;		/* counttab_add's last slot, for runs */
};

/* Adds n to key's count (a new key starts at 0, tag 0) and answers its
 * entry, valid until the next add; NULL when out of memory. A run of the
 * same key costs one comparison a call. */
struct counttab_entry *counttab_add(struct counttab *t, int64_t key, long n);

/* key's entry (used false if it was never added); t must not be empty. */
struct counttab_entry *counttab_find(struct counttab *t, int64_t key);

void counttab_finish(struct counttab *t);

#endif
