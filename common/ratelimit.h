/* ratelimit.h - token buckets keyed by an opaque byte string (a write key,
 * a client address), for rate limiting.
 *
 * Each key has a bucket of at most burst tokens refilled at rate tokens per
 * second. The buckets live in a fixed-size table, so memory is bounded
 * whatever the number of keys: a new key takes a free slot, or one whose
 * bucket has refilled completely (forgetting it loses nothing), or else the
 * least recently used slot nearby. Keys are hashed with a keyed hash
 * (SipHash, random key per table) so that clients cannot choose keys that
 * collide. Thread-safe (one mutex per stripe of the table). No I/O, no
 * HTTP: the caller turns a refusal into its answer. */
#ifndef MILEPOST_COMMON_RATELIMIT_H
#define MILEPOST_COMMON_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct ratelimit;

/* A table of slots buckets (rounded up to a multiple of the stripes), each
 * refilled at rate tokens per second up to burst (at least 1). now_ms is a
 * monotonic clock in milliseconds (timeutil_monotonic_ms, or a fake in
 * tests). NULL with err set when out of memory or rate is not positive.
 * libsodium must be initialised. */
struct ratelimit *ratelimit_new(double rate, double burst, size_t slots,
    int64_t (*now_ms)(void), struct error *err);
void ratelimit_free(struct ratelimit *rl);	/* NULL is fine */

/* Takes cost tokens from the bucket of key (len bytes). True if they were
 * there. A cost above the burst is admitted with a full bucket, leaving the
 * bucket in debt, so that the long-run rate holds for large batches too.
 * False when refused, with *retry_after_s the whole seconds (at least 1)
 * until the bucket holds enough. */
bool ratelimit_take(struct ratelimit *rl, const void *key, size_t len,
    double cost, long *retry_after_s);

#endif
