/*
 * realip.h: the client address behind trusted forwarders (SPEC section 13,
 * forwarded.trusted), as nginx's realip module computes it with
 * real_ip_recursive on.  A pure function: no allocation, no I/O.
 *
 * Thread-safe: it only reads its arguments.
 */
#ifndef PORTICO_REALIP_H
#define PORTICO_REALIP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "portico/access.h"

/* One X-Forwarded-For field value, as received (not NUL-terminated). */
struct realip_value {
	const char *p;
	size_t len;
};

struct realip_result {
	/* The client: an address from X-Forwarded-For, or a copy of the peer. */
	struct sockaddr_storage client;
	bool forwarded; /* client was taken from X-Forwarded-For */
	/* The walk stopped at an entry that is not an address ("unknown", a name). */
	bool malformed;
};

/*
 * The client address of a request received from `peer` (the socket's peer,
 * or the address a PROXY header carried) with the X-Forwarded-For field
 * values `xff[0..n)` in the order they appear; several fields form one list.
 *
 * When the peer matches `trusted` (the rules' allow/deny is not looked at:
 * any match is trusted), entries are taken from the right: the first one
 * that is not itself trusted is the client.  When every entry is trusted, the
 * leftmost is.  Entries are separated by commas and whitespace (empty ones
 * are skipped) and are IPv4 or IPv6 addresses, optionally "[v6]", with a
 * port ("192.0.2.1:5678", "[2001:db8::1]:5678"), which is kept.  An entry
 * that is not an address stops the walk, as nginx does: the client is the
 * last address reached, that is the rightmost trusted entry before it, or
 * the peer itself.  A peer that is not trusted, a NULL or empty `trusted`,
 * or no entries leave the peer as the client.
 */
void realip_client(const struct sockaddr *peer, const struct access_list *trusted,
		   const struct realip_value *xff, size_t n, struct realip_result *out);

#endif
