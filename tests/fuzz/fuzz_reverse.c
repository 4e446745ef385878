/*
 * fuzz_reverse.c: libFuzzer target for reverse.c (and url.c through the
 * mapping it parses).
 *
 * Input: "<upstream URL>\n<public path>\n<header value>".  When the first
 * line is not a valid URL a fixed mapping is used, so every input reaches
 * the header code.  The value is run through every header kind and
 * through the cookie rewriter, and the results are checked:
 *   - return 0 leaves `out` exactly as it was;
 *   - a rewrite never introduces a byte the inputs did not hold (no CR,
 *     LF or NUL from nowhere: no header injection);
 *   - rewriting is deterministic.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portico/reverse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *
fuzz_line(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));

	*len = nl ? (size_t)(nl - s) : (size_t)(end - s);
	*p = nl ? nl + 1 : end;
	return s;
}

/* A byte of `out` that appears in none of the inputs means the rewriter made it up. */
static void
fuzz_check_bytes(const struct buf *out, const char *value, size_t len, const char *extra)
{
	bool seen[256] = {false};

	for (size_t i = 0; i < len; i++)
		seen[(unsigned char)value[i]] = true;
	for (const char *p = extra; *p; p++)
		seen[(unsigned char)*p] = true;
	for (size_t i = 0; i < out->len; i++)
		if (!seen[(unsigned char)out->data[i]])
			abort();
}

static void
fuzz_run(const struct reverse_map *m, enum reverse_kind kind, const char *value, size_t len,
	 const struct reverse_ctx *ctx, const char *extra)
{
	struct buf a, b;
	int ra, rb;

	buf_init(&a);
	buf_init(&b);
	buf_adds(&a, "x");
	buf_adds(&b, "x");
	if (kind == REVERSE_COOKIE) {
		ra = reverse_cookie(m, 1, value, len, ctx, &a);
		rb = reverse_cookie(m, 1, value, len, ctx, &b);
	} else {
		ra = reverse_header(m, 1, kind, value, len, ctx, &a);
		rb = reverse_header(m, 1, kind, value, len, ctx, &b);
	}
	if (ra != rb || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	if (ra == 0 && (a.len != 1 || a.data[0] != 'x'))
		abort();
	if (ra != 0 && ra != 1)
		abort();
	fuzz_check_bytes(&a, value, len, extra);
	buf_free(&a);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct reverse_ctx ctx = {"https", "www.example.com:8443", 20};
	const char *p = (const char *)data, *end = p + size, *line;
	struct reverse_map m;
	struct buf extra;
	const char *err;
	size_t len;
	char *text;

	line = fuzz_line(&p, end, &len);
	text = xstrndup(line, len);
	if (memchr(line, '\0', len) != NULL || url_parse(text, &m.upstream, &err) < 0)
		(void)url_parse("http://internal.example.com/public", &m.upstream, &err);
	free(text);
	line = fuzz_line(&p, end, &len);
	m.public_path = xstrndup(line, len);
	buf_init(&extra);
	buf_addf(&extra, "x%s%s%s", ctx.scheme, "://", ctx.host);
	buf_adds(&extra, m.public_path);
	for (int k = REVERSE_NONE; k <= REVERSE_COOKIE; k++)
		fuzz_run(&m, (enum reverse_kind)k, p, (size_t)(end - p), &ctx, extra.data);
	buf_free(&extra);
	reverse_map_free(&m);
	return 0;
}
