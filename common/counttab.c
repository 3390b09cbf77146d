/* counttab.c - counting keys (counttab.h): linear probing, kept at most
 * half full. Keys come from the index's own ids, not from clients: a
 * multiplicative hash will do. */
#include "common/counttab.h"

#include <stdlib.h>

static size_t
slot_of(int64_t key, size_t cap)
{
	uint64_t x = (uint64_t)key * UINT64_C(0x9e3779b97f4a7c15);

	return (size_t)(x >> 20) & (cap - 1);
}

struct counttab_entry *
counttab_find(struct counttab *t, int64_t key)
{
	size_t i = slot_of(key, t->cap);

	while (t->slot[i].used && t->slot[i].key != key) {
		i = (i + 1) & (t->cap - 1);
	}
	return &t->slot[i];
}

struct counttab_entry *
counttab_add(struct counttab *t, int64_t key, long n)
{
	struct counttab_entry *e;

	/* Callers often add one key many times in a row (a funnel with no
	 * breakdown counts every unit under one key). */
	if (t->cap > 0 && t->slot[t->last].used && t->slot[t->last].key == key) {
		t->slot[t->last].count += n;
		return &t->slot[t->last];
	}
	if ((t->n + 1) * 2 > t->cap) {
		size_t cap = t->cap == 0 ? 64 : 2 * t->cap;
		struct counttab bigger = { calloc(cap, sizeof(*bigger.slot)), cap,
			t->n, 0 };
		if (bigger.slot == NULL) {
			return NULL;
		}
		for (size_t i = 0; i < t->cap; i++) {
			if (t->slot[i].used) {
				*counttab_find(&bigger, t->slot[i].key) = t->slot[i];
			}
		}
		free(t->slot);
		*t = bigger;
	}
	e = counttab_find(t, key);
	t->last = (size_t)(e - t->slot);
	if (!e->used) {
		*e = (struct counttab_entry){ key, 0, 0, true };
		t->n++;
	}
	e->count += n;
	return e;
}

void
counttab_finish(struct counttab *t)
{
	free(t->slot);
	t->slot = NULL;
	t->cap = t->n = t->last = 0;
}
