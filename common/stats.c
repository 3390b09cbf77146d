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
		int64_t above;
		double lo, hi;

		select_kth(us + base, n - base, first - base);
		base = first;
		lo = (double)us[first] / 1e6;
		if (second == first) {
			out[j] = lo;
			continue;
		}
		/* The next row up is the least of those after the first. */
		above = us[first + 1];
		for (size_t i = first + 2; i < n; i++) {
			above = us[i] < above ? us[i] : above;
		}
		hi = (double)above / 1e6;
		out[j] = lo + (row - (double)first) * (hi - lo);
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
	size_t mid = n / 2;
	int64_t below;
	double hi;

	select_kth(v, n, mid);
	hi = (double)v[mid] / scale;
	if (n % 2 == 1) {
		return hi;
	}
	/* The middle one below is the greatest of those before it. */
	below = v[0];
	for (size_t i = 1; i < mid; i++) {
		below = v[i] > below ? v[i] : below;
	}
	return ((double)below / scale + hi) / 2;
}
