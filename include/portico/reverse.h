/*
 * reverse.h: ProxyPassReverse (SPEC section 6.1) and cookie rewriting
 * (section 6.2) as pure functions over header values.
 */
#ifndef PORTICO_REVERSE_H
#define PORTICO_REVERSE_H

#include <stdbool.h>
#include <stddef.h>

#include "portico/url.h"
#include "portico/util.h"

/* A mapping (public path, upstream URL). */
struct reverse_map {
	char *public_path;   /* e.g. "/internal" */
	struct url upstream; /* e.g. http://internal.example.com/public */
};

/* Where the client reached portico: the scheme of its listener and its public host. */
struct reverse_ctx {
	const char *scheme; /* "http" or "https" */
	const char *host;   /* server_name, else the request's Host (may carry a port) */
	size_t hostlen;
};

enum reverse_kind {
	REVERSE_NONE,	 /* not a header portico rewrites */
	REVERSE_URL,	 /* Location, Content-Location, URI, Destination: the whole value */
	REVERSE_REFRESH, /* Refresh: the url= part */
	REVERSE_LINK,	 /* Link: each <...> target */
	REVERSE_COOKIE,	 /* Set-Cookie: Path= and Domain= (when enabled) */
};

/* Classifies a response header name (any case). */
enum reverse_kind reverse_header_kind(const char *name, size_t len);

/*
 * Rewrites a header value of kind REVERSE_URL, REVERSE_REFRESH or
 * REVERSE_LINK with the first mapping that matches.  Returns 1 with the new
 * value appended to `out`, or 0 when nothing changed (`out` untouched).
 */
int reverse_header(const struct reverse_map *maps, size_t n, enum reverse_kind kind,
		   const char *value, size_t len, const struct reverse_ctx *ctx, struct buf *out);

/* Rewrites a Set-Cookie value's Path= and Domain=.  Same return convention. */
int reverse_cookie(const struct reverse_map *maps, size_t n, const char *value, size_t len,
		   const struct reverse_ctx *ctx, struct buf *out);

void reverse_map_free(struct reverse_map *m);

#endif
