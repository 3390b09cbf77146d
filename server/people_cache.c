/* people_cache.c - an open-addressing hash map of people facts with expiry. */
#include "server/people_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"

#define MIN_SLOTS 1024

struct slot {
	char *key;		/* NULL: empty */
	size_t len;
	uint64_t hash;
	struct people_fact fact;
};

struct people_cache {
	pthread_mutex_t mu;
	struct slot *slots;	/* a power of two of them, at most half used */
	size_t n_slots;
	size_t n_used;
};

/* FNV-1a: keys are short ids the cache never trusts anyway. */
static uint64_t
hash_of(const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

void
people_fact_finish(struct people_fact *f)
{
	free(f->session_id);
	free(f->source_key);
	f->session_id = NULL;
	f->source_key = NULL;
}

/* A copy of src in *dst; false (and nothing kept) out of memory. */
static bool
fact_copy(struct people_fact *dst, const struct people_fact *src)
{
	*dst = *src;
	dst->session_id = dup_or_null(src->session_id);
	dst->source_key = dup_or_null(src->source_key);
	if ((src->session_id != NULL && dst->session_id == NULL) ||
	    (src->source_key != NULL && dst->source_key == NULL)) {
		people_fact_finish(dst);
		return false;
	}
	return true;
}

static void
slots_free(struct slot *slots, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(slots[i].key);
		people_fact_finish(&slots[i].fact);
	}
	free(slots);
}

struct people_cache *
people_cache_new(void)
{
	struct people_cache *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

void
people_cache_free(struct people_cache *c)
{
	if (c == NULL) {
		return;
	}
	slots_free(c->slots, c->n_slots);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* The slot of key, or the empty one where it would go. */
static struct slot *
find(struct slot *slots, size_t n_slots, const char *key, size_t len,
    uint64_t hash)
{
	size_t i = (size_t)hash & (n_slots - 1);

	for (;;) {
		struct slot *s = &slots[i];
		if (s->key == NULL || (s->hash == hash && s->len == len &&
		    memcmp(s->key, key, len) == 0)) {
			return s;
		}
		i = (i + 1) & (n_slots - 1);
	}
}

/* Makes room for one more entry: doubles the table, or empties it once it
 * holds PEOPLE_CACHE_MAX_ENTRIES. False out of memory. */
static bool
make_room(struct people_cache *c)
{
	size_t n;
	struct slot *slots;

	if (c->n_slots > 0 && (c->n_used + 1) * 2 <= c->n_slots) {
		return true;
	}
	if (c->n_used >= PEOPLE_CACHE_MAX_ENTRIES) {
		slots_free(c->slots, c->n_slots);
		c->slots = NULL;
		c->n_slots = 0;
		c->n_used = 0;
	}
	n = c->n_slots > 0 ? c->n_slots * 2 : MIN_SLOTS;
	slots = calloc(n, sizeof(*slots));
	if (slots == NULL) {
		return false;
	}
	for (size_t i = 0; i < c->n_slots; i++) {
		struct slot *old = &c->slots[i];
		if (old->key != NULL) {
			*find(slots, n, old->key, old->len, old->hash) = *old;
		}
	}
	free(c->slots);
	c->slots = slots;
	c->n_slots = n;
	return true;
}

bool
people_cache_get(struct people_cache *c, const char *key, size_t len,
    struct people_fact *out)
{
	uint64_t hash = hash_of(key, len);
	bool found = false;

	pthread_mutex_lock(&c->mu);
	if (c->n_slots > 0) {
		const struct slot *s = find(c->slots, c->n_slots, key, len,
		    hash);
		found = s->key != NULL && timeutil_monotonic_ms() -
		    s->fact.checked_ms <= PEOPLE_CACHE_TTL_MS &&
		    fact_copy(out, &s->fact);
	}
	pthread_mutex_unlock(&c->mu);
	return found;
}

void
people_cache_put(struct people_cache *c, const char *key, size_t len,
    const struct people_fact *fact)
{
	uint64_t hash = hash_of(key, len);
	struct people_fact copy;
	struct slot *s;
	char *k;

	if (!fact_copy(&copy, fact)) {
		return;
	}
	pthread_mutex_lock(&c->mu);
	if (!make_room(c)) {
		goto fail;
	}
	s = find(c->slots, c->n_slots, key, len, hash);
	if (s->key == NULL) {
		k = malloc(len + 1);
		if (k == NULL) {
			goto fail;
		}
		memcpy(k, key, len);
		k[len] = '\0';
		*s = (struct slot){ .key = k, .len = len, .hash = hash };
		c->n_used++;
	} else {
		people_fact_finish(&s->fact);
	}
	s->fact = copy;
	if (s->fact.checked_ms == 0) {
		s->fact.checked_ms = timeutil_monotonic_ms();
	}
	pthread_mutex_unlock(&c->mu);
	return;
fail:
	pthread_mutex_unlock(&c->mu);
	people_fact_finish(&copy);
}

void
people_cache_clear(struct people_cache *c)
{
	pthread_mutex_lock(&c->mu);
	slots_free(c->slots, c->n_slots);
	c->slots = NULL;
	c->n_slots = 0;
	c->n_used = 0;
	pthread_mutex_unlock(&c->mu);
}
