/*
 * test_group.c: choosing a server of an upstream group (group.c, SPEC
 * section 12): the smooth weighted round-robin order and exact shares,
 * backups, servers already tried, least connections, the consistent hash
 * (stable, about 1/N of the keys moved when one of N servers goes away,
 * only a down server's keys moving), passive down periods with one trial,
 * active check rise and fall, Retry-After, and the JSON report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "portico/config.h"
#include "portico/group.h"

#define SEC_US 1000000ull

/* A group of `n` servers 10.0.0.i:80 with `weights` (NULL: 1) and `backups` (NULL: none). */
static struct server_group *
group_make(size_t n, const uint64_t *weights, const bool *backups, int balance)
{
	struct server_group *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	g->name = xstrdup("app");
	g->servers = xcalloc(n, sizeof(*g->servers));
	g->nservers = n;
	g->balance = balance;
	g->retries = 1;
	g->passive.failures = 1;
	g->passive.down_ms = 10000;
	for (size_t i = 0; i < n; i++) {
		g->servers[i].address = xasprintf("10.0.0.%zu:80", i + 1);
		g->servers[i].weight = weights ? weights[i] : 1;
		g->servers[i].backup = backups ? backups[i] : false;
	}
	group_build(g);
	return g;
}

static void
group_drop(struct server_group *g)
{
	group_free(g);
	free(g);
}

static unsigned
pick(const struct server_group *g, uint64_t tried, uint64_t now)
{
	const struct group_server *s = group_pick(g, NULL, tried, now);

	assert_non_null(s);
	return s->index;
}

static unsigned
pick_key(const struct server_group *g, const char *key, uint64_t now)
{
	struct group_key k = {.data = key, .len = strlen(key)};
	const struct group_server *s = group_pick(g, &k, 0, now);

	assert_non_null(s);
	return s->index;
}

static void
test_smooth_order_and_shares(void **state)
{
	static const uint64_t w[] = {5, 1, 1};
	struct server_group *g = group_make(3, w, NULL, GROUP_ROUND_ROBIN);
	char seq[8] = {0};
	unsigned count[3] = {0};

	(void)state;
	for (int i = 0; i < 7; i++)
		seq[i] = (char)('a' + pick(g, 0, SEC_US));
	assert_string_equal(seq, "aabacaa");
	for (int i = 0; i < 700; i++)
		count[pick(g, 0, SEC_US)]++;
	assert_int_equal(count[0], 500);
	assert_int_equal(count[1], 100);
	assert_int_equal(count[2], 100);
	group_drop(g);
}

static void
test_down_and_tried_servers_are_skipped(void **state)
{
	static const uint64_t w[] = {1, 2, 3};
	struct server_group *g = group_make(3, w, NULL, GROUP_ROUND_ROBIN);
	unsigned count[3] = {0};

	(void)state;
	assert_true(group_server_failed(g, &g->servers[2], "refused", SEC_US));
	for (int i = 0; i < 300; i++)
		count[pick(g, 0, 2 * SEC_US)]++;
	/* The others keep their shares relative to each other. */
	assert_int_equal(count[0], 100);
	assert_int_equal(count[1], 200);
	assert_int_equal(count[2], 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(pick(g, 1u << 1, 2 * SEC_US), 0);
	assert_null(group_pick(g, NULL, 3, 2 * SEC_US));
	group_drop(g);
}

static void
test_backup_only_when_no_primary_is_up(void **state)
{
	static const bool backup[] = {false, false, true};
	struct server_group *g = group_make(3, NULL, backup, GROUP_ROUND_ROBIN);

	(void)state;
	for (int i = 0; i < 20; i++)
		assert_int_not_equal(pick(g, 0, SEC_US), 2);
	assert_int_equal(pick(g, 3, SEC_US), 2); /* both primaries tried */
	group_server_failed(g, &g->servers[0], "refused", SEC_US);
	assert_int_equal(pick(g, 0, SEC_US), 1);
	group_server_failed(g, &g->servers[1], "refused", SEC_US);
	for (int i = 0; i < 5; i++)
		assert_int_equal(pick(g, 0, SEC_US), 2);
	group_server_failed(g, &g->servers[2], "refused", SEC_US);
	assert_null(group_pick(g, NULL, 0, SEC_US));
	assert_int_equal(group_retry_after(g, 4 * SEC_US), 7);
	group_drop(g);
}

static void
test_one_trial_after_the_down_period(void **state)
{
	struct server_group *g = group_make(2, NULL, NULL, GROUP_ROUND_ROBIN);
	unsigned count[2] = {0};

	(void)state;
	assert_true(group_server_failed(g, &g->servers[0], "refused", SEC_US));
	assert_false(group_server_is_up(g, &g->servers[0], 10 * SEC_US));
	for (int i = 0; i < 10; i++)
		count[pick(g, 0, 12 * SEC_US)]++;
	/* The period is over: one request tries it, the others stay away. */
	assert_int_equal(count[0], 1);
	assert_int_equal(count[1], 9);
	assert_true(group_server_ok(&g->servers[0]));
	assert_false(group_server_ok(&g->servers[0]));
	memset(count, 0, sizeof(count));
	for (int i = 0; i < 10; i++)
		count[pick(g, 0, 12 * SEC_US)]++;
	assert_int_equal(count[0], 5);
	group_drop(g);
}

static void
test_least_connections(void **state)
{
	static const uint64_t w[] = {1, 2};
	struct server_group *g = group_make(2, w, NULL, GROUP_LEAST_CONN);

	(void)state;
	group_server_begin(&g->servers[1]);
	for (int i = 0; i < 5; i++)
		assert_int_equal(pick(g, 0, SEC_US), 0);
	group_server_begin(&g->servers[0]);
	/* 1 in flight on weight 1 against 1 on weight 2: the heavier one. */
	assert_int_equal(pick(g, 0, SEC_US), 1);
	group_server_begin(&g->servers[1]);
	group_server_begin(&g->servers[1]);
	assert_int_equal(pick(g, 0, SEC_US), 0);
	group_server_end(&g->servers[1]);
	group_server_end(&g->servers[1]);
	group_server_end(&g->servers[1]);
	group_server_end(&g->servers[0]);
	group_drop(g);
}

#define NKEYS 20000

static void
test_hash_moves_about_one_in_n(void **state)
{
	struct server_group *ten = group_make(10, NULL, NULL, GROUP_HASH);
	struct server_group *nine = calloc(1, sizeof(*nine));
	unsigned *before = xcalloc(NKEYS, sizeof(*before)), count[10] = {0};
	size_t moved = 0;
	char key[32];

	(void)state;
	/* The same servers but the seventh: "10.0.0.7:80" is gone. */
	assert_non_null(nine);
	nine->name = xstrdup("app");
	nine->servers = xcalloc(9, sizeof(*nine->servers));
	nine->nservers = 9;
	nine->balance = GROUP_HASH;
	for (size_t i = 0, j = 0; i < 10; i++)
		if (i != 6) {
			nine->servers[j].address = xasprintf("10.0.0.%zu:80", i + 1);
			nine->servers[j++].weight = 1;
		}
	group_build(nine);
	for (int i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof(key), "user-%d", i);
		before[i] = pick_key(ten, key, SEC_US);
		assert_int_equal(pick_key(ten, key, SEC_US), before[i]);
		count[before[i]]++;
	}
	for (int i = 0; i < 10; i++)
		assert_in_range(count[i], NKEYS / 10 / 2, NKEYS / 10 * 2);
	for (int i = 0; i < NKEYS; i++) {
		const char *was = ten->servers[before[i]].address, *now;

		snprintf(key, sizeof(key), "user-%d", i);
		now = nine->servers[pick_key(nine, key, SEC_US)].address;
		if (strcmp(was, now) != 0) {
			assert_string_equal(was, "10.0.0.7:80");
			moved++;
		}
	}
	assert_int_equal(moved, count[6]);
	assert_in_range(moved, NKEYS / 20, NKEYS / 5);
	free(before);
	group_drop(ten);
	group_drop(nine);
}

static void
test_hash_down_server_moves_only_its_keys(void **state)
{
	struct server_group *g = group_make(4, NULL, NULL, GROUP_HASH);
	unsigned before[500];
	char key[32];

	(void)state;
	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		before[i] = pick_key(g, key, SEC_US);
	}
	group_server_failed(g, &g->servers[1], "refused", SEC_US);
	for (int i = 0; i < 500; i++) {
		unsigned now;

		snprintf(key, sizeof(key), "k%d", i);
		now = pick_key(g, key, 2 * SEC_US);
		assert_int_not_equal(now, 1);
		if (before[i] != 1)
			assert_int_equal(now, before[i]);
	}
	/* No key: round robin over the servers that are up. */
	assert_int_not_equal(pick(g, 0, 2 * SEC_US), 1);
	group_drop(g);
}

static void
test_active_rise_and_fall(void **state)
{
	struct server_group *g = group_make(2, NULL, NULL, GROUP_ROUND_ROBIN);
	const struct group_server *s = &g->servers[0];

	(void)state;
	g->active = true;
	g->check.rise = 2;
	g->check.fall = 3;
	assert_false(group_server_checked(g, s, false, "status 500"));
	assert_false(group_server_checked(g, s, true, NULL)); /* the count starts over */
	assert_false(group_server_checked(g, s, false, "status 500"));
	assert_false(group_server_checked(g, s, false, "timeout"));
	assert_true(group_server_checked(g, s, false, "timeout"));
	assert_false(group_server_is_up(g, s, SEC_US));
	assert_int_equal(pick(g, 0, SEC_US), 1);
	assert_false(group_server_checked(g, s, true, NULL));
	assert_true(group_server_checked(g, s, true, NULL));
	assert_true(group_server_is_up(g, s, SEC_US));
	group_drop(g);
}

static void
test_json_report(void **state)
{
	struct server_group *g = group_make(2, NULL, NULL, GROUP_ROUND_ROBIN);
	struct config cfg = {.groups = g, .ngroups = 1};
	struct buf out;

	(void)state;
	buf_init(&out);
	group_server_failed(g, &g->servers[1], "said \"no\"", SEC_US);
	group_write_json(&cfg, &out, 2 * SEC_US);
	buf_addc(&out, '\0');
	assert_non_null(
	    strstr(out.data, "{\"groups\":[{\"name\":\"app\",\"balance\":\"round_robin\""));
	assert_non_null(strstr(out.data, "\"address\":\"10.0.0.1:80\",\"state\":\"up\""));
	assert_non_null(strstr(out.data, "\"address\":\"10.0.0.2:80\",\"state\":\"down\""));
	assert_non_null(strstr(out.data, "\"last_failure\":\"said \\\"no\\\"\"}"));
	buf_reset(&out);
	group_write_metrics(&cfg, &out, 2 * SEC_US);
	buf_addc(&out, '\0');
	assert_non_null(strstr(
	    out.data, "portico_upstream_server_up{group=\"app\",server=\"10.0.0.2:80\"} 0\n"));
	assert_non_null(strstr(
	    out.data,
	    "portico_upstream_server_failures_total{group=\"app\",server=\"10.0.0.2:80\"} 1\n"));
	buf_free(&out);
	group_drop(g);
}

static void
test_adopted_state_survives(void **state)
{
	struct server_group *old = group_make(2, NULL, NULL, GROUP_ROUND_ROBIN);
	struct server_group *new = group_make(3, NULL, NULL, GROUP_ROUND_ROBIN);
	struct config ocfg = {.groups = old, .ngroups = 1}, ncfg = {.groups = new, .ngroups = 1};

	(void)state;
	group_server_failed(old, &old->servers[1], "refused", SEC_US);
	group_adopt_state(&ncfg, &ocfg);
	group_drop(old); /* the new snapshot holds its own references */
	assert_true(group_server_is_up(new, &new->servers[0], 2 * SEC_US));
	assert_false(group_server_is_up(new, &new->servers[1], 2 * SEC_US));
	assert_true(group_server_is_up(new, &new->servers[2], 2 * SEC_US));
	group_drop(new);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_smooth_order_and_shares),
	    cmocka_unit_test(test_down_and_tried_servers_are_skipped),
	    cmocka_unit_test(test_backup_only_when_no_primary_is_up),
	    cmocka_unit_test(test_one_trial_after_the_down_period),
	    cmocka_unit_test(test_least_connections),
	    cmocka_unit_test(test_hash_moves_about_one_in_n),
	    cmocka_unit_test(test_hash_down_server_moves_only_its_keys),
	    cmocka_unit_test(test_active_rise_and_fall),
	    cmocka_unit_test(test_json_report),
	    cmocka_unit_test(test_adopted_state_survives),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
