/*
 * test_config.c: portico.yaml into a snapshot (SPEC section 2): value
 * syntax, the default of every key, each composite key landing in the right
 * fields, reference counting, the shipped conf/portico.yaml, a 10,000-route
 * file, and the generated key list of man/portico.yaml.5.
 *
 * The man page check reads the source tree from $PORTICO_SOURCE_DIR (ctest
 * sets it).  After a change to the key table, regenerate the block between
 * the ".\" BEGIN GENERATED KEYS" and ".\" END GENERATED KEYS" lines with
 *
 *     PORTICO_REGENERATE=1 PORTICO_SOURCE_DIR=$PWD build/test_config
 *
 * and review the diff of man/portico.yaml.5.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <openssl/ssl.h>

#include "portico/config.h"
#include "portico/html.h"

#define MAN_BEGIN ".\\\" BEGIN GENERATED KEYS\n"
#define MAN_END	  ".\\\" END GENERATED KEYS\n"

static const char minimal[] = "listen:\n"
			      "  - 127.0.0.1:8080\n"
			      "routes:\n"
			      "  - path: /internal\n"
			      "    pass: http://internal.example.com/public\n";

/* Writes `text` to a temporary file and returns its malloc'd name. */
static char *
write_temp(const char *text)
{
	char *name = strdup("/tmp/test_config_XXXXXX.yaml");
	int fd = mkstemps(name, 5);
	size_t len = strlen(text);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return name;
}

/* Loads `text`; returns the snapshot, or NULL with *err set. */
static struct config *
load_text(const char *text, char **err)
{
	char *name = write_temp(text);
	struct config *c = config_load(name, err);

	unlink(name);
	free(name);
	return c;
}

static struct config *
load_ok(const char *text)
{
	char *err = NULL;
	struct config *c = load_text(text, &err);

	if (c == NULL)
		fail_msg("unexpected error: %s", err);
	return c;
}

/* The error message after "file:", so tests do not depend on the temp name. */
static char *
load_error(const char *text)
{
	char *err = NULL, *colon, *rest;
	struct config *c = load_text(text, &err);

	assert_null(c);
	assert_non_null(err);
	colon = strstr(err, ".yaml:");
	assert_non_null(colon);
	rest = strdup(colon + 6);
	free(err);
	return rest;
}

static char *
with_minimal(const char *extra)
{
	size_t n = strlen(minimal) + strlen(extra) + 1;
	char *s = malloc(n);

	snprintf(s, n, "%s%s", extra, minimal);
	return s;
}

static const char *
source_dir(void)
{
	const char *dir = getenv("PORTICO_SOURCE_DIR");

	if (dir == NULL)
		skip();
	return dir;
}

static char *
source_path(const char *rel)
{
	const char *dir = source_dir();
	size_t n = strlen(dir) + strlen(rel) + 2;
	char *p = malloc(n);

	snprintf(p, n, "%s/%s", dir, rel);
	return p;
}

/* Values */

static void
test_sizes(void **state)
{
	static const struct {
		const char *text;
		int rc;
		uint64_t v;
	} cases[] = {
	    {"0", 0, 0},
	    {"512", 0, 512},
	    {"16k", 0, 16384},
	    {"16K", 0, 16384},
	    {"16KiB", 0, 16384},
	    {"1m", 0, 1048576},
	    {"1MiB", 0, 1048576},
	    {"2g", 0, 2147483648ULL},
	    {"1GiB", 0, 1073741824ULL},
	    {"", -1, 0},
	    {"k", -1, 0},
	    {"16kb", -1, 0},
	    {"16 k", -1, 0},
	    {"-1", -1, 0},
	    {"1.5m", -1, 0},
	    {"16KB", -1, 0},
	    {"18446744073709551615", 0, UINT64_MAX},
	    {"18446744073709551616", -1, 0},
	    {"17179869184GiB", -1, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int rc = config_parse_size(cases[i].text, &v);

		if (rc != cases[i].rc)
			fail_msg("config_parse_size(\"%s\") = %d", cases[i].text, rc);
		if (rc == 0 && v != cases[i].v)
			fail_msg("config_parse_size(\"%s\") gave %llu", cases[i].text,
				 (unsigned long long)v);
	}
}

static void
test_durations(void **state)
{
	static const struct {
		const char *text;
		int rc;
		uint64_t ms;
	} cases[] = {
	    {"500ms", 0, 500}, {"10s", 0, 10000}, {"5m", 0, 300000}, {"1h", 0, 3600000},
	    {"0s", 0, 0},      {"10", -1, 0},	  {"s", -1, 0},	     {"10 s", -1, 0},
	    {"1d", -1, 0},     {"1.5s", -1, 0},	  {"10S", -1, 0},    {"", -1, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int rc = config_parse_duration(cases[i].text, &v);

		if (rc != cases[i].rc)
			fail_msg("config_parse_duration(\"%s\") = %d", cases[i].text, rc);
		if (rc == 0 && v != cases[i].ms)
			fail_msg("config_parse_duration(\"%s\") gave %llu", cases[i].text,
				 (unsigned long long)v);
	}
}

/* Defaults: every key left out takes the value SPEC section 2 gives it. */
static void
test_defaults(void **state)
{
	struct config *c = load_ok(minimal);
	const struct route *r = &c->routes[0];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	(void)state;
	assert_int_equal(atomic_load(&c->refs), 1);
	assert_int_equal(c->nlisten, 1);
	assert_false(c->listen[0].tls);
	assert_int_equal(c->listen[0].tls_min_version, TLS1_2_VERSION);
	assert_null(c->listen[0].ciphers);
	assert_null(c->listen[0].ciphersuites);
	assert_int_equal(c->workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
	assert_null(c->user);
	assert_null(c->group);
	assert_null(c->server_name);
	assert_string_equal(c->log.access, "stdout");
	assert_int_equal(c->log.format, LOG_FORMAT_COMBINED);
	assert_string_equal(c->log.error, "stderr");
	assert_int_equal(c->log.level, LOG_LEVEL_INFO);
	assert_null(c->admin.listen);
	assert_int_equal(c->limits.connections, 10000);
	assert_int_equal(c->limits.header_size, 16 * 1024);
	assert_int_equal(c->limits.header_count, 100);
	assert_int_equal(c->limits.body_size, 0);
	assert_int_equal(c->limits.response_header_size, 64 * 1024);
	assert_int_equal(c->timeouts.client_header, 10000);
	assert_int_equal(c->timeouts.client_body, 60000);
	assert_int_equal(c->timeouts.client_idle, 60000);
	assert_int_equal(c->timeouts.upstream_connect, 5000);
	assert_int_equal(c->timeouts.upstream_read, 60000);
	assert_int_equal(c->timeouts.upstream_idle, 30000);
	assert_int_equal(c->timeouts.tunnel, 3600000);
	assert_int_equal(c->timeouts.shutdown, 30000);
	assert_true(c->forwarded.x_forwarded);
	assert_false(c->forwarded.forwarded);
	assert_false(c->forwarded.via);
	assert_int_equal(c->nhosts, 0);
	assert_false(c->has_access);
	assert_int_equal(c->access.n, 0);
	assert_int_equal(c->nwarnings, 0);

	assert_int_equal(c->nroutes, 1);
	assert_int_equal(r->index, 0);
	assert_int_equal(r->line, 4);
	assert_int_equal(r->col, 5);
	assert_int_equal(r->kind, ROUTE_PATH);
	assert_string_equal(r->name, "0");
	assert_null(r->host);
	assert_true(r->reverse);
	assert_false(r->cookies);
	assert_false(r->preserve_host);
	assert_false(r->html);
	assert_false(r->html_extended);
	assert_int_equal(r->html_nmaps, 0);
	assert_false(r->has_access);
	assert_null(config_route_access(c, r));
	assert_int_equal(r->upstream_connect_ms, 5000);
	assert_int_equal(r->upstream_read_ms, 60000);
	assert_int_equal(r->tunnel_ms, 3600000);
	assert_true(r->tls.verify);
	assert_null(r->tls.ca);
	assert_null(r->tls.server_name);
	assert_null(r->tls.cert);
	assert_null(r->tls.key);

	/* The path route contributes the only reverse mapping. */
	assert_int_equal(c->nreverse, 1);
	assert_string_equal(c->reverse[0].public_path, "/internal");
	assert_string_equal(c->reverse[0].upstream.host, "internal.example.com");
	assert_string_equal(c->reverse[0].upstream.path, "/public");
	assert_non_null(c->table);
	config_unref(c);
}

/* Scalars set explicitly land in their fields; globals reach the routes. */
static void
test_scalars(void **state)
{
	char *text =
	    with_minimal("workers: 3\n"
			 "user: portico\n"
			 "group: nogroup\n"
			 "server_name: www.example.com\n"
			 "log: {access: /var/log/a.log, format: json, error: /var/log/e.log,"
			 " level: debug}\n"
			 "admin: {listen: \"[::1]:9180\"}\n"
			 "limits: {connections: 7, header_size: 8k, header_count: 9,"
			 " body_size: 1m, response_header_size: 2KiB}\n"
			 "timeouts: {client_header: 1s, client_body: 2s, client_idle: 3s,"
			 " upstream_connect: 250ms, upstream_read: 5m, upstream_idle: 6s,"
			 " tunnel: 2h, shutdown: 0s}\n"
			 "forwarded: {x_forwarded: false, forwarded: true, via: TRUE}\n");
	struct config *c = load_ok(text);

	(void)state;
	assert_int_equal(c->workers, 3);
	assert_string_equal(c->user, "portico");
	assert_string_equal(c->group, "nogroup");
	assert_string_equal(c->server_name, "www.example.com");
	assert_string_equal(c->log.access, "/var/log/a.log");
	assert_int_equal(c->log.format, LOG_FORMAT_JSON);
	assert_string_equal(c->log.error, "/var/log/e.log");
	assert_int_equal(c->log.level, LOG_LEVEL_DEBUG);
	assert_string_equal(c->admin.listen, "[::1]:9180");
	assert_int_equal(c->admin.sa.ss_family, AF_INET6);
	assert_int_equal(c->limits.connections, 7);
	assert_int_equal(c->limits.header_size, 8192);
	assert_int_equal(c->limits.header_count, 9);
	assert_int_equal(c->limits.body_size, 1048576);
	assert_int_equal(c->limits.response_header_size, 2048);
	assert_int_equal(c->timeouts.client_header, 1000);
	assert_int_equal(c->timeouts.client_body, 2000);
	assert_int_equal(c->timeouts.client_idle, 3000);
	assert_int_equal(c->timeouts.upstream_connect, 250);
	assert_int_equal(c->timeouts.upstream_read, 300000);
	assert_int_equal(c->timeouts.upstream_idle, 6000);
	assert_int_equal(c->timeouts.tunnel, 7200000);
	assert_int_equal(c->timeouts.shutdown, 0);
	assert_false(c->forwarded.x_forwarded);
	assert_true(c->forwarded.forwarded);
	assert_true(c->forwarded.via);
	assert_int_equal(c->routes[0].upstream_connect_ms, 250);
	assert_int_equal(c->routes[0].upstream_read_ms, 300000);
	assert_int_equal(c->routes[0].tunnel_ms, 7200000);
	config_unref(c);
	free(text);
}

static void
test_listen(void **state)
{
	char *certs = source_path("tests/conf/tls-certs");
	char text[2048];
	struct config *c;
	const struct sockaddr_in *in;
	const struct sockaddr_in6 *in6;

	(void)state;
	snprintf(text, sizeof(text),
		 "listen:\n"
		 "  - 127.0.0.1:8080\n"
		 "  - \"*:80\"\n"
		 "  - address: \"[2001:db8::1]:443\"\n"
		 "    tls:\n"
		 "      certificates:\n"
		 "        - {cert: %s/a.pem, key: %s/a.key}\n"
		 "        - {cert: %s/b.pem, key: %s/b.key}\n"
		 "      min_version: \"1.3\"\n"
		 "      ciphers: ECDHE-ECDSA-AES128-GCM-SHA256\n"
		 "      ciphersuites: TLS_AES_256_GCM_SHA384\n"
		 "  - 0.0.0.0:81\n"
		 "access: [{allow: all}]\n"
		 "routes:\n"
		 "  - {path: /, pass: \"http://[::1]:8081/\"}\n",
		 certs, certs, certs, certs);
	c = load_ok(text);
	assert_int_equal(c->nlisten, 4);

	in = (const void *)&c->listen[0].sa;
	assert_string_equal(c->listen[0].address, "127.0.0.1:8080");
	assert_int_equal(in->sin_family, AF_INET);
	assert_int_equal(ntohs(in->sin_port), 8080);
	assert_int_equal(ntohl(in->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(c->listen[0].salen, sizeof(struct sockaddr_in));
	assert_false(c->listen[0].public);
	assert_false(c->listen[0].any);
	assert_int_equal(c->listen[0].line, 2);

	in6 = (const void *)&c->listen[1].sa;
	assert_true(c->listen[1].any);
	assert_true(c->listen[1].public);
	assert_int_equal(in6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(in6->sin6_port), 80);
	assert_true(IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr));

	assert_true(c->listen[2].tls);
	assert_true(c->listen[2].public);
	assert_int_equal(c->listen[2].sa.ss_family, AF_INET6);
	assert_int_equal(c->listen[2].ncerts, 2);
	assert_non_null(strstr(c->listen[2].certs[0].cert, "/a.pem"));
	assert_non_null(strstr(c->listen[2].certs[1].key, "/b.key"));
	assert_int_equal(c->listen[2].tls_min_version, TLS1_3_VERSION);
	assert_string_equal(c->listen[2].ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
	assert_string_equal(c->listen[2].ciphersuites, "TLS_AES_256_GCM_SHA384");

	assert_true(c->listen[3].public);
	assert_false(c->listen[3].any);
	/* A global access list: no warning about the public listeners. */
	assert_int_equal(c->nwarnings, 0);
	config_unref(c);
	free(certs);
}

static void
test_hosts_access_reverse(void **state)
{
	char *text = with_minimal("hosts:\n"
				  "  Internal.Example.COM: 192.0.2.10\n"
				  "  v6.example.com: \"2001:db8::10\"\n"
				  "access:\n"
				  "  - allow: 10.0.0.0/8\n"
				  "  - deny: \"2001:db8::/32\"\n"
				  "  - allow: all\n"
				  "reverse:\n"
				  "  - path: /legacy\n"
				  "    url: http://legacy.example.com:8080/app\n");
	struct config *c = load_ok(text);
	uint8_t ten[4] = {10, 0, 0, 0};

	(void)state;
	assert_int_equal(c->nhosts, 2);
	assert_string_equal(c->hosts[0].name, "internal.example.com");
	assert_string_equal(c->hosts[0].addr, "192.0.2.10");
	assert_string_equal(c->hosts[1].addr, "2001:db8::10");

	assert_true(c->has_access);
	assert_int_equal(c->access.n, 3);
	assert_true(c->access.rules[0].allow);
	assert_int_equal(c->access.rules[0].family, AF_INET);
	assert_int_equal(c->access.rules[0].prefix, 8);
	assert_memory_equal(c->access.rules[0].addr, ten, 4);
	assert_false(c->access.rules[1].allow);
	assert_int_equal(c->access.rules[1].family, AF_INET6);
	assert_int_equal(c->access.rules[1].prefix, 32);
	assert_true(c->access.rules[2].all);
	assert_ptr_equal(config_route_access(c, &c->routes[0]), &c->access);

	/* Route mappings first, then the reverse list. */
	assert_int_equal(c->nreverse, 2);
	assert_string_equal(c->reverse[0].public_path, "/internal");
	assert_string_equal(c->reverse[1].public_path, "/legacy");
	assert_string_equal(c->reverse[1].upstream.authority, "legacy.example.com:8080");
	assert_int_equal(c->reverse[1].upstream.port, 8080);
	assert_string_equal(c->reverse[1].upstream.path, "/app");
	config_unref(c);
	free(text);
}

static void
test_routes(void **state)
{
	struct config *c = load_ok("listen: [\"127.0.0.1:8080\"]\n"
				   "access: []\n"
				   "routes:\n"
				   "  - path: /internal/excluded\n"
				   "    pass: off\n"
				   "  - match: '^/internal/(.*[.](jpeg|png))$'\n"
				   "    pass: http://internal.example.com/public/$1\n"
				   "  - path: /internal\n"
				   "    pass: http://internal.example.com/public\n"
				   "    name: internal\n"
				   "    host: WWW.Example.com\n"
				   "    reverse: false\n"
				   "    cookies: true\n"
				   "    preserve_host: true\n"
				   "    html: true\n"
				   "    access: [{deny: 192.0.2.1}]\n"
				   "    timeouts: {upstream_read: 2m}\n"
				   "  - path: /off\n"
				   "    pass: false\n"
				   "  - match: '^/app'\n"
				   "    pass: https://app.example.com/x\n"
				   "    host: '*.example.com'\n"
				   "    reverse: true\n"
				   "    html: {map: [{from: /x, to: /app}], extended: true}\n"
				   "    tls: {verify: true, server_name: app.internal}\n");
	const struct route *r;

	(void)state;
	assert_int_equal(c->nroutes, 5);
	r = &c->routes[0];
	assert_true(r->pass_off);
	assert_null(r->pass);
	assert_false(r->reverse);
	assert_string_equal(r->path, "/internal/excluded");
	assert_null(config_route_access(c, r)); /* the global list is empty */

	r = &c->routes[1];
	assert_int_equal(r->kind, ROUTE_MATCH);
	assert_non_null(r->re);
	assert_string_equal(r->match, "^/internal/(.*[.](jpeg|png))$");
	assert_true(r->pass_has_ref);
	assert_false(r->reverse);
	assert_string_equal(r->upstream.path, "/public/$1");
	assert_string_equal(r->name, "1");

	r = &c->routes[2];
	assert_string_equal(r->name, "internal");
	assert_string_equal(r->host, "www.example.com");
	assert_false(r->reverse);
	assert_true(r->cookies);
	assert_true(r->preserve_host);
	assert_true(r->html);
	assert_false(r->html_extended);
	assert_int_equal(r->html_nmaps, 2);
	assert_string_equal(r->html_maps[0].from, "http://internal.example.com/public");
	assert_string_equal(r->html_maps[0].to, "/internal");
	assert_string_equal(r->html_maps[1].from, "/public");
	assert_string_equal(r->html_maps[1].to, "/internal");
	assert_true(r->has_access);
	assert_int_equal(r->access.n, 1);
	assert_false(r->access.rules[0].allow);
	assert_ptr_equal(config_route_access(c, r), &r->access);
	assert_int_equal(r->upstream_read_ms, 120000);
	assert_int_equal(r->upstream_connect_ms, 5000);

	assert_true(c->routes[3].pass_off);

	r = &c->routes[4];
	assert_string_equal(r->host, "*.example.com");
	assert_true(r->upstream.tls);
	assert_true(r->reverse);
	assert_true(r->html_extended);
	assert_int_equal(r->html_nmaps, 1);
	assert_string_equal(r->html_maps[0].from, "/x");
	assert_string_equal(r->html_maps[0].to, "/app");
	assert_true(r->tls.verify);
	assert_string_equal(r->tls.server_name, "app.internal");

	/* Only the match route with reverse: true maps back (from the root). */
	assert_int_equal(c->nreverse, 1);
	assert_string_equal(c->reverse[0].public_path, "");
	assert_string_equal(c->reverse[0].upstream.host, "app.example.com");

	/* An empty global list exists and allows every client, like no list. */
	assert_true(c->has_access);
	assert_int_equal(c->access.n, 0);
	assert_null(config_route_access(c, &c->routes[0]));
	assert_int_equal(c->nwarnings, 0);
	config_unref(c);
}

/*
 * html: true on a pass without a path: "/internal/x" goes to "/x", so a
 * link to "/x" in the page must come back as "/internal/x".
 */
static void
test_html_default_maps_empty_pass_path(void **state)
{
	static const struct {
		const char *path, *in, *want;
	} cases[] = {
	    {"/internal", "/x/y", "/internal/x/y"},
	    {"/internal", "/", "/internal/"},
	    {"/internal", "http://internal.example.com/x", "/internal/x"},
	    {"/internal", "http://internal.example.com", "/internal/"},
	    {"/internal", "http://internal.example.com?q", "/internal/?q"},
	    {"/internal/", "/x", "/internal/x"},
	    {"/internal/", "http://internal.example.com/x", "/internal/x"},
	    {"/internal/", "http://internal.example.com", "/internal/"},
	    {"/", "/x", "/x"},
	    {"/", "http://internal.example.com/x", "/x"},
	    {"/", "http://internal.example.com", "/"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		struct config *c;
		struct buf out;

		snprintf(text, sizeof(text),
			 "listen: [\"127.0.0.1:1\"]\nroutes: [{path: %s, pass: "
			 "'http://internal.example.com', html: true}]\n",
			 cases[i].path);
		c = load_ok(text);
		buf_init(&out);
		assert_true(html_rewrite_url(c->routes[0].html_maps, c->routes[0].html_nmaps,
					     cases[i].in, strlen(cases[i].in), &out));
		if (strcmp(out.data, cases[i].want) != 0)
			fail_msg("case %zu: got %s, want %s", i, out.data, cases[i].want);
		buf_free(&out);
		config_unref(c);
	}
}

/* A route's list replaces the global one; an empty list opens the route. */
static void
test_access_lists(void **state)
{
	struct config *c = load_ok("listen: [\"*:8080\"]\n"
				   "access: [{allow: 10.0.0.0/8}]\n"
				   "routes:\n"
				   "  - {path: /open, pass: http://x, access: []}\n"
				   "  - {path: /own, pass: http://x, access: [{deny: all}]}\n"
				   "  - {path: /global, pass: http://x}\n");

	(void)state;
	assert_true(c->routes[0].has_access);
	assert_null(config_route_access(c, &c->routes[0]));
	assert_ptr_equal(config_route_access(c, &c->routes[1]), &c->routes[1].access);
	assert_true(c->routes[1].access.rules[0].all);
	assert_false(c->routes[1].access.rules[0].allow);
	assert_ptr_equal(config_route_access(c, &c->routes[2]), &c->access);
	assert_int_equal(c->nwarnings, 0);
	config_unref(c);
}

/* listen[].proxy_protocol and forwarded.trusted land as allow rules; absent, empty. */
static void
test_balancer_lists(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct config *c = load_ok("listen:\n"
				   "  - 127.0.0.1:8080\n"
				   "  - {address: \"127.0.0.1:8081\", proxy_protocol: [10.0.0.0/8, "
				   "\"2001:db8::/32\"]}\n"
				   "forwarded: {trusted: [10.1.0.0/16]}\n"
				   "routes: [{path: /, pass: http://x}]\n");

	(void)state;
	assert_int_equal(c->listen[0].proxy_protocol.n, 0);
	assert_int_equal(c->listen[1].proxy_protocol.n, 2);
	assert_int_equal(c->listen[1].proxy_protocol.rules[1].family, AF_INET6);
	assert_int_equal(c->forwarded.trusted.n, 1);
	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	inet_pton(AF_INET, "10.1.2.3", &s4->sin_addr);
	assert_true(access_is_allowed(&c->forwarded.trusted, (struct sockaddr *)&ss));
	assert_true(access_is_allowed(&c->listen[1].proxy_protocol, (struct sockaddr *)&ss));
	inet_pton(AF_INET, "10.2.0.1", &s4->sin_addr);
	assert_false(access_is_allowed(&c->forwarded.trusted, (struct sockaddr *)&ss));
	config_unref(c);

	c = load_ok(minimal);
	assert_int_equal(c->forwarded.trusted.n, 0);
	assert_int_equal(c->listen[0].proxy_protocol.n, 0);
	config_unref(c);
}

static void
test_route_tls_files(void **state)
{
	char *certs = source_path("tests/conf/tls-certs");
	char text[1024];
	struct config *c;

	(void)state;
	snprintf(text, sizeof(text),
		 "listen: [\"127.0.0.1:8080\"]\n"
		 "routes:\n"
		 "  - path: /\n"
		 "    pass: https://internal.example.com/\n"
		 "    tls: {verify: false, ca: %s/a.pem, cert: %s/b.pem, key: %s/b.key}\n",
		 certs, certs, certs);
	c = load_ok(text);
	assert_false(c->routes[0].tls.verify);
	assert_non_null(strstr(c->routes[0].tls.ca, "/a.pem"));
	assert_non_null(strstr(c->routes[0].tls.cert, "/b.pem"));
	assert_non_null(strstr(c->routes[0].tls.key, "/b.key"));
	assert_int_equal(c->nwarnings, 1);
	assert_non_null(strstr(c->warnings[0], ":5:19: warning: routes[0].tls.verify: "));
	config_unref(c);
	free(certs);
}

/* Errors name line, column and key path; a few that the golden cases do not cover. */
static void
test_errors(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{path: /a, pass: http://x, name: [1]}]\n",
	     "2:43: routes[0].name: expected a name of letters, digits, \".\", \"_\", \"-\" or "
	     "\":\"; got a list"},
	    /* A label that log lines carry as route=NAME: one token. */
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{path: /a, pass: http://x, name: \"a b\"}]\n",
	     "2:43: routes[0].name: expected a name of letters, digits, \".\", \"_\", \"-\" or "
	     "\":\"; got \"a b\""},
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{path: /a, pass: http://x, cookie: true}]\n",
	     "2:37: routes[0].cookie: unknown key; did you mean \"cookies\"?"},
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{path: /a, pass: http://x, time: {}}]\n",
	     "2:37: routes[0].time: unknown key; did you mean \"timeouts\"?"},
	    /* A plain key folded over two lines: the error still takes one line. */
	    {"listen:\n :8/'al-g\n?  -hostsc\n\n :8/'al-g", "3:4: -hostsc\\n:8/'al-g: unknown key"},
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{path: /a, pass: 'http://x:0/'}]\n",
	     "2:27: routes[0].pass: expected a port number in 1..65535 after the host; got "
	     "\"http://x:0/\""},
	    {"listen: [\"127.0.0.1:1\"]\ntimeouts: {tunnel: 8d}\nroutes: [{path: /a, pass: "
	     "http://x}]\n",
	     "2:20: timeouts.tunnel: expected a duration with a unit (ms, s, m or h), like "
	     "500ms, 10s, 5m or 1h; got \"8d\""},
	    {"listen: [\"127.0.0.1:1\"]\ntimeouts: {tunnel: 200h}\nroutes: [{path: /a, pass: "
	     "http://x}]\n",
	     "2:20: timeouts.tunnel: expected a duration from 1ms to 168h; got \"200h\""},
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{match: '^/(a)', pass: 'http://x/$1', html: "
	     "true}]\n",
	     "2:54: routes[0].html: a match route needs html.map: it has no fixed public "
	     "path to map to"},
	    {"listen: [\"127.0.0.1:1\"]\nhosts: {a.example: 1.2.3.4, A.example: 1.2.3.5}\n"
	     "routes: [{path: /a, pass: http://x}]\n",
	     "2:29: hosts.A.example: duplicate host name"},
	    {"[1, 2]\n", "1:1: expected a mapping with listen and routes; got a list"},
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{path: /a, \"pass\\0x\": http://x}]\n",
	     "2:21: routes[0]: a key may not hold a NUL byte (\\0)"},
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{path: /a, pass: http://x, html: \"true\\0\"}]\n",
	     "2:43: routes[0].html: a value may not hold a NUL byte (\\0)"},
	    /* An escape in the pattern's source: the column of the value, not a guess. */
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{match: \"^/\\\\d(b\", pass: http://x}]\n",
	     "2:18: routes[0].match: invalid regular expression at offset 6: missing closing "
	     "parenthesis"},
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{match: \"^/a(b\", pass: http://x}]\n",
	     "2:24: routes[0].match: invalid regular expression at offset 5: missing closing "
	     "parenthesis"},
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{path: /a, pass: https://x, tls: {cert: "
	     "/nonexistent.pem}}]\n",
	     "2:50: routes[0].tls.cert: cert and key go together; got only cert"},
	    {"listen: [\"127.0.0.1:1\"]\nroutes: [{path: /a, pass: https://x, tls: {ca: "
	     "/nonexistent.pem}}]\n",
	     "2:48: routes[0].tls.ca: cannot open \"/nonexistent.pem\": No such file or "
	     "directory"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = load_error(cases[i].text);

		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, got, cases[i].want);
		free(got);
	}
}

static void
test_missing_file(void **state)
{
	char *err = NULL;

	(void)state;
	assert_null(config_load("/nonexistent/portico.yaml", &err));
	assert_string_equal(err, "/nonexistent/portico.yaml: cannot open: No such file or "
				 "directory");
	free(err);
}

static void
test_refcount(void **state)
{
	struct config *c = load_ok(minimal);

	(void)state;
	assert_int_equal(atomic_load(&c->refs), 1);
	assert_ptr_equal(config_ref(c), c);
	assert_ptr_equal(config_ref(c), c);
	assert_int_equal(atomic_load(&c->refs), 3);
	config_unref(c);
	config_unref(c);
	assert_int_equal(atomic_load(&c->refs), 1);
	/* Still whole while a reference remains. */
	assert_string_equal(c->routes[0].pass, "http://internal.example.com/public");
	config_unref(c); /* frees; ASan builds check that nothing leaks */
	config_unref(NULL);
}

/* The shipped example is valid, warning-free, and says what its comments say. */
static void
test_shipped_config(void **state)
{
	char *path = source_path("conf/portico.yaml");
	char *err = NULL;
	struct config *c = config_load(path, &err);
	const struct route_table *t;
	const struct route *r;
	struct route_captures caps;

	(void)state;
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->nwarnings, 0);
	assert_true(c->has_access);
	assert_int_equal(c->nroutes, 3);
	t = c->table;
	r = route_table_lookup(t, "localhost", 9, "/internal/excluded/x", 20, &caps);
	assert_non_null(r);
	assert_true(r->pass_off);
	r = route_table_lookup(t, "localhost", 9, "/internal/a/logo.png", 20, &caps);
	assert_non_null(r);
	assert_string_equal(r->name, "images");
	r = route_table_lookup(t, "localhost", 9, "/internal/status.cgi", 20, &caps);
	assert_non_null(r);
	assert_string_equal(r->name, "internal");
	assert_true(r->html);
	assert_true(r->cookies);
	assert_int_equal(c->nreverse, 1);
	assert_string_equal(c->reverse[0].upstream.authority, "internal.example.com:8081");
	assert_null(route_table_lookup(t, "localhost", 9, "/internalx", 10, &caps));
	config_unref(c);
	free(path);
}

/* 10,000 routes load, and the table finds the right one. */
static void
test_ten_thousand_routes(void **state)
{
	struct buf b;
	struct config *c;
	const struct route *r;
	struct route_captures caps;

	(void)state;
	buf_init(&b);
	buf_adds(&b, "listen: [\"127.0.0.1:8080\"]\nroutes:\n");
	for (int i = 0; i < 10000; i++)
		buf_addf(&b, "  - path: /app%d\n    pass: http://10.0.%d.%d:8080/x%d\n", i, i / 256,
			 i % 256, i);
	c = load_ok(b.data);
	assert_int_equal(c->nroutes, 10000);
	assert_int_equal(c->nreverse, 10000);
	assert_int_equal(c->nwarnings, 0);
	r = route_table_lookup(c->table, NULL, 0, "/app1234/x", 10, &caps);
	assert_non_null(r);
	assert_int_equal(r->index, 1234);
	assert_string_equal(r->path, "/app1234");
	assert_string_equal(r->upstream.host, "10.0.4.210");
	assert_int_equal(r->line, 3 + 2 * 1234);
	assert_null(route_table_lookup(c->table, NULL, 0, "/app12345", 9, &caps));
	config_unref(c);
	buf_free(&b);
}

/* The man page */

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *data;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc((size_t)n + 1);
	assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
	data[n] = '\0';
	fclose(f);
	return data;
}

static char *
generated_keys(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	config_write_mdoc_keys(f);
	fclose(f);
	return text;
}

/* Writes the man page with `keys` between the markers. */
static void
regenerate(const char *path, const char *page, const char *begin, const char *end, const char *keys)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	fwrite(page, 1, (size_t)(begin - page), f);
	fputs(keys, f);
	fputs(end, f);
	fclose(f);
	print_message("rewrote the generated key list of %s\n", path);
}

static void
test_man_page_keys(void **state)
{
	char *path = source_path("man/portico.yaml.5");
	char *page = read_file(path), *keys = generated_keys();
	char *begin = strstr(page, MAN_BEGIN), *end;

	(void)state;
	if (begin == NULL || (end = strstr(begin, MAN_END)) == NULL)
		fail_msg("%s: no \"BEGIN/END GENERATED KEYS\" marker lines", path);
	begin += strlen(MAN_BEGIN);
	if (getenv("PORTICO_REGENERATE") != NULL)
		regenerate(path, page, begin, end, keys);
	else if (strlen(keys) != (size_t)(end - begin) || memcmp(keys, begin, strlen(keys)) != 0)
		fail_msg("%s: the generated key list is out of date; run PORTICO_REGENERATE=1 "
			 "PORTICO_SOURCE_DIR=<source> test_config",
			 path);
	free(keys);
	free(page);
	free(path);
}

/* Every key the generated list names has a row, and the list is well formed. */
static void
test_mdoc_keys_shape(void **state)
{
	char *keys = generated_keys();
	static const char *const must[] = {
	    ".It Ic listen Ar list\n",
	    ".It Ic limits.header_size Ar size\n",
	    "LimitRequestFieldSize",
	    ".It Ic routes[].preserve_host Ar bool\n",
	    "ProxyPreserveHost",
	    ".It Ic log.format Ar combined | json\n",
	    ".It Ic listen[].tls.min_version Ar 1.2 | 1.3\n",
	    "From 1KiB to 1MiB.\n",
	    "Default:\n.Ql 16KiB .\n",
	    "ProxyPassReverseCookiePath",
	    "ProxyHTMLURLMap",
	    "SSLProxyVerify",
	    "SSLProxyCACertificateFile",
	    "ProxyTimeout",
	    "LimitRequestBody",
	    "LimitRequestFields",
	    "ProxyPassMatch",
	    "ProxyHTMLExtended",
	    "Require ip",
	};

	(void)state;
	assert_true(strncmp(keys, ".Bl -tag -width Ds\n", 19) == 0);
	assert_non_null(strstr(keys, ".El\n"));
	for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
		if (strstr(keys, must[i]) == NULL)
			fail_msg("generated key list lacks \"%s\"", must[i]);
	free(keys);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_scalars),
	    cmocka_unit_test(test_listen),
	    cmocka_unit_test(test_hosts_access_reverse),
	    cmocka_unit_test(test_routes),
	    cmocka_unit_test(test_html_default_maps_empty_pass_path),
	    cmocka_unit_test(test_access_lists),
	    cmocka_unit_test(test_balancer_lists),
	    cmocka_unit_test(test_route_tls_files),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_refcount),
	    cmocka_unit_test(test_shipped_config),
	    cmocka_unit_test(test_ten_thousand_routes),
	    cmocka_unit_test(test_man_page_keys),
	    cmocka_unit_test(test_mdoc_keys_shape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
