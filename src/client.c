/*
 * client.c: HTTP/1.1 client connections (client.h).  Owns the connection
 * lifecycle (one state enum, one transition function, one close path
 * deferred to the worker's teardown pass), the client timeouts, reading
 * request heads (head.h) and bodies, and the HTTP/1.1 side of an exchange
 * (stream.h): response framing, error pages, tunnels.
 *
 * A head is copied once out of the bufferevent's input into a pooled head
 * and parsed there; parsing stops at the end of the head, so a pipelined
 * request stays in the input, bounded, until the current response is
 * complete.  Plain sockets are read with the connection's own event
 * (worker_read) and written directly (worker_flush); TLS connections keep
 * libevent's OpenSSL bufferevent for both.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "portico/chunked.h"
#include "portico/client.h"
#include "portico/access.h"
#include "portico/config.h"
#include "portico/deadline.h"
#include "portico/errpage.h"
#include "portico/h2.h"
#include "portico/head.h"
#include "portico/log.h"
#include "portico/metrics.h"
#include "portico/proxyproto.h"
#include "portico/stream.h"
#include "portico/tls.h"
#include "portico/worker.h"

#define CLIENT_MAGIC 0x434c4e54u

/* How the current request's body is read. */
enum client_body {
	CBODY_NONE,
	CBODY_LENGTH,
	CBODY_CHUNKED,
	CBODY_RAW, /* a tunnel: everything until the client closes */
};

struct client {
	unsigned magic;
	enum client_state state;
	struct stream st; /* the client side of the current exchange */
	const struct stream_events *ev;
	struct worker *w;
	struct worker_reap reap;
	struct bufferevent *bev; /* NULL while idle: parked in the worker's spares */
	int fd;
	struct tls_server *tls; /* TLS listener: libevent's OpenSSL read and write paths */
	struct deadline timer;	/* client_header, client_idle, the close's client_body */
	struct event rev;	/* reading (plain sockets: see worker_read) */
	uint64_t read_ms;	/* read timeout of the current state, 0: none */
	uint64_t bev_write_ms;	/* send timeout set on a plain `bev` */
	bool reading;		/* rev is armed */
	bool parse_pending;	/* rev activated to parse bytes already buffered */
	size_t flat_len;	/* bytes just read into the worker's flat buffer (client_read) */

	/* The request head being read, and the snapshot it started under. */
	struct head *head;
	struct config *cfg;

	/* The request being served. */
	uint8_t minor;	 /* HTTP/1.<minor> */
	bool keep_alive; /* the request allows another one after it */
	enum client_body body;
	uint64_t body_left;
	bool body_done;
	bool body_paused; /* reading paused: the upstream's output is full */
	struct chunked chunked;
	bool rechunk;	  /* the response body goes out chunked */
	bool close_delim; /* the response body ends with the connection */
	uint64_t tunnel_ms;
	uint64_t body_ms; /* client_body of the snapshot the request started under */

	struct client *prev, *next; /* worker's list */
	const char *close_reason;
	bool read_eof;	  /* the client half-closed */
	bool close_after; /* close once the current response is complete */
	bool linger;	  /* closing: the client may still be sending (client_close) */
	bool lingering;	  /* closing, output written: reading what still comes, sending nothing */
	unsigned nrequests;
	uint64_t bytes_in, bytes_out;
	uint64_t start_us;
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	} sa;
	char addr[48]; /* text form for logs and X-Forwarded-For */

	/* CLIENT_PROXY: the header's bytes so far, and the TLS to start after it. */
	uint8_t *pp_buf; /* PROXYPROTO_MAX_LEN bytes while reading the header */
	size_t pp_len;
	struct tls_server *pp_tls; /* a reference */

	int lfd;	       /* the listening socket it came from (kept across reloads) */
	bool h2_ok;	       /* the listener serves HTTP/2 (listen[].http2) */
	struct h2_session *h2; /* CLIENT_H2: the session serving the connection */
};

/* The longest a closing connection reads what its client still sends (client_close_written). */
#define CLIENT_LINGER_MS 5000

static const char *const state_names[] = {
    [CLIENT_IDLE] = "idle",	  [CLIENT_HEAD] = "head",     [CLIENT_BODY] = "body",
    [CLIENT_WAIT] = "wait",	  [CLIENT_TUNNEL] = "tunnel", [CLIENT_PROXY] = "proxy",
    [CLIENT_CLOSING] = "closing", [CLIENT_H2] = "h2",
};

const char *
client_state_name(enum client_state s)
{
	return (unsigned)s < ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

static void client_close(struct client *c, const char *reason);

static uint64_t
base_now_us(struct event_base *base)
{
	struct timeval tv;

	event_base_gettimeofday_cached(base, &tv);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void
client_arm_timer(struct client *c, uint64_t ms)
{
	deadline_set(&c->timer, deadline_now_us(), ms);
}

static struct evbuffer *
client_in(struct client *c)
{
	return bufferevent_get_input(c->bev);
}

static struct evbuffer *
client_out(struct client *c)
{
	return bufferevent_get_output(c->bev);
}

/* --- reading ----------------------------------------------------------------- */

/* Whether the client's bytes should be read now. */
static bool
client_wants_read(const struct client *c)
{
	size_t queued = c->bev ? evbuffer_get_length(bufferevent_get_input(c->bev)) : 0;

	if (c->read_eof || c->body_paused)
		return false;
	if (c->state == CLIENT_H2)
		return h2_session_wants_read(c->h2);
	/* A pipelined request waits unparsed, bounded by the head limit. */
	if (c->state == CLIENT_WAIT && queued >= c->w->cfg->limits.header_size + 4)
		return false;
	return true;
}

/* TLS: reading through the bufferevent, the read timeout on it too. */
static void
client_tls_apply_read(struct client *c, bool want, bool rearm)
{
	uint64_t wms = c->state == CLIENT_TUNNEL ? c->read_ms : c->body_ms;
	struct timeval rtv, wtv;

	if (want && (!c->reading || rearm)) {
		tv_from_ms(&rtv, c->read_ms);
		tv_from_ms(&wtv, wms);
		bufferevent_set_timeouts(c->bev, c->read_ms ? &rtv : NULL, &wtv);
		bufferevent_enable(c->bev, EV_READ);
	} else if (!want && c->reading) {
		bufferevent_disable(c->bev, EV_READ);
	}
}

/* Arms or disarms the read event; `rearm` applies a changed read timeout. */
static void
client_apply_read(struct client *c, bool rearm)
{
	bool want = client_wants_read(c);
	struct timeval tv;

	if (c->tls != NULL) {
		client_tls_apply_read(c, want, rearm);
	} else if (want && (!c->reading || rearm)) {
		tv_from_ms(&tv, c->read_ms);
		event_add(&c->rev, c->read_ms ? &tv : NULL);
	} else if (!want && c->reading) {
		event_del(&c->rev);
	}
	c->reading = want;
}

static void
client_update_read(struct client *c)
{
	client_apply_read(c, false);
}

/* Read timeout (between two reads) and send timeout for the state entered. */
static void
client_set_timeouts(struct client *c, enum client_state s)
{
	struct timeval wtv;
	uint64_t rms = 0, wms = c->body_ms;

	if (s == CLIENT_BODY)
		rms = c->body_ms;
	else if (s == CLIENT_TUNNEL)
		rms = wms = c->tunnel_ms;
	/* Re-set only when it changes: setting it re-adds the bufferevent's events. */
	if (c->bev != NULL && c->tls == NULL && c->bev_write_ms != wms) {
		tv_from_ms(&wtv, wms);
		bufferevent_set_timeouts(c->bev, NULL, &wtv);
		c->bev_write_ms = wms;
	}
	if (rms != c->read_ms) {
		c->read_ms = rms;
		client_apply_read(c, true);
	}
}

static void
client_set_state(struct client *c, enum client_state s)
{
	enum client_state old = c->state;

	if (old == s)
		return;
	log_debug("client %s: %s -> %s", c->addr, client_state_name(old), client_state_name(s));
	c->state = s;
	switch (s) {
	case CLIENT_IDLE:
		client_arm_timer(c, c->w->cfg->timeouts.client_idle);
		break;
	case CLIENT_HEAD:
		/* From the head's first byte; armed only if the head is not complete at once. */
		deadline_move(&c->timer, c->head->start_us, c->cfg->timeouts.client_header);
		break;
	default:
		deadline_clear(&c->timer);
		break;
	}
	if (s != CLIENT_CLOSING)
		client_set_timeouts(c, s);
	client_update_read(c);
}

/* --- buffers -------------------------------------------------------------------- */

static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);

/*
 * The one place a client's bufferevent is attached: its own parked one, or
 * a spare one from the worker pointed at the socket.  TLS connections keep
 * theirs from the accept on.
 */
static void
client_attach_bev(struct client *c)
{
	struct timeval wtv;

	if (c->bev != NULL)
		return;
	/* This connection's own, as it left it (send timeout in bev_write_ms). */
	c->bev = worker_bev_unpark(c->w, c);
	if (c->bev != NULL)
		return;
	c->bev = worker_bev_get(c->w);
	bufferevent_setfd(c->bev, c->fd);
	/* Reads go through c->rev; the bufferevent writes only what worker_flush() leaves. */
	bufferevent_setcb(c->bev, NULL, client_write_cb, client_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, STREAM_LOW_WATER, 0);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	c->bev_write_ms = c->w->cfg->timeouts.client_body;
	tv_from_ms(&wtv, c->bev_write_ms);
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
}

/*
 * An idle keep-alive connection keeps only its struct and events (SPEC:
 * small idle cost): its buffers, known to be empty, are parked unless a
 * write is still pending.
 */
static void
client_park_bev(struct client *c)
{
	struct bufferevent *bev = c->bev;

	if (bev == NULL || (bufferevent_get_enabled(bev) & EV_WRITE))
		return;
	c->bev = NULL;
	worker_bev_park(c->w, bev, c);
}

/* Sends what is queued (plain sockets); true when below the low watermark. */
static bool
client_flush_out(struct client *c)
{
	return worker_flush(c->bev, c->fd) < STREAM_LOW_WATER;
}

/*
 * The end of every callback: sends what was queued, and tells the exchange
 * when its output is low (a direct write raises no write callback).
 */
static void
client_flush(struct client *c)
{
	if (client_flush_out(c) && c->st.ex != NULL)
		c->ev->writable(c->st.ex);
}

/* --- the lifecycle ------------------------------------------------------------------ */

static void client_io_cb(evutil_socket_t fd, short what, void *arg);
static void client_close_written(struct client *c);
static void client_timer_cb(void *arg);
static void client_tls_read_cb(struct bufferevent *bev, void *arg);
static void client_reap(struct worker_reap *r);
static const struct stream_ops client_stream_ops;

/*
 * A TLS listener's connection: an OpenSSL bufferevent that keeps its own
 * read and write paths (no parking, no direct writes).  0 or -1.
 */
static int
client_tls_start(struct client *c, struct tls_server *t)
{
	struct ssl_st *ssl = tls_server_ssl_new(t);

	if (ssl == NULL)
		return -1;
	c->bev = bufferevent_openssl_socket_new(c->w->base, c->fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	c->tls = tls_server_ref(t);
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, client_tls_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, STREAM_LOW_WATER, 0);
	bufferevent_enable(c->bev, EV_WRITE);
	return 0;
}

static void
client_format_addr(struct client *c)
{
	const struct sockaddr *sa = &c->sa.sa;
	const void *a = NULL;

	if (sa->sa_family == AF_INET)
		a = &c->sa.sin.sin_addr;
	else if (sa->sa_family == AF_INET6) {
		/* An IPv4 client on a dual-stack socket logs as IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&c->sa.sin6.sin6_addr)) {
			evutil_inet_ntop(AF_INET, &c->sa.sin6.sin6_addr.s6_addr[12], c->addr,
					 sizeof(c->addr));
			return;
		}
		a = &c->sa.sin6.sin6_addr;
	}
	if (a == NULL || evutil_inet_ntop(sa->sa_family, a, c->addr, sizeof(c->addr)) == NULL)
		strcpy(c->addr, "unknown");
}

/* --- the PROXY protocol header (SPEC section 13) ------------------------------------ */

/* The listener's proxy_protocol list, or NULL when it has none. */
static const struct access_list *
client_proxy_list(const struct worker *w, const struct wlistener *l)
{
	const struct config *cfg = w->cfg;

	if (l->index >= cfg->nlisten || cfg->listen[l->index].proxy_protocol.n == 0)
		return NULL;
	return &cfg->listen[l->index].proxy_protocol;
}

static const char *const proxy_refusals[] = {
    [METRICS_PROXY_MISSING - METRICS_PROXY_MISSING] = "missing header",
    [METRICS_PROXY_MALFORMED - METRICS_PROXY_MISSING] = "malformed header",
    [METRICS_PROXY_TRUNCATED - METRICS_PROXY_MISSING] = "truncated header",
    [METRICS_PROXY_UNTRUSTED - METRICS_PROXY_MISSING] = "peer not in proxy_protocol",
};

/* A connection that did not give a usable header: logged, counted, closed. */
static void
client_proxy_refuse(struct client *c, enum metrics_counter k, const char *why)
{
	const char *what = proxy_refusals[k - METRICS_PROXY_MISSING];

	log_warn("client %s: PROXY protocol: %s: %s (%zu bytes read)", c->addr, what, why,
		 c->pp_len);
	metrics_add(c->w->metrics, k, 1);
	client_close(c, what);
}

/* After accept on a proxy_protocol listener: the peer must be listed. */
static void
client_proxy_start(struct client *c, const struct access_list *pp, struct tls_server *tls)
{
	if (access_first_match(pp, &c->sa.sa) < 0) {
		client_proxy_refuse(c, METRICS_PROXY_UNTRUSTED, "connection refused");
		return;
	}
	c->pp_buf = xmalloc(PROXYPROTO_MAX_LEN);
	c->pp_tls = tls != NULL ? tls_server_ref(tls) : NULL;
}

/* The header is read: its address stands for the peer's; then HTTP (or TLS) begins. */
static void
client_proxy_done(struct client *c, const struct proxyproto_header *h)
{
	struct tls_server *tls = c->pp_tls;
	char peer[sizeof(c->addr)];

	memcpy(peer, c->addr, sizeof(peer));
	if (!h->local) {
		memset(&c->sa, 0, sizeof(c->sa));
		memcpy(&c->sa, &h->src,
		       h->src.ss_family == AF_INET ? sizeof(c->sa.sin) : sizeof(c->sa.sin6));
		client_format_addr(c);
	}
	log_debug("client %s: PROXY protocol v%u from %s%s", c->addr, h->version, peer,
		  h->local ? " (local)" : "");
	free(c->pp_buf);
	c->pp_buf = NULL;
	c->pp_tls = NULL;
	if (tls != NULL) {
		/* The TLS bufferevent reads the socket from now on. */
		event_del(&c->rev);
		c->reading = false;
		if (client_tls_start(c, tls) == -1) {
			tls_server_unref(tls);
			client_close(c, "TLS setup failed");
			return;
		}
		tls_server_unref(tls);
	}
	client_set_state(c, CLIENT_IDLE);
	/* The first request head, as on any new connection, within client_header. */
	client_arm_timer(c, c->w->cfg->timeouts.client_header);
}

/* Takes `n` bytes the last peek saw off the socket; 0 or -1. */
static int
client_proxy_consume(struct client *c, size_t n)
{
	ssize_t got;

	do
		got = recv(c->fd, c->pp_buf + c->pp_len, n, 0);
	while (got == -1 && errno == EINTR);
	if (got != (ssize_t)n)
		return -1;
	c->pp_len += n;
	c->bytes_in += n;
	metrics_add(c->w->metrics, METRICS_BYTES_RECEIVED, n);
	return 0;
}

/*
 * Reads the header without reading past it: the bytes are peeked, and only
 * those that belong to the header are taken (a valid prefix belongs to it
 * entirely), so what follows (a request, a TLS ClientHello) stays in the
 * socket for the next reader.
 */
static void
client_proxy_read(struct client *c)
{
	struct proxyproto_header h;
	const char *why = NULL;
	ssize_t n;

	n = recv(c->fd, c->pp_buf + c->pp_len, PROXYPROTO_MAX_LEN - c->pp_len, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_proxy_refuse(c,
				    c->pp_len > 0 ? METRICS_PROXY_TRUNCATED : METRICS_PROXY_MISSING,
				    n == 0 ? "connection closed" : strerror(errno));
		return;
	}
	switch (proxyproto_parse(c->pp_buf, c->pp_len + (size_t)n, &h, &why)) {
	case PROXYPROTO_MORE:
		if (client_proxy_consume(c, (size_t)n) == -1)
			client_close(c, "PROXY protocol: read failed");
		break;
	case PROXYPROTO_INVALID:
		client_proxy_refuse(c,
				    strcmp(why, PROXYPROTO_NOT_PROXY) == 0
					? METRICS_PROXY_MISSING
					: METRICS_PROXY_MALFORMED,
				    why);
		break;
	case PROXYPROTO_DONE:
		if (client_proxy_consume(c, h.len - c->pp_len) == -1)
			client_close(c, "PROXY protocol: read failed");
		else
			client_proxy_done(c, &h);
		break;
	}
}

void
client_accept(struct worker *w, const struct wlistener *l, int fd, const struct sockaddr *sa,
	      int salen, const struct stream_events *ev)
{
	struct client *c = xcalloc(1, sizeof(*c));
	const struct access_list *pp;
	int one = 1;

	c->magic = CLIENT_MAGIC;
	c->w = w;
	c->ev = ev;
	c->reap.free = client_reap;
	if (salen > 0 && (size_t)salen <= sizeof(c->sa))
		memcpy(&c->sa, sa, (size_t)salen);
	client_format_addr(c);
	c->st = (struct stream){.ops = &client_stream_ops,
				.w = w,
				.scheme = l->scheme,
				.addr = c->addr,
				.sa = &c->sa.sa};
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	deadline_init(&c->timer, w->base, client_timer_cb, c);
	event_assign(&c->rev, w->base, fd, EV_READ | EV_PERSIST, client_io_cb, c);
	c->start_us = base_now_us(w->base);
	c->body_ms = w->cfg->timeouts.client_body;
	c->lfd = l->fd;
	c->h2_ok = l->index < w->cfg->nlisten && w->cfg->listen[l->index].http2;
	pp = client_proxy_list(w, l);
	if (pp == NULL && l->tls != NULL && client_tls_start(c, l->tls) == -1) {
		close(fd);
		free(c);
		return;
	}
	c->next = w->clients;
	if (w->clients)
		w->clients->prev = c;
	w->clients = c;
	w->nclients++;
	metrics_gauge_add(w->metrics, METRICS_CLIENT_CONNECTIONS, 1);
	/* A new connection must send its first head within client_header. */
	c->state = pp != NULL ? CLIENT_PROXY : CLIENT_IDLE;
	client_arm_timer(c, w->cfg->timeouts.client_header);
	client_set_timeouts(c, c->state);
	client_update_read(c);
	if (pp != NULL)
		client_proxy_start(c, pp, l->tls);
}

/* Lets go of the exchange bound to the connection, telling it first. */
static void
client_detach(struct client *c, const char *reason)
{
	void *ex = c->st.ex;

	if (c->h2 != NULL)
		h2_session_detach(c->h2, reason);
	if (ex == NULL)
		return;
	c->st.ex = NULL;
	c->ev->gone(ex, reason);
}

/* A head being read when the connection closes: back to the pool. */
static void
client_drop_head(struct client *c)
{
	if (c->head != NULL) {
		worker_head_put(c->w, c->head);
		c->head = NULL;
	}
	config_unref(c->cfg);
	c->cfg = NULL;
}

/* Marks the connection for close; the worker frees it outside the current callback. */
static void
client_close(struct client *c, const char *reason)
{
	if (c->state == CLIENT_CLOSING)
		return;
	c->close_reason = reason;
	/*
	 * A client whose request was not read to its end (an error page, a
	 * body refused) may still be sending: closing with its bytes unread
	 * would reset the connection and could destroy the answer before it
	 * is read.  Such a connection lingers once its output is written.
	 */
	c->linger = c->tls == NULL && !c->read_eof && !c->w->draining &&
		    (!c->body_done || c->state == CLIENT_H2 ||
		     (c->bev != NULL && evbuffer_get_length(client_in(c)) > 0));
	c->body_paused = false;
	client_detach(c, reason);
	client_drop_head(c);
	client_set_state(c, CLIENT_CLOSING);
	/* Flush what is queued (an error page) before closing, within client_body. */
	if (c->bev == NULL || evbuffer_get_length(client_out(c)) == 0) {
		client_close_written(c);
		return;
	}
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_WRITE);
	client_arm_timer(c, c->w->cfg->timeouts.client_body);
}

/*
 * A closing connection's output is written: it goes now, or lingers
 * (as httpd's and nginx's lingering close): its sending side is shut, and
 * what the client still sends is read and dropped until it closes too, or
 * CLIENT_LINGER_MS (at most timeouts.client_body) pass.
 */
static void
client_close_written(struct client *c)
{
	uint64_t ms = c->w->cfg->timeouts.client_body;

	if (!c->linger || c->lingering || c->read_eof) {
		worker_defer_free(c->w, &c->reap);
		return;
	}
	c->lingering = true;
	shutdown(c->fd, SHUT_WR);
	client_arm_timer(c, ms != 0 && ms < CLIENT_LINGER_MS ? ms : CLIENT_LINGER_MS);
	client_update_read(c);
}

/* Closes without waiting for queued output to drain. */
static void
client_abort(struct client *c, const char *reason)
{
	client_close(c, reason);
	worker_defer_free(c->w, &c->reap);
}

static void
client_free(struct client *c)
{
	struct worker *w = c->w;

	PORTICO_ASSERT(c->magic == CLIENT_MAGIC && c->st.ex == NULL && c->head == NULL);
	log_debug("client %s closed: %s requests=%u in=%llu out=%llu duration_us=%llu", c->addr,
		  c->close_reason ? c->close_reason : "-",
		  c->nrequests + h2_session_requests(c->h2), (unsigned long long)c->bytes_in,
		  (unsigned long long)c->bytes_out,
		  (unsigned long long)(base_now_us(w->base) - c->start_us));
	if (c->prev)
		c->prev->next = c->next;
	else
		w->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	event_del(&c->rev);
	deadline_stop(&c->timer);
	free(c->pp_buf);
	if (c->pp_tls != NULL)
		tls_server_unref(c->pp_tls);
	h2_session_free(c->h2);
	if (c->tls != NULL) {
		/* Frees the SSL object and closes the socket. */
		bufferevent_free(c->bev);
		tls_server_unref(c->tls);
		c->bev = NULL;
		c->fd = -1;
	} else if (c->bev != NULL) {
		struct evbuffer *in = client_in(c), *out = client_out(c);

		/* The output's start is frozen by the bufferevent: thaw it to drain. */
		evbuffer_drain(in, evbuffer_get_length(in));
		evbuffer_unfreeze(out, 1);
		evbuffer_drain(out, evbuffer_get_length(out));
		evbuffer_freeze(out, 1);
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		worker_bev_put(w, c->bev);
	}
	worker_bev_forget(w, c);
	if (c->fd >= 0)
		close(c->fd);
	c->magic = 0;
	free(c);
	w->nclients--;
	metrics_gauge_add(w->metrics, METRICS_CLIENT_CONNECTIONS, -1);
	worker_client_gone(w);
}

static void
client_reap(struct worker_reap *r)
{
	client_free((struct client *)((char *)r - offsetof(struct client, reap)));
}

/* Ends a connection gracefully: GOAWAY, or close once its request is served. */
static void
client_wind_down(struct client *c, const char *why)
{
	if (c->lingering)
		worker_defer_free(c->w, &c->reap);
	else if (c->state == CLIENT_H2)
		h2_session_drain(c->h2);
	else if (c->state == CLIENT_IDLE && c->nrequests > 0)
		client_close(c, why);
	else
		c->close_after = true;
}

void
client_drain_all(struct worker *w)
{
	/*
	 * A connection that has not sent its first request yet (a balancer
	 * may have handed it over just before the stop) is in flight: its
	 * request is served, with Connection: close.
	 */
	for (struct client *c = w->clients; c; c = c->next)
		client_wind_down(c, "shutdown");
}

void
client_listeners_changed(struct worker *w)
{
	struct client *c, *next;

	for (c = w->clients; c; c = next) {
		const struct wlistener *l = NULL;

		next = c->next;
		for (size_t i = 0; i < w->nlisteners && l == NULL; i++)
			if (w->listeners[i].fd == c->lfd)
				l = &w->listeners[i];
		if (l != NULL)
			c->h2_ok = l->index < w->cfg->nlisten && w->cfg->listen[l->index].http2;
		if (l == NULL)
			client_wind_down(c, "listener removed");
		else if (c->state == CLIENT_H2 && !c->h2_ok)
			client_wind_down(c, "http2 turned off");
	}
}

void
client_abort_all(struct worker *w, const char *reason)
{
	for (struct client *c = w->clients; c; c = c->next)
		client_abort(c, reason);
}

static struct client *
client_from_arg(void *arg)
{
	struct client *c = arg;

	PORTICO_ASSERT(c->magic == CLIENT_MAGIC);
	return c;
}

static struct client *
client_of(struct stream *s)
{
	return client_from_arg((char *)s - offsetof(struct client, st));
}

/* --- requests ------------------------------------------------------------------------ */

static void
client_begin_head(struct client *c)
{
	struct timeval tv;

	c->head = worker_head_get(c->w);
	c->cfg = config_ref(c->w->cfg);
	c->body_ms = c->cfg->timeouts.client_body;
	event_base_gettimeofday_cached(c->w->base, &tv);
	c->head->start_wall = tv.tv_sec;
	c->head->start_us = worker_mono_us();
	c->nrequests++;
	client_set_state(c, CLIENT_HEAD);
}

/* The head is complete (or refused): the request's framing, then the exchange. */
static void
client_start_request(struct client *c)
{
	struct head *h = c->head;
	struct config *cfg = c->cfg;

	c->head = NULL;
	c->cfg = NULL;
	c->minor = h->minor;
	c->keep_alive = h->error == 0 && h->keep_alive;
	c->body = h->body == HEAD_BODY_LENGTH	 ? CBODY_LENGTH
		  : h->body == HEAD_BODY_CHUNKED ? CBODY_CHUNKED
						 : CBODY_NONE;
	c->body_left = h->length;
	c->body_done = h->error == 0 && c->body == CBODY_NONE;
	c->body_paused = false;
	c->rechunk = c->close_delim = false;
	if (c->body == CBODY_CHUNKED)
		chunked_init(&c->chunked);
	/* The framing of what follows a refused head is unknown: answer, then close. */
	if (h->error != 0)
		c->close_after = true;
	client_set_state(c, CLIENT_WAIT);
	c->ev->start(&c->st, h, cfg);
}

/*
 * The first bytes of a head, read into the worker's flat buffer: parsed in
 * place when the head is whole; what is not the head goes to the input.
 */
static enum head_result
client_feed_flat(struct client *c, size_t *n)
{
	const struct config *cfg = c->cfg;
	const char *flat = c->w->flat;
	size_t len = c->flat_len;
	enum head_result r =
	    head_feed_bytes(c->head, flat, len, cfg->limits.header_size, cfg->limits.header_count);

	c->flat_len = 0;
	*n = r == HEAD_DONE ? c->head->end : 0;
	if (len > *n)
		worker_input_add(client_in(c), flat + *n, len - *n);
	return r;
}

/* Copies new input into the head and parses it; acts on a complete head. */
static void
client_parse_head(struct client *c)
{
	const struct config *cfg = c->cfg;
	struct evbuffer *in = client_in(c);
	size_t before = evbuffer_get_length(in), n = 0;
	enum head_result r;

	if (c->flat_len > 0)
		r = client_feed_flat(c, &n);
	else
		r = head_feed(c->head, in, cfg->limits.header_size, cfg->limits.header_count);
	switch (r) {
	case HEAD_MORE:
		deadline_commit(&c->timer);
		return;
	case HEAD_DONE:
		if (n == 0)
			n = before - evbuffer_get_length(in);
		c->bytes_in += n;
		metrics_add(c->w->metrics, METRICS_BYTES_RECEIVED, n);
		head_check_request(c->head);
		break;
	case HEAD_ERROR:
		break;
	}
	client_start_request(c);
}

static void
client_request_done(struct client *c)
{
	size_t pending;

	c->st.ex = NULL;
	if (!c->body_done || !c->keep_alive)
		c->close_after = true;
	if (c->close_after || c->read_eof || c->w->draining) {
		client_close(c, c->read_eof ? "client closed" : "not keep-alive");
		return;
	}
	c->body_paused = false;
	client_set_state(c, CLIENT_IDLE);
	/* A pipelined request is already here: parse it from the loop, not from here. */
	pending = evbuffer_get_length(client_in(c));
	if (pending > 0 && c->tls != NULL) {
		bufferevent_trigger(c->bev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	} else if (pending > 0) {
		c->parse_pending = true;
		event_active(&c->rev, EV_READ, 0);
	} else if (c->tls == NULL && worker_flush(c->bev, c->fd) == 0) {
		/* Sent now, so an idle connection can give its buffers back. */
		client_park_bev(c);
	}
}

/* --- the stream operations (stream.h) --------------------------------------------- */

/* A field still laid out as its upstream line (head.h). */
static bool
field_is_line(const struct stream_field *f)
{
	return head_field_is_line(f->name, f->name_len, f->value, f->value_len);
}

/* "HTTP/1.1 NNN reason\r\n" and the fields: adjacent upstream lines in one copy. */
static void
write_status_and_fields(struct buf *out, const struct stream_response *r)
{
	char status[4] = {(char)('0' + r->status / 100 % 10), (char)('0' + r->status / 10 % 10),
			  (char)('0' + r->status % 10), ' '};
	size_t i = 0;

	buf_reset(out);
	head_put(out, "HTTP/1.1 ", 9);
	head_put(out, status, sizeof(status));
	if (r->reason != NULL)
		head_put(out, r->reason, r->reason_len);
	else
		head_put_str(out, http_reason(r->status));
	head_put(out, "\r\n", 2);
	while (i < r->nfields) {
		const struct stream_field *f = &r->fields[i++];
		uintptr_t end;

		if (!field_is_line(f)) {
			head_put_field(out, f->name, f->name_len, f->value, f->value_len);
			continue;
		}
		end = (uintptr_t)f->value + f->value_len + 2;
		while (i < r->nfields && (uintptr_t)r->fields[i].name == end &&
		       field_is_line(&r->fields[i])) {
			end = (uintptr_t)r->fields[i].value + r->fields[i].value_len + 2;
			i++;
		}
		head_put(out, f->name, (size_t)(end - (uintptr_t)f->name));
	}
}

/* Framing and Connection of a final head (HTTP/1.1 clients chunked, 1.0 close-delimited). */
static void
write_framing(struct client *c, struct buf *out, const struct stream_response *r)
{
	bool keep;

	if (r->length >= 0) {
		head_put(out, "Content-Length: ", 16);
		head_put_decimal(out, (uint64_t)r->length);
		head_put(out, "\r\n", 2);
	} else if (!r->no_body && c->minor >= 1) {
		c->rechunk = true;
		head_put_str(out, "Transfer-Encoding: chunked\r\n");
	} else if (!r->no_body) {
		c->close_delim = true;
	}
	keep = c->keep_alive && !r->close && !c->close_after && !c->close_delim && !c->w->draining;
	if (!keep) {
		c->close_after = true;
		head_put_str(out, "Connection: close\r\n");
	} else if (c->minor == 0) {
		head_put_str(out, "Connection: keep-alive\r\n");
	}
}

static void
client_send_head(struct stream *s, const struct stream_response *r)
{
	struct client *c = client_of(s);
	struct buf *out = &c->w->head;

	/* 1xx other than 101 only to HTTP/1.1 clients: HTTP/1.0 has none. */
	if (r->status < 200 && !r->upgrade && c->minor == 0)
		return;
	write_status_and_fields(out, r);
	if (r->upgrade)
		head_put_str(out, "Connection: upgrade\r\n");
	else if (r->status >= 200)
		write_framing(c, out, r);
	head_put(out, "\r\n", 2);
	evbuffer_add(client_out(c), out->data, out->len);
}

static void
client_send_body(struct stream *s, struct evbuffer *data, size_t len)
{
	struct client *c = client_of(s);
	struct evbuffer *out = client_out(c);
	char hex[20];
	size_t n;

	if (len == 0)
		return;
	if (c->rechunk) {
		n = http_hex(hex, len);
		hex[n++] = '\r';
		hex[n++] = '\n';
		evbuffer_add(out, hex, n);
	}
	/* All of it (the usual case) moves as whole chains, without a count. */
	if (len == evbuffer_get_length(data))
		evbuffer_add_buffer(out, data);
	else
		evbuffer_remove_buffer(data, out, len);
	if (c->rechunk)
		evbuffer_add(out, "\r\n", 2);
	c->bytes_out += len;
}

static void
client_end(struct stream *s)
{
	struct client *c = client_of(s);

	if (c->rechunk)
		evbuffer_add(client_out(c), "0\r\n\r\n", 5);
	client_request_done(c);
}

static uint64_t
client_error(struct stream *s, int status, const char *reqid, bool close, bool head_only)
{
	struct client *c = client_of(s);
	uint64_t n;

	close = close || c->close_after || !c->keep_alive || c->w->draining;
	n = errpage_write_retry(client_out(c), status, reqid, close, !close && c->minor == 0,
				head_only, s->retry_after);
	s->retry_after = 0;
	if (close)
		c->close_after = true;
	client_request_done(c);
	return n;
}

static void
client_stream_abort(struct stream *s, const char *reason)
{
	struct client *c = client_of(s);

	c->st.ex = NULL;
	client_close(c, reason);
}

static size_t
client_pending(struct stream *s)
{
	struct client *c = client_of(s);

	return c->bev ? evbuffer_get_length(client_out(c)) : 0;
}

static void
client_count_in(struct client *c, size_t n)
{
	c->bytes_in += n;
	metrics_add(c->w->metrics, METRICS_BYTES_RECEIVED, n);
}

static enum stream_body
client_read_body(struct stream *s, struct evbuffer *dst, size_t *moved)
{
	struct client *c = client_of(s);
	struct evbuffer *in = client_in(c);
	size_t n = evbuffer_get_length(in), before = n;
	enum chunked_result r;

	*moved = 0;
	switch (c->body) {
	case CBODY_NONE:
		return STREAM_BODY_END;
	case CBODY_RAW:
		*moved = n;
		evbuffer_add_buffer(dst, in);
		client_count_in(c, n);
		return STREAM_BODY_MORE;
	case CBODY_LENGTH:
		n = n < c->body_left ? n : (size_t)c->body_left;
		evbuffer_remove_buffer(in, dst, n);
		c->body_left -= n;
		*moved = n;
		client_count_in(c, n);
		if (c->body_left > 0)
			return STREAM_BODY_MORE;
		break;
	case CBODY_CHUNKED:
		n = evbuffer_get_length(dst);
		r = chunked_decode(&c->chunked, in, dst);
		*moved = evbuffer_get_length(dst) - n;
		client_count_in(c, before - evbuffer_get_length(in));
		if (r == CHUNKED_ERROR)
			return STREAM_BODY_ERROR;
		if (r == CHUNKED_MORE)
			return STREAM_BODY_MORE;
		break;
	}
	c->body_done = true;
	if (c->state == CLIENT_BODY)
		client_set_state(c, CLIENT_WAIT);
	return STREAM_BODY_END;
}

/* Bytes already read are reported again from the loop, not from the caller. */
static void
client_schedule_input(struct client *c)
{
	if (c->bev == NULL || evbuffer_get_length(client_in(c)) == 0)
		return;
	if (c->tls != NULL) {
		bufferevent_trigger(c->bev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	} else {
		c->parse_pending = true;
		event_active(&c->rev, EV_READ, 0);
	}
}

static void
client_pause_body(struct stream *s, bool pause)
{
	struct client *c = client_of(s);
	bool resumed = c->body_paused && !pause;

	c->body_paused = pause;
	if (!pause && !c->body_done && c->state == CLIENT_WAIT)
		client_set_state(c, CLIENT_BODY);
	else
		client_update_read(c);
	if (resumed)
		client_schedule_input(c);
}

static void
client_continue(struct stream *s)
{
	struct client *c = client_of(s);

	if (c->minor >= 1)
		evbuffer_add(client_out(c), "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

static void
client_tunnel(struct stream *s, uint64_t idle_ms)
{
	struct client *c = client_of(s);

	c->body = CBODY_RAW;
	c->body_done = false;
	c->keep_alive = false;
	c->tunnel_ms = idle_ms;
	client_set_state(c, CLIENT_TUNNEL);
}

static bool
client_stream_flush(struct stream *s)
{
	return client_flush_out(client_of(s));
}

static const struct stream_ops client_stream_ops = {
    .send_head = client_send_head,
    .send_body = client_send_body,
    .end = client_end,
    .error = client_error,
    .abort = client_stream_abort,
    .pending = client_pending,
    .read_body = client_read_body,
    .pause_body = client_pause_body,
    .continue_100 = client_continue,
    .tunnel = client_tunnel,
    .flush = client_stream_flush,
};

/* --- HTTP/2 (h2.h) ---------------------------------------------------------------------- */

static void
client_h2_close(void *arg, const char *reason)
{
	client_close(client_from_arg(arg), reason);
}

static const struct h2_owner client_h2_owner = {.close = client_h2_close};

static void
client_start_h2(struct client *c)
{
	struct h2_conn conn = {.w = c->w,
			       .bev = c->bev,
			       .fd = c->fd,
			       .tls = c->tls != NULL,
			       .scheme = c->st.scheme,
			       .addr = c->addr,
			       .sa = &c->sa.sa,
			       .owner = &client_h2_owner,
			       .owner_arg = c,
			       .ev = c->ev};

	c->h2 = h2_session_new(&conn);
	client_set_state(c, CLIENT_H2);
	client_count_in(c, evbuffer_get_length(client_in(c)));
	h2_session_read(c->h2);
	client_update_read(c);
}

/*
 * A first request on a listener with http2: ALPN h2 on TLS, or the client
 * preface (RFC 9113 section 3.4) on a plain one.  True when HTTP/2 took the
 * connection, or when the bytes so far are a prefix of the preface (more
 * must come, within client_header); false: HTTP/1.1.
 */
static bool
client_h2_detect(struct client *c)
{
	struct evbuffer *in = client_in(c);
	size_t n = evbuffer_get_length(in);
	char p[H2_PREFACE_LEN];
	const unsigned char *alpn = NULL;
	unsigned alen = 0;

	if (c->tls != NULL) {
		SSL_get0_alpn_selected(bufferevent_openssl_get_ssl(c->bev), &alpn, &alen);
		if (alen != 2 || memcmp(alpn, "h2", 2) != 0)
			return false;
	} else {
		/* The first read may still be in the worker's flat buffer (client_read). */
		const char *flat = c->flat_len > 0 ? c->w->flat : NULL;

		n = flat ? c->flat_len : n;
		n = n < H2_PREFACE_LEN ? n : H2_PREFACE_LEN;
		if (flat)
			memcpy(p, flat, n);
		else
			evbuffer_copyout(in, p, n);
		if (memcmp(p, H2_PREFACE, n) != 0)
			return false;
		if (flat) {
			worker_input_add(in, flat, c->flat_len);
			c->flat_len = 0;
		}
		if (n < H2_PREFACE_LEN)
			return true;
	}
	client_start_h2(c);
	return true;
}

/* --- callbacks ------------------------------------------------------------------------ */

/* New bytes (or bytes left by the previous request) to act on. */
static void
client_on_data(struct client *c)
{
	struct evbuffer *in = client_in(c);

	switch (c->state) {
	case CLIENT_CLOSING:
		client_count_in(c, evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	case CLIENT_IDLE:
		if (evbuffer_get_length(in) == 0 && c->flat_len == 0)
			break;
		if (c->nrequests == 0 && c->h2_ok && client_h2_detect(c))
			break;
		client_begin_head(c);
		/* fall through */
	case CLIENT_HEAD:
		client_parse_head(c);
		break;
	case CLIENT_BODY:
	case CLIENT_TUNNEL:
		if (c->st.ex != NULL)
			c->ev->body(c->st.ex);
		break;
	case CLIENT_WAIT:
		/* The next pipelined request waits; client_wants_read() bounds it. */
		client_update_read(c);
		break;
	case CLIENT_PROXY: /* read by client_proxy_read(), never through the input */
		break;
	case CLIENT_H2:
		client_count_in(c, evbuffer_get_length(in));
		h2_session_read(c->h2);
		client_update_read(c);
		break;
	}
}

static void
client_on_eof(struct client *c)
{
	c->read_eof = true;
	client_update_read(c);
	if (c->state == CLIENT_CLOSING) {
		worker_defer_free(c->w, &c->reap);
		return;
	}
	/* A client that half-closes after its request still gets the response. */
	if (c->state == CLIENT_WAIT)
		return;
	client_close(c, c->state == CLIENT_IDLE || c->state == CLIENT_H2 ? "client closed"
									 : "client closed early");
}

static void
client_on_read_timeout(struct client *c)
{
	if ((c->state == CLIENT_TUNNEL || c->state == CLIENT_BODY) && c->st.ex != NULL) {
		c->ev->timeout(c->st.ex);
		/* Still going (the tunnel was active the other way): read on. */
		if (c->state == CLIENT_TUNNEL)
			client_update_read(c);
		return;
	}
	client_close(c, "read timeout");
}

/*
 * Reads what the client sent.  Between requests on a plain socket, with
 * nothing buffered, into the worker's flat buffer (c->flat_len), which
 * client_parse_head() consumes before the callback returns.
 */
static long
client_read(struct client *c, int fd)
{
	ssize_t n;

	client_attach_bev(c);
	if (c->tls != NULL || c->state != CLIENT_IDLE || evbuffer_get_length(client_in(c)) > 0)
		return worker_read(fd, client_in(c));
	n = read(fd, c->w->flat, WORKER_FLAT_SIZE);
	if (n > 0)
		c->flat_len = (size_t)n;
	return (long)n;
}

static void
client_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = client_from_arg(arg);
	struct worker *w = c->w;
	long n;

	worker_io_enter(w);
	if (c->state == CLIENT_PROXY) {
		client_proxy_read(c);
		worker_io_leave(w);
		return;
	}
	if (what & EV_TIMEOUT) {
		client_on_read_timeout(c);
	} else if (c->parse_pending) {
		c->parse_pending = false;
		client_on_data(c);
	} else if ((n = client_read(c, fd)) > 0) {
		client_on_data(c);
	} else if (n == 0) {
		client_on_eof(c);
	} else if (errno != EAGAIN && errno != EINTR) {
		c->read_eof = true;
		client_update_read(c);
		if (c->state == CLIENT_CLOSING)
			worker_defer_free(w, &c->reap);
		else
			client_close(c, strerror(errno));
	}
	client_flush(c);
	worker_io_leave(w);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = client_from_arg(arg);

	if (c->state == CLIENT_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			client_close_written(c);
		return;
	}
	if (c->tls == NULL)
		worker_write_done(bev);
	if (c->state == CLIENT_H2) {
		h2_session_writable(c->h2);
		client_update_read(c);
		return;
	}
	client_flush(c);
}

/* The bufferevent reports only on writing: an error or the send timeout. */
static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = client_from_arg(arg);

	(void)bev;
	if (c->state == CLIENT_CLOSING) {
		worker_defer_free(c->w, &c->reap);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) /* TLS handshake done */
		return;
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING)) {
		c->reading = false; /* libevent disabled reading on the timeout */
		client_on_read_timeout(c);
	} else if (what & BEV_EVENT_TIMEOUT)
		client_close(c, "send timeout");
	else if ((what & BEV_EVENT_EOF) && c->tls != NULL)
		client_on_eof(c);
	else if (c->tls != NULL && bufferevent_get_openssl_error(c->bev) != 0)
		client_close(c, "TLS error");
	else
		client_close(c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	client_flush(c);
}

/* TLS connections: decrypted bytes are in the bufferevent's input. */
static void
client_tls_read_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = client_from_arg(arg);

	(void)bev;
	c->parse_pending = false;
	client_on_data(c);
	client_flush(c);
}

static void
client_timer_cb(void *arg)
{
	struct client *c = client_from_arg(arg);

	switch (c->state) {
	case CLIENT_HEAD:
		c->head->error = 408;
		c->head->why = "client header timeout";
		client_start_request(c);
		break;
	case CLIENT_CLOSING:
		worker_defer_free(c->w, &c->reap);
		break;
	case CLIENT_PROXY:
		client_proxy_refuse(c,
				    c->pp_len > 0 ? METRICS_PROXY_TRUNCATED : METRICS_PROXY_MISSING,
				    "no complete header within timeouts.client_header");
		break;
	default:
		client_close(c, "idle timeout");
		break;
	}
	client_flush(c);
}
