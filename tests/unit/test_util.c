/*
 * test_util.c: the shared helpers of util.h: PORTICO_ASSERT stays compiled
 * in whatever the build type (this file defines NDEBUG to prove it), and
 * aborts with file:line and the expression.
 */
#define NDEBUG 1

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "portico/util.h"

static int
broken_invariant(int x)
{
	PORTICO_ASSERT(x == 42);
	return x;
}

static void
test_assert_aborts_under_ndebug(void **state)
{
	int fds[2], status;
	char msg[512] = {0};
	pid_t pid;
	size_t n = 0;
	ssize_t r;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		broken_invariant(7);
		_exit(0);
	}
	close(fds[1]);
	while (n < sizeof(msg) - 1 && (r = read(fds[0], msg + n, sizeof(msg) - 1 - n)) > 0)
		n += (size_t)r;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_true(n > 0);
	assert_non_null(strstr(msg, "test_util.c:"));
	assert_non_null(strstr(msg, "broken_invariant"));
	assert_non_null(strstr(msg, "x == 42"));
}

static void
test_assert_passes(void **state)
{
	(void)state;
	assert_int_equal(broken_invariant(42), 42);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_assert_aborts_under_ndebug),
	    cmocka_unit_test(test_assert_passes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
