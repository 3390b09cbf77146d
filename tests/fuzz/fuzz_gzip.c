/* libFuzzer target: hostile gzip bodies through the bounded inflate of
 * ingest (never past its limit), and any bytes through compress then
 * inflate, which must give them back. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/gzip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT (1 << 20)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf out, packed, back;
	struct error err = { 0 };

	strbuf_init(&out);
	if (gzip_inflate_bounded(data, size, LIMIT, &out, &err) &&
	    out.len > LIMIT) {
		__builtin_trap();
	}
	strbuf_finish(&out);
	strbuf_init(&packed);
	strbuf_init(&back);
	if (gzip_compress(data, size, &packed) && !strbuf_failed(&packed)) {
		if (!gzip_inflate_bounded(packed.data, packed.len, size + 1, &back,
		    &err) || back.len != size ||
		    (size > 0 && memcmp(back.data, data, size) != 0)) {
			__builtin_trap();
		}
	}
	strbuf_finish(&packed);
	strbuf_finish(&back);
	return 0;
}
