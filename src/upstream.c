/*
 * upstream.c: HTTP/1.1 connections to upstreams (upstream.h) and the
 * per-worker pool of idle kept-alive ones.  Owns name resolution (never
 * blocking), connecting, TLS, the connect/read/idle timeouts, the pool, and
 * reading responses: a head (head.h), then the body as the head frames it
 * (chunked.h), or raw bytes in a tunnel, each reported to the exchange
 * through its struct upstream_cbs.  An idle pooled connection keeps reading
 * enabled with upstream_idle as its read timeout, so an upstream close,
 * unexpected bytes or expiry all drop it at once.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>

#include "portico/chunked.h"
#include "portico/config.h"
#include "portico/deadline.h"
#include "portico/head.h"
#include "portico/log.h"
#include "portico/metrics.h"
#include "portico/resolve.h"
#include "portico/route.h"
#include "portico/stream.h"
#include "portico/tls.h"
#include "portico/upstream.h"
#include "portico/worker.h"

/* Idle connections kept per upstream per worker. */
#define POOL_IDLE_MAX 256

#define UPSTREAM_MAGIC 0x55505354u

enum upstream_state {
	UPSTREAM_RESOLVING,
	UPSTREAM_CONNECTING,
	UPSTREAM_BUSY, /* carrying an exchange */
	UPSTREAM_IDLE, /* in the pool */
	UPSTREAM_CLOSING,
};

/* What the bytes read are, while busy. */
enum upstream_reading {
	UPREAD_HEAD,   /* a response head */
	UPREAD_BODY,   /* its body, framed as the head said */
	UPREAD_TUNNEL, /* raw bytes after a 101 */
	UPREAD_DONE,   /* the response is complete */
};

struct upstream {
	unsigned magic;
	enum upstream_state state;
	enum upstream_reading reading_what;
	struct worker *w;
	struct worker_reap reap;
	struct upstream_key *key;
	struct bufferevent *bev;
	struct event *rev;     /* reading, once connected (see worker_read) */
	struct deadline timer; /* plain sockets: the read or idle timeout while reading */
	const struct upstream_cbs *cbs;
	void *arg; /* the exchange, while busy */
	struct resolve_req *rq;
	struct upstream *next; /* pool's idle list */
	struct upstream *prev;
	struct head head; /* the response head being read */
	size_t head_limit;
	enum head_body body;
	uint64_t body_left;
	struct chunked chunked;
	bool keep_alive;      /* the upstream may keep the connection after this response */
	bool reused;	      /* taken from the pool */
	bool got_bytes;	      /* a response byte arrived for the current exchange */
	bool reading;	      /* rev is armed */
	bool paused;	      /* reading paused: the client's output is full */
	bool process_pending; /* rev activated to act on bytes already read */
	bool read_eof;
	bool connected;
	bool tls;	 /* OpenSSL bufferevent: libevent's own read and write paths */
	bool tls_failed; /* no SSL object: fails as soon as the loop runs */
	uint64_t write_ms;
	uint64_t bev_write_ms; /* plain: the send timeout set on `bev` (upstream_sync_write) */
	char why[160];	       /* a failure's reason, when it needs formatting */
	const char *close_reason;
	uint64_t connect_ms, read_ms;
	bool timeouts_clear; /* `bev` has neither timeout set */
	size_t read_max;     /* bytes one read may take (upstream_set_read_room) */
	char addr[120];	     /* "address:port" or "unix:/path" once known */
};

/* Upstream identity: connections are only shared between equal keys. */
struct upstream_key {
	struct upstream_key *next;
	char *host;	 /* a unix socket: "unix:/path" */
	char *unix_path; /* or NULL */
	char *sni;	 /* https: SNI and the name verified */
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
		free(k->unix_path);
		free(k->sni);
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
key_matches(const struct upstream_key *k, const struct route *r, const struct upstream_dest *d,
	    const char *tls_id)
{
	if (k->port != d->port || k->tls != r->upstream.tls)
		return false;
	if (d->unix_path != NULL ? k->unix_path == NULL || strcmp(k->unix_path, d->unix_path) != 0
				 : k->unix_path != NULL || strcmp(k->host, d->host) != 0)
		return false;
	if (!k->tls)
		return true;
	return strcmp(k->tls_id, tls_id) == 0 && strcmp(k->sni, d->sni) == 0;
}

static struct upstream_key *
pool_key(struct upstream_pool *p, const struct route *r, const struct upstream_dest *d)
{
	char *tls_id = tls_id_of(r);
	struct upstream_key *k;

	for (k = p->keys; k; k = k->next)
		if (key_matches(k, r, d, tls_id)) {
			free(tls_id);
			return k;
		}
	k = xcalloc(1, sizeof(*k));
	if (d->unix_path != NULL) {
		k->unix_path = xstrdup(d->unix_path);
		k->host = xasprintf("unix:%s", d->unix_path);
	} else {
		k->host = xstrdup(d->host);
	}
	k->sni = xstrdup(d->sni ? d->sni : k->host);
	k->port = d->port;
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
upstream_set_state(struct upstream *u, enum upstream_state s)
{
	static const char *const names[] = {"resolving", "connecting", "busy", "idle", "closing"};

	if (u->state != s && log_is_enabled(LOG_LEVEL_DEBUG))
		log_debug("upstream %s:%u: %s -> %s", u->key->host, u->key->port, names[u->state],
			  names[s]);
	u->state = s;
}

/* --- reading and writing ---------------------------------------------------------- */

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

/*
 * Plain sockets: the send timeout (write_ms) on the bufferevent, which
 * writes only what worker_flush() leaves.  It matters only while writing is
 * enabled, and setting it re-adds the bufferevent's events: it is set when
 * writing is on and it changed, not on every request.
 */
static void
upstream_sync_write(struct upstream *u)
{
	struct timeval tv;

	if (u->tls || u->bev_write_ms == u->write_ms ||
	    !(bufferevent_get_enabled(u->bev) & EV_WRITE))
		return;
	tv_from_ms(&tv, u->write_ms);
	bufferevent_set_timeouts(u->bev, NULL, u->write_ms ? &tv : NULL);
	u->bev_write_ms = u->write_ms;
}

/* No timeouts: TLS sets them again only on a change, since that re-adds its events. */
static void
upstream_clear_timeouts(struct upstream *u)
{
	if (!u->tls) {
		u->write_ms = 0;
		upstream_sync_write(u);
		return;
	}
	if (u->timeouts_clear)
		return;
	bufferevent_set_timeouts(u->bev, NULL, NULL);
	u->timeouts_clear = true;
}

/* Plain sockets: the read timeout runs from now (deadline.h: no re-arming when it moves later). */
static void
upstream_restart_timer(struct upstream *u)
{
	if (u->read_ms != 0)
		deadline_set(&u->timer, deadline_now_us(), u->read_ms);
	else
		deadline_clear(&u->timer);
}

/* Arms the read event and its timeout, or disarms both; `rearm` restarts the timeout. */
static void
upstream_apply_read(struct upstream *u, bool rearm)
{
	bool want = u->connected && !u->paused && !u->read_eof;

	if (u->tls) {
		upstream_tls_read(u, want, rearm);
	} else if (want) {
		if (!u->reading)
			event_add(u->rev, NULL);
		if (!u->reading || rearm)
			upstream_restart_timer(u);
	} else {
		if (u->reading)
			event_del(u->rev);
		deadline_clear(&u->timer);
	}
	u->reading = want;
}

void
upstream_set_read_timeout(struct upstream *u, uint64_t ms)
{
	u->read_ms = u->write_ms = ms;
	if (u->state != UPSTREAM_BUSY)
		return; /* applied once connected */
	upstream_sync_write(u);
	upstream_apply_read(u, true);
}

/* Acts on bytes already read from the loop (after a pause), not from the caller. */
static void
upstream_schedule_input(struct upstream *u)
{
	if (evbuffer_get_length(bufferevent_get_input(u->bev)) == 0)
		return;
	if (u->tls) {
		bufferevent_trigger(u->bev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	} else if (u->rev != NULL) {
		u->process_pending = true;
		event_active(u->rev, EV_READ, 0);
	}
}

void
upstream_pause_read(struct upstream *u, bool pause)
{
	bool resumed = u->paused && !pause;

	u->paused = pause;
	upstream_apply_read(u, false);
	if (resumed)
		upstream_schedule_input(u);
}

/* Room for a libevent chain's header: a read of 2^k minus this fills a 2^k allocation. */
#define CHAIN_HEADER_ROOM 256

void
upstream_set_read_room(struct upstream *u, size_t room)
{
	size_t p = 4096, max = room;

	/*
	 * Rounded down to a power of two less a chain header: libevent
	 * allocates a power of two holding the data and its header, so a read
	 * of the whole room could land in a chain twice its size.
	 */
	if (room > p) {
		while (p * 2 <= room && p * 2 <= WORKER_READ_SIZE)
			p *= 2;
		max = p - CHAIN_HEADER_ROOM;
	}
	if (max == u->read_max)
		return;
	u->read_max = max;
	/* TLS reads through libevent, at most 16 KiB each whatever is set. */
	if (u->tls && u->bev != NULL)
		bufferevent_set_max_single_read(u->bev, max);
}

struct evbuffer *
upstream_out(struct upstream *u)
{
	return bufferevent_get_output(u->bev);
}

/* The socket: from the read event once connected (cheaper than asking the bufferevent). */
static int
upstream_fd(const struct upstream *u)
{
	return u->rev != NULL ? event_get_fd(u->rev) : bufferevent_getfd(u->bev);
}

bool
upstream_flush(struct upstream *u)
{
	size_t left;

	if (u->state == UPSTREAM_BUSY && !u->tls) {
		left = worker_flush(u->bev, upstream_fd(u));
		if (left > 0) /* the write event took over: give it its timeout */
			upstream_sync_write(u);
		return left < STREAM_LOW_WATER;
	}
	return evbuffer_get_length(bufferevent_get_output(u->bev)) < STREAM_LOW_WATER;
}

void
upstream_send(struct upstream *u, const void *p, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(u->bev);
	ssize_t w = -1;

	if (u->state == UPSTREAM_BUSY && !u->tls && evbuffer_get_length(out) == 0 &&
	    !(bufferevent_get_enabled(u->bev) & EV_WRITE))
		w = write(upstream_fd(u), p, n);
	/* An error is met again, and reported, by the write of what is queued (worker_flush). */
	if (w < 0)
		w = 0;
	if ((size_t)w < n)
		evbuffer_add(out, (const char *)p + w, n - (size_t)w);
}

bool
upstream_has_input(struct upstream *u)
{
	return evbuffer_get_length(bufferevent_get_input(u->bev)) > 0;
}

const char *
upstream_addr(const struct upstream *u)
{
	return u->addr;
}

static struct upstream *
upstream_from_arg(void *arg)
{
	struct upstream *u = arg;

	PORTICO_ASSERT(u->magic == UPSTREAM_MAGIC);
	return u;
}

/* True while the exchange that made a call still holds the connection. */
static bool
upstream_still_with(const struct upstream *u, const void *arg)
{
	return u->state == UPSTREAM_BUSY && u->arg == arg && arg != NULL;
}

static void
upstream_fail(struct upstream *u, int status, const char *reason, const char *detail)
{
	struct upstream_failure f = {
	    .status = status,
	    .reason = reason,
	    .detail = detail,
	    .got_bytes = u->got_bytes,
	    .reused = u->reused,
	    .connecting = u->state != UPSTREAM_BUSY,
	};

	if (u->arg != NULL)
		u->cbs->failed(u->arg, &f);
}

/* --- the response ------------------------------------------------------------------- */

static void
upstream_end(struct upstream *u)
{
	u->reading_what = UPREAD_DONE;
	u->cbs->end(u->arg);
}

/* The exchange said how the body is framed (head.h): read it. */
static void
upstream_begin_body(struct upstream *u)
{
	u->reading_what = UPREAD_BODY;
	u->body = u->head.body;
	u->body_left = u->head.length;
	u->keep_alive = u->head.keep_alive;
	if (u->body == HEAD_BODY_CHUNKED)
		chunked_init(&u->chunked);
}

/* A complete head: checked, then the exchange decides what follows.  False: stop. */
static bool
upstream_on_head(struct upstream *u)
{
	void *arg = u->arg;

	if (head_check_response(&u->head) != 0) {
		upstream_fail(u, 502, u->head.why, NULL);
		return false;
	}
	switch (u->cbs->head(arg, &u->head)) {
	case UPSTREAM_NEXT_HEAD:
		head_reset(&u->head, HEAD_RESPONSE);
		return upstream_still_with(u, arg);
	case UPSTREAM_NEXT_BODY:
		if (!upstream_still_with(u, arg))
			return false;
		upstream_begin_body(u);
		if (u->body == HEAD_BODY_NONE ||
		    (u->body == HEAD_BODY_LENGTH && u->body_left == 0)) {
			upstream_end(u);
			return false;
		}
		return true;
	case UPSTREAM_NEXT_TUNNEL:
		if (!upstream_still_with(u, arg))
			return false;
		u->reading_what = UPREAD_TUNNEL;
		return true;
	case UPSTREAM_NEXT_STOP:
		break;
	}
	return false;
}

/* Acts on what head_feed() found; false when there is nothing more to do now. */
static bool
upstream_head_result(struct upstream *u, enum head_result r)
{
	switch (r) {
	case HEAD_MORE:
		return false;
	case HEAD_ERROR:
		if (u->head.too_large)
			upstream_fail(u, 502, u->head.why, NULL);
		else
			upstream_fail(u, 502, "invalid response", u->head.why);
		return false;
	case HEAD_DONE:
		break;
	}
	return upstream_on_head(u);
}

/* Reads the response head from the input; false when there is nothing more to do now. */
static bool
upstream_read_head(struct upstream *u, struct evbuffer *in)
{
	return upstream_head_result(u, head_feed(&u->head, in, u->head_limit, 0));
}

/* Body bytes as framed; false when there is nothing more to do now. */
static bool
upstream_read_body(struct upstream *u, struct evbuffer *in)
{
	struct evbuffer *staging = u->w->resp_staging;
	size_t n = evbuffer_get_length(in);
	enum chunked_result r;
	void *arg = u->arg;

	switch (u->body) {
	case HEAD_BODY_NONE:
		upstream_end(u);
		return false;
	case HEAD_BODY_LENGTH:
		n = n < u->body_left ? n : (size_t)u->body_left;
		u->body_left -= n;
		if (n > 0)
			u->cbs->body(arg, in, n);
		if (u->body_left == 0 && upstream_still_with(u, arg))
			upstream_end(u);
		return false;
	case HEAD_BODY_CHUNKED:
		r = chunked_decode(&u->chunked, in, staging);
		if (r == CHUNKED_ERROR) {
			evbuffer_drain(staging, evbuffer_get_length(staging));
			upstream_fail(u, 502, "invalid upstream body", chunked_error(&u->chunked));
			return false;
		}
		if (evbuffer_get_length(staging) > 0)
			u->cbs->body(arg, staging, evbuffer_get_length(staging));
		if (r == CHUNKED_DONE && upstream_still_with(u, arg))
			upstream_end(u);
		return false;
	case HEAD_BODY_EOF:
		if (n > 0)
			u->cbs->body(arg, in, n);
		return false;
	}
	return false;
}

/* Acts on what the input holds, as far as the exchange lets it. */
static void
upstream_on_data(struct upstream *u)
{
	struct evbuffer *in = bufferevent_get_input(u->bev);
	bool more = true;

	if (u->state == UPSTREAM_IDLE) {
		upstream_close(u, "unexpected bytes on an idle connection");
		return;
	}
	if (u->state != UPSTREAM_BUSY || u->arg == NULL) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (evbuffer_get_length(in) > 0)
		u->got_bytes = true;
	while (more && u->state == UPSTREAM_BUSY && evbuffer_get_length(in) > 0) {
		switch (u->reading_what) {
		case UPREAD_HEAD:
			more = upstream_read_head(u, in);
			break;
		case UPREAD_BODY:
			more = upstream_read_body(u, in);
			break;
		case UPREAD_TUNNEL:
			u->cbs->body(u->arg, in, evbuffer_get_length(in));
			more = false;
			break;
		case UPREAD_DONE:
			more = false;
			break;
		}
	}
	/* Bytes after a complete response stay: the connection is not reused then. */
}

static void
upstream_on_eof(struct upstream *u)
{
	u->read_eof = true;
	upstream_apply_read(u, false);
	if (u->state == UPSTREAM_IDLE) {
		upstream_close(u, "closed while idle");
		return;
	}
	if (u->state != UPSTREAM_BUSY || u->arg == NULL)
		return;
	switch (u->reading_what) {
	case UPREAD_HEAD:
		upstream_fail(u, 502, "upstream closed the connection", NULL);
		break;
	case UPREAD_BODY:
		if (u->body == HEAD_BODY_EOF)
			upstream_end(u);
		else
			upstream_fail(u, 502, "upstream closed mid-body", NULL);
		break;
	case UPREAD_TUNNEL:
		upstream_fail(u, 0, "upstream closed the tunnel", NULL);
		break;
	case UPREAD_DONE:
		break;
	}
}

static void
upstream_on_timeout(struct upstream *u, bool connecting)
{
	if (u->state == UPSTREAM_IDLE) {
		upstream_close(u, "idle timeout");
		return;
	}
	if (u->arg == NULL || u->state == UPSTREAM_CLOSING)
		return;
	if (u->reading_what == UPREAD_TUNNEL && u->state == UPSTREAM_BUSY) {
		u->cbs->idle(u->arg);
		return;
	}
	metrics_add(u->w->metrics, METRICS_UPSTREAM_TIMEOUTS, 1);
	upstream_fail(u, 504, connecting ? "connect timeout" : "read timeout", NULL);
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
	if (u->arg == NULL || u->state == UPSTREAM_CLOSING)
		return;
	if (why == NULL)
		why = err ? evutil_socket_error_to_string(err) : "connection failed";
	if (u->state != UPSTREAM_BUSY) /* resolving or connecting (TLS handshake included) */
		metrics_add(u->w->metrics, METRICS_UPSTREAM_CONNECT_ERRORS, 1);
	upstream_fail(u, 502, why, NULL);
}

/*
 * The end of every callback: sends what was queued, and tells the exchange
 * when its output is low (a direct write raises no write callback).
 */
static void
upstream_flush_self(struct upstream *u)
{
	if (u->state != UPSTREAM_BUSY)
		return;
	if (upstream_flush(u) && u->arg != NULL)
		u->cbs->writable(u->arg);
}

/* --- callbacks ------------------------------------------------------------------------ */

static void
upstream_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = upstream_from_arg(arg);
	struct worker *w = u->w;
	long n;

	(void)what;
	worker_io_enter(w);
	/* The read timeout runs between two reads. */
	if (deadline_is_set(&u->timer))
		upstream_restart_timer(u);
	if (u->process_pending) {
		u->process_pending = false;
		upstream_on_data(u);
	} else if ((n = worker_read_at_most(fd, bufferevent_get_input(u->bev), u->read_max)) > 0) {
		upstream_on_data(u);
	} else if (n == 0) {
		upstream_on_eof(u);
	} else if (errno != EAGAIN && errno != EINTR) {
		upstream_on_error(u, errno, NULL);
	}
	upstream_flush_self(u);
	worker_io_leave(w);
}

/* Plain sockets: the read timeout (or idle timeout) passed. */
static void
upstream_timer_cb(void *arg)
{
	struct upstream *u = upstream_from_arg(arg);

	upstream_on_timeout(u, false);
	/* A tunnel still in use keeps its idle timeout, as libevent's persistent timeouts do. */
	if (u->state == UPSTREAM_BUSY && u->reading && !deadline_is_set(&u->timer))
		upstream_restart_timer(u);
	upstream_flush_self(u);
}

static void upstream_connected(struct upstream *u);

static void
upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct upstream *u = upstream_from_arg(arg);

	/*
	 * When connect(2) succeeds at once, libevent 2.1 calls the write
	 * callback instead of reporting BEV_EVENT_CONNECTED.
	 */
	if (u->state == UPSTREAM_CONNECTING && !u->tls)
		upstream_connected(u);
	if (!u->tls)
		worker_write_done(bev);
	upstream_flush_self(u);
}

/* TLS connections read through the bufferevent. */
static void
upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream *u = upstream_from_arg(arg);

	(void)bev;
	upstream_on_data(u);
	upstream_flush_self(u);
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
	upstream_flush_self(u);
}

/* --- connecting --------------------------------------------------------------------- */

/*
 * The one place an upstream bufferevent is made: a plain socket, or OpenSSL
 * over one for https:// upstreams.  NULL when no SSL object can be made.
 */
static struct bufferevent *
upstream_bev_new(struct worker *w, const struct upstream_key *k)
{
	struct bufferevent *bev;
	struct ssl_st *ssl;

	if (!k->tls)
		return bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (k->tls_ctx == NULL || (ssl = tls_client_ssl_new(k->tls_ctx, k->sni)) == NULL)
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

	if (sa->sa_family == AF_UNIX) {
		snprintf(u->addr, sizeof(u->addr), "%s", u->key->host);
		return;
	}
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
	u->bev_write_ms = u->write_ms = u->connect_ms;
	bufferevent_set_timeouts(u->bev, u->tls ? &tv : NULL, &tv);
	if (bufferevent_socket_connect(u->bev, sa, (int)salen) == -1)
		bufferevent_trigger_event(u->bev, BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
}

static void
upstream_resolved(const char *err, const struct sockaddr *sa, socklen_t salen, void *arg)
{
	struct upstream *u = upstream_from_arg(arg);

	u->rq = NULL;
	if (err != NULL) {
		upstream_set_state(u, UPSTREAM_CONNECTING);
		metrics_add(u->w->metrics, METRICS_UPSTREAM_CONNECT_ERRORS, 1);
		upstream_fail(u, 502, err, NULL);
	} else {
		upstream_connect(u, sa, salen);
	}
}

static void upstream_reap(struct worker_reap *r);

/* No SSL object (out of memory in OpenSSL): fail from the loop, like a refused connect. */
static void
upstream_fail_soon(struct upstream *u)
{
	u->bev = bufferevent_socket_new(u->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
	u->tls = false;
	snprintf(u->why, sizeof(u->why), "TLS setup failed: %s", tls_last_error("no context"));
	bufferevent_setcb(u->bev, NULL, upstream_write_cb, upstream_event_cb, u);
	u->tls_failed = true;
	bufferevent_trigger_event(u->bev, BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
}

static struct upstream *
upstream_new(struct worker *w, const struct route *r, struct upstream_key *k)
{
	struct upstream *u = xcalloc(1, sizeof(*u));
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);

	u->magic = UPSTREAM_MAGIC;
	u->w = w;
	u->reap.free = upstream_reap;
	deadline_init(&u->timer, w->base, upstream_timer_cb, u);
	head_init(&u->head);
	metrics_gauge_add(w->metrics, METRICS_UPSTREAM_CONNECTIONS, 1);
	u->key = k;
	u->connect_ms = r->upstream_connect_ms;
	u->tls = k->tls;
	u->bev = upstream_bev_new(w, k);
	u->state = UPSTREAM_RESOLVING;
	if (u->bev == NULL) {
		upstream_fail_soon(u);
		return u;
	}
	if (u->tls) {
		bufferevent_setcb(u->bev, upstream_read_cb, upstream_write_cb, upstream_event_cb,
				  u);
		bufferevent_setwatermark(u->bev, EV_WRITE, STREAM_LOW_WATER, 0);
		bufferevent_enable(u->bev, EV_WRITE);
		bufferevent_disable(u->bev, EV_READ);
	} else {
		/* Reads go through u->rev once connected; writes through worker_flush(). */
		bufferevent_setcb(u->bev, NULL, upstream_write_cb, upstream_event_cb, u);
		bufferevent_setwatermark(u->bev, EV_WRITE, STREAM_LOW_WATER, 0);
		bufferevent_disable(u->bev, EV_READ | EV_WRITE);
	}
	if (k->unix_path != NULL) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&sa;

		memset(sun, 0, sizeof(*sun));
		sun->sun_family = AF_UNIX;
		snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", k->unix_path);
		upstream_connect(u, (struct sockaddr *)&sa, sizeof(*sun));
	} else if (resolver_lookup_now(w->resolver, k->host, k->port, &sa, &salen) == 0) {
		upstream_connect(u, (struct sockaddr *)&sa, salen);
	} else {
		u->rq = resolver_lookup(w->resolver, k->host, k->port, upstream_resolved, u);
	}
	return u;
}

struct upstream *
upstream_get(struct worker *w, const struct route *r, const struct upstream_dest *d,
	     struct tls_client *tls, size_t head_limit, bool fresh, const struct upstream_cbs *cbs,
	     void *arg)
{
	struct upstream_key *k = pool_key(w->pool, r, d);
	struct upstream *u = fresh ? NULL : k->idle;

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
		u = upstream_new(w, r, k);
	}
	u->cbs = cbs;
	u->arg = arg;
	u->got_bytes = false;
	upstream_set_read_room(u, w->cfg->limits.buffer);
	u->head_limit = head_limit;
	u->reading_what = UPREAD_HEAD;
	head_reset(&u->head, HEAD_RESPONSE);
	return u;
}

void
upstream_release(struct upstream *u, bool reuse)
{
	reuse = reuse && u->keep_alive && u->reading_what == UPREAD_DONE &&
		u->body != HEAD_BODY_EOF && evbuffer_get_length(bufferevent_get_input(u->bev)) == 0;
	if (!reuse || u->w->draining || u->key->nidle >= POOL_IDLE_MAX ||
	    u->state != UPSTREAM_BUSY) {
		upstream_close(u, "not reusable");
		return;
	}
	u->arg = NULL;
	u->cbs = NULL;
	upstream_set_state(u, UPSTREAM_IDLE);
	head_trim(&u->head);
	/* Reading stays on: a close, stray bytes or upstream_idle drop it. */
	u->paused = false;
	u->process_pending = false;
	u->read_ms = u->w->cfg->timeouts.upstream_idle;
	upstream_clear_timeouts(u);
	upstream_apply_read(u, true);
	idle_push(u);
}

void
upstream_close(struct upstream *u, const char *reason)
{
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
	u->arg = NULL;
	u->cbs = NULL;
	bufferevent_disable(u->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(u->bev, NULL, NULL, NULL, NULL);
	u->read_eof = true;
	upstream_apply_read(u, false);
	if (u->rev != NULL)
		event_del(u->rev);
	deadline_stop(&u->timer);
	worker_defer_free(u->w, &u->reap);
}

static void
upstream_reap(struct worker_reap *r)
{
	struct upstream *u = (struct upstream *)((char *)r - offsetof(struct upstream, reap));

	PORTICO_ASSERT(u->magic == UPSTREAM_MAGIC && u->state == UPSTREAM_CLOSING);
	if (u->rev != NULL)
		event_free(u->rev);
	bufferevent_free(u->bev);
	head_free(&u->head);
	metrics_gauge_add(u->w->metrics, METRICS_UPSTREAM_CONNECTIONS, -1);
	u->magic = 0;
	free(u);
}
