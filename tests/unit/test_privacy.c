/* Keyed hashes, visitor ids, API key digests and URL parameter stripping.
 * Known answers were computed with Python's hashlib, independently of
 * libsodium, by the snippets quoted beside them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/privacy.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* 32 bytes: b"milepost-test-key-0123456789abcd" */
static const char key32[] = "milepost-test-key-0123456789abcd";
static const char data[] = "alice@example.com";

static bool
is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return s[n] == '\0';
}

static int
setup(void **state)
{
	struct error err;

	(void)state;
	return privacy_init(&err) ? 0 : -1;
}

static void
test_init_is_idempotent(void **state)
{
	struct error err;

	(void)state;
	assert_true(privacy_init(&err));
	assert_true(privacy_init(NULL));
}

static void
test_keyed_hash_known_answers(void **state)
{
	unsigned char k100[100];
	char out[PRIVACY_HEX_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(k100); i++) {
		k100[i] = (unsigned char)i;
	}
	/* hashlib.blake2b(b"alice@example.com",
	 *     key=b"milepost-test-key-0123456789abcd",
	 *     digest_size=32).hexdigest() */
	privacy_keyed_hash_hex(key32, 32, data, strlen(data), out);
	assert_string_equal(out,
	    "1bb4face361f0abbd9f097452127e813c20d32b3ecfcc52adc6f76c12181baaf");
	/* Same, with data=b"" */
	privacy_keyed_hash_hex(key32, 32, "", 0, out);
	assert_string_equal(out,
	    "68ea7903bc317e7ea4e37264ca455f5a057132fef410f3254d9b5918ed6118f2");
	/* Same, with key=b"0123456789abcdef" (the 16-byte minimum) */
	privacy_keyed_hash_hex("0123456789abcdef", 16, data, strlen(data), out);
	assert_string_equal(out,
	    "f76fefc7c42f2f3dceaaca9d15dfe85b1892a6cff4c3b9595bbfbc9a3b7696e8");
	/* k = bytes(range(100)); the key used is
	 * hashlib.blake2b(k, digest_size=32).digest() */
	privacy_keyed_hash_hex(k100, sizeof(k100), data, strlen(data), out);
	assert_string_equal(out,
	    "2872099ed32f1eb88c56d1776d790c3c75a6ce83dbfefd6390865c7b3715ed80");
	/* key=bytes(range(64)), the longest key used as it is */
	privacy_keyed_hash_hex(k100, 64, data, strlen(data), out);
	assert_string_equal(out,
	    "ddcf0027c4c0b774b933bc31d5aeefde22a64d0a8a97198f4aba1bf410db86f6");
}

static void
test_keyed_hash_depends_on_key(void **state)
{
	unsigned char k100[100];
	char a[PRIVACY_HEX_LEN], b[PRIVACY_HEX_LEN];
	char other[sizeof(key32)];

	(void)state;
	memcpy(other, key32, sizeof(key32));
	other[31] ^= 1;
	privacy_keyed_hash_hex(key32, 32, data, strlen(data), a);
	privacy_keyed_hash_hex(other, 32, data, strlen(data), b);
	assert_true(is_lower_hex(a, 64));
	assert_string_not_equal(a, b);
	/* Deterministic under one key. */
	privacy_keyed_hash_hex(key32, 32, data, strlen(data), b);
	assert_string_equal(a, b);
	/* Bytes past the 64th still count once the key is hashed down. */
	memset(k100, 0x5a, sizeof(k100));
	privacy_keyed_hash_hex(k100, 100, data, strlen(data), a);
	privacy_keyed_hash_hex(k100, 64, data, strlen(data), b);
	assert_string_not_equal(a, b);
	k100[99] ^= 1;
	privacy_keyed_hash_hex(k100, 100, data, strlen(data), b);
	assert_string_not_equal(a, b);
	/* 65 bytes is hashed down, not truncated to 64. */
	privacy_keyed_hash_hex(k100, 65, data, strlen(data), a);
	privacy_keyed_hash_hex(k100, 64, data, strlen(data), b);
	assert_string_not_equal(a, b);
}

static void
fill_salt(uint8_t salt[PRIVACY_SALT_BYTES])
{
	for (size_t i = 0; i < PRIVACY_SALT_BYTES; i++) {
		salt[i] = (uint8_t)i;
	}
}

static void
test_visitor_id_known_answer(void **state)
{
	uint8_t salt[PRIVACY_SALT_BYTES];
	char id[PRIVACY_VISITOR_ID_LEN];

	(void)state;
	fill_salt(salt);
	/* enc = lambda *xs: b"".join(struct.pack('<Q', len(x)) + x
	 *     for x in xs)
	 * "v_" + hashlib.blake2b(enc(b"site_1", b"203.0.113.7",
	 *     b"Mozilla/5.0"), key=bytes(range(32)),
	 *     digest_size=16).hexdigest() */
	privacy_visitor_id(salt, "site_1", "203.0.113.7", "Mozilla/5.0", id);
	assert_string_equal(id, "v_63e49716a68461927f83c33a116b3275");
	assert_int_equal(strlen(id), PRIVACY_VISITOR_ID_LEN - 1);
	assert_true(is_lower_hex(id + 2, 32));
}

struct vid_case {
	const char *site, *ip, *ua;
};

static void
test_visitor_id_inputs(void **state)
{
	/* Every row must give a different id from every other row. */
	static const struct vid_case rows[] = {
		{ "site_1", "203.0.113.7", "Mozilla/5.0" },
		{ "site_2", "203.0.113.7", "Mozilla/5.0" },
		{ "site_1", "203.0.113.8", "Mozilla/5.0" },
		{ "site_1", "203.0.113.7", "Mozilla/5.1" },
		{ "site_1", "203.0.113.7", "" },
		/* Moving a boundary must change the id. */
		{ "ab", "c", "x" },
		{ "a", "bc", "x" },
		{ "a", "b", "cx" },
		{ "a", "bcx", "" },
		{ "", "abc", "x" },
		{ "abc", "", "x" },
	};
	char ids[N_OF(rows)][PRIVACY_VISITOR_ID_LEN];
	char again[PRIVACY_VISITOR_ID_LEN];
	uint8_t salt[PRIVACY_SALT_BYTES];

	(void)state;
	fill_salt(salt);
	for (size_t i = 0; i < N_OF(rows); i++) {
		privacy_visitor_id(salt, rows[i].site, rows[i].ip, rows[i].ua,
		    ids[i]);
		assert_int_equal(strncmp(ids[i], "v_", 2), 0);
		assert_true(is_lower_hex(ids[i] + 2, 32));
		privacy_visitor_id(salt, rows[i].site, rows[i].ip, rows[i].ua,
		    again);
		assert_string_equal(ids[i], again);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(ids[i], ids[j]) == 0) {
				fail_msg("rows %zu and %zu share id %s", j, i,
				    ids[i]);
			}
		}
	}
	/* A NULL user agent is the empty one. */
	privacy_visitor_id(salt, "site_1", "203.0.113.7", NULL, again);
	assert_string_equal(again, ids[4]);
	/* The next day's salt gives another id. */
	salt[0] ^= 0x80;
	privacy_visitor_id(salt, "site_1", "203.0.113.7", "Mozilla/5.0", again);
	assert_string_not_equal(again, ids[0]);
}

static void
test_sha256_and_key_matches(void **state)
{
	/* hashlib.sha256(b"mp_live_4f3c2a").hexdigest() */
	static const char want[] =
	    "11e49e0fcb49216df68f01fdfde4f714b355b1fd675fcee60817e2d4ada67245";
	char out[PRIVACY_HEX_LEN], upper[PRIVACY_HEX_LEN];
	char bad[PRIVACY_HEX_LEN + 1];

	(void)state;
	/* hashlib.sha256(b"abc").hexdigest(), also FIPS 180-2's example */
	privacy_key_sha256_hex("abc", out);
	assert_string_equal(out,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	privacy_key_sha256_hex("mp_live_4f3c2a", out);
	assert_string_equal(out, want);

	assert_true(privacy_key_matches("mp_live_4f3c2a", want));
	for (size_t i = 0; i < sizeof(upper); i++) {
		char c = want[i];
		upper[i] = c >= 'a' && c <= 'f' ? (char)(c - 'a' + 'A') : c;
	}
	assert_true(privacy_key_matches("mp_live_4f3c2a", upper));
	assert_false(privacy_key_matches("mp_live_4f3c2b", want));
	assert_false(privacy_key_matches("", want));
	assert_false(privacy_key_matches(NULL, want));
	assert_false(privacy_key_matches("mp_live_4f3c2a", NULL));
	assert_false(privacy_key_matches("mp_live_4f3c2a", ""));

	/* 63 and 65 characters. */
	memcpy(bad, want, 63);
	bad[63] = '\0';
	assert_false(privacy_key_matches("mp_live_4f3c2a", bad));
	memcpy(bad, want, 64);
	bad[64] = '0';
	bad[65] = '\0';
	assert_false(privacy_key_matches("mp_live_4f3c2a", bad));
	/* 64 characters, not all hex. */
	static const char *const not_hex[] = { "g", " ", "-", ":", "\xc3" };
	for (size_t i = 0; i < N_OF(not_hex); i++) {
		memcpy(bad, want, sizeof(want));
		bad[10] = not_hex[i][0];
		if (privacy_key_matches("mp_live_4f3c2a", bad)) {
			fail_msg("accepted '%s'", bad);
		}
	}
	memcpy(bad, want, sizeof(want));
	bad[63] = 'x';
	assert_false(privacy_key_matches("mp_live_4f3c2a", bad));
}

struct strip_case {
	const char *in, *want;
	bool changed;
};

static const char *const deny[] = {
	"email", "token", "gclid", "first name", "redirect",
};

static void
check_strip(const char *in, const char *want, bool want_changed)
{
	bool changed = !want_changed;
	char *out = privacy_strip_url_params(in, deny, N_OF(deny), &changed);

	assert_non_null(out);
	if (strcmp(out, want) != 0 || changed != want_changed) {
		fail_msg("'%s' gave '%s' (changed %d), want '%s' (changed %d)",
		    in, out, changed, want, want_changed);
	}
	free(out);
}

static void
test_strip_table(void **state)
{
	static const struct strip_case rows[] = {
		{ "", "", false },
		{ "https://ex.com/p", "https://ex.com/p", false },
		{ "https://ex.com/p?a=1&b=2", "https://ex.com/p?a=1&b=2",
		    false },
		/* The only parameter goes, and with it the '?'. */
		{ "https://ex.com/p?email=a%40b.c", "https://ex.com/p", true },
		{ "?email=x", "", true },
		/* First, middle, last. */
		{ "/p?email=x&a=1&b=2", "/p?a=1&b=2", true },
		{ "/p?a=1&token=x&b=2", "/p?a=1&b=2", true },
		{ "/p?a=1&b=2&gclid=x", "/p?a=1&b=2", true },
		/* A plain fragment stays... */
		{ "/p?a=1&gclid=x#top", "/p?a=1#top", true },
		{ "/p?gclid=x#top", "/p#top", true },
		{ "/p#top?x", "/p#top?x", false },
		/* ...one holding parameters loses the denied ones (OAuth
		 * tokens, hash-route queries after the fragment's '?'). */
		{ "/p?a=1#gclid=x", "/p?a=1", true },
		{ "/cb#token=t&token_type=b", "/cb#token_type=b", true },
		{ "/p#s?gclid=x", "/p#s", true },
		{ "/p#/cart?email=x&step=2", "/p#/cart?step=2", true },
		{ "#?email=x", "", true },
		{ "/p#a=1&b=2", "/p#a=1&b=2", false },
		/* Names are compared case-insensitively... */
		{ "/p?Email=x&EMAIL=y&a=1&eMaIl", "/p?a=1", true },
		/* ...after percent-decoding, hex digits of either case... */
		{ "/p?e%6Dail=x&a=1&%45%4d%41IL=y", "/p?a=1", true },
		/* ...with '+' for a space. */
		{ "/p?first+name=Jo&first%20name=Jo&firstname=Jo&first_name=",
		    "/p?firstname=Jo&first_name=", true },
		/* No '=' at all. */
		{ "/p?token&a", "/p?a", true },
		{ "/p?a=1&token", "/p?a=1", true },
		/* Every repetition goes. */
		{ "/p?gclid=1&a=1&gclid=2&gclid=3", "/p?a=1", true },
		/* Values may hold '=', '?' and denied names. */
		{ "/p?email=a=b&c=email=d", "/p?c=email=d", true },
		{ "/p?next=/x?email=y&redirect=/z?a=b", "/p?next=/x?email=y",
		    true },
		{ "/p?gclid=1?x=2", "/p", true },
		/* Malformed escapes stand for themselves. */
		{ "/p?%zz=1&e%zzmail=2&%=3&a=%", "/p?%zz=1&e%zzmail=2&%=3&a=%",
		    false },
		{ "/p?email%=1&email%6=2&emai%6",
		    "/p?email%=1&email%6=2&emai%6", false },
		{ "/p?%", "/p?%", false },
		{ "/p?email%00=1&%00email=2", "/p?email%00=1&%00email=2",
		    false },
		/* Only '&' separates; near misses are kept. */
		{ "/p?a=1;email=2", "/p?a=1;email=2", false },
		{ "/p?emails=1&xemail=2&emai=3&utm_source=4",
		    "/p?emails=1&xemail=2&emai=3&utm_source=4", false },
		{ "/p?%C3%A9mail=1&\xff\xfe=2&email=3",
		    "/p?%C3%A9mail=1&\xff\xfe=2", true },
		/* Empty parameters are kept as they were... */
		{ "/p?", "/p?", false },
		{ "/p?#x", "/p?#x", false },
		{ "/p?&&", "/p?&&", false },
		{ "/p?a=1&&b=2&", "/p?a=1&&b=2&", false },
		{ "/p?a=1&&email=x", "/p?a=1&", true },
		/* ...unless nothing else is left. */
		{ "/p?email=x&", "/p", true },
		{ "/p?&email=x#f", "/p#f", true },
	};

	(void)state;
	assert_true(N_OF(rows) >= 15);
	for (size_t i = 0; i < N_OF(rows); i++) {
		check_strip(rows[i].in, rows[i].want, rows[i].changed);
	}
}

static void
test_strip_edge_arguments(void **state)
{
	static const char *const with_empty[] = { "" };
	static const char *const with_null[] = { NULL, "email" };
	char *out;
	bool changed = true;

	(void)state;
	/* No deny list at all. */
	out = privacy_strip_url_params("/p?email=x", NULL, 0, &changed);
	assert_string_equal(out, "/p?email=x");
	assert_false(changed);
	free(out);
	/* changed may be NULL. */
	out = privacy_strip_url_params("/p?email=x", deny, N_OF(deny), NULL);
	assert_string_equal(out, "/p");
	free(out);
	/* An empty name denies empty names only. */
	out = privacy_strip_url_params("/p?a&&=x&b", with_empty, 1, &changed);
	assert_string_equal(out, "/p?a&b");
	assert_true(changed);
	free(out);
	/* NULL entries are skipped. */
	out = privacy_strip_url_params("/p?email=x&a", with_null, 2, &changed);
	assert_string_equal(out, "/p?a");
	assert_true(changed);
	free(out);
	/* The click-id list is a deny list like any other. */
	size_t n = 0;
	while (privacy_click_ids[n] != NULL) {
		n++;
	}
	out = privacy_strip_url_params("/p?utm_source=ads&GCLID=x&fbclid=y",
	    privacy_click_ids, n, &changed);
	assert_string_equal(out, "/p?utm_source=ads");
	assert_true(changed);
	free(out);
}

static void
test_strip_long(void **state)
{
	/* 500 pairs: a 6 KB URL. */
	enum { PAIRS = 500 };
	char *in = malloc(3 + PAIRS * 12 + 1);
	char *want = malloc(3 + PAIRS * 4 + 1);
	size_t o = 0, w = 0;

	(void)state;
	assert_non_null(in);
	assert_non_null(want);
	memcpy(in, "/p?", 3);
	memcpy(want, "/p?", 3);
	o = w = 3;
	for (int i = 0; i < PAIRS; i++) {
		memcpy(in + o, "a=1&email=x&", 12);
		o += 12;
		memcpy(want + w, "a=1&", 4);
		w += 4;
	}
	in[o] = '\0';
	want[w] = '\0';
	/* The trailing '&' leaves an empty last parameter, which is kept. */
	check_strip(in, want, true);
	check_strip(want, want, false);
	free(in);
	free(want);
}

/* xorshift32: reproducible, unlike privacy_random. */
static uint32_t
next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
test_strip_hostile_bytes(void **state)
{
	/* Pieces that matter to the parser, glued at random; sometimes a
	 * random non-NUL byte instead. */
	static const char *const pieces[] = {
		"email", "EMAIL", "e%6Dail", "token", "first+name", "gclid",
		"=", "&", "&", "&", "?", "#", "%", "%zz", "%4", "%00", "+", "x",
		"emai", "l",
	};
	uint32_t seed = 0x2545f491;
	char in[600];
	int n_changed = 0, n_kept = 0;

	(void)state;
	for (int round = 0; round < 3000; round++) {
		size_t max = next_rand(&seed) % 500, len = 0;
		bool changed = false, again = true;
		char *out, *out2;

		while (len < max) {
			uint32_t r = next_rand(&seed);
			const char *piece = pieces[(r >> 8) % N_OF(pieces)];

			if (r % 8 == 0) {
				in[len++] = (char)(1 + (r >> 16) % 255);
			} else {
				memcpy(in + len, piece, strlen(piece));
				len += strlen(piece);
			}
		}
		in[len] = '\0';
		out = privacy_strip_url_params(in, deny, N_OF(deny), &changed);
		assert_non_null(out);
		if (!changed) {
			assert_string_equal(out, in);
			n_kept++;
		} else {
			assert_true(strlen(out) < len);
			n_changed++;
		}
		/* Stripping twice changes nothing more. */
		out2 = privacy_strip_url_params(out, deny, N_OF(deny), &again);
		assert_false(again);
		assert_string_equal(out2, out);
		free(out);
		free(out2);
	}
	/* Both outcomes were exercised. */
	assert_true(n_changed > 100);
	assert_true(n_kept > 100);
}

static void
test_click_ids(void **state)
{
	static const char *const yes[] = {
		"gclid", "GCLID", "FbClId", "msclkid", "dclid", "gbraid",
		"wbraid", "ttclid", "twclid", "li_fat_id", "LI_FAT_ID", "yclid",
		"igshid", "mc_cid", "epik", "rdt_cid", "sccid", "irclid",
		"gclsrc",
	};
	static const char *const no[] = {
		"utm_source", "gclidx", "xgclid", "gcli", "", "gclid ",
		"g%63lid", "fbclid\xff", "email",
	};

	(void)state;
	for (size_t i = 0; i < N_OF(yes); i++) {
		if (!privacy_is_click_id(yes[i])) {
			fail_msg("'%s' is a click id", yes[i]);
		}
	}
	for (size_t i = 0; i < N_OF(no); i++) {
		if (privacy_is_click_id(no[i])) {
			fail_msg("'%s' is not a click id", no[i]);
		}
	}
	assert_false(privacy_is_click_id(NULL));
	/* Every listed name is recognised, in lower case as listed. */
	for (size_t i = 0; privacy_click_ids[i] != NULL; i++) {
		assert_true(privacy_is_click_id(privacy_click_ids[i]));
	}
}

static void
test_random_and_wipe(void **state)
{
	unsigned char a[32], b[32], zero[32] = { 0 };

	(void)state;
	privacy_random(a, sizeof(a));
	privacy_random(b, sizeof(b));
	/* A 2^-256 chance of a false failure. */
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	privacy_random(NULL, 0);
	privacy_wipe(a, sizeof(a));
	assert_memory_equal(a, zero, sizeof(a));
	privacy_wipe(NULL, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_is_idempotent),
		cmocka_unit_test(test_keyed_hash_known_answers),
		cmocka_unit_test(test_keyed_hash_depends_on_key),
		cmocka_unit_test(test_visitor_id_known_answer),
		cmocka_unit_test(test_visitor_id_inputs),
		cmocka_unit_test(test_sha256_and_key_matches),
		cmocka_unit_test(test_strip_table),
		cmocka_unit_test(test_strip_edge_arguments),
		cmocka_unit_test(test_strip_long),
		cmocka_unit_test(test_strip_hostile_bytes),
		cmocka_unit_test(test_click_ids),
		cmocka_unit_test(test_random_and_wipe),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
