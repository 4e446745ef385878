/*
 * upstream.h: connections to upstreams.  Per worker, a pool of kept-alive
 * HTTP/1.1 connections keyed by (scheme, host, port, TLS settings); idle
 * connections expire after upstream_idle and are dropped as soon as the
 * upstream closes them or sends anything.  Name resolution never blocks.
 * upstream.c owns connecting, timeouts and the pool; proxy.c owns the
 * HTTP exchange on a connection.
 */
#ifndef PORTICO_UPSTREAM_H
#define PORTICO_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct bufferevent;
struct event;
struct worker;
struct route;
struct request;
struct resolve_req;
struct upstream_pool;

enum upstream_state {
	UPSTREAM_RESOLVING,
	UPSTREAM_CONNECTING,
	UPSTREAM_BUSY, /* carrying a request */
	UPSTREAM_IDLE, /* in the pool */
	UPSTREAM_CLOSING,
};

#define UPSTREAM_MAGIC 0x55505354u

struct upstream {
	unsigned magic;
	enum upstream_state state;
	struct worker *w;
	struct upstream_key *key;
	struct bufferevent *bev;
	struct event *rev;   /* reading, once connected (see worker_read) */
	struct request *req; /* while busy */
	struct resolve_req *rq;
	struct upstream *next; /* pool's idle list, or worker's closing list */
	struct upstream *prev;
	bool reused;	/* taken from the pool */
	bool got_bytes; /* a response byte arrived for the current request */
	bool reading;	/* rev is armed */
	bool paused;	/* reading paused: the client's output is full */
	bool read_eof;
	bool connected;
	bool tls;	 /* OpenSSL bufferevent: libevent's own read and write paths */
	bool tls_failed; /* no TLS context: fails as soon as the loop runs */
	uint64_t write_ms;
	char why[160]; /* a failure's reason, when it needs formatting */
	const char *close_reason;
	uint64_t connect_ms, read_ms;
	bool timeouts_clear; /* `bev` has neither timeout set */
	char addr[56];	     /* "address:port" once known */
};

struct upstream_pool *upstream_pool_new(struct worker *w);
void upstream_pool_free(struct upstream_pool *p);
/* Closes every idle connection (graceful stop). */
void upstream_pool_close_idle(struct upstream_pool *p);

/*
 * A connection for `r`'s upstream: a pooled one (reused = true) or a new one
 * being resolved or connected.  Never fails at once: failures arrive later
 * through proxy_upstream_error().  `fresh` skips the pool (a retry).
 */
struct upstream *upstream_get(struct worker *w, const struct route *r, struct request *req,
			      bool fresh);
/* The request is done with the connection: back to the pool when `reuse`, else closed. */
void upstream_release(struct upstream *u, bool reuse);
/* Marks for close; freed by the worker's reap pass. */
void upstream_close(struct upstream *u, const char *reason);
void upstream_free(struct upstream *u);
/* Read timeout between two reads while a response is awaited or streamed (also for writes). */
void upstream_set_read_timeout(struct upstream *u, uint64_t ms);
/* Backpressure: stop or resume reading the response. */
void upstream_pause_read(struct upstream *u, bool pause);
/* Sends what is queued now (see worker_flush); nothing while connecting. */
void upstream_flush(struct upstream *u);

#endif
