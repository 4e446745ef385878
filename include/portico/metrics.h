/*
 * metrics.h: the counters behind the admin listener's /metrics (SPEC
 * section 11).
 *
 * Every worker owns one struct metrics, written only by its own thread with
 * relaxed atomic stores (a plain add on x86-64 and arm64: no lock, no
 * read-modify-write, and the struct sits on cache lines of its own).  The
 * main thread reads them with relaxed loads and sums them into a struct
 * metrics_sum when /metrics is served; a counter may be one request behind,
 * never torn.
 *
 * Requests are counted by route *name* (routes[].name, the rule's index when
 * it has none), not by position, so the series of a route survive a reload
 * that keeps its name; a route removed by a reload keeps its last values
 * until portico restarts, and a route renamed starts a new series.  Requests
 * that matched no rule count under the name "".  Each worker keeps the names
 * it has seen in a table in the order first seen (slot 0 is ""); slot
 * index + 1 is tried first, which hits when routes are first used in file
 * order, else the table is scanned.  A new name is appended under a mutex
 * that only the reader also takes.
 */
#ifndef PORTICO_METRICS_H
#define PORTICO_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "portico/util.h"

enum metrics_counter {
	METRICS_UPSTREAM_CONNECT_ERRORS,
	METRICS_UPSTREAM_TIMEOUTS,
	METRICS_BYTES_RECEIVED,
	METRICS_BYTES_SENT,
	/* Connections closed for their PROXY protocol header, by reason (in this order). */
	METRICS_PROXY_MISSING,
	METRICS_PROXY_MALFORMED,
	METRICS_PROXY_TRUNCATED,
	METRICS_PROXY_UNTRUSTED,
	/* Requests by client protocol (in this order). */
	METRICS_REQUESTS_HTTP1,
	METRICS_REQUESTS_HTTP2,
	/* HTTP/2: connections and streams opened. */
	METRICS_H2_CONNECTIONS,
	METRICS_H2_STREAMS,
	/* HTTP/2 defenses that fired, by kind (in this order, metrics_h2_defense_names). */
	METRICS_H2_RAPID_RESET,
	METRICS_H2_CONTINUATION,
	METRICS_H2_HEADER_LIST,
	METRICS_H2_SETTINGS_FLOOD,
	METRICS_H2_PING_FLOOD,
	METRICS_H2_EMPTY_DATA,
	METRICS_H2_OTHER_FLOOD,
	METRICS_H2_STALL,
	METRICS_H2_IDLE,
	METRICS_H2_MALFORMED,
	/* HTTP/2 RST_STREAM and GOAWAY frames sent, by error code (RFC 9113 section 7). */
	METRICS_H2_RST_SENT,
	METRICS_H2_GOAWAY_SENT = METRICS_H2_RST_SENT + 14,
	METRICS_NCOUNTERS = METRICS_H2_GOAWAY_SENT + 14
};

enum metrics_gauge {
	METRICS_CLIENT_CONNECTIONS,
	METRICS_UPSTREAM_CONNECTIONS,
	METRICS_UPSTREAM_IDLE,
	METRICS_NGAUGES
};

/* Upper bounds of the duration histogram, in microseconds; +Inf follows. */
#define METRICS_NBOUNDS	 11
#define METRICS_NBUCKETS (METRICS_NBOUNDS + 1)
#define METRICS_NCLASSES 5 /* 1xx .. 5xx */

/* The label of each METRICS_H2_RAPID_RESET.. counter. */
extern const char *const metrics_h2_defense_names[];
#define METRICS_H2_NDEFENSES (METRICS_H2_MALFORMED - METRICS_H2_RAPID_RESET + 1)
/* RFC 9113 error code names, 0x0 to 0xd. */
extern const char *const metrics_h2_error_names[14];

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* From the owning thread only. */
void metrics_add(struct metrics *m, enum metrics_counter k, uint64_t n);
void metrics_gauge_add(struct metrics *m, enum metrics_gauge g, int64_t delta);
/*
 * One finished request: `route` is the route's name or NULL (no route),
 * `hint` its index in the snapshot; a status outside 100..599 counts in the
 * histogram only.
 */
void metrics_request(struct metrics *m, const char *route, unsigned hint, int status,
		     uint64_t duration_us);

struct metrics_route {
	char *name;
	uint64_t classes[METRICS_NCLASSES];
};

/* Every worker's values summed, plus what the main thread keeps itself. */
struct metrics_sum {
	uint64_t counters[METRICS_NCOUNTERS];
	int64_t gauges[METRICS_NGAUGES];
	uint64_t buckets[METRICS_NBUCKETS]; /* per bucket, not cumulative */
	uint64_t duration_sum_us;
	struct metrics_route *routes; /* in the order first seen */
	size_t nroutes, cap;
	uint64_t reloads_ok, reloads_error;
	uint64_t generation;
	uint64_t accesslog_dropped;
};

/* From any thread: adds `m` into `s` (zeroed by the caller first). */
void metrics_sum_add(struct metrics_sum *s, struct metrics *m);
void metrics_sum_free(struct metrics_sum *s);
/* Appends the Prometheus text exposition (format 0.0.4) of `s` to `out`. */
void metrics_format(struct buf *out, const struct metrics_sum *s);

#endif
