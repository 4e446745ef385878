/*
 * import.h: `portico import` (SPEC section 14): an Apache httpd
 * configuration translated into a portico YAML file.
 *
 * import_run() reads the Apache configuration (apacheconf.h), translates
 * the directives in scope in Apache's order of evaluation, writes the YAML
 * (every entry preceded by the Apache lines it came from, as comments) and
 * writes one line per directive it could not carry to `report`:
 * "file:line: Directive: not imported: reason".  The result is checked with
 * the same loader as `portico -t`; its warnings become comments.
 *
 * The output goes to stdout, or to a file written atomically (a temporary
 * file in the same directory, renamed over the target only when complete).
 * Library code: it logs nothing; messages go to `report`.
 */
#ifndef PORTICO_IMPORT_H
#define PORTICO_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct import_options {
	const char *input;  /* the Apache configuration file */
	const char *output; /* NULL: standard output */
	bool strict;	    /* any directive not imported makes the result 1 */
	bool environment;   /* ${VAR} may come from the environment, as in httpd */
};

struct import_stats {
	size_t read;	 /* directives read (section openings included) */
	size_t imported; /* carried into the YAML, or already portico's behaviour */
	size_t partial;	 /* of those, imported with some part reported */
	size_t reported; /* not imported at all */
	size_t reader;	 /* executed while reading: Include, Define, <IfModule>, LoadModule */
	size_t files;	 /* files read */
	size_t routes;	 /* routes written */
};

/*
 * Returns 0 when the YAML was written and passes the checks of -t, and (with
 * strict) nothing was reported; 1 otherwise.  When the Apache configuration
 * cannot be read, nothing is written.
 */
int import_run(const struct import_options *o, FILE *report, struct import_stats *st);

#endif
