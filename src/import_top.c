/*
 * import_top.c: the top-level keys of the imported YAML other than routes:
 * listen (with the certificates of mod_ssl virtual hosts), log, limits,
 * timeouts, forwarded, access (the main server's <Proxy *>), upstreams
 * (balancers, SPEC section 12) and reverse (ProxyPassReverse that no route
 * carries), in the order portico.yaml(5) lists them.
 */
#include <ctype.h>
#include <string.h>

#include "import_int.h"

/* ---- balancers ---- */

/* The main server (0) and the virtual hosts (1..n). */
static struct imp_server *
server_at(struct imp *im, size_t i)
{
	return i == 0 ? im->main : im->vhosts[i - 1];
}

static bool
group_taken(struct imp *im, const char *name, const struct imp_balancer *self)
{
	for (size_t v = 0; v <= im->nvhosts; v++) {
		struct imp_server *s = server_at(im, v);

		for (size_t i = 0; i < s->nbalancers; i++)
			if (s->balancers[i] != self && s->balancers[i]->group != NULL &&
			    strcmp(s->balancers[i]->group, name) == 0)
				return true;
	}
	return false;
}

const char *
imp_balancer_group(struct imp *im, struct imp_balancer *b)
{
	char *base;

	if (b->group != NULL)
		return b->group;
	b->used = true;
	base = xstrdup(b->name);
	for (char *p = base; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			*p = '-';
	b->group = xstrdup(base);
	for (int n = 2; group_taken(im, b->group, b); n++) {
		xfree(b->group);
		b->group = xasprintf("%s-%d", base, n);
	}
	xfree(base);
	return b->group;
}

static struct ynode *
member_yaml(const struct imp_member *m)
{
	struct ynode *item;
	char w[32];

	if (m->weight <= 1 && !m->backup) {
		item = ynode_scalar(m->address);
		ynode_source(item, m->d);
		return item;
	}
	item = ynode_map();
	ynode_source(item, m->d);
	ynode_put(item, "address", ynode_scalar(m->address));
	if (m->weight > 1) {
		snprintf(w, sizeof(w), "%ld", m->weight);
		ynode_put(item, "weight", ynode_raw(w));
	}
	if (m->backup)
		ynode_put(item, "backup", ynode_raw("true"));
	return item;
}

static void
balancer_policy(struct imp_balancer *b, struct ynode *g, size_t nservers)
{
	struct ynode *n, *passive;
	char text[32];
	char *d;

	if (b->balance != NULL) {
		n = ynode_put(g, "balance", ynode_scalar(b->balance));
		ynode_source(n, b->balance_d);
	}
	snprintf(text, sizeof(text), "%ld", b->retries >= 0 ? b->retries : (long)nservers - 1);
	n = ynode_put(g, "retries", ynode_raw(text));
	if (b->retries >= 0)
		ynode_source(n, b->retries_d);
	else
		ynode_comment(n, "Apache's default maxattempts: one less than the members");
	passive = ynode_put(g, "passive", ynode_map());
	ynode_comment(passive, "as Apache: one failure puts a member in error state for its "
			       "retry= time (default 60 s)");
	ynode_put(passive, "failures", ynode_raw("1"));
	d = imp_duration((uint64_t)(b->down_s > 0 ? b->down_s : 60) * 1000);
	n = ynode_put(passive, "down", ynode_scalar(d));
	xfree(d);
	if (b->down_s > 0)
		ynode_source(n, b->down_d);
}

static void
balancer_yaml(struct imp *im, struct imp_balancer *b, struct ynode *ups)
{
	struct ynode *g = ynode_map(), *servers;
	const char *scheme = NULL;
	size_t n = 0;

	ynode_source(g, b->d);
	servers = ynode_put(g, "servers", ynode_seq());
	for (size_t i = 0; i < b->nmembers; i++) {
		struct imp_member *m = &b->members[i];

		if (m->skip)
			continue;
		if (scheme != NULL && strcmp(scheme, m->scheme) != 0) {
			imp_report(im, m->d,
				   "its scheme differs from the first member's; a portico "
				   "group has one scheme");
			continue;
		}
		scheme = m->scheme;
		ynode_push(servers, member_yaml(m));
		n++;
	}
	balancer_policy(b, g, n);
	ynode_put(ups, b->group, g);
}

void
imp_build_upstreams(struct imp *im)
{
	struct ynode *ups = ynode_map();

	for (size_t v = 0; v <= im->nvhosts; v++) {
		struct imp_server *s = server_at(im, v);

		for (size_t i = 0; i < s->nbalancers; i++) {
			struct imp_balancer *b = s->balancers[i];

			if (b->used)
				balancer_yaml(im, b, ups);
			else if (b->d != NULL)
				imp_report_part(im, b->d,
						"no ProxyPass sends requests to "
						"balancer://%s",
						b->name);
		}
	}
	if (ups->n > 0) {
		ynode_comment(ups, "balancers (mod_proxy_balancer) as upstream groups: a route "
				   "whose pass names a group sends to one of its servers");
		ynode_put(im->doc, "upstreams", ups);
	} else {
		ynode_free(ups);
	}
}

/* ---- listen ---- */

static struct imp_listen *
listen_for_port(struct imp *im, int port, size_t *from)
{
	for (size_t i = *from; i < im->nlistens; i++)
		if (port == 0 || im->listens[i].port == port) {
			*from = i + 1;
			return &im->listens[i];
		}
	return NULL;
}

static void
add_certificate(struct imp_listen *l, const char *cert, const char *key, adir *cd, adir *kd,
		adir *engine)
{
	struct ynode *certs, *item;

	if (l->tls == NULL) {
		l->tls = ynode_map();
		l->tls_d = engine;
		ynode_put(l->tls, "certificates", ynode_seq());
	}
	certs = ynode_get(l->tls, "certificates");
	for (size_t i = 0; i < certs->n; i++)
		if (strcmp(ynode_get(certs->items[i], "cert")->value, cert) == 0)
			return;
	item = ynode_map();
	if (certs->n == 0)
		ynode_comment(item, "the first is the default; portico chooses the others by the "
				    "names in each certificate (SNI)");
	ynode_source(item, engine);
	ynode_source(ynode_put(item, "cert", ynode_scalar(cert)), cd);
	ynode_source(ynode_put(item, "key", ynode_scalar(key)), kd ? kd : cd);
	ynode_push(certs, item);
}

static void
server_tls(struct imp *im, struct imp_server *s)
{
	const struct imp_flag *ssl = s->ssl.v != TRI_UNSET ? &s->ssl : &im->main->ssl;
	const char *cert = s->cert ? s->cert : im->main->cert;
	const char *key = s->cert ? s->key : im->main->key;
	adir *cd = s->cert ? s->cert_d : im->main->cert_d;
	adir *kd = s->cert ? s->key_d : im->main->key_d;
	bool found = false;

	if (ssl->v != TRI_ON) {
		if (s->cert_d != NULL)
			imp_report(im, s->cert_d, "SSLEngine is not on in this server");
		return;
	}
	if (cert == NULL) {
		imp_report(im, ssl->d, "no SSLCertificateFile for this server");
		return;
	}
	for (size_t p = 0; p < (s->nports ? s->nports : 1); p++) {
		size_t from = 0;
		struct imp_listen *l;

		while ((l = listen_for_port(im, s->nports ? s->ports[p] : 0, &from)) != NULL) {
			add_certificate(l, cert, key ? key : cert, cd, key ? kd : cd, ssl->d);
			found = true;
		}
	}
	if (!found)
		imp_report_part(im, ssl->d, "no Listen for the port of this server");
}

static void
check_plain_vhosts(struct imp *im)
{
	for (size_t v = 0; v < im->nvhosts; v++) {
		struct imp_server *s = im->vhosts[v];
		const struct imp_flag *ssl = s->ssl.v != TRI_UNSET ? &s->ssl : &im->main->ssl;

		if (ssl->v == TRI_ON)
			continue;
		for (size_t p = 0; p < s->nports; p++) {
			size_t from = 0;
			struct imp_listen *l;

			while ((l = listen_for_port(im, s->ports[p], &from)) != NULL)
				if (l->tls != NULL && s->ports[p] != 0)
					imp_report_part(im, s->d,
							"shares port %d with TLS virtual hosts; "
							"portico's listener there speaks TLS",
							s->ports[p]);
		}
	}
}

static void
build_listen(struct imp *im)
{
	struct ynode *seq = ynode_put(im->doc, "listen", ynode_seq());

	if (im->nvhosts == 0)
		server_tls(im, im->main);
	for (size_t v = 0; v < im->nvhosts; v++)
		server_tls(im, im->vhosts[v]);
	check_plain_vhosts(im);
	for (size_t i = 0; i < im->nlistens; i++) {
		struct imp_listen *l = &im->listens[i];
		struct ynode *item;

		if (l->tls == NULL) {
			item = ynode_scalar(l->address);
		} else {
			item = ynode_map();
			ynode_put(item, "address", ynode_scalar(l->address));
			ynode_put(item, "tls", l->tls);
			l->tls = NULL;
		}
		ynode_source(item, l->d);
		ynode_push(seq, item);
	}
	if (im->nlistens == 0) {
		struct ynode *item = ynode_push(seq, ynode_scalar("*:80"));

		ynode_comment(item, "no Listen in the Apache configuration: port 80, as its "
				    "default configuration has");
		fprintf(im->report,
			"portico import: %s: no Listen directive; the result listens "
			"on *:80\n",
			im->opt->input);
		im->stats.reported++;
	}
}

/* ---- global settings ---- */

static void
put_duration(struct ynode *map, const char *key, uint64_t ms, adir *d)
{
	char *text = imp_duration(ms);

	ynode_source(ynode_put(map, key, ynode_scalar(text)), d);
	xfree(text);
}

static void
build_timeouts(struct imp *im)
{
	struct ynode *t = ynode_map();

	if (im->g.timeout_ms)
		put_duration(t, "client_body", im->g.timeout_ms, im->g.timeout_d);
	if (im->g.idle_ms)
		put_duration(t, "client_idle", im->g.idle_ms, im->g.idle_d);
	if (im->g.read_ms) {
		put_duration(t, "upstream_read", im->g.read_ms, im->g.read_d);
	} else if (im->g.timeout_ms) {
		put_duration(t, "upstream_read", im->g.timeout_ms, im->g.timeout_d);
		ynode_comment(ynode_get(t, "upstream_read"),
			      "Apache's ProxyTimeout defaults to Timeout");
	}
	if (t->n > 0)
		ynode_put(im->doc, "timeouts", t);
	else
		ynode_free(t);
}

/* A vhost's ProxyVia or ProxyAddHeaders: one setting in portico, the main server's. */
static void
check_forwarded(struct imp *im, const struct imp_flag *f, enum tri effective)
{
	if (f->d == NULL)
		return;
	if (f->v == effective)
		imp_imported(im, f->d);
	else
		imp_report(im, f->d,
			   "portico sets this for every route: the main server's value "
			   "is used");
}

static void
build_forwarded(struct imp *im)
{
	struct ynode *f = ynode_map();
	enum tri via = im->main->via.v == TRI_ON ? TRI_ON : TRI_OFF;
	enum tri xfwd = im->main->xfwd.v == TRI_OFF ? TRI_OFF : TRI_ON;

	if (im->main->via.d != NULL) {
		imp_imported(im, im->main->via.d);
		if (via == TRI_ON)
			ynode_source(ynode_put(f, "via", ynode_raw("true")), im->main->via.d);
		else
			imp_note(im, im->main->via.d);
	}
	if (im->main->xfwd.d != NULL) {
		imp_imported(im, im->main->xfwd.d);
		if (xfwd == TRI_OFF)
			ynode_source(ynode_put(f, "x_forwarded", ynode_raw("false")),
				     im->main->xfwd.d);
		else
			imp_note(im, im->main->xfwd.d);
	}
	for (size_t v = 0; v < im->nvhosts; v++) {
		check_forwarded(im, &im->vhosts[v]->via, via);
		check_forwarded(im, &im->vhosts[v]->xfwd, xfwd);
	}
	if (f->n > 0)
		ynode_put(im->doc, "forwarded", f);
	else
		ynode_free(f);
}

static void
build_log_limits(struct imp *im)
{
	char text[32];

	if (im->g.level != NULL) {
		struct ynode *log = ynode_put(im->doc, "log", ynode_map());

		ynode_source(ynode_put(log, "level", ynode_scalar(im->g.level)), im->g.level_d);
	}
	if (im->g.limit_body_d != NULL || im->g.limit_fields_d != NULL) {
		struct ynode *lim = ynode_put(im->doc, "limits", ynode_map());

		if (im->g.limit_body_d != NULL) {
			snprintf(text, sizeof(text), "%llu", (unsigned long long)im->g.limit_body);
			ynode_source(ynode_put(lim, "body_size", ynode_raw(text)),
				     im->g.limit_body_d);
		}
		if (im->g.limit_fields_d != NULL) {
			snprintf(text, sizeof(text), "%llu",
				 (unsigned long long)im->g.limit_fields);
			ynode_source(ynode_put(lim, "header_count", ynode_raw(text)),
				     im->g.limit_fields_d);
		}
	}
}

/* ---- reverse ---- */

static void
reverse_item(struct ynode *seq, const char *path, const char *url, adir *d)
{
	struct ynode *item;

	for (size_t i = 0; i < seq->n; i++)
		if (strcmp(ynode_get(seq->items[i], "path")->value, path) == 0 &&
		    strcmp(ynode_get(seq->items[i], "url")->value, url) == 0) {
			ynode_source(seq->items[i], d);
			return;
		}
	item = ynode_map();
	ynode_source(item, d);
	ynode_put(item, "path", ynode_scalar(path));
	ynode_put(item, "url", ynode_scalar(url));
	ynode_push(seq, item);
}

/* balancer://name/path: one mapping per member. */
static bool
reverse_balancer(struct imp *im, struct imp_server *s, const struct imp_rev *r, struct ynode *seq)
{
	const char *name = r->url + 11, *rest = name + strcspn(name, "/");
	char *bname = xstrndup(name, (size_t)(rest - name));
	struct imp_balancer *b = imp_balancer_find(im, s, bname);
	bool any = false;

	xfree(bname);
	for (size_t i = 0; b != NULL && i < b->nmembers; i++) {
		char *url;

		if (b->members[i].skip)
			continue;
		url = xasprintf("%s://%s%s", b->members[i].scheme, b->members[i].address, rest);
		reverse_item(seq, r->path, url, r->d);
		xfree(url);
		any = true;
	}
	return any;
}

static void
build_reverse(struct imp *im)
{
	struct ynode *seq = ynode_seq();

	for (size_t v = 0; v <= im->nvhosts; v++) {
		struct imp_server *s = server_at(im, v);

		for (size_t i = 0; i < s->nrevs; i++) {
			struct imp_rev *r = s->revs[i];

			if (r->used)
				continue;
			if (strncasecmp(r->url, "balancer://", 11) != 0)
				reverse_item(seq, r->path, r->url, r->d);
			else if (!reverse_balancer(im, s, r, seq)) {
				imp_report(im, r->d, "no BalancerMember defines that balancer");
				continue;
			}
			imp_imported(im, r->d);
		}
	}
	if (seq->n > 0) {
		ynode_comment(seq, "ProxyPassReverse that no route carries; portico applies them "
				   "to every response");
		ynode_put(im->doc, "reverse", seq);
	} else {
		ynode_free(seq);
	}
}

/* ---- the document ---- */

static void
build_header(struct imp *im)
{
	struct ynode *doc = im->doc;

	ynode_comment(doc, "portico.yaml written by `portico import` from %s.", im->opt->input);
	ynode_comment(doc, "Each entry follows the Apache lines it comes from (file:line);");
	ynode_comment(doc, "what could not be carried over was listed on standard error.");
	if (im->nnotes > 0) {
		ynode_comment(doc, "%s", "");
		ynode_comment(doc, "Read, and nothing to write: portico behaves so already:");
	}
	for (size_t i = 0; i < im->nnotes; i++)
		ynode_comment(doc, "  %s:%u: %s", im->notes[i]->file, im->notes[i]->line,
			      im->notes[i]->text);
}

static void
build_access(struct imp *im)
{
	struct ynode *a;
	char *from;

	if (im->global_authz == NULL)
		return;
	a = imp_authz_yaml(&im->global_authz->authz);
	from = xasprintf("from %s (%s:%u), for every route without its own rules",
			 im->global_authz->d->text, im->global_authz->d->file,
			 im->global_authz->d->line);
	ynode_comment_first(a, from);
	xfree(from);
	ynode_put(im->doc, "access", a);
}

static void
build_routes_key(struct imp *im)
{
	if (im->routes->n == 0) {
		struct ynode *r = ynode_map();

		ynode_comment(r, "no ProxyPass or ProxyPassMatch: every request gets 404");
		ynode_put(r, "path", ynode_scalar("/"));
		ynode_put(r, "pass", ynode_raw("off"));
		ynode_push(im->routes, r);
	}
	ynode_put(im->doc, "routes", im->routes);
	im->stats.routes = im->routes->n;
	im->routes = NULL;
}

void
imp_build_top(struct imp *im)
{
	im->doc = ynode_map();
	build_listen(im);
	build_log_limits(im);
	build_timeouts(im);
	build_forwarded(im);
	build_access(im);
	imp_build_upstreams(im);
	build_reverse(im);
	build_routes_key(im);
	build_header(im);
}
