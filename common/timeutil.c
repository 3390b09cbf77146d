/* timeutil.c - RFC 3339 parsing and formatting in UTC. */
#include "common/timeutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Days between 1970-01-01 and y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned
days_in_month(int64_t y, unsigned m)
{
	static const unsigned dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
		31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n decimal digits. */
static bool
digits(const char **p, int n, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9') {
			return false;
		}
		v = v * 10 + (unsigned)(c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool
expect(const char **p, char a, char b)
{
	if (**p != a && **p != b) {
		return false;
	}
	(*p)++;
	return true;
}

/* 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in microseconds: the
 * text we write has four-digit years, and PostgreSQL refuses year 0. */
#define TS_FIRST_US (INT64_C(-62135596800) * TIMEUTIL_US_PER_SEC)
#define TS_PAST_LAST_US (INT64_C(253402300800) * TIMEUTIL_US_PER_SEC)

bool
timeutil_parse_rfc3339(const char *s, int64_t *us)
{
	unsigned y, mo, d, h, mi, sec, oh = 0, om = 0;
	int64_t frac = 0, scale = 100000, offset_s = 0, t;
	const char *p = s;

	if (!digits(&p, 4, &y) || !expect(&p, '-', '-') ||
	    !digits(&p, 2, &mo) || !expect(&p, '-', '-') ||
	    !digits(&p, 2, &d) || !expect(&p, 'T', 't') ||
	    !digits(&p, 2, &h) || !expect(&p, ':', ':') ||
	    !digits(&p, 2, &mi) || !expect(&p, ':', ':') ||
	    !digits(&p, 2, &sec)) {
		return false;
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9') {
			return false;
		}
		for (; *p >= '0' && *p <= '9'; p++) {
			frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		p++;
		if (!digits(&p, 2, &oh) || !expect(&p, ':', ':') ||
		    !digits(&p, 2, &om) || oh > 23 || om > 59) {
			return false;
		}
		offset_s = sign * (int64_t)(oh * 3600 + om * 60);
	} else {
		return false;
	}
	if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 ||
	    d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60) {
		return false;
	}
	/* A leap second is folded into the next one, as PostgreSQL does. */
	t = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	    offset_s) * TIMEUTIL_US_PER_SEC) + frac;
	/* The offset may carry 0001-01-01 into year 0, which PostgreSQL
	 * refuses (a whole batch with it), or 9999-12-31 into 10000. */
	if (t < TS_FIRST_US || t >= TS_PAST_LAST_US) {
		return false;
	}
	*us = t;
	return true;
}

void
timeutil_format_rfc3339(int64_t us, char out[TIMEUTIL_RFC3339_LEN])
{
	int64_t secs = us / TIMEUTIL_US_PER_SEC, frac = us % TIMEUTIL_US_PER_SEC;
	int64_t days, rem, y;
	unsigned m, d;
	char wide[64];

	if (frac < 0) {
		frac += TIMEUTIL_US_PER_SEC;
		secs--;
	}
	days = secs / 86400;
	rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	/* Years outside 0..9999 have no RFC 3339 form; clamp rather than
	 * overflow the fixed-size field. */
	y = y < 0 ? 0 : y > 9999 ? 9999 : y;
	snprintf(wide, sizeof(wide), "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ",
	    (int)y, m, d, (int)(rem / 3600), (int)(rem / 60 % 60),
	    (int)(rem % 60), (int)frac);
	memcpy(out, wide, TIMEUTIL_RFC3339_LEN - 1);
	out[TIMEUTIL_RFC3339_LEN - 1] = '\0';
}

int64_t
timeutil_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * TIMEUTIL_US_PER_SEC + ts.tv_nsec / 1000;
}

int64_t
timeutil_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
timeutil_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int32_t
timeutil_month_index(int64_t us)
{
	int64_t secs = us / TIMEUTIL_US_PER_SEC, days, y;
	unsigned m, d;

	if (us % TIMEUTIL_US_PER_SEC < 0) {
		secs--;
	}
	days = secs / 86400 - (secs % 86400 < 0);
	civil_from_days(days, &y, &m, &d);
	return (int32_t)(y * 12 + m - 1);
}

int64_t
timeutil_month_start_us(int32_t month_index)
{
	int64_t y = month_index / 12;
	unsigned m = (unsigned)(month_index % 12) + 1;

	return days_from_civil(y, m, 1) * 86400 * TIMEUTIL_US_PER_SEC;
}

bool
timeutil_parse_duration(const char *s, int64_t max_us, int64_t *us)
{
	int64_t n = 0, unit;
	size_t i = 0;

	/* Six digits are more than any bound the API sets (180 days). */
	while (s[i] >= '0' && s[i] <= '9' && i < 6) {
		n = n * 10 + (s[i++] - '0');
	}
	if (i == 0 || n == 0 || s[i + (s[i] != '\0')] != '\0') {
		return false;
	}
	switch (s[i]) {
	case 'd': unit = 86400 * TIMEUTIL_US_PER_SEC; break;
	case 'h': unit = 3600 * TIMEUTIL_US_PER_SEC; break;
	default: return false;
	}
	if (n > max_us / unit) {
		return false;
	}
	*us = n * unit;
	return true;
}
