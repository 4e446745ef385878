/*
 * import.c: `portico import` (SPEC section 14), the driver.
 *
 * Reads the Apache configuration, walks it into the model
 * (import_read.c), builds the routes (import_routes.c) and the other keys
 * (import_top.c), writes the YAML (import_yaml.c) and checks it with the
 * loader of `portico -t`, whose warnings are attached as comments to the
 * entries they name.  Every directive read has one verdict (imported,
 * imported in part, not imported, or handled while reading); the report
 * lists the directives not imported, in the order of the configuration.
 *
 * The result is written to a temporary file next to its target (or in
 * TMPDIR for standard output), checked there, then renamed over the target
 * (or copied to standard output): a target is never left half-written.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import_int.h"
#include "portico/config.h"

#define IMPORT_CHECK_PASSES 3 /* write, attach warnings, renumber them */

/* ---- verdicts ---- */

struct vslot {
	adir *d;
	enum verdict v;
	char **msgs;
	size_t nmsgs;
};

struct imp_verdicts {
	struct vslot *slots;
	size_t cap, n;
};

static size_t
vhash(adir *d, size_t cap)
{
	uint64_t h = (uint64_t)(uintptr_t)d * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 17) & (cap - 1);
}

static struct vslot *
vfind(struct imp_verdicts *t, adir *d, bool create)
{
	size_t i;

	if (create && (t->n + 1) * 2 > t->cap) {
		struct imp_verdicts bigger = {.cap = t->cap ? t->cap * 2 : 256};

		bigger.slots = xcalloc(bigger.cap, sizeof(*bigger.slots));
		for (size_t k = 0; k < t->cap; k++)
			if (t->slots[k].d != NULL) {
				i = vhash(t->slots[k].d, bigger.cap);
				while (bigger.slots[i].d != NULL)
					i = (i + 1) & (bigger.cap - 1);
				bigger.slots[i] = t->slots[k];
			}
		xfree(t->slots);
		t->slots = bigger.slots;
		t->cap = bigger.cap;
	}
	if (t->cap == 0)
		return NULL;
	for (i = vhash(d, t->cap); t->slots[i].d != NULL; i = (i + 1) & (t->cap - 1))
		if (t->slots[i].d == d)
			return &t->slots[i];
	if (!create)
		return NULL;
	t->slots[i].d = d;
	t->n++;
	return &t->slots[i];
}

static void
verdicts_free(struct imp_verdicts *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->cap; i++) {
		for (size_t k = 0; k < t->slots[i].nmsgs; k++)
			xfree(t->slots[i].msgs[k]);
		xfree(t->slots[i].msgs);
	}
	xfree(t->slots);
	xfree(t);
}

static void
set_verdict(struct imp *im, adir *d, enum verdict v)
{
	struct vslot *s = vfind(im->verdicts, d, true);

	if (s->v == V_NONE || (v == V_PARTIAL && s->v == V_IMPORTED) || v == V_REPORTED)
		s->v = v;
}

void
imp_imported(struct imp *im, adir *d)
{
	if (d != NULL)
		set_verdict(im, d, V_IMPORTED);
}

void
imp_reader(struct imp *im, adir *d)
{
	set_verdict(im, d, V_READER);
}

void
imp_note(struct imp *im, adir *d)
{
	for (size_t i = 0; i < im->nnotes; i++)
		if (im->notes[i] == d)
			return;
	imp_imported(im, d);
	im->notes = xgrow(im->notes, &im->capnotes, im->nnotes, sizeof(*im->notes));
	im->notes[im->nnotes++] = d;
}

enum verdict
imp_verdict(const struct imp *im, adir *d)
{
	struct vslot *s = vfind(im->verdicts, d, false);

	return s != NULL ? s->v : V_NONE;
}

static void
add_message(struct imp *im, adir *d, enum verdict v, const char *fmt, va_list ap)
{
	struct vslot *s;
	char *msg = xvasprintf(fmt, ap);

	set_verdict(im, d, v);
	s = vfind(im->verdicts, d, false);
	for (size_t i = 0; i < s->nmsgs; i++)
		if (strcmp(s->msgs[i], msg) == 0) {
			xfree(msg);
			return;
		}
	s->msgs = xrealloc(s->msgs, (s->nmsgs + 1) * sizeof(char *));
	s->msgs[s->nmsgs++] = msg;
}

void
imp_report(struct imp *im, adir *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_message(im, d, V_REPORTED, fmt, ap);
	va_end(ap);
}

void
imp_report_part(struct imp *im, adir *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_message(im, d, V_PARTIAL, fmt, ap);
	va_end(ap);
}

/* The report, in the order of the configuration, and the counts. */
static void
report_tree(struct imp *im, adir *d)
{
	struct vslot *s = vfind(im->verdicts, d, false);
	enum verdict v = s != NULL ? s->v : V_NONE;
	char *name = d->section ? xasprintf("<%s>", d->name) : xstrdup(d->name);

	if (v == V_NONE) {
		fprintf(im->report, "%s:%u: %s: not imported: no portico equivalent\n", d->file,
			d->line, name);
		v = V_REPORTED;
	}
	for (size_t i = 0; s != NULL && i < s->nmsgs; i++)
		fprintf(im->report, "%s:%u: %s: not imported: %s%s%s%s\n", d->file, d->line, name,
			s->msgs[i], d->undefined ? " (" : "", d->undefined ? d->undefined : "",
			d->undefined ? " is not defined)" : "");
	xfree(name);
	im->stats.imported += v == V_IMPORTED || v == V_PARTIAL;
	im->stats.partial += v == V_PARTIAL;
	im->stats.reported += v == V_REPORTED;
	im->stats.reader += v == V_READER;
	for (size_t i = 0; i < d->nchildren; i++)
		report_tree(im, d->children[i]);
}

/* ---- checking and writing ---- */

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
rewrite(int fd, const struct buf *text)
{
	if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return -1;
	return write_all(fd, text->data, text->len);
}

/* `msg` with the temporary file's name replaced by the one the user knows. */
static char *
shown_message(const char *msg, const char *tmp, const char *shown)
{
	struct buf b;
	size_t tl = strlen(tmp);
	const char *p = msg, *hit;

	buf_init(&b);
	while ((hit = strstr(p, tmp)) != NULL) {
		buf_add(&b, p, (size_t)(hit - p));
		buf_adds(&b, shown);
		p = hit + tl;
	}
	buf_adds(&b, p);
	return buf_steal(&b);
}

/* Attaches each warning ("file:line:col: warning: text") to the entry on its line. */
static void
attach_warnings(struct imp *im, const struct config *cfg)
{
	ynode_clear_warnings(im->doc);
	for (size_t i = 0; i < cfg->nwarnings; i++) {
		const char *w = cfg->warnings[i];
		const char *colon = strchr(w + strlen(cfg->path), ':');
		int line = colon ? atoi(colon + 1) : 0;
		const char *text = strstr(w, ": warning: ");

		text = text ? text + 2 : w;
		if (!ynode_warn_at(im->doc, line, text))
			ynode_comment(im->doc, "portico -t: %s", text);
	}
}

/*
 * Writes the document into `fd` (the file `tmp`) and checks it like -t,
 * until the warnings attached to it are those of the text written.
 */
static int
check_and_write(struct imp *im, int fd, const char *tmp, const char *shown, struct buf *text)
{
	char *err = NULL;

	for (int pass = 0; pass < IMPORT_CHECK_PASSES; pass++) {
		struct config *cfg;

		buf_reset(text);
		ynode_write(im->doc, text);
		if (rewrite(fd, text) < 0) {
			fprintf(im->report, "portico import: %s: %s\n", tmp, strerror(errno));
			return -1;
		}
		if (pass == IMPORT_CHECK_PASSES - 1)
			break;
		cfg = config_load(tmp, &err);
		if (cfg == NULL) {
			char *m = shown_message(err ? err : "invalid", tmp, shown);

			fprintf(im->report,
				"portico import: the result does not pass portico -t: %s\n", m);
			xfree(m);
			xfree(err);
			return 1;
		}
		attach_warnings(im, cfg);
		config_unref(cfg);
	}
	return 0;
}

static int
copy_to_stdout(const struct buf *text)
{
	if (fwrite(text->data, 1, text->len, stdout) != text->len || fflush(stdout) != 0)
		return -1;
	return 0;
}

/* Writes and checks the result; -1 when nothing could be written, 1 when -t fails. */
static int
output(struct imp *im)
{
	const char *target = im->opt->output;
	const char *tmpdir = getenv("TMPDIR");
	char *tmp =
	    target ? xasprintf("%s.XXXXXX", target)
		   : xasprintf("%s/portico-import.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	const char *shown = target ? target : "(standard output)";
	struct buf text;
	int fd = mkstemp(tmp), rv = -1;

	buf_init(&text);
	if (fd < 0) {
		fprintf(im->report, "portico import: cannot create %s: %s\n", tmp, strerror(errno));
		goto done;
	}
	rv = check_and_write(im, fd, tmp, shown, &text);
	if (rv >= 0 && target != NULL &&
	    (fchmod(fd, 0644) < 0 || fsync(fd) < 0 || rename(tmp, target) < 0)) {
		fprintf(im->report, "portico import: cannot write %s: %s\n", target,
			strerror(errno));
		rv = -1;
	}
	if (rv >= 0 && target == NULL && copy_to_stdout(&text) < 0) {
		fprintf(im->report, "portico import: cannot write the result: %s\n",
			strerror(errno));
		rv = -1;
	}
	close(fd);
	if (rv < 0 || target == NULL)
		unlink(tmp);
done:
	buf_free(&text);
	xfree(tmp);
	return rv;
}

/* ---- the run ---- */

static void
imp_free(struct imp *im)
{
	imp_server_free(im->main);
	for (size_t i = 0; i < im->nvhosts; i++)
		imp_server_free(im->vhosts[i]);
	xfree(im->vhosts);
	for (size_t i = 0; i < im->nlistens; i++) {
		xfree(im->listens[i].address);
		ynode_free(im->listens[i].tls);
	}
	xfree(im->listens);
	ynode_free(im->doc);
	ynode_free(im->routes);
	xfree(im->notes);
	verdicts_free(im->verdicts);
	apacheconf_free(im->conf);
}

static void
summary(struct imp *im)
{
	const struct import_stats *s = &im->stats;

	fprintf(im->report,
		"portico import: %s: %zu directives read in %zu files: %zu imported (%zu in part), "
		"%zu not imported, %zu for the reader; %zu routes\n",
		im->opt->input, s->read, s->files, s->imported, s->partial, s->reported, s->reader,
		s->routes);
}

int
import_run(const struct import_options *o, FILE *report, struct import_stats *st)
{
	struct apacheconf_options ao = {.environment = o->environment};
	struct imp im = {.opt = o, .report = report};
	char *err = NULL;
	int rv;

	im.conf = apacheconf_read_file(o->input, &ao, &err);
	if (im.conf == NULL) {
		fprintf(report, "portico import: %s\n", err);
		xfree(err);
		return 1;
	}
	im.verdicts = xcalloc(1, sizeof(*im.verdicts));
	imp_read(&im);
	imp_build_routes(&im);
	imp_build_top(&im);
	im.stats.read = apacheconf_count_read(im.conf);
	im.stats.files = apacheconf_count_files(im.conf);
	im.stats.reader = apacheconf_count_reader(im.conf);
	{
		const struct apacheconf_directive *root = apacheconf_root(im.conf);

		for (size_t i = 0; i < root->nchildren; i++)
			report_tree(&im, root->children[i]);
	}
	rv = output(&im);
	summary(&im);
	if (st != NULL)
		*st = im.stats;
	imp_free(&im);
	if (rv != 0)
		return 1;
	return o->strict && (im.stats.reported > 0 || im.stats.partial > 0) ? 1 : 0;
}
