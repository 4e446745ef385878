/*
 * test_bodyfilter.c: when a response body is rewritten and with which
 * chain (a table of routes, types, codings and client abilities), the
 * header values that change with it (Accept-Encoding parsing, weak ETags,
 * Vary), and a whole chain built by bodyfilter_setup run on a real body.
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

#include "portico/bodyfilter.h"

static struct route_html_map maps[] = {{"/public", "/internal"}};

struct scase {
	bool html;   /* route has html: true */
	size_t maps; /* number of maps */
	const char *ct, *ce;
	bool client_gzip;
	const char *want; /* filter names head to tail ("gunzip,html,gzip"), "" for none */
	const char *want_ce;
	bool want_vary;
};

static const struct scase setup_cases[] = {
    {true, 1, "text/html", NULL, false, "html", NULL, false},
    {true, 1, "text/html", NULL, true, "html", NULL, false},
    {true, 1, "TEXT/HTML; charset=utf-8", "", false, "html", NULL, false},
    {true, 1, " text/html ;charset=iso-8859-1", "identity", true, "html", NULL, false},
    {true, 1, "application/xhtml+xml", NULL, false, "html", NULL, false},
    {true, 1, "text/html", "gzip", true, "gunzip,html,gzip", "gzip", true},
    {true, 1, "text/html", "x-gzip", true, "gunzip,html,gzip", "gzip", true},
    {true, 1, "text/html", " GZIP ", false, "gunzip,html", NULL, true},
    {true, 1, "text/html", "deflate", true, "gunzip,html,gzip", "gzip", true},
    {true, 1, "text/html", "deflate", false, "gunzip,html", NULL, true},
    {true, 1, "text/html", "br", true, "", NULL, false},
    {true, 1, "text/html", "compress", true, "", NULL, false},
    {true, 1, "text/html", "gzip, gzip", true, "", NULL, false},
    {true, 1, "text/html", "deflate, gzip", true, "", NULL, false},
    {true, 1, "text/plain", NULL, true, "", NULL, false},
    {true, 1, "text/htmlx", NULL, true, "", NULL, false},
    {true, 1, "application/json", "gzip", true, "", NULL, false},
    {true, 1, "text/css", NULL, true, "", NULL, false},
    {true, 1, NULL, NULL, true, "", NULL, false},
    {true, 1, "", NULL, true, "", NULL, false},
    {false, 1, "text/html", NULL, true, "", NULL, false},
    {true, 0, "text/html", NULL, true, "", NULL, false},
};

static void
chain_names(const struct filter *f, struct buf *b)
{
	for (; f != NULL; f = f->next)
		buf_addf(b, "%s%s", b->len ? "," : "", f->ops->name);
}

/* bodyfilter_headers decides the same as bodyfilter_setup and builds nothing. */
static void
check_headers_only(const struct route *r, const struct scase *c,
		   const struct bodyfilter_result *setup)
{
	struct bodyfilter_result res;
	bool changed = bodyfilter_headers(r, c->ct, c->ct ? strlen(c->ct) : 0, c->ce,
					  c->ce ? strlen(c->ce) : 0, c->client_gzip, &res);

	assert_int_equal(changed, setup->filter != NULL);
	assert_null(res.filter);
	assert_ptr_equal(res.content_encoding, setup->content_encoding);
	assert_int_equal(res.vary_accept_encoding, setup->vary_accept_encoding);
	assert_int_equal(res.drop_content_length, setup->drop_content_length);
	assert_int_equal(res.weaken_etag, setup->weaken_etag);
	assert_int_equal(res.drop_accept_ranges, setup->drop_accept_ranges);
}

static void
test_setup_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(setup_cases); i++) {
		const struct scase *c = &setup_cases[i];
		struct route r = {.html = c->html, .html_maps = maps, .html_nmaps = c->maps};
		struct bodyfilter_result res;
		struct buf names;

		buf_init(&names);
		assert_int_equal(bodyfilter_setup(&r, c->ct, c->ct ? strlen(c->ct) : 0, c->ce,
						  c->ce ? strlen(c->ce) : 0, c->client_gzip, &res),
				 0);
		chain_names(res.filter, &names);
		if (strcmp(names.data ? names.data : "", c->want) != 0)
			fail_msg("case %zu: chain \"%s\", want \"%s\"", i, names.data, c->want);
		if (c->want_ce)
			assert_string_equal(res.content_encoding, c->want_ce);
		else
			assert_null(res.content_encoding);
		assert_int_equal(res.vary_accept_encoding, c->want_vary);
		assert_int_equal(res.drop_content_length, res.filter != NULL);
		assert_int_equal(res.weaken_etag, res.filter != NULL);
		assert_int_equal(res.drop_accept_ranges, res.filter != NULL);
		if (res.filter)
			res.filter->ops->free(res.filter);
		buf_free(&names);
		check_headers_only(&r, c, &res);
	}
	assert_int_equal(
	    bodyfilter_setup(NULL, "text/html", 9, NULL, 0, true, &(struct bodyfilter_result){0}),
	    0);
}

static void
test_accepts_gzip(void **state)
{
	static const struct {
		const char *v;
		bool want;
	} c[] = {
	    {"gzip", true},
	    {"GZIP", true},
	    {"x-gzip", true},
	    {"gzip, deflate, br", true},
	    {"br;q=1.0, gzip;q=0.8, *;q=0.1", true},
	    {"gzip;q=0.001", true},
	    {"gzip ; q=1", true},
	    {"*", true},
	    {"identity, *;q=0.5", true},
	    {"gzip;q=0", false},
	    {"gzip;q=0.000", false},
	    {"gzip; Q=0.0", false},
	    {"*;q=0", false},
	    {"gzip;q=0, *", false},
	    {"*, gzip;q=0", false},
	    {"gzip;q=0, x-gzip", true},
	    {"deflate, br", false},
	    {"identity", false},
	    {"gzipx", false},
	    {"", false},
	    {"gzip;level=1", true},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		if (bodyfilter_accepts_gzip(c[i].v, strlen(c[i].v)) != c[i].want)
			fail_msg("accepts_gzip(\"%s\") != %d", c[i].v, c[i].want);
	assert_false(bodyfilter_accepts_gzip(NULL, 0));
}

static void
test_upstream_accept_encoding(void **state)
{
	static const struct {
		const char *v, *want; /* want NULL: no header */
	} c[] = {
	    {"gzip, deflate, br", "gzip, deflate"},
	    {"br;q=1.0, gzip;q=0.8, *;q=0.1", "gzip;q=0.8"},
	    {"x-gzip ,identity;q=0.5", "x-gzip, identity;q=0.5"},
	    {"GZIP", "GZIP"},
	    {"gzip;q=0", "gzip;q=0"},
	    {"br", NULL},
	    {"br, zstd, *", NULL},
	    {"", NULL},
	    {" , ,", NULL},
	};
	struct buf b;

	(void)state;
	buf_init(&b);
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		buf_reset(&b);
		buf_adds(&b, "X");
		assert_int_equal(bodyfilter_upstream_accept_encoding(c[i].v, strlen(c[i].v), &b),
				 c[i].want != NULL);
		assert_string_equal(b.data + 1, c[i].want ? c[i].want : "");
	}
	buf_reset(&b);
	assert_false(bodyfilter_upstream_accept_encoding(NULL, 0, &b));
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void
test_etag_and_vary(void **state)
{
	static const struct {
		const char *v, *want;
		bool changed;
	} etag[] = {
	    {"\"abc\"", "W/\"abc\"", true},
	    {" \"abc\" ", "W/\"abc\"", true},
	    {"\"\"", "W/\"\"", true},
	    {"W/\"abc\"", "W/\"abc\"", false},
	    {"abc", "abc", false},
	    {"\"", "\"", false},
	    {"", "", false},
	};
	static const struct {
		const char *v, *want;
		bool changed;
	} vary[] = {
	    {NULL, "Accept-Encoding", true},
	    {"", "Accept-Encoding", true},
	    {"Cookie", "Cookie, Accept-Encoding", true},
	    {"cookie, accept-encoding", "cookie, accept-encoding", false},
	    {"Accept-Encoding,User-Agent", "Accept-Encoding,User-Agent", false},
	    {"*", "*", false},
	    {"Accept-Encodings", "Accept-Encodings, Accept-Encoding", true},
	};
	struct buf b;

	(void)state;
	buf_init(&b);
	for (size_t i = 0; i < ARRAY_SIZE(etag); i++) {
		buf_reset(&b);
		assert_int_equal(bodyfilter_weaken_etag(etag[i].v, strlen(etag[i].v), &b),
				 etag[i].changed);
		assert_string_equal(b.data ? b.data : "", etag[i].want);
	}
	for (size_t i = 0; i < ARRAY_SIZE(vary); i++) {
		buf_reset(&b);
		assert_int_equal(
		    bodyfilter_vary_merge(vary[i].v, vary[i].v ? strlen(vary[i].v) : 0, &b),
		    vary[i].changed);
		assert_string_equal(b.data, vary[i].want);
	}
	buf_free(&b);
}

/* The chain from bodyfilter_setup, on a deflate body, for a client that takes gzip. */
static void
test_setup_chain_runs(void **state)
{
	static const char page[] = "<a href=\"/public/x\">x</a><img src=/publicx>";
	static const char want[] = "<a href=\"/internal/x\">x</a><img src=/publicx>";
	struct route r = {.html = true, .html_maps = maps, .html_nmaps = 1};
	unsigned char z[256], back[256];
	uLongf zlen = sizeof(z), blen = sizeof(back);
	struct bodyfilter_result res;
	struct evbuffer *ev = evbuffer_new();
	unsigned char *gz;
	size_t gzlen;
	z_stream zs = {0};

	(void)state;
	assert_int_equal(compress(z, &zlen, (const Bytef *)page, sizeof(page) - 1), Z_OK);
	assert_int_equal(bodyfilter_setup(&r, "text/html", 9, "deflate", 7, true, &res), 0);
	assert_non_null(res.filter);
	for (uLongf i = 0; i < zlen; i++)
		assert_int_equal(res.filter->ops->write(res.filter, (char *)z + i, 1, ev), 0);
	assert_int_equal(res.filter->ops->finish(res.filter, ev), 0);
	res.filter->ops->free(res.filter);
	gzlen = evbuffer_get_length(ev);
	gz = evbuffer_pullup(ev, -1);
	assert_int_equal(gz[0], 0x1f);
	assert_int_equal(gz[1], 0x8b);
	assert_int_equal(inflateInit2(&zs, 16 + 15), Z_OK);
	zs.next_in = gz;
	zs.avail_in = (uInt)gzlen;
	zs.next_out = back;
	zs.avail_out = (uInt)blen;
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	assert_int_equal(zs.total_out, sizeof(want) - 1);
	assert_memory_equal(back, want, sizeof(want) - 1);
	inflateEnd(&zs);
	evbuffer_free(ev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_setup_table),
	    cmocka_unit_test(test_accepts_gzip),
	    cmocka_unit_test(test_upstream_accept_encoding),
	    cmocka_unit_test(test_etag_and_vary),
	    cmocka_unit_test(test_setup_chain_runs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
