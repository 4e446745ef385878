/*
 * config_upstreams.c: the `upstreams` groups (SPEC section 12): each group
 * walked along the "upstreams.*." rows of the key table, its servers
 * (host:port, [v6]:port, name:port or unix:/path), the hash key, the
 * active checks; then, for each route, the group its pass URL names, a
 * unix-socket pass ("unix:/path|http://host/path", as Apache writes it),
 * the reverse mappings a group route adds, and the -t warning about a
 * group no route uses.
 */
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "portico/group.h"

#define UNIX_PATH_MAX 107 /* sun_path less its terminating NUL */

/* "host:port", "[v6]:port" or "unix:/path" into `s`; a message, or NULL. */
static const char *
server_address_parse(struct group_server *s, const char *a)
{
	const char *colon, *h = a;
	size_t hlen;
	char *host, *tmp;

	if (strncmp(a, "unix:", 5) == 0) {
		if (a[5] != '/')
			return "unix: needs an absolute path";
		if (strlen(a + 5) > UNIX_PATH_MAX)
			return "a unix socket path is at most 107 bytes";
		s->unix_path = xstrdup(a + 5);
		s->authority = xstrdup("localhost");
		return NULL;
	}
	if (a[0] == '[') {
		const char *close = strchr(a, ']');

		if (close == NULL || close[1] != ':')
			return "no port after the ]";
		h = a + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(a, ':');
		if (colon == NULL)
			return "no port after the host";
		hlen = (size_t)(colon - a);
	}
	if (cfg_addr_port(colon + 1, &s->port) < 0)
		return "the port is not in 1..65535";
	tmp = xstrndup(h, hlen);
	host = cfg_lower_dup(tmp);
	xfree(tmp);
	if (a[0] == '[' ? !cfg_addr_is_numeric(host) || strchr(host, ':') == NULL
			: !cfg_hostname_is_valid(host, false)) {
		xfree(host);
		return "not a host name or a numeric address";
	}
	s->host = host;
	s->authority = xstrdup(a);
	return NULL;
}

int
cfg_key_server_address(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base,
		       const char *kp)
{
	struct group_server *s = base;
	const char *why;

	if ((why = server_address_parse(s, cfg_scalar(n))) != NULL) {
		char *got = cfg_quote(cfg_scalar(n));

		cfg_fail(c, n, kp, "expected %s (%s); got %s", k->expected, why, got);
		xfree(got);
		return -1;
	}
	s->address = xstrdup(cfg_scalar(n));
	return 0;
}

int
cfg_server_item(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i, const char *ikp,
		void *base, void *elem)
{
	struct server_group *g = base;
	struct group_server *s = elem;

	s->line = cfg_node_line(item);
	s->col = cfg_node_col(item);
	s->weight = 1;
	if (i >= GROUP_MAX_SERVERS)
		return cfg_fail(c, item, ikp, "a group has at most %d servers", GROUP_MAX_SERVERS);
	if (item->type == YAML_SCALAR_NODE) {
		if (cfg_need_scalar(c, item, ikp, "an address or a mapping with address") < 0 ||
		    cfg_key_server_address(c,
					   &(struct ckey){.expected = "host:port, [v6]:port, "
								      "name:port or unix:/path"},
					   item, s, ikp) < 0)
			return -1;
	} else if (item->type != YAML_MAPPING_NODE) {
		return cfg_fail_expected(c, item, ikp, "an address or a mapping with address");
	} else if (cfg_row_scope(c, k, "[].", item, s, ikp) < 0) {
		return -1;
	}
	for (size_t j = 0; j < i; j++)
		if (strcmp(g->servers[j].address, s->address) == 0)
			return cfg_fail(c, item, ikp, "the same server as %s's item %zu (line %d)",
					g->name, j, g->servers[j].line);
	return 0;
}

int
cfg_key_group_hash(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct server_group *g = base;
	const char *s = cfg_scalar(n), *name = NULL;

	if (strcmp(s, "client_ip") == 0) {
		g->hash_key = GROUP_HASH_CLIENT_IP;
		return 0;
	}
	if (strncmp(s, "header:", 7) == 0) {
		g->hash_key = GROUP_HASH_HEADER;
		name = s + 7;
	} else if (strncmp(s, "cookie:", 7) == 0) {
		g->hash_key = GROUP_HASH_COOKIE;
		name = s + 7;
	}
	if (name == NULL || *name == '\0' || strpbrk(name, " \t;=:,\"") != NULL)
		return cfg_fail_expected(c, n, kp, k->expected);
	g->hash_name = xstrdup(name);
	return 0;
}

bool
cfg_check_group_host(const char *s)
{
	struct group_server tmp = {0};
	bool ok;

	if (strchr(s, ':') == NULL || (s[0] == '[' && strstr(s, "]:") == NULL))
		return cfg_hostname_is_valid(s, false) || cfg_host_is_v6_literal(s);
	ok = server_address_parse(&tmp, s) == NULL && tmp.unix_path == NULL;
	xfree(tmp.host);
	xfree(tmp.authority);
	xfree(tmp.unix_path);
	return ok;
}

int
cfg_key_group_expect(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base,
		     const char *kp)
{
	struct server_group *g = base;
	const char *s = cfg_scalar(n), *end;
	uint64_t lo, hi;

	if (cfg_parse_uint(s, &lo, &end) < 0)
		return cfg_fail_expected(c, n, kp, k->expected);
	hi = lo;
	if (*end == '-' && cfg_parse_uint(end + 1, &hi, &end) < 0)
		return cfg_fail_expected(c, n, kp, k->expected);
	if (*end != '\0' || lo < 100 || hi > 599 || lo > hi)
		return cfg_fail_expected(c, n, kp, k->expected);
	g->check.expect_lo = (unsigned)lo;
	g->check.expect_hi = (unsigned)hi;
	return 0;
}

int
cfg_key_group_active(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base,
		     const char *kp)
{
	struct server_group *g = base;
	char tkp[KP_MAX];
	yaml_node_t *t;

	g->active = n != NULL;
	if (n != NULL && cfg_need_mapping(c, n, kp) < 0)
		return -1;
	if (cfg_row_scope(c, k, ".", n, g, kp) < 0)
		return -1;
	if (!g->active || g->check.timeout_ms <= g->check.interval_ms)
		return 0;
	if ((t = cfg_map_get(c, n, "timeout")) == NULL) {
		g->check.timeout_ms = g->check.interval_ms; /* the default, shortened */
		return 0;
	}
	cfg_kp_join(tkp, kp, "timeout");
	return cfg_fail(c, t, tkp, "must not be longer than interval");
}

static int
group_parse(struct cctx *c, struct config *cfg, yaml_node_t *name, yaml_node_t *body,
	    struct server_group *g, const char *kp)
{
	char gkp[KP_MAX];

	if (cfg_need_scalar(c, name, kp, "a group name") < 0)
		return -1;
	cfg_kp_join(gkp, kp, cfg_scalar(name));
	if (!cfg_hostname_is_valid(cfg_scalar(name), false))
		return cfg_fail_expected(c, name, gkp, "a group name: letters, digits, -, _ and .");
	if (group_find(cfg->groups, cfg->ngroups, cfg_scalar(name), strlen(cfg_scalar(name))))
		return cfg_fail(c, name, gkp, "duplicate group name");
	for (size_t i = 0; i < cfg->nhosts; i++)
		if (strcasecmp(cfg->hosts[i].name, cfg_scalar(name)) == 0)
			return cfg_fail(c, name, gkp,
					"also a name under hosts; a pass URL naming it would be "
					"ambiguous");
	g->name = cfg_lower_dup(cfg_scalar(name));
	g->line = cfg_node_line(name);
	g->col = cfg_node_col(name);
	g->check.expect_lo = 200;
	g->check.expect_hi = 399;
	cfg->ngroups++;
	if (cfg_scope_parse(c, "upstreams.*.", body, g, gkp) < 0)
		return -1;
	if (g->balance != GROUP_HASH && cfg_map_get(c, body, "hash") != NULL) {
		cfg_kp_join(gkp, gkp, "hash");
		return cfg_fail(c, cfg_map_get(c, body, "hash"), gkp, "only with balance: hash");
	}
	group_build(g);
	return 0;
}

int
cfg_key_upstreams(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct config *cfg = base;
	size_t len;

	(void)k;
	if (n == NULL)
		return 0;
	if (cfg_need_mapping(c, n, kp) < 0)
		return -1;
	len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if (len == 0)
		return cfg_fail(c, n, kp, "expected at least one group; got an empty mapping");
	cfg->groups = xcalloc(len, sizeof(*cfg->groups));
	for (size_t i = 0; i < len; i++) {
		yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];

		if (group_parse(c, cfg, cfg_node_get(c, p->key), cfg_node_get(c, p->value),
				&cfg->groups[i], kp) < 0)
			return -1;
	}
	return 0;
}

/* --- routes that name a group ----------------------------------------------------- */

/* A pass host one or two edits from a group's name is taken for a typo. */
static const struct server_group *
group_near(const struct config *cfg, const char *host)
{
	for (size_t i = 0; i < cfg->ngroups; i++)
		if (cfg_edit_distance(host, cfg->groups[i].name) <= 2)
			return &cfg->groups[i];
	return NULL;
}

int
cfg_route_group(struct cctx *c, yaml_node_t *item, const char *ikp, struct config *cfg,
		struct route *r)
{
	const struct url *u = &r->upstream;
	yaml_node_t *pass = cfg_map_get(c, item, "pass");
	const struct server_group *near;
	char kp[KP_MAX];

	if (r->pass_off)
		return 0;
	cfg_kp_join(kp, ikp, "pass");
	r->group = group_find(cfg->groups, cfg->ngroups, u->host, strlen(u->host));
	if (r->group == NULL) {
		if (strchr(u->host, '.') == NULL && strchr(u->host, ':') == NULL &&
		    (near = group_near(cfg, u->host)) != NULL)
			return cfg_fail(c, pass, kp,
					"no upstream group \"%s\"; did you mean \"%s\"? (a name "
					"that is not a group is looked up in DNS)",
					u->host, near->name);
		return 0;
	}
	if (r->unix_path != NULL)
		return cfg_fail(c, pass, kp, "unix: names one server; a group has its own");
	if (strcmp(u->authority, u->host) != 0)
		return cfg_fail(c, pass, kp,
				"a group's servers have their own ports; write http://%s/...",
				u->host);
	r->group->used = true;
	return 0;
}

void
cfg_warn_unused_groups(struct cctx *c, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->ngroups; i++)
		if (!cfg->groups[i].used)
			cfg_warn(c, cfg->groups[i].line, cfg->groups[i].col,
				 "upstreams.%s: no route passes to this group",
				 cfg->groups[i].name);
}

/* The reverse mappings of a group route: its host, then every server's URL. */
size_t
cfg_group_reverse(const struct route *r, struct reverse_map *out)
{
	const struct server_group *g = r->group;
	size_t n = 0;
	const char *why;

	for (size_t i = 0; i <= g->nservers; i++) {
		const char *auth = i == 0 ? g->host : g->servers[i - 1].authority;
		char *url;

		if (auth == NULL || (i > 0 && g->servers[i - 1].unix_path != NULL))
			continue;
		url = xasprintf("%s://%s%s", r->upstream.scheme, auth, r->upstream.path);
		if (out != NULL) {
			if (url_parse(url, &out[n].upstream, &why) == 0)
				out[n].public_path = xstrdup(r->kind == ROUTE_PATH ? r->path : "");
			else
				n--; /* cannot happen: the parts were checked */
		}
		n++;
		xfree(url);
	}
	return n;
}
