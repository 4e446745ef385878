/*
 * import_routes.c: ProxyPass rules as portico routes, in Apache's order of
 * evaluation.
 *
 * A server's view merges the main server into a <VirtualHost> as httpd
 * does: ProxyPass inside <Location> first (the last matching <Location>
 * wins, so they are listed last to first), then the server's own ProxyPass
 * and ProxyPassMatch (the main server's first, unless ProxyPassInherit Off).
 * A route takes its settings from the scopes that cover all its requests, in
 * httpd's merge order (server levels, <Proxy> sections, <Location> sections;
 * the last one that sets something wins).  A <Location> or <Proxy> that
 * covers only part of a prefix route becomes a route of its own, cut from
 * it and placed before it.
 *
 * Virtual hosts: the routes of each host name come in the order of the
 * <VirtualHost> sections, each name followed by a rule that ends the search
 * for it (404, as Apache's own DocumentRoot would), then the default
 * virtual host's routes without host.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "import_int.h"

struct view {
	struct imp *im;
	struct imp_server *vhost;  /* NULL: the main server alone */
	struct imp_scope **scopes; /* in merge order */
	size_t nscopes;
	struct imp_pass **passes; /* in evaluation order */
	size_t npasses;
	struct imp_rev **revs;
	size_t nrevs;
	struct imp_cookie **cookies;
	size_t ncookies;
};

/* One route before it is written. */
struct rspec {
	const struct imp_pass *p;
	bool regex;		       /* a match rule: path is a regex */
	char *path;		       /* prefix, or regex */
	char *pass;		       /* NULL: off */
	char *upstream;		       /* pass up to its first '$' (for <Proxy> prefixes) */
	const struct imp_scope *split; /* the scope this route was cut for */
};

enum cover {
	COV_NONE,    /* none of the route's requests */
	COV_ALL,     /* every request of the route */
	COV_SUB,     /* a part that can be cut into a route of its own */
	COV_UNKNOWN, /* some, portico cannot tell which */
};

/* ---- the view ---- */

#define APPEND(arr, n, item)                                                                       \
	do {                                                                                       \
		(arr) = xrealloc((arr), ((n) + 1) * sizeof(*(arr)));                               \
		(arr)[(n)++] = (item);                                                             \
	} while (0)

static bool
is_proxy_scope(const struct imp_scope *sc)
{
	return sc->kind == SC_PROXY || sc->kind == SC_PROXYMATCH;
}

static void
view_scopes(struct view *v, struct imp_server *main, struct imp_server *vh)
{
	struct imp_server *srv[2] = {main, vh};

	for (int pass = 0; pass < 3; pass++)
		for (int k = 0; k < 2; k++)
			for (size_t i = 0; srv[k] != NULL && i < srv[k]->nscopes; i++) {
				struct imp_scope *sc = srv[k]->scopes[i];
				int order = sc->kind == SC_SERVER ? 0 : is_proxy_scope(sc) ? 1 : 2;

				if (order == pass)
					APPEND(v->scopes, v->nscopes, sc);
			}
}

static void
view_init(struct view *v, struct imp *im, struct imp_server *vh)
{
	struct imp_server *m = im->main;
	size_t nloc;

	memset(v, 0, sizeof(*v));
	v->im = im;
	v->vhost = vh;
	view_scopes(v, m, vh);
	for (size_t i = 0; i < m->nlocpasses; i++)
		APPEND(v->passes, v->npasses, m->locpasses[i]);
	for (size_t i = 0; vh != NULL && i < vh->nlocpasses; i++)
		APPEND(v->passes, v->npasses, vh->locpasses[i]);
	nloc = v->npasses;
	for (size_t i = 0; i < nloc / 2; i++) {
		struct imp_pass *t = v->passes[i];

		v->passes[i] = v->passes[nloc - 1 - i];
		v->passes[nloc - 1 - i] = t;
	}
	/* httpd 2.4 appends the main server's ProxyPass whatever ProxyPassInherit says. */
	for (size_t i = 0; i < m->npasses; i++)
		APPEND(v->passes, v->npasses, m->passes[i]);
	for (size_t i = 0; vh != NULL && i < vh->npasses; i++)
		APPEND(v->passes, v->npasses, vh->passes[i]);
	for (size_t i = 0; i < m->nrevs; i++)
		APPEND(v->revs, v->nrevs, m->revs[i]);
	for (size_t i = 0; vh != NULL && i < vh->nrevs; i++)
		APPEND(v->revs, v->nrevs, vh->revs[i]);
	for (size_t i = 0; i < m->ncookies; i++)
		APPEND(v->cookies, v->ncookies, m->cookies[i]);
	for (size_t i = 0; vh != NULL && i < vh->ncookies; i++)
		APPEND(v->cookies, v->ncookies, vh->cookies[i]);
}

static void
view_free(struct view *v)
{
	xfree(v->scopes);
	xfree(v->passes);
	xfree(v->revs);
	xfree(v->cookies);
}

/* A server setting of the vhost, else of the main server. */
static struct imp_server *
ssl_server(const struct view *v, bool (*has)(const struct imp_server *))
{
	return v->vhost != NULL && has(v->vhost) ? v->vhost : v->im->main;
}

/* ---- paths ---- */

/* `b` starts with `a` at a segment boundary (httpd's <Location> and ProxyPass prefixes). */
static bool
boundary_prefix(const char *a, const char *b)
{
	size_t la = strlen(a);

	if (strncmp(a, b, la) != 0)
		return false;
	return la == 0 || a[la - 1] == '/' || b[la] == '/' || b[la] == '\0';
}

/* The literal start of an anchored regex ("^/api/(.*)" -> "/api/"); "" when unanchored. */
static char *
regex_prefix(const char *re)
{
	struct buf b;

	buf_init(&b);
	if (re[0] == '^') {
		for (const char *p = re + 1; *p && strchr(".[]()*+?{}|\\$^", *p) == NULL; p++)
			buf_addc(&b, *p);
		if (b.len > 0 && strchr("*?{", re[1 + b.len]) != NULL && re[1 + b.len] != '\0')
			b.data[--b.len] = '\0';
	}
	return buf_steal(&b);
}

/* The path of an upstream URL ("http://h/a" -> "/a", "http://h" -> "/"). */
static const char *
url_path(const char *url)
{
	const char *p = strstr(url, "://");
	const char *slash = p ? strchr(p + 3, '/') : NULL;

	return slash ? slash : "/";
}

static char *
url_host(const char *url)
{
	const char *p = strstr(url, "://");
	size_t n;

	if (p == NULL)
		return xstrdup("");
	p += 3;
	n = strcspn(p, "/?#");
	if (p[0] != '[' && memchr(p, ':', n) != NULL)
		n = (size_t)((const char *)memchr(p, ':', n) - p);
	return xstrndup(p, n);
}

static bool
same_path(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && strncmp(a, b, la) == 0;
}

/* ---- coverage ---- */

static bool
trivial_regex(const char *re)
{
	static const char *const all[] = {"^/", "/", ".*", "^/.*", "^.*$", "^/.*$", "^"};

	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		if (strcmp(re, all[i]) == 0)
			return true;
	return false;
}

/* A <Location> against a match rule: by the literal start of its pattern. */
static enum cover
cover_pattern(const char *loc, const char *re)
{
	enum cover c = COV_UNKNOWN;
	char *lit;

	if (strcmp(loc, "/") == 0)
		return COV_ALL;
	lit = regex_prefix(re);
	if (lit[0] != '\0') {
		size_t n = strlen(loc);

		if (strncmp(loc, lit, n) == 0 && (loc[n - 1] == '/' || lit[n] == '/'))
			c = COV_ALL;
		else if (strncmp(loc, lit, strlen(lit) < n ? strlen(lit) : n) != 0)
			c = COV_NONE;
	}
	xfree(lit);
	return c;
}

static enum cover
cover_location(const struct imp_scope *sc, const struct rspec *r)
{
	if (!r->regex) {
		if (boundary_prefix(sc->arg, r->path))
			return COV_ALL;
		return boundary_prefix(r->path, sc->arg) ? COV_SUB : COV_NONE;
	}
	/* A match rule cut for a <Location>: what covers that location covers it. */
	if (r->split != NULL && r->split->kind == SC_LOCATION &&
	    boundary_prefix(sc->arg, r->split->arg))
		return COV_ALL;
	if (!r->p->regex) /* cut from a prefix rule for a <LocationMatch> */
		return boundary_prefix(sc->arg, r->p->path) ? COV_ALL : COV_UNKNOWN;
	return cover_pattern(sc->arg, r->p->path);
}

static enum cover
cover_proxy(const struct imp_scope *sc, const struct rspec *r)
{
	size_t n = strlen(sc->arg), un;

	if (strcmp(sc->arg, "*") == 0)
		return COV_ALL;
	if (sc->kind == SC_PROXYMATCH)
		return COV_UNKNOWN;
	if (r->pass == NULL)
		return COV_NONE;
	if (ascii_has_prefix_case(sc->arg, n, "balancer://")) {
		const char *url = r->p->url;

		return url != NULL && ascii_has_prefix_case(url, strlen(url), "balancer://") &&
			       strncasecmp(url + 11, sc->arg + 11, n - 11) == 0 &&
			       strchr("/", url[n]) != NULL
			   ? COV_ALL
			   : COV_NONE;
	}
	un = strlen(r->upstream);
	if (un >= n && strncasecmp(r->upstream, sc->arg, n) == 0)
		return COV_ALL;
	if (strncasecmp(sc->arg, r->upstream, un) == 0)
		return r->regex ? COV_UNKNOWN : COV_SUB;
	return COV_NONE;
}

static enum cover
cover(const struct imp_scope *sc, const struct rspec *r)
{
	if (sc == r->split || sc == r->p->scope)
		return COV_ALL;
	switch (sc->kind) {
	case SC_SERVER:
		return COV_ALL;
	case SC_LOCATION:
		return cover_location(sc, r);
	case SC_LOCATIONMATCH:
		return trivial_regex(sc->arg) ? COV_ALL : COV_UNKNOWN;
	case SC_LOCATIONGLOB:
		return COV_UNKNOWN;
	case SC_PROXY:
	case SC_PROXYMATCH:
		return cover_proxy(sc, r);
	}
	return COV_UNKNOWN;
}

/* ---- settings ---- */

struct settings {
	const struct imp_flag *preserve_host, *html, *extended;
	const struct imp_map **maps;
	size_t nmaps;
	const struct imp_scope *authz;
};

static void
merge_scope(struct settings *s, const struct imp_scope *sc)
{
	if (sc->preserve_host.v != TRI_UNSET)
		s->preserve_host = &sc->preserve_host;
	if (sc->html.v != TRI_UNSET)
		s->html = &sc->html;
	if (sc->html_extended.v != TRI_UNSET)
		s->extended = &sc->html_extended;
	for (size_t i = 0; i < sc->nmaps; i++)
		APPEND(s->maps, s->nmaps, &sc->maps[i]);
	if (sc->authz.has)
		s->authz = sc;
}

static void
settings_for(const struct view *v, const struct rspec *r, struct settings *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < v->nscopes; i++)
		if (cover(v->scopes[i], r) == COV_ALL)
			merge_scope(s, v->scopes[i]);
}

/* ---- the keys of a route ---- */

static struct ynode *
put(struct ynode *map, const char *key, struct ynode *value, adir *src)
{
	ynode_source(value, src);
	return ynode_put(map, key, value);
}

static void
route_reverse(const struct view *v, const struct rspec *r, struct ynode *m)
{
	if (r->regex)
		return;
	if (r->split != NULL) {
		ynode_comment(put(m, "reverse", ynode_raw("false"), NULL),
			      "the rule it is cut from maps its URLs back");
		return;
	}
	for (size_t i = 0; i < v->nrevs; i++) {
		struct imp_rev *rev = v->revs[i];

		if (strcmp(rev->path, r->p->path) == 0 &&
		    strcmp(imp_url_desocket(rev->url), imp_url_desocket(r->p->url)) == 0) {
			rev->used = true;
			imp_imported(v->im, rev->d);
			put(m, "reverse", ynode_raw("true"), rev->d);
			return;
		}
	}
	ynode_comment(put(m, "reverse", ynode_raw("false"), NULL),
		      "no ProxyPassReverse with the same path and URL");
}

static bool
cookie_applies(const struct view *v, const struct rspec *r, const struct imp_cookie *c)
{
	bool ok;

	if (cover(c->scope, r) != COV_ALL)
		return false;
	if (c->domain) {
		char *host = url_host(r->pass);

		ok = strcasecmp(host, c->internal) == 0 ||
		     (c->internal[0] == '.' && strcasecmp(host, c->internal + 1) == 0);
		xfree(host);
		return ok;
	}
	(void)v;
	return same_path(c->internal, url_path(r->pass)) && same_path(c->public, r->path);
}

static void
route_cookies(const struct view *v, const struct rspec *r, struct ynode *m)
{
	struct ynode *val = NULL;
	bool path = false, domain = false;

	for (size_t i = 0; i < v->ncookies; i++) {
		struct imp_cookie *c = v->cookies[i];

		if (!cookie_applies(v, r, c))
			continue;
		if (val == NULL)
			val = ynode_put(m, "cookies", ynode_raw("true"));
		ynode_source(val, c->d);
		c->used = true;
		imp_imported(v->im, c->d);
		path = path || !c->domain;
		domain = domain || c->domain;
	}
	if (val == NULL)
		return;
	if (path)
		ynode_comment(val, "portico keeps the rest of Path= after the prefix; Apache "
				   "replaces the whole value");
	if (!domain)
		ynode_comment(val, "portico also rewrites Domain= naming the upstream host");
	if (!path)
		ynode_comment(val, "portico also rewrites a Path= under the upstream path");
	if (domain)
		ynode_comment(val, "Domain= becomes the request's host (or server_name)");
}

static void
route_html(const struct view *v, const struct settings *s, struct ynode *m)
{
	struct ynode *h, *maps;

	if (s->html == NULL || s->html->v != TRI_ON)
		return;
	if (s->nmaps == 0) {
		imp_imported(v->im, s->html->d);
		return;
	}
	h = put(m, "html", ynode_map(), s->html->d);
	maps = ynode_put(h, "map", ynode_seq());
	for (size_t i = 0; i < s->nmaps; i++) {
		struct ynode *item = ynode_map();

		ynode_source(item, s->maps[i]->d);
		ynode_put(item, "from", ynode_scalar(s->maps[i]->from));
		ynode_put(item, "to", ynode_scalar(s->maps[i]->to));
		ynode_push(maps, item);
	}
	if (s->nmaps > 1)
		ynode_comment(maps, "portico applies the first map that matches; Apache applies "
				    "them in turn");
	if (s->extended != NULL && s->extended->v == TRI_ON)
		put(h, "extended", ynode_raw("true"), s->extended->d);
}

static void
route_timeouts(const struct view *v, const struct rspec *r, struct ynode *m)
{
	const struct imp_pass *p = r->p;
	uint64_t read = p->read_ms;
	adir *read_d = p->d;
	struct ynode *t;
	char *d;

	if (read == 0 && v->vhost != NULL && v->vhost->read_ms != 0 &&
	    v->vhost->read_ms != v->im->g.read_ms) {
		read = v->vhost->read_ms;
		read_d = v->vhost->read_d;
	}
	if (read == 0 && p->connect_ms == 0)
		return;
	t = ynode_put(m, "timeouts", ynode_map());
	if (p->connect_ms != 0) {
		d = imp_duration(p->connect_ms);
		put(t, "upstream_connect", ynode_scalar(d), p->d);
		xfree(d);
	}
	if (read != 0) {
		d = imp_duration(read);
		put(t, "upstream_read", ynode_scalar(d), read_d);
		xfree(d);
	}
}

static bool
has_verify(const struct imp_server *s)
{
	return s->proxy_verify.v != TRI_UNSET;
}

static bool
has_ca(const struct imp_server *s)
{
	return s->proxy_ca != NULL;
}

static bool
has_cert(const struct imp_server *s)
{
	return s->proxy_cert != NULL;
}

static bool
has_check(const struct imp_server *s)
{
	return s->proxy_check_name.v != TRI_UNSET;
}

static void
route_tls(const struct view *v, const struct rspec *r, struct ynode *m)
{
	const struct imp_server *vs = ssl_server(v, has_verify), *cs = ssl_server(v, has_ca);
	const struct imp_server *ms = ssl_server(v, has_cert), *ns = ssl_server(v, has_check);
	bool verify = vs->proxy_verify.v != TRI_OFF;
	struct ynode *t;

	if (strncasecmp(imp_url_desocket(r->pass), "https://", 8) != 0)
		return;
	t = ynode_map();
	if (!verify)
		put(t, "verify", ynode_raw("false"), vs->proxy_verify.d);
	if (verify && cs->proxy_ca != NULL)
		put(t, "ca", ynode_scalar(cs->proxy_ca), cs->proxy_ca_d);
	if (ms->proxy_cert != NULL) {
		put(t, "cert", ynode_scalar(ms->proxy_cert), ms->proxy_cert_d);
		put(t, "key", ynode_scalar(ms->proxy_cert), ms->proxy_cert_d);
	}
	if (ns->proxy_check_name.v == TRI_OFF && verify)
		imp_report(v->im, ns->proxy_check_name.d,
			   "portico checks the name whenever it verifies the certificate");
	else if (ns->proxy_check_name.v == TRI_OFF)
		imp_imported(v->im, ns->proxy_check_name.d);
	if (vs->proxy_verify.v == TRI_UNSET)
		ynode_comment(m, "Apache's default SSLProxyVerify none accepts any upstream "
				 "certificate; portico verifies it (tls.verify)");
	if (t->n > 0)
		ynode_put(m, "tls", t);
	else
		ynode_free(t);
}

static void
route_access(const struct view *v, const struct settings *s, struct ynode *m)
{
	struct ynode *a;

	if (s->authz == NULL || s->authz == v->im->global_authz)
		return;
	a = imp_authz_yaml(&s->authz->authz);
	ynode_put(m, "access", a);
	if (s->authz->d != NULL) {
		char *from = xasprintf("from %s (%s:%u)", s->authz->d->text, s->authz->d->file,
				       s->authz->d->line);

		ynode_comment_first(a, from);
		xfree(from);
	}
}

static void
route_notes(const struct rspec *r, struct ynode *m)
{
	const struct imp_pass *p = r->p;

	if (p->ws)
		ynode_comment(m, "%s taken as %s: portico forwards WebSocket upgrades on it",
			      p->url, r->pass);
	if (r->pass != NULL && strchr(r->pass, '?') != NULL)
		ynode_comment(m, "portico sends what follows '?' as the query (SPEC section 3); "
				 "Apache escapes it into the path (%%3F)");
	if (p->retry && p->balancer == NULL)
		ynode_comment(m,
			      "retry=%ld: portico keeps no error state for a single upstream "
			      "(as retry=0)",
			      p->retry_s);
}

/* The map of one route, without host. */
static struct ynode *
route_yaml(const struct view *v, const struct rspec *r)
{
	struct ynode *m = ynode_map();
	struct settings s;

	if (r->split != NULL)
		ynode_comment(m, "cut from the rule of %s:%u for %s (%s:%u)", r->p->d->file,
			      r->p->d->line, r->split->d->text, r->split->d->file,
			      r->split->d->line);
	else if (r->p->scope->d != NULL)
		ynode_source(m, r->p->scope->d);
	if (r->split == NULL)
		ynode_source(m, r->p->d);
	ynode_put(m, r->regex ? "match" : "path", ynode_scalar(r->path));
	if (r->pass == NULL) {
		ynode_put(m, "pass", ynode_raw("off"));
		return m;
	}
	ynode_put(m, "pass", ynode_scalar(r->pass));
	route_notes(r, m);
	settings_for(v, r, &s);
	route_reverse(v, r, m);
	route_cookies(v, r, m);
	if (s.preserve_host != NULL && s.preserve_host->v == TRI_ON)
		put(m, "preserve_host", ynode_raw("true"), s.preserve_host->d);
	route_html(v, &s, m);
	route_access(v, &s, m);
	route_timeouts(v, r, m);
	route_tls(v, r, m);
	xfree(s.maps);
	return m;
}

/* ---- from ProxyPass to routes ---- */

static bool
rspec_balancer(const struct view *v, struct imp_pass *p, struct rspec *r)
{
	const char *name = p->url + 11, *rest = name + strcspn(name, "/");
	char *bname = xstrndup(name, (size_t)(rest - name));
	struct imp_balancer *b = imp_balancer_find(v->im, v->vhost ? v->vhost : v->im->main, bname);
	const struct imp_member *first = NULL;

	for (size_t i = 0; b != NULL && i < b->nmembers && first == NULL; i++)
		if (!b->members[i].skip)
			first = &b->members[i];
	if (first == NULL) {
		imp_report(v->im, p->d, "balancer://%s has no BalancerMember portico can use",
			   bname);
		xfree(bname);
		return false;
	}
	xfree(bname);
	p->balancer = b;
	if (p->lbmethod != NULL && b->balance == NULL) {
		b->balance = strcasecmp(p->lbmethod, "bybusyness") == 0	  ? "least_conn"
			     : strcasecmp(p->lbmethod, "byrequests") == 0 ? "round_robin"
									  : NULL;
		b->balance_d = p->d;
		if (b->balance == NULL)
			imp_report_part(v->im, p->d, "lbmethod=%s: no portico equivalent",
					p->lbmethod);
	}
	if (p->maxattempts >= 0 && b->retries < 0) {
		b->retries = p->maxattempts;
		b->retries_d = p->d;
	}
	if (p->retry && b->down_s < 0 && p->retry_s > 0) {
		b->down_s = p->retry_s;
		b->down_d = p->d;
	}
	r->pass = xasprintf("%s://%s%s", first->scheme, imp_balancer_group(v->im, b), rest);
	return true;
}

static bool
rspec_init(const struct view *v, struct imp_pass *p, struct rspec *r)
{
	memset(r, 0, sizeof(*r));
	r->p = p;
	r->regex = p->regex;
	r->path = xstrdup(p->path);
	if (p->url != NULL && p->pass == NULL && !rspec_balancer(v, p, r)) {
		xfree(r->path);
		return false;
	}
	if (p->url != NULL && r->pass == NULL)
		r->pass = xstrdup(p->pass);
	r->upstream = r->pass ? xstrndup(r->pass, strcspn(r->pass, "$")) : xstrdup("");
	return true;
}

static void
rspec_free(struct rspec *r)
{
	xfree(r->path);
	xfree(r->pass);
	xfree(r->upstream);
}

static bool
is_identity_key(const char *key)
{
	return strcmp(key, "path") == 0 || strcmp(key, "match") == 0 || strcmp(key, "pass") == 0 ||
	       strcmp(key, "reverse") == 0;
}

/* Two routes that differ in nothing but path, pass and reverse. */
static bool
same_settings(const struct ynode *a, const struct ynode *b)
{
	size_t ia = 0, ib = 0;

	for (;;) {
		while (ia < a->n && is_identity_key(a->keys[ia]))
			ia++;
		while (ib < b->n && is_identity_key(b->keys[ib]))
			ib++;
		if (ia == a->n || ib == b->n)
			return ia == a->n && ib == b->n;
		if (strcmp(a->keys[ia], b->keys[ib]) != 0 ||
		    !ynode_equal(a->items[ia], b->items[ib]))
			return false;
		ia++, ib++;
	}
}

/* ---- routes cut for sections that cover part of a route ---- */

static void
regex_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (strchr("\\^$.|?*+()[]{}", *s) != NULL)
			buf_addc(b, '\\');
		buf_addc(b, *s);
	}
}

/* Capturing groups of a regex; -1 when it does not compile. */
static int
regex_captures(const char *re)
{
	int errcode;
	PCRE2_SIZE erroff;
	pcre2_code *code =
	    pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &errcode, &erroff, NULL);
	uint32_t n = 0;

	if (code == NULL)
		return -1;
	pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &n);
	pcre2_code_free(code);
	return (int)n;
}

/* `pass` with $N read as $(N+k); NULL when one goes past $9. */
static char *
renumber(const char *pass, int k)
{
	struct buf b;

	buf_init(&b);
	for (const char *p = pass; *p; p++) {
		if (p[0] == '$' && p[1] >= '0' && p[1] <= '9' && p[1] != '0') {
			int n = p[1] - '0' + k;

			if (n > 9) {
				buf_free(&b);
				return NULL;
			}
			buf_addf(&b, "$%d", n);
			p++;
			continue;
		}
		buf_addc(&b, *p);
	}
	return buf_steal(&b);
}

/* The regex of `base` (a match rule) restricted to requests that <Location path> covers. */
static char *
restrict_to_location(const char *re, const char *path)
{
	struct buf b;

	buf_init(&b);
	buf_adds(&b, "^(?=");
	regex_escape(&b, path);
	buf_adds(&b, path[strlen(path) - 1] == '/' ? ")" : "(?:/|$))");
	if (re[0] == '^') {
		buf_adds(&b, re + 1);
	} else {
		buf_adds(&b, ".*?\\K(?:");
		buf_adds(&b, re);
		buf_addc(&b, ')');
	}
	return buf_steal(&b);
}

/*
 * `base` restricted to the requests a <LocationMatch> covers, as a match
 * rule: a lookahead for the section's pattern, then the rule's own pattern
 * (a prefix rule becomes "prefix(rest)" with the rest as a capture).  The
 * section's groups come first, so the pass template is renumbered.  False
 * when it cannot be written.
 */
static bool
restrict_to_match(const struct rspec *base, const char *sre, struct rspec *sub)
{
	int k = regex_captures(sre);
	struct buf b;
	const char *re = base->path;
	char *pass;

	if (k < 0 || (base->regex && re[0] != '^') ||
	    (base->regex && strchr(re, '\\') != NULL && k))
		return false;
	buf_init(&b);
	buf_adds(&b, "^(?=.*?(?:");
	buf_adds(&b, sre);
	buf_adds(&b, "))");
	if (base->regex) {
		buf_adds(&b, re + 1);
		pass = renumber(base->pass, k);
	} else {
		size_t n = strlen(re);
		char ref[16];

		regex_escape(&b, re);
		buf_adds(&b, re[n - 1] == '/' ? "(.*)$" : "((?:/.*)?)$");
		snprintf(ref, sizeof(ref), "$%d", k + 1);
		pass = k + 1 <= 9 ? xasprintf("%s%s", base->pass, ref) : NULL;
	}
	if (pass == NULL || regex_captures(b.data) < 0) {
		buf_free(&b);
		xfree(pass);
		return false;
	}
	sub->regex = true;
	sub->path = buf_steal(&b);
	sub->pass = pass;
	sub->upstream = xstrndup(pass, strcspn(pass, "$"));
	return true;
}

/* The part of a prefix route a <Location> or <Proxy> covers, as a path; NULL when none. */
static char *
sub_path(const struct imp_scope *sc, const struct rspec *base)
{
	char *path;

	if (sc->kind == SC_LOCATION)
		return xstrdup(sc->arg);
	path = xasprintf("%s%s", base->path, sc->arg + strlen(base->upstream));
	if (!boundary_prefix(base->path, path) || strcmp(path, base->path) == 0 ||
	    strpbrk(path, " #") != NULL) {
		xfree(path);
		return NULL;
	}
	return path;
}

static bool
cut_prefix(const struct imp_scope *sc, const struct rspec *base, struct rspec *sub)
{
	char *path = sub_path(sc, base);

	if (path == NULL)
		return false;
	sub->path = path;
	sub->pass = xasprintf("%s%s", base->pass, path + strlen(base->path));
	sub->upstream = xstrndup(sub->pass, strcspn(sub->pass, "$"));
	return true;
}

/* The route cut from `base` for `sc`: 1 when made, 0 when none is needed, -1 when impossible. */
static int
cut_one(const struct imp_scope *sc, const struct rspec *base, struct rspec *sub)
{
	enum cover c = cover(sc, base);

	*sub = (struct rspec){.p = base->p, .regex = base->regex, .split = sc};
	if (!sc->has_settings || c == COV_ALL || c == COV_NONE)
		return 0;
	if (sc->kind == SC_LOCATIONMATCH)
		return restrict_to_match(base, sc->arg, sub) ? 1 : -1;
	if (c == COV_SUB)
		return cut_prefix(sc, base, sub) ? 1 : -1;
	if (sc->kind == SC_LOCATION && base->regex) {
		char *re = restrict_to_location(base->path, sc->arg);

		if (regex_captures(re) < 0) {
			xfree(re);
			return -1;
		}
		sub->path = re;
		sub->pass = xstrdup(base->pass);
		sub->upstream = xstrdup(base->upstream);
		return 1;
	}
	return -1;
}

static int
by_length_desc(const void *a, const void *b)
{
	const struct rspec *x = a, *y = b;
	size_t lx = x->regex ? 0 : strlen(x->path), ly = y->regex ? 0 : strlen(y->path);

	if (x->regex != y->regex)
		return x->regex ? 1 : -1;
	return lx < ly ? 1 : lx > ly ? -1 : 0;
}

/* Routes cut from `base` for the sections that cover part of it, most specific first. */
static void
cut_routes(const struct view *v, const struct rspec *base, struct ynode *out,
	   const struct ynode *base_yaml)
{
	struct rspec *subs = NULL;
	size_t n = 0;

	for (size_t i = 0; i < v->nscopes; i++) {
		const struct imp_scope *sc = v->scopes[i];
		struct rspec sub;
		int rv = cut_one(sc, base, &sub);

		if (rv > 0)
			APPEND(subs, n, sub);
		else if (rv < 0 && sc->d != NULL)
			imp_report_part(v->im, sc->d,
					"applies to some requests of the %s on %s:%u and portico "
					"cannot single them out: not carried over for them",
					base->p->d->name, base->p->d->file, base->p->d->line);
	}
	if (n > 1)
		qsort(subs, n, sizeof(*subs), by_length_desc);
	for (size_t i = 0; i < n; i++) {
		struct ynode *y = route_yaml(v, &subs[i]);

		if (same_settings(y, base_yaml))
			ynode_free(y);
		else
			ynode_push(out, y);
		rspec_free(&subs[i]);
	}
	xfree(subs);
}

/* The routes of a view, without host, into the sequence `out`. */
static void
view_routes(const struct view *v, struct ynode *out)
{
	for (size_t i = 0; i < v->npasses; i++) {
		struct rspec r;
		struct ynode *y;

		if (!rspec_init(v, v->passes[i], &r))
			continue;
		y = route_yaml(v, &r);
		if (r.pass != NULL)
			cut_routes(v, &r, out, y);
		ynode_push(out, y);
		rspec_free(&r);
	}
}

/* ---- virtual hosts ---- */

struct vh {
	struct imp_server *s;
	struct ynode *routes; /* without host */
	bool emitted;
};

static bool
name_eq(const struct imp_name *a, const struct imp_name *b)
{
	if (a->host == NULL || b->host == NULL)
		return a->host == b->host;
	return strcmp(a->host, b->host) == 0;
}

/* Whether some host name is accepted by both. */
static bool
name_overlap(const struct imp_name *a, const struct imp_name *b)
{
	size_t la, lb;

	if (a->host == NULL || b->host == NULL || strcmp(a->host, b->host) == 0)
		return true;
	la = strlen(a->host);
	lb = strlen(b->host);
	if (a->wildcard && lb > la - 1 && strcmp(b->host + lb - (la - 1), a->host + 1) == 0)
		return true;
	return b->wildcard && la > lb - 1 && strcmp(a->host + la - (lb - 1), b->host + 1) == 0;
}

static bool
shares_port(const struct imp_server *a, const struct imp_server *b)
{
	for (size_t i = 0; i < a->nports; i++)
		for (size_t k = 0; k < b->nports; k++)
			if (a->ports[i] == b->ports[k] || a->ports[i] == 0 || b->ports[k] == 0)
				return true;
	return a->nports == 0 || b->nports == 0;
}

static bool
routes_equal(const struct ynode *a, const struct ynode *b)
{
	return ynode_equal(a, b);
}

/*
 * The virtual host whose routes serve `name`: Apache takes the first one
 * listing it on each port; portico routes by name alone, so of those the
 * first with routes.
 */
static size_t
claimer(const struct vh *vhs, size_t n, const struct imp_name *name)
{
	size_t best = SIZE_MAX, first = SIZE_MAX;

	for (size_t i = 0; i < n; i++) {
		bool listed = false, shadowed = false;

		for (size_t k = 0; k < vhs[i].s->nnames; k++)
			listed = listed || name_eq(&vhs[i].s->names[k], name);
		for (size_t j = 0; listed && j < i; j++)
			for (size_t k = 0; k < vhs[j].s->nnames; k++)
				if (name_eq(&vhs[j].s->names[k], name) &&
				    shares_port(vhs[j].s, vhs[i].s))
					shadowed = true;
		if (!listed || shadowed)
			continue;
		if (first == SIZE_MAX)
			first = i;
		if (best == SIZE_MAX && vhs[i].routes->n > 0)
			best = i;
	}
	return best != SIZE_MAX ? best : first;
}

static bool
has_catch_all(const struct ynode *routes)
{
	for (size_t i = 0; i < routes->n; i++) {
		const struct ynode *path = ynode_get(routes->items[i], "path");

		if (path != NULL && strcmp(path->value, "/") == 0 &&
		    ynode_get(routes->items[i], "access") == NULL)
			return true;
	}
	return false;
}

static void
vhost_header(struct ynode *n, const struct imp_server *s, const char *what)
{
	char *text =
	    xasprintf("---- %s (%s:%u)%s", s->d->text, s->d->file, s->d->line, what ? what : "");

	ynode_comment_first(n, text);
	xfree(text);
}

static void
emit_name(struct imp *im, const struct vh *vh, const struct imp_name *name, bool header)
{
	const struct imp_server *s = vh->s;

	for (size_t i = 0; i < vh->routes->n; i++) {
		struct ynode *c = ynode_copy(vh->routes->items[i]);

		if (header && i == 0)
			vhost_header(c, s, NULL);
		if (name->host != NULL)
			put(c, "host", ynode_scalar(name->host), name->d);
		ynode_push(im->routes, c);
		header = false;
	}
	if (has_catch_all(vh->routes))
		return;
	{
		struct ynode *t = ynode_map();

		if (header)
			vhost_header(t, s, NULL);
		ynode_comment(t,
			      "no other rule for %s: Apache answers from %s (%s:%u) itself, "
			      "portico with 404",
			      name->host ? name->host : "any host", s->d->text, s->d->file,
			      s->d->line);
		ynode_put(t, "path", ynode_scalar("/"));
		ynode_put(t, "pass", ynode_raw("off"));
		if (name->host != NULL)
			put(t, "host", ynode_scalar(name->host), name->d);
		ynode_push(im->routes, t);
	}
}

/* The default virtual host: the first on each port; of those the first with routes. */
static size_t
default_vhost(struct imp *im, const struct vh *vhs, size_t n)
{
	size_t best = SIZE_MAX, first = SIZE_MAX;

	for (size_t i = 0; i < n; i++) {
		bool later = false;

		for (size_t j = 0; j < i; j++)
			later = later || shares_port(vhs[j].s, vhs[i].s);
		if (later)
			continue;
		if (first == SIZE_MAX)
			first = i;
		if (best == SIZE_MAX && vhs[i].routes->n > 0)
			best = i;
		else if (best != SIZE_MAX && vhs[i].routes->n > 0 &&
			 !routes_equal(vhs[i].routes, vhs[best].routes))
			imp_report_part(im, vhs[i].s->d,
					"the default virtual host of its port in Apache; portico "
					"has one default for every listener: %s (%s:%u)",
					vhs[best].s->d->text, vhs[best].s->d->file,
					vhs[best].s->d->line);
	}
	return best != SIZE_MAX ? best : first;
}

/* Whether a name of `d` could also be one of a virtual host written after it. */
static bool
needs_names(const struct vh *vhs, size_t n, size_t d)
{
	for (size_t i = d + 1; i < n; i++)
		for (size_t a = 0; a < vhs[d].s->nnames; a++)
			for (size_t b = 0; b < vhs[i].s->nnames; b++)
				if (name_overlap(&vhs[d].s->names[a], &vhs[i].s->names[b]))
					return true;
	return false;
}

/* A virtual host whose name another one serves: fine when their routes are the same. */
static void
report_unused(struct imp *im, struct vh *vh, const struct imp_name *name, const struct vh *by)
{
	if (vh->routes->n == 0 || routes_equal(vh->routes, by->routes)) {
		vh->emitted = true;
		return;
	}
	imp_report_part(im, vh->s->d,
			"%s is also served by %s (%s:%u); portico chooses routes by host name, "
			"not by port, and uses that one's",
			name->host ? name->host : "every host", by->s->d->text, by->s->d->file,
			by->s->d->line);
}

static void
emit_vhosts(struct imp *im, struct vh *vhs, size_t n)
{
	size_t def = default_vhost(im, vhs, n);

	for (size_t i = 0; i < n; i++) {
		bool header = true;

		if (i == def && !needs_names(vhs, n, i))
			continue;
		for (size_t k = 0; k < vhs[i].s->nnames; k++) {
			const struct imp_name *name = &vhs[i].s->names[k];
			size_t c = claimer(vhs, n, name);
			bool dup = false;

			for (size_t j = 0; j < k; j++)
				dup = dup || name_eq(&vhs[i].s->names[j], name);
			if (dup)
				continue;
			if (c != i) {
				report_unused(im, &vhs[i], name, &vhs[c]);
				continue;
			}
			emit_name(im, &vhs[i], name, header);
			header = false;
			vhs[i].emitted = true;
		}
	}
	if (def == SIZE_MAX || vhs[def].routes->n == 0)
		return;
	for (size_t i = 0; i < vhs[def].routes->n; i++) {
		struct ynode *c = ynode_copy(vhs[def].routes->items[i]);

		if (i == 0)
			vhost_header(c, vhs[def].s,
				     ": the default virtual host, for every other "
				     "host name");
		ynode_push(im->routes, c);
	}
	vhs[def].emitted = true;
}

static void
add_fallback_names(struct imp *im, struct imp_server *s)
{
	if (s->nnames > 0 || im->main->main_name == NULL)
		return;
	s->names = xgrow(s->names, &s->capnames, 0, sizeof(*s->names));
	s->names[0] = (struct imp_name){im->main->main_name_d, xstrdup(im->main->main_name), false};
	s->nnames = 1;
}

static void
build_vhosts(struct imp *im)
{
	struct vh *vhs = xcalloc(im->nvhosts, sizeof(*vhs));

	for (size_t i = 0; i < im->nvhosts; i++) {
		struct view v;

		add_fallback_names(im, im->vhosts[i]);
		view_init(&v, im, im->vhosts[i]);
		vhs[i].s = im->vhosts[i];
		vhs[i].routes = ynode_seq();
		view_routes(&v, vhs[i].routes);
		view_free(&v);
	}
	emit_vhosts(im, vhs, im->nvhosts);
	for (size_t i = 0; i < im->nvhosts; i++) {
		if (!vhs[i].emitted && vhs[i].routes->n > 0)
			imp_report_part(im, vhs[i].s->d,
					"no host name reaches it (no ServerName "
					"portico can use) and it is not the default");
		ynode_free(vhs[i].routes);
	}
	xfree(vhs);
}

static void
find_global_authz(struct imp *im)
{
	for (size_t i = 0; i < im->main->nscopes; i++) {
		struct imp_scope *sc = im->main->scopes[i];

		if (sc->kind == SC_PROXY && strcmp(sc->arg, "*") == 0 && sc->authz.has)
			im->global_authz = sc;
	}
}

void
imp_build_routes(struct imp *im)
{
	im->routes = ynode_seq();
	find_global_authz(im);
	if (im->nvhosts > 0) {
		build_vhosts(im);
	} else {
		struct view v;

		view_init(&v, im, NULL);
		view_routes(&v, im->routes);
		view_free(&v);
	}
	for (size_t i = 0; i < im->main->ncookies; i++)
		if (!im->main->cookies[i]->used)
			imp_report(im, im->main->cookies[i]->d,
				   "matches no ProxyPass: portico rewrites cookies per route");
	for (size_t v = 0; v < im->nvhosts; v++)
		for (size_t i = 0; i < im->vhosts[v]->ncookies; i++)
			if (!im->vhosts[v]->cookies[i]->used)
				imp_report(
				    im, im->vhosts[v]->cookies[i]->d,
				    "matches no ProxyPass: portico rewrites cookies per route");
}
