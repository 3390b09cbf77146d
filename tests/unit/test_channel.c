/* Campaigns, referrer hosts and channels, driven by data/channels.json
 * (argv[1]; its "about" says how a case is written): one cmocka test per
 * case so that the TAP output names the row that failed. */
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

#include "common/channel.h"
#include "common/error.h"
#include "common/privacy.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define DEFAULT_SITE "https://shop.example/"

static json_t *data;

/* --- helpers ------------------------------------------------------------- */

/* The text of key in c (caller frees): a string, or an array of strings
 * and [string, count] pairs, concatenated, for texts too long to write
 * out. NULL when key is absent or null. */
static char *
text_of(const json_t *c, const char *key)
{
	const json_t *v = json_object_get(c, key);
	size_t len = 0, i;
	char *out;
	json_t *piece;

	if (v == NULL || json_is_null(v)) {
		return NULL;
	}
	if (json_is_string(v)) {
		out = strdup(json_string_value(v));
		assert_non_null(out);
		return out;
	}
	if (!json_is_array(v)) {
		fail_msg("%s: %s must be a string or an array", cases_name(c),
		    key);
	}
	out = calloc(1, 1);
	assert_non_null(out);
	json_array_foreach(v, i, piece) {
		const char *s = json_string_value(json_is_array(piece) ?
		    json_array_get(piece, 0) : piece);
		json_int_t count = json_is_array(piece) ?
		    json_integer_value(json_array_get(piece, 1)) : 1;
		if (s == NULL || count < 1) {
			fail_msg("%s: bad piece %zu of %s", cases_name(c), i,
			    key);
		}
		for (json_int_t k = 0; k < count; k++) {
			char *grown = realloc(out, len + strlen(s) + 1);
			assert_non_null(grown);
			out = grown;
			memcpy(out + len, s, strlen(s) + 1);
			len += strlen(s);
		}
	}
	return out;
}

/* The expected text of key, "" when absent: every field is checked. */
static void
expect_text(const json_t *c, const char *key, const char *got)
{
	char *want = text_of(c, key);

	if (strcmp(want != NULL ? want : "", got) != 0) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s: %s is \"%s\", expected \"%s\"",
		    cases_name(c), key, got, want != NULL ? want : "");
		free(want);
		fail_msg("%s", msg);
	}
	free(want);
}

/* --- data-driven cases --------------------------------------------------- */

static void
test_campaign_case(void **state)
{
	static const char *const keys[] = { "case", "url", "source",
		"medium", "name", "term", "content", "click_id_kind" };
	const json_t *c = *state;
	char *url = text_of(c, "url");
	struct campaign camp;

	cases_check_keys(c, keys, N_OF(keys));
	memset(&camp, 'x', sizeof(camp));
	campaign_from_url(url, &camp);
	free(url);
	expect_text(c, "source", camp.source);
	expect_text(c, "medium", camp.medium);
	expect_text(c, "name", camp.name);
	expect_text(c, "term", camp.term);
	expect_text(c, "content", camp.content);
	expect_text(c, "click_id_kind", camp.click_id_kind);
}

static void
test_url_host_case(void **state)
{
	static const char *const keys[] = { "case", "url", "host" };
	const json_t *c = *state;
	char *url = text_of(c, "url");
	char host[CHANNEL_HOST_MAX];

	cases_check_keys(c, keys, N_OF(keys));
	memset(host, 'x', sizeof(host));
	channel_url_host(url, host);
	free(url);
	expect_text(c, "host", host);
}

static void
test_same_site_case(void **state)
{
	static const char *const keys[] = { "case", "host", "site", "same" };
	const json_t *c = *state;
	const char *host = json_string_value(json_object_get(c, "host"));
	const char *site = json_string_value(json_object_get(c, "site"));
	bool want = json_is_true(json_object_get(c, "same"));

	cases_check_keys(c, keys, N_OF(keys));
	if (channel_same_site(host, site) != want) {
		fail_msg("%s: same_site(\"%s\", \"%s\") is %s", cases_name(c),
		    host, site, want ? "false" : "true");
	}
}

static void
test_source_of_host_case(void **state)
{
	static const char *const keys[] = { "case", "host", "source" };
	const json_t *c = *state;
	const char *host = json_string_value(json_object_get(c, "host"));
	char source[CHANNEL_FIELD_MAX];

	cases_check_keys(c, keys, N_OF(keys));
	memset(source, 'x', sizeof(source));
	channel_source_of_host(host, source);
	expect_text(c, "source", source);
}

/* The rules of a case: "rules" as a JSON value, or "rules_text" as the
 * very text; NULL text when neither is given. */
static char *
rules_text_of(const json_t *c)
{
	const json_t *rules = json_object_get(c, "rules");
	const char *text = json_string_value(json_object_get(c,
	    "rules_text"));
	char *out;

	if (rules != NULL) {
		out = json_dumps(rules, JSON_ENCODE_ANY);
	} else {
		out = text != NULL ? strdup(text) : NULL;
		if (text == NULL) {
			return NULL;
		}
	}
	assert_non_null(out);
	return out;
}

/* Copies the explicit campaign fields of the case over the URL's, as
 * given (not normalised), so that classify sees what a caller might. */
static void
overlay_campaign(const json_t *c, struct campaign *camp)
{
	static const struct {
		const char *key;
		size_t offset, size;
	} fields[] = {
		{ "source", offsetof(struct campaign, source),
		    CHANNEL_FIELD_MAX },
		{ "medium", offsetof(struct campaign, medium),
		    CHANNEL_FIELD_MAX },
		{ "click_id_kind", offsetof(struct campaign, click_id_kind),
		    sizeof(camp->click_id_kind) },
	};
	const json_t *given = json_object_get(c, "campaign");

	for (size_t i = 0; i < N_OF(fields); i++) {
		const char *s = json_string_value(json_object_get(given,
		    fields[i].key));
		if (s != NULL) {
			snprintf((char *)camp + fields[i].offset,
			    fields[i].size, "%s", s);
		}
	}
}

/* What the caller does: the campaign from the page URL, the referrer's
 * host unless it is the page's own site or the configured one. */
static void
test_classify_case(void **state)
{
	static const char *const keys[] = { "case", "url", "referrer",
		"site", "campaign", "rules", "channel" };
	const json_t *c = *state;
	const char *url = json_string_value(json_object_get(c, "url"));
	const char *ref = json_string_value(json_object_get(c, "referrer"));
	const char *site = json_string_value(json_object_get(c, "site"));
	const char *want = json_string_value(json_object_get(c, "channel"));
	char ref_host[CHANNEL_HOST_MAX], own[CHANNEL_HOST_MAX];
	char site_host[CHANNEL_HOST_MAX];
	struct channel_rules *rules;
	struct campaign camp;
	struct error err = { 0 };
	char *text = rules_text_of(c);
	enum channel got;

	cases_check_keys(c, keys, N_OF(keys));
	if (channel_from_name(want) < 0) {
		fail_msg("%s: \"%s\" is no channel", cases_name(c), want);
	}
	rules = channel_rules_new(text, &err);
	free(text);
	if (rules == NULL) {
		fail_msg("%s: rules refused: %s", cases_name(c), err.message);
	}
	campaign_from_url(url, &camp);
	overlay_campaign(c, &camp);
	channel_url_host(ref, ref_host);
	channel_url_host(url, own);
	channel_url_host(site != NULL ? site : DEFAULT_SITE, site_host);
	if (channel_same_site(ref_host, own) ||
	    channel_same_site(ref_host, site_host)) {
		ref_host[0] = '\0';
	}
	got = channel_classify(rules, &camp, ref_host);
	channel_rules_free(rules);
	if (strcmp(channel_name(got), want) != 0) {
		fail_msg("%s: %s, expected %s (source \"%s\", medium \"%s\", "
		    "click id \"%s\", referrer host \"%s\")", cases_name(c),
		    channel_name(got), want, camp.source, camp.medium,
		    camp.click_id_kind, ref_host);
	}
}

static void
test_rules_case(void **state)
{
	static const char *const keys[] = { "case", "rules", "rules_text",
		"error" };
	const json_t *c = *state;
	const char *want = json_string_value(json_object_get(c, "error"));
	struct error err = { 0 };
	struct channel_rules *rules;
	char *text = rules_text_of(c);

	cases_check_keys(c, keys, N_OF(keys));
	rules = channel_rules_new(text, &err);
	free(text);
	channel_rules_free(rules);
	if (want == NULL && rules == NULL) {
		fail_msg("%s: refused: %s", cases_name(c), err.message);
	}
	if (want != NULL && rules != NULL) {
		fail_msg("%s: accepted, expected \"%s\"", cases_name(c), want);
	}
	if (want != NULL && (err.code != ERR_CONFIG ||
	    strncmp(err.message, want, strlen(want)) != 0)) {
		fail_msg("%s: %s \"%s\", expected config_error \"%s...\"",
		    cases_name(c), error_code_name(err.code), err.message, want);
	}
}

/* --- fixed cases ---------------------------------------------------------*/

static void
test_null_inputs(void **state)
{
	struct campaign camp;
	char host[CHANNEL_HOST_MAX], source[CHANNEL_FIELD_MAX];

	(void)state;
	memset(&camp, 'x', sizeof(camp));
	campaign_from_url(NULL, &camp);
	assert_string_equal(camp.source, "");
	assert_string_equal(camp.click_id_kind, "");
	memset(host, 'x', sizeof(host));
	channel_url_host(NULL, host);
	assert_string_equal(host, "");
	memset(source, 'x', sizeof(source));
	channel_source_of_host(NULL, source);
	assert_string_equal(source, "");
	assert_false(channel_same_site(NULL, "example.com"));
	assert_false(channel_same_site("example.com", NULL));
	channel_rules_free(NULL);
}

static void
test_names_round_trip(void **state)
{
	(void)state;
	for (int i = 0; i < CHANNEL_COUNT_; i++) {
		const char *name = channel_name((enum channel)i);
		assert_non_null(name);
		assert_int_equal(channel_from_name(name), i);
	}
	assert_string_equal(channel_name(CHANNEL_PAID_SOCIAL), "Paid Social");
	assert_string_equal(channel_name(CHANNEL_COUNT_), "Unassigned");
	assert_int_equal(channel_from_name("paid search"), -1);
	assert_int_equal(channel_from_name("Paid Search "), -1);
	assert_int_equal(channel_from_name(""), -1);
	assert_int_equal(channel_from_name(NULL), -1);
}

/* Without rules and without a rules text, the built-in steps decide. */
static void
test_no_rules(void **state)
{
	struct error err = { 0 };
	struct channel_rules *none = channel_rules_new(NULL, &err);
	struct channel_rules *empty = channel_rules_new("[]", &err);
	struct campaign camp;

	(void)state;
	assert_non_null(none);
	assert_non_null(empty);
	campaign_from_url("https://shop.example/?utm_medium=email", &camp);
	assert_int_equal(channel_classify(NULL, &camp, ""), CHANNEL_EMAIL);
	assert_int_equal(channel_classify(none, &camp, ""), CHANNEL_EMAIL);
	assert_int_equal(channel_classify(empty, &camp, NULL),
	    CHANNEL_EMAIL);
	channel_rules_free(none);
	channel_rules_free(empty);
}

/* privacy.c removes every click id it knows; each must also mean
 * something here, or a new one would classify as Unassigned. */
static void
test_every_click_id_has_a_channel(void **state)
{
	(void)state;
	for (size_t i = 0; privacy_click_ids[i] != NULL; i++) {
		struct campaign camp;
		char url[64];
		enum channel ch;

		snprintf(url, sizeof(url), "/?%s=1", privacy_click_ids[i]);
		campaign_from_url(url, &camp);
		assert_string_equal(camp.click_id_kind, privacy_click_ids[i]);
		ch = channel_classify(NULL, &camp, "");
		if (ch == CHANNEL_DIRECT || ch == CHANNEL_UNASSIGNED) {
			fail_msg("click id %s: %s", privacy_click_ids[i],
			    channel_name(ch));
		}
	}
}

/* Every field of the campaign stays terminated whatever the URL. */
static void
test_long_values_stay_in_bounds(void **state)
{
	size_t n = 100000;
	char *url = malloc(n + 64);
	struct campaign camp;

	(void)state;
	assert_non_null(url);
	strcpy(url, "/?utm_content=");
	memset(url + strlen(url), 'a', n);
	strcpy(url + 14 + n, "&gclid=1");
	campaign_from_url(url, &camp);
	assert_int_equal(strlen(camp.content), CHANNEL_FIELD_MAX - 1);
	assert_string_equal(camp.click_id_kind, "gclid");
	free(url);
}

/* --- main ---------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	static const struct cases_section sections[] = {
		{ "campaign", "campaign", test_campaign_case },
		{ "url_host", "url_host", test_url_host_case },
		{ "same_site", "same_site", test_same_site_case },
		{ "source_of_host", "source_of_host", test_source_of_host_case },
		{ "classify", "classify", test_classify_case },
		{ "rules", "rules", test_rules_case },
	};
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_null_inputs),
		cmocka_unit_test(test_names_round_trip),
		cmocka_unit_test(test_no_rules),
		cmocka_unit_test(test_every_click_id_has_a_channel),
		cmocka_unit_test(test_long_values_stay_in_bounds),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s channels.json\n", argv[0]);
		return 2;
	}
	return cases_run("channel", argv[1], &data, sections, N_OF(sections),
	    fixed, N_OF(fixed), NULL);
}
