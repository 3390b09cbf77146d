/* User-Agent classification, driven by data/useragents.json (argv[1]; its
 * "about" says how a case is written), one cmocka test per case so that
 * the TAP output names the row that failed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cases.h"
#include <jansson.h>

#include "common/useragent.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The brief for the data file: enough real headers to mean something. */
#define MIN_CASES 45
#define MIN_BOT_CASES 12

static json_t *data;		/* the whole data file */

/* The row's keys: all known (cases_check_keys), the expected ones there. */
static void
check_row_keys(const json_t *c)
{
	static const char *const allowed[] = { "case", "ua", "device",
		"browser", "os", "bot_name", "pad_before", "pad_to", "why" };
	static const char *const required[] = { "case", "ua", "device",
		"browser", "os", "bot_name" };

	cases_check_keys(c, allowed, N_OF(allowed));
	for (size_t i = 0; i < N_OF(required); i++) {
		if (json_object_get(c, required[i]) == NULL) {
			fail_msg("%s: no \"%s\"", cases_name(c), required[i]);
		}
	}
}

/* The header of case c, padded as it asks; the caller frees it. NULL for
 * an absent header. */
static char *
case_header(const json_t *c)
{
	const char *ua = json_string_value(json_object_get(c, "ua"));
	json_int_t before = json_integer_value(json_object_get(c,
	    "pad_before"));
	json_int_t to = json_integer_value(json_object_get(c, "pad_to"));
	size_t len, total;
	char *s;

	if (ua == NULL) {
		if (!json_is_null(json_object_get(c, "ua"))) {
			fail_msg("%s: \"ua\" is a string or null",
			    cases_name(c));
		}
		return NULL;
	}
	if (before < 0 || to < 0 || to > 1000000) {
		fail_msg("%s: bad padding", cases_name(c));
	}
	len = (size_t)before + strlen(ua);
	total = (size_t)to > len ? (size_t)to : len;
	s = malloc(total + 1);
	assert_non_null(s);
	memset(s, 'x', total);
	memcpy(s + (size_t)before, ua, strlen(ua));
	s[total] = '\0';
	return s;
}

static void
compare(char *report, size_t size, const char *field, const char *got,
    const char *want)
{
	size_t len = strlen(report);

	if ((got == NULL) != (want == NULL) ||
	    (got != NULL && strcmp(got, want) != 0)) {
		snprintf(report + len, size - len, "\n  %s: got %s, want %s",
		    field, got != NULL ? got : "null",
		    want != NULL ? want : "null");
	}
}

static void
test_case(void **state)
{
	const json_t *c = *state;
	struct useragent u;
	char report[1024] = "";
	char *ua;

	check_row_keys(c);
	ua = case_header(c);
	/* Whatever was there before must not leak through. */
	memset(&u, 0xa5, sizeof(u));
	useragent_parse(ua, &u);
	free(ua);
	compare(report, sizeof(report), "device",
	    useragent_device_name(u.device),
	    json_string_value(json_object_get(c, "device")));
	compare(report, sizeof(report), "browser", u.browser,
	    json_string_value(json_object_get(c, "browser")));
	compare(report, sizeof(report), "os", u.os,
	    json_string_value(json_object_get(c, "os")));
	compare(report, sizeof(report), "bot_name", u.bot_name,
	    json_string_value(json_object_get(c, "bot_name")));
	if (u.bot != (u.device == UA_DEVICE_BOT) ||
	    u.bot != (u.bot_name != NULL)) {
		compare(report, sizeof(report), "bot flag",
		    u.bot ? "true" : "false", "device == bot == bot_name set");
	}
	if (report[0] != '\0') {
		fail_msg("%s:%s", cases_name(c), report);
	}
}

/* The data file holds what the header is meant to recognise. */
static void
test_data_file_is_enough(void **state)
{
	const json_t *cases = json_object_get(data, "cases");
	size_t i, bots = 0, real = 0;
	json_t *c;

	(void)state;
	json_array_foreach((json_t *)cases, i, c) {
		const char *ua = json_string_value(json_object_get(c, "ua"));

		if (!json_is_null(json_object_get(c, "bot_name"))) {
			bots++;
		} else if (ua != NULL && strncmp(ua, "Mozilla/5.0 (", 13) ==
		    0) {
			real++;
		}
	}
	assert_true(real >= MIN_CASES);
	assert_true(bots >= MIN_BOT_CASES);
}

static void
test_device_names(void **state)
{
	(void)state;
	assert_string_equal(useragent_device_name(UA_DEVICE_UNKNOWN),
	    "unknown");
	assert_string_equal(useragent_device_name(UA_DEVICE_DESKTOP),
	    "desktop");
	assert_string_equal(useragent_device_name(UA_DEVICE_MOBILE),
	    "mobile");
	assert_string_equal(useragent_device_name(UA_DEVICE_TABLET),
	    "tablet");
	assert_string_equal(useragent_device_name(UA_DEVICE_BOT), "bot");
	/* A value read from a corrupt row must not index past the table. */
	assert_string_equal(useragent_device_name((enum ua_device)99),
	    "unknown");
	assert_string_equal(useragent_device_name((enum ua_device)-1),
	    "unknown");
}

/* Families are constants, so results outlive the header they came from
 * and compare equal across calls. */
static void
test_families_outlive_the_header(void **state)
{
	char ua[] = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 "
	    "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
	struct useragent a, b;

	(void)state;
	useragent_parse(ua, &a);
	memset(ua, 0, sizeof(ua));
	useragent_parse("Mozilla/5.0 (Linux; Android 10; K) Chrome/1.0 "
	    "Mobile", &b);
	assert_string_equal(a.browser, "Chrome");
	assert_string_equal(a.os, "Android");
	assert_ptr_equal(a.browser, b.browser);
	assert_ptr_equal(a.os, b.os);
}

int
main(int argc, char **argv)
{
	static const struct cases_section sections[] = {
		{ "cases", "ua", test_case },
	};
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_data_file_is_enough),
		cmocka_unit_test(test_device_names),
		cmocka_unit_test(test_families_outlive_the_header),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s useragents.json\n", argv[0]);
		return 2;
	}
	return cases_run("useragent", argv[1], &data, sections,
	    N_OF(sections), fixed, N_OF(fixed), NULL);
}
