/*
 * bench_html.c: the HTML filter alone, for callgrind (bench/html/run.sh runs
 * it): rewrites a page (bench/html/page.py) in writes of 16 KiB, as the
 * data path hands it over, and, on the same page, passes the bytes the
 * filter keeps unchanged to an evbuffer in the four ways it could:
 *
 *   spans_memcpy      one memcpy per span into space reserved in the evbuffer
 *   spans_add         one evbuffer_add per span
 *   spans_reference   one evbuffer_add_reference per span (the input kept alive)
 *   spans_move        the input as an evbuffer, spans moved with
 *                     evbuffer_remove_buffer (whole chains move, the rest is copied)
 *
 * Each is its own function so that callgrind's inclusive cost of it is the
 * cost of that way; the spans are the page cut at every map match.
 *
 * Usage: bench_html PAGE [rounds]   (default 20)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "portico/html.h"

#define FROM "http://internal.example.com/public"
#define TO   "/internal"
#define READ (16 * 1024)

static const struct route_html_map bench_maps[] = {{FROM, TO}};

struct span {
	size_t off, len;
};

__attribute__((noinline)) static void
rewrite_page(const struct html_urlmap *map, const char *page, size_t len, struct evbuffer *out)
{
	struct filter *f = html_filter_new_shared(map, false);

	for (size_t off = 0; off < len; off += READ)
		if (f->ops->write(f, page + off, len - off < READ ? len - off : READ, out) != 0)
			abort();
	if (f->ops->finish(f, out) != 0)
		abort();
	f->ops->free(f);
}

__attribute__((noinline)) static void
spans_memcpy(const char *page, const struct span *s, size_t n, struct evbuffer *out)
{
	struct evbuffer_iovec v;
	size_t used = 0;

	if (evbuffer_reserve_space(out, (ev_ssize_t)(s[n - 1].off + s[n - 1].len + n * 16), &v, 1) <
	    1)
		abort();
	for (size_t i = 0; i < n; i++) {
		memcpy((char *)v.iov_base + used, page + s[i].off, s[i].len);
		used += s[i].len;
		memcpy((char *)v.iov_base + used, TO, sizeof(TO) - 1);
		used += sizeof(TO) - 1;
	}
	v.iov_len = used;
	evbuffer_commit_space(out, &v, 1);
}

__attribute__((noinline)) static void
spans_add(const char *page, const struct span *s, size_t n, struct evbuffer *out)
{
	for (size_t i = 0; i < n; i++) {
		evbuffer_add(out, page + s[i].off, s[i].len);
		evbuffer_add(out, TO, sizeof(TO) - 1);
	}
}

__attribute__((noinline)) static void
spans_reference(const char *page, const struct span *s, size_t n, struct evbuffer *out)
{
	for (size_t i = 0; i < n; i++) {
		evbuffer_add_reference(out, page + s[i].off, s[i].len, NULL, NULL);
		evbuffer_add(out, TO, sizeof(TO) - 1);
	}
}

__attribute__((noinline)) static void
spans_move(struct evbuffer *in, const struct span *s, size_t n, struct evbuffer *out)
{
	size_t at = 0;

	for (size_t i = 0; i < n; i++) {
		evbuffer_drain(in, s[i].off - at);
		evbuffer_remove_buffer(in, out, s[i].len);
		evbuffer_add(out, TO, sizeof(TO) - 1);
		at = s[i].off + s[i].len;
	}
}

static char *
read_page(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		return NULL;
	p = xmalloc((size_t)n + 1);
	if (fread(p, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	*len = (size_t)n;
	return p;
}

int
main(int argc, char **argv)
{
	struct html_urlmap *map = html_urlmap_new(bench_maps, 1);
	struct evbuffer *out = evbuffer_new(), *in = evbuffer_new();
	int rounds = argc > 2 ? atoi(argv[2]) : 20;
	struct span s[4096];
	size_t len, n = 0, at = 0, outlen = 0;
	const char *m;
	char *page;

	if (argc < 2 || (page = read_page(argv[1], &len)) == NULL) {
		fprintf(stderr, "usage: bench_html PAGE [rounds]\n");
		return 2;
	}
	while ((m = memmem(page + at, len - at, FROM, sizeof(FROM) - 1)) != NULL && n < 4095) {
		s[n++] = (struct span){at, (size_t)(m - page) - at};
		at = (size_t)(m - page) + sizeof(FROM) - 1;
	}
	s[n++] = (struct span){at, len - at};
	for (int r = 0; r < rounds; r++) {
		rewrite_page(map, page, len, out);
		outlen = evbuffer_get_length(out);
		evbuffer_drain(out, outlen);
		spans_memcpy(page, s, n, out);
		evbuffer_drain(out, evbuffer_get_length(out));
		spans_add(page, s, n, out);
		evbuffer_drain(out, evbuffer_get_length(out));
		spans_reference(page, s, n, out);
		evbuffer_drain(out, evbuffer_get_length(out));
		for (size_t off = 0; off < len; off += READ) /* as the reads leave it */
			evbuffer_add(in, page + off, len - off < READ ? len - off : READ);
		spans_move(in, s, n, out);
		evbuffer_drain(out, evbuffer_get_length(out));
	}
	printf("page %zu bytes, %zu spans, rewritten %zu bytes, %d rounds\n", len, n, outlen,
	       rounds);
	html_urlmap_free(map);
	evbuffer_free(out);
	evbuffer_free(in);
	free(page);
	return 0;
}
