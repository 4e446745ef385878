/*
 * exchange.h: one HTTP exchange, from a complete request head to the end
 * of its response (SPEC sections 3 to 7 and 9): routing and access control
 * (route_decide.h), the rebuilt request toward the upstream (forward.c),
 * the response relayed and rewritten (relay.c), Upgrade tunnels (tunnel.c),
 * error responses and the access log line (exchange.c).
 *
 * The exchange sits between the client side (stream.h) and the upstream
 * side (upstream.h) and drives both; each side reports to it through the
 * callback table it was handed (exchange_stream_events, and the exchange's
 * own upstream_cbs), so neither includes this header.  Its progress is two
 * explicit phases, one per direction, changed only through one setter that
 * logs them by name at debug level.  A finished exchange lets go of both
 * sides and is freed by its worker's deferred teardown, never inside the
 * callback that finished it; finished structures are kept for reuse.
 */
#ifndef PORTICO_EXCHANGE_H
#define PORTICO_EXCHANGE_H

#include <stdbool.h>

#include "portico/stream.h"

struct worker;

/* Where the request is. */
enum exchange_req_phase {
	EXCHANGE_REQ_HEAD, /* the head is in: being judged, routed, forwarded */
	EXCHANGE_REQ_BODY, /* the body streams toward the upstream */
	EXCHANGE_REQ_SENT, /* all of the request is handed to the upstream (or never will be) */
};

/* Where the response is. */
enum exchange_resp_phase {
	EXCHANGE_RESP_WAIT,   /* no response head toward the client yet */
	EXCHANGE_RESP_BODY,   /* the head is out; the body streams */
	EXCHANGE_RESP_TUNNEL, /* after a 101: bytes both ways */
	EXCHANGE_RESP_DONE,   /* over: complete, an error page, cut, or the client went away */
};

const char *exchange_req_phase_name(enum exchange_req_phase p);
const char *exchange_resp_phase_name(enum exchange_resp_phase p);

/* What a client side reports; the worker hands it to every client connection. */
extern const struct stream_events exchange_stream_events;

/*
 * The worker's exchanges in flight on shutdown: with `abort` NULL, each
 * answers with Connection: close when it can (a graceful stop); else each
 * is cut with that reason (the shutdown timeout, the worker's exit).
 */
void exchange_drain_all(struct worker *w, const char *abort);
/* Frees the structures a worker keeps for reuse (at its exit). */
void exchange_pool_free(struct worker *w);

#endif
