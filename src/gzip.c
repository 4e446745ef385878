/*
 * gzip.c: zlib body filters: a decoder for gzip, zlib-wrapped and raw
 * deflate, and a gzip encoder.  Both push each 16 KiB of output down the
 * chain as soon as zlib produces it, so besides zlib's own state (its window
 * and, for the encoder, its hash tables) nothing grows with the body.
 *
 * The decoder tells the formats apart by the first two bytes: 1f 8b is
 * gzip; a valid zlib header (method 8, window <= 32 KiB, check bits) is
 * zlib; anything else is taken as raw deflate, which some servers send for
 * "Content-Encoding: deflate".
 */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <zlib.h>

#include "portico/filterchain.h"
#include "portico/gzip.h"
#include "portico/util.h"

#define GZIP_CHUNK (16 * 1024)

struct gzip_filter {
	struct filter base; /* first: the filter pointer is this struct's */
	z_stream zs;
	bool encode;
	bool started; /* zlib's stream is initialized */
	bool ended;   /* the compressed stream is complete */
	bool failed;
	unsigned char head[2]; /* decoder: the first bytes, until there are two */
	size_t nhead;
	size_t produced; /* bytes produced by the current write */
	size_t budget;	 /* what the current write may produce */
};

/* zlib initializes what it reads: its state need not be zeroed first. */
static voidpf
gzip_alloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	return xmalloc((size_t)items * size);
}

static void
gzip_release(voidpf opaque, voidpf p)
{
	(void)opaque;
	xfree(p);
}

/*
 * Runs zlib over `len` bytes with `flush` and passes on what it produces;
 * stops when the input is used and zlib has nothing more to give.  0, or -1
 * on a corrupt stream, a bomb or a failure down the chain.
 */
static int
gzip_pump(struct gzip_filter *g, const unsigned char *data, size_t len, int flush,
	  struct evbuffer *out)
{
	unsigned char chunk[GZIP_CHUNK];
	size_t n;
	int rc;

	PORTICO_ASSERT(len <= UINT_MAX); /* the data path hands over at most a read's worth */
	g->zs.next_in = (unsigned char *)data;
	g->zs.avail_in = (uInt)len;
	do {
		g->zs.next_out = chunk;
		g->zs.avail_out = sizeof(chunk);
		rc = g->encode ? deflate(&g->zs, flush) : inflate(&g->zs, flush);
		if (rc == Z_STREAM_END)
			g->ended = true;
		else if (rc == Z_BUF_ERROR && g->zs.avail_in == 0 && flush != Z_FINISH)
			; /* no progress possible until more input */
		else if (rc != Z_OK)
			return -1;
		n = sizeof(chunk) - g->zs.avail_out;
		g->produced += n;
		if (!g->encode && g->produced > g->budget)
			return -1;
		if (filterchain_forward(&g->base, (const char *)chunk, n, out) < 0)
			return -1;
		if (rc == Z_BUF_ERROR)
			break;
	} while (!g->ended && (g->zs.avail_in > 0 || g->zs.avail_out == 0 || flush == Z_FINISH));
	return 0;
}

/* Starts zlib on the format the first two bytes announce. */
static void
gunzip_start(struct gzip_filter *g)
{
	unsigned b0 = g->head[0], b1 = g->head[1];
	int bits = -15; /* raw deflate */

	if (b0 == 0x1f && b1 == 0x8b)
		bits = 16 + 15;
	else if ((b0 & 0x0f) == 8 && (b0 >> 4) <= 7 && ((b0 << 8) | b1) % 31 == 0)
		bits = 15;
	if (inflateInit2(&g->zs, bits) != Z_OK)
		fatal("inflateInit2 failed");
	g->started = true;
}

static int
gunzip_write(struct filter *f, const char *data, size_t len, struct evbuffer *out)
{
	struct gzip_filter *g = (struct gzip_filter *)f;
	const unsigned char *p = (const unsigned char *)data;
	size_t k;

	if (g->failed)
		return -1;
	if (g->ended)
		return 0;
	g->produced = 0;
	g->budget = GZIP_OUT_FLOOR + GZIP_RATIO_MAX * len;
	if (!g->started) {
		k = len < 2 - g->nhead ? len : 2 - g->nhead;
		memcpy(g->head + g->nhead, p, k);
		g->nhead += k;
		p += k;
		len -= k;
		if (g->nhead < 2)
			return 0;
		gunzip_start(g);
		if (gzip_pump(g, g->head, 2, Z_NO_FLUSH, out) < 0)
			goto fail;
	}
	if (len > 0 && !g->ended && gzip_pump(g, p, len, Z_NO_FLUSH, out) < 0)
		goto fail;
	return 0;
fail:
	g->failed = true;
	return -1;
}

static int
gunzip_finish(struct filter *f, struct evbuffer *out)
{
	struct gzip_filter *g = (struct gzip_filter *)f;

	if (g->failed || g->nhead == 1)
		return -1;
	if (g->started && !g->ended) {
		g->produced = 0;
		g->budget = GZIP_OUT_FLOOR;
		if (gzip_pump(g, NULL, 0, Z_NO_FLUSH, out) < 0 || !g->ended) {
			g->failed = true;
			return -1;
		}
	}
	return filterchain_forward_finish(f, out);
}

static int
gzip_write(struct filter *f, const char *data, size_t len, struct evbuffer *out)
{
	struct gzip_filter *g = (struct gzip_filter *)f;

	if (g->failed || g->ended)
		return -1;
	if (len > 0 && gzip_pump(g, (const unsigned char *)data, len, Z_NO_FLUSH, out) < 0) {
		g->failed = true;
		return -1;
	}
	return 0;
}

static int
gzip_finish(struct filter *f, struct evbuffer *out)
{
	struct gzip_filter *g = (struct gzip_filter *)f;

	if (g->failed)
		return -1;
	if (!g->ended && gzip_pump(g, NULL, 0, Z_FINISH, out) < 0) {
		g->failed = true;
		return -1;
	}
	return filterchain_forward_finish(f, out);
}

static void
gzip_free(struct filter *f)
{
	struct gzip_filter *g = (struct gzip_filter *)f;

	if (g == NULL)
		return;
	filterchain_free_next(f);
	if (g->started && g->encode)
		deflateEnd(&g->zs);
	else if (g->started)
		inflateEnd(&g->zs);
	xfree(g);
}

static const struct filter_ops gunzip_ops = {
    .name = "gunzip",
    .write = gunzip_write,
    .finish = gunzip_finish,
    .free = gzip_free,
};

static const struct filter_ops gzip_ops = {
    .name = "gzip",
    .write = gzip_write,
    .finish = gzip_finish,
    .free = gzip_free,
};

static struct gzip_filter *
gzip_filter_alloc(const struct filter_ops *ops)
{
	struct gzip_filter *g = xcalloc(1, sizeof(*g));

	g->base.ops = ops;
	g->zs.zalloc = gzip_alloc;
	g->zs.zfree = gzip_release;
	return g;
}

struct filter *
gzip_decoder_new(void)
{
	return &gzip_filter_alloc(&gunzip_ops)->base;
}

struct filter *
gzip_encoder_new(int level)
{
	struct gzip_filter *g = gzip_filter_alloc(&gzip_ops);

	g->encode = true;
	if (deflateInit2(&g->zs, level, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		fatal("deflateInit2 failed for level %d", level);
	g->started = true;
	return &g->base;
}
