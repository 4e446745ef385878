/*
 * fuzz_apacheconf.c: the Apache configuration reader on arbitrary bytes
 * (includes off: the input names no files).  Every input is read or
 * refused with a "name:line: message" error; an accepted tree has
 * consistent parents, NULL-terminated arguments, positive line numbers and
 * counts that add up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portico/apacheconf.h"

static size_t
check(const struct apacheconf_directive *d, const struct apacheconf_directive *parent)
{
	size_t n = 1;

	if (d->parent != parent || d->args[d->nargs] != NULL || d->line == 0 ||
	    strcmp(d->file, "fuzz.conf") != 0 || (!d->section && d->nchildren > 0))
		abort();
	for (size_t i = 0; i < d->nchildren; i++)
		n += check(d->children[i], d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct apacheconf_options opt = {.no_includes = true};
	char *err = NULL;
	struct apacheconf *c =
	    apacheconf_read_buffer("fuzz.conf", (const char *)data, size, &opt, &err);
	const struct apacheconf_directive *root;
	size_t n = 0;

	if (c == NULL) {
		if (err == NULL || strncmp(err, "fuzz.conf:", 10) != 0)
			abort();
		free(err);
		return 0;
	}
	root = apacheconf_root(c);
	for (size_t i = 0; i < root->nchildren; i++)
		n += check(root->children[i], root);
	if (n + apacheconf_count_reader(c) != apacheconf_count_read(c))
		abort();
	apacheconf_free(c);
	return 0;
}
