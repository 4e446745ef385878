/*
 * test_resolve.c: the resolver against a real event loop and a small DNS
 * server on 127.0.0.1 (libevent's evdns server) that counts the queries it
 * answers: overrides, numeric and cached answers, callbacks that never run
 * synchronously, cancellation, TTL expiry and shared queries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>

#include "portico/config.h"
#include "portico/resolve.h"

/* ---- the test DNS server ---- */

struct dns_server {
	evutil_socket_t fd;
	struct evdns_server_port *port;
	char addr[64];	 /* "127.0.0.1:port" */
	int queries;	 /* every question received */
	int queries_a;	 /* A questions for a.portico.test */
	int queries_six; /* AAAA questions for six.portico.test */
};

static void
server_answer(struct evdns_server_request *req, const struct evdns_server_question *q,
	      struct dns_server *s, int *rcode)
{
	struct in_addr a4;
	struct in6_addr a6;

	s->queries++;
	if (strcasecmp(q->name, "a.portico.test") == 0 && q->type == EVDNS_TYPE_A) {
		s->queries_a++;
		inet_pton(AF_INET, "192.0.2.1", &a4);
		evdns_server_request_add_a_reply(req, q->name, 1, &a4, 1);
	} else if (strcasecmp(q->name, "b.portico.test") == 0 && q->type == EVDNS_TYPE_A) {
		inet_pton(AF_INET, "192.0.2.2", &a4);
		evdns_server_request_add_a_reply(req, q->name, 1, &a4, 1);
	} else if (strcasecmp(q->name, "six.portico.test") == 0 && q->type == EVDNS_TYPE_AAAA) {
		s->queries_six++;
		inet_pton(AF_INET6, "2001:db8::6", &a6);
		evdns_server_request_add_aaaa_reply(req, q->name, 1, &a6, 60);
	} else if (strcasecmp(q->name, "refused.portico.test") == 0) {
		*rcode = DNS_ERR_REFUSED;
	} else if (strcasecmp(q->name, "a.portico.test") != 0 &&
		   strcasecmp(q->name, "b.portico.test") != 0 &&
		   strcasecmp(q->name, "six.portico.test") != 0) {
		*rcode = DNS_ERR_NOTEXIST;
	}
}

static void
server_cb(struct evdns_server_request *req, void *arg)
{
	struct dns_server *s = arg;
	int rcode = DNS_ERR_NONE;

	for (int i = 0; i < req->nquestions; i++)
		server_answer(req, req->questions[i], s, &rcode);
	evdns_server_request_respond(req, rcode);
}

static void
server_start(struct event_base *base, struct dns_server *s)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(s, 0, sizeof(*s));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(evutil_make_socket_nonblocking(s->fd), 0);
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	s->port = evdns_add_server_port_with_base(base, s->fd, 0, server_cb, s);
	assert_non_null(s->port);
}

static void
server_stop(struct dns_server *s)
{
	evdns_close_server_port(s->port);
	evutil_closesocket(s->fd);
}

/* ---- fixture ---- */

struct fixture {
	struct event_base *base;
	struct dns_server server;
	struct resolver *r;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->base = event_base_new();
	server_start(f->base, &f->server);
	f->r = resolver_new_with_nameserver(f->base, f->server.addr);
	assert_non_null(f->r);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	resolver_free(f->r);
	server_stop(&f->server);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* What one lookup's callback saw. */
struct result {
	int calls;
	const char *err;
	struct sockaddr_storage sa;
	socklen_t salen;
};

static void
result_cb(const char *err, const struct sockaddr *sa, socklen_t salen, void *arg)
{
	struct result *res = arg;

	res->calls++;
	res->err = err;
	res->salen = salen;
	if (sa)
		memcpy(&res->sa, sa, salen);
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Runs the loop until *done is non-zero or `ms` milliseconds pass. */
static void
run_until(struct event_base *base, const int *done, int ms)
{
	int expired = 0;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	struct event *timer = evtimer_new(base, stop_cb, &expired);

	evtimer_add(timer, &tv);
	while (!expired && (done == NULL || !*done))
		event_base_loop(base, EVLOOP_ONCE);
	event_free(timer);
}

static void
assert_addr(const struct sockaddr_storage *sa, const char *want, uint16_t port)
{
	char text[INET6_ADDRSTRLEN];

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
		assert_int_equal(ntohs(sin->sin_port), port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		assert_int_equal(sa->ss_family, AF_INET6);
		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
		assert_int_equal(ntohs(sin6->sin6_port), port);
	}
	assert_string_equal(text, want);
}

/* Looks `host` up and waits for the answer. */
static void
lookup_wait(struct fixture *f, const char *host, uint16_t port, struct result *res)
{
	memset(res, 0, sizeof(*res));
	assert_non_null(resolver_lookup(f->r, host, port, result_cb, res));
	assert_int_equal(res->calls, 0);
	run_until(f->base, &res->calls, 5000);
	assert_int_equal(res->calls, 1);
}

/* ---- cases ---- */

static void
test_numeric(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_storage sa;
	socklen_t salen;

	assert_int_equal(resolver_lookup_now(f->r, "192.0.2.7", 8080, &sa, &salen), 0);
	assert_int_equal(salen, sizeof(struct sockaddr_in));
	assert_addr(&sa, "192.0.2.7", 8080);
	assert_int_equal(resolver_lookup_now(f->r, "2001:DB8::1", 443, &sa, &salen), 0);
	assert_int_equal(salen, sizeof(struct sockaddr_in6));
	assert_addr(&sa, "2001:db8::1", 443);
	assert_int_equal(resolver_lookup_now(f->r, "::1", 80, &sa, &salen), 0);
	assert_addr(&sa, "::1", 80);
	/* Brackets belong to URLs, not to host strings; names need a lookup. */
	assert_int_equal(resolver_lookup_now(f->r, "[::1]", 80, &sa, &salen), -1);
	assert_int_equal(resolver_lookup_now(f->r, "192.0.2.300", 80, &sa, &salen), -1);
	assert_int_equal(resolver_lookup_now(f->r, "a.portico.test", 80, &sa, &salen), -1);
	assert_int_equal(f->server.queries, 0);
}

static void
test_hosts_file_localhost(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_storage sa;
	socklen_t salen;
	struct result res;

	/* Debian's /etc/hosts always names localhost. */
	assert_int_equal(resolver_lookup_now(f->r, "localhost", 81, &sa, &salen), 0);
	if (sa.ss_family == AF_INET)
		assert_addr(&sa, "127.0.0.1", 81);
	else
		assert_addr(&sa, "::1", 81);
	lookup_wait(f, "LocalHost", 82, &res);
	assert_null(res.err);
	assert_int_equal(f->server.queries, 0);
}

static void
test_overrides(void **state)
{
	struct fixture *f = *state;
	struct config_host hosts[] = {
	    {"internal.example.com", "192.0.2.10"},
	    {"v6.example.com", "2001:db8::10"},
	    {"a.portico.test", "192.0.2.99"},
	};
	struct config cfg;
	struct sockaddr_storage sa;
	socklen_t salen;
	struct result res;

	memset(&cfg, 0, sizeof(cfg));
	cfg.hosts = hosts;
	cfg.nhosts = 2;
	resolver_set_config(f->r, &cfg);
	assert_int_equal(resolver_lookup_now(f->r, "Internal.Example.COM", 80, &sa, &salen), 0);
	assert_addr(&sa, "192.0.2.10", 80);
	assert_int_equal(resolver_lookup_now(f->r, "v6.example.com", 8443, &sa, &salen), 0);
	assert_addr(&sa, "2001:db8::10", 8443);

	/* A name answered by DNS and cached... */
	lookup_wait(f, "a.portico.test", 80, &res);
	assert_null(res.err);
	assert_addr(&res.sa, "192.0.2.1", 80);
	assert_int_equal(resolver_lookup_now(f->r, "a.portico.test", 80, &sa, &salen), 0);
	/* ...then overridden by a new snapshot, which also drops the old overrides. */
	cfg.nhosts = 3;
	resolver_set_config(f->r, &cfg);
	assert_int_equal(resolver_lookup_now(f->r, "a.portico.test", 80, &sa, &salen), 0);
	assert_addr(&sa, "192.0.2.99", 80);
	cfg.hosts = &hosts[2];
	cfg.nhosts = 1;
	resolver_set_config(f->r, &cfg);
	assert_int_equal(resolver_lookup_now(f->r, "internal.example.com", 80, &sa, &salen), -1);
	/* The cache was dropped: without the override the name is asked again. */
	resolver_set_config(f->r, NULL);
	assert_int_equal(resolver_lookup_now(f->r, "a.portico.test", 80, &sa, &salen), -1);
	lookup_wait(f, "a.portico.test", 80, &res);
	assert_addr(&res.sa, "192.0.2.1", 80);
	assert_int_equal(f->server.queries_a, 2);
}

static void
test_callback_never_synchronous(void **state)
{
	struct fixture *f = *state;
	struct config_host hosts[] = {{"internal.example.com", "192.0.2.10"}};
	struct config cfg;
	struct result res;

	memset(&cfg, 0, sizeof(cfg));
	cfg.hosts = hosts;
	cfg.nhosts = 1;
	resolver_set_config(f->r, &cfg);

	lookup_wait(f, "192.0.2.7", 8080, &res); /* asserts no call before the loop runs */
	assert_null(res.err);
	assert_int_equal(res.salen, sizeof(struct sockaddr_in));
	assert_addr(&res.sa, "192.0.2.7", 8080);
	lookup_wait(f, "internal.example.com", 81, &res);
	assert_addr(&res.sa, "192.0.2.10", 81);
	lookup_wait(f, "b.portico.test", 82, &res);
	assert_addr(&res.sa, "192.0.2.2", 82);
	lookup_wait(f, "b.portico.test", 83, &res); /* from the cache */
	assert_addr(&res.sa, "192.0.2.2", 83);
	lookup_wait(f, "missing.portico.test", 84, &res);
	assert_string_equal(res.err, "name not found");
}

static void
test_cancel(void **state)
{
	struct fixture *f = *state;
	struct result res, other;
	struct resolve_req *q;
	struct sockaddr_storage sa;
	socklen_t salen;

	memset(&res, 0, sizeof(res));
	q = resolver_lookup(f->r, "192.0.2.7", 80, result_cb, &res);
	resolve_cancel(q);
	run_until(f->base, NULL, 100);
	assert_int_equal(res.calls, 0);

	/* Cancelled while the query is out: the other waiter still gets its answer. */
	memset(&other, 0, sizeof(other));
	q = resolver_lookup(f->r, "a.portico.test", 80, result_cb, &res);
	assert_non_null(resolver_lookup(f->r, "a.portico.test", 81, result_cb, &other));
	resolve_cancel(q);
	run_until(f->base, &other.calls, 5000);
	run_until(f->base, NULL, 100);
	assert_int_equal(res.calls, 0);
	assert_int_equal(other.calls, 1);
	assert_addr(&other.sa, "192.0.2.1", 81);

	/* Cancelled after the answer arrived but before the callback ran. */
	q = resolver_lookup(f->r, "a.portico.test", 80, result_cb, &res);
	resolve_cancel(q);
	run_until(f->base, NULL, 100);
	assert_int_equal(res.calls, 0);
	assert_int_equal(resolver_lookup_now(f->r, "a.portico.test", 80, &sa, &salen), 0);
	assert_int_equal(f->server.queries_a, 1);
}

static void
test_ttl_expiry(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_storage sa;
	socklen_t salen;
	struct result res;

	lookup_wait(f, "a.portico.test", 80, &res);
	assert_null(res.err);
	assert_int_equal(f->server.queries_a, 1);
	/* Within the 1 s TTL: answered from the cache, nothing asked. */
	assert_int_equal(resolver_lookup_now(f->r, "a.portico.test", 80, &sa, &salen), 0);
	lookup_wait(f, "a.portico.test", 80, &res);
	assert_addr(&res.sa, "192.0.2.1", 80);
	assert_int_equal(f->server.queries_a, 1);

	run_until(f->base, NULL, 1200);
	assert_int_equal(resolver_lookup_now(f->r, "a.portico.test", 80, &sa, &salen), -1);
	lookup_wait(f, "a.portico.test", 80, &res);
	assert_null(res.err);
	assert_addr(&res.sa, "192.0.2.1", 80);
	assert_int_equal(f->server.queries_a, 2);
}

static void
test_shared_query(void **state)
{
	struct fixture *f = *state;
	struct result res[3];

	memset(res, 0, sizeof(res));
	for (int i = 0; i < 3; i++)
		assert_non_null(resolver_lookup(f->r, "a.portico.test", (uint16_t)(80 + i),
						result_cb, &res[i]));
	run_until(f->base, &res[2].calls, 5000);
	run_until(f->base, NULL, 50);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(res[i].calls, 1);
		assert_null(res[i].err);
		assert_addr(&res[i].sa, "192.0.2.1", (uint16_t)(80 + i));
	}
	assert_int_equal(f->server.queries_a, 1);
}

static void
test_aaaa_after_empty_a(void **state)
{
	struct fixture *f = *state;
	struct result res;

	lookup_wait(f, "six.portico.test", 443, &res);
	assert_null(res.err);
	assert_int_equal(res.salen, sizeof(struct sockaddr_in6));
	assert_addr(&res.sa, "2001:db8::6", 443);
	assert_int_equal(f->server.queries_six, 1);
}

static void
test_errors(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_storage sa;
	socklen_t salen;
	struct result res;
	int asked;

	lookup_wait(f, "missing.portico.test", 80, &res);
	assert_string_equal(res.err, "name not found");
	assert_int_equal(res.salen, 0);
	/* Negative answers are cached too. */
	asked = f->server.queries;
	lookup_wait(f, "missing.portico.test", 80, &res);
	assert_string_equal(res.err, "name not found");
	assert_int_equal(f->server.queries, asked);
	assert_int_equal(resolver_lookup_now(f->r, "missing.portico.test", 80, &sa, &salen), -1);

	lookup_wait(f, "refused.portico.test", 80, &res);
	assert_non_null(res.err);
	assert_int_equal(resolver_lookup_now(f->r, "refused.portico.test", 80, &sa, &salen), -1);
}

static void
test_free_outstanding(void **state)
{
	struct fixture *f = *state;
	struct result res[2];

	memset(res, 0, sizeof(res));
	assert_non_null(resolver_lookup(f->r, "a.portico.test", 80, result_cb, &res[0]));
	assert_non_null(resolver_lookup(f->r, "192.0.2.7", 80, result_cb, &res[1]));
	resolver_free(f->r);
	f->r = NULL;
	run_until(f->base, NULL, 200);
	assert_int_equal(res[0].calls, 0);
	assert_int_equal(res[1].calls, 0);
}

static void
test_bad_nameserver(void **state)
{
	struct fixture *f = *state;

	assert_null(resolver_new_with_nameserver(f->base, "not-an-address"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_numeric, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hosts_file_localhost, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overrides, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_callback_never_synchronous, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shared_query, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aaaa_after_empty_a, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_outstanding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_nameserver, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
