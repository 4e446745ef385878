/*
 * config_int.h: what the files of the configuration loader share (private
 * to src/config*.c).  config.c owns the snapshot's lifecycle; the YAML
 * document is walked along the key table (config_keys.h, compiled into
 * config_walk.c) by config_walk.c, whose rows name the parse functions of
 * config_values.c, config_listen.c and config_routes.c; config_check.c holds
 * the rules that span several keys and the -t warnings; config_mdoc.c
 * writes the key list of portico.yaml.5 from the same table.
 */
#ifndef PORTICO_CONFIG_INT_H
#define PORTICO_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <yaml.h>

#include "portico/config.h"

struct warning {
	int line, col;
	size_t seq; /* order of discovery, for a stable sort */
	char *text;
};

/* The state of one load: the document, the snapshot being filled, the first error. */
struct cctx {
	const char *file;
	yaml_document_t *doc;
	struct config *cfg;
	char *err;
	struct warning *warns;
	size_t nwarns, capwarns;
	/* The distinct upstream TLS settings seen so far: the first route with each. */
	const struct route **tls_firsts;
	size_t ntls_firsts, tls_firsts_cap;
};

enum ktype {
	KT_SECTION, /* a mapping of further keys */
	KT_BOOL,
	KT_UINT,
	KT_SIZE,
	KT_DURATION,
	KT_STRING,
	KT_ENUM,
	KT_PATH,    /* a string starting with "/" */
	KT_URL,	    /* struct url */
	KT_FILE,    /* a file name; read by whoever checks it */
	KT_LOGDEST, /* one of the choices or an absolute path */
	KT_LIST,    /* a list of "path[]." scopes, see struct ckey */
	KT_CUSTOM,  /* the row's parse function */
};

struct kchoice {
	const char *name;
	int value;
};

struct ckey;
/* Parses `node` (NULL when the key is absent) into `base`; `kp` is the key path shown. */
typedef int key_parse_fn(struct cctx *c, const struct ckey *k, yaml_node_t *node, void *base,
			 const char *kp);
/*
 * Parses item `i` of the list of row `k`, whose key path is `ikp`, into
 * `elem` (zeroed); `base` is the struct that holds the list.
 */
typedef int list_item_fn(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i,
			 const char *ikp, void *base, void *elem);

#define KEY_REQUIRED 0x1
#define KEY_NONEMPTY 0x2 /* KT_LIST: an empty list is an error */

struct ckey {
	const char *path; /* "limits.header_size", "routes[].pass" */
	enum ktype type;
	const char *tname;  /* type shown in the man page when not implied by `type` */
	const char *def;    /* default as text, NULL: none (or computed, see defdoc) */
	const char *defdoc; /* the default in words when `def` is NULL */
	uint64_t min, max;  /* KT_UINT, KT_SIZE (bytes), KT_DURATION (ms) */
	const struct kchoice *choices;
	size_t off;	    /* where the value goes in the scope's struct (KT_LIST: the array) */
	size_t aux;	    /* KT_LIST: where the item count (size_t) goes */
	size_t esize;	    /* KT_LIST: the size of one item */
	list_item_fn *item; /* KT_LIST: parses one item; NULL: the scope "path[]." */
	size_t has;	    /* key_access: the bool set when the list is present */
	bool (*check)(const char *s); /* KT_STRING: what a valid value is, as `expected` says */
	/* What a value must be.  With `parse`: the key is a scalar, checked before the call. */
	const char *expected;
	key_parse_fn *parse;
	unsigned flags;
	const char *help;
};

#define ADDR_EXPECTED                                                                              \
	"\"host:port\", \"[v6]:port\" or \"*:port\" with a numeric address and a port in 1..65535"

#define KP_MAX 256

/* Units of sizes (bytes) and durations (milliseconds). */
#define KIB  ((uint64_t)1024)
#define MIB  (KIB * 1024)
#define GIB  (MIB * 1024)
#define SEC  ((uint64_t)1000)
#define MIN  (SEC * 60)
#define HOUR (MIN * 60)

/* The key table (config_keys.h) and its length. */
extern const struct ckey config_keys[];
extern const size_t config_nkeys;

/* The parse functions the key table names (config_listen.c, config_routes.c). */
key_parse_fn cfg_key_address, cfg_key_admin_listen, cfg_key_workers, cfg_key_listen_tls,
    cfg_key_hosts, cfg_key_access, cfg_key_match, cfg_key_pass, cfg_key_server_name,
    cfg_key_route_host, cfg_key_html, cfg_key_route_tls, cfg_key_upstreams, cfg_key_server_address,
    cfg_key_group_hash, cfg_key_group_active, cfg_key_group_expect;
list_item_fn cfg_cert_item, cfg_listen_item, cfg_access_item, cfg_cidr_item, cfg_route_item,
    cfg_server_item;

/* config_walk.c: YAML nodes, errors and warnings, the key-table walker */
int cfg_node_line(const yaml_node_t *n);
int cfg_node_col(const yaml_node_t *n);
PRINTF_LIKE(4, 5)
int cfg_fail(struct cctx *c, const yaml_node_t *n, const char *kp, const char *fmt, ...);
PRINTF_LIKE(4, 5) void cfg_warn(struct cctx *c, int line, int col, const char *fmt, ...);
int cfg_fail_expected(struct cctx *c, const yaml_node_t *n, const char *kp, const char *expected);
int cfg_fail_why(struct cctx *c, const yaml_node_t *n, const char *kp, const char *why);
void cfg_kp_join(char *out, const char *dpath, const char *key);
yaml_node_t *cfg_node_get(struct cctx *c, int id);
const char *cfg_scalar(const yaml_node_t *n);
char *cfg_quote(const char *s);
yaml_node_t *cfg_map_get(struct cctx *c, const yaml_node_t *map, const char *name);
yaml_node_t *cfg_map_get_key(struct cctx *c, const yaml_node_t *map, const char *name);
int cfg_need_scalar(struct cctx *c, const yaml_node_t *n, const char *kp, const char *expected);
int cfg_need_mapping(struct cctx *c, const yaml_node_t *n, const char *kp);
int cfg_keys_check(struct cctx *c, const char *scope, const yaml_node_t *map, const char *dpath);
size_t cfg_edit_distance(const char *a, const char *b);
void cfg_choices_text(const struct kchoice *ch, char *out, size_t len, const char *sep);
int cfg_scope_parse(struct cctx *c, const char *scope, yaml_node_t *map, void *base,
		    const char *dpath);
int cfg_row_scope(struct cctx *c, const struct ckey *k, const char *suffix, yaml_node_t *n,
		  void *base, const char *kp);
int cfg_list_parse(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base,
		   const char *kp);

/* config_values.c: sizes, durations, booleans, addresses and host names */
int cfg_parse_uint(const char *s, uint64_t *out, const char **end);
int config_parse_size(const char *s, uint64_t *out);
int config_parse_duration(const char *s, uint64_t *out_ms);
void cfg_bound_text(const struct ckey *k, char *out, size_t len, uint64_t v);
int cfg_parse_bool_text(const char *s, bool *out);
bool cfg_addr_is_loopback(const struct sockaddr_storage *ss);
int cfg_addr_port(const char *s, uint16_t *port);
int cfg_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *salen, bool *any);
bool cfg_hostname_is_valid(const char *s, bool wildcard);
bool cfg_addr_is_numeric(const char *s);
bool cfg_host_is_v6_literal(const char *s);
char *cfg_lower_dup(const char *s);
bool cfg_check_route_name(const char *s);
bool cfg_check_tls_server_name(const char *s);

/* config_listen.c: listeners, TLS files, hosts and access lists */
int cfg_tls_check_pair(struct cctx *c, const yaml_node_t *map, const char *dpath, const char *cert,
		       const char *key);
int cfg_tls_check_ca(struct cctx *c, const yaml_node_t *n, const char *kp, const char *path);

/* config_routes.c: routes, their pass URLs, html maps and reverse mappings */
void cfg_reverse_build(struct config *cfg);

/* config_upstreams.c: upstream groups and the routes that name them */
bool cfg_check_group_host(const char *s);
int cfg_route_group(struct cctx *c, yaml_node_t *item, const char *ikp, struct config *cfg,
		    struct route *r);
void cfg_warn_unused_groups(struct cctx *c, const struct config *cfg);
/* The reverse mappings of group route `r` into `out` (NULL: only counted); how many. */
size_t cfg_group_reverse(const struct route *r, struct reverse_map *out);

/* config_check.c: the checks across keys and the -t warnings */
void cfg_warn_slash(struct cctx *c, const char *ikp, const struct route *r);
void cfg_warn_shadowed(struct cctx *c, const struct config *cfg);
void cfg_warn_open_listeners(struct cctx *c, const struct config *cfg);
void cfg_warnings_move(struct cctx *c, struct config *cfg);
int cfg_check_admin(struct cctx *c, const struct config *cfg, yaml_node_t *root);

#endif
