/*
 * h2_int.h: what the files of the HTTP/2 side share (private to h2.c and
 * h2_stream.c).  h2.c owns the session: nghttp2's callbacks, reading and
 * writing the connection, the flood defenses, timers and the close;
 * h2_stream.c owns a stream: its request head (RFC 9113 section 8.3, then
 * the HTTP/1.1 head the exchange reads) and the stream operations
 * (stream.h) an exchange drives.
 */
#ifndef PORTICO_H2_INT_H
#define PORTICO_H2_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "portico/h2.h"
#include "portico/stream.h"
#include "portico/util.h"
#include "portico/worker.h"

#define H2_SESSION_MAGIC 0x48325353u
#define H2_STREAM_MAGIC	 0x48325354u

struct head;
struct config;

struct h2_stream {
	unsigned magic;
	struct stream st; /* the client side of the stream's exchange */
	struct h2_session *sess;
	struct worker_reap reap;
	struct h2_stream *prev, *next; /* the session's open streams */
	int32_t id;

	/* The request head being received, and the snapshot it started under. */
	struct head *head;
	struct config *cfg;
	size_t header_bytes;
	unsigned header_count;
	bool too_large;	 /* over limits.header_size or header_count: a 431 */
	const char *bad; /* malformed (RFC 9113 section 8.1.1): why; a PROTOCOL_ERROR */

	struct evbuffer *in;  /* request body bytes received, not yet read by the exchange */
	struct evbuffer *out; /* response body bytes not yet in DATA frames */
	bool started;	      /* handed to events->start() */
	bool remote_closed;   /* END_STREAM received */
	bool ended;	      /* the response is complete: END_STREAM after `out` */
	bool deferred;	      /* nghttp2 waits for response bytes (resume_data) */
	bool reset;	      /* RST_STREAM submitted */
	bool paused;	      /* the exchange paused reading the request body */
	bool body_pending;    /* events->body() is due */
	bool writable_pending;
	uint64_t bytes_in, bytes_out; /* body bytes; and their marks at the last timer */
	uint64_t in_mark, out_mark;
};

struct h2_session {
	unsigned magic;
	struct h2_conn c;
	nghttp2_session *ng;
	struct h2_stream *streams;
	unsigned nstreams, nrequests;
	struct event *work;  /* deferred: events to the exchanges, then sending */
	struct event *timer; /* idle, or the streams' stall checks */
	bool timer_streams;  /* the timer checks streams (else it is the idle one) */
	bool draining;	     /* GOAWAY sent for a graceful stop */
	bool closing;	     /* the owner was told to close */
	bool defended;	     /* a defense ended the session (counted once) */
	const char *why;     /* why the session ends */

	/* The head being received (one header block at a time). */
	struct buf method, path, authority, host, fields, cookie;
	struct buf text; /* the head as the HTTP/1.1 request it stands for */
	bool has_authority, in_trailers;

	/* Flood counters, over H2_FLOOD_INTERVAL. */
	uint64_t window_ms;
	unsigned nrst, nping, nsettings, nempty, nprio;

	/* Scratch for response heads. */
	nghttp2_nv *nva;
	size_t nva_cap;
	struct buf names;
};

/* h2.c */
/* Runs the deferred pass (events, then sending) from the loop. */
void h2_schedule(struct h2_session *s);
/* Counts a defense, logs it and ends the connection with GOAWAY `code`. */
void h2_defend(struct h2_session *s, int counter, uint32_t code, const char *why);

/* h2_stream.c */
struct h2_stream *h2_stream_new(struct h2_session *s, int32_t id);
/* A header of the request head (names are lower case: nghttp2 checked them). */
void h2_stream_header(struct h2_stream *st, const uint8_t *name, size_t nlen, const uint8_t *value,
		      size_t vlen);
/* The header block is complete: validated, turned into a head, and started. */
void h2_stream_start(struct h2_stream *st, bool end_stream);
/* Request body bytes arrived. */
void h2_stream_data(struct h2_stream *st, const uint8_t *data, size_t len);
/* nghttp2 closed the stream: the exchange lets go; freed from the loop. */
void h2_stream_closed(struct h2_stream *st, uint32_t code);
/* The session is going away: the exchange lets go (the stream is freed with the session). */
void h2_stream_detach(struct h2_stream *st, const char *reason);
void h2_stream_free(struct h2_stream *st);
/* Reports due events to the stream's exchange. */
void h2_stream_report(struct h2_stream *st);
/* The stall and body timeouts: a stalled stream is reset, a silent body reported. */
void h2_stream_check(struct h2_stream *st);
/* Puts `n` response body bytes of `st` after the frame header (send_data_callback). */
void h2_stream_take(struct h2_stream *st, struct evbuffer *out, size_t n);
ssize_t h2_stream_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
			  uint32_t *flags, nghttp2_data_source *src, void *arg);

#endif
