/*
 * deadline.c: lazily re-armed timeouts (deadline.h).
 */
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "portico/deadline.h"

uint64_t
deadline_now_us(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
	return deadline_clock_us(CLOCK_MONOTONIC_COARSE);
#else
	return deadline_clock_us(CLOCK_MONOTONIC);
#endif
}

static void
deadline_arm(struct deadline *d, uint64_t now_us)
{
	uint64_t left = d->at > now_us ? d->at - now_us : 0;
	struct timeval tv = {.tv_sec = (time_t)(left / 1000000u),
			     .tv_usec = (suseconds_t)(left % 1000000u)};

	evtimer_add(&d->ev, &tv);
	d->armed = d->at;
}

static void
deadline_fire(evutil_socket_t fd, short what, void *arg)
{
	struct deadline *d = arg;
	uint64_t now;

	(void)fd;
	(void)what;
	d->armed = 0;
	if (d->at == 0)
		return;
	now = deadline_now_us();
	if (now < d->at) {
		deadline_arm(d, now);
		return;
	}
	d->at = 0;
	d->cb(d->arg);
}

void
deadline_init(struct deadline *d, struct event_base *base, void (*cb)(void *arg), void *arg)
{
	evtimer_assign(&d->ev, base, deadline_fire, d);
	d->at = d->armed = 0;
	d->cb = cb;
	d->arg = arg;
}

void
deadline_commit(struct deadline *d)
{
	if (d->at != 0 && (d->armed == 0 || d->at < d->armed))
		deadline_arm(d, deadline_now_us());
}

void
deadline_set(struct deadline *d, uint64_t now_us, uint64_t ms)
{
	deadline_move(d, now_us, ms);
	if (d->armed == 0 || d->at < d->armed)
		deadline_arm(d, now_us);
}

void
deadline_stop(struct deadline *d)
{
	event_del(&d->ev);
	d->at = d->armed = 0;
}
