/*
 * fuzz_html.c: libFuzzer target for html.c, with split invariance as the
 * oracle.
 *
 * Input: one flag byte (bit 0: extended mode; bit 1: another filter follows
 * the rewriter, so its output is staged rather than copied into the
 * evbuffer), two bytes seeding the random splits, then the document.  The
 * document is rewritten in one write; then, for a document of at most
 * FUZZ_EVERY_CUT bytes, split in two at every point, and in any case in one
 * byte writes and in FUZZ_ROUNDS random sequences of write sizes.  Every
 * output must equal the one-write output.  With a map whose `from` does not
 * occur in the document the output must equal the input byte for byte.
 * The filter's retained memory stays under HTML_RETAINED_MAX throughout.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "portico/html.h"

#define FUZZ_EVERY_CUT 256
#define FUZZ_ROUNDS    16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct route_html_map fuzz_maps[] = {
    {"http://internal.example.com/public", "/internal"},
    {"/p", "/internal"},
    {"a/", ""},
};

/* The filter after the rewriter when bit 1 is set: appends what it gets. */
static int
pass_write(struct filter *f, const char *data, size_t len, struct evbuffer *out)
{
	(void)f;
	return evbuffer_add(out, data, len);
}

static int
pass_finish(struct filter *f, struct evbuffer *out)
{
	(void)f;
	(void)out;
	return 0;
}

static void
pass_free(struct filter *f)
{
	(void)f;
}

static const struct filter_ops pass_ops = {"pass", pass_write, pass_finish, pass_free};

/* Write sizes: a fixed list (0-terminated), or random from `seed` when cuts is NULL. */
struct fuzz_split {
	const size_t *cuts;
	uint32_t seed;
	size_t max;
};

static size_t
fuzz_next(struct fuzz_split *s, size_t left)
{
	size_t k;

	if (s->cuts != NULL) {
		k = *s->cuts != 0 ? *s->cuts++ : left;
	} else {
		s->seed ^= s->seed << 13;
		s->seed ^= s->seed >> 17;
		s->seed ^= s->seed << 5;
		k = 1 + s->seed % s->max;
	}
	return k < left ? k : left;
}

static struct evbuffer *
fuzz_rewrite(const struct route_html_map *maps, size_t n, uint8_t flags, const char *doc,
	     size_t len, struct fuzz_split *split)
{
	struct filter *f = html_filter_new(maps, n, flags & 1);
	struct filter next = {&pass_ops, NULL};
	struct evbuffer *out = evbuffer_new();
	size_t off = 0, k;

	if (flags & 2)
		f->next = &next;
	while (off < len) {
		k = fuzz_next(split, len - off);
		if (f->ops->write(f, doc + off, k, out) != 0)
			abort();
		if (html_filter_retained(f) > HTML_RETAINED_MAX)
			abort();
		off += k;
	}
	if (f->ops->finish(f, out) != 0)
		abort();
	f->ops->free(f);
	return out;
}

/* Rewrites `doc` as `split` says and checks the output against `want`, which is freed. */
static void
fuzz_check(const struct route_html_map *maps, size_t n, uint8_t flags, const char *doc, size_t len,
	   struct fuzz_split *split, struct evbuffer *want)
{
	struct evbuffer *got = fuzz_rewrite(maps, n, flags, doc, len, split);
	size_t wl = evbuffer_get_length(want);

	if (wl != evbuffer_get_length(got))
		abort();
	if (wl > 0 && memcmp(evbuffer_pullup(want, -1), evbuffer_pullup(got, -1), wl) != 0)
		abort();
	evbuffer_free(got);
	evbuffer_free(want);
}

static struct evbuffer *
fuzz_copy(struct evbuffer *b)
{
	struct evbuffer *c = evbuffer_new();

	evbuffer_add(c, evbuffer_pullup(b, -1), evbuffer_get_length(b));
	return c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct route_html_map absent = {"\x01\x02\x03", "/x"};
	static const size_t none[] = {0};
	const char *doc = (const char *)data + 3;
	struct fuzz_split whole = {none, 0, 0}, bytes = {NULL, 1, 1};
	struct evbuffer *once, *input;
	size_t len;

	if (size < 3)
		return 0;
	len = size - 3;
	once = fuzz_rewrite(fuzz_maps, 3, data[0], doc, len, &whole);
	for (size_t cut = 1; len <= FUZZ_EVERY_CUT && cut < len; cut++) {
		size_t cuts[] = {cut, 0};
		struct fuzz_split two = {cuts, 0, 0};

		fuzz_check(fuzz_maps, 3, data[0], doc, len, &two, fuzz_copy(once));
	}
	for (uint32_t round = 0; round < FUZZ_ROUNDS; round++) {
		struct fuzz_split rnd = {NULL,
					 ((uint32_t)data[1] << 8 | data[2]) + round * 0x9e3779b9u,
					 round % 2 ? 16 : len / 4 + 1};

		if (rnd.seed == 0)
			rnd.seed = 1; /* xorshift never leaves 0 */
		fuzz_check(fuzz_maps, 3, data[0], doc, len, &rnd, fuzz_copy(once));
	}
	if (len <= 4096)
		fuzz_check(fuzz_maps, 3, data[0], doc, len, &bytes, fuzz_copy(once));
	evbuffer_free(once);
	if (memmem(doc, len, absent.from, strlen(absent.from)) == NULL) {
		struct fuzz_split rnd = {NULL, 7u + data[1], 64};

		input = evbuffer_new();
		evbuffer_add(input, doc, len);
		fuzz_check(&absent, 1, data[0], doc, len, &rnd, input);
	}
	return 0;
}
