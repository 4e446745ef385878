#!/usr/bin/python3
"""Writes the benchmark page to stdout: an ordinary article page of about
50 KiB (head with stylesheet and scripts, a navigation bar, sections of
text with inline markup, images, a list, a table, a footer) whose 40 links
point to http://internal.example.com/public/..., the URL every proxy under
test maps to /internal.  Deterministic: the same bytes on every run."""
import random
import sys

TARGET = 50 * 1024
LINKS = 40
INTERNAL = "http://internal.example.com/public"

rnd = random.Random(8)
WORDS = ("proxy request header body stream upstream client route buffer "
         "worker event socket connection response rewrite document page link "
         "server timeout cache status value table config snapshot reload "
         "memory speed byte chunk frame path host the a of and to in is for "
         "with on that by this as are be it from at or an").split()


def words(n):
    return " ".join(rnd.choice(WORDS) for _ in range(n))


links = iter(range(LINKS))


def link(text):
    n = next(links, None)
    if n is None:
        return text
    return f'<a href="{INTERNAL}/docs/section-{n}.html" class="ref">{text}</a>'


def paragraph():
    parts = [words(rnd.randint(12, 30))]
    for _ in range(rnd.randint(1, 3)):
        kind = rnd.randint(0, 3)
        if kind == 0:
            parts.append(f"<em>{words(2)}</em>")
        elif kind == 1:
            parts.append(f"<strong>{words(3)}</strong>")
        elif kind == 2:
            parts.append(f"<code>{words(1)}</code>")
        else:
            parts.append(f'<span class="note">{words(4)}</span>')
        parts.append(words(rnd.randint(8, 20)))
    return "<p>" + " ".join(parts) + ".</p>\n"


def main():
    out = ['<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
           '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
           "<title>portico benchmark page</title>\n"
           '<link rel="stylesheet" href="/static/site.css">\n'
           '<script src="/static/site.js" defer></script>\n'
           "<style>body { font-family: sans-serif; margin: 0 auto; max-width: 50em }"
           " .ref { color: #036 } .note { color: #666 }</style>\n"
           '</head>\n<body>\n<header class="top"><nav><ul>\n']
    for i in range(6):
        out.append(f'<li class="nav-item">{link(f"Section {i}")}</li>\n')
    out.append("</ul></nav></header>\n<main id=\"content\">\n")
    section = 0
    while sum(map(len, out)) < TARGET - 2000:
        out.append(f'<section id="s{section}">\n<h2>{words(4).title()}</h2>\n')
        for _ in range(rnd.randint(2, 4)):
            out.append(paragraph())
        out.append(f"<p>See {link(words(3))} for {words(6)}.</p>\n")
        if section % 3 == 0:
            out.append(f'<img src="/static/figure-{section}.png" alt="{words(3)}"'
                       ' width="640" height="360">\n')
        if section % 4 == 1:
            out.append("<ul>\n" + "".join(f"<li>{words(5)}</li>\n" for _ in range(4)) +
                       "</ul>\n")
        if section % 5 == 2:
            out.append('<table class="data">\n<tr><th>name</th><th>value</th></tr>\n' +
                       "".join(f"<tr><td>{words(1)}</td><td>{rnd.randint(1, 9999)}</td></tr>\n"
                               for _ in range(5)) + "</table>\n")
        out.append("</section>\n")
        section += 1
    out.append('</main>\n<footer><p>')
    for n in links:
        out.append(f'<a href="{INTERNAL}/docs/section-{n}.html">more {n}</a> ')
    out.append("</p></footer>\n</body>\n</html>\n")
    page = "".join(out)
    assert page.count(INTERNAL) == LINKS, page.count(INTERNAL)
    sys.stdout.write(page)


main()
