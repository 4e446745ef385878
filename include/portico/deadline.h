/*
 * deadline.h: timeouts that cost nothing when they move later.
 *
 * A connection's timeout is pushed back on every request (the idle
 * keep-alive timeout after each response, the upstream read timeout after
 * each read).  Re-adding a libevent timer each time costs a heap update;
 * a deadline only records the new time.  Its event stays armed at the
 * earliest time set since it last fired: when it fires before the current
 * deadline it re-arms itself for the rest, and when the deadline is
 * cleared it does nothing.  The event is re-added only when a deadline
 * moves earlier than the time it is armed for.
 *
 * Times are CLOCK_MONOTONIC microseconds (deadline_now_us: as of the
 * clock's last tick, so timeouts are good to a tick).  One thread: the
 * owner's worker.
 */
#ifndef PORTICO_DEADLINE_H
#define PORTICO_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/event_struct.h>

struct event_base;

struct deadline {
	struct event ev;
	uint64_t at;	/* when the callback runs; 0: never */
	uint64_t armed; /* when `ev` fires; 0: not pending */
	void (*cb)(void *arg);
	void *arg;
};

/*
 * Now, for deadlines: CLOCK_MONOTONIC_COARSE in microseconds, the
 * monotonic clock as of its last tick (a few milliseconds at most behind
 * CLOCK_MONOTONIC, and about half the cost to read).  A deadline set from
 * it fires within a tick either way of the time asked, as libevent's own
 * timers (on the same clock) do.  A CLOCK_MONOTONIC time may be given as
 * `now_us` too (a request's start): the deadline then fires up to a tick
 * late, never early.
 */
uint64_t deadline_now_us(void);
/* Clock `id` in microseconds (CLOCK_MONOTONIC: to the microsecond, for durations). */
static inline uint64_t
deadline_clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void deadline_init(struct deadline *d, struct event_base *base, void (*cb)(void *arg), void *arg);
/* The callback runs `ms` milliseconds after `now_us` (deadline_now_us()), unless moved. */
void deadline_set(struct deadline *d, uint64_t now_us, uint64_t ms);
/*
 * The same, but the event is not re-armed until deadline_commit(): for a
 * deadline that is usually cleared again before the callback returns (the
 * rest of a head that arrived whole).  The owner must commit or clear it
 * before returning to the loop.
 */
static inline void
deadline_move(struct deadline *d, uint64_t now_us, uint64_t ms)
{
	d->at = now_us + ms * 1000u;
	if (d->at == 0) /* 0 means none */
		d->at = 1;
}
void deadline_commit(struct deadline *d);
/* The callback does not run (the event may still fire, to no effect). */
static inline void
deadline_clear(struct deadline *d)
{
	d->at = 0;
}
static inline bool
deadline_is_set(const struct deadline *d)
{
	return d->at != 0;
}
/* Removes the event (before the owner is freed). */
void deadline_stop(struct deadline *d);

#endif
