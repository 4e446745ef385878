/*
 * route_prefix.c: the literal prefix of a match rule's regular expression,
 * which route.c indexes in its trie so that a lookup runs only the
 * expressions whose prefix the path starts with.
 *
 * The scan is deliberately narrow.  It understands the start of a pattern:
 * a few leading option settings that do not change what a character matches,
 * "^", then plain characters and escaped punctuation.  It gives up ("no
 * prefix") on anything it does not model: case-insensitive, extended or
 * multi-line matching, a top-level alternative, an unanchored pattern.  A
 * prefix that is too short only costs a regular expression run; one that
 * were too long would lose a match, so every doubt shortens it, and PCRE2's
 * own view of the compiled pattern (anchored, first code unit) must agree.
 */
#include <string.h>

#include "portico/route.h"

/* Compile options under which a literal character still matches only itself. */
#define HARMLESS_OPTIONS (PCRE2_DOTALL | PCRE2_NO_AUTO_CAPTURE | PCRE2_UNGREEDY | PCRE2_DUPNAMES)

/* Skips leading "(?s)", "(?n)", "(?U)", "(?J)" (and combinations); the index after them. */
static size_t
skip_leading_options(const char *p)
{
	size_t i = 0;

	while (p[i] == '(' && p[i + 1] == '?') {
		size_t j = i + 2;

		while (p[j] == 's' || p[j] == 'n' || p[j] == 'U' || p[j] == 'J')
			j++;
		if (j == i + 2 || p[j] != ')')
			return i;
		i = j + 1;
	}
	return i;
}

static bool
is_meta(unsigned char c)
{
	return c != '\0' && strchr("\\^$.[]|(){}?*+", c) != NULL;
}

static bool
is_quantifier(unsigned char c)
{
	return c == '?' || c == '*' || c == '+' || c == '{';
}

static bool
is_ascii_punct(unsigned char c)
{
	return c > 0x20 && c < 0x7f &&
	       !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

/*
 * The index past the items at p[i] that match nothing and leave a following
 * quantifier to the character before them: "(?#...)" comments, an empty
 * "\Q\E" and a lone "\E".  "a(?#x)?" is "a?".
 */
static size_t
skip_invisible(const char *p, size_t i)
{
	for (;;) {
		if (p[i] == '(' && p[i + 1] == '?' && p[i + 2] == '#') {
			const char *e = strchr(p + i, ')');

			if (e == NULL)
				return i;
			i = (size_t)(e - p) + 1;
		} else if (p[i] == '\\' && p[i + 1] == 'E') {
			i += 2;
		} else if (p[i] == '\\' && p[i + 1] == 'Q' && p[i + 2] == '\\' && p[i + 3] == 'E') {
			i += 4;
		} else {
			return i;
		}
	}
}

/*
 * Appends the literal characters that start at p[i] to `out`: printable
 * ASCII other than metacharacters, and "\" before punctuation.  A character
 * followed by a quantifier, even across a comment, is optional or repeated,
 * so it ends the prefix.
 */
static void
scan_literals(const char *p, size_t i, struct buf *out)
{
	for (;;) {
		unsigned char c = (unsigned char)p[i], lit;
		size_t next;

		if (c == '\\' && is_ascii_punct((unsigned char)p[i + 1])) {
			lit = (unsigned char)p[i + 1];
			next = i + 2;
		} else if (c >= 0x20 && c < 0x7f && !is_meta(c)) {
			lit = c;
			next = i + 1;
		} else {
			return;
		}
		if (is_quantifier((unsigned char)p[skip_invisible(p, next)]))
			return;
		buf_addc(out, (char)lit);
		i = next;
	}
}

/*
 * At p[j] = "[" followed by ":", "." or "=" inside a class: the index of the
 * "]" that closes a POSIX class there ("[:alpha:]"), or j when it is not one
 * and the "[" is an ordinary member.  PCRE2's own rule: the terminator
 * followed by "]" closes it; a "]", or a "[" with the same terminator,
 * before that means there is none ("[[:]:]" is the class "[:" then ":]").
 */
static size_t
posix_class_end(const char *p, size_t j)
{
	char term = p[j + 1];

	for (size_t k = j + 2; p[k] != '\0' && p[k + 1] != '\0'; k++) {
		if (p[k] == '\\' && (p[k + 1] == ']' || p[k + 1] == '\\'))
			k++;
		else if ((p[k] == '[' && p[k + 1] == term) || p[k] == ']')
			return j;
		else if (p[k] == term && p[k + 1] == ']')
			return k + 1;
	}
	return j;
}

/* The length of the escape at p[i] = "\\": "\\cX" (a control character) is three bytes. */
static size_t
escape_len(const char *p, size_t i)
{
	if (p[i + 1] == '\0')
		return 1;
	return p[i + 1] == 'c' && p[i + 2] != '\0' ? 3 : 2;
}

/* The index of the "]" that closes the class opened at p[i], or 0 when unsure. */
static size_t
class_end(const char *p, size_t i)
{
	size_t j = i + 1;
	bool negated = false;

	/* As PCRE2 reads the start: "^" once, and "\E" or "\Q\E" anywhere, before a
	   "]" that is still the first member and so literal ("[\E]]" holds "]"). */
	for (;;) {
		if (p[j] == '\\' && p[j + 1] == 'E') {
			j += 2;
		} else if (p[j] == '\\' && p[j + 1] == 'Q' && p[j + 2] == '\\' && p[j + 3] == 'E') {
			j += 4;
		} else if (p[j] == '^' && !negated) {
			negated = true;
			j++;
		} else {
			break;
		}
	}
	if (p[j] == ']')
		j++;
	for (; p[j] != ']'; j++) {
		if (p[j] == '\0' || (p[j] == '\\' && (p[j + 1] == '\0' || p[j + 1] == 'Q')))
			return 0;
		if (p[j] == '\\')
			j += escape_len(p, j) - 1;
		else if (p[j] == '[' && (p[j + 1] == ':' || p[j + 1] == '.' || p[j + 1] == '='))
			j = posix_class_end(p, j);
	}
	return j;
}

/* True when the group opened at p[i] sets options that include "x" (extended syntax). */
static bool
group_sets_extended(const char *p, size_t i)
{
	if (p[i + 1] != '?')
		return false;
	for (size_t j = i + 2;; j++) {
		char c = p[j];

		if (c == 'x')
			return true;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '^'))
			return false;
	}
}

/*
 * At "(?C": the index of the last byte of the callout's string argument
 * ("(?C\"a|b\")", a doubled delimiter stands for itself), i + 2 when it
 * has a number instead, or 0 when the string does not end.
 */
static size_t
callout_end(const char *p, size_t i)
{
	static const char open[] = "`'\"^%#${", close[] = "`'\"^%#$}";
	const char *d = p[i + 3] != '\0' ? strchr(open, p[i + 3]) : NULL;

	if (d == NULL)
		return i + 2;
	for (size_t k = i + 4; p[k] != '\0'; k++) {
		if (p[k] != close[d - open])
			continue;
		if (p[k + 1] != close[d - open])
			return k;
		k++;
	}
	return 0;
}

/*
 * True when the pattern has a "|" outside every group, or when the scan
 * cannot tell (extended syntax, where "#" starts a comment; an unclosed
 * class or quote).  Escapes, \Q...\E, classes, (?#...) comments, the
 * names of (*VERB:NAME) and the strings of (?C"...") callouts are skipped.
 */
static bool
may_alternate_at_top(const char *p)
{
	int depth = 0;

	for (size_t i = 0; p[i] != '\0'; i++) {
		switch (p[i]) {
		case '\\':
			if (p[i + 1] == 'Q') {
				const char *e = strstr(p + i + 2, "\\E");

				if (e == NULL)
					return false; /* quoted to the end: no "|" follows */
				i = (size_t)(e - p) + 1;
			} else {
				i += escape_len(p, i) - 1;
			}
			break;
		case '[':
			if ((i = class_end(p, i)) == 0)
				return true;
			break;
		case '(':
			if (group_sets_extended(p, i))
				return true;
			if ((p[i + 1] == '?' && p[i + 2] == '#') || p[i + 1] == '*') {
				const char *e = strchr(p + i, ')'); /* a comment or a verb's name */

				if (e == NULL)
					return true;
				i = (size_t)(e - p);
				break;
			}
			if (p[i + 1] == '?' && p[i + 2] == 'C' && (i = callout_end(p, i)) == 0)
				return true;
			depth++;
			break;
		case ')':
			depth--;
			break;
		case '|':
			if (depth <= 0)
				return true;
			break;
		default:
			break;
		}
	}
	return false;
}

/* PCRE2's view must agree: compiled without surprising options, anchored, same first byte. */
static bool
compiled_agrees(const pcre2_code *re, const struct buf *prefix)
{
	uint32_t argopts = 0, allopts = 0, ftype = 0, funit = 0;

	if (pcre2_pattern_info(re, PCRE2_INFO_ARGOPTIONS, &argopts) != 0 ||
	    pcre2_pattern_info(re, PCRE2_INFO_ALLOPTIONS, &allopts) != 0 ||
	    pcre2_pattern_info(re, PCRE2_INFO_FIRSTCODETYPE, &ftype) != 0 ||
	    pcre2_pattern_info(re, PCRE2_INFO_FIRSTCODEUNIT, &funit) != 0)
		return false;
	if ((argopts & ~(uint32_t)HARMLESS_OPTIONS) != 0 || !(allopts & PCRE2_ANCHORED))
		return false;
	return ftype == 1 && funit == (unsigned char)prefix->data[0];
}

bool
route_regex_prefix(const char *pattern, const pcre2_code *re, struct buf *out)
{
	size_t i = skip_leading_options(pattern);
	struct buf lit;
	bool ok;

	if (pattern[i] != '^' || may_alternate_at_top(pattern))
		return false;
	buf_init(&lit);
	scan_literals(pattern, i + 1, &lit);
	ok = lit.len > 0 && compiled_agrees(re, &lit);
	if (ok)
		buf_add(out, lit.data, lit.len);
	buf_free(&lit);
	return ok;
}
