/*
 * metrics.c: per-worker counters, their sum and the Prometheus text format.
 * See metrics.h for who writes what.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "portico/metrics.h"
#include "portico/util.h"

#define CACHE_LINE 64

typedef _Atomic uint64_t counter_t;

struct metrics_slot {
	char *name;
	counter_t classes[METRICS_NCLASSES];
};

struct metrics {
	counter_t counters[METRICS_NCOUNTERS];
	counter_t gauges[METRICS_NGAUGES]; /* two's complement deltas */
	counter_t buckets[METRICS_NBUCKETS];
	counter_t duration_sum_us;
	/* Route slots: read freely by the owner; grown, and read by others, under `lock`. */
	pthread_mutex_t lock;
	struct metrics_slot **slots;
	size_t nslots, cap;
};

static const uint64_t bounds_us[METRICS_NBOUNDS] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *const bounds_text[METRICS_NBOUNDS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"};

/* Single writer: a relaxed load and store, no locked instruction. */
static void
counter_add(counter_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static uint64_t
counter_get(counter_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static struct metrics_slot *
slot_append(struct metrics *m, const char *name)
{
	struct metrics_slot *s = xcalloc(1, sizeof(*s));

	s->name = xstrdup(name);
	pthread_mutex_lock(&m->lock);
	m->slots = xgrow(m->slots, &m->cap, m->nslots, sizeof(*m->slots));
	m->slots[m->nslots++] = s;
	pthread_mutex_unlock(&m->lock);
	return s;
}

struct metrics *
metrics_new(void)
{
	size_t size = (sizeof(struct metrics) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
	struct metrics *m = aligned_alloc(CACHE_LINE, size);

	if (m == NULL)
		abort();
	memset(m, 0, size);
	pthread_mutex_init(&m->lock, NULL);
	slot_append(m, "");
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nslots; i++) {
		free(m->slots[i]->name);
		free(m->slots[i]);
	}
	free(m->slots);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void
metrics_add(struct metrics *m, enum metrics_counter k, uint64_t n)
{
	counter_add(&m->counters[k], n);
}

void
metrics_gauge_add(struct metrics *m, enum metrics_gauge g, int64_t delta)
{
	counter_add(&m->gauges[g], (uint64_t)delta);
}

/* The slot of `name`: slot hint + 1 while the routes keep their first order. */
static struct metrics_slot *
slot_find(struct metrics *m, const char *name, unsigned hint)
{
	size_t i = name[0] ? (size_t)hint + 1 : 0;

	if (i < m->nslots && strcmp(m->slots[i]->name, name) == 0)
		return m->slots[i];
	for (i = 0; i < m->nslots; i++)
		if (strcmp(m->slots[i]->name, name) == 0)
			return m->slots[i];
	return slot_append(m, name);
}

void
metrics_request(struct metrics *m, const char *route, unsigned hint, int status,
		uint64_t duration_us)
{
	size_t b = 0;

	while (b < METRICS_NBOUNDS && duration_us > bounds_us[b])
		b++;
	counter_add(&m->buckets[b], 1);
	counter_add(&m->duration_sum_us, duration_us);
	if (status >= 100 && status <= 599)
		counter_add(&slot_find(m, route ? route : "", hint)->classes[status / 100 - 1], 1);
}

static struct metrics_route *
sum_route(struct metrics_sum *s, const char *name)
{
	struct metrics_route *r;

	for (size_t i = 0; i < s->nroutes; i++)
		if (strcmp(s->routes[i].name, name) == 0)
			return &s->routes[i];
	s->routes = xgrow(s->routes, &s->cap, s->nroutes, sizeof(*s->routes));
	r = &s->routes[s->nroutes++];
	memset(r, 0, sizeof(*r));
	r->name = xstrdup(name);
	return r;
}

void
metrics_sum_add(struct metrics_sum *s, struct metrics *m)
{
	for (size_t i = 0; i < METRICS_NCOUNTERS; i++)
		s->counters[i] += counter_get(&m->counters[i]);
	for (size_t i = 0; i < METRICS_NGAUGES; i++)
		s->gauges[i] += (int64_t)counter_get(&m->gauges[i]);
	for (size_t i = 0; i < METRICS_NBUCKETS; i++)
		s->buckets[i] += counter_get(&m->buckets[i]);
	s->duration_sum_us += counter_get(&m->duration_sum_us);
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nslots; i++) {
		struct metrics_route *r = sum_route(s, m->slots[i]->name);

		for (size_t k = 0; k < METRICS_NCLASSES; k++)
			r->classes[k] += counter_get(&m->slots[i]->classes[k]);
	}
	pthread_mutex_unlock(&m->lock);
}

void
metrics_sum_free(struct metrics_sum *s)
{
	for (size_t i = 0; i < s->nroutes; i++)
		free(s->routes[i].name);
	free(s->routes);
	s->routes = NULL;
	s->nroutes = s->cap = 0;
}

/* --- text exposition ------------------------------------------------------- */

static void
format_head(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
format_one(struct buf *out, const char *name, const char *type, const char *help,
	   unsigned long long v)
{
	format_head(out, name, type, help);
	buf_addf(out, "%s %llu\n", name, v);
}

/* A label value: backslash, double quote and newline escaped. */
static void
format_label(struct buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_addc(out, '\\');
		if (*v == '\n')
			buf_adds(out, "\\n");
		else
			buf_addc(out, *v);
	}
}

static void
format_requests(struct buf *out, const struct metrics_sum *s)
{
	format_head(out, "portico_requests_total", "counter",
		    "Requests answered, by route name and status class.");
	for (size_t i = 0; i < s->nroutes; i++)
		for (size_t k = 0; k < METRICS_NCLASSES; k++) {
			if (s->routes[i].classes[k] == 0)
				continue;
			buf_adds(out, "portico_requests_total{route=\"");
			format_label(out, s->routes[i].name);
			buf_addf(out, "\",code=\"%zuxx\"} %llu\n", k + 1,
				 (unsigned long long)s->routes[i].classes[k]);
		}
}

static void
format_histogram(struct buf *out, const struct metrics_sum *s)
{
	const char *name = "portico_request_duration_seconds";
	unsigned long long total = 0;

	format_head(out, name, "histogram",
		    "Time from the first byte of a request to the end of its response.");
	for (size_t b = 0; b < METRICS_NBUCKETS; b++) {
		total += s->buckets[b];
		buf_addf(out, "%s_bucket{le=\"%s\"} %llu\n", name,
			 b < METRICS_NBOUNDS ? bounds_text[b] : "+Inf", total);
	}
	buf_addf(out, "%s_sum %llu.%06llu\n%s_count %llu\n", name,
		 (unsigned long long)(s->duration_sum_us / 1000000),
		 (unsigned long long)(s->duration_sum_us % 1000000), name, total);
}

static void
format_reloads(struct buf *out, const struct metrics_sum *s)
{
	format_head(out, "portico_reloads_total", "counter",
		    "Configuration reloads (SIGHUP), by result.");
	buf_addf(out, "portico_reloads_total{result=\"ok\"} %llu\n",
		 (unsigned long long)s->reloads_ok);
	buf_addf(out, "portico_reloads_total{result=\"error\"} %llu\n",
		 (unsigned long long)s->reloads_error);
}

static void
format_proxy(struct buf *out, const struct metrics_sum *s)
{
	static const char *const reasons[] = {"missing", "malformed", "truncated", "untrusted"};

	format_head(out, "portico_proxy_protocol_rejected_total", "counter",
		    "Connections closed for their PROXY protocol header, by reason.");
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		buf_addf(out, "portico_proxy_protocol_rejected_total{reason=\"%s\"} %llu\n",
			 reasons[i], (unsigned long long)s->counters[METRICS_PROXY_MISSING + i]);
}

const char *const metrics_h2_defense_names[] = {
    "rapid_reset", "continuation", "header_list", "settings_flood", "ping_flood",
    "empty_data",  "other_flood",  "stall",	  "idle",	    "malformed",
};

const char *const metrics_h2_error_names[14] = {
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
};

static void
format_by_code(struct buf *out, const char *name, const char *help, const uint64_t *c)
{
	format_head(out, name, "counter", help);
	for (size_t i = 0; i < ARRAY_SIZE(metrics_h2_error_names); i++)
		buf_addf(out, "%s{error=\"%s\"} %llu\n", name, metrics_h2_error_names[i],
			 (unsigned long long)c[i]);
}

static void
format_http2(struct buf *out, const struct metrics_sum *s)
{
	const uint64_t *c = s->counters;

	format_head(out, "portico_requests_by_protocol_total", "counter",
		    "Requests by client protocol.");
	buf_addf(out, "portico_requests_by_protocol_total{protocol=\"HTTP/1.1\"} %llu\n",
		 (unsigned long long)c[METRICS_REQUESTS_HTTP1]);
	buf_addf(out, "portico_requests_by_protocol_total{protocol=\"HTTP/2.0\"} %llu\n",
		 (unsigned long long)c[METRICS_REQUESTS_HTTP2]);
	format_one(out, "portico_http2_connections_total", "counter", "HTTP/2 client connections.",
		   c[METRICS_H2_CONNECTIONS]);
	format_one(out, "portico_http2_streams_total", "counter", "HTTP/2 request streams.",
		   c[METRICS_H2_STREAMS]);
	format_head(out, "portico_http2_defenses_total", "counter",
		    "HTTP/2 limits and flood defenses that fired, by kind.");
	for (size_t i = 0; i < METRICS_H2_NDEFENSES; i++)
		buf_addf(out, "portico_http2_defenses_total{kind=\"%s\"} %llu\n",
			 metrics_h2_defense_names[i],
			 (unsigned long long)c[METRICS_H2_RAPID_RESET + i]);
	format_by_code(out, "portico_http2_rst_stream_sent_total",
		       "HTTP/2 RST_STREAM frames sent, by error code.", c + METRICS_H2_RST_SENT);
	format_by_code(out, "portico_http2_goaway_sent_total",
		       "HTTP/2 GOAWAY frames sent, by error code.", c + METRICS_H2_GOAWAY_SENT);
}

static void
format_gauge(struct buf *out, const char *name, const char *help, int64_t v)
{
	format_head(out, name, "gauge", help);
	buf_addf(out, "%s %lld\n", name, (long long)v);
}

void
metrics_format(struct buf *out, const struct metrics_sum *s)
{
	const uint64_t *c = s->counters;
	const int64_t *g = s->gauges;

	format_requests(out, s);
	format_histogram(out, s);
	format_one(out, "portico_upstream_connect_errors_total", "counter",
		   "Upstream connections that failed before the request was sent.",
		   c[METRICS_UPSTREAM_CONNECT_ERRORS]);
	format_one(out, "portico_upstream_timeouts_total", "counter",
		   "Upstream connect and read timeouts.", c[METRICS_UPSTREAM_TIMEOUTS]);
	format_gauge(out, "portico_client_connections", "Open client connections.",
		     g[METRICS_CLIENT_CONNECTIONS]);
	format_gauge(out, "portico_upstream_connections", "Open upstream connections.",
		     g[METRICS_UPSTREAM_CONNECTIONS]);
	format_gauge(out, "portico_upstream_idle_connections",
		     "Idle upstream connections in the pools.", g[METRICS_UPSTREAM_IDLE]);
	format_one(out, "portico_bytes_received_total", "counter",
		   "Bytes of requests read from clients.", c[METRICS_BYTES_RECEIVED]);
	format_one(out, "portico_bytes_sent_total", "counter",
		   "Bytes of response bodies sent to clients.", c[METRICS_BYTES_SENT]);
	format_proxy(out, s);
	format_http2(out, s);
	format_reloads(out, s);
	format_gauge(out, "portico_config_generation",
		     "Generation of the running configuration (1 at start).",
		     (int64_t)s->generation);
	format_one(out, "portico_accesslog_dropped_total", "counter",
		   "Access log lines dropped because the writer fell behind.",
		   s->accesslog_dropped);
}
