/* urltext.c - ASCII case, form decoding and query-string encoding. */
#include "common/urltext.h"

#include <string.h>

#include "common/strbuf.h"

unsigned char
urltext_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

int
urltext_hex(unsigned char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	c = urltext_lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool
urltext_equal_ci(const char *a, const char *b)
{
	while (*a != '\0' && urltext_lower((unsigned char)*a) ==
	    urltext_lower((unsigned char)*b)) {
		a++;
		b++;
	}
	return *a == '\0' && *b == '\0';
}

unsigned char
urltext_next_decoded(const char **p, const char *end)
{
	const char *s = *p;
	unsigned char c = (unsigned char)*s++;

	if (c == '+') {
		c = ' ';
	} else if (c == '%' && end - s >= 2) {
		int hi = urltext_hex((unsigned char)s[0]);
		int lo = urltext_hex((unsigned char)s[1]);

		if (hi >= 0 && lo >= 0) {
			c = (unsigned char)(hi * 16 + lo);
			s += 2;
		}
	}
	*p = s;
	return c;
}

void
urltext_append_escaped(struct strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	    p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL) {
			strbuf_append_char(sb, (char)*p);
		} else {
			strbuf_append_char(sb, '%');
			strbuf_append_char(sb, hex[*p >> 4]);
			strbuf_append_char(sb, hex[*p & 15]);
		}
	}
}
