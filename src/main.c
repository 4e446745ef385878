/*
 * main.c: the command line (SPEC section 1).  Parses the arguments and
 * dispatches to one small function per mode: run the daemon, check the
 * configuration (-t), explain a request target (route), print versions (-V)
 * or usage (-h).  The route explanation makes the proxy's own decision
 * (route_decide.h, with the target split by http_target_split) and explains
 * the access list with config_route_access and access_first_match, so it
 * cannot drift from what a request would get.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <llhttp.h>
#include <openssl/crypto.h>
#include <yaml.h>
#include <nghttp2/nghttp2.h>
#include <zlib.h>

#include "portico/config.h"
#include "portico/daemon.h"
#include "portico/http.h"
#include "portico/import.h"
#include "portico/group.h"
#include "portico/route_decide.h"

#define EXIT_CONFIG    1
#define EXIT_USAGE     2
#define DEFAULT_CONFIG "/etc/portico/portico.yaml"

enum cli_mode {
	CLI_RUN,
	CLI_TEST,
	CLI_ROUTE,
	CLI_IMPORT,
	CLI_VERSION,
	CLI_HELP,
};

struct cli {
	enum cli_mode mode;
	const char *config;
	const char *host;   /* route: --host, the Host header */
	const char *method; /* route: --method */
	const char *client; /* route: --client, an address to decide access for */
	const char *target; /* route: TARGET; import: APACHE_CONF */
	const char *output; /* import: -o FILE */
	bool strict;	    /* import: --strict */
	struct sockaddr_storage client_sa;
};

/* A request as the proxy would see it: its target split, then decided by route_decide(). */
struct request {
	const char *method;
	const char *host; /* the Host header, or the absolute-form authority; NULL: none */
	size_t hostlen;
	const char *target; /* the origin-form part: path and query as received */
	size_t len;
	struct buf path;     /* normalized */
	struct buf upstream; /* the upstream request target */
	struct route_decision d;
};

static const char usage_text[] =
    "usage: portico [-c FILE]\n"
    "       portico -t [-c FILE]\n"
    "       portico route [-c FILE] [--host NAME] [--method M] [--client ADDR] TARGET\n"
    "       portico import [-o FILE] [--strict] APACHE_CONF\n"
    "       portico -V | --version\n"
    "       portico -h | --help\n";

static void
usage(FILE *out)
{
	fputs(usage_text, out);
}

static void
help(void)
{
	usage(stdout);
	fputs("\n"
	      "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
	      "  -t                 check the configuration and exit\n"
	      "  route TARGET       explain how a request for TARGET would be handled\n"
	      "      --host NAME    the request's Host header\n"
	      "      --method M     the request method (default GET)\n"
	      "      --client ADDR  decide access for this client address\n"
	      "  import APACHE_CONF translate an Apache httpd configuration to YAML\n"
	      "      -o FILE        write it to FILE (default: standard output)\n"
	      "      --strict       exit 1 when a directive is not imported\n"
	      "  -V, --version      print the versions of portico and its libraries\n"
	      "  -h, --help         print this help\n",
	      stdout);
}

static int usage_error(const char *fmt, ...) PRINTF_LIKE(1, 2);

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("portico: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr);
	return -1;
}

/* getopt_long's '?' and ':' results as a message; returns -1. */
static int
bad_option(int ch, char **argv)
{
	char shortopt[3] = {'-', (char)optopt, '\0'};

	if (ch == ':')
		return usage_error("option %s needs an argument", argv[optind - 1]);
	return usage_error("unknown option %s", optopt ? shortopt : argv[optind - 1]);
}

static int
parse_client(struct cli *cli)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&cli->client_sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&cli->client_sa;

	memset(&cli->client_sa, 0, sizeof(cli->client_sa));
	if (inet_pton(AF_INET, cli->client, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, cli->client, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return 0;
	}
	return usage_error("--client: expected an IPv4 or IPv6 address, got \"%s\"", cli->client);
}

/* Checks what getopt cannot: one TARGET, a method that is a token, a numeric client. */
static int
check_route_args(struct cli *cli, int argc, char **argv)
{
	if (optind >= argc)
		return usage_error("%s: missing TARGET", "route");
	if (optind + 1 < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind + 1]);
	cli->target = argv[optind];
	if (*cli->method == '\0' ||
	    cli->method[strspn(cli->method, "!#$%&'*+-.^_`|~"
					    "abcdefghijklmnopqrstuvwxyz"
					    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")] != '\0')
		return usage_error("--method: expected an HTTP method, got \"%s\"", cli->method);
	if (cli->client != NULL)
		return parse_client(cli);
	return 0;
}

/* portico route [-c FILE] [--host NAME] [--method M] [--client ADDR] TARGET */
static int
parse_route_args(int argc, char **argv, struct cli *cli)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'}, {"host", required_argument, NULL, 'H'},
	    {"method", required_argument, NULL, 'M'}, {"client", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	int ch;

	cli->mode = CLI_ROUTE;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cli->config = optarg;
			break;
		case 'H':
			cli->host = optarg;
			break;
		case 'M':
			cli->method = optarg;
			break;
		case 'C':
			cli->client = optarg;
			break;
		case 'h':
			cli->mode = CLI_HELP;
			return 0;
		default:
			return bad_option(ch, argv);
		}
	}
	return check_route_args(cli, argc, argv);
}

/* portico import [-o FILE] [--strict] APACHE_CONF */
static int
parse_import_args(int argc, char **argv, struct cli *cli)
{
	static const struct option longopts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"strict", no_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	cli->mode = CLI_IMPORT;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			cli->output = optarg;
			break;
		case 'S':
			cli->strict = true;
			break;
		case 'h':
			cli->mode = CLI_HELP;
			return 0;
		default:
			return bad_option(ch, argv);
		}
	}
	if (optind >= argc)
		return usage_error("%s: missing APACHE_CONF", "import");
	if (optind + 1 < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind + 1]);
	cli->target = argv[optind];
	return 0;
}

static int
parse_args(int argc, char **argv, struct cli *cli)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:c:thV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cli->config = optarg;
			break;
		case 't':
			cli->mode = CLI_TEST;
			break;
		case 'h':
			cli->mode = CLI_HELP;
			return 0;
		case 'V':
			cli->mode = CLI_VERSION;
			return 0;
		default:
			return bad_option(ch, argv);
		}
	}
	if (optind < argc && cli->mode == CLI_RUN && strcmp(argv[optind], "route") == 0)
		return parse_route_args(argc - optind, argv + optind, cli);
	if (optind < argc && cli->mode == CLI_RUN && strcmp(argv[optind], "import") == 0)
		return parse_import_args(argc - optind, argv + optind, cli);
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	return 0;
}

/* Modes */

static struct config *
load(const char *path)
{
	char *err = NULL;
	struct config *cfg = config_load(path, &err);

	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err ? err : "configuration could not be loaded");
		free(err);
	}
	return cfg;
}

static int
cmd_run(const struct cli *cli)
{
	struct config *cfg = load(cli->config);

	if (cfg == NULL)
		return EXIT_CONFIG;
	for (size_t i = 0; i < cfg->nwarnings; i++)
		log_warn("%s", cfg->warnings[i]);
	return daemon_run(cli->config, cfg);
}

static int
cmd_test(const struct cli *cli)
{
	struct config *cfg = load(cli->config);

	if (cfg == NULL)
		return EXIT_CONFIG;
	for (size_t i = 0; i < cfg->nwarnings; i++)
		fprintf(stderr, "%s\n", cfg->warnings[i]);
	printf("%s: configuration OK\n", cli->config);
	config_unref(cfg);
	return EXIT_SUCCESS;
}

static int
cmd_version(void)
{
	char pcre[64] = "";
	uint32_t jit = 0;

	(void)pcre2_config(PCRE2_CONFIG_VERSION, pcre);
	(void)pcre2_config(PCRE2_CONFIG_JIT, &jit);
	printf("portico %s\n", PORTICO_VERSION);
	printf("libevent %s\n", event_get_version());
	printf("llhttp %d.%d.%d\n", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR,
	       LLHTTP_VERSION_PATCH);
	printf("libyaml %s\n", yaml_get_version_string());
	printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
	printf("PCRE2 %s (%s)\n", pcre, jit ? "JIT available" : "no JIT");
	printf("zlib %s\n", zlibVersion());
	printf("nghttp2 %s\n", nghttp2_version(0)->version_str);
	return EXIT_SUCCESS;
}

/* route: the request */

/*
 * Splits TARGET as a request line's target is split (an absolute-form
 * target's authority replaces the Host), then decides it as the proxy does.
 * -1 with *err set for a target the proxy would answer with 400.
 */
static int
request_decide(struct request *rq, const struct config *cfg, const struct cli *cli,
	       const char **err)
{
	const char *auth;
	size_t alen;
	int kind = http_target_split(cli->target, strlen(cli->target), &auth, &alen, &rq->target,
				     &rq->len);

	if (cli->host != NULL && *cli->host != '\0') {
		rq->host = cli->host;
		rq->hostlen = strlen(cli->host);
	}
	if (kind == -1) {
		*err = "invalid request target";
		return -1;
	}
	if (kind == 1) {
		rq->host = auth;
		rq->hostlen = alen;
	}
	route_decide(cfg, rq->host, rq->hostlen, rq->target, rq->len,
		     cli->client ? (const struct sockaddr *)&cli->client_sa : NULL, &rq->path,
		     &rq->upstream, &rq->d);
	if (rq->d.status == 400) {
		*err = rq->d.why;
		return -1;
	}
	return 0;
}

/* route: printing the explanation, one "key: value" per line */

static const char *
on_off(bool b)
{
	return b ? "on" : "off";
}

static void
explain_rule(const struct route *r)
{
	if (r == NULL) {
		printf("rule: none\n");
		return;
	}
	printf("rule: routes[%u]\n", r->index);
	printf("rule.line: %d\n", r->line);
	printf("rule.kind: %s\n", r->kind == ROUTE_PATH ? "path" : "match");
	if (r->kind == ROUTE_PATH)
		printf("rule.path: %s\n", r->path);
	else
		printf("rule.match: %s\n", r->match);
	printf("rule.name: %s\n", r->name);
	if (r->host != NULL)
		printf("rule.host: %s\n", r->host);
	printf("rule.pass: %s\n", r->pass_off ? "off" : r->pass);
}

static bool
explain_decision(const struct access_rule *rule, const char *client)
{
	struct buf b;

	buf_init(&b);
	access_rule_format(rule, &b);
	printf("access: %s (%s matches \"%s\")\n", rule->allow ? "allow" : "deny", client, b.data);
	buf_free(&b);
	return rule->allow;
}

/*
 * The access list in force, as the proxy picks it, and where it comes from.
 * NULL allows everyone: no list at all, or an empty one (`access: []`).
 */
static const struct access_list *
access_in_force(const struct config *cfg, const struct route *r, const char **source)
{
	if (r != NULL && r->has_access)
		*source = "route";
	else
		*source = cfg->has_access ? "global" : "none";
	if (r != NULL)
		return config_route_access(cfg, r);
	return cfg->has_access && cfg->access.n > 0 ? &cfg->access : NULL;
}

/* The list in force and, with a client address, the rule that decides.  False: denied. */
static bool
explain_access(const struct config *cfg, const struct route *r, const struct cli *cli)
{
	const char *source;
	const struct access_list *l = access_in_force(cfg, r, &source);
	long i;

	printf("access.list: %s\n", source);
	for (size_t k = 0; l != NULL && k < l->n; k++) {
		struct buf b;

		buf_init(&b);
		access_rule_format(&l->rules[k], &b);
		printf("access.rule: %s\n", b.data);
		buf_free(&b);
	}
	if (l == NULL) {
		printf("access: allow (%s)\n", strcmp(source, "none") == 0
						   ? "no access rules"
						   : "the list is empty: open to every client");
		return true;
	}
	if (cli->client == NULL && l->rules[0].all)
		return explain_decision(&l->rules[0], "every client");
	if (cli->client == NULL) {
		printf("access: the first rule matching the client address decides; "
		       "no match denies\n");
		return true;
	}
	i = access_first_match(l, (const struct sockaddr *)&cli->client_sa);
	if (i < 0) {
		printf("access: deny (%s matches no rule)\n", cli->client);
		return false;
	}
	return explain_decision(&l->rules[i], cli->client);
}

static void
explain_filters(const struct config *cfg, const struct route *r, const struct request *rq)
{
	if (r->preserve_host && rq->host != NULL)
		printf("upstream.host: %.*s (preserve_host)\n", (int)rq->hostlen, rq->host);
	else if (r->preserve_host)
		printf("upstream.host: (none) (preserve_host)\n");
	else if (r->group != NULL)
		printf("upstream.host: %s\n", r->group->host ? r->group->host : "(the server's)");
	else
		printf("upstream.host: %s\n", r->upstream.authority);
	for (size_t i = 0; i < cfg->nreverse; i++)
		printf("reverse: %s://%s%s -> %s\n", cfg->reverse[i].upstream.scheme,
		       cfg->reverse[i].upstream.authority, cfg->reverse[i].upstream.path,
		       *cfg->reverse[i].public_path ? cfg->reverse[i].public_path
						    : "(the path as it is)");
	if (cfg->nreverse == 0)
		printf("reverse: none\n");
	printf("cookies: %s\n", on_off(r->cookies));
	printf("html: %s\n", on_off(r->html));
	for (size_t i = 0; r->html && i < r->html_nmaps; i++)
		printf("html.map: %s -> %s\n", r->html_maps[i].from, r->html_maps[i].to);
	if (r->html)
		printf("html.extended: %s\n", on_off(r->html_extended));
}

static void
explain_group(const struct server_group *g)
{
	static const char *const balances[] = {"round_robin", "least_conn", "hash"};
	static const char *const keys[] = {"client_ip", "header:", "cookie:"};

	printf("group: %s (upstreams.%s, line %d)\n", g->name, g->name, g->line);
	printf("group.balance: %s", balances[g->balance]);
	if (g->balance == GROUP_HASH)
		printf(" on %s%s", keys[g->hash_key], g->hash_name ? g->hash_name : "");
	printf("\ngroup.retries: %llu\n", (unsigned long long)g->retries);
	printf("group.passive: down after %llu failures for %llums\n",
	       (unsigned long long)g->passive.failures, (unsigned long long)g->passive.down_ms);
	if (g->active)
		printf(
		    "group.active: GET %s every %llums, timeout %llums, expect %u-%u, rise %llu, "
		    "fall %llu\n",
		    g->check.path, (unsigned long long)g->check.interval_ms,
		    (unsigned long long)g->check.timeout_ms, g->check.expect_lo, g->check.expect_hi,
		    (unsigned long long)g->check.rise, (unsigned long long)g->check.fall);
	else
		printf("group.active: none\n");
	for (size_t i = 0; i < g->nservers; i++)
		printf("server: %s weight %llu%s\n", g->servers[i].address,
		       (unsigned long long)g->servers[i].weight,
		       g->servers[i].backup ? " backup" : "");
}

/* The upstream URL, or the 500 when a substitution would leave the pass URL's authority. */
static bool
explain_upstream(const struct route *r, const struct request *rq)
{
	if (rq->d.status == 500) {
		printf("result: 500 Internal Server Error: %s\n",
		       rq->d.why ? rq->d.why : "bad target");
		return false;
	}
	printf("upstream: %s://%s%s\n", r->upstream.scheme, r->upstream.authority,
	       rq->upstream.data);
	if (r->unix_path != NULL)
		printf("upstream.socket: %s\n", r->unix_path);
	if (r->group != NULL)
		explain_group(r->group);
	return true;
}

static void
explain_request(const struct cli *cli, const struct request *rq)
{
	printf("config: %s\n", cli->config);
	printf("request: %s %s\n", rq->method, cli->target);
	if (rq->host != NULL)
		printf("host: %.*s\n", (int)rq->hostlen, rq->host);
	else
		printf("host: (none)\n");
}

/* Everything after a successful parse: rule, upstream, access, filters, result. */
static void
explain_routing(const struct config *cfg, const struct cli *cli, const struct request *rq)
{
	const struct route *r = rq->d.route;
	bool allowed;

	printf("path: %s\n", rq->path.data);
	if (rq->d.query == NULL)
		printf("query: (none)\n");
	else if (rq->d.query_len == 0)
		printf("query: (empty, kept as \"?\")\n");
	else
		printf("query: %.*s\n", (int)rq->d.query_len, rq->d.query);
	explain_rule(r);
	allowed = explain_access(cfg, r, cli);
	if (r == NULL) {
		printf("result: 404 Not Found: no rule matches\n");
		return;
	}
	if (r->pass_off) {
		printf("result: 404 Not Found: excluded by routes[%u] (pass: off)\n", r->index);
		return;
	}
	if (!allowed) {
		printf("result: 403 Forbidden: access denied for %s\n", cli->client);
		return;
	}
	if (!explain_upstream(r, rq))
		return;
	explain_filters(cfg, r, rq);
	printf("result: proxy\n");
}

/*
 * A request the proxy would refuse (400, 405) is an answer, not a failure of
 * the command: it is printed as the result and the exit status is 0.
 */
static int
cmd_route(const struct cli *cli)
{
	struct request rq = {.method = cli->method};
	struct config *cfg = load(cli->config);
	const char *err = NULL;

	if (cfg == NULL)
		return EXIT_CONFIG;
	buf_init(&rq.path);
	buf_init(&rq.upstream);
	if (strcmp(cli->method, "CONNECT") == 0) {
		if (cli->host != NULL && *cli->host != '\0') {
			rq.host = cli->host;
			rq.hostlen = strlen(cli->host);
		}
		explain_request(cli, &rq);
		printf("result: 405 Method Not Allowed: CONNECT is never proxied\n");
	} else if (request_decide(&rq, cfg, cli, &err) < 0) {
		explain_request(cli, &rq);
		printf("result: 400 Bad Request: %s\n", err);
	} else {
		explain_request(cli, &rq);
		explain_routing(cfg, cli, &rq);
	}
	buf_free(&rq.path);
	buf_free(&rq.upstream);
	config_unref(cfg);
	return EXIT_SUCCESS;
}

int
main(int argc, char **argv)
{
	struct cli cli = {.mode = CLI_RUN, .config = DEFAULT_CONFIG, .method = "GET"};

	if (parse_args(argc, argv, &cli) < 0)
		return EXIT_USAGE;
	switch (cli.mode) {
	case CLI_HELP:
		help();
		return EXIT_SUCCESS;
	case CLI_VERSION:
		return cmd_version();
	case CLI_TEST:
		return cmd_test(&cli);
	case CLI_ROUTE:
		return cmd_route(&cli);
	case CLI_IMPORT: {
		struct import_options io = {.input = cli.target,
					    .output = cli.output,
					    .strict = cli.strict,
					    .environment = true};

		return import_run(&io, stderr, NULL);
	}
	case CLI_RUN:
		break;
	}
	return cmd_run(&cli);
}
