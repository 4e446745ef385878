/*
 * import_int.h: the model shared by the import_*.c files, private to them.
 *
 * import_read.c (with the handlers of import_server.c) walks the Apache tree into servers (the main
 * server and each <VirtualHost>), scopes (a server's own level, <Location>, <LocationMatch>,
 * <Proxy>, <ProxyMatch>) and balancers, giving every directive a verdict.
 * import_access.c turns a scope's authorization directives into an access
 * list.  import_routes.c orders ProxyPass rules as Apache evaluates them and
 * computes each route's settings; import_top.c builds the other top-level
 * keys (listen, timeouts, upstreams, ...).  import_yaml.c holds the small
 * YAML tree with comments and writes it.  import.c drives it all.
 */
#ifndef PORTICO_IMPORT_INT_H
#define PORTICO_IMPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "portico/access.h"
#include "portico/apacheconf.h"
#include "portico/import.h"
#include "portico/util.h"

typedef const struct apacheconf_directive adir;

/* ---- the YAML tree (import_yaml.c) ---- */

enum ynode_kind {
	Y_SCALAR, /* quoted as needed */
	Y_RAW,	  /* written as it is: true, false, off, numbers */
	Y_MAP,
	Y_SEQ,
};

struct ynode {
	enum ynode_kind kind;
	char *value;	      /* scalars */
	char **keys;	      /* maps: keys[i] -> items[i] */
	struct ynode **items; /* maps and sequences */
	size_t n, cap;
	char **comments; /* written before the entry that holds this node */
	size_t ncomments, capcomments;
	char **warnings; /* -t warnings about it, written after the comments */
	size_t nwarnings, capwarnings;
	int line; /* where it was written (the line of its key or "- ") */
};

struct ynode *ynode_scalar(const char *value);
struct ynode *ynode_raw(const char *value);
struct ynode *ynode_map(void);
struct ynode *ynode_seq(void);
void ynode_free(struct ynode *n);
/* Adds `child` under `key` (maps) and returns it. */
struct ynode *ynode_put(struct ynode *map, const char *key, struct ynode *child);
struct ynode *ynode_put_at(struct ynode *map, size_t at, const char *key, struct ynode *child);
struct ynode *ynode_get(const struct ynode *map, const char *key);
struct ynode *ynode_push(struct ynode *seq, struct ynode *child);
void ynode_comment(struct ynode *n, const char *fmt, ...) PRINTF_LIKE(2, 3);
void ynode_comment_first(struct ynode *n, const char *text); /* before the others */
/* "# file:line: text" for `d`, and a line naming the conditional sections around it. */
void ynode_source(struct ynode *n, adir *d);
/* Attaches a -t warning to the node written on `line`; false when there is none. */
bool ynode_warn_at(struct ynode *root, int line, const char *text);
void ynode_clear_warnings(struct ynode *root);
bool ynode_equal(const struct ynode *a, const struct ynode *b); /* comments ignored */
struct ynode *ynode_copy(const struct ynode *n);
/* Writes a document whose top level is the map `root`; records each node's line. */
void ynode_write(struct ynode *root, struct buf *out);
/* Text safe inside a YAML comment: control bytes and invalid UTF-8 become '?'. */
void yaml_comment_text(struct buf *out, const char *s);
/* Whether `s` can be a YAML scalar at all (valid UTF-8, no NUL). */
bool yaml_text_ok(const char *s);

/* ---- verdicts and reports (import.c) ---- */

enum verdict {
	V_NONE,
	V_IMPORTED, /* carried, or already portico's behaviour */
	V_PARTIAL,  /* carried with some part reported */
	V_REPORTED, /* not carried at all */
	V_READER,   /* module loading: nothing for portico to do */
};

struct imp;

void imp_imported(struct imp *im, adir *d);
void imp_reader(struct imp *im, adir *d);
/* Not imported at all: one report line. */
void imp_report(struct imp *im, adir *d, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Imported except for one part: one report line, the directive counts as partial. */
void imp_report_part(struct imp *im, adir *d, const char *fmt, ...) PRINTF_LIKE(3, 4);
enum verdict imp_verdict(const struct imp *im, adir *d);
/* A note for the header of the output ("# ..."). */
void imp_note(struct imp *im, adir *d);

/* ---- the model (import_read.c) ---- */

enum tri {
	TRI_UNSET,
	TRI_OFF,
	TRI_ON,
};

struct imp_flag {
	enum tri v;
	adir *d;
};

enum scope_kind {
	SC_SERVER,	  /* a server's own level */
	SC_LOCATION,	  /* <Location /path> */
	SC_LOCATIONMATCH, /* <LocationMatch regex>, <Location ~ regex> */
	SC_LOCATIONGLOB,  /* <Location> with wildcards */
	SC_PROXY,	  /* <Proxy url>: a prefix of the upstream URL */
	SC_PROXYMATCH,	  /* <ProxyMatch regex>, <Proxy ~ regex>, <Proxy> with wildcards */
};

/* The authorization of one scope, as an access list (import_access.c). */
struct imp_authz {
	bool has;     /* the scope says something about access */
	adir **items; /* Require, Order, Allow, Deny, Satisfy and Require* sections, in order */
	size_t nitems, capitems;
	struct access_rule *rules; /* the first-match list; empty denies everyone */
	size_t n;
	bool exact; /* false: some rule could not be expressed and grants less */
};

struct imp_map {
	adir *d;
	const char *from, *to;
};

struct imp_server;

struct imp_scope {
	enum scope_kind kind;
	adir *d;	 /* the section; NULL for SC_SERVER */
	const char *arg; /* path, regex or URL */
	struct imp_server *server;
	struct imp_flag preserve_host, html, html_extended;
	struct imp_map *maps;
	size_t nmaps, capmaps;
	struct imp_authz authz;
	bool has_settings; /* something a route would take from it */
};

struct imp_pass {
	adir *d;
	struct imp_scope *scope; /* SC_SERVER, or the <Location> it sits in */
	bool regex;
	const char *path;	      /* prefix, or regex */
	const char *url;	      /* NULL for "!" */
	char *pass;		      /* the URL as portico takes it; NULL when it cannot */
	uint64_t read_ms, connect_ms; /* 0: not given */
	bool retry;
	long retry_s;
	struct imp_balancer *balancer;
	const char *lbmethod; /* balancer parameters given on the ProxyPass line */
	long maxattempts;     /* -1: not given */
	bool ws;	      /* ws:// or wss:// taken as http:// or https:// */
};

struct imp_rev {
	adir *d;
	struct imp_scope *scope;
	const char *path, *url;
	bool used;
};

struct imp_cookie {
	adir *d;
	struct imp_scope *scope;
	bool domain; /* ProxyPassReverseCookieDomain, else ...Path */
	const char *internal, *public;
	bool used;
};

struct imp_member {
	adir *d;
	char *scheme;  /* "http" or "https" */
	char *address; /* host:port */
	long weight;   /* 0: not given */
	bool backup;
	bool skip; /* disabled or unusable: not written */
};

struct imp_balancer {
	char *name;  /* lower case, as in balancer://name */
	char *group; /* the name under upstreams */
	adir *d;     /* the <Proxy balancer://...> section, or the first directive naming it */
	struct imp_server *server;
	struct imp_member *members;
	size_t nmembers, capmembers;
	const char *balance;
	adir *balance_d;
	long retries; /* -1: not given */
	adir *retries_d;
	long down_s; /* -1: not given */
	adir *down_d;
	bool used;
};

struct imp_name {
	adir *d;
	char *host;    /* lower case, no port; NULL for "*": every host */
	bool wildcard; /* "*.suffix" */
};

struct imp_server {
	adir *d; /* <VirtualHost>; NULL for the main server */
	int *ports;
	size_t nports;
	bool default_addr; /* _default_ */
	struct imp_name *names;
	size_t nnames, capnames;
	struct imp_scope **scopes; /* [0] is the server's own level */
	size_t nscopes, capscopes;
	struct imp_pass **passes; /* in the server's own context, in order */
	size_t npasses, cappasses;
	struct imp_pass **locpasses; /* in <Location> sections, in order */
	size_t nlocpasses, caplocpasses;
	struct imp_rev **revs;
	size_t nrevs, caprevs;
	struct imp_cookie **cookies;
	size_t ncookies, capcookies;
	struct imp_balancer **balancers;
	size_t nbalancers, capbalancers;
	struct imp_flag inherit;   /* ProxyPassInherit */
	struct imp_flag via, xfwd; /* ProxyVia, ProxyAddHeaders */
	char *main_name;	   /* the main server: its ServerName */
	adir *main_name_d;
	uint64_t read_ms; /* ProxyTimeout */
	adir *read_d;
	struct imp_flag ssl;
	adir *cert_d, *key_d;
	char *cert, *key;
	struct imp_flag proxy_verify; /* SSLProxyVerify: TRI_OFF none, TRI_ON require */
	adir *proxy_ca_d;
	char *proxy_ca;
	adir *proxy_cert_d;
	char *proxy_cert;
	struct imp_flag proxy_check_name;
};

struct imp_listen {
	adir *d;
	char *address; /* as portico writes it: "*:80", "10.0.0.1:8080", "[::1]:80" */
	int port;
	struct ynode *tls; /* certificates, or NULL */
	adir *tls_d;
};

/* The global settings that have a portico key. */
struct imp_global {
	uint64_t read_ms, timeout_ms, idle_ms;
	adir *read_d, *timeout_d, *idle_d;
	adir *level_d;
	const char *level;
	adir *limit_body_d, *limit_fields_d;
	uint64_t limit_body, limit_fields;
};

struct imp {
	const struct import_options *opt;
	struct apacheconf *conf;
	FILE *report;
	struct imp_server *main;
	struct imp_server **vhosts;
	size_t nvhosts, capvhosts;
	struct imp_listen *listens;
	size_t nlistens, caplistens;
	struct imp_global g;
	struct ynode *doc;
	struct ynode *routes;		/* the routes sequence, as it is built */
	struct imp_scope *global_authz; /* the main server's last <Proxy *> with access rules */
	adir **notes;			/* directives that need nothing in portico */
	size_t nnotes, capnotes;
	struct imp_verdicts *verdicts;
	struct import_stats stats;
	bool tls_routes_noted;
};

/* The walk of the Apache tree (import_read.c). */
enum {
	CX_MAIN = 1,  /* the main server's own level */
	CX_VHOST = 2, /* a <VirtualHost>'s own level */
	CX_DIR = 4,   /* <Location>, <LocationMatch>, <Proxy>, <ProxyMatch> */
	CX_SERVER = CX_MAIN | CX_VHOST,
	CX_ANY = CX_SERVER | CX_DIR,
};

struct walk {
	struct imp_server *server;
	struct imp_scope *scope;       /* the server's own level, or the section */
	struct imp_balancer *balancer; /* inside <Proxy balancer://name> */
	int cx;
};

/* import_read.c */
void imp_read(struct imp *im);
void imp_server_free(struct imp_server *s);
bool imp_parse_seconds(const char *s, uint64_t *ms); /* "30", "500ms", "2mi", "1h" */
char *imp_duration(uint64_t ms);		     /* "30s", "500ms" */
/* "http://host[:port]/path": the scheme and the rest; false for other schemes. */
bool imp_url_scheme(const char *url, const char **rest, bool *tls);
/* "unix:/path|http://host/p" -> "http://host/p" (httpd's ap_proxy_de_socketfy); else `url`. */
const char *imp_url_desocket(const char *url);
struct imp_balancer *imp_balancer_find(struct imp *im, struct imp_server *s, const char *name);
/* The balancer named by "balancer://name[/...]" in `s`, created when new. */
struct imp_balancer *imp_balancer_get(struct imp_server *s, const char *url, adir *d);
bool imp_is_balancer_url(const char *url);
/* false (and reported) when `d` has fewer than min or more than max arguments */
bool imp_want_args(struct imp *im, adir *d, size_t min, size_t max);
bool imp_parse_long(const char *s, long min, long max, long *out);
/* "key=value" split; false when there is no '=' */
bool imp_split_param(const char *arg, char *key, size_t keysize, const char **value);
/* On|Off into `f`; false (and reported) otherwise */
bool imp_set_flag(struct imp *im, adir *d, struct imp_flag *f);

/* import_server.c: handlers of the walk's table */
int imp_parse_port(const char *s); /* 1..65535, or -1 */
void imp_on_listen(struct imp *im, struct walk *w, adir *d);
void imp_on_server_name(struct imp *im, struct walk *w, adir *d);
void imp_on_server_alias(struct imp *im, struct walk *w, adir *d);
void imp_on_ssl_engine(struct imp *im, struct walk *w, adir *d);
void imp_on_ssl_file(struct imp *im, struct walk *w, adir *d);
void imp_on_ssl_proxy_verify(struct imp *im, struct walk *w, adir *d);
void imp_on_ssl_proxy_file(struct imp *im, struct walk *w, adir *d);
void imp_on_ssl_proxy_check(struct imp *im, struct walk *w, adir *d);
void imp_on_member(struct imp *im, struct walk *w, adir *d);
void imp_on_proxy_set(struct imp *im, struct walk *w, adir *d);
void imp_on_duration(struct imp *im, struct walk *w, adir *d);
void imp_on_log_level(struct imp *im, struct walk *w, adir *d);
void imp_on_limit(struct imp *im, struct walk *w, adir *d);

/* import_access.c */
bool imp_is_authz(const char *name);
/* One directive or section (RequireAll/RequireAny/RequireNone) of a scope. */
void imp_authz_add(struct imp *im, struct imp_scope *sc, adir *d);
void imp_authz_finish(struct imp *im, struct imp_scope *sc);
void imp_authz_free(struct imp_authz *a);
/* The list as YAML ("- allow: X"), comments from its sources. */
struct ynode *imp_authz_yaml(const struct imp_authz *a);

/* import_routes.c */
void imp_build_routes(struct imp *im);

/* import_top.c */
void imp_build_top(struct imp *im);
/* The group name under upstreams for a balancer; marks it used. */
const char *imp_balancer_group(struct imp *im, struct imp_balancer *b);
void imp_build_upstreams(struct imp *im);

#endif
