/* gzip.c - inflate with zlib, bounded. */
#include "common/gzip.h"

#include <limits.h>
#include <stdint.h>
#include <zlib.h>

bool
gzip_inflate_bounded(const void *in, size_t in_len, size_t limit,
    struct strbuf *out, struct error *err)
{
	unsigned char chunk[16384];
	z_stream zs = { 0 };
	size_t start = out->len;
	int members = 1;
	int rc;

	if (in_len > UINT_MAX) {
		error_set(err, ERR_PAYLOAD_TOO_LARGE, "compressed body too large");
		return false;
	}
	/* 16 + MAX_WBITS: expect a gzip header, not raw zlib. */
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
		error_set(err, ERR_INTERNAL, "cannot initialise zlib");
		return false;
	}
	zs.next_in = (unsigned char *)(uintptr_t)in;
	zs.avail_in = (unsigned)in_len;
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		rc = inflate(&zs, Z_NO_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END) {
			break;
		}
		/* Checked before the append: the buffer never grows past
		 * limit. */
		if (out->len - start + (sizeof(chunk) - zs.avail_out) > limit) {
			inflateEnd(&zs);
			error_set(err, ERR_PAYLOAD_TOO_LARGE,
			    "body exceeds %zu bytes once decompressed", limit);
			return false;
		}
		strbuf_append(out, chunk, sizeof(chunk) - zs.avail_out);
		if (rc == Z_STREAM_END && zs.avail_in > 0) {
			if (++members > GZIP_MAX_MEMBERS) {
				inflateEnd(&zs);
				error_set(err, ERR_PAYLOAD_TOO_LARGE,
				    "body has more than %d gzip members",
				    GZIP_MAX_MEMBERS);
				return false;
			}
			if (inflateReset(&zs) != Z_OK) {
				rc = Z_DATA_ERROR;
				break;
			}
			rc = Z_OK;
		}
	} while (rc != Z_STREAM_END);
	if (rc != Z_STREAM_END) {
		error_set(err, ERR_MALFORMED_GZIP,
		    "body is not valid gzip (%s)", zs.msg ? zs.msg : "truncated");
		inflateEnd(&zs);
		return false;
	}
	inflateEnd(&zs);
	if (strbuf_failed(out)) {
		error_set(err, ERR_INTERNAL, "out of memory");
		return false;
	}
	return true;
}

bool
gzip_compress(const void *in, size_t in_len, struct strbuf *out)
{
	unsigned char chunk[16384];
	z_stream zs = { 0 };
	int rc;

	if (in_len > UINT_MAX || deflateInit2(&zs, Z_BEST_COMPRESSION,
	    Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
		return false;
	}
	zs.next_in = (unsigned char *)(uintptr_t)in;
	zs.avail_in = (unsigned)in_len;
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		rc = deflate(&zs, Z_FINISH);
		strbuf_append(out, chunk, sizeof(chunk) - zs.avail_out);
	} while (rc == Z_OK);
	deflateEnd(&zs);
	return rc == Z_STREAM_END && !strbuf_failed(out);
}
