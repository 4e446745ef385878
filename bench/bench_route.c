/*
 * bench_route.c: the cost of one route_table_lookup() for tables of 1, 100
 * and 10,000 prefix rules, over a mix of paths that hit and miss, next to the
 * cost of Apache's linear loop over the same rules.  Then the regular
 * expression pre-filter: one prefix rule "/" alone, against the same rule
 * behind 2,000 match rules with distinct literal prefixes ("^/svcN/item/..."),
 * and behind 2,000 without one (every one is run), for requests that end at
 * the prefix rule.
 *
 * Usage: bench_route [lookups]          (default 2,000,000 per table)
 *        bench_route --regex [lookups]  (only the regular expression tables)
 *        bench_route --regex-table one|prefixed|open [lookups]
 *            one table alone, for instruction counts:
 *            valgrind --tool=callgrind --toggle-collect=route_table_lookup ...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "portico/route.h"

#define NPATHS 4096

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Apache's alias_match() test, for the linear baseline. */
static bool
linear_match(const char *rule, const char *path)
{
	const char *a = rule, *u = path;

	while (*a != '\0' && *u != '\0') {
		if (*a == '/') {
			if (*u != '/')
				return false;
			while (*a == '/')
				a++;
			while (*u == '/')
				u++;
		} else if (*a++ != *u++) {
			return false;
		}
	}
	if (*a != '\0')
		return false;
	return a[-1] == '/' || *u == '\0' || *u == '/';
}

static struct route *
make_rules(size_t n)
{
	struct route *routes = xcalloc(n, sizeof(*routes));

	for (size_t i = 0; i < n; i++) {
		routes[i].index = (unsigned)i;
		routes[i].kind = ROUTE_PATH;
		/* Every tenth rule is nested, as real tables have /app/api next to /app. */
		if (i % 10 == 9)
			routes[i].path = xasprintf("/app%zu/api/v%zu", i / 10, i % 7);
		else
			routes[i].path = xasprintf("/app%zu", i);
	}
	return routes;
}

/* Three hits for every miss, spread over the whole table. */
static char **
make_paths(size_t nrules)
{
	char **paths = xcalloc(NPATHS, sizeof(*paths));
	unsigned seed = 12345;

	for (size_t i = 0; i < NPATHS; i++) {
		size_t k;

		seed = seed * 1103515245u + 12345u;
		k = (seed >> 8) % nrules;
		switch (i % 4) {
		case 0:
			paths[i] = xasprintf("/app%zu/static/img/logo.png", k);
			break;
		case 1:
			paths[i] = xasprintf("/app%zu/api/v%zu/users/42", k / 10, k % 7);
			break;
		case 2:
			paths[i] = xasprintf("/app%zu", k);
			break;
		default:
			paths[i] = xasprintf("/missing/%zu/index.html", k);
			break;
		}
	}
	return paths;
}

static double
time_table(const struct route_table *t, char **paths, size_t *lens, long lookups, long *hits)
{
	double start = now_ns();

	*hits = 0;
	for (long i = 0; i < lookups; i++) {
		size_t k = (size_t)i % NPATHS;

		if (route_table_lookup(t, "www.example.com", 15, paths[k], lens[k], NULL) != NULL)
			(*hits)++;
	}
	return (now_ns() - start) / (double)lookups;
}

static double
time_linear(const struct route *routes, size_t n, char **paths, long lookups, long *hits)
{
	double start = now_ns();

	*hits = 0;
	for (long i = 0; i < lookups; i++) {
		const char *p = paths[(size_t)i % NPATHS];

		for (size_t r = 0; r < n; r++) {
			if (linear_match(routes[r].path, p)) {
				(*hits)++;
				break;
			}
		}
	}
	return (now_ns() - start) / (double)lookups;
}

static void
bench_one(size_t n, long lookups)
{
	struct route *routes = make_rules(n);
	struct route_table *t = route_table_build(routes, n);
	char **paths = make_paths(n);
	size_t lens[NPATHS];
	long hits, linear_hits;
	long linear_lookups = n > 1000 ? lookups / 200 : lookups;
	double ns, linear_ns;

	for (size_t i = 0; i < NPATHS; i++)
		lens[i] = strlen(paths[i]);
	ns = time_table(t, paths, lens, lookups, &hits);
	linear_ns = time_linear(routes, n, paths, linear_lookups, &linear_hits);
	printf("%8zu  %12ld  %5.1f%%  %10.1f  %13.1f\n", n, lookups,
	       100.0 * (double)hits / (double)lookups, ns, linear_ns);
	if ((double)hits / (double)lookups - (double)linear_hits / (double)linear_lookups > 0.01 ||
	    (double)linear_hits / (double)linear_lookups - (double)hits / (double)lookups > 0.01)
		fprintf(stderr, "warning: hit rates of the trie and the linear loop differ\n");
	for (size_t i = 0; i < NPATHS; i++)
		xfree(paths[i]);
	xfree(paths);
	route_table_free(t);
	for (size_t i = 0; i < n; i++)
		xfree(routes[i].path);
	xfree(routes);
}

/* ---- regular expressions in front of a prefix rule ---- */

#define NREGEX 2000

/* `nregex` match rules (with a literal prefix or not), then the prefix rule "/". */
static struct route *
make_regex_rules(size_t nregex, bool prefixed)
{
	struct route *routes = xcalloc(nregex + 1, sizeof(*routes));

	for (size_t i = 0; i < nregex; i++) {
		int errcode;
		PCRE2_SIZE erroff;

		routes[i].index = (unsigned)i;
		routes[i].kind = ROUTE_MATCH;
		routes[i].match = xasprintf("%s/svc%zu/item/([0-9]+)$", prefixed ? "^" : "", i);
		routes[i].re = pcre2_compile((PCRE2_SPTR)routes[i].match, PCRE2_ZERO_TERMINATED, 0,
					     &errcode, &erroff, NULL);
		if (routes[i].re == NULL)
			abort();
		pcre2_jit_compile(routes[i].re, PCRE2_JIT_COMPLETE);
	}
	routes[nregex].index = (unsigned)nregex;
	routes[nregex].kind = ROUTE_PATH;
	routes[nregex].path = xstrdup("/");
	return routes;
}

static void
free_regex_rules(struct route *routes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		xfree(routes[i].match);
		xfree(routes[i].path);
		pcre2_code_free(routes[i].re);
	}
	xfree(routes);
}

/*
 * Requests that every table sends to the prefix rule "/": most share no
 * literal prefix; with `near`, one in four starts with one ("/svcN/item/x")
 * so that its expression runs and fails.
 */
static char **
make_regex_paths(bool near)
{
	static const char *const fixed[] = {"/static/css/site.css", "/app/users/42/profile",
					    "/svc12/other/page"};
	char **paths = xcalloc(NPATHS, sizeof(*paths));

	for (size_t i = 0; i < NPATHS; i++) {
		if (near && i % 4 == 3)
			paths[i] = xasprintf("/svc%zu/item/x", (i * 7919) % NREGEX);
		else
			paths[i] = xstrdup(fixed[i % 4 % ARRAY_SIZE(fixed)]);
	}
	return paths;
}

static double
time_regex_table(size_t nregex, bool prefixed, bool near, long lookups)
{
	struct route *routes = make_regex_rules(nregex, prefixed);
	struct route_table *t = route_table_build(routes, nregex + 1);
	char **paths = make_regex_paths(near);
	size_t lens[NPATHS];
	long hits;
	double ns;

	for (size_t i = 0; i < NPATHS; i++)
		lens[i] = strlen(paths[i]);
	ns = time_table(t, paths, lens, lookups, &hits);
	if (hits != lookups)
		fprintf(stderr, "warning: %ld of %ld lookups missed the prefix rule\n",
			lookups - hits, lookups);
	for (size_t i = 0; i < NPATHS; i++)
		xfree(paths[i]);
	xfree(paths);
	route_table_free(t);
	free_regex_rules(routes, nregex + 1);
	return ns;
}

static void
bench_regex(long lookups)
{
	printf("\n%-40s  %10s  %8s\n", "table (requests end at the rule \"/\")", "ns/lookup",
	       "ratio");
	for (int near = 0; near <= 1; near++) {
		double one = time_regex_table(0, true, near, lookups);
		double pre = time_regex_table(NREGEX, true, near, lookups);
		double open = time_regex_table(NREGEX, false, near, lookups / 200);

		printf("%s\n", near ? "paths: 1 in 4 shares a literal prefix"
				    : "paths: no literal prefix shared");
		printf("  %-38s  %10.1f  %8s\n", "1 prefix rule", one, "1.00");
		printf("  %-38s  %10.1f  %8.2f\n", "2,000 prefixed regexes + the rule", pre,
		       pre / one);
		printf("  %-38s  %10.1f  %8.2f\n", "2,000 regexes without prefix + the rule", open,
		       open / one);
	}
}

/* One table of bench_regex() alone, requests sharing no literal prefix. */
static int
bench_regex_table(const char *which, long lookups)
{
	double ns;

	if (strcmp(which, "one") == 0)
		ns = time_regex_table(0, true, false, lookups);
	else if (strcmp(which, "prefixed") == 0 || strcmp(which, "open") == 0)
		ns = time_regex_table(NREGEX, which[0] == 'p', false, lookups);
	else
		return 2;
	printf("%s: %.1f ns/lookup over %ld lookups\n", which, ns, lookups);
	return 0;
}

int
main(int argc, char **argv)
{
	static const size_t sizes[] = {1, 100, 10000};
	bool regex_only = argc > 1 && strcmp(argv[1], "--regex") == 0;

	if (argc > 2 && strcmp(argv[1], "--regex-table") == 0)
		return bench_regex_table(argv[2], argc > 3 ? atol(argv[3]) : 100000);
	long lookups = argc > 1 + regex_only ? atol(argv[1 + regex_only]) : 2000000;

	if (lookups < 1000) {
		fprintf(stderr, "usage: bench_route [--regex] [lookups >= 1000]\n");
		return 2;
	}
	if (!regex_only) {
		printf("%8s  %12s  %6s  %10s  %13s\n", "rules", "lookups", "hits", "ns/lookup",
		       "linear ns/lk");
		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
			bench_one(sizes[i], lookups);
	}
	bench_regex(lookups);
	return 0;
}
