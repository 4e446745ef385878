/*
 * h2.c: HTTP/2 sessions (h2.h).  Owns the nghttp2 server session of one
 * client connection: its settings and options, nghttp2's callbacks, the
 * connection's input (nghttp2_session_mem_recv) and output (frames written
 * into the connection's bufferevent, bodies moved from the streams'
 * buffers without a copy, at most H2_OUT_HIGH ahead of the socket), the
 * flood defenses, the idle and stall timer, the graceful stop (GOAWAY with
 * the last stream id) and the session's end.
 *
 * Nothing is sent from inside nghttp2 or from a stream operation: they
 * mark what is due and schedule the deferred pass (a zero-timeout event),
 * which reports to the exchanges first and then sends, so nghttp2 is never
 * entered again from one of its own callbacks and an exchange never hears
 * of its stream closing in the middle of one of its calls.
 */
#include <errno.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "h2_int.h"
#include "portico/config.h"
#include "portico/log.h"
#include "portico/metrics.h"

static struct h2_session *
sess_of(void *arg)
{
	struct h2_session *s = arg;

	PORTICO_ASSERT(s->magic == H2_SESSION_MAGIC);
	return s;
}

static struct evbuffer *
sess_out(const struct h2_session *s)
{
	return bufferevent_get_output(s->c.bev);
}

static const char *
error_name(uint32_t code)
{
	return code < ARRAY_SIZE(metrics_h2_error_names) ? metrics_h2_error_names[code] : "UNKNOWN";
}

static void h2_after(struct h2_session *s);

void
h2_schedule(struct h2_session *s)
{
	event_active(s->work, EV_TIMEOUT, 0);
}

void
h2_defend(struct h2_session *s, int counter, uint32_t code, const char *why)
{
	if (s->defended)
		return;
	s->defended = true;
	metrics_add(s->c.w->metrics, (enum metrics_counter)counter, 1);
	log_warn("client %s: HTTP/2 %s: GOAWAY %s", s->c.addr, why, error_name(code));
	s->why = why;
	nghttp2_session_terminate_session(s->ng, code);
	h2_schedule(s);
}

/* --- flood counters ------------------------------------------------------------- */

/* Counts one frame of a kind; true when the kind is over its limit in this interval. */
static bool
flood_count(struct h2_session *s, unsigned *n, unsigned max)
{
	uint64_t now = worker_mono_us() / 1000;

	if (now - s->window_ms >= H2_FLOOD_INTERVAL) {
		s->window_ms = now;
		s->nrst = s->nping = s->nsettings = s->nempty = s->nprio = 0;
	}
	return ++*n > max;
}

/* Frames that cost the server more than the client: counted, over a limit a GOAWAY. */
static int
flood_check(struct h2_session *s, const nghttp2_frame *f)
{
	const char *why = NULL;
	int k = 0;

	switch (f->hd.type) {
	case NGHTTP2_RST_STREAM:
		if (flood_count(s, &s->nrst, H2_RST_MAX))
			why = "rapid reset (RST_STREAM flood)", k = METRICS_H2_RAPID_RESET;
		break;
	case NGHTTP2_PING:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && flood_count(s, &s->nping, H2_PING_MAX))
			why = "PING flood", k = METRICS_H2_PING_FLOOD;
		break;
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK) &&
		    flood_count(s, &s->nsettings, H2_SETTINGS_MAX))
			why = "SETTINGS flood", k = METRICS_H2_SETTINGS_FLOOD;
		break;
	case NGHTTP2_DATA:
		if (f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
		    flood_count(s, &s->nempty, H2_EMPTY_MAX))
			why = "empty DATA flood", k = METRICS_H2_EMPTY_DATA;
		break;
	case NGHTTP2_PRIORITY:
		if (flood_count(s, &s->nprio, H2_PING_MAX))
			why = "PRIORITY flood", k = METRICS_H2_OTHER_FLOOD;
		break;
	default:
		break;
	}
	if (why == NULL)
		return 0;
	h2_defend(s, k, NGHTTP2_ENHANCE_YOUR_CALM, why);
	return NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* --- nghttp2 callbacks ---------------------------------------------------------- */

static struct h2_stream *
stream_get(struct h2_session *s, int32_t id)
{
	return nghttp2_session_get_stream_user_data(s->ng, id);
}

static int
on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2_session *s = sess_of(arg);

	(void)ng;
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	s->in_trailers = f->headers.cat != NGHTTP2_HCAT_REQUEST;
	if (s->in_trailers)
		return 0;
	buf_reset(&s->method);
	buf_reset(&s->path);
	buf_reset(&s->authority);
	buf_reset(&s->host);
	buf_reset(&s->fields);
	buf_reset(&s->cookie);
	s->has_authority = false;
	nghttp2_session_set_stream_user_data(s->ng, f->hd.stream_id,
					     h2_stream_new(s, f->hd.stream_id));
	return 0;
}

static int
on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
	  const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct h2_session *s = sess_of(arg);
	struct h2_stream *st;

	(void)ng;
	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS || s->in_trailers)
		return 0;
	st = stream_get(s, f->hd.stream_id);
	if (st != NULL)
		h2_stream_header(st, name, nlen, value, vlen);
	return 0;
}

static int
on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2_session *s = sess_of(arg);
	bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
	struct h2_stream *st;

	(void)ng;
	if (flood_check(s, f) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	st = stream_get(s, f->hd.stream_id);
	if (st == NULL)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		h2_stream_start(st, end);
		return 0;
	}
	if (end) {
		st->remote_closed = true;
		st->body_pending = true;
		h2_schedule(s);
	}
	return 0;
}

static int
on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
	      void *arg)
{
	struct h2_session *s = sess_of(arg);
	struct h2_stream *st = stream_get(s, id);

	(void)flags;
	/* The connection's window is the streams' business only: given back at once. */
	nghttp2_session_consume_connection(ng, len);
	if (st == NULL || !st->started || st->st.ex == NULL) {
		nghttp2_session_consume_stream(ng, id, len);
		return 0;
	}
	h2_stream_data(st, data, len);
	return 0;
}

static int
on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
	struct h2_session *s = sess_of(arg);
	struct h2_stream *st = stream_get(s, id);

	(void)ng;
	if (st != NULL)
		h2_stream_closed(st, code);
	return 0;
}

static int
on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2_session *s = sess_of(arg);
	struct metrics *m = s->c.w->metrics;
	struct h2_stream *st;

	switch (f->hd.type) {
	case NGHTTP2_RST_STREAM:
		if (f->rst_stream.error_code < ARRAY_SIZE(metrics_h2_error_names))
			metrics_add(m, METRICS_H2_RST_SENT + f->rst_stream.error_code, 1);
		if (f->rst_stream.error_code == NGHTTP2_PROTOCOL_ERROR) {
			metrics_add(m, METRICS_H2_MALFORMED, 1);
			st = stream_get(s, f->hd.stream_id);
			if (st == NULL || st->bad == NULL) /* else logged with its reason */
				log_info("client %s: HTTP/2 stream %d: malformed request: "
					 "RST_STREAM PROTOCOL_ERROR",
					 s->c.addr, f->hd.stream_id);
		}
		break;
	case NGHTTP2_GOAWAY:
		if (f->goaway.error_code < ARRAY_SIZE(metrics_h2_error_names))
			metrics_add(m, METRICS_H2_GOAWAY_SENT + f->goaway.error_code, 1);
		break;
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		/*
		 * The response is complete while the request is not: the rest of
		 * it is not wanted (RFC 9113 section 8.1).
		 */
		st = stream_get(s, f->hd.stream_id);
		if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && st != NULL && !st->remote_closed &&
		    !st->reset) {
			st->reset = true;
			nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
						  NGHTTP2_NO_ERROR);
		}
		break;
	default:
		break;
	}
	return 0;
}

static ssize_t
on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *arg)
{
	struct h2_session *s = sess_of(arg);
	struct evbuffer *out = sess_out(s);

	(void)ng;
	(void)flags;
	if (evbuffer_get_length(out) >= H2_OUT_HIGH)
		return NGHTTP2_ERR_WOULDBLOCK;
	evbuffer_add(out, data, len);
	return (ssize_t)len;
}

static int
on_send_data(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd, size_t length,
	     nghttp2_data_source *src, void *arg)
{
	struct h2_session *s = sess_of(arg);
	struct evbuffer *out = sess_out(s);

	(void)ng;
	(void)f; /* no padding: no select_padding callback is set */
	if (evbuffer_get_length(out) >= H2_OUT_HIGH)
		return NGHTTP2_ERR_WOULDBLOCK;
	evbuffer_add(out, framehd, 9);
	h2_stream_take(src->ptr, out, length);
	return 0;
}

static nghttp2_session_callbacks *
callbacks_new(void)
{
	nghttp2_session_callbacks *cb;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		fatal("nghttp2: out of memory");
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	return cb;
}

/* --- sending and the deferred pass ------------------------------------------------- */

static void
sess_close(struct h2_session *s, const char *why)
{
	if (s->closing)
		return;
	s->closing = true;
	s->c.owner->close(s->c.owner_arg, why);
}

/* Frames into the output, and the output onto the socket, while there is room. */
static void
h2_send(struct h2_session *s)
{
	struct evbuffer *out = sess_out(s);
	int rv;

	for (int round = 0; round < 64; round++) {
		rv = nghttp2_session_send(s->ng);
		if (rv != 0) {
			s->why = nghttp2_strerror(rv);
			sess_close(s, s->why);
			return;
		}
		if (!s->c.tls)
			worker_flush(s->c.bev, s->c.fd);
		if (s->c.tls || evbuffer_get_length(out) > 0 || !nghttp2_session_want_write(s->ng))
			break;
	}
}

static void
arm_timer(struct h2_session *s, bool streams)
{
	const struct config *cfg = s->c.w->cfg;
	uint64_t ms = streams ? cfg->timeouts.client_body : cfg->timeouts.client_idle;
	struct timeval tv;

	tv_from_ms(&tv, ms);
	s->timer_streams = streams;
	evtimer_add(s->timer, &tv);
}

/* Reports to the exchanges, sends, and ends the session when it is over. */
static void
h2_after(struct h2_session *s)
{
	struct h2_stream *st, *next;

	if (s->closing)
		return;
	for (st = s->streams; st != NULL; st = next) {
		next = st->next;
		h2_stream_report(st);
	}
	h2_send(s);
	if (s->closing)
		return;
	if (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng)) {
		sess_close(s, s->why ? s->why : "HTTP/2 session over");
		return;
	}
	if (s->draining && s->nstreams == 0 && !nghttp2_session_want_write(s->ng)) {
		sess_close(s, "shutdown");
		return;
	}
	if (s->timer_streams != (s->nstreams > 0) || !evtimer_pending(s->timer, NULL))
		arm_timer(s, s->nstreams > 0);
}

static void
work_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	h2_after(sess_of(arg));
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct h2_session *s = sess_of(arg);
	struct h2_stream *st, *next;

	(void)fd;
	(void)what;
	if (s->nstreams == 0) {
		if (!s->draining) {
			metrics_add(s->c.w->metrics, METRICS_H2_IDLE, 1);
			log_debug("client %s: HTTP/2 idle timeout", s->c.addr);
		}
		s->why = "idle timeout";
		nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
		h2_after(s);
		return;
	}
	for (st = s->streams; st != NULL; st = next) {
		next = st->next;
		h2_stream_check(st);
	}
	arm_timer(s, true);
	h2_after(s);
}

/* --- the session ---------------------------------------------------------------- */

static nghttp2_option *
options_new(void)
{
	nghttp2_option *o;

	if (nghttp2_option_new(&o) != 0)
		fatal("nghttp2: out of memory");
	/* Request bodies are acknowledged as the exchanges read them (h2_stream.c). */
	nghttp2_option_set_no_auto_window_update(o, 1);
	nghttp2_option_set_max_deflate_dynamic_table_size(o, H2_HPACK_TABLE);
	nghttp2_option_set_no_closed_streams(o, 1);
	/* nghttp2's own limits stay as a second line behind flood_check(). */
	nghttp2_option_set_max_outbound_ack(o, 1000);
	nghttp2_option_set_max_settings(o, 32);
	nghttp2_option_set_max_continuations(o, 8);
	return o;
}

static int
submit_settings(struct h2_session *s)
{
	const struct config *cfg = s->c.w->cfg;
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
	    {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, H2_HPACK_TABLE},
	    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->limits.header_size},
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	    {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
	};

	return nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE(iv));
}

struct h2_session *
h2_session_new(const struct h2_conn *conn)
{
	struct h2_session *s = xcalloc(1, sizeof(*s));
	nghttp2_session_callbacks *cb = callbacks_new();
	nghttp2_option *o = options_new();
	int rv;

	s->magic = H2_SESSION_MAGIC;
	s->c = *conn;
	rv = nghttp2_session_server_new2(&s->ng, cb, s, o);
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(o);
	if (rv != 0 || submit_settings(s) != 0)
		fatal("nghttp2: cannot create a session");
	s->work = event_new(conn->w->base, -1, 0, work_cb, s);
	s->timer = evtimer_new(conn->w->base, timer_cb, s);
	s->window_ms = worker_mono_us() / 1000;
	metrics_add(conn->w->metrics, METRICS_H2_CONNECTIONS, 1);
	log_debug("client %s: HTTP/2", conn->addr);
	return s;
}

void
h2_session_detach(struct h2_session *s, const char *reason)
{
	s->closing = true;
	for (struct h2_stream *st = s->streams; st != NULL; st = st->next)
		h2_stream_detach(st, reason);
}

void
h2_session_free(struct h2_session *s)
{
	struct h2_stream *st, *next;

	if (s == NULL)
		return;
	PORTICO_ASSERT(s->magic == H2_SESSION_MAGIC);
	for (st = s->streams; st != NULL; st = next) {
		next = st->next;
		h2_stream_free(st);
	}
	nghttp2_session_del(s->ng);
	buf_free(&s->text);
	event_free(s->work);
	event_free(s->timer);
	buf_free(&s->method);
	buf_free(&s->path);
	buf_free(&s->authority);
	buf_free(&s->host);
	buf_free(&s->fields);
	buf_free(&s->cookie);
	buf_free(&s->names);
	free(s->nva);
	s->magic = 0;
	free(s);
}

/* mem_recv failed: the session cannot go on; a GOAWAY when one still makes sense. */
static void
recv_failed(struct h2_session *s, ssize_t rv)
{
	if (s->defended)
		return;
	switch (rv) {
	case NGHTTP2_ERR_CALLBACK_FAILURE: /* a defense already answered */
		return;
	case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
		h2_defend(s, METRICS_H2_CONTINUATION, NGHTTP2_ENHANCE_YOUR_CALM,
			  "CONTINUATION flood");
		return;
	case NGHTTP2_ERR_FLOODED:
		h2_defend(s, METRICS_H2_OTHER_FLOOD, NGHTTP2_ENHANCE_YOUR_CALM,
			  "flood of frames that need an answer");
		return;
	case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
		s->why = "invalid connection preface";
		break;
	default:
		s->why = nghttp2_strerror((int)rv);
		break;
	}
	log_info("client %s: HTTP/2 connection error: %s", s->c.addr, s->why);
	metrics_add(s->c.w->metrics, METRICS_H2_MALFORMED, 1);
	nghttp2_session_terminate_session(s->ng, NGHTTP2_PROTOCOL_ERROR);
}

void
h2_session_read(struct h2_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->c.bev);
	struct evbuffer_iovec v[4];
	ssize_t rv = 0;
	int n;

	while (!s->closing && evbuffer_get_length(in) > 0 && rv >= 0) {
		n = evbuffer_peek(in, -1, NULL, v, ARRAY_SIZE(v));
		n = n > (int)ARRAY_SIZE(v) ? (int)ARRAY_SIZE(v) : n;
		for (int i = 0; i < n && rv >= 0; i++) {
			rv = nghttp2_session_mem_recv(s->ng, v[i].iov_base, v[i].iov_len);
			if (rv >= 0)
				evbuffer_drain(in, v[i].iov_len);
		}
	}
	if (rv < 0) {
		evbuffer_drain(in, evbuffer_get_length(in));
		recv_failed(s, rv);
	}
	h2_after(s);
}

void
h2_session_writable(struct h2_session *s)
{
	h2_after(s);
}

bool
h2_session_wants_read(const struct h2_session *s)
{
	/*
	 * Reading never grows the output beyond H2_OUT_HIGH: nghttp2 keeps
	 * the frames it owes (bounded by its max_outbound_ack) until on_send
	 * has room, and every input byte is consumed at once.
	 */
	return !s->closing;
}

void
h2_session_drain(struct h2_session *s)
{
	if (s->draining || s->closing)
		return;
	s->draining = true;
	nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
			      nghttp2_session_get_last_proc_stream_id(s->ng), NGHTTP2_NO_ERROR,
			      NULL, 0);
	h2_schedule(s);
}

unsigned
h2_session_requests(const struct h2_session *s)
{
	return s != NULL ? s->nrequests : 0;
}
