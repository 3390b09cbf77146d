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

/* Moves the k-th smallest of v[0..n) to v[k], the smaller ones before it
 * and the others after (Hoare's selection, the median of three as the
 * pivot). */
static void
select_kth(int64_t *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (hi > lo) {
		size_t mid = lo + (hi - lo) / 2, i = lo, j = hi;
		int64_t a = v[lo], b = v[mid], c = v[hi], pivot, t;
		pivot = a < b ? (b < c ? b : a < c ? c : a) :
		    (a < c ? a : b < c ? c : b);
		while (i <= j) {
			while (v[i] < pivot) {
				i++;
			}
			while (v[j] > pivot) {
				j--;
			}
			if (i <= j) {
				t = v[i];
				v[i] = v[j];
				v[j] = t;
				i++;
				if (j == 0) {
					break;
				}
				j--;
			}
		}
		if (k <= j) {
			hi = j;
		} else if (k >= i) {
			lo = i;
		} else {
			return;
		}
	}
}

/* The row first of v[0..n) in order (selected in v[base..n), which
 * holds every row from base up), into *at, and the least of those after
 * it (the next row) into *next when there is one. */
static void
row_and_next(int64_t *v, size_t n, size_t base, size_t first, int64_t *at,
    int64_t *next)
{
	select_kth(v + base, n - base, first - base);
	*at = v[first];
	if (first + 1 < n) {
		*next = v[first + 1];
		for (size_t i = first + 2; i < n; i++) {
			*next = v[i] < *next ? v[i] : *next;
		}
	}
}

/* As orderedsetaggs.c: the rows at floor and ceil of p * (n - 1),
 * interpolated as lo + pct * (hi - lo). A duration is seconds as
 * extract(epoch ...) gives it, a numeric whose cast to float8 is the
 * nearest double: microseconds / 1e6, one correctly rounded division. */
void
stats_percentiles_cont_us(int64_t *us, size_t n, const double *p, size_t m,
    double *out)
{
	/* Each selection leaves us[base..n) holding the greater rows. */
	size_t base = 0;

	for (size_t j = 0; j < m; j++) {
		double row = p[j] * (double)(n - 1);
		size_t first = (size_t)floor(row), second = (size_t)ceil(row);
		int64_t lo, hi;

		row_and_next(us, n, base, first, &lo, &hi);
		base = first;
		out[j] = second == first ? (double)lo / 1e6 : (double)lo / 1e6 +
		    (row - (double)first) * ((double)hi / 1e6 - (double)lo / 1e6);
	}
}

double
stats_percentile_cont_us(int64_t *us, size_t n, double p)
{
	double out;

	stats_percentiles_cont_us(us, n, &p, 1, &out);
	return out;
}

double
stats_median_scaled(int64_t *v, size_t n, double scale)
{
	int64_t lo, hi;

	/* The lower middle row, and for an even n the one above it. */
	row_and_next(v, n, 0, (n - 1) / 2, &lo, &hi);
	return n % 2 == 1 ? (double)lo / scale :
	    ((double)lo / scale + (double)hi / scale) / 2;
}
