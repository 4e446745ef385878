/*
 * h2.h: HTTP/2 client connections (RFC 9113) over nghttp2.  h2.c owns one
 * nghttp2 server session per connection and implements the client side of
 * an exchange (stream.h) once per stream: each stream's request head is
 * validated (RFC 9113 section 8.3, most of it by nghttp2's HTTP messaging
 * checks, :authority against Host here), turned into the same struct head
 * an HTTP/1.1 request gives (head.h: the same checks, the same path
 * normalization and routing afterwards) and handed to events->start();
 * responses go out as HEADERS and DATA frames, an abort as RST_STREAM.
 *
 * The connection itself (socket, TLS, bufferevent, accounting, close) stays
 * client.c's: it detects HTTP/2 (ALPN "h2", or the client preface on a
 * listener with http2 on), creates the session with the connection's
 * bufferevent and hands it every input byte and every writable event; the
 * session reports back only through the struct h2_owner table (close the
 * connection).  Calls go one way.
 *
 * Flow control is the backpressure: a stream's received DATA is
 * acknowledged (WINDOW_UPDATE) only as its exchange reads it, so a slow
 * upstream stalls that stream alone; a stream's response bytes wait in its
 * own buffer (stream_pending), which the client's window drains, so a slow
 * client stops the upstream reads of that stream alone.  Memory per
 * connection is bounded by the number of concurrent streams times the
 * stream window (request side) and STREAM_HIGH_WATER (response side), plus
 * nghttp2's HPACK tables.
 */
#ifndef PORTICO_H2_H
#define PORTICO_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct bufferevent;
struct evbuffer;
struct worker;
struct stream_events;
struct h2_session;

/* The client connection preface (RFC 9113 section 3.4). */
#define H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/* Limits fixed by the protocol handling (documented in portico.yaml.5). */
#define H2_MAX_STREAMS	  128	       /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define H2_STREAM_WINDOW  65535	       /* SETTINGS_INITIAL_WINDOW_SIZE */
#define H2_HPACK_TABLE	  4096	       /* SETTINGS_HEADER_TABLE_SIZE, both directions */
#define H2_OUT_HIGH	  (128 * 1024) /* frames generated ahead of the socket */
#define H2_FLOOD_INTERVAL 1000	       /* ms: the window the flood counters use */
#define H2_RST_MAX	  200	       /* RST_STREAM from the client per interval */
#define H2_PING_MAX	  100	       /* PING per interval */
#define H2_SETTINGS_MAX	  100	       /* SETTINGS per interval */
#define H2_EMPTY_MAX	  100	       /* DATA without payload nor END_STREAM per interval */

/* What the connection's owner does for the session. */
struct h2_owner {
	/* The connection must close (after what is queued is written). */
	void (*close)(void *owner, const char *reason);
};

struct h2_conn {
	struct worker *w;
	struct bufferevent *bev; /* the connection's: input and output */
	int fd;			 /* its socket */
	bool tls;		 /* libevent's OpenSSL bufferevent writes (else worker_flush) */
	const char *scheme;	 /* "http" or "https" */
	const char *addr;	 /* the client's address as text (outlives the session) */
	const struct sockaddr *sa;
	const struct h2_owner *owner;
	void *owner_arg;
	const struct stream_events *ev;
};

/* A session on a connection whose next input byte is the client preface. */
struct h2_session *h2_session_new(const struct h2_conn *conn);
/* Frees the session and its streams (after h2_session_detach). */
void h2_session_free(struct h2_session *s);
/* New bytes in the connection's input: read them all. */
void h2_session_read(struct h2_session *s);
/* The connection's output drained below its low mark. */
void h2_session_writable(struct h2_session *s);
/* Whether the connection's input should be read. */
bool h2_session_wants_read(const struct h2_session *s);
/* Graceful stop: GOAWAY with the last stream id; closes once the streams finished. */
void h2_session_drain(struct h2_session *s);
/* The connection is closing: every exchange lets go of its stream now. */
void h2_session_detach(struct h2_session *s, const char *reason);
/* Streams and requests so far (the close summary line). */
unsigned h2_session_requests(const struct h2_session *s);

#endif
