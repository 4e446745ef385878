/*
 * config_check.c: checks across keys (the admin listener never overlaps a
 * public one) and the -t warnings (shadowed rules, slash mismatches, open
 * public listeners), sorted by their place in the file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "config_int.h"

void
cfg_warn_slash(struct cctx *c, const char *ikp, const struct route *r)
{
	bool ps;

	if (!route_has_slash_mismatch(r))
		return;
	ps = r->path[strlen(r->path) - 1] == '/';
	cfg_warn(c, r->line, r->col,
		 "%s: path \"%s\" %s with \"/\" but pass \"%s\" %s; requests map to URLs like "
		 "\"%s%s\"",
		 ikp, r->path, ps ? "ends" : "does not end", r->pass, ps ? "does not" : "does",
		 r->pass, ps ? "x" : "/x");
}

void
cfg_warn_shadowed(struct cctx *c, const struct config *cfg)
{
	for (size_t i = 1; i < cfg->nroutes; i++) {
		int j = route_table_shadowed_by(cfg->table, i);
		const struct route *r = &cfg->routes[i];

		if (j < 0)
			continue;
		cfg_warn(
		    c, r->line, r->col,
		    "routes[%zu] (line %d) can never match: routes[%d] (line %d) matches every "
		    "request it could",
		    i, r->line, j, cfg->routes[j].line);
	}
}

void
cfg_warn_open_listeners(struct cctx *c, const struct config *cfg)
{
	bool every_route = true;

	if (cfg->has_access)
		return;
	for (size_t i = 0; i < cfg->nroutes; i++)
		every_route = every_route && cfg->routes[i].has_access;
	if (every_route)
		return;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct config_listen *l = &cfg->listen[i];

		if (l->public)
			cfg_warn(c, l->line, l->col,
				 "listen[%zu]: %s is a public address and no access rules are set: "
				 "every client may use every route",
				 i, l->address);
	}
}

static int
warning_cmp(const void *a, const void *b)
{
	const struct warning *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : 1;
}

/* Sorted by position in the file, as "file:line:col: warning: text". */
void
cfg_warnings_move(struct cctx *c, struct config *cfg)
{
	if (c->nwarns > 1)
		qsort(c->warns, c->nwarns, sizeof(*c->warns), warning_cmp);
	cfg->warnings = xcalloc(c->nwarns + 1, sizeof(char *));
	for (size_t i = 0; i < c->nwarns; i++) {
		cfg->warnings[i] = xasprintf("%s:%d:%d: warning: %s", c->file, c->warns[i].line,
					     c->warns[i].col, c->warns[i].text);
		xfree(c->warns[i].text);
	}
	cfg->nwarnings = c->nwarns;
	c->nwarns = 0;
}

/* The port of a parsed listen address, and whether it is every address (0.0.0.0, ::, *). */
static uint16_t
addr_port_of(const struct sockaddr_storage *ss, bool *unspecified)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		*unspecified = in->sin_addr.s_addr == htonl(INADDR_ANY);
		return ntohs(in->sin_port);
	}
	const struct sockaddr_in6 *in6 = (const void *)ss;
	*unspecified = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
	return ntohs(in6->sin6_port);
}

/* True when `any` (an address for every interface) takes connections meant for `b`. */
static bool
addr_covers(const struct sockaddr_storage *any, const struct sockaddr_storage *b)
{
	/* [::] and "*" may take IPv4 too (net.ipv6.bindv6only is 0 by default). */
	return any->ss_family == AF_INET6 || b->ss_family == AF_INET;
}

/* True when a socket bound to `a` would take connections meant for `b`, or the reverse. */
static bool
addr_overlaps(const struct sockaddr_storage *a, socklen_t alen, const struct sockaddr_storage *b,
	      socklen_t blen)
{
	bool aany, bany;

	if (addr_port_of(a, &aany) != addr_port_of(b, &bany))
		return false;
	if (aany || bany)
		return addr_covers(aany ? a : b, aany ? b : a);
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* The admin listener is never one of the public ones (SPEC section 2). */
int
cfg_check_admin(struct cctx *c, const struct config *cfg, yaml_node_t *root)
{
	yaml_node_t *admin;

	if (cfg->admin.listen == NULL)
		return 0;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct config_listen *l = &cfg->listen[i];

		if (!addr_overlaps(&cfg->admin.sa, cfg->admin.salen, &l->sa, l->salen))
			continue;
		admin = cfg_map_get(c, root, "admin");
		return cfg_fail(
		    c, cfg_map_get(c, admin, "listen"), "admin.listen",
		    "%s overlaps listen[%zu] %s (line %d); metrics are never served on a "
		    "public listener",
		    cfg->admin.listen, i, l->address, l->line);
	}
	return 0;
}
