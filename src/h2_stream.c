/*
 * h2_stream.c: one HTTP/2 stream as the client side of one exchange
 * (stream.h).  The request head: nghttp2's HTTP messaging checks have
 * already refused what RFC 9113 section 8.3 calls malformed (pseudo-header
 * rules, connection-specific fields, TE other than trailers, upper-case
 * names, field values; content-length against the DATA received); here
 * :authority and Host must agree, cookies are joined (section 8.2.3), and
 * the head is written as the HTTP/1.1 request it stands for and parsed by
 * the same head parser and checks as any HTTP/1.1 request (head.h), so
 * path normalization, routing, access and forwarding cannot tell them
 * apart.  The response: HEADERS without hop-by-hop fields, the body through
 * a data source reading the stream's own buffer, END_STREAM at the end,
 * RST_STREAM for an abort.
 */
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "h2_int.h"
#include "portico/config.h"
#include "portico/errpage.h"
#include "portico/head.h"
#include "portico/log.h"
#include "portico/metrics.h"

static void h2_stream_reap(struct worker_reap *r);
static const struct stream_ops h2_stream_ops;

static struct h2_stream *
stream_of(struct stream *s)
{
	struct h2_stream *st = (struct h2_stream *)((char *)s - offsetof(struct h2_stream, st));

	PORTICO_ASSERT(st->magic == H2_STREAM_MAGIC);
	return st;
}

struct h2_stream *
h2_stream_new(struct h2_session *s, int32_t id)
{
	struct h2_stream *st = xcalloc(1, sizeof(*st));
	struct worker *w = s->c.w;
	struct timeval tv;

	st->magic = H2_STREAM_MAGIC;
	st->sess = s;
	st->id = id;
	st->reap.free = h2_stream_reap;
	st->st = (struct stream){
	    .ops = &h2_stream_ops, .w = w, .scheme = s->c.scheme, .addr = s->c.addr, .sa = s->c.sa};
	st->head = worker_head_get(w);
	st->cfg = config_ref(w->cfg);
	event_base_gettimeofday_cached(w->base, &tv);
	st->head->start_wall = tv.tv_sec;
	st->head->start_us = worker_mono_us();
	st->head->h2 = true;
	st->in = evbuffer_new();
	st->out = evbuffer_new();
	st->next = s->streams;
	if (s->streams != NULL)
		s->streams->prev = st;
	s->streams = st;
	s->nstreams++;
	return st;
}

/* Off the session's list: nghttp2 is done with it, or the session is going away. */
static void
stream_unlink(struct h2_stream *st)
{
	struct h2_session *s = st->sess;

	if (s == NULL)
		return;
	if (st->prev)
		st->prev->next = st->next;
	else
		s->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
	s->nstreams--;
	st->sess = NULL;
}

void
h2_stream_free(struct h2_stream *st)
{
	struct worker *w = st->st.w;

	PORTICO_ASSERT(st->magic == H2_STREAM_MAGIC && st->st.ex == NULL);
	stream_unlink(st);
	if (st->head != NULL)
		worker_head_put(w, st->head);
	config_unref(st->cfg);
	evbuffer_free(st->in);
	evbuffer_free(st->out);
	st->magic = 0;
	free(st);
}

static void
h2_stream_reap(struct worker_reap *r)
{
	h2_stream_free((struct h2_stream *)((char *)r - offsetof(struct h2_stream, reap)));
}

/* Tells the exchange bound to the stream that it is gone. */
static void
stream_let_go(struct h2_stream *st, const char *reason)
{
	void *ex = st->st.ex;

	if (ex == NULL)
		return;
	st->st.ex = NULL;
	st->sess->c.ev->gone(ex, reason);
}

void
h2_stream_closed(struct h2_stream *st, uint32_t code)
{
	struct h2_session *s = st->sess;

	nghttp2_session_set_stream_user_data(s->ng, st->id, NULL);
	stream_let_go(st, code == NGHTTP2_NO_ERROR ? "stream closed" : "stream reset");
	stream_unlink(st);
	/* A queued stream is off the list: the session's free does not see it again. */
	worker_defer_free(st->st.w, &st->reap);
}

void
h2_stream_detach(struct h2_stream *st, const char *reason)
{
	stream_let_go(st, reason);
}

/* --- the request head ------------------------------------------------------------ */

static bool
name_is(const uint8_t *name, size_t nlen, const char *lit)
{
	return nlen == strlen(lit) && memcmp(name, lit, nlen) == 0;
}

static void
pseudo_header(struct h2_stream *st, const uint8_t *name, size_t nlen, const uint8_t *v, size_t vlen)
{
	struct h2_session *s = st->sess;

	if (name_is(name, nlen, ":method"))
		buf_add(&s->method, v, vlen);
	else if (name_is(name, nlen, ":path"))
		buf_add(&s->path, v, vlen);
	else if (name_is(name, nlen, ":authority")) {
		buf_add(&s->authority, v, vlen);
		s->has_authority = true;
	}
	/* :scheme: checked by nghttp2; the listener's scheme is what counts. */
}

void
h2_stream_header(struct h2_stream *st, const uint8_t *name, size_t nlen, const uint8_t *value,
		 size_t vlen)
{
	struct h2_session *s = st->sess;
	const struct config *cfg = st->cfg;

	/* As on HTTP/1.1: the bytes a head would take, and the fields. */
	st->header_bytes += nlen + vlen + 4;
	st->header_count += nlen > 0 && name[0] != ':';
	if (st->header_bytes > cfg->limits.header_size ||
	    (cfg->limits.header_count && st->header_count > cfg->limits.header_count))
		st->too_large = true;
	if (st->too_large || st->bad != NULL)
		return;
	if (nlen > 0 && name[0] == ':') {
		pseudo_header(st, name, nlen, value, vlen);
	} else if (name_is(name, nlen, "host")) {
		if (s->has_authority && !ascii_casecmp_eq(s->authority.data, s->authority.len,
							  (const char *)value, vlen))
			st->bad = ":authority and Host differ";
		else if (s->host.len > 0)
			st->bad = "Host repeated";
		buf_add(&s->host, value, vlen);
	} else if (name_is(name, nlen, "cookie")) {
		if (s->cookie.len > 0)
			buf_add(&s->cookie, "; ", 2);
		buf_add(&s->cookie, value, vlen);
	} else {
		buf_add(&s->fields, name, nlen);
		buf_add(&s->fields, ": ", 2);
		buf_add(&s->fields, value, vlen);
		buf_add(&s->fields, "\r\n", 2);
	}
}

/* The HTTP/1.1 request the stream's head stands for, parsed and judged as one. */
static void
head_build(struct h2_stream *st)
{
	struct h2_session *s = st->sess;
	const struct config *cfg = st->cfg;
	struct head *h = st->head;
	struct buf *text = &s->text;
	const struct buf *auth = s->has_authority ? &s->authority : &s->host;

	buf_reset(text);
	buf_add(text, s->method.data, s->method.len);
	buf_addc(text, ' ');
	/* CONNECT has no :path: its target is the authority (a 405 follows). */
	if (s->path.len > 0)
		buf_add(text, s->path.data, s->path.len);
	else
		buf_add(text, auth->data, auth->len);
	buf_add(text, " HTTP/1.1\r\n", 11);
	if (auth->len > 0) {
		buf_add(text, "host: ", 6);
		buf_add(text, auth->data, auth->len);
		buf_add(text, "\r\n", 2);
	}
	buf_add(text, s->fields.data, s->fields.len);
	if (s->cookie.len > 0) {
		buf_add(text, "cookie: ", 8);
		buf_add(text, s->cookie.data, s->cookie.len);
		buf_add(text, "\r\n", 2);
	}
	buf_add(text, "\r\n", 2);
	switch (head_feed_bytes(h, text->data, text->len, cfg->limits.header_size,
				cfg->limits.header_count)) {
	case HEAD_DONE:
		head_check_request(h);
		break;
	case HEAD_MORE:
		h->error = 400;
		h->why = "invalid request head";
		break;
	case HEAD_ERROR:
		break;
	}
}

static void stream_reset(struct h2_stream *st, uint32_t code, const char *why);

/* A malformed request: the stream is reset (RFC 9113 section 8.1.1). */
static void
stream_refuse(struct h2_stream *st, const char *why)
{
	log_info("client %s: HTTP/2 stream %d: malformed request: %s", st->sess->c.addr, st->id,
		 why);
	stream_reset(st, NGHTTP2_PROTOCOL_ERROR, why);
}

void
h2_stream_start(struct h2_stream *st, bool end_stream)
{
	struct h2_session *s = st->sess;
	struct head *h = st->head;
	struct config *cfg = st->cfg;

	if (st->bad != NULL) {
		stream_refuse(st, st->bad);
		return;
	}
	if (st->too_large) {
		metrics_add(s->c.w->metrics, METRICS_H2_HEADER_LIST, 1);
		h->error = 431;
		h->why = "header section over limits.header_size or header_count";
		h->too_large = true;
	} else {
		head_build(st);
	}
	st->remote_closed = end_stream;
	if (h->error == 0) {
		/*
		 * The framing is the stream's: DATA frames until END_STREAM,
		 * forwarded chunked unless a content-length says how many
		 * (nghttp2 holds the DATA to it, so "0" means no body at all).
		 */
		if (end_stream)
			h->body = HEAD_BODY_NONE;
		else if (!h->framing.has_length)
			h->body = HEAD_BODY_CHUNKED;
		h->keep_alive = true;
	}
	st->head = NULL;
	st->cfg = NULL;
	st->started = true;
	s->nrequests++;
	metrics_add(s->c.w->metrics, METRICS_H2_STREAMS, 1);
	s->c.ev->start(&st->st, h, cfg);
	h2_schedule(s);
}

void
h2_stream_data(struct h2_stream *st, const uint8_t *data, size_t len)
{
	evbuffer_add(st->in, data, len);
	st->bytes_in += len;
	st->body_pending = true;
	h2_schedule(st->sess);
}

void
h2_stream_report(struct h2_stream *st)
{
	const struct stream_events *ev = st->sess->c.ev;

	if (st->body_pending && st->st.ex != NULL && !st->paused) {
		st->body_pending = false;
		ev->body(st->st.ex);
	}
	if (st->writable_pending && st->st.ex != NULL) {
		st->writable_pending = false;
		ev->writable(st->st.ex);
	}
}

/* Resets the stream with `code`; its exchange (if any) lets go first. */
static void
stream_reset(struct h2_stream *st, uint32_t code, const char *why)
{
	stream_let_go(st, why);
	if (st->reset)
		return;
	st->reset = true;
	nghttp2_submit_rst_stream(st->sess->ng, NGHTTP2_FLAG_NONE, st->id, code);
	h2_schedule(st->sess);
}

void
h2_stream_check(struct h2_stream *st)
{
	struct h2_session *s = st->sess;
	int32_t win;

	/* Response bytes wait and the client's window has not let any out. */
	if (evbuffer_get_length(st->out) > 0 && st->bytes_out == st->out_mark && !st->reset) {
		win = nghttp2_session_get_stream_remote_window_size(s->ng, st->id);
		if (win <= 0 || nghttp2_session_get_remote_window_size(s->ng) <= 0) {
			metrics_add(s->c.w->metrics, METRICS_H2_STALL, 1);
			log_info("client %s: HTTP/2 stream %d: zero window for "
				 "timeouts.client_body: RST_STREAM CANCEL",
				 s->c.addr, st->id);
			stream_reset(st, NGHTTP2_CANCEL, "send stall");
			return;
		}
	}
	/* The exchange waits for request body bytes that do not come. */
	if (st->started && !st->remote_closed && !st->paused && st->st.ex != NULL &&
	    st->bytes_in == st->in_mark && evbuffer_get_length(st->in) == 0)
		s->c.ev->timeout(st->st.ex);
	st->in_mark = st->bytes_in;
	st->out_mark = st->bytes_out;
}

/* --- the response ---------------------------------------------------------------- */

void
h2_stream_take(struct h2_stream *st, struct evbuffer *out, size_t n)
{
	evbuffer_remove_buffer(st->out, out, n);
	st->bytes_out += n;
	/* The exchange resumes its upstream at a mark of its own (limits.buffer). */
	if (st->st.ex != NULL && !st->writable_pending) {
		st->writable_pending = true;
		h2_schedule(st->sess);
	}
}

ssize_t
h2_stream_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
		  nghttp2_data_source *src, void *arg)
{
	struct h2_stream *st = src->ptr;
	size_t n = evbuffer_get_length(st->out);

	(void)ng;
	(void)id;
	(void)buf;
	(void)arg;
	if (n == 0 && !st->ended) {
		st->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n > length)
		n = length;
	*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (st->ended && n == evbuffer_get_length(st->out))
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* More response bytes (or the end) for a data source nghttp2 put aside. */
static void
stream_resume(struct h2_stream *st)
{
	if (st->deferred) {
		st->deferred = false;
		nghttp2_session_resume_data(st->sess->ng, st->id);
	}
	h2_schedule(st->sess);
}

/* Room for `n` header fields in the session's scratch. */
static nghttp2_nv *
nva_reserve(struct h2_session *s, size_t n)
{
	if (n > s->nva_cap)
		s->nva = xgrow(s->nva, &s->nva_cap, n, sizeof(*s->nva));
	return s->nva;
}

static void
nv_set(nghttp2_nv *nv, const char *name, size_t nlen, const char *value, size_t vlen)
{
	*nv = (nghttp2_nv){(uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value, nlen, vlen,
			   NGHTTP2_NV_FLAG_NONE};
}

/*
 * The response head's fields, names in lower case, in nva from index 1
 * (0 is :status, set by the caller from `status_text`); returns the count.
 */
static size_t
nva_fill(struct h2_session *s, const struct stream_response *r, char *status_text,
	 char *length_text)
{
	nghttp2_nv *nva = nva_reserve(s, r->nfields + 2);
	size_t n = 1, off = 0;

	buf_reset(&s->names);
	for (size_t i = 0; i < r->nfields; i++)
		buf_add(&s->names, r->fields[i].name, r->fields[i].name_len);
	for (size_t i = 0; i < s->names.len; i++)
		s->names.data[i] = ascii_lower(s->names.data[i]);
	snprintf(status_text, 4, "%03d", r->status);
	nv_set(&nva[0], ":status", 7, status_text, 3);
	for (size_t i = 0; i < r->nfields; i++) {
		const struct stream_field *f = &r->fields[i];
		const char *name = s->names.data + off;

		/* End-to-end fields only (stream.h): relay.c dropped the hop-by-hop ones. */
		off += f->name_len;
		nv_set(&nva[n++], name, f->name_len, f->value, f->value_len);
	}
	if (r->length >= 0 && r->status >= 200 && r->status != 204 && r->status != 304) {
		int k = snprintf(length_text, 24, "%lld", (long long)r->length);

		nv_set(&nva[n++], "content-length", 14, length_text, (size_t)k);
	}
	return n;
}

static void
h2_send_head(struct stream *s, const struct stream_response *r)
{
	struct h2_stream *st = stream_of(s);
	struct h2_session *sess = st->sess;
	nghttp2_data_provider dp = {.source.ptr = st, .read_callback = h2_stream_read_cb};
	char status[8], length[24];
	size_t n;

	if (r->upgrade || r->status == 101)
		return; /* no tunnel on an HTTP/2 stream: never asked for (h2.h) */
	n = nva_fill(sess, r, status, length);
	if (r->status < 200) {
		nghttp2_submit_headers(sess->ng, NGHTTP2_FLAG_NONE, st->id, NULL, sess->nva, n,
				       NULL);
	} else {
		st->ended = r->no_body;
		nghttp2_submit_response(sess->ng, st->id, sess->nva, n, r->no_body ? NULL : &dp);
	}
	h2_schedule(sess);
}

static void
h2_send_body(struct stream *s, struct evbuffer *data, size_t len)
{
	struct h2_stream *st = stream_of(s);

	if (len == 0)
		return;
	evbuffer_remove_buffer(data, st->out, len);
	stream_resume(st);
}

static void
h2_end(struct stream *s)
{
	struct h2_stream *st = stream_of(s);

	st->st.ex = NULL;
	st->ended = true;
	stream_resume(st);
}

static uint64_t
h2_error(struct stream *s, int status, const char *reqid, bool close, bool head_only)
{
	struct h2_stream *st = stream_of(s);
	char body[ERRPAGE_BODY_MAX], retry[16] = "";
	struct stream_field f[ERRPAGE_FIELDS_MAX];
	size_t blen = errpage_body(body, sizeof(body), status, reqid);
	struct stream_response r = {
	    .status = status, .fields = f, .length = (int64_t)blen, .no_body = head_only};

	(void)close; /* the stream's framing is never in doubt */
	st->st.ex = NULL;
	if (s->retry_after != 0) {
		snprintf(retry, sizeof(retry), "%u", s->retry_after);
		s->retry_after = 0;
	}
	r.nfields = errpage_fields(f, reqid, retry);
	if (!head_only)
		evbuffer_add(st->out, body, blen);
	h2_send_head(s, &r);
	st->ended = true; /* the whole page is queued */
	return head_only ? 0 : blen;
}

static void
h2_abort(struct stream *s, const char *reason)
{
	struct h2_stream *st = stream_of(s);

	st->st.ex = NULL;
	stream_reset(st, NGHTTP2_INTERNAL_ERROR, reason);
}

static size_t
h2_pending(struct stream *s)
{
	return evbuffer_get_length(stream_of(s)->out);
}

static enum stream_body
h2_read_body(struct stream *s, struct evbuffer *dst, size_t *moved)
{
	struct h2_stream *st = stream_of(s);
	size_t n = evbuffer_get_length(st->in);

	*moved = n;
	if (n > 0) {
		evbuffer_add_buffer(dst, st->in);
		/* Read by the exchange: the client may send that much more. */
		nghttp2_session_consume_stream(st->sess->ng, st->id, n);
		h2_schedule(st->sess);
	}
	return st->remote_closed ? STREAM_BODY_END : STREAM_BODY_MORE;
}

static void
h2_pause_body(struct stream *s, bool pause)
{
	struct h2_stream *st = stream_of(s);

	st->paused = pause;
	if (!pause) {
		st->body_pending = true;
		h2_schedule(st->sess);
	}
}

static void
h2_continue(struct stream *s)
{
	struct h2_stream *st = stream_of(s);
	nghttp2_nv nv;

	nv_set(&nv, ":status", 7, "100", 3);
	nghttp2_submit_headers(st->sess->ng, NGHTTP2_FLAG_NONE, st->id, NULL, &nv, 1, NULL);
	h2_schedule(st->sess);
}

static void
h2_tunnel(struct stream *s, uint64_t idle_ms)
{
	(void)idle_ms;
	h2_abort(s, "no tunnel on HTTP/2");
}

static bool
h2_flush(struct stream *s)
{
	struct h2_stream *st = stream_of(s);

	h2_schedule(st->sess);
	return evbuffer_get_length(st->out) < STREAM_LOW_WATER;
}

static const struct stream_ops h2_stream_ops = {
    .send_head = h2_send_head,
    .send_body = h2_send_body,
    .end = h2_end,
    .error = h2_error,
    .abort = h2_abort,
    .pending = h2_pending,
    .read_body = h2_read_body,
    .pause_body = h2_pause_body,
    .continue_100 = h2_continue,
    .tunnel = h2_tunnel,
    .flush = h2_flush,
};
