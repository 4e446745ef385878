/*
 * tls.h: every OpenSSL context portico uses, built when a configuration
 * snapshot loads (never on an event loop, never reading a file after the
 * load), and the checks `portico -t` makes on certificate, key and CA files.
 *
 * Server side (SPEC section 8): a struct tls_server per TLS listener, one
 * context per certificate, the first the default, the others chosen by SNI
 * (the names in the certificate), ALPN h2 (when listen[].http2 is on) and
 * http/1.1.  Client side: a struct tls_client per https:// route, verifying
 * the chain (system trust store or the route's `ca`) and the host name, with
 * an optional client certificate.
 *
 * Both are reference-counted: the snapshot holds one, and every connection
 * using a context holds one, so a reload can replace certificates while
 * handshakes and connections are in flight.  Contexts are immutable once
 * built; OpenSSL makes SSL objects from them on any thread.
 *
 * The check functions return 0, or -1 with a static reason (OpenSSL's);
 * the configuration loader adds file:line:col.
 */
#ifndef PORTICO_TLS_H
#define PORTICO_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct config_listen;
struct route_tls;
struct ssl_st;

struct tls_server;
struct tls_client;

/* Builds a listener's contexts; NULL with *err set (static text or OpenSSL's reason). */
struct tls_server *tls_server_new(const struct config_listen *l, const char **err);
struct tls_server *tls_server_ref(struct tls_server *t);
void tls_server_unref(struct tls_server *t);
/* An SSL object for an accepted connection (SNI switches its context); NULL on failure. */
struct ssl_st *tls_server_ssl_new(struct tls_server *t);

/* Builds an upstream client context from a route's tls settings; NULL with *err set. */
struct tls_client *tls_client_new(const struct route_tls *t, const char **err);
struct tls_client *tls_client_ref(struct tls_client *t);
void tls_client_unref(struct tls_client *t);
/*
 * An SSL object for a connection to `host` (the URL host): SNI and the name
 * (or address) to verify are the route's tls.server_name, else `host`.
 * NULL on failure.
 */
struct ssl_st *tls_client_ssl_new(struct tls_client *t, const char *host);
/*
 * Why a TLS connection failed, for the log line: the verification result
 * when it failed, else `err` (an OpenSSL error code, 0: none).  Writes into
 * `buf` and returns it, or returns NULL when there is nothing to say.
 */
const char *tls_describe_failure(struct ssl_st *ssl, unsigned long err, char *buf, size_t len);
/* OpenSSL's reason for the most recent error of this thread, or `fallback`. */
const char *tls_last_error(const char *fallback);

/* -t checks.  Which file of a certificate pair failed. */
enum tls_pair_error {
	TLS_PAIR_OK,
	TLS_PAIR_CERT,	   /* the chain cannot be loaded */
	TLS_PAIR_KEY,	   /* the key cannot be loaded */
	TLS_PAIR_MISMATCH, /* the key does not belong to the certificate */
};
/* Loads a PEM chain and a PEM key and checks they belong together; *reason on error. */
enum tls_pair_error tls_check_pair(const char *cert, const char *key, const char **reason);
/* A CA file holds at least one PEM certificate OpenSSL accepts.  0 or -1. */
int tls_check_ca(const char *path, const char **reason);
/* An OpenSSL TLS 1.2 cipher list, and TLS 1.3 cipher suites (NULL: not set).  True when valid. */
bool tls_ciphers_are_valid(const char *ciphers);
bool tls_ciphersuites_are_valid(const char *suites);

#endif
