/* stats.h - the statistics the query API reports: Wilson score intervals
 * for conversion rates and the two-proportion z-test for lifts. Pure
 * functions; docs/api.md gives the formulas. */
#ifndef MILEPOST_COMMON_STATS_H
#define MILEPOST_COMMON_STATS_H

#include <stdbool.h>

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

#endif
