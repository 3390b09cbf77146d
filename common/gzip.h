/* gzip.h - bounded gzip decompression of request bodies, and compression
 * of the files the daemon serves.
 *
 * The bound is checked while inflating, so a small "gzip bomb" costs at
 * most limit bytes of memory. */
#ifndef MILEPOST_COMMON_GZIP_H
#define MILEPOST_COMMON_GZIP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/strbuf.h"

/* Concatenated members are valid gzip, but no client sends more than a few;
 * each one restarts zlib, so thousands of them only serve to cost time. */
#define GZIP_MAX_MEMBERS 64

/* Inflates the gzip member(s) in in into out (appended). Fails with
 * ERR_PAYLOAD_TOO_LARGE past limit bytes of output (counted across all
 * members) or past GZIP_MAX_MEMBERS members, and ERR_MALFORMED_GZIP on
 * corrupt or truncated input. */
bool gzip_inflate_bounded(const void *in, size_t in_len, size_t limit,
    struct strbuf *out, struct error *err);

/* Appends in, compressed at the best level as one gzip member, to out.
 * False out of memory (out is then failed or incomplete). */
bool gzip_compress(const void *in, size_t in_len, struct strbuf *out);

#endif
