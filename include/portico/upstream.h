/*
 * upstream.h: HTTP/1.1 connections to upstreams, and the per-worker pool
 * of kept-alive ones keyed by (scheme, host, port, TLS settings).
 * upstream.c owns name resolution (never blocking), connecting, TLS, the
 * connect/read/idle timeouts and the pool, and it reads responses: heads
 * (head.h), then bodies decoded from their framing (Content-Length,
 * chunked, or until the upstream closes), or raw bytes after a 101.
 *
 * The exchange that takes a connection with upstream_get() hands it a
 * struct upstream_cbs table and its own pointer; the connection reports
 * through it and never includes the exchange's header.  The exchange writes
 * the request into upstream_out() and calls upstream_flush(); it gives the
 * connection back with upstream_release() (to the pool when reusable) or
 * upstream_close().  A failed exchange on a group of servers (SPEC section
 * 12) would take another connection with upstream_get() for another key
 * and write the request again: f->got_bytes says whether that is allowed.
 *
 * Idle pooled connections keep reading with upstream_idle as the read
 * timeout, so an upstream close, unexpected bytes or expiry drop them at
 * once.
 */
#ifndef PORTICO_UPSTREAM_H
#define PORTICO_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct head;
struct route;
struct tls_client;
struct worker;
struct upstream;
struct upstream_pool;

/* What the exchange wants after a response head (upstream_cbs.head). */
enum upstream_next {
	UPSTREAM_NEXT_HEAD,   /* an interim (1xx) head: read the next head */
	UPSTREAM_NEXT_BODY,   /* read the body as the head frames it (maybe none) */
	UPSTREAM_NEXT_TUNNEL, /* 101: raw bytes both ways until either side closes */
	UPSTREAM_NEXT_STOP,   /* the exchange gave the connection up during the call */
};

/* A failure, before the response or during it. */
struct upstream_failure {
	int status;	    /* 502 (refused, reset, TLS, invalid response), 504 (timeout),
			       0: a tunnel's upstream closed (its normal end) */
	const char *reason; /* for the log line and the error page's log */
	const char *detail; /* an invalid response: the parser's reason, else NULL */
	bool got_bytes;	    /* a response byte had arrived */
	bool reused;	    /* the connection came from the pool */
	bool connecting;    /* it failed before the connection was up */
};

struct upstream_cbs {
	/* A response head is parsed (valid for the call only): what follows? */
	enum upstream_next (*head)(void *arg, struct head *h);
	/* Response body bytes (decoded; raw in a tunnel): take `len` bytes of `data`. */
	void (*body)(void *arg, struct evbuffer *data, size_t len);
	/* The response is complete (the connection is then released or closed). */
	void (*end)(void *arg);
	/* The request output fell below the low watermark. */
	void (*writable)(void *arg);
	/* The connection failed; the exchange closes it (upstream_close). */
	void (*failed)(void *arg, const struct upstream_failure *f);
	/* A tunnel saw no upstream byte within its idle timeout. */
	void (*idle)(void *arg);
};

/* Where a connection goes: a host and port (resolved), or a unix-domain socket. */
struct upstream_dest {
	const char *host;      /* NULL with unix_path */
	uint16_t port;	       /* 0 with unix_path */
	const char *unix_path; /* a socket's path, or NULL */
	const char *sni;       /* https: the name for SNI and verification */
};

struct upstream_pool *upstream_pool_new(struct worker *w);
void upstream_pool_free(struct upstream_pool *p);
/* Closes every idle connection (graceful stop). */
void upstream_pool_close_idle(struct upstream_pool *p);

/*
 * A connection for route `r` to `d` (the route's URL, or a server of its
 * group): a pooled one, or a new one being resolved or connected (`fresh`
 * skips the pool: a retry).  Never fails at once: failures arrive through
 * cbs->failed from the loop.  `tls` is the route's TLS context
 * (config_route_tls), NULL for http://; `head_limit` is
 * limits.response_header_size.
 */
struct upstream *upstream_get(struct worker *w, const struct route *r,
			      const struct upstream_dest *d, struct tls_client *tls,
			      size_t head_limit, bool fresh, const struct upstream_cbs *cbs,
			      void *arg);
/* The exchange is done with it: back to the pool when `reuse` and it can be, else closed. */
void upstream_release(struct upstream *u, bool reuse);
/* Closes the connection; no callback follows.  Freed by the worker's deferred teardown. */
void upstream_close(struct upstream *u, const char *reason);
/* The request toward the upstream. */
struct evbuffer *upstream_out(struct upstream *u);
/* Sends what is queued now; true when the output is below the low watermark. */
bool upstream_flush(struct upstream *u);
/*
 * Sends `n` bytes: written at once when nothing is queued and the
 * connection is plain and connected (no copy into the output), else, and
 * whatever the kernel does not take, queued as upstream_out() would.
 */
void upstream_send(struct upstream *u, const void *p, size_t n);
/*
 * Response bytes already read and not yet reported: from the head
 * callback, what the connection reports next before its callback returns.
 */
bool upstream_has_input(struct upstream *u);
/* Read timeout between two reads while a response is awaited or streamed (also for writes). */
void upstream_set_read_timeout(struct upstream *u, uint64_t ms);
/* Backpressure: stop or resume reading the response (bytes already read are reported again). */
void upstream_pause_read(struct upstream *u, bool pause);
/* The next reads take at most about `room` bytes (what the client's output has left). */
void upstream_set_read_room(struct upstream *u, size_t room);
/* "address:port" once resolved, else "". */
const char *upstream_addr(const struct upstream *u);

#endif
