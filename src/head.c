/*
 * head.c: HTTP/1.x message heads (head.h).  llhttp in strict mode parses the
 * bytes and reports each field; the field store, the facts the data path
 * acts on and the checks of SPEC section 9 are here, shared by requests,
 * responses and the admin listener.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "portico/head.h"

#define KEEP_BYTES_MAX	(32 * 1024)
#define KEEP_FIELDS_MAX 256

void
head_init(struct head *h)
{
	memset(h, 0, sizeof(*h));
	head_reset(h, HEAD_REQUEST);
}

void
head_free(struct head *h)
{
	buf_free(&h->bytes);
	free(h->fields);
	h->fields = NULL;
	h->fields_cap = 0;
}

void
head_trim(struct head *h)
{
	if (h->bytes.cap > KEEP_BYTES_MAX)
		buf_free(&h->bytes);
	if (h->fields_cap > KEEP_FIELDS_MAX) {
		free(h->fields);
		h->fields = NULL;
		h->fields_cap = 0;
	}
}

static const llhttp_settings_t request_settings, response_settings;

void
head_reset(struct head *h, enum head_kind kind)
{
	struct buf bytes = h->bytes;
	struct head_field *fields = h->fields;
	size_t cap = h->fields_cap;

	memset(h, 0, offsetof(struct head, parser));
	h->bytes = bytes;
	h->bytes.len = 0;
	h->fields = fields;
	h->fields_cap = cap;
	h->kind = kind;
	h->host = h->referer = h->user_agent = h->accept_encoding = HEAD_NONE;
	llhttp_init(&h->parser, kind == HEAD_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE,
		    kind == HEAD_REQUEST ? &request_settings : &response_settings);
	h->parser.data = h;
	h->max_fields = 0;
	h->in_value = false;
	h->done = false;
	h->target_done = false;
	h->method_known = false;
	h->error = 0;
	h->why = NULL;
	h->too_large = false;
}

/* --- the field store ------------------------------------------------------- */

static struct head *
parser_head(llhttp_t *p)
{
	return p->data;
}

static int
head_fail(struct head *h, int status, const char *why)
{
	h->error = status;
	h->why = why;
	return HPE_USER;
}

/* A chunk of a field name: starts a field, or continues one split across two reads. */
static int
field_name(struct head *h, const char *at, size_t len)
{
	struct head_field *f;

	if (!h->in_value && h->nfields > 0 && h->fields[h->nfields - 1].value_len == UINT32_MAX) {
		h->fields[h->nfields - 1].name_len += (uint32_t)len;
		return 0;
	}
	if (h->nfields >= h->fields_cap)
		h->fields = xgrow(h->fields, &h->fields_cap, h->nfields, sizeof(*f));
	f = &h->fields[h->nfields++];
	f->name = (uint32_t)(at - h->bytes.data);
	f->name_len = (uint32_t)len;
	f->value = f->name + f->name_len;
	f->value_len = UINT32_MAX; /* name still open */
	f->id = HTTP_HDR_OTHER;
	h->in_value = false;
	return 0;
}

static int
field_name_done(struct head *h)
{
	struct head_field *f = &h->fields[h->nfields - 1];

	/*
	 * Counted once the name is complete: llhttp reports a name's first
	 * bytes early when a read ends inside it, and a malformed name must
	 * get the same verdict however the bytes arrived.
	 */
	if (h->max_fields != 0 && h->nfields > h->max_fields)
		return head_fail(h, 431, "too many header fields");
	if (!http_name_is_valid(head_name(h, f), f->name_len))
		return head_fail(h, h->kind == HEAD_REQUEST ? 400 : 502, "invalid header name");
	f->id = (uint8_t)http_header_id(head_name(h, f), f->name_len);
	f->value_len = 0;
	return 0;
}

static void
field_value(struct head *h, const char *at, size_t len)
{
	struct head_field *f = &h->fields[h->nfields - 1];

	if (!h->in_value) {
		f->value = (uint32_t)(at - h->bytes.data);
		h->in_value = true;
	}
	f->value_len += (uint32_t)len;
}

/* Records what the data path acts on; -1 (400) for a repeated Host. */
static int
field_note(struct head *h, struct head_field *f)
{
	const char *v = head_value(h, f);
	int i = (int)(f - h->fields);

	switch (f->id) {
	case HTTP_HDR_CONTENT_LENGTH:
		http_framing_add_length(&h->framing, v, f->value_len);
		break;
	case HTTP_HDR_TRANSFER_ENCODING:
		http_framing_add_te(&h->framing, v, f->value_len);
		break;
	case HTTP_HDR_CONNECTION:
		h->conn_flags |= http_connection_flags(v, f->value_len);
		break;
	case HTTP_HDR_HOST:
		if (h->host != HEAD_NONE)
			return head_fail(h, 400, "repeated Host");
		h->host = i;
		break;
	case HTTP_HDR_EXPECT:
		if (ascii_casecmp_eq(v, f->value_len, "100-continue", 12))
			h->expect_continue = true;
		else
			h->expect_other = true;
		break;
	case HTTP_HDR_UPGRADE:
		h->has_upgrade = true;
		break;
	case HTTP_HDR_REFERER:
		h->referer = i;
		break;
	case HTTP_HDR_USER_AGENT:
		h->user_agent = i;
		break;
	case HTTP_HDR_ACCEPT_ENCODING:
		if (h->accept_encoding == HEAD_NONE)
			h->accept_encoding = i;
		break;
	default:
		break;
	}
	return 0;
}

/* Trims trailing whitespace, checks the bytes, notes the field. */
static int
field_value_done(struct head *h)
{
	struct head_field *f = &h->fields[h->nfields - 1];
	const char *v = head_value(h, f);

	h->in_value = false;
	while (f->value_len > 0 && (v[f->value_len - 1] == ' ' || v[f->value_len - 1] == '\t'))
		f->value_len--;
	if (!http_value_is_valid(v, f->value_len))
		return head_fail(h, h->kind == HEAD_REQUEST ? 400 : 502, "invalid header value");
	if (h->kind == HEAD_RESPONSE && f->id != HTTP_HDR_CONTENT_LENGTH &&
	    f->id != HTTP_HDR_TRANSFER_ENCODING && f->id != HTTP_HDR_CONNECTION)
		return 0;
	return field_note(h, f);
}

/* --- llhttp callbacks --------------------------------------------------------- */

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	struct head *h = parser_head(p);

	h->method_known = true;
	h->method = (uint8_t)llhttp_get_method(p);
	if (h->target_len == 0)
		h->target = (uint32_t)(at - h->bytes.data);
	h->target_len += (uint32_t)len;
	return 0;
}

static int
on_url_complete(llhttp_t *p)
{
	parser_head(p)->target_done = true;
	return 0;
}

static int
on_status(llhttp_t *p, const char *at, size_t len)
{
	struct head *h = parser_head(p);

	if (h->reason_len == 0)
		h->reason = (uint32_t)(at - h->bytes.data);
	h->reason_len += (uint32_t)len;
	return 0;
}

static int
on_header_field(llhttp_t *p, const char *at, size_t len)
{
	return field_name(parser_head(p), at, len);
}

static int
on_header_field_complete(llhttp_t *p)
{
	return field_name_done(parser_head(p));
}

static int
on_header_value(llhttp_t *p, const char *at, size_t len)
{
	field_value(parser_head(p), at, len);
	return 0;
}

static int
on_header_value_complete(llhttp_t *p)
{
	return field_value_done(parser_head(p));
}

/* The end of the head: stop there, whatever follows. */
static int
on_headers_complete(llhttp_t *p)
{
	parser_head(p)->done = true;
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
};

static const llhttp_settings_t response_settings = {
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
};

/* --- feeding bytes -------------------------------------------------------------- */

/* A head over `limit`: 414 or 431 for requests, 502 for responses. */
static enum head_result
head_too_large(struct head *h, size_t limit, bool target_over)
{
	h->too_large = true;
	if (h->kind == HEAD_RESPONSE) {
		h->error = 502;
		h->why = "response head over limits.response_header_size";
	} else {
		h->error = target_over || h->target_len > limit ? 414 : 431;
		h->why = "head too large";
	}
	return HEAD_ERROR;
}

static enum head_result
head_parse_error(struct head *h, llhttp_errno_t err)
{
	if (h->error != 0)
		return HEAD_ERROR;
	h->error = h->kind == HEAD_REQUEST ? 400 : 502;
	h->why = err == HPE_PAUSED_H2_UPGRADE ? "HTTP/2 preface" : llhttp_errno_name(err);
	return HEAD_ERROR;
}

enum head_result
head_feed(struct head *h, struct evbuffer *in, size_t limit, size_t max_fields)
{
	size_t have = evbuffer_get_length(in), want = have < limit + 4 ? have : limit + 4;
	size_t old = h->bytes.len, len;
	struct evbuffer_ptr pos;
	llhttp_errno_t err;

	if (want <= old)
		return HEAD_MORE;
	h->max_fields = max_fields;
	buf_reserve(&h->bytes, want - old);
	evbuffer_ptr_set(in, &pos, old, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(in, &pos, h->bytes.data + old, want - old);
	h->bytes.len = want;
	h->bytes.data[want] = '\0';
	err = llhttp_execute(&h->parser, h->bytes.data + old, want - old);
	if (err == HPE_PAUSED && h->done) {
		len = (size_t)(llhttp_get_error_pos(&h->parser) - h->bytes.data);
		if (len > limit)
			return head_too_large(h, limit, false);
		h->bytes.len = len;
		h->bytes.data[len] = '\0';
		evbuffer_drain(in, len);
		return HEAD_DONE;
	}
	if (err != HPE_OK)
		return head_parse_error(h, err);
	if (h->bytes.len > limit)
		return head_too_large(h, limit, !h->target_done);
	return HEAD_MORE;
}

/* --- judging a complete head -------------------------------------------------- */

/* "METHOD SP target SP HTTP/1.x": exactly one space on each side of the target. */
static bool
request_line_is_strict(const struct head *h)
{
	const char *b = h->bytes.data;
	size_t mlen = strlen(head_method_name(h));
	size_t end = (size_t)h->target + h->target_len;

	if (h->target_len == 0 || h->target != mlen + 1 || b[mlen] != ' ')
		return false;
	/* A fragment never belongs in a request target (SPEC section 3). */
	if (memchr(b + h->target, '#', h->target_len) != NULL)
		return false;
	return end + 1 < h->bytes.len && b[end] == ' ' && b[end + 1] == 'H';
}

/* The target's origin part and the authority (absolute form, else Host). */
static const char *
request_target_check(struct head *h)
{
	const char *auth, *rest;
	size_t alen, rlen;
	int kind =
	    http_target_split(h->bytes.data + h->target, h->target_len, &auth, &alen, &rest, &rlen);

	if (kind == -1)
		return "invalid request target";
	h->origin = (uint32_t)(rest - h->bytes.data);
	h->origin_len = (uint32_t)rlen;
	if (kind == 1) {
		h->absolute = true;
		h->authority = (uint32_t)(auth - h->bytes.data);
		h->authority_len = (uint32_t)alen;
		return NULL;
	}
	if (h->host == HEAD_NONE)
		return h->minor >= 1 ? "missing or invalid Host" : NULL;
	h->authority = h->fields[h->host].value;
	h->authority_len = h->fields[h->host].value_len;
	if (!http_host_is_valid(h->bytes.data + h->authority, h->authority_len))
		return "missing or invalid Host";
	return NULL;
}

static int
check_fail(struct head *h, int status, const char *why)
{
	h->error = status;
	h->why = why;
	return status;
}

int
head_check_request(struct head *h)
{
	const char *why = http_head_scan(h->bytes.data, h->bytes.len);

	h->method = (uint8_t)llhttp_get_method(&h->parser);
	h->method_known = true;
	if (why != NULL)
		return check_fail(h, 400, why);
	if (llhttp_get_http_major(&h->parser) != 1)
		return check_fail(h, 400, "unsupported HTTP version");
	h->minor = (uint8_t)llhttp_get_http_minor(&h->parser);
	if (h->method == HTTP_CONNECT)
		return check_fail(h, 405, "CONNECT");
	if (!request_line_is_strict(h))
		return check_fail(h, 400, "malformed request line");
	if ((why = request_target_check(h)) != NULL)
		return check_fail(h, 400, why);
	switch (http_framing_check(&h->framing)) {
	case HTTP_FRAMING_INVALID:
		return check_fail(h, 400, "conflicting or invalid framing");
	case HTTP_FRAMING_LENGTH:
		h->body = h->framing.length > 0 ? HEAD_BODY_LENGTH : HEAD_BODY_NONE;
		h->length = h->framing.length;
		break;
	case HTTP_FRAMING_CHUNKED:
		h->body = HEAD_BODY_CHUNKED;
		break;
	case HTTP_FRAMING_NONE:
		h->body = HEAD_BODY_NONE;
		break;
	}
	h->keep_alive = h->minor >= 1 ? !(h->conn_flags & HTTP_CONN_CLOSE)
				      : (h->conn_flags & HTTP_CONN_KEEP_ALIVE) != 0;
	h->upgrade = h->has_upgrade && (h->conn_flags & HTTP_CONN_UPGRADE) && h->minor >= 1 &&
		     h->body == HEAD_BODY_NONE;
	return 0;
}

/* "HTTP/1.x NNN": exactly three digits then a space or the end of the line. */
static bool
status_is_3digit(const struct head *h)
{
	const char *p = h->bytes.data;

	return h->bytes.len > 13 && p[8] == ' ' && p[9] >= '1' && p[9] <= '5' && p[10] >= '0' &&
	       p[10] <= '9' && p[11] >= '0' && p[11] <= '9' && (p[12] == ' ' || p[12] == '\r');
}

int
head_check_response(struct head *h)
{
	const char *why = http_head_scan(h->bytes.data, h->bytes.len);
	int status = llhttp_get_status_code(&h->parser);

	if (why != NULL || llhttp_get_http_major(&h->parser) != 1)
		return check_fail(h, 502, why ? why : "invalid response version");
	if (status < 100 || status > 599 || !status_is_3digit(h))
		return check_fail(h, 502, "invalid status code");
	h->status = (uint16_t)status;
	h->minor = (uint8_t)llhttp_get_http_minor(&h->parser);
	h->keep_alive = h->minor >= 1 ? !(h->conn_flags & HTTP_CONN_CLOSE)
				      : (h->conn_flags & HTTP_CONN_KEEP_ALIVE) != 0;
	return 0;
}

int
head_response_body(struct head *h, bool head_request)
{
	enum http_framing_verdict v = http_framing_check(&h->framing);

	if (v == HTTP_FRAMING_INVALID)
		return -1;
	h->length = h->framing.length;
	if (head_request || h->status < 200 || h->status == 204 || h->status == 304)
		h->body = HEAD_BODY_NONE;
	else if (v == HTTP_FRAMING_LENGTH)
		h->body = HEAD_BODY_LENGTH;
	else if (v == HTTP_FRAMING_CHUNKED)
		h->body = HEAD_BODY_CHUNKED;
	else
		h->body = HEAD_BODY_EOF;
	if (h->body == HEAD_BODY_EOF)
		h->keep_alive = false;
	return 0;
}

/* --- reading fields ----------------------------------------------------------- */

const char *
head_value_at(const struct head *h, int i, size_t *len)
{
	if (i == HEAD_NONE) {
		*len = 0;
		return NULL;
	}
	*len = h->fields[i].value_len;
	return head_value(h, &h->fields[i]);
}

const char *
head_method_name(const struct head *h)
{
	if (!h->method_known)
		return "-";
	return llhttp_method_name((llhttp_method_t)h->method);
}

bool
head_named_in_connection(const struct head *h, const struct head_field *f)
{
	const char *name = head_name(h, f);

	if (!(h->conn_flags & HTTP_CONN_OTHER))
		return false;
	for (unsigned i = 0; i < h->nfields; i++) {
		const struct head_field *c = &h->fields[i];
		size_t pos = 0, tlen;
		const char *t;

		if (c->id != HTTP_HDR_CONNECTION)
			continue;
		while (http_list_next(head_value(h, c), c->value_len, &pos, &t, &tlen))
			if (ascii_casecmp_eq(t, tlen, name, f->name_len))
				return true;
	}
	return false;
}

/* --- writing heads ------------------------------------------------------------- */

void
head_put_field(struct buf *out, const char *name, size_t nlen, const char *value, size_t vlen)
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

void
head_put_decimal(struct buf *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (out->len + n + 1 > out->cap)
		buf_reserve(out, n);
	for (size_t i = 0; i < n; i++)
		out->data[out->len + i] = tmp[n - 1 - i];
	out->len += n;
	out->data[out->len] = '\0';
}
