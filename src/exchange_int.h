/*
 * exchange_int.h: what the files of the exchange share (private to
 * exchange.c, failover.c, forward.c, relay.c and tunnel.c).  exchange.c
 * owns the structure's lifecycle, its phases, the start (routing), errors,
 * the end and the access log; failover.c the server of an upstream group
 * and moving to another one after a failure; forward.c the request toward
 * the upstream; relay.c the response toward the client; tunnel.c the bytes
 * after a 101.
 */
#ifndef PORTICO_EXCHANGE_INT_H
#define PORTICO_EXCHANGE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "portico/exchange.h"
#include "portico/head.h"
#include "portico/http.h"
#include "portico/stream.h"
#include "portico/upstream.h"
#include "portico/util.h"
#include "portico/worker.h"

#define EXCHANGE_MAGIC 0x45584348u
/* Interim (1xx) responses accepted before the final one. */
#define EXCHANGE_MAX_INTERIM 16

struct config;
struct route;
struct filter;
struct group_server;

struct exchange {
	unsigned magic;
	enum exchange_req_phase rq;
	enum exchange_resp_phase rs;
	struct worker *w;
	struct worker_reap reap;
	struct exchange *prev, *next; /* the worker's exchanges in flight */
	struct exchange *next_free;
	struct stream *s; /* the client side; NULL once let go */
	/*
	 * The client's address (the stream's text): still valid when the
	 * exchange lets go of the stream, since the client side is freed by
	 * the deferred teardown, after the callback that ends the exchange.
	 */
	const char *client;
	/*
	 * The client's address for access rules (the stream's, or the one
	 * X-Forwarded-For gives behind a trusted forwarder: forward_client()),
	 * and the peer's text, which X-Forwarded-For and Forwarded append.
	 */
	const struct sockaddr *client_sa;
	const char *peer;
	bool peer_untrusted; /* forwarded.trusted is set and does not list the peer */
	struct sockaddr_storage real_sa;
	char real_addr[48];
	struct upstream *up; /* NULL when none */
	struct config *cfg;  /* the snapshot the request started under */
	struct head *req;    /* the request head */
	const struct route *route;
	uint64_t idnum; /* the request id; as text in id once ex_id() made it */
	char id[17];
	struct buf path;   /* the normalized path */
	struct buf target; /* the upstream request target */

	/* The request body. */
	uint64_t body_bytes;
	bool client_paused; /* reading the client paused: the upstream's output is full */
	bool retried;

	/* A group route: the server in use (NULL: none), those tried (bit per server), moves. */
	const struct group_server *srv;
	uint64_t tried;
	unsigned failovers;

	/* The response. */
	int status;
	unsigned ninterim;
	bool up_paused; /* reading the upstream paused: the client's output is full */
	bool close;	/* a graceful stop: no further request on this client connection */
	uint64_t bytes_sent;
	uint64_t tunnel_last_us;
	struct filter *filter; /* body rewriting, or NULL: the body passes untouched */
	bool filter_failed;
	bool bf_headers; /* body rewriting changes the response headers (bf_* say how) */
	bool bf_vary_done;
	const char *bf_encoding; /* "gzip" or NULL */
	bool bf_weaken_etag, bf_drop_ranges, bf_vary;
};

/* The request id as text, written when first asked for (most requests log nothing). */
static inline const char *
ex_id(struct exchange *ex)
{
	if (ex->id[0] == '\0')
		http_reqid_format(ex->id, ex->idnum);
	return ex->id;
}

/* exchange.c */
void ex_set_phase(struct exchange *ex, enum exchange_req_phase rq, enum exchange_resp_phase rs);
/* A response portico generates (error page), or a cut when part of one is out. */
void ex_error(struct exchange *ex, int status, const char *why);
/* The response is complete: log, release the upstream, end the stream. */
void ex_complete(struct exchange *ex);
/* Cuts the response and the upstream; the client must not take it for complete. */
void ex_cut(struct exchange *ex, const char *reason);
/* The whole request is handed to the upstream. */
void ex_request_sent(struct exchange *ex);
/* Sends what is queued toward both sides and resumes a side paused for backpressure. */
void ex_flush(struct exchange *ex);
uint64_t ex_now_us(void);
/* GET, HEAD, OPTIONS, PUT, DELETE, TRACE (RFC 9110 section 9.2.2): safe to send twice. */
bool ex_is_idempotent(uint8_t method);

/* failover.c */
/* A server of the route's group for the request; -1 (with *why) when none is up. */
int failover_pick(struct exchange *ex, const char **why);
/* Where the connection goes: the server in use, or the route's URL. */
void failover_dest(const struct exchange *ex, struct upstream_dest *d);
/* The Host sent upstream (unless preserve_host). */
const char *failover_authority(const struct exchange *ex);
/* A response head arrived from the server in use. */
void failover_ok(struct exchange *ex);
/*
 * A connection failed: counted against the server; true when the request
 * moves to another server (ex->up is then NULL and ex->srv the new one).
 */
bool failover_retry(struct exchange *ex, const struct upstream_failure *f);
/* The exchange is over with its server. */
void failover_release(struct exchange *ex);

/* forward.c */
/* The client's address behind trusted forwarders (forwarded.trusted, realip.h). */
void forward_client(struct exchange *ex);
void forward_head(struct exchange *ex);
void forward_body(struct exchange *ex);

/* relay.c */
enum upstream_next relay_head(struct exchange *ex, struct head *h);
void relay_body(struct exchange *ex, struct evbuffer *data, size_t len);
void relay_end(struct exchange *ex);
/* The client's output drained: resumes reading the upstream when it has room again. */
void relay_writable(struct exchange *ex);
/* The response head's end-to-end fields, rewritten, into the worker's field list. */
void relay_fields(struct exchange *ex, const struct head *h, struct stream_response *r);

/* tunnel.c */
enum upstream_next tunnel_start(struct exchange *ex, struct head *h);
void tunnel_from_client(struct exchange *ex);
void tunnel_from_upstream(struct exchange *ex, struct evbuffer *data, size_t len);
void tunnel_idle(struct exchange *ex, bool client_side);

#endif
