/*
 * admin.h: the admin listener (SPEC sections 2 and 11): GET or HEAD
 * /metrics (Prometheus text format) and /healthz ("ok"), 404 for any other
 * path, 405 for any other method.  It runs on the main thread's event base:
 * one request per connection (Connection: close), parsed strictly (head.h),
 * a request head of at most ADMIN_HEAD_MAX bytes and ADMIN_TIMEOUT_S
 * seconds for the whole exchange.
 */
#ifndef PORTICO_ADMIN_H
#define PORTICO_ADMIN_H

#include <stdbool.h>
#include <sys/socket.h>

#include "portico/metrics.h"

#define ADMIN_HEAD_MAX	(8 * 1024)
#define ADMIN_TIMEOUT_S 10

struct admin;
struct event_base;

/* Fills `s` (zeroed) with the values to serve; called once per /metrics. */
typedef void (*admin_collect_fn)(struct metrics_sum *s, void *arg);

/*
 * Appends the upstream groups' report: JSON for GET /upstreams (`json`),
 * else the per-server series that follow the counters of /metrics.
 */
typedef void (*admin_groups_fn)(struct buf *out, bool json, void *arg);

struct admin *admin_new(struct event_base *base, admin_collect_fn collect, void *arg);
/* Serves GET /upstreams and the per-server series of /metrics through `fn` (same `arg`). */
void admin_set_groups(struct admin *a, admin_groups_fn fn);
/*
 * Listens on `sa` (NULL: no admin listener).  An unchanged address keeps
 * its socket; a new one is bound before the old one is closed, so on
 * failure (-1, with *why naming the call and errno set) the old listener
 * keeps serving.
 */
int admin_listen(struct admin *a, const struct sockaddr *sa, socklen_t salen, const char **why);
/* Closes the listener and every admin connection. */
void admin_free(struct admin *a);

#endif
