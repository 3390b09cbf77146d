/* privacy.c - keyed hashes, visitor ids, API key digests and URL scrubbing.
 * Every primitive is libsodium's; this file only arranges inputs and
 * encodes outputs. */
#include "common/privacy.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/urltext.h"

#define VISITOR_DIGEST_BYTES 16

const char *const privacy_click_ids[] = {
	"gclid", "gbraid", "wbraid", "dclid", "gclsrc", "fbclid", "msclkid",
	"ttclid", "twclid", "li_fat_id", "yclid", "igshid", "mc_cid", "epik",
	"rdt_cid", "sccid", "irclid", NULL,
};

bool
privacy_init(struct error *err)
{
	/* 0 is a first start, 1 an earlier one; both leave it usable. */
	if (sodium_init() < 0) {
		error_set(err, ERR_INTERNAL, "cannot initialise libsodium");
		return false;
	}
	return true;
}

void
privacy_random(void *buf, size_t len)
{
	/* libsodium declares buf nonnull even for an empty request. */
	if (len > 0) {
		randombytes_buf(buf, len);
	}
}

void
privacy_wipe(void *p, size_t len)
{
	if (len > 0) {
		sodium_memzero(p, len);
	}
}

void
privacy_keyed_hash_hex(const void *key, size_t key_len, const void *data,
    size_t len, char out[PRIVACY_HEX_LEN])
{
	unsigned char derived[crypto_generichash_BYTES];
	unsigned char digest[crypto_generichash_BYTES];
	const unsigned char *k = key;

	/* BLAKE2b takes keys of 16 to 64 bytes; any other key is replaced by
	 * its unkeyed digest, as HMAC does with long keys, so no caller can
	 * make libsodium refuse the call. */
	if (key_len < crypto_generichash_KEYBYTES_MIN ||
	    key_len > crypto_generichash_KEYBYTES_MAX) {
		(void)crypto_generichash(derived, sizeof(derived), key, key_len,
		    NULL, 0);
		k = derived;
		key_len = sizeof(derived);
	}
	(void)crypto_generichash(digest, sizeof(digest), data, len, k,
	    key_len);
	sodium_bin2hex(out, PRIVACY_HEX_LEN, digest, sizeof(digest));
	sodium_memzero(derived, sizeof(derived));
	sodium_memzero(digest, sizeof(digest));
}

/* Feeds s as an 8-byte little-endian length and its bytes, so that the
 * boundaries between fields are part of what is hashed. */
static void
absorb_field(crypto_generichash_state *st, const char *s)
{
	unsigned char len_le[8];
	size_t n;

	if (s == NULL) {
		s = "";
	}
	n = strlen(s);
	for (int i = 0; i < 8; i++) {
		len_le[i] = (unsigned char)((uint64_t)n >> (8 * i));
	}
	(void)crypto_generichash_update(st, len_le, sizeof(len_le));
	(void)crypto_generichash_update(st, (const unsigned char *)s, n);
}

void
privacy_visitor_id(const uint8_t salt[PRIVACY_SALT_BYTES],
    const char *site_id, const char *ip, const char *user_agent,
    char out[PRIVACY_VISITOR_ID_LEN])
{
	crypto_generichash_state st;
	unsigned char digest[VISITOR_DIGEST_BYTES];

	(void)crypto_generichash_init(&st, salt, PRIVACY_SALT_BYTES,
	    sizeof(digest));
	absorb_field(&st, site_id);
	absorb_field(&st, ip);
	absorb_field(&st, user_agent);
	(void)crypto_generichash_final(&st, digest, sizeof(digest));
	out[0] = 'v';
	out[1] = '_';
	sodium_bin2hex(out + 2, PRIVACY_VISITOR_ID_LEN - 2, digest,
	    sizeof(digest));
	/* The state holds the salt and the digest is a raw ip derivative. */
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(digest, sizeof(digest));
}

void
privacy_key_sha256_hex(const char *key, char out[PRIVACY_HEX_LEN])
{
	unsigned char digest[crypto_hash_sha256_BYTES];

	(void)crypto_hash_sha256(digest, (const unsigned char *)key,
	    strlen(key));
	sodium_bin2hex(out, PRIVACY_HEX_LEN, digest, sizeof(digest));
	sodium_memzero(digest, sizeof(digest));
}

void
privacy_hex(const void *buf, size_t len, char *out)
{
	sodium_bin2hex(out, 2 * len + 1, buf, len);
}

bool
privacy_unhex(const char *text, void *out, size_t len)
{
	size_t n = 0;

	/* Without hex_end, any character that is not hex is an error. */
	return strlen(text) == 2 * len && sodium_hex2bin(out, len, text,
	    2 * len, NULL, &n, NULL) == 0 && n == len;
}

bool
privacy_key_matches(const char *key, const char *expected_hex)
{
	unsigned char want[crypto_hash_sha256_BYTES];
	unsigned char got[crypto_hash_sha256_BYTES];
	bool ok = false;

	/* A missing key must not match the digest of the empty one. */
	if (key == NULL || expected_hex == NULL) {
		return false;
	}
	if (!privacy_unhex(expected_hex, want, sizeof(want))) {
		goto done;
	}
	(void)crypto_hash_sha256(got, (const unsigned char *)key, strlen(key));
	ok = sodium_memcmp(got, want, sizeof(got)) == 0;
done:
	sodium_memzero(got, sizeof(got));
	sodium_memzero(want, sizeof(want));
	return ok;
}

bool
privacy_hmac_matches(const char *key, const char *msg, const char *given_hex)
{
	unsigned char want[crypto_auth_hmacsha256_BYTES];
	unsigned char got[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	bool ok = false;

	if (key == NULL || key[0] == '\0' || msg == NULL ||
	    given_hex == NULL || !privacy_unhex(given_hex, got, sizeof(got))) {
		goto done;
	}
	/* The key is the secret's bytes as configured, of any length: what
	 * the one-liners of docs/snippet.md use. */
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key,
	    strlen(key));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg,
	    strlen(msg));
	crypto_auth_hmacsha256_final(&st, want);
	ok = sodium_memcmp(got, want, sizeof(got)) == 0;
	sodium_memzero(&st, sizeof(st));
done:
	sodium_memzero(got, sizeof(got));
	sodium_memzero(want, sizeof(want));
	return ok;
}

/* Whether the form-encoded name p[0..n) decodes to deny, ignoring ASCII
 * case. Decoding happens on the fly so hostile names cost no memory; a
 * '%' not followed by two hex digits stands for itself. */
static bool
name_is(const char *p, size_t n, const char *deny)
{
	const unsigned char *d = (const unsigned char *)deny;
	const char *end = p + n;
	size_t j = 0;

	while (p < end) {
		unsigned char c = urltext_next_decoded(&p, end);

		/* Checking the end of deny first keeps a decoded NUL from
		 * matching its terminator. */
		if (d[j] == '\0' || urltext_lower(c) != urltext_lower(d[j])) {
			return false;
		}
		j++;
	}
	return d[j] == '\0';
}

static bool
param_denied(const char *p, size_t n, const char *const *deny, size_t n_deny)
{
	const char *eq = memchr(p, '=', n);
	size_t name_len = eq != NULL ? (size_t)(eq - p) : n;

	for (size_t i = 0; i < n_deny; i++) {
		if (deny[i] != NULL && name_is(p, name_len, deny[i])) {
			return true;
		}
	}
	return false;
}

/* Copies the parameters of the query [p, end) that deny does not name to
 * out, joined by '&', and returns how many bytes it wrote. */
static size_t
copy_kept_params(char *out, const char *p, const char *end,
    const char *const *deny, size_t n_deny, bool *removed)
{
	size_t o = 0;
	bool first = true;

	for (;;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp != NULL ? amp : end;
		size_t n = (size_t)(pe - p);

		if (param_denied(p, n, deny, n_deny)) {
			*removed = true;
		} else {
			if (!first) {
				out[o++] = '&';
			}
			memcpy(out + o, p, n);
			o += n;
			first = false;
		}
		if (amp == NULL) {
			return o;
		}
		p = amp + 1;
	}
}

/* Copies the fragment [frag, end) to out without denied parameters, and
 * returns how many bytes it wrote. Tokens travel in fragments too (OAuth's
 * #access_token=...), as do the queries of hash routes (#/cart?email=...):
 * a fragment holding '=' is read as parameters, after its '?' if any. */
static size_t
copy_fragment(char *out, const char *frag, const char *end,
    const char *const *deny, size_t n_deny, bool *removed)
{
	size_t len = (size_t)(end - frag), o, kept;
	const char *q = memchr(frag, '?', len), *params;
	bool here = false;

	params = q != NULL ? q + 1 : memchr(frag, '=', len) != NULL ?
	    frag + 1 : NULL;
	if (params == NULL) {
		memcpy(out, frag, len);
		return len;
	}
	o = (size_t)(params - frag);
	memcpy(out, frag, o);
	kept = copy_kept_params(out + o, params, end, deny, n_deny, &here);
	if (kept == 0 && here) {
		o--;	/* the '?' or '#' led only to what went */
	}
	if (o + kept == 1 && here) {
		o = 0;	/* a lone '#' */
	}
	*removed = *removed || here;
	return o + kept;
}

char *
privacy_strip_url_params(const char *url, const char *const *deny,
    size_t n_deny, bool *changed)
{
	size_t url_len = strlen(url), o, kept;
	const char *frag = strchr(url, '#');
	const char *q = strchr(url, '?');
	const char *end = frag != NULL ? frag : url + url_len;
	bool removed = false;
	char *out;

	/* What is kept never outgrows the input. */
	out = malloc(url_len + 1);
	if (out == NULL) {
		return NULL;
	}
	/* A '?' inside the fragment does not start a query. */
	if (q == NULL || q > end) {
		q = end;
	}
	o = (size_t)(q - url);
	memcpy(out, url, o);
	if (q < end) {
		kept = copy_kept_params(out + o + 1, q + 1, end, deny, n_deny,
		    &removed);
		/* A query emptied by removals loses its '?'; one that came
		 * empty is left as it was. */
		if (kept > 0 || !removed) {
			out[o] = '?';
			o += 1 + kept;
		}
	}
	if (*end == '#') {
		o += copy_fragment(out + o, end, url + url_len, deny, n_deny,
		    &removed);
	}
	out[o] = '\0';
	if (changed != NULL) {
		*changed = removed;
	}
	return out;
}

bool
privacy_is_click_id(const char *name)
{
	if (name == NULL) {
		return false;
	}
	for (size_t i = 0; privacy_click_ids[i] != NULL; i++) {
		if (urltext_equal_ci(name, privacy_click_ids[i])) {
			return true;
		}
	}
	return false;
}
