/*
 * apacheconf.c: reads Apache httpd configuration files into a tree of
 * directives (see apacheconf.h), the way httpd 2.4 reads them:
 *
 * - Lines: a backslash right before the newline (or CR LF) joins the next
 *   physical line, without the backslash and the newline (ap_cfg_getline);
 *   the joined line is trimmed; a line that then starts with '#' is a
 *   comment, continuation included.
 * - ${NAME} is replaced on the whole line before it is split into words,
 *   from Define and then (optionally) the environment; an undefined name is
 *   left as written (ap_resolve_env).
 * - Words: "..." and '...' quote, a backslash escapes the quote character
 *   and a backslash; outside quotes "\\" is one backslash (ap_getword_conf).
 * - Sections: "<Name args>" up to the last '>' of the line; "</Name>" must
 *   close the innermost open section, case-insensitively, in the same file.
 * - Include: relative to ServerRoot; a directory includes every entry in
 *   it and below, sorted; wildcards are allowed in every component (fnmatch
 *   with a leading dot matched explicitly), matches sorted; a wildcard with
 *   no match is an error for Include and nothing for IncludeOptional, as is
 *   a missing file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "portico/apacheconf.h"
#include "portico/util.h"

#define AC_MAX_FILE_SIZE     ((size_t)16 << 20)
#define AC_MAX_TOTAL_SIZE    ((size_t)64 << 20)
#define AC_MAX_FILES	     4096
#define AC_MAX_INCLUDE_DEPTH 32 /* files being read at once */
#define AC_MAX_DIR_DEPTH     16 /* directories below an included directory */
#define AC_MAX_NESTING	     64 /* open sections */
#define AC_MAX_LINE	     ((size_t)64 << 10)
#define AC_MAX_DIRECTIVES    1000000
#define AC_MAX_ARGS	     1024

/* A directive and the capacity of its children array. */
struct ac_node {
	struct apacheconf_directive d;
	size_t cap;
};

struct ac_define {
	char *name;
	char *value; /* NULL: defined for <IfDefine>, no value for ${NAME} */
};

/* An open section: a node, or a conditional section followed as if true. */
struct ac_frame {
	struct ac_node *node; /* NULL for a conditional section */
	char *name;
	char *cond; /* conditional: "<IfModule mod_ssl.c> (file:line)" */
	const char *file;
	unsigned line;
};

struct ac_open {
	dev_t dev;
	ino_t ino;
};

struct apacheconf {
	struct ac_node root;
	char *server_root;
	struct apacheconf_options opt;
	struct ac_define *defs;
	size_t ndefs, capdefs;
	struct ac_frame *frames;
	size_t nframes, capframes;
	struct ac_open *open; /* files being read, outermost first */
	size_t nopen, capopen;
	char **names; /* interned file names shown in positions */
	size_t nnames, capnames;
	size_t nread, nreader, nfiles, total;
	char *err;
	/* The Include being executed: file-level errors are reported at its line. */
	const char *inc_file, *inc_name;
	unsigned inc_line;
};

/* One file being parsed. */
struct ac_src {
	const char *data;
	size_t len, pos;
	unsigned lineno; /* physical lines consumed */
	const char *file;
	size_t base; /* frames open before this file */
};

static int ac_include(struct apacheconf *c, const char *pattern, bool optional,
		      const struct ac_src *s, unsigned line);

/* ---- errors ---- */

static int ac_fail(struct apacheconf *c, const char *file, unsigned line, const char *fmt, ...)
    PRINTF_LIKE(4, 5);

static int
ac_fail(struct apacheconf *c, const char *file, unsigned line, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (c->err != NULL)
		return -1;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	c->err =
	    line > 0 ? xasprintf("%s:%u: %s", file, line, msg) : xasprintf("%s: %s", file, msg);
	xfree(msg);
	return -1;
}

/* An error about the file `shown` itself: at the Include that names it, if any. */
static int ac_fail_file(struct apacheconf *c, const char *shown, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

static int
ac_fail_file(struct apacheconf *c, const char *shown, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	int rv;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (c->inc_file != NULL)
		rv = ac_fail(c, c->inc_file, c->inc_line, "%s: %s: %s", c->inc_name, shown, msg);
	else
		rv = ac_fail(c, shown, 0, "%s", msg);
	xfree(msg);
	return rv;
}

/* ---- small helpers ---- */

static bool
ac_isspace(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

static bool
ac_eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

static bool
ac_has_wildcard(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* The name shown for `path`: under ServerRoot relative to it, else as it is; interned. */
static const char *
ac_intern_name(struct apacheconf *c, const char *path)
{
	size_t rl = strlen(c->server_root);
	const char *show = path;

	if (strncmp(path, c->server_root, rl) == 0 && path[rl] == '/' && path[rl + 1] != '\0')
		show = path + rl + 1;
	else if (strcmp(c->server_root, "/") == 0 && path[0] == '/' && path[1] != '\0')
		show = path + 1;
	while (show[0] == '.' && show[1] == '/')
		show += 2;
	for (size_t i = 0; i < c->nnames; i++)
		if (strcmp(c->names[i], show) == 0)
			return c->names[i];
	c->names = xgrow(c->names, &c->capnames, c->nnames, sizeof(*c->names));
	c->names[c->nnames] = xstrdup(show);
	return c->names[c->nnames++];
}

static char *
ac_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir);

	if (dl > 0 && dir[dl - 1] == '/')
		return xasprintf("%s%s", dir, name);
	return xasprintf("%s/%s", dir, name);
}

/* `path` made absolute against the working directory. */
static char *
ac_absolute(const char *path)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return xstrdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return xstrdup(path);
	if (strcmp(path, ".") == 0)
		return xstrdup(cwd);
	return ac_join(cwd, path[0] == '.' && path[1] == '/' ? path + 2 : path);
}

char *
apacheconf_resolve(const struct apacheconf *c, const char *name)
{
	if (name[0] == '/')
		return xstrdup(name);
	return ac_join(c->server_root, name[0] == '.' && name[1] == '/' ? name + 2 : name);
}

/* ---- the tree ---- */

static struct ac_node *
ac_node_new(const char *name, const char *file, unsigned line, const char *text)
{
	struct ac_node *n = xcalloc(1, sizeof(*n));

	n->d.name = xstrdup(name);
	n->d.file = file;
	n->d.line = line;
	n->d.text = xstrdup(text);
	n->d.args = xcalloc(1, sizeof(char *));
	return n;
}

static void ac_node_free(struct ac_node *n);

/* Frees what `n` holds, not `n` itself (the root is part of struct apacheconf). */
static void
ac_node_clear(struct ac_node *n)
{
	for (size_t i = 0; i < n->d.nchildren; i++)
		ac_node_free((struct ac_node *)n->d.children[i]);
	xfree(n->d.children);
	for (size_t i = 0; i < n->d.nargs; i++)
		xfree(n->d.args[i]);
	xfree(n->d.args);
	xfree((char *)n->d.name);
	xfree((char *)n->d.text);
	xfree((char *)n->d.within);
	xfree((char *)n->d.undefined);
}

static void
ac_node_free(struct ac_node *n)
{
	ac_node_clear(n);
	xfree(n);
}

static struct ac_node *
ac_current(struct apacheconf *c)
{
	for (size_t i = c->nframes; i > 0; i--)
		if (c->frames[i - 1].node != NULL)
			return c->frames[i - 1].node;
	return &c->root;
}

/* The conditional sections open around the current position, or NULL. */
static char *
ac_within(const struct apacheconf *c)
{
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; i < c->nframes; i++) {
		if (c->frames[i].cond == NULL)
			continue;
		if (b.len > 0)
			buf_adds(&b, ", ");
		buf_adds(&b, c->frames[i].cond);
	}
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static void
ac_attach(struct apacheconf *c, struct ac_node *n)
{
	struct ac_node *parent = ac_current(c);

	n->d.within = ac_within(c);
	n->d.parent = &parent->d;
	parent->d.children = xgrow(parent->d.children, &parent->cap, parent->d.nchildren,
				   sizeof(*parent->d.children));
	parent->d.children[parent->d.nchildren++] = &n->d;
}

/* ---- lines and words ---- */

/*
 * The next logical line of `s` into `line` (untrimmed), its first physical
 * line number in *first.  1 at the end of the file, -1 on error.
 */
static int
ac_next_line(struct apacheconf *c, struct ac_src *s, struct buf *line, unsigned *first)
{
	buf_reset(line);
	if (s->pos >= s->len)
		return 1;
	*first = s->lineno + 1;
	for (;;) {
		const char *p = s->data + s->pos;
		const char *nl = memchr(p, '\n', s->len - s->pos);
		size_t n = nl ? (size_t)(nl - p) : s->len - s->pos;
		size_t m = n;

		s->pos += nl ? n + 1 : n;
		s->lineno++;
		if (nl != NULL && m > 0 && p[m - 1] == '\r')
			m--;
		if (nl != NULL && line->len + m > 0 && m > 0 && p[m - 1] == '\\') {
			buf_add(line, p, m - 1);
			if (line->len > AC_MAX_LINE)
				return ac_fail(c, s->file, *first, "line too long (over %zu bytes)",
					       AC_MAX_LINE);
			if (s->pos < s->len)
				continue;
			return 0;
		}
		buf_add(line, p, n);
		if (line->len > AC_MAX_LINE)
			return ac_fail(c, s->file, *first, "line too long (over %zu bytes)",
				       AC_MAX_LINE);
		return 0;
	}
}

/* Trims leading and trailing white space in place; returns the start. */
static char *
ac_trim(char *s)
{
	size_t n;

	while (ac_isspace(*s))
		s++;
	n = strlen(s);
	while (n > 0 && ac_isspace(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* The word's text without its quotes; "\\" and "\<quote>" become one character. */
static char *
ac_unescape(const char *start, size_t len, char quote)
{
	char *out = xmalloc(len + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		if (start[i] == '\\' && i + 1 < len &&
		    (start[i + 1] == '\\' || (quote && start[i + 1] == quote)))
			i++;
		*o++ = start[i];
	}
	*o = '\0';
	return out;
}

/* The next word of *line (ap_getword_conf); *line moves past it and the spaces after. */
static char *
ac_getword(const char **line)
{
	const char *str = *line, *end;
	char quote, *res;

	while (ac_isspace(*str))
		str++;
	quote = *str;
	if (quote == '"' || quote == '\'') {
		end = str + 1;
		while (*end && *end != quote) {
			if (*end == '\\' && end[1] && (end[1] == quote || end[1] == '\\'))
				end += 2;
			else
				end++;
		}
		res = ac_unescape(str + 1, (size_t)(end - str - 1), quote);
		if (*end == quote)
			end++;
	} else {
		end = str;
		while (*end && !ac_isspace(*end))
			end++;
		res = ac_unescape(str, (size_t)(end - str), 0);
	}
	while (ac_isspace(*end))
		end++;
	*line = end;
	return res;
}

static int
ac_split(struct apacheconf *c, const struct ac_src *s, unsigned line, const char *p,
	 struct ac_node *n)
{
	size_t cap = 1;

	while (*p != '\0') {
		if (n->d.nargs >= AC_MAX_ARGS)
			return ac_fail(c, s->file, line, "%s: more than %d arguments", n->d.name,
				       AC_MAX_ARGS);
		n->d.args = xgrow(n->d.args, &cap, n->d.nargs + 1, sizeof(char *));
		n->d.args[n->d.nargs++] = ac_getword(&p);
		n->d.args[n->d.nargs] = NULL;
	}
	return 0;
}

/* ---- ${NAME} ---- */

static const char *
ac_lookup(const struct apacheconf *c, const char *name)
{
	for (size_t i = 0; i < c->ndefs; i++)
		if (strcmp(c->defs[i].name, name) == 0)
			return c->defs[i].value;
	return c->opt.environment ? getenv(name) : NULL;
}

/* The line with ${NAME} replaced (ap_resolve_env); *undefined: the first name left. */
static char *
ac_substitute(const struct apacheconf *c, const char *line, char **undefined)
{
	struct buf b;
	const char *s = line, *e;

	buf_init(&b);
	*undefined = NULL;
	while (*s) {
		const char *dollar = strchr(s, '$');

		if (dollar == NULL) {
			buf_adds(&b, s);
			break;
		}
		buf_add(&b, s, (size_t)(dollar - s));
		e = dollar[1] == '{' ? strchr(dollar, '}') : NULL;
		if (e == NULL) {
			buf_addc(&b, '$');
			s = dollar + 1;
			continue;
		}
		char *name = xstrndup(dollar + 2, (size_t)(e - dollar - 2));
		const char *value = ac_lookup(c, name);

		if (value != NULL)
			buf_adds(&b, value);
		else
			buf_add(&b, dollar, (size_t)(e - dollar + 1));
		if (value == NULL && *undefined == NULL && strchr(name, ':') == NULL)
			*undefined = xasprintf("${%s}", name);
		xfree(name);
		s = e + 1;
	}
	return buf_steal(&b);
}

/* ---- what the reader executes itself ---- */

static struct ac_define *
ac_find_define(struct apacheconf *c, const char *name)
{
	for (size_t i = 0; i < c->ndefs; i++)
		if (strcmp(c->defs[i].name, name) == 0)
			return &c->defs[i];
	return NULL;
}

static int
ac_define(struct apacheconf *c, const struct ac_src *s, unsigned line, const struct ac_node *n)
{
	bool undef = ac_eq(n->d.name, "UnDefine");
	struct ac_define *d;

	if (n->d.nargs < 1 || n->d.nargs > (undef ? 1u : 2u))
		return ac_fail(c, s->file, line, "%s takes %s", n->d.name,
			       undef ? "one argument" : "one or two arguments");
	if (strchr(n->d.args[0], ':') != NULL)
		return ac_fail(c, s->file, line, "%s: variable name must not contain ':'",
			       n->d.name);
	d = ac_find_define(c, n->d.args[0]);
	if (undef) {
		if (d != NULL) {
			xfree(d->name);
			xfree(d->value);
			*d = c->defs[--c->ndefs];
		}
		return 0;
	}
	if (d == NULL) {
		c->defs = xgrow(c->defs, &c->capdefs, c->ndefs, sizeof(*c->defs));
		d = &c->defs[c->ndefs++];
		d->name = xstrdup(n->d.args[0]);
		d->value = NULL;
	}
	if (n->d.nargs == 2) {
		xfree(d->value);
		d->value = xstrdup(n->d.args[1]);
	}
	return 0;
}

static int
ac_server_root(struct apacheconf *c, const struct ac_src *s, unsigned line, const struct ac_node *n)
{
	struct stat st;
	char *dir;

	if (n->d.nargs != 1)
		return ac_fail(c, s->file, line, "ServerRoot takes one argument");
	if (ac_current(c) != &c->root)
		return ac_fail(c, s->file, line, "ServerRoot cannot occur within a section");
	dir = ac_absolute(n->d.args[0]);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		xfree(dir);
		return ac_fail(c, s->file, line, "ServerRoot must be a valid directory: %s",
			       n->d.args[0]);
	}
	while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/')
		dir[strlen(dir) - 1] = '\0';
	xfree(c->server_root);
	c->server_root = dir;
	return 0;
}

/* Include, IncludeOptional, Define, UnDefine, ServerRoot: 1 when `n` is none of them. */
static int
ac_execute(struct apacheconf *c, const struct ac_src *s, unsigned line, const struct ac_node *n)
{
	bool optional = ac_eq(n->d.name, "IncludeOptional");
	char *path;
	int rv;

	if (ac_eq(n->d.name, "Define") || ac_eq(n->d.name, "UnDefine"))
		return ac_define(c, s, line, n);
	if (ac_eq(n->d.name, "ServerRoot"))
		return ac_server_root(c, s, line, n);
	if (!optional && !ac_eq(n->d.name, "Include"))
		return 1;
	if (n->d.nargs != 1)
		return ac_fail(c, s->file, line, "%s takes one argument", n->d.name);
	if (c->opt.no_includes)
		return ac_fail(c, s->file, line, "%s: includes are not followed here", n->d.name);
	{
		const char *file = c->inc_file, *name = c->inc_name;
		unsigned at = c->inc_line;

		c->inc_file = s->file;
		c->inc_line = line;
		c->inc_name = n->d.name;
		path = apacheconf_resolve(c, n->d.args[0]);
		rv = ac_include(c, path, optional, s, line);
		xfree(path);
		c->inc_file = file;
		c->inc_line = at;
		c->inc_name = name;
	}
	return rv;
}

/* ---- sections ---- */

bool
apacheconf_is_conditional(const char *name)
{
	static const char *const names[] = {"IfModule", "IfDefine",    "IfVersion",
					    "IfFile",	"IfDirective", "IfSection"};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (ac_eq(name, names[i]))
			return true;
	return false;
}

static struct ac_frame *
ac_push(struct apacheconf *c, const struct ac_src *s, unsigned line, const char *name)
{
	struct ac_frame *f;

	if (c->nframes >= AC_MAX_NESTING) {
		ac_fail(c, s->file, line, "<%s>: sections nested more than %d deep", name,
			AC_MAX_NESTING);
		return NULL;
	}
	c->frames = xgrow(c->frames, &c->capframes, c->nframes, sizeof(*c->frames));
	f = &c->frames[c->nframes++];
	memset(f, 0, sizeof(*f));
	f->name = xstrdup(name);
	f->file = s->file;
	f->line = line;
	return f;
}

static void
ac_pop(struct apacheconf *c)
{
	struct ac_frame *f = &c->frames[--c->nframes];

	xfree(f->name);
	xfree(f->cond);
}

/* "<Name args>": `word` is "<Name" or "<Name>", `rest` what follows it on the line. */
static int
ac_open_section(struct apacheconf *c, const struct ac_src *s, unsigned line, const char *word,
		const char *rest, const char *text, char *undefined)
{
	char *name = xstrdup(word + 1), *args;
	size_t nl = strlen(name);
	const char *gt = strrchr(rest, '>');
	struct ac_frame *f;
	struct ac_node *n;
	int rv = 0;

	if (nl > 0 && name[nl - 1] == '>')
		name[--nl] = '\0';
	if (nl == 0 || (*rest != '\0' && gt == NULL)) {
		rv = nl == 0
			 ? ac_fail(c, s->file, line, "a section needs a name after '<'")
			 : ac_fail(c, s->file, line, "<%s> directive missing closing '>'", name);
		xfree(name);
		xfree(undefined);
		return rv;
	}
	args = xstrndup(rest, gt ? (size_t)(gt - rest) : 0);
	n = ac_node_new(name, s->file, line, text);
	n->d.section = true;
	n->d.undefined = undefined;
	rv = ac_split(c, s, line, args, n);
	f = rv == 0 ? ac_push(c, s, line, name) : NULL;
	if (f != NULL && apacheconf_is_conditional(name)) {
		f->cond = xasprintf("%s (%s:%u)", text, s->file, line);
		c->nreader++;
		ac_node_free(n);
		n = NULL;
	} else if (f != NULL) {
		ac_attach(c, n);
		f->node = n;
		n = NULL;
	}
	if (n != NULL)
		ac_node_free(n);
	xfree(args);
	xfree(name);
	return f != NULL ? 0 : -1;
}

static int
ac_close_section(struct apacheconf *c, const struct ac_src *s, unsigned line, const char *word)
{
	char *name = xstrdup(word + 2);
	size_t nl = strlen(name);
	int rv = 0;

	if (nl == 0 || name[nl - 1] != '>')
		rv = ac_fail(c, s->file, line, "</%s> directive missing closing '>'", name);
	else
		name[nl - 1] = '\0';
	if (rv == 0 && c->nframes <= s->base)
		rv = ac_fail(c, s->file, line, "</%s> without matching <%s> section", name, name);
	else if (rv == 0 && !ac_eq(c->frames[c->nframes - 1].name, name))
		rv = ac_fail(c, s->file, line, "expected </%s> but saw </%s>",
			     c->frames[c->nframes - 1].name, name);
	if (rv == 0)
		ac_pop(c);
	xfree(name);
	return rv;
}

/* ---- one line ---- */

static int
ac_directive(struct apacheconf *c, const struct ac_src *s, unsigned line, const char *word,
	     const char *rest, const char *text, char *undefined)
{
	struct ac_node *n = ac_node_new(word, s->file, line, text);
	int rv;

	n->d.undefined = undefined;
	rv = ac_split(c, s, line, rest, n);
	if (rv == 0)
		rv = ac_execute(c, s, line, n);
	if (rv == 1) {
		ac_attach(c, n);
		return 0;
	}
	if (rv == 0)
		c->nreader++;
	ac_node_free(n);
	return rv;
}

static int
ac_process_line(struct apacheconf *c, const struct ac_src *s, unsigned line, char *raw)
{
	char *text = ac_trim(raw), *undefined, *subst, *word;
	const char *p;
	int rv;

	if (*text == '#' || *text == '\0')
		return 0;
	subst = ac_substitute(c, text, &undefined);
	p = subst;
	word = ac_getword(&p);
	if (word[0] == '<' && word[1] == '/') {
		xfree(undefined);
		rv = ac_close_section(c, s, line, word);
	} else if (++c->nread > AC_MAX_DIRECTIVES) {
		xfree(undefined);
		rv = ac_fail(c, s->file, line, "more than %d directives", AC_MAX_DIRECTIVES);
	} else if (word[0] == '<') {
		rv = ac_open_section(c, s, line, word, p, text, undefined);
	} else if (word[0] == '\0') {
		xfree(undefined);
		rv = ac_fail(c, s->file, line, "empty directive name");
	} else {
		rv = ac_directive(c, s, line, word, p, text, undefined);
	}
	xfree(word);
	xfree(subst);
	return rv;
}

static int
ac_parse(struct apacheconf *c, struct ac_src *s)
{
	const char *nul = memchr(s->data, '\0', s->len);
	struct buf line;
	unsigned first = 0;
	int rv;

	if (nul != NULL) {
		unsigned at = 1;

		for (const char *p = s->data; p < nul; p++)
			at += *p == '\n';
		return ac_fail(c, s->file, at, "NUL byte in the configuration");
	}
	buf_init(&line);
	while ((rv = ac_next_line(c, s, &line, &first)) == 0)
		if (ac_process_line(c, s, first, line.data) < 0) {
			rv = -1;
			break;
		}
	buf_free(&line);
	if (rv < 0)
		return -1;
	if (c->nframes > s->base) {
		const struct ac_frame *f = &c->frames[c->nframes - 1];

		return ac_fail(c, f->file, f->line, "<%s> was not closed", f->name);
	}
	return 0;
}

/* ---- files ---- */

static int
ac_read_fd(struct apacheconf *c, int fd, const char *path, const char *shown, char **data,
	   size_t *len)
{
	struct stat st;
	ssize_t got;

	if (fstat(fd, &st) < 0)
		return ac_fail_file(c, shown, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode) && strcmp(path, "/dev/null") != 0)
		return ac_fail_file(c, shown, "not a regular file");
	if ((size_t)st.st_size > AC_MAX_FILE_SIZE)
		return ac_fail_file(c, shown, "larger than %zu bytes", AC_MAX_FILE_SIZE);
	if (c->total + (size_t)st.st_size > AC_MAX_TOTAL_SIZE)
		return ac_fail_file(c, shown, "the configuration is larger than %zu bytes in all",
				    AC_MAX_TOTAL_SIZE);
	for (size_t i = 0; i < c->nopen; i++)
		if (c->open[i].dev == st.st_dev && c->open[i].ino == st.st_ino)
			return ac_fail_file(c, shown,
					    "already being read: the includes form a cycle");
	*data = xmalloc((size_t)st.st_size + 1);
	*len = 0;
	while (*len < (size_t)st.st_size &&
	       (got = read(fd, *data + *len, (size_t)st.st_size - *len)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return ac_fail_file(c, shown, "%s", strerror(errno));
		*len += (size_t)got;
	}
	c->total += *len;
	c->open = xgrow(c->open, &c->capopen, c->nopen, sizeof(*c->open));
	c->open[c->nopen++] = (struct ac_open){st.st_dev, st.st_ino};
	return 0;
}

static int
ac_read_path(struct apacheconf *c, const char *path)
{
	const char *shown = ac_intern_name(c, path);
	struct ac_src s = {.file = shown, .base = c->nframes};
	char *data = NULL;
	size_t len = 0;
	int fd, rv;

	if (c->nopen >= AC_MAX_INCLUDE_DEPTH)
		return ac_fail_file(c, shown, "includes nested more than %d deep",
				    AC_MAX_INCLUDE_DEPTH);
	if (++c->nfiles > AC_MAX_FILES)
		return ac_fail_file(c, shown, "more than %d files included", AC_MAX_FILES);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ac_fail_file(c, shown, "%s", strerror(errno));
	rv = ac_read_fd(c, fd, path, shown, &data, &len);
	close(fd);
	if (rv == 0) {
		s.data = data;
		s.len = len;
		rv = ac_parse(c, &s);
		c->nopen--;
	}
	xfree(data);
	return rv;
}

static int
ac_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The entries of `dir` (full paths, sorted) that match `pattern` (NULL:
 * all but "." and ".."), only directories when `dirs_only`.  -1 when the
 * directory cannot be read.
 */
static int
ac_list_dir(const char *dir, const char *pattern, bool dirs_only, char ***out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		char *full;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (pattern != NULL && fnmatch(pattern, e->d_name, FNM_PERIOD) != 0)
			continue;
		full = ac_join(dir, e->d_name);
		if (dirs_only && (stat(full, &st) < 0 || !S_ISDIR(st.st_mode))) {
			xfree(full);
			continue;
		}
		*out = xgrow(*out, &cap, *n, sizeof(char *));
		(*out)[(*n)++] = full;
	}
	closedir(d);
	if (*n > 1)
		qsort(*out, *n, sizeof(char *), ac_name_cmp);
	return 0;
}

static void
ac_free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		xfree(list[i]);
	xfree(list);
}

/* A path without wildcards: a file, or a directory and everything below it. */
static int
ac_include_plain(struct apacheconf *c, const char *path, bool optional, unsigned depth,
		 const struct ac_src *s, unsigned line)
{
	struct stat st;
	char **list;
	size_t n;
	int rv = 0;

	if (stat(path, &st) < 0) {
		if (optional && errno == ENOENT)
			return 0;
		return ac_fail(c, s->file, line, "%s: cannot open %s: %s", c->inc_name, path,
			       strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return ac_read_path(c, path);
	if (depth >= AC_MAX_DIR_DEPTH)
		return ac_fail(c, s->file, line, "%s: %s: directories nested more than %d deep",
			       c->inc_name, path, AC_MAX_DIR_DEPTH);
	if (ac_list_dir(path, NULL, false, &list, &n) < 0)
		return ac_fail(c, s->file, line, "%s: cannot read the directory %s: %s",
			       c->inc_name, path, strerror(errno));
	for (size_t i = 0; i < n && rv == 0; i++)
		rv = ac_include_plain(c, list[i], optional, depth + 1, s, line);
	ac_free_list(list, n);
	return rv;
}

/* `dir` (no wildcards) followed by the components `rest`, some of them wildcards. */
static int
ac_include_glob(struct apacheconf *c, const char *dir, const char *rest, bool optional,
		const struct ac_src *s, unsigned line)
{
	const char *slash = strchr(rest, '/');
	char *part = slash ? xstrndup(rest, (size_t)(slash - rest)) : xstrdup(rest);
	const char *next = slash ? slash + 1 : NULL;
	char **list = NULL;
	size_t n = 0;
	int rv = 0;

	while (next != NULL && *next == '/')
		next++;
	if (next != NULL && *next == '\0')
		next = NULL;
	if (!ac_has_wildcard(part)) {
		char *path = ac_join(dir, part);

		rv = next ? ac_include_glob(c, path, next, optional, s, line)
			  : ac_include_plain(c, path, optional, 0, s, line);
		xfree(path);
	} else if (ac_list_dir(dir, part, next != NULL, &list, &n) < 0) {
		rv = optional && errno == ENOENT
			 ? 0
			 : ac_fail(c, s->file, line, "%s: cannot read the directory %s: %s",
				   c->inc_name, dir, strerror(errno));
	} else if (n == 0 && !optional) {
		rv = ac_fail(c, s->file, line, "%s: no matches for the wildcard '%s' in %s",
			     c->inc_name, part, dir);
	}
	for (size_t i = 0; i < n && rv == 0; i++)
		rv = next ? ac_include_glob(c, list[i], next, optional, s, line)
			  : ac_include_plain(c, list[i], optional, 0, s, line);
	ac_free_list(list, n);
	xfree(part);
	return rv;
}

static int
ac_include(struct apacheconf *c, const char *pattern, bool optional, const struct ac_src *s,
	   unsigned line)
{
	if (!ac_has_wildcard(pattern))
		return ac_include_plain(c, pattern, optional, 0, s, line);
	return ac_include_glob(c, "/", pattern + 1, optional, s, line);
}

/* ---- the API ---- */

static struct apacheconf *
ac_new(const char *path, const struct apacheconf_options *opt)
{
	struct apacheconf *c = xcalloc(1, sizeof(*c));
	char *abs;
	char *slash;

	if (opt != NULL)
		c->opt = *opt;
	if (c->opt.server_root != NULL) {
		c->server_root = ac_absolute(c->opt.server_root);
	} else {
		abs = ac_absolute(path);
		slash = strrchr(abs, '/');
		if (slash == abs)
			slash[1] = '\0';
		else
			*slash = '\0';
		c->server_root = abs;
	}
	c->opt.server_root = NULL;
	c->root.d.name = xstrdup("");
	c->root.d.text = xstrdup("");
	c->root.d.file = "";
	c->root.d.args = xcalloc(1, sizeof(char *));
	c->root.d.section = true;
	return c;
}

static struct apacheconf *
ac_finish(struct apacheconf *c, int rv, char **err)
{
	if (rv == 0)
		return c;
	*err = c->err != NULL ? c->err : xstrdup("the configuration could not be read");
	c->err = NULL;
	apacheconf_free(c);
	return NULL;
}

struct apacheconf *
apacheconf_read_file(const char *path, const struct apacheconf_options *opt, char **err)
{
	struct apacheconf *c = ac_new(path, opt);
	char *abs = ac_absolute(path);
	int rv = ac_read_path(c, abs);

	xfree(abs);
	return ac_finish(c, rv, err);
}

struct apacheconf *
apacheconf_read_buffer(const char *name, const char *data, size_t len,
		       const struct apacheconf_options *opt, char **err)
{
	struct apacheconf *c = ac_new(name, opt);
	struct ac_src s = {.data = data, .len = len, .file = ac_intern_name(c, name)};
	int rv;

	c->nfiles = 1;
	rv = len > AC_MAX_TOTAL_SIZE
		 ? ac_fail(c, s.file, 0, "larger than %zu bytes", AC_MAX_TOTAL_SIZE)
		 : ac_parse(c, &s);
	return ac_finish(c, rv, err);
}

void
apacheconf_free(struct apacheconf *c)
{
	if (c == NULL)
		return;
	ac_node_clear(&c->root);
	while (c->nframes > 0)
		ac_pop(c);
	xfree(c->frames);
	for (size_t i = 0; i < c->ndefs; i++) {
		xfree(c->defs[i].name);
		xfree(c->defs[i].value);
	}
	xfree(c->defs);
	for (size_t i = 0; i < c->nnames; i++)
		xfree(c->names[i]);
	xfree(c->names);
	xfree(c->open);
	xfree(c->server_root);
	xfree(c->err);
	xfree(c);
}

const struct apacheconf_directive *
apacheconf_root(const struct apacheconf *c)
{
	return &c->root.d;
}

const char *
apacheconf_server_root(const struct apacheconf *c)
{
	return c->server_root;
}

size_t
apacheconf_count_read(const struct apacheconf *c)
{
	return c->nread;
}

size_t
apacheconf_count_reader(const struct apacheconf *c)
{
	return c->nreader;
}

size_t
apacheconf_count_files(const struct apacheconf *c)
{
	return c->nfiles;
}
