/*
 * stream.h: the client side of one exchange, as the exchange drives it.
 *
 * An exchange (exchange.h) never touches a client connection: it holds a
 * struct stream and calls the stream_*() operations below.  client.c
 * implements them for HTTP/1.1 connections (one stream per connection,
 * serving its requests in order); an HTTP/2 session would implement them
 * once per stream (HEADERS and DATA frames, RST_STREAM for an abort, its
 * flow-control window for pause and resume), with no change to routing,
 * forwarding or rewriting.
 *
 * Calls go one way.  The implementation reports what its client does
 * through the struct stream_events table its owner (the worker) handed it:
 * events->start() when a request head is complete (the exchange then binds
 * itself to the stream: s->ex), the others with s->ex while one is bound.
 * The exchange lets go of the stream with stream_end(), stream_error() or
 * stream_abort(), or when told events->gone(); the implementation never
 * reports to an exchange after that.  Neither side frees the other: each
 * object goes through its worker's deferred teardown (worker.h).
 *
 * Response heads are given as parsed fields; the implementation writes them
 * in its own protocol, with its own framing (Content-Length, chunked,
 * close-delimited for HTTP/1.1; frames for HTTP/2).  Bodies move between
 * evbuffers without copies.
 */
#ifndef PORTICO_STREAM_H
#define PORTICO_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct evbuffer;
struct head;
struct config;
struct worker;
struct stream;

/* Above this much response output queued toward the client, the exchange stops reading the
 * upstream; below the low mark it resumes. */
#define STREAM_HIGH_WATER (256 * 1024)
#define STREAM_LOW_WATER  (64 * 1024)

struct stream_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* A response head toward the client. */
struct stream_response {
	int status;
	const char *reason; /* as the upstream wrote it; NULL: the standard phrase */
	size_t reason_len;
	const struct stream_field *fields; /* end-to-end fields only (no framing, no Connection) */
	size_t nfields;
	int64_t length; /* the body's length when it is known and unchanged, else -1 */
	bool no_body;	/* nothing follows the head (HEAD, 204, 304), though length may say
			   what a GET would get */
	bool upgrade;	/* a 101: the connection becomes a tunnel (stream_tunnel) */
	bool close;	/* no further request should be read after this one */
};

/* What stream_read_body() found. */
enum stream_body {
	STREAM_BODY_MORE,  /* bytes moved (maybe none); more to come */
	STREAM_BODY_END,   /* the body is complete */
	STREAM_BODY_ERROR, /* malformed body framing (a 400) */
};

struct stream_ops {
	void (*send_head)(struct stream *s, const struct stream_response *r);
	void (*send_body)(struct stream *s, struct evbuffer *data, size_t len);
	void (*end)(struct stream *s);
	uint64_t (*error)(struct stream *s, int status, const char *reqid, bool close,
			  bool head_only);
	void (*abort)(struct stream *s, const char *reason);
	size_t (*pending)(struct stream *s);
	enum stream_body (*read_body)(struct stream *s, struct evbuffer *dst, size_t *moved);
	void (*pause_body)(struct stream *s, bool pause);
	void (*continue_100)(struct stream *s);
	void (*tunnel)(struct stream *s, uint64_t idle_ms);
	bool (*flush)(struct stream *s);
};

struct stream {
	const struct stream_ops *ops;
	void *ex;		   /* the exchange bound to this stream, or NULL */
	struct worker *w;	   /* the worker serving the client */
	const char *scheme;	   /* of the listener: "http" or "https" */
	const char *addr;	   /* the client's address as text (logs, X-Forwarded-For) */
	const struct sockaddr *sa; /* the client's address (access control) */
	unsigned retry_after;	   /* seconds for a Retry-After on the next error page; 0: none */
};

struct stream_events {
	/*
	 * A request head arrived: h->error is set when it was refused (the
	 * exchange answers with that status).  The exchange takes over `h`
	 * (returned to the worker's pool, worker_head_put) and the reference
	 * on `cfg`, the snapshot the request started under.
	 */
	void (*start)(struct stream *s, struct head *h, struct config *cfg);
	/* Request body bytes (or its end) can be read. */
	void (*body)(void *ex);
	/* The response output fell below STREAM_LOW_WATER. */
	void (*writable)(void *ex);
	/* No request bytes within the read timeout. */
	void (*timeout)(void *ex);
	/* The client connection is closing: the exchange lets go of the stream now. */
	void (*gone)(void *ex, const char *reason);
};

/*
 * The operations.  Each detaching one (end, error, abort) clears s->ex.
 */

/* Sends a response head; an interim one (1xx) may be dropped where the protocol has none. */
static inline void
stream_send_head(struct stream *s, const struct stream_response *r)
{
	s->ops->send_head(s, r);
}

/* Moves `len` bytes of `data` (drained from it) into the response body. */
static inline void
stream_send_body(struct stream *s, struct evbuffer *data, size_t len)
{
	s->ops->send_body(s, data, len);
}

/* The response is complete. */
static inline void
stream_end(struct stream *s)
{
	s->ops->end(s);
}

/*
 * A complete response portico generated (an error page with the request
 * id); `head_only` for HEAD.  Returns the body bytes sent.
 */
static inline uint64_t
stream_error(struct stream *s, int status, const char *reqid, bool close, bool head_only)
{
	return s->ops->error(s, status, reqid, close, head_only);
}

/* Cuts the response: the client must never take what it got for a complete one. */
static inline void
stream_abort(struct stream *s, const char *reason)
{
	s->ops->abort(s, reason);
}

/* Response bytes queued and not yet sent (backpressure). */
static inline size_t
stream_pending(struct stream *s)
{
	return s->ops->pending(s);
}

/* Moves the request body bytes the client sent so far into `dst` (*moved: how many). */
static inline enum stream_body
stream_read_body(struct stream *s, struct evbuffer *dst, size_t *moved)
{
	return s->ops->read_body(s, dst, moved);
}

/*
 * Starts (pause false), stops or resumes reading the request body.  Bytes
 * already received are reported again with events->body() from the loop.
 */
static inline void
stream_pause_body(struct stream *s, bool pause)
{
	s->ops->pause_body(s, pause);
}

/* Expect: 100-continue was honoured: tell the client to send its body. */
static inline void
stream_continue(struct stream *s)
{
	s->ops->continue_100(s);
}

/*
 * After a 101 head: every byte from the client is body (stream_read_body)
 * until it closes; `idle_ms` is the tunnel's idle timeout.
 */
static inline void
stream_tunnel(struct stream *s, uint64_t idle_ms)
{
	s->ops->tunnel(s, idle_ms);
}

/* Sends what is queued; true when the output is below STREAM_LOW_WATER. */
static inline bool
stream_flush(struct stream *s)
{
	return s->ops->flush(s);
}

#endif
