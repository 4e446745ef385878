/*
 * proxy.h: one HTTP exchange, from a parsed request head to the end of the
 * response: path normalization, routing, access control, the rebuilt
 * upstream request head, body streaming both ways with backpressure, the
 * response head (strict parse, hop-by-hop removal, framing, header
 * rewriting), WebSocket tunnels, error responses and the access log line.
 *
 * struct request is shared by client.c (which fills the request head) and
 * proxy.c; a worker keeps finished ones for reuse, so the hot path does not
 * allocate.
 */
#ifndef PORTICO_PROXY_H
#define PORTICO_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <llhttp.h>

#include "portico/bodyfilter.h"
#include "portico/http.h"
#include "portico/util.h"

struct client;
struct upstream;
struct config;
struct route;
struct filter;
struct worker;

/* A header as offsets into the buffer holding its head. */
struct hdr {
	uint32_t name, name_len;
	uint32_t value, value_len;
	uint8_t id; /* enum http_hdr */
};

enum body_kind {
	BODY_NONE,
	BODY_LENGTH,
	BODY_CHUNKED,
	BODY_EOF, /* responses only: until the upstream closes */
};

/* Above this much output queued toward one side, stop reading the other. */
#define PROXY_HIGH_WATER (256 * 1024)
#define PROXY_LOW_WATER	 (64 * 1024)
/* Interim (1xx) responses accepted before the final one. */
#define PROXY_MAX_INTERIM 16

#define REQUEST_MAGIC 0x52455155u

struct request {
	unsigned magic;
	struct request *next_free;
	struct client *c;
	struct upstream *up;
	struct config *cfg; /* the snapshot current when the request started */
	const struct route *route;
	char id[17];
	uint64_t start_us;
	time_t start_wall;

	/* The head being parsed: the request's, then the response's. */
	llhttp_t parser;
	struct buf head;  /* request head bytes (kept until the end: slices point here) */
	struct buf rhead; /* response head bytes */
	struct hdr *hdrs; /* request headers, then response headers */
	unsigned nhdrs;
	size_t hdrcap;
	bool in_value;
	bool head_done;
	int parse_status; /* status of a validation failure found in a callback */
	const char *parse_reason;

	/* Request line and the headers that matter (offsets into `head`). */
	uint32_t url, url_len;
	bool url_done;
	uint8_t method;
	uint8_t http_minor;
	int host_idx;
	uint32_t host, host_len; /* Host, or the absolute-form authority */
	uint32_t referer, referer_len, ua, ua_len;
	bool has_referer, has_ua, has_ae;
	uint32_t ae, ae_len; /* Accept-Encoding (the first one) */
	unsigned conn_flags;
	struct http_framing framing;
	bool expect_continue;
	bool expect_other;
	bool upgrade;
	bool keep_alive;		     /* the client may keep the connection */
	bool absolute;			     /* absolute-form target */
	uint32_t abs_target, abs_target_len; /* absolute-form: the whole target, for the log */
	struct buf path;		     /* normalized path */
	struct buf target;		     /* upstream request target */

	/* Request body. */
	enum body_kind body;
	uint64_t body_left;
	bool body_done;
	bool body_sent_any;
	uint64_t body_bytes;

	/* Response. */
	int status;
	enum body_kind rbody;
	uint64_t rbody_left;
	bool rechunk;	   /* send the body chunked to the client */
	bool close_delim;  /* send the body close-delimited to the client */
	bool resp_started; /* response head (or error page) queued toward the client */
	bool resp_done;
	bool up_reusable;
	bool tunnel;
	bool retried;
	unsigned ninterim;
	bool rhead_done;
	bool rbody_done;  /* chunked response: llhttp saw the end */
	bool rkeep_alive; /* the upstream may keep the connection */
	unsigned rconn_flags;
	struct http_framing rframing;
	uint32_t reason, reason_len; /* status text, offsets into rhead */
	bool rin_value;
	llhttp_t rparser;
	uint64_t tunnel_last_us;
	bool up_paused; /* upstream reading paused: the client's output is full */
	uint64_t bytes_sent;
	struct filter *filter; /* NULL: the body is passed through */
	bool filter_failed;
	bool bf_headers; /* body rewriting changes the response headers (bf says how) */
	bool bf_vary_done;
	const char *bf_encoding; /* "gzip" or NULL */
	bool bf_weaken_etag, bf_drop_ranges, bf_vary;
};

/*
 * Headers of a head being parsed, kept as offsets from `base` in req->hdrs;
 * shared by the request (client.c) and response (proxy.c) parsers.
 * proxy_hdr_name: a chunk of a name; starts a header, or -1 when that would
 * make more than `max`.  proxy_hdr_name_done: -1 when the name is not a
 * token.  proxy_hdr_value_done: trims trailing whitespace; NULL when the
 * value holds a forbidden byte.
 */
int proxy_hdr_name(struct request *req, const char *base, bool *in_value, const char *at,
		   size_t len, size_t max);
int proxy_hdr_name_done(struct request *req, const char *base);
void proxy_hdr_value(struct request *req, const char *base, bool *in_value, const char *at,
		     size_t len);
struct hdr *proxy_hdr_value_done(struct request *req, const char *base, bool *in_value);

/* Takes a request structure from the worker's free list (or allocates one). */
struct request *request_new(struct worker *w, struct client *c);
/* Drops the config reference and puts the structure back on the free list. */
void request_free(struct worker *w, struct request *req);

/* client.c: the request head is parsed and valid; route and forward it. */
void proxy_request_start(struct request *req);
/* client.c: bytes arrived in CLIENT_BODY. */
void proxy_request_body(struct request *req);
/* client.c: the client's output drained below the low watermark. */
void proxy_client_writable(struct request *req);
/* client.c: client bytes in a tunnel. */
void proxy_tunnel_from_client(struct request *req);
/* A side of a tunnel timed out: closes it unless the other side was active. */
void proxy_tunnel_timeout(struct request *req, bool client_side);
/* llhttp callbacks of the request body (chunked), used by client.c's parser settings. */
int proxy_on_request_body(llhttp_t *p, const char *at, size_t len);
int proxy_on_request_complete(llhttp_t *p);
/* client.c: the client connection goes away with this request in flight. */
void proxy_client_gone(struct request *req, const char *reason);
/* A response generated by portico: error page, then close when framing is unknown. */
void proxy_error(struct request *req, int status, const char *reason);

/* upstream.c: the connection has bytes, drained, failed, timed out or closed. */
void proxy_upstream_read(struct upstream *u);
void proxy_upstream_writable(struct upstream *u);
void proxy_upstream_failed(struct upstream *u, int status, const char *reason);
void proxy_upstream_eof(struct upstream *u);

#endif
