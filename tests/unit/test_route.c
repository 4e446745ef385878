/*
 * test_route.c: rule matching and upstream targets (SPEC section 3), checked
 * against the examples of the specification and against a linear reference
 * implementation of first-match order.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "portico/route.h"

/* A rule set under construction; rules are appended in file order. */
struct rules {
	struct route r[64];
	size_t n;
};

/* Fills the parsed pass URL by hand: scheme, authority, and the rest as path. */
static void
set_upstream(struct route *r, const char *pass)
{
	const char *a = strstr(pass, "://");
	size_t alen;

	assert_non_null(a);
	alen = strcspn(a + 3, "/?");
	r->pass = strdup(pass);
	r->upstream.scheme = strndup(pass, (size_t)(a - pass));
	r->upstream.tls = strcmp(r->upstream.scheme, "https") == 0;
	r->upstream.authority = strndup(a + 3, alen);
	r->upstream.host = strndup(a + 3, alen);
	r->upstream.port = r->upstream.tls ? 443 : 80;
	r->upstream.path = strdup(a + 3 + alen);
	r->pass_has_ref = strchr(pass, '$') != NULL;
}

static struct route *
add_rule(struct rules *s, enum route_kind kind, const char *host, const char *pass)
{
	struct route *r = &s->r[s->n];

	assert_true(s->n < ARRAY_SIZE(s->r));
	memset(r, 0, sizeof(*r));
	r->index = (unsigned)s->n++;
	r->kind = kind;
	r->host = host ? strdup(host) : NULL;
	if (pass == NULL)
		r->pass_off = true;
	else
		set_upstream(r, pass);
	return r;
}

static pcre2_code *
compile(const char *pattern)
{
	int errcode;
	PCRE2_SIZE erroff;
	pcre2_code *re =
	    pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &errcode, &erroff, NULL);

	assert_non_null(re);
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

/* pass NULL: an exclusion (pass: off). */
static void
add_path(struct rules *s, const char *path, const char *pass, const char *host)
{
	struct route *r = add_rule(s, ROUTE_PATH, host, pass);

	r->path = strdup(path);
}

static void
add_match(struct rules *s, const char *pattern, const char *pass, const char *host)
{
	struct route *r = add_rule(s, ROUTE_MATCH, host, pass);

	r->match = strdup(pattern);
	r->re = compile(pattern);
}

static void
free_route(struct route *r)
{
	free(r->path);
	free(r->match);
	pcre2_code_free(r->re);
	free(r->pass);
	free(r->upstream.scheme);
	free(r->upstream.host);
	free(r->upstream.authority);
	free(r->upstream.path);
	free(r->host);
}

static void
free_rules(struct rules *s)
{
	for (size_t i = 0; i < s->n; i++)
		free_route(&s->r[i]);
	s->n = 0;
}

/* The index of the rule that matches, or -1. */
static int
lookup_host(const struct route_table *t, const char *host, const char *path)
{
	const struct route *r =
	    route_table_lookup(t, host, host ? strlen(host) : 0, path, strlen(path), NULL);

	return r ? (int)r->index : -1;
}

static int
lookup(const struct route_table *t, const char *path)
{
	return lookup_host(t, NULL, path);
}

/*
 * Looks `path` up, maps it with `query` (NULL: the request had no "?"), and
 * compares with `want` (NULL: no match).
 */
static void
check_target_q(const struct route_table *t, const char *path, const char *query, const char *want)
{
	struct route_captures caps;
	const struct route *r = route_table_lookup(t, NULL, 0, path, strlen(path), &caps);
	const char *err = NULL;
	struct buf b;

	if (want == NULL) {
		assert_null(r);
		return;
	}
	if (r == NULL)
		fail_msg("%s: no rule matched", path);
	assert_false(r->pass_off);
	buf_init(&b);
	if (route_target(r, path, strlen(path), query, query ? strlen(query) : 0, &caps, &b,
			 &err) != 0)
		fail_msg("%s: %s", path, err);
	assert_string_equal(b.data, want);
	buf_free(&b);
}

static void
check_target(const struct route_table *t, const char *path, const char *want)
{
	check_target_q(t, path, NULL, want);
}

static void
test_prefix_segment_boundary(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/internal", "http://internal.example.com/public", NULL);
	t = route_table_build(s.r, s.n);
	assert_int_equal(lookup(t, "/internal"), 0);
	assert_int_equal(lookup(t, "/internal/"), 0);
	assert_int_equal(lookup(t, "/internal/a"), 0);
	assert_int_equal(lookup(t, "//internal//a"), 0);
	assert_int_equal(lookup(t, "/internal//"), 0);
	assert_int_equal(lookup(t, "/internalx"), -1);
	assert_int_equal(lookup(t, "/internal.png"), -1);
	assert_int_equal(lookup(t, "/intern"), -1);
	assert_int_equal(lookup(t, "/Internal"), -1);
	assert_int_equal(lookup(t, "/"), -1);
	assert_int_equal(lookup(t, "/x/internal"), -1);
	route_table_free(t);
	free_rules(&s);
}

static void
test_prefix_target_appends_rest(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/internal", "http://internal.example.com/public", NULL);
	add_path(&s, "/bare", "http://internal.example.com", NULL);
	add_path(&s, "/", "http://root.example.com/", NULL);
	t = route_table_build(s.r, s.n);
	check_target(t, "/internal/logo.png", "/public/logo.png");
	check_target(t, "/internal", "/public");
	check_target(t, "/internal/", "/public/");
	check_target(t, "//internal//a", "/public//a");
	check_target(t, "/internal/a%20b/%C3%A9", "/public/a%20b/%C3%A9");
	check_target(t, "/internal/a b", "/public/a%20b"); /* re-encoded to pchar */
	check_target(t, "/bare", "/");
	check_target(t, "/bare/x", "/x");
	check_target(t, "/x/y", "/x/y");
	check_target(t, "/", "/");
	route_table_free(t);
	free_rules(&s);
}

static void
test_trailing_slash_significant(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/internal/", "http://internal.example.com/public", NULL);
	t = route_table_build(s.r, s.n);
	assert_int_equal(lookup(t, "/internal"), -1);
	assert_int_equal(lookup(t, "/internal/"), 0);
	assert_int_equal(lookup(t, "/internal/x"), 0);
	assert_int_equal(lookup(t, "/internalx/"), -1);
	/* The mismatch SPEC section 3 describes (and -t warns about). */
	check_target(t, "/internal/logo.png", "/publiclogo.png");
	/* The rule's slash run takes the whole run in the path. */
	check_target(t, "/internal//logo.png", "/publiclogo.png");
	check_target(t, "/internal/", "/public");
	route_table_free(t);
	free_rules(&s);
}

static void
test_slash_runs(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/a//b", "http://h/p", NULL);
	add_path(&s, "//c/", "http://h/q/", NULL);
	t = route_table_build(s.r, s.n);
	assert_int_equal(lookup(t, "/a/b"), 0);
	assert_int_equal(lookup(t, "/a///b/x"), 0);
	assert_int_equal(lookup(t, "//a/b"), 0);
	assert_int_equal(lookup(t, "/ab"), -1);
	assert_int_equal(lookup(t, "/a/bc"), -1);
	assert_int_equal(lookup(t, "/c/x"), 1);
	assert_int_equal(lookup(t, "/c"), -1);
	check_target(t, "/a///b//x", "/p//x");
	check_target(t, "///c///x", "/q/x");
	route_table_free(t);
	free_rules(&s);
}

static void
test_exclusion_before_general_rule(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/internal/excluded", NULL, NULL);
	add_path(&s, "/internal", "http://internal.example.com/public", NULL);
	t = route_table_build(s.r, s.n);
	assert_int_equal(lookup(t, "/internal/excluded"), 0);
	assert_int_equal(lookup(t, "/internal/excluded/x"), 0);
	assert_true(s.r[0].pass_off);
	assert_int_equal(lookup(t, "/internal/excludedx"), 1);
	assert_int_equal(lookup(t, "/internal/other"), 1);
	assert_int_equal(route_table_shadowed_by(t, 1), -1);
	route_table_free(t);
	free_rules(&s);
}

static void
test_exclusion_after_general_rule(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/internal", "http://internal.example.com/public", NULL);
	add_path(&s, "/internal/excluded", NULL, NULL);
	t = route_table_build(s.r, s.n);
	/* Apache order: the general rule comes first and wins. */
	assert_int_equal(lookup(t, "/internal/excluded/x"), 0);
	assert_int_equal(route_table_shadowed_by(t, 1), 0);
	route_table_free(t);
	free_rules(&s);
}

static void
test_seed_scenario(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/internal/excluded", NULL, NULL);
	add_match(&s, "^/internal/(.*[.](jpeg|png))$", "http://internal.example.com/public/$1",
		  NULL);
	add_path(&s, "/internal", "http://internal.example.com/public", NULL);
	t = route_table_build(s.r, s.n);
	assert_int_equal(lookup(t, "/internal/logo.png"), 1);
	check_target(t, "/internal/logo.png", "/public/logo.png");
	check_target(t, "/internal/img/a.jpeg", "/public/img/a.jpeg");
	assert_int_equal(lookup(t, "/internal/excluded/x"), 0);
	assert_int_equal(lookup(t, "/internal/excluded/x.png"), 0);
	assert_int_equal(lookup(t, "/internal/status.cgi"), 2);
	check_target(t, "/internal/status.cgi", "/public/status.cgi");
	check_target_q(t, "/internal/status.cgi", "a=1", "/public/status.cgi?a=1");
	assert_int_equal(lookup(t, "/other"), -1);
	for (size_t i = 0; i < s.n; i++)
		assert_int_equal(route_table_shadowed_by(t, i), -1);
	route_table_free(t);
	free_rules(&s);
}

static void
test_regex_without_reference_appends_path(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_match(&s, "[.]gif$", "http://img.example.com/cache", NULL);
	add_match(&s, "^/api/", "http://api.example.com", NULL);
	t = route_table_build(s.r, s.n);
	check_target(t, "/a/b.gif", "/cache/a/b.gif");
	check_target(t, "/api/v1", "/api/v1");
	check_target(t, "/api/a b", "/api/a%20b");
	check_target(t, "/a/b.png", NULL);
	route_table_free(t);
	free_rules(&s);
}

static void
test_regex_with_references(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_match(&s, "^/u/([^/]+)/(.*)$", "http://h/users/$2/$1", NULL);
	add_match(&s, "^/z/(a)?(b)$", "http://h/[$1][$2][$0]", NULL);
	add_match(&s, "^/d/(.*)$", "http://h/$x/$/$1$", NULL);
	add_match(&s, "^/q/(.*)$", "http://h/s?k=$1", NULL);
	t = route_table_build(s.r, s.n);
	check_target(t, "/u/bob/x/y", "/users/x/y/bob");
	check_target(t, "/z/b", "/[][b][/z/b]"); /* unset capture: empty */
	check_target(t, "/z/ab", "/[a][b][/z/ab]");
	check_target(t, "/d/v", "/$x/$/v$");
	check_target_q(t, "/q/v", "page=2", "/s?k=v&page=2");
	check_target_q(t, "/q/v", "", "/s?k=v");
	route_table_free(t);
	free_rules(&s);
}

static void
test_capture_encoding(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_match(&s, "(?s)^/e/(.*)$", "http://h/t/$1", NULL);
	t = route_table_build(s.r, s.n);
	check_target(t, "/e/a?b", "/t/a%3Fb");
	check_target(t, "/e/a#b", "/t/a%23b");
	check_target(t, "/e/a\rb\nc", "/t/a%0Db%0Ac");
	check_target(t, "/e/a b", "/t/a%20b");
	check_target(t, "/e/x/y;z=1:@", "/t/x/y;z=1:@");
	check_target(t, "/e/%3F%41", "/t/%3F%41"); /* escapes stay escapes */
	check_target(t, "/e/\xc3\xa9", "/t/%C3%A9");
	route_table_free(t);
	free_rules(&s);
}

static void
check_target_fails(const struct route_table *t, const char *path)
{
	struct route_captures caps;
	const struct route *r = route_table_lookup(t, NULL, 0, path, strlen(path), &caps);
	const char *err = NULL;
	struct buf b;

	assert_non_null(r);
	buf_init(&b);
	buf_adds(&b, "kept");
	assert_int_equal(route_target(r, path, strlen(path), NULL, 0, &caps, &b, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "authority"));
	assert_string_equal(b.data, "kept");
	buf_free(&b);
}

static void
test_substitution_must_keep_authority(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_match(&s, "^/h/([^/]*)(.*)$", "http://$1.example.com$2", NULL);
	add_match(&s, "^/p/([0-9]*)(.*)$", "http://h:80$1$2", NULL);
	add_match(&s, "^/ok/(.*)$", "HTTP://H/$1", NULL);
	t = route_table_build(s.r, s.n);
	check_target_fails(t, "/h/evil/x");
	check_target_fails(t, "/h//x"); /* empty capture: still not the template's authority */
	check_target_fails(t, "/p/8080/x");
	check_target(t, "/ok/@evil.com/x", "/@evil.com/x");
	check_target(t, "/ok/x:1", "/x:1");
	route_table_free(t);
	free_rules(&s);
}

static void
test_query_joining(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/a", "http://h/p", NULL);
	add_path(&s, "/b", "http://h/p?x=1", NULL);
	add_match(&s, "^/c(.*)", "http://h/c?y=$1", NULL);
	t = route_table_build(s.r, s.n);
	check_target_q(t, "/a/z", "q=1&r=2", "/p/z?q=1&r=2");
	check_target_q(t, "/a/z", NULL, "/p/z");
	check_target_q(t, "/b", "q=1", "/p?x=1&q=1");
	check_target_q(t, "/c/d", "q=1", "/c?y=/d&q=1");
	route_table_free(t);
	free_rules(&s);
}

static void
test_host_matches(void **state)
{
	(void)state;
	assert_true(route_host_matches(NULL, "any.example", 11));
	assert_true(route_host_matches(NULL, NULL, 0));
	assert_false(route_host_matches("www.example.com", NULL, 0));
	assert_true(route_host_matches("www.example.com", "www.example.com", 15));
	assert_true(route_host_matches("www.example.com", "WWW.Example.COM", 15));
	assert_true(route_host_matches("www.example.com", "www.example.com.", 16));
	assert_false(route_host_matches("www.example.com", "www.example.co", 14));
	assert_false(route_host_matches("www.example.com", "xwww.example.com", 16));
	assert_true(route_host_matches("*.example.com", "a.example.com", 13));
	assert_true(route_host_matches("*.example.com", "A.B.Example.Com", 15));
	assert_false(route_host_matches("*.example.com", "example.com", 11));
	assert_false(route_host_matches("*.example.com", ".example.com", 12));
	assert_false(route_host_matches("*.example.com", "aexample.com", 12));
	assert_false(route_host_matches("*.example.com", "a.example.org", 13));
	/* hostlen bounds the name; the rest is not looked at */
	assert_true(route_host_matches("a.example.com", "a.example.com:8080", 13));
}

static void
test_host_rules(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/x", "http://h/www", "www.example.com");
	add_path(&s, "/x", "http://h/wild", "*.example.com");
	add_match(&s, "^/x", "http://h/re", "api.example.org");
	add_path(&s, "/x", "http://h/any", NULL);
	t = route_table_build(s.r, s.n);
	assert_int_equal(lookup_host(t, "www.example.com", "/x"), 0);
	assert_int_equal(lookup_host(t, "WWW.EXAMPLE.COM", "/x/y"), 0);
	assert_int_equal(lookup_host(t, "a.example.com", "/x"), 1);
	assert_int_equal(lookup_host(t, "example.com", "/x"), 3);
	assert_int_equal(lookup_host(t, "api.example.org", "/x"), 2);
	assert_int_equal(lookup_host(t, "other.org", "/x"), 3);
	assert_int_equal(lookup_host(t, NULL, "/x"), 3);
	assert_int_equal(lookup_host(t, "www.example.com", "/y"), -1);
	route_table_free(t);
	free_rules(&s);
}

static void
test_first_match_wins(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/a/b", "http://h/1", NULL);
	add_match(&s, "^/a", "http://h/2", NULL);
	add_path(&s, "/a", "http://h/3", NULL);
	add_path(&s, "/a", "http://h/4", NULL);
	add_match(&s, "^/c", "http://h/5", NULL);
	add_path(&s, "/", "http://h/6", NULL);
	add_match(&s, "^/d", "http://h/7", NULL);
	t = route_table_build(s.r, s.n);
	assert_int_equal(lookup(t, "/a/b/c"), 0);
	assert_int_equal(lookup(t, "/a/c"), 1);
	assert_int_equal(lookup(t, "/ab"), 1);
	assert_int_equal(lookup(t, "/c"), 4);
	assert_int_equal(lookup(t, "/d"), 5);
	assert_int_equal(lookup(t, "/zzz"), 5);
	route_table_free(t);
	free_rules(&s);
}

static void
test_shadowed_by(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/a", "http://h/", NULL);		      /* 0 */
	add_path(&s, "/a/b", "http://h/", NULL);	      /* 1: behind 0 */
	add_path(&s, "/ab", "http://h/", NULL);		      /* 2: not behind 0 */
	add_path(&s, "/c/", "http://h/", NULL);		      /* 3 */
	add_path(&s, "/c", "http://h/", NULL);		      /* 4: /c is not matched by 3 */
	add_path(&s, "//c//d", "http://h/", NULL);	      /* 5: behind 3 */
	add_path(&s, "/e", "http://h/", "*.example.com");     /* 6 */
	add_path(&s, "/e/f", "http://h/", "a.example.com");   /* 7: behind 6 */
	add_path(&s, "/e/g", "http://h/", NULL);	      /* 8: not behind 6 */
	add_path(&s, "/e/h", "http://h/", "*.b.example.com"); /* 9: behind 6 */
	add_path(&s, "/e", "http://h/", "example.com");	      /* 10: not behind 6 */
	add_match(&s, "^/k", "http://h/", NULL);	      /* 11 */
	add_path(&s, "/k", "http://h/", NULL);		      /* 12: regexes never shadow */
	add_path(&s, "/", "http://h/", "www.example.com");    /* 13 */
	add_match(&s, "^/z", "http://h/", "www.example.com"); /* 14: behind 13 */
	add_match(&s, "^/z", "http://h/", NULL);	      /* 15: not behind 13 */
	add_path(&s, "/", "http://h/", NULL);		      /* 16 */
	add_path(&s, "/zz", "http://h/", NULL);		      /* 17: behind 16 */
	add_match(&s, "^/y", "http://h/", "x.org");	      /* 18: behind 16 */
	t = route_table_build(s.r, s.n);
	static const int want[] = {-1, 0,  -1, -1, -1, 3,  -1, 6,  -1, 6,
				   -1, -1, -1, -1, 13, -1, -1, 16, 16};
	assert_int_equal(s.n, ARRAY_SIZE(want));
	for (size_t i = 0; i < s.n; i++) {
		if (route_table_shadowed_by(t, i) != want[i])
			fail_msg("rule %zu: shadowed by %d, expected %d", i,
				 route_table_shadowed_by(t, i), want[i]);
	}
	route_table_free(t);
	free_rules(&s);
}

static void
test_slash_mismatch(void **state)
{
	struct rules s = {.n = 0};

	(void)state;
	add_path(&s, "/internal/", "http://h/public", NULL);  /* 0: mismatch */
	add_path(&s, "/internal", "http://h/public/", NULL);  /* 1: mismatch */
	add_path(&s, "/internal/", "http://h/public/", NULL); /* 2 */
	add_path(&s, "/internal", "http://h/public", NULL);   /* 3 */
	add_path(&s, "/", "http://h", NULL);		      /* 4: empty pass path */
	add_path(&s, "/x", "http://h/", NULL);		      /* 5: mismatch */
	add_path(&s, "/x/", NULL, NULL);		      /* 6: exclusion */
	add_path(&s, "/q/", "http://h/p/?a=b", NULL);	      /* 7: query ignored */
	add_match(&s, "^/m/", "http://h/p", NULL);	      /* 8: regex */
	static const bool want[] = {true, true, false, false, false, true, false, false, false};
	assert_int_equal(s.n, ARRAY_SIZE(want));
	for (size_t i = 0; i < s.n; i++)
		if (route_has_slash_mismatch(&s.r[i]) != want[i])
			fail_msg("rule %zu: mismatch %d", i, !want[i]);
	free_rules(&s);
}

static void
test_target_without_captures(void **state)
{
	struct rules s = {.n = 0};
	const char *err = NULL;
	struct buf b;

	(void)state;
	add_match(&s, "^/u/([^/]+)$", "http://h/users/$1", NULL);
	buf_init(&b);
	assert_int_equal(route_target(&s.r[0], "/u/bob", 6, "x=1", 3, NULL, &b, &err), 0);
	assert_string_equal(b.data, "/users/bob?x=1");
	buf_reset(&b);
	assert_int_equal(route_target(&s.r[0], "/v/bob", 6, "", 0, NULL, &b, &err), -1);
	assert_non_null(err);
	buf_free(&b);
	free_rules(&s);
}

static void
test_many_groups(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	/* Twelve groups: more than the capture vector holds; $1..$9 still work. */
	add_match(&s, "^/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)$", "http://h/$9$1$0", NULL);
	t = route_table_build(s.r, s.n);
	check_target(t, "/abcdefghijkl", "/ia/abcdefghijkl");
	route_table_free(t);
	free_rules(&s);
}

static void
test_wide_node(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;
	char path[8];
	int k = 0;

	(void)state;
	/* 40 edges out of one node, in no particular byte order. */
	for (int c = 'z'; c >= 'a' && s.n < 40; c--, k++) {
		snprintf(path, sizeof(path), "/%c", c);
		add_path(&s, path, "http://h/", NULL);
		snprintf(path, sizeof(path), "/%c", c - 'a' + 'A');
		add_path(&s, path, "http://h/", NULL);
	}
	t = route_table_build(s.r, s.n);
	for (size_t i = 0; i < s.n; i++) {
		snprintf(path, sizeof(path), "%s/x", s.r[i].path);
		assert_int_equal(lookup(t, path), (int)i);
	}
	assert_int_equal(lookup(t, "/a"), -1); /* 'a'..'f' were not reached */
	assert_int_equal(lookup(t, "/0"), -1);
	assert_int_equal(lookup(t, "/zz"), -1);
	route_table_free(t);
	free_rules(&s);
}

struct thread_arg {
	const struct route_table *t;
	int bad;
};

static void *
lookup_thread(void *p)
{
	struct thread_arg *a = p;

	for (int i = 0; i < 2000; i++) {
		struct route_captures caps;
		const struct route *r = route_table_lookup(a->t, NULL, 0, "/t/x7", 5, &caps);

		if (r == NULL || r->index != 1 || caps.n != 2 || caps.ovector[2] != 3 ||
		    caps.ovector[3] != 5)
			a->bad++;
		r = route_table_lookup(a->t, NULL, 0, "/t/y", 4, NULL);
		if (r == NULL || r->index != 0)
			a->bad++;
	}
	return NULL;
}

static void
test_lookup_from_threads(void **state)
{
	struct rules s = {.n = 0};
	struct thread_arg args[4];
	pthread_t threads[4];
	struct route_table *t;

	(void)state;
	add_match(&s, "^/t/y$", "http://h/", NULL);
	add_match(&s, "^/t/(x[0-9])$", "http://h/$1", NULL);
	t = route_table_build(s.r, s.n); /* one table shared by every thread */
	for (size_t i = 0; i < ARRAY_SIZE(threads); i++) {
		args[i].t = t;
		args[i].bad = 0;
		assert_int_equal(pthread_create(&threads[i], NULL, lookup_thread, &args[i]), 0);
	}
	for (size_t i = 0; i < ARRAY_SIZE(threads); i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(args[i].bad, 0);
	}
	route_table_free(t);
	free_rules(&s);
}

static void
test_empty_query_stays(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_path(&s, "/a", "http://h/u", NULL);
	add_path(&s, "/b", "http://h/p?x=1", NULL);
	add_match(&s, "^/c/(.*)$", "http://h/c/$1", NULL);
	add_match(&s, "^/d/", "http://h/d", NULL);
	t = route_table_build(s.r, s.n);
	check_target_q(t, "/a/x", "", "/u/x?"); /* "/a/x?" keeps its "?" */
	check_target_q(t, "/a/x", NULL, "/u/x");
	check_target_q(t, "/a", "", "/u?");
	check_target_q(t, "/b", "", "/p?x=1"); /* the pass URL has a query already */
	check_target_q(t, "/c/y", "", "/c/y?");
	check_target_q(t, "/c/y", NULL, "/c/y");
	check_target_q(t, "/d/z", "", "/d/d/z?");
	route_table_free(t);
	free_rules(&s);
}

static void
test_captures_in_query_are_data(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_match(&s, "(?s)^/q/(.*)$", "http://b/s?x=$1", NULL);
	add_match(&s, "(?s)^/r/([^/]*)/(.*)$", "http://b/r/$1?y=$2&z=$1", NULL);
	add_path(&s, "/p", "http://b/s?x=", NULL);
	add_match(&s, "(?s)^/n/", "http://b/s?x=", NULL);
	t = route_table_build(s.r, s.n);
	check_target(t, "/q/a&admin=1", "/s?x=a%26admin%3D1");
	check_target(t, "/q/a+b;c d#e", "/s?x=a%2Bb%3Bc%20d%23e");
	check_target(t, "/q/a%26b", "/s?x=a%26b"); /* an escape stays an escape */
	check_target(t, "/q/a/b:c@d!$'()*,~", "/s?x=a/b:c@d!$'()*,~");
	check_target(t, "/q/\"<>[]\\^`{|}\x7f\xc3\xa9",
		     "/s?x=%22%3C%3E%5B%5D%5C%5E%60%7B%7C%7D%7F%C3%A9");
	check_target_q(t, "/q/v", "page=2", "/s?x=v&page=2"); /* the client's own query is kept */
	/* Before the "?" a capture is a path segment; after it, query data. */
	check_target(t, "/r/a;b=c/d&e", "/r/a;b=c?y=d%26e&z=a%3Bb%3Dc");
	/* The rest of the path and a whole appended path land in the query too. */
	check_target(t, "/p/a&admin=1", "/s?x=/a%26admin%3D1");
	check_target(t, "/n/a=1&b", "/s?x=/n/a%3D1%26b");
	route_table_free(t);
	free_rules(&s);
}

/* route_regex_prefix() on `pattern`: `want` is the prefix, or NULL for none. */
static void
check_prefix(const char *pattern, const char *want)
{
	pcre2_code *re = compile(pattern);
	struct buf b;
	bool got;

	buf_init(&b);
	buf_adds(&b, "=");
	got = route_regex_prefix(pattern, re, &b);
	if (want == NULL && got)
		fail_msg("%s: prefix \"%s\", expected none", pattern, b.data + 1);
	if (want != NULL && !got)
		fail_msg("%s: no prefix, expected \"%s\"", pattern, want);
	if (want != NULL && strcmp(b.data + 1, want) != 0)
		fail_msg("%s: prefix \"%s\", expected \"%s\"", pattern, b.data + 1, want);
	if (want == NULL)
		assert_string_equal(b.data, "=");
	buf_free(&b);
	pcre2_code_free(re);
}

static void
test_regex_literal_prefix(void **state)
{
	(void)state;
	check_prefix("^/internal/(.*[.](jpeg|png))$", "/internal/");
	check_prefix("^/api/v1/users/([0-9]+)$", "/api/v1/users/");
	check_prefix("^/a\\.b\\/c\\-d/", "/a.b/c-d/"); /* escaped punctuation is literal */
	check_prefix("^/a.b", "/a");		       /* "." is any byte */
	check_prefix("^/ab?", "/a");		       /* "b" is optional */
	check_prefix("^/ab*", "/a");
	check_prefix("^/ab+", "/a");
	check_prefix("^/ab{2}", "/a");
	check_prefix("^/a\\.?x", "/a");
	check_prefix("^/a\\d", "/a"); /* "\d" is a class */
	check_prefix("^/a\\b", "/a"); /* "\b" is an assertion */
	check_prefix("^/a\\x41", "/a");
	check_prefix("^/a\\Qb.c\\E", "/a");
	check_prefix("^/a[.]png", "/a");
	check_prefix("^/a(b|c)", "/a");		    /* the alternation is inside a group */
	check_prefix("^/a[|]b|", NULL);		    /* a top-level "|" (an empty alternative) */
	check_prefix("^/a[|]", "/a");		    /* "|" in a class is literal */
	check_prefix("^/a\\|b", "/a|b");	    /* so is an escaped one */
	check_prefix("^/a(?#|)x", "/a");	    /* and one in a comment */
	check_prefix("^/a[]|]x", "/a");		    /* "]" first in a class is literal */
	check_prefix("^/a[[:alpha:]|]x", "/a");	    /* a POSIX class inside a class */
	check_prefix("^/a[[:]:]c[](d]|^/b", NULL);  /* "[[:]" is no POSIX class: "|" is outside */
	check_prefix("^/a[[:a[:alpha:]]|]x", NULL); /* the inner "[:" starts the POSIX class */
	check_prefix("^/a[\\E](d]|^/b", NULL);	    /* "]" after an ignored "\\E" is still first */
	check_prefix("^/a[\\Q\\E^\\E](d]|^/b", NULL);
	check_prefix("^/a\\c[|^/b]", NULL); /* "\\c[" is a control character, no class */
	check_prefix("^/a[\\c]]x[|^/b]", "/a");
	check_prefix("^/a(*MARK:()|^/b", NULL); /* a verb's name is not a group */
	check_prefix("^/a(?C\"(\")|^/b", NULL); /* nor a callout's string */
	check_prefix("^/a(?C{(})|^/b", NULL);
	check_prefix("^/a(?C'x''(')x|y", NULL);
	check_prefix("^/a(?C1)x|y", NULL);
	check_prefix("^/a(?C\"|\")x", "/a");
	check_prefix("^/a$", "/a");
	check_prefix("^/a(?=/)", "/a");
	check_prefix("^/a(?i)b", "/a");	      /* caseless only after the prefix */
	check_prefix("(?s)^/e/(.*)$", "/e/"); /* dot-all does not touch literals */
	check_prefix("(?sU)^/e/", "/e/");
	check_prefix("^/a|^/b", NULL); /* two anchored alternatives */
	check_prefix("^/a|/b", NULL);
	check_prefix("^(/a|/b)/x", NULL);
	check_prefix("(?i)^/a", NULL);
	check_prefix("(?m)^/a", NULL);
	check_prefix("(?x)^/a b", NULL);
	check_prefix("^/a(?x)#(\n|/b", NULL); /* extended syntax later: no longer sure */
	check_prefix("(?-i)^/a", NULL);
	check_prefix("/a", NULL); /* unanchored */
	check_prefix("\\A/a", NULL);
	check_prefix("^", NULL);
	check_prefix("^.*", NULL);
	check_prefix("[.]png$", NULL);
	check_prefix("^\\w", NULL);
	check_prefix("(*UTF)^/a", NULL);
	check_prefix("^/caf\xc3\xa9", "/caf"); /* bytes past ASCII end the prefix */
	check_prefix("^/a\\Q|\\E", "/a");
	/* A quantifier after a comment or an empty quote applies to the character before. */
	check_prefix("^/_(?#|x)?y", "/");
	check_prefix("^/a(?#x)(?#y)*b", "/");
	check_prefix("^/a\\Q\\E?b", "/");
	check_prefix("^/a\\E+b", "/");
	check_prefix("^/a\\Q\\E(?#x)\\E{2}b", "/");
}

/* Options given to pcre2_compile() that change what a literal matches: no prefix. */
static void
test_regex_prefix_compile_options(void **state)
{
	static const uint32_t options[] = {PCRE2_CASELESS, PCRE2_MULTILINE, PCRE2_EXTENDED,
					   PCRE2_LITERAL};
	struct buf b;

	(void)state;
	buf_init(&b);
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		int errcode;
		PCRE2_SIZE erroff;
		pcre2_code *re = pcre2_compile((PCRE2_SPTR) "^/a", PCRE2_ZERO_TERMINATED,
					       options[i], &errcode, &erroff, NULL);

		assert_non_null(re);
		assert_false(route_regex_prefix("^/a", re, &b));
		assert_int_equal(b.len, 0);
		pcre2_code_free(re);
	}
	buf_free(&b);
}

/* Prefixed and open expressions interleave with prefix rules in file order. */
static void
test_regex_prefilter_order(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;

	(void)state;
	add_match(&s, "^/a/x$", "http://h/", NULL);  /* 0 */
	add_path(&s, "/a/y", "http://h/", NULL);     /* 1 */
	add_match(&s, "[.]png$", "http://h/", NULL); /* 2: open */
	add_match(&s, "^/a/", "http://h/", "b.org"); /* 3: host */
	add_match(&s, "^/a//z", "http://h/", NULL);  /* 4: two literal slashes */
	add_match(&s, "^/a/", "http://h/", NULL);    /* 5 */
	add_path(&s, "/", "http://h/", NULL);	     /* 6 */
	add_match(&s, "^/b/", "http://h/", NULL);    /* 7: after "/": never */
	t = route_table_build(s.r, s.n);
	assert_int_equal(lookup(t, "/a/x"), 0);
	assert_int_equal(lookup(t, "/a/y/z.png"), 1);
	assert_int_equal(lookup(t, "/a/z.png"), 2);
	assert_int_equal(lookup_host(t, "b.org", "/a/z"), 3);
	assert_int_equal(lookup(t, "/a//z"), 4);
	assert_int_equal(lookup(t, "/a/z"), 5); /* the trie folds "//"; the prefix does not */
	assert_int_equal(lookup(t, "/a///z"), 5);
	assert_int_equal(lookup(t, "/a"), 6);
	assert_int_equal(lookup(t, "/b/x"), 6);
	route_table_free(t);
	free_rules(&s);
}

/*
 * More nested literal prefixes along one path than a lookup keeps lists
 * for: it falls back to trying every expression in order, with the same result.
 */
static void
test_regex_prefilter_deep_nesting(void **state)
{
	struct rules s = {.n = 0};
	struct route_table *t;
	char pattern[80], path[64] = "/";

	(void)state;
	for (int i = 0; i < 40; i++) {
		snprintf(pattern, sizeof(pattern), "^%s$", path);
		add_match(&s, pattern, "http://h/", NULL);
		strcat(path, i % 2 ? "b" : "a");
	}
	add_path(&s, "/", "http://h/", NULL);
	add_match(&s, "^/ab", "http://h/", NULL); /* after "/": never */
	t = route_table_build(s.r, s.n);
	assert_int_equal(lookup(t, "/"), 0);
	assert_int_equal(lookup(t, "/a"), 1);
	assert_int_equal(lookup(t, "/abababab"), 8);
	path[39] = '\0';
	assert_int_equal(lookup(t, path), 38);
	strcat(path, "bz");
	assert_int_equal(lookup(t, path), 40); /* every expression tried, none matched */
	route_table_free(t);
	free_rules(&s);
}

/* ---- linear reference: Apache's loop over every rule in order ---- */

static int
ref_alias_match(const char *uri, const char *fake)
{
	const char *end_fake = fake + strlen(fake), *a = fake, *u = uri;
	const char *end_uri = uri + strlen(uri);

	while (a < end_fake && u < end_uri) {
		if (*a == '/') {
			if (*u != '/')
				return 0;
			while (*a == '/')
				++a;
			while (*u == '/')
				++u;
		} else if (*u++ != *a++) {
			return 0;
		}
	}
	if (u == end_uri && a != end_fake)
		return 0;
	if (a[-1] != '/' && *u != '\0' && *u != '/')
		return 0;
	return (int)(u - uri);
}

static int
ref_lookup(const struct route *routes, size_t n, const char *host, const char *path)
{
	pcre2_match_data *md = pcre2_match_data_create(4, NULL);
	int found = -1;

	for (size_t i = 0; i < n && found < 0; i++) {
		const struct route *r = &routes[i];

		if (!route_host_matches(r->host, host, host ? strlen(host) : 0))
			continue;
		if (r->kind == ROUTE_PATH && ref_alias_match(path, r->path) > 0)
			found = (int)i;
		if (r->kind == ROUTE_MATCH &&
		    pcre2_match(r->re, (PCRE2_SPTR)path, strlen(path), 0, 0, md, NULL) >= 0)
			found = (int)i;
	}
	pcre2_match_data_free(md);
	return found;
}

static uint32_t rng_state;

static uint32_t
rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return (rng_state >> 16) & 0x7fff;
}

/* A random path over a small alphabet, so that rules and paths collide often. */
static void
random_path(char *out, size_t cap, bool allow_trailing)
{
	static const char *const parts[] = {"a", "ab", "b", "a.png", "x"};
	size_t len = 0, nseg = 1 + rng() % 4;

	out[0] = '\0';
	for (size_t k = 0; k < nseg; k++) {
		int slashes = rng() % 5 == 0 ? 2 : 1;

		len += (size_t)snprintf(out + len, cap - len, "%.*s%s", slashes, "//",
					parts[rng() % ARRAY_SIZE(parts)]);
	}
	if (allow_trailing && rng() % 3 == 0)
		snprintf(out + len, cap - len, "/");
}

static void
random_rules(struct rules *s)
{
	static const char *const hosts[] = {NULL, NULL, NULL, "a.com", "*.a.com", "b.org"};
	/* With and without a literal prefix, some that look like one but are not. */
	static const char *const patterns[] = {
	    "^/a/",	  "[.]png$",   "^/b",	    "^/x/ab?$", "^//",
	    "^/a/b",	  "^/ab",      "^/a//x",    "(?i)^/A",	"^/a|^/b",
	    "^/x/(a|b)$", "^/a\\.png", "^/a[.]png", "^/b+/",	"^(/a|/x)/ab",
	    "^/x/a\\b",	  "^/a(?=/)",  "a$",	    "^/a/?$",	"(?s)^/b/x",
	    "^/x\\/a",	  "^/ab?/x",   "^$|^/a/a",  "(?m)^/b",	"^/a.png",
	};
	size_t n = 1 + rng() % 30;

	for (size_t i = 0; i < n; i++) {
		const char *host = hosts[rng() % ARRAY_SIZE(hosts)];
		char path[64];

		if (rng() % 5 == 0) {
			add_match(s, patterns[rng() % ARRAY_SIZE(patterns)], "http://h/", host);
			continue;
		}
		if (rng() % 12 == 0)
			snprintf(path, sizeof(path), "/");
		else
			random_path(path, sizeof(path), true);
		add_path(s, path, rng() % 4 == 0 ? NULL : "http://h/", host);
	}
}

static void
test_matches_linear_reference(void **state)
{
	static const char *const hosts[] = {NULL, "a.com", "x.a.com", "b.org", "c.net"};

	(void)state;
	rng_state = 20261127;
	for (int round = 0; round < 400; round++) {
		struct rules s = {.n = 0};
		struct route_table *t;

		random_rules(&s);
		t = route_table_build(s.r, s.n);
		for (int q = 0; q < 200; q++) {
			const char *host = hosts[rng() % ARRAY_SIZE(hosts)];
			char path[64];
			int want, got;

			random_path(path, sizeof(path), true);
			want = ref_lookup(s.r, s.n, host, path);
			got = lookup_host(t, host, path);
			if (got != want)
				fail_msg("round %d: %s%s: got rule %d, reference %d", round,
					 host ? host : "", path, got, want);
		}
		route_table_free(t);
		free_rules(&s);
	}
}

/* A large table: 10,000 prefix rules, nested ones, and regexes in between. */
static void
test_ten_thousand_rules(void **state)
{
	size_t cap = 10100, n = 0;
	struct route *routes = calloc(cap, sizeof(*routes));
	struct route_table *t;
	char buf[64];

	(void)state;
	assert_non_null(routes);
	for (int i = 0; i < 10000; i++) {
		struct route *r = &routes[n];

		if (i % 1000 == 500) {
			r->kind = ROUTE_MATCH;
			snprintf(buf, sizeof(buf), "^/app%d(/|$)", i + 7);
			r->match = strdup(buf);
			r->re = compile(buf);
		} else {
			r->kind = ROUTE_PATH;
			if (i % 10 == 3)
				snprintf(buf, sizeof(buf), "/app%d/sub", i / 10);
			else
				snprintf(buf, sizeof(buf), "/app%d", i);
			r->path = strdup(buf);
		}
		r->index = (unsigned)n;
		set_upstream(r, "http://h/p");
		n++;
	}
	t = route_table_build(routes, n);
	rng_state = 42;
	for (int q = 0; q < 20000; q++) {
		static const char *const tails[] = {"", "/", "/sub", "/sub/x", "x", "/a/b"};
		int want, got;

		snprintf(buf, sizeof(buf), "/app%u%s", rng() % 11000,
			 tails[rng() % ARRAY_SIZE(tails)]);
		want = ref_lookup(routes, n, NULL, buf);
		got = lookup(t, buf);
		if (got != want)
			fail_msg("%s: got rule %d, reference %d", buf, got, want);
	}
	/* Spot checks that do not depend on the reference. */
	assert_int_equal(lookup(t, "/app0"), 0);
	assert_int_equal(lookup(t, "/app9999/x"), 9999);
	assert_int_equal(lookup(t, "/app1507"), 1500); /* the regex comes first */
	assert_int_equal(lookup(t, "/app507/x"), 500);
	assert_int_equal(lookup(t, "/app150/sub/x"), 150); /* before /app150/sub (1503) */
	assert_int_equal(lookup(t, "/app1000/sub/x"), 1000);
	assert_int_equal(lookup(t, "/app103/sub/x"), 1033); /* no plain /app103 */
	assert_int_equal(lookup(t, "/app103"), -1);
	assert_int_equal(lookup(t, "/app10000"), -1);
	assert_int_equal(lookup(t, "/app1x"), -1);
	route_table_free(t);
	for (size_t i = 0; i < n; i++)
		free_route(&routes[i]);
	free(routes);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefix_segment_boundary),
	    cmocka_unit_test(test_prefix_target_appends_rest),
	    cmocka_unit_test(test_trailing_slash_significant),
	    cmocka_unit_test(test_slash_runs),
	    cmocka_unit_test(test_exclusion_before_general_rule),
	    cmocka_unit_test(test_exclusion_after_general_rule),
	    cmocka_unit_test(test_seed_scenario),
	    cmocka_unit_test(test_regex_without_reference_appends_path),
	    cmocka_unit_test(test_regex_with_references),
	    cmocka_unit_test(test_capture_encoding),
	    cmocka_unit_test(test_substitution_must_keep_authority),
	    cmocka_unit_test(test_query_joining),
	    cmocka_unit_test(test_host_matches),
	    cmocka_unit_test(test_host_rules),
	    cmocka_unit_test(test_first_match_wins),
	    cmocka_unit_test(test_shadowed_by),
	    cmocka_unit_test(test_slash_mismatch),
	    cmocka_unit_test(test_target_without_captures),
	    cmocka_unit_test(test_many_groups),
	    cmocka_unit_test(test_wide_node),
	    cmocka_unit_test(test_lookup_from_threads),
	    cmocka_unit_test(test_empty_query_stays),
	    cmocka_unit_test(test_captures_in_query_are_data),
	    cmocka_unit_test(test_regex_literal_prefix),
	    cmocka_unit_test(test_regex_prefix_compile_options),
	    cmocka_unit_test(test_regex_prefilter_order),
	    cmocka_unit_test(test_regex_prefilter_deep_nesting),
	    cmocka_unit_test(test_matches_linear_reference),
	    cmocka_unit_test(test_ten_thousand_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
