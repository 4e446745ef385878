/*
 * client.h: HTTP/1.1 client connections.  client.c owns a connection's
 * lifecycle (accept, one state enum with one transition function, the
 * client timeouts, one close path through the worker's deferred teardown),
 * reads request heads (head.h) and request bodies (Content-Length, chunked),
 * keeps pipelined requests waiting in order, and implements the client side
 * of an exchange (stream.h): it writes response heads with HTTP/1.1 framing
 * (Content-Length, chunked, close-delimited for HTTP/1.0 clients,
 * Connection), bodies, error pages and tunnels.  On a listener with
 * proxy_protocol it first reads the PROXY header (proxyproto.h), whose
 * address then stands for the peer's.
 *
 * It reports each request to the stream_events table the worker hands it
 * at accept; it never calls the exchange by name.  A connection that
 * speaks HTTP/2 (ALPN h2, or the client preface on a listener with http2
 * on) is handed to an HTTP/2 session (h2.h), which serves its streams while
 * client.c keeps the socket, the accounting and the close.
 */
#ifndef PORTICO_CLIENT_H
#define PORTICO_CLIENT_H

#include <sys/socket.h>

struct worker;
struct wlistener;
struct stream_events;

enum client_state {
	CLIENT_IDLE,   /* keep-alive: waiting for the first byte of a request */
	CLIENT_HEAD,   /* reading a request head */
	CLIENT_BODY,   /* an exchange reads the request body */
	CLIENT_WAIT,   /* the request is read; its response is in progress */
	CLIENT_TUNNEL, /* after a 101: bytes both ways */
	CLIENT_PROXY,  /* a proxy_protocol listener: reading the PROXY header, before TLS */
	CLIENT_H2,     /* an HTTP/2 session serves the connection (h2.h) */
	CLIENT_CLOSING,
};

const char *client_state_name(enum client_state s);

/* Takes over an accepted socket; its requests are reported to `ev`. */
void client_accept(struct worker *w, const struct wlistener *l, int fd, const struct sockaddr *sa,
		   int salen, const struct stream_events *ev);
/* Graceful stop: idle connections close now, the others after their response. */
void client_drain_all(struct worker *w);
/*
 * After a reload changed the worker's listeners: a connection whose listener
 * is gone, or an HTTP/2 one whose listener no longer says http2, winds down
 * (GOAWAY, or Connection: close on its current response).
 */
void client_listeners_changed(struct worker *w);
/* Closes every connection without waiting for its output (shutdown timeout, exit). */
void client_abort_all(struct worker *w, const char *reason);

#endif
