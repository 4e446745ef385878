/*
 * route_decide.h: the one routing decision (SPEC sections 3 and 7), made
 * the same way for every proxied request (exchange.c) and for `portico
 * route` (main.c): the path normalized once, the first matching rule,
 * access control, and the upstream request target.  It uses route.h's
 * public API only; what a rule matches and how a target is built stay in
 * route.c and path.c.
 *
 * Pure: no I/O, no logging, no allocation besides the caller's buffers.
 */
#ifndef PORTICO_ROUTE_DECIDE_H
#define PORTICO_ROUTE_DECIDE_H

#include <stddef.h>
#include <sys/socket.h>

#include "portico/route.h"
#include "portico/util.h"

struct config;

struct route_decision {
	int status;		   /* 0: proxy it; else 400, 403, 404 or 500 */
	const char *why;	   /* a static reason when status is not 0 */
	const struct route *route; /* the rule that matched (exclusions and 403 too), or NULL */
	struct route_captures caps;
	const char *query; /* in `target`: after the "?", NULL when there is no "?" */
	size_t query_len;
};

/*
 * Decides for a request with the Host value `host` (as received, port
 * included; NULL or empty: none) and the origin-form `target` (path and
 * query as received; empty stands for "/").  `client` is the client's
 * address, or NULL to leave access undecided (`portico route` without
 * --client).  `path` receives the normalized path (also for a 404), and
 * when the status is 0, `upstream` the upstream request target; both are
 * reset first.  The rule lookup sees the host without its port (an IPv6
 * literal keeps its brackets).  Returns d->status.
 */
int route_decide(const struct config *cfg, const char *host, size_t hostlen, const char *target,
		 size_t len, const struct sockaddr *client, struct buf *path, struct buf *upstream,
		 struct route_decision *d);

#endif
