/*
 * acceptguard.h: what a listener does when accept(2) fails.
 *
 * Out of file descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), the
 * connection stays in the kernel's queue, so the listening socket stays
 * readable and a loop that keeps the listener enabled spins on it.  The
 * guard tells its owner to stop accepting and calls it back
 * ACCEPT_GUARD_PAUSE_MS later to accept again.  Failures are logged at most
 * once a second, with the count since the last line.
 */
#ifndef PORTICO_ACCEPTGUARD_H
#define PORTICO_ACCEPTGUARD_H

#include <stdbool.h>

#define ACCEPT_GUARD_PAUSE_MS 500

struct event_base;
struct accept_guard;

/* Called from the loop of `base` when accepting may start again. */
typedef void (*accept_guard_resume_fn)(void *arg);

/* `who` names the listener's owner in log lines ("worker 0", "admin"). */
struct accept_guard *accept_guard_new(struct event_base *base, const char *who,
				      accept_guard_resume_fn resume, void *arg);
void accept_guard_free(struct accept_guard *g);
/* accept(2) failed with `err`: true when the owner must stop accepting until resumed. */
bool accept_guard_failed(struct accept_guard *g, int err);
/* Between a failure that paused accepting and the resume call. */
bool accept_guard_is_paused(const struct accept_guard *g);

#endif
