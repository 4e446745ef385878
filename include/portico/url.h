/*
 * url.h: http:// and https:// URLs as written in the configuration
 * (pass targets, reverse mappings).
 */
#ifndef PORTICO_URL_H
#define PORTICO_URL_H

#include <stdbool.h>
#include <stdint.h>

struct url {
	char *scheme;	 /* "http" or "https", lower case */
	char *host;	 /* lower case; an IPv6 literal without brackets */
	uint16_t port;	 /* explicit, or 80/443 by scheme */
	bool tls;	 /* scheme is https */
	char *authority; /* host[:port] for a Host header: brackets for IPv6, no default port */
	char *path;	 /* everything after the authority ("" or from "/" or "?"), verbatim */
};

/*
 * Parses an absolute http(s) URL.  No userinfo, no fragment, a non-empty host,
 * a port in 1..65535.  Returns 0, or -1 with *err pointing at a static
 * description ("expected an http:// or https:// URL").  On error *u is left
 * zeroed and needs no url_free.
 */
int url_parse(const char *s, struct url *u, const char **err);
void url_free(struct url *u);
/* Deep copy. */
void url_copy(struct url *dst, const struct url *src);

#endif
