/*
 * fuzz_html.c: libFuzzer target for html.c, with split invariance as the
 * oracle.
 *
 * Input: one flag byte (bit 0: extended mode), two bytes choosing a split
 * point, then the document.  The document is rewritten in one write, split
 * in two at the chosen point, and in writes of a size the flags choose; the
 * three outputs must be equal.  With a map whose `from` does not occur in
 * the document the output must equal the input byte for byte.  The
 * filter's retained memory stays under HTML_RETAINED_MAX throughout.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "portico/html.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct route_html_map fuzz_maps[] = {
    {"http://internal.example.com/public", "/internal"},
    {"/p", "/internal"},
    {"a/", ""},
};

/* Rewrites `doc` in writes of `first` bytes, then of `step` bytes; the output in `out`. */
static void
fuzz_rewrite(const struct route_html_map *maps, size_t n, bool extended, const char *doc,
	     size_t len, size_t first, size_t step, struct evbuffer *out)
{
	struct filter *f = html_filter_new(maps, n, extended);
	size_t off = 0, k = first;

	while (off < len) {
		if (k > len - off)
			k = len - off;
		if (f->ops->write(f, doc + off, k, out) != 0)
			abort();
		if (html_filter_retained(f) > HTML_RETAINED_MAX)
			abort();
		off += k;
		k = step;
	}
	if (f->ops->finish(f, out) != 0)
		abort();
	f->ops->free(f);
}

static void
fuzz_same(struct evbuffer *a, struct evbuffer *b)
{
	size_t n = evbuffer_get_length(a);

	if (n != evbuffer_get_length(b))
		abort();
	if (n > 0 && memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), n) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct route_html_map absent = {"\x01\x02\x03", "/x"};
	struct evbuffer *once, *split, *steps, *plain;
	const char *doc = (const char *)data + 3;
	size_t len, cut, step;
	bool extended;

	if (size < 3)
		return 0;
	extended = data[0] & 1;
	step = 1 + (data[0] >> 1);
	len = size - 3;
	cut = len ? ((size_t)data[1] << 8 | data[2]) % (len + 1) : 0;
	once = evbuffer_new();
	split = evbuffer_new();
	steps = evbuffer_new();
	plain = evbuffer_new();
	fuzz_rewrite(fuzz_maps, 3, extended, doc, len, len, len, once);
	fuzz_rewrite(fuzz_maps, 3, extended, doc, len, cut ? cut : 1, len, split);
	fuzz_rewrite(fuzz_maps, 3, extended, doc, len, step, step, steps);
	fuzz_same(once, split);
	fuzz_same(once, steps);
	if (memmem(doc, len, absent.from, strlen(absent.from)) == NULL) {
		struct evbuffer *input = evbuffer_new();

		evbuffer_add(input, doc, len);
		fuzz_rewrite(&absent, 1, extended, doc, len, cut ? cut : 1, step, plain);
		fuzz_same(plain, input);
		evbuffer_free(input);
	}
	evbuffer_free(once);
	evbuffer_free(split);
	evbuffer_free(steps);
	evbuffer_free(plain);
	return 0;
}
