/*
 * import_server.c: the directives of servers and listeners for the import
 * walk (import_read.c): Listen, ServerName and ServerAlias, mod_ssl
 * certificates and upstream trust, balancers (BalancerMember, ProxySet) and
 * the global settings that have a portico key (Timeout, KeepAliveTimeout,
 * LogLevel, LimitRequestBody, LimitRequestFields).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "import_int.h"

static bool
eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

int
imp_parse_port(const char *s)
{
	long v;

	return imp_parse_long(s, 1, 65535, &v) ? (int)v : -1;
}

/* "80", "10.0.0.1:80", "[::1]:80", "*:80" as portico writes it; NULL when not numeric. */
static char *
listen_address(const char *arg, int *port)
{
	const char *colon = strrchr(arg, ':');
	char host[64];

	if (colon == NULL || (arg[0] == '[' && colon < strchr(arg, ']'))) {
		*port = imp_parse_port(arg);
		return *port > 0 ? xasprintf("*:%d", *port) : NULL;
	}
	*port = imp_parse_port(colon + 1);
	if (*port < 0 || (size_t)(colon - arg) >= sizeof(host))
		return NULL;
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = '\0';
	if (strcmp(host, "*") == 0)
		return xasprintf("*:%d", *port);
	if (host[0] == '[') {
		struct access_rule r;
		const char *err;
		size_t hl = strlen(host);

		if (hl < 3 || host[hl - 1] != ']')
			return NULL;
		host[hl - 1] = '\0';
		if (access_rule_parse(host + 1, true, &r, &err) < 0 || strchr(host + 1, '/'))
			return NULL;
		return xasprintf("[%s]:%d", host + 1, *port);
	}
	if (strspn(host, "0123456789.") != strlen(host) || strchr(host, '/') != NULL)
		return NULL;
	{
		struct access_rule r;
		const char *err;

		if (access_rule_parse(host, true, &r, &err) < 0)
			return NULL;
	}
	return xasprintf("%s:%d", host, *port);
}

void
imp_on_listen(struct imp *im, struct walk *w, adir *d)
{
	struct imp_listen *l;
	char *addr;
	int port;

	(void)w;
	if (!imp_want_args(im, d, 1, 2))
		return;
	addr = listen_address(d->args[0], &port);
	if (addr == NULL) {
		imp_report(im, d, "portico listens on numeric addresses only (\"%s\")", d->args[0]);
		return;
	}
	for (size_t i = 0; i < im->nlistens; i++)
		if (strcmp(im->listens[i].address, addr) == 0) {
			imp_imported(im, d); /* the same listener, read twice */
			xfree(addr);
			return;
		}
	im->listens = xgrow(im->listens, &im->caplistens, im->nlistens, sizeof(*im->listens));
	l = &im->listens[im->nlistens++];
	memset(l, 0, sizeof(*l));
	l->d = d;
	l->address = addr;
	l->port = port;
	if (d->nargs == 2 && !eq(d->args[1], "http") && !eq(d->args[1], "https"))
		imp_report_part(im, d, "protocol %s: portico speaks HTTP/1.1 only", d->args[1]);
	else
		imp_imported(im, d);
}

/* The host of "[scheme://]host[:port]", lower case; NULL when it is not a host name. */
static char *
server_host(const char *arg)
{
	const char *p = strstr(arg, "://");
	size_t n;
	char *h;

	p = p ? p + 3 : arg;
	n = strcspn(p, ":/");
	if (n == 0)
		return NULL;
	h = xstrndup(p, n);
	for (char *q = h; *q; q++) {
		if (!isalnum((unsigned char)*q) && *q != '-' && *q != '.' && *q != '*') {
			xfree(h);
			return NULL;
		}
		*q = (char)tolower((unsigned char)*q);
	}
	return h;
}

static void
add_name(struct imp_server *s, adir *d, char *host, bool first)
{
	struct imp_name nm = {.d = d, .host = host};

	nm.wildcard = host != NULL && host[0] == '*';
	s->names = xgrow(s->names, &s->capnames, s->nnames, sizeof(*s->names));
	if (first) {
		memmove(s->names + 1, s->names, s->nnames * sizeof(*s->names));
		s->names[0] = nm;
	} else {
		s->names[s->nnames] = nm;
	}
	s->nnames++;
}

void
imp_on_server_name(struct imp *im, struct walk *w, adir *d)
{
	char *host;

	if (!imp_want_args(im, d, 1, 1))
		return;
	host = server_host(d->args[0]);
	if (host == NULL || strchr(host, '*') != NULL) {
		xfree(host);
		imp_report(im, d, "\"%s\" is not a host name", d->args[0]);
		return;
	}
	if (w->server == im->main) {
		xfree(w->server->main_name);
		w->server->main_name = host;
		w->server->main_name_d = d;
		imp_note(im, d);
		return;
	}
	for (size_t i = 0; i < w->server->nnames; i++)
		if (w->server->names[i].d != NULL &&
		    eq(w->server->names[i].d->name, "ServerName")) {
			imp_report(im, w->server->names[i].d,
				   "overridden by the ServerName on line %u", d->line);
			xfree(w->server->names[i].host);
			w->server->names[i] = w->server->names[--w->server->nnames];
			break;
		}
	add_name(w->server, d, host, true);
	imp_imported(im, d);
}

/* "*", "*.suffix" and plain names; other wildcard patterns cannot be expressed. */
void
imp_on_server_alias(struct imp *im, struct walk *w, adir *d)
{
	const char *bad = NULL;
	bool any = false;

	if (!imp_want_args(im, d, 1, SIZE_MAX))
		return;
	for (size_t i = 0; i < d->nargs; i++) {
		const char *a = d->args[i];
		char *host = strcmp(a, "*") == 0 ? NULL : server_host(a);
		bool simple = host != NULL && (strchr(host, '*') == NULL ||
					       (host[0] == '*' && host[1] == '.' &&
						strchr(host + 1, '*') == NULL && host[2] != '\0'));

		if (strcmp(a, "*") == 0 || simple) {
			add_name(w->server, d, host, false);
			any = true;
		} else {
			xfree(host);
			bad = a;
		}
	}
	if (bad == NULL)
		imp_imported(im, d);
	else if (any)
		imp_report_part(im, d, "\"%s\": portico matches host names exactly or as *.suffix",
				bad);
	else
		imp_report(im, d, "\"%s\": portico matches host names exactly or as *.suffix", bad);
}

void
imp_on_ssl_engine(struct imp *im, struct walk *w, adir *d)
{
	if (!imp_want_args(im, d, 1, 1))
		return;
	if (eq(d->args[0], "optional") || eq(d->args[0], "addr")) {
		imp_report(im, d, "%s: portico listeners are TLS or plain", d->args[0]);
		return;
	}
	if (imp_set_flag(im, d, &w->server->ssl))
		imp_imported(im, d);
}

void
imp_on_ssl_file(struct imp *im, struct walk *w, adir *d)
{
	struct imp_server *s = w->server;
	bool key = eq(d->name, "SSLCertificateKeyFile");
	char **dst = key ? &s->key : &s->cert;
	adir **dd = key ? &s->key_d : &s->cert_d;

	if (!imp_want_args(im, d, 1, 1))
		return;
	if (*dst != NULL) {
		imp_report(im, d,
			   "portico takes one certificate per virtual host; the one on line "
			   "%u is used",
			   (*dd)->line);
		return;
	}
	if (!yaml_text_ok(d->args[0])) {
		imp_report(im, d, "not a file name portico can take");
		return;
	}
	*dst = apacheconf_resolve(im->conf, d->args[0]);
	*dd = d;
	imp_imported(im, d);
}

void
imp_on_ssl_proxy_verify(struct imp *im, struct walk *w, adir *d)
{
	if (!imp_want_args(im, d, 1, 1))
		return;
	if (eq(d->args[0], "none") || eq(d->args[0], "optional_no_ca")) {
		w->server->proxy_verify.v = TRI_OFF;
	} else if (eq(d->args[0], "require") || eq(d->args[0], "optional")) {
		w->server->proxy_verify.v = TRI_ON;
	} else {
		imp_report(im, d, "expects none, optional, require or optional_no_ca");
		return;
	}
	w->server->proxy_verify.d = d;
	imp_imported(im, d);
}

void
imp_on_ssl_proxy_file(struct imp *im, struct walk *w, adir *d)
{
	bool ca = eq(d->name, "SSLProxyCACertificateFile");

	if (!imp_want_args(im, d, 1, 1))
		return;
	if (!yaml_text_ok(d->args[0])) {
		imp_report(im, d, "not a file name portico can take");
		return;
	}
	xfree(ca ? w->server->proxy_ca : w->server->proxy_cert);
	*(ca ? &w->server->proxy_ca : &w->server->proxy_cert) =
	    apacheconf_resolve(im->conf, d->args[0]);
	*(ca ? &w->server->proxy_ca_d : &w->server->proxy_cert_d) = d;
	imp_imported(im, d);
}

void
imp_on_ssl_proxy_check(struct imp *im, struct walk *w, adir *d)
{
	struct imp_flag f = {0};

	if (!imp_set_flag(im, d, &f))
		return;
	if (f.v == TRI_ON) {
		imp_note(im, d);
		return;
	}
	w->server->proxy_check_name = f;
	/* The verdict depends on SSLProxyVerify: see import_routes.c. */
}

static void
member_param(struct imp *im, struct imp_balancer *b, struct imp_member *m, const char *arg)
{
	char key[32];
	const char *v;
	long n;

	if (!imp_split_param(arg, key, sizeof(key), &v)) {
		imp_report_part(im, m->d, "%s: not a parameter", arg);
	} else if (eq(key, "loadfactor") && imp_parse_long(v, 1, 100, &n)) {
		m->weight = n;
	} else if (eq(key, "status") && (eq(v, "+H") || eq(v, "H"))) {
		m->backup = true;
	} else if (eq(key, "status") && (eq(v, "+D") || eq(v, "D"))) {
		m->skip = true;
		imp_report(im, m->d, "status=%s: a disabled member is left out", v);
	} else if (eq(key, "retry") && imp_parse_long(v, 1, 86400, &n)) {
		if (b->down_s >= 0 && b->down_s != n)
			imp_report_part(im, m->d, "retry=%s: portico has one down time per group",
					v);
		else
			b->down_s = n, b->down_d = m->d;
	} else {
		imp_report_part(im, m->d, "%s: no portico equivalent", arg);
	}
}

/* "http://host[:port][/]" into scheme and "host:port"; false otherwise. */
static bool
member_address(const char *url, char **scheme, char **address)
{
	const char *rest, *end;
	bool tls;
	size_t hl;
	char *host;

	if (!imp_url_scheme(url, &rest, &tls))
		return false;
	end = rest + strcspn(rest, "/?#");
	if (*end != '\0' && strcmp(end, "/") != 0)
		return false;
	host = xstrndup(rest, (size_t)(end - rest));
	hl = strlen(host);
	if (hl == 0 || !yaml_text_ok(host) || strpbrk(host, "@ ") != NULL) {
		xfree(host);
		return false;
	}
	*scheme = xstrdup(tls ? "https" : "http");
	if (host[hl - 1] == ']' || strrchr(host, ':') == NULL ||
	    (host[0] == '[' && strrchr(host, ':') < strchr(host, ']')))
		*address = xasprintf("%s:%d", host, tls ? 443 : 80);
	else
		*address = xstrdup(host);
	xfree(host);
	return true;
}

void
imp_on_member(struct imp *im, struct walk *w, adir *d)
{
	size_t first = w->balancer != NULL ? 0 : 1;
	struct imp_balancer *b = w->balancer;
	struct imp_member *m;
	char *scheme, *address;

	if (!imp_want_args(im, d, first + 1, SIZE_MAX))
		return;
	if (b == NULL && !imp_is_balancer_url(d->args[0])) {
		imp_report(im, d,
			   "outside <Proxy balancer://...> it needs a balancer:// URL first");
		return;
	}
	if (b == NULL)
		b = imp_balancer_get(w->server, d->args[0], d);
	if (!member_address(d->args[first], &scheme, &address)) {
		imp_report(im, d,
			   "%s: portico balances over http:// and https:// servers given as "
			   "scheme://host:port",
			   d->args[first]);
		return;
	}
	b->members = xgrow(b->members, &b->capmembers, b->nmembers, sizeof(*b->members));
	m = &b->members[b->nmembers++];
	memset(m, 0, sizeof(*m));
	m->d = d;
	m->scheme = scheme;
	m->address = address;
	imp_imported(im, d);
	for (size_t i = first + 1; i < d->nargs; i++)
		member_param(im, b, m, d->args[i]);
}

static const char *
lbmethod_balance(const char *v)
{
	if (eq(v, "byrequests"))
		return "round_robin";
	if (eq(v, "bybusyness"))
		return "least_conn";
	return NULL;
}

void
imp_on_proxy_set(struct imp *im, struct walk *w, adir *d)
{
	size_t first = w->balancer != NULL ? 0 : 1;
	struct imp_balancer *b = w->balancer;
	bool any = false;

	if (!imp_want_args(im, d, first + 1, SIZE_MAX))
		return;
	if (b == NULL && !imp_is_balancer_url(d->args[0])) {
		imp_report(im, d, "portico takes ProxySet for balancers only");
		return;
	}
	if (b == NULL)
		b = imp_balancer_get(w->server, d->args[0], d);
	for (size_t i = first; i < d->nargs; i++) {
		char key[32];
		const char *v;
		long n;

		if (imp_split_param(d->args[i], key, sizeof(key), &v) && eq(key, "lbmethod") &&
		    lbmethod_balance(v) != NULL) {
			b->balance = lbmethod_balance(v);
			b->balance_d = d;
			any = true;
		} else if (imp_split_param(d->args[i], key, sizeof(key), &v) &&
			   eq(key, "maxattempts") && imp_parse_long(v, 0, 100, &n)) {
			b->retries = n;
			b->retries_d = d;
			any = true;
		} else {
			imp_report_part(im, d, "%s: no portico equivalent", d->args[i]);
		}
	}
	if (any)
		imp_imported(im, d);
	else
		imp_report(im, d, "nothing portico can take");
}

void
imp_on_duration(struct imp *im, struct walk *w, adir *d)
{
	bool idle = eq(d->name, "KeepAliveTimeout");
	uint64_t ms;

	if (w->server != im->main) {
		imp_report(im, d,
			   "portico's client timeouts are global: set it in the main server");
		return;
	}
	if (!imp_want_args(im, d, 1, 1))
		return;
	if (!imp_parse_seconds(d->args[0], &ms) || ms > 3600000) {
		imp_report(im, d, "expects a duration from 1ms to an hour");
		return;
	}
	*(idle ? &im->g.idle_ms : &im->g.timeout_ms) = ms;
	*(idle ? &im->g.idle_d : &im->g.timeout_d) = d;
	imp_imported(im, d);
}

void
imp_on_log_level(struct imp *im, struct walk *w, adir *d)
{
	static const struct {
		const char *apache, *portico;
	} levels[] = {
	    {"emerg", "error"}, {"alert", "error"}, {"crit", "error"}, {"error", "error"},
	    {"warn", "warn"},	{"notice", "info"}, {"info", "info"},  {"debug", "debug"},
	};
	const char *level = NULL;

	if (w->server != im->main || d->nargs != 1) {
		imp_report(im, d, "portico has one log level, set in the main server");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(levels); i++)
		if (eq(d->args[0], levels[i].apache))
			level = levels[i].portico;
	if (level == NULL && strncasecmp(d->args[0], "trace", 5) == 0)
		level = "debug";
	if (level == NULL) {
		imp_report(im, d, "\"%s\": portico's levels are error, warn, info and debug",
			   d->args[0]);
		return;
	}
	im->g.level = level;
	im->g.level_d = d;
	imp_imported(im, d);
}

void
imp_on_limit(struct imp *im, struct walk *w, adir *d)
{
	bool body = eq(d->name, "LimitRequestBody");
	long n;

	if (w->server != im->main || (w->cx & CX_DIR)) {
		imp_report(im, d, "portico's limits are global: set it in the main server");
		return;
	}
	if (!imp_want_args(im, d, 1, 1))
		return;
	if (!imp_parse_long(d->args[0], body ? 0 : 1, body ? 2147483647L : 10000, &n)) {
		imp_report(im, d, "%s: out of portico's range", d->args[0]);
		return;
	}
	*(body ? &im->g.limit_body : &im->g.limit_fields) = (uint64_t)n;
	*(body ? &im->g.limit_body_d : &im->g.limit_fields_d) = d;
	imp_imported(im, d);
}
