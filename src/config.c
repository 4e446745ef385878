/*
 * config.c: portico.yaml into an immutable, reference-counted snapshot
 * (SPEC section 2): reading the file, building the snapshot (config_walk.c
 * and the files it calls), reference counting and teardown.  The YAML document is walked along the
 * key table of config_keys.h: every key is checked against the table (unknown keys get a "did you
 * mean"), every value is parsed, bounds-checked and stored where its row says, and absent keys get
 * the row's default.  Errors carry the libyaml mark of the offending node: "file:line:col:
 * key.path: message". The -t warnings (shadowed rules, slash mismatches, unverified upstreams, open
 * public listeners) are collected on the snapshot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "portico/group.h"
#include "portico/html.h"
#include "portico/tls.h"

static int
config_build(struct cctx *c, yaml_node_t *root)
{
	struct config *cfg = c->cfg;

	if (root == NULL)
		return cfg_fail(c, NULL, NULL,
				"expected a mapping with listen and routes; got an "
				"empty file");
	if (root->type != YAML_MAPPING_NODE)
		return cfg_fail_expected(c, root, NULL, "a mapping with listen and routes");
	if (cfg_scope_parse(c, "", root, cfg, "") < 0 || cfg_check_admin(c, cfg, root) < 0)
		return -1;
	cfg_reverse_build(cfg);
	cfg_warn_unused_groups(c, cfg);
	cfg->table = route_table_build(cfg->routes, cfg->nroutes); /* aborts rather than fail */
	cfg_warn_shadowed(c, cfg);
	cfg_warn_open_listeners(c, cfg);
	cfg_warnings_move(c, cfg);
	return 0;
}

static char *
yaml_error(const char *file, const yaml_parser_t *p)
{
	const yaml_mark_t *m = p->problem ? &p->problem_mark : &p->mark;

	if (p->error == YAML_READER_ERROR)
		return xasprintf("%s:%zu:%zu: YAML syntax error: %s", file, p->mark.line + 1,
				 p->mark.column + 1, p->problem ? p->problem : "cannot read");
	if (p->context != NULL)
		return xasprintf("%s:%zu:%zu: YAML syntax error: %s (%s started at line %zu, "
				 "column %zu)",
				 file, m->line + 1, m->column + 1, p->problem, p->context,
				 p->context_mark.line + 1, p->context_mark.column + 1);
	return xasprintf("%s:%zu:%zu: YAML syntax error: %s", file, m->line + 1, m->column + 1,
			 p->problem ? p->problem : "invalid document");
}

/* A second document after the first is refused, not silently ignored. */
static int
config_check_single(struct cctx *c, yaml_parser_t *parser)
{
	yaml_document_t extra;
	yaml_node_t *root;

	if (!yaml_parser_load(parser, &extra)) {
		c->err = yaml_error(c->file, parser);
		return -1;
	}
	root = yaml_document_get_root_node(&extra);
	if (root != NULL)
		cfg_fail(c, root, NULL, "expected one YAML document; got a second one");
	yaml_document_delete(&extra);
	return root != NULL ? -1 : 0;
}

/* Reads the YAML document of `f` and builds the snapshot from it. */
static void
config_read(struct cctx *c, FILE *f)
{
	yaml_parser_t parser;
	yaml_document_t doc;

	if (!yaml_parser_initialize(&parser))
		fatal("yaml_parser_initialize: out of memory");
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		c->err = yaml_error(c->file, &parser);
		yaml_parser_delete(&parser);
		return;
	}
	c->doc = &doc;
	if (config_check_single(c, &parser) == 0)
		config_build(c, yaml_document_get_root_node(&doc));
	c->doc = NULL;
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
}

struct config *
config_load(const char *path, char **err)
{
	struct cctx c = {.file = path};
	FILE *f;

	*err = NULL;
	c.cfg = xcalloc(1, sizeof(*c.cfg));
	atomic_init(&c.cfg->refs, 1);
	c.cfg->path = xstrdup(path);
	f = fopen(path, "rb");
	if (f == NULL) {
		c.err = xasprintf("%s: cannot open: %s", path, strerror(errno));
		goto cfg_fail;
	}
	config_read(&c, f);
	fclose(f);
	xfree(c.tls_firsts);
	if (c.err != NULL)
		goto cfg_fail;
	xfree(c.warns);
	return c.cfg;
cfg_fail:
	for (size_t i = 0; i < c.nwarns; i++)
		xfree(c.warns[i].text);
	xfree(c.warns);
	config_unref(c.cfg);
	*err = c.err;
	return NULL;
}

struct config *
config_ref(struct config *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

static void
route_free(struct route *r)
{
	xfree(r->path);
	xfree(r->match);
	pcre2_code_free(r->re);
	xfree(r->pass);
	xfree(r->unix_path);
	url_free(&r->upstream);
	xfree(r->name);
	xfree(r->host);
	for (size_t i = 0; i < r->html_nmaps; i++) {
		xfree(r->html_maps[i].from);
		xfree(r->html_maps[i].to);
	}
	xfree(r->html_maps);
	html_urlmap_free(r->html_urlmap);
	access_list_free(&r->access);
	xfree(r->tls.ca);
	xfree(r->tls.server_name);
	xfree(r->tls.cert);
	xfree(r->tls.key);
}

static void
listen_free(struct config_listen *l)
{
	xfree(l->address);
	for (size_t i = 0; i < l->ncerts; i++) {
		xfree(l->certs[i].cert);
		xfree(l->certs[i].key);
	}
	xfree(l->certs);
	xfree(l->ciphers);
	xfree(l->ciphersuites);
	tls_server_unref(l->tls_server);
	access_list_free(&l->proxy_protocol);
}

static void
config_free(struct config *c)
{
	if (c->table != NULL)
		route_table_free(c->table);
	for (size_t i = 0; i < c->nroutes; i++)
		route_free(&c->routes[i]);
	for (size_t i = 0; i < c->nroute_tls; i++)
		tls_client_unref(c->route_tls[i]);
	xfree(c->routes);
	xfree(c->route_tls);
	for (size_t i = 0; i < c->nreverse; i++) {
		xfree(c->reverse[i].public_path);
		url_free(&c->reverse[i].upstream);
	}
	xfree(c->reverse);
	for (size_t i = 0; i < c->nlisten; i++)
		listen_free(&c->listen[i]);
	xfree(c->listen);
	for (size_t i = 0; i < c->nhosts; i++) {
		xfree(c->hosts[i].name);
		xfree(c->hosts[i].addr);
	}
	xfree(c->hosts);
	for (size_t i = 0; i < c->ngroups; i++)
		group_free(&c->groups[i]);
	xfree(c->groups);
	access_list_free(&c->access);
	access_list_free(&c->forwarded.trusted);
	for (size_t i = 0; i < c->nwarnings; i++)
		xfree(c->warnings[i]);
	xfree(c->warnings);
	xfree(c->user);
	xfree(c->group);
	xfree(c->server_name);
	xfree(c->log.access);
	xfree(c->log.error);
	xfree(c->admin.listen);
	xfree(c->path);
	xfree(c);
}

void
config_unref(struct config *c)
{
	if (c == NULL)
		return;
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		config_free(c);
}

struct tls_client *
config_route_tls(const struct config *c, const struct route *r)
{
	return r->index < c->nroute_tls ? c->route_tls[r->index] : NULL;
}

const struct access_list *
config_route_access(const struct config *c, const struct route *r)
{
	const struct access_list *l = r->has_access   ? &r->access
				      : c->has_access ? &c->access
						      : NULL;

	return l != NULL && l->n > 0 ? l : NULL;
}
