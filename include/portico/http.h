/*
 * http.h: pure HTTP/1.1 helpers for the data path: byte classes of header
 * names and values (RFC 9110 section 5), the headers portico treats
 * specially, Connection token lists, hop-by-hop classification, request
 * framing decisions (SPEC section 9), reason phrases and request ids.
 * Nothing here allocates, blocks or logs.
 */
#ifndef PORTICO_HTTP_H
#define PORTICO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Headers the data path looks at; everything else is HTTP_HDR_OTHER. */
enum http_hdr {
	HTTP_HDR_OTHER,
	HTTP_HDR_HOST,
	HTTP_HDR_CONTENT_LENGTH,
	HTTP_HDR_TRANSFER_ENCODING,
	HTTP_HDR_CONNECTION,
	HTTP_HDR_KEEP_ALIVE,
	HTTP_HDR_PROXY_CONNECTION,
	HTTP_HDR_TE,
	HTTP_HDR_TRAILER,
	HTTP_HDR_UPGRADE,
	HTTP_HDR_PROXY_AUTHORIZATION,
	HTTP_HDR_EXPECT,
	HTTP_HDR_X_FORWARDED_FOR,
	HTTP_HDR_X_FORWARDED_HOST,
	HTTP_HDR_X_FORWARDED_PROTO,
	HTTP_HDR_FORWARDED,
	HTTP_HDR_VIA,
	HTTP_HDR_REFERER,
	HTTP_HDR_USER_AGENT,
	HTTP_HDR_ACCEPT_ENCODING,
	HTTP_HDR_CONTENT_TYPE,
	HTTP_HDR_CONTENT_ENCODING,
	HTTP_HDR_ETAG,
	HTTP_HDR_ACCEPT_RANGES,
	HTTP_HDR_VARY,
	/* Response headers reverse.h rewrites (enum reverse_kind). */
	HTTP_HDR_LOCATION,
	HTTP_HDR_CONTENT_LOCATION,
	HTTP_HDR_URI,
	HTTP_HDR_DESTINATION,
	HTTP_HDR_REFRESH,
	HTTP_HDR_LINK,
	HTTP_HDR_SET_COOKIE,
};

/* RFC 9110 tchar: 1 for ALPHA, DIGIT and "!#$%&'*+-.^_`|~" (a table for inline scans). */
extern const uint8_t http_tchar[256];
bool http_is_tchar(unsigned char c);
/* A field name: one or more tchar. */
bool http_name_is_valid(const char *p, size_t len);
/* A field value: VCHAR, obs-text, SP and HTAB only (no CR, LF, NUL or other controls). */
bool http_value_is_valid(const char *p, size_t len);
/* A Host value: reg-name / IPv4 / [IPv6] with an optional port; not empty. */
bool http_host_is_valid(const char *p, size_t len);
/* The host of a Host value without its port (brackets of an IPv6 literal kept). */
size_t http_host_strip_port(const char *p, size_t len);

/*
 * A request target: origin-form ("/path?q") is returned as it is (0), an
 * absolute-form one ("http://authority/path?q", the scheme in any case) is
 * split into its authority (a valid Host value) and the rest, which may be
 * empty (1); anything else is -1 (a 400).  *rest and *rlen get the origin
 * part in both successful cases, *auth and *alen the authority (NULL, 0
 * for origin-form).
 */
int http_target_split(const char *t, size_t len, const char **auth, size_t *alen, const char **rest,
		      size_t *rlen);

enum http_hdr http_header_id(const char *name, size_t len);
/*
 * Hop-by-hop headers removed in both directions (SPEC section 4): Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-Authorization.  Headers named in Connection are handled separately.
 */
bool http_header_is_hop_by_hop(enum http_hdr id);

/*
 * Iterates the comma-separated tokens of a list value ("close, Upgrade"):
 * sets *tok and *toklen to the next non-empty element with surrounding
 * whitespace removed and returns true, or returns false at the end.  *pos
 * starts at 0.
 */
bool http_list_next(const char *v, size_t len, size_t *pos, const char **tok, size_t *toklen);
/* True when the list value holds `token` (any case). */
bool http_list_has(const char *v, size_t len, const char *token);

/* Connection tokens that matter to the data path. */
#define HTTP_CONN_CLOSE	     0x1
#define HTTP_CONN_KEEP_ALIVE 0x2
#define HTTP_CONN_UPGRADE    0x4
#define HTTP_CONN_OTHER	     0x8 /* names another header to remove */
unsigned http_connection_flags(const char *v, size_t len);

/*
 * Message framing gathered header by header, then judged once (SPEC section
 * 9).  Content-Length must appear once with one value, digits only (the
 * value's surrounding whitespace removed): a repeated one or a list is
 * rejected even when the values agree (as llhttp in strict mode does), so a
 * proxy in front and portico can never disagree on where a body ends.
 * Transfer-Encoding must be exactly "chunked" (one coding, once), and never
 * comes with Content-Length.
 */
struct http_framing {
	bool has_length;
	bool has_te;
	bool chunked;
	bool bad; /* a malformed or conflicting value was seen */
	uint64_t length;
};

enum http_framing_verdict {
	HTTP_FRAMING_NONE,    /* no body */
	HTTP_FRAMING_LENGTH,  /* Content-Length body (length may be 0) */
	HTTP_FRAMING_CHUNKED, /* chunked body */
	HTTP_FRAMING_INVALID, /* 400 */
};

void http_framing_add_length(struct http_framing *f, const char *v, size_t len);
void http_framing_add_te(struct http_framing *f, const char *v, size_t len);
enum http_framing_verdict http_framing_check(const struct http_framing *f);

/* Parses a Content-Length value (1*DIGIT, no sign, no overflow).  0 or -1. */
int http_parse_length(const char *v, size_t len, uint64_t *out);

/*
 * Checks a raw message head (start line to the empty line) for what must
 * never pass whatever the parser accepted: bare CR, bare LF, obs-fold and
 * NUL.  Returns NULL, or a static reason.
 */
const char *http_head_scan(const char *p, size_t len);

/* The standard reason phrase of a status code ("Not Found"), or "Unknown". */
const char *http_reason(int status);

/* 16 lower-case hex digits and a NUL: a request id from a 64-bit value. */
#define HTTP_REQID_LEN 16
void http_reqid_format(char out[HTTP_REQID_LEN + 1], uint64_t v);

/* Appends `v` in lower-case hex to `out` (>= 17 bytes); returns the length. */
size_t http_hex(char *out, uint64_t v);

#endif
