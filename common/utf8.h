/* utf8.h - checks of UTF-8 text, as PostgreSQL and JSON take it.
 *
 * Pure functions over bytes with explicit lengths, so that a NUL inside
 * is seen rather than taken for the end. */
#ifndef MILEPOST_COMMON_UTF8_H
#define MILEPOST_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The length of the well-formed UTF-8 character at s (avail bytes there,
 * at least 1), or 0 when s does not start one: overlong forms, surrogates
 * and code points past U+10FFFF are refused, as PostgreSQL refuses them. */
size_t utf8_char_len(const unsigned char *s, size_t avail);

/* True if the len bytes at s are well-formed UTF-8 holding no NUL. */
bool utf8_is_text(const char *s, size_t len);

#endif
