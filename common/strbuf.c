/* strbuf.c - growable byte buffer. */
#include "common/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

void
strbuf_init(struct strbuf *sb)
{
	memset(sb, 0, sizeof(*sb));
}

void
strbuf_finish(struct strbuf *sb)
{
	free(sb->data);
	strbuf_init(sb);
}

void
strbuf_reset(struct strbuf *sb)
{
	strbuf_truncate(sb, 0);
	sb->failed = false;
}

void
strbuf_truncate(struct strbuf *sb, size_t len)
{
	if (len < sb->len) {
		sb->len = len;
	}
	if (sb->data != NULL) {
		sb->data[sb->len] = '\0';
	}
}

/* Makes room for extra more bytes plus the terminating NUL. */
static bool
reserve(struct strbuf *sb, size_t extra)
{
	size_t need, cap;
	char *p;

	if (sb->failed) {
		return false;
	}
	if (extra > SIZE_MAX - sb->len - 1) {
		sb->failed = true;
		return false;
	}
	need = sb->len + extra + 1;
	if (need <= sb->cap) {
		return true;
	}
	cap = sb->cap != 0 ? sb->cap : 256;
	while (cap < need) {
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	}
	p = realloc(sb->data, cap);
	if (p == NULL) {
		sb->failed = true;
		return false;
	}
	sb->data = p;
	sb->cap = cap;
	return true;
}

void
strbuf_append(struct strbuf *sb, const void *data, size_t len)
{
	/* An empty buffer's data may be NULL, which memcpy may not take
	 * even for 0 bytes. */
	if (len == 0 || !reserve(sb, len)) {
		return;
	}
	memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
}

void
strbuf_append_str(struct strbuf *sb, const char *s)
{
	strbuf_append(sb, s, strlen(s));
}

void
strbuf_append_char(struct strbuf *sb, char c)
{
	strbuf_append(sb, &c, 1);
}

void
strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		sb->failed = true;
		return;
	}
	if (!reserve(sb, (size_t)n)) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void
strbuf_append_json_escaped(struct strbuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *run = p;
	size_t left = strlen(s), n;

	for (; *p != '\0'; p += n, left -= n) {
		n = *p >= 0x80 ? utf8_char_len(p, left) : 1;
		if (n > 1 || (n == 1 && *p >= 0x20 && *p != '"' &&
		    *p != '\\')) {
			continue;
		}
		strbuf_append(sb, run, (size_t)(p - run));
		switch (n == 0 ? 0 : *p) {
		/* Bytes that are no UTF-8 (raw input, or a character cut by
		 * a bounded copy) would make the JSON invalid. */
		case 0: strbuf_append(sb, "\xef\xbf\xbd", 3); break;
		case '"': strbuf_append(sb, "\\\"", 2); break;
		case '\\': strbuf_append(sb, "\\\\", 2); break;
		case '\n': strbuf_append(sb, "\\n", 2); break;
		case '\r': strbuf_append(sb, "\\r", 2); break;
		case '\t': strbuf_append(sb, "\\t", 2); break;
		default: strbuf_appendf(sb, "\\u%04x", *p); break;
		}
		n = 1;
		run = p + 1;
	}
	strbuf_append(sb, run, (size_t)(p - run));
}
