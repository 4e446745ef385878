/*
 * test_reverse.c: ProxyPassReverse over every header kind and the
 * Set-Cookie Path=/Domain= rewriting, against the SPEC's example mapping
 * (/internal, http://internal.example.com/public) and a few others.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "portico/reverse.h"

struct pair {
	const char *public_path;
	const char *upstream;
};

static struct reverse_map *
maps_of(const struct pair *pairs, size_t n)
{
	struct reverse_map *m = calloc(n ? n : 1, sizeof(*m));

	for (size_t i = 0; i < n; i++) {
		const char *err = NULL;

		m[i].public_path = xstrdup(pairs[i].public_path);
		assert_int_equal(url_parse(pairs[i].upstream, &m[i].upstream, &err), 0);
	}
	return m;
}

static void
maps_free(struct reverse_map *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		reverse_map_free(&m[i]);
	free(m);
}

static const struct reverse_ctx www = {"http", "www.example.com", 15};

struct hcase {
	const char *header;
	const char *in;
	const char *want; /* NULL: unchanged (return 0) */
};

/* Runs a table of header cases against `pairs`, with the client context `ctx`. */
static void
run_cases(const struct pair *pairs, size_t npairs, const struct reverse_ctx *ctx,
	  const struct hcase *cases, size_t n)
{
	struct reverse_map *maps = maps_of(pairs, npairs);

	for (size_t i = 0; i < n; i++) {
		const struct hcase *c = &cases[i];
		enum reverse_kind kind = reverse_header_kind(c->header, strlen(c->header));
		struct buf out;
		int rc;

		print_message("%s: %s\n", c->header, c->in);
		buf_init(&out);
		buf_adds(&out, "keep:");
		if (kind == REVERSE_COOKIE)
			rc = reverse_cookie(maps, npairs, c->in, strlen(c->in), ctx, &out);
		else
			rc = reverse_header(maps, npairs, kind, c->in, strlen(c->in), ctx, &out);
		if (c->want == NULL) {
			assert_int_equal(rc, 0);
			assert_string_equal(out.data, "keep:");
		} else {
			assert_int_equal(rc, 1);
			assert_string_equal(out.data + 5, c->want);
			assert_memory_equal(out.data, "keep:", 5);
		}
		buf_free(&out);
	}
	maps_free(maps, npairs);
}

static void
test_kind(void **state)
{
	(void)state;
	assert_int_equal(reverse_header_kind("Location", 8), REVERSE_URL);
	assert_int_equal(reverse_header_kind("LOCATION", 8), REVERSE_URL);
	assert_int_equal(reverse_header_kind("content-location", 16), REVERSE_URL);
	assert_int_equal(reverse_header_kind("URI", 3), REVERSE_URL);
	assert_int_equal(reverse_header_kind("Destination", 11), REVERSE_URL);
	assert_int_equal(reverse_header_kind("Refresh", 7), REVERSE_REFRESH);
	assert_int_equal(reverse_header_kind("link", 4), REVERSE_LINK);
	assert_int_equal(reverse_header_kind("Set-Cookie", 10), REVERSE_COOKIE);
	assert_int_equal(reverse_header_kind("Content-Type", 12), REVERSE_NONE);
	assert_int_equal(reverse_header_kind("Locations", 9), REVERSE_NONE);
	assert_int_equal(reverse_header_kind("Locatio", 7), REVERSE_NONE);
	assert_int_equal(reverse_header_kind("Set-Cookie2", 11), REVERSE_NONE);
	/* Only `len` bytes count. */
	assert_int_equal(reverse_header_kind("Linkage", 4), REVERSE_LINK);
}

static const struct pair spec_pair[] = {{"/internal", "http://internal.example.com/public"}};

static const struct hcase location_cases[] = {
    {"Location", "http://internal.example.com/public/status.cgi",
     "http://www.example.com/internal/status.cgi"},
    {"Location", "http://internal.example.com/public", "http://www.example.com/internal"},
    {"Location", "http://internal.example.com/public/", "http://www.example.com/internal/"},
    {"Location", "http://internal.example.com/public?x=1&y=/public/",
     "http://www.example.com/internal?x=1&y=/public/"},
    {"Location", "http://internal.example.com/public#top", "http://www.example.com/internal#top"},
    {"Location", "http://internal.example.com/public/a?b", "http://www.example.com/internal/a?b"},
    /* Scheme and host any case; path case-sensitive. */
    {"Location", "HTTP://Internal.Example.COM/public/x", "http://www.example.com/internal/x"},
    {"Location", "http://internal.example.com/Public/x", NULL},
    /* Default port equals no port; other ports do not match. */
    {"Location", "http://internal.example.com:80/public/x", "http://www.example.com/internal/x"},
    {"Location", "http://internal.example.com:/public/x", "http://www.example.com/internal/x"},
    {"Location", "http://internal.example.com:8080/public/x", NULL},
    {"Location", "http://internal.example.com:80x/public/x", NULL},
    /* Another scheme, host, or a longer host does not match. */
    {"Location", "https://internal.example.com/public/x", NULL},
    {"Location", "http://internal.example.com.evil/public/x", NULL},
    {"Location", "http://evil.example/public/x", NULL},
    {"Location", "http://user@internal.example.com/public/x", NULL},
    {"Location", "ftp://internal.example.com/public/x", NULL},
    /* Segment boundary. */
    {"Location", "http://internal.example.com/publicx", NULL},
    {"Location", "http://internal.example.com/publi", NULL},
    {"Location", "http://internal.example.com/", NULL},
    {"Location", "http://internal.example.com", NULL},
    /* A run of slashes matches a run of slashes. */
    {"Location", "http://internal.example.com//public//x", "http://www.example.com/internal//x"},
    /* Path-only URLs. */
    {"Location", "/public/status.cgi", "http://www.example.com/internal/status.cgi"},
    {"Location", "/public", "http://www.example.com/internal"},
    {"Location", "/public?q", "http://www.example.com/internal?q"},
    {"Location", "/publicx", NULL},
    {"Location", "/other/public", NULL},
    {"Location", "public/x", NULL},
    {"Location", "//internal.example.com/public/x", NULL},
    {"Location", "", NULL},
    /* Surrounding blanks are kept. */
    {"Location", " /public/a ", " http://www.example.com/internal/a "},
    /* The other whole-value headers. */
    {"Content-Location", "http://internal.example.com/public/a.html",
     "http://www.example.com/internal/a.html"},
    {"URI", "/public/a", "http://www.example.com/internal/a"},
    {"Destination", "http://internal.example.com/public/new",
     "http://www.example.com/internal/new"},
    {"Destination", "http://elsewhere.example/public/new", NULL},
    /* Headers that are not rewritten. */
    {"Content-Type", "/public/a", NULL},
};

static void
test_location(void **state)
{
	(void)state;
	run_cases(spec_pair, 1, &www, location_cases, ARRAY_SIZE(location_cases));
}

static const struct hcase refresh_cases[] = {
    {"Refresh", "5; url=http://internal.example.com/public/a",
     "5; url=http://www.example.com/internal/a"},
    {"Refresh", "5;URL=/public/a", "5;URL=http://www.example.com/internal/a"},
    {"Refresh", "0 ; Url = /public/a", "0 ; Url = http://www.example.com/internal/a"},
    {"Refresh", "3, url=/public/a", "3, url=http://www.example.com/internal/a"},
    {"Refresh", "5; url='/public/a'", "5; url='http://www.example.com/internal/a'"},
    {"Refresh", "5; url=\"/public/a\" ", "5; url=\"http://www.example.com/internal/a\" "},
    {"Refresh", "1.5; /public/a", "1.5; http://www.example.com/internal/a"},
    {"Refresh", "url=/public/a", "url=http://www.example.com/internal/a"},
    {"Refresh", "5", NULL},
    {"Refresh", "5; url=", NULL},
    {"Refresh", "5; url=/other", NULL},
    {"Refresh", "5; url=http://other.example/public/a", NULL},
};

static void
test_refresh(void **state)
{
	(void)state;
	run_cases(spec_pair, 1, &www, refresh_cases, ARRAY_SIZE(refresh_cases));
}

static const struct hcase link_cases[] = {
    {"Link", "<http://internal.example.com/public/style.css>; rel=preload",
     "<http://www.example.com/internal/style.css>; rel=preload"},
    {"Link", "</public/a.css>; rel=preload; as=style, </public/b.js>; rel=preload",
     "<http://www.example.com/internal/a.css>; rel=preload; as=style, "
     "<http://www.example.com/internal/b.js>; rel=preload"},
    /* Only the matching target of several changes. */
    {"Link", "<https://cdn.example/x.js>; rel=preload, </public/b.js>; rel=next",
     "<https://cdn.example/x.js>; rel=preload, <http://www.example.com/internal/b.js>; rel=next"},
    /* A <...> inside a quoted parameter is not a target. */
    {"Link", "</other>; title=\"</public/x>\", </public/y>",
     "</other>; title=\"</public/x>\", <http://www.example.com/internal/y>"},
    {"Link", "</other>; title=\"a \\\" </public/x>\"", NULL},
    {"Link", "<https://cdn.example/x.js>; rel=preload", NULL},
    {"Link", "<relative/public/x>", NULL},
    {"Link", "</public/unterminated", NULL},
    {"Link", "<>", NULL},
};

static void
test_link(void **state)
{
	(void)state;
	run_cases(spec_pair, 1, &www, link_cases, ARRAY_SIZE(link_cases));
}

/* The listener's scheme and the Host with its port make the public prefix. */
static void
test_public_scheme_and_port(void **state)
{
	static const struct reverse_ctx tls = {"https", "www.example.com:8443", 20};
	static const struct reverse_ctx nohost = {"http", NULL, 0};
	static const struct hcase cases[] = {
	    {"Location", "/public/a", "https://www.example.com:8443/internal/a"},
	};
	static const struct hcase relative[] = {
	    {"Location", "http://internal.example.com/public/a", "/internal/a"},
	};

	(void)state;
	run_cases(spec_pair, 1, &tls, cases, ARRAY_SIZE(cases));
	run_cases(spec_pair, 1, &nohost, relative, ARRAY_SIZE(relative));
}

/* Upstreams with explicit ports, https, IPv6 literals. */
static void
test_ports_and_v6(void **state)
{
	static const struct pair pairs[] = {
	    {"/a", "https://secure.example/app"},
	    {"/b", "http://h.example:8080/app"},
	    {"/c", "http://[2001:db8::1]/app"},
	};
	static const struct hcase cases[] = {
	    {"Location", "https://secure.example/app/x", "http://www.example.com/a/x"},
	    {"Location", "https://SECURE.example:443/app/x", "http://www.example.com/a/x"},
	    {"Location", "HTTPS://secure.example:443/app", "http://www.example.com/a"},
	    {"Location", "http://secure.example/app/x", NULL},
	    {"Location", "https://secure.example:8443/app/x", NULL},
	    {"Location", "http://h.example:8080/app/x", "http://www.example.com/b/x"},
	    {"Location", "http://h.example/app/x", NULL},
	    {"Location", "http://h.example:80/app/x", NULL},
	    {"Location", "http://[2001:DB8::1]/app/x", "http://www.example.com/c/x"},
	    {"Location", "http://[2001:db8::1]:80/app", "http://www.example.com/c"},
	    {"Location", "http://[2001:db8::2]/app/x", NULL},
	    {"Location", "http://[2001:db8::1/app/x", NULL},
	    /* Path-only: the first mapping whose upstream path matches. */
	    {"Location", "/app/y", "http://www.example.com/a/y"},
	};

	(void)state;
	run_cases(pairs, ARRAY_SIZE(pairs), &www, cases, ARRAY_SIZE(cases));
}

/* Mappings are tried in order; the first match applies. */
static void
test_order(void **state)
{
	static const struct pair pairs[] = {
	    {"/deep", "http://internal.example.com/public/deep"},
	    {"/internal", "http://internal.example.com/public"},
	    {"/root", "http://internal.example.com/"},
	};
	static const struct hcase cases[] = {
	    {"Location", "http://internal.example.com/public/deep/x",
	     "http://www.example.com/deep/x"},
	    {"Location", "http://internal.example.com/public/deeper",
	     "http://www.example.com/internal/deeper"},
	    {"Location", "http://internal.example.com/public/x",
	     "http://www.example.com/internal/x"},
	    {"Location", "http://internal.example.com/other", "http://www.example.com/rootother"},
	    {"Location", "http://internal.example.com", "http://www.example.com/root"},
	    {"Location", "/zzz", "http://www.example.com/rootzzz"},
	};

	(void)state;
	run_cases(pairs, ARRAY_SIZE(pairs), &www, cases, ARRAY_SIZE(cases));
}

/* An upstream with an empty path or "/" maps everything on its host. */
static void
test_root_upstream(void **state)
{
	static const struct pair empty[] = {{"/internal", "http://internal.example.com"}};
	static const struct pair slash[] = {{"/internal/", "http://internal.example.com/"}};
	static const struct hcase empty_cases[] = {
	    {"Location", "http://internal.example.com/a/b", "http://www.example.com/internal/a/b"},
	    {"Location", "http://internal.example.com", "http://www.example.com/internal"},
	    {"Location", "http://internal.example.com?q", "http://www.example.com/internal?q"},
	    {"Location", "/", "http://www.example.com/internal/"},
	    {"Location", "http://other.example.com/a", NULL},
	};
	static const struct hcase slash_cases[] = {
	    {"Location", "http://internal.example.com/a/b", "http://www.example.com/internal/a/b"},
	    {"Location", "http://internal.example.com/", "http://www.example.com/internal/"},
	    {"Location", "http://internal.example.com", "http://www.example.com/internal/"},
	    {"Location", "/x", "http://www.example.com/internal/x"},
	};

	static const struct pair root_empty[] = {{"/", "http://internal.example.com"}};
	static const struct hcase root_empty_cases[] = {
	    {"Location", "http://internal.example.com/a/b", "http://www.example.com/a/b"},
	    {"Location", "http://internal.example.com", "http://www.example.com/"},
	    {"Location", "/", "http://www.example.com/"},
	    {"Set-Cookie", "k=v; Path=/app", "k=v; Path=/app"},
	};
	/* A match route's mapping: the public path is the request path itself. */
	static const struct pair same_path[] = {{"", "http://internal.example.com/base"}};
	static const struct hcase same_path_cases[] = {
	    {"Location", "http://internal.example.com/base/app/x", "http://www.example.com/app/x"},
	    {"Location", "/base/app/x?q", "http://www.example.com/app/x?q"},
	    {"Location", "/basement", NULL},
	};

	(void)state;
	run_cases(empty, 1, &www, empty_cases, ARRAY_SIZE(empty_cases));
	run_cases(root_empty, 1, &www, root_empty_cases, ARRAY_SIZE(root_empty_cases));
	run_cases(same_path, 1, &www, same_path_cases, ARRAY_SIZE(same_path_cases));
	run_cases(slash, 1, &www, slash_cases, ARRAY_SIZE(slash_cases));
}

/* Trailing slashes that disagree give what Apache gives: plain concatenation. */
static void
test_slash_mismatch(void **state)
{
	static const struct pair public_slash[] = {
	    {"/internal/", "http://internal.example.com/public"}};
	static const struct pair upstream_slash[] = {
	    {"/internal", "http://internal.example.com/public/"}};
	static const struct hcase ps_cases[] = {
	    {"Location", "http://internal.example.com/public/x",
	     "http://www.example.com/internal//x"},
	    {"Location", "http://internal.example.com/public", "http://www.example.com/internal/"},
	};
	static const struct hcase us_cases[] = {
	    {"Location", "http://internal.example.com/public/x",
	     "http://www.example.com/internalx"},
	    {"Location", "http://internal.example.com/public", NULL},
	};

	(void)state;
	run_cases(public_slash, 1, &www, ps_cases, ARRAY_SIZE(ps_cases));
	run_cases(upstream_slash, 1, &www, us_cases, ARRAY_SIZE(us_cases));
}

static void
test_no_maps(void **state)
{
	static const struct hcase cases[] = {
	    {"Location", "http://internal.example.com/public/x", NULL},
	    {"Set-Cookie", "a=b; Path=/public", NULL},
	};

	(void)state;
	run_cases(NULL, 0, &www, cases, ARRAY_SIZE(cases));
}

static const struct hcase cookie_cases[] = {
    {"Set-Cookie", "sid=1; Path=/public/app", "sid=1; Path=/internal/app"},
    {"Set-Cookie", "sid=1; Path=/public", "sid=1; Path=/internal"},
    {"Set-Cookie", "sid=1; Path=/public/", "sid=1; Path=/internal/"},
    {"Set-Cookie", "sid=1; path=/public/app; HttpOnly", "sid=1; path=/internal/app; HttpOnly"},
    {"Set-Cookie", "sid=1;PATH = /public/app ;Secure", "sid=1;PATH = /internal/app ;Secure"},
    {"Set-Cookie", "sid=1; Path=/publicx", NULL},
    {"Set-Cookie", "sid=1; Path=/", NULL},
    {"Set-Cookie", "sid=1; Path=/Public", NULL},
    {"Set-Cookie", "sid=1; Path=", NULL},
    /* Domain: the upstream host, with or without a dot, any case. */
    {"Set-Cookie", "sid=1; Domain=internal.example.com", "sid=1; Domain=www.example.com"},
    {"Set-Cookie", "sid=1; domain=.Internal.Example.com", "sid=1; domain=www.example.com"},
    {"Set-Cookie", "sid=1; Domain=example.com", NULL},
    {"Set-Cookie", "sid=1; Domain=xinternal.example.com", NULL},
    {"Set-Cookie", "sid=1; Domain=internal.example.com.evil", NULL},
    /* Both, with other attributes untouched and in place. */
    {"Set-Cookie",
     "sid=abc; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/public/app; "
     "Domain=internal.example.com; Secure; SameSite=Lax",
     "sid=abc; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/internal/app; "
     "Domain=www.example.com; Secure; SameSite=Lax"},
    /* The cookie's own name=value is never an attribute. */
    {"Set-Cookie", "Path=/public/app", NULL},
    {"Set-Cookie", "Domain=internal.example.com", NULL},
    {"Set-Cookie", "x=Path=/public; Max-Age=3", NULL},
    {"Set-Cookie", "Path=/public; Path=/public/a", "Path=/public; Path=/internal/a"},
    /* Attribute names must be exactly Path/Domain. */
    {"Set-Cookie", "sid=1; XPath=/public/app", NULL},
    {"Set-Cookie", "sid=1; Paths=/public/app", NULL},
    {"Set-Cookie", "sid=1; Comment=Path=/public", NULL},
    {"Set-Cookie", "sid=1; Path", NULL},
    {"Set-Cookie", "sid=1;;; Path=/public/a;", "sid=1;;; Path=/internal/a;"},
};

static void
test_cookie(void **state)
{
	(void)state;
	run_cases(spec_pair, 1, &www, cookie_cases, ARRAY_SIZE(cookie_cases));
}

/* The public host in Domain= drops the port; IPv6 keeps its brackets. */
static void
test_cookie_domain_port(void **state)
{
	static const struct reverse_ctx port = {"https", "www.example.com:8443", 20};
	static const struct reverse_ctx nohost = {"http", NULL, 0};
	static const struct hcase cases[] = {
	    {"Set-Cookie", "a=b; Domain=internal.example.com", "a=b; Domain=www.example.com"},
	    {"Set-Cookie", "a=b; Path=/public/x", "a=b; Path=/internal/x"},
	};
	static const struct hcase without_host[] = {
	    {"Set-Cookie", "a=b; Domain=internal.example.com", NULL},
	    {"Set-Cookie", "a=b; Path=/public/x", "a=b; Path=/internal/x"},
	};

	(void)state;
	run_cases(spec_pair, 1, &port, cases, ARRAY_SIZE(cases));
	run_cases(spec_pair, 1, &nohost, without_host, ARRAY_SIZE(without_host));
}

/* Several mappings: the first whose upstream path or host matches applies. */
static void
test_cookie_several_maps(void **state)
{
	static const struct pair pairs[] = {
	    {"/a", "http://one.example/app"},
	    {"/b", "http://two.example/"},
	};
	static const struct hcase cases[] = {
	    {"Set-Cookie", "k=v; Path=/app/x; Domain=two.example",
	     "k=v; Path=/a/x; Domain=www.example.com"},
	    {"Set-Cookie", "k=v; Path=/other", "k=v; Path=/bother"},
	    {"Set-Cookie", "k=v; Domain=three.example", NULL},
	};

	(void)state;
	run_cases(pairs, ARRAY_SIZE(pairs), &www, cases, ARRAY_SIZE(cases));
}

/* Values are taken by length: bytes after `len`, NUL bytes inside, are handled. */
static void
test_lengths(void **state)
{
	struct reverse_map *maps = maps_of(spec_pair, 1);
	static const char v[] = "/public/a\0/public/b";
	struct buf out;

	(void)state;
	buf_init(&out);
	assert_int_equal(reverse_header(maps, 1, REVERSE_URL, "/public/ab", 9, &www, &out), 1);
	assert_string_equal(out.data, "http://www.example.com/internal/a");
	buf_reset(&out);
	assert_int_equal(reverse_header(maps, 1, REVERSE_URL, v, sizeof(v) - 1, &www, &out), 1);
	assert_int_equal(out.len, strlen("http://www.example.com/internal/a") + 10);
	assert_memory_equal(out.data + out.len - 10, "\0/public/b", 10);
	buf_reset(&out);
	assert_int_equal(reverse_header(maps, 1, REVERSE_URL, "/publicx", 7, &www, &out), 1);
	assert_int_equal(reverse_header(maps, 1, REVERSE_NONE, "/public", 7, &www, &out), 0);
	assert_int_equal(reverse_header(maps, 1, REVERSE_COOKIE, "/public", 7, &www, &out), 0);
	buf_free(&out);
	maps_free(maps, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kind),
	    cmocka_unit_test(test_location),
	    cmocka_unit_test(test_refresh),
	    cmocka_unit_test(test_link),
	    cmocka_unit_test(test_public_scheme_and_port),
	    cmocka_unit_test(test_ports_and_v6),
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_root_upstream),
	    cmocka_unit_test(test_slash_mismatch),
	    cmocka_unit_test(test_no_maps),
	    cmocka_unit_test(test_cookie),
	    cmocka_unit_test(test_cookie_domain_port),
	    cmocka_unit_test(test_cookie_several_maps),
	    cmocka_unit_test(test_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
