/* RFC 3339 parsing and formatting, and month arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/timeutil.h"

static void
roundtrip(const char *in, const char *want)
{
	char out[TIMEUTIL_RFC3339_LEN];
	int64_t us = 0;

	if (!timeutil_parse_rfc3339(in, &us)) {
		fail_msg("could not parse %s", in);
	}
	timeutil_format_rfc3339(us, out);
	assert_string_equal(out, want);
}

static void
test_parse_and_format(void **state)
{
	(void)state;
	roundtrip("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z");
	roundtrip("2026-11-23T08:45:00.123456789Z",
	    "2026-11-23T08:45:00.123456Z");
	roundtrip("2026-11-23t08:45:00z", "2026-11-23T08:45:00.000000Z");
	roundtrip("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00.000000Z");
	roundtrip("2024-02-29T23:00:00-05:30", "2024-03-01T04:30:00.000000Z");
	roundtrip("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500000Z");
	roundtrip("2016-12-31T23:59:60Z", "2017-01-01T00:00:00.000000Z");
	/* The ends of the range, offsets included. */
	roundtrip("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z");
	roundtrip("0001-01-01T23:59:00+23:59", "0001-01-01T00:00:00.000000Z");
	roundtrip("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z");
	roundtrip("9999-12-31T00:00:59.999999-23:59",
	    "9999-12-31T23:59:59.999999Z");
}

static void
test_epoch_value(void **state)
{
	int64_t us = 0;

	(void)state;
	assert_true(timeutil_parse_rfc3339("2001-09-09T01:46:40Z", &us));
	assert_int_equal(us, INT64_C(1000000000) * 1000000);
}

static void
test_rejects(void **state)
{
	static const char *const bad[] = {
		"", "2026-11-23", "2026-11-23T08:45:00", "2026-11-23 08:45:00Z",
		"2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
		"2026-11-23T24:00:00Z", "2026-11-23T08:60:00Z",
		"2026-11-23T08:45:00.Z", "2026-11-23T08:45:00+0100",
		"2026-11-23T08:45:00+24:00", "2026-11-23T08:45:00Zjunk",
		"0000-01-01T00:00:00Z", "+2026-11-23T08:45:00Z",
		/* Offsets that carry the instant out of what PostgreSQL
		 * stores: year 0 (it refused the whole batch), year 10000. */
		"0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00.5+00:01",
		"9999-12-31T23:59:59-00:01", "9999-12-31T12:00:00-12:00",
	};
	int64_t us = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (timeutil_parse_rfc3339(bad[i], &us)) {
			fail_msg("accepted '%s'", bad[i]);
		}
	}
	assert_int_equal(us, 42);
}

static void
test_months(void **state)
{
	int64_t us = 0;
	char out[TIMEUTIL_RFC3339_LEN];

	(void)state;
	assert_true(timeutil_parse_rfc3339("2021-03-31T23:59:59Z", &us));
	int32_t m = timeutil_month_index(us);
	assert_int_equal(m, 2021 * 12 + 2);
	timeutil_format_rfc3339(timeutil_month_start_us(m), out);
	assert_string_equal(out, "2021-03-01T00:00:00.000000Z");
	timeutil_format_rfc3339(timeutil_month_start_us(m + 10), out);
	assert_string_equal(out, "2022-01-01T00:00:00.000000Z");
	assert_true(timeutil_parse_rfc3339("1969-12-31T23:59:59Z", &us));
	assert_int_equal(timeutil_month_index(us), 1969 * 12 + 11);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_format),
		cmocka_unit_test(test_epoch_value),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_months),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
