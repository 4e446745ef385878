/*
 * config_mdoc.c: the key list of portico.yaml.5, written from the key
 * table so that the man page and the parser cannot drift
 * (tests/unit/test_config.c fails when they differ).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config_int.h"

static void
mdoc_type(FILE *out, const struct ckey *k)
{
	static const char *const names[] = {
	    [KT_SECTION] = "mapping", [KT_BOOL] = "bool",	  [KT_UINT] = "number",
	    [KT_SIZE] = "size",	      [KT_DURATION] = "duration", [KT_STRING] = "string",
	    [KT_PATH] = "path",	      [KT_URL] = "URL",		  [KT_FILE] = "file",
	    [KT_LIST] = "list",
	};
	char list[128];

	if (k->tname != NULL) {
		fprintf(out, " Ar %s", k->tname);
	} else if (k->type == KT_ENUM) {
		cfg_choices_text(k->choices, list, sizeof(list), " | ");
		fprintf(out, " Ar %s", list);
	} else if (k->type == KT_LOGDEST) {
		cfg_choices_text(k->choices, list, sizeof(list), " | ");
		fprintf(out, " Ar %s | path", list);
	} else {
		fprintf(out, " Ar %s", names[k->type]);
	}
}

static void
mdoc_default(FILE *out, const struct ckey *k)
{
	if (k->flags & KEY_REQUIRED)
		fprintf(out, "Required.\n");
	else if (k->def != NULL)
		fprintf(out, "Default:\n.Ql %s .\n", k->def);
	else if (k->defdoc != NULL)
		fprintf(out, "Default: %s.\n", k->defdoc);
}

static void
mdoc_bounds(FILE *out, const struct ckey *k)
{
	char lo[32], hi[32];

	if (k->type != KT_UINT && k->type != KT_SIZE && k->type != KT_DURATION &&
	    k->parse != cfg_key_workers)
		return;
	cfg_bound_text(k, lo, sizeof(lo), k->min);
	cfg_bound_text(k, hi, sizeof(hi), k->max);
	if (k->max == UINT64_MAX && k->min == 0)
		return;
	if (k->max == UINT64_MAX)
		fprintf(out, "At least %s.\n", lo);
	else
		fprintf(out, "From %s to %s.\n", lo, hi);
}

/* Text wrapped at 80 columns, as mandoc's style check asks. */
static void
mdoc_text(FILE *out, const char *text)
{
	size_t col = 0;

	while (*text != '\0') {
		size_t n = strcspn(text, " ");

		if (col > 0 && col + 1 + n > 80) {
			fputc('\n', out);
			col = 0;
		} else if (col > 0) {
			fputc(' ', out);
			col++;
		}
		fwrite(text, 1, n, out);
		col += n;
		text += n;
		text += strspn(text, " ");
	}
	fputc('\n', out);
}

void
config_write_mdoc_keys(FILE *out)
{
	fprintf(out, ".Bl -tag -width Ds\n");
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct ckey *k = &config_keys[i];

		fprintf(out, ".It Ic %s", k->path);
		mdoc_type(out, k);
		fputc('\n', out);
		mdoc_text(out, k->help);
		mdoc_default(out, k);
		mdoc_bounds(out, k);
	}
	fprintf(out, ".El\n");
}
