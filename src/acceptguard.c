/*
 * acceptguard.c: pausing a listener that cannot accept (acceptguard.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/util.h>

#include "portico/acceptguard.h"
#include "portico/log.h"

#define ACCEPT_GUARD_LOG_US 1000000u

struct accept_guard {
	struct event *timer;
	accept_guard_resume_fn resume;
	void *arg;
	char who[32];
	bool paused;
	bool logged; /* a line was written: last_log_us is meaningful */
	uint64_t last_log_us;
	unsigned long failures; /* since the last line */
};

static uint64_t
guard_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
guard_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct accept_guard *g = arg;

	(void)fd;
	(void)what;
	g->paused = false;
	g->resume(g->arg);
}

struct accept_guard *
accept_guard_new(struct event_base *base, const char *who, accept_guard_resume_fn resume, void *arg)
{
	struct accept_guard *g = xcalloc(1, sizeof(*g));

	g->timer = evtimer_new(base, guard_timer_cb, g);
	PORTICO_ASSERT(g->timer != NULL);
	g->resume = resume;
	g->arg = arg;
	snprintf(g->who, sizeof(g->who), "%s", who);
	return g;
}

void
accept_guard_free(struct accept_guard *g)
{
	if (g == NULL)
		return;
	event_free(g->timer);
	free(g);
}

/* Out of descriptors or memory: retrying at once cannot succeed. */
static bool
guard_is_resource_error(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* At most one line a second, counting the failures it stands for. */
static void
guard_log(struct accept_guard *g, int err, bool pause)
{
	uint64_t now = guard_now_us();

	g->failures++;
	if (g->logged && now - g->last_log_us < ACCEPT_GUARD_LOG_US)
		return;
	if (pause)
		log_error("%s: accept: %s (%lu since the last report); accepting paused for %d ms",
			  g->who, evutil_socket_error_to_string(err), g->failures,
			  ACCEPT_GUARD_PAUSE_MS);
	else
		log_error("%s: accept: %s (%lu since the last report)", g->who,
			  evutil_socket_error_to_string(err), g->failures);
	g->logged = true;
	g->last_log_us = now;
	g->failures = 0;
}

bool
accept_guard_failed(struct accept_guard *g, int err)
{
	struct timeval tv = {.tv_sec = ACCEPT_GUARD_PAUSE_MS / 1000,
			     .tv_usec = (ACCEPT_GUARD_PAUSE_MS % 1000) * 1000};
	bool pause = guard_is_resource_error(err);

	guard_log(g, err, pause);
	if (!pause || g->paused)
		return false;
	g->paused = true;
	evtimer_add(g->timer, &tv);
	return true;
}

bool
accept_guard_is_paused(const struct accept_guard *g)
{
	return g->paused;
}
