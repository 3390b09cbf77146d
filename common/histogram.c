/* histogram.c - lock-free Prometheus histograms; see histogram.h. */
#include "common/histogram.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

/* The usual latency buckets (Prometheus' defaults, from 1 ms and up to
 * 10 s), in nanoseconds. */
const uint64_t histogram_seconds_bounds[] = {
	1000000, 2500000, 5000000, 10000000, 25000000, 50000000, 100000000,
	250000000, 500000000, 1000000000, 2500000000, 5000000000,
	10000000000,
};
const size_t histogram_seconds_n_bounds =
    sizeof(histogram_seconds_bounds) / sizeof(histogram_seconds_bounds[0]);

/* Beyond this, 10^decimals no longer fits in 64 bits. */
#define MAX_DECIMALS 19
/* A 64-bit number's 20 digits, a point, NUL. */
#define UNITS_TEXT_LEN 24

void
histogram_init(struct histogram *h, const uint64_t *bounds, size_t n_bounds,
    unsigned decimals)
{
	h->bounds = bounds;
	h->n_bounds = n_bounds < HISTOGRAM_MAX_BOUNDS ? n_bounds :
	    HISTOGRAM_MAX_BOUNDS;
	h->decimals = decimals < MAX_DECIMALS ? decimals : MAX_DECIMALS;
	for (size_t i = 0; i <= HISTOGRAM_MAX_BOUNDS; i++) {
		atomic_init(&h->buckets[i], 0);
	}
	atomic_init(&h->sum, 0);
}

void
histogram_observe(struct histogram *h, uint64_t value)
{
	size_t i = 0;

	while (i < h->n_bounds && value > h->bounds[i]) {
		i++;
	}
	/* Relaxed: each counter only has to be exact by itself; a scrape
	 * racing an observation may see it in one and not yet the other. */
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
}

uint64_t
histogram_count(const struct histogram *h)
{
	uint64_t n = 0;

	for (size_t i = 0; i <= h->n_bounds; i++) {
		n += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
	}
	return n;
}

/* Writes value units as a decimal number of the exposed unit, exactly
 * and without trailing zeros: 2500000 with 9 decimals is "0.0025". */
static void
format_units(char out[UNITS_TEXT_LEN], uint64_t value, unsigned decimals)
{
	uint64_t scale = 1, frac;
	int digits = (int)decimals, n;

	for (unsigned i = 0; i < decimals; i++) {
		scale *= 10;
	}
	n = snprintf(out, UNITS_TEXT_LEN, "%" PRIu64, value / scale);
	frac = value % scale;
	if (frac == 0) {
		return;
	}
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	snprintf(out + n, UNITS_TEXT_LEN - (size_t)n, ".%0*" PRIu64, digits,
	    frac);
}

/* Appends the series' name and its labels: the family's, then le. */
static void
append_series(struct strbuf *sb, const char *name, const char *suffix,
    const char *labels, const char *le)
{
	bool any = labels != NULL && labels[0] != '\0';

	strbuf_appendf(sb, "%s%s", name, suffix);
	if (!any && le == NULL) {
		return;
	}
	strbuf_appendf(sb, "{%s", any ? labels : "");
	if (le != NULL) {
		strbuf_appendf(sb, "%sle=\"%s\"", any ? "," : "", le);
	}
	strbuf_append_char(sb, '}');
}

void
histogram_render(struct strbuf *sb, const struct histogram *h,
    const char *name, const char *help, const char *labels)
{
	char text[UNITS_TEXT_LEN];
	uint64_t cumulative = 0;

	if (help != NULL) {
		strbuf_appendf(sb, "# HELP %s %s\n# TYPE %s histogram\n", name,
		    help, name);
	}
	for (size_t i = 0; i <= h->n_bounds; i++) {
		cumulative += atomic_load_explicit(&h->buckets[i],
		    memory_order_relaxed);
		if (i < h->n_bounds) {
			format_units(text, h->bounds[i], h->decimals);
		}
		append_series(sb, name, "_bucket", labels,
		    i < h->n_bounds ? text : "+Inf");
		strbuf_appendf(sb, " %" PRIu64 "\n", cumulative);
	}
	format_units(text, atomic_load_explicit(&h->sum,
	    memory_order_relaxed), h->decimals);
	append_series(sb, name, "_sum", labels, NULL);
	strbuf_appendf(sb, " %s\n", text);
	/* From the buckets read above, so that it equals +Inf. */
	append_series(sb, name, "_count", labels, NULL);
	strbuf_appendf(sb, " %" PRIu64 "\n", cumulative);
}
