/* histogram.h - Prometheus histograms that many threads observe into
 * without a lock, rendered in the text exposition format.
 *
 * Values are whole numbers of a unit that is 10^-decimals of the unit
 * exposed: nanoseconds with decimals 9 for a histogram in seconds, events
 * with decimals 0 for one of events. Integers keep observe lock-free (an
 * atomic add per bucket and one for the sum) and the bucket bounds and
 * the sum exact in the text. The module holds no memory of its own: a
 * struct histogram is plain data the caller owns. */
#ifndef MILEPOST_COMMON_HISTOGRAM_H
#define MILEPOST_COMMON_HISTOGRAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/strbuf.h"

/* At most this many finite bounds; +Inf comes on top. */
#define HISTOGRAM_MAX_BOUNDS 16

/* Latency buckets in seconds, as nanoseconds (decimals 9): 1 ms to 10 s. */
#define HISTOGRAM_SECONDS_DECIMALS 9
extern const uint64_t histogram_seconds_bounds[];
extern const size_t histogram_seconds_n_bounds;

struct histogram {
	const uint64_t *bounds;	/* ascending; borrowed, outlives h */
	size_t n_bounds;
	unsigned decimals;
	/* Observations per bucket, not cumulative; the last is +Inf. The
	 * count is their sum, so that +Inf and _count always agree. */
	atomic_ullong buckets[HISTOGRAM_MAX_BOUNDS + 1];
	atomic_ullong sum;
};

/* Sets h up empty with n_bounds (at most HISTOGRAM_MAX_BOUNDS, more are
 * ignored) ascending bounds that must outlive it. */
void histogram_init(struct histogram *h, const uint64_t *bounds,
    size_t n_bounds, unsigned decimals);

/* Counts value (in units). Safe from any thread. */
void histogram_observe(struct histogram *h, uint64_t value);

/* The number of observations so far. */
uint64_t histogram_count(const struct histogram *h);

/* Appends h as the series name_bucket (cumulative, with le), name_sum and
 * name_count, each with labels (e.g. `route="/v1/events"`; NULL or "" for
 * none) before le. With help, the family's HELP and TYPE lines come first;
 * without (NULL), only the series, for a further label set of a family
 * already begun. */
void histogram_render(struct strbuf *sb, const struct histogram *h,
    const char *name, const char *help, const char *labels);

#endif
