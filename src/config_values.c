/*
 * config_values.c: the value syntaxes of portico.yaml that need no YAML
 * node: sizes and durations with their units, booleans, listen addresses,
 * host names and the checks of name-like strings.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "config_int.h"

int
cfg_parse_uint(const char *s, uint64_t *out, const char **end)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	*end = p;
	return 0;
}

static int
scale(uint64_t v, uint64_t unit, uint64_t *out)
{
	if (v != 0 && unit > UINT64_MAX / v)
		return -1;
	*out = v * unit;
	return 0;
}

/* A unit a number may carry: "KiB", "s". */
struct unit {
	const char *suffix;
	uint64_t unit;
};

static const struct unit size_units[] = {
    {"", 1},	{"k", KIB},   {"K", KIB}, {"KiB", KIB}, {"m", MIB},
    {"M", MIB}, {"MiB", MIB}, {"g", GIB}, {"G", GIB},	{"GiB", GIB},
};

static const struct unit duration_units[] = {
    {"ms", 1},
    {"s", SEC},
    {"m", MIN},
    {"h", HOUR},
};

/* How bounds are written: the largest unit that divides the value; the last is 1. */
static const struct unit size_text_units[] = {
    {"GiB", GIB},
    {"MiB", MIB},
    {"KiB", KIB},
    {"", 1},
};

static const struct unit duration_text_units[] = {
    {"h", HOUR},
    {"m", MIN},
    {"s", SEC},
    {"ms", 1},
};

/* A number followed by one of the `n` suffixes of `units`, times that unit. */
static int
parse_units(const char *s, const struct unit *units, size_t n, uint64_t *out)
{
	const char *end;
	uint64_t v;

	if (cfg_parse_uint(s, &v, &end) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(end, units[i].suffix) == 0)
			return scale(v, units[i].unit, out);
	return -1;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	return parse_units(s, size_units, ARRAY_SIZE(size_units), out);
}

int
config_parse_duration(const char *s, uint64_t *out_ms)
{
	return parse_units(s, duration_units, ARRAY_SIZE(duration_units), out_ms);
}

/* `v` in the first of the `n` units (largest first) that divides it; 0 in the last. */
static void
units_text(char *out, size_t len, uint64_t v, const struct unit *units, size_t n)
{
	size_t i = 0;

	while (i + 1 < n && (v == 0 || v % units[i].unit != 0))
		i++;
	snprintf(out, len, "%" PRIu64 "%s", v / units[i].unit, units[i].suffix);
}

/* A bound in the unit a person would write it in. */
void
cfg_bound_text(const struct ckey *k, char *out, size_t len, uint64_t v)
{
	if (k->type == KT_SIZE)
		units_text(out, len, v, size_text_units, ARRAY_SIZE(size_text_units));
	else if (k->type == KT_DURATION && v == 0)
		snprintf(out, len, "0s");
	else if (k->type == KT_DURATION)
		units_text(out, len, v, duration_text_units, ARRAY_SIZE(duration_text_units));
	else
		snprintf(out, len, "%" PRIu64, v);
}

int
cfg_parse_bool_text(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

bool
cfg_addr_is_loopback(const struct sockaddr_storage *ss)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	const struct sockaddr_in6 *in6 = (const void *)ss;
	if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
		return true;
	return memcmp(in6->sin6_addr.s6_addr, mapped, 12) == 0 && in6->sin6_addr.s6_addr[12] == 127;
}

int
cfg_addr_port(const char *s, uint16_t *port)
{
	const char *end;
	uint64_t v;

	if (cfg_parse_uint(s, &v, &end) < 0 || *end != '\0' || v < 1 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* "host:port", "[v6]:port" or "*:port", numeric only. */
int
cfg_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *salen, bool *any)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *h = s;
	size_t hlen;
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	*any = false;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(host) || cfg_addr_port(colon + 1, &port) < 0)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (s[0] != '[' && strcmp(host, "*") == 0) {
		struct sockaddr_in6 *in6 = (void *)ss;

		*any = true;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_any;
		in6->sin6_port = htons(port);
		*salen = sizeof(*in6);
		return 0;
	}
	if (s[0] != '[') {
		struct sockaddr_in *in = (void *)ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -1;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*salen = sizeof(*in);
		return 0;
	}
	struct sockaddr_in6 *in6 = (void *)ss;
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
		return -1;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	*salen = sizeof(*in6);
	return 0;
}

bool
cfg_hostname_is_valid(const char *s, bool wildcard)
{
	if (wildcard && s[0] == '*' && s[1] == '.')
		s += 2;
	if (*s == '\0' || *s == '.')
		return false;
	for (; *s; s++) {
		char ch = ascii_lower(*s);

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      ch == '.' || ch == '_'))
			return false;
	}
	return true;
}

bool
cfg_addr_is_numeric(const char *s)
{
	uint8_t tmp[16];

	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

bool
cfg_host_is_v6_literal(const char *s)
{
	size_t n = strlen(s);
	char tmp[INET6_ADDRSTRLEN + 1];
	struct in6_addr a;

	if (n < 3 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof(tmp))
		return false;
	memcpy(tmp, s + 1, n - 2);
	tmp[n - 2] = '\0';
	return inet_pton(AF_INET6, tmp, &a) == 1;
}

char *
cfg_lower_dup(const char *s)
{
	char *d = xstrdup(s);

	for (char *p = d; *p; p++)
		*p = ascii_lower(*p);
	return d;
}

/*
 * routes[].name: a label that log lines carry as route=NAME and metrics as a
 * label value, so one token.
 */
bool
cfg_check_route_name(const char *s)
{
	return s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:")] ==
	       '\0';
}

/* routes[].tls.server_name: what SNI carries and the certificate must name, or an address. */
bool
cfg_check_tls_server_name(const char *s)
{
	return cfg_hostname_is_valid(s, false) || cfg_addr_is_numeric(s);
}
