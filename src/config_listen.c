/*
 * config_listen.c: the listener keys (addresses, TLS certificates, checked
 * and built into contexts by tls.h), workers, the admin listener, hosts
 * overrides and access lists.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "config_int.h"
#include "portico/tls.h"

/* A listening address: parsed into *ss, *salen and *any, its text copied to *text. */
static int
addr_value(struct cctx *c, const yaml_node_t *n, const char *kp, struct sockaddr_storage *ss,
	   socklen_t *salen, bool *any, char **text)
{
	if (cfg_addr_parse(cfg_scalar(n), ss, salen, any) < 0)
		return cfg_fail_expected(c, n, kp, ADDR_EXPECTED);
	*text = xstrdup(cfg_scalar(n));
	return 0;
}

int
cfg_key_address(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct config_listen *l = base;

	(void)k;
	if (addr_value(c, n, kp, &l->sa, &l->salen, &l->any, &l->address) < 0)
		return -1;
	l->public = !cfg_addr_is_loopback(&l->sa);
	return 0;
}

int
cfg_key_admin_listen(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base,
		     const char *kp)
{
	struct config *cfg = base;
	bool any;

	(void)k;
	return addr_value(c, n, kp, &cfg->admin.sa, &cfg->admin.salen, &any, &cfg->admin.listen);
}

int
cfg_key_workers(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct config *cfg = base;
	const char *s = k->def, *end;
	char want[64];
	uint64_t v;

	if (n != NULL) {
		if (cfg_need_scalar(c, n, kp, "auto or a number") < 0)
			return -1;
		s = cfg_scalar(n);
	}
	if (strcmp(s, "auto") == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		cfg->workers = cpus < 1		     ? 1
			       : cpus > (long)k->max ? (unsigned)k->max
						     : (unsigned)cpus;
		return 0;
	}
	snprintf(want, sizeof(want), "auto or a number from %" PRIu64 " to %" PRIu64, k->min,
		 k->max);
	if (cfg_parse_uint(s, &v, &end) < 0 || *end != '\0' || v < k->min || v > k->max)
		return cfg_fail_expected(c, n, kp, want);
	cfg->workers = (unsigned)v;
	return 0;
}

static int
file_readable(struct cctx *c, const yaml_node_t *n, const char *kp, const char *path)
{
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return cfg_fail(c, n, kp, "cannot open \"%s\": %s", path, strerror(errno));
	fclose(f);
	return 0;
}

/*
 * Loads a certificate chain and its key (tls.h), then checks that they
 * belong together; errors point at the node of the failing file.
 */
int
cfg_tls_check_pair(struct cctx *c, const yaml_node_t *map, const char *dpath, const char *cert,
		   const char *key)
{
	yaml_node_t *cn = cfg_map_get(c, map, "cert"), *kn = cfg_map_get(c, map, "key");
	char ckp[KP_MAX], kkp[KP_MAX];
	const char *why = NULL;

	cfg_kp_join(ckp, dpath, "cert");
	cfg_kp_join(kkp, dpath, "key");
	if (file_readable(c, cn, ckp, cert) < 0 || file_readable(c, kn, kkp, key) < 0)
		return -1;
	switch (tls_check_pair(cert, key, &why)) {
	case TLS_PAIR_OK:
		return 0;
	case TLS_PAIR_CERT:
		return cfg_fail(c, cn, ckp, "cannot load a PEM certificate chain from \"%s\": %s",
				cert, why);
	case TLS_PAIR_KEY:
		return cfg_fail(c, kn, kkp, "cannot load a PEM private key from \"%s\": %s", key,
				why);
	case TLS_PAIR_MISMATCH:
		break;
	}
	return cfg_fail(c, kn, kkp,
			"the key in \"%s\" does not match the certificate in \"%s\": %s", key, cert,
			why);
}

/* A CA file must hold at least one PEM certificate OpenSSL accepts. */
int
cfg_tls_check_ca(struct cctx *c, const yaml_node_t *n, const char *kp, const char *path)
{
	const char *why = NULL;

	if (file_readable(c, n, kp, path) < 0)
		return -1;
	if (tls_check_ca(path, &why) < 0)
		return cfg_fail(c, n, kp, "cannot load PEM CA certificates from \"%s\": %s", path,
				why);
	return 0;
}

static int
tls_check_ciphers(struct cctx *c, const yaml_node_t *map, const char *dpath,
		  const struct config_listen *l)
{
	char kp[KP_MAX];

	if (l->ciphers != NULL && !tls_ciphers_are_valid(l->ciphers)) {
		cfg_kp_join(kp, dpath, "ciphers");
		return cfg_fail_expected(c, cfg_map_get(c, map, "ciphers"), kp,
					 "an OpenSSL cipher list");
	}
	if (l->ciphersuites != NULL && !tls_ciphersuites_are_valid(l->ciphersuites)) {
		cfg_kp_join(kp, dpath, "ciphersuites");
		return cfg_fail_expected(c, cfg_map_get(c, map, "ciphersuites"), kp,
					 "OpenSSL TLS 1.3 cipher suites");
	}
	return 0;
}

int
cfg_cert_item(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i, const char *ikp,
	      void *base, void *elem)
{
	struct config_cert *cert = elem;

	(void)i;
	(void)base;
	if (cfg_row_scope(c, k, "[].", item, cert, ikp) < 0)
		return -1;
	return cfg_tls_check_pair(c, item, ikp, cert->cert, cert->key);
}

int
cfg_key_listen_tls(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct config_listen *l = base;

	l->tls_min_version = TLS1_2_VERSION;
	if (n == NULL)
		return 0;
	l->tls = true;
	if (cfg_row_scope(c, k, ".", n, l, kp) < 0)
		return -1;
	return tls_check_ciphers(c, n, kp, l);
}

/* The listener's contexts, built now so that nothing is read from disk later. */
static int
listen_tls_build(struct cctx *c, const yaml_node_t *item, const char *ikp, struct config_listen *l)
{
	const char *why = NULL;
	char kp[KP_MAX];

	if (!l->tls)
		return 0;
	l->tls_server = tls_server_new(l, &why);
	if (l->tls_server != NULL)
		return 0;
	cfg_kp_join(kp, ikp, "tls");
	return cfg_fail(c, item, kp, "cannot set up TLS: %s", why);
}

int
cfg_listen_item(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i, const char *ikp,
		void *base, void *elem)
{
	struct config *cfg = base;
	struct config_listen *l = elem;

	l->line = cfg_node_line(item);
	l->col = cfg_node_col(item);
	l->tls_min_version = TLS1_2_VERSION;
	if (item->type == YAML_SCALAR_NODE) {
		if (cfg_need_scalar(c, item, ikp, ADDR_EXPECTED) < 0 ||
		    cfg_key_address(c, NULL, item, l, ikp) < 0)
			return -1;
	} else if (item->type != YAML_MAPPING_NODE) {
		return cfg_fail_expected(c, item, ikp, "an address or a mapping with address");
	} else if (cfg_row_scope(c, k, "[].", item, l, ikp) < 0) {
		return -1;
	}
	if (item->type != YAML_MAPPING_NODE || cfg_map_get(c, item, "http2") == NULL)
		l->http2 = l->tls;
	for (size_t j = 0; j < i; j++)
		if (cfg->listen[j].salen == l->salen &&
		    memcmp(&cfg->listen[j].sa, &l->sa, l->salen) == 0)
			return cfg_fail(c, item, ikp, "the same address as listen[%zu] (line %d)",
					j, cfg->listen[j].line);
	return listen_tls_build(c, item, ikp, l);
}

int
cfg_key_hosts(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct config *cfg = base;
	char ikp[KP_MAX];
	size_t len, i = 0;

	(void)k;
	if (n == NULL)
		return 0;
	if (cfg_need_mapping(c, n, kp) < 0)
		return -1;
	len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	cfg->hosts = xcalloc(len, sizeof(*cfg->hosts));
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++, i++) {
		yaml_node_t *name = cfg_node_get(c, p->key), *addr = cfg_node_get(c, p->value);

		if (cfg_need_scalar(c, name, kp, "a host name") < 0)
			return -1;
		cfg_kp_join(ikp, kp, cfg_scalar(name));
		if (!cfg_hostname_is_valid(cfg_scalar(name), false))
			return cfg_fail_expected(c, name, ikp, "a host name");
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(cfg->hosts[j].name, cfg_scalar(name)) == 0)
				return cfg_fail(c, name, ikp, "duplicate host name");
		if (cfg_need_scalar(c, addr, ikp, "a numeric IPv4 or IPv6 address") < 0)
			return -1;
		if (!cfg_addr_is_numeric(cfg_scalar(addr)))
			return cfg_fail_expected(c, addr, ikp, "a numeric IPv4 or IPv6 address");
		cfg->hosts[i].name = cfg_lower_dup(cfg_scalar(name));
		cfg->hosts[i].addr = xstrdup(cfg_scalar(addr));
		cfg->nhosts = i + 1;
	}
	return 0;
}

/* One access item: a mapping with exactly one of allow and deny. */
int
cfg_access_item(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i, const char *ikp,
		void *base, void *elem)
{
	struct access_rule *r = elem;
	yaml_node_t *allow, *deny, *v;
	const char *why;
	char kp[KP_MAX];

	(void)k;
	(void)i;
	(void)base;
	if (cfg_need_mapping(c, item, ikp) < 0 || cfg_keys_check(c, "access[].", item, ikp) < 0)
		return -1;
	allow = cfg_map_get(c, item, "allow");
	deny = cfg_map_get(c, item, "deny");
	if (allow != NULL && deny != NULL)
		return cfg_fail(c, cfg_map_get_key(c, item, "deny"), ikp,
				"expected exactly one of allow or deny; got both");
	if (allow == NULL && deny == NULL)
		return cfg_fail(c, item, ikp, "expected allow or deny; got neither");
	v = allow ? allow : deny;
	cfg_kp_join(kp, ikp, allow ? "allow" : "deny");
	if (cfg_need_scalar(c, v, kp, "an address, a CIDR block or all") < 0)
		return -1;
	if (access_rule_parse(cfg_scalar(v), allow != NULL, r, &why) < 0)
		return cfg_fail_why(c, v, kp, why);
	return 0;
}

/*
 * An item of a list of addresses and CIDR blocks (listen[].proxy_protocol,
 * forwarded.trusted), kept as an allow rule.  "all" is refused: trusting
 * every peer to state the client's address should be written out.
 */
int
cfg_cidr_item(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i, const char *ikp,
	      void *base, void *elem)
{
	struct access_rule *r = elem;
	const char *why;

	(void)k;
	(void)i;
	(void)base;
	if (cfg_need_scalar(c, item, ikp, "an IPv4 or IPv6 address or a CIDR block") < 0)
		return -1;
	if (access_cidr_parse(cfg_scalar(item), r, &why) < 0)
		return cfg_fail_why(c, item, ikp, why);
	return 0;
}

/* A list of cfg_access_item; its presence (even empty) replaces the wider list. */
int
cfg_key_access(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	if (n != NULL)
		*(bool *)((char *)base + k->has) = true;
	return cfg_list_parse(c, k, n, base, kp);
}
