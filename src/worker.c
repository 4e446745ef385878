/*
 * worker.c: an event-loop thread.  Owns its event_base, its listeners (the
 * daemon binds the sockets, one per listener per worker with SO_REUSEPORT),
 * its clients, upstream pool and resolver, the deferred teardown pass, the
 * configuration swap on reload and the graceful drain on stop.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "portico/client.h"
#include "portico/config.h"
#include "portico/http.h"
#include "portico/log.h"
#include "portico/proxy.h"
#include "portico/resolve.h"
#include "portico/upstream.h"
#include "portico/worker.h"

static void
worker_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	while (w->closing != NULL) {
		struct client *c = w->closing;

		w->closing = c->next_closing;
		c->next_closing = NULL;
		client_free(c);
	}
	while (w->up_closing != NULL) {
		struct upstream *u = w->up_closing;

		w->up_closing = u->next;
		upstream_free(u);
	}
}

void
worker_schedule_reap(struct worker *w)
{
	event_active(w->reap_ev, EV_TIMEOUT, 0);
}

void
worker_next_reqid(struct worker *w, char out[17])
{
	http_reqid_format(out, w->reqid_base | (w->reqseq++ & 0xfffffffffull));
}

static void
worker_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
		 void *arg)
{
	struct wlistener *l = arg;
	struct worker *w = l->w;

	(void)lev;
	if (w->draining) {
		close(fd);
		return;
	}
	client_accept(w, l, fd, sa, salen);
	if (w->max_clients && w->nclients >= w->max_clients && !w->accept_paused) {
		w->accept_paused = true;
		for (size_t i = 0; i < w->nlisteners; i++)
			if (w->listeners[i].lev)
				evconnlistener_disable(w->listeners[i].lev);
		log_warn("worker %u: at the connection limit (%llu), accepting paused", w->id,
			 (unsigned long long)w->max_clients);
	}
}

static void
worker_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct wlistener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)lev;
	log_error("worker %u: accept: %s", l->w->id, evutil_socket_error_to_string(err));
}

void
worker_client_gone(struct worker *w)
{
	if (w->accept_paused && w->nclients < w->max_clients && !w->draining) {
		w->accept_paused = false;
		for (size_t i = 0; i < w->nlisteners; i++)
			if (w->listeners[i].lev)
				evconnlistener_enable(w->listeners[i].lev);
	}
	if (w->draining && w->nclients == 0)
		event_base_loopexit(w->base, NULL);
}

static int
wlistener_open(struct worker *w, struct wlistener *l, const struct listen_sock *s)
{
	l->w = w;
	l->fd = s->fds[w->id];
	l->scheme = s->tls ? "https" : "http";
	l->lev = evconnlistener_new(w->base, worker_accept_cb, l,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1, l->fd);
	if (l->lev == NULL)
		return -1;
	evconnlistener_set_error_cb(l->lev, worker_accept_error_cb);
	return 0;
}

static void
worker_close_listeners(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].lev)
			evconnlistener_free(w->listeners[i].lev);
	free(w->listeners);
	w->listeners = NULL;
	w->nlisteners = 0;
}

/*
 * Takes the listeners of a new set: a socket that stays keeps its
 * evconnlistener (no refused connection during a reload), new ones are
 * opened, the others closed.  The wlistener array is rebuilt, so clients
 * hold no pointer into it beyond the scheme string, which is static.
 */
static void
worker_apply_set(struct worker *w, const struct listen_set *set)
{
	struct wlistener *nl = xcalloc(set->n ? set->n : 1, sizeof(*nl));

	for (size_t i = 0; i < set->n; i++) {
		int fd = set->socks[i].fds[w->id];
		size_t j;

		for (j = 0; j < w->nlisteners; j++)
			if (w->listeners[j].fd == fd && w->listeners[j].lev)
				break;
		if (j < w->nlisteners) {
			nl[i] = w->listeners[j];
			w->listeners[j].lev = NULL;
			evconnlistener_set_cb(nl[i].lev, worker_accept_cb, &nl[i]);
			evconnlistener_set_error_cb(nl[i].lev, worker_accept_error_cb);
		} else if (wlistener_open(w, &nl[i], &set->socks[i]) == -1) {
			log_error("worker %u: cannot listen on %s", w->id, set->socks[i].address);
		}
	}
	worker_close_listeners(w);
	w->listeners = nl;
	w->nlisteners = set->n;
}

static void
worker_begin_drain(struct worker *w)
{
	struct timeval tv;

	if (w->draining)
		return;
	w->draining = true;
	worker_close_listeners(w);
	upstream_pool_close_idle(w->pool);
	for (struct client *c = w->clients; c; c = c->next)
		client_drain(c);
	tv.tv_sec = (time_t)(w->shutdown_ms / 1000);
	tv.tv_usec = (suseconds_t)((w->shutdown_ms % 1000) * 1000);
	evtimer_add(w->shutdown_ev, &tv);
	if (w->nclients == 0)
		event_base_loopexit(w->base, NULL);
}

static void
worker_shutdown_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	log_warn("worker %u: shutdown timeout, closing %llu connections", w->id,
		 (unsigned long long)w->nclients);
	for (struct client *c = w->clients; c; c = c->next)
		client_close(c, "shutdown timeout");
	worker_reap_cb(-1, 0, w);
	event_base_loopexit(w->base, NULL);
}

/* limits.connections shared out between the workers (rounded up). */
static uint64_t
worker_connection_limit(const struct worker *w, const struct config *cfg)
{
	uint64_t n = cfg->limits.connections;

	return n ? (n + w->nworkers - 1) / w->nworkers : 0;
}

static void
worker_swap_config(struct worker *w, struct config *cfg)
{
	struct config *old = w->cfg;

	w->cfg = cfg;
	w->max_clients = worker_connection_limit(w, cfg);
	resolver_set_config(w->resolver, cfg);
	w->shutdown_ms = cfg->timeouts.shutdown;
	config_unref(old);
}

static void
worker_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct config *cfg;
	struct listen_set *set;
	bool stop;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->lock);
	cfg = w->pending_cfg;
	set = w->pending_set;
	stop = w->stop_requested;
	w->pending_cfg = NULL;
	w->pending_set = NULL;
	if (set != NULL && !w->draining)
		worker_apply_set(w, set);
	pthread_mutex_unlock(&w->lock);
	if (cfg != NULL)
		worker_swap_config(w, cfg);
	if (stop)
		worker_begin_drain(w);
}

void
worker_post_config(struct worker *w, struct config *cfg, struct listen_set *set)
{
	struct config *old;

	pthread_mutex_lock(&w->lock);
	old = w->pending_cfg;
	w->pending_cfg = config_ref(cfg);
	w->pending_set = set;
	pthread_mutex_unlock(&w->lock);
	if (old != NULL)
		config_unref(old);
	event_active(w->notify_ev, EV_READ, 0);
}

void
worker_post_stop(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->stop_requested = true;
	pthread_mutex_unlock(&w->lock);
	event_active(w->notify_ev, EV_READ, 0);
}

int
worker_init(struct worker *w, unsigned id, unsigned nworkers, struct config *cfg,
	    const struct listen_set *set, uint64_t start_time)
{
	struct event_config *ec = event_config_new();

	memset(w, 0, sizeof(*w));
	w->magic = WORKER_MAGIC;
	w->id = id;
	w->nworkers = nworkers ? nworkers : 1;
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	w->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (w->base == NULL)
		return -1;
	pthread_mutex_init(&w->lock, NULL);
	w->cfg = config_ref(cfg);
	w->reap_ev = event_new(w->base, -1, 0, worker_reap_cb, w);
	w->notify_ev = event_new(w->base, -1, 0, worker_notify_cb, w);
	w->shutdown_ev = evtimer_new(w->base, worker_shutdown_cb, w);
	w->resolver = resolver_new(w->base);
	if (w->resolver == NULL)
		return -1;
	resolver_set_config(w->resolver, cfg);
	w->pool = upstream_pool_new(w);
	w->shutdown_ms = cfg->timeouts.shutdown;
	w->max_clients = worker_connection_limit(w, cfg);
	/* Request ids: 20 bits of start time, 8 of worker, 36 of counter. */
	w->reqid_base = ((start_time & 0xfffffull) << 44) | ((uint64_t)(id & 0xff) << 36);
	worker_apply_set(w, set);
	return 0;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

int
worker_start(struct worker *w)
{
	return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void
worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}

void
worker_destroy(struct worker *w)
{
	while (w->clients != NULL) {
		struct client *c = w->clients;

		client_close(c, "exit");
		worker_reap_cb(-1, 0, w);
	}
	worker_close_listeners(w);
	upstream_pool_free(w->pool);
	worker_reap_cb(-1, 0, w);
	while (w->free_reqs != NULL) {
		struct request *req = w->free_reqs;

		w->free_reqs = req->next_free;
		buf_free(&req->head);
		buf_free(&req->rhead);
		buf_free(&req->path);
		buf_free(&req->target);
		free(req->hdrs);
		free(req);
	}
	buf_free(&w->scratch);
	resolver_free(w->resolver);
	event_free(w->reap_ev);
	event_free(w->notify_ev);
	event_free(w->shutdown_ev);
	if (w->pending_cfg)
		config_unref(w->pending_cfg);
	config_unref(w->cfg);
	event_base_free(w->base);
	pthread_mutex_destroy(&w->lock);
}
