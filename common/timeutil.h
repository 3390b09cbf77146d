/* timeutil.h - RFC 3339 timestamps as microseconds since the Unix epoch.
 *
 * Pure calendar arithmetic in UTC: no time zone database, no locale, so
 * results do not depend on the machine's TZ. */
#ifndef MILEPOST_COMMON_TIMEUTIL_H
#define MILEPOST_COMMON_TIMEUTIL_H

#include <stdbool.h>
#include <stdint.h>

/* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" plus NUL. */
#define TIMEUTIL_RFC3339_LEN 28

#define TIMEUTIL_US_PER_SEC INT64_C(1000000)

/* Parses an RFC 3339 date-time (e.g. 2026-11-23T08:45:00.5+01:00) of an
 * instant from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z (in
 * UTC, after the offset: what PostgreSQL stores); fractions beyond
 * microseconds are truncated. Returns false on anything else, leaving *us
 * untouched. */
bool timeutil_parse_rfc3339(const char *s, int64_t *us);

/* Writes us as UTC with microseconds into out. */
void timeutil_format_rfc3339(int64_t us, char out[TIMEUTIL_RFC3339_LEN]);

/* Parses a duration the query API takes, a positive whole number of days
 * or hours ("30d", "12h"), into *us. False if s has another form, is zero,
 * or is longer than max_us. */
bool timeutil_parse_duration(const char *s, int64_t max_us, int64_t *us);

/* Microseconds since the epoch, wall clock. */
int64_t timeutil_now_us(void);

/* Milliseconds on a monotonic clock, for timeouts and ages. */
int64_t timeutil_monotonic_ms(void);

/* Nanoseconds on the same clock, for latencies. */
int64_t timeutil_monotonic_ns(void);

/* Months since year 0 (year * 12 + month - 1) of the UTC month holding us:
 * identifies an events partition. */
int32_t timeutil_month_index(int64_t us);

/* The first microsecond of the month with that index. */
int64_t timeutil_month_start_us(int32_t month_index);

#endif
