/* Bounded gzip inflation, JSON escaping and depth, UUIDs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "common/gzip.h"
#include "common/jsonutil.h"
#include "common/strbuf.h"
#include "common/utf8.h"
#include "common/uuid7.h"

/* Compresses in as a gzip member with zlib itself. */
static unsigned char *
gzip_of(const void *in, size_t len, size_t *out_len)
{
	z_stream zs = { 0 };
	size_t cap = compressBound((uLong)len) + 64;
	unsigned char *out = malloc(cap);

	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
	    Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (unsigned char *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

/* jsonutil_dumps: reals as the shortest text that reads back the same. */
static void
test_dumps_shortest_reals(void **state)
{
	static const struct {
		double d;
		const char *text;
	} cases[] = {
		{ 0.022, "0.022" }, { 2.0 / 3.0, "0.6666666666666666" },
		{ 480.0 - 1e-13, "479.9999999999999" }, { 3.0, "3.0" },
		{ -0.5, "-0.5" }, { 1e300, "1e+300" }, { 0.1 + 0.2,
		"0.30000000000000004" }, { 1.959964, "1.959964" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *v = json_pack("{s:f, s:s, s:[f, I]}", "x", cases[i].d,
		    "s", "-1.25 \"0.1\" e5", "a", cases[i].d,
		    (json_int_t)-12);
		char *got = jsonutil_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		char want[160];
		snprintf(want, sizeof(want), "{\"a\":[%s,-12],\"s\":"
		    "\"-1.25 \\\"0.1\\\" e5\",\"x\":%s}", cases[i].text,
		    cases[i].text);
		assert_string_equal(got, want);
		/* And it reads back as the same double. */
		json_t *back = json_loads(got, 0, NULL);
		assert_true(json_real_value(json_object_get(back, "x")) ==
		    cases[i].d);
		json_decref(back);
		free(got);
		json_decref(v);
	}
	/* Without a real the text is jansson's, strings untouched. */
	json_t *ints = json_loads("{\"a\":[1,-2],\"s\":\"1.50 \\\" 2e3\"}", 0,
	    NULL);
	char *got = jsonutil_dumps(ints, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(got, "{\"a\":[1,-2],\"s\":\"1.50 \\\" 2e3\"}");
	free(got);
	json_decref(ints);
}

static void
test_gzip_roundtrip(void **state)
{
	const char *text = "{\"name\":\"cart_added\"}";
	struct strbuf out;
	struct error err;
	size_t n;
	unsigned char *gz = gzip_of(text, strlen(text), &n);

	(void)state;
	strbuf_init(&out);
	assert_true(gzip_inflate_bounded(gz, n, 1024, &out, &err));
	assert_int_equal(out.len, strlen(text));
	assert_memory_equal(out.data, text, out.len);
	strbuf_finish(&out);
	free(gz);
}

static void
test_gzip_bomb_is_bounded(void **state)
{
	size_t big = 8 << 20, n;
	char *zeros = calloc(1, big);
	unsigned char *gz = gzip_of(zeros, big, &n);
	struct strbuf out;
	struct error err;

	(void)state;
	assert_true(n < 20000);
	strbuf_init(&out);
	assert_false(gzip_inflate_bounded(gz, n, 512 * 1024, &out, &err));
	assert_int_equal(err.code, ERR_PAYLOAD_TOO_LARGE);
	/* Stopped near the limit, not after inflating all 8 MiB. */
	assert_true(out.len <= 512 * 1024 + 16384);
	strbuf_finish(&out);
	free(gz);
	free(zeros);
}

static void
test_gzip_members_are_bounded(void **state)
{
	size_t one = 16384, n, i;
	char *spaces = malloc(one);
	unsigned char *gz, *cat;
	struct strbuf out;
	struct error err;

	(void)state;
	memset(spaces, ' ', one);
	gz = gzip_of(spaces, one, &n);
	cat = malloc(n * 65);
	for (i = 0; i < 65; i++) {
		memcpy(cat + i * n, gz, n);
	}
	strbuf_init(&out);
	/* 40 members of 16 KiB pass the member bound but not 512 KiB. */
	assert_false(gzip_inflate_bounded(cat, n * 40, 512 * 1024, &out, &err));
	assert_int_equal(err.code, ERR_PAYLOAD_TOO_LARGE);
	assert_true(out.len <= 512 * 1024 + 16384);
	strbuf_reset(&out);
	assert_true(gzip_inflate_bounded(cat, n * GZIP_MAX_MEMBERS, 2 << 20,
	    &out, &err));
	strbuf_reset(&out);
	assert_false(gzip_inflate_bounded(cat, n * 65, 2 << 20, &out, &err));
	assert_int_equal(err.code, ERR_PAYLOAD_TOO_LARGE);
	strbuf_finish(&out);
	free(cat);
	free(gz);
	free(spaces);
}

static void
test_gzip_corrupt_and_truncated(void **state)
{
	const char *text = "{\"name\":\"cart_added\",\"props\":{}}";
	struct strbuf out;
	struct error err;
	size_t n;
	unsigned char *gz = gzip_of(text, strlen(text), &n);

	(void)state;
	strbuf_init(&out);
	assert_false(gzip_inflate_bounded("not gzip", 8, 1024, &out, &err));
	assert_int_equal(err.code, ERR_MALFORMED_GZIP);
	strbuf_reset(&out);
	assert_false(gzip_inflate_bounded(gz, n / 2, 1024, &out, &err));
	assert_int_equal(err.code, ERR_MALFORMED_GZIP);
	strbuf_reset(&out);
	gz[n - 5] ^= 0xff;	/* breaks the length/CRC trailer */
	assert_false(gzip_inflate_bounded(gz, n, 1024, &out, &err));
	assert_int_equal(err.code, ERR_MALFORMED_GZIP);
	strbuf_finish(&out);
	free(gz);
}

static void
test_json_escaping(void **state)
{
	struct strbuf sb;

	(void)state;
	strbuf_init(&sb);
	strbuf_append_json_escaped(&sb, "a\"b\\c\n\t\x01é");
	assert_string_equal(sb.data, "a\\\"b\\\\c\\n\\t\\u0001é");
	strbuf_finish(&sb);
}

static void
test_depth(void **state)
{
	json_t *flat = json_pack("{s:i}", "a", 1);
	json_t *deep = json_pack("{s:[{s:[]}]}", "a", "b");
	json_t *scalar = json_integer(1);

	(void)state;
	assert_int_equal(jsonutil_depth(scalar, 10), 0);
	assert_int_equal(jsonutil_depth(flat, 10), 1);
	assert_int_equal(jsonutil_depth(deep, 10), 4);
	assert_true(jsonutil_depth(deep, 2) > 2);
	json_decref(flat);
	flat = json_pack("{s:s,s:[s,{s:s}]}", "k", "abc", "longest_key_12", "x",
	    "y", "abcdefghijklmnopqrst");
	{
		size_t longest = 0;

		/* Both bounds from one walk: keys count, nested strings too. */
		assert_int_equal(jsonutil_extent(flat, 10, 100, &longest), 3);
		assert_int_equal(longest, 20);
		assert_int_equal(jsonutil_extent(scalar, 10, 100, &longest), 0);
		assert_int_equal(longest, 0);
		/* Past the string limit the walk may stop, but says so. */
		jsonutil_extent(flat, 10, 5, &longest);
		assert_true(longest > 5);
	}
	json_decref(flat);
	json_decref(deep);
	json_decref(scalar);
}

static void
test_count_values(void **state)
{
	static const struct {
		const char *text;
		size_t values;
	} docs[] = {
		{ "{}", 1 }, { "[]", 1 }, { "0", 1 }, { "\"s\"", 1 },
		{ "[[],{},[[]]]", 5 },
		{ "{\"a\":1,\"b\":[true,false,null,-1.5e3,\"x\"]}", 8 },
		/* Brackets, commas, colons and quotes inside strings are text. */
		{ " { \"k:,[{\" : \"v\\\"]:,\" , \"n\" : { \"m\" : [ 1 , 2 ] } } ",
		  6 },
		{ "{\"context\":{\"a\":{},\"b\":[]},\"batch\":[{\"type\":"
		  "\"track\",\"event\":\"x\",\"context\":{}}]}", 9 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		size_t len = strlen(docs[i].text);

		assert_int_equal(jsonutil_count_values(docs[i].text, len, 1000),
		    docs[i].values);
		/* Past the limit the count stops, one over it. */
		assert_int_equal(jsonutil_count_values(docs[i].text, len, 0), 1);
		assert_int_equal(jsonutil_count_values(docs[i].text, len,
		    docs[i].values), docs[i].values);
	}
}

static void
test_uuid(void **state)
{
	char a[UUID7_TEXT_LEN], b[UUID7_TEXT_LEN];

	(void)state;
	assert_true(uuid7_generate(1700000000000, a));
	assert_true(uuid7_generate(1700000000001, b));
	assert_true(uuid7_is_valid_text(a));
	assert_int_equal(a[14], '7');
	/* Time-ordered: the later millisecond sorts later. */
	assert_true(strcmp(a, b) < 0);
	assert_memory_equal(a, "018bcfe5-6800", 13);
	assert_true(uuid7_is_valid_text("0190B3C4-1234-7ABC-8DEF-0123456789AB"));
	assert_false(uuid7_is_valid_text("0190b3c412347abc8def0123456789ab"));
	assert_false(uuid7_is_valid_text("0190b3c4-1234-7abc-8def-0123456789a"));
	assert_false(uuid7_is_valid_text("0190b3c4-1234-7abc-8def_0123456789ab"));
}

static void
test_utf8(void **state)
{
	struct strbuf sb;

	(void)state;
	assert_true(utf8_is_text("", 0));
	assert_true(utf8_is_text("caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
	assert_false(utf8_is_text("a\0b", 3));		/* NUL */
	assert_false(utf8_is_text("\xff\xfe", 2));
	assert_false(utf8_is_text("\xc0\xaf", 2));		/* overlong */
	assert_false(utf8_is_text("\xed\xa0\x80", 3));	/* surrogate */
	assert_false(utf8_is_text("\xf4\x90\x80\x80", 4));	/* > U+10FFFF */
	assert_false(utf8_is_text("\xc3", 1));		/* cut short */
	/* The escaper keeps characters and replaces what is no UTF-8. */
	strbuf_init(&sb);
	strbuf_append_json_escaped(&sb, "\xc3\xa9\xff\"\xe2\x82");
	assert_string_equal(sb.data, "\xc3\xa9\xef\xbf\xbd\\\"\xef\xbf\xbd"
	    "\xef\xbf\xbd");
	strbuf_finish(&sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dumps_shortest_reals),
		cmocka_unit_test(test_gzip_roundtrip),
		cmocka_unit_test(test_gzip_bomb_is_bounded),
		cmocka_unit_test(test_gzip_members_are_bounded),
		cmocka_unit_test(test_gzip_corrupt_and_truncated),
		cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_count_values),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
