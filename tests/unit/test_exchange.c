/*
 * test_exchange.c: the exchange's phases and the client connection's states
 * have a name each (they are logged), and the one routing decision
 * (route_decide.h) gives each status of SPEC sections 3 and 7 the way the
 * proxy and `portico route` both rely on: normalization, the rule, access,
 * the upstream target, in that order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "portico/client.h"
#include "portico/config.h"
#include "portico/exchange.h"
#include "portico/route_decide.h"

#define S(s) s, strlen(s)

static void
test_phase_names(void **state)
{
	const char *seen[16];
	size_t n = 0;

	(void)state;
	for (int p = EXCHANGE_REQ_HEAD; p <= EXCHANGE_REQ_SENT; p++)
		seen[n++] = exchange_req_phase_name((enum exchange_req_phase)p);
	assert_string_equal(seen[0], "head");
	assert_string_equal(seen[2], "sent");
	for (int p = EXCHANGE_RESP_WAIT; p <= EXCHANGE_RESP_DONE; p++)
		seen[n++] = exchange_resp_phase_name((enum exchange_resp_phase)p);
	assert_string_equal(seen[3], "wait");
	assert_string_equal(seen[6], "done");
	/* Within each enum, every name is its own. */
	for (size_t i = 0; i < 3; i++)
		for (size_t j = i + 1; j < 3; j++)
			assert_string_not_equal(seen[i], seen[j]);
	for (size_t i = 3; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(seen[i], seen[j]);
	assert_string_equal(exchange_req_phase_name((enum exchange_req_phase)99), "?");
	assert_string_equal(exchange_resp_phase_name((enum exchange_resp_phase)99), "?");
	for (int s = CLIENT_IDLE; s <= CLIENT_CLOSING; s++)
		assert_string_not_equal(client_state_name((enum client_state)s), "?");
	assert_string_equal(client_state_name(CLIENT_WAIT), "wait");
	assert_string_equal(client_state_name((enum client_state)99), "?");
}

static const char config_text[] = "listen: [127.0.0.1:8080]\n"
				  "access:\n"
				  "  - allow: 10.0.0.0/8\n"
				  "  - deny: all\n"
				  "routes:\n"
				  "  - path: /internal/excluded\n"
				  "    pass: off\n"
				  "  - match: '^/img/(.*)$'\n"
				  "    pass: http://images.example.com/i/$1\n"
				  "  - path: /v\n"
				  "    host: '*.example.org'\n"
				  "    pass: http://vhost.example.com/\n"
				  "  - path: /internal\n"
				  "    pass: http://internal.example.com/public\n";

static struct config *
load(void)
{
	char name[] = "/tmp/test_exchange_XXXXXX.yaml";
	int fd = mkstemps(name, 5);
	struct config *c;
	char *err = NULL;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, config_text, sizeof(config_text) - 1),
			 (ssize_t)sizeof(config_text) - 1);
	close(fd);
	c = config_load(name, &err);
	unlink(name);
	if (c == NULL)
		fail_msg("%s", err);
	return c;
}

struct decided {
	struct buf path, target;
	struct route_decision d;
};

static int
decide(const struct config *c, const char *host, const char *target, const char *client,
       struct decided *out)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};

	if (client != NULL)
		assert_int_equal(inet_pton(AF_INET, client, &sin.sin_addr), 1);
	return route_decide(c, host, host ? strlen(host) : 0, S(target),
			    client ? (const struct sockaddr *)&sin : NULL, &out->path, &out->target,
			    &out->d);
}

static void
test_route_decide(void **state)
{
	struct config *c = load();
	struct decided x;

	(void)state;
	buf_init(&x.path);
	buf_init(&x.target);
	assert_int_equal(decide(c, NULL, "/internal/a/../b%7e?q=1", "10.1.2.3", &x), 0);
	assert_string_equal(x.path.data, "/internal/b~");
	assert_string_equal(x.target.data, "/public/b~?q=1");
	assert_int_equal(x.d.route->index, 3);
	assert_int_equal(x.d.query_len, 3);
	/* An empty target is "/"; no "?" is no query at all. */
	assert_int_equal(decide(c, NULL, "", NULL, &x), 404);
	assert_string_equal(x.path.data, "/");
	assert_null(x.d.query);
	/* The order of the statuses: 400, then 404, then 403. */
	assert_int_equal(decide(c, NULL, "/internal/%2F", "192.0.2.1", &x), 400);
	assert_null(x.d.route);
	assert_int_equal(decide(c, NULL, "/nowhere", "192.0.2.1", &x), 404);
	assert_string_equal(x.d.why, "no route");
	assert_int_equal(decide(c, NULL, "/internal/excluded/x", "10.0.0.1", &x), 404);
	assert_string_equal(x.d.why, "excluded");
	assert_int_equal(decide(c, NULL, "/internal/x", "192.0.2.1", &x), 403);
	assert_int_equal(x.d.route->index, 3);
	/* Without a client address access is left undecided. */
	assert_int_equal(decide(c, NULL, "/internal/x", NULL, &x), 0);
	/* Captures are encoded into the target. */
	assert_int_equal(decide(c, NULL, "/img/a%20b.png", NULL, &x), 0);
	assert_string_equal(x.target.data, "/i/a%20b.png");
	/* The Host's port is ignored for host rules, in any case. */
	assert_int_equal(decide(c, "WWW.Example.ORG:8080", "/v/x", NULL, &x), 0);
	assert_int_equal(x.d.route->index, 2);
	assert_int_equal(decide(c, "[::1]:80", "/v/x", NULL, &x), 404);
	buf_free(&x.path);
	buf_free(&x.target);
	config_unref(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_phase_names),
	    cmocka_unit_test(test_route_decide),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
