/*
 * config_routes.c: one route of routes[] (path or match, pass and its $N
 * references, host, html maps, upstream TLS), the rules that span a route's
 * keys, and the reverse mappings the routes contribute.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "portico/group.h"
#include "portico/html.h"
#include "portico/path.h"
#include "portico/tls.h"

/*
 * How many columns right of the node's mark the value's byte `off` sits:
 * known when the scalar is on one line and its source is as long as its
 * value (no escapes, no multi-byte characters); else 0.
 */
static size_t
scalar_offset_column(const yaml_node_t *n, size_t off)
{
	size_t quotes = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? 0 : 2;
	size_t width = n->end_mark.column - n->start_mark.column;

	if (n->start_mark.line != n->end_mark.line || width != n->data.scalar.length + quotes)
		return 0;
	return off + quotes / 2;
}

int
cfg_key_match(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct route *r = base;
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE erroff;
	int errcode;

	(void)k;
	if (r->path != NULL)
		return cfg_fail(c, n, kp, "a route has either path or match, not both");
	r->kind = ROUTE_MATCH;
	r->match = xstrdup(cfg_scalar(n));
	r->re =
	    pcre2_compile((PCRE2_SPTR)r->match, PCRE2_ZERO_TERMINATED, 0, &errcode, &erroff, NULL);
	if (r->re == NULL) {
		yaml_node_t at = *n;

		pcre2_get_error_message(errcode, msg, sizeof(msg));
		at.start_mark.column += scalar_offset_column(n, erroff);
		return cfg_fail(c, &at, kp, "invalid regular expression at offset %zu: %s",
				(size_t)erroff, (const char *)msg);
	}
	(void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
	return 0;
}

/* The highest $N in a pass template, -1 when none. */
static int
pass_max_ref(const char *s)
{
	int max = -1;

	for (const char *p = s; (p = strchr(p, '$')) != NULL; p++)
		if (p[1] >= '0' && p[1] <= '9' && p[1] - '0' > max)
			max = p[1] - '0';
	return max;
}

static int
pass_check_refs(struct cctx *c, const yaml_node_t *n, const char *kp, struct route *r)
{
	int ref = pass_max_ref(r->pass);
	uint32_t groups = 0;

	r->pass_has_ref = ref >= 0;
	if (ref < 0)
		return 0;
	if (r->kind != ROUTE_MATCH)
		return cfg_fail(c, n, kp,
				"$%d is only allowed in match routes; a path route appends "
				"the rest of the request path",
				ref);
	pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &groups);
	if ((uint32_t)ref > groups)
		return cfg_fail(c, n, kp,
				"$%d refers to capture group %d, but the match has %u group%s", ref,
				ref, groups, groups == 1 ? "" : "s");
	return 0;
}

int
cfg_key_pass(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct route *r = base;
	const char *why, *s = cfg_scalar(n);
	bool b;

	if (strcmp(cfg_scalar(n), "off") == 0 ||
	    (cfg_parse_bool_text(cfg_scalar(n), &b) == 0 && !b)) {
		r->pass_off = true;
		return 0;
	}
	if (strncmp(s, "unix:", 5) == 0) {
		const char *bar = strchr(s, '|');

		if (s[5] != '/' || bar == NULL || bar - s - 5 > 107)
			return cfg_fail_expected(c, n, kp,
						 "unix:/path|http://host/path: an absolute socket "
						 "path of at most 107 bytes, \"|\", then the URL");
		r->unix_path = xstrndup(s + 5, (size_t)(bar - s - 5));
		s = bar + 1;
	}
	if (url_parse(s, &r->upstream, &why) < 0) {
		if (strcmp(why, "expected an http:// or https:// URL") == 0)
			return cfg_fail_expected(c, n, kp, k->expected);
		return cfg_fail_why(c, n, kp, why);
	}
	r->pass = xstrdup(s);
	return pass_check_refs(c, n, kp, r);
}

/* server_name: a host name or [v6] literal, optionally with ":port"; no scheme, no path. */
int
cfg_key_server_name(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base,
		    const char *kp)
{
	struct config *cfg = base;
	const char *s, *colon;
	char *host;
	uint16_t port;
	bool ok;

	s = cfg_scalar(n);
	colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
	if (colon != NULL && s[0] == '[')
		colon++;
	host = colon ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
	ok = cfg_hostname_is_valid(host, false) || cfg_host_is_v6_literal(host);
	xfree(host);
	if (!ok || (colon != NULL && cfg_addr_port(colon + 1, &port) < 0))
		return cfg_fail_expected(c, n, kp, k->expected);
	cfg->server_name = xstrdup(s);
	return 0;
}

int
cfg_key_route_host(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct route *r = base;

	(void)k;
	if (!cfg_hostname_is_valid(cfg_scalar(n), true))
		return cfg_fail_expected(c, n, kp, "a host name or *.suffix, without a port");
	r->host = cfg_lower_dup(cfg_scalar(n));
	return 0;
}

int
cfg_key_html(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	static const char expected[] = "true, false or a mapping with map and extended";
	struct route *r = base;

	if (n == NULL)
		return cfg_parse_bool_text(k->def, &r->html);
	if (n->type == YAML_SCALAR_NODE) {
		if (cfg_need_scalar(c, n, kp, expected) < 0 ||
		    cfg_parse_bool_text(cfg_scalar(n), &r->html) < 0)
			return cfg_fail_expected(c, n, kp, expected);
		return 0;
	}
	if (n->type != YAML_MAPPING_NODE)
		return cfg_fail_expected(c, n, kp, expected);
	r->html = true;
	return cfg_row_scope(c, k, ".", n, r, kp);
}

int
cfg_key_route_tls(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct route *r = base;
	char vkp[KP_MAX];
	yaml_node_t *v;

	if (cfg_row_scope(c, k, ".", n, r, kp) < 0)
		return -1;
	if (n == NULL)
		return 0;
	if (r->pass_off || !r->upstream.tls)
		return cfg_fail(c, n, kp, "tls is only for https:// upstreams");
	if (r->tls.ca != NULL) {
		cfg_kp_join(vkp, kp, "ca");
		if (cfg_tls_check_ca(c, cfg_map_get(c, n, "ca"), vkp, r->tls.ca) < 0)
			return -1;
	}
	if ((r->tls.cert == NULL) != (r->tls.key == NULL)) {
		cfg_kp_join(vkp, kp, r->tls.cert ? "cert" : "key");
		return cfg_fail(c, cfg_map_get(c, n, r->tls.cert ? "cert" : "key"), vkp,
				"cert and key go together; got only %s",
				r->tls.cert ? "cert" : "key");
	}
	if (r->tls.cert != NULL && cfg_tls_check_pair(c, n, kp, r->tls.cert, r->tls.key) < 0)
		return -1;
	v = cfg_map_get(c, n, "verify");
	if (!r->tls.verify)
		cfg_warn(c, cfg_node_line(v), cfg_node_col(v),
			 "%s.verify: the https upstream %s is not verified; anyone on the path can "
			 "impersonate it",
			 kp, r->upstream.authority);
	return 0;
}

static void
html_map_set(struct route_html_map *m, const char *from, const char *to)
{
	m->from = xstrdup(from);
	m->to = xstrdup(to);
}

/*
 * html: true maps the pass URL and its path to the route's path.  A pass
 * without a path sends "/internal/x" to "/x", so its maps go to the route's
 * path with a "/": "http://h/x" and "/x" become "/internal/x", where "/" to
 * "/internal" would give "/internalx", and "http://h" alone "/internal/".
 */
static void
html_default_maps(struct route *r)
{
	size_t pl = strlen(r->path);
	char *slashed, *pass_slash;

	if (*r->upstream.path != '\0') {
		r->html_maps = xcalloc(2, sizeof(*r->html_maps));
		r->html_nmaps = 2;
		html_map_set(&r->html_maps[0], r->pass, r->path);
		html_map_set(&r->html_maps[1], r->upstream.path, r->path);
		return;
	}
	slashed = xasprintf("%s%s", r->path, r->path[pl - 1] == '/' ? "" : "/");
	pass_slash = xasprintf("%s/", r->pass);
	r->html_maps = xcalloc(3, sizeof(*r->html_maps));
	r->html_nmaps = 3;
	html_map_set(&r->html_maps[0], pass_slash, slashed);
	html_map_set(&r->html_maps[1], r->pass, slashed);
	html_map_set(&r->html_maps[2], "/", slashed);
	xfree(slashed);
	xfree(pass_slash);
}

/*
 * A path rule's path, normalized like request paths (SPEC 3); a path that
 * could never match is an error at the byte that makes it so.
 */
static int
route_path_normalize(struct cctx *c, yaml_node_t *item, const char *ikp, struct route *r)
{
	yaml_node_t *n = cfg_map_get(c, item, "path"), at;
	size_t len = strlen(r->path), nlen, off;
	char kp[KP_MAX], *norm = xmalloc(len + 1), *got;
	const char *why;

	if (path_normalize_rule(r->path, len, norm, &nlen, &off, &why) == 0) {
		xfree(r->path);
		r->path = norm;
		return 0;
	}
	xfree(norm);
	at = *n;
	at.start_mark.column += scalar_offset_column(n, off);
	cfg_kp_join(kp, ikp, "path");
	got = cfg_quote(r->path);
	cfg_fail(c, &at, kp, "can never match: %s; got %s", why, got);
	xfree(got);
	return -1;
}

/* After a route's keys: the rules that span several keys, and computed defaults. */
static int
route_finish(struct cctx *c, yaml_node_t *item, const char *ikp, struct route *r)
{
	yaml_node_t *rev = cfg_map_get(c, item, "reverse");
	char kp[KP_MAX];

	if (r->path == NULL && r->match == NULL)
		return cfg_fail(c, item, ikp, "expected a path or a match key; got neither");
	if (r->path != NULL && route_path_normalize(c, item, ikp, r) < 0)
		return -1;
	if (r->name == NULL)
		r->name = xasprintf("%u", r->index);
	cfg_kp_join(kp, ikp, "reverse");
	if (rev == NULL)
		r->reverse = r->kind == ROUTE_PATH;
	else if (r->reverse && r->pass_has_ref)
		return cfg_fail(c, rev, kp,
				"true needs a fixed pass URL; this pass uses $N, so no URL "
				"maps back");
	if (r->pass_off)
		r->reverse = false;
	if (r->html && r->html_nmaps == 0 && !r->pass_off) {
		cfg_kp_join(kp, ikp, "html");
		if (r->kind == ROUTE_MATCH)
			return cfg_fail(
			    c, cfg_map_get(c, item, "html"), kp,
			    "a match route needs html.map: it has no fixed public path to "
			    "map to");
		html_default_maps(r);
	}
	/* Compiled once here, shared by every response on the route. */
	if (r->html && r->html_nmaps > 0)
		r->html_urlmap = html_urlmap_new(r->html_maps, r->html_nmaps);
	return 0;
}

static bool
str_eq(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
route_tls_equal(const struct route_tls *a, const struct route_tls *b)
{
	return a->verify == b->verify && str_eq(a->ca, b->ca) &&
	       str_eq(a->server_name, b->server_name) && str_eq(a->cert, b->cert) &&
	       str_eq(a->key, b->key);
}

/*
 * The upstream TLS context of an https:// route, built now (the CA and
 * client certificate files are read at load, never on an event loop), or
 * shared with an earlier route that has the same settings.
 */
static int
route_tls_build(struct cctx *c, yaml_node_t *item, const char *ikp, struct config *cfg,
		const struct route *r)
{
	struct tls_client *t = NULL;
	const char *why = NULL;
	char kp[KP_MAX];

	if (r->pass_off || !r->upstream.tls)
		return 0;
	cfg->route_tls = xgrow(cfg->route_tls, &cfg->nroute_tls, r->index, sizeof(*cfg->route_tls));
	for (size_t i = 0; i < c->ntls_firsts && t == NULL; i++)
		if (route_tls_equal(&c->tls_firsts[i]->tls, &r->tls))
			t = tls_client_ref(cfg->route_tls[c->tls_firsts[i]->index]);
	if (t == NULL) {
		if ((t = tls_client_new(&r->tls, &why)) == NULL) {
			cfg_kp_join(kp, ikp, "tls");
			return cfg_fail(c, item, kp, "cannot set up TLS: %s", why);
		}
		c->tls_firsts = xgrow(c->tls_firsts, &c->tls_firsts_cap, c->ntls_firsts,
				      sizeof(*c->tls_firsts));
		c->tls_firsts[c->ntls_firsts++] = r;
	}
	cfg->route_tls[r->index] = t;
	return 0;
}

int
cfg_route_item(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i, const char *ikp,
	       void *base, void *elem)
{
	struct config *cfg = base;
	struct route *r = elem;

	r->index = (unsigned)i;
	r->line = cfg_node_line(item);
	r->col = cfg_node_col(item);
	r->upstream_connect_ms = cfg->timeouts.upstream_connect;
	r->upstream_read_ms = cfg->timeouts.upstream_read;
	r->tunnel_ms = cfg->timeouts.tunnel;
	if (cfg_row_scope(c, k, "[].", item, r, ikp) < 0 || route_finish(c, item, ikp, r) < 0 ||
	    cfg_route_group(c, item, ikp, cfg, r) < 0 || route_tls_build(c, item, ikp, cfg, r) < 0)
		return -1;
	cfg_warn_slash(c, ikp, r);
	return 0;
}

/* Route mappings (path routes with reverse, in order) go before the `reverse` list. */
void
cfg_reverse_build(struct config *cfg)
{
	size_t n = 0, j = 0;
	struct reverse_map *all;

	for (size_t i = 0; i < cfg->nroutes; i++)
		if (cfg->routes[i].reverse)
			n += 1 +
			     (cfg->routes[i].group ? cfg_group_reverse(&cfg->routes[i], NULL) : 0);
	all = xcalloc(n + cfg->nreverse + 1, sizeof(*all));
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct route *r = &cfg->routes[i];

		if (!r->reverse)
			continue;
		all[j].public_path = xstrdup(r->kind == ROUTE_PATH ? r->path : "");
		url_copy(&all[j].upstream, &r->upstream);
		j++;
		if (r->group != NULL)
			j += cfg_group_reverse(r, all + j);
	}
	if (cfg->nreverse > 0)
		memcpy(all + j, cfg->reverse, cfg->nreverse * sizeof(*all));
	xfree(cfg->reverse);
	cfg->reverse = all;
	cfg->nreverse += j;
}
