/*
 * test_head.c: message heads (head.h): fields and facts recorded while
 * parsing, heads split across reads, the bytes after a head left in place,
 * size and count limits, the checks of SPEC section 9 on requests, the
 * checks and body framing of responses, and writing heads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "portico/head.h"

#define LIMIT 16384

/* Parses `text` as one feed; returns the result, leaves the rest in *rest (caller frees). */
static enum head_result
feed(struct head *h, enum head_kind kind, const char *text, size_t limit, size_t max_fields,
     struct evbuffer **rest)
{
	struct evbuffer *in = evbuffer_new();
	enum head_result r;

	head_reset(h, kind);
	evbuffer_add(in, text, strlen(text));
	r = head_feed(h, in, limit, max_fields);
	if (rest != NULL)
		*rest = in;
	else
		evbuffer_free(in);
	return r;
}

/* A request head that parses, then its check's status. */
static int
request_status(const char *text)
{
	struct head h;
	int status;

	head_init(&h);
	if (feed(&h, HEAD_REQUEST, text, LIMIT, 100, NULL) == HEAD_DONE)
		status = head_check_request(&h);
	else
		status = h.error;
	head_free(&h);
	return status;
}

static bool
value_is(const struct head *h, int i, const char *want)
{
	size_t len;
	const char *v = head_value_at(h, i, &len);

	return v != NULL && len == strlen(want) && memcmp(v, want, len) == 0;
}

static void
test_request_fields(void **state)
{
	struct evbuffer *rest;
	struct head h;
	char tail[16] = {0};

	(void)state;
	head_init(&h);
	assert_int_equal(feed(&h, HEAD_REQUEST,
			      "GET /a?b=1 HTTP/1.1\r\nHost: www.example.com:8080\r\n"
			      "User-Agent: one\r\nuser-agent: two\r\nAccept-Encoding: gzip  \r\n"
			      "Accept-Encoding: br\r\nReferer: /r\r\nX-Custom:\tv  v \r\n\r\nNEXT",
			      LIMIT, 100, &rest),
			 HEAD_DONE);
	/* Exactly the head is taken: what follows stays. */
	assert_int_equal(evbuffer_get_length(rest), 4);
	evbuffer_remove(rest, tail, sizeof(tail) - 1);
	assert_string_equal(tail, "NEXT");
	evbuffer_free(rest);
	assert_int_equal(head_check_request(&h), 0);
	assert_string_equal(head_method_name(&h), "GET");
	assert_int_equal(h.minor, 1);
	assert_int_equal(h.nfields, 7);
	assert_int_equal(h.fields[0].id, HTTP_HDR_HOST);
	assert_true(value_is(&h, h.host, "www.example.com:8080"));
	assert_true(value_is(&h, h.user_agent, "two"));	      /* the last one */
	assert_true(value_is(&h, h.accept_encoding, "gzip")); /* the first, trimmed */
	assert_true(value_is(&h, h.referer, "/r"));
	assert_true(value_is(&h, 6, "v  v")); /* inner whitespace kept */
	assert_int_equal(h.fields[6].id, HTTP_HDR_OTHER);
	assert_memory_equal(h.bytes.data + h.origin, "/a?b=1", h.origin_len);
	assert_memory_equal(h.bytes.data + h.authority, "www.example.com:8080", h.authority_len);
	assert_true(h.keep_alive);
	assert_int_equal(h.body, HEAD_BODY_NONE);
	head_free(&h);
}

/* Fed a byte at a time, a head parses to the same fields. */
static void
test_request_split(void **state)
{
	const char *text = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
			   "Transfer-Encoding-X: no\r\nConnection: close\r\n\r\nhello";
	struct evbuffer *in = evbuffer_new();
	enum head_result r = HEAD_MORE;
	struct head h;
	size_t i;

	(void)state;
	head_init(&h);
	for (i = 0; text[i] != '\0' && r == HEAD_MORE; i++) {
		evbuffer_add(in, text + i, 1);
		r = head_feed(&h, in, LIMIT, 100);
	}
	assert_int_equal(r, HEAD_DONE);
	assert_int_equal(evbuffer_get_length(in), 0); /* the body had not arrived yet */
	assert_int_equal(head_check_request(&h), 0);
	assert_int_equal(h.nfields, 4);
	assert_int_equal(h.fields[2].id, HTTP_HDR_OTHER);
	assert_int_equal(h.body, HEAD_BODY_LENGTH);
	assert_int_equal(h.length, 5);
	assert_false(h.keep_alive);
	evbuffer_free(in);
	head_free(&h);
}

/*
 * A head's first bytes from a flat buffer: a whole head parses in place
 * (what follows is the caller's); a partial one continues from an evbuffer
 * holding every byte, as if they had all arrived there.
 */
static void
test_request_from_bytes(void **state)
{
	const char *whole = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b";
	const char *part = "GET /a HTTP/1.1\r\nHo";
	struct evbuffer *in = evbuffer_new();
	struct head h;

	(void)state;
	head_init(&h);
	assert_int_equal(head_feed_bytes(&h, whole, strlen(whole), LIMIT, 100), HEAD_DONE);
	assert_int_equal(h.end, strlen(whole) - 6);
	assert_int_equal(head_check_request(&h), 0);
	assert_true(value_is(&h, h.host, "h"));
	head_reset(&h, HEAD_REQUEST);
	assert_int_equal(head_feed_bytes(&h, part, strlen(part), LIMIT, 100), HEAD_MORE);
	evbuffer_add(in, part, strlen(part));
	evbuffer_add(in, "st: h\r\n\r\n", 9);
	assert_int_equal(head_feed(&h, in, LIMIT, 100), HEAD_DONE);
	assert_int_equal(evbuffer_get_length(in), 0);
	assert_true(value_is(&h, h.host, "h"));
	head_reset(&h, HEAD_REQUEST);
	assert_int_equal(head_feed_bytes(&h, "GET / HTTP/1.1\r\n\n", 17, LIMIT, 100), HEAD_ERROR);
	assert_int_equal(h.error, 400);
	evbuffer_free(in);
	head_free(&h);
}

/*
 * A head read with its body behind it takes its bytes a piece at a time
 * (1 KiB, then doubling): it parses the same wherever its end falls
 * against a piece, from an evbuffer or from bytes, and what follows it is
 * neither consumed nor copied: the buffer holds at most four times the
 * head (the pieces double, and so does the buffer), never the body.
 */
static void
test_response_in_pieces(void **state)
{
	static const size_t ends[] = {1022, 1023, 1024, 1025, 1026, 2047, 2048, 2049, 4097};
	static char body[32 * 1024];
	struct head h;

	(void)state;
	memset(body, 'b', sizeof(body));
	head_init(&h);
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		struct buf msg;
		struct evbuffer *in = evbuffer_new();
		size_t pad;

		buf_init(&msg);
		buf_adds(&msg, "HTTP/1.1 200 OK\r\nContent-Length: 32768\r\nX: ");
		pad = ends[i] - msg.len - 4; /* the value, then CRLF CRLF */
		for (size_t k = 0; k < pad; k++)
			buf_addc(&msg, 'v');
		buf_adds(&msg, "\r\n\r\n");
		assert_int_equal(msg.len, ends[i]);
		buf_add(&msg, body, sizeof(body));

		head_reset(&h, HEAD_RESPONSE);
		assert_int_equal(head_feed_bytes(&h, msg.data, msg.len, LIMIT, 0), HEAD_DONE);
		assert_int_equal(h.end, ends[i]);
		assert_int_equal(h.fields[1].value_len, pad);
		assert_true(h.bytes.cap <= 4 * ends[i] + 1024);

		head_reset(&h, HEAD_RESPONSE);
		evbuffer_add(in, msg.data, msg.len);
		assert_int_equal(head_feed(&h, in, LIMIT, 0), HEAD_DONE);
		assert_int_equal(h.end, ends[i]);
		assert_int_equal(h.fields[1].value_len, pad);
		assert_int_equal(evbuffer_get_length(in), sizeof(body));
		assert_true(h.bytes.cap <= 4 * ends[i] + 1024);
		evbuffer_free(in);
		buf_free(&msg);
	}
	head_free(&h);
}

static void
test_request_limits(void **state)
{
	struct head h;
	char big[600];

	(void)state;
	head_init(&h);
	assert_int_equal(feed(&h, HEAD_REQUEST, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
			      LIMIT, 2, NULL),
			 HEAD_ERROR);
	assert_int_equal(h.error, 431);
	/* A target over the limit is a 414, a long header section a 431. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(feed(&h, HEAD_REQUEST, big, 256, 100, NULL), HEAD_ERROR);
	assert_int_equal(h.error, 414);
	assert_true(h.too_large);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(feed(&h, HEAD_REQUEST, big, 256, 100, NULL), HEAD_ERROR);
	assert_int_equal(h.error, 431);
	/* Garbage: a 400, and the method is not known. */
	assert_int_equal(feed(&h, HEAD_REQUEST, "\x01\x02 x\r\n\r\n", LIMIT, 100, NULL),
			 HEAD_ERROR);
	assert_int_equal(h.error, 400);
	assert_string_equal(head_method_name(&h), "-");
	head_free(&h);
}

static void
test_request_checks(void **state)
{
	(void)state;
	assert_int_equal(request_status("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	assert_int_equal(request_status("GET / HTTP/1.0\r\n\r\n"), 0);
	assert_int_equal(request_status("GET / HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(request_status("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(request_status("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
	assert_int_equal(request_status("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 405);
	assert_int_equal(request_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
					"Transfer-Encoding: chunked\r\n\r\n"),
			 400);
	assert_int_equal(
	    request_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
	assert_int_equal(request_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), 400);
	assert_int_equal(request_status("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400);
	assert_int_equal(request_status("GET /#f HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(request_status("GET x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(request_status("GET / HTTP/1.1\r\nHost: a\r\nX\x01: v\r\n\r\n"), 400);
}

static void
test_request_forms_and_flags(void **state)
{
	struct head h;

	(void)state;
	head_init(&h);
	/* Absolute form: the authority replaces Host, the rest routes. */
	assert_int_equal(feed(&h, HEAD_REQUEST,
			      "GET HTTP://Other.example:81/p?q HTTP/1.1\r\nHost: a\r\n\r\n", LIMIT,
			      100, NULL),
			 HEAD_DONE);
	assert_int_equal(head_check_request(&h), 0);
	assert_true(h.absolute);
	assert_memory_equal(h.bytes.data + h.authority, "Other.example:81", h.authority_len);
	assert_memory_equal(h.bytes.data + h.origin, "/p?q", h.origin_len);
	/* An upgrade needs Upgrade, Connection: upgrade, HTTP/1.1 and no body. */
	assert_int_equal(feed(&h, HEAD_REQUEST,
			      "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
			      "Connection: keep-alive, Upgrade\r\nExpect: 100-continue\r\n\r\n",
			      LIMIT, 100, NULL),
			 HEAD_DONE);
	assert_int_equal(head_check_request(&h), 0);
	assert_true(h.upgrade && h.keep_alive && h.expect_continue && !h.expect_other);
	assert_int_equal(feed(&h, HEAD_REQUEST,
			      "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade, "
			      "keep-alive, X-Drop\r\nX-Drop: 1\r\nExpect: other\r\n\r\n",
			      LIMIT, 100, NULL),
			 HEAD_DONE);
	assert_int_equal(head_check_request(&h), 0);
	assert_false(h.upgrade);
	assert_true(h.keep_alive && h.expect_other);
	assert_true(head_named_in_connection(&h, &h.fields[2]));
	assert_true(head_named_in_connection(&h, &h.fields[0])); /* Upgrade */
	assert_false(head_named_in_connection(&h, &h.fields[3]));
	head_free(&h);
}

/* A response head, checked; its status or the check's error. */
static int
response(struct head *h, const char *text)
{
	if (feed(h, HEAD_RESPONSE, text, LIMIT, 0, NULL) != HEAD_DONE)
		return h->error;
	return head_check_response(h);
}

static void
test_response_checks(void **state)
{
	struct head h;

	(void)state;
	head_init(&h);
	assert_int_equal(response(&h, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"), 0);
	assert_int_equal(h.status, 200);
	assert_memory_equal(h.bytes.data + h.reason, "OK", h.reason_len);
	assert_int_equal(response(&h, "HTTP/1.1 204\r\n\r\n"), 0);
	assert_int_equal(h.reason_len, 0);
	assert_int_equal(response(&h, "HTTP/1.1 2000 OK\r\n\r\n"), 502);
	assert_int_equal(response(&h, "HTTP/1.1 099 Low\r\n\r\n"), 502);
	assert_int_equal(response(&h, "HTTP/1.1 600 High\r\n\r\n"), 502);
	assert_int_equal(response(&h, "HTTP/2.0 200 OK\r\n\r\n"), 502);
	assert_int_equal(response(&h, "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"), 502);
	assert_int_equal(response(&h, "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n"), 502);
	/* Over the size limit: 502, marked as such. */
	assert_int_equal(
	    feed(&h, HEAD_RESPONSE, "HTTP/1.1 200 OK\r\nX: 0123456789\r\n\r\n", 20, 0, NULL),
	    HEAD_ERROR);
	assert_true(h.too_large);
	assert_int_equal(h.error, 502);
	head_free(&h);
}

static void
test_response_body_framing(void **state)
{
	struct head h;

	(void)state;
	head_init(&h);
	assert_int_equal(response(&h, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"), 0);
	assert_int_equal(head_response_body(&h, false), 0);
	assert_int_equal(h.body, HEAD_BODY_LENGTH);
	assert_int_equal(h.length, 7);
	assert_true(h.keep_alive);
	assert_int_equal(head_response_body(&h, true), 0); /* a HEAD request */
	assert_int_equal(h.body, HEAD_BODY_NONE);
	assert_int_equal(response(&h, "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"), 0);
	assert_int_equal(head_response_body(&h, false), 0);
	assert_int_equal(h.body, HEAD_BODY_NONE);
	assert_int_equal(response(&h, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
	assert_int_equal(head_response_body(&h, false), 0);
	assert_int_equal(h.body, HEAD_BODY_CHUNKED);
	/* No framing: until the upstream closes, so the connection is not kept. */
	assert_int_equal(response(&h, "HTTP/1.1 200 OK\r\n\r\n"), 0);
	assert_int_equal(head_response_body(&h, false), 0);
	assert_int_equal(h.body, HEAD_BODY_EOF);
	assert_false(h.keep_alive);
	assert_int_equal(response(&h, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"), 0);
	assert_false(h.keep_alive);
	assert_int_equal(
	    response(&h, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 0);
	assert_int_equal(head_response_body(&h, false), -1);
	head_free(&h);
}

static void
test_writing_heads(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	head_put_str(&b, "HTTP/1.1 ");
	head_put_decimal(&b, 200);
	head_put(&b, "\r\n", 2);
	head_put_field(&b, "Content-Length", 14, "0", 1);
	head_put_field(&b, "X-Empty", 7, "", 0);
	head_put_decimal(&b, 0);
	head_put_decimal(&b, UINT64_MAX);
	assert_string_equal(b.data, "HTTP/1.1 200\r\nContent-Length: 0\r\nX-Empty: \r\n0"
				    "18446744073709551615");
	/* Every digit count, odd and even, with zeros inside. */
	for (uint64_t v = 1, k = 1; k <= 19; k++, v *= 10) {
		char want[24];

		buf_reset(&b);
		head_put_decimal(&b, v);
		snprintf(want, sizeof(want), "%llu", (unsigned long long)v);
		assert_string_equal(b.data, want);
		buf_reset(&b);
		head_put_decimal(&b, v * 9 + v / 10 * 7);
		snprintf(want, sizeof(want), "%llu", (unsigned long long)(v * 9 + v / 10 * 7));
		assert_string_equal(b.data, want);
	}
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_fields),
	    cmocka_unit_test(test_request_split),
	    cmocka_unit_test(test_request_from_bytes),
	    cmocka_unit_test(test_response_in_pieces),
	    cmocka_unit_test(test_request_limits),
	    cmocka_unit_test(test_request_checks),
	    cmocka_unit_test(test_request_forms_and_flags),
	    cmocka_unit_test(test_response_checks),
	    cmocka_unit_test(test_response_body_framing),
	    cmocka_unit_test(test_writing_heads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
