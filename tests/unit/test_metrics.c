/*
 * test_metrics.c: the /metrics text (SPEC section 11): exact exposition for
 * given counter values, cumulative histogram buckets, per-route status
 * classes summed over workers, and label escaping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "portico/metrics.h"
#include "portico/util.h"

/* The whole text of `s`; the caller frees it. */
static char *
render(const struct metrics_sum *s)
{
	struct buf b;

	buf_init(&b);
	metrics_format(&b, s);
	return buf_steal(&b);
}

static void
test_exact_text(void **state)
{
	static const char expected[] =
	    "# HELP portico_requests_total Requests answered, by route name and status class.\n"
	    "# TYPE portico_requests_total counter\n"
	    "portico_requests_total{route=\"\",code=\"4xx\"} 1\n"
	    "portico_requests_total{route=\"internal\",code=\"2xx\"} 2\n"
	    "portico_requests_total{route=\"internal\",code=\"3xx\"} 1\n"
	    "portico_requests_total{route=\"internal\",code=\"5xx\"} 1\n"
	    "# HELP portico_request_duration_seconds Time from the first byte of a request to "
	    "the end of its response.\n"
	    "# TYPE portico_request_duration_seconds histogram\n"
	    "portico_request_duration_seconds_bucket{le=\"0.005\"} 2\n"
	    "portico_request_duration_seconds_bucket{le=\"0.01\"} 2\n"
	    "portico_request_duration_seconds_bucket{le=\"0.025\"} 2\n"
	    "portico_request_duration_seconds_bucket{le=\"0.05\"} 2\n"
	    "portico_request_duration_seconds_bucket{le=\"0.1\"} 3\n"
	    "portico_request_duration_seconds_bucket{le=\"0.25\"} 3\n"
	    "portico_request_duration_seconds_bucket{le=\"0.5\"} 3\n"
	    "portico_request_duration_seconds_bucket{le=\"1\"} 3\n"
	    "portico_request_duration_seconds_bucket{le=\"2.5\"} 4\n"
	    "portico_request_duration_seconds_bucket{le=\"5\"} 4\n"
	    "portico_request_duration_seconds_bucket{le=\"10\"} 4\n"
	    "portico_request_duration_seconds_bucket{le=\"+Inf\"} 5\n"
	    "portico_request_duration_seconds_sum 13.105001\n"
	    "portico_request_duration_seconds_count 5\n"
	    "# HELP portico_upstream_connect_errors_total Upstream connections that failed before "
	    "the request was sent.\n"
	    "# TYPE portico_upstream_connect_errors_total counter\n"
	    "portico_upstream_connect_errors_total 2\n"
	    "# HELP portico_upstream_timeouts_total Upstream connect and read timeouts.\n"
	    "# TYPE portico_upstream_timeouts_total counter\n"
	    "portico_upstream_timeouts_total 1\n"
	    "# HELP portico_client_connections Open client connections.\n"
	    "# TYPE portico_client_connections gauge\n"
	    "portico_client_connections 1\n"
	    "# HELP portico_upstream_connections Open upstream connections.\n"
	    "# TYPE portico_upstream_connections gauge\n"
	    "portico_upstream_connections 3\n"
	    "# HELP portico_upstream_idle_connections Idle upstream connections in the pools.\n"
	    "# TYPE portico_upstream_idle_connections gauge\n"
	    "portico_upstream_idle_connections 2\n"
	    "# HELP portico_bytes_received_total Bytes of requests read from clients.\n"
	    "# TYPE portico_bytes_received_total counter\n"
	    "portico_bytes_received_total 1234\n"
	    "# HELP portico_bytes_sent_total Bytes of response bodies sent to clients.\n"
	    "# TYPE portico_bytes_sent_total counter\n"
	    "portico_bytes_sent_total 56789\n"
	    "# HELP portico_proxy_protocol_rejected_total Connections closed for their PROXY "
	    "protocol header, by reason.\n"
	    "# TYPE portico_proxy_protocol_rejected_total counter\n"
	    "portico_proxy_protocol_rejected_total{reason=\"missing\"} 1\n"
	    "portico_proxy_protocol_rejected_total{reason=\"malformed\"} 2\n"
	    "portico_proxy_protocol_rejected_total{reason=\"truncated\"} 0\n"
	    "portico_proxy_protocol_rejected_total{reason=\"untrusted\"} 4\n"
	    "# HELP portico_requests_by_protocol_total Requests by client protocol.\n"
	    "# TYPE portico_requests_by_protocol_total counter\n"
	    "portico_requests_by_protocol_total{protocol=\"HTTP/1.1\"} 5\n"
	    "portico_requests_by_protocol_total{protocol=\"HTTP/2.0\"} 3\n"
	    "# HELP portico_http2_connections_total HTTP/2 client connections.\n"
	    "# TYPE portico_http2_connections_total counter\n"
	    "portico_http2_connections_total 1\n"
	    "# HELP portico_http2_streams_total HTTP/2 request streams.\n"
	    "# TYPE portico_http2_streams_total counter\n"
	    "portico_http2_streams_total 3\n"
	    "# HELP portico_http2_defenses_total HTTP/2 limits and flood defenses that fired, by "
	    "kind.\n"
	    "# TYPE portico_http2_defenses_total counter\n"
	    "portico_http2_defenses_total{kind=\"rapid_reset\"} 1\n"
	    "portico_http2_defenses_total{kind=\"continuation\"} 0\n"
	    "portico_http2_defenses_total{kind=\"header_list\"} 0\n"
	    "portico_http2_defenses_total{kind=\"settings_flood\"} 0\n"
	    "portico_http2_defenses_total{kind=\"ping_flood\"} 0\n"
	    "portico_http2_defenses_total{kind=\"empty_data\"} 0\n"
	    "portico_http2_defenses_total{kind=\"other_flood\"} 0\n"
	    "portico_http2_defenses_total{kind=\"stall\"} 0\n"
	    "portico_http2_defenses_total{kind=\"idle\"} 0\n"
	    "portico_http2_defenses_total{kind=\"malformed\"} 2\n"
	    "# HELP portico_http2_rst_stream_sent_total HTTP/2 RST_STREAM frames sent, by error "
	    "code.\n"
	    "# TYPE portico_http2_rst_stream_sent_total counter\n"
	    "portico_http2_rst_stream_sent_total{error=\"NO_ERROR\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"PROTOCOL_ERROR\"} 2\n"
	    "portico_http2_rst_stream_sent_total{error=\"INTERNAL_ERROR\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"FLOW_CONTROL_ERROR\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"SETTINGS_TIMEOUT\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"STREAM_CLOSED\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"FRAME_SIZE_ERROR\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"REFUSED_STREAM\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"CANCEL\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"COMPRESSION_ERROR\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"CONNECT_ERROR\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"ENHANCE_YOUR_CALM\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"INADEQUATE_SECURITY\"} 0\n"
	    "portico_http2_rst_stream_sent_total{error=\"HTTP_1_1_REQUIRED\"} 0\n"
	    "# HELP portico_http2_goaway_sent_total HTTP/2 GOAWAY frames sent, by error code.\n"
	    "# TYPE portico_http2_goaway_sent_total counter\n"
	    "portico_http2_goaway_sent_total{error=\"NO_ERROR\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"PROTOCOL_ERROR\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"INTERNAL_ERROR\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"FLOW_CONTROL_ERROR\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"SETTINGS_TIMEOUT\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"STREAM_CLOSED\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"FRAME_SIZE_ERROR\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"REFUSED_STREAM\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"CANCEL\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"COMPRESSION_ERROR\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"CONNECT_ERROR\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"ENHANCE_YOUR_CALM\"} 1\n"
	    "portico_http2_goaway_sent_total{error=\"INADEQUATE_SECURITY\"} 0\n"
	    "portico_http2_goaway_sent_total{error=\"HTTP_1_1_REQUIRED\"} 0\n"
	    "# HELP portico_reloads_total Configuration reloads (SIGHUP), by result.\n"
	    "# TYPE portico_reloads_total counter\n"
	    "portico_reloads_total{result=\"ok\"} 4\n"
	    "portico_reloads_total{result=\"error\"} 1\n"
	    "# HELP portico_config_generation Generation of the running configuration (1 at "
	    "start).\n"
	    "# TYPE portico_config_generation gauge\n"
	    "portico_config_generation 5\n"
	    "# HELP portico_accesslog_dropped_total Access log lines dropped because the writer "
	    "fell behind.\n"
	    "# TYPE portico_accesslog_dropped_total counter\n"
	    "portico_accesslog_dropped_total 7\n";
	struct metrics *m = metrics_new();
	struct metrics_sum s = {0};
	char *text;

	(void)state;
	metrics_request(m, "internal", 0, 200, 1000);	  /* <= 0.005 */
	metrics_request(m, NULL, 0, 404, 5000);		  /* on the bound: <= 0.005 */
	metrics_request(m, "internal", 0, 204, 50001);	  /* <= 0.1 */
	metrics_request(m, "internal", 0, 302, 2000000);  /* <= 2.5 */
	metrics_request(m, "internal", 0, 502, 11049000); /* +Inf */
	metrics_add(m, METRICS_UPSTREAM_CONNECT_ERRORS, 2);
	metrics_add(m, METRICS_UPSTREAM_TIMEOUTS, 1);
	metrics_add(m, METRICS_BYTES_RECEIVED, 1234);
	metrics_add(m, METRICS_BYTES_SENT, 56789);
	metrics_add(m, METRICS_PROXY_MISSING, 1);
	metrics_add(m, METRICS_PROXY_MALFORMED, 2);
	metrics_add(m, METRICS_PROXY_UNTRUSTED, 4);
	metrics_add(m, METRICS_REQUESTS_HTTP1, 5);
	metrics_add(m, METRICS_REQUESTS_HTTP2, 3);
	metrics_add(m, METRICS_H2_CONNECTIONS, 1);
	metrics_add(m, METRICS_H2_STREAMS, 3);
	metrics_add(m, METRICS_H2_RAPID_RESET, 1);
	metrics_add(m, METRICS_H2_MALFORMED, 2);
	metrics_add(m, METRICS_H2_RST_SENT + 1, 2);
	metrics_add(m, METRICS_H2_GOAWAY_SENT + 11, 1);
	metrics_gauge_add(m, METRICS_CLIENT_CONNECTIONS, 2);
	metrics_gauge_add(m, METRICS_CLIENT_CONNECTIONS, -1);
	metrics_gauge_add(m, METRICS_UPSTREAM_CONNECTIONS, 3);
	metrics_gauge_add(m, METRICS_UPSTREAM_IDLE, 2);
	metrics_sum_add(&s, m);
	s.reloads_ok = 4;
	s.reloads_error = 1;
	s.generation = 5;
	s.accesslog_dropped = 7;
	text = render(&s);
	assert_string_equal(text, expected);
	free(text);
	metrics_sum_free(&s);
	metrics_free(m);
}

/* The requests_total lines of a rendering, in order. */
static char *
request_lines(const struct metrics_sum *s)
{
	char *text = render(s), *p = text, *line;
	struct buf b;

	buf_init(&b);
	while ((line = strsep(&p, "\n")) != NULL)
		if (strncmp(line, "portico_requests_total{", 23) == 0)
			buf_addf(&b, "%s\n", line);
	free(text);
	return buf_steal(&b);
}

/* Two workers: routes summed by name, in the order first seen. */
static void
test_routes_summed_over_workers(void **state)
{
	struct metrics *w0 = metrics_new(), *w1 = metrics_new();
	struct metrics_sum s = {0};
	char *text;

	(void)state;
	metrics_request(w0, "a", 0, 200, 1);
	metrics_request(w1, "b", 1, 200, 1);
	metrics_request(w1, "a", 0, 200, 1);
	metrics_request(w1, "a", 0, 101, 1);
	/* A stale hint (the route moved after a reload) still finds the name. */
	metrics_request(w0, "a", 7, 404, 1);
	metrics_request(w0, "b", 0, 999, 1); /* no class: histogram only */
	metrics_sum_add(&s, w0);
	metrics_sum_add(&s, w1);
	text = request_lines(&s);
	assert_string_equal(text, "portico_requests_total{route=\"a\",code=\"1xx\"} 1\n"
				  "portico_requests_total{route=\"a\",code=\"2xx\"} 2\n"
				  "portico_requests_total{route=\"a\",code=\"4xx\"} 1\n"
				  "portico_requests_total{route=\"b\",code=\"2xx\"} 1\n");
	free(text);
	assert_int_equal(s.buckets[0], 6);
	metrics_sum_free(&s);
	metrics_free(w0);
	metrics_free(w1);
}

static void
test_label_escaping(void **state)
{
	struct metrics *m = metrics_new();
	struct metrics_sum s = {0};
	char *text;

	(void)state;
	metrics_request(m, "say \"hi\"\\\n", 0, 200, 1);
	metrics_sum_add(&s, m);
	text = request_lines(&s);
	assert_string_equal(
	    text, "portico_requests_total{route=\"say \\\"hi\\\"\\\\\\n\",code=\"2xx\"} 1\n");
	free(text);
	metrics_sum_free(&s);
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exact_text),
	    cmocka_unit_test(test_routes_summed_over_workers),
	    cmocka_unit_test(test_label_escaping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
