/*
 * head.c: HTTP/1.x message heads (head.h).  llhttp in strict mode parses a
 * request line; one scan of each line checks and records every field.  The
 * field store, the facts the data path acts on and the checks of SPEC
 * section 9 are here, shared by requests, responses and the admin listener.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "portico/head.h"

#define KEEP_BYTES_MAX	(32 * 1024)
#define KEEP_FIELDS_MAX 256
/* The first piece of the input a head takes (head_next_piece). */
#define HEAD_PIECE 1024

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

static const llhttp_settings_t request_settings;

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
	if (kind == HEAD_REQUEST) {
		llhttp_init(&h->parser, HTTP_REQUEST, &request_settings);
		h->parser.data = h;
	}
	h->max_fields = 0;
	h->scanned = 0;
	h->end = 0;
	h->start_scanned = false;
	h->done = false;
	h->line_parsed = false;
	h->version_end = 0;
	h->bad_method = false;
	h->version_at = 0;
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
	return -1;
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
		if (!http_host_is_valid(v, f->value_len))
			return head_fail(h, 400, "missing or invalid Host");
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

/* --- the line scanner ----------------------------------------------------------- */

static int
malformed(struct head *h, const char *why)
{
	return head_fail(h, h->kind == HEAD_REQUEST ? 400 : 502, why);
}

/*
 * One field line, [p, end) without its CRLF and free of control bytes but
 * tabs (line_end): "name: value", the name one or more tchar, the value
 * without leading or trailing whitespace, classified and recorded with its
 * facts.
 */
static int
scan_field(struct head *h, const char *p, const char *end)
{
	const char *q = p, *v;
	struct head_field *f;

	/* The line ends at a CR, which is no tchar: the scan stops at `end` at the latest. */
	while (http_tchar[(unsigned char)q[0]] && http_tchar[(unsigned char)q[1]] &&
	       http_tchar[(unsigned char)q[2]] && http_tchar[(unsigned char)q[3]])
		q += 4;
	while (http_tchar[(unsigned char)*q])
		q++;
	if (q == p || q == end || *q != ':')
		return malformed(h, q < end && (*q == '\r' || *q == '\0') ? "bare CR or NUL"
									  : "invalid header name");
	if (h->max_fields != 0 && h->nfields >= h->max_fields)
		return head_fail(h, 431, "too many header fields");
	v = q + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (h->nfields >= h->fields_cap)
		h->fields = xgrow(h->fields, &h->fields_cap, h->nfields, sizeof(*f));
	f = &h->fields[h->nfields++];
	f->name = (uint32_t)(p - h->bytes.data);
	f->name_len = (uint32_t)(q - p);
	f->value = (uint32_t)(v - h->bytes.data);
	f->value_len = (uint32_t)(end - v);
	f->id = (uint8_t)http_header_id(p, f->name_len);
	if (f->id == HTTP_HDR_OTHER ||
	    (h->kind == HEAD_RESPONSE && f->id != HTTP_HDR_CONNECTION &&
	     f->id != HTTP_HDR_CONTENT_LENGTH && f->id != HTTP_HDR_TRANSFER_ENCODING))
		return 0;
	return field_note(h, f);
}

/* "HTTP/1.x NNN reason": a three-digit status from 100 to 599, any reason. */
static int
scan_status_line(struct head *h, const char *p, const char *end)
{
	size_t len = (size_t)(end - p);

	if (len < 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
		return malformed(h, "invalid response version");
	if (len < 12 || p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9' || (len > 12 && p[12] != ' '))
		return malformed(h, "invalid status code");
	h->minor = (uint8_t)(p[7] - '0');
	h->status = (uint16_t)((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
	h->reason = len > 13 ? (uint32_t)(p + 13 - h->bytes.data) : 0;
	h->reason_len = len > 13 ? (uint32_t)(len - 13) : 0;
	return 0;
}

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

/* The target's origin part, and the authority of an absolute-form one. */
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
	}
	return NULL;
}

/*
 * The request line, judged as soon as it is complete (llhttp parsed it):
 * the version (HTTP/1.x; a higher minor was read as 1, another major is
 * 505), CONNECT (405), one space on each side of the target, no fragment,
 * an origin-form or absolute-form target with a valid host.
 */
static int
request_line_check(struct head *h, const char *eol)
{
	const char *why, *v = h->bytes.data + h->target + h->target_len + 1;

	h->method = (uint8_t)llhttp_get_method(&h->parser);
	h->method_known = true;
	/* llhttp stops after the version's digits: the line must end there. */
	if (!request_line_is_strict(h) || eol - v != 8)
		return malformed(h, "malformed request line");
	/* A line without a version (HTTP/0.9's) is malformed, not another version. */
	if (llhttp_get_http_major(&h->parser) != 1)
		return head_fail(h, 505, "unsupported HTTP version");
	h->minor = (uint8_t)llhttp_get_http_minor(&h->parser);
	if (h->method == HTTP_PRI)
		return malformed(h, "HTTP/2 preface");
	if (h->method == HTTP_CONNECT)
		return head_fail(h, 405, "CONNECT");
	if ((why = request_target_check(h)) != NULL)
		return malformed(h, why);
	return 0;
}

/* The start line: a request's was parsed by llhttp; an empty one is refused here. */
static int
scan_start_line(struct head *h, const char *p, const char *end)
{
	if (h->kind == HEAD_RESPONSE)
		return scan_status_line(h, p, end);
	/* llhttp skips empty lines before a request line; portico refuses them. */
	if (end == p)
		return malformed(h, "malformed request line");
	return request_line_check(h, end);
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/*
 * The first byte at or after p below 0x20 or equal to 0x7f, eight bytes at
 * a time.  The head's bytes end with a NUL and eight more zero bytes
 * (head_feed), so the scan stops inside the buffer.  A word's lowest flagged
 * byte is exact (a borrow only flags bytes above a true one).
 */
static const char *
next_ctl(const char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	for (;; p += 8) {
		uint64_t x, d, m;

		memcpy(&x, p, sizeof(x));
		d = x ^ (ONES * 0x7f);
		m = (((x - ONES * 0x20) & ~x) | ((d - ONES) & ~d)) & HIGHS;
		if (m != 0)
			return p + (__builtin_ctzll(m) >> 3);
	}
#else
	while ((unsigned char)*p >= 0x20 && *p != 0x7f)
		p++;
	return p;
#endif
}

/*
 * Finds the end of the line at p before `upto`: 1 with *eol at its CR, 0
 * when the line is not complete yet, -1 as soon as a byte makes it
 * malformed (a bare CR or LF, a NUL; in a field line any control byte but a
 * tab), complete or not.
 */
static int
line_end(struct head *h, const char *p, const char *upto, bool field, const char **eol)
{
	for (;;) {
		const char *c = next_ctl(p);

		if (c >= upto)
			return 0;
		switch (*c) {
		case '\r':
			if (c + 1 == upto)
				return 0;
			if (c[1] != '\n')
				return malformed(h, "bare CR");
			*eol = c;
			return 1;
		case '\n':
			return malformed(h, "bare LF");
		case '\0':
			return malformed(h, "NUL in head");
		case '\t':
			break;
		default:
			if (field)
				return malformed(h, "invalid header value");
			break;
		}
		p = c + 1;
	}
}

/*
 * Scans the complete lines from h->scanned up to `upto`, each once: 1 at
 * the empty line that ends the head (h->end set), 0 when a line is still
 * incomplete, -1 on a malformed one.  Every line ends with CRLF: a bare LF,
 * a CR elsewhere, a NUL or a line folded onto the previous one (obs-fold)
 * is refused.
 */
static int
scan_lines(struct head *h, size_t upto)
{
	const char *base = h->bytes.data, *lim = base + upto;

	while (h->scanned < upto) {
		const char *p = base + h->scanned, *end;
		int r = line_end(h, p, lim, h->start_scanned, &end);

		if (r <= 0)
			return r;
		h->scanned = (size_t)(end + 2 - base);
		if (!h->start_scanned) {
			h->start_scanned = true;
			if (scan_start_line(h, p, end) != 0)
				return -1;
			continue;
		}
		if (end == p) {
			h->end = h->scanned;
			return 1;
		}
		if (*p == ' ' || *p == '\t')
			return malformed(h, "obs-fold");
		if (scan_field(h, p, end) != 0)
			return -1;
	}
	return 0;
}

/* --- llhttp callbacks (requests) ------------------------------------------------- */

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

/* The end of the request line: the fields are the scanner's (scan_lines). */
static int
on_version_complete(llhttp_t *p)
{
	parser_head(p)->line_parsed = true;
	return HPE_PAUSED;
}

/*
 * llhttp reads the request line only; the fields are scanned once per line
 * by scan_lines(), as strictly (fuzz_head_scan holds both to llhttp's
 * verdict on whole heads).
 */
static const llhttp_settings_t request_settings = {
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_version_complete = on_version_complete,
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

/*
 * "HTTP/d.d" just before `pos`, where llhttp refused a version, and nothing
 * but the line's end after it: false when the line is not shaped so (a
 * plain 400).
 */
static bool
version_shaped(const struct head *h, const char *pos)
{
	if (pos != h->bytes.data + h->bytes.len && *pos != '\r')
		return false;
	return pos - h->bytes.data >= 8 && memcmp(pos - 8, "HTTP/", 5) == 0 && pos[-3] >= '0' &&
	       pos[-3] <= '9' && pos[-2] == '.' && pos[-1] >= '0' && pos[-1] <= '9';
}

/*
 * The rest of a request line after its method, [t, eol) with eol at its LF:
 * a target in origin, absolute or asterisk form without spaces or control
 * bytes, one space, "HTTP/" digit "." digit, CRLF.
 */
static bool
request_line_rest_is_valid(const char *t, const char *eol)
{
	const char *v = eol - 9; /* "HTTP/d.d\r" */

	if (eol - t < 11 || v[-1] != ' ' || memcmp(v, "HTTP/", 5) != 0 ||
	    !(v[5] >= '0' && v[5] <= '9') || v[6] != '.' || !(v[7] >= '0' && v[7] <= '9') ||
	    v[8] != '\r')
		return false;
	if (*t != '/' && *t != '*' && !ascii_has_prefix_case(t, (size_t)(v - 1 - t), "http://") &&
	    !ascii_has_prefix_case(t, (size_t)(v - 1 - t), "https://"))
		return false;
	for (const char *p = t; p < v - 1; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/*
 * A method llhttp does not know: 501 once its request line is complete and
 * well formed otherwise (the method could be carried by HTTP/1 but portico's
 * parser cannot), 400 when it is not a token or the line is not a request
 * line (a PROXY protocol header sent to a listener without proxy_protocol);
 * HEAD_MORE while the line may still go on.
 */
static enum head_result
unknown_method(struct head *h)
{
	const char *p = h->bytes.data, *end = p + h->bytes.len, *eol;

	while (p < end && http_tchar[(unsigned char)*p])
		p++;
	if (p == end)
		return HEAD_MORE;
	if (*p != ' ' || p == h->bytes.data)
		return head_fail(h, 400, "HPE_INVALID_METHOD"), HEAD_ERROR;
	if ((eol = memchr(p + 1, '\n', (size_t)(end - p - 1))) == NULL)
		return HEAD_MORE;
	if (!request_line_rest_is_valid(p + 1, eol))
		return head_fail(h, 400, "invalid request line"), HEAD_ERROR;
	return head_fail(h, 501, "method not implemented"), HEAD_ERROR;
}

/* Another major version: 505 when the line ends after it, else 400. */
static enum head_result
version_pending(struct head *h)
{
	if (h->bytes.len == h->version_at)
		return HEAD_MORE;
	if (h->bytes.data[h->version_at] == '\r')
		return head_fail(h, 505, "unsupported HTTP version"), HEAD_ERROR;
	return head_fail(h, 400, "HPE_INVALID_VERSION"), HEAD_ERROR;
}

/*
 * HTTP/1.x with x above 1 is served as HTTP/1.1 (RFC 9112 section 2.3):
 * the minor digit becomes 1 in the copy and llhttp parses the bytes again
 * (the version is never forwarded as is: portico writes its own).
 */
static llhttp_errno_t
reparse_as_http11(struct head *h, const char *pos)
{
	((char *)pos)[-1] = '1';
	llhttp_init(&h->parser, HTTP_REQUEST, &request_settings);
	h->parser.data = h;
	h->target = h->target_len = 0;
	h->method_known = h->target_done = false;
	return llhttp_execute(&h->parser, h->bytes.data, h->bytes.len);
}

/*
 * llhttp stopped after the version's digits, where it would want the CR of
 * CRLF: anything else refuses the line as soon as it comes, as llhttp would.
 */
static enum head_result
version_end_check(struct head *h)
{
	if (h->start_scanned || h->bytes.len <= h->version_end ||
	    h->bytes.data[h->version_end] == '\r')
		return HEAD_MORE;
	return malformed(h, "malformed request line"), HEAD_ERROR;
}

/* Requests: llhttp judges the request line first, then the lines are scanned. */
static enum head_result
feed_request(struct head *h, size_t old)
{
	llhttp_errno_t err;
	const char *pos;

	if (h->line_parsed)
		return version_end_check(h);
	if (h->bad_method)
		return unknown_method(h);
	if (h->version_at != 0)
		return version_pending(h);
	err = llhttp_execute(&h->parser, h->bytes.data + old, h->bytes.len - old);
	pos = llhttp_get_error_pos(&h->parser);
	if (err == HPE_INVALID_VERSION && version_shaped(h, pos) && h->parser.http_major == 1 &&
	    h->parser.http_minor > 1) {
		err = reparse_as_http11(h, pos);
		pos = llhttp_get_error_pos(&h->parser);
	}
	if (err == HPE_PAUSED && h->line_parsed) {
		h->version_end = (size_t)(pos - h->bytes.data);
		return version_end_check(h);
	}
	if (err == HPE_OK)
		return HEAD_MORE;
	/* A complete line before the error has its verdict first, however the bytes came. */
	if (scan_lines(h, (size_t)(pos - h->bytes.data)) < 0)
		return HEAD_ERROR;
	if (err == HPE_INVALID_METHOD) {
		h->bad_method = true;
		return unknown_method(h);
	}
	if (err == HPE_INVALID_VERSION && version_shaped(h, pos) && h->parser.http_major != 1) {
		/* 505 only if the line ends there: wait for the byte after the version. */
		h->version_at = (size_t)(pos - h->bytes.data);
		return version_pending(h);
	}
	h->error = 400;
	h->why = llhttp_errno_name(err);
	return HEAD_ERROR;
}

/* Room for `n` more bytes and the NUL and eight zero bytes next_ctl() may read after them. */
static char *
head_room(struct head *h, size_t n)
{
	buf_reserve(&h->bytes, n + 8);
	return h->bytes.data + h->bytes.len;
}

/* Parses what h->bytes holds from `old` on (just copied in). */
static enum head_result
head_parse(struct head *h, size_t old, size_t limit)
{
	int r;

	memset(h->bytes.data + h->bytes.len, 0, 9);
	if (h->kind == HEAD_REQUEST && feed_request(h, old) == HEAD_ERROR)
		return HEAD_ERROR;
	r = scan_lines(h, h->bytes.len);
	if (r < 0)
		return HEAD_ERROR;
	if (r == 1) {
		if (h->end > limit)
			return head_too_large(h, limit, false);
		h->done = true;
		h->bytes.len = h->end;
		h->bytes.data[h->end] = '\0';
		return HEAD_DONE;
	}
	if (h->bytes.len > limit)
		return head_too_large(h, limit, h->kind == HEAD_REQUEST && !h->target_done);
	return HEAD_MORE;
}

/*
 * The bytes a head may take from `have` available, when it holds `old`: a
 * piece at a time, so that a head is not copied with the body behind it
 * (a whole read of a response); each piece doubles the bytes held, and the
 * last stops at the limit (plus the CRLFs that may end the head there).
 */
static size_t
head_next_piece(size_t old, size_t have, size_t limit)
{
	size_t want = old < HEAD_PIECE ? HEAD_PIECE : 2 * old;

	if (want > limit + 4)
		want = limit + 4;
	return want < have ? want : have;
}

enum head_result
head_feed(struct head *h, struct evbuffer *in, size_t limit, size_t max_fields)
{
	size_t have = evbuffer_get_length(in), old, want;
	struct evbuffer_ptr pos;
	enum head_result r = HEAD_MORE;

	h->max_fields = max_fields;
	for (old = h->bytes.len; (want = head_next_piece(old, have, limit)) > old; old = want) {
		evbuffer_ptr_set(in, &pos, old, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(in, &pos, head_room(h, want - old), want - old);
		h->bytes.len = want;
		if ((r = head_parse(h, old, limit)) != HEAD_MORE)
			break;
	}
	if (r == HEAD_DONE)
		evbuffer_drain(in, h->end);
	return r;
}

enum head_result
head_feed_bytes(struct head *h, const char *p, size_t n, size_t limit, size_t max_fields)
{
	size_t old, want;
	enum head_result r = HEAD_MORE;

	PORTICO_ASSERT(h->bytes.len == 0);
	h->max_fields = max_fields;
	for (old = 0; (want = head_next_piece(old, n, limit)) > old; old = want) {
		memcpy(head_room(h, want - old), p + old, want - old);
		h->bytes.len = want;
		if ((r = head_parse(h, old, limit)) != HEAD_MORE)
			break;
	}
	return r;
}

/* --- judging a complete head -------------------------------------------------- */

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
	/* The request line and every field were judged as they were scanned. */
	if (!h->absolute && h->host != HEAD_NONE) {
		h->authority = h->fields[h->host].value;
		h->authority_len = h->fields[h->host].value_len;
	} else if (!h->absolute && h->minor >= 1) {
		return check_fail(h, 400, "missing or invalid Host");
	}
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

int
head_check_response(struct head *h)
{
	/* The status line and every field were checked as they were scanned. */
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
	static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
				       "25262728293031323334353637383940414243444546474849"
				       "50515253545556575859606162636465666768697071727374"
				       "75767778798081828384858687888990919293949596979899";
	char tmp[20];
	size_t n = sizeof(tmp);

	/* Two digits at a time. */
	while (v >= 100) {
		n -= 2;
		memcpy(tmp + n, pairs + 2 * (v % 100), 2);
		v /= 100;
	}
	if (v >= 10) {
		n -= 2;
		memcpy(tmp + n, pairs + 2 * v, 2);
	} else {
		tmp[--n] = (char)('0' + v);
	}
	head_put(out, tmp + n, sizeof(tmp) - n);
}
