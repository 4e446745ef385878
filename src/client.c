/*
 * client.c: client connections.  Owns the connection lifecycle (one state
 * enum, one transition function, one close path deferred to the worker's
 * reap pass), the client timeouts, and reading request heads: llhttp in
 * strict mode, then portico's own checks of SPEC section 9 so the verdict
 * does not depend on the llhttp version.
 *
 * A head is copied once out of the bufferevent's input into the request's
 * reusable buffer and parsed there, so headers are offsets into one
 * contiguous, stable block however the bytes arrived.  Parsing stops at the
 * end of the head (llhttp paused); a pipelined request stays in the input
 * until the current response is complete.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "portico/client.h"
#include "portico/config.h"
#include "portico/log.h"
#include "portico/metrics.h"
#include "portico/proxy.h"
#include "portico/tls.h"
#include "portico/upstream.h"
#include "portico/worker.h"

static const char *const state_names[] = {
    [CLIENT_IDLE] = "idle",	    [CLIENT_HEAD] = "head",
    [CLIENT_BODY] = "body",	    [CLIENT_WAIT_UPSTREAM] = "wait-upstream",
    [CLIENT_RESPONSE] = "response", [CLIENT_TUNNEL] = "tunnel",
    [CLIENT_CLOSING] = "closing",
};

const char *
client_state_name(enum client_state s)
{
	return (unsigned)s < ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

static uint64_t
base_now_us(struct event_base *base)
{
	struct timeval tv;

	event_base_gettimeofday_cached(base, &tv);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void
tv_from_ms(struct timeval *tv, uint64_t ms)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

static void
client_arm_timer(struct client *c, uint64_t ms)
{
	struct timeval tv;

	tv_from_ms(&tv, ms);
	evtimer_add(&c->timer, &tv);
}

/* Whether the client's bytes should be read now. */
static bool
client_wants_read(const struct client *c)
{
	size_t queued = c->bev ? evbuffer_get_length(bufferevent_get_input(c->bev)) : 0;

	if (c->read_eof || c->upstream_full)
		return false;
	/* A pipelined request waits unparsed, bounded by the head limit. */
	if ((c->state == CLIENT_WAIT_UPSTREAM || c->state == CLIENT_RESPONSE) &&
	    queued >= c->w->cfg->limits.header_size + 4)
		return false;
	return true;
}

/* TLS: reading through the bufferevent, the read timeout on it too. */
static void
client_tls_apply_read(struct client *c, bool want, bool rearm)
{
	const struct config *cfg = c->req ? c->req->cfg : c->w->cfg;
	uint64_t wms = c->state == CLIENT_TUNNEL ? c->read_ms : cfg->timeouts.client_body;
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

void
client_update_read(struct client *c)
{
	client_apply_read(c, false);
}

/* Read timeout (between two reads) and send timeout for the state entered. */
static void
client_set_timeouts(struct client *c, enum client_state s)
{
	const struct config *cfg = c->req ? c->req->cfg : c->w->cfg;
	struct timeval wtv;
	uint64_t rms = 0, wms = cfg->timeouts.client_body;

	if (s == CLIENT_BODY)
		rms = cfg->timeouts.client_body;
	else if (s == CLIENT_TUNNEL)
		rms = wms = c->req->route ? c->req->route->tunnel_ms : cfg->timeouts.tunnel;
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

void
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
		client_arm_timer(c, c->req->cfg->timeouts.client_header);
		break;
	default:
		evtimer_del(&c->timer);
		break;
	}
	if (s != CLIENT_CLOSING)
		client_set_timeouts(c, s);
	client_update_read(c);
}

static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);

/*
 * The one place a client's bufferevent is attached: a spare one from the
 * worker (idle connections give theirs back), pointed at the socket.  A TLS
 * listener will make an OpenSSL bufferevent here instead, and keep it.
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
	bufferevent_setwatermark(c->bev, EV_WRITE, PROXY_LOW_WATER, 0);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	c->bev_write_ms = c->w->cfg->timeouts.client_body;
	tv_from_ms(&wtv, c->bev_write_ms);
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
}

/* An idle keep-alive connection keeps only its struct and events (SPEC: small idle cost). */
static void
client_park_bev(struct client *c)
{
	struct bufferevent *bev = c->bev;

	if (bev == NULL || c->tls != NULL || evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
	    (bufferevent_get_enabled(bev) & EV_WRITE))
		return;
	c->bev = NULL;
	worker_bev_park(c->w, bev, c);
}

static void client_io_cb(evutil_socket_t fd, short what, void *arg);
static void client_timer_cb(evutil_socket_t fd, short what, void *arg);
static void client_tls_read_cb(struct bufferevent *bev, void *arg);

/*
 * A TLS listener's connection: an OpenSSL bufferevent that keeps its own
 * read and write paths (no parking, no direct writes).  0 or -1.
 */
static int
client_tls_start(struct client *c, struct tls_server *t)
{
	SSL *ssl = tls_server_ssl_new(t);

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
	bufferevent_setwatermark(c->bev, EV_WRITE, PROXY_LOW_WATER, 0);
	bufferevent_enable(c->bev, EV_WRITE);
	return 0;
}

static void
client_format_addr(struct client *c)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->sa;
	const void *a = NULL;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		/* An IPv4 client on a dual-stack socket logs as IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			evutil_inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], c->addr,
					 sizeof(c->addr));
			return;
		}
		a = &s6->sin6_addr;
	}
	if (a == NULL || evutil_inet_ntop(sa->sa_family, a, c->addr, sizeof(c->addr)) == NULL)
		strcpy(c->addr, "unknown");
}

void
client_accept(struct worker *w, const struct wlistener *l, int fd, const struct sockaddr *sa,
	      int salen)
{
	struct client *c = xcalloc(1, sizeof(*c));
	const struct config *cfg = w->cfg;
	int one = 1;

	c->magic = CLIENT_MAGIC;
	c->w = w;
	c->scheme = l->scheme;
	if (salen > 0 && (size_t)salen <= sizeof(c->sa))
		memcpy(&c->sa, sa, (size_t)salen);
	client_format_addr(c);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	evtimer_assign(&c->timer, w->base, client_timer_cb, c);
	event_assign(&c->rev, w->base, fd, EV_READ | EV_PERSIST, client_io_cb, c);
	c->start_us = base_now_us(w->base);
	if (l->tls != NULL && client_tls_start(c, l->tls) == -1) {
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
	c->state = CLIENT_IDLE;
	client_arm_timer(c, cfg->timeouts.client_header);
	client_set_timeouts(c, CLIENT_IDLE);
	client_update_read(c);
}

static void
client_schedule_free(struct client *c)
{
	if (c->next_closing != NULL || c->w->closing == c)
		return;
	c->next_closing = c->w->closing;
	c->w->closing = c;
	worker_schedule_reap(c->w);
}

void
client_close(struct client *c, const char *reason)
{
	if (c->state == CLIENT_CLOSING)
		return;
	c->close_reason = reason;
	if (c->req != NULL)
		proxy_client_gone(c->req, reason);
	client_set_state(c, CLIENT_CLOSING);
	evtimer_del(&c->timer);
	/* Flush what is queued (an error page) before closing, within client_body. */
	if (c->bev == NULL || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		client_schedule_free(c);
		return;
	}
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_WRITE);
	client_arm_timer(c, c->w->cfg->timeouts.client_body);
}

void
client_abort(struct client *c, const char *reason)
{
	client_close(c, reason);
	client_schedule_free(c);
}

void
client_free(struct client *c)
{
	struct worker *w = c->w;

	PORTICO_ASSERT(c->magic == CLIENT_MAGIC && c->req == NULL);
	log_debug("client %s closed: %s requests=%u in=%llu out=%llu duration_us=%llu", c->addr,
		  c->close_reason ? c->close_reason : "-", c->nrequests,
		  (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
		  (unsigned long long)(base_now_us(w->base) - c->start_us));
	if (c->prev)
		c->prev->next = c->next;
	else
		w->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	event_del(&c->rev);
	event_del(&c->timer);
	if (c->tls != NULL) {
		/* Frees the SSL object and closes the socket. */
		bufferevent_free(c->bev);
		tls_server_unref(c->tls);
		c->bev = NULL;
		c->fd = -1;
	} else if (c->bev != NULL) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		struct evbuffer *out = bufferevent_get_output(c->bev);

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

void
client_drain(struct client *c)
{
	if (c->state == CLIENT_IDLE)
		client_close(c, "shutdown");
	else
		c->close_after = true;
}

static struct client *
client_from_arg(void *arg)
{
	struct client *c = arg;

	PORTICO_ASSERT(c->magic == CLIENT_MAGIC);
	return c;
}

/* --- request head parsing --------------------------------------------- */

static struct request *
parser_req(llhttp_t *p)
{
	return p->data;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	struct request *req = parser_req(p);

	if (req->url_len == 0)
		req->url = (uint32_t)(at - req->head.data);
	req->url_len += (uint32_t)len;
	return 0;
}

static int
on_url_complete(llhttp_t *p)
{
	parser_req(p)->url_done = true;
	return 0;
}

static int
head_fail(struct request *req, int status, const char *reason)
{
	req->parse_status = status;
	req->parse_reason = reason;
	return HPE_USER;
}

static int
on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct request *req = parser_req(p);

	if (req->head_done) /* trailers of a chunked body: dropped */
		return 0;
	if (proxy_hdr_name(req, req->head.data, &req->in_value, at, len,
			   req->cfg->limits.header_count) == -1)
		return head_fail(req, 431, "too many header fields");
	return 0;
}

static int
on_header_field_complete(llhttp_t *p)
{
	struct request *req = parser_req(p);

	if (req->head_done)
		return 0;
	if (proxy_hdr_name_done(req, req->head.data) == -1)
		return head_fail(req, 400, "invalid header name");
	return 0;
}

static int
on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct request *req = parser_req(p);

	if (!req->head_done)
		proxy_hdr_value(req, req->head.data, &req->in_value, at, len);
	return 0;
}

/* Records the headers the data path acts on; `req->head` holds the bytes. */
static int
request_note_header(struct request *req, struct hdr *h, const char *v)
{
	switch (h->id) {
	case HTTP_HDR_HOST:
		if (req->host_idx >= 0)
			return head_fail(req, 400, "repeated Host");
		req->host_idx = (int)(h - req->hdrs);
		break;
	case HTTP_HDR_CONTENT_LENGTH:
		http_framing_add_length(&req->framing, v, h->value_len);
		break;
	case HTTP_HDR_TRANSFER_ENCODING:
		http_framing_add_te(&req->framing, v, h->value_len);
		break;
	case HTTP_HDR_CONNECTION:
		req->conn_flags |= http_connection_flags(v, h->value_len);
		break;
	case HTTP_HDR_EXPECT:
		if (ascii_casecmp_eq(v, h->value_len, "100-continue", 12))
			req->expect_continue = true;
		else
			req->expect_other = true;
		break;
	case HTTP_HDR_UPGRADE:
		req->upgrade = true;
		break;
	case HTTP_HDR_REFERER:
		req->has_referer = true;
		req->referer = h->value;
		req->referer_len = h->value_len;
		break;
	case HTTP_HDR_ACCEPT_ENCODING:
		if (!req->has_ae) {
			req->has_ae = true;
			req->ae = h->value;
			req->ae_len = h->value_len;
		}
		break;
	case HTTP_HDR_USER_AGENT:
		req->has_ua = true;
		req->ua = h->value;
		req->ua_len = h->value_len;
		break;
	default:
		break;
	}
	return 0;
}

static int
on_header_value_complete(llhttp_t *p)
{
	struct request *req = parser_req(p);
	struct hdr *h;

	if (req->head_done)
		return 0;
	h = proxy_hdr_value_done(req, req->head.data, &req->in_value);
	if (h == NULL)
		return head_fail(req, 400, "invalid header value");
	return request_note_header(req, h, req->head.data + h->value);
}

static int
on_headers_complete(llhttp_t *p)
{
	struct request *req = parser_req(p);

	if (req->head_done)
		return 0;
	req->head_done = true;
	return HPE_PAUSED;
}

static const llhttp_settings_t request_settings = {
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = proxy_on_request_body,
    .on_message_complete = proxy_on_request_complete,
};

/* "METHOD SP target SP HTTP/1.x": exactly one space on each side of the target. */
static int
head_check_request_line(const struct request *req)
{
	const char *h = req->head.data;
	size_t mlen = strlen(llhttp_method_name((llhttp_method_t)req->method));
	size_t end = (size_t)req->url + req->url_len;

	if (req->url_len == 0 || req->url != mlen + 1 || h[mlen] != ' ')
		return -1;
	/* A fragment never belongs in a request target (SPEC section 3). */
	if (memchr(h + req->url, '#', req->url_len) != NULL)
		return -1;
	if (end + 1 >= req->head.len || h[end] != ' ' || h[end + 1] != 'H')
		return -1;
	return 0;
}

/* Absolute-form target: "http://authority/path?q" routes like origin-form. */
static int
head_check_absolute(struct request *req)
{
	const char *u = req->head.data + req->url, *auth, *rest;
	size_t alen, rlen;
	int kind = http_target_split(u, req->url_len, &auth, &alen, &rest, &rlen);

	if (kind != 1)
		return kind;
	req->absolute = true;
	req->abs_target = req->url;
	req->abs_target_len = req->url_len;
	req->host = (uint32_t)(auth - req->head.data);
	req->host_len = (uint32_t)alen;
	req->url = (uint32_t)(rest - req->head.data);
	req->url_len = (uint32_t)rlen;
	return 0;
}

static int
head_check_host(struct request *req)
{
	if (req->absolute)
		return 0;
	if (req->host_idx < 0)
		return req->http_minor >= 1 ? -1 : 0;
	req->host = req->hdrs[req->host_idx].value;
	req->host_len = req->hdrs[req->host_idx].value_len;
	return http_host_is_valid(req->head.data + req->host, req->host_len) ? 0 : -1;
}

/* The checks of SPEC section 9 on a complete head; 0 or an error status. */
static int
head_validate(struct request *req, size_t head_len)
{
	const char *why = http_head_scan(req->head.data, head_len);

	if (why != NULL) {
		req->parse_reason = why;
		return 400;
	}
	if (llhttp_get_http_major(&req->parser) != 1) {
		req->parse_reason = "unsupported HTTP version";
		return 400;
	}
	req->http_minor = llhttp_get_http_minor(&req->parser);
	req->method = llhttp_get_method(&req->parser);
	if (req->method == HTTP_CONNECT) {
		req->parse_reason = "CONNECT";
		return 405;
	}
	if (head_check_request_line(req) == -1) {
		req->parse_reason = "malformed request line";
		return 400;
	}
	if (head_check_absolute(req) == -1) {
		req->parse_reason = "invalid request target";
		return 400;
	}
	if (head_check_host(req) == -1) {
		req->parse_reason = "missing or invalid Host";
		return 400;
	}
	switch (http_framing_check(&req->framing)) {
	case HTTP_FRAMING_INVALID:
		req->parse_reason = "conflicting or invalid framing";
		return 400;
	case HTTP_FRAMING_LENGTH:
		req->body = req->framing.length > 0 ? BODY_LENGTH : BODY_NONE;
		req->body_left = req->framing.length;
		break;
	case HTTP_FRAMING_CHUNKED:
		req->body = BODY_CHUNKED;
		break;
	case HTTP_FRAMING_NONE:
		req->body = BODY_NONE;
		break;
	}
	req->keep_alive = req->http_minor >= 1 ? !(req->conn_flags & HTTP_CONN_CLOSE)
					       : (req->conn_flags & HTTP_CONN_KEEP_ALIVE) != 0;
	req->upgrade = req->upgrade && (req->conn_flags & HTTP_CONN_UPGRADE) &&
		       req->http_minor >= 1 && req->body == BODY_NONE;
	return 0;
}

/* Status for an llhttp error or an exceeded limit. */
static int
head_error_status(struct request *req, llhttp_errno_t err)
{
	if (req->parse_status != 0)
		return req->parse_status;
	if (err == HPE_PAUSED_H2_UPGRADE) {
		req->parse_reason = "HTTP/2 preface";
		return 400;
	}
	req->parse_reason = llhttp_errno_name(err);
	return 400;
}

static void
client_head_failed(struct client *c, int status, const char *reason)
{
	struct request *req = c->req;

	if (reason)
		req->parse_reason = reason;
	/* The framing of what follows is unknown: answer, then close. */
	req->keep_alive = false;
	c->close_after = true;
	proxy_error(req, status, req->parse_reason);
}

/* Copies new input into the head buffer and feeds llhttp; acts on a complete head. */
static void
client_parse_head(struct client *c)
{
	struct request *req = c->req;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t limit = req->cfg->limits.header_size, have = evbuffer_get_length(in);
	size_t want = have < limit + 4 ? have : limit + 4, old = req->head.len, head_len;
	struct evbuffer_ptr pos;
	llhttp_errno_t err;
	int status;

	if (want <= old)
		return;
	buf_reserve(&req->head, want - old);
	evbuffer_ptr_set(in, &pos, old, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(in, &pos, req->head.data + old, want - old);
	req->head.len = want;
	req->head.data[want] = '\0';
	err = llhttp_execute(&req->parser, req->head.data + old, want - old);
	if (err == HPE_PAUSED && req->head_done) {
		head_len = (size_t)(llhttp_get_error_pos(&req->parser) - req->head.data);
		if (head_len > limit) {
			client_head_failed(c, req->url_len > limit ? 414 : 431, "head too large");
			return;
		}
		req->head.len = head_len;
		evbuffer_drain(in, head_len);
		c->bytes_in += head_len;
		metrics_add(c->w->metrics, METRICS_BYTES_RECEIVED, head_len);
		status = head_validate(req, head_len);
		if (status != 0) {
			client_head_failed(c, status, NULL);
			return;
		}
		proxy_request_start(req);
		return;
	}
	if (err != HPE_OK) {
		client_head_failed(c, head_error_status(req, err), NULL);
		return;
	}
	if (req->head.len > limit)
		client_head_failed(c, req->url_done ? 431 : 414, "head too large");
}

static void
client_begin_request(struct client *c)
{
	struct request *req = request_new(c->w, c);

	llhttp_init(&req->parser, HTTP_REQUEST, &request_settings);
	req->parser.data = req;
	c->req = req;
	c->nrequests++;
	client_set_state(c, CLIENT_HEAD);
}

void
client_request_done(struct client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	c->req = NULL;
	if (c->close_after || c->read_eof || c->w->draining) {
		client_close(c, c->read_eof ? "client closed" : "not keep-alive");
		return;
	}
	client_set_state(c, CLIENT_IDLE);
	c->upstream_full = false;
	client_update_read(c);
	/* A pipelined request is already here: parse it from the loop, not from here. */
	if (evbuffer_get_length(in) > 0 && c->tls != NULL) {
		bufferevent_trigger(c->bev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	} else if (evbuffer_get_length(in) > 0) {
		c->parse_pending = true;
		event_active(&c->rev, EV_READ, 0);
	} else {
		/* Send the response now so an idle connection can give its buffers back. */
		worker_flush(c->bev);
		client_park_bev(c);
	}
}

/* --- callbacks ---------------------------------------------------------- */

/* New bytes (or bytes left by the previous request) to act on. */
static void
client_on_data(struct client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	switch (c->state) {
	case CLIENT_CLOSING:
		c->bytes_in += evbuffer_get_length(in);
		metrics_add(c->w->metrics, METRICS_BYTES_RECEIVED, evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	case CLIENT_IDLE:
		if (evbuffer_get_length(in) == 0)
			break;
		client_begin_request(c);
		/* fall through */
	case CLIENT_HEAD:
		client_parse_head(c);
		break;
	case CLIENT_BODY:
		proxy_request_body(c->req);
		break;
	case CLIENT_TUNNEL:
		proxy_tunnel_from_client(c->req);
		break;
	case CLIENT_WAIT_UPSTREAM:
	case CLIENT_RESPONSE:
		/* The next pipelined request waits; client_wants_read() bounds it. */
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
		client_schedule_free(c);
		return;
	}
	/* A client that half-closes after its request still gets the response. */
	if (c->state == CLIENT_WAIT_UPSTREAM || c->state == CLIENT_RESPONSE)
		return;
	client_close(c, c->state == CLIENT_IDLE ? "client closed" : "client closed early");
}

static void
client_on_read_timeout(struct client *c)
{
	if (c->state == CLIENT_TUNNEL && c->req) {
		proxy_tunnel_timeout(c->req, true);
		return;
	}
	if (c->state == CLIENT_BODY && c->req && !c->req->resp_started) {
		c->close_after = true;
		proxy_error(c->req, 408, "client body timeout");
		return;
	}
	client_close(c, "read timeout");
}

void
client_flush(struct client *c)
{
	if (c->req != NULL && c->req->up != NULL)
		upstream_flush(c->req->up);
	/*
	 * A direct write that drains the output below the low watermark
	 * raises no write callback: resume the upstream here, and send what
	 * that brings (bounded: each round needs the upstream's input).
	 */
	for (int round = 0; round < 4 && c->bev != NULL; round++) {
		worker_flush(c->bev);
		if (c->req == NULL || !c->req->up_paused ||
		    evbuffer_get_length(bufferevent_get_output(c->bev)) > PROXY_LOW_WATER)
			return;
		proxy_client_writable(c->req);
	}
}

static void
client_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = client_from_arg(arg);
	long n;

	if (what & EV_TIMEOUT) {
		client_on_read_timeout(c);
	} else if (c->parse_pending) {
		c->parse_pending = false;
		client_on_data(c);
	} else if (client_attach_bev(c), (n = worker_read(fd, bufferevent_get_input(c->bev))) > 0) {
		client_on_data(c);
	} else if (n == 0) {
		client_on_eof(c);
	} else if (errno != EAGAIN && errno != EINTR) {
		c->read_eof = true;
		client_update_read(c);
		client_close(c, strerror(errno));
	}
	client_flush(c);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct client *c = client_from_arg(arg);

	if (c->state == CLIENT_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			client_schedule_free(c);
		return;
	}
	if (c->req != NULL)
		proxy_client_writable(c->req);
	if (c->tls == NULL)
		worker_write_done(bev);
	client_flush(c);
}

/* The bufferevent reports only on writing: an error or the send timeout. */
static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = client_from_arg(arg);

	(void)bev;
	if (c->state == CLIENT_CLOSING) {
		client_schedule_free(c);
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
	if (c->parse_pending)
		c->parse_pending = false;
	client_on_data(c);
	client_flush(c);
}

static void
client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = client_from_arg(arg);

	(void)fd;
	(void)what;
	switch (c->state) {
	case CLIENT_HEAD:
		c->close_after = true;
		proxy_error(c->req, 408, "client header timeout");
		break;
	case CLIENT_CLOSING:
		client_schedule_free(c);
		break;
	default:
		client_close(c, "idle timeout");
		break;
	}
	client_flush(c);
}
