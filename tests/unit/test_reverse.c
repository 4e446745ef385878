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
#include "portico/route.h"

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
	    {"Location", "http://internal.example.com/other", "http://www.example.com/root/other"},
	    {"Location", "http://internal.example.com", "http://www.example.com/root"},
	    {"Location", "/zzz", "http://www.example.com/root/zzz"},
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

/*
 * Trailing slashes that disagree: one "/" joins the public path and the rest
 * (SPEC 6.1), so what route.c mapped forward comes back unchanged.
 */
static void
test_slash_mismatch(void **state)
{
	static const struct pair public_slash[] = {
	    {"/internal/", "http://internal.example.com/public"}};
	static const struct pair upstream_slash[] = {
	    {"/internal", "http://internal.example.com/public/"}};
	static const struct hcase ps_cases[] = {
	    {"Location", "http://internal.example.com/public/x",
	     "http://www.example.com/internal/x"},
	    {"Location", "http://internal.example.com/public", "http://www.example.com/internal/"},
	    {"Location", "http://internal.example.com/public?q",
	     "http://www.example.com/internal/?q"},
	};
	static const struct hcase us_cases[] = {
	    {"Location", "http://internal.example.com/public/x",
	     "http://www.example.com/internal/x"},
	    {"Location", "http://internal.example.com/public", NULL},
	    /* "/internal/x/next" went upstream as "/public//x/next" */
	    {"Location", "http://internal.example.com/public//x/next",
	     "http://www.example.com/internal/x/next"},
	    {"Location", "http://internal.example.com/public/", "http://www.example.com/internal"},
	    {"Location", "http://internal.example.com/public//",
	     "http://www.example.com/internal/"},
	    {"Location", "http://internal.example.com/public/?q",
	     "http://www.example.com/internal?q"},
	    {"Location", "/public/next", "http://www.example.com/internal/next"},
	    {"Set-Cookie", "k=v; Path=/public/app", "k=v; Path=/internal/app"},
	};
	static const struct pair spec_a[] = {{"/a", "http://b/u/"}};
	static const struct hcase spec_a_cases[] = {
	    {"Location", "http://b/u//x/next", "http://www.example.com/a/x/next"},
	    {"Location", "http://b/u/next", "http://www.example.com/a/next"},
	};
	static const struct pair cookie_pair[] = {{"/a", "http://b/u/"}};
	static const struct hcase cookie_cases[] = {
	    {"Set-Cookie", "k=v; Path=/u/app", "k=v; Path=/a/app"},
	    {"Set-Cookie", "k=v; Path=/u/", "k=v; Path=/a"},
	};

	(void)state;
	run_cases(public_slash, 1, &www, ps_cases, ARRAY_SIZE(ps_cases));
	run_cases(upstream_slash, 1, &www, us_cases, ARRAY_SIZE(us_cases));
	run_cases(spec_a, 1, &www, spec_a_cases, ARRAY_SIZE(spec_a_cases));
	run_cases(cookie_pair, 1, &www, cookie_cases, ARRAY_SIZE(cookie_cases));
}

/* ---- forward (route.c) then back (reverse.c) ---- */

static uint32_t rng_state;

static uint32_t
rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return (rng_state >> 16) & 0x7fff;
}

/*
 * A random rest of a request path after the public path `pub`: segments
 * joined by runs of "/"; it starts a new segment ("/...") unless `pub` ends
 * in "/", where the rule's "/" already consumed the run.
 */
static void
random_rest(struct buf *b, bool pub_slash)
{
	static const char *const segs[] = {"x", "next", "a.png", "", "%20", "~u", "u", "b"};
	size_t n = rng() % 4;

	for (size_t k = 0; k < n; k++) {
		const char *seg = segs[rng() % ARRAY_SIZE(segs)];

		if (k > 0 || !pub_slash)
			buf_adds(b, rng() % 4 == 0 ? "//" : "/");
		else if (*seg == '\0')
			seg = "x"; /* a "/" right after the public path's would start a run */
		buf_adds(b, seg);
	}
	if (n > 0 && rng() % 4 == 0)
		buf_addc(b, '/');
}

/* route_target() of `path` under (pub -> pass), then reverse_header() of the result. */
static void
check_round_trip(const struct route *r, const struct reverse_map *m, const char *path,
		 const char *query)
{
	static const struct reverse_ctx bare = {NULL, NULL, 0};
	const char *err = NULL;
	struct buf target, url, back, want;

	buf_init(&target);
	buf_init(&url);
	buf_init(&back);
	buf_init(&want);
	buf_addf(&want, "%s%s%s", path, query ? "?" : "", query ? query : "");
	if (route_target(r, path, strlen(path), query, query ? strlen(query) : 0, NULL, &target,
			 &err) != 0)
		fail_msg("%s: %s", path, err);
	buf_addf(&url, "http://b%s", target.data);
	if (reverse_header(m, 1, REVERSE_URL, url.data, url.len, &bare, &back) != 1 ||
	    strcmp(back.data, want.data) != 0)
		fail_msg("(%s, %s): %s -> %s -> %s", m->public_path, r->pass, want.data, url.data,
			 back.data);
	buf_reset(&back);
	if (target.data[1] != '/' &&
	    (reverse_header(m, 1, REVERSE_URL, target.data, target.len, &bare, &back) != 1 ||
	     strcmp(back.data, want.data) != 0))
		fail_msg("(%s, %s): %s -> %s -> %s", m->public_path, r->pass, want.data,
			 target.data, back.data);
	buf_free(&target);
	buf_free(&url);
	buf_free(&back);
	buf_free(&want);
}

/* The cases left out below: where route.c's forward mapping loses what a way back needs. */
static bool
round_trip_is_defined(const char *pub, const char *up, const char *path)
{
	size_t pl = strlen(pub), ul = strlen(up);
	bool pub_slash = pub[pl - 1] == '/', up_slash = ul > 0 && up[ul - 1] == '/';

	if (pub_slash && !up_slash && ul > 0 && path[pl] != '\0')
		return false;
	return !(ul == 0 && !pub_slash && (path[pl] == '\0' || strcmp(path + pl, "/") == 0));
}

/*
 * A request path mapped forward by a path route and back by the route's
 * own reverse mapping is unchanged, whichever side ends in "/".  Left out:
 * a public path ending in "/" with an upstream path that does not (route.c
 * glues "/a/x" into "/ux", which -t warns about), and, for an upstream
 * without a path, the bare public path (both "/a" and "/a/" go to "/").
 */
static void
test_forward_then_back_is_identity(void **state)
{
	static const char *const pubs[] = {"/a", "/a/", "/", "/a/b", "/a/b/", "/t~u"};
	static const char *const ups[] = {"", "/", "/u", "/u/", "/u/v", "/u/v/"};

	(void)state;
	rng_state = 6061;
	for (size_t i = 0; i < ARRAY_SIZE(pubs); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(ups); j++) {
			struct route r = {.kind = ROUTE_PATH};
			struct reverse_map m;
			const char *err = NULL;
			bool pub_slash = pubs[i][strlen(pubs[i]) - 1] == '/';

			r.path = xstrdup(pubs[i]);
			r.pass = xasprintf("http://b%s", ups[j]);
			assert_int_equal(url_parse(r.pass, &r.upstream, &err), 0);
			m.public_path = r.path;
			m.upstream = r.upstream;
			for (int k = 0; k < 300; k++) {
				struct buf path;
				static const char *const queries[] = {NULL, "", "q=1"};

				buf_init(&path);
				buf_adds(&path, pubs[i]);
				random_rest(&path, pub_slash);
				if (!round_trip_is_defined(pubs[i], ups[j], path.data))
					k--; /* draw another */
				else
					check_round_trip(&r, &m, path.data, queries[rng() % 3]);
				buf_free(&path);
			}
			xfree(r.path);
			xfree(r.pass);
			url_free(&r.upstream);
		}
	}
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
	    {"Set-Cookie", "k=v; Path=/other", "k=v; Path=/b/other"}, /* one "/" joins */
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
	    cmocka_unit_test(test_forward_then_back_is_identity),
	    cmocka_unit_test(test_no_maps),
	    cmocka_unit_test(test_cookie),
	    cmocka_unit_test(test_cookie_domain_port),
	    cmocka_unit_test(test_cookie_several_maps),
	    cmocka_unit_test(test_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
