/*
 * forward.c: the request toward the upstream (SPEC section 4).  The head is
 * rebuilt from the parsed request, never copied: hop-by-hop fields and the
 * fields named in Connection are removed before Host, X-Forwarded-*,
 * Forwarded and Via are added, so a client cannot have them removed; it is
 * assembled in one worker buffer and added to the connection's output at
 * once.  Bodies stream with backpressure: Content-Length bodies move
 * between evbuffers without copies, chunked ones are decoded and chunked
 * again.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/util.h>

#include "exchange_int.h"
#include "portico/bodyfilter.h"
#include "portico/access.h"
#include "portico/config.h"
#include "portico/realip.h"
#include "portico/route.h"

/* --- the client address ------------------------------------------------------------ */

/* X-Forwarded-For fields read on the stack; more take one allocation. */
#define FORWARD_XFF_STACK 8

static void
format_address(const struct sockaddr_storage *ss, char *out, size_t size)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	const void *a = &((const struct sockaddr_in *)ss)->sin_addr;
	int family = ss->ss_family;

	if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		family = AF_INET;
		a = &sin6->sin6_addr.s6_addr[12];
	} else if (family == AF_INET6) {
		a = &sin6->sin6_addr;
	}
	if (evutil_inet_ntop(family, a, out, size) == NULL)
		snprintf(out, size, "unknown");
}

void
forward_client(struct exchange *ex)
{
	const struct access_list *trusted = &ex->cfg->forwarded.trusted;
	const struct head *h = ex->req;
	struct realip_value stack[FORWARD_XFF_STACK], *xff = stack;
	struct realip_result r;
	size_t n = 0;

	if (trusted->n == 0)
		return;
	if (access_first_match(trusted, ex->client_sa) < 0) {
		ex->peer_untrusted = true;
		return;
	}
	for (unsigned i = 0; i < h->nfields; i++)
		n += h->fields[i].id == HTTP_HDR_X_FORWARDED_FOR;
	if (n > FORWARD_XFF_STACK)
		xff = xmalloc(n * sizeof(*xff));
	n = 0;
	for (unsigned i = 0; i < h->nfields; i++) {
		const struct head_field *f = &h->fields[i];

		if (f->id == HTTP_HDR_X_FORWARDED_FOR)
			xff[n++] = (struct realip_value){head_value(h, f), f->value_len};
	}
	realip_client(ex->client_sa, trusted, xff, n, &r);
	if (xff != stack)
		free(xff);
	if (!r.forwarded)
		return;
	ex->real_sa = r.client;
	ex->client_sa = (const struct sockaddr *)&ex->real_sa;
	format_address(&ex->real_sa, ex->real_addr, sizeof(ex->real_addr));
	ex->client = ex->real_addr;
}

/* --- the head --------------------------------------------------------------------- */

static void
write_forwarded(const struct exchange *ex, struct buf *out)
{
	const struct head *h = ex->req;

	head_put_str(out, "Forwarded: ");
	for (unsigned i = 0; i < h->nfields && !ex->peer_untrusted; i++) {
		const struct head_field *f = &h->fields[i];

		if (f->id != HTTP_HDR_FORWARDED || f->value_len == 0)
			continue;
		head_put(out, head_value(h, f), f->value_len);
		head_put(out, ", ", 2);
	}
	if (strchr(ex->peer, ':') != NULL)
		buf_addf(out, "for=\"[%s]\"", ex->peer);
	else
		buf_addf(out, "for=%s", ex->peer);
	if (h->authority_len > 0) {
		head_put_str(out, ";host=\"");
		head_put(out, h->bytes.data + h->authority, h->authority_len);
		head_put_str(out, "\"");
	}
	buf_addf(out, ";proto=%s\r\n", ex->s->scheme);
}

/* Appends the values of every `id` field joined by ", ", then `last`. */
static void
write_joined(const struct exchange *ex, struct buf *out, const char *name, size_t nlen,
	     enum http_hdr id, const char *last)
{
	const struct head *h = ex->req;

	head_put(out, name, nlen);
	for (unsigned i = 0; i < h->nfields; i++) {
		const struct head_field *f = &h->fields[i];

		/* From a peer forwarded.trusted does not list, only portico's own value. */
		if (id == HTTP_HDR_X_FORWARDED_FOR && ex->peer_untrusted)
			break;
		if (f->id != id || f->value_len == 0)
			continue;
		/* Named in Connection: dropped, while portico's own value stays. */
		if (head_named_in_connection(h, f))
			continue;
		head_put(out, head_value(h, f), f->value_len);
		head_put(out, ", ", 2);
	}
	head_put_str(out, last);
	head_put(out, "\r\n", 2);
}

/* A field still laid out as the client sent it (head.h): its line is what goes on. */
static bool
field_is_line(const struct head *h, const struct head_field *f)
{
	return head_field_is_line(head_name(h, f), f->name_len, head_value(h, f), f->value_len);
}

/* Whether a client field is forwarded as it is. */
static bool
field_passes(const struct exchange *ex, const struct head_field *f)
{
	const struct config *cfg = ex->cfg;

	if (http_header_is_hop_by_hop(f->id))
		return false;
	switch (f->id) {
	case HTTP_HDR_HOST:
	case HTTP_HDR_EXPECT:
	case HTTP_HDR_CONTENT_LENGTH:
		return false;
	case HTTP_HDR_ACCEPT_ENCODING:
		if (ex->route->html) /* replaced by the codings the filters can decode */
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
	return !head_named_in_connection(ex->req, f);
}

static void
write_upgrade(const struct exchange *ex, struct buf *out)
{
	const struct head *h = ex->req;

	for (unsigned i = 0; i < h->nfields; i++) {
		const struct head_field *f = &h->fields[i];

		if (f->id == HTTP_HDR_UPGRADE)
			head_put_field(out, "Upgrade", 7, head_value(h, f), f->value_len);
	}
	head_put_str(out, "Connection: upgrade\r\n");
}

/* An html route asks only for codings its body filters can decode. */
static void
write_accept_encoding(const struct exchange *ex, struct buf *out)
{
	struct buf *scratch = &ex->w->scratch;
	size_t len;
	const char *ae = head_value_at(ex->req, ex->req->accept_encoding, &len);

	buf_reset(scratch);
	if (bodyfilter_upstream_accept_encoding(ae, len, scratch))
		head_put_field(out, "Accept-Encoding", 15, scratch->data, scratch->len);
}

/* Host, framing, Upgrade, Accept-Encoding: what portico states itself. */
static void
write_own_fields(const struct exchange *ex, struct buf *out)
{
	const struct head *h = ex->req;
	const struct route *r = ex->route;

	if (r->preserve_host && h->authority_len > 0)
		head_put_field(out, "Host", 4, h->bytes.data + h->authority, h->authority_len);
	else {
		const char *authority = failover_authority(ex);

		head_put_field(out, "Host", 4, authority, strlen(authority));
	}
	if (h->body == HEAD_BODY_LENGTH || h->framing.has_length) {
		head_put(out, "Content-Length: ", 16);
		head_put_decimal(out, h->framing.length);
		head_put(out, "\r\n", 2);
	} else if (h->body == HEAD_BODY_CHUNKED) {
		head_put_str(out, "Transfer-Encoding: chunked\r\n");
	}
	if (h->upgrade)
		write_upgrade(ex, out);
	if (r->html)
		write_accept_encoding(ex, out);
}

void
forward_head(struct exchange *ex)
{
	struct buf *out = &ex->w->head;
	const struct config *cfg = ex->cfg;
	const struct head *h = ex->req;
	const char *scheme = ex->s->scheme;

	buf_reset(out);
	head_put_str(out, head_method_name(h));
	head_put(out, " ", 1);
	head_put(out, ex->target.data, ex->target.len);
	head_put_str(out, " HTTP/1.1\r\n");
	for (unsigned i = 0; i < h->nfields;) {
		const struct head_field *f = &h->fields[i++];
		uint32_t end;

		if (!field_passes(ex, f))
			continue;
		if (!field_is_line(h, f)) {
			head_put_field(out, head_name(h, f), f->name_len, head_value(h, f),
				       f->value_len);
			continue;
		}
		/* Adjacent lines that pass as they came: one copy. */
		end = f->value + f->value_len + 2;
		while (i < h->nfields && h->fields[i].name == end &&
		       field_is_line(h, &h->fields[i]) && field_passes(ex, &h->fields[i])) {
			end = h->fields[i].value + h->fields[i].value_len + 2;
			i++;
		}
		head_put(out, head_name(h, f), end - f->name);
	}
	write_own_fields(ex, out);
	if (cfg->forwarded.x_forwarded) {
		write_joined(ex, out, "X-Forwarded-For: ", 17, HTTP_HDR_X_FORWARDED_FOR, ex->peer);
		if (h->authority_len > 0)
			head_put_field(out, "X-Forwarded-Host", 16, h->bytes.data + h->authority,
				       h->authority_len);
		head_put_field(out, "X-Forwarded-Proto", 17, scheme, strlen(scheme));
	}
	if (cfg->forwarded.forwarded)
		write_forwarded(ex, out);
	if (cfg->forwarded.via)
		write_joined(ex, out, "Via: ", 5, HTTP_HDR_VIA, "1.1 portico");
	head_put(out, "\r\n", 2);
	/* Without a body the head is the whole request: sent now, in one write. */
	if (h->body == HEAD_BODY_NONE)
		upstream_send(ex->up, out->data, out->len);
	else
		evbuffer_add(upstream_out(ex->up), out->data, out->len);
}

/* --- the body ----------------------------------------------------------------------- */

/* Decoded chunked body bytes in `staging`, chunked again toward the upstream. */
static void
forward_chunk(struct exchange *ex, struct evbuffer *staging, size_t n)
{
	struct evbuffer *out = upstream_out(ex->up);
	char hex[20];
	size_t k;

	if (n == 0)
		return;
	k = http_hex(hex, n);
	hex[k++] = '\r';
	hex[k++] = '\n';
	evbuffer_add(out, hex, k);
	evbuffer_add_buffer(out, staging);
	evbuffer_add(out, "\r\n", 2);
}

void
forward_body(struct exchange *ex)
{
	struct evbuffer *staging = ex->w->req_staging;
	uint64_t limit = ex->cfg->limits.body_size;
	bool chunked = ex->req->body == HEAD_BODY_CHUNKED;
	enum stream_body r;
	size_t n;

	if (ex->rq != EXCHANGE_REQ_BODY || ex->up == NULL || ex->s == NULL)
		return;
	r = stream_read_body(ex->s, chunked ? staging : upstream_out(ex->up), &n);
	ex->body_bytes += n;
	if (chunked && limit && ex->body_bytes > limit) {
		evbuffer_drain(staging, evbuffer_get_length(staging));
		ex_error(ex, 413, "body over limits.body_size");
		return;
	}
	if (r == STREAM_BODY_ERROR) {
		evbuffer_drain(staging, evbuffer_get_length(staging));
		ex_error(ex, 400, "invalid chunked body");
		return;
	}
	if (chunked)
		forward_chunk(ex, staging, n);
	if (r == STREAM_BODY_END) {
		if (chunked)
			evbuffer_add(upstream_out(ex->up), "0\r\n\r\n", 5);
		ex_request_sent(ex);
		return;
	}
	if (evbuffer_get_length(upstream_out(ex->up)) > STREAM_HIGH_WATER && !ex->client_paused) {
		ex->client_paused = true;
		stream_pause_body(ex->s, true);
	}
}
