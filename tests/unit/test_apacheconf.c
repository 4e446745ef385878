/*
 * test_apacheconf.c: the Apache httpd configuration reader: lines and
 * continuations, words and quotes, sections, Define and ${VAR},
 * conditional sections, Include and its globs, limits and errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "portico/apacheconf.h"
#include "portico/util.h"

typedef const struct apacheconf_directive adir;

static struct apacheconf *
parse(const char *text)
{
	char *err = NULL;
	struct apacheconf *c = apacheconf_read_buffer("t.conf", text, strlen(text), NULL, &err);

	if (c == NULL)
		fail_msg("unexpected error: %s", err);
	return c;
}

/* The error message of `text`, which must not parse. */
static char *
parse_error(const char *text)
{
	char *err = NULL;
	struct apacheconf *c = apacheconf_read_buffer("t.conf", text, strlen(text), NULL, &err);

	if (c != NULL) {
		apacheconf_free(c);
		fail_msg("\"%s\": expected an error", text);
	}
	assert_non_null(err);
	return err;
}

static void
assert_error(const char *text, const char *want)
{
	char *err = parse_error(text);

	if (strcmp(err, want) != 0)
		fail_msg("\"%s\": error \"%s\", expected \"%s\"", text, err, want);
	free(err);
}

static adir *
child(adir *d, size_t i)
{
	assert_true(i < d->nchildren);
	return d->children[i];
}

static void
assert_args(adir *d, const char *name, size_t n, ...)
{
	va_list ap;

	assert_string_equal(d->name, name);
	assert_int_equal(d->nargs, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(d->args[i], va_arg(ap, const char *));
	va_end(ap);
	assert_null(d->args[n]);
}

/* ---- words ---- */

static void
test_words_and_quotes(void **state)
{
	struct apacheconf *c = parse("D plain \"two words\" 'single quoted' a\\\\b \"q\\\"x\" "
				     "'q\\'y' \"b\\\\s\" \"\" x\"y\"\n");
	adir *d = child(apacheconf_root(c), 0);

	(void)state;
	assert_args(d, "D", 9, "plain", "two words", "single quoted", "a\\b", "q\"x", "q'y", "b\\s",
		    "", "x\"y\"");
	apacheconf_free(c);
	/* after a closing quote the next word starts at once, as in ap_getword_conf */
	c = parse("D \"ab\"cd \"un terminated\n");
	d = child(apacheconf_root(c), 0);
	assert_args(d, "D", 3, "ab", "cd", "un terminated");
	apacheconf_free(c);
}

static void
test_backslash_kept_outside_escapes(void **state)
{
	struct apacheconf *c = parse("ProxyPassMatch ^/a/(\\d+)$ \"http://b/\\n$1\"\n");
	adir *d = child(apacheconf_root(c), 0);

	(void)state;
	assert_args(d, "ProxyPassMatch", 2, "^/a/(\\d+)$", "http://b/\\n$1");
	apacheconf_free(c);
}

/* ---- lines ---- */

static void
test_continuation_lines(void **state)
{
	struct apacheconf *c = parse("\n# comment\n  A b \\\n   c\nB \\\r\nd\r\nC e\\\n");
	adir *root = apacheconf_root(c);

	(void)state;
	assert_int_equal(root->nchildren, 3);
	assert_args(child(root, 0), "A", 2, "b", "c");
	assert_int_equal(child(root, 0)->line, 3);
	assert_string_equal(child(root, 0)->text, "A b    c");
	assert_args(child(root, 1), "B", 1, "d");
	assert_int_equal(child(root, 1)->line, 5);
	/* a backslash before the end of the file joins nothing */
	assert_args(child(root, 2), "C", 1, "e");
	assert_int_equal(child(root, 2)->line, 7);
	apacheconf_free(c);
}

static void
test_comment_continues_too(void **state)
{
	struct apacheconf *c = parse("# a comment \\\nHidden line\nShown yes\n");
	adir *root = apacheconf_root(c);

	(void)state;
	assert_int_equal(root->nchildren, 1);
	assert_args(child(root, 0), "Shown", 1, "yes");
	assert_int_equal(child(root, 0)->line, 3);
	apacheconf_free(c);
}

static void
test_trailing_space_breaks_continuation(void **state)
{
	struct apacheconf *c = parse("A b \\ \nB c\n\tTab\targs\t\n");
	adir *root = apacheconf_root(c);

	(void)state;
	assert_int_equal(root->nchildren, 3);
	assert_args(child(root, 0), "A", 2, "b", "\\");
	assert_args(child(root, 2), "Tab", 1, "args");
	apacheconf_free(c);
}

/* ---- sections ---- */

static void
test_sections(void **state)
{
	struct apacheconf *c = parse("<VirtualHost *:80 [::1]:8080>\n"
				     "  ServerName a\n"
				     "  <Location \"/x y\">\n"
				     "    <RequireAll>\n"
				     "      Require all granted\n"
				     "    </requireall>\n"
				     "  </LOCATION>\n"
				     "  <Location \"/a>b\">\n"
				     "  </Location>\n"
				     "</VirtualHost>\n");
	adir *vh = child(apacheconf_root(c), 0), *loc, *all;

	(void)state;
	assert_true(vh->section);
	assert_args(vh, "VirtualHost", 2, "*:80", "[::1]:8080");
	assert_int_equal(vh->nchildren, 3);
	loc = child(vh, 1);
	assert_args(loc, "Location", 1, "/x y");
	assert_ptr_equal(loc->parent, vh);
	all = child(loc, 0);
	assert_args(all, "RequireAll", 0);
	assert_true(all->section);
	assert_args(child(all, 0), "Require", 2, "all", "granted");
	assert_args(child(vh, 2), "Location", 1, "/a>b");
	apacheconf_free(c);
}

static void
test_section_errors(void **state)
{
	(void)state;
	assert_error("<A>\n</B>\n", "t.conf:2: expected </A> but saw </B>");
	assert_error("</A>\n", "t.conf:1: </A> without matching <A> section");
	assert_error("X\n<A x>\n<B>\n</B>\n", "t.conf:2: <A> was not closed");
	assert_error("<A x\n</A>\n", "t.conf:1: <A> directive missing closing '>'");
	assert_error("<A>\n</A\n", "t.conf:2: </A> directive missing closing '>'");
	assert_error("<>\n", "t.conf:1: a section needs a name after '<'");
}

static void
test_nesting_is_bounded(void **state)
{
	struct buf b;
	char *err;

	(void)state;
	buf_init(&b);
	for (int i = 0; i < 70; i++)
		buf_adds(&b, "<A>\n");
	err = parse_error(b.data);
	assert_string_equal(err, "t.conf:65: <A>: sections nested more than 64 deep");
	free(err);
	buf_free(&b);
}

/* ---- Define and ${VAR} ---- */

static void
test_define_and_variables(void **state)
{
	struct apacheconf *c = parse("Define URL http://b:8080\n"
				     "Define FLAG\n"
				     "P ${URL}/x ${FLAG} ${NOPE} ${a:b} $ ${ \n"
				     "UnDefine URL\n"
				     "Q ${URL}\n");
	adir *root = apacheconf_root(c);
	adir *p = child(root, 0), *q = child(root, 1);

	(void)state;
	assert_int_equal(root->nchildren, 2);
	assert_args(p, "P", 6, "http://b:8080/x", "${FLAG}", "${NOPE}", "${a:b}", "$", "${");
	assert_string_equal(p->undefined, "${FLAG}");
	assert_string_equal(p->text, "P ${URL}/x ${FLAG} ${NOPE} ${a:b} $ ${");
	assert_args(q, "Q", 1, "${URL}");
	assert_string_equal(q->undefined, "${URL}");
	assert_int_equal(apacheconf_count_read(c), 5);
	assert_int_equal(apacheconf_count_reader(c), 3);
	apacheconf_free(c);
}

static void
test_variables_from_environment(void **state)
{
	struct apacheconf_options opt = {.environment = true};
	const char text[] = "P ${PORTICO_TEST_VAR}\n";
	char *err = NULL;
	struct apacheconf *c;

	(void)state;
	setenv("PORTICO_TEST_VAR", "from-env", 1);
	c = apacheconf_read_buffer("t.conf", text, strlen(text), &opt, &err);
	assert_non_null(c);
	assert_string_equal(child(apacheconf_root(c), 0)->args[0], "from-env");
	assert_null(child(apacheconf_root(c), 0)->undefined);
	apacheconf_free(c);
	c = parse(text);
	assert_string_equal(child(apacheconf_root(c), 0)->args[0], "${PORTICO_TEST_VAR}");
	apacheconf_free(c);
	unsetenv("PORTICO_TEST_VAR");
}

static void
test_define_errors(void **state)
{
	(void)state;
	assert_error("Define\n", "t.conf:1: Define takes one or two arguments");
	assert_error("Define a b c\n", "t.conf:1: Define takes one or two arguments");
	assert_error("Define a:b\n", "t.conf:1: Define: variable name must not contain ':'");
}

/* ---- conditional sections ---- */

static void
test_conditionals_followed(void **state)
{
	struct apacheconf *c = parse("<IfModule mod_proxy.c>\n"
				     "  <IfDefine !NOPE>\n"
				     "    A 1\n"
				     "  </IfDefine>\n"
				     "  <IfVersion >= 2.4>\n"
				     "    <Location /x>\n"
				     "      B 2\n"
				     "    </Location>\n"
				     "  </IfVersion>\n"
				     "</IfModule>\n"
				     "C 3\n");
	adir *root = apacheconf_root(c), *loc;

	(void)state;
	assert_int_equal(root->nchildren, 3);
	assert_args(child(root, 0), "A", 1, "1");
	assert_string_equal(child(root, 0)->within,
			    "<IfModule mod_proxy.c> (t.conf:1), <IfDefine !NOPE> (t.conf:2)");
	loc = child(root, 1);
	assert_args(loc, "Location", 1, "/x");
	assert_string_equal(loc->within,
			    "<IfModule mod_proxy.c> (t.conf:1), <IfVersion >= 2.4> (t.conf:5)");
	assert_args(child(loc, 0), "B", 1, "2");
	assert_null(child(root, 2)->within);
	assert_int_equal(apacheconf_count_read(c), 7);
	assert_int_equal(apacheconf_count_reader(c), 3);
	assert_true(apacheconf_is_conditional("ifmodule"));
	assert_false(apacheconf_is_conditional("If"));
	apacheconf_free(c);
}

/* ---- files and includes ---- */

static char tmpdir[64];

static void
write_file(const char *rel, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
make_dir(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static struct apacheconf *
read_main(char **err)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/main.conf", tmpdir);
	*err = NULL;
	return apacheconf_read_file(path, NULL, err);
}

static int
setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/portico-apacheconf-XXXXXX");
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The names of the top-level directives, one string. */
static char *
names(adir *root)
{
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; i < root->nchildren; i++)
		buf_addf(&b, "%s%s:%s:%u", i ? " " : "", root->children[i]->name,
			 root->children[i]->file, root->children[i]->line);
	return buf_steal(&b);
}

static void
test_include_globs_sorted(void **state)
{
	struct apacheconf *c;
	char *err, *got;

	(void)state;
	make_dir("conf.d");
	make_dir("sites");
	make_dir("sites/sub");
	write_file("main.conf", "A\nInclude conf.d/*.conf\nInclude sites\n"
				"IncludeOptional none/*.conf\nIncludeOptional missing.conf\nZ\n");
	write_file("conf.d/b.conf", "B\n");
	write_file("conf.d/a.conf", "\nA2\n");
	write_file("conf.d/.hidden.conf", "Hidden\n");
	write_file("conf.d/c.txt", "Txt\n");
	write_file("sites/2.conf", "S2\n");
	write_file("sites/.dot", "Dot\n");
	write_file("sites/sub/1.conf", "S1\n");
	c = read_main(&err);
	if (c == NULL)
		fail_msg("%s", err);
	got = names(apacheconf_root(c));
	assert_string_equal(got, "A:main.conf:1 A2:conf.d/a.conf:2 B:conf.d/b.conf:1 "
				 "Dot:sites/.dot:1 S2:sites/2.conf:1 S1:sites/sub/1.conf:1 "
				 "Z:main.conf:6");
	assert_int_equal(apacheconf_count_files(c), 6);
	assert_int_equal(apacheconf_count_reader(c), 4);
	free(got);
	apacheconf_free(c);
}

static void
test_include_wildcard_directories(void **state)
{
	struct apacheconf *c;
	char *err, *got;

	(void)state;
	make_dir("m1");
	make_dir("m2");
	write_file("m1/x.conf", "X1\n");
	write_file("m2/x.conf", "X2\n");
	write_file("m2.conf", "NotADir\n");
	write_file("main.conf", "Include m*/x.conf\n");
	c = read_main(&err);
	if (c == NULL)
		fail_msg("%s", err);
	got = names(apacheconf_root(c));
	assert_string_equal(got, "X1:m1/x.conf:1 X2:m2/x.conf:1");
	free(got);
	apacheconf_free(c);
}

static void
test_include_errors(void **state)
{
	struct apacheconf *c;
	char *err, want[256];

	(void)state;
	write_file("main.conf", "A\nInclude nothere/*.conf\n");
	make_dir("nothere");
	c = read_main(&err);
	assert_null(c);
	snprintf(want, sizeof(want),
		 "main.conf:2: Include: no matches for the wildcard '*.conf' in %s/nothere",
		 tmpdir);
	assert_string_equal(err, want);
	free(err);
	write_file("main.conf", "Include missing.conf\n");
	c = read_main(&err);
	assert_null(c);
	snprintf(want, sizeof(want),
		 "main.conf:1: Include: cannot open %s/missing.conf: No such file or directory",
		 tmpdir);
	assert_string_equal(err, want);
	free(err);
	write_file("main.conf", "Include a.conf\n");
	write_file("a.conf", "<Location /x>\nInclude b.conf\n</Location>\n");
	write_file("b.conf", "</Location>\n");
	c = read_main(&err);
	assert_null(c);
	assert_string_equal(err, "b.conf:1: </Location> without matching <Location> section");
	free(err);
}

static void
test_include_cycle(void **state)
{
	struct apacheconf *c;
	char *err;

	(void)state;
	write_file("main.conf", "Include a.conf\n");
	write_file("a.conf", "A\nInclude b.conf\n");
	write_file("b.conf", "\n\nInclude a.conf\n");
	c = read_main(&err);
	assert_null(c);
	assert_string_equal(err, "b.conf:3: Include: a.conf: already being read: the includes "
				 "form a cycle");
	free(err);
	write_file("main.conf", "Include main.conf\n");
	c = read_main(&err);
	assert_null(c);
	assert_string_equal(err, "main.conf:1: Include: main.conf: already being read: the "
				 "includes form a cycle");
	free(err);
}

static void
test_server_root(void **state)
{
	struct apacheconf *c;
	char *err, *got, want[256];

	(void)state;
	make_dir("root");
	write_file("root/in.conf", "In\n");
	snprintf(want, sizeof(want), "ServerRoot %s/root\nInclude in.conf\n", tmpdir);
	write_file("main.conf", want);
	c = read_main(&err);
	if (c == NULL)
		fail_msg("%s", err);
	got = names(apacheconf_root(c));
	assert_string_equal(got, "In:in.conf:1");
	snprintf(want, sizeof(want), "%s/root", tmpdir);
	assert_string_equal(apacheconf_server_root(c), want);
	free(got);
	got = apacheconf_resolve(c, "ssl/a.pem");
	snprintf(want, sizeof(want), "%s/root/ssl/a.pem", tmpdir);
	assert_string_equal(got, want);
	free(got);
	got = apacheconf_resolve(c, "/etc/a.pem");
	assert_string_equal(got, "/etc/a.pem");
	free(got);
	apacheconf_free(c);
	write_file("main.conf", "ServerRoot /nonexistent-portico-dir\n");
	c = read_main(&err);
	assert_null(c);
	assert_string_equal(err, "main.conf:1: ServerRoot must be a valid directory: "
				 "/nonexistent-portico-dir");
	free(err);
}

/* ---- limits ---- */

static void
test_limits(void **state)
{
	static const char nul[] = "A\nB\0C\n";
	struct apacheconf_options opt = {.no_includes = true};
	char *err = NULL, *line;
	struct apacheconf *c;

	(void)state;
	c = apacheconf_read_buffer("t.conf", nul, sizeof(nul) - 1, NULL, &err);
	assert_null(c);
	assert_string_equal(err, "t.conf:2: NUL byte in the configuration");
	free(err);
	line = calloc(1, 70 * 1024);
	assert_non_null(line);
	memset(line, 'x', 70 * 1024 - 1);
	err = parse_error(line);
	assert_string_equal(err, "t.conf:1: line too long (over 65536 bytes)");
	free(err);
	free(line);
	c = apacheconf_read_buffer("t.conf", "Include x\n", 10, &opt, &err);
	assert_null(c);
	assert_string_equal(err, "t.conf:1: Include: includes are not followed here");
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_words_and_quotes),
	    cmocka_unit_test(test_backslash_kept_outside_escapes),
	    cmocka_unit_test(test_continuation_lines),
	    cmocka_unit_test(test_comment_continues_too),
	    cmocka_unit_test(test_trailing_space_breaks_continuation),
	    cmocka_unit_test(test_sections),
	    cmocka_unit_test(test_section_errors),
	    cmocka_unit_test(test_nesting_is_bounded),
	    cmocka_unit_test(test_define_and_variables),
	    cmocka_unit_test(test_variables_from_environment),
	    cmocka_unit_test(test_define_errors),
	    cmocka_unit_test(test_conditionals_followed),
	    cmocka_unit_test_setup_teardown(test_include_globs_sorted, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_include_wildcard_directories, setup_dir,
					    teardown_dir),
	    cmocka_unit_test_setup_teardown(test_include_errors, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_include_cycle, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_server_root, setup_dir, teardown_dir),
	    cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
