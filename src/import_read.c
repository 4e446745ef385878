/*
 * import_read.c: walks the Apache tree (apacheconf.h) into the import model
 * (import_int.h): the main server and its <VirtualHost>s, their scopes
 * (<Location>, <LocationMatch>, <Proxy>, <ProxyMatch>), ProxyPass rules,
 * reverse mappings, cookie mappings, balancers and the global settings.
 *
 * One table maps directive names to handlers and the contexts they are
 * taken in (the handlers of servers, listeners, TLS, balancers and global
 * settings are in import_server.c).  Every directive gets a verdict here
 * or, for those whose fate depends on the routes (ProxyPassReverse, cookie
 * mappings), when the routes are built.  A directive with no handler is
 * reported with the reason from the table of known directives, or "no
 * portico equivalent".
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "import_int.h"

struct handler {
	const char *name;
	int cx;
	void (*fn)(struct imp *im, struct walk *w, adir *d);
};

/* ---- small parsers ---- */

static bool
eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

static int
parse_on_off(const char *s)
{
	if (eq(s, "on"))
		return TRI_ON;
	if (eq(s, "off"))
		return TRI_OFF;
	return TRI_UNSET;
}

bool
imp_parse_seconds(const char *s, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"", 1000},     {"s", 1000},    {"ms", 1},	     {"mi", 60000},
		     {"min", 60000}, {"h", 3600000}, {"hr", 3600000}};
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)s[0]))
		return false;
	v = strtoull(s, &end, 10);
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (eq(end, units[i].unit) && v > 0 && v <= 7ull * 24 * 3600 * 1000) {
			*ms = v * units[i].ms;
			return *ms <= 7ull * 24 * 3600 * 1000;
		}
	return false;
}

char *
imp_duration(uint64_t ms)
{
	if (ms % 3600000 == 0)
		return xasprintf("%lluh", (unsigned long long)(ms / 3600000));
	if (ms % 60000 == 0)
		return xasprintf("%llum", (unsigned long long)(ms / 60000));
	if (ms % 1000 == 0)
		return xasprintf("%llus", (unsigned long long)(ms / 1000));
	return xasprintf("%llums", (unsigned long long)ms);
}

bool
imp_url_scheme(const char *url, const char **rest, bool *tls)
{
	size_t n = strlen(url);

	if (ascii_has_prefix_case(url, n, "http://")) {
		*rest = url + 7;
		*tls = false;
		return true;
	}
	if (ascii_has_prefix_case(url, n, "https://")) {
		*rest = url + 8;
		*tls = true;
		return true;
	}
	return false;
}

const char *
imp_url_desocket(const char *url)
{
	const char *bar;

	if (url == NULL || strncasecmp(url, "unix:", 5) != 0 || (bar = strchr(url, '|')) == NULL)
		return url;
	return bar + 1;
}

bool
imp_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)s[0]))
		return false;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Splits "key=value"; false when there is no '='. */
bool
imp_split_param(const char *arg, char *key, size_t keysize, const char **value)
{
	const char *eqs = strchr(arg, '=');

	if (eqs == NULL || eqs == arg || (size_t)(eqs - arg) >= keysize)
		return false;
	memcpy(key, arg, (size_t)(eqs - arg));
	key[eqs - arg] = '\0';
	*value = eqs + 1;
	return true;
}

/* ---- the model ---- */

static struct imp_scope *
scope_new(struct imp_server *s, enum scope_kind kind, adir *d, const char *arg)
{
	struct imp_scope *sc = xcalloc(1, sizeof(*sc));

	sc->kind = kind;
	sc->d = d;
	sc->arg = arg;
	sc->server = s;
	s->scopes = xgrow(s->scopes, &s->capscopes, s->nscopes, sizeof(*s->scopes));
	s->scopes[s->nscopes++] = sc;
	return sc;
}

static struct imp_server *
server_new(adir *d)
{
	struct imp_server *s = xcalloc(1, sizeof(*s));

	s->d = d;
	scope_new(s, SC_SERVER, NULL, "/");
	return s;
}

void
imp_server_free(struct imp_server *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nscopes; i++) {
		xfree(s->scopes[i]->maps);
		imp_authz_free(&s->scopes[i]->authz);
		xfree(s->scopes[i]);
	}
	for (size_t i = 0; i < s->npasses; i++) {
		xfree(s->passes[i]->pass);
		xfree(s->passes[i]);
	}
	for (size_t i = 0; i < s->nlocpasses; i++) {
		xfree(s->locpasses[i]->pass);
		xfree(s->locpasses[i]);
	}
	for (size_t i = 0; i < s->nrevs; i++)
		xfree(s->revs[i]);
	for (size_t i = 0; i < s->ncookies; i++)
		xfree(s->cookies[i]);
	for (size_t i = 0; i < s->nbalancers; i++) {
		struct imp_balancer *b = s->balancers[i];

		for (size_t k = 0; k < b->nmembers; k++) {
			xfree(b->members[k].scheme);
			xfree(b->members[k].address);
		}
		xfree(b->members);
		xfree(b->name);
		xfree(b->group);
		xfree(b);
	}
	for (size_t i = 0; i < s->nnames; i++)
		xfree(s->names[i].host);
	xfree(s->scopes);
	xfree(s->passes);
	xfree(s->locpasses);
	xfree(s->revs);
	xfree(s->cookies);
	xfree(s->balancers);
	xfree(s->names);
	xfree(s->ports);
	xfree(s->cert);
	xfree(s->key);
	xfree(s->proxy_ca);
	xfree(s->proxy_cert);
	xfree(s->main_name);
	xfree(s);
}

struct imp_balancer *
imp_balancer_find(struct imp *im, struct imp_server *s, const char *name)
{
	for (size_t i = 0; s != NULL && i < s->nbalancers; i++)
		if (strcasecmp(s->balancers[i]->name, name) == 0)
			return s->balancers[i];
	if (s != NULL && s != im->main)
		return imp_balancer_find(im, im->main, name);
	return NULL;
}

/* The balancer named by "balancer://name[/...]" in `s`, created when new. */
struct imp_balancer *
imp_balancer_get(struct imp_server *s, const char *url, adir *d)
{
	const char *name = url + strlen("balancer://");
	size_t len = strcspn(name, "/");
	struct imp_balancer *b;

	for (size_t i = 0; i < s->nbalancers; i++)
		if (strlen(s->balancers[i]->name) == len &&
		    strncasecmp(s->balancers[i]->name, name, len) == 0)
			return s->balancers[i];
	b = xcalloc(1, sizeof(*b));
	b->name = xstrndup(name, len);
	for (char *p = b->name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	b->d = d;
	b->server = s;
	b->retries = -1;
	b->down_s = -1;
	s->balancers = xgrow(s->balancers, &s->capbalancers, s->nbalancers, sizeof(*s->balancers));
	s->balancers[s->nbalancers++] = b;
	return b;
}

bool
imp_is_balancer_url(const char *url)
{
	return ascii_has_prefix_case(url, strlen(url), "balancer://") && url[11] != '\0' &&
	       url[11] != '/';
}

/* ---- reporting whole subtrees ---- */

static const char *
section_reason(const char *name)
{
	static const struct {
		const char *name, *reason;
	} reasons[] = {
	    {"Directory", "portico serves no local files"},
	    {"DirectoryMatch", "portico serves no local files"},
	    {"Files", "portico serves no local files"},
	    {"FilesMatch", "portico serves no local files"},
	    {"If", "expressions are not evaluated"},
	    {"ElseIf", "expressions are not evaluated"},
	    {"Else", "expressions are not evaluated"},
	    {"Limit", "portico does not restrict access by method"},
	    {"LimitExcept", "portico does not restrict access by method"},
	    {"Macro", "mod_macro definitions are not expanded"},
	    {"VirtualHost", "a <VirtualHost> is only read at the top level"},
	    {"Location", "sections are only read at server level"},
	    {"LocationMatch", "sections are only read at server level"},
	    {"Proxy", "sections are only read at server level"},
	    {"ProxyMatch", "sections are only read at server level"},
	    {"RequireAll", "authorization sections are only read in <Location> and <Proxy>"},
	    {"RequireAny", "authorization sections are only read in <Location> and <Proxy>"},
	    {"RequireNone", "authorization sections are only read in <Location> and <Proxy>"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		if (eq(name, reasons[i].name))
			return reasons[i].reason;
	return "no portico equivalent";
}

/* Reports `d` and everything in it: they are inside a section portico cannot express. */
static void
report_tree(struct imp *im, adir *d, const char *reason)
{
	imp_report(im, d, "%s", reason);
	for (size_t i = 0; i < d->nchildren; i++) {
		char *why = xasprintf("inside <%s> (%s:%u): %s", d->name, d->file, d->line, reason);

		report_tree(im, d->children[i], why);
		xfree(why);
	}
}

/* ---- handlers: servers, names, listeners ---- */

bool
imp_want_args(struct imp *im, adir *d, size_t min, size_t max)
{
	if (d->nargs >= min && d->nargs <= max)
		return true;
	if (min == max)
		imp_report(im, d, "expects %zu argument%s", min, min == 1 ? "" : "s");
	else
		imp_report(im, d, "expects %zu to %zu arguments", min, max);
	return false;
}

/* ---- handlers: ProxyPass and friends ---- */

static void
pass_param(struct imp *im, struct imp_pass *p, adir *d, const char *arg)
{
	char key[32];
	const char *v;
	uint64_t ms;

	if (eq(arg, "nocanon") || eq(arg, "interpolate") || eq(arg, "noquery")) {
		imp_report_part(
		    im, d, "%s: portico always normalizes the path and forwards the query", arg);
	} else if (!imp_split_param(arg, key, sizeof(key), &v)) {
		imp_report_part(im, d, "%s: not a parameter", arg);
	} else if ((eq(key, "timeout") || eq(key, "connectiontimeout")) &&
		   imp_parse_seconds(v, &ms) && ms <= 3600000) {
		*(eq(key, "timeout") ? &p->read_ms : &p->connect_ms) = ms;
	} else if (eq(key, "retry") && imp_parse_long(v, 0, 86400, &p->retry_s)) {
		p->retry = true;
	} else if (eq(key, "lbmethod") && p->url != NULL && imp_is_balancer_url(p->url)) {
		p->lbmethod = v;
	} else if (eq(key, "maxattempts") && p->url != NULL && imp_is_balancer_url(p->url) &&
		   imp_parse_long(v, 0, 100, &p->maxattempts)) {
	} else {
		imp_report_part(im, d, "%s: no portico equivalent", arg);
	}
}

/* apr_fnmatch_test(): whether httpd sees wildcards in `s`. */
static bool
fnmatch_test(const char *s)
{
	int nesting = 0;

	for (; *s; s++) {
		if (*s == '?' || *s == '*')
			return true;
		if (*s == '\\') {
			if (*++s == '\0')
				return false;
			continue;
		}
		if (*s == '[')
			nesting++;
		else if (*s == ']' && nesting)
			return true;
	}
	return false;
}

static bool
check_pass_url(struct imp *im, adir *d, struct imp_pass *p)
{
	const char *rest;
	const char *url = imp_url_desocket(p->url); /* past "unix:/path|" */
	bool tls;
	size_t n = strlen(p->url);

	if (imp_is_balancer_url(p->url))
		return true;
	if (url != p->url) { /* unix:/path|http://host/path, as portico takes it too */
		if (p->url[5] != '/' || url - 1 - (p->url + 5) > 107 ||
		    !imp_url_scheme(url, &rest, &tls)) {
			imp_report(im, d,
				   "%s: portico takes unix:/absolute/path|http://host/path, the "
				   "socket path at most 107 bytes",
				   p->url);
			return false;
		}
		/* httpd reads the scheme in any case; portico's pass takes "unix:". */
		p->pass = xasprintf("unix:%s", p->url + 5);
	} else if (imp_url_scheme(p->url, &rest, &tls)) {
		p->pass = xstrdup(p->url);
	} else if (ascii_has_prefix_case(p->url, n, "ws://") ||
		   ascii_has_prefix_case(p->url, n, "wss://")) {
		tls = p->url[2] == 's' || p->url[2] == 'S';
		p->pass = xasprintf("%s://%s", tls ? "https" : "http", p->url + (tls ? 6 : 5));
		p->ws = true;
	} else {
		imp_report(im, d,
			   "%s: portico proxies to http://, https:// and unix:/path|http:// "
			   "upstreams only",
			   p->url);
		return false;
	}
	if (!yaml_text_ok(p->pass) || strpbrk(p->pass, " #") != NULL) {
		imp_report(im, d, "%s: not a URL portico can take", p->url);
		return false;
	}
	return true;
}

static void
add_pass(struct imp *im, struct walk *w, adir *d, bool match)
{
	bool in_dir = (w->cx & CX_DIR) != 0;
	size_t first = in_dir ? 0 : 1;
	struct imp_pass *p;

	if (in_dir && w->scope->kind != SC_LOCATION && w->scope->kind != SC_LOCATIONMATCH) {
		imp_report(im, d, "only read at server level and in <Location>, <LocationMatch>");
		return;
	}
	if (in_dir && !match && fnmatch_test(w->scope->arg))
		match = true; /* httpd compiles a section argument with wildcards as a regex */
	if (in_dir && w->scope->kind == SC_LOCATIONGLOB) {
		imp_report(im, d,
			   "a <Location> with wildcards: httpd matches it as a glob and "
			   "then as a regex; portico cannot do both");
		return;
	}
	if (in_dir && w->scope->kind == SC_LOCATIONMATCH && !match) {
		imp_report(im, d,
			   "httpd takes this <LocationMatch> pattern as a literal path "
			   "here (it has no *, ? or [...]), which never matches");
		return;
	}
	if (!imp_want_args(im, d, first + 1, SIZE_MAX))
		return;
	p = xcalloc(1, sizeof(*p));
	p->d = d;
	p->scope = w->scope;
	p->maxattempts = -1;
	p->path = in_dir ? w->scope->arg : d->args[0];
	p->regex = match;
	p->url = strcmp(d->args[first], "!") == 0 ? NULL : d->args[first];
	if (!yaml_text_ok(p->path) || (!p->regex && p->path[0] != '/') ||
	    (!p->regex && strpbrk(p->path, " #") != NULL)) {
		imp_report(im, d, "\"%s\" is not a path portico can match", p->path);
		xfree(p);
		return;
	}
	if (p->url != NULL && !check_pass_url(im, d, p)) {
		xfree(p);
		return;
	}
	imp_imported(im, d);
	for (size_t i = first + 1; i < d->nargs; i++)
		pass_param(im, p, d, d->args[i]);
	if (in_dir) {
		w->server->locpasses = xgrow(w->server->locpasses, &w->server->caplocpasses,
					     w->server->nlocpasses, sizeof(p));
		w->server->locpasses[w->server->nlocpasses++] = p;
	} else {
		w->server->passes =
		    xgrow(w->server->passes, &w->server->cappasses, w->server->npasses, sizeof(p));
		w->server->passes[w->server->npasses++] = p;
	}
}

static void
h_proxy_pass(struct imp *im, struct walk *w, adir *d)
{
	add_pass(im, w, d, false);
}

static void
h_proxy_pass_match(struct imp *im, struct walk *w, adir *d)
{
	add_pass(im, w, d, true);
}

static void
h_reverse(struct imp *im, struct walk *w, adir *d)
{
	bool in_dir = (w->cx & CX_DIR) != 0;
	size_t first = in_dir ? 0 : 1;
	struct imp_rev *r;
	const char *rest;
	bool tls;

	if (in_dir && w->scope->kind != SC_LOCATION) {
		imp_report(im, d, "only read at server level and in <Location>");
		return;
	}
	if (!imp_want_args(im, d, first + 1, first + 2))
		return;
	if (d->nargs == first + 2) {
		imp_report(im, d, "%s: portico does not interpolate", d->args[first + 1]);
		return;
	}
	if (!imp_url_scheme(d->args[first], &rest, &tls) && !imp_is_balancer_url(d->args[first])) {
		imp_report(im, d, "%s: portico maps http:// and https:// URLs", d->args[first]);
		return;
	}
	if (!yaml_text_ok(d->args[first]) || (!in_dir && d->args[0][0] != '/')) {
		imp_report(im, d, "not a path and a URL portico can take");
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->d = d;
	r->scope = w->scope;
	r->path = in_dir ? w->scope->arg : d->args[0];
	r->url = d->args[first];
	w->server->revs = xgrow(w->server->revs, &w->server->caprevs, w->server->nrevs, sizeof(r));
	w->server->revs[w->server->nrevs++] = r;
}

static void
h_cookie(struct imp *im, struct walk *w, adir *d)
{
	struct imp_cookie *c;

	if (!imp_want_args(im, d, 2, 3))
		return;
	if (d->nargs == 3) {
		imp_report(im, d, "%s: portico does not interpolate", d->args[2]);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->scope = w->scope;
	c->domain = eq(d->name, "ProxyPassReverseCookieDomain");
	c->internal = d->args[0];
	c->public = d->args[1];
	w->server->cookies =
	    xgrow(w->server->cookies, &w->server->capcookies, w->server->ncookies, sizeof(c));
	w->server->cookies[w->server->ncookies++] = c;
}

/* On|Off into `f`; false (reported) otherwise. */
bool
imp_set_flag(struct imp *im, adir *d, struct imp_flag *f)
{
	int v;

	if (!imp_want_args(im, d, 1, 1))
		return false;
	v = parse_on_off(d->args[0]);
	if (v == TRI_UNSET) {
		imp_report(im, d, "expects On or Off");
		return false;
	}
	f->v = (enum tri)v;
	f->d = d;
	return true;
}

static void
h_preserve_host(struct imp *im, struct walk *w, adir *d)
{
	if (imp_set_flag(im, d, &w->scope->preserve_host)) {
		w->scope->has_settings = true;
		imp_imported(im, d);
	}
}

static void
h_proxy_timeout(struct imp *im, struct walk *w, adir *d)
{
	uint64_t ms;

	if (!imp_want_args(im, d, 1, 1))
		return;
	if (!imp_parse_seconds(d->args[0], &ms) || ms > 24 * 3600000ull) {
		imp_report(im, d, "expects a number of seconds up to a day");
		return;
	}
	if (w->server == im->main) {
		im->g.read_ms = ms;
		im->g.read_d = d;
	} else {
		w->server->read_ms = ms;
		w->server->read_d = d;
	}
	imp_imported(im, d);
}

static void
h_via(struct imp *im, struct walk *w, adir *d)
{
	if (!imp_want_args(im, d, 1, 1))
		return;
	if (eq(d->args[0], "block")) {
		imp_report(im, d, "portico does not remove Via headers");
		return;
	}
	if (!eq(d->args[0], "on") && !eq(d->args[0], "off") && !eq(d->args[0], "full")) {
		imp_report(im, d, "expects On, Off, Full or Block");
		return;
	}
	w->server->via.v = eq(d->args[0], "off") ? TRI_OFF : TRI_ON;
	w->server->via.d = d;
	/* The verdict waits for the main server's value: it is one setting in portico. */
}

static void
h_add_headers(struct imp *im, struct walk *w, adir *d)
{
	if (w->cx & CX_DIR) {
		imp_report(im, d, "portico adds X-Forwarded-* for every route or for none");
		return;
	}
	imp_set_flag(im, d, &w->server->xfwd);
}

static void
h_proxy_requests(struct imp *im, struct walk *w, adir *d)
{
	(void)w;
	if (!imp_want_args(im, d, 1, 1))
		return;
	if (parse_on_off(d->args[0]) == TRI_OFF)
		imp_note(im, d);
	else
		imp_report(im, d, "portico is never a forward proxy");
}

/* httpd 2.4 still merges the main server's ProxyPass rules (mod_proxy merge_proxy_config). */
static void
h_inherit(struct imp *im, struct walk *w, adir *d)
{
	if (imp_set_flag(im, d, &w->server->inherit))
		imp_note(im, d);
}

/* ---- handlers: mod_proxy_html ---- */

static void
h_html_flag(struct imp *im, struct walk *w, adir *d)
{
	bool ext = eq(d->name, "ProxyHTMLExtended");

	if (imp_set_flag(im, d, ext ? &w->scope->html_extended : &w->scope->html)) {
		w->scope->has_settings = true;
		imp_imported(im, d);
	}
}

static void
h_html_map(struct imp *im, struct walk *w, adir *d)
{
	struct imp_scope *sc = w->scope;

	if (!imp_want_args(im, d, 2, 4))
		return;
	if (d->nargs >= 3 && strpbrk(d->args[2], "R") != NULL) {
		imp_report(im, d, "regular-expression maps (flag R) have no portico equivalent");
		return;
	}
	if (!yaml_text_ok(d->args[0]) || !yaml_text_ok(d->args[1])) {
		imp_report(im, d, "not text portico can take");
		return;
	}
	sc->maps = xgrow(sc->maps, &sc->capmaps, sc->nmaps, sizeof(*sc->maps));
	sc->maps[sc->nmaps++] = (struct imp_map){d, d->args[0], d->args[1]};
	sc->has_settings = true;
	if (d->nargs >= 3)
		imp_report_part(im, d,
				"flags %s%s%s: portico compares the start of each URL "
				"case-sensitively, first map wins",
				d->args[2], d->nargs == 4 ? " and condition " : "",
				d->nargs == 4 ? d->args[3] : "");
	else
		imp_imported(im, d);
}

/* ---- handlers: access ---- */

static void
h_authz(struct imp *im, struct walk *w, adir *d)
{
	if (!(w->cx & CX_DIR)) {
		imp_report(im, d, "access rules are read in <Location> and <Proxy> sections");
		return;
	}
	imp_authz_add(im, w->scope, d);
	w->scope->has_settings = true;
}

/* ---- handlers: mod_ssl ---- */

static void
h_note(struct imp *im, struct walk *w, adir *d)
{
	(void)w;
	imp_note(im, d);
}

static void
h_reader(struct imp *im, struct walk *w, adir *d)
{
	(void)w;
	imp_reader(im, d);
}

/* ---- handlers: balancers ---- */

/* ---- handlers: global settings ---- */

static const struct handler handlers[] = {
    {"Listen", CX_MAIN, imp_on_listen},
    {"ServerName", CX_SERVER, imp_on_server_name},
    {"ServerAlias", CX_VHOST, imp_on_server_alias},
    {"ProxyPass", CX_ANY, h_proxy_pass},
    {"ProxyPassMatch", CX_ANY, h_proxy_pass_match},
    {"ProxyPassReverse", CX_ANY, h_reverse},
    {"ProxyPassReverseCookiePath", CX_ANY, h_cookie},
    {"ProxyPassReverseCookieDomain", CX_ANY, h_cookie},
    {"ProxyPreserveHost", CX_ANY, h_preserve_host},
    {"ProxyTimeout", CX_SERVER, h_proxy_timeout},
    {"ProxyVia", CX_SERVER, h_via},
    {"ProxyAddHeaders", CX_ANY, h_add_headers},
    {"ProxyRequests", CX_SERVER, h_proxy_requests},
    {"ProxyPassInherit", CX_SERVER, h_inherit},
    {"ProxyHTMLEnable", CX_ANY, h_html_flag},
    {"ProxyHTMLExtended", CX_ANY, h_html_flag},
    {"ProxyHTMLURLMap", CX_ANY, h_html_map},
    {"Require", CX_ANY, h_authz},
    {"Order", CX_ANY, h_authz},
    {"Allow", CX_ANY, h_authz},
    {"Deny", CX_ANY, h_authz},
    {"Satisfy", CX_ANY, h_authz},
    {"SSLEngine", CX_SERVER, imp_on_ssl_engine},
    {"SSLCertificateFile", CX_SERVER, imp_on_ssl_file},
    {"SSLCertificateKeyFile", CX_SERVER, imp_on_ssl_file},
    {"SSLProxyEngine", CX_SERVER, h_note},
    {"SSLProxyVerify", CX_SERVER, imp_on_ssl_proxy_verify},
    {"SSLProxyCACertificateFile", CX_SERVER, imp_on_ssl_proxy_file},
    {"SSLProxyMachineCertificateFile", CX_SERVER, imp_on_ssl_proxy_file},
    {"SSLProxyCheckPeerName", CX_SERVER, imp_on_ssl_proxy_check},
    {"SSLProxyCheckPeerCN", CX_SERVER, imp_on_ssl_proxy_check},
    {"BalancerMember", CX_ANY, imp_on_member},
    {"ProxySet", CX_ANY, imp_on_proxy_set},
    {"Timeout", CX_SERVER, imp_on_duration},
    {"KeepAliveTimeout", CX_SERVER, imp_on_duration},
    {"LogLevel", CX_SERVER, imp_on_log_level},
    {"LimitRequestBody", CX_ANY, imp_on_limit},
    {"LimitRequestFields", CX_SERVER, imp_on_limit},
    {"LoadModule", CX_ANY, h_reader},
    {"LoadFile", CX_ANY, h_reader},
};

/* Why a directive without a handler is not imported. */
static const struct {
	const char *prefix; /* a name, or a prefix ending in '*' */
	const char *reason;
} reasons[] = {
    {"DocumentRoot", "portico serves no local files; a request no rule matches gets 404"},
    {"Alias*", "portico serves no local files"},
    {"ScriptAlias*", "portico serves no local files"},
    {"DirectoryIndex", "portico serves no local files"},
    {"Options", "portico serves no local files"},
    {"AllowOverride*", "portico serves no local files"},
    {"AccessFileName", "portico serves no local files"},
    {"Add*", "portico serves no local files"},
    {"TypesConfig", "portico serves no local files"},
    {"IndexOptions", "portico serves no local files"},
    {"Redirect*", "portico does not answer with redirects"},
    {"Rewrite*", "mod_rewrite rules are not translated"},
    {"Header", "portico does not change response headers beyond SPEC sections 5 and 6"},
    {"RequestHeader", "portico does not change request headers beyond SPEC section 4"},
    {"ErrorLog", "portico's logs are set with log.error and log.access"},
    {"CustomLog", "portico's logs are set with log.error and log.access"},
    {"TransferLog", "portico's logs are set with log.error and log.access"},
    {"LogFormat", "portico writes the combined or the JSON format (log.format)"},
    {"ErrorLogFormat", "portico's error log has one format"},
    {"PidFile", "portico writes no PID file: systemd tracks its process"},
    {"Mutex", "portico needs no lock files"},
    {"DefaultRuntimeDir", "portico needs no runtime files"},
    {"User", "portico runs as the user its service starts it as (or user:)"},
    {"Group", "portico runs as the group its service starts it as (or group:)"},
    {"KeepAlive", "portico always keeps client connections alive (timeouts.client_idle)"},
    {"MaxKeepAliveRequests", "portico does not bound requests per connection"},
    {"StartServers", "portico's concurrency is workers: and limits.connections"},
    {"ServerLimit", "portico's concurrency is workers: and limits.connections"},
    {"ThreadLimit", "portico's concurrency is workers: and limits.connections"},
    {"ThreadsPerChild", "portico's concurrency is workers: and limits.connections"},
    {"MinSpare*", "portico's concurrency is workers: and limits.connections"},
    {"MaxSpare*", "portico's concurrency is workers: and limits.connections"},
    {"MaxRequestWorkers", "portico's concurrency is workers: and limits.connections"},
    {"MaxClients", "portico's concurrency is workers: and limits.connections"},
    {"MaxConnectionsPerChild", "portico's concurrency is workers: and limits.connections"},
    {"SetEnv*", "portico keeps no request environment"},
    {"UnsetEnv", "portico keeps no request environment"},
    {"PassEnv", "portico keeps no request environment"},
    {"BrowserMatch*", "portico keeps no request environment"},
    {"Auth*", "portico does no authentication"},
    {"Session*", "portico does no authentication"},
    {"SSL*", "portico's TLS settings are certificates and the upstream trust (tls:)"},
    {"ProxyHTMLLinks", "portico rewrites a fixed set of URL attributes (SPEC section 6.3)"},
    {"ProxyHTMLEvents", "portico does not rewrite script event attributes"},
    {"ProxyHTML*", "no portico equivalent in the html: settings"},
    {"ErrorDocument", "portico's error pages are its own"},
    {"ProxyErrorOverride", "portico forwards the upstream's error pages"},
    {"Proxy*", "no portico equivalent"},
    {"ServerTokens", "portico does not announce itself in responses"},
    {"ServerSignature", "portico does not announce itself in responses"},
    {"ServerAdmin", "portico's error pages name no administrator"},
    {"UseCanonicalName", "portico rewrites with server_name when set, else the request's Host"},
    {"HostnameLookups", "portico logs addresses only"},
    {"TraceEnable", "portico forwards TRACE like any method"},
    {"Use", "mod_macro is not expanded"},
    {"UndefMacro", "mod_macro is not expanded"},
};

static bool
prefix_matches(const char *pattern, const char *name)
{
	size_t n = strlen(pattern);

	if (n > 0 && pattern[n - 1] == '*')
		return strncasecmp(pattern, name, n - 1) == 0;
	return eq(pattern, name);
}

static void
report_unknown(struct imp *im, adir *d)
{
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		if (prefix_matches(reasons[i].prefix, d->name)) {
			imp_report(im, d, "%s", reasons[i].reason);
			return;
		}
	imp_report(im, d, "no portico equivalent");
}

static void
dispatch(struct imp *im, struct walk *w, adir *d)
{
	for (size_t i = 0; i < ARRAY_SIZE(handlers); i++) {
		if (!eq(handlers[i].name, d->name))
			continue;
		if (handlers[i].cx & w->cx)
			handlers[i].fn(im, w, d);
		else if (w->cx & CX_DIR)
			imp_report(im, d, "not read inside <%s>", w->scope->d->name);
		else if (w->cx & CX_VHOST)
			imp_report(im, d, "only read in the main server, not in a <VirtualHost>");
		else
			imp_report(im, d, "only read in a <VirtualHost> or a section");
		return;
	}
	report_unknown(im, d);
}

/* ---- sections ---- */

static void walk_children(struct imp *im, struct walk *w, adir *sec);

static enum scope_kind
scope_kind_of(adir *d, const char **arg)
{
	bool proxy = strncasecmp(d->name, "Proxy", 5) == 0;
	bool match = eq(d->name, "LocationMatch") || eq(d->name, "ProxyMatch");

	*arg = d->nargs > 0 ? d->args[d->nargs - 1] : "";
	if (d->nargs == 2 && strcmp(d->args[0], "~") == 0)
		match = true;
	if (match)
		return proxy ? SC_PROXYMATCH : SC_LOCATIONMATCH;
	if (proxy)
		return strcmp(*arg, "*") != 0 && strpbrk(*arg, "*?[") ? SC_PROXYMATCH : SC_PROXY;
	return strpbrk(*arg, "*?[") ? SC_LOCATIONGLOB : SC_LOCATION;
}

static void
walk_scope(struct imp *im, struct walk *w, adir *d)
{
	struct walk inner = *w;
	const char *arg;
	enum scope_kind kind = scope_kind_of(d, &arg);

	if (d->nargs < 1 || d->nargs > 2 || (d->nargs == 2 && strcmp(d->args[0], "~") != 0)) {
		report_tree(im, d, "expects one path, URL or pattern");
		return;
	}
	inner.scope = scope_new(w->server, kind, d, arg);
	inner.cx = CX_DIR;
	inner.balancer = kind == SC_PROXY && imp_is_balancer_url(arg)
			     ? imp_balancer_get(w->server, arg, d)
			     : NULL;
	if (inner.balancer != NULL)
		inner.balancer->d = d;
	imp_imported(im, d);
	walk_children(im, &inner, d);
}

static void
walk_vhost(struct imp *im, struct walk *w, adir *d)
{
	struct imp_server *s = server_new(d);
	struct walk inner = {.server = s, .scope = s->scopes[0], .cx = CX_VHOST};

	(void)w;
	for (size_t i = 0; i < d->nargs; i++) {
		const char *a = d->args[i];
		const char *colon = strrchr(a, ':');
		int port = colon && (a[0] != '[' || colon > strchr(a, ']'))
			       ? imp_parse_port(colon + 1)
			       : 0;

		if (strncasecmp(a, "_default_", 9) == 0)
			s->default_addr = true;
		s->ports = xrealloc(s->ports, (s->nports + 1) * sizeof(int));
		s->ports[s->nports++] = port;
	}
	im->vhosts = xgrow(im->vhosts, &im->capvhosts, im->nvhosts, sizeof(*im->vhosts));
	im->vhosts[im->nvhosts++] = s;
	imp_imported(im, d);
	walk_children(im, &inner, d);
}

static bool
is_scope_section(const char *name)
{
	return eq(name, "Location") || eq(name, "LocationMatch") || eq(name, "Proxy") ||
	       eq(name, "ProxyMatch");
}

static void
walk_section(struct imp *im, struct walk *w, adir *d)
{
	if (eq(d->name, "VirtualHost") && w->cx == CX_MAIN)
		walk_vhost(im, w, d);
	else if (is_scope_section(d->name) && !(w->cx & CX_DIR))
		walk_scope(im, w, d);
	else if (imp_is_authz(d->name) && (w->cx & CX_DIR)) {
		imp_authz_add(im, w->scope, d);
		w->scope->has_settings = true;
	} else
		report_tree(im, d, section_reason(d->name));
}

static void
walk_children(struct imp *im, struct walk *w, adir *sec)
{
	for (size_t i = 0; i < sec->nchildren; i++) {
		adir *d = sec->children[i];

		if (d->section)
			walk_section(im, w, d);
		else
			dispatch(im, w, d);
	}
}

void
imp_read(struct imp *im)
{
	struct walk w;

	im->main = server_new(NULL);
	w = (struct walk){.server = im->main, .scope = im->main->scopes[0], .cx = CX_MAIN};
	walk_children(im, &w, apacheconf_root(im->conf));
	for (size_t i = 0; i < im->main->nscopes; i++)
		imp_authz_finish(im, im->main->scopes[i]);
	for (size_t v = 0; v < im->nvhosts; v++)
		for (size_t i = 0; i < im->vhosts[v]->nscopes; i++)
			imp_authz_finish(im, im->vhosts[v]->scopes[i]);
}
