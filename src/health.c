/*
 * health.c: the active health checker (health.h).  One probe per server
 * of every group with `active`; each probe has a persistent interval timer
 * and at most one check in flight: resolve (hosts:, numeric, DNS) or a
 * unix socket, connect, write the GET, read up to the status line, all
 * within active.timeout.  The probe is the one owner of its connection and
 * timers; health_set_config() frees every probe of the previous snapshot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "portico/config.h"
#include "portico/group.h"
#include "portico/health.h"
#include "portico/log.h"
#include "portico/resolve.h"

#define PROBE_MAGIC    0x50524f42u
#define PROBE_LINE_MAX 1024

struct probe {
	unsigned magic;
	struct health *h;
	const struct server_group *g;
	const struct group_server *s;
	struct event *tick;	/* every interval */
	struct event *deadline; /* the check in flight's timeout */
	struct bufferevent *bev;
	struct resolve_req *rq;
	bool busy;
};

struct health {
	struct event_base *base;
	struct resolver *resolver;
	struct config *cfg;
	struct probe *probes;
	size_t nprobes;
};

/* --- one check ------------------------------------------------------------------------ */

static void
probe_stop(struct probe *p)
{
	if (p->rq != NULL) {
		resolve_cancel(p->rq);
		p->rq = NULL;
	}
	if (p->bev != NULL) {
		bufferevent_free(p->bev);
		p->bev = NULL;
	}
	evtimer_del(p->deadline);
	p->busy = false;
}

static void
probe_done(struct probe *p, bool ok, const char *reason)
{
	const struct server_group *g = p->g;
	const struct group_server *s = p->s;

	probe_stop(p);
	if (!group_server_checked(g, s, ok, reason))
		return;
	if (ok)
		log_info("upstream server up group=%s server=%s reason=health check passed %llu "
			 "times",
			 g->name, s->address, (unsigned long long)g->check.rise);
	else
		log_warn("upstream server down group=%s server=%s reason=health check: %s "
			 "(%llu times)",
			 g->name, s->address, reason, (unsigned long long)g->check.fall);
}

static struct probe *
probe_from_arg(void *arg)
{
	struct probe *p = arg;

	PORTICO_ASSERT(p->magic == PROBE_MAGIC);
	return p;
}

/* The status line, once it is in: "HTTP/1.x NNN ...". */
static void
probe_read_cb(struct bufferevent *bev, void *arg)
{
	struct probe *p = probe_from_arg(arg);
	struct evbuffer *in = bufferevent_get_input(bev);
	char line[PROBE_LINE_MAX], why[64];
	struct evbuffer_ptr eol = evbuffer_search(in, "\r\n", 2, NULL);
	unsigned status;

	if (eol.pos < 0) {
		if (evbuffer_get_length(in) >= PROBE_LINE_MAX)
			probe_done(p, false, "status line too long");
		return;
	}
	if ((size_t)eol.pos >= sizeof(line)) {
		probe_done(p, false, "status line too long");
		return;
	}
	evbuffer_remove(in, line, (size_t)eol.pos);
	line[eol.pos] = '\0';
	if (sscanf(line, "HTTP/1.%*1[01] %3u", &status) != 1 || status < 100 || status > 599) {
		probe_done(p, false, "invalid status line");
		return;
	}
	if (status >= p->g->check.expect_lo && status <= p->g->check.expect_hi) {
		probe_done(p, true, NULL);
		return;
	}
	snprintf(why, sizeof(why), "status %u", status);
	probe_done(p, false, why);
}

static void
probe_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct probe *p = probe_from_arg(arg);
	struct evbuffer *out = bufferevent_get_output(bev);
	const struct group_server *s = p->s;

	if (what & BEV_EVENT_CONNECTED) {
		evbuffer_add_printf(out,
				    "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portico-health\r\n"
				    "Connection: close\r\n\r\n",
				    p->g->check.path, p->g->host ? p->g->host : s->authority);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
		return;
	}
	if (what & BEV_EVENT_EOF)
		probe_done(p, false, "closed before a response");
	else
		probe_done(p, false, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void
probe_connect(struct probe *p, const struct sockaddr *sa, socklen_t salen)
{
	p->bev = bufferevent_socket_new(p->h->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (p->bev == NULL) {
		probe_done(p, false, "out of memory");
		return;
	}
	bufferevent_setcb(p->bev, probe_read_cb, NULL, probe_event_cb, p);
	if (bufferevent_socket_connect(p->bev, sa, (int)salen) == -1)
		probe_done(p, false, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void
probe_resolved(const char *err, const struct sockaddr *sa, socklen_t salen, void *arg)
{
	struct probe *p = probe_from_arg(arg);

	p->rq = NULL;
	if (err != NULL)
		probe_done(p, false, err);
	else
		probe_connect(p, sa, salen);
}

static void
probe_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	probe_done(probe_from_arg(arg), false, "timeout");
}

static void
probe_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = probe_from_arg(arg);
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	struct timeval tv;

	(void)fd;
	(void)what;
	if (p->busy)
		return;
	p->busy = true;
	tv_from_ms(&tv, p->g->check.timeout_ms);
	evtimer_add(p->deadline, &tv);
	if (p->s->unix_path != NULL) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&sa;

		memset(sun, 0, sizeof(*sun));
		sun->sun_family = AF_UNIX;
		snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", p->s->unix_path);
		probe_connect(p, (struct sockaddr *)&sa, sizeof(*sun));
	} else if (resolver_lookup_now(p->h->resolver, p->s->host, p->s->port, &sa, &salen) == 0) {
		probe_connect(p, (struct sockaddr *)&sa, salen);
	} else {
		p->rq = resolver_lookup(p->h->resolver, p->s->host, p->s->port, probe_resolved, p);
	}
}

/* --- the checker ----------------------------------------------------------------------- */

struct health *
health_new(struct event_base *base)
{
	struct health *h = xcalloc(1, sizeof(*h));

	h->base = base;
	return h;
}

static void
health_clear(struct health *h)
{
	for (size_t i = 0; i < h->nprobes; i++) {
		struct probe *p = &h->probes[i];

		probe_stop(p);
		event_free(p->tick);
		event_free(p->deadline);
		p->magic = 0;
	}
	free(h->probes);
	h->probes = NULL;
	h->nprobes = 0;
	config_unref(h->cfg);
	h->cfg = NULL;
}

static void
probe_init(struct health *h, struct probe *p, const struct server_group *g,
	   const struct group_server *s)
{
	struct timeval tv;

	p->magic = PROBE_MAGIC;
	p->h = h;
	p->g = g;
	p->s = s;
	p->tick = event_new(h->base, -1, EV_PERSIST, probe_tick_cb, p);
	p->deadline = evtimer_new(h->base, probe_deadline_cb, p);
	if (p->tick == NULL || p->deadline == NULL)
		fatal("health: out of memory");
	tv_from_ms(&tv, g->check.interval_ms);
	event_add(p->tick, &tv);
	event_active(p->tick, EV_TIMEOUT, 0); /* the first check now */
}

void
health_set_config(struct health *h, struct config *cfg)
{
	size_t n = 0;

	health_clear(h);
	if (h->resolver == NULL && (h->resolver = resolver_new(h->base)) == NULL)
		fatal("health: cannot create a resolver");
	resolver_set_config(h->resolver, cfg);
	for (size_t i = 0; i < cfg->ngroups; i++)
		if (cfg->groups[i].active)
			n += cfg->groups[i].nservers;
	if (n == 0)
		return;
	h->cfg = config_ref(cfg);
	h->probes = xcalloc(n, sizeof(*h->probes));
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct server_group *g = &cfg->groups[i];

		for (size_t j = 0; g->active && j < g->nservers; j++)
			probe_init(h, &h->probes[h->nprobes++], g, &g->servers[j]);
	}
}

void
health_free(struct health *h)
{
	if (h == NULL)
		return;
	health_clear(h);
	if (h->resolver != NULL)
		resolver_free(h->resolver);
	free(h);
}
