/*
 * health.h: active health checks of upstream groups (SPEC section 12).
 *
 * One checker per process, on the main thread's event loop: the workers
 * never run checks, so a server is checked once per interval however many
 * workers there are.  A check is an HTTP/1.1 GET of the group's
 * active.path with Connection: close; it passes when a status line in
 * active.expect arrives within active.timeout.  Results go into the
 * servers' shared state (group.h), which the workers read without locks;
 * a server that changes between up and down gets a log line with the
 * reason.  Checks speak plain HTTP, also for groups used by https://
 * routes.
 */
#ifndef PORTICO_HEALTH_H
#define PORTICO_HEALTH_H

struct config;
struct event_base;
struct health;

struct health *health_new(struct event_base *base);
/*
 * Checks the groups of `cfg` from now on (a reference is taken); checks in
 * flight for the previous snapshot are dropped.  Call after
 * group_adopt_state() on a reload, so kept servers keep their state.
 */
void health_set_config(struct health *h, struct config *cfg);
void health_free(struct health *h);

#endif
