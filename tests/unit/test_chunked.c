/*
 * test_chunked.c: chunked body decoding (chunked.h): the data of every
 * chunk in order, extensions and trailers accepted and dropped, the bytes
 * after the body left in place, malformed framing refused, and the same
 * result however the body is split across reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "portico/chunked.h"

/* Decodes `body` in pieces of `step` bytes; *out gets the data, *left what follows. */
static enum chunked_result
decode(const char *body, size_t step, char *out, size_t outlen, size_t *left)
{
	struct evbuffer *in = evbuffer_new(), *dst = evbuffer_new();
	enum chunked_result r = CHUNKED_MORE;
	size_t len = strlen(body), i = 0;
	struct chunked c;

	chunked_init(&c);
	while (r == CHUNKED_MORE && i < len) {
		size_t n = len - i < step ? len - i : step;

		evbuffer_add(in, body + i, n);
		i += n;
		r = chunked_decode(&c, in, dst);
	}
	*left = evbuffer_get_length(in) + (len - i);
	memset(out, 0, outlen);
	evbuffer_remove(dst, out, outlen - 1);
	if (r != CHUNKED_ERROR)
		assert_int_equal(c.total, strlen(out));
	evbuffer_free(in);
	evbuffer_free(dst);
	return r;
}

static void
test_chunks_at_every_split(void **state)
{
	const char *body = "5\r\nhello\r\n1;name=value\r\n,\r\nB\r\n 0123456789"
			   "\r\n0\r\nTrailer-Field: t\r\n\r\nNEXT";
	char out[64];
	size_t left;

	(void)state;
	for (size_t step = 1; step <= strlen(body); step++) {
		assert_int_equal(decode(body, step, out, sizeof(out), &left), CHUNKED_DONE);
		assert_string_equal(out, "hello, 0123456789");
		assert_int_equal(left, 4);
	}
}

static void
test_incomplete_and_errors(void **state)
{
	char out[64];
	size_t left;

	(void)state;
	assert_int_equal(decode("5\r\nhel", 100, out, sizeof(out), &left), CHUNKED_MORE);
	assert_string_equal(out, "hel");
	assert_int_equal(decode("0\r\n\r\n", 1, out, sizeof(out), &left), CHUNKED_DONE);
	assert_string_equal(out, "");
	assert_int_equal(decode("5\r\nhelloX\r\n0\r\n\r\n", 100, out, sizeof(out), &left),
			 CHUNKED_ERROR);
	assert_int_equal(decode("g\r\n", 100, out, sizeof(out), &left), CHUNKED_ERROR);
	assert_int_equal(decode("5\nhello\r\n", 100, out, sizeof(out), &left), CHUNKED_ERROR);
	assert_int_equal(decode("ffffffffffffffffff\r\n", 100, out, sizeof(out), &left),
			 CHUNKED_ERROR);
	assert_int_equal(decode("0\r\nTrailer-Without-Colon\r\n\r\n", 100, out, sizeof(out), &left),
			 CHUNKED_ERROR);
}

static void
test_bytes_interface(void **state)
{
	struct evbuffer *dst = evbuffer_new();
	const char *body = "3\r\nabc\r\n0\r\n\r\nrest";
	struct chunked c;
	size_t used;

	(void)state;
	chunked_init(&c);
	assert_int_equal(chunked_decode_bytes(&c, body, strlen(body), dst, &used), CHUNKED_DONE);
	assert_int_equal(used, strlen(body) - 4);
	assert_int_equal(evbuffer_get_length(dst), 3);
	/* Once done, nothing more is taken. */
	assert_int_equal(chunked_decode_bytes(&c, "1\r\n", 3, dst, &used), CHUNKED_DONE);
	assert_int_equal(used, 0);
	evbuffer_free(dst);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chunks_at_every_split),
	    cmocka_unit_test(test_incomplete_and_errors),
	    cmocka_unit_test(test_bytes_interface),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
