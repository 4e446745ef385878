"""The README quick start: conf/demo_upstream.py behind portico with the
shipped conf/portico.yaml (ports moved so tests never collide with a running
demo), checked the way the README tells a person to check it with curl."""

import re
import socket
import subprocess
import sys
import time

import pytest

from conftest import SOURCE_DIR, free_port
from upstreams import RawClient, http_request

DEMO = SOURCE_DIR / "conf" / "demo_upstream.py"
SEED_CONF = SOURCE_DIR / "conf" / "portico.yaml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def demo():
    """The demo upstream on a free port; yields the port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(DEMO), "--port", str(port), "--quiet"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            pytest.fail("demo_upstream.py exited: %s" % proc.stderr.read().decode())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("demo_upstream.py does not listen on %d" % port)
            time.sleep(0.05)
    yield port
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    proc.stderr.close()


@pytest.fixture
def seed_text():
    assert SEED_CONF.exists(), "conf/portico.yaml is shipped"
    text = SEED_CONF.read_text()
    assert "127.0.0.1:8080" in text and "internal.example.com:8081" in text
    return text.replace("127.0.0.1:8080", "{listen}").replace("internal.example.com:8081", "internal.example.com:{demo}")


@pytest.fixture
def px(portico, demo, seed_text):
    return portico(seed_text, demo=demo)


def curl(px, target, host=None):
    """GET as `curl -i localhost:PORT/target` sends it."""
    with RawClient(px.port) as c:
        c.request("GET", target, host=host or "localhost:%d" % px.port, headers=[("User-Agent", "curl/7.88.1"), ("Accept", "*/*")])
        return c.read_response()


# -- the demo upstream on its own


def test_demo_upstream_serves_its_pages(demo):
    base = "http://internal.example.com:%d/public" % demo
    r = http_request(demo, "GET", "/public/")
    assert r.status == 200 and "text/html" in r.header("Content-Type")
    assert ('href="%s/next"' % base).encode() in r.body
    assert b'href="status.cgi"' in r.body and b'src="logo.png"' in r.body
    r = http_request(demo, "GET", "/public/old")
    assert r.status == 302 and r.header("Location") == base + "/next"
    r = http_request(demo, "GET", "/public")
    assert r.status == 301 and r.header("Location") == base + "/"
    r = http_request(demo, "GET", "/public/logo.png")
    assert r.status == 200 and r.header("Content-Type") == "image/png" and r.body.startswith(PNG_SIGNATURE)
    r = http_request(demo, "GET", "/public/cookie")
    assert r.header("Set-Cookie") == "demo=1; Path=/public; HttpOnly"
    r = http_request(demo, "GET", "/public/status.cgi?q=1")
    assert r.header("Content-Type").startswith("text/plain")
    assert "request: GET /public/status.cgi?q=1" in r.text
    assert http_request(demo, "GET", "/public/excluded/").status == 200
    assert http_request(demo, "GET", "/nothing").status == 404
    r = http_request(demo, "HEAD", "/public/")
    assert r.status == 200 and r.body == b""


# -- through portico


def test_page(px, demo):
    r = curl(px, "/internal/")
    assert r.status == 200, r.body[:300]
    assert "text/html" in r.header("Content-Type")
    assert b"<h1>Internal site</h1>" in r.body


def test_page_links_are_rewritten(px, demo):
    # html: true in the seed configuration (SPEC 6.3)
    r = curl(px, "/internal/")
    assert b'href="/internal/next"' in r.body
    assert b'href="/internal/status.cgi"' in r.body
    assert b'href="/internal/cookie"' in r.body
    assert b'src="/internal/logo.png"' in r.body
    assert b'action="/internal/status.cgi"' in r.body
    assert b'href="status.cgi"' in r.body  # relative links stay as they are
    assert b"internal.example.com" not in r.body.replace(b"This page lives at http://internal.example.com", b"")


def test_redirect_is_rewritten(px, demo):
    r = curl(px, "/internal/old")
    assert r.status == 302
    assert r.header("Location") == "http://localhost:%d/internal/next" % px.port
    r = curl(px, "/internal/next")
    assert r.status == 200 and b"Next page" in r.body


def test_bare_prefix_redirect(px, demo):
    r = curl(px, "/internal")
    assert r.status == 301
    assert r.header("Location") == "http://localhost:%d/internal/" % px.port


def test_image_via_the_regex_rule(px, demo, portico_cli):
    r = curl(px, "/internal/logo.png")
    assert r.status == 200
    assert r.header("Content-Type") == "image/png"
    assert r.body == http_request(demo, "GET", "/public/logo.png").body
    out = portico_cli("route", "-c", px.config_path, "/internal/logo.png").stdout
    assert "rule.kind: match\n" in out and "rule.name: images\n" in out, out
    assert "upstream: http://internal.example.com:%d/public/logo.png\n" % demo in out, out


def test_excluded_path_is_404(px, demo):
    for target in ("/internal/excluded/", "/internal/excluded", "/internal/excluded/x.png"):
        r = curl(px, target)
        assert r.status == 404, target
        assert b"Not published" not in r.body


def test_status_page_shows_what_the_upstream_saw(px, demo):
    r = curl(px, "/internal/status.cgi?q=portico")
    assert r.status == 200
    assert "request: GET /public/status.cgi?q=portico" in r.text
    assert "host: internal.example.com:%d" % demo in r.text
    assert "x-forwarded-for: 127.0.0.1" in r.text
    assert "x-forwarded-host: localhost:%d" % px.port in r.text


def test_cookie_path_is_rewritten(px, demo):
    r = curl(px, "/internal/cookie")
    assert r.header_all("Set-Cookie") == ["demo=1; Path=/internal; HttpOnly"]


def test_outside_the_published_tree_is_404(px, demo):
    assert curl(px, "/public/").status == 404
    assert curl(px, "/").status == 404


def test_access_log_line(px, demo):
    curl(px, "/internal/next")
    m = px.wait_log(r'"GET /internal/next HTTP/1\.1" 200 \d+', stream="stdout")
    assert re.search(r"127\.0\.0\.1:%d" % demo, px.stdout[m.start() :].splitlines()[0]), px.stdout
