#!/usr/bin/env python3
"""demo_upstream.py: the "internal" web site of portico's quick start.

It plays http://internal.example.com/public from SPEC's example: pages with
absolute and relative links, an image, a redirect, a cookie and a CGI-like
status page, so that every rewriting step of portico can be seen with curl.
Python 3 standard library only.

    python3 conf/demo_upstream.py --port 8081

Paths (all under /public):
    /public/            HTML page; absolute links http://NAME:PORT/public/...
                        and relative ones
    /public             301 to http://NAME:PORT/public/
    /public/logo.png    a PNG image
    /public/old         302, Location: http://NAME:PORT/public/next
    /public/next        HTML page, the redirect's target
    /public/cookie      HTML page that sets "demo=1; Path=/public"
    /public/status.cgi  text/plain: what the upstream received
    /public/excluded/   a page portico's seed configuration never shows
"""

import argparse
import http.server
import struct
import sys
import zlib


def png_image(width=32, height=32):
    """A small valid PNG (a blue square with a white diagonal)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack("!I", len(data)) + body + struct.pack("!I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = b""
    for y in range(height):
        row = b"\x00"  # filter: none
        for x in range(width):
            row += b"\xff\xff\xff" if x == y else b"\x20\x50\xc0"
        rows += row
    header = struct.pack("!IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def page(title, body):
    return (
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>%s</title></head>\n"
        "<body>\n<h1>%s</h1>\n%s\n</body>\n</html>\n" % (title, title, body)
    ).encode()


class DemoSite:
    def __init__(self, name, port):
        self.base = "http://%s:%d/public" % (name, port)
        self.logo = png_image()

    def index(self):
        b = self.base
        return page(
            "Internal site",
            "<p>This page lives at %s/ on the internal network.</p>\n"
            "<ul>\n"
            '  <li><a href="%s/next">next page (absolute link)</a></li>\n'
            '  <li><a href="%s/status.cgi">status (absolute link)</a></li>\n'
            '  <li><a href="/public/cookie">a cookie (path link)</a></li>\n'
            '  <li><a href="status.cgi">status (relative link)</a></li>\n'
            '  <li><a href="old">an old address that redirects</a></li>\n'
            '  <li><a href="excluded/">a part that is not published</a></li>\n'
            "</ul>\n"
            '<p><img src="%s/logo.png" alt="logo"> <img src="logo.png" alt="logo (relative)"></p>\n'
            '<form action="%s/status.cgi" method="get"><input name="q"> <button>ask</button></form>'
            % (b, b, b, b, b),
        )

    def respond(self, handler):
        """Returns (status, headers, body) for the request in ``handler``."""
        path = handler.path.split("?", 1)[0]
        html = [("Content-Type", "text/html; charset=utf-8")]
        if path == "/public":
            return 301, [("Location", self.base + "/")] + html, page("Moved", '<a href="%s/">here</a>' % self.base)
        if path in ("/public/", "/public/index.html"):
            return 200, html, self.index()
        if path == "/public/logo.png":
            return 200, [("Content-Type", "image/png"), ("Cache-Control", "max-age=60")], self.logo
        if path == "/public/old":
            return 302, [("Location", self.base + "/next")] + html, page("Found", '<a href="%s/next">next</a>' % self.base)
        if path == "/public/next":
            return 200, html, page("Next page", '<p>You followed the redirect.</p><p><a href="%s/">back</a></p>' % self.base)
        if path == "/public/cookie":
            return (
                200,
                [("Set-Cookie", "demo=1; Path=/public; HttpOnly")] + html,
                page("Cookie", "<p>The cookie demo=1 is set for the path /public.</p>"),
            )
        if path == "/public/status.cgi":
            lines = ["status: ok", "request: %s %s" % (handler.command, handler.path)]
            for name in ("Host", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Cookie"):
                if handler.headers.get(name) is not None:
                    lines.append("%s: %s" % (name.lower(), handler.headers.get(name)))
            return 200, [("Content-Type", "text/plain; charset=utf-8")], ("\n".join(lines) + "\n").encode()
        if path == "/public/excluded" or path.startswith("/public/excluded/"):
            return 200, html, page("Not published", "<p>portico's seed configuration keeps this private.</p>")
        return 404, html, page("Not found", "<p>%s is not here.</p>" % path.replace("<", "&lt;"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-upstream/1.0"
    site = None
    quiet = False

    def _serve(self, with_body):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, headers, body = self.site.respond(self)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):
        self._serve(True)

    def do_POST(self):
        self._serve(True)

    def do_HEAD(self):
        self._serve(False)

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write("demo-upstream: %s %s\n" % (self.address_string(), fmt % args))


def main(argv=None):
    ap = argparse.ArgumentParser(description="The internal web site of portico's quick start.")
    ap.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081)")
    ap.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--name", default="internal.example.com", help="host name in absolute links (default internal.example.com)")
    ap.add_argument("--link-port", type=int, help="port in absolute links (default: --port)")
    ap.add_argument("--quiet", action="store_true", help="no request log on stderr")
    args = ap.parse_args(argv)
    Handler.site = DemoSite(args.name, args.link_port or args.port)
    Handler.quiet = args.quiet
    server = http.server.ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    sys.stderr.write("demo-upstream: serving %s/ on %s:%d\n" % (Handler.site.base, args.bind, server.server_address[1]))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
