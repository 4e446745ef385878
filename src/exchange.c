/*
 * exchange.c: the exchange's lifecycle (exchange.h): structures from the
 * worker's free list, the two phases and their one setter, the start of an
 * exchange (the routing decision, the checks before anything goes upstream,
 * the connection), generated error responses, the end (complete, cut, or
 * the client gone), the deferred free, the access log line, and the event
 * tables through which the client side and the upstream side report.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exchange_int.h"
#include "portico/accesslog.h"
#include "portico/config.h"
#include "portico/filter.h"
#include "portico/group.h"
#include "portico/log.h"
#include "portico/metrics.h"
#include "portico/route_decide.h"
#include "portico/tls.h"

#define FREE_EX_MAX  64
#define KEEP_BUF_MAX (32 * 1024)

static const char *const req_phase_names[] = {
    [EXCHANGE_REQ_HEAD] = "head",
    [EXCHANGE_REQ_BODY] = "body",
    [EXCHANGE_REQ_SENT] = "sent",
};

static const char *const resp_phase_names[] = {
    [EXCHANGE_RESP_WAIT] = "wait",
    [EXCHANGE_RESP_BODY] = "body",
    [EXCHANGE_RESP_TUNNEL] = "tunnel",
    [EXCHANGE_RESP_DONE] = "done",
};

const char *
exchange_req_phase_name(enum exchange_req_phase p)
{
	return (unsigned)p < ARRAY_SIZE(req_phase_names) ? req_phase_names[p] : "?";
}

const char *
exchange_resp_phase_name(enum exchange_resp_phase p)
{
	return (unsigned)p < ARRAY_SIZE(resp_phase_names) ? resp_phase_names[p] : "?";
}

void
ex_set_phase(struct exchange *ex, enum exchange_req_phase rq, enum exchange_resp_phase rs)
{
	if (rq == ex->rq && rs == ex->rs)
		return;
	if (log_is_enabled(LOG_LEVEL_DEBUG))
		log_debug("exchange %s: request %s -> %s, response %s -> %s", ex_id(ex),
			  exchange_req_phase_name(ex->rq), exchange_req_phase_name(rq),
			  exchange_resp_phase_name(ex->rs), exchange_resp_phase_name(rs));
	ex->rq = rq;
	ex->rs = rs;
}

uint64_t
ex_now_us(void)
{
	return worker_mono_us();
}

/* --- structures --------------------------------------------------------------- */

static void ex_reap(struct worker_reap *r);

static void
buf_trim(struct buf *b)
{
	if (b->cap > KEEP_BUF_MAX)
		buf_free(b);
	b->len = 0;
}

static struct exchange *
ex_new(struct stream *s, struct head *h, struct config *cfg)
{
	struct worker *w = s->w;
	struct exchange *ex = w->free_ex;
	struct buf path = {0}, target = {0};

	if (ex != NULL) {
		w->free_ex = ex->next_free;
		w->nfree_ex--;
		path = ex->path;
		target = ex->target;
	} else {
		ex = xmalloc(sizeof(*ex));
	}
	memset(ex, 0, sizeof(*ex));
	ex->path = path;
	ex->target = target;
	ex->magic = EXCHANGE_MAGIC;
	ex->w = w;
	ex->reap.free = ex_reap;
	ex->s = s;
	ex->client = ex->peer = s->addr;
	ex->client_sa = s->sa;
	ex->req = h;
	ex->cfg = cfg;
	ex->close = w->draining;
	ex->idnum = worker_next_reqid(w); /* formatted when first used (ex_id) */
	ex->next = w->exchanges;
	if (w->exchanges != NULL)
		w->exchanges->prev = ex;
	w->exchanges = ex;
	s->ex = ex;
	return ex;
}

static void
ex_free(struct exchange *ex)
{
	struct worker *w = ex->w;

	PORTICO_ASSERT(ex->magic == EXCHANGE_MAGIC && ex->s == NULL && ex->up == NULL);
	config_unref(ex->cfg);
	if (ex->filter != NULL)
		ex->filter->ops->free(ex->filter);
	worker_head_put(w, ex->req);
	ex->magic = 0;
	if (w->nfree_ex >= FREE_EX_MAX) {
		buf_free(&ex->path);
		buf_free(&ex->target);
		free(ex);
		return;
	}
	buf_trim(&ex->path);
	buf_trim(&ex->target);
	ex->next_free = w->free_ex;
	w->free_ex = ex;
	w->nfree_ex++;
}

static void
ex_reap(struct worker_reap *r)
{
	ex_free((struct exchange *)((char *)r - offsetof(struct exchange, reap)));
}

void
exchange_pool_free(struct worker *w)
{
	while (w->free_ex != NULL) {
		struct exchange *ex = w->free_ex;

		w->free_ex = ex->next_free;
		buf_free(&ex->path);
		buf_free(&ex->target);
		free(ex);
	}
	w->nfree_ex = 0;
}

/* The exchange let go of both sides: off the worker's list, freed from the loop. */
static void
ex_over(struct exchange *ex)
{
	struct worker *w = ex->w;

	PORTICO_ASSERT(ex->s == NULL && ex->up == NULL);
	failover_release(ex);
	ex_set_phase(ex, ex->rq, EXCHANGE_RESP_DONE);
	if (ex->prev)
		ex->prev->next = ex->next;
	else
		w->exchanges = ex->next;
	if (ex->next)
		ex->next->prev = ex->prev;
	ex->prev = ex->next = NULL;
	worker_defer_free(w, &ex->reap);
}

/* --- the access log and the ends of an exchange ----------------------------------- */

static void
ex_log_access(struct exchange *ex)
{
	const struct head *h = ex->req;
	uint64_t duration_us = ex_now_us() - h->start_us;
	struct accesslog_entry e;
	size_t len;

	metrics_request(ex->w->metrics, ex->route ? ex->route->name : NULL,
			ex->route ? ex->route->index : 0, ex->status, duration_us);
	metrics_add(ex->w->metrics, METRICS_BYTES_SENT, ex->bytes_sent);
	metrics_add(ex->w->metrics, h->h2 ? METRICS_REQUESTS_HTTP2 : METRICS_REQUESTS_HTTP1, 1);
	if (!accesslog_is_active())
		return;
	e = (struct accesslog_entry){.client = ex->client, .reqid = ex_id(ex)};
	e.start = h->start_wall;
	e.method = head_method_name(h);
	e.method_len = strlen(e.method);
	if (h->done) {
		e.target = h->bytes.data + h->target;
		e.target_len = h->target_len;
	}
	e.http_minor = h->minor;
	e.http_major = h->h2 ? 2 : 1;
	e.status = ex->status;
	e.bytes_sent = ex->bytes_sent;
	e.referer = head_value_at(h, h->referer, &len);
	e.referer_len = len;
	e.user_agent = head_value_at(h, h->user_agent, &len);
	e.user_agent_len = len;
	if (h->authority_len > 0) {
		e.host = h->bytes.data + h->authority;
		e.host_len = h->authority_len;
	}
	e.route = ex->route ? ex->route->name : NULL;
	e.upstream = ex->up && upstream_addr(ex->up)[0] ? upstream_addr(ex->up) : NULL;
	e.duration_us = duration_us;
	accesslog_write(&e);
}

void
ex_complete(struct exchange *ex)
{
	struct stream *s = ex->s;

	ex_log_access(ex);
	if (ex->up != NULL) {
		upstream_release(ex->up, ex->rq == EXCHANGE_REQ_SENT);
		ex->up = NULL;
	}
	ex->s = NULL;
	stream_end(s);
	ex_over(ex);
}

/* The client side is going away (or being cut): the 499, the log, the upstream. */
static void
ex_let_go(struct exchange *ex, const char *reason)
{
	if (ex->rs != EXCHANGE_RESP_DONE) {
		if (ex->status == 0 || ex->rs == EXCHANGE_RESP_WAIT)
			ex->status = 499;
		log_req(LOG_LEVEL_INFO, ex_id(ex),
			"client went away client=%s reason=%s request=%s response=%s", ex->client,
			reason, exchange_req_phase_name(ex->rq), exchange_resp_phase_name(ex->rs));
	}
	ex_log_access(ex);
	if (ex->up != NULL) {
		upstream_close(ex->up, "client gone");
		ex->up = NULL;
	}
}

void
ex_cut(struct exchange *ex, const char *reason)
{
	struct stream *s = ex->s;

	ex_let_go(ex, reason);
	ex->s = NULL;
	stream_abort(s, reason);
	ex_over(ex);
}

/* A malformed request, or one over a limit: answered, then closed (SPEC section 9). */
static bool
status_closes(int status)
{
	return status == 400 || status == 408 || status == 413 || status == 414 || status == 431;
}

void
ex_error(struct exchange *ex, int status, const char *why)
{
	const struct head *h = ex->req;
	struct stream *s = ex->s;
	bool consumed = h->body == HEAD_BODY_NONE || ex->rq == EXCHANGE_REQ_SENT;
	bool close;

	if (ex->rs != EXCHANGE_RESP_WAIT) {
		/* Part of a response is out: cut the connection, never fake an end. */
		ex_cut(ex, why);
		return;
	}
	log_req(status >= 500 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, ex_id(ex),
		"%d %s client=%s route=%s reason=%s", status, http_reason(status), ex->client,
		ex->route ? ex->route->name : "-", why ? why : "-");
	if (ex->up != NULL) {
		upstream_close(ex->up, why);
		ex->up = NULL;
	}
	close = h->error != 0 || !h->keep_alive || !consumed || ex->close || status_closes(status);
	ex->status = status;
	ex->s = NULL;
	ex->bytes_sent = stream_error(s, status, ex_id(ex), close,
				      h->done && h->method_known && h->method == HTTP_HEAD);
	ex_set_phase(ex, EXCHANGE_REQ_SENT, ex->rs);
	ex_log_access(ex);
	ex_over(ex);
}

/* --- flushing ------------------------------------------------------------------ */

void
ex_flush(struct exchange *ex)
{
	if (ex->up != NULL && upstream_flush(ex->up) && ex->client_paused && ex->s != NULL) {
		ex->client_paused = false;
		stream_pause_body(ex->s, false);
	}
	if (ex->s != NULL && stream_flush(ex->s))
		relay_writable(ex);
}

/* --- starting an exchange ------------------------------------------------------------ */

static const struct upstream_cbs ex_upstream_cbs;

/* A connection for the route, and the request head into it. */
static void
ex_connect(struct exchange *ex, bool fresh)
{
	const struct route *r = ex->route;
	struct upstream_dest d;

	failover_dest(ex, &d);
	ex->up = upstream_get(ex->w, r, &d, config_route_tls(ex->cfg, r),
			      ex->cfg->limits.response_header_size, fresh, &ex_upstream_cbs, ex);
	forward_head(ex);
}

void
ex_request_sent(struct exchange *ex)
{
	ex_set_phase(ex, EXCHANGE_REQ_SENT, ex->rs);
	upstream_set_read_timeout(ex->up, ex->route->upstream_read_ms);
}

/* The routing decision and the checks before anything goes upstream; 0 or a status. */
static int
ex_route(struct exchange *ex, const char **why)
{
	const struct head *h = ex->req;
	struct route_decision d;

	route_decide(ex->cfg, h->authority_len ? h->bytes.data + h->authority : NULL,
		     h->authority_len, h->bytes.data + h->origin, h->origin_len, ex->client_sa,
		     &ex->path, &ex->target, &d);
	ex->route = d.status == 404 ? NULL : d.route;
	*why = d.why;
	if (d.status == 500)
		log_req(LOG_LEVEL_ERROR, ex_id(ex),
			"cannot build upstream target route=%s reason=%s", d.route->name, d.why);
	if (d.status != 0)
		return d.status;
	if (h->expect_other) {
		*why = "unsupported Expect";
		return 417;
	}
	if (ex->cfg->limits.body_size && h->body == HEAD_BODY_LENGTH &&
	    h->length > ex->cfg->limits.body_size) {
		*why = "body over limits.body_size";
		return 413;
	}
	return 0;
}

static void
exchange_start(struct stream *s, struct head *h, struct config *cfg)
{
	struct exchange *ex = ex_new(s, h, cfg);
	const char *why = NULL;
	int status;

	if (h->error != 0) {
		ex_error(ex, h->error, h->why);
		return;
	}
	forward_client(ex);
	if ((status = ex_route(ex, &why)) != 0) {
		ex_error(ex, status, why);
		return;
	}
	if (ex->route->group != NULL && failover_pick(ex, &why) < 0) {
		ex_error(ex, 503, why);
		return;
	}
	ex_connect(ex, false);
	if (h->body == HEAD_BODY_NONE) {
		ex_request_sent(ex);
	} else {
		if (h->expect_continue)
			stream_continue(s);
		ex_set_phase(ex, EXCHANGE_REQ_BODY, ex->rs);
		stream_pause_body(s, false);
		forward_body(ex);
	}
	if (ex->rs != EXCHANGE_RESP_DONE)
		ex_flush(ex);
}

/* --- what the client side reports -------------------------------------------------- */

static struct exchange *
ex_from_arg(void *arg)
{
	struct exchange *ex = arg;

	PORTICO_ASSERT(ex->magic == EXCHANGE_MAGIC);
	return ex;
}

static void
ex_client_body(void *arg)
{
	struct exchange *ex = ex_from_arg(arg);

	if (ex->rs == EXCHANGE_RESP_TUNNEL)
		tunnel_from_client(ex);
	else
		forward_body(ex);
	if (ex->rs != EXCHANGE_RESP_DONE)
		ex_flush(ex);
}

static void
ex_client_writable(void *arg)
{
	relay_writable(ex_from_arg(arg));
}

static void
ex_client_timeout(void *arg)
{
	struct exchange *ex = ex_from_arg(arg);

	if (ex->rs == EXCHANGE_RESP_TUNNEL)
		tunnel_idle(ex, true);
	else if (ex->rs == EXCHANGE_RESP_WAIT)
		ex_error(ex, 408, "client body timeout");
	else
		ex_cut(ex, "read timeout");
}

static void
ex_client_gone(void *arg, const char *reason)
{
	struct exchange *ex = ex_from_arg(arg);

	ex_let_go(ex, reason);
	ex->s = NULL;
	ex_over(ex);
}

const struct stream_events exchange_stream_events = {
    .start = exchange_start,
    .body = ex_client_body,
    .writable = ex_client_writable,
    .timeout = ex_client_timeout,
    .gone = ex_client_gone,
};

/* --- what the upstream side reports ------------------------------------------------ */

static enum upstream_next
ex_upstream_head(void *arg, struct head *h)
{
	struct exchange *ex = ex_from_arg(arg);
	enum upstream_next next;

	if (ex->srv != NULL && ex->ninterim == 0)
		failover_ok(ex);
	next = relay_head(ex, h);
	/* Body bytes that came with the head go out with it, in one write. */
	if (ex->rs != EXCHANGE_RESP_DONE && (ex->up == NULL || !upstream_has_input(ex->up)))
		ex_flush(ex);
	return next;
}

static void
ex_upstream_body(void *arg, struct evbuffer *data, size_t len)
{
	struct exchange *ex = ex_from_arg(arg);

	if (ex->rs == EXCHANGE_RESP_TUNNEL)
		tunnel_from_upstream(ex, data, len);
	else
		relay_body(ex, data, len);
	if (ex->rs != EXCHANGE_RESP_DONE)
		ex_flush(ex);
}

static void
ex_upstream_end(void *arg)
{
	relay_end(ex_from_arg(arg));
}

static void
ex_upstream_writable(void *arg)
{
	struct exchange *ex = ex_from_arg(arg);

	if (!ex->client_paused || ex->s == NULL)
		return;
	ex->client_paused = false;
	stream_pause_body(ex->s, false);
}

bool
ex_is_idempotent(uint8_t m)
{
	return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS || m == HTTP_PUT ||
	       m == HTTP_DELETE || m == HTTP_TRACE;
}

/* A pooled connection died before answering: once more on a fresh one. */
static bool
ex_retry(struct exchange *ex, const struct upstream_failure *f)
{
	if (!f->reused || f->got_bytes || f->status != 502 || ex->retried ||
	    ex->rs != EXCHANGE_RESP_WAIT || ex->req->body != HEAD_BODY_NONE ||
	    !ex_is_idempotent(ex->req->method))
		return false;
	log_req(LOG_LEVEL_DEBUG, ex_id(ex), "retrying on a new connection upstream=%s reason=%s",
		upstream_addr(ex->up), f->reason);
	ex->retried = true;
	upstream_close(ex->up, f->reason);
	ex_connect(ex, true);
	upstream_set_read_timeout(ex->up, ex->route->upstream_read_ms);
	return true;
}

static void
ex_upstream_failed(void *arg, const struct upstream_failure *f)
{
	struct exchange *ex = ex_from_arg(arg);
	const char *addr = upstream_addr(ex->up);

	if (f->status == 0) {
		ex_cut(ex, f->reason);
		return;
	}
	if (ex_retry(ex, f)) {
		ex_flush(ex);
		return;
	}
	if (failover_retry(ex, f)) {
		ex_connect(ex, false);
		if (ex->rq == EXCHANGE_REQ_SENT)
			upstream_set_read_timeout(ex->up, ex->route->upstream_read_ms);
		else
			forward_body(ex);
		if (ex->rs != EXCHANGE_RESP_DONE)
			ex_flush(ex);
		return;
	}
	if (!addr[0])
		addr = ex->srv ? ex->srv->address : ex->route->upstream.authority;
	if (f->detail != NULL)
		log_req(LOG_LEVEL_WARN, ex_id(ex), "%s upstream=%s route=%s reason=%s", f->reason,
			addr, ex->route->name, f->detail);
	else
		log_req(LOG_LEVEL_WARN, ex_id(ex), "upstream failed upstream=%s route=%s reason=%s",
			addr, ex->route->name, f->reason);
	if (ex->rs != EXCHANGE_RESP_WAIT)
		ex_cut(ex, f->reason);
	else
		ex_error(ex, f->status, f->reason);
}

static void
ex_upstream_idle(void *arg)
{
	tunnel_idle(ex_from_arg(arg), false);
}

static const struct upstream_cbs ex_upstream_cbs = {
    .head = ex_upstream_head,
    .body = ex_upstream_body,
    .end = ex_upstream_end,
    .writable = ex_upstream_writable,
    .failed = ex_upstream_failed,
    .idle = ex_upstream_idle,
};

/* --- shutdown -------------------------------------------------------------------------- */

void
exchange_drain_all(struct worker *w, const char *abort)
{
	struct exchange *ex = w->exchanges, *next;

	for (; ex != NULL; ex = next) {
		next = ex->next;
		if (abort == NULL)
			ex->close = true;
		else if (ex->s != NULL)
			ex_cut(ex, abort);
	}
}
