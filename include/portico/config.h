/*
 * config.h: the configuration snapshot (SPEC section 2).
 *
 * config_load() reads the YAML file into a complete, validated snapshot or
 * fails with "file:line:col: key.path: expected X, got Y".  A snapshot is
 * immutable once loaded and reference-counted: the daemon holds the current
 * one, every request holds the one it started with.
 */
#ifndef PORTICO_CONFIG_H
#define PORTICO_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "portico/access.h"
#include "portico/log.h"
#include "portico/reverse.h"
#include "portico/route.h"

enum log_format {
	LOG_FORMAT_COMBINED,
	LOG_FORMAT_JSON,
};

struct config_cert {
	char *cert; /* PEM chain */
	char *key;
};

struct config_listen {
	char *address; /* as written: "0.0.0.0:80", "[::]:443", "*:8080" */
	struct sockaddr_storage sa;
	socklen_t salen;
	bool any;    /* "*:port": every address (bound as [::] with v6only off) */
	bool public; /* not loopback: for the -t warning about missing access rules */
	bool tls;
	struct config_cert *certs; /* first is the default; others by SNI */
	size_t ncerts;
	int tls_min_version; /* TLS1_2_VERSION or TLS1_3_VERSION */
	char *ciphers;	     /* NULL: OpenSSL's default */
	char *ciphersuites;
	struct tls_server *tls_server; /* TLS listeners: the contexts, built at load (tls.h) */
	/*
	 * Peers that must start with a PROXY header (allow rules only); any
	 * other peer is refused.  Empty (n == 0): no PROXY protocol.
	 */
	struct access_list proxy_protocol;
	/* HTTP/2: ALPN "h2" (TLS) or prior-knowledge h2c (plain); default on with TLS only. */
	bool http2;
	int line, col;
};

struct tls_server;
struct tls_client;
struct server_group;

struct config_host {
	char *name; /* lower case */
	char *addr; /* numeric IPv4 or IPv6 address */
};

struct config {
	atomic_int refs;
	unsigned generation; /* set by the daemon on each successful load */
	char *path;	     /* the file it was read from */

	struct config_listen *listen;
	size_t nlisten;
	unsigned workers; /* "auto" resolved to the number of CPUs */
	char *user, *group;
	char *server_name; /* NULL: the request's Host */

	struct {
		char *access; /* "stdout", "stderr", "off" or a path */
		enum log_format format;
		char *error; /* "stderr" or a path */
		enum log_level level;
	} log;

	struct {
		char *listen; /* NULL: no admin listener */
		struct sockaddr_storage sa;
		socklen_t salen;
	} admin;

	struct {
		uint64_t connections;
		uint64_t header_size;
		uint64_t header_count;
		uint64_t body_size; /* 0: unlimited */
		uint64_t response_header_size;
		uint64_t buffer; /* response bytes queued per client before the upstream pauses */
	} limits;

	struct { /* milliseconds */
		uint64_t client_header;
		uint64_t client_body;
		uint64_t client_idle;
		uint64_t upstream_connect;
		uint64_t upstream_read;
		uint64_t upstream_idle;
		uint64_t tunnel;
		uint64_t shutdown;
	} timeouts;

	struct {
		bool x_forwarded;
		bool forwarded;
		bool via;
		/* Peers whose X-Forwarded-For is believed (allow rules only); empty: none. */
		struct access_list trusted;
	} forwarded;

	struct config_host *hosts;
	size_t nhosts;

	/* Upstream groups (group.h), in file order. */
	struct server_group *groups;
	size_t ngroups;

	bool has_access; /* the global list exists (may be empty) */
	struct access_list access;

	/* Every reverse mapping: path routes with reverse: true in route order, then `reverse`. */
	struct reverse_map *reverse;
	size_t nreverse;

	struct route *routes;
	size_t nroutes;
	struct route_table *table;
	/*
	 * The upstream TLS context of each route (tls.h), built at load:
	 * route_tls[i] for routes[i], NULL for http:// routes and exclusions.
	 * Routes with equal tls settings share one context.  See
	 * config_route_tls().
	 */
	struct tls_client **route_tls;
	size_t nroute_tls;

	/* -t warnings, each "file:line:col: warning: text". */
	char **warnings;
	size_t nwarnings;
};

/*
 * Loads and validates `path`.  Returns a snapshot with one reference, or NULL
 * with *err set to a malloc'd message (the caller frees it).  Loads
 * certificates and keys into the TLS contexts every listener and https://
 * route will use, compiles every regex, binds nothing.
 */
struct config *config_load(const char *path, char **err);
struct config *config_ref(struct config *c);
void config_unref(struct config *c);

/*
 * The access list in force for a route: its own, else the global one.  NULL
 * (every client allowed) when neither exists or the one in force is empty
 * (`access: []` says deliberately that a route or the site is open).
 */
const struct access_list *config_route_access(const struct config *c, const struct route *r);

/* The upstream TLS context of an https:// route (tls.h), or NULL. */
struct tls_client *config_route_tls(const struct config *c, const struct route *r);

/* Writes the key list of portico.yaml.5 (mdoc) generated from the key table. */
void config_write_mdoc_keys(FILE *out);

/* Parses "16k", "16KiB", "1m", "512" into bytes; "500ms", "10s", "5m", "1h" into ms. */
int config_parse_size(const char *s, uint64_t *out);
int config_parse_duration(const char *s, uint64_t *out_ms);

#endif
