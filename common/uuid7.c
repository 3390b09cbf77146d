/* uuid7.c - UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version, 74
 * random bits. */
#include "common/uuid7.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include <sodium.h>

/* Random bytes for ids come from the kernel in blocks, one syscall per
 * ~400 ids rather than one per id; each thread has its own block. */
static _Thread_local unsigned char pool[4096];
static _Thread_local size_t pool_left;

static bool
random_bytes(unsigned char *out, size_t n)
{
	if (pool_left < n) {
		if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool)) {
			return false;
		}
		pool_left = sizeof(pool);
	}
	memcpy(out, pool + sizeof(pool) - pool_left, n);
	/* Used bytes are wiped so no id's randomness lingers in memory. */
	memset(pool + sizeof(pool) - pool_left, 0, n);
	pool_left -= n;
	return true;
}

/* Writes the 16 bytes b as UUID text of the given version (its high
 * nibble), with RFC 9562's variant. */
static void
format_uuid(unsigned char b[16], unsigned version, char out[UUID7_TEXT_LEN])
{
	b[6] = (unsigned char)(version | (b[6] & 0x0f));
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
	snprintf(out, UUID7_TEXT_LEN,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
	    b[11], b[12], b[13], b[14], b[15]);
}

bool
uuid7_generate(int64_t unix_ms, char out[UUID7_TEXT_LEN])
{
	unsigned char b[16];
	uint64_t ms = (uint64_t)unix_ms;

	if (!random_bytes(b + 6, 10)) {
		return false;
	}
	for (int i = 0; i < 6; i++) {
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	}
	format_uuid(b, 0x70, out);
	return true;
}

bool
uuid7_from_name(const char *name, size_t len, char out[UUID7_TEXT_LEN])
{
	static const unsigned char domain[] = "milepost event id v1";
	unsigned char b[16];

	/* Keyed by a fixed domain string, so that these ids cannot be
	 * mistaken for hashes of the same names made elsewhere. */
	if (crypto_generichash(b, sizeof(b), (const unsigned char *)name, len,
	    domain, sizeof(domain) - 1) != 0) {
		return false;
	}
	format_uuid(b, 0x80, out);
	return true;
}

bool
uuid7_is_valid_text(const char *s)
{
	static const char dash_at[] = { 8, 13, 18, 23 };
	size_t d = 0;

	if (strlen(s) != 36) {
		return false;
	}
	for (size_t i = 0; i < 36; i++) {
		char c = s[i];
		if (d < sizeof(dash_at) && (size_t)dash_at[d] == i) {
			if (c != '-') {
				return false;
			}
			d++;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		    (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}
