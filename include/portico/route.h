/*
 * route.h: the ordered rule table (SPEC section 3).
 *
 * The configuration fills an array of struct route in file order;
 * route_table_build() compiles it so that a lookup costs in proportion to the
 * path length, not the number of rules, while the first rule in file order
 * that matches still wins.
 */
#ifndef PORTICO_ROUTE_H
#define PORTICO_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "portico/access.h"
#include "portico/url.h"
#include "portico/util.h"

enum route_kind {
	ROUTE_PATH,  /* ProxyPass prefix rule */
	ROUTE_MATCH, /* ProxyPassMatch regular expression */
};

struct route_html_map {
	char *from;
	char *to;
};

struct html_urlmap;
struct server_group;

struct route_tls {
	bool verify;	   /* default true */
	char *ca;	   /* NULL: the system trust store */
	char *server_name; /* NULL: the URL host */
	char *cert;	   /* client certificate, or NULL */
	char *key;
};

struct route {
	unsigned index; /* position in `routes`, from 0 */
	int line, col;	/* where the rule starts in the file */
	enum route_kind kind;
	char *path;	     /* ROUTE_PATH: the prefix as written */
	char *match;	     /* ROUTE_MATCH: the pattern as written */
	pcre2_code *re;	     /* ROUTE_MATCH: compiled (JIT when available) */
	bool pass_off;	     /* exclusion: 404, never proxied */
	char *pass;	     /* the pass URL as written (after "unix:/path|"); NULL when pass_off */
	struct url upstream; /* pass parsed; upstream.path is the template path */
	bool pass_has_ref;   /* pass holds $0..$9 */
	char *name;	     /* label for logs and metrics; the index when not set */
	char *host;	     /* NULL: any; "name" or "*.suffix", lower case */
	bool reverse;	     /* contributes a reverse mapping */
	bool cookies;	     /* rewrite Set-Cookie Path= and Domain= */
	bool preserve_host;
	bool html; /* body rewriting on (section 6.3) */
	bool html_extended;
	struct route_html_map *html_maps;
	size_t html_nmaps;
	/* html_maps compiled for matching (html.h), or NULL. */
	struct html_urlmap *html_urlmap;
	bool has_access; /* a route-level list replaces the global one */
	struct access_list access;
	/* Effective timeouts in milliseconds: the route's override or the global value. */
	uint64_t upstream_connect_ms, upstream_read_ms, tunnel_ms;
	struct route_tls tls;
	/* pass "unix:/path|http://...": connect to this socket; else NULL. */
	char *unix_path;
	/* The upstream group that the pass URL's host names (group.h); else NULL. */
	struct server_group *group;
};

struct route_table;

/* Capture offsets of a ROUTE_MATCH lookup: pairs of (start, end), -1 unset. */
#define ROUTE_MAX_CAPTURES 10
struct route_captures {
	int n; /* number of pairs set */
	size_t ovector[2 * ROUTE_MAX_CAPTURES];
};

/* Compiles the table; it points into `routes`, which must outlive it. */
struct route_table *route_table_build(const struct route *routes, size_t n);
void route_table_free(struct route_table *t);

/*
 * The first rule in file order that matches `host` (the request's Host without
 * port, any case; NULL when absent) and the normalized `path`.  NULL when no
 * rule matches.  For ROUTE_MATCH rules `caps` receives the captures.
 * Allocates nothing.
 */
const struct route *route_table_lookup(const struct route_table *t, const char *host,
				       size_t hostlen, const char *path, size_t pathlen,
				       struct route_captures *caps);

/*
 * Appends to `out` the upstream request target for a request that `r`
 * matched: the mapped path (prefix replaced, or captures substituted and
 * percent-encoded, or the whole path appended to a pass with no $), then the
 * query.  `query` is NULL when the request had no "?"; an empty query (the
 * request ended in "?") keeps its "?".  The query is joined with "?", or
 * with "&" when the pass URL has a query already (an empty one then adds
 * nothing).  What comes from the request path and lands after a "?" of the
 * pass URL is encoded as query data (path_encode_query), so that a request
 * cannot add a parameter there.  Returns 0, or -1 with *err
 * set when a substitution would change the pass URL's scheme or authority
 * (a 500).  The part taken from the request path is re-encoded so that it
 * holds only pchar, "/" and "%XX"; a target that would not start with "/"
 * (pass "http://h" for "/x") gets one.  `caps` may be NULL for a ROUTE_MATCH
 * rule: the expression is then run again.  On error `out` is left as it was.
 */
int route_target(const struct route *r, const char *path, size_t pathlen, const char *query,
		 size_t querylen, const struct route_captures *caps, struct buf *out,
		 const char **err);

/*
 * For ROUTE_MATCH rules: appends to `out` the literal prefix that every path
 * `re` (compiled from `pattern`) matches starts with, and returns true; or
 * returns false (`out` untouched) when there is none or the pattern holds
 * what the scan does not model (case-insensitive, extended or multi-line
 * options, a top-level "|", no leading "^").  route_table_build() indexes
 * the prefixes so that a lookup runs only the expressions that can match;
 * one without a prefix is run for every request that reaches it.
 */
bool route_regex_prefix(const char *pattern, const pcre2_code *re, struct buf *out);

/*
 * True when a rule's host pattern accepts `host` (no port, any case; one
 * trailing dot of a fully qualified name is ignored).  "*.example.com"
 * accepts names ending in ".example.com" but not "example.com" itself.
 */
bool route_host_matches(const char *pattern, const char *host, size_t hostlen);

/*
 * For `portico -t`: true when a proxied ROUTE_PATH rule's `path` and the path
 * of its pass URL disagree about a trailing "/" (path "/internal/" with pass
 * ".../public" maps "/internal/logo.png" to ".../publiclogo.png").  A pass
 * URL with an empty path never disagrees.
 */
bool route_has_slash_mismatch(const struct route *r);

/*
 * For `portico -t`: the index of an earlier rule that always matches every
 * request that rule `i` could match (so rule i never applies), or -1.
 */
int route_table_shadowed_by(const struct route_table *t, size_t i);

#endif
