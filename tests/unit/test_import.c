/*
 * test_import.c: `portico import` as a library call: the report, the
 * counts, --strict, and the output file written whole or not at all.  The
 * translation itself is checked by the golden cases in tests/import/.
 */
#include <dirent.h>
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

#include "portico/import.h"

static char dir[64];

static char *
path_of(const char *rel)
{
	static char path[4][256];
	static int next;
	char *p = path[next++ % 4];

	snprintf(p, sizeof(path[0]), "%s/%s", dir, rel);
	return p;
}

static void
write_file(const char *rel, const char *text)
{
	FILE *f = fopen(path_of(rel), "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *
read_file(const char *rel)
{
	FILE *f = fopen(path_of(rel), "r");
	char *text = calloc(1, 65536);

	assert_non_null(f);
	assert_non_null(text);
	assert_true(fread(text, 1, 65535, f) < 65535);
	fclose(f);
	return text;
}

static int
files_in_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Runs the import of apache2.conf into out.yaml; the report into *report. */
static int
run(bool strict, char **report, struct import_stats *st)
{
	struct import_options o = {
	    .input = path_of("apache2.conf"), .output = path_of("out.yaml"), .strict = strict};
	size_t len;
	FILE *rep = open_memstream(report, &len);
	int rv;

	assert_non_null(rep);
	rv = import_run(&o, rep, st);
	fclose(rep);
	return rv;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/portico-import-XXXXXX");
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_writes_yaml_and_counts(void **state)
{
	struct import_stats st;
	struct stat sb;
	char *report, *yaml;

	(void)state;
	write_file("apache2.conf",
		   "Listen 127.0.0.1:8080\n"
		   "ServerAdmin root@example.com\n"
		   "<IfModule mod_proxy.c>\n"
		   "ProxyPass /a http://a.internal/a keepalive=On\n"
		   "</IfModule>\n"
		   "LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so\n");
	assert_int_equal(run(false, &report, &st), 0);
	assert_non_null(strstr(report, "apache2.conf:2: ServerAdmin: not imported: "));
	assert_non_null(strstr(report, "apache2.conf:4: ProxyPass: not imported: keepalive=On: "));
	assert_int_equal(st.read, 5);
	assert_int_equal(st.imported, 2);
	assert_int_equal(st.partial, 1);
	assert_int_equal(st.reported, 1);
	assert_int_equal(st.reader, 2);
	assert_int_equal(st.routes, 1);
	yaml = read_file("out.yaml");
	assert_non_null(strstr(yaml,
			       "  # apache2.conf:4: ProxyPass /a http://a.internal/a "
			       "keepalive=On\n"
			       "  #   inside <IfModule mod_proxy.c> (apache2.conf:3), followed "
			       "as if true\n"
			       "  - path: /a\n"
			       "    pass: http://a.internal/a\n"));
	assert_int_equal(stat(path_of("out.yaml"), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	assert_int_equal(files_in_dir(), 2);
	free(yaml);
	free(report);
}

static void
test_strict(void **state)
{
	struct import_stats st;
	char *report;

	(void)state;
	write_file("apache2.conf", "Listen 8080\nProxyPass / http://a.internal/\nKeepAlive On\n");
	assert_int_equal(run(true, &report, &st), 1);
	assert_int_equal(st.reported, 1);
	free(report);
	assert_true(access(path_of("out.yaml"), R_OK) == 0);
	write_file("apache2.conf", "Listen 8080\nProxyPass / http://a.internal/\n");
	assert_int_equal(run(true, &report, &st), 0);
	assert_int_equal(st.reported + st.partial, 0);
	free(report);
}

static void
test_unreadable_configuration_writes_nothing(void **state)
{
	struct import_stats st = {.read = 12345};
	char *report, *kept;

	(void)state;
	write_file("out.yaml", "previous: contents\n");
	write_file("apache2.conf", "Listen 80\n<VirtualHost *:80>\n");
	assert_int_equal(run(false, &report, &st), 1);
	assert_string_equal(report, "portico import: apache2.conf:2: <VirtualHost> was not "
				    "closed\n");
	assert_int_equal(st.read, 12345);
	kept = read_file("out.yaml");
	assert_string_equal(kept, "previous: contents\n");
	assert_int_equal(files_in_dir(), 2);
	free(kept);
	free(report);
}

static void
test_result_failing_checks_is_reported(void **state)
{
	struct import_stats st;
	char *report;

	(void)state;
	/* A certificate that does not exist: the YAML is written, the check fails. */
	write_file("apache2.conf", "Listen 8443\n<VirtualHost *:8443>\nSSLEngine on\n"
				   "SSLCertificateFile missing.pem\nProxyPass / http://a/\n"
				   "</VirtualHost>\n");
	assert_int_equal(run(false, &report, &st), 1);
	assert_non_null(strstr(report, "portico import: the result does not pass portico -t: "));
	assert_null(strstr(report, ".yaml."));
	assert_true(access(path_of("out.yaml"), R_OK) == 0);
	assert_int_equal(files_in_dir(), 2);
	free(report);
}

static void
test_unwritable_target(void **state)
{
	struct import_options o = {.input = path_of("apache2.conf"),
				   .output = path_of("no/such/dir/out.yaml")};
	char *report;
	size_t len;
	FILE *rep;

	(void)state;
	write_file("apache2.conf", "Listen 8080\nProxyPass / http://a.internal/\n");
	rep = open_memstream(&report, &len);
	assert_int_equal(import_run(&o, rep, NULL), 1);
	fclose(rep);
	assert_non_null(strstr(report, "portico import: cannot create "));
	assert_int_equal(files_in_dir(), 1);
	free(report);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_writes_yaml_and_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_strict, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unreadable_configuration_writes_nothing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_result_failing_checks_is_reported, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_unwritable_target, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
