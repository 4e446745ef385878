/*
 * access.c: allow/deny rules over client addresses (SPEC section 7):
 * parsing "all", addresses and CIDR blocks, and the first-match decision.
 * IPv4-mapped IPv6 addresses are treated as the IPv4 address they carry,
 * both in rules and in client addresses.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "portico/access.h"
#include "portico/util.h"

static const uint8_t access_v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const char access_err_rule[] = "expected \"all\", an IPv4 or IPv6 address, or a CIDR block";
static const char access_err_cidr[] = "expected an IPv4 or IPv6 address or a CIDR block";

static int
access_parse_prefix(const char *s, unsigned max, unsigned *prefix)
{
	unsigned v = 0;

	if (*s == '\0' || strlen(s) > 3)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return -1;
	*prefix = v;
	return 0;
}

static void
access_mask(uint8_t *addr, unsigned prefix, size_t alen)
{
	for (size_t i = 0; i < alen; i++) {
		unsigned bits = prefix > 8 * i ? prefix - 8 * (unsigned)i : 0;

		if (bits < 8)
			addr[i] &= (uint8_t)(0xff00u >> bits);
	}
}

/* A rule written as ::ffff:a.b.c.d[/96+n] is the IPv4 rule a.b.c.d[/n]. */
static void
access_unmap_rule(struct access_rule *r)
{
	if (r->family != AF_INET6 || r->prefix < 96 ||
	    memcmp(r->addr, access_v4mapped, sizeof(access_v4mapped)) != 0)
		return;
	memmove(r->addr, r->addr + 12, 4);
	memset(r->addr + 4, 0, 12);
	r->family = AF_INET;
	r->prefix -= 96;
}

static int
access_parse_addr(const char *text, struct access_rule *r)
{
	if (inet_pton(AF_INET, text, r->addr) == 1) {
		r->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, r->addr) == 1) {
		r->family = AF_INET6;
		return 0;
	}
	return -1;
}

int
access_rule_parse(const char *text, bool allow, struct access_rule *r, const char **err)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned max;

	memset(r, 0, sizeof(*r));
	r->allow = allow;
	if (ascii_casecmp_eq(text, strlen(text), "all", 3)) {
		r->all = true;
		return 0;
	}
	*err = access_err_rule;
	if (alen == 0 || alen >= sizeof(addr))
		goto fail;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (access_parse_addr(addr, r) < 0)
		goto fail;
	max = r->family == AF_INET ? 32 : 128;
	r->prefix = max;
	if (slash && access_parse_prefix(slash + 1, max, &r->prefix) < 0) {
		*err = r->family == AF_INET ? "expected a prefix length in 0..32 after \"/\""
					    : "expected a prefix length in 0..128 after \"/\"";
		goto fail;
	}
	access_mask(r->addr, r->prefix, r->family == AF_INET ? 4 : 16);
	access_unmap_rule(r);
	return 0;
fail:
	memset(r, 0, sizeof(*r));
	return -1;
}

int
access_cidr_parse(const char *text, struct access_rule *r, const char **err)
{
	if (access_rule_parse(text, true, r, err) < 0) {
		if (*err == access_err_rule)
			*err = access_err_cidr;
		return -1;
	}
	if (r->all) {
		*err = "expected an IPv4 or IPv6 address or a CIDR block (for every peer, write "
		       "0.0.0.0/0 and ::/0)";
		memset(r, 0, sizeof(*r));
		return -1;
	}
	return 0;
}

/* The client address as (family, bytes); IPv4-mapped IPv6 becomes IPv4.  -1 for other families. */
static int
access_client(const struct sockaddr *sa, uint8_t addr[16])
{
	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memcpy(addr, s6->sin6_addr.s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(addr, s6->sin6_addr.s6_addr, 16);
		return AF_INET6;
	}
	return -1;
}

static bool
access_rule_matches(const struct access_rule *r, int family, const uint8_t *addr)
{
	uint8_t masked[16];
	size_t alen = family == AF_INET ? 4 : 16;

	if (r->all)
		return true;
	if (family != r->family)
		return false;
	memcpy(masked, addr, alen);
	access_mask(masked, r->prefix, alen);
	return memcmp(masked, r->addr, alen) == 0;
}

long
access_first_match(const struct access_list *l, const struct sockaddr *sa)
{
	uint8_t addr[16] = {0};
	int family;

	if (l == NULL)
		return -1;
	family = sa ? access_client(sa, addr) : -1;
	for (size_t i = 0; i < l->n; i++)
		if (access_rule_matches(&l->rules[i], family, addr))
			return (long)i;
	return -1;
}

bool
access_is_allowed(const struct access_list *l, const struct sockaddr *sa)
{
	long i;

	if (l == NULL)
		return true;
	i = access_first_match(l, sa);
	return i >= 0 && l->rules[i].allow;
}

void
access_rule_format(const struct access_rule *r, struct buf *out)
{
	char text[INET6_ADDRSTRLEN];
	unsigned max = r->family == AF_INET ? 32 : 128;

	buf_adds(out, r->allow ? "allow: " : "deny: ");
	if (r->all) {
		buf_adds(out, "all");
		return;
	}
	if (inet_ntop(r->family, r->addr, text, sizeof(text)) == NULL)
		text[0] = '\0';
	buf_adds(out, text);
	if (r->prefix != max)
		buf_addf(out, "/%u", r->prefix);
}

void
access_list_free(struct access_list *l)
{
	xfree(l->rules);
	l->rules = NULL;
	l->n = 0;
}
