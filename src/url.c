/*
 * url.c: parsing of the absolute http:// and https:// URLs that the
 * configuration names (pass targets and reverse mappings).  The path part
 * is kept verbatim, since it may hold $1 templates and a query.
 */
#include <arpa/inet.h>
#include <string.h>

#include "portico/url.h"
#include "portico/util.h"

#define URL_ERR_SCHEME "expected an http:// or https:// URL"

static bool
url_is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

/* Spaces, control bytes and non-ASCII bytes are never part of a configured URL. */
static int
url_check_bytes(const char *s, const char **err)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f) {
			*err = "a URL may not contain spaces, control or non-ASCII bytes "
			       "(percent-encode them)";
			return -1;
		}
		if (*p == '#') {
			*err = "a URL may not contain a fragment (#)";
			return -1;
		}
	}
	return 0;
}

/* Returns the length of "http://" or "https://" and sets the scheme, or 0. */
static size_t
url_parse_scheme(const char *s, struct url *u)
{
	if (ascii_has_prefix_case(s, strlen(s), "http://")) {
		u->scheme = xstrdup("http");
		u->port = 80;
		return 7;
	}
	if (ascii_has_prefix_case(s, strlen(s), "https://")) {
		u->scheme = xstrdup("https");
		u->port = 443;
		u->tls = true;
		return 8;
	}
	return 0;
}

static int
url_parse_port(const char *p, size_t len, uint16_t *port, const char **err)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		goto fail;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			goto fail;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v < 1 || v > 65535)
		goto fail;
	*port = (uint16_t)v;
	return 0;
fail:
	*err = "expected a port number in 1..65535 after the host";
	return -1;
}

/* An IPv6 literal "[...]" at the start of the authority; *used gets its length. */
static int
url_parse_v6(const char *a, size_t len, struct url *u, size_t *used, const char **err)
{
	const char *end = memchr(a, ']', len);
	char tmp[INET6_ADDRSTRLEN + 1];
	struct in6_addr in6;
	size_t n;

	if (end == NULL)
		goto fail;
	n = (size_t)(end - a - 1);
	if (n == 0 || n >= sizeof(tmp))
		goto fail;
	memcpy(tmp, a + 1, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET6, tmp, &in6) != 1)
		goto fail;
	u->host = xstrndup(tmp, n);
	*used = n + 2;
	return 0;
fail:
	*err = "expected an IPv6 address within [ ] as the host";
	return -1;
}

static const char *
url_host_error(char c)
{
	if (c == '@')
		return "a URL may not contain user information (user@)";
	if (c == '$')
		return "a $N reference may not be part of the host; write it after a \"/\" "
		       "(http://host/$1)";
	return "invalid character in the URL's host";
}

static int
url_parse_name(const char *a, size_t len, struct url *u, size_t *used, const char **err)
{
	size_t n = 0;

	while (n < len && a[n] != ':') {
		if (!url_is_host_char(a[n])) {
			*err = url_host_error(a[n]);
			return -1;
		}
		n++;
	}
	if (n == 0) {
		*err = "the URL has an empty host";
		return -1;
	}
	u->host = xstrndup(a, n);
	*used = n;
	return 0;
}

static void
url_set_authority(struct url *u)
{
	bool v6 = strchr(u->host, ':') != NULL;
	bool dflt = u->port == (u->tls ? 443 : 80);
	struct buf b;

	buf_init(&b);
	buf_addf(&b, v6 ? "[%s]" : "%s", u->host);
	if (!dflt)
		buf_addf(&b, ":%u", (unsigned)u->port);
	u->authority = buf_steal(&b);
}

/* The authority is the `len` bytes at `a`: host, optionally ":port". */
static int
url_parse_authority(const char *a, size_t len, struct url *u, const char **err)
{
	size_t used;

	if (memchr(a, '@', len) != NULL) {
		*err = "a URL may not contain user information (user@)";
		return -1;
	}
	if (len > 0 && a[0] == '[') {
		if (url_parse_v6(a, len, u, &used, err) < 0)
			return -1;
	} else if (url_parse_name(a, len, u, &used, err) < 0) {
		return -1;
	}
	for (char *p = u->host; *p; p++)
		*p = ascii_lower(*p);
	if (used < len) {
		if (a[used] != ':') {
			*err = "expected \":port\" or \"/\" after the URL's host";
			return -1;
		}
		if (url_parse_port(a + used + 1, len - used - 1, &u->port, err) < 0)
			return -1;
	}
	url_set_authority(u);
	return 0;
}

int
url_parse(const char *s, struct url *u, const char **err)
{
	size_t off, alen;

	memset(u, 0, sizeof(*u));
	off = url_parse_scheme(s, u);
	if (off == 0) {
		*err = URL_ERR_SCHEME;
		goto fail;
	}
	if (url_check_bytes(s, err) < 0)
		goto fail;
	alen = strcspn(s + off, "/?");
	if (url_parse_authority(s + off, alen, u, err) < 0)
		goto fail;
	u->path = xstrdup(s + off + alen);
	return 0;
fail:
	url_free(u);
	return -1;
}

void
url_free(struct url *u)
{
	xfree(u->scheme);
	xfree(u->host);
	xfree(u->authority);
	xfree(u->path);
	memset(u, 0, sizeof(*u));
}

static char *
url_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void
url_copy(struct url *dst, const struct url *src)
{
	dst->scheme = url_dup(src->scheme);
	dst->host = url_dup(src->host);
	dst->port = src->port;
	dst->tls = src->tls;
	dst->authority = url_dup(src->authority);
	dst->path = url_dup(src->path);
}
