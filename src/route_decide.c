/*
 * route_decide.c: the routing decision shared by the proxy and `portico
 * route`: normalization (path.h), the rule (route.h), access (access.h),
 * the upstream target (route.h), in that order, each failure with its
 * status.
 */
#include <string.h>

#include "portico/access.h"
#include "portico/config.h"
#include "portico/http.h"
#include "portico/path.h"
#include "portico/route_decide.h"

static int
decided(struct route_decision *d, int status, const char *why)
{
	d->status = status;
	d->why = why;
	return status;
}

int
route_decide(const struct config *cfg, const char *host, size_t hostlen, const char *target,
	     size_t len, const struct sockaddr *client, struct buf *path, struct buf *upstream,
	     struct route_decision *d)
{
	const char *q = memchr(target, '?', len), *p = target, *why = NULL;
	size_t plen = q ? (size_t)(q - target) : len, n;
	const struct route *r;

	memset(d, 0, sizeof(*d));
	if (q != NULL) {
		d->query = q + 1;
		d->query_len = len - plen - 1;
	}
	if (plen == 0) {
		p = "/";
		plen = 1;
	}
	buf_reset(path);
	buf_reset(upstream);
	buf_reserve(path, plen + 1);
	if (path_normalize(p, plen, path->data, &n, &why) == -1)
		return decided(d, 400, why);
	path->len = n;
	if (host != NULL && hostlen > 0)
		hostlen = http_host_strip_port(host, hostlen);
	else
		host = NULL;
	r = route_table_lookup(cfg->table, host, host ? hostlen : 0, path->data, n, &d->caps);
	d->route = r;
	if (r == NULL)
		return decided(d, 404, "no route");
	if (r->pass_off)
		return decided(d, 404, "excluded");
	if (client != NULL && !access_is_allowed(config_route_access(cfg, r), client))
		return decided(d, 403, "access denied");
	if (route_target(r, path->data, n, d->query, d->query_len, &d->caps, upstream, &why) == -1)
		return decided(d, 500, why);
	return 0;
}
