/* ratelimit.c - token buckets in a fixed, striped hash table. */
#include "common/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Stripes of the table, each with its own lock: requests of different
 * clients rarely wait for each other. */
#define STRIPES 16
/* Slots looked at for one key: bounds the work per request and the
 * damage of an eviction to this neighbourhood. */
#define PROBE 8

struct slot {
	uint64_t hash;		/* 0: free */
	double tokens;
	int64_t last_ms;	/* when tokens was computed */
};

struct stripe {
	pthread_mutex_t lock;
	struct slot *slots;
};

struct ratelimit {
	double rate;		/* tokens per millisecond */
	double burst;
	size_t per_stripe;
	int64_t (*now_ms)(void);
	unsigned char key[crypto_shorthash_KEYBYTES];
	struct stripe stripes[STRIPES];
};

struct ratelimit *
ratelimit_new(double rate, double burst, size_t slots,
    int64_t (*now_ms)(void), struct error *err)
{
	struct ratelimit *rl = NULL;
	size_t i;

	if (!(rate > 0) || now_ms == NULL) {
		error_set(err, ERR_CONFIG, "a rate limit needs a positive "
		    "rate");
		return NULL;
	}
	rl = calloc(1, sizeof(*rl));
	if (rl == NULL) {
		goto nomem;
	}
	rl->rate = rate / 1000.0;
	rl->burst = burst < 1 ? 1 : burst;
	rl->per_stripe = slots / STRIPES < PROBE ? PROBE : slots / STRIPES;
	rl->now_ms = now_ms;
	randombytes_buf(rl->key, sizeof(rl->key));
	for (i = 0; i < STRIPES; i++) {
		rl->stripes[i].slots = calloc(rl->per_stripe,
		    sizeof(struct slot));
		if (rl->stripes[i].slots == NULL ||
		    pthread_mutex_init(&rl->stripes[i].lock, NULL) != 0) {
			free(rl->stripes[i].slots);
			rl->stripes[i].slots = NULL;
			break;
		}
	}
	if (i == STRIPES) {
		return rl;
	}
	while (i-- > 0) {
		pthread_mutex_destroy(&rl->stripes[i].lock);
		free(rl->stripes[i].slots);
	}
	free(rl);
nomem:
	error_set(err, ERR_NOMEM, "out of memory");
	return NULL;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL) {
		return;
	}
	for (size_t i = 0; i < STRIPES; i++) {
		pthread_mutex_destroy(&rl->stripes[i].lock);
		free(rl->stripes[i].slots);
	}
	free(rl);
}

/* The tokens of s at now: refilled since last_ms, capped at the burst. */
static double
refilled(const struct ratelimit *rl, const struct slot *s, int64_t now)
{
	double t = s->tokens + (double)(now - s->last_ms) * rl->rate;

	return t > rl->burst ? rl->burst : t;
}

/* The slot of hash in st: its own, else a free or full one (a full
 * bucket is what a new key gets, so reusing it forgets nothing), else the
 * least recently used of the neighbourhood, reset. */
static struct slot *
slot_for(const struct ratelimit *rl, struct stripe *st, uint64_t hash,
    int64_t now)
{
	size_t start = (size_t)(hash % rl->per_stripe);
	struct slot *spare = NULL, *oldest = NULL;

	for (size_t i = 0; i < PROBE; i++) {
		struct slot *s = &st->slots[(start + i) % rl->per_stripe];
		if (s->hash == hash) {
			return s;
		}
		if (spare == NULL && (s->hash == 0 ||
		    refilled(rl, s, now) >= rl->burst)) {
			spare = s;
		}
		if (oldest == NULL || s->last_ms < oldest->last_ms) {
			oldest = s;
		}
	}
	spare = spare != NULL ? spare : oldest;
	spare->hash = hash;
	spare->tokens = rl->burst;
	spare->last_ms = now;
	return spare;
}

bool
ratelimit_take(struct ratelimit *rl, const void *key, size_t len,
    double cost, long *retry_after_s)
{
	unsigned char h[crypto_shorthash_BYTES];
	struct stripe *st;
	struct slot *s;
	uint64_t hash;
	double need, wait_ms;
	int64_t now = rl->now_ms();
	bool ok;

	crypto_shorthash(h, key, len, rl->key);
	memcpy(&hash, h, sizeof(hash));
	hash |= 1;		/* never 0, the free mark */
	st = &rl->stripes[(hash >> 56) % STRIPES];
	pthread_mutex_lock(&st->lock);
	s = slot_for(rl, st, hash, now);
	s->tokens = refilled(rl, s, now);
	s->last_ms = now;
	need = cost < rl->burst ? cost : rl->burst;
	ok = s->tokens >= need;
	if (ok) {
		s->tokens -= cost;
	} else {
		wait_ms = (need - s->tokens) / rl->rate;
		*retry_after_s = (long)ceil(wait_ms / 1000.0);
		*retry_after_s = *retry_after_s < 1 ? 1 : *retry_after_s;
	}
	pthread_mutex_unlock(&st->lock);
	return ok;
}
