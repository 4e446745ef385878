/*
 * client.h: a client connection.  client.c owns its lifecycle (accept,
 * states, timeouts, the one close path), reads and validates request heads
 * (llhttp in strict mode plus portico's own checks of SPEC section 9), and
 * writes what proxy.c produces.
 */
#ifndef PORTICO_CLIENT_H
#define PORTICO_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event_struct.h>

struct bufferevent;
struct event;
struct worker;
struct wlistener;
struct request;
struct tls_server;

enum client_state {
	CLIENT_IDLE,	      /* keep-alive: waiting for the first byte of a request */
	CLIENT_HEAD,	      /* reading a request head */
	CLIENT_BODY,	      /* head forwarded, streaming the request body */
	CLIENT_WAIT_UPSTREAM, /* request sent, waiting for the response head */
	CLIENT_RESPONSE,      /* sending the response */
	CLIENT_TUNNEL,	      /* after a 101: bytes both ways */
	CLIENT_CLOSING,	      /* marked for close */
};

#define CLIENT_MAGIC 0x434c4e54u

struct client {
	unsigned magic;
	enum client_state state;
	struct worker *w;
	const char *scheme;	 /* of the listener: "http" or "https" (static string) */
	struct bufferevent *bev; /* NULL while idle: parked in the worker's spares */
	int fd;
	struct tls_server *tls;	    /* TLS listener: libevent's OpenSSL read and write paths */
	struct event timer;	    /* client_header deadline and client_idle */
	struct event rev;	    /* reading (plain sockets: see worker_read) */
	uint64_t read_ms;	    /* read timeout of the current state, 0: none */
	uint64_t bev_write_ms;	    /* send timeout set on a plain `bev` */
	bool reading;		    /* rev is armed */
	bool parse_pending;	    /* rev activated to parse bytes already buffered */
	struct request *req;	    /* the request in progress, or NULL */
	struct client *prev, *next; /* worker's list */
	struct client *next_closing;
	const char *close_reason;
	bool read_eof;	    /* the client half-closed */
	bool close_after;   /* close once the current response is complete */
	bool upstream_full; /* reading paused: the upstream's output is over the watermark */
	unsigned nrequests;
	uint64_t bytes_in, bytes_out;
	uint64_t start_us;
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	} sa;
	char addr[48]; /* text form for logs and X-Forwarded-For */
};

/* Takes over an accepted socket. */
void client_accept(struct worker *w, const struct wlistener *l, int fd, const struct sockaddr *sa,
		   int salen);
void client_set_state(struct client *c, enum client_state s);
const char *client_state_name(enum client_state s);
/* Marks the connection for close; the worker frees it outside the current callback. */
void client_close(struct client *c, const char *reason);
/* Closes without waiting for queued output to drain (shutdown timeout, exit). */
void client_abort(struct client *c, const char *reason);
/* The worker's reap pass: frees a marked connection. */
void client_free(struct client *c);
/* The current request is over: back to idle (or close); parses pipelined bytes. */
void client_request_done(struct client *c);
/* Reading from the client, paused or resumed for backpressure. */
void client_update_read(struct client *c);
/*
 * Sends what an exchange queued toward the client and its upstream now
 * (plain sockets), resuming the side that backpressure paused when the
 * output drained.  Called at the end of every callback that produced output.
 */
void client_flush(struct client *c);
/* Graceful stop: close if idle, else close after the response in progress. */
void client_drain(struct client *c);

#endif
