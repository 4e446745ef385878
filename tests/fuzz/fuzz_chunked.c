/*
 * fuzz_chunked.c: chunked body decoding (chunked.h) on arbitrary bytes.
 * The input is decoded in one piece and again in pieces whose sizes come
 * from its first byte; both must give the same verdict, the same data and
 * consume the same bytes.  Decoded data is never longer than the input and
 * the count of decoded bytes matches what was appended.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "portico/chunked.h"

struct run {
	enum chunked_result r;
	struct evbuffer *out;
	size_t left; /* input bytes not consumed */
};

static struct run
decode(const uint8_t *data, size_t size, size_t step)
{
	struct evbuffer *in = evbuffer_new();
	struct run run = {CHUNKED_MORE, evbuffer_new(), 0};
	size_t i = 0;
	struct chunked c;

	chunked_init(&c);
	while (run.r == CHUNKED_MORE && i < size) {
		size_t n = size - i < step ? size - i : step;

		evbuffer_add(in, data + i, n);
		i += n;
		run.r = chunked_decode(&c, in, run.out);
	}
	if (c.total != evbuffer_get_length(run.out) || c.total > size)
		abort();
	run.left = evbuffer_get_length(in) + (size - i);
	evbuffer_free(in);
	return run;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole, pieces;
	size_t len;

	if (size == 0)
		return 0;
	whole = decode(data + 1, size - 1, size);
	pieces = decode(data + 1, size - 1, (size_t)data[0] % 17 + 1);
	if (whole.r != pieces.r)
		abort();
	len = evbuffer_get_length(whole.out);
	if (whole.r != CHUNKED_ERROR &&
	    (len != evbuffer_get_length(pieces.out) || whole.left != pieces.left ||
	     (len > 0 &&
	      memcmp(evbuffer_pullup(whole.out, -1), evbuffer_pullup(pieces.out, -1), len) != 0)))
		abort();
	evbuffer_free(whole.out);
	evbuffer_free(pieces.out);
	return 0;
}
