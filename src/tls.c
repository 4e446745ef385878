/*
 * tls.c: the OpenSSL contexts of listeners (certificates, SNI, ALPN) and of
 * https:// upstreams (trust store, host-name verification, client
 * certificates), built when a snapshot loads, and the -t checks of
 * certificate, key and CA files.  The only file that builds SSL_CTX objects.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "portico/config.h"
#include "portico/route.h"
#include "portico/tls.h"
#include "portico/util.h"

struct tls_server {
	_Atomic int refs;
	SSL_CTX **ctx; /* [n]: the first is the default */
	size_t n;
};

struct tls_client {
	_Atomic int refs;
	SSL_CTX *ctx;
	bool verify;
	char *server_name; /* NULL: the URL host */
};

/* The first (most specific) OpenSSL error of the failed call. */
static const char *
first_error(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown error";
}

const char *
tls_last_error(const char *fallback)
{
	const char *r = ERR_reason_error_string(ERR_get_error());

	return r ? r : fallback;
}

static SSL_CTX *
ctx_new(const SSL_METHOD *m)
{
	SSL_CTX *ctx = SSL_CTX_new(m);

	if (ctx == NULL)
		fatal("SSL_CTX_new: out of memory");
	return ctx;
}

/* --- listeners ------------------------------------------------------------- */

/* SNI: the first certificate whose names match, else the default. */
static int
server_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_server *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (name == NULL)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 1; i < t->n; i++) {
		X509 *x = SSL_CTX_get0_certificate(t->ctx[i]);

		if (x != NULL && X509_check_host(x, name, 0, 0, NULL) == 1) {
			SSL_set_SSL_CTX(ssl, t->ctx[i]);
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* ALPN: h2 first when the listener serves HTTP/2 (`arg` non-NULL), then http/1.1. */
static int
server_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
	       unsigned int inlen, void *arg)
{
	static const unsigned char both[] = "\x02h2\x08http/1.1";
	const unsigned char *mine = arg != NULL ? both : both + 3;
	unsigned int mlen = arg != NULL ? sizeof(both) - 1 : sizeof(both) - 4;

	(void)ssl;
	if (SSL_select_next_proto((unsigned char **)out, outlen, mine, mlen, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *
server_ctx_new(const struct config_listen *l, const struct config_cert *cert, const char **err)
{
	SSL_CTX *ctx = ctx_new(TLS_server_method());

	SSL_CTX_set_min_proto_version(ctx,
				      l->tls_min_version ? l->tls_min_version : TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if ((l->ciphers && SSL_CTX_set_cipher_list(ctx, l->ciphers) != 1) ||
	    (l->ciphersuites && SSL_CTX_set_ciphersuites(ctx, l->ciphersuites) != 1) ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, cert->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	SSL_CTX_set_alpn_select_cb(ctx, server_alpn_cb, l->http2 ? (void *)ctx : NULL);
	return ctx;
fail:
	*err = tls_last_error("cannot set up TLS");
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_server *
tls_server_new(const struct config_listen *l, const char **err)
{
	struct tls_server *t = xcalloc(1, sizeof(*t));

	atomic_store(&t->refs, 1);
	*err = "no certificate";
	if (l->ncerts == 0)
		goto fail;
	t->ctx = xcalloc(l->ncerts, sizeof(*t->ctx));
	for (; t->n < l->ncerts; t->n++)
		if ((t->ctx[t->n] = server_ctx_new(l, &l->certs[t->n], err)) == NULL)
			goto fail;
	SSL_CTX_set_tlsext_servername_callback(t->ctx[0], server_sni_cb);
	SSL_CTX_set_tlsext_servername_arg(t->ctx[0], t);
	return t;
fail:
	tls_server_unref(t);
	return NULL;
}

struct tls_server *
tls_server_ref(struct tls_server *t)
{
	atomic_fetch_add(&t->refs, 1);
	return t;
}

void
tls_server_unref(struct tls_server *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	for (size_t i = 0; i < t->n; i++)
		SSL_CTX_free(t->ctx[i]);
	free(t->ctx);
	free(t);
}

SSL *
tls_server_ssl_new(struct tls_server *t)
{
	return SSL_new(t->ctx[0]);
}

/* --- upstreams ------------------------------------------------------------- */

struct tls_client *
tls_client_new(const struct route_tls *rt, const char **err)
{
	struct tls_client *t = xcalloc(1, sizeof(*t));
	SSL_CTX *ctx = ctx_new(TLS_client_method());

	atomic_store(&t->refs, 1);
	t->ctx = ctx;
	t->verify = rt->verify;
	t->server_name = rt->server_name ? xstrdup(rt->server_name) : NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, rt->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (rt->ca ? SSL_CTX_load_verify_locations(ctx, rt->ca, NULL) != 1
		   : SSL_CTX_set_default_verify_paths(ctx) != 1)
		goto fail;
	if (rt->cert &&
	    (SSL_CTX_use_certificate_chain_file(ctx, rt->cert) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, rt->key ? rt->key : rt->cert, SSL_FILETYPE_PEM) != 1))
		goto fail;
	SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9);
	return t;
fail:
	*err = tls_last_error("cannot set up TLS");
	ERR_clear_error();
	tls_client_unref(t);
	return NULL;
}

struct tls_client *
tls_client_ref(struct tls_client *t)
{
	atomic_fetch_add(&t->refs, 1);
	return t;
}

void
tls_client_unref(struct tls_client *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	SSL_CTX_free(t->ctx);
	free(t->server_name);
	free(t);
}

SSL *
tls_client_ssl_new(struct tls_client *t, const char *host)
{
	const char *name = t->server_name ? t->server_name : host;
	SSL *ssl = SSL_new(t->ctx);
	struct in6_addr a6;
	struct in_addr a4;

	if (ssl == NULL)
		return NULL;
	if (inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1) {
		/* An address: no SNI, the certificate must name the address. */
		if (t->verify)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
		return ssl;
	}
	SSL_set_tlsext_host_name(ssl, name);
	if (t->verify)
		SSL_set1_host(ssl, name);
	return ssl;
}

const char *
tls_describe_failure(SSL *ssl, unsigned long err, char *buf, size_t len)
{
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

	if (vr != X509_V_OK)
		snprintf(buf, len, "TLS certificate verification failed: %s",
			 X509_verify_cert_error_string(vr));
	else if (err != 0)
		snprintf(buf, len, "TLS error: %s", ERR_reason_error_string(err));
	else
		return NULL;
	return buf;
}

/* --- checks for -t --------------------------------------------------------- */

enum tls_pair_error
tls_check_pair(const char *cert, const char *key, const char **reason)
{
	SSL_CTX *cctx = ctx_new(TLS_method()), *kctx = ctx_new(TLS_method());
	enum tls_pair_error rc = TLS_PAIR_OK;

	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(cctx, cert) != 1)
		rc = TLS_PAIR_CERT;
	else if (SSL_CTX_use_PrivateKey_file(kctx, key, SSL_FILETYPE_PEM) != 1)
		rc = TLS_PAIR_KEY;
	else if (SSL_CTX_use_PrivateKey(cctx, SSL_CTX_get0_privatekey(kctx)) != 1 ||
		 SSL_CTX_check_private_key(cctx) != 1)
		rc = TLS_PAIR_MISMATCH;
	if (rc != TLS_PAIR_OK)
		*reason = first_error();
	ERR_clear_error();
	SSL_CTX_free(cctx);
	SSL_CTX_free(kctx);
	return rc;
}

int
tls_check_ca(const char *path, const char **reason)
{
	SSL_CTX *ctx = ctx_new(TLS_method());
	int rc = 0;

	ERR_clear_error();
	if (SSL_CTX_load_verify_file(ctx, path) != 1) {
		*reason = first_error();
		rc = -1;
	}
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return rc;
}

bool
tls_ciphers_are_valid(const char *ciphers)
{
	SSL_CTX *ctx = ctx_new(TLS_method());
	bool ok = SSL_CTX_set_cipher_list(ctx, ciphers) == 1;

	ERR_clear_error();
	SSL_CTX_free(ctx);
	return ok;
}

bool
tls_ciphersuites_are_valid(const char *suites)
{
	SSL_CTX *ctx = ctx_new(TLS_method());
	bool ok = SSL_CTX_set_ciphersuites(ctx, suites) == 1;

	ERR_clear_error();
	SSL_CTX_free(ctx);
	return ok;
}
