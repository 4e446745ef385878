/*
 * resolve.h: upstream host names to addresses without blocking the event
 * loop.  One resolver per worker.  `hosts:` overrides come first, numeric
 * addresses need no lookup, other names go through evdns and are cached for
 * their DNS TTL (bounded), then looked up again.
 */
#ifndef PORTICO_RESOLVE_H
#define PORTICO_RESOLVE_H

#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct config;
struct resolver;
struct resolve_req;

/* err is 0 on success, else a static reason ("name not found", "timeout"). */
typedef void (*resolve_cb)(const char *err, const struct sockaddr *sa, socklen_t salen, void *arg);

/* Nameservers from /etc/resolv.conf; names from /etc/hosts answer at once. */
struct resolver *resolver_new(struct event_base *base);
/*
 * Like resolver_new() but asks only `nameserver` ("ip" or "ip:port"), with no
 * search domains.  NULL when the address is not numeric.
 */
struct resolver *resolver_new_with_nameserver(struct event_base *base, const char *nameserver);
void resolver_free(struct resolver *r);
/* Takes the `hosts:` overrides of a (new) snapshot; drops cached answers. */
void resolver_set_config(struct resolver *r, const struct config *cfg);

/*
 * Fills `sa` at once when the answer is known (override, numeric, fresh cache
 * entry): returns 0.  Returns -1 when a lookup is needed.
 */
int resolver_lookup_now(struct resolver *r, const char *host, uint16_t port,
			struct sockaddr_storage *sa, socklen_t *salen);
/*
 * Starts a lookup; `cb` is always called later from the event loop, never
 * from inside this call, unless resolve_cancel() is called first.  The
 * request is freed once `cb` has run: do not cancel it after that.
 * Concurrent lookups of one name share one DNS query.
 */
struct resolve_req *resolver_lookup(struct resolver *r, const char *host, uint16_t port,
				    resolve_cb cb, void *arg);
void resolve_cancel(struct resolve_req *q);

#endif
