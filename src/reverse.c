/*
 * reverse.c: ProxyPassReverse for response headers (SPEC section 6.1) and
 * the rewriting of Set-Cookie Path= and Domain= (section 6.2).  Pure
 * functions over header values: they never allocate beyond `out` and never
 * look at anything but the bytes they are given.
 *
 * A URL matches a mapping when it is absolute with the mapping's scheme,
 * host (any case) and port (a default port equals no port), or when it is a
 * path; and when its path then starts with the upstream path at a segment
 * boundary (a run of "/" in one matching a run of "/" in the other, as
 * route.c matches ProxyPass prefixes).  The matched part is replaced by
 * scheme://host + public path and what follows is kept.  When exactly one
 * of the public path and the upstream path ends in "/", one "/" joins them
 * (SPEC 6.1), so that a path mapped forward by route.c comes back as it
 * was: with ("/a", "http://b/u/"), "/a/x" goes to "/u//x" and "/u//x" comes
 * back as "/a/x", "/u/next" as "/a/next", "/u/" as "/a".
 */
#include <string.h>

#include "portico/reverse.h"

struct span {
	const char *p;
	size_t len;
};

static const struct {
	const char *name;
	enum reverse_kind kind;
} reverse_headers[] = {
    {"location", REVERSE_URL},	    {"content-location", REVERSE_URL}, {"uri", REVERSE_URL},
    {"destination", REVERSE_URL},   {"refresh", REVERSE_REFRESH},      {"link", REVERSE_LINK},
    {"set-cookie", REVERSE_COOKIE},
};

enum reverse_kind
reverse_header_kind(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(reverse_headers); i++)
		if (ascii_casecmp_eq(name, len, reverse_headers[i].name,
				     strlen(reverse_headers[i].name)))
			return reverse_headers[i].kind;
	return REVERSE_NONE;
}

static bool
reverse_is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Matches the upstream path `prefix` against the start of `path`; sets
 * *used to the number of bytes of `path` it covers.  An empty prefix, or
 * "/" against an empty path, matches everything.
 */
static bool
reverse_prefix_match(const char *prefix, const char *path, size_t len, size_t *used)
{
	size_t i = 0, j = 0;

	if ((prefix[0] == '/' && prefix[1] == '\0') && (len == 0 || path[0] != '/')) {
		*used = 0;
		return true;
	}
	while (prefix[i] != '\0') {
		if (j >= len)
			return false;
		if (prefix[i] == '/' && path[j] == '/') {
			while (prefix[i] == '/')
				i++;
			while (j < len && path[j] == '/')
				j++;
			continue;
		}
		if (prefix[i] != path[j])
			return false;
		i++;
		j++;
	}
	*used = j;
	return i == 0 || prefix[i - 1] == '/' || j == len || path[j] == '/' || path[j] == '?' ||
	       path[j] == '#';
}

static bool
ends_in_slash(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[n - 1] == '/';
}

/*
 * The mapping's upstream path against the start of `path`.  When only the
 * upstream path ends in "/", that "/" stands for the one route.c put
 * between the two (the "/" that starts the rest of the request path), so it
 * covers exactly one "/" of a run, not the whole run.
 */
static bool
reverse_path_match(const struct reverse_map *m, const char *path, size_t len, size_t *used)
{
	if (!reverse_prefix_match(m->upstream.path, path, len, used))
		return false;
	if (ends_in_slash(m->upstream.path) && !ends_in_slash(m->public_path)) {
		while (*used >= 2 && path[*used - 2] == '/')
			(*used)--;
	}
	return true;
}

/* The default port of a scheme the URL spelled, 0 when not http(s). */
static unsigned
reverse_default_port(const char *s, size_t len, size_t *skip)
{
	if (ascii_has_prefix_case(s, len, "http://")) {
		*skip = 7;
		return 80;
	}
	if (ascii_has_prefix_case(s, len, "https://")) {
		*skip = 8;
		return 443;
	}
	return 0;
}

/* Parses ":port" (or nothing, or a bare ":") into *port; false when malformed. */
static bool
reverse_parse_port(const char *p, size_t len, unsigned *port)
{
	unsigned v = 0;

	if (len == 0)
		return true;
	if (p[0] != ':' || len > 6)
		return false;
	if (len == 1)
		return true;
	for (size_t i = 1; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	*port = v;
	return true;
}

/* True when the authority a[0..len) names the upstream's host and port. */
static bool
reverse_authority_matches(const struct url *up, const char *a, size_t len, unsigned port)
{
	const char *end = a + len, *host = a, *p;
	size_t hostlen;

	if (memchr(a, '@', len) != NULL)
		return false;
	if (len > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', len);

		if (close == NULL)
			return false;
		host = a + 1;
		hostlen = (size_t)(close - host);
		p = close + 1;
	} else {
		const char *colon = memchr(a, ':', len);

		hostlen = colon ? (size_t)(colon - a) : len;
		p = a + hostlen;
	}
	if (!ascii_casecmp_eq(host, hostlen, up->host, strlen(up->host)))
		return false;
	return reverse_parse_port(p, (size_t)(end - p), &port) && port == up->port;
}

/*
 * For a URL matching the mapping's upstream, sets *rest to the offset where
 * the part after the matched prefix starts.
 */
static bool
reverse_url_matches(const struct reverse_map *m, const char *s, size_t len, size_t *rest)
{
	const struct url *up = &m->upstream;
	size_t skip = 0, alen, used;
	unsigned port;

	if (len > 0 && s[0] == '/' && (len == 1 || s[1] != '/')) {
		if (!reverse_path_match(m, s, len, &used))
			return false;
		*rest = used;
		return true;
	}
	port = reverse_default_port(s, len, &skip);
	if (port == 0 || strcmp(up->scheme, port == 80 ? "http" : "https") != 0)
		return false;
	alen = skip;
	while (alen < len && s[alen] != '/' && s[alen] != '?' && s[alen] != '#')
		alen++;
	if (!reverse_authority_matches(up, s + skip, alen - skip, port))
		return false;
	if (!reverse_path_match(m, s + alen, len - alen, &used))
		return false;
	*rest = alen + used;
	return true;
}

/*
 * Appends what follows the matched prefix, after the public path, joined
 * with one "/" when exactly one of the two paths ends in "/": the public
 * path's own "/" replaces the one that starts the rest ("/a/" + "/x"), or
 * one is added before a rest that starts a segment ("/a" + "next").  An
 * upstream URL without a path counts as not ending in "/", as route.c makes
 * "http://h" + "x" the target "/x": under the public path "/", "http://h/x"
 * maps back to "/x", not "//x".
 */
static void
reverse_add_rest(struct buf *out, const struct reverse_map *m, const char *rest, size_t len)
{
	bool pub = ends_in_slash(m->public_path), up = ends_in_slash(m->upstream.path);

	if (pub && !up && len > 0 && rest[0] == '/') {
		rest++;
		len--;
	} else if (up && !pub && len > 0 && rest[0] != '/' && rest[0] != '?' && rest[0] != '#') {
		buf_addc(out, '/');
	}
	buf_add(out, rest, len);
}

static void
reverse_add_public(struct buf *out, const struct reverse_map *m, const struct reverse_ctx *ctx)
{
	if (ctx->scheme != NULL && ctx->host != NULL && ctx->hostlen > 0) {
		buf_adds(out, ctx->scheme);
		buf_adds(out, "://");
		buf_add(out, ctx->host, ctx->hostlen);
	}
	buf_adds(out, m->public_path);
}

/* Rewrites one URL with the first matching mapping; appends the result (changed or not). */
static bool
reverse_url(const struct reverse_map *maps, size_t n, struct span u, const struct reverse_ctx *ctx,
	    struct buf *out)
{
	size_t rest;

	for (size_t i = 0; i < n; i++) {
		if (!reverse_url_matches(&maps[i], u.p, u.len, &rest))
			continue;
		reverse_add_public(out, &maps[i], ctx);
		reverse_add_rest(out, &maps[i], u.p + rest, u.len - rest);
		return true;
	}
	buf_add(out, u.p, u.len);
	return false;
}

/* Appends the value with the URL span `u` (which lies within it) rewritten. */
static bool
reverse_around(const struct reverse_map *maps, size_t n, const char *value, size_t len,
	       struct span u, const struct reverse_ctx *ctx, struct buf *out)
{
	size_t after = (size_t)(u.p - value) + u.len;
	bool changed;

	buf_add(out, value, (size_t)(u.p - value));
	changed = reverse_url(maps, n, u, ctx, out);
	buf_add(out, u.p + u.len, len - after);
	return changed;
}

static struct span
reverse_trim(const char *p, size_t len)
{
	while (len > 0 && reverse_is_ws(p[0])) {
		p++;
		len--;
	}
	while (len > 0 && reverse_is_ws(p[len - 1]))
		len--;
	return (struct span){p, len};
}

/*
 * The URL of a Refresh value: "5; url=/x", "5;URL = '/x'", "0, url=/x",
 * or "5; /x" (browsers accept a bare URL too).  Empty span when none.
 */
static struct span
reverse_refresh_url(const char *v, size_t len)
{
	size_t i = 0;
	struct span u;

	while (i < len && (reverse_is_ws(v[i]) || (v[i] >= '0' && v[i] <= '9') || v[i] == '.'))
		i++;
	if (i < len && (v[i] == ';' || v[i] == ','))
		i++;
	while (i < len && reverse_is_ws(v[i]))
		i++;
	if (ascii_has_prefix_case(v + i, len - i, "url")) {
		size_t j = i + 3;

		while (j < len && reverse_is_ws(v[j]))
			j++;
		if (j < len && v[j] == '=') {
			for (i = j + 1; i < len && reverse_is_ws(v[i]); i++)
				;
		}
	}
	u = reverse_trim(v + i, len - i);
	if (u.len > 0 && (u.p[0] == '"' || u.p[0] == '\'')) {
		const char *end = memchr(u.p + 1, u.p[0], u.len - 1);

		u.p++;
		u.len = end ? (size_t)(end - u.p) : u.len - 1;
	}
	return u;
}

/* Rewrites every <...> target outside quoted strings of a Link value. */
static bool
reverse_links(const struct reverse_map *maps, size_t n, const char *v, size_t len,
	      const struct reverse_ctx *ctx, struct buf *out)
{
	bool changed = false, quoted = false;
	size_t i = 0, copied = 0;

	while (i < len) {
		const char *end;

		if (quoted && v[i] == '\\') {
			i += 2;
			continue;
		}
		if (v[i] == '"')
			quoted = !quoted;
		if (quoted || v[i] != '<') {
			i++;
			continue;
		}
		if ((end = memchr(v + i, '>', len - i)) == NULL)
			break; /* no later "<" has a ">" either: one scan, not one per "<" */
		buf_add(out, v + copied, i + 1 - copied);
		changed |= reverse_url(maps, n, (struct span){v + i + 1, (size_t)(end - v) - i - 1},
				       ctx, out);
		i = copied = (size_t)(end - v);
	}
	buf_add(out, v + copied, len - copied);
	return changed;
}

/* Leaves `out` as it was at `start` when nothing changed; the 1/0 of the API. */
static int
reverse_finish(struct buf *out, size_t start, bool changed)
{
	if (changed)
		return 1;
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
	return 0;
}

int
reverse_header(const struct reverse_map *maps, size_t n, enum reverse_kind kind, const char *value,
	       size_t len, const struct reverse_ctx *ctx, struct buf *out)
{
	size_t start = out->len;
	bool changed = false;

	switch (kind) {
	case REVERSE_URL:
		changed = reverse_around(maps, n, value, len, reverse_trim(value, len), ctx, out);
		break;
	case REVERSE_REFRESH:
		changed =
		    reverse_around(maps, n, value, len, reverse_refresh_url(value, len), ctx, out);
		break;
	case REVERSE_LINK:
		changed = reverse_links(maps, n, value, len, ctx, out);
		break;
	case REVERSE_NONE:
	case REVERSE_COOKIE:
		break;
	}
	return reverse_finish(out, start, changed);
}

/* The public host without its port: "www.example.com:8080" -> "www.example.com". */
static struct span
reverse_public_host(const struct reverse_ctx *ctx)
{
	const char *h = ctx->host;
	size_t len = ctx->hostlen;

	if (len > 0 && h[0] == '[') {
		const char *end = memchr(h, ']', len);

		return (struct span){h, end ? (size_t)(end - h) + 1 : len};
	}
	for (size_t i = 0; i < len; i++)
		if (h[i] == ':')
			return (struct span){h, i};
	return (struct span){h, len};
}

/* Path= value: the upstream path prefix replaced by the public path. */
static bool
reverse_cookie_path(const struct reverse_map *maps, size_t n, struct span v, struct buf *out)
{
	size_t used;

	for (size_t i = 0; i < n; i++) {
		if (!reverse_path_match(&maps[i], v.p, v.len, &used))
			continue;
		buf_adds(out, maps[i].public_path);
		reverse_add_rest(out, &maps[i], v.p + used, v.len - used);
		return true;
	}
	buf_add(out, v.p, v.len);
	return false;
}

/* Domain= value: the upstream host (with or without a leading dot) becomes the public host. */
static bool
reverse_cookie_domain(const struct reverse_map *maps, size_t n, struct span v,
		      const struct reverse_ctx *ctx, struct buf *out)
{
	struct span d = v, pub = reverse_public_host(ctx);

	if (d.len > 0 && d.p[0] == '.') {
		d.p++;
		d.len--;
	}
	for (size_t i = 0; i < n && pub.len > 0; i++) {
		const char *host = maps[i].upstream.host;

		if (!ascii_casecmp_eq(d.p, d.len, host, strlen(host)))
			continue;
		buf_add(out, pub.p, pub.len);
		return true;
	}
	buf_add(out, v.p, v.len);
	return false;
}

/* One attribute "name=value" at a[0..len) after a ";": rewrites the value of Path and Domain. */
static bool
reverse_cookie_attr(const struct reverse_map *maps, size_t n, const char *a, size_t len,
		    const struct reverse_ctx *ctx, struct buf *out)
{
	const char *eq = memchr(a, '=', len);
	struct span name, v;
	bool changed = false;

	if (eq == NULL) {
		buf_add(out, a, len);
		return false;
	}
	name = reverse_trim(a, (size_t)(eq - a));
	v = reverse_trim(eq + 1, len - (size_t)(eq + 1 - a));
	buf_add(out, a, (size_t)(v.p - a));
	if (ascii_casecmp_eq(name.p, name.len, "path", 4) && v.len > 0 && v.p[0] == '/')
		changed = reverse_cookie_path(maps, n, v, out);
	else if (ascii_casecmp_eq(name.p, name.len, "domain", 6))
		changed = reverse_cookie_domain(maps, n, v, ctx, out);
	else
		buf_add(out, v.p, v.len);
	buf_add(out, v.p + v.len, len - (size_t)(v.p + v.len - a));
	return changed;
}

int
reverse_cookie(const struct reverse_map *maps, size_t n, const char *value, size_t len,
	       const struct reverse_ctx *ctx, struct buf *out)
{
	size_t start = out->len, i;
	bool changed = false;
	const char *semi = memchr(value, ';', len);

	/* The cookie's own name=value is never touched, whatever it holds. */
	i = semi ? (size_t)(semi - value) : len;
	buf_add(out, value, i);
	while (i < len) {
		const char *next = memchr(value + i + 1, ';', len - i - 1);
		size_t end = next ? (size_t)(next - value) : len;

		buf_addc(out, ';');
		changed |= reverse_cookie_attr(maps, n, value + i + 1, end - i - 1, ctx, out);
		i = end;
	}
	return reverse_finish(out, start, changed);
}

void
reverse_map_free(struct reverse_map *m)
{
	xfree(m->public_path);
	m->public_path = NULL;
	url_free(&m->upstream);
}
