/*
 * test_url.c: url_parse() on the URLs a configuration may hold, and on
 * those it must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "portico/url.h"

struct good_case {
	const char *in;
	const char *scheme, *host;
	unsigned port;
	const char *authority, *path;
};

static const struct good_case good[] = {
    {"http://internal.example.com/public", "http", "internal.example.com", 80,
     "internal.example.com", "/public"},
    {"HTTP://Internal.Example.COM/Public", "http", "internal.example.com", 80,
     "internal.example.com", "/Public"},
    {"https://h.example", "https", "h.example", 443, "h.example", ""},
    {"HtTpS://h.example/", "https", "h.example", 443, "h.example", "/"},
    {"http://h:8080/a/b", "http", "h", 8080, "h:8080", "/a/b"},
    {"http://h:80/a", "http", "h", 80, "h", "/a"},
    {"https://h:443/", "https", "h", 443, "h", "/"},
    {"https://h:80/", "https", "h", 80, "h:80", "/"},
    {"http://h:443/", "http", "h", 443, "h:443", "/"},
    {"http://[::1]/x", "http", "::1", 80, "[::1]", "/x"},
    {"http://[2001:DB8::1]:8443/x", "http", "2001:db8::1", 8443, "[2001:db8::1]:8443", "/x"},
    {"http://192.0.2.10:81", "http", "192.0.2.10", 81, "192.0.2.10:81", ""},
    {"http://h/public/$1", "http", "h", 80, "h", "/public/$1"},
    {"http://h/a?x=1&y=$2", "http", "h", 80, "h", "/a?x=1&y=$2"},
    {"http://h?q", "http", "h", 80, "h", "?q"},
    {"http://h/a@b/c%20d", "http", "h", 80, "h", "/a@b/c%20d"},
    {"http://under_score.example/", "http", "under_score.example", 80, "under_score.example", "/"},
    {"http://h:00080/", "http", "h", 80, "h", "/"},
    {"http://h:65535/", "http", "h", 65535, "h:65535", "/"},
};

static void
test_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const struct good_case *c = &good[i];
		const char *err = NULL;
		struct url u;

		print_message("%s\n", c->in);
		assert_int_equal(url_parse(c->in, &u, &err), 0);
		assert_string_equal(u.scheme, c->scheme);
		assert_string_equal(u.host, c->host);
		assert_int_equal(u.port, c->port);
		assert_int_equal(u.tls, strcmp(c->scheme, "https") == 0);
		assert_string_equal(u.authority, c->authority);
		assert_string_equal(u.path, c->path);
		url_free(&u);
	}
}

struct bad_case {
	const char *in;
	const char *err_word; /* a word the error must contain */
};

static const struct bad_case bad[] = {
    {"htp://x", "http://"},
    {"ftp://h/", "http://"},
    {"http:/h/", "http://"},
    {"//h/", "http://"},
    {"", "http://"},
    {"http://", "empty host"},
    {"http:///path", "empty host"},
    {"http://:80/", "empty host"},
    {"http://user@h/", "user"},
    {"http://user:pw@h/", "user"},
    {"http://@h/", "user"},
    {"http://h/a#frag", "fragment"},
    {"http://h#", "fragment"},
    {"http://h:0/", "port"},
    {"http://h:65536/", "port"},
    {"http://h:99999/", "port"},
    {"http://h:/", "port"},
    {"http://h:8a/", "port"},
    {"http://h:-1/", "port"},
    {"http://h:123456/", "port"},
    {"http://h/a b", "space"},
    {"http://h /", "space"},
    {"http://h/a\tb", "control"},
    {"http://h/a\x7f", "control"},
    {"http://h/\xc3\xa9", "non-ASCII"},
    {"http://h\r\n/", "control"},
    {"http://[::1/", "IPv6"},
    {"http://[]/", "IPv6"},
    {"http://[zz::1]/", "IPv6"},
    {"http://[::1]x/", "port"},
    {"http://::1/", "empty host"},
    {"http://h%41/", "host"},
    {"http://h!/", "host"},
};

static void
test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct bad_case *c = &bad[i];
		const char *err = NULL;
		struct url u;

		print_message("%s\n", c->in);
		assert_int_equal(url_parse(c->in, &u, &err), -1);
		assert_non_null(err);
		assert_non_null(strstr(err, c->err_word));
		/* On error the struct is zeroed and needs no url_free. */
		assert_null(u.scheme);
		assert_null(u.host);
		assert_null(u.authority);
		assert_null(u.path);
	}
}

static void
test_copy(void **state)
{
	struct url a, b;
	const char *err;

	(void)state;
	assert_int_equal(url_parse("https://[::1]:8443/p?q", &a, &err), 0);
	url_copy(&b, &a);
	url_free(&a);
	assert_null(a.host);
	assert_string_equal(b.scheme, "https");
	assert_string_equal(b.host, "::1");
	assert_int_equal(b.port, 8443);
	assert_true(b.tls);
	assert_string_equal(b.authority, "[::1]:8443");
	assert_string_equal(b.path, "/p?q");
	url_free(&b);
	url_free(&b); /* freeing twice is harmless: the struct was zeroed */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
