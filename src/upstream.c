/*
 * upstream.c: connections to upstreams and the per-worker pool of idle
 * kept-alive ones.  Owns name resolution (never blocking), connecting, the
 * connect/read/idle timeouts and the pool; the HTTP exchange on a busy
 * connection belongs to proxy.c.  An idle pooled connection keeps reading
 * enabled with upstream_idle as its read timeout, so an upstream close,
 * unexpected bytes or expiry all drop it at once.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>

#include "portico/client.h"
#include "portico/config.h"
#include "portico/log.h"
#include "portico/metrics.h"
#include "portico/proxy.h"
#include "portico/resolve.h"
#include "portico/route.h"
#include "portico/tls.h"
#include "portico/upstream.h"
#include "portico/worker.h"

/* Idle connections kept per upstream per worker. */
#define POOL_IDLE_MAX 256

/* Upstream identity: connections are only shared between equal keys. */
struct upstream_key {
	struct upstream_key *next;
	char *host;
	uint16_t port;
	bool tls;
	char *tls_id;		    /* TLS settings folded into one string; NULL for http */
	struct upstream *idle;	    /* most recently used first */
	struct tls_client *tls_ctx; /* https:// upstreams: the newest snapshot's context */
	unsigned nidle;
};

struct upstream_pool {
	struct worker *w;
	struct upstream_key *keys;
};

struct upstream_pool *
upstream_pool_new(struct worker *w)
{
	struct upstream_pool *p = xcalloc(1, sizeof(*p));

	p->w = w;
	return p;
}

void
upstream_pool_close_idle(struct upstream_pool *p)
{
	for (struct upstream_key *k = p->keys; k; k = k->next)
		while (k->idle != NULL)
			upstream_close(k->idle, "pool closed");
}

void
upstream_pool_free(struct upstream_pool *p)
{
	struct upstream_key *k, *next;

	if (p == NULL)
		return;
	upstream_pool_close_idle(p);
	for (k = p->keys; k; k = next) {
		next = k->next;
		free(k->host);
		free(k->tls_id);
		tls_client_unref(k->tls_ctx);
		free(k);
	}
	free(p);
}

static char *
tls_id_of(const struct route *r)
{
	const struct route_tls *t = &r->tls;

	if (!r->upstream.tls)
		return NULL;
	return xasprintf("%d|%s|%s|%s|%s", t->verify, t->ca ? t->ca : "",
			 t->server_name ? t->server_name : "", t->cert ? t->cert : "",
			 t->key ? t->key : "");
}

static bool
key_matches(const struct upstream_key *k, const struct route *r, const char *tls_id)
{
	if (k->port != r->upstream.port || k->tls != r->upstream.tls ||
	    strcmp(k->host, r->upstream.host) != 0)
		return false;
	if (!k->tls)
		return true;
	return strcmp(k->tls_id, tls_id) == 0;
}

static struct upstream_key *
pool_key(struct upstream_pool *p, const struct route *r)
{
	char *tls_id = tls_id_of(r);
	struct upstream_key *k;

	for (k = p->keys; k; k = k->next)
		if (key_matches(k, r, tls_id)) {
			free(tls_id);
			return k;
		}
	k = xcalloc(1, sizeof(*k));
	k->host = xstrdup(r->upstream.host);
	k->port = r->upstream.port;
	k->tls = r->upstream.tls;
	k->tls_id = tls_id;
	k->next = p->keys;
	p->keys = k;
	return k;
}

static void
idle_unlink(struct upstream *u)
{
	struct upstream_key *k = u->key;

	if (u->prev)
		u->prev->next = u->next;
	else
		k->idle = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->next = u->prev = NULL;
	k->nidle--;
	metrics_gauge_add(u->w->metrics, METRICS_UPSTREAM_IDLE, -1);
}

static void
idle_push(struct upstream *u)
{
	struct upstream_key *k = u->key;

	u->prev = NULL;
	u->next = k->idle;
	if (k->idle)
		k->idle->prev = u;
	k->idle = u;
	k->nidle++;
	metrics_gauge_add(u->w->metrics, METRICS_UPSTREAM_IDLE, 1);
}

static void
tv_from_ms(struct timeval *tv, uint64_t ms)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

static void
upstream_set_state(struct upstream *u, enum upstream_state s)
{
	static const char *const names[] = {"resolving", "connecting", "busy", "idle", "closing"};

	if (u->state != s && log_is_enabled(LOG_LEVEL_DEBUG))
		log_debug("upstream %s:%u: %s -> %s", u->key->host, u->key->port, names[u->state],
			  names[s]);
	u->state = s;
}

/* TLS: libevent's own read path, with the read timeout on the bufferevent. */
static void
upstream_tls_read(struct upstream *u, bool want, bool rearm)
{
	struct timeval rtv, wtv;

	if (want && (!u->reading || rearm)) {
		tv_from_ms(&rtv, u->read_ms);
		tv_from_ms(&wtv, u->write_ms);
		u->timeouts_clear = false;
		bufferevent_set_timeouts(u->bev, u->read_ms ? &rtv : NULL,
					 u->write_ms ? &wtv : NULL);
		bufferevent_enable(u->bev, EV_READ);
	} else if (!want && u->reading) {
		bufferevent_disable(u->bev, EV_READ);
	}
}

/* No timeouts on the bufferevent; setting them again re-adds its events, so only on a change. */
static void
upstream_clear_timeouts(struct upstream *u)
{
	if (u->timeouts_clear)
		return;
	bufferevent_set_timeouts(u->bev, NULL, NULL);
	u->timeouts_clear = true;
}

/* Arms the read event with the current timeout, or disarms it. */
static void
upstream_apply_read(struct upstream *u, bool rearm)
{
	bool want = u->connected && !u->paused && !u->read_eof;
	struct timeval tv;

	if (u->tls) {
		upstream_tls_read(u, want, rearm);
	} else if (want && (!u->reading || rearm)) {
		tv_from_ms(&tv, u->read_ms);
		event_add(u->rev, u->read_ms ? &tv : NULL);
	} else if (!want && u->reading) {
		event_del(u->rev);
	}
	u->reading = want;
}

void
upstream_set_read_timeout(struct upstream *u, uint64_t ms)
{
	struct timeval tv;

	u->read_ms = u->write_ms = ms;
	if (u->state != UPSTREAM_BUSY)
		return; /* applied once connected */
	tv_from_ms(&tv, ms);
	if (!u->tls) {
		u->timeouts_clear = false;
		bufferevent_set_timeouts(u->bev, NULL, &tv);
	}
	upstream_apply_read(u, true);
}

void
upstream_pause_read(struct upstream *u, bool pause)
{
	u->paused = pause;
	upstream_apply_read(u, false);
}

void
upstream_flush(struct upstream *u)
{
	/*
	 * A direct write that drains the output below the low watermark
	 * raises no write callback: resume the client here, and send what
	 * that brings (bounded: each round needs the client's input).
	 */
	for (int round = 0; round < 4; round++) {
		if (u->state != UPSTREAM_BUSY || u->tls)
			return;
		worker_flush(u->bev);
		if (u->req == NULL || !u->req->c->upstream_full ||
		    evbuffer_get_length(bufferevent_get_output(u->bev)) > PROXY_LOW_WATER)
			return;
		proxy_upstream_writable(u);
	}
}

static struct upstream *
upstream_from_arg(void *arg)
{
	struct upstream *u = arg;

	PORTICO_ASSERT(u->magic == UPSTREAM_MAGIC);
	return u;
}

static void
upstream_on_data(struct upstream *u)
{
	struct evbuffer *in = bufferevent_get_input(u->bev);

	switch (u->state) {
	case UPSTREAM_BUSY:
		proxy_upstream_read(u);
		break;
	case UPSTREAM_IDLE:
		upstream_close(u, "unexpected bytes on an idle connection");
		break;
	default:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	}
}

static void
upstream_on_eof(struct upstream *u)
{
	u->read_eof = true;
	upstream_apply_read(u, false);
	if (u->state == UPSTREAM_IDLE)
		upstream_close(u, "closed while idle");
	else if (u->state == UPSTREAM_BUSY && u->req != NULL)
		proxy_upstream_eof(u);
}

static void
upstream_on_timeout(struct upstream *u, bool connecting)
{
	if (u->state == UPSTREAM_IDLE) {
		upstream_close(u, "idle timeout");
		return;
	}
	if (u->req == NULL || u->state == UPSTREAM_CLOSING)
		return;
	if (u->req->tunnel) {
		proxy_tunnel_timeout(u->req, false);
		return;
	}
	metrics_add(u->w->metrics, METRICS_UPSTREAM_TIMEOUTS, 1);
	proxy_upstream_failed(u, 504, connecting ? "connect timeout" : "read timeout");
}

static void
upstream_on_error(struct upstream *u, int err, const char *why)
{
	u->read_eof = true;
	upstream_apply_read(u, false);
	if (u->state == UPSTREAM_IDLE) {
		upstream_close(u, "error while idle");
		return;
	}
	if (u->req == NULL || u->state == UPSTREAM_CLOSING)
		return;
	if (why == NULL)
		why = err ? evutil_socket_error_to_string(err) : "connection failed";
	if (u->state != UPSTREAM_BUSY) /* resolving or connecting (TLS handshake included) */
		metrics_add(u->w->metrics, METRICS_UPSTREAM_CONNECT_ERRORS, 1);
	proxy_upstream_failed(u, 502, why);
}

/* Sends what the exchange queued on either side during a callback. */
static void
upstream_flush_both(struct upstream *u, struct client *c)
{
	if (c != NULL)
		client_flush(c);
	upstream_flush(u);
}

static void
upstream_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = upstream_from_arg(arg);
	struct client *c = u->req ? u->req->c : NULL;
	long n;

	if (what & EV_TIMEOUT)
		upstream_on_timeout(u, false);
	else if ((n = worker_read(fd, bufferevent_get_input(u->bev))) > 0)
		upstream_on_data(u);
	else if (n == 0)
		upstream_on_eof(u);
	else if (errno != EAGAIN && errno != EINTR)
		upstream_on_error(u, errno, NULL);
	upstream_flush_both(u, c);
}

static void upstream_connected(struct upstream *u);

static void
upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct upstream *u = upstream_from_arg(arg);
	struct client *c = u->req ? u->req->c : NULL;

	/*
	 * When connect(2) succeeds at once, libevent 2.1 calls the write
	 * callback instead of reporting BEV_EVENT_CONNECTED.
	 */
	if (u->state == UPSTREAM_CONNECTING && !u->tls)
		upstream_connected(u);
	if (u->state == UPSTREAM_BUSY && u->req != NULL)
		proxy_upstream_writable(u);
	if (!u->tls)
		worker_write_done(bev);
	upstream_flush_both(u, c);
}

/* TLS connections read through the bufferevent. */
static void
upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream *u = upstream_from_arg(arg);
	struct client *c = u->req ? u->req->c : NULL;

	(void)bev;
	upstream_on_data(u);
	upstream_flush_both(u, c);
}

static void
upstream_connected(struct upstream *u)
{
	int fd = bufferevent_getfd(u->bev), one = 1;

	if (u->connected) /* reported twice after an immediate connect */
		return;
	upstream_set_state(u, UPSTREAM_BUSY);
	u->connected = true;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!u->tls)
		u->rev = event_new(u->w->base, fd, EV_READ | EV_PERSIST, upstream_io_cb, u);
	upstream_set_read_timeout(u, u->read_ms);
}

/* Why a TLS connection failed, for the log line. */
static const char *
upstream_tls_error(struct upstream *u)
{
	const char *why =
	    tls_describe_failure(bufferevent_openssl_get_ssl(u->bev),
				 bufferevent_get_openssl_error(u->bev), u->why, sizeof(u->why));

	while (bufferevent_get_openssl_error(u->bev) != 0)
		;
	return why;
}

/* The bufferevent reports connecting, write errors and write or connect timeouts. */
static void
upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream *u = upstream_from_arg(arg);
	struct client *c = u->req ? u->req->c : NULL;
	bool connecting = u->state == UPSTREAM_CONNECTING;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		upstream_connected(u);
	} else if (what & BEV_EVENT_TIMEOUT) {
		if (what & BEV_EVENT_READING)
			u->reading = false; /* libevent disabled reading on the timeout */
		upstream_on_timeout(u, connecting);
	} else if ((what & BEV_EVENT_EOF) && u->connected)
		upstream_on_eof(u);
	else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
		upstream_on_error(u, EVUTIL_SOCKET_ERROR(),
				  u->tls_failed ? u->why : (u->tls ? upstream_tls_error(u) : NULL));
	upstream_flush_both(u, c);
}

/*
 * The one place an upstream bufferevent is made: a plain socket, or OpenSSL
 * over one for https:// upstreams.  NULL when the TLS context cannot be built.
 */
static struct bufferevent *
upstream_bev_new(struct worker *w, const struct route *r, struct tls_client *tls)
{
	struct bufferevent *bev;
	struct ssl_st *ssl;

	if (!r->upstream.tls)
		return bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL || (ssl = tls_client_ssl_new(tls, r->upstream.host)) == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void
upstream_format_addr(struct upstream *u, const struct sockaddr *sa)
{
	char a[INET6_ADDRSTRLEN] = "?";
	const void *p;

	if (sa->sa_family == AF_INET6)
		p = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		p = &((const struct sockaddr_in *)sa)->sin_addr;
	evutil_inet_ntop(sa->sa_family, p, a, sizeof(a));
	snprintf(u->addr, sizeof(u->addr), sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", a,
		 u->key->port);
}

static void
upstream_connect(struct upstream *u, const struct sockaddr *sa, socklen_t salen)
{
	struct timeval tv;

	upstream_format_addr(u, sa);
	upstream_set_state(u, UPSTREAM_CONNECTING);
	tv_from_ms(&tv, u->connect_ms);
	/* TLS: the handshake, which reads too, is part of connecting. */
	u->timeouts_clear = false;
	bufferevent_set_timeouts(u->bev, u->tls ? &tv : NULL, &tv);
	if (bufferevent_socket_connect(u->bev, sa, (int)salen) == -1)
		bufferevent_trigger_event(u->bev, BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
}

static void
upstream_resolved(const char *err, const struct sockaddr *sa, socklen_t salen, void *arg)
{
	struct upstream *u = upstream_from_arg(arg);

	struct client *c = u->req ? u->req->c : NULL;

	u->rq = NULL;
	if (err != NULL) {
		upstream_set_state(u, UPSTREAM_CONNECTING);
		metrics_add(u->w->metrics, METRICS_UPSTREAM_CONNECT_ERRORS, 1);
		proxy_upstream_failed(u, 502, err);
	} else {
		upstream_connect(u, sa, salen);
	}
	if (c != NULL)
		client_flush(c);
}

static struct upstream *
upstream_new(struct worker *w, const struct route *r, struct upstream_key *k,
	     struct tls_client *tls)
{
	struct upstream *u = xcalloc(1, sizeof(*u));
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);

	u->magic = UPSTREAM_MAGIC;
	u->w = w;
	metrics_gauge_add(w->metrics, METRICS_UPSTREAM_CONNECTIONS, 1);
	u->key = k;
	u->connect_ms = r->upstream_connect_ms;
	u->tls = r->upstream.tls;
	u->bev = upstream_bev_new(w, r, tls);
	u->state = UPSTREAM_RESOLVING;
	if (u->bev == NULL) {
		/* No SSL object: fail from the loop, like a refused connect. */
		u->bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
		u->tls = false;
		snprintf(u->why, sizeof(u->why), "TLS setup failed: %s",
			 tls_last_error("no context"));
		bufferevent_setcb(u->bev, NULL, upstream_write_cb, upstream_event_cb, u);
		u->tls_failed = true;
		bufferevent_trigger_event(u->bev, BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
		return u;
	}
	if (u->tls) {
		bufferevent_setcb(u->bev, upstream_read_cb, upstream_write_cb, upstream_event_cb,
				  u);
		bufferevent_setwatermark(u->bev, EV_WRITE, PROXY_LOW_WATER, 0);
		bufferevent_enable(u->bev, EV_WRITE);
		bufferevent_disable(u->bev, EV_READ);
	} else {
		/* Reads go through u->rev once connected; writes through worker_flush(). */
		bufferevent_setcb(u->bev, NULL, upstream_write_cb, upstream_event_cb, u);
		bufferevent_setwatermark(u->bev, EV_WRITE, PROXY_LOW_WATER, 0);
		bufferevent_disable(u->bev, EV_READ | EV_WRITE);
	}
	if (resolver_lookup_now(w->resolver, k->host, k->port, &sa, &salen) == 0)
		upstream_connect(u, (struct sockaddr *)&sa, salen);
	else
		u->rq = resolver_lookup(w->resolver, k->host, k->port, upstream_resolved, u);
	return u;
}

struct upstream *
upstream_get(struct worker *w, const struct route *r, struct request *req, bool fresh)
{
	struct upstream_key *k = pool_key(w->pool, r);
	struct upstream *u = fresh ? NULL : k->idle;
	struct tls_client *tls = config_route_tls(req->cfg, r);

	/* Equal settings: new connections use the newest snapshot's context. */
	if (tls != NULL && k->tls_ctx != tls) {
		tls_client_unref(k->tls_ctx);
		k->tls_ctx = tls_client_ref(tls);
	}
	if (u != NULL) {
		idle_unlink(u);
		u->reused = true;
		u->read_ms = 0;
		upstream_set_state(u, UPSTREAM_BUSY);
		upstream_clear_timeouts(u);
		upstream_apply_read(u, true);
	} else {
		u = upstream_new(w, r, k, k->tls_ctx);
	}
	u->req = req;
	u->got_bytes = false;
	return u;
}

void
upstream_release(struct upstream *u, bool reuse)
{
	if (!reuse || u->w->draining || u->key->nidle >= POOL_IDLE_MAX ||
	    u->state != UPSTREAM_BUSY) {
		upstream_close(u, "not reusable");
		return;
	}
	u->req = NULL;
	upstream_set_state(u, UPSTREAM_IDLE);
	/* Reading stays on: a close, stray bytes or upstream_idle drop it. */
	u->paused = false;
	u->read_ms = u->w->cfg->timeouts.upstream_idle;
	upstream_clear_timeouts(u);
	upstream_apply_read(u, true);
	idle_push(u);
}

void
upstream_close(struct upstream *u, const char *reason)
{
	struct worker *w = u->w;

	if (u->state == UPSTREAM_CLOSING)
		return;
	if (u->state == UPSTREAM_IDLE)
		idle_unlink(u);
	if (u->rq != NULL) {
		resolve_cancel(u->rq);
		u->rq = NULL;
	}
	log_debug("upstream %s closed: %s", u->addr[0] ? u->addr : u->key->host, reason);
	upstream_set_state(u, UPSTREAM_CLOSING);
	u->close_reason = reason;
	u->req = NULL;
	bufferevent_disable(u->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(u->bev, NULL, NULL, NULL, NULL);
	u->read_eof = true;
	upstream_apply_read(u, false);
	u->next = w->up_closing;
	w->up_closing = u;
	worker_schedule_reap(w);
}

void
upstream_free(struct upstream *u)
{
	PORTICO_ASSERT(u->magic == UPSTREAM_MAGIC && u->state == UPSTREAM_CLOSING);
	if (u->rev != NULL)
		event_free(u->rev);
	bufferevent_free(u->bev);
	metrics_gauge_add(u->w->metrics, METRICS_UPSTREAM_CONNECTIONS, -1);
	u->magic = 0;
	free(u);
}
