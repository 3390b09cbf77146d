/* privacy.h - what keeps personal data out of the store: keyed hashes of
 * PII values, cookieless visitor ids from a daily salt, hashed API keys,
 * and URLs with their sensitive query parameters removed.
 *
 * Every hash and every random byte comes from libsodium; call
 * privacy_init once before any other function (it is idempotent and
 * thread-safe). No I/O besides the kernel's randomness. */
#ifndef MILEPOST_COMMON_PRIVACY_H
#define MILEPOST_COMMON_PRIVACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define PRIVACY_SALT_BYTES 32
/* Hex of a 32-byte digest plus the terminating NUL. */
#define PRIVACY_HEX_LEN 65
/* "v_" + 32 hex characters (a 16-byte digest) + NUL. */
#define PRIVACY_VISITOR_ID_LEN 35

/* Initialises libsodium. False (with err) when the library cannot start,
 * which the daemon treats as fatal. */
bool privacy_init(struct error *err);

/* Fills buf with len cryptographically secure random bytes. */
void privacy_random(void *buf, size_t len);

/* The 2 * len hex digits of buf, NUL-terminated, into out. */
void privacy_hex(const void *buf, size_t len, char *out);

/* The len bytes written as exactly 2 * len hex digits in text; false if
 * text is anything else. */
bool privacy_unhex(const char *text, void *out, size_t len);

/* Overwrites len bytes at p with zeros in a way the compiler keeps. */
void privacy_wipe(void *p, size_t len);

/* Keyed BLAKE2b-256 of data under key (any length >= 16 bytes, longer keys
 * are first hashed down to 32), as 64 lowercase hex characters in out.
 * Used for `pii: hash` properties: equal values give equal hashes under
 * one key, and nobody without the key can test a guess. */
void privacy_keyed_hash_hex(const void *key, size_t key_len,
    const void *data, size_t len, char out[PRIVACY_HEX_LEN]);

/* The cookieless visitor id of (site, ip, user agent) under the day's
 * salt: "v_" followed by 32 hex characters of a keyed BLAKE2b digest.
 * The three inputs are length-prefixed before hashing so that no two
 * different triples hash the same bytes. user_agent may be NULL (treated
 * as ""). Without the salt, which is destroyed when the day ends, the id
 * cannot be recomputed or linked to another day's id. */
void privacy_visitor_id(const uint8_t salt[PRIVACY_SALT_BYTES],
    const char *site_id, const char *ip, const char *user_agent,
    char out[PRIVACY_VISITOR_ID_LEN]);

/* SHA-256 of an API key as 64 lowercase hex characters: what the
 * configuration stores instead of the key. */
void privacy_key_sha256_hex(const char *key, char out[PRIVACY_HEX_LEN]);

/* True if key hashes to expected_hex (64 hex characters, either case).
 * The comparison takes the same time wherever the digests differ. */
bool privacy_key_matches(const char *key, const char *expected_hex);

/* True if given_hex (64 hex characters, either case) is
 * HMAC-SHA256(msg, key) in hex, as a site's backend computes it for
 * identity verification. Constant time, as privacy_key_matches. */
bool privacy_hmac_matches(const char *key, const char *msg,
    const char *given_hex);

/* A copy of url (caller frees) without the query parameters whose names
 * (percent-decoded, compared case-insensitively) are in deny[0..n_deny).
 * A fragment holding '=' is read as parameters too (after its own '?'
 * if it has one), other fragments are kept; a query left empty loses its
 * '?', a fragment left empty its '#'. Parameter order
 * and encoding of the kept parameters are unchanged. NULL only when out of
 * memory. *changed (may be NULL) tells whether anything was removed. */
char *privacy_strip_url_params(const char *url, const char *const *deny,
    size_t n_deny, bool *changed);

/* True if name is an advertising click id (gclid, fbclid, msclkid, dclid,
 * gbraid, wbraid, ttclid, twclid, li_fat_id, yclid, ...), compared
 * case-insensitively: identifiers that must go when consent is missing. */
bool privacy_is_click_id(const char *name);

/* The click-id names privacy_is_click_id knows, NULL-terminated. */
extern const char *const privacy_click_ids[];

#endif
