/*
 * test_gzip.c: the zlib filters: gzip, zlib and raw deflate decoded in any
 * split, gzip encoded and read back by zlib, the chain decode -> html ->
 * encode, corrupt and truncated streams, and the decompression-bomb guard.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <zlib.h>

#include "portico/gzip.h"
#include "portico/html.h"

enum fmt {
	FMT_GZIP = 16 + 15,
	FMT_ZLIB = 15,
	FMT_RAW = -15,
};

/* `in` compressed by zlib itself in format `bits`. */
static void
compress_with(int bits, const void *in, size_t len, struct buf *out)
{
	z_stream zs = {0};
	unsigned char chunk[4096];
	int rc;

	assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (uInt)len;
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		rc = deflate(&zs, Z_FINISH);
		assert_true(rc == Z_OK || rc == Z_STREAM_END);
		buf_add(out, chunk, sizeof(chunk) - zs.avail_out);
	} while (rc != Z_STREAM_END);
	deflateEnd(&zs);
}

/* `in` decompressed by zlib itself (gzip); -1 when it is not a complete gzip stream. */
static int
gunzip_with(const void *in, size_t len, struct buf *out)
{
	z_stream zs = {0};
	unsigned char chunk[4096];
	int rc;

	assert_int_equal(inflateInit2(&zs, 16 + 15), Z_OK);
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (uInt)len;
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		rc = inflate(&zs, Z_NO_FLUSH);
		buf_add(out, chunk, sizeof(chunk) - zs.avail_out);
	} while (rc == Z_OK);
	inflateEnd(&zs);
	return rc == Z_STREAM_END ? 0 : -1;
}

static void
evbuffer_to_buf(struct evbuffer *ev, struct buf *b)
{
	size_t n = evbuffer_get_length(ev);

	buf_reserve(b, n);
	evbuffer_remove(ev, b->data + b->len, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* Runs `in` through filter `f` in writes of `step` bytes (0: at once); the result of the last call.
 */
static int
run_filter(struct filter *f, const char *in, size_t len, size_t step, struct buf *out)
{
	struct evbuffer *ev = evbuffer_new();
	size_t off = 0, k;
	int rc = 0;

	if (step == 0)
		step = len ? len : 1;
	while (rc == 0 && off < len) {
		k = len - off < step ? len - off : step;
		rc = f->ops->write(f, in + off, k, ev);
		off += k;
	}
	if (rc == 0)
		rc = f->ops->finish(f, ev);
	evbuffer_to_buf(ev, out);
	evbuffer_free(ev);
	f->ops->free(f);
	return rc;
}

/* A page that compresses well but not absurdly. */
static void
sample_page(struct buf *b, size_t approx)
{
	unsigned x = 1;

	buf_adds(b, "<!DOCTYPE html><html><body>\n");
	while (b->len < approx) {
		x = x * 1103515245u + 12345u;
		buf_addf(b, "<p id=p%u><a href=\"/public/item/%u\">item %u</a></p>\n", x % 9973,
			 x % 1000, x >> 20);
	}
	buf_adds(b, "</body></html>\n");
}

static void
test_decode_formats(void **state)
{
	static const int fmts[] = {FMT_GZIP, FMT_ZLIB, FMT_RAW};
	static const size_t steps[] = {0, 1, 2, 3, 7, 4096};
	struct buf page, z, out;

	(void)state;
	buf_init(&page);
	sample_page(&page, 100000);
	for (size_t i = 0; i < ARRAY_SIZE(fmts); i++) {
		buf_init(&z);
		compress_with(fmts[i], page.data, page.len, &z);
		for (size_t j = 0; j < ARRAY_SIZE(steps); j++) {
			buf_init(&out);
			assert_int_equal(
			    run_filter(gzip_decoder_new(), z.data, z.len, steps[j], &out), 0);
			assert_int_equal(out.len, page.len);
			assert_memory_equal(out.data, page.data, page.len);
			buf_free(&out);
		}
		buf_free(&z);
	}
	buf_free(&page);
}

static void
test_encode(void **state)
{
	struct buf page, z, back;

	(void)state;
	buf_init(&page);
	buf_init(&z);
	buf_init(&back);
	sample_page(&page, 200000);
	assert_int_equal(run_filter(gzip_encoder_new(-1), page.data, page.len, 1000, &z), 0);
	assert_true(z.len < page.len / 2);
	assert_int_equal(gunzip_with(z.data, z.len, &back), 0);
	assert_int_equal(back.len, page.len);
	assert_memory_equal(back.data, page.data, page.len);
	/* An empty body is a valid, empty gzip stream. */
	buf_reset(&z);
	buf_reset(&back);
	assert_int_equal(run_filter(gzip_encoder_new(1), "", 0, 0, &z), 0);
	assert_true(z.len > 0);
	assert_int_equal(gunzip_with(z.data, z.len, &back), 0);
	assert_int_equal(back.len, 0);
	buf_free(&page);
	buf_free(&z);
	buf_free(&back);
}

/* gzip -> decode -> html -> encode -> gunzip gives the rewritten page. */
static void
test_chain_round_trip(void **state)
{
	static const struct route_html_map maps[] = {{"/public", "/internal"}};
	static const int fmts[] = {FMT_GZIP, FMT_ZLIB, FMT_RAW};
	struct buf page, want, z, zout, back;
	struct filter *dec, *html;

	(void)state;
	buf_init(&page);
	buf_init(&want);
	sample_page(&page, 300000);
	html = html_filter_new(maps, 1, false);
	assert_int_equal(run_filter(html, page.data, page.len, 0, &want), 0);
	assert_non_null(strstr(want.data, "href=\"/internal/item/"));
	assert_null(strstr(want.data, "/public"));
	for (size_t i = 0; i < ARRAY_SIZE(fmts); i++) {
		buf_init(&z);
		buf_init(&zout);
		buf_init(&back);
		compress_with(fmts[i], page.data, page.len, &z);
		dec = gzip_decoder_new();
		html = html_filter_new(maps, 1, false);
		dec->next = html;
		html->next = gzip_encoder_new(-1);
		assert_int_equal(run_filter(dec, z.data, z.len, 333, &zout), 0);
		assert_int_equal(gunzip_with(zout.data, zout.len, &back), 0);
		assert_int_equal(back.len, want.len);
		assert_memory_equal(back.data, want.data, want.len);
		buf_free(&z);
		buf_free(&zout);
		buf_free(&back);
	}
	buf_free(&page);
	buf_free(&want);
}

static void
test_corrupt_and_truncated(void **state)
{
	struct buf page, z, out;

	(void)state;
	buf_init(&page);
	buf_init(&z);
	buf_init(&out);
	sample_page(&page, 50000);
	compress_with(FMT_GZIP, page.data, page.len, &z);
	/* Truncated: every write succeeds, finish fails. */
	assert_int_equal(run_filter(gzip_decoder_new(), z.data, z.len - 10, 100, &out), -1);
	buf_reset(&out);
	assert_int_equal(run_filter(gzip_decoder_new(), z.data, 1, 0, &out), -1);
	/* A flipped byte in the data or the CRC. */
	z.data[z.len / 2] ^= 0x55;
	buf_reset(&out);
	assert_int_equal(run_filter(gzip_decoder_new(), z.data, z.len, 0, &out), -1);
	z.data[z.len / 2] ^= 0x55;
	z.data[z.len - 6] ^= 0x01;
	buf_reset(&out);
	assert_int_equal(run_filter(gzip_decoder_new(), z.data, z.len, 0, &out), -1);
	/* Plain text is not deflate. */
	buf_reset(&out);
	assert_int_equal(run_filter(gzip_decoder_new(), page.data, page.len, 0, &out), -1);
	/* A failed decoder stays failed. */
	{
		struct filter *f = gzip_decoder_new();
		struct evbuffer *ev = evbuffer_new();

		assert_int_equal(f->ops->write(f, "\x1f\x8bxxxxxxxxxxxxx", 15, ev), -1);
		assert_int_equal(f->ops->write(f, "x", 1, ev), -1);
		assert_int_equal(f->ops->finish(f, ev), -1);
		f->ops->free(f);
		evbuffer_free(ev);
	}
	/* An empty body decodes to nothing; bytes after the end are ignored. */
	buf_reset(&out);
	assert_int_equal(run_filter(gzip_decoder_new(), "", 0, 0, &out), 0);
	assert_int_equal(out.len, 0);
	z.data[z.len - 6] ^= 0x01;
	buf_add(&z, "garbage", 7);
	buf_reset(&out);
	assert_int_equal(run_filter(gzip_decoder_new(), z.data, z.len, 0, &out), 0);
	assert_int_equal(out.len, page.len);
	buf_free(&page);
	buf_free(&z);
	buf_free(&out);
}

/* A small stream that inflates beyond the per-write budget is refused. */
static void
test_bomb(void **state)
{
	size_t big = 64u * 1024 * 1024;
	char *zeros = calloc(1, big);
	struct buf z, out;

	(void)state;
	buf_init(&z);
	buf_init(&out);
	compress_with(FMT_GZIP, zeros, big, &z);
	free(zeros);
	assert_true(GZIP_OUT_FLOOR + GZIP_RATIO_MAX * z.len < big);
	assert_int_equal(run_filter(gzip_decoder_new(), z.data, z.len, 0, &out), -1);
	assert_true(out.len <= GZIP_OUT_FLOOR + GZIP_RATIO_MAX * z.len + 16 * 1024);
	buf_free(&z);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_formats),
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_chain_round_trip),
	    cmocka_unit_test(test_corrupt_and_truncated),
	    cmocka_unit_test(test_bomb),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
