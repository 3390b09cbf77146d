/* stats.c - Wilson intervals and the two-proportion z-test. */
#include "common/stats.h"

#include <math.h>

bool
stats_wilson(long successes, long trials, double z, double *lo, double *hi)
{
	double n = (double)trials, p, z2n, centre, half;

	*lo = *hi = 0;
	if (trials <= 0 || successes < 0 || successes > trials) {
		return false;
	}
	p = (double)successes / n;
	z2n = z * z / n;
	centre = (p + z2n / 2) / (1 + z2n);
	half = z * sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n);
	/* Rounding may step a hair outside [0, 1] at the ends. */
	*lo = fmax(0, centre - half);
	*hi = fmin(1, centre + half);
	return true;
}

bool
stats_two_proportions(long x1, long n1, long x2, long n2, double *z,
    double *p)
{
	double pooled, se;

	*z = 0;
	*p = 1;
	if (n1 <= 0 || n2 <= 0 || x1 < 0 || x1 > n1 || x2 < 0 || x2 > n2) {
		return false;
	}
	pooled = (double)(x1 + x2) / (double)(n1 + n2);
	se = sqrt(pooled * (1 - pooled) * (1.0 / (double)n1 +
	    1.0 / (double)n2));
	if (se == 0) {
		return false;
	}
	*z = ((double)x1 / (double)n1 - (double)x2 / (double)n2) / se;
	*p = erfc(fabs(*z) / sqrt(2));
	return true;
}

/* As orderedsetaggs.c: the rows at floor and ceil of p * (n - 1),
 * interpolated as lo + pct * (hi - lo). A duration is seconds as
 * extract(epoch ...) gives it, a numeric whose cast to float8 is the
 * nearest double: microseconds / 1e6, one correctly rounded division. */
double
stats_percentile_cont_us(const int64_t *sorted_us, size_t n, double p)
{
	double row = p * (double)(n - 1);
	double first = floor(row), second = ceil(row);
	double lo = (double)sorted_us[(size_t)first] / 1e6;
	double hi = (double)sorted_us[(size_t)second] / 1e6;

	return second > first ? lo + (row - first) * (hi - lo) : lo;
}
