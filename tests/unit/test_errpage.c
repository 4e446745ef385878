/*
 * test_errpage.c: the responses portico generates (SPEC section 9): a valid
 * head whose Content-Length matches the body, the request id in both, and
 * the Connection header the caller asked for.
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

#include "portico/errpage.h"

/* The whole response as a NUL-terminated string (the caller frees it). */
static char *
render(int status, bool close, bool ka10, bool head_only, uint64_t *body_len)
{
	struct evbuffer *out = evbuffer_new();
	size_t n;
	char *s;

	*body_len = errpage_write(out, status, "00c0ffee00000001", close, ka10, head_only);
	n = evbuffer_get_length(out);
	s = malloc(n + 1);
	assert_non_null(s);
	evbuffer_remove(out, s, n);
	s[n] = '\0';
	evbuffer_free(out);
	return s;
}

static void
test_head_and_length_agree(void **state)
{
	static const int statuses[] = {400, 403, 404, 405, 408, 413, 414, 417, 431, 500, 502, 504};
	uint64_t body_len;

	(void)state;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		char *s = render(statuses[i], false, false, false, &body_len);
		char line[64], cl[64];
		const char *body = strstr(s, "\r\n\r\n");

		snprintf(line, sizeof(line), "HTTP/1.1 %d ", statuses[i]);
		snprintf(cl, sizeof(cl), "\r\nContent-Length: %llu\r\n",
			 (unsigned long long)body_len);
		assert_true(strncmp(s, line, strlen(line)) == 0);
		assert_non_null(strstr(s, cl));
		assert_non_null(body);
		assert_int_equal(strlen(body + 4), body_len);
		assert_non_null(strstr(body, "00c0ffee00000001"));
		assert_non_null(strstr(s, "X-Request-Id: 00c0ffee00000001\r\n"));
		assert_null(strstr(s, "Connection:"));
		free(s);
	}
}

static void
test_connection_header(void **state)
{
	uint64_t body_len;
	char *s;

	(void)state;
	s = render(400, true, false, false, &body_len);
	assert_non_null(strstr(s, "\r\nConnection: close\r\n"));
	free(s);
	s = render(404, false, true, false, &body_len);
	assert_non_null(strstr(s, "\r\nConnection: keep-alive\r\n"));
	free(s);
}

static void
test_head_request_has_no_body(void **state)
{
	uint64_t body_len;
	char *s = render(404, false, false, true, &body_len);
	const char *end = strstr(s, "\r\n\r\n");

	(void)state;
	assert_int_equal(body_len, 0);
	assert_non_null(end);
	assert_string_equal(end, "\r\n\r\n");
	/* The length still describes the body a GET would have had. */
	assert_null(strstr(s, "Content-Length: 0\r\n"));
	free(s);
}

/* A 503 for a group with no server up says when to come back (SPEC 12); others do not. */
static void
test_retry_after(void **state)
{
	struct evbuffer *out = evbuffer_new();
	char s[1024];
	size_t n;

	(void)state;
	errpage_write_retry(out, 503, "00c0ffee00000001", false, false, false, 30);
	n = evbuffer_remove(out, s, sizeof(s) - 1);
	s[n] = '\0';
	assert_true(strncmp(s, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
	assert_non_null(strstr(s, "\r\nRetry-After: 30\r\n"));
	assert_non_null(strstr(s, "\r\n\r\n<!DOCTYPE html>"));
	errpage_write(out, 503, "00c0ffee00000001", false, false, false);
	n = evbuffer_remove(out, s, sizeof(s) - 1);
	s[n] = '\0';
	assert_null(strstr(s, "Retry-After"));
	evbuffer_free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_head_and_length_agree),
	    cmocka_unit_test(test_connection_header),
	    cmocka_unit_test(test_head_request_has_no_body),
	    cmocka_unit_test(test_retry_after),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
