/* stats.h - the statistics the query API reports: Wilson score intervals
 * for conversion rates and the two-proportion z-test for lifts. Pure
 * functions; docs/api.md gives the formulas. */
#ifndef MILEPOST_COMMON_STATS_H
#define MILEPOST_COMMON_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* z for a two-sided 95% interval. */
#define STATS_Z95 1.959963984540054

/* The Wilson score interval of successes out of trials at z into *lo and
 * *hi. False (and 0, 0) when trials is 0 or successes is out of 0..trials:
 * no rate, no interval. */
bool stats_wilson(long successes, long trials, double z, double *lo,
    double *hi);

/* The two-proportion z-test of x1/n1 against x2/n2 (pooled variance): z
 * (positive when the first rate is higher) and the two-sided p-value.
 * False (z 0, p 1) when either group is empty or the pooled rate is 0 or
 * 1, where the test says nothing. */
bool stats_two_proportions(long x1, long n1, long x2, long n2, double *z,
    double *p);

/* PostgreSQL's percentile_cont(p) WITHIN GROUP (ORDER BY seconds) over n
 * durations in microseconds (n > 0): the same double, so that the query
 * index answers what the statement does. Reorders us (a selection, not a
 * sort: linear on average). */
double stats_percentile_cont_us(int64_t *us, size_t n, double p);
/* The same for p[0..m), ascending, into out[0..m): each selection starts
 * from where the one before split us, so the next costs only what lies
 * above it. */
void stats_percentiles_cont_us(int64_t *us, size_t n, const double *p,
    size_t m, double *out);

/* The median of v[0..n) / scale (n > 0): the middle value, or the mean
 * of the two middle ones, each divided by scale first. Reorders v (a
 * selection, as above). */
double stats_median_scaled(int64_t *v, size_t n, double scale);

#endif
