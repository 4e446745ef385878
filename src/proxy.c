/*
 * proxy.c: one HTTP exchange from a parsed request head to the end of the
 * response (SPEC sections 3 to 7): normalization, routing, access control,
 * the rebuilt upstream request head, bodies streamed both ways with
 * backpressure, the strictly parsed and rebuilt response head, header
 * rewriting, Upgrade tunnels, generated error responses and the access log.
 *
 * Heads are written straight into the output evbuffer of the other side;
 * Content-Length and close-delimited bodies move between evbuffers without
 * copies; chunked bodies go through llhttp and are re-chunked.
 */
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "portico/accesslog.h"
#include "portico/client.h"
#include "portico/config.h"
#include "portico/errpage.h"
#include "portico/filter.h"
#include "portico/log.h"
#include "portico/metrics.h"
#include "portico/proxy.h"
#include "portico/reverse.h"
#include "portico/route.h"
#include "portico/route_decide.h"
#include "portico/upstream.h"
#include "portico/worker.h"

#define FREE_REQS_MAX 64
#define KEEP_BUF_MAX  (32 * 1024)

static uint64_t mono_us(void);

/* --- request structures ------------------------------------------------- */

static void
buf_trim(struct buf *b)
{
	if (b->cap > KEEP_BUF_MAX)
		buf_free(b);
	b->len = 0;
}

struct request *
request_new(struct worker *w, struct client *c)
{
	struct request *req = w->free_reqs;
	struct buf head = {0}, rhead = {0}, path = {0}, target = {0};
	struct hdr *hdrs = NULL;
	size_t hdrcap = 0;
	struct timeval tv;

	if (req != NULL) {
		w->free_reqs = req->next_free;
		w->nfree_reqs--;
		head = req->head;
		rhead = req->rhead;
		path = req->path;
		target = req->target;
		hdrs = req->hdrs;
		hdrcap = req->hdrcap;
	} else {
		req = xmalloc(sizeof(*req));
	}
	memset(req, 0, sizeof(*req));
	req->head = head;
	req->rhead = rhead;
	req->path = path;
	req->target = target;
	req->hdrs = hdrs;
	req->hdrcap = hdrcap;
	req->head.len = req->rhead.len = req->path.len = req->target.len = 0;
	req->magic = REQUEST_MAGIC;
	req->c = c;
	req->cfg = config_ref(w->cfg);
	req->host_idx = -1;
	worker_next_reqid(w, req->id);
	event_base_gettimeofday_cached(w->base, &tv);
	req->start_wall = tv.tv_sec;
	req->start_us = mono_us();
	return req;
}

void
request_free(struct worker *w, struct request *req)
{
	PORTICO_ASSERT(req->magic == REQUEST_MAGIC && req->up == NULL);
	config_unref(req->cfg);
	req->cfg = NULL;
	if (req->filter != NULL)
		req->filter->ops->free(req->filter);
	req->magic = 0;
	if (w->nfree_reqs >= FREE_REQS_MAX) {
		buf_free(&req->head);
		buf_free(&req->rhead);
		buf_free(&req->path);
		buf_free(&req->target);
		free(req->hdrs);
		free(req);
		return;
	}
	buf_trim(&req->head);
	buf_trim(&req->rhead);
	buf_trim(&req->path);
	buf_trim(&req->target);
	if (req->hdrcap > 256) {
		free(req->hdrs);
		req->hdrs = NULL;
		req->hdrcap = 0;
	}
	req->next_free = w->free_reqs;
	w->free_reqs = req;
	w->nfree_reqs++;
}

/* --- small helpers ------------------------------------------------------ */

static struct evbuffer *
client_out(struct request *req)
{
	return bufferevent_get_output(req->c->bev);
}

static struct evbuffer *
upstream_out(struct request *req)
{
	return bufferevent_get_output(req->up->bev);
}

static const char *
hname(const struct request *req, const struct buf *b, const struct hdr *h)
{
	(void)req;
	return b->data + h->name;
}

static const char *
hvalue(const struct buf *b, const struct hdr *h)
{
	return b->data + h->value;
}

/* buf_add() with the common case (room enough) inline. */
static inline void
add_bytes(struct buf *out, const void *p, size_t n)
{
	if (out->len + n + 1 > out->cap)
		buf_reserve(out, n);
	if (n > 0)
		memcpy(out->data + out->len, p, n);
	out->len += n;
	out->data[out->len] = '\0';
}

static void
add_str(struct buf *out, const char *s)
{
	add_bytes(out, s, strlen(s));
}

/* "name: value\r\n" with one reservation. */
static void
add_header(struct buf *out, const char *name, size_t nlen, const char *value, size_t vlen)
{
	char *p;

	if (out->len + nlen + vlen + 5 > out->cap)
		buf_reserve(out, nlen + vlen + 4);
	p = out->data + out->len;
	memcpy(p, name, nlen);
	p += nlen;
	*p++ = ':';
	*p++ = ' ';
	if (vlen > 0)
		memcpy(p, value, vlen);
	p += vlen;
	*p++ = '\r';
	*p++ = '\n';
	*p = '\0';
	out->len = (size_t)(p - out->data);
}

/* Decimal digits of `v` into `dst` (at least 20 bytes); returns their count. */
static size_t
fmt_u64(char *dst, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		dst[i] = tmp[n - 1 - i];
	return n;
}

/* Monotonic microseconds (vDSO, no system call). */
static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t
now_us(struct request *req)
{
	(void)req;
	return mono_us();
}

static bool
method_is_idempotent(uint8_t m)
{
	return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS || m == HTTP_PUT ||
	       m == HTTP_DELETE || m == HTTP_TRACE;
}

/* True when a header of `b` is named in one of its head's Connection headers. */
static bool
named_in_connection(const struct buf *b, const struct hdr *hdrs, unsigned n, const struct hdr *h)
{
	const char *name = b->data + h->name;

	for (unsigned i = 0; i < n; i++) {
		size_t pos = 0, tlen;
		const char *t;

		if (hdrs[i].id != HTTP_HDR_CONNECTION)
			continue;
		while (http_list_next(hvalue(b, &hdrs[i]), hdrs[i].value_len, &pos, &t, &tlen))
			if (ascii_casecmp_eq(t, tlen, name, h->name_len))
				return true;
	}
	return false;
}

/* --- access log and the end of an exchange ------------------------------ */

static void
proxy_log_access(struct request *req)
{
	struct accesslog_entry e = {0};
	const char *h = req->head.data;

	e.client = req->c->addr;
	e.reqid = req->id;
	e.start = req->start_wall;
	e.method = llhttp_method_name((llhttp_method_t)req->method);
	e.method_len = strlen(e.method);
	if (req->absolute) {
		e.target = h + req->abs_target;
		e.target_len = req->abs_target_len;
	} else if (req->head_done) {
		e.target = h + req->url;
		e.target_len = req->url_len;
	}
	e.http_minor = req->http_minor;
	e.status = req->status;
	e.bytes_sent = req->bytes_sent;
	if (req->has_referer) {
		e.referer = h + req->referer;
		e.referer_len = req->referer_len;
	}
	if (req->has_ua) {
		e.user_agent = h + req->ua;
		e.user_agent_len = req->ua_len;
	}
	if (req->host_len) {
		e.host = h + req->host;
		e.host_len = req->host_len;
	}
	e.route = req->route ? req->route->name : NULL;
	e.upstream = req->up && req->up->addr[0] ? req->up->addr : NULL;
	e.duration_us = now_us(req) - req->start_us;
	accesslog_write(&e);
	metrics_request(req->c->w->metrics, e.route, req->route ? req->route->index : 0, e.status,
			e.duration_us);
	metrics_add(req->c->w->metrics, METRICS_BYTES_SENT, e.bytes_sent);
}

/* The response is complete (or was generated): log, release, next request. */
static void
proxy_finish(struct request *req)
{
	struct client *c = req->c;
	struct worker *w = c->w;

	proxy_log_access(req);
	if (req->up != NULL) {
		bool reuse = req->up_reusable && req->body_done &&
			     evbuffer_get_length(bufferevent_get_input(req->up->bev)) == 0;

		upstream_release(req->up, reuse);
		req->up = NULL;
	}
	if (!req->body_done || !req->keep_alive)
		c->close_after = true;
	client_request_done(c);
	request_free(w, req);
}

void
proxy_client_gone(struct request *req, const char *reason)
{
	struct client *c = req->c;

	if (!req->resp_done && req->head_done) {
		if (req->status == 0 || !req->resp_started)
			req->status = 499;
		log_req(LOG_LEVEL_INFO, req->id, "client went away client=%s reason=%s state=%s",
			c->addr, reason, client_state_name(c->state));
	}
	if (req->head_done || req->tunnel)
		proxy_log_access(req);
	if (req->up != NULL) {
		upstream_close(req->up, "client gone");
		req->up = NULL;
	}
	c->req = NULL;
	request_free(c->w, req);
}

void
proxy_error(struct request *req, int status, const char *reason)
{
	struct client *c = req->c;
	bool body_consumed = req->body == BODY_NONE || req->body_done;
	bool close;
	uint64_t n;

	if (req->resp_started) {
		/* Part of a response is out: cut the connection, never fake an end. */
		client_close(c, reason);
		return;
	}
	log_req(status >= 500 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, req->id,
		"%d %s client=%s route=%s reason=%s", status, http_reason(status), c->addr,
		req->route ? req->route->name : "-", reason ? reason : "-");
	if (req->up != NULL) {
		upstream_close(req->up, reason);
		req->up = NULL;
	}
	/* A malformed request, or one over a limit: answered, then closed (SPEC 9). */
	close = !req->keep_alive || !body_consumed || c->close_after || c->w->draining ||
		status == 400 || status == 408 || status == 413 || status == 414 || status == 431;
	n = errpage_write(client_out(req), status, req->id, close, !close && req->http_minor == 0,
			  req->method == HTTP_HEAD && req->head_done);
	req->status = status;
	req->bytes_sent = n;
	req->resp_started = req->resp_done = true;
	if (close)
		c->close_after = true;
	req->body_done = true;
	proxy_finish(req);
}

/* --- the upstream request head ------------------------------------------ */

static void
write_forwarded(struct request *req, struct buf *out, const char *scheme)
{
	const struct buf *b = &req->head;
	const struct client *c = req->c;

	add_str(out, "Forwarded: ");
	for (unsigned i = 0; i < req->nhdrs; i++) {
		const struct hdr *h = &req->hdrs[i];

		if (h->id != HTTP_HDR_FORWARDED || h->value_len == 0)
			continue;
		add_bytes(out, hvalue(b, h), h->value_len);
		add_bytes(out, ", ", 2);
	}
	if (strchr(c->addr, ':') != NULL)
		buf_addf(out, "for=\"[%s]\"", c->addr);
	else
		buf_addf(out, "for=%s", c->addr);
	if (req->host_len > 0) {
		add_str(out, ";host=\"");
		add_bytes(out, b->data + req->host, req->host_len);
		add_str(out, "\"");
	}
	buf_addf(out, ";proto=%s\r\n", scheme);
}

/* Appends the values of every `id` header joined by ", ", then `last`. */
static void
write_joined(struct request *req, struct buf *out, const char *name, enum http_hdr id,
	     const char *last)
{
	add_str(out, name);
	for (unsigned i = 0; i < req->nhdrs; i++) {
		const struct hdr *h = &req->hdrs[i];

		if (h->id != id || h->value_len == 0)
			continue;
		/* Named in Connection: dropped, while portico's own value stays. */
		if ((req->conn_flags & HTTP_CONN_OTHER) &&
		    named_in_connection(&req->head, req->hdrs, req->nhdrs, h))
			continue;
		add_bytes(out, hvalue(&req->head, h), h->value_len);
		add_bytes(out, ", ", 2);
	}
	add_str(out, last);
	add_bytes(out, "\r\n", 2);
}

/* Whether a client header is forwarded as it is. */
static bool
request_header_passes(const struct request *req, const struct hdr *h)
{
	const struct config *cfg = req->cfg;

	if (http_header_is_hop_by_hop(h->id))
		return false;
	switch (h->id) {
	case HTTP_HDR_HOST:
	case HTTP_HDR_EXPECT:
	case HTTP_HDR_CONTENT_LENGTH:
		return false;
	case HTTP_HDR_ACCEPT_ENCODING:
		if (req->route->html) /* replaced by the codings the filters can decode */
			return false;
		break;
	case HTTP_HDR_X_FORWARDED_FOR:
	case HTTP_HDR_X_FORWARDED_HOST:
	case HTTP_HDR_X_FORWARDED_PROTO:
		if (cfg->forwarded.x_forwarded)
			return false;
		break;
	case HTTP_HDR_FORWARDED:
		if (cfg->forwarded.forwarded)
			return false;
		break;
	case HTTP_HDR_VIA:
		if (cfg->forwarded.via)
			return false;
		break;
	default:
		break;
	}
	if ((req->conn_flags & HTTP_CONN_OTHER) &&
	    named_in_connection(&req->head, req->hdrs, req->nhdrs, h))
		return false;
	return true;
}

static void
write_upgrade(struct request *req, struct buf *out)
{
	for (unsigned i = 0; i < req->nhdrs; i++) {
		const struct hdr *h = &req->hdrs[i];

		if (h->id == HTTP_HDR_UPGRADE)
			add_header(out, "Upgrade", 7, hvalue(&req->head, h), h->value_len);
	}
	add_str(out, "Connection: upgrade\r\n");
}

/* An html route asks only for codings its body filters can decode. */
static void
write_accept_encoding(struct request *req, struct buf *out)
{
	struct buf *scratch = &req->c->w->scratch;

	buf_reset(scratch);
	if (bodyfilter_upstream_accept_encoding(req->has_ae ? req->head.data + req->ae : NULL,
						req->ae_len, scratch))
		add_header(out, "Accept-Encoding", 15, scratch->data, scratch->len);
}

/* The request head, rebuilt into the upstream connection's output. */
static void
proxy_write_head(struct request *req)
{
	struct buf *out = &req->c->w->head;
	const struct route *r = req->route;
	const struct config *cfg = req->cfg;
	const struct buf *b = &req->head;
	const char *scheme = req->c->scheme;
	char num[24];
	size_t n;

	buf_reset(out);
	add_str(out, llhttp_method_name((llhttp_method_t)req->method));
	add_bytes(out, " ", 1);
	add_bytes(out, req->target.data, req->target.len);
	add_str(out, " HTTP/1.1\r\n");
	for (unsigned i = 0; i < req->nhdrs; i++) {
		const struct hdr *h = &req->hdrs[i];

		if (request_header_passes(req, h))
			add_header(out, hname(req, b, h), h->name_len, hvalue(b, h), h->value_len);
	}
	if (r->preserve_host && req->host_len > 0)
		add_header(out, "Host", 4, b->data + req->host, req->host_len);
	else
		add_header(out, "Host", 4, r->upstream.authority, strlen(r->upstream.authority));
	if (req->body == BODY_LENGTH || req->framing.has_length) {
		n = fmt_u64(num, req->framing.length);
		add_header(out, "Content-Length", 14, num, n);
	} else if (req->body == BODY_CHUNKED) {
		add_str(out, "Transfer-Encoding: chunked\r\n");
	}
	if (req->upgrade)
		write_upgrade(req, out);
	if (r->html)
		write_accept_encoding(req, out);
	if (cfg->forwarded.x_forwarded) {
		write_joined(req, out, "X-Forwarded-For: ", HTTP_HDR_X_FORWARDED_FOR, req->c->addr);
		if (req->host_len > 0)
			add_header(out, "X-Forwarded-Host", 16, b->data + req->host, req->host_len);
		add_header(out, "X-Forwarded-Proto", 17, scheme, strlen(scheme));
	}
	if (cfg->forwarded.forwarded)
		write_forwarded(req, out, scheme);
	if (cfg->forwarded.via)
		write_joined(req, out, "Via: ", HTTP_HDR_VIA, "1.1 portico");
	add_bytes(out, "\r\n", 2);
	evbuffer_add(upstream_out(req), out->data, out->len);
}

static void response_parser_reset(struct request *req);

/* --- starting an exchange ----------------------------------------------- */

/* The routing decision (route_decide.h); 0 or an error status. */
static int
proxy_route(struct request *req, const char **why)
{
	struct route_decision d;

	route_decide(req->cfg, req->host_len ? req->head.data + req->host : NULL, req->host_len,
		     req->head.data + req->url, req->url_len, (const struct sockaddr *)&req->c->sa,
		     &req->path, &req->target, &d);
	req->route = d.status == 404 ? NULL : d.route;
	*why = d.why;
	if (d.status == 500)
		log_req(LOG_LEVEL_ERROR, req->id, "cannot build upstream target route=%s reason=%s",
			d.route->name, d.why);
	return d.status;
}

/* The request (head, and a body when it has none) is fully handed over. */
static void
proxy_request_sent(struct request *req)
{
	req->body_done = true;
	upstream_set_read_timeout(req->up, req->route->upstream_read_ms);
	if (req->c->state == CLIENT_BODY || req->c->state == CLIENT_HEAD)
		client_set_state(req->c,
				 req->resp_started ? CLIENT_RESPONSE : CLIENT_WAIT_UPSTREAM);
}

void
proxy_request_start(struct request *req)
{
	struct client *c = req->c;
	const char *why = NULL;
	int status;

	status = proxy_route(req, &why);
	if (status == 0 && req->expect_other) {
		status = 417;
		why = "unsupported Expect";
	}
	if (status == 0 && req->cfg->limits.body_size && req->body == BODY_LENGTH &&
	    req->body_left > req->cfg->limits.body_size) {
		status = 413;
		why = "body over limits.body_size";
	}
	if (status != 0) {
		proxy_error(req, status, why);
		return;
	}
	response_parser_reset(req);
	req->up = upstream_get(c->w, req->route, req, false);
	proxy_write_head(req);
	if (req->body == BODY_NONE) {
		proxy_request_sent(req);
		return;
	}
	if (req->expect_continue && req->http_minor >= 1)
		evbuffer_add(client_out(req), "HTTP/1.1 100 Continue\r\n\r\n", 25);
	client_set_state(c, CLIENT_BODY);
	if (req->body == BODY_CHUNKED)
		llhttp_resume(&req->parser);
	proxy_request_body(req);
}

/* --- the request body --------------------------------------------------- */

int
proxy_on_request_body(llhttp_t *p, const char *at, size_t len)
{
	struct request *req = p->data;
	struct evbuffer *out = upstream_out(req);
	char hex[20];
	size_t n = http_hex(hex, len);

	req->body_bytes += len;
	if (req->cfg->limits.body_size && req->body_bytes > req->cfg->limits.body_size) {
		req->parse_status = 413;
		return HPE_USER;
	}
	hex[n++] = '\r';
	hex[n++] = '\n';
	evbuffer_add(out, hex, n);
	evbuffer_add(out, at, len);
	evbuffer_add(out, "\r\n", 2);
	return 0;
}

int
proxy_on_request_complete(llhttp_t *p)
{
	struct request *req = p->data;

	if (!req->head_done)
		return 0;
	req->body_left = 0;
	req->parse_status = -1; /* marks the end of the chunked body */
	return HPE_PAUSED;
}

/* Feeds a chunked body to llhttp; returns 1 at its end, 0 for more, -1 on error. */
static int
request_body_chunked(struct request *req, struct evbuffer *in)
{
	struct evbuffer_iovec v[4];
	int n = evbuffer_peek(in, -1, NULL, v, 4);
	size_t used = 0;
	int done = 0;

	for (int i = 0; i < n && i < 4 && !done; i++) {
		llhttp_errno_t err = llhttp_execute(&req->parser, v[i].iov_base, v[i].iov_len);

		if (err == HPE_OK) {
			used += v[i].iov_len;
		} else if (err == HPE_PAUSED && req->parse_status == -1) {
			used += (size_t)(llhttp_get_error_pos(&req->parser) -
					 (const char *)v[i].iov_base);
			done = 1;
		} else {
			done = -1;
		}
	}
	evbuffer_drain(in, used);
	req->c->bytes_in += used;
	metrics_add(req->c->w->metrics, METRICS_BYTES_RECEIVED, used);
	if (done == 1)
		evbuffer_add(upstream_out(req), "0\r\n\r\n", 5);
	return done;
}

void
proxy_request_body(struct request *req)
{
	struct client *c = req->c;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	int done;

	if (req->body_done || req->up == NULL)
		return;
	if (req->body == BODY_LENGTH || req->framing.has_length) {
		size_t n = evbuffer_get_length(in);

		if (n > req->body_left)
			n = (size_t)req->body_left;
		evbuffer_remove_buffer(in, upstream_out(req), n);
		req->body_left -= n;
		req->body_bytes += n;
		c->bytes_in += n;
		metrics_add(c->w->metrics, METRICS_BYTES_RECEIVED, n);
		done = req->body_left == 0;
	} else {
		done = request_body_chunked(req, in);
		if (done == -1) {
			c->close_after = true;
			if (req->parse_status == 413)
				proxy_error(req, 413, "body over limits.body_size");
			else
				proxy_error(req, 400, "invalid chunked body");
			return;
		}
	}
	req->body_sent_any = true;
	if (done) {
		proxy_request_sent(req);
		return;
	}
	if (evbuffer_get_length(upstream_out(req)) > PROXY_HIGH_WATER) {
		c->upstream_full = true;
		client_update_read(c);
	}
}

/* --- headers as offsets, shared by both head parsers ---------------------- */

int
proxy_hdr_name(struct request *req, const char *base, bool *in_value, const char *at, size_t len,
	       size_t max)
{
	struct hdr *h;

	if (!*in_value && req->nhdrs > 0 && req->hdrs[req->nhdrs - 1].value_len == UINT32_MAX) {
		/* A name continued across two llhttp calls. */
		req->hdrs[req->nhdrs - 1].name_len += (uint32_t)len;
		return 0;
	}
	if (req->nhdrs >= max)
		return -1;
	if (req->nhdrs >= req->hdrcap)
		req->hdrs = xgrow(req->hdrs, &req->hdrcap, req->nhdrs, sizeof(*h));
	h = &req->hdrs[req->nhdrs++];
	h->name = (uint32_t)(at - base);
	h->name_len = (uint32_t)len;
	h->value = h->name + h->name_len;
	h->value_len = UINT32_MAX; /* name still open */
	h->id = HTTP_HDR_OTHER;
	*in_value = false;
	return 0;
}

int
proxy_hdr_name_done(struct request *req, const char *base)
{
	struct hdr *h = &req->hdrs[req->nhdrs - 1];

	if (!http_name_is_valid(base + h->name, h->name_len))
		return -1;
	h->id = (uint8_t)http_header_id(base + h->name, h->name_len);
	h->value_len = 0;
	return 0;
}

void
proxy_hdr_value(struct request *req, const char *base, bool *in_value, const char *at, size_t len)
{
	struct hdr *h = &req->hdrs[req->nhdrs - 1];

	if (!*in_value) {
		h->value = (uint32_t)(at - base);
		*in_value = true;
	}
	h->value_len += (uint32_t)len;
}

struct hdr *
proxy_hdr_value_done(struct request *req, const char *base, bool *in_value)
{
	struct hdr *h = &req->hdrs[req->nhdrs - 1];
	const char *v = base + h->value;

	*in_value = false;
	while (h->value_len > 0 && (v[h->value_len - 1] == ' ' || v[h->value_len - 1] == '\t'))
		h->value_len--;
	return http_value_is_valid(v, h->value_len) ? h : NULL;
}

/* --- the response head -------------------------------------------------- */

static int
on_rstatus(llhttp_t *p, const char *at, size_t len)
{
	struct request *req = p->data;

	if (req->reason_len == 0)
		req->reason = (uint32_t)(at - req->rhead.data);
	req->reason_len += (uint32_t)len;
	return 0;
}

static int
on_rheader_field(llhttp_t *p, const char *at, size_t len)
{
	struct request *req = p->data;

	/* The response head is bounded by its size, not by a count. */
	if (!req->rhead_done)
		proxy_hdr_name(req, req->rhead.data, &req->rin_value, at, len, SIZE_MAX);
	return 0;
}

static int
on_rheader_field_complete(llhttp_t *p)
{
	struct request *req = p->data;

	if (req->rhead_done)
		return 0;
	return proxy_hdr_name_done(req, req->rhead.data) == -1 ? HPE_USER : 0;
}

static int
on_rheader_value(llhttp_t *p, const char *at, size_t len)
{
	struct request *req = p->data;

	if (!req->rhead_done)
		proxy_hdr_value(req, req->rhead.data, &req->rin_value, at, len);
	return 0;
}

static int
on_rheader_value_complete(llhttp_t *p)
{
	struct request *req = p->data;
	struct hdr *h;
	const char *v;

	if (req->rhead_done)
		return 0;
	h = proxy_hdr_value_done(req, req->rhead.data, &req->rin_value);
	if (h == NULL)
		return HPE_USER;
	v = req->rhead.data + h->value;
	if (h->id == HTTP_HDR_CONTENT_LENGTH)
		http_framing_add_length(&req->rframing, v, h->value_len);
	else if (h->id == HTTP_HDR_TRANSFER_ENCODING)
		http_framing_add_te(&req->rframing, v, h->value_len);
	else if (h->id == HTTP_HDR_CONNECTION)
		req->rconn_flags |= http_connection_flags(v, h->value_len);
	return 0;
}

static int
on_rheaders_complete(llhttp_t *p)
{
	struct request *req = p->data;

	if (req->rhead_done)
		return 0;
	req->rhead_done = true;
	return HPE_PAUSED;
}

/* Opens a chunk of `len` bytes toward the client when the body is re-chunked. */
static void
response_chunk_begin(struct request *req, struct evbuffer *out, size_t len)
{
	char hex[20];
	size_t n;

	if (!req->rechunk)
		return;
	n = http_hex(hex, len);
	hex[n++] = '\r';
	hex[n++] = '\n';
	evbuffer_add(out, hex, n);
}

/* Closes the chunk opened by response_chunk_begin and counts the body bytes. */
static void
response_chunk_end(struct request *req, struct evbuffer *out, size_t len)
{
	if (req->rechunk)
		evbuffer_add(out, "\r\n", 2);
	req->bytes_sent += len;
}

/* Sends body bytes to the client: framed for it, through the filter when one is set. */
static void
response_emit(struct request *req, const char *data, size_t len)
{
	struct evbuffer *out = client_out(req);

	if (len == 0)
		return;
	response_chunk_begin(req, out, len);
	evbuffer_add(out, data, len);
	response_chunk_end(req, out, len);
}

/* Frames what the filter chain produced (in the worker's scratch evbuffer) for the client. */
static void
response_filter_out(struct request *req, struct evbuffer *tmp)
{
	struct evbuffer *out = client_out(req);
	size_t len = evbuffer_get_length(tmp);

	if (len == 0)
		return;
	response_chunk_begin(req, out, len);
	evbuffer_add_buffer(out, tmp);
	response_chunk_end(req, out, len);
}

/* Body bytes through the filter chain; -1 when the body cannot be completed. */
static int
response_filter(struct request *req, const char *data, size_t len)
{
	struct evbuffer *tmp = req->c->w->filter_out;
	int r = req->filter->ops->write(req->filter, data, len, tmp);

	response_filter_out(req, tmp);
	return r;
}

/* Moves `len` bytes of the upstream input to the client without copying. */
static void
response_move(struct request *req, struct evbuffer *in, size_t len)
{
	struct evbuffer *out = client_out(req);

	if (len == 0)
		return;
	if (req->filter != NULL) {
		/* Filtered bodies go through the filter chain (HTML rewriting, gzip). */
		struct evbuffer_iovec v[8];
		size_t left = len;
		int cnt = evbuffer_peek(in, (ev_ssize_t)len, NULL, v, 8);

		for (int i = 0; i < cnt && i < 8 && left > 0; i++) {
			size_t k = v[i].iov_len < left ? v[i].iov_len : left;

			if (response_filter(req, v[i].iov_base, k) == -1)
				req->filter_failed = true;
			left -= k;
		}
		evbuffer_drain(in, len - left);
		return;
	}
	response_chunk_begin(req, out, len);
	evbuffer_remove_buffer(in, out, len);
	response_chunk_end(req, out, len);
}

static int
on_rbody(llhttp_t *p, const char *at, size_t len)
{
	struct request *req = p->data;

	if (req->filter != NULL) {
		if (response_filter(req, at, len) == -1)
			req->filter_failed = true;
		return 0;
	}
	response_emit(req, at, len);
	return 0;
}

static int
on_rmessage_complete(llhttp_t *p)
{
	struct request *req = p->data;

	if (!req->rhead_done)
		return 0;
	req->rbody_done = true;
	return HPE_PAUSED;
}

static const llhttp_settings_t response_settings = {
    .on_status = on_rstatus,
    .on_header_field = on_rheader_field,
    .on_header_field_complete = on_rheader_field_complete,
    .on_header_value = on_rheader_value,
    .on_header_value_complete = on_rheader_value_complete,
    .on_headers_complete = on_rheaders_complete,
    .on_body = on_rbody,
    .on_message_complete = on_rmessage_complete,
};

static void
response_parser_reset(struct request *req)
{
	llhttp_init(&req->rparser, HTTP_RESPONSE, &response_settings);
	req->rparser.data = req;
	req->rhead.len = 0; /* the next head byte resets the header list */
	req->rhead_done = false;
	req->rin_value = false;
	req->reason = req->reason_len = 0;
	req->rconn_flags = 0;
	memset(&req->rframing, 0, sizeof(req->rframing));
}

/* What reverse.h rewrites in a header, from its classification (http.h). */
static enum reverse_kind
reverse_kind_of(enum http_hdr id)
{
	switch (id) {
	case HTTP_HDR_LOCATION:
	case HTTP_HDR_CONTENT_LOCATION:
	case HTTP_HDR_URI:
	case HTTP_HDR_DESTINATION:
		return REVERSE_URL;
	case HTTP_HDR_REFRESH:
		return REVERSE_REFRESH;
	case HTTP_HDR_LINK:
		return REVERSE_LINK;
	case HTTP_HDR_SET_COOKIE:
		return REVERSE_COOKIE;
	default:
		return REVERSE_NONE;
	}
}

/* A response header, rewritten (ProxyPassReverse, cookies) or as it came. */
static void
write_response_header(struct request *req, struct buf *out, const struct hdr *h,
		      const struct reverse_ctx *ctx)
{
	const char *name = req->rhead.data + h->name, *v = req->rhead.data + h->value;
	const struct config *cfg = req->cfg;
	struct buf *scratch = &req->c->w->scratch;
	enum reverse_kind kind = REVERSE_NONE;
	int changed = 0;

	if (cfg->nreverse > 0 || (req->route && req->route->cookies))
		kind = reverse_kind_of(h->id);
	buf_reset(scratch);
	if (kind == REVERSE_COOKIE && req->route && req->route->cookies)
		changed =
		    reverse_cookie(cfg->reverse, cfg->nreverse, v, h->value_len, ctx, scratch);
	else if (kind != REVERSE_NONE && kind != REVERSE_COOKIE)
		changed = reverse_header(cfg->reverse, cfg->nreverse, kind, v, h->value_len, ctx,
					 scratch);
	if (changed == 1)
		add_header(out, name, h->name_len, scratch->data, scratch->len);
	else
		add_header(out, name, h->name_len, v, h->value_len);
}

static bool
response_header_passes(const struct request *req, const struct hdr *h, int status)
{
	if (h->id == HTTP_HDR_UPGRADE && status == 101)
		return true;
	if (http_header_is_hop_by_hop(h->id) || h->id == HTTP_HDR_CONTENT_LENGTH)
		return false;
	if ((req->rconn_flags & HTTP_CONN_OTHER) &&
	    named_in_connection(&req->rhead, req->hdrs, req->nhdrs, h))
		return false;
	return true;
}

/*
 * The headers body rewriting changes (bodyfilter.h): Content-Encoding is
 * re-stated after the loop, Accept-Ranges dropped, a strong ETag made weak,
 * Vary made to list Accept-Encoding.  True when `h` was handled here.
 */
static bool
response_header_filtered(struct request *req, struct buf *out, const struct hdr *h)
{
	const char *name = req->rhead.data + h->name, *v = req->rhead.data + h->value;
	struct buf *scratch = &req->c->w->scratch;

	buf_reset(scratch);
	switch (h->id) {
	case HTTP_HDR_CONTENT_ENCODING:
		return true;
	case HTTP_HDR_ACCEPT_RANGES:
		return req->bf_drop_ranges;
	case HTTP_HDR_ETAG:
		if (!req->bf_weaken_etag)
			return false;
		bodyfilter_weaken_etag(v, h->value_len, scratch);
		break;
	case HTTP_HDR_VARY:
		if (!req->bf_vary || req->bf_vary_done)
			return false;
		bodyfilter_vary_merge(v, h->value_len, scratch);
		req->bf_vary_done = true;
		break;
	default:
		return false;
	}
	add_header(out, name, h->name_len, scratch->data, scratch->len);
	return true;
}

/* The response head toward the client: status line, headers, framing, Connection. */
static void
write_response_head(struct request *req, int status, const char *framing)
{
	struct buf *out = &req->c->w->head;
	const struct config *cfg = req->cfg;
	struct reverse_ctx ctx = {.scheme = req->c->scheme};
	char num[24];

	if (cfg->server_name) {
		ctx.host = cfg->server_name;
		ctx.hostlen = strlen(cfg->server_name);
	} else if (req->host_len > 0) {
		ctx.host = req->head.data + req->host;
		ctx.hostlen = req->host_len;
	} else {
		ctx.host = "";
	}
	buf_reset(out);
	add_bytes(out, "HTTP/1.1 ", 9);
	add_bytes(out, num, fmt_u64(num, (uint64_t)status));
	add_bytes(out, " ", 1);
	if (req->reason_len > 0)
		add_bytes(out, req->rhead.data + req->reason, req->reason_len);
	else
		add_str(out, http_reason(status));
	add_bytes(out, "\r\n", 2);
	for (unsigned i = 0; i < req->nhdrs; i++) {
		const struct hdr *h = &req->hdrs[i];

		if (!response_header_passes(req, h, status))
			continue;
		if (req->bf_headers && response_header_filtered(req, out, h))
			continue;
		write_response_header(req, out, h, &ctx);
	}
	if (req->bf_headers && req->bf_encoding != NULL)
		add_header(out, "Content-Encoding", 16, req->bf_encoding, strlen(req->bf_encoding));
	if (req->bf_headers && req->bf_vary && !req->bf_vary_done)
		add_str(out, "Vary: Accept-Encoding\r\n");
	if (framing != NULL)
		add_str(out, framing);
	add_bytes(out, "\r\n", 2);
	evbuffer_add(client_out(req), out->data, out->len);
}

/* "Content-Length: N\r\n" into `line` (at least 40 bytes). */
static void
length_line(char *line, uint64_t len)
{
	size_t n = sizeof("Content-Length: ") - 1;

	memcpy(line, "Content-Length: ", n);
	n += fmt_u64(line + n, len);
	memcpy(line + n, "\r\n", 3);
}

/* How the body is delimited upstream and toward the client; `line` holds 64 bytes. */
static int
response_framing(struct request *req, int status, char *line)
{
	enum http_framing_verdict v = http_framing_check(&req->rframing);
	bool no_body = req->method == HTTP_HEAD || status == 204 || status == 304;

	line[0] = '\0';
	if (v == HTTP_FRAMING_INVALID)
		return -1;
	req->rkeep_alive = llhttp_get_http_minor(&req->rparser) >= 1
			       ? !(req->rconn_flags & HTTP_CONN_CLOSE)
			       : (req->rconn_flags & HTTP_CONN_KEEP_ALIVE) != 0;
	if (no_body) {
		req->rbody = BODY_NONE;
		if (v == HTTP_FRAMING_LENGTH && status != 204 && !req->bf_headers)
			length_line(line, req->rframing.length);
		return 0;
	}
	if (v == HTTP_FRAMING_LENGTH && req->filter == NULL) {
		req->rbody = BODY_LENGTH;
		req->rbody_left = req->rframing.length;
		length_line(line, req->rframing.length);
		return 0;
	}
	if (v == HTTP_FRAMING_LENGTH) {
		req->rbody = BODY_LENGTH;
		req->rbody_left = req->rframing.length;
	} else {
		req->rbody = v == HTTP_FRAMING_CHUNKED ? BODY_CHUNKED : BODY_EOF;
		if (req->rbody == BODY_EOF)
			req->rkeep_alive = false;
	}
	if (req->http_minor >= 1) {
		req->rechunk = true;
		memcpy(line, "Transfer-Encoding: chunked\r\n",
		       sizeof("Transfer-Encoding: chunked\r\n"));
	} else {
		req->close_delim = true;
		req->keep_alive = false;
	}
	return 0;
}

static void response_body(struct request *req);
static void tunnel_start(struct request *req);

/* Content-Type, and every Content-Encoding joined with ", " into `ce`. */
static void
response_types(const struct request *req, const char **ct, size_t *ctlen, struct buf *ce)
{
	for (unsigned i = 0; i < req->nhdrs; i++) {
		const struct hdr *h = &req->hdrs[i];

		if (h->id == HTTP_HDR_CONTENT_TYPE && *ct == NULL) {
			*ct = req->rhead.data + h->value;
			*ctlen = h->value_len;
		} else if (h->id == HTTP_HDR_CONTENT_ENCODING) {
			if (ce->len > 0)
				buf_add(ce, ", ", 2);
			buf_add(ce, req->rhead.data + h->value, h->value_len);
		}
	}
}

/*
 * Body rewriting (SPEC section 6.3) on an html route: installs the filter
 * chain for a body, or only notes the header changes for HEAD and 304.
 */
static void
response_setup_filter(struct request *req, int status)
{
	const struct route *r = req->route;
	struct buf *ce = &req->c->w->scratch;
	struct bodyfilter_result res;
	const char *ct = NULL;
	size_t ctlen = 0;
	bool gz;

	if (!r->html || status == 204 || status == 206)
		return;
	memset(&res, 0, sizeof(res));
	buf_reset(ce);
	response_types(req, &ct, &ctlen, ce);
	gz = bodyfilter_accepts_gzip(req->has_ae ? req->head.data + req->ae : NULL, req->ae_len);
	if (req->method == HTTP_HEAD || status == 304) {
		if (!bodyfilter_headers(r, ct, ctlen, ce->len ? ce->data : NULL, ce->len, gz, &res))
			return;
	} else if (bodyfilter_setup(r, ct, ctlen, ce->len ? ce->data : NULL, ce->len, gz, &res) ==
		       -1 ||
		   res.filter == NULL) {
		return;
	}
	req->filter = res.filter;
	req->bf_headers = true;
	req->bf_encoding = res.content_encoding;
	req->bf_weaken_etag = res.weaken_etag;
	req->bf_drop_ranges = res.drop_accept_ranges;
	req->bf_vary = res.vary_accept_encoding;
}

/* Sends the final response head and starts the body. */
static void
response_start(struct request *req, int status)
{
	struct client *c = req->c;
	char framing[96];
	size_t n;

	response_setup_filter(req, status);
	if (response_framing(req, status, framing) == -1) {
		proxy_error(req, 502, "invalid response framing");
		return;
	}
	if (c->close_after || c->w->draining || !req->body_done)
		req->keep_alive = false;
	n = strlen(framing);
	if (!req->keep_alive)
		memcpy(framing + n, "Connection: close\r\n", sizeof("Connection: close\r\n"));
	else if (req->http_minor == 0)
		memcpy(framing + n, "Connection: keep-alive\r\n",
		       sizeof("Connection: keep-alive\r\n"));
	req->status = status;
	req->resp_started = true;
	write_response_head(req, status, framing);
	if (c->state != CLIENT_BODY)
		client_set_state(c, CLIENT_RESPONSE);
	if (req->rbody == BODY_CHUNKED)
		llhttp_resume(&req->rparser);
	response_body(req);
}

/* A 1xx other than 101: 103 goes to HTTP/1.1 clients, the others are dropped. */
static void
response_interim(struct request *req, int status)
{
	if (status == 103 && req->http_minor >= 1)
		write_response_head(req, status, NULL);
	response_parser_reset(req);
}

/* "HTTP/1.x NNN": exactly three digits then a space or the end of the line. */
static bool
response_status_is_3digit(const struct request *req)
{
	const char *p = req->rhead.data;

	return req->rhead.len > 13 && p[8] == ' ' && p[9] >= '1' && p[9] <= '5' && p[10] >= '0' &&
	       p[10] <= '9' && p[11] >= '0' && p[11] <= '9' && (p[12] == ' ' || p[12] == '\r');
}

static void
response_head_done(struct request *req, size_t head_len)
{
	int status = llhttp_get_status_code(&req->rparser);
	const char *why = http_head_scan(req->rhead.data, head_len);

	evbuffer_drain(bufferevent_get_input(req->up->bev), head_len);
	if (why != NULL || llhttp_get_http_major(&req->rparser) != 1) {
		proxy_error(req, 502, why ? why : "invalid response version");
		return;
	}
	if (status < 100 || status > 599 || !response_status_is_3digit(req)) {
		proxy_error(req, 502, "invalid status code");
		return;
	}
	if (status == 101) {
		if (!req->upgrade) {
			proxy_error(req, 502, "101 without an upgrade request");
			return;
		}
		tunnel_start(req);
		return;
	}
	if (status >= 100 && status < 200) {
		if (++req->ninterim > PROXY_MAX_INTERIM) {
			proxy_error(req, 502, "too many interim responses");
			return;
		}
		/* proxy_upstream_read() loops to parse what follows. */
		response_interim(req, status);
		return;
	}
	response_start(req, status);
}

/* Reads the response head from the upstream input; acts on it when complete. */
static void
response_head(struct request *req)
{
	struct evbuffer *in = bufferevent_get_input(req->up->bev);
	size_t limit = req->cfg->limits.response_header_size, have = evbuffer_get_length(in);
	size_t want = have < limit + 4 ? have : limit + 4, old = req->rhead.len, head_len;
	struct evbuffer_ptr pos;
	llhttp_errno_t err;

	if (want <= old)
		return;
	if (old == 0)
		req->nhdrs = 0; /* request headers are no longer needed: no retry now */
	buf_reserve(&req->rhead, want - old);
	evbuffer_ptr_set(in, &pos, old, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(in, &pos, req->rhead.data + old, want - old);
	req->rhead.len = want;
	req->rhead.data[want] = '\0';
	err = llhttp_execute(&req->rparser, req->rhead.data + old, want - old);
	if (err == HPE_PAUSED && req->rhead_done) {
		head_len = (size_t)(llhttp_get_error_pos(&req->rparser) - req->rhead.data);
		if (head_len > limit) {
			proxy_error(req, 502, "response head over limits.response_header_size");
			return;
		}
		req->rhead.len = head_len;
		response_head_done(req, head_len);
		return;
	}
	if (err != HPE_OK) {
		log_req(LOG_LEVEL_WARN, req->id, "invalid response upstream=%s route=%s reason=%s",
			req->up->addr, req->route->name, llhttp_errno_name(err));
		proxy_error(req, 502, "invalid response");
		return;
	}
	if (req->rhead.len > limit)
		proxy_error(req, 502, "response head over limits.response_header_size");
}

/* --- the response body -------------------------------------------------- */

static void
response_complete(struct request *req)
{
	if (req->filter != NULL) {
		struct evbuffer *tmp = req->c->w->filter_out;

		if (req->filter->ops->finish(req->filter, tmp) == -1)
			req->filter_failed = true;
		response_filter_out(req, tmp);
	}
	if (req->filter_failed) {
		/* A corrupt or truncated compressed body: never end it as if complete. */
		log_req(LOG_LEVEL_WARN, req->id, "response body filter failed route=%s",
			req->route->name);
		client_close(req->c, "body filter failed");
		return;
	}
	if (req->rechunk)
		evbuffer_add(client_out(req), "0\r\n\r\n", 5);
	req->resp_done = true;
	req->up_reusable = req->rkeep_alive && req->rbody != BODY_EOF;
	proxy_finish(req);
}

/* Feeds a chunked response body to llhttp; 1 at its end, 0 for more, -1 on error. */
static int
response_body_chunked(struct request *req, struct evbuffer *in)
{
	struct evbuffer_iovec v[4];
	int n = evbuffer_peek(in, -1, NULL, v, 4);
	size_t used = 0;
	int done = 0;

	for (int i = 0; i < n && i < 4 && done == 0; i++) {
		llhttp_errno_t err = llhttp_execute(&req->rparser, v[i].iov_base, v[i].iov_len);

		if (err == HPE_OK) {
			used += v[i].iov_len;
		} else if (err == HPE_PAUSED && req->rbody_done) {
			used += (size_t)(llhttp_get_error_pos(&req->rparser) -
					 (const char *)v[i].iov_base);
			done = 1;
		} else {
			done = -1;
		}
	}
	evbuffer_drain(in, used);
	return done;
}

static void
response_body(struct request *req)
{
	struct evbuffer *in = bufferevent_get_input(req->up->bev);
	size_t n = evbuffer_get_length(in);
	int done = 0;

	switch (req->rbody) {
	case BODY_NONE:
		done = 1;
		break;
	case BODY_LENGTH:
		if (n > req->rbody_left)
			n = (size_t)req->rbody_left;
		response_move(req, in, n);
		req->rbody_left -= n;
		done = req->rbody_left == 0;
		break;
	case BODY_CHUNKED:
		done = response_body_chunked(req, in);
		break;
	case BODY_EOF:
		response_move(req, in, n);
		break;
	}
	if (done == -1) {
		log_req(LOG_LEVEL_WARN, req->id,
			"invalid response body upstream=%s route=%s reason=%s", req->up->addr,
			req->route->name, llhttp_errno_name(llhttp_get_errno(&req->rparser)));
		client_close(req->c, "invalid upstream body");
		return;
	}
	if (done == 1) {
		response_complete(req);
		return;
	}
	if (evbuffer_get_length(client_out(req)) > PROXY_HIGH_WATER && !req->up_paused) {
		req->up_paused = true;
		upstream_pause_read(req->up, true);
	}
}

/* --- tunnels -------------------------------------------------------------- */

static void
tunnel_start(struct request *req)
{
	struct client *c = req->c;
	uint64_t ms = req->route->tunnel_ms;

	req->status = 101;
	req->resp_started = true;
	req->tunnel = true;
	req->keep_alive = false;
	req->tunnel_last_us = now_us(req);
	write_response_head(req, 101, "Connection: upgrade\r\n");
	client_set_state(c, CLIENT_TUNNEL);
	upstream_set_read_timeout(req->up, ms);
	evbuffer_add_buffer(client_out(req), bufferevent_get_input(req->up->bev));
	proxy_tunnel_from_client(req);
}

void
proxy_tunnel_from_client(struct request *req)
{
	struct client *c = req->c;
	struct evbuffer *in = bufferevent_get_input(c->bev);

	c->bytes_in += evbuffer_get_length(in);
	metrics_add(c->w->metrics, METRICS_BYTES_RECEIVED, evbuffer_get_length(in));
	evbuffer_add_buffer(upstream_out(req), in);
	req->tunnel_last_us = now_us(req);
	if (evbuffer_get_length(upstream_out(req)) > PROXY_HIGH_WATER) {
		c->upstream_full = true;
		client_update_read(c);
	}
}

static void
tunnel_from_upstream(struct request *req)
{
	struct evbuffer *in = bufferevent_get_input(req->up->bev);

	req->bytes_sent += evbuffer_get_length(in);
	evbuffer_add_buffer(client_out(req), in);
	req->tunnel_last_us = now_us(req);
	if (evbuffer_get_length(client_out(req)) > PROXY_HIGH_WATER && !req->up_paused) {
		req->up_paused = true;
		upstream_pause_read(req->up, true);
	}
}

void
proxy_tunnel_timeout(struct request *req, bool client_side)
{
	uint64_t idle = now_us(req) - req->tunnel_last_us;

	if (idle < req->route->tunnel_ms * 1000) {
		/* The other direction was active: the tunnel is not idle. */
		if (client_side)
			client_update_read(req->c);
		else if (!req->up_paused)
			upstream_pause_read(req->up, false);
		return;
	}
	client_close(req->c, "tunnel idle");
}

/* --- upstream events ------------------------------------------------------ */

void
proxy_upstream_read(struct upstream *u)
{
	struct request *req = u->req;

	PORTICO_ASSERT(req != NULL && req->magic == REQUEST_MAGIC);
	if (evbuffer_get_length(bufferevent_get_input(u->bev)) == 0)
		return;
	u->got_bytes = true;
	if (req->tunnel) {
		tunnel_from_upstream(req);
		return;
	}
	if (req->resp_started) {
		if (!req->resp_done)
			response_body(req);
		return;
	}
	/*
	 * Interim (1xx) heads are consumed one by one until the final head or
	 * a wait for more bytes.  The request may end inside response_head():
	 * u->req is checked before req is touched again.
	 */
	for (;;) {
		unsigned before = req->ninterim;

		response_head(req);
		if (u->req != req || req->resp_started || req->ninterim == before ||
		    evbuffer_get_length(bufferevent_get_input(u->bev)) == 0)
			return;
	}
}

void
proxy_upstream_writable(struct upstream *u)
{
	struct request *req = u->req;
	struct client *c = req->c;

	if (!c->upstream_full)
		return;
	c->upstream_full = false;
	client_update_read(c);
	if (c->state == CLIENT_BODY)
		proxy_request_body(req);
	else if (c->state == CLIENT_TUNNEL)
		proxy_tunnel_from_client(req);
}

void
proxy_client_writable(struct request *req)
{
	if (!req->up_paused || req->up == NULL)
		return;
	req->up_paused = false;
	upstream_pause_read(req->up, false);
	proxy_upstream_read(req->up);
}

static bool
proxy_can_retry(const struct request *req, const struct upstream *u)
{
	return u->reused && !u->got_bytes && !req->retried && !req->resp_started &&
	       req->body == BODY_NONE && method_is_idempotent(req->method);
}

/* A pooled connection died before answering: once more on a fresh one. */
static void
proxy_retry(struct request *req, const char *reason)
{
	log_req(LOG_LEVEL_DEBUG, req->id, "retrying on a new connection upstream=%s reason=%s",
		req->up->addr, reason);
	req->retried = true;
	upstream_close(req->up, reason);
	req->up = upstream_get(req->c->w, req->route, req, true);
	response_parser_reset(req);
	proxy_write_head(req);
	upstream_set_read_timeout(req->up, req->route->upstream_read_ms);
}

void
proxy_upstream_failed(struct upstream *u, int status, const char *reason)
{
	struct request *req = u->req;

	if (proxy_can_retry(req, u) && status == 502) {
		proxy_retry(req, reason);
		return;
	}
	log_req(LOG_LEVEL_WARN, req->id, "upstream failed upstream=%s route=%s reason=%s",
		u->addr[0] ? u->addr : req->route->upstream.authority, req->route->name, reason);
	if (req->tunnel || req->resp_started) {
		client_close(req->c, reason);
		return;
	}
	proxy_error(req, status, reason);
}

void
proxy_upstream_eof(struct upstream *u)
{
	struct request *req = u->req;

	if (!req->resp_started) {
		proxy_upstream_failed(u, 502, "upstream closed the connection");
		return;
	}
	if (req->tunnel) {
		client_close(req->c, "upstream closed the tunnel");
		return;
	}
	if (req->rbody == BODY_EOF && !req->resp_done) {
		response_body(req);
		response_complete(req);
		return;
	}
	if (!req->resp_done)
		proxy_upstream_failed(u, 502, "upstream closed mid-body");
}
