/*
 * test_html.c: the streaming HTML URL rewriter: every attribute kind,
 * quoting and case, srcset, meta refresh, what must stay untouched
 * (comments, script, style, RCDATA, invalid markup), extended CSS mode,
 * segment boundaries and map order; that the output does not depend on how
 * the input is split; and that memory stays bounded on a large document.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "portico/html.h"

static const struct route_html_map default_maps[] = {
    {"http://internal.example.com/public", "/internal"},
    {"/public", "/internal"},
};

/* Runs `in` through a new filter in writes of the sizes in `cuts` (0-terminated; rest at once). */
static char *
run_split(const struct route_html_map *maps, size_t n, bool extended, const char *in, size_t len,
	  const size_t *cuts)
{
	struct filter *f = html_filter_new(maps, n, extended);
	struct evbuffer *out = evbuffer_new();
	size_t off = 0, k, outlen;
	char *s;

	for (; cuts != NULL && *cuts != 0 && off < len; cuts++) {
		k = *cuts < len - off ? *cuts : len - off;
		assert_int_equal(f->ops->write(f, in + off, k, out), 0);
		off += k;
	}
	if (off < len)
		assert_int_equal(f->ops->write(f, in + off, len - off, out), 0);
	assert_int_equal(f->ops->finish(f, out), 0);
	f->ops->free(f);
	outlen = evbuffer_get_length(out);
	s = malloc(outlen + 1);
	evbuffer_remove(out, s, outlen);
	s[outlen] = '\0';
	evbuffer_free(out);
	return s;
}

static char *
run_once(const struct route_html_map *maps, size_t n, bool extended, const char *in)
{
	return run_split(maps, n, extended, in, strlen(in), NULL);
}

struct hcase {
	const char *in;
	const char *want; /* NULL: unchanged */
};

static void
check_cases(const struct route_html_map *maps, size_t n, bool extended, const struct hcase *c,
	    size_t count)
{
	for (size_t i = 0; i < count; i++) {
		char *got = run_once(maps, n, extended, c[i].in);

		if (strcmp(got, c[i].want ? c[i].want : c[i].in) != 0)
			fail_msg("case %zu: in  %s\nwant %s\ngot  %s", i, c[i].in,
				 c[i].want ? c[i].want : c[i].in, got);
		free(got);
	}
}

static void
test_attributes(void **state)
{
	static const struct hcase c[] = {
	    {"<a href=\"/public/x\">", "<a href=\"/internal/x\">"},
	    {"<img src=\"/public/i.png\">", "<img src=\"/internal/i.png\">"},
	    {"<form action=\"/public/f\">", "<form action=\"/internal/f\">"},
	    {"<button formaction=\"/public/b\">", "<button formaction=\"/internal/b\">"},
	    {"<video poster=\"/public/p.jpg\">", "<video poster=\"/internal/p.jpg\">"},
	    {"<object data=\"/public/o.swf\">", "<object data=\"/internal/o.swf\">"},
	    {"<div data=\"/public/o.swf\">", NULL},
	    {"<blockquote cite=\"/public/c\">", "<blockquote cite=\"/internal/c\">"},
	    {"<body background=\"/public/bg.gif\">", "<body background=\"/internal/bg.gif\">"},
	    {"<img longdesc=\"/public/d\">", "<img longdesc=\"/internal/d\">"},
	    {"<img usemap=\"/public/m\">", "<img usemap=\"/internal/m\">"},
	    {"<html manifest=\"/public/app.appcache\">",
	     "<html manifest=\"/internal/app.appcache\">"},
	    {"<use xlink:href=\"/public/s.svg#i\"/>", "<use xlink:href=\"/internal/s.svg#i\"/>"},
	    {"<a title=\"/public/x\" class=/public>", NULL},
	    {"<a href=\"http://internal.example.com/public/a?b=1&amp;c=2\">",
	     "<a href=\"/internal/a?b=1&amp;c=2\">"},
	    {"<a href=\"http://other.example.com/public/a\">", NULL},
	};

	(void)state;
	check_cases(default_maps, 2, false, c, ARRAY_SIZE(c));
}

static void
test_quoting_and_case(void **state)
{
	static const struct hcase c[] = {
	    {"<a href='/public/x'>", "<a href='/internal/x'>"},
	    {"<a href=/public/x>", "<a href=/internal/x>"},
	    {"<a href=/public/x/>", "<a href=/internal/x/>"},
	    {"<A HREF=\"/public/x\">", "<A HREF=\"/internal/x\">"},
	    {"<a Href = \"/public/x\" >", "<a Href = \"/internal/x\" >"},
	    {"<a\nhref\n=\n'/public'\n>", "<a\nhref\n=\n'/internal'\n>"},
	    {"<img alt=\"a > b\" src=\"/public/x\">", "<img alt=\"a > b\" src=\"/internal/x\">"},
	    {"<img alt='it\"s' src=/public>", "<img alt='it\"s' src=/internal>"},
	    {"<a href=\"/public\"title=\"/public\">", "<a href=\"/internal\"title=\"/public\">"},
	    {"<a href=\"/x\" href=\"/public\">", "<a href=\"/x\" href=\"/internal\">"},
	    {"<a href>/public</a>", NULL},
	    {"<a href=\"\">", NULL},
	    {"<a href=\" \n/public/x\t\">", "<a href=\" \n/internal/x\t\">"},
	    {"<a href=\"  /public \">", "<a href=\"  /internal \">"},
	    {"<a href=\"  \">", NULL},
	    {"<a =\"/public\" href=/public>", "<a =\"/public\" href=/internal>"},
	    {"<p>/public and href=\"/public\"</p>", NULL},
	};

	(void)state;
	check_cases(default_maps, 2, false, c, ARRAY_SIZE(c));
}

static void
test_srcset_and_refresh(void **state)
{
	static const struct hcase c[] = {
	    {"<img srcset=\"/public/a.png 1x, /public/b.png 2x\">",
	     "<img srcset=\"/internal/a.png 1x, /internal/b.png 2x\">"},
	    {"<img srcset=\"/public/a.png,/other/b.png 2x,/public/c.png\">",
	     "<img srcset=\"/internal/a.png,/other/b.png 2x,/internal/c.png\">"},
	    {"<source srcset=\"  /public/a.png  100w ,\n/public/b.png 200w\">",
	     "<source srcset=\"  /internal/a.png  100w ,\n/internal/b.png 200w\">"},
	    {"<img SRCSET='http://internal.example.com/public/x 1.5x'>",
	     "<img SRCSET='/internal/x 1.5x'>"},
	    {"<meta http-equiv=\"refresh\" content=\"5; url=/public/next\">",
	     "<meta http-equiv=\"refresh\" content=\"5; url=/internal/next\">"},
	    {"<META HTTP-EQUIV=Refresh CONTENT=\"0;URL='/public/n'\">",
	     "<META HTTP-EQUIV=Refresh CONTENT=\"0;URL='/internal/n'\">"},
	    {"<meta content=\"3, /public\" http-equiv=\"refresh\">",
	     "<meta content=\"3, /internal\" http-equiv=\"refresh\">"},
	    {"<meta content=\"5; url=/public/x\" name=\"refresh\">", NULL},
	    {"<meta http-equiv=\"refresh\" content=\"5\">", NULL},
	    {"<meta http-equiv=\"refresh\" content=\"url=/public\">", NULL},
	};

	(void)state;
	check_cases(default_maps, 2, false, c, ARRAY_SIZE(c));
}

static void
test_untouched(void **state)
{
	static const struct hcase c[] = {
	    {"<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0//EN\" \"/public/dtd\">", NULL},
	    {"<!-- <a href=\"/public/x\"> -->", NULL},
	    {"<!-- a -- b --><a href=/public>", "<!-- a -- b --><a href=/internal>"},
	    {"<!--> <a href=/public>", "<!--> <a href=/internal>"},
	    {"<!---> <a href=/public>", "<!---> <a href=/internal>"},
	    {"<!-- x -> <a href=/public> -->", NULL},
	    /* HTML5 ends a comment at "--!>" too, but not at "<!--!>" or "--!->". */
	    {"<!-- a --!><a href=/public>", "<!-- a --!><a href=/internal>"},
	    {"<!-- a ---!><a href=/public>", "<!-- a ---!><a href=/internal>"},
	    {"<!--!> <a href=/public> -->", NULL},
	    {"<!-- a -!> <a href=/public> -->", NULL},
	    {"<!-- a --!-> <a href=/public> --!--><a href=/public>",
	     "<!-- a --!-> <a href=/public> --!--><a href=/internal>"},
	    {"<![CDATA[ <a href=\"/public\"> ]]><a href=/public>",
	     "<![CDATA[ <a href=\"/public\"> ]]><a href=/internal>"},
	    {"<?xml version=\"1.0\"?><a href=/public>",
	     "<?xml version=\"1.0\"?><a href=/internal>"},
	    {"<script src=\"/public/s.js\">var a = '<a href=\"/public\">';</script>",
	     "<script src=\"/internal/s.js\">var a = '<a href=\"/public\">';</script>"},
	    {"<SCRIPT>if (a</b) x='<img src=/public>'</ScRiPt ><a href=/public>",
	     "<SCRIPT>if (a</b) x='<img src=/public>'</ScRiPt ><a href=/internal>"},
	    {"<script>'</scripty><a href=/public>'</script>", NULL},
	    {"<style>body { background: url(/public/bg.png) }</style>", NULL},
	    {"<textarea><a href=\"/public\"></textarea><a href=/public>",
	     "<textarea><a href=\"/public\"></textarea><a href=/internal>"},
	    {"<title>x <img src=/public></title>", NULL},
	    {"<div style=\"background:url(/public/x)\">", NULL},
	    {"a < b <= c <3 <> </> </ x> <a href=/public>",
	     "a < b <= c <3 <> </> </ x> <a href=/internal>"},
	    {"</a href=\"/public\">", NULL},
	    {"<a href=\"/public", NULL},
	    {"<a href=/public/x", NULL},
	    {"<", NULL},
	    {"<!-", NULL},
	    {"text &amp; &lt;a href=/public&gt; \xc3\xa9\xff", NULL},
	    {"<script src=/public/a.js /><a href=/public>",
	     "<script src=/internal/a.js /><a href=/internal>"},
	};

	(void)state;
	check_cases(default_maps, 2, false, c, ARRAY_SIZE(c));
}

static void
test_extended(void **state)
{
	static const struct hcase c[] = {
	    {"<style>body { background: url(/public/bg.png) }</style>",
	     "<style>body { background: url(/internal/bg.png) }</style>"},
	    {"<style>@import \"/public/a.css\"; @import url('/public/b.css');\n"
	     "p{background:URL( \"/public/c\" )}</STYLE><a href=/public>",
	     "<style>@import \"/internal/a.css\"; @import url('/internal/b.css');\n"
	     "p{background:URL( \"/internal/c\" )}</STYLE><a href=/internal>"},
	    {"<style>p:after{content:\"</sty\"} myurl(/public)</style>", NULL},
	    {"<style>a{b:url(/public/x)}", "<style>a{b:url(/internal/x)}"},
	    {"<style>a{b:url(/public/x)", "<style>a{b:url(/internal/x)"},
	    {"<div style=\"background:url(/public/x); color: red\">",
	     "<div style=\"background:url(/internal/x); color: red\">"},
	    {"<div style='background-image:url(\"/public/y\")'>",
	     "<div style='background-image:url(\"/internal/y\")'>"},
	    {"<script>x = 'url(/public/z)'</script>", NULL},
	    {"<p>url(/public/z)</p>", NULL},
	};

	(void)state;
	check_cases(default_maps, 2, true, c, ARRAY_SIZE(c));
}

static void
test_boundaries_and_order(void **state)
{
	static const struct route_html_map maps[] = {
	    {"/public/special", "/s"},
	    {"/public", "/internal"},
	    {"/public", "/never"},
	    {"/dir/", "/d/"},
	};
	static const struct hcase c[] = {
	    {"<a href=/public>", "<a href=/internal>"},
	    {"<a href=/publicx>", NULL},
	    {"<a href=/public/>", "<a href=/internal/>"},
	    {"<a href=/public?q>", "<a href=/internal?q>"},
	    {"<a href=/public#f>", "<a href=/internal#f>"},
	    {"<a href=/public/specialx>", "<a href=/internal/specialx>"},
	    {"<a href=/public/special/y>", "<a href=/s/y>"},
	    {"<a href=/dir/x>", "<a href=/d/x>"},
	    {"<a href=/dirx>", NULL},
	    {"<a href=/Public>", NULL},
	    {"<a href=x/public>", NULL},
	};
	struct buf b;

	(void)state;
	check_cases(maps, ARRAY_SIZE(maps), false, c, ARRAY_SIZE(c));
	buf_init(&b);
	assert_true(html_rewrite_url(maps, ARRAY_SIZE(maps), "/public/a", 9, &b));
	assert_string_equal(b.data, "/internal/a");
	buf_reset(&b);
	assert_false(html_rewrite_url(maps, ARRAY_SIZE(maps), "/publi", 6, &b));
	assert_string_equal(b.data, "/publi");
	buf_free(&b);
}

static void
test_no_maps(void **state)
{
	char *got = run_once(NULL, 0, true, "<a href=/public><style>url(/public)</style>");

	(void)state;
	assert_string_equal(got, "<a href=/public><style>url(/public)</style>");
	free(got);
}

/* Documents for the split tests: every state the tokenizer has, cut anywhere. */
static const char *const split_docs[] = {
    "<!DOCTYPE html><html manifest=/public/m><head><title>T <a href=/public></title>"
    "<meta http-equiv=refresh content='1; url=/public/r'>"
    "<style>p{background:url(/public/a)} @import '/public/b';</style>"
    "<script>if(a<b)x='</scri'+'pt>';</script></head>"
    "<body><!-- <a href=/public> --><![CDATA[x]]><?pi?>"
    "<a href=\"http://internal.example.com/public/x?a=1&amp;b\">l</a>"
    "<img srcset='/public/1.png 1x, /public/2.png 2x' src=/public/0.png/>"
    "<div style=\"background:url('/public/s')\">a < b</div></body></html>",
    "<a href=/public><a href='/public'><a\thref=\"/public\"></a></ x></><!-->< <3",
    "<textarea><img src=/public></TEXTAREA><img src=/public><!---><b>",
    "<a href=\"/public/unterminated",
    "<!-- a --!-> <a href=/public> --!><a href=/public><!----!><b src=/public>",
};

static void
check_split_invariance(const char *doc, bool extended)
{
	size_t len = strlen(doc);
	char *once = run_once(default_maps, 2, extended, doc), *got;

	for (size_t cut = 1; cut < len; cut++) {
		size_t cuts[] = {cut, 0};

		got = run_split(default_maps, 2, extended, doc, len, cuts);
		if (strcmp(got, once) != 0)
			fail_msg("split at %zu of %s:\nonce %s\ngot  %s", cut, doc, once, got);
		free(got);
	}
	for (size_t cut = 1; cut < 4; cut++) {
		size_t cuts[1024];
		size_t i;

		for (i = 0; i < ARRAY_SIZE(cuts) - 1; i++)
			cuts[i] = cut;
		cuts[i] = 0;
		got = run_split(default_maps, 2, extended, doc, len, cuts);
		assert_string_equal(got, once);
		free(got);
	}
	srand(7);
	for (int round = 0; round < 200; round++) {
		size_t cuts[64];
		size_t i;

		for (i = 0; i < ARRAY_SIZE(cuts) - 1; i++)
			cuts[i] = 1 + (size_t)rand() % 16;
		cuts[i] = 0;
		got = run_split(default_maps, 2, extended, doc, len, cuts);
		assert_string_equal(got, once);
		free(got);
	}
	free(once);
}

static void
test_split_invariance(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(split_docs); i++) {
		check_split_invariance(split_docs[i], false);
		check_split_invariance(split_docs[i], true);
	}
}

/* The first document, cut at every point, is still rewritten as a whole. */
static void
test_split_rewrites(void **state)
{
	char *got = run_once(default_maps, 2, true, split_docs[0]);

	(void)state;
	assert_non_null(strstr(got, "manifest=/internal/m"));
	assert_non_null(strstr(got, "<title>T <a href=/public></title>"));
	assert_non_null(strstr(got, "url=/internal/r'"));
	assert_non_null(strstr(got, "url(/internal/a)} @import '/internal/b';"));
	assert_non_null(strstr(got, "<!-- <a href=/public> -->"));
	assert_non_null(strstr(got, "href=\"/internal/x?a=1&amp;b\""));
	assert_non_null(
	    strstr(got, "'/internal/1.png 1x, /internal/2.png 2x' src=/internal/0.png/>"));
	assert_non_null(strstr(got, "url('/internal/s')"));
	free(got);
}

/* A tag longer than HTML_TAG_MAX passes unchanged; the markup after it is still parsed. */
static void
test_long_tag(void **state)
{
	struct buf in, want;
	char *got;

	(void)state;
	buf_init(&in);
	buf_init(&want);
	buf_adds(&in, "<a href=/public title=\"");
	for (int i = 0; i < HTML_TAG_MAX; i++)
		buf_addc(&in, i % 2 ? '>' : 'x');
	buf_add(&want, in.data, in.len);
	buf_adds(&in, "\"><script src=/public>x<a href=/public></script><a href=/public>");
	buf_adds(&want, "\"><script src=/internal>x<a href=/public></script><a href=/internal>");
	got = run_once(default_maps, 2, false, in.data);
	assert_string_equal(got, want.data);
	free(got);
	/* Just under the limit it is rewritten. */
	buf_reset(&in);
	buf_adds(&in, "<a href=/public title=\"");
	for (int i = 0; i < HTML_TAG_MAX - 40; i++)
		buf_addc(&in, 'x');
	buf_adds(&in, "\">");
	got = run_once(default_maps, 2, false, in.data);
	assert_memory_equal(got, "<a href=/internal ", 18);
	free(got);
	buf_free(&in);
	buf_free(&want);
}

/* 10 MiB of every construct, long ones included, through tiny writes. */
static void
test_bounded_memory(void **state)
{
	static const char *const parts[] = {
	    "<p class=x>text text text <a href=/public/p>link</a>\n",
	    "<!-- a comment that goes on and on and on and on and on -->",
	    "<script>var s = '<a href=/public>'; if (a < b) {}</script>",
	    "<style>p{background:url(/public/x)} q{color:red}</style>",
	    "<img srcset='/public/a 1x, /public/b 2x' style='background:url(/public/c)'>",
	};
	struct filter *f = html_filter_new(default_maps, 2, true);
	struct evbuffer *out = evbuffer_new();
	size_t total = 0, in_total = 0, max = 0, step = 0;
	struct buf chunk;

	(void)state;
	buf_init(&chunk);
	while (in_total < 10 * 1024 * 1024) {
		buf_reset(&chunk);
		if (step % 50 == 49) {
			/* Over-long constructs: a tag, a comment, a script, a CSS statement. */
			buf_adds(&chunk, step % 100 == 49 ? "<a title='" : "<style>p{x:'");
			for (int i = 0; i < 3 * HTML_TAG_MAX; i++)
				buf_addc(&chunk, "ab>;"[i % 3]);
			buf_adds(&chunk, step % 100 == 49 ? "'>" : "'}</style>");
			buf_adds(&chunk, "<!--");
			for (int i = 0; i < 3 * HTML_TAG_MAX; i++)
				buf_addc(&chunk, 'c');
			buf_adds(&chunk, "-->");
		} else {
			buf_adds(&chunk, parts[step % ARRAY_SIZE(parts)]);
		}
		for (size_t off = 0; off < chunk.len; off += 7) {
			size_t k = chunk.len - off < 7 ? chunk.len - off : 7;

			assert_int_equal(f->ops->write(f, chunk.data + off, k, out), 0);
			if (html_filter_retained(f) > max)
				max = html_filter_retained(f);
		}
		in_total += chunk.len;
		total += evbuffer_get_length(out);
		evbuffer_drain(out, evbuffer_get_length(out));
		step++;
	}
	assert_int_equal(f->ops->finish(f, out), 0);
	total += evbuffer_get_length(out);
	assert_true(max <= HTML_RETAINED_MAX);
	assert_true(max >= HTML_TAG_MAX); /* the long tag was held up to the limit */
	/* Every part is rewritten, and only grows by the map's length difference. */
	assert_true(total > in_total);
	f->ops->free(f);
	evbuffer_free(out);
	buf_free(&chunk);
}

/* A tag near the limit whose URLs all grow: what is kept afterwards stays bounded. */
static void
test_growth_bounded(void **state)
{
	static const struct route_html_map grow[] = {
	    {"/p", "/a-much-longer-public-prefix-than-the-upstream-one"}};
	struct filter *f = html_filter_new(grow, 1, false);
	struct evbuffer *out = evbuffer_new();
	struct buf in;
	size_t n = 0;

	(void)state;
	buf_init(&in);
	buf_adds(&in, "<img srcset=\"");
	while (in.len < HTML_TAG_MAX - 8) {
		buf_adds(&in, "/p 1x,");
		n++;
	}
	buf_adds(&in, "\">");
	assert_int_equal(f->ops->write(f, in.data, in.len, out), 0);
	assert_true(html_filter_retained(f) <= HTML_RETAINED_MAX);
	assert_int_equal(f->ops->finish(f, out), 0);
	assert_int_equal(evbuffer_get_length(out), in.len + n * (strlen(grow[0].to) - 2));
	f->ops->free(f);
	evbuffer_free(out);
	buf_free(&in);
}

/* The filter passes its output to the next one of the chain. */
static int
collect_write(struct filter *f, const char *data, size_t len, struct evbuffer *out)
{
	(void)f;
	evbuffer_add(out, "[", 1);
	evbuffer_add(out, data, len);
	evbuffer_add(out, "]", 1);
	return 0;
}

static int
collect_finish(struct filter *f, struct evbuffer *out)
{
	(void)f;
	evbuffer_add(out, "$", 1);
	return 0;
}

static int collect_frees;

static void
collect_free(struct filter *f)
{
	(void)f;
	collect_frees++;
}

static void
test_chain(void **state)
{
	static const struct filter_ops ops = {"collect", collect_write, collect_finish,
					      collect_free};
	struct filter next = {&ops, NULL};
	struct filter *f = html_filter_new(default_maps, 2, false);
	struct evbuffer *out = evbuffer_new();
	char got[64] = {0};

	(void)state;
	f->next = &next;
	assert_int_equal(f->ops->write(f, "<a href=/public>", 16, out), 0);
	assert_int_equal(f->ops->write(f, "<a hr", 5, out), 0);
	assert_int_equal(f->ops->finish(f, out), 0);
	evbuffer_remove(out, got, sizeof(got) - 1);
	assert_string_equal(got, "[<a href=/internal>][<a hr]$");
	f->ops->free(f);
	assert_int_equal(collect_frees, 1);
	evbuffer_free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_attributes),
	    cmocka_unit_test(test_quoting_and_case),
	    cmocka_unit_test(test_srcset_and_refresh),
	    cmocka_unit_test(test_untouched),
	    cmocka_unit_test(test_extended),
	    cmocka_unit_test(test_boundaries_and_order),
	    cmocka_unit_test(test_no_maps),
	    cmocka_unit_test(test_split_invariance),
	    cmocka_unit_test(test_split_rewrites),
	    cmocka_unit_test(test_long_tag),
	    cmocka_unit_test(test_bounded_memory),
	    cmocka_unit_test(test_growth_bounded),
	    cmocka_unit_test(test_chain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
