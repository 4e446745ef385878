/*
 * test_http.c: the pure HTTP helpers of the data path: byte classes of
 * header names and values, Host values, Connection token lists, hop-by-hop
 * classification, framing decisions (SPEC section 9), head scanning,
 * request ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

#include <cmocka.h>

#include "portico/http.h"

#define S(s) s, strlen(s)

static void
test_header_names(void **state)
{
	(void)state;
	assert_true(http_name_is_valid(S("Content-Type")));
	assert_true(http_name_is_valid(S("x!#$%&'*+-.^_`|~09")));
	assert_false(http_name_is_valid(S("")));
	assert_false(http_name_is_valid(S("X Y")));
	assert_false(http_name_is_valid(S("X:Y")));
	assert_false(http_name_is_valid(S("X(Y)")));
	assert_false(http_name_is_valid(S("X\"")));
	assert_false(http_name_is_valid(S("caf\xc3\xa9")));
	assert_false(http_name_is_valid("a\0b", 3));
	assert_false(http_name_is_valid(S("a\tb")));
}

static void
test_header_values(void **state)
{
	(void)state;
	assert_true(http_value_is_valid(S("")));
	assert_true(http_value_is_valid(S("text/html; charset=utf-8")));
	assert_true(http_value_is_valid(S("a\tb c")));
	assert_true(http_value_is_valid(S("obs-text \x80\xff")));
	assert_false(http_value_is_valid(S("a\rb")));
	assert_false(http_value_is_valid(S("a\nb")));
	assert_false(http_value_is_valid("a\0b", 3));
	assert_false(http_value_is_valid(S("a\x01")));
	assert_false(http_value_is_valid(S("a\x7f")));
}

static void
test_host_values(void **state)
{
	(void)state;
	assert_true(http_host_is_valid(S("www.example.com")));
	assert_true(http_host_is_valid(S("www.example.com:8080")));
	assert_true(http_host_is_valid(S("127.0.0.1:80")));
	assert_true(http_host_is_valid(S("[::1]")));
	assert_true(http_host_is_valid(S("[2001:db8::1]:443")));
	assert_false(http_host_is_valid(S("")));
	assert_false(http_host_is_valid(S(":80")));
	assert_false(http_host_is_valid(S("a b")));
	assert_false(http_host_is_valid(S("a/b")));
	assert_false(http_host_is_valid(S("a@b")));
	assert_false(http_host_is_valid(S("host:80x")));
	assert_false(http_host_is_valid(S("host:123456")));
	assert_false(http_host_is_valid(S("[::1")));
	assert_false(http_host_is_valid(S("[]")));
	assert_false(http_host_is_valid(S("[::1]x")));
	assert_int_equal(http_host_strip_port(S("www.example.com:8080")), 15);
	assert_int_equal(http_host_strip_port(S("www.example.com")), 15);
	assert_int_equal(http_host_strip_port(S("[::1]:80")), 5);
}

/* Every known name, in any case; one byte changed, or a CR for a '-', is another name. */
static void
test_header_ids_every_name(void **state)
{
	static const struct {
		const char *name;
		enum http_hdr id;
	} known[] = {
	    {"host", HTTP_HDR_HOST},
	    {"content-length", HTTP_HDR_CONTENT_LENGTH},
	    {"transfer-encoding", HTTP_HDR_TRANSFER_ENCODING},
	    {"connection", HTTP_HDR_CONNECTION},
	    {"keep-alive", HTTP_HDR_KEEP_ALIVE},
	    {"proxy-connection", HTTP_HDR_PROXY_CONNECTION},
	    {"te", HTTP_HDR_TE},
	    {"trailer", HTTP_HDR_TRAILER},
	    {"upgrade", HTTP_HDR_UPGRADE},
	    {"proxy-authorization", HTTP_HDR_PROXY_AUTHORIZATION},
	    {"expect", HTTP_HDR_EXPECT},
	    {"x-forwarded-for", HTTP_HDR_X_FORWARDED_FOR},
	    {"x-forwarded-host", HTTP_HDR_X_FORWARDED_HOST},
	    {"x-forwarded-proto", HTTP_HDR_X_FORWARDED_PROTO},
	    {"forwarded", HTTP_HDR_FORWARDED},
	    {"via", HTTP_HDR_VIA},
	    {"referer", HTTP_HDR_REFERER},
	    {"user-agent", HTTP_HDR_USER_AGENT},
	    {"accept-encoding", HTTP_HDR_ACCEPT_ENCODING},
	    {"content-type", HTTP_HDR_CONTENT_TYPE},
	    {"content-encoding", HTTP_HDR_CONTENT_ENCODING},
	    {"etag", HTTP_HDR_ETAG},
	    {"accept-ranges", HTTP_HDR_ACCEPT_RANGES},
	    {"vary", HTTP_HDR_VARY},
	    {"location", HTTP_HDR_LOCATION},
	    {"content-location", HTTP_HDR_CONTENT_LOCATION},
	    {"uri", HTTP_HDR_URI},
	    {"destination", HTTP_HDR_DESTINATION},
	    {"refresh", HTTP_HDR_REFRESH},
	    {"link", HTTP_HDR_LINK},
	    {"set-cookie", HTTP_HDR_SET_COOKIE},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		char b[32];
		size_t n = strlen(known[i].name);

		memcpy(b, known[i].name, n + 1);
		assert_int_equal(http_header_id(b, n), known[i].id);
		for (size_t j = 0; j < n; j++)
			b[j] = (char)toupper((unsigned char)b[j]);
		assert_int_equal(http_header_id(b, n), known[i].id);
		for (size_t j = 0; j < n; j++) {
			char c = b[j];

			b[j] = c == '-' ? '\r' : (char)(c + 1);
			assert_int_equal(http_header_id(b, n), HTTP_HDR_OTHER);
			b[j] = c;
		}
		assert_int_equal(http_header_id(b, n - 1), HTTP_HDR_OTHER);
	}
	assert_int_equal(http_header_id(S("date")), HTTP_HDR_OTHER);
	assert_int_equal(http_header_id(S("server")), HTTP_HDR_OTHER);
	assert_int_equal(http_header_id(S("last-modified")), HTTP_HDR_OTHER);
}

static void
test_header_ids_and_hop_by_hop(void **state)
{
	static const char *const hop[] = {
	    "Connection", "keep-alive",	       "PROXY-CONNECTION", "te",
	    "Trailer",	  "Transfer-Encoding", "Upgrade",	   "Proxy-Authorization"};
	static const char *const end_to_end[] = {
	    "Host", "Content-Length", "Expect", "X-Forwarded-For",
	    "Via",  "Cookie",	      "Teapot", "Connections"};

	(void)state;
	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		assert_true(http_header_is_hop_by_hop(http_header_id(S(hop[i]))));
	for (size_t i = 0; i < sizeof(end_to_end) / sizeof(end_to_end[0]); i++)
		assert_false(http_header_is_hop_by_hop(http_header_id(S(end_to_end[i]))));
	assert_int_equal(http_header_id(S("HOST")), HTTP_HDR_HOST);
	assert_int_equal(http_header_id(S("x-forwarded-proto")), HTTP_HDR_X_FORWARDED_PROTO);
	assert_int_equal(http_header_id(S("X-Forwarded-Pro")), HTTP_HDR_OTHER);
	assert_int_equal(http_header_id(S("")), HTTP_HDR_OTHER);
}

static void
test_list_tokens(void **state)
{
	const char *v = " close ,, Upgrade\t,X-Foo ,";
	const char *t;
	size_t pos = 0, n;

	(void)state;
	assert_true(http_list_next(v, strlen(v), &pos, &t, &n));
	assert_int_equal(n, 5);
	assert_memory_equal(t, "close", 5);
	assert_true(http_list_next(v, strlen(v), &pos, &t, &n));
	assert_memory_equal(t, "Upgrade", n);
	assert_true(http_list_next(v, strlen(v), &pos, &t, &n));
	assert_int_equal(n, 5);
	assert_memory_equal(t, "X-Foo", 5);
	assert_false(http_list_next(v, strlen(v), &pos, &t, &n));
	assert_true(http_list_has(v, strlen(v), "upgrade"));
	assert_true(http_list_has(v, strlen(v), "x-foo"));
	assert_false(http_list_has(v, strlen(v), "keep-alive"));
	assert_false(http_list_has(S("closed"), "close"));
}

static void
test_connection_flags(void **state)
{
	(void)state;
	assert_int_equal(http_connection_flags(S("close")), HTTP_CONN_CLOSE);
	assert_int_equal(http_connection_flags(S("Keep-Alive")), HTTP_CONN_KEEP_ALIVE);
	assert_int_equal(http_connection_flags(S("keep-alive, Upgrade")),
			 HTTP_CONN_KEEP_ALIVE | HTTP_CONN_UPGRADE);
	assert_int_equal(http_connection_flags(S("X-Forwarded-For")), HTTP_CONN_OTHER);
	assert_int_equal(http_connection_flags(S("")), 0);
	assert_int_equal(http_connection_flags(S("close,upgrade,te")),
			 HTTP_CONN_CLOSE | HTTP_CONN_UPGRADE | HTTP_CONN_OTHER);
}

static enum http_framing_verdict
framing(const char *cl1, const char *cl2, const char *te1, const char *te2, uint64_t *len)
{
	struct http_framing f = {0};
	enum http_framing_verdict v;

	if (cl1)
		http_framing_add_length(&f, S(cl1));
	if (cl2)
		http_framing_add_length(&f, S(cl2));
	if (te1)
		http_framing_add_te(&f, S(te1));
	if (te2)
		http_framing_add_te(&f, S(te2));
	v = http_framing_check(&f);
	if (len)
		*len = f.length;
	return v;
}

static void
test_framing_decisions(void **state)
{
	uint64_t len = 0;

	(void)state;
	assert_int_equal(framing(NULL, NULL, NULL, NULL, NULL), HTTP_FRAMING_NONE);
	assert_int_equal(framing("42", NULL, NULL, NULL, &len), HTTP_FRAMING_LENGTH);
	assert_int_equal(len, 42);
	assert_int_equal(framing("0", NULL, NULL, NULL, &len), HTTP_FRAMING_LENGTH);
	assert_int_equal(len, 0);
	assert_int_equal(framing(NULL, NULL, "chunked", NULL, NULL), HTTP_FRAMING_CHUNKED);
	assert_int_equal(framing(NULL, NULL, "Chunked", NULL, NULL), HTTP_FRAMING_CHUNKED);
	/* Conflicts and anything but exactly "chunked" are 400s. */
	assert_int_equal(framing("3", NULL, "chunked", NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing("3", "4", NULL, NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing("3", "3", NULL, NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing("3, 3", NULL, NULL, NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing("-1", NULL, NULL, NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing("+5", NULL, NULL, NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing("", NULL, NULL, NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing("0x10", NULL, NULL, NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing("99999999999999999999", NULL, NULL, NULL, NULL),
			 HTTP_FRAMING_INVALID);
	assert_int_equal(framing(NULL, NULL, "gzip", NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing(NULL, NULL, "gzip, chunked", NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing(NULL, NULL, "chunked, chunked", NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing(NULL, NULL, "chunked ,", NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing(NULL, NULL, ", chunked", NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing(NULL, NULL, "chunked,,", NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing(NULL, NULL, "CHUNKED", NULL, NULL), HTTP_FRAMING_CHUNKED);
	assert_int_equal(framing(NULL, NULL, "chunked", "chunked", NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing(NULL, NULL, "identity", NULL, NULL), HTTP_FRAMING_INVALID);
	assert_int_equal(framing(NULL, NULL, "", NULL, NULL), HTTP_FRAMING_INVALID);
}

static void
test_head_scan(void **state)
{
	(void)state;
	assert_null(http_head_scan(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n")));
	assert_string_equal(http_head_scan(S("GET / HTTP/1.1\nHost: a\r\n\r\n")), "bare LF");
	assert_string_equal(http_head_scan(S("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n")),
			    "bare CR");
	assert_string_equal(http_head_scan(S("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n")), "obs-fold");
	assert_string_equal(http_head_scan(S("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n")), "obs-fold");
	assert_string_equal(http_head_scan("GET / HTTP/1.1\r\nX: \0\r\n\r\n", 22), "NUL in head");
}

static void
test_reason_and_ids(void **state)
{
	char id[HTTP_REQID_LEN + 1], hex[17];

	(void)state;
	assert_string_equal(http_reason(404), "Not Found");
	assert_string_equal(http_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http_reason(599), "Unknown");
	http_reqid_format(id, 0x0123456789abcdefull);
	assert_string_equal(id, "0123456789abcdef");
	http_reqid_format(id, 1);
	assert_string_equal(id, "0000000000000001");
	assert_int_equal(http_hex(hex, 0), 1);
	assert_string_equal(hex, "0");
	assert_int_equal(http_hex(hex, 0x1a2b), 4);
	assert_string_equal(hex, "1a2b");
	assert_int_equal(http_hex(hex, UINT64_MAX), 16);
	assert_string_equal(hex, "ffffffffffffffff");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_names),
	    cmocka_unit_test(test_header_values),
	    cmocka_unit_test(test_host_values),
	    cmocka_unit_test(test_header_ids_and_hop_by_hop),
	    cmocka_unit_test(test_header_ids_every_name),
	    cmocka_unit_test(test_list_tokens),
	    cmocka_unit_test(test_connection_flags),
	    cmocka_unit_test(test_framing_decisions),
	    cmocka_unit_test(test_head_scan),
	    cmocka_unit_test(test_reason_and_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
