/* strbuf.h - a growable byte buffer for building bodies and COPY rows.
 *
 * Appends never fail loudly: on out-of-memory the buffer remembers it
 * (strbuf_failed) and ignores further appends, so a caller builds a whole
 * text and checks once. The struct is plain data owned by the caller. */
#ifndef MILEPOST_COMMON_STRBUF_H
#define MILEPOST_COMMON_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *data;	/* NUL-terminated when len > 0 */
	size_t len;
	size_t cap;
	bool failed;
};

void strbuf_init(struct strbuf *sb);
/* Releases the memory and leaves sb empty and reusable. */
void strbuf_finish(struct strbuf *sb);
/* Forgets the content but keeps the memory. */
void strbuf_reset(struct strbuf *sb);

/* Forgets everything after the first len bytes (len <= sb->len). */
void strbuf_truncate(struct strbuf *sb, size_t len);

void strbuf_append(struct strbuf *sb, const void *data, size_t len);
void strbuf_append_str(struct strbuf *sb, const char *s);
void strbuf_append_char(struct strbuf *sb, char c);
void strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends s with JSON string escaping, without the surrounding quotes;
 * each byte that starts no UTF-8 character becomes U+FFFD. */
void strbuf_append_json_escaped(struct strbuf *sb, const char *s);

static inline bool
strbuf_failed(const struct strbuf *sb)
{
	return sb->failed;
}

#endif
