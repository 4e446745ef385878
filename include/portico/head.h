/*
 * head.h: HTTP/1.x message heads, for requests (client connections and the
 * admin listener) and responses (upstream connections): one parser state,
 * one header store, the checks of SPEC section 9, framing and Connection
 * flags.
 *
 * A head's bytes are copied once into h->bytes and parsed there, so every
 * field is a pair of offsets into one contiguous, stable block however the
 * bytes arrived.  head_feed() takes new bytes from an evbuffer, stops at the
 * end of the head (the bytes after it, a body or the next message, stay in
 * the evbuffer) and scans each complete line once: the field is checked
 * (a token name, a value without control bytes, CRLF line ends, no
 * obs-fold, no NUL), classified (http.h) and recorded with the facts the
 * data path acts on (Host, framing, Connection, Expect, Upgrade...).
 * A request line is parsed by llhttp in strict mode (method, target,
 * version), which stops at the end of the version; the field lines are the
 * scanner's, as for responses.  The scanner accepts exactly what llhttp in
 * strict mode followed by portico's checks accepts, on requests and on
 * responses (tests/fuzz/fuzz_head_scan.c runs both over the same bytes).
 * head_check_request() then applies SPEC section 9, so the verdict does
 * not depend on the llhttp version; head_check_response() and
 * head_response_body() judge responses.
 *
 * Another protocol's front end (an HTTP/2 session) would fill the same
 * struct (the bytes, a field per header, the start line's parts) and run
 * the same checks, so the exchange reads every request the same way.
 *
 * Heads are reused: head_reset() keeps the buffers, head_trim() gives large
 * ones back.  Nothing here logs; failures set h->error and h->why.
 */
#ifndef PORTICO_HEAD_H
#define PORTICO_HEAD_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <llhttp.h>

#include "portico/http.h"
#include "portico/util.h"

struct evbuffer;

enum head_kind {
	HEAD_REQUEST,
	HEAD_RESPONSE,
};

/* A field as offsets into the head's bytes. */
struct head_field {
	uint32_t name, name_len;
	uint32_t value, value_len;
	uint8_t id; /* enum http_hdr */
};

/* How the message's body is delimited, once the head is judged. */
enum head_body {
	HEAD_BODY_NONE,
	HEAD_BODY_LENGTH,
	HEAD_BODY_CHUNKED,
	HEAD_BODY_EOF, /* responses only: until the upstream closes */
};

enum head_result {
	HEAD_MORE,  /* the head is not complete yet */
	HEAD_DONE,  /* complete: h->bytes holds exactly the head */
	HEAD_ERROR, /* h->error and h->why say why */
};

#define HEAD_NONE (-1) /* a field index that is absent */

struct head {
	enum head_kind kind;
	struct buf bytes; /* the head, start line to the empty line */
	struct head_field *fields;
	unsigned nfields;
	size_t fields_cap;

	/* The start line. */
	uint8_t method;		     /* requests: llhttp_method_t */
	uint8_t minor;		     /* HTTP/1.<minor> */
	uint16_t status;	     /* responses */
	uint32_t target, target_len; /* requests: the target as received */
	uint32_t reason, reason_len; /* responses: the reason phrase */
	uint32_t origin,
	    origin_len; /* requests: path and query (absolute-form: after the authority) */
	uint32_t authority, authority_len; /* requests: Host, or the absolute-form authority */

	/* Facts gathered field by field. */
	unsigned conn_flags; /* HTTP_CONN_* of every Connection field */
	struct http_framing framing;
	int host, referer, user_agent, accept_encoding; /* first field of each, or HEAD_NONE */
	bool expect_continue, expect_other, has_upgrade;

	/* Judged by head_check_request() / head_check_response(). */
	enum head_body body;
	uint64_t length;   /* HEAD_BODY_LENGTH */
	bool absolute;	   /* requests: absolute-form target */
	bool keep_alive;   /* the peer may keep the connection after this message */
	bool upgrade;	   /* requests: a protocol upgrade is asked for (SPEC section 4) */
	bool h2;	   /* requests: an HTTP/2 stream's head, written as HTTP/1.1 (h2.c) */
	uint64_t start_us; /* requests: when the first byte arrived (monotonic, and wall clock) */
	time_t start_wall;

	/* Parsing. */
	llhttp_t parser; /* requests only */
	size_t max_fields;
	size_t scanned;	    /* bytes of complete lines scanned so far */
	size_t end;	    /* the head's length, once its empty line is scanned */
	bool start_scanned; /* the start line is behind */
	bool done;
	bool line_parsed;   /* requests: llhttp has read the request line, and stops there */
	size_t version_end; /* requests: where llhttp stopped, after the version's digits */
	bool bad_method;    /* llhttp refused the method: judged by its token */
	size_t version_at;  /* after a version of another major, once refused */
	bool target_done;
	bool method_known; /* requests: the method was parsed (else it logs as "-") */
	int error;	   /* an error status: 400, 405, 408, 414, 431, 502 */
	const char *why;   /* its static reason */
	bool too_large;	   /* the error is the size limit (else malformed bytes) */
};

void head_init(struct head *h);
/* Frees the buffers. */
void head_free(struct head *h);
/* Ready for a new head of `kind`; keeps the buffers. */
void head_reset(struct head *h, enum head_kind kind);
/* Frees buffers grown beyond what an ordinary head needs (before pooling). */
void head_trim(struct head *h);

/*
 * Copies what `in` holds beyond the bytes already seen (at most `limit` + 4
 * in all) and parses it.  HEAD_DONE drains exactly the head from `in`.
 * Requests stop at `max_fields` fields (431); a request head over `limit`
 * is a 414 when the target alone is over it, else a 431; a response head
 * over it is a 502.  Malformed bytes are a 400 (requests) or a 502
 * (responses).  `max_fields` 0: no limit.
 */
enum head_result head_feed(struct head *h, struct evbuffer *in, size_t limit, size_t max_fields);
/*
 * The same for a head's first bytes, `n` of them at `p` (h is fresh):
 * HEAD_DONE when p starts with the whole head (h->end bytes of it).
 * Otherwise the caller hands all `n` bytes to the evbuffer that later
 * head_feed() calls read, as if they had arrived there.
 */
enum head_result head_feed_bytes(struct head *h, const char *p, size_t n, size_t limit,
				 size_t max_fields);

/*
 * The checks of SPEC section 9 on a complete request head (bare CR or LF,
 * obs-fold and NUL were refused by the scanner): the version, CONNECT
 * (405), the request line, the target
 * (origin or absolute form), Host (missing or repeated on HTTP/1.1,
 * invalid), framing (Content-Length with Transfer-Encoding, repeated or
 * invalid Content-Length, a coding other than chunked).  Sets body, length,
 * keep_alive, upgrade, origin and authority.  0, or the error status with
 * h->why set.
 */
int head_check_request(struct head *h);

/*
 * The checks on a complete response head beyond what the scanner refused
 * (bare CR or LF, obs-fold, NUL, anything but HTTP/1.x and a three-digit
 * status from 100 to 599).  Sets keep_alive (the upstream may keep the
 * connection).  0, or 502 with h->why set.  The body
 * framing depends on the request too: head_response_body().
 */
int head_check_response(struct head *h);
/*
 * How a checked response's body is delimited, given whether the request was
 * HEAD: none for HEAD, 1xx, 204 and 304; else Content-Length, chunked, or
 * until the upstream closes (which also clears keep_alive).  -1 when the
 * framing fields conflict.
 */
int head_response_body(struct head *h, bool head_request);

/* A field's name and value. */
static inline const char *
head_name(const struct head *h, const struct head_field *f)
{
	return h->bytes.data + f->name;
}

static inline const char *
head_value(const struct head *h, const struct head_field *f)
{
	return h->bytes.data + f->value;
}

/*
 * A field still laid out as the line it was read from, "name: value" CRLF
 * (one space, no trailing whitespace): the line's bytes are what
 * head_put_field would write, so runs of such lines are copied whole.
 * Addresses are compared as integers: a field may point into any buffer,
 * or at a literal.
 */
static inline bool
head_field_is_line(const char *name, size_t name_len, const char *value, size_t value_len)
{
	return (uintptr_t)value == (uintptr_t)name + name_len + 2 && name[name_len] == ':' &&
	       name[name_len + 1] == ' ' && value[value_len] == '\r' &&
	       value[value_len + 1] == '\n';
}

/* The value of field index `i` (HEAD_NONE: NULL, *len 0). */
const char *head_value_at(const struct head *h, int i, size_t *len);
/* The request method's name ("GET"). */
const char *head_method_name(const struct head *h);
/* True when field `f` is named in one of the head's Connection fields. */
bool head_named_in_connection(const struct head *h, const struct head_field *f);

/*
 * Writing heads into a buffer (one reservation per call): bytes, a string,
 * a "name: value\r\n" field, a decimal number.
 */
static inline void
head_put(struct buf *out, const void *p, size_t n)
{
	if (out->len + n + 1 > out->cap)
		buf_reserve(out, n);
	if (n > 0)
		memcpy(out->data + out->len, p, n);
	out->len += n;
	out->data[out->len] = '\0';
}

static inline void
head_put_str(struct buf *out, const char *s)
{
	head_put(out, s, strlen(s));
}

void head_put_field(struct buf *out, const char *name, size_t nlen, const char *value, size_t vlen);
void head_put_decimal(struct buf *out, uint64_t v);

#endif
