/*
 * relay.c: the response toward the client (SPEC sections 5 and 6).  The
 * upstream's head, parsed and checked by the upstream side, is judged here
 * (1xx rules, 101 only after an upgrade request), its end-to-end fields
 * rewritten (ProxyPassReverse, cookies, and what body rewriting changes) and
 * handed to the client side, which frames it for its protocol.  Body bytes
 * pass untouched, or through the route's filter chain (bodyfilter.h) when
 * the body is rewritten; reading the upstream pauses while the client's
 * output holds limits.buffer bytes, and each read is sized to the room left.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "exchange_int.h"
#include "portico/bodyfilter.h"
#include "portico/config.h"
#include "portico/filter.h"
#include "portico/log.h"
#include "portico/reverse.h"
#include "portico/route.h"

/* --- the fields ----------------------------------------------------------------- */

/* What reverse.h rewrites in a field, from its classification (http.h). */
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

/* The fields toward the client: a list with room made first, rewritten values kept in `scratch`. */
struct field_list {
	struct worker *w;
	size_t n;
	bool scratch; /* a value lies in `scratch`: its offset is fixed up at the end */
};

/* Room for `n` fields: the response's own, and the two body rewriting may add. */
static void
list_reserve(struct worker *w, size_t n)
{
	size_t cap = w->fields_cap;

	if (n <= cap)
		return;
	w->fields = xgrow(w->fields, &cap, n - 1, sizeof(*w->fields));
	w->field_off = xrealloc(w->field_off, cap * sizeof(*w->field_off));
	w->fields_cap = cap;
}

static inline void
list_add(struct field_list *l, const char *name, size_t nlen, const char *v, size_t vlen,
	 size_t off)
{
	struct worker *w = l->w;

	PORTICO_ASSERT(l->n < w->fields_cap);
	w->fields[l->n] = (struct stream_field){name, nlen, v, vlen};
	w->field_off[l->n] = off;
	l->n++;
}

/* A value written into `scratch` from `start` on: its offset, fixed up once the list is done. */
static void
list_add_scratch(struct field_list *l, const char *name, size_t nlen, size_t start)
{
	l->scratch = true;
	list_add(l, name, nlen, NULL, l->w->scratch.len - start, start);
}

/* A field as it came, or rewritten (ProxyPassReverse, cookies). */
static void
add_rewritten(struct exchange *ex, struct field_list *l, const struct head *h,
	      const struct head_field *f, const struct reverse_ctx *ctx)
{
	const char *name = head_name(h, f), *v = head_value(h, f);
	const struct config *cfg = ex->cfg;
	bool cookies = ex->route && ex->route->cookies;
	enum reverse_kind kind = REVERSE_NONE;
	struct buf *scratch = &ex->w->scratch;
	size_t start = scratch->len;
	int changed = 0;

	if (cfg->nreverse > 0 || cookies)
		kind = reverse_kind_of(f->id);
	if (kind == REVERSE_COOKIE && cookies)
		changed =
		    reverse_cookie(cfg->reverse, cfg->nreverse, v, f->value_len, ctx, scratch);
	else if (kind != REVERSE_NONE && kind != REVERSE_COOKIE)
		changed = reverse_header(cfg->reverse, cfg->nreverse, kind, v, f->value_len, ctx,
					 scratch);
	if (changed == 1) {
		list_add_scratch(l, name, f->name_len, start);
		return;
	}
	scratch->len = start;
	list_add(l, name, f->name_len, v, f->value_len, SIZE_MAX);
}

static bool
field_passes(const struct head *h, const struct head_field *f)
{
	if (f->id == HTTP_HDR_UPGRADE && h->status == 101)
		return true;
	if (http_header_is_hop_by_hop(f->id) || f->id == HTTP_HDR_CONTENT_LENGTH)
		return false;
	return !head_named_in_connection(h, f);
}

/*
 * The fields body rewriting changes (bodyfilter.h): Content-Encoding is
 * stated again after the others, Accept-Ranges dropped, a strong ETag made
 * weak, Vary made to list Accept-Encoding.  True when `f` was handled here.
 */
static bool
add_filtered(struct exchange *ex, struct field_list *l, const struct head *h,
	     const struct head_field *f)
{
	const char *name = head_name(h, f), *v = head_value(h, f);
	struct buf *scratch = &ex->w->scratch;
	size_t start = scratch->len;

	switch (f->id) {
	case HTTP_HDR_CONTENT_ENCODING:
		return true;
	case HTTP_HDR_ACCEPT_RANGES:
		return ex->bf_drop_ranges;
	case HTTP_HDR_ETAG:
		if (!ex->bf_weaken_etag)
			return false;
		bodyfilter_weaken_etag(v, f->value_len, scratch);
		break;
	case HTTP_HDR_VARY:
		if (!ex->bf_vary || ex->bf_vary_done)
			return false;
		bodyfilter_vary_merge(v, f->value_len, scratch);
		ex->bf_vary_done = true;
		break;
	default:
		return false;
	}
	list_add_scratch(l, name, f->name_len, start);
	return true;
}

void
relay_fields(struct exchange *ex, const struct head *h, struct stream_response *r)
{
	const struct config *cfg = ex->cfg;
	const struct head *rq = ex->req;
	struct reverse_ctx ctx = {.scheme = ex->s->scheme, .host = ""};
	struct field_list l = {.w = ex->w};
	struct worker *w = ex->w;

	if (cfg->server_name) {
		ctx.host = cfg->server_name;
		ctx.hostlen = strlen(cfg->server_name);
	} else if (rq->authority_len > 0) {
		ctx.host = rq->bytes.data + rq->authority;
		ctx.hostlen = rq->authority_len;
	}
	buf_reset(&w->scratch);
	list_reserve(w, h->nfields + 2);
	for (unsigned i = 0; i < h->nfields; i++) {
		const struct head_field *f = &h->fields[i];

		if (!field_passes(h, f) || (ex->bf_headers && add_filtered(ex, &l, h, f)))
			continue;
		add_rewritten(ex, &l, h, f, &ctx);
	}
	if (ex->bf_headers && ex->bf_encoding != NULL)
		list_add(&l, "Content-Encoding", 16, ex->bf_encoding, strlen(ex->bf_encoding),
			 SIZE_MAX);
	if (ex->bf_headers && ex->bf_vary && !ex->bf_vary_done)
		list_add(&l, "Vary", 4, "Accept-Encoding", 15, SIZE_MAX);
	for (size_t i = 0; l.scratch && i < l.n; i++)
		if (w->field_off[i] != SIZE_MAX)
			w->fields[i].value = w->scratch.data + w->field_off[i];
	r->status = h->status;
	r->reason = h->reason_len > 0 ? h->bytes.data + h->reason : NULL;
	r->reason_len = h->reason_len;
	r->fields = w->fields;
	r->nfields = l.n;
}

/* --- the head ---------------------------------------------------------------------- */

/* Content-Type, and every Content-Encoding joined with ", " into `ce`. */
static void
response_types(const struct head *h, const char **ct, size_t *ctlen, struct buf *ce)
{
	for (unsigned i = 0; i < h->nfields; i++) {
		const struct head_field *f = &h->fields[i];

		if (f->id == HTTP_HDR_CONTENT_TYPE && *ct == NULL) {
			*ct = head_value(h, f);
			*ctlen = f->value_len;
		} else if (f->id == HTTP_HDR_CONTENT_ENCODING) {
			if (ce->len > 0)
				buf_add(ce, ", ", 2);
			buf_add(ce, head_value(h, f), f->value_len);
		}
	}
}

/*
 * Body rewriting (SPEC section 6.3) on an html route: installs the filter
 * chain for a body, or only notes the header changes for HEAD and 304.
 */
static void
setup_filter(struct exchange *ex, const struct head *h)
{
	const struct route *r = ex->route;
	struct buf *ce = &ex->w->scratch;
	struct bodyfilter_result res;
	const char *ct = NULL, *ae;
	size_t ctlen = 0, aelen;
	bool gz;

	if (!r->html || h->status == 204 || h->status == 206)
		return;
	memset(&res, 0, sizeof(res));
	buf_reset(ce);
	response_types(h, &ct, &ctlen, ce);
	ae = head_value_at(ex->req, ex->req->accept_encoding, &aelen);
	gz = bodyfilter_accepts_gzip(ae, aelen);
	if (ex->req->method == HTTP_HEAD || h->status == 304) {
		if (!bodyfilter_headers(r, ct, ctlen, ce->len ? ce->data : NULL, ce->len, gz, &res))
			return;
	} else if (bodyfilter_setup(r, ct, ctlen, ce->len ? ce->data : NULL, ce->len, gz, &res) ==
		       -1 ||
		   res.filter == NULL) {
		return;
	}
	ex->filter = res.filter;
	ex->bf_headers = true;
	ex->bf_encoding = res.content_encoding;
	ex->bf_weaken_etag = res.weaken_etag;
	ex->bf_drop_ranges = res.drop_accept_ranges;
	ex->bf_vary = res.vary_accept_encoding;
}

/* The final head toward the client; the upstream then reads the body as framed. */
static enum upstream_next
relay_final(struct exchange *ex, struct head *h)
{
	struct stream_response r;

	setup_filter(ex, h);
	if (head_response_body(h, ex->req->method == HTTP_HEAD) == -1) {
		ex_error(ex, 502, "invalid response framing");
		return UPSTREAM_NEXT_STOP;
	}
	relay_fields(ex, h, &r);
	if (h->body == HEAD_BODY_NONE) {
		/* HEAD and 304 say what a GET would get; a 204 has no length. */
		r.no_body = true;
		r.length = h->framing.has_length && h->status != 204 && !ex->bf_headers
			       ? (int64_t)h->length
			       : -1;
	} else {
		r.no_body = false;
		r.length =
		    h->body == HEAD_BODY_LENGTH && ex->filter == NULL ? (int64_t)h->length : -1;
	}
	r.upgrade = false;
	r.close = ex->close || ex->rq != EXCHANGE_REQ_SENT;
	ex->status = h->status;
	ex_set_phase(ex, ex->rq, EXCHANGE_RESP_BODY);
	stream_send_head(ex->s, &r);
	return UPSTREAM_NEXT_BODY;
}

enum upstream_next
relay_head(struct exchange *ex, struct head *h)
{
	struct stream_response r = {0};

	if (h->status == 101) {
		if (!ex->req->upgrade) {
			ex_error(ex, 502, "101 without an upgrade request");
			return UPSTREAM_NEXT_STOP;
		}
		return tunnel_start(ex, h);
	}
	if (h->status >= 200)
		return relay_final(ex, h);
	if (++ex->ninterim > EXCHANGE_MAX_INTERIM) {
		ex_error(ex, 502, "too many interim responses");
		return UPSTREAM_NEXT_STOP;
	}
	/* 100 is not forwarded (portico answered the client itself); 103 is. */
	if (h->status == 103) {
		relay_fields(ex, h, &r);
		r.no_body = true;
		r.length = -1;
		stream_send_head(ex->s, &r);
	}
	return UPSTREAM_NEXT_HEAD;
}

/* --- the body ------------------------------------------------------------------------ */

/* Passes what the filter chain produced to the client. */
static void
send_filtered(struct exchange *ex)
{
	struct evbuffer *out = ex->w->filter_out;
	size_t len = evbuffer_get_length(out);

	if (len == 0)
		return;
	ex->bytes_sent += len;
	stream_send_body(ex->s, out, len);
}

/* `len` bytes of `data` through the filter chain (HTML rewriting, gzip). */
static void
filter_bytes(struct exchange *ex, struct evbuffer *data, size_t len)
{
	struct evbuffer *out = ex->w->filter_out;
	struct evbuffer_iovec v[8];

	while (len > 0) {
		int cnt = evbuffer_peek(data, (ev_ssize_t)len, NULL, v, 8);
		size_t used = 0;

		for (int i = 0; i < cnt && i < 8 && used < len; i++) {
			size_t k = v[i].iov_len < len - used ? v[i].iov_len : len - used;

			if (ex->filter->ops->write(ex->filter, v[i].iov_base, k, out) == -1)
				ex->filter_failed = true;
			used += k;
		}
		evbuffer_drain(data, used);
		len -= used;
	}
	send_filtered(ex);
}

/*
 * At most limits.buffer response bytes wait for the client (plus the one
 * read that crossed it): over it reading the upstream pauses, under it the
 * next read is sized to the room left.
 */
void
relay_body(struct exchange *ex, struct evbuffer *data, size_t len)
{
	size_t limit = ex->cfg->limits.buffer, pending;

	if (ex->filter != NULL) {
		filter_bytes(ex, data, len);
	} else {
		ex->bytes_sent += len;
		stream_send_body(ex->s, data, len);
	}
	if (ex->up_paused)
		return;
	pending = stream_pending(ex->s);
	if (pending >= limit) {
		ex->up_paused = true;
		upstream_pause_read(ex->up, true);
	} else {
		upstream_set_read_room(ex->up, limit - pending);
	}
}

void
relay_writable(struct exchange *ex)
{
	size_t limit = ex->cfg->limits.buffer, pending;

	if (!ex->up_paused || ex->up == NULL || ex->s == NULL)
		return;
	if (ex->rs != EXCHANGE_RESP_TUNNEL) {
		/* Half empty first: resuming at every write would mean tiny reads. */
		pending = stream_pending(ex->s);
		if (pending > limit / 2)
			return;
		upstream_set_read_room(ex->up, limit - pending);
	}
	ex->up_paused = false;
	upstream_pause_read(ex->up, false);
}

void
relay_end(struct exchange *ex)
{
	if (ex->filter != NULL) {
		if (ex->filter->ops->finish(ex->filter, ex->w->filter_out) == -1)
			ex->filter_failed = true;
		send_filtered(ex);
	}
	if (ex->filter_failed) {
		/* A corrupt or truncated compressed body: never end it as if complete. */
		log_req(LOG_LEVEL_WARN, ex_id(ex), "response body filter failed route=%s",
			ex->route->name);
		ex_cut(ex, "body filter failed");
		return;
	}
	ex_complete(ex);
}
