/*
 * realip.c: the client address behind trusted forwarders: X-Forwarded-For
 * walked from the right while the hop that added the entry is trusted
 * (nginx's realip module with real_ip_recursive on).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "portico/http.h"
#include "portico/realip.h"

static bool
realip_is_separator(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

/* 1..5 decimal digits, at most 65535. */
static int
realip_port(const char *p, size_t len, uint16_t *port)
{
	uint64_t v;

	if (len > 5 || http_parse_length(p, len, &v) < 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* A numeric address of the given family (0: either) into *ss. */
static int
realip_numeric(const char *p, size_t len, int family, uint16_t port, struct sockaddr_storage *ss)
{
	char text[INET6_ADDRSTRLEN];
	struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;

	if (len == 0 || len >= sizeof(text))
		return -1;
	memcpy(text, p, len);
	text[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family != AF_INET6 && inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return 0;
	}
	if (family != AF_INET && inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		return 0;
	}
	return -1;
}

/* "a.b.c.d", "a.b.c.d:port", "v6", "[v6]" or "[v6]:port". */
static int
realip_entry(const char *p, size_t len, struct sockaddr_storage *ss)
{
	const char *colon;
	uint16_t port = 0;

	if (p[0] == '[') {
		const char *close = memchr(p, ']', len);
		size_t rest;

		if (close == NULL)
			return -1;
		rest = len - (size_t)(close + 1 - p);
		if (rest > 0 && (close[1] != ':' || realip_port(close + 2, rest - 1, &port) < 0))
			return -1;
		return realip_numeric(p + 1, (size_t)(close - p - 1), AF_INET6, port, ss);
	}
	colon = memchr(p, ':', len);
	if (colon && memchr(colon + 1, ':', len - (size_t)(colon + 1 - p)) == NULL) {
		/* One colon: an IPv4 address and a port. */
		if (realip_port(colon + 1, len - (size_t)(colon + 1 - p), &port) < 0)
			return -1;
		return realip_numeric(p, (size_t)(colon - p), AF_INET, port, ss);
	}
	return realip_numeric(p, len, 0, 0, ss);
}

/*
 * The entry before position *end of value v (right to left): its span, and
 * *end moved before it.  false when the value has no entry left.
 */
static bool
realip_prev_entry(const struct realip_value *v, size_t *end, const char **tok, size_t *toklen)
{
	size_t e = *end, s;

	while (e > 0 && realip_is_separator(v->p[e - 1]))
		e--;
	if (e == 0)
		return false;
	s = e;
	while (s > 0 && !realip_is_separator(v->p[s - 1]))
		s--;
	*tok = v->p + s;
	*toklen = e - s;
	*end = s;
	return true;
}

static bool
realip_is_trusted(const struct access_list *trusted, const struct sockaddr *sa)
{
	return access_first_match(trusted, sa) >= 0;
}

static void
realip_copy(struct sockaddr_storage *dst, const struct sockaddr *sa)
{
	memset(dst, 0, sizeof(*dst));
	if (sa->sa_family == AF_INET)
		memcpy(dst, sa, sizeof(struct sockaddr_in));
	else if (sa->sa_family == AF_INET6)
		memcpy(dst, sa, sizeof(struct sockaddr_in6));
	else
		dst->ss_family = sa->sa_family;
}

void
realip_client(const struct sockaddr *peer, const struct access_list *trusted,
	      const struct realip_value *xff, size_t n, struct realip_result *out)
{
	memset(out, 0, sizeof(*out));
	realip_copy(&out->client, peer);
	if (trusted == NULL || trusted->n == 0 || !realip_is_trusted(trusted, peer))
		return;
	for (size_t i = n; i-- > 0;) {
		size_t end = xff[i].len;
		const char *tok;
		size_t toklen;

		while (realip_prev_entry(&xff[i], &end, &tok, &toklen)) {
			struct sockaddr_storage entry;

			if (realip_entry(tok, toklen, &entry) < 0) {
				out->malformed = true;
				return;
			}
			out->client = entry;
			out->forwarded = true;
			if (!realip_is_trusted(trusted, (const struct sockaddr *)&entry))
				return;
		}
	}
}
