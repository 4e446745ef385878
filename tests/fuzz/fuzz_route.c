/*
 * fuzz_route.c: libFuzzer target for the literal-prefix pre-filter of
 * route.c (route_regex_prefix) and the lookup that uses it.
 *
 * Input: "<pattern>\n<path>[\n<path>...]".  The pattern is compiled as the
 * configuration compiles match rules; when it compiles, a table of three
 * rules is built: the pattern, a prefix rule "/x", the pattern again.  For
 * every path:
 *   - when the pattern has a literal prefix and matches the path, the path
 *     starts with that prefix (the pre-filter never hides a match);
 *   - the table's answer equals a linear walk over the rules in order
 *     (first match wins).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portico/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Apache's alias_match() for the rule "/x": a run of "/", "x", then the end or "/". */
static bool
rule_x_matches(const char *path, size_t len)
{
	size_t i = 0;

	while (i < len && path[i] == '/')
		i++;
	return i > 0 && i < len && path[i] == 'x' && (i + 1 == len || path[i + 1] == '/');
}

/* The rule a linear scan in file order picks, or -1. */
static int
linear_pick(const struct route *routes, size_t n, pcre2_match_data *md, const char *path,
	    size_t len)
{
	for (size_t i = 0; i < n; i++) {
		const struct route *r = &routes[i];

		if (r->kind == ROUTE_MATCH &&
		    pcre2_match(r->re, (PCRE2_SPTR)path, len, 0, 0, md, NULL) >= 0)
			return (int)i;
		if (r->kind == ROUTE_PATH && rule_x_matches(path, len))
			return (int)i;
	}
	return -1;
}

static void
check_path(const struct route *routes, const struct route_table *t, const struct buf *prefix,
	   bool has_prefix, pcre2_match_data *md, const char *path, size_t len)
{
	const struct route *got = route_table_lookup(t, NULL, 0, path, len, NULL);
	int want = linear_pick(routes, 3, md, path, len);
	bool matches = pcre2_match(routes[0].re, (PCRE2_SPTR)path, len, 0, 0, md, NULL) >= 0;

	if (has_prefix && matches && (len < prefix->len || memcmp(path, prefix->data, prefix->len)))
		abort();
	if ((got == NULL ? -1 : (int)got->index) != want)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *end = in + size, *nl = memchr(in, '\n', size);
	struct route routes[3];
	struct route_table *t;
	pcre2_match_data *md;
	PCRE2_SIZE erroff;
	struct buf prefix;
	char *pattern;
	bool has_prefix;
	int errcode;

	if (nl == NULL || memchr(in, '\0', (size_t)(nl - in)) != NULL)
		return 0;
	pattern = xstrndup(in, (size_t)(nl - in));
	memset(routes, 0, sizeof(routes));
	routes[0].re =
	    pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &errcode, &erroff, NULL);
	if (routes[0].re == NULL) {
		xfree(pattern);
		return 0;
	}
	for (unsigned i = 0; i < 3; i++) {
		routes[i].index = i;
		routes[i].kind = i == 1 ? ROUTE_PATH : ROUTE_MATCH;
		routes[i].match = i == 1 ? NULL : pattern;
		routes[i].re = routes[0].re;
	}
	routes[1].path = "/x";
	routes[1].re = NULL;
	buf_init(&prefix);
	has_prefix = route_regex_prefix(pattern, routes[0].re, &prefix);
	t = route_table_build(routes, 3);
	md = pcre2_match_data_create(ROUTE_MAX_CAPTURES, NULL);
	for (const char *p = nl + 1; p <= end;) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		size_t len = e ? (size_t)(e - p) : (size_t)(end - p);

		check_path(routes, t, &prefix, has_prefix, md, p, len);
		if (e == NULL)
			break;
		p = e + 1;
	}
	pcre2_match_data_free(md);
	route_table_free(t);
	buf_free(&prefix);
	pcre2_code_free(routes[0].re);
	xfree(pattern);
	return 0;
}
