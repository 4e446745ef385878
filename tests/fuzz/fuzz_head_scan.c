/*
 * fuzz_head_scan.c: the head scanner (head.c) against llhttp over the same
 * bytes.  The reference is the parse the scanner replaced: llhttp in strict
 * mode reporting every field through its callbacks, then portico's checks
 * (http_head_scan, token names, valid values, the field count, one valid
 * Host, no empty line before a request line, the request line's version,
 * method, spacing and target, a Host on HTTP/1.1 unless absolute-form,
 * HTTP/1.x and a three-digit status for responses, the size limit, framing
 * fields that agree: a response refused either way is a 502).  On requests,
 * portico's llhttp stops after the request line, so the scanner alone must
 * refuse every field line llhttp refuses.  The first
 * byte chooses a request or a response head and the limits; the verdicts,
 * the head's length, the start line's parts and every field (name, value,
 * order) must agree, or the target aborts.
 *
 * When exactly one side is still waiting for bytes, the head is completed
 * for the undecided side: "\r\n\r\n", and if that is not enough (llhttp
 * skips empty lines before a start line) a whole valid head.  Bytes already
 * refused cannot be made valid by what follows, so both sides must then
 * agree; the scanner may only refuse earlier, never differently.
 *
 * One difference is meant: in a response's Content-Length, llhttp takes
 * spaces around the digits but refuses tabs, which RFC 9110 allows as the
 * same optional whitespace; the scanner takes both.  The reference sees
 * such tabs as spaces.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <llhttp.h>

#include "portico/head.h"

#define MAX_REF_FIELDS 512

struct ref_field {
	size_t name, name_len, value, value_len;
};

struct ref {
	llhttp_t p;
	const char *data;
	size_t len;
	bool response;
	struct ref_field f[MAX_REF_FIELDS];
	size_t n, max_fields;
	bool in_value, done, target_done, has_host;
	struct http_framing framing;
	size_t reason, reason_len, target, target_len;
	int error; /* a callback's status */
};

static struct ref *
ref_of(llhttp_t *p)
{
	return p->data;
}

static int
ref_url(llhttp_t *p, const char *at, size_t len)
{
	struct ref *r = ref_of(p);

	if (r->target_len == 0)
		r->target = (size_t)(at - r->data);
	r->target_len += len;
	return 0;
}

static int
ref_url_complete(llhttp_t *p)
{
	ref_of(p)->target_done = true;
	return 0;
}

static int
ref_status(llhttp_t *p, const char *at, size_t len)
{
	struct ref *r = ref_of(p);

	if (r->reason_len == 0)
		r->reason = (size_t)(at - r->data);
	r->reason_len += len;
	return 0;
}

static int
ref_field(llhttp_t *p, const char *at, size_t len)
{
	struct ref *r = ref_of(p);

	if (!r->in_value && r->n > 0 && r->f[r->n - 1].value_len == SIZE_MAX) {
		r->f[r->n - 1].name_len += len;
		return 0;
	}
	if (r->n >= MAX_REF_FIELDS)
		return HPE_USER;
	r->f[r->n] = (struct ref_field){(size_t)(at - r->data), len, 0, SIZE_MAX};
	r->n++;
	r->in_value = false;
	return 0;
}

static int
ref_field_complete(llhttp_t *p)
{
	struct ref *r = ref_of(p);
	struct ref_field *f = &r->f[r->n - 1];

	if (r->max_fields != 0 && r->n > r->max_fields) {
		r->error = 431;
		return HPE_USER;
	}
	if (!http_name_is_valid(r->data + f->name, f->name_len))
		return HPE_USER;
	f->value = f->name + f->name_len;
	f->value_len = 0;
	return 0;
}

static int
ref_value(llhttp_t *p, const char *at, size_t len)
{
	struct ref *r = ref_of(p);
	struct ref_field *f = &r->f[r->n - 1];

	if (!r->in_value) {
		f->value = (size_t)(at - r->data);
		r->in_value = true;
	}
	f->value_len += len;
	return 0;
}

static int
ref_value_complete(llhttp_t *p)
{
	struct ref *r = ref_of(p);
	struct ref_field *f = &r->f[r->n - 1];
	const char *v = r->data + f->value;

	const char *name = r->data + f->name;

	r->in_value = false;
	while (f->value_len > 0 && (v[f->value_len - 1] == ' ' || v[f->value_len - 1] == '\t'))
		f->value_len--;
	if (!http_value_is_valid(v, f->value_len))
		return HPE_USER;
	/* What the old field callbacks refused, or noted for the framing. */
	if (!r->response && ascii_casecmp_eq(name, f->name_len, "host", 4)) {
		if (r->has_host || !http_host_is_valid(v, f->value_len))
			return HPE_USER;
		r->has_host = true;
	}
	if (ascii_casecmp_eq(name, f->name_len, "content-length", 14))
		http_framing_add_length(&r->framing, v, f->value_len);
	else if (ascii_casecmp_eq(name, f->name_len, "transfer-encoding", 17))
		http_framing_add_te(&r->framing, v, f->value_len);
	return 0;
}

static int
ref_headers_complete(llhttp_t *p)
{
	ref_of(p)->done = true;
	return HPE_PAUSED;
}

static const llhttp_settings_t ref_settings = {
    .on_url = ref_url,
    .on_url_complete = ref_url_complete,
    .on_status = ref_status,
    .on_header_field = ref_field,
    .on_header_field_complete = ref_field_complete,
    .on_header_value = ref_value,
    .on_header_value_complete = ref_value_complete,
    .on_headers_complete = ref_headers_complete,
};

enum verdict {
	V_MORE,
	V_ACCEPT,
	V_REFUSE,
};

/* The request line checks of SPEC section 9 on an accepted request head. */
static bool
ref_request_line_ok(struct ref *r, size_t head_len)
{
	const char *d = r->data, *auth, *rest;
	int method = llhttp_get_method(&r->p);
	size_t mlen = strlen(llhttp_method_name((llhttp_method_t)method));
	size_t end = r->target + r->target_len, alen, rlen;

	if (d[0] == '\r' || d[0] == '\n') /* no empty line before a request line */
		return false;
	if (llhttp_get_http_major(&r->p) != 1 || method == HTTP_CONNECT)
		return false;
	if (r->target_len == 0 || r->target != mlen + 1 || d[mlen] != ' ' ||
	    memchr(d + r->target, '#', r->target_len) != NULL || end + 1 >= head_len ||
	    d[end] != ' ' || d[end + 1] != 'H')
		return false;
	if (http_target_split(d + r->target, r->target_len, &auth, &alen, &rest, &rlen) == -1)
		return false;
	/* head_check_request: a Host unless absolute-form or HTTP/1.0, framing that agrees. */
	if (auth == NULL && !r->has_host && llhttp_get_http_minor(&r->p) >= 1)
		return false;
	return http_framing_check(&r->framing) != HTTP_FRAMING_INVALID;
}

/* Tabs after the colon of a Content-Length line become spaces (see above). */
static void
ref_length_tabs_as_spaces(char *p, size_t len)
{
	static const char name[] = "content-length:";
	char *end = p + len;

	for (char *line = p; line < end;) {
		char *eol = memchr(line, '\n', (size_t)(end - line));

		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - line) >= sizeof(name) - 1 &&
		    strncasecmp(line, name, sizeof(name) - 1) == 0) {
			for (char *c = line + sizeof(name) - 1; c < eol; c++)
				if (*c == '\t')
					*c = ' ';
		}
		line = eol + 1;
	}
}

/*
 * The reference on `len` bytes (at most limit + 4 are looked at, as before),
 * parsed from a copy: a request's "HTTP/1.x" with x above 1 is read as
 * HTTP/1.1 (its minor digit replaced, then parsed again).
 */
static enum verdict
ref_parse(struct ref *r, const char *data, size_t len, size_t limit, size_t *head_len)
{
	static char copy[16384 + 64];
	size_t want = len < limit + 4 ? len : limit + 4;
	llhttp_errno_t err;
	const char *pos;
	int status;

	memcpy(copy, data, want);
	if (r->response)
		ref_length_tabs_as_spaces(copy, want);
	data = copy;
	llhttp_init(&r->p, r->response ? HTTP_RESPONSE : HTTP_REQUEST, &ref_settings);
	r->p.data = r;
	r->data = data;
	err = llhttp_execute(&r->p, data, want);
	pos = llhttp_get_error_pos(&r->p);
	if (!r->response && err == HPE_INVALID_VERSION && r->p.http_major == 1 &&
	    r->p.http_minor > 1 && pos - data >= 8 && memcmp(pos - 8, "HTTP/1.", 7) == 0 &&
	    pos[-1] >= '0' && pos[-1] <= '9') {
		copy[pos - data - 1] = '1';
		memset(r->f, 0, sizeof(r->f));
		r->n = 0;
		r->in_value = r->done = r->target_done = r->has_host = false;
		r->target = r->target_len = 0;
		memset(&r->framing, 0, sizeof(r->framing));
		llhttp_init(&r->p, HTTP_REQUEST, &ref_settings);
		r->p.data = r;
		err = llhttp_execute(&r->p, data, want);
	}
	if (err == HPE_PAUSED && r->done) {
		*head_len = (size_t)(llhttp_get_error_pos(&r->p) - data);
		if (*head_len > limit || http_head_scan(data, *head_len) != NULL)
			return V_REFUSE;
		if (!r->response)
			return ref_request_line_ok(r, *head_len) ? V_ACCEPT : V_REFUSE;
		status = llhttp_get_status_code(&r->p);
		if (llhttp_get_http_major(&r->p) != 1 || status < 100 || status > 599 ||
		    *head_len <= 13 || data[8] != ' ' || data[9] < '1' || data[9] > '5' ||
		    data[10] < '0' || data[10] > '9' || data[11] < '0' || data[11] > '9' ||
		    (data[12] != ' ' && data[12] != '\r'))
			return V_REFUSE;
		/* The framing fields must agree (the old head was refused or a 502 later). */
		return http_framing_check(&r->framing) == HTTP_FRAMING_INVALID ? V_REFUSE
									       : V_ACCEPT;
	}
	if (err != HPE_OK || want > limit)
		return V_REFUSE;
	return V_MORE;
}

/* The scanner on `len` bytes (responses also judged by head_check_response). */
static enum verdict
new_parse(struct head *h, bool response, const char *data, size_t len, size_t limit,
	  size_t max_fields)
{
	struct evbuffer *in = evbuffer_new();
	enum head_result r;

	head_reset(h, response ? HEAD_RESPONSE : HEAD_REQUEST);
	evbuffer_add(in, data, len);
	r = head_feed(h, in, limit, max_fields);
	evbuffer_free(in);
	if (r == HEAD_MORE)
		return V_MORE;
	if (r == HEAD_ERROR || (!response && head_check_request(h) != 0) ||
	    (response && (head_check_response(h) != 0 || head_response_body(h, false) != 0)))
		return V_REFUSE;
	return V_ACCEPT;
}

static void
compare_accepted(struct ref *r, const struct head *h, size_t head_len)
{
	const char *d = h->bytes.data;

	if (h->bytes.len != head_len || h->nfields != r->n)
		abort();
	for (size_t i = 0; i < r->n; i++) {
		const struct ref_field *a = &r->f[i];
		const struct head_field *b = &h->fields[i];

		if (a->name != b->name || a->name_len != b->name_len ||
		    a->value_len != b->value_len ||
		    memcmp(r->data + a->value, d + b->value, a->value_len) != 0)
			abort();
	}
	if (r->response) {
		if (h->status != llhttp_get_status_code(&r->p) ||
		    h->minor != llhttp_get_http_minor(&r->p) || h->reason_len != r->reason_len ||
		    (r->reason_len > 0 && h->reason != r->reason))
			abort();
	} else if (h->target != r->target || h->target_len != r->target_len) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ref ref;
	struct head h;
	static const char tail[] = "HTTP/1.1 200 OK\r\nHost: a\r\n\r\n";
	bool response;
	size_t limit, max_fields, len, head_len = 0;
	enum verdict vr, vn;
	char *buf;

	if (size < 1 || size > 16384)
		return 0;
	response = data[0] & 1;
	limit = data[0] & 2 ? 256 : 8192;
	max_fields = response ? 0 : (data[0] & 4 ? 3 : 100);
	len = size - 1;
	buf = malloc(len + 4 + sizeof(tail));
	memcpy(buf, data + 1, len);
	memcpy(buf + len, "\r\n\r\n", 4);
	memcpy(buf + len + 4, tail, sizeof(tail));
	memset(&ref, 0, sizeof(ref));
	ref.response = response;
	ref.max_fields = max_fields;
	head_init(&h);
	vr = ref_parse(&ref, buf, len, limit, &head_len);
	vn = new_parse(&h, response, buf, len, limit, max_fields);
	if (vr != vn && (vr == V_MORE || vn == V_MORE)) {
		/* One side undecided: complete the head for that side only. */
		for (size_t more = 4; vr == V_MORE && more <= 4 + sizeof(tail) - 1;
		     more += sizeof(tail) - 1) {
			memset(&ref, 0, sizeof(ref));
			ref.response = response;
			ref.max_fields = max_fields;
			vr = ref_parse(&ref, buf, len + more, limit, &head_len);
		}
		if (vn == V_MORE) {
			vn = new_parse(&h, response, buf, len + 4, limit, max_fields);
		}
	}
	if (vr != vn)
		abort();
	if (vr == V_ACCEPT)
		compare_accepted(&ref, &h, head_len);
	head_free(&h);
	free(buf);
	return 0;
}
