/* urltext.h - the small text rules URLs need: ASCII-only case folding (the
 * same answer whatever the locale), form decoding (%XX and '+') one byte
 * at a time, so that hostile URLs cost no memory, and the encoding of
 * query-string values. */
#ifndef MILEPOST_COMMON_URLTEXT_H
#define MILEPOST_COMMON_URLTEXT_H

#include <stdbool.h>

unsigned char urltext_lower(unsigned char c);

/* The value of hex digit c, or -1. */
int urltext_hex(unsigned char c);

/* True if a and b are equal ignoring ASCII case. */
bool urltext_equal_ci(const char *a, const char *b);

/* The next byte of the form-encoded text at *p (before end), advancing
 * *p: '+' is a space, %XX the byte it names, and a '%' without two hex
 * digits stands for itself, as browsers read it. */
unsigned char urltext_next_decoded(const char **p, const char *end);

/* Appends s to sb percent-encoded for a query string: every byte but
 * the unreserved ones (RFC 3986: letters, digits, "-._~") as %XX. */
struct strbuf;
void urltext_append_escaped(struct strbuf *sb, const char *s);

#endif
