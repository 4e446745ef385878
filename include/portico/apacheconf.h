/*
 * apacheconf.h: a reader of Apache httpd configuration files (SPEC section
 * 14), reading them as httpd's own parser does (server/util.c
 * ap_cfg_getline, ap_getword_conf, ap_resolve_env; server/config.c
 * ap_build_config and the Include processing).
 *
 * The result is a tree of directives and sections, each with its file and
 * line.  The reader itself handles what httpd executes while reading:
 * Include and IncludeOptional (globs, directories, relative to ServerRoot),
 * Define and UnDefine with ${VAR} substitution, ServerRoot, and the
 * conditional sections <IfModule>, <IfDefine>, <IfVersion>, <IfFile>,
 * <IfDirective> and <IfSection>, which are followed as if true: their
 * content is spliced into the enclosing section and every directive read
 * inside one names it in `within`.  Everything else is left to the caller.
 *
 * Bounded: file size, total size, number of files, include depth, section
 * nesting, line length and directive count; an Include of a file that is
 * being read (a cycle) is an error.  Errors read "file:line: message".
 * Library code: nothing is logged, nothing is global; not thread-safe per
 * reader, independent readers are.
 */
#ifndef PORTICO_APACHECONF_H
#define PORTICO_APACHECONF_H

#include <stdbool.h>
#include <stddef.h>

struct apacheconf;

struct apacheconf_directive {
	const char *name;      /* as written: "ProxyPass", or "Location" for <Location /x> */
	char **args;	       /* after ${VAR} substitution and quote removal */
	size_t nargs;	       /* args[nargs] is NULL */
	const char *file;      /* relative to ServerRoot when the file is under it, else absolute */
	unsigned line;	       /* the first physical line of the (continued) line */
	const char *text;      /* the line as written (continuations joined), before ${VAR} */
	const char *within;    /* NULL, or the conditional sections followed around it */
	const char *undefined; /* NULL, or the first ${VAR} that was not defined */
	bool section;	       /* <Name args> ... </Name> */
	const struct apacheconf_directive **children; /* a section's content, in order */
	size_t nchildren;
	const struct apacheconf_directive *parent; /* NULL for the root */
};

struct apacheconf_options {
	const char *server_root; /* NULL: the directory of the main file */
	bool environment;	 /* ${VAR} falls back to the process environment, as in httpd */
	bool no_includes;	 /* Include and IncludeOptional are errors (for untrusted text) */
};

/*
 * Reads `path` and every file it includes.  Returns the tree, or NULL with
 * *err set to a malloc'd "file:line: message" (the caller frees it).
 */
struct apacheconf *apacheconf_read_file(const char *path, const struct apacheconf_options *opt,
					char **err);
/* The same for text in memory; `name` is the file name shown in positions. */
struct apacheconf *apacheconf_read_buffer(const char *name, const char *data, size_t len,
					  const struct apacheconf_options *opt, char **err);
void apacheconf_free(struct apacheconf *c);

/* The root: a section with no name whose children are the top-level directives. */
const struct apacheconf_directive *apacheconf_root(const struct apacheconf *c);
/* The ServerRoot in force at the end of reading, absolute. */
const char *apacheconf_server_root(const struct apacheconf *c);
/* A file argument as httpd resolves it: relative names are under ServerRoot (malloc'd). */
char *apacheconf_resolve(const struct apacheconf *c, const char *name);

/* Directives read, section openings included, closings not. */
size_t apacheconf_count_read(const struct apacheconf *c);
/* Of those, the ones the reader handled itself (Include, Define, <IfModule>, ...). */
size_t apacheconf_count_reader(const struct apacheconf *c);
/* Files read. */
size_t apacheconf_count_files(const struct apacheconf *c);

/* A section name that the reader follows as if true ("IfModule", case-insensitive). */
bool apacheconf_is_conditional(const char *name);

#endif
