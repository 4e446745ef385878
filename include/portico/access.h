/*
 * access.h: allow/deny lists of addresses and CIDR blocks (SPEC section 7).
 */
#ifndef PORTICO_ACCESS_H
#define PORTICO_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "portico/util.h"

struct access_rule {
	bool allow;
	bool all;	  /* "all": matches every address */
	int family;	  /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network address, host bits cleared */
	unsigned prefix;  /* 0..32 or 0..128 */
};

struct access_list {
	struct access_rule *rules;
	size_t n;
};

/* Parses "all", an address or a CIDR block.  0, or -1 with *err set (static text). */
int access_rule_parse(const char *text, bool allow, struct access_rule *r, const char **err);
/* Parses an address or a CIDR block ("all" is refused) as an allow rule; like access_rule_parse. */
int access_cidr_parse(const char *text, struct access_rule *r, const char **err);
/*
 * The first rule matching `sa` decides; no match denies.  A NULL list (no
 * access rules configured) allows.  IPv4-mapped IPv6 addresses match as IPv4.
 */
bool access_is_allowed(const struct access_list *l, const struct sockaddr *sa);
/* The index of the first rule matching `sa`, or -1 when none does (or `l` is NULL). */
long access_first_match(const struct access_list *l, const struct sockaddr *sa);
/* Appends the rule as written in the configuration ("allow: 10.0.0.0/8", "deny: all"). */
void access_rule_format(const struct access_rule *r, struct buf *out);
void access_list_free(struct access_list *l);

#endif
