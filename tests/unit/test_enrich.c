/* Clock-skew correction and the campaign, referrer and device an event is
 * stored with (common/enrich.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/enrich.h"
#include "common/timeutil.h"

#define SEC TIMEUTIL_US_PER_SEC
#define DAY (INT64_C(86400) * SEC)
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const struct enrich_limits limits = {
	.future_tolerance_us = 60 * SEC,
	.max_age_us = 31 * DAY,
};

struct clock_case {
	const char *name;
	const char *ts;		/* NULL: none sent */
	const char *sent_at;	/* NULL: none sent */
	const char *want;	/* corrected time; NULL: refused */
	bool adjusted;
	enum err_code code;	/* when refused */
};

/* Every case is received at 2026-11-23T12:00:00Z. */
static const struct clock_case clock_cases[] = {
	{ "no ts: the arrival", NULL, NULL, "2026-11-23T12:00:00.000000Z",
	  false, ERR_NONE },
	{ "ts in the past kept", "2026-11-23T11:00:00Z", NULL,
	  "2026-11-23T11:00:00.000000Z", false, ERR_NONE },
	{ "sent_at moves ts by the sender's offset",
	  "2026-11-23T09:00:00Z", "2026-11-23T09:00:05Z",
	  "2026-11-23T11:59:55.000000Z", false, ERR_NONE },
	{ "a clock 3 years behind is corrected, not too old",
	  "2023-11-23T11:59:00Z", "2023-11-23T12:00:00Z",
	  "2026-11-23T11:59:00.000000Z", false, ERR_NONE },
	{ "a clock ahead is corrected too", "2026-11-23T14:00:00Z",
	  "2026-11-23T14:00:30Z", "2026-11-23T11:59:30.000000Z", false,
	  ERR_NONE },
	{ "ahead within the tolerance kept", "2026-11-23T12:01:00Z", NULL,
	  "2026-11-23T12:01:00.000000Z", false, ERR_NONE },
	{ "ahead beyond the tolerance clamped", "2026-11-23T12:01:01Z",
	  NULL, "2026-11-23T12:00:00.000000Z", true, ERR_NONE },
	{ "ts after sent_at clamped", "2026-11-23T12:10:00Z",
	  "2026-11-23T12:00:00Z", "2026-11-23T12:00:00.000000Z", true,
	  ERR_NONE },
	{ "years ahead clamped", "2999-01-01T00:00:00Z", NULL,
	  "2026-11-23T12:00:00.000000Z", true, ERR_NONE },
	{ "31 days old kept", "2026-10-23T12:00:00Z", NULL,
	  "2026-10-23T12:00:00.000000Z", false, ERR_NONE },
	{ "older than 31 days refused", "2026-10-23T11:59:59Z", NULL, NULL,
	  false, ERR_TOO_OLD },
	{ "before 2000 refused", "1999-12-31T23:59:59Z", NULL, NULL, false,
	  ERR_TIMESTAMP_OUT_OF_RANGE },
	{ "a clock stuck in 1999 is corrected by sent_at",
	  "1999-12-31T23:59:00Z", "1999-12-31T23:59:59Z",
	  "2026-11-23T11:59:01.000000Z", false, ERR_NONE },
};

static void
test_clock(void **state)
{
	int64_t received;

	(void)state;
	assert_true(timeutil_parse_rfc3339("2026-11-23T12:00:00Z", &received));
	for (size_t i = 0; i < N_OF(clock_cases); i++) {
		const struct clock_case *c = &clock_cases[i];
		struct event_problems probs = { .n = 0 };
		char got[TIMEUTIL_RFC3339_LEN];
		struct event ev = { .received_us = received,
			.ts_us = received };
		bool adjusted, ok;

		if (c->ts != NULL) {
			assert_true(timeutil_parse_rfc3339(c->ts, &ev.ts_us));
		}
		if (c->sent_at != NULL) {
			ev.has_sent_at = timeutil_parse_rfc3339(c->sent_at,
			    &ev.sent_at_us);
		}
		ok = enrich_clock(&ev, &limits, &adjusted, &probs);
		if (c->want == NULL) {
			if (ok || probs.n != 1 ||
			    probs.items[0].code != c->code) {
				fail_msg("%s: not refused as expected", c->name);
			}
			continue;
		}
		timeutil_format_rfc3339(ev.ts_us, got);
		if (!ok || strcmp(got, c->want) != 0 ||
		    adjusted != c->adjusted) {
			fail_msg("%s: got %s (ok %d, adjusted %d), want %s "
			    "(adjusted %d)", c->name, got, ok, adjusted,
			    c->want, c->adjusted);
		}
	}
}

/* What enrich_event is given: the request's user agent, classified. */
static const struct useragent *
device(const char *header)
{
	static struct useragent ua;

	useragent_parse(header, &ua);
	return &ua;
}

static void
test_explicit_campaign_wins(void **state)
{
	json_t *given = json_pack("{s:s, s:s}", "source", "  Newsletter ",
	    "name", "Spring");
	struct event ev = { .url = "https://shop.example/?utm_source=google"
	    "&utm_medium=cpc&utm_campaign=winter&gclid=abc",
	    .campaign = given };
	struct enrichment e;

	(void)state;
	enrich_event(NULL, &ev, device(NULL), NULL, 0, &e);
	assert_string_equal(e.campaign.source, "newsletter");
	assert_string_equal(e.campaign.medium, "cpc");	/* from the URL */
	assert_string_equal(e.campaign.name, "Spring");
	assert_string_equal(e.campaign.click_id_kind, "gclid");
	json_decref(given);
}

static void
test_internal_referrers(void **state)
{
	static const char *const hosts[] = { "shop.example" };
	struct event own = { .url = "https://blog.example/a",
	    .referrer = "https://www.blog.example/b" };
	struct event site = { .url = "https://checkout.example/pay",
	    .referrer = "https://m.shop.example/cart" };
	struct event outside = { .url = "https://blog.example/a",
	    .referrer = "https://news.example/story" };
	struct enrichment e;

	(void)state;
	enrich_event(NULL, &own, device(NULL), hosts, 1, &e);
	assert_string_equal(e.referrer_host, "");
	assert_int_equal(e.channel, CHANNEL_DIRECT);
	enrich_event(NULL, &site, device(NULL), hosts, 1, &e);
	assert_string_equal(e.referrer_host, "");
	enrich_event(NULL, &outside, device(NULL), hosts, 1, &e);
	assert_string_equal(e.referrer_host, "news.example");
	assert_int_equal(e.channel, CHANNEL_REFERRAL);
}

static void
test_device(void **state)
{
	struct event ev = { .url = NULL };
	struct enrichment e;

	(void)state;
	enrich_event(NULL, &ev, device("Mozilla/5.0 (compatible; bingbot/2.0; "
	    "+http://www.bing.com/bingbot.htm)"), NULL, 0, &e);
	assert_true(e.ua.bot);
	enrich_event(NULL, &ev, device(NULL), NULL, 0, &e);
	assert_false(e.ua.bot);
	assert_int_equal(e.ua.device, UA_DEVICE_UNKNOWN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_explicit_campaign_wins),
		cmocka_unit_test(test_internal_referrers),
		cmocka_unit_test(test_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
