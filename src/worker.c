/*
 * worker.c: an event-loop thread.  Owns its event_base, its listeners (the
 * daemon binds the sockets, one per listener per worker with SO_REUSEPORT),
 * its clients, upstream pool and resolver, the deferred teardown pass, the
 * configuration swap on reload and the graceful drain on stop.
 */
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "portico/acceptguard.h"
#include "portico/client.h"
#include "portico/config.h"
#include "portico/exchange.h"
#include "portico/head.h"
#include "portico/http.h"
#include "portico/log.h"
#include "portico/deadline.h"
#include "portico/metrics.h"
#include "portico/resolve.h"
#include "portico/tls.h"
#include "portico/upstream.h"
#include "portico/worker.h"

static void
worker_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	while (w->reap != NULL) {
		struct worker_reap *r = w->reap;

		w->reap = r->next;
		r->next = NULL;
		r->queued = false;
		r->free(r);
	}
}

void
worker_defer_free(struct worker *w, struct worker_reap *r)
{
	if (r->queued)
		return;
	r->queued = true;
	r->next = w->reap;
	w->reap = r;
	if (w->io_depth == 0)
		event_active(w->reap_ev, EV_TIMEOUT, 0);
}

void
worker_io_enter(struct worker *w)
{
	w->io_depth++;
}

void
worker_io_leave(struct worker *w)
{
	if (--w->io_depth == 0 && w->reap != NULL)
		worker_reap_cb(-1, 0, w);
}

#define FREE_HEADS_MAX 64

struct head *
worker_head_get(struct worker *w)
{
	struct head *h;

	if (w->nfree_heads > 0) {
		h = w->free_heads[--w->nfree_heads];
		head_reset(h, HEAD_REQUEST);
		return h;
	}
	h = xmalloc(sizeof(*h));
	head_init(h);
	return h;
}

void
worker_head_put(struct worker *w, struct head *h)
{
	if (h == NULL)
		return;
	if (w->nfree_heads >= FREE_HEADS_MAX) {
		head_free(h);
		free(h);
		return;
	}
	head_trim(h);
	w->free_heads =
	    xgrow(w->free_heads, &w->free_heads_cap, w->nfree_heads, sizeof(*w->free_heads));
	w->free_heads[w->nfree_heads++] = h;
}

uint64_t
worker_mono_us(void)
{
	return deadline_clock_us(CLOCK_MONOTONIC);
}

uint64_t
worker_next_reqid(struct worker *w)
{
	return w->reqid_base | (w->reqseq++ & 0xfffffffffull);
}

long
worker_read(int fd, struct evbuffer *in)
{
	return worker_read_at_most(fd, in, WORKER_READ_SIZE);
}

long
worker_read_at_most(int fd, struct evbuffer *in, size_t max)
{
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	ssize_t r;
	size_t left;
	int n;

	/* A bufferevent keeps the end of its input frozen outside its own reads. */
	evbuffer_unfreeze(in, 0);
	n = evbuffer_reserve_space(in, (ev_ssize_t)max, v, 2);
	if (n <= 0) {
		evbuffer_freeze(in, 0);
		errno = ENOMEM;
		return -1;
	}
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	r = readv(fd, iov, n);
	if (r <= 0) {
		evbuffer_commit_space(in, v, 0);
		evbuffer_freeze(in, 0);
		return r;
	}
	left = (size_t)r;
	for (int i = 0; i < n; i++) {
		v[i].iov_len = left < v[i].iov_len ? left : v[i].iov_len;
		left -= v[i].iov_len;
	}
	evbuffer_commit_space(in, v, n);
	evbuffer_freeze(in, 0);
	return r;
}

void
worker_input_add(struct evbuffer *in, const void *p, size_t n)
{
	/* A bufferevent keeps the end of its input frozen outside its own reads. */
	evbuffer_unfreeze(in, 0);
	if (evbuffer_add(in, p, n) == -1)
		fatal("out of memory");
	evbuffer_freeze(in, 0);
}

size_t
worker_flush(struct bufferevent *bev, int fd)
{
	struct evbuffer *out;
	size_t left;
	int r;

	if (bev == NULL) /* an idle client without its buffers */
		return 0;
	out = bufferevent_get_output(bev);
	if ((left = evbuffer_get_length(out)) == 0 || (bufferevent_get_enabled(bev) & EV_WRITE))
		return left;
	/* A bufferevent keeps the start of its output frozen outside its own writes. */
	evbuffer_unfreeze(out, 1);
	r = evbuffer_write(out, fd);
	evbuffer_freeze(out, 1);
	if (r > 0)
		left -= (size_t)r;
	if ((r < 0 && errno != EAGAIN && errno != EINTR) || left > 0)
		/* Left to the bufferevent: it finishes, or meets the error itself and reports it.
		 */
		bufferevent_enable(bev, EV_WRITE);
	return left;
}

void
worker_write_done(struct bufferevent *bev)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);
}

#define SPARE_BEVS_MAX 1024

struct bufferevent *
worker_bev_get(struct worker *w)
{
	struct bufferevent *bev = w->kept_bev;

	if (w->nspare > 0)
		return w->spare_bevs[--w->nspare];
	if (bev != NULL) {
		/* Still bound to its old owner: the caller sets it up afresh. */
		w->kept_bev = NULL;
		w->kept_owner = NULL;
		return bev;
	}
	return bufferevent_socket_new(w->base, -1, 0);
}

void
worker_bev_park(struct worker *w, struct bufferevent *bev, const void *owner)
{
	if (w->kept_bev != NULL)
		worker_bev_put(w, w->kept_bev);
	w->kept_bev = bev;
	w->kept_owner = owner;
}

struct bufferevent *
worker_bev_unpark(struct worker *w, const void *owner)
{
	struct bufferevent *bev = w->kept_bev;

	if (bev == NULL || w->kept_owner != owner)
		return NULL;
	w->kept_bev = NULL;
	w->kept_owner = NULL;
	return bev;
}

void
worker_bev_forget(struct worker *w, const void *owner)
{
	struct bufferevent *bev = w->kept_bev;

	if (bev == NULL || w->kept_owner != owner)
		return;
	w->kept_bev = NULL;
	w->kept_owner = NULL;
	worker_bev_put(w, bev);
}

void
worker_bev_put(struct worker *w, struct bufferevent *bev)
{
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_setfd(bev, -1);
	/* Never hand a byte of one connection to another. */
	if (w->nspare >= SPARE_BEVS_MAX || evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		bufferevent_free(bev);
		return;
	}
	/*
	 * An empty input may still hold the chain its last read reserved (a
	 * read of nothing commits nothing and keeps it): up to a read's size
	 * per spare.  evbuffer_drain leaves an empty buffer as it is, so one
	 * byte is added for it to free every chain.
	 */
	worker_input_add(bufferevent_get_input(bev), "", 1);
	evbuffer_drain(bufferevent_get_input(bev), 1);
	w->spare_bevs = xgrow(w->spare_bevs, &w->spare_cap, w->nspare, sizeof(*w->spare_bevs));
	w->spare_bevs[w->nspare++] = bev;
}

/* limits.connections, or fewer when the open-file limit has no room for them (daemon.c). */
static uint64_t
worker_max_clients(const struct worker_shared *sh, const struct config *cfg)
{
	uint64_t cap = atomic_load(&sh->fd_clients);

	return cap != 0 && cap < cfg->limits.connections ? cap : cfg->limits.connections;
}

static void
worker_listeners_enable(struct worker *w, bool on)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		if (w->listeners[i].lev == NULL)
			continue;
		if (on)
			evconnlistener_enable(w->listeners[i].lev);
		else
			evconnlistener_disable(w->listeners[i].lev);
	}
}

/* Pauses or resumes accepting after the shared count moved. */
static void
worker_limit_check(struct worker *w)
{
	uint64_t max = atomic_load(&w->shared->max_clients);
	bool full = max && atomic_load(&w->shared->nclients) >= max;

	if (w->draining || full == w->accept_paused)
		return;
	w->accept_paused = full;
	worker_listeners_enable(w, !full && !accept_guard_is_paused(w->accept_guard));
	if (full)
		log_warn("worker %u: at the connection limit (%llu), accepting paused", w->id,
			 (unsigned long long)max);
}

#define WORKER_WAKE_NOTIFY 0x1u /* the mailbox has something */
#define WORKER_WAKE_LIMIT  0x2u /* re-check the connection limit */

/* From any thread: `why` for `w`, then its eventfd, so its loop sees both. */
static void
worker_wake(struct worker *w, unsigned why)
{
	uint64_t one = 1;
	ssize_t n;

	atomic_fetch_or(&w->wake_bits, why);
	do
		n = write(w->wake_fd, &one, sizeof(one));
	while (n == -1 && errno == EINTR);
	/* EAGAIN: the counter is full, so a wake-up is pending anyway. */
}

/* The count crossed the limit: every worker re-checks (the others from their own loops). */
static void
worker_limit_crossed(struct worker *w)
{
	for (unsigned i = 0; i < w->nworkers; i++)
		if (&w->siblings[i] != w)
			worker_wake(&w->siblings[i], WORKER_WAKE_LIMIT);
	worker_limit_check(w);
}

static void
worker_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
		 void *arg)
{
	struct wlistener *l = arg;
	struct worker *w = l->w;
	uint64_t max = atomic_load(&w->shared->max_clients), n;

	(void)lev;
	if (w->draining) {
		close(fd);
		return;
	}
	n = atomic_fetch_add(&w->shared->nclients, 1) + 1;
	client_accept(w, l, fd, sa, salen, &exchange_stream_events);
	if (w->nclients > w->peak_clients)
		w->peak_clients = w->nclients;
	if (max && n == max)
		worker_limit_crossed(w);
	else if (max && n > max)
		worker_limit_check(w);
}

/* Out of descriptors or memory: every listener of this worker rests (acceptguard.h). */
static void
worker_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct wlistener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)lev;
	if (accept_guard_failed(l->w->accept_guard, err))
		worker_listeners_enable(l->w, false);
}

static void
worker_accept_resume(void *arg)
{
	struct worker *w = arg;

	if (!w->draining && !w->accept_paused)
		worker_listeners_enable(w, true);
}

/*
 * Memory back to the system after a burst: one second after this worker's
 * client count fell to half its peak (of at least TRIM_MIN_PEAK), freed
 * buffers are returned with malloc_trim.  The delay batches the closes of
 * a burst into one trim and bounds trims to one a second per worker.
 */
#define TRIM_MIN_PEAK 64

static void
worker_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	malloc_trim(0);
	w->peak_clients = w->nclients;
}

static void
worker_trim_check(struct worker *w)
{
	struct timeval tv = {.tv_sec = 1};

	if (w->peak_clients >= TRIM_MIN_PEAK && w->nclients <= w->peak_clients / 2 &&
	    !evtimer_pending(w->trim_ev, NULL))
		evtimer_add(w->trim_ev, &tv);
}

void
worker_client_gone(struct worker *w)
{
	uint64_t max = atomic_load(&w->shared->max_clients);
	uint64_t n = atomic_fetch_sub(&w->shared->nclients, 1) - 1;

	if (max && n + 1 == max)
		worker_limit_crossed(w);
	worker_trim_check(w);
	if (w->draining && w->nclients == 0)
		event_base_loopexit(w->base, NULL);
}

static int
wlistener_open(struct worker *w, struct wlistener *l, const struct listen_sock *s)
{
	l->w = w;
	l->fd = s->fds[w->id];
	l->scheme = s->tls ? "https" : "http";
	l->tls = s->tls_server ? tls_server_ref(s->tls_server) : NULL;
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
	for (size_t i = 0; i < w->nlisteners; i++) {
		if (w->listeners[i].lev)
			evconnlistener_free(w->listeners[i].lev);
		if (w->listeners[i].tls)
			tls_server_unref(w->listeners[i].tls);
	}
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
			/* Same socket, this generation's certificates. */
			w->listeners[j].tls = NULL;
			if (nl[i].tls)
				tls_server_unref(nl[i].tls);
			nl[i].tls = set->socks[i].tls_server
					? tls_server_ref(set->socks[i].tls_server)
					: NULL;
			evconnlistener_set_cb(nl[i].lev, worker_accept_cb, &nl[i]);
			evconnlistener_set_error_cb(nl[i].lev, worker_accept_error_cb);
		} else if (wlistener_open(w, &nl[i], &set->socks[i]) == -1) {
			log_error("worker %u: cannot listen on %s", w->id, set->socks[i].address);
		}
		nl[i].index = i; /* the set is built in the order of the configuration's listen[] */
	}
	worker_close_listeners(w);
	w->listeners = nl;
	w->nlisteners = set->n;
	/* New listeners start enabled: not while accepting rests. */
	if (w->accept_paused || (w->accept_guard && accept_guard_is_paused(w->accept_guard)))
		worker_listeners_enable(w, false);
}

/*
 * Connections the kernel completed before the stop are still in the
 * listeners' queues; closing a listener would reset them.  They are taken
 * now and served like any connection accepted before the stop.
 */
static void
worker_accept_queued(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct wlistener *l = &w->listeners[i];
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		while (l->lev != NULL && (fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
						       SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
			atomic_fetch_add(&w->shared->nclients, 1);
			client_accept(w, l, fd, (struct sockaddr *)&ss, (int)len,
				      &exchange_stream_events);
			len = sizeof(ss);
		}
	}
}

static void
worker_begin_drain(struct worker *w)
{
	struct timeval tv;

	if (w->draining)
		return;
	worker_accept_queued(w);
	w->draining = true;
	worker_close_listeners(w);
	upstream_pool_close_idle(w->pool);
	exchange_drain_all(w, NULL);
	client_drain_all(w);
	tv_from_ms(&tv, w->shutdown_ms);
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
	exchange_drain_all(w, "shutdown timeout");
	client_abort_all(w, "shutdown timeout");
	worker_reap_cb(-1, 0, w);
	event_base_loopexit(w->base, NULL);
}

static void
worker_swap_config(struct worker *w, struct config *cfg)
{
	struct config *old = w->cfg;

	w->cfg = cfg;
	atomic_store(&w->shared->max_clients, worker_max_clients(w->shared, cfg));
	worker_limit_check(w);
	resolver_set_config(w->resolver, cfg);
	w->shutdown_ms = cfg->timeouts.shutdown;
	config_unref(old);
}

static void
worker_notify(struct worker *w)
{
	struct config *cfg;
	struct listen_set *set;
	bool stop;

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
	if (set != NULL && !w->draining)
		client_listeners_changed(w);
	if (stop)
		worker_begin_drain(w);
}

static void
worker_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t count;
	unsigned why;

	(void)what;
	/* Read first: a wake-up set after the exchange writes the fd again. */
	while (read(fd, &count, sizeof(count)) == -1 && errno == EINTR)
		;
	why = atomic_exchange(&w->wake_bits, 0u);
	if (why & WORKER_WAKE_LIMIT)
		worker_limit_check(w);
	if (why & WORKER_WAKE_NOTIFY)
		worker_notify(w);
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
	worker_wake(w, WORKER_WAKE_NOTIFY);
}

void
worker_post_stop(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->stop_requested = true;
	pthread_mutex_unlock(&w->lock);
	worker_wake(w, WORKER_WAKE_NOTIFY);
}

int
worker_init(struct worker *all, unsigned id, unsigned nworkers, struct worker_shared *shared,
	    struct config *cfg, const struct listen_set *set, uint64_t start_time)
{
	struct event_config *ec = event_config_new();
	struct worker *w = &all[id];
	char who[32];

	memset(w, 0, sizeof(*w));
	w->magic = WORKER_MAGIC;
	w->id = id;
	w->nworkers = nworkers ? nworkers : 1;
	w->siblings = all;
	w->shared = shared;
	w->wake_fd = -1;
	/* Only this worker's thread touches the base (worker_wake() goes through an fd). */
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST | EVENT_BASE_FLAG_NOLOCK);
	w->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (w->base == NULL)
		return -1;
	pthread_mutex_init(&w->lock, NULL);
	w->cfg = config_ref(cfg);
	w->reap_ev = event_new(w->base, -1, 0, worker_reap_cb, w);
	w->shutdown_ev = evtimer_new(w->base, worker_shutdown_cb, w);
	w->trim_ev = evtimer_new(w->base, worker_trim_cb, w);
	snprintf(who, sizeof(who), "worker %u", id);
	w->accept_guard = accept_guard_new(w->base, who, worker_accept_resume, w);
	w->resolver = resolver_new(w->base);
	if (w->resolver == NULL)
		return -1;
	resolver_set_config(w->resolver, cfg);
	w->pool = upstream_pool_new(w);
	w->metrics = metrics_new();
	w->filter_out = evbuffer_new();
	w->req_staging = evbuffer_new();
	w->resp_staging = evbuffer_new();
	w->flat = xmalloc(WORKER_FLAT_SIZE);
	w->shutdown_ms = cfg->timeouts.shutdown;
	atomic_store(&shared->max_clients, worker_max_clients(shared, cfg));
	/* Request ids: 20 bits of start time, 8 of worker, 36 of counter. */
	w->reqid_base = ((start_time & 0xfffffull) << 44) | ((uint64_t)(id & 0xff) << 36);
	/* Last: a failure here leaves the rest set up for worker_destroy(). */
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd == -1)
		return -1;
	w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, worker_wake_cb, w);
	if (w->wake_ev == NULL || event_add(w->wake_ev, NULL) == -1)
		return -1;
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
	exchange_drain_all(w, "exit");
	client_abort_all(w, "exit");
	worker_reap_cb(-1, 0, w);
	worker_close_listeners(w);
	upstream_pool_free(w->pool);
	worker_reap_cb(-1, 0, w);
	exchange_pool_free(w);
	while (w->nfree_heads > 0) {
		struct head *h = w->free_heads[--w->nfree_heads];

		head_free(h);
		free(h);
	}
	free(w->free_heads);
	buf_free(&w->scratch);
	buf_free(&w->head);
	free(w->flat);
	free(w->fields);
	free(w->field_off);
	if (w->filter_out)
		evbuffer_free(w->filter_out);
	if (w->req_staging)
		evbuffer_free(w->req_staging);
	if (w->resp_staging)
		evbuffer_free(w->resp_staging);
	if (w->kept_bev != NULL)
		bufferevent_free(w->kept_bev);
	while (w->nspare > 0)
		bufferevent_free(w->spare_bevs[--w->nspare]);
	free(w->spare_bevs);
	resolver_free(w->resolver);
	event_free(w->reap_ev);
	if (w->wake_ev)
		event_free(w->wake_ev);
	if (w->wake_fd != -1)
		close(w->wake_fd);
	event_free(w->shutdown_ev);
	event_free(w->trim_ev);
	accept_guard_free(w->accept_guard);
	if (w->pending_cfg)
		config_unref(w->pending_cfg);
	config_unref(w->cfg);
	event_base_free(w->base);
	pthread_mutex_destroy(&w->lock);
	metrics_free(w->metrics);
}
