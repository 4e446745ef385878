/*
 * html_url.c: the URL side of HTML rewriting (SPEC section 6.3): the map
 * compiled once per configuration snapshot, and where the URLs are inside
 * the values that hold them (plain attributes, srcset, meta refresh, CSS).
 *
 * The compiled map dispatches on the URL's first byte: only the maps whose
 * `from` starts with that byte are compared, in configuration order, so the
 * first matching map still wins and a URL that no map can match costs one
 * table look-up.
 */
#include <stdint.h>
#include <string.h>

#include "html_int.h"
#include "portico/html.h"

struct html_urlmap {
	struct html_urlmap_entry *entries; /* in configuration order */
	size_t n;
	uint32_t *order;     /* entry indices grouped by first byte, in order */
	uint32_t first[257]; /* order[first[b]..first[b + 1]) start with byte b */
};

/* Does `s` start with `from` at a segment boundary? */
static bool
html_from_matches(const char *from, size_t n, const char *s, size_t len)
{
	if (n == 0 || len < n || memcmp(s, from, n) != 0)
		return false;
	if (len == n || from[n - 1] == '/')
		return true;
	return s[n] == '/' || s[n] == '?' || s[n] == '#';
}

bool
html_rewrite_url(const struct route_html_map *maps, size_t n, const char *s, size_t len,
		 struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		size_t fl = strlen(maps[i].from);

		if (!html_from_matches(maps[i].from, fl, s, len))
			continue;
		buf_adds(out, maps[i].to);
		buf_add(out, s + fl, len - fl);
		return true;
	}
	buf_add(out, s, len);
	return false;
}

struct html_urlmap *
html_urlmap_new(const struct route_html_map *maps, size_t n)
{
	struct html_urlmap *m = xcalloc(1, sizeof(*m));
	uint32_t count[256] = {0}, at[256];

	m->entries = xcalloc(n ? n : 1, sizeof(*m->entries));
	m->order = xcalloc(n ? n : 1, sizeof(*m->order));
	m->n = n;
	for (size_t i = 0; i < n; i++) {
		struct html_urlmap_entry *e = &m->entries[i];

		e->from = xstrdup(maps[i].from);
		e->to = xstrdup(maps[i].to);
		e->from_len = strlen(e->from);
		e->to_len = strlen(e->to);
		if (e->from_len > 0) /* an empty `from` never matches */
			count[(unsigned char)e->from[0]]++;
	}
	for (unsigned b = 0; b < 256; b++) {
		m->first[b + 1] = m->first[b] + count[b];
		at[b] = m->first[b];
	}
	for (size_t i = 0; i < n; i++)
		if (m->entries[i].from_len > 0)
			m->order[at[(unsigned char)m->entries[i].from[0]]++] = (uint32_t)i;
	return m;
}

void
html_urlmap_free(struct html_urlmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++) {
		xfree(m->entries[i].from);
		xfree(m->entries[i].to);
	}
	xfree(m->entries);
	xfree(m->order);
	xfree(m);
}

const struct html_urlmap_entry *
html_urlmap_match(const struct html_urlmap *m, const char *s, size_t len)
{
	unsigned b;

	if (len == 0)
		return NULL;
	b = (unsigned char)s[0];
	for (uint32_t i = m->first[b]; i < m->first[b + 1]; i++) {
		const struct html_urlmap_entry *e = &m->entries[m->order[i]];

		if (html_from_matches(e->from, e->from_len, s, len))
			return e;
	}
	return NULL;
}

bool
html_urlmap_is_empty(const struct html_urlmap *m)
{
	return m->first[256] == 0;
}

/* --- where the URLs are ------------------------------------------------ */

void
html_urls_trimmed(const char *v, size_t len, html_url_visit visit, void *arg)
{
	size_t s = 0, e = len;

	while (s < e && html_is_ws(v[s]))
		s++;
	while (e > s && html_is_ws(v[e - 1]))
		e--;
	visit(arg, v + s, e - s);
}

void
html_urls_srcset(const char *v, size_t len, html_url_visit visit, void *arg)
{
	size_t i = 0, s, e;
	int depth;

	while (i < len) {
		while (i < len && (html_is_ws(v[i]) || v[i] == ','))
			i++;
		for (s = i; i < len && !html_is_ws(v[i]); i++)
			;
		for (e = i; e > s && v[e - 1] == ','; e--)
			;
		visit(arg, v + s, e - s);
		if (e < i)
			continue; /* trailing commas ended the candidate */
		for (depth = 0; i < len && (depth > 0 || v[i] != ','); i++) {
			if (v[i] == '(')
				depth++;
			else if (v[i] == ')' && depth > 0)
				depth--;
		}
	}
}

/*
 * Where the URL of a refresh value starts, with *end where it stops; false
 * when there is none.
 */
static bool
html_refresh_url(const char *v, size_t len, size_t *start, size_t *end)
{
	size_t i = 0, j, digits;
	const char *q;

	while (i < len && html_is_ws(v[i]))
		i++;
	for (digits = i; i < len && ((v[i] >= '0' && v[i] <= '9') || v[i] == '.'); i++)
		;
	if (i == digits)
		return false;
	while (i < len && html_is_ws(v[i]))
		i++;
	if (i < len && (v[i] == ';' || v[i] == ','))
		i++;
	while (i < len && html_is_ws(v[i]))
		i++;
	if (ascii_has_prefix_case(v + i, len - i, "url")) {
		for (j = i + 3; j < len && html_is_ws(v[j]); j++)
			;
		if (j < len && v[j] == '=') {
			for (i = j + 1; i < len && html_is_ws(v[i]); i++)
				;
		}
	}
	*end = len;
	if (i < len && (v[i] == '"' || v[i] == '\'')) {
		q = memchr(v + i + 1, v[i], len - i - 1);
		*end = q ? (size_t)(q - v) : len;
		i++;
	}
	*start = i;
	return i < len;
}

void
html_urls_refresh(const char *v, size_t len, html_url_visit visit, void *arg)
{
	size_t s, e;

	if (html_refresh_url(v, len, &s, &e))
		visit(arg, v + s, e - s);
}

static bool
css_is_ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || (unsigned char)c >= 0x80;
}

/*
 * The URL of a url(...) or @import "..." starting at s[i]: true with
 * [*start, *end) when there is one.
 */
static bool
css_url_at(const char *s, size_t len, size_t i, size_t *start, size_t *end)
{
	size_t j;
	char q = 0;

	if (ascii_has_prefix_case(s + i, len - i, "url(") && (i == 0 || !css_is_ident(s[i - 1])))
		j = i + 4;
	else if (ascii_has_prefix_case(s + i, len - i, "@import"))
		j = i + 7;
	else
		return false;
	while (j < len && html_is_ws(s[j]))
		j++;
	if (j < len && (s[j] == '"' || s[j] == '\''))
		q = s[j++];
	else if (s[i] == '@')
		return false; /* @import url(...) is found at its url( */
	*start = j;
	while (j < len && (q ? s[j] != q : (s[j] != ')' && !html_is_ws(s[j]))))
		j++;
	*end = j;
	return true;
}

void
html_urls_css(const char *s, size_t len, html_url_visit visit, void *arg)
{
	size_t i = 0, us, ue;

	while (i < len) {
		if (!css_url_at(s, len, i, &us, &ue)) {
			i++;
			continue;
		}
		visit(arg, s + us, ue - us);
		i = ue;
	}
}
