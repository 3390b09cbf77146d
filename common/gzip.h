/* gzip.h - bounded gzip decompression of request bodies.
 *
 * The bound is checked while inflating, so a small "gzip bomb" costs at
 * most limit bytes of memory. */
#ifndef MILEPOST_COMMON_GZIP_H
#define MILEPOST_COMMON_GZIP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/strbuf.h"

/* Inflates the gzip member(s) in in into out (appended). Fails with
 * ERR_PAYLOAD_TOO_LARGE past limit bytes of output and ERR_MALFORMED_GZIP
 * on corrupt or truncated input. */
bool gzip_inflate_bounded(const void *in, size_t in_len, size_t limit,
    struct strbuf *out, struct error *err);

#endif
