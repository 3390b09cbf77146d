/* uuid7.h - event ids: UUIDv7 generation (time-ordered, so that index
 * inserts stay local) and validation of client-given UUID text. */
#ifndef MILEPOST_COMMON_UUID7_H
#define MILEPOST_COMMON_UUID7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 36 characters plus NUL. */
#define UUID7_TEXT_LEN 37

/* Writes a new lower-case UUIDv7 for time unix_ms into out. Returns false
 * if the system has no randomness to give (getrandom failed). */
bool uuid7_generate(int64_t unix_ms, char out[UUID7_TEXT_LEN]);

/* Writes the id that a sender's own message id name (len bytes, any
 * text) always maps to: a UUIDv8 made of a BLAKE2b hash of it, so that a
 * message sent twice is one event. False if hashing failed. */
bool uuid7_from_name(const char *name, size_t len, char out[UUID7_TEXT_LEN]);

/* True if s is a UUID in the 8-4-4-4-12 hex form (any version, any case). */
bool uuid7_is_valid_text(const char *s);

#endif
